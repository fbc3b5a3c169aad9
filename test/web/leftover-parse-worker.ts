/**
 * The parsing thread of `ObjectsParser` made to keep memory between requests, as uncollected garbage of
 * a large body can: a body holding `keep-50mb` leaves about 50 MB held after it is answered; one holding
 * `use-60mb` holds about 60 MB for 300 ms while it is parsed (the heap watch looks meanwhile). Any body
 * is then parsed by parse-worker.ts, whose listener comes after this one.
 */
import { parentPort } from 'node:worker_threads';
import type { ParseRequest } from '../../src/server/parse.ts';

/** About `mb` MB of the heap: arrays of 131,072 doubles (1 MB each). */
function megabytes(mb: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < mb; i++) {
    const chunk = new Array<number>(131_072);
    for (let j = 0; j < chunk.length; j++) chunk[j] = j + 0.5;
    out.push(chunk);
  }
  return out;
}
const kept: number[][][] = [];

parentPort!.on('message', (req: ParseRequest) => {
  if (req.text.includes('keep-50mb')) kept.push(megabytes(50));
  if (req.text.includes('use-60mb')) {
    const held = megabytes(60);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
    if (held.length === 0) throw new Error('unreachable');
  }
});
await import('../../src/server/parse-worker.ts');
