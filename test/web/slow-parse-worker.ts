/**
 * The parsing thread of `ObjectsParser` made slow on purpose: a body holding `slow-parse` is never
 * answered (the thread is held, as by a body that takes very long to parse); any other is parsed by
 * parse-worker.ts, whose listener comes after this one.
 */
import { parentPort } from 'node:worker_threads';
import type { ParseRequest } from '../../src/server/parse.ts';

parentPort!.on('message', (req: ParseRequest) => {
  if (!req.text.includes('slow-parse')) return;
  const flag = new Int32Array(new SharedArrayBuffer(4));
  // Held until the thread is stopped.
  for (;;) Atomics.wait(flag, 0, 0);
});
await import('../../src/server/parse-worker.ts');
