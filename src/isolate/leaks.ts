/**
 * Does the isolation hold? For every isolated pod and every isolated direction, the semantics engine is
 * asked about a set of probe connections: every pod of the snapshot, a witness for every peer of every
 * rule that could apply to the pod (a pod matching the peer's selectors, an address inside its CIDR), and
 * outside addresses, on every port those rules name plus common ones. A probe the full policy set admits
 * is an exception when the Isolation's own objects alone admit it too (DNS, forensics); otherwise it is a
 * leak, reported with the policy and rule that admitted it and one example connection.
 */
import type { LabelSelector, Namespace, NetworkPolicy, OtherObject, Pod } from '../model/k8s.ts';
import { isEmptySelector, matchesSelector } from '../model/selectors.ts';
import { nodeIPAddresses } from '../model/nodes.ts';
import { Engine } from '../verify/engine.ts';
import type { Cidr } from '../verify/ip.ts';
import { cidrContains, formatAddr, parseAddr } from '../verify/ip.ts';
import type { EngineOptions, L4Protocol, PodEnd, ResolvedEnd } from '../verify/types.ts';
import type { CpPeer, NpPeer } from '../verify/validate.ts';
import { compileClusterPolicy } from '../verify/validate.ts';
import type { Direction, LeakStatus } from './api.ts';
import { MAX_LEAKS } from './api.ts';

export interface LeakInput {
  namespaces: readonly Namespace[];
  /** Pods as they are once isolated (quarantine label set). */
  pods: readonly Pod[];
  /** Every NetworkPolicy of the namespaces concerned, the Isolation's own included. */
  networkPolicies: readonly NetworkPolicy[];
  /**
   * Node objects (labels and addresses), for an admin-tier `nodes` peer; without them the nodes are
   * known from the pods' hostIP(s) alone, with unknown labels.
   */
  nodes?: readonly OtherObject[];
  /** Every AdminNetworkPolicy / BaselineAdminNetworkPolicy / ClusterNetworkPolicy, the Isolation's own included. */
  clusterPolicies: readonly OtherObject[];
  /** The Isolation's own objects. */
  own: { networkPolicies: readonly NetworkPolicy[]; clusterPolicies: readonly OtherObject[] };
  namespace: string;
  isolatedPods: readonly string[];
  direction: Direction;
  /**
   * The semantics the cluster's network plugin implements (whether ipBlocks match pod IPs, ...), as
   * `microseg controller` is told them; default the engine's.
   */
  engine?: EngineOptions;
}

export interface LeakReport {
  leaks: LeakStatus[];
  /** Leaks beyond MAX_LEAKS are counted here. */
  moreLeaks: number;
  probes: number;
  exceptions: number;
  /**
   * Admin-tier policies the semantics engine cannot read (a peer or field microseg does not support,
   * such as an egress peer by domainNames), left out of the check: what they allow or deny is not
   * proved. Each is the problem, naming the policy and the field. The Isolation's own are always read.
   */
  notEvaluated: string[];
}

/**
 * Splits the admin-tier policies into those the engine reads and, for those it cannot, the problem:
 * one unreadable policy would otherwise leave every Isolation without a check (the engine refuses any
 * set that holds one), as the Segmentation controller leaves them out of its audits.
 */
export function readableClusterPolicies(objs: readonly OtherObject[]): {
  readable: OtherObject[];
  notEvaluated: string[];
} {
  const readable: OtherObject[] = [];
  const notEvaluated: string[] = [];
  for (const o of objs) {
    try {
      compileClusterPolicy(o);
      readable.push(o);
    } catch (err) {
      notEvaluated.push(err instanceof Error ? err.message : String(err));
    }
  }
  return { readable, notEvaluated: notEvaluated.sort() };
}

const OUTSIDE = ['203.0.113.7', '2001:db8::7'];
/**
 * Ports every remote is probed on, for rules that name none. 53 is where pods send DNS queries (to a
 * resolver, or to a DNS Service's ClusterIP): the port the cluster DNS pods take them on once that is
 * translated (5353 for a CoreDNS there) is the one the DNS exception's own rule names, and is probed with
 * every port a rule names.
 */
const COMMON_PORTS: [number, L4Protocol][] = [
  [53, 'UDP'],
  [53, 'TCP'],
  [80, 'TCP'],
  [443, 'TCP'],
  [8080, 'TCP'],
];
const MAX_CONCRETE_PEERS = 400;

