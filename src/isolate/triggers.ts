/**
 * Alert payloads that trigger an isolation: Falco / Falcosidekick JSON and the Prometheus Alertmanager
 * webhook (version 4). Parsing is strict about shape (a malformed body is answered 400 and changes
 * nothing) and lenient about content (an alert without a pod, below the priority threshold or outside the
 * rule allow-list is acknowledged and ignored). Every alert maps to one incident key and one Isolation
 * name, so a storm of the same alert yields a single Isolation.
 */
import { createHash } from 'node:crypto';
import type { Direction, ForensicsPeer, Isolation } from './api.ts';
import {
  API_VERSION,
  INCIDENT_KEY_ANNOTATION,
  ISOLATION_FINALIZER,
  KIND,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  MAX_REASON,
  MAX_REFERENCE,
  RECEIVED_AT_ANNOTATION,
  isDnsLabel,
  isPodName,
} from './api.ts';

export class PayloadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PayloadError';
  }
}

/** Falco priorities, most severe first. */
export const FALCO_PRIORITIES = [
  'Emergency',
  'Alert',
  'Critical',
  'Error',
  'Warning',
  'Notice',
  'Informational',
  'Debug',
] as const;
export type FalcoPriority = (typeof FALCO_PRIORITIES)[number];

/** Accepts any casing and Falcosidekick's `info`; undefined when unknown. */
export function normalizePriority(p: string): FalcoPriority | undefined {
  const l = p.toLowerCase();
  if (l === 'info') return 'Informational';
  return FALCO_PRIORITIES.find((x) => x.toLowerCase() === l);
}

function severity(p: FalcoPriority): number {
  return FALCO_PRIORITIES.indexOf(p);
}

export interface FalcoAlert {
  rule: string;
  priority: FalcoPriority;
  time?: string;
  source?: string;
  hostname?: string;
  uuid?: string;
  output?: string;
  tags: string[];
  namespace?: string;
  pod?: string;
  container?: string;
  /**
   * Why the pod cannot be told: the container runtime's `k8s.*` fields and the k8smeta plugin's
   * `k8smeta.*` fields both set and different (the alert is rejected, see `falcoAction`).
   */
  conflict?: string;
}

const RFC3339_TIME_RE =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))$/;

/**
 * Whether `s` is an RFC 3339 date-time (section 5.6): full date, `T`, time with an optional fraction,
 * then `Z` or a numeric offset; every field in its range (the day in its month, a leap second allowed).
 * `T` and `Z` may be lower case, as the RFC allows.
 */
export function isRfc3339Time(s: string): boolean {
  const m = RFC3339_TIME_RE.exec(s);
  if (!m) return false;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
  if (days === undefined || day < 1 || day > days) return false;
  if (hour > 23 || minute > 59 || second > 60) return false;
  if (m[7] !== undefined && (Number(m[7]) > 23 || Number(m[8]) > 59)) return false;
  return true;
}

/**
 * A value of a payload as an error message quotes it: its JSON, or, for a list or object nested deeper
 * than `JSON.stringify` can follow (it recurses; a body of a few hundred KiB of `[` is enough), what it
 * is, so that the message is still the answer's 400 and not a stack overflow.
 */
export function shown(v: unknown): string {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return `(${Array.isArray(v) ? 'a list' : 'an object'} nested too deeply to show)`;
  }
}

