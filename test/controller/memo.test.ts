import { describe, expect, it } from 'vitest';
import type { ProposedNetworkPolicy, Segmentation, SegmentationSpec } from '../../src/controller/api.ts';
import { parseSegmentationSpec } from '../../src/controller/api.ts';
import { analysisKey, Memo, ReconcileMemo } from '../../src/controller/memo.ts';
import { enforcedPolicy, planObjects, proposalHash, proposedPolicies } from '../../src/controller/plan.ts';
import type { NetworkPolicy, NetworkPolicySpec } from '../../src/model/k8s.ts';
import type { Proposal } from '../../src/policy/types.ts';

describe('Memo', () => {
  it('computes once for the same inputs, and again for any input that is not the same', () => {
    const memo = new Memo<string>();
    const a = { n: 1 };
    const b = { n: 2 };
    let calls = 0;
    const f = (inputs: Parameters<Memo<string>['get']>[0]) => memo.get(inputs, () => `result ${++calls}`);
    expect(f(['x', [a, b]])).toBe('result 1');
    // A list rebuilt from the same objects is the same input.
    expect(f(['x', [a, b]])).toBe('result 1');
    expect(calls).toBe(1);
    // An object replaced (an edit: the informer brings a new object), even with equal content.
    expect(f(['x', [a, { n: 2 }]])).toBe('result 2');
    expect(f(['x', [b, a]])).toBe('result 3'); // reordered
    expect(f(['x', [b, a, a]])).toBe('result 4'); // longer
    expect(f(['y', [b, a, a]])).toBe('result 5'); // another plain value
    expect(f(['y', [b, a, a], 0])).toBe('result 6'); // another input
    expect(f(['y', [b, a, a], 0])).toBe('result 6');
    expect({ computed: memo.computed, reused: memo.reused }).toEqual({ computed: 6, reused: 2 });
    memo.clear();
    expect(f(['y', [b, a, a], 0])).toBe('result 7');
  });

  it('is not fooled by a caller refilling the list it passed', () => {
    const memo = new Memo<number>();
    const a = { n: 1 };
    const list: object[] = [a];
    expect(memo.get([list], () => list.length)).toBe(1);
    list.push({ n: 2 });
    expect(memo.get([list], () => list.length)).toBe(2);
  });
});

// ---------- the reconcile's steps: memoised, the same as computed afresh ----------

const seg: Segmentation = {
  apiVersion: 'microseg.dev/v1alpha1',
  kind: 'Segmentation',
  metadata: { name: 'shop', uid: 'u-1' },
  spec: { namespaceSelector: {} },
};

const spec = (app: string, port: number): NetworkPolicySpec => ({
  podSelector: { matchLabels: { app } },
  policyTypes: ['Ingress'],
  ingress: [{ from: [{ podSelector: { matchLabels: { app: 'web' } } }], ports: [{ protocol: 'TCP', port }] }],
});

/** A proposal as `analyse` makes one: a new object for each analysis. */
const proposal = (ports: Record<string, number>): Proposal =>
  ({
    policies: Object.entries(ports).map(([app, port]) => ({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: `microseg-${app}`, namespace: 'shop' },
      spec: spec(app, port),
    })),
    evidence: Object.entries(ports).map(([app, port]) => ({
      policy: `shop/microseg-${app}`,
      direction: 'ingress',
      peer: 'shop/Deployment/web',
      protocol: 'TCP',
      port,
      count: 3,
      firstSeen: '2026-01-01T00:00:00Z',
      lastSeen: '2026-01-01T00:01:00Z',
    })),
  }) as unknown as Proposal;

/** What the API server holds after applying `o` (a new object, as an informer brings it). */
const stored = <T extends { metadata: object }>(o: T, rv: string): T =>
  structuredClone({ ...o, metadata: { ...o.metadata, resourceVersion: rv } });

/** One reconcile's steps, memoised (`memo`) and computed afresh; both must agree. */
function step(
  memo: ReconcileMemo,
  p: Proposal,
  pnps: readonly ProposedNetworkPolicy[],
  nps: readonly NetworkPolicy[],
  quarantined: ReadonlySet<string>,
) {
  const uid = seg.metadata.uid;
  const memoised = {
    proposed: memo.proposed(seg, p),
    proposalPlan: memo.proposalPlan('shop', memo.proposed(seg, p), pnps, uid),
    hash: memo.hash(pnps),
    enforced: memo.enforced(seg, pnps),
    enforcePlan: memo.enforcePlan('shop', memo.enforced(seg, pnps), nps, uid, quarantined),
  };
  const fresh = {
    proposed: proposedPolicies(seg, p),
    proposalPlan: planObjects('shop', proposedPolicies(seg, p), pnps, uid),
    hash: proposalHash(pnps),
    enforced: pnps.map((x) => enforcedPolicy(seg, x)),
    enforcePlan: planObjects(
      'shop',
      pnps.map((x) => enforcedPolicy(seg, x)),
      nps,
      uid,
      quarantined,
    ),
  };
  expect(memoised).toEqual(fresh);
  return memoised;
}

