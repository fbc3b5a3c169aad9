/**
 * `microseg generate`: writes a synthetic cluster snapshot (`cluster.json`), Hubble flows
 * (`flows.jsonl` or `flows.jsonl.gz`) and the ground truth they were generated from (`truth.json`).
 */
import { lstat, open, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { constants as zlib, gunzipSync } from 'node:zlib';
import { argsCommand } from '../args.ts';
import type { CliIO } from '../io.ts';
import { UsageError } from '../io.ts';
import { EXIT } from '../io.ts';
import { nonEmptyOut, outputWriteError, prepareOutputDir } from '../output.ts';
import { generateDemo } from '../../generate/demo.ts';
import {
  generateFlowLines,
  LargeLayout,
  largeClusterObjects,
  largeTopology,
  largeTruth,
} from '../../generate/large.ts';
import { kubectlOrder, writeLines, writeObjectList } from '../../generate/write.ts';

export const HELP = `usage: microseg generate --scenario demo|large --out DIR [options]

Writes DIR/cluster.json (a kubectl List), DIR/flows.jsonl (hubble observe -o jsonpb lines) and
DIR/truth.json (the connections the traffic was generated from). Same seed, same bytes.
A DIR/flows.jsonl.gz an earlier run wrote with --gzip is then removed (DIR/flows.jsonl with --gzip),
so DIR never holds flows of two runs; standard error names it. One that is not generate's flows (a
capture of your own) is kept, and named. No other file is touched.

options:
  --scenario demo|large  the bundled shop demo, or a large synthetic topology for benchmarks
  --out DIR              output directory (created if missing)
  --seed N               random seed, an integer (default 1)
  --workloads N          large only: number of workloads, 50 to 200000 (default 2000)
  --flows N              large only: number of flow lines, 0 to 1000000000 (default 100000)
  --gzip                 write flows.jsonl.gz instead of flows.jsonl (and remove flows.jsonl)
  -h, --help             show this help

exit codes: 0 written; 2 bad usage (an --out that cannot be written included); 3 internal error
`;

function intOption(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^-?\d+$/.test(value.replace(/_/g, '')))
    throw new UsageError(`--${name} must be an integer, got '${value}'`);
  const n = Number(value.replace(/_/g, ''));
  if (n < min || n > max) throw new UsageError(`--${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

/** The options the command takes, as node:util parseArgs reads them (its --help lists each). */
export const OPTIONS = {
  scenario: { type: 'string' },
  out: { type: 'string' },
  seed: { type: 'string' },
  workloads: { type: 'string' },
  flows: { type: 'string' },
  gzip: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const run = argsCommand(OPTIONS, HELP, false, async ({ values: o }, io) => {
  if (o.scenario === undefined) throw new UsageError('--scenario is required (demo or large)');
  if (o.scenario !== 'demo' && o.scenario !== 'large')
    throw new UsageError(`--scenario must be demo or large, got '${o.scenario}'`);
  if (o.out === undefined) throw new UsageError('--out DIR is required');
  nonEmptyOut(o.out, 'directory');
  const seed = intOption('seed', o.seed, 0, 2 ** 32 - 1) ?? 1;
  const workloads = intOption('workloads', o.workloads, 50, 200_000);
  const flows = intOption('flows', o.flows, 0, 1_000_000_000);
  const gzip = o.gzip === true;
  if (o.scenario === 'demo') {
    if (workloads !== undefined) throw new UsageError('--workloads applies to --scenario large only');
    if (flows !== undefined) throw new UsageError('--flows applies to --scenario large only');
  }
  const dir = o.out;
  // A path that cannot be a directory, or cannot be written, is bad usage naming it (exit 2), found
  // before anything is generated; so is a file that cannot be written in it.
  const outDir = await prepareOutputDir(dir);
  const written = { file: undefined as string | undefined };
  try {
    return await generate(o.scenario, dir, { seed, workloads, flows, gzip }, io, written);
  } catch (err) {
    throw outputWriteError(dir, err, written.file);
  } finally {
    await outDir.removeIfEmpty();
  }
});

/** `n` and the noun, plural but for one: `1 domain`, `3 domains`. */
function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

interface GenerateOptions {
  seed: number;
  workloads: number | undefined;
  flows: number | undefined;
  gzip: boolean;
}

/** Writes the scenario's files into `dir`, naming in `written.file` the one being written. */
async function generate(
  scenario: 'demo' | 'large',
  dir: string,
  { seed, workloads, flows, gzip }: GenerateOptions,
  io: CliIO,
  written: { file: string | undefined },
): Promise<number> {
  const flowsName = gzip ? 'flows.jsonl.gz' : 'flows.jsonl';
  const flowsFile = join(dir, flowsName);
  const into = (name: string) => {
    written.file = name;
    return join(dir, name);
  };

  if (scenario === 'demo') {
    const demo = generateDemo({ seed });
    await writeObjectList(into('cluster.json'), kubectlOrder(demo.objects));
    await writeLines(into(flowsName), demo.lines, { gzip });
    await writeFile(into('truth.json'), JSON.stringify(demo.truth, null, 2) + '\n');
    await removeOtherVariant(dir, gzip, io, written);
    io.out(
      `wrote ${join(dir, 'cluster.json')} (${demo.objects.length} objects), ${flowsFile} (${demo.lines.length} lines), ` +
        `${join(dir, 'truth.json')} (${demo.truth.edges.length} edges, ${demo.truth.denied.length} denied)\n`,
    );
    return EXIT.ok;
  }
  const topology = largeTopology({ workloads: workloads ?? 2000, seed });
  const layout = new LargeLayout(topology);
  let objects = 0;
  function* counted() {
    for (const o of largeClusterObjects(topology)) {
      objects++;
      yield o;
    }
  }
  await writeObjectList(into('cluster.json'), counted(), { indent: 0 });
  const perEdge = new Uint32Array(topology.edges.length);
  const lines = await writeLines(
    into(flowsName),
    generateFlowLines({ topology, layout, count: flows ?? 100_000, connectionsPerEdge: perEdge }),
    { gzip },
  );
  const truth = largeTruth(topology, perEdge);
  await writeFile(into('truth.json'), JSON.stringify(truth) + '\n');
  await removeOtherVariant(dir, gzip, io, written);
  const seen = perEdge.reduce((a, c) => a + (c > 0 ? 1 : 0), 0);
  io.out(
    `wrote ${join(dir, 'cluster.json')} (${count(objects, 'object')}, ${count(truth.pods, 'pod')} on ${count(truth.nodes, 'node')}), ` +
      `${flowsFile} (${count(lines, 'line')}), ${join(dir, 'truth.json')} (${count(truth.edges.length, 'edge')}, ${seen} of them in the flows, ` +
      `${count(truth.domains.length, 'domain')})\n`,
  );
  return EXIT.ok;
}

/**
 * Once every file is written, removes the flows file of the other variant an earlier run left in `dir`
 * (`flows.jsonl.gz` when this run wrote `flows.jsonl`, and the other way round), naming it on standard
 * error: `recommend --flows DIR/flows.jsonl` would otherwise read the earlier run's flows against this
 * run's cluster. Only that file name; a directory of that name is kept, and named.
 */
async function removeOtherVariant(
  dir: string,
  gzip: boolean,
  io: CliIO,
  written: { file: string | undefined },
): Promise<void> {
  const name = gzip ? 'flows.jsonl' : 'flows.jsonl.gz';
  const other = join(dir, name);
  const wrote = join(dir, gzip ? 'flows.jsonl.gz' : 'flows.jsonl');
  written.file = name;
  let isDirectory: boolean;
  try {
    isDirectory = (await lstat(other)).isDirectory();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (isDirectory) {
    io.err(
      `microseg generate: kept ${other}: a directory, not the flows of an earlier run; this run wrote ${wrote}\n`,
    );
    return;
  }
  // Only generate's own flows: a capture of the user's in DIR (README's `hubble observe -o jsonpb >
  // flows.jsonl`) is no earlier run's, and is kept.
  if (!(await writtenByGenerate(other))) {
    io.err(`microseg generate: kept ${other}: not flows microseg generate wrote; this run wrote ${wrote}\n`);
    return;
  }
  await unlink(other);
  io.err(
    `microseg generate: removed ${other}, written by an earlier run ${gzip ? 'without' : 'with'} --gzip: this run wrote ${wrote}\n`,
  );
}

/** The first line every flows file generate writes has (nodeStatusLine at the window's start). */
const GENERATED_FIRST_LINE =
  /^\{"node_status":\{"state_change":"NODE_CONNECTED","node_names":\[[^\]]*\]\},"node_name":"hubble-relay","time":"[^"]+"\}$/;

/**
 * Whether the flows file at `path` (plain or gzip, told by its magic bytes) starts as the ones generate
 * writes: the relay's NODE_CONNECTED line naming the generated nodes, from node "hubble-relay". Only its
 * first MiB is read.
 */
async function writtenByGenerate(path: string): Promise<boolean> {
  const f = await open(path, 'r');
  let head: Buffer;
  try {
    const buf = Buffer.alloc(1 << 20);
    const { bytesRead } = await f.read(buf, 0, buf.length, 0);
    head = buf.subarray(0, bytesRead);
  } finally {
    await f.close();
  }
  if (head[0] === 0x1f && head[1] === 0x8b) {
    try {
      // What the first MiB of the stream gives, without its end: enough for the first line.
      head = gunzipSync(head, { finishFlush: zlib.Z_SYNC_FLUSH });
    } catch {
      return false;
    }
  }
  const nl = head.indexOf(0x0a);
  if (nl < 0) return false;
  return GENERATED_FIRST_LINE.test(head.subarray(0, nl).toString('utf8'));
}
