import { describe, expect, it } from 'vitest';
import type { Segmentation } from '../../src/controller/api.ts';
import type { Action } from '../../src/controller/plan.ts';
import { isDefaultDeny } from '../../src/policy/render.ts';
import {
  appliedSpec,
  canonicalSpec,
  driftedFields,
  enforcedPolicy,
  enforcementPhases,
  frozenProposed,
  isOurs,
  isOwnedBy,
  planObjects,
  proposalHash,
  proposedPolicies,
} from '../../src/controller/plan.ts';
import type { ProposedNetworkPolicy } from '../../src/controller/api.ts';
import { plural } from '../../src/controller/segmentation.ts';
import type { NetworkPolicy, NetworkPolicySpec } from '../../src/model/k8s.ts';

const seg: Segmentation = {
  apiVersion: 'microseg.dev/v1alpha1',
  kind: 'Segmentation',
  metadata: { name: 'shop', uid: 'u-1' },
  spec: { namespaceSelector: {} },
};

const spec = (port: number): NetworkPolicySpec => ({
  podSelector: { matchLabels: { app: 'db' } },
  policyTypes: ['Ingress', 'Egress'],
  ingress: [
    { from: [{ podSelector: { matchLabels: { app: 'cart' } } }], ports: [{ protocol: 'TCP', port }] },
  ],
  egress: [],
});
const np = (name: string, s: NetworkPolicySpec, labels?: Record<string, string>): NetworkPolicy => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { name, namespace: 'shop', ...(labels ? { labels } : {}) },
  spec: s,
});
const ours = { 'app.kubernetes.io/managed-by': 'microseg', 'microseg.dev/segmentation': 'shop' };

describe('canonicalSpec', () => {
  it('treats what the API server returns as equal to what was sent', () => {
    const sent = spec(5432);
    const returned = {
      policyTypes: ['Egress', 'Ingress'],
      podSelector: { matchLabels: { app: 'db' } },
      ingress: [{ ports: [{ port: 5432 }], from: [{ podSelector: { matchLabels: { app: 'cart' } } }] }],
    } as NetworkPolicySpec;
    expect(canonicalSpec(returned)).toBe(canonicalSpec(sent));
  });
  it('tells real differences apart, including an empty peer selector from an absent one', () => {
    expect(canonicalSpec(spec(5432))).not.toBe(canonicalSpec(spec(5433)));
    const a: NetworkPolicySpec = { podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }] };
    const b: NetworkPolicySpec = { podSelector: {}, ingress: [{ from: [{ namespaceSelector: {} }] }] };
    expect(canonicalSpec(a)).not.toBe(canonicalSpec(b));
    expect(canonicalSpec({ podSelector: {}, ports: undefined } as never)).toBe(
      canonicalSpec({ podSelector: {} }),
    );
  });
});

describe('applied specs own every field', () => {
  const deny: NetworkPolicySpec = { podSelector: {}, policyTypes: ['Ingress', 'Egress'] };
  it('spells out the rule lists a proposal leaves out, so server-side apply owns and restores them', () => {
    expect(appliedSpec(deny)).toEqual({
      podSelector: {},
      policyTypes: ['Ingress', 'Egress'],
      ingress: [],
      egress: [],
    });
    expect(enforcedPolicy(seg, np('microseg-default-deny', deny)).spec).toEqual(appliedSpec(deny));
    expect(appliedSpec(spec(5432))).toEqual(spec(5432));
    const [pnp] = proposedPolicies(seg, {
      policies: [np('microseg-default-deny', deny)],
      evidence: [],
    } as never);
    expect(pnp!.spec).toEqual(appliedSpec(deny));
    // Nothing the proposal means changes: the same canonical spec, the same hash.
    expect(canonicalSpec(appliedSpec(deny))).toBe(canonicalSpec(deny));
  });
  it('names the fields that differ, as planObjects compares them', () => {
    const want = enforcedPolicy(seg, np('microseg-default-deny', deny));
    const opened = np('microseg-default-deny', { ...deny, ingress: [{}], egress: [{}] }, ours);
    expect(driftedFields(want, opened)).toEqual(['spec.egress', 'spec.ingress']);
    const relabelled = np(
      'microseg-default-deny',
      { ...deny, ingress: [] },
      {
        'microseg.dev/segmentation': 'shop',
      },
    );
    expect(driftedFields(want, relabelled)).toEqual(['metadata.labels.app.kubernetes.io/managed-by']);
    expect(driftedFields(want, np('microseg-default-deny', deny, { ...ours, extra: 'x' }))).toEqual([]);
  });
  it('pluralises kinds in messages', () => {
    expect(plural('NetworkPolicy')).toBe('NetworkPolicies');
    expect(plural('ProposedNetworkPolicy')).toBe('ProposedNetworkPolicies');
    expect(plural('LearnedEdgeSet')).toBe('LearnedEdgeSets');
  });
});

