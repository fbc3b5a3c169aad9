/**
 * `microseg demo` (what `npm start` runs): generates the bundled demo cluster and its traffic, runs the
 * offline pipeline on it, writes the inputs and the results under out/, prints the summary and serves the
 * web page of the graph.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { RequestListener, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { readFlows } from '../../flows/reader.ts';
import type { Flow } from '../../flows/types.ts';
import { generateDemo } from '../../generate/demo.ts';
import { writeLines, writeObjectList } from '../../generate/write.ts';
import { Aggregator } from '../../graph/aggregate.ts';
import { buildServiceGraph, toDot } from '../../graph/build.ts';
import type { Identity } from '../../identity/index.ts';
import { snapshotFromObjects } from '../../model/snapshot.ts';
import type { ClusterSnapshot } from '../../model/snapshot.ts';
import type { Analysis } from '../../pipeline.ts';
import { stableJson } from '../../policy/render.ts';
import { proofFails } from '../../policy/prove.ts';
import { createApp } from '../../server/app.ts';
import { ListenError, listenOn } from '../../server/listen.ts';
import { offlineAudit } from '../../server/audit.ts';
import { analysisSource } from '../../server/source.ts';
import type { BlastRadiusView, ReachSummary } from '../../server/types.ts';
import type { Engine } from '../../verify/engine.ts';
import { engineFromSnapshot } from '../../verify/engine.ts';
import type { ReachSide } from '../../verify/reach.ts';
import { blastRadius, podClasses } from '../../verify/reach.ts';
import { VERIFY_EXTRA_KINDS } from '../../verify/load.ts';
import type { CliIO } from '../io.ts';
import { EXIT, UsageError } from '../io.ts';
import { allowedHostsOption } from '../allow-host.ts';
import { nonEmptyOut, outputWriteError, prepareOutputDir } from '../output.ts';
import { recommend, summary, writeFiles } from './recommend.ts';

export const HELP = `usage: microseg demo [--out DIR] [--port N] [--host H] [--allow-host NAME ...] [--no-serve]

Generates the bundled demo (a shop across five namespaces with DNS, a CronJob, databases, an ingress
controller, external APIs and one hour of Hubble flows with real-world quirks), runs the pipeline on it and
writes:
  DIR/demo/cluster.json, DIR/demo/flows.jsonl, DIR/demo/truth.json   the inputs (use them with the CLI)
  DIR/policies/<namespace>.yaml, DIR/policies/report.json           the proposal and its evidence
  DIR/graph.json, DIR/graph.dot                                      the service graph
then serves the web page of the graph until interrupted.

options:
  --out DIR     output directory (default: out)
  --port N      web page port, 0 to 65535 (default: $PORT, else 8080; 0: any free port)
  --host H      address to listen on (default: 127.0.0.1)
  --allow-host NAME
                also answer requests for this host name (repeatable; * for any): the page has no
                token, so it answers only requests for localhost, 127.0.0.1, [::1] and --host,
                else 403 (a guard against DNS rebinding)
  --no-serve    write the files, print the summary and exit

exit codes: 0 written (and served until interrupted); 1 the demo's proposal is not
            proven (no policy written); 2 bad usage (a port in use included); 3 internal error`;

/**
 * A change after learning, to give the audit view something to show: the recommendations service starts
 * reading from the redis cache, a connection the learned proposal has never seen.
 */
function driftFlows(snapshot: ClusterSnapshot, after: number): Flow[] {
  const pod = (prefix: string, ns: string) =>
    snapshot.pods.find((p) => p.metadata.namespace === ns && p.metadata.name.startsWith(prefix));
  const from = pod('recommendations', 'shop');
  const to = pod('redis', 'data');
  if (!from || !to) return [];
  return [0, 1, 2].map((i) => ({
    time: after + 60_000 * (i + 1),
    src: { namespace: 'shop', pod: from.metadata.name, ip: from.status?.podIP ?? '' },
    dst: { namespace: 'data', pod: to.metadata.name, ip: to.status?.podIP ?? '' },
    protocol: 'TCP',
    port: 6379,
    verdict: 'FORWARDED',
    input: 'generic',
  }));
}

