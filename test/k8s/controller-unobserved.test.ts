/**
 * Workloads no observed flow reaches or leaves, in the controller against a real kube-apiserver: a
 * CronJob between runs (no pod) makes no flow for the audit to find, so `AuditClean` goes True; the
 * default deny alone selects it and cuts it off once enforced. The Segmentation names it in status, at
 * the end of the AuditClean message and in a Warning Event, and Enforce is not held back by it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KubeConfig } from '@kubernetes/client-node';
import { createNamespace, createPod, setPodIPs, sharedCluster, uniqueName } from '../cluster/index.ts';
import type { RunningController } from '../controller/k8s-helpers.ts';
import {
  applyTeamSegmentation,
  applyYaml,
  cond,
  events,
  flow,
  getSeg,
  install,
  mergePatch,
  startLeader,
  waitSeg,
} from '../controller/k8s-helpers.ts';

const cluster = sharedCluster();
const ns = uniqueName('idle');
const team = uniqueName('team');
const segName = uniqueName('seg');
const UI_TOKEN = 'idle-ui-token';
let admin: KubeConfig;
let ctrl: RunningController;

const template = (app: string) => ({
  metadata: { labels: { app } },
  spec: { containers: [{ name: 'c', image: 'registry.k8s.io/pause:3.10' }] },
});

/** CronJob `name` of the test's namespace on `schedule` (no controller-manager runs it). */
async function applyCronJob(
  name: string,
  schedule: string,
  timeZone?: string,
  namespace = ns,
): Promise<void> {
  const job = template(name);
  await applyYaml(cluster, {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: { name, namespace },
    spec: {
      schedule,
      ...(timeZone ? { timeZone } : {}),
      jobTemplate: { spec: { template: { ...job, spec: { ...job.spec, restartPolicy: 'OnFailure' } } } },
    },
  });
}

/** The uid of the object at `path`. */
async function uidOf(path: string): Promise<string> {
  const r = await cluster.request('GET', path);
  expect(r.status, r.text).toBe(200);
  return (r.json as { metadata: { uid: string } }).metadata.uid;
}

