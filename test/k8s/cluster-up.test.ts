// `npm run cluster:up` / `cluster:down` as a user runs them, with the state file in a temp
// directory so a cluster someone started by hand is not touched.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheRoot } from '../cluster/binaries.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
let home: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'microseg-cluster-up-test-'));
  // the binaries stay where they are; only the state file and log move to `home`
  await symlink(cacheRoot(), join(home, 'apiserver'));
  env = { ...process.env, MICROSEG_K8S_CACHE: join(home, 'apiserver') };
});

afterAll(async () => {
  await run('scripts/cluster-down.ts');
  await rm(home, { recursive: true, force: true });
});

function run(script: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, script)], {
      cwd: root,
      env: { ...env, ...extraEnv },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout }));
  });
}

function kubectl(
  path: string,
  kubeconfig: string,
  args: string[],
): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(path, args, {
      env: { ...process.env, KUBECONFIG: kubeconfig },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout }));
  });
}

function processesMentioning(needle: string): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .filter((e) => {
      try {
        return readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(needle);
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe('npm run cluster:up / cluster:down', () => {
  it('starts a background cluster, prints the export lines, is idempotent, and stops cleanly', async () => {
    const up = await run('scripts/cluster-up.ts');
    expect(up.code).toBe(0);
    const kubeconfig = /^ {2}export KUBECONFIG=(\S+)$/m.exec(up.stdout)?.[1];
    const binDir = /^ {2}export PATH=(\S+):\$PATH$/m.exec(up.stdout)?.[1];
    expect(kubeconfig, up.stdout).toBeDefined();
    expect(binDir, up.stdout).toBeDefined();
    expect(up.stdout).toContain('Stop it with: npm run cluster:down');

    const ns = await kubectl(join(binDir!, 'kubectl'), kubeconfig!, [
      'get',
      'namespace',
      'default',
      '-o',
      'name',
    ]);
    expect(ns).toEqual({ code: 0, stdout: 'namespace/default\n' });

    const again = await run('scripts/cluster-up.ts');
    expect(again.code).toBe(0);
    expect(again.stdout.startsWith('A cluster is already up.\n')).toBe(true);
    expect(again.stdout).toContain(`export KUBECONFIG=${kubeconfig}`);

    const state = JSON.parse(readFileSync(join(home, 'cluster-up.json'), 'utf8')) as {
      dir: string;
      server: string;
    };
    expect(processesMentioning(state.dir)).toHaveLength(2);

    const down = await run('scripts/cluster-down.ts');
    expect(down).toEqual({ code: 0, stdout: `Stopped the cluster at ${state.server}.\n` });
    expect(processesMentioning(state.dir)).toEqual([]);
    expect(existsSync(state.dir)).toBe(false);
    expect(existsSync(join(home, 'cluster-up.json'))).toBe(false);

    expect(await run('scripts/cluster-down.ts')).toEqual({ code: 0, stdout: 'No cluster is up.\n' });
  });
});