function isObj(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Parses a Falco (or Falcosidekick-forwarded) JSON alert that was already decoded by JSON.parse. */
export function parseFalcoAlert(body: unknown): FalcoAlert {
  if (!isObj(body)) throw new PayloadError('body must be a JSON object (a Falco alert)');
  if (typeof body.rule !== 'string' || body.rule === '')
    throw new PayloadError('rule must be a non-empty string');
  if (typeof body.priority !== 'string') throw new PayloadError('priority must be a string');
  const priority = normalizePriority(body.priority);
  if (!priority)
    throw new PayloadError(
      `priority ${JSON.stringify(body.priority)} is not one of ${FALCO_PRIORITIES.join(', ')}`,
    );
  for (const k of ['time', 'source', 'hostname', 'uuid', 'output'] as const) {
    if (body[k] !== undefined && body[k] !== null && typeof body[k] !== 'string')
      throw new PayloadError(`${k} must be a string`);
  }
  if (typeof body.time === 'string' && !isRfc3339Time(body.time))
    throw new PayloadError(`time ${JSON.stringify(body.time)} is not an RFC 3339 time`);
  let tags: string[] = [];
  if (body.tags !== undefined && body.tags !== null) {
    if (!Array.isArray(body.tags) || body.tags.some((t) => typeof t !== 'string'))
      throw new PayloadError('tags must be a list of strings');
    tags = body.tags as string[];
  }
  let namespace: string | undefined;
  let pod: string | undefined;
  let container: string | undefined;
  const conflicts: string[] = [];
  if (body.output_fields !== undefined && body.output_fields !== null) {
    const of = body.output_fields;
    if (!isObj(of)) throw new PayloadError('output_fields must be an object');
    const field = (k: string): string | undefined => {
      const v = of[k];
      if (v === undefined || v === null) return undefined;
      if (typeof v !== 'string') throw new PayloadError(`output_fields["${k}"] must be a string or null`);
      return v === '' || v === '<NA>' ? undefined : v;
    };
    // Falco fills k8s.* from the container runtime's labels, the k8smeta plugin k8smeta.* from the
    // apiserver: either may be missing (<NA>). Each field is taken from the source that has it; both
    // set and different is a conflict, and neither pod is isolated.
    const pick = (
      what: 'namespace' | 'pod',
      runtimeKey: string,
      pluginKey: string,
      valid: (v: string) => boolean,
    ) => {
      const values = [runtimeKey, pluginKey].map((k) => {
        const v = field(k);
        if (v !== undefined && !valid(v))
          throw new PayloadError(`output_fields["${k}"] ${JSON.stringify(v)} is not a ${what} name`);
        return v;
      });
      const [runtime, plugin] = values;
      if (runtime !== undefined && plugin !== undefined && runtime !== plugin)
        conflicts.push(
          `output_fields name different ${what === 'pod' ? 'pods' : 'namespaces'}: ${runtimeKey} ${JSON.stringify(runtime)}, ${pluginKey} ${JSON.stringify(plugin)}`,
        );
      return runtime ?? plugin;
    };
    namespace = pick('namespace', 'k8s.ns.name', 'k8smeta.ns.name', isDnsLabel);
    pod = pick('pod', 'k8s.pod.name', 'k8smeta.pod.name', isPodName);
    const c = of['container.name'];
    if (typeof c === 'string') container = c;
  }
  const opt = (k: string): string | undefined => (typeof body[k] === 'string' ? body[k] : undefined);
  const out: FalcoAlert = { rule: body.rule, priority, tags };
  for (const [k, v] of [
    ['time', opt('time')],
    ['source', opt('source')],
    ['hostname', opt('hostname')],
    ['uuid', opt('uuid')],
    ['output', opt('output')],
    ['namespace', namespace],
    ['pod', pod],
    ['container', container],
    ['conflict', conflicts.length > 0 ? conflicts.join('; ') : undefined],
  ] as const)
    if (v !== undefined) (out as unknown as Record<string, string>)[k] = v;
  return out;
}

/** Settings shared by both receivers for the Isolations they create. */
export interface IsolationDefaults {
  direction: Direction;
  dns: boolean;
  forensics: ForensicsPeer[];
  detachFromServices: boolean;
  /** Go duration; undefined = until released. */
  duration?: string;
  dryRun: boolean;
}

export const DEFAULT_ISOLATION: IsolationDefaults = {
  direction: 'Both',
  dns: true,
  forensics: [],
  detachFromServices: false,
  dryRun: false,
};

export interface FalcoConfig {
  /** Least severe priority that isolates (default Critical). */
  minimumPriority: FalcoPriority;
  /** Rules that may isolate; empty = every rule. */
  rules: string[];
}

export const DEFAULT_FALCO_CONFIG: FalcoConfig = { minimumPriority: 'Critical', rules: [] };

/** What one alert asks for. */
export type AlertAction =
  | { action: 'isolate'; key: string; namespace: string; name: string; pod: string; isolation: Isolation }
  | { action: 'release'; key: string; namespace: string; name: string }
  | { action: 'ignore'; key?: string; reason: string }
  /** The alert names a target it cannot be isolated by (labels that do not fit together, bad names). */
  | { action: 'reject'; reason: string };

function shortHash(text: string, n = 10): string {
  return createHash('sha256').update(text).digest('hex').slice(0, n);
}

function slug(text: string, max: number): string {
  const s = text
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .slice(0, max)
    .replace(/^-+|-+$/g, '');
  return s === '' ? 'x' : s;
}

/** A DNS-label Isolation name unique to an incident key: `<prefix>-<pod>-<hash>`. */
export function isolationName(prefix: string, pod: string, key: string): string {
  return `${prefix}-${slug(pod, 36)}-${shortHash(key)}`;
}

export function falcoIncidentKey(rule: string, namespace: string, pod: string): string {
  return `falco:${JSON.stringify([rule, namespace, pod])}`;
}

export function alertmanagerIncidentKey(fingerprint: string, namespace: string, pod: string): string {
  return `alertmanager:${JSON.stringify([fingerprint, namespace, pod])}`;
}

export function buildIsolation(o: {
  namespace: string;
  name: string;
  pod: string;
  key: string;
  reason: string;
  incident: string;
  requestedBy: string;
  receivedAt: string;
  defaults: IsolationDefaults;
  labels?: Record<string, string>;
}): Isolation {
  const d = o.defaults;
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: {
      name: o.name,
      namespace: o.namespace,
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, ...(o.labels ?? {}) },
      annotations: { [RECEIVED_AT_ANNOTATION]: o.receivedAt, [INCIDENT_KEY_ANNOTATION]: o.key },
      // Created by the controller's own receivers, so the controller is running: register the release
      // finalizer at once instead of in a second write.
      ...(o.defaults.dryRun ? {} : { finalizers: [ISOLATION_FINALIZER] }),
    },
    spec: {
      target: { pods: [o.pod] },
      direction: d.direction,
      exceptions: { dns: d.dns, ...(d.forensics.length > 0 ? { forensics: d.forensics } : {}) },
      ...(d.detachFromServices ? { detachFromServices: true } : {}),
      reason: o.reason.length > MAX_REASON ? `${o.reason.slice(0, MAX_REASON - 3)}...` : o.reason,
      incident: o.incident.slice(0, MAX_REFERENCE),
      requestedBy: o.requestedBy.slice(0, MAX_REFERENCE),
      ...(d.duration ? { duration: d.duration } : {}),
      ...(d.dryRun ? { dryRun: true } : {}),
    },
  };
}

