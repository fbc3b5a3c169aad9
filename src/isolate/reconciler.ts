/**
 * The Isolation reconciler: one function over `namespace/name` keys that reads the Isolation and the
 * cluster, does what is missing, and returns when to look again. Level-based: running it twice does
 * nothing the second time; every write is guarded by a resourceVersion, and objects that microseg does
 * not own are never changed.
 */
import type { DNSPort, Ownership } from '../identity/index.ts';
import { CLUSTER_DNS_SERVICE, ownershipOf } from '../identity/index.ts';
import { canonicalSpec } from '../controller/plan.ts';
import type {
  CronJob,
  KObject,
  Namespace,
  NetworkPolicy,
  OtherObject,
  Pod,
  Service,
  WorkloadObject,
} from '../model/k8s.ts';
import type {
  IsolationPhase,
  IsolationSpec,
  IsolationStatus,
  Isolation,
  MechanismName,
  TimelineEntry,
} from './api.ts';
import {
  API_VERSION,
  ISOLATION_FINALIZER,
  ISOLATION_LABEL,
  KIND,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  MAX_LISTED_PODS,
  NO_POD_MESSAGE,
  QUARANTINE_LABEL,
  RECEIVED_AT_ANNOTATION,
  REARM_ANNOTATION,
  RECONCILED_CONDITION,
  RECONCILE_FAILED,
  RECONCILE_FAILED_MESSAGE,
  addTimeline,
  expiryTime,
  parseIsolationSpec,
  setReconciled,
} from './api.ts';
import type { Kube, KubeRequest } from './kube.ts';
import { KubeError, MERGE_PATCH, isConflict, isNotFound, paths } from './kube.ts';
import type { EngineOptions } from '../verify/types.ts';
import { checkIsolation } from './leaks.ts';
import type { IsolationMetrics } from './metrics.ts';
import { KeyQueue, PriorityGate } from './queue.ts';
import type { ApiGroup, DnsTarget, KeptRules, ObjectNames } from './plan.ts';
import {
  DEFAULT_DNS,
  ISOLATION_NAMESPACE_LABEL,
  chooseMechanism,
  desiredObjects,
  dnsExceptionPorts,
  exclusionPatches,
  keptRules,
  exclusionRemovalPatch,
  isOwnerResolved,
  objectNames,
  ownedBy,
  podAfter,
  podLabelPlan,
  readPrior,
  podReleasePatch,
  policiesAfter,
  resolveTarget,
} from './plan.ts';

export interface ReconcileResult {
  /** Look again after this many milliseconds (expiry, live targets, periodic leak re-check). */
  requeueAfterMs?: number;
}

export interface IsolationReconcilerOptions {
  kube: Kube;
  metrics?: IsolationMetrics;
  now?: () => Date;
  /** The cluster DNS pods the DNS exception lets isolated pods reach (default kube-system k8s-app=kube-dns). */
  dns?: DnsTarget;
  /**
   * How long the DNS exception's ports, read from the DNS Service and the pods it selects, are used
   * before they are read again (default 30 s; the read after that runs beside the reconciles, which keep
   * the ports read before until it is done).
   */
  dnsTtlMs?: number;
  /** Admin-tier priority of the deny (default 0). */
  priority?: number;
  /** How long discovery of the policy API group is trusted (default 30 s). */
  discoveryTtlMs?: number;
  /** Leak re-check period for isolations in effect (default 30 s). */
  resyncMs?: number;
  /** Re-resolution period of live targets (selectors, includeFuture workloads; default 5 s). */
  liveResyncMs?: number;
  /** How long a namespace's pod and policy lists are shared between leak checks (default 1000 ms). */
  listCacheMs?: number;
  /** Leak checks (and the status writes after them) running at once (default 4). */
  checkConcurrency?: number;
  /** Events being written at once (default 2); Events are best effort and never delay a deny. */
  eventConcurrency?: number;
  /** Events waiting beyond this many are dropped (default 10,000); the status timeline is the record. */
  maxPendingEvents?: number;
  /**
   * Background work (leak checks with their status writes, Events) waits while any reconcile is in
   * flight, so the apiserver serves denies first; work that has waited this long runs anyway, one at a
   * time (default 2000 ms).
   */
  maxDeferMs?: number;
  /** Component name on Events. */
  component?: string;
  /** The semantics of the engine of the leak check (`microseg controller`'s `--ipblock-pods` and others). */
  engine?: EngineOptions;
  /** Called once per Isolation when its deny is in effect, with the ms since the alert (or creation). */
  onIsolated?: (key: string, latencyMs: number) => void;
}

interface List<T> {
  items: T[];
}

/** What a leak check needs: the Isolation's state right after its reconcile. */
interface CheckInput {
  iso: Isolation;
  spec: IsolationSpec;
  method: MechanismName;
  objs: { networkPolicy: NetworkPolicy; clusterPolicy?: OtherObject };
  clusterKinds: string[];
  isolated: string[];
  /** The pods the reconcile read or labelled, newer than any cached list. */
  podsAfter: Map<string, Pod>;
  /** The namespace's microseg allow policies as the reconcile left them. */
  npsNow: NetworkPolicy[];
  notes: string[];
  /** The key's status epoch when the check was queued (see `supersedeChecks`). */
  epoch: number | undefined;
}

/** microseg-generated allow policies: managed by microseg, not an Isolation's own object. */
const MANAGED_ALLOW_SELECTOR = `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE},!${ISOLATION_LABEL}`;

const CLUSTER_POLICY_PATHS: Record<string, () => string> = {
  AdminNetworkPolicy: paths.adminNetworkPolicies,
  ClusterNetworkPolicy: paths.clusterNetworkPolicies,
};

/**
 * When the first of `isolated` was quarantined in this episode, from the time its label record keeps
 * (see PriorRecord.at); undefined when none has one. A status that was never written (the controller
 * stopped between the label and the status write) then does not move the expiry by the downtime. A time
 * before the Isolation was created or re-armed (a record a release left behind) or in the future is not
 * taken.
 */
function labelledSince(
  iso: Isolation,
  isolated: readonly string[],
  pods: ReadonlyMap<string, Pod>,
  now: Date,
): string | undefined {
  const floor = Math.max(
    Date.parse(iso.metadata.creationTimestamp ?? '') || 0,
    Date.parse(iso.metadata.annotations?.[REARM_ANNOTATION] ?? '') || 0,
  );
  let first: number | undefined;
  for (const podName of isolated) {
    const pod = pods.get(podName);
    const rec = pod ? readPrior(pod) : undefined;
    if (!rec?.at || rec.isolation !== iso.metadata.name) continue;
    const t = Date.parse(rec.at);
    if (t < floor || t > now.getTime()) continue;
    if (first === undefined || t < first) first = t;
  }
  return first === undefined ? undefined : new Date(first).toISOString();
}

/** Whether an admin-tier policy has a `nodes` peer (egress only), whose witnesses are node addresses. */
function namesNodes(o: OtherObject): boolean {
  const egress = (o as { spec?: { egress?: unknown } }).spec?.egress;
  if (!Array.isArray(egress)) return false;
  return egress.some(
    (r) =>
      Array.isArray((r as { to?: unknown } | null)?.to) &&
      (r as { to: unknown[] }).to.some(
        (peer) =>
          peer !== null && typeof peer === 'object' && (peer as { nodes?: unknown }).nodes !== undefined,
      ),
  );
}

/** Tries of a quarantine exclusion patch that conflicts, each on the policy read again, in one reconcile. */
const EXCLUSION_ATTEMPTS = 3;
/**
 * When a reconcile whose exclusion patches kept conflicting is requeued: after EXCLUSION_RETRY_MS the
 * first time, twice as long at each reconcile of the same Isolation that still conflicts, at most
 * EXCLUSION_RETRY_MAX_MS; from EXCLUSION_RETRY_MS again once its patches took, and in a new episode (a
 * re-arm after the release).
 */
const EXCLUSION_RETRY_MS = 1000;
const EXCLUSION_RETRY_MAX_MS = 60_000;

/** The requeue delay of the `n`th reconcile in a row (from 0) whose exclusion patches kept conflicting. */
function exclusionRetryMs(n: number): number {
  return Math.min(EXCLUSION_RETRY_MAX_MS, EXCLUSION_RETRY_MS * 2 ** Math.min(n, 30));
}

/** How many unreadable admin-tier policies the status message names before it counts the rest. */
const NAMED_NOT_EVALUATED = 3;

/** What the leak check left out (admin-tier policies the engine cannot read), for the message; or ''. */
export function notEvaluatedNote(problems: readonly string[]): string {
  if (problems.length === 0) return '';
  const more = problems.length - NAMED_NOT_EVALUATED;
  return `not proved: ${problems.length === 1 ? '1 admin-tier policy' : `${problems.length} admin-tier policies`} the leak check cannot read ${problems.length === 1 ? 'was' : 'were'} left out of it, so what ${problems.length === 1 ? 'it admits' : 'they admit'} is not known: ${problems.slice(0, NAMED_NOT_EVALUATED).join('; ')}${more > 0 ? `; and ${more} more` : ''}`;
}

