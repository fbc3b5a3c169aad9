/**
 * Compaction: a copy of an object with only the fields the core reads (identity, policy synthesis,
 * verification, isolation). Large clusters hold tens of thousands of pods; compacting objects as they
 * are read — from a snapshot file or from the controller's informers — keeps memory proportional to
 * what is used, not to what the API server returns.
 *
 * What is kept:
 * - metadata: name, namespace, uid, labels, ownerReferences (apiVersion, kind, name, uid, controller),
 *   creation and deletion timestamps, resourceVersion, generation, and microseg's own annotations
 *   (`microseg.dev/…`; on a NetworkPolicy also `argocd.argoproj.io/sync-wave`, which microseg sets on a
 *   default deny: Enforce compares what it applied with what the cache holds);
 * - Pods: containers' (and init containers') names and ports, hostNetwork, nodeName; status phase,
 *   addresses (`podIP`, `podIPs`, `hostIP`, `hostIPs`: `podIPs` and `hostIPs` left out when they only
 *   repeat `podIP` and `hostIP`) and start time;
 * - Deployments, ReplicaSets, StatefulSets, DaemonSets, Jobs: the selector and the pod template's labels,
 *   container ports and hostNetwork; CronJobs: the same inside the job template, their schedule and
 *   its time zone, whether they are suspended, when they last scheduled and completed a run and the
 *   names of their active Jobs;
 * - EndpointSlices: address type and ports; endpoint addresses, except in the slices Kubernetes's
 *   EndpointSlice controller writes for a Service with a selector (their addresses are the selected
 *   pods', known from the pods); the API server's slices always keep theirs;
 * - Services: everything but `status`, except the addresses of its load balancer
 *   (`status.loadBalancer.ingress[].ip`, with their `ipMode`), which verification refuses as query ends;
 * - Nodes: their addresses and pod CIDRs (`spec.podCIDR`, `spec.podCIDRs`), which tell the pod network;
 * - every other kind: everything but `status` (a core/v1 Endpoints object keeps its subsets' addresses
 *   and ports, which identity reads for the API server, and for a Service without a selector, when no
 *   EndpointSlice names its addresses).
 */

/**
 * FNV-1a over the UTF-16 code units of `s`, continuing from `h` (the offset basis to start): the key of
 * the Interner's tables. Equal texts give equal numbers; the rare different texts that share one are
 * told apart by comparing the values themselves.
 */
export function textHash(s: string, h = 0x811c9dc5): number {
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Whether `a` has the JSON text of `b`, a value parsed from JSON (same keys in the same order). */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === null || typeof a !== 'object' || b === null || typeof b !== 'object') return a === b;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameJson(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ak = Object.keys(a);
  const bk = Object.keys(b);
  if (ak.length !== bk.length) return false;
  for (let i = 0; i < ak.length; i++) {
    const k = ak[i]!;
    if (k !== bk[i] || !sameJson((a as Raw)[k], (b as Raw)[k])) return false;
  }
  return true;
}

/**
 * Values by the hash of their text: the first one of each hash in a map, the others (different texts
 * with the same hash) in a second one. Only the values are held, not their texts: a large cluster's
 * selectors, port lists and label sets are mostly distinct, and their texts as keys held about a third
 * of what was read (34 of 124 MB after reading a 20k-workload cluster).
 */
class ByHash<T> {
  readonly #first = new Map<number, T>();
  readonly #more = new Map<number, T[]>();

  find(h: number, same: (t: T) => boolean): T | undefined {
    const t = this.#first.get(h);
    if (t === undefined) return undefined;
    if (same(t)) return t;
    return this.#more.get(h)?.find(same);
  }

