/**
 * Pipeline benchmarks on a large synthetic cluster (20k workloads, heavy-tailed call graph):
 *
 * 1. ingest: Hubble jsonpb lines → scanner + normalisation + de-duplication + identity + aggregation, on
 *    one core, against bare `JSON.parse` of the same lines (rounds alternate; the best round of each
 *    counts, so a busy machine hurts both alike; each round pays for collecting what it keeps, see
 *    collectYoung). The headline path is the reader's: ~1 MiB blocks of
 *    bytes through the WebAssembly scanner; the string scanner (used for lines handed over one by one)
 *    is measured beside it;
 * 2. memory: 10M generated flow lines streamed through the same path in a child process; peak RSS;
 * 3. analysis: segments + proposal for the 20k-workload graph (~100k edges).
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { build } from '../scripts/build.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadSnapshotFiles } from '../src/cli/inputs.ts';
import { collector, releaseMemory } from '../src/cli/memory.ts';
import { NODE_ENV, NODE_FLAGS } from '../src/cli/node-flags.ts';
import { withProductFlags } from './flags.ts';
import { Deduplicator } from '../src/flows/dedup.ts';
import { readFlows } from '../src/flows/reader.ts';
import { parseHubbleLine, parseHubbleLineAt, resetScannerMemo } from '../src/flows/hubble-scan.ts';
import type { DuplicateSink } from '../src/flows/hubble-wasm.ts';
import { resetWasmScanner, scanHubbleBlock, wasmScannerMemory } from '../src/flows/hubble-wasm.ts';
import { parseHubbleLineSlow } from '../src/flows/hubble.ts';
import type { HubbleResult } from '../src/flows/hubble.ts';
import type { Flow } from '../src/flows/types.ts';
import { largeClusterObjects, largeTopology, LargeLayout, generateFlowLines } from '../src/generate/large.ts';
import type { LargeTopology } from '../src/generate/large.ts';
import { Aggregator } from '../src/graph/aggregate.ts';
import { buildIdentity } from '../src/identity/index.ts';
import type { Identity } from '../src/identity/index.ts';
import type { ClusterSnapshot } from '../src/model/snapshot.ts';
import { compactObject, Interner } from '../src/model/compact.ts';
import { writeObjectList } from '../src/generate/write.ts';
import { snapshotFromObjects } from '../src/model/snapshot.ts';
import { analyse } from '../src/pipeline.ts';

/**
 * This process's peak RSS in MB: VmHWM of /proc/self/status, the high-water mark of its own memory
 * since it started. On Linux `resourceUsage().maxRSS` keeps the figure across fork and exec, so a
 * child spawned by a large process (the benchmark runner after the in-process benchmarks) reports at
 * least its parent's RSS at the time; VmHWM does not.
 */
export function peakRssMB(): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) / 1024;
  } catch {
    // Not Linux: the portable figure.
  }
  return process.resourceUsage().maxRSS / 1024;
}

export interface Figure {
  name: string;
  value: number;
  unit: string;
}

function* map<T, U>(items: Iterable<T>, f: (t: T) => U): Generator<U> {
  for (const t of items) yield f(t);
}

function setup(workloads: number): { topo: LargeTopology; layout: LargeLayout; identity: Identity } {
  const topo = largeTopology({ workloads, seed: 7 });
  const layout = new LargeLayout(topo);
  // Objects are streamed and compacted as they are read: only what identity uses is kept. Each goes
  // through JSON first, so that identity holds the kind of strings it holds when microseg reads a
  // cluster file (flat, the short ones internalized), not the generator's concatenations.
  const interner = new Interner();
  const snapshot = snapshotFromObjects(
    map(largeClusterObjects(topo, { lean: true }), (o) =>
      compactObject(JSON.parse(JSON.stringify(o)) as typeof o, interner),
    ),
    'large',
  );
  return { topo, layout, identity: buildIdentity(snapshot) };
}

/** Joins lines into ~1 MiB blocks, the way the reader receives decoded chunks. */
export function toBlocks(lines: readonly string[]): string[] {
  const blocks: string[] = [];
  let cur: string[] = [];
  let size = 0;
  for (const l of lines) {
    cur.push(l);
    size += l.length + 1;
    if (size >= 1 << 20) {
      blocks.push(cur.join('\n') + '\n');
      cur = [];
      size = 0;
    }
  }
  if (cur.length > 0) blocks.push(cur.join('\n') + '\n');
  return blocks;
}

/** Calls `fn` with every line of the blocks (start and end of the line within its block). */
function eachLine(blocks: readonly string[], fn: (block: string, start: number, end: number) => void): void {
  for (const block of blocks) {
    let start = 0;
    for (;;) {
      const nl = block.indexOf('\n', start);
      if (nl < 0) break;
      fn(block, start, nl);
      start = nl + 1;
    }
  }
}

