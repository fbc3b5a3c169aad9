/**
 * CronJob schedules (src/policy/cron.ts): what Kubernetes accepts in `spec.schedule`, and the first run a
 * schedule starts in a span, in UTC and in a time zone that changes its clocks.
 */
import { describe, expect, it } from 'vitest';
import { type CronSchedule, firstRunBetween, parseCronSchedule } from '../../src/policy/cron.ts';
import { cronJobsNotRunWithin } from '../../src/policy/cronjobs.ts';

function parsed(text: string, zone?: string): CronSchedule {
  const s = parseCronSchedule(text, zone);
  if (typeof s === 'string') throw new Error(s);
  return s;
}

const at = (iso: string) => Date.parse(iso);
const iso = (t: number | undefined) => (t === undefined ? undefined : new Date(t).toISOString());
/** The first run of `text` from `from` to `to` (ISO times), as an ISO time. */
const run = (text: string, from: string, to: string, zone?: string) =>
  iso(firstRunBetween(parsed(text, zone), at(from), at(to)));

describe('parseCronSchedule', () => {
  it('reads values, ranges, steps, lists, names and macros', () => {
    const s = parsed('*/15 9-17 1,15 jan-MAR/2 mon-fri');
    expect(s).toMatchObject({ kind: 'fields', bothDays: false, timeZone: 'UTC' });
    if (s.kind !== 'fields') return;
    expect([...s.minute]).toEqual([0, 15, 30, 45]);
    expect([...s.hour]).toEqual([9, 10, 11, 12, 13, 14, 15, 16, 17]);
    expect([...s.dayOfMonth]).toEqual([1, 15]);
    expect([...s.month]).toEqual([1, 3]);
    expect([...s.dayOfWeek]).toEqual([1, 2, 3, 4, 5]);
    // `a/n` runs to the field's end; `?` is `*`.
    const t = parsed('5/20 ? * * ?');
    if (t.kind !== 'fields') return;
    expect([...t.minute]).toEqual([5, 25, 45]);
    expect(t.bothDays).toBe(true);
    expect(parsed('@weekly')).toEqual(parsed('0 0 * * 0'));
    expect(parsed('@midnight')).toEqual(parsed('0 0 * * *'));
    expect(parsed('@every 1h30m')).toEqual({ kind: 'every', periodMs: 5_400_000 });
    expect(parsed('@every 1500ms')).toEqual({ kind: 'every', periodMs: 1000 });
  });

  it('counts @every durations as Go does: exact fractions, a sign, at least a second', () => {
    // 2.3h is 8280s in Go; in floating point 2.3 × 3600000 ms falls just short of it.
    expect(parsed('@every 2.3h')).toEqual({ kind: 'every', periodMs: 8_280_000 });
    expect(parsed('@every 1.15m')).toEqual({ kind: 'every', periodMs: 69_000 });
    expect(parsed('@every .5h1.5s')).toEqual({ kind: 'every', periodMs: 1_801_000 });
    expect(parsed('@every +90s')).toEqual({ kind: 'every', periodMs: 90_000 });
    expect(parsed('@every -5s')).toEqual({ kind: 'every', periodMs: 1000 });
    expect(parsed('@every 0')).toEqual({ kind: 'every', periodMs: 1000 });
    expect(parseCronSchedule('@every .h')).toBe('"@every .h": not a duration after @every');
    expect(parseCronSchedule('@every 2562048h')).toBe('"@every 2562048h": not a duration after @every');
  });

  it('skips empty items of a list, as Kubernetes does', () => {
    const s = parsed('1,,2 5, * * *');
    if (s.kind !== 'fields') return;
    expect([...s.minute]).toEqual([1, 2]);
    expect([...s.hour]).toEqual([5]);
    expect(parseCronSchedule(', * * * *')).toBe('minute ",": no value');
  });

  it('takes the zone from spec.timeZone first, then a TZ= or CRON_TZ= prefix', () => {
    expect(parsed('CRON_TZ=Asia/Tokyo 0 3 * * *')).toMatchObject({ timeZone: 'Asia/Tokyo' });
    expect(parsed('TZ=Asia/Tokyo 0 3 * * *', 'Europe/Berlin')).toMatchObject({
      timeZone: 'Europe/Berlin',
    });
  });

  it('says what it could not read', () => {
    expect(parseCronSchedule('0 3 * *')).toBe('"0 3 * *": 4 fields, not 5');
    expect(parseCronSchedule('60 * * * *')).toBe('minute "60": 60 is outside 0-59');
    expect(parseCronSchedule('0 0 0 * *')).toBe('day of month "0": 0 is outside 1-31');
    expect(parseCronSchedule('0 0 * * 7')).toBe('day of week "7": 7 is outside 0-6');
    expect(parseCronSchedule('0 5-3 * * *')).toBe('hour "5-3": the range "5-3" ends before it starts');
    // `a/n` runs from a to 59: a start past 59 is out of the field.
    expect(parseCronSchedule('61/5 * * * *')).toBe('minute "61/5": 61 is outside 0-59');
    expect(parseCronSchedule('0 0 * * 9/2')).toBe('day of week "9/2": 9 is outside 0-6');
    expect(parseCronSchedule('*/0 * * * *')).toBe(
      'minute "*/0": the step "0" is not a positive whole number',
    );
    expect(parseCronSchedule('0 0 * foo *')).toBe('month "foo": "foo" is not a value, a range or "*"');
    expect(parseCronSchedule('0 0 1/2/3 * *')).toBe('day of month "1/2/3": more than one "/" in "1/2/3"');
    expect(parseCronSchedule('@fortnightly')).toBe('"@fortnightly": not a known macro');
    expect(parseCronSchedule('@every soon')).toBe('"@every soon": not a duration after @every');
    expect(parseCronSchedule('0 3 * * *', 'Mars/Olympus')).toBe('unknown time zone "Mars/Olympus"');
  });
});

