/**
 * Identity of flow endpoints that give neither a pod nor an address (a Kubescape object's own workload
 * and its selector neighbours, generic endpoints given by namespace and workload or labels), of the
 * workload kinds collectors name, and of the addresses in records without times of their own.
 */
import { describe, expect, it } from 'vitest';
import type { Flow, FlowEndpoint } from '../../src/flows/types.ts';
import { Aggregator } from '../../src/graph/aggregate.ts';
import { countFlows } from '../../src/graph/counts.ts';
import { buildIdentity } from '../../src/identity/index.ts';
import type { ClusterSnapshot } from '../../src/model/snapshot.ts';
import { snapshotFromObjects } from '../../src/model/snapshot.ts';
import { runPipeline } from '../../src/pipeline.ts';
import { fixtureSnapshot } from './fixture.ts';

const T0 = Date.parse('2026-11-01T10:00:00Z');

/** The fixture with `objs` added (parsed as a snapshot file's objects are). */
function withObjects(...objs: unknown[]): ClusterSnapshot {
  const snap = fixtureSnapshot();
  const more = snapshotFromObjects(objs, 'test');
  for (const k of Object.keys(more) as (keyof ClusterSnapshot)[])
    (snap[k] as unknown[]).push(...(more[k] as unknown[]));
  return snap;
}

/** A Deployment of namespace shop whose pod template has `labels`. */
function deployment(name: string, labels: Record<string, string>) {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: 'shop', uid: `uid-${name}` },
    spec: { selector: { matchLabels: labels }, template: { metadata: { labels } } },
  };
}

/** A ReplicaSet of namespace shop owned by Deployment `owner`. */
function replicaSet(name: string, owner: string) {
  return {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: {
      name,
      namespace: 'shop',
      uid: `uid-${name}`,
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: owner, controller: true }],
    },
    spec: {},
  };
}

const cronJob = {
  apiVersion: 'batch/v1',
  kind: 'CronJob',
  metadata: { name: 'nightly', namespace: 'shop', uid: 'uid-nightly' },
  spec: { jobTemplate: { spec: { template: { metadata: { labels: { app: 'nightly' } } } } } },
};

const at = (snap: ClusterSnapshot, ep: FlowEndpoint) => buildIdentity(snap).resolve(ep, T0).id;