beforeAll(async () => {
  await install(cluster);
  admin = await cluster.kubeConfig();
  await createNamespace(admin, ns, { team });
  // Deployment web with one pod (through its ReplicaSet; no controller-manager runs), a client pod,
  // and CronJob backup, which has no Job or pod now.
  await applyYaml(cluster, {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', namespace: ns },
    spec: { replicas: 1, selector: { matchLabels: { app: 'web' } }, template: template('web') },
  });
  const deployment = await uidOf(`/apis/apps/v1/namespaces/${ns}/deployments/web`);
  await applyYaml(cluster, {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: {
      name: 'web-5d9',
      namespace: ns,
      ownerReferences: [
        { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', uid: deployment, controller: true },
      ],
    },
    spec: { replicas: 1, selector: { matchLabels: { app: 'web' } }, template: template('web') },
  });
  const replicaSet = await uidOf(`/apis/apps/v1/namespaces/${ns}/replicasets/web-5d9`);
  await createPod(admin, {
    namespace: ns,
    name: 'web-5d9-x1',
    labels: { app: 'web' },
    ownerReferences: [
      { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-5d9', uid: replicaSet, controller: true },
    ],
  });
  await setPodIPs(admin, { namespace: ns, name: 'web-5d9-x1' }, ['10.81.0.2']);
  await createPod(admin, { namespace: ns, name: 'client', labels: { app: 'client' } });
  await setPodIPs(admin, { namespace: ns, name: 'client' }, ['10.81.0.1']);
  await applyCronJob('backup', '0 3 * * 0');
  ctrl = await startLeader(cluster, {
    segmentationSelector: `microseg.dev/test=${segName}`,
    identity: 'unobserved-a',
    asAdmin: true,
    leaseName: `lease-${segName}`,
    ui: { auth: { token: UI_TOKEN } },
  });
}, 120_000);

/** A GET of the controller's page API, with its token. */
async function page<T>(path: string): Promise<{ status: number; body: T }> {
  const r = await fetch(`http://127.0.0.1:${ctrl.port}/api/v1${path}`, {
    headers: { authorization: `Bearer ${UI_TOKEN}` },
  });
  return { status: r.status, body: (await r.json()) as T };
}

afterAll(async () => {
  await ctrl?.stop();
});

describe('a workload no observed flow reaches or leaves, in the controller', () => {
  const note = '1 workload(s) saw no flow and will be cut off by the default deny once enforced';
  const seconds = (t: number) => new Date(t).toISOString().replace('.000Z', 'Z');
  /** The first of `times` (epoch ms, ascending) after now. */
  const nextOf = (times: number[]) => seconds(times.find((t) => t > Date.now())!);
  const today = new Date();
  const [y, m, d] = [today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate()];
  // backup runs on Sundays at 03:00 UTC.
  const backupNext = () => nextOf([0, 7, 14].map((k) => Date.UTC(y, m, d - today.getUTCDay() + k, 3)));
  // report on the first of the month at 04:00 in Tokyo (UTC+9): 19:00 UTC the day before.
  const reportNext = () => nextOf([0, 1, 2].map((k) => Date.UTC(y, m + k, 1, 4 - 9)));
  // The CronJob has never run: what it needs was never there to learn. Its schedule says when it runs.
  const notRun = () =>
    `1 CronJob(s) have not finished a run since learning began, so their traffic is unknown: ${ns}/CronJob/backup (next run ${backupNext()})`;

  it('is named in status, at the end of a clean AuditClean, and in a Warning Event', async () => {
    await applyTeamSegmentation(cluster, segName, team);
    await waitSeg(cluster, segName, 'Learning phase', (s) => s.status?.phase === 'Learning');
    const res = await ctrl.push([flow(`${ns}/client`, `${ns}/web-5d9-x1`, 8080, { count: 3 })]);
    expect(res.status, await res.text()).toBe(202);
    const learning = await waitSeg(cluster, segName, 'one edge', (s) => s.status?.edges === 1);
    expect(learning.status!.unobserved).toBe(1);
    expect(learning.status!.unobservedWorkloads).toEqual([`${ns}/CronJob/backup`]);
    await mergePatch(cluster, `/apis/microseg.dev/v1alpha1/segmentations/${segName}`, {
      spec: { mode: 'Audit' },
    });
    // The CronJob makes no flow in the 3 s window: the audit is clean, and says what Enforce cuts off.
    const seg = await waitSeg(
      cluster,
      segName,
      'AuditClean',
      (s) => cond(s, 'AuditClean')?.status === 'True',
    );
    expect(seg.status!.unobserved).toBe(1);
    expect(seg.status!.unobservedWorkloads).toEqual([`${ns}/CronJob/backup`]);
    expect(cond(seg, 'AuditClean')).toMatchObject({
      reason: 'NoBlockedFlows',
      message: `no flow would have been blocked in the last 3s; ${note} (see status.unobservedWorkloads); ${notRun()}`,
    });
    await ctrl.manager.events.flush();
    expect((await events(cluster, segName)).filter((e) => e.reason === 'Unobserved')).toEqual([
      expect.objectContaining({
        type: 'Warning',
        message: `${note}: ${ns}/CronJob/backup (see status.unobservedWorkloads)`,
        count: 1,
      }),
    ]);
    // The page lists it in Audit too (no node stands for it), and its details name the frozen deny.
    const listed = await page<{ total: number; workloads: { id: string }[] }>('/unobserved');
    expect([listed.status, listed.body.workloads.map((w) => w.id)]).toEqual([200, [`${ns}/CronJob/backup`]]);
    const graph = await page<{ totals: { unobserved: number }; nodes: { id: string }[] }>('/graph');
    expect(graph.body.totals.unobserved).toBe(1);
    expect(graph.body.nodes.map((n) => n.id)).not.toContain(`${ns}/CronJob/backup`);
    const details = await page<{ unobserved?: boolean; policies: string[]; cronJob?: object }>(
      `/nodes?id=${encodeURIComponent(`${ns}/CronJob/backup`)}`,
    );
    expect(details.status).toBe(200);
    expect(details.body.unobserved).toBe(true);
    // From the informer's copy of the CronJob: its schedule, and when its traffic can next be seen.
    expect(details.body.cronJob).toEqual({ schedule: '0 3 * * 0', nextRun: backupNext() });
    expect(details.body.policies).toEqual([
      expect.stringMatching(new RegExp(`^${ns}/microseg-default-deny`)),
    ]);
    // A set of policies posted for audit is replayed against the learned graph: the proposal itself
    // blocks nothing; without web's policy, client → web falls to the default deny.
    const yaml = await (
      await fetch(`http://127.0.0.1:${ctrl.port}/api/v1/proposals?format=yaml`, {
        headers: { authorization: `Bearer ${UI_TOKEN}` },
      })
    ).text();
    const audit = async (body: string) => {
      const r = await fetch(`http://127.0.0.1:${ctrl.port}/api/v1/audit`, {
        method: 'POST',
        headers: { authorization: `Bearer ${UI_TOKEN}`, 'content-type': 'application/yaml' },
        body,
      });
      return {
        status: r.status,
        body: (await r.json()) as { wouldBlock: { source: string; target: string }[] },
      };
    };
    const whole = await audit(yaml);
    expect([whole.status, whole.body.wouldBlock]).toEqual([200, []]);
    const withoutWeb = yaml
      .split(/^---$/m)
      .filter((d) => !/name: microseg-web\n/.test(d))
      .join('---');
    const cut = await audit(withoutWeb);
    expect(cut.status).toBe(200);
    expect(cut.body.wouldBlock.map((b) => `${b.source} -> ${b.target}`)).toEqual([
      `${ns}/Pod/client -> ${ns}/Deployment/web`,
    ]);
    // The rollout view names it from the Segmentation's status.
    const audits =
      await page<{ name: string; unobserved: number; unobservedWorkloads: string[] }[]>('/audits');
    expect(audits.body.find((a) => a.name === segName)).toMatchObject({
      unobserved: 1,
      unobservedWorkloads: [`${ns}/CronJob/backup`],
    });
  });

  it('holds automatic promotion to Enforce until the CronJob has run once', async () => {
    const path = `/apis/microseg.dev/v1alpha1/segmentations/${segName}`;
    // Automatic, and spec.mode declared by no one (kubectl apply's record of it dropped), so that the
    // controller promotes by itself rather than asking Git to (PromotionDue).
    await mergePatch(cluster, path, {
      metadata: { annotations: { 'kubectl.kubernetes.io/last-applied-configuration': null } },
      spec: { promotion: { automatic: true, after: '1s' } },
    });
    const waiting = await waitSeg(cluster, segName, 'the wait named', (s) =>
      (cond(s, 'AuditClean')?.message ?? '').includes(
        'automatic promotion to Enforce waits for their next run',
      ),
    );
    expect(cond(waiting, 'AuditClean')?.status).toBe('True');
    // Clean for well over `after`, and reconciled many times meanwhile: still in Audit.
    await new Promise((r) => setTimeout(r, 3000));
    expect((await getSeg(cluster, segName)).spec?.mode).toBe('Audit');
    await ctrl.manager.events.flush();
    expect((await events(cluster, segName)).filter((e) => e.reason === 'PromotionWaiting')).toEqual([
      expect.objectContaining({
        type: 'Normal',
        message: `promotion Audit → Enforce would be due (the audit has been clean for 1s), but waits for 1 CronJob(s) that have not finished a run since learning began, so their traffic is unknown: ${ns}/CronJob/backup (next run ${backupNext()}) (see AuditClean)`,
      }),
    ]);
    // Its run is scheduled (as its controller records it when it creates the Job), and the Job is
    // active: its pods may not even have started, so nothing of its traffic could be audited yet.
    const cronJobStatus = `/apis/batch/v1/namespaces/${ns}/cronjobs/backup/status`;
    await mergePatch(cluster, cronJobStatus, {
      status: {
        lastScheduleTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
        active: [{ apiVersion: 'batch/v1', kind: 'Job', name: 'backup-1', namespace: ns }],
      },
    });
    await new Promise((r) => setTimeout(r, 3000));
    expect((await getSeg(cluster, segName)).spec?.mode).toBe('Audit');
    // The run is over and made no flow: idle on purpose, promoted.
    await mergePatch(cluster, cronJobStatus, { status: { active: null } });
    const promoted = await waitSeg(cluster, segName, 'Enforcing', (s) => s.status?.phase === 'Enforcing');
    expect(promoted.spec?.mode).toBe('Enforce');
    expect(promoted.status!.unobservedWorkloads).toEqual([`${ns}/CronJob/backup`]);
    await ctrl.manager.events.flush();
    const told = await events(cluster, segName);
    expect(told.map((e) => e.reason)).toContain('AutoPromoted');
    // Said once for the CronJob, although what it waited for changed (its next run, then its run).
    expect(told.filter((e) => e.reason === 'PromotionWaiting').map((e) => e.count)).toEqual([1]);
  });

  it('does not take Enforce back for a CronJob that has not run', async () => {
    await applyCronJob('report', '0 4 1 * *', 'Asia/Tokyo');
    const seg = await waitSeg(cluster, segName, 'report listed', (s) =>
      (s.status?.unobservedWorkloads ?? []).includes(`${ns}/CronJob/report`),
    );
    expect(seg.status!.phase).toBe('Enforcing');
    expect(cond(seg, 'Enforced')).toMatchObject({ status: 'True', reason: 'PoliciesApplied' });
    const details = await page<{ cronJob?: object }>(
      `/nodes?id=${encodeURIComponent(`${ns}/CronJob/report`)}`,
    );
    expect(details.body.cronJob).toEqual({
      schedule: '0 4 1 * *',
      timeZone: 'Asia/Tokyo',
      nextRun: reportNext(),
    });
    // Enforced already: no promotion waits for it, and the message does not say one does.
    expect(cond(seg, 'AuditClean')?.message).toBe(
      'no flow would have been blocked in the last 3s; 2 workload(s) saw no flow and will be cut off by the default deny once enforced (see status.unobservedWorkloads)' +
        `; 1 CronJob(s) have not finished a run since learning began, so their traffic is unknown: ${ns}/CronJob/report (next run ${reportNext()})`,
    );
  });
  it('counts the runs of a CronJob in a namespace that joined later from when it joined', async () => {
    // A namespace outside the scope, with a CronJob that ran after the Segmentation was created but
    // before the namespace joined: nothing of that run was learned.
    const late = uniqueName('late');
    await createNamespace(admin, late);
    await applyCronJob('sweep', '0 5 * * *', undefined, late);
    await mergePatch(cluster, `/apis/batch/v1/namespaces/${late}/cronjobs/sweep/status`, {
      status: { lastScheduleTime: new Date(Date.now() - 1000).toISOString().replace(/\.\d+Z$/, 'Z') },
    });
    const created = Date.parse((await getSeg(cluster, segName)).metadata.creationTimestamp ?? '');
    expect(created).toBeLessThan(Date.now() - 1000);
    await new Promise((r) => setTimeout(r, 1100));
    const labelled = Date.now();
    await mergePatch(cluster, `/api/v1/namespaces/${late}`, { metadata: { labels: { team } } });
    // A workload of it is observed (a namespace none of whose workloads was observed gets no policy).
    await createPod(admin, { namespace: late, name: 'worker', labels: { app: 'worker' } });
    await setPodIPs(admin, { namespace: late, name: 'worker' }, ['10.81.0.9']);
    const res = await ctrl.push([flow(`${ns}/client`, `${late}/worker`, 9000, { count: 1 })]);
    expect(res.status, await res.text()).toBe(202);
    const seg = await waitSeg(cluster, segName, 'sweep listed', (s) =>
      (s.status?.unobservedWorkloads ?? []).includes(`${late}/CronJob/sweep`),
    );
    const joined = seg.status!.namespacesJoined ?? {};
    expect(Object.keys(joined)).toEqual([late]);
    // Set at the reconcile that saw it selected (times to the second).
    expect(Date.parse(joined[late]!)).toBeGreaterThanOrEqual(Math.floor(labelled / 1000) * 1000);
    expect(cond(seg, 'AuditClean')?.message).toContain(`${late}/CronJob/sweep (next run `);
    // Out of the scope again: its join is forgotten.
    await mergePatch(cluster, `/api/v1/namespaces/${late}`, { metadata: { labels: { team: null } } });
    const left = await waitSeg(
      cluster,
      segName,
      'late gone',
      (s) => !(s.status?.namespaces ?? []).includes(late),
    );
    expect(left.status!.namespacesJoined).toBeUndefined();
  });
});
