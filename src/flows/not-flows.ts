/**
 * Records that are no flow of any format but are easily given as flows by mistake: a Falco alert (for
 * the controller's Falco webhook), an Alertmanager webhook payload (for its Alertmanager webhook) and a
 * Kubernetes object or List (for --cluster; a source of nothing but network policies, for where the
 * command takes them). The reader looks at a record with these only once its format has refused it, so
 * reading good records costs nothing more.
 */
import { FlowInputError } from './errors.ts';

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Whether `o` is shaped as a Falco alert (its JSON output, or what Falcosidekick forwards): a string
 * `rule` and `priority`, with the `output` text or the `output_fields` object. No flow format has
 * these fields (the generic schema refuses them).
 */
export function isFalcoAlert(o: unknown): boolean {
  if (!isObj(o)) return false;
  return (
    typeof o.rule === 'string' &&
    typeof o.priority === 'string' &&
    (typeof o.output === 'string' || isObj(o.output_fields))
  );
}

/** The fields of a Falco alert that tell it, those it has (`output, priority, rule and output_fields`). */
function falcoFields(o: Obj): string {
  const fields = ['output', 'priority', 'rule', 'output_fields'].filter((k) =>
    k === 'output_fields' ? isObj(o[k]) : typeof o[k] === 'string',
  );
  return andList(fields);
}

/**
 * The text of a Falco alert given as flows, after what it is said of: `not flows` for a whole source
 * (the file), `not a flow` for a record of one; `given` is where it was given (`--flows`, or
 * `POST /v1/flows` for the push endpoint).
 */
export function falcoAlertText(o: unknown, not = 'not flows', given = '--flows'): string {
  return (
    `a Falco alert, ${not} (it has ${falcoFields(o as Obj)}): ` +
    `Falco alerts are for the controller's webhook (POST /webhooks/falco), not ${given}`
  );
}

/** The text of an Alertmanager webhook payload given as flows, as falcoAlertText's. */
function alertmanagerText(o: Obj, not: string, given: string): string {
  return (
    `an Alertmanager webhook payload, ${not} (it has ${alertmanagerFields(o)}): ` +
    `Alertmanager alerts are for the controller's webhook (POST /webhooks/alertmanager), not ${given}`
  );
}

/**
 * When the record that tells a source's format is a Falco alert or an Alertmanager webhook payload, no
 * flow of any format, the text that says so for the whole source, after what it is said of (the file);
 * undefined for anything else.
 */
export function alertSourceText(o: unknown): string | undefined {
  if (isFalcoAlert(o)) return falcoAlertText(o);
  if (isAlertmanagerPayload(o)) return alertmanagerText(o as Obj, 'not flows', '--flows');
  return undefined;
}

/**
 * Whether `o` is shaped as a Prometheus Alertmanager webhook payload: a string `version`, an `alerts`
 * list and a string `status`, `receiver` or `groupKey`. No flow format has these fields.
 */
export function isAlertmanagerPayload(o: unknown): boolean {
  if (!isObj(o)) return false;
  return (
    typeof o.version === 'string' &&
    Array.isArray(o.alerts) &&
    (typeof o.status === 'string' || typeof o.receiver === 'string' || typeof o.groupKey === 'string')
  );
}

/** The fields of an Alertmanager webhook payload that tell it, those it has (`version, groupKey, status, receiver and alerts`). */
function alertmanagerFields(o: Obj): string {
  const fields = ['version', 'groupKey', 'status', 'receiver'].filter((k) => typeof o[k] === 'string');
  return andList([...fields, 'alerts']);
}

/**
 * A Kubernetes object (a string `kind` and `apiVersion`) of a kind other than NetworkNeighborhood: its
 * kind, and whether Kubernetes itself defines its API group (the core group `v1`, a group without a dot
 * such as `apps` or `batch`, or one under `k8s.io`), as a cluster snapshot's objects are; undefined
 * for anything else.
 */
