/**
 * From the service graph to what the page draws: a deterministic layout that keeps segments together,
 * the graph merged to one edge per node pair, aggregation by segment for large graphs, and the details
 * of one node. Pure functions over plain data.
 */
import { isoSeconds } from '../model/time.ts';
import { UndirectedGraph } from 'graphology';
import forceAtlas2Module from 'graphology-layout-forceatlas2';
import { FlowCount } from '../graph/counts.ts';
import type { GraphEdge, GraphNode, ServiceGraph } from '../graph/types.ts';
import { scheduleTimeZone } from '../policy/cron.ts';
import { nextRunAfter } from '../policy/cronjobs.ts';
import type { Proposal } from '../policy/types.ts';
import { policiesToYaml } from '../policy/render.ts';
import type { SegmentResult } from '../segments/index.ts';
import { blockedFlowKey } from './types.ts';
import type {
  BlockedFlowView,
  CronJobRuns,
  CronJobView,
  EdgeEvidenceView,
  GraphView,
  NodeDetails,
  SegmentSummary,
  UnobservedView,
  ViewEdge,
  ViewNode,
} from './types.ts';

// CommonJS package: at run time the default import is the layout function itself (with `assign` and
// `inferSettings`); its declaration file describes it as an ES default export.
const forceAtlas2 = forceAtlas2Module as unknown as (typeof forceAtlas2Module)['default'];

export type Layout = Map<string, { x: number; y: number }>;

/** Above this many graph nodes, `view=auto` aggregates by segment. */
export const AGGREGATE_THRESHOLD = 1500;

const GOLDEN_ANGLE = Math.PI * (3 - Math.sqrt(5));

/**
 * Twelve distinguishable colours for segments (Tableau-like, readable on white). Segments past twelve
 * get a colour from a golden-angle walk around the hue wheel, so neighbours in the sorted order differ.
 */
const PALETTE = [
  '#4e79a7',
  '#f28e2b',
  '#59a14f',
  '#b07aa1',
  '#edc948',
  '#76b7b2',
  '#ff9da7',
  '#9c755f',
  '#e15759',
  '#86bc86',
  '#d37295',
  '#a0cbe8',
];

export function segmentColor(index: number): string {
  if (index < PALETTE.length) return PALETTE[index]!;
  const hue = Math.round((index * 137.508) % 360);
  return `hsl(${hue}, 55%, ${index % 2 ? 45 : 58}%)`;
}

/** Segment id → colour, by the segments' sorted order. */
export function segmentColors(segments: SegmentResult): Map<string, string> {
  const ids = segments.segments.map((s) => s.id).sort();
  return new Map(ids.map((id, i) => [id, segmentColor(i)]));
}

/** The group a node is laid out with: its segment, else its namespace, else its kind. */
function groupOf(n: GraphNode): string {
  if (n.kind === 'workload') return n.segment ? `s:${n.segment}` : `ns:${n.namespace ?? ''}`;
  return `k:${n.kind}`;
}

function round(v: number): number {
  return Math.round(v * 100) / 100;
}

type XY = { x: number; y: number };

/** Points on a sunflower (Vogel) spiral: evenly spread over a disc of radius ~1, deterministic. */
function sunflower(i: number, n: number): XY {
  const r = Math.sqrt((i + 0.5) / Math.max(1, n));
  return { x: r * Math.cos(i * GOLDEN_ANGLE), y: r * Math.sin(i * GOLDEN_ANGLE) };
}

/** ForceAtlas2 over a small graph from the given start positions; iterations scale down with size. */
function runForceAtlas2(
  g: UndirectedGraph<XY & { size?: number }, { weight: number }>,
  adjustSizes = false,
): void {
  const n = g.order;
  if (n < 2 || g.size === 0) return;
  const iterations = n <= 50 ? 150 : n <= 200 ? 60 : n <= 400 ? 30 : 6;
  forceAtlas2.assign(g, {
    iterations,
    getEdgeWeight: 'weight',
    settings: {
      ...forceAtlas2.inferSettings(g),
      barnesHutOptimize: n > 150,
      linLogMode: true,
      adjustSizes,
      gravity: 1,
    },
  });
}

