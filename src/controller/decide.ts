/**
 * Pure decisions of the Segmentation controller: which namespaces a Segmentation covers, whether the
 * audit is clean, whether Enforce may proceed, whether to promote, and the conditions and Events that
 * describe the result. No I/O; time is an argument.
 */
import type { Namespace } from '../model/k8s.ts';
import { compareText, firstOf } from '../model/order.ts';
import { matchesSelector } from '../model/selectors.ts';
import { NAMESPACE_NAME_LABEL, SYSTEM_NAMESPACES } from '../policy/index.ts';
import type {
  BlockedFlowSample,
  Condition,
  Mode,
  ProposalInputs,
  Segmentation,
  SegmentationSpec,
  SegmentationStatus,
} from './api.ts';
import { FIELD_MANAGER, formatDuration } from './api.ts';
import type { ConditionType } from './reasons.ts';
import { Condition as C, Reason } from './reasons.ts';

/** Sets (adds or replaces) one condition; lastTransitionTime changes only when status changes. */
export function setCondition(
  conditions: readonly Condition[],
  c: { type: ConditionType; status: Condition['status']; reason: string; message: string },
  now: string,
  generation?: number,
): Condition[] {
  const old = conditions.find((x) => x.type === c.type);
  const next: Condition = {
    type: c.type,
    status: c.status,
    reason: c.reason,
    message: c.message,
    lastTransitionTime: old && old.status === c.status ? old.lastTransitionTime : now,
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
  };
  const order: string[] = Object.values(C);
  return [...conditions.filter((x) => x.type !== c.type), next].sort(
    (a, b) => order.indexOf(a.type) - order.indexOf(b.type),
  );
}

export function findCondition(
  conditions: readonly Condition[] | undefined,
  type: ConditionType,
): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

/**
 * Whether `selector` names namespace `ns` by its `kubernetes.io/metadata.name` label: in `matchLabels`,
 * or in the values of an `In` requirement on that key. A selector that only happens to match it (`{}`,
 * a `NotIn` on the name, a label the namespace carries) does not name it.
 */
export function namesNamespace(selector: SegmentationSpec['namespaceSelector'], ns: string): boolean {
  return (
    selector.matchLabels?.[NAMESPACE_NAME_LABEL] === ns ||
    (selector.matchExpressions ?? []).some(
      (r) => r.key === NAMESPACE_NAME_LABEL && r.operator === 'In' && (r.values ?? []).includes(ns),
    )
  );
}

/** The namespaces a selector matches, on their labels and their name label, but for those being deleted. */
function matching(
  selector: SegmentationSpec['namespaceSelector'],
  namespaces: readonly Namespace[],
): string[] {
  return namespaces
    .filter((ns) => !ns.metadata.deletionTimestamp)
    .filter((ns) =>
      matchesSelector(selector, {
        ...(ns.metadata.labels ?? {}),
        [NAMESPACE_NAME_LABEL]: ns.metadata.name,
      }),
    )
    .map((ns) => ns.metadata.name)
    .sort();
}

/** Why a namespace a selector matches is not covered unless the selector names it (`namesNamespace`). */
export type SetApartReason = 'system' | 'own';

/** A namespace a selector matches but does not cover, and why (see `selectNamespaces`). */
export interface LeftOutNamespace {
  namespace: string;
  reason: SetApartReason;
}

/**
 * Why namespace `ns` is set apart, if it is: `own` for the controller's own namespace (`own`), `system`
 * for a Kubernetes system namespace (`SYSTEM_NAMESPACES`); undefined for any other.
 */
function setApart(ns: string, own: string | undefined): SetApartReason | undefined {
  if (ns === own) return 'own';
  return SYSTEM_NAMESPACES.includes(ns) ? 'system' : undefined;
}

/**
 * Namespaces a selector chooses: those it matches, but for the set-apart ones it does not name
 * (`namesNamespace`). Set apart are the Kubernetes system namespaces (kube-system, kube-public,
 * kube-node-lease: a learned default deny there would cut every namespace created after learning off
 * cluster DNS, and break metrics-server and the API server's webhooks) and the controller's own
 * namespace (`own`, where its webhooks, push endpoint and page are served: a learned default deny
 * there would cut off the incident path unless every caller had been observed during learning). So
 * `{}`, a `NotIn` on the name or a label they carry leaves them out; `matchLabels` with the name, or an
 * `In` listing it, covers them.
 */
export function selectNamespaces(
  selector: SegmentationSpec['namespaceSelector'],
  namespaces: readonly Namespace[],
  own?: string,
): string[] {
  return matching(selector, namespaces).filter(
    (ns) => setApart(ns, own) === undefined || namesNamespace(selector, ns),
  );
}

