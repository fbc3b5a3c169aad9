/**
 * The controller's HTTP server: `/healthz` (the process is alive), `/readyz` (caches synced), `/metrics`
 * (Prometheus text; another method on these three: 405 in JSON) and any routers a caller mounts (the
 * flow push endpoint, the webhooks; a path under `/webhooks` none of them answers: 404 in JSON). Express 5, no body parser
 * at the top level (the push router reads its own body to enforce size limits).
 */
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { Express, RequestHandler, Router } from 'express';
import { listenOn } from '../server/listen.ts';
import { PROMETHEUS_CONTENT_TYPE } from '../telemetry/prom.ts';

export interface ServerOptions {
  /** Liveness: false only when the process is wedged. */
  healthy: () => boolean;
  /** Readiness, with a short reason when not ready. */
  ready: () => { ok: boolean; reason?: string };
  metrics: () => string;
  /** Routers mounted at the root, each behind its optional gate middleware. */
  routers?: { router: Router; gate?: RequestHandler }[];
  /** The web page and its JSON API (an express app), mounted last. */
  ui?: RequestHandler;
}

export function controllerApp(opts: ServerOptions): Express {
  const app = express();
  app.disable('x-powered-by');
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
      error: `no such webhook: ${req.method} ${req.originalUrl.split('?')[0]}; this controller serves no webhook (the isolation webhooks are on with --webhook-token-file)`,
    });
  });
  if (opts.ui) app.use(opts.ui);
  app.use((_req, res) => {
    res.status(404).type('text/plain').send('not found\n');
  });
  return app;
}

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
