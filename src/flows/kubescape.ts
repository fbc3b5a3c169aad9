/**
 * Kubescape `NetworkNeighborhood` objects (spdx.softwarecomposition.kubescape.io/v1beta1): the
 * aggregated neighbours Kubescape's node agent learned for one workload.
 *
 * Each ingress/egress neighbour with each of its ports becomes one Flow with `count: 1` (an aggregate:
 * "seen at least once"). The local side is the object's workload (namespace, `kubescape.io/workload-*`
 * labels, and `spec.matchLabels` as labels). A neighbour given by selectors becomes a peer with its
 * `selector` (podSelector and namespaceSelector as given), `labels` (podSelector.matchLabels) and, when
 * the namespaceSelector pins `kubernetes.io/metadata.name`, a namespace (no namespaceSelector = the
 * local namespace, as in a NetworkPolicy). IP neighbours become one peer per address; `dnsNames` are
 * kept as `names`.
 * What it cannot know: times of individual connections (every flow carries the latest time the object
 * gives, its creationTimestamp or a later managedFields time, and is marked `timeless`), connection
 * counts, initiator ports, verdicts (all FORWARDED), pod names.
 */
import { isIPAddress, parseRfc3339, stripDot } from './common.ts';
import type { LabelSelector } from '../model/k8s.ts';
import { FlowInputError, describeValue, wrongType } from './errors.ts';
import type { Flow, FlowEndpoint, Protocol } from './types.ts';

type Obj = Record<string, unknown>;
function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function isNetworkNeighborhood(o: unknown): boolean {
  return isObj(o) && o.kind === 'NetworkNeighborhood';
}

const PROTOCOLS: Record<string, Protocol> = { TCP: 'TCP', UDP: 'UDP', SCTP: 'SCTP' };

function list(v: unknown, path: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw wrongType(path, 'an array', v);
  return v;
}

const OPERATORS: ReadonlySet<string> = new Set(['In', 'NotIn', 'Exists', 'DoesNotExist']);

/** A label selector as given (matchLabels and matchExpressions), checked; undefined when absent. */
function selectorOf(sel: unknown, path: string): LabelSelector | undefined {
  if (sel === undefined || sel === null) return undefined;
  if (!isObj(sel)) throw wrongType(path, 'a label selector', sel);
  const out: LabelSelector = {};
  const ml = sel.matchLabels;
  if (ml !== undefined && ml !== null) {
    if (!isObj(ml)) throw wrongType(`${path}.matchLabels`, 'an object of strings', ml);
    for (const [k, v] of Object.entries(ml)) {
      if (typeof v !== 'string') throw wrongType(`${path}.matchLabels.${k}`, 'a string', v);
    }
    out.matchLabels = ml as Record<string, string>;
  }
  const me = sel.matchExpressions;
  if (me !== undefined && me !== null) {
    if (!Array.isArray(me)) throw wrongType(`${path}.matchExpressions`, 'an array', me);
    out.matchExpressions = me.map((e: unknown, i) => {
      const ep = `${path}.matchExpressions[${i}]`;
      if (!isObj(e)) throw wrongType(ep, 'an object {key, operator, values}', e);
      if (typeof e.key !== 'string' || e.key === '') throw wrongType(`${ep}.key`, 'a label key', e.key);
      if (typeof e.operator !== 'string' || !OPERATORS.has(e.operator))
        throw new FlowInputError(
          'unknown-enum',
          `${ep}.operator: unknown value ${describeValue(e.operator)}`,
        );
      const values = list(e.values, `${ep}.values`);
      for (const [j, v] of values.entries())
        if (typeof v !== 'string') throw wrongType(`${ep}.values[${j}]`, 'a string', v);
      const set = e.operator === 'In' || e.operator === 'NotIn';
      if (set !== values.length > 0)
        throw new FlowInputError(
          'bad-value',
          `${ep}.values: ${set ? 'must not be empty' : 'must be empty'} for operator ${e.operator}`,
        );
      return {
        key: e.key,
        operator: e.operator as 'In' | 'NotIn' | 'Exists' | 'DoesNotExist',
        ...(set ? { values: values as string[] } : {}),
      };
    });
  }
  return out;
}

