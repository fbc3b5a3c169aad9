import { describe, expect, it } from 'vitest';
import {
  Cursor,
  RecentIdentities,
  formatTime,
  nsToTimestamp,
  parseTime,
  timestampToNs,
  validateCheckpoint,
} from '../../src/telemetry/checkpoint.ts';

describe('checkpoint times', () => {
  it('parses RFC 3339 with 0 to 9 fractional digits and offsets, to nanoseconds', () => {
    expect(parseTime('2021-11-10T10:40:56Z')).toBe(1636540856_000000000n);
    expect(parseTime('2021-11-10T10:40:56.095357Z')).toBe(1636540856_095357000n);
    expect(parseTime('2021-11-10T10:40:56.465597700Z')).toBe(1636540856_465597700n);
    expect(parseTime('2021-11-10T11:40:56.5+01:00')).toBe(1636540856_500000000n);
    expect(parseTime('2021-11-10 10:40:56Z')).toBeUndefined();
    expect(parseTime('2021-11-10T10:40:56.1234567891Z')).toBeUndefined();
  });

  it('formats with nine fractional digits and round-trips Timestamps', () => {
    expect(formatTime(1636540856_000000005n)).toBe('2021-11-10T10:40:56.000000005Z');
    expect(nsToTimestamp(1636540856_465597700n)).toEqual({ seconds: '1636540856', nanos: 465597700 });
    expect(timestampToNs({ seconds: '1636540856', nanos: 465597700 })).toBe(1636540856_465597700n);
    expect(timestampToNs({})).toBe(0n);
  });
});

describe('Cursor', () => {
  it('keeps identities only at the newest instant and never moves back', () => {
    const c = new Cursor();
    expect(c.snapshot()).toBeUndefined();
    c.advance(10n, 'a');
    c.advance(10n, 'b');
    expect(c.has(10n, 'a')).toBe(true);
    c.advance(5n, 'old');
    expect(c.snapshot()).toEqual({ time: '1970-01-01T00:00:00.000000010Z', seen: ['a', 'b'] });
    c.advance(11n, 'c');
    expect(c.has(10n, 'a')).toBe(false);
    expect(c.snapshot()).toEqual({ time: '1970-01-01T00:00:00.000000011Z', seen: ['c'] });
  });

  it('starts from a stored checkpoint', () => {
    const c = new Cursor({ time: '2021-11-10T10:40:56.465597700Z', seen: ['x'] });
    expect(c.time).toBe(1636540856_465597700n);
    expect(c.has(1636540856_465597700n, 'x')).toBe(true);
    expect(c.has(1636540856_465597700n, 'y')).toBe(false);
  });
});

describe('validateCheckpoint', () => {
  it('accepts a stored checkpoint and names what is wrong otherwise', () => {
    expect(validateCheckpoint({ time: '2021-11-10T10:40:56Z', seen: ['a'] })).toEqual({
      time: '2021-11-10T10:40:56Z',
      seen: ['a'],
    });
    expect(() => validateCheckpoint([], 'state.json')).toThrow(
      'state.json: must be an object with time and seen',
    );
    expect(() => validateCheckpoint({ time: 'yesterday', seen: [] })).toThrow(
      'checkpoint: time must be an RFC 3339 timestamp, got "yesterday"',
    );
    expect(() => validateCheckpoint({ time: '2021-11-10T10:40:56Z', seen: [1] })).toThrow(
      'checkpoint: seen must be an array of strings',
    );
    const ahead = [{ time: '2099-01-01T00:00:00.000000001Z', id: 'f1' }];
    expect(validateCheckpoint({ time: '2021-11-10T10:40:56Z', seen: [], ahead })).toEqual({
      time: '2021-11-10T10:40:56Z',
      seen: [],
      ahead,
    });
    const at = (a: unknown) => () => validateCheckpoint({ time: '2021-11-10T10:40:56Z', seen: [], ahead: a });
    expect(at({})).toThrow('checkpoint: ahead must be an array of objects with time and id');
    expect(at([...ahead, 'f2'])).toThrow('checkpoint: ahead[1] must be an object with time and id');
    expect(at([{ time: 'tomorrow', id: 'f2' }])).toThrow(
      'checkpoint: ahead[0].time must be an RFC 3339 timestamp, got "tomorrow"',
    );
    expect(at([{ time: '2099-01-01T00:00:00Z' }])).toThrow(
      'checkpoint: ahead[0].id must be a non-empty string, got undefined',
    );
  });
});

describe('RecentIdentities', () => {
  it('remembers identities within the window of the newest flow only', () => {
    const r = new RecentIdentities(10n);
    r.add(100n, 'a');
    r.add(105n, 'b');
    expect(r.has(100n, 'a')).toBe(true);
    expect(r.has(101n, 'a')).toBe(false); // same identity at another time is another flow
    r.add(111n, 'c'); // window now starts at 101: 'a' goes
    expect([r.has(100n, 'a'), r.has(105n, 'b'), r.has(111n, 'c')]).toEqual([false, true, true]);
    r.add(90n, 'late'); // older than the window: not kept
    expect(r.has(90n, 'late')).toBe(false);
    expect(r.size).toBe(2);
  });

  it('with a zero window keeps only the newest instant', () => {
    const r = new RecentIdentities(0n);
    r.add(5n, 'a');
    r.add(5n, 'b');
    r.add(6n, 'c');
    expect([r.has(5n, 'a'), r.has(5n, 'b'), r.has(6n, 'c')]).toEqual([false, false, true]);
  });

  it('never holds more than its maximum', () => {
    const r = new RecentIdentities(1_000_000n, 100);
    for (let i = 0; i < 1000; i++) r.add(BigInt(i), `k${i}`);
    expect(r.size).toBe(100);
    expect(r.has(999n, 'k999')).toBe(true);
    expect(r.has(899n, 'k899')).toBe(false);
  });
});
