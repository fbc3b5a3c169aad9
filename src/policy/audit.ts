/**
 * The audit of NetworkPolicies against observed traffic: the edges of a service graph replayed against
 * the cluster before and after a change of its policies with the semantics engine, and the workloads
 * the changed policies cut off that made no flow. Shared by the offline audit (the demo's rollout
 * view), `microseg audit` and the controller. Pure: plain data in, plain data out.
 */
import type { ServiceGraph } from '../graph/types.ts';
import type { Identity } from '../identity/index.ts';
import { kindLabels } from '../identity/index.ts';
import type { Workload } from '../identity/types.ts';
import type { NetworkPolicy, OtherObject } from '../model/k8s.ts';
import type { ClusterSnapshot } from '../model/snapshot.ts';
import { compareText } from '../model/order.ts';
import type { Steps } from '../model/steps.ts';
import { runSteps } from '../model/steps.ts';
import type { Engine } from '../verify/engine.ts';
import { engineFromSnapshotSteps } from '../verify/engine.ts';
import { selects } from '../verify/match.ts';
import { isClusterPolicyKind } from '../verify/validate.ts';
import type { Endpoint, EngineOptions, L4Protocol, Verdict } from '../verify/types.ts';
import { PROTOCOLS } from '../verify/types.ts';
import { edgeWasAllowed, MANAGED_BY_LABEL, MANAGED_BY_VALUE } from './index.ts';
import { addressNote, endpointPairs, graphEndpoints } from './prove.ts';
import { isDefaultDeny } from './render.ts';
import { cronJobsNotRunSince, cronJobsNotRunWithin } from './cronjobs.ts';

/** An observed connection (a graph edge) the changed policies would block. */
export interface WouldBlock {
  /** Graph edge id (`src->dst:port/protocol`). */
  edge: string;
  source: string;
  target: string;
  protocol: string;
  port: number;
  count: number;
  firstSeen: string;
  lastSeen: string;
  /** Why (the engine's reason). */
  reason: string;
}

/** Why an edge of the replayed graph was not audited (see `replayEdges`). */
export type NotReplayed = 'dropped' | 'protocol' | 'node' | 'unplaced';

/**
 * Replays every edge of `graph` against the cluster `before` and `after` a change of its policies: an
 * edge the cluster allows before and denies after is a would-be-blocked flow (listed in edge-id order;
 * its reason is the `after` engine's, with a note when only some of the API server's addresses are
 * blocked). Not replayed, and counted by why: edges whose every observation was dropped (`dropped`),
 * protocols the engine does not evaluate, ICMP (`protocol`), node-to-pod traffic (`node`: the pod's own
 * node is always admitted, and the address seen may not be a Node address), and edges the engine cannot
 * place (`unplaced`: unknown peers, host-network workloads without an address). `earliest`: the first
 * first-seen of the graph.
 */
export function replayEdges(graph: ServiceGraph, identity: Identity, before: Engine, after: Engine): Replay {
  return runSteps(replayEdgesSteps(graph, identity, before, after));
}

/** What `replayEdges` gives. */
export interface Replay {
  wouldBlock: WouldBlock[];
  replayed: number;
  notReplayed: Record<NotReplayed, number>;
  earliest: string | undefined;
}

/** `replayEdges` in steps (see model/steps.ts): one edge at a time. */
export function* replayEdgesSteps(
  graph: ServiceGraph,
  identity: Identity,
  before: Engine,
  after: Engine,
): Steps<Replay> {
  const nodes = new Map(graph.nodes.map((n) => [n.id, n]));
  // The API server at each of its endpoint addresses; without them, at its ClusterIPs (which no rule
  // names, so enforcing would block what reaches them).
  const ctx = {
    workloads: identity.workloads,
    nodes,
    apiserverIPs:
      identity.apiserverEndpoints.ips.length > 0
        ? identity.apiserverEndpoints.ips
        : [...identity.apiserverIPs].sort(),
  };
  const wouldBlock: WouldBlock[] = [];
  const notReplayed: Record<NotReplayed, number> = { dropped: 0, protocol: 0, node: 0, unplaced: 0 };
  let replayed = 0;
  let earliest: string | undefined;
  const edges = [...graph.edges].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  yield;
  for (const e of edges) {
    yield;
    if (earliest === undefined || e.firstSeen < earliest) earliest = e.firstSeen;
    if (!edgeWasAllowed(e)) {
      notReplayed.dropped++;
      continue;
    }
    if (!(PROTOCOLS as readonly string[]).includes(e.protocol)) {
      notReplayed.protocol++;
      continue;
    }
    // Traffic from a node to pods: the pod's own node is always admitted (kubelet probes), but the address
    // seen (often the node's router IP) may not be a Node address, so the engine cannot tell the own node
    // from another; the proposal writes no rule for it and its proof leaves it out (NODE_INGRESS).
    if (nodes.get(e.source)?.kind === 'node' && identity.workloads.has(e.target)) {
      notReplayed.node++;
      continue;
    }
    const from = graphEndpoints(e.source, ctx);
    const to = graphEndpoints(e.target, ctx);
    const { placed, blocked } = replayPairs(before, after, from, to, e.port, e.protocol as L4Protocol);
    if (blocked)
      wouldBlock.push({
        edge: e.id,
        source: e.source,
        target: e.target,
        protocol: e.protocol,
        port: e.port,
        count: e.count,
        firstSeen: e.firstSeen,
        lastSeen: e.lastSeen,
        reason: blocked.verdict.reason + addressNote(blocked.pair, from, to, [e.source, e.target], ctx),
      });
    if (placed) replayed++;
    else notReplayed.unplaced++;
  }
  return { wouldBlock, replayed, notReplayed, earliest };
}

