/**
 * Identity: maps every flow endpoint to a workload or a classified non-pod peer, using a cluster
 * snapshot. Pure: built from plain snapshot data; `resolve` is called once per flow endpoint on the hot
 * path, so lookups are memoised.
 */
import type { FlowEndpoint } from '../flows/types.ts';
import type {
  Container,
  CronJob,
  EndpointSlice,
  Endpoints,
  LabelSelector,
  ObjectMeta,
  OtherObject,
  Pod,
  PodTemplate,
  Service,
  WorkloadObject,
} from '../model/k8s.ts';
import { isEmptySelector, matchesSelector } from '../model/selectors.ts';
import type { ClusterSnapshot } from '../model/snapshot.ts';
import { compareDeletedServices, podIPs } from '../model/snapshot.ts';
import { nodeIPAddresses } from '../model/nodes.ts';
import { isIPv4, isIPv6 } from 'node:net';
import { ipv6Network, isPrivateIP, normaliseIP } from './ip.ts';
import type {
  IdentityStats,
  KnownWorkloadKind,
  NamedPort,
  Peer,
  Workload,
  WorkloadKind,
  WorkloadRole,
} from './types.ts';
import { WORKLOAD_KINDS } from './types.ts';
import { compareText, firstOf } from '../model/order.ts';

/** Label pinning a workload to a named segment, on the workload object or on its pod template. */
export const SEGMENT_LABEL = 'microseg.dev/segment';

/**
 * Label on a pod (set in its template) naming the workload it belongs to, whatever owns it: the pods that
 * carry it with one value are one workload of kind LABELLED_KIND (`ns/Workload/<value>`), selected by
 * that label alone. For what owner references cannot tell: the runs of a pipeline (each Tekton TaskRun,
 * each Argo Workflow a new object), a Knative Service's revisions (each a Deployment selected by its
 * revision's uid), an operator's pods of several roles to keep apart.
 */
export const WORKLOAD_LABEL = 'microseg.dev/workload';

/** The kind of the workloads WORKLOAD_LABEL names. */
export const LABELLED_KIND = 'Workload';

/**
 * Labels Kubernetes generates per pod, revision or run: never part of a workload's identity. With them
 * those the controllers of the custom workload kinds microseg knows (CUSTOM_WORKLOAD_KINDS) generate: an
 * Argo Rollout's per-revision hash; an OpenKruise CloneSet's per-pod instance id and the lifecycle state
 * it moves each pod through during an update.
 */
export const GENERATED_LABELS: ReadonlySet<string> = new Set([
  'pod-template-hash',
  'rollouts-pod-template-hash',
  'apps.kruise.io/cloneset-instance-id',
  'lifecycle.apps.kruise.io/state',
  'controller-revision-hash',
  'pod-template-generation',
  'statefulset.kubernetes.io/pod-name',
  'apps.kubernetes.io/pod-index',
  'controller-uid',
  'batch.kubernetes.io/controller-uid',
  'job-name',
  'batch.kubernetes.io/job-name',
  'batch.kubernetes.io/job-completion-index',
]);

const JOB_LABELS = [
  'batch.kubernetes.io/job-name',
  'job-name',
  'batch.kubernetes.io/controller-uid',
  'controller-uid',
] as const;

/**
 * Generated labels whose presence, not value, is intrinsic to the pods of a kind of workload: its
 * controller gives every pod it makes the key. Which of a Job's the pods carry depends on the Kubernetes
 * version (`job-name` and `controller-uid` before 1.27, both those and the `batch.kubernetes.io/` ones
 * after), so a key is relied on only where every pod of the snapshot carries it. A standalone
 * ReplicaSet and a bare pod have none. In order of preference: the most telling first.
 */
export const KIND_LABELS: Readonly<Record<KnownWorkloadKind, readonly string[]>> = {
  Job: JOB_LABELS,
  CronJob: JOB_LABELS,
  Deployment: ['pod-template-hash'],
  StatefulSet: [
    'statefulset.kubernetes.io/pod-name',
    'apps.kubernetes.io/pod-index',
    'controller-revision-hash',
  ],
  DaemonSet: ['pod-template-generation', 'controller-revision-hash'],
  ReplicaSet: [],
  Pod: [],
  Rollout: ['rollouts-pod-template-hash'],
  // OpenKruise writes both hashes on every pod of a CloneSet, as a Deployment's and a StatefulSet's are.
  CloneSet: ['apps.kruise.io/cloneset-instance-id', 'controller-revision-hash', 'pod-template-hash'],
};

/** The generated labels intrinsic to the pods of `kind` (KIND_LABELS); none for a kind microseg does not know. */
export function kindLabels(kind: WorkloadKind): readonly string[] {
  return Object.hasOwn(KIND_LABELS, kind) ? KIND_LABELS[kind as KnownWorkloadKind] : [];
}

/**
 * The custom resources microseg takes for workloads, by kind: the API group of each and the kind of what
 * it owns. An Argo Rollout owns a ReplicaSet per revision (`<rollout>-<hash>`, its pods labelled
 * `rollouts-pod-template-hash`), as a Deployment does; an OpenKruise CloneSet owns its pods directly.
 * Only these: the owner walk stops below any other kind of owner (see ownerRoot), since microseg cannot
 * tell whether another operator's objects keep their names across revisions, nor which labels it writes
 * per pod or per revision. An owner reference is taken for one of these by its kind, and by its group too
 * when it gives its apiVersion (compaction keeps it; one written without it is taken by its kind alone).
 */
export const CUSTOM_WORKLOAD_KINDS: ReadonlyMap<string, { group: string; owns: 'ReplicaSet' | 'Pod' }> =
  new Map([
    ['Rollout', { group: 'argoproj.io', owns: 'ReplicaSet' }],
    ['CloneSet', { group: 'apps.kruise.io', owns: 'Pod' }],
  ] as const);

/** Whether `ref` (an owner reference or an object) is the custom workload kind that owns a `child`. */
function isCustomOwner(ref: { kind: string; apiVersion?: string }, child: 'ReplicaSet' | 'Pod'): boolean {
  const known = CUSTOM_WORKLOAD_KINDS.get(ref.kind);
  if (known === undefined || known.owns !== child) return false;
  return typeof ref.apiVersion !== 'string' || ref.apiVersion.split('/')[0] === known.group;
}

/**
 * Whether `o`, an object of a snapshot's `others`, is one of the custom workload kinds microseg knows
 * (CUSTOM_WORKLOAD_KINDS) in that kind's API group: OpenKruise's `rollouts.kruise.io` Rollout is none.
 */
export function isCustomWorkload(o: { kind: string; apiVersion?: string }): boolean {
  const known = CUSTOM_WORKLOAD_KINDS.get(o.kind);
  return known !== undefined && isCustomOwner(o, known.owns);
}

export function stableLabels(labels: Readonly<Record<string, string>> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(labels ?? {}).sort()) {
    if (!GENERATED_LABELS.has(k)) out[k] = labels![k]!;
  }
  return out;
}

/**
 * A workload known only from flows (`observedOnly`): `kind`/`name` in `namespace`, selected by the stable
 * labels (stableLabels) of `labels`, those its flows gave; no selector when there are none.
 */
export function flowOnlyWorkload(
  namespace: string,
  kind: WorkloadKind,
  name: string,
  labels: Readonly<Record<string, string>>,
): Workload {
  const stable = stableLabels(labels);
  return {
    id: workloadId(namespace, kind, name),
    namespace,
    kind,
    name,
    selector: Object.keys(stable).length ? { matchLabels: stable } : {},
    labels: stable,
    namedPorts: [],
    pods: [],
    hostNetwork: false,
    roles: [],
    observedOnly: true,
  };
}

function stableSelector(sel: LabelSelector | undefined): LabelSelector {
  const out: LabelSelector = {};
  const ml = stableLabels(sel?.matchLabels);
  if (Object.keys(ml).length > 0) out.matchLabels = ml;
  const me = (sel?.matchExpressions ?? []).filter((e) => !GENERATED_LABELS.has(e.key));
  if (me.length > 0) out.matchExpressions = me;
  return out;
}

// Ids and keys are joined rather than built with a template: a template gives a string of concatenated
// pieces that stays one more object per id once it is flattened (tens of thousands of ids).
export const workloadId = (namespace: string, kind: string, name: string): string =>
  [namespace, kind, name].join('/');

/** An owner reference as ownership is walked: the kind and name of the owner (its apiVersion when given). */
type OwnerRef = Readonly<{ kind: string; name: string; apiVersion?: string }>;

/**
 * Who owns each owned workload object of a snapshot (a ReplicaSet, a Job): what `rootOwner` walks from
 * a pod to the workload it names the pod after. Values are the snapshot's own objects: nothing is copied.
 */
export interface Ownership {
  /** The owner of each owned object, by the object's uid. */
  byUid: ReadonlyMap<string, OwnerRef>;
  /** The owner of each owned object, by the object's `namespace/Kind/name`. */
  ownerByKey: ReadonlyMap<string, OwnerRef>;
  /**
   * Every workload object (CronJobs too, and the Rollouts and CloneSets among `others`), by
   * `namespace/Kind/name`.
   */
  objByKey: ReadonlyMap<string, { kind: string; metadata: ObjectMeta; spec: unknown }>;
  /**
   * For each Job absent from the snapshot that pods name as their owner, by `namespace/Job/name`: when
   * the first of them was made (jobPodsMade), which tells the Job as a CronJob's run or not for all its
   * pods alike (cronJobOfRun). Absent when the pods were not given: each pod's own time is then used.
   */
  jobFirstPod?: ReadonlyMap<string, string>;
}

/**
 * The ownership of the workload objects and CronJobs of a snapshot. Of its `others`, only the objects of
 * the custom workload kinds (CUSTOM_WORKLOAD_KINDS) are read: what their own selector and template are.
 * Their owner references are not needed: ownership is walked up to them, never above.
 */
export function ownershipOf(snap: {
  readonly workloads: readonly WorkloadObject[];
  readonly cronJobs: readonly CronJob[];
  readonly others?: readonly OtherObject[];
  readonly pods?: readonly Pod[];
}): Ownership {
  const byUid = new Map<string, OwnerRef>();
  const objByKey = new Map<string, { kind: string; metadata: ObjectMeta; spec: unknown }>();
  const ownerByKey = new Map<string, OwnerRef>();
  for (const list of [snap.workloads, snap.cronJobs])
    for (const w of list) {
      const owner = w.metadata.ownerReferences?.find((o) => o.controller) ?? w.metadata.ownerReferences?.[0];
      const key = `${w.metadata.namespace!}/${w.kind}/${w.metadata.name}`;
      if (owner) {
        if (w.metadata.uid) byUid.set(w.metadata.uid, owner);
        ownerByKey.set(key, owner);
      }
      objByKey.set(key, w);
    }
  for (const o of snap.others ?? []) {
    if (o.metadata.namespace === undefined || !isCustomWorkload(o)) continue;
    objByKey.set(`${o.metadata.namespace}/${o.kind}/${o.metadata.name}`, {
      kind: o.kind,
      metadata: o.metadata,
      spec: (o as { spec?: unknown }).spec,
    });
  }
  return {
    byUid,
    ownerByKey,
    objByKey,
    ...(snap.pods !== undefined ? { jobFirstPod: jobPodsMade(objByKey, snap.pods) } : {}),
  };
}

/**
 * When the first pod of each Job absent from `objByKey` was made (its creationTimestamp, else its
 * startTime), by `namespace/Job/name`: a Job is a CronJob's run or not by its first pod, so a pod made
 * again after an eviction, or a Job a queue (Kueue) held back, does not split one run into two workloads.
 */
export function jobPodsMade(
  objByKey: Ownership['objByKey'],
  pods: readonly Pod[],
): ReadonlyMap<string, string> {
  const first = new Map<string, { text: string; ms: number }>();
  for (const pod of pods) {
    const ref = pod.metadata.ownerReferences?.find((o) => o.controller) ?? pod.metadata.ownerReferences?.[0];
    if (ref?.kind !== 'Job') continue;
    const key = `${pod.metadata.namespace!}/Job/${ref.name}`;
    if (objByKey.has(key)) continue;
    const text = podCreated(pod);
    const ms = text === undefined ? NaN : Date.parse(text);
    if (!Number.isFinite(ms)) continue;
    const before = first.get(key);
    if (before === undefined || ms < before.ms) first.set(key, { text: text!, ms });
  }
  return new Map([...first].map(([key, { text }]) => [key, text]));
}

/**
 * The pods that held each pod address, oldest first: one slot per (address, pod), the slots of an address
 * side by side. A large cluster has one or two addresses per pod, so this keeps two numbers and a shared
 * workload id per pod instead of an array and an object per address.
 */
interface IPHolders {
  /** Address → its first slot. */
  first: Map<string, number>;
  /** Slots of the address whose first slot this is (meaningful at first slots only). */
  count: Uint32Array;
  /** When the pod of each slot started (milliseconds). */
  start: Float64Array;
  /** The workload id of each slot's pod. */
  workload: string[];
  /** 1 for a slot whose pod has ended (Succeeded or Failed): it no longer holds the address. */
  ended: Uint8Array;
}

/**
 * Packs the holders into slots: each address's slots side by side, in order of the address's first sight,
 * its holders in pod order, then by start (a stable sort: pods that started together stay in pod order).
 */
function packHolders(
  groupOf: Map<string, number>,
  hGroup: readonly number[],
  hKey: readonly string[],
  hStart: readonly number[],
  hEnded: readonly boolean[],
  podWorkload: ReadonlyMap<string, string>,
): IPHolders {
  const total = hGroup.length;
  const count = new Uint32Array(total);
  const start = new Float64Array(total);
  const workload = new Array<string>(total);
  const ended = new Uint8Array(total);
  // The first slot of each group, then the next free slot of each while placing.
  const next = new Uint32Array(groupOf.size);
  for (const g of hGroup) next[g]!++;
  let offset = 0;
  for (let g = 0; g < next.length; g++) {
    const n = next[g]!;
    next[g] = offset;
    count[offset] = n;
    offset += n;
  }
  const first = groupOf;
  for (const [ip, g] of groupOf) first.set(ip, next[g]!);
  for (let h = 0; h < total; h++) {
    const slot = next[hGroup[h]!]!++;
    start[slot] = hStart[h]!;
    ended[slot] = hEnded[h]! ? 1 : 0;
    workload[slot] = podWorkload.get(hKey[h]!)!;
  }
  // By start within each address (insertion sort: an address has one holder or a few).
  for (const from of first.values()) {
    const to = from + count[from]!;
    for (let k = from + 1; k < to; k++) {
      const t = start[k]!;
      const w = workload[k]!;
      const e = ended[k]!;
      let j = k - 1;
      while (j >= from && start[j]! > t) {
        start[j + 1] = start[j]!;
        workload[j + 1] = workload[j]!;
        ended[j + 1] = ended[j]!;
        j--;
      }
      start[j + 1] = t;
      workload[j + 1] = w;
      ended[j + 1] = e;
    }
  }
  return { first, count, start, workload, ended };
}

export interface IdentityOptions {
  /**
   * Extra addresses to classify as node addresses (node IPs are otherwise learnt from Node objects, pods'
   * `status.hostIP`/`status.hostIPs` and host-network pods' addresses).
   */
  nodeIPs?: readonly string[];
  /**
   * Workloads known only from flows (`observedOnly`) that an identity built before gave, to keep: each
   * is a workload of this one as it was (its selector and labels those its flows gave), as if the flows
   * that named it were placed again, unless the snapshot has a workload of its id, or, for a bare pod
   * (`ns/Pod/name`), the pod itself (placed at its own workload now). The controller passes those its
   * learned edges still have, so that a rebuilt identity does not forget them.
   */
  observed?: readonly Workload[];
}