/** Labels that satisfy a selector, or undefined when it cannot be satisfied by construction. */
export function labelsFor(sel: LabelSelector): Record<string, string> | undefined {
  const l: Record<string, string> = { ...(sel.matchLabels ?? {}) };
  for (const e of sel.matchExpressions ?? []) {
    if (e.operator === 'In' && l[e.key] === undefined) l[e.key] = e.values?.[0] ?? '';
    if (e.operator === 'Exists' && l[e.key] === undefined) l[e.key] = 'probe';
  }
  return matchesSelector(sel, l) ? l : undefined;
}

/** At most this many more addresses of a block are tried for one `addressIn` is not to avoid. */
const MAX_ADDRESS_TRIES = 1024;

/**
 * An address inside `cidr` and outside every `except` block, or undefined. With `avoid` (the addresses
 * pods hold, which an ipBlock does not match under `ipBlockMatchesPods: false`), one it does not avoid
 * when one is found among the block's first addresses; else the first address it would give without.
 */
export function addressIn(
  cidr: Cidr,
  except: readonly Cidr[],
  avoid?: (address: string) => boolean,
): string | undefined {
  const bits = cidr.family === 4 ? 32 : 128;
  const size = 1n << BigInt(bits - cidr.prefix);
  const end = cidr.base + size;
  const candidates = [cidr.base + (size > 2n ? 1n : 0n)];
  for (const e of except) {
    const eEnd = e.base + (1n << BigInt(bits - e.prefix));
    if (eEnd < end) candidates.push(eEnd);
  }
  const usable = (value: bigint): string | undefined => {
    const a = { family: cidr.family, value };
    return cidrContains(cidr, a) && !except.some((e) => cidrContains(e, a)) ? formatAddr(a) : undefined;
  };
  let first: string | undefined;
  for (const value of candidates) {
    const text = usable(value);
    if (text === undefined) continue;
    if (!avoid?.(text)) return text;
    first ??= text;
  }
  if (first === undefined || avoid === undefined) return first;
  let value = candidates[0]!;
  for (let tries = 0; tries < MAX_ADDRESS_TRIES && value < end; tries++) {
    const a = { family: cidr.family, value };
    const inExcept = except.find((e) => cidrContains(e, a));
    if (inExcept) {
      value = inExcept.base + (1n << BigInt(bits - inExcept.prefix));
      continue;
    }
    const text = formatAddr(a);
    if (!avoid(text)) return text;
    value++;
  }
  return first;
}

/** A node the input knows: its labels (undefined when known only from its pods' hostIPs) and IPs. */
export interface KnownNode {
  name: string;
  labels: Readonly<Record<string, string>> | undefined;
  ips: string[];
}

/**
 * The nodes the input knows: each Node object, with its labels and the IPs of its status.addresses, and
 * each node a pod runs on, with its hostIP(s) (labels unknown without the Node object). The witnesses of
 * a `nodes` peer are the addresses of the nodes its selector picks.
 */
