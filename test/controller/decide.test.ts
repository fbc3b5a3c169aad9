import { describe, expect, it } from 'vitest';
import type { Condition, ProposalInputs, Segmentation, SegmentationSpec } from '../../src/controller/api.ts';
import type { CronJobRuns } from '../../src/policy/cronjobs.ts';
import { cronJobsNotRunSince, nextRunAfter, notRunWait } from '../../src/policy/cronjobs.ts';
import { parseSegmentationSpec } from '../../src/controller/api.ts';
import {
  auditKey,
  auditVerdict,
  commitDecision,
  MAX_PENDING_COMMITS,
  bucketOf,
  bucketWidthMs,
  coverageMessage,
  notRunNote,
  promotionWaitingMessage,
  enforceGate,
  namespaceConflicts,
  namespacesJoined,
  noNamespacesAnnouncement,
  modeDeclaredBy,
  namespacesLeftOut,
  promotionTarget,
  pruneBuckets,
  selectNamespaces,
  setCondition,
  transitionEvents,
  unauditableAnnouncement,
  unobservedAnnouncement,
  unobservedMessage,
  wasEnforcing,
  keepsAgedEdges,
  keptEdgesNote,
  analysisInputs,
  deferredChangeMessage,
  deferredChangeNote,
  proposalInputsChanged,
  proposalInputsOf,
  recordedProposalInputs,
  withInputs,
  wouldBlockAnnouncement,
  wouldBlockInWindow,
} from '../../src/controller/decide.ts';
import type { Namespace } from '../../src/model/k8s.ts';

const T0 = Date.parse('2026-11-28T12:00:00Z');
const ns = (name: string, labels: Record<string, string> = {}): Namespace => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name, labels },
});
const seg = (name: string, created: string): Segmentation => ({
  apiVersion: 'microseg.dev/v1alpha1',
  kind: 'Segmentation',
  metadata: { name, creationTimestamp: created },
});

describe('namespaces', () => {
  const all = [ns('kube-system'), ns('shop', { team: 'shop' }), ns('pay', { team: 'pay' }), ns('default')];
  it('an empty selector takes every namespace but the system ones', () => {
    expect(selectNamespaces({}, all)).toEqual(['default', 'pay', 'shop']);
  });
  it('a selector matches labels and the namespace name label', () => {
    expect(selectNamespaces({ matchLabels: { team: 'shop' } }, all)).toEqual(['shop']);
    expect(
      selectNamespaces(
        {
          matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['kube-system'] }],
        },
        all,
      ),
    ).toEqual(['kube-system']);
  });
  describe("the controller's own namespace", () => {
    const own = 'microseg-system';
    const cluster = [...all, ns(own, { team: 'shop' })];
    const name = (op: 'In' | 'NotIn', values: string[]) => ({
      matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: op, values }],
    });
    it('is chosen by no selector that matches it without naming it, and said to be left out', () => {
      for (const selector of [
        {},
        { matchLabels: { team: 'shop' } },
        name('NotIn', ['default']),
        { matchExpressions: [{ key: 'team', operator: 'Exists' as const }] },
      ]) {
        const chosen = selectNamespaces(selector, cluster, own);
        expect(chosen).not.toContain(own);
        expect(chosen.length).toBeGreaterThan(0);
        expect(namespacesLeftOut(selector, cluster, own)).toContainEqual({ namespace: own, reason: 'own' });
      }
      // Without it set apart, the same selectors choose it.
      expect(selectNamespaces({}, cluster)).toContain(own);
      expect(selectNamespaces(name('NotIn', ['default']), cluster)).toContain(own);
      // The system namespaces are set apart by the same rule: a NotIn on the name does not cover them.
      expect(selectNamespaces(name('NotIn', ['default']), cluster, own)).toEqual(['pay', 'shop']);
      expect(namespacesLeftOut(name('NotIn', ['default']), cluster, own)).toEqual([
        { namespace: 'kube-system', reason: 'system' },
        { namespace: own, reason: 'own' },
      ]);
    });
    it('is chosen by a selector that names it, in matchLabels or an In requirement', () => {
      for (const selector of [
        { matchLabels: { 'kubernetes.io/metadata.name': own } },
        name('In', ['shop', own]),
      ]) {
        expect(selectNamespaces(selector, cluster, own)).toContain(own);
        expect(namespacesLeftOut(selector, cluster, own)).toEqual([]);
      }
    });
    it('is not said to be left out when the selector does not match it or it does not exist', () => {
      expect(namespacesLeftOut({ matchLabels: { team: 'pay' } }, cluster, own)).toEqual([]);
      expect(namespacesLeftOut({}, all, own)).toEqual([{ namespace: 'kube-system', reason: 'system' }]);
      expect(namespacesLeftOut({}, cluster, undefined)).toEqual([
        { namespace: 'kube-system', reason: 'system' },
      ]);
    });
  });
  describe('the Kubernetes system namespaces', () => {
    const own = 'microseg-system';
    const system = ['kube-node-lease', 'kube-public', 'kube-system'];
    // kube-system carries a label an application namespace does too, as some distributions set.
    const cluster = [
      ns('kube-system', { 'control-plane': 'true', tier: 'platform' }),
      ns('kube-public'),
      ns('kube-node-lease'),
      ns('shop', { tier: 'platform' }),
      ns('dev'),
      ns(own),
    ];
    const name = (op: 'In' | 'NotIn', values: string[]) => ({
      matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: op, values }],
    });
    it('are chosen by no selector that matches them without naming them, and said to be left out', () => {
      // "Every namespace but dev": the application namespaces only.
      expect(selectNamespaces(name('NotIn', ['dev']), cluster, own)).toEqual(['shop']);
      expect(namespacesLeftOut(name('NotIn', ['dev']), cluster, own)).toEqual([
        ...system.map((namespace) => ({ namespace, reason: 'system' })),
        { namespace: own, reason: 'own' },
      ]);
      const exists = { matchExpressions: [{ key: 'tier', operator: 'Exists' as const }] };
      expect(selectNamespaces(exists, cluster, own)).toEqual(['shop']);
      expect(namespacesLeftOut(exists, cluster, own)).toEqual([
        { namespace: 'kube-system', reason: 'system' },
      ]);
      const label = { matchLabels: { 'control-plane': 'true' } };
      expect(selectNamespaces(label, cluster, own)).toEqual([]);
      expect(namespacesLeftOut(label, cluster, own)).toEqual([
        { namespace: 'kube-system', reason: 'system' },
      ]);
      // The empty selector, as before.
      expect(selectNamespaces({}, cluster, own)).toEqual(['dev', 'shop']);
      // A NotIn that lists one of them leaves out only the others.
      expect(namespacesLeftOut(name('NotIn', ['kube-public']), cluster)).toEqual([
        { namespace: 'kube-node-lease', reason: 'system' },
        { namespace: 'kube-system', reason: 'system' },
      ]);
    });
    it('are chosen by a selector that names them, in matchLabels or an In requirement', () => {
      expect(selectNamespaces(name('In', ['kube-system']), cluster, own)).toEqual(['kube-system']);
      expect(selectNamespaces(name('In', ['kube-public', 'shop']), cluster, own)).toEqual([
        'kube-public',
        'shop',
      ]);
      expect(
        selectNamespaces({ matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, cluster, own),
      ).toEqual(['kube-system']);
      // Named, and matching the rest of the selector too.
      const both = {
        matchLabels: { 'kubernetes.io/metadata.name': 'kube-system', tier: 'platform' },
      };
      expect(selectNamespaces(both, cluster, own)).toEqual(['kube-system']);
      for (const selector of [name('In', ['kube-system']), both])
        expect(namespacesLeftOut(selector, cluster, own)).toEqual([]);
      // Named but not matched otherwise: not chosen, and not matched, so not said to be left out.
      const not = { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system', tier: 'edge' } };
      expect(selectNamespaces(not, cluster, own)).toEqual([]);
      expect(namespacesLeftOut(not, cluster, own)).toEqual([]);
    });
  });
  it('the older Segmentation keeps a namespace; the newer one reports it', () => {
    const old = seg('a-old', '2026-01-01T00:00:00Z');
    const young = seg('b-young', '2026-02-01T00:00:00Z');
    expect(namespaceConflicts(young, ['pay', 'shop'], [{ seg: old, namespaces: ['shop'] }])).toEqual([
      ['shop', 'a-old'],
    ]);
    expect(namespaceConflicts(old, ['shop'], [{ seg: young, namespaces: ['shop', 'pay'] }])).toEqual([]);
  });
  it('an older Segmentation that is itself in conflict covers nothing and blocks no newer one', () => {
    const a = { seg: seg('a', '2026-01-01T00:00:00Z'), namespaces: ['pay'] };
    const b = { seg: seg('b', '2026-02-01T00:00:00Z'), namespaces: ['pay', 'ship'] };
    const c = { seg: seg('c', '2026-03-01T00:00:00Z'), namespaces: ['ship'] };
    const d = { seg: seg('d', '2026-04-01T00:00:00Z'), namespaces: ['ship', 'pay'] };
    const verdicts = (others: (typeof a)[]) =>
      [a, b, c, d].map((x) => [x.seg.metadata.name, namespaceConflicts(x.seg, x.namespaces, others)]);
    const expected = [
      ['a', []],
      ['b', [['pay', 'a']]],
      ['c', []],
      [
        'd',
        [
          ['pay', 'a'],
          ['ship', 'c'],
        ],
      ],
    ];
    // Whatever order the Segmentations are listed (and so reconciled) in.
    expect(verdicts([a, b, c, d])).toEqual(expected);
    expect(verdicts([d, c, b, a])).toEqual(expected);
    expect(verdicts([c, a, d, b])).toEqual(expected);
    // Same creation time: the name decides, as for two.
    const b2 = { seg: seg('b2', '2026-01-01T00:00:00Z'), namespaces: ['pay', 'ship'] };
    const c2 = { seg: seg('c2', '2026-01-01T00:00:00Z'), namespaces: ['ship'] };
    expect(namespaceConflicts(c2.seg, c2.namespaces, [c2, b2, a])).toEqual([]);
    expect(namespaceConflicts(b2.seg, b2.namespaces, [c2, b2, a])).toEqual([['pay', 'a']]);
  });
});