/** Decides what a Falco alert asks for. */
export function falcoAction(
  alert: FalcoAlert,
  config: FalcoConfig,
  defaults: IsolationDefaults,
  receivedAt: string,
): AlertAction {
  if (severity(alert.priority) > severity(config.minimumPriority))
    return { action: 'ignore', reason: `priority ${alert.priority} is below ${config.minimumPriority}` };
  if (config.rules.length > 0 && !config.rules.includes(alert.rule))
    return { action: 'ignore', reason: `rule ${JSON.stringify(alert.rule)} is not in the allow-list` };
  if (alert.conflict !== undefined) return { action: 'reject', reason: alert.conflict };
  if (!alert.namespace || !alert.pod)
    return {
      action: 'ignore',
      reason:
        'output_fields names no pod (neither k8s.ns.name / k8s.pod.name nor k8smeta.ns.name / k8smeta.pod.name): not a Kubernetes pod',
    };
  const key = falcoIncidentKey(alert.rule, alert.namespace, alert.pod);
  const name = isolationName('falco', alert.pod, key);
  return {
    action: 'isolate',
    key,
    namespace: alert.namespace,
    name,
    pod: alert.pod,
    isolation: buildIsolation({
      namespace: alert.namespace,
      name,
      pod: alert.pod,
      key,
      reason: `Falco: ${alert.rule} (${alert.priority})`,
      incident: alert.uuid ?? `falco ${alert.rule} ${alert.time ?? receivedAt}`,
      requestedBy: `falco${alert.hostname ? `@${alert.hostname}` : ''}`,
      receivedAt,
      defaults,
      labels: { 'microseg.dev/trigger': 'falco' },
    }),
  };
}

