/**
 * Segments: groups of workloads that talk mostly among themselves, found with Louvain community
 * detection on the undirected projection of the workload graph. Deterministic: nodes and edges are
 * inserted in sorted order and Louvain's random walk uses a seeded generator, so the same graph gives
 * the same segments and the same names.
 */
import { UndirectedGraph } from 'graphology';
import * as louvainModule from 'graphology-communities-louvain';
import type { DetailedLouvainOutput, LouvainOptions } from 'graphology-communities-louvain';
import { SEGMENT_LABEL } from '../identity/index.ts';
import type { Workload } from '../identity/types.ts';
import type { GraphEdge, GraphNode } from '../graph/types.ts';
import { compareText } from '../model/order.ts';

// The package is CommonJS with an ESM-style declaration file; at run time its default export is the
// louvain function, which carries `detailed`.
type LouvainGraph = UndirectedGraph<Record<string, never>, { weight: number }>;
const louvain = (
  louvainModule as unknown as {
    default: { detailed(g: LouvainGraph, o: LouvainOptions): DetailedLouvainOutput };
  }
).default;

/** Label on a workload object or its pod template that pins the workload to a named segment. */
export { SEGMENT_LABEL };

export interface SegmentOptions {
  /** Louvain resolution: above 1 gives more, smaller segments; below 1 fewer, larger ones. Default 1. */
  resolution?: number;
  /** Seed of Louvain's random walk. Default 1. */
  seed?: number;
  /**
   * A workload called by, or calling, at least this many distinct workloads (cluster DNS not counted) is
   * a platform hub (auth, config, metrics scrapers) and is kept out of community detection, in a platform
   * segment of its namespace; so is cluster DNS. Default max(6, 5% of workloads).
   */
  hubDegree?: number;
}

export type SegmentKind = 'community' | 'pinned' | 'platform' | 'isolated';

export interface Segment {
  /** Stable, DNS-label-safe name, e.g. `shop`, `shop-checkout`, `kube-system-platform`. */
  id: string;
  kind: SegmentKind;
  /** Workload ids, sorted. */
  members: string[];
  namespaces: string[];
  /** Edges (workload to workload, counted per port) inside the segment and crossing its boundary. */
  internalEdges: number;
  crossingEdges: number;
}

export interface SegmentResult {
  segments: Segment[];
  /** Workload id → segment id. */
  membership: Record<string, string>;
  /** Modularity of the Louvain partition (community segments only). */
  modularity: number;
  resolution: number;
  seed: number;
  hubDegree: number;
}