describe('audit', () => {
  it('buckets are a sixtieth of the window, at least a second', () => {
    expect(bucketWidthMs(3_600_000)).toBe(60_000);
    expect(bucketWidthMs(2000)).toBe(1000);
    expect(bucketOf(T0 + 59_999, 3_600_000)).toBe(T0 / 1000);
  });

  it('counts would-be-blocked flows inside the window only', () => {
    const window = 10_000;
    const b = new Map<number, number>([
      [bucketOf(T0, window), 2],
      [bucketOf(T0 + 5000, window), 3],
    ]);
    expect(wouldBlockInWindow(b, T0 + 6000, window)).toBe(5);
    expect(wouldBlockInWindow(b, T0 + 11_000, window)).toBe(3);
    expect(wouldBlockInWindow(b, T0 + 16_000, window)).toBe(0);
    pruneBuckets(b, T0 + 11_000, window);
    expect([...b.values()]).toEqual([3]);
  });

  it('AuditClean needs the full window and no would-be-blocked flow', () => {
    const window = 60_000;
    expect(auditVerdict(undefined, T0, window)).toMatchObject({ clean: false, reason: 'AuditNotRunning' });
    const audit = {
      since: T0,
      buckets: new Map<number, number>(),
      unauditable: new Map<number, number>(),
      samples: [],
    };
    expect(auditVerdict(audit, T0 + 30_000, window)).toEqual({
      clean: false,
      wouldBlock: 0,
      unauditable: 0,
      reason: 'AuditWindowOpen',
      message: 'no flow would be blocked so far; the 1m audit window started at 2026-11-28T12:00:00.000Z',
    });
    expect(auditVerdict(audit, T0 + 60_000, window)).toEqual({
      clean: true,
      wouldBlock: 0,
      unauditable: 0,
      reason: 'NoBlockedFlows',
      message: 'no flow would have been blocked in the last 1m',
    });
    audit.buckets.set(bucketOf(T0 + 61_000, window), 4);
    expect(auditVerdict(audit, T0 + 62_000, window)).toEqual({
      clean: false,
      wouldBlock: 4,
      unauditable: 0,
      reason: 'FlowsWouldBeBlocked',
      message: '4 flow(s) in the last 1m would be blocked by the proposal',
    });
  });

  it('AuditClean stays True with flows it could not audit, and every message counts them in the window', () => {
    const window = 60_000;
    const audit = {
      since: T0,
      buckets: new Map<number, number>(),
      unauditable: new Map<number, number>([
        [bucketOf(T0 + 10_000, window), 3],
        [bucketOf(T0 + 50_000, window), 4],
      ]),
      samples: [],
    };
    const note = '; 7 flow(s) could not be audited (see status.unauditable)';
    expect(auditVerdict(audit, T0 + 55_000, window)).toEqual({
      clean: false,
      wouldBlock: 0,
      unauditable: 7,
      reason: 'AuditWindowOpen',
      message: `no flow would be blocked so far; the 1m audit window started at 2026-11-28T12:00:00.000Z${note}`,
    });
    expect(auditVerdict(audit, T0 + 60_000, window)).toEqual({
      clean: true,
      wouldBlock: 0,
      unauditable: 7,
      reason: 'NoBlockedFlows',
      message: `no flow would have been blocked in the last 1m${note}`,
    });
    // The first bucket leaves the window: only the later 4 are counted.
    expect(auditVerdict(audit, T0 + 71_000, window)).toMatchObject({
      clean: true,
      unauditable: 4,
      message:
        'no flow would have been blocked in the last 1m; 4 flow(s) could not be audited (see status.unauditable)',
    });
    audit.buckets.set(bucketOf(T0 + 70_000, window), 2);
    expect(auditVerdict(audit, T0 + 71_000, window)).toEqual({
      clean: false,
      wouldBlock: 2,
      unauditable: 4,
      reason: 'FlowsWouldBeBlocked',
      message:
        '2 flow(s) in the last 1m would be blocked by the proposal; 4 flow(s) could not be audited (see status.unauditable)',
    });
  });
});