/**
 * The namespaces the selector matches but, being set apart and not named, does not choose (see
 * `selectNamespaces`), each with why, for the `Valid` message to name; sorted by name.
 */
export function namespacesLeftOut(
  selector: SegmentationSpec['namespaceSelector'],
  namespaces: readonly Namespace[],
  own?: string,
): LeftOutNamespace[] {
  return matching(selector, namespaces).flatMap((ns) => {
    const reason = setApart(ns, own);
    return reason !== undefined && !namesNamespace(selector, ns) ? [{ namespace: ns, reason }] : [];
  });
}

/** True when `a` was created before `b` (ties broken by name): the older Segmentation keeps a namespace. */
export function olderThan(a: Segmentation, b: Segmentation): boolean {
  const ta = a.metadata.creationTimestamp ?? '';
  const tb = b.metadata.creationTimestamp ?? '';
  return ta !== tb ? ta < tb : a.metadata.name < b.metadata.name;
}

/**
 * Namespaces `me` selects that an older valid Segmentation already covers: `[namespace, owner]`. An
 * older Segmentation is valid, and so covers its namespaces, only when no Segmentation older still
 * covers one of them; one that is itself in conflict covers nothing and blocks no newer one. `others`
 * are the Segmentations with a valid spec (any order; the result does not depend on it).
 */
export function namespaceConflicts(
  me: Segmentation,
  mine: readonly string[],
  others: readonly { seg: Segmentation; namespaces: readonly string[] }[],
): [string, string][] {
  const older = others
    .filter((o) => o.seg.metadata.name !== me.metadata.name && olderThan(o.seg, me))
    .sort((a, b) => (olderThan(a.seg, b.seg) ? -1 : 1));
  // Oldest first: each one covers its namespaces only when none is covered by one before it.
  const covered = new Map<string, string>();
  for (const o of older) {
    if (o.namespaces.some((ns) => covered.has(ns))) continue;
    for (const ns of o.namespaces) covered.set(ns, o.seg.metadata.name);
  }
  const out: [string, string][] = [];
  for (const ns of new Set(mine)) {
    const owner = covered.get(ns);
    if (owner !== undefined) out.push([ns, owner]);
  }
  return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : 1));
}

/** What each reason for leaving a matched namespace out says, singular and plural. */
const LEFT_OUT_WHY: Record<SetApartReason, [string, string]> = {
  own: [
    "the controller's own namespace (its webhooks, flow push endpoint and page)",
    "the controller's own namespace (its webhooks, flow push endpoint and page)",
  ],
  system: [
    'a Kubernetes system namespace (cluster DNS and add-ons every namespace relies on)',
    'Kubernetes system namespaces (cluster DNS and add-ons every namespace relies on)',
  ],
};

/**
 * The `Valid` message of a valid Segmentation, plain about covering no namespace at all, and naming
 * every namespace the selector matches but does not cover (`leftOut`, from `namespacesLeftOut`), with
 * why: the controller's own namespace first, then the system ones.
 */
export function coverageMessage(
  namespaces: readonly string[],
  leftOut: readonly LeftOutNamespace[] = [],
): string {
  const groups = (['own', 'system'] as const).flatMap((reason) => {
    const names = leftOut
      .filter((l) => l.reason === reason)
      .map((l) => l.namespace)
      .sort(compareText);
    if (names.length === 0) return [];
    const one = names.length === 1;
    return [
      `${one ? 'namespace' : 'namespaces'} ${names.join(', ')}, not covered: ${LEFT_OUT_WHY[reason][one ? 0 : 1]}, ` +
        `covered only by a selector that names ${one ? 'it' : 'them'} by ${NAMESPACE_NAME_LABEL}`,
    ];
  });
  if (groups.length === 0)
    return namespaces.length > 0
      ? `covers ${namespaces.length} namespace(s)`
      : 'covers no namespace: spec.namespaceSelector matches none, so nothing is learned, proposed or enforced until a namespace matches';
  const named = groups.join('; and ');
  return namespaces.length > 0
    ? `covers ${namespaces.length} namespace(s); spec.namespaceSelector also matches ${named}`
    : `covers no namespace: spec.namespaceSelector matches only ${named}; nothing is learned, proposed or enforced until another namespace matches`;
}

/**
 * Whether a valid Segmentation that covers no namespace is announced now, by a `NoNamespaces` Warning
 * Event: once per change, not at every resync. It is news unless the status written last (`old`)
 * already showed this generation of the spec valid and covering no namespace; the status, not memory,
 * so a new leader does not announce again what was announced.
 */
