/**
 * Batch reachability over equivalence classes of pods: pods with the same namespace, labels, container
 * ports, CIDR signature (which ipBlock/networks peers contain their IP) and host network (a host-network
 * pod kept as a pod is never an ANP/CNP subject or pod peer) are indistinguishable to every
 * policy, so the engine decides once per class. On top of it: proposal verification against observed
 * connections (blocked flows, excess reachability, permissiveness) and blast radius.
 */
import type { LabelSelector } from '../model/k8s.ts';
import { matches, selects as matchesSelector } from './match.ts';
import { InputError } from '../model/snapshot.ts';
import type { Engine } from './engine.ts';
import { cidrPeers, labelsKey } from './engine.ts';
import { cidrContains } from './ip.ts';
import { compareText } from '../model/order.ts';
import type { Endpoint, L4Protocol, PodEnd, ResolvedEnd } from './types.ts';

export interface PortProto {
  port: number;
  protocol: L4Protocol;
}

export interface PodClass {
  index: number;
  /** Stable identity of the class. */
  id: string;
  /**
   * Display name: the owning workload when all members share one, else `ns/{labels}`; when several
   * classes would have one name (the pods of a StatefulSet, each with its own pod-name label), each is
   * that name followed by its pods: `data/StatefulSet/kafka (kafka-1)`.
   */
  name: string;
  /**
   * The workload the class stands for: the owner its members share, else the class itself (its
   * `ns/{labels}` name): what a count of workload pairs counts.
   */
  workload: string;
  namespace: string;
  labels: Readonly<Record<string, string>>;
  /** Representative end used for evaluation (not a concrete pod, so no self-traffic exception). */
  end: PodEnd;
  /** Member pods `ns/name`. */
  members: string[];
  /** Ports of interest: the members' container ports, plus ports observed towards the class. */
  ports: PortProto[];
}

/**
 * Sorts class indices ascending in place: a short list (most: a workload's callers) by insertion, with
 * no copy, a longer one by `sort`.
 */
function sortAscending(l: number[]): void {
  if (l.length > 16) {
    l.sort((x, y) => x - y);
    return;
  }
  for (let i = 1; i < l.length; i++) {
    const v = l[i]!;
    let j = i - 1;
    for (; j >= 0 && l[j]! > v; j--) l[j + 1] = l[j]!;
    l[j + 1] = v;
  }
}

/** An empty list of classes, for a label or namespace no class has. */
const NONE: readonly number[] = Object.freeze([]);

const pkey = (p: PortProto) => `${p.port}/${p.protocol}`;

function sortPorts(ps: PortProto[]): PortProto[] {
  const seen = new Map<string, PortProto>();
  for (const p of ps) seen.set(pkey(p), p);
  return [...seen.values()].sort(
    (a, b) => a.port - b.port || (a.protocol < b.protocol ? -1 : a.protocol > b.protocol ? 1 : 0),
  );
}

/** Groups the engine's pods into equivalence classes (deterministic order). */
export function podClasses(engine: Engine): PodClass[] {
  const peers = cidrPeers(engine).filter((p) => !p.np || engine.options.ipBlockMatchesPods);
  const groups = new Map<string, PodEnd[]>();
  for (const pod of engine.allPods()) {
    let sig = '';
    if (peers.length > 0 && pod.ip) {
      const ip = pod.ip;
      sig = peers
        .map((p) => (cidrContains(p.cidr, ip) && !p.except.some((e) => cidrContains(e, ip)) ? '1' : '0'))
        .join('');
    }
    const ports = sortPorts(pod.ports.map((p) => ({ port: p.port, protocol: p.protocol })));
    const named = pod.ports
      .filter((p) => p.name)
      .map((p) => `${p.name}:${p.port}/${p.protocol}`)
      .sort()
      .join(',');
    // A host-network pod kept as a pod (hostNetworkPods=pod) is never an ANP/CNP subject or pod peer,
    // and ANP/CNP `nodes` peers match it by its node's labels.
    // A node known only from its pods (no Node object) has unknown labels, unlike a node without any.
    const nodeLabels = pod.hostNetwork ? engine.nodeLabelsOf(pod) : undefined;
    const host = pod.hostNetwork
      ? `\u0000h${nodeLabels === undefined ? '?' : `=${labelsKey(nodeLabels)}`}`
      : '';
    const key = `${pod.namespace}\u0000${labelsKey(pod.labels)}\u0000${named}\u0000${ports.map(pkey).join(',')}\u0000${sig}${host}`;
    const g = groups.get(key) ?? [];
    g.push(pod);
    groups.set(key, g);
  }
  const keys = [...groups.keys()].sort();
  const base = keys.map((key) => {
    const members = groups.get(key)!;
    const rep = members[0]!;
    const owners = new Set(members.map((m) => m.owner ?? ''));
    return owners.size === 1 && rep.owner ? rep.owner : `${rep.namespace}/{${labelsKey(rep.labels)}}`;
  });
  const uses = new Map<string, number>();
  for (const name of base) uses.set(name, (uses.get(name) ?? 0) + 1);
  return keys.map((key, index) => {
    const members = groups.get(key)!;
    const rep = members[0]!;
    const workload = base[index]!;
    const name = uses.get(workload)! > 1 ? `${workload} (${podList(members)})` : workload;
    const end: PodEnd = {
      kind: 'pod',
      key: `class:${key}`,
      display: name,
      namespace: rep.namespace,
      labels: rep.labels,
      nsLabels: rep.nsLabels,
      ports: rep.ports,
      ...(rep.ip ? { ip: rep.ip } : {}),
      ...(rep.hostNetwork ? { hostNetwork: true, ...(rep.node ? { node: rep.node } : {}) } : {}),
    };
    return {
      index,
      id: key,
      name,
      workload,
      namespace: rep.namespace,
      labels: rep.labels,
      end,
      members: members.map((m) => m.key),
      ports: sortPorts(rep.ports.map((p) => ({ port: p.port, protocol: p.protocol }))),
    };
  });
}