describe('firstRunBetween', () => {
  it('finds the first minute the fields match, in UTC', () => {
    // 2026-03-02 is a Monday.
    expect(run('30 * * * *', '2026-03-02T10:00:01Z', '2026-03-02T10:59:56Z')).toBe(
      '2026-03-02T10:30:00.000Z',
    );
    expect(run('0 3 * * 0', '2026-03-02T10:00:00Z', '2026-03-02T11:00:00Z')).toBeUndefined();
    expect(run('0 3 * * 0', '2026-03-02T10:00:00Z', '2026-03-09T00:00:00Z')).toBe('2026-03-08T03:00:00.000Z');
    // A run exactly at either end is in the span.
    expect(run('0 11 * * *', '2026-03-02T10:00:00Z', '2026-03-02T11:00:00Z')).toBe(
      '2026-03-02T11:00:00.000Z',
    );
    expect(run('0 10 * * *', '2026-03-02T10:00:00Z', '2026-03-02T11:00:00Z')).toBe(
      '2026-03-02T10:00:00.000Z',
    );
  });

  it('matches either day field when both are restricted, both when one is *', () => {
    // The 13th of March 2026 is a Friday; the 6th is the first Friday of the month.
    expect(run('0 0 13 * 5', '2026-03-01T00:00:00Z', '2026-03-31T00:00:00Z')).toBe(
      '2026-03-06T00:00:00.000Z',
    );
    expect(run('0 0 13 * *', '2026-03-01T00:00:00Z', '2026-03-31T00:00:00Z')).toBe(
      '2026-03-13T00:00:00.000Z',
    );
    // `*/1` is `*`; `*/2` restricts the days (the odd ones).
    expect(run('0 0 */1 * 5', '2026-03-07T00:00:00Z', '2026-03-31T00:00:00Z')).toBe(
      '2026-03-13T00:00:00.000Z',
    );
    expect(run('0 0 */2 * 5', '2026-03-08T00:00:00Z', '2026-03-31T00:00:00Z')).toBe(
      '2026-03-09T00:00:00.000Z',
    );
    expect(run('0 0 29 2 *', '2026-01-01T00:00:00Z', '2027-12-31T00:00:00Z')).toBeUndefined();
    expect(run('0 0 29 2 *', '2027-01-01T00:00:00Z', '2028-12-31T00:00:00Z')).toBe(
      '2028-02-29T00:00:00.000Z',
    );
  });

  it('reads wall-clock times in the time zone, across a change of the clocks', () => {
    // 03:00 in Tokyo (UTC+9, no daylight saving) is 18:00 UTC the day before.
    expect(run('0 3 * * *', '2026-03-02T10:00:00Z', '2026-03-03T10:00:00Z', 'Asia/Tokyo')).toBe(
      '2026-03-02T18:00:00.000Z',
    );
    // 02:30 in Berlin: UTC+1 in winter, UTC+2 from 2026-03-29 on; that day has no 02:30.
    expect(run('30 2 * * *', '2026-03-27T12:00:00Z', '2026-03-28T12:00:00Z', 'Europe/Berlin')).toBe(
      '2026-03-28T01:30:00.000Z',
    );
    expect(run('30 2 * * *', '2026-03-30T12:00:00Z', '2026-03-31T12:00:00Z', 'Europe/Berlin')).toBe(
      '2026-03-31T00:30:00.000Z',
    );
    // India's half-hour offset (UTC+5:30): 09:15 there is 03:45 UTC.
    expect(run('15 9 * * *', '2026-03-02T00:00:00Z', '2026-03-03T00:00:00Z', 'Asia/Kolkata')).toBe(
      '2026-03-02T03:45:00.000Z',
    );
    // Lord Howe Island moves its clocks by half an hour (UTC+11 to +10:30 on 2026-04-05 at 02:00).
    expect(run('45 1 * * *', '2026-04-04T12:00:00Z', '2026-04-05T12:00:00Z', 'Australia/Lord_Howe')).toBe(
      '2026-04-04T14:45:00.000Z',
    );
  });

  it('reads the wall clock minute by minute in an hour where the offset changes', () => {
    // Lord Howe Island goes from UTC+10:30 to +11 at 02:00 on 2026-10-04 (15:30 UTC the day before),
    // in the middle of a UTC hour: 02:40 there is 15:40 UTC, and 02:15 does not occur that day.
    const zone = 'Australia/Lord_Howe';
    expect(run('40 2 * * *', '2026-10-03T15:00:00Z', '2026-10-03T16:00:00Z', zone)).toBe(
      '2026-10-03T15:40:00.000Z',
    );
    expect(run('15 2 * * *', '2026-10-03T15:00:00Z', '2026-10-03T16:00:00Z', zone)).toBeUndefined();
    expect(run('20 1 * * *', '2026-10-03T14:00:00Z', '2026-10-03T16:00:00Z', zone)).toBe(
      '2026-10-03T14:50:00.000Z',
    );
  });

  it('counts @every runs from the start it is given', () => {
    const every = parsed('@every 2h');
    const start = at('2026-03-02T09:10:00Z');
    expect(iso(firstRunBetween(every, at('2026-03-02T10:00:00Z'), at('2026-03-02T11:00:00Z'), start))).toBe(
      undefined,
    );
    expect(iso(firstRunBetween(every, at('2026-03-02T10:00:00Z'), at('2026-03-02T11:10:00Z'), start))).toBe(
      '2026-03-02T11:10:00.000Z',
    );
    expect(() => firstRunBetween(every, -Infinity, 0)).toThrow(
      'a span of runs needs finite ends (got -Infinity to 0)',
    );
  });
});