  add(h: number, t: T): void {
    if (!this.#first.has(h)) this.#first.set(h, t);
    else {
      const more = this.#more.get(h);
      if (more === undefined) this.#more.set(h, [t]);
      else more.push(t);
    }
  }
}

/**
 * Shares equal strings: label keys and values, namespaces and owner names repeat across the pods of a
 * workload, and each parsed object would otherwise hold its own copy.
 */
export class Interner {
  readonly #strings = new Map<string, string>();
  readonly #labels = new ByHash<Readonly<Record<string, string>>>();
  readonly #values = new ByHash<object>();

  get(s: string): string {
    const known = this.#strings.get(s);
    if (known !== undefined) return known;
    this.#strings.set(s, s);
    return s;
  }

  /**
   * One shared, deeply frozen copy per distinct JSON value (the container lists and port lists that
   * the pods of a workload, or the slices of a Service, repeat).
   */
  shared(v: unknown): unknown {
    if (v === null || typeof v !== 'object') return v;
    const text = JSON.stringify(v);
    const h = textHash(text);
    // The value as parsed compares without its text; one built here (a property set to undefined,
    // which the text leaves out) is compared by the text of the copy.
    const known = this.#values.find(h, (c) => sameJson(v, c) || JSON.stringify(c) === text);
    if (known !== undefined) return known;
    const copy = deepFreeze(JSON.parse(text) as object, this);
    this.#values.add(h, copy);
    return copy;
  }

  /**
   * One shared, frozen object per distinct label set: the pods of a workload carry the same labels.
   * Anything that is not an object of strings is returned as it is, for the snapshot check to report.
   */
  labels(v: unknown): unknown {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const entries = Object.entries(v as Record<string, unknown>);
    let h = 0x811c9dc5;
    for (const [k, val] of entries) {
      if (typeof val !== 'string') return v;
      // Each key and value ended by a NUL: ("a", "b=c") and ("a=b", "c") hash apart.
      h = textHash('\u0000', textHash(val, textHash('\u0000', textHash(k, h))));
    }
    const same = (out: Readonly<Record<string, string>>) => {
      const keys = Object.keys(out);
      if (keys.length !== entries.length) return false;
      for (let i = 0; i < keys.length; i++)
        if (keys[i] !== entries[i]![0] || out[keys[i]!] !== entries[i]![1]) return false;
      return true;
    };
    const known = this.#labels.find(h, same);
    if (known !== undefined) return known;
    const out: Record<string, string> = {};
    for (const [k, val] of entries) out[this.get(k)] = this.get(val as string);
    Object.freeze(out);
    this.#labels.add(h, out);
    return out;
  }
}

/** Freezes a parsed JSON value and everything in it, its strings shared through `interner`. */
function deepFreeze<T extends object>(v: T, interner: Interner): T {
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    const x = o[k];
    if (typeof x === 'string') o[k] = interner.get(x);
    else if (x !== null && typeof x === 'object') deepFreeze(x, interner);
  }
  return Object.freeze(v);
}

type Raw = Record<string, unknown>;

const META_KEYS = [
  'name',
  'namespace',
  'uid',
  'labels',
  'ownerReferences',
  'creationTimestamp',
  'deletionTimestamp',
  'resourceVersion',
  'generation',
] as const;

/**
 * The annotation not under `microseg.dev/` that microseg sets on a NetworkPolicy: the Argo CD sync wave
 * of a default deny (SYNC_WAVE_ANNOTATION in src/policy/index.ts). Left out of the cache, Enforce took
 * every default deny it applied for drift, and repaired it again at every reconcile.
 */
const NETWORK_POLICY_ANNOTATIONS = ['argocd.argoproj.io/sync-wave'];

const OWNER_KEYS = ['apiVersion', 'kind', 'name', 'uid', 'controller'] as const;

function str(v: unknown, interner: Interner | undefined): unknown {
  return typeof v === 'string' && interner ? interner.get(v) : v;
}

function labels(v: unknown, interner: Interner | undefined): unknown {
  return interner ? interner.labels(v) : v;
}