export interface Identity {
  workloads: Map<string, Workload>;
  /** Workload id of each pod, by `namespace/name`. */
  podWorkload: Map<string, string>;
  /** Every IP that means the API server: the `default/kubernetes` ClusterIP(s) and its endpoints. */
  apiserverIPs: Set<string>;
  /**
   * The API server's real addresses and ports: from the `default/kubernetes` EndpointSlices, or from its
   * core/v1 Endpoints object when no slice names an address.
   */
  apiserverEndpoints: { ips: string[]; ports: number[] };
  /**
   * The pod networks, inferred from pod addresses: the /16 of each IPv4 pod address and the /48 of each
   * IPv6 one. Rules meant for the internet exclude them, so they never admit in-cluster pods.
   */
  podNetworks: string[];
  /** Does the cluster have IPv6: an IPv6 pod address or Service ClusterIP in the snapshot (dual-stack or IPv6)? */
  ipv6: boolean;
  clusterDNS: string[];
  /**
   * The targetPorts of the `kube-system/kube-dns` Service's port 53 that are numbers, UDP and TCP
   * (`dnsServicePorts`): where the DNS pods take queries whichever pods they are, for a rule written
   * without knowing them (`dnsRulePorts`). Empty without such a Service.
   */
  clusterDNSServicePorts: DNSPort[];
  /**
   * The ClusterIPs (normalised) of Services with no backend in the snapshot → the Service,
   * `namespace/name`: a `private` peer of one of these addresses names it (`Peer.service`), as the graph
   * node of a peer rebuilt from its id (the controller's learned edges) does. A deleted Service that had
   * no backend keeps its ClusterIPs here, as `namespace/name (deleted)` (`(deleted <time of deletion>)`
   * when another deleted Service has its name), unless a live one's are named.
   */
  unbackedClusterIPs: ReadonlyMap<string, string>;
  warnings: string[];
  /**
   * Those of `warnings` about pods whose Job the snapshot lacks: a CronJob inferred from a Job's name
   * (cronJobOfRun), and workloads named after a Job whose name is of a CronJob's run's shape though not
   * taken for one, whose name a CronJob would change every run. What recommend's summary says on lines
   * of their own.
   */
  jobWarnings: string[];
  stats: IdentityStats;
  /**
   * The peer of a flow endpoint at a time. `port` (the responder port, for destinations) separates an
   * address that is both a node and an API server endpoint: only the API server's ports mean the API server.
   * `timeless` (a flow's `timeless`): `time` is only the latest the record gives, so an address no pod of
   * the snapshot held then is the one its holder as of the snapshot has. `protocol` (the flow's, for
   * destinations) with `port` names the host-network workload listening on a node address: a TCP and a
   * UDP one may share a port; without it, the TCP one, else the UDP one, else the SCTP one.
   */
  resolve(ep: FlowEndpoint, time: number, port?: number, timeless?: boolean, protocol?: string): Peer;
  /**
   * What `resolve` gives, as the peer's number: peers are numbered from 0 as this identity first
   * gives them, one number per peer id, kept for the identity's life. `peerAt` returns the peer.
   * The aggregation's hot path keeps its state by these numbers (no lookup by id per flow).
   */
  resolveNumber(ep: FlowEndpoint, time: number, port?: number, timeless?: boolean, protocol?: string): number;
  /** The peer numbered `n` by `resolveNumber` (a frozen record shared by every resolution of it). */
  peerAt(n: number): Peer;
  /**
   * Where a connection to the Service peer numbered `n` (a ClusterIP) on `port`/`protocol` goes: every
   * backend, as its peer number and the port it takes the connection on. A Service with a selector is
   * backed by the workloads whose pods it selects, each on the Service port's targetPort (a number, or
   * a name, as each pod resolves it: one backend per number the pods give it); a Service without one by
   * the addresses and ports of its EndpointSlices, as of the snapshot (when no slice names an address,
   * by its core/v1 Endpoints object's subsets, read as slices). Policies apply
   * after the ClusterIP is translated, so rules are written for these. For a `selector` peer (a flow
   * endpoint whose selector selects the pods of several workloads), each of them on `port`. Never empty
   * for either; undefined for any other peer.
   */
  serviceBackends(n: number, port: number, protocol: string): readonly ServiceBackend[] | undefined;
  /**
   * The Service peers (see `serviceBackends`) of the ClusterIPs of the Service `namespace/name`, one per
   * address family, numbered now when no flow has reached them yet (no statistic counts this); empty
   * when the snapshot has no such Service, or none with a backend.
   */
  servicePeers(namespace: string, name: string): number[];
  /**
   * Where a connection to `ip` (a ClusterIP of `unbackedClusterIPs`: a Service whose selector selects no
   * pod) goes once the workloads it is left without run again: each workload of its namespace that has
   * no pod in the snapshot and whose pod template its selector selects (a Deployment scaled to zero, a
   * CronJob between its runs; not a Job, which once finished runs no more), on the port it would take the
   * connection on (as `serviceBackends`, worked out once per address and port). Undefined when there is none (no
   * such workload, a Service without a selector, an address of no such Service).
   */
  idleBackends(ip: string, port: number, protocol: string): readonly ServiceBackend[] | undefined;
}

/** One destination a connection to a Service's ClusterIP may reach. */
export interface ServiceBackend {
  /** The backend's peer number (see `Identity.resolveNumber`). */
  peer: number;
  /** The port the backend takes the connection on. */
  port: number;
}

/** A Service with a ClusterIP, as identity keeps it. */
interface ServiceEntry {
  service: Service;
  /** Its peer numbers once a flow has reached it: for its IPv4 ClusterIP, and its IPv6 one. */
  peers?: [number | undefined, number | undefined];
  /** When it was deleted (`ClusterSnapshot.deletedServices`): a deleted Service, kept for the flows before. */
  deletedAt?: number;
  /**
   * How a deleted Service is named after its `namespace/name`: `deleted`, or, when another deleted
   * Service has its name, `deleted <time of its deletion>` (and its uid, when that is shared too).
   */
  deletedAs?: string;
  /** The workloads its selector selects pods of (sorted). */
  backing: string[];
  /** For a Service without a selector: its EndpointSlices. */
  slices: EndpointSlice[];
}

