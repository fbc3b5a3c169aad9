/**
 * The proof step of `recommend`: the proposal, applied on top of the cluster's own policies, must admit
 * every observed connection: none blocked, and none it could not check. Observed graph edges become engine queries between real pods (or
 * addresses) and `verifyProposal` does the rest, including excess reachability.
 */
import type { GraphEdge, ServiceGraph } from '../graph/types.ts';
import type { Workload } from '../identity/types.ts';
import type { ClusterSnapshot } from '../model/snapshot.ts';
import { engineFromSnapshot } from '../verify/engine.ts';
import type { Engine } from '../verify/engine.ts';
import type { ObservedConnection, PodClass, VerifyReport } from '../verify/reach.ts';
import { podClasses, verifyProposal } from '../verify/reach.ts';
import type { Endpoint, EngineOptions, L4Protocol } from '../verify/types.ts';
import { PROTOCOLS } from '../verify/types.ts';
import { edgeWasAllowed, MANAGED_BY_LABEL, MANAGED_BY_VALUE } from './index.ts';
import type { Proposal } from './types.ts';

export interface ProofInput {
  snapshot: ClusterSnapshot;
  workloads: ReadonlyMap<string, Workload>;
  graph: ServiceGraph;
  proposal: Proposal;
  /**
   * The API server's endpoint addresses: a connection to or from it is checked at each, as one to or from
   * a host-network workload is at each address its pods hold (`Workload.hostIPs`).
   */
  apiserverIPs: readonly string[];
  /** Workload id of each pod, by `namespace/name`: excess reachability is counted between workloads. */
  podWorkload: ReadonlyMap<string, string>;
}

export interface Proof {
  /** `allowedObserved` counts edges, as `checked` does: an edge is admitted when it is at every address. */
  report: VerifyReport;
  /**
   * Observed connections checked: every allowed edge on TCP, UDP or SCTP whose ends the engine can place,
   * those the proposal could not write a rule for included. An edge to or from the API server or a
   * host-network workload counts once, however many of its addresses it is checked at.
   */
  checked: number;
  /**
   * Blocked connections as `edge id: reason`, sorted: those the engine checked and finds blocked; `checked
   * - blocked.length` is `report.allowedObserved`. An edge of the API server or a host-network workload
   * checked at several of their addresses names the first it is blocked at.
   */
  blocked: string[];
  /**
   * Observed connections that could not be checked, as `edge id: why`, sorted: allowed edges on TCP, UDP or
   * SCTP with an end the engine cannot place (no address is known for it) while the proposal isolates one
   * of their ends. Not proven allowed, so a proposal with one is not written, as with a blocked one; they
   * are not in `checked`, so checked + unchecked is every observed connection the proof is about.
   */
  unchecked: string[];
  /**
   * Edges the proof does not count, which the proposal blocks all the same, as `edge id: why`, sorted:
   * edges whose every observation was dropped (the engine finds them still blocked), edges on a protocol
   * NetworkPolicy cannot express (ICMP) with an end the proposal isolates, and edges to the ClusterIP of a
   * Service with no backend in the snapshot (no rule can admit one) with an end the proposal isolates.
   */
  willBeBlocked: string[];
}

/** What is needed to turn graph node ids into engine endpoints. */
export interface EndpointContext {
  workloads: ReadonlyMap<string, Workload>;
  /** Graph nodes by id (external peers carry their address). */
  nodes: ReadonlyMap<string, ServiceGraph['nodes'][number]>;
  /** The addresses an edge of the API server is checked at: each of them. */
  apiserverIPs: readonly string[];
}

/**
 * The engine endpoints standing for a graph node: a concrete pod of a workload when the snapshot has one
 * (the engine then knows its node and container ports), the workload's pod template as a class otherwise,
 * the address of an external peer; none when no query can represent it.
 *
 * A host-network workload is every address its pods hold, their nodes' (both families of a dual-stack
 * node, each node of a DaemonSet): its graph node stands for all of its pods, and the edge does not say
 * which of them a connection reached or came from, so an edge is admitted only if it is at each.
 *
 * The API server is every one of its addresses. Its graph node stands for all of them, of both families
 * (an edge does not say which its connections reached), and a connection to the kubernetes Service's
 * ClusterIP may reach any endpoint of the ClusterIP's family: an edge is admitted only if it is at each.
 * One address would do only while every address is in the rule and nothing else tells them apart; a
 * cluster-wide deny of one of them, or a proposal written before an address was added, does.
 */
