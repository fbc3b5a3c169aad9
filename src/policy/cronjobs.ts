/**
 * CronJobs whose traffic could not have been observed: between two runs, a CronJob makes no flow, so a
 * proposal learned over a span that holds none of its runs knows nothing of what it needs, and its
 * namespace's default deny will cut that off at its next run. Its object tells when it last ran.
 */

/** What a CronJob object tells of its runs (the fields compaction keeps). */
export interface CronJobRuns {
  spec?: { suspend?: boolean };
  /**
   * `active`: the Jobs of its runs that have not finished (only their presence is read);
   * `lastSuccessfulTime`: when a run last completed.
   */
  status?: { lastScheduleTime?: string; lastSuccessfulTime?: string; active?: readonly unknown[] };
}

/**
 * The CronJobs among `unobserved` (workload ids; `ns/CronJob/name` are the ones read) that have not run
 * since `since` (epoch ms): not suspended, and with no scheduled run at or after it
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
  since: number,
  opts: { finished?: boolean; settleMs?: number; now?: number } = {},
): string[] {
  const settled = (t: number): boolean =>
    opts.settleMs === undefined || (opts.now ?? Date.now()) - t >= opts.settleMs;
  const out: string[] = [];
  for (const id of unobserved) {
    const [namespace, kind, name] = id.split('/');
    if (kind !== 'CronJob' || namespace === undefined || name === undefined) continue;
    const cj = cronJob(namespace, name);
    if (!cj || cj.spec?.suspend === true) continue;
    const last = Date.parse(cj.status?.lastScheduleTime ?? '');
    const succeeded = Date.parse(cj.status?.lastSuccessfulTime ?? '');
    const running = opts.finished === true && (cj.status?.active?.length ?? 0) > 0;
    const completed = opts.finished === true && succeeded >= since && settled(succeeded);
    const ran = last >= since && !running && (opts.finished !== true || settled(last));
    if (!completed && !ran) out.push(id);
  }
  return out;
}