describe('an endpoint that names its workload and gives no pod or address', () => {
  it('is the workload of the snapshot it names', () => {
    const id = buildIdentity(fixtureSnapshot());
    const local = { namespace: 'shop', workload: { kind: 'Deployment', name: 'cart' }, labels: ['app=cart'] };
    expect(id.resolve(local, T0).id).toBe('shop/Deployment/cart');
    expect(id.resolve({ namespace: 'shop', workload: { kind: 'StatefulSet', name: 'db' } }, T0).id).toBe(
      'shop/StatefulSet/db',
    );
    expect(id.stats).toMatchObject({ byHubbleWorkload: 2, unattributed: 0 });
    expect(id.warnings.filter((w) => w.includes('seen in flows'))).toEqual([]);
  });

  it('names the kind in any case, and an owned object by its root workload', () => {
    const snap = withObjects(replicaSet('cart-legacy', 'cart'), cronJob, {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: {
        name: 'nightly-manual',
        namespace: 'shop',
        uid: 'uid-job',
        ownerReferences: [{ apiVersion: 'batch/v1', kind: 'CronJob', name: 'nightly', controller: true }],
      },
      spec: {},
    });
    const named = (kind: string, name: string, more: FlowEndpoint = {}) =>
      at(snap, { namespace: 'shop', workload: { kind, name }, ...more });
    expect(named('deployment', 'cart')).toBe('shop/Deployment/cart');
    expect(named('STATEFULSET', 'db')).toBe('shop/StatefulSet/db');
    // A ReplicaSet of the snapshot, by its owner; one missing from it, by the shape of its name.
    expect(named('ReplicaSet', 'cart-7d9f')).toBe('shop/Deployment/cart');
    expect(named('replicaset', 'cart-legacy')).toBe('shop/Deployment/cart');
    expect(named('ReplicaSet', 'cart-5c6b7d8f9')).toBe('shop/Deployment/cart');
    expect(named('ReplicaSet', 'cart-v2-abc', { labels: ['pod-template-hash=v2-abc'] })).toBe(
      'shop/Deployment/cart',
    );
    // Shaped after no workload of the snapshot: reconstructed, with the kind named.
    expect(named('ReplicaSet', 'nope-5c6b7d8f9')).toBe('shop/ReplicaSet/nope-5c6b7d8f9');
    // A Job, by its CronJob: owned, or named after it.
    expect(named('Job', 'nightly-manual')).toBe('shop/CronJob/nightly');
    expect(named('job', 'nightly-29000000')).toBe('shop/CronJob/nightly');
    // A pod, by its workload.
    expect(named('pod', 'cart-7d9f-bbbbb')).toBe('shop/Deployment/cart');
  });

  it('names a pod gone from the snapshot by its workload in any case (no ghost of another kind)', () => {
    const id = buildIdentity(withObjects(replicaSet('cart-legacy', 'cart')));
    const gone = (pod: string, kind: string, name: string) =>
      id.resolve({ namespace: 'shop', pod, ip: '10.244.9.9', workload: { kind, name } }, T0).id;
    expect(gone('gone-1', 'Deployment', 'cart')).toBe('shop/Deployment/cart');
    expect(gone('gone-2', 'deployment', 'cart')).toBe('shop/Deployment/cart');
    expect(gone('gone-3', 'ReplicaSet', 'cart-7d9f')).toBe('shop/Deployment/cart');
    expect(gone('gone-4', 'ReplicaSet', 'cart-legacy')).toBe('shop/Deployment/cart');
    // A workload the snapshot lacks is reconstructed with the kind named, in its own spelling.
    expect(gone('gone-5', 'statefulset', 'cache')).toBe('shop/StatefulSet/cache');
    expect([...id.workloads.keys()].filter((k) => id.workloads.get(k)!.observedOnly)).toEqual([
      'shop/StatefulSet/cache',
    ]);
  });

  it('is reconstructed when the snapshot has no such workload and its labels select none', () => {
    const id = buildIdentity(fixtureSnapshot());
    const ghost = {
      namespace: 'shop',
      workload: { kind: 'Deployment', name: 'ghost' },
      labels: ['app=ghost'],
    };
    expect(id.resolve(ghost, T0).id).toBe('shop/Deployment/ghost');
    expect(id.workloads.get('shop/Deployment/ghost')).toMatchObject({
      observedOnly: true,
      selector: { matchLabels: { app: 'ghost' } },
    });
    expect(id.warnings).toContain(
      'workload shop/Deployment/ghost was seen in flows but is not in the snapshot; its selector comes from flow labels',
    );
    // A workload of a kind identity does not model (an Argo Rollout), whose pods its labels select.
    expect(
      id.resolve({ namespace: 'shop', workload: { kind: 'Rollout', name: 'web' }, labels: ['app=cart'] }, T0)
        .id,
    ).toBe('shop/Deployment/cart');
  });
});

