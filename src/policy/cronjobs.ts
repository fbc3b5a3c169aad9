/**
 * CronJobs whose traffic could not have been observed: between two runs, a CronJob makes no flow, so a
 * proposal learned over a span that holds none of its runs knows nothing of what it needs, and its
 * namespace's default deny will cut that off at its next run. Its object tells when it last ran.
 */

import { isoSeconds } from '../model/time.ts';
import { type CronSchedule, firstRunBetween, parseCronSchedule } from './cron.ts';

/** What a CronJob object tells of its runs (the fields compaction keeps). */
export interface CronJobRuns {
  metadata?: { creationTimestamp?: string };
  spec?: { suspend?: boolean; schedule?: string; timeZone?: string };
  /**
   * `active`: the Jobs of its runs that have not finished (only their presence is read);
   * `lastSuccessfulTime`: when a run last completed.
   */
  status?: { lastScheduleTime?: string; lastSuccessfulTime?: string; active?: readonly unknown[] };
}

/** The CronJobs among `unobserved` (ids) that `cronJob` knows and that are not suspended, with their ids. */
function* cronJobsThatRun(
  unobserved: readonly string[],
  cronJob: (namespace: string, name: string) => CronJobRuns | undefined,
): Generator<[string, CronJobRuns]> {
  for (const id of unobserved) {
    const [namespace, kind, name] = id.split('/');
    if (kind !== 'CronJob' || namespace === undefined || name === undefined) continue;
    const cj = cronJob(namespace, name);
    if (cj && cj.spec?.suspend !== true) yield [id, cj];
  }
}

/**
 * The CronJobs among `unobserved` (workload ids; `ns/CronJob/name` are the ones read) that have not run
 * since `since` (epoch ms; a function: per namespace): not suspended, and with no scheduled run at or after it
 * (`status.lastScheduleTime`). A CronJob that ran since and made no flow is idle on purpose; one
 * `cronJob` does not know (deleted) or a suspended one will not run. With `finished`, a run counts only
 * once it is over: a CronJob with a Job still active (`status.active`) is among them, since
 * `lastScheduleTime` is set when its Job is created, before its pods have made any flow, unless a run
 * completed since (`status.lastSuccessfulTime`: runs that overlap, each longer than the schedule's
 * period, always leave one active). With `settleMs` too, a finished run counts only once it is that old
 * (from its completion, else from its start), so that its last flows have been read and audited: the
 * controller waits for the audit window. In the order of `unobserved`.
 */
export function cronJobsNotRunSince(
  unobserved: readonly string[],
  cronJob: (namespace: string, name: string) => CronJobRuns | undefined,
  since: number | ((namespace: string) => number),
  opts: { finished?: boolean; settleMs?: number; now?: number } = {},
): string[] {
  const sinceOf = typeof since === 'number' ? () => since : since;
  const settled = (t: number): boolean =>
    opts.settleMs === undefined || (opts.now ?? Date.now()) - t >= opts.settleMs;
  const out: string[] = [];
  for (const [id, cj] of cronJobsThatRun(unobserved, cronJob)) {
    const from = sinceOf(id.slice(0, id.indexOf('/')));
    const last = Date.parse(cj.status?.lastScheduleTime ?? '');
    const succeeded = Date.parse(cj.status?.lastSuccessfulTime ?? '');
    const running = opts.finished === true && (cj.status?.active?.length ?? 0) > 0;
    const completed = opts.finished === true && succeeded >= from && settled(succeeded);
    const ran = last >= from && !running && (opts.finished !== true || settled(last));
    if (!completed && !ran) out.push(id);
  }
  return out;
}

/**
 * How long before the last flow a run must start for its flows to be among them: a Job's pod takes
 * seconds to start making any.
 */
export const RUN_MARGIN_MS = 60_000;

/**
 * The CronJobs among `unobserved` (workload ids) that started no run the flows, from `first` to `last`
 * (epoch ms, both finite), cover: not suspended, and with no run started from `first` to a minute
 * (RUN_MARGIN_MS) before `last`. Its last run (`status.lastScheduleTime`) in that span is one. When the
 * last run is later, the runs before it followed `spec.schedule` (in `spec.timeZone`, see cron.ts) from
 * the CronJob's creation on (`@every`: whole periods before the last run): a run the schedule starts in
 * the span, after the creation, is one. A CronJob that never ran, that
 * last ran before `first`, or whose schedule cannot be read, is among them. In the order of `unobserved`.
 */
