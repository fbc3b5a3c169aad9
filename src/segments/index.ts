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
  /**
   * The community segment each workload was in before (workload id → segment name), from an earlier
   * run over the same cluster: a community whose members were mostly in one such segment keeps its
   * name (see computeSegments), so that a connection more or less renames nothing. Names of a
   * namespace's platform, unobserved or no-east-west segment (`<ns>-platform`, `<ns>-unobserved`,
   * `<ns>-no-east-west`) are not taken over.
   */
  previous?: ReadonlyMap<string, string>;
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
  /** With `previous`: the names of the previous run that communities kept, sorted. */
  namesKept?: string[];
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

/**
 * `s` as a DNS label of at most `max` characters: 50 by default, which leaves room for a collision's
 * suffix within a label value's 63; a pin's name, which never gets a suffix, may have all 63.
 */
export function slug(s: string, max = 50): string {
  return (
    s
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .replace(/-+/g, '-')
      .replace(/^-|-$/g, '')
      .slice(0, max)
      .replace(/-$/, '') || 'segment'
  );
}

/** The longest name a pin gives its segment: a label value's limit. */
const PIN_NAME_MAX = 63;

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
  /** Distinct workloads each is connected to, either way: what names a community (its anchor). */
  const neighbours = new Set<number>();
  const degree = new Uint32Array(n);
  /** Workloads at an end of some edge (to the world, the API server, a node or itself included). */
  const observed = new Uint8Array(n);
  for (const e of graph.edges) {
    const s = index.get(e.source);
    const t = index.get(e.target);
    if (s !== undefined) observed[s] = 1;
    if (t !== undefined) observed[t] = 1;
    if (s === undefined || t === undefined || s === t) continue;
    const key = s < t ? s * n + t : t * n + s;
    // One per edge (a port, a protocol, a direction): the weight says how the two are connected, never
    // how much traffic was seen, so another week's flows over the same connections give the same
    // segments (a count in the weight moved workloads between communities, and renamed them). Common
    // neighbours are added below.
    pairWeight.set(key, (pairWeight.get(key) ?? 0) + 1);
    linked[s] = linked[t] = 1;
    if (!neighbours.has(key)) {
      neighbours.add(key);
      degree[s]!++;
      degree[t]!++;
    }
    const call = s * n + t;
    if (!dns[s] && !dns[t] && !calls.has(call)) {
      calls.add(call);
      callees[s]!++;
      callers[t]!++;
    }
  }
  calls.clear();
  neighbours.clear();
  const isHub = (i: number) => dns[i] || callers[i]! >= hubDegree || callees[i]! >= hubDegree;

  // `key` groups the members of a fixed segment: a pin's name, a namespace for its platform, unobserved or
  // no-east-west segment (two long namespaces' names may slug alike; their segments stay two, one with a suffix).
  const fixed = new Map<string, { name: string; kind: SegmentKind; key: string }>();
  // A workload known only from flows (a pod the cluster does not have, `observedOnly`) is one while an
  // edge has it: with none it is in no segment (not unobserved: the cluster has nothing there to cut off).
  const absent = new Set<string>();
  for (let i = 0; i < n; i++) {
    const id = ids[i]!;
    const w = workloads.get(id)!;
    if (w.observedOnly && !observed[i]) {
      absent.add(id);
      continue;
    }
    // The object's own label wins over its pod template's: labelling a Deployment re-pins it without
    // rolling out its pods, so that label is the newer word.
    const pin = w.segmentLabel || w.labels[SEGMENT_LABEL];
    if (pin) {
      const name = slug(pin, PIN_NAME_MAX);
      fixed.set(id, { name, kind: 'pinned', key: name });
    } else if (isHub(i))
      fixed.set(id, { name: slug(`${w.namespace}-platform`), kind: 'platform', key: w.namespace });
    else if (!linked[i]) {
      // No edge to another workload: with no flow at all, unobserved; else its flows reach only peers
      // that are no workload (the world, the API server, a node) or itself, and it has no east-west edge.
      const what = observed[i] ? 'no-east-west' : 'unobserved';
      fixed.set(id, {
        name: slug(`${w.namespace}-${what}`),
        kind: 'isolated',
        key: `${w.namespace}/${what}`,
      });
    }
  }

  const g: LouvainGraph = new UndirectedGraph();
  for (const id of ids) if (!fixed.has(id) && !absent.has(id)) g.addNode(id);
  for (const key of Float64Array.from(pairWeight.keys()).sort()) {
    const a = ids[Math.floor(key / n)]!;
    const b = ids[key % n]!;
    if (g.hasNode(a) && g.hasNode(b)) g.addEdge(a, b, { weight: pairWeight.get(key)! });
  }
  pairWeight.clear();
  // Plus the workloads both are connected to: an edge inside a group of workloads that talk among
  // themselves shares many neighbours, one between groups few. Weights that differ by how embedded an
  // edge is give Louvain fewer ties to break by the order it visits nodes in, so that one connection
  // more or less moves few workloads; and they depend on the graph's shape alone, never on counts.
  const common: number[] = [];
  g.forEachEdge((_edge, _attr, a, b) => {
    const [small, large] = g.degree(a) <= g.degree(b) ? [a, b] : [b, a];
    let shared = 0;
    g.forEachNeighbor(small, (x) => {
      if (x !== large && g.hasEdge(x, large)) shared++;
    });
    common.push(shared);
  });
  let e = 0;
  g.updateEachEdgeAttributes((_edge, attr) => ({ weight: attr.weight + common[e++]! }));
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
    if (absent.has(id)) continue;
    const f = fixed.get(id);
    // By kind as well as name: a pin never joins a platform or isolated segment that bears its name.
    const key = f ? `f:${f.kind}:${f.key}` : `c:${communityOf.get(id)}`;
    let grp = groups.get(key);
    if (!grp)
      groups.set(
        key,
        (grp = { kind: f?.kind ?? 'community', members: [], ...(f ? { fixedName: f.name } : {}) }),
      );
    grp.members.push(id);
  }

  // Names: pinned names exactly as asked, reserved first; platform and unobserved segments as given
  // (per namespace); a community after its anchor, the member connected to the most other workloads
  // (ties to the first id): `<namespace>-<name>` of that workload. The anchor depends on the edges
  // around one workload, not on traffic counts nor on the rest of the community, so a community that
  // gains or loses a member, or a namespace that gains a second community, keeps its name. Unless a
  // previous run's name is kept (`previous`: see inheritNames): a connection more or less can move the
  // anchor to another member. Collisions get -2, -3: fixed names before communities, names kept before
  // the others, then communities in the order of their anchors' ids.
  const anchorOf = (members: readonly string[]): string => {
    let best = members[0]!;
    for (const m of members) {
      const d = degree[index.get(m)!]!;
      const bd = degree[index.get(best)!]!;
      if (d > bd || (d === bd && compareText(m, best) < 0)) best = m;
    }
    return best;
  };
  const named = [...groups.values()].map((grp) => {
    if (grp.fixedName)
      return { grp, order: `${grp.kind === 'pinned' ? 0 : 1}:${grp.fixedName}`, base: grp.fixedName };
    const anchor = workloads.get(anchorOf(grp.members))!;
    return { grp, order: `2:${anchor.id}`, base: slug(`${anchor.namespace}-${anchor.name}`) };
  });
  named.sort((a, b) => compareText(a.order, b.order));
  const used = new Set<string>();
  for (const { grp } of named) if (grp.kind === 'pinned') used.add(grp.fixedName!);
  // The fixed segments (they come first) are named before any community keeps a previous name.
  const fixedCount = named.findIndex(({ grp }) => grp.kind === 'community');
  const nameOf = new Map<object, string>();
  named.forEach(({ grp, base }, i) => {
    if (fixedCount >= 0 && i >= fixedCount) return;
    let name = base;
    if (grp.kind !== 'pinned') for (let k = 2; used.has(name); k++) name = `${base}-${k}`;
    used.add(name);
    nameOf.set(grp, name);
  });
  const inherited = inheritNames(
    named.flatMap(({ grp }) => (grp.kind === 'community' ? [grp] : [])),
    workloads,
    opts.previous,
    used,
  );
  for (const name of inherited.values()) used.add(name);
  const segments: Segment[] = [];
  const membership: Record<string, string> = {};
  for (const { grp, base } of named) {
    let name = nameOf.get(grp) ?? inherited.get(grp);
    if (name === undefined) {
      name = base;
      for (let k = 2; used.has(name); k++) name = `${base}-${k}`;
      used.add(name);
    }
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
  return {
    segments,
    membership,
    modularity,
    resolution,
    seed,
    hubDegree,
    ...(opts.previous !== undefined ? { namesKept: [...inherited.values()].sort(compareText) } : {}),
  };
}