export function noNamespacesAnnouncement(
  old: { observedGeneration?: number; namespaces?: readonly string[]; conditions?: readonly Condition[] },
  generation: number | undefined,
  namespaces: readonly string[],
): boolean {
  if (namespaces.length > 0) return false;
  const wasValid = findCondition(old.conditions, C.Valid)?.status === 'True';
  return !(wasValid && (old.namespaces?.length ?? 0) === 0 && old.observedGeneration === generation);
}

/**
 * Audit state: would-be-blocked flow counts per time bucket (bucket start in epoch seconds → count),
 * unauditable flow counts bucketed the same way, plus recent samples. Buckets are a sixtieth of the
 * audit window (at least one second) wide, so the status stays small whatever the window.
 */
export interface AuditState {
  since: number;
  buckets: Map<number, number>;
  /** Flows the audit could not check (an end it cannot place), per bucket like `buckets`. */
  unauditable: Map<number, number>;
  lastBlocked?: number;
  samples: BlockedFlowSample[];
}

/** Width of one audit bucket for a window, in ms. */
export const bucketWidthMs = (windowMs: number): number =>
  Math.max(1000, Math.ceil(windowMs / 60 / 1000) * 1000);

/** Start (epoch seconds) of the bucket holding time `ms`. */
export const bucketOf = (ms: number, windowMs: number): number => {
  const w = bucketWidthMs(windowMs);
  return (Math.floor(ms / w) * w) / 1000;
};

/** Flows counted in buckets overlapping the window (now - window, now]: would-be-blocked or unauditable. */
export function wouldBlockInWindow(
  buckets: ReadonlyMap<number, number>,
  now: number,
  windowMs: number,
): number {
  const w = bucketWidthMs(windowMs);
  let n = 0;
  for (const [start, c] of buckets) if (start * 1000 + w > now - windowMs) n += c;
  return n;
}

/**
 * The audit results a Hubble position covers: per Segmentation (`auditKey`), how many changes its audit
 * held in memory had had when the position was noted (every flow acknowledged up to the position was
 * audited by then).
 */
export type AuditMark = ReadonlyMap<string, number>;

/** The key of a Segmentation's audit in an `AuditMark`: its name and uid (a new one audits afresh). */
export const auditKey = (name: string, uid: string): string => `${name}\u0000${uid}`;

/** A Hubble position noted at a persist (the learned graphs persisted up to it), not committed yet. */
export interface PendingCommit<C> {
  checkpoint: C;
  audits: AuditMark;
}

/** Positions held back at most; beyond it the second oldest is dropped (the oldest is nearest to committing). */
export const MAX_PENDING_COMMITS = 8;

/**
 * Which noted position (`pending`, oldest first) the leader may commit, as the one the next leader
 * resumes from after a crash: the latest whose audit results status holds (`written`: per Segmentation
 * held in memory, how many changes of its audit the status written holds). A Segmentation no longer held
 * (deleted, or another by the same name) has nothing to keep. A position past an audit result that
 * status does not hold is not committed: after a crash the next leader, resuming from it, would never be
 * sent the flow again, and would restore an audit from status without it (a would-be-blocked flow lost,
 * AuditClean True over it). It waits until a reconcile has written that result; `pending` is what still
 * waits.
 */
export function commitDecision<C>(
  pending: readonly PendingCommit<C>[],
  written: ReadonlyMap<string, number>,
): { commit: C | undefined; pending: PendingCommit<C>[] } {
  const holds = (p: PendingCommit<C>) =>
    [...p.audits].every(([key, changes]) => {
      const w = written.get(key);
      return w === undefined || w >= changes;
    });
  let last = -1;
  for (let i = 0; i < pending.length; i++) if (holds(pending[i]!)) last = i;
  const rest = pending.slice(last + 1);
  while (rest.length > MAX_PENDING_COMMITS) rest.splice(1, 1);
  return { commit: last >= 0 ? pending[last]!.checkpoint : undefined, pending: rest };
}

export function pruneBuckets(buckets: Map<number, number>, now: number, windowMs: number): void {
  const w = bucketWidthMs(windowMs);
  for (const start of [...buckets.keys()]) if (start * 1000 + w <= now - windowMs) buckets.delete(start);
}

export interface AuditVerdict {
  clean: boolean;
  wouldBlock: number;
  /** Flows inside the window the audit could not check; they do not make it unclean. */
  unauditable: number;
  reason: string;
  message: string;
}