/** The names of a class's pods, for its display name: the first three, then how many more. */
function podList(members: readonly PodEnd[]): string {
  const names = members.map((m) => m.podName ?? m.key).sort(cmp);
  return names.length <= 3 ? names.join(', ') : `${names.slice(0, 3).join(', ')} +${names.length - 3} more`;
}

/**
 * Reachability over a fixed list of classes for one engine. `sources(b, port)` returns the classes that
 * may open a connection to class b on that port: every class whose egress no policy constrains (when
 * b's ingress admits them all) plus an explicit list decided by the engine.
 */
export class ReachMatrix {
  readonly engine: Engine;
  readonly classes: readonly PodClass[];
  /** Classes whose egress no policy of any tier constrains. */
  readonly egressFree: Uint8Array;
  readonly egressFreeCount: number;
  /** Indices of the classes whose egress some policy constrains, ascending. */
  readonly egressConstrained: number[] = [];
  private readonly byNs = new Map<string, number[]>();
  /** Namespace → label key → label value → the classes of the namespace with that label, ascending. */
  private readonly byNsLabel = new Map<string, Map<string, Map<string, number[]>>>();
  private readonly nsMatch = new Map<string, string[]>();
  /** The namespaces a compiled namespace selector matches (equal selectors share one compiled). */
  private readonly nsByMatcher = new WeakMap<object, string[]>();
  /** A namespace alone, as the list of namespaces a peer without namespace selector names. */
  private readonly ownNs = new Map<string, string[]>();
  /** Dedupe marks for ingressAdmitted (a class is in the current result when mark === stamp). */
  private readonly mark: Int32Array;
  private stamp = 0;
  /** Cells decided by an explicit engine evaluation. */
  evaluations = 0;

  constructor(engine: Engine, classes: readonly PodClass[]) {
    this.engine = engine;
    this.classes = classes;
    this.egressFree = new Uint8Array(classes.length);
    this.mark = new Int32Array(classes.length);
    let free = 0;
    for (const c of classes) {
      if (engine.unconstrained(c.end, 'egress')) {
        this.egressFree[c.index] = 1;
        free++;
      } else this.egressConstrained.push(c.index);
      const l = this.byNs.get(c.namespace) ?? [];
      l.push(c.index);
      this.byNs.set(c.namespace, l);
      let byKey = this.byNsLabel.get(c.namespace);
      if (!byKey) this.byNsLabel.set(c.namespace, (byKey = new Map<string, Map<string, number[]>>()));
      for (const [k, v] of Object.entries(c.labels)) {
        let byValue = byKey.get(k);
        if (!byValue) byKey.set(k, (byValue = new Map<string, number[]>()));
        const ll = byValue.get(v);
        if (ll) ll.push(c.index);
        else byValue.set(v, [c.index]);
      }
    }
    this.egressFreeCount = free;
  }

  /** True when an ingress rule of b with no peer restriction matches (port, protocol) at b. */
  private admitsAnyPeer(b: PodClass, pp: PortProto): boolean {
    return this.engine
      .governing(b.end, 'ingress')
      .some((np) =>
        (np.ingress ?? []).some(
          (r) =>
            r.peers === null &&
            (r.ports === null ||
              r.ports.some(
                (p) =>
                  p.protocol === pp.protocol &&
                  (p.name !== undefined
                    ? b.end.ports.some(
                        (cp) => cp.name === p.name && cp.protocol === pp.protocol && cp.port === pp.port,
                      )
                    : p.port === undefined ||
                      (p.endPort !== undefined
                        ? pp.port >= p.port && pp.port <= p.endPort
                        : pp.port === p.port)),
              )),
        ),
      );
  }

