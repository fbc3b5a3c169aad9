/**
 * The Isolation API (microseg.dev/v1alpha1, namespaced): object shapes, constants and the one validation
 * of a spec at the edge, with exact problem messages that end up in `status.message`.
 */
import type { KObject, LabelSelector } from '../model/k8s.ts';
import type { KnownWorkloadKind } from '../identity/types.ts';
import { WORKLOAD_KINDS as IDENTITY_WORKLOAD_KINDS } from '../identity/types.ts';
import { LABELLED_KIND, WORKLOAD_LABEL } from '../identity/index.ts';
import { selectorLabelProblems, selectorLimitProblems, selectorProblem } from '../model/selectors.ts';
import {
  API_VERSION,
  MAX_DURATION_TEXT,
  durationOverflows,
  durationShorterThan,
  durationTooLong,
  parseDuration,
} from '../controller/api.ts';
import type { Condition } from '../controller/api.ts';

export { API_VERSION, MAX_DURATION_TEXT };
export const KIND = 'Isolation';
export const PLURAL = 'isolations';

/** Label put on every isolated pod; its value is the name of the Isolation. */
export const QUARANTINE_LABEL = 'microseg.dev/quarantine';
/** Pod annotation holding the labels as they were before isolation (JSON), written with the label change. */
export const PRIOR_ANNOTATION = 'microseg.dev/isolation-prior';
/** Label on every object an Isolation creates: `<namespace>.<name>` of the Isolation. */
export const ISOLATION_LABEL = 'microseg.dev/isolation';
/** Annotation on an Isolation created by a webhook: when the alert was received (RFC 3339, ms). */
export const RECEIVED_AT_ANNOTATION = 'microseg.dev/alert-received-at';
/** Annotation on an Isolation created by a webhook: the incident key it was derived from. */
export const INCIDENT_KEY_ANNOTATION = 'microseg.dev/incident-key';
/**
 * Annotation that re-arms a Released Isolation (RFC 3339): set by a webhook when its incident is alerted
 * again after the release; a time later than `status.releasedAt` makes the controller isolate again.
 */
export const REARM_ANNOTATION = 'microseg.dev/rearmed-at';
/** Finalizer that lets the controller restore the pods before an Isolation disappears. */
export const ISOLATION_FINALIZER = 'microseg.dev/isolation-release';
/** Label every microseg-generated allow policy carries (shared with the Segmentation controller). */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'microseg';
/** Isolation names double as label values, so they must fit a label value. */
/** How the status message of an Isolation that found no pod to isolate begins (`isolate --wait` reads it). */
export const NO_POD_MESSAGE = 'no pod to isolate';
export const MAX_ISOLATION_NAME = 63;
/** Limits the CRD puts on a spec (crd.ts); `parseIsolationSpec` checks the same. Lengths in characters. */
export const MAX_TARGET_PODS = 256;
export const MAX_FORENSICS = 16;
export const MAX_REASON = 1024;
/** `spec.incident` and `spec.requestedBy`. */
export const MAX_REFERENCE = 256;

export type Direction = 'Both' | 'Ingress' | 'Egress';
export const DIRECTIONS: readonly Direction[] = ['Both', 'Ingress', 'Egress'];
export type MechanismName = 'ClusterNetworkPolicy' | 'AdminNetworkPolicy' | 'NetworkPolicy';
export const MECHANISMS: readonly MechanismName[] = [
  'ClusterNetworkPolicy',
  'AdminNetworkPolicy',
  'NetworkPolicy',
];
/**
 * The kinds microseg knows that `spec.target.workload.kind` may name without an `apiGroup`: every kind
 * identity names a workload of pods by (the graph's `namespace/Kind/name` ids), but `Pod`. The first five
 * are found by their object's pod selector; the others (OWNER_RESOLVED_KINDS) by their pods' owner
 * references, as identity finds them. Any other kind is a custom resource's (CUSTOM_KIND_RE), named with
 * its `apiGroup`.
 */