describe('workloads no observed flow reaches or leaves', () => {
  const window = 60_000;
  const note =
    '; 2 workload(s) saw no flow and will be cut off by the default deny once enforced (see status.unobservedWorkloads)';

  it('are named at the end of every AuditClean message, which they do not make False', () => {
    const audit = {
      since: T0,
      buckets: new Map<number, number>(),
      unauditable: new Map<number, number>(),
      samples: [],
    };
    expect(auditVerdict(audit, T0 + 30_000, window, 2)).toEqual({
      clean: false,
      wouldBlock: 0,
      unauditable: 0,
      reason: 'AuditWindowOpen',
      message: `no flow would be blocked so far; the 1m audit window started at 2026-11-28T12:00:00.000Z${note}`,
    });
    expect(auditVerdict(audit, T0 + 60_000, window, 2)).toEqual({
      clean: true,
      wouldBlock: 0,
      unauditable: 0,
      reason: 'NoBlockedFlows',
      message: `no flow would have been blocked in the last 1m${note}`,
    });
    // After the unauditable flows' note, on a False one too.
    audit.buckets.set(bucketOf(T0 + 61_000, window), 4);
    audit.unauditable.set(bucketOf(T0 + 61_000, window), 3);
    expect(auditVerdict(audit, T0 + 62_000, window, 2)).toEqual({
      clean: false,
      wouldBlock: 4,
      unauditable: 3,
      reason: 'FlowsWouldBeBlocked',
      message: `4 flow(s) in the last 1m would be blocked by the proposal; 3 flow(s) could not be audited (see status.unauditable)${note}`,
    });
    // None: no note.
    expect(auditVerdict(audit, T0 + 62_000, window, 0).message).toBe(
      '4 flow(s) in the last 1m would be blocked by the proposal; 3 flow(s) could not be audited (see status.unauditable)',
    );
    // An Enforce that is refused or forced quotes it.
    const verdict = auditVerdict(audit, T0 + 62_000, window, 2);
    expect(enforceGate({ alreadyEnforced: false, force: false, audit: verdict }).message).toBe(
      `Enforce refused: ${verdict.message}; wait for AuditClean or set spec.enforce.force: true`,
    );
    // Enforce is not held back by them.
    const clean = auditVerdict(
      { ...audit, buckets: new Map(), unauditable: new Map() },
      T0 + 62_000,
      window,
      2,
    );
    expect(enforceGate({ alreadyEnforced: false, force: false, audit: clean })).toEqual({
      allowed: true,
      reason: 'PoliciesApplied',
      message: 'the proposal is enforced',
    });
  });

  it('are announced when their count rises from zero, and when the set changes in Audit', () => {
    const none = { count: 0, workloads: [] };
    const one = { count: 1, workloads: ['shop/CronJob/backup'] };
    const two = { count: 2, workloads: ['shop/CronJob/backup', 'shop/Deployment/reports'] };
    const other = { count: 2, workloads: ['shop/CronJob/backup', 'shop/Deployment/audit'] };
    // From zero, in any mode.
    expect(unobservedAnnouncement(none, one, false)).toBe(true);
    expect(unobservedAnnouncement(none, one, true)).toBe(true);
    // None left: nothing to say.
    expect(unobservedAnnouncement(one, none, true)).toBe(false);
    expect(unobservedAnnouncement(none, none, true)).toBe(false);
    // The same set (a resync, or a new leader reading the status written last): nothing.
    expect(unobservedAnnouncement(two, { ...two, workloads: [...two.workloads] }, true)).toBe(false);
    // In Audit, a set that grew, shrank or changed (the same count) is announced; not in Learn or Enforce.
    for (const [before, after] of [
      [one, two],
      [two, one],
      [two, other],
    ] as const) {
      expect(unobservedAnnouncement(before, after, true)).toBe(true);
      expect(unobservedAnnouncement(before, after, false)).toBe(false);
    }
    // Beyond the 100 listed, the count tells a change.
    expect(unobservedAnnouncement({ ...two, count: 150 }, { ...two, count: 151 }, true)).toBe(true);
  });

  it("are named in the Event's message, the first three", () => {
    expect(unobservedMessage({ count: 1, workloads: ['shop/CronJob/backup'] })).toBe(
      '1 workload(s) saw no flow and will be cut off by the default deny once enforced: shop/CronJob/backup (see status.unobservedWorkloads)',
    );
    expect(
      unobservedMessage({
        count: 150,
        workloads: ['a/CronJob/a', 'a/CronJob/b', 'a/Deployment/c', 'a/Deployment/d'],
      }),
    ).toBe(
      '150 workload(s) saw no flow and will be cut off by the default deny once enforced: a/CronJob/a, a/CronJob/b, a/Deployment/c, and 147 more (see status.unobservedWorkloads)',
    );
  });
});

describe('unauditableAnnouncement', () => {
  /** The counts of a run of reconciles that get an Unauditable Event. */
  function announced(counts: number[], from = 0): number[] {
    let level = from;
    return counts.flatMap((n) => {
      const r = unauditableAnnouncement(level, n);
      level = r.announced;
      return r.announce ? [n] : [];
    });
  }

  it('announces a count that rises from zero, then only once it has doubled', () => {
    // A steady stream filling the window, one reconcile at a time, then the window full.
    expect(announced([0, 3, 6, 9, 12, 15, 18, 21, 24, 24, 23, 24])).toEqual([3, 6, 12, 24]);
    expect(announced([5, 9, 10, 19, 20])).toEqual([5, 10, 20]);
  });

  it('announces nothing while the count stays or falls, and again once it left the window', () => {
    expect(announced([7, 7, 5, 7, 4, 0, 0, 2])).toEqual([7, 2]);
  });

  it("compares a new leader's first count with the count in status", () => {
    expect(announced([2, 3], 2)).toEqual([]);
    expect(announced([4], 2)).toEqual([4]);
    expect(announced([1], 0)).toEqual([1]);
  });
});

describe('wouldBlockAnnouncement', () => {
  /** The counts of a run of reconciles (count, and whether a connection not announced is among them). */
  function announced(runs: [number, boolean][], from = 0): number[] {
    let level = from;
    return runs.flatMap(([n, news]) => {
      const r = wouldBlockAnnouncement(level, n, news);
      level = r.announced;
      return r.announce ? [n] : [];
    });
  }

  it('a steady stream of one blocked connection: at the first, then only once the count doubled', () => {
    const steady = [0, 2, 4, 6, 8, 10, 12, 14, 16, 16].map((n, i): [number, boolean] => [n, i === 1]);
    expect(announced(steady)).toEqual([2, 4, 8, 16]);
  });

  it('a connection blocked for the first time is announced whatever the count', () => {
    expect(
      announced([
        [10, true],
        [11, false],
        [12, true],
        [13, false],
      ]),
    ).toEqual([10, 12]);
  });

  it('nothing while no flow is blocked, even with news (it left the window)', () => {
    expect(
      announced([
        [0, true],
        [3, false],
      ]),
    ).toEqual([3]);
  });

  it("compares a new leader's first count with the count in status", () => {
    expect(announced([[3, false]], 2)).toEqual([]);
    expect(announced([[3, true]], 2)).toEqual([3]);
  });
});

