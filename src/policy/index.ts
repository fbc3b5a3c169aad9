/**
 * Policy synthesis: least-privilege NetworkPolicies from the observed service graph. Pure and
 * deterministic: same graph and options, same policies in the same order with the same names.
 *
 * Per workload in scope, one policy selecting its pods with both policyTypes set: ingress from each
 * observed source, egress to each observed destination plus cluster DNS; per namespace a default deny.
 * A workload's pods are selected, by its policy and as a peer, by its selector narrowed so that it leaves
 * out the pods of the other workloads of its namespace (see narrowSelector).
 */
import { cidrContains, parseAddr, parseCidr } from '../verify/ip.ts';
import { createHash } from 'node:crypto';
import { isIPv4 } from 'node:net';
import type { Protocol } from '../flows/types.ts';
import type { GraphEdge, ServiceGraph } from '../graph/types.ts';
import type { DNSPort } from '../identity/index.ts';
import { dnsRulePorts, SEGMENT_LABEL, selectorText } from '../identity/index.ts';
import { hostCIDR, ipv6Network } from '../identity/ip.ts';
import type { Workload } from '../identity/types.ts';
import type {
  LabelSelector,
  NetworkPolicy,
  NetworkPolicyEgressRule,
  NetworkPolicyIngressRule,
  NetworkPolicyPeer,
  NetworkPolicyPort,
} from '../model/k8s.ts';
import type { PolicyOptions, Proposal, RuleEvidence } from './types.ts';
import { compareText } from '../model/order.ts';
import type { NarrowedSelector } from './narrow.ts';
import { narrowSelector, overlappingWorkloads, withoutPin } from './narrow.ts';

export type { PolicyOptions, Proposal, RuleEvidence } from './types.ts';

/**
 * The Argo CD annotation that orders a sync: a default deny is in wave 1, after the policies that allow
 * (wave 0, unannotated), so that syncing a namespace's policies never denies first what they allow.
 */
export const SYNC_WAVE_ANNOTATION = 'argocd.argoproj.io/sync-wave';

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'microseg';
export const WORKLOAD_ANNOTATION = 'microseg.dev/workload';
export const SEGMENT_POLICY_LABEL = 'microseg.dev/segment';
export const EXTERNAL_NAMES_ANNOTATION = 'microseg.dev/external-names';
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';
export const DEFAULT_DENY_NAME = 'microseg-default-deny';
export const SYSTEM_NAMESPACES: readonly string[] = ['kube-system', 'kube-public', 'kube-node-lease'];

export interface ProposeInput {
  workloads: ReadonlyMap<string, Workload>;
  graph: ServiceGraph;
  clusterDNS: readonly string[];
  /**
   * The ports each cluster DNS workload takes DNS queries on, after the kube-dns Service's translation
   * (`clusterDNSPorts`); a workload without a port of a protocol here gets 53 for it.
   */
  clusterDNSPorts?: ReadonlyMap<string, readonly { protocol: Protocol; port: number }[]>;
  /**
   * The kube-dns Service's numeric targetPorts of its port 53 (`Identity.clusterDNSServicePorts`): what
   * the DNS rule opens when the snapshot has no DNS workload to select, for a protocol no DNS workload
   * resolved a port of (53 without one).
   */
  clusterDNSServicePorts?: readonly { protocol: Protocol; port: number }[];
  /**
   * The API server's endpoint addresses: a rule to or from it names each. Its ports are those of the
   * observed edges, never every endpoint port.
   */
  apiserverEndpoints: { ips: readonly string[] };
  /** Pod networks (CIDRs) excluded from rules meant for the internet. */
  podNetworks?: readonly string[];
  /**
   * Does the cluster have IPv6 (`Identity.ipv6`)? Internet-facing workloads then accept `::/0` besides
   * `0.0.0.0/0` under `worldIngress: any`, whichever family the clients observed used.
   */
  ipv6?: boolean;
  /** Workload id → segment id, to label policies. */
  membership?: Readonly<Record<string, string>>;
}

const EXPRESSIBLE: ReadonlySet<Protocol> = new Set(['TCP', 'UDP', 'SCTP']);
const PASSING = ['FORWARDED', 'AUDIT', 'REDIRECTED', 'TRACED', 'TRANSLATED', 'UNKNOWN'] as const;

