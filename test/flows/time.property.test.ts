import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseRfc3339 } from '../../src/flows/common.ts';
import { parseHubbleTime } from '../../src/flows/hubble.ts';

// parseHubbleTime remembers the hour of the last timestamp and adds minutes, seconds and
// milliseconds to it; it must give exactly parseRfc3339's result for every text.

const digit = fc.integer({ min: 0, max: 9 }).map(String);
const two = (max: number) => fc.integer({ min: 0, max }).map((n) => String(n).padStart(2, '0'));

/** Texts near the Hubble shape: valid ones and ones broken in one place. */
const near = fc
  .record({
    year: fc.constantFrom('2026', '0050', '2024', '1999', '9999', '20x6'),
    month: fc.constantFrom('01', '02', '12', '13', '00'),
    day: fc.constantFrom('01', '28', '29', '30', '31', '00'),
    sep: fc.constantFrom('T', 't', ' ', 'X'),
    hour: fc.oneof(two(23), fc.constantFrom('24', '7x')),
    minute: fc.oneof(two(59), fc.constantFrom('60', '99', '5a')),
    second: fc.oneof(two(59), fc.constantFrom('60', '61', '69', '70', '0:')),
    frac: fc.oneof(
      fc.array(digit, { minLength: 0, maxLength: 10 }).map((d) => (d.length === 0 ? '' : '.' + d.join(''))),
      fc.constantFrom('.', '.12a', ',123'),
    ),
    zone: fc.constantFrom('Z', 'Z', 'Z', 'z', '+01:00', '-00:30', '', 'ZZ'),
  })
  .map((p) => `${p.year}-${p.month}-${p.day}${p.sep}${p.hour}:${p.minute}:${p.second}${p.frac}${p.zone}`);

const anyText = fc.oneof(near, fc.string({ maxLength: 32 }), fc.constantFrom('', '2026-01-01T00:00:00Z'));

describe('parseRfc3339', () => {
  it('takes every year 0000-9999 as written (Date.UTC read 0000-0099 as 1900-1999)', () => {
    expect(parseRfc3339('0050-06-15T12:00:00Z')).toBe(Date.parse('0050-06-15T12:00:00Z'));
    expect(new Date(parseRfc3339('0099-12-31T23:59:59.999Z')).toISOString()).toBe('0099-12-31T23:59:59.999Z');
    // Year 0 is a leap year (1900, which it was read as, is not).
    expect(new Date(parseRfc3339('0000-02-29T00:00:00Z')).toISOString()).toBe('0000-02-29T00:00:00.000Z');
    expect(new Date(parseRfc3339('0000-01-01T00:00:00+00:01')).toISOString()).toBe(
      '-000001-12-31T23:59:00.000Z',
    );
    fc.assert(
      fc.property(
        fc.date({ min: new Date('0000-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59.999Z') }),
        fc.integer({ min: -23 * 60 - 59, max: 23 * 60 + 59 }),
        (d, offsetMin) => {
          if (Number.isNaN(d.getTime())) return;
          const z = d.toISOString();
          expect(parseRfc3339(z)).toBe(d.getTime());
          expect(parseHubbleTime(z)).toBe(d.getTime());
          // The same instant written with an offset, where that keeps the year within 0000-9999.
          const local = new Date(d.getTime() + offsetMin * 60_000).toISOString();
          if (local.length !== 24) return;
          const abs = Math.abs(offsetMin);
          const zone = `${offsetMin < 0 ? '-' : '+'}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
          expect(parseRfc3339(local.slice(0, -1) + zone)).toBe(d.getTime());
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('parseHubbleTime', () => {
  it('equals parseRfc3339 on sequences of related and unrelated timestamps', () => {
    fc.assert(
      fc.property(fc.array(anyText, { minLength: 1, maxLength: 20 }), (texts) => {
        for (const t of texts) expect(Object.is(parseHubbleTime(t), parseRfc3339(t))).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('equals parseRfc3339 on the shapes Hubble writes, hour after hour', () => {
    fc.assert(
      fc.property(
        fc.date({ min: new Date('1970-01-01'), max: new Date('2100-01-01'), noInvalidDate: true }),
        fc.array(fc.tuple(fc.nat(7_200_000), fc.nat(999_999_999), fc.integer({ min: 0, max: 9 })), {
          minLength: 1,
          maxLength: 30,
        }),
        (d, steps) => {
          let t = d.getTime();
          for (const [dt, nanos, digits] of steps) {
            t += dt;
            const frac = digits === 0 ? '' : '.' + String(nanos).padStart(9, '0').slice(0, digits);
            const text = new Date(t).toISOString().slice(0, 19) + frac + 'Z';
            expect(parseHubbleTime(text)).toBe(parseRfc3339(text));
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('keeps a leap second as parseRfc3339 does', () => {
    parseHubbleTime('2016-12-31T23:00:00Z');
    expect(parseHubbleTime('2016-12-31T23:59:60.5Z')).toBe(Date.UTC(2016, 11, 31, 23, 59, 59) + 500);
    expect(parseHubbleTime('2016-12-31T23:59:61Z')).toBeNaN();
  });
});
