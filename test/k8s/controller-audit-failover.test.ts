/**
 * A leader failover (or a restart, an upgrade) in Audit: the new leader continues the audit the status
 * recorded — its start (status.audit.since), its would-be-blocked buckets — instead of starting it again,
 * so a controller that restarts more often than the audit window does not hold automatic promotion off.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, sharedCluster, uniqueName } from '../cluster/index.ts';
import type { Segmentation } from '../../src/controller/api.ts';
import type { RunningController } from '../controller/k8s-helpers.ts';
import {
  applyYaml,
  cond,
  createShop,
  events,
  flow,
  getSeg,
  install,
  mergePatch,
  startController,
  startLeader,
  waitSeg,
} from '../controller/k8s-helpers.ts';

const cluster = sharedCluster();
const ns = uniqueName('auditfo');
const team = uniqueName('team');
const segName = uniqueName('seg');
const segPath = `/apis/microseg.dev/v1alpha1/segmentations/${segName}`;
const leaseName = `lease-${segName}`;
const selector = `microseg.dev/test=${segName}`;
let first: RunningController | undefined;
let second: RunningController | undefined;
let third: RunningController | undefined;
const more: RunningController[] = [];

const sum = (b: Record<string, number> | undefined) => Object.values(b ?? {}).reduce((n, v) => n + v, 0);

/** Pushes until the replica accepts (a replica that does not lead yet answers 503). */
async function pushTo(c: RunningController, records: unknown[]): Promise<void> {
  await eventually(
    'the replica accepting flows',
    async () => ((await c.push(records)).status === 202 ? true : undefined),
    30_000,
  );
}

beforeAll(async () => {
  await install(cluster);
  const admin = await cluster.kubeConfig();
  await createShop(admin, ns, team, '10.79.2');
  await applyYaml(cluster, {
    apiVersion: 'microseg.dev/v1alpha1',
    kind: 'Segmentation',
    metadata: { name: segName, labels: { 'microseg.dev/test': segName } },
    spec: {
      namespaceSelector: { matchLabels: { team } },
      mode: 'Learn',
      learning: { stableAfter: '0s' },
      audit: { window: '20s', samples: 5 },
    },
  });
}, 120_000);

afterAll(async () => {
  await first?.stop();
  await second?.stop();
  await third?.stop();
  for (const c of more) await c.stop();
  await cluster.request('DELETE', segPath);
});

