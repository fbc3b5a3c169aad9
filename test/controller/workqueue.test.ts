import { describe, expect, it } from 'vitest';
import { WorkQueue } from '../../src/controller/workqueue.ts';

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

describe('WorkQueue', () => {
  it('processes a key added many times once, and never one key twice at the same time', async () => {
    const q = new WorkQueue();
    const seen: string[] = [];
    let running = 0;
    let maxRunning = 0;
    const done = q.run(async (k) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      seen.push(k);
      await tick(20);
      running--;
      return {};
    });
    for (let i = 0; i < 5; i++) q.add('a');
    q.add('b');
    await tick(10);
    q.add('a'); // while a is being processed: runs once more afterwards
    await tick(100);
    q.stop();
    await done;
    expect(seen).toEqual(['a', 'b', 'a']);
    expect(maxRunning).toBe(1);
  });

  it('retries failures with growing backoff and forgets on success', async () => {
    const q = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 1000 });
    const times: number[] = [];
    const done = q.run(() => {
      times.push(Date.now());
      return Promise.resolve(times.length < 4 ? { error: new Error('boom') } : {});
    });
    q.add('k');
    while (times.length < 4) await tick();
    q.stop();
    await done;
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    expect(gaps[0]).toBeGreaterThanOrEqual(9);
    expect(gaps[1]).toBeGreaterThanOrEqual(19);
    expect(gaps[2]).toBeGreaterThanOrEqual(39);
    expect(q.addRateLimited('k')).toBe(10); // forgotten after the success: back to the base delay
  });

  it('requeues after the requested delay', async () => {
    const q = new WorkQueue();
    let n = 0;
    const done = q.run(() => {
      n++;
      return Promise.resolve({ requeueAfter: 15 });
    });
    q.add('k');
    await tick(150);
    q.stop();
    await done;
    expect(n).toBeGreaterThanOrEqual(3);
    expect(n).toBeLessThanOrEqual(11);
  });

  it('retries a partly done attempt (retry) with backoff, well before its requeueAfter, and forgets on success', async () => {
    const q = new WorkQueue({ baseDelayMs: 1, maxDelayMs: 1000 });
    let n = 0;
    const done = q.run(() => {
      n++;
      // Refused writes twice, then all written: looked at again only at the (far) resync.
      return Promise.resolve(n < 3 ? { requeueAfter: 3_600_000, retry: true } : { requeueAfter: 3_600_000 });
    });
    q.add('k');
    for (let i = 0; i < 400 && n < 3; i++) await tick();
    q.stop();
    await done;
    expect(n).toBe(3);
    expect(q.addRateLimited('k')).toBe(1); // forgotten after the success: back to the base delay
  });

  it('retries a partly done attempt at its requeueAfter when that is sooner than the backoff', async () => {
    const q = new WorkQueue({ baseDelayMs: 1_000, maxDelayMs: 3_600_000 });
    let n = 0;
    const done = q.run(() => {
      n++;
      return Promise.resolve({ requeueAfter: 1, retry: true });
    });
    q.add('k');
    for (let i = 0; i < 400 && n < 2; i++) await tick();
    q.stop();
    await done;
    expect(n).toBeGreaterThanOrEqual(2);
    // Each counted as a failure: the backoff grew past its base.
    expect(q.addRateLimited('k')).toBeGreaterThanOrEqual(2_000);
  });
});
