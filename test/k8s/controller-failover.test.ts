/**
 * Two controller replicas on their own cluster: leader election on the Lease, a leader failover with no
 * learned edge lost, the API server restarted (with etcd history compacted) mid-run, informers recovering.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Cluster } from '../cluster/index.ts';
import { createNamespace, createPod, eventually, setPodIPs, startCluster } from '../cluster/index.ts';
import type { RunningController } from '../controller/k8s-helpers.ts';
import { applyYaml, flow, install, listJson, startController, waitSeg } from '../controller/k8s-helpers.ts';

let cluster: Cluster;
let admin: KubeConfig;
let a: RunningController;
let b: RunningController;
let c: RunningController | undefined;
const ns = 'web';
const segName = 'web';

/** Learned edges persisted in LearnedEdgeSets for the Segmentation. */
async function persistedEdges(): Promise<number> {
  const items = await listJson<{ spec: { segmentation: string; edges: unknown[] } }>(
    cluster,
    '/apis/microseg.dev/v1alpha1/learnededgesets',
  );
  return items.filter((i) => i.spec.segmentation === segName).reduce((n, i) => n + i.spec.edges.length, 0);
}

/** Pushes until a replica accepts (a non-leader answers 503). */
async function pushTo(c: RunningController, records: unknown[]): Promise<void> {
  await eventually(
    'a replica accepting flows',
    async () => {
      const r = await c.push(records);
      return r.status === 202 ? true : undefined;
    },
    30_000,
  );
}

const edgeFlows = (from: number, to: number) =>
  Array.from({ length: to - from }, (_, i) => flow(`${ns}/client`, `${ns}/server`, 10_000 + from + i));

beforeAll(async () => {
  cluster = await startCluster({ log: () => {} });
  await install(cluster);
  admin = await cluster.kubeConfig();
  await createNamespace(admin, ns, { tier: 'web' });
  await createPod(admin, { namespace: ns, name: 'client', labels: { app: 'client' } });
  await createPod(admin, { namespace: ns, name: 'server', labels: { app: 'server' } });
  await setPodIPs(admin, { namespace: ns, name: 'client' }, ['10.9.0.1']);
  await setPodIPs(admin, { namespace: ns, name: 'server' }, ['10.9.0.2']);
  await applyYaml(cluster, {
    apiVersion: 'microseg.dev/v1alpha1',
    kind: 'Segmentation',
    metadata: { name: segName },
    spec: { namespaceSelector: { matchLabels: { tier: 'web' } } },
  });
  a = await startController(cluster, { identity: 'replica-a' });
  await eventually('replica-a leads', () => a.manager.controller.leading, 15_000);
  b = await startController(cluster, { identity: 'replica-b' });
}, 180_000);

afterAll(async () => {
  await a?.stop();
  await b?.stop();
  await c?.stop();
  await cluster?.stop();
});