function shared(v: unknown, interner: Interner | undefined): unknown {
  return interner ? interner.shared(v) : v;
}

function meta(m: unknown, interner: Interner | undefined, kind?: unknown): Raw {
  const src = (m !== null && typeof m === 'object' ? m : {}) as Raw;
  const out: Raw = {};
  for (const k of META_KEYS) {
    const v = src[k];
    if (v === undefined) continue;
    if (k === 'labels') out[k] = labels(v, interner);
    else if (k === 'ownerReferences' && Array.isArray(v))
      // The pods of a ReplicaSet, Job or StatefulSet name the same owner: one shared list for them all.
      out[k] = shared(
        v.map((o: unknown) => {
          if (o === null || typeof o !== 'object') return o;
          const r: Raw = {};
          for (const ok of OWNER_KEYS)
            if ((o as Raw)[ok] !== undefined) r[ok] = str((o as Raw)[ok], interner);
          return r;
        }),
        interner,
      );
    else if (k === 'namespace') out[k] = str(v, interner);
    else out[k] = v;
  }
  const a = src.annotations;
  if (a !== null && typeof a === 'object' && !Array.isArray(a)) {
    const own = Object.entries(a as Raw).filter(
      ([k]) =>
        k.startsWith('microseg.dev/') || (kind === 'NetworkPolicy' && NETWORK_POLICY_ANNOTATIONS.includes(k)),
    );
    if (own.length > 0) out.annotations = Object.fromEntries(own);
  }
  return out;
}

/** Containers reduced to their names and ports; init containers only when they declare ports (sidecars). */
function containers(v: unknown, onlyWithPorts: boolean): unknown[] | undefined {
  if (!Array.isArray(v)) return onlyWithPorts ? undefined : [];
  const out: unknown[] = [];
  for (const c of v as unknown[]) {
    if (c === null || typeof c !== 'object') {
      if (!onlyWithPorts) out.push(c);
      continue;
    }
    const { name, ports } = c as { name?: unknown; ports?: unknown };
    if (onlyWithPorts && ports === undefined) continue;
    out.push(ports === undefined ? { name } : { name, ports });
  }
  return onlyWithPorts && out.length === 0 ? undefined : out;
}

function podSpec(v: unknown, interner: Interner | undefined): Raw {
  const spec = (v !== null && typeof v === 'object' ? v : {}) as Raw;
  const init = containers(spec.initContainers, true);
  return {
    containers: shared(containers(spec.containers, false), interner),
    ...(init ? { initContainers: shared(init, interner) } : {}),
    ...(spec.hostNetwork ? { hostNetwork: true } : {}),
    ...(spec.nodeName !== undefined ? { nodeName: str(spec.nodeName, interner) } : {}),
  };
}

function template(v: unknown, interner: Interner | undefined): Raw | undefined {
  if (v === null || typeof v !== 'object') return undefined;
  const t = v as { metadata?: Raw; spec?: unknown };
  const l = t.metadata?.labels;
  const podSpecOut = podSpec(t.spec, interner);
  delete podSpecOut.nodeName;
  return { metadata: l === undefined ? {} : { labels: labels(l, interner) }, spec: podSpecOut };
}

const WORKLOAD_KINDS = new Set(['Deployment', 'ReplicaSet', 'StatefulSet', 'DaemonSet', 'Job']);

/** Whether a pod's `podIPs` is exactly `[{ ip: podIP }]` (or its `hostIPs` `[{ ip: hostIP }]`). */
function onlyPodIP(podIPs: unknown, podIP: unknown): boolean {
  if (!Array.isArray(podIPs) || podIPs.length !== 1 || typeof podIP !== 'string') return false;
  const e = podIPs[0] as unknown;
  return e !== null && typeof e === 'object' && Object.keys(e).length === 1 && (e as Raw).ip === podIP;
}

/**
 * A Service's spec, every field kept; with an interner its selector, ports and address families are shared
 * with the Services that have the same ones, and its strings interned.
 */