describe('an endpoint given by labels or a selector, with no pod or address', () => {
  it('is the one workload whose pods its labels select, generated labels left out', () => {
    const id = buildIdentity(fixtureSnapshot());
    expect(id.resolve({ namespace: 'shop', labels: ['app=cart'] }, T0).id).toBe('shop/Deployment/cart');
    expect(id.resolve({ namespace: 'shop', labels: ['app=cart', 'pod-template-hash=zz9'] }, T0).id).toBe(
      'shop/Deployment/cart',
    );
    // The labels of one pod, with one its template lacks: the workload whose selector they match.
    expect(id.resolve({ namespace: 'shop', labels: ['app=db', 'debug=on'] }, T0).id).toBe(
      'shop/StatefulSet/db',
    );
    expect(id.stats).toMatchObject({ byLabels: 3, unattributed: 0 });
  });

  it('is unknown, with a warning, when no workload has such pods', () => {
    const id = buildIdentity(fixtureSnapshot());
    expect(id.resolve({ namespace: 'shop', labels: ['app=nope'] }, T0).id).toBe('unknown');
    expect(id.resolve({ namespace: 'data', labels: ['app=cart'] }, T0).id).toBe('unknown');
    expect(id.stats.unattributed).toBe(2);
    expect(id.warnings).toContain(
      'no workload of the snapshot has pods labelled app=nope in namespace shop: a flow endpoint selecting them is unknown',
    );
    // A selector of nothing but labels Kubernetes generates per pod or run says nothing.
    const generated = { podSelector: { matchLabels: { 'pod-template-hash': '7d9f' } } };
    expect(id.resolve({ namespace: 'shop', selector: generated }, T0).id).toBe('unknown');
    expect(id.warnings).toContain(
      "pods labelled pod-template-hash=7d9f in namespace shop: selected only by labels Kubernetes generates per pod or run, which no workload's pod template has, so a flow endpoint selecting them is unknown",
    );
  });

  it('stands for each workload whose pods it selects, and a connection of it counts once', () => {
    const snap = withObjects(deployment('cart-canary', { app: 'cart', track: 'canary' }));
    const id = buildIdentity(snap);
    const carts = { namespace: 'shop', labels: ['app=cart'] };
    const n = id.resolveNumber(carts, T0, 8080);
    expect(id.peerAt(n)).toEqual({
      id: 'selector:pods labelled app=cart in namespace shop',
      kind: 'selector',
    });
    expect(id.serviceBackends(n, 8080, 'TCP')!.map((b) => [id.peerAt(b.peer).id, b.port])).toEqual([
      ['shop/Deployment/cart', 8080],
      ['shop/Deployment/cart-canary', 8080],
    ]);
    expect(id.warnings).toContain(
      'pods labelled app=cart in namespace shop (a flow endpoint with no pod or address) are the pods of 2 workloads (shop/Deployment/cart, shop/Deployment/cart-canary): the collector does not say which connected, so its connections count for each',
    );
    const flow = (src: FlowEndpoint, dst: FlowEndpoint): Flow => ({
      time: T0,
      src,
      dst,
      protocol: 'TCP',
      port: 8080,
      verdict: 'FORWARDED',
      count: 3,
      input: 'kubescape',
    });
    const agg = new Aggregator(id);
    agg.add(flow({ namespace: 'shop', pod: 'frontend-7d9f-aaaaa' }, carts));
    agg.add(flow(carts, { namespace: 'shop', pod: 'frontend-7d9f-aaaaa' }));
    const edges = agg.edges();
    expect(edges.map((e) => `${e.src}->${e.dst}`)).toEqual([
      'shop/Deployment/cart->shop/Deployment/frontend',
      'shop/Deployment/cart-canary->shop/Deployment/frontend',
      'shop/Deployment/frontend->shop/Deployment/cart',
      'shop/Deployment/frontend->shop/Deployment/cart-canary',
    ]);
    expect(countFlows(edges)).toBe(6);
    expect([...agg.peers().keys()].some((k) => k.startsWith('selector:'))).toBe(false);
  });

  it("reads a Kubescape neighbour's selectors as a NetworkPolicy peer does", () => {
    const snap = fixtureSnapshot();
    snap.namespaces.find((n) => n.metadata.name === 'shop')!.metadata.labels!.team = 'web';
    const id = buildIdentity(snap);
    const sel = (selector: FlowEndpoint['selector'], namespace?: string) =>
      id.resolve({ ...(namespace ? { namespace } : {}), selector }, T0).id;
    // Pods by labels in the namespaces a namespaceSelector selects.
    expect(
      sel({
        namespaceSelector: { matchLabels: { team: 'web' } },
        podSelector: { matchLabels: { app: 'db' } },
      }),
    ).toBe('shop/StatefulSet/db');
    // matchExpressions too.
    expect(
      sel(
        { podSelector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['cart', 'x'] }] } },
        'shop',
      ),
    ).toBe('shop/Deployment/cart');
    // A namespaceSelector alone: every workload of the namespaces it selects.
    const all = id.resolveNumber(
      { selector: { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } } } },
      T0,
    );
    expect(id.peerAt(all).id).toBe(
      'selector:every pod in the namespaces labelled kubernetes.io/metadata.name=kube-system',
    );
    expect(id.serviceBackends(all, 53, 'UDP')!.map((b) => id.peerAt(b.peer).id)).toEqual([
      'kube-system/Deployment/coredns',
      'kube-system/Pod/node-exporter-x',
    ]);
    expect(
      sel({
        namespaceSelector: { matchLabels: { team: 'web' } },
        podSelector: { matchLabels: { app: 'nope' } },
      }),
    ).toBe('unknown');
    expect(id.warnings).toContain(
      'no workload of the snapshot has pods labelled app=nope in the namespaces labelled team=web: a flow endpoint selecting them is unknown',
    );
  });
});

