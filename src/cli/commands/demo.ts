/**
 * `microseg demo` (what `npm start` runs): generates the bundled demo cluster and its traffic, runs the
 * offline pipeline on it, writes the inputs and the results under out/, prints the summary and serves the
 * web page of the graph.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
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
import { offlineAudit } from '../../server/audit.ts';
import { VERIFY_EXTRA_KINDS } from '../../verify/load.ts';
import type { CliIO } from '../io.ts';
import { EXIT, UsageError } from '../io.ts';
import { allowedHostsOption } from '../allow-host.ts';
import { optionsCommand } from '../args.ts';
import { nonEmptyOut, outputWriteError, prepareOutputDir } from '../output.ts';
import type { PageServer } from '../page.ts';
import { closeServer, listenForPage, servePage } from '../page.ts';
import { recommend, summary, writeFiles } from './recommend.ts';

export { blastRadiusViews, pageUrl } from '../page.ts';

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

/** The options the command takes, as node:util parseArgs reads them (its --help lists each). */
export const OPTIONS = {
  out: { type: 'string' },
  port: { type: 'string' },
  host: { type: 'string' },
  'allow-host': { type: 'string', multiple: true },
  'no-serve': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const run = optionsCommand(OPTIONS, HELP, async (values, io) => {
  const port = portOption(values.port);
  nonEmptyOut(values.out, 'directory', 'out');
  const out = values.out ?? 'out';
  const host = values.host ?? '127.0.0.1';
  const allowedHosts = allowedHostsOption(values['allow-host'], host);
  // Before anything is generated: the output directory is made and proven writable, and the port is
  // taken (a second `npm start` finds it held), so that neither mistake ends the run after its work.
  const outDir = await prepareOutputDir(out);
  let server: PageServer | undefined;
  try {
    if (!values['no-serve'])
      server = await listenForPage(
        host,
        port,
        'microseg demo: the pipeline is still running; retry in a moment\n',
        (err) =>
          err.hostProblem
            ? '--host'
            : values.port !== undefined || portFromEnv() === undefined
              ? '--port'
              : '--port ($PORT)',
      );
    return await demo(out, io, server, allowedHosts);
  } finally {
    if (server) await closeServer(server);
    await outDir.removeIfEmpty();
  }
});

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
  await servePage(
    server,
    'demo',
    { mode: 'demo', snapshot, analysis, flows: result.ingest?.flows ?? 0, audits: [audit] },
    { io, allowedHosts },
  );
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
