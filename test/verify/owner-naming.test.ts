/**
 * The engine names a pod's workload as identity (and so recommend, graph and the report) does: after its
 * root owner. A CronJob's Jobs' pods are the CronJob's, a Deployment's ReplicaSets' pods the Deployment's,
 * an orphaned ReplicaSet's pods its own, a pod with no owner a workload of its own.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/main.ts';
import { captureIO } from '../../src/cli/io.ts';
import { buildIdentity } from '../../src/identity/index.ts';
import { engineFromSnapshot } from '../../src/verify/engine.ts';
import { snapshotFromText } from '../../src/verify/load.ts';
import { podClasses, verifyProposal } from '../../src/verify/reach.ts';

const pod = (name: string, labels: string, owner: string | undefined, ip: string) => `---
apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: ops
  labels: { ${labels} }
${owner ? `  ownerReferences: [{ ${owner}, controller: true }]\n` : ''}spec:
  nodeName: node-a
  containers: [{ name: main, ports: [{ name: http, containerPort: 8080 }] }]
status: { phase: Running, podIP: ${ip}, podIPs: [{ ip: ${ip} }] }
`;

const template = (app: string) =>
  `{ metadata: { labels: { app: ${app} } }, spec: { containers: [{ name: main, ports: [{ name: http, containerPort: 8080 }] }] } }`;

const CLUSTER = `apiVersion: v1
kind: Namespace
metadata: { name: ops }
---
apiVersion: batch/v1
kind: CronJob
metadata: { name: report, namespace: ops, uid: u-cj }
spec:
  schedule: '*/30 * * * *'
  jobTemplate: { spec: { template: ${template('report')} } }
---
apiVersion: batch/v1
kind: Job
metadata:
  name: report-29540790
  namespace: ops
  uid: u-job
  ownerReferences: [{ apiVersion: batch/v1, kind: CronJob, name: report, uid: u-cj, controller: true }]
spec:
  selector: { matchLabels: { batch.kubernetes.io/controller-uid: u-job } }
  template: ${template('report')}
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: api, namespace: ops, uid: u-dep }
spec:
  selector: { matchLabels: { app: api } }
  template: ${template('api')}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: api-6f7d8
  namespace: ops
  uid: u-rs
  ownerReferences: [{ apiVersion: apps/v1, kind: Deployment, name: api, uid: u-dep, controller: true }]
spec:
  selector: { matchLabels: { app: api, pod-template-hash: 6f7d8 } }
  template: ${template('api')}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: { name: legacy-5d9c7, namespace: ops, uid: u-orphan }
spec:
  selector: { matchLabels: { app: legacy, pod-template-hash: 5d9c7 } }
  template: ${template('legacy')}
${pod('report-29540790-x7k2p', 'app: report, batch.kubernetes.io/controller-uid: u-job, job-name: report-29540790', 'apiVersion: batch/v1, kind: Job, name: report-29540790, uid: u-job', '10.1.0.10')}${pod('api-6f7d8-k2lpq', 'app: api, pod-template-hash: 6f7d8', 'apiVersion: apps/v1, kind: ReplicaSet, name: api-6f7d8, uid: u-rs', '10.1.0.11')}${pod('legacy-5d9c7-q8w2e', 'app: legacy, pod-template-hash: 5d9c7', 'apiVersion: apps/v1, kind: ReplicaSet, name: legacy-5d9c7, uid: u-orphan', '10.1.0.12')}${pod('debug', 'app: debug', undefined, '10.1.0.13')}---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: only-api, namespace: ops }
spec:
  podSelector: { matchLabels: { app: legacy } }
  ingress: [{ from: [{ podSelector: { matchLabels: { app: api } } }] }]
