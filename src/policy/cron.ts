/**
 * A CronJob's schedule, read as Kubernetes reads `spec.schedule`: five fields (minute, hour, day of
 * month, month, day of week), each `*` or `?`, a value, a range `a-b`, any of them with a step `/n`, or a
 * comma-separated list of those; months and days of the week also by their three-letter English names;
 * the macros `@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly` and
 * `@every <duration>`; an optional leading `TZ=<zone>` or `CRON_TZ=<zone>`. When both day fields are
 * restricted, a day matching either one is a day of a run; when either is `*` or `?`, the other decides.
 * Times are wall-clock times in `spec.timeZone`, else the zone the schedule names, else UTC (the zone of
 * the kube-controller-manager, which the schedule cannot tell, is taken to be UTC).
 */

/** A parsed schedule: the wall-clock fields' allowed values, or a fixed period (`@every`). */
export type CronSchedule =
  | {
      kind: 'fields';
      minute: ReadonlySet<number>;
      hour: ReadonlySet<number>;
      dayOfMonth: ReadonlySet<number>;
      month: ReadonlySet<number>;
      dayOfWeek: ReadonlySet<number>;
      /** Whether a day must match both day fields (one of them is `*` or `?`), else either. */
      bothDays: boolean;
      timeZone: string;
    }
  | { kind: 'every'; periodMs: number };

const MACROS: Readonly<Record<string, string>> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

interface FieldRule {
  name: string;
  min: number;
  max: number;
  /** Names of the values from `min` on. */
  names?: readonly string[];
}

const FIELDS: readonly FieldRule[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTHS },
  { name: 'day of week', min: 0, max: 6, names: DAYS },
];

/** Whether `zone` is a time zone this runtime knows (IANA names, `UTC`). */
export function knownTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** Nanoseconds of one unit of a Go duration. */
const DURATION_UNITS: Readonly<Record<string, bigint>> = {
  ns: 1n,
  us: 1_000n,
  µs: 1_000n,
  μs: 1_000n,
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};

/**
 * Nanoseconds of a Go duration (`1h30m`, `90s`, `1.5h`, `500ms`, a sign in front), counted exactly as Go
 * counts them (whole nanoseconds, a fraction's remainder dropped), or undefined if it is not one or does
 * not fit Go's 64 bits. Floating point would make `2.3h` a second short of 8280s.
 */
function goDuration(text: string): bigint | undefined {
  const sign = text.startsWith('-') ? -1n : 1n;
  const body = /^[-+]/.test(text) ? text.slice(1) : text;
  if (body === '0') return 0n;
  if (body.length === 0) return undefined;
  let rest = body;
  let total = 0n;
  while (rest.length > 0) {
    const m = /^([0-9]*)(?:\.([0-9]*))?(ns|us|µs|μs|ms|s|m|h)/.exec(rest);
    if (!m || (m[1] === '' && (m[2] ?? '') === '')) return undefined;
    const unit = DURATION_UNITS[m[3]!]!;
    const frac = m[2] ?? '';
    total += BigInt(m[1] || '0') * unit;
    if (frac !== '') total += (BigInt(frac) * unit) / 10n ** BigInt(frac.length);
    rest = rest.slice(m[0].length);
  }
  return total > 2n ** 63n - 1n ? undefined : sign * total;
}

