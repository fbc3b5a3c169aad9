/**
 * A snapshot of a CronJob's pods without their Job objects (`kubectl get pods` alone, or finished Jobs
 * deleted by the history limit): recommend names the workload after the CronJob the Job's name shows
 * (`<cronjob>-<scheduled minute>`), not after one run, whose name changes every run, and says so in its
 * summary and report.json; where a name of a run's shape is not taken for one, it says why and that the
 * name will change, and of a Job of another name (db-migrate) nothing.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { captureIO } from '../../src/cli/io.ts';
import { runCli } from '../../src/cli/main.ts';

let dir: string;
const JOB = 'microseg-report-generator-29540790'; // scheduled 2026-03-02T10:30Z
const FIX = 'include jobs and cronjobs in the snapshot (kubectl get ...,jobs,cronjobs -o json)';

const namespace = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } };
function pod(name: string, labels: Record<string, string>, ip: string, job?: string, created?: string) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: 'shop',
      labels,
      ...(created ? { creationTimestamp: created } : {}),
      ...(job
        ? {
            ownerReferences: [
              { apiVersion: 'batch/v1', kind: 'Job', name: job, uid: `uid-${job}`, controller: true },
            ],
          }
        : {}),
    },
    spec: { containers: [{ name: 'c', image: 'i', ports: [{ containerPort: 80 }] }], nodeName: 'n1' },
    status: { phase: 'Running', podIP: ip },
  };
}
const jobLabels = (job: string) => ({ app: 'report', 'job-name': job, 'batch.kubernetes.io/job-name': job });
const web = pod('web', { app: 'web' }, '10.0.0.9');
const jobObject = {
  apiVersion: 'batch/v1',
  kind: 'Job',
  metadata: {
    name: JOB,
    namespace: 'shop',
    uid: `uid-${JOB}`,
    ownerReferences: [
      {
        apiVersion: 'batch/v1',
        kind: 'CronJob',
        name: 'microseg-report-generator',
        uid: 'u',
        controller: true,
      },
    ],
  },
  spec: { template: { metadata: { labels: { app: 'report' } }, spec: { containers: [{ name: 'c' }] } } },
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'microseg-missing-jobs-'));
  const flows = [0, 1, 2].map((i) =>
    JSON.stringify({
      time: `2026-03-02T10:31:0${i}Z`,
      src: '10.0.0.5',
      dst: '10.0.0.9',
      port: 80,
      protocol: 'TCP',
      verdict: 'FORWARDED',
    }),
  );
  await writeFile(join(dir, 'flows.jsonl'), flows.join('\n') + '\n');
  // A day later, from the later pod of a run a queue admitted late (the straddle test's).
  const later = [
    JSON.stringify({
      time: '2026-03-03T11:00:30Z',
      src: '10.0.0.8',
      dst: '10.0.0.9',
      port: 80,
      protocol: 'TCP',
      verdict: 'FORWARDED',
    }),
  ];
  await writeFile(join(dir, 'flows-later.jsonl'), later.join('\n') + '\n');
});

const recommendWith = (name: string, ...objects: object[]) => recommendOn('flows.jsonl', name, ...objects);

async function recommendOn(flows: string, name: string, ...objects: object[]) {
  const cluster = join(dir, `${name}.json`);
  await writeFile(
    cluster,
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [namespace, web, ...objects] }),
  );
  const out = join(dir, `out-${name}`);
  const io = captureIO();
  const code = await runCli(
    ['recommend', '--flows', join(dir, flows), '--cluster', cluster, '--out', out],
    io,
  );
  const policies = await readFile(join(out, 'shop.yaml'), 'utf8');
  const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as { warnings: string[] };
  return { code, stdout: io.stdout, policies, warnings: report.warnings };
}

describe('a CronJob run whose Job the snapshot lacks', () => {
  it('is named after the CronJob its Job name shows, and the summary and report.json say it was inferred', async () => {
    const r = await recommendWith(
      'pods-only',
      pod(`${JOB}-x7k2p`, jobLabels(JOB), '10.0.0.5', JOB, '2026-03-02T10:30:02Z'),
    );
    expect(r.code).toBe(0);
    expect(r.policies).toContain('  name: microseg-microseg-report-generator\n');
    expect(r.policies).toContain('microseg.dev/workload: shop/CronJob/microseg-report-generator\n');
    expect(r.policies).not.toContain('29540790');
    const inferred =
      `shop/CronJob/microseg-report-generator: inferred from the name of its pods' Job ${JOB}, which the ` +
      'snapshot lacks, as it lacks the CronJob: a CronJob names its Jobs <cronjob>-<scheduled minute> ' +
      `(29540790: 2026-03-02T10:30:00Z), and its first pod was created within a day after it; ${FIX}`;
    expect(r.warnings).toContain(inferred);
    // On a line of its own in the summary, not only counted among the warnings.
    expect(r.stdout.split('\n')).toContain(inferred);
  });

  it('named after the Job when its name tells no run, says in the summary and report.json that the name will change', async () => {
    // Its pod made a week after the minute its name would be scheduled at: no run of a CronJob.
    const late = 'microseg-report-generator-29530710';
    const r = await recommendWith(
      'pods-late',
      pod(`${late}-x7k2p`, jobLabels(late), '10.0.0.5', late, '2026-03-02T10:30:02Z'),
    );
    expect(r.code).toBe(0);
    expect(r.policies).toContain(`microseg.dev/workload: shop/Job/${late}\n`);
    const churn =
      `shop/Job/${late}: named after its pods' Job, which the snapshot lacks, whose name is of a CronJob's ` +
      'run (<cronjob>-<scheduled minute>: 29530710, 2026-02-23T10:30:00Z) but not taken for one, as its ' +
      'first pod was created more than a day after that minute: if a CronJob made it, each of its runs is ' +
      `another workload and its policy is named anew every run; ${FIX}`;
    expect(r.warnings).toContain(churn);
    expect(r.stdout.split('\n')).toContain(churn);
  });

  it('all pods of one run are one workload, though some were made more than a day after its minute', async () => {
    // Its first pod made on time, the next after an eviction two days later (or a Job Kueue admitted
    // late): the Job is a run by its first pod, so both are the CronJob's, not one left a Job of its own.
    for (const [label, first, second, ips, flows] of [
      ['evicted', '2026-03-02T10:30:02Z', '2026-03-04T09:00:00Z', ['10.0.0.5', '10.0.0.6'], 'flows.jsonl'],
      [
        'queued',
        '2026-03-03T10:00:00Z',
        '2026-03-03T11:00:00Z',
        ['10.0.0.7', '10.0.0.8'],
        'flows-later.jsonl',
      ],
    ] as const) {
      const r = await recommendOn(
        flows,
        `straddle-${label}`,
        pod(`${JOB}-b2x9q`, jobLabels(JOB), ips[1], JOB, second),
        pod(`${JOB}-x7k2p`, jobLabels(JOB), ips[0], JOB, first),
      );
      expect(r.code, label).toBe(0);
      expect(r.policies, label).toContain('microseg.dev/workload: shop/CronJob/microseg-report-generator\n');
      expect(r.policies, label).not.toContain('/Job/');
      expect(
        r.warnings.filter((w) => w.includes(FIX)),
        label,
      ).toEqual([expect.stringMatching(/^shop\/CronJob\/microseg-report-generator: inferred /)]);
    }
    // All made more than a day after it: no run, both pods the Job's.
    const r = await recommendOn(
      'flows-later.jsonl',
      'straddle-late',
      pod(`${JOB}-b2x9q`, jobLabels(JOB), '10.0.0.8', JOB, '2026-03-03T11:00:00Z'),
      pod(`${JOB}-x7k2p`, jobLabels(JOB), '10.0.0.7', JOB, '2026-03-03T10:31:00Z'),
    );
    expect(r.policies).toContain(`microseg.dev/workload: shop/Job/${JOB}\n`);
    expect(r.policies).not.toContain('/CronJob/');
  });

  it('a Job made by hand with a number at the end of its name is not taken for a run of a CronJob that does not exist', async () => {
    // x-12345678 would be the run of a CronJob x scheduled in 1993: its pod, made in 2026, tells no run.
    for (const job of ['x-12345678', 'backup-20260302', 'backup-1772447400']) {
      const r = await recommendWith(
        `hand-${job}`,
        pod(`${job}-abcde`, jobLabels(job), '10.0.0.5', job, '2026-03-02T10:30:02Z'),
      );
      expect(r.code, job).toBe(0);
      expect(r.policies, job).toContain(`microseg.dev/workload: shop/Job/${job}\n`);
      expect(r.policies, job).not.toContain('/CronJob/');
      // Nor could a CronJob have named it so (a minute before 2015, or after its pod was made): no
      // warning that its name changes every run.
      expect(
        r.warnings.filter((w) => w.includes(FIX)),
        job,
      ).toEqual([]);
      expect(r.stdout, job).not.toContain(FIX);
    }
  });

  it('a Job whose name is no run of a CronJob (db-migrate) is named after it, nothing said of runs', async () => {
    for (const job of ['db-migrate', 'db-migrate-v2', 'seed']) {
      const r = await recommendWith(
        `plain-${job}`,
        pod(`${job}-abcde`, jobLabels(job), '10.0.0.5', job, '2026-03-02T10:30:02Z'),
      );
      expect(r.code, job).toBe(0);
      expect(r.policies, job).toContain(`microseg.dev/workload: shop/Job/${job}\n`);
      expect(
        r.warnings.filter((w) => w.includes(FIX) || w.includes('every run')),
        job,
      ).toEqual([]);
      expect(r.stdout, job).not.toContain('every run');
    }
  });

  it('with the Job in the snapshot (the CronJob not), is named after the CronJob its owner reference names, nothing said', async () => {
    const r = await recommendWith(
      'with-job',
      jobObject,
      pod(`${JOB}-x7k2p`, jobLabels(JOB), '10.0.0.5', JOB),
    );
    expect(r.policies).toContain('microseg.dev/workload: shop/CronJob/microseg-report-generator\n');
    expect(r.warnings.filter((w) => w.includes(FIX))).toEqual([]);
    expect(r.stdout).not.toContain(FIX);
  });
});
