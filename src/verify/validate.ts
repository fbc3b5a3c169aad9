/**
 * The input edge of the engine: every policy object is checked here once, with messages that name the
 * object and the field, and turned into a compiled form the evaluator can trust (defaults applied,
 * CIDRs parsed, ports normalised).
 */
import type { LabelSelector, NetworkPolicy } from '../model/k8s.ts';
import { selectorProblem } from '../model/selectors.ts';
import { InputError, sourceOf } from '../model/snapshot.ts';
import type { Cidr } from './ip.ts';
import { cidrWithin, parseCidr } from './ip.ts';
import type { Matcher } from './match.ts';
import { compileSelector } from './match.ts';
import type { L4Protocol } from './types.ts';
import { PROTOCOLS } from './types.ts';

export const CLUSTER_POLICY_KINDS = [
  'AdminNetworkPolicy',
  'BaselineAdminNetworkPolicy',
  'ClusterNetworkPolicy',
] as const;
export type ClusterPolicyKind = (typeof CLUSTER_POLICY_KINDS)[number];
const API_VERSIONS: Record<ClusterPolicyKind, string> = {
  AdminNetworkPolicy: 'policy.networking.k8s.io/v1alpha1',
  BaselineAdminNetworkPolicy: 'policy.networking.k8s.io/v1alpha1',
  ClusterNetworkPolicy: 'policy.networking.k8s.io/v1alpha2',
};

// ---------- compiled NetworkPolicy ----------

export type NpPeer =
  | {
      kind: 'pods';
      podSelector?: LabelSelector;
      namespaceSelector?: LabelSelector;
      podMatch?: Matcher;
      nsMatch?: Matcher;
    }
  | { kind: 'ipBlock'; cidr: Cidr; except: Cidr[]; text: string };

export interface NpPort {
  protocol: L4Protocol;
  port?: number;
  endPort?: number;
  name?: string;
}

export interface NpRule {
  /** null: any peer (from/to absent or empty). */
  peers: NpPeer[] | null;
  /** null: any port and protocol. */
  ports: NpPort[] | null;
}

export interface CompiledNetworkPolicy {
  key: string;
  namespace: string;
  name: string;
  podSelector: LabelSelector;
  podMatch: Matcher;
  /** null when the policy does not govern ingress (after policyTypes defaulting). */
  ingress: NpRule[] | null;
  egress: NpRule[] | null;
}

// ---------- compiled AdminNetworkPolicy / BaselineAdminNetworkPolicy / ClusterNetworkPolicy ----------

export type CpPeer =
  | { kind: 'namespaces'; namespaceSelector: LabelSelector }
  | { kind: 'pods'; namespaceSelector: LabelSelector; podSelector: LabelSelector }
  | { kind: 'nodes'; nodeSelector: LabelSelector }
  | { kind: 'networks'; cidrs: Cidr[] };

export interface CpPort {
  /** Absent for a named port: the protocol is the container port's. */
  protocol?: L4Protocol;
  start?: number;
  end?: number;
  name?: string;
}

export type CpAction = 'Allow' | 'Deny' | 'Pass';

export interface CpRule {
  label: string;
  action: CpAction;
  /** Action as written (Accept for ClusterNetworkPolicy). */
  actionText: string;
  peers: CpPeer[];
  ports: CpPort[] | null;
}

export interface CompiledClusterPolicy {
  key: string;
  kind: ClusterPolicyKind;
  name: string;
  tier: 'admin' | 'baseline';
  priority: number;
  subject: { namespaceSelector: LabelSelector; podSelector?: LabelSelector };
  ingress: CpRule[];
  egress: CpRule[];
}

// ---------- helpers ----------

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

