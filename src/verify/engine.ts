/**
 * The NetworkPolicy semantics engine: given namespaces, pods, NetworkPolicies and the cluster-scoped
 * policy kinds, decides whether a connection is allowed and says why. Pure: plain data in, plain data out.
 *
 * A connection is allowed iff the source side allows it for egress and the destination side allows it
 * for ingress. Each side walks the tiers Admin (AdminNetworkPolicy and ClusterNetworkPolicy tier Admin,
 * by ascending priority) → NetworkPolicy → Baseline (BaselineAdminNetworkPolicy and ClusterNetworkPolicy
 * tier Baseline) → default allow, stopping at the first decision.
 */
import type {
  CronJob,
  Namespace,
  NetworkPolicy,
  OtherObject,
  Pod,
  Service,
  WorkloadObject,
} from '../model/k8s.ts';
import type { Ownership } from '../identity/index.ts';
import { ownershipOf, rootOwner, workloadId } from '../identity/index.ts';
import type { ClusterSnapshot } from '../model/snapshot.ts';
import { InputError, podIPs } from '../model/snapshot.ts';
import { nodeIPAddresses } from '../model/nodes.ts';
import type { Steps } from '../model/steps.ts';
import { runSteps } from '../model/steps.ts';
import type { Addr, Cidr } from './ip.ts';
import { firstLabel, matches, selects as matchesSelector } from './match.ts';
import type { Matcher } from './match.ts';
import { cidrContains, formatAddr, formatCidr, parseAddr, parseCidr } from './ip.ts';
import { closestName, compareText } from '../model/order.ts';
import { isEmptySelector } from '../model/selectors.ts';
import type {
  AddrEnd,
  DirectionVerdict,
  EngineOptions,
  Endpoint,
  L4Protocol,
  PodEnd,
  Query,
  ResolvedEnd,
  ResolvedOptions,
  Tier,
  Verdict,
} from './types.ts';
import { DEFAULT_OPTIONS, PROTOCOLS } from './types.ts';
import type {
  CompiledClusterPolicy,
  CompiledNetworkPolicy,
  CpPeer,
  CpPort,
  CpRule,
  NpPeer,
  NpPort,
  NpRule,
} from './validate.ts';
import { CompileCache, compileClusterPolicy, compileNetworkPolicy, isClusterPolicyKind } from './validate.ts';

export const NS_NAME_LABEL = 'kubernetes.io/metadata.name';

/** Given to Engine's constructor by `Engine.steps`, which builds the engine itself, in steps. */
const IN_STEPS: unique symbol = Symbol('in steps');

export interface EngineInput {
  namespaces?: readonly Namespace[];
  pods?: readonly Pod[];
  networkPolicies?: readonly NetworkPolicy[];
  /** AdminNetworkPolicy, BaselineAdminNetworkPolicy (v1alpha1) and ClusterNetworkPolicy (v1alpha2) objects. */
  clusterPolicies?: readonly OtherObject[];
  /** Node objects (labels and status.addresses), for node peers and node traffic. */
  nodes?: readonly OtherObject[];
  /**
   * Services: a query (`evaluate`) to or from one of their ClusterIPs, `spec.externalIPs` or load
   * balancer IPs (`status.loadBalancer.ingress[].ip`, unless its `ipMode` is `Proxy`) is refused, since
   * policies see the connection after the address is translated to a backend pod; so is a query to a
   * node's address on the nodePort of a NodePort or LoadBalancer Service, or on a port of a Service that
   * lists the node's address as an external or load-balancer IP.
   */
  services?: readonly Service[];
  /**
   * The owners of pods (ReplicaSets, Jobs and the workloads above them) and CronJobs: a class is named
   * after its pods' root owner as identity names workloads (`batch/CronJob/report-generator` for the pods
   * of its Jobs). Without them a pod's owner reference is all there is (a ReplicaSet's pod with a
   * pod-template-hash still counts as its Deployment's).
   */
  workloads?: readonly WorkloadObject[];
  cronJobs?: readonly CronJob[];
}

/** A compact decision for one direction (no strings built): used by batch evaluation. */
export interface Decision {
  allowed: boolean;
  tier: Tier;
  policy?: string;
  rule?: string;
  action?: string;
  passedBy?: string[];
}

interface Selection {
  npIngress: CompiledNetworkPolicy[];
  npEgress: CompiledNetworkPolicy[];
  adminIngress: CompiledClusterPolicy[];
  adminEgress: CompiledClusterPolicy[];
  baselineIngress: CompiledClusterPolicy[];
  baselineEgress: CompiledClusterPolicy[];
}

interface NodeInfo {
  name: string;
  /** Undefined for a node known only from its pods' `status.hostIP` (no Node object given). */
  labels: Record<string, string> | undefined;
  addrs: Addr[];
}

function addrKey(a: Addr): string {
  return `${a.family}:${a.value.toString(16)}`;
}

export function labelsKey(labels: Readonly<Record<string, string>>): string {
  let only: string | undefined;
  let count = 0;
  for (const k in labels) {
    only = k;
    if (++count > 1) break;
  }
  if (count === 0) return '';
  if (count === 1) return `${only}=${labels[only!]}`;
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(',');
}

function normProtocol(p: unknown): L4Protocol {
  return typeof p === 'string' && (PROTOCOLS as readonly string[]).includes(p) ? (p as L4Protocol) : 'TCP';
}

/** What messages call each field of a query (e.g. the flags `--from`, `--to`, `--port`, `--protocol`). */
export interface QueryFieldNames {
  from: string;
  to: string;
  port: string;
  protocol: string;
}

export function parseProtocol(p: unknown, where: string): L4Protocol {
  if (p === undefined || p === null) return 'TCP';
  if (typeof p !== 'string' || !(PROTOCOLS as readonly string[]).includes(p))
    throw new InputError(`${where}: protocol ${JSON.stringify(p)} is not one of TCP, UDP, SCTP`);
  return p as L4Protocol;
}

/** The values each option takes; the first is its default. */
const OPTION_VALUES: { [K in keyof ResolvedOptions]: readonly ResolvedOptions[K][] } = {
  ipBlockMatchesPods: [DEFAULT_OPTIONS.ipBlockMatchesPods, !DEFAULT_OPTIONS.ipBlockMatchesPods],
  selfTraffic: ['allow', 'evaluate'],
  nodeTraffic: ['allow', 'evaluate'],
  hostNetworkPods: ['node', 'pod'],
};

/**
 * The options with their defaults: an option left out or given as undefined is its default (a spread
 * would take the undefined, which every check reads as the other value), and a value the option does
 * not take is refused rather than read as the other one.
 */
function resolveOptions(options: EngineOptions): ResolvedOptions {
  const out: ResolvedOptions = { ...DEFAULT_OPTIONS };
  for (const k of Object.keys(OPTION_VALUES) as (keyof ResolvedOptions)[]) {
    const v: unknown = options[k];
    if (v === undefined) continue;
    if (!(OPTION_VALUES[k] as readonly unknown[]).includes(v))
      throw new InputError(
        `engine option ${k}: ${JSON.stringify(v)} is not one of ${OPTION_VALUES[k].map((x) => JSON.stringify(x)).join(', ')}`,
      );
    (out as unknown as Record<string, unknown>)[k] = v;
  }
  return out;
}

/** The labels of a pod without any. */
const NO_LABELS: Readonly<Record<string, string>> = Object.freeze({});

