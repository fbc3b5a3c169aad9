/**
 * The imperative edge of the verify commands: reading cluster and policy files into an engine, and
 * parsing endpoint and query arguments.
 */
import { createReadStream } from 'node:fs';
import { readProblem, readWholeText } from '../flows/reader.ts';
import type { Pod } from '../model/k8s.ts';
import {
  CUSTOM_WORKLOAD_KINDS,
  customController,
  isCustomWorkload,
  LABELLED_KIND,
  labelledTemplate,
  ownerRoot,
  ownerWorkload,
  ownershipOf,
  referencedWorkload,
  rootOwner,
  templateOf,
  workloadId,
} from '../identity/index.ts';
import { WORKLOAD_KINDS } from '../identity/types.ts';
import type { ClusterSnapshot } from '../model/snapshot.ts';
import {
  blankText,
  InputError,
  parseSnapshotText,
  snapshotFromObjects,
  unknownFieldWarnings,
} from '../model/snapshot.ts';
import { parseAddr } from './ip.ts';
import type { Endpoint, L4Protocol, Query } from './types.ts';
import { PROTOCOLS } from './types.ts';
import { CLUSTER_POLICY_KINDS } from './validate.ts';
import { closestName, compareText, sortedJson } from '../model/order.ts';

/** How the warning about policy objects the engine cannot evaluate begins (commands also put it in their answers). */
export const NOT_EVALUATED = 'NOT EVALUATED: ';

/** Kinds accepted in --cluster/--policies besides those the snapshot models. */
export const VERIFY_EXTRA_KINDS: readonly string[] = [
  ...CLUSTER_POLICY_KINDS,
  'Node',
  'Endpoints',
  'ServiceAccount',
  'ConfigMap',
  'Ingress',
  'HorizontalPodAutoscaler',
  'PodDisruptionBudget',
  // The custom workload kinds identity reads (CUSTOM_WORKLOAD_KINDS).
  ...CUSTOM_WORKLOAD_KINDS.keys(),
];

/** Kinds read from a snapshot's `others` by some stage (the snapshot models the rest itself). */
const READ_OTHER_KINDS: ReadonlySet<string> = new Set([
  ...CLUSTER_POLICY_KINDS,
  'Node',
  'Endpoints',
  ...CUSTOM_WORKLOAD_KINDS.keys(),
]);

/** Policy kinds named in the warning besides any other kind ending in `NetworkPolicy`. */
const POLICY_KINDS: ReadonlySet<string> = new Set([
  'CiliumNetworkPolicy',
  'CiliumClusterwideNetworkPolicy',
  'GlobalNetworkPolicy',
  'NetworkPolicy',
]);

/** Unevaluated policy objects named in the warning before it says how many more there are. */
const NAMED_POLICIES = 10;

/**
 * What a snapshot holds that microseg does not read, as warnings: objects of kinds no stage reads
 * (skipped, counted by kind), and, apart and first, policy objects the semantics engine cannot evaluate
 * (CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy, Calico's NetworkPolicy and GlobalNetworkPolicy,
 * any other kind ending in NetworkPolicy), which no proof or verdict takes into account; then the
 * fields of policy objects that their API does not define, which were read as absent, as the API server
 * drops them (`unknownFieldWarnings`). The same in every command that reads a snapshot; empty when
 * there is nothing to say.
 */
export function snapshotWarnings(snap: ClusterSnapshot): string[] {
  const skipped = new Map<string, number>();
  const policies: string[] = [];
  for (const o of snap.others) {
    if (READ_OTHER_KINDS.has(o.kind)) continue;
    if (POLICY_KINDS.has(o.kind) || o.kind.endsWith('NetworkPolicy')) {
      const ns = o.metadata.namespace;
      const api = typeof o.apiVersion === 'string' ? ` (${o.apiVersion})` : '';
      policies.push(`${o.kind} ${ns ? `${ns}/` : ''}${o.metadata.name}${api}`);
      continue;
    }
    skipped.set(o.kind, (skipped.get(o.kind) ?? 0) + 1);
  }
  const out: string[] = [];
  if (policies.length > 0) {
    policies.sort(compareText);
    const more = policies.length - NAMED_POLICIES;
    out.push(
      `${NOT_EVALUATED}${policies.length} policy object(s) of kinds microseg cannot evaluate, left out of every proof and verdict, so what they deny or allow is not taken into account: ` +
        policies.slice(0, NAMED_POLICIES).join(', ') +
        (more > 0 ? `, and ${more} more` : ''),
    );
  }
  if (skipped.size > 0) {
    const kinds = [...skipped].sort(([a], [b]) => compareText(a, b));
    const total = kinds.reduce((n, [, c]) => n + c, 0);
    out.push(
      `skipped ${total} object(s) of kinds microseg does not read: ${kinds.map(([k, c]) => `${k} (${c})`).join(', ')}`,
    );
  }
  out.push(...unknownFieldWarnings(snap));
  return out;
}