export function cronJobsNotRunWithin(
  unobserved: readonly string[],
  cronJob: (namespace: string, name: string) => CronJobRuns | undefined,
  first: number,
  last: number,
): string[] {
  const end = last - RUN_MARGIN_MS;
  const out: string[] = [];
  for (const [id, cj] of cronJobsThatRun(unobserved, cronJob)) {
    const lastRun = Date.parse(cj.status?.lastScheduleTime ?? '');
    if (lastRun >= first && lastRun <= end) continue;
    if (lastRun > end) {
      const created = Date.parse(cj.metadata?.creationTimestamp ?? '');
      const schedule = parseCronSchedule(cj.spec?.schedule ?? '', cj.spec?.timeZone);
      // Its first run is the schedule's first after its creation, not at it.
      const from = Number.isFinite(created) ? Math.max(first, created + 1) : first;
      if (
        typeof schedule !== 'string' &&
        firstRunBetween(schedule, from, end, everyOrigin(schedule, lastRun, from)) !== undefined
      )
        continue;
    }
    out.push(id);
  }
  return out;
}

/**
 * Where an `@every` schedule's runs up to `lastRun` are counted from, for firstRunBetween from `from`:
 * Kubernetes starts each run a period after the one before, so they lie whole periods before the last
 * (`status.lastScheduleTime`), whatever the schedule was when the CronJob was made. Undefined for other
 * schedules.
 */
function everyOrigin(schedule: CronSchedule, lastRun: number, from: number): number | undefined {
  if (schedule.kind !== 'every') return undefined;
  const p = schedule.periodMs;
  // A whole number of periods before the last run, a period before `from` at least.
  return lastRun - (Math.max(0, Math.ceil((lastRun - from) / p)) + 1) * p;
}

const YEAR_MS = 366 * 86_400_000;
const HOUR_MS = 3_600_000;
/**
 * Next runs found before, by schedule, zone and where `@every` counts from: valid from `from` until `at`
 * (or an hour).
 */
const nextRuns = new Map<string, { from: number; at: number | undefined }>();

/**
 * When `cj`'s schedule (`spec.schedule` in `spec.timeZone`) starts its next run after `now`, within a
 * year, or undefined (none within a year, or a schedule that cannot be read). `@every` runs a period
 * after the last run (`status.lastScheduleTime`), before the first a period after the creation, as
 * Kubernetes starts them. Found once per schedule and reused until that time has passed.
 */
export function nextRunAfter(cj: CronJobRuns, now: number): number | undefined {
  const text = cj.spec?.schedule;
  if (text === undefined) return undefined;
  const last = Date.parse(cj.status?.lastScheduleTime ?? '');
  const created = Date.parse(cj.metadata?.creationTimestamp ?? '');
  const origin = Number.isFinite(last) ? last : created;
  const key = `${text}\u0000${cj.spec?.timeZone ?? ''}\u0000${origin}`;
  const known = nextRuns.get(key);
  if (known && known.from <= now && now < (known.at ?? known.from + HOUR_MS)) return known.at;
  const schedule: CronSchedule | string = parseCronSchedule(text, cj.spec?.timeZone);
  const at =
    typeof schedule === 'string' ? undefined : firstRunBetween(schedule, now + 1, now + YEAR_MS, origin);
  if (nextRuns.size >= 4096) nextRuns.clear();
  nextRuns.set(key, { from: now, at });
  return at;
}

/**
 * What `cronJobsNotRunSince` (with the same `since` and options) waits for in `cj`, for messages:
 * ` (a run is going)` while a Job of it is active, ` (its run counts from T)` while a finished run is
 * younger than `settleMs`, else ` (next run T)` when its schedule tells, else nothing.
 */
export function notRunWait(
  cj: CronJobRuns,
  since: number,
  opts: { finished?: boolean; settleMs?: number; now?: number } = {},
): string {
  const now = opts.now ?? Date.now();
  if (opts.finished === true && (cj.status?.active?.length ?? 0) > 0) return ' (a run is going)';
  // The finished runs since `since` that count once `settleMs` old, as cronJobsNotRunSince counts them.
  const runs = [Date.parse(cj.status?.lastSuccessfulTime ?? '')];
  if (opts.finished === true) runs.push(Date.parse(cj.status?.lastScheduleTime ?? ''));
  const ended = Math.min(...runs.filter((t) => t >= since));
  if (opts.settleMs !== undefined && Number.isFinite(ended) && now - ended < opts.settleMs)
    return ` (its run counts from ${isoSeconds(ended + opts.settleMs)})`;
  const next = nextRunAfter(cj, now);
  return next === undefined ? '' : ` (next run ${isoSeconds(next)})`;
}
