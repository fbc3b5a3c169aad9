/**
 * Public shapes of the NetworkPolicy semantics engine: queries, endpoints, options and verdicts.
 */
import type { Addr } from './ip.ts';

export type L4Protocol = 'TCP' | 'UDP' | 'SCTP';
export const PROTOCOLS: readonly L4Protocol[] = ['TCP', 'UDP', 'SCTP'];

export interface PortSpec {
  name?: string;
  port: number;
  protocol?: L4Protocol;
}

/**
 * One end of a connection.
 * - `{namespace, pod}`: a concrete pod of the snapshot.
 * - `{namespace, labels, namedPorts?, ip?}`: any pod with these labels in that namespace (an equivalence
 *   class, e.g. the pods of one workload built from its pod template). `namedPorts` are its container
 *   ports, used to resolve named ports; `ip` is optional and only used for ipBlock matching.
 * - `{ip}`: an address. When it belongs to a pod (or node) of the snapshot it stands for that pod (node).
 */
export type Endpoint =
  | { namespace: string; pod: string }
  | {
      namespace: string;
      labels: Readonly<Record<string, string>>;
      namedPorts?: readonly { name?: string; port: number; protocol?: L4Protocol }[];
      ip?: string;
      /** Display name, e.g. `shop/Deployment/cart`. */
      name?: string;
    }
  | { ip: string };

export interface Query {
  from: Endpoint;
  to: Endpoint;
  /** Destination port number, or a container port name resolved on the destination pod. */
  port: number | string;
  /** Default TCP. */
  protocol?: L4Protocol;
}

export interface EngineOptions {
  /**
   * Whether NetworkPolicy ipBlock peers match pod IPs. Kubernetes leaves this to the plugin; the
   * upstream e2e suite expects it to. Default true. (ANP/CNP `networks` peers always match pod IPs, as
   * their API says.)
   */
  ipBlockMatchesPods?: boolean;
  /**
   * A pod connecting to itself: always allowed ('allow', default), or evaluated like any other pair
   * ('evaluate'), except that ClusterNetworkPolicy never applies to it (the policy-api hairpin rule).
   */
  selfTraffic?: 'allow' | 'evaluate';
  /**
   * Traffic from the node a pod runs on to that pod: always allowed ('allow', default, per the API
   * documentation), or evaluated like any other address.
   */
  nodeTraffic?: 'allow' | 'evaluate';
  /**
   * Host-network pods: treated as their node ('node', default: not selectable by pod or namespace
   * selectors, never isolated, their traffic comes from the node IP), or like ordinary pods ('pod').
   */
  hostNetworkPods?: 'node' | 'pod';
}

export type ResolvedOptions = Required<EngineOptions>;

export const DEFAULT_OPTIONS: ResolvedOptions = {
  ipBlockMatchesPods: true,
  selfTraffic: 'allow',
  nodeTraffic: 'allow',
  hostNetworkPods: 'node',
};

/** Internal, resolved form of an endpoint. */
export interface PodEnd {
  kind: 'pod';
  /** `ns/pod` for a concrete pod, `ns/{labels}` for a class; unique per equivalence class. */
  key: string;
  display: string;
  namespace: string;
  labels: Readonly<Record<string, string>>;
  nsLabels: Readonly<Record<string, string>>;
  ports: readonly { name?: string; port: number; protocol: L4Protocol }[];
  ip?: Addr;
  node?: string;
  /** Set for a concrete pod (so that self-traffic can be recognised). */
  podName?: string;
  /**
   * The workload `ns/Kind/name` a concrete pod is named after, its root owner as identity gives it
   * (`rootOwner`: a Deployment for its ReplicaSets' pods, a CronJob for its Jobs', the pod itself when it
   * has no owner). Unset for a class.
   */
  owner?: string;
  /** Engine-internal memo of policy selection (owner engine and its result); never set by callers. */
  memo?: { owner: object; value: unknown };
  /** A host-network pod kept as a pod (hostNetworkPods=pod); never a subject or pod peer of ANP/CNP. */
  hostNetwork?: boolean;
}

export interface AddrEnd {
  kind: 'ip';
  key: string;
  display: string;
  ip: Addr;
  /** Node whose address this is, if any. */
  node?: string;
  nodeLabels?: Readonly<Record<string, string>>;
}

export type ResolvedEnd = PodEnd | AddrEnd;

export type Tier = 'admin' | 'networkpolicy' | 'baseline' | 'default' | 'exception' | 'not-a-pod';

export interface DirectionVerdict {
  direction: 'egress' | 'ingress';
  allowed: boolean;
  /** Which tier decided. `not-a-pod`: this end is not a pod, nothing to check; `exception`: a fixed rule. */
  tier: Tier;
  /** The policy that decided (for admin/networkpolicy/baseline), `ns/name` or `Kind/name`. */
  policy?: string;
  /** The rule that decided, e.g. `ingress[0]`, with its name for ANP/CNP rules. */
  rule?: string;
  /** For ANP/CNP decisions: Allow/Accept, Deny or Pass chain. */
  action?: string;
  /** Policies of every tier that select this end for this direction. */
  selecting: string[];
  /** Policies passed through with a Pass action before the decision. */
  passedBy?: string[];
  reason: string;
}

export interface Verdict {
  allowed: boolean;
  reason: string;
  /** Policies selecting the source for egress, then the destination for ingress (no duplicates). */
  policies: string[];
  egress: DirectionVerdict;
  ingress: DirectionVerdict;
  /** The tier that produced the final answer (the denying side when denied). */
  tier: Tier;
  /** Implementation-defined options that applied to this answer. */
  notes: string[];
  from: string;
  to: string;
  port: number;
  protocol: L4Protocol;
}
