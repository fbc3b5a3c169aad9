import { execFileSync, spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { readFlows } from '../../src/flows/reader.ts';

// Standard input is read on its descriptor, not through process.stdin: only a child process with a
// real pipe (or file) as its standard input exercises that.
const dir = mkdtempSync(join(tmpdir(), 'microseg-stdin-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const reader = pathToFileURL(fileURLToPath(new URL('../../src/flows/reader.ts', import.meta.url))).href;
const script = join(dir, 'read.ts');
writeFileSync(
  script,
  `import { readFlows } from ${JSON.stringify(reader)};
// 'opened': process.stdin is opened first (which makes a pipe non-blocking); 'strict': the first bad
// line ends the run.
if (process.argv[2] === 'opened') process.stdin.pause();
// 'cli': process.stdin is passed as the CLI passes it.
const r = readFlows('-', {
  strict: process.argv[2] === 'strict',
  ...(process.argv[2] === 'cli' ? { stdin: process.stdin } : {}),
});
try {
  let flows = [];
  if (process.argv[2] === 'slow') {
    // A consumer that waits between batches: meanwhile the producer fills more than the reader holds.
    for await (const batch of r.batches()) {
      flows.push(...batch);
      await new Promise((done) => setTimeout(done, 20));
    }
  } else flows = await r.toArray();
  process.stdout.write(JSON.stringify({ flows, stats: r.stats }));
} catch (err) {
  process.stdout.write(JSON.stringify({ error: err.message }));
}
`,
);

const sample = readFileSync(
  fileURLToPath(new URL('../../../shared/samples/hubble-flows.jsonl', import.meta.url)),
);

type ChildResult = {
  flows: unknown[];
  stats: { lines: number; sources: { gzip: boolean }[] };
  error?: string;
};

/** Runs the reader in a child with `input` on a pipe, written in small pieces; `hold` keeps the pipe open. */
function runChild(input: Buffer, args: string[] = [], hold = false): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.stdin.on('error', () => undefined);
    child.on('close', (code) => {
      child.stdin.destroy();
      if (code === 0) resolve(JSON.parse(out) as ChildResult);
      else reject(new Error(`exit ${code}: ${err}`));
    });
    // Written in small pieces, so reads see partial lines.
    let i = 0;
    const next = () => {
      while (i < input.length) {
        const piece = input.subarray(i, i + 777);
        i += piece.length;
        if (!child.stdin.write(piece)) return void child.stdin.once('drain', next);
      }
      if (!hold) child.stdin.end();
    };
    next();
  });
}

