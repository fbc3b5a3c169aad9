/**
 * Serving the web page of the graph from the command line: `microseg demo` on the bundled demo and
 * `microseg serve` on a user's flows and cluster. The server listens before the pipeline runs (a port
 * in use is said before the work, not after it) and answers 503 until it is given the page. It keeps
 * `listenOn`'s limits for slow clients (10 s for a request's headers, 60 s for the whole request, else
 * 408), and the page it is given (`pageApp`) answers, without a token, only the hosts `--allow-host`
 * allows besides loopback and its own address (a guard against DNS rebinding, `hostCheck`).
 */
import { createServer } from 'node:http';
import type { RequestListener, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ClusterSnapshot } from '../model/snapshot.ts';
import type { Analysis } from '../pipeline.ts';
import { createApp } from '../server/app.ts';
import { ListenError, listenOn } from '../server/listen.ts';
import { analysisSource } from '../server/source.ts';
import type { AuditView, BlastRadiusView, ReachSummary, SourceInfo, ViewSource } from '../server/types.ts';
import { engineFromSnapshot } from '../verify/engine.ts';
import type { ReachSide } from '../verify/reach.ts';
import { blastRadius } from '../verify/reach.ts';
import type { CliIO } from './io.ts';
import { UsageError } from './io.ts';

/**
 * A side of a blast radius as the page shows it: how many workloads (or peers) it reaches and is reached
 * from, counted by the engine as `microseg blast-radius` counts them (a StatefulSet once, though each of
 * its pods is a class of its own), with the first classes of each list, named apart, as examples.
 */
function reachSummary(side: ReachSide | undefined): ReachSummary {
  return {
    canReach: side?.canReach ?? 0,
    reachableFrom: side?.reachableFrom ?? 0,
    reachExamples: (side?.reaches ?? []).slice(0, 8).map((r) => `${r.to} (${r.ports.join(', ')})`),
    fromExamples: (side?.reachedFrom ?? []).slice(0, 8).map((r) => `${r.from} (${r.ports.join(', ')})`),
  };
}

/** Blast radius of a workload before and after the proposal, for the page's details panel. */
export function blastRadiusViews(
  snapshot: ClusterSnapshot,
  analysis: Analysis,
): (workload: string) => BlastRadiusView | undefined {
  const before = engineFromSnapshot(snapshot);
  const after = engineFromSnapshot({
    ...snapshot,
    networkPolicies: [...snapshot.networkPolicies, ...analysis.proposal.policies],
  });
  return (id) => {
    const w = analysis.identity.workloads.get(id);
    const pod = w?.pods[0];
    if (!w || !pod || w.hostNetwork) return undefined;
    const r = blastRadius(before, after, { namespace: w.namespace, pod });
    return { workload: id, before: reachSummary(r.before), after: reachSummary(r.after) };
  };
}

/** The page's URL for the address the server listens on (an IPv6 address in brackets, its zone encoded). */
export function pageUrl(addr: AddressInfo): string {
  const host =
    addr.address === '127.0.0.1'
      ? 'localhost'
      : addr.family === 'IPv6' || addr.address.includes(':')
        ? `[${addr.address.replace('%', '%25')}]`
        : addr.address;
  return `http://${host}:${addr.port}/`;
}

/** The page's server until the pipeline is done: it answers 503 until `serve` gives it the page. */
export interface PageServer extends Server {
  serve?: RequestListener;
}

/**
 * Listens for the web page on host:port; until its `serve` is set it answers `503` with `busy` (and
 * `Retry-After: 1`). An address that cannot be listened on is bad usage naming the flag `flag` gives
 * for the failure.
 */
export async function listenForPage(
  host: string,
  port: number,
  busy: string,
  flag: (err: ListenError) => string,
): Promise<PageServer> {
  const server: PageServer = createServer((req, res) => {
    if (server.serve) {
      server.serve(req, res);
      return;
    }
    res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '1' });
    res.end(busy);
  });
  try {
    await listenOn(server, host, port);
  } catch (err) {
    if (!(err instanceof ListenError)) throw err;
    throw new UsageError(`${err.message}; choose another with ${flag(err)}`);
  }
  return server;
}

/**
 * The page and its API as `command` (`microseg demo`, `microseg serve`) serves them on `source`: with
 * `token`, every call of the API needs it; without one, only requests for localhost, 127.0.0.1, [::1],
 * the address they came in on and `allowedHosts` (`allowedHostsOption`: each `--allow-host` and the host
 * listened on) are answered, others 403 naming `--allow-host`. A request that fails is told on stderr.
 */
function pageApp(
  command: string,
  source: ViewSource,
  opts: { io: CliIO; allowedHosts: readonly string[]; token?: string },
): RequestListener {
  return createApp(source, {
    ...(opts.token !== undefined ? { auth: { token: opts.token } } : {}),
    allowedHosts: opts.allowedHosts,
    onInternalError: (err, req) =>
      opts.io.err(
        `${command}: ${req.method} ${req.path} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      ),
  });
}

/**
 * Gives `server` the page of `analysis` as `microseg <command>` serves it (its audits in the Rollout tab,
 * the blast radius of each workload, the snapshot's CronJobs, `POST /audit` against the snapshot), prints
 * the page's address and serves it until interrupted.
 */
export async function servePage(
  server: PageServer,
  command: 'demo' | 'serve',
  page: {
    mode: SourceInfo['mode'];
    snapshot: ClusterSnapshot;
    analysis: Analysis;
    flows: number;
    audits: AuditView[];
  },
  opts: { io: CliIO; allowedHosts: readonly string[]; token?: string },
): Promise<void> {
  const { snapshot, analysis } = page;
  const title = `microseg ${command}`;
  server.serve = pageApp(
    title,
    analysisSource(
      { ...analysis, flows: page.flows },
      {
        mode: page.mode,
        title,
        audits: page.audits,
        blastRadius: blastRadiusViews(snapshot, analysis),
        cronJobs: snapshot.cronJobs,
        snapshot,
      },
    ),
    opts,
  );
  const addr = server.address() as AddressInfo;
  opts.io.out(`\nweb page: ${pageUrl(addr)}  (Ctrl-C to stop)\n`);
  await untilInterrupted();
}

export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** Resolves at the first SIGINT or SIGTERM: how long the page is served. */
export function untilInterrupted(): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