/**
 * A result cut down to the workloads `keep` takes: each segment with only those of its members (and
 * their namespaces), a segment left with none dropped, the membership of those alone. Edge counts,
 * modularity and the options are the whole run's. (A segmentation is computed over every workload the
 * cluster has, so that a community is found whole; what is shown of it is what is in view.)
 */
export function scopeSegments(r: SegmentResult, keep: (workload: string) => boolean): SegmentResult {
  const segments: Segment[] = [];
  for (const seg of r.segments) {
    const members = seg.members.filter(keep);
    if (members.length === 0) continue;
    segments.push(
      members.length === seg.members.length
        ? seg
        : {
            ...seg,
            members,
            namespaces: [...new Set(members.map((m) => m.slice(0, m.indexOf('/'))))].sort(),
          },
    );
  }
  const membership: Record<string, string> = {};
  for (const [w, seg] of Object.entries(r.membership)) if (keep(w)) membership[w] = seg;
  return { ...r, segments, membership };
}

/** The community segment of each workload of a result: what a later run takes as `previous`. */
export function communityMembership(r: Pick<SegmentResult, 'segments'>): Map<string, string> {
  const out = new Map<string, string>();
  for (const s of r.segments) if (s.kind === 'community') for (const m of s.members) out.set(m, s.id);
  return out;
}