class Checker {
  readonly where: string;
  /** `obj`: the object checked, whose file (sourceOf) the messages name when it is known. */
  constructor(where: string, obj: object) {
    const source = sourceOf(obj);
    this.where = source === undefined ? where : `${source}: ${where}`;
  }
  fail(path: string, problem: string): never {
    throw new InputError(`${this.where}: ${path} ${problem}`);
  }
  obj(v: unknown, path: string): Obj {
    if (!isObj(v)) this.fail(path, 'must be an object');
    return v;
  }
  /** undefined/null → undefined; otherwise must be a list. */
  list(v: unknown, path: string): unknown[] | undefined {
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v)) this.fail(path, 'must be a list');
    return v as unknown[];
  }
  selector(v: unknown, path: string): LabelSelector {
    const p = selectorProblem(v);
    if (p) this.fail(path, `is not a valid label selector: ${p}`);
    return v as LabelSelector;
  }
  cidr(v: unknown, path: string): Cidr {
    const c = typeof v === 'string' ? parseCidr(v) : undefined;
    if (!c) this.fail(path, `${JSON.stringify(v)} is not a valid CIDR`);
    return c;
  }
  protocol(v: unknown, path: string): L4Protocol {
    if (v === undefined || v === null) return 'TCP';
    if (typeof v !== 'string' || !(PROTOCOLS as readonly string[]).includes(v))
      this.fail(path, `${JSON.stringify(v)} is not one of TCP, UDP, SCTP`);
    return v as L4Protocol;
  }
  portNumber(v: unknown, path: string): number {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535)
      this.fail(path, `${JSON.stringify(v)} is not a port number (1-65535)`);
    return v;
  }
  portName(v: unknown, path: string): string {
    if (typeof v !== 'string' || !isPortName(v))
      this.fail(
        path,
        `${JSON.stringify(v)} is not a valid port name (1-15 lowercase letters, digits and '-', with at least one letter)`,
      );
    return v;
  }
}

/** IANA service name, as Kubernetes requires for container port names. */
export function isPortName(s: string): boolean {
  return (
    s.length >= 1 &&
    s.length <= 15 &&
    /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(s) &&
    /[a-z]/.test(s) &&
    !s.includes('--')
  );
}

// ---------- NetworkPolicy ----------

/**
 * Compiled parts that equal policies share: an engine compiles its policies with one, so that the
 * rules of a proposal — a rule per observed peer, naming the same namespaces, pod selectors and ports
 * over and over — hold each distinct selector's requirements and each distinct port once. A part is
 * shared only after it is compiled (and so validated) on its own, and only with a part that compiled
 * to the same requirements; compiled parts are never changed.
 */
export class CompileCache {
  readonly #byKey = new Map<string, object>();

  /** The part compiled first with this key, or `fresh`, which then stands for the key. */
  #share<T extends object>(key: string, fresh: T): T {
    const known = this.#byKey.get(key);
    if (known !== undefined) return known as T;
    this.#byKey.set(key, fresh);
    return fresh;
  }

  /** A validated selector, compiled: one matcher for equal requirements. */
  matcher(sel: LabelSelector): Matcher {
    const fresh = compileSelector(sel);
    return this.#share(`M${matcherKey(fresh)}`, fresh);
  }

  port(p: NpPort): NpPort {
    return this.#share(`T${p.protocol}\u0000${p.port ?? ''}\u0000${p.endPort ?? ''}\u0000${p.name ?? ''}`, p);
  }
}

/**
 * A text for a compiled selector's requirements: two selectors with one text match the same labels. In
 * JSON, as the values of a matchExpression may hold any character (`['a\u0000b']` is not `['a', 'b']`);
 * values that are not strings are refused before (selectorProblem).
 */
function matcherKey(m: Matcher): string {
  let k = '';
  for (const r of m) k += JSON.stringify([r.key, r.op, r.value, r.values]);
  return k;
}

/**
 * Validates and compiles a NetworkPolicy. With a `cache`, equal parts of the policies compiled with it
 * are one object (see CompileCache); the results are the same either way.
 */
