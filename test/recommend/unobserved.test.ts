/**
 * Workloads in scope that no observed flow reaches or leaves: only their namespace's default deny selects
 * them, which blocks all their traffic once enforced. A CronJob whose runs fell outside the flows' span
 * is the usual one. `recommend` names them in its summary and in report.json (`policies.unobserved`); a
 * workload whose flows were observed but gave no rule (the demo's blackbox-exporter, ICMP only) is not one.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
    policies: { unobserved: string[] };
  };
  return {
    code,
    lines: io.stdout.split('\n').filter((l) => l.startsWith('no flow observed')),
    unobserved: report.policies.unobserved,
  };
}

describe('workloads no observed flow reaches or leaves', () => {
  it('are named in the summary and in report.json, those observed without a rule left out', async () => {
    expect(await recommendIdle('out')).toEqual({
      code: 0,
      lines: [
        "no flow observed for 2 workload(s) in scope: only the default deny selects them, which will block all their traffic: shop/CronJob/backup, shop/Deployment/reports (see policies.unobserved in report.json; a CronJob's runs need flows over a span that includes them)",
      ],
      unobserved: ['shop/CronJob/backup', 'shop/Deployment/reports'],
    });
  });
  it('are none without a default deny: no policy selects them, and nothing of theirs is blocked', async () => {
    expect(await recommendIdle('out-no-deny', '--no-default-deny')).toEqual({
      code: 0,
      lines: [],
      unobserved: [],
    });
  });
});
