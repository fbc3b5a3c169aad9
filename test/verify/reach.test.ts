/** Proposal verification, excess reachability, permissiveness and blast radius on a small shop cluster. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { mergeSnapshots } from '../../src/model/snapshot.ts';
import { buildEngine, engineFromSnapshot } from '../../src/verify/engine.ts';
import { snapshotFromText } from '../../src/verify/load.ts';
import type { ObservedConnection } from '../../src/verify/reach.ts';
import { blastRadius, podClasses, ReachMatrix, verifyProposal } from '../../src/verify/reach.ts';
import { formatBlastRadius } from '../../src/cli/commands/blast-radius.ts';

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
    // The pod of Job batch-28000 (not in the snapshot) is named after CronJob batch, as identity names it.
    expect(classes.map((c) => [c.name, c.members.length])).toEqual([
      ['shop/CronJob/batch', 1],
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
      { from: 'shop/CronJob/batch', to: 'web/Deployment/frontend', port: 8080, protocol: 'TCP' },
      { from: 'shop/Deployment/cart', to: 'shop/Deployment/cart', port: 8080, protocol: 'TCP' },
      { from: 'shop/Deployment/cart', to: 'web/Deployment/frontend', port: 8080, protocol: 'TCP' },
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

describe('reachability matrix, host-network pods and nodes without a Node object', () => {
  // hostNetworkPods=pod: agent-1 runs on n1 (a Node object without labels), agent-2 on n2 (known only
  // from its pod's status.hostIP, labels unknown). An empty nodes peer matches both; one that needs no
  // label (DoesNotExist) decides n1 only, so the two agents are not one class.
  const hostPod = (name: string, node: string, ip: string) => ({
    apiVersion: 'v1',
    kind: 'Pod' as const,
    metadata: { name, namespace: 'mon', labels: { app: 'agent' } },
    spec: {
      nodeName: node,
      hostNetwork: true,
      containers: [{ name: 'a', ports: [{ containerPort: 9100 }] }],
    },
    status: { podIP: ip, hostIP: ip },
  });
  const engineWith = (nodes: Record<string, unknown>) =>
    buildEngine(
      {
        namespaces: [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'mon' } }],
        pods: [
          hostPod('agent-1', 'n1', '192.168.0.1'),
          hostPod('agent-2', 'n2', '192.168.0.2'),
          {
            apiVersion: 'v1',
            kind: 'Pod',
            metadata: { name: 'scraper', namespace: 'mon', labels: { app: 'scraper' } },
            spec: { nodeName: 'n1', containers: [{ name: 's', ports: [{ containerPort: 8080 }] }] },
            status: { podIP: '10.0.0.5', hostIP: '192.168.0.1' },
          },
        ],
        nodes: [
          {
            apiVersion: 'v1',
            kind: 'Node',
            metadata: { name: 'n1' },
            status: { addresses: [{ type: 'InternalIP', address: '192.168.0.1' }] },
          },
        ],
        clusterPolicies: [
          {
            apiVersion: 'policy.networking.k8s.io/v1alpha1',
            kind: 'AdminNetworkPolicy',
            metadata: { name: 'nodes' },
            spec: {
              priority: 1,
              subject: { namespaces: {} },
              egress: [{ action: 'Deny', to: [{ nodes }] }],
            },
          },
        ],
      },
      { hostNetworkPods: 'pod' },
    );
  for (const nodes of [{}, { matchExpressions: [{ key: 'role', operator: 'DoesNotExist' }] }])
    it(`agrees with pairwise evaluation (nodes: ${JSON.stringify(nodes)})`, () => {
      const engine = engineWith(nodes);
      const classes = podClasses(engine);
      const m = new ReachMatrix(engine, classes);
      let pairs = 0;
      for (const b of classes)
        for (const a of classes)
          if (b.ports.some((pp) => engine.allows(a.end, b.end, pp.port, pp.protocol))) pairs++;
      expect(m.totals().allowedPairs).toBe(pairs);
      // Each member pod is answered as its class is.
      const scraper = engine.resolve({ namespace: 'mon', pod: 'scraper' });
      for (const c of classes)
        for (const member of c.members) {
          const [namespace, pod] = member.split('/') as [string, string];
          const end = engine.resolve({ namespace, pod });
          for (const pp of c.ports)
            expect([member, engine.allows(scraper, end, pp.port, pp.protocol)]).toEqual([
              member,
              engine.allows(scraper, c.end, pp.port, pp.protocol),
            ]);
        }
    });
});

describe('reachability matrix, namespace selectors', () => {
  // One policy admits two namespaces through two peers; another names one of them with an equal
  // selector; a third admits its own namespace only. The matrix must keep each peer's namespaces.
  const ns = (name: string) => ({
    apiVersion: 'v1',
    kind: 'Namespace' as const,
    metadata: { name, labels: { team: name } },
  });
  const pod = (namespace: string, app: string) => ({
    apiVersion: 'v1',
    kind: 'Pod' as const,
    metadata: { name: `${app}-0`, namespace, labels: { app } },
    spec: { containers: [{ name: app, ports: [{ containerPort: 80 }] }] },
    status: { podIP: `10.0.${namespace.charCodeAt(0)}.${app.length}` },
  });
  const from = (...peers: object[]) => ({
    podSelector: {},
    ingress: [{ from: peers }],
    policyTypes: ['Ingress'],
  });
  const policy = (namespace: string, name: string, app: string, spec: object) => ({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name, namespace },
    spec: { ...spec, podSelector: { matchLabels: { app } } },
  });
  const engine = buildEngine({
    namespaces: ['a', 'b', 'c'].map(ns),
    pods: [pod('a', 'x'), pod('b', 'y'), pod('b', 'yy'), pod('c', 'db'), pod('c', 'z'), pod('c', 'w')],
    networkPolicies: [
      policy(
        'c',
        'db',
        'db',
        from(
          { namespaceSelector: { matchLabels: { team: 'a' } } },
          { namespaceSelector: { matchLabels: { team: 'b' } }, podSelector: { matchLabels: { app: 'y' } } },
        ),
      ),
      policy('c', 'z', 'z', from({ namespaceSelector: { matchLabels: { team: 'b' } } })),
      policy('c', 'w', 'w', from({ podSelector: {} })),
      policy('b', 'yy', 'yy', from({ podSelector: {} })),
    ] as never,
  });

  it('keeps the namespaces of every peer, also of equal selectors in other policies', () => {
    const classes = podClasses(engine);
    const m = new ReachMatrix(engine, classes);
    const sources = (to: string) => {
      const b = classes.find((c) => c.end.labels.app === to)!;
      const s = m.sources(b, b.ports[0]!);
      return classes
        .filter((c) => (s.allFree && m.egressFree[c.index] === 1) || s.listed.includes(c.index))
        .map((c) => `${c.namespace}/${c.end.labels.app}`)
        .sort();
    };
    expect(sources('db')).toEqual(['a/x', 'b/y']);
    expect(sources('z')).toEqual(['b/y', 'b/yy']);
    expect(sources('w')).toEqual(['c/db', 'c/w', 'c/z']);
    expect(sources('yy')).toEqual(['b/y', 'b/yy']);
    let pairs = 0;
    for (const b of classes)
      for (const a of classes)
        if (b.ports.some((pp) => engine.allows(a.end, b.end, pp.port, pp.protocol))) pairs++;
    expect(m.totals().allowedPairs).toBe(pairs);
  });
});

describe('reachability matrix, sources in class order', () => {
  // A destination whose ingress names its sources in the reverse of class order (short and long lists).
  const engineWith = (count: number) =>
    buildEngine({
      namespaces: [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'n' } }],
      pods: ['db', ...Array.from({ length: count }, (_, i) => `s${String(i).padStart(2, '0')}`)].map(
        (app, i) => ({
          apiVersion: 'v1',
          kind: 'Pod' as const,
          metadata: { name: `${app}-0`, namespace: 'n', labels: { app } },
          spec: { containers: [{ name: app, ports: [{ containerPort: 80 }] }] },
          status: { podIP: `10.0.0.${i + 1}` },
        }),
      ),
      networkPolicies: [
        {
          apiVersion: 'networking.k8s.io/v1',
          kind: 'NetworkPolicy',
          metadata: { name: 'db', namespace: 'n' },
          spec: {
            podSelector: { matchLabels: { app: 'db' } },
            policyTypes: ['Ingress'],
            ingress: [
              {
                from: Array.from({ length: count }, (_, i) => ({
                  podSelector: { matchLabels: { app: `s${String(count - 1 - i).padStart(2, '0')}` } },
                })),
              },
            ],
          },
        },
      ],
    });

  it('lists the sources ascending', () => {
    for (const count of [2, 3, 6, 16, 17, 40]) {
      const engine = engineWith(count);
      const classes = podClasses(engine);
      const m = new ReachMatrix(engine, classes);
      const db = classes.find((c) => c.labels.app === 'db')!;
      const s = m.sources(db, db.ports[0]!);
      expect(s.allFree).toBe(false);
      expect(s.listed).toEqual(classes.filter((c) => c.labels.app !== 'db').map((c) => c.index));
    }
  });
});

describe('blastRadius', () => {
  it('says when the search for exposed paths stopped at its limit', () => {
    const r = blastRadius(before, after, { namespace: 'shop', pod: 'db-0' }, { maxPaths: 1 });
    expect(r.before.exposedPaths).toEqual([['shop/Deployment/cart', 'shop/StatefulSet/db']]);
    expect(r.before.exposedPathsCut).toBe(true);
    expect(formatBlastRadius(r)).toContain(
      '  paths from internet-exposed workloads (1, the first found: there may be more):\n',
    );
    expect(formatBlastRadius(blastRadius(before, after, { namespace: 'shop', pod: 'db-0' }))).toContain(
      '  paths from internet-exposed workloads (2):\n',
    );
  });

  it('before and after the proposal, with paths from internet-exposed workloads', () => {
    const r = blastRadius(before, after, { namespace: 'shop', pod: 'db-0' });
    expect(r.workload).toBe('shop/StatefulSet/db');
    expect(r.before).toEqual({
      reaches: [
        { to: 'shop/Deployment/cart', ports: ['8080/TCP'] },
        { to: 'web/Deployment/frontend', ports: ['8080/TCP'] },
      ],
      canReach: 2,
      reachedFrom: [{ from: 'shop/Deployment/cart', ports: ['5432/TCP'] }],
      reachableFrom: 1,
      exposedPaths: [
        ['shop/Deployment/cart', 'shop/StatefulSet/db'],
        ['web/Deployment/frontend', 'shop/Deployment/cart', 'shop/StatefulSet/db'],
      ],
      exposedPathsCut: false,
      reachablePairs: 9,
      reachableWorkloadPairs: 9,
    });
    expect(r.after).toEqual({
      reaches: [],
      canReach: 0,
      reachedFrom: [{ from: 'shop/Deployment/cart', ports: ['5432/TCP'] }],
      reachableFrom: 1,
      exposedPaths: [['web/Deployment/frontend', 'shop/Deployment/cart', 'shop/StatefulSet/db']],
      exposedPathsCut: false,
      reachablePairs: 2,
      reachableWorkloadPairs: 2,
    });
  });
});

describe('pods of one workload in several classes', () => {
  // Three pods of the StatefulSet db, each with its own pod-name label (as the StatefulSet controller
  // gives them): three classes of one workload.
  const pods = [0, 1, 2]
    .map(
      (i) => `---
apiVersion: v1
kind: Pod
metadata:
  name: db-${i}
  namespace: shop
  labels: { app: db, sensitive: 'true', statefulset.kubernetes.io/pod-name: db-${i} }
  ownerReferences: [{ apiVersion: apps/v1, kind: StatefulSet, name: db, controller: true }]
spec:
  nodeName: node-b
  containers: [{ name: pg, ports: [{ name: pg, containerPort: 5432 }] }]
status: { podIP: 10.0.2.3${i}, podIPs: [{ ip: 10.0.2.3${i} }] }
`,
    )
    .join('');
  const text = readFileSync(fixture('shop-cluster.yaml'), 'utf8').replace(
    /apiVersion: v1\nkind: Pod\nmetadata:\n {2}name: db-0\n[\s\S]*?\n---\n/,
    '',
  );
  const engine = engineFromSnapshot(snapshotFromText(`${text}\n${pods}`, 'shop-cluster.yaml'));

  it('names each class by its workload and its pods', () => {
    expect(podClasses(engine).map((c) => [c.name, c.workload])).toEqual([
      ['shop/CronJob/batch', 'shop/CronJob/batch'],
      ['shop/Deployment/cart', 'shop/Deployment/cart'],
      ['shop/StatefulSet/db (db-0)', 'shop/StatefulSet/db'],
      ['shop/StatefulSet/db (db-1)', 'shop/StatefulSet/db'],
      ['shop/StatefulSet/db (db-2)', 'shop/StatefulSet/db'],
      ['web/Deployment/frontend', 'web/Deployment/frontend'],
    ]);
  });

  it('counts workload pairs as pairwise evaluation of every pod pair finds them', () => {
    for (const e of [engine, engineFromSnapshot(mergeSnapshots(cluster, proposal))]) {
      const classes = podClasses(e);
      const pairs = new Set<string>();
      for (const b of classes)
        for (const a of classes)
          if (b.ports.some((pp) => e.allows(a.end, b.end, pp.port, pp.protocol)))
            pairs.add(`${a.workload} -> ${b.workload}`);
      const totals = new ReachMatrix(e, classes).totals();
      expect(totals.allowedWorkloadPairs).toBe(pairs.size);
    }
    // The three db classes are one workload: fewer workload pairs than class pairs.
    const t = new ReachMatrix(engine, podClasses(engine)).totals();
    expect(t.allowedWorkloadPairs).toBeLessThan(t.allowedPairs);
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

describe('verifyProposal with container ports outside 1-65535', () => {
  // The engine takes any number as a container port; such a port of one class is never an observed
  // port of another (a key packing class and port once made -1 at class 1 the port 65535 at class 0,
  // and 65616 at class 0 the port 80 at class 1).
  const engineWith = (ports: Record<string, number[]>, deny: string) =>
    buildEngine({
      namespaces: [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'n' } }],
      pods: Object.entries(ports).map(([app, ps], i) => ({
        apiVersion: 'v1',
        kind: 'Pod' as const,
        metadata: { name: `${app}-0`, namespace: 'n', labels: { app } },
        spec: { containers: [{ name: app, ports: ps.map((containerPort) => ({ containerPort })) }] },
        status: { podIP: `10.0.0.${i + 1}` },
      })),
      networkPolicies: [
        {
          apiVersion: 'networking.k8s.io/v1',
          kind: 'NetworkPolicy',
          metadata: { name: deny, namespace: 'n' },
          spec: { podSelector: { matchLabels: { app: deny } }, ingress: [] },
        },
      ],
    });
  const conn = (to: string, port: number): ObservedConnection => ({
    from: { namespace: 'n', labels: { app: 'c' } },
    to: { namespace: 'n', labels: { app: to } },
    port,
  });

  it("decides an observed connection by its own class's sources", () => {
    // Class b (index 1) admits nobody on its port -1; class a admits everyone on 65535.
    const engine = engineWith({ a: [65535], b: [-1], c: [] }, 'b');
    const r = verifyProposal(engine, [conn('a', 65535)]);
    expect(r.blocked).toEqual([]);
    expect(r.allowedObserved).toBe(1);
  });

  it('counts an observed tuple once', () => {
    const engine = engineWith({ a: [65616], b: [80], c: [] }, 'none');
    const r = verifyProposal(engine, [conn('b', 80)]);
    expect(r.observedTuples).toBe(1);
    expect(r.excessCount).toBe(r.allowedTuples - 1);
  });
});

describe('verifyProposal input', () => {
  it('refuses a protocol that is a property of every object, not TCP, UDP or SCTP', () => {
    for (const protocol of ['toString', 'constructor', '__proto__'])
      expect(() => verifyProposal(after, [{ ...observed[0]!, protocol: protocol as 'TCP' }])).toThrow(
        `observed connection 1: protocol ${JSON.stringify(protocol)} is not one of TCP, UDP, SCTP`,
      );
  });
});

describe('blast radius order', () => {
  // Internally classes are ordered by namespace and labels; zeta's labels sort before alpha's, and the
  // StatefulSet alpha's pods carry labels sorting between the two Deployments'.
  let ips = 0;
  const pod = (name: string, labels: Record<string, string>, owner: { kind: string; name: string }) => ({
    apiVersion: 'v1',
    kind: 'Pod' as const,
    metadata: {
      name,
      namespace: name === 'target-1-x' ? 'b' : 'a',
      labels,
      ownerReferences: [{ apiVersion: 'apps/v1', ...owner, controller: true, uid: owner.name }],
    },
    spec: { containers: [{ name: 'c', ports: [{ containerPort: 8080 }] }] },
    status: { podIP: `10.0.0.${++ips}`, phase: 'Running' },
  });
  const rs = (name: string, hash: string) => ({ kind: 'ReplicaSet', name: `${name}-${hash}` });
  const engine = buildEngine({
    namespaces: ['a', 'b'].map((n) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: n } })),
    pods: [
      pod('zeta-1-x', { app: 'aaa', 'pod-template-hash': '1' }, rs('zeta', '1')),
      pod('alpha-2-x', { app: 'zzz', 'pod-template-hash': '2' }, rs('alpha', '2')),
      ...[1, 0].map((i) =>
        pod(
          `alpha-${i}`,
          { app: 'mmm', 'statefulset.kubernetes.io/pod-name': `alpha-${i}` },
          { kind: 'StatefulSet', name: 'alpha' },
        ),
      ),
      pod('target-1-x', { app: 't', 'pod-template-hash': '1' }, rs('target', '1')),
    ],
  });
  const displayed = [
    'a/Deployment/alpha',
    'a/StatefulSet/alpha (alpha-0)',
    'a/StatefulSet/alpha (alpha-1)',
    'a/Deployment/zeta',
    'b/Deployment/target',
  ];

  it('lists classes by namespace, workload name, kind, then pods; paths shortest first, in that order', () => {
    // The internal order differs from what is shown, or the test would show nothing.
    expect(podClasses(engine).map((c) => c.name)).not.toEqual(displayed);
    const r = blastRadius(engine, undefined, { namespace: 'b', pod: 'target-1-x' });
    expect(r.before.reaches).toEqual(displayed.map((to) => ({ to, ports: ['8080/TCP'] })));
    expect(r.before.reachedFrom).toEqual(displayed.map((from) => ({ from, ports: ['8080/TCP'] })));
    // Counted by workload: the StatefulSet alpha once for its two classes, apart from the Deployment alpha.
    expect([r.before.canReach, r.before.reachableFrom]).toEqual([4, 4]);
    expect(r.before.exposedPaths).toEqual([
      ['b/Deployment/target'],
      ...displayed.slice(0, 4).map((w) => [w, 'b/Deployment/target']),
    ]);
    // Cut at its limit, the search keeps the first paths in that order.
    const cut = blastRadius(engine, undefined, { namespace: 'b', pod: 'target-1-x' }, { maxPaths: 3 });
    expect(cut.before.exposedPaths).toEqual([
      ['b/Deployment/target'],
      ['a/Deployment/alpha', 'b/Deployment/target'],
      ['a/StatefulSet/alpha (alpha-0)', 'b/Deployment/target'],
    ]);
    expect(cut.before.exposedPathsCut).toBe(true);
  });
});

describe('pod classes with host-network pods counted as pods (hostNetworkPods=pod)', () => {
  const pod = (name: string, app: string, ip: string, hostNetwork: boolean) => ({
    apiVersion: 'v1',
    kind: 'Pod' as const,
    metadata: { name, namespace: 'n1', labels: { app } },
    spec: {
      nodeName: 'node1',
      hostNetwork,
      containers: [{ name: 'c', ports: [{ name: 'http', containerPort: 8080 }] }],
    },
    status: { podIPs: [{ ip }], hostIP: '192.168.0.1' },
  });
  // An AdminNetworkPolicy denying all ingress between pods: a host-network pod is never its subject.
  const engine = buildEngine(
    {
      namespaces: [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'n1' } }],
      pods: [
        pod('agent', 'b', '192.168.0.1', true),
        pod('web', 'b', '10.0.0.2', false),
        pod('client', 'c', '10.0.0.3', false),
      ],
      clusterPolicies: [
        {
          apiVersion: 'policy.networking.k8s.io/v1alpha1',
          kind: 'AdminNetworkPolicy',
          metadata: { name: 'deny' },
          spec: {
            priority: 1,
            subject: { namespaces: {} },
            ingress: [{ action: 'Deny', from: [{ namespaces: {} }] }],
          },
        },
      ],
    },
    { hostNetworkPods: 'pod' },
  );
  // An AdminNetworkPolicy denying egress to control-plane nodes: a host-network pod is reached as its node.
  const onNodes = buildEngine(
    {
      namespaces: [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'n1' } }],
      pods: [
        {
          ...pod('agent-1', 'b', '192.168.0.1', true),
          spec: { ...pod('', '', '', true).spec, nodeName: 'node1' },
        },
        {
          ...pod('agent-2', 'b', '192.168.0.2', true),
          spec: { ...pod('', '', '', true).spec, nodeName: 'node2' },
        },
        pod('client', 'c', '10.0.0.3', false),
      ],
      nodes: [
        { apiVersion: 'v1', kind: 'Node', metadata: { name: 'node1', labels: { role: 'worker' } } },
        { apiVersion: 'v1', kind: 'Node', metadata: { name: 'node2', labels: { role: 'cp' } } },
      ],
      clusterPolicies: [
        {
          apiVersion: 'policy.networking.k8s.io/v1alpha1',
          kind: 'AdminNetworkPolicy',
          metadata: { name: 'deny-cp' },
          spec: {
            priority: 1,
            subject: { namespaces: {} },
            egress: [{ action: 'Deny', to: [{ nodes: { matchLabels: { role: 'cp' } } }] }],
          },
        },
      ],
    },
    { hostNetworkPods: 'pod' },
  );
  it.each([
    ['an AdminNetworkPolicy subject', engine],
    ['a node peer', onNodes],
  ])('gives every member of a class the verdict of its pods (%s)', (_, engine) => {
    const classes = podClasses(engine);
    const m = new ReachMatrix(engine, classes);
    for (const b of classes) {
      const s = m.sources(b, { port: 8080, protocol: 'TCP' });
      for (const a of classes) {
        const byClass = (s.allFree && m.egressFree[a.index] === 1) || s.listed.includes(a.index);
        for (const from of a.members)
          for (const to of b.members) {
            if (from === to) continue;
            const [fns, fpod] = from.split('/') as [string, string];
            const [tns, tpod] = to.split('/') as [string, string];
            const v = engine.evaluate({
              from: { namespace: fns, pod: fpod },
              to: { namespace: tns, pod: tpod },
              port: 8080,
            });
            expect({ from, to, allowed: byClass }).toEqual({ from, to, allowed: v.allowed });
          }
      }
    }
  });
});
