/**
 * Turns (src/server/turns.ts): the line in which `POST /audit` requests wait to read and audit their
 * policies, at most `atOnce` at a time, first come first served.
 */
import { describe, expect, it } from 'vitest';
import { StepsAbandoned } from '../../src/server/slices.ts';
import { Turns } from '../../src/server/turns.ts';

/** Whether `p` has settled by now (after the microtasks already due). */
async function state(p: Promise<void>): Promise<'ready' | 'failed' | 'waiting'> {
  let s: 'ready' | 'failed' | 'waiting' = 'waiting';
  p.then(
    () => (s = 'ready'),
    () => (s = 'failed'),
  );
  await new Promise((r) => setImmediate(r));
  return s;
}

describe('Turns', () => {
  it('gives at most atOnce turns at a time, in the order asked, each given back once', async () => {
    const turns = new Turns(2);
    const [a, b, c, d] = [turns.enter(), turns.enter(), turns.enter(), turns.enter()];
    expect(await Promise.all([a, b, c, d].map((t) => state(t.ready)))).toEqual([
      'ready',
      'ready',
      'waiting',
      'waiting',
    ]);
    expect([turns.holding, turns.waiting]).toEqual([2, 2]);
    b.leave();
    b.leave(); // more than once does nothing: d still waits
    expect([await state(c.ready), await state(d.ready)]).toEqual(['ready', 'waiting']);
    expect([turns.holding, turns.waiting]).toEqual([2, 1]);
    a.leave();
    c.leave();
    d.leave();
    expect(await state(d.ready)).toBe('ready');
    expect([turns.holding, turns.waiting]).toEqual([0, 0]);
  });

  it('takes one who gives up while waiting out of the line, and not one whose turn came', async () => {
    const turns = new Turns();
    const gone = new AbortController();
    const first = new AbortController();
    const a = turns.enter(first.signal);
    const b = turns.enter(gone.signal);
    const c = turns.enter();
    gone.abort();
    await expect(b.ready).rejects.toBeInstanceOf(StepsAbandoned);
    expect([turns.holding, turns.waiting]).toEqual([1, 1]);
    // Aborted once its turn came: held until it leaves.
    first.abort();
    expect([await state(a.ready), await state(c.ready)]).toEqual(['ready', 'waiting']);
    b.leave(); // gave up already: nothing
    expect(await state(c.ready)).toBe('waiting');
    a.leave();
    expect(await state(c.ready)).toBe('ready');
    // Left while still waiting: out of the line, the turn never taken.
    const d = turns.enter();
    d.leave();
    await expect(d.ready).rejects.toBeInstanceOf(StepsAbandoned);
    expect([turns.holding, turns.waiting]).toEqual([1, 0]);
    c.leave();
    // Gone before it came: never in line.
    const e = turns.enter(AbortSignal.abort());
    await expect(e.ready).rejects.toBeInstanceOf(StepsAbandoned);
    expect([turns.holding, turns.waiting]).toEqual([0, 0]);
    expect(await state(turns.enter().ready)).toBe('ready');
  });
});
