/**
 * Benchmark of the policy-set audit's naming of workloads only a default deny selects
 * (`deniedUnobserved`, which `POST /api/v1/audit` and `microseg audit` run over every workload): its
 * time for a set of n policies in one namespace and for n idle workloads with a policy each, at n and
 * 2n, side by side. A ratio near 2 is linear growth; 4 would be quadratic.
 */
import { buildIdentity } from '../src/identity/index.ts';
import type { NetworkPolicy } from '../src/model/k8s.ts';
import { emptySnapshot } from '../src/model/snapshot.ts';
import { deniedUnobserved } from '../src/policy/audit.ts';

import type { Figure } from './pipeline.ts';

const np = (name: string, podSelector: Record<string, unknown>, ingress: object[] = [{}]): NetworkPolicy => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { name, namespace: 'big' },
  spec: { podSelector, policyTypes: ['Ingress'], ingress },
});

/** n idle workloads, each selected by a policy of its own, and the namespace's default deny. */
function idleWorkloads(n: number) {
  const snapshot = emptySnapshot();
  for (let i = 0; i < n; i++)
    snapshot.pods.push({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: `w-${i}`, namespace: 'big', labels: { tier: 'idle', app: `w-${i}` } },
      spec: { containers: [{ name: 'c', image: 'w:1' }] },
    });
  const policies = [
    ...Array.from({ length: n }, (_, i) => np(`w-${i}`, { matchLabels: { tier: 'idle', app: `w-${i}` } })),
    np('deny', {}, []),
  ];
  return { identity: buildIdentity(snapshot), policies };
}

/** 100 idle workloads, n policies of their namespace selecting none of them, and a default deny. */
function manyPolicies(n: number) {
  const { identity } = idleWorkloads(100);
  const policies = [
    ...Array.from({ length: n }, (_, i) => np(`p-${i}`, { matchLabels: { app: `none-${i}` } })),
    np('deny', {}, []),
  ];
  return { identity, policies };
}

/** Best of `rounds` runs of deniedUnobserved over `input`, in ms. */
function best(input: ReturnType<typeof idleWorkloads>, rounds = 5): number {
  let min = Infinity;
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    deniedUnobserved(input.identity, { nodes: [], edges: [] }, input.policies);
    min = Math.min(min, performance.now() - t0);
  }
  return min;
}

export function benchAudit(n = 20_000): Figure[] {
  const figures: Figure[] = [];
  for (const [what, make] of [
    ['idle workloads with a policy each', idleWorkloads],
    ['policies of one namespace', manyPolicies],
  ] as const) {
    const one = best(make(n));
    const two = best(make(2 * n));
    figures.push(
      { name: `${n.toLocaleString('en')} ${what}`, value: Number(one.toFixed(1)), unit: 'ms' },
      { name: `${(2 * n).toLocaleString('en')} ${what}`, value: Number(two.toFixed(1)), unit: 'ms' },
      { name: `ratio (2 = linear, 4 = quadratic)`, value: Number((two / one).toFixed(2)), unit: 'x' },
    );
  }
  return figures;
}
