/**
 * Several `--flows` sources, one of which fails to close: every other source is still closed, and the
 * error reported is the one that stopped the run (a bad line under --strict, say), never the close
 * error over it; with nothing else wrong, the close error names its source.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import type * as FsPromises from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { readFlows } from '../../src/flows/reader.ts';

/** Paths whose file handles close and then throw, as a failing close(2) would after releasing it. */
const failing = new Set<string>();

vi.mock('node:fs/promises', async (importOriginal) => {
  const fs = await importOriginal<typeof FsPromises>();
  const open = async (...args: Parameters<typeof fs.open>) => {
    const fh = await fs.open(...args);
    if (failing.has(String(args[0]))) {
      const close = fh.close.bind(fh);
      fh.close = async () => {
        await close();
        throw Object.assign(new Error('EIO: i/o error, close'), { code: 'EIO' });
      };
    }
    return fh;
  };
  return { ...fs, open, default: { ...fs, open } };
});

const dir = mkdtempSync(join(tmpdir(), 'microseg-close-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeEach(() => failing.clear());

const openFiles = () => readdirSync('/proc/self/fd').length;
const T0 = Date.UTC(2026, 2, 2, 10, 0, 0);

/** A generic record `i` seconds after T0. */
const record = (i: number) =>
  JSON.stringify({
    time: T0 + i * 1000,
    src: { ip: '10.0.0.1' },
    dst: { ip: '10.0.0.2' },
    port: 5432,
    srcPort: 10000 + i,
  });

function file(name: string, lines: readonly string[]): string {
  const p = join(dir, name);
  writeFileSync(p, lines.map((l) => l + '\n').join(''));
  return p;
}

const lines = (from: number, n: number) => Array.from({ length: n }, (_, i) => record(from + i));

describe('a source that fails to close', () => {
  it('the error that stopped the run is the one reported, and every source is closed', async () => {
    // b holds a bad line: with --strict the run stops there, while a and c are still open.
    const a = file('a.jsonl', lines(0, 2000));
    const b = file('b.jsonl', [...lines(0, 10), '{"time": "yesterday"}', ...lines(10, 2000)]);
    const c = file('c.jsonl', lines(0, 2000));
    for (const fails of [[a], [b], [a, b, c]]) {
      for (const f of fails) failing.add(f);
      const before = openFiles();
      const run = readFlows([a, b, c], { strict: true, blockSize: 4096 }).toArray();
      await expect(run).rejects.toThrow(`${b}:11: `);
      await expect(run).rejects.not.toThrow('cannot close');
      expect(openFiles()).toBe(before);
      failing.clear();
    }
  });

  it('a bad line of one source alone: its own close error does not hide it', async () => {
    const b = file('only.jsonl', [...lines(0, 3), 'not json', ...lines(3, 3)]);
    failing.add(b);
    const before = openFiles();
    await expect(readFlows([b], { strict: true }).toArray()).rejects.toThrow(`${b}:4: invalid JSON`);
    expect(openFiles()).toBe(before);
  });

  it('with nothing else wrong, is the error, naming the source, once every source is closed', async () => {
    const a = file('ok-a.jsonl', lines(0, 50));
    const b = file('ok-b.jsonl', lines(0, 50));
    failing.add(b);
    const before = openFiles();
    await expect(readFlows([a, b]).toArray()).rejects.toThrow(`${b}: cannot close: EIO: i/o error, close`);
    expect(openFiles()).toBe(before);
  });

  it('when the caller stops early, every source is closed and the close error is reported', async () => {
    const big = (n: string) => file(`big-${n}.jsonl`, lines(0, 3000));
    const sources = [big('a'), big('b'), big('c')];
    failing.add(sources[1]!);
    const before = openFiles();
    const stop = async () => {
      for await (const _ of readFlows(sources, { blockSize: 4096 }).batches()) break;
    };
    await expect(stop()).rejects.toThrow(`${sources[1]!}: cannot close`);
    expect(openFiles()).toBe(before);
  });
});
