/**
 * The cluster-wide policies of the cluster (AdminNetworkPolicy, BaselineAdminNetworkPolicy,
 * ClusterNetworkPolicy, of policy.networking.k8s.io), for the semantics engine: an AdminNetworkPolicy
 * that allows what a namespace's default deny would block still lets it through, and an audit that did
 * not know it would call the traffic blocked. Read by listing, at start and then every interval (not
 * watched: their CRDs may be absent, or come and go, and there are few of them); the kinds the API
 * server serves are found by discovery at each read. A kind the server does not serve is left out; a
 * kind the controller cannot list (no RBAC, an error) keeps what was read of it before (none, if never
 * read), said once in the log. An object the semantics engine cannot evaluate (a peer or field microseg
 * does not support, such as an egress peer by domainNames) is left out, said once in the log: the engine
 * refuses any set that holds one, so it would leave every audit without an engine.
 */
import type { OtherObject } from '../model/k8s.ts';
import { compileClusterPolicy } from '../verify/validate.ts';
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

export class ClusterPolicies {
  readonly #client: KubeClient;
  readonly #log: Logger | undefined;
  readonly #intervalMs: number;
  #items: OtherObject[] = [];
  /** What was read last of each kind (a kind whose read failed keeps it). */
  readonly #byKind = new Map<string, OtherObject[]>();
  #key = '';
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  readonly #told = new Set<string>();
  /** Bumped whenever what was read changes (an object added, changed or removed). */
  version = 0;

  constructor(client: KubeClient, opts: { log?: Logger; intervalMs?: number } = {}) {
    this.#client = client;
    this.#log = opts.log;
    // Not more often than every second (an interval of 0 would read without pause).
    this.#intervalMs = Math.max(opts.intervalMs ?? 30_000, 1000);
  }

  /** The cluster-wide policies read last. */
  list(): OtherObject[] {
    return this.#items;
  }

  /**
   * Reads them now, then an interval after each read ends (reads never overlap) until stop(). Resolves
   * once the first read is done.
   */
  async start(): Promise<void> {
    this.#stopped = false;
    await this.refresh();
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
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

  /** Discovers the kinds served and lists them; a failed read keeps what was read before. */
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
    for (const r of CLUSTER_POLICY_RESOURCES) {
      if (!served.has(`${r.version}/${r.plural}`)) {
        this.#byKind.delete(r.kind);
        this.#forgetObjects(r.kind, new Set());
        continue;
      }
      try {
        const list = await this.#client.list<OtherObject>(`/apis/${GROUP}/${r.version}/${r.plural}`);
        const read: OtherObject[] = [];
        const unevaluable = new Set<string>();
        for (const o of list.items) {
          const obj: OtherObject = { ...o, apiVersion: `${GROUP}/${r.version}`, kind: r.kind };
          try {
            compileClusterPolicy(obj);
            read.push(obj);
          } catch (err) {
            const what = `${r.kind}/${o.metadata.name}@${o.metadata.resourceVersion ?? ''}`;
            unevaluable.add(what);
            this.#tell(what, `cannot evaluate ${r.kind} ${o.metadata.name}; it is left out of audits`, err);
          }
        }
        this.#byKind.set(r.kind, read);
        this.#told.delete(r.kind);
        this.#forgetObjects(r.kind, unevaluable);
      } catch (err) {
        this.#tell(
          r.kind,
          `cannot list ${r.kind} objects; audits keep what was read of them last (none, if never read)`,
          err,
        );
      }
    }
    const items = [...this.#byKind.values()].flat();
    items.sort((a, b) =>
      a.kind !== b.kind ? (a.kind < b.kind ? -1 : 1) : a.metadata.name < b.metadata.name ? -1 : 1,
    );
    const key = items
      .map((o) => `${o.kind}/${o.metadata.name}@${o.metadata.resourceVersion ?? JSON.stringify(o.spec)}`)
      .join('\n');
    if (key !== this.#key) {
      this.#key = key;
      this.#items = items;
      this.version++;
    }
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
