/**
 * The web page's data in controller mode: the union of what every Segmentation has learned (graph,
 * segments, proposal), their rollout state from status, and isolations when the caller supplies them.
 */
import type { GraphEdge, GraphNode, ServiceGraph } from '../graph/types.ts';
import type { Analysis } from '../pipeline.ts';
import type { Proposal } from '../policy/types.ts';
import type { SegmentResult } from '../segments/index.ts';
import { auditFromSegmentation } from '../server/resources.ts';
import type { IsolationView, ViewSource } from '../server/types.ts';
import type { Segmentation } from './api.ts';

export interface ControllerViewInput {
  /** The current analysis of each Segmentation (sorted by the caller or not; merged in a stable order). */
  analyses: () => Analysis[];
  segmentations: () => Segmentation[];
  isolations?: () => IsolationView[];
}

/** Merges analyses: nodes and edges by id (first wins), segments by id, policies by namespace/name. */
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
  return {
    graph: { nodes: byId(nodes), edges: byId(edges) },
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

export function controllerViewSource(input: ControllerViewInput): ViewSource {
  const current = () => mergeAnalyses(input.analyses());
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
    audits: () =>
      input
        .segmentations()
        .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))
        .map((s) => auditFromSegmentation(s)),
  };
  if (input.isolations) {
    const isolations = input.isolations;
    source.isolations = () => isolations();
  }
  return source;
}