export function compileNetworkPolicy(np: NetworkPolicy, cache?: CompileCache): CompiledNetworkPolicy {
  const namespace = np.metadata.namespace ?? '';
  const name = np.metadata.name;
  const c: Checker = new Checker(`NetworkPolicy ${namespace}/${name}`, np);
  if (np.apiVersion !== undefined && np.apiVersion !== 'networking.k8s.io/v1')
    c.fail('apiVersion', `${JSON.stringify(np.apiVersion)} is not supported (expected networking.k8s.io/v1)`);
  const spec = c.obj(np.spec, 'spec');
  const podSelector =
    spec.podSelector === undefined || spec.podSelector === null
      ? {}
      : c.selector(spec.podSelector, 'spec.podSelector');
  const typesRaw = c.list(spec.policyTypes, 'spec.policyTypes');
  const types = new Set<string>();
  for (const [i, t] of (typesRaw ?? []).entries()) {
    if (t !== 'Ingress' && t !== 'Egress')
      c.fail(`spec.policyTypes[${i}]`, `${JSON.stringify(t)} is not one of Ingress, Egress`);
    types.add(t);
  }
  const ingressRaw = c.list(spec.ingress, 'spec.ingress');
  const egressRaw = c.list(spec.egress, 'spec.egress');
  if (types.size === 0) {
    // API defaulting (pkg/apis/networking/v1/defaults.go): Ingress always, Egress only with egress rules.
    types.add('Ingress');
    if (egressRaw && egressRaw.length > 0) types.add('Egress');
  }
  const rules = (raw: unknown[] | undefined, dir: 'ingress' | 'egress'): NpRule[] => {
    const peerField = dir === 'ingress' ? 'from' : 'to';
    return (raw ?? []).map((r, i) => {
      const rp = `spec.${dir}[${i}]`;
      const rule = c.obj(r, rp);
      const peersRaw = c.list(rule[peerField], `${rp}.${peerField}`);
      const portsRaw = c.list(rule.ports, `${rp}.ports`);
      const peers =
        peersRaw && peersRaw.length > 0
          ? peersRaw.map((p, j) => compileNpPeer(c, p, `${rp}.${peerField}[${j}]`, cache))
          : null;
      const ports =
        portsRaw && portsRaw.length > 0
          ? portsRaw.map((p, j) => compileNpPort(c, p, `${rp}.ports[${j}]`))
          : null;
      return { peers, ports: ports && cache ? ports.map((p) => cache.port(p)) : ports };
    });
  };
  const ingress = rules(ingressRaw, 'ingress');
  const egress = rules(egressRaw, 'egress');
  return {
    key: `${namespace}/${name}`,
    namespace,
    name,
    podSelector,
    podMatch: compileSelector(podSelector),
    ingress: types.has('Ingress') ? ingress : null,
    egress: types.has('Egress') ? egress : null,
  };
}

function compileNpPeer(c: Checker, raw: unknown, path: string, cache?: CompileCache): NpPeer {
  const peer = c.obj(raw, path);
  for (const k of Object.keys(peer)) {
    if (!['podSelector', 'namespaceSelector', 'ipBlock'].includes(k))
      c.fail(`${path}.${k}`, 'is not a NetworkPolicyPeer field (podSelector, namespaceSelector, ipBlock)');
  }
  const has = (k: string) => peer[k] !== undefined && peer[k] !== null;
  if (has('ipBlock')) {
    if (has('podSelector') || has('namespaceSelector'))
      c.fail(path, 'may not set ipBlock together with podSelector or namespaceSelector');
    const ib = c.obj(peer.ipBlock, `${path}.ipBlock`);
    const cidr = c.cidr(ib.cidr, `${path}.ipBlock.cidr`);
    const except = (c.list(ib.except, `${path}.ipBlock.except`) ?? []).map((e, k) => {
      const ep = `${path}.ipBlock.except[${k}]`;
      const ex = c.cidr(e, ep);
      if (!cidrWithin(ex, cidr))
        c.fail(ep, `${JSON.stringify(e)} is not inside the ipBlock cidr ${JSON.stringify(ib.cidr)}`);
      // The API server wants a strict subset: an except as wide as its cidr would empty the block.
      if (ex.prefix === cidr.prefix)
        c.fail(
          ep,
          `${JSON.stringify(e)} is the whole ipBlock cidr ${JSON.stringify(ib.cidr)} (an except must be narrower than its cidr)`,
        );
      return ex;
    });
    return { kind: 'ipBlock', cidr, except, text: String(ib.cidr) };
  }
  if (!has('podSelector') && !has('namespaceSelector'))
    c.fail(path, 'must set podSelector, namespaceSelector or ipBlock');
  const out: NpPeer = { kind: 'pods' };
  if (has('podSelector')) {
    out.podSelector = c.selector(peer.podSelector, `${path}.podSelector`);
    out.podMatch = cache ? cache.matcher(out.podSelector) : compileSelector(out.podSelector);
  }
  if (has('namespaceSelector')) {
    out.namespaceSelector = c.selector(peer.namespaceSelector, `${path}.namespaceSelector`);
    out.nsMatch = cache ? cache.matcher(out.namespaceSelector) : compileSelector(out.namespaceSelector);
  }
  return out;
}

