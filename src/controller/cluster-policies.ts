/**
 * The cluster-wide policies of the cluster (AdminNetworkPolicy, BaselineAdminNetworkPolicy,
 * ClusterNetworkPolicy, of policy.networking.k8s.io), for the semantics engine: an AdminNetworkPolicy
 * that allows what a namespace's default deny would block still lets it through, and an audit that did
 * not know it would call the traffic blocked. Each kind the API server serves is watched by an Informer
 * (list, then watch from its resourceVersion), so a policy created, changed or deleted is read within
 * moments and `on`'s listeners are told. Their CRDs may be absent, or come and go: the kinds served are
 * found by discovery at start and then every interval; a kind found is watched from then on, and a kind
 * no longer served is no longer watched and its objects are dropped. A kind the controller cannot list
 * or watch (no RBAC, an error) keeps what was read of it before (none, if never read), said once in the
 * log (again if it fails after a list worked); a failed discovery keeps every kind as it is, said once
 * in the log. An object the semantics engine cannot evaluate (a peer or field microseg does not
 * support, such as an egress peer by domainNames) is left out, said once in the log: the engine refuses
 * any set that holds one, so it would leave every audit without an engine.
 */
import type { OtherObject } from '../model/k8s.ts';
import { compileClusterPolicy } from '../verify/validate.ts';
import { Informer } from './informer.ts';
import type { KubeClient } from './kube.ts';
import { KubeApiError } from './kube.ts';
import type { Logger } from './log.ts';

/** The kinds read, with the API version and resource each is served under. */
export const CLUSTER_POLICY_RESOURCES = [
  { kind: 'AdminNetworkPolicy', version: 'v1alpha1', plural: 'adminnetworkpolicies' },
  { kind: 'BaselineAdminNetworkPolicy', version: 'v1alpha1', plural: 'baselineadminnetworkpolicies' },
  { kind: 'ClusterNetworkPolicy', version: 'v1alpha2', plural: 'clusternetworkpolicies' },
] as const;

const GROUP = 'policy.networking.k8s.io';

/** A kind watched: its informer, and whether its first list or failure has come (for `start()`). */
interface Watched {
  informer: Informer<OtherObject>;
  settled: Promise<void>;
}

export class ClusterPolicies {
  readonly #client: KubeClient;
  readonly #log: Logger | undefined;
  readonly #intervalMs: number;
  readonly #resyncMs: number | undefined;
  readonly #backoffMaxMs: number | undefined;
  #items: OtherObject[] = [];
  readonly #watched = new Map<string, Watched>();
  /** Whether the semantics engine can evaluate an object (the informers replace an object that changes). */
  readonly #evaluable = new WeakMap<OtherObject, boolean>();
  #key = '';
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  readonly #told = new Set<string>();
  readonly #listeners: (() => void)[] = [];
  readonly #objectListeners: ((objs: readonly OtherObject[]) => void)[] = [];
  readonly #coalesceMs: number;
  /** The objects changed since the listeners were told last, and the version they were told of. */
  #changedObjects: OtherObject[] = [];
  #versionTold = 0;
  /** Set for `coalesceMs` after the listeners are told: changes meanwhile are told when it ends. */
  #quiet: NodeJS.Timeout | undefined;
  /** Bumped whenever what was read changes (an object added, changed or removed). */
  version = 0;

  constructor(
    client: KubeClient,
    opts: {
      log?: Logger;
      intervalMs?: number;
      resyncMs?: number;
      backoffMaxMs?: number;
      /** How long after telling the listeners changes are gathered before they are told (default 1 s). */
      coalesceMs?: number;
    } = {},
  ) {
    this.#client = client;
    this.#log = opts.log;
    // Not more often than every second (an interval of 0 would discover without pause).
    this.#intervalMs = Math.max(opts.intervalMs ?? 30_000, 1000);
    this.#resyncMs = opts.resyncMs;
    this.#backoffMaxMs = opts.backoffMaxMs;
    this.#coalesceMs = opts.coalesceMs ?? 1000;
  }

  /** The cluster-wide policies read last. */
  list(): OtherObject[] {
    return this.#items;
  }