function countLines(block: string): number {
  let n = 0;
  for (let i = block.indexOf('\n'); i >= 0; i = block.indexOf('\n', i + 1)) n++;
  return n;
}

/** How far down the ingest path a contender goes. */
type Stage = 'scan' | 'dedup' | 'full';

/**
 * The stages after scanning, as far as `stage` goes: `add` takes each line's result, `sink` is where
 * the byte scanner sends observations that add nothing to a held connection (as the reader does),
 * `drain` passes on what de-duplication emitted (called once per block: the reader hands its flows on
 * a block at a time), `finish` returns the number of flows that reached the last stage.
 */
function ingestStages(
  stage: Stage,
  identity: Identity,
): { add(r: HubbleResult): void; sink: DuplicateSink | undefined; drain(): void; finish(): number } {
  const agg = new Aggregator(identity);
  const dedup = new Deduplicator();
  const out: Flow[] = [];
  let n = 0;
  const drain = () => {
    if (out.length > 0) {
      if (stage === 'full') agg.addAll(out);
      n += out.length;
      out.length = 0;
    }
  };
  return {
    add(r) {
      if (r.kind !== 'flow') return;
      if (stage === 'scan') {
        n++;
        return;
      }
      dedup.add(r.flow, out);
    },
    sink: stage === 'scan' ? undefined : { dedup, out, duplicate() {} },
    drain,
    finish() {
      if (stage === 'scan') return n;
      drain();
      dedup.flush(out);
      if (stage === 'full') agg.addAll(out);
      return n + out.length;
    },
  };
}

/**
 * Feeds every line through the ingest path with the string scanner (each line scanned in place in its
 * decoded block); returns the number of flows that reached the last stage.
 */
function ingest(blocks: readonly string[], stage: Stage, identity: Identity): number {
  // Every round starts with nothing remembered: a later round must not profit from an earlier one.
  resetScannerMemo();
  const stages = ingestStages(stage, identity);
  for (const block of blocks) {
    eachLine([block], (b, start, end) => stages.add(parseHubbleLineAt(b, start, end)));
    stages.drain();
  }
  return stages.finish();
}

/**
 * The ingest path on raw bytes (the WebAssembly scanner), as the reader runs it on Hubble input. Each
 * block is copied into the scanner's input block, timed: the reader reads a file straight into it, and
 * the copy stands for the first read of the input, cold, as JSON.parse's rounds read their lines' strings
 * cold (with both inputs already in the caches, both contenders' rounds were about 4% faster).
 */
function ingestBytes(blocks: readonly Buffer[], stage: Stage, identity: Identity): number {
  resetWasmScanner();
  const stages = ingestStages(stage, identity);
  for (const block of blocks) {
    scanHubbleBlock(
      block,
      0,
      block.length,
      (result, start, end) => stages.add(result ?? parseHubbleLineSlow(block.toString('utf8', start, end))),
      stages.sink,
    );
    stages.drain();
  }
  return stages.finish();
}

/**
 * Collects the young generation: before a measured round (not timed), so that the round starts with
 * nothing of the previous one to collect, and at its end (timed), so that the round pays for
 * collecting what it allocated and keeps. Without the second, a round that allocated less than the
 * young generation holds was not collected at all, and such rounds gave the best figures.
 */
export function collectYoung(): void {
  collector()({ type: 'minor' });
}

/** Process CPU time (user + system) of `fn`, in microseconds, the collection of its young garbage included. */
function cpuTime(fn: () => void): number {
  collectYoung();
  const c0 = process.cpuUsage();
  fn();
  collectYoung();
  const c = process.cpuUsage(c0);
  return c.user + c.system;
}

/**
 * Ingest on one core against bare `JSON.parse` of the same lines. Lines are generated from the
 * 20k-workload cluster and joined into ~1 MiB blocks like the reader's decoded chunks; JSON.parse gets
 * each line as its own string (what the reader would hand it), the ingest path scans each line in
 * place, starting each round with the scanner's memos empty. Contenders alternate round by round and
 * the best round of each counts, in process CPU time (a busy shared machine then hurts both alike),
 * the collection of the young generation at its end included (collectYoung).
 *
 * The headline pair (JSON.parse and the reader's path) runs first, alone, as in a run of microseg,
 * which takes one path only. The diagnostic paths (normalising every line, de-duplication without
 * aggregation, the string scanner) run after it: they feed the same normalisation, de-duplication and
 * aggregation code with other flows, so the headline must not depend on them having run. The full
 * path is measured again between them ("full path, between the other paths"), for comparison.
 */