/**
 * Lays the graph out in two levels, so that segments stay together and large graphs stay fast:
 * 1. groups (segments; namespaces for workloads without one; one group per kind of external peer) are
 *    laid out with ForceAtlas2 on the graph of connections between groups, each group a disc whose
 *    area grows with its members, then spread until no two discs overlap;
 * 2. inside each disc, its members are laid out with ForceAtlas2 on the connections among them.
 * No randomness (start positions are a sunflower spiral in sorted order): the same graph gives the
 * same positions.
 */
export function computeLayout(graph: ServiceGraph): Layout {
  const nodes = [...graph.nodes].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const groups = new Map<string, string[]>();
  const groupOfId = new Map<string, string>();
  for (const n of nodes) {
    const g = groupOf(n);
    let members = groups.get(g);
    if (!members) groups.set(g, (members = []));
    members.push(n.id);
    groupOfId.set(n.id, g);
  }
  const order = [...groups.entries()].sort((a, b) => b[1].length - a[1].length || (a[0] < b[0] ? -1 : 1));
  const radius = new Map(order.map(([gid, m]) => [gid, 4 + 6 * Math.sqrt(m.length)]));

  // Distinct undirected node pairs, split into pairs inside a group and counts between groups.
  const inner = new Map<string, Set<string>>();
  const between = new Map<string, number>();
  const pairs = new Set<string>();
  for (const e of graph.edges) {
    const ga = groupOfId.get(e.source);
    const gb = groupOfId.get(e.target);
    if (e.source === e.target || ga === undefined || gb === undefined) continue;
    const [a, b] = e.source < e.target ? [e.source, e.target] : [e.target, e.source];
    const key = `${a}\u0000${b}`;
    if (pairs.has(key)) continue;
    pairs.add(key);
    if (ga === gb) {
      let set = inner.get(ga);
      if (!set) inner.set(ga, (set = new Set()));
      set.add(key);
    } else {
      const gk = ga < gb ? `${ga}\u0000${gb}` : `${gb}\u0000${ga}`;
      between.set(gk, (between.get(gk) ?? 0) + 1);
    }
  }

  // Level 1: groups.
  const top = new UndirectedGraph<XY & { size?: number }, { weight: number }>();
  const spread = 3 * Math.sqrt(order.reduce((s, [gid]) => s + radius.get(gid)! ** 2, 0));
  order.forEach(([gid], i) => {
    const p = sunflower(i, order.length);
    top.addNode(gid, { x: p.x * spread, y: p.y * spread, size: radius.get(gid)! });
  });
  for (const key of [...between.keys()].sort()) {
    const [a, b] = key.split('\u0000') as [string, string];
    top.addEdge(a, b, { weight: Math.log2(1 + between.get(key)!) });
  }
  runForceAtlas2(top, true);
  const centres = order.map(([gid]) => ({ gid, ...top.getNodeAttributes(gid) }));
  // Spread until no two discs overlap (with a margin); a single factor keeps the shape.
  let factor = 1;
  for (let i = 0; i < centres.length; i++) {
    for (let j = i + 1; j < centres.length; j++) {
      const a = centres[i]!;
      const b = centres[j]!;
      const d = Math.hypot(a.x - b.x, a.y - b.y);
      const need = 1.15 * (radius.get(a.gid)! + radius.get(b.gid)!);
      factor = Math.max(factor, d > 0 ? need / d : need);
    }
  }
  if (!Number.isFinite(factor) || factor > 1e6) factor = 1;

  // Level 2: members inside each disc.
  const out: Layout = new Map();
  for (const { gid, x: cx0, y: cy0 } of centres) {
    const cx = cx0 * factor;
    const cy = cy0 * factor;
    const members = groups.get(gid)!;
    const r = radius.get(gid)!;
    if (members.length === 1) {
      out.set(members[0]!, { x: round(cx), y: round(cy) });
      continue;
    }
    const sub = new UndirectedGraph<XY, { weight: number }>();
    members.forEach((id, j) => sub.addNode(id, sunflower(j, members.length)));
    for (const key of [...(inner.get(gid) ?? [])].sort()) {
      const [a, b] = key.split('\u0000') as [string, string];
      sub.addEdge(a, b, { weight: 1 });
    }
    runForceAtlas2(sub);
    let mx = 0;
    let my = 0;
    sub.forEachNode((_id, p) => {
      mx += p.x;
      my += p.y;
    });
    mx /= members.length;
    my /= members.length;
    let far = 0;
    sub.forEachNode((_id, p) => {
      far = Math.max(far, Math.hypot(p.x - mx, p.y - my));
    });
    const k = far > 0 && Number.isFinite(far) ? r / far : 0;
    sub.forEachNode((id, p) => {
      const x = cx + (p.x - mx) * k;
      const y = cy + (p.y - my) * k;
      out.set(id, {
        x: Number.isFinite(x) ? round(x) : round(cx),
        y: Number.isFinite(y) ? round(y) : round(cy),
      });
    });
  }
  return out;
}