/**
 * A side of a blast radius as the page shows it: how many workloads (or peers) it reaches and is reached
 * from. The engine lists classes of pods, and the pods of a StatefulSet are a class each (each has its
 * own pod-name label): `workloadOf` gives the workload of a class's name, so that each counts once.
 */
function reachSummary(side: ReachSide | undefined, workloadOf: ReadonlyMap<string, string>): ReachSummary {
  const count = (names: string[]) => new Set(names.map((n) => workloadOf.get(n) ?? n)).size;
  return {
    canReach: count((side?.reaches ?? []).map((r) => r.to)),
    reachableFrom: count((side?.reachedFrom ?? []).map((r) => r.from)),
    reachExamples: (side?.reaches ?? []).slice(0, 8).map((r) => `${r.to} (${r.ports.join(', ')})`),
    fromExamples: (side?.reachedFrom ?? []).slice(0, 8).map((r) => `${r.from} (${r.ports.join(', ')})`),
  };
}

/** The workload of each class of pods, by the class's name. */
function classWorkloads(engine: Engine): Map<string, string> {
  return new Map(podClasses(engine).map((c) => [c.name, c.workload]));
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
  let workloads: { before: Map<string, string>; after: Map<string, string> } | undefined;
  return (id) => {
    const w = analysis.identity.workloads.get(id);
    const pod = w?.pods[0];
    if (!w || !pod || w.hostNetwork) return undefined;
    const r = blastRadius(before, after, { namespace: w.namespace, pod });
    workloads ??= { before: classWorkloads(before), after: classWorkloads(after) };
    return {
      workload: id,
      before: reachSummary(r.before, workloads.before),
      after: reachSummary(r.after, workloads.after),
    };
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

/** The options the command takes, as node:util parseArgs reads them (its --help lists each). */
export const OPTIONS = {
  out: { type: 'string' },
  port: { type: 'string' },
  host: { type: 'string' },
  'allow-host': { type: 'string', multiple: true },
  'no-serve': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function run(args: string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args,
    options: OPTIONS,
    strict: true,
  });
  if (values.help) {
    io.out(HELP + '\n');
    return EXIT.ok;
  }
  const port = portOption(values.port);
  nonEmptyOut(values.out, 'directory', 'out');
  const out = values.out ?? 'out';
  const host = values.host ?? '127.0.0.1';
  const allowedHosts = allowedHostsOption(values['allow-host'], host);
  // Before anything is generated: the output directory is made and proven writable, and the port is
  // taken (a second `npm start` finds it held), so that neither mistake ends the run after its work.
  const outDir = await prepareOutputDir(out);
  let server: Server | undefined;
  try {
    if (!values['no-serve']) server = await listenForPage(port, host, values.port !== undefined);
    return await demo(out, io, server, allowedHosts);
  } finally {
    if (server) await closeServer(server);
    await outDir.removeIfEmpty();
  }
}

/** $PORT, an empty one counting as unset (as the shell's `${PORT:-8080}` reads it). */
function portFromEnv(): string | undefined {
  const v = process.env.PORT;
  return v === undefined || v === '' ? undefined : v;
}

/**
 * The page's port: `--port`, else $PORT (unless empty), else 8080. Decimal digits only, 0 to 65535 (0: a
 * free port the system picks, asked for by its number): an empty `--port` (an unset variable expanded)
 * or a value `Number` would still read (`0x50`, `1e3`, ` 80`) is bad usage naming where it came from,
 * not port 0 or another port than the one written.
 */
export function portOption(given: string | undefined): number {
  const env = portFromEnv();
  const fromEnv = given === undefined && env !== undefined;
  const text = given ?? env ?? '8080';
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535)
    throw new UsageError(
      `${fromEnv ? '--port ($PORT)' : '--port'} must be a port number, 0 to 65535 in decimal digits, got ${JSON.stringify(text)}`,
    );
  return Number(text);
}

/** The page's server until the pipeline is done: it answers 503 until `serve` gives it the page. */
interface PageServer extends Server {
  serve?: RequestListener;
}

