/** `npm run cluster:down` — stop the cluster started by `npm run cluster:up`. */
import { rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { isAlive, readState, STATE_FILE } from './cluster-state.ts';

const state = readState();
if (!state || !isAlive(state.pid)) {
  await rm(STATE_FILE, { force: true });
  process.stdout.write('No cluster is up.\n');
} else {
  process.kill(state.pid, 'SIGTERM');
  const deadline = Date.now() + 30_000;
  while (isAlive(state.pid) && Date.now() < deadline) await sleep(100);
  if (isAlive(state.pid)) {
    process.stderr.write(`cluster (pid ${state.pid}) did not stop within 30 s\n`);
    process.exitCode = 1;
  } else {
    process.stdout.write(`Stopped the cluster at ${state.server}.\n`);
  }
}