/** An edge counts as allowed traffic when at least one observation of it was not dropped. */
export function edgeWasAllowed(e: GraphEdge): boolean {
  return PASSING.some((v) => (e.verdicts[v] ?? 0) > 0);
}

interface PortAcc {
  protocol: Protocol;
  port: number | string;
  count: number;
  first: string;
  last: string;
  edges: string[];
}

interface RuleAcc {
  /** Sort key and evidence peer id. */
  peerId: string;
  peers: NetworkPolicyPeer[];
  ports: Map<string, PortAcc>;
  names: string[];
}

/** Why ingress from a node address gets no rule (the proof leaves such edges out, see proveProposal). */
export const NODE_INGRESS =
  "node traffic (kubelet probes): a pod's own node is always admitted, so no rule is written; from another node's address it stays blocked by the default deny";

export function proposePolicies(input: ProposeInput, opts: PolicyOptions = {}): Proposal {
  const warnings: string[] = [];
  const notExpressible: Proposal['notExpressible'] = [];
  const unobserved: string[] = [];
  const { workloads, graph } = input;
  const nodes = new Map(graph.nodes.map((n) => [n.id, n]));

  const observedNamespaces = new Set<string>();
  for (const e of graph.edges) {
    for (const id of [e.source, e.target]) {
      const w = workloads.get(id);
      if (w) observedNamespaces.add(w.namespace);
    }
  }
  // Only namespaces with an observed workload: a default deny alone would cut off a namespace whose
  // traffic nobody saw. One asked for (`--namespace`, a Segmentation's selector) without one is named.
  const namespaces = [
    ...(opts.namespaces
      ? new Set(opts.namespaces)
      : [...observedNamespaces].filter((ns) => !SYSTEM_NAMESPACES.includes(ns))),
  ]
    .filter((ns) => {
      if (observedNamespaces.has(ns)) return true;
      warnings.push(
        `namespace ${ns}: no workload of it was observed in the flows; no policy is proposed for it (a default deny alone would cut off traffic nobody saw)`,
      );
      return false;
    })
    .sort();
  const inScope = new Set(namespaces);

  const ingress = new Map<string, Map<string, RuleAcc>>();
  const egress = new Map<string, Map<string, RuleAcc>>();
  const ruleFor = (
    table: Map<string, Map<string, RuleAcc>>,
    owner: string,
    peerId: string,
    peers: NetworkPolicyPeer[],
  ) => {
    let rules = table.get(owner);
    if (!rules) table.set(owner, (rules = new Map<string, RuleAcc>()));
    let r = rules.get(peerId);
    if (!r) rules.set(peerId, (r = { peerId, peers, ports: new Map(), names: [] }));
    return r;
  };
  const addPort = (r: RuleAcc, protocol: Protocol, port: number | string, e?: GraphEdge) => {
    const key = `${protocol}/${port}`;
    let p = r.ports.get(key);
    if (!p) r.ports.set(key, (p = { protocol, port, count: 0, first: '', last: '', edges: [] }));
    if (e) {
      p.count += e.count;
      if (!p.first || e.firstSeen < p.first) p.first = e.firstSeen;
      if (!p.last || e.lastSeen > p.last) p.last = e.lastSeen;
      p.edges.push(e.id);
    }
  };

  const selectable = (w: Workload) => !w.hostNetwork && Object.keys(w.selector).length > 0;
  const governed = (w: Workload | undefined): w is Workload =>
    !!w && inScope.has(w.namespace) && selectable(w);

  // The workloads of each namespace by label (`key=value`; all of them under '', those whose pods vary in
  // their labels under '~'), made when a selector there is first narrowed: the workloads a selector's
  // matchLabels can match are those of its rarest label, and those whose pods vary.
  const labelIndex = new Map<string, Map<string, Workload[]>>();
  // The workloads by namespace, grouped in one pass when first needed (a pass over every workload per
  // namespace took 146 ms of the 20k-workload benchmark's proposal).
  let byNamespace: Map<string, Workload[]> | undefined;
  const inNamespace = (ns: string): readonly Workload[] => {
    if (byNamespace === undefined) {
      byNamespace = new Map();
      for (const o of workloads.values()) {
        const l = byNamespace.get(o.namespace);
        if (l) l.push(o);
        else byNamespace.set(o.namespace, [o]);
      }
    }
    return byNamespace.get(ns) ?? [];
  };
  const indexOf = (ns: string) => {
    let index = labelIndex.get(ns);
    if (index) return index;
    const all: Workload[] = [];
    const varying: Workload[] = [];
    labelIndex.set(
      ns,
      (index = new Map<string, Workload[]>([
        ['', all],
        ['~', varying],
      ])),
    );
    for (const o of inNamespace(ns)) {
      all.push(o);
      if (o.varyingLabels) varying.push(o);
      for (const [k, v] of Object.entries(o.labels)) {
        const key = `${k}=${v}`;
        const l = index.get(key);
        if (l) l.push(o);
        else index.set(key, [o]);
      }
    }
    return index;
  };
  const narrowed = new Map<string, NarrowedSelector>();
  /**
   * A workload's selector narrowed so that it selects none of the pods of the other workloads of its
   * namespace (see narrowSelector): its policy's podSelector, and the podSelector of every rule naming
   * it as a peer, so that neither its rules nor the rules of others reach those pods.
   */
  const selectorOf = (w: Workload): NarrowedSelector => {
    let n = narrowed.get(w.id);
    if (n) return n;
    // Never by the pin label, which a team changes to move the workload to another segment (withoutPin).
    const base = withoutPin(w);
    const index = indexOf(w.namespace);
    const all = index.get('')!;
    let candidates = all;
    for (const [k, v] of Object.entries(base.selector.matchLabels ?? {})) {
      const l = index.get(`${k}=${v}`) ?? [];
      if (l.length < candidates.length) candidates = l;
    }
    if (candidates !== all) candidates = [...new Set([...candidates, ...index.get('~')!])];
    n = narrowSelector(base, overlappingWorkloads(base, candidates));
    narrowed.set(w.id, n);
    return n;
  };

  /** The NetworkPolicyPeer for a workload, seen from a policy in namespace `from`. */
  const workloadPeer = (w: Workload, from: string): NetworkPolicyPeer =>
    selectorPeer(w.namespace, selectorOf(w).selector, from);

  const podNets = (input.podNetworks ?? []).flatMap((text) => {
    const c = parseCidr(text);
    return c ? [{ text, c }] : [];
  });
  /** The pod network `ip` lies in, if any. */
  const podNetworkOf = (ip: string): string | undefined => {
    const a = parseAddr(ip);
    return a ? podNets.find((n) => cidrContains(n.c, a))?.text : undefined;
  };

  const prefixFor = (ip: string) =>
    isIPv4(ip) ? (opts.externalPrefix ?? 32) : (opts.externalPrefixV6 ?? 128);
  const externalCIDR = (ip: string) => {
    const prefix = prefixFor(ip);
    return isIPv4(ip) ? maskIPv4(ip, prefix) : prefix === 128 ? hostCIDR(ip) : ipv6Network(ip, prefix);
  };

  /** Resolves the remote side of an edge to a peer id and NetworkPolicyPeer list, or a reason it cannot be. */
  const remotePeer = (
    remoteId: string,
    direction: 'ingress' | 'egress',
    local: Workload,
    e: GraphEdge,
  ): { id: string; peers: NetworkPolicyPeer[]; names?: string[] } | string => {
    const rw = workloads.get(remoteId);
    if (rw) {
      if (rw.hostNetwork) {
        // Its traffic comes from (goes to) the addresses of the nodes its pods run on.
        const ips = rw.hostIPs ?? [];
        if (ips.length === 0)
          return `host-network ${direction === 'ingress' ? 'source' : 'destination'} with no known node address`;
        return { id: remoteId, peers: ips.map((ip) => ({ ipBlock: { cidr: hostCIDR(ip) } })) };
      }
      if (!selectable(rw)) return `${remoteId} has no stable labels to select it by`;
      return { id: remoteId, peers: [workloadPeer(rw, local.namespace)] };
    }
    const n = nodes.get(remoteId);
    switch (n?.kind) {
      case 'kube-apiserver': {
        // Egress to it, or ingress from it (admission webhooks, aggregated API servers): its addresses.
        const ips =
          input.apiserverEndpoints.ips.length > 0 ? input.apiserverEndpoints.ips : n.ip ? [n.ip] : [];
        if (ips.length === 0)
          return 'the API server address is unknown (no default/kubernetes endpoints in the snapshot)';
        return { id: remoteId, peers: ips.map((ip) => ({ ipBlock: { cidr: hostCIDR(ip) } })) };
      }
      case 'node':
        // Kubelet probes and other node traffic: a pod's own node is admitted without a rule, and an
        // ipBlock for node addresses is not honoured alike by every CNI. No rule, as documented.
        if (direction === 'ingress') return NODE_INGRESS;
        return { id: remoteId, peers: [{ ipBlock: { cidr: hostCIDR(n.ip!) } }] };
      case 'world': {
        if (direction === 'ingress' && (opts.worldIngress ?? 'any') === 'any' && acceptsInternet(local)) {
          // The whole internet of each family the cluster serves (both in a cluster that has IPv6, else
          // the client's), minus the pod networks of that family: clients cannot be enumerated. One rule
          // for every client, whatever its family.
          const v6 = !isIPv4(n.ip!);
          const families = input.ipv6 ? [false, true] : [v6];
          const peers = families.map((six): NetworkPolicyPeer => {
            const except = (input.podNetworks ?? []).filter((c) => c.includes(':') === six);
            return {
              ipBlock: { cidr: six ? '::/0' : '0.0.0.0/0', ...(except.length > 0 ? { except } : {}) },
            };
          });
          const id = input.ipv6 ? 'world:any' : v6 ? 'world:any-v6' : 'world:any-v4';
          return { id, peers };
        }
        const cidr = externalCIDR(n.ip!);
        return { id: `world:${cidr}`, peers: [{ ipBlock: { cidr } }], names: n.names ?? [] };
      }
      case 'private': {
        // The ClusterIP of a Service with no backend in the snapshot: policies see a connection to a
        // ClusterIP only once it is translated to a backend pod, so an ipBlock for it admits nothing.
        if (n.service !== undefined)
          return `${n.ip} is the ClusterIP of Service ${n.service}, which has no backend in the snapshot: a policy sees a connection to it only once it is translated to a backend pod, so no rule can admit it`;
        // An address of the pod network that no pod of the snapshot held: an ipBlock for it would admit
        // whichever pod is given the address next.
        const net = podNetworkOf(n.ip!);
        if (net)
          return `${n.ip} is in the pod network ${net}, but no pod of the snapshot held it; an ipBlock would admit whichever pod gets the address next, so no rule is written (a snapshot taken while the pod ran names it)`;
        const cidr = hostCIDR(n.ip!);
        const prefix = cidr.slice(cidr.indexOf('/')); // /32 or /128
        warnings.push(
          `${e.id}: ${n.ip} is a private address that is no pod, node or service in the snapshot; allowed as a ${prefix}`,
        );
        return { id: remoteId, peers: [{ ipBlock: { cidr } }] };
      }
      default:
        return 'the peer could not be identified';
    }
  };

  /** Workloads at an end of an observed edge, whether or not a rule came of it. */
  const observed = new Set<string>();
  for (const e of graph.edges) {
    observed.add(e.source);
    observed.add(e.target);
    if (!opts.includeDropped && !edgeWasAllowed(e)) {
      notExpressible.push({
        edge: e.id,
        reason:
          'every observation was dropped: not allowed (--include-dropped, or policy.includeDropped of a Segmentation, allows it)',
      });
      continue;
    }
    const src = workloads.get(e.source);
    const dst = workloads.get(e.target);
    if (!governed(src) && !governed(dst)) continue;
    if (!EXPRESSIBLE.has(e.protocol)) {
      notExpressible.push({ edge: e.id, reason: `NetworkPolicy cannot express ${e.protocol}` });
      continue;
    }
    if (governed(dst)) {
      const peer = remotePeer(e.source, 'ingress', dst, e);
      if (typeof peer === 'string')
        notExpressible.push({ edge: e.id, reason: `ingress to ${dst.id}: ${peer}` });
      else
        addPort(
          ruleFor(ingress, dst.id, peer.id, peer.peers),
          e.protocol,
          portFor(dst, e.protocol, e.port, opts),
          e,
        );
    }
    if (governed(src)) {
      const peer = remotePeer(e.target, 'egress', src, e);
      if (typeof peer === 'string')
        notExpressible.push({ edge: e.id, reason: `egress from ${src.id}: ${peer}` });
      else {
        // The port the edge used, the API server's too (a connection to the kubernetes Service's
        // ClusterIP arrives translated to its endpoints' port): an endpoint port no edge used stays closed.
        // A named port is resolved on the destination pod, so it is written only where the rule selects
        // the destination by its pods; an ipBlock (a host-network workload's node addresses) gets the number.
        const r = ruleFor(egress, src.id, peer.id, peer.peers);
        const byPods = peer.peers.every((p) => p.podSelector !== undefined);
        addPort(r, e.protocol, dst && byPods ? portFor(dst, e.protocol, e.port, opts) : e.port, e);
        if (peer.names) for (const nm of peer.names) if (!r.names.includes(nm)) r.names.push(nm);
      }
    }
  }

  // DNS: every governed workload may resolve names through the cluster DNS pods, on the port they take
  // a query to the kube-dns Service's port 53 on (its targetPort), UDP and TCP; 53 for a protocol the
  // Service does not bring to the workload.
  const dnsTargets: { id: string; namespace: string; selector: LabelSelector; ports: DNSPort[] }[] =
    input.clusterDNS
      .map((id) => workloads.get(id))
      .filter((w): w is Workload => !!w && selectable(w))
      .map((w) => ({
        id: w.id,
        namespace: w.namespace,
        selector: selectorOf(w).selector,
        ports: dnsRulePorts([input.clusterDNSPorts?.get(w.id) ?? []], []),
      }));
  if (dnsTargets.length === 0) {
    // No DNS workload to select (no DNS pod in the snapshot, or none with stable labels): the pods
    // labelled as cluster DNS, on the ports the DNS workloads were found to take queries on, else on the
    // kube-dns Service's targetPort when it is a number. A named targetPort has no pod here to give it a
    // number, so it stays 53, as without the Service.
    const ports = dnsRulePorts(input.clusterDNSPorts?.values() ?? [], input.clusterDNSServicePorts ?? []);
    warnings.push(
      `no cluster DNS workload in the snapshot; DNS egress allowed to kube-system pods labelled k8s-app=kube-dns on ${ports.map((p) => `${p.port}/${p.protocol}`).join(', ')}`,
    );
    dnsTargets.push({
      id: 'kube-system/cluster-dns',
      namespace: 'kube-system',
      selector: { matchLabels: { 'k8s-app': 'kube-dns' } },
      ports,
    });
  }
  const policies: NetworkPolicy[] = [];
  const byWorkload: Record<string, string[]> = {};
  const evidence: RuleEvidence[] = [];
  const deny = opts.defaultDeny ?? true;
  const denyNames = new Map<string, string>();
  for (const ns of namespaces) {
    const members = [...workloads.values()]
      .filter((w) => w.namespace === ns)
      .sort((a, b) => compareText(a.id, b.id));
    const names = policyNames(members);
    denyNames.set(ns, names.get('')!);
    const nsPolicies: NetworkPolicy[] = [];
    for (const w of members) {
      if (!inScope.has(w.namespace) || !selectable(w)) {
        if (w.hostNetwork) continue;
        if (Object.keys(w.selector).length === 0)
          warnings.push(`${w.id}: no policy written (no stable labels); only the default deny applies`);
        continue;
      }
      if (!ingress.has(w.id) && !egress.has(w.id)) {
        // Nothing observed: the default deny covers it, and blocks whatever it does once enforced
        // (without a default deny, no policy selects it and nothing of it is blocked).
        if (deny && !w.observedOnly && !observed.has(w.id)) unobserved.push(w.id);
        continue;
      }
      const name = names.get(w.id)!;
      const own = selectorOf(w);
      const inRules = [...(ingress.get(w.id)?.values() ?? [])].sort(byPeer);
      const egRules = [...(egress.get(w.id)?.values() ?? [])];
      for (const d of dnsTargets) {
        let r = egRules.find((x) => x.peerId === d.id);
        if (!r) {
          r = {
            peerId: d.id,
            peers: [selectorPeer(d.namespace, d.selector, ns)],
            ports: new Map(),
            names: [],
          };
          egRules.push(r);
        }
        const dw = workloads.get(d.id);
        for (const { protocol, port } of d.ports)
          addPort(r, protocol, dw ? portFor(dw, protocol, port, opts) : port);
      }
      egRules.sort(byPeer);
      const externalNames = egRules
        .filter((r) => r.names.length > 0)
        .map((r) => `${r.peers.map((p) => p.ipBlock?.cidr).join(',')}=${[...r.names].sort().join(',')}`);
      const annotations: Record<string, string> = { [WORKLOAD_ANNOTATION]: w.id };
      if (externalNames.length > 0) annotations[EXTERNAL_NAMES_ANNOTATION] = externalNames.join('; ');
      const labels: Record<string, string> = { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE };
      const seg = input.membership?.[w.id];
      if (seg) labels[SEGMENT_POLICY_LABEL] = seg;
      const policy: NetworkPolicy = {
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: { name, namespace: ns, labels, annotations },
        spec: {
          podSelector: own.selector,
          policyTypes: ['Ingress', 'Egress'],
          ingress: inRules.map((r): NetworkPolicyIngressRule => ({ from: r.peers, ports: rulePorts(r) })),
          egress: egRules.map((r): NetworkPolicyEgressRule => ({ to: r.peers, ports: rulePorts(r) })),
        },
      };
      nsPolicies.push(policy);
      byWorkload[w.id] = [`${ns}/${name}`];
      // Another workload whose pods carry the labels the workload's selector asks for (a chart's Job
      // labelled as its Deployment) would get this policy's rules too, NetworkPolicies adding up: the
      // podSelector leaves it out by a label that separates them. One labelled exactly alike cannot be.
      for (const other of own.unseparated) {
        // Their labels are the same, or those they differ by are not carried alike by all their pods.
        // The pin label is never one to tell them apart by (withoutPin).
        const differ = [...new Set([...Object.keys(w.labels), ...Object.keys(other.labels)])]
          .filter((k) => w.labels[k] !== other.labels[k] && k !== SEGMENT_LABEL)
          .sort(compareText);
        const why =
          differ.length > 0
            ? `the labels they differ by, ${differ.join(', ')}, are not carried alike by all their pods`
            : w.labels[SEGMENT_LABEL] !== other.labels[SEGMENT_LABEL]
              ? `they differ only by the pin label ${SEGMENT_LABEL}, which a selector never rests on: a team changes it to move a workload to another segment`
              : `both carry exactly ${selectorText({ matchLabels: w.labels })}`;
        warnings.push(
          `policy ${ns}/${name} (${w.id}) also selects the pods of ${other.id}: no label separates them (${why}), so its rules apply to them too (see verification.excess)`,
        );
      }
      for (const [direction, rules] of [
        ['ingress', inRules],
        ['egress', egRules],
      ] as const) {
        for (const r of rules) {
          for (const p of sortedPorts(r)) {
            if (p.edges.length === 0) continue;
            evidence.push({
              policy: `${ns}/${name}`,
              direction,
              peer: r.peerId,
              protocol: p.protocol,
              port: p.port,
              count: p.count,
              firstSeen: p.first,
              lastSeen: p.last,
              edges: [...p.edges].sort(),
            });
          }
        }
      }
    }
    nsPolicies.sort((a, b) => compareText(a.metadata.name, b.metadata.name));
    if (deny) {
      policies.push({
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: {
          name: names.get('')!,
          namespace: ns,
          labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE },
          annotations: {
            'microseg.dev/purpose': 'default deny: only observed traffic is allowed',
            // Argo CD syncs a later wave once the earlier one is applied: the deny after what allows.
            [SYNC_WAVE_ANNOTATION]: '1',
          },
        },
        spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] },
      });
    }
    policies.push(...nsPolicies);
  }
  if (deny) {
    for (const w of workloads.values()) {
      if (!inScope.has(w.namespace) || w.hostNetwork) continue;
      byWorkload[w.id] = [`${w.namespace}/${denyNames.get(w.namespace)!}`, ...(byWorkload[w.id] ?? [])];
    }
  }
  // A selector that rests on the pin label because the workload has no other label (withoutPin keeps it
  // then: a selector of nothing would select every pod of the namespace). Moving or removing the pin,
  // which a rollout or the next run carries to the pods, would leave them out of every policy selecting
  // them by it. Those policies are named, so the pods can be given a label of their own.
  const narrowedInOrder = [...narrowed].sort(([a], [b]) => compareText(a, b));
  /** "policy X selects" / "policies X, Y select": the policies using `selector`, or undefined for none. */
  const selecting = (selector: LabelSelector): string | undefined => {
    const using = policies
      .filter((np) => usesSelector(np, selector))
      .map((np) => `${np.metadata.namespace}/${np.metadata.name}`)
      .sort(compareText);
    if (using.length === 0) return undefined;
    return using.length === 1 ? `policy ${using[0]} selects` : `policies ${using.join(', ')} select`;
  };
  for (const [id, n] of narrowedInOrder) {
    const pin = n.selector.matchLabels?.[SEGMENT_LABEL];
    if (pin === undefined) continue;
    const which = selecting(n.selector);
    if (which === undefined) continue;
    warnings.push(
      `${which} the pods of ${id} by the pin label ${SEGMENT_LABEL}=${pin} alone, the only label they carry: moving the workload to another segment or removing its pin would leave its new pods unselected, and the namespace's default deny would block their traffic; give its pod template a label of its own`,
    );
  }
  // A selector narrowed by a label of the workload's pod template (no label of their kinds, nor a stable
  // one, tells the other workload's pods apart): a rollout changing the label would leave the workload's
  // new pods out of every policy selecting them by it. Those policies are named, so the label can be
  // pinned or the pods relabelled.
  for (const [id, n] of narrowedInOrder) {
    if (n.onTemplate.length === 0) continue;
    const which = selecting(n.selector);
    if (which === undefined) continue;
    for (const { requirement: r, leavesOut } of n.onTemplate) {
      const value = r.values![0]!;
      warnings.push(
        `${which} the pods of ${id} by their pod-template label ${r.key}=${value} (${r.key} In [${value}], leaving out the pods of ${leavesOut.map((o) => o.id).join(', ')}): a rollout that changes the label would leave its new pods unselected, and the namespace's default deny would block their traffic; pin the label or give either workload's pods a label that tells them apart`,
      );
    }
  }
  notExpressible.sort((a, b) => compareText(a.edge, b.edge) || compareText(a.reason, b.reason));
  return {
    policies,
    byWorkload,
    evidence,
    notExpressible,
    unobserved: unobserved.sort(compareText),
    namespaces,
    warnings: [...new Set(warnings)].sort(),
  };
}

