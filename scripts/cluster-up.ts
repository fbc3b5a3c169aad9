/**
 * `npm run cluster:up` — start a local kube-apiserver + etcd (built from Go modules, see
 * docs/testing.md) in the background and print how to use it with kubectl.
 * `npm run cluster:down` stops it. `--foreground` keeps it attached to the terminal (Ctrl-C stops).
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ensureBinaries } from '../test/cluster/binaries.ts';
import { startCluster } from '../test/cluster/cluster.ts';
import { isAlive, LOG_FILE, readState, STATE_FILE, type UpState } from './cluster-state.ts';

function instructions(s: UpState): string {
  return [
    `kube-apiserver ${s.kubernetesVersion} is running at ${s.server} (data in ${s.dir}).`,
    'Use it with kubectl (built alongside the server):',
    '',
    `  export KUBECONFIG=${s.kubeconfigPath}`,
    `  export PATH=${s.binDir}:$PATH`,
    '  kubectl get namespaces',
    '',
    'No controller-manager, scheduler or kubelet runs: set pod IPs through pods/status.',
    'Stop it with: npm run cluster:down',
    '',
  ].join('\n');
}

async function foreground(): Promise<void> {
  const cluster = await startCluster({ log: (l) => process.stderr.write(`${l}\n`) });
  const state: UpState = {
    pid: process.pid,
    dir: cluster.dir,
    server: cluster.server,
    kubeconfigPath: cluster.kubeconfigPath,
    binDir: cluster.binaries.dir,
    kubernetesVersion: cluster.binaries.kubernetesVersion,
  };
  await mkdir(dirname(STATE_FILE), { recursive: true });
  await writeFile(STATE_FILE, `${JSON.stringify(state, null, 2)}\n`);
  process.stdout.write(instructions(state));
  let stopping = false;
  const shutdown = (): void => {
    if (stopping) return;
    stopping = true;
    void cluster
      .stop()
      .then(() => rm(STATE_FILE, { force: true }))
      .then(() => process.exit(0));
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
  process.on('SIGHUP', shutdown);
}

async function background(): Promise<number> {
  const existing = readState();
  if (existing && isAlive(existing.pid)) {
    process.stdout.write(`A cluster is already up.\n${instructions(existing)}`);
    return 0;
  }
  await rm(STATE_FILE, { force: true });
  // Build in the foreground so the progress message is visible.
  await ensureBinaries();
  await mkdir(dirname(LOG_FILE), { recursive: true });
  const logFd = openSync(LOG_FILE, 'w');
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--foreground'], {
    detached: true,
    stdio: ['ignore', logFd, logFd],
  });
  closeSync(logFd);
  child.unref();
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const state = readState();
    if (state !== undefined && state.pid === child.pid) {
      process.stdout.write(instructions(state));
      return 0;
    }
    if (child.exitCode !== null || (child.pid !== undefined && !isAlive(child.pid))) break;
    await sleep(200);
  }
  process.stderr.write(`cluster:up failed; log ${LOG_FILE}:\n${readFileSync(LOG_FILE, 'utf8')}\n`);
  if (child.pid !== undefined && isAlive(child.pid)) process.kill(child.pid, 'SIGTERM');
  return 1;
}

const { values } = parseArgs({ options: { foreground: { type: 'boolean', default: false } } });
if (values.foreground) await foreground();
else process.exitCode = await background();
