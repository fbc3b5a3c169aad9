// The harness itself: lifecycle of a private cluster, clear errors, and the project's own CRDs
// installed with kubectl on a real server.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { type Cluster, eventually, HarnessError, startCluster } from '../cluster/index.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** Process ids whose command line mentions `needle` (Linux /proc). */
function processesMentioning(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(needle)) pids.push(Number(entry));
    } catch {
      // the process went away
    }
  }
  return pids;
}

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster({ log: () => undefined });
});

afterAll(async () => {
  await cluster?.stop();
});

describe('a private cluster', () => {
  it('writes an admin kubeconfig that kubectl uses, and runs with a bounded footprint', async () => {
    const kubeconfig = parse(await readFile(cluster.kubeconfigPath, 'utf8')) as {
      clusters: { cluster: { server: string } }[];
      users: { name: string }[];
    };
    expect(kubeconfig.clusters[0]!.cluster.server).toBe(cluster.server);
    expect(kubeconfig.users[0]!.name).toBe('microseg-admin');
    expect(cluster.server).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);

    const res = await cluster.kubectl(['get', 'namespaces', '-o', 'name']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout.split('\n')).toContain('namespace/kube-system');

    const rssKiB = Number(
      /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${cluster.apiserverPid()}/status`, 'utf8'))?.[1],
    );
    expect(rssKiB).toBeGreaterThan(0);
    expect(rssKiB).toBeLessThan(1024 * 1024); // under 1 GiB
  });

  it('installs every CRD of the project (crds/*.yaml) and serves its kinds', async () => {
    const files = (await readdir(join(root, 'crds')))
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => join(root, 'crds', f))
      .filter((f) => /^kind:\s*CustomResourceDefinition\s*$/m.test(readFileSync(f, 'utf8')));
    expect(files.length).toBeGreaterThan(0);
    const applied = await cluster.kubectl(['apply', ...files.flatMap((f) => ['-f', f])]);
    expect(applied.code, applied.stderr).toBe(0);

    for (const file of files) {
      const crd = parse(readFileSync(file, 'utf8')) as {
        metadata: { name: string };
        spec: { names: { plural: string } };
      };
      const established = await cluster.kubectl([
        'wait',
        '--for=condition=Established',
        '--timeout=30s',
        `crd/${crd.metadata.name}`,
      ]);
      expect(established.code, established.stderr).toBe(0);
      const got = await cluster.kubectl(['get', crd.metadata.name, '--all-namespaces']);
      expect(got.code, `${crd.metadata.name}: ${got.stderr}`).toBe(0);
      expect(got.stderr.trim()).toBe('No resources found');
    }
  });

  it('refuses a malformed ServiceAccount reference', async () => {
    await expect(cluster.kubeconfigFor({ serviceAccount: 'no-namespace' })).rejects.toThrow(
      'serviceAccount must be "namespace/name", got "no-namespace"',
    );
  });
});

describe('startCluster failures', () => {
  it('reports a kube-apiserver that exits, with its log, and leaves no process behind', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'microseg-badflag-'));
    try {
      const err = await startCluster({ dir, apiserverFlags: ['--no-such-flag'], log: () => undefined }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(HarnessError);
      expect((err as Error).message).toMatch(
        /^kube-apiserver \/readyz: process exited \(1\) before it was ready; last log lines:\n/,
      );
      expect((err as Error).message).toContain('unknown flag: --no-such-flag');
      expect(processesMentioning(dir)).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('servers do not outlive a test process that is killed', async () => {
    const child = spawn(
      process.execPath,
      [fileURLToPath(new URL('../cluster/testdata/start-and-wait.ts', import.meta.url))],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const dir = await new Promise<string>((resolve, reject) => {
      child.stdout.setEncoding('utf8').once('data', (line: string) => resolve(line.trim()));
      child.once('exit', (code) => reject(new Error(`child exited early (${code})`)));
    });
    try {
      expect(processesMentioning(dir)).toHaveLength(2);
      child.kill('SIGKILL');
      await eventually('servers gone', () => processesMentioning(dir).length === 0, 20_000);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('stop() ends both processes and removes the directory it created', async () => {
    const c = await startCluster({ log: () => undefined });
    expect(processesMentioning(c.dir)).toHaveLength(2); // etcd and kube-apiserver
    await c.stop();
    expect(processesMentioning(c.dir)).toEqual([]);
    expect(existsSync(c.dir)).toBe(false);
    await expect(c.restart()).rejects.toThrow('restart() after stop()');
  });
});
