/**
 * CronJobs whose traffic could not have been observed: between two runs, a CronJob makes no flow, so a
 * proposal learned over a span that holds none of its runs knows nothing of what it needs, and its
 * namespace's default deny will cut that off at its next run. Its object tells when it last ran.
 */

/** What a CronJob object tells of its runs (the fields compaction keeps). */
export interface CronJobRuns {
  spec?: { suspend?: boolean };
  status?: { lastScheduleTime?: string };
}

/**
 * The CronJobs among `unobserved` (workload ids; `ns/CronJob/name` are the ones read) that have not run
 * since `since` (epoch ms): not suspended, and with no scheduled run at or after it
 * (`status.lastScheduleTime`). A CronJob that ran since and made no flow is idle on purpose; one
 * `cronJob` does not know (deleted) or a suspended one will not run. In the order of `unobserved`.
 */
export function cronJobsNotRunSince(
  unobserved: readonly string[],
  cronJob: (namespace: string, name: string) => CronJobRuns | undefined,
  since: number,
): string[] {
  const out: string[] = [];
  for (const id of unobserved) {
    const [namespace, kind, name] = id.split('/');
    if (kind !== 'CronJob' || namespace === undefined || name === undefined) continue;
    const cj = cronJob(namespace, name);
    if (!cj || cj.spec?.suspend === true) continue;
    const last = Date.parse(cj.status?.lastScheduleTime ?? '');
    if (!(last >= since)) out.push(id);
  }
  return out;
}
