/**
 * Informer-backed cluster cache: namespaces, nodes, pods, services, endpoint slices, pod owners and
 * NetworkPolicies, stripped to the fields the core uses (so 10k pods stay small), turned into a
 * `ClusterSnapshot` on demand — the same data the offline pipeline reads from files. Deleted pods are
 * remembered for a while (`tombstoneMs`) so that flows reported late still resolve their IP to the pod
 * that held it at the time; deleted Services too, with the time of their deletion and their
 * EndpointSlices, for as long as the snapshot's caller asks (learned edges live `learning.ruleExpiry`),
 * so that a flow to a ClusterIP before its Service's deletion still goes to the backends it had.
 */
import type {
  CronJob,
  EndpointSlice,
  KObject,
  Namespace,
  NetworkPolicy,
  OtherObject,
  Pod,
  Service,
  WorkloadObject,
} from '../model/k8s.ts';
import type { Identity } from '../identity/index.ts';
import { buildIdentity } from '../identity/index.ts';
import { compactObject } from '../model/compact.ts';
import { sortedJson } from '../model/order.ts';
import type { ClusterSnapshot } from '../model/snapshot.ts';
import { compareDeletedServices, emptySnapshot } from '../model/snapshot.ts';
import { Informer, cacheKey } from './informer.ts';
import type { ClusterPolicies } from './cluster-policies.ts';
import type { KubeClient } from './kube.ts';
import { resourcePath } from './kube.ts';
import type { Logger } from './log.ts';

/**
 * The informers' transform: list items come without kind and apiVersion; they get them, then are
 * compacted to what the core reads (the same compaction as snapshot files). No string interning here:
 * a long-running cache would keep every label set it ever saw (each Job run has its own).
 */
const slim =
  (kind: string, apiVersion: string) =>
  (raw: unknown): unknown =>
    compactObject(Object.assign(raw as object, { apiVersion, kind }));

/** The workloads of a cluster and the workload of each pod: the part of an identity the page reads. */
export type ClusterWorkloads = Pick<Identity, 'workloads' | 'podWorkload'>;

export interface ClusterCacheOptions {
  log?: Logger;
  resyncMs?: number;
  /** How long deleted pods are kept for IP resolution; default 10 minutes. */
  tombstoneMs?: number;
  /** Most deleted pods kept; default 10 000. */
  maxTombstones?: number;
  /** Most deleted Services kept; default 1 000. */
  maxDeletedServices?: number;
  /**
   * How long a deleted EndpointSlice is kept for its Service, whose deletion the Services' watch may
   * deliver after the slice's (ms); default 60 000.
   */
  deletedSlicesMs?: number;
  /** Most deleted EndpointSlices kept for their Services (the oldest go first); default 10 000. */
  maxDeletedSlices?: number;
  backoffMinMs?: number;
  backoffMaxMs?: number;
}

export class ClusterCache {
  readonly namespaces: Informer<Namespace>;
  /** Their addresses (node peers) and labels (an AdminNetworkPolicy's `nodes` peer). */
  readonly nodes: Informer<OtherObject>;
  readonly pods: Informer<Pod>;
  readonly services: Informer<Service>;
  readonly endpointSlices: Informer<EndpointSlice>;
  readonly workloads: Informer<WorkloadObject>[];
  readonly cronJobs: Informer<CronJob>;
  readonly networkPolicies: Informer<NetworkPolicy>;
  /** Bumped on every change that can change identity (everything but NetworkPolicies). */
  version = 0;
  /** Bumped on every NetworkPolicy change. */
  policyVersion = 0;
  /** The cluster-wide policies, when read (see ClusterPolicies): in `snapshot()`'s `others`. */
  clusterPolicies: ClusterPolicies | undefined;
  readonly #tombstones = new Map<string, { pod: Pod; at: number }>();
  /** Deleted Services by uid (or key), in the order deleted: the Service, its slices then, when. */
  readonly #deletedServices = new Map<string, { service: Service; slices: EndpointSlice[]; at: number }>();
  readonly #maxDeletedServices: number;
  /** EndpointSlices deleted within `#deletedSlicesMs`, in the order deleted, for their Service's deletion. */
  readonly #deletedSlices = new Map<string, { slice: EndpointSlice; at: number }>();
  /**
   * The live EndpointSlices and those of `#deletedSlices`, by the Service they are labelled with: a
   * Service's deletion looks at its own only (a namespace of thousands going would look at every slice
   * of the cluster thousands of times).
   */
  readonly #liveSlicesByService = new SlicesByService();
  readonly #deletedSlicesByService = new SlicesByService();
  readonly #deletedSlicesMs: number;
  readonly #maxDeletedSlices: number;
  #workloads: { version: number; identity: ClusterWorkloads } | undefined;
  #slicesExamined = 0;
  readonly #tombstoneMs: number;
  readonly #maxTombstones: number;