/**
 * One edge replayed between the endpoints of its ends (`graphEndpoints`): an edge of the API server or of
 * a host-network workload is checked at each of their addresses, and would be blocked if `after` blocks it
 * at any that `before` admits. `placed`: `before` answered a pair (it resolves both ends and refuses
 * neither); `blocked`: the first pair, in the order of the cross product, that `before` allows and
 * `after` does not, with `after`'s verdict. The pairs asked are `endpointPairs`' (by `before`), whose
 * answers are those of the whole cross product: `before` and `after` are engines of one cluster (its
 * pods, nodes and Services) under other policies, so a pair of two addresses `before` answers is
 * allowed by both.
 */
export function replayPairs(
  before: Engine,
  after: Engine,
  from: readonly Endpoint[],
  to: readonly Endpoint[],
  port: number,
  protocol: L4Protocol,
): { placed: boolean; blocked?: { pair: [Endpoint, Endpoint]; verdict: Verdict } } {
  let placed = false;
  for (const pair of endpointPairs(before, from, to, port, protocol)) {
    const q = { from: pair[0], to: pair[1], port, protocol };
    try {
      const allowedBefore = before.evaluate(q).allowed;
      placed = true;
      if (!allowedBefore) continue;
      const verdict = after.evaluate(q);
      if (!verdict.allowed) return { placed, blocked: { pair, verdict } };
    } catch {
      // An endpoint the engine cannot resolve (e.g. a peer outside the snapshot), or refuses: not auditable.
    }
  }
  return { placed };
}

/**
 * A NetworkPolicy's policyTypes as the API server defaults them when it gives none: Ingress, and Egress
 * too when it has egress rules. A hand-written `spec: {podSelector: {}}` is a default deny of ingress.
 */
function policyTypesOf(p: NetworkPolicy): ('Ingress' | 'Egress')[] {
  if (p.spec.policyTypes && p.spec.policyTypes.length > 0) return p.spec.policyTypes;
  return (p.spec.egress?.length ?? 0) > 0 ? ['Ingress', 'Egress'] : ['Ingress'];
}

/**
 * The workloads of `identity` that no node of `graph` stands for (no flow to or from them was
 * observed) and that, of `policies`, only a default deny of their namespace selects (see isDefaultDeny;
 * a policy that gives no policyTypes has those the API server defaults it to): once those policies are
 * in force, all their traffic in the directions the default deny isolates (ingress, egress or both) is
 * blocked, and nothing observed shows it. A policy selects a workload when it selects the labels its
 * pods carry: its stable labels and the keys Kubernetes gives them, each with a value no selector names
 * (so `batch.kubernetes.io/job-name DoesNotExist` leaves a Job's pods out). Host-network workloads
 * (policies do not select them) are left out. Sorted by id.
 */
export function deniedUnobserved(
  identity: Identity,
  graph: ServiceGraph,
  policies: readonly NetworkPolicy[],
): string[] {
  return runSteps(deniedUnobservedSteps(identity, graph, policies));
}

