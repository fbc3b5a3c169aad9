import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Workload, WorkloadKind } from '../../src/identity/types.ts';
import { WORKLOAD_KINDS } from '../../src/identity/types.ts';
import { DEFAULT_DENY_NAME, policyNames } from '../../src/policy/index.ts';

const KINDS: readonly WorkloadKind[] = WORKLOAD_KINDS;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

// Names that collide with each other once qualified by kind or cut to 253 characters, beside
// ordinary ones: `deployment-foo` is what Deployment `foo` becomes when a StatefulSet is named `foo` too.
const long = 'l'.repeat(240);
const name = fc.oneof(
  fc.constantFrom(
    'foo',
    'deployment-foo',
    'statefulset-foo',
    'pod-foo',
    'default-deny',
    'pod-default-deny',
    'deployment-default-deny',
    'foo.bar',
    'deployment-foo.bar',
    `${long}-x`,
    `${long}-y`,
    `${long}-xyz.abcd`,
    `${long}.abc-de.fgh`,
    `deployment-${long}`,
    `pod-${long}`,
  ),
  fc.stringMatching(/^[a-z0-9]([-a-z0-9.]{0,6}[a-z0-9])?$/).filter((s) => !/\.\.|-\.|\.-/.test(s)),
);

const members = fc
  .uniqueArray(fc.record({ kind: fc.constantFrom(...KINDS), name }), {
    selector: (w) => `${w.kind}/${w.name}`,
    maxLength: 12,
  })
  .map((list) =>
    list.map(({ kind, name }): Workload => ({
      id: `ns/${kind}/${name}`,
      namespace: 'ns',
      kind,
      name,
      selector: { matchLabels: { app: name } },
      labels: { app: name },
      namedPorts: [],
      pods: [],
      hostNetwork: false,
      roles: [],
    })),
  );

/** The name each workload asked for before names were made unique. */
function wanted(w: Workload, all: Workload[]): string {
  const shared = all.filter((x) => x.name === w.name).length > 1 || w.name === 'default-deny';
  return (shared ? `microseg-${w.kind.toLowerCase()}-${w.name}` : `microseg-${w.name}`).slice(0, 253);
}

describe('policy names', () => {
  it('are unique, valid object names, independent of input order, and keep every unique wish', () => {
    fc.assert(
      fc.property(members, fc.integer(), (list, shift) => {
        const names = policyNames(list);
        expect(names.get('')).toBe(DEFAULT_DENY_NAME);
        const values = [...names.values()];
        expect(values).toHaveLength(list.length + 1);
        expect(new Set(values).size).toBe(values.length);
        for (const v of values) {
          expect(v.length).toBeLessThanOrEqual(253);
          expect(v).toMatch(DNS_SUBDOMAIN);
        }
        // A wish no other workload (or the default deny) shares, and Kubernetes accepts, is granted.
        const wishes = list.map((w) => wanted(w, list));
        for (const [i, w] of list.entries()) {
          const wish = wishes[i]!;
          const alone = wishes.filter((x) => x === wish).length === 1 && wish !== DEFAULT_DENY_NAME;
          if (alone && DNS_SUBDOMAIN.test(wish)) expect(names.get(w.id)).toBe(wish);
        }
        const k = list.length === 0 ? 0 : Math.abs(shift) % list.length;
        const rotated = [...list.slice(k), ...list.slice(0, k)].reverse();
        expect(policyNames(rotated)).toEqual(names);
      }),
      { numRuns: 500 },
    );
  });

  it('gives a shared name to the workload whose own name it is, and hashes the others', () => {
    const w = (kind: WorkloadKind, name: string) =>
      ({ id: `app/${kind}/${name}`, kind, name }) as unknown as Workload;
    const names = policyNames([w('Deployment', 'foo'), w('StatefulSet', 'foo'), w('Pod', 'deployment-foo')]);
    expect(names.get('app/Pod/deployment-foo')).toBe('microseg-deployment-foo');
    expect(names.get('app/StatefulSet/foo')).toBe('microseg-statefulset-foo');
    expect(names.get('app/Deployment/foo')).toMatch(/^microseg-deployment-foo-[0-9a-f]{8}$/);
    // Names cut to 253 characters: a cut that ends in '-' is refused by Kubernetes, so both get hashes.
    const dash = [`${'x'.repeat(243)}-a`, `${'x'.repeat(243)}-b`];
    const cut = policyNames(dash.map((n) => w('Deployment', n)));
    const hashed = dash.map((n) => cut.get(`app/Deployment/${n}`)!);
    for (const h of hashed) expect(h).toMatch(new RegExp(`^microseg-x{235}-[0-9a-f]{8}$`));
    expect(hashed[0]).not.toBe(hashed[1]);
    // A valid cut both want goes to the smaller id.
    const plain = [`${'x'.repeat(244)}b`, `${'x'.repeat(244)}a`];
    const kept = policyNames(plain.map((n) => w('Deployment', n)));
    expect(kept.get(`app/Deployment/${plain[1]}`)).toBe(`microseg-${'x'.repeat(244)}`);
    expect(kept.get(`app/Deployment/${plain[0]}`)).toMatch(new RegExp(`^microseg-x{235}-[0-9a-f]{8}$`));
  });
});