// ---------------------------------------------------------------------------------------------
// Alertmanager

export interface AmAlert {
  status: 'firing' | 'resolved';
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt?: string;
  endsAt?: string;
  fingerprint: string;
}

export interface AmPayload {
  version: '4';
  status: 'firing' | 'resolved';
  groupKey?: string;
  receiver?: string;
  /**
   * How many alerts of the group Alertmanager left out of this payload because of the receiver's
   * `max_alerts` (0 when it sent them all): never delivered, so never acted on.
   */
  truncatedAlerts: number;
  /**
   * `truncatedAlerts` as sent (JSON) when it was not a count: ignored (taken as 0), not refused, since a
   * 4xx would make Alertmanager drop the whole payload, the alerts that did come included.
   */
  truncatedAlertsInvalid?: string;
  alerts: AmAlert[];
}

function stringMap(v: unknown, path: string): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (!isObj(v)) throw new PayloadError(`${path} must be an object of strings`);
  for (const [k, x] of Object.entries(v))
    if (typeof x !== 'string') throw new PayloadError(`${path}.${k} must be a string`);
  return v as Record<string, string>;
}

/** Alertmanager's own fingerprint is a 64-bit hash shown as 16 hex digits; we accept any short token. */
const FINGERPRINT_RE = /^[A-Za-z0-9]{1,64}$/;

export function parseAlertmanagerPayload(body: unknown): AmPayload {
  if (!isObj(body)) throw new PayloadError('body must be a JSON object (an Alertmanager webhook payload)');
  if (body.version !== '4')
    throw new PayloadError(`version ${shown(body.version)} is not supported (expected "4")`);
  if (body.status !== 'firing' && body.status !== 'resolved')
    throw new PayloadError(`status ${shown(body.status)} is not one of firing, resolved`);
  for (const k of ['groupKey', 'receiver', 'externalURL'] as const)
    if (body[k] !== undefined && typeof body[k] !== 'string') throw new PayloadError(`${k} must be a string`);
  // Not refused when it is not a count: the payload's alerts (some may ask to isolate) must not be lost
  // with a 400 for a field that only says how many others never came; the warning names it instead.
  const rawTruncated: unknown = body.truncatedAlerts ?? 0;
  const truncatedValid =
    typeof rawTruncated === 'number' && Number.isSafeInteger(rawTruncated) && rawTruncated >= 0;
  const truncated = truncatedValid ? rawTruncated : 0;
  if (!Array.isArray(body.alerts)) throw new PayloadError('alerts must be a list');
  const alerts = body.alerts.map((a: unknown, i: number): AmAlert => {
    const p = `alerts[${i}]`;
    if (!isObj(a)) throw new PayloadError(`${p} must be an object`);
    if (a.status !== 'firing' && a.status !== 'resolved')
      throw new PayloadError(`${p}.status ${shown(a.status)} is not one of firing, resolved`);
    const labels = stringMap(a.labels, `${p}.labels`);
    const annotations = stringMap(a.annotations, `${p}.annotations`);
    for (const k of ['startsAt', 'endsAt'] as const) {
      const v = a[k];
      if (v === undefined) continue;
      if (typeof v !== 'string' || !isRfc3339Time(v))
        throw new PayloadError(`${p}.${k} ${shown(v)} is not an RFC 3339 time`);
    }
    let fingerprint: string;
    if (a.fingerprint === undefined) {
      // Older Alertmanagers send no fingerprint: derive one from the sorted label set.
      const text = Object.keys(labels)
        .sort()
        .map((k) => `${k}=${labels[k]}`)
        .join('\u0000');
      fingerprint = shortHash(text, 16);
    } else if (typeof a.fingerprint !== 'string' || !FINGERPRINT_RE.test(a.fingerprint))
      throw new PayloadError(`${p}.fingerprint ${shown(a.fingerprint)} is not a fingerprint`);
    else fingerprint = a.fingerprint;
    return {
      status: a.status,
      labels,
      annotations,
      ...(typeof a.startsAt === 'string' ? { startsAt: a.startsAt } : {}),
      ...(typeof a.endsAt === 'string' ? { endsAt: a.endsAt } : {}),
      fingerprint,
    };
  });
  return {
    version: '4',
    status: body.status,
    ...(typeof body.groupKey === 'string' ? { groupKey: body.groupKey } : {}),
    ...(typeof body.receiver === 'string' ? { receiver: body.receiver } : {}),
    truncatedAlerts: truncated,
    ...(truncatedValid ? {} : { truncatedAlertsInvalid: shown(rawTruncated) }),
    alerts,
  };
}