  /**
   * Calls `listener` when what was read changes (after `version` is bumped): at once for the first change
   * after a quiet second, and the changes that come within `coalesceMs` of telling it are told together
   * when that ends. A burst of changes (100 policies applied at once, a watch event each) is told a few
   * times, not once a change: a listener may do much for each (the Segmentation controller reconciles
   * every Segmentation, each building its audit's engine again).
   */
  on(listener: () => void): void {
    this.#listeners.push(listener);
  }

  /**
   * Calls `listener` with the objects added, changed or deleted, of every kind watched (one the semantics
   * engine cannot evaluate too), and those of a kind no longer served as they are dropped; told as `on`'s
   * listeners are, those of a burst together.
   */
  onObjects(listener: (objs: readonly OtherObject[]) => void): void {
    this.#objectListeners.push(listener);
  }

  /**
   * Discovers the kinds served and watches them, then discovers again an interval after each discovery
   * ends until stop(). Resolves once the first discovery is done and each kind found has been listed
   * (or its list has failed).
   */
  async start(): Promise<void> {
    this.#stopped = false;
    await this.refresh();
    await Promise.all([...this.#watched.values()].map((w) => w.settled));
    this.#schedule();
  }

  /** Stops discovering and watching; what was read stays. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#quiet) clearTimeout(this.#quiet);
    this.#quiet = undefined;
    this.#changedObjects = [];
    const watched = [...this.#watched.values()];
    this.#watched.clear();
    await Promise.all(watched.map((w) => w.informer.stop()));
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.refresh()
        .catch((err: unknown) => this.#tell('refresh', 'cannot read the cluster-wide policies', err))
        .finally(() => this.#schedule());
    }, this.#intervalMs);
    this.#timer.unref();
  }

  /**
   * Discovers the kinds served: watches those not watched yet, and stops watching (and drops the
   * objects of) those no longer served. A failed discovery changes nothing.
   */
  async refresh(): Promise<void> {
    let served: Set<string>;
    try {
      const group = await this.#client.get<{ versions?: { version: string }[] }>(`/apis/${GROUP}`);
      const versions = new Set((group.versions ?? []).map((v) => v.version));
      served = new Set();
      for (const version of versions) {
        const res = await this.#client.get<{ resources?: { name: string }[] }>(`/apis/${GROUP}/${version}`);
        for (const r of res.resources ?? []) served.add(`${version}/${r.name}`);
      }
      // Said again if it fails again later.
      this.#told.delete('discovery');
    } catch (err) {
      // The group not served (no such CRDs) is a discovery that worked: said again if it fails later.
      if (err instanceof KubeApiError && err.code === 404) {
        served = new Set();
        this.#told.delete('discovery');
      } else {
        this.#tell('discovery', `cannot discover ${GROUP}; cluster-wide policies are not read`, err);
        return;
      }
    }
    // Stopped while discovering: nothing is started that no stop() would end.
    if (this.#stopped) return;
    const gone: Promise<void>[] = [];
    const dropped: OtherObject[] = [];
    for (const r of CLUSTER_POLICY_RESOURCES) {
      const w = this.#watched.get(r.kind);
      if (served.has(`${r.version}/${r.plural}`)) {
        if (!w) this.#watch(r);
        continue;
      }
      if (!w) continue;
      this.#watched.delete(r.kind);
      this.#told.delete(r.kind);
      this.#forgetObjects(r.kind, new Set());
      dropped.push(...w.informer.list());
      gone.push(w.informer.stop());
    }
    await Promise.all(gone);
    this.#update();
    this.#changed(dropped);
  }

  #watch(r: (typeof CLUSTER_POLICY_RESOURCES)[number]): void {
    let settle = () => {};
    const settled = new Promise<void>((resolve) => (settle = resolve));
    const informer = new Informer<OtherObject>(this.#client, {
      path: `/apis/${GROUP}/${r.version}/${r.plural}`,
      name: r.kind,
      ...(this.#resyncMs !== undefined ? { resyncMs: this.#resyncMs } : {}),
      ...(this.#backoffMaxMs !== undefined ? { backoffMaxMs: this.#backoffMaxMs } : {}),
      log: this.#log,
      // Each object with its kind (a list's items have none).
      transform: (o) => ({ ...(o as OtherObject), apiVersion: `${GROUP}/${r.version}`, kind: r.kind }),
      onListed: () => {
        this.#told.delete(r.kind);
        settle();
      },
      onError: (err) => {
        this.#tell(
          r.kind,
          `cannot list ${r.kind} objects; audits keep what was read of them last (none, if never read)`,
          err,
        );
        settle();
      },
    });
    informer.on((_type, obj) => {
      this.#update();
      this.#changed([obj]);
    });
    this.#watched.set(r.kind, { informer, settled });
    informer.start();
  }

  /** Gathers what the informers hold; bumps the version when it changed. */
  #update(): void {
    const items: OtherObject[] = [];
    for (const [kind, w] of this.#watched) {
      const unevaluable = new Set<string>();
      for (const obj of w.informer.list()) {
        if (this.#canEvaluate(obj)) items.push(obj);
        else unevaluable.add(`${kind}/${obj.metadata.name}@${obj.metadata.resourceVersion ?? ''}`);
      }
      this.#forgetObjects(kind, unevaluable);
    }
    items.sort((a, b) =>
      a.kind !== b.kind ? (a.kind < b.kind ? -1 : 1) : a.metadata.name < b.metadata.name ? -1 : 1,
    );
    const key = items
      .map((o) => `${o.kind}/${o.metadata.name}@${o.metadata.resourceVersion ?? JSON.stringify(o.spec)}`)
      .join('\n');
    if (key === this.#key) return;
    this.#key = key;
    this.#items = items;
    this.version++;
  }

  /** `objs` changed (and maybe the version): the listeners are told now, or when the quiet time ends. */
  #changed(objs: readonly OtherObject[]): void {
    if (this.#stopped) return;
    this.#changedObjects.push(...objs);
    if (this.#quiet === undefined) this.#tellListeners();
  }

  #tellListeners(): void {
    const objs = this.#changedObjects.splice(0);
    const bumped = this.version !== this.#versionTold;
    if (!bumped && objs.length === 0) return;
    this.#versionTold = this.version;
    const calls: (() => void)[] = [
      ...(bumped ? this.#listeners.slice() : []),
      ...(objs.length > 0 ? this.#objectListeners.map((l) => () => l(objs)) : []),
    ];
    for (const call of calls) {
      try {
        call();
      } catch (err) {
        this.#log?.error('cluster-wide policy listener failed', { error: String(err) });
      }
    }
    this.#quiet = setTimeout(() => {
      this.#quiet = undefined;
      this.#tellListeners();
    }, this.#coalesceMs);
    this.#quiet.unref();
  }

  /** Whether the semantics engine can evaluate `obj`; one it cannot is said once (each version of it). */
  #canEvaluate(obj: OtherObject): boolean {
    const known = this.#evaluable.get(obj);
    if (known !== undefined) return known;
    let ok = true;
    try {
      compileClusterPolicy(obj);
    } catch (err) {
      ok = false;
      this.#tell(
        `${obj.kind}/${obj.metadata.name}@${obj.metadata.resourceVersion ?? ''}`,
        `cannot evaluate ${obj.kind} ${obj.metadata.name}; it is left out of audits`,
        err,
      );
    }
    this.#evaluable.set(obj, ok);
    return ok;
  }

  /**
   * Forgets the objects of `kind` said to be unevaluable that are not (`still`) any more: deleted or
   * changed (a new resourceVersion is another key), so the set does not keep every version ever read.
   */
  #forgetObjects(kind: string, still: ReadonlySet<string>): void {
    for (const what of this.#told)
      if (what.startsWith(`${kind}/`) && !still.has(what)) this.#told.delete(what);
  }

  /** How many failures are remembered as said (for tests). */
  get told(): number {
    return this.#told.size;
  }

  #tell(what: string, message: string, err: unknown): void {
    if (this.#told.has(what)) return;
    this.#told.add(what);
    this.#log?.warn(message, { error: (err as Error).message });
  }
}