describe('a leader failover in Audit', () => {
  it('keeps status.audit.since and the buckets recorded; AuditClean counts from the original since', async () => {
    first = await startLeader(cluster, {
      segmentationSelector: selector,
      identity: 'audit-fo-1',
      asAdmin: true,
      leaseName,
    });
    await waitSeg(cluster, segName, 'Learning', (x) => x.status?.phase === 'Learning');
    await pushTo(first, [
      flow(`${ns}/frontend`, `${ns}/cart`, 8080, { count: 5 }),
      flow(`${ns}/cart`, `${ns}/db`, 5432, { count: 3 }),
    ]);
    await waitSeg(cluster, segName, 'proposal', (x) => x.status?.edges === 2 && x.status.policies === 4);
    await mergePatch(cluster, segPath, { spec: { mode: 'Audit' } });
    const auditing = await waitSeg(
      cluster,
      segName,
      'auditing',
      (x) => x.status?.phase === 'Auditing' && x.status.audit?.since !== undefined,
    );
    const since = auditing.status!.audit!.since;
    expect(cond(auditing, 'AuditClean')).toMatchObject({ status: 'False', reason: 'AuditWindowOpen' });
    expect(cond(auditing, 'AuditClean')!.message).toContain(`audit window started at ${since}`);

    // A flow the frozen proposal would block (frontend → db is not learned), recorded by the first leader.
    await pushTo(first, [flow(`${ns}/frontend`, `${ns}/db`, 5432)]);
    const recorded = await waitSeg(
      cluster,
      segName,
      'the blocked flow recorded',
      (x) => x.status?.wouldBlock === 1 && sum(x.status.audit?.buckets) === 1,
    );
    const buckets = recorded.status!.audit!.buckets!;
    expect(recorded.status!.audit!.since).toBe(since);

    // The first leader goes (a rolling update, a node drain); the standby takes over.
    second = await startController(cluster, {
      segmentationSelector: selector,
      identity: 'audit-fo-2',
      asAdmin: true,
      leaseName,
    });
    await first.stop();
    first = undefined;
    await eventually('the second replica leads', () => second!.manager.controller.leading, 20_000);
    // Another blocked flow, seen by the second leader only: the count in the window is both.
    await pushTo(second, [flow(`${ns}/cart`, `${ns}/frontend`, 9090)]);
    const resumed = await waitSeg(
      cluster,
      segName,
      'the second leader counting both blocked flows',
      (x) => sum(x.status?.audit?.buckets) === 2,
    );
    const status = resumed.status!;
    expect(status.audit!.since).toBe(since);
    expect(status.wouldBlock).toBe(2);
    for (const [k, v] of Object.entries(buckets)) expect(status.audit!.buckets![k]).toBeGreaterThanOrEqual(v);
    expect(status.modeSince).toBe(auditing.status!.modeSince);
    expect(cond(resumed, 'AuditClean')).toMatchObject({ status: 'False', reason: 'FlowsWouldBeBlocked' });
    const restarted = (await events(cluster, segName)).filter(
      (e) => e.reason === 'AuditWindowOpen' && e.message.includes('the audit starts again'),
    );
    expect(restarted).toEqual([]);

    // Once the blocked flows leave the window, the audit is clean: counted from the original since.
    const clean: Segmentation = await waitSeg(
      cluster,
      segName,
      'AuditClean',
      (x) => cond(x, 'AuditClean')?.status === 'True',
      60_000,
    );
    expect(clean.status!.audit!.since).toBe(since);
    expect(cond(clean, 'AuditClean')!.reason).toBe('NoBlockedFlows');
    const cleanSince = cond(clean, 'AuditClean')!.lastTransitionTime;

    // Another takeover once clean: the audit ran its window long ago, so it stays clean (started again,
    // AuditClean would be False for a new window, and automatic promotion would wait that long again).
    third = await startController(cluster, {
      segmentationSelector: selector,
      identity: 'audit-fo-3',
      asAdmin: true,
      leaseName,
    });
    await second.stop();
    second = undefined;
    await eventually('the third replica leads', () => third!.manager.controller.leading, 20_000);
    await pushTo(third, [flow(`${ns}/frontend`, `${ns}/cart`, 8080)]);
    const after = await waitSeg(
      cluster,
      segName,
      'the third leader counting the flow',
      (x) => (x.status?.flowsIngested ?? 0) > (clean.status!.flowsIngested ?? 0),
    );
    expect(after.status!.audit!.since).toBe(since);
    expect(cond(after, 'AuditClean')).toMatchObject({
      status: 'True',
      reason: 'NoBlockedFlows',
      lastTransitionTime: cleanSince,
    });
  }, 180_000);

  it('a graceful handover keeps the would-be-blocked flows audited since the last reconcile', async () => {
    // A leader whose resync is far away: what it audited after its last reconcile is in its memory only
    // when it shuts down (its reconciles run at --resync, not at each flow).
    const slow = await startController(cluster, {
      segmentationSelector: selector,
      identity: 'audit-fo-4',
      asAdmin: true,
      leaseName,
      controller: { resyncMs: 600_000, persistIntervalMs: 200, identityRefreshMs: 0 },
    });
    more.push(slow);
    await third!.stop();
    third = undefined;
    await eventually('the slow replica leads', () => slow.manager.controller.leading, 20_000);
    await eventually('the slow replica restored the Segmentation', () =>
      slow.manager.controller.unrestored([segName]).length === 0 ? true : undefined,
    );
    const before = await getSeg(cluster, segName);
    expect(before.status!.wouldBlock).toBe(0);
    await pushTo(slow, [flow(`${ns}/db`, `${ns}/frontend`, 7070, { count: 2 })]);
    await eventually('the blocked flow audited', () =>
      slow.manager.controller.metrics.wouldBlock === 2 ? true : undefined,
    );
    const next = await startController(cluster, {
      segmentationSelector: selector,
      identity: 'audit-fo-5',
      asAdmin: true,
      leaseName,
    });
    more.push(next);
    await slow.stop(); // graceful: a rolling update's SIGTERM
    await eventually('the next replica leads', () => next.manager.controller.leading, 20_000);
    // Its first reconcile is done once a second one has begun (each counts when it begins).
    await eventually('the next leader reconciled', () =>
      next.manager.controller.metrics.reconciles >= 2 ? true : undefined,
    );
    const s = await getSeg(cluster, segName);
    expect(s.status!.audit!.since).toBe(before.status!.audit!.since);
    expect(s.status!.wouldBlock).toBe(2);
    expect(sum(s.status!.audit!.buckets)).toBe(2);
    expect(s.status!.audit!.lastBlocked).toBeDefined();
    expect(cond(s, 'AuditClean')).toMatchObject({ status: 'False', reason: 'FlowsWouldBeBlocked' });
  }, 120_000);
});
