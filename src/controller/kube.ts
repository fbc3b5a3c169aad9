/**
 * A small Kubernetes REST client over plain JSON: objects stay the API server's own JSON (no generated
 * classes, no Date objects), which is what the functional core consumes. Authentication, TLS and the
 * HTTP agent come from `@kubernetes/client-node`'s KubeConfig, so kubeconfig files, in-cluster
 * ServiceAccount tokens and exec plugins all work.
 */
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import type { HttpMethod } from '@kubernetes/client-node';
import { KubeConfig, RequestContext } from '@kubernetes/client-node';
import { fetch } from 'undici';
import type { Dispatcher } from 'undici';
import type { KObject } from '../model/k8s.ts';
import { FIELD_MANAGER } from './api.ts';

export class KubeApiError extends Error {
  readonly code: number;
  readonly reason: string;
  constructor(method: string, path: string, code: number, reason: string, message: string) {
    super(`${method} ${path}: ${code} ${reason}: ${message}`);
    this.name = 'KubeApiError';
    this.code = code;
    this.reason = reason;
  }
}

export const isNotFound = (err: unknown): boolean => err instanceof KubeApiError && err.code === 404;
export const isConflict = (err: unknown): boolean => err instanceof KubeApiError && err.code === 409;

export interface ListResult<T> {
  items: T[];
  resourceVersion: string;
}

export interface WatchEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

/** Where each kind the controllers touch lives in the REST API. */
const RESOURCES: Record<string, { base: string; plural: string; namespaced: boolean }> = {
  Namespace: { base: '/api/v1', plural: 'namespaces', namespaced: false },
  Node: { base: '/api/v1', plural: 'nodes', namespaced: false },
  Pod: { base: '/api/v1', plural: 'pods', namespaced: true },
  Service: { base: '/api/v1', plural: 'services', namespaced: true },
  Event: { base: '/api/v1', plural: 'events', namespaced: true },
  EndpointSlice: { base: '/apis/discovery.k8s.io/v1', plural: 'endpointslices', namespaced: true },
  Deployment: { base: '/apis/apps/v1', plural: 'deployments', namespaced: true },
  ReplicaSet: { base: '/apis/apps/v1', plural: 'replicasets', namespaced: true },
  StatefulSet: { base: '/apis/apps/v1', plural: 'statefulsets', namespaced: true },
  DaemonSet: { base: '/apis/apps/v1', plural: 'daemonsets', namespaced: true },
  Job: { base: '/apis/batch/v1', plural: 'jobs', namespaced: true },
  CronJob: { base: '/apis/batch/v1', plural: 'cronjobs', namespaced: true },
  NetworkPolicy: { base: '/apis/networking.k8s.io/v1', plural: 'networkpolicies', namespaced: true },
  Lease: { base: '/apis/coordination.k8s.io/v1', plural: 'leases', namespaced: true },
  Segmentation: { base: '/apis/microseg.dev/v1alpha1', plural: 'segmentations', namespaced: false },
  ProposedNetworkPolicy: {
    base: '/apis/microseg.dev/v1alpha1',
    plural: 'proposednetworkpolicies',
    namespaced: true,
  },
  LearnedEdgeSet: { base: '/apis/microseg.dev/v1alpha1', plural: 'learnededgesets', namespaced: false },
  Isolation: { base: '/apis/microseg.dev/v1alpha1', plural: 'isolations', namespaced: true },
};

/** Registers another kind (e.g. a CRD added later) so `resourcePath` knows where it lives. */
export function registerResource(kind: string, base: string, plural: string, namespaced: boolean): void {
  RESOURCES[kind] = { base, plural, namespaced };
}

/** The REST path of a kind's collection (all namespaces when `namespace` is absent) or of one object. */
export function resourcePath(kind: string, namespace?: string, name?: string, subresource?: string): string {
  const r = RESOURCES[kind];
  if (!r) throw new Error(`unknown kind ${kind}`);
  let p = r.base;
  if (r.namespaced && namespace) p += `/namespaces/${encodeURIComponent(namespace)}`;
  p += `/${r.plural}`;
  if (name !== undefined) p += `/${encodeURIComponent(name)}`;
  if (subresource) p += `/${subresource}`;
  return p;
}

export function objectPath(obj: KObject, subresource?: string): string {
  return resourcePath(obj.kind, obj.metadata.namespace, obj.metadata.name, subresource);
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal;
  /** Overall time limit; default 30 s. */
  timeoutMs?: number;
}