function compileNpPort(c: Checker, raw: unknown, path: string): NpPort {
  const p = c.obj(raw, path);
  const out: NpPort = { protocol: c.protocol(p.protocol, `${path}.protocol`) };
  if (p.port !== undefined && p.port !== null) {
    if (typeof p.port === 'number') out.port = c.portNumber(p.port, `${path}.port`);
    else out.name = c.portName(p.port, `${path}.port`);
  }
  if (p.endPort !== undefined && p.endPort !== null) {
    if (out.port === undefined) c.fail(`${path}.endPort`, 'requires a numeric port');
    const end = c.portNumber(p.endPort, `${path}.endPort`);
    if (end < out.port) c.fail(`${path}.endPort`, `${end} is less than port ${out.port}`);
    out.endPort = end;
  }
  return out;
}

// ---------- cluster-scoped policies ----------

export function isClusterPolicyKind(kind: string): kind is ClusterPolicyKind {
  return (CLUSTER_POLICY_KINDS as readonly string[]).includes(kind);
}

export function compileClusterPolicy(obj: Obj): CompiledClusterPolicy {
  const kind = obj.kind as ClusterPolicyKind;
  const rawName = (obj.metadata as Obj | undefined)?.name;
  const name = typeof rawName === 'string' ? rawName : '';
  const c: Checker = new Checker(`${kind} ${name}`, obj);
  if (obj.apiVersion !== API_VERSIONS[kind])
    c.fail(
      'apiVersion',
      `${JSON.stringify(obj.apiVersion)} is not supported (expected ${API_VERSIONS[kind]})`,
    );
  const spec = c.obj(obj.spec, 'spec');
  let tier: 'admin' | 'baseline';
  let priority = 0;
  if (kind === 'ClusterNetworkPolicy') {
    if (spec.tier !== 'Admin' && spec.tier !== 'Baseline')
      c.fail('spec.tier', `${JSON.stringify(spec.tier)} is not one of Admin, Baseline`);
    tier = spec.tier === 'Admin' ? 'admin' : 'baseline';
  } else {
    tier = kind === 'AdminNetworkPolicy' ? 'admin' : 'baseline';
  }
  if (kind === 'BaselineAdminNetworkPolicy' && name !== 'default')
    c.fail('metadata.name', `must be "default" (only one BaselineAdminNetworkPolicy is allowed)`);
  if (kind !== 'BaselineAdminNetworkPolicy') {
    const pr = spec.priority;
    if (typeof pr !== 'number' || !Number.isInteger(pr) || pr < 0 || pr > 1000)
      c.fail('spec.priority', `${JSON.stringify(pr)} is not an integer from 0 to 1000`);
    priority = pr;
  }
  const subj = c.obj(spec.subject, 'spec.subject');
  const subjKeys = Object.keys(subj).filter((k) => subj[k] !== undefined && subj[k] !== null);
  if (subjKeys.length !== 1) c.fail('spec.subject', 'must set exactly one of namespaces, pods');
  let subject: CompiledClusterPolicy['subject'];
  if (subjKeys[0] === 'namespaces') {
    subject = { namespaceSelector: c.selector(subj.namespaces, 'spec.subject.namespaces') };
  } else if (subjKeys[0] === 'pods') {
    const np = compileNamespacedPod(c, subj.pods, 'spec.subject.pods');
    subject = { namespaceSelector: np.namespaceSelector, podSelector: np.podSelector };
  } else {
    c.fail(`spec.subject.${subjKeys[0]}`, 'is not supported (expected namespaces or pods)');
  }
  const actions: Record<string, CpAction> =
    kind === 'ClusterNetworkPolicy'
      ? { Accept: 'Allow', Deny: 'Deny', Pass: 'Pass' }
      : kind === 'AdminNetworkPolicy'
        ? { Allow: 'Allow', Deny: 'Deny', Pass: 'Pass' }
        : { Allow: 'Allow', Deny: 'Deny' };
  const rules = (dir: 'ingress' | 'egress'): CpRule[] =>
    (c.list(spec[dir], `spec.${dir}`) ?? []).map((r, i) => {
      const rp = `spec.${dir}[${i}]`;
      const rule = c.obj(r, rp);
      const act = typeof rule.action === 'string' ? actions[rule.action] : undefined;
      if (typeof rule.action !== 'string' || !act)
        c.fail(
          `${rp}.action`,
          `${JSON.stringify(rule.action)} is not one of ${Object.keys(actions).join(', ')}`,
        );
      const peerField = dir === 'ingress' ? 'from' : 'to';
      const peersRaw = c.list(rule[peerField], `${rp}.${peerField}`);
      if (!peersRaw || peersRaw.length === 0) c.fail(`${rp}.${peerField}`, 'must list at least one peer');
      const peers = peersRaw.map((p, j) => compileCpPeer(c, p, `${rp}.${peerField}[${j}]`, dir));
      let ports: CpPort[] | null = null;
      if (kind === 'ClusterNetworkPolicy') {
        const pr = c.list(rule.protocols, `${rp}.protocols`);
        if (pr && pr.length > 0) ports = pr.map((p, j) => compileCnpProtocol(c, p, `${rp}.protocols[${j}]`));
      } else {
        const pr = c.list(rule.ports, `${rp}.ports`);
        if (pr && pr.length > 0) ports = pr.map((p, j) => compileAnpPort(c, p, `${rp}.ports[${j}]`));
      }
      const ruleName = typeof rule.name === 'string' && rule.name !== '' ? ` (${rule.name})` : '';
      return {
        label: `${dir}[${i}]${ruleName}`,
        action: act,
        actionText: rule.action,
        peers,
        ports,
      };
    });
  return {
    key: `${kind}/${name}`,
    kind,
    name,
    tier,
    priority,
    subject,
    ingress: rules('ingress'),
    egress: rules('egress'),
  };
}