describe('cronJobsNotRunWithin', () => {
  const first = at('2026-03-02T10:00:00Z');
  const last = at('2026-03-02T11:00:00Z');
  const ids = ['shop/CronJob/a', 'shop/Deployment/web', 'shop/CronJob/missing'];
  const named = (cj: object) =>
    cronJobsNotRunWithin(ids, (_ns, n) => (n === 'a' ? cj : undefined), first, last);

  it('counts a last run inside the span, up to a minute before the last flow', () => {
    expect(
      named({ spec: { schedule: '0 3 * * 0' }, status: { lastScheduleTime: '2026-03-02T10:30:00Z' } }),
    ).toEqual([]);
    expect(
      named({ spec: { schedule: '0 3 * * 0' }, status: { lastScheduleTime: '2026-03-02T10:59:30Z' } }),
    ).toEqual(['shop/CronJob/a']);
    expect(
      named({ spec: { schedule: '0 3 * * 0' }, status: { lastScheduleTime: '2026-03-01T03:00:00Z' } }),
    ).toEqual(['shop/CronJob/a']);
    expect(named({ spec: { schedule: '0 3 * * 0' } })).toEqual(['shop/CronJob/a']);
    expect(named({ spec: { schedule: '0 3 * * 0', suspend: true } })).toEqual([]);
  });

  it('after a later last run, counts the runs its schedule started in the span since its creation', () => {
    const later = { lastScheduleTime: '2026-03-08T03:00:00Z' };
    expect(named({ spec: { schedule: '0 3 * * 0' }, status: later })).toEqual(['shop/CronJob/a']);
    expect(named({ spec: { schedule: '30 * * * *' }, status: later })).toEqual([]);
    // Its only run in the span would have been 10:30: it was made at 10:45.
    expect(
      named({
        metadata: { creationTimestamp: '2026-03-02T10:45:00Z' },
        spec: { schedule: '30 * * * *' },
        status: later,
      }),
    ).toEqual(['shop/CronJob/a']);
    // 11:00 is within a minute of the last flow, 10:59 is not; 19:30 in Tokyo is 10:30 UTC.
    expect(named({ spec: { schedule: '0 11 * * *' }, status: later })).toEqual(['shop/CronJob/a']);
    expect(named({ spec: { schedule: '59 10 * * *' }, status: later })).toEqual([]);
    expect(named({ spec: { schedule: '30 19 * * *', timeZone: 'Asia/Tokyo' }, status: later })).toEqual([]);
    // Made at 10:30 on the dot: its first run is the next 10:30's hour later, not at its creation.
    expect(
      named({
        metadata: { creationTimestamp: '2026-03-02T10:30:00Z' },
        spec: { schedule: '30 * * * *' },
        status: later,
      }),
    ).toEqual(['shop/CronJob/a']);
    // @every runs lie whole periods before the last run (odd hours at 09:00 in March 8th's, so 09:00
    // and 11:00 on the 2nd, outside the span), whatever the creation's time (10:05 is on its grid).
    const every = {
      metadata: { creationTimestamp: '2026-03-01T00:05:00Z' },
      spec: { schedule: '@every 2h' },
    };
    expect(named({ ...every, status: { lastScheduleTime: '2026-03-08T09:00:00Z' } })).toEqual([
      'shop/CronJob/a',
    ]);
    expect(named({ ...every, status: { lastScheduleTime: '2026-03-08T10:20:00Z' } })).toEqual([]);
    // A schedule that cannot be read tells nothing of the runs.
    expect(named({ spec: { schedule: '30 * * *' }, status: later })).toEqual(['shop/CronJob/a']);
  });
});
