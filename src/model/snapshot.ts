import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessageChannel, receiveMessageOnPort, Worker } from 'node:worker_threads';
import type { ResourceLimits } from 'node:worker_threads';
import { Composer, LineCounter, Parser } from 'yaml';
import type { CST } from 'yaml';
import type {
  CronJob,
  EndpointSlice,
  KObject,
  Namespace,
  NetworkPolicy,
  OtherObject,
  Pod,
  Service,
  WorkloadObject,
} from './k8s.ts';
import { unknownFieldMessage, unknownPolicyFields } from './unknown-fields.ts';
import { DUPLICATE_KEY_MESSAGE, firstDuplicateKey, YAML_COMPOSE_OPTIONS } from './yaml-keys.ts';
import { parseAddr } from '../verify/ip.ts';
import { byteOrder } from './order.ts';

/**
 * A cluster snapshot: what `kubectl get ns,pods,svc,endpointslices,deploy,rs,sts,ds,jobs,cronjobs,
 * networkpolicies -A -o json` prints, as plain typed data. Objects of other kinds (Nodes, the cluster-scoped
 * policy kinds, ...) are kept in `others` for the stages that understand them.
 */
export interface ClusterSnapshot {
  namespaces: Namespace[];
  pods: Pod[];
  services: Service[];
  endpointSlices: EndpointSlice[];
  workloads: WorkloadObject[];
  cronJobs: CronJob[];
  networkPolicies: NetworkPolicy[];
  others: OtherObject[];
  /**
   * Services deleted since (only the controller's cache gives these; no object read from a file is one):
   * each held its ClusterIPs from its creation until `deletedAt`. A Service of `services` with
   * `metadata.deletionTimestamp` is not deleted yet: a finalizer holds it, and kube-proxy still forwards
   * to it. Read in the order of `compareDeletedServices`, whatever the order listed.
   */
  deletedServices?: DeletedService[];
}

/** A Service that was deleted, kept for the flows to its ClusterIP from before its deletion. */
export interface DeletedService {
  service: Service;
  /** When it was deleted (milliseconds since the epoch): when its object was removed, not its deletionTimestamp. */
  deletedAt: number;
  /**
   * Its EndpointSlices when it was deleted (those it owned, by its uid): a Service of the same name
   * created since has its own, among the snapshot's.
   */
  endpointSlices: EndpointSlice[];
}

/**
 * The canonical order of deleted Services: by the time of their deletion, then namespace, name and uid,
 * so that nothing read from them depends on the order in which their deletions were seen.
 */
export function compareDeletedServices(a: DeletedService, b: DeletedService): number {
  if (a.deletedAt !== b.deletedAt) return a.deletedAt - b.deletedAt;
  const key = (d: DeletedService) => [
    d.service.metadata.namespace ?? '',
    d.service.metadata.name,
    d.service.metadata.uid ?? '',
  ];
  const [ka, kb] = [key(a), key(b)];
  for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return byteOrder(ka[i]!, kb[i]!);
  return 0;
}

export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InputError';
  }
}

/** The file each policy object read by the CLI came from (`noteSource`), for messages about it. */
const SOURCES = new WeakMap<object, string>();

/** The unknown fields of each policy object read from a file, said as warnings (`unknownFieldWarnings`). */
const UNKNOWN_FIELDS = new WeakMap<object, string[]>();

/**
 * The warnings about unknown fields of the snapshot's policy objects (`SnapshotOptions.unknownFields`),
 * naming the file, the object and the field, in the order the objects are held.
 */
export function unknownFieldWarnings(snap: ClusterSnapshot): string[] {
  const out: string[] = [];
  for (const list of [snap.networkPolicies, snap.others])
    for (const o of list as object[]) out.push(...(UNKNOWN_FIELDS.get(o) ?? []));
  return out;
}

/** Records that `obj` was read from `source`, so that a later message about it can name the file. */
export function noteSource(obj: object, source: string): void {
  SOURCES.set(obj, source);
}

/** The file `obj` was read from, when it was noted (`noteSource`). */
export function sourceOf(obj: object): string | undefined {
  return SOURCES.get(obj);
}

export function emptySnapshot(): ClusterSnapshot {
  return {
    namespaces: [],
    pods: [],
    services: [],
    endpointSlices: [],
    workloads: [],
    cronJobs: [],
    networkPolicies: [],
    others: [],
  };
}

/** The apiVersion of the NetworkPolicy the engine evaluates. */
export const NETWORK_POLICY_API_VERSION = 'networking.k8s.io/v1';

