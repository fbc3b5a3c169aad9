/**
 * The microseg.dev/v1alpha1 API as TypeScript: object shapes, defaults and the one validation of a
 * Segmentation spec at the edge. The CRD schema (`crds.ts`) rejects what OpenAPI and CEL can express;
 * `parseSegmentationSpec` re-checks everything (a CR may predate a schema change, or arrive from a test
 * without the apiserver) and returns exact problem messages for the status.
 */
import type { KObject, LabelSelector, NetworkPolicySpec } from '../model/k8s.ts';
import { selectorLabelProblems, selectorLimitProblems, selectorProblem } from '../model/selectors.ts';

export const GROUP = 'microseg.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

/** Field manager of every server-side apply the controller makes. */
export const FIELD_MANAGER = 'microseg';
/** Label on every object microseg creates. */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'microseg';
/** Label naming the Segmentation an object belongs to. */
export const SEGMENTATION_LABEL = 'microseg.dev/segmentation';
/** Finalizer that lets the controller remove what it applied before a Segmentation disappears. */
export const FINALIZER = 'microseg.dev/cleanup';
/** Longest Segmentation name: derived object names (`<name>-edges-<n>`) must stay DNS labels. */
export const MAX_NAME_LENGTH = 40;

export type Mode = 'Learn' | 'Audit' | 'Enforce';
export const MODES: readonly Mode[] = ['Learn', 'Audit', 'Enforce'];

/** What a user writes (every field optional except namespaceSelector). */
export interface SegmentationSpecInput {
  namespaceSelector?: LabelSelector;
  mode?: string;
  learning?: { ruleExpiry?: string; stableAfter?: string; minFlows?: number };
  audit?: { window?: string; samples?: number };
  enforce?: { force?: boolean };
  promotion?: { automatic?: boolean; after?: string };
  policy?: { defaultDeny?: boolean; includeDropped?: boolean; worldIngress?: string };
}

/** The spec after defaults, durations in milliseconds. */
export interface SegmentationSpec {
  namespaceSelector: LabelSelector;
  mode: Mode;
  learning: { ruleExpiryMs: number; stableAfterMs: number; minFlows: number };
  audit: { windowMs: number; samples: number };
  enforce: { force: boolean };
  promotion: { automatic: boolean; afterMs: number };
  policy: { defaultDeny: boolean; includeDropped: boolean; worldIngress: 'any' | 'observed' };
}

export const DEFAULTS = {
  mode: 'Learn' as Mode,
  ruleExpiry: '168h',
  stableAfter: '1h',
  minFlows: 1,
  auditWindow: '1h',
  samples: 10,
  promotionAfter: '24h',
  maxSamples: 50,
} as const;

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export interface BlockedFlowSample {
  time: string;
  source: string;
  destination: string;
  protocol: string;
  port: number;
  count: number;
}

export interface SegmentStatus {
  name: string;
  kind: string;
  /** Workload ids (`namespace/Kind/name`), at most MAX_SEGMENT_MEMBERS. */
  members: string[];
  memberCount: number;
}

export interface SegmentationStatus {
  observedGeneration?: number;
  phase?: string;
  mode?: Mode;
  /** When the controller first acted in `mode` (RFC 3339): automatic promotion counts from then at the earliest. */
  modeSince?: string;
  namespaces?: string[];
  /** When each selected namespace not selected at the first reconcile joined (namespace → RFC 3339). */
  namespacesJoined?: Record<string, string>;
  workloads?: number;
  edges?: number;
  segmentCount?: number;
  policies?: number;
  enforcedPolicies?: number;
  wouldBlock?: number;
  /** Flows the frozen proposal could not be checked against (an end placed at no pod or address) inside the audit window. */
  unauditable?: number;
  /**
   * Workloads of the live analysis no observed flow reaches or leaves: only the default deny selects
   * them, which cuts them off once enforced (a CronJob between runs, a Deployment scaled to zero).
   */
  unobserved?: number;
  /** Those workloads as namespace/Kind/name, sorted, at most 100 listed. */
  unobservedWorkloads?: string[];
  flowsIngested?: number;
  conditions?: Condition[];
  segments?: SegmentStatus[];
  proposal?: {
    hash: string;
    since: string;
    /**
     * The spec fields the proposal in place was made from (`learning.minFlows`, `policy.*`): those of
     * the spec when it was last written, kept while an enforcing Segmentation's proposal is still being
     * written (a change of them then waits until it is frozen) and while it is frozen.
     */
    inputs?: ProposalInputs;
  };
  audit?: {
    since: string;
    /** Would-be-blocked flows per time bucket (bucket start in epoch seconds → count), inside the audit window. */
    buckets?: Record<string, number>;
    /** Unauditable flows per time bucket, keyed like `buckets`, inside the audit window. */
    unauditableBuckets?: Record<string, number>;
    lastBlocked?: string;
    samples?: BlockedFlowSample[];
  };
  lastChange?: { time: string; message: string };
}

