import { describe, expect, it } from 'vitest';
import { MAX_CHECKPOINT_BYTES, checkpointAnnotation } from '../../src/controller/manager.ts';
import type { Checkpoint } from '../../src/telemetry/index.ts';

const uuid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const ahead = (n: number) =>
  Array.from({ length: n }, (_, i) => ({
    time: `2099-01-01T00:00:${String(i % 60).padStart(2, '0')}.${String(i).padStart(9, '0')}Z`,
    id: uuid(i),
  }));

describe('checkpointAnnotation', () => {
  it('writes a checkpoint that fits as it is, ahead-of-clock flows included', () => {
    const cp: Checkpoint = { time: '2026-03-01T10:00:00.000000000Z', seen: ['a'], ahead: ahead(3) };
    expect(JSON.parse(checkpointAnnotation(cp))).toEqual(cp);
  });

  it('keeps as many of the latest ahead-of-clock flows as fit, and the boundary identities', () => {
    const all = ahead(2000);
    const cp: Checkpoint = { time: '2026-03-01T10:00:00.000000000Z', seen: ['a', 'b'], ahead: all };
    const text = checkpointAnnotation(cp);
    expect(text.length).toBeLessThanOrEqual(MAX_CHECKPOINT_BYTES);
    const kept = JSON.parse(text) as Checkpoint;
    expect(kept.seen).toEqual(['a', 'b']);
    const n = kept.ahead!.length;
    expect(kept.ahead).toEqual(all.slice(all.length - n));
    // One more would not fit.
    expect(JSON.stringify({ ...kept, ahead: all.slice(all.length - n - 1) }).length).toBeGreaterThan(
      MAX_CHECKPOINT_BYTES,
    );
    expect(n).toBe(380);
  });

  it('drops the boundary identities when even they do not fit, keeping ahead-of-clock flows that do', () => {
    const seen = Array.from({ length: 1000 }, (_, i) => uuid(i));
    const cp: Checkpoint = { time: '2026-03-01T10:00:00.000000000Z', seen, ahead: ahead(2) };
    expect(JSON.parse(checkpointAnnotation(cp))).toEqual({ time: cp.time, seen: [], ahead: ahead(2) });
    expect(JSON.parse(checkpointAnnotation({ time: cp.time, seen }))).toEqual({ time: cp.time, seen: [] });
  });
});