/** mulberry32: a small, fast, seeded PRNG. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function slug(s: string): string {
  return (
    s
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .replace(/-+/g, '-')
      .replace(/^-|-$/g, '')
      .slice(0, 50)
      .replace(/-$/, '') || 'segment'
  );
}

export function computeSegments(
  workloads: ReadonlyMap<string, Workload>,
  graph: { nodes: readonly GraphNode[]; edges: Iterable<GraphEdge> },
  opts: SegmentOptions = {},
): SegmentResult {
  const resolution = opts.resolution ?? 1;
  const seed = opts.seed ?? 1;
  const ids = [...workloads.keys()].sort();
  const hubDegree = opts.hubDegree ?? Math.max(6, Math.ceil(0.05 * ids.length));

  // Undirected workload-to-workload weights; self-loops ignored. Callers and callees are counted apart
  // to find hubs: a workload called by many (auth, config) or calling many (metrics scrapers).
  // Workloads are numbered in sorted order and pairs keyed by number (a * n + b): no text per pair,
  // and the numeric order of the keys is the order of the pairs' names.
  const n = ids.length;
  const index = new Map<string, number>();
  for (let i = 0; i < n; i++) index.set(ids[i]!, i);
  const dns = ids.map((id) => workloads.get(id)!.roles.includes('cluster-dns'));
  const pairWeight = new Map<number, number>();
  const linked = new Uint8Array(n);
  const calls = new Set<number>();
  const callers = new Uint32Array(n);
  const callees = new Uint32Array(n);
  for (const e of graph.edges) {
    const s = index.get(e.source);
    const t = index.get(e.target);
    if (s === undefined || t === undefined || s === t) continue;
    const key = s < t ? s * n + t : t * n + s;
    pairWeight.set(key, (pairWeight.get(key) ?? 0) + 1 + Math.log10(Math.max(1, e.count)));
    linked[s] = linked[t] = 1;
    const call = s * n + t;
    if (!dns[s] && !dns[t] && !calls.has(call)) {
      calls.add(call);
      callees[s]!++;
      callers[t]!++;
    }
  }
  calls.clear();
  const isHub = (i: number) => dns[i] || callers[i]! >= hubDegree || callees[i]! >= hubDegree;

  const fixed = new Map<string, { name: string; kind: SegmentKind }>();
  for (let i = 0; i < n; i++) {
    const id = ids[i]!;
    const w = workloads.get(id)!;
    // The object's own label wins over its pod template's: labelling a Deployment re-pins it without
    // rolling out its pods, so that label is the newer word.
    const pin = w.segmentLabel || w.labels[SEGMENT_LABEL];
    if (pin) fixed.set(id, { name: slug(pin), kind: 'pinned' });
    else if (isHub(i)) fixed.set(id, { name: slug(`${w.namespace}-platform`), kind: 'platform' });
    else if (!linked[i]) fixed.set(id, { name: slug(`${w.namespace}-unobserved`), kind: 'isolated' });
  }

  const g: LouvainGraph = new UndirectedGraph();
  for (const id of ids) if (!fixed.has(id)) g.addNode(id);
  for (const key of Float64Array.from(pairWeight.keys()).sort()) {
    const a = ids[Math.floor(key / n)]!;
    const b = ids[key % n]!;
    if (g.hasNode(a) && g.hasNode(b)) g.addEdge(a, b, { weight: pairWeight.get(key)! });
  }
  pairWeight.clear();
  let modularity = 0;
  const communityOf = new Map<string, number>();
  if (g.order > 0) {
    const res = louvain.detailed(g, { resolution, rng: seededRandom(seed), getEdgeWeight: 'weight' });
    modularity = g.size > 0 ? res.modularity : 0;
    for (const [node, c] of Object.entries(res.communities)) communityOf.set(node, c);
  }

  // Group members.
  const groups = new Map<string, { kind: SegmentKind; members: string[]; fixedName?: string }>();
  for (const id of ids) {
    const f = fixed.get(id);
    // By kind as well as name: a pin never joins a platform or isolated segment that bears its name.
    const key = f ? `f:${f.kind}:${f.name}` : `c:${communityOf.get(id)}`;
    let grp = groups.get(key);
    if (!grp)
      groups.set(
        key,
        (grp = { kind: f?.kind ?? 'community', members: [], ...(f ? { fixedName: f.name } : {}) }),
      );
    grp.members.push(id);
  }

  // Names: pinned names exactly as asked, reserved first; other fixed names as given; communities named
  // after their dominant namespace, plus their busiest member when the namespace holds several
  // communities. Other collisions get -2, -3 in sorted order.
  const traffic = new Map<string, number>();
  for (const n of graph.nodes) traffic.set(n.id, n.flowsIn + n.flowsOut);
  const nsCommunities = new Map<string, number>();
  const dominantNs = (members: string[]): string => {
    const c = new Map<string, number>();
    for (const m of members) {
      const ns = workloads.get(m)!.namespace;
      c.set(ns, (c.get(ns) ?? 0) + 1);
    }
    return [...c.entries()].sort((a, b) => b[1] - a[1] || compareText(a[0], b[0]))[0]![0];
  };
  const ordered = [...groups.values()].sort((a, b) => compareText(a.members[0]!, b.members[0]!));
  for (const grp of ordered) {
    if (grp.kind === 'community') {
      const ns = dominantNs(grp.members);
      nsCommunities.set(ns, (nsCommunities.get(ns) ?? 0) + 1);
    }
  }
  const used = new Set<string>();
  for (const grp of ordered) if (grp.kind === 'pinned') used.add(grp.fixedName!);
  const segments: Segment[] = [];
  const membership: Record<string, string> = {};
  for (const grp of ordered) {
    let base: string;
    if (grp.fixedName) base = grp.fixedName;
    else {
      const ns = dominantNs(grp.members);
      if ((nsCommunities.get(ns) ?? 0) <= 1) base = slug(ns);
      else {
        const busiest = [...grp.members].sort(
          (a, b) => (traffic.get(b) ?? 0) - (traffic.get(a) ?? 0) || compareText(a, b),
        )[0]!;
        base = slug(`${ns}-${workloads.get(busiest)!.name}`);
      }
    }
    let name = base;
    if (grp.kind !== 'pinned') for (let i = 2; used.has(name); i++) name = `${base}-${i}`;
    used.add(name);
    for (const m of grp.members) membership[m] = name;
    segments.push({
      id: name,
      kind: grp.kind,
      members: grp.members,
      namespaces: [...new Set(grp.members.map((m) => workloads.get(m)!.namespace))].sort(),
      internalEdges: 0,
      crossingEdges: 0,
    });
  }
  const byId = new Map(segments.map((s) => [s.id, s]));
  for (const e of graph.edges) {
    const a = membership[e.source];
    const b = membership[e.target];
    if (a === undefined || b === undefined) continue;
    if (a === b) byId.get(a)!.internalEdges++;
    else {
      byId.get(a)!.crossingEdges++;
      byId.get(b)!.crossingEdges++;
    }
  }
  segments.sort((a, b) => compareText(a.id, b.id));
  return { segments, membership, modularity, resolution, seed, hubDegree };
}
