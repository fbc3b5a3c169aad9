/**
 * The cluster cache's deleted pods (tombstones): kept for the tombstone period so that late flows still
 * resolve their addresses, and no longer, also on a replica that never rebuilds identity (not leading);
 * and its deleted Services, for the flows and learned edges of before their deletion.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ClusterCache } from '../../src/controller/cache.ts';
import type { KubeClient } from '../../src/controller/kube.ts';
import { resourcePath } from '../../src/controller/kube.ts';
import { buildIdentity } from '../../src/identity/index.ts';
import { fakeWatches } from './fake-watch.ts';

const pod = (name: string) => ({
  metadata: { name, namespace: 'preview', uid: `uid-${name}`, resourceVersion: '1' },
  spec: { nodeName: 'node-1', containers: [{ name: 'c' }] },
  status: { phase: 'Running', podIP: '10.244.1.5', podIPs: [{ ip: '10.244.1.5' }] },
});

describe('the cluster cache of deleted pods', () => {
  let cache: ClusterCache | undefined;
  afterEach(async () => {
    await cache?.stop();
  });

  it('keeps them for the tombstone period only, though nothing reads them', async () => {
    const { watch, emit } = fakeWatches();
    const client = { list: () => Promise.resolve({ items: [], resourceVersion: '1' }), watch };
    cache = new ClusterCache(client as unknown as KubeClient, { tombstoneMs: 50 });
    cache.start();
    await cache.waitForSync();
    const path = resourcePath('Pod');
    for (let i = 0; i < 20; i++) {
      emit(path, 'ADDED', pod(`web-${i}`));
      emit(path, 'DELETED', pod(`web-${i}`));
    }
    await expect.poll(() => cache!.deletedPodsKept).toBe(20);
    await new Promise((resolve) => setTimeout(resolve, 100));
    // Another deleted after the period: the 20 before are gone.
    emit(path, 'ADDED', pod('api-0'));
    emit(path, 'DELETED', pod('api-0'));
    await expect.poll(() => cache!.pods.list().length).toBe(0);
    expect(cache.deletedPodsKept).toBe(1);
    expect(cache.recentlyDeletedPods().map((p) => p.metadata.name)).toEqual(['api-0']);
  });

  it('keeps deleted Services, with the time of deletion and their slices, for as long as asked', async () => {
    const { watch, emit } = fakeWatches();
    const client = { list: () => Promise.resolve({ items: [], resourceVersion: '1' }), watch };
    cache = new ClusterCache(client as unknown as KubeClient, { tombstoneMs: 50 });
    cache.start();
    await cache.waitForSync();
    const svc = {
      metadata: { name: 'ext', namespace: 'preview', uid: 'uid-ext', resourceVersion: '1' },
      spec: { clusterIP: '10.96.0.9', ports: [{ port: 80 }] },
    };
    const slice = {
      metadata: {
        name: 'ext-1',
        namespace: 'preview',
        uid: 'uid-ext-1',
        resourceVersion: '1',
        labels: { 'kubernetes.io/service-name': 'ext' },
      },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['10.244.1.5'] }],
    };
    emit(resourcePath('Service'), 'ADDED', svc);
    emit(resourcePath('EndpointSlice'), 'ADDED', slice);
    await expect.poll(() => cache!.endpointSlices.list().length).toBe(1);
    const before = Date.now();
    emit(resourcePath('Service'), 'DELETED', svc);
    emit(resourcePath('EndpointSlice'), 'DELETED', slice);
    await expect.poll(() => cache!.endpointSlices.list().length).toBe(0);
    const snap = cache.snapshot({ withDeletedPods: true, deletedServicesFor: 60_000 });
    // Deleted, not among the Services: as no object of a cluster can be.
    expect(snap.services).toEqual([]);
    expect(snap.deletedServices?.map((d) => d.service.metadata.name)).toEqual(['ext']);
    expect(snap.deletedServices?.[0]?.deletedAt).toBeGreaterThanOrEqual(before);
    // Its slices are kept with it, not among the cluster's.
    expect(snap.deletedServices?.[0]?.endpointSlices.map((s) => s.metadata.name)).toEqual(['ext-1']);
    expect(snap.endpointSlices).toEqual([]);
    // Not in the cluster's own picture, and forgotten past the time asked.
    expect(cache.snapshot().deletedServices ?? []).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(cache.snapshot({ withDeletedPods: true, deletedServicesFor: 10 }).deletedServices).toEqual([]);
    expect(cache.deletedServicesKept).toBe(0);
  });

  it('keeps a Service a finalizer holds after its deletion began as it is: its backends get the flows until it is removed', async () => {
    const { watch, emit } = fakeWatches();
    const client = { list: () => Promise.resolve({ items: [], resourceVersion: '1' }), watch };
    cache = new ClusterCache(client as unknown as KubeClient, { tombstoneMs: 60_000 });
    cache.start();
    await cache.waitForSync();
    const api = { ...pod('api-0'), metadata: { ...pod('api-0').metadata, labels: { app: 'api' } } };
    const svc = {
      metadata: { name: 'public', namespace: 'preview', uid: 'uid-public', resourceVersion: '1' },
      spec: {
        type: 'LoadBalancer',
        selector: { app: 'api' },
        clusterIP: '10.96.0.30',
        ports: [{ port: 443, targetPort: 8080, nodePort: 31443, protocol: 'TCP' }],
      },
      status: { loadBalancer: { ingress: [{ ip: '203.0.113.10' }] } },
    };
    const terminatingSince = Date.now() - 60_000;
    const terminating = {
      ...svc,
      metadata: {
        ...svc.metadata,
        resourceVersion: '2',
        deletionTimestamp: new Date(terminatingSince).toISOString(),
        finalizers: ['service.kubernetes.io/load-balancer-cleanup'],
      },
    };
    emit(resourcePath('Pod'), 'ADDED', api);
    emit(resourcePath('Service'), 'ADDED', svc);
    emit(resourcePath('Service'), 'MODIFIED', terminating);
    await expect.poll(() => cache!.services.list()[0]?.metadata.deletionTimestamp).toBeDefined();
    const backendsAt = (
      identity: ReturnType<typeof buildIdentity>,
      ip: string,
      port: number,
      time: number,
    ) => {
      const n = identity.resolveNumber({ ip }, time, port, false, 'TCP');
      return identity.serviceBackends(n, port, 'TCP')?.map((b) => identity.peerAt(b.peer).id);
    };
    const identity = buildIdentity(cache.snapshot({ withDeletedPods: true, deletedServicesFor: 60_000 }));
    // Flows after its deletionTimestamp still reach api, on its ClusterIP and its load balancer's IP.
    const now = Date.now();
    expect(backendsAt(identity, '10.96.0.30', 443, now)).toEqual(['preview/Pod/api-0']);
    expect(backendsAt(identity, '203.0.113.10', 443, now)).toEqual(['preview/Pod/api-0']);
    expect(identity.workloads.get('preview/Pod/api-0')?.roles).toContain('load-balanced');
    expect(identity.unbackedClusterIPs.size).toBe(0);
    // Removed once the load balancer is cleaned up: deleted then, not at its deletionTimestamp.
    const removedAfter = Date.now();
    emit(resourcePath('Service'), 'DELETED', terminating);
    await expect.poll(() => cache!.services.list().length).toBe(0);
    const removedBy = Date.now();
    const after = buildIdentity(cache.snapshot({ withDeletedPods: true, deletedServicesFor: 60_000 }));
    expect(backendsAt(after, '10.96.0.30', 443, removedAfter - 1)).toEqual(['preview/Pod/api-0']);
    expect(after.resolve({ ip: '10.96.0.30' }, removedBy + 1, 443, false, 'TCP').id).toBe(
      'private:10.96.0.30',
    );
  });

  it('keeps a deleted Service’s own slices, not those of a Service of the same name created since', async () => {
    const { watch, emit } = fakeWatches();
    const client = { list: () => Promise.resolve({ items: [], resourceVersion: '1' }), watch };
    cache = new ClusterCache(client as unknown as KubeClient, { tombstoneMs: 60_000 });
    cache.start();
    await cache.waitForSync();
    const at = (name: string, ip: string) => ({
      ...pod(name),
      status: { ...pod(name).status, podIP: ip, podIPs: [{ ip }] },
    });
    /** The selector-less Service ext (uid `uid`) at `clusterIP`, and its slice naming `address`. */
    const ext = (uid: string, clusterIP: string, address: string) => ({
      svc: {
        metadata: { name: 'ext', namespace: 'preview', uid, resourceVersion: '1' },
        spec: { clusterIP, ports: [{ port: 80, targetPort: 8080 }] },
      },
      slice: {
        metadata: {
          name: `ext-${uid}`,
          namespace: 'preview',
          uid: `slice-${uid}`,
          resourceVersion: '1',
          labels: { 'kubernetes.io/service-name': 'ext' },
          ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name: 'ext', uid }],
        },
        addressType: 'IPv4',
        endpoints: [{ addresses: [address] }],
        ports: [{ port: 8080, protocol: 'TCP' }],
      },
    });
    emit(resourcePath('Pod'), 'ADDED', at('old-0', '10.244.1.5'));
    emit(resourcePath('Pod'), 'ADDED', at('new-0', '10.244.1.6'));
    const first = ext('uid-1', '10.96.0.9', '10.244.1.5');
    emit(resourcePath('Service'), 'ADDED', first.svc);
    emit(resourcePath('EndpointSlice'), 'ADDED', first.slice);
    await expect.poll(() => cache!.endpointSlices.list().length).toBe(1);
    const beforeDeletion = Date.now();
    emit(resourcePath('Service'), 'DELETED', first.svc);
    emit(resourcePath('EndpointSlice'), 'DELETED', first.slice);
    await expect.poll(() => cache!.endpointSlices.list().length).toBe(0);
    // Recreated with the same name, another address and other endpoints.
    const second = ext('uid-2', '10.96.0.10', '10.244.1.6');
    emit(resourcePath('Service'), 'ADDED', second.svc);
    emit(resourcePath('EndpointSlice'), 'ADDED', second.slice);
    await expect.poll(() => cache!.endpointSlices.list().length).toBe(1);
    const identity = buildIdentity(cache.snapshot({ withDeletedPods: true, deletedServicesFor: 60_000 }));
    const backends = (ip: string, time: number) => {
      const n = identity.resolveNumber({ ip }, time, 80, false, 'TCP');
      return identity.serviceBackends(n, 80, 'TCP')?.map((b) => [identity.peerAt(b.peer).id, b.port]);
    };
    // A flow to the first one from before its deletion goes to the endpoints it had.
    expect(backends('10.96.0.9', beforeDeletion - 1)).toEqual([['preview/Pod/old-0', 8080]]);
    expect(backends('10.96.0.10', Date.now())).toEqual([['preview/Pod/new-0', 8080]]);
  });

  it('keeps the slices of a deleted Service whose deletion arrives after theirs, as the two watches may', async () => {
    const { watch, emit } = fakeWatches();
    const client = { list: () => Promise.resolve({ items: [], resourceVersion: '1' }), watch };
    cache = new ClusterCache(client as unknown as KubeClient, { tombstoneMs: 60_000 });
    cache.start();
    await cache.waitForSync();
    const backend = {
      ...pod('db-0'),
      status: { ...pod('db-0').status, podIP: '10.244.1.7', podIPs: [{ ip: '10.244.1.7' }] },
    };
    const svc = {
      metadata: { name: 'db', namespace: 'preview', uid: 'uid-db', resourceVersion: '1' },
      spec: { clusterIP: '10.96.0.11', ports: [{ port: 5432 }] },
    };
    const slice = {
      metadata: {
        name: 'db-1',
        namespace: 'preview',
        uid: 'uid-db-1',
        resourceVersion: '1',
        labels: { 'kubernetes.io/service-name': 'db' },
        ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name: 'db', uid: 'uid-db' }],
      },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['10.244.1.7'] }],
      ports: [{ port: 5432, protocol: 'TCP' }],
    };
    emit(resourcePath('Pod'), 'ADDED', backend);
    emit(resourcePath('Service'), 'ADDED', svc);
    emit(resourcePath('EndpointSlice'), 'ADDED', slice);
    await expect.poll(() => cache!.endpointSlices.list().length).toBe(1);
    const beforeDeletion = Date.now();
    // The slice's deletion (its owner's garbage collection) is seen first.
    emit(resourcePath('EndpointSlice'), 'DELETED', slice);
    await expect.poll(() => cache!.endpointSlices.list().length).toBe(0);
    emit(resourcePath('Service'), 'DELETED', svc);
    await expect.poll(() => cache!.services.list().length).toBe(0);
    const snap = cache.snapshot({ withDeletedPods: true, deletedServicesFor: 60_000 });
    expect(snap.deletedServices?.[0]?.endpointSlices.map((s) => s.metadata.name)).toEqual(['db-1']);
    const identity = buildIdentity(snap);
    const n = identity.resolveNumber({ ip: '10.96.0.11' }, beforeDeletion - 1, 5432, false, 'TCP');
    expect(identity.serviceBackends(n, 5432, 'TCP')?.map((b) => identity.peerAt(b.peer).id)).toEqual([
      'preview/Pod/db-0',
    ]);
  });

  it('keeps at most maxDeletedSlices deleted EndpointSlices, the latest, however many are deleted in the minute', async () => {
    const { watch, emit } = fakeWatches();
    const client = { list: () => Promise.resolve({ items: [], resourceVersion: '1' }), watch };
    cache = new ClusterCache(client as unknown as KubeClient, { tombstoneMs: 60_000, maxDeletedSlices: 2 });
    cache.start();
    await cache.waitForSync();
    const slice = (name: string) => ({
      metadata: {
        name,
        namespace: 'preview',
        uid: `uid-${name}`,
        resourceVersion: '1',
        labels: { 'kubernetes.io/service-name': name },
      },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['10.244.1.7'] }],
      ports: [{ port: 5432, protocol: 'TCP' }],
    });
    for (const name of ['a-1', 'b-1', 'c-1']) emit(resourcePath('EndpointSlice'), 'ADDED', slice(name));
    await expect.poll(() => cache!.endpointSlices.list().length).toBe(3);
    for (const name of ['a-1', 'b-1', 'c-1']) emit(resourcePath('EndpointSlice'), 'DELETED', slice(name));
    await expect.poll(() => cache!.endpointSlices.list().length).toBe(0);
    expect(cache.deletedSlicesKept).toBe(2);
    // The latest are kept: c's Service, deleted now, still has its slice.
    const svc = {
      metadata: { name: 'c-1', namespace: 'preview', uid: 'uid-svc-c', resourceVersion: '1' },
      spec: { clusterIP: '10.96.0.12', ports: [{ port: 5432 }] },
    };
    emit(resourcePath('Service'), 'ADDED', svc);
    await expect.poll(() => cache!.services.list().length).toBe(1);
    emit(resourcePath('Service'), 'DELETED', svc);
    await expect.poll(() => cache!.services.list().length).toBe(0);
    const snap = cache.snapshot({ withDeletedPods: true, deletedServicesFor: 60_000 });
    expect(snap.deletedServices?.[0]?.endpointSlices.map((s) => s.metadata.name)).toEqual(['c-1']);
  });

  it('looks at a deleted Service’s own slices only, not every slice of the cluster, when a namespace of many Services goes', async () => {
    const { watch, emit } = fakeWatches();
    const client = { list: () => Promise.resolve({ items: [], resourceVersion: '1' }), watch };
    cache = new ClusterCache(client as unknown as KubeClient, { tombstoneMs: 60_000 });
    cache.start();
    await cache.waitForSync();
    const service = (namespace: string, name: string) => ({
      metadata: { name, namespace, uid: `uid-${namespace}-${name}`, resourceVersion: '1' },
      spec: { clusterIP: '10.96.0.20', ports: [{ port: 80 }] },
    });
    const slice = (namespace: string, svc: string, i: number) => ({
      metadata: {
        name: `${svc}-${i}`,
        namespace,
        uid: `uid-${namespace}-${svc}-${i}`,
        resourceVersion: '1',
        labels: { 'kubernetes.io/service-name': svc },
        ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name: svc, uid: `uid-${namespace}-${svc}` }],
      },
      addressType: 'IPv4',
      endpoints: [{ addresses: [`10.244.2.${i}`] }],
    });
    // N Services of M slices each in the namespace deleted, beside the other namespaces' Services.
    const N = 40;
    const M = 3;
    const names = Array.from({ length: N }, (_, i) => `svc-${i}`);
    for (const ns of ['doomed', 'kept'])
      for (const name of names) {
        emit(resourcePath('Service'), 'ADDED', service(ns, name));
        for (let i = 0; i < M; i++) emit(resourcePath('EndpointSlice'), 'ADDED', slice(ns, name, i));
      }
    await expect.poll(() => cache!.endpointSlices.list().length).toBe(2 * N * M);
    // The namespace goes: the slices of the first half are deleted before their Services (the two
    // watches deliver in either order), those of the other half after.
    for (const name of names.slice(0, N / 2))
      for (let i = 0; i < M; i++) emit(resourcePath('EndpointSlice'), 'DELETED', slice('doomed', name, i));
    for (const name of names) emit(resourcePath('Service'), 'DELETED', service('doomed', name));
    for (const name of names.slice(N / 2))
      for (let i = 0; i < M; i++) emit(resourcePath('EndpointSlice'), 'DELETED', slice('doomed', name, i));
    await expect.poll(() => cache!.endpointSlices.list().length).toBe(N * M);
    const snap = cache.snapshot({ withDeletedPods: true, deletedServicesFor: 60_000 });
    expect(snap.deletedServices?.length).toBe(N);
    for (const d of snap.deletedServices ?? [])
      expect(d.endpointSlices.map((s) => s.metadata.name).sort()).toEqual(
        Array.from({ length: M }, (_, i) => `${d.service.metadata.name}-${i}`),
      );
    // Each deletion looked at its own M slices: N * M in all, where looking at every slice (live or
    // recently deleted) at each deletion is some N * (2 * N * M).
    expect(cache.slicesExamined).toBe(N * M);
  });
});