/** `deniedUnobserved` in steps (see model/steps.ts): one policy at a time. */
export function* deniedUnobservedSteps(
  identity: Identity,
  graph: ServiceGraph,
  policies: readonly NetworkPolicy[],
): Steps<string[]> {
  const inGraph = new Set(graph.nodes.map((n) => n.id));
  const denied = new Set<string>();
  const others: NetworkPolicy[] = [];
  for (const p of policies) {
    if (isDefaultDeny({ spec: { ...p.spec, policyTypes: policyTypesOf(p) } }))
      denied.add(p.metadata.namespace ?? '');
    else others.push(p);
    yield;
  }
  // The candidates (no flow, in a namespace with a default deny) by namespace, and by each of their
  // labels: a policy is matched against those that have the rarest of the labels its pod selector
  // requires (all of its namespace's when it requires none), not against every workload of the
  // namespace (quadratic for thousands of idle workloads with a policy each).
  const candidates = new Map<string, Workload[]>();
  const byLabel = new Map<string, Workload[]>();
  for (const w of identity.workloads.values()) {
    yield;
    if (!denied.has(w.namespace) || inGraph.has(w.id) || w.hostNetwork) continue;
    let all = candidates.get(w.namespace);
    if (!all) candidates.set(w.namespace, (all = []));
    all.push(w);
    for (const [k, v] of Object.entries(w.labels)) {
      const key = labelKey(w.namespace, k, v);
      const list = byLabel.get(key);
      if (list) list.push(w);
      else byLabel.set(key, [w]);
    }
  }
  // What a candidate's pods carry: its stable labels, and the keys Kubernetes gives every pod of it
  // (those of its pods in the snapshot, else those of its kind: a Job's `batch.kubernetes.io/job-name`)
  // with a value of their own per pod, revision or run, which no selector names. A proposal's narrowed
  // selector leaves a Job's pods out by `batch.kubernetes.io/job-name DoesNotExist`: no policy of theirs.
  const podLabels = new Map<string, Record<string, string>>();
  const labelsOf = (w: Workload): Record<string, string> => {
    let l = podLabels.get(w.id);
    if (l === undefined) {
      l = { ...w.labels };
      for (const k of w.generatedLabels ?? kindLabels(w.kind)) if (!(k in l)) l[k] = PER_POD_VALUE;
      podLabels.set(w.id, l);
    }
    return l;
  };
  const selected = new Set<string>();
  for (const p of others) {
    yield;
    const ns = p.metadata.namespace ?? '';
    const all = candidates.get(ns);
    if (!all) continue;
    const sel = p.spec.podSelector ?? {};
    let pool = all;
    for (const [k, v] of Object.entries(sel.matchLabels ?? {})) {
      const having = byLabel.get(labelKey(ns, k, v)) ?? [];
      if (having.length < pool.length) pool = having;
    }
    for (const w of pool) if (!selected.has(w.id) && selects(sel, labelsOf(w))) selected.add(w.id);
  }
  const out: string[] = [];
  for (const all of candidates.values()) for (const w of all) if (!selected.has(w.id)) out.push(w.id);
  yield;
  return out.sort(compareText);
}

/** The value of a generated label (a pod's, a revision's, a run's own) as deniedUnobserved matches it. */
const PER_POD_VALUE = '\u0000';

/** A namespace's label `key=value` as one map key (NUL is in none of the three). */
const labelKey = (ns: string, k: string, v: string): string => `${ns}\u0000${k}\u0000${v}`;

const policyKey = (p: NetworkPolicy): string => `${p.metadata.namespace ?? ''}/${p.metadata.name}`;
/** A cluster-wide policy's name in an audit: `Kind/name` (`AdminNetworkPolicy/deny-db`). */
const clusterPolicyKey = (o: OtherObject): string => `${o.kind}/${o.metadata.name}`;

/**
 * The cluster's NetworkPolicies (`current`) with `given` applied as `kubectl apply` would: each replaces
 * the one of its name, the others are added; with `prune`, microseg's own (label
 * app.kubernetes.io/managed-by=microseg) that `given` does not name are left out (`pruned`, sorted) in
 * the namespaces `given` has policies for, as Enforce or a GitOps sync with pruning removes them. One given twice under a name: the last one.
 */
export function appliedPolicies(
  current: readonly NetworkPolicy[],
  given: readonly NetworkPolicy[],
  prune: boolean,
): { policies: NetworkPolicy[]; pruned: string[] } {
  const last = new Map(given.map((p) => [policyKey(p), p]));
  // Pruned only in the namespaces `given` has policies for, as Enforce prunes in its scope: the
  // policies of one namespace's file leave the other namespaces' as they are.
  const covered = new Set(given.map((p) => p.metadata.namespace ?? ''));
  const pruned: string[] = [];
  const kept = current.filter((p) => {
    if (last.has(policyKey(p))) return false;
    if (
      prune &&
      covered.has(p.metadata.namespace ?? '') &&
      p.metadata.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE
    ) {
      pruned.push(policyKey(p));
      return false;
    }
    return true;
  });
  return { policies: [...kept, ...last.values()], pruned: pruned.sort(compareText) };
}