export function buildIdentity(snap: ClusterSnapshot, opts: IdentityOptions = {}): Identity {
  const warnings: string[] = [];
  const ownership = ownershipOf(snap);
  const { ownerByKey, objByKey } = ownership;

  const workloads = new Map<string, Workload>();
  const podWorkload = new Map<string, string>();
  // The same by namespace, then pod name (flows name pods by the two strings, so no key is built): the
  // index of the pod's workload id in podWorkloadIds.
  const podWorkloadByNs = new Map<string, Map<string, number>>();
  const podWorkloadIds: string[] = [];
  const podWorkloadIndex = new Map<string, number>();
  const portLists = new Map<string, NamedPort[]>();
  // For the few workloads whose pods name their ports differently (two revisions): the numbers the pods
  // give each name (`protocol/name`), which a Service's named targetPort reaches pod by pod. Every other
  // workload's pods give its namedPorts.
  const portConflicts = new Map<string, Map<string, number[]>>();
  // The holders of each pod address, one entry per (address, pod) in pod order: the address's group
  // (numbered in order of first sight), the pod's key and start. Packed into slots below.
  const groupOf = new Map<string, number>();
  const hGroup: number[] = [];
  const hKey: string[] = [];
  const hStart: number[] = [];
  const hEnded: boolean[] = [];
  /** `nodeIP/protocol/port` (hostPortKey) → the host-network workload listening there. */
  const hostPorts = new Map<string, string>();
  /**
   * Per workload, the stable label keys its pods do not all carry as its `labels` have them, and the
   * generated keys some of its pods carry and others lack.
   */
  const varying = new Map<string, Set<string>>();
  /** Per workload, the generated label keys every one of its pods so far carries. */
  const generated = new Map<string, Set<string>>();
  const keyLists = new Map<string, string[]>();
  /**
   * `nodeIP/protocol/port` (hostPortKey) → the workload of a pod, not on the host network, that publishes a
   * container port there (`hostPort`), and that container port: the node's address on that port is
   * translated to the pod.
   */
  const publishedPorts = new Map<string, { id: string; namespace: string; target: number }>();
  /** The warnings given of two host-network workloads declaring one port on one node. */
  const hostPortClashes = new Set<string>();
  const nodeIPs = new Set<string>((opts.nodeIPs ?? []).map(normaliseIP));
  /**
   * The workloads whose labels (and selector) are their first pod's: neither their object's template nor a
   * revision's is known (an object absent from the snapshot, a bare pod, a custom resource's pods). With
   * that pod.
   */
  const fromPods = new Map<string, Pod>();
  /**
   * The InternalIP addresses each Node object lists (normalised), by node name: a host-network pod's
   * are its node's. Its other addresses of an IP (an ExternalIP, a Hostname given as one) are the
   * node's too, but no connection between a pod and a host-network pod shows them (an ExternalIP is
   * NATed to the node outside the cluster, or not on it at all): in its rules they would open a
   * public address for nothing. `nodeOtherAddresses` keeps them (`ExternalIP 203.0.113.10`) for the
   * warning naming what was left out.
   */
  const nodeAddresses = new Map<string, string[]>();
  const nodeOtherAddresses = new Map<string, { ip: string; text: string }[]>();
  for (const node of snap.others) {
    if (node.kind !== 'Node') continue;
    const internal: string[] = [];
    const other: { ip: string; text: string }[] = [];
    // IPs only (nodeIPAddresses): a Hostname, InternalDNS or ExternalDNS address is a name, which as a
    // host-network workload's address would be an ipBlock the API server refuses.
    for (const a of nodeIPAddresses(node)) {
      const ip = normaliseIP(a.text);
      nodeIPs.add(ip);
      if (a.internal) {
        if (!internal.includes(ip)) internal.push(ip);
      } else if (!other.some((o) => o.ip === ip)) other.push({ ip, text: `${a.type ?? 'address'} ${ip}` });
    }
    const name = node.metadata?.name;
    if (typeof name === 'string') {
      nodeAddresses.set(name, internal);
      nodeOtherAddresses.set(name, other);
    }
  }
  /**
   * By the name of a node with other addresses than InternalIPs: the host-network workloads on it and
   * the addresses their pods there hold, for the warning naming the addresses left out.
   */
  const hostNetworkOn = new Map<string, { workloads: Set<string>; held: Set<string> }>();
  const missingJobs: MissingJobs = { inferred: new Map(), jobs: new Map() };

  const keys = snap.pods.map(podKey);
  const order = keys.map((_, i) => i).sort((a, b) => compareText(keys[a]!, keys[b]!));
  /** The workload of each pod of the snapshot, by its place there: as podWorkload has it by the pod's key. */
  const podIds = new Array<string>(snap.pods.length);
  for (const i of order) {
    const pod = snap.pods[i]!;
    const ns = pod.metadata.namespace!;
    const key = keys[i]!;
    const root = rootOwner(pod, ownership);
    const id = workloadId(ns, root.kind, root.name);
    podWorkload.set(key, id);
    podIds[i] = id;
    noteMissingJob(pod, root, id, ownership, missingJobs);
    let byName = podWorkloadByNs.get(ns);
    if (byName === undefined) podWorkloadByNs.set(ns, (byName = new Map<string, number>()));
    let index = podWorkloadIndex.get(id);
    if (index === undefined) podWorkloadIndex.set(id, (index = podWorkloadIds.push(id) - 1));
    byName.set(pod.metadata.name, index);
    let w = workloads.get(id);
    if (!w) {
      // The id is the object's key (`namespace/Kind/name`): not built a second time.
      const ownerObj = objByKey.get(id);
      // A Rollout's selector and template when the snapshot lacks its object (`kubectl get rs` lists no
      // Rollouts) or its object has none (a Rollout whose workloadRef names a Deployment's): the
      // ReplicaSet's, its revision's hash left out, else the referenced Deployment's.
      const revision =
        root.kind === 'Rollout'
          ? (revisionOf(pod, objByKey) ?? referencedWorkload(ns, ownerObj, objByKey))
          : undefined;
      w = newWorkload(portLists, ns, root.kind, root.name, ownerObj, pod, revision, fromPods);
      if (!isKnownKind(root.kind) && root.kind !== LABELLED_KIND) {
        const ref = pod.metadata.ownerReferences!.find((o) => o.controller)!;
        w.customResource = { apiVersion: ref.apiVersion };
      }
      workloads.set(id, w);
    }
    // Stable labels this pod does not carry as the workload's `labels` have them (a pod of an older
    // revision, a label a webhook added): no selector telling workloads apart may rest on them.
    const own = pod.metadata.labels ?? {};
    for (const k in w.labels) if (own[k] !== w.labels[k]) addVarying(varying, id, k);
    for (const k in own) if (!(k in w.labels) && !GENERATED_LABELS.has(k)) addVarying(varying, id, k);
    // Generated keys (their values are never used): those every pod carries, and those only some do.
    const ownGenerated = Object.keys(own).filter((k) => GENERATED_LABELS.has(k));
    const all = generated.get(id);
    if (all === undefined) generated.set(id, new Set(ownGenerated));
    else {
      for (const k of ownGenerated) if (!all.has(k)) addVarying(varying, id, k);
      for (const k of all)
        if (!(k in own)) {
          all.delete(k);
          addVarying(varying, id, k);
        }
    }
    w.pods.push(pod.metadata.name);
    if (w.namedPorts.length > 0 || portConflicts.has(id)) {
      const before = w.namedPorts;
      w.namedPorts = commonNamedPorts(portLists, before, pod);
      if (w.namedPorts !== before || portConflicts.has(id)) {
        // The pods so far gave every port of `before`; this one gives its own.
        for (const p of before) addNumber(portConflicts, id, `${p.protocol}/${p.name}`, p.port);
        addNamedPortNumbers(portConflicts, id, pod.spec.containers);
      }
    }
    // The node's addresses: status.hostIP and status.hostIPs (a dual-stack node's IPv6 address is only
    // there), and a host-network pod's own addresses, which are its node's.
    const hostAddrs = nodeAddressesOf(pod);
    if (pod.spec.hostNetwork) {
      w.hostNetwork = true;
      // A host-network pod's addresses are its node's, every one: status.podIPs may list one family only
      // while status.hostIPs or the Node object (spec.nodeName) lists both of a dual-stack node.
      const own = [...hostAddrs];
      const nodeName = pod.spec.nodeName ?? '';
      for (const ip of nodeAddresses.get(nodeName) ?? []) if (!own.includes(ip)) own.push(ip);
      if ((nodeOtherAddresses.get(nodeName)?.length ?? 0) > 0) {
        let on = hostNetworkOn.get(nodeName);
        if (on === undefined) hostNetworkOn.set(nodeName, (on = { workloads: new Set(), held: new Set() }));
        on.workloads.add(id);
        for (const ip of own) on.held.add(ip);
      }
      for (const node of own)
        for (const c of pod.spec.containers)
          for (const p of c.ports ?? []) {
            const port = p.hostPort ?? p.containerPort;
            const protocol = p.protocol ?? 'TCP';
            // By protocol too: a TCP and a UDP listener on one port of one node are two.
            const at = hostPortKey(node, protocol, port);
            const before = hostPorts.get(at);
            // Pods are taken in the order of their keys: the last workload to declare the port has it.
            if (before !== undefined && before !== id) {
              const text = `host-network workloads ${before} and ${id} both declare port ${port}/${protocol} on node ${node}: ${protocol} connections to ${node.includes(':') ? `[${node}]` : node}:${port} are attributed to ${id} alone`;
              if (!hostPortClashes.has(text)) warnings.push(text);
              hostPortClashes.add(text);
            }
            hostPorts.set(at, id);
          }
      for (const ip of own) if (!w.hostIPs?.includes(ip)) (w.hostIPs ??= []).push(ip);
      w.hostIPs?.sort();
    }
    for (const ip of hostAddrs) nodeIPs.add(ip);
    // Ports a pod publishes on its node: a pod that has ended holds none (pods are taken in the order of
    // their keys: the last to publish a port on a node has it). On each node address of a family the
    // pod has an address of (a dual-stack pod's ports are published on both).
    const ended = pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
    if (!pod.spec.hostNetwork && !ended) {
      const families = new Set(podIPs(pod).map((ip) => ip.includes(':')));
      for (const node of hostAddrs) {
        if (families.size > 0 && !families.has(node.includes(':'))) continue;
        for (const c of pod.spec.containers)
          for (const p of c.ports ?? [])
            if (p.hostPort)
              publishedPorts.set(hostPortKey(node, p.protocol ?? 'TCP', p.hostPort), {
                id,
                namespace: ns,
                target: p.containerPort,
              });
      }
    }
    if (!pod.spec.hostNetwork) {
      const start = Date.parse(pod.status?.startTime ?? pod.metadata.creationTimestamp ?? '') || 0;
      for (const ip of podIPs(pod)) {
        const n = normaliseIP(ip);
        let g = groupOf.get(n);
        if (g === undefined) groupOf.set(n, (g = groupOf.size));
        hGroup.push(g);
        hKey.push(key);
        hStart.push(start);
        hEnded.push(ended);
      }
    }
  }
  // Two pods of one key (a snapshot listing a pod twice): the workload of the last taken is both's.
  if (podWorkload.size !== snap.pods.length)
    for (let i = 0; i < keys.length; i++) podIds[i] = podWorkload.get(keys[i]!)!;
  // Pod lists grew one push at a time; exact-length copies drop the spare capacity.
  for (const w of workloads.values()) if (w.pods.length > 0) w.pods = w.pods.slice();
  /** The custom resources' workloads with one pod in the snapshot, by API group and kind. */
  const onePod = new Map<string, string[]>();
  for (const [id, first] of fromPods) {
    const w = workloads.get(id)!;
    sharedPodLabels(w, first, varying);
    if (w.customResource !== undefined && w.pods.length === 1 && Object.keys(w.labels).length > 0) {
      const of = `${w.customResource.apiVersion.split('/')[0]!} ${w.kind}`;
      const list = onePod.get(of);
      if (list) list.push(id);
      else onePod.set(of, [id]);
    }
  }
  // One warning per kind: a namespace of 200 virtual machines is one.
  for (const [of, ids] of onePod)
    warnings.push(
      ids.length === 1
        ? `${ids[0]!}: this ${of} has one pod in the snapshot, whose labels select it (${selectorText(workloads.get(ids[0]!)!.selector)}); a label its operator gives each pod (a role) would leave out the pods it makes later (label their template ${WORKLOAD_LABEL}=<name> to name their workload)`
        : `${ids.length} workloads of kind ${of} have one pod each in the snapshot, whose labels select it (${firstOf(ids)}); a label their operator gives each pod (a role) would leave out the pods it makes later (label their template ${WORKLOAD_LABEL}=<name> to name their workload)`,
    );
  for (const [id, keys] of varying) workloads.get(id)!.varyingLabels = sharedKeys(keyLists, [...keys]);
  for (const [id, keys] of generated)
    if (keys.size > 0) workloads.get(id)!.generatedLabels = sharedKeys(keyLists, [...keys]);
  const jobWarnings = missingJobWarnings(missingJobs);
  warnings.push(...jobWarnings);
  const ipHolders = packHolders(groupOf, hGroup, hKey, hStart, hEnded, podWorkload);
  // Workloads (and CronJobs) with no pods in the snapshot still exist: a CronJob between runs.
  /** The workload objects whose template carries the workload label, by the workload it names. */
  const labelledObjects = new Map<string, [string, { kind: string; metadata: ObjectMeta; spec: unknown }]>();
  for (const [key, obj] of objByKey) {
    const [ns, kind, name] = key.split('/') as [string, WorkloadKind, string];
    if (kind === 'ReplicaSet' || kind === 'Job') continue; // reached through their owners
    const id = workloadId(ns, kind, name);
    // A Rollout whose workloadRef names a Deployment has no template of its own: the Deployment's.
    const ref = kind === 'Rollout' ? referencedWorkload(ns, obj, objByKey) : undefined;
    // One whose template carries the workload label makes pods of the workload the label names, not its
    // own (a Knative revision's Deployment): that workload, from its template, when no pod made it.
    const labelled = labelledTemplate(ns, obj, objByKey);
    if (labelled) {
      // The object of the smallest key stands for it, whatever the order of the snapshot's objects.
      const named = workloadId(ns, LABELLED_KIND, labelled);
      const before = labelledObjects.get(named);
      if (before === undefined || compareText(key, before[0]) < 0)
        labelledObjects.set(named, [key, ref ?? obj]);
    } else if (!workloads.has(id))
      workloads.set(id, newWorkload(portLists, ns, kind, name, obj, undefined, ref));
  }
  for (const [named, [, obj]] of labelledObjects)
    if (!workloads.has(named)) {
      const [ns, , name] = named.split('/') as [string, string, string];
      workloads.set(named, newWorkload(portLists, ns, LABELLED_KIND, name, undefined, undefined, obj));
    }
  // A workload object a custom resource controls, selected by that resource's uid (a Knative revision's
  // Deployment, selected by the revision's uid): the pods of the next such resource's object are another
  // workload's, which no policy written now selects. (Its name is most operators' stable handle.)
  // One warning per kind of resource: a Knative Service keeps the Deployments of its last revisions.
  const onUid = new Map<string, { kind: string; of: { id: string; on: string; ref: string }[] }>();
  for (const [key, obj] of objByKey) {
    const w = workloads.get(key);
    const ref = obj.metadata.ownerReferences?.find((o) => o.controller);
    if (w === undefined || ref === undefined || !customController(ref)) continue;
    const on = Object.entries(w.selector.matchLabels ?? {}).filter(([, v]) => v === ref.uid);
    if (on.length === 0) continue;
    const kind = `${ref.apiVersion.split('/')[0]!} ${ref.kind}`;
    let list = onUid.get(kind);
    if (list === undefined) onUid.set(kind, (list = { kind: ref.kind, of: [] }));
    list.of.push({ id: w.id, on: on.map(([k, v]) => `${k}=${v}`).join(','), ref: ref.name });
  }
  for (const [kind, { kind: short, of }] of onUid) {
    of.sort((a, b) => compareText(a.id, b.id));
    const next = `the pods of the next ${short} will not be selected (label their template ${WORKLOAD_LABEL}=<name> to make them one workload)`;
    warnings.push(
      of.length === 1
        ? `${of[0]!.id}: its selector rests on ${of[0]!.on}, the uid of the ${kind} ${of[0]!.ref} that controls it: ${next}`
        : `${of.length} workloads have a selector resting on the uid of the ${kind} that controls each (${firstOf(of.map((o) => `${o.id}: ${o.on}`))}): ${next}`,
    );
  }
  // A workload the label names is selected by the label alone (its pods' other shared labels stay its
  // `labels`, which tell it from other workloads).
  for (const w of workloads.values())
    if (w.kind === LABELLED_KIND) {
      w.labels = { ...w.labels, [WORKLOAD_LABEL]: w.name };
      w.selector = { matchLabels: { [WORKLOAD_LABEL]: w.name } };
    }
  // The owned workload objects of the snapshot (a ReplicaSet, a Job) whose root workload the shape of
  // their name does not give, by `namespace/Kind/name`: a collector may name one instead of its root
  // (namedWorkload). Only these are kept; the shape gives the root of every other.
  const ownedRoots = new Map<string, string>();
  for (const key of ownerByKey.keys()) {
    const [ns, kind, name] = key.split('/') as [string, string, string];
    const root = ownerRoot(ns, { kind, name }, undefined, ownership);
    const w = root && workloads.get(workloadId(ns, root.kind, root.name));
    if (w && !w.observedOnly && rootByShape(workloads, ns, kind, name, undefined) !== w.id)
      ownedRoots.set(workloadId(ns, kind, name), w.id);
  }
  // Namespace labels, which a namespaceSelector of a flow endpoint selects by.
  const namespaceLabels = new Map<string, Readonly<Record<string, string>>>();
  for (const n of snap.namespaces) namespaceLabels.set(n.metadata.name, n.metadata.labels ?? {});

  // Services: ClusterIP → the Service (its backends are listed per port by serviceBackends); roles.
  const serviceIPs = new Map<string, ServiceEntry>();
  /**
   * The other addresses kube-proxy translates to a Service's backends, on its ports only: its
   * `spec.externalIPs` and its load balancer's IPs (unless their `ipMode` is `Proxy`: the packets then
   * leave for the load balancer untranslated). Several Services may share one (a MetalLB shared IP,
   * one externalIP for two Services), each on its own ports: the first Service to claim an address and
   * a port keeps the port.
   */
  const serviceAddrs = new Map<string, ServiceEntry[]>();
  /**
   * The nodePorts of NodePort and LoadBalancer Services, by `protocol/nodePort`: a node's address on one
   * is translated to the Service's backends. Each entry is its Service with that one port, as the nodePort.
   */
  const nodePorts = new Map<string, ServiceEntry>();
  /**
   * The nodePorts of NodePort and LoadBalancer Services with no backend in the snapshot (no pod their
   * selector selects; without a selector, no address of an EndpointSlice or Endpoints object of theirs),
   * by `protocol/nodePort`: the Service and why it has none. A connection to a node address on one is
   * the node's, as nothing in the snapshot tells where the node sent it, and is named in a warning.
   */
  const unbackedNodePorts = new Map<string, { service: string; why: string }>();
  /**
   * The ClusterIPs (normalised) of Services with no backend in the snapshot, as above: the Service
   * (`namespace/name`) and why it has none. A connection to one is a `private` peer naming the Service,
   * for which no rule is written, named in a warning.
   */
  const unbackedClusterIPs = new Map<string, { service: string; why: string; entry: ServiceEntry }>();
  /**
   * The ClusterIPs (normalised) of deleted Services (`ClusterSnapshot.deletedServices`, with the time of
   * their deletion: the controller keeps them a while) → each such Service, in the order they held it
   * (that of their deletions, one Service holding an address at a time): a flow before its deletion
   * goes to the backends it had; after, the address is nobody's until a Service takes it again.
   */
  const deletedClusterIPs = new Map<string, ServiceEntry[]>();
  /**
   * The ClusterIPs of deleted Services that had no backend in the snapshot either, as
   * `unbackedClusterIPs` (the Service named `namespace/name (deleted)`, or with the time of its
   * deletion as `ServiceEntry.deletedAs` says, the one deleted last): a
   * connection to one from before the deletion failed at the Service, as it did while it lived, so the
   * deletion adds no rule for it. A Service with no backend holding the address now names it instead.
   */
  const deletedUnbacked = new Map<string, { service: string; why: string; entry: ServiceEntry }>();
  const apiserverIPs = new Set<string>();
  const apiEndpointIPs = new Set<string>();
  const apiEndpointPorts = new Set<number>();
  /** The pods of each namespace, by their place in the snapshot. */
  const podsByNamespace = new Map<string, number[]>();
  for (let i = 0; i < snap.pods.length; i++) {
    const ns = snap.pods[i]!.metadata.namespace ?? '';
    const list = podsByNamespace.get(ns);
    if (list) list.push(i);
    else podsByNamespace.set(ns, [i]);
  }
  /** The pods of each namespace by label (made on first use): what a Service's selector looks up. */
  const labelIndexes = new Map<string, PodsByLabel>();
  const labelIndexOf = (ns: string): PodsByLabel => {
    let index = labelIndexes.get(ns);
    if (index === undefined)
      labelIndexes.set(ns, (index = podsByLabel(snap.pods, podsByNamespace.get(ns) ?? [])));
    return index;
  };
  // A Service without a selector is backed by the EndpointSlices its owner writes (only theirs are kept).
  // A Service with one is backed by the pods it selects, and by any slice of it that the EndpointSlice
  // controller did not write (an operator's, a multi-cluster controller's): kube-proxy and Cilium send
  // its connections to every slice labelled with its name, whoever manages it.
  const selectorLess = (svc: Service) => !svc.spec.selector || Object.keys(svc.spec.selector).length === 0;
  // (A list is held only for a Service without a selector, or one with a slice of another manager.)
  const slicesByService = new Map<string, EndpointSlice[]>();
  const selectorLessKeys = new Set<string>();
  for (const svc of snap.services)
    if (selectorLess(svc)) {
      const key = `${svc.metadata.namespace!}/${svc.metadata.name}`;
      selectorLessKeys.add(key);
      slicesByService.set(key, []);
    }
  for (const es of snap.endpointSlices) {
    const labels = es.metadata.labels;
    const name = labels?.['kubernetes.io/service-name'];
    if (!name) continue;
    const key = `${es.metadata.namespace ?? ''}/${name}`;
    const slices = slicesByService.get(key);
    if (slices !== undefined) slices.push(es);
    else if (labels?.['endpointslice.kubernetes.io/managed-by'] !== 'endpointslice-controller.k8s.io')
      slicesByService.set(key, [es]);
  }
  // The API server's addresses and ports: its EndpointSlices'.
  for (const es of snap.endpointSlices) {
    if (
      es.metadata.namespace === 'default' &&
      es.metadata.labels?.['kubernetes.io/service-name'] === 'kubernetes'
    ) {
      for (const ep of es.endpoints ?? []) for (const a of ep.addresses) apiEndpointIPs.add(normaliseIP(a));
      for (const p of es.ports ?? []) if (p.port) apiEndpointPorts.add(p.port);
    }
  }
  // A core/v1 Endpoints object says what its Service's slices would: read for the snapshots that have it
  // and no slice of the Service that names an address (`kubectl get endpoints`, an older export, a
  // hand-made snapshot). The API server's gives its addresses and ports, which it would otherwise lack.
  const fromSlices = apiEndpointIPs.size > 0;
  for (const o of snap.others) {
    if (o.kind !== 'Endpoints') continue;
    const key = `${o.metadata.namespace ?? ''}/${o.metadata.name}`;
    if (key === 'default/kubernetes')
      for (const s of (o as Endpoints).subsets ?? []) {
        for (const a of s.addresses ?? []) {
          if (!a.ip) continue;
          apiserverIPs.add(normaliseIP(a.ip));
          if (!fromSlices) apiEndpointIPs.add(normaliseIP(a.ip));
        }
        if (!fromSlices) for (const p of s.ports ?? []) if (p.port) apiEndpointPorts.add(p.port);
      }
    // For a Service without a selector, its subsets become the slices its backends are read from (as
    // Kubernetes's mirroring controller would write them), so that its ClusterIP is translated exactly as
    // with a slice: 443 on the kubernetes Service's becomes the API server's port.
    const slices = selectorLessKeys.has(key) ? slicesByService.get(key) : undefined;
    if (slices !== undefined && !slices.some(namesAddress))
      slicesByService.set(key, endpointsAsSlices(o as Endpoints));
  }
  for (const ip of apiEndpointIPs) apiserverIPs.add(ip);
  let clusterDNSServicePorts: DNSPort[] = [];
  let serviceIPv6 = false;
  /**
   * The workloads of each namespace with no pod in the snapshot that may run again (made on first use):
   * a Deployment scaled to zero, a CronJob between its runs (each run's pods come back), not a Job,
   * which once finished runs no more; nor a workload known only from flows, which has no pod template
   * and is made as flows are resolved (counting it made idleBackends's answers depend on that order).
   */
  let podless: Map<string, Workload[]> | undefined;
  const podlessIn = (ns: string): readonly Workload[] => {
    if (podless === undefined) {
      podless = new Map();
      for (const w of workloads.values()) {
        if (w.pods.length > 0 || w.kind === 'Job' || w.observedOnly) continue;
        const list = podless.get(w.namespace);
        if (list === undefined) podless.set(w.namespace, [w]);
        else list.push(w);
      }
    }
    return podless.get(ns) ?? [];
  };
  /**
   * A Service as identity keeps it, live or deleted at `deletedAt`, with `slices` (the EndpointSlices its
   * backends are read from besides its selector's pods): whether it has a backend, why not (said of a
   * deleted one in the past), and its ClusterIPs (not `None`).
   */
  const serviceEntry = (svc: Service, slices: EndpointSlice[], deletedAt?: number) => {
    const ns = svc.metadata.namespace!;
    const backing = serviceWorkloads(svc, snap.pods, podIds, labelIndexOf(ns), workloads, podlessIn(ns));
    const entry: ServiceEntry =
      deletedAt === undefined
        ? { service: svc, backing, slices }
        : { service: svc, backing, slices, deletedAt };
    const why =
      deletedAt === undefined
        ? selectorLess(svc)
          ? 'it has no selector, and no EndpointSlice or Endpoints object of it names an address'
          : 'its selector selects no pod'
        : selectorLess(svc)
          ? 'it was deleted, and it had no selector, and no EndpointSlice or Endpoints object of it named an address'
          : 'it was deleted, and its selector selected no pod';
    const clusterIPs = (svc.spec.clusterIPs ?? (svc.spec.clusterIP ? [svc.spec.clusterIP] : [])).filter(
      (ip) => ip !== 'None' && ip !== '',
    );
    return { entry, backed: backing.length > 0 || slices.some(namesAddress), why, clusterIPs };
  };
  // Deleted Services (the controller keeps them a while): their ClusterIPs only, for the flows before
  // their deletion (no role, no other address). One with `metadata.deletionTimestamp` among the
  // Services is not deleted yet (a finalizer holds it): kube-proxy still forwards to it.
  // Each has its own EndpointSlices, kept with it: those of a Service of the same name created since,
  // among the snapshot's, are not its.
  // In the canonical order (deletion time, then namespace/name/uid): not that in which the deletions were
  // seen, so that which held an address when, and which is named for it, never depends on that.
  const deletedServices = [...(snap.deletedServices ?? [])].sort(compareDeletedServices);
  const deletedByName = new Map<string, ServiceEntry[]>();
  for (const { service: svc, deletedAt, endpointSlices } of deletedServices) {
    const ns = svc.metadata.namespace!;
    const slices = selectorLess(svc)
      ? endpointSlices
      : endpointSlices.filter(
          (es) =>
            es.metadata.labels?.['endpointslice.kubernetes.io/managed-by'] !==
            'endpointslice-controller.k8s.io',
        );
    const { entry, backed, why, clusterIPs } = serviceEntry(svc, slices, deletedAt);
    for (const ip of clusterIPs) {
      const n = normaliseIP(ip);
      const list = deletedClusterIPs.get(n);
      if (list === undefined) deletedClusterIPs.set(n, [entry]);
      else list.push(entry);
      const had = deletedUnbacked.get(n)?.entry.deletedAt;
      if (!backed && (had === undefined || had <= deletedAt))
        deletedUnbacked.set(n, { service: `${ns}/${svc.metadata.name}`, why, entry });
    }
    const key = `${ns}/${svc.metadata.name}`;
    const named = deletedByName.get(key);
    if (named === undefined) deletedByName.set(key, [entry]);
    else named.push(entry);
  }
  // Deleted Services of one name (one deleted and created again, then deleted again) are peers apart,
  // each with the backends it had: named by the time of their deletion.
  for (const named of deletedByName.values()) {
    if (named.length === 1) continue;
    for (const e of named) {
      const at = new Date(e.deletedAt!).toISOString();
      const twin = named.some((o) => o !== e && o.deletedAt === e.deletedAt);
      e.deletedAs = `deleted ${at}${twin ? `, uid ${e.service.metadata.uid ?? 'none'}` : ''}`;
    }
  }
  for (const u of deletedUnbacked.values()) u.service += ` (${u.entry.deletedAs ?? 'deleted'})`;
  for (const svc of snap.services) {
    const ns = svc.metadata.namespace!;
    const slices = slicesByService.get(`${ns}/${svc.metadata.name}`) ?? NO_SLICES;
    const { entry, backed, why: unbackedWhy, clusterIPs } = serviceEntry(svc, slices);
    const { backing } = entry;
    for (const ip of clusterIPs) {
      if (ip.includes(':')) serviceIPv6 = true;
      // The API server's Service too: a connection to its ClusterIP (443) reaches the API server on its
      // endpoints' port (6443), which is what its rule must name.
      if (ns === 'default' && svc.metadata.name === 'kubernetes') apiserverIPs.add(normaliseIP(ip));
      if (backed) serviceIPs.set(normaliseIP(ip), entry);
      else if (!unbackedClusterIPs.has(normaliseIP(ip)))
        unbackedClusterIPs.set(normaliseIP(ip), {
          service: `${ns}/${svc.metadata.name}`,
          why: unbackedWhy,
          entry,
        });
    }
    if (backing.length > 0 || slices.length > 0)
      for (const ip of translatedAddresses(svc)) {
        const n = normaliseIP(ip);
        const list = serviceAddrs.get(n);
        if (list === undefined) serviceAddrs.set(n, [entry]);
        else if (!list.includes(entry)) list.push(entry);
      }
    // Its nodePorts, each the Service port it stands for (the first Service to claim one keeps it); those
    // of a Service with no backend, kept to be named.
    if (svc.spec.type === 'NodePort' || svc.spec.type === 'LoadBalancer')
      for (const sp of svc.spec.ports ?? []) {
        const protocol = sp.protocol ?? 'TCP';
        const key = `${protocol}/${sp.nodePort}`;
        if (!sp.nodePort || nodePorts.has(key) || unbackedNodePorts.has(key)) continue;
        if (!backed) {
          unbackedNodePorts.set(key, {
            service: `${svc.spec.type} Service ${ns}/${svc.metadata.name}`,
            why: unbackedWhy,
          });
          continue;
        }
        const service: Service = {
          ...svc,
          metadata: { namespace: ns, name: `${svc.metadata.name} nodePort ${key}` },
          spec: { ...svc.spec, ports: [{ ...sp, port: sp.nodePort, targetPort: sp.targetPort ?? sp.port }] },
        };
        nodePorts.set(key, { service, backing, slices });
      }
    if (svc.spec.type === 'LoadBalancer' || svc.spec.type === 'NodePort') {
      for (const id of backing) addRole(workloads.get(id), 'load-balanced');
    }
    if (ns === CLUSTER_DNS_SERVICE.namespace && svc.metadata.name === CLUSTER_DNS_SERVICE.name) {
      for (const id of backing) addRole(workloads.get(id), 'cluster-dns');
      clusterDNSServicePorts = dnsServicePorts(svc);
    }
  }
  for (const w of workloads.values()) {
    if (w.labels['k8s-app'] === 'kube-dns' && w.namespace === 'kube-system') addRole(w, 'cluster-dns');
    if (
      w.labels['app.kubernetes.io/name'] === 'ingress-nginx' ||
      (w.labels['app.kubernetes.io/component'] === 'controller' &&
        /ingress|gateway|traefik|envoy|haproxy/.test(w.name))
    )
      addRole(w, 'ingress-controller');
  }
  const clusterDNS = [...workloads.values()]
    .filter((w) => w.roles.includes('cluster-dns'))
    .map((w) => w.id)
    .sort();

  const stats: IdentityStats = {
    byPodName: 0,
    byIP: 0,
    byServiceIP: 0,
    byHubbleWorkload: 0,
    byLabels: 0,
    byLearntIP: 0,
    ipReused: 0,
    unattributed: 0,
    reserved: {},
  };
  const countKind = (p: Peer): Peer => {
    if (p.kind !== 'workload') stats.reserved[p.kind] = (stats.reserved[p.kind] ?? 0) + 1;
    return p;
  };
  // Every peer given is numbered once, by id, and kept frozen: resolutions of one peer share its record.
  const peerList: Peer[] = [];
  const peerNumbers = new Map<string, number>();
  const numberOf = (p: Peer): number => {
    let n = peerNumbers.get(p.id);
    if (n === undefined) {
      n = peerList.length;
      peerList.push(Object.freeze(p));
      peerNumbers.set(p.id, n);
    }
    return n;
  };
  const workloadNumber = (id: string): number => peerNumbers.get(id) ?? numberOf({ id, kind: 'workload' });
  const workloadPeer = (id: string): Peer => peerList[workloadNumber(id)]!;
  const peerCache = new Map<string, Peer>();
  const cached = (key: string, make: () => Peer): Peer => {
    let p = peerCache.get(key);
    if (!p) {
      p = peerList[numberOf(make())]!;
      peerCache.set(key, p);
    }
    return p;
  };

  // Address bindings learnt from flows that named their pod: they attribute address-only flows of pods
  // that are gone from the snapshot. At most a few per address, so memory follows the number of pods.
  const learnt = new Map<string, { time: number; id: string }[]>();
  const learn = (ip: string, id: string, time: number) => {
    let list = learnt.get(ip);
    if (!list) learnt.set(ip, (list = []));
    // Sightings in order of time, each of another pod than the one before (flows come out of order:
    // a relay gives each node's in order, not all of them). The latest at or before `time`: when it is
    // this pod's, this one says nothing new.
    let i = list.length - 1;
    while (i >= 0 && list[i]!.time > time) i--;
    if (i >= 0 && list[i]!.id === id) return;
    // When the next is this pod's, it held the address since `time` already.
    const next = list[i + 1];
    if (next?.id === id) {
      next.time = time;
      return;
    }
    list.splice(i + 1, 0, { time, id });
    if (list.length > 4) list.shift();
  };
  /** The sighting learnt of `ip` last at or before `time`. */
  const learntAt = (ip: string, time: number): { time: number; id: string } | undefined => {
    let chosen: { time: number; id: string } | undefined;
    for (const b of learnt.get(ip) ?? []) if (b.time <= time) chosen = b;
    return chosen;
  };
  const byLearnt = (ip: string, time: number): string | undefined => learntAt(ip, time)?.id;

  const serviceByPeer = new Map<number, ServiceEntry>();
  const createdAt = (e: ServiceEntry) => Date.parse(e.service.metadata.creationTimestamp ?? '') || 0;
  /**
   * Who held the ClusterIP `ip` at `time`, when a deleted Service did: of its holders in turn (the
   * deleted ones in the order of their deletions, the live one last), the last to hold it at or before
   * `time` (the first, before every one). Each holds it from its creation, or from its predecessor's
   * deletion when that is later (a creation time is to the second: two Services may hold an address one
   * after the other within one). A deleted one, only before its deletion: after, no Service (`null`).
   * Undefined when the live one (if any) holds it, as when no Service was deleted.
   */
  const deletedHolder = (ip: string, time: number): ServiceEntry | null | undefined => {
    const deleted = deletedClusterIPs.get(ip);
    if (deleted === undefined) return undefined;
    const live = serviceIPs.get(ip) ?? unbackedClusterIPs.get(ip)?.entry;
    let chosen = deleted[0]!;
    let previousEnd = -Infinity;
    for (const e of live === undefined ? deleted : [...deleted, live]) {
      if (Math.max(createdAt(e), previousEnd) <= time) chosen = e;
      if (e.deletedAt !== undefined) previousEnd = Math.max(previousEnd, e.deletedAt);
    }
    if (chosen === live) return undefined;
    return time < chosen.deletedAt! ? chosen : null;
  };
  /** Addresses of timeless records taken for their holder as of the snapshot (warned about once each). */
  const heldSince = new Set<string>();
  const byIP = (ip: string, time: number, timeless: boolean): Peer | undefined => {
    const first = ipHolders.first.get(ip);
    if (first !== undefined) {
      // The pod that held the IP at the flow's time: the latest one started at or before it.
      const n = ipHolders.count[first]!;
      let chosen = -1;
      for (let slot = first; slot < first + n; slot++) if (ipHolders.start[slot]! <= time) chosen = slot;
      // A pod that has ended (a finished Job's, still listed) gave its address back: a pod seen holding
      // it since (named by a flow, gone from the snapshot) is the one.
      const since = chosen >= 0 && ipHolders.ended[chosen] === 1 ? learntAt(ip, time) : undefined;
      if (since !== undefined && since.time > ipHolders.start[chosen]!) {
        stats.byLearntIP++;
        return workloadPeer(since.id);
      }
      if (chosen >= 0) {
        stats.byIP++;
        if (n > 1) stats.ipReused++;
        return workloadPeer(ipHolders.workload[chosen]!);
      }
      // Before every known holder started: the IP belonged to a pod no longer in the snapshot. It must
      // never be taken for a non-pod address (an ipBlock for it would admit the pod that holds it now).
      const earlier = byLearnt(ip, time);
      if (earlier) {
        stats.byLearntIP++;
        return workloadPeer(earlier);
      }
      // A record of connections seen over a span (a Kubescape neighbour) has no moment of its own: its
      // time is the latest the collector gives, and pods started since (a rollout, a restart) hold the
      // addresses it names. The pod holding the address as of the snapshot, as an EndpointSlice would
      // name it.
      if (timeless) {
        const id = ipHolders.workload[first + n - 1]!;
        stats.byIP++;
        if (n > 1) stats.ipReused++;
        if (!heldSince.has(ip)) {
          heldSince.add(ip);
          warnings.push(
            // No time in the text: which record came first must not change the report.
            `${ip} (in a record without times of its own, such as a Kubescape neighbour) was held by no pod of the snapshot at the latest time the record gives; taken for ${id}, whose pod holds it as of the snapshot`,
          );
        }
        return workloadPeer(id);
      }
      stats.unattributed++;
      return cached(`s:${ip}`, () => ({ id: `unknown:${ip}`, kind: 'unknown', ip }));
    }
    const earlier = byLearnt(ip, time);
    if (earlier) {
      stats.byLearntIP++;
      return workloadPeer(earlier);
    }
    const held = deletedClusterIPs.size > 0 ? deletedHolder(ip, time) : undefined;
    if (held !== undefined) {
      // A Service deleted since: the backends it had, before its deletion; after, an address of no one.
      if (held !== null && (held.backing.length > 0 || held.slices.some(namesAddress))) {
        stats.byServiceIP++;
        return peerList[servicePeer(held, ip)]!;
      }
      // The ClusterIP of a Service with no backend, deleted or not, names it (one peer per address).
      const unbacked = unbackedClusterIPs.get(ip) ?? deletedUnbacked.get(ip);
      if (unbacked !== undefined) return unbackedPeer(ip, unbacked);
      return isPrivateIP(ip)
        ? cached(`p:${ip}`, () => ({ id: `private:${ip}`, kind: 'private', ip }))
        : cached(`w:${ip}`, () => ({ id: `world:${ip}`, kind: 'world', ip }));
    }
    const svc = serviceIPs.get(ip);
    if (svc) {
      stats.byServiceIP++;
      return peerList[servicePeer(svc, ip)]!;
    }
    return undefined;
  };
  /** The peer number of a Service's ClusterIP `ip` (normalised): one per Service and family. */
  const servicePeer = (svc: ServiceEntry, ip: string): number => {
    const family = ip.includes(':') ? 1 : 0;
    const peers = (svc.peers ??= [undefined, undefined]);
    let n = peers[family];
    if (n === undefined) {
      const { namespace, name } = svc.service.metadata;
      // A deleted Service's is not the one of the same name created since.
      const id = `service:${namespace!}/${name}${svc.deletedAt !== undefined ? ` (${svc.deletedAs ?? 'deleted'})` : ''}${family === 1 ? ' (IPv6)' : ''}`;
      peers[family] = n = numberOf({ id, kind: 'service', ip });
      serviceByPeer.set(n, svc);
    }
    return n;
  };
  const servicePeers = (namespace: string, name: string): number[] => {
    const out: number[] = [];
    for (const [ip, svc] of serviceIPs) {
      const m = svc.service.metadata;
      if (m.namespace !== namespace || m.name !== name) continue;
      const n = servicePeer(svc, ip);
      if (!out.includes(n)) out.push(n);
    }
    return out;
  };

  /** The Service whose external or load-balancer IP `ip` is, on `port` (and `protocol`, when known). */
  const serviceAddrFor = (ip: string, port: number, protocol: string | undefined): ServiceEntry | undefined =>
    serviceAddrs
      .get(ip)
      ?.find((s) =>
        (s.service.spec.ports ?? []).some(
          (p) => p.port === port && (protocol === undefined || (p.protocol ?? 'TCP') === protocol),
        ),
      );
  const apiPorts = new Set<number>([443, ...apiEndpointPorts]);
  /**
   * The host-network workload listening on `port` of node address `ip`: for `protocol`, or, when it is
   * not known, the one on TCP, else UDP, else SCTP.
   */
  const hostPortWorkload = (ip: string, port: number, protocol: string | undefined): string | undefined => {
    if (protocol !== undefined) return hostPorts.get(hostPortKey(ip, protocol, port));
    for (const p of ['TCP', 'UDP', 'SCTP']) {
      const id = hostPorts.get(hostPortKey(ip, p, port));
      if (id !== undefined) return id;
    }
    return undefined;
  };
  /**
   * The peer of a port a pod publishes on node address `ip` (`hostPort`), for `protocol` (when it is not
   * known, TCP, else UDP, else SCTP): a `service` peer whose one backend is the pod's workload on its
   * container port, as the node translates the connection before any policy applies.
   */
  const publishedEntries = new Map<string, ServiceEntry>();
  const publishedPeer = (ip: string, port: number, protocol: string | undefined): number | undefined => {
    for (const p of protocol !== undefined ? [protocol] : ['TCP', 'UDP', 'SCTP']) {
      const key = hostPortKey(ip, p, port);
      const published = publishedPorts.get(key);
      if (published === undefined) continue;
      let entry = publishedEntries.get(key);
      if (entry === undefined) {
        const service: Service = {
          apiVersion: 'v1',
          kind: 'Service',
          metadata: { namespace: published.namespace, name: `hostPort ${key} of ${published.id}` },
          spec: { ports: [{ port, protocol: p, targetPort: published.target }] },
        };
        publishedEntries.set(key, (entry = { service, backing: [published.id], slices: NO_SLICES }));
      }
      return servicePeer(entry, ip);
    }
    return undefined;
  };
  /** The nodePorts of Services with no backend that a connection was seen to, each named once. */
  const unbackedSeen = new Set<string>();
  /** Names, in a warning, the Service with no backend whose nodePort `port` is, if one's is. */
  const unbackedNodePort = (port: number, protocol: string | undefined) => {
    for (const p of protocol !== undefined ? [protocol] : ['TCP', 'UDP', 'SCTP']) {
      const key = `${p}/${port}`;
      const unbacked = unbackedNodePorts.get(key);
      if (unbacked === undefined) continue;
      if (!unbackedSeen.has(key)) {
        unbackedSeen.add(key);
        warnings.push(
          `connections to a node address on ${port}/${p}, the nodePort of ${unbacked.service}, which has no backend in the snapshot (${unbacked.why}): they count as connections to the node (an egress rule for them admits its address on the port); a snapshot taken while the Service had backends attributes them to those`,
        );
      }
      return;
    }
  };
  /** The ClusterIPs of Services with no backend that a connection was seen to, each named once. */
  const unbackedClusterIPsSeen = new Set<string>();
  /** The peer of `ip`, the ClusterIP of Service `unbacked.service`, which has no backend (warned once). */
  const unbackedPeer = (ip: string, unbacked: { service: string; why: string }): Peer => {
    if (!unbackedClusterIPsSeen.has(ip)) {
      unbackedClusterIPsSeen.add(ip);
      warnings.push(
        `connections to ${ip}, the ClusterIP of Service ${unbacked.service}, which has no backend in the snapshot (${unbacked.why}): no rule is written for them, as a policy sees such a connection only once it is translated to a backend pod (an ipBlock for the ClusterIP admits nothing), so the proposal blocks them when the Service has backends again; a snapshot taken while the Service had backends attributes them to those`,
      );
    }
    return cached(`c:${ip}`, () => ({ id: `private:${ip}`, kind: 'private', ip, service: unbacked.service }));
  };
  const classifyIP = (
    ip: string,
    reserved: FlowEndpoint['reserved'],
    port?: number,
    protocol?: string,
  ): Peer => {
    const onNode = reserved === 'host' || reserved === 'remote-node' || nodeIPs.has(ip);
    const apiPort = port === undefined || apiPorts.has(port);
    if ((reserved === 'kube-apiserver' || apiserverIPs.has(ip)) && (apiPort || !onNode))
      return cached('api', () => ({ id: 'kube-apiserver', kind: 'kube-apiserver' }));
    // The ClusterIP of a Service with no backend: nothing in the snapshot tells which pods it reached. Its
    // address, naming the Service, for which no rule is written (a policy sees the connection only once
    // it is translated to a backend pod); named in a warning once.
    const unbacked =
      reserved !== 'world' && !onNode ? (unbackedClusterIPs.get(ip) ?? deletedUnbacked.get(ip)) : undefined;
    if (unbacked !== undefined) return unbackedPeer(ip, unbacked);
    if (onNode && port !== undefined) {
      const hostWorkload = hostPortWorkload(ip, port, protocol);
      if (hostWorkload) return workloadPeer(hostWorkload);
      // Most clusters publish no hostPort and few nodePorts: no keys are built for a table that is empty.
      const published = publishedPorts.size > 0 ? publishedPeer(ip, port, protocol) : undefined;
      if (published !== undefined) return peerList[published]!;
      if (nodePorts.size > 0)
        for (const p of protocol !== undefined ? [protocol] : ['TCP', 'UDP', 'SCTP']) {
          const entry = nodePorts.get(`${p}/${port}`);
          if (entry !== undefined) return peerList[servicePeer(entry, ip)]!;
        }
      // A node's address a Service lists in spec.externalIPs (bare metal), on one of its ports:
      // kube-proxy translates it to the backends as it does any external IP.
      const external = serviceAddrFor(ip, port, protocol);
      if (external !== undefined) return peerList[servicePeer(external, ip)]!;
      if (unbackedNodePorts.size > 0 && reserved !== 'world') unbackedNodePort(port, protocol);
    }
    // A node's address the collector labels world is an outside client's connection SNATed to the node
    // (NodePort traffic forwarded from another node), which Cilium admits, or not, as the world's: the
    // label is trusted over the address.
    if (onNode && reserved !== 'world')
      return cached(`n:${ip}`, () => ({ id: `node:${ip}`, kind: 'node', ip }));
    if (reserved === 'world' || !isPrivateIP(ip))
      return cached(`w:${ip}`, () => ({ id: `world:${ip}`, kind: 'world', ip }));
    return cached(`p:${ip}`, () => ({ id: `private:${ip}`, kind: 'private', ip }));
  };

  // The peer number of each snapshot pod's workload (-1 until a flow names one of its pods), by the
  // index podWorkloadByNs gives. The namespace and pod strings of flows are looked up in small maps
  // (one per namespace), whose keys' hashes the engine keeps on the strings.
  const podPeers = new Int32Array(podWorkloadIds.length).fill(-1);
  const podNumberOf = (ns: string, pod: string): number => {
    const k = podWorkloadByNs.get(ns)?.get(pod);
    if (k === undefined) return -1;
    let n = podPeers[k]!;
    if (n < 0) podPeers[k] = n = workloadNumber(podWorkloadIds[k]!);
    return n;
  };

  const resolveNumber = (
    ep: FlowEndpoint,
    time: number,
    port?: number,
    timeless?: boolean,
    protocol?: string,
  ): number => {
    if (ep.pod && ep.namespace) {
      const n = podNumberOf(ep.namespace, ep.pod);
      if (n >= 0) {
        stats.byPodName++;
        return n;
      }
    }
    return numberOf(resolveOther(ep, time, port, timeless === true, protocol));
  };
  /** The workload of the pod that holds `ip` last (as an EndpointSlice written now sees it), uncounted. */
  const sliceAddress = (ip: string, port: number, protocol: string): number => {
    const first = ipHolders.first.get(ip);
    if (first !== undefined) return workloadNumber(ipHolders.workload[first + ipHolders.count[first]! - 1]!);
    return numberOf(classifyIP(ip, undefined, port, protocol));
  };
  // A Service's backends do not change with time (slices are read as of the snapshot): kept per
  // Service peer, then protocol and port (a number: no key is built per flow).
  const backendCache = new Map<number, Map<number, ServiceBackend[]>>();
  const serviceBackends = (n: number, port: number, protocol: string): ServiceBackend[] | undefined => {
    const entry = serviceByPeer.get(n);
    const selected = entry === undefined ? selectedBy.get(n) : undefined;
    if (entry === undefined && selected === undefined) return undefined;
    let byPort = backendCache.get(n);
    if (byPort === undefined) backendCache.set(n, (byPort = new Map<number, ServiceBackend[]>()));
    const key = (PROTOCOL_INDEX.get(protocol) ?? 7) * 65536 + port;
    let out = byPort.get(key);
    if (out === undefined)
      byPort.set(
        key,
        (out =
          entry !== undefined
            ? computeBackends(entry, peerList[n]!, port, protocol)
            : // A selector peer: each workload it selects, on the port itself (no address is translated).
              selected!.map((id) => ({ peer: workloadNumber(id), port }))),
      );
    return out;
  };
  /** The numbers the pods of workload `id` give the port name `key` (`protocol/name`). */
  const namedPortNumbersOf = (id: string, key: string): readonly number[] => {
    const conflicts = portConflicts.get(id);
    if (conflicts) return conflicts.get(key) ?? [];
    const slash = key.indexOf('/');
    const [protocol, name] = [key.slice(0, slash), key.slice(slash + 1)];
    return workloads
      .get(id)!
      .namedPorts.filter((p) => p.name === name && p.protocol === protocol)
      .map((p) => p.port);
  };
  const computeBackends = (
    entry: ServiceEntry,
    peer: Peer,
    port: number,
    protocol: string,
  ): ServiceBackend[] => {
    const out: ServiceBackend[] = [];
    const seen = new Set<string>();
    const add = (b: number, to: number) => {
      if (peerList[b]!.kind === 'service' || seen.has(`${b}/${to}`)) return;
      seen.add(`${b}/${to}`);
      out.push({ peer: b, port: to });
    };
    // A Service forwards TCP, UDP and SCTP only (an ICMP echo to a ClusterIP reaches no pod).
    const sp = SERVICE_PROTOCOLS.has(protocol)
      ? entry.service.spec.ports?.find((p) => p.port === port && (p.protocol ?? 'TCP') === protocol)
      : undefined;
    if (SERVICE_PROTOCOLS.has(protocol)) {
      for (const id of entry.backing) {
        // The targetPort: a number, or a container port's name, which each pod resolves for itself
        // (pods of two revisions may give it two numbers; a pod that does not name it gets nothing).
        const target = sp?.targetPort ?? port;
        if (typeof target === 'number' || /^[0-9]+$/.test(target)) add(workloadNumber(id), Number(target));
        else for (const to of namedPortNumbersOf(id, `${protocol}/${target}`)) add(workloadNumber(id), to);
      }
      // The ClusterIP's family: a dual-stack Service's slices are one per family; FQDN slices hold names.
      const family = peer.ip?.includes(':') ? 'IPv6' : 'IPv4';
      for (const es of entry.slices) {
        if ((es.addressType ?? 'IPv4') !== family) continue;
        // The slice's port for this Service port is the one of the same name (both unnamed when the
        // Service has one port).
        const ofProtocol = (es.ports ?? []).filter((p) => (p.protocol ?? 'TCP') === protocol);
        const ep =
          ofProtocol.find((p) => (p.name ?? '') === (sp?.name ?? '')) ??
          // One port each side: the same port, however written by hand.
          ((entry.service.spec.ports?.length ?? 0) <= 1 && ofProtocol.length === 1
            ? ofProtocol[0]
            : undefined);
        const to = ep?.port ?? (typeof sp?.targetPort === 'number' ? sp.targetPort : port);
        // Every endpoint, whatever its conditions (ready, serving, terminating): they are as of the
        // snapshot, not of the flow, so a backend not ready now may have taken it (README, Identity).
        for (const e of es.endpoints ?? [])
          for (const a of e.addresses ?? []) add(sliceAddress(normaliseIP(a), to, protocol), to);
      }
    }
    // No backend found: the address as it is.
    if (out.length === 0)
      out.push({ peer: numberOf(classifyIP(peer.ip ?? '', undefined, port, protocol)), port });
    return out;
  };

  /** idleBackends's answers (worked out once each), by address, then by protocol and port. */
  const idleCache = new Map<string, Map<number, ServiceBackend[] | undefined>>();
  const idleBackends = (ip: string, port: number, protocol: string): ServiceBackend[] | undefined => {
    const entry = (unbackedClusterIPs.get(ip) ?? deletedUnbacked.get(ip))?.entry;
    const sel = entry?.service.spec.selector;
    if (entry === undefined || sel === undefined || Object.keys(sel).length === 0) return undefined;
    let byPort = idleCache.get(ip);
    if (byPort === undefined) idleCache.set(ip, (byPort = new Map<number, ServiceBackend[] | undefined>()));
    const key = (PROTOCOL_INDEX.get(protocol) ?? 7) * 65536 + port;
    if (byPort.has(key)) return byPort.get(key);
    const backing = podlessIn(entry.service.metadata.namespace!)
      .filter((w) => matchesSelector({ matchLabels: sel }, w.labels))
      .map((w) => w.id)
      .sort();
    let out: ServiceBackend[] | undefined;
    if (backing.length > 0) {
      out = computeBackends(
        { ...entry, backing, slices: [] },
        { id: '', kind: 'private', ip },
        port,
        protocol,
      );
      if (out.some((b) => peerList[b.peer]!.kind !== 'workload')) out = undefined;
    }
    byPort.set(key, out);
    return out;
  };

  const resolve = (
    ep: FlowEndpoint,
    time: number,
    port?: number,
    timeless?: boolean,
    protocol?: string,
  ): Peer => peerList[resolveNumber(ep, time, port, timeless, protocol)]!;

  /** An endpoint that does not name a snapshot pod. */
  const resolveOther = (
    ep: FlowEndpoint,
    time: number,
    port: number | undefined,
    timeless: boolean,
    protocol: string | undefined,
  ): Peer => {
    if (ep.pod && ep.namespace) return resolveUnknownPod(ep, ep.namespace, ep.pod, time, port);
    const ip = ep.ip ? normaliseIP(ep.ip) : undefined;
    if (ep.reserved === 'kube-apiserver') {
      // The `kubernetes` Service's ClusterIP, which a collector may mark as the API server too, is a
      // Service like any other: translated to its endpoints' port (443 → 6443).
      const svc = ip === undefined ? undefined : serviceIPs.get(ip);
      if (svc !== undefined) {
        stats.byServiceIP++;
        return peerList[servicePeer(svc, ip!)]!;
      }
      return countKind(classifyIP(ep.ip ?? '', 'kube-apiserver', port));
    }
    if (ip && ep.reserved !== 'world' && ep.reserved !== 'host' && ep.reserved !== 'remote-node') {
      const p = byIP(ip, time, timeless);
      if (p) return p;
    }
    // A Service's external or load-balancer IP on one of its ports (a pod calling a public name that
    // resolves to its own cluster's load balancer): translated to the backends before any policy applies,
    // as a ClusterIP is, whatever the collector labelled it. A pod's address stays its own; a node's is
    // taken by classifyIP (after the host-network and hostPort listeners and the nodePorts).
    if (ip && port !== undefined && ep.reserved !== 'host' && ep.reserved !== 'remote-node') {
      const svc = serviceAddrFor(ip, port, protocol);
      if (svc !== undefined && !nodeIPs.has(ip) && !ipHolders.first.has(ip)) {
        stats.byServiceIP++;
        return peerList[servicePeer(svc, ip)]!;
      }
    }
    if (!ip) {
      const p = ep.reserved === undefined ? resolveUnaddressed(ep) : undefined;
      if (p) return p;
      stats.unattributed++;
      return countKind({ id: 'unknown', kind: 'unknown' });
    }
    const p = classifyIP(ip, ep.reserved, port, protocol);
    if (p.kind === 'private') stats.unattributed++;
    // A node's port translated to a pod (a Service's nodePort, a pod's hostPort): no reserved peer.
    if (p.kind === 'service') {
      stats.byServiceIP++;
      return p;
    }
    return countKind(p);
  };

  /**
   * An endpoint that names a pod the snapshot does not have: Hubble's workload, a label match or the
   * workload the pod's name is shaped after; else the pod itself. Never the pod that holds its address in
   * the snapshot: that is another pod (addresses are reused, and the named one is gone).
   */
  const resolveUnknownPod = (
    ep: FlowEndpoint,
    ns: string,
    pod: string,
    time: number,
    port?: number,
  ): Peer => {
    const ip = ep.ip ? normaliseIP(ep.ip) : undefined;
    const named = unknownPodWorkload(ep, ns, pod);
    if (named !== undefined) {
      if (ip) learn(ip, named, time);
      return workloadPeer(named);
    }
    if (ep.reserved === 'kube-apiserver') return countKind(classifyIP(ep.ip ?? '', 'kube-apiserver', port));
    // No workload metadata and no workload of its name: keep it as a bare pod.
    stats.unattributed++;
    const id = observedWorkload(ns, 'Pod', pod, ep.labels);
    if (ip) learn(ip, id, time);
    return workloadPeer(id);
  };

  const podNameMatchCache = new Map<string, string | undefined>();
  const unknownPodWorkload = (ep: FlowEndpoint, ns: string, pod: string): string | undefined => {
    if (ep.workload) {
      stats.byHubbleWorkload++;
      return observedWorkload(ns, ep.workload.kind, ep.workload.name, ep.labels);
    }
    // A pod gone from the snapshot: the workload of its namespace whose selector its labels match.
    const byLabels = ep.labels && ep.labels.length > 0 ? workloadByLabels(ns, ep.labels) : undefined;
    if (byLabels) {
      stats.byLabels++;
      return byLabels;
    }
    // Remembered per pod: a pod gone from the snapshot is named by every flow of it.
    const key = `${ns}/${pod}`;
    let byName = podNameMatchCache.get(key);
    if (byName === undefined && !podNameMatchCache.has(key))
      podNameMatchCache.set(key, (byName = workloadByPodName(workloads, ns, pod)));
    if (byName) {
      stats.byPodName++;
      return byName;
    }
    return undefined;
  };

  const labelMatchCache = new Map<string, string | undefined>();
  const workloadByLabels = (ns: string, labels: string[]): string | undefined => {
    const key = `${ns}\u0000${labels.join(',')}`;
    if (labelMatchCache.has(key)) return labelMatchCache.get(key);
    const l = labelsFromList(labels);
    const candidates = [...workloads.values()].filter(
      (w) =>
        w.namespace === ns &&
        !w.observedOnly &&
        Object.keys(w.selector).length > 0 &&
        matchesSelector(w.selector, l),
    );
    // Only an unambiguous match counts.
    const found = candidates.length === 1 ? candidates[0]!.id : undefined;
    labelMatchCache.set(key, found);
    return found;
  };

  /**
   * The workload of the snapshot a collector names as `kind`/`name` in namespace `ns`: the kind in any
   * case (`deployment`), an owned object (a ReplicaSet, a Job) taken to its root workload, a pod to its
   * workload, a custom resource's workload (CloudNativePG's `Cluster`) by its kind as spelt. Undefined
   * when the snapshot has none (nor one the name of a missing ReplicaSet or Job is shaped after).
   */
  const namedWorkload = (ns: string, kind: string, name: string, labels: string[] | undefined) => {
    const k = canonicalKind(kind);
    if (k === undefined) {
      // A custom resource's workload (customController), its kind spelt as the owner reference spells it,
      // or one the workload label names.
      const custom = workloads.get(workloadId(ns, kind, name));
      return custom !== undefined && !custom.observedOnly && !isKnownKind(custom.kind)
        ? custom.id
        : undefined;
    }
    if (k === 'Pod') {
      const index = podWorkloadByNs.get(ns)?.get(name);
      if (index !== undefined) return podWorkloadIds[index]!;
    }
    const id = workloadId(ns, k, name);
    const root = ownedRoots.get(id);
    if (root !== undefined) return root;
    const w = workloads.get(id);
    if (w !== undefined && !w.observedOnly) return id;
    return rootByShape(workloads, ns, k, name, labels);
  };

  /**
   * The workload a collector names: the snapshot's (namedWorkload), else one reconstructed from the flow,
   * of the kind named (a Pod when it is no workload kind).
   */
  const observedWorkload = (ns: string, kind: string, name: string, labels: string[] | undefined): string => {
    const known = namedWorkload(ns, kind, name, labels);
    if (known !== undefined) return known;
    const k: WorkloadKind = canonicalKind(kind) ?? 'Pod';
    const id = workloadId(ns, k, name);
    if (!workloads.has(id)) {
      workloads.set(id, flowOnlyWorkload(ns, k, name, labelsFromList(labels ?? [])));
      warnings.push(
        `workload ${id} was seen in flows but is not in the snapshot; its selector comes from flow labels`,
      );
    }
    return id;
  };

  /**
   * An endpoint with neither pod nor address (a Kubescape local side or selector neighbour, a generic
   * endpoint given by namespace and workload or labels): the workload of the snapshot it names; else
   * the workloads whose pods its selector (or its labels, read as one) selects; else the workload it
   * names, reconstructed. Undefined when none is known.
   */
  const resolveUnaddressed = (ep: FlowEndpoint): Peer | undefined => {
    const ns = ep.namespace;
    const named =
      ep.workload && ns !== undefined
        ? namedWorkload(ns, ep.workload.kind, ep.workload.name, ep.labels)
        : undefined;
    if (named !== undefined) {
      stats.byHubbleWorkload++;
      return workloadPeer(named);
    }
    const selector =
      ep.selector ??
      (ns !== undefined && ep.labels && ep.labels.length > 0
        ? { podSelector: { matchLabels: labelsFromList(ep.labels) } }
        : undefined);
    if (selector !== undefined) {
      const p = bySelector(
        selector,
        ns,
        ep.selector === undefined ? ep.labels : undefined,
        ep.workload !== undefined,
      );
      if (p !== undefined) {
        stats.byLabels++;
        return p;
      }
    }
    if (ep.workload && ns !== undefined) {
      stats.byHubbleWorkload++;
      return workloadPeer(observedWorkload(ns, ep.workload.kind, ep.workload.name, ep.labels));
    }
    return undefined;
  };

  // Every namespace a namespaceSelector may select: the snapshot's Namespace objects and those of its
  // workloads (a snapshot may list no namespaces).
  const knownNamespaces = [
    ...new Set([...namespaceLabels.keys(), ...[...workloads.values()].map((w) => w.namespace)]),
  ].sort();
  /** What each selector of a flow endpoint resolved to (null: nothing), by its selectors and namespace. */
  const selectorCache = new Map<string, Peer | null>();
  /** The workloads each selector peer stands for (its backends), by its number. */
  const selectedBy = new Map<number, readonly string[]>();

  /**
   * The pods a selector of a flow endpoint selects, as a peer: their one workload, or a `selector` peer
   * standing for each of several (the collector does not say which pods connected, so a connection of it
   * counts for each, as one to a Service's ClusterIP does for each backend). `podLabels`, for an endpoint
   * that gave labels and no selector: when no workload's pods carry them all, the one workload whose
   * selector they match (the labels of one pod). `quiet`: say nothing when none is found.
   */
  const bySelector = (
    selector: NonNullable<FlowEndpoint['selector']>,
    ns: string | undefined,
    podLabels: string[] | undefined,
    quiet: boolean,
  ): Peer | undefined => {
    const key = JSON.stringify([
      ns ?? null,
      selector.podSelector ?? null,
      selector.namespaceSelector ?? null,
      podLabels ?? null,
      quiet,
    ]);
    const cached = selectorCache.get(key);
    if (cached !== undefined) return cached ?? undefined;
    let peer: Peer | null = null;
    // Labels Kubernetes generates per pod or run (pod-template-hash, job-name) are on no pod template,
    // and the pods they named may be gone: they are left out. A selector of nothing else says nothing.
    const given = selector.podSelector ?? {};
    const pods = stableSelector(given);
    const what = describeSelection(pods, selector.namespaceSelector, ns);
    if (isEmptySelector(pods) && !isEmptySelector(given)) {
      if (!quiet)
        warnings.push(
          `${describeSelection(given, selector.namespaceSelector, ns)}: selected only by labels Kubernetes generates per pod or run, which no workload's pod template has, so a flow endpoint selecting them is unknown`,
        );
    } else {
      const nsSel = selector.namespaceSelector;
      const namespaces = new Set(
        nsSel !== undefined
          ? knownNamespaces.filter((n) =>
              matchesSelector(nsSel, { ...namespaceLabels.get(n), [NAMESPACE_NAME_LABEL]: n }),
            )
          : ns !== undefined
            ? [ns]
            : [],
      );
      const found = [...workloads.values()]
        .filter((w) => namespaces.has(w.namespace) && !w.observedOnly && matchesSelector(pods, w.labels))
        .map((w) => w.id)
        .sort();
      const one =
        found.length === 0 && podLabels !== undefined && ns !== undefined
          ? workloadByLabels(ns, podLabels)
          : found.length === 1
            ? found[0]
            : undefined;
      if (one !== undefined) peer = workloadPeer(one);
      else if (found.length > 1) {
        const n = numberOf({ id: `selector:${what}`, kind: 'selector' });
        selectedBy.set(n, found);
        peer = peerList[n]!;
        const shown = found.length > 5 ? [...found.slice(0, 5), `and ${found.length - 5} more`] : found;
        warnings.push(
          `${what} (a flow endpoint with no pod or address) are the pods of ${found.length} workloads (${shown.join(', ')}): the collector does not say which connected, so its connections count for each`,
        );
      } else if (!quiet)
        warnings.push(`no workload of the snapshot has ${what}: a flow endpoint selecting them is unknown`);
    }
    selectorCache.set(key, peer);
    return peer ?? undefined;
  };

  for (const w of workloads.values()) {
    if (!w.observedOnly && Object.keys(w.selector).length === 0) {
      warnings.push(`workload ${w.id} has no stable labels: no policy can select it precisely`);
    }
    if (w.hostNetwork)
      warnings.push(`workload ${w.id} uses the host network: NetworkPolicy does not apply to it`);
  }
  // A node's addresses no rule names (an ExternalIP), where a host-network workload runs: said once per node.
  for (const node of [...hostNetworkOn.keys()].sort(compareText)) {
    const on = hostNetworkOn.get(node)!;
    const left = (nodeOtherAddresses.get(node) ?? []).filter((o) => !on.held.has(o.ip));
    if (left.length === 0) continue;
    warnings.push(
      `node ${node}: ${left.map((o) => o.text).join(', ')} left out of the rules of the host-network workload(s) on it (${[...on.workloads].sort(compareText).join(', ')}): a host-network workload is written at its nodes' InternalIP addresses and its pods' status.hostIP(s), the addresses its connections with pods show`,
    );
  }

  for (const w of opts.observed ?? []) {
    if (workloads.has(w.id) || (w.kind === 'Pod' && podWorkload.has(`${w.namespace}/${w.name}`))) continue;
    workloads.set(w.id, { ...w, observedOnly: true });
    warnings.push(
      `workload ${w.id} was seen in flows but is not in the snapshot; its selector comes from flow labels`,
    );
  }

  const apiserverEndpoints = {
    ips: [...apiEndpointIPs].sort(),
    ports: [...apiEndpointPorts].sort((a, b) => a - b),
  };
  const podNetworks = [...new Set([...ipHolders.first.keys()].map(podNetworkOf))].sort();
  return {
    workloads,
    podWorkload,
    apiserverIPs,
    apiserverEndpoints,
    podNetworks,
    ipv6: serviceIPv6 || podNetworks.some((n) => n.includes(':')),
    clusterDNS,
    clusterDNSServicePorts,
    unbackedClusterIPs: new Map(
      [...deletedUnbacked, ...unbackedClusterIPs].map(([ip, u]) => [ip, u.service]),
    ),
    warnings,
    jobWarnings,
    stats,
    resolve,
    resolveNumber,
    peerAt: (n) => peerList[n]!,
    serviceBackends,
    servicePeers,
    idleBackends,
  };
}

