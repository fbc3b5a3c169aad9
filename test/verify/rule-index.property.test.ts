/**
 * Long rule lists (a hub's policy) are looked up through an index by the labels their pod peers
 * require; the verdict must be what checking every rule in order gives (`evaluate`, which explains
 * its verdict, still walks the rules one by one).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { LabelSelector, Namespace, NetworkPolicy } from '../../src/model/k8s.ts';
import { buildEngine } from '../../src/verify/engine.ts';
import type { Endpoint, L4Protocol } from '../../src/verify/types.ts';
import type { PodRow } from './small-cluster.ts';
import { podsFrom } from './small-cluster.ts';

const NS = ['n1', 'n2'];
const namespaces: Namespace[] = NS.map((n, i) => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name: n, labels: { 'kubernetes.io/metadata.name': n, env: i === 0 ? 'prod' : 'dev' } },
}));
const PODS: PodRow[] = [
  { ns: 'n1', name: 'p1', labels: { app: 'a', tier: 'x' }, ip: '10.0.0.1' },
  { ns: 'n1', name: 'p2', labels: { app: 'b' }, ip: '10.0.0.2' },
  { ns: 'n2', name: 'p3', labels: { app: 'a', tier: 'y' }, ip: '10.0.1.3' },
  { ns: 'n2', name: 'p4', labels: { app: 'c', tier: 'x', role: 'db' }, ip: '10.0.1.4' },
  { ns: 'n2', name: 'p5', labels: {}, ip: '10.0.1.5' },
];
const pods = podsFrom(PODS);

// Values no pod has make most rules name nobody, as in a real hub's list, so denials are common.
const labelValue = fc.constantFrom(
  'a',
  'b',
  'c',
  'x',
  'y',
  'db',
  'q1',
  'q2',
  'q3',
  'q4',
  'q5',
  'q6',
  'q7',
  'q8',
);
const selector: fc.Arbitrary<LabelSelector> = fc.oneof(
  { weight: 1, arbitrary: fc.constant({}) },
  {
    weight: 12,
    arbitrary: fc.record({
      matchLabels: fc.dictionary(fc.constantFrom('app', 'tier', 'role'), labelValue, {
        minKeys: 1,
        maxKeys: 2,
      }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      matchLabels: fc.dictionary(fc.constantFrom('app', 'tier'), labelValue, { minKeys: 1, maxKeys: 1 }),
      matchExpressions: fc.constant<NonNullable<LabelSelector['matchExpressions']>>([
        { key: 'tier', operator: 'Exists' },
      ]),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.constant<LabelSelector>({
      matchExpressions: [{ key: 'app', operator: 'In', values: ['a', 'c'] }],
    }),
  },
);
const nsSelector: fc.Arbitrary<LabelSelector> = fc.oneof(
  { weight: 1, arbitrary: fc.constant({}) },
  {
    weight: 4,
    arbitrary: fc.constantFrom(...NS).map((n) => ({ matchLabels: { 'kubernetes.io/metadata.name': n } })),
  },
  { weight: 1, arbitrary: fc.constant({ matchLabels: { env: 'prod' } }) },
);
const peer = fc.oneof(
  { weight: 20, arbitrary: fc.record({ podSelector: selector, namespaceSelector: nsSelector }) },
  { weight: 10, arbitrary: fc.record({ podSelector: selector }) },
  { weight: 1, arbitrary: fc.record({ namespaceSelector: fc.constant({ matchLabels: { env: 'prod' } }) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      ipBlock: fc.constantFrom({ cidr: '10.0.0.0/24', except: ['10.0.0.2/32'] }, { cidr: '8.8.8.0/24' }),
    }),
  },
);
const port = fc.oneof(
  fc.record({ port: fc.constantFrom(80, 81, 8080, 9090, 5432), protocol: fc.constantFrom('TCP', 'UDP') }),
  fc.record({ port: fc.constantFrom('http', 'dns'), protocol: fc.constantFrom('TCP', 'UDP') }),
  fc.record({ port: fc.constant(79), endPort: fc.constant(81) }),
);
// Mostly one peer and one port, like a proposal's rules; sometimes several, none, or any.
const rule = (dir: 'from' | 'to') =>
  fc.record({
    [dir]: fc.option(fc.array(peer, { minLength: 1, maxLength: 2 }), { nil: undefined, freq: 30 }),
    ports: fc.option(fc.array(port, { minLength: 1, maxLength: 2 }), { nil: undefined, freq: 30 }),
  });
const policy = fc.record({
  ns: fc.constantFrom(...NS),
  // Mostly every pod of the namespace, so that most queries depend on the rules.
  podSelector: fc.oneof({ weight: 4, arbitrary: fc.constant({}) }, { weight: 1, arbitrary: selector }),
  // Long lists: at least the length from which the engine indexes them (16).
  ingress: fc.array(rule('from'), { minLength: 16, maxLength: 40 }),
  egress: fc.array(rule('to'), { minLength: 16, maxLength: 40 }),
});

const ENDS: Endpoint[] = [
  ...PODS.map((p) => ({ namespace: p.ns, pod: p.name })),
  { ip: '10.0.0.9' },
  { ip: '8.8.8.8' },
];
const QUERIES: [number, L4Protocol][] = [
  [80, 'TCP'],
  [81, 'UDP'],
  [81, 'TCP'],
  [79, 'TCP'],
];

describe('long rule lists', () => {
  it('give the verdict of checking every rule in order', () => {
    let allowed = 0;
    let denied = 0;
    fc.assert(
      fc.property(fc.array(policy, { minLength: 1, maxLength: 3 }), (extra) => {
        // One policy over each namespace, and up to three more.
        const specs = [
          ...NS.map((ns, i) => ({ ...extra[0]!, ns, ...(i > 0 ? { podSelector: {} } : {}) })),
          ...extra.slice(1),
        ];
        const networkPolicies: NetworkPolicy[] = specs.map((p, i) => ({
          apiVersion: 'networking.k8s.io/v1',
          kind: 'NetworkPolicy',
          metadata: { name: `long-${i}`, namespace: p.ns },
          spec: JSON.parse(
            JSON.stringify({
              podSelector: p.podSelector,
              policyTypes: ['Ingress', 'Egress'],
              ingress: p.ingress,
              egress: p.egress,
            }),
          ) as NetworkPolicy['spec'],
        }));
        const engine = buildEngine({ namespaces, pods, networkPolicies });
        for (const from of ENDS)
          for (const to of ENDS) {
            const src = engine.resolve(from, 'from');
            const dst = engine.resolve(to, 'to');
            for (const [p, protocol] of QUERIES) {
              const expected = engine.evaluate({ from, to, port: p, protocol }).allowed;
              expect(engine.allows(src, dst, p, protocol)).toBe(expected);
              if (expected) allowed++;
              else denied++;
            }
          }
      }),
      { numRuns: 150 },
    );
    // Not vacuous: both verdicts occur often.
    expect(allowed).toBeGreaterThan(1000);
    expect(denied).toBeGreaterThan(1000);
  });
});