export class Engine {
  readonly options: ResolvedOptions;
  #networkPolicies: readonly CompiledNetworkPolicy[] = [];
  #adminPolicies: readonly CompiledClusterPolicy[] = [];
  #baselinePolicies: readonly CompiledClusterPolicy[] = [];
  get networkPolicies(): readonly CompiledNetworkPolicy[] {
    return this.#networkPolicies;
  }
  get adminPolicies(): readonly CompiledClusterPolicy[] {
    return this.#adminPolicies;
  }
  get baselinePolicies(): readonly CompiledClusterPolicy[] {
    return this.#baselinePolicies;
  }
  private readonly npsByNs = new Map<string, CompiledNetworkPolicy[]>();
  /** NetworkPolicies by `ns\0k=v` of their podSelector's first matchLabels entry (`ns\0` when none). */
  private readonly npsByNsLabel = new Map<string, CompiledNetworkPolicy[]>();
  private readonly npOrder = new Map<CompiledNetworkPolicy, number>();
  /** NetworkPolicies by key, the first in `networkPolicies` of each (explain's ipBlock note). */
  private readonly npsByKey = new Map<string, CompiledNetworkPolicy>();
  private readonly nsLabelsMap = new Map<string, Record<string, string>>();
  private readonly pods = new Map<string, PodEnd | AddrEnd>();
  private readonly podList: PodEnd[] = [];
  private readonly finished = new Set<string>();
  private readonly ipIndex = new Map<string, ResolvedEnd>();
  private readonly nodes = new Map<string, NodeInfo>();
  /**
   * The addresses (`node\0addrKey`) a node's own traffic to its pods comes from, which the node-traffic
   * exception admits: its Node object's InternalIPs, its pods' status.hostIP(s) and its host-network
   * pods' addresses. Its other addresses (an ExternalIP, NATed to it outside the cluster) are still the
   * node's, for a `nodes` peer (which matches every IP of node.status.addresses), but a connection from
   * one is evaluated like any other; `nodeOtherAddrs` gives their type for the note saying so.
   */
  private readonly nodeOwnAddrs = new Set<string>();
  private readonly nodeOtherAddrs = new Map<string, string>();
  /** The pod CIDRs Node objects give (`spec.podCIDRs`, else `spec.podCIDR`), by node name. */
  private readonly nodePodCidrs: { node: string; cidr: Cidr; field: 'podCIDRs' | 'podCIDR' }[] = [];
  /** The pod networks inferred from pod addresses, as recommend infers them: the /16 (IPv4) or /48 (IPv6). */
  private readonly inferredPodNetworks = new Map<string, Cidr>();
  /**
   * Addresses (addrKey) a Service's traffic is translated from → what the address is, as the refusal
   * says it: `the ClusterIP of Service ns/name`, `an external IP of Service ns/name (spec.externalIPs[0])`.
   */
  private readonly serviceAddrs = new Map<string, string>();
  /**
   * Ports of a node's addresses the node translates to pods, by `protocol/port` (a Service's nodePort,
   * on every node) or `node\0family\0protocol/port` (a pod's hostPort, on its node's addresses of the
   * families the pod has an address of) → what the port is, as the
   * refusal says it. A host-network pod listening on a port of its node (`hostListeners`) keeps it.
   */
  private readonly nodePorts = new Map<string, { what: string; ask: string }>();
  private readonly hostPorts = new Map<string, { what: string; ask: string }>();
  private readonly hostListeners = new Set<string>();
  /**
   * The ports of each address a Service lists as an external or load-balancer IP (`addrKey` →
   * `protocol/port` → what the port is): on a node's address (bare metal's `spec.externalIPs`, k3s's
   * ServiceLB), which otherwise stands for the node, the node translates those ports to the backends.
   */
  private readonly addrPorts = new Map<string, Map<string, { what: string; ask: string; base: string }>>();
  /** The container ports of host-network pods answered as their node (hostNetworkPods=node), by end key. */
  private readonly hostPodPorts = new Map<
    string,
    readonly { name?: string; port: number; protocol: L4Protocol }[]
  >();
  private readonly selCache = new Map<string, Selection>();
  private readonly selByEnd = new WeakMap<PodEnd, Selection>();
  private readonly nsSelCache = new WeakMap<object, Map<string, boolean>>();
  /**
   * NetworkPolicy peers' namespace selectors, compiled (equal ones are one object, see CompileCache):
   * namespace name → whether the selector matches it, filled as asked.
   */
  private readonly nsMatchMemo = new Map<Matcher, Map<string, boolean>>();
  /** Rule indexes of long rule lists, by policy: ingress and egress. */
  private readonly ruleIndexes = new WeakMap<
    CompiledNetworkPolicy,
    { ingress?: RuleIndex; egress?: RuleIndex }
  >();

