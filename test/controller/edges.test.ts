import { describe, expect, it } from 'vitest';
import {
  creditServiceEdges,
  EdgeStore,
  fnv32,
  namespaceOf,
  peerFromId,
  restoredWorkloads,
  shardEdges,
} from '../../src/controller/edges.ts';
import type { PersistedEdge } from '../../src/controller/api.ts';
import { countFlows } from '../../src/graph/counts.ts';
import type { EdgeRecord } from '../../src/graph/types.ts';
import { buildIdentity } from '../../src/identity/index.ts';
import { fixtureSnapshot } from '../core/fixture.ts';

const T0 = Date.parse('2026-11-28T12:00:00Z');
const w = (id: string) => peerFromId(id);

describe('EdgeStore', () => {
  it('aggregates flows per (src, dst, protocol, port) with evidence', () => {
    const s = new EdgeStore();
    s.add(w('shop/Deployment/cart'), w('shop/Deployment/db'), {
      time: T0,
      protocol: 'TCP',
      port: 5432,
      verdict: 'FORWARDED',
      count: 3,
    });
    s.add(w('shop/Deployment/cart'), w('shop/Deployment/db'), {
      time: T0 + 5,
      protocol: 'TCP',
      port: 5432,
      verdict: 'DROPPED',
      dropReason: 'POLICY_DENIED',
    });
    s.add(w('shop/Deployment/cart'), w('world:1.2.3.4'), {
      time: T0 - 5,
      protocol: 'TCP',
      port: 443,
      verdict: 'FORWARDED',
    });
    expect(s.size).toBe(2);
    expect(s.persisted()).toEqual([
      {
        src: 'shop/Deployment/cart',
        dst: 'shop/Deployment/db',
        protocol: 'TCP',
        port: 5432,
        count: 4,
        firstSeen: '2026-11-28T12:00:00.000Z',
        lastSeen: '2026-11-28T12:00:00.005Z',
        dropped: 1,
      },
      {
        src: 'shop/Deployment/cart',
        dst: 'world:1.2.3.4',
        protocol: 'TCP',
        port: 443,
        count: 1,
        firstSeen: '2026-11-28T11:59:59.995Z',
        lastSeen: '2026-11-28T11:59:59.995Z',
      },
    ]);
  });

  it('marks a flow folded into several edges shared on each, and keeps it through persisting', () => {
    const s = new EdgeStore();
    const via = 'shop/Deployment/web->service:shop/backend:80/TCP';
    const f = { time: T0, protocol: 'TCP' as const, port: 8080, verdict: 'FORWARDED' as const, count: 4 };
    s.add(w('shop/Deployment/web'), w('shop/Deployment/be1'), f, via);
    s.add(w('shop/Deployment/web'), w('shop/Deployment/be2'), f, via);
    s.add(w('shop/Deployment/web'), w('shop/Deployment/be1'), { ...f, count: 1 });
    const persisted = s.persisted();
    expect(persisted.map((e) => [e.dst, e.count, e.shared])).toEqual([
      ['shop/Deployment/be1', 5, { [via]: 4 }],
      ['shop/Deployment/be2', 4, { [via]: 4 }],
    ]);
    // A new leader restores the edges as they were persisted.
    const restored = new EdgeStore();
    restored.restore(persisted);
    expect(restored.persisted()).toEqual(persisted);
    expect(restored.edges().map((e) => e.shared)).toEqual([{ [via]: 4 }, { [via]: 4 }]);
  });

  it('ages out edges unused since the cutoff', () => {
    const s = new EdgeStore();
    s.add(w('a/Pod/x'), w('a/Pod/y'), { time: T0, protocol: 'TCP', port: 1, verdict: 'FORWARDED' });
    s.add(w('a/Pod/x'), w('a/Pod/z'), { time: T0 + 10_000, protocol: 'TCP', port: 1, verdict: 'FORWARDED' });
    const v = s.version;
    expect(s.ageOut(T0 + 1)).toBe(1);
    expect(s.version).toBeGreaterThan(v);
    expect(s.edges().map((e) => e.dst)).toEqual(['a/Pod/z']);
    expect(s.ageOut(T0 + 1)).toBe(0);
  });

  it('restores persisted edges without losing or double counting', () => {
    const s = new EdgeStore();
    s.add(w('a/Pod/x'), w('a/Pod/y'), { time: T0, protocol: 'TCP', port: 1, verdict: 'FORWARDED', count: 2 });
    const saved = s.persisted();
    const t = new EdgeStore();
    t.restore(saved);
    t.restore(saved); // a second restore (e.g. two shards read twice) changes nothing
    expect(t.persisted()).toEqual(saved);
    expect(t.edges()[0]!.verdicts).toEqual({ FORWARDED: 2 });
  });
});

