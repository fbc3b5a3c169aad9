/**
 * A leader failover (or a restart, an upgrade) in Audit: the new leader continues the audit the status
 * recorded — its start (status.audit.since), its would-be-blocked buckets — instead of starting it again,
 * so a controller that restarts more often than the audit window does not hold automatic promotion off.
 * A leader that crashes loses no would-be-blocked flow from Hubble: the position it committed on the
 * Lease stays before what status does not hold, so the next leader is sent the flow again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, sharedCluster, uniqueName } from '../cluster/index.ts';
import type { Segmentation } from '../../src/controller/api.ts';
import { nsToTimestamp } from '../../src/telemetry/checkpoint.ts';
import type { GetFlowsResponse } from '../../src/telemetry/proto.ts';
import type { RunningController } from '../controller/k8s-helpers.ts';
import {
  applyTeamSegmentation,
  cond,
  createShop,
  events,
  flow,
  getSeg,
  install,
  mergePatch,
  relayHubble,
  scopedTo,
  startController,
  startLeader,
  waitSeg,
} from '../controller/k8s-helpers.ts';
import { FakeRelay } from '../telemetry/fake-relay.ts';

const cluster = sharedCluster();
const ns = uniqueName('auditfo');
const team = uniqueName('team');
const segName = uniqueName('seg');
const segPath = `/apis/microseg.dev/v1alpha1/segmentations/${segName}`;
let first: RunningController | undefined;
let second: RunningController | undefined;
let third: RunningController | undefined;
const more: RunningController[] = [];
const relay = new FakeRelay();

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
  await applyTeamSegmentation(cluster, segName, team, '20s');
}, 120_000);

afterAll(async () => {
  await first?.stop();
  await second?.stop();
  await third?.stop();
  for (const c of more) await c.stop();
  relay.stop();
  await cluster.request('DELETE', segPath);
});

describe('a leader failover in Audit', () => {
  it('keeps status.audit.since and the buckets recorded; AuditClean counts from the original since', async () => {
    first = await startLeader(cluster, {
      ...scopedTo(segName),
      identity: 'audit-fo-1',
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
      ...scopedTo(segName),
      identity: 'audit-fo-2',
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
      ...scopedTo(segName),
      identity: 'audit-fo-3',
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
      ...scopedTo(segName),
      identity: 'audit-fo-4',
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
      ...scopedTo(segName),
      identity: 'audit-fo-5',
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

  it('a crash loses no would-be-blocked Hubble flow: the next leader is sent it again and counts it', async () => {
    await relay.start();
    /** A Hubble flow between two of the shop's pods (10.79.2.1 frontend, .2 cart, .3 db) at `ms`. */
    const ips: Record<string, string> = { frontend: '10.79.2.1', cart: '10.79.2.2', db: '10.79.2.3' };
    const hubbleFlow = (ms: number, src: string, dst: string, port: number): GetFlowsResponse => {
      const time = nsToTimestamp(BigInt(ms) * 1_000_000n);
      const end = (pod: string) => ({ namespace: ns, pod_name: pod, labels: [`k8s:app=${pod}`] });
      return {
        flow: {
          time,
          verdict: 'FORWARDED',
          Type: 'L3_L4',
          IP: { source: ips[src], destination: ips[dst], ipVersion: 'IPv4' },
          l4: { TCP: { source_port: 40_000 + (ms % 20_000), destination_port: port, flags: { SYN: true } } },
          source: end(src),
          destination: end(dst),
          is_reply: { value: false },
        },
        node_name: 'node-1',
        time,
      };
    };
    const withHubble = (identity: string, controller?: object) =>
      startController(cluster, {
        ...scopedTo(segName),
        identity,
        ...(controller ? { controller } : {}),
        hubble: relayHubble(relay),
      });
    // A leader that reconciles only at its start: what it audits next is in its memory only.
    const crashing = await withHubble('audit-fo-6', {
      resyncMs: 600_000,
      persistIntervalMs: 200,
      identityRefreshMs: 0,
    });
    more.push(crashing);
    for (const c of more.splice(0, more.length - 1)) await c.stop();
    await eventually('the crashing replica leads', () => crashing.manager.controller.leading, 20_000);
    await eventually('the crashing replica reconciled', () =>
      crashing.manager.controller.unrestored([segName]).length === 0 &&
      crashing.manager.controller.metrics.reconciles >= 1 &&
      crashing.manager.controller.queue.length === 0
        ? true
        : undefined,
    );
    await eventually('the stream connected', () => (relay.requests.length > 0 ? true : undefined));
    // A flow the proposal admits: its position is committed (no audit result for status to hold).
    const t = Date.now();
    relay.publish(hubbleFlow(t, 'frontend', 'cart', 8080));
    await eventually('the admitted flow committed', () =>
      Date.parse(crashing.manager.committedCheckpoint?.time ?? '') === t ? true : undefined,
    );
    // A flow the proposal would block (db → cart was never learned), audited in memory only.
    relay.publish(hubbleFlow(t + 1, 'db', 'cart', 6060));
    await eventually('the blocked flow audited', () =>
      crashing.manager.controller.metrics.wouldBlock === 1 ? true : undefined,
    );
    // Several persists and Lease renewals (each writes the committed position on the Lease).
    await new Promise((r) => setTimeout(r, 1500));
    const blockedSample = (x: Segmentation) => (x.status?.audit?.samples ?? []).some((p) => p.port === 6060);
    expect(blockedSample(await getSeg(cluster, segName))).toBe(false);

    const successor = await withHubble('audit-fo-7');
    more.push(successor);
    // The crash: from now on the leader writes nothing (no status, no Lease renewal, no release).
    crashing.client.request = () => Promise.reject(new Error('the process was killed'));
    await eventually('the successor leads', () => successor.manager.controller.leading, 30_000);
    const s = await waitSeg(
      cluster,
      segName,
      'the successor counting the blocked flow',
      blockedSample,
      30_000,
    );
    expect(s.status!.wouldBlock).toBeGreaterThanOrEqual(1);
    expect(s.status!.audit!.lastBlocked).toBe(new Date(t + 1).toISOString());
    expect(cond(s, 'AuditClean')).toMatchObject({ status: 'False', reason: 'FlowsWouldBeBlocked' });
    // It asked the relay for the flows since the position committed before the blocked flow.
    const since = relay.requests.at(-1)!.since!;
    expect(Number(since.seconds) * 1000 + Math.floor((since.nanos ?? 0) / 1e6)).toBe(t);
  }, 120_000);
});