/** Listens for the web page; an address that cannot be listened on is bad usage naming the flag. */
async function listenForPage(port: number, host: string, portGiven: boolean): Promise<PageServer> {
  const server: PageServer = createServer((req, res) => {
    if (server.serve) {
      server.serve(req, res);
      return;
    }
    res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '1' });
    res.end('microseg demo: the pipeline is still running; retry in a moment\n');
  });
  try {
    await listenOn(server, host, port);
  } catch (err) {
    if (!(err instanceof ListenError)) throw err;
    const flag = err.hostProblem
      ? '--host'
      : portGiven || portFromEnv() === undefined
        ? '--port'
        : '--port ($PORT)';
    throw new UsageError(`${err.message}; choose another with ${flag}`);
  }
  return server;
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

async function demo(
  out: string,
  io: CliIO,
  server: PageServer | undefined,
  allowedHosts: readonly string[],
): Promise<number> {
  const inputs = join(out, 'demo');
  const demo = generateDemo();
  try {
    await mkdir(inputs, { recursive: false }).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    });
    await writeObjectList(join(inputs, 'cluster.json'), demo.objects);
    await writeLines(join(inputs, 'flows.jsonl'), demo.lines);
    await writeFile(join(inputs, 'truth.json'), stableJson(demo.truth));
  } catch (err) {
    throw outputWriteError(out, err);
  }

  // The same path a user takes: the files just written, through the CLI's reader and pipeline.
  const snapshot = snapshotFromObjects(demo.objects, join(inputs, 'cluster.json'), {
    extraKinds: VERIFY_EXTRA_KINDS,
  });
  const result = await recommend(snapshot, readFlows(join(inputs, 'flows.jsonl')));
  const policiesDir = join(out, 'policies');
  if (proofFails(result.proof)) {
    io.err(summary(result, policiesDir));
    io.err('microseg demo: the proposal is not proven to allow every observed connection; see above\n');
    return EXIT.findings;
  }
  const changes = await writeFiles(policiesDir, result.files);
  const { analysis } = result;
  try {
    // What `microseg graph` prints for the inputs just written: the graph with its segments.
    const { segments, modularity } = analysis.segments;
    await writeFile(
      join(out, 'graph.json'),
      stableJson({ nodes: analysis.graph.nodes, edges: analysis.graph.edges, segments, modularity }),
    );
    await writeFile(join(out, 'graph.dot'), toDot(analysis.graph));
  } catch (err) {
    throw outputWriteError(out, err);
  }
  io.out(summary(result, policiesDir, changes));

  if (!server) return EXIT.ok;

  const audit = auditAfterDrift(snapshot, analysis, demo.truth.window.end);
  server.serve = createApp(
    analysisSource(
      { ...analysis, flows: result.ingest?.flows ?? 0 },
      {
        mode: 'demo',
        title: 'microseg demo',
        audits: [audit],
        blastRadius: blastRadiusViews(snapshot, analysis),
        cronJobs: snapshot.cronJobs,
        snapshot,
      },
    ),
    {
      allowedHosts,
      onInternalError: (err, req) =>
        io.err(
          `microseg demo: ${req.method} ${req.path} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
        ),
    },
  );
  const addr = server.address() as AddressInfo;
  io.out(`\nweb page: ${pageUrl(addr)}  (Ctrl-C to stop)\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  return EXIT.ok;
}

/** The demo's audit: the learned proposal against the learned traffic plus the drift after it. */
function auditAfterDrift(snapshot: ClusterSnapshot, analysis: Analysis, windowEnd: string) {
  const identity: Identity = analysis.identity;
  const agg = new Aggregator(identity);
  for (const f of driftFlows(snapshot, Date.parse(windowEnd))) agg.add(f);
  const drift = buildServiceGraph({ identity, edges: agg.edges(), peers: agg.peers(), names: agg.names() });
  const graph = {
    nodes: [
      ...analysis.graph.nodes,
      ...drift.nodes.filter((n) => !analysis.graph.nodes.some((m) => m.id === n.id)),
    ],
    edges: [...analysis.graph.edges, ...drift.edges],
  };
  return offlineAudit({ name: 'demo', snapshot, identity, graph, proposal: analysis.proposal });
}