function compileNamespacedPod(
  c: Checker,
  raw: unknown,
  path: string,
): { namespaceSelector: LabelSelector; podSelector: LabelSelector } {
  const o = c.obj(raw, path);
  return {
    namespaceSelector:
      o.namespaceSelector === undefined || o.namespaceSelector === null
        ? {}
        : c.selector(o.namespaceSelector, `${path}.namespaceSelector`),
    podSelector:
      o.podSelector === undefined || o.podSelector === null
        ? {}
        : c.selector(o.podSelector, `${path}.podSelector`),
  };
}

function compileCpPeer(c: Checker, raw: unknown, path: string, dir: 'ingress' | 'egress'): CpPeer {
  const o = c.obj(raw, path);
  const keys = Object.keys(o).filter((k) => o[k] !== undefined && o[k] !== null);
  if (keys.length !== 1) c.fail(path, 'must set exactly one peer field');
  const k = keys[0]!;
  switch (k) {
    case 'namespaces':
      return { kind: 'namespaces', namespaceSelector: c.selector(o.namespaces, `${path}.namespaces`) };
    case 'pods':
      return { kind: 'pods', ...compileNamespacedPod(c, o.pods, `${path}.pods`) };
    case 'nodes':
      if (dir === 'ingress') break;
      return { kind: 'nodes', nodeSelector: c.selector(o.nodes, `${path}.nodes`) };
    case 'networks': {
      if (dir === 'ingress') break;
      const list = c.list(o.networks, `${path}.networks`);
      if (!list || list.length === 0) c.fail(`${path}.networks`, 'must list at least one CIDR');
      return { kind: 'networks', cidrs: list.map((n, i) => c.cidr(n, `${path}.networks[${i}]`)) };
    }
  }
  c.fail(`${path}.${k}`, `is not supported by microseg for ${dir} peers`);
}

