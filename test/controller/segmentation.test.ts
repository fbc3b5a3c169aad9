import { afterEach, describe, expect, it } from 'vitest';
import type { LearnedEdgeSet, ProposedNetworkPolicy, Segmentation } from '../../src/controller/api.ts';
import { ClusterCache } from '../../src/controller/cache.ts';
import { Informer } from '../../src/controller/informer.ts';
import type { KubeClient } from '../../src/controller/kube.ts';
import { resourcePath } from '../../src/controller/kube.ts';
import { silentLogger } from '../../src/controller/log.ts';
import { SegmentationController } from '../../src/controller/segmentation.ts';

/**
 * A KubeClient stand-in: lists give `objects` by resource path (nothing for the rest), watches wait
 * until stopped, a merge patch answers the object's next resourceVersion, and listing LearnedEdgeSets
 * fails while `failEdgeSets` is set.
 */
function fakeClient(objects: Record<string, unknown[]>) {
  const state = { failEdgeSets: true, edgeSetLists: 0 };
  const edgeSets = resourcePath('LearnedEdgeSet');
  const client = {
    requests: new Map<string, number>(),
    list: (path: string) => {
      if (path === edgeSets) {
        state.edgeSetLists++;
        if (state.failEdgeSets) return Promise.reject(new Error('learnedgesets is forbidden'));
      }
      return Promise.resolve({ items: objects[path] ?? [], resourceVersion: '1' });
    },
    watch: (_path: string, _query: unknown, _on: unknown, signal: AbortSignal) =>
      new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve())),
    mergePatch: () => Promise.resolve({ metadata: { resourceVersion: '2' } }),
    apply: () => Promise.resolve({ metadata: { resourceVersion: '3' } }),
    delete: () => Promise.resolve(),
    request: () => Promise.resolve({}),
  };
  return { client: client as unknown as KubeClient, state };
}

describe('the Segmentation controller', () => {
  const stops: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop();
  });

  const seg = (name: string, spec: unknown): Segmentation =>
    ({
      apiVersion: 'microseg.dev/v1alpha1',
      kind: 'Segmentation',
      metadata: { name, uid: `uid-${name}`, resourceVersion: '1', generation: 1 },
      spec,
    }) as unknown as Segmentation;

  async function start(segmentations: Segmentation[]) {
    const { client, state } = fakeClient({
      [resourcePath('Segmentation')]: segmentations,
      [resourcePath('Namespace')]: [
        { metadata: { name: 'shop', labels: { 'kubernetes.io/metadata.name': 'shop' } } },
      ],
    });
    const cache = new ClusterCache(client);
    const segs = new Informer<Segmentation>(client, { path: resourcePath('Segmentation') });
    const proposals = new Informer<ProposedNetworkPolicy>(client, {
      path: resourcePath('ProposedNetworkPolicy'),
    });
    const edgeSets = new Informer<LearnedEdgeSet>(client, { path: resourcePath('LearnedEdgeSet') });
    const informers = [...cache.informers(), segs, proposals];
    for (const i of informers) i.start();
    await Promise.all(informers.map((i) => i.waitForSync()));
    const controller = new SegmentationController({
      client,
      cache,
      segmentations: segs,
      proposals,
      edgeSets,
      events: { record: () => {} },
      log: silentLogger,
    });
    stops.push(async () => {
      await controller.stopLeading();
      await Promise.all(informers.map((i) => i.stop()));
    });
    return { controller, state };
  }

  it('lists as unrestored a Segmentation whose learned graph could not be restored, until it is', async () => {
    const { controller, state } = await start([
      seg('shop', { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'shop' } } }),
      // Invalid: it has no learned graph to restore, and is never listed (else the API answered 503 for ever).
      seg('broken', { namespaceSelector: {}, mode: 'Sometimes' }),
    ]);
    controller.startLeading();
    // The first reconcile of each has run: `shop`'s failed at listing its LearnedEdgeSets.
    await expect.poll(() => controller.metrics.reconcileErrors).toBeGreaterThanOrEqual(1);
    await expect.poll(() => controller.unrestored(['broken'])).toEqual([]);
    expect(state.edgeSetLists).toBeGreaterThanOrEqual(1);
    expect(controller.unrestored()).toEqual(['shop']);
    expect(controller.unrestored(['shop'])).toEqual(['shop']);
    expect(controller.unrestored(['broken'])).toEqual([]);
    // Flows are not held up by a Segmentation that keeps failing.
    await controller.whenRestored();
    // Once the list succeeds (the queue retries it), the graph is restored and nothing is pending.
    state.failEdgeSets = false;
    await expect.poll(() => controller.unrestored(), { timeout: 5_000 }).toEqual([]);
  });
});