  /** A superset of the classes b's ingress NetworkPolicies could admit on this protocol, or undefined for all. */
  /**
   * The classes b's ingress NetworkPolicies admit on (port, protocol), exactly, or undefined when a rule
   * has an ipBlock or no peer restriction (then every class must be checked).
   */
  private ingressAdmitted(b: PodClass, pp: PortProto): number[] | undefined {
    const out: number[] = [];
    const stamp = ++this.stamp;
    for (const np of this.engine.governing(b.end, 'ingress')) {
      for (const r of np.ingress ?? []) {
        if (!this.engine.portsMatch(r.ports, b.end, pp.port, pp.protocol)) continue;
        if (!r.peers) return undefined;
        for (const peer of r.peers) {
          if (peer.kind === 'ipBlock') return undefined;
          let nss: string[] | undefined;
          if (peer.namespaceSelector) {
            const key: object = peer.nsMatch ?? peer.namespaceSelector;
            nss = this.nsByMatcher.get(key);
            if (!nss) this.nsByMatcher.set(key, (nss = this.namespacesMatching(peer.namespaceSelector)));
          } else {
            nss = this.ownNs.get(np.namespace);
            if (!nss) this.ownNs.set(np.namespace, (nss = [np.namespace]));
          }
          // The classes carrying the selector's first matchLabels entry (its first requirement, as
          // compiled), else all of the namespace; each is then matched in full.
          const first = peer.podMatch?.[0]?.op === 'Eq' ? peer.podMatch[0] : undefined;
          for (const ns of nss) {
            const pool = first
              ? (this.byNsLabel.get(ns)?.get(first.key)?.get(first.value) ?? NONE)
              : (this.byNs.get(ns) ?? NONE);
            for (const i of pool)
              if (
                this.mark[i] !== stamp &&
                (!peer.podMatch || matches(peer.podMatch, this.classes[i]!.labels))
              ) {
                this.mark[i] = stamp;
                out.push(i);
              }
          }
        }
      }
    }
    return out;
  }

  private namespacesMatching(sel: LabelSelector): string[] {
    const k = JSON.stringify(sel);
    let r = this.nsMatch.get(k);
    if (!r) {
      r = [...this.byNs.keys()].filter((ns) => matchesSelector(sel, this.engine.nsLabels(ns)));
      this.nsMatch.set(k, r);
    }
    return r;
  }

  /**
   * Sources allowed to reach class b on (port, protocol): when `allFree` is true the set also contains
   * every egress-unconstrained class (not listed); `listed` holds the others, ascending.
   */
  sources(b: PodClass, pp: PortProto): { allFree: boolean; listed: number[] } {
    const e = this.engine;
    const listed: number[] = [];
    const tiered = e.tiered(b.end, 'ingress');
    const ingressOpen = e.unconstrained(b.end, 'ingress') || (!tiered && this.admitsAnyPeer(b, pp));
    if (ingressOpen) {
      for (const i of this.egressConstrained) {
        this.evaluations++;
        if (e.allowsDir('egress', this.classes[i]!.end, b.end, pp.port, pp.protocol)) listed.push(i);
      }
      return { allFree: true, listed };
    }
    const admitted = tiered ? undefined : this.ingressAdmitted(b, pp);
    if (admitted === undefined) {
      // Check whether the free classes are all admitted; if not, list everything explicitly.
      const all: number[] = [];
      for (const a of this.classes) {
        this.evaluations++;
        if (e.allows(a.end, b.end, pp.port, pp.protocol)) all.push(a.index);
      }
      return { allFree: false, listed: all };
    }
    // Ingress admits exactly these; each still needs its own egress to allow the connection.
    for (const i of admitted) {
      this.evaluations++;
      if (this.egressFree[i] || e.allowsDir('egress', this.classes[i]!.end, b.end, pp.port, pp.protocol))
        listed.push(i);
    }
    sortAscending(listed);
    return { allFree: false, listed };
  }

  /** Number of sources of b on pp. */
  countSources(s: { allFree: boolean; listed: number[] }): number {
    return (s.allFree ? this.egressFreeCount : 0) + s.listed.length;
  }

  /** Sources of b on any of its ports, as a sorted index list. */
  sourcesAnyPort(b: PodClass, ports: readonly PortProto[] = b.ports): number[] {
    const set = new Set<number>();
    let allFree = false;
    for (const pp of ports) {
      const s = this.sources(b, pp);
      allFree ||= s.allFree;
      for (const i of s.listed) set.add(i);
    }
    if (allFree) for (let i = 0; i < this.classes.length; i++) if (this.egressFree[i]) set.add(i);
    return [...set].sort((x, y) => x - y);
  }

