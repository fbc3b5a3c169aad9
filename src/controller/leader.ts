/**
 * Leader election on a coordination.k8s.io/v1 Lease, with client-go's algorithm and defaults (lease
 * 15 s, renew deadline 10 s, retry 2 s). A candidate takes the Lease when it is free or when its holder
 * has not renewed it for leaseDuration *as measured on our own clock since we last saw it change*
 * (clocks of different machines are never compared). Updates carry the Lease's resourceVersion, so of
 * two candidates racing only one wins (the other gets 409 Conflict). A leader that cannot renew within
 * the renew deadline stops leading (calls onStoppedLeading) before anyone else may take over.
 */
import type { KubeClient } from './kube.ts';
import { FIELD_MANAGER } from './api.ts';
import { isConflict, isNotFound, resourcePath } from './kube.ts';
import { sleep } from './informer.ts';
import type { Logger } from './log.ts';

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  log?: Logger;
  /** Called with the Lease's annotations as found when leadership was acquired (state handed over). */
  onStartedLeading: (annotations: Record<string, string>) => void;
  onStoppedLeading: () => void;
  /** Annotations the leader writes on the Lease with every renewal and on release. */
  annotations?: () => Record<string, string>;
}

interface Lease {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: {
    name: string;
    namespace: string;
    resourceVersion?: string;
    annotations?: Record<string, string>;
  };
  spec: {
    holderIdentity?: string | null;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

/** RFC 3339 with microseconds, as MicroTime requires. */
const microTime = (d: Date): string => d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

export class LeaderElector {
  readonly #client: KubeClient;
  readonly #o: Required<Omit<LeaderElectionOptions, 'log' | 'annotations'>> & {
    log?: Logger;
    annotations?: () => Record<string, string>;
  };
  /** Annotations of the Lease when it was last acquired. */
  #acquiredAnnotations: Record<string, string> = {};
  #leading = false;
  #abort = new AbortController();
  #loop: Promise<void> | undefined;
  /** Last observed record (holder + renewTime string) and when, on our clock, we observed it change. */
  #observed = { key: '', at: 0 };
  transitions = 0;

  constructor(client: KubeClient, opts: LeaderElectionOptions) {
    this.#client = client;
    // A timing given as undefined (the manager passes on options it was not given) keeps its default:
    // spread over the defaults it would replace them, and the loop would retry every millisecond with
    // a Lease of no duration that no other replica could ever take over.
    const o = {
      ...opts,
      leaseDurationMs: opts.leaseDurationMs ?? 15_000,
      renewDeadlineMs: opts.renewDeadlineMs ?? 10_000,
      retryPeriodMs: opts.retryPeriodMs ?? 2_000,
    };
    for (const key of ['leaseDurationMs', 'renewDeadlineMs', 'retryPeriodMs'] as const)
      if (!Number.isFinite(o[key]) || o[key] <= 0)
        throw new Error(`leader election: ${key} must be a positive number of milliseconds (got ${o[key]})`);
    if (o.renewDeadlineMs >= o.leaseDurationMs)
      throw new Error(
        `leader election: renewDeadlineMs (${o.renewDeadlineMs}) must be less than leaseDurationMs (${o.leaseDurationMs})`,
      );
    if (o.retryPeriodMs >= o.renewDeadlineMs)
      throw new Error(
        `leader election: retryPeriodMs (${o.retryPeriodMs}) must be less than renewDeadlineMs (${o.renewDeadlineMs})`,
      );
    this.#o = o;
  }

  get isLeader(): boolean {
    return this.#leading;
  }

  start(): void {
    if (this.#loop) return;
    this.#abort = new AbortController();
    this.#loop = this.#run(this.#abort.signal);
  }

  /** Stops campaigning; a leader releases the Lease so a successor need not wait for it to expire. */
  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#loop;
    this.#loop = undefined;
    if (this.#leading) {
      this.#setLeading(false);
      await this.#release().catch(() => undefined);
    }
  }

  #setLeading(v: boolean): void {
    if (v === this.#leading) return;
    this.#leading = v;
    this.#o.log?.info(v ? 'became leader' : 'stopped leading', {
      lease: this.#o.name,
      identity: this.#o.identity,
    });
    if (v) {
      this.transitions++;
      this.#o.onStartedLeading(this.#acquiredAnnotations);
    } else this.#o.onStoppedLeading();
  }

  async #run(signal: AbortSignal): Promise<void> {
    let lastRenew = 0;
    while (!signal.aborted) {
      let ok = false;
      // An attempt ends by the renew deadline (for a leader, counted from its last renewal): a request
      // the API server does not answer (packets dropped, not refused) would otherwise hold the attempt
      // for the client's 30 s, and the leader would go on leading after another replica took over.
      const end = this.#leading ? lastRenew + this.#o.renewDeadlineMs : Date.now() + this.#o.renewDeadlineMs;
      try {
        ok = await this.#tryAcquireOrRenew(end, signal);
      } catch (err) {
        this.#o.log?.warn('lease update failed', { error: err instanceof Error ? err.message : String(err) });
      }
      if (ok) {
        lastRenew = Date.now();
        this.#setLeading(true);
      } else if (this.#leading && Date.now() - lastRenew >= this.#o.renewDeadlineMs) {
        this.#setLeading(false);
      } else if (this.#leading && !ok) {
        // A failed renewal that is not yet past the deadline: keep leading, retry soon.
      }
      await sleep(this.#o.retryPeriodMs, signal);
    }
  }

  /** `end`: the time (ms) by which every request of the attempt must be answered. */
  async #tryAcquireOrRenew(end: number, signal: AbortSignal): Promise<boolean> {
    const path = resourcePath('Lease', this.#o.namespace, this.#o.name);
    const limit = () => ({ timeoutMs: Math.max(1, end - Date.now()), signal });
    const now = new Date();
    let lease: Lease | undefined;
    try {
      lease = await this.#client.request<Lease>('GET', path, limit());
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    const durationSeconds = Math.ceil(this.#o.leaseDurationMs / 1000);
    if (!lease) {
      try {
        await this.#client.request('POST', resourcePath('Lease', this.#o.namespace), {
          ...limit(),
          query: { fieldManager: FIELD_MANAGER },
          body: {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: {
              name: this.#o.name,
              namespace: this.#o.namespace,
              annotations: this.#o.annotations?.() ?? {},
            },
            spec: {
              holderIdentity: this.#o.identity,
              leaseDurationSeconds: durationSeconds,
              acquireTime: microTime(now),
              renewTime: microTime(now),
              leaseTransitions: 0,
            },
          },
        });
        this.#acquiredAnnotations = {};
        return true;
      } catch (err) {
        if (isConflict(err)) return false;
        throw err;
      }
    }
    const holder = lease.spec.holderIdentity ?? '';
    const key = `${holder}\u0000${lease.spec.renewTime ?? ''}`;
    if (key !== this.#observed.key) this.#observed = { key, at: Date.now() };
    const duration = (lease.spec.leaseDurationSeconds ?? durationSeconds) * 1000;
    const held = holder !== '' && holder !== this.#o.identity;
    if (held && Date.now() - this.#observed.at < duration) return false;
    const spec: Lease['spec'] = {
      holderIdentity: this.#o.identity,
      leaseDurationSeconds: durationSeconds,
      renewTime: microTime(now),
      acquireTime: holder === this.#o.identity ? (lease.spec.acquireTime ?? microTime(now)) : microTime(now),
      leaseTransitions: (lease.spec.leaseTransitions ?? 0) + (holder === this.#o.identity ? 0 : 1),
    };
    const annotations = {
      ...(lease.metadata.annotations ?? {}),
      ...(this.#leading ? this.#o.annotations?.() : {}),
    };
    try {
      await this.#client.request('PUT', path, {
        ...limit(),
        body: { ...lease, metadata: { ...lease.metadata, annotations }, spec },
      });
      if (holder !== this.#o.identity || !this.#leading)
        this.#acquiredAnnotations = lease.metadata.annotations ?? {};
      return true;
    } catch (err) {
      if (isConflict(err)) return false;
      throw err;
    }
  }

  async #release(): Promise<void> {
    const path = resourcePath('Lease', this.#o.namespace, this.#o.name);
    const lease = await this.#client.get<Lease>(path);
    if (lease.spec.holderIdentity !== this.#o.identity) return;
    const annotations = { ...(lease.metadata.annotations ?? {}), ...this.#o.annotations?.() };
    await this.#client.request('PUT', path, {
      body: {
        ...lease,
        metadata: { ...lease.metadata, annotations },
        spec: { ...lease.spec, holderIdentity: null, renewTime: microTime(new Date()) },
      },
    });
  }
}