/** A name a segment may have: a DNS label (what slug gives, with a collision's suffix after it). */
const DNS_LABEL = /^(?=.{1,63}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * The previous names the communities keep (see SegmentOptions.previous). A community may keep the name
 * its members were mostly in (more than half of those that had one); each name goes to one community,
 * the one that kept the most of its members (ties: the smaller name, then the community whose first
 * member comes first), and never to one a fixed segment (pinned, platform, unobserved, no-east-west) holds now
 * (`used`). A name is only kept whole: the others are named after their anchors, around these.
 */
function inheritNames<G extends { members: string[] }>(
  communities: readonly G[],
  workloads: ReadonlyMap<string, Workload>,
  previous: ReadonlyMap<string, string> | undefined,
  used: ReadonlySet<string>,
): Map<G, string> {
  const out = new Map<G, string>();
  if (previous === undefined || previous.size === 0) return out;
  const namespaceNames = new Set<string>();
  for (const w of workloads.values())
    namespaceNames
      .add(slug(`${w.namespace}-platform`))
      .add(slug(`${w.namespace}-unobserved`))
      .add(slug(`${w.namespace}-no-east-west`));
  const candidates: { grp: G; name: string; kept: number }[] = [];
  for (const grp of communities) {
    const counts = new Map<string, number>();
    let known = 0;
    for (const m of grp.members) {
      const name = previous.get(m);
      if (name === undefined || name === '') continue;
      known++;
      counts.set(name, (counts.get(name) ?? 0) + 1);
    }
    for (const [name, kept] of counts)
      if (kept * 2 > known && !used.has(name) && !namespaceNames.has(name) && DNS_LABEL.test(name))
        candidates.push({ grp, name, kept });
  }
  candidates.sort(
    (a, b) =>
      b.kept - a.kept || compareText(a.name, b.name) || compareText(a.grp.members[0]!, b.grp.members[0]!),
  );
  const taken = new Set<string>();
  for (const c of candidates) {
    if (taken.has(c.name) || out.has(c.grp)) continue;
    taken.add(c.name);
    out.set(c.grp, c.name);
  }
  return out;
}