/** Does `np` select its own pods or a peer's by `selector` (this very object)? */
function usesSelector(np: NetworkPolicy, selector: LabelSelector): boolean {
  if (np.spec.podSelector === selector) return true;
  const peers = [
    ...(np.spec.ingress ?? []).flatMap((r) => r.from ?? []),
    ...(np.spec.egress ?? []).flatMap((r) => r.to ?? []),
  ];
  return peers.some((p) => p.podSelector === selector);
}

/** A peer selecting pods by labels in `namespace`, written for a policy living in namespace `from`. */
function selectorPeer(namespace: string, selector: LabelSelector, from: string): NetworkPolicyPeer {
  return namespace === from
    ? { podSelector: selector }
    : { namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: namespace } }, podSelector: selector };
}

/** Does this workload take connections from arbitrary internet clients? */
function acceptsInternet(w: Workload): boolean {
  return w.roles.includes('load-balanced') || w.roles.includes('ingress-controller');
}

/** The port as a rule names it: its number, or with `namedPorts` the name every pod of `dst` gives it. */
function portFor(dst: Workload, protocol: Protocol, port: number, opts: PolicyOptions): number | string {
  if (!opts.namedPorts) return port;
  const named = dst.namedPorts.find((p) => p.port === port && p.protocol === protocol);
  return named ? named.name : port;
}