/** CronJobs (`notRun`, see cronJobsNotRunSince) whose traffic is unknown, for messages. */
const notRunCount = (notRun: readonly string[]): string =>
  `${notRun.length} CronJob(s) have not finished a run since learning began, so their traffic is unknown`;

/**
 * What AuditClean's message says of CronJobs that have not finished a run since learning began
 * (`notRun`); `waits`: automatic promotion to Enforce is what waits for them (in Audit, when automatic).
 */
export function notRunNote(notRun: readonly string[], waits: boolean): string {
  if (notRun.length === 0) return '';
  return (
    `; ${notRunCount(notRun)}` +
    `${waits ? ' and automatic promotion to Enforce waits for their next run' : ''}: ${firstOf(notRun, 3)}`
  );
}

/** The `PromotionWaiting` Event of a promotion to Enforce due but for CronJobs that have not run. */
export function promotionWaitingMessage(due: { to: Mode; why: string }, notRun: readonly string[]): string {
  return (
    `promotion Audit → ${due.to} would be due (${due.why}), but waits for ${notRun.length} CronJob(s) that ` +
    `have not finished a run since learning began, so their traffic is unknown: ${firstOf(notRun, 3)} (see AuditClean)`
  );
}

/** What the default deny does to `n` workloads no observed flow reaches or leaves, once enforced. */
export const unobservedNote = (n: number): string =>
  `${n} workload(s) saw no flow and will be cut off by the default deny once enforced`;

/**
 * AuditClean: the audit ran for at least the window and saw no would-be-blocked flow in it. Flows it
 * could not check in the window leave it clean (they were not found blocked, and an end with no pod
 * may stay so for as long as its workload is scaled to zero), but every message names their count.
 * So does it name the workloads of the live analysis no observed flow reaches or leaves (`unobserved`):
 * they make no flow to audit (a CronJob between runs), and the default deny alone selects them, which
 * cuts them off once enforced; a workload idle on purpose is least privilege, so they do not make it
 * unclean either.
 */
export function auditVerdict(
  audit: AuditState | undefined,
  now: number,
  windowMs: number,
  unobserved = 0,
  notRun = '',
): AuditVerdict {
  if (!audit)
    return {
      clean: false,
      wouldBlock: 0,
      unauditable: 0,
      reason: Reason.AuditNotRunning,
      message: 'no audit has run: set spec.mode to Audit',
    };
  const wouldBlock = wouldBlockInWindow(audit.buckets, now, windowMs);
  const unauditable = wouldBlockInWindow(audit.unauditable, now, windowMs);
  const unchecked =
    (unauditable > 0 ? `; ${unauditable} flow(s) could not be audited (see status.unauditable)` : '') +
    (unobserved > 0 ? `; ${unobservedNote(unobserved)} (see status.unobservedWorkloads)` : '') +
    notRun;
  if (wouldBlock > 0)
    return {
      clean: false,
      wouldBlock,
      unauditable,
      reason: Reason.FlowsWouldBeBlocked,
      message: `${wouldBlock} flow(s) in the last ${formatDuration(windowMs)} would be blocked by the proposal${unchecked}`,
    };
  const ran = now - audit.since;
  if (ran < windowMs)
    return {
      clean: false,
      wouldBlock,
      unauditable,
      reason: Reason.AuditWindowOpen,
      message: `no flow would be blocked so far; the ${formatDuration(windowMs)} audit window started at ${new Date(audit.since).toISOString()}${unchecked}`,
    };
  return {
    clean: true,
    wouldBlock,
    unauditable,
    reason: Reason.NoBlockedFlows,
    message: `no flow would have been blocked in the last ${formatDuration(windowMs)}${unchecked}`,
  };
}

/**
 * Whether the flows the audit could not check are announced now, by a Warning Event: when their count
 * in the window (`unauditable`) rises from zero, or to at least twice the count the last such Event
 * gave (`announced`). A steady stream of them (a workload scaled to zero that clients still call)
 * fills the window for as long as it lasts, and an Event at every rise would be one per reconcile;
 * doubling makes it a few per episode. `announced` is what the next call compares with: the count
 * announced, kept while any is left in the window, zero once none is (a new episode).
 */
export function unauditableAnnouncement(
  announced: number,
  unauditable: number,
): { announce: boolean; announced: number } {
  if (unauditable <= 0) return { announce: false, announced: 0 };
  if (announced <= 0 || unauditable >= 2 * announced) return { announce: true, announced: unauditable };
  return { announce: false, announced };
}

/** The workloads of the live analysis no observed flow reaches or leaves: their count, the first listed. */
export interface Unobserved {
  count: number;
  workloads: readonly string[];
}

