/**
 * The cluster cache's deleted pods (tombstones): kept for the tombstone period so that late flows still
 * resolve their addresses, and no longer, also on a replica that never rebuilds identity (not leading);
 * and its deleted Services, for the flows and learned edges of before their deletion.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ClusterCache } from '../../src/controller/cache.ts';
import type { KubeClient } from '../../src/controller/kube.ts';
import { resourcePath } from '../../src/controller/kube.ts';
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
    expect(snap.services.map((s) => s.metadata.name)).toEqual(['ext']);
    const deletedAt = Date.parse(snap.services[0]!.metadata.deletionTimestamp ?? '');
    expect(deletedAt).toBeGreaterThanOrEqual(before - 1000);
    expect(snap.endpointSlices.map((s) => s.metadata.name)).toEqual(['ext-1']);
    // Not in the cluster's own picture, and forgotten past the time asked.
    expect(cache.snapshot().services).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(cache.snapshot({ withDeletedPods: true, deletedServicesFor: 10 }).services).toEqual([]);
    expect(cache.deletedServicesKept).toBe(0);
  });
});
