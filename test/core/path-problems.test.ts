/**
 * What the CLI says of a file it cannot read is worded the same for every flag (readProblem,
 * src/flows/reader.ts): a path through a file (file.txt/x) is "a part of the path is not a directory",
 * not "no such file", and a file it may not read is "permission denied", not the system's raw
 * `EACCES: ...` (injected here: the tests may run as root, whom no file refuses).
 */
import type * as Fs from 'node:fs';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { loadKubeConfig } from '../../src/cli/kubeconfig.ts';
import { cli, writeKubeconfig } from '../cli-run.ts';

/** Paths whose stat, and paths whose reading, fail as the file system says to a user without the permission. */
const statDenied = new Set<string>();
const readDenied = new Set<string>();

vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof Fs>();
  const refuse = (call: string, path: unknown, paths: Set<string>) => {
    if (paths.has(String(path)))
      throw Object.assign(new Error(`EACCES: permission denied, ${call} '${String(path)}'`), {
        code: 'EACCES',
        errno: -13,
        syscall: call,
        path: String(path),
      });
  };
  const statSync = ((...args: Parameters<typeof fs.statSync>) => {
    refuse('stat', args[0], statDenied);
    return fs.statSync(...args);
  }) as typeof fs.statSync;
  const readFileSync = ((...args: Parameters<typeof fs.readFileSync>) => {
    refuse('open', args[0], readDenied);
    return fs.readFileSync(...args);
  }) as typeof fs.readFileSync;
  return { ...fs, statSync, readFileSync, default: { ...fs, statSync, readFileSync } };
});

const dir = mkdtempSync(join(tmpdir(), 'microseg-path-problems-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const kubeconfig = writeKubeconfig(join(dir, 'kubeconfig.yaml'), 'https://127.0.0.1:1');
const file = join(dir, 'file.txt');
writeFileSync(file, 'token\n');
const through = join(file, 'x');

beforeEach(() => {
  statDenied.clear();
  readDenied.clear();
});

const kubeconfigProblem = (flag: string, env: NodeJS.ProcessEnv = {}): string => {
  try {
    loadKubeConfig(flag === '' ? undefined : flag, { env, serviceAccountToken: join(dir, 'no-token') });
  } catch (err) {
    return (err as Error).message;
  }
  return 'loaded';
};

describe('a kubeconfig that cannot be read', () => {
  it('through a file is "a part of the path is not a directory", not "no such file"', () => {
    expect(kubeconfigProblem(through)).toBe(`--kubeconfig ${through}: a part of the path is not a directory`);
    expect(kubeconfigProblem('', { KUBECONFIG: through })).toBe(
      `$KUBECONFIG names ${through}: a part of the path is not a directory`,
    );
  });

  it('that may not be read is "permission denied", whether stat or reading refuses it', () => {
    expect(kubeconfigProblem(kubeconfig)).toBe('loaded');
    statDenied.add(kubeconfig);
    expect(kubeconfigProblem(kubeconfig)).toBe(`--kubeconfig ${kubeconfig}: permission denied`);
    statDenied.clear();
    readDenied.add(kubeconfig);
    expect(kubeconfigProblem(kubeconfig)).toBe(`--kubeconfig ${kubeconfig}: permission denied`);
  });
});

describe("the controller's file flags", () => {
  const controller = (args: string[]) => cli(['controller', '--kubeconfig', kubeconfig, ...args]);

  it('say a path through a file is one, and a file that may not be read is so, in the same words', async () => {
    const cases: [string[], string][] = [
      [['--push-token-file', through], `--push-token-file ${through}: a part of the path is not a directory`],
      [
        ['--hubble-relay', '127.0.0.1:1', '--hubble-tls-ca', through],
        `--hubble-tls-ca ${through}: a part of the path is not a directory`,
      ],
      [['--push-token-file', file], `--push-token-file ${file}: permission denied`],
    ];
    readDenied.add(file);
    for (const [args, message] of cases) {
      expect(await controller(args), args.join(' ')).toEqual({
        code: 2,
        out: '',
        err: `microseg controller: ${message}\n`,
      });
    }
  });
});
