/**
 * The smallest Kubernetes REST client the isolation shell needs: JSON requests over one keep-alive HTTPS
 * agent, credentials taken from a client-node KubeConfig (client certificates, bearer tokens, CA). It
 * speaks paths, not typed APIs, because it handles CRDs, status subresources, merge patches and
 * discovery alike.
 */
import https from 'node:https';
import http from 'node:http';
import tls from 'node:tls';
import type { KubeConfig } from '@kubernetes/client-node';
import { FIELD_MANAGER } from '../controller/api.ts';

export class KubeError extends Error {
  readonly status: number;
  readonly reason: string;
  constructor(status: number, reason: string, message: string) {
    super(message);
    this.name = 'KubeError';
    this.status = status;
    this.reason = reason;
  }
}

/**
 * The API server could not be reached, or the connection to it failed before an answer (refused, no
 * such host, a certificate it does not trust, a timeout): `server` is its URL, `cause` what went wrong.
 */
export class KubeUnreachableError extends Error {
  readonly server: string;
  override readonly cause: unknown;
  constructor(server: string, cause: unknown) {
    super(`cannot reach the API server ${server}: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'KubeUnreachableError';
    this.server = server;
    this.cause = cause;
  }
}

export function isNotFound(err: unknown): boolean {
  return err instanceof KubeError && err.status === 404;
}
export function isConflict(err: unknown): boolean {
  return err instanceof KubeError && err.status === 409;
}
export function isAlreadyExists(err: unknown): boolean {
  return err instanceof KubeError && err.status === 409 && err.reason === 'AlreadyExists';
}

export const MERGE_PATCH = 'application/merge-patch+json';
export const JSON_PATCH = 'application/json-patch+json';

export interface KubeRequest {
  method: string;
  path: string;
  body?: unknown;
  contentType?: string;
  query?: Record<string, string>;
  /**
   * `background`: work that may wait (Events, status after a leak check). The client sends it on its
   * own connections, so it never queues ahead of a deny.
   */
  priority?: 'background';
}

/** What the isolation shell needs from a client; tests can substitute a fake. */
export interface Kube {
  request<T = unknown>(req: KubeRequest): Promise<T>;
}

export class KubeClient implements Kube {
  private readonly base: URL;
  /** The server's URL as the kubeconfig gives it, for messages. */
  readonly server: string;
  private readonly options: https.RequestOptions;
  private readonly agent: https.Agent | http.Agent;
  private readonly backgroundAgent: https.Agent | http.Agent;

  private constructor(base: URL, options: https.RequestOptions, server = base.href) {
    this.base = base;
    this.server = server;
    this.options = options;
    // One TLS context for every connection: building it (parsing the CA, certificate and key) costs
    // milliseconds of CPU, which a burst that opens dozens of connections would pay each time.
    const tlsOptions = base.protocol === 'https:' ? pickTls(options) : {};
    const secureContext = base.protocol === 'https:' ? tls.createSecureContext(tlsOptions) : undefined;
    const agent = (maxSockets: number) => {
      const agentOpts = { keepAlive: true, maxSockets, maxFreeSockets: maxSockets };
      return secureContext
        ? new https.Agent({
            ...agentOpts,
            secureContext,
            ...(tlsOptions.rejectUnauthorized !== undefined
              ? { rejectUnauthorized: tlsOptions.rejectUnauthorized }
              : {}),
            ...(tlsOptions.servername ? { servername: tlsOptions.servername } : {}),
          })
        : new http.Agent(agentOpts);
    };
    this.agent = agent(64);
    this.backgroundAgent = agent(8);
  }

  static async fromKubeConfig(kc: KubeConfig): Promise<KubeClient> {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    const opts: https.RequestOptions = {};
    await kc.applyToHTTPSOptions(opts);
    return new KubeClient(new URL(cluster.server), opts, cluster.server);
  }

  close(): void {
    this.agent.destroy();
    this.backgroundAgent.destroy();
  }

  request<T = unknown>(req: KubeRequest): Promise<T> {
    const url = new URL(req.path, this.base);
    for (const [k, v] of Object.entries(req.query ?? {})) url.searchParams.set(k, v);
    const body = req.body === undefined ? undefined : JSON.stringify(req.body);
    const headers: Record<string, string> = {
      ...((this.options.headers as Record<string, string> | undefined) ?? {}),
      accept: 'application/json',
      // The API server names the field manager of a write without one after the user agent: its
      // finalizers, labels and patches show as microseg's in managedFields, as the controller's do.
      'user-agent': FIELD_MANAGER,
    };
    if (body !== undefined) {
      headers['content-type'] = req.contentType ?? 'application/json';
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    const mod = url.protocol === 'https:' ? https : http;
    return new Promise<T>((resolve, reject) => {
      const r = mod.request(
        url,
        {
          method: req.method,
          headers,
          agent: req.priority === 'background' ? this.backgroundAgent : this.agent,
          ...(this.options.auth ? { auth: this.options.auth } : {}),
          timeout: 30_000,
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('error', reject);
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            let parsed: unknown;
            try {
              parsed = text === '' ? undefined : JSON.parse(text);
            } catch {
              parsed = undefined;
            }
            if (status >= 200 && status < 300) {
              resolve(parsed as T);
              return;
            }
            const st = (parsed ?? {}) as { reason?: string; message?: string };
            reject(
              new KubeError(
                status,
                st.reason ?? '',
                `${req.method} ${url.pathname}: ${status} ${st.message ?? text.slice(0, 200)}`,
              ),
            );
          });
        },
      );
      r.on('timeout', () => r.destroy(new Error(`${req.method} ${url.pathname}: timed out`)));
      r.on('error', (err) => reject(new KubeUnreachableError(this.server, err)));
      if (body !== undefined) r.write(body);
      r.end();
    });
  }
}

function pickTls(o: https.RequestOptions): https.AgentOptions {
  const out: https.AgentOptions = {};
  if (o.ca) out.ca = o.ca;
  if (o.cert) out.cert = o.cert;
  if (o.key) out.key = o.key;
  if (o.pfx) out.pfx = o.pfx;
  if (o.passphrase) out.passphrase = o.passphrase;
  if (o.rejectUnauthorized !== undefined) out.rejectUnauthorized = o.rejectUnauthorized;
  if (o.servername) out.servername = o.servername;
  return out;
}

/** Path helpers. */
export const paths = {
  pods: (ns: string) => `/api/v1/namespaces/${ns}/pods`,
  pod: (ns: string, name: string) => `/api/v1/namespaces/${ns}/pods/${name}`,
  services: (ns: string) => `/api/v1/namespaces/${ns}/services`,
  service: (ns: string, name: string) => `/api/v1/namespaces/${ns}/services/${name}`,
  events: (ns: string) => `/api/v1/namespaces/${ns}/events`,
  namespaces: () => `/api/v1/namespaces`,
  nodes: () => `/api/v1/nodes`,
  networkPolicies: (ns: string) => `/apis/networking.k8s.io/v1/namespaces/${ns}/networkpolicies`,
  networkPolicy: (ns: string, name: string) =>
    `/apis/networking.k8s.io/v1/namespaces/${ns}/networkpolicies/${name}`,
  isolations: (ns?: string) =>
    ns ? `/apis/microseg.dev/v1alpha1/namespaces/${ns}/isolations` : `/apis/microseg.dev/v1alpha1/isolations`,
  isolation: (ns: string, name: string) => `/apis/microseg.dev/v1alpha1/namespaces/${ns}/isolations/${name}`,
  workload: (ns: string, kind: string, name: string) =>
    `/apis/${kind === 'Job' || kind === 'CronJob' ? 'batch' : 'apps'}/v1/namespaces/${ns}/${kind.toLowerCase()}s/${name}`,
  replicaSets: (ns: string) => `/apis/apps/v1/namespaces/${ns}/replicasets`,
  jobs: (ns: string) => `/apis/batch/v1/namespaces/${ns}/jobs`,
  adminNetworkPolicies: () => `/apis/policy.networking.k8s.io/v1alpha1/adminnetworkpolicies`,
  clusterNetworkPolicies: () => `/apis/policy.networking.k8s.io/v1alpha2/clusternetworkpolicies`,
  baselineAdminNetworkPolicies: () => `/apis/policy.networking.k8s.io/v1alpha1/baselineadminnetworkpolicies`,
};

/** The controller's REST client (src/controller/kube.ts), or anything with the same `request`. */
export interface ControllerClientLike {
  request<T>(
    method: string,
    path: string,
    opts?: { query?: Record<string, string>; body?: unknown; contentType?: string },
  ): Promise<T>;
}

/**
 * Adapts the controller's REST client to the `Kube` interface, so the isolation reconciler and webhooks
 * can share the manager's client (its credentials and request metrics) instead of opening their own.
 */
export function kubeFromControllerClient(client: ControllerClientLike): Kube {
  return {
    async request<T>(req: KubeRequest): Promise<T> {
      try {
        return await client.request<T>(req.method, req.path, {
          ...(req.query ? { query: req.query } : {}),
          ...(req.body !== undefined ? { body: req.body } : {}),
          ...(req.contentType ? { contentType: req.contentType } : {}),
        });
      } catch (err) {
        const e = err as { code?: unknown; reason?: unknown; message?: unknown };
        if (typeof e?.code === 'number')
          throw new KubeError(
            e.code,
            typeof e.reason === 'string' ? e.reason : '',
            err instanceof Error ? err.message : '',
          );
        throw err;
      }
    },
  };
}