  constructor(client: KubeClient, opts: ClusterCacheOptions = {}) {
    const common = {
      log: opts.log,
      resyncMs: opts.resyncMs,
      backoffMinMs: opts.backoffMinMs,
      backoffMaxMs: opts.backoffMaxMs,
    };
    const make = <T extends KObject>(
      kind: string,
      apiVersion: string,
      transform: (raw: unknown) => unknown,
    ) => new Informer<T>(client, { ...common, path: resourcePath(kind), name: kind, transform });
    this.namespaces = make('Namespace', 'v1', slim('Namespace', 'v1'));
    this.nodes = make('Node', 'v1', slim('Node', 'v1'));
    this.pods = make('Pod', 'v1', slim('Pod', 'v1'));
    this.services = make('Service', 'v1', slim('Service', 'v1'));
    this.endpointSlices = make(
      'EndpointSlice',
      'discovery.k8s.io/v1',
      slim('EndpointSlice', 'discovery.k8s.io/v1'),
    );
    this.workloads = (
      [
        ['Deployment', 'apps/v1'],
        ['ReplicaSet', 'apps/v1'],
        ['StatefulSet', 'apps/v1'],
        ['DaemonSet', 'apps/v1'],
        ['Job', 'batch/v1'],
      ] as const
    ).map(([k, v]) => make<WorkloadObject>(k, v, slim(k, v)));
    this.cronJobs = make('CronJob', 'batch/v1', slim('CronJob', 'batch/v1'));
    this.networkPolicies = make(
      'NetworkPolicy',
      'networking.k8s.io/v1',
      slim('NetworkPolicy', 'networking.k8s.io/v1'),
    );
    this.#tombstoneMs = opts.tombstoneMs ?? 600_000;
    this.#maxTombstones = opts.maxTombstones ?? 10_000;
    this.#maxDeletedServices = opts.maxDeletedServices ?? 1_000;
    this.#deletedSlicesMs = opts.deletedSlicesMs ?? 60_000;
    this.#maxDeletedSlices = opts.maxDeletedSlices ?? 10_000;
    for (const inf of this.informers())
      if (inf !== (this.networkPolicies as unknown) && inf !== (this.nodes as unknown))
        inf.on(() => this.version++);
    this.networkPolicies.on(() => this.policyVersion++);
    // A node's status changes with every heartbeat: only a change of what is read (its labels and
    // addresses) changes identity and the audits.
    this.nodes.on((type, node, old) => {
      if (type !== 'update' || !old || nodeFacts(node) !== nodeFacts(old)) this.version++;
    });
    this.pods.on((type, pod) => {
      const k = cacheKey(pod);
      if (type === 'delete') {
        const now = Date.now();
        // Those past the tombstone period go first (they are kept in the order deleted): only a rebuild
        // of identity drops them otherwise, which a replica that does not lead never makes.
        for (const [old, t] of this.#tombstones) {
          if (now - t.at <= this.#tombstoneMs) break;
          this.#tombstones.delete(old);
        }
        this.#tombstones.set(k, { pod, at: now });
        if (this.#tombstones.size > this.#maxTombstones) {
          const first = this.#tombstones.keys().next();
          if (!first.done) this.#tombstones.delete(first.value);
        }
      } else this.#tombstones.delete(k);
    });
    this.endpointSlices.on((type, es) => {
      const k = cacheKey(es);
      this.#forgetDeletedSlice(k);
      if (type !== 'delete') {
        this.#liveSlicesByService.set(k, es);
        return;
      }
      this.#liveSlicesByService.delete(k);
      const now = Date.now();
      this.#forgetDeletedSlices(now);
      this.#deletedSlices.set(k, { slice: es, at: now });
      this.#deletedSlicesByService.set(k, es);
      // Bounded in number too: a namespace deleted with thousands of Services deletes all their slices
      // within the minute.
      if (this.#deletedSlices.size > this.#maxDeletedSlices) {
        const first = this.#deletedSlices.keys().next();
        if (!first.done) this.#forgetDeletedSlice(first.value);
      }
    });
    this.services.on((type, svc) => {
      if (type !== 'delete') return;
      const now = Date.now();
      // Its slices, those deleted just before it too: the two watches deliver their deletions in
      // either order (the slices are its garbage), so a slice's may come first.
      this.#forgetDeletedSlices(now);
      const slices: EndpointSlice[] = [];
      for (const index of [this.#liveSlicesByService, this.#deletedSlicesByService])
        for (const es of index.of(svc)) {
          this.#slicesExamined++;
          if (sliceOf(es, svc)) slices.push(es);
        }
      // The time of deletion is when its object is removed: a finalizer may hold it long past its
      // deletionTimestamp (a load balancer's cleanup), and kube-proxy forwards its addresses until then.
      this.#deletedServices.set(svc.metadata.uid ?? `${cacheKey(svc)}@${now}`, {
        service: svc,
        slices,
        at: now,
      });
      if (this.#deletedServices.size > this.#maxDeletedServices) {
        const first = this.#deletedServices.keys().next();
        if (!first.done) this.#deletedServices.delete(first.value);
      }
    });
  }

  /** Forgets the EndpointSlices deleted more than `deletedSlicesMs` before `now` (kept in that order). */
  #forgetDeletedSlices(now: number): void {
    for (const [k, d] of this.#deletedSlices) {
      if (now - d.at <= this.#deletedSlicesMs) break;
      this.#forgetDeletedSlice(k);
    }
  }

  /** Forgets the deleted EndpointSlice `k` (`namespace/name`), if kept. */
  #forgetDeletedSlice(k: string): void {
    this.#deletedSlices.delete(k);
    this.#deletedSlicesByService.delete(k);
  }

