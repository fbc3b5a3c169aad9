/**
 * Workloads in scope that no observed flow reaches or leaves: only their namespace's default deny selects
 * them, which blocks all their traffic once enforced. A CronJob whose runs fell outside the flows' span
 * is the usual one. `recommend` names them in its summary and in report.json (`policies.unobserved`); a
 * workload whose flows were observed but gave no rule (the demo's blackbox-exporter, ICMP only) is not one.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { captureIO } from '../../src/cli/io.ts';
import { runCli } from '../../src/cli/main.ts';
import { generateDemo } from '../../src/generate/demo.ts';
import { writeLines } from '../../src/generate/write.ts';

let dir: string;

const template = (app: string) => ({
  metadata: { labels: { app } },
  spec: { containers: [{ name: 'c', image: `${app}:1` }] },
});

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'microseg-unobserved-'));
  const demo = generateDemo();
  const idle = [
    {
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      metadata: { name: 'backup', namespace: 'shop', uid: 'uid-backup' },
      spec: { schedule: '0 3 * * 0', jobTemplate: { spec: { template: template('backup') } } },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'reports', namespace: 'shop', uid: 'uid-reports' },
      spec: { replicas: 0, selector: { matchLabels: { app: 'reports' } }, template: template('reports') },
    },
  ];
  await writeFile(
    join(dir, 'cluster.json'),
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [...demo.objects, ...idle] }),
  );
  await writeLines(join(dir, 'flows.jsonl'), demo.lines);
});

/** `recommend` over the demo and the idle workloads, with `extra` options: its summary line and report. */
async function recommendIdle(out: string, ...extra: string[]) {
  const io = captureIO();
  const flows = join(dir, 'flows.jsonl');
  const code = await runCli(
    [
      'recommend',
      '--flows',
      flows,
      '--cluster',
      join(dir, 'cluster.json'),
      ...extra,
      '--out',
      join(dir, out),
    ],
    io,
  );
  const report = JSON.parse(await readFile(join(dir, out, 'report.json'), 'utf8')) as {
    policies: { unobserved: string[]; cronJobsNotRun: string[] };
  };
  return {
    code,
    lines: io.stdout.split('\n').filter((l) => l.startsWith('no flow observed') || l.startsWith('of them, ')),
    unobserved: report.policies.unobserved,
    cronJobsNotRun: report.policies.cronJobsNotRun,
  };
}