/**
 * When a snapshot holds objects and every one of them is of a kind no stage reads (a wrong file: `kubectl
 * get configmaps`), those kinds counted (`ConfigMap (1), Secret (2)`); otherwise undefined. A snapshot
 * with no object at all (an empty List) is a cluster with no object, read as such.
 */
export function onlyUnreadKinds(snap: ClusterSnapshot): string | undefined {
  const modelled =
    snap.namespaces.length +
    snap.pods.length +
    snap.services.length +
    snap.endpointSlices.length +
    snap.workloads.length +
    snap.cronJobs.length +
    snap.networkPolicies.length;
  if (modelled > 0 || snap.others.length === 0) return undefined;
  const skipped = new Map<string, number>();
  for (const o of snap.others) {
    if (READ_OTHER_KINDS.has(o.kind) || POLICY_KINDS.has(o.kind) || o.kind.endsWith('NetworkPolicy'))
      return undefined;
    skipped.set(o.kind, (skipped.get(o.kind) ?? 0) + 1);
  }
  return [...skipped]
    .sort(([a], [b]) => compareText(a, b))
    .map(([k, c]) => `${k} (${c})`)
    .join(', ');
}

/** Objects given again with other content named in the warning before it says how many more there are. */
const NAMED_REPLACED = 10;

/**
 * An object given more than once under one name (kind, namespace and name) stands once, as the last one
 * read: applying it would replace the others. So a policy given again in `--policies` or `--proposal`
 * (read after `--cluster`) changes the cluster's policy of that name instead of adding its allows to the
 * old one's. Returns the snapshot without the replaced objects, and a warning naming those replaced by
 * other content (none when every repeat is the same object).
 */
export function replaceRepeated(snap: ClusterSnapshot): { snapshot: ClusterSnapshot; warnings: string[] } {
  type Named = { kind?: unknown; metadata: { name: string; namespace?: string } };
  const idOf = (o: Named) =>
    `${String(o.kind)} ${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata.name}`;
  const changed = new Set<string>();
  let repeated = false;
  const keep = <T extends Named>(list: T[]): T[] => {
    const last = new Map<string, number>();
    list.forEach((o, i) => {
      const id = idOf(o);
      const before = last.get(id);
      if (before !== undefined) {
        repeated = true;
        if (sortedJson(list[before]) !== sortedJson(o)) changed.add(id);
      }
      last.set(id, i);
    });
    return last.size === list.length ? list : list.filter((o, i) => last.get(idOf(o)) === i);
  };
  const snapshot: ClusterSnapshot = {
    namespaces: keep(snap.namespaces),
    pods: keep(snap.pods),
    services: keep(snap.services),
    endpointSlices: keep(snap.endpointSlices),
    workloads: keep(snap.workloads),
    cronJobs: keep(snap.cronJobs),
    networkPolicies: keep(snap.networkPolicies),
    others: keep(snap.others),
  };
  if (!repeated) return { snapshot: snap, warnings: [] };
  const names = [...changed].sort(compareText);
  const more = names.length - NAMED_REPLACED;
  return {
    snapshot,
    warnings:
      names.length === 0
        ? []
        : [
            `${names.length} object(s) given more than once under one name with other content; the last one read is used, as applying it replaces the others (--cluster is read first, then each --policies or --proposal in order): ` +
              names.slice(0, NAMED_REPLACED).join(', ') +
              (more > 0 ? `, and ${more} more` : ''),
          ],
  };
}

