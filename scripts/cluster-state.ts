/** State of the cluster started by `npm run cluster:up`, shared with `npm run cluster:down`. */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { cacheRoot } from '../test/cluster/binaries.ts';

export interface UpState {
  pid: number;
  dir: string;
  server: string;
  kubeconfigPath: string;
  binDir: string;
  kubernetesVersion: string;
}

export const STATE_FILE = join(dirname(cacheRoot()), 'cluster-up.json');
export const LOG_FILE = join(dirname(cacheRoot()), 'cluster-up.log');

export function readState(): UpState | undefined {
  if (!existsSync(STATE_FILE)) return undefined;
  return JSON.parse(readFileSync(STATE_FILE, 'utf8')) as UpState;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