function toLabels(m: Record<string, string>): string[] {
  return Object.keys(m)
    .sort()
    .map((k) => `${k}=${m[k]}`);
}

/**
 * A CIDR (`10.0.0.0/8`, `fd00::/64`) or `*` (any address): what Kubescape's `ipAddresses` may hold
 * besides addresses (user-managed profiles). A range names no peer a connection went to; a prefix as
 * long as its address (`/32`, `/128`) is no range but that one address (hostPrefixAddress).
 */
function isAddressRange(s: string): boolean {
  if (s === '*') return true;
  const m = /^([^/]+)\/(\d{1,3})$/.exec(s);
  if (m === null || !isIPAddress(m[1]!)) return false;
  return Number(m[2]) < (m[1]!.includes(':') ? 128 : 32);
}

/**
 * The address of a prefix as long as the address (`10.0.0.7/32`, `fd00::7/128`), which names that one
 * peer as the address alone does; undefined for anything else.
 */
function hostPrefixAddress(s: string): string | undefined {
  const m = /^([^/]+)\/(32|128)$/.exec(s);
  if (m === null || !isIPAddress(m[1]!)) return undefined;
  return (m[2] === '128') === m[1]!.includes(':') ? m[1] : undefined;
}

/**
 * Peers of one neighbour entry (one per IP address, or one selector-based peer); `ranges` is told of
 * each address range (CIDR or `*`) left out.
 */
function peersOf(n: Obj, path: string, localNs: string, ranges: () => void): FlowEndpoint[] {
  const names = list(n.dnsNames, `${path}.dnsNames`).map((d, i) => {
    if (typeof d !== 'string') throw wrongType(`${path}.dnsNames[${i}]`, 'a string', d);
    return stripDot(d);
  });
  if (names.length === 0 && typeof n.dns === 'string' && n.dns !== '') names.push(stripDot(n.dns));
  const pod = selectorOf(n.podSelector, `${path}.podSelector`);
  const nsSel = selectorOf(n.namespaceSelector, `${path}.namespaceSelector`);
  const ips: string[] = [];
  // Each address is checked where it was given, so that the message names that field.
  const checked = (ip: string, at: string): string => {
    if (!isIPAddress(ip))
      throw new FlowInputError('bad-value', `${at}: not an IP address: ${JSON.stringify(ip)}`);
    return ip;
  };
  for (const [i, a] of list(n.ipAddresses, `${path}.ipAddresses`).entries()) {
    if (typeof a !== 'string') throw wrongType(`${path}.ipAddresses[${i}]`, 'a string', a);
    if (isAddressRange(a)) ranges();
    else {
      const ip = hostPrefixAddress(a) ?? a;
      if (ip !== '' && !ips.includes(ip)) ips.push(checked(ip, `${path}.ipAddresses[${i}]`));
    }
  }
  if (typeof n.ipAddress === 'string' && n.ipAddress !== '' && !ips.includes(n.ipAddress))
    ips.unshift(checked(n.ipAddress, `${path}.ipAddress`));
  else if (n.ipAddress !== undefined && n.ipAddress !== null && typeof n.ipAddress !== 'string')
    throw wrongType(`${path}.ipAddress`, 'a string', n.ipAddress);
  const base: FlowEndpoint = {};
  if (pod !== undefined || nsSel !== undefined) {
    const ns = nsSel === undefined ? localNs : nsSel.matchLabels?.['kubernetes.io/metadata.name'];
    if (ns !== undefined) base.namespace = ns;
    const labels = pod?.matchLabels ?? {};
    if (Object.keys(labels).length > 0) base.labels = toLabels(labels);
    base.selector = {
      ...(pod !== undefined ? { podSelector: pod } : {}),
      ...(nsSel !== undefined ? { namespaceSelector: nsSel } : {}),
    };
  }
  if (names.length > 0) base.names = names;
  if (ips.length === 0) {
    if (base.selector === undefined && base.names === undefined) {
      // Only address ranges: no peer to give a flow, and nothing wrong with the object.
      if (list(n.ipAddresses, `${path}.ipAddresses`).some((a) => typeof a === 'string' && isAddressRange(a)))
        return [];
      throw new FlowInputError('missing-field', `${path}: neighbour has no selector, IP address or DNS name`);
    }
    return [base];
  }
  return ips.map((ip) => ({ ip, ...base }));
}

