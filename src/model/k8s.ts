/**
 * Plain shapes of the Kubernetes objects microseg reads. Only the fields the core uses are named; every
 * object keeps whatever else it carried. These are data, not client classes: the core never imports a
 * Kubernetes client.
 */

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  creationTimestamp?: string;
  deletionTimestamp?: string;
  resourceVersion?: string;
  generation?: number;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid?: string;
  controller?: boolean;
}

export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

export interface KObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
}

export interface Namespace extends KObject {
  kind: 'Namespace';
}

export interface ContainerPort {
  name?: string;
  containerPort: number;
  protocol?: string;
  hostPort?: number;
}

export interface Container {
  name: string;
  image?: string;
  ports?: ContainerPort[];
}

export interface PodSpec {
  nodeName?: string;
  hostNetwork?: boolean;
  containers: Container[];
  initContainers?: Container[];
  serviceAccountName?: string;
}

export interface PodIP {
  ip: string;
}

export interface Pod extends KObject {
  kind: 'Pod';
  spec: PodSpec;
  status?: {
    phase?: string;
    podIP?: string;
    podIPs?: PodIP[];
    hostIP?: string;
    /** The node's addresses, one per family on a dual-stack node (`hostIP` is the first). */
    hostIPs?: PodIP[];
    startTime?: string;
  };
}

export interface PodTemplate {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: PodSpec;
}

/** Deployment, ReplicaSet, StatefulSet, DaemonSet, Job: a selector and a pod template. */
export interface WorkloadObject extends KObject {
  kind: 'Deployment' | 'ReplicaSet' | 'StatefulSet' | 'DaemonSet' | 'Job';
  spec: { selector?: LabelSelector; template?: PodTemplate };
}

export interface CronJob extends KObject {
  kind: 'CronJob';
  spec: {
    schedule?: string;
    /** The IANA time zone of `schedule`'s times. */
    timeZone?: string;
    suspend?: boolean;
    jobTemplate?: { spec?: { template?: PodTemplate } };
  };
  /** When it last scheduled a run (RFC 3339), and the Jobs of its runs not finished yet. */
  status?: { lastScheduleTime?: string; lastSuccessfulTime?: string; active?: { name: string }[] };
}

export interface ServicePort {
  name?: string;
  port: number;
  targetPort?: number | string;
  protocol?: string;
  nodePort?: number;
}

export interface Service extends KObject {
  kind: 'Service';
  spec: {
    type?: string;
    selector?: Record<string, string>;
    clusterIP?: string;
    clusterIPs?: string[];
    ports?: ServicePort[];
    externalName?: string;
    /** Addresses outside the cluster that kube-proxy (or the CNI) sends to the Service, as the ClusterIP. */
    externalIPs?: string[];
  };
  /**
   * Kept by compaction only for the ingress entries with an `ip` (and their `ipMode`): the load
   * balancer's addresses, translated like the ClusterIP unless `ipMode` is `Proxy`.
   */
  status?: { loadBalancer?: { ingress?: { ip?: string; ipMode?: string; hostname?: string }[] } };
}

export interface EndpointSlice extends KObject {
  kind: 'EndpointSlice';
  addressType?: string;
  endpoints?: {
    addresses: string[];
    targetRef?: { kind?: string; name?: string; namespace?: string };
    nodeName?: string;
  }[];
  ports?: { name?: string; port?: number; protocol?: string }[];
}

/**
 * A core/v1 Endpoints object: one subset per set of ports, its ready and not-ready addresses. Not a kind the snapshot
 * models (it lands in `others`); identity reads the API server's (`default/kubernetes`), and a Service
 * without a selector's when no EndpointSlice of the Service names an address.
 */
export interface Endpoints extends KObject {
  kind: 'Endpoints';
  subsets?: {
    addresses?: { ip?: string }[];
    notReadyAddresses?: { ip?: string }[];
    ports?: { name?: string; port?: number; protocol?: string }[];
  }[];
}

export interface IPBlock {
  cidr: string;
  except?: string[];
}

export interface NetworkPolicyPeer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: IPBlock;
}

export interface NetworkPolicyPort {
  protocol?: string;
  port?: number | string;
  endPort?: number;
}

export interface NetworkPolicyIngressRule {
  from?: NetworkPolicyPeer[];
  ports?: NetworkPolicyPort[];
}

export interface NetworkPolicyEgressRule {
  to?: NetworkPolicyPeer[];
  ports?: NetworkPolicyPort[];
}

export interface NetworkPolicySpec {
  podSelector: LabelSelector;
  policyTypes?: ('Ingress' | 'Egress')[];
  ingress?: NetworkPolicyIngressRule[];
  egress?: NetworkPolicyEgressRule[];
}

export interface NetworkPolicy extends KObject {
  kind: 'NetworkPolicy';
  spec: NetworkPolicySpec;
}

/** Any object of a kind the snapshot does not model (AdminNetworkPolicy, ClusterNetworkPolicy, ...). */
export type OtherObject = KObject & Record<string, unknown>;