/**
 * Keeps a picture stable when the graph grows or shrinks (the controller's graph changes as flows
 * arrive): nodes already drawn keep their previous positions; a new node takes its position from the new
 * layout, shifted by how far its group moved between the two layouts, so it lands beside its segment.
 */
export function stabilizeLayout(previous: Layout, next: Layout, graph: ServiceGraph): Layout {
  const shift = new Map<string, { dx: number; dy: number; n: number }>();
  let all = { dx: 0, dy: 0, n: 0 };
  for (const node of graph.nodes) {
    const a = previous.get(node.id);
    const b = next.get(node.id);
    if (!a || !b) continue;
    const g = groupOf(node);
    const s = shift.get(g) ?? { dx: 0, dy: 0, n: 0 };
    shift.set(g, { dx: s.dx + a.x - b.x, dy: s.dy + a.y - b.y, n: s.n + 1 });
    all = { dx: all.dx + a.x - b.x, dy: all.dy + a.y - b.y, n: all.n + 1 };
  }
  if (all.n === 0) return next;
  const out: Layout = new Map();
  for (const node of graph.nodes) {
    const kept = previous.get(node.id);
    const b = next.get(node.id);
    if (kept) out.set(node.id, kept);
    else if (b) {
      const s = shift.get(groupOf(node)) ?? all;
      out.set(node.id, { x: round(b.x + s.dx / s.n), y: round(b.y + s.dy / s.n) });
    }
  }
  return out;
}

/** Display label of a graph node: workload name, or the peer's DNS name / IP. */
export function nodeLabel(n: GraphNode): string {
  if (n.kind === 'workload') return n.name;
  if (n.kind === 'kube-apiserver') return 'kube-apiserver';
  const dns = n.names?.[0];
  return dns ? `${dns} (${n.ip ?? n.name})` : n.name;
}

const GROUP_LABELS: Record<string, string> = {
  world: 'internet',
  private: 'private addresses',
  node: 'cluster nodes',
  unknown: 'unknown peers',
};

interface Merge {
  source: string;
  target: string;
  ports: Set<string>;
  /** The flows of its graph edges, each once. */
  flows: FlowCount;
  first: string;
  last: string;
  edges: number;
  forwarded: boolean;
}

function mergeEdges(edges: readonly GraphEdge[], mapId: (id: string) => string | undefined): ViewEdge[] {
  const merged = new Map<string, Merge>();
  for (const e of edges) {
    const s = mapId(e.source);
    const t = mapId(e.target);
    if (s === undefined || t === undefined || s === t) continue;
    const key = `${s}->${t}`;
    let m = merged.get(key);
    if (!m) {
      merged.set(
        key,
        (m = {
          source: s,
          target: t,
          ports: new Set(),
          flows: new FlowCount(),
          first: e.firstSeen,
          last: e.lastSeen,
          edges: 0,
          forwarded: false,
        }),
      );
    }
    m.ports.add(`${e.protocol}/${e.port}`);
    m.flows.add(e);
    m.edges++;
    if (e.firstSeen < m.first) m.first = e.firstSeen;
    if (e.lastSeen > m.last) m.last = e.lastSeen;
    if ((e.verdicts.FORWARDED ?? 0) > 0 || Object.keys(e.verdicts).length === 0) m.forwarded = true;
  }
  return [...merged.entries()]
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([id, m]) => {
      const shared = m.flows.shared;
      return {
        id,
        source: m.source,
        target: m.target,
        ports: [...m.ports].sort(portOrder),
        count: m.flows.flows,
        ...(shared > 0 ? { viaService: shared } : {}),
        firstSeen: m.first,
        lastSeen: m.last,
        edges: m.edges,
        ...(m.forwarded ? {} : { dropped: true }),
      };
    });
}

function portOrder(a: string, b: string): number {
  const [pa, na] = a.split('/') as [string, string];
  const [pb, nb] = b.split('/') as [string, string];
  return Number(na) - Number(nb) || (pa < pb ? -1 : pa > pb ? 1 : 0);
}

