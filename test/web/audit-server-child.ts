/**
 * A server of `POST /api/v1/audit` in a process of its own, for the tests that send it bodies that
 * might take the process down (audit-limits.test.ts): it prints `port <n>` once it listens. Its
 * parsing thread's heap is `PARSE_HEAP_MB`, its time limit `PARSE_TIME_LIMIT_MS` and its module
 * `PARSE_WORKER` (relative to this file) when those are set in its environment. Asked `'loop'` over
 * its IPC channel, it answers the longest its event loop was held since it last answered (in ms).
 */
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createApp } from '../../src/server/app.ts';
import { ObjectsParser } from '../../src/server/parse.ts';
import { analysisSource } from '../../src/server/source.ts';
import { fixtureAnalysis } from './helpers.ts';

const { snapshot, analysis } = await fixtureAnalysis();
const { PARSE_HEAP_MB: heapMb, PARSE_TIME_LIMIT_MS: timeLimitMs, PARSE_WORKER: workerFile } = process.env;
const parser = new ObjectsParser({
  ...(heapMb === undefined ? {} : { heapMb: Number(heapMb) }),
  ...(timeLimitMs === undefined ? {} : { timeLimitMs: Number(timeLimitMs) }),
  ...(workerFile === undefined ? {} : { workerFile: new URL(workerFile, import.meta.url) }),
});
const app = createApp(analysisSource(analysis, { snapshot }), {
  parser,
  onInternalError: (err) => console.error('internal error:', err),
});
const server = app.listen(0, '127.0.0.1', () =>
  console.log(`port ${(server.address() as AddressInfo).port}`),
);

// The longest the event loop was held, for tests that check a request does not hold it.
const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();
process.on('message', (m) => {
  if (m !== 'loop') return;
  process.send?.({ loopMaxMs: loop.max / 1e6 });
  loop.reset();
});