/**
 * One HTTP dispatcher per TLS configuration of a KubeConfig. The kubeconfig library builds a new
 * dispatcher (an undici Agent) for every request it authenticates, so each request opened a connection
 * of its own: a TLS handshake, and a secure context built from the CA, per request (most of the time a
 * reconcile that writes a thousand objects took). Its `createDispatcher` is wrapped here to return the
 * dispatcher it made last while the options it is asked for are the same (the CA, client certificate
 * and key it read for this request, files and exec credentials included, the server name, the proxy):
 * requests then share its kept-alive connections. Options that differ (a certificate rotated) make a new
 * one; the previous one is closed a minute later, not at once: a request that took it a moment before
 * (the library takes the dispatcher several steps before it sends) must still be able to use it.
 */
const RETIRED_DISPATCHER_CLOSE_MS = 60_000;
const sharedDispatchers = new WeakSet<KubeConfig>();

function shareDispatchers(kc: KubeConfig): void {
  if (sharedDispatchers.has(kc)) return;
  const inner = kc as unknown as {
    createDispatcher?: (cluster: unknown, agentOptions: unknown) => Dispatcher | undefined;
  };
  const create = inner.createDispatcher;
  // Another version of the library, without those methods: a dispatcher per request, as it makes them.
  if (typeof create !== 'function' || typeof kc.createDispatcherOptions !== 'function') return;
  sharedDispatchers.add(kc);
  let last: { key: string; dispatcher: Dispatcher | undefined } | undefined;
  inner.createDispatcher = (cluster, agentOptions) => {
    const options = kc.createDispatcherOptions(cluster as never, agentOptions as never);
    const key = JSON.stringify(options, function (this: Record<string, unknown>, k: string, v: unknown) {
      const raw = this[k];
      return Buffer.isBuffer(raw) ? raw.toString('base64') : v;
    });
    if (last?.key === key) return last.dispatcher;
    const previous = last?.dispatcher;
    last = { key, dispatcher: create.call(kc, cluster, agentOptions) };
    if (previous)
      setTimeout(() => void previous.close().catch(() => undefined), RETIRED_DISPATCHER_CLOSE_MS).unref();
    return last.dispatcher;
  };
}

export class KubeClient {
  readonly kc: KubeConfig;
  /** Counts requests by verb and result code, for /metrics. */
  readonly requests = new Map<string, number>();
  /** When set, every non-GET request is appended as `METHOD path status` (diagnostics, benchmarks). */
  writeLog: string[] | undefined;

  constructor(kc: KubeConfig) {
    this.kc = kc;
    shareDispatchers(kc);
  }

  static fromKubeconfigFile(path: string): KubeClient {
    const kc = new KubeConfig();
    kc.loadFromFile(path);
    return new KubeClient(kc);
  }

  /** In-cluster config when running in a pod, else $KUBECONFIG / ~/.kube/config. */
  static fromDefault(): KubeClient {
    const kc = new KubeConfig();
    kc.loadFromDefault();
    return new KubeClient(kc);
  }