describe('enforceGate', () => {
  const dirty = {
    clean: false,
    wouldBlock: 2,
    unauditable: 0,
    reason: 'FlowsWouldBeBlocked',
    message: '2 flow(s) in the last 1h would be blocked by the proposal',
  };
  const clean = { clean: true, wouldBlock: 0, unauditable: 0, reason: 'NoBlockedFlows', message: 'clean' };
  it('refuses while the audit shows would-be-blocked flows', () => {
    expect(enforceGate({ alreadyEnforced: false, force: false, audit: dirty })).toEqual({
      allowed: false,
      reason: 'EnforceRefused',
      message:
        'Enforce refused: 2 flow(s) in the last 1h would be blocked by the proposal; wait for AuditClean or set spec.enforce.force: true',
    });
  });
  it('allows a clean audit, an explicit force, and an enforcement already in place', () => {
    expect(enforceGate({ alreadyEnforced: false, force: false, audit: clean }).allowed).toBe(true);
    expect(enforceGate({ alreadyEnforced: false, force: true, audit: dirty })).toMatchObject({
      allowed: true,
      reason: 'EnforceForced',
    });
    expect(enforceGate({ alreadyEnforced: true, force: false, audit: dirty }).allowed).toBe(true);
  });
  // The reconcile after the one that forced it said PoliciesApplied, `the proposal is enforced` (and sent
  // that as an Event), though the audit was as unclean as before and spec.enforce.force still set.
  it('keeps saying that Enforce is forced, with the audit result, once enforcing while the audit is not clean', () => {
    const forced = {
      allowed: true,
      reason: 'EnforceForced',
      message:
        'enforced with spec.enforce.force although the audit is not clean: 2 flow(s) in the last 1h would be blocked by the proposal',
    };
    expect(enforceGate({ alreadyEnforced: false, force: true, audit: dirty })).toEqual(forced);
    expect(enforceGate({ alreadyEnforced: true, force: true, audit: dirty })).toEqual(forced);
    // Clean, or enforcing on without the force (it was clean when it began): applied as proposed.
    expect(enforceGate({ alreadyEnforced: true, force: true, audit: clean }).reason).toBe('PoliciesApplied');
    expect(enforceGate({ alreadyEnforced: true, force: false, audit: dirty }).reason).toBe('PoliciesApplied');
  });
  // spec.enforce.force unset while enforcing and the audit as unclean as before: enforcing went on, and
  // Enforced said `the proposal is enforced` alone, sent as an Event (EnforceForced → PoliciesApplied),
  // as if the audit had come clean; the same when an audit that was clean at the start is no longer.
  it('enforcing on without the force while the audit is not clean, says so with the audit result', () => {
    expect(enforceGate({ alreadyEnforced: true, force: false, audit: dirty })).toEqual({
      allowed: true,
      reason: 'PoliciesApplied',
      message:
        'the proposal is enforced, although the audit is not clean: 2 flow(s) in the last 1h would be blocked by the proposal (once enforcing, it keeps enforcing; spec.mode: Audit withdraws it)',
    });
    expect(enforceGate({ alreadyEnforced: true, force: false, audit: clean }).message).toBe(
      'the proposal is enforced',
    );
  });
});

describe('wasEnforcing', () => {
  const enforced = (status: 'True' | 'False', reason: string): Condition[] => [
    { type: 'Enforced', status, reason, message: 'm', lastTransitionTime: 't' },
  ];
  it('holds in Enforce mode with the proposal applied in full, forced, or in part around a name conflict', () => {
    expect(wasEnforcing({ mode: 'Enforce', conditions: enforced('True', 'PoliciesApplied') })).toBe(true);
    expect(wasEnforcing({ mode: 'Enforce', conditions: enforced('True', 'EnforceForced') })).toBe(true);
    expect(wasEnforcing({ mode: 'Enforce', conditions: enforced('False', 'PolicyNameConflict') })).toBe(true);
    // Kept while the spec was invalid: still in place, so enforcing goes on once it is valid again.
    expect(wasEnforcing({ mode: 'Enforce', conditions: enforced('True', 'NotRepairedWhileInvalid') })).toBe(
      true,
    );
  });
  it('does not hold after a refusal, in another mode, or before any status', () => {
    expect(wasEnforcing({ mode: 'Enforce', conditions: enforced('False', 'EnforceRefused') })).toBe(false);
    expect(wasEnforcing({ mode: 'Audit', conditions: enforced('False', 'NotEnforcing') })).toBe(false);
    expect(wasEnforcing({ mode: 'Audit', conditions: enforced('True', 'PoliciesApplied') })).toBe(false);
    expect(wasEnforcing({ mode: 'Enforce', conditions: [] })).toBe(false);
    expect(wasEnforcing(undefined)).toBe(false);
  });
  it('holds after failed applies only while something is in place', () => {
    const failed = enforced('False', 'ApplyFailed');
    expect(wasEnforcing({ mode: 'Enforce', conditions: failed, enforcedPolicies: 2 })).toBe(true);
    expect(wasEnforcing({ mode: 'Enforce', conditions: failed, enforcedPolicies: 0 })).toBe(false);
    expect(wasEnforcing({ mode: 'Enforce', conditions: failed })).toBe(false);
  });
});

describe('keepsAgedEdges', () => {
  const enforced = (reason: string): Condition[] => [
    { type: 'Enforced', status: 'False', reason, message: 'm', lastTransitionTime: 't' },
  ];
  const enforcing = { mode: 'Enforce' as const, conditions: enforced('ApplyFailed'), enforcedPolicies: 1 };
  it('keeps them while an enforcing Segmentation writes its proposal on in Enforce', () => {
    expect(keepsAgedEdges('Enforce', true, enforcing)).toBe(true);
  });
  it('lets them age out when the proposal is frozen, nothing is enforced, or in another mode', () => {
    // Frozen: the live analysis is not what is enforced.
    expect(keepsAgedEdges('Enforce', false, enforcing)).toBe(false);
    // Refused, or applies that all failed: nothing enforced to withdraw an allow from.
    const refused = { mode: 'Enforce' as const, conditions: enforced('EnforceRefused') };
    expect(keepsAgedEdges('Enforce', true, refused)).toBe(false);
    expect(keepsAgedEdges('Enforce', true, { ...enforcing, enforcedPolicies: 0 })).toBe(false);
    expect(keepsAgedEdges('Enforce', true, undefined)).toBe(false);
    // Set back to Audit or Learn: the policies are taken out, nothing stays enforced.
    expect(keepsAgedEdges('Audit', true, enforcing)).toBe(false);
    expect(keepsAgedEdges('Learn', true, enforcing)).toBe(false);
  });
  it('says the edges kept in Enforced only when there are some', () => {
    expect(keptEdgesNote(0, '1m')).toBe('');
    expect(keptEdgesNote(2, '168h')).toBe(
      '; 2 learned edge(s) unused for 168h are kept while the proposal is still being written, so that no allow enforced is withdrawn without an audit (they age out once it is written in full)',
    );
  });
});