/** A port a cluster DNS workload takes DNS queries on. */
export interface DNSPort {
  protocol: 'UDP' | 'TCP';
  port: number;
}

/** The Service pods resolve names through, on its ClusterIP's port 53. */
export const CLUSTER_DNS_SERVICE: { readonly namespace: string; readonly name: string } = {
  namespace: 'kube-system',
  name: 'kube-dns',
};

const DNS_PROTOCOLS = ['UDP', 'TCP'] as const;

/**
 * Where each workload behind the cluster DNS Service takes DNS queries. Pods resolve through the
 * `kube-system/kube-dns` Service's port 53 (or `service`'s), and policies apply after its ClusterIP is
 * translated: to the Service port's targetPort, for UDP and for TCP, as `serviceBackends` resolves it
 * for each backend (a number, or a container port's name each pod gives a number: CoreDNS listening on
 * 5353). By workload id; a workload the Service does not reach on a protocol has no port of it (nor has
 * any workload when the snapshot has no such Service, or no pod behind it), and the caller falls back
 * (`dnsRulePorts`).
 */
export function clusterDNSPorts(
  identity: Pick<Identity, 'servicePeers' | 'serviceBackends' | 'peerAt'>,
  service: { readonly namespace: string; readonly name: string } = CLUSTER_DNS_SERVICE,
): Map<string, DNSPort[]> {
  const out = new Map<string, DNSPort[]>();
  for (const n of identity.servicePeers(service.namespace, service.name))
    for (const protocol of DNS_PROTOCOLS)
      for (const b of identity.serviceBackends(n, 53, protocol) ?? []) {
        const peer = identity.peerAt(b.peer);
        // No backend found: the Service's address itself, which is no DNS workload.
        if (peer.kind !== 'workload') continue;
        let ports = out.get(peer.id);
        if (!ports) out.set(peer.id, (ports = []));
        if (!ports.some((p) => p.protocol === protocol && p.port === b.port))
          ports.push({ protocol, port: b.port });
      }
  return out;
}

