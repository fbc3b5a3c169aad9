/**
 * The controller's HTTP server: `/healthz` (the process is alive), `/readyz` (caches synced), `/metrics`
 * (Prometheus text) and any routers a caller mounts (the flow push endpoint). Express 5, no body parser
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
  for (const r of opts.routers ?? []) {
    if (r.gate) app.use(r.gate);
    app.use(r.router);
  }
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