function byPeer(a: RuleAcc, b: RuleAcc): number {
  return a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0;
}

function sortedPorts(r: RuleAcc): PortAcc[] {
  return [...r.ports.values()].sort(
    (a, b) =>
      compareText(a.protocol, b.protocol) ||
      (typeof a.port === 'number' && typeof b.port === 'number'
        ? a.port - b.port
        : compareText(String(a.port), String(b.port))),
  );
}

function rulePorts(r: RuleAcc): NetworkPolicyPort[] {
  return sortedPorts(r).map((p) => ({ protocol: p.protocol, port: p.port }));
}

/** Kubernetes object names (RFC 1123 subdomains): lower-case alphanumeric labels joined by dots. */
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const MAX_NAME = 253;

/**
 * Policy names per workload in a namespace: `microseg-<name>`, or `microseg-<kind>-<name>` where two
 * workloads share a name; the key '' holds the default deny's name. Such a name is kept whenever no other
 * workload of the namespace wants it and it is a valid object name, so names that were already unique stay as they were. A name
 * several workloads want (a bare pod `deployment-foo` beside a Deployment `foo` and a StatefulSet `foo`, or
 * long names cut to the same 253 characters) goes to the one whose own name it is, else to the smallest id;
 * the others, and names Kubernetes would refuse, get a hash of the workload id: a suffix that depends on
 * the workload alone, so a workload arriving or leaving renames no other. Independent of the order of
 * `members`.
 */