/**
 * The targetPorts of a DNS Service's port 53 that are numbers, UDP then TCP: the port every pod behind it
 * takes a query on, known without the pods. None for a protocol the Service has no port 53 of, nor for
 * one whose targetPort is a container port's name, which only the pods give a number (`clusterDNSPorts`
 * resolves it pod by pod). An unset targetPort is the port itself, as the API server defaults it.
 */
export function dnsServicePorts(svc: Service | undefined): DNSPort[] {
  const out: DNSPort[] = [];
  for (const protocol of DNS_PROTOCOLS) {
    const sp = svc?.spec.ports?.find((p) => p.port === 53 && (p.protocol ?? 'TCP') === protocol);
    const target = sp ? (sp.targetPort ?? sp.port) : undefined;
    if (typeof target === 'number') out.push({ protocol, port: target });
    else if (target !== undefined && /^[0-9]+$/.test(target)) out.push({ protocol, port: Number(target) });
  }
  return out;
}

/**
 * The ports one rule to the cluster DNS pods opens, UDP then TCP, each ascending. For each protocol:
 * every port the DNS workloads it covers take queries on (`resolved`: values of `clusterDNSPorts`);
 * without one, the Service's numeric targetPort (`servicePorts`, from `dnsServicePorts`: the pods are not
 * known, or no pod of theirs resolves the Service's port); without that either, 53 (no such Service or
 * port, or a targetPort by name that no known pod resolves).
 */
