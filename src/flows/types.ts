import type { LabelSelector } from '../model/k8s.ts';

/**
 * The normalised flow record every input format is turned into. One record describes one connection
 * (or one aggregate of identical connections, see `count`) in the connection's direction: `src` is the
 * initiator and `dst` the responder, whatever packet direction the collector observed.
 */

export type Protocol = 'TCP' | 'UDP' | 'SCTP' | 'ICMPv4' | 'ICMPv6';

export type Verdict =
  'FORWARDED' | 'DROPPED' | 'ERROR' | 'AUDIT' | 'REDIRECTED' | 'TRACED' | 'TRANSLATED' | 'UNKNOWN';

/** Every verdict, in the order of Cilium's Verdict enum (a verdict's number is its index). */
export const VERDICTS: readonly Verdict[] = [
  'UNKNOWN',
  'FORWARDED',
  'DROPPED',
  'ERROR',
  'AUDIT',
  'REDIRECTED',
  'TRACED',
  'TRANSLATED',
];

/** Cilium reserved identities that name a non-pod peer. */
export type ReservedIdentity =
  | 'host'
  | 'remote-node'
  | 'world'
  | 'kube-apiserver'
  | 'health'
  | 'ingress'
  | 'unmanaged'
  | 'init'
  | 'unknown';

export interface FlowEndpoint {
  /** IP address as the collector saw it (IPv4 dotted or IPv6 text). */
  ip?: string;
  namespace?: string;
  /** Pod name when the collector knew it; it wins over IP lookup. */
  pod?: string;
  /** Workload as reported by the collector (Hubble `workloads`), used only when the snapshot lacks the pod. */
  workload?: { kind: string; name: string };
  /** Kubernetes labels of the endpoint as key=value, source prefixes (k8s:) stripped, reserved: removed. */
  labels?: string[];
  /** Reserved identity when the collector said the peer is not a pod. */
  reserved?: ReservedIdentity;
  /** DNS names associated with this IP (Hubble source_names/destination_names, DNS answers). */
  names?: string[];
  /** Service the traffic was addressed to, when the collector knew it. */
  service?: { namespace: string; name: string };
  /**
   * The endpoint is whichever pods a NetworkPolicy-style peer selects (a Kubescape selector neighbour):
   * the pods `podSelector` selects (absent: every pod) in the namespaces `namespaceSelector` selects, or,
   * without one, in `namespace`.
   */
  selector?: { podSelector?: LabelSelector; namespaceSelector?: LabelSelector };
}

export interface Flow {
  /**
   * Milliseconds since the epoch, never beyond what a Date holds (MAX_TIME_MS): the importers reject
   * other times as bad values, so the graph and reports can write every time out as a date.
   */
  time: number;
  src: FlowEndpoint;
  dst: FlowEndpoint;
  protocol: Protocol;
  /** Responder port for TCP/UDP/SCTP; ICMP type for ICMP. */
  port: number;
  /** Initiator's port, when known (used for de-duplication only). */
  srcPort?: number;
  verdict: Verdict;
  /** Drop reason name, for DROPPED flows. */
  dropReason?: string;
  /** For L7 DNS flows: the query name (trailing dot removed). */
  dnsQuery?: string;
  /** How many identical connections this record stands for (aggregating inputs); 1 when absent. */
  count?: number;
  /**
   * The record aggregates connections seen over a span whose moments the collector does not give
   * (Kubescape neighbours); `time` is the latest time it gives. An address in it is resolved to the pod
   * that held it at `time`, or, when no pod of the snapshot did, to the pod holding it as of the snapshot.
   */
  timeless?: true;
  /**
   * Set by the de-duplicator only: this record is an observation that came out of time order, of a
   * connection it had emitted already with this weaker verdict (forwarded at one node, dropped at
   * another, say). The connection is one: count it once, with this record's verdict in its place.
   */
  replaces?: Verdict;
  /** Input format the record came from. */
  input: 'hubble' | 'generic' | 'inspektor-gadget' | 'kubescape';
}