function portsOf(n: Obj, path: string): { protocol: Protocol; port: number }[] {
  const out: { protocol: Protocol; port: number }[] = [];
  for (const [i, p] of list(n.ports, `${path}.ports`).entries()) {
    const pp = `${path}.ports[${i}]`;
    if (!isObj(p)) throw wrongType(pp, 'an object {protocol, port}', p);
    const proto = PROTOCOLS[typeof p.protocol === 'string' ? p.protocol.toUpperCase() : ''];
    if (!proto)
      throw new FlowInputError('unknown-enum', `${pp}.protocol: unknown value ${describeValue(p.protocol)}`);
    const port = p.port;
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535)
      throw wrongType(`${pp}.port`, 'an integer from 1 to 65535', port);
    out.push({ protocol: proto, port });
  }
  return out;
}

/**
 * The latest time the object gives: its creationTimestamp, or a later `metadata.managedFields[].time`
 * (each update the node agent made). Neighbours accumulate over the object's life, so its creation is
 * only when learning began; 0 when it gives no time at all.
 */
function latestTime(meta: Obj, at: string): number {
  let time = 0;
  if (typeof meta.creationTimestamp === 'string') {
    time = parseRfc3339(meta.creationTimestamp);
    if (Number.isNaN(time))
      throw new FlowInputError('bad-value', `${at}: metadata.creationTimestamp: not an RFC 3339 timestamp`);
  }
  const fields = Array.isArray(meta.managedFields) ? (meta.managedFields as unknown[]) : [];
  for (const [i, f] of fields.entries()) {
    if (!isObj(f) || typeof f.time !== 'string') continue;
    const t = parseRfc3339(f.time);
    if (Number.isNaN(t))
      throw new FlowInputError(
        'bad-value',
        `${at}: metadata.managedFields[${i}].time: not an RFC 3339 timestamp`,
      );
    if (t > time) time = t;
  }
  return time;
}

/**
 * A neighbour without ports: counted, as it gives no flow (no rule can name its traffic); so is each
 * address range of a neighbour's `ipAddresses`.
 */
interface Converted {
  flows: Flow[];
  noPorts: number;
  ranges: number;
  /** The object names no container and Kubescape's storage says it holds no neighbour. */
  empty: boolean;
}