const WORKLOAD_KINDS = new Set(['Deployment', 'ReplicaSet', 'StatefulSet', 'DaemonSet', 'Job']);
const NAMESPACED_KINDS = new Set([
  'Pod',
  'Service',
  'EndpointSlice',
  'NetworkPolicy',
  'CronJob',
  ...WORKLOAD_KINDS,
]);

/**
 * The most levels of lists and objects inside one another a file or body may hold, counted from its
 * top (a document's value is at level 1). Kubernetes objects need a few dozen (a CustomResourceDefinition's
 * schema in a kustomize build); what reads the objects (the YAML reader, `flattenLists`, compaction, the
 * snapshot, the copy out of a worker thread) recurses, and a text of `[` a few hundred KiB long would
 * overflow its stack: an internal error for what is the input's fault.
 */
export const MAX_NESTING = 1000;

/** The error of an input nested more than `MAX_NESTING` levels deep, naming it. */
export function nestedTooDeeply(source: string): InputError {
  return new InputError(
    `${source}: nested more than ${MAX_NESTING} levels deep (lists and objects inside one another), deeper than any Kubernetes object`,
  );
}

/** Whether `value` (at level 1) holds lists or objects more than `MAX_NESTING` levels deep. */
function deeperThanLimit(value: unknown): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const [v, level] = top;
    if (v === null || typeof v !== 'object') continue;
    if (level > MAX_NESTING) return true;
    for (const child of Object.values(v)) stack.push([child, level + 1]);
  }
  return false;
}

/**
 * Whether a YAML document's syntax tree holds collections more than `MAX_NESTING` levels deep: looked
 * at before the document is composed, since composing recurses (a few thousand levels overflow it).
 */
function yamlDeeperThanLimit(doc: CST.Document): boolean {
  const stack: [CST.Token | null | undefined, number][] = [[doc.value, 1]];
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const [token, level] = top;
    if (token?.type !== 'block-map' && token?.type !== 'block-seq' && token?.type !== 'flow-collection')
      continue;
    if (level > MAX_NESTING) return true;
    for (const item of token.items as { key?: CST.Token | null; value?: CST.Token }[])
      stack.push([item.key, level + 1], [item.value, level + 1]);
  }
  return false;
}

/** The parser's tokens, each document refused before it is composed when it is nested too deeply. */
function* shallowDocuments(tokens: Iterable<CST.Token>, source: string): Generator<CST.Token> {
  for (const token of tokens) {
    if (token.type === 'document' && yamlDeeperThanLimit(token)) throw nestedTooDeeply(source);
    yield token;
  }
}

/**
 * Parses JSON (a List, an array or one object) or multi-document YAML text into objects. Lists and
 * objects nested more than `MAX_NESTING` levels deep are refused (`nestedTooDeeply`).
 * `ownStack`: YAML is read on the calling thread's stack alone, never handed to a thread with a larger
 * one (which would escape the caller's resource limits); for a thread whose stack is `DEEP_STACK_MB`,
 * as the server's parsing thread's is. What overflows it is refused as nested too deeply.
 */
export function parseObjectsText(text: string, source: string, opts: { ownStack?: boolean } = {}): unknown[] {
  return parseValues(text, source, opts.ownStack ?? false).objects;
}

/**
 * `parseObjectsText` for a cluster snapshot file: text that holds no value at all but null (`null`, YAML
 * documents that are empty or null, `---` alone) is refused naming the file, not read as a cluster with
 * no object: it is a file written wrong far more often than an empty cluster, which kubectl writes as a
 * List with no items (read as such).
 */
export function parseSnapshotText(text: string, source: string): unknown[] {
  const { objects, values } = parseValues(text, source);
  if (values === 0) throw new InputError(`${source}: ${NO_VALUE}`);
  return objects;
}

/** What a snapshot file that holds only null is refused as (`parseSnapshotText`), after its name. */
export const NO_VALUE =
  'no object in the file, only null or empty YAML documents (a cluster with no object is a List with no items: {"kind":"List","items":[]})';

/**
 * What a text with nothing in it but whitespace is, said of `what` (`the file`, `body`): `is empty`
 * when it holds no character, else `holds only whitespace`; undefined when it holds more. The same for
 * every input of microseg that is read as text.
 */
export function blankText(text: string, what = 'the file'): string | undefined {
  if (text === '') return `${what} is empty`;
  return text.trim() === '' ? `${what} holds only whitespace` : undefined;
}

/** What the YAML thread answers (yaml-stack-worker.ts): what `parseValues` read, or its error. */
export type DeepStackReply =
  { parsed: { objects: unknown[]; values: number } } | { error: string; input: boolean };