export type WorkloadKind = Exclude<KnownWorkloadKind, 'Pod'>;
export const WORKLOAD_KINDS: readonly WorkloadKind[] = IDENTITY_WORKLOAD_KINDS.filter(
  (k): k is WorkloadKind => k !== 'Pod',
);
/** The API group of each kind of WORKLOAD_KINDS: what `spec.target.workload.apiGroup` may say for it. */
export const WORKLOAD_KIND_GROUPS: Readonly<Record<WorkloadKind, string>> = {
  Deployment: 'apps',
  StatefulSet: 'apps',
  DaemonSet: 'apps',
  ReplicaSet: 'apps',
  Job: 'batch',
  CronJob: 'batch',
  Rollout: 'argoproj.io',
  CloneSet: 'apps.kruise.io',
};
/**
 * Kinds whose pods are the pods whose root owner (identity's rootOwner) they are: a CronJob has no pod
 * selector (its Jobs have), an Argo Rollout's pods are those of its ReplicaSets (one per revision), an
 * OpenKruise CloneSet's those it owns. Neither custom resource is read: its CRD need not be installed.
 * A custom resource's kind (a target with `apiGroup`) is found the same way.
 */
export const OWNER_RESOLVED_KINDS: ReadonlySet<string> = new Set(['CronJob', 'Rollout', 'CloneSet']);
/**
 * A custom resource's kind as a CRD may name it (`spec.names.kind`: a DNS-1035 label once lower-cased,
 * mixed case allowed), at most 63 characters: CloudNativePG's `Cluster`, Strimzi's `StrimziPodSet`.
 */
export const CUSTOM_KIND_RE = /^[A-Za-z]([-A-Za-z0-9]*[A-Za-z0-9])?$/;
export const MAX_KIND = 63;
/**
 * A custom resource's API group: a DNS subdomain with at least one dot, as a CRD's `spec.group` must be
 * (`postgresql.cnpg.io`); the core group and `apps`, `batch` have none. `APIGROUP_RE` is the shape any
 * `apiGroup` must have (a known kind's `apps` included).
 */
export const APIGROUP_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
export const MAX_APIGROUP = 253;

export const PHASES = ['Pending', 'Isolated', 'Leaking', 'Released', 'Failed'] as const;
export type IsolationPhase = (typeof PHASES)[number];

/** A peer allowed to reach an isolated pod (forensics). podSelector alone means the Isolation's namespace. */
export interface ForensicsPeer {
  namespaceSelector?: LabelSelector;
  podSelector?: LabelSelector;
}

export interface IsolationSpecInput {
  target?: {
    pods?: string[];
    podSelector?: LabelSelector;
    workload?: { kind?: string; apiGroup?: string; name?: string; includeFuture?: boolean };
  };
  direction?: string;
  exceptions?: { dns?: boolean; forensics?: ForensicsPeer[] };
  detachFromServices?: boolean;
  reason?: string;
  incident?: string;
  requestedBy?: string;
  duration?: string;
  expiresAt?: string;
  dryRun?: boolean;
  mechanism?: string;
}

export type Target =
  | { kind: 'pods'; pods: string[] }
  | { kind: 'selector'; podSelector: LabelSelector }
  | {
      kind: 'workload';
      /** A kind of WORKLOAD_KINDS, or a custom resource's kind when `apiGroup` is set. */
      workloadKind: string;
      /**
       * Set for a custom resource's kind only: its API group. Its pods are those whose controller owner
       * reference names it (identity's customController), in that group, whatever the version.
       */
      apiGroup?: string;
      name: string;
      includeFuture: boolean;
    };

/** The spec after validation and defaults. */
export interface IsolationSpec {
  target: Target;
  direction: Direction;
  dns: boolean;
  forensics: ForensicsPeer[];
  detachFromServices: boolean;
  reason: string;
  incident?: string;
  requestedBy?: string;
  durationMs?: number;
  expiresAt?: string;
  dryRun: boolean;
  mechanism: MechanismName | 'Auto';
}