export function otherKubernetesKind(o: unknown): { kind: string; core: boolean } | undefined {
  if (!isObj(o)) return undefined;
  const { kind, apiVersion } = o;
  if (typeof kind !== 'string' || kind === '' || kind === 'NetworkNeighborhood') return undefined;
  if (typeof apiVersion !== 'string' || apiVersion === '') return undefined;
  const slash = apiVersion.indexOf('/');
  const group = slash < 0 ? '' : apiVersion.slice(0, slash);
  return { kind, core: !group.includes('.') || group.endsWith('.k8s.io') };
}

/**
 * Where the objects of a cluster belong, said of those given where flows are (`given`): `--cluster` for
 * the CLI; the controller reads them from the API server, so that is where the push endpoint sends them.
 */
function clusterAdvice(given: string): string {
  return given === '--flows'
    ? 'objects of a cluster are for --cluster, not --flows'
    : `the controller reads the objects of a cluster from the API server (the CLI takes them with --cluster), not ${given}`;
}

/**
 * Whether a Kubernetes object's kind (otherKubernetesKind's) is a network policy whose API Kubernetes
 * defines: a NetworkPolicy, or a cluster-wide tier (AdminNetworkPolicy, BaselineAdminNetworkPolicy,
 * ClusterNetworkPolicy). Other projects' (Cilium's, Calico's) are not, as their groups are not.
 */
export function isNetworkPolicyKind(k: { kind: string; core: boolean }): boolean {
  return k.core && k.kind.endsWith('NetworkPolicy');
}

/** `a`, `a and b`, `a, b and c`. */
function andList(items: readonly string[]): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} and ${items.at(-1)}`;
}

/** `Pod shop/web-1`, `Namespace shop`, `Pod` (no name): how a Kubernetes object is named. */
function objectName(kind: string, o: Obj): string {
  const meta = isObj(o.metadata) ? o.metadata : {};
  const name = typeof meta.name === 'string' && meta.name !== '' ? meta.name : undefined;
  const ns = typeof meta.namespace === 'string' && meta.namespace !== '' ? meta.namespace : undefined;
  if (name === undefined) return kind;
  return `${kind} ${ns === undefined ? name : `${ns}/${name}`}`;
}

/**
 * Why a record its format refused is no flow at all, when it is a Falco alert, an Alertmanager webhook
 * payload or (unless `kubernetes` is false: a Kubescape source names the kinds it refuses itself) a
 * Kubernetes object or List: a bad record whose
 * reason and message name what it is and where it belongs, rather than where it was given (`given`:
 * `--flows`, or `POST /v1/flows` for the push endpoint). Undefined for anything else (the format's own
 * refusal stands).
 */
export function notFlowRecord(o: unknown, kubernetes = true, given = '--flows'): FlowInputError | undefined {
  if (!isObj(o)) return undefined;
  if (isFalcoAlert(o)) return new FlowInputError('falco-alert', falcoAlertText(o, 'not a flow', given));
  if (isAlertmanagerPayload(o))
    return new FlowInputError('alertmanager-payload', alertmanagerText(o, 'not a flow', given));
  if (!kubernetes) return undefined;
  if (typeof o.kind === 'string' && o.kind.endsWith('List') && Array.isArray(o.items))
    return new FlowInputError(
      'kubernetes-object',
      `a Kubernetes ${o.kind} of ${o.items.length} object(s), not flows: ${clusterAdvice(given)}`,
    );
  const other = otherKubernetesKind(o);
  if (other !== undefined)
    return new FlowInputError(
      'kubernetes-object',
      `a Kubernetes object (${objectName(other.kind, o)}, apiVersion ${o.apiVersion as string}), ` +
        `not a flow: ${clusterAdvice(given)}`,
    );
  return undefined;
}

/**
 * notFlowRecord of a JSON line its format refused: parsed again, which only a refused line is, so the
 * lines that are flows are parsed once. Undefined for a line that is no JSON object.
 */
export function notFlowLine(line: string, kubernetes = true): FlowInputError | undefined {
  // Only an object can be one: a line that does not start as one is not parsed again.
  let i = 0;
  while (i < line.length && (line.charCodeAt(i) === 0x20 || line.charCodeAt(i) === 0x09)) i++;
  if (line.charCodeAt(i) !== 0x7b) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return undefined;
  }
  return notFlowRecord(parsed, kubernetes);
}
