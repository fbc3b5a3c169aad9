/**
 * Informer-backed cluster cache: namespaces, pods, services, endpoint slices, pod owners and
 * NetworkPolicies, stripped to the fields the core uses (so 10k pods stay small), turned into a
 * `ClusterSnapshot` on demand — the same data the offline pipeline reads from files. Deleted pods are
 * remembered for a while (`tombstoneMs`) so that flows reported late still resolve their IP to the pod
 * that held it at the time.
 */
import type {
  CronJob,
  EndpointSlice,
  KObject,
  Namespace,
  NetworkPolicy,
  Pod,
  Service,
  WorkloadObject,
} from '../model/k8s.ts';
import type { ClusterSnapshot } from '../model/snapshot.ts';
import { emptySnapshot } from '../model/snapshot.ts';
import { Informer, cacheKey } from './informer.ts';
import type { KubeClient } from './kube.ts';
import { resourcePath } from './kube.ts';
import type { Logger } from './log.ts';

type Raw = Record<string, unknown> & { metadata: Record<string, unknown> };

function meta(m: Record<string, unknown>): KObject['metadata'] {
  const out: Record<string, unknown> = {};
  for (const k of [
    'name',
    'namespace',
    'uid',
    'labels',
    'annotations',
    'ownerReferences',
    'creationTimestamp',
    'deletionTimestamp',
    'resourceVersion',
    'generation',
  ])
    if (m[k] !== undefined) out[k] = m[k];
  // Annotations can be large (kubectl last-applied); keep only microseg's own.
  if (out.annotations) {
    const a = out.annotations as Record<string, string>;
    const kept = Object.fromEntries(Object.entries(a).filter(([k]) => k.startsWith('microseg.dev/')));
    if (Object.keys(kept).length > 0) out.annotations = kept;
    else delete out.annotations;
  }
  return out as unknown as KObject['metadata'];
}

function slimContainers(cs: unknown): { name: string; ports?: unknown }[] {
  return ((cs as { name: string; ports?: unknown[] }[] | undefined) ?? []).map((c) =>
    c.ports ? { name: c.name, ports: c.ports } : { name: c.name },
  );
}

export function slimPod(raw: unknown): Pod {
  const o = raw as Raw & { spec?: Record<string, unknown>; status?: Record<string, unknown> };
  const spec = o.spec ?? {};
  const status = o.status ?? {};
  const s: Pod['status'] = {};
  for (const k of ['phase', 'podIP', 'podIPs', 'hostIP', 'startTime'] as const)
    if (status[k] !== undefined) (s as Record<string, unknown>)[k] = status[k];
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: meta(o.metadata),
    spec: {
      ...(spec.nodeName ? { nodeName: spec.nodeName as string } : {}),
      ...(spec.hostNetwork ? { hostNetwork: true } : {}),
      containers: slimContainers(spec.containers) as Pod['spec']['containers'],
    },
    status: s,
  };
}

function slimWorkload(kind: string, apiVersion: string) {
  return (raw: unknown): KObject => {
    const o = raw as Raw & { spec?: Record<string, unknown> };
    const spec = o.spec ?? {};
    const tpl = (s: Record<string, unknown> | undefined) => {
      const t = s?.template as
        { metadata?: { labels?: unknown }; spec?: Record<string, unknown> } | undefined;
      if (!t) return undefined;
      return {
        metadata: { labels: t.metadata?.labels },
        spec: {
          ...(t.spec?.hostNetwork ? { hostNetwork: true } : {}),
          containers: slimContainers(t.spec?.containers),
        },
      };
    };
    if (kind === 'CronJob') {
      const jt = spec.jobTemplate as { spec?: Record<string, unknown> } | undefined;
      return {
        apiVersion,
        kind,
        metadata: meta(o.metadata),
        spec: { jobTemplate: { spec: { template: tpl(jt?.spec) } } },
      } as KObject;
    }
    return {
      apiVersion,
      kind,
      metadata: meta(o.metadata),
      spec: { selector: spec.selector, template: tpl(spec) },
    } as KObject;
  };
}