export function dnsRulePorts(
  resolved: Iterable<readonly { protocol: string; port: number }[]>,
  servicePorts: readonly { protocol: string; port: number }[],
): DNSPort[] {
  const all = [...resolved].flat();
  const out: DNSPort[] = [];
  for (const protocol of DNS_PROTOCOLS) {
    const of = (list: readonly { protocol: string; port: number }[]) =>
      list.filter((p) => p.protocol === protocol).map((p) => p.port);
    let ports = of(all);
    if (ports.length === 0) ports = of(servicePorts);
    if (ports.length === 0) ports = [53];
    for (const port of [...new Set(ports)].sort((a, b) => a - b)) out.push({ protocol, port });
  }
  return out;
}

function podNetworkOf(ip: string): string {
  if (!ip.includes(':')) {
    const [a, b] = ip.split('.');
    return `${a}.${b}.0.0/16`;
  }
  return ipv6Network(ip, 48);
}

/**
 * The shapes controllers give their pods' names, with the owning workload's name first: a Deployment's
 * pods are `<deployment>-<pod-template-hash>-<5>`, a StatefulSet's `<statefulset>-<ordinal>`, a
 * DaemonSet's `<daemonset>-<5>`, a CronJob's (through its Jobs) `<cronjob>-<scheduled minute>-<5>`.
 */
const POD_NAME_SHAPES: readonly (readonly [WorkloadKind, RegExp])[] = [
  ['Deployment', /^(.+)-[a-z0-9]+-[a-z0-9]{5}$/],
  ['Rollout', /^(.+)-[a-z0-9]+-[a-z0-9]{5}$/],
  ['StatefulSet', /^(.+)-\d+$/],
  ['DaemonSet', /^(.+)-[a-z0-9]{5}$/],
  ['CloneSet', /^(.+)-[a-z0-9]{5}$/],
  ['CronJob', /^(.+)-\d+-[a-z0-9]{5}$/],
];

/**
 * The workload of namespace `ns` a pod gone from the snapshot was made by, from its name's shape: only a
 * workload of the snapshot (not one reconstructed from flows) counts, and only when one fits the name.
 */
function workloadByPodName(
  workloads: ReadonlyMap<string, Workload>,
  ns: string,
  pod: string,
): string | undefined {
  let found: string | undefined;
  for (const [kind, shape] of POD_NAME_SHAPES) {
    const name = shape.exec(pod)?.[1];
    if (name === undefined) continue;
    const w = workloads.get(workloadId(ns, kind, name));
    if (w === undefined || w.observedOnly) continue;
    if (found !== undefined) return undefined; // two fit: the name says nothing
    found = w.id;
  }
  return found;
}

/** The label Kubernetes sets on every namespace to its name. */
const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

/** The kinds a collector may name a workload by, in any case (`deployment`), as identity spells them. */
const KINDS: ReadonlyMap<string, WorkloadKind> = new Map(WORKLOAD_KINDS.map((k) => [k.toLowerCase(), k]));

/** Whether `kind` is one microseg knows by name (not a custom resource's, see customController). */
function isKnownKind(kind: WorkloadKind): kind is KnownWorkloadKind {
  return KINDS.get(kind.toLowerCase()) === kind;
}

function canonicalKind(kind: string): WorkloadKind | undefined {
  return KINDS.get(kind.toLowerCase());
}

/**
 * The root workload of the snapshot an owned object's name is shaped after, when the object's own
 * ownership is not known: a ReplicaSet `<deployment>-<pod-template-hash>` (the hash from `labels` when
 * they give it), a Job `<cronjob>-<scheduled minute>`. Only a workload of the snapshot counts.
 */
function rootByShape(
  workloads: ReadonlyMap<string, Workload>,
  ns: string,
  kind: string,
  name: string,
  labels: readonly string[] | undefined,
): string | undefined {
  let root: string | undefined;
  let rootKind: WorkloadKind;
  if (kind === 'ReplicaSet') {
    // A Rollout's ReplicaSet when the labels give its hash, else a Deployment's.
    const rollout = labels?.find((l) => l.startsWith('rollouts-pod-template-hash='));
    const key = rollout !== undefined ? 'rollouts-pod-template-hash=' : 'pod-template-hash=';
    const hash = labels?.find((l) => l.startsWith(key))?.slice(key.length);
    root =
      hash && name.endsWith(`-${hash}`)
        ? name.slice(0, -hash.length - 1)
        : /^(.+)-[a-z0-9]+$/.exec(name)?.[1];
    rootKind = rollout !== undefined ? 'Rollout' : 'Deployment';
  } else if (kind === 'Job') {
    root = /^(.+)-\d+$/.exec(name)?.[1];
    rootKind = 'CronJob';
  } else return undefined;
  if (root === undefined) return undefined;
  const w = workloads.get(workloadId(ns, rootKind, root));
  return w !== undefined && !w.observedOnly ? w.id : undefined;
}

