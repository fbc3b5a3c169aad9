/**
 * The cluster-wide policies of the cluster (AdminNetworkPolicy, BaselineAdminNetworkPolicy,
 * ClusterNetworkPolicy, of policy.networking.k8s.io), for the semantics engine: an AdminNetworkPolicy
 * that allows what a namespace's default deny would block still lets it through, and an audit that did
 * not know it would call the traffic blocked. Read by listing, at start and then every interval (not
 * watched: their CRDs may be absent, or come and go, and there are few of them); the kinds the API
 * server serves are found by discovery at each read. A kind the controller may not list (no RBAC) or
 * the server does not serve is left out, said once in the log.
 */
import type { OtherObject } from '../model/k8s.ts';
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
  #key = '';
  #timer: NodeJS.Timeout | undefined;
  readonly #told = new Set<string>();
  /** Bumped whenever what was read changes (an object added, changed or removed). */
  version = 0;

  constructor(client: KubeClient, opts: { log?: Logger; intervalMs?: number } = {}) {
    this.#client = client;
    this.#log = opts.log;
    this.#intervalMs = opts.intervalMs ?? 30_000;
  }

  /** The cluster-wide policies read last. */
  list(): OtherObject[] {
    return this.#items;
  }

  /** Reads them now, then every interval until stop(). Resolves once the first read is done. */
  async start(): Promise<void> {
    await this.refresh();
    this.#timer = setInterval(() => void this.refresh(), this.#intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
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
    } catch (err) {
      if (err instanceof KubeApiError && err.code === 404) served = new Set();
      else {
        this.#tell('discovery', `cannot discover ${GROUP}; cluster-wide policies are not read`, err);
        return;
      }
    }
    const items: OtherObject[] = [];
    for (const r of CLUSTER_POLICY_RESOURCES) {
      if (!served.has(`${r.version}/${r.plural}`)) continue;
      try {
        const list = await this.#client.list<OtherObject>(`/apis/${GROUP}/${r.version}/${r.plural}`);
        for (const o of list.items) items.push({ ...o, apiVersion: `${GROUP}/${r.version}`, kind: r.kind });
      } catch (err) {
        this.#tell(r.kind, `cannot list ${r.kind} objects; they are left out of audits`, err);
        return;
      }
    }
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

  #tell(what: string, message: string, err: unknown): void {
    if (this.#told.has(what)) return;
    this.#told.add(what);
    this.#log?.warn(message, { error: (err as Error).message });
  }
}