`;

const snap = snapshotFromText(CLUSTER, 'ops.yaml');

function clusterFile(): string {
  const file = join(mkdtempSync(join(tmpdir(), 'microseg-owner-')), 'cluster.yaml');
  writeFileSync(file, CLUSTER);
  return file;
}

async function cli(...argv: string[]) {
  const io = captureIO();
  const code = await runCli(argv, io);
  return { code, out: io.stdout, err: io.stderr };
}

describe('pod classes are named after their root owner', () => {
  it('names a CronJob, a Deployment, an orphaned ReplicaSet and a bare pod as identity does', () => {
    const classes = podClasses(engineFromSnapshot(snap));
    expect(classes.map((c) => [c.name, c.workload, c.members])).toEqual([
      ['ops/Deployment/api', 'ops/Deployment/api', ['ops/api-6f7d8-k2lpq']],
      ['ops/Pod/debug', 'ops/Pod/debug', ['ops/debug']],
      ['ops/ReplicaSet/legacy-5d9c7', 'ops/ReplicaSet/legacy-5d9c7', ['ops/legacy-5d9c7-q8w2e']],
      ['ops/CronJob/report', 'ops/CronJob/report', ['ops/report-29540790-x7k2p']],
    ]);
    // The same names as the workloads of recommend's identity, pod by pod.
    const identity = buildIdentity(snap);
    for (const c of classes) for (const m of c.members) expect(identity.podWorkload.get(m)).toBe(c.workload);
  });

  it("follows a ReplicaSet's owner reference to its Deployment, not the pod's pod-template-hash", () => {
    // A pod of the ReplicaSet without the label: the ReplicaSet's owner still names its workload.
    const text = CLUSTER.replace('labels: { app: api, pod-template-hash: 6f7d8 }', 'labels: { app: api }');
    const s = snapshotFromText(text, 'ops.yaml');
    const names = podClasses(engineFromSnapshot(s)).map((c) => c.name);
    expect(names).toEqual([
      'ops/Deployment/api',
      'ops/Pod/debug',
      'ops/ReplicaSet/legacy-5d9c7',
      'ops/CronJob/report',
    ]);
    expect(buildIdentity(s).podWorkload.get('ops/api-6f7d8-k2lpq')).toBe('ops/Deployment/api');
  });

  it('names excess reachability by the same workloads', () => {
    const r = verifyProposal(engineFromSnapshot(snap), [
      {
        from: { namespace: 'ops', pod: 'report-29540790-x7k2p' },
        to: { namespace: 'ops', pod: 'api-6f7d8-k2lpq' },
        port: 8080,
      },
      {
        from: { namespace: 'ops', pod: 'debug' },
        to: { namespace: 'ops', pod: 'legacy-5d9c7-q8w2e' },
        port: 8080,
      },
    ]);
    expect(r.blocked.map((b) => b.reason)).toEqual([
      'denied: ingress to ops/legacy-5d9c7-q8w2e: isolated by ops/only-api and no ingress rule matches',
    ]);
    expect(r.excess.map((e) => `${e.from} -> ${e.to} ${e.port}/${e.protocol}`)).toEqual([
      'ops/CronJob/report -> ops/CronJob/report 8080/TCP',
      'ops/CronJob/report -> ops/Pod/debug 8080/TCP',
      'ops/Deployment/api -> ops/CronJob/report 8080/TCP',
      'ops/Deployment/api -> ops/Deployment/api 8080/TCP',
      'ops/Deployment/api -> ops/Pod/debug 8080/TCP',
      'ops/Deployment/api -> ops/ReplicaSet/legacy-5d9c7 8080/TCP',
      'ops/Pod/debug -> ops/CronJob/report 8080/TCP',
      'ops/Pod/debug -> ops/Deployment/api 8080/TCP',
      'ops/Pod/debug -> ops/Pod/debug 8080/TCP',
      'ops/ReplicaSet/legacy-5d9c7 -> ops/CronJob/report 8080/TCP',
      'ops/ReplicaSet/legacy-5d9c7 -> ops/Deployment/api 8080/TCP',
      'ops/ReplicaSet/legacy-5d9c7 -> ops/Pod/debug 8080/TCP',
    ]);
  });
});

describe('blast-radius --workload', () => {
  const blast = (workload: string) => cli('blast-radius', '--cluster', clusterFile(), '--workload', workload);

  it('titles a CronJob by its name, and lists every workload by its root owner', async () => {
    const r = await blast('ops/CronJob/report');
    expect([r.code, r.err]).toEqual([0, '']);
    expect(r.out).toBe(
      [
        'blast radius of ops/CronJob/report',
        'current policies:',
        '  reaches (3 workloads; pod classes: 3):',
        '    ops/Deployment/api [8080/TCP]',
        '    ops/Pod/debug [8080/TCP]',
        '    ops/CronJob/report [8080/TCP]',
        '  reached from (4 workloads; pod classes: 4):',
        '    ops/Deployment/api [8080/TCP]',
        '    ops/Pod/debug [8080/TCP]',
        '    ops/ReplicaSet/legacy-5d9c7 [8080/TCP]',
        '    ops/CronJob/report [8080/TCP]',
        '  paths from internet-exposed workloads (3):',
        '    ops/CronJob/report',
        '    ops/Deployment/api -> ops/CronJob/report',
        '    ops/Pod/debug -> ops/CronJob/report',
        '  reachable workload pairs in the cluster: 13 (pod classes: 13)',
        '',
      ].join('\n'),
    );
  });

  it('titles a Job, a ReplicaSet, an orphaned ReplicaSet and a bare pod by their workload', async () => {
    const titles: string[] = [];
    for (const w of [
      'ops/Job/report-29540790',
      'ops/ReplicaSet/api-6f7d8',
      'ops/Deployment/api',
      'ops/ReplicaSet/legacy-5d9c7',
      'ops/Pod/debug',
    ]) {
      const r = await blast(w);
      expect([r.code, r.err], w).toEqual([0, '']);
      titles.push(r.out.split('\n')[0]!);
    }
    expect(titles).toEqual([
      'blast radius of ops/CronJob/report',
      'blast radius of ops/Deployment/api',
      'blast radius of ops/Deployment/api',
      'blast radius of ops/ReplicaSet/legacy-5d9c7',
      'blast radius of ops/Pod/debug',
    ]);
  });
});

describe('explain and simulate notes', () => {
  it('name an owned ReplicaSet or Job with the workload it is of', async () => {
    const file = clusterFile();
    const explain = (from: string) =>
      cli('explain', '--cluster', file, '--from', from, '--to', 'ops/Pod/debug', '--port', 'http');
    const notes: string[] = [];
    for (const from of [
      'ops/Job/report-29540790',
      'ops/CronJob/report',
      'ops/ReplicaSet/api-6f7d8',
      'ops/ReplicaSet/legacy-5d9c7',
    ]) {
      const r = await explain(from);
      expect([r.code, r.err], from).toEqual([0, '']);
      notes.push(...r.out.split('\n').filter((l) => l.startsWith('  note:')));
    }
    expect(notes).toEqual([
      '  note: --from ops/Job/report-29540790 (of ops/CronJob/report): answered for ops/report-29540790-x7k2p, its only pod',
      '  note: --from ops/CronJob/report: answered for ops/report-29540790-x7k2p, its only pod',
      '  note: --from ops/ReplicaSet/api-6f7d8 (of ops/Deployment/api): answered for ops/api-6f7d8-k2lpq, its only pod',
      '  note: --from ops/ReplicaSet/legacy-5d9c7: answered for ops/legacy-5d9c7-q8w2e, its only pod',
    ]);

    const queries = join(mkdtempSync(join(tmpdir(), 'microseg-owner-')), 'queries.json');
    writeFileSync(
      queries,
      JSON.stringify([
        { from: 'ops/rs/api-6f7d8', to: 'ops/job/report-29540790', port: 'http' },
        { from: 'ops/Pod/debug', to: 'ops/ReplicaSet/legacy-5d9c7', port: 8080 },
      ]),
    );
    const s = await cli('simulate', '--cluster', file, '--queries', queries, '--detail');
    expect([s.code, s.err]).toEqual([0, '']);
    expect((JSON.parse(s.out) as { notes: string[] }[]).map((a) => a.notes)).toEqual([
      [
        'from ops/ReplicaSet/api-6f7d8 (of ops/Deployment/api): answered for ops/api-6f7d8-k2lpq, its only pod',
        'to ops/Job/report-29540790 (of ops/CronJob/report): answered for ops/report-29540790-x7k2p, its only pod',
      ],
      ['to ops/ReplicaSet/legacy-5d9c7: answered for ops/legacy-5d9c7-q8w2e, its only pod'],
    ]);
  });

  it('answer a workload the snapshot lacks the object of by the pods named after it', async () => {
    // No Deployment object: its ReplicaSet names it, as identity finds it.
    const text = CLUSTER.replace(
      /apiVersion: apps\/v1\nkind: Deployment\nmetadata: \{ name: api[\s\S]*?\n---\n/,
      '',
    );
    const file = join(mkdtempSync(join(tmpdir(), 'microseg-owner-')), 'cluster.yaml');
    writeFileSync(file, text);
    const r = await cli(
      'explain',
      '--cluster',
      file,
      '--from',
      'ops/Deployment/api',
      '--to',
      'ops/Pod/debug',
      '--port',
      'http',
    );
    expect([r.code, r.err]).toEqual([0, '']);
    expect(r.out.split('\n').filter((l) => l.startsWith('  note:'))).toEqual([
      '  note: --from ops/Deployment/api: answered for ops/api-6f7d8-k2lpq, its only pod',
    ]);
    const missing = await cli(
      'explain',
      '--cluster',
      file,
      '--from',
      'ops/Deployment/apis',
      '--to',
      'ops/Pod/debug',
      '--port',
      'http',
    );
    expect([missing.code, missing.err]).toEqual([
      2,
      'microseg explain: --from: no Deployment apis in namespace ops\n',
    ]);
  });

  it('take a Job the snapshot lacks, with its CronJob, for the CronJob its pods are named after', async () => {
    // Pods alone (kubectl get pods): identity names the run's pod after the CronJob its Job's name tells.
    const text = CLUSTER.replace(/apiVersion: batch\/v1\nkind: CronJob\n[\s\S]*?\n---\n/, '')
      .replace(/apiVersion: batch\/v1\nkind: Job\n[\s\S]*?\n---\n/, '')
      .replace(
        '  name: report-29540790-x7k2p\n',
        '  name: report-29540790-x7k2p\n  creationTimestamp: 2026-03-02T10:30:04Z\n',
      );
    expect(text).not.toContain('kind: CronJob\n');
    expect(text).not.toContain('kind: Job\n');
    const file = join(mkdtempSync(join(tmpdir(), 'microseg-owner-')), 'cluster.yaml');
    writeFileSync(file, text);
    const explain = (from: string) =>
      cli('explain', '--cluster', file, '--from', from, '--to', 'ops/Pod/debug', '--port', 'http');
    const notes: string[] = [];
    for (const from of ['ops/Job/report-29540790', 'ops/CronJob/report']) {
      const r = await explain(from);
      expect([r.code, r.err], from).toEqual([0, '']);
      expect(r.out, from).toContain('ops/report-29540790-x7k2p -> ops/debug TCP/8080: ALLOWED');
      notes.push(...r.out.split('\n').filter((l) => l.startsWith('  note:')));
    }
    expect(notes).toEqual([
      '  note: --from ops/Job/report-29540790 (of ops/CronJob/report): taken as the CronJob inferred from ' +
        "the Job's name, as the snapshot has neither object; answered for ops/report-29540790-x7k2p, its only pod",
      '  note: --from ops/CronJob/report: answered for ops/report-29540790-x7k2p, its only pod',
    ]);
    // Another run, which the snapshot has no pod of, is still no workload.
    const other = await explain('ops/Job/report-29540800');
    expect([other.code, other.err]).toEqual([
      2,
      'microseg explain: --from: no Job report-29540800 in namespace ops\n',
    ]);
  });
});

describe('a workload owned by an operator', () => {
  // prometheus-operator's StatefulSet, owned by its Prometheus custom resource (no workload kind).
  const text = `apiVersion: v1