/**
 * The text of a file, or of standard input for '-', read whole: UTF-8 with or without a byte order
 * mark, or UTF-16 with one (what Windows PowerShell's `>` writes) or without, plain or gzip, at most
 * `maxBytes` once decompressed (WHOLE_TEXT_LIMIT), as every input of microseg takes it (`readWholeText`).
 */
export async function readText(
  path: string,
  stdin?: NodeJS.ReadableStream,
  opts: { maxBytes?: number } = {},
): Promise<string> {
  let src: AsyncIterable<Buffer | string | Uint8Array>;
  if (path === '-') {
    if (!stdin) throw new InputError('-: standard input is not available');
    src = stdin as AsyncIterable<Buffer | string>;
  } else {
    src = (async function* () {
      try {
        for await (const c of createReadStream(path, { highWaterMark: 1 << 20 })) yield c as Buffer;
      } catch (err) {
        throw new InputError(`${path}: cannot read: ${readProblem(err)}`);
      }
    })();
  }
  return readWholeText(src, path, opts);
}

export function snapshotFromText(text: string, source: string): ClusterSnapshot {
  return snapshotFromObjects(parseSnapshotText(text, source), source, {
    unknownKinds: 'error',
    extraKinds: VERIFY_EXTRA_KINDS,
  });
}

/** An end named as a workload, `namespace/Kind/name`: resolved against the snapshot (`endpointOf`). */
export interface WorkloadRef {
  workload: string;
}

/** An end as given on the command line or in a query: resolved but for a workload. */
export type EndpointArg = Endpoint | WorkloadRef;

/**
 * Parses an end given on the command line or as a query's string: an IP address, `namespace/pod`, or
 * `namespace/Kind/name` (a workload, resolved with the snapshot by `endpointOf`).
 */
export function parseEndpointArg(text: string, option: string): EndpointArg {
  if (parseAddr(text)) return { ip: text };
  const m = /^([^/\s]+)\/([^/\s]+)$/.exec(text);
  // No namespace name is an address (a DNS label has no '.' or ':'): this is a CIDR, not namespace/pod.
  if (m && parseAddr(m[1]!) && /^\d+$/.test(m[2]!))
    throw new InputError(
      `${option}: ${JSON.stringify(text)} is a CIDR, not one end: give an address of it (e.g. ${m[1]}), namespace/pod or namespace/Kind/name`,
    );
  if (m) return { namespace: m[1]!, pod: m[2]! };
  if (/^[^/\s]+\/[^/\s]+\/[^/\s]+$/.test(text)) return { workload: text };
  throw new InputError(
    `${option}: ${JSON.stringify(text)} is neither namespace/pod, namespace/Kind/name nor an IP address`,
  );
}

/** An end with its workload, if it names one, resolved against the snapshot (`resolveWorkload`). */
export function endpointOf(
  snap: ClusterSnapshot,
  e: EndpointArg,
  option: string,
): { endpoint: Endpoint; workload?: ResolvedWorkload } {
  if (!('workload' in e)) return { endpoint: e };
  const workload = resolveWorkload(snap, e.workload, option, true);
  return { endpoint: workload.endpoint, workload };
}

/**
 * What a verdict says of an end given as a workload: the pod it was answered for, or that it was
 * answered for the workload's pod template (no pod of it in the snapshot).
 */
export function workloadNote(option: string, w: ResolvedWorkload): string | undefined {
  if (w.name.split('/')[1] === 'Pod') return undefined;
  const what =
    (w.asked ? `${w.asked} (of ${w.name})` : w.name) +
    (w.inferred
      ? ": taken as the CronJob inferred from the Job's name, as the snapshot has neither object;"
      : ':');
  if (w.pods.length === 0)
    return `${option} ${what} no pod of it is in the cluster snapshot; answered for its pod template's labels and ports`;
  const of = w.pods.length === 1 ? 'its only pod' : `the first of its ${w.pods.length} pods by name`;
  return `${option} ${what} answered for ${w.pods[0]}, ${of}${
    w.alike ? '' : '; its pods differ in labels or ports, so ask for the others by namespace/pod'
  }`;
}