function convert(obj: unknown, where: string): Converted {
  if (!isObj(obj))
    throw new FlowInputError('not-an-object', `${where}: expected an object, got ${describeValue(obj)}`);
  if (obj.kind !== 'NetworkNeighborhood')
    throw new FlowInputError(
      'unknown-record',
      `${where}: expected kind NetworkNeighborhood, got ${describeValue(obj.kind)}`,
    );
  const meta = obj.metadata;
  if (!isObj(meta)) throw new FlowInputError('missing-field', `${where}: metadata is missing`);
  const labels = isObj(meta.labels) ? meta.labels : {};
  const nsRaw = meta.namespace ?? labels['kubescape.io/workload-namespace'];
  if (typeof nsRaw !== 'string' || nsRaw === '')
    throw new FlowInputError('missing-field', `${where}: metadata.namespace is missing`);
  const ns = nsRaw;
  const name = typeof meta.name === 'string' ? meta.name : '?';
  const at = `NetworkNeighborhood ${ns}/${name}`;
  const time = latestTime(meta, at);
  const spec = obj.spec;
  if (!isObj(spec)) throw new FlowInputError('missing-field', `${at}: spec is missing`);
  const local: FlowEndpoint = { namespace: ns };
  const wkind = labels['kubescape.io/workload-kind'];
  const wname = labels['kubescape.io/workload-name'];
  if (typeof wname === 'string' && wname !== '')
    local.workload = { kind: typeof wkind === 'string' ? wkind : '', name: wname };
  const own = selectorOf({ matchLabels: spec.matchLabels }, `${at}: spec`)?.matchLabels;
  if (own && Object.keys(own).length > 0) local.labels = toLabels(own);
  // An object that names no container is what a LIST of Kubescape's storage gives (`kubectl get
  // networkneighborhoods -A -o json`): the metadata, and a spec left at its zero value. Read as it is,
  // every neighbour of the workload would be lost without a word. Kubescape's storage writes the number
  // of neighbours an object holds in `kubescape.io/resource-size` each time it saves one: 0 is an
  // object still learning, or of a workload without network activity, that truly has none.
  const groups = ['containers', 'initContainers', 'ephemeralContainers'] as const;
  if (groups.every((g) => list(spec[g], `${at}: spec.${g}`).length === 0)) {
    const annotations = isObj(meta.annotations) ? meta.annotations : {};
    if (annotations['kubescape.io/resource-size'] === '0')
      return { flows: [], noPorts: 0, ranges: 0, empty: true };
    throw new FlowInputError(
      'missing-field',
      `${at}: spec.containers is empty: a NetworkNeighborhood listed (kubectl get networkneighborhoods ` +
        `without a name) carries its metadata only; get each one by name (kubectl get ` +
        `networkneighborhood -n ${ns} ${name} -o json)`,
    );
  }
  const flows: Flow[] = [];
  let noPorts = 0;
  let ranges = 0;
  for (const group of groups) {
    for (const [ci, c] of list(spec[group], `${at}: spec.${group}`).entries()) {
      const cp = `${at}: spec.${group}[${ci}]`;
      if (!isObj(c)) throw wrongType(cp, 'an object', c);
      for (const dir of ['ingress', 'egress'] as const) {
        for (const [ni, n] of list(c[dir], `${cp}.${dir}`).entries()) {
          const np = `${cp}.${dir}[${ni}]`;
          if (!isObj(n)) throw wrongType(np, 'an object', n);
          const peers = peersOf(n, np, ns, () => ranges++);
          const ports = portsOf(n, np);
          if (ports.length === 0) noPorts++;
          for (const { protocol, port } of ports) {
            for (const peer of peers) {
              flows.push({
                time,
                src: dir === 'egress' ? local : peer,
                dst: dir === 'egress' ? peer : local,
                protocol,
                port,
                verdict: 'FORWARDED',
                count: 1,
                timeless: true,
                input: 'kubescape',
              });
            }
          }
        }
      }
    }
  }
  return { flows, noPorts, ranges, empty: false };
}

/**
 * Converts one NetworkNeighborhood object into flows, or explains why it cannot. `skipped` is told the
 * number of neighbours without ports (none, or `ports` null or empty) of an object that converts, and
 * of the address ranges (CIDR or `*`) of `ipAddresses` left out; `empty-neighborhood` once for an object
 * that names no container and whose storage says it holds no neighbour (it gives no flow).
 */
export function parseNetworkNeighborhood(
  obj: unknown,
  where = 'object',
  skipped?: (reason: 'no-ports' | 'address-range' | 'empty-neighborhood', n: number) => void,
): Flow[] | FlowInputError {
  try {
    const { flows, noPorts, ranges, empty } = convert(obj, where);
    if (empty) skipped?.('empty-neighborhood', 1);
    if (noPorts > 0) skipped?.('no-ports', noPorts);
    if (ranges > 0) skipped?.('address-range', ranges);
    return flows;
  } catch (err) {
    if (err instanceof FlowInputError) return err;
    throw err;
  }
}
