import type { NetworkPolicy } from '../model/k8s.ts';
import type { Protocol } from '../flows/types.ts';

export interface PolicyOptions {
  /**
   * Namespaces to write policies for. Default: every namespace holding an observed workload, except
   * kube-system, kube-public and kube-node-lease. One named here that holds no observed workload gets no
   * policy, not even a default deny, and a warning.
   */
  namespaces?: readonly string[];
  /**
   * Use the destination's named container port when it has one, where the rule selects the destination
   * by its pods (every ingress rule; egress rules to pods chosen by selectors, never to an ipBlock: a
   * port name is resolved on the destination pod). Default false.
   */
  namedPorts?: boolean;
  /**
   * Prefix length external (world) IPv4 peers are widened to; 32 keeps single addresses. IPv6 peers use
   * `externalPrefixV6` (default 128).
   */
  externalPrefix?: number;
  externalPrefixV6?: number;
  /**
   * Ingress from the internet to workloads behind a LoadBalancer/NodePort Service or to an ingress
   * controller: `any` allows 0.0.0.0/0, and ::/0 too in a cluster that has IPv6, each minus the pod
   * networks of its family, on the observed ports (clients cannot be enumerated);
   * `observed` allows only the client addresses seen. Default `any`.
   */
  worldIngress?: 'any' | 'observed';
  /** Also allow edges whose every observation was DROPPED. Default false. */
  includeDropped?: boolean;
  /** Write a default-deny policy per namespace. Default true. */
  defaultDeny?: boolean;
}

/** The flows behind one allowed (peer, port) of one rule. */
export interface RuleEvidence {
  policy: string;
  direction: 'ingress' | 'egress';
  /** The peer as a graph node id (`ns/Kind/name`, `world:1.2.3.4`, `kube-apiserver`, ...). */
  peer: string;
  protocol: Protocol;
  port: number | string;
  count: number;
  firstSeen: string;
  lastSeen: string;
  /** Graph edge ids. */
  edges: string[];
}

export interface Proposal {
  /** Sorted by namespace, then name; default-deny first in each namespace. */
  policies: NetworkPolicy[];
  /** Workload id → names of the policies that select it (ns/name). */
  byWorkload: Record<string, string[]>;
  evidence: RuleEvidence[];
  /** Edges that could not be turned into a rule, with why. */
  notExpressible: { edge: string; reason: string }[];
  /**
   * Workloads in scope that a policy could select but that no observed flow reaches or leaves (sorted
   * ids): only their namespace's default deny selects them, which blocks all their traffic once
   * enforced (a CronJob whose runs fell outside the flows' span, a workload idle through it). Empty
   * without a default deny (`defaultDeny: false`): no policy selects them then, and nothing is blocked.
   */
  unobserved: string[];
  namespaces: string[];
  warnings: string[];
}