function compileAnpPort(c: Checker, raw: unknown, path: string): CpPort {
  const o = c.obj(raw, path);
  const keys = Object.keys(o).filter((k) => o[k] !== undefined && o[k] !== null);
  if (keys.length !== 1) c.fail(path, 'must set exactly one of portNumber, portRange, namedPort');
  const k = keys[0]!;
  if (k === 'portNumber') {
    const pn = c.obj(o.portNumber, `${path}.portNumber`);
    const port = c.portNumber(pn.port, `${path}.portNumber.port`);
    return { protocol: c.protocol(pn.protocol, `${path}.portNumber.protocol`), start: port, end: port };
  }
  if (k === 'portRange') {
    const pr = c.obj(o.portRange, `${path}.portRange`);
    const start = c.portNumber(pr.start, `${path}.portRange.start`);
    const end = c.portNumber(pr.end, `${path}.portRange.end`);
    if (end < start) c.fail(`${path}.portRange.end`, `${end} is less than start ${start}`);
    return { protocol: c.protocol(pr.protocol, `${path}.portRange.protocol`), start, end };
  }
  if (k === 'namedPort') return { name: c.portName(o.namedPort, `${path}.namedPort`) };
  c.fail(`${path}.${k}`, 'is not supported (expected portNumber, portRange or namedPort)');
}

function compileCnpProtocol(c: Checker, raw: unknown, path: string): CpPort {
  const o = c.obj(raw, path);
  const keys = Object.keys(o).filter((k) => o[k] !== undefined && o[k] !== null);
  if (keys.length !== 1) c.fail(path, 'must set exactly one of tcp, udp, sctp, destinationNamedPort');
  const k = keys[0]!;
  if (k === 'destinationNamedPort')
    return { name: c.portName(o.destinationNamedPort, `${path}.destinationNamedPort`) };
  const proto = ({ tcp: 'TCP', udp: 'UDP', sctp: 'SCTP' } as Record<string, L4Protocol>)[k];
  if (!proto) c.fail(`${path}.${k}`, 'is not supported (expected tcp, udp, sctp or destinationNamedPort)');
  const body = c.obj(o[k], `${path}.${k}`);
  if (body.destinationPort === undefined || body.destinationPort === null) return { protocol: proto };
  const dp = c.obj(body.destinationPort, `${path}.${k}.destinationPort`);
  if (dp.range !== undefined && dp.range !== null) {
    const r = c.obj(dp.range, `${path}.${k}.destinationPort.range`);
    const start = c.portNumber(r.start, `${path}.${k}.destinationPort.range.start`);
    const end = c.portNumber(r.end, `${path}.${k}.destinationPort.range.end`);
    if (end < start) c.fail(`${path}.${k}.destinationPort.range.end`, `${end} is less than start ${start}`);
    return { protocol: proto, start, end };
  }
  const n = c.portNumber(dp.number, `${path}.${k}.destinationPort.number`);
  return { protocol: proto, start: n, end: n };
}
