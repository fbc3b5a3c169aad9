import type { LabelSelector } from '../model/k8s.ts';

/** The kinds a workload can have: the root owner of its pods. */
export type WorkloadKind =
  'Deployment' | 'StatefulSet' | 'DaemonSet' | 'CronJob' | 'Job' | 'ReplicaSet' | 'Pod';

export interface NamedPort {
  name: string;
  port: number;
  protocol: string;
}

/** A workload: what policies select and what the graph's nodes stand for. */
export interface Workload {
  /** `namespace/Kind/name`, the stable key used everywhere (graph node id, evidence, names). */
  id: string;
  namespace: string;
  kind: WorkloadKind;
  name: string;
  /**
   * Selector for the workload's pods, from the owner's own selector (or template labels) with the labels
   * Kubernetes generates per pod or per revision removed. Empty when nothing stable is known.
   */
  selector: LabelSelector;
  /** Stable labels the workload's pods carry (template labels minus generated ones). */
  labels: Record<string, string>;
  /**
   * The `microseg.dev/segment` label on the workload object's own metadata (a Deployment's, not its pod
   * template's), when it has one: it pins the workload to a segment as the template's label does.
   */
  segmentLabel?: string;
  namedPorts: NamedPort[];
  /** Pod names in the snapshot (sorted). */
  pods: string[];
  hostNetwork: boolean;
  /** For host-network workloads: the node addresses their pods use. */
  hostIPs?: string[];
  /** Special roles found in the snapshot. */
  roles: WorkloadRole[];
  /** True when the workload was not in the snapshot and was reconstructed from flow metadata. */
  observedOnly?: boolean;
}

export type WorkloadRole = 'cluster-dns' | 'ingress-controller' | 'load-balanced';

export type PeerKind = 'workload' | 'node' | 'kube-apiserver' | 'world' | 'private' | 'unknown';

/** One end of a connection after identity resolution. */
export interface Peer {
  /**
   * Stable key: the workload id for workloads; `node:<ip>`, `kube-apiserver`, `world:<ip>`,
   * `private:<ip>`, `unknown:<ip>` (an address that belonged to a pod gone from the snapshot) or
   * `unknown` otherwise.
   */
  id: string;
  kind: PeerKind;
  /** The IP, for non-workload peers. */
  ip?: string;
}

/** Counters of how endpoints were resolved, for the report. */
export interface IdentityStats {
  byPodName: number;
  byIP: number;
  byServiceIP: number;
  byHubbleWorkload: number;
  /** Pods gone from the snapshot, attributed by matching their labels to one workload's selector. */
  byLabels: number;
  /** Address-only flows attributed through an address→pod binding learnt from an earlier flow. */
  byLearntIP: number;
  ipReused: number;
  unattributed: number;
  reserved: Partial<Record<PeerKind, number>>;
}
