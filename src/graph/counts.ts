/**
 * Counting flows once each over edges. A connection to a Service's ClusterIP is folded into the edge to
 * each backend it may have reached, so that each edge counts it; every such edge names the connection
 * in `shared` (see EdgeEvidence.shared). Summing edge counts would count it once per backend. Here each
 * edge gives its own flows (its count less what it shares), and each shared connection gives, once, the
 * most flows one edge of the set gives it: every edge it was folded into holds the same flows of it,
 * unless the Service's backends changed while they were learned (the controller's identity follows the
 * cluster), when the largest is a lower bound.
 */
import type { GraphNode } from './types.ts';

/** What counting needs of an edge (an EdgeRecord or a GraphEdge). */
export interface CountedEdge {
  count: number;
  shared?: Record<string, number>;
}

/** The flows of a set of edges, each once. */
export class FlowCount {
  /** Flows no other edge holds. */
  #own = 0;
  /** Each shared connection: the most flows one edge of the set gives it. */
  #shared: Map<string, number> | undefined;

  add(e: CountedEdge): void {
    const shared = e.shared;
    if (shared === undefined) {
      this.#own += e.count;
      return;
    }
    let own = e.count;
    const most = (this.#shared ??= new Map());
    for (const [key, n] of Object.entries(shared)) {
      own -= n;
      if (n > (most.get(key) ?? 0)) most.set(key, n);
    }
    this.#own += own;
  }

  /** Flows, each once. */
  get flows(): number {
    return this.#own + this.shared;
  }

  /** How many of `flows` are connections to a Service that the edges to several of its backends hold. */
  get shared(): number {
    let n = 0;
    if (this.#shared !== undefined) for (const v of this.#shared.values()) n += v;
    return n;
  }
}

/** The flows of `edges`, each once. */
export function countFlows(edges: Iterable<CountedEdge>): number {
  const c = new FlowCount();
  for (const e of edges) c.add(e);
  return c.flows;
}

/**
 * Adds edges' flows to the flows out of their sources and into their destinations (`flowsOut`,
 * `flowsIn`), each flow once per node: an edge that shares none is added at once; the others are
 * counted per node and added by `settle`.
 */
export class NodeFlowCounter {
  readonly #out = new Map<GraphNode, FlowCount>();
  readonly #in = new Map<GraphNode, FlowCount>();

  add(src: GraphNode, dst: GraphNode, e: CountedEdge): void {
    if (e.shared === undefined) {
      src.flowsOut += e.count;
      dst.flowsIn += e.count;
      return;
    }
    counter(this.#out, src).add(e);
    counter(this.#in, dst).add(e);
  }

  /** Adds what the edges that share flows give each node; call once every edge is added. */
  settle(): void {
    for (const [n, c] of this.#out) n.flowsOut += c.flows;
    for (const [n, c] of this.#in) n.flowsIn += c.flows;
    this.#out.clear();
    this.#in.clear();
  }
}

function counter(m: Map<GraphNode, FlowCount>, n: GraphNode): FlowCount {
  let c = m.get(n);
  if (c === undefined) m.set(n, (c = new FlowCount()));
  return c;
}
