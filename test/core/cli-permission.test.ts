/**
 * A path the CLI may not read (EACCES, injected: the tests may run as root, whom no file refuses) is
 * said to be so, "permission denied", never "no such file": the path is there, its permissions are
 * what to fix.
 */
import type * as FsPromises from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { captureIO, EXIT } from '../../src/cli/io.ts';
import { runCli } from '../../src/cli/main.ts';

/** Paths whose stat and open fail as the file system says to a user without the permission. */
const denied = new Set<string>();

vi.mock('node:fs/promises', async (importOriginal) => {
  const fs = await importOriginal<typeof FsPromises>();
  const refuse = (call: string, path: unknown) => {
    if (denied.has(String(path)))
      throw Object.assign(new Error(`EACCES: permission denied, ${call} '${String(path)}'`), {
        code: 'EACCES',
        errno: -13,
        syscall: call,
        path: String(path),
      });
  };
  const stat = async (...args: Parameters<typeof fs.stat>) => {
    refuse('stat', args[0]);
    return fs.stat(...args);
  };
  const open = async (...args: Parameters<typeof fs.open>) => {
    refuse('open', args[0]);
    return fs.open(...args);
  };
  return { ...fs, stat, open, default: { ...fs, stat, open } };
});

beforeEach(() => denied.clear());

const fixture = (p: string) => fileURLToPath(new URL(`../fixtures/${p}`, import.meta.url));

async function cli(args: string[]) {
  const io = captureIO();
  const code = await runCli(args, io);
  return { code, out: io.stdout, err: io.stderr };
}

describe('a path the CLI may not read', () => {
  it('is "permission denied", not "no such file", as --cluster or --flows', async () => {
    const cluster = fixture('verify/shop-cluster.yaml');
    const flows = fixture('flows/generic.jsonl');
    for (const [args, path] of [
      [['recommend', '--flows', flows, '--cluster', cluster], cluster],
      [['recommend', '--flows', flows, '--cluster', cluster], flows],
    ] as const) {
      denied.clear();
      denied.add(path);
      expect(await cli([...args]), path).toEqual({
        code: EXIT.usage,
        out: '',
        err: `microseg recommend: ${path}: cannot read: permission denied\n`,
      });
    }
  });
});