export function benchIngestPipeline(opts: { lines?: number; rounds?: number } = {}): Figure[] {
  const count = opts.lines ?? 200_000;
  const rounds = opts.rounds ?? 5;
  const { topo, layout, identity } = setup(20_000);
  const lines = [...generateFlowLines({ topology: topo, layout, count, seed: 11 })];
  const bytes = lines.reduce((s, l) => s + l.length, 0);
  const blocks = toBlocks(lines);
  lines.length = 0;
  const byteBlocks = blocks.map((b) => Buffer.from(b, 'utf8'));
  // Steady state: the second half of the blocks, measured after the first half went through the same
  // path (what a long run looks like: endpoints remembered, edges and pods seen before).
  const half = byteBlocks.length >> 1;
  const halfLines = blocks.slice(half).reduce((n, b) => n + countLines(b), 0);
  let sink = 0;
  const parse = (from: number) =>
    cpuTime(() =>
      eachLine(blocks.slice(from), (block, start, end) => {
        sink += (JSON.parse(block.slice(start, end)) as { time?: string }).time ? 1 : 0;
      }),
    );
  const head = { parse: Infinity, full: Infinity, parseLater: Infinity, fullLater: Infinity };
  let flows = 0;
  for (let round = 0; round < rounds; round++) {
    head.parse = Math.min(head.parse, parse(0));
    head.full = Math.min(
      head.full,
      cpuTime(() => (flows = ingestBytes(byteBlocks, 'full', identity))),
    );
    head.parseLater = Math.min(head.parseLater, parse(half));
    resetWasmScanner();
    const stages = ingestStages('full', identity);
    const feed = (from: number, to: number) => {
      for (const block of byteBlocks.slice(from, to)) {
        scanHubbleBlock(
          block,
          0,
          block.length,
          (result, start, end) =>
            stages.add(result ?? parseHubbleLineSlow(block.toString('utf8', start, end))),
          stages.sink,
        );
        stages.drain();
      }
    };
    feed(0, half);
    head.fullLater = Math.min(
      head.fullLater,
      cpuTime(() => {
        feed(half, byteBlocks.length);
        stages.finish();
      }),
    );
  }
  // Diagnostics, after the headline: where the time goes, and the string scanner.
  const best = { parse: Infinity, scan: Infinity, dedup: Infinity, full: Infinity };
  const bestBytes = { scan: Infinity, dedup: Infinity, full: Infinity };
  for (let round = 0; round < rounds; round++) {
    best.parse = Math.min(best.parse, parse(0));
    for (const stage of ['scan', 'dedup', 'full'] as const) {
      best[stage] = Math.min(
        best[stage],
        cpuTime(() => {
          const n = ingest(blocks, stage, identity);
          if (stage === 'full' && n !== flows) throw new Error(`string path: ${n} flows, byte path ${flows}`);
        }),
      );
      bestBytes[stage] = Math.min(
        bestBytes[stage],
        cpuTime(() => {
          const n = ingestBytes(byteBlocks, stage, identity);
          if (stage === 'full' && n !== flows) throw new Error(`byte path: ${n} flows, before ${flows}`);
        }),
      );
    }
  }
  if (sink === 0) throw new Error('nothing parsed');
  const perSecond = (us: number) => Math.round(count / (us / 1e6));
  const perLine = (us: number) => round2(us / count);
  return [
    { name: 'ingest: lines', value: count, unit: 'lines' },
    { name: 'ingest: mean line size', value: Math.round(bytes / count), unit: 'bytes' },
    { name: 'ingest: flows after de-duplication', value: flows, unit: 'flows' },
    { name: 'ingest: JSON.parse only (CPU time)', value: perSecond(head.parse), unit: 'lines/s' },
    { name: 'ingest: JSON.parse only, per line', value: perLine(head.parse), unit: 'us' },
    { name: 'ingest: full path, per line', value: perLine(head.full), unit: 'us' },
    {
      name: 'ingest: scan+normalise+dedup+identity+aggregate (CPU time, target 500k)',
      value: perSecond(head.full),
      unit: 'lines/s',
    },
    { name: 'ingest: ratio to JSON.parse (target 2.0)', value: round2(head.parse / head.full), unit: 'x' },
    { name: 'ingest, second half after the first: lines', value: halfLines, unit: 'lines' },
    {
      name: 'ingest, second half after the first: full path (CPU time)',
      value: Math.round(halfLines / (head.fullLater / 1e6)),
      unit: 'lines/s',
    },
    {
      name: 'ingest, second half after the first: ratio to JSON.parse',
      value: round2(head.parseLater / head.fullLater),
      unit: 'x',
    },
    { name: 'ingest, diagnostics: JSON.parse only, per line', value: perLine(best.parse), unit: 'us' },
    {
      name: 'ingest, diagnostics: scan+normalise (every line), per line',
      value: perLine(bestBytes.scan),
      unit: 'us',
    },
    {
      name: 'ingest, diagnostics: scan+dedup (repeats counted from the record), per line',
      value: perLine(bestBytes.dedup),
      unit: 'us',
    },
    {
      name: 'ingest, diagnostics: full path, between the other paths, per line',
      value: perLine(bestBytes.full),
      unit: 'us',
    },
    { name: 'ingest, string scanner: scan+normalise, per line', value: perLine(best.scan), unit: 'us' },
    { name: 'ingest, string scanner: full path, per line', value: perLine(best.full), unit: 'us' },
    { name: 'ingest, string scanner: ratio to JSON.parse', value: round2(best.parse / best.full), unit: 'x' },
  ];
}