/** What applying a set of NetworkPolicies would do to the observed traffic (`auditPolicySet`). */
export interface PolicySetAudit {
  /** Observed connections (graph edges) replayed, and those not replayed by why. */
  connections: { replayed: number; notReplayed: Record<NotReplayed, number> };
  /**
   * The policies audited (`namespace/name`; a cluster-wide one `Kind/name`), sorted, each once, and the
   * cluster's they leave out (`prune`).
   */
  policies: { audited: string[]; pruned: string[] };
  /** Observed connections they would newly block, in edge-id order. */
  wouldBlock: WouldBlock[];
  /** Workloads with no flow that, of the applied policies, only a default deny selects. */
  unobserved: string[];
  /**
   * The first and last time a flow was seen (RFC 3339); absent when no flow gave an edge, or when the
   * flows' span is not known (Kubescape records give only their object's latest time).
   */
  span?: { first: string; last: string };
  /**
   * Of `unobserved`, the CronJobs that started no run the flows cover (see cronJobsNotRunWithin; when
   * the span is not known, those that never ran).
   */
  cronJobsNotRun: string[];
}

/**
 * The audit of `given` NetworkPolicies over the traffic of `graph`: the cluster of `snapshot` as it is,
 * against the same with `given` applied (appliedPolicies). `identity` places the graph's nodes.
 */
export function auditPolicySet(input: PolicySetAuditInput): PolicySetAudit {
  return runSteps(auditPolicySetSteps(input));
}

/** What `auditPolicySet` audits. */
export interface PolicySetAuditInput {
  snapshot: ClusterSnapshot;
  identity: Identity;
  graph: ServiceGraph;
  given: readonly NetworkPolicy[];
  /**
   * Cluster-wide policies given too (AdminNetworkPolicy, BaselineAdminNetworkPolicy,
   * ClusterNetworkPolicy), each replacing the snapshot's of its kind and name.
   */
  givenClusterPolicies?: readonly OtherObject[];
  prune?: boolean;
  engine?: EngineOptions;
  /** Whether the graph's first and last times are the flows' span; default true. */
  spanKnown?: boolean;
}

/**
 * `auditPolicySet` in steps (see model/steps.ts): its engines built one policy at a time, the edges
 * replayed one at a time, so that a server audits a large set without holding its event loop. It
 * audits `input` as it is at the first step: the identity's workloads are read then (the controller's
 * identity gains, as flows come in between the steps, the workloads known only from flows).
 */
export function* auditPolicySetSteps(input: PolicySetAuditInput): Steps<PolicySetAudit> {
  const { snapshot, graph } = input;
  const identity: Identity = { ...input.identity, workloads: new Map(input.identity.workloads) };
  const { policies, pruned } = appliedPolicies(snapshot.networkPolicies, input.given, input.prune === true);
  yield;
  const givenCluster = new Map((input.givenClusterPolicies ?? []).map((o) => [clusterPolicyKey(o), o]));
  const others = [
    ...snapshot.others.filter((o) => !(isClusterPolicyKind(o.kind) && givenCluster.has(clusterPolicyKey(o)))),
    ...givenCluster.values(),
  ];
  const before = yield* engineFromSnapshotSteps(snapshot, input.engine);
  const after = yield* engineFromSnapshotSteps(
    { ...snapshot, networkPolicies: policies, others },
    input.engine,
  );
  const replay = yield* replayEdgesSteps(graph, identity, before, after);
  const unobserved = yield* deniedUnobservedSteps(identity, graph, policies);
  const span = input.spanKnown === false ? undefined : flowSpan(graph);
  const cronJobs = new Map(snapshot.cronJobs.map((c) => [`${c.metadata.namespace}/${c.metadata.name}`, c]));
  const cronJobOf = (ns: string, name: string) => cronJobs.get(`${ns}/${name}`);
  yield;
  const audited = [...new Set(input.given.map(policyKey)), ...givenCluster.keys()].sort(compareText);
  yield;
  return {
    connections: { replayed: replay.replayed, notReplayed: replay.notReplayed },
    policies: { audited, pruned },
    wouldBlock: replay.wouldBlock,
    unobserved,
    ...(span
      ? { span: { first: new Date(span.first).toISOString(), last: new Date(span.last).toISOString() } }
      : {}),
    cronJobsNotRun: span
      ? cronJobsNotRunWithin(unobserved, cronJobOf, span.first, span.last)
      : cronJobsNotRunSince(unobserved, cronJobOf, -Infinity),
  };
}

/** The first first-seen and the last last-seen of `graph`'s edges (epoch ms), if it has any. */
export function flowSpan(graph: ServiceGraph): { first: number; last: number } | undefined {
  let first = Infinity;
  let last = -Infinity;
  for (const e of graph.edges) {
    first = Math.min(first, Date.parse(e.firstSeen));
    last = Math.max(last, Date.parse(e.lastSeen));
  }
  return Number.isFinite(first) && Number.isFinite(last) ? { first, last } : undefined;
}