export function policyNames(members: readonly Workload[]): Map<string, string> {
  const count = new Map<string, number>();
  for (const w of members) count.set(w.name, (count.get(w.name) ?? 0) + 1);
  const wanted = members
    .map((w) => {
      const own = count.get(w.name) === 1 && w.name !== 'default-deny';
      const name = (own ? `microseg-${w.name}` : `microseg-${w.kind.toLowerCase()}-${w.name}`).slice(
        0,
        MAX_NAME,
      );
      return { id: w.id, own, name };
    })
    .sort((a, b) => Number(b.own) - Number(a.own) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const wantedBy = new Map<string, number>([[DEFAULT_DENY_NAME, 1]]);
  for (const c of wanted) wantedBy.set(c.name, (wantedBy.get(c.name) ?? 0) + 1);
  const out = new Map<string, string>([['', DEFAULT_DENY_NAME]]);
  const taken = new Set<string>([DEFAULT_DENY_NAME]);
  const take = (id: string, name: string) => {
    out.set(id, name);
    taken.add(name);
  };
  // Unique wishes first, so that a shared wish's losers can never take one of them below.
  for (const c of wanted) if (wantedBy.get(c.name) === 1 && DNS_SUBDOMAIN.test(c.name)) take(c.id, c.name);
  for (const c of wanted)
    if (!out.has(c.id) && !taken.has(c.name) && DNS_SUBDOMAIN.test(c.name)) take(c.id, c.name);
  for (const c of wanted) {
    if (out.has(c.id)) continue;
    // Characters Kubernetes refuses become '-'; a run of dots and dashes holding a dot becomes one dot.
    const base = c.name
      .toLowerCase()
      .replace(/[^a-z0-9.]+/g, '-')
      .replace(/-*\.[-.]*/g, '.');
    const hash = createHash('sha256').update(c.id).digest('hex').slice(0, 8);
    for (let i = 1; ; i++) {
      const suffix = i === 1 ? `-${hash}` : `-${hash}-${i}`;
      const name = `${base.slice(0, MAX_NAME - suffix.length).replace(/[-.]+$/, '')}${suffix}`;
      if (!taken.has(name)) {
        take(c.id, name);
        break;
      }
    }
  }
  return out;
}

function maskIPv4(ip: string, prefix: number): string {
  const n = ip.split('.').reduce((acc, o) => (acc << 8) | Number(o), 0) >>> 0;
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const m = (n & mask) >>> 0;
  return `${[m >>> 24, (m >>> 16) & 255, (m >>> 8) & 255, m & 255].join('.')}/${prefix}`;
}