/**
 * Whether `err` is the call stack's overflow ("Maximum call stack size exceeded"), not another
 * RangeError (an invalid string or array length): only that is read again on a larger stack, or said as
 * nesting too deep.
 */
export function isStackOverflow(err: unknown): boolean {
  return err instanceof RangeError && /call stack/i.test(err.message);
}

/**
 * The stack of a thread that reads YAML as deep as MAX_NESTING (~2 MiB needed): the one that reads it
 * when the caller's stack is too small (`parseValuesInThread`), and the server's parsing thread.
 */
export const DEEP_STACK_MB = 16;
/** How long the caller waits for that thread before giving up (it answers in well under a second). */
const DEEP_STACK_WAIT_MS = 60_000;

/**
 * The thread `parseValuesInThread` starts: its module (yaml-stack-worker.ts beside this file in the
 * sources, yaml-stack-worker.js once built) and its resource limits. Tests change them to see it fail.
 */
export const deepStackThread: { file: URL; resourceLimits: ResourceLimits } = {
  file: new URL(`./yaml-stack-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url),
  resourceLimits: { stackSizeMb: DEEP_STACK_MB },
};

/** `parseValues` as the YAML thread runs it: never handing the text on to yet another thread. */
export function parseValuesOnDeepStack(text: string, source: string): { objects: unknown[]; values: number } {
  return parseValues(text, source, true);
}

/** What the thread watching the YAML thread says when that one stopped without answering. */
interface DeepStackDeath {
  /** Why it stopped: its error's message, or its exit code. */
  died: string;
  /** It ran out of memory (ERR_WORKER_OUT_OF_MEMORY). */
  oom: boolean;
}

/**
 * The thread that starts the YAML thread and watches it, with an event loop free to hear it stop (the
 * caller's is held in `Atomics.wait`): when it fails to load, runs out of memory or exits without
 * answering, this says why on `watch` and wakes the caller at once. Plain JavaScript run as given
 * (`eval`), so that it cannot fail to load itself; the text, port and flag go on to the YAML thread.
 */
const DEEP_STACK_WATCH = `
const { Worker, workerData } = require('node:worker_threads');
const { file, resourceLimits, watch, flag, ...reader } = workerData;
const done = new Int32Array(flag);
const stopped = (died) => {
  if (Atomics.load(done, 0) !== 0) return;
  watch.postMessage(died);
  Atomics.store(done, 0, 1);
  Atomics.notify(done, 0);
};
const worker = new Worker(new URL(file), {
  workerData: { ...reader, flag },
  transferList: [reader.port],
  resourceLimits,
});
worker.on('error', (err) =>
  stopped({ died: String(err && err.message), oom: !!err && err.code === 'ERR_WORKER_OUT_OF_MEMORY' }),
);
worker.on('exit', (code) => stopped({ died: 'it exited with code ' + code, oom: false }));
`;

/**
 * `parseValues` of YAML whose composing overflowed the caller's stack, on a thread whose stack holds
 * MAX_NESTING levels (the caller's may hold some 800 in flow style, less deep in the call stack): waited
 * for, so that reading stays synchronous, and so the limit is the same for YAML as for JSON. That thread
 * stopping without answering is an error naming the input at once, not after the wait: an `InputError`
 * when it ran out of memory (the text is too large to read), another error when it could not load.
 */
function parseValuesInThread(text: string, source: string): { objects: unknown[]; values: number } {
  const replies = new MessageChannel();
  const deaths = new MessageChannel();
  const flag = new SharedArrayBuffer(4);
  const watcher = new Worker(DEEP_STACK_WATCH, {
    eval: true,
    workerData: {
      file: deepStackThread.file.href,
      resourceLimits: deepStackThread.resourceLimits,
      watch: deaths.port2,
      flag,
      text,
      source,
      port: replies.port2,
    },
    transferList: [deaths.port2, replies.port2],
  });
  try {
    Atomics.wait(new Int32Array(flag), 0, 0, DEEP_STACK_WAIT_MS);
    // An answer given before the thread stopped stands.
    const reply = receiveMessageOnPort(replies.port1)?.message as DeepStackReply | undefined;
    if (reply !== undefined) {
      if ('parsed' in reply) return reply.parsed;
      throw reply.input ? new InputError(reply.error) : new Error(reply.error);
    }
    const death = receiveMessageOnPort(deaths.port1)?.message as DeepStackDeath | undefined;
    if (death?.oom)
      throw new InputError(`${source}: too large to read: the YAML reader's thread ran out of memory`);
    if (death !== undefined)
      throw new Error(`${source}: the YAML reader's thread stopped without answering: ${death.died}`);
    throw new Error(`${source}: the YAML reader's thread did not answer in ${DEEP_STACK_WAIT_MS / 1000} s`);
  } finally {
    replies.port1.close();
    deaths.port1.close();
    void watcher.terminate();
  }
}

