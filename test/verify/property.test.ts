/**
 * Properties of NetworkPolicy semantics, checked on random small clusters and policy sets:
 * allows only add up, a policy selecting no pod changes nothing, and policy order does not matter.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { LabelSelector, Namespace, NetworkPolicy } from '../../src/model/k8s.ts';
import type { Engine } from '../../src/verify/engine.ts';
import { buildEngine } from '../../src/verify/engine.ts';
import type { Endpoint, L4Protocol } from '../../src/verify/types.ts';
import type { PodRow } from './small-cluster.ts';
import { podsFrom } from './small-cluster.ts';

const NS = ['n1', 'n2'];
const namespaces: Namespace[] = NS.map((n, i) => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name: n, labels: { env: i === 0 ? 'prod' : 'dev' } },
}));
const PODS: PodRow[] = [
  { ns: 'n1', name: 'p1', labels: { app: 'a', tier: 'x' }, ip: '10.0.0.1' },
  { ns: 'n1', name: 'p2', labels: { app: 'b' }, ip: '10.0.0.2' },
  { ns: 'n2', name: 'p3', labels: { app: 'a', tier: 'y' }, ip: '10.0.1.3' },
  { ns: 'n2', name: 'p4', labels: { app: 'c', tier: 'x' }, ip: '10.0.1.4' },
];
const pods = podsFrom(PODS);

const selector: fc.Arbitrary<LabelSelector> = fc.oneof(
  fc.constant({}),
  fc.record({
    matchLabels: fc.dictionary(fc.constantFrom('app', 'tier'), fc.constantFrom('a', 'b', 'c', 'x', 'y'), {
      maxKeys: 1,
    }),
  }),
  fc.record({
    matchExpressions: fc
      .tuple(fc.constantFrom('app', 'tier', 'env'), fc.constantFrom('In', 'NotIn', 'Exists', 'DoesNotExist'))
      .map(([key, operator]) => [
        operator === 'In' || operator === 'NotIn'
          ? { key, operator, values: ['a', 'x', 'prod'] }
          : { key, operator },
      ]),
  }) as fc.Arbitrary<LabelSelector>,
);
const peer = fc.oneof(
  fc.record({ podSelector: selector }),
  fc.record({ namespaceSelector: selector }),
  fc.record({ podSelector: selector, namespaceSelector: selector }),
  fc.record({
    ipBlock: fc.constantFrom(
      { cidr: '10.0.0.0/16' },
      { cidr: '10.0.0.0/16', except: ['10.0.1.0/24'] },
      { cidr: '0.0.0.0/0' },
    ),
  }),
);
const port = fc.oneof(
  fc.record({ port: fc.constantFrom(80, 81) }),
  fc.record({ port: fc.constantFrom('http', 'dns'), protocol: fc.constantFrom('TCP', 'UDP') }),
  fc.record({ protocol: fc.constantFrom('TCP', 'UDP') }),
  fc.record({ port: fc.constant(79), endPort: fc.constant(81) }),
);
const rule = (dir: 'from' | 'to') =>
  fc.record(
    {
      [dir]: fc.option(fc.array(peer, { maxLength: 2 }), { nil: undefined }),
      ports: fc.option(fc.array(port, { maxLength: 2 }), { nil: undefined }),
    },
    { requiredKeys: [] },
  );
const spec = fc.record({
  podSelector: selector,
  policyTypes: fc.option(fc.subarray(['Ingress', 'Egress'] as const, { minLength: 1 }), { nil: undefined }),
  ingress: fc.option(fc.array(rule('from'), { maxLength: 2 }), { nil: undefined }),
  egress: fc.option(fc.array(rule('to'), { maxLength: 2 }), { nil: undefined }),
});
const policies = fc.array(fc.tuple(fc.constantFrom(...NS), spec), { maxLength: 4 }).map((xs) =>
  xs.map(([ns, s], i): NetworkPolicy => ({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: `p${i}`, namespace: ns },
    spec: JSON.parse(JSON.stringify(s)) as NetworkPolicy['spec'],
  })),
);

const ENDS: Endpoint[] = [
  ...PODS.map((p) => ({ namespace: p.ns, pod: p.name })),
  { ip: '10.0.0.9' },
  { ip: '8.8.8.8' },
];

function matrix(engine: Engine): boolean[] {
  const out: boolean[] = [];
  for (const from of ENDS)
    for (const to of ENDS)
      for (const [p, protocol] of [
        [80, 'TCP'],
        [81, 'UDP'],
        [81, 'TCP'],
      ] as [number, L4Protocol][])
        out.push(engine.evaluate({ from, to, port: p, protocol }).allowed);
  return out;
}

const build = (ps: NetworkPolicy[]) => buildEngine({ namespaces, pods, networkPolicies: ps });

describe('NetworkPolicy properties', () => {
  it('adding an allow policy for already-isolated pods never removes reachability', () => {
    fc.assert(
      fc.property(policies, spec, (ps, extra) => {
        fc.pre(ps.length > 0);
        const base = ps[0]!;
        // Same namespace, podSelector and policyTypes as an existing policy: it selects only pods that are
        // already isolated in the directions it governs, so it can only add allows.
        const types =
          base.spec.policyTypes && base.spec.policyTypes.length > 0
            ? base.spec.policyTypes
            : ['Ingress', ...((base.spec.egress ?? []).length > 0 ? ['Egress'] : [])];
        const added = {
          ...base,
          metadata: { name: 'added', namespace: base.metadata.namespace },
          spec: { ...extra, podSelector: base.spec.podSelector, policyTypes: types },
        } as NetworkPolicy;
        const before = matrix(build(ps));
        const after = matrix(build([...ps, added]));
        before.forEach((v, i) => {
          if (v) expect(after[i]).toBe(true);
        });
      }),
      { numRuns: 80 },
    );
  });

  it('a policy selecting no pod changes nothing', () => {
    fc.assert(
      fc.property(policies, spec, fc.constantFrom(...NS), (ps, extra, ns) => {
        const none = {
          apiVersion: 'networking.k8s.io/v1',
          kind: 'NetworkPolicy',
          metadata: { name: 'selects-nothing', namespace: ns },
          spec: { ...extra, podSelector: { matchLabels: { app: 'no-such-app' } } },
        } as NetworkPolicy;
        expect(matrix(build([...ps, none]))).toEqual(matrix(build(ps)));
      }),
      { numRuns: 80 },
    );
  });

  it('evaluation is independent of policy order', () => {
    fc.assert(
      fc.property(policies, fc.integer({ min: 0, max: 1000 }), (ps, seed) => {
        const shuffled = [...ps].sort(
          (a, b) =>
            ((a.metadata.name.charCodeAt(1) * 31 + seed) % 7) -
            ((b.metadata.name.charCodeAt(1) * 31 + seed) % 7),
        );
        const a = build(ps);
        const b = build(shuffled.reverse());
        for (const from of ENDS)
          for (const to of ENDS) {
            const q = { from, to, port: 80, protocol: 'TCP' as const };
            expect(JSON.stringify(b.evaluate(q))).toBe(JSON.stringify(a.evaluate(q)));
          }
      }),
      { numRuns: 60 },
    );
  });
});