/** The spec fields an analysis makes the proposal from that can take an allow out of it. */
export interface ProposalInputs {
  minFlows: number;
  defaultDeny: boolean;
  includeDropped: boolean;
  worldIngress: SegmentationSpec['policy']['worldIngress'];
}

export interface Segmentation extends KObject {
  metadata: KObject['metadata'] & { finalizers?: string[] };
  spec?: SegmentationSpecInput;
  status?: SegmentationStatus;
}

export interface RuleEvidenceStatus {
  direction: 'ingress' | 'egress';
  peer: string;
  protocol: string;
  port: number | string;
  count: number;
  firstSeen: string;
  lastSeen: string;
}

export interface ProposedNetworkPolicy extends KObject {
  spec: NetworkPolicySpec;
  status?: {
    rules?: number;
    evidence?: RuleEvidenceStatus[];
    evidenceTruncated?: number;
    /**
     * The labels and annotations microseg set on the object's metadata, kept where an edit of the
     * metadata does not reach: a frozen proposal's are repaired from it (see `frozenProposed`).
     */
    owned?: OwnedMetadata;
  };
}

/** Labels and annotations microseg sets on an object's metadata. */
export interface OwnedMetadata {
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** One learned edge as persisted: peers are graph node ids. */
export interface PersistedEdge {
  src: string;
  dst: string;
  protocol: string;
  port: number;
  count: number;
  firstSeen: string;
  lastSeen: string;
  dropped?: number;
  /** See EdgeEvidence.shared: flows of `count` other edges hold too, by the connection as observed. */
  shared?: Record<string, number>;
}

/**
 * A workload known only from flows (a pod the cluster does not have) that edges of a shard have: its id
 * (`namespace/Kind/name`) and the labels its flows gave, so that a controller that restores the graph
 * (restarted, or a new leader) places it, and selects it, as the one that learned it did.
 */
export interface PersistedWorkload {
  id: string;
  labels: Record<string, string>;
}

export interface LearnedEdgeSet extends KObject {
  spec: {
    segmentation: string;
    shard: number;
    shards: number;
    edges: PersistedEdge[];
    /** Absent when no edge of the shard has a workload known only from flows. */
    workloads?: PersistedWorkload[];
  };
}

const DURATION_RE = /^(?:[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h))+$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses a Go-style duration (`90s`, `15m`, `1h30m`) into milliseconds; undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  if (!DURATION_RE.test(text)) return undefined;
  let total = 0;
  for (const m of text.matchAll(/([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)/g)) total += Number(m[1]) * UNIT_MS[m[2]!]!;
  return Math.round(total);
}

const UNIT_NS: Record<string, bigint> = {
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};
const TWO_63 = 1n << 63n;

/**
 * The longest duration the API server's CEL `duration()` takes (Go's `time.ParseDuration`: a duration
 * is an int64 of nanoseconds), as Go prints it.
 */
export const MAX_DURATION = '2562047h47m16.854775807s';
/** Longest duration text the CRDs take (`maxLength`), in characters. */
export const MAX_DURATION_TEXT = 32;

/**
 * The nanoseconds of a well-formed duration (see `parseDuration`) exactly as the API server's CEL
 * `duration()` reads it (Go's `time.ParseDuration`: each part's fraction through a float64, cut to the
 * nanosecond), or undefined when that refuses it as too long (more than 2^63-1 nanoseconds). The CRDs'
 * rules compare these exactly, so the parsers compare them too, not the rounded milliseconds: `59.9999s`
 * is shorter than 1m, and `59.999999999999999999s`, which Go reads as 60s, is not.
 */
export function durationNanos(text: string): bigint | undefined {
  let total = 0n;
  for (const m of text.matchAll(/([0-9]+)(?:\.([0-9]+))?(ms|s|m|h)/g)) {
    const unit = UNIT_NS[m[3]!]!;
    let v = BigInt(m[1]!);
    if (v > TWO_63 || v > TWO_63 / unit) return undefined;
    v *= unit;
    // The fraction's digits while they fit in an int64 (Go ignores the rest), and its scale.
    let f = 0n;
    let scale = 1;
    for (const digit of m[2] ?? '') {
      if (f > (TWO_63 - 1n) / 10n) break;
      const next = f * 10n + BigInt(digit);
      if (next > TWO_63) break;
      f = next;
      scale *= 10;
    }
    if (f > 0n) {
      v += BigInt(Math.trunc(Number(f) * (Number(unit) / scale)));
      if (v > TWO_63) return undefined;
    }
    total += v;
    if (total > TWO_63) return undefined;
  }
  return total > TWO_63 - 1n ? undefined : total;
}

/** Whether CEL's `duration()` refuses a well-formed duration (see `parseDuration`) as too long. */
export function durationOverflows(text: string): boolean {
  return durationNanos(text) === undefined;
}

/** Whether a well-formed duration CEL takes is shorter than `minMs`, compared as the CRD rule does. */
export function durationShorterThan(text: string, minMs: number): boolean {
  const ns = durationNanos(text);
  return ns !== undefined && ns < BigInt(minMs) * 1_000_000n;
}

/** The problem of a duration `durationOverflows` finds too long, naming the field. */
export function durationTooLong(path: string, text: string): string {
  return `${path} ${JSON.stringify(text)} is longer than ${MAX_DURATION}, the longest duration Kubernetes takes`;
}

export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

export type SpecResult = { ok: true; spec: SegmentationSpec } | { ok: false; problems: string[] };

/**
 * Validates a Segmentation (name and spec) and fills defaults. Problems name the field and the value:
 * `spec.mode "Block" is not one of Learn, Audit, Enforce`.
 */
export function parseSegmentationSpec(name: string, input: unknown): SpecResult {
  const problems: string[] = [];
  if (name.length > MAX_NAME_LENGTH)
    problems.push(`metadata.name must be at most ${MAX_NAME_LENGTH} characters (has ${name.length})`);
  if (input === null || typeof input !== 'object' || Array.isArray(input))
    return { ok: false, problems: [...problems, 'spec is missing'] };
  const s = input as Record<string, unknown>;
  const section = (key: string): Record<string, unknown> => {
    const v = s[key];
    if (v === undefined) return {};
    if (v === null || typeof v !== 'object' || Array.isArray(v)) {
      problems.push(`spec.${key} must be an object`);
      return {};
    }
    return v as Record<string, unknown>;
  };
  // The text of each duration that is valid (given, or its default), for comparing them as CEL does.
  const valid = new Map<string, string>();
  const duration = (path: string, v: unknown, dflt: string, minMs: number): number => {
    if (v === undefined) {
      valid.set(path, dflt);
      return parseDuration(dflt)!;
    }
    if (typeof v !== 'string') {
      problems.push(`${path} must be a duration string such as "1h"`);
      return 0;
    }
    const ms = parseDuration(v);
    const chars = [...v].length;
    if (chars > MAX_DURATION_TEXT)
      problems.push(`${path} must be at most ${MAX_DURATION_TEXT} characters (has ${chars})`);
    else if (ms === undefined)
      problems.push(`${path} ${JSON.stringify(v)} is not a duration such as "90s", "15m" or "1h30m"`);
    else if (durationOverflows(v)) problems.push(durationTooLong(path, v));
    // Compared to the nanosecond, as the CRD's rule does (`59.9999s` is 60000 ms rounded, but short of 1m).
    else if (durationShorterThan(v, minMs))
      problems.push(`${path} ${JSON.stringify(v)} is shorter than ${formatDuration(minMs)}`);
    else valid.set(path, v);
    return ms ?? 0;
  };
  const int = (path: string, v: unknown, dflt: number, min: number, max: number): number => {
    if (v === undefined) return dflt;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      problems.push(`${path} must be an integer from ${min} to ${max} (got ${JSON.stringify(v)})`);
      return dflt;
    }
    return v;
  };
  const bool = (path: string, v: unknown, dflt: boolean): boolean => {
    if (v === undefined) return dflt;
    if (typeof v !== 'boolean') {
      problems.push(`${path} must be true or false (got ${JSON.stringify(v)})`);
      return dflt;
    }
    return v;
  };