/**
 * The objects of the text, and how many values (JSON values, YAML documents) not null it holds.
 * `deepStack`: on the YAML thread (`parseValuesInThread`), or on a thread that must not start it (`ownStack`):
 * what overflows the stack there is refused as nested too deeply.
 */
function parseValues(
  text: string,
  source: string,
  deepStack = false,
): { objects: unknown[]; values: number } {
  const trimmed = text.trimStart();
  const blank = blankText(text);
  if (blank !== undefined) throw new InputError(`${source}: ${blank}`);
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      if (err instanceof RangeError) throw nestedTooDeeply(source);
      throw new InputError(`${source}: not valid JSON: ${(err as Error).message}`);
    }
    if (deeperThanLimit(parsed)) throw nestedTooDeeply(source);
    return { objects: flattenLists(parsed, source), values: 1 };
  }
  // One document at a time, each turned into plain data and dropped before the next is composed:
  // `parseAllDocuments` holds every document's syntax tree until the last is parsed (a 7 MB kustomize
  // build took twice the memory and twice the time). Errors read as that function words them.
  const lines = new LineCounter();
  const out: unknown[] = [];
  let i = 0;
  let values = 0;
  const tokens = shallowDocuments(new Parser(lines.addNewLine).parse(text), source);
  // Keys given twice are looked for in one pass (yaml-keys.ts), not by the library's check, which
  // takes the square of a map's keys.
  for (const doc of new Composer(YAML_COMPOSE_OPTIONS).compose(tokens)) {
    i++;
    const duplicate = firstDuplicateKey(doc);
    const first = doc.errors[0];
    // The first of the document's problems in the text, as the library's own check said them.
    const err =
      duplicate !== undefined && (first === undefined || first.pos[0] === -1 || duplicate < first.pos[0])
        ? { pos: [duplicate], code: 'DUPLICATE_KEY', message: DUPLICATE_KEY_MESSAGE }
        : first;
    if (err !== undefined) {
      const at = err.pos[0] === -1 ? undefined : lines.linePos(err.pos[0]);
      // Composing overflowed its stack (the library says RESOURCE_EXHAUSTION, with the message of what
      // it caught) on a document within the limit: read again on a thread whose stack holds it. There
      // too, the reader's own limit, said in words, not as "Maximum call stack size exceeded".
      const overflow = err.code === 'RESOURCE_EXHAUSTION' && /call stack/i.test(err.message);
      if (overflow && !deepStack) return parseValuesInThread(text, source);
      const what = overflow ? 'lists and objects nested too deeply for the YAML reader' : err.message;
      const message = at === undefined ? what : `${what} at line ${at.line}, column ${at.col}`;
      throw new InputError(`${source}: YAML document ${i}: ${message.split('\n')[0]}`);
    }
    let value: unknown;
    try {
      value = doc.toJS();
    } catch (e) {
      // Aliases may nest deeper than the text shows; a value within the limit is read again on a thread
      // whose stack holds it. Any other RangeError is the text's, said below.
      if (isStackOverflow(e)) {
        if (!deepStack) return parseValuesInThread(text, source);
        throw nestedTooDeeply(source);
      }
      // What composing let through and turning into data refuses: aliases that would expand without
      // bound ("Excessive alias count ..."), an alias to no anchor. The text's fault, said as such.
      throw new InputError(`${source}: YAML document ${i}: ${(e as Error).message.split('\n')[0]}`);
    }
    if (value === null || value === undefined) continue;
    if (deeperThanLimit(value)) throw nestedTooDeeply(source);
    values++;
    out.push(...flattenLists(value, source));
  }
  return { objects: out, values };
}

/**
 * The items of a list without a kind of their own, and the list's kind when it names none (`List`, or
 * undefined for a list without a kind): refused with a message that says so (SnapshotBuilder.add).
 */
const KINDLESS_ITEMS = new WeakMap<object, { listKind: string | undefined; unread?: true }>();

/**
 * How much of a list a streamed reader holds waiting for the list's kind when it comes after its items
 * (keys sorted, as `jq -S` writes them) and they have none of their own (a raw list: `kubectl get --raw`):
 * at most this many items, and this many bytes of their text. Past either, the items of that list are
 * read by their own kind (listItem's `kindUnread`), one without a kind refused saying so.
 */