export interface GraphViewOptions {
  /** `auto` (default): `segments` above `threshold` nodes, else `full`. */
  view?: 'auto' | 'full' | 'segments';
  /** Segments to show in full inside the aggregated view. */
  expand?: readonly string[];
  threshold?: number;
  /** Would-be-blocked flows to mark on the edges (they add an edge when the graph has none there). */
  blocked?: readonly BlockedFlowView[];
  /** Its name, echoed in the view. */
  audit?: string;
  /** Isolated workload ids, marked on their nodes. */
  isolated?: ReadonlySet<string>;
  /** Workload ids with an isolation in force that isolates no pod yet (none of `isolated`). */
  isolationPending?: ReadonlySet<string>;
  /** How many workloads in scope no flow was observed for (`unobservedWorkloads`), for the totals. */
  unobserved?: number;
}

/** Marks would-be-blocked flows and isolated workloads on a built view. */
function annotate(
  out: GraphView,
  mapId: (id: string) => string | undefined,
  opts: GraphViewOptions,
): GraphView {
  if (opts.blocked) {
    const edges = new Map(out.edges.map((e) => [e.id, e]));
    for (const b of opts.blocked) {
      const s = mapId(b.source);
      const t = mapId(b.target);
      if (s === undefined || t === undefined || s === t) continue;
      const id = `${s}->${t}`;
      let e = edges.get(id);
      if (!e) {
        e = {
          id,
          source: s,
          target: t,
          ports: [],
          count: 0,
          firstSeen: b.firstSeen ?? '',
          lastSeen: b.lastSeen ?? '',
          edges: 0,
        };
        edges.set(id, e);
        out.edges.push(e);
      }
      const port = `${b.protocol}/${b.port}`;
      if (!e.ports.includes(port)) e.ports = [...e.ports, port].sort(portOrder);
      e.blocked = (e.blocked ?? 0) + b.count;
      e.blockedFlows = [...(e.blockedFlows ?? []), blockedFlowKey(b)].sort();
    }
    out.edges.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    if (opts.audit !== undefined) out.audit = opts.audit;
  }
  const mark = (ids: ReadonlySet<string> | undefined, key: 'isolated' | 'isolationPending') => {
    if (!ids?.size) return;
    const nodes = new Map(out.nodes.map((n) => [n.id, n]));
    for (const w of [...ids].sort()) {
      const d = mapId(w);
      const n = d === undefined ? undefined : nodes.get(d);
      if (n) n[key] = (n[key] ?? 0) + 1;
    }
  };
  mark(opts.isolated, 'isolated');
  mark(opts.isolationPending, 'isolationPending');
  return out;
}

/** What the caller asked of `buildGraphView` that cannot be: the API answers it `400`. */
export class GraphViewRequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GraphViewRequestError';
  }
}

/**
 * The graph as the page draws it. Throws `GraphViewRequestError` naming an unknown segment in `expand`;
 * any other error is a fault of the data, not of the request.
 */