describe('peers', () => {
  it('parses graph node ids', () => {
    expect(peerFromId('shop/Deployment/cart')).toEqual({ id: 'shop/Deployment/cart', kind: 'workload' });
    expect(peerFromId('world:1.2.3.4')).toEqual({ id: 'world:1.2.3.4', kind: 'world', ip: '1.2.3.4' });
    expect(peerFromId('private:10.0.0.1')).toMatchObject({ kind: 'private', ip: '10.0.0.1' });
    expect(peerFromId('node:fd00::1')).toMatchObject({ kind: 'node', ip: 'fd00::1' });
    expect(peerFromId('kube-apiserver')).toEqual({ id: 'kube-apiserver', kind: 'kube-apiserver' });
    expect(namespaceOf('shop/Deployment/cart')).toBe('shop');
    expect(namespaceOf('world:1.2.3.4')).toBeUndefined();
  });
});

describe('shardEdges', () => {
  const edges = (n: number): PersistedEdge[] =>
    Array.from({ length: n }, (_, i) => ({
      src: `ns-${i % 50}/Deployment/client-${i}`,
      dst: `ns-${i % 50}/Deployment/server-${i % 97}`,
      protocol: 'TCP',
      port: 1000 + (i % 1000),
      count: i + 1,
      firstSeen: '2026-11-28T12:00:00.000Z',
      lastSeen: '2026-11-28T12:00:00.000Z',
    }));
  const seg = { metadata: { name: 'shop', uid: 'u-1' } };

  it('keeps every shard under the byte budget and every edge exactly once', () => {
    const all = edges(20_000);
    const shards = shardEdges(seg, all, 512 * 1024);
    expect(shards.length).toBe(16);
    for (const s of shards) {
      expect(JSON.stringify(s).length).toBeLessThanOrEqual(512 * 1024);
      expect(s.spec.shards).toBe(16);
      expect(s.metadata.name).toBe(`shop-edges-${s.spec.shard}`);
      expect(s.metadata.labels).toEqual({
        'app.kubernetes.io/managed-by': 'microseg',
        'microseg.dev/segmentation': 'shop',
      });
    }
    expect(shards.reduce((n, s) => n + s.spec.edges.length, 0)).toBe(20_000);
    expect(new Set(shards.flatMap((s) => s.spec.edges.map((e) => `${e.src}|${e.dst}|${e.port}`))).size).toBe(
      20_000,
    );
  });

  it('a new edge changes one shard only', () => {
    const all = edges(5000);
    const before = shardEdges(seg, all);
    const after = shardEdges(seg, [...all, { ...all[0]!, port: 9 }]);
    const changed = before.filter((s, i) => JSON.stringify(s) !== JSON.stringify(after[i]));
    expect(changed.length).toBe(1);
  });

  it('keeps with each shard the workloads known only from flows its edges have, and restores them', () => {
    const all = edges(4000);
    const flowOnly = new Map<string, Record<string, string>>([
      [all[0]!.src, { app: 'phantom', 'pod-template-hash': '7d9f' }],
      [all[1]!.dst, {}],
      ['other/Pod/unused', { app: 'unused' }],
    ]);
    const shards = shardEdges(seg, all, 512 * 1024, 1500, flowOnly);
    expect(shards.length).toBe(4);
    // Without them, the same shards without the field: a graph with none is written as before.
    expect(shardEdges(seg, all).map((s) => JSON.stringify(s))).toEqual(
      shards.map((s) => {
        const { workloads: _w, ...spec } = s.spec;
        return JSON.stringify({ ...s, spec });
      }),
    );
    for (const s of shards) {
      const ids = new Set(s.spec.edges.flatMap((e) => [e.src, e.dst]));
      expect(s.spec.workloads?.map((w) => w.id) ?? []).toEqual(
        [...flowOnly.keys()].filter((id) => ids.has(id)).sort(),
      );
    }
    const kept = shards.flatMap((s) => s.spec.workloads ?? []);
    expect(kept).toContainEqual({
      id: 'ns-0/Deployment/client-0',
      labels: { app: 'phantom', 'pod-template-hash': '7d9f' },
    });
    expect(kept).toContainEqual({ id: 'ns-1/Deployment/server-1', labels: {} });
    expect(kept.some((w) => w.id === 'other/Pod/unused')).toBe(false);

    // Restored: workloads known only from flows, selected by their stable labels.
    const restored = restoredWorkloads(
      shards.find((s) => s.spec.workloads?.[0]?.id === 'ns-0/Deployment/client-0')!.spec.workloads,
    );
    expect(restored.problems).toEqual([]);
    expect(restored.workloads.find((w) => w.id === 'ns-0/Deployment/client-0')).toEqual({
      id: 'ns-0/Deployment/client-0',
      namespace: 'ns-0',
      kind: 'Deployment',
      name: 'client-0',
      selector: { matchLabels: { app: 'phantom' } },
      labels: { app: 'phantom' },
      namedPorts: [],
      pods: [],
      hostNetwork: false,
      roles: [],
      observedOnly: true,
    });
  });

  it('leaves out a restored workload that is not one, saying why', () => {
    const { workloads, problems } = restoredWorkloads([
      { id: 'shop/Pod/cart-7d9f', labels: { app: 'cart' } },
      { id: 'shop/Widget/cart', labels: {} },
      { id: 'shop/cart', labels: {} },
      { id: 'shop/Pod/cart', labels: { 'bad key!': 'x' } },
      { id: 'shop/Pod/cart', labels: ['app=cart'] },
      null,
    ]);
    expect(workloads.map((w) => [w.id, w.selector])).toEqual([
      ['shop/Pod/cart-7d9f', { matchLabels: { app: 'cart' } }],
    ]);
    expect(problems).toEqual([
      'workloads[1]: id "shop/Widget/cart" is not namespace/Kind/name of a kind of Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, Pod, Rollout, CloneSet',
      'workloads[2]: id "shop/cart" is not namespace/Kind/name of a kind of Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, Pod, Rollout, CloneSet',
      `workloads[3] (shop/Pod/cart): labels: key "bad key!": the name must be 63 characters at most, alphanumeric, '-', '_' or '.', starting and ending alphanumeric`,
      'workloads[4] (shop/Pod/cart): labels must be a map of strings',
      'workloads[5]: id undefined is not namespace/Kind/name of a kind of Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, Pod, Rollout, CloneSet',
    ]);
    expect(restoredWorkloads(undefined)).toEqual({ workloads: [], problems: [] });
  });

  it('splits further when edges are large', () => {
    const big = edges(100).map((e) => ({ ...e, src: `${e.src}-${'x'.repeat(2000)}` }));
    const shards = shardEdges(seg, big, 64 * 1024);
    expect(shards.length).toBeGreaterThan(1);
    for (const s of shards) expect(JSON.stringify(s).length).toBeLessThanOrEqual(64 * 1024);
    expect(fnv32('abc')).toBe(0x1a47e90b);
  });
});