/** One field's allowed values, and whether it was `*` or `?` (without a step other than 1). */
function parseField(text: string, rule: FieldRule): { values: Set<number>; star: boolean } | string {
  const values = new Set<number>();
  let star = false;
  const value = (t: string): number | undefined => {
    const named = rule.names?.indexOf(t.toLowerCase()) ?? -1;
    if (named >= 0) return rule.min + named;
    return /^[0-9]+$/.test(t) ? Number(t) : undefined;
  };
  // Empty items (`1,,2`, `5,`) are skipped, as Kubernetes's parser skips them.
  const parts = text.split(',').filter((part) => part !== '');
  if (parts.length === 0) return `${rule.name} "${text}": no value`;
  for (const part of parts) {
    const [range = '', step, ...extra] = part.split('/');
    if (extra.length > 0) return `${rule.name} "${text}": more than one "/" in "${part}"`;
    let lo: number;
    let hi: number;
    const bounds = range.split('-');
    if (range === '*' || range === '?') {
      lo = rule.min;
      hi = rule.max;
    } else if (bounds.length === 1 || bounds.length === 2) {
      const a = value(bounds[0] ?? '');
      const b = bounds.length === 2 ? value(bounds[1] ?? '') : a;
      if (a === undefined || b === undefined)
        return `${rule.name} "${text}": "${range}" is not a value, a range or "*"`;
      lo = a;
      // `a/n` runs from a to the field's end, as `a-max/n`.
      hi = step !== undefined && bounds.length === 1 ? rule.max : b;
    } else return `${rule.name} "${text}": "${range}" is not a value, a range or "*"`;
    // `a/n` ends at the field's end whatever `a` is: a start past that end is out of the field, too.
    const outside = [lo, hi].find((v) => v < rule.min || v > rule.max);
    if (outside !== undefined) return `${rule.name} "${text}": ${outside} is outside ${rule.min}-${rule.max}`;
    if (lo > hi) return `${rule.name} "${text}": the range "${range}" ends before it starts`;
    let by = 1;
    if (step !== undefined) {
      if (!/^[0-9]+$/.test(step) || Number(step) === 0)
        return `${rule.name} "${text}": the step "${step}" is not a positive whole number`;
      by = Number(step);
    }
    if ((range === '*' || range === '?') && by === 1) star = true;
    for (let v = lo; v <= hi; v += by) values.add(v);
  }
  return { values, star };
}

const ZONE_PREFIX = /^(?:CRON_TZ|TZ)=(\S+)\s+/;

/**
 * The time zone a schedule's times are in, as written: `timeZone` (a CronJob's `spec.timeZone`), else
 * the zone a `TZ=` or `CRON_TZ=` prefix of `text` names; undefined when neither names one (UTC).
 */
export function scheduleTimeZone(text: string, timeZone?: string): string | undefined {
  return timeZone ?? ZONE_PREFIX.exec(text.trim())?.[1];
}

/**
 * The schedule `text` (a CronJob's `spec.schedule`) in `timeZone` (its `spec.timeZone`), or a message
 * saying what could not be read.
 */
export function parseCronSchedule(text: string, timeZone?: string): CronSchedule | string {
  let rest = text.trim();
  const prefix = ZONE_PREFIX.exec(rest);
  if (prefix) rest = rest.slice(prefix[0].length);
  const zone = scheduleTimeZone(text, timeZone) ?? 'UTC';
  if (!knownTimeZone(zone)) return `unknown time zone "${zone}"`;
  if (rest.startsWith('@every ')) {
    const ns = goDuration(rest.slice('@every '.length).trim());
    if (ns === undefined) return `"${rest}": not a duration after @every`;
    // Runs are whole seconds apart (what is below a second is dropped), at least one.
    const seconds = ns < 1_000_000_000n ? 1 : Number(ns / 1_000_000_000n);
    return { kind: 'every', periodMs: seconds * 1000 };
  }
  if (rest.startsWith('@')) {
    const macro = MACROS[rest.toLowerCase()];
    if (macro === undefined) return `"${rest}": not a known macro`;
    rest = macro;
  }
  const parts = rest.split(/\s+/);
  if (parts.length !== 5) return `"${text}": ${parts.length} fields, not 5`;
  const fields: Array<{ values: Set<number>; star: boolean }> = [];
  for (let i = 0; i < 5; i++) {
    const f = parseField(parts[i]!, FIELDS[i]!);
    if (typeof f === 'string') return f;
    fields.push(f);
  }
  const [minute, hour, dayOfMonth, month, dayOfWeek] = fields as [
    (typeof fields)[0],
    (typeof fields)[0],
    (typeof fields)[0],
    (typeof fields)[0],
    (typeof fields)[0],
  ];
  return {
    kind: 'fields',
    minute: minute.values,
    hour: hour.values,
    dayOfMonth: dayOfMonth.values,
    month: month.values,
    dayOfWeek: dayOfWeek.values,
    bothDays: dayOfMonth.star || dayOfWeek.star,
    timeZone: zone,
  };
}