/**
 * Whether the workloads no observed flow reaches or leaves are announced now, by an `Unobserved`
 * Warning Event: when their count rises from zero, and when the set changes while in Audit (the last
 * chance to see them before Enforce cuts them off). `before` is what the status written last gave, so
 * a resync that finds the same set says nothing, and a new leader does not announce again what was.
 * The set is compared as listed (at most the first 100) together with its count.
 */
export function unobservedAnnouncement(before: Unobserved, after: Unobserved, auditing: boolean): boolean {
  if (after.count <= 0) return false;
  if (before.count <= 0) return true;
  return (
    auditing &&
    (before.count !== after.count ||
      before.workloads.length !== after.workloads.length ||
      before.workloads.some((w, i) => w !== after.workloads[i]))
  );
}

/** The `Unobserved` Event's message: the count, and the first few workloads. */
export function unobservedMessage(u: Unobserved): string {
  return `${unobservedNote(u.count)}: ${firstOf(u.workloads, 3, u.count)} (see status.unobservedWorkloads)`;
}

/**
 * Whether the flows the proposal would block are announced now, by a Warning Event: when their count in
 * the window (`wouldBlock`) rises from zero, when it reaches twice the count the last such Event gave
 * (`announced`), or when a connection (source, destination, protocol and port) not announced since the
 * count was last zero is among them (`news`): a steady stream of one blocked connection fills the
 * window reconcile by reconcile, and an Event at every rise was one per reconcile; a connection blocked
 * for the first time is news however many others are. `announced` is what the next call compares with.
 */
export function wouldBlockAnnouncement(
  announced: number,
  wouldBlock: number,
  news: boolean,
): { announce: boolean; announced: number } {
  const r = unauditableAnnouncement(announced, wouldBlock);
  if (!r.announce && news && wouldBlock > 0) return { announce: true, announced: wouldBlock };
  return r;
}

export interface EnforceGate {
  allowed: boolean;
  reason: string;
  message: string;
}

/**
 * Whether Enforce may apply policies. Once enforcing, it keeps enforcing (the audit keeps counting for
 * visibility). Otherwise it needs a clean audit, or spec.enforce.force. Enforcing with the force while
 * the audit is not clean is said so (`EnforceForced`, with the audit result) at every reconcile, not
 * only at the one that began it; enforcing on without it (the force unset since, or an audit clean at the
 * start that is no longer) is `PoliciesApplied` with the audit result.
 */
export function enforceGate(opts: {
  alreadyEnforced: boolean;
  force: boolean;
  audit: AuditVerdict;
}): EnforceGate {
  if (opts.audit.clean)
    return { allowed: true, reason: Reason.PoliciesApplied, message: 'the proposal is enforced' };
  // Enforcing on without the force (unset since, or the audit was clean when it began): the audit result
  // is said, or the Event of EnforceForced turning PoliciesApplied would read as a clean audit.
  if (opts.alreadyEnforced && !opts.force)
    return {
      allowed: true,
      reason: Reason.PoliciesApplied,
      message: `the proposal is enforced, although the audit is not clean: ${opts.audit.message} (once enforcing, it keeps enforcing; spec.mode: Audit withdraws it)`,
    };
  if (opts.force)
    return {
      allowed: true,
      reason: Reason.EnforceForced,
      message: `enforced with spec.enforce.force although the audit is not clean: ${opts.audit.message}`,
    };
  return {
    allowed: false,
    reason: Reason.EnforceRefused,
    message: `Enforce refused: ${opts.audit.message}; wait for AuditClean or set spec.enforce.force: true`,
  };
}

/**
 * Whether the Segmentation was enforcing when its status was written: in Enforce mode with the proposal
 * applied, in full or in part. A policy skipped for a name conflict leaves `Enforced` False (reason
 * `PolicyNameConflict`) while the others stay applied, so this looks at the reason, not the status: only
 * a refusal (`EnforceRefused`) or another mode (`NotEnforcing`) means nothing was applied.
 */
export function wasEnforcing(
  status: Pick<SegmentationStatus, 'mode' | 'conditions' | 'enforcedPolicies'> | undefined,
): boolean {
  if (status?.mode !== 'Enforce') return false;
  const c = findCondition(status.conditions, C.Enforced);
  if (c === undefined || c.reason === Reason.EnforceRefused || c.reason === Reason.NotEnforcing) return false;
  // Applies that all failed put nothing in place: not enforcing yet, so the gate is asked again.
  if (c.reason === Reason.ApplyFailed) return (status.enforcedPolicies ?? 0) > 0;
  return true;
}

