import { describe, expect, it } from 'vitest';
import { KeyQueue, PriorityGate } from '../../src/isolate/queue.ts';

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

describe('KeyQueue', () => {
  it('never runs a key twice at once; a key added while running runs once more afterwards', async () => {
    const runs: string[] = [];
    let active = 0;
    let maxActive = 0;
    const q = new KeyQueue(async (k) => {
      active++;
      maxActive = Math.max(maxActive, active);
      runs.push(k);
      await tick(10);
      active--;
      return {};
    });
    q.add('a');
    q.add('a');
    await tick(2);
    q.add('a');
    q.add('a');
    await tick(40);
    await q.idle();
    expect(runs).toEqual(['a', 'a']);
    expect(maxActive).toBe(1);
    q.stop();
  });

  it('runs different keys concurrently up to the limit', async () => {
    let active = 0;
    let maxActive = 0;
    const q = new KeyQueue(
      async () => {
        active++;
        maxActive = Math.max(maxActive, active);
        await tick(10);
        active--;
        return {};
      },
      { concurrency: 3 },
    );
    for (const k of ['a', 'b', 'c', 'd', 'e']) q.add(k);
    await q.idle();
    expect(maxActive).toBe(3);
    q.stop();
  });

  it('retries failures with growing backoff and honours requeueAfterMs', async () => {
    const times: number[] = [];
    const errors: string[] = [];
    const t0 = Date.now();
    const q = new KeyQueue(
      async () => {
        await tick();
        times.push(Date.now() - t0);
        if (times.length < 3) throw new Error(`fail ${times.length}`);
        return times.length === 3 ? { requeueAfterMs: 30 } : {};
      },
      { baseBackoffMs: 20, onError: (_k, e) => errors.push((e as Error).message) },
    );
    q.add('k');
    await tick(200);
    expect(errors).toEqual(['fail 1', 'fail 2']);
    expect(times).toHaveLength(4);
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(18);
    expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(38);
    expect(times[3]! - times[2]!).toBeGreaterThanOrEqual(28);
    q.stop();
  });
});

describe('PriorityGate', () => {
  it('holds background work while foreground work is in flight, then runs up to the limit', async () => {
    const t = 0;
    const gate = new PriorityGate(2, 1000, () => t);
    const leave = gate.enterForeground();
    const order: string[] = [];
    const works = ['a', 'b', 'c'].map(async (name) => {
      const done = await gate.acquire();
      order.push(name);
      return done;
    });
    await tick();
    expect(order).toEqual([]);
    expect(gate.stats()).toEqual({ waiting: 3, running: 0, foreground: 1 });
    leave();
    await tick();
    expect(order).toEqual(['a', 'b']);
    (await works[0]!)();
    await tick();
    expect(order).toEqual(['a', 'b', 'c']);
    (await works[1]!)();
    (await works[2]!)();
    expect(gate.stats()).toEqual({ waiting: 0, running: 0, foreground: 0 });
  });

  it('lets overdue background work through one at a time under endless foreground work', async () => {
    let t = 0;
    const gate = new PriorityGate(4, 50, () => t);
    gate.enterForeground();
    const started: number[] = [];
    const works = [1, 2].map(async (n) => {
      const done = await gate.acquire();
      started.push(n);
      return done;
    });
    await tick();
    expect(started).toEqual([]);
    t = 60;
    await tick(70); // the gate's own timer re-checks once the oldest is overdue
    expect(started).toEqual([1]);
    expect(gate.stats().running).toBe(1);
    (await works[0]!)();
    await tick();
    expect(started).toEqual([1, 2]);
    (await works[1]!)();
  });
});
