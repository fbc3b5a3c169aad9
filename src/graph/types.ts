import type { Protocol, Verdict } from '../flows/types.ts';
import type { PeerKind, WorkloadKind, WorkloadRole } from '../identity/types.ts';

/** Evidence for one edge: every flow that contributed, summarised. */
export interface EdgeEvidence {
  count: number;
  /** Milliseconds since the epoch. */
  firstSeen: number;
  lastSeen: number;
  verdicts: Partial<Record<Verdict, number>>;
  dropReasons?: Record<string, number>;
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
  roles?: WorkloadRole[];
  labels?: Record<string, string>;
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
  count: number;
  /** RFC 3339. */
  firstSeen: string;
  lastSeen: string;
  verdicts: Partial<Record<Verdict, number>>;
  dropReasons?: Record<string, number>;
}

/** The service graph as plain JSON: what `microseg graph` exports and the web page draws. */
export interface ServiceGraph {
  nodes: GraphNode[];
  edges: GraphEdge[];
}
