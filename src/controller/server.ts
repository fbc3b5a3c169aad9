/**
 * The controller's HTTP server: `/healthz` (the process is alive), `/readyz` (caches synced), `/metrics`
 * (Prometheus text; another method on these three: 405 in JSON) and any routers a caller mounts (the
 * flow push endpoint, the webhooks; a path under `/webhooks` or `/v1` none of them answers: 404 in
 * JSON), then the page if any; every other path: 404 in JSON naming what is served (`notFound`: a
 * browser gets a small HTML page), the page's own 404 when it is there. Express 5, no body parser
 * at the top level (the push router reads its own body to enforce size limits).
 */
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { Express, Request, RequestHandler, Router } from 'express';
import { listenOn } from '../server/listen.ts';
import { notFound, SERVED_LOCAL } from '../server/not-found.ts';
import { PROMETHEUS_CONTENT_TYPE } from '../telemetry/prom.ts';

export interface ServerOptions {
  /** Liveness: false only when the process is wedged. */
  healthy: () => boolean;
  /** Readiness, with a short reason when not ready. */
  ready: () => { ok: boolean; reason?: string };
  metrics: () => string;
  /**
   * Routers mounted at the root, each behind its optional gate middleware, with the endpoints they serve
   * (`POST /v1/flows`), which a 404 lists.
   */
  routers?: { router: Router; gate?: RequestHandler; serves?: readonly string[] }[];
  /** The web page and its JSON API (an express app), mounted last. */
  ui?: RequestHandler;
}

export function controllerApp(opts: ServerOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  // What this server serves, for the 404 of a path it does not (the page's too, which adds itself).
  const served = [
    'GET /healthz',
    'GET /readyz',
    'GET /metrics',
    ...(opts.routers ?? []).flatMap((r) => r.serves ?? []),
  ];
  app.use((_req, res, next) => {
    res.locals[SERVED_LOCAL] = served;
    next();
  });
  app.get('/healthz', (_req, res) => {
    if (opts.healthy()) res.type('text/plain').send('ok\n');
    else res.status(500).type('text/plain').send('unhealthy\n');
  });
  app.get('/readyz', (_req, res) => {
    const r = opts.ready();
    if (r.ok) res.type('text/plain').send('ok\n');
    else
      res
        .status(503)
        .type('text/plain')
        .send(`not ready: ${r.reason ?? 'starting'}\n`);
  });
  app.get('/metrics', (_req, res) => {
    res.setHeader('content-type', PROMETHEUS_CONTENT_TYPE);
    res.send(opts.metrics());
  });
  // Another method on them is answered as the page's API answers one (405, Allow, JSON), not by
  // whatever is mounted after them (the page: a plain-text 404). No body is read.
  for (const path of ['/healthz', '/readyz', '/metrics'])
    app.all(path, (req, res) => {
      res.set('Allow', 'GET, HEAD');
      res.status(405).json({ error: `${req.method} is not allowed on ${path}: it takes GET, HEAD` });
    });
  for (const r of opts.routers ?? []) {
    if (r.gate) app.use(r.gate);
    app.use(r.router);
  }
  // The webhooks' router (when they are on) answers every path under /webhooks; without it, the
  // alerts sent there are told so in JSON, not by the page's plain-text 404.
  app.use('/webhooks', (req, res) => {
    res.status(404).json({
      error: `no such webhook: ${req.method} ${pathOf(req)}; this controller serves no webhook (the isolation webhooks are on with --webhook-token-file)`,
    });
  });
  // The controller's own API (/v1) answers a path it does not serve in JSON, also with the page
  // mounted: POST /v1/flows when the push router is off, a path mistyped under it.
  app.use('/v1', (req, res) => {
    const path = pathOf(req);
    const off = /^\/v1\/flows\/?$/i.test(path)
      ? '; this controller takes no pushed flows (POST /v1/flows is on with --push-token-file)'
      : '';
    res.status(404).json({ error: `no such endpoint: ${req.method} ${path}${off}` });
  });
  if (opts.ui) app.use(opts.ui);
  // Without the page, any other path: 404 in JSON as well, listing what is served (with it, the page
  // answers the paths it does not know alike, and lists itself too).
  app.use((req, res) => notFound(req, res, served));
  return app;
}

/**
 * The gate in front of the flow push router: `POST /v1/flows` on a replica that is not leading gets 503
 * with `Retry-After` (a Service in front of the replicas sends the retry to another). A router, so that
 * it matches the paths the push router matches (`/V1/Flows`, `/v1/flows/`: express ignores case and a
 * trailing slash), and only POST: another method gets the push router's 405 on every replica.
 */
export function leaderGate(leading: () => boolean): Router {
  const gate = express.Router();
  gate.post('/v1/flows', (_req, res, next) => {
    if (leading()) return next();
    res.setHeader('retry-after', '1');
    // JSON, as every other answer of the endpoint.
    res.status(503).json({ error: 'not the leader: another replica is leading; retry' });
  });
  return gate;
}

/** The path of a request as it was sent, without its query. */
const pathOf = (req: Request): string => req.originalUrl.split('?')[0] ?? '';

export interface Listening {
  server: Server;
  port: number;
  close(): Promise<void>;
}

/** Listens on host:port (port 0 picks a free one); an address it cannot listen on is a `ListenError`. */
export async function listen(app: Express, host: string, port: number): Promise<Listening> {
  const server = createServer(app);
  await listenOn(server, host, port);
  const addr = server.address() as AddressInfo;
  return {
    server,
    port: addr.port,
    close: () =>
      new Promise<void>((res) => {
        server.close(() => res());
        server.closeAllConnections();
      }),
  };
}

/**
 * Parses `host:port`, `:port` or `port`. Without a host, `host` is `''`: every address of the machine,
 * IPv6 and IPv4 (see `listenOn`), so that an IPv6 single-stack cluster reaches the pod too.
 */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:(.*):)?(\d+)$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`--listen ${JSON.stringify(text)} is not host:port, :port or a port number`);
  const host = m[1] === undefined || m[1] === '' ? '' : m[1].replace(/^\[(.*)\]$/, '$1');
  return { host, port };
}