const keep =
  (kind: string, apiVersion: string) =>
  (raw: unknown): KObject => {
    const o = raw as Raw;
    return { ...o, apiVersion, kind, metadata: meta(o.metadata) };
  };

export interface ClusterCacheOptions {
  log?: Logger;
  resyncMs?: number;
  /** How long deleted pods are kept for IP resolution; default 10 minutes. */
  tombstoneMs?: number;
  /** Most deleted pods kept; default 10 000. */
  maxTombstones?: number;
  backoffMinMs?: number;
  backoffMaxMs?: number;
}

export class ClusterCache {
  readonly namespaces: Informer<Namespace>;
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
  readonly #tombstones = new Map<string, { pod: Pod; at: number }>();
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
    this.namespaces = make('Namespace', 'v1', keep('Namespace', 'v1'));
    this.pods = make('Pod', 'v1', slimPod);
    this.services = make('Service', 'v1', keep('Service', 'v1'));
    this.endpointSlices = make(
      'EndpointSlice',
      'discovery.k8s.io/v1',
      keep('EndpointSlice', 'discovery.k8s.io/v1'),
    );
    this.workloads = (
      [
        ['Deployment', 'apps/v1'],
        ['ReplicaSet', 'apps/v1'],
        ['StatefulSet', 'apps/v1'],
        ['DaemonSet', 'apps/v1'],
        ['Job', 'batch/v1'],
      ] as const
    ).map(([k, v]) => make<WorkloadObject>(k, v, slimWorkload(k, v)));
    this.cronJobs = make('CronJob', 'batch/v1', slimWorkload('CronJob', 'batch/v1'));
    this.networkPolicies = make(
      'NetworkPolicy',
      'networking.k8s.io/v1',
      keep('NetworkPolicy', 'networking.k8s.io/v1'),
    );
    this.#tombstoneMs = opts.tombstoneMs ?? 600_000;
    this.#maxTombstones = opts.maxTombstones ?? 10_000;
    for (const inf of this.informers())
      if (inf !== (this.networkPolicies as unknown)) inf.on(() => this.version++);
    this.networkPolicies.on(() => this.policyVersion++);
    this.pods.on((type, pod) => {
      const k = cacheKey(pod);
      if (type === 'delete') {
        this.#tombstones.set(k, { pod, at: Date.now() });
        if (this.#tombstones.size > this.#maxTombstones) {
          const first = this.#tombstones.keys().next();
          if (!first.done) this.#tombstones.delete(first.value);
        }
      } else this.#tombstones.delete(k);
    });
  }

  informers(): Informer<KObject>[] {
    return [
      this.namespaces,
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

  /** Pods deleted within the tombstone period (for IP-over-time resolution). */
  recentlyDeletedPods(now = Date.now()): Pod[] {
    for (const [k, t] of this.#tombstones) if (now - t.at > this.#tombstoneMs) this.#tombstones.delete(k);
    return [...this.#tombstones.values()].map((t) => t.pod);
  }

  /** The cache as a ClusterSnapshot. With `withDeletedPods`, recently deleted pods are included. */
  snapshot(opts: { withDeletedPods?: boolean } = {}): ClusterSnapshot {
    const snap = emptySnapshot();
    snap.namespaces = this.namespaces.list();
    snap.pods = this.pods.list();
    if (opts.withDeletedPods) {
      const live = new Set(snap.pods.map(cacheKey));
      snap.pods = [...snap.pods, ...this.recentlyDeletedPods().filter((p) => !live.has(cacheKey(p)))];
    }
    snap.services = this.services.list();
    snap.endpointSlices = this.endpointSlices.list();
    snap.workloads = this.workloads.flatMap((i) => i.list());
    snap.cronJobs = this.cronJobs.list();
    snap.networkPolicies = this.networkPolicies.list();
    return snap;
  }
}