  /** `inSteps`: `Engine.steps` builds it (`#build`), in steps; otherwise it is built here, at once. */
  constructor(input: EngineInput, options: EngineOptions = {}, inSteps?: typeof IN_STEPS) {
    this.options = resolveOptions(options);
    if (inSteps !== IN_STEPS) runSteps(this.#build(input));
  }

  /**
   * The engine of `input`, built in steps (see model/steps.ts): one pod, Service or policy at a time, so
   * that a server builds an engine of thousands of them without holding its event loop. The same engine
   * as `new Engine(input, options)`.
   */
  static *steps(input: EngineInput, options: EngineOptions = {}): Steps<Engine> {
    const engine = new Engine(input, options, IN_STEPS);
    yield* engine.#build(input);
    return engine;
  }

  *#build(input: EngineInput): Steps<void> {
    for (const ns of input.namespaces ?? []) {
      this.nsLabelsMap.set(ns.metadata.name, {
        ...(ns.metadata.labels ?? {}),
        [NS_NAME_LABEL]: ns.metadata.name,
      });
    }
    for (const n of input.nodes ?? []) {
      const meta = n.metadata;
      const addrs: Addr[] = [];
      for (const a of nodeIPAddresses(n)) {
        addrs.push(a.addr);
        const k = `${meta.name}\u0000${addrKey(a.addr)}`;
        if (a.internal) this.nodeOwnAddrs.add(k);
        else if (!this.nodeOtherAddrs.has(k)) this.nodeOtherAddrs.set(k, a.type ?? 'address (of no type)');
      }
      this.nodes.set(meta.name, { name: meta.name, labels: { ...(meta.labels ?? {}) }, addrs });
      const spec = (n as { spec?: { podCIDR?: unknown; podCIDRs?: unknown } }).spec;
      // The field named is the one read: a Node of an older API server may give spec.podCIDR alone.
      const field = Array.isArray(spec?.podCIDRs) ? 'podCIDRs' : 'podCIDR';
      const cidrs = Array.isArray(spec?.podCIDRs) ? spec.podCIDRs : [spec?.podCIDR];
      for (const text of cidrs) {
        const cidr = typeof text === 'string' ? parseCidr(text) : undefined;
        if (cidr) this.nodePodCidrs.push({ node: meta.name, cidr, field });
      }
    }
    this.nodePodCidrs.sort((a, b) => compareText(a.node, b.node));
    // A pod's status.hostIP(s) is an address of the node it runs on (the one the kubelet probes it
    // from), whether or not the input has that Node object or lists that address; so is a host-network
    // pod's own address (a dual-stack node's IPv6 one, when the kubelet writes no status.hostIPs).
    for (const pod of input.pods ?? []) {
      const name = pod.spec?.nodeName;
      if (!name) continue;
      const status = pod.status as { hostIP?: unknown; hostIPs?: { ip?: unknown }[] } | undefined;
      const texts = [
        status?.hostIP,
        ...(Array.isArray(status?.hostIPs) ? status.hostIPs.map((h) => h?.ip) : []),
        ...(pod.spec?.hostNetwork === true ? podIPs(pod) : []),
      ];
      for (const t of texts) {
        const a = typeof t === 'string' ? parseAddr(t) : undefined;
        if (!a) continue;
        this.nodeOwnAddrs.add(`${name}\u0000${addrKey(a)}`);
        let node = this.nodes.get(name);
        if (!node) this.nodes.set(name, (node = { name, labels: undefined, addrs: [] }));
        if (!node.addrs.some((x) => x.family === a.family && x.value === a.value)) node.addrs.push(a);
      }
    }
    for (const node of [...this.nodes.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
      for (const a of node.addrs) {
        const end: AddrEnd = {
          kind: 'ip',
          key: `node:${node.name}`,
          display: `node ${node.name} (${formatAddr(a)})`,
          ip: a,
          node: node.name,
          ...(node.labels ? { nodeLabels: node.labels } : {}),
        };
        if (!this.ipIndex.has(addrKey(a))) this.ipIndex.set(addrKey(a), end);
      }
    }
    const sortedPods = [...(input.pods ?? [])].sort((a, b) => {
      const ka = `${a.metadata.namespace}/${a.metadata.name}`;
      const kb = `${b.metadata.namespace}/${b.metadata.name}`;
      return ka < kb ? -1 : ka > kb ? 1 : 0;
    });
    const ownership = ownershipOf({
      workloads: input.workloads ?? [],
      cronJobs: input.cronJobs ?? [],
      pods: sortedPods,
    });
    yield;
    for (const pod of sortedPods) {
      this.addPod(pod, ownership);
      yield;
    }
    for (const svc of input.services ?? []) {
      this.addServiceAddrs(svc);
      yield;
    }
    for (const pod of sortedPods) {
      this.addHostPorts(pod);
      yield;
    }

    const shared = new CompileCache();
    const nps: CompiledNetworkPolicy[] = [];
    for (const np of input.networkPolicies ?? []) {
      nps.push(compileNetworkPolicy(np, shared));
      yield;
    }
    nps.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    this.#networkPolicies = nps;
    yield;
    for (const np of nps) {
      yield;
      if (!this.npsByKey.has(np.key)) this.npsByKey.set(np.key, np);
      const list = this.npsByNs.get(np.namespace) ?? [];
      list.push(np);
      this.npsByNs.set(np.namespace, list);
      const first = firstLabel(np.podSelector);
      const k = first ? `${np.namespace}\u0000${first[0]}=${first[1]}` : `${np.namespace}\u0000`;
      const keyed = this.npsByNsLabel.get(k) ?? [];
      keyed.push(np);
      this.npsByNsLabel.set(k, keyed);
    }
    nps.forEach((np, i) => this.npOrder.set(np, i));
    const cps: CompiledClusterPolicy[] = [];
    for (const obj of input.clusterPolicies ?? []) {
      if (!isClusterPolicyKind(obj.kind))
        throw new InputError(`${obj.kind} ${obj.metadata.name}: not a cluster-scoped network policy kind`);
      cps.push(compileClusterPolicy(obj));
      yield;
    }
    const order = (a: CompiledClusterPolicy, b: CompiledClusterPolicy) =>
      a.priority - b.priority || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
    this.#adminPolicies = cps.filter((p) => p.tier === 'admin').sort(order);
    this.#baselinePolicies = cps.filter((p) => p.tier === 'baseline').sort(order);
  }

  private addPod(pod: Pod, ownership: Ownership): void {
    const ns = pod.metadata.namespace ?? '';
    const name = pod.metadata.name;
    const ips = podIPs(pod)
      .map((ip) => parseAddr(ip))
      .filter((a): a is Addr => a !== undefined);
    const node = pod.spec?.nodeName;
    const ports: { name?: string; port: number; protocol: L4Protocol }[] = [];
    for (const c of [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])]) {
      for (const p of c.ports ?? []) {
        // A port the API server refuses (not an integer of 1-65535) is none: such a pod does not run.
        const cp = p.containerPort;
        if (typeof cp !== 'number' || !Number.isInteger(cp) || cp < 1 || cp > 65535) continue;
        ports.push({
          ...(p.name ? { name: p.name } : {}),
          port: p.containerPort,
          protocol: normProtocol(p.protocol),
        });
      }
    }
    if (pod.spec?.hostNetwork === true && this.options.hostNetworkPods === 'node') {
      const ip = ips[0] ?? (pod.status?.hostIP ? parseAddr(pod.status.hostIP) : undefined);
      const nodeInfo = node ? this.nodes.get(node) : undefined;
      if (ip) {
        const end: AddrEnd = {
          kind: 'ip',
          key: `hostpod:${ns}/${name}`,
          display: `${ns}/${name} (host network${node ? `, node ${node}` : ''})`,
          ip,
          ...(node ? { node } : {}),
          ...(nodeInfo?.labels ? { nodeLabels: nodeInfo.labels } : {}),
        };
        this.pods.set(`${ns}/${name}`, end);
        // Its named ports are still its own: a query names one as for any pod (on the host network a
        // container port is a port of the node).
        this.hostPodPorts.set(end.key, ports);
      }
      return;
    }
    const root = rootOwner(pod, ownership);
    const key = `${ns}/${name}`;
    const end: PodEnd = {
      kind: 'pod',
      key,
      owner: workloadId(ns, root.kind, root.name),
      display: key,
      namespace: ns,
      // The pod's own labels (the snapshot's pods of one workload often share one object): nothing
      // here changes them.
      labels: pod.metadata.labels ?? NO_LABELS,
      nsLabels: this.nsLabels(ns),
      ports,
      ...(ips[0] ? { ip: ips[0] } : {}),
      ...(node ? { node } : {}),
      podName: name,
      ...(pod.spec?.hostNetwork === true ? { hostNetwork: true } : {}),
    };
    this.pods.set(end.key, end);
    // A finished pod (Succeeded/Failed) still stands for its workload (a Job runs again), but its stale
    // IP never shadows a running pod's.
    const finished = pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
    if (finished) this.finished.add(end.key);
    this.podList.push(end);
    if (!end.hostNetwork)
      for (const ip of ips) {
        const hostBits = BigInt(ip.family === 4 ? 16 : 80);
        const cidr: Cidr = {
          family: ip.family,
          base: (ip.value >> hostBits) << hostBits,
          prefix: ip.family === 4 ? 16 : 48,
        };
        this.inferredPodNetworks.set(formatCidr(cidr), cidr);
      }
    for (const ip of ips) {
      const k = addrKey(ip);
      const existing = this.ipIndex.get(k);
      const existingFinished = existing?.kind === 'pod' && this.finished.has(existing.key);
      // A node's address stays the node's (the kubelet's probes come from it, nodeTraffic) when a
      // host-network pod kept as a pod (hostNetworkPods=pod) shares it: that pod is asked for by name.
      if (
        !existing ||
        (existing.kind === 'ip' && !end.hostNetwork) ||
        (existing.kind === 'pod' && existing.hostNetwork) ||
        (existingFinished && !finished)
      )
        // The pod's end itself for its first address (a copy would be equal), a copy for the others.
        this.ipIndex.set(k, ip === end.ip ? end : { ...end, ip });
    }
  }

  /** Labels of a namespace, with the immutable `kubernetes.io/metadata.name` label the API server sets. */
  nsLabels(ns: string): Record<string, string> {
    let l = this.nsLabelsMap.get(ns);
    if (!l) {
      l = { [NS_NAME_LABEL]: ns };
      this.nsLabelsMap.set(ns, l);
    }
    return l;
  }

  /** Every concrete (non host-network) pod, sorted by namespace/name. */
  allPods(): readonly PodEnd[] {
    return this.podList;
  }

  /** The labels of the Node a pod runs on; undefined when the input has no Node object of that name. */
  nodeLabelsOf(p: PodEnd): Readonly<Record<string, string>> | undefined {
    return p.node === undefined ? undefined : this.nodes.get(p.node)?.labels;
  }

  /**
   * The pod network `a` lies in, if any, and what tells it: a pod CIDR of a Node object, else the /16
   * (IPv4) or /48 (IPv6) of a pod's address, the networks `recommend` leaves out of the rules it writes
   * for the internet. Traffic from such an address is pod traffic, whether a pod holds it now or not.
   */
  podNetworkOf(a: Addr): { cidr: string; source: string } | undefined {
    for (const { node, cidr, field } of this.nodePodCidrs)
      if (cidrContains(cidr, a)) return { cidr: formatCidr(cidr), source: `spec.${field} of node ${node}` };
    for (const [text, cidr] of this.inferredPodNetworks)
      if (cidrContains(cidr, a))
        return {
          cidr: text,
          source: `the /${cidr.prefix} of the pods' IPv${cidr.family} addresses`,
        };
    return undefined;
  }

  /** Whether the cluster has IPv6 pod addresses: a pod's, or a Node's IPv6 pod CIDR. */
  hasIPv6Pods(): boolean {
    return (
      this.nodePodCidrs.some((c) => c.cidr.family === 6) ||
      [...this.inferredPodNetworks.values()].some((c) => c.family === 6)
    );
  }

  namespaceNames(): string[] {
    return [...this.nsLabelsMap.keys()].sort();
  }

  // ---------- endpoints ----------

  resolve(ep: Endpoint, where = 'endpoint'): ResolvedEnd {
    if (ep === null || typeof ep !== 'object')
      throw new InputError(`${where}: must be "namespace/pod", {"ip": ...} or {namespace, labels}`);
    if ('ip' in ep && !('namespace' in ep)) return this.resolveIP(ep.ip, where);
    if ('pod' in ep) {
      const p = this.pods.get(`${ep.namespace}/${ep.pod}`);
      if (!p)
        throw new InputError(
          `${where}: pod ${ep.namespace}/${ep.pod} is not in the cluster snapshot${this.podHint(ep.namespace, ep.pod)}`,
        );
      return p;
    }
    if ('namespace' in ep && 'labels' in ep) return this.classEnd(ep);
    throw new InputError(`${where}: must be "namespace/pod", {"ip": ...} or {namespace, labels}`);
  }

  /**
   * What a pod name the input does not have is likely meant to be: a namespace of the input close to
   * its namespace, else a pod close to its name (a typo), else the pods named after it (`shop/cart`
   * for the pods of workload cart, `cart-5c4b-y1`...). Empty when nothing is close.
   */
  private podHint(ns: string, name: string): string {
    const byNs = new Map<string, string[]>();
    for (const k of this.pods.keys()) {
      const i = k.indexOf('/');
      const list = byNs.get(k.slice(0, i)) ?? [];
      list.push(k.slice(i + 1));
      byNs.set(k.slice(0, i), list);
    }
    const names = byNs.get(ns);
    if (!names) {
      const near = closestName(ns, new Set([...byNs.keys(), ...this.nsLabelsMap.keys()]));
      return near ? `: it has no namespace ${ns} (did you mean ${near}?)` : '';
    }
    const near = closestName(name, names);
    const like = near ? [near] : names.filter((n) => n.startsWith(`${name}-`)).sort(compareText);
    if (like.length === 0) return '';
    const shown = like.slice(0, 3).map((n) => `${ns}/${n}`);
    const more = like.length > 3 ? `, +${like.length - 3} more` : '';
    return like.length === 1
      ? ` (did you mean ${shown[0]}?)`
      : ` (did you mean one of ${shown.join(', ')}${more}?)`;
  }

  resolveIP(text: string, where = 'endpoint'): ResolvedEnd {
    const a = typeof text === 'string' ? parseAddr(text) : undefined;
    if (!a) throw new InputError(`${where}: ${JSON.stringify(text)} is not an IP address`);
    const hit = this.ipIndex.get(addrKey(a));
    if (hit) return hit;
    return { kind: 'ip', key: `ip:${formatAddr(a)}`, display: formatAddr(a), ip: a };
  }

  /** An equivalence class of pods: same namespace, labels, container ports (and optional IP). */
  classEnd(ep: {
    namespace: string;
    labels: Readonly<Record<string, string>>;
    namedPorts?: readonly { name?: string; port: number; protocol?: L4Protocol }[];
    ip?: string;
    name?: string;
  }): PodEnd {
    if (typeof ep.namespace !== 'string' || ep.namespace === '')
      throw new InputError('endpoint: namespace must be a non-empty string');
    const ports = (ep.namedPorts ?? []).map((p) => ({
      ...(p.name ? { name: p.name } : {}),
      port: p.port,
      protocol: normProtocol(p.protocol),
    }));
    let ip: Addr | undefined;
    if (ep.ip !== undefined) {
      ip = parseAddr(ep.ip);
      if (!ip) throw new InputError(`endpoint: ${JSON.stringify(ep.ip)} is not an IP address`);
    }
    const lk = labelsKey(ep.labels);
    const pk = ports.map((p) => `${p.name ?? ''}:${p.port}/${p.protocol}`).join(',');
    return {
      kind: 'pod',
      key: `${ep.namespace}/{${lk}}[${pk}]${ip ? `@${formatAddr(ip)}` : ''}`,
      display: ep.name ?? `${ep.namespace}/{${lk}}`,
      namespace: ep.namespace,
      labels: ep.labels,
      nsLabels: this.nsLabels(ep.namespace),
      ports,
      ...(ip ? { ip } : {}),
    };
  }

  // ---------- selection ----------

  private selection(p: PodEnd): Selection {
    if (p.memo !== undefined && p.memo.owner === this) return p.memo.value as Selection;
    let s = this.selByEnd.get(p);
    if (s) return s;
    const k = `${p.namespace}\u0000${labelsKey(p.labels)}\u0000${p.hostNetwork ? 'h' : ''}`;
    s = this.selCache.get(k);
    if (s) {
      this.remember(p, s);
      return s;
    }
    const cand = [...(this.npsByNsLabel.get(`${p.namespace}\u0000`) ?? [])];
    for (const k in p.labels)
      cand.push(...(this.npsByNsLabel.get(`${p.namespace}\u0000${k}=${p.labels[k]}`) ?? []));
    const nps = cand
      .filter((np) => matches(np.podMatch, p.labels))
      .sort((a, b) => this.npOrder.get(a)! - this.npOrder.get(b)!);
    const subj = (cp: CompiledClusterPolicy) =>
      !p.hostNetwork &&
      matchesSelector(cp.subject.namespaceSelector, p.nsLabels) &&
      (!cp.subject.podSelector || matchesSelector(cp.subject.podSelector, p.labels));
    const admin = this.adminPolicies.filter(subj);
    const baseline = this.baselinePolicies.filter(subj);
    s = {
      npIngress: nps.filter((np) => np.ingress !== null),
      npEgress: nps.filter((np) => np.egress !== null),
      adminIngress: admin.filter((cp) => cp.ingress.length > 0),
      adminEgress: admin.filter((cp) => cp.egress.length > 0),
      baselineIngress: baseline.filter((cp) => cp.ingress.length > 0),
      baselineEgress: baseline.filter((cp) => cp.egress.length > 0),
    };
    this.selCache.set(k, s);
    this.remember(p, s);
    return s;
  }

  /**
   * Keeps `p`'s selection for the next question: on the end itself when no other engine's is there (a
   * plain property read), else by the end in a WeakMap.
   */
  private remember(p: PodEnd, s: Selection): void {
    if (p.memo === undefined && !Object.isFrozen(p)) p.memo = { owner: this, value: s };
    else this.selByEnd.set(p, s);
  }

  /** Names of the policies (all tiers) that select `p` for a direction. */
  selecting(p: PodEnd, dir: 'ingress' | 'egress'): string[] {
    const s = this.selection(p);
    return dir === 'ingress'
      ? [
          ...s.adminIngress.map((c) => c.key),
          ...s.npIngress.map((n) => n.key),
          ...s.baselineIngress.map((c) => c.key),
        ]
      : [
          ...s.adminEgress.map((c) => c.key),
          ...s.npEgress.map((n) => n.key),
          ...s.baselineEgress.map((c) => c.key),
        ];
  }

  /** True when some NetworkPolicy isolates `p` for the direction. */
  isolated(p: PodEnd, dir: 'ingress' | 'egress'): boolean {
    const s = this.selection(p);
    return (dir === 'ingress' ? s.npIngress : s.npEgress).length > 0;
  }

  /** NetworkPolicies isolating `p` for the direction (sorted by namespace/name). */
  governing(p: PodEnd, dir: 'ingress' | 'egress'): readonly CompiledNetworkPolicy[] {
    const s = this.selection(p);
    return dir === 'ingress' ? s.npIngress : s.npEgress;
  }

  /** True when some AdminNetworkPolicy/BaselineAdminNetworkPolicy/ClusterNetworkPolicy selects `p` for the direction. */
  tiered(p: PodEnd, dir: 'ingress' | 'egress'): boolean {
    const s = this.selection(p);
    return dir === 'ingress'
      ? s.adminIngress.length + s.baselineIngress.length > 0
      : s.adminEgress.length + s.baselineEgress.length > 0;
  }

  /** True when no policy of any tier can affect `p` in this direction (everything allowed). */
  unconstrained(p: PodEnd, dir: 'ingress' | 'egress'): boolean {
    const s = this.selection(p);
    return dir === 'ingress'
      ? s.npIngress.length + s.adminIngress.length + s.baselineIngress.length === 0
      : s.npEgress.length + s.adminEgress.length + s.baselineEgress.length === 0;
  }

  // ---------- matching ----------

  private nsSelectorMatches(sel: object, ns: string, nsLabels: Readonly<Record<string, string>>): boolean {
    let m = this.nsSelCache.get(sel);
    if (!m) {
      m = new Map<string, boolean>();
      this.nsSelCache.set(sel, m);
    }
    let r = m.get(ns);
    if (r === undefined) {
      r = matchesSelector(sel, nsLabels);
      m.set(ns, r);
    }
    return r;
  }

  /**
   * Whether `c` holds whatever address a pod the input gives none (a pod template's class, a pending
   * pod) gets: `c` is every address (`0.0.0.0/0`, `::/0`) of a family the cluster's pods have
   * addresses of. Any narrower block may or may not hold it.
   */
  private holdsEveryPodAddress(c: Cidr): boolean {
    return c.prefix === 0 && this.hasPodsOfFamily(c.family);
  }

  /** Whether the cluster's pods have addresses of `family`: a pod's, or a Node's pod CIDR. */
  private hasPodsOfFamily(family: number): boolean {
    return (
      this.nodePodCidrs.some((n) => n.cidr.family === family) ||
      [...this.inferredPodNetworks.values()].some((n) => n.family === family)
    );
  }

  private remoteAddr(remote: ResolvedEnd, forPods: boolean): Addr | undefined {
    if (remote.kind === 'ip') return remote.ip;
    return forPods ? remote.ip : undefined;
  }

  private npPeerMatches(np: CompiledNetworkPolicy, peer: NpPeer, remote: ResolvedEnd): boolean {
    if (peer.kind === 'ipBlock') {
      const a = this.remoteAddr(remote, this.options.ipBlockMatchesPods);
      if (a === undefined)
        return (
          remote.kind === 'pod' &&
          this.options.ipBlockMatchesPods &&
          peer.except.length === 0 &&
          this.holdsEveryPodAddress(peer.cidr)
        );
      return cidrContains(peer.cidr, a) && !peer.except.some((e) => cidrContains(e, a));
    }
    if (remote.kind !== 'pod') return false;
    if (peer.podMatch && !matches(peer.podMatch, remote.labels)) return false;
    if (peer.nsMatch) {
      let memo = this.nsMatchMemo.get(peer.nsMatch);
      if (memo === undefined) this.nsMatchMemo.set(peer.nsMatch, (memo = new Map<string, boolean>()));
      let r = memo.get(remote.namespace);
      if (r === undefined) {
        r = matches(peer.nsMatch, remote.nsLabels);
        memo.set(remote.namespace, r);
      }
      return r;
    }
    return remote.namespace === np.namespace;
  }

  private npPortMatches(p: NpPort, dst: ResolvedEnd, port: number, proto: L4Protocol): boolean {
    if (p.protocol !== proto) return false;
    if (p.name !== undefined) {
      if (dst.kind !== 'pod') return false;
      const ports = dst.ports;
      for (let i = 0; i < ports.length; i++) {
        const cp = ports[i]!;
        if (cp.port === port && cp.protocol === proto && cp.name === p.name) return true;
      }
      return false;
    }
    if (p.port === undefined) return true;
    if (p.endPort !== undefined) return port >= p.port && port <= p.endPort;
    return port === p.port;
  }

  private cpPeerMatches(peer: CpPeer, remote: ResolvedEnd): boolean {
    switch (peer.kind) {
      case 'namespaces':
        return (
          remote.kind === 'pod' &&
          !remote.hostNetwork &&
          this.nsSelectorMatches(peer.namespaceSelector, remote.namespace, remote.nsLabels)
        );
      case 'pods':
        return (
          remote.kind === 'pod' &&
          !remote.hostNetwork &&
          this.nsSelectorMatches(peer.namespaceSelector, remote.namespace, remote.nsLabels) &&
          matchesSelector(peer.podSelector, remote.labels)
        );
      case 'nodes': {
        // A host-network pod kept as a pod (hostNetworkPods=pod) is no pod peer: its traffic is its node's.
        const labels =
          remote.kind === 'ip'
            ? remote.nodeLabels
            : remote.hostNetwork
              ? this.nodeLabelsOf(remote)
              : undefined;
        if (labels !== undefined) return matchesSelector(peer.nodeSelector, labels);
        // A node known only from its pods (no Node object): its labels are unknown, but the empty
        // selector needs none and selects every node.
        const node = remote.kind === 'ip' || remote.hostNetwork ? remote.node : undefined;
        return node !== undefined && isEmptySelector(peer.nodeSelector);
      }
      case 'networks': {
        const a = this.remoteAddr(remote, true);
        if (a === undefined)
          return remote.kind === 'pod' && peer.cidrs.some((c) => this.holdsEveryPodAddress(c));
        return peer.cidrs.some((c) => cidrContains(c, a));
      }
    }
  }

  private cpPortMatches(p: CpPort, dst: ResolvedEnd, port: number, proto: L4Protocol): boolean {
    if (p.name !== undefined) {
      if (dst.kind !== 'pod') return false;
      return dst.ports.some((cp) => cp.name === p.name && cp.protocol === proto && cp.port === port);
    }
    if (p.protocol !== proto) return false;
    if (p.start === undefined || p.end === undefined) return true;
    return port >= p.start && port <= p.end;
  }

  // ---------- decisions ----------

  /**
   * Decides one direction: egress at `subject` towards `remote`, or ingress at `subject` from `remote`.
   * `dst` is the destination of the connection (whose named ports count).
   */
  decide(
    dir: 'ingress' | 'egress',
    subject: PodEnd,
    remote: ResolvedEnd,
    port: number,
    proto: L4Protocol,
  ): Decision {
    const dst = dir === 'egress' ? remote : subject;
    const s = this.selection(subject);
    // Hairpin: a pod reaching its own pod IP is not subject to ClusterNetworkPolicy (policy-api overview).
    const hairpin = remote.kind === 'pod' && remote.podName !== undefined && remote.key === subject.key;
    let passedBy: string[] | undefined;
    const admins = dir === 'ingress' ? s.adminIngress : s.adminEgress;
    admin: for (let a = 0; a < admins.length; a++) {
      const cp = admins[a]!;
      if (hairpin && cp.kind === 'ClusterNetworkPolicy') continue;
      const rules = dir === 'ingress' ? cp.ingress : cp.egress;
      for (let i = 0; i < rules.length; i++) {
        const r = rules[i]!;
        if (!this.cpRuleMatches(r, remote, dst, port, proto)) continue;
        if (r.action === 'Pass') {
          passedBy = [cp.key];
          break admin;
        }
        return {
          allowed: r.action === 'Allow',
          tier: 'admin',
          policy: cp.key,
          rule: r.label,
          action: r.actionText,
        };
      }
    }
    const nps = dir === 'ingress' ? s.npIngress : s.npEgress;
    if (nps.length > 0) {
      for (let n = 0; n < nps.length; n++) {
        const np = nps[n]!;
        const rules = (dir === 'ingress' ? np.ingress : np.egress)!;
        for (let i = 0; i < rules.length; i++) {
          if (!this.npRuleAllows(np, rules[i]!, remote, dst, port, proto)) continue;
          return passedBy
            ? { allowed: true, tier: 'networkpolicy', policy: np.key, rule: `${dir}[${i}]`, passedBy }
            : { allowed: true, tier: 'networkpolicy', policy: np.key, rule: `${dir}[${i}]` };
        }
      }
      return passedBy ? { allowed: false, tier: 'networkpolicy', passedBy } : DENIED_BY_NP;
    }
    const baselines = dir === 'ingress' ? s.baselineIngress : s.baselineEgress;
    for (let b = 0; b < baselines.length; b++) {
      const cp = baselines[b]!;
      if (hairpin && cp.kind === 'ClusterNetworkPolicy') continue;
      const rules = dir === 'ingress' ? cp.ingress : cp.egress;
      for (let i = 0; i < rules.length; i++) {
        const r = rules[i]!;
        if (!this.cpRuleMatches(r, remote, dst, port, proto)) continue;
        if (r.action === 'Pass')
          return { allowed: true, tier: 'default', passedBy: [...(passedBy ?? []), cp.key] };
        return {
          allowed: r.action === 'Allow',
          tier: 'baseline',
          policy: cp.key,
          rule: r.label,
          action: r.actionText,
          ...(passedBy ? { passedBy } : {}),
        };
      }
    }
    return passedBy ? { allowed: true, tier: 'default', passedBy } : ALLOWED_BY_DEFAULT;
  }

  private cpRuleMatches(
    r: CpRule,
    remote: ResolvedEnd,
    dst: ResolvedEnd,
    port: number,
    proto: L4Protocol,
  ): boolean {
    if (r.ports !== null) {
      let ok = false;
      for (let i = 0; i < r.ports.length && !ok; i++) ok = this.cpPortMatches(r.ports[i]!, dst, port, proto);
      if (!ok) return false;
    }
    for (let i = 0; i < r.peers.length; i++) if (this.cpPeerMatches(r.peers[i]!, remote)) return true;
    return false;
  }

  /** True when a NetworkPolicy rule's ports (null: any) match (port, protocol) at destination `dst`. */
  portsMatch(ports: readonly NpPort[] | null, dst: ResolvedEnd, port: number, proto: L4Protocol): boolean {
    return ports === null || this.anyNpPort(ports, dst, port, proto);
  }

  private anyNpPort(ports: readonly NpPort[], dst: ResolvedEnd, port: number, proto: L4Protocol): boolean {
    for (let i = 0; i < ports.length; i++) if (this.npPortMatches(ports[i]!, dst, port, proto)) return true;
    return false;
  }

  private anyNpPeer(np: CompiledNetworkPolicy, peers: readonly NpPeer[], remote: ResolvedEnd): boolean {
    for (let i = 0; i < peers.length; i++) if (this.npPeerMatches(np, peers[i]!, remote)) return true;
    return false;
  }

  private isSelf(src: ResolvedEnd, dst: ResolvedEnd): boolean {
    if (src.kind === 'pod' && dst.kind === 'pod') return !!src.podName && src.key === dst.key;
    if (src.kind === 'ip' && dst.kind === 'ip') return src.key === dst.key && src.key.startsWith('hostpod:');
    return false;
  }

  /**
   * Traffic from the destination pod's own node: from an address the node's own traffic comes from
   * (`nodeOwnAddrs`), not from its ExternalIP.
   */
  private isOwnNode(src: ResolvedEnd, dst: ResolvedEnd): boolean {
    return (
      src.kind === 'ip' &&
      dst.kind === 'pod' &&
      !!src.node &&
      src.node === dst.node &&
      this.nodeOwnAddrs.has(`${src.node}\u0000${addrKey(src.ip)}`)
    );
  }

  /**
   * Whether the connection from `src` to pod `dst` is the node-traffic exception's: from the pod's own
   * node, at an address of its own traffic, admitted whatever the policies (nodeTraffic=allow).
   */
  admitsOwnNodeTraffic(src: ResolvedEnd, dst: ResolvedEnd): boolean {
    return this.options.nodeTraffic === 'allow' && this.isOwnNode(src, dst);
  }

  /** The type of the address of the pod's own node `src` is at when it is no address of its own traffic. */
  private ownNodeOtherAddress(src: ResolvedEnd, dst: ResolvedEnd): string | undefined {
    if (src.kind !== 'ip' || dst.kind !== 'pod' || !src.node || src.node !== dst.node) return undefined;
    const k = `${src.node}\u0000${addrKey(src.ip)}`;
    return this.nodeOwnAddrs.has(k) ? undefined : this.nodeOtherAddrs.get(k);
  }

  /** Fast boolean verdict for resolved ends (no explanation). */
  allows(src: ResolvedEnd, dst: ResolvedEnd, port: number, proto: L4Protocol): boolean {
    if (this.options.selfTraffic === 'allow' && this.isSelf(src, dst)) return true;
    if (src.kind === 'pod' && !this.allowsDir('egress', src, dst, port, proto)) return false;
    if (dst.kind === 'pod') {
      if (this.options.nodeTraffic === 'allow' && this.isOwnNode(src, dst)) return true;
      return this.allowsDir('ingress', dst, src, port, proto);
    }
    return true;
  }

  /** `decide(...).allowed` without building a decision when only NetworkPolicies apply. */
  allowsDir(
    dir: 'ingress' | 'egress',
    subject: PodEnd,
    remote: ResolvedEnd,
    port: number,
    proto: L4Protocol,
  ): boolean {
    const s = this.selection(subject);
    const tiered =
      dir === 'ingress'
        ? s.adminIngress.length + s.baselineIngress.length > 0
        : s.adminEgress.length + s.baselineEgress.length > 0;
    if (tiered) return this.decide(dir, subject, remote, port, proto).allowed;
    const nps = dir === 'ingress' ? s.npIngress : s.npEgress;
    if (nps.length === 0) return true;
    const dst = dir === 'egress' ? remote : subject;
    for (let n = 0; n < nps.length; n++) {
      const np = nps[n]!;
      const rules = (dir === 'ingress' ? np.ingress : np.egress)!;
      if (rules.length >= RULE_INDEX_MIN) {
        // A long list (a hub's policy): only the rules that can name this remote are checked.
        const ix = this.ruleIndex(np, dir, rules);
        if (this.anyRuleOf(np, rules, ix.rest, remote, dst, port, proto)) return true;
        if (remote.kind === 'pod')
          for (const k in remote.labels) {
            const l = ix.byLabel.get(k)?.get(remote.labels[k]!);
            if (l !== undefined && this.anyRuleOf(np, rules, l, remote, dst, port, proto)) return true;
          }
        continue;
      }
      for (let i = 0; i < rules.length; i++)
        if (this.npRuleAllows(np, rules[i]!, remote, dst, port, proto)) return true;
    }
    return false;
  }

  /** Whether NetworkPolicy rule `r` of `np` admits `remote` on (port, protocol) at destination `dst`. */
  private npRuleAllows(
    np: CompiledNetworkPolicy,
    r: NpRule,
    remote: ResolvedEnd,
    dst: ResolvedEnd,
    port: number,
    proto: L4Protocol,
  ): boolean {
    return (
      (r.ports === null || this.anyNpPort(r.ports, dst, port, proto)) &&
      (r.peers === null || this.anyNpPeer(np, r.peers, remote))
    );
  }

  private anyRuleOf(
    np: CompiledNetworkPolicy,
    rules: readonly NpRule[],
    which: readonly number[],
    remote: ResolvedEnd,
    dst: ResolvedEnd,
    port: number,
    proto: L4Protocol,
  ): boolean {
    for (let j = 0; j < which.length; j++)
      if (this.npRuleAllows(np, rules[which[j]!]!, remote, dst, port, proto)) return true;
    return false;
  }

  /**
   * The rules of a long list by a label their pod peers require: a rule all of whose peers are pod
   * selectors with `matchLabels` is listed under one required label of each peer (a remote without
   * that label cannot match that peer); every other rule (any peer, ipBlock, a selector without
   * `matchLabels`) is in `rest` and always checked. Whether a rule matches is still decided in full.
   */
  private ruleIndex(
    np: CompiledNetworkPolicy,
    dir: 'ingress' | 'egress',
    rules: readonly NpRule[],
  ): RuleIndex {
    let entry = this.ruleIndexes.get(np);
    if (entry === undefined) this.ruleIndexes.set(np, (entry = {}));
    const known = entry[dir];
    if (known !== undefined) return known;
    const ix: RuleIndex = { byLabel: new Map(), rest: [] };
    for (let i = 0; i < rules.length; i++) {
      const peers = rules[i]!.peers;
      const keys: [string, string][] = [];
      if (peers !== null)
        for (const peer of peers) {
          const ml = peer.kind === 'pods' ? peer.podSelector?.matchLabels : undefined;
          const first = ml ? Object.keys(ml)[0] : undefined;
          if (first === undefined) break;
          keys.push([first, ml![first]!]);
        }
      if (peers === null || keys.length !== peers.length) {
        ix.rest.push(i);
        continue;
      }
      for (const [k, v] of keys) {
        let byValue = ix.byLabel.get(k);
        if (byValue === undefined) ix.byLabel.set(k, (byValue = new Map<string, number[]>()));
        const l = byValue.get(v);
        if (l === undefined) byValue.set(v, [i]);
        else if (l[l.length - 1] !== i) l.push(i);
      }
    }
    entry[dir] = ix;
    return ix;
  }

  /** Resolves a query's port: a number, or a container port name of the destination pod. */
  resolvePort(
    port: number | string,
    protocol: L4Protocol | undefined,
    dst: ResolvedEnd,
    where = 'query',
  ): { port: number; protocol: L4Protocol } {
    if (typeof port === 'number') {
      if (!Number.isInteger(port) || port < 1 || port > 65535)
        throw new InputError(`${where}: port ${port} is not a port number (1-65535)`);
      return { port, protocol: protocol ?? 'TCP' };
    }
    if (typeof port !== 'string' || port === '')
      throw new InputError(`${where}: port must be a number or a container port name`);
    if (/^\d+$/.test(port)) return this.resolvePort(Number(port), protocol, dst, where);
    const ports = dst.kind === 'pod' ? dst.ports : this.hostPodPorts.get(dst.key);
    if (ports === undefined)
      throw new InputError(
        `${where}: named port ${JSON.stringify(port)} cannot be resolved: ${dst.display} is not a pod`,
      );
    const cp = ports.find((p) => p.name === port && (!protocol || p.protocol === protocol));
    if (!cp)
      throw new InputError(
        `${where}: ${dst.display} has no container port named ${JSON.stringify(port)}${protocol ? ` for ${protocol}` : ''}`,
      );
    return { port: cp.port, protocol: cp.protocol };
  }

  /**
   * Evaluates one query and explains the verdict. `where` names the query in messages: a prefix (`query`,
   * `queries.json: query 3`) its fields are named after, or the name of each field (a command's flags).
   */
  evaluate(q: Query, where: string | QueryFieldNames = 'query'): Verdict {
    const names =
      typeof where === 'string'
        ? { from: `${where}: from`, to: `${where}: to`, port: where, protocol: where }
        : where;
    const src = this.resolve(q.from, names.from);
    const dst = this.resolve(q.to, names.to);
    const proto = q.protocol === undefined ? undefined : parseProtocol(q.protocol, names.protocol);
    this.refuseServiceAddr(src, names.from);
    this.refuseServiceAddr(dst, names.to, q.port, proto);
    const { port, protocol } = this.resolvePort(q.port, proto, dst, names.port);
    this.refuseNodePort(dst, port, protocol, names.to);
    return this.explain(src, dst, port, protocol);
  }

  /**
   * Whether `evaluate` refuses `ep` as the `side` end of a query on `port`/`protocol`, whatever the other
   * end is: an address a Service's traffic is translated from (both ends), a node's address on a port the
   * node translates to a pod (the destination). Throws as `resolve` does.
   *
   * A query between two ends `resolve` gives as addresses (kind `ip`: nodes, host-network pods under
   * hostNetworkPods=node, addresses outside the cluster) is allowed, since no policy of any tier selects
   * an address to isolate it: every such pair neither end of which is refused is answered alike, so one
   * of them stands for all (`endpointPairs` in `src/policy/prove.ts` asks one).
   */
  refuses(ep: Endpoint, side: 'from' | 'to', port: number, protocol: L4Protocol): boolean {
    const end = this.resolve(ep, side);
    try {
      if (side === 'from') this.refuseServiceAddr(end, side);
      else {
        this.refuseServiceAddr(end, side, port, protocol);
        this.refuseNodePort(end, port, protocol, side);
      }
      return false;
    } catch (err) {
      if (err instanceof InputError) return true;
      throw err;
    }
  }

  /**
   * The addresses kube-proxy (or the CNI's replacement of it) translates to a Service's backends: its
   * ClusterIPs, its `spec.externalIPs`, and the IPs of its load balancer (`status.loadBalancer.ingress`)
   * unless their `ipMode` is `Proxy` (then a pod's packets to the address leave for the load balancer,
   * untranslated, and are what its egress policies see). The first Service to claim an address keeps it.
   */
  private addServiceAddrs(svc: Service): void {
    const name = `${svc.metadata.namespace ?? ''}/${svc.metadata.name}`;
    const add = (t: unknown, what: string) => {
      const a = typeof t === 'string' ? parseAddr(t) : undefined; // "None" (headless) is no address
      if (a && !this.serviceAddrs.has(addrKey(a))) this.serviceAddrs.set(addrKey(a), what);
    };
    const spec = svc.spec ?? {};
    // An external or load-balancer IP that is a node's address is the node's but on the Service's ports
    // (refuseNodePort), each kept by the first Service to claim it, as identity translates it.
    const addPorts = (t: unknown, what: string) => {
      const a = typeof t === 'string' ? parseAddr(t) : undefined;
      if (!a) return;
      let ports = this.addrPorts.get(addrKey(a));
      if (ports === undefined)
        this.addrPorts.set(
          addrKey(a),
          (ports = new Map<string, { what: string; ask: string; base: string }>()),
        );
      (Array.isArray(spec.ports) ? spec.ports : []).forEach((sp, i) => {
        if (typeof sp?.port !== 'number') return;
        const key = `${(sp.protocol ?? 'TCP').toUpperCase()}/${sp.port}`;
        if (!ports.has(key))
          ports.set(key, {
            what: `${what}, port ${sp.port} of spec.ports[${i}]`,
            ask: 'ask about a backend pod (namespace/pod or its IP) and the target port',
            base: what,
          });
      });
    };
    const addTranslated = (t: unknown, what: string) => {
      add(t, what);
      addPorts(t, what);
    };
    this.addNodePorts(svc, name);
    for (const t of [spec.clusterIP, ...(spec.clusterIPs ?? [])]) add(t, `the ClusterIP of Service ${name}`);
    (Array.isArray(spec.externalIPs) ? spec.externalIPs : []).forEach((t, i) =>
      addTranslated(t, `an external IP of Service ${name} (spec.externalIPs[${i}])`),
    );
    const ingress = svc.status?.loadBalancer?.ingress;
    (Array.isArray(ingress) ? ingress : []).forEach((e, i) => {
      if (e?.ipMode !== 'Proxy')
        addTranslated(
          e?.ip,
          `the load-balancer IP of Service ${name} (status.loadBalancer.ingress[${i}].ip)`,
        );
    });
  }

  /**
   * The nodePorts of a NodePort or LoadBalancer Service: a node's address on one is translated to the
   * Service's backends (kube-proxy, Cilium), on every node. The first Service to claim one keeps it.
   */
  private addNodePorts(svc: Service, name: string): void {
    const spec = svc.spec ?? {};
    if (spec.type !== 'NodePort' && spec.type !== 'LoadBalancer') return;
    (Array.isArray(spec.ports) ? spec.ports : []).forEach((sp, i) => {
      if (typeof sp?.nodePort !== 'number' || sp.nodePort <= 0) return;
      const key = `${(sp.protocol ?? 'TCP').toUpperCase()}/${sp.nodePort}`;
      if (this.nodePorts.has(key)) return;
      this.nodePorts.set(key, {
        what: `the nodePort of Service ${name} (spec.ports[${i}].nodePort)`,
        ask: 'ask about a backend pod (namespace/pod or its IP) and the target port',
      });
    });
  }

  /**
   * The ports a pod publishes on its node (`hostPort`), translated there to the pod's container port,
   * unless the pod runs on the host network (then it listens on the node itself, and so keeps the port
   * from a published one) or has ended. Pods come in the order of their names: the last one keeps a port.
   */
  private addHostPorts(pod: Pod): void {
    const node = pod.spec?.nodeName;
    if (!node) return;
    const ns = pod.metadata.namespace ?? '';
    const hostNetwork = pod.spec?.hostNetwork === true;
    const ended = pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
    const families = new Set(
      podIPs(pod)
        .map((ip) => parseAddr(ip)?.family)
        .filter((f) => f !== undefined),
    );
    for (const c of pod.spec?.containers ?? [])
      for (const p of c.ports ?? []) {
        const protocol = (p.protocol ?? 'TCP').toUpperCase();
        if (hostNetwork) {
          this.hostListeners.add(`${node}\u0000${protocol}/${p.hostPort ?? p.containerPort}`);
          continue;
        }
        if (ended || !p.hostPort) continue;
        // Published on the node's addresses of the families the pod has an address of (the node has no
        // pod address of another family to translate to); on both when the pod has none yet.
        for (const family of families.size > 0 ? families : [4, 6])
          this.hostPorts.set(`${node}\u0000${family}\u0000${protocol}/${p.hostPort}`, {
            what: `the hostPort of pod ${ns}/${pod.metadata.name} (to its container port ${p.containerPort})`,
            ask: `ask about the pod (${ns}/${pod.metadata.name}) and port ${p.containerPort}`,
          });
      }
  }

  /**
   * A node's address on a port the node translates to a pod (a Service's nodePort, a pod's hostPort) is
   * not what a policy sees, as a ClusterIP is not: the connection reaches the pod, on its port, before
   * any policy applies. A host-network pod listening there is what the node's port stands for.
   */
  private refuseNodePort(end: ResolvedEnd, port: number, protocol: L4Protocol, where: string): void {
    if (end.kind !== 'ip' || end.node === undefined) return;
    const at = `${protocol}/${port}`;
    if (this.hostListeners.has(`${end.node}\u0000${at}`)) return;
    const found =
      this.hostPorts.get(`${end.node}\u0000${end.ip.family}\u0000${at}`) ??
      this.nodePorts.get(at) ??
      this.addrPorts.get(addrKey(end.ip))?.get(at);
    if (found === undefined) return;
    throw new InputError(
      `${where}: ${end.display} on ${at} is ${found.what}; policies see the connection after the node translates it to a pod, so ${found.ask}`,
    );
  }

  /**
   * An address a Service's traffic is translated from (`addServiceAddrs`) is never what a policy sees:
   * the connection is translated to a backend pod (and the service port to its targetPort) before any
   * policy applies, so an answer for the address itself (an outside address to every selector, inside
   * any ipBlock holding it) would be wrong. Addresses of pods and nodes are theirs, whatever a Service
   * claims.
   */
  private refuseServiceAddr(end: ResolvedEnd, where: string, port?: unknown, protocol?: L4Protocol): void {
    if (end.kind !== 'ip' || end.node !== undefined || end.key.startsWith('hostpod:')) return;
    let what = this.serviceAddrs.get(addrKey(end.ip));
    if (what === undefined) return;
    // An address several Services share (a MetalLB shared IP), each on its own ports: the one whose port
    // the query names is the one the connection reaches (as identity translates it), not the first.
    const n =
      typeof port === 'number'
        ? port
        : typeof port === 'string' && /^\d+$/.test(port)
          ? Number(port)
          : undefined;
    const byPort =
      n === undefined ? undefined : this.addrPorts.get(addrKey(end.ip))?.get(`${protocol ?? 'TCP'}/${n}`);
    if (byPort !== undefined) what = byPort.base;
    throw new InputError(
      `${where}: ${end.display} is ${what}; policies see the connection after it is translated to a backend pod, so ask about a backend pod (namespace/pod or its IP) and the target port`,
    );
  }

  explain(src: ResolvedEnd, dst: ResolvedEnd, port: number, protocol: L4Protocol): Verdict {
    const notes: string[] = [];
    const o = this.options;
    if (src.kind === 'ip' && src.key.startsWith('hostpod:'))
      notes.push(`${src.display} is a host-network pod, treated as its node (hostNetworkPods=node)`);
    if (dst.kind === 'ip' && dst.key.startsWith('hostpod:'))
      notes.push(`${dst.display} is a host-network pod, treated as its node (hostNetworkPods=node)`);
    for (const end of src === dst ? [src] : [src, dst])
      if (end.kind === 'pod' && end.hostNetwork)
        notes.push(`${end.display} is a host-network pod, counted as a pod (hostNetworkPods=pod)`);
    if (o.selfTraffic === 'evaluate' && this.isSelf(src, dst))
      notes.push('a pod reaching itself is evaluated like any other connection (selfTraffic=evaluate)');
    const base = { from: src.display, to: dst.display, port, protocol };
    if (o.selfTraffic === 'allow' && this.isSelf(src, dst)) {
      notes.push('a pod reaching itself is always allowed (selfTraffic=allow)');
      const ex = (direction: 'egress' | 'ingress'): DirectionVerdict => ({
        direction,
        allowed: true,
        tier: 'exception',
        selecting: src.kind === 'pod' ? this.selecting(src, direction) : [],
        reason: `${direction}: a pod reaching itself is not subject to policy`,
      });
      const egress = ex('egress');
      const ingress = ex('ingress');
      return {
        ...base,
        allowed: true,
        reason: `allowed: ${src.display} is connecting to itself, which policies do not restrict (selfTraffic=allow)`,
        policies: unique([...egress.selecting, ...ingress.selecting]),
        egress,
        ingress,
        tier: 'exception',
        notes,
      };
    }
    const egress = this.directionVerdict('egress', src, dst, port, protocol, notes);
    const ingress = this.directionVerdict('ingress', dst, src, port, protocol, notes);
    const allowed = egress.allowed && ingress.allowed;
    const reason = allowed
      ? `allowed: ${egress.reason}; ${ingress.reason}`
      : `denied: ${[egress, ingress]
          .filter((d) => !d.allowed)
          .map((d) => d.reason)
          .join('; ')}`;
    const tier = !egress.allowed
      ? egress.tier
      : !ingress.allowed
        ? ingress.tier
        : decisiveTier(egress, ingress);
    return {
      ...base,
      allowed,
      reason,
      policies: unique([...egress.selecting, ...ingress.selecting]),
      egress,
      ingress,
      tier,
      notes,
    };
  }

  private directionVerdict(
    dir: 'ingress' | 'egress',
    subject: ResolvedEnd,
    remote: ResolvedEnd,
    port: number,
    proto: L4Protocol,
    notes: string[],
  ): DirectionVerdict {
    const what = dir === 'egress' ? `egress from ${subject.display}` : `ingress to ${subject.display}`;
    if (subject.kind !== 'pod') {
      return {
        direction: dir,
        allowed: true,
        tier: 'not-a-pod',
        selecting: [],
        reason: `${what}: not a pod, no ${dir} policy applies`,
      };
    }
    const selecting = this.selecting(subject, dir);
    if (dir === 'ingress' && this.options.nodeTraffic === 'allow' && this.isOwnNode(remote, subject)) {
      notes.push(`traffic from the node a pod runs on is always allowed (nodeTraffic=allow)`);
      return {
        direction: dir,
        allowed: true,
        tier: 'exception',
        selecting,
        reason: `${what}: from its own node ${remote.kind === 'ip' ? (remote.node ?? '') : ''}, always allowed`,
      };
    }
    if (dir === 'ingress' && this.options.nodeTraffic === 'evaluate' && this.isOwnNode(remote, subject))
      notes.push(
        'traffic from the node a pod runs on is evaluated like any other address (nodeTraffic=evaluate)',
      );
    const other = dir === 'ingress' ? this.ownNodeOtherAddress(remote, subject) : undefined;
    if (other !== undefined)
      notes.push(
        `${remote.display} is its node's ${other}: the node's own traffic to its pods comes from its InternalIP or a pod's status.hostIP, so traffic from this address is evaluated like any other`,
      );
    const d = this.decide(dir, subject, remote, port, proto);
    notes.push(...this.priorityTies(dir, subject, remote, port, proto, d));
    if (
      remote.kind === 'pod' &&
      (remote.ip === undefined) === this.options.ipBlockMatchesPods &&
      !d.allowed &&
      d.tier === 'networkpolicy'
    )
      notes.push(...this.unmatchedPodIpBlocks(dir, subject, remote, port, proto));
    if (
      remote.kind === 'pod' &&
      remote.ip &&
      this.options.ipBlockMatchesPods &&
      d.tier === 'networkpolicy' &&
      d.policy
    ) {
      const np = this.npsByKey.get(d.policy);
      const idx = Number(/\[(\d+)\]/.exec(d.rule ?? '')?.[1] ?? -1);
      const rule = np ? (dir === 'ingress' ? np.ingress : np.egress)?.[idx] : undefined;
      if (
        rule?.peers &&
        !rule.peers.some((p) => p.kind === 'pods' && this.npPeerMatchesPublic(np!, p, remote))
      )
        notes.push('an ipBlock matched a pod IP (ipBlockMatchesPods=true)');
    }
    const passed = d.passedBy && d.passedBy.length > 0 ? ` after Pass by ${d.passedBy.join(', ')}` : '';
    let reason: string;
    switch (d.tier) {
      case 'admin':
      case 'baseline':
        reason = `${what}: ${d.action} by ${d.policy} ${d.rule}${passed}`;
        break;
      case 'networkpolicy':
        if (d.allowed) reason = `${what}: allowed by ${d.policy} ${d.rule}${passed}`;
        else {
          const iso = (
            dir === 'ingress' ? this.selection(subject).npIngress : this.selection(subject).npEgress
          ).map((n) => n.key);
          reason = `${what}: isolated by ${iso.join(', ')} and no ${dir} rule matches${passed}`;
        }
        break;
      default:
        reason =
          passed !== ''
            ? `${what}: no policy decided${passed}, allowed by default`
            : `${what}: no policy isolates it for ${dir}, allowed by default`;
    }
    return {
      direction: dir,
      allowed: d.allowed,
      tier: d.tier,
      ...(d.policy ? { policy: d.policy } : {}),
      ...(d.rule ? { rule: d.rule } : {}),
      ...(d.action ? { action: d.action } : {}),
      ...(d.passedBy ? { passedBy: d.passedBy } : {}),
      selecting,
      reason,
    };
  }

  /**
   * The cluster-scoped policy that decided `d` in each tier (its Allow/Deny rule, or its Pass), set
   * against every other policy of that tier selecting `subject` with the same priority whose first
   * matching rule has another action: upstream leaves the order of equal priorities unspecified, so the
   * cluster may apply either; the engine's Kind/name order is one choice. One note per such pair.
   */
  private priorityTies(
    dir: 'ingress' | 'egress',
    subject: PodEnd,
    remote: ResolvedEnd,
    port: number,
    proto: L4Protocol,
    d: Decision,
  ): string[] {
    const s = this.selection(subject);
    const dst = dir === 'egress' ? remote : subject;
    const hairpin = remote.kind === 'pod' && remote.podName !== undefined && remote.key === subject.key;
    const out: string[] = [];
    const tiers: [CompiledClusterPolicy[], Tier][] = [
      [dir === 'ingress' ? s.adminIngress : s.adminEgress, 'admin'],
      [dir === 'ingress' ? s.baselineIngress : s.baselineEgress, 'baseline'],
    ];
    for (const [list, tier] of tiers) {
      const keys = new Set([...(d.tier === tier && d.policy ? [d.policy] : []), ...(d.passedBy ?? [])]);
      const decider = list.find((cp) => keys.has(cp.key));
      if (decider === undefined) continue;
      const first = (cp: CompiledClusterPolicy) =>
        hairpin && cp.kind === 'ClusterNetworkPolicy'
          ? undefined
          : (dir === 'ingress' ? cp.ingress : cp.egress).find((r) =>
              this.cpRuleMatches(r, remote, dst, port, proto),
            );
      const mine = first(decider);
      if (mine === undefined) continue;
      for (const cp of list) {
        if (cp === decider || cp.priority !== decider.priority) continue;
        const theirs = first(cp);
        if (theirs === undefined || theirs.action === mine.action) continue;
        const [a, b] = decider.key < cp.key ? [decider, cp] : [cp, decider];
        const [ra, rb] = a === decider ? [mine, theirs] : [theirs, mine];
        out.push(
          `${a.key} (${ra.actionText}) and ${b.key} (${rb.actionText}) both have priority ${decider.priority} and match this ${dir}; their order is unspecified, so the cluster may apply either: answered in Kind/name order`,
        );
      }
    }
    return out;
  }

  /**
   * Under ipBlockMatchesPods=false, the ipBlocks of the NetworkPolicies isolating `subject` for `dir`
   * that hold `remote`'s pod IP (outside their excepts) in a rule whose ports match: each would have
   * admitted the connection had ipBlocks matched pod IPs, so a denial was shaped by the option. For a
   * remote pod without an IP in the input (a pod template's class, a pending pod), every ipBlock of such
   * a rule: it could hold the address the pod gets, and was taken as not matching.
   */
  private unmatchedPodIpBlocks(
    dir: 'ingress' | 'egress',
    subject: PodEnd,
    remote: PodEnd,
    port: number,
    proto: L4Protocol,
  ): string[] {
    const a = remote.ip;
    const dst = dir === 'egress' ? remote : subject;
    // Without an IP, the address the pod gets is of a family the cluster's pods have (when that is known).
    const families = [4, 6].filter((f) => this.hasPodsOfFamily(f));
    const mayHold = (c: Cidr) => families.length === 0 || families.includes(c.family);
    const out: string[] = [];
    for (const np of this.governing(subject, dir)) {
      const rules = (dir === 'ingress' ? np.ingress : np.egress) ?? [];
      rules.forEach((r, i) => {
        if (r.peers === null || !this.portsMatch(r.ports, dst, port, proto)) return;
        for (const p of r.peers)
          if (p.kind !== 'ipBlock') continue;
          else if (a === undefined) {
            if (mayHold(p.cidr))
              out.push(
                `${np.key} ${dir}[${i}] ipBlock ${p.text} was not matched: ${remote.display} has no IP in the input, and the one it gets may be inside it`,
              );
          } else if (cidrContains(p.cidr, a) && !p.except.some((e) => cidrContains(e, a)))
            out.push(
              `${np.key} ${dir}[${i}] ipBlock ${p.text} holds the IP of ${remote.display} (${formatAddr(a)}) but ipBlocks do not match pod IPs (ipBlockMatchesPods=false)`,
            );
      });
    }
    return out;
  }

  private npPeerMatchesPublic(np: CompiledNetworkPolicy, p: NpPeer, remote: ResolvedEnd): boolean {
    return this.npPeerMatches(np, p, remote);
  }
}

