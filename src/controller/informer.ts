/**
 * A list-then-watch informer with a local cache, for any kind. Robust by construction:
 * - a watch that ends (server timeout, load balancer) resumes from the last resourceVersion;
 * - 410 Gone (history compacted) relists and emits the difference against the cache;
 * - any other failure (apiserver down, network) retries with jittered exponential backoff (0.5 s → 30 s);
 * - a periodic full relist (`resyncMs`) repairs anything a watch could have missed.
 * Objects are stored without `metadata.managedFields` to keep memory proportional to what is used.
 */
import type { KObject } from '../model/k8s.ts';
import type { KubeClient } from './kube.ts';
import { KubeApiError } from './kube.ts';
import type { Logger } from './log.ts';

export type InformerEvent = 'add' | 'update' | 'delete';
export type Handler<T> = (type: InformerEvent, obj: T, old?: T) => void;

export interface InformerOptions {
  /** Collection path, e.g. `/api/v1/pods`. */
  path: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Full relist period; default 10 minutes. 0 disables it. */
  resyncMs?: number;
  log?: Logger;
  /** Name for logs and metrics; default the path. */
  name?: string;
  /** Backoff bounds in ms; default 500 and 30 000. */
  backoffMinMs?: number;
  backoffMaxMs?: number;
  /** Transforms each object before it is cached (e.g. to drop fields). */
  transform?: (obj: unknown) => unknown;
  /** Told of each failed list or watch (410 Gone aside) instead of the log, which then says nothing. */
  onError?: (err: unknown) => void;
  /** Told after each list that succeeded, once its differences are emitted. */
  onListed?: () => void;
}

export interface InformerStats {
  lists: number;
  watches: number;
  relistsAfterGone: number;
  errors: number;
}

export const cacheKey = (o: KObject): string =>
  o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name;

export class Informer<T extends KObject> {
  readonly name: string;
  readonly stats: InformerStats = { lists: 0, watches: 0, relistsAfterGone: 0, errors: 0 };
  readonly #client: KubeClient;
  readonly #opts: InformerOptions;
  readonly #cache = new Map<string, T>();
  readonly #handlers: Handler<T>[] = [];
  #rv = '';
  #synced = false;
  #syncWaiters: (() => void)[] = [];
  #abort = new AbortController();
  #running: Promise<void> | undefined;
  #lastList = 0;

  constructor(client: KubeClient, opts: InformerOptions) {
    this.#client = client;
    this.#opts = opts;
    this.name = opts.name ?? opts.path;
  }

  on(handler: Handler<T>): void {
    this.#handlers.push(handler);
  }

  get(key: string): T | undefined {
    return this.#cache.get(key);
  }

  list(): T[] {
    return [...this.#cache.values()];
  }

  get size(): number {
    return this.#cache.size;
  }

  get synced(): boolean {
    return this.#synced;
  }

  /** Resolves after the first successful list. */
  waitForSync(): Promise<void> {
    if (this.#synced) return Promise.resolve();
    return new Promise((resolve) => this.#syncWaiters.push(resolve));
  }

  start(): void {
    if (this.#running) return;
    this.#abort = new AbortController();
    this.#running = this.#loop(this.#abort.signal);
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#running;
    this.#running = undefined;
  }

  #emit(type: InformerEvent, obj: T, old?: T): void {
    for (const h of this.#handlers.slice()) {
      try {
        h(type, obj, old);
      } catch (err) {
        this.#opts.log?.error('informer handler failed', { informer: this.name, error: String(err) });
      }
    }
  }

  #prepare(raw: unknown): T {
    const o = (this.#opts.transform ? this.#opts.transform(raw) : raw) as T;
    delete (o.metadata as { managedFields?: unknown }).managedFields;
    return o;
  }

  #query(): Record<string, string | undefined> {
    return { labelSelector: this.#opts.labelSelector, fieldSelector: this.#opts.fieldSelector };
  }

  async #relist(): Promise<void> {
    const res = await this.#client.list<unknown>(this.#opts.path, this.#query());
    this.stats.lists++;
    this.#lastList = Date.now();
    const fresh = new Map<string, T>();
    for (const raw of res.items) {
      const o = this.#prepare(raw);
      fresh.set(cacheKey(o), o);
    }
    for (const [k, old] of this.#cache) {
      if (!fresh.has(k)) {
        this.#cache.delete(k);
        this.#emit('delete', old);
      }
    }
    for (const [k, o] of fresh) {
      const old = this.#cache.get(k);
      this.#cache.set(k, o);
      if (!old) this.#emit('add', o);
      else if (old.metadata.resourceVersion !== o.metadata.resourceVersion) this.#emit('update', o, old);
    }
    this.#rv = res.resourceVersion;
    this.#opts.onListed?.();
    if (!this.#synced) {
      this.#synced = true;
      for (const w of this.#syncWaiters.splice(0)) w();
    }
  }

  async #loop(signal: AbortSignal): Promise<void> {
    const min = this.#opts.backoffMinMs ?? 500;
    const max = this.#opts.backoffMaxMs ?? 30_000;
    let delay = 0;
    const resync = this.#opts.resyncMs ?? 600_000;
    while (!signal.aborted) {
      try {
        if (this.#rv === '' || (resync > 0 && Date.now() - this.#lastList > resync)) await this.#relist();
        this.stats.watches++;
        const watchFor =
          resync > 0 ? Math.max(1, Math.floor((resync - (Date.now() - this.#lastList)) / 1000)) : 300;
        await this.#client.watch<T>(
          this.#opts.path,
          {
            ...this.#query(),
            resourceVersion: this.#rv,
            allowWatchBookmarks: true,
            timeoutSeconds: Math.min(watchFor, 300),
          },
          (ev) => {
            delay = 0;
            const rv = ev.object.metadata?.resourceVersion;
            if (ev.type === 'BOOKMARK') {
              if (rv) this.#rv = rv;
              return;
            }
            const o = this.#prepare(ev.object);
            const k = cacheKey(o);
            const old = this.#cache.get(k);
            if (ev.type === 'DELETED') {
              this.#cache.delete(k);
              this.#emit('delete', o);
            } else {
              this.#cache.set(k, o);
              this.#emit(old ? 'update' : 'add', o, old);
            }
            if (rv) this.#rv = rv;
          },
          signal,
        );
      } catch (err) {
        if (signal.aborted) return;
        if (
          err instanceof KubeApiError &&
          (err.code === 410 || err.reason === 'Expired' || err.reason === 'Gone')
        ) {
          this.stats.relistsAfterGone++;
          this.#opts.log?.info('watch expired, relisting', { informer: this.name });
          this.#rv = '';
          continue;
        }
        this.stats.errors++;
        delay = Math.min(max, Math.max(min, delay * 2));
        const wait = delay / 2 + Math.random() * (delay / 2);
        if (this.#opts.onError) this.#opts.onError(err);
        else
          this.#opts.log?.warn('informer error, retrying', {
            informer: this.name,
            error: err instanceof Error ? err.message : String(err),
            retryInMs: Math.round(wait),
          });
        await sleep(wait, signal);
      }
    }
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
