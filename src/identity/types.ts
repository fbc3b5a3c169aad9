import type { LabelSelector } from '../model/k8s.ts';

/**
 * The kinds a workload can have: the root owner of its pods. Two are custom resources microseg knows
 * (CUSTOM_WORKLOAD_KINDS in identity): an Argo Rollout (its ReplicaSets' pods) and an OpenKruise CloneSet
 * (its own pods).
 */
/**
 * Every kind of workload identity names, in the order messages list them (a collector's kind names, the
 * what-if commands' and an Isolation's workload kinds).
 */
export const WORKLOAD_KINDS = [
  'Deployment',
  'StatefulSet',
  'DaemonSet',
  'ReplicaSet',
  'Job',
  'CronJob',
  'Pod',
  'Rollout',
  'CloneSet',
] as const;

/** A kind of workload microseg knows by name (WORKLOAD_KINDS). */
export type KnownWorkloadKind = (typeof WORKLOAD_KINDS)[number];

/**
 * The kind of a workload: one microseg knows (KnownWorkloadKind), or the kind of another custom resource
 * that is the controller of its pods (an operator's: CloudNativePG's `Cluster`, Strimzi's
 * `StrimziPodSet`), which `Workload.customResource` then describes.
 */
export type WorkloadKind = KnownWorkloadKind | (string & Record<never, never>);

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
   * Label keys (sorted) that the workload's pods in the snapshot do not all carry as `labels` has them: a
   * key of `labels` some pod lacks or gives another value (a pod of an older revision), one some pod
   * carries that `labels` lacks (added by a webhook or by hand), or a generated key (GENERATED_LABELS)
   * some pods carry and others lack (Job pods made before and after a Kubernetes upgrade). Absent when
   * every pod carries exactly `labels` and the same generated keys. A selector that tells workloads apart
   * never rests on these.
   */
  varyingLabels?: string[];
  /**
   * The generated label keys (GENERATED_LABELS, sorted) every pod of the workload in the snapshot
   * carries: `pod-template-hash` for a Deployment's, `job-name` for a Job's, ... Their values differ per
   * pod, revision or run and are never used; a key's presence tells the pods of a kind of workload
   * (KIND_LABELS) from the pods of others. Absent when it has no pod in the snapshot or they share none.
   */
  generatedLabels?: string[];
  /**
   * The `microseg.dev/segment` label on the workload object's own metadata (a Deployment's, not its pod
   * template's), when it has one: it pins the workload to a segment as the template's label does.
   */
  segmentLabel?: string;
  /**
   * Named container ports that the workload's template and every one of its pods in the snapshot name
   * alike (same name, number and protocol): a rule or a Service's targetPort that uses the name reaches
   * every pod. A port that pods of two revisions name differently is left out.
   */
  namedPorts: NamedPort[];
  /** Pod names in the snapshot (sorted). */
  pods: string[];
  hostNetwork: boolean;
  /**
   * For host-network workloads: the addresses of the nodes their pods run on (normalised, sorted), every
   * one of each node a connection with a pod shows: a pod's `status.podIPs`, `status.hostIP` and
   * `status.hostIPs` and the `InternalIP` addresses of its Node object (`spec.nodeName`), as a pod may
   * list one family while its node has both; never an `ExternalIP` (nor a Hostname given as an address):
   * the policy stage writes these in ipBlocks, and the proof and the controller's audit check them.
   */
  hostIPs?: string[];
  /** Special roles found in the snapshot. */
  roles: WorkloadRole[];
  /** True when the workload was not in the snapshot and was reconstructed from flow metadata. */
  observedOnly?: boolean;
  /**
   * For a workload whose kind is a custom resource microseg does not know (not a KnownWorkloadKind), the
   * controller owner reference of its pods: its `apiVersion` (`postgresql.cnpg.io/v1`). Its pods are
   * one workload, selected by the labels they all share.
   */
  customResource?: { apiVersion: string };
}

export type WorkloadRole = 'cluster-dns' | 'ingress-controller' | 'load-balanced';

/**
 * `service` is a Service's ClusterIP: connections to it reach the Service's backends, which
 * `Identity.serviceBackends` lists; graphs and policies are made of those, never of the Service.
 * `selector` is alike: a flow endpoint with no pod or address whose selector (or labels) selects the
 * pods of several workloads, which `Identity.serviceBackends` lists.
 */
export type PeerKind =
  'workload' | 'node' | 'kube-apiserver' | 'world' | 'private' | 'unknown' | 'service' | 'selector';

/** One end of a connection after identity resolution. */
export interface Peer {
  /**
   * Stable key: the workload id for workloads; `node:<ip>`, `kube-apiserver`, `world:<ip>`,
   * `private:<ip>`, `unknown:<ip>` (an address that belonged to a pod gone from the snapshot),
   * `service:<namespace>/<name>` (a Service's ClusterIP), `selector:<what it selects>` or `unknown`
   * otherwise.
   */
  id: string;
  kind: PeerKind;
  /** The IP, for non-workload peers. */
  ip?: string;
  /**
   * For a `private` peer that is the ClusterIP of a Service with no backend in the snapshot: that Service,
   * `namespace/name`. No rule can admit a connection to it (policies see it only once translated).
   */
  service?: string;
}

/** Counters of how endpoints were resolved, for the report. */
export interface IdentityStats {
  /**
   * Endpoints attributed by the pod they name: a pod of the snapshot, or, for a pod gone from it, the one
   * workload of the snapshot its name is shaped after (`<deployment>-<hash>-<suffix>`, `<sts>-<n>`, ...).
   */
  byPodName: number;
  byIP: number;
  byServiceIP: number;
  /**
   * Endpoints attributed by the workload the collector named (Hubble's `workloads`, the generic
   * `workload`, a Kubescape object's workload): pods gone from the snapshot, endpoints with no pod or address.
   */
  byHubbleWorkload: number;
  /**
   * Endpoints attributed by labels: pods gone from the snapshot whose labels match one workload's
   * selector; endpoints with no pod or address whose selector (or labels) selects the pods of workloads.
   */
  byLabels: number;
  /** Address-only flows attributed through an address→pod binding learnt from an earlier flow. */
  byLearntIP: number;
  ipReused: number;
  unattributed: number;
  reserved: Partial<Record<PeerKind, number>>;
}