  /** Totals over the whole matrix: (class pair, port) cells allowed, class pairs with any port allowed. */
  /**
   * Over the whole cluster: cells (class × class × port), the cells allowed, the class pairs with at
   * least one allowed port, and the workload pairs with at least one (a workload reaches another when
   * one of its classes reaches one of the other's).
   */
  totals(): { cells: number; allowedCells: number; allowedPairs: number; allowedWorkloadPairs: number } {
    let cells = 0;
    let allowedCells = 0;
    let allowedPairs = 0;
    let allowedWorkloadPairs = 0;
    const n = this.classes.length;
    const workloadOf = new Map<string, number>();
    const workload = this.classes.map((c) => {
      let w = workloadOf.get(c.workload);
      if (w === undefined) workloadOf.set(c.workload, (w = workloadOf.size));
      return w;
    });
    const members: number[][] = Array.from({ length: workloadOf.size }, () => []);
    for (const c of this.classes) members[workload[c.index]!]!.push(c.index);
    // Workloads with a class whose egress no policy constrains: sources wherever a port admits them all.
    const freeWorkloads = new Set<number>();
    for (const c of this.classes) if (this.egressFree[c.index]) freeWorkloads.add(workload[c.index]!);
    for (const group of members) {
      const from = new Set<number>();
      let groupFree = false;
      for (const index of group) {
        const b = this.classes[index]!;
        cells += n * b.ports.length;
        const set = new Set<number>();
        let allFree = false;
        for (const pp of b.ports) {
          const s = this.sources(b, pp);
          allowedCells += this.countSources(s);
          allFree ||= s.allFree;
          for (const i of s.listed) set.add(i);
        }
        allowedPairs += allFree
          ? this.egressFreeCount + [...set].filter((i) => !this.egressFree[i]).length
          : set.size;
        groupFree ||= allFree;
        for (const i of set) from.add(workload[i]!);
      }
      allowedWorkloadPairs += groupFree
        ? freeWorkloads.size + [...from].filter((w) => !freeWorkloads.has(w)).length
        : from.size;
    }
    return { cells, allowedCells, allowedPairs, allowedWorkloadPairs };
  }
}

// ---------- proposal verification ----------

export interface ObservedConnection {
  from: Endpoint;
  to: Endpoint;
  port: number;
  protocol?: L4Protocol;
  /** Free-form evidence carried through to the report (flow count, first seen, ...). */
  evidence?: unknown;
}

export interface ExcessTuple {
  from: string;
  to: string;
  port: number;
  protocol: L4Protocol;
}

export interface VerifyReport {
  /** Observed connections the proposal would drop, with the reason. */
  blocked: { connection: ObservedConnection; reason: string }[];
  /** Number of observed connections the proposal admits. */
  allowedObserved: number;
  /** Allowed (class pair, port) tuples never observed, sorted; at most `maxExcess` listed. */
  excess: ExcessTuple[];
  excessCount: number;
  /** Allowed (source class, destination class, port) tuples over the cluster's classes. */
  allowedTuples: number;
  /** Of those, the ones observed. */
  observedTuples: number;
  /** excessCount / allowedTuples (0 when nothing is allowed): share of allowed reachability never observed. */
  permissiveness: number;
  classes: number;
}

export interface VerifyOptions {
  /** Cap on the excess tuples listed (all are counted). Default 1000. */
  maxExcess?: number;
  /** Classes to compute excess over; default the engine's pod classes. */
  classes?: PodClass[];
}

/**
 * Verifies a proposal (an engine built from the cluster plus the proposed policies) against observed
 * connections: every observed connection must be admitted; allowed class-pair/port tuples that were
 * never observed are excess reachability.
 */
