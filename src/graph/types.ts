import type { Protocol, Verdict } from '../flows/types.ts';
import type { PeerKind, WorkloadKind, WorkloadRole } from '../identity/types.ts';

/** Evidence for one edge: every flow that contributed, summarised. */
export interface EdgeEvidence {
  /**
   * Flows folded into this edge. A connection to a Service's ClusterIP is folded into the edge to each
   * of its backends (it reached one of them, which one is not known), so it counts once on each.
   */
  count: number;
  /** Milliseconds since the epoch. */
  firstSeen: number;
  lastSeen: number;
  verdicts: Partial<Record<Verdict, number>>;
  dropReasons?: Record<string, number>;
  /**
   * The flows of `count` that other edges hold too, by the connection as it was observed
   * (`source->service:namespace/name:port/protocol`, the edge id it would have had): a connection to a
   * Service with several backends, or to a backend that takes it on several ports, is folded into
   * every edge it may have taken. Absent when none is. See `src/graph/counts.ts` for counting flows
   * once each.
   */
  shared?: Record<string, number>;
}

/** One edge: initiator → responder on one (protocol, port). */
export interface EdgeRecord extends EdgeEvidence {
  src: string;
  dst: string;
  protocol: Protocol;
  port: number;
}

export interface GraphNode {
  id: string;
  kind: PeerKind;
  /** Display name: the workload name, or the IP / host name of an external peer. */
  name: string;
  namespace?: string;
  workloadKind?: WorkloadKind;
  ip?: string;
  /** DNS names seen for this peer (sorted). */
  names?: string[];
  /**
   * For the ClusterIP of a Service with no backend in the snapshot (a `private` node): that Service,
   * `namespace/name`.
   */
  service?: string;
  roles?: WorkloadRole[];
  labels?: Record<string, string>;
  /**
   * Flows to this peer and from it, each once, whatever the number of edges it was folded into: a
   * connection to a Service counts once for its client and once for each backend it may have reached.
   */
  flowsIn: number;
  flowsOut: number;
  /** Segment id, once segments are computed. */
  segment?: string;
}

export interface GraphEdge {
  /** `src->dst:port/protocol` */
  id: string;
  source: string;
  target: string;
  protocol: Protocol;
  port: number;
  /** Flows folded into this edge: a connection to a Service counts once on the edge to each backend. */
  count: number;
  /** RFC 3339. */
  firstSeen: string;
  lastSeen: string;
  verdicts: Partial<Record<Verdict, number>>;
  dropReasons?: Record<string, number>;
  /** See EdgeEvidence.shared (keys sorted). */
  shared?: Record<string, number>;
}

/** The service graph as plain JSON: what `microseg graph` exports and the web page draws. */
export interface ServiceGraph {
  nodes: GraphNode[];
  edges: GraphEdge[];
}
