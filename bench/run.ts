/**
 * `npm run bench`: every benchmark of the project in one run, figures printed as they come.
 *
 *   node bench/run.ts [--only NAME[,NAME...]] [--skip-cluster]
 *
 * NAME: ingest, pipeline, file, analysis, identity, memory, graph, recommend, verify, audit, controller, isolation (graph: the
 * `microseg graph` run alone, which memory includes). The controller and isolation benchmarks start a real kube-apiserver (built once by the test harness) and run as child processes.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { benchIngest } from './ingest.ts';
import {
  benchAnalysis,
  benchGraphCommand,
  benchIngestFile,
  benchIngestPipeline,
  benchMemory,
  benchMemoryPiped,
  benchRecommendMemory,
} from './pipeline.ts';
import { withProductFlags } from './flags.ts';
import { benchVerify } from './verify.ts';
import { benchAudit } from './audit.ts';
import { benchIdentity } from './identity.ts';

interface Figure {
  name: string;
  value: number;
  unit: string;
}

// Every benchmark measures a process as microseg starts it (its V8 flags and environment).
withProductFlags();

const { values } = parseArgs({
  options: { only: { type: 'string' }, 'skip-cluster': { type: 'boolean' } },
  strict: true,
});
const only = values.only ? new Set(values.only.split(',')) : undefined;
const want = (name: string) => !only || only.has(name);

function print(section: string, figures: Figure[]): void {
  console.log(`\n## ${section}`);
  for (const f of figures) console.log(`${f.name.padEnd(64)} ${String(f.value).padStart(12)} ${f.unit}`);
}

/** A benchmark script that needs its own process (a cluster, or a clean heap); its output is passed through. */
function child(section: string, script: string, args: string[] = []): void {
  const path = fileURLToPath(new URL(script, import.meta.url));
  console.log(`\n## ${section}`);
  if (!existsSync(path)) {
    console.log(`(${script} is not present)`);
    return;
  }
  // With this process's flags: microseg's (see withProductFlags).
  const r = spawnSync(process.execPath, [...process.execArgv, path, ...args], { stdio: 'inherit' });
  if (r.status !== 0) {
    console.log(`(${script} failed with exit code ${r.status})`);
    process.exitCode = 1;
  }
}

// The machine goes with the figures: absolute rates (lines/s, seconds) differ between processors;
// ratios measured side by side in one run much less.
function processorName(): string {
  const model = cpus()[0]?.model.trim() ?? 'unknown processor';
  try {
    // Linux names some processors by their maker only ("AMD EPYC"): the family and model tell them apart.
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const family = /^cpu family\s*:\s*(\d+)/m.exec(info)?.[1];
    const number = /^model\s*:\s*(\d+)/m.exec(info)?.[1];
    if (family !== undefined && number !== undefined) return `${model} (family ${family}, model ${number})`;
  } catch {
    // Not Linux: the model name alone.
  }
  return model;
}
console.log(
  `microseg benchmarks — node ${process.version} ${process.execArgv.join(' ')}, MALLOC_ARENA_MAX=${process.env.MALLOC_ARENA_MAX}, ${cpus().length} × ${processorName()}, ${new Date().toISOString()}`,
);
if (want('ingest'))
  print(
    'Hubble parsing: scanner vs JSON.parse (same lines, alternating rounds)',
    await benchIngest({ lines: 100_000 }),
  );
if (want('pipeline'))
  print(
    'Ingest path on a 20k-workload cluster: scan + normalise + dedup + identity + aggregate vs JSON.parse',
    benchIngestPipeline(),
  );
if (want('file'))
  print(
    'Ingest from a file as microseg reads it: readFlows + identity + aggregate vs read + JSON.parse',
    await benchIngestFile(),
  );
if (want('analysis')) print('Segments + proposal, 20k workloads', benchAnalysis());
if (want('identity'))
  print(
    "Identity rebuild on the 20k-workload cluster (the controller's, on its event loop, each time its caches changed)",
    benchIdentity(),
  );
if (want('verify'))
  print('Semantics engine: verification of 100k observed edges, 20k workloads', await benchVerify());
if (want('audit'))
  print(
    'Policy-set audit: workloads only a default deny selects (POST /audit, microseg audit), n and 2n',
    benchAudit(),
  );
if (want('memory')) {
  print('Memory: 10M flows over 20k workloads, streamed', benchMemory(10_000_000));
  print(
    'Ingest as microseg recommend reads flows: the 20k-workload cluster file (snapshot kept for the proof), 10M lines piped in',
    await benchMemoryPiped(10_000_000),
  );
}
if (want('memory') || want('graph'))
  print(
    'microseg graph end to end: the 20k-workload cluster file, 10M lines piped in from another process, the graph written',
    await benchGraphCommand(10_000_000),
  );
if (want('recommend'))
  print(
    'microseg recommend end to end: 20k-workload cluster file, 1M flow lines piped in',
    await benchRecommendMemory(1_000_000),
  );
if (!values['skip-cluster']) {
  if (want('controller')) child('Controller against a real kube-apiserver', './controller.ts');
  if (want('isolation')) child('Isolation against a real kube-apiserver', './isolation.ts');
}