describe('ReconcileMemo', () => {
  it('gives what the plain functions give, reusing its results while nothing changed', () => {
    const memo = new ReconcileMemo();
    const none = new Set<string>();
    // First reconcile: nothing exists yet.
    let p = proposal({ db: 5432, cart: 8080 });
    let r = step(memo, p, [], [], none);
    expect(r.proposalPlan.map((a) => a.kind)).toEqual(['apply', 'apply']);
    // The proposal written and enforced, as the informers then hold it.
    const pnps = r.proposed.map((o, i) => stored(o, `${i + 1}`));
    r = step(memo, p, pnps, [], none);
    const nps = r.enforced.map((o, i) => stored(o, `${i + 10}`));
    r = step(memo, p, pnps, nps, none);
    expect([r.proposalPlan, r.enforcePlan]).toEqual([[], []]);

    // Steady state: the same objects again (lists rebuilt from the informers), nothing is computed.
    const before = memo.counts();
    const again = step(memo, p, [...pnps], [...nps], none);
    expect(memo.counts().computed).toBe(before.computed);
    expect(memo.counts().reused).toBe(before.reused + 7);
    expect(again.enforcePlan).toBe(r.enforcePlan);

    // A NetworkPolicy edited by hand: its new object is seen, the drift planned.
    const edited = stored({ ...nps[0]!, spec: spec('db', 1) }, '20');
    r = step(memo, p, pnps, [edited, nps[1]!], none);
    expect(r.enforcePlan).toEqual([
      {
        kind: 'apply',
        object: r.enforced.find((o) => o.metadata.name === 'microseg-db'),
        why: 'drift',
        from: '20',
      },
    ]);

    // A ProposedNetworkPolicy edited by hand (in Learn, the proposal is rewritten): seen too.
    const editedPnp = stored({ ...pnps[1]!, spec: spec('cart', 1) }, '21');
    r = step(memo, p, [pnps[0]!, editedPnp], nps, none);
    expect(r.proposalPlan.map((a) => [a.kind, a.kind === 'apply' ? a.why : ''])).toEqual([
      ['apply', 'drift'],
    ]);

    // A new flow: a new analysis, a new proposal object with another policy; planned as a creation.
    p = proposal({ db: 5432, cart: 8080, web: 80 });
    r = step(memo, p, pnps, nps, none);
    expect(r.proposalPlan).toEqual([
      { kind: 'apply', object: r.proposed.find((o) => o.metadata.name === 'microseg-web'), why: 'create' },
    ]);

    // A pod relabelled into quarantine: the set of quarantined namespaces is another set.
    r = step(memo, p, pnps, nps, new Set(['shop']));
    expect(r.enforcePlan.map((a) => (a.kind === 'apply' ? a.object.spec.podSelector : undefined))).toEqual([
      {
        matchLabels: { app: 'cart' },
        matchExpressions: [{ key: 'microseg.dev/quarantine', operator: 'DoesNotExist' }],
      },
      {
        matchLabels: { app: 'db' },
        matchExpressions: [{ key: 'microseg.dev/quarantine', operator: 'DoesNotExist' }],
      },
    ]);
  });

  it('does not take another Segmentation (another uid) for the same', () => {
    const memo = new ReconcileMemo();
    const p = proposal({ db: 5432 });
    const first = memo.proposed(seg, p);
    const successor = { ...seg, metadata: { ...seg.metadata, uid: 'u-2' } };
    const second = memo.proposed(successor, p);
    expect(second).toEqual(proposedPolicies(successor, p));
    expect(second[0]!.metadata.ownerReferences?.[0]?.uid).toBe('u-2');
    expect(first[0]!.metadata.ownerReferences?.[0]?.uid).toBe('u-1');
  });
});

describe('analysisKey', () => {
  const spec = parseSegmentationSpec('shop', { namespaceSelector: {}, mode: 'Learn' });
  if (!spec.ok) throw new Error(spec.problems.join('; '));
  const base = spec.spec;
  const key = (s: SegmentationSpec, version = 7, namespaces = ['a', 'b']) =>
    analysisKey(version, s, namespaces);

  it('is the same when only what the analysis does not read changed: the mode, the audit, enforcement', () => {
    expect(key({ ...base, mode: 'Enforce' })).toBe(key(base));
    expect(key({ ...base, mode: 'Audit', audit: { windowMs: 1, samples: 1 } })).toBe(key(base));
    expect(key({ ...base, enforce: { force: true }, promotion: { automatic: true, afterMs: 1 } })).toBe(
      key(base),
    );
  });

  it('changes with the learned edges, the namespaces, minFlows and every policy option', () => {
    const keys = [
      key(base),
      key(base, 8),
      key(base, 7, ['a']),
      key(base, 7, ['a,b']),
      key({ ...base, learning: { ...base.learning, minFlows: 2 } }),
      key({ ...base, policy: { ...base.policy, defaultDeny: !base.policy.defaultDeny } }),
      key({ ...base, policy: { ...base.policy, includeDropped: !base.policy.includeDropped } }),
      key({
        ...base,
        policy: { ...base.policy, worldIngress: base.policy.worldIngress === 'any' ? 'observed' : 'any' },
      }),
    ];
    expect(new Set(keys).size).toBe(keys.length);
  });
});
