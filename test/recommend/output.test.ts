import { mkdir, mkdtemp, readFile, readdir, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { prepareOutputDir, writeOutputFiles } from '../../src/cli/output.ts';
import { UsageError } from '../../src/cli/io.ts';

/** Every entry of `dir` (dot files included) with its text, or `<dir>` for a directory. */
async function contents(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await readdir(dir, { withFileTypes: true }))
    out[e.name] = e.isDirectory() ? '<dir>' : await readFile(join(dir, e.name), 'utf8');
  return out;
}

const denied = (path: string) =>
  Object.assign(new Error(`EACCES: permission denied, rename '${path}'`), { code: 'EACCES' });

/** A rename whose call number `n` (from 0) fails, and that records the calls. */
function failingRename(n: number) {
  const calls: [string, string][] = [];
  const fn = async (from: string, to: string) => {
    calls.push([from, to]);
    if (calls.length - 1 === n) throw denied(from);
    await rename(from, to);
  };
  return { fn, calls };
}

const NEW: [string, string[]][] = [
  ['a.yaml', ['new ', 'a\n']],
  ['b.yaml', ['new b\n']],
  ['c.yaml', ['new c\n']],
  ['report.json', ['{"new": true}\n']],
];
const before = {
  'a.yaml': 'old a\n',
  'b.yaml': 'old b\n',
  'gone.yaml': 'old gone\n',
  'notes.yaml': 'mine\n',
  'report.json': '{"old": true}\n',
};

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'microseg-output-'));
  for (const [name, text] of Object.entries(before)) await writeFile(join(dir, name), text);
});

describe('writeOutputFiles: all or nothing', () => {
  it('writes every file and removes those asked, leaving nothing else behind', async () => {
    const removed = await writeOutputFiles(dir, NEW, { remove: ['gone.yaml', 'no-such.yaml'] });
    expect(removed).toEqual(['gone.yaml']);
    expect(await contents(dir)).toEqual({
      'a.yaml': 'new a\n',
      'b.yaml': 'new b\n',
      'c.yaml': 'new c\n',
      'notes.yaml': 'mine\n',
      'report.json': '{"new": true}\n',
    });
  });

  it('a place that is a directory, even the last one, fails before any rename', async () => {
    await mkdir(join(dir, 'c.yaml'));
    const { fn, calls } = failingRename(-1);
    const err = await writeOutputFiles(dir, NEW, { remove: ['gone.yaml'], rename: fn }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toBe(`--out ${dir}: cannot write: c.yaml: is a directory`);
    expect(calls).toEqual([]);
    expect(await contents(dir)).toEqual({ ...before, 'c.yaml': '<dir>' });
  });

  it('a file to remove that is now a directory fails before any rename', async () => {
    const { fn, calls } = failingRename(-1);
    await mkdir(join(dir, 'dir.yaml'));
    const err = await writeOutputFiles(dir, NEW, { remove: ['gone.yaml', 'dir.yaml'], rename: fn }).catch(
      (e: unknown) => e,
    );
    expect((err as Error).message).toBe(`--out ${dir}: cannot remove: dir.yaml: is a directory`);
    expect(calls).toEqual([]);
    expect(await contents(dir)).toEqual({ ...before, 'dir.yaml': '<dir>' });
  });

  it('a rename failing at any point puts back what was replaced or removed and names the file', async () => {
    // The renames of a run that succeeds: the file to remove aside, then each old file aside and its
    // new one into place (the last one straight over the old file).
    const all = failingRename(-1);
    const probe = await mkdtemp(join(tmpdir(), 'microseg-output-'));
    for (const [name, text] of Object.entries(before)) await writeFile(join(probe, name), text);
    await writeOutputFiles(probe, NEW, { remove: ['gone.yaml'], rename: all.fn });
    const names = all.calls.map(
      ([from, to]) => `${from.slice(probe.length + 1)} -> ${to.slice(probe.length + 1)}`,
    );
    const pid = process.pid;
    expect(names).toEqual([
      `gone.yaml -> .gone.yaml.${pid}.old`,
      `a.yaml -> .a.yaml.${pid}.old`,
      `.a.yaml.${pid}.tmp -> a.yaml`,
      `b.yaml -> .b.yaml.${pid}.old`,
      `.b.yaml.${pid}.tmp -> b.yaml`,
      `.c.yaml.${pid}.tmp -> c.yaml`,
      `.report.json.${pid}.tmp -> report.json`,
    ]);
    const named = ['gone.yaml', 'a.yaml', 'a.yaml', 'b.yaml', 'b.yaml', 'c.yaml', 'report.json'];
    for (const [n, name] of named.entries()) {
      const { fn, calls } = failingRename(n);
      const err = await writeOutputFiles(dir, NEW, { remove: ['gone.yaml'], rename: fn }).catch(
        (e: unknown) => e,
      );
      expect((err as Error).message, `rename ${n} failing`).toBe(
        `--out ${dir}: cannot ${n === 0 ? 'remove' : 'write'}: ${name}: permission denied`,
      );
      expect(await contents(dir), `rename ${n} failing`).toEqual(before);
      expect(calls.length).toBeGreaterThan(n);
    }
  });

  it('names what could not be put back', async () => {
    // The last new file fails to go into place, and then the first old file fails to come back.
    let n = 0;
    const fn = async (from: string, to: string) => {
      n++;
      if (n === 5 || (n > 5 && to === join(dir, 'a.yaml'))) throw denied(from);
      await rename(from, to);
    };
    const err = await writeOutputFiles(dir, NEW.slice(0, 3), { rename: fn }).catch((e: unknown) => e);
    expect((err as Error).message).toBe(
      `--out ${dir}: cannot write: c.yaml: permission denied; could not put back a.yaml (left as .a.yaml.${process.pid}.old)`,
    );
    const got = await contents(dir);
    expect(got[`.a.yaml.${process.pid}.old`]).toBe('old a\n');
    expect(got['b.yaml']).toBe('old b\n');
    expect(got['c.yaml']).toBeUndefined();
  });

  it('an error that is not of the file system is given as it is, with the directory as it was', async () => {
    const boom = new Error('rendering failed');
    function* pieces() {
      yield 'half';
      throw boom;
    }
    const err = await writeOutputFiles(dir, [NEW[0]!, ['b.yaml', pieces()]]).catch((e: unknown) => e);
    expect(err).toBe(boom);
    expect(await contents(dir)).toEqual(before);
  });
});

describe('prepareOutputDir', () => {
  it('is not stopped by a probe file a killed run left behind (process ids repeat in containers)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'microseg-probe-'));
    const left = `.microseg-probe.${process.pid}.tmp`;
    await writeFile(join(dir, left), '');
    const out = await prepareOutputDir(dir);
    expect(out.made).toEqual([]);
    // Its own probe is gone; what was there is left as it was.
    expect(await readdir(dir)).toEqual([left]);
  });
});