export function buildGraphView(
  graph: ServiceGraph,
  segments: SegmentResult,
  layout: Layout,
  opts: GraphViewOptions = {},
): GraphView {
  const colors = segmentColors(segments);
  const segSummaries: SegmentSummary[] = segments.segments.map((s) => ({
    id: s.id,
    kind: s.kind,
    members: s.members.length,
    namespaces: s.namespaces,
    color: colors.get(s.id)!,
  }));
  const known = new Set(segments.segments.map((s) => s.id));
  for (const id of opts.expand ?? [])
    if (!known.has(id)) throw new GraphViewRequestError(`unknown segment "${id}"`);
  const threshold = opts.threshold ?? AGGREGATE_THRESHOLD;
  const requested = opts.view ?? 'auto';
  const view = requested === 'auto' ? (graph.nodes.length > threshold ? 'segments' : 'full') : requested;
  const expanded = view === 'segments' ? [...new Set(opts.expand ?? [])].sort() : [];
  const expandedSet = new Set(expanded);
  const namespaces = [...new Set(graph.nodes.flatMap((n) => (n.namespace ? [n.namespace] : [])))].sort();
  // Each flow once: a connection to a Service is on the edge to each of its backends.
  const flows = new FlowCount();
  for (const e of graph.edges) flows.add(e);
  const totals = {
    nodes: graph.nodes.length,
    edges: graph.edges.length,
    flows: flows.flows,
    unobserved: opts.unobserved ?? 0,
  };
  const pos = (id: string) => layout.get(id) ?? { x: 0, y: 0 };

  const plain = (n: GraphNode): ViewNode => ({
    id: n.id,
    kind: n.kind,
    label: nodeLabel(n),
    ...(n.namespace ? { namespace: n.namespace } : {}),
    ...(n.segment ? { segment: n.segment } : {}),
    ...(n.roles?.length ? { roles: n.roles } : {}),
    ...pos(n.id),
    flows: n.flowsIn + n.flowsOut,
  });

  const sortedNodes = [...graph.nodes].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  if (view === 'full') {
    const ids = new Set(graph.nodes.map((n) => n.id));
    const mapId = (id: string) => (ids.has(id) ? id : undefined);
    return annotate(
      {
        view,
        expanded,
        nodes: sortedNodes.map(plain),
        edges: mergeEdges(graph.edges, mapId),
        segments: segSummaries,
        namespaces,
        totals,
      },
      mapId,
      opts,
    );
  }

  // Aggregated: a workload shows as its segment unless the segment is expanded; non-workload peers
  // group by kind, except the API server, which stays itself.
  const displayOf = new Map<string, string>();
  const aggregates = new Map<
    string,
    { kind: string; label: string; segment?: string; members: number; flows: number; sx: number; sy: number }
  >();
  const nodesOut: ViewNode[] = [];
  for (const n of sortedNodes) {
    let agg: string | undefined;
    let kind = 'segment';
    let label = '';
    let segment: string | undefined;
    if (n.kind === 'workload' && n.segment && !expandedSet.has(n.segment)) {
      agg = `segment:${n.segment}`;
      label = n.segment;
      segment = n.segment;
    } else if (n.kind !== 'workload' && n.kind !== 'kube-apiserver') {
      agg = `group:${n.kind}`;
      kind = 'group';
      label = GROUP_LABELS[n.kind] ?? n.kind;
    }
    if (agg === undefined) {
      displayOf.set(n.id, n.id);
      nodesOut.push(plain(n));
      continue;
    }
    displayOf.set(n.id, agg);
    let a = aggregates.get(agg);
    if (!a)
      aggregates.set(
        agg,
        (a = { kind, label, members: 0, flows: 0, sx: 0, sy: 0, ...(segment ? { segment } : {}) }),
      );
    const p = pos(n.id);
    a.members++;
    a.flows += n.flowsIn + n.flowsOut;
    a.sx += p.x;
    a.sy += p.y;
  }
  for (const [id, a] of aggregates) {
    nodesOut.push({
      id,
      kind: a.kind,
      label: `${a.label} (${a.members})`,
      ...(a.segment ? { segment: a.segment } : {}),
      x: round(a.sx / a.members),
      y: round(a.sy / a.members),
      flows: a.flows,
      members: a.members,
    });
  }
  nodesOut.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const mapId = (id: string) => displayOf.get(id);
  return annotate(
    {
      view,
      expanded,
      nodes: nodesOut,
      edges: mergeEdges(graph.edges, mapId),
      segments: segSummaries,
      namespaces,
      totals,
    },
    mapId,
    opts,
  );
}

function evidence(e: GraphEdge, peer: GraphNode | undefined, peerId: string): EdgeEvidenceView {
  return {
    id: e.id,
    peer: peerId,
    peerLabel: peer ? nodeLabel(peer) : peerId,
    protocol: e.protocol,
    port: e.port,
    count: e.count,
    ...(e.shared ? { viaService: Object.values(e.shared).reduce((a, b) => a + b, 0) } : {}),
    firstSeen: e.firstSeen,
    lastSeen: e.lastSeen,
    verdicts: { ...e.verdicts },
  };
}

function unobservedDetails(
  graph: ServiceGraph,
  proposal: Proposal,
  id: string,
  unobserved: readonly string[],
): NodeDetails | undefined {
  if (!unobserved.includes(id)) return undefined;
  const w = unobservedWorkloads(graph, [id])[0];
  if (!w) return undefined;
  const policies = [...(proposal.byWorkload[id] ?? [])];
  return {
    id,
    kind: 'workload',
    label: w.label,
    namespace: w.namespace,
    unobserved: true,
    flowsIn: 0,
    flowsOut: 0,
    inbound: [],
    outbound: [],
    policies,
    policyYaml: policyYamlOf(proposal, policies),
  };
}