export const LIST_KIND_WAIT = { items: 1000, bytes: 16 * 1024 * 1024 } as const;

/**
 * Why an item of a list has no kind (listItem marked it: its list names none, or its list's kind came
 * after more of its items than LIST_KIND_WAIT), and what to do about it; undefined for any other value.
 */
export function kindlessItem(item: unknown): string | undefined {
  if (item === null || typeof item !== 'object' || (item as { kind?: unknown }).kind !== undefined) return;
  const kindless = KINDLESS_ITEMS.get(item);
  if (kindless === undefined) return;
  if (kindless.unread === true)
    return (
      `it has no kind, and its list's kind comes after more than ${LIST_KIND_WAIT.items} of its items ` +
      `or ${LIST_KIND_WAIT.bytes / 1024 / 1024} MiB of them (keys sorted, as jq -S writes them), more ` +
      'than microseg holds waiting for it; get the list with kubectl get <resource> -o json (each item ' +
      'with its kind), or keep its keys in the order kubectl get --raw writes them (jq without -S)'
    );
  return (
    'it has no kind, and its list ' +
    `${kindless.listKind === undefined ? '(with no kind)' : `(${kindless.listKind})`} does not name one ` +
    "(a PodList or a DeploymentList names its items' kind); give the objects as kubectl get -o json " +
    'writes them, each with its kind'
  );
}

/** The kind a list's kind names its items' (`PodList`: `Pod`), if it names one (`List` does not). */
function itemKindOf(listKind: unknown): string | undefined {
  return typeof listKind === 'string' && listKind.length > 'List'.length && listKind.endsWith('List')
    ? listKind.slice(0, -'List'.length)
    : undefined;
}

/**
 * An item of a list, given the kind and apiVersion of the list (`list`, its `kind` and `apiVersion` as
 * far as they are known): one without a kind of its own, as the API serves its lists (`kubectl get --raw
 * /api/v1/pods`: a PodList whose items have neither), takes the kind the list's names (Pod) and, if it
 * has none of its own, the list's apiVersion; in a list that names no kind (a List, or a list without a
 * kind) it is marked, so that its refusal says so. `kindUnread`: the list's kind was not read before
 * LIST_KIND_WAIT of its items had been, which a streamed reader holds no more of: an item without a kind
 * is marked as such. Changes the item in place; returns it.
 */
export function listItem(
  item: unknown,
  list: { kind?: unknown; apiVersion?: unknown },
  kindUnread = false,
): unknown {
  if (item === null || typeof item !== 'object' || Array.isArray(item)) return item;
  const o = item as Record<string, unknown>;
  if (o.kind !== undefined) return item;
  if (kindUnread) {
    KINDLESS_ITEMS.set(o, { listKind: undefined, unread: true });
    return item;
  }
  const kind = itemKindOf(list.kind);
  if (kind === undefined) {
    KINDLESS_ITEMS.set(o, { listKind: typeof list.kind === 'string' ? list.kind : undefined });
    return item;
  }
  o.kind = kind;
  if (o.apiVersion === undefined && typeof list.apiVersion === 'string') o.apiVersion = list.apiVersion;
  return item;
}

export function flattenLists(value: unknown, source: string): unknown[] {
  if (Array.isArray(value)) return value.flatMap((v) => flattenLists(v, source));
  if (value !== null && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    if (typeof o.kind === 'string' && o.kind.endsWith('List')) {
      if (Array.isArray(o.items)) return o.items.flatMap((v) => flattenLists(listItem(v, o), source));
      // A List has no name; an object of a kind ending in List with one is an object (a custom kind).
      const name = (o.metadata as { name?: unknown } | null | undefined)?.name;
      if (typeof name !== 'string' || name === '') {
        // Items null or missing is an empty List, as the API server and kubectl read it (a Go program
        // marshalling an empty List with a nil slice writes "items": null); any other value is refused
        // as such, not as an object without metadata.
        if (o.items === null || o.items === undefined) return [];
        throw new InputError(
          `${source}: ${o.kind}: items must be a list of objects, found ${jsonType(o.items)}`,
        );
      }
    }
    return [value];
  }
  throw new InputError(
    `${source}: expected Kubernetes objects, found ${value === null ? 'null' : typeof value}`,
  );
}