/**
 * Whether the learned edges unused for `learning.ruleExpiry` stay, for now, instead of aging out: while
 * a Segmentation that was enforcing (`wasEnforcing`) has its proposal still being written in Enforce
 * (`stillWritten`: one of its ProposedNetworkPolicies refused, not taken, not deleted or its name held,
 * over a frozen proposal in scope). Such a proposal follows the live analysis, and what it applies is
 * enforced at once: an edge aging out would take its allow out of an enforced NetworkPolicy and block
 * traffic that was allowed and observed, without an audit. Kept, the edges' rules are in the proposal
 * frozen once it is written in full, and age out of the learned graph then; they leave what is enforced
 * only through a proposal made afresh (Learn) and audited.
 */
export function keepsAgedEdges(
  mode: Mode,
  stillWritten: boolean,
  old: Pick<SegmentationStatus, 'mode' | 'conditions' | 'enforcedPolicies'> | undefined,
): boolean {
  return mode === 'Enforce' && stillWritten && wasEnforcing(old);
}

/** The spec fields (`learning.minFlows`, `policy.*`) an analysis makes the proposal from. */
export function proposalInputsOf(spec: Pick<SegmentationSpec, 'learning' | 'policy'>): ProposalInputs {
  const { defaultDeny, includeDropped, worldIngress } = spec.policy;
  return { minFlows: spec.learning.minFlows, defaultDeny, includeDropped, worldIngress };
}

/**
 * `status.proposal.inputs` as written, or undefined when it is absent (a status of an earlier microseg)
 * or not whole.
 */
export function recordedProposalInputs(
  status: Pick<SegmentationStatus, 'proposal'> | undefined,
): ProposalInputs | undefined {
  const i = status?.proposal?.inputs as Partial<ProposalInputs> | undefined;
  return i !== undefined &&
    typeof i.minFlows === 'number' &&
    Number.isInteger(i.minFlows) &&
    i.minFlows >= 1 &&
    typeof i.defaultDeny === 'boolean' &&
    typeof i.includeDropped === 'boolean' &&
    (i.worldIngress === 'any' || i.worldIngress === 'observed')
    ? {
        minFlows: i.minFlows,
        defaultDeny: i.defaultDeny,
        includeDropped: i.includeDropped,
        worldIngress: i.worldIngress,
      }
    : undefined;
}

/**
 * The spec fields the analysis is made from now: while an enforcing Segmentation's proposal is still
 * being written (`keepsAgedEdges`), those the proposal in place was made from (`recorded`,
 * status.proposal.inputs), as what a change of them took out of the proposal would leave what is
 * enforced at once, unaudited; they stay until the proposal is written in full and frozen. Otherwise,
 * or when none was recorded (a status of an earlier microseg), the spec's.
 */
export function analysisInputs(
  spec: Pick<SegmentationSpec, 'learning' | 'policy'>,
  keepsWritten: boolean,
  recorded: ProposalInputs | undefined,
): ProposalInputs {
  return keepsWritten && recorded !== undefined ? recorded : proposalInputsOf(spec);
}

/** The spec with the analysis inputs `inputs` in place of its own. */
export function withInputs<S extends Pick<SegmentationSpec, 'learning' | 'policy'>>(
  spec: S,
  inputs: ProposalInputs,
): S {
  const { minFlows, ...policy } = inputs;
  return { ...spec, learning: { ...spec.learning, minFlows }, policy: { ...spec.policy, ...policy } };
}

/** The fields of `before` that differ in `now`: name, value before, value now. */
function changedInputs(before: ProposalInputs, now: ProposalInputs): [string, string, string][] {
  const fields: [string, unknown, unknown][] = [
    ['learning.minFlows', before.minFlows, now.minFlows],
    ['policy.defaultDeny', before.defaultDeny, now.defaultDeny],
    ['policy.includeDropped', before.includeDropped, now.includeDropped],
    ['policy.worldIngress', before.worldIngress, now.worldIngress],
  ];
  return fields.filter(([, a, b]) => a !== b).map(([f, a, b]) => [f, String(a), String(b)]);
}

/** The fields of `before` that differ in `now`, each with both values (`learning.minFlows (1 → 2)`). */
export function proposalInputsChanged(before: ProposalInputs, now: ProposalInputs): string[] {
  return changedInputs(before, now).map(([f, a, b]) => `${f} (${a} → ${b})`);
}