export function graphEndpoints(id: string, ctx: EndpointContext): Endpoint[] {
  const w = ctx.workloads.get(id);
  if (w) {
    if (w.hostNetwork) return (w.hostIPs ?? []).map((ip) => ({ ip }));
    if (w.pods.length > 0) return [{ namespace: w.namespace, pod: w.pods[0]! }];
    const namedPorts = w.namedPorts.map((p) => ({
      name: p.name,
      port: p.port,
      ...((PROTOCOLS as readonly string[]).includes(p.protocol)
        ? { protocol: p.protocol as L4Protocol }
        : {}),
    }));
    return [{ namespace: w.namespace, labels: w.labels, namedPorts, name: w.id }];
  }
  const n = ctx.nodes.get(id);
  // The ClusterIP of a Service with no backend: no query can stand for the pods it would reach.
  if (n?.service !== undefined) return [];
  if (n?.kind === 'kube-apiserver') {
    if (ctx.apiserverIPs.length > 0) return ctx.apiserverIPs.map((ip) => ({ ip }));
    return n.ip ? [{ ip: n.ip }] : [];
  }
  return n?.ip ? [{ ip: n.ip }] : [];
}

/**
 * The (source, destination) pairs of two ends' endpoints an edge on `port`/`protocol` is checked at, in
 * the order of their cross product (by source, then destination): every pair with an end `engine` does
 * not give as an address (a pod, a class, an address a pod holds, an endpoint it cannot resolve), and of
 * the pairs of two addresses (the API server's, a host-network workload's under hostNetworkPods=node, a
 * node's, an outside peer's), one.
 *
 * No policy selects an address, so the engine allows a connection between two of them unless it refuses
 * an end, which it does for that end alone (see `Engine.refuses`; `allows`, the proof's check, refuses
 * none): the pair of the first address of each end it does not refuse answers for every pair of two
 * addresses. When it refuses every address of an end, it refuses every such pair, and one of them
 * stands for all. The pairs blocked, the first of them, and whether any pair is answered are then those
 * of the cross product, but an edge between two host-network DaemonSets on N dual-stack nodes is one
 * pair asked and at most 4N checks of an address, not (2N)² pairs.
 */
export function endpointPairs(
  engine: Engine,
  from: readonly Endpoint[],
  to: readonly Endpoint[],
  port: number,
  protocol: L4Protocol,
): [Endpoint, Endpoint][] {
  const isAddress = (ep: Endpoint): boolean => {
    try {
      return engine.resolve(ep).kind === 'ip';
    } catch {
      // Paired with every endpoint of the other end, as in the cross product: each pair fails alike.
      return false;
    }
  };
  const fromAddress = from.map(isAddress);
  const toAddress = to.map(isAddress);
  /** The index of the address of `side` standing for all: the first not refused, else the first. */
  const standIn = (eps: readonly Endpoint[], address: readonly boolean[], side: 'from' | 'to'): number => {
    let first = -1;
    for (let i = 0; i < eps.length; i++) {
      if (!address[i]) continue;
      if (first < 0) first = i;
      if (!engine.refuses(eps[i]!, side, port, protocol)) return i;
    }
    return first;
  };
  const fromStandIn = standIn(from, fromAddress, 'from');
  const toStandIn = standIn(to, toAddress, 'to');
  const notAddresses = to.flatMap((_, j) => (toAddress[j] ? [] : [j]));
  const out: [Endpoint, Endpoint][] = [];
  for (let i = 0; i < from.length; i++) {
    const f = from[i]!;
    if (!fromAddress[i]) {
      for (const t of to) out.push([f, t]);
      continue;
    }
    for (const j of i === fromStandIn && toStandIn >= 0
      ? [...notAddresses, toStandIn].sort((a, b) => a - b)
      : notAddresses)
      out.push([f, to[j]!]);
  }
  return out;
}