/** A label selector as kubectl writes one (`app=web,tier in (a,b),!canary`); empty when it is. */
export function selectorText(sel: LabelSelector): string {
  const parts = Object.keys(sel.matchLabels ?? {})
    .sort()
    .map((k) => `${k}=${sel.matchLabels![k]}`);
  for (const e of sel.matchExpressions ?? []) {
    if (e.operator === 'Exists') parts.push(e.key);
    else if (e.operator === 'DoesNotExist') parts.push(`!${e.key}`);
    else parts.push(`${e.key} ${e.operator.toLowerCase()} (${(e.values ?? []).join(',')})`);
  }
  return parts.join(',');
}

/**
 * What a pod selector and a namespace selector (or namespace `ns`) select, in words: `pods labelled
 * app=web in namespace shop`, `every pod in the namespaces labelled team=a`.
 */
function describeSelection(
  pods: LabelSelector,
  nsSel: LabelSelector | undefined,
  ns: string | undefined,
): string {
  const where =
    nsSel !== undefined
      ? isEmptySelector(nsSel)
        ? 'in every namespace'
        : `in the namespaces labelled ${selectorText(nsSel)}`
      : `in namespace ${ns ?? '?'}`;
  return `${isEmptySelector(pods) ? 'every pod' : `pods labelled ${selectorText(pods)}`} ${where}`;
}

