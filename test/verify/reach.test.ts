/** Proposal verification, excess reachability, permissiveness and blast radius on a small shop cluster. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { mergeSnapshots } from '../../src/model/snapshot.ts';
import { engineFromSnapshot } from '../../src/verify/engine.ts';
import { snapshotFromText } from '../../src/verify/load.ts';
import type { ObservedConnection } from '../../src/verify/reach.ts';
import { blastRadius, podClasses, ReachMatrix, verifyProposal } from '../../src/verify/reach.ts';

const fixture = (p: string) => fileURLToPath(new URL(`../fixtures/verify/${p}`, import.meta.url));
const cluster = snapshotFromText(readFileSync(fixture('shop-cluster.yaml'), 'utf8'), 'shop-cluster.yaml');
const proposal = mergeSnapshots(
  snapshotFromText(readFileSync(fixture('proposal/web.yaml'), 'utf8'), 'web.yaml'),
  snapshotFromText(readFileSync(fixture('proposal/shop.yaml'), 'utf8'), 'shop.yaml'),
);
const before = engineFromSnapshot(cluster);
const after = engineFromSnapshot(mergeSnapshots(cluster, proposal));

const observed: ObservedConnection[] = [
  {
    from: { namespace: 'web', pod: 'frontend-7d9f-x1' },
    to: { namespace: 'shop', labels: { app: 'cart', 'pod-template-hash': '5c4b' } },
    port: 8080,
    evidence: { flows: 12 },
  },
  {
    from: { namespace: 'shop', labels: { app: 'cart', 'pod-template-hash': '5c4b' } },
    to: { namespace: 'shop', pod: 'db-0' },
    port: 5432,
    protocol: 'TCP',
  },
  {
    from: { namespace: 'shop', pod: 'batch-28000-z1' },
    to: { namespace: 'shop', pod: 'cart-5c4b-y1' },
    port: 8080,
  },
  { from: { ip: '203.0.113.7' }, to: { namespace: 'web', pod: 'frontend-7d9f-x2' }, port: 8080 },
];

describe('pod classes', () => {
  it('groups pods by namespace, labels and ports, named after their workload', () => {
    const classes = podClasses(after);
    expect(classes.map((c) => [c.name, c.members.length])).toEqual([
      ['shop/Job/batch-28000', 1],
      ['shop/Deployment/cart', 1],
      ['shop/StatefulSet/db', 1],
      ['web/Deployment/frontend', 2],
    ]);
  });
});

describe('verifyProposal', () => {
  it('lists observed connections the proposal blocks, with the reason', () => {
    const r = verifyProposal(after, observed);
    expect(r.blocked).toEqual([
      {
        connection: observed[2],
        reason:
          'denied: egress from shop/batch-28000-z1: isolated by shop/batch-isolated and no egress rule matches; ingress to shop/cart-5c4b-y1: isolated by shop/cart and no ingress rule matches',
      },
    ]);
    expect(r.allowedObserved).toBe(3);
    expect([r.allowedTuples, r.observedTuples, r.excessCount, r.permissiveness]).toEqual([2, 2, 0, 0]);
  });
  it('counts excess reachability of an open cluster and its permissiveness', () => {
    const r = verifyProposal(before, observed);
    expect(r.blocked).toEqual([]);
    expect([r.allowedTuples, r.observedTuples, r.excessCount]).toEqual([9, 3, 6]);
    expect(r.permissiveness).toBeCloseTo(6 / 9, 10);
    expect(r.excess).toEqual([
      { from: 'shop/Deployment/cart', to: 'shop/Deployment/cart', port: 8080, protocol: 'TCP' },
      { from: 'shop/Deployment/cart', to: 'web/Deployment/frontend', port: 8080, protocol: 'TCP' },
      { from: 'shop/Job/batch-28000', to: 'web/Deployment/frontend', port: 8080, protocol: 'TCP' },
      { from: 'shop/StatefulSet/db', to: 'shop/Deployment/cart', port: 8080, protocol: 'TCP' },
      { from: 'shop/StatefulSet/db', to: 'web/Deployment/frontend', port: 8080, protocol: 'TCP' },
      { from: 'web/Deployment/frontend', to: 'web/Deployment/frontend', port: 8080, protocol: 'TCP' },
    ]);
    expect(verifyProposal(before, observed, { maxExcess: 2 }).excess).toHaveLength(2);
  });
  it('adds observed ports to the ports of interest', () => {
    const r = verifyProposal(before, [
      ...observed,
      {
        from: { namespace: 'shop', pod: 'cart-5c4b-y1' },
        to: { namespace: 'web', pod: 'frontend-7d9f-x1' },
        port: 9090,
      },
    ]);
    // 4 more allowed tuples on frontend:9090, one of them observed.
    expect([r.allowedTuples, r.observedTuples, r.excessCount]).toEqual([13, 4, 9]);
  });
});

describe('reachability matrix', () => {
  it('agrees with pairwise evaluation', () => {
    for (const engine of [before, after]) {
      const classes = podClasses(engine);
      const m = new ReachMatrix(engine, classes);
      let pairs = 0;
      for (const b of classes)
        for (const a of classes)
          if (b.ports.some((pp) => engine.allows(a.end, b.end, pp.port, pp.protocol))) pairs++;
      expect(m.totals().allowedPairs).toBe(pairs);
    }
  });
});

describe('blastRadius', () => {
  it('before and after the proposal, with paths from internet-exposed workloads', () => {
    const r = blastRadius(before, after, { namespace: 'shop', pod: 'db-0' });
    expect(r.workload).toBe('shop/StatefulSet/db');
    expect(r.before).toEqual({
      reaches: [
        { to: 'shop/Deployment/cart', ports: ['8080/TCP'] },
        { to: 'web/Deployment/frontend', ports: ['8080/TCP'] },
      ],
      reachedFrom: [{ from: 'shop/Deployment/cart', ports: ['5432/TCP'] }],
      exposedPaths: [
        ['shop/Deployment/cart', 'shop/StatefulSet/db'],
        ['web/Deployment/frontend', 'shop/Deployment/cart', 'shop/StatefulSet/db'],
      ],
      reachablePairs: 9,
    });
    expect(r.after).toEqual({
      reaches: [],
      reachedFrom: [{ from: 'shop/Deployment/cart', ports: ['5432/TCP'] }],
      exposedPaths: [['web/Deployment/frontend', 'shop/Deployment/cart', 'shop/StatefulSet/db']],
      reachablePairs: 2,
    });
  });
});

describe('verifyProposal on class-form connections', () => {
  it('blocks exactly what pairwise evaluation denies', () => {
    for (const engine of [before, after]) {
      const classes = podClasses(engine);
      const all: ObservedConnection[] = [];
      const expected: boolean[] = [];
      for (const a of classes)
        for (const b of classes)
          for (const pp of [...b.ports, { port: 9999, protocol: 'UDP' as const }]) {
            all.push({
              from: { namespace: a.namespace, labels: a.labels },
              to: { namespace: b.namespace, labels: b.labels },
              port: pp.port,
              protocol: pp.protocol,
            });
            expected.push(engine.allows(a.end, b.end, pp.port, pp.protocol));
          }
      const r = verifyProposal(engine, all);
      expect(r.blocked.map((x) => all.indexOf(x.connection))).toEqual(
        expected.flatMap((ok, i) => (ok ? [] : [i])),
      );
      expect(r.allowedObserved).toBe(expected.filter(Boolean).length);
      expect(r.excessCount).toBe(0);
    }
  });
});
