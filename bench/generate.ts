/**
 * Generator helpers for benchmarks, and a benchmark of the generators themselves.
 *
 * - `ensureLargeDataset` writes a large scenario (cluster.json, flows.jsonl[.gz], truth.json) once into
 *   `.cache/bench/` and reuses it afterwards, for benchmarks that read files the way users do;
 * - `benchGenerate` measures topology planning, snapshot object streaming and flow line generation
 *   (lines/s, bytes/line, heap growth while streaming).
 *
 * Run directly: `node bench/generate.ts [--workloads N] [--lines N]` prints the figures as JSON.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import {
  generateFlowLines,
  LargeLayout,
  largeClusterObjects,
  largeTopology,
  largeTruth,
} from '../src/generate/large.ts';
import { writeLines, writeObjectList } from '../src/generate/write.ts';

export interface Figure {
  name: string;
  value: number;
  unit: string;
}

export interface Dataset {
  dir: string;
  cluster: string;
  flows: string;
  truth: string;
  /** True when the files were already there. */
  reused: boolean;
}

const CACHE = fileURLToPath(new URL('../.cache/bench/', import.meta.url));

/** Writes (once) and returns the files of a large scenario; the same options always give the same files. */
export async function ensureLargeDataset(
  opts: { workloads?: number; flows?: number; seed?: number; gzip?: boolean } = {},
): Promise<Dataset> {
  const workloads = opts.workloads ?? 20_000;
  const flows = opts.flows ?? 1_000_000;
  const seed = opts.seed ?? 1;
  const dir = join(CACHE, `large-w${workloads}-f${flows}-s${seed}`);
  const flowsFile = join(dir, opts.gzip ? 'flows.jsonl.gz' : 'flows.jsonl');
  const done = join(dir, opts.gzip ? '.complete-gz' : '.complete');
  const ds = { dir, cluster: join(dir, 'cluster.json'), flows: flowsFile, truth: join(dir, 'truth.json') };
  if (existsSync(done)) return { ...ds, reused: true };
  await mkdir(dir, { recursive: true });
  const topology = largeTopology({ workloads, seed });
  const layout = new LargeLayout(topology);
  await writeObjectList(ds.cluster, largeClusterObjects(topology), { indent: 0 });
  const perEdge = new Uint32Array(topology.edges.length);
  await writeLines(
    flowsFile,
    generateFlowLines({ topology, layout, count: flows, connectionsPerEdge: perEdge }),
    {
      gzip: opts.gzip === true,
    },
  );
  await writeFile(ds.truth, JSON.stringify(largeTruth(topology, perEdge)) + '\n');
  await writeFile(done, '');
  return { ...ds, reused: false };
}

const round2 = (x: number) => Math.round(x * 100) / 100;

/** Measures the generators on one core. */
export function benchGenerate(opts: { workloads?: number; lines?: number } = {}): Figure[] {
  const workloads = opts.workloads ?? 20_000;
  const count = opts.lines ?? 500_000;
  let t = performance.now();
  const topology = largeTopology({ workloads, seed: 1 });
  const topoMs = performance.now() - t;
  t = performance.now();
  let objects = 0;
  let objectBytes = 0;
  for (const o of largeClusterObjects(topology)) {
    objects++;
    objectBytes += JSON.stringify(o).length;
  }
  const objectsMs = performance.now() - t;
  const layout = new LargeLayout(topology);
  const it = generateFlowLines({ topology, layout, count });
  let bytes = 0;
  const warm = Math.min(20_000, Math.floor(count / 10));
  for (let i = 0; i < warm; i++) bytes += it.next().value!.length;
  const heapBefore = process.memoryUsage().heapUsed;
  t = performance.now();
  const cpu0 = process.cpuUsage();
  let n = warm;
  for (let r = it.next(); !r.done; r = it.next()) {
    bytes += r.value.length;
    n++;
  }
  const linesMs = performance.now() - t;
  const cpu = process.cpuUsage(cpu0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const heapAfter = process.memoryUsage().heapUsed;
  return [
    { name: 'generate: workloads', value: workloads, unit: 'workloads' },
    { name: 'generate: workload edges', value: topology.edges.length, unit: 'edges' },
    { name: 'generate: pods', value: topology.workloads.reduce((a, w) => a + w.replicas, 0), unit: 'pods' },
    { name: 'generate: topology planning', value: round2(topoMs / 1000), unit: 's' },
    { name: 'generate: snapshot objects', value: objects, unit: 'objects' },
    { name: 'generate: snapshot JSON size', value: Math.round(objectBytes / 1e6), unit: 'MB' },
    {
      name: 'generate: snapshot objects rate',
      value: Math.round(objects / (objectsMs / 1000)),
      unit: 'objects/s',
    },
    { name: 'generate: flow lines', value: n, unit: 'lines' },
    { name: 'generate: mean line size', value: Math.round(bytes / n), unit: 'bytes' },
    { name: 'generate: flow lines rate', value: Math.round((n - warm) / (linesMs / 1000)), unit: 'lines/s' },
    {
      name: 'generate: flow lines per CPU second',
      value: Math.round((n - warm) / cpuSeconds),
      unit: 'lines/s',
    },
    {
      name: 'generate: heap change while streaming',
      value: round2((heapAfter - heapBefore) / 1e6),
      unit: 'MB',
    },
  ];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({ options: { workloads: { type: 'string' }, lines: { type: 'string' } } });
  const figures = benchGenerate({
    ...(values.workloads ? { workloads: Number(values.workloads) } : {}),
    ...(values.lines ? { lines: Number(values.lines) } : {}),
  });
  process.stdout.write(JSON.stringify(figures, null, 2) + '\n');
}