export interface SnapshotOptions {
  /** What to do with an object whose kind no stage knows: keep it in `others`, or fail. Default keep. */
  unknownKinds?: 'keep' | 'error';
  /** Kinds that are known to some stage and go to `others` without complaint. */
  extraKinds?: readonly string[];
  /**
   * What to do with a field a policy object's API does not define (`unknownPolicyFields`): read the
   * object without it, as the API server stores it, and keep a warning (`unknownFieldWarnings`), or
   * fail (the commands' `--strict`). Default warn.
   */
  unknownFields?: 'warn' | 'error';
}

/** Describes an object for error messages: `Pod shop/cart-1` or `item 3`. */
export function describeObject(obj: unknown, index: number): string {
  const o = obj as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } } | null;
  const kind = typeof o?.kind === 'string' ? o.kind : undefined;
  const name = typeof o?.metadata?.name === 'string' ? o.metadata.name : undefined;
  const ns = typeof o?.metadata?.namespace === 'string' ? o.metadata.namespace : undefined;
  if (kind && name) return `${kind} ${ns ? `${ns}/` : ''}${name}`;
  return `item ${index + 1}${kind ? ` (${kind})` : ''}`;
}

/** The JSON type of a value for messages: `null`, `array`, or its `typeof`. */
export function jsonType(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

/** Where a pod template is, loosely: what a workload's spec, or a job template's, may hold. */
type PodTemplateOf = { template?: { spec?: unknown } | null } | null;

/** Whether `v` is an integer from 0 to 65535 (0: no port, as the generated clusters give it). */
function isPort(v: unknown): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 65535;
}

/**
 * The entries of `v` at `field` of `where`, a list (or null or absent: none) of objects; anything else is
 * refused naming the field, or the entry, and the type found.
 */
function objectList(where: string, field: string, v: unknown): Record<string, unknown>[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v))
    throw new InputError(`${where}: ${field} must be a list of objects, found ${jsonType(v)}`);
  v.forEach((e: unknown, i) => {
    if (e === null || typeof e !== 'object' || Array.isArray(e))
      throw new InputError(`${where}: ${field}[${i}] must be an object, found ${jsonType(e)}`);
  });
  return v as Record<string, unknown>[];
}

/**
 * Checks the types of the containers of a pod spec (at `at`: `spec`, `spec.template.spec`), which
 * identity reads for named ports and published host ports: `containers` and `initContainers` lists (or
 * null) of objects, their `ports` lists (or null) of objects with an integer `containerPort` and
 * `hostPort` from 0 to 65535, and a string `name` and `protocol`, when given.
 */
function checkPodSpec(where: string, at: string, spec: unknown): void {
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) return;
  for (const key of ['containers', 'initContainers']) {
    const field = `${at}.${key}`;
    objectList(where, field, (spec as Record<string, unknown>)[key]).forEach((c, i) => {
      objectList(where, `${field}[${i}].ports`, c.ports).forEach((port, j) => {
        const pf = `${field}[${i}].ports[${j}]`;
        if (!isPort(port.containerPort))
          throw new InputError(
            `${where}: ${pf}.containerPort must be an integer from 0 to 65535, found ${String(JSON.stringify(port.containerPort))}`,
          );
        if (port.hostPort !== undefined && port.hostPort !== null && !isPort(port.hostPort))
          throw new InputError(
            `${where}: ${pf}.hostPort must be an integer from 0 to 65535, found ${JSON.stringify(port.hostPort)}`,
          );
        for (const k of ['name', 'protocol'])
          if (port[k] !== undefined && port[k] !== null && typeof port[k] !== 'string')
            throw new InputError(`${where}: ${pf}.${k} must be a string, found ${jsonType(port[k])}`);
      });
    });
  }
}

/**
 * Checks the types of a Node's `status.addresses`, which identity takes for node addresses: a list (or
 * null) of objects whose `address`, when given, is a string.
 */
function checkNodeAddresses(where: string, status: unknown): void {
  if (status === null || typeof status !== 'object' || Array.isArray(status)) return;
  objectList(where, 'status.addresses', (status as { addresses?: unknown }).addresses).forEach((a, i) => {
    const address = a.address;
    if (address !== undefined && address !== null && typeof address !== 'string')
      throw new InputError(
        `${where}: status.addresses[${i}].address must be a string, found ${jsonType(address)}`,
      );
  });
}

/**
 * Checks the types of an object's owner references, which identity follows up to the workload: a list
 * (or null) of objects each with a non-empty `kind` and `name`. Where they point is not checked: an owner
 * missing from the snapshot, or owners in a cycle, are read as the API server would store them.
 */