describe('proposalInputsChanged', () => {
  const spec = (minFlows: number, policy: Partial<SegmentationSpec['policy']> = {}) =>
    proposalInputsOf({
      learning: { minFlows },
      policy: { defaultDeny: true, includeDropped: false, worldIngress: 'any', ...policy },
    } as unknown as SegmentationSpec);
  it('names the spec fields the proposal is made from that changed', () => {
    expect(proposalInputsChanged(spec(1), spec(1))).toEqual([]);
    expect(proposalInputsChanged(spec(1), spec(5))).toEqual(['learning.minFlows (1 → 5)']);
    expect(proposalInputsChanged(spec(1), spec(1, { defaultDeny: false, includeDropped: true }))).toEqual([
      'policy.defaultDeny (true → false)',
      'policy.includeDropped (false → true)',
    ]);
    expect(proposalInputsChanged(spec(1), spec(1, { worldIngress: 'observed' }))).toEqual([
      'policy.worldIngress (any → observed)',
    ]);
  });
  it('says that the change waits until the proposal is written in full, with the values it is made with', () => {
    expect(deferredChangeMessage(spec(1), spec(5, { worldIngress: 'observed' }))).toBe(
      'spec learning.minFlows (1 → 5), policy.worldIngress (any → observed) changed while the proposal of this enforcing Segmentation is still being written (see Enforced and ProposalStable): it is written, and enforced, as made with learning.minFlows 1, policy.worldIngress any (status.proposal.inputs) until it is in place in full, so that the change takes no allow out of what is enforced without an audit; frozen then, it keeps them, and the change takes effect when the proposal is next made from the spec: at once if the Segmentation is set back to Audit while its proposal is still being written (nothing is enforced then), else once it is set back to Learn and its proposal promoted again',
    );
    expect(deferredChangeNote(spec(1), spec(1))).toBe('');
    expect(deferredChangeNote(spec(1), spec(2))).toBe(
      '; spec learning.minFlows (1 → 2) waits until the proposal is written in full (status.proposal.inputs)',
    );
  });
  it('takes the recorded inputs only while the proposal enforced is still being written, and only whole ones', () => {
    const s = {
      learning: { minFlows: 2 },
      policy: { defaultDeny: true, includeDropped: false, worldIngress: 'any' },
    } as unknown as SegmentationSpec;
    const recorded = recordedProposalInputs({ proposal: { hash: 'h', since: 't', inputs: spec(1) } });
    expect(recorded).toEqual(spec(1));
    expect(analysisInputs(s, true, recorded)).toEqual(spec(1));
    expect(analysisInputs(s, false, recorded)).toEqual(spec(2));
    expect(analysisInputs(s, true, undefined)).toEqual(spec(2));
    expect(withInputs(s, spec(1)).learning.minFlows).toBe(1);
    expect(recordedProposalInputs({ proposal: { hash: 'h', since: 't' } })).toBeUndefined();
    expect(
      recordedProposalInputs({
        proposal: { hash: 'h', since: 't', inputs: { minFlows: 1 } as unknown as ProposalInputs },
      }),
    ).toBeUndefined();
  });
});