kind: Namespace
metadata: { name: mon }
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: prometheus-k8s
  namespace: mon
  uid: u-sts
  ownerReferences: [{ apiVersion: monitoring.coreos.com/v1, kind: Prometheus, name: k8s, uid: u-prom, controller: true }]
spec:
  selector: { matchLabels: { app: prometheus } }
  template: ${template('prometheus')}
${[0, 1]
  .map(
    (i) => `---
apiVersion: v1
kind: Pod
metadata:
  name: prometheus-k8s-${i}
  namespace: mon
  labels: { app: prometheus }
  ownerReferences: [{ apiVersion: apps/v1, kind: StatefulSet, name: prometheus-k8s, uid: u-sts, controller: true }]
spec: { nodeName: node-a, containers: [{ name: main, ports: [{ name: http, containerPort: 8080 }] }] }
status: { podIP: 10.2.0.${i + 5}, podIPs: [{ ip: 10.2.0.${i + 5} }] }
`,
  )
  .join('')}`;
  const s = snapshotFromText(text, 'mon.yaml');

  it('is named after its own kind, not each pod after itself, by identity and the engine alike', () => {
    expect([...buildIdentity(s).podWorkload]).toEqual([
      ['mon/prometheus-k8s-0', 'mon/StatefulSet/prometheus-k8s'],
      ['mon/prometheus-k8s-1', 'mon/StatefulSet/prometheus-k8s'],
    ]);
    expect(podClasses(engineFromSnapshot(s)).map((c) => [c.name, c.members])).toEqual([
      ['mon/StatefulSet/prometheus-k8s', ['mon/prometheus-k8s-0', 'mon/prometheus-k8s-1']],
    ]);
  });

  it('is found by its pods', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'microseg-owner-')), 'cluster.yaml');
    writeFileSync(file, text);
    const r = await cli('blast-radius', '--cluster', file, '--workload', 'mon/sts/prometheus-k8s');
    expect([r.code, r.err]).toEqual([0, '']);
    expect(r.out.split('\n').slice(0, 4)).toEqual([
      'blast radius of mon/StatefulSet/prometheus-k8s',
      'current policies:',
      '  reaches (1 workload; pod classes: 1):',
      '    mon/StatefulSet/prometheus-k8s [8080/TCP]',
    ]);
    const e = await cli(
      'explain',
      '--cluster',
      file,
      '--from',
      'mon/StatefulSet/prometheus-k8s',
      '--to',
      'mon/prometheus-k8s-1',
      '--port',
      'http',
    );
    expect(e.out.split('\n').filter((l) => l.startsWith('  note:'))).toEqual([
      '  note: --from mon/StatefulSet/prometheus-k8s: answered for mon/prometheus-k8s-0, the first of its 2 pods by name',
    ]);
  });
});

describe("a collector's name of an object an operator's workload owns", () => {
  it('is taken to that workload', () => {
    // CronJob backup, owned by a custom resource, ran Job backup-manual by hand (no scheduled-time
    // suffix to take its CronJob from); the snapshot has no pod of it.
    const s = snapshotFromText(
      `apiVersion: v1
kind: Namespace
metadata: { name: db }
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: backup
  namespace: db
  uid: u-cj
  ownerReferences: [{ apiVersion: example.com/v1, kind: Backup, name: nightly, uid: u-cr, controller: true }]
spec: { schedule: '0 2 * * *', jobTemplate: { spec: { template: ${template('backup')} } } }
---
apiVersion: batch/v1
kind: Job
metadata:
  name: backup-manual
  namespace: db
  uid: u-job
  ownerReferences: [{ apiVersion: batch/v1, kind: CronJob, name: backup, uid: u-cj, controller: true }]
spec: { template: ${template('backup')} }
`,
      'db.yaml',
    );
    const peer = buildIdentity(s).resolve(
      { namespace: 'db', workload: { kind: 'Job', name: 'backup-manual' } },
      0,
    );
    expect(peer).toEqual({ id: 'db/CronJob/backup', kind: 'workload' });
  });
});