/** Bare JSON.parse of every line of a file read in 1 MiB blocks: the baseline for reading a file. */
function parseFileLines(path: string): number {
  const fd = openSync(path, 'r');
  const buf = Buffer.allocUnsafe(1 << 21);
  let filled = 0;
  let n = 0;
  try {
    for (;;) {
      const got = readSync(fd, buf, filled, buf.length - filled, null);
      filled += got;
      let start = 0;
      for (let nl = buf.indexOf(10, start); nl >= 0 && nl < filled; nl = buf.indexOf(10, start)) {
        if ((JSON.parse(buf.toString('utf8', start, nl)) as { time?: string }).time) n++;
        start = nl + 1;
      }
      buf.copy(buf, 0, start, filled);
      filled -= start;
      if (got === 0) return n;
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * The reader as `microseg recommend --flows FILE` runs it: a file of generated lines read, split,
 * scanned, normalised and de-duplicated by readFlows, each flow resolved and aggregated; against
 * reading the same file and JSON.parse of each line. Rounds alternate; the best of each counts.
 */
export async function benchIngestFile(opts: { lines?: number; rounds?: number } = {}): Promise<Figure[]> {
  const count = opts.lines ?? 200_000;
  const { topo, layout, identity } = setup(20_000);
  const dir = mkdtempSync(join(tmpdir(), 'microseg-bench-'));
  try {
    const path = join(dir, 'flows.jsonl');
    writeFileSync(
      path,
      [...generateFlowLines({ topology: topo, layout, count, seed: 11 })].join('\n') + '\n',
    );
    let parse = Infinity;
    let read = Infinity;
    let wall = Infinity;
    let flows = 0;
    for (let round = 0; round < (opts.rounds ?? 3); round++) {
      parse = Math.min(
        parse,
        cpuTime(() => void parseFileLines(path)),
      );
      resetWasmScanner();
      const agg = new Aggregator(identity);
      collectYoung();
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      for await (const batch of readFlows(path).batches()) agg.addAll(batch);
      collectYoung();
      const c = process.cpuUsage(c0);
      wall = Math.min(wall, performance.now() - t0);
      read = Math.min(read, c.user + c.system);
      flows = agg.stats.flows;
    }
    return [
      { name: 'file: lines', value: count, unit: 'lines' },
      { name: 'file: flows after de-duplication', value: flows, unit: 'flows' },
      {
        name: 'file: read + JSON.parse of each line (CPU time)',
        value: Math.round(count / (parse / 1e6)),
        unit: 'lines/s',
      },
      {
        name: 'file: readFlows + identity + aggregate (CPU time)',
        value: Math.round(count / (read / 1e6)),
        unit: 'lines/s',
      },
      {
        name: 'file: readFlows + identity + aggregate (wall time)',
        value: Math.round(count / (wall / 1e3)),
        unit: 'lines/s',
      },
      { name: 'file: ratio to read + JSON.parse (CPU time)', value: round2(parse / read), unit: 'x' },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs in a child process: streams `count` lines through the ingest path and reports peak RSS. */
function memoryChild(count: number): void {
  const t0 = performance.now();
  const { topo, layout, identity } = setup(20_000);
  const setupMs = performance.now() - t0;
  const agg = new Aggregator(identity);
  const dedup = new Deduplicator();
  const out: Flow[] = [];
  let lines = 0;
  // As microseg graph and recommend do once identity is built (PipelineOptions.afterIdentity).
  releaseMemory();
  const rssAfterSetup = process.memoryUsage().rss;
  let ingestPeak = rssAfterSetup;
  const heapAfterSetup = process.memoryUsage().heapUsed;
  let liveHeap = heapAfterSetup;
  const t1 = performance.now();
  // Lines reach the ingest path as the reader hands them over: ~1 MiB blocks of bytes, scanned by
  // the WebAssembly scanner (odd lines decoded and parsed one by one).
  const onLine = (block: Buffer) => (result: HubbleResult | undefined, start: number, end: number) => {
    const r = result ?? parseHubbleLine(block.toString('utf8', start, end));
    if (r.kind !== 'flow') return;
    dedup.add(r.flow, out);
    agg.addAll(out);
    out.length = 0;
  };
  const sink: DuplicateSink = { dedup, out, duplicate() {} };
  let pending: string[] = [];
  let size = 0;
  // CPU time of the ingest path alone (not the generator). JSON.parse is not measured here: its
  // garbage would change the memory figures; the ingest benchmark compares the two side by side.
  let ingestCpu = 0;
  const flushBlock = () => {
    const block = Buffer.from(pending.join('\n') + '\n', 'utf8');
    pending = [];
    size = 0;
    let c = process.cpuUsage();
    scanHubbleBlock(block, 0, block.length, onLine(block), sink);
    agg.addAll(out);
    out.length = 0;
    c = process.cpuUsage(c);
    ingestCpu += c.user + c.system;
  };
  for (const line of generateFlowLines({ topology: topo, layout, count, seed: 13 })) {
    lines++;
    if ((lines & 0xffff) === 0) ingestPeak = Math.max(ingestPeak, process.memoryUsage().rss);
    if (lines % 250_000 === 0 && process.env.TRACE_MEM) {
      const m = process.memoryUsage();
      process.stderr.write(
        `${lines} rss ${m.rss >> 20} heapTotal ${m.heapTotal >> 20} used ${m.heapUsed >> 20} ext ${m.external >> 20} ab ${m.arrayBuffers >> 20} wasm ${wasmScannerMemory() >> 20}\n`,
      );
    }
    if (lines % 1_000_000 === 0) {
      (globalThis as { gc?: () => void }).gc?.();
      liveHeap = Math.max(liveHeap, process.memoryUsage().heapUsed);
    }
    pending.push(line);
    size += line.length + 1;
    if (size >= 1 << 20) flushBlock();
  }
  if (pending.length > 0) flushBlock();
  let c = process.cpuUsage();
  dedup.flush(out);
  agg.addAll(out);
  c = process.cpuUsage(c);
  ingestCpu += c.user + c.system;
  const result = {
    lines,
    ingestLinesPerSecond: lines / (ingestCpu / 1e6),
    edges: agg.edges().length,
    seconds: (performance.now() - t1) / 1000,
    setupSeconds: setupMs / 1000,
    maxRssMB: peakRssMB(),
    setupRssMB: rssAfterSetup / 2 ** 20,
    ingestPeakMB: Math.max(ingestPeak, process.memoryUsage().rss) / 2 ** 20,
    heapAfterSetupMB: heapAfterSetup / 2 ** 20,
    liveHeapMB: liveHeap / 2 ** 20,
  };
  process.stdout.write(JSON.stringify(result) + '\n');
}

export function benchMemory(count = 10_000_000): Figure[] {
  const self = fileURLToPath(import.meta.url);
  const child = spawnSync(
    process.execPath,
    ['--expose-gc', ...NODE_FLAGS, self, '--memory-child', String(count)],
    {
      encoding: 'utf8',
      env: { ...process.env, ...NODE_ENV },
    },
  );
  if (child.status !== 0) throw new Error(`memory benchmark failed: ${child.stderr}`);
  const r = JSON.parse(child.stdout.trim().split('\n').pop()!) as {
    lines: number;
    ingestLinesPerSecond: number;
    edges: number;
    seconds: number;
    maxRssMB: number;
    setupRssMB: number;
    ingestPeakMB: number;
    heapAfterSetupMB: number;
    liveHeapMB: number;
  };
  return [
    { name: 'memory: flow lines streamed (generated on the fly)', value: r.lines, unit: 'lines' },
    { name: 'memory: distinct edges', value: r.edges, unit: 'edges' },
    {
      name: 'memory run: ingest path alone over all lines (CPU time)',
      value: Math.round(r.ingestLinesPerSecond),
      unit: 'lines/s',
    },

    { name: 'memory: generate+ingest time', value: round2(r.seconds), unit: 's' },
    {
      name: 'memory: RSS with the 20k-workload identity loaded, set-up garbage given back',
      value: Math.round(r.setupRssMB),
      unit: 'MB',
    },
    {
      name: 'memory: peak RSS while ingesting (the generator shares the process)',
      value: Math.round(r.ingestPeakMB),
      unit: 'MB',
    },
    {
      name: 'memory: live heap after GC, identity loaded',
      value: Math.round(r.heapAfterSetupMB),
      unit: 'MB',
    },
    {
      name: 'memory: live heap after GC while ingesting (max, every 1M lines)',
      value: Math.round(r.liveHeapMB),
      unit: 'MB',
    },
    {
      name: 'memory: peak RSS of the whole run, snapshot load included',
      value: Math.round(r.maxRssMB),
      unit: 'MB',
    },
  ];
}

export function benchAnalysis(): Figure[] {
  const { topo, identity } = setup(20_000);
  const agg = new Aggregator(identity);
  // Every edge of the topology once, as a flow between real pods.
  const podOf = new Map<string, { ns: string; pod: string }>();
  for (const [key, id] of identity.podWorkload)
    if (!podOf.has(id)) podOf.set(id, { ns: key.split('/')[0]!, pod: key.split('/')[1]! });
  const idOf = (i: number) => {
    const w = topo.workloads[i]!;
    return `${w.namespace}/${w.kind}/${w.name}`;
  };
  let t = 1_000;
  for (const e of topo.edges) {
    const s = podOf.get(idOf(e.src));
    const d = podOf.get(idOf(e.dst));
    const w = topo.workloads[e.dst]!;
    if (!s || !d) continue;
    agg.add({
      time: t++,
      src: { namespace: s.ns, pod: s.pod },
      dst: { namespace: d.ns, pod: d.pod },
      port: e.kind === 'scrape' ? 9102 : w.port,
      protocol: e.kind === 'scrape' ? 'TCP' : w.protocol,
      verdict: 'FORWARDED',
      input: 'generic',
    });
  }
  const edges = agg.edges();
  const t0 = performance.now();
  const a = analyse({ identity, edges, peers: agg.peers(), names: agg.names() });
  const ms = performance.now() - t0;
  return [
    { name: 'analysis: workloads', value: identity.workloads.size, unit: 'workloads' },
    { name: 'analysis: edges', value: edges.length, unit: 'edges' },
    { name: 'analysis: segments', value: a.segments.segments.length, unit: 'segments' },
    { name: 'analysis: modularity', value: round2(a.segments.modularity), unit: '' },
    { name: 'analysis: policies', value: a.proposal.policies.length, unit: 'policies' },
    { name: 'analysis: graph+segments+proposal (target < 5)', value: round2(ms / 1000), unit: 's' },
  ];
}

/** Writes generated flow lines for the 20k-workload cluster to standard output (for the end-to-end run). */
async function emitLines(count: number): Promise<void> {
  const topo = largeTopology({ workloads: 20_000, seed: 7 });
  const layout = new LargeLayout(topo);
  let batch: string[] = [];
  let size = 0;
  const flush = async () => {
    if (!process.stdout.write(batch.join('\n') + '\n'))
      await new Promise((r) => process.stdout.once('drain', r));
    batch = [];
    size = 0;
  };
  for (const line of generateFlowLines({ topology: topo, layout, count, seed: 13 })) {
    batch.push(line);
    size += line.length;
    if (size >= 1 << 20) await flush();
  }
  if (batch.length > 0) await flush();
}

/** Runs `microseg recommend` in this process on standard input, then reports its peak RSS. */
async function recommendChild(cluster: string, out: string): Promise<void> {
  const { run } = await import('../src/cli/commands/recommend.ts');
  const { processIO } = await import('../src/cli/io.ts');
  const t0 = performance.now();
  const code = await run(['--cluster', cluster, '--flows', '-', '--out', out, '--quiet'], processIO());
  const seconds = (performance.now() - t0) / 1000;
  process.stderr.write(JSON.stringify({ code, seconds, maxRssMB: peakRssMB() }) + '\n');
}

/**
 * Runs in a child process: the cluster file and the lines on standard input, read as `microseg
 * recommend` reads them (the snapshot is kept, for its proof); reports the set-up and the ingest apart.
 */
async function ingestChild(cluster: string): Promise<void> {
  const t0 = performance.now();
  const snapshot: ClusterSnapshot = await loadSnapshotFiles([cluster]);
  const identity = buildIdentity(snapshot);
  const setupPeakMB = peakRssMB();
  // As microseg recommend does once identity is built.
  releaseMemory();
  const setupSeconds = (performance.now() - t0) / 1000;
  const setupRssMB = process.memoryUsage().rss / 2 ** 20;
  const agg = new Aggregator(identity);
  const t1 = performance.now();
  const c0 = process.cpuUsage();
  const reader = readFlows('-', { stdin: process.stdin });
  let next = 1_000_000;
  for await (const batch of reader.batches()) {
    agg.addAll(batch);
    if (process.env.TRACE_MEM && reader.stats.lines >= next) {
      next += 1_000_000;
      const before = process.memoryUsage().rss >> 20;
      (globalThis as { gc?: () => void }).gc?.();
      const m = process.memoryUsage();
      process.stderr.write(`rss before gc ${before} `);
      process.stderr.write(
        `${reader.stats.lines} rss ${m.rss >> 20} heapTotal ${m.heapTotal >> 20} used ${m.heapUsed >> 20} ext ${m.external >> 20} ab ${m.arrayBuffers >> 20} wasm ${wasmScannerMemory() >> 20}\n`,
      );
    }
  }
  const c = process.cpuUsage(c0);
  process.stderr.write(
    JSON.stringify({
      lines: reader.stats.lines,
      flows: agg.stats.flows,
      edges: agg.edges().length,
      setupSeconds,
      setupRssMB,
      setupPeakMB,
      seconds: (performance.now() - t1) / 1000,
      cpuSeconds: (c.user + c.system) / 1e6,
      maxRssMB: peakRssMB(),
      snapshotPods: snapshot.pods.length,
    }) + '\n',
  );
}

/**
 * Memory of the ingest part of `microseg recommend` as a user's process sees it: `kubectl get ... -o
 * json` of the 20k-workload cluster read from a file (streamed, compacted, kept), identity built, then
 * `count` generated lines piped in from another process and read, de-duplicated, resolved and
 * aggregated.
 */
export async function benchMemoryPiped(count = 10_000_000): Promise<Figure[]> {
  const dir = mkdtempSync(join(tmpdir(), 'microseg-bench-'));
  try {
    const cluster = join(dir, 'cluster.json');
    await writeObjectList(cluster, largeClusterObjects(largeTopology({ workloads: 20_000, seed: 7 })), {
      indent: 0,
    });
    const self = fileURLToPath(import.meta.url);
    const emitter = spawn(process.execPath, [self, '--emit-lines', String(count)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    // The emitter writes straight into the child's standard input (no relay through this process).
    const child = spawn(process.execPath, [...NODE_FLAGS, self, '--ingest-child', cluster], {
      stdio: [emitter.stdout, 'ignore', 'pipe'],
      env: { ...process.env, ...NODE_ENV },
    });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const status = await new Promise<number | null>((r) => child.on('close', r));
    const last = err.trim().split('\n').pop() ?? '';
    if (status !== 0 || !last.startsWith('{')) throw new Error(`piped memory benchmark failed: ${err}`);
    const r = JSON.parse(last) as {
      lines: number;
      edges: number;
      setupSeconds: number;
      setupRssMB: number;
      setupPeakMB: number;
      seconds: number;
      cpuSeconds: number;
      maxRssMB: number;
    };
    if (r.lines !== count) throw new Error(`piped memory benchmark read ${r.lines} lines, not ${count}`);
    return [
      { name: `recommend ingest: lines read from standard input`, value: r.lines, unit: 'lines' },
      { name: `recommend ingest: distinct edges`, value: r.edges, unit: 'edges' },
      {
        name: `recommend ingest: cluster file read and identity built`,
        value: round2(r.setupSeconds),
        unit: 's',
      },
      {
        name: `recommend ingest: peak RSS while reading the cluster file and building identity`,
        value: Math.round(r.setupPeakMB),
        unit: 'MB',
      },
      {
        name: `recommend ingest: RSS with the identity built, its garbage given back`,
        value: Math.round(r.setupRssMB),
        unit: 'MB',
      },
      {
        name: `recommend ingest: ingest (CPU time of the process)`,
        value: Math.round(r.lines / r.cpuSeconds),
        unit: 'lines/s',
      },
      {
        name: `recommend ingest: ingest (wall time; the generator is the slower end)`,
        value: Math.round(r.lines / r.seconds),
        unit: 'lines/s',
      },
      { name: `recommend ingest: peak RSS of the process`, value: Math.round(r.maxRssMB), unit: 'MB' },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * `microseg graph` as a user runs it: `kubectl get ... -o json` of the 20k-workload cluster in a file,
 * `count` generated lines piped in from another process, the graph (with segments) written as JSON.
 * The command runs as the npm package installs it: compiled (scripts/build.ts), with microseg's V8
 * flags; a module preloaded from a data: URL reports its peak RSS and CPU time at exit.
 */
export async function benchGraphCommand(count = 10_000_000): Promise<Figure[]> {
  const dir = mkdtempSync(join(tmpdir(), 'microseg-bench-'));
  try {
    const cluster = join(dir, 'cluster.json');
    await writeObjectList(cluster, largeClusterObjects(largeTopology({ workloads: 20_000, seed: 7 })), {
      indent: 0,
    });
    build(join(dir, 'dist'));
    symlinkSync(fileURLToPath(new URL('../node_modules', import.meta.url)), join(dir, 'node_modules'), 'dir');
    const self = fileURLToPath(import.meta.url);
    const main = join(dir, 'dist', 'cli', 'main.js');
    // The exit report, as peakRssMB (VmHWM) and the process's CPU time.
    const usage =
      "data:text/javascript,process.on('exit',(code)=>{const u=process.resourceUsage();" +
      "const s=process.getBuiltinModule('node:fs').readFileSync('/proc/self/status','utf8');" +
      'const h=/^VmHWM:\\s+(\\d+) kB$/m.exec(s);' +
      'process.stderr.write(JSON.stringify({code,maxRssMB:h?Number(h[1])/1024:u.maxRSS/1024,' +
      "cpuSeconds:(u.userCPUTime+u.systemCPUTime)/1e6})+'\\n')})";
    const out = join(dir, 'graph.json');
    const emitter = spawn(process.execPath, [self, '--emit-lines', String(count)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const t0 = performance.now();
    const child = spawn(
      process.execPath,
      [...NODE_FLAGS, `--import=${usage}`, main, 'graph', '--cluster', cluster, '--flows', '-', '--out', out],
      { stdio: [emitter.stdout, 'ignore', 'pipe'], env: { ...process.env, ...NODE_ENV } },
    );
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const status = await new Promise<number | null>((r) => child.on('close', r));
    const seconds = (performance.now() - t0) / 1000;
    const last = err.trim().split('\n').pop() ?? '';
    if (status !== 0 || !last.startsWith('{')) throw new Error(`microseg graph benchmark failed: ${err}`);
    const r = JSON.parse(last) as { code: number; maxRssMB: number; cpuSeconds: number };
    const graph = JSON.parse(readFileSync(out, 'utf8')) as { nodes: unknown[]; edges: unknown[] };
    return [
      { name: 'graph command: lines piped in', value: count, unit: 'lines' },
      { name: 'graph command: nodes written', value: graph.nodes.length, unit: 'nodes' },
      { name: 'graph command: edges written', value: graph.edges.length, unit: 'edges' },
      {
        name: 'graph command: wall time (the generator is the slower end)',
        value: round2(seconds),
        unit: 's',
      },
      { name: 'graph command: CPU time of the process', value: round2(r.cpuSeconds), unit: 's' },
      {
        name: 'graph command: peak RSS of the process (target 300)',
        value: Math.round(r.maxRssMB),
        unit: 'MB',
      },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The whole offline run as a user runs it: `kubectl get ... -o json` of the 20k-workload cluster in a
 * file (all fields, as the API server returns them), flow lines piped to `microseg recommend --flows -`
 * from another process, policies and report written. Reports the recommend process's peak RSS.
 */
export async function benchRecommendMemory(count = 1_000_000): Promise<Figure[]> {
  const dir = mkdtempSync(join(tmpdir(), 'microseg-bench-'));
  try {
    const cluster = join(dir, 'cluster.json');
    const topo = largeTopology({ workloads: 20_000, seed: 7 });
    await writeObjectList(cluster, largeClusterObjects(topo), { indent: 0 });
    const self = fileURLToPath(import.meta.url);
    const emitter = spawn(process.execPath, [self, '--emit-lines', String(count)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const rec = spawn(
      process.execPath,
      [...NODE_FLAGS, self, '--recommend-child', cluster, join(dir, 'out')],
      {
        stdio: ['pipe', 'ignore', 'pipe'],
        env: { ...process.env, ...NODE_ENV },
      },
    );
    emitter.stdout.pipe(rec.stdin);
    let err = '';
    rec.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const status = await new Promise<number | null>((r) => rec.on('close', r));
    const last = err.trim().split('\n').pop() ?? '';
    if (status !== 0 || !last.startsWith('{')) throw new Error(`recommend benchmark failed: ${err}`);
    const r = JSON.parse(last) as { code: number; seconds: number; maxRssMB: number };
    if (r.code !== 0) throw new Error(`recommend exited with ${r.code}: ${err}`);
    return [
      { name: 'recommend end to end: flow lines piped in', value: count, unit: 'lines' },
      { name: 'recommend end to end: time', value: round2(r.seconds), unit: 's' },
      { name: 'recommend end to end: peak RSS', value: Math.round(r.maxRssMB), unit: 'MB' },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  if (process.argv[2] === '--memory-child') memoryChild(Number(process.argv[3]));
  else if (process.argv[2] === '--emit-lines') await emitLines(Number(process.argv[3]));
  else if (process.argv[2] === '--ingest-child') await ingestChild(process.argv[3]!);
  else if (process.argv[2] === '--recommend-child') await recommendChild(process.argv[3]!, process.argv[4]!);
  else if (process.argv.includes('--ingest-only')) {
    withProductFlags();
    // node bench/pipeline.ts [lines] --ingest-only: the ingest figures alone, on `lines` lines.
    const n = Number(process.argv[2]);
    for (const f of benchIngestPipeline({ lines: Number.isInteger(n) && n > 0 ? n : undefined }))
      console.log(`${f.name.padEnd(60)} ${f.value} ${f.unit}`);
  } else {
    withProductFlags();
    for (const f of [
      ...benchIngestPipeline(),
      ...benchAnalysis(),
      ...benchMemory(Number(process.argv[2] ?? 10_000_000)),
    ])
      console.log(`${f.name.padEnd(60)} ${f.value} ${f.unit}`);
  }
}
