/**
 * The cluster cache's deleted pods (tombstones): kept for the tombstone period so that late flows still
 * resolve their addresses, and no longer, also on a replica that never rebuilds identity (not leading).
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
});