export interface TimelineEntry {
  time: string;
  action: string;
  message: string;
}

export interface LeakStatus {
  /** `ns/name` of a NetworkPolicy or `Kind/name` of a cluster-scoped policy. */
  policy: string;
  /** e.g. `ingress[0]`. */
  rule: string;
  direction: 'ingress' | 'egress';
  /** Isolated pod the leak concerns. */
  pod: string;
  /** A connection the engine admits through this rule: `peer port/protocol`. */
  example: string;
}

/**
 * The condition type that says whether the controller's last reconcile of the Isolation succeeded:
 * `False` (reason RECONCILE_FAILED) with the error while a reconcile fails and is retried, `True` (reason
 * RECONCILED) once one succeeds.
 */
export const RECONCILED_CONDITION = 'Reconciled';
export const RECONCILE_FAILED = 'ReconcileFailed';
export const RECONCILED = 'Reconciled';
/** How the status message of an Isolation whose reconcile fails before any outcome begins. */
export const RECONCILE_FAILED_MESSAGE = 'reconcile failed: ';
/** The message of a `True` Reconciled condition. */
export const RECONCILED_MESSAGE = 'the last reconcile succeeded';

/** A condition of an Isolation: a Kubernetes metav1.Condition, as a Segmentation's are. */
export type IsolationCondition = Condition;

export interface IsolationStatus {
  observedGeneration?: number;
  phase?: IsolationPhase;
  method?: MechanismName;
  message?: string;
  isolatedPods?: string[];
  podCount?: number;
  /** Objects created for this Isolation: `NetworkPolicy/<ns>/<name>`, `<Kind>/<name>`. */
  objects?: string[];
  /** microseg-managed policies given the quarantine exclusion by this Isolation (`ns/name`). */
  patchedPolicies?: string[];
  leaks?: LeakStatus[];
  /**
   * Result of the engine check: connections probed, admitted by configured exceptions, leaking; and,
   * when some were, how many admin-tier policies the engine cannot read were left out of it.
   */
  proof?: { probes: number; exceptions: number; leaks: number; notEvaluated?: number };
  isolatedAt?: string;
  expiresAt?: string;
  releasedAt?: string;
  /** Conditions: Reconciled (see RECONCILED_CONDITION). */
  conditions?: IsolationCondition[];
  timeline?: TimelineEntry[];
}

export interface Isolation extends KObject {
  metadata: KObject['metadata'] & { finalizers?: string[] };
  spec?: IsolationSpecInput;
  status?: IsolationStatus;
}

/** How many timeline entries the status keeps (oldest dropped first). */
export const MAX_TIMELINE = 40;
export const MAX_LEAKS = 20;
export const MAX_LISTED_PODS = 100;

const DNS_LABEL_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const POD_NAME_RE = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const RFC3339_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

export function isDnsLabel(s: string): boolean {
  return s.length > 0 && s.length <= 63 && DNS_LABEL_RE.test(s);
}

export function isPodName(s: string): boolean {
  return s.length > 0 && s.length <= 253 && POD_NAME_RE.test(s);
}

const KNOWN_LIST = WORKLOAD_KINDS.join(', ');

/**
 * The checks of `spec.target.workload.kind` and `apiGroup` (the CRD's rules say the same): a kind of
 * WORKLOAD_KINDS, its `apiGroup` left out or its own; or a custom resource's kind with the API group it
 * is in, which has a dot. `Pod`, and a known kind spelt in another case (`deployment`), are refused: the
 * one is no workload, the other a slip identity would take for another kind. The apiGroup returned is
 * set for a custom resource's kind only.
 */