/**
 * The address each end of an edge checked at several addresses (the API server's, a host-network
 * workload's) was checked at, as a note for a reason: ` (at the API server address 172.18.0.3)`, ` (at
 * the node address 192.168.0.11)`, both joined by "and" when both ends are; empty when neither end has
 * several addresses.
 */
export function addressNote(
  pair: readonly [Endpoint, Endpoint],
  from: readonly Endpoint[],
  to: readonly Endpoint[],
  ends: readonly [string, string],
  ctx: EndpointContext,
): string {
  const notes: string[] = [];
  for (const [end, all, id] of [
    [pair[0], from, ends[0]],
    [pair[1], to, ends[1]],
  ] as const) {
    if (all.length < 2 || !('ip' in end)) continue;
    const what = ctx.workloads.get(id)?.hostNetwork ? 'the node address' : 'the API server address';
    notes.push(`${what} ${end.ip}`);
  }
  return notes.length === 0 ? '' : ` (at ${notes.join(' and ')})`;
}

/**
 * The engine's pod classes merged per workload: pods of one workload differ only in generated labels
 * (pod-template-hash, StatefulSet pod names), which no proposed policy selects on, so one class per
 * workload makes excess reachability a count of workload pairs and ports.
 */
export function workloadClasses(engine: Engine, podWorkload: ReadonlyMap<string, string>): PodClass[] {
  const out: PodClass[] = [];
  const byWorkload = new Map<string, PodClass>();
  for (const c of podClasses(engine)) {
    const id = podWorkload.get(c.members[0]!);
    const merged = id ? byWorkload.get(id) : undefined;
    if (merged) {
      merged.members.push(...c.members);
      continue;
    }
    const cls: PodClass = {
      ...c,
      index: out.length,
      members: [...c.members],
      ...(id ? { name: id, workload: id } : {}),
    };
    if (id) byWorkload.set(id, cls);
    out.push(cls);
  }
  return out;
}