export function knownNodes(nodes: readonly OtherObject[], pods: readonly Pod[]): KnownNode[] {
  const byName = new Map<string, { labels: Record<string, string> | undefined; ips: Set<string> }>();
  // Only IP addresses (nodeIPAddresses, and a pod's hostIPs here): a Node lists its Hostname (and
  // InternalDNS/ExternalDNS names) among them too, which are no address a probe can be made from or to.
  const add = (name: string, text: unknown): void => {
    const a = typeof text === 'string' ? parseAddr(text) : undefined;
    if (a) byName.get(name)!.ips.add(formatAddr(a));
  };
  for (const n of nodes) {
    const name = n.metadata.name;
    const ips = new Set(nodeIPAddresses(n).map((a) => formatAddr(a.addr)));
    byName.set(name, { labels: { ...(n.metadata.labels ?? {}) }, ips });
  }
  for (const p of pods) {
    const name = p.spec?.nodeName;
    if (!name) continue;
    if (!byName.has(name)) byName.set(name, { labels: undefined, ips: new Set() });
    const status = p.status as { hostIP?: unknown; hostIPs?: { ip?: unknown }[] } | undefined;
    add(name, status?.hostIP);
    for (const h of Array.isArray(status?.hostIPs) ? status.hostIPs : []) add(name, h?.ip);
  }
  return [...byName.entries()]
    .map(([name, n]) => ({ name, labels: n.labels, ips: [...n.ips].sort() }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Whether a `nodes` peer's selector picks the node (one known only from its pods: the empty selector). */
function selectsNode(sel: LabelSelector, node: KnownNode): boolean {
  return node.labels !== undefined ? matchesSelector(sel, node.labels) : isEmptySelector(sel);
}

export function checkIsolation(input: LeakInput): LeakReport {
  const { readable, notEvaluated } = readableClusterPolicies(input.clusterPolicies);
  const nodes = input.nodes ?? [];
  const all = new Engine(
    {
      namespaces: input.namespaces,
      nodes,
      pods: input.pods,
      networkPolicies: input.networkPolicies,
      clusterPolicies: readable,
    },
    input.engine,
  );
  const ours = new Engine(
    {
      namespaces: input.namespaces,
      nodes,
      pods: input.pods,
      networkPolicies: input.own.networkPolicies,
      clusterPolicies: input.own.clusterPolicies,
    },
    input.engine,
  );
  const dirs: ('ingress' | 'egress')[] =
    input.direction === 'Both'
      ? ['ingress', 'egress']
      : input.direction === 'Ingress'
        ? ['ingress']
        : ['egress'];
  const namespaces = all.namespaceNames();
  const known = knownNodes(nodes, input.pods);
  const namedPorts = new Map<string, [number, L4Protocol][]>();
  for (const p of all.allPods())
    for (const cp of p.ports)
      if (cp.name) namedPorts.set(cp.name, [...(namedPorts.get(cp.name) ?? []), [cp.port, cp.protocol]]);

  const found = new Map<string, LeakStatus>();
  const seen = new Set<string>();
  let probes = 0;
  let exceptions = 0;

  for (const podName of [...input.isolatedPods].sort()) {
    let subject: ResolvedEnd;
    try {
      subject = all.resolve({ namespace: input.namespace, pod: podName });
    } catch {
      continue;
    }
    if (subject.kind !== 'pod') continue;
    const P = subject;
    const ourSubject = ours.resolve({ namespace: input.namespace, pod: podName }) as PodEnd;
    for (const dir of dirs) {
      const remotes = new Map<string, ResolvedEnd>();
      const ports = new Map<string, [number, L4Protocol]>();
      const addPort = (port: number, proto: L4Protocol): void => {
        ports.set(`${port}/${proto}`, [port, proto]);
      };
      for (const [port, proto] of COMMON_PORTS) addPort(port, proto);
      /** A port of `proto` to probe a rule that admits all of its ports on (a common one if any). */
      const addAnyPort = (proto: L4Protocol): void => {
        if (![...ports.values()].some(([, pr]) => pr === proto)) addPort(COMMON_PORTS[2]![0], proto);
      };
      if (dir === 'ingress') for (const cp of P.ports) addPort(cp.port, cp.protocol);
      // By address for an address end: every address of a node is one end (`node:<name>`), but an
      // ipBlock admits some of them and not others, and the node's own traffic comes from some only.
      const addRemote = (r: ResolvedEnd | undefined): void => {
        if (!r || r.key === P.key) return;
        const k = r.kind === 'ip' ? `${r.key}\u0000${formatAddr(r.ip)}` : r.key;
        // Traffic from the pod's own node (its InternalIP, its status.hostIP) is always admitted
        // (nodeTraffic=allow): no policy could keep it out, so it is neither leak nor exception.
        if (dir === 'ingress' && all.admitsOwnNodeTraffic(r, P)) return;
        if (!remotes.has(k)) remotes.set(k, r);
      };
      const addIp = (ip: string | undefined): void => {
        if (ip) addRemote(all.resolveIP(ip));
      };
      // An address of a block no pod holds: a pod's is not matched by an ipBlock when
      // ipBlockMatchesPods is false (Cilium), and the block's first address may be the isolated pod's.
      const heldByPod = (ip: string): boolean => all.resolveIP(ip).kind === 'pod';
      const addBlock = (cidr: Cidr, except: readonly Cidr[]): void => {
        const first = addressIn(cidr, except);
        addIp(first);
        const free = addressIn(cidr, except, heldByPod);
        if (free !== first) addIp(free);
      };
      for (const ip of OUTSIDE) addIp(ip);
      for (const p of all.allPods().slice(0, MAX_CONCRETE_PEERS)) addRemote(p);
      const addPodClass = (
        nsSel: LabelSelector | undefined,
        podSel: LabelSelector | undefined,
        ownNs: string,
      ) => {
        const labels = labelsFor(podSel ?? {});
        if (!labels) return;
        const nss = nsSel ? namespaces.filter((n) => matchesSelector(nsSel, all.nsLabels(n))) : [ownNs];
        for (const ns of nss) addRemote(all.classEnd({ namespace: ns, labels }));
      };
      const npPeer = (peer: NpPeer, ownNs: string): void => {
        if (peer.kind === 'ipBlock') addBlock(peer.cidr, peer.except);
        else addPodClass(peer.namespaceSelector, peer.podSelector, ownNs);
      };
      const cpPeer = (peer: CpPeer): void => {
        if (peer.kind === 'namespaces') addPodClass(peer.namespaceSelector, {}, input.namespace);
        else if (peer.kind === 'pods') addPodClass(peer.namespaceSelector, peer.podSelector, input.namespace);
        else if (peer.kind === 'networks') for (const c of peer.cidrs) addBlock(c, []);
        // The nodes its selector picks (at most MAX_CONCRETE_PEERS addresses): taken from every node
        // known, a few hundred others sorted before them would leave them out.
        else if (peer.kind === 'nodes') {
          let n = 0;
          for (const node of known) {
            if (n >= MAX_CONCRETE_PEERS) break;
            if (!selectsNode(peer.nodeSelector, node)) continue;
            for (const ip of node.ips) if (n++ < MAX_CONCRETE_PEERS) addIp(ip);
          }
        }
      };
      for (const np of all.networkPolicies) {
        if (np.namespace !== P.namespace || !matchesSelector(np.podSelector, P.labels)) continue;
        for (const r of (dir === 'ingress' ? np.ingress : np.egress) ?? []) {
          for (const peer of r.peers ?? []) npPeer(peer, np.namespace);
          for (const pp of r.ports ?? []) {
            if (pp.port !== undefined) {
              addPort(pp.port, pp.protocol);
              if (pp.endPort !== undefined) addPort(pp.endPort, pp.protocol);
            }
            if (pp.name) for (const [n, pr] of namedPorts.get(pp.name) ?? []) addPort(n, pr);
            // Every port of its protocol: probed on one, or an SCTP rule would be probed on none.
            if (pp.port === undefined && !pp.name) addAnyPort(pp.protocol);
          }
        }
      }
      for (const cp of [...all.adminPolicies, ...all.baselinePolicies]) {
        for (const r of dir === 'ingress' ? cp.ingress : cp.egress) {
          for (const peer of r.peers) cpPeer(peer);
          for (const pp of r.ports ?? []) {
            if (pp.start !== undefined) addPort(pp.start, pp.protocol ?? 'TCP');
            if (pp.end !== undefined) addPort(pp.end, pp.protocol ?? 'TCP');
            if (pp.name) for (const [n, pr] of namedPorts.get(pp.name) ?? []) addPort(n, pr);
            // Every port of its protocol (a ClusterNetworkPolicy `sctp: {}`): probed on one, as above.
            if (pp.start === undefined && !pp.name && pp.protocol) addAnyPort(pp.protocol);
          }
        }
      }
      for (const [, remote] of [...remotes.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
        for (const [port, proto] of [...ports.values()].sort(
          (a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : 1),
        )) {
          probes++;
          const d = all.decide(dir, P, remote, port, proto);
          if (!d.allowed) continue;
          if (ours.decide(dir, ourSubject, remote, port, proto).allowed) {
            exceptions++;
            continue;
          }
          const policy = d.policy ?? `(${d.tier}: no policy decides)`;
          const rule = d.rule ?? '';
          const key = `${podName}\u0000${dir}\u0000${policy}\u0000${rule}`;
          if (seen.has(key)) continue;
          seen.add(key);
          if (found.size < MAX_LEAKS)
            found.set(key, {
              policy,
              rule,
              direction: dir,
              pod: `${input.namespace}/${podName}`,
              example: `${dir === 'ingress' ? `from ${remote.display}` : `to ${remote.display}`} ${port}/${proto}`,
            });
        }
      }
    }
  }
  return {
    leaks: [...found.values()],
    moreLeaks: seen.size - found.size,
    probes,
    exceptions,
    notEvaluated,
  };
}