function workloadKindOf(
  kind: unknown,
  apiGroup: unknown,
  field: FieldName,
): { problems: string[]; apiGroup?: string } {
  const kindAt = field('spec.target.workload.kind');
  const groupAt = field('spec.target.workload.apiGroup');
  if (typeof kind !== 'string' || kind.length > MAX_KIND || !CUSTOM_KIND_RE.test(kind))
    return {
      problems: [
        `${kindAt} ${JSON.stringify(kind)} is not a kind: one of ${KNOWN_LIST}, or a custom resource's kind such as Cluster (a letter, then letters, digits or '-'; at most ${MAX_KIND} characters)`,
      ],
    };
  const spelt = IDENTITY_WORKLOAD_KINDS.find((k) => k.toLowerCase() === kind.toLowerCase());
  if (spelt === 'Pod')
    return {
      problems: [
        `${kindAt} ${JSON.stringify(kind)} is not a workload kind: name pods by ${field('spec.target.pods')}`,
      ],
    };
  if (spelt !== undefined && spelt !== kind)
    return { problems: [`${kindAt} ${JSON.stringify(kind)} must be spelt ${spelt}`] };
  if (
    apiGroup !== undefined &&
    (typeof apiGroup !== 'string' || apiGroup.length > MAX_APIGROUP || !APIGROUP_RE.test(apiGroup))
  )
    return {
      problems: [
        `${groupAt} ${JSON.stringify(apiGroup)} is not an API group (a DNS subdomain such as postgresql.cnpg.io, at most ${MAX_APIGROUP} characters)`,
      ],
    };
  if (spelt !== undefined) {
    const own = WORKLOAD_KIND_GROUPS[spelt];
    if (apiGroup !== undefined && apiGroup !== own)
      return {
        problems: [
          `${groupAt} ${JSON.stringify(apiGroup)} is not the API group of ${spelt} (${own}): leave it out, or give ${own}`,
        ],
      };
    return { problems: [] };
  }
  if (apiGroup === undefined && kind === LABELLED_KIND)
    return {
      problems: [
        `${kindAt} ${LABELLED_KIND} is a workload the ${WORKLOAD_LABEL} label of its pods names, not an owner: target its pods by ${field('spec.target.podSelector')} (matchLabels: {${WORKLOAD_LABEL}: NAME})`,
      ],
    };
  if (apiGroup === undefined)
    return {
      problems: [
        `${groupAt} is required with kind ${JSON.stringify(kind)}, which is not one of ${KNOWN_LIST}: a custom resource's kind is named with its API group (postgresql.cnpg.io for CloudNativePG's Cluster)`,
      ],
    };
  if (!apiGroup.includes('.'))
    return {
      problems: [
        `${groupAt} ${JSON.stringify(apiGroup)} is not a custom resource's API group (those have a dot, as postgresql.cnpg.io has), and ${kind} is not one of ${KNOWN_LIST}`,
      ],
    };
  return { problems: [], apiGroup };
}

export type IsolationSpecResult = { ok: true; spec: IsolationSpec } | { ok: false; problems: string[] };

/**
 * How a problem names what it is about, given the field's path (`spec.duration`, `metadata.name`,
 * `spec.exceptions.forensics[1].podSelector`, and a selector's with what is wrong in it appended:
 * `spec.target.podSelector.matchLabels: ...`). The object's own paths unless said otherwise; the
 * command line names its flags instead (`--duration`).
 */
export type FieldName = (path: string) => string;
const specPath: FieldName = (path) => path;

/**
 * Validates an Isolation's name and spec and fills defaults. `field` names the fields in the problems
 * (the spec's paths by default).
 */