function checkOwnerReferences(where: string, refs: unknown): void {
  objectList(where, 'metadata.ownerReferences', refs).forEach((r, i) => {
    for (const k of ['kind', 'name']) {
      const v = r[k];
      if (typeof v !== 'string' || v === '')
        throw new InputError(
          `${where}: metadata.ownerReferences[${i}].${k} must be a non-empty string, found ${v === '' ? 'an empty string' : jsonType(v)}`,
        );
    }
  });
}

/**
 * Checks the types of a pod's addresses, which identity and the engine read: `status` an object (or
 * null), `podIP` and `hostIP` strings, `podIPs` and `hostIPs` lists of objects with a string `ip`, each
 * an IP address (or empty, as none): one that is no address would be a pod no address of a flow or a
 * policy's ipBlock could ever match.
 */
function checkPodStatus(where: string, status: unknown): void {
  if (status === undefined || status === null) return;
  if (typeof status !== 'object' || Array.isArray(status))
    throw new InputError(`${where}: status must be an object, found ${jsonType(status)}`);
  const st = status as Record<string, unknown>;
  const address = (field: string, v: string) => {
    if (v !== '' && parseAddr(v) === undefined)
      throw new InputError(`${where}: status.${field} must be an IP address, found ${JSON.stringify(v)}`);
  };
  for (const k of ['podIP', 'hostIP']) {
    if (st[k] === undefined || st[k] === null) continue;
    if (typeof st[k] !== 'string')
      throw new InputError(`${where}: status.${k} must be a string, found ${jsonType(st[k])}`);
    address(k, st[k]);
  }
  for (const k of ['podIPs', 'hostIPs']) {
    const list = st[k];
    if (list === undefined || list === null) continue;
    if (!Array.isArray(list))
      throw new InputError(`${where}: status.${k} must be a list of {ip} objects, found ${jsonType(list)}`);
    list.forEach((e: unknown, i) => {
      if (e === null || typeof e !== 'object' || Array.isArray(e))
        throw new InputError(
          `${where}: status.${k}[${i}] must be an object with a string ip, found ${jsonType(e)}`,
        );
      const ip = (e as { ip?: unknown }).ip;
      if (typeof ip !== 'string')
        throw new InputError(`${where}: status.${k}[${i}].ip must be a string, found ${jsonType(ip)}`);
      address(`${k}[${i}].ip`, ip);
    });
  }
}

/**
 * Builds a snapshot from parsed objects handed over one at a time, checking each object's envelope once,
 * here. Objects may be compacted before they are added (`compactObject`): only what they hold is kept.
 */
export class SnapshotBuilder {
  readonly snapshot: ClusterSnapshot = emptySnapshot();
  private readonly source: string;
  private readonly opts: SnapshotOptions;
  private readonly extra: ReadonlySet<string>;
  private readonly transform: ((obj: object) => object) | undefined;
  private index = -1;

  /** `transform` (e.g. compaction) is applied to each object after it passed the checks. */
  constructor(source: string, opts: SnapshotOptions = {}, transform?: (obj: object) => object) {
    this.source = source;
    this.opts = opts;
    this.extra = new Set(opts.extraKinds ?? []);
    this.transform = transform;
  }