export function verifyProposal(
  engine: Engine,
  observed: readonly ObservedConnection[],
  opts: VerifyOptions = {},
): VerifyReport {
  const maxExcess = opts.maxExcess ?? 1000;
  const classes = opts.classes ?? podClasses(engine);
  const byNsLabels = new Map<string, number[]>();
  for (const c of classes) {
    const k = `${c.namespace}\u0000${labelsKey(c.labels)}`;
    const l = byNsLabels.get(k) ?? [];
    l.push(c.index);
    byNsLabels.set(k, l);
  }
  const memberOf = new Map<string, number>();
  for (const c of classes) for (const m of c.members) memberOf.set(m, c.index);

  // Class-form endpoints without ports or IP stand for the cluster's class with the same labels: by
  // that key. Other endpoints by the endpoint object (a caller may give one object for many
  // connections); a Map, not a WeakMap, as it lives only for this call.
  const byClassKey = new Map<string, ResolvedEnd>();
  const resolved = new Map<object, ResolvedEnd>();
  /** Where an endpoint of observed connection i (0-based) is, for an error message. */
  const where = (i: number) => `observed connection ${i + 1}`;
  const resolve = (ep: Endpoint, i: number, side: string): ResolvedEnd => {
    if ('labels' in ep && !ep.namedPorts && ep.ip === undefined && typeof ep.namespace === 'string') {
      const k = `${ep.namespace}\u0000${labelsKey(ep.labels)}`;
      let r = byClassKey.get(k);
      if (!r) {
        const hit = byNsLabels.get(k);
        r = hit && hit.length > 0 ? classes[hit[0]!]!.end : engine.resolve(ep, `${where(i)}: ${side}`);
        byClassKey.set(k, r);
      }
      return r;
    }
    let r = resolved.get(ep);
    if (r) return r;
    r = engine.resolve(ep, `${where(i)}: ${side}`);
    // A class given without container ports takes them from the cluster's class with its labels.
    if (r.kind === 'pod' && !r.podName && !('namedPorts' in ep && ep.namedPorts)) {
      const hit = byNsLabels.get(`${r.namespace}\u0000${labelsKey(r.labels)}`);
      if (hit && hit.length > 0) r = { ...classes[hit[0]!]!.end, display: r.display };
    }
    resolved.set(ep, r);
    return r;
  };
  const classIdx = (r: ResolvedEnd): number[] => {
    if (r.kind !== 'pod') return [];
    if (r.podName) {
      const i = memberOf.get(r.key);
      return i === undefined ? [] : [i];
    }
    return byNsLabels.get(`${r.namespace}\u0000${labelsKey(r.labels)}`) ?? [];
  };

  const endIndex = new Map<ResolvedEnd, number>();
  for (const c of classes) endIndex.set(c.end, c.index);
  const n = classes.length;
  const PROTO_IDX: Record<L4Protocol, number> = { TCP: 0, UDP: 1, SCTP: 2 };
  // The (port, protocol) pairs observed, numbered as first seen, so that the keys below stay small
  // integers (a key past 2^31 is a boxed double: allocated, and slower to hash).
  const portNumbers = new Map<number, number>();
  const portNumber = (port: number, protocol: L4Protocol) => portNumbers.get(port * 4 + PROTO_IDX[protocol]);
  // (destination class, observed port number) and (that, source class), each packed into one safe integer.
  const destKey = (b: number, p: number) => p * n + b;
  const tupleKey = (dk: number, a: number) => dk * n + a;
  // Pass 1: resolve every connection, collect observed tuples and the ports of interest they add.
  // Per connection: its resolved ends and protocol, and its ends' class indices when both are classes
  // (-1 otherwise).
  const srcs: ResolvedEnd[] = new Array<ResolvedEnd>(observed.length);
  const dsts: ResolvedEnd[] = new Array<ResolvedEnd>(observed.length);
  const protocols: L4Protocol[] = new Array<L4Protocol>(observed.length);
  const srcClass = new Int32Array(observed.length).fill(-1);
  const dstClass = new Int32Array(observed.length).fill(-1);
  const observedTuples = new Set<number>();
  const extraPorts = new Map<number, PortProto[]>();
  const needed = new Set<number>();
  /** Observed source classes per (destination class, port, protocol). */
  const obsSources = new Map<number, number[]>();
  /** Class a was seen connecting to class b on (port, protocol), numbered p. */
  const observe = (a: number, b: number, p: number, port: number, protocol: L4Protocol) => {
    const dk = destKey(b, p);
    const k = tupleKey(dk, a);
    if (observedTuples.has(k)) return;
    observedTuples.add(k);
    const os = obsSources.get(dk);
    if (os) os.push(a);
    else obsSources.set(dk, [a]);
    const bp = classes[b]!.ports;
    let known = false;
    for (let j = 0; j < bp.length && !known; j++)
      known = bp[j]!.port === port && bp[j]!.protocol === protocol;
    if (!known) {
      const l = extraPorts.get(b) ?? [];
      l.push({ port, protocol });
      extraPorts.set(b, l);
    }
  };
  for (let i = 0; i < observed.length; i++) {
    const conn = observed[i]!;
    const src = resolve(conn.from, i, 'from');
    const dst = resolve(conn.to, i, 'to');
    const protocol = conn.protocol ?? 'TCP';
    if (!Number.isInteger(conn.port) || conn.port < 1 || conn.port > 65535)
      throw new InputError(`${where(i)}: port ${String(conn.port)} is not a port number (1-65535)`);
    // Not `PROTO_IDX[protocol] === undefined`, which lets through what every object has (`toString`).
    if (protocol !== 'TCP' && protocol !== 'UDP' && protocol !== 'SCTP')
      throw new InputError(`${where(i)}: protocol ${JSON.stringify(protocol)} is not one of TCP, UDP, SCTP`);
    // Class-form ends resolve to the class's own end: their verdict is the class verdict.
    const ai = endIndex.get(src);
    const bi = endIndex.get(dst);
    srcs[i] = src;
    dsts[i] = dst;
    protocols[i] = protocol;
    const pk = conn.port * 4 + PROTO_IDX[protocol];
    let p = portNumbers.get(pk);
    if (p === undefined) portNumbers.set(pk, (p = portNumbers.size));
    if (ai !== undefined && bi !== undefined) {
      srcClass[i] = ai;
      dstClass[i] = bi;
      needed.add(destKey(bi, p));
      observe(ai, bi, p, conn.port, protocol);
      continue;
    }
    const as = ai !== undefined ? [ai] : classIdx(src);
    const bs = bi !== undefined ? [bi] : classIdx(dst);
    for (const a of as) for (const b of bs) observe(a, b, p, conn.port, protocol);
  }
  // Pass 2: allowed sources of every (class, port of interest); excess is what was never observed.
  const withPorts = classes.map((c) => {
    const extra = extraPorts.get(c.index);
    return extra ? { ...c, ports: sortPorts([...c.ports, ...extra]) } : c;
  });
  const m = new ReachMatrix(engine, withPorts);
  let allowedTuples = 0;
  let excessCount = 0;
  let observedAllowed = 0;
  const excess: ExcessTuple[] = [];
  const admitted = new Map<number, { allFree: boolean; listed: number[]; set?: Set<number> }>();
  for (const b of withPorts) {
    for (const pp of b.ports) {
      const s = m.sources(b, pp);
      const count = m.countSources(s);
      allowedTuples += count;
      // -1: a port of interest no connection was observed on (no key is negative).
      const p = portNumber(pp.port, pp.protocol);
      const dk = p === undefined ? -1 : destKey(b.index, p);
      const set = s.listed.length > 32 ? new Set(s.listed) : undefined;
      if (needed.has(dk)) admitted.set(dk, { allFree: s.allFree, listed: s.listed, ...(set ? { set } : {}) });
      const isAllowed = (a: number) =>
        (s.allFree && m.egressFree[a] === 1) || (set ? set.has(a) : s.listed.includes(a));
      let seenHere = 0;
      const seen = obsSources.get(dk);
      if (seen) for (let j = 0; j < seen.length; j++) if (isAllowed(seen[j]!)) seenHere++;
      observedAllowed += seenHere;
      excessCount += count - seenHere;
      // List excess tuples (in source order) until the cap is reached.
      if (excess.length < maxExcess && count > seenHere) {
        const add = (a: number) => {
          if (dk >= 0 && observedTuples.has(tupleKey(dk, a))) return;
          excess.push({ from: withPorts[a]!.name, to: b.name, port: pp.port, protocol: pp.protocol });
        };
        if (s.allFree && m.egressFreeCount > 0) {
          for (let a = 0; a < withPorts.length && excess.length < maxExcess; a++) if (isAllowed(a)) add(a);
        } else for (let j = 0; j < s.listed.length && excess.length < maxExcess; j++) add(s.listed[j]!);
      }
    }
  }
  // Pass 3: the verdict of every observed connection, in order.
  const blocked: VerifyReport['blocked'] = [];
  let allowedObserved = 0;
  for (let i = 0; i < observed.length; i++) {
    const conn = observed[i]!;
    const ai = srcClass[i]!;
    const bi = dstClass[i]!;
    const protocol = protocols[i]!;
    let ok: boolean;
    if (ai >= 0 && bi >= 0) {
      const adm = admitted.get(destKey(bi, portNumber(conn.port, protocol)!))!;
      ok = (adm.allFree && m.egressFree[ai] === 1) || (adm.set ? adm.set.has(ai) : adm.listed.includes(ai));
    } else ok = engine.allows(srcs[i]!, dsts[i]!, conn.port, protocol);
    if (ok) allowedObserved++;
    else
      blocked.push({
        connection: conn,
        reason: engine.explain(srcs[i]!, dsts[i]!, conn.port, protocol).reason,
      });
  }
  excess.sort(
    (x, y) => cmp(x.from, y.from) || cmp(x.to, y.to) || x.port - y.port || cmp(x.protocol, y.protocol),
  );
  return {
    blocked,
    allowedObserved,
    excess,
    excessCount,
    allowedTuples,
    observedTuples: observedAllowed,
    permissiveness: allowedTuples === 0 ? 0 : excessCount / allowedTuples,
    classes: withPorts.length,
  };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The order blast radius lists classes in, by what it prints: namespace, then workload name, then kind,
 * then the whole display name (a StatefulSet's classes, by their pods); text in `compareText` order. A
 * class no workload owns (`ns/{labels}`) has no kind and its labels for a name. Returns each class's
 * rank (by index).
 */
export function displayRanks(classes: readonly PodClass[]): number[] {
  const parts = classes.map((c) => {
    const rest = c.workload.startsWith(`${c.namespace}/`)
      ? c.workload.slice(c.namespace.length + 1)
      : c.workload;
    const slash = rest.startsWith('{') ? -1 : rest.indexOf('/');
    return {
      namespace: c.namespace,
      kind: slash < 0 ? '' : rest.slice(0, slash),
      name: slash < 0 ? rest : rest.slice(slash + 1),
      display: c.name,
    };
  });
  const order = classes.map((_, i) => i);
  order.sort((x, y) => {
    const a = parts[x]!;
    const b = parts[y]!;
    return (
      compareText(a.namespace, b.namespace) ||
      compareText(a.name, b.name) ||
      compareText(a.kind, b.kind) ||
      compareText(a.display, b.display) ||
      x - y
    );
  });
  const rank = new Array<number>(classes.length);
  order.forEach((c, r) => (rank[c] = r));
  return rank;
}

// ---------- blast radius ----------

export interface ReachSide {
  /** Classes the workload can open connections to, with the allowed ports. */
  reaches: { to: string; ports: string[] }[];
  /**
   * How many workloads (or peers: a class of pods no one workload owns, `ns/{labels}`) `reaches` holds:
   * a StatefulSet once, however many classes its pods make (each listed with its pods).
   */
  canReach: number;
  /** Classes that can open connections to the workload, with the allowed ports. */
  reachedFrom: { from: string; ports: string[] }[];
  /** How many workloads (or peers) `reachedFrom` holds, counted as `canReach` counts. */
  reachableFrom: number;
  /** Shortest multi-hop paths from internet-exposed classes to the workload (at most `maxPaths`). */
  exposedPaths: string[][];
  /** The search for exposed paths stopped at `maxPaths`: more exposed classes may reach the workload. */
  exposedPathsCut: boolean;
  /** Class pairs with at least one allowed port, over the whole cluster. */
  reachablePairs: number;
  /** Workload pairs with at least one allowed port between their pods, over the whole cluster. */
  reachableWorkloadPairs: number;
}

export interface BlastRadius {
  workload: string;
  before: ReachSide;
  after?: ReachSide;
}

/**
 * The outside addresses that decide which classes are internet-exposed when none is given: one of each
 * family (documentation addresses, RFC 5737 and RFC 3849), the IPv6 one in a cluster with IPv6 pods.
 */
export const DEFAULT_INTERNET_PROBES = { ipv4: '203.0.113.10', ipv6: '2001:db8:ffff::10' } as const;

export interface BlastOptions {
  /**
   * An address outside the cluster used to decide which classes are internet-exposed: those whose
   * ingress admits it. Default DEFAULT_INTERNET_PROBES's IPv4 address, and in a cluster with IPv6 pod
   * addresses its IPv6 one too (a class is exposed when either is admitted).
   */
  internetProbe?: string;
  /** What messages call the probe: the option it came from. Default `internetProbe`. */
  internetProbeName?: string;
  maxPaths?: number;
}

/**
 * What a workload can reach and be reached from, under `before` (the cluster's current policies) and
 * optionally `after` (with a proposal), plus multi-hop paths to it from classes whose ingress admits an
 * outside address, and the number of reachable class pairs.
 */
export function blastRadius(
  before: Engine,
  after: Engine | undefined,
  workload: Endpoint,
  opts: BlastOptions = {},
): BlastRadius {
  const target = before.resolve(workload, 'workload');
  if (target.kind !== 'pod') throw new InputError(`workload: ${target.display} is not a pod workload`);
  // A pod's or node's address would find the workloads that pod or node may reach, not the internet's.
  const given = opts.internetProbeName ?? 'internetProbe';
  const probeName = opts.internetProbe !== undefined ? given : `the default ${given}`;
  const probeTexts =
    opts.internetProbe !== undefined
      ? [opts.internetProbe]
      : before.hasIPv6Pods() || after?.hasIPv6Pods()
        ? [DEFAULT_INTERNET_PROBES.ipv4, DEFAULT_INTERNET_PROBES.ipv6]
        : [DEFAULT_INTERNET_PROBES.ipv4];
  for (const engine of after ? [before, after] : [before])
    for (const probeText of probeTexts) {
      const probe = engine.resolveIP(probeText, probeName);
      if (probe.kind === 'pod' || probe.node !== undefined || probe.key.startsWith('hostpod:'))
        throw new InputError(
          `${probeName}: ${probeText} is an address of ${probe.display}, not an outside address`,
        );
      // An address of the pod network that no pod holds now is no outside address either: policies
      // written for the internet (recommend's: 0.0.0.0/0 minus the pod networks) leave it out.
      const net = probe.kind === 'ip' ? engine.podNetworkOf(probe.ip) : undefined;
      if (net)
        throw new InputError(
          `${probeName}: ${probeText} is in the pod network ${net.cidr} (${net.source}), not an outside address: no pod holds it now, but traffic from it is pod traffic, which policies meant for the internet leave out (give an address outside the pod network)`,
        );
    }
  const named = (engine: Engine) =>
    sideFor(engine, engine.resolve(workload, 'workload') as PodEnd, opts, probeTexts);
  const b = named(before);
  const a = after ? named(after) : undefined;
  return {
    workload: b.name,
    before: b.side,
    ...(a ? { after: a.side } : {}),
  };
}

function sideFor(
  engine: Engine,
  target: PodEnd,
  opts: BlastOptions,
  probeTexts: readonly string[],
): { name: string; side: ReachSide } {
  const base = podClasses(engine);
  // The target as its own class (it may also be one of the cluster's classes).
  const tIndex = base.findIndex(
    (c) =>
      (target.podName ? c.members.includes(target.key) : false) ||
      (c.namespace === target.namespace && labelsKey(c.labels) === labelsKey(target.labels)),
  );
  let classes = base;
  let t: PodClass;
  if (tIndex >= 0) t = base[tIndex]!;
  else {
    t = {
      index: base.length,
      id: `target:${target.key}`,
      name: target.display,
      workload: target.owner ?? target.display,
      namespace: target.namespace,
      labels: target.labels,
      end: { ...target, podName: undefined, key: `target:${target.key}` },
      members: [],
      ports: sortPorts(target.ports.map((p) => ({ port: p.port, protocol: p.protocol }))),
    };
    classes = [...base, t];
  }
  const m = new ReachMatrix(engine, classes);
  // Everything is listed, and the exposed paths searched, in the order of what is printed.
  const rank = displayRanks(classes);
  const byRank = (x: number, y: number) => rank[x]! - rank[y]!;
  const shown = classes.map((c) => c.index).sort(byRank);
  const reaches: ReachSide['reaches'] = [];
  const reachedWorkloads = new Set<string>();
  for (const i of shown) {
    const b = classes[i]!;
    const ports = b.ports.filter((pp) => engine.allows(t.end, b.end, pp.port, pp.protocol)).map(pkey);
    if (ports.length > 0) {
      reaches.push({ to: b.name, ports });
      reachedWorkloads.add(b.workload);
    }
  }
  const fromPorts = new Map<number, string[]>();
  for (const pp of t.ports) {
    const s = m.sources(t, pp);
    const listed = new Set(s.listed);
    for (let a = 0; a < classes.length; a++)
      if ((s.allFree && m.egressFree[a]) || listed.has(a)) {
        const l = fromPorts.get(a) ?? [];
        l.push(pkey(pp));
        fromPorts.set(a, l);
      }
  }
  const reachedFrom = [...fromPorts.entries()]
    .sort((x, y) => byRank(x[0], y[0]))
    .map(([a, ports]) => ({ from: classes[a]!.name, ports }));
  const fromWorkloads = new Set([...fromPorts.keys()].map((a) => classes[a]!.workload));
  // Internet-exposed classes: ingress admits an outside address (of either family) on one of their ports.
  const probes = probeTexts.map((t) => engine.resolveIP(t, opts.internetProbeName ?? 'internetProbe'));
  const exposed = new Set(
    classes
      .filter((c) =>
        probes.some((probe) => c.ports.some((pp) => engine.allows(probe, c.end, pp.port, pp.protocol))),
      )
      .map((c) => c.index),
  );
  // Backward BFS from the target over "a can reach b on some port", one hop count at a time: the
  // paths are listed shortest first, those of one length by the class they start from (display
  // order), and each goes on through the first class (in that order) of the hop count before that
  // reaches it. The search stops after the hop count that brought the paths to maxPaths.
  const prev = new Map<number, number>();
  const seen = new Set<number>([t.index]);
  let frontier = [t.index];
  const maxPaths = opts.maxPaths ?? 20;
  const paths: string[][] = [];
  if (exposed.has(t.index)) paths.push([t.name]);
  while (frontier.length > 0 && paths.length < maxPaths) {
    const next: number[] = [];
    for (const b of frontier) {
      for (const a of m.sourcesAnyPort(classes[b]!)) {
        if (seen.has(a)) continue;
        seen.add(a);
        prev.set(a, b);
        next.push(a);
      }
    }
    next.sort(byRank);
    for (const a of next) {
      if (!exposed.has(a) || paths.length >= maxPaths) continue;
      const path = [classes[a]!.name];
      let cur = a;
      while (prev.has(cur)) {
        cur = prev.get(cur)!;
        path.push(classes[cur]!.name);
      }
      paths.push(path);
    }
    frontier = next;
  }
  const totals = m.totals();
  return {
    name: t.name,
    side: {
      reaches,
      canReach: reachedWorkloads.size,
      reachedFrom,
      reachableFrom: fromWorkloads.size,
      exposedPaths: paths,
      exposedPathsCut: paths.length >= maxPaths,
      reachablePairs: totals.allowedPairs,
      reachableWorkloadPairs: totals.allowedWorkloadPairs,
    },
  };
}