/** The proposed policies named (`namespace/name`), as multi-document YAML ('' for none). */
function policyYamlOf(proposal: Proposal, names: readonly string[]): string {
  const wanted = new Set(names);
  const selected = proposal.policies.filter((p) => wanted.has(`${p.metadata.namespace}/${p.metadata.name}`));
  return selected.length ? policiesToYaml(selected) : '';
}

function byPeerThenPort(a: EdgeEvidenceView, b: EdgeEvidenceView): number {
  return a.peer < b.peer ? -1 : a.peer > b.peer ? 1 : a.port - b.port || (a.protocol < b.protocol ? -1 : 1);
}

/**
 * The workloads in scope no flow was observed for (`unobserved`: ids, such as a proposal's
 * `unobserved`): no graph node stands for them, and only the default deny selects them. Each once, in
 * id order; a workload the graph has (another Segmentation observed it) is left out.
 */
export function unobservedWorkloads(graph: ServiceGraph, unobserved: readonly string[]): UnobservedView[] {
  const inGraph = new Set(graph.nodes.map((n) => n.id));
  const ids = [...new Set(unobserved)].filter((id) => !inGraph.has(id)).sort(compareIds);
  return ids.map((id) => {
    const [namespace, workloadKind] = id.split('/', 2) as [string, string];
    return { id, label: id.slice(namespace.length + workloadKind.length + 2), namespace, workloadKind };
  });
}

/** What the details of a CronJob say of its schedule and runs, at `now` (epoch ms). */
export function cronJobView(cj: CronJobRuns, now: number): CronJobView {
  const suspended = cj.spec?.suspend === true;
  const next = suspended ? undefined : nextRunAfter(cj, now);
  const time = (t: string | undefined) =>
    t && Number.isFinite(Date.parse(t)) ? isoSeconds(Date.parse(t)) : undefined;
  const lastRun = time(cj.status?.lastScheduleTime);
  const lastSuccess = time(cj.status?.lastSuccessfulTime);
  // A schedule's own TZ= or CRON_TZ= prefix names its zone when spec.timeZone does not.
  const zone = scheduleTimeZone(cj.spec?.schedule ?? '', cj.spec?.timeZone);
  return {
    ...(cj.spec?.schedule !== undefined ? { schedule: cj.spec.schedule } : {}),
    ...(zone !== undefined ? { timeZone: zone } : {}),
    ...(suspended ? { suspended: true as const } : {}),
    ...((cj.status?.active?.length ?? 0) > 0 ? { running: true as const } : {}),
    ...(lastRun ? { lastRun } : {}),
    ...(lastSuccess ? { lastSuccess } : {}),
    ...(next !== undefined ? { nextRun: isoSeconds(next) } : {}),
  };
}

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Everything the details panel shows for one node, or undefined when the graph has no such node. A
 * workload no flow was observed for (one of `unobserved`, see `unobservedWorkloads`) has details too: no
 * traffic, and the default deny that selects it.
 */
export function nodeDetails(
  graph: ServiceGraph,
  proposal: Proposal,
  id: string,
  unobserved: readonly string[] = proposal.unobserved,
): NodeDetails | undefined {
  const node = graph.nodes.find((n) => n.id === id);
  if (!node) return unobservedDetails(graph, proposal, id, unobserved);
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const inbound: EdgeEvidenceView[] = [];
  const outbound: EdgeEvidenceView[] = [];
  for (const e of graph.edges) {
    if (e.target === id) inbound.push(evidence(e, byId.get(e.source), e.source));
    if (e.source === id) outbound.push(evidence(e, byId.get(e.target), e.target));
  }
  inbound.sort(byPeerThenPort);
  outbound.sort(byPeerThenPort);
  const policies = [...(proposal.byWorkload[id] ?? [])];
  return {
    id,
    kind: node.kind,
    label: nodeLabel(node),
    ...(node.namespace ? { namespace: node.namespace } : {}),
    ...(node.segment ? { segment: node.segment } : {}),
    ...(node.roles?.length ? { roles: node.roles } : {}),
    ...(node.labels ? { labels: node.labels } : {}),
    ...(node.ip ? { ip: node.ip } : {}),
    ...(node.names?.length ? { names: node.names } : {}),
    flowsIn: node.flowsIn,
    flowsOut: node.flowsOut,
    inbound,
    outbound,
    policies,
    policyYaml: policyYamlOf(proposal, policies),
  };
}