describe('addresses of records without times of their own', () => {
  // 10.244.1.30 was a cart pod's from 09:00 (a finished pod still in the snapshot), db-0's from 10:30.
  const snap = () =>
    withObjects({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'cart-7d9f-old',
        namespace: 'shop',
        labels: { app: 'cart' },
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'cart-7d9f', controller: true }],
      },
      spec: { containers: [{ name: 'c' }] },
      status: { phase: 'Succeeded', podIP: '10.244.1.30', startTime: '2026-11-01T09:00:00Z' },
    });
  const ip = { ip: '10.244.1.30' };
  const early = Date.parse('2026-11-01T08:00:00Z');

  it('are the pod holding them at the time the record gives, else the one holding them as of the snapshot', () => {
    const id = buildIdentity(snap());
    expect(id.resolve(ip, T0, 5432, true).id).toBe('shop/Deployment/cart');
    expect(id.resolve(ip, Date.parse('2026-11-01T11:00:00Z'), 5432, true).id).toBe('shop/StatefulSet/db');
    expect(id.warnings.filter((w) => w.includes('10.244.1.30'))).toEqual([]);
    // Before every pod the snapshot knows started: a flow of that moment is no pod's.
    expect(id.resolve(ip, early, 5432).id).toBe('unknown:10.244.1.30');
    // A record of connections seen over a span ending then is the address's holder now.
    expect(id.resolve(ip, early, 5432, true).id).toBe('shop/StatefulSet/db');
    expect(id.warnings).toContain(
      '10.244.1.30 (in a record without times of its own, such as a Kubescape neighbour) was held by no pod of the snapshot at the latest time the record gives; taken for shop/StatefulSet/db, whose pod holds it as of the snapshot',
    );
    // Two such records in either order warn alike (report.json does not follow the input's order).
    const warned = (times: number[]) => {
      const other = buildIdentity(snap());
      for (const t of times) other.resolve(ip, t, 5432, true);
      return other.warnings;
    };
    const later = Date.parse('2026-11-01T08:30:00Z');
    expect(warned([early, later])).toEqual(warned([later, early]));
  });

  it('are resolved so by the pipeline for flows marked timeless', async () => {
    const flow = (timeless: boolean): Flow => ({
      time: early,
      src: { namespace: 'shop', workload: { kind: 'Deployment', name: 'cart' } },
      dst: ip,
      protocol: 'TCP',
      port: 5432,
      verdict: 'FORWARDED',
      count: 1,
      input: 'kubescape',
      ...(timeless ? { timeless: true as const } : {}),
    });
    const edges = async (timeless: boolean) =>
      (await runPipeline(snap(), [flow(timeless)])).graph.edges.map((e) => e.id);
    expect(await edges(false)).toEqual(['shop/Deployment/cart->unknown:10.244.1.30:5432/TCP']);
    expect(await edges(true)).toEqual(['shop/Deployment/cart->shop/StatefulSet/db:5432/TCP']);
  });
});