  /** How many deleted Services are kept (for tests). */
  get deletedServicesKept(): number {
    return this.#deletedServices.size;
  }

  /** How many EndpointSlices the Services' deletions have looked at to find their own (for tests). */
  get slicesExamined(): number {
    return this.#slicesExamined;
  }

  /** How many deleted EndpointSlices are kept for their Services (for tests). */
  get deletedSlicesKept(): number {
    return this.#deletedSlices.size;
  }

  informers(): Informer<KObject>[] {
    return [
      this.namespaces,
      this.nodes,
      this.pods,
      this.services,
      this.endpointSlices,
      ...this.workloads,
      this.cronJobs,
      this.networkPolicies,
    ] as Informer<KObject>[];
  }

  start(): void {
    for (const i of this.informers()) i.start();
  }

  async stop(): Promise<void> {
    await Promise.all(this.informers().map((i) => i.stop()));
  }

  get synced(): boolean {
    return this.informers().every((i) => i.synced);
  }

  async waitForSync(): Promise<void> {
    await Promise.all(this.informers().map((i) => i.waitForSync()));
  }

  /** How many deleted pods are kept (for tests). */
  get deletedPodsKept(): number {
    return this.#tombstones.size;
  }

  /** Pods deleted within the tombstone period (for IP-over-time resolution). */
  recentlyDeletedPods(now = Date.now()): Pod[] {
    for (const [k, t] of this.#tombstones) if (now - t.at > this.#tombstoneMs) this.#tombstones.delete(k);
    return [...this.#tombstones.values()].map((t) => t.pod);
  }

  /**
   * The workloads the cache knows and the workload of each of its pods (`namespace/name` → id), as
   * identity derives them from the pods, their owners and the workload objects: what every replica
   * holds, the same on each. Deleted pods are left out (how long a replica remembers them depends on
   * when it started). Rebuilt when the cache has changed since the last call.
   */
  workloadIdentity(): ClusterWorkloads {
    if (this.#workloads?.version !== this.version) {
      const version = this.version;
      const { workloads, podWorkload } = buildIdentity(this.snapshot());
      this.#workloads = { version, identity: { workloads, podWorkload } };
    }
    return this.#workloads.identity;
  }

  /**
   * The cache as a ClusterSnapshot, with the cluster-wide policies read last in `others`. With
   * `withDeletedPods`, recently deleted pods are included, and the Services deleted within
   * `deletedServicesFor` (default the tombstone period; those deleted before are forgotten) in
   * `deletedServices` (in the order of `compareDeletedServices`), each with the time its object was removed and its own EndpointSlices of then
   * (not among the snapshot's: those of a Service of the same name created since are not its). A Service a finalizer holds after its
   * deletion began is not deleted yet: it is among the Services, as it is in the cluster.
   */
  snapshot(opts: { withDeletedPods?: boolean; deletedServicesFor?: number } = {}): ClusterSnapshot {
    const snap = emptySnapshot();
    snap.namespaces = this.namespaces.list();
    snap.pods = this.pods.list();
    if (opts.withDeletedPods) {
      const live = new Set(snap.pods.map(cacheKey));
      snap.pods = [...snap.pods, ...this.recentlyDeletedPods().filter((p) => !live.has(cacheKey(p)))];
    }
    snap.services = this.services.list();
    snap.endpointSlices = this.endpointSlices.list();
    if (opts.withDeletedPods) {
      const now = Date.now();
      const keep = opts.deletedServicesFor ?? this.#tombstoneMs;
      for (const [k, d] of this.#deletedServices) if (now - d.at > keep) this.#deletedServices.delete(k);
      snap.deletedServices = [...this.#deletedServices.values()]
        .map((d) => ({ service: d.service, deletedAt: d.at, endpointSlices: d.slices }))
        .sort(compareDeletedServices);
    }
    snap.workloads = this.workloads.flatMap((i) => i.list());
    snap.cronJobs = this.cronJobs.list();
    snap.networkPolicies = this.networkPolicies.list();
    snap.others = [...this.nodes.list(), ...(this.clusterPolicies?.list() ?? [])];
    return snap;
  }
}

/** The Service (`namespace/name`) an EndpointSlice is labelled with, if any. */
const serviceKeyOf = (es: EndpointSlice): string | undefined => {
  const name = es.metadata.labels?.['kubernetes.io/service-name'];
  return name === undefined ? undefined : `${es.metadata.namespace ?? ''}/${name}`;
};

/** EndpointSlices by the Service they are labelled with (`serviceKeyOf`), each kept by its own key. */
class SlicesByService {
  readonly #byService = new Map<string, Map<string, EndpointSlice>>();
  /** Slice key → the Service it is listed under (its label may change). */
  readonly #serviceOf = new Map<string, string>();

  set(key: string, es: EndpointSlice): void {
    const svc = serviceKeyOf(es);
    if (svc !== this.#serviceOf.get(key)) this.delete(key);
    if (svc === undefined) return;
    const slices = this.#byService.get(svc);
    if (slices === undefined) this.#byService.set(svc, new Map([[key, es]]));
    else slices.set(key, es);
    this.#serviceOf.set(key, svc);
  }

  delete(key: string): void {
    const svc = this.#serviceOf.get(key);
    if (svc === undefined) return;
    this.#serviceOf.delete(key);
    const slices = this.#byService.get(svc);
    slices?.delete(key);
    if (slices?.size === 0) this.#byService.delete(svc);
  }

  /** The slices labelled with `svc`'s name in its namespace (of it, or of another of that name). */
  of(svc: Service): Iterable<EndpointSlice> {
    return this.#byService.get(`${svc.metadata.namespace ?? ''}/${svc.metadata.name}`)?.values() ?? [];
  }
}

/**
 * Whether `es` is an EndpointSlice of `svc`: labelled with its name in its namespace and, when it names
 * the Service owning it, owned by this one (by uid), not by another of the same name.
 */
function sliceOf(es: EndpointSlice, svc: Service): boolean {
  if (es.metadata.namespace !== svc.metadata.namespace) return false;
  if (es.metadata.labels?.['kubernetes.io/service-name'] !== svc.metadata.name) return false;
  const owner = es.metadata.ownerReferences?.find(
    (o) => o.kind === 'Service' && o.name === svc.metadata.name,
  );
  return owner === undefined || svc.metadata.uid === undefined || owner.uid === svc.metadata.uid;
}

/** What identity and the audits read of a node. */
function nodeFacts(node: OtherObject): string {
  return sortedJson({
    labels: node.metadata.labels ?? {},
    addresses: (node as { status?: { addresses?: unknown } }).status?.addresses ?? [],
  });
}