const MINUTE = 60_000;
const HOUR = 3_600_000;

/** The offset of `zone` from UTC at `t` (ms): wall-clock time minus UTC. */
function offsetAt(parts: Intl.DateTimeFormat, t: number): number {
  const f = new Map<string, number>();
  for (const p of parts.formatToParts(t)) if (p.type !== 'literal') f.set(p.type, Number(p.value));
  const get = (k: string): number => f.get(k) ?? 0;
  const wall = Date.UTC(
    get('year'),
    get('month') - 1,
    get('day'),
    get('hour') % 24,
    get('minute'),
    get('second'),
  );
  return wall - Math.floor(t / 1000) * 1000;
}

/**
 * The first time (epoch ms) at or after `from` and at or before `to` at which `schedule` starts a run,
 * or undefined if it starts none then. `@every` runs are counted from `start` (a CronJob's creation),
 * one period apart. Wall-clock fields are matched minute by minute in the schedule's time zone, an hour
 * skipped at once when its hour, day or month does not match; around a change of the clocks, the
 * controller may start a run an hour away from the time given here.
 */
export function firstRunBetween(
  schedule: CronSchedule,
  from: number,
  to: number,
  start = -Infinity,
): number | undefined {
  if (!Number.isFinite(from) || !Number.isFinite(to))
    throw new RangeError(`a span of runs needs finite ends (got ${from} to ${to})`);
  if (to < from) return undefined;
  if (schedule.kind === 'every') {
    const p = schedule.periodMs;
    const origin = Number.isFinite(start) ? start : 0; // unknown creation: any origin has a run per period
    const k = Math.max(1, Math.ceil((from - origin) / p));
    const t = origin + k * p;
    return t <= to ? t : undefined;
  }
  const utc = schedule.timeZone === 'UTC' || schedule.timeZone === 'Etc/UTC';
  const format = utc
    ? undefined
    : new Intl.DateTimeFormat('en-US', {
        timeZone: schedule.timeZone,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      });
  const offset = (t: number): number => (format ? offsetAt(format, t) : 0);
  let t = Math.ceil(from / MINUTE) * MINUTE;
  while (t <= to) {
    // The wall clock over this UTC hour: one offset when it is the same at both ends (no zone
    // changes its clocks twice in an hour), else the offset of each minute.
    const hourEnd = Math.floor(t / HOUR) * HOUR + HOUR;
    const o = offset(t);
    const steady = o === offset(hourEnd - MINUTE);
    for (; t < hourEnd && t <= to; t += MINUTE) {
      const wall = new Date(t + (steady ? o : offset(t)));
      const dom = schedule.dayOfMonth.has(wall.getUTCDate());
      const dow = schedule.dayOfWeek.has(wall.getUTCDay());
      const day = schedule.bothDays ? dom && dow : dom || dow;
      if (!day || !schedule.month.has(wall.getUTCMonth() + 1) || !schedule.hour.has(wall.getUTCHours())) {
        // No minute of this wall-clock hour matches: on to the next (when the offset holds over it).
        if (steady) t = Math.min(hourEnd, t + (60 - wall.getUTCMinutes()) * MINUTE) - MINUTE;
        continue;
      }
      if (schedule.minute.has(wall.getUTCMinutes())) return t;
    }
  }
  return undefined;
}