export function proveProposal(input: ProofInput, options?: EngineOptions): Proof {
  const notWritten = new Map<string, string[]>();
  for (const n of input.proposal.notExpressible) {
    const l = notWritten.get(n.edge);
    if (l) l.push(n.reason);
    else notWritten.set(n.edge, [n.reason]);
  }
  const existing = input.snapshot.networkPolicies.filter(
    (p) => p.metadata.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY_VALUE,
  );
  const engine = engineFromSnapshot(
    { ...input.snapshot, networkPolicies: [...existing, ...input.proposal.policies] },
    options,
  );
  const ctx: EndpointContext = {
    workloads: input.workloads,
    nodes: new Map(input.graph.nodes.map((n) => [n.id, n])),
    apiserverIPs: input.apiserverIPs,
  };
  const workloadIds = new Set(input.workloads.keys());
  /** Does a proposed policy (the default deny or the workload's own) isolate this graph node? */
  const isolated = (id: string) => (input.proposal.byWorkload[id]?.length ?? 0) > 0;
  const observed: ObservedConnection[] = [];
  const unplaced: string[] = [];
  const willBeBlocked: string[] = [];
  /** The address each connection of an edge checked at several was checked at (API server, node). */
  const notes = new Map<ObservedConnection, string>();
  let checked = 0;
  for (const e of input.graph.edges) {
    const protocol = isL4(e.protocol) ? e.protocol : undefined;
    const from = graphEndpoints(e.source, ctx);
    const to = graphEndpoints(e.target, ctx);
    // The ends of one node are all pods or classes, or all addresses: the first says which.
    const f0 = from[0];
    const t0 = to[0];
    const placed =
      !!f0 && !!t0 && !('ip' in f0 && 'ip' in t0 && !('namespace' in f0) && !('namespace' in t0));
    const touches = isolated(e.source) || isolated(e.target);
    // Node traffic to a pod (kubelet probes) is left out: its own node is admitted without a rule, and
    // which node an edge's connections came from for which pod, the edge does not say.
    if (ctx.nodes.get(e.source)?.kind === 'node' && workloadIds.has(e.target)) continue;
    if (!edgeWasAllowed(e)) {
      // Never allowed: it stays out of the proof, and is named when the proposal keeps it blocked.
      if (!touches) continue;
      if (
        protocol &&
        placed &&
        endpointPairs(engine, from, to, e.port, protocol).every(([f, t]) =>
          engine.allows(engine.resolve(f), engine.resolve(t), e.port, protocol),
        )
      )
        continue;
      willBeBlocked.push(`${e.id}: every observation was dropped; the proposal does not allow it either`);
      continue;
    }
    if (!protocol) {
      if (touches)
        willBeBlocked.push(
          `${e.id}: NetworkPolicy cannot allow ${e.protocol}, and the proposal isolates ${[e.source, e.target].filter(isolated).join(' and ')}`,
        );
      continue;
    }
    // The ClusterIP of a Service with no backend: it reaches no pod as of the snapshot, and no rule can
    // admit it (policies see it only once translated), so it is not checked; named when the proposal
    // isolates an end, as it then blocks it once the Service has backends.
    const unbacked = [e.source, e.target]
      .map((id) => ctx.nodes.get(id))
      .find((n) => n?.service !== undefined);
    if (unbacked !== undefined) {
      if (touches)
        willBeBlocked.push(
          `${e.id}: ${unbacked.ip} is the ClusterIP of Service ${unbacked.service}, which has no backend in the snapshot: no rule can admit it, and the proposal isolates ${[e.source, e.target].filter(isolated).join(' and ')}, so it is blocked once the Service has backends`,
        );
      continue;
    }
    if (!placed) {
      if (touches && (from.length === 0 || to.length === 0))
        unplaced.push(
          `${e.id}: cannot be checked: no address is known for ${from.length === 0 ? e.source : e.target}, so no rule can admit it` +
            notWrittenNote(notWritten.get(e.id)),
        );
      continue;
    }
    checked++;
    if (from.length === 1 && to.length === 1) {
      observed.push({ from: from[0]!, to: to[0]!, port: e.port, protocol, evidence: e satisfies GraphEdge });
      continue;
    }
    for (const pair of endpointPairs(engine, from, to, e.port, protocol)) {
      const c: ObservedConnection = { from: pair[0], to: pair[1], port: e.port, protocol, evidence: e };
      observed.push(c);
      notes.set(c, addressNote(pair, from, to, [e.source, e.target], ctx));
    }
  }
  const report = verifyProposal(engine, observed, { classes: workloadClasses(engine, input.podWorkload) });
  // One line per blocked edge: its first blocked connection's reason, and the address it was checked at.
  const blockedEdges = new Map<string, string>();
  for (const b of report.blocked) {
    const id = (b.connection.evidence as GraphEdge).id;
    if (blockedEdges.has(id)) continue;
    blockedEdges.set(
      id,
      `${id}: ${b.reason}${notes.get(b.connection) ?? ''}${notWrittenNote(notWritten.get(id))}`,
    );
  }
  return {
    report: { ...report, allowedObserved: checked - blockedEdges.size },
    checked,
    blocked: [...blockedEdges.values()].sort(),
    unchecked: unplaced.sort(),
    willBeBlocked: willBeBlocked.sort(),
  };
}

/** Is the proposal not proven to admit every observed connection (one blocked, or one not checked)? */
export function proofFails(proof: Proof): boolean {
  return proof.blocked.length > 0 || proof.unchecked.length > 0;
}

function isL4(p: string): p is L4Protocol {
  return (PROTOCOLS as readonly string[]).includes(p);
}

/** Why the proposal wrote no rule for a blocked edge, when it says. */
function notWrittenNote(reasons: readonly string[] | undefined): string {
  return reasons ? ` (no rule written: ${reasons.join('; ')})` : '';
}