/** Runs the reader in a child whose standard input is the file `path`. */
function runChildOnFile(path: string): Promise<ChildResult> {
  const fd = openSync(path, 'r');
  return new Promise<ChildResult>((resolve, reject) => {
    const child = spawn(process.execPath, [script], { stdio: [fd, 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.on('close', (code) =>
      code === 0 ? resolve(JSON.parse(out) as ChildResult) : reject(new Error(`exit ${code}`)),
    );
  }).finally(() => closeSync(fd));
}

describe('standard input', () => {
  // Enough lines that blocks after the first go through the byte path.
  const content = Buffer.concat(Array.from({ length: 400 }, () => sample));

  it('gives what the same bytes give through a stream: a pipe (plain, gzip, process.stdin opened first) and a file', async () => {
    const { Readable } = await import('node:stream');
    const ref = readFlows('-', { stdin: Readable.from([content]) });
    const expected = JSON.parse(JSON.stringify(await ref.toArray())) as unknown[];
    // The 400 copies of the sample are the same connections: the flows of one copy.
    const once = await readFlows('-', { stdin: Readable.from([sample]) }).toArray();
    expect(once.length).toBeGreaterThan(5);
    expect(expected.length).toBe(once.length);
    const plain = await runChild(content);
    expect(plain.flows).toEqual(expected);
    expect(plain.stats.lines).toBe(ref.stats.lines);
    const gz = await runChild(gzipSync(content));
    expect(gz.flows).toEqual(expected);
    expect(gz.stats.sources[0]!.gzip).toBe(true);
    const cli = await runChild(content, ['cli']);
    expect(cli.flows).toEqual(expected);
    const opened = await runChild(content, ['opened']);
    expect(opened.flows).toEqual(expected);
    expect(opened.stats.lines).toBe(ref.stats.lines);
    const path = join(dir, 'flows.jsonl');
    writeFileSync(path, content);
    const fromFile = await runChildOnFile(path);
    expect(fromFile.flows).toEqual(expected);
    writeFileSync(path, gzipSync(content));
    expect((await runChildOnFile(path)).flows).toEqual(expected);
  }, 60_000);

  it('a consumer that waits between batches gets every line: reading stops while the reader holds a full buffer and starts again', async () => {
    const { Readable } = await import('node:stream');
    const big = Buffer.concat(Array.from({ length: 4 }, () => content));
    const ref = readFlows('-', { stdin: Readable.from([big]) });
    const expected = JSON.parse(JSON.stringify(await ref.toArray())) as unknown[];
    const slow = await runChild(big, ['slow']);
    expect(slow.stats.lines).toBe(ref.stats.lines);
    expect(slow.flows).toEqual(expected);
  }, 60_000);

  it('a run that stops early does not wait for a producer that keeps the pipe open', async () => {
    const t0 = Date.now();
    const r = await runChild(Buffer.concat([content, Buffer.from('not json\n')]), ['strict'], true);
    expect(r.error).toMatch(/^-:\d+: invalid JSON: /);
    // The producer never closes its end: the child ended on its own.
    expect(Date.now() - t0).toBeLessThan(20_000);
    // The same through the decompressor, which may be waiting on the descriptor's read.
    const t1 = Date.now();
    const z = await runChild(gzipSync(Buffer.concat([content, Buffer.from('not json\n')])), ['strict'], true);
    expect(z.error).toMatch(/^-:\d+: invalid JSON: /);
    expect(Date.now() - t1).toBeLessThan(20_000);
  }, 30_000);

  it('reads a named pipe given as a path (as `--flows <(hubble observe ...)` gives), plain and gzip', async () => {
    const { Readable } = await import('node:stream');
    const expected = await readFlows('-', { stdin: Readable.from([content]) }).toArray();
    for (const bytes of [content, gzipSync(content)]) {
      const fifo = join(dir, `fifo-${bytes === content ? 'plain' : 'gzip'}`);
      execFileSync('mkfifo', [fifo]);
      const data = join(dir, 'fifo-data');
      writeFileSync(data, bytes);
      const writer = spawn('sh', ['-c', 'cat "$1" > "$2"', 'sh', data, fifo], { stdio: 'ignore' });
      const done = new Promise((r) => writer.on('close', r));
      const got = await readFlows(fifo).toArray();
      await done;
      expect(JSON.parse(JSON.stringify(got))).toEqual(JSON.parse(JSON.stringify(expected)));
    }
  }, 30_000);

  it('a strict run on a named pipe stops at a bad line while the writer keeps it open', async () => {
    const fifo = join(dir, 'fifo-held');
    execFileSync('mkfifo', [fifo]);
    const data = join(dir, 'fifo-bad');
    writeFileSync(data, Buffer.concat([content.subarray(0, 50_000), Buffer.from('\nnot json\n')]));
    // The writer sends the lines, then holds the pipe open for a minute.
    const writer = spawn('sh', ['-c', 'exec 3>"$2"; cat "$1" >&3; exec sleep 60', 'sh', data, fifo], {
      stdio: 'ignore',
    });
    try {
      const t0 = Date.now();
      await expect(readFlows(fifo, { strict: true }).toArray()).rejects.toThrow(/invalid JSON/);
      expect(Date.now() - t0).toBeLessThan(20_000);
    } finally {
      writer.kill();
    }
  }, 30_000);
});

describe('a named pipe in a process that stops early', () => {
  // The reader's promise rejected at once, but its read of the pipe, blocking in the thread pool, kept
  // the process alive until the writer closed the pipe (with `--flows <(hubble observe --follow)`,
  // never): the command printed its error and did not exit.
  it('exits once the run ends, though the writer keeps the pipe open', async () => {
    const fifo = join(dir, 'fifo-exit');
    execFileSync('mkfifo', [fifo]);
    const data = join(dir, 'fifo-exit-bad');
    writeFileSync(data, Buffer.concat([sample, Buffer.from('not json\n')]));
    for (const gzip of [false, true]) {
      const src = gzip ? `${data}.gz` : data;
      if (gzip) writeFileSync(src, gzipSync(readFileSync(data)));
      const writer = spawn('sh', ['-c', 'exec 3>"$2"; cat "$1" >&3; exec sleep 25', 'sh', src, fifo], {
        stdio: 'ignore',
      });
      const child = spawn(
        process.execPath,
        [
          '-e',
          `import(${JSON.stringify(reader)}).then(({ readFlows }) => readFlows(${JSON.stringify(fifo)}, { strict: true }).toArray()).catch((e) => console.log(e.message))`,
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      try {
        const t0 = Date.now();
        const code = await new Promise<number | null>((done) => child.on('exit', done));
        expect(out).toMatch(/invalid JSON/);
        expect(code).toBe(0);
        expect(Date.now() - t0).toBeLessThan(20_000);
      } finally {
        child.kill();
        writer.kill();
      }
    }
  }, 60_000);
});