/** The Warning `SpecChangeDeferred` of a change of the fields `proposalInputsChanged` names. */
export function deferredChangeMessage(before: ProposalInputs, now: ProposalInputs): string {
  const changed = proposalInputsChanged(before, now);
  const kept = changedInputs(before, now).map(([f, a]) => `${f} ${a}`);
  return `spec ${changed.join(', ')} changed while the proposal of this enforcing Segmentation is still being written (see Enforced and ProposalStable): it is written, and enforced, as made with ${kept.join(', ')} (status.proposal.inputs) until it is in place in full, so that the change takes no allow out of what is enforced without an audit; frozen then, it keeps them, and the change takes effect when the proposal is next made from the spec: at once if the Segmentation is set back to Audit while its proposal is still being written (nothing is enforced then), else once it is set back to Learn and its proposal promoted again`;
}

/** What `Enforced` says of such a change while it waits (`deferredChangeMessage`). */
export function deferredChangeNote(before: ProposalInputs, now: ProposalInputs): string {
  const changed = proposalInputsChanged(before, now);
  return changed.length > 0
    ? `; spec ${changed.join(', ')} waits until the proposal is written in full (status.proposal.inputs)`
    : '';
}

/** What `Enforced` says of `kept` learned edges past `learning.ruleExpiry` kept (`keepsAgedEdges`). */
export function keptEdgesNote(kept: number, ruleExpiry: string): string {
  return kept > 0
    ? `; ${kept} learned edge(s) unused for ${ruleExpiry} are kept while the proposal is still being written, so that no allow enforced is withdrawn without an audit (they age out once it is written in full)`
    : '';
}

/**
 * The mode automatic promotion moves to now, if any. Not Enforce while a CronJob in scope has not run
 * since learning began (`notRun`, see cronJobsNotRunSince): the audit cannot have seen its traffic.
 * The condition counts only from when the Segmentation entered its mode (`modeSince`, status.modeSince):
 * a mode set back by hand (a rollback, Enforce → Learn in an incident) keeps conditions True since
 * before it, and counted from them the promotion would undo the rollback at once.
 */
export function promotionTarget(
  spec: SegmentationSpec,
  conditions: readonly Condition[],
  now: number,
  notRun: readonly string[] = [],
  modeSince = -Infinity,
): { to: Mode; message: string; why: string } | undefined {
  if (!spec.promotion.automatic) return undefined;
  const heldFor = (type: ConditionType): number => {
    const c = findCondition(conditions, type);
    return c?.status === 'True' ? now - Math.max(Date.parse(c.lastTransitionTime), modeSince) : -1;
  };
  const after = formatDuration(spec.promotion.afterMs);
  const to = (target: Mode, why: string) => ({
    to: target,
    message: `promoted ${spec.mode} → ${target}: ${why}`,
    why,
  });
  if (spec.mode === 'Learn' && heldFor(C.ProposalStable) >= spec.promotion.afterMs)
    return to('Audit', `the proposal has been stable for ${after}`);
  if (spec.mode === 'Audit' && notRun.length === 0 && heldFor(C.AuditClean) >= spec.promotion.afterMs)
    return to('Enforce', `the audit has been clean for ${after}`);
  return undefined;
}

/** The mode automatic promotion moves a Segmentation to from `mode`, if any. */
const nextMode = (mode: Mode): Mode | undefined =>
  mode === 'Learn' ? 'Audit' : mode === 'Audit' ? 'Enforce' : undefined;

/**
 * What status.modeSince is: when spec.mode became `mode` (a rollback), or, for a status an earlier
 * microseg wrote without the field, when an upgrade first recorded it; which of the two, the status does
 * not tell, so neither is claimed.
 */
const modeSinceWhy = (mode: Mode): string =>
  `when spec.mode became ${mode}, or when an upgrade first recorded it`;

/**
 * What the condition a promotion waits for (ProposalStable in Learn, AuditClean in Audit) says while it
 * held since before the Segmentation entered its mode (`since`, status.modeSince: a rollback), so the
 * promotion waits until `until` (`since` + promotion.after).
 */
export function modeWaitNote(mode: Mode, since: string, until: number): string {
  return `; automatic promotion to ${nextMode(mode) ?? mode} counts from status.modeSince, ${since} (${modeSinceWhy(mode)}), and waits until ${new Date(until).toISOString()}`;
}

/** The `PromotionWaiting` Event of a promotion due by its condition alone, but for a mode entered since. */
export function modeWaitMessage(
  from: Mode,
  due: { to: Mode; why: string },
  since: string,
  until: number,
): string {
  return `promotion ${from} → ${due.to} would be due (${due.why}), but automatic promotion counts from status.modeSince, ${since} (${modeSinceWhy(from)}), and waits until ${new Date(until).toISOString()}`;
}