function labelsFromList(list: readonly string[]): Record<string, string> {
  const l: Record<string, string> = {};
  for (const kv of list) {
    const eq = kv.indexOf('=');
    if (eq > 0) l[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return l;
}

function podKey(p: Pod): string {
  return [p.metadata.namespace, p.metadata.name].join('/');
}

function addRole(w: Workload | undefined, role: WorkloadRole): void {
  if (w && !w.roles.includes(role)) {
    w.roles.push(role);
    w.roles.sort();
  }
}

/**
 * The workload a pod is named after: the one its workload label names (WORKLOAD_LABEL), else its root
 * owner (ReplicaSet→Deployment, ReplicaSet→Argo Rollout, Job→CronJob; a StatefulSet, a DaemonSet, an
 * OpenKruise CloneSet, an orphaned ReplicaSet or Job as itself; a custom resource that controls it), the
 * pod itself when it has no owner or one of another kind. The one naming of workloads every part of
 * microseg uses. A plain function, not a closure of buildIdentity: a closure there would keep the whole
 * snapshot alive as long as `resolve` lives.
 */
export function rootOwner(pod: Pod, ownership: Ownership): { kind: WorkloadKind; name: string } {
  // The label wins over owners: the user says which workload the pod is.
  const labelled = pod.metadata.labels?.[WORKLOAD_LABEL];
  return labelled ? { kind: LABELLED_KIND, name: labelled } : ownerWorkload(pod, ownership);
}

/**
 * The workload a pod's owners make it part of, the workload label left aside (rootOwner heeds it): what
 * a target naming an owner (an Isolation of a CloneSet, `explain --from ns/CloneSet/web`) takes the pods of.
 */
export function ownerWorkload(pod: Pod, ownership: Ownership): { kind: WorkloadKind; name: string } {
  const first = pod.metadata.ownerReferences?.find((o) => o.controller) ?? pod.metadata.ownerReferences?.[0];
  if (!first) return { kind: 'Pod', name: pod.metadata.name };
  return (
    ownerRoot(pod.metadata.namespace!, first, pod.metadata.labels, ownership, podCreated(pod)) ??
    (customController(first)
      ? { kind: first.kind, name: first.name }
      : { kind: 'Pod', name: pod.metadata.name })
  );
}

/** API groups whose kinds are no custom resources: the core group (`v1`), `apps` and `batch`. */
const BUILT_IN_GROUPS: ReadonlySet<string> = new Set(['', 'apps', 'batch']);

/**
 * Whether a pod's owner reference names a custom resource that is the pod's controller, of a kind
 * microseg does not know (an operator's: CloudNativePG's `postgresql.cnpg.io` Cluster, Strimzi's
 * StrimziPodSet, KubeVirt's VirtualMachineInstance): the pods it controls are one workload of its kind
 * and name, as Cilium's workload names them. Not a core kind's (a mirror pod's Node, a Spark executor's
 * driver Pod), nor a reference without `controller: true` or `apiVersion`, nor a kind spelt as one
 * microseg knows or LABELLED_KIND (their ids would be one).
 */
export function customController(
  ref: Readonly<{ kind: string; apiVersion?: string; controller?: boolean }>,
): boolean {
  if (ref.controller !== true || typeof ref.apiVersion !== 'string') return false;
  const slash = ref.apiVersion.indexOf('/');
  if (slash <= 0 || BUILT_IN_GROUPS.has(ref.apiVersion.slice(0, slash))) return false;
  return (
    ref.kind !== '' &&
    ref.kind !== LABELLED_KIND &&
    !(WORKLOAD_KINDS as readonly string[]).includes(ref.kind) &&
    !ref.kind.includes('/')
  );
}

/**
 * The root workload of an owner named by a pod (or asked for by name): owner references walked up, an
 * owner absent from the snapshot inferred from its name's shape (`podLabels` give a ReplicaSet's
 * pod-template-hash, or the rollouts-pod-template-hash of an Argo Rollout's). The walk ends at a custom
 * workload kind (CUSTOM_WORKLOAD_KINDS: a ReplicaSet's Rollout), whose object the snapshot need not have:
 * the owner reference names it. Undefined for an owner of a kind that is not a workload's. `podCreated`:
 * when the pod was made (its creationTimestamp, else its startTime), which with `podLabels` tells a Job
 * absent from the snapshot as a CronJob's run also when the CronJob is absent (cronJobOfRun); the
 * ownership's `jobFirstPod`, when it has the Job, gives the time of its first pod instead.
 */
export function ownerRoot(
  ns: string,
  owner: Readonly<{ kind: string; name: string; uid?: string }>,
  podLabels: Readonly<Record<string, string>> | undefined,
  { byUid, ownerByKey, objByKey, jobFirstPod }: Ownership,
  podCreated?: string,
): { kind: WorkloadKind; name: string } | undefined {
  const custom = CUSTOM_WORKLOAD_KINDS.get(owner.kind);
  if (custom !== undefined && isCustomOwner(owner, custom.owns))
    return { kind: owner.kind, name: owner.name };
  let uid = owner.uid;
  let kind = owner.kind;
  let name = owner.name;
  for (let depth = 0; depth < 5; depth++) {
    const parent = (uid ? byUid.get(uid) : undefined) ?? ownerByKey.get(`${ns}/${kind}/${name}`);
    // A ReplicaSet of an Argo Rollout: the Rollout is the workload, whatever the revision.
    if (parent && kind === 'ReplicaSet' && isCustomOwner(parent, 'ReplicaSet'))
      return { kind: parent.kind, name: parent.name };
    // An owner of another kind (an operator's custom resource owning a StatefulSet) is no workload: the
    // workload is the last of the chain that is one, not each of its pods.
    if (!parent || !OWNER_KINDS.has(parent.kind)) break;
    kind = parent.kind;
    name = parent.name;
    uid = undefined;
  }
  // A ReplicaSet whose parent object is absent from the snapshot: infer the Deployment from the name's shape.
  if (kind === 'ReplicaSet' && !objByKey.has(`${ns}/ReplicaSet/${name}`)) {
    const hash = podLabels?.['pod-template-hash'];
    if (hash && name.endsWith(`-${hash}`))
      return { kind: 'Deployment', name: name.slice(0, -hash.length - 1) };
    // Argo Rollouts names its ReplicaSets `<rollout>-<hash>` and labels their pods with the hash alone.
    const rolloutHash = podLabels?.['rollouts-pod-template-hash'];
    if (rolloutHash && name.endsWith(`-${rolloutHash}`))
      return { kind: 'Rollout', name: name.slice(0, -rolloutHash.length - 1) };
  }
  // Likewise a Job (history limits delete finished Jobs and the garbage collector their pods later, and a
  // snapshot may list no jobs): the CronJob controller names its Jobs `<cronjob>-<scheduled time in
  // minutes>`. A CronJob of that name in the namespace makes it one of its runs, and so, with no such
  // CronJob in the snapshot either, does the pod when it tells a run (cronJobOfRun); otherwise each run
  // is a workload of its own, its name and policy changing every run (buildIdentity warns of it).
  if (kind === 'Job' && !objByKey.has(`${ns}/Job/${name}`)) {
    const cronJob = /^(.+)-\d+$/.exec(name)?.[1];
    if (cronJob !== undefined && objByKey.has(`${ns}/CronJob/${cronJob}`))
      return { kind: 'CronJob', name: cronJob };
    // Neither in the snapshot (`kubectl get pods` alone): the run's name and its pods tell it, by the
    // first of them made (jobFirstPod) when the pods are known, so that all of them are one workload.
    const run = cronJobOfRun(name, podLabels, jobFirstPod?.get(`${ns}/Job/${name}`) ?? podCreated);
    if (run !== undefined) return { kind: 'CronJob', name: run.cronJob };
  }
  if (OWNER_KINDS.has(kind)) return { kind, name };
  return undefined;
}

/** The first minute a CronJob's Job may be named after: 2015-01-01T00:00Z (Kubernetes had no CronJob before). */
const FIRST_RUN_MINUTE = Date.UTC(2015, 0, 1) / 60_000;

/** How long after its Job's scheduled minute its first pod may start and it still be taken for a run. */
const RUN_START_WINDOW_MS = 24 * 3600_000;

/**
 * The CronJob a Job absent from the snapshot is a run of, told by its name and its pod alone (the
 * snapshot lacking the CronJob too): the CronJob controller names its Jobs `<cronjob>-<scheduled time
 * in minutes since 1970>`, and the Job controller labels their pods with the Job's name. A run when the
 * pod's `job-name` (or `batch.kubernetes.io/job-name`) label is the Job's name, the name ends in a
 * minute from 2015 on, and `podCreated` (the Job's first pod's time: Ownership's jobFirstPod) is from
 * that minute to a day after it (a minute of clock skew allowed): a Job of another name, or one whose
 * pod's time is not known, is not taken for a run.
 * Undefined otherwise.
 */
export function cronJobOfRun(
  job: string,
  podLabels: Readonly<Record<string, string>> | undefined,
  podCreated: string | undefined,
): { cronJob: string; minute: number } | undefined {
  return runMiss(job, podLabels, podCreated) === null ? runShape(job, podCreated) : undefined;
}

/**
 * A Job name of a CronJob's run's shape: `<cronjob>-<minute>`, the minute from 2015 on and, when the
 * time its pod was made is known, not after it (a minute of clock skew allowed): the CronJob controller
 * makes a run's Job at its scheduled minute or later. Undefined for any other name (db-migrate, or
 * backup-20260302, a date: a minute of 2008).
 */
function runShape(job: string, made: string | undefined): { cronJob: string; minute: number } | undefined {
  const m = /^(.+)-(\d{1,12})$/.exec(job);
  if (m === null) return undefined;
  const minute = Number(m[2]);
  if (minute < FIRST_RUN_MINUTE) return undefined;
  const created = made === undefined ? NaN : Date.parse(made);
  if (Number.isFinite(created) && created - minute * 60_000 < -60_000) return undefined;
  return { cronJob: m[1]!, minute };
}

/**
 * Why a Job of a run's shape (runShape) is not taken for a CronJob's run (cronJobOfRun): its pod does
 * not carry the Job's name in its job-name label, its time is not known, or it was made more than a day
 * after the minute. Null when it is taken for one, undefined when its name has no run's shape.
 */
function runMiss(
  job: string,
  podLabels: Readonly<Record<string, string>> | undefined,
  made: string | undefined,
): string | null | undefined {
  const shape = runShape(job, made);
  if (shape === undefined) return undefined;
  if (podLabels?.['batch.kubernetes.io/job-name'] !== job && podLabels?.['job-name'] !== job)
    return 'its pod carries no job-name label naming it';
  const created = made === undefined ? NaN : Date.parse(made);
  if (!Number.isFinite(created)) return 'the snapshot gives no time its pods were made';
  if (created - shape.minute * 60_000 > RUN_START_WINDOW_MS)
    return 'its first pod was created more than a day after that minute';
  return null;
}

/** When a pod was made: its creationTimestamp, else its startTime. */
function podCreated(pod: Pod): string | undefined {
  return pod.metadata.creationTimestamp ?? pod.status?.startTime ?? undefined;
}

/**
 * The pods whose Job the snapshot lacks (see noteMissingJob): by CronJob inferred from its Job's name
 * (cronJobOfRun), the first Job name of it; the workloads named after such a Job.
 */
interface MissingJobs {
  inferred: Map<string, string>;
  /** Those of a CronJob's run's shape not taken for one (runMiss), with why and the Job's name. */
  jobs: Map<string, { job: string; why: string }>;
}

/**
 * Notes a pod named after `root` (its workload `id`) whose owner is a Job the snapshot lacks, unless
 * the CronJob that owns it is in the snapshot (its name is then stable): one named after a CronJob
 * inferred from the Job's name, or after the Job itself when its name is of a CronJob's run's shape
 * (runMiss). A Job of another name (db-migrate) is no CronJob's: its name does not change, nothing is
 * noted.
 */
function noteMissingJob(
  pod: Pod,
  root: { kind: string; name: string },
  id: string,
  { objByKey, jobFirstPod }: Ownership,
  out: MissingJobs,
): void {
  const ns = pod.metadata.namespace!;
  const ref = pod.metadata.ownerReferences?.find((o) => o.controller) ?? pod.metadata.ownerReferences?.[0];
  if (ref?.kind !== 'Job' || objByKey.has(`${ns}/Job/${ref.name}`)) return;
  if (root.kind === 'CronJob' && !objByKey.has(`${ns}/CronJob/${root.name}`)) {
    const before = out.inferred.get(id);
    if (before === undefined || compareText(ref.name, before) < 0) out.inferred.set(id, ref.name);
  } else if (root.kind === 'Job' && !out.jobs.has(id)) {
    const made = jobFirstPod?.get(`${ns}/Job/${ref.name}`) ?? podCreated(pod);
    const why = runMiss(ref.name, pod.metadata.labels, made);
    if (typeof why === 'string') out.jobs.set(id, { job: ref.name, why });
  }
}

const MISSING_JOBS_FIX = 'include jobs and cronjobs in the snapshot (kubectl get ...,jobs,cronjobs -o json)';

/**
 * The warnings of MissingJobs: one per CronJob inferred, one for every workload named after a Job whose
 * name is of a CronJob's run's shape though not taken for one.
 */
function missingJobWarnings({ inferred, jobs }: MissingJobs): string[] {
  const out: string[] = [];
  for (const id of [...inferred.keys()].sort(compareText)) {
    const job = inferred.get(id)!;
    const minute = Number(/-(\d+)$/.exec(job)![1]);
    out.push(
      `${id}: inferred from the name of its pods' Job ${job}, which the snapshot lacks, as it lacks the ` +
        `CronJob: a CronJob names its Jobs <cronjob>-<scheduled minute> (${minute}: ${minuteText(minute)}), ` +
        `and its first pod was created within a day after it; ${MISSING_JOBS_FIX}`,
    );
  }
  if (jobs.size > 0) {
    const ids = [...jobs.keys()].sort(compareText);
    const runs =
      'if a CronJob made one, each of its runs is another workload and its policy is named anew every run';
    if (ids.length === 1) {
      const { job, why } = jobs.get(ids[0]!)!;
      const minute = Number(/-(\d+)$/.exec(job)![1]);
      out.push(
        `${ids[0]!}: named after its pods' Job, which the snapshot lacks, whose name is of a CronJob's run ` +
          `(<cronjob>-<scheduled minute>: ${minute}, ${minuteText(minute)}) but not taken for one, as ${why}: ` +
          `${runs.replace('made one', 'made it')}; ${MISSING_JOBS_FIX}`,
      );
    } else
      out.push(
        `${ids.length} workloads are named after their pods' Job, which the snapshot lacks, whose name is of ` +
          `a CronJob's run (<cronjob>-<scheduled minute>) but not taken for one (${firstOf(ids)}): ${runs}; ` +
          MISSING_JOBS_FIX,
      );
  }
  return out;
}

/** A minute since 1970 as an ISO time (2026-03-02T10:30:00Z). */
const minuteText = (minute: number): string => new Date(minute * 60_000).toISOString().replace('.000Z', 'Z');

/** The kinds of workload objects that own pods. */
const OWNER_KINDS: ReadonlySet<string> = new Set([
  'Deployment',
  'StatefulSet',
  'DaemonSet',
  'CronJob',
  'Job',
  'ReplicaSet',
]);

/**
 * The value of the workload label (WORKLOAD_LABEL) on the pod template of `obj`, a workload object of
 * namespace `ns` (a Rollout's: that of the Deployment its workloadRef names, when it has none of its
 * own): the workload its pods are part of. Undefined when it carries none, and for a ReplicaSet or a Job,
 * whose template is their owner's.
 */
export function labelledTemplate(
  ns: string,
  obj: { kind: string; spec: unknown },
  objByKey: Ownership['objByKey'],
): string | undefined {
  if (obj.kind === 'ReplicaSet' || obj.kind === 'Job') return undefined;
  const ref = obj.kind === 'Rollout' ? referencedWorkload(ns, obj, objByKey) : undefined;
  return (
    templateOf(ref?.kind ?? obj.kind, (ref ?? obj).spec)?.metadata?.labels?.[WORKLOAD_LABEL] || undefined
  );
}

/** The pod template of a workload object's spec (a CronJob's: its Jobs'). */
export function templateOf(kind: string, spec: unknown): PodTemplate | undefined {
  const s = spec as
    { template?: PodTemplate; jobTemplate?: { spec?: { template?: PodTemplate } } } | undefined;
  return kind === 'CronJob' ? s?.jobTemplate?.spec?.template : s?.template;
}

/** Whether an EndpointSlice names an address. */
function namesAddress(es: EndpointSlice): boolean {
  return (es.endpoints ?? []).some((e) => (e.addresses?.length ?? 0) > 0);
}

/** The slices of a Service with a selector (one frozen empty list for all). */
const NO_SLICES: EndpointSlice[] = Object.freeze([]) as unknown as EndpointSlice[];

/**
 * The subsets of an Endpoints object as EndpointSlices: one per subset and address family, with the
 * subset's ports, as Kubernetes's EndpointSlice mirroring controller writes them.
 */
function endpointsAsSlices(endpoints: Endpoints): EndpointSlice[] {
  const { name, namespace } = endpoints.metadata;
  const out: EndpointSlice[] = [];
  for (const s of endpoints.subsets ?? []) {
    const byFamily: [string[], string[]] = [[], []];
    // Not-ready addresses too, as the mirroring controller writes them (`ready: false`) and as a slice's
    // endpoints are read whatever their conditions: readiness is as of the snapshot, not of the flow.
    for (const a of [...(s.addresses ?? []), ...(s.notReadyAddresses ?? [])]) {
      if (!a.ip) continue;
      const ip = normaliseIP(a.ip);
      byFamily[ip.includes(':') ? 1 : 0].push(ip);
    }
    for (const [family, addresses] of byFamily.entries()) {
      if (addresses.length === 0) continue;
      out.push({
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: { name, namespace, labels: { 'kubernetes.io/service-name': name } },
        addressType: family === 1 ? 'IPv6' : 'IPv4',
        endpoints: addresses.map((a) => ({ addresses: [a] })),
        ports: s.ports ?? [],
      });
    }
  }
  return out;
}

/**
 * The addresses other than its ClusterIPs that kube-proxy translates to a Service's backends: its
 * `spec.externalIPs` and its load balancer's IPs, but for those whose `ipMode` is `Proxy`.
 */
function translatedAddresses(svc: Service): string[] {
  const out: string[] = [];
  const external: unknown = svc.spec.externalIPs;
  if (Array.isArray(external)) for (const ip of external) if (isAddress(ip)) out.push(ip);
  const ingress = svc.status?.loadBalancer?.ingress;
  if (Array.isArray(ingress))
    for (const e of ingress) if (e?.ipMode !== 'Proxy' && isAddress(e?.ip)) out.push(e.ip);
  return out;
}

function isAddress(ip: unknown): ip is string {
  return typeof ip === 'string' && (isIPv4(ip) || isIPv6(ip));
}

/** The key of a host port: the node address (normalised), the protocol and the port. */
/**
 * The addresses a pod tells of its node, normalised: `status.hostIP`, `status.hostIPs` and, for a
 * host-network pod, its own addresses.
 */
function nodeAddressesOf(pod: Pod): string[] {
  const out: string[] = [];
  const add = (ip: unknown) => {
    if (typeof ip !== 'string' || ip === '') return;
    const n = normaliseIP(ip);
    if (!out.includes(n)) out.push(n);
  };
  add(pod.status?.hostIP);
  for (const h of Array.isArray(pod.status?.hostIPs) ? pod.status.hostIPs : []) add(h?.ip);
  if (pod.spec.hostNetwork) for (const ip of podIPs(pod)) add(ip);
  return out;
}

function hostPortKey(node: string, protocol: string, port: number): string {
  return [node, protocol, port].join('/');
}

/** The protocols a Service forwards. */
const SERVICE_PROTOCOLS: ReadonlySet<string> = new Set(['TCP', 'UDP', 'SCTP']);
/** Each protocol's place in the key of a Service's backends. */
const PROTOCOL_INDEX: ReadonlyMap<string, number> = new Map(
  ['TCP', 'UDP', 'SCTP', 'ICMPv4', 'ICMPv6'].map((p, i) => [p, i]),
);

function addNumber(into: Map<string, Map<string, number[]>>, id: string, key: string, n: number): void {
  let byName = into.get(id);
  if (!byName) into.set(id, (byName = new Map<string, number[]>()));
  const list = byName.get(key);
  if (!list) byName.set(key, [n]);
  else if (!list.includes(n)) list.push(n);
}

/** Notes the named container ports of a pod of workload `id`. */
function addNamedPortNumbers(
  into: Map<string, Map<string, number[]>>,
  id: string,
  containers: readonly Container[],
): void {
  for (const c of containers)
    for (const p of c.ports ?? [])
      if (p.name) addNumber(into, id, `${p.protocol ?? 'TCP'}/${p.name}`, p.containerPort);
}

/** The named ports of containers, sorted by name and number. */
function containerNamedPorts(containers: readonly Container[]): NamedPort[] {
  const out: NamedPort[] = [];
  for (const c of containers)
    for (const p of c.ports ?? [])
      if (p.name) out.push({ name: p.name, port: p.containerPort, protocol: p.protocol ?? 'TCP' });
  return out.sort((a, b) => compareText(a.name, b.name) || a.port - b.port);
}

function addVarying(into: Map<string, Set<string>>, id: string, key: string): void {
  const keys = into.get(id);
  if (keys) keys.add(key);
  else into.set(id, new Set([key]));
}

/** Workloads of a chart or mesh vary in the same labels: one frozen sorted list per distinct one. */
function sharedKeys(lists: Map<string, string[]>, keys: string[]): string[] {
  keys.sort(compareText);
  const key = keys.join('\n');
  let known = lists.get(key);
  if (known === undefined) lists.set(key, (known = Object.freeze(keys) as string[]));
  return known;
}

/** Workloads repeat the same ports (http 8080, metrics 9102, ...): one frozen list per distinct one. */
function sharedPorts(portLists: Map<string, NamedPort[]>, ports: NamedPort[]): NamedPort[] {
  if (ports.length === 0) return ports;
  const key = JSON.stringify(ports);
  let known = portLists.get(key);
  if (known === undefined) {
    for (const p of ports) Object.freeze(p);
    portLists.set(key, (known = Object.freeze(ports) as NamedPort[]));
  }
  return known;
}

/**
 * The named ports of `ports` that `pod` names alike too. Pods of two revisions of a workload can name a
 * port differently (`http`, then `web`): a rule naming either would miss the other revision's pods.
 */
function commonNamedPorts(portLists: Map<string, NamedPort[]>, ports: NamedPort[], pod: Pod): NamedPort[] {
  // Most pods name every port alike: nothing is made for them.
  const names = (p: NamedPort) => namesPort(pod.spec.containers, p);
  return ports.every(names) ? ports : sharedPorts(portLists, ports.filter(names));
}

/** Whether one of `containers` names port `p` (its name, number and protocol). */
function namesPort(containers: readonly Container[], p: NamedPort): boolean {
  for (const c of containers)
    for (const o of c.ports ?? [])
      if (o.name === p.name && o.containerPort === p.port && (o.protocol ?? 'TCP') === p.protocol)
        return true;
  return false;
}

/** The object of the ReplicaSet that owns `pod`, when the snapshot has it. */
function revisionOf(
  pod: Pod,
  objByKey: Ownership['objByKey'],
): { kind: string; metadata: ObjectMeta; spec: unknown } | undefined {
  const ref = pod.metadata.ownerReferences?.find((o) => o.controller) ?? pod.metadata.ownerReferences?.[0];
  return ref?.kind === 'ReplicaSet'
    ? objByKey.get(`${pod.metadata.namespace!}/ReplicaSet/${ref.name}`)
    : undefined;
}

/**
 * The workload object of the snapshot an Argo Rollout's `spec.workloadRef` names (a Deployment, whose
 * selector and template the Rollout takes instead of its own), when the Rollout has no template of its
 * own and the snapshot has the object.
 */
export function referencedWorkload(
  ns: string,
  rollout: { kind: string; spec: unknown } | undefined,
  objByKey: Ownership['objByKey'],
): { kind: string; metadata: ObjectMeta; spec: unknown } | undefined {
  if (rollout?.kind !== 'Rollout' || templateOf('Rollout', rollout.spec) !== undefined) return undefined;
  const ref = (rollout.spec as { workloadRef?: { kind?: unknown; name?: unknown } } | undefined)?.workloadRef;
  if (typeof ref?.kind !== 'string' || typeof ref.name !== 'string') return undefined;
  return objByKey.get(`${ns}/${ref.kind}/${ref.name}`);
}

/**
 * A workload of the snapshot: its selector and template are `owner`'s (its object), else those of
 * `revision` (a ReplicaSet of a Rollout, or the Deployment its workloadRef names), else its labels are
 * `pod`'s.
 */
function newWorkload(
  portLists: Map<string, NamedPort[]>,
  ns: string,
  kind: WorkloadKind,
  name: string,
  owner: { kind: string; metadata: ObjectMeta; spec: unknown } | undefined,
  pod: Pod | undefined,
  revision?: { kind: string; metadata: ObjectMeta; spec: unknown },
  fromPods?: Map<string, Pod>,
): Workload {
  const template =
    (owner ? templateOf(kind, owner.spec) : undefined) ??
    (revision ? templateOf(revision.kind, revision.spec) : undefined);
  const labels = stableLabels(template?.metadata?.labels ?? pod?.metadata.labels);
  // A pod carrying the workload label is that label's workload's, never this one's: a template carrying
  // it (the label just added, its pods of the old revision) says nothing of this one's pods.
  if (kind !== LABELLED_KIND) delete labels[WORKLOAD_LABEL];
  let selector: LabelSelector;
  const ownSelector =
    (owner?.spec as { selector?: LabelSelector } | undefined)?.selector ??
    (revision?.spec as { selector?: LabelSelector } | undefined)?.selector;
  if (ownSelector && kind !== 'Job' && kind !== 'CronJob') selector = stableSelector(ownSelector);
  else selector = Object.keys(labels).length > 0 ? { matchLabels: labels } : {};
  if (Object.keys(selector).length === 0 && Object.keys(labels).length > 0)
    selector = { matchLabels: labels };
  // Labels and selector both the pod's: narrowed to what its workload's pods share (sharedPodLabels).
  if (template === undefined && pod !== undefined && selector.matchLabels === labels)
    fromPods?.set(workloadId(ns, kind, name), pod);
  const containers = template?.spec?.containers ?? pod?.spec.containers ?? [];
  const namedPorts = sharedPorts(portLists, containerNamedPorts(containers));
  // The pin may sit on the object itself (kubectl label deployment …), which its pods never carry.
  const segmentLabel = owner?.metadata.labels?.[SEGMENT_LABEL];
  return {
    id: workloadId(ns, kind, name),
    namespace: ns,
    kind,
    name,
    selector,
    labels,
    namedPorts,
    pods: [],
    hostNetwork: template?.spec?.hostNetwork ?? pod?.spec.hostNetwork ?? false,
    roles: [],
    ...(segmentLabel ? { segmentLabel } : {}),
  };
}

/**
 * A workload whose labels and selector are those of `first`, its first pod (`fromPods` in buildIdentity):
 * only the labels every one of its pods carries alike are kept, so that the selector selects them all (a
 * Deployment's pods of two revisions whose object the snapshot lacks, a CloudNativePG cluster's primary
 * and replicas labelled `role=primary` and `role=replica`). A label whose value is the pod's own name
 * (CloudNativePG's `cnpg.io/instanceName`, Strimzi's `strimzi.io/pod-name`) or its node's (KubeVirt's
 * `kubevirt.io/nodeName`, which a live migration changes) or its controller's uid (KubeVirt's
 * `kubevirt.io/created-by`, which a VM restart changes: a new VirtualMachineInstance of the same name) is
 * no workload's, unless the workload is the pod itself. `varying` holds the keys the pods do not carry
 * alike; those left out join them. (With one pod, a label its operator gives each pod, a role, cannot be
 * told from one it gives them all: buildIdentity warns of a custom resource's workload with one pod.)
 */
function sharedPodLabels(w: Workload, first: Pod, varying: Map<string, Set<string>>): void {
  const vary = varying.get(w.id);
  const uid = first.metadata.ownerReferences?.find((o) => o.controller)?.uid;
  const perPod = (v: string) =>
    v === first.metadata.name || v === first.spec.nodeName || (!!uid && v === uid);
  const dropped: string[] = [];
  for (const k of Object.keys(w.labels))
    if (k !== WORKLOAD_LABEL && (vary?.has(k) || (w.kind !== 'Pod' && perPod(w.labels[k]!)))) dropped.push(k);
  if (dropped.length > 0) {
    const labels = { ...w.labels };
    for (const k of dropped) {
      delete labels[k];
      addVarying(varying, w.id, k);
    }
    w.labels = labels;
    w.selector = Object.keys(labels).length > 0 ? { matchLabels: labels } : {};
  }
}

/**
 * The pods of a namespace by label: key, then value, to the pods carrying it (their places in the
 * snapshot, in its order).
 */
type PodsByLabel = Map<string, Map<string, number[]>>;

/** The label index of `of`, places in `pods`. */
function podsByLabel(pods: readonly Pod[], of: readonly number[]): PodsByLabel {
  const index: PodsByLabel = new Map();
  for (const p of of) {
    const labels = pods[p]!.metadata.labels;
    if (labels === undefined) continue;
    for (const k of Object.keys(labels)) {
      let byValue = index.get(k);
      if (byValue === undefined) index.set(k, (byValue = new Map<string, number[]>()));
      const v = labels[k]!;
      const list = byValue.get(v);
      if (list === undefined) byValue.set(v, [p]);
      else list.push(p);
    }
  }
  return index;
}

/**
 * The pods of `index` that may carry every label of `sel` (not empty): those carrying the one of its
 * labels the fewest pods carry. None when a label of it is carried by none.
 */
function candidatePods(index: PodsByLabel, sel: Readonly<Record<string, string>>): readonly number[] {
  let fewest: readonly number[] | undefined;
  for (const k of Object.keys(sel)) {
    const list = index.get(k)?.get(sel[k]!);
    if (list === undefined) return [];
    if (fewest === undefined || list.length < fewest.length) fewest = list;
  }
  return fewest ?? [];
}

/**
 * The workloads behind a Service; `pods` are the snapshot's pods, `ids` their workloads, `inNamespace`
 * the Service's namespace's by label, `idle` the workloads there with no pod that may run again
 * (`podlessWorkloads`).
 */
function serviceWorkloads(
  svc: Service,
  pods: readonly Pod[],
  ids: readonly string[],
  inNamespace: PodsByLabel,
  workloads: ReadonlyMap<string, Workload>,
  idle: readonly Workload[],
): string[] {
  const sel = svc.spec.selector;
  if (!sel || Object.keys(sel).length === 0) return [];
  // Kubernetes sends a Service's traffic to none of the pods that have ended (Succeeded or Failed): a
  // completed Job whose pods carry the Service's labels (a chart's migration hook) is no backend. Only
  // when every pod selected has ended are their workloads the backends: the traffic observed reached
  // them while they ran.
  const running = new Set<string>();
  const ended = new Set<string>();
  for (const i of candidatePods(inNamespace, sel)) {
    const p = pods[i]!;
    if (matchesSelector({ matchLabels: sel }, p.metadata.labels)) {
      const id = ids[i];
      if (id) (p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed' ? ended : running).add(id);
    }
  }
  if (running.size > 0) return [...running].sort();
  // But a finished Job runs no more: when the selector also selects a workload that may run again
  // (one whose pods ended too, or one scaled to zero by its pod template), that is the Service's,
  // and the Job's leftover pods took none of its traffic since.
  const jobs = [...ended].filter((id) => workloads.get(id)?.kind === 'Job');
  if (
    jobs.length > 0 &&
    (jobs.length < ended.size || idle.some((w) => matchesSelector({ matchLabels: sel }, w.labels)))
  )
    for (const id of jobs) ended.delete(id);
  return [...ended].sort();
}