describe('edges learned to the ClusterIP of a Service with no backend', () => {
  /** shop's Service ghost, 10.96.0.80, port 80 → 8080, selecting `selector`. */
  const ghost = (selector: Record<string, string>) => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'ghost', namespace: 'shop' },
    spec: { selector, clusterIP: '10.96.0.80', ports: [{ port: 80, targetPort: 8080 }] },
  });
  const edge = (src: string, dst: string, port: number, count: number, at: number): EdgeRecord => ({
    src,
    dst,
    protocol: 'TCP',
    port,
    count,
    firstSeen: at,
    lastSeen: at,
    verdicts: { FORWARDED: count },
  });
  const FRONTEND = 'shop/Deployment/frontend';
  const learned = () => [
    edge(FRONTEND, 'private:10.96.0.80', 80, 5, T0),
    edge(FRONTEND, 'shop/Deployment/cart', 8080, 2, T0 + 10),
    edge(FRONTEND, 'private:10.99.9.9', 80, 1, T0),
  ];

  /** The fixture snapshot with ghost selector-less, its EndpointSlice naming cart's and db's pods. */
  const ghostBackedByCartAndDb = () => {
    const snap = fixtureSnapshot(ghost({}));
    snap.services.find((s) => s.metadata.name === 'ghost')!.spec.selector = undefined;
    snap.endpointSlices.push({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: 'ghost-1', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'ghost' } },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['10.244.1.20'] }, { addresses: ['10.244.1.30'] }],
      ports: [{ port: 8080, protocol: 'TCP' }],
    });
    return snap;
  };

  const HOUR = 3_600_000;
  /**
   * ghost (→ cart), which lived from T0 - 1h to T0 + 1h, and fresh (→ db), which took its ClusterIP at
   * T0 + 2h.
   */
  const reusedAddress = () => {
    const iso = (t: number) => new Date(t).toISOString();
    type Timed = ReturnType<typeof ghost> & { metadata: { creationTimestamp?: string } };
    const deleted: Timed = ghost({ app: 'cart' });
    deleted.metadata.creationTimestamp = iso(T0 - HOUR);
    const fresh: Timed = ghost({ app: 'db' });
    fresh.metadata.name = 'fresh';
    fresh.metadata.creationTimestamp = iso(T0 + 2 * HOUR);
    return { deleted, fresh };
  };
  /** The fixture snapshot with `live`, and `deleted` deleted at T0 + 1h, as the controller's cache gives it. */
  const withDeleted = (deleted: ReturnType<typeof ghost>, ...live: unknown[]) => {
    const snap = fixtureSnapshot(...live);
    const service = fixtureSnapshot(deleted).services.find((s) => s.metadata.name === deleted.metadata.name)!;
    snap.deletedServices = [{ service, deletedAt: T0 + HOUR, endpointSlices: [] }];
    return snap;
  };

  it('are kept as learned while the Service has none', () => {
    const edges = learned();
    expect(creditServiceEdges(buildIdentity(fixtureSnapshot(ghost({ app: 'nobody' }))), edges)).toBe(edges);
  });

  it('are its backend’s once it has one, on its targetPort, folded into the edge learned to it since', () => {
    const edges = learned();
    const before = structuredClone(edges);
    const credited = creditServiceEdges(buildIdentity(fixtureSnapshot(ghost({ app: 'cart' }))), edges);
    expect(credited).toEqual([
      { ...edge(FRONTEND, 'private:10.99.9.9', 80, 1, T0) },
      { ...edge(FRONTEND, 'shop/Deployment/cart', 8080, 7, T0), lastSeen: T0 + 10 },
    ]);
    // The learned evidence is not changed.
    expect(edges).toEqual(before);
  });

  it('are every backend’s when it has several, marked shared by the connection so that it counts once', () => {
    // A selector-less Service whose EndpointSlice names cart's and db's pods.
    const snap = ghostBackedByCartAndDb();
    const credited = creditServiceEdges(buildIdentity(snap), [
      edge(FRONTEND, 'private:10.96.0.80', 80, 5, T0),
    ]);
    const shared = { [`${FRONTEND}->service:shop/ghost:80/TCP`]: 5 };
    expect(credited).toEqual([
      { ...edge(FRONTEND, 'shop/Deployment/cart', 8080, 5, T0), shared },
      { ...edge(FRONTEND, 'shop/StatefulSet/db', 8080, 5, T0), shared },
    ]);
  });

  it('stay their backend’s while it is merely scaled to zero, so the proposal does not flip', () => {
    const edges = learned();
    const backed = creditServiceEdges(buildIdentity(fixtureSnapshot(ghost({ app: 'cart' }))), edges);
    // cart scaled to zero: its Deployment is left, with no pod; ghost selects none.
    const idle = fixtureSnapshot(ghost({ app: 'cart' }));
    idle.pods = idle.pods.filter((p) => p.metadata.labels?.app !== 'cart');
    const identity = buildIdentity(idle);
    expect(identity.unbackedClusterIPs.get('10.96.0.80')).toBe('shop/ghost');
    expect(creditServiceEdges(identity, edges)).toEqual(backed);
    // A Service whose selector no workload's pod template matches stays as learned.
    const none = fixtureSnapshot(ghost({ app: 'nobody' }));
    none.pods = none.pods.filter((p) => p.metadata.labels?.app !== 'cart');
    expect(creditServiceEdges(buildIdentity(none), edges)).toBe(edges);
  });

  it('go to no workload known only from flows, whatever the order in which flows and edges are read', () => {
    // ghost selects app=checkout, which no workload of the snapshot has; a collector names one with
    // those labels (shop/Deployment/checkout, not in the cluster), which has no pod template.
    const named = {
      namespace: 'shop',
      workload: { kind: 'Deployment', name: 'checkout' },
      labels: ['app=checkout'],
    };
    const idleFirst = buildIdentity(fixtureSnapshot(ghost({ app: 'checkout' })));
    const before = idleFirst.idleBackends('10.96.0.80', 80, 'TCP');
    idleFirst.resolve(named, T0, 8080, false, 'TCP');
    const flowsFirst = buildIdentity(fixtureSnapshot(ghost({ app: 'checkout' })));
    flowsFirst.resolve(named, T0, 8080, false, 'TCP');
    expect(flowsFirst.workloads.get('shop/Deployment/checkout')?.observedOnly).toBe(true);
    expect(before).toBeUndefined();
    expect(idleFirst.idleBackends('10.96.0.80', 80, 'TCP')).toBeUndefined();
    expect(flowsFirst.idleBackends('10.96.0.80', 80, 'TCP')).toBeUndefined();
  });

  it('stay their backend’s while it is scaled to zero though a finished Job’s pod carries its labels', () => {
    const edges = learned();
    const backed = creditServiceEdges(buildIdentity(fixtureSnapshot(ghost({ app: 'cart' }))), edges);
    // cart scaled to zero, and a migration Job, finished, whose leftover pod carries cart's labels.
    const job = { 'job-name': 'migrate', 'batch.kubernetes.io/controller-uid': 'uid-migrate' };
    const idle = fixtureSnapshot(
      ghost({ app: 'cart' }),
      {
        apiVersion: 'batch/v1',
        kind: 'Job',
        metadata: { name: 'migrate', namespace: 'shop', uid: 'uid-migrate' },
        spec: { template: { metadata: { labels: { app: 'cart', ...job } } } },
      },
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: 'migrate-x7k2p',
          namespace: 'shop',
          labels: { app: 'cart', ...job },
          ownerReferences: [
            { apiVersion: 'batch/v1', kind: 'Job', name: 'migrate', uid: 'uid-migrate', controller: true },
          ],
        },
        spec: { nodeName: 'node-1', containers: [{ name: 'c' }] },
        status: { phase: 'Succeeded', podIP: '10.244.1.77', startTime: new Date(T0 - 60_000).toISOString() },
      },
    );
    idle.pods = idle.pods.filter((p) => p.metadata.labels?.app !== 'cart' || p.metadata.labels['job-name']);
    const identity = buildIdentity(idle);
    expect(identity.unbackedClusterIPs.get('10.96.0.80')).toBe('shop/ghost');
    expect(creditServiceEdges(identity, edges)).toEqual(backed);
  });

  it('stay a CronJob’s between its runs, whose pods come back each run, not a finished Job’s', () => {
    const template = (app: string) => ({
      metadata: { labels: { app } },
      spec: { containers: [{ name: app, ports: [{ containerPort: 8080 }] }] },
    });
    const service = (name: string, clusterIP: string) => ({
      ...ghost({ app: name }),
      metadata: { name, namespace: 'shop' },
      spec: { ...ghost({ app: name }).spec, clusterIP },
    });
    const identity = buildIdentity(
      fixtureSnapshot(
        service('report', '10.96.0.81'),
        service('migrate', '10.96.0.82'),
        {
          apiVersion: 'batch/v1',
          kind: 'CronJob',
          metadata: { name: 'report', namespace: 'shop', uid: 'uid-report' },
          spec: { schedule: '0 * * * *', jobTemplate: { spec: { template: template('report') } } },
        },
        {
          apiVersion: 'batch/v1',
          kind: 'Job',
          metadata: { name: 'migrate', namespace: 'shop', uid: 'uid-migrate' },
          spec: { template: template('migrate') },
          status: { succeeded: 1, conditions: [{ type: 'Complete', status: 'True' }] },
        },
      ),
    );
    const idle = (ip: string) =>
      identity.idleBackends(ip, 80, 'TCP')?.map((b) => [identity.peerAt(b.peer).id, b.port]);
    expect(identity.unbackedClusterIPs.get('10.96.0.81')).toBe('shop/report');
    expect(idle('10.96.0.81')).toEqual([['shop/CronJob/report', 8080]]);
    // A Job that has finished runs no more: what was learned to its Service's address stays as learned.
    expect(identity.unbackedClusterIPs.get('10.96.0.82')).toBe('shop/migrate');
    expect(idle('10.96.0.82')).toBeUndefined();
    // Worked out once per identity, as serviceBackends is: the same backends on each call.
    expect(identity.idleBackends('10.96.0.81', 80, 'TCP')).toBe(
      identity.idleBackends('10.96.0.81', 80, 'TCP'),
    );
  });

  it('are the backends a deleted Service had before its deletion, and a Service taking its address since has those after', () => {
    // ghost (→ cart) lived from T0 - 1h to T0 + 1h; fresh (→ db) took its ClusterIP at T0 + 2h.
    const { deleted, fresh } = reusedAddress();
    const identity = buildIdentity(withDeleted(deleted, fresh));
    const at = (t: number) => identity.resolve({ ip: '10.96.0.80' }, t, 80, false, 'TCP');
    const backendsAt = (t: number) => {
      const n = identity.resolveNumber({ ip: '10.96.0.80' }, t, 80, false, 'TCP');
      return identity.serviceBackends(n, 80, 'TCP')?.map((b) => [identity.peerAt(b.peer).id, b.port]);
    };
    expect(backendsAt(T0)).toEqual([['shop/Deployment/cart', 8080]]);
    // Nothing held the address between the deletion and fresh.
    expect(at(T0 + 1.5 * HOUR)).toEqual({ id: 'private:10.96.0.80', kind: 'private', ip: '10.96.0.80' });
    expect(backendsAt(T0 + 3 * HOUR)).toEqual([['shop/StatefulSet/db', 8080]]);
    // The deleted Service is no Service with no backend now.
    expect(identity.unbackedClusterIPs.has('10.96.0.80')).toBe(false);
    // An edge learned to the address while ghost had no backend, then credited, stays credited after
    // its deletion: to the backends it had then, never an ipBlock.
    const credited = creditServiceEdges(identity, [edge(FRONTEND, 'private:10.96.0.80', 80, 5, T0)]);
    expect(credited).toEqual([edge(FRONTEND, 'shop/Deployment/cart', 8080, 5, T0)]);
    // Without fresh, a flow after the deletion is an address of no one, as it is today.
    const alone = buildIdentity(withDeleted(deleted));
    expect(alone.resolve({ ip: '10.96.0.80' }, T0 + 3 * HOUR, 80, false, 'TCP').id).toBe(
      'private:10.96.0.80',
    );
    expect(alone.resolve({ ip: '10.96.0.80' }, T0, 80, false, 'TCP').id).toBe('service:shop/ghost (deleted)');
  });

  it('keep the credit of their flows before a Service’s deletion when the edge has flows after it too', () => {
    // ghost (→ cart) lived from T0 - 1h to T0 + 1h; the edge's flows span T0 to T0 + 2h.
    const { deleted, fresh } = reusedAddress();
    const identity = buildIdentity(withDeleted(deleted));
    const spanning = { ...edge(FRONTEND, 'private:10.96.0.80', 80, 5, T0), lastSeen: T0 + 2 * HOUR };
    expect(creditServiceEdges(identity, [spanning])).toEqual([
      { ...edge(FRONTEND, 'shop/Deployment/cart', 8080, 5, T0), lastSeen: T0 + 2 * HOUR },
    ]);
    // Wholly after the deletion: the address of no one, as learned.
    const after = [edge(FRONTEND, 'private:10.96.0.80', 80, 5, T0 + 2 * HOUR)];
    expect(creditServiceEdges(identity, after)).toBe(after);
    // fresh (→ db) took the address at T0 + 2h: an edge spanning both is each one's backends'.
    const reused = buildIdentity(withDeleted(deleted, fresh));
    const both = { ...edge(FRONTEND, 'private:10.96.0.80', 80, 5, T0), lastSeen: T0 + 3 * HOUR };
    const shared = { [`${FRONTEND}->service:shop/fresh:80/TCP`]: 5 };
    expect(creditServiceEdges(reused, [both])).toEqual([
      { ...edge(FRONTEND, 'shop/Deployment/cart', 8080, 5, T0), lastSeen: T0 + 3 * HOUR, shared },
      { ...edge(FRONTEND, 'shop/StatefulSet/db', 8080, 5, T0), lastSeen: T0 + 3 * HOUR, shared },
    ]);
  });

  it('count each flow once when the learned edge already shares some of its flows with other edges', () => {
    const snap = ghostBackedByCartAndDb();
    // 7 flows learned to the address, 5 of them from a connection whose source stood for several
    // workloads (a selector peer), which the edges from each of them hold too.
    const other = 'shop/selector:app=web->private:10.96.0.80:80/TCP';
    const learnedEdge = { ...edge(FRONTEND, 'private:10.96.0.80', 80, 7, T0), shared: { [other]: 5 } };
    expect(countFlows([learnedEdge])).toBe(7);
    const credited = creditServiceEdges(buildIdentity(snap), [learnedEdge]);
    // Each backend's edge holds the 7; the 7 are counted once over both, as they were before.
    const shared = { [other]: 5, [`${FRONTEND}->service:shop/ghost:80/TCP`]: 2 };
    expect(credited).toEqual([
      { ...edge(FRONTEND, 'shop/Deployment/cart', 8080, 7, T0), shared },
      { ...edge(FRONTEND, 'shop/StatefulSet/db', 8080, 7, T0), shared },
    ]);
    expect(countFlows(credited)).toBe(7);
  });
});
