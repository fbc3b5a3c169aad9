/**
 * The offline audit: replays observed traffic (the edges of a service graph) against the cluster as it
 * is and as it would be with a proposal enforced, using the NetworkPolicy semantics engine, and lists the
 * flows enforcing would newly block. Also the enforce diff: which policies enforcing adds, changes or
 * removes. Pure: plain data in, plain data out.
 */
import type { ServiceGraph } from '../graph/types.ts';
import type { Identity } from '../identity/index.ts';
import type { NetworkPolicy } from '../model/k8s.ts';
import type { ClusterSnapshot } from '../model/snapshot.ts';
import type { PolicySetAudit } from '../policy/audit.ts';
import { appliedPolicies, replayEdges } from '../policy/audit.ts';
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE } from '../policy/index.ts';
import type { Proposal } from '../policy/types.ts';
import type { Engine } from '../verify/engine.ts';
import { buildEngine } from '../verify/engine.ts';
import { isClusterPolicyKind } from '../verify/validate.ts';
import type { AuditView, ConditionView, EnforceDiff } from './types.ts';
import { compareText, sortedJson } from '../model/order.ts';

function key(p: NetworkPolicy): string {
  return `${p.metadata.namespace ?? ''}/${p.metadata.name}`;
}

/**
 * What enforcing `proposed` changes, given the NetworkPolicies on the cluster: a proposed policy whose
 * name is free is added; one whose name exists with a different spec is changed; an existing policy
 * managed by microseg (label `app.kubernetes.io/managed-by=microseg`) in a namespace the proposal
 * covers, and absent from the proposal, is removed. Policies written by others are never removed.
 */
export function enforceDiff(
  existing: readonly NetworkPolicy[],
  proposed: readonly NetworkPolicy[],
  namespaces?: readonly string[],
): EnforceDiff {
  const have = new Map(existing.map((p) => [key(p), p]));
  const want = new Map(proposed.map((p) => [key(p), p]));
  const covered = new Set(namespaces ?? proposed.map((p) => p.metadata.namespace ?? ''));
  const added: string[] = [];
  const changed: string[] = [];
  const removed: string[] = [];
  let unchanged = 0;
  for (const [k, p] of want) {
    const old = have.get(k);
    if (!old) added.push(k);
    else if (sortedJson(old.spec) !== sortedJson(p.spec)) changed.push(k);
    else unchanged++;
  }
  for (const [k, p] of have) {
    if (want.has(k)) continue;
    if (p.metadata.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY_VALUE) continue;
    if (!covered.has(p.metadata.namespace ?? '')) continue;
    removed.push(k);
  }
  return { added: added.sort(), changed: changed.sort(), removed: removed.sort(), unchanged };
}

/**
 * The `WouldBlock` condition of an offline audit: how many observed connections `by` (the proposal, the
 * policies given) would block, since the first flow replayed.
 */
function wouldBlockCondition(blocked: number, by: string, since: string | undefined): ConditionView {
  return {
    type: 'WouldBlock',
    status: blocked > 0 ? 'True' : 'False',
    reason: blocked > 0 ? 'FlowsWouldBeBlocked' : 'NoBlockedFlows',
    message:
      blocked > 0
        ? `${blocked} observed connection${blocked === 1 ? '' : 's'} would be blocked by ${by}`
        : `every observed connection is allowed by ${by}`,
    ...(since ? { lastTransitionTime: since } : {}),
  };
}

export interface OfflineAuditInput {
  /** Name shown for this audit (the demo uses its scenario name). */
  name: string;
  snapshot: ClusterSnapshot;
  identity: Identity;
  /** The traffic to replay: usually flows observed after the proposal was learned. */
  graph: ServiceGraph;
  proposal: Proposal;
  /** Start of the replayed window (RFC 3339); default the earliest first-seen of the graph. */
  since?: string;
}

/**
 * Replays every allowed edge of `graph` against the cluster before and after the proposal. An edge the
 * cluster allows today and the proposal would deny is a would-be-blocked flow, including edges the proposal
 * could write no rule for (an unlabelled pod, an unknown API server address). Left out: protocols the
 * engine does not evaluate (ICMP), node-to-pod traffic (see below), and edges the engine cannot place
 * (unknown peers, host-network workloads without an address): counted by why in `notReplayed`, for the
 * page to say what it does not list.
 */
export function offlineAudit(input: OfflineAuditInput): AuditView {
  const { snapshot, identity, graph, proposal } = input;
  const engineFor = (networkPolicies: readonly NetworkPolicy[]): Engine =>
    buildEngine({
      namespaces: snapshot.namespaces,
      pods: snapshot.pods,
      networkPolicies,
      clusterPolicies: snapshot.others.filter((o) => isClusterPolicyKind(o.kind)),
      nodes: snapshot.others.filter((o) => o.kind === 'Node'),
    });
  const before = engineFor(snapshot.networkPolicies);
  // Enforcing replaces microseg's own policies in the namespaces the proposal covers and keeps
  // everyone else's, and its own elsewhere.
  const after = engineFor(appliedPolicies(snapshot.networkPolicies, proposal.policies, true).policies);
  const { wouldBlock, earliest, notReplayed } = replayEdges(graph, identity, before, after);
  const since = input.since ?? earliest;
  const blocked = wouldBlock.length;
  // Workloads the proposal learned no flow for that made none in the replayed traffic either: nothing of
  // theirs can be replayed, yet the default deny cuts them off once enforced.
  const replayed = new Set(graph.nodes.map((n) => n.id));
  const idle = [...new Set(proposal.unobserved)].filter((id) => !replayed.has(id)).sort(compareText);
  return {
    name: input.name,
    mode: 'Audit',
    phase: 'Auditing',
    namespaces: [...proposal.namespaces],
    conditions: [wouldBlockCondition(blocked, 'the proposal', since)],
    ...(since ? { since } : {}),
    wouldBlock,
    unobserved: idle.length,
    unobservedWorkloads: idle,
    notReplayed,
    enforce: enforceDiff(snapshot.networkPolicies, proposal.policies, proposal.namespaces),
  };
}

/**
 * A policy-set audit (`auditPolicySet`: given NetworkPolicies replayed against the observed traffic, as
 * `microseg audit` does) as the page's Rollout view shows an audit: what they would block, the workloads
 * with no flow only a default deny of them selects, and what applying them changes on the snapshot's
 * policies (a policy of microseg's that they do not hold removed only with `prune`).
 */
export function policySetAuditView(
  name: string,
  snapshot: ClusterSnapshot,
  given: readonly NetworkPolicy[],
  audit: PolicySetAudit,
  prune: boolean,
): AuditView {
  const namespaces = [...new Set(given.map((p) => p.metadata.namespace ?? ''))].sort(compareText);
  const blocked = audit.wouldBlock.length;
  const since = audit.span?.first;
  const diff = enforceDiff(snapshot.networkPolicies, given, namespaces);
  return {
    name,
    mode: 'Audit',
    phase: 'Auditing',
    namespaces,
    conditions: [wouldBlockCondition(blocked, 'these policies', since)],
    ...(since ? { since } : {}),
    wouldBlock: audit.wouldBlock,
    unobserved: audit.unobserved.length,
    unobservedWorkloads: audit.unobserved,
    notReplayed: audit.connections.notReplayed,
    enforce: prune ? diff : { ...diff, removed: [] },
  };
}
