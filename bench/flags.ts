/**
 * Benchmarks measure what a microseg process does, so they run with the V8 flags and environment every
 * microseg process starts with (src/cli/node-flags.ts): the young generation's size and how far the old
 * generation may grow between full collections change how much time goes to collecting, by 5-10% on
 * the ingest path.
 */
import { spawnSync } from 'node:child_process';
import { NODE_ENV, NODE_FLAGS } from '../src/cli/node-flags.ts';

/** Whether this process runs with every microseg V8 flag and environment variable. */
function hasProductFlags(): boolean {
  return (
    NODE_FLAGS.every((f) => process.execArgv.includes(f)) &&
    Object.entries(NODE_ENV).every(([k, v]) => process.env[k] === v)
  );
}

/**
 * Runs this script again with microseg's flags and environment when it was started without them, and
 * exits with that run's status; returns when they are already in place, or when
 * MICROSEG_BENCH_AS_STARTED=1 asks to measure the process as it was started (to compare flags).
 */
export function withProductFlags(): void {
  if (hasProductFlags() || process.env.MICROSEG_BENCH_AS_STARTED === '1') return;
  const r = spawnSync(
    process.execPath,
    [...NODE_FLAGS, ...process.execArgv.filter((a) => !NODE_FLAGS.includes(a)), ...process.argv.slice(1)],
    { stdio: 'inherit', env: { ...process.env, ...NODE_ENV } },
  );
  process.exit(r.status ?? 1);
}