export function parseIsolationSpec(
  name: string,
  input: unknown,
  field: FieldName = specPath,
): IsolationSpecResult {
  const problems: string[] = [];
  if (!isDnsLabel(name))
    problems.push(
      `${field('metadata.name')} ${JSON.stringify(name)} must be a DNS label of at most ${MAX_ISOLATION_NAME} characters (it becomes a label value)`,
    );
  if (input === null || typeof input !== 'object' || Array.isArray(input))
    return { ok: false, problems: [...problems, 'spec is missing'] };
  const s = input as Record<string, unknown>;
  const bool = (path: string, v: unknown, dflt: boolean): boolean => {
    if (v === undefined) return dflt;
    if (typeof v !== 'boolean') {
      problems.push(`${field(path)} must be true or false (got ${JSON.stringify(v)})`);
      return dflt;
    }
    return v;
  };
  /** Characters as the API server counts them (code points). */
  const tooLong = (path: string, v: string, max: number): boolean => {
    const n = [...v].length;
    if (n > max) problems.push(`${field(path)} must be at most ${max} characters (has ${n})`);
    return n > max;
  };
  const optString = (path: string, v: unknown, max: number): string | undefined => {
    if (v === undefined) return undefined;
    if (typeof v !== 'string') {
      problems.push(`${field(path)} must be a string`);
      return undefined;
    }
    return tooLong(path, v, max) ? undefined : v;
  };

  let target: Target = { kind: 'pods', pods: [] };
  const t = s.target;
  if (t === undefined) problems.push('spec.target is required (one of pods, podSelector, workload)');
  else if (t === null || typeof t !== 'object' || Array.isArray(t))
    problems.push('spec.target must be an object');
  else {
    const tt = t as Record<string, unknown>;
    const set = ['pods', 'podSelector', 'workload'].filter((k) => tt[k] !== undefined);
    if (set.length !== 1)
      problems.push(
        `spec.target must set exactly one of pods, podSelector, workload (has ${set.length === 0 ? 'none' : set.join(', ')})`,
      );
    else if (set[0] === 'pods') {
      const pods = tt.pods;
      if (!Array.isArray(pods) || pods.length === 0)
        problems.push(`${field('spec.target.pods')} must be a non-empty list`);
      else if (pods.length > MAX_TARGET_PODS)
        problems.push(
          `${field('spec.target.pods')} must list at most ${MAX_TARGET_PODS} pods (has ${pods.length})`,
        );
      else {
        const bad = pods.findIndex((p) => typeof p !== 'string' || !isPodName(p));
        if (bad >= 0)
          problems.push(
            `${field(`spec.target.pods[${bad}]`)} ${JSON.stringify(pods[bad])} is not a valid pod name`,
          );
        else target = { kind: 'pods', pods: [...new Set(pods as string[])].sort() };
      }
    } else if (set[0] === 'podSelector') {
      const p = selectorProblem(tt.podSelector);
      if (p) problems.push(`${field('spec.target.podSelector')}: ${p}`);
      else {
        const sel = tt.podSelector as LabelSelector;
        const labels = [...selectorLimitProblems(sel), ...selectorLabelProblems(sel)];
        if (Object.keys(sel.matchLabels ?? {}).length === 0 && (sel.matchExpressions ?? []).length === 0)
          problems.push(
            `${field('spec.target.podSelector')} must not be empty (it would isolate every pod of the namespace)`,
          );
        else if (labels.length > 0)
          problems.push(...labels.map((l) => field(`spec.target.podSelector.${l}`)));
        else target = { kind: 'selector', podSelector: sel };
      }
    } else {
      const w = tt.workload;
      if (w === null || typeof w !== 'object' || Array.isArray(w))
        problems.push('spec.target.workload must be an object');
      else {
        const wk = w as Record<string, unknown>;
        const workload = workloadKindOf(wk.kind, wk.apiGroup, field);
        problems.push(...workload.problems);
        const nameOk = typeof wk.name === 'string' && isPodName(wk.name);
        if (!nameOk)
          problems.push(
            `${field('spec.target.workload.name')} ${JSON.stringify(wk.name)} is not a valid name`,
          );
        const includeFuture = bool('spec.target.workload.includeFuture', wk.includeFuture, false);
        if (workload.problems.length === 0 && nameOk)
          target = {
            kind: 'workload',
            workloadKind: wk.kind as string,
            ...(workload.apiGroup !== undefined ? { apiGroup: workload.apiGroup } : {}),
            name: wk.name as string,
            includeFuture,
          };
      }
    }
  }

  let direction: Direction = 'Both';
  if (s.direction !== undefined) {
    if (typeof s.direction === 'string' && (DIRECTIONS as readonly string[]).includes(s.direction))
      direction = s.direction as Direction;
    else
      problems.push(
        `${field('spec.direction')} ${JSON.stringify(s.direction)} is not one of ${DIRECTIONS.join(', ')}`,
      );
  }

  let dns = true;
  const forensics: ForensicsPeer[] = [];
  if (s.exceptions !== undefined) {
    const e = s.exceptions;
    if (e === null || typeof e !== 'object' || Array.isArray(e))
      problems.push('spec.exceptions must be an object');
    else {
      const ex = e as Record<string, unknown>;
      dns = bool('spec.exceptions.dns', ex.dns, true);
      if (ex.forensics !== undefined) {
        if (!Array.isArray(ex.forensics)) problems.push('spec.exceptions.forensics must be a list');
        else if (ex.forensics.length > MAX_FORENSICS)
          problems.push(
            `${field('spec.exceptions.forensics')} must list at most ${MAX_FORENSICS} peers (has ${ex.forensics.length})`,
          );
        else
          for (const [i, f] of (ex.forensics as unknown[]).entries()) {
            const path = `spec.exceptions.forensics[${i}]`;
            if (f === null || typeof f !== 'object' || Array.isArray(f)) {
              problems.push(`${path} must be an object`);
              continue;
            }
            const fp = f as Record<string, unknown>;
            if (fp.namespaceSelector === undefined && fp.podSelector === undefined) {
              problems.push(`${path} must set namespaceSelector, podSelector or both`);
              continue;
            }
            const peer: ForensicsPeer = {};
            let ok = true;
            for (const k of ['namespaceSelector', 'podSelector'] as const) {
              if (fp[k] === undefined) continue;
              const p = selectorProblem(fp[k]);
              const sel = fp[k] as LabelSelector;
              const labels = p ? [] : [...selectorLimitProblems(sel), ...selectorLabelProblems(sel)];
              if (p) problems.push(`${field(`${path}.${k}`)}: ${p}`);
              else if (labels.length > 0) problems.push(...labels.map((l) => field(`${path}.${k}.${l}`)));
              else peer[k] = fp[k] as LabelSelector;
              if (p || labels.length > 0) ok = false;
            }
            if (ok) forensics.push(peer);
          }
      }
    }
  }

  const detachFromServices = bool('spec.detachFromServices', s.detachFromServices, false);
  let reason = '';
  if (typeof s.reason !== 'string' || s.reason.trim() === '')
    problems.push(`${field('spec.reason')} is required (why the workload is isolated)`);
  else if (!tooLong('spec.reason', s.reason, MAX_REASON)) reason = s.reason;
  const incident = optString('spec.incident', s.incident, MAX_REFERENCE);
  const requestedBy = optString('spec.requestedBy', s.requestedBy, MAX_REFERENCE);

  let durationMs: number | undefined;
  let expiresAt: string | undefined;
  if (s.duration !== undefined && s.expiresAt !== undefined)
    problems.push(`${field('spec.duration')} and ${field('spec.expiresAt')} are mutually exclusive`);
  if (typeof s.duration === 'string' && tooLong('spec.duration', s.duration, MAX_DURATION_TEXT)) {
    // Not read any further: the CRD refuses it whatever it says.
  } else if (s.duration !== undefined) {
    const d = typeof s.duration === 'string' ? parseDuration(s.duration) : undefined;
    if (d === undefined)
      problems.push(
        `${field('spec.duration')} ${JSON.stringify(s.duration)} is not a duration such as "90s", "15m" or "1h30m"`,
      );
    else if (durationOverflows(s.duration as string))
      problems.push(durationTooLong(field('spec.duration'), s.duration as string));
    // Compared to the nanosecond, as the CRD's rule does (`0.9999s` is 1000 ms rounded, but short of 1s).
    else if (durationShorterThan(s.duration as string, 1000))
      problems.push(`${field('spec.duration')} ${JSON.stringify(s.duration)} is shorter than 1s`);
    else durationMs = d;
  }
  if (s.expiresAt !== undefined) {
    if (
      typeof s.expiresAt !== 'string' ||
      !RFC3339_RE.test(s.expiresAt) ||
      Number.isNaN(Date.parse(s.expiresAt))
    )
      problems.push(
        `${field('spec.expiresAt')} ${JSON.stringify(s.expiresAt)} is not an RFC 3339 time such as "2026-01-02T15:04:05Z"`,
      );
    else expiresAt = new Date(Date.parse(s.expiresAt)).toISOString();
  }
  const dryRun = bool('spec.dryRun', s.dryRun, false);
  let mechanism: MechanismName | 'Auto' = 'Auto';
  if (s.mechanism !== undefined) {
    if (s.mechanism === 'Auto' || (MECHANISMS as readonly unknown[]).includes(s.mechanism))
      mechanism = s.mechanism as MechanismName | 'Auto';
    else
      problems.push(
        `${field('spec.mechanism')} ${JSON.stringify(s.mechanism)} is not one of Auto, ${MECHANISMS.join(', ')}`,
      );
  }
  if (problems.length > 0) return { ok: false, problems };
  return {
    ok: true,
    spec: {
      target,
      direction,
      dns,
      forensics,
      detachFromServices,
      reason,
      ...(incident !== undefined ? { incident } : {}),
      ...(requestedBy !== undefined ? { requestedBy } : {}),
      ...(durationMs !== undefined ? { durationMs } : {}),
      ...(expiresAt !== undefined ? { expiresAt } : {}),
      dryRun,
      mechanism,
    },
  };
}