/**
 * What an operator must be told when Alertmanager left alerts out of a payload (`truncatedAlerts`):
 * undefined when it left none out.
 */
export function truncationNote(payload: AmPayload): string | undefined {
  const n = payload.truncatedAlerts;
  const group = payload.groupKey !== undefined ? ` of group ${payload.groupKey}` : '';
  const receiver = payload.receiver !== undefined ? ` (receiver ${payload.receiver})` : '';
  if (payload.truncatedAlertsInvalid !== undefined)
    return `truncatedAlerts ${payload.truncatedAlertsInvalid} of a payload${group}${receiver} is not a count (a whole number, 0 or more): ignored, the alerts that came were acted on; alerts of the group may have been left out`;
  if (n === 0) return undefined;
  return `Alertmanager left out ${n} alert${n === 1 ? '' : 's'}${group}${receiver} because of the receiver's max_alerts: they were never sent here, so no Isolation they ask for was made; raise max_alerts on the receiver (0 = no limit)`;
}

/** A family of labels that name a pod: its namespace label and its pod label, always read together. */
export interface TargetLabels {
  namespace: string;
  pod: string;
}

export interface AlertmanagerConfig {
  /**
   * The label families read for the pod. Every family present on an alert must name the same pod; one
   * present with only one of its two labels, or families naming different pods, reject the alert.
   */
  targetLabels: TargetLabels[];
  /** alertname values that may isolate; empty = every alert. */
  alertnames: string[];
  /** `severity` label values that may isolate, lower case, matched in any case; empty = any alert. */
  severities: string[];
  /** Whether a resolved alert releases (deletes) the Isolation it created. */
  releaseOnResolve: boolean;
}

/**
 * The label families that name a pod on an alert. `namespace`/`pod` are set by Prometheus from the
 * scrape target (with `honor_labels: false` a workload cannot fake them); the others can come from the
 * series a workload exposes itself, so none of them is trusted over another: they must all agree.
 */
export const DEFAULT_TARGET_LABELS: TargetLabels[] = [
  { namespace: 'k8s_ns_name', pod: 'k8s_pod_name' },
  { namespace: 'exported_namespace', pod: 'exported_pod' },
  { namespace: 'namespace', pod: 'pod' },
  { namespace: 'kubernetes_namespace', pod: 'kubernetes_pod_name' },
];

export const DEFAULT_ALERTMANAGER_CONFIG: AlertmanagerConfig = {
  targetLabels: DEFAULT_TARGET_LABELS,
  alertnames: [],
  severities: ['critical'],
  releaseOnResolve: false,
};

/** `ns/pod` family names, for messages. */
export function familyText(f: TargetLabels): string {
  return `${f.namespace}/${f.pod}`;
}

/**
 * The namespace and pod an alert names. Every family of `families` present on the alert (either of its
 * labels set; an empty label is none) is read:
 * - a family with one of its two labels only: rejected, naming both labels;
 * - a value that is not a namespace or pod name: rejected, naming the label;
 * - families that name different pods: rejected, naming each family's namespace/pod (neither isolated);
 * - otherwise the one pod they all name. No family present: ignored (the alert names no pod).
 */