describe('conditions and promotion', () => {
  it('lastTransitionTime moves only when the status changes', () => {
    let c: Condition[] = [];
    c = setCondition(
      c,
      { type: 'AuditClean', status: 'False', reason: 'AuditWindowOpen', message: 'a' },
      't1',
    );
    c = setCondition(
      c,
      { type: 'AuditClean', status: 'False', reason: 'FlowsWouldBeBlocked', message: 'b' },
      't2',
    );
    expect(c[0]).toMatchObject({ reason: 'FlowsWouldBeBlocked', lastTransitionTime: 't1' });
    c = setCondition(c, { type: 'AuditClean', status: 'True', reason: 'NoBlockedFlows', message: 'c' }, 't3');
    expect(c[0]!.lastTransitionTime).toBe('t3');
    c = setCondition(c, { type: 'Valid', status: 'True', reason: 'SpecValid', message: 'v' }, 't3');
    expect(c.map((x) => x.type)).toEqual(['Valid', 'AuditClean']);
  });

  it('emits one event per transition, warnings for refusals and would-be-blocked flows', () => {
    const before: Condition[] = [
      { type: 'Enforced', status: 'False', reason: 'NotEnforcing', message: '', lastTransitionTime: 't' },
      { type: 'AuditClean', status: 'True', reason: 'NoBlockedFlows', message: '', lastTransitionTime: 't' },
    ];
    const after: Condition[] = [
      { type: 'Enforced', status: 'False', reason: 'EnforceRefused', message: 'no', lastTransitionTime: 't' },
      {
        type: 'AuditClean',
        status: 'False',
        reason: 'FlowsWouldBeBlocked',
        message: '1 flow',
        lastTransitionTime: 't',
      },
    ];
    expect(transitionEvents(before, after)).toEqual([
      { type: 'Warning', reason: 'EnforceRefused', message: 'Enforced=False: no' },
      { type: 'Warning', reason: 'FlowsWouldBeBlocked', message: 'AuditClean=False: 1 flow' },
    ]);
    expect(transitionEvents(after, after)).toEqual([]);
  });

  it('warns when the proposal lacks a policy because a foreign object holds its name', () => {
    const at = (reason: string, status: 'True' | 'False' = 'False'): Condition[] => [
      { type: 'ProposalStable', status, reason, message: 'm', lastTransitionTime: 't' },
    ];
    expect(transitionEvents(at('ProposalChanged'), at('PolicyNameConflict'))).toEqual([
      { type: 'Warning', reason: 'PolicyNameConflict', message: 'ProposalStable=False: m' },
    ]);
    expect(transitionEvents(at('PolicyNameConflict'), at('ProposalChanged'))).toEqual([
      { type: 'Normal', reason: 'ProposalChanged', message: 'ProposalStable=False: m' },
    ]);
  });

  it('says plainly when a valid Segmentation covers no namespace, and announces it once per change', () => {
    expect(coverageMessage(['pay', 'shop'])).toBe('covers 2 namespace(s)');
    // The controller's own namespace, matched but not covered, is named, with why and how to cover it.
    expect(coverageMessage(['pay', 'shop'], [{ namespace: 'microseg-system', reason: 'own' }])).toBe(
      "covers 2 namespace(s); spec.namespaceSelector also matches namespace microseg-system, not covered: the controller's own namespace (its webhooks, flow push endpoint and page), covered only by a selector that names it by kubernetes.io/metadata.name",
    );
    expect(coverageMessage([], [{ namespace: 'microseg-system', reason: 'own' }])).toBe(
      "covers no namespace: spec.namespaceSelector matches only namespace microseg-system, not covered: the controller's own namespace (its webhooks, flow push endpoint and page), covered only by a selector that names it by kubernetes.io/metadata.name; nothing is learned, proposed or enforced until another namespace matches",
    );
    // Each system namespace matched but not covered is named too, after the controller's own.
    const left = (namespace: string, reason: 'own' | 'system') => ({ namespace, reason });
    expect(coverageMessage(['shop'], [left('kube-system', 'system')])).toBe(
      'covers 1 namespace(s); spec.namespaceSelector also matches namespace kube-system, not covered: a Kubernetes system namespace (cluster DNS and add-ons every namespace relies on), covered only by a selector that names it by kubernetes.io/metadata.name',
    );
    expect(
      coverageMessage(
        ['shop'],
        [left('kube-system', 'system'), left('kube-public', 'system'), left('microseg-system', 'own')],
      ),
    ).toBe(
      "covers 1 namespace(s); spec.namespaceSelector also matches namespace microseg-system, not covered: the controller's own namespace (its webhooks, flow push endpoint and page), covered only by a selector that names it by kubernetes.io/metadata.name; and namespaces kube-public, kube-system, not covered: Kubernetes system namespaces (cluster DNS and add-ons every namespace relies on), covered only by a selector that names them by kubernetes.io/metadata.name",
    );
    expect(coverageMessage([], [left('kube-system', 'system')])).toBe(
      'covers no namespace: spec.namespaceSelector matches only namespace kube-system, not covered: a Kubernetes system namespace (cluster DNS and add-ons every namespace relies on), covered only by a selector that names it by kubernetes.io/metadata.name; nothing is learned, proposed or enforced until another namespace matches',
    );
    expect(coverageMessage([])).toBe(
      'covers no namespace: spec.namespaceSelector matches none, so nothing is learned, proposed or enforced until a namespace matches',
    );
    const valid = (status: 'True' | 'False'): Condition[] => [
      { type: 'Valid', status, reason: 'r', message: '', lastTransitionTime: 't' },
    ];
    const shown = { observedGeneration: 3, namespaces: [], conditions: valid('True') };
    // Already shown for this generation (by this leader or an earlier one): not again at a resync.
    expect(noNamespacesAnnouncement(shown, 3, [])).toBe(false);
    expect(noNamespacesAnnouncement({ ...shown, namespaces: undefined }, 3, [])).toBe(false);
    // A change: first reconcile, the last namespace gone, a spec edit, valid again.
    expect(noNamespacesAnnouncement({}, 1, [])).toBe(true);
    expect(noNamespacesAnnouncement({ ...shown, namespaces: ['shop'] }, 3, [])).toBe(true);
    expect(noNamespacesAnnouncement(shown, 4, [])).toBe(true);
    expect(noNamespacesAnnouncement({ ...shown, conditions: valid('False') }, 3, [])).toBe(true);
    // Covering a namespace is never announced.
    expect(noNamespacesAnnouncement({}, 1, ['shop'])).toBe(false);
  });

  it('promotes only when automatic, after the condition held long enough', () => {
    const spec = (mode: string, automatic: boolean) => {
      const r = parseSegmentationSpec('s', {
        namespaceSelector: {},
        mode,
        promotion: { automatic, after: '10m' },
      });
      if (!r.ok) throw new Error(r.problems.join());
      return r.spec;
    };
    const held = (type: string, since: number): Condition[] => [
      { type, status: 'True', reason: 'x', message: '', lastTransitionTime: new Date(since).toISOString() },
    ];
    expect(promotionTarget(spec('Learn', false), held('ProposalStable', T0), T0 + 3_600_000)).toBeUndefined();
    expect(promotionTarget(spec('Learn', true), held('ProposalStable', T0), T0 + 599_000)).toBeUndefined();
    expect(promotionTarget(spec('Learn', true), held('ProposalStable', T0), T0 + 600_000)).toEqual({
      to: 'Audit',
      message: 'promoted Learn → Audit: the proposal has been stable for 10m',
      why: 'the proposal has been stable for 10m',
    });
    expect(promotionTarget(spec('Audit', true), held('AuditClean', T0), T0 + 600_000)).toEqual({
      to: 'Enforce',
      message: 'promoted Audit → Enforce: the audit has been clean for 10m',
      why: 'the audit has been clean for 10m',
    });
    expect(promotionTarget(spec('Enforce', true), held('AuditClean', T0), T0 + 600_000)).toBeUndefined();
  });

  /** A spec in `mode` with automatic promotion after 10m. */
  const autoSpec = (mode: string) => {
    const r = parseSegmentationSpec('s', {
      namespaceSelector: {},
      mode,
      promotion: { automatic: true, after: '10m' },
    });
    if (!r.ok) throw new Error(r.problems.join());
    return r.spec;
  };
  /** Condition `type` True since T0. */
  const heldSinceT0 = (type: string): Condition[] => [
    { type, status: 'True', reason: 'x', message: '', lastTransitionTime: new Date(T0).toISOString() },
  ];
  it('waits to promote to Enforce while a CronJob has not run since learning began, not to Audit', () => {
    const notRun = ['shop/CronJob/backup'];
    expect(
      promotionTarget(autoSpec('Audit'), heldSinceT0('AuditClean'), T0 + 3_600_000, notRun),
    ).toBeUndefined();
    expect(promotionTarget(autoSpec('Audit'), heldSinceT0('AuditClean'), T0 + 3_600_000, [])).toMatchObject({
      to: 'Enforce',
    });
    expect(
      promotionTarget(autoSpec('Learn'), heldSinceT0('ProposalStable'), T0 + 600_000, notRun),
    ).toMatchObject({
      to: 'Audit',
    });
  });
  it('counts a promotion from when the Segmentation entered its mode: a rollback sticks for a full promotion.after', () => {
    // The proposal has been stable (the audit clean) for hours, but spec.mode was set back an hour ago at
    // T0 + 5h: the condition held for 10m counts from then.
    const rolledBack = T0 + 5 * 3_600_000;
    for (const [mode, type] of [
      ['Learn', 'ProposalStable'],
      ['Audit', 'AuditClean'],
    ] as const) {
      expect(
        promotionTarget(autoSpec(mode), heldSinceT0(type), rolledBack + 599_000, [], rolledBack),
      ).toBeUndefined();
      expect(
        promotionTarget(autoSpec(mode), heldSinceT0(type), rolledBack + 600_000, [], rolledBack),
      ).toMatchObject({
        to: mode === 'Learn' ? 'Audit' : 'Enforce',
      });
    }
    // A condition that turned True after the mode was entered counts from its own transition.
    expect(
      promotionTarget(autoSpec('Learn'), heldSinceT0('ProposalStable'), T0 + 600_000, [], T0 - 3_600_000),
    ).toMatchObject({ to: 'Audit' });
  });
});