/**
 * When an Isolation expires: `spec.expiresAt`, or `spec.duration` after it first took effect
 * (`isolatedAt`), or undefined when it never expires (or has not taken effect yet).
 */
export function expiryTime(spec: IsolationSpec, isolatedAt: string | undefined): string | undefined {
  if (spec.expiresAt) return spec.expiresAt;
  if (spec.durationMs !== undefined && isolatedAt) {
    const t = Date.parse(isolatedAt);
    if (!Number.isNaN(t)) return new Date(t + spec.durationMs).toISOString();
  }
  return undefined;
}

/**
 * `conditions` with the Reconciled condition set: its lastTransitionTime kept while its status stays the
 * same, so that a reconcile repeating the same outcome changes nothing.
 */
export function setReconciled(
  conditions: readonly IsolationCondition[] | undefined,
  failure: string | undefined,
  now: string,
  generation: number,
): IsolationCondition[] {
  const old = (conditions ?? []).find((c) => c.type === RECONCILED_CONDITION);
  const status = failure === undefined ? 'True' : 'False';
  const next: IsolationCondition = {
    type: RECONCILED_CONDITION,
    status,
    reason: failure === undefined ? RECONCILED : RECONCILE_FAILED,
    message: failure ?? RECONCILED_MESSAGE,
    lastTransitionTime: old && old.status === status ? old.lastTransitionTime : now,
    observedGeneration: generation,
  };
  return [...(conditions ?? []).filter((c) => c.type !== RECONCILED_CONDITION), next];
}

/** Appends a timeline entry, keeping the newest MAX_TIMELINE. */
export function addTimeline(
  timeline: readonly TimelineEntry[] | undefined,
  entry: TimelineEntry,
): TimelineEntry[] {
  const all = [...(timeline ?? []), entry];
  return all.length > MAX_TIMELINE ? all.slice(all.length - MAX_TIMELINE) : all;
}
