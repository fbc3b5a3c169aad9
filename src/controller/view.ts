/**
 * The web page's data in controller mode: the union of what every Segmentation has learned (graph,
 * segments, proposal), their rollout state from status with what enforcing would change (the plan
 * Enforce mode itself performs), and, when isolation is on, the Isolations and the Isolate and Release
 * buttons.
 */
import { NodeFlowCounter } from '../graph/counts.ts';
import type { GraphEdge, GraphNode, ServiceGraph } from '../graph/types.ts';
import type { Isolation } from '../isolate/api.ts';
import type { IsolationActions } from '../isolate/ui.ts';
import { IsolationRequestError, parseIsolationRef } from '../isolate/ui.ts';
import type { NetworkPolicy } from '../model/k8s.ts';
import type { Analysis } from '../pipeline.ts';
import type { Proposal } from '../policy/types.ts';
import type { SegmentResult } from '../segments/index.ts';
import { auditFromSegmentation, isolationFromResource } from '../server/resources.ts';
import type { EnforceDiff, ViewSource } from '../server/types.ts';
import type { ProposedNetworkPolicy, Segmentation } from './api.ts';
import { enforcedPolicy, isOurs, objKey, planObjects } from './plan.ts';
import { compareText } from '../model/order.ts';

export interface ControllerViewInput {
  /** The current analysis of each Segmentation (sorted by the caller or not; merged in a stable order). */
  analyses: () => Analysis[];
  segmentations: () => Segmentation[];
  /**
   * The proposals (ProposedNetworkPolicies) and the live NetworkPolicies: with both, each audit's
   * `enforce` says what enforcing would change.
   */
  proposals?: () => ProposedNetworkPolicy[];
  networkPolicies?: () => NetworkPolicy[];
  /** The Isolation objects, when isolation is on: without, the page has no isolation view. */
  isolations?: () => Isolation[];
  /** The writes behind the Isolate and Release buttons (the server lets only authenticated users act). */
  actions?: IsolationActions;
}

/**
 * What enforcing `seg` would change now: the plan Enforce mode performs (its ProposedNetworkPolicies as
 * NetworkPolicies, planned against the live ones), read as a diff. A name held by a NetworkPolicy this
 * Segmentation does not manage is a conflict: Enforce leaves it alone, so it is neither added nor changed.
 */
export function enforceDiffOf(
  seg: Segmentation,
  proposals: readonly ProposedNetworkPolicy[],
  networkPolicies: readonly NetworkPolicy[],
): EnforceDiff & { conflicts: string[] } {
  const name = seg.metadata.name;
  const uid = seg.metadata.uid;
  // What is the Segmentation's is decided as Enforce decides it (isOurs), so the diff is its plan.
  const desired = proposals.filter((p) => isOurs(p, name, uid)).map((p) => enforcedPolicy(seg, p));
  const keys = new Set(desired.map(objKey));
  const observed = networkPolicies.filter((np) => isOurs(np, name, uid) || keys.has(objKey(np)));
  const diff = {
    added: [] as string[],
    changed: [] as string[],
    removed: [] as string[],
    conflicts: [] as string[],
  };
  for (const a of planObjects(name, desired, observed, uid)) {
    if (a.kind === 'apply') (a.why === 'create' ? diff.added : diff.changed).push(objKey(a.object));
    else if (a.kind === 'delete') diff.removed.push(`${a.namespace}/${a.name}`);
    else diff.conflicts.push(`${a.namespace}/${a.name}`);
  }
  return {
    ...diff,
    unchanged: desired.length - diff.added.length - diff.changed.length - diff.conflicts.length,
  };
}

/** Pod (`namespace/name`) → workload id, from the identities of the analyses, merged once per change. */
function podWorkloads(): (analyses: readonly Analysis[]) => ReadonlyMap<string, string> {
  let last: { identities: Analysis['identity'][]; map: ReadonlyMap<string, string> } | undefined;
  return (analyses) => {
    const identities = analyses.map((a) => a.identity);
    if (
      last &&
      last.identities.length === identities.length &&
      last.identities.every((id, i) => id === identities[i])
    )
      return last.map;
    const map =
      identities.length === 1
        ? identities[0]!.podWorkload
        : new Map(identities.flatMap((id) => [...id.podWorkload]));
    last = { identities, map };
    return map;
  };
}

/**
 * Merges analyses: nodes and edges by id (first wins), segments by id, policies by namespace/name. The
 * flows in and out of each node are counted again over the merged edges (each flow once per node), as
 * one analysis may hold only some of a node's edges.
 */