describe('two replicas', () => {
  it('exactly one leads; the other serves health and metrics but refuses flows', async () => {
    await new Promise((r) => setTimeout(r, 1000));
    expect(a.manager.controller.leading).toBe(true);
    expect(b.manager.controller.leading).toBe(false);
    const lease = await cluster.request(
      'GET',
      '/apis/coordination.k8s.io/v1/namespaces/microseg-system/leases/microseg-controller',
    );
    expect((lease.json as { spec: { holderIdentity: string } }).spec.holderIdentity).toBe('replica-a');
    const r = await b.push(edgeFlows(0, 1));
    expect(r.status).toBe(503);
    expect(r.headers.get('retry-after')).toBe('1');
    expect(await r.json()).toEqual({ error: 'not the leader: another replica is leading; retry' });
    const ready = await fetch(`http://127.0.0.1:${b.port}/readyz`);
    expect(ready.status).toBe(200);
    const metrics = await (await fetch(`http://127.0.0.1:${b.port}/metrics`)).text();
    expect(metrics).toContain('microseg_leader 0');
    expect(await (await fetch(`http://127.0.0.1:${a.port}/metrics`)).text()).toContain('microseg_leader 1');
  });

  it('the leader learns and persists edges in LearnedEdgeSets', async () => {
    await pushTo(a, edgeFlows(0, 10));
    await waitSeg(cluster, segName, '10 edges', (s) => s.status?.edges === 10);
    await eventually('10 persisted', async () => ((await persistedEdges()) === 10 ? true : undefined));
  });

  it('failover: the leader stops; the other takes over and loses no learned edge', async () => {
    await pushTo(a, edgeFlows(10, 15));
    await eventually('15 learned by a', () =>
      a.manager.controller.edgeCount(segName) === 15 ? true : undefined,
    );
    await a.stop(); // graceful: persists, then releases the Lease
    await eventually('replica-b leads', () => b.manager.controller.leading, 15_000);
    await waitSeg(cluster, segName, 'b restored 15 edges', (s) => s.status?.edges === 15);
    await pushTo(b, edgeFlows(15, 18));
    await waitSeg(cluster, segName, '18 edges', (s) => s.status?.edges === 18);
    await eventually('18 persisted', async () => ((await persistedEdges()) === 18 ? true : undefined));
    const lease = await cluster.request(
      'GET',
      '/apis/coordination.k8s.io/v1/namespaces/microseg-system/leases/microseg-controller',
    );
    expect(lease.json).toMatchObject({ spec: { holderIdentity: 'replica-b', leaseTransitions: 1 } });
  });

  it('the API server restarts (history compacted) mid-run: informers recover, learning resumes', async () => {
    await cluster.compactEtcd();
    await cluster.restart();
    // A change made after the restart must reach the replica's caches.
    await createPod(admin, { namespace: ns, name: 'late', labels: { app: 'late' } });
    await setPodIPs(admin, { namespace: ns, name: 'late' }, ['10.9.0.3']);
    await eventually(
      'b sees the new pod',
      () => (b.manager.cache.pods.get(`${ns}/late`) ? true : undefined),
      30_000,
    );
    await eventually('b leads again', () => b.manager.controller.leading, 30_000);
    await pushTo(b, [flow(`${ns}/late`, `${ns}/server`, 8443)]);
    const seg = await waitSeg(
      cluster,
      segName,
      '19 edges',
      (s) => s.status?.edges === 19 && s.status.workloads === 3,
      30_000,
    );
    expect(seg.status!.conditions!.find((c) => c.type === 'Degraded')?.status).toBe('False');
    const errors = b.manager.informers().reduce((n, i) => n + i.stats.errors + i.stats.relistsAfterGone, 0);
    expect(errors).toBeGreaterThan(0);
    await eventually('19 persisted', async () => ((await persistedEdges()) === 19 ? true : undefined));
  });

  it('a partitioned leader stops leading before another replica takes over: never two leaders', async () => {
    c = await startController(cluster, { identity: 'replica-c' });
    let both = false;
    const watch = setInterval(() => {
      if (b.manager.controller.leading && c!.manager.controller.leading) both = true;
    }, 5);
    try {
      // Cut replica-b off from the API server: it can no longer renew the Lease.
      b.client.kc.clusters = b.client.kc.clusters.map((cl) => ({ ...cl, server: 'https://127.0.0.1:9' }));
      await eventually(
        'replica-b stops leading',
        () => (b.manager.controller.leading ? undefined : true),
        15_000,
      );
      await eventually('replica-c leads', () => c!.manager.controller.leading, 20_000);
    } finally {
      clearInterval(watch);
    }
    expect(both).toBe(false);
    await eventually('replica-c restored the learned graph', () =>
      c!.manager.controller.edgeCount(segName) === 19 ? true : undefined,
    );
    const lease = await cluster.request(
      'GET',
      '/apis/coordination.k8s.io/v1/namespaces/microseg-system/leases/microseg-controller',
    );
    expect(lease.json).toMatchObject({ spec: { holderIdentity: 'replica-c' } });
  });
});