function alertTarget(
  a: AmAlert,
  families: TargetLabels[],
): { namespace: string; pod: string } | Extract<AlertAction, { action: 'ignore' | 'reject' }> {
  const label = (k: string): string | undefined => {
    const v = a.labels[k];
    return v === undefined || v === '' ? undefined : v;
  };
  const found: { family: TargetLabels; namespace: string; pod: string }[] = [];
  for (const f of families) {
    const namespace = label(f.namespace);
    const pod = label(f.pod);
    if (namespace === undefined && pod === undefined) continue;
    if (namespace === undefined || pod === undefined) {
      const [has, lacks] = namespace === undefined ? [f.pod, f.namespace] : [f.namespace, f.pod];
      return {
        action: 'reject',
        reason: `alert ${a.fingerprint} has the label ${has} but not ${lacks}: a pod is named by both labels of a family, never completed from another`,
      };
    }
    if (!isDnsLabel(namespace))
      return {
        action: 'reject',
        reason: `alert ${a.fingerprint}: label ${f.namespace} ${JSON.stringify(namespace)} is not a namespace name`,
      };
    if (!isPodName(pod))
      return {
        action: 'reject',
        reason: `alert ${a.fingerprint}: label ${f.pod} ${JSON.stringify(pod)} is not a pod name`,
      };
    found.push({ family: f, namespace, pod });
  }
  const first = found[0];
  if (first === undefined)
    return {
      action: 'ignore',
      reason: `alert ${a.fingerprint} has none of the label pairs ${families.map(familyText).join(', ')}`,
    };
  if (found.some((x) => x.namespace !== first.namespace || x.pod !== first.pod))
    return {
      action: 'reject',
      reason: `alert ${a.fingerprint} names different pods: ${found.map((x) => `${familyText(x.family)} ${x.namespace}/${x.pod}`).join(', ')}; every label family on an alert must name the same pod (--alertmanager-target-labels reads only the families given)`,
    };
  return { namespace: first.namespace, pod: first.pod };
}

/** Decides what each alert of a payload asks for, in payload order. */
export function alertmanagerActions(
  payload: AmPayload,
  config: AlertmanagerConfig,
  defaults: IsolationDefaults,
  receivedAt: string,
): AlertAction[] {
  return payload.alerts.map((a): AlertAction => {
    const alertname = a.labels.alertname ?? '';
    if (config.alertnames.length > 0 && !config.alertnames.includes(alertname))
      return { action: 'ignore', reason: `alertname ${JSON.stringify(alertname)} is not in the allow-list` };
    if (config.severities.length > 0) {
      const sev = a.labels.severity;
      if (sev === undefined || sev === '')
        return {
          action: 'ignore',
          reason: `alert ${a.fingerprint} has no severity label (isolating severities: ${config.severities.join(', ')})`,
        };
      if (!config.severities.includes(sev.toLowerCase()))
        return {
          action: 'ignore',
          reason: `severity ${JSON.stringify(sev)} is not one of the isolating severities (${config.severities.join(', ')})`,
        };
    }
    const target = alertTarget(a, config.targetLabels);
    if ('action' in target) return target;
    const { namespace, pod } = target;
    const key = alertmanagerIncidentKey(a.fingerprint, namespace, pod);
    const name = isolationName('alert', pod, key);
    if (a.status === 'resolved') {
      if (!config.releaseOnResolve)
        return { action: 'ignore', key, reason: 'resolved alerts do not release (releaseOnResolve is off)' };
      return { action: 'release', key, namespace, name };
    }
    const summary = a.annotations.summary ?? a.annotations.description ?? '';
    return {
      action: 'isolate',
      key,
      namespace,
      name,
      pod,
      isolation: buildIsolation({
        namespace,
        name,
        pod,
        key,
        reason: `Alertmanager: ${alertname || 'alert'}${summary ? `: ${summary}` : ''}`,
        incident: `alertmanager fingerprint ${a.fingerprint} since ${a.startsAt ?? receivedAt}`,
        requestedBy: `alertmanager${payload.receiver ? `/${payload.receiver}` : ''}`,
        receivedAt,
        defaults,
        labels: { 'microseg.dev/trigger': 'alertmanager' },
      }),
    };
  });
}