/** Rule lists at least this long are looked up through a RuleIndex. */
const RULE_INDEX_MIN = 16;

interface RuleIndex {
  /** Label key → value → indexes of the rules that need it (ascending). */
  byLabel: Map<string, Map<string, number[]>>;
  /** Rules that cannot be indexed by a label. */
  rest: number[];
}

const DENIED_BY_NP: Decision = Object.freeze({ allowed: false, tier: 'networkpolicy' });
const ALLOWED_BY_DEFAULT: Decision = Object.freeze({ allowed: true, tier: 'default' });

/** CIDR peers of every policy (NetworkPolicy ipBlocks and ANP/CNP networks), for class signatures. */
export function cidrPeers(engine: Engine): { cidr: Cidr; except: Cidr[]; np: boolean }[] {
  const out: { cidr: Cidr; except: Cidr[]; np: boolean }[] = [];
  for (const np of engine.networkPolicies)
    for (const rules of [np.ingress ?? [], np.egress ?? []])
      for (const r of rules)
        for (const p of r.peers ?? [])
          if (p.kind === 'ipBlock') out.push({ cidr: p.cidr, except: p.except, np: true });
  for (const cp of [...engine.adminPolicies, ...engine.baselinePolicies])
    for (const r of cp.egress)
      for (const p of r.peers)
        if (p.kind === 'networks') for (const c of p.cidrs) out.push({ cidr: c, except: [], np: false });
  return out;
}