export function parseProtocolArg(text: string | undefined, where: string): L4Protocol | undefined {
  if (text === undefined) return undefined;
  const up = text.toUpperCase();
  if (!(PROTOCOLS as readonly string[]).includes(up))
    throw new InputError(`${where}: protocol ${JSON.stringify(text)} is not one of TCP, UDP, SCTP`);
  return up as L4Protocol;
}

/**
 * Refuses a field of `o` not in `fields` (a misspelt one would be ignored and the query answered for
 * something else), naming the field it is closest to or the beginning of, and the fields there are.
 */
function onlyFields(
  o: Record<string, unknown>,
  fields: readonly string[],
  where: string,
  what: string,
): void {
  for (const k of Object.keys(o)) {
    if (fields.includes(k)) continue;
    const near = closestName(k, fields) ?? (k.length >= 3 ? fields.find((f) => f.startsWith(k)) : undefined);
    throw new InputError(
      `${where}: unknown field ${JSON.stringify(k)}${near ? ` (did you mean ${JSON.stringify(near)}?)` : ''}; ${what}`,
    );
  }
}

/** The `namedPorts` of a `{"namespace", "labels"}` end: a list of `{name?, port, protocol?}`, each checked. */
function parseNamedPorts(
  v: unknown,
  where: string,
): { name?: string; port: number; protocol?: L4Protocol }[] {
  if (!Array.isArray(v))
    throw new InputError(`${where}: namedPorts must be a list of {"name", "port", "protocol"}`);
  return v.map((e: unknown, i) => {
    const at = `${where}: namedPorts[${i}]`;
    if (e === null || typeof e !== 'object' || Array.isArray(e))
      throw new InputError(`${at} must be an object {"name", "port", "protocol"}`);
    const o = e as Record<string, unknown>;
    onlyFields(o, ['name', 'port', 'protocol'], at, 'a named port has name, port, protocol');
    if (o.name !== undefined && typeof o.name !== 'string')
      throw new InputError(`${at}.name must be a string`);
    if (typeof o.port !== 'number' || !Number.isInteger(o.port) || o.port < 1 || o.port > 65535)
      throw new InputError(`${at}.port must be a port number (1-65535)`);
    if (o.protocol !== undefined && typeof o.protocol !== 'string')
      throw new InputError(`${at}.protocol must be a string`);
    const protocol = parseProtocolArg(o.protocol, at);
    return {
      ...(o.name !== undefined ? { name: o.name } : {}),
      port: o.port,
      ...(protocol !== undefined ? { protocol } : {}),
    };
  });
}

function parseQueryEndpoint(v: unknown, where: string): EndpointArg {
  if (typeof v === 'string') return parseEndpointArg(v, where);
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    if (typeof o.ip === 'string' && o.namespace === undefined) {
      onlyFields(o, ['ip'], where, 'an {"ip"} end has only ip');
      return { ip: o.ip };
    }
    if (typeof o.namespace === 'string' && typeof o.pod === 'string') {
      onlyFields(o, ['namespace', 'pod'], where, 'a {"namespace", "pod"} end has only namespace, pod');
      return { namespace: o.namespace, pod: o.pod };
    }
    if (typeof o.namespace === 'string' && o.labels && typeof o.labels === 'object') {
      onlyFields(
        o,
        ['namespace', 'labels', 'namedPorts'],
        where,
        'a {"namespace", "labels"} end has namespace, labels, namedPorts',
      );
      const labels = o.labels as Record<string, unknown>;
      for (const [k, val] of Object.entries(labels))
        if (typeof val !== 'string') throw new InputError(`${where}: labels.${k} must be a string`);
      return {
        namespace: o.namespace,
        labels: labels as Record<string, string>,
        ...(o.namedPorts !== undefined ? { namedPorts: parseNamedPorts(o.namedPorts, where) } : {}),
      };
    }
  }
  throw new InputError(
    `${where}: must be "namespace/pod", "namespace/Kind/name", {"ip": "..."} or {"namespace", "labels"}`,
  );
}

const QUERY_FIELDS = ['from', 'to', 'port', 'protocol'] as const;