function serviceSpec(spec: Raw, interner: Interner | undefined): Raw {
  if (!interner) return spec;
  const out: Raw = {};
  for (const [k, v] of Object.entries(spec)) {
    if (k === 'selector') out[k] = labels(v, interner);
    else if (k === 'clusterIPs' && Array.isArray(v) && v.length === 1 && v[0] === spec.clusterIP)
      out[k] = [spec.clusterIP];
    else if (typeof v === 'string') out[k] = k === 'clusterIP' ? v : interner.get(v);
    else out[k] = shared(v, interner);
  }
  return out;
}

/**
 * The load balancer's addresses of a Service's status, `{ status: { loadBalancer: { ingress } } }` with
 * only the entries that have an `ip` (and only their `ip` and `ipMode`); `{}` when there is none. The
 * index of an entry in the result is not that of the object when entries with a hostname only are left
 * out, so they are kept as `{}` to keep the indexes the error messages name.
 */
function loadBalancerIPs(status: unknown): Raw {
  const ingress = (status as { loadBalancer?: { ingress?: unknown } } | null | undefined)?.loadBalancer
    ?.ingress;
  if (!Array.isArray(ingress)) return {};
  const kept = (ingress as unknown[]).map((e) => {
    if (e === null || typeof e !== 'object') return {};
    const { ip, ipMode } = e as Raw;
    return ip === undefined ? {} : { ip, ...(ipMode !== undefined ? { ipMode } : {}) };
  });
  return kept.some((e) => 'ip' in e) ? { status: { loadBalancer: { ingress: kept } } } : {};
}

/** A slice of the `default/kubernetes` Service: its endpoints are the API server's addresses. */
function isAPIServerSlice(metadata: Raw): boolean {
  const l = metadata.labels as Record<string, unknown> | undefined;
  return metadata.namespace === 'default' && l?.['kubernetes.io/service-name'] === 'kubernetes';
}

