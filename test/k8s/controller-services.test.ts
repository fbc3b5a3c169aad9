/**
 * Flows to a Service's ClusterIP in the controller, against a real kube-apiserver: learned as edges to
 * every backend of the Service on its targetPort, and audited once per flow against those backends.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KubeConfig } from '@kubernetes/client-node';
import { createNamespace, createPod, eventually, sharedCluster, uniqueName } from '../cluster/index.ts';
import type { RunningController } from '../controller/k8s-helpers.ts';
import {
  applyTeamSegmentation,
  cond,
  createService,
  events,
  flow,
  getSeg,
  install,
  listJson,
  scopedTo,
  startLeader,
  waitSeg,
  mergePatch,
} from '../controller/k8s-helpers.ts';
import { setPodIPs } from '../cluster/index.ts';
import { mergeAnalyses } from '../../src/controller/view.ts';
import { countFlows } from '../../src/graph/counts.ts';

const cluster = sharedCluster();
const ns = uniqueName('svc');
const team = uniqueName('team');
const segName = uniqueName('seg');
let admin: KubeConfig;
let ctrl: RunningController;
let clusterIP = '';

beforeAll(async () => {
  await install(cluster);
  admin = await cluster.kubeConfig();
  await createNamespace(admin, ns, { team });
  const pods: [string, Record<string, string>, string][] = [
    ['frontend', { app: 'frontend' }, '10.79.0.1'],
    ['be1', { app: 'be1', role: 'backend' }, '10.79.0.2'],
    ['be2', { app: 'be2', role: 'backend' }, '10.79.0.3'],
  ];
  for (const [name, labels, ip] of pods) {
    await createPod(admin, { namespace: ns, name, labels, ports: { http: 8080 } });
    await setPodIPs(admin, { namespace: ns, name }, [ip]);
  }
  clusterIP = await createService(cluster, ns, 'backend', { role: 'backend' });
  ctrl = await startLeader(cluster, { ...scopedTo(segName), identity: 'services-a' });
}, 120_000);

afterAll(async () => {
  await ctrl?.stop();
});

describe('flows to a Service ClusterIP in the controller', () => {
  it('are learned as edges to every backend on the targetPort', async () => {
    await applyTeamSegmentation(cluster, segName, team);
    await waitSeg(cluster, segName, 'Learning phase', (s) => s.status?.phase === 'Learning');
    const res = await ctrl.push([flow(`${ns}/frontend`, clusterIP, 80, { count: 4 })]);
    expect(res.status, await res.text()).toBe(202);
    await waitSeg(cluster, segName, 'two edges', (s) => (s.status?.edges ?? 0) === 2);
    const edges = await eventually('LearnedEdgeSet', async () => {
      const items = await listJson<{
        spec: {
          segmentation: string;
          edges: { src: string; dst: string; port: number; count: number; shared?: Record<string, number> }[];
        };
      }>(cluster, '/apis/microseg.dev/v1alpha1/learnededgesets');
      const mine = items.filter((i) => i.spec.segmentation === segName).flatMap((i) => i.spec.edges);
      return mine.length === 2 ? mine : undefined;
    });
    expect(edges.map((e) => [e.src, e.dst, e.port, e.count]).sort()).toEqual([
      [`${ns}/Pod/frontend`, `${ns}/Pod/be1`, 8080, 4],
      [`${ns}/Pod/frontend`, `${ns}/Pod/be2`, 8080, 4],
    ]);
    // Each edge says it shares the flows with the other, by the connection as observed.
    const shared = { [`${ns}/Pod/frontend->service:${ns}/backend:80/TCP`]: 4 };
    expect(edges.map((e) => e.shared)).toEqual([shared, shared]);
    // The page counts them once: in the totals and for frontend.
    const { graph } = mergeAnalyses(ctrl.manager.controller.analyses());
    expect(countFlows(graph.edges)).toBe(4);
    expect(graph.nodes.find((n) => n.id === `${ns}/Pod/frontend`)?.flowsOut).toBe(4);
  });

  it('are audited against the backends, and a blocked flow counts once', async () => {
    await mergePatch(cluster, `/apis/microseg.dev/v1alpha1/segmentations/${segName}`, {
      spec: { mode: 'Audit' },
    });
    await waitSeg(cluster, segName, 'Auditing', (s) => s.status?.phase === 'Auditing' && !!s.status.audit);
    // Port 80 reaches the backends on 8080, which the proposal admits; port 81 is no port of the
    // Service's, and reaches them on 81, which it does not.
    // A kubelet probe (from a node) is not audited: no rule is written for it, and the pod's own node
    // is admitted without one.
    const res = await ctrl.push([
      flow(`${ns}/frontend`, clusterIP, 80, { count: 1 }),
      flow(`${ns}/frontend`, clusterIP, 81, { count: 1 }),
      flow('', `${ns}/frontend`, 8080, { count: 1, src: { ip: '172.18.0.9', reserved: 'host' } }),
    ]);
    expect(res.status).toBe(202);
    const seg = await waitSeg(cluster, segName, 'would-block', (s) => (s.status?.wouldBlock ?? 0) >= 1);
    expect(seg.status!.wouldBlock).toBe(1);
    expect(ctrl.manager.controller.metrics.wouldBlock).toBe(1);
  });

  it('would block a flow the proposal admits at one backend and not at another, once', async () => {
    // A third backend joins the Service after the proposal was made: nothing admits frontend to it.
    await createPod(admin, { namespace: ns, name: 'be3', labels: { app: 'be3', role: 'backend' } });
    await setPodIPs(admin, { namespace: ns, name: 'be3' }, ['10.79.0.4']);
    await eventually('be3 in the cache', () =>
      ctrl.manager.cache.snapshot().pods.some((p) => p.metadata.name === 'be3' && p.status?.podIP),
    );
    // The audit's view of the cluster is rebuilt by a reconcile: wait for one begun after be3 arrived.
    const r0 = ctrl.manager.controller.metrics.reconciles;
    await eventually('a reconcile after be3', () => ctrl.manager.controller.metrics.reconciles >= r0 + 2);
    const res = await ctrl.push([flow(`${ns}/frontend`, clusterIP, 80, { count: 3 })]);
    expect(res.status).toBe(202);
    // Admitted at be1 and be2, blocked at be3: the flow would be blocked, and counts once (3, not 9).
    type Sample = { destination: string; count: number };
    const seg = await waitSeg(cluster, segName, 'a sample naming be3', (s) =>
      ((s.status as { audit?: { samples?: Sample[] } }).audit?.samples ?? []).some((x) =>
        x.destination.endsWith('/be3'),
      ),
    );
    expect(ctrl.manager.controller.metrics.wouldBlock).toBe(4);
    // The status counts inside its 3 s window: this flow, and the earlier one if still inside.
    expect([3, 4]).toContain(seg.status!.wouldBlock);
    const samples = (seg.status as { audit?: { samples?: Sample[] } }).audit?.samples;
    expect(samples?.at(-1)).toMatchObject({ destination: `${ns}/Pod/be3`, count: 3 });
  });

  it('audits an end given by workload or labels at its pods, and counts one it cannot place', async () => {
    const before = ctrl.manager.controller.metrics.wouldBlock;
    // be1 never reached be2: blocked, with be1 given by its workload alone, then by its labels alone.
    const byWorkload = { namespace: ns, workload: { kind: 'Pod', name: 'be1' } };
    const byLabels = { namespace: ns, labels: { app: 'be1' } };
    // A workload of no pod (not in the cluster) cannot be placed: counted apart, not as blocked.
    const ghost = { namespace: ns, workload: { kind: 'Deployment', name: 'ghost' } };
    const record = (src: unknown, dst: unknown, count: number) => ({
      ...flow('', '', 8080, { count }),
      src,
      dst,
    });
    const res = await ctrl.push([
      record(byWorkload, `${ns}/be2`, 2),
      record(byLabels, `${ns}/be2`, 5),
      record(`${ns}/frontend`, ghost, 7),
    ]);
    expect(res.status, await res.text()).toBe(202);
    await eventually('audited', () => ctrl.manager.controller.metrics.unauditable >= 7);
    expect(ctrl.manager.controller.metrics.wouldBlock - before).toBe(7);
    expect(ctrl.manager.controller.metrics.unauditable).toBe(7);
    type Sample = { source: string; destination: string; count: number };
    const seg = await waitSeg(cluster, segName, 'samples of be1', (s) =>
      ((s.status as { audit?: { samples?: Sample[] } }).audit?.samples ?? []).some((x) => x.count === 5),
    );
    const samples = (seg.status as { audit?: { samples?: Sample[] } }).audit!.samples!;
    expect(samples.slice(-2)).toMatchObject([
      { source: `${ns}/Pod/be1`, destination: `${ns}/Pod/be2`, count: 2 },
      { source: `${ns}/Pod/be1`, destination: `${ns}/Pod/be2`, count: 5 },
    ]);
    const metrics = await (await fetch(`http://127.0.0.1:${ctrl.port}/metrics`)).text();
    expect(metrics).toMatch(/^microseg_unauditable_flows_total 7$/m);
    // The Segmentation says so too: in status, in its buckets, and in AuditClean's message (False here,
    // for the flows of be1 that would be blocked).
    const counted = await waitSeg(cluster, segName, 'status.unauditable', (s) => s.status?.unauditable === 7);
    expect(Object.values(counted.status!.audit!.unauditableBuckets ?? {}).reduce((x, y) => x + y, 0)).toBe(7);
    expect(cond(counted, 'AuditClean')).toMatchObject({ status: 'False', reason: 'FlowsWouldBeBlocked' });
    expect(cond(counted, 'AuditClean')!.message).toMatch(
      /would be blocked by the proposal; 7 flow\(s\) could not be audited \(see status\.unauditable\)$/,
    );
  });

  it('leaves AuditClean True with flows it could not audit, names them, and counts them inside the window', async () => {
    await waitSeg(cluster, segName, 'a clean audit', (s) => {
      const c = cond(s, 'AuditClean');
      return c?.status === 'True' && s.status?.unauditable === 0;
    });
    const ghost = { namespace: ns, workload: { kind: 'Deployment', name: 'ghost' } };
    const res = await ctrl.push([{ ...flow(`${ns}/frontend`, '', 8080, { count: 3 }), dst: ghost }]);
    expect(res.status, await res.text()).toBe(202);
    const seg = await waitSeg(cluster, segName, 'unauditable 3', (s) => s.status?.unauditable === 3);
    expect(seg.status!.wouldBlock).toBe(0);
    expect(cond(seg, 'AuditClean')).toMatchObject({
      status: 'True',
      reason: 'NoBlockedFlows',
      message:
        'no flow would have been blocked in the last 3s; 3 flow(s) could not be audited (see status.unauditable)',
    });
    // A Warning Event says how many, and names the end it could not place.
    const warned = await eventually('an Unauditable Event', async () =>
      (await events(cluster, segName)).find((e) => e.reason === 'Unauditable' && e.message.startsWith('3 ')),
    );
    expect(warned).toMatchObject({
      type: 'Warning',
      message: `3 flow(s) in the last 3s could not be audited against the proposal, e.g. ${ns}/Pod/frontend → ${ns}/Deployment/ghost TCP/8080: the destination has no pod in the audit's view`,
    });
    // Out of the 3 s window, they are no longer counted, and the message no longer names them.
    const later = await waitSeg(cluster, segName, 'unauditable 0', (s) => s.status?.unauditable === 0);
    expect(cond(later, 'AuditClean')).toMatchObject({
      status: 'True',
      message: 'no flow would have been blocked in the last 3s',
    });
  });

  it('keeps the count of flows it could not audit across a new term', async () => {
    // A window long enough that the count cannot leave it during the test.
    await mergePatch(cluster, `/apis/microseg.dev/v1alpha1/segmentations/${segName}`, {
      spec: { audit: { window: '5m' } },
    });
    const ghost = { namespace: ns, workload: { kind: 'Deployment', name: 'ghost' } };
    const res = await ctrl.push([{ ...flow(`${ns}/frontend`, '', 8080, { count: 2 }), dst: ghost }]);
    expect(res.status, await res.text()).toBe(202);
    await waitSeg(cluster, segName, 'unauditable 2', (s) => s.status?.unauditable === 2);
    const told = (e: { reason: string; message: string }) =>
      e.reason === 'Unauditable' && e.message.startsWith('2 flow(s) in the last 5m ');
    await eventually('an Unauditable Event', async () => (await events(cluster, segName)).find(told));
    // A new term rebuilds its state from the API: the audit resumes from status.audit.
    const c = ctrl.manager.controller;
    await c.stopLeading();
    c.startLeading();
    await c.whenRestored();
    const r0 = c.metrics.reconciles;
    await eventually('two reconciles in the new term', () => c.metrics.reconciles >= r0 + 2);
    const seg = await getSeg(cluster, segName);
    expect(seg.status!.unauditable).toBe(2);
    expect(cond(seg, 'AuditClean')!.message).toMatch(
      /; 2 flow\(s\) could not be audited \(see status\.unauditable\)$/,
    );
    // It does not announce again the flows the previous term announced.
    await ctrl.manager.events.flush();
    expect((await events(cluster, segName)).filter(told).map((e) => e.count)).toEqual([1]);
  });
});