describe('CronJobs that have not run since learning began', () => {
  const since = Date.parse('2026-11-28T00:00:00Z');
  const cronJobs: Record<string, CronJobRuns> = {
    'shop/weekly': { status: { lastScheduleTime: '2026-11-22T03:00:00Z' } },
    'shop/fresh': {},
    'shop/nightly': { status: { lastScheduleTime: '2026-11-28T03:00:00Z' } },
    'shop/exactly': { status: { lastScheduleTime: '2026-11-28T00:00:00Z' } },
    'shop/paused': { spec: { suspend: true }, status: { lastScheduleTime: '2026-11-01T03:00:00Z' } },
    'shop/resumed': { spec: { suspend: false } },
    // Its run scheduled since, and its Job still active: lastScheduleTime is set when the Job is made.
    'shop/running': {
      status: { lastScheduleTime: '2026-11-29T03:00:00Z', active: [{ kind: 'Job', name: 'running-1' }] },
    },
    // Runs longer than its period overlap: one is always active, yet one completed since.
    'shop/overlapping': {
      status: {
        lastScheduleTime: '2026-11-29T03:05:00Z',
        lastSuccessfulTime: '2026-11-29T03:07:00Z',
        active: [{ kind: 'Job', name: 'overlapping-2' }],
      },
    },
  };
  const lookup = (ns: string, name: string) => cronJobs[`${ns}/${name}`];

  it('are the CronJobs among the unobserved with no scheduled run since, unless suspended or gone', () => {
    const unobserved = [
      'shop/CronJob/weekly',
      'shop/Deployment/weekly',
      'shop/CronJob/fresh',
      'shop/CronJob/nightly',
      'shop/CronJob/exactly',
      'shop/CronJob/paused',
      'shop/CronJob/resumed',
      'shop/CronJob/deleted',
    ];
    expect(cronJobsNotRunSince(unobserved, lookup, since)).toEqual([
      'shop/CronJob/weekly',
      'shop/CronJob/fresh',
      'shop/CronJob/resumed',
    ]);
    // A run counts once it is over, with `finished`: a CronJob whose Job is still active has not run.
    const running = [...unobserved, 'shop/CronJob/running', 'shop/CronJob/overlapping'];
    expect(cronJobsNotRunSince(running, lookup, since)).toEqual([
      'shop/CronJob/weekly',
      'shop/CronJob/fresh',
      'shop/CronJob/resumed',
    ]);
    expect(cronJobsNotRunSince(running, lookup, since, { finished: true })).toEqual([
      'shop/CronJob/weekly',
      'shop/CronJob/fresh',
      'shop/CronJob/resumed',
      'shop/CronJob/running',
    ]);
    // A Segmentation without a creation time began learning at the epoch: every CronJob that ran counts.
    expect(cronJobsNotRunSince(unobserved, lookup, 0)).toEqual([
      'shop/CronJob/fresh',
      'shop/CronJob/resumed',
    ]);
  });

  it('count a finished run only once it is an audit window old, so that its last flows were audited', () => {
    const now = Date.parse('2026-11-29T04:00:00Z');
    const hour = 3_600_000;
    const runs: Record<string, CronJobRuns> = {
      // Completed ten minutes ago: its last flows may not have been read or audited yet.
      'shop/recent': {
        status: { lastScheduleTime: '2026-11-29T03:45:00Z', lastSuccessfulTime: '2026-11-29T03:50:00Z' },
      },
      // Completed two hours ago.
      'shop/settled': {
        status: { lastScheduleTime: '2026-11-29T01:55:00Z', lastSuccessfulTime: '2026-11-29T02:00:00Z' },
      },
      // Failed (no completion), started five minutes ago, no Job left: counted from its start.
      'shop/failed': { status: { lastScheduleTime: '2026-11-29T03:55:00Z' } },
    };
    const ids = ['shop/CronJob/recent', 'shop/CronJob/settled', 'shop/CronJob/failed'];
    const at = (n: string, k: string) => runs[`${n}/${k}`];
    expect(cronJobsNotRunSince(ids, at, since, { finished: true, settleMs: hour, now })).toEqual([
      'shop/CronJob/recent',
      'shop/CronJob/failed',
    ]);
    expect(cronJobsNotRunSince(ids, at, since, { finished: true, settleMs: hour, now: now + hour })).toEqual(
      [],
    );
    // Without a settle time (recommend, which reads flows already recorded), every run since counts.
    expect(cronJobsNotRunSince(ids, at, since, { finished: true })).toEqual([]);
  });

  it('count from when their namespace joined the scope, when it joined after the first reconcile', () => {
    const runs = { 'late/sweep': { status: { lastScheduleTime: '2026-11-29T00:00:00Z' } } };
    const at = (n: string, k: string) => (runs as Record<string, CronJobRuns>)[`${n}/${k}`];
    const joinedAt = Date.parse('2026-11-29T12:00:00Z');
    // Ran after the creation (since), before its namespace joined: nothing of the run was learned.
    expect(cronJobsNotRunSince(['late/CronJob/sweep'], at, since)).toEqual([]);
    expect(
      cronJobsNotRunSince(['late/CronJob/sweep'], at, (ns) => (ns === 'late' ? joinedAt : since)),
    ).toEqual(['late/CronJob/sweep']);
  });

  it('namespacesJoined: the namespaces selected after the first reconcile, each with the time it joined', () => {
    const now = '2026-11-30T10:00:00Z';
    // The first reconcile: everything selected counts from the creation.
    expect(namespacesJoined(['a', 'b'], { reconciled: false, namespaces: [], joined: {} }, now)).toEqual({});
    // b joins later; a was there from the start.
    expect(namespacesJoined(['b', 'a'], { reconciled: true, namespaces: ['a'], joined: {} }, now)).toEqual({
      b: now,
    });
    // b keeps its time while selected; c joins; a leaves.
    const before = { reconciled: true, namespaces: ['a', 'b'], joined: { b: '2026-11-29T00:00:00Z' } };
    expect(namespacesJoined(['b', 'c'], before, now)).toEqual({ b: '2026-11-29T00:00:00Z', c: now });
    // b left and is selected again: it joins anew.
    expect(
      namespacesJoined(
        ['b'],
        { reconciled: true, namespaces: [], joined: { b: '2026-11-29T00:00:00Z' } },
        now,
      ),
    ).toEqual({ b: now });
  });

  it('say in messages what each waits for: the run going on, the end of its audit window, its next run', () => {
    const now = Date.parse('2026-11-29T04:00:00Z');
    const gate = { finished: true, settleMs: 3_600_000, now };
    const weekly = { spec: { schedule: '0 3 * * 0' } };
    expect(notRunWait({ ...weekly, status: { active: [{}] } }, since, gate)).toBe(' (a run is going)');
    // Completed ten minutes ago, started fifteen: counted from its start, an hour later.
    expect(
      notRunWait(
        {
          ...weekly,
          status: { lastScheduleTime: '2026-11-29T03:45:00Z', lastSuccessfulTime: '2026-11-29T03:50:00Z' },
        },
        since,
        gate,
      ),
    ).toBe(' (its run counts from 2026-11-29T04:45:00Z)');
    // 2026-11-29 is a Sunday: its next run is a week after this one's; 03:00 in Tokyo is 18:00 UTC.
    expect(notRunWait(weekly, since, gate)).toBe(' (next run 2026-12-06T03:00:00Z)');
    expect(notRunWait({ spec: { schedule: '0 3 * * *', timeZone: 'Asia/Tokyo' } }, since, gate)).toBe(
      ' (next run 2026-11-29T18:00:00Z)',
    );
    // A run before `since` does not count; no schedule, or none within a year: nothing to say.
    expect(notRunWait({ status: { lastSuccessfulTime: '2026-11-01T00:00:00Z' } }, since, gate)).toBe('');
    expect(notRunWait({ spec: { schedule: '0 0 30 2 *' } }, since, gate)).toBe('');
    // The next run found is reused until it has passed, then the one after it is found.
    expect(nextRunAfter(weekly, now + 86_400_000)).toBe(Date.parse('2026-12-06T03:00:00Z'));
    expect(nextRunAfter(weekly, Date.parse('2026-12-06T03:00:00Z'))).toBe(Date.parse('2026-12-13T03:00:00Z'));
    // @every: a period after its last run, as Kubernetes counts it (not on its creation's grid, which
    // differs once the schedule was changed), else a period after its creation.
    const every = {
      metadata: { creationTimestamp: '2026-11-01T00:05:00Z' },
      spec: { schedule: '@every 2h' },
    };
    expect(nextRunAfter({ ...every, status: { lastScheduleTime: '2026-11-29T03:00:00Z' } }, now)).toBe(
      Date.parse('2026-11-29T05:00:00Z'),
    );
    expect(nextRunAfter(every, now)).toBe(Date.parse('2026-11-29T04:05:00Z'));
  });

  it('are named at the end of the AuditClean message, with the promotion that waits when it is automatic', () => {
    const audit = {
      since: T0,
      buckets: new Map<number, number>(),
      unauditable: new Map<number, number>(),
      samples: [],
    };
    const ids = ['a/CronJob/a', 'a/CronJob/b', 'a/CronJob/c', 'a/CronJob/d'];
    expect(auditVerdict(audit, T0 + 60_000, 60_000, 4, notRunNote(ids, true))).toMatchObject({
      clean: true,
      message:
        'no flow would have been blocked in the last 1m; 4 workload(s) saw no flow and will be cut off by the default deny once enforced (see status.unobservedWorkloads); 4 CronJob(s) have not finished a run since learning began, so their traffic is unknown and automatic promotion to Enforce waits for their next run: a/CronJob/a, a/CronJob/b, a/CronJob/c, and 1 more',
    });
    expect(notRunNote(['a/CronJob/a'], false)).toBe(
      '; 1 CronJob(s) have not finished a run since learning began, so their traffic is unknown: a/CronJob/a',
    );
    expect(notRunNote([], true)).toBe('');
    expect(promotionWaitingMessage({ to: 'Enforce', why: 'the audit has been clean for 24h' }, ids)).toBe(
      'promotion Audit → Enforce would be due (the audit has been clean for 24h), but waits for 4 CronJob(s) that have not finished a run since learning began, so their traffic is unknown: a/CronJob/a, a/CronJob/b, a/CronJob/c, and 1 more (see AuditClean)',
    );
  });
});

