/**
 * Workloads known only from flows, carried from one identity to the next (`IdentityOptions.observed`):
 * what the controller passes when it builds its identity again after a change of the cluster.
 */
import { describe, expect, it } from 'vitest';
import { buildIdentity } from '../../src/identity/index.ts';
import type { Workload } from '../../src/identity/types.ts';
import { fixtureSnapshot } from './fixture.ts';

const T0 = Date.parse('2026-11-01T10:00:00Z');

/** A running bare pod of shop, labelled app=<name>. */
const barePod = (name: string, ip: string) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'shop', uid: `uid-${name}`, labels: { app: name } },
  spec: { nodeName: 'node-1', containers: [{ name: 'c' }] },
  status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] },
});

/** The workloads known only from flows of a first identity: a bare pod, and a StatefulSet a collector names. */
function flowOnly(): Workload[] {
  const first = buildIdentity(fixtureSnapshot());
  expect(
    first.resolve({ namespace: 'shop', pod: 'phantom', ip: '10.244.9.9', labels: ['app=phantom'] }, T0).id,
  ).toBe('shop/Pod/phantom');
  expect(
    first.resolve(
      {
        namespace: 'shop',
        pod: 'cache-0',
        ip: '10.244.9.8',
        workload: { kind: 'StatefulSet', name: 'cache' },
      },
      T0,
    ).id,
  ).toBe('shop/StatefulSet/cache');
  return [...first.workloads.values()].filter((w) => w.observedOnly);
}

describe('workloads known only from flows, kept from an identity before', () => {
  it('are workloads of the identity built next, as they were, and the flows naming them place there again', () => {
    const observed = flowOnly();
    expect(observed.map((w) => w.id)).toEqual(['shop/Pod/phantom', 'shop/StatefulSet/cache']);
    const next = buildIdentity(fixtureSnapshot(), { observed });
    for (const w of observed) expect(next.workloads.get(w.id)).toEqual(w);
    expect(next.workloads.get('shop/Pod/phantom')).toMatchObject({
      observedOnly: true,
      selector: { matchLabels: { app: 'phantom' } },
    });
    expect(next.warnings).toContain(
      'workload shop/Pod/phantom was seen in flows but is not in the snapshot; its selector comes from flow labels',
    );
    expect(next.resolve({ namespace: 'shop', pod: 'phantom' }, T0).id).toBe('shop/Pod/phantom');
    // Without them (recommend's identity, built once), an identity has none.
    const none = buildIdentity(fixtureSnapshot());
    expect([...none.workloads.values()].filter((w) => w.observedOnly)).toEqual([]);
  });

  it('are left out once the snapshot has the pod, or a workload of their id', () => {
    const observed = flowOnly();
    const statefulSet = {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: 'cache', namespace: 'shop', uid: 'uid-cache' },
      spec: {
        selector: { matchLabels: { app: 'cache' } },
        template: { metadata: { labels: { app: 'cache' } } },
      },
    };
    // The pod, owned by a Deployment's ReplicaSet: its workload is the Deployment, not the bare pod.
    const owned = {
      ...barePod('phantom', '10.244.9.9'),
      metadata: {
        name: 'phantom',
        namespace: 'shop',
        uid: 'uid-phantom',
        labels: { app: 'cart', 'pod-template-hash': '7d9f' },
        ownerReferences: [
          {
            apiVersion: 'apps/v1',
            kind: 'ReplicaSet',
            name: 'cart-7d9f',
            uid: 'uid-shop-cart-rs',
            controller: true,
          },
        ],
      },
    };
    const next = buildIdentity(fixtureSnapshot(owned, statefulSet), { observed });
    expect(next.workloads.has('shop/Pod/phantom')).toBe(false);
    expect(next.podWorkload.get('shop/phantom')).toBe('shop/Deployment/cart');
    expect(next.workloads.get('shop/StatefulSet/cache')!.observedOnly).toBeUndefined();
    expect(next.warnings.filter((w) => w.includes('seen in flows'))).toEqual([]);
    // A bare pod of that name in the snapshot is the snapshot's workload.
    const bare = buildIdentity(fixtureSnapshot(barePod('phantom', '10.244.9.9')), { observed });
    expect(bare.workloads.get('shop/Pod/phantom')!.observedOnly).toBeUndefined();
    expect(bare.workloads.get('shop/Pod/phantom')!.pods).toEqual(['phantom']);
  });
});