function labelSelectorQuery(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

export class IsolationReconciler {
  private readonly kube: Kube;
  private readonly o: IsolationReconcilerOptions;
  private readonly now: () => Date;
  private discovery?: { at: number; groups: ApiGroup[] };
  private namespacesCache?: { at: number; items: Namespace[] };
  /** resourceVersions of the latest writes this reconciler made to each Isolation (newest last). */
  private readonly ownWrites = new Map<string, string[]>();
  /**
   * The newest state of each Isolation this reconciler knows of (from the watch, a list, the webhooks'
   * create responses and its own writes): a reconcile starts from it instead of reading it back.
   */
  private readonly observed = new Map<string, Isolation>();
  /**
   * The newest status of each Isolation: `status` is what this reconciler decided (possibly not written
   * yet, while its leak check waits), `written` what the apiserver has. This reconciler is the only
   * writer of the status subresource, so a reconcile starts from `status`, not from a stale read.
   */
  private readonly statuses = new Map<
    string,
    { uid: string; status: IsolationStatus; written: IsolationStatus }
  >();
  /** Per key, the tail of its status writes: writes of one Isolation reach the apiserver in order. */
  private readonly statusWrites = new Map<string, Promise<void>>();
  /** Leak checks waiting to run: the newest state per key (older ones are superseded, not run). */
  private readonly pendingChecks = new Map<string, CheckInput>();
  /**
   * Per key, the status epoch: moved (to a number never used before) whenever a status that a leak check
   * queued earlier must not overwrite is decided (Failed, Released, a reconcile's failure, the deletion).
   * A check publishes only if the epoch is still the one it was queued in: one already running when the
   * status said Failed is dropped, not only one still waiting, and the next reconcile queues the next.
   */
  private readonly statusEpochs = new Map<string, number>();
  private lastEpoch = 0;
  /** Leak checks and the status writes after them: a few at a time, off the deny's critical path. */
  readonly checks: KeyQueue;
  private readonly eventSlots: Semaphore;
  /** Background work yields to reconciles (the deny path). */
  readonly background: PriorityGate;
  private pendingEvents = 0;
  /**
   * Per key, how many reconciles in a row ended with an exclusion patch still conflicting (the backoff
   * of their requeue); dropped by a reconcile whose patches all took, at the release at expiry and at a
   * re-arm (a new episode starts from a second), and with the Isolation.
   */
  private readonly exclusionRetries = new Map<string, number>();
  /** Per key, the last failure said in a ReconcileFailed Event (cleared by a reconcile that succeeds). */
  private readonly failures = new Map<string, string>();
  /** Per key, the last leak-check failure said (cleared by a check that succeeds). */
  private readonly checkFailures = new Map<string, string>();
  /** The admin-tier policies each Isolation's last check could not read, as said in a Warning Event. */
  private readonly notEvaluatedSaid = new Map<string, string>();
  /**
   * Per key, the spec generation what was said above (and the phase's Events) was said for: an edit of
   * the spec (a new target, reason, duration, ...) is said anew, as a new episode is (see newSpec).
   */
  private readonly saidFor = new Map<string, { uid: string; generation: number }>();
  /** Keys whose current spec generation has had no outcome said yet (an Event and a timeline entry). */
  private readonly unsaid = new Set<string>();
  /**
   * Per key, the first quarantine record this reconciler put on a pod in the episode whose start
   * (status.isolatedAt) is not decided yet (`at`), and when the apiserver acknowledged that label
   * (`ackedAt`, ms): the time to isolate is this reconciler's to observe when that record is the
   * episode's first, also when the reconcile that put it failed afterwards (the retry finds the pod
   * labelled). Dropped once the start is decided, with the Isolation, and at a re-arm or a release.
   */
  private readonly stamps = new Map<string, { uid: string; at: string; ackedAt: number }>();
  private readonly listCache = new Map<string, { at: number; items: Promise<unknown[]> }>();
  /** The DNS exception's ports as last read (and when), and the read under way. */
  private readonly dnsState: {
    ports?: readonly DNSPort[];
    at: number;
    reading?: Promise<readonly DNSPort[] | undefined>;
  } = { at: -Infinity };

  constructor(options: IsolationReconcilerOptions) {
    this.kube = options.kube;
    this.o = options;
    this.now = options.now ?? (() => new Date());
    this.checks = new KeyQueue((key) => this.runCheck(key), { concurrency: options.checkConcurrency ?? 4 });
    this.eventSlots = new Semaphore(options.eventConcurrency ?? 2);
    this.background = new PriorityGate(
      (options.checkConcurrency ?? 4) + (options.eventConcurrency ?? 2),
      options.maxDeferMs ?? 2000,
    );
  }

  /** Stops the leak-check queue and waits for running checks and status writes to finish. */
  async stop(): Promise<void> {
    this.checks.stop();
    await this.checks.idle();
    await Promise.all([...this.statusWrites.values()]);
  }

  // ---------------------------------------------------------------------------------------------
  // reads

  private async groups(): Promise<ApiGroup[]> {
    const ttl = this.o.discoveryTtlMs ?? 30_000;
    const t = Date.now();
    if (this.discovery && t - this.discovery.at < ttl) return this.discovery.groups;
    const res = await this.kube.request<{ groups?: ApiGroup[] }>({ method: 'GET', path: '/apis' });
    this.discovery = { at: t, groups: res.groups ?? [] };
    return this.discovery.groups;
  }

  /** Forgets cached discovery (after CRDs are installed or removed). */
  forgetDiscovery(): void {
    this.discovery = undefined;
  }

  /**
   * A cluster-wide policy of another than microseg's Isolations was created, changed or deleted: what was
   * read of them (the served kinds, the admin-tier policies a leak check listed in the last second) is
   * read again, and the keys of every Isolation not released nor being deleted are returned, for their
   * reconcile (and its leak check) to run now, not at the resync.
   */
  clusterPoliciesChanged(): string[] {
    this.forgetDiscovery();
    for (const path of Object.values(CLUSTER_POLICY_PATHS)) this.listCache.delete(path());
    const keys: string[] = [];
    for (const [key, iso] of this.observed) {
      const entry = this.statuses.get(key);
      const status = entry?.uid === (iso.metadata.uid ?? '') ? entry.status : iso.status;
      if (!iso.metadata.deletionTimestamp && status?.phase !== 'Released') keys.push(key);
    }
    return keys;
  }

  private servedClusterKinds(groups: ApiGroup[]): string[] {
    const g = groups.find((x) => x.name === 'policy.networking.k8s.io');
    if (!g) return [];
    const out: string[] = [];
    if (g.versions.some((v) => v.version === 'v1alpha1')) out.push('AdminNetworkPolicy');
    if (g.versions.some((v) => v.version === 'v1alpha2')) out.push('ClusterNetworkPolicy');
    return out;
  }

  private async namespaces(): Promise<Namespace[]> {
    const t = Date.now();
    if (this.namespacesCache && t - this.namespacesCache.at < 5000) return this.namespacesCache.items;
    const items = await this.list<Namespace>(paths.namespaces(), undefined, 'background');
    this.namespacesCache = { at: t, items };
    return items;
  }

  /**
   * A list shared by concurrent reconciles and reused for `listCacheMs` (default 1 s): the leak checks of
   * many isolations in one namespace read it once. Each caller overlays what it just changed.
   */
  private cachedList<T>(path: string): Promise<T[]> {
    const ttl = this.o.listCacheMs ?? 1000;
    const t = Date.now();
    // Lists past their time are never used again: dropped, else every namespace ever checked (an
    // incident's, a deleted preview environment's) would keep its last pods and policies.
    for (const [p, e] of this.listCache) if (t - e.at >= ttl) this.listCache.delete(p);
    const hit = this.listCache.get(path);
    if (hit && t - hit.at < ttl) return hit.items as Promise<T[]>;
    const items = this.list<T>(path, undefined, 'background');
    this.listCache.set(path, { at: t, items });
    items.catch(() => this.listCache.delete(path));
    return items;
  }

  /**
   * The ports the DNS exception opens: where the DNS pods take a query to their Service's port 53 once
   * its ClusterIP is translated (`dnsExceptionPorts` of the Service and the pods it selects: 5353 for a
   * CoreDNS listening there); undefined (the plan's 53) until a read succeeds. Read again once
   * `dnsTtlMs` has passed; once the ports are known, a read never holds up a deny, which takes the ports
   * read before. A failed read keeps those (53 before any), and the next reconcile reads again.
   */
  private dnsPorts(): Promise<readonly DNSPort[] | undefined> {
    const s = this.dnsState;
    if (!s.reading && Date.now() - s.at >= (this.o.dnsTtlMs ?? 30_000))
      s.reading = this.readDnsPorts()
        .then(
          (ports) => {
            s.ports = ports;
            s.at = Date.now();
            return ports;
          },
          () => s.ports,
        )
        .finally(() => {
          s.reading = undefined;
        });
    return s.ports === undefined && s.reading ? s.reading : Promise.resolve(s.ports);
  }

  private async readDnsPorts(): Promise<DNSPort[]> {
    const dns = this.o.dns ?? DEFAULT_DNS;
    const ref = { namespace: dns.namespace, name: dns.service ?? CLUSTER_DNS_SERVICE.name };
    const service = await this.getFromCache<Service>(paths.service(ref.namespace, ref.name));
    const selector = service?.spec.selector ?? {};
    // The pods it selects (a Service without a selector has none: see dnsExceptionPorts).
    const pods =
      Object.keys(selector).length > 0
        ? await this.kube
            .request<List<Pod>>({
              method: 'GET',
              path: paths.pods(ref.namespace),
              query: { labelSelector: labelSelectorQuery(selector), resourceVersion: '0' },
            })
            .then((l) => l.items ?? [])
        : [];
    return dnsExceptionPorts(service, pods);
  }

  /**
   * What the pods of a workload found by owner references are walked up through: a Rollout's
   * ReplicaSets; a CronJob's Jobs and the CronJob itself (which names the runs whose Job is gone); a
   * CloneSet and a custom resource's kind own their pods, so nothing (their objects are never read). A
   * list's items carry no kind: it is set here.
   */
  private async ownershipFor(ns: string, kind: string, name: string): Promise<Ownership> {
    const typed = <K extends string>(items: KObject[], k: K) => items.map((o) => ({ ...o, kind: k }));
    if (kind === 'Rollout') {
      const sets = await this.list<WorkloadObject>(paths.replicaSets(ns));
      return ownershipOf({ workloads: typed(sets, 'ReplicaSet') as WorkloadObject[], cronJobs: [] });
    }
    if (kind === 'CronJob') {
      const [jobs, cronJob] = await Promise.all([
        this.list<WorkloadObject>(paths.jobs(ns)),
        this.get<CronJob>(paths.workload(ns, 'CronJob', name)),
      ]);
      return ownershipOf({
        workloads: typed(jobs, 'Job') as WorkloadObject[],
        cronJobs: cronJob ? [{ ...cronJob, kind: 'CronJob' }] : [],
      });
    }
    return ownershipOf({ workloads: [], cronJobs: [] });
  }

  private async list<T>(path: string, labelSelector?: string, priority?: 'background'): Promise<T[]> {
    const res = await this.kube.request<List<T>>({
      method: 'GET',
      path,
      ...(labelSelector ? { query: { labelSelector } } : {}),
      ...(priority ? { priority } : {}),
    });
    return res.items ?? [];
  }

  private async get<T>(path: string): Promise<T | undefined> {
    try {
      return await this.kube.request<T>({ method: 'GET', path });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /**
   * Reads an object from the apiserver's watch cache (`resourceVersion=0`), which does not wait for etcd
   * and stays fast when the apiserver is busy. The cache can lag a little: a miss is confirmed with a
   * fresh read, and a stale object only costs a conflict on the guarded write that follows (which then
   * re-reads).
   */
  private async getFromCache<T>(path: string): Promise<T | undefined> {
    try {
      return await this.kube.request<T>({ method: 'GET', path, query: { resourceVersion: '0' } });
    } catch (err) {
      if (isNotFound(err)) return this.get<T>(path);
      throw err;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // writes

  private event(
    involved: { apiVersion: string; kind: string; name: string; namespace: string; uid?: string },
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
  ): void {
    const t = this.now().toISOString();
    if (this.pendingEvents >= (this.o.maxPendingEvents ?? 10_000)) return;
    this.pendingEvents++;
    const post = async (): Promise<void> => {
      const done = await this.eventSlots.acquire();
      const slot = await this.background.acquire();
      try {
        await this.kube.request({
          method: 'POST',
          path: paths.events(involved.namespace),
          body: {
            apiVersion: 'v1',
            kind: 'Event',
            metadata: { generateName: `${involved.name}.`, namespace: involved.namespace },
            involvedObject: involved,
            type,
            reason,
            message: message.slice(0, 1024),
            source: { component: this.o.component ?? 'microseg-isolation' },
            reportingComponent: this.o.component ?? 'microseg-isolation',
            reportingInstance: 'microseg',
            firstTimestamp: t,
            lastTimestamp: t,
            count: 1,
          },
          priority: 'background',
        });
      } finally {
        slot();
        done();
        this.pendingEvents--;
      }
    };
    // Events are best effort and off the critical path: the status timeline is the record.
    post().catch(() => undefined);
  }

  private isoRef(iso: Isolation) {
    return {
      apiVersion: API_VERSION,
      kind: KIND,
      name: iso.metadata.name,
      namespace: iso.metadata.namespace ?? '',
      ...(iso.metadata.uid ? { uid: iso.metadata.uid } : {}),
    };
  }

  /** The status a reconcile of `iso` starts from: this reconciler's newest, else the object's. */
  private statusEntry(iso: Isolation): { uid: string; status: IsolationStatus; written: IsolationStatus } {
    const key = `${iso.metadata.namespace ?? ''}/${iso.metadata.name}`;
    const uid = iso.metadata.uid ?? '';
    let e = this.statuses.get(key);
    if (!e || e.uid !== uid) {
      e = { uid, status: iso.status ?? {}, written: iso.status ?? {} };
      this.statuses.set(key, e);
    }
    return e;
  }

  /**
   * Records `status` as the Isolation's newest and writes it after any earlier write of the same
   * Isolation (so the apiserver never ends with an older one). Resolves when it is written.
   */
  private patchStatus(iso: Isolation, status: IsolationStatus, priority?: 'background'): Promise<void> {
    const key = `${iso.metadata.namespace ?? ''}/${iso.metadata.name}`;
    const entry = this.statusEntry(iso);
    entry.status = status;
    const write = async (): Promise<void> => {
      // A merge patch keeps fields it does not name: fields the new status drops are removed with null.
      const body: Record<string, unknown> = { ...status };
      for (const k of Object.keys(entry.written)) if (!(k in status)) body[k] = null;
      const res = await this.isolationWrite<Isolation | undefined>(iso, {
        method: 'PATCH',
        path: `${paths.isolation(iso.metadata.namespace ?? '', iso.metadata.name)}/status`,
        contentType: MERGE_PATCH,
        body: { status: body },
        ...(priority ? { priority } : {}),
      });
      entry.written = status;
      this.noteWrite(iso, res);
    };
    const prev = this.statusWrites.get(key);
    const p = prev ? prev.then(write, write) : write();
    const tail = p.catch(() => undefined);
    this.statusWrites.set(key, tail);
    void tail.then(() => {
      if (this.statusWrites.get(key) === tail) this.statusWrites.delete(key);
    });
    return p;
  }

  private noteWrite(iso: Isolation, res: Isolation | undefined): void {
    const rv = res?.metadata?.resourceVersion;
    if (!rv) return;
    const key = `${iso.metadata.namespace ?? ''}/${iso.metadata.name}`;
    const rvs = this.ownWrites.get(key) ?? [];
    rvs.push(rv);
    if (rvs.length > 8) rvs.shift();
    this.ownWrites.set(key, rvs);
    if (res.metadata.name === iso.metadata.name) this.observe(res);
  }

  /**
   * A write to the Isolation itself that found it gone or changed: forget what was observed, so the retry
   * reads the apiserver.
   */
  private async isolationWrite<T>(iso: Isolation, req: KubeRequest): Promise<T> {
    try {
      return await this.kube.request<T>(req);
    } catch (err) {
      if (isNotFound(err) || isConflict(err)) this.forget(iso.metadata.namespace ?? '', iso.metadata.name);
      throw err;
    }
  }

  /**
   * Tells the reconciler the newest state of an Isolation (a watch event, or the object the webhooks just
   * created), so that its next reconcile starts from it without reading it back. Returns false when this
   * teaches nothing new: the state is already known (the watch and the create response race), older than
   * one known, or this reconciler's own write; then no reconcile is needed for it.
   */
  observe(iso: Isolation): boolean {
    const key = `${iso.metadata.namespace ?? ''}/${iso.metadata.name}`;
    const rv = iso.metadata.resourceVersion;
    const have = this.observed.get(key);
    if (have && (have.metadata.uid ?? '') === (iso.metadata.uid ?? '') && sameIntent(have, iso)) {
      // Only the status (or bookkeeping metadata) moved: this reconciler writes the status itself, so
      // there is nothing to act on; keep the newer object.
      if (newerVersion(rv, have.metadata.resourceVersion)) this.observed.set(key, iso);
      return false;
    }
    if (
      have &&
      (have.metadata.uid ?? '') === (iso.metadata.uid ?? '') &&
      !newerVersion(rv, have.metadata.resourceVersion)
    )
      return false;
    this.observed.set(key, iso);
    return !this.isOwnWrite(key, rv);
  }

  /**
   * Takes a fresh list (the watch (re)starting) as the observed state and returns the keys that need a
   * reconcile: the Isolations new or changed in intent since last observed, and those gone from the list.
   */
  observeAll(items: Isolation[]): string[] {
    const stale = new Set(this.observed.keys());
    const changed: string[] = [];
    for (const i of items) {
      const key = `${i.metadata.namespace ?? ''}/${i.metadata.name}`;
      stale.delete(key);
      if (this.observe(i)) changed.push(key);
    }
    for (const key of stale) this.observed.delete(key);
    return [...changed, ...stale];
  }

  /** The Isolation was deleted: its next reconcile reads the apiserver (and cleans up). */
  forget(namespace: string, name: string): void {
    this.observed.delete(`${namespace}/${name}`);
  }

  isOwnWrite(key: string, resourceVersion: string | undefined): boolean {
    return resourceVersion !== undefined && (this.ownWrites.get(key) ?? []).includes(resourceVersion);
  }

  /** Applies a merge patch to a pod, re-reading and re-planning on a resourceVersion conflict. */
  private async patchPod(
    ns: string,
    pod: Pod,
    plan: (p: Pod) => { metadata: Record<string, unknown> } | undefined,
  ): Promise<Pod | undefined> {
    let current: Pod | undefined = pod;
    for (let attempt = 0; attempt < 5 && current; attempt++) {
      const patch = plan(current);
      if (!patch) return current;
      try {
        return await this.kube.request<Pod>({
          method: 'PATCH',
          path: paths.pod(ns, current.metadata.name),
          contentType: MERGE_PATCH,
          body: patch,
        });
      } catch (err) {
        if (isNotFound(err)) return undefined;
        if (!isConflict(err)) throw err;
        current = await this.get<Pod>(paths.pod(ns, current.metadata.name));
      }
    }
    throw new Error(`pod ${ns}/${pod.metadata.name}: gave up after repeated conflicts`);
  }

  // ---------------------------------------------------------------------------------------------
  // reconcile

  async reconcile(key: string): Promise<ReconcileResult> {
    const leave = this.background.enterForeground();
    const seen: { iso?: Isolation } = {};
    try {
      const res = await this.reconcileKey(key, seen);
      // Its failure is not over until the status no longer says it: a write of the condition that fails
      // fails the reconcile, which is retried with backoff (a Released or Failed record is not requeued).
      if (seen.iso) await this.markReconciled(key, seen.iso);
      this.failures.delete(key);
      return res;
    } catch (err) {
      await this.reportFailure(key, err).catch(() => undefined);
      throw err;
    } finally {
      leave();
    }
  }

  /**
   * A reconcile that succeeded: the Reconciled condition of the status becomes True for the generation
   * reconciled, replacing the failure a reconcile before may have put there. The paths that decide a
   * status set it themselves; this covers those that wrote none (a Released record, an outcome unchanged),
   * and a status decided but not written (its write failed): what the API server holds is what counts,
   * not what was decided. A write that fails throws, so that the reconcile is retried.
   */
  private async markReconciled(key: string, iso: Isolation): Promise<void> {
    const entry = this.statuses.get(key);
    const current = this.observed.get(key);
    if (!entry || entry.uid !== (iso.metadata.uid ?? '') || current?.metadata.deletionTimestamp) return;
    const generation = iso.metadata.generation ?? 0;
    const reconciled = (s: IsolationStatus) => {
      const c = s.conditions?.find((x) => x.type === RECONCILED_CONDITION);
      return c?.status === 'True' && c.observedGeneration === generation;
    };
    // A leak check still to run publishes it with its outcome.
    if (this.pendingChecks.has(key)) {
      if (!reconciled(entry.status))
        entry.status = {
          ...entry.status,
          conditions: setReconciled(entry.status.conditions, undefined, this.now().toISOString(), generation),
        };
      return;
    }
    if (reconciled(entry.status) && reconciled(entry.written)) return;
    const next: IsolationStatus = {
      ...entry.status,
      conditions: setReconciled(entry.status.conditions, undefined, this.now().toISOString(), generation),
    };
    if (!statusChanged(entry.written, next)) {
      entry.status = next;
      return;
    }
    try {
      await this.patchStatus(iso, next);
    } catch (err) {
      // Deleted meanwhile: no status to write (its next reconcile cleans up).
      if (!isNotFound(err)) throw err;
    }
  }

  /**
   * A reconcile that failed (the apiserver refused a write, or could not be reached) is retried with
   * backoff. It is said in the status, so that `kubectl get` and `microseg isolate --wait` show it: the
   * Reconciled condition turns False with the error and the generation, and a status the controller had
   * not written yet becomes phase Pending with the error as its message (a phase already reported, such as
   * Isolated, stays: what it says still holds). A Warning Event on the Isolation and a timeline entry say
   * it too, once per distinct error. A conflict is routine (the next try re-reads): not said.
   */
  private async reportFailure(key: string, err: unknown): Promise<void> {
    if (isConflict(err)) return;
    // A leak check queued by an earlier reconcile, waiting or running, proved a state this failure may
    // have undone (its NetworkPolicy deleted and refused again): it does not publish over the failure.
    this.supersedeChecks(key);
    const message = `${err instanceof Error ? err.message : String(err)} (retrying)`;
    const [ns, name] = key.split('/') as [string, string];
    const known = this.observed.get(key);
    if (this.failures.get(key) !== message) {
      this.failures.set(key, message);
      this.event(
        known ? this.isoRef(known) : { apiVersion: API_VERSION, kind: KIND, name, namespace: ns },
        'Warning',
        RECONCILE_FAILED,
        message,
      );
    }
    if (!known) return; // never read: there is no object to write a status on
    const entry = this.statusEntry(known);
    const status = entry.status;
    const generation = known.metadata.generation ?? 0;
    const now = this.now().toISOString();
    const was = status.conditions?.find((c) => c.type === RECONCILED_CONDITION);
    const said = was?.status === 'False' && was.message === message && was.observedGeneration === generation;
    const unreported =
      status.phase === undefined ||
      (status.phase === 'Pending' && (status.message ?? '').startsWith(RECONCILE_FAILED_MESSAGE));
    const next: IsolationStatus = {
      ...status,
      ...(unreported
        ? {
            phase: 'Pending',
            message: `${RECONCILE_FAILED_MESSAGE}${message}`,
            observedGeneration: generation,
          }
        : {}),
      conditions: setReconciled(status.conditions, message, now, generation),
      timeline: said
        ? (status.timeline ?? [])
        : addTimeline(status.timeline, {
            time: now,
            action: RECONCILE_FAILED,
            message: message.slice(0, 512),
          }),
    };
    if (statusChanged(entry.written, next)) await this.patchStatus(known, next);
    else entry.status = next;
  }

  private async reconcileKey(key: string, seen: { iso?: Isolation }): Promise<ReconcileResult> {
    const [ns, name] = key.split('/') as [string, string];
    const known = this.observed.get(key);
    const iso = known ? structuredClone(known) : await this.get<Isolation>(paths.isolation(ns, name));
    if (iso && !known) this.observe(iso);
    if (iso) seen.iso = iso;
    if (!iso) {
      this.failures.delete(key);
      this.exclusionRetries.delete(key);
      this.checkFailures.delete(key);
      this.notEvaluatedSaid.delete(key);
      this.saidFor.delete(key);
      this.unsaid.delete(key);
      this.stamps.delete(key);
      this.observed.delete(key);
      this.ownWrites.delete(key);
      this.statuses.delete(key);
      this.pendingChecks.delete(key);
      this.statusEpochs.delete(key);
      this.o.metrics?.setActive(key, undefined);
      return {};
    }
    this.newSpec(key, iso);
    if (iso.metadata.deletionTimestamp) {
      this.exclusionRetries.delete(key);
      // Decided now, before the release: a leak check running meanwhile would publish Isolated (status and
      // Event) while the pods are released, and its status write would move the Isolation under the
      // finalizer's removal (a conflict, and the release retried).
      this.supersedeChecks(key);
      if ((iso.metadata.finalizers ?? []).includes(ISOLATION_FINALIZER)) {
        await this.release(iso, 'deleted');
        await this.isolationWrite(iso, {
          method: 'PATCH',
          path: paths.isolation(ns, name),
          contentType: MERGE_PATCH,
          body: {
            metadata: {
              resourceVersion: iso.metadata.resourceVersion,
              finalizers: (iso.metadata.finalizers ?? []).filter((f) => f !== ISOLATION_FINALIZER),
            },
          },
        });
      }
      this.o.metrics?.setActive(key, undefined);
      return {};
    }
    let status: IsolationStatus = this.statusEntry(iso).status;
    iso.status = status;
    const parsed = parseIsolationSpec(name, iso.spec);
    const rearmedAt = iso.metadata.annotations?.[REARM_ANNOTATION];
    const rearmed =
      status.phase === 'Released' &&
      rearmedAt !== undefined &&
      Date.parse(rearmedAt) > Date.parse(status.releasedAt ?? '');
    // A Released record isolates nothing: a spec edited afterwards concerns no pod, and the record stays
    // Released (an alert that re-arms it with such a spec fails below, as a new episode cannot start).
    if (!parsed.ok && status.phase === 'Released' && !rearmed) return {};
    // Alerted again after the release: a new isolation episode. The record keeps its timeline; the rest
    // of the status starts over (a new isolatedAt, so a new expiry from spec.duration). Also when the
    // spec is invalid: the Failed record is then that new episode, which starts once the spec is fixed,
    // not the last one, whose expiry would release it at once.
    const rearm = (): IsolationStatus => {
      const fresh: IsolationStatus = {
        observedGeneration: iso.metadata.generation ?? 0,
        timeline: addTimeline(status.timeline, {
          time: this.now().toISOString(),
          action: 'Rearmed',
          message: `alerted again at ${rearmedAt ?? ''} after the release at ${status.releasedAt ?? ''}; isolating again`,
        }),
      };
      this.statusEntry(iso).status = fresh;
      iso.status = fresh;
      // What was said of the last episode's checks is not said of this one yet: a policy the engine
      // cannot read, or a check failing as before, is said again for it.
      this.notEvaluatedSaid.delete(key);
      this.checkFailures.delete(key);
      // Nor is the backoff of its exclusion patches: a patch of the new episode that conflicts is
      // retried within a second, as the policy admits traffic to the quarantined pods until it is excluded.
      this.exclusionRetries.delete(key);
      this.stamps.delete(key);
      this.o.metrics?.action('rearmed');
      return fresh;
    };
    if (!parsed.ok && rearmed) status = rearm();
    if (!parsed.ok) {
      // A spec edited into one the controller refuses while its pods are isolated: they stay isolated (the
      // deny is not taken down by a typo), the message says so, and the expiry the last valid spec gave
      // still releases them.
      // A leak check still waiting for the last valid spec is superseded: its proof would overwrite the
      // Failed status that names the problem. So is one already running.
      this.supersedeChecks(key);
      const inEffect = status.isolatedAt !== undefined && status.phase !== 'Released';
      const expiresAt = inEffect ? status.expiresAt : undefined;
      if (expiresAt && this.now().getTime() >= Date.parse(expiresAt)) return this.expire(key, iso, expiresAt);
      const problems = parsed.problems.join('; ');
      const message = inEffect
        ? `${problems}; the ${status.podCount ?? status.isolatedPods?.length ?? 0} pod(s) isolated before stay isolated${expiresAt ? ` until ${expiresAt}` : ''}: fix the spec, or delete the Isolation to release them`
        : problems;
      // `status` is the newest here: nothing was awaited since it was read.
      if (this.unsaid.delete(key) || status.phase !== 'Failed' || status.message !== message) {
        await this.setStatus(iso, { ...status, phase: 'Failed', message }, 'Invalid', message);
        this.event(this.isoRef(iso), 'Warning', 'InvalidSpec', message);
        this.o.metrics?.action('failed');
      }
      return expiresAt ? { requeueAfterMs: Math.max(0, Date.parse(expiresAt) - this.now().getTime()) } : {};
    }
    const spec = parsed.spec;
    if (status.phase === 'Released') {
      if (!rearmed) return {};
      const fixedExpiry = expiryTime(spec, undefined);
      if (fixedExpiry && this.now().getTime() >= Date.parse(fixedExpiry)) return {};
      return this.reconcileActive(key, iso, spec, rearm());
    }
    return this.reconcileActive(key, iso, spec, status);
  }

  /**
   * The spec was edited since what this reconciler said of the Isolation was said (its generation moved):
   * what is said once (a reconcile's or a leak check's failure, the admin-tier policies left out of the
   * check) is said again for the new spec, and so is its outcome, even when the phase stays (a new target
   * isolated too, or naming no pod either). A reconciler that has said nothing of it yet (just started, or
   * taking over) takes what the status was written for as said.
   */
  private newSpec(key: string, iso: Isolation): void {
    const uid = iso.metadata.uid ?? '';
    const generation = iso.metadata.generation ?? 0;
    const had = this.saidFor.get(key);
    const entry = this.statuses.get(key);
    const said =
      had?.uid === uid
        ? had.generation
        : ((entry?.uid === uid ? entry.written : iso.status)?.observedGeneration ?? generation);
    this.saidFor.set(key, { uid, generation });
    if (had !== undefined && had.uid !== uid) this.unsaid.delete(key);
    if (said === generation) return;
    this.failures.delete(key);
    this.checkFailures.delete(key);
    this.notEvaluatedSaid.delete(key);
    this.unsaid.add(key);
  }

  private async reconcileActive(
    key: string,
    iso: Isolation,
    spec: IsolationSpec,
    status: IsolationStatus,
  ): Promise<ReconcileResult> {
    const expiresAt = expiryTime(spec, status.isolatedAt);
    if (expiresAt && this.now().getTime() >= Date.parse(expiresAt)) return this.expire(key, iso, expiresAt);

    // The DNS exception's ports are read beside discovery; only the deny objects wait for them.
    const dnsPorts = spec.dns && spec.direction !== 'Ingress' ? this.dnsPorts() : Promise.resolve(undefined);
    const groups = await this.groups();
    const choice = chooseMechanism(groups, spec.mechanism);
    if (!choice.method) {
      const message = choice.problem ?? 'no mechanism';
      // Built on the newest status, not `status`: a leak check of this generation that published while
      // discovery was read keeps its timeline entry, leaks and proof.
      const newest = this.statusEntry(iso).status;
      // A leak check still waiting for an earlier reconcile's state is superseded: it would publish that
      // the pods are isolated over the Failed that says the mechanism is gone. So is one already running.
      this.supersedeChecks(key);
      if (this.unsaid.delete(key) || newest.phase !== 'Failed' || newest.message !== message) {
        await this.setStatus(iso, { ...newest, phase: 'Failed', message }, 'Failed', message);
        this.event(this.isoRef(iso), 'Warning', 'MechanismUnavailable', message);
      }
      return { requeueAfterMs: this.o.resyncMs ?? 30_000 };
    }
    try {
      return await this.isolate(iso, spec, choice.method, choice.why, groups, dnsPorts);
    } catch (err) {
      if (err instanceof NameClash) {
        // On the newest status, as above: a leak check may have published while the objects were written.
        // One still waiting or running is superseded: its proof takes the quarantine policy for microseg's.
        this.supersedeChecks(key);
        await this.setStatus(
          iso,
          { ...this.statusEntry(iso).status, phase: 'Failed', message: err.message },
          'Failed',
          err.message,
        );
        this.event(this.isoRef(iso), 'Warning', 'NameConflict', err.message);
        this.o.metrics?.action('failed');
        return {};
      }
      throw err;
    }
  }

  /** Releases an Isolation that reached its expiry and records it as Released. */
  private async expire(key: string, iso: Isolation, expiresAt: string): Promise<ReconcileResult> {
    this.supersedeChecks(key);
    this.exclusionRetries.delete(key);
    this.stamps.delete(key);
    await this.release(iso, 'expired');
    const message = `released at expiry (${expiresAt})`;
    // A Released record says what holds now: no pod isolated, no proof (the Pods and Leaks columns
    // read podCount and proof.leaks); isolatedPods keeps which pods it held, the timeline the rest.
    const { proof: _proof, ...held } = this.statusEntry(iso).status;
    await this.setStatus(
      iso,
      {
        ...held,
        podCount: 0,
        phase: 'Released',
        message,
        releasedAt: this.now().toISOString(),
        expiresAt,
        leaks: [],
      },
      'Released',
      message,
    );
    this.event(this.isoRef(iso), 'Normal', 'Released', message);
    this.o.metrics?.action('expired');
    this.o.metrics?.setActive(key, 'Released');
    return {};
  }

  private async setStatus(
    iso: Isolation,
    next: IsolationStatus,
    action: string,
    message: string,
  ): Promise<void> {
    const now = this.now().toISOString();
    const entry: TimelineEntry = { time: now, action, message: message.slice(0, 512) };
    const generation = iso.metadata.generation ?? 0;
    const status: IsolationStatus = {
      ...next,
      observedGeneration: generation,
      conditions: setReconciled(next.conditions, undefined, now, generation),
      timeline: addTimeline(next.timeline, entry),
    };
    await this.patchStatus(iso, status);
    iso.status = status;
  }

  private async isolate(
    iso: Isolation,
    spec: IsolationSpec,
    method: MechanismName,
    why: string,
    groups: ApiGroup[],
    dnsPortsP: Promise<readonly DNSPort[] | undefined>,
  ): Promise<ReconcileResult> {
    const ns = iso.metadata.namespace ?? '';
    const name = iso.metadata.name;
    const key = `${ns}/${name}`;
    const status: IsolationStatus = iso.status ?? {};
    const clusterKinds = this.servedClusterKinds(groups);

    // Only the named pods are read on the critical path of a pods target; the whole namespace is listed
    // for the leak check once the deny is in effect.
    const namedOnly = spec.target.kind === 'pods' && !spec.dryRun;
    const readPods = async (): Promise<Pod[]> => {
      if (spec.target.kind !== 'pods' || !namedOnly) return this.list<Pod>(paths.pods(ns));
      const wanted = [...new Set([...spec.target.pods, ...(status.isolatedPods ?? [])])];
      const got = await Promise.all(wanted.map((n) => this.getFromCache<Pod>(paths.pod(ns, n))));
      return got.filter((p): p is Pod => p !== undefined);
    };
    const names = this.namesFrom(status, ns, name);
    const timeline: TimelineEntry[] = [];
    const note = (action: string, message: string) =>
      timeline.push({ time: this.now().toISOString(), action, message: message.slice(0, 512) });
    // The deny objects select nothing until a pod is labelled, so they are written alongside the reads;
    // those of a single-direction Isolation once the reads are in, as they keep the rules of microseg's
    // policies for the direction left open (see keptRules).
    const startObjs = (kept?: KeptRules) =>
      spec.dryRun
        ? dnsPortsP.then((dnsPorts) =>
            desiredObjects({
              namespace: ns,
              name,
              spec,
              method,
              names,
              ...this.planExtras(dnsPorts),
              ...(kept ? { kept } : {}),
            }),
          )
        : dnsPortsP.then((dnsPorts) =>
            this.ensureAll(iso, spec, method, names, status, note, dnsPorts, kept),
          );
    let objsP: Promise<{ networkPolicy: NetworkPolicy; clusterPolicy?: OtherObject }> | undefined =
      spec.direction === 'Both' ? startObjs() : undefined;
    objsP?.catch(() => undefined);
    const finalizerP = spec.dryRun ? Promise.resolve() : this.ensureFinalizer(iso);
    finalizerP.catch(() => undefined);
    const byOwners = spec.target.kind === 'workload' && isOwnerResolved(spec.target);
    const [pods, services, nps, workload, ownership] = await Promise.all([
      readPods(),
      spec.detachFromServices ? this.list<Service>(paths.services(ns)) : Promise.resolve([] as Service[]),
      // Only microseg's own allow policies matter before the labels go on (the exclusion); every policy
      // of the namespace is read for the leak check afterwards. Read from the watch cache: a policy
      // created in the last instant may be missed here, and the leak check then reports it (the next
      // reconcile excludes it); a stale copy only makes its exclusion patch conflict.
      this.kube
        .request<List<NetworkPolicy>>({
          method: 'GET',
          path: paths.networkPolicies(ns),
          query: { labelSelector: MANAGED_ALLOW_SELECTOR, resourceVersion: '0' },
        })
        .then((l) => l.items ?? []),
      spec.target.kind === 'workload' && !byOwners
        ? this.get<{ spec?: { selector?: { matchLabels?: Record<string, string> } } }>(
            paths.workload(ns, spec.target.workloadKind, spec.target.name),
          )
        : Promise.resolve(undefined),
      spec.target.kind === 'workload' && byOwners
        ? this.ownershipFor(ns, spec.target.workloadKind, spec.target.name)
        : Promise.resolve(undefined),
    ]);
    const target = resolveTarget(spec, {
      pods,
      workload,
      ...(ownership ? { ownership } : {}),
      // status.isolatedPods lists at most MAX_LISTED_PODS: the pods carrying this Isolation's quarantine
      // label were isolated by it too.
      previously: [
        ...new Set([
          ...(status.isolatedPods ?? []),
          ...pods.filter((p) => p.metadata.labels?.[QUARANTINE_LABEL] === name).map((p) => p.metadata.name),
        ]),
      ],
      ...(status.isolatedAt ? { isolatedAt: status.isolatedAt } : {}),
    });
    if (!objsP) {
      const targetPods = pods.filter((p) => target.pods.includes(p.metadata.name));
      objsP = startObjs(keptRules(spec, targetPods, nps));
      objsP.catch(() => undefined);
    }

    if (spec.dryRun) {
      const objs = await objsP;
      const after = pods.map((p) =>
        target.pods.includes(p.metadata.name)
          ? podAfter(p, podLabelPlan(p, name, spec.detachFromServices, services))
          : p,
      );
      const report = await this.check(
        iso,
        spec,
        after,
        policiesAfter(await this.cachedList<NetworkPolicy>(paths.networkPolicies(ns)), objs.networkPolicy),
        objs,
        clusterKinds,
        target.pods,
      );
      const unproved = notEvaluatedNote(report.notEvaluated);
      const message = `dry run: would isolate ${target.pods.length} pod(s) with ${method}; ${report.leaks.length} leaking rule(s)${target.notes.length ? `; ${target.notes.join('; ')}` : ''}${unproved ? `; ${unproved}` : ''}`;
      // Built on `status`, read before the awaits above: no leak check of this generation publishes
      // meanwhile (a dry run queues none, and one of an earlier spec is superseded).
      if (status.message !== message)
        await this.setStatus(
          iso,
          {
            ...status,
            phase: 'Pending',
            method,
            message,
            isolatedPods: [],
            podCount: 0,
            leaks: report.leaks,
            proof: {
              probes: report.probes,
              exceptions: report.exceptions,
              leaks: report.leaks.length + report.moreLeaks,
              ...(report.notEvaluated.length ? { notEvaluated: report.notEvaluated.length } : {}),
            },
          },
          'DryRun',
          message,
        );
      return { requeueAfterMs: this.o.resyncMs ?? 30_000 };
    }

    if (!status.method) note('MechanismChosen', `${method}: ${why}`);

    // 2. microseg's own allow policies stop selecting quarantined pods
    const patched = new Set(status.patchedPolicies ?? []);
    const npsNow = [...nps];
    // A patch that conflicts (the copy read was stale, or the policy changed meanwhile) is retried on
    // the policy read again; one that still conflicts is retried by a reconcile requeued promptly, as
    // the policy admits traffic to the quarantined pods until it is excluded, and with backoff while it
    // keeps conflicting (another writer fighting over the policy is not answered every second forever).
    let exclusionPending = false;
    const keep = (np: NetworkPolicy) => {
      const i = npsNow.findIndex((x) => x.metadata.name === np.metadata.name);
      if (i >= 0) npsNow[i] = np;
    };
    for (const p of exclusionPatches(nps)) {
      let patch: Record<string, unknown> | undefined = p.patch;
      for (let attempt = 1; patch; attempt++) {
        try {
          const res = await this.kube.request<NetworkPolicy>({
            method: 'PATCH',
            path: paths.networkPolicy(ns, p.name),
            contentType: MERGE_PATCH,
            body: patch,
          });
          patched.add(`${ns}/${p.name}`);
          keep(res);
          note('PolicyExcluded', `microseg policy ${ns}/${p.name} no longer selects quarantined pods`);
          break;
        } catch (err) {
          if (isNotFound(err)) break;
          if (!isConflict(err)) throw err;
          if (attempt >= EXCLUSION_ATTEMPTS) {
            exclusionPending = true;
            break;
          }
        }
        const fresh = await this.get<NetworkPolicy>(paths.networkPolicy(ns, p.name));
        if (!fresh) break;
        // Excluded meanwhile, or no longer microseg's: nothing to patch.
        patch = exclusionPatches([fresh])[0]?.patch;
        if (!patch) keep(fresh);
      }
    }

    let exclusionRetryAfterMs: number | undefined;
    if (exclusionPending) {
      const n = this.exclusionRetries.get(key) ?? 0;
      exclusionRetryAfterMs = exclusionRetryMs(n);
      this.exclusionRetries.set(key, n + 1);
    } else this.exclusionRetries.delete(key);

    // 3. the deny objects and the finalizer (started with the reads) must be in place before any label
    const [objs] = await Promise.all([objsP, finalizerP]);
    const objectList = [
      `NetworkPolicy/${ns}/${objs.networkPolicy.metadata.name}`,
      ...(objs.clusterPolicy ? [`${objs.clusterPolicy.kind}/${objs.clusterPolicy.metadata.name}`] : []),
    ];

    // 4. label the pods: from here on the deny applies to them
    const podsAfter = new Map(pods.map((p) => [p.metadata.name, p]));
    const isolated: string[] = [];
    // Pods left to the Isolation that holds them: said in the phase message as the target's notes are.
    const heldByOthers: string[] = [];
    const uid = iso.metadata.uid ?? '';
    const labelOne = async (podName: string): Promise<void> => {
      let pod = podsAfter.get(podName);
      if (!pod) return;
      let first = podLabelPlan(pod, name, spec.detachFromServices, services);
      if (first.kind === 'other' && namedOnly) {
        // The pod was read from the watch cache: make sure the other Isolation still holds it.
        pod = await this.get<Pod>(paths.pod(ns, podName));
        if (!pod) return;
        podsAfter.set(podName, pod);
        first = podLabelPlan(pod, name, spec.detachFromServices, services);
      }
      if (first.kind === 'other') {
        const held = `pod ${podName} is already quarantined by Isolation ${first.by}`;
        note('AlreadyQuarantined', held);
        heldByOthers.push(held);
        return;
      }
      let removed: string[] = [];
      let stamped: string | undefined;
      const res = await this.patchPod(ns, pod, (p) => {
        const at = this.now().toISOString();
        const plan = podLabelPlan(p, name, spec.detachFromServices, services, at);
        stamped = undefined;
        if (plan.kind !== 'patch') return undefined;
        removed = plan.removed;
        // A new record, stamped now (not one an earlier quarantine of this Isolation left on the pod).
        stamped = plan.prior.at === at ? at : undefined;
        return plan.patch;
      });
      if (!res) return;
      // Kept at once, not when every label is on: a reconcile that fails on another pod afterwards
      // leaves this one labelled, and its retry observes the time to isolate from it.
      const had = this.stamps.get(key);
      if (stamped && (had?.uid !== uid || Date.parse(stamped) < Date.parse(had.at)))
        this.stamps.set(key, { uid, at: stamped, ackedAt: this.now().getTime() });
      podsAfter.set(podName, res);
      isolated.push(podName);
      if (first.kind === 'patch') {
        note(
          'PodIsolated',
          `pod ${podName} labelled ${QUARANTINE_LABEL}=${name}${removed.length ? `; detached from Services (removed ${removed.join(', ')})` : ''}`,
        );
        this.event(
          {
            apiVersion: 'v1',
            kind: 'Pod',
            name: podName,
            namespace: ns,
            ...(pod.metadata.uid ? { uid: pod.metadata.uid } : {}),
          },
          'Warning',
          'Isolated',
          `isolated by Isolation ${name} (${method}): ${spec.reason}`,
        );
      }
    };
    await Promise.all(target.pods.map(labelOne));
    isolated.sort();
    const nowIso = this.now().toISOString();
    const isolatedAt =
      status.isolatedAt ??
      (isolated.length > 0 ? (labelledSince(iso, isolated, podsAfter, this.now()) ?? nowIso) : undefined);
    // The time to isolate is observed once, by the replica that put the deny into effect: the one that
    // quarantined the episode's first pod, in this reconcile or in one that failed after that label (its
    // retry found the pod labelled). A pod quarantined before by another replica (a previous leader that
    // stopped before its status write; isolatedAt is read back from its record) was isolated without
    // this one, and its sample would count the downtime between the two leaders: none is observed.
    const stamp = this.stamps.get(key);
    const mine = stamp?.uid === uid ? stamp : undefined;
    if (!status.isolatedAt && isolatedAt && mine && Date.parse(mine.at) <= Date.parse(isolatedAt)) {
      const from = Date.parse(
        iso.metadata.annotations?.[RECEIVED_AT_ANNOTATION] ?? iso.metadata.creationTimestamp ?? nowIso,
      );
      const latency = Math.max(0, mine.ackedAt - from);
      this.o.metrics?.timeToIsolate.observe(latency / 1000);
      this.o.metrics?.action('isolated');
      this.o.onIsolated?.(key, latency);
    }
    if (isolatedAt) this.stamps.delete(key);

    // 5. the deny is in effect. What the reconcile decided is recorded now (a later reconcile starts from
    // it); the leak check and the status write that publishes it run in the background, a few at a time,
    // so that under load they never hold up the deny of another incident.
    // Built on the newest status, not the one this reconcile started from: a leak check that published
    // meanwhile (its phase, message, proof and timeline entry) is kept, so the next check does not take
    // its phase for a change and say it again.
    const expiresAt = expiryTime(spec, isolatedAt);
    const entry = this.statusEntry(iso);
    const newest = entry.status;
    entry.status = {
      ...newest,
      method,
      isolatedPods: isolated.slice(0, MAX_LISTED_PODS),
      podCount: isolated.length,
      objects: objectList,
      patchedPolicies: [...patched].sort(),
      ...(isolatedAt ? { isolatedAt } : {}),
      ...(expiresAt ? { expiresAt } : {}),
      // observedGeneration stays the one the phase was decided for: the new spec's outcome is the leak
      // check's (a status written before it, a failed check's or a failed reconcile's, is not taken for it).
      conditions: setReconciled(newest.conditions, undefined, nowIso, iso.metadata.generation ?? 0),
      timeline: timeline.reduce<TimelineEntry[]>((tl, e) => addTimeline(tl, e), newest.timeline ?? []),
    };
    this.pendingChecks.set(key, {
      iso,
      spec,
      method,
      objs,
      clusterKinds,
      isolated,
      podsAfter,
      npsNow,
      // Three named, the rest counted (a selector over a workload another Isolation holds): the message
      // stays short, as the host-network note does.
      notes: [
        ...target.notes,
        ...heldByOthers.sort().slice(0, 3),
        ...(heldByOthers.length > 3
          ? [`and ${heldByOthers.length - 3} more pods are already quarantined by other Isolations`]
          : []),
      ],
      epoch: this.statusEpochs.get(key),
    });
    this.checks.add(key);

    const waits = [this.o.resyncMs ?? 30_000];
    if (target.live || isolated.length < target.pods.length) waits.push(this.o.liveResyncMs ?? 5_000);
    if (exclusionRetryAfterMs !== undefined) waits.push(exclusionRetryAfterMs);
    if (expiresAt) waits.push(Math.max(0, Date.parse(expiresAt) - this.now().getTime()));
    return { requeueAfterMs: Math.min(...waits) };
  }

  /**
   * Does it hold? Checks the newest isolated state of `key` against every policy of its namespace and
   * publishes phase, leaks and proof in the status. Runs on the check queue: never twice at once for a
   * key, and a state superseded while waiting is not checked.
   */
  private async runCheck(key: string): Promise<ReconcileResult> {
    if (!this.pendingChecks.has(key)) return {};
    const slot = await this.background.acquire();
    const input = this.pendingChecks.get(key);
    try {
      const res = await this.checkNewest(key);
      this.checkFailures.delete(key);
      return res;
    } catch (err) {
      // The state stays to be checked (unless a newer one came meanwhile): the check queue retries it with
      // backoff. Until then the failure is said, so that the status does not stay silent.
      // Not when the Isolation was released, deleted or edited meanwhile: that state is no longer the one to
      // prove, and a failure that lasts would be retried for it until the controller restarts.
      if (!input || !this.checkWanted(key, input)) return {};
      if (!this.pendingChecks.has(key)) this.pendingChecks.set(key, input);
      await this.reportCheckFailure(key, input, err);
      throw err;
    } finally {
      slot();
    }
  }

  /**
   * A leak check that failed (a list refused or not answered, a policy the engine cannot read): a Warning
   * Event and the status message say so, once per distinct error. The phase is left as it was when it is
   * this spec generation's; the first check of an edited spec (or of a new Isolation) failing has no
   * outcome yet: phase Pending for the new generation, with no leaks or proof of the spec before, so that
   * neither kubectl nor `isolate --wait` takes the older spec's Isolated, Leaking or Failed for it.
   */
  private async reportCheckFailure(key: string, input: CheckInput, err: unknown): Promise<void> {
    const problem = `${err instanceof Error ? err.message : String(err)} (retrying)`;
    if (this.checkFailures.get(key) === problem) return;
    this.checkFailures.set(key, problem);
    const { iso, method, isolated } = input;
    this.event(this.isoRef(iso), 'Warning', 'LeakCheckFailed', problem);
    const entry = this.statuses.get(key);
    if (!entry || entry.uid !== (iso.metadata.uid ?? '') || entry.status.phase === 'Released') return;
    const message = `${isolated.length} pod(s) isolated with ${method}; the leak check failed: ${problem}`;
    const generation = iso.metadata.generation ?? 0;
    const { leaks: _leaks, proof: _proof, ...rest } = entry.status;
    const next: IsolationStatus =
      entry.status.observedGeneration === generation
        ? { ...entry.status, message }
        : { ...rest, observedGeneration: generation, phase: 'Pending', message };
    await this.patchStatus(iso, next, 'background').catch(() => undefined);
  }

  /**
   * A status a leak check queued before must not overwrite is decided (Failed, Released, a reconcile's
   * failure, the deletion): the check still waiting is dropped, and one already running publishes nothing.
   */
  private supersedeChecks(key: string): void {
    this.pendingChecks.delete(key);
    this.statusEpochs.set(key, ++this.lastEpoch);
  }

  /** True while the state `input` of `key` is still to be proved: not released, deleted nor superseded. */
  private checkWanted(key: string, input: CheckInput): boolean {
    const { iso } = input;
    const entry = this.statuses.get(key);
    return (
      entry !== undefined &&
      input.epoch === this.statusEpochs.get(key) &&
      entry.uid === (iso.metadata.uid ?? '') &&
      entry.status.phase !== 'Released' &&
      !this.observed.get(key)?.metadata.deletionTimestamp &&
      !this.superseded(key, iso)
    );
  }

  /** True when the Isolation's spec was edited after `iso`, the state a leak check was queued for. */
  private superseded(key: string, iso: Isolation): boolean {
    const seen = this.observed.get(key)?.metadata.generation;
    const checked = iso.metadata.generation;
    return seen !== undefined && checked !== undefined && seen > checked;
  }

  private async checkNewest(key: string): Promise<ReconcileResult> {
    const input = this.pendingChecks.get(key);
    if (!input) return {};
    this.pendingChecks.delete(key);
    const { iso, spec, method, objs, clusterKinds, isolated, podsAfter, npsNow, notes } = input;
    const ns = iso.metadata.namespace ?? '';
    const [allPods, allNps] = await Promise.all([
      this.cachedList<Pod>(paths.pods(ns)),
      this.cachedList<NetworkPolicy>(paths.networkPolicies(ns)),
    ]);
    const pods = new Map(podsAfter);
    for (const p of allPods) if (!pods.has(p.metadata.name)) pods.set(p.metadata.name, p);
    // The policies as they are, each in the newer of the list's copy and the one the reconcile left, not
    // as they would be with every exclusion in place: a microseg allow policy the reconcile did not
    // exclude (created after its read, or its patch conflicted) still admits traffic until the next
    // reconcile excludes it, and is reported as a leak meanwhile.
    const current = new Map(allNps.map((p) => [p.metadata.name, p]));
    for (const p of npsNow) {
      const listed = current.get(p.metadata.name);
      if (!listed || newerVersion(p.metadata.resourceVersion, listed.metadata.resourceVersion))
        current.set(p.metadata.name, p);
    }
    current.set(objs.networkPolicy.metadata.name, objs.networkPolicy);
    const report = await this.check(
      iso,
      spec,
      [...pods.values()],
      [...current.values()],
      objs,
      clusterKinds,
      isolated,
    );
    // A newer state arrived while this one was checked: it is checked next and published instead. A spec
    // edited since (into one the controller refuses, or one its reconcile has not reached yet): the state
    // checked is not what the Isolation asks for any more, and is not published.
    // A status decided since it was queued (Failed, a reconcile's failure, Released) says what holds now:
    // the proof of the state before is dropped; the next reconcile queues the next check.
    if (this.pendingChecks.has(key) || this.superseded(key, iso)) return {};
    if (input.epoch !== this.statusEpochs.get(key)) return {};
    const entry = this.statuses.get(key);
    // Gone, recreated, or released meanwhile: nothing to publish.
    if (!entry || entry.uid !== (iso.metadata.uid ?? '') || entry.status.phase === 'Released') return {};
    const status = entry.status;
    const phase: IsolationPhase =
      isolated.length === 0 ? 'Pending' : report.leaks.length > 0 ? 'Leaking' : 'Isolated';
    const leakCount = report.leaks.length + report.moreLeaks;
    // Admin-tier policies the engine cannot read are left out of the proof: the message says which, so
    // that neither Isolated nor the leaks listed are taken for more than was proved.
    const unproved = notEvaluatedNote(report.notEvaluated);
    const message =
      isolated.length === 0
        ? `${NO_POD_MESSAGE}${notes.length ? `: ${notes.join('; ')}` : ''}`
        : (phase === 'Leaking'
            ? `${isolated.length} pod(s) isolated with ${method}, but ${leakCount} rule(s) of other policies still admit traffic: ${report.leaks
                .slice(0, 3)
                .map((l) => `${l.policy} ${l.rule}`)
                .join(', ')}${notes.length ? `; ${notes.join('; ')}` : ''}`
            : `${isolated.length} pod(s) isolated with ${method}${notes.length ? `; ${notes.join('; ')}` : ''}`) +
          (unproved ? `; ${unproved}` : '');
    const unprovedKey = isolated.length > 0 ? report.notEvaluated.join('\u0000') : '';
    if (unprovedKey !== (this.notEvaluatedSaid.get(key) ?? '')) {
      if (unprovedKey) this.event(this.isoRef(iso), 'Warning', 'PolicyNotEvaluated', message);
      if (unprovedKey) this.notEvaluatedSaid.set(key, unprovedKey);
      else this.notEvaluatedSaid.delete(key);
    }
    let timeline = status.timeline ?? [];
    // The first outcome of an edited spec is said even when the phase stays what it was.
    const newSpec = this.unsaid.delete(key);
    if (phase !== status.phase || newSpec) {
      timeline = addTimeline(timeline, {
        time: this.now().toISOString(),
        action: phase,
        message: message.slice(0, 512),
      });
      if (phase === 'Leaking') {
        this.event(this.isoRef(iso), 'Warning', 'Leaking', message);
        this.o.metrics?.action('leak_detected');
      } else if (phase === 'Isolated') this.event(this.isoRef(iso), 'Normal', 'Isolated', message);
      // A target that isolates nothing (a pod or workload that does not exist or is gone, a selector that
      // matches no pod, pods another Isolation holds): said as a Warning, as an invalid spec is, so that
      // `kubectl describe` shows what was wrong.
      else if (isolated.length === 0) this.event(this.isoRef(iso), 'Warning', 'NoPodToIsolate', message);
    }
    const next: IsolationStatus = {
      ...status,
      observedGeneration: iso.metadata.generation ?? 0,
      phase,
      message,
      leaks: report.leaks,
      proof: {
        probes: report.probes,
        exceptions: report.exceptions,
        leaks: leakCount,
        ...(report.notEvaluated.length ? { notEvaluated: report.notEvaluated.length } : {}),
      },
      timeline,
    };
    this.o.metrics?.setActive(key, phase);
    if (statusChanged(entry.written, next)) await this.patchStatus(iso, next, 'background');
    else entry.status = next;
    return {};
  }

  private async ensureFinalizer(iso: Isolation): Promise<void> {
    if ((iso.metadata.finalizers ?? []).includes(ISOLATION_FINALIZER)) return;
    const ns = iso.metadata.namespace ?? '';
    const updated = await this.isolationWrite<Isolation>(iso, {
      method: 'PATCH',
      path: paths.isolation(ns, iso.metadata.name),
      contentType: MERGE_PATCH,
      body: {
        metadata: {
          resourceVersion: iso.metadata.resourceVersion,
          finalizers: [...(iso.metadata.finalizers ?? []), ISOLATION_FINALIZER],
        },
      },
    });
    this.noteWrite(iso, updated);
  }

  /** Writes the deny objects, moving to salted names when a name is taken by an object not ours. */
  private async ensureAll(
    iso: Isolation,
    spec: IsolationSpec,
    method: MechanismName,
    names: ObjectNames,
    status: IsolationStatus,
    note: (action: string, message: string) => void,
    dnsPorts: readonly DNSPort[] | undefined,
    kept?: KeptRules,
  ): Promise<{ networkPolicy: NetworkPolicy; clusterPolicy?: OtherObject }> {
    const ns = iso.metadata.namespace ?? '';
    const name = iso.metadata.name;
    const known = new Set(status.objects ?? []);
    const build = (n: ObjectNames) =>
      desiredObjects({
        namespace: ns,
        name,
        spec,
        method,
        names: n,
        uid: iso.metadata.uid,
        ...this.planExtras(dnsPorts),
        ...(kept ? { kept } : {}),
      });
    let objs = build(names);
    try {
      await this.ensureObjects(ns, name, objs, known);
    } catch (err) {
      if (!(err instanceof NameClash) || names.networkPolicy.endsWith(this.salt(iso))) throw err;
      const salted = objectNames(ns, name, this.salt(iso));
      note('NameConflict', `${err.message}; using ${salted.networkPolicy}`);
      objs = build(salted);
      await this.ensureObjects(ns, name, objs, known);
    }
    return objs;
  }

  private planExtras(dnsPorts: readonly DNSPort[] | undefined): {
    dns?: DnsTarget;
    dnsPorts?: readonly DNSPort[];
    priority?: number;
  } {
    return {
      ...(this.o.dns ? { dns: this.o.dns } : {}),
      ...(dnsPorts ? { dnsPorts } : {}),
      ...(this.o.priority !== undefined ? { priority: this.o.priority } : {}),
    };
  }

  private salt(iso: Isolation): string {
    return (iso.metadata.uid ?? 'x').replace(/-/g, '').slice(0, 8);
  }

  /** Names already chosen (from status.objects), or the deterministic default. */
  private namesFrom(status: IsolationStatus, ns: string, name: string): ObjectNames {
    const dflt = objectNames(ns, name);
    const np = (status.objects ?? []).find((o) => o.startsWith(`NetworkPolicy/${ns}/`));
    const cp = (status.objects ?? []).find((o) => !o.startsWith('NetworkPolicy/'));
    return {
      networkPolicy: np ? np.slice(`NetworkPolicy/${ns}/`.length) : dflt.networkPolicy,
      clusterPolicy: cp ? cp.slice(cp.indexOf('/') + 1) : dflt.clusterPolicy,
    };
  }

  private async ensureObjects(
    ns: string,
    name: string,
    objs: { networkPolicy: NetworkPolicy; clusterPolicy?: OtherObject },
    known: ReadonlySet<string>,
  ): Promise<void> {
    const cp = objs.clusterPolicy;
    await Promise.all([
      cp
        ? this.ensure(
            CLUSTER_POLICY_PATHS[cp.kind]!(),
            cp,
            ns,
            name,
            known.has(`${cp.kind}/${cp.metadata.name}`),
          )
        : Promise.resolve(),
      this.ensure(
        paths.networkPolicies(ns),
        objs.networkPolicy,
        ns,
        name,
        known.has(`NetworkPolicy/${ns}/${objs.networkPolicy.metadata.name}`),
      ),
    ]);
  }

  /** Creates `desired`, or updates it when it exists and is ours; never touches someone else's object. */
  private async ensure(
    collection: string,
    desired: OtherObject | NetworkPolicy,
    ns: string,
    name: string,
    known = false,
  ): Promise<void> {
    const path = `${collection}/${desired.metadata.name}`;
    // A first write POSTs straight away (one round trip); an object already recorded is read first.
    let existing = known ? await this.get<OtherObject & { spec?: unknown }>(path) : undefined;
    if (!existing) {
      try {
        await this.kube.request({ method: 'POST', path: collection, body: desired });
        return;
      } catch (err) {
        if (!(err instanceof KubeError && err.status === 409)) throw err;
      }
      existing = await this.get<OtherObject & { spec?: unknown }>(path);
      if (!existing) return this.ensure(collection, desired, ns, name);
    }
    if (!ownedBy(existing, ns, name))
      throw new NameClash(
        `${desired.kind} ${desired.metadata.name} exists and is not owned by this Isolation`,
      );
    const want = (desired as { spec?: unknown }).spec;
    // A NetworkPolicy is compared whole (in the canonical form that ignores what the apiserver omits or
    // defaults): anything added by hand, such as a selector term that stops selecting the pods or an
    // allow rule, undoes the deny. The admin-tier CRDs have server defaults of their own, so their specs
    // are compared on the fields microseg sets.
    const same =
      desired.kind === 'NetworkPolicy'
        ? canonicalSpec(existing.spec as NetworkPolicy['spec']) ===
          canonicalSpec(want as NetworkPolicy['spec'])
        : contains(existing.spec, want);
    if (same && contains(existing.metadata.labels, desired.metadata.labels)) return;
    await this.kube.request({
      method: 'PUT',
      path,
      body: {
        ...desired,
        metadata: { ...desired.metadata, resourceVersion: existing.metadata.resourceVersion },
      },
    });
  }

  private async check(
    iso: Isolation,
    spec: IsolationSpec,
    pods: Pod[],
    nps: NetworkPolicy[],
    own: { networkPolicy: NetworkPolicy; clusterPolicy?: OtherObject },
    clusterKinds: string[],
    isolated: string[],
  ) {
    const ns = iso.metadata.namespace ?? '';
    const [namespaces, ...clusterLists] = await Promise.all([
      this.namespaces(),
      ...clusterKinds.map((k) => this.cachedList<OtherObject>(CLUSTER_POLICY_PATHS[k]!())),
      ...(clusterKinds.includes('AdminNetworkPolicy')
        ? [
            this.list<OtherObject>(paths.baselineAdminNetworkPolicies(), undefined, 'background').catch(
              () => [] as OtherObject[],
            ),
          ]
        : []),
    ]);
    const clusterPolicies = clusterLists
      .flat()
      .filter(
        (o) =>
          !own.clusterPolicy ||
          o.metadata.name !== own.clusterPolicy.metadata.name ||
          o.kind !== own.clusterPolicy.kind,
      );
    const all = [...clusterPolicies, ...(own.clusterPolicy ? [own.clusterPolicy] : [])];
    // The witnesses of an admin-tier `nodes` peer, read only when a policy has one: a Node list is large
    // (each Node's status.images), and a leak check runs for each Isolation at every resync. Without the
    // permission, the nodes of the namespace's pods are still known from their hostIPs.
    const nodes = all.some(namesNodes)
      ? await this.cachedList<OtherObject>(paths.nodes()).catch(() => [] as OtherObject[])
      : [];
    return checkIsolation({
      namespaces,
      nodes,
      pods,
      networkPolicies: nps,
      clusterPolicies: all,
      own: {
        networkPolicies: [own.networkPolicy],
        clusterPolicies: own.clusterPolicy ? [own.clusterPolicy] : [],
      },
      namespace: ns,
      isolatedPods: isolated,
      direction: spec.direction,
      ...(this.o.engine ? { engine: this.o.engine } : {}),
    });
  }

  /**
   * Undoes an Isolation exactly: restores each pod's labels from its prior-state record, deletes the
   * objects created for it (found by label, checked for ownership), and takes the quarantine exclusion
   * out of microseg's allow policies once no pod of the namespace is quarantined any more.
   */
  async release(iso: Isolation, why: 'deleted' | 'expired' | 'requested'): Promise<void> {
    const ns = iso.metadata.namespace ?? '';
    const name = iso.metadata.name;
    const pods = await this.list<Pod>(paths.pods(ns), `${QUARANTINE_LABEL}=${name}`);
    for (const p of pods) {
      const res = await this.patchPod(ns, p, (cur) => podReleasePatch(cur, name));
      if (res)
        this.event(
          {
            apiVersion: 'v1',
            kind: 'Pod',
            name: p.metadata.name,
            namespace: ns,
            ...(p.metadata.uid ? { uid: p.metadata.uid } : {}),
          },
          'Normal',
          'Released',
          `released by Isolation ${name} (${why}); labels restored`,
        );
    }
    const sel = labelSelectorQuery({ [ISOLATION_LABEL]: name, [ISOLATION_NAMESPACE_LABEL]: ns });
    for (const np of await this.list<NetworkPolicy>(paths.networkPolicies(ns), sel))
      if (ownedBy(np, ns, name)) await this.deleteIgnoringMissing(paths.networkPolicy(ns, np.metadata.name));
    const groups = await this.groups();
    for (const kind of this.servedClusterKinds(groups)) {
      const base = CLUSTER_POLICY_PATHS[kind]!();
      for (const o of await this.list<OtherObject>(base, sel))
        if (ownedBy(o, ns, name)) await this.deleteIgnoringMissing(`${base}/${o.metadata.name}`);
    }
    const stillQuarantined = await this.list<Pod>(paths.pods(ns), QUARANTINE_LABEL);
    if (stillQuarantined.length === 0) {
      for (const listed of await this.list<NetworkPolicy>(paths.networkPolicies(ns))) {
        const path = paths.networkPolicy(ns, listed.metadata.name);
        let np: NetworkPolicy | undefined = listed;
        for (let attempt = 0; np; attempt++) {
          const patch = exclusionRemovalPatch(np);
          if (!patch) break;
          try {
            await this.kube.request({ method: 'PATCH', path, contentType: MERGE_PATCH, body: patch });
            break;
          } catch (err) {
            if (isNotFound(err)) break; // gone: nothing of ours left to undo there
            if (!isConflict(err)) throw err;
            // Still changing: the release fails and is retried with backoff (the finalizer stays),
            // rather than ending with the exclusion left in place.
            if (attempt >= 4)
              throw new Error(
                `NetworkPolicy ${ns}/${listed.metadata.name}: gave up taking the quarantine exclusion out after repeated conflicts`,
                { cause: err },
              );
            // Changed meanwhile (its owner re-applied it, keeping the exclusion and its marker): read it
            // again and take the exclusion out of the new version.
            np = await this.get<NetworkPolicy>(path);
          }
        }
      }
    }
    this.o.metrics?.action('released');
  }

  private async deleteIgnoringMissing(path: string): Promise<void> {
    try {
      await this.kube.request({ method: 'DELETE', path });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}

/** Counts permits; `acquire` resolves with the function that gives the permit back. */
class Semaphore {
  private free: number;
  private readonly waiters: (() => void)[] = [];
  constructor(n: number) {
    this.free = Math.max(1, n);
  }
  async acquire(): Promise<() => void> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiters.push(resolve));
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.waiters.shift();
      if (next) next();
      else this.free++;
    };
  }
}

class NameClash extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NameClash';
  }
}

/** True when every field of `want` is present in `have` with the same value (server defaults may add more). */
export function contains(have: unknown, want: unknown): boolean {
  if (want === null || typeof want !== 'object') return have === want;
  if (Array.isArray(want)) {
    if (want.length === 0 && have === undefined) return true;
    return Array.isArray(have) && have.length === want.length && want.every((w, i) => contains(have[i], w));
  }
  if (have === null || typeof have !== 'object' || Array.isArray(have)) return false;
  const h = have as Record<string, unknown>;
  return Object.entries(want).every(([k, v]) => (v === undefined ? true : contains(h[k], v)));
}

function statusChanged(a: IsolationStatus, b: IsolationStatus): boolean {
  const strip = (s: IsolationStatus) => JSON.stringify({ ...s, timeline: (s.timeline ?? []).length });
  return strip(a) !== strip(b);
}

/**
 * True when resourceVersion `a` is newer than `b`. resourceVersions are opaque, but the apiserver's are
 * etcd revisions (decimal integers); anything else counts as newer, so a state is never ignored wrongly.
 */
export function newerVersion(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined) return false;
  if (b === undefined) return true;
  if (/^\d+$/.test(a) && /^\d+$/.test(b)) return BigInt(a) > BigInt(b);
  return a !== b;
}

/**
 * True when two states of one Isolation ask for the same thing: same spec generation, same deletion
 * state and finalizers. A watch event between two such states is a status write and needs no reconcile.
 */
function sameIntent(a: Isolation, b: Isolation): boolean {
  return (
    a.metadata.generation !== undefined &&
    a.metadata.generation === b.metadata.generation &&
    a.metadata.deletionTimestamp === b.metadata.deletionTimestamp &&
    a.metadata.annotations?.[REARM_ANNOTATION] === b.metadata.annotations?.[REARM_ANNOTATION] &&
    JSON.stringify(a.metadata.finalizers ?? []) === JSON.stringify(b.metadata.finalizers ?? [])
  );
}
