import { describe, expect, it } from 'vitest';
import type { Flow } from '../../src/flows/types.ts';
import { FlowQueue } from '../../src/telemetry/queue.ts';

const flow = (port: number): Flow => ({
  time: port,
  src: { pod: 'a' },
  dst: { pod: 'b' },
  protocol: 'TCP',
  port,
  verdict: 'FORWARDED',
  input: 'generic',
});
const flows = (from: number, n: number) => Array.from({ length: n }, (_, i) => flow(from + i));
const portsOf = (fs: Flow[]) => fs.map((f) => f.port);

describe('FlowQueue', () => {
  it('rejects a capacity that is not a positive integer and bad water marks', () => {
    expect(() => new FlowQueue({ capacity: 0 })).toThrow('queue capacity must be a positive integer, got 0');
    expect(() => new FlowQueue({ capacity: 1.5 })).toThrow(
      'queue capacity must be a positive integer, got 1.5',
    );
    expect(() => new FlowQueue({ capacity: 10, highWater: 0.4, lowWater: 0.5 })).toThrow(
      'queue water marks must satisfy 0 <= lowWater <= highWater <= 1',
    );
  });

  it('drops the newest flows that do not fit, counting them per source', () => {
    const q = new FlowQueue({ capacity: 5 });
    expect(q.offer('hubble', flows(1, 3))).toBe(3);
    expect(q.offer('push', flows(10, 4))).toBe(2);
    expect(q.offer('push', flows(20, 1))).toBe(0);
    expect(q.size).toBe(5);
    expect(portsOf(q.takeNow(100).flows)).toEqual([1, 2, 3, 10, 11]);
    expect(q.metrics()).toEqual({
      capacity: 5,
      queued: 0,
      received: { hubble: 3, push: 2 },
      delivered: { hubble: 3, push: 2 },
      acknowledged: { hubble: 0, push: 0 },
      dropped: { hubble: {}, push: { queue_full: 3 } },
    });
  });

  it('never holds more than its capacity however much is offered', () => {
    const q = new FlowQueue({ capacity: 100 });
    for (let i = 0; i < 1000; i++) q.offer('s', flows(i * 100, 100));
    expect(q.size).toBe(100);
    expect(q.metrics().dropped).toEqual({ s: { queue_full: 99_900 } });
    expect(portsOf(q.takeNow(1000).flows)).toEqual(flows(0, 100).map((f) => f.port));
  });

  it('offerAll takes all or nothing', () => {
    const q = new FlowQueue({ capacity: 4 });
    expect(q.offerAll('push', flows(1, 3))).toBe(true);
    expect(q.offerAll('push', flows(4, 2))).toBe(false);
    expect(q.size).toBe(3);
    expect(q.offerAll('push', flows(4, 1))).toBe(true);
    expect(q.metrics().dropped).toEqual({ push: { queue_full: 2 } });
  });

  it('take waits for flows, returns at most max, and ends with empty batches after close', async () => {
    const q = new FlowQueue({ capacity: 10 });
    const pending = q.take(2);
    setTimeout(() => q.offer('s', flows(1, 3)), 5);
    expect(portsOf((await pending).flows)).toEqual([1, 2]);
    q.close();
    expect(q.offer('s', flows(9, 1))).toBe(0);
    expect(portsOf((await q.take(5)).flows)).toEqual([3]);
    expect((await q.take(5)).flows).toEqual([]);
    expect(q.metrics().dropped).toEqual({ s: { queue_full: 1 } });
  });

  it('take returns an empty batch when its signal aborts', async () => {
    const q = new FlowQueue({ capacity: 10 });
    const ac = new AbortController();
    const pending = q.take(5, ac.signal);
    ac.abort();
    expect((await pending).flows).toEqual([]);
  });

  it('batches() yields until the queue is closed and drained', async () => {
    const q = new FlowQueue({ capacity: 100 });
    q.offer('s', flows(1, 5));
    const seen: number[][] = [];
    const done = (async () => {
      for await (const b of q.batches(2)) {
        seen.push(portsOf(b.flows));
        b.ack();
      }
    })();
    await new Promise((r) => setTimeout(r, 5));
    q.offer('s', flows(6, 1));
    await new Promise((r) => setTimeout(r, 5));
    q.close();
    await done;
    expect(seen).toEqual([[1, 2], [3, 4], [5], [6]]);
  });

  it('ack hands each source its tags in order, once', () => {
    const q = new FlowQueue({ capacity: 10 });
    const acks: Record<string, unknown[][]> = { a: [], b: [] };
    q.register('a', (t) => acks.a!.push(t));
    q.register('b', (t) => acks.b!.push(t));
    q.offer('a', flows(1, 2), ['a1', 'a2']);
    q.offer('b', flows(3, 1), ['b1']);
    q.offer('a', flows(4, 1), ['a3']);
    const batch = q.takeNow(3);
    expect(batch.sources).toEqual({ a: 2, b: 1 });
    expect(acks).toEqual({ a: [], b: [] });
    batch.ack();
    batch.ack();
    expect(acks).toEqual({ a: [['a1', 'a2']], b: [['b1']] });
    q.takeNow(10).ack();
    expect(acks.a).toEqual([['a1', 'a2'], ['a3']]);
    expect(q.metrics().acknowledged).toEqual({ a: 3, b: 1 });
  });

  it('reports no room at the high-water mark and wakes waiters at the low-water mark', async () => {
    const q = new FlowQueue({ capacity: 10, highWater: 0.8, lowWater: 0.3 });
    q.offer('s', flows(1, 7));
    expect(q.hasRoom()).toBe(true);
    q.offer('s', flows(8, 1));
    expect(q.hasRoom()).toBe(false);
    let woke = false;
    const w = q.waitForRoom().then(() => (woke = true));
    q.takeNow(4);
    await Promise.resolve();
    expect(woke).toBe(false); // 4 left, above the low mark of 3
    q.takeNow(1);
    await w;
    expect(woke).toBe(true);
    expect(q.hasRoom()).toBe(true);
  });

  it('keeps order across internal compaction', () => {
    const q = new FlowQueue({ capacity: 10_000 });
    const out: number[] = [];
    let next = 0;
    for (let round = 0; round < 20; round++) {
      q.offer('s', flows(next, 1000));
      next += 1000;
      out.push(...portsOf(q.takeNow(700).flows));
    }
    out.push(...portsOf(q.takeNow(100_000).flows));
    expect(out).toEqual(Array.from({ length: 20_000 }, (_, i) => i));
  });
});