  add(obj: unknown): void {
    const snap = this.snapshot;
    const i = ++this.index;
    const where = `${this.source}: ${describeObject(obj, i)}`;
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj))
      throw new InputError(`${where}: not an object`);
    const o = obj as Record<string, unknown>;
    const kindless = kindlessItem(o);
    if (kindless !== undefined) throw new InputError(`${where}: ${kindless}`);
    if (typeof o.kind !== 'string' || o.kind === '')
      throw new InputError(`${where}: kind must be a non-empty string`);
    const meta = o.metadata as Record<string, unknown> | undefined;
    if (!meta || typeof meta !== 'object') throw new InputError(`${where}: metadata is missing`);
    if (typeof meta.name !== 'string' || meta.name === '')
      throw new InputError(`${where}: metadata.name must be a non-empty string`);
    if (NAMESPACED_KINDS.has(o.kind) && (typeof meta.namespace !== 'string' || meta.namespace === ''))
      throw new InputError(`${where}: metadata.namespace must be a non-empty string for a ${o.kind}`);
    if (meta.labels !== undefined) {
      if (meta.labels === null || typeof meta.labels !== 'object' || Array.isArray(meta.labels))
        throw new InputError(`${where}: metadata.labels must be an object of strings`);
      for (const [k, v] of Object.entries(meta.labels)) {
        if (typeof v !== 'string') throw new InputError(`${where}: metadata.labels.${k} must be a string`);
      }
    }
    if ((o.kind === 'Pod' || o.kind === 'NetworkPolicy') && (!o.spec || typeof o.spec !== 'object'))
      throw new InputError(`${where}: spec is missing`);
    checkOwnerReferences(where, meta.ownerReferences);
    if (o.kind === 'Pod') {
      checkPodSpec(where, 'spec', o.spec);
      checkPodStatus(where, o.status);
    } else if (WORKLOAD_KINDS.has(o.kind)) {
      checkPodSpec(where, 'spec.template.spec', (o.spec as PodTemplateOf | undefined)?.template?.spec);
    } else if (o.kind === 'Node') {
      checkNodeAddresses(where, o.status);
    } else if (o.kind === 'CronJob') {
      const job = (o.spec as { jobTemplate?: { spec?: PodTemplateOf } } | undefined)?.jobTemplate;
      checkPodSpec(where, 'spec.jobTemplate.spec.template.spec', job?.spec?.template?.spec);
    }
    const unknown = unknownPolicyFields(o);
    if (unknown.length > 0 && this.opts.unknownFields === 'error')
      throw new InputError(unknownFieldMessage(where, unknown[0]!, true));
    const t = (this.transform ? this.transform(o) : o) as Record<string, unknown>;
    if (unknown.length > 0)
      UNKNOWN_FIELDS.set(
        t,
        unknown.map((u) => unknownFieldMessage(where, u, false)),
      );
    const k = t as unknown as KObject;
    switch (o.kind) {
      case 'Namespace':
        snap.namespaces.push(k as Namespace);
        break;
      case 'Pod':
        if (!Array.isArray((t.spec as { containers?: unknown }).containers))
          (t.spec as { containers: unknown[] }).containers = [];
        snap.pods.push(k as Pod);
        break;
      case 'Service':
        snap.services.push({ ...(k as Service), spec: t.spec ?? {} });
        break;
      case 'EndpointSlice':
        snap.endpointSlices.push(k as EndpointSlice);
        break;
      case 'NetworkPolicy':
        // Another API's NetworkPolicy (Calico's projectcalico.org/v3) is no Kubernetes NetworkPolicy.
        if (o.apiVersion !== undefined && o.apiVersion !== NETWORK_POLICY_API_VERSION) {
          if (this.opts.unknownKinds === 'error')
            throw new InputError(`${where}: unsupported kind ${o.kind} of ${JSON.stringify(o.apiVersion)}`);
          snap.others.push(t as OtherObject);
        } else snap.networkPolicies.push(k as NetworkPolicy);
        break;
      case 'CronJob':
        snap.cronJobs.push(k as CronJob);
        break;
      default:
        if (WORKLOAD_KINDS.has(o.kind)) {
          snap.workloads.push({ ...(k as WorkloadObject), spec: t.spec ?? {} });
        } else if (this.opts.unknownKinds === 'error' && !this.extra.has(o.kind)) {
          throw new InputError(`${where}: unsupported kind ${o.kind}`);
        } else {
          snap.others.push(t as OtherObject);
        }
    }
  }
}

/** Builds a snapshot from parsed objects, checking each object's envelope once, here. */
export function snapshotFromObjects(
  objects: Iterable<unknown>,
  source: string,
  opts: SnapshotOptions = {},
): ClusterSnapshot {
  const builder = new SnapshotBuilder(source, opts);
  for (const obj of objects) builder.add(obj);
  return builder.snapshot;
}

export function loadSnapshotText(text: string, source: string, opts?: SnapshotOptions): ClusterSnapshot {
  return snapshotFromObjects(parseSnapshotText(text, source), source, opts);
}

/** Merges snapshots (for `--policies extra.yaml` on top of `--cluster`). */
export function mergeSnapshots(...snaps: ClusterSnapshot[]): ClusterSnapshot {
  const out = emptySnapshot();
  for (const s of snaps) {
    for (const key of Object.keys(out) as (keyof ClusterSnapshot)[]) {
      // One push per object: spreading a 50k-pod array into push() would overflow the call stack.
      for (const x of s[key] as unknown[]) (out[key] as unknown[]).push(x);
    }
  }
  return out;
}

/** All IPs of a pod (status.podIPs, falling back to status.podIP). */
export function podIPs(pod: Pod): string[] {
  const ips = pod.status?.podIPs?.map((p) => p.ip).filter((ip) => typeof ip === 'string' && ip !== '');
  if (ips && ips.length > 0) return ips;
  return pod.status?.podIP ? [pod.status.podIP] : [];
}