/** A compacted copy of a Kubernetes object; anything that is not an object is returned as it is. */
export function compactObject(obj: unknown, interner?: Interner): unknown {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return obj;
  const o = obj as Raw;
  const head = {
    apiVersion: str(o.apiVersion, interner),
    kind: str(o.kind, interner),
    metadata: meta(o.metadata, interner, o.kind),
  };
  const spec = (o.spec !== null && typeof o.spec === 'object' ? o.spec : undefined) as Raw | undefined;
  if (o.kind === 'Pod') {
    const st = (o.status ?? {}) as Raw;
    const status: Raw = {};
    // `podIPs` that only repeats `podIP` adds nothing: podIPs() falls back to podIP. (Left out rather
    // than deleted: a deleted property would turn the object into a slower, larger dictionary.)
    const skipPodIPs = onlyPodIP(st.podIPs, st.podIP);
    // `hostIPs` holds a dual-stack node's second address, which identity and the engine take for the
    // node's; the same for every pod of the node, so one list is shared. Left out when it only repeats
    // `hostIP`.
    const skipHostIPs = onlyPodIP(st.hostIPs, st.hostIP);
    for (const k of ['phase', 'podIP', 'podIPs', 'hostIP', 'hostIPs', 'startTime'] as const)
      if (st[k] !== undefined && !(k === 'podIPs' && skipPodIPs) && !(k === 'hostIPs' && skipHostIPs))
        status[k] =
          k === 'phase' || k === 'hostIP'
            ? str(st[k], interner)
            : k === 'hostIPs'
              ? shared(st[k], interner)
              : st[k];
    // A Pod without spec stays without one, so that the snapshot check reports it.
    return { ...head, ...(spec ? { spec: podSpec(spec, interner) } : {}), status };
  }
  if (typeof o.kind === 'string' && WORKLOAD_KINDS.has(o.kind)) {
    if (!spec) return head;
    const tpl = template(spec.template, interner);
    return {
      ...head,
      spec: {
        ...(spec.selector !== undefined ? { selector: shared(spec.selector, interner) } : {}),
        ...(tpl ? { template: tpl } : {}),
      },
    };
  }
  if (o.kind === 'CronJob') {
    if (!spec) return head;
    const jt = spec.jobTemplate as { spec?: Raw } | undefined;
    const tpl = template(jt?.spec?.template, interner);
    // When it last ran and last completed a run, whether a run is still going (its active Jobs, by
    // name) and whether it is suspended: whether its traffic could have been learned.
    const st = o.status as Raw | undefined;
    const last = st?.lastScheduleTime;
    const succeeded = st?.lastSuccessfulTime;
    const active = Array.isArray(st?.active)
      ? (st.active as unknown[]).map((j) => {
          const name = (j as Raw | null)?.name;
          return { name: typeof name === 'string' ? name : '' };
        })
      : [];
    const status = {
      ...(typeof last === 'string' ? { lastScheduleTime: last } : {}),
      ...(typeof succeeded === 'string' ? { lastSuccessfulTime: succeeded } : {}),
      ...(active.length > 0 ? { active } : {}),
    };
    return {
      ...head,
      spec: {
        ...(spec.schedule !== undefined ? { schedule: spec.schedule } : {}),
        ...(spec.timeZone !== undefined ? { timeZone: spec.timeZone } : {}),
        ...(spec.suspend !== undefined ? { suspend: spec.suspend } : {}),
        jobTemplate: { spec: tpl ? { template: tpl } : {} },
      },
      ...(Object.keys(status).length > 0 ? { status } : {}),
    };
  }
  if (o.kind === 'EndpointSlice') {
    // The addresses of the slices Kubernetes writes for a Service with a selector are its pods', known
    // from the pods; any other slice (a Service without a selector: an operator's, a mirror of manual
    // Endpoints, the API server's) is the only place its addresses are.
    const labels = head.metadata.labels as Record<string, string> | undefined;
    const bySelector =
      labels?.['endpointslice.kubernetes.io/managed-by'] === 'endpointslice-controller.k8s.io';
    const endpoints =
      bySelector && !isAPIServerSlice(head.metadata)
        ? undefined
        : Array.isArray(o.endpoints)
          ? (o.endpoints as unknown[]).map((e) =>
              e !== null && typeof e === 'object' ? { addresses: (e as Raw).addresses } : e,
            )
          : o.endpoints;
    return {
      ...head,
      ...(o.addressType !== undefined ? { addressType: str(o.addressType, interner) } : {}),
      ...(endpoints !== undefined ? { endpoints } : {}),
      ...(o.ports !== undefined ? { ports: shared(o.ports, interner) } : {}),
    };
  }
  if (o.kind === 'Service') {
    const { status, metadata: _metadata, spec: _spec, ...rest } = o;
    const lb = loadBalancerIPs(status);
    return spec
      ? { ...rest, metadata: head.metadata, spec: serviceSpec(spec, interner), ...lb }
      : { ...rest, ...head, ...lb };
  }
  if (o.kind === 'Node') {
    const addresses = (o.status as { addresses?: unknown } | undefined)?.addresses;
    const nodeSpec = spec as { podCIDR?: unknown; podCIDRs?: unknown } | undefined;
    const cidrs = {
      ...(nodeSpec?.podCIDR !== undefined ? { podCIDR: nodeSpec.podCIDR } : {}),
      ...(nodeSpec?.podCIDRs !== undefined ? { podCIDRs: nodeSpec.podCIDRs } : {}),
    };
    return {
      ...head,
      ...(Object.keys(cidrs).length > 0 ? { spec: cidrs } : {}),
      ...(addresses !== undefined ? { status: { addresses } } : {}),
    };
  }
  const { status: _status, metadata: _metadata, ...rest } = o;
  return { ...rest, metadata: head.metadata };
}