  async #send(method: string, path: string, opts: RequestOptions): Promise<Response> {
    const cluster = this.kc.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    const url = new URL(cluster.server.replace(/\/$/, '') + path);
    for (const [k, v] of Object.entries(opts.query ?? {}))
      if (v !== undefined) url.searchParams.set(k, String(v));
    const ctx = new RequestContext(url.toString(), method as HttpMethod);
    await this.kc.applySecurityAuthentication(ctx);
    // A write without a fieldManager is named after the user agent (else "undici", the HTTP client).
    const headers: Record<string, string> = {
      ...ctx.getHeaders(),
      accept: 'application/json',
      'user-agent': FIELD_MANAGER,
    };
    let body: string | undefined;
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['content-type'] = opts.contentType ?? 'application/json';
    }
    const signals = [AbortSignal.timeout(opts.timeoutMs ?? 30_000)];
    if (opts.signal) signals.push(opts.signal);
    const res = await fetch(url, {
      method,
      headers,
      body,
      dispatcher: ctx.getDispatcher(),
      signal: AbortSignal.any(signals),
    });
    const key = `${method} ${res.status}`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
    if (this.writeLog && method !== 'GET') this.writeLog.push(`${method} ${path} ${res.status}`);
    return res as unknown as Response;
  }

  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.#send(method, path, opts);
    const text = await res.text();
    if (res.status >= 400) {
      let reason = res.statusText;
      let message = text;
      try {
        const st = JSON.parse(text) as { reason?: string; message?: string };
        if (st.reason) reason = st.reason;
        if (st.message) message = st.message;
      } catch {
        // not a Status object
      }
      throw new KubeApiError(method, path, res.status, reason, message);
    }
    return (text === '' ? undefined : JSON.parse(text)) as T;
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  /** Lists a collection, following `continue` tokens (pages of `limit`). */
  async list<T>(
    path: string,
    query: Record<string, string | number | undefined> = {},
    limit = 500,
  ): Promise<ListResult<T>> {
    const items: T[] = [];
    let cont: string | undefined;
    let rv: string;
    do {
      const page = await this.request<{
        items: T[];
        metadata: { resourceVersion: string; continue?: string };
      }>('GET', path, { query: { ...query, limit, continue: cont } });
      items.push(...(page.items ?? []));
      rv = page.metadata.resourceVersion;
      cont = page.metadata.continue || undefined;
    } while (cont);
    return { items, resourceVersion: rv };
  }

  /** Creates, with field manager `microseg` (without it the API server names the HTTP client). */
  create<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, { body, query: { fieldManager: FIELD_MANAGER } });
  }

  /** Server-side apply with field manager `microseg` (or `fieldManager`), forcing ownership by default. */
  apply<T extends KObject>(
    obj: T,
    opts: { subresource?: string; force?: boolean; fieldManager?: string } = {},
  ): Promise<T> {
    return this.request<T>('PATCH', objectPath(obj, opts.subresource), {
      body: obj,
      contentType: 'application/apply-patch+yaml',
      query: { fieldManager: opts.fieldManager ?? FIELD_MANAGER, force: opts.force ?? true },
    });
  }

  /** A JSON merge patch, with field manager `microseg`. */
  mergePatch<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PATCH', path, {
      body,
      contentType: 'application/merge-patch+json',
      query: { fieldManager: FIELD_MANAGER },
    });
  }

  /** A JSON patch, with field manager `microseg`. */
  jsonPatch<T>(path: string, ops: unknown[]): Promise<T> {
    return this.request<T>('PATCH', path, {
      body: ops,
      contentType: 'application/json-patch+json',
      query: { fieldManager: FIELD_MANAGER },
    });
  }

  /** Deletes; a missing object counts as deleted. Returns false when it was already gone. */
  async delete(path: string, opts: { propagationPolicy?: string; uid?: string } = {}): Promise<boolean> {
    try {
      const body: Record<string, unknown> = { kind: 'DeleteOptions', apiVersion: 'v1' };
      if (opts.propagationPolicy) body.propagationPolicy = opts.propagationPolicy;
      if (opts.uid) body.preconditions = { uid: opts.uid };
      await this.request('DELETE', path, { body });
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /**
   * Streams a watch until the server ends it, the signal aborts or an error occurs. Resolves when the
   * stream ends normally; rejects with KubeApiError (e.g. 410 Gone) on failure.
   */
  async watch<T>(
    path: string,
    query: Record<string, string | number | boolean | undefined>,
    onEvent: (ev: WatchEvent<T>) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const res = await this.#send('GET', path, {
      query: { ...query, watch: true },
      signal,
      timeoutMs: 30 * 60_000,
    });
    if (res.status >= 400) {
      const text = await res.text();
      let reason = res.statusText;
      try {
        reason = (JSON.parse(text) as { reason?: string }).reason ?? reason;
      } catch {
        // ignore
      }
      throw new KubeApiError('WATCH', path, res.status, reason, text);
    }
    if (!res.body) return;
    const lines = createInterface({ input: Readable.fromWeb(res.body as never), crlfDelay: Infinity });
    try {
      for await (const line of lines) {
        if (line.trim() === '') continue;
        const ev = JSON.parse(line) as WatchEvent<T>;
        if (ev.type === 'ERROR') {
          const st = ev.object as { code?: number; reason?: string; message?: string };
          throw new KubeApiError('WATCH', path, st.code ?? 500, st.reason ?? 'Error', st.message ?? '');
        }
        onEvent(ev);
      }
    } catch (err) {
      if (signal.aborted) return;
      throw err;
    }
  }
}