function decisiveTier(e: DirectionVerdict, i: DirectionVerdict): Tier {
  const rank: Tier[] = ['exception', 'admin', 'networkpolicy', 'baseline', 'default', 'not-a-pod'];
  return rank.indexOf(e.tier) <= rank.indexOf(i.tier) ? e.tier : i.tier;
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}

export function buildEngine(input: EngineInput, options?: EngineOptions): Engine {
  return new Engine(input, options);
}

/** Builds an engine from a snapshot; cluster-scoped policies and Nodes are taken from `others`. */
export function engineFromSnapshot(snap: ClusterSnapshot, options?: EngineOptions): Engine {
  return new Engine(snapshotInput(snap), options);
}

/** `engineFromSnapshot` in steps (see `Engine.steps`). */
export function engineFromSnapshotSteps(snap: ClusterSnapshot, options?: EngineOptions): Steps<Engine> {
  return Engine.steps(snapshotInput(snap), options);
}

function snapshotInput(snap: ClusterSnapshot): EngineInput {
  return {
    namespaces: snap.namespaces,
    pods: snap.pods,
    networkPolicies: snap.networkPolicies,
    clusterPolicies: snap.others.filter((o) => isClusterPolicyKind(o.kind)),
    nodes: snap.others.filter((o) => o.kind === 'Node'),
    services: snap.services,
    workloads: snap.workloads,
    cronJobs: snap.cronJobs,
  };
}