export function mergeAnalyses(analyses: readonly Analysis[]): {
  graph: ServiceGraph;
  segments: SegmentResult;
  proposal: Proposal;
} {
  const nodes = new Map<string, GraphNode>();
  const edges = new Map<string, GraphEdge>();
  const segments = new Map<string, SegmentResult['segments'][number]>();
  const membership: Record<string, string> = {};
  const policies = new Map<string, Proposal['policies'][number]>();
  const byWorkload: Record<string, string[]> = {};
  const proposal: Proposal = {
    policies: [],
    byWorkload,
    evidence: [],
    notExpressible: [],
    namespaces: [],
    warnings: [],
  };
  let modularity = 0;
  for (const a of analyses) {
    for (const n of a.graph.nodes) if (!nodes.has(n.id)) nodes.set(n.id, n);
    for (const e of a.graph.edges) if (!edges.has(e.id)) edges.set(e.id, e);
    for (const s of a.segments.segments) if (!segments.has(s.id)) segments.set(s.id, s);
    Object.assign(membership, a.segments.membership);
    modularity = Math.max(modularity, a.segments.modularity);
    for (const p of a.proposal.policies) policies.set(`${p.metadata.namespace}/${p.metadata.name}`, p);
    Object.assign(byWorkload, a.proposal.byWorkload);
    proposal.evidence.push(...a.proposal.evidence);
    proposal.notExpressible.push(...a.proposal.notExpressible);
    proposal.namespaces.push(...a.proposal.namespaces);
    proposal.warnings.push(...a.proposal.warnings);
  }
  const byId = <T>(m: Map<string, T>) =>
    [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, v]) => v);
  proposal.policies = byId(policies);
  proposal.namespaces = [...new Set(proposal.namespaces)].sort();
  const first = analyses[0]?.segments;
  const mergedEdges = byId(edges);
  return {
    graph: {
      nodes: analyses.length > 1 ? recount(byId(nodes), mergedEdges) : byId(nodes),
      edges: mergedEdges,
    },
    segments: {
      segments: byId(segments),
      membership,
      modularity,
      resolution: first?.resolution ?? 1,
      seed: first?.seed ?? 1,
      hubDegree: first?.hubDegree ?? 0,
    },
    proposal,
  };
}

/** Copies of `nodes` with their flows in and out counted over `edges`. */
function recount(nodes: GraphNode[], edges: readonly GraphEdge[]): GraphNode[] {
  const copies = nodes.map((n) => ({ ...n, flowsIn: 0, flowsOut: 0 }));
  const byId = new Map(copies.map((n) => [n.id, n]));
  const flows = new NodeFlowCounter();
  for (const e of edges) flows.add(byId.get(e.source)!, byId.get(e.target)!, e);
  flows.settle();
  return copies;
}

export function controllerViewSource(input: ControllerViewInput): ViewSource {
  const current = () => mergeAnalyses(input.analyses());
  const podWorkload = podWorkloads();
  const source: ViewSource = {
    info: () => ({ mode: 'controller', title: 'microseg' }),
    graph: () => current().graph,
    segments: () => current().segments,
    proposal: () => current().proposal,
    // The layout is cached per version: a new node or edge anywhere gives a new version.
    version: () => {
      const g = current().graph;
      return `${g.nodes.length}:${g.edges.length}:${g.edges.reduce((n, e) => n + e.count, 0)}`;
    },
    audits: () => {
      const proposals = input.proposals?.();
      const policies = input.networkPolicies?.();
      return input
        .segmentations()
        .sort((a, b) => compareText(a.metadata.name, b.metadata.name))
        .map((s) =>
          auditFromSegmentation(s, proposals && policies ? enforceDiffOf(s, proposals, policies) : undefined),
        );
    },
  };
  const isolations = input.isolations;
  if (isolations) {
    source.isolations = () => {
      const list = isolations();
      if (list.length === 0) return [];
      const pods = podWorkload(input.analyses());
      return [...list]
        .sort((a, b) => compareText(objKey(a), objKey(b)))
        .map((i) => isolationFromResource(i, pods));
    };
  }
  const actions = input.actions;
  if (actions) {
    source.isolate = async (req, user) =>
      isolationFromResource(
        await actions.isolate(req.workload, req.reason, user),
        podWorkload(input.analyses()),
      );
    // The page names an Isolation `namespace/name`; a bare name is looked up among the known ones.
    source.release = async (ref) => {
      let target = parseIsolationRef(ref);
      if (!target && !ref.includes('/')) {
        const named = (isolations?.() ?? []).filter((i) => i.metadata.name === ref);
        if (named.length > 1)
          throw new IsolationRequestError(
            400,
            `several Isolations are named "${ref}" (${named.map(objKey).sort().join(', ')}): give namespace/name`,
          );
        if (named.length === 1) target = parseIsolationRef(objKey(named[0]!));
      }
      return target ? actions.release(target.namespace, target.name) : false;
    };
  }
  return source;
}