describe('modeDeclaredBy: who would put spec.mode back after a promotion', () => {
  const owns = (
    manager: string,
    operation: string,
    fields: Record<string, unknown>,
    subresource?: string,
  ) => ({
    manager,
    operation,
    ...(subresource ? { subresource } : {}),
    fieldsV1: fields,
  });
  it('a server-side apply manager other than microseg that owns spec.mode', () => {
    expect(
      modeDeclaredBy({
        managedFields: [owns('argocd', 'Apply', { 'f:spec': { 'f:mode': {}, 'f:namespaceSelector': {} } })],
      }),
    ).toBe('the server-side apply field manager "argocd"');
  });
  it('not an apply that leaves spec.mode out, an update (kubectl patch, edit), microseg itself or a status apply', () => {
    expect(
      modeDeclaredBy({
        managedFields: [
          owns('argocd', 'Apply', { 'f:spec': { 'f:namespaceSelector': {} } }),
          owns('kubectl-patch', 'Update', { 'f:spec': { 'f:mode': {} } }),
          owns('microseg', 'Apply', { 'f:spec': { 'f:mode': {} } }),
          owns('other', 'Apply', { 'f:spec': { 'f:mode': {} } }, 'status'),
        ],
      }),
    ).toBeUndefined();
  });
  it('a client-side kubectl apply whose last-applied configuration names spec.mode', () => {
    const annotations = (spec: unknown) => ({
      'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify({ spec }),
    });
    expect(modeDeclaredBy({ annotations: annotations({ mode: 'Learn' }) })).toBe(
      'client-side kubectl apply (annotation kubectl.kubernetes.io/last-applied-configuration)',
    );
    expect(modeDeclaredBy({ annotations: annotations({ namespaceSelector: {} }) })).toBeUndefined();
    expect(
      modeDeclaredBy({ annotations: { 'kubectl.kubernetes.io/last-applied-configuration': 'not json' } }),
    ).toBeUndefined();
  });
});

describe('commitDecision', () => {
  const shop = auditKey('shop', 'uid-1');
  const web = auditKey('web', 'uid-2');
  const noted = (checkpoint: string, audits: [string, number][]) => ({
    checkpoint,
    audits: new Map(audits),
  });

  it('commits the latest position whose audit results status holds, and keeps the later ones waiting', () => {
    const pending = [noted('t1', [[shop, 0]]), noted('t2', [[shop, 1]]), noted('t3', [[shop, 3]])];
    // Status holds the first change: t2 may be committed, t3 (two more changes) waits.
    expect(commitDecision(pending, new Map([[shop, 1]]))).toEqual({ commit: 't2', pending: [pending[2]] });
    // Status holds none of them: only t1, noted before the first change, may be.
    expect(commitDecision(pending, new Map([[shop, 0]]))).toEqual({
      commit: 't1',
      pending: pending.slice(1),
    });
    expect(commitDecision(pending.slice(1), new Map([[shop, 0]]))).toEqual({
      commit: undefined,
      pending: pending.slice(1),
    });
    expect(commitDecision(pending, new Map([[shop, 3]]))).toEqual({ commit: 't3', pending: [] });
  });

  it('waits for every Segmentation: one whose audit status holds does not commit past another one', () => {
    const pending = [
      noted('t1', [
        [shop, 2],
        [web, 1],
      ]),
    ];
    expect(
      commitDecision(
        pending,
        new Map([
          [shop, 2],
          [web, 0],
        ]),
      ).commit,
    ).toBeUndefined();
    expect(
      commitDecision(
        pending,
        new Map([
          [shop, 2],
          [web, 1],
        ]),
      ).commit,
    ).toBe('t1');
  });

  it('keeps nothing for a Segmentation no longer held (deleted, or another uid by its name)', () => {
    const pending = [noted('t1', [[shop, 5]])];
    expect(commitDecision(pending, new Map([[auditKey('shop', 'uid-9'), 0]])).commit).toBe('t1');
  });

  it('holds back at most MAX_PENDING_COMMITS positions, keeping the oldest and the newest', () => {
    const pending = Array.from({ length: MAX_PENDING_COMMITS + 3 }, (_, i) =>
      noted(`t${i}`, [[shop, i + 1]]),
    );
    const { commit, pending: rest } = commitDecision(pending, new Map([[shop, 0]]));
    expect(commit).toBeUndefined();
    expect(rest.map((p) => p.checkpoint)).toEqual([
      't0',
      ...pending.slice(-(MAX_PENDING_COMMITS - 1)).map((p) => p.checkpoint),
    ]);
  });
});