/** A query, and the workloads its ends name (`namespace/Kind/name`), for the notes of its verdict. */
export interface ParsedQuery {
  query: Query;
  workloads: { from?: ResolvedWorkload; to?: ResolvedWorkload };
}

/**
 * Parses the simulate query file: a JSON array of {from, to, port, protocol}; no other field. An end
 * given as `namespace/Kind/name` is resolved against `snap` (`resolveWorkload`).
 */
export function parseQueries(text: string, source: string, snap: ClusterSnapshot): ParsedQuery[] {
  const blank = blankText(text);
  if (blank !== undefined) throw new InputError(`${source}: ${blank}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new InputError(`${source}: not valid JSON: ${(err as Error).message}`);
  }
  if (!Array.isArray(parsed)) throw new InputError(`${source}: expected a JSON array of queries`);
  return parsed.map((q, i) => {
    const where = `${source}: query ${i + 1}`;
    if (!q || typeof q !== 'object' || Array.isArray(q)) throw new InputError(`${where}: must be an object`);
    const o = q as Record<string, unknown>;
    onlyFields(o, QUERY_FIELDS, where, `a query has ${QUERY_FIELDS.join(', ')}`);
    if (typeof o.port !== 'number' && typeof o.port !== 'string')
      throw new InputError(`${where}: port must be a number or a container port name`);
    if (o.protocol !== undefined && typeof o.protocol !== 'string')
      throw new InputError(`${where}: protocol must be one of TCP, UDP, SCTP`);
    const protocol = parseProtocolArg(o.protocol, where);
    const from = endpointOf(snap, parseQueryEndpoint(o.from, `${where}: from`), `${where}: from`);
    const to = endpointOf(snap, parseQueryEndpoint(o.to, `${where}: to`), `${where}: to`);
    return {
      query: { from: from.endpoint, to: to.endpoint, port: o.port, ...(protocol ? { protocol } : {}) },
      workloads: {
        ...(from.workload ? { from: from.workload } : {}),
        ...(to.workload ? { to: to.workload } : {}),
      },
    };
  });
}

/** A workload kind by its name in lower case or kubectl's short name. */
const WORKLOAD_KIND_NAMES: Record<string, string> = {
  ...Object.fromEntries(WORKLOAD_KINDS.map((k) => [k.toLowerCase(), k])),
  deploy: 'Deployment',
  sts: 'StatefulSet',
  ds: 'DaemonSet',
  rs: 'ReplicaSet',
  ro: 'Rollout',
  clone: 'CloneSet',
  // The workloads the workload label names (identity's LABELLED_KIND).
  [LABELLED_KIND.toLowerCase()]: LABELLED_KIND,
};

/**
 * What a workload the snapshot does not have is likely meant to be: a namespace close to its namespace
 * when the snapshot has no such namespace, else a workload of its kind and namespace close to its name.
 */
function workloadHint(snap: ClusterSnapshot, ns: string, kind: string, name: string): string {
  const all = [
    ...snap.workloads,
    ...snap.cronJobs,
    // Of another API group, a kind of that name is none (OpenKruise's Rollout).
    ...snap.others.filter(isCustomWorkload),
    ...snap.pods,
  ];
  const namespaces = new Set([...snap.namespaces.map((n) => n.metadata.name)]);
  for (const o of all) if (o.metadata.namespace) namespaces.add(o.metadata.namespace);
  if (!namespaces.has(ns)) {
    const near = closestName(ns, namespaces);
    return near ? `: it has no namespace ${ns} (did you mean ${near}?)` : '';
  }
  const names = all.filter((o) => o.kind === kind && o.metadata.namespace === ns).map((o) => o.metadata.name);
  const near = closestName(name, names);
  if (near) return ` (did you mean ${ns}/${kind}/${near}?)`;
  // The name of a workload of another kind (`shop/StatefulSet/cart` for the Deployment cart).
  const other = all
    .filter((o) => o.kind !== 'Pod' && o.metadata.namespace === ns && o.metadata.name === name)
    .map((o) => `${ns}/${o.kind}/${name}`)
    .sort(compareText);
  return other.length > 0 ? ` (did you mean ${other.join(' or ')}?)` : '';
}

/**
 * The kind of a custom resource that controls pods of namespace `ns` (identity's customController: an
 * operator's, CloudNativePG's `Cluster`), as their owner references spell it, when `kindText` names it
 * in any case.
 */
function customKindOf(snap: ClusterSnapshot, ns: string, kindText: string): string | undefined {
  const lower = kindText.toLowerCase();
  for (const p of snap.pods) {
    if (p.metadata.namespace !== ns) continue;
    const ref = p.metadata.ownerReferences?.find((o) => o.controller);
    if (ref !== undefined && ref.kind.toLowerCase() === lower && customController(ref)) return ref.kind;
  }
  return undefined;
}

/** A workload named `namespace/Kind/name`, resolved. */
export interface ResolvedWorkload {
  /**
   * `namespace/Kind/name`, the kind spelt as Kubernetes does: the workload as every command names it,
   * its root owner (`shop/Deployment/cart` when a ReplicaSet of it was asked for).
   */
  name: string;
  /** The ReplicaSet or Job asked for, when it is owned by the workload `name` names. */
  asked?: string;
  /**
   * The Job asked for is absent from the snapshot, as is the CronJob `name` names, which its pods are
   * named after as identity names them (inferred from the Job's name: cronJobOfRun).
   */
  inferred?: true;
  /** A pod of the workload when the snapshot has one, else the class of its pod template. */
  endpoint: Endpoint;
  /** Its pods in the snapshot (`namespace/name`, sorted by name); the endpoint is the first one's. */
  pods: string[];
  /** Whether its pods have the same labels and container ports (a StatefulSet's pods do not). */
  alike: boolean;
}

/**
 * Turns `ns/kind/name` into an endpoint: a pod of the workload when there is one (so that the
 * workload is the cluster's class), else the class of its pod template. `option` names the flag or
 * query field in messages.
 */
export function workloadEndpoint(snap: ClusterSnapshot, spec: string, option = '--workload'): Endpoint {
  return resolveWorkload(snap, spec, option).endpoint;
}

/**
 * `workloadEndpoint`, with the workload's pods. With `hostNetwork`, a workload whose pods all use the
 * host's network (a node agent) is answered for its first pod, which the engine treats as that pod's
 * node (or as a pod, `hostNetworkPods`); without it, such pods are left out as they are of the pod
 * classes (blast radius).
 */
export function resolveWorkload(
  snap: ClusterSnapshot,
  spec: string,
  option = '--workload',
  hostNetwork = false,
): ResolvedWorkload {
  const m = /^([^/\s]+)\/([^/\s]+)\/([^/\s]+)$/.exec(spec);
  if (!m) throw new InputError(`${option}: ${JSON.stringify(spec)} is not namespace/kind/name`);
  const [, ns, kindText, name] = m as unknown as [string, string, string, string];
  const kind = WORKLOAD_KIND_NAMES[kindText.toLowerCase()] ?? customKindOf(snap, ns, kindText);
  if (!kind) {
    const near = closestName(kindText.toLowerCase(), Object.keys(WORKLOAD_KIND_NAMES));
    throw new InputError(
      `${option}: kind ${JSON.stringify(kindText)} is not one of ${[...WORKLOAD_KINDS, LABELLED_KIND].join(', ')}, nor the kind of a custom resource controlling a pod of namespace ${ns}${
        near ? ` (did you mean ${WORKLOAD_KIND_NAMES[near]}?)` : ''
      }`,
    );
  }
  const full = `${ns}/${kind}/${name}`;
  if (kind === 'Pod') {
    const pod = snap.pods.find((p) => p.metadata.namespace === ns && p.metadata.name === name);
    if (!pod)
      throw new InputError(
        `${option}: no Pod ${name} in namespace ${ns}${workloadHint(snap, ns, 'Pod', name)}`,
      );
    return { name: full, endpoint: { namespace: ns, pod: name }, pods: [`${ns}/${name}`], alike: true };
  }
  const ownership = ownershipOf(snap);
  // The workload's pods are those named after it, as recommend names workloads (their root owner: a
  // CronJob's are the pods of its Jobs); an owned ReplicaSet's or Job's are its own.
  const obj = ownership.objByKey.get(full);
  const root = ownerRoot(
    ns,
    { kind, name, ...(obj?.metadata.uid ? { uid: obj.metadata.uid } : {}) },
    undefined,
    ownership,
  );
  let rootId = root ? workloadId(ns, root.kind, root.name) : full;
  // A Job the snapshot lacks with its CronJob (kubectl get pods alone): its pods are named after the
  // CronJob its name tells (cronJobOfRun, which needs a pod), so the Job is asked for as that CronJob's.
  let inferred = false;
  if (kind === 'Job' && !obj && rootId === full) {
    const run = snap.pods.find((p) => {
      const ref = p.metadata.ownerReferences?.find((o) => o.controller) ?? p.metadata.ownerReferences?.[0];
      return p.metadata.namespace === ns && ref?.kind === 'Job' && ref.name === name;
    });
    const w = run && ownerWorkload(run, ownership);
    if (w?.kind === 'CronJob') {
      rootId = workloadId(ns, w.kind, w.name);
      inferred = true;
    }
  }
  const owned = rootId !== full;
  const ofIt = (p: Pod): boolean => {
    if (p.metadata.namespace !== ns) return false;
    if (owned) {
      const ref = p.metadata.ownerReferences?.find((o) => o.controller) ?? p.metadata.ownerReferences?.[0];
      return ref?.kind === kind && ref.name === name;
    }
    // A workload the label names is its labelled pods; one an owner names, the pods it owns.
    const r = kind === LABELLED_KIND ? rootOwner(p, ownership) : ownerWorkload(p, ownership);
    return r.kind === kind && r.name === name;
  };
  const selected = snap.pods.filter(ofIt).sort((a, b) => compareText(a.metadata.name, b.metadata.name));
  // A workload the label names with no pod (a Knative Service scaled to zero) is, as identity has it, the
  // workload object of its namespace whose template carries the label with its name, of the smallest key.
  const labelledObj =
    kind === LABELLED_KIND && selected.length === 0
      ? [...ownership.objByKey]
          .filter(
            ([key, o]) => key.startsWith(`${ns}/`) && labelledTemplate(ns, o, ownership.objByKey) === name,
          )
          .sort(([a], [b]) => compareText(a, b))[0]?.[1]
      : undefined;
  // A workload whose object the snapshot lacks still is one when pods are named after it.
  if (!obj && !labelledObj && selected.length === 0)
    throw new InputError(
      `${option}: no ${kind} ${name} in namespace ${ns}${workloadHint(snap, ns, kind, name)}`,
    );
  const named = {
    name: rootId,
    ...(owned ? { asked: full } : {}),
    ...(inferred ? { inferred: true as const } : {}),
  };
  const inPodNetwork = selected.filter((p) => p.spec?.hostNetwork !== true);
  const pods = inPodNetwork.length > 0 || !hostNetwork ? inPodNetwork : selected;
  if (pods.length > 0) {
    const shape = (p: (typeof pods)[number]) =>
      sortedJson([p.metadata.labels ?? {}, p.spec?.containers?.map((c) => c.ports ?? []) ?? []]);
    const first = shape(pods[0]!);
    return {
      ...named,
      endpoint: { namespace: ns, pod: pods[0]!.metadata.name },
      pods: pods.map((p) => `${ns}/${p.metadata.name}`),
      alike: pods.every((p) => shape(p) === first),
    };
  }
  // A Rollout whose workloadRef names a Deployment: the Deployment's template.
  const from = obj ?? labelledObj;
  const ref = referencedWorkload(ns, from, ownership.objByKey);
  const template = ref ? templateOf(ref.kind, ref.spec) : from ? templateOf(from.kind, from.spec) : undefined;
  const namedPorts = (template?.spec?.containers ?? []).flatMap((c) =>
    (c.ports ?? []).map((p) => ({
      ...(p.name ? { name: p.name } : {}),
      port: p.containerPort,
      protocol: (PROTOCOLS as readonly string[]).includes(p.protocol ?? 'TCP')
        ? (p.protocol as L4Protocol)
        : 'TCP',
    })),
  );
  return {
    ...named,
    endpoint: { namespace: ns, labels: template?.metadata?.labels ?? {}, namedPorts, name: rootId },
    pods: [],
    alike: true,
  };
}
