/** Builds the service graph (plain JSON and graphology) from aggregated edges and identity. */
import { MultiDirectedGraph } from 'graphology';
import type { Identity } from '../identity/index.ts';
import type { Peer } from '../identity/types.ts';
import { NodeFlowCounter } from './counts.ts';
import type { EdgeRecord, GraphEdge, GraphNode, ServiceGraph } from './types.ts';
import { compareText } from '../model/order.ts';

export interface BuildGraphInput {
  identity: Identity;
  /** Iterated once by buildServiceGraph; see streamServiceGraph. */
  edges: Iterable<EdgeRecord>;
  peers: Map<string, Peer>;
  names: Map<string, Set<string>>;
}

export function edgeId(e: { src: string; dst: string; port: number; protocol: string }): string {
  return `${e.src}->${e.dst}:${e.port}/${e.protocol}`;
}

export function buildServiceGraph(input: BuildGraphInput): ServiceGraph {
  // One pass over the records: a one-shot iterable is enough here.
  const nodes = graphNodes(input);
  const edges: GraphEdge[] = [];
  for (const e of input.edges) {
    nodes.count(e);
    edges.push(toGraphEdge(e));
  }
  return { nodes: nodes.sorted(), edges };
}

/**
 * A service graph whose edges are made as they are iterated (each iteration afresh): what `microseg
 * graph` writes, without every edge held at once.
 */
export interface StreamedGraph {
  nodes: GraphNode[];
  edges: Iterable<GraphEdge>;
}

/**
 * buildServiceGraph with edges made from the records as they are iterated. The records are iterated
 * once here (for the nodes) and once per iteration of the edges, so they must iterate afresh each time
 * (as `Aggregator.sortedEdges()` does), not be a one-shot generator.
 */
export function streamServiceGraph(input: BuildGraphInput): StreamedGraph {
  const records = input.edges;
  const nodes = graphNodes(input);
  for (const e of records) nodes.count(e);
  return {
    nodes: nodes.sorted(),
    edges: {
      *[Symbol.iterator]() {
        for (const e of records) yield toGraphEdge(e);
      },
    },
  };
}

/**
 * The nodes of the edges' ends as the edges are counted, with the flows in and out of each, each flow
 * once per node (a connection to a Service once for its client, once for each backend).
 */
function graphNodes(input: Omit<BuildGraphInput, 'edges'>): {
  count(e: EdgeRecord): void;
  /** The nodes, sorted by id. */
  sorted(): GraphNode[];
} {
  const nodes = new Map<string, GraphNode>();
  const node = (id: string): GraphNode => {
    let n = nodes.get(id);
    if (n) return n;
    const w = input.identity.workloads.get(id);
    const p = input.peers.get(id);
    if (w) {
      n = {
        id,
        kind: 'workload',
        name: w.name,
        namespace: w.namespace,
        workloadKind: w.kind,
        labels: w.labels,
        flowsIn: 0,
        flowsOut: 0,
      };
      if (w.roles.length > 0) n.roles = [...w.roles];
    } else {
      const names = [...(input.names.get(id) ?? [])].sort();
      n = {
        id,
        kind: p?.kind ?? 'unknown',
        name: names[0] ?? p?.ip ?? id,
        flowsIn: 0,
        flowsOut: 0,
      };
      if (p?.ip) n.ip = p.ip;
      if (names.length > 0) n.names = names;
      // The ClusterIP of a Service with no backend, also for a peer rebuilt from its id.
      const service =
        p?.service ??
        (p?.kind === 'private' && p.ip !== undefined
          ? input.identity.unbackedClusterIPs.get(p.ip)
          : undefined);
      if (service !== undefined) n.service = service;
    }
    nodes.set(id, n);
    return n;
  };
  const flows = new NodeFlowCounter();
  return {
    count(e) {
      flows.add(node(e.src), node(e.dst), e);
    },
    sorted: () => {
      flows.settle();
      return [...nodes.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    },
  };
}

function toGraphEdge(e: EdgeRecord): GraphEdge {
  // The times are dates a Date holds: every importer checks that at the edge (see Flow.time).
  const ge: GraphEdge = {
    id: edgeId(e),
    source: e.src,
    target: e.dst,
    protocol: e.protocol,
    port: e.port,
    count: e.count,
    firstSeen: new Date(e.firstSeen).toISOString(),
    lastSeen: new Date(e.lastSeen).toISOString(),
    verdicts: sortKeys(e.verdicts),
  };
  if (e.dropReasons) ge.dropReasons = sortKeys(e.dropReasons);
  if (e.shared) ge.shared = sortKeys(e.shared);
  return ge;
}

function sum(values: number[]): number {
  let n = 0;
  for (const v of values) n += v;
  return n;
}

/** A copy of a map with its keys in sorted order (UTF-16 code units: the same in every locale). */
export function sortKeys<T>(o: Readonly<Partial<Record<string, T>>>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const k of Object.keys(o).sort()) out[k] = o[k]!;
  return out;
}

/** The graph as a graphology multi-graph: node and edge attributes are the JSON records. */
export function toGraphology(g: ServiceGraph): MultiDirectedGraph<GraphNode, GraphEdge> {
  const graph = new MultiDirectedGraph<GraphNode, GraphEdge>({ allowSelfLoops: true });
  for (const n of g.nodes) graph.addNode(n.id, n);
  for (const e of g.edges) graph.addDirectedEdgeWithKey(e.id, e.source, e.target, e);
  return graph;
}

/** Graphviz DOT, nodes grouped by segment when known. */
export function toDot(g: ServiceGraph): string {
  return [...dotPieces(g)].join('');
}

/** `toDot(g)` a line at a time, so that a large graph's text need not be held whole. */
export function* dotPieces(g: {
  nodes: readonly GraphNode[];
  edges: Iterable<GraphEdge>;
}): Generator<string> {
  const q = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  yield 'digraph microseg {\n  rankdir=LR;\n  node [shape=box, style=rounded];\n';
  const bySegment = new Map<string, GraphNode[]>();
  for (const n of g.nodes) {
    const s = n.segment ?? '';
    let members = bySegment.get(s);
    if (!members) bySegment.set(s, (members = []));
    members.push(n);
  }
  const shape = (n: GraphNode) => (n.kind === 'workload' ? '' : ', shape=ellipse, style=dashed');
  const label = (n: GraphNode) => (n.namespace ? `${n.namespace}/${n.name}` : n.name);
  for (const [seg, members] of [...bySegment.entries()].sort(([a], [b]) => compareText(a, b))) {
    const indent = seg ? '    ' : '  ';
    if (seg) yield `  subgraph ${q(`cluster_${seg}`)} {\n    label=${q(seg)};\n`;
    for (const n of members) yield `${indent}${q(n.id)} [label=${q(label(n))}${shape(n)}];\n`;
    if (seg) yield '  }\n';
  }
  for (const e of g.edges) {
    // A connection to a Service with several backends is on the edge to each: said so in the label.
    const shared = e.shared ? `, ${sum(Object.values(e.shared))} shared` : '';
    yield `  ${q(e.source)} -> ${q(e.target)} [label=${q(`${e.port}/${e.protocol} (${e.count}${shared})`)}];\n`;
  }
  yield '}\n';
}