  let namespaceSelector: LabelSelector = {};
  if (s.namespaceSelector === undefined) problems.push('spec.namespaceSelector is required');
  else {
    const p = selectorProblem(s.namespaceSelector);
    const sel = s.namespaceSelector as LabelSelector;
    const labels = p ? [] : [...selectorLimitProblems(sel), ...selectorLabelProblems(sel)];
    if (p) problems.push(`spec.namespaceSelector: ${p}`);
    else if (labels.length > 0) problems.push(...labels.map((l) => `spec.namespaceSelector.${l}`));
    else namespaceSelector = s.namespaceSelector as LabelSelector;
  }
  let mode: Mode = DEFAULTS.mode;
  if (s.mode !== undefined) {
    if (typeof s.mode === 'string' && (MODES as readonly string[]).includes(s.mode)) mode = s.mode as Mode;
    else problems.push(`spec.mode ${JSON.stringify(s.mode)} is not one of ${MODES.join(', ')}`);
  }
  const learning = section('learning');
  const audit = section('audit');
  const enforce = section('enforce');
  const promotion = section('promotion');
  const policy = section('policy');
  let worldIngress: 'any' | 'observed' = 'any';
  if (policy.worldIngress !== undefined) {
    if (policy.worldIngress === 'any' || policy.worldIngress === 'observed')
      worldIngress = policy.worldIngress;
    else
      problems.push(
        `spec.policy.worldIngress ${JSON.stringify(policy.worldIngress)} is not one of any, observed`,
      );
  }
  const spec: SegmentationSpec = {
    namespaceSelector,
    mode,
    learning: {
      ruleExpiryMs: duration('spec.learning.ruleExpiry', learning.ruleExpiry, DEFAULTS.ruleExpiry, 60_000),
      stableAfterMs: duration('spec.learning.stableAfter', learning.stableAfter, DEFAULTS.stableAfter, 0),
      minFlows: int('spec.learning.minFlows', learning.minFlows, DEFAULTS.minFlows, 1, 1_000_000),
    },
    audit: {
      windowMs: duration('spec.audit.window', audit.window, DEFAULTS.auditWindow, 1000),
      samples: int('spec.audit.samples', audit.samples, DEFAULTS.samples, 0, DEFAULTS.maxSamples),
    },
    enforce: { force: bool('spec.enforce.force', enforce.force, false) },
    promotion: {
      automatic: bool('spec.promotion.automatic', promotion.automatic, false),
      afterMs: duration('spec.promotion.after', promotion.after, DEFAULTS.promotionAfter, 1000),
    },
    policy: {
      defaultDeny: bool('spec.policy.defaultDeny', policy.defaultDeny, true),
      includeDropped: bool('spec.policy.includeDropped', policy.includeDropped, false),
      worldIngress,
    },
  };
  // Compared to the nanosecond, as the CRD's rule does: `1m0.0004ms` is longer than `1m`.
  const window = valid.get('spec.audit.window');
  const expiry = valid.get('spec.learning.ruleExpiry');
  if (window !== undefined && expiry !== undefined && durationNanos(window)! > durationNanos(expiry)!)
    problems.push(
      `spec.audit.window (${window}) must not be longer than spec.learning.ruleExpiry (${expiry})`,
    );
  return problems.length > 0 ? { ok: false, problems } : { ok: true, spec };
}
