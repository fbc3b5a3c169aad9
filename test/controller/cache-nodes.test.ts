/**
 * The cluster cache's nodes: in the snapshot (identity's node addresses, the audits' `nodes` peers), and
 * a change of identity only when what is read of a node changes: a kubelet's heartbeat updates its Node
 * every few seconds, and must not rebuild identity and every Segmentation's analysis.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ClusterCache } from '../../src/controller/cache.ts';
import type { KubeClient } from '../../src/controller/kube.ts';
import { resourcePath } from '../../src/controller/kube.ts';
import { fakeWatches } from './fake-watch.ts';

const node = (rv: string, labels: Record<string, string>, address: string, heartbeat: string) => ({
  metadata: { name: 'node-1', resourceVersion: rv, labels },
  status: {
    addresses: [{ type: 'InternalIP', address }],
    conditions: [{ type: 'Ready', status: 'True', lastHeartbeatTime: heartbeat }],
  },
});

/** A client whose lists give `items` per path and whose watches take events from `emit`. */
function fakeClient(items: Record<string, unknown[]>) {
  const { watch, emit } = fakeWatches();
  const client = {
    list: (path: string) => Promise.resolve({ items: items[path] ?? [], resourceVersion: '1' }),
    watch,
  };
  return { client: client as unknown as KubeClient, emit };
}

describe('the cluster cache of nodes', () => {
  let cache: ClusterCache | undefined;
  afterEach(async () => {
    await cache?.stop();
  });

  it('holds them in the snapshot, and changes identity only when their labels or addresses change', async () => {
    const path = resourcePath('Node');
    const { client, emit } = fakeClient({
      [path]: [node('10', { zone: 'a' }, '10.0.0.1', '2026-11-30T10:00:00Z')],
    });
    cache = new ClusterCache(client);
    cache.start();
    await cache.waitForSync();
    const nodes = cache.snapshot().others.filter((o) => o.kind === 'Node');
    expect(nodes).toEqual([
      {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: 'node-1', resourceVersion: '10', labels: { zone: 'a' } },
        status: { addresses: [{ type: 'InternalIP', address: '10.0.0.1' }] },
      },
    ]);
    const before = cache.version;
    // A heartbeat: a new resourceVersion, nothing read changes.
    emit(path, 'MODIFIED', node('11', { zone: 'a' }, '10.0.0.1', '2026-11-30T10:00:10Z'));
    await expect.poll(() => cache!.nodes.get('node-1')?.metadata.resourceVersion).toBe('11');
    expect(cache.version).toBe(before);
    // A label, then an address: identity changes each time.
    emit(path, 'MODIFIED', node('12', { zone: 'b' }, '10.0.0.1', '2026-11-30T10:00:20Z'));
    await expect.poll(() => cache!.version).toBe(before + 1);
    emit(path, 'MODIFIED', node('13', { zone: 'b' }, '10.0.0.9', '2026-11-30T10:00:30Z'));
    await expect.poll(() => cache!.version).toBe(before + 2);
    emit(path, 'DELETED', node('14', { zone: 'b' }, '10.0.0.9', '2026-11-30T10:00:40Z'));
    await expect.poll(() => cache!.version).toBe(before + 3);
    expect(cache.snapshot().others).toEqual([]);
  });
});