/** The annotation client-side `kubectl apply` (and Argo CD's default sync) keeps what it applied in. */
export const LAST_APPLIED_ANNOTATION = 'kubectl.kubernetes.io/last-applied-configuration';

/** What `metadata.managedFields` holds per manager (only the parts read here). */
export interface ManagedFieldsEntry {
  manager?: string;
  operation?: string;
  subresource?: string;
  fieldsV1?: Record<string, unknown>;
}

/**
 * Who declares `spec.mode` of a Segmentation, when someone other than microseg does: a server-side apply
 * manager that owns the field (`kubectl apply --server-side`, Argo CD with server-side apply, Flux), or a
 * client-side `kubectl apply` (Argo CD's default sync) whose last-applied configuration names it. The
 * next apply from that source puts its mode back, so automatic promotion must not change it: the two
 * would take turns. A mode set by `kubectl patch` or `kubectl edit`, or left out of what is applied
 * (defaulted), is declared by no one.
 */
export function modeDeclaredBy(metadata: {
  managedFields?: readonly ManagedFieldsEntry[];
  annotations?: Record<string, string>;
}): string | undefined {
  for (const m of metadata.managedFields ?? []) {
    if (m.operation !== 'Apply' || m.subresource || m.manager === FIELD_MANAGER) continue;
    const specFields = m.fieldsV1?.['f:spec'] as Record<string, unknown> | undefined;
    if (specFields && 'f:mode' in specFields)
      return `the server-side apply field manager "${m.manager ?? ''}"`;
  }
  const last = metadata.annotations?.[LAST_APPLIED_ANNOTATION];
  if (last) {
    let applied: { spec?: { mode?: unknown } } | undefined;
    try {
      applied = JSON.parse(last) as typeof applied;
    } catch {
      applied = undefined;
    }
    if (applied?.spec?.mode !== undefined)
      return `client-side kubectl apply (annotation ${LAST_APPLIED_ANNOTATION})`;
  }
  return undefined;
}

/** The `PromotionDue` Event of a promotion not made because `spec.mode` is declared elsewhere. */
export function promotionDueMessage(
  from: Mode,
  target: { to: Mode; why: string },
  declaredBy: string,
): string {
  return `promotion ${from} → ${target.to} is due (${target.why}), but spec.mode is declared by ${declaredBy}, which would put it back: commit spec.mode: ${target.to} where it is declared (in Git)`;
}

export interface TransitionEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

/** One Event per condition whose status or reason changed. */
export function transitionEvents(
  before: readonly Condition[],
  after: readonly Condition[],
): TransitionEvent[] {
  const warnIfFalse = new Set<string>([C.Valid, C.Enforced]);
  const out: TransitionEvent[] = [];
  for (const c of after) {
    const b = before.find((x) => x.type === c.type);
    if (b && b.status === c.status && b.reason === c.reason) continue;
    if (!b && c.status !== 'True' && c.type !== C.Valid && c.type !== C.Enforced && c.type !== C.Degraded)
      continue;
    const warning =
      (c.type === C.Degraded && c.status === 'True') ||
      (warnIfFalse.has(c.type) && c.status === 'False' && c.reason !== Reason.NotEnforcing) ||
      c.reason === Reason.FlowsWouldBeBlocked ||
      c.reason === Reason.PolicyNameConflict;
    if (c.type === C.Degraded && c.status === 'False' && !b) continue;
    out.push({
      type: warning ? 'Warning' : 'Normal',
      reason: c.reason,
      message: `${c.type}=${c.status}: ${c.message}`,
    });
  }
  return out;
}

/**
 * When each of `selected` that joined the scope after the first reconcile joined it (namespace → RFC
 * 3339), from what the previous reconcile saw (`before`: its selection and join times; `reconciled`
 * false before the first reconcile, whose namespaces count from the Segmentation's creation). A
 * namespace selected before keeps its time; one new to the selection joins at `nowIso`; one that left
 * is dropped. Namespaces learned from the start are not listed.
 */
export function namespacesJoined(
  selected: readonly string[],
  before: { reconciled: boolean; namespaces: readonly string[]; joined: Readonly<Record<string, string>> },
  nowIso: string,
): Record<string, string> {
  const was = new Set(before.namespaces);
  const out: Record<string, string> = {};
  for (const ns of [...selected].sort(compareText)) {
    const t = before.joined[ns];
    if (was.has(ns) && t !== undefined) out[ns] = t;
    else if (before.reconciled && !was.has(ns)) out[ns] = nowIso;
  }
  return out;
}