describe('CronJobs none of whose runs the flows hold', () => {
  /**
   * The idle cluster with CronJob backup's last run at `last` (suspended when `suspend`), recommended
   * over the demo's flows with `more` arguments.
   */
  async function withBackup(file: string, last: string | undefined, suspend?: boolean, ...more: string[]) {
    return withSchedule(file, '0 3 * * 0', last, suspend, ...more);
  }
  /** withBackup with the CronJob's `schedule` (with `timeZone` after a space: `0 3 * * * Asia/Tokyo`). */
  async function withSchedule(
    file: string,
    schedule: string,
    last: string | undefined,
    suspend?: boolean,
    ...more: string[]
  ) {
    const [fields, timeZone] = schedule.split(/ (?=[A-Za-z]+\/)/);
    const demo = generateDemo();
    const backup = {
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      metadata: { name: 'backup', namespace: 'shop', uid: 'uid-backup' },
      spec: {
        schedule: fields,
        ...(timeZone ? { timeZone } : {}),
        ...(suspend ? { suspend } : {}),
        jobTemplate: { spec: { template: template('backup') } },
      },
      ...(last ? { status: { lastScheduleTime: last } } : {}),
    };
    await writeFile(
      join(dir, file),
      JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [...demo.objects, backup] }),
    );
    const io = captureIO();
    const code = await runCli(
      [
        'recommend',
        '--flows',
        join(dir, 'flows.jsonl'),
        ...more,
        '--cluster',
        join(dir, file),
        '--out',
        join(dir, `${file}.out`),
      ],
      io,
    );
    const report = JSON.parse(await readFile(join(dir, `${file}.out`, 'report.json'), 'utf8')) as {
      policies: { unobserved: string[]; cronJobsNotRun: string[] };
    };
    return { code, unobserved: report.policies.unobserved, notRun: report.policies.cronJobsNotRun };
  }

  it('are the unobserved CronJobs that last ran before the first flow, unless suspended', async () => {
    const demo = generateDemo();
    const first = Math.min(
      ...demo.lines.flatMap((l) => {
        const t = (JSON.parse(l) as { flow?: { time?: string } }).flow?.time;
        return t ? [Date.parse(t)] : [];
      }),
    );
    const before = new Date(first - 86_400_000).toISOString();
    const during = new Date(first + 60_000).toISOString();
    expect(await withBackup('before.json', before)).toEqual({
      code: 0,
      unobserved: ['shop/CronJob/backup'],
      notRun: ['shop/CronJob/backup'],
    });
    // It ran while the flows were recorded and made none: idle on purpose.
    expect(await withBackup('during.json', during)).toEqual({
      code: 0,
      unobserved: ['shop/CronJob/backup'],
      notRun: [],
    });
    // Suspended, it will not run.
    expect(await withBackup('paused.json', before, true)).toEqual({
      code: 0,
      unobserved: ['shop/CronJob/backup'],
      notRun: [],
    });
  });

  it('after a last run later than the flows, are those whose schedule started no run while they were recorded', async () => {
    // The demo's flows run from 10:00 to 11:00 UTC on Monday 2026-03-02; the snapshot was taken a week
    // later, after the CronJob's last run.
    const later = '2026-03-09T09:30:00Z';
    // Sundays at 03:00: none of its runs was in the flows.
    expect(await withSchedule('weekly.json', '0 3 * * 0', later)).toMatchObject({
      notRun: ['shop/CronJob/backup'],
    });
    // At half past every hour: its 10:30 run was, and made no flow.
    expect(await withSchedule('hourly.json', '30 * * * *', later)).toMatchObject({
      unobserved: ['shop/CronJob/backup'],
      notRun: [],
    });
    // At 19:30 in Tokyo, 10:30 UTC; at 10:30 in Berlin, 09:30 UTC, before the first flow.
    expect(await withSchedule('tokyo.json', '30 19 * * * Asia/Tokyo', later)).toMatchObject({ notRun: [] });
    expect(await withSchedule('berlin.json', '30 10 * * * Europe/Berlin', later)).toMatchObject({
      notRun: ['shop/CronJob/backup'],
    });
  });

  it('with Kubescape records, whose span has no known start, are only those that never ran', async () => {
    const kubescape = fileURLToPath(
      new URL('../../../shared/samples/kubescape-networkneighborhood.json', import.meta.url),
    );
    // Before every record's time, Kubescape's too: its connections may still be older.
    const before = '2000-01-01T00:00:00Z';
    // (Its namespace's connections cannot all be allowed from this snapshot: shop alone is proposed for.)
    const more = ['--flows', kubescape, '--namespace', 'shop'];
    expect(await withBackup('ks-before.json', before, false, ...more)).toMatchObject({
      unobserved: ['shop/CronJob/backup'],
      notRun: [],
    });
    expect(await withBackup('ks-never.json', undefined, false, ...more)).toMatchObject({
      unobserved: ['shop/CronJob/backup'],
      notRun: ['shop/CronJob/backup'],
    });
  });
});

describe('workloads no observed flow reaches or leaves', () => {
  it('are named in the summary and in report.json, those observed without a rule left out', async () => {
    expect(await recommendIdle('out')).toEqual({
      code: 0,
      lines: [
        "no flow observed for 2 workload(s) in scope: only the default deny selects them, which will block all their traffic: shop/CronJob/backup, shop/Deployment/reports (see policies.unobserved in report.json; a CronJob's runs need flows over a span that includes them)",
        // The CronJob has never run: nothing of it is in the flows.
        'of them, 1 CronJob(s) started no run the flows cover (by their last run and schedule), so their traffic is unknown: shop/CronJob/backup (see policies.cronJobsNotRun in report.json; record flows over one of their runs before enforcing)',
      ],
      unobserved: ['shop/CronJob/backup', 'shop/Deployment/reports'],
      cronJobsNotRun: ['shop/CronJob/backup'],
    });
  });
  it('are none without a default deny: no policy selects them, and nothing of theirs is blocked', async () => {
    expect(await recommendIdle('out-no-deny', '--no-default-deny')).toEqual({
      code: 0,
      lines: [],
      unobserved: [],
      cronJobsNotRun: [],
    });
  });
});