describe('planObjects', () => {
  it('creates the missing, repairs drift, prunes the stale, and never touches foreign objects', () => {
    const desired = [
      enforcedPolicy(seg, np('a-new', spec(1))),
      enforcedPolicy(seg, np('b-same', spec(2))),
      enforcedPolicy(seg, np('c-edited', spec(3))),
      enforcedPolicy(seg, np('d-foreign-name', spec(4))),
      enforcedPolicy(seg, np('e-lost-label', spec(5))),
    ];
    const observed = [
      np('b-same', { ...spec(2), egress: undefined, policyTypes: ['Egress', 'Ingress'] }, ours),
      np('c-edited', spec(33), ours),
      np('d-foreign-name', spec(4)),
      np('e-lost-label', spec(5), {
        'microseg.dev/segmentation': 'shop',
        'app.kubernetes.io/managed-by': 'someone',
      }),
      np('f-stale', spec(6), ours),
      np('g-other-segmentation', spec(7), { ...ours, 'microseg.dev/segmentation': 'other' }),
      np('h-foreign', spec(8)),
    ];
    const actions = planObjects('shop', desired, observed);
    expect(
      actions.map((a) => [
        a.kind,
        a.kind === 'apply' ? a.object.metadata.name : a.name,
        a.kind === 'apply' ? a.why : a.kind === 'delete' ? a.why : a.kind === 'conflict' ? a.holder : a.kind,
      ]),
    ).toEqual([
      ['apply', 'a-new', 'create'],
      ['apply', 'c-edited', 'drift'],
      ['conflict', 'd-foreign-name', 'an object microseg does not manage'],
      [
        'conflict',
        'e-lost-label',
        'its label app.kubernetes.io/managed-by is "someone", not microseg; its label microseg.dev/segmentation still names this Segmentation',
      ],
      ['delete', 'f-stale', 'prune'],
    ]);
  });

  it('holds back the default deny of a namespace where another policy is a conflict, and only there', () => {
    const denySpec: NetworkPolicySpec = { podSelector: {}, policyTypes: ['Ingress', 'Egress'] };
    const inNs = (p: NetworkPolicy, namespace: string): NetworkPolicy => ({
      ...p,
      metadata: { ...p.metadata, namespace },
    });
    const mine = (name: string, s: NetworkPolicySpec, namespace = 'shop') =>
      inNs(enforcedPolicy(seg, np(name, s)), namespace);
    const desired = [
      mine('microseg-default-deny', denySpec),
      mine('microseg-web', spec(80)),
      mine('microseg-db', spec(5432)),
      mine('microseg-default-deny', denySpec, 'other'),
      mine('microseg-api', spec(8080), 'other'),
    ];
    const foreignDb = np('microseg-db', spec(9187));
    const brief = (actions: Action<NetworkPolicy>[]) =>
      actions.map((a) =>
        a.kind === 'apply'
          ? `apply ${objKeyOf(a.object)}`
          : a.kind === 'held'
            ? `held ${a.namespace}/${a.name} (${a.because.join(', ')})`
            : `${a.kind} ${a.namespace}/${a.name}${a.kind === 'delete' ? ` ${a.why}` : ''}`,
      );
    const objKeyOf = (o: NetworkPolicy) => `${o.metadata.namespace}/${o.metadata.name}`;
    // Not yet in place: the deny of shop is not created; other's is.
    expect(brief(planObjects('shop', desired, [foreignDb], 'u-1', undefined, true))).toEqual([
      'apply other/microseg-api',
      'apply other/microseg-default-deny',
      'conflict shop/microseg-db',
      'held shop/microseg-default-deny (shop/microseg-db)',
      'apply shop/microseg-web',
    ]);
    // Without holdDenies (the proposal's own objects), the deny is planned as before.
    expect(brief(planObjects('shop', desired, [foreignDb], 'u-1'))).toContain(
      'apply shop/microseg-default-deny',
    );
    // In place already (the conflict came later): it is deleted, as the deletion of a default deny,
    // which the first phase writes, before anything else.
    const inPlace = [...desired.filter((d) => d.metadata.name !== 'microseg-db'), foreignDb];
    const actions = planObjects('shop', desired, inPlace, 'u-1', undefined, true);
    expect(brief(actions)).toEqual([
      'conflict shop/microseg-db',
      'held shop/microseg-default-deny (shop/microseg-db)',
      'delete shop/microseg-default-deny held',
    ]);
    expect(actions[2]).toMatchObject({ kind: 'delete', defaultDeny: true });
    expect(enforcementPhases(actions)[0]).toEqual(actions);
    // The name of the deny itself held by another object: that is the conflict; nothing else is held.
    const foreignDeny = np('microseg-default-deny', { ...denySpec, policyTypes: ['Ingress'] });
    const onDeny = planObjects('shop', desired.slice(0, 2), [foreignDeny], 'u-1', undefined, true);
    expect(brief(onDeny)).toEqual(['conflict shop/microseg-default-deny', 'apply shop/microseg-web']);
    expect(onDeny[0]).toMatchObject({ defaultDeny: true });
    // Once the conflicting object is gone, the deny comes back with the policy.
    expect(brief(planObjects('shop', desired, [], 'u-1', undefined, true)).slice(2)).toEqual([
      'apply shop/microseg-db',
      'apply shop/microseg-default-deny',
      'apply shop/microseg-web',
    ]);
  });

  it('takes back its own object whose labels were edited, and says what is wrong when it cannot', () => {
    const mine = enforcedPolicy(seg, np('db', spec(1)));
    const owned = (labels: Record<string, string>, uid = 'u-1'): NetworkPolicy => ({
      ...np('db', spec(1), labels),
      metadata: {
        ...np('db', spec(1), labels).metadata,
        ownerReferences: [{ ...mine.metadata.ownerReferences![0]!, uid }],
      },
    });
    const plan = (o: NetworkPolicy) =>
      planObjects('shop', [mine], [o]).map((a) =>
        a.kind === 'apply' ? `apply ${a.why}` : a.kind === 'conflict' ? a.holder : a.kind,
      );
    // The owner reference (this Segmentation, same uid) proves it is ours: the labels are restored.
    expect(plan(owned({ 'microseg.dev/segmentation': 'shop' }))).toEqual(['apply drift']);
    expect(plan(owned({}))).toEqual(['apply drift']);
    // An owner reference to an earlier Segmentation of the same name (another uid) proves nothing.
    expect(plan(owned({ 'microseg.dev/segmentation': 'shop' }, 'u-0'))).toEqual([
      'its label app.kubernetes.io/managed-by: microseg was removed; its label microseg.dev/segmentation still names this Segmentation',
    ]);
    expect(plan(np('db', spec(1), { 'microseg.dev/segmentation': 'shop' }))).toEqual([
      'its label app.kubernetes.io/managed-by: microseg was removed; its label microseg.dev/segmentation still names this Segmentation',
    ]);
    expect(plan(np('db', spec(1), { ...ours, 'microseg.dev/segmentation': 'other' }))).toEqual([
      'Segmentation other',
    ]);
  });

  it('is idempotent: applying the plan leaves nothing to do', () => {
    const desired = [enforcedPolicy(seg, np('a', spec(1))), enforcedPolicy(seg, np('b', spec(2)))];
    expect(planObjects('shop', desired, desired)).toEqual([]);
  });

  it('labels and owns what Enforce applies', () => {
    const p = enforcedPolicy(seg, np('a', spec(1), { 'microseg.dev/segment': 'shop-db' }));
    expect(p.metadata.labels).toEqual({ 'microseg.dev/segment': 'shop-db', ...ours });
    expect(p.metadata.ownerReferences).toEqual([
      {
        apiVersion: 'microseg.dev/v1alpha1',
        kind: 'Segmentation',
        name: 'shop',
        uid: 'u-1',
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    expect(isOwnedBy(p, 'shop')).toBe(true);
    expect(isOwnedBy(p, 'other')).toBe(false);
  });
});

describe('planObjects: an own object whose labels were edited', () => {
  it('is pruned when no longer proposed, by its owner reference to this Segmentation (its uid)', () => {
    const edited = enforcedPolicy(seg, np('c-edited', spec(3)));
    edited.metadata.labels = { 'microseg.dev/segmentation': 'shop' };
    const uid = edited.metadata.ownerReferences?.[0]?.uid;
    expect(uid).toBeTruthy();
    expect(
      planObjects('shop', [], [edited], uid).map((a) => [a.kind, a.kind === 'delete' && a.name]),
    ).toEqual([['delete', 'c-edited']]);
    // Another Segmentation of that name (another uid) does not own it.
    expect(planObjects('shop', [], [edited], 'another-uid')).toEqual([]);
    // Nor does this one when its labels name another Segmentation in full: that is the other's claim.
    const claimed = enforcedPolicy(seg, np('c-edited', spec(3)));
    claimed.metadata.labels = { ...claimed.metadata.labels, 'microseg.dev/segmentation': 'other' };
    expect(isOurs(claimed, 'shop', uid)).toBe(false);
    expect(planObjects('shop', [], [claimed], uid)).toEqual([]);
  });

  it("a predecessor's object (same name, its owner reference another uid) is not this one's", () => {
    const old = enforcedPolicy(seg, np('c-old', spec(3)));
    const uid = old.metadata.ownerReferences?.[0]?.uid;
    expect(isOurs(old, 'shop', uid)).toBe(true);
    expect(isOurs(old, 'shop', 'new-uid')).toBe(false);
    // Neither frozen nor pruned by the new one: the garbage collector deletes it.
    expect(planObjects('shop', [], [old], 'new-uid')).toEqual([]);
    // Without an owner reference, its labels decide.
    const bare = { ...old, metadata: { ...old.metadata, ownerReferences: [] } };
    expect(isOurs(bare, 'shop', 'new-uid')).toBe(true);
  });
});

describe('planObjects: a drift names the version found to differ', () => {
  it('so that a repair the cache does not hold yet is not made again', () => {
    const edited = np('c-edited', spec(33), ours);
    edited.metadata.resourceVersion = '4711';
    const [a] = planObjects('shop', [enforcedPolicy(seg, np('c-edited', spec(3)))], [edited]);
    expect(a).toMatchObject({ kind: 'apply', why: 'drift', from: '4711' });
  });
});

describe('enforcementPhases: what allows first, then default denies, then deletions', () => {
  const spec = (s: Partial<NetworkPolicySpec>) => ({ spec: s });
  it('tells a default deny: every pod of the namespace, a policy type, no rule', () => {
    expect(isDefaultDeny(spec({ podSelector: {}, policyTypes: ['Ingress', 'Egress'] }))).toBe(true);
    expect(isDefaultDeny(spec({ podSelector: { matchLabels: {} }, policyTypes: ['Egress'] }))).toBe(true);
    expect(isDefaultDeny(spec({ podSelector: {}, policyTypes: [] }))).toBe(false);
    expect(
      isDefaultDeny(spec({ podSelector: { matchLabels: { app: 'a' } }, policyTypes: ['Ingress'] })),
    ).toBe(false);
    expect(
      isDefaultDeny(
        spec({
          podSelector: { matchExpressions: [{ key: 'a', operator: 'Exists' }] },
          policyTypes: ['Ingress'],
        }),
      ),
    ).toBe(false);
    expect(isDefaultDeny(spec({ podSelector: {}, policyTypes: ['Ingress'], ingress: [{}] }))).toBe(false);
  });

  it('orders a plan: allowing applies and deny deletions, then deny applies, then other deletions', () => {
    const np = (name: string, s: Partial<NetworkPolicySpec>) =>
      ({
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: { name, namespace: 'a' },
        spec: s,
      }) as NetworkPolicy;
    const deny = np('microseg-default-deny', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
    const web = np('microseg-web', {
      podSelector: { matchLabels: { app: 'web' } },
      policyTypes: ['Ingress'],
    });
    const actions: Action<NetworkPolicy>[] = [
      { kind: 'apply', object: web, why: 'create' },
      { kind: 'apply', object: deny, why: 'create' },
      { kind: 'delete', namespace: 'a', name: 'microseg-old', why: 'prune' },
      { kind: 'delete', namespace: 'b', name: 'microseg-default-deny', why: 'prune', defaultDeny: true },
      { kind: 'conflict', namespace: 'a', name: 'microseg-x', holder: 'someone' },
    ];
    const [opening, denies, deletes] = enforcementPhases(actions);
    expect(opening).toEqual([actions[0], actions[3], actions[4]]);
    expect(denies).toEqual([actions[1]]);
    expect(deletes).toEqual([actions[2]]);
    // planObjects marks the deletion of a default deny.
    const ours = { 'app.kubernetes.io/managed-by': 'microseg', 'microseg.dev/segmentation': 's' };
    const planned = planObjects('s', [], [{ ...deny, metadata: { ...deny.metadata, labels: ours } }]);
    expect(planned).toEqual([
      { kind: 'delete', namespace: 'a', name: 'microseg-default-deny', why: 'prune', defaultDeny: true },
    ]);
  });

  it("still takes a default deny for one when it carries an Isolation's quarantine exclusion", () => {
    const exclusion = { key: 'microseg.dev/quarantine', operator: 'DoesNotExist' as const };
    expect(
      isDefaultDeny(
        spec({ podSelector: { matchExpressions: [exclusion] }, policyTypes: ['Ingress', 'Egress'] }),
      ),
    ).toBe(true);
    // Another requirement beside it selects some pods only: not a default deny.
    expect(
      isDefaultDeny(
        spec({
          podSelector: { matchExpressions: [exclusion, { key: 'a', operator: 'Exists' }] },
          policyTypes: ['Ingress'],
        }),
      ),
    ).toBe(false);
    const ours = { 'app.kubernetes.io/managed-by': 'microseg', 'microseg.dev/segmentation': 's' };
    const np = (name: string, s: Partial<NetworkPolicySpec>) =>
      ({
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: { name, namespace: 'a', labels: ours },
        spec: s,
      }) as NetworkPolicy;
    const deny = np('microseg-default-deny', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
    const web = np('microseg-web', {
      podSelector: { matchLabels: { app: 'web' } },
      policyTypes: ['Egress'],
      egress: [{}],
    });
    // A pod of namespace a is quarantined: every policy planned there gets the exclusion, the deny too,
    // and it is still written after the policy that allows.
    const planned = planObjects('s', [deny, web], [], undefined, new Set(['a']));
    const [opening, denies] = enforcementPhases(planned);
    expect(opening.map((a) => (a.kind === 'apply' ? a.object.metadata.name : a.name))).toEqual([
      'microseg-web',
    ]);
    expect(denies.map((a) => (a.kind === 'apply' ? a.object.spec?.podSelector : undefined))).toEqual([
      { matchExpressions: [exclusion] },
    ]);
    // Pruned, such a deny is deleted first.
    const excluded = { ...deny, spec: { ...deny.spec, podSelector: { matchExpressions: [exclusion] } } };
    expect(planObjects('s', [], [excluded])).toEqual([
      { kind: 'delete', namespace: 'a', name: 'microseg-default-deny', why: 'prune', defaultDeny: true },
    ]);
  });
});

describe('proposalHash', () => {
  it('depends on names and specs, not on order or representation', () => {
    const a = [np('a', spec(1)), np('b', spec(2))];
    const b = [np('b', { ...spec(2), egress: undefined }), np('a', spec(1))];
    expect(proposalHash(a)).toBe(proposalHash(b));
    expect(proposalHash(a)).not.toBe(proposalHash([np('a', spec(1)), np('b', spec(3))]));
    expect(proposalHash(a)).toMatch(/^[0-9a-f]{16}$/);
  });
});

describe('planObjects: the quarantine exclusion an Isolation added', () => {
  const exclusion = { key: 'microseg.dev/quarantine', operator: 'DoesNotExist' as const };
  const excluded = (s: NetworkPolicySpec): NetworkPolicySpec => ({
    ...s,
    podSelector: { ...s.podSelector, matchExpressions: [exclusion] },
  });
  // As the Isolation leaves it: the exclusion, and its annotation.
  const marked = <T extends { metadata: object }>(o: T): T => ({
    ...o,
    metadata: { ...o.metadata, annotations: { 'microseg.dev/quarantine-exclusion': 'added' } },
  });

  it('is not drift: the policy keeps not selecting the quarantined pods', () => {
    const desired = enforcedPolicy(seg, np('db', spec(5432)));
    const live = marked({ ...desired, spec: excluded(desired.spec) });
    expect(planObjects('shop', [desired], [live])).toEqual([]);
  });

  it('without its annotation, is kept only while a pod of the namespace is quarantined', () => {
    const desired = enforcedPolicy(seg, np('db', spec(5432)));
    const live = { ...desired, spec: excluded(desired.spec) };
    const ns = desired.metadata.namespace!;
    expect(planObjects('shop', [desired], [live], undefined, new Set([ns]))).toEqual([]);
    // Added by hand, or put back from a stale copy after a release: drift, taken out.
    for (const quarantined of [undefined, new Set<string>(), new Set(['elsewhere'])]) {
      const [a] = planObjects('shop', [desired], [live], undefined, quarantined);
      expect(a).toMatchObject({ kind: 'apply', why: 'drift' });
      expect(a!.kind === 'apply' && a!.object).toBe(desired);
    }
  });

  it('in a namespace with a quarantined pod, a policy created now, or without the exclusion yet, gets it', () => {
    const desired = enforcedPolicy(seg, np('db', spec(5432)));
    const ns = desired.metadata.namespace!;
    const [created] = planObjects('shop', [desired], [], undefined, new Set([ns]));
    expect(created).toMatchObject({ kind: 'apply', why: 'create' });
    expect(created!.kind === 'apply' && created!.object.spec.podSelector).toEqual({
      matchLabels: { app: 'db' },
      matchExpressions: [exclusion],
    });
    const [added] = planObjects('shop', [desired], [desired], undefined, new Set([ns]));
    expect(added).toMatchObject({ kind: 'apply', why: 'drift' });
    expect(added!.kind === 'apply' && added!.object.spec.podSelector.matchExpressions).toEqual([exclusion]);
    // Elsewhere, nothing is added.
    expect(planObjects('shop', [desired], [desired], undefined, new Set(['elsewhere']))).toEqual([]);
  });

  it('is kept when a real drift is repaired', () => {
    const desired = enforcedPolicy(seg, np('db', spec(5432)));
    const live = marked({ ...desired, spec: { ...excluded(desired.spec), ingress: [{}] } });
    const [a] = planObjects('shop', [desired], [live]);
    expect(a).toMatchObject({ kind: 'apply', why: 'drift' });
    expect(a!.kind === 'apply' && a!.object.spec.podSelector).toEqual({
      matchLabels: { app: 'db' },
      matchExpressions: [exclusion],
    });
    expect(a!.kind === 'apply' && a!.object.spec.ingress).toEqual(desired.spec.ingress);
  });

  it('is not added where the live policy does not carry it', () => {
    const desired = enforcedPolicy(seg, np('db', spec(5432)));
    const live = { ...desired, spec: { ...desired.spec, ingress: [{}] } };
    const [a] = planObjects('shop', [desired], [live]);
    expect(a!.kind === 'apply' && a!.object).toBe(desired);
  });
});

describe('the labels and annotations microseg sets are its own', () => {
  const proposal = {
    policies: [
      {
        ...np('microseg-cart', spec(8080), {
          'app.kubernetes.io/managed-by': 'microseg',
          'microseg.dev/segment': 'checkout',
        }),
        metadata: {
          name: 'microseg-cart',
          namespace: 'shop',
          labels: { 'app.kubernetes.io/managed-by': 'microseg', 'microseg.dev/segment': 'checkout' },
          annotations: { 'microseg.dev/workload': 'shop/Deployment/cart' },
        },
      },
    ],
    byWorkload: {},
    evidence: [],
    notExpressible: [],
    unobserved: [],
    namespaces: ['shop'],
    warnings: [],
  };
  const [written] = proposedPolicies(seg, proposal);
  const owned = {
    labels: { ...ours, 'microseg.dev/segment': 'checkout' },
    annotations: { 'microseg.dev/workload': 'shop/Deployment/cart' },
  };
  /** The object as the API server holds it after hand edits of its metadata (its status untouched). */
  const edited: ProposedNetworkPolicy = {
    ...written!,
    metadata: {
      ...written!.metadata,
      resourceVersion: '41',
      labels: { 'microseg.dev/segmentation': 'shop', 'microseg.dev/segment': 'hijacked', team: 'keep' },
      annotations: { 'microseg.dev/workload': 'shop/Deployment/other', note: 'keep' },
    },
  };

  it('records them in status, where an edit of the metadata does not reach', () => {
    expect(written!.metadata.labels).toEqual(owned.labels);
    expect(written!.status!.owned).toEqual(owned);
  });

  it('compares annotations microseg sets, not those others add', () => {
    expect(driftedFields(written!, edited)).toEqual([
      'metadata.labels.app.kubernetes.io/managed-by',
      'metadata.labels.microseg.dev/segment',
      'metadata.annotations.microseg.dev/workload',
    ]);
    const added = {
      ...written!,
      metadata: { ...written!.metadata, annotations: { ...owned.annotations, x: 'y' } },
    };
    expect(driftedFields(written!, added)).toEqual([]);
  });

  it('plans a frozen proposal whose labels were edited as a drift that puts back only what microseg set', () => {
    const frozen = frozenProposed(seg, edited);
    expect(frozen.metadata).toEqual({
      name: 'microseg-cart',
      namespace: 'shop',
      labels: owned.labels,
      annotations: owned.annotations,
      ownerReferences: written!.metadata.ownerReferences,
    });
    // The frozen spec as it is, the evidence kept.
    expect(frozen.spec).toEqual(edited.spec);
    expect(frozen.status).toBe(edited.status);
    expect(planObjects('shop', [frozen], [edited], 'u-1')).toEqual([
      { kind: 'apply', object: frozen, why: 'drift', from: '41' },
    ]);
    // Unedited: nothing to do.
    expect(planObjects('shop', [frozenProposed(seg, written!)], [written!], 'u-1')).toEqual([]);
    // Its NetworkPolicy is made from what microseg set, not from the edits.
    expect(enforcedPolicy(seg, frozen).metadata.labels).toEqual(owned.labels);
    expect(enforcedPolicy(seg, frozen).metadata.annotations).toEqual(owned.annotations);
  });

  it('takes them from the object itself when it predates the record: its microseg.dev/ keys and both labels', () => {
    const { owned: _o, ...status } = edited.status!;
    expect(frozenProposed(seg, { ...edited, status }).metadata).toMatchObject({
      labels: { ...ours, 'microseg.dev/segment': 'hijacked' },
      annotations: { 'microseg.dev/workload': 'shop/Deployment/other' },
    });
  });
});
