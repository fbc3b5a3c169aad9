/**
 * The web page's data in controller mode: the union of what every Segmentation has learned (graph,
 * segments), the proposal of each (frozen in its ProposedNetworkPolicies in Audit and Enforce, live in
 * Learn), their rollout state from status with what enforcing would change (the plan Enforce mode
 * itself performs), and, when isolation is on, the Isolations and the Isolate and Release buttons.
 *
 * The learned graph lives on the leader only. A replica that does not hold it (not leading, or leading
 * but not done restoring it) answers what needs it with `SourceUnavailable` (503, `Retry-After`),
 * never with empty data; what its informer caches hold (frozen proposals, audits, Isolations, and the
 * workloads that place isolated pods and that a frozen default deny selects) it serves.
 */
import { NodeFlowCounter } from '../graph/counts.ts';
import type { GraphEdge, GraphNode, ServiceGraph } from '../graph/types.ts';
import type { Isolation } from '../isolate/api.ts';
import type { IsolationActions } from '../isolate/ui.ts';
import { IsolationRequestError, parseIsolationRef } from '../isolate/ui.ts';
import type { CronJob, KObject, NetworkPolicy, NetworkPolicySpec, OtherObject } from '../model/k8s.ts';
import type { ClusterSnapshot } from '../model/snapshot.ts';
import type { Analysis } from '../pipeline.ts';
import type { Identity } from '../identity/index.ts';
import { buildIdentity } from '../identity/index.ts';
import { auditPolicySetSteps } from '../policy/audit.ts';
import type { EngineOptions } from '../verify/types.ts';
import type { Proposal, RuleEvidence } from '../policy/types.ts';
import { WORKLOAD_ANNOTATION } from '../policy/index.ts';
import type { SegmentResult } from '../segments/index.ts';
import { auditFromSegmentation, isolationFromResource } from '../server/resources.ts';
import type { EnforceDiff, ViewSource } from '../server/types.ts';
import { SourceUnavailable } from '../server/types.ts';
import { runInSlices } from '../server/slices.ts';
import type { ProposedNetworkPolicy, Segmentation } from './api.ts';
import type { ClusterWorkloads } from './cache.ts';
import { enforcedPolicy, frozenProposed, isOurs, objKey, planObjects } from './plan.ts';
import { byteOrder, compareText, sortedJson } from '../model/order.ts';

export interface ControllerViewInput {
  /** The current analysis of each Segmentation (sorted by the caller or not; merged in a stable order). */
  analyses: () => Analysis[];
  /** The current analysis of one Segmentation: its live proposal in Learn mode. None: Learn proposes nothing. */
  analysisOf?: (segmentation: string) => Analysis | undefined;
  /**
   * Whether this replica holds the analyses: it leads, and has restored the learned graph of every
   * Segmentation (`unrestored` lists those it has not, of `names` or of all). Without it, it holds them.
   */
  leadership?: () => {
    leading: boolean;
    unrestored: (names?: readonly string[]) => string[];
    /** The informer caches have synced (without it, they are taken as synced). */
    synced?: boolean;
  };
  segmentations: () => Segmentation[];
  /**
   * The workloads the informer caches know and each pod's workload (`ClusterCache.workloadIdentity`),
   * which every replica holds alike: they place isolated pods on their workloads, and give a frozen
   * proposal's default deny to every workload of its namespaces. Without it, none are known.
   */
  cluster?: () => ClusterWorkloads;
  /**
   * The proposals (ProposedNetworkPolicies) and the live NetworkPolicies: with both, each audit's
   * `enforce` says what enforcing would change.
   */
  proposals?: () => ProposedNetworkPolicy[];
  networkPolicies?: () => NetworkPolicy[];
  /** The Isolation objects, when isolation is on: without, the page has no isolation view. */
  isolations?: () => Isolation[];
  /** The CronJob `namespace/name` from the informer caches, for its details (schedule and runs). */
  cronJob?: (namespace: string, name: string) => CronJob | undefined;
  /**
   * The informer caches as a snapshot: with it, `POST /audit` audits a set of NetworkPolicies against the
   * learned graph (its workloads placed by an identity of the caches as they are now).
   */
  snapshot?: () => ClusterSnapshot;
  /** The identity that places the learned graph's workloads (the flow path's); without it, one is built. */
  identity?: () => Identity;
  /** The semantics of the engine of `POST /api/v1/audit` (`microseg controller --ipblock-pods` and the others). */
  engine?: EngineOptions;
  /** The writes behind the Isolate and Release buttons (the server lets only authenticated users act). */
  actions?: IsolationActions;
}

/**
 * What enforcing `seg` would change now: the plan Enforce mode performs (its ProposedNetworkPolicies as
 * NetworkPolicies, planned against the live ones), read as a diff. A name held by a NetworkPolicy this
 * Segmentation does not manage is a conflict: Enforce leaves it alone, so it is neither added nor changed,
 * and the default deny of its namespace is held back (listed in `held`; removed when in place).
 */
export function enforceDiffOf(
  seg: Segmentation,
  proposals: readonly ProposedNetworkPolicy[],
  networkPolicies: readonly NetworkPolicy[],
): EnforceDiff & { conflicts: string[]; held: string[] } {
  const name = seg.metadata.name;
  const uid = seg.metadata.uid;
  // What is the Segmentation's is decided as Enforce decides it (isOurs), and its NetworkPolicies made
  // as Enforce makes them (from the labels and annotations microseg set), so the diff is its plan.
  const desired = proposals
    .filter((p) => isOurs(p, name, uid))
    .map((p) => enforcedPolicy(seg, frozenProposed(seg, p)));
  const keys = new Set(desired.map(objKey));
  const observed = networkPolicies.filter((np) => isOurs(np, name, uid) || keys.has(objKey(np)));
  const diff = {
    added: [] as string[],
    changed: [] as string[],
    removed: [] as string[],
    conflicts: [] as string[],
    held: [] as string[],
  };
  for (const a of planObjects(name, desired, observed, uid, undefined, true)) {
    if (a.kind === 'apply') (a.why === 'create' ? diff.added : diff.changed).push(objKey(a.object));
    else if (a.kind === 'delete') diff.removed.push(`${a.namespace}/${a.name}`);
    else if (a.kind === 'held') diff.held.push(`${a.namespace}/${a.name}`);
    else diff.conflicts.push(`${a.namespace}/${a.name}`);
  }
  return {
    ...diff,
    unchanged:
      desired.length - diff.added.length - diff.changed.length - diff.conflicts.length - diff.held.length,
  };
}

/**
 * The analyses in the order they are merged in, whatever the order given: by the namespaces their
 * proposals cover (sorted, compared name by name; a namespace is covered by one Segmentation at most),
 * one covering none last; those covering the same, by their content.
 */
function mergeOrder(analyses: readonly Analysis[]): Analysis[] {
  const keyed = analyses.map((a) => ({
    a,
    namespaces: [...a.proposal.namespaces].sort(byteOrder),
    text: undefined as string | undefined,
  }));
  const text = (k: (typeof keyed)[number]) =>
    (k.text ??= sortedJson({ graph: k.a.graph, segments: k.a.segments, proposal: k.a.proposal }));
  const byNamespaces = (x: readonly string[], y: readonly string[]): number => {
    if (x.length === 0 || y.length === 0) return y.length - x.length;
    for (let i = 0; i < Math.min(x.length, y.length); i++) {
      const c = byteOrder(x[i]!, y[i]!);
      if (c !== 0) return c;
    }
    return x.length - y.length;
  };
  return keyed
    .sort((x, y) => byNamespaces(x.namespaces, y.namespaces) || byteOrder(text(x), text(y)))
    .map((k) => k.a);
}

/**
 * Merges analyses, in the order of `mergeOrder` (the result does not depend on the order given): nodes
 * and edges by id (first wins), segments by id (members joined, the other fields the first's), policies
 * by namespace/name. The flows in and out of each node are counted again over the merged edges (each
 * flow once per node), as one analysis may hold only some of a node's edges. Each workload is in one
 * segment: that of the analysis whose proposal covers its namespace (another draws it as a peer, in a
 * segment of its own analysis), else of the first that lists it; its node says that segment.
 */
export function mergeAnalyses(given: readonly Analysis[]): {
  graph: ServiceGraph;
  segments: SegmentResult;
  proposal: Proposal;
} {
  const analyses = given.length > 1 ? mergeOrder(given) : given;
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
    unobserved: [],
    namespaces: [],
    warnings: [],
  };
  let modularity = 0;
  // The analysis each workload is listed by: the first covering its namespace, else the first listing it.
  const lister = new Map<string, number>();
  if (analyses.length > 1) {
    const covering = new Map<string, number>();
    analyses.forEach((a, i) => {
      for (const ns of a.proposal.namespaces) if (!covering.has(ns)) covering.set(ns, i);
    });
    analyses.forEach((a, i) => {
      for (const w of Object.keys(a.segments.membership))
        if (covering.get(w.slice(0, w.indexOf('/'))) === i) lister.set(w, i);
    });
    analyses.forEach((a, i) => {
      for (const w of Object.keys(a.segments.membership)) if (!lister.has(w)) lister.set(w, i);
    });
  }
  for (const [i, a] of analyses.entries()) {
    for (const n of a.graph.nodes) if (!nodes.has(n.id)) nodes.set(n.id, n);
    for (const e of a.graph.edges) if (!edges.has(e.id)) edges.set(e.id, e);
    for (const s of a.segments.segments) {
      const members = lister.size === 0 ? s.members : s.members.filter((m) => lister.get(m) === i);
      if (members.length === 0) continue;
      const had = segments.get(s.id);
      const all = had === undefined ? members : [...new Set([...had.members, ...members])].sort();
      segments.set(
        s.id,
        all === s.members
          ? s
          : {
              ...(had ?? s),
              members: all,
              namespaces: [...new Set(all.map((m) => m.slice(0, m.indexOf('/'))))].sort(),
            },
      );
    }
    for (const [w, seg] of Object.entries(a.segments.membership))
      if (lister.size === 0 || lister.get(w) === i) membership[w] = seg;
    modularity = Math.max(modularity, a.segments.modularity);
    for (const p of a.proposal.policies) policies.set(`${p.metadata.namespace}/${p.metadata.name}`, p);
    Object.assign(byWorkload, a.proposal.byWorkload);
    proposal.evidence.push(...a.proposal.evidence);
    proposal.notExpressible.push(...a.proposal.notExpressible);
    proposal.unobserved.push(...a.proposal.unobserved);
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
      nodes:
        analyses.length > 1
          ? recount(byId(nodes), mergedEdges).map((n) =>
              membership[n.id] !== undefined && n.segment !== membership[n.id]
                ? { ...n, segment: membership[n.id] }
                : n,
            )
          : byId(nodes),
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

const segmentationNames = (names: readonly string[]) =>
  `Segmentation${names.length > 1 ? 's' : ''} ${names.join(', ')}`;

/** The 503 of data read from the informer caches before they have synced. */
export const CACHES_NOT_SYNCED =
  'informer caches not synced yet: what they hold is not all of the cluster; retry in a moment';

/** Why a replica that does not lead answers the graph, segments, search and node details with 503. */
export const NOT_LEADER_GRAPH =
  'not the leader: the learned graph is kept by the leading replica only; retry (through the Service, the leader may answer)';

/** Why a replica that does not lead answers the proposals with 503: the Learn ones it cannot give. */
export function notLeaderProposal(learn: readonly string[]): string {
  return `not the leader: the live proposal of ${segmentationNames(learn)} (Learn mode) is kept by the leading replica only; retry (through the Service, the leader may answer); frozen proposals (Audit, Enforce) every replica serves`;
}

/**
 * Why the leader answers with 503 until it has restored a Segmentation's learned graph: it took over
 * recently, the Segmentation was created (or deleted and created again) and not reconciled yet, or its
 * reconciles failed before the restore (they are retried).
 */
export function restoringMessage(pending: readonly string[]): string {
  return `the leader has not restored the learned graph of ${segmentationNames(pending)} yet (it took over recently, the Segmentation is new or was re-created, or its reconcile failed and is retried); retry`;
}

/** Whether a Segmentation's proposal is frozen (its ProposedNetworkPolicies): Audit and Enforce mode. */
export function proposalFrozen(seg: Segmentation): boolean {
  const mode = seg.spec?.mode ?? 'Learn';
  return mode === 'Audit' || mode === 'Enforce';
}

/** The proposal the controller serves, and where each Segmentation's part of it comes from. */
export interface ControllerProposal extends Proposal {
  segmentations: { name: string; mode: string; proposal: 'frozen' | 'live'; policies: number }[];
}

/** `v` with the keys of every object in byte order (arrays keep theirs): equal values, equal text. */
function sortedKeys<T>(v: T): T {
  if (Array.isArray(v)) return v.map(sortedKeys) as T;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(o).sort(byteOrder)) if (o[k] !== undefined) out[k] = sortedKeys(o[k]);
    return out as T;
  }
  return v;
}

/**
 * A proposed policy as the proposal endpoint serves it: the NetworkPolicy Enforce applies for it
 * (`enforcedPolicy`: microseg's two labels naming the Segmentation) without the owner reference, whose
 * uid is this cluster's Segmentation object (a copy applied with it would be the controller's and the
 * garbage collector's), and without the empty rule lists Enforce spells out for its field ownership
 * (`ingress: []`): the API server stores none, so a copy applied with one would be written again at
 * every re-apply of the same file. Keys in byte order at every level, as kubectl prints them: the same
 * policy is the same text, whether it comes from the live analysis or from a ProposedNetworkPolicy read
 * back from the API server.
 */
export function exportedPolicy(
  seg: Segmentation,
  p: { metadata: KObject['metadata']; spec: NetworkPolicySpec },
): NetworkPolicy {
  const applied = enforcedPolicy(seg, p);
  const { ownerReferences: _owner, ...metadata } = applied.metadata;
  const spec = { ...applied.spec };
  if (spec.ingress?.length === 0) delete spec.ingress;
  if (spec.egress?.length === 0) delete spec.egress;
  return sortedKeys({ ...applied, metadata, spec });
}

/**
 * The controller's proposal: for each Segmentation (by name; one being deleted gives nothing), in Audit
 * and Enforce mode its frozen proposal, its own ProposedNetworkPolicies (what is audited and enforced,
 * decided as Enforce decides it: `isOurs`); in Learn mode the live analysis (`analysisOf`). Policies are
 * `exportedPolicy`s sorted by `namespace/name`. A frozen proposal's evidence is its objects'
 * `status.evidence` (no graph edge ids: `edges` is empty), its `byWorkload` the workload each policy is
 * for (annotation `microseg.dev/workload`) with its namespace's default deny, and the default deny alone
 * for every other workload of its namespaces that `cluster` knows (as the live proposal lists it), but
 * those on the host network, which no NetworkPolicy selects; it has no `notExpressible` or `warnings`
 * (the analysis that gave them has moved on).
 */
export function controllerProposal(
  segmentations: readonly Segmentation[],
  proposals: readonly ProposedNetworkPolicy[],
  analysisOf: (segmentation: string) => Analysis | undefined,
  cluster?: () => ClusterWorkloads | undefined,
): ControllerProposal {
  const policies = new Map<string, NetworkPolicy>();
  const byWorkload: Record<string, string[]> = {};
  const evidence: RuleEvidence[] = [];
  const out: ControllerProposal = {
    policies: [],
    byWorkload: {},
    evidence,
    notExpressible: [],
    unobserved: [],
    namespaces: [],
    warnings: [],
    segmentations: [],
  };
  const namespaces = new Set<string>();
  const live = [...segmentations]
    .filter((s) => !s.metadata.deletionTimestamp)
    .sort((a, b) => byteOrder(a.metadata.name, b.metadata.name));
  for (const seg of live) {
    const name = seg.metadata.name;
    const mode = seg.spec?.mode ?? 'Learn';
    let count = 0;
    const add = (p: { metadata: KObject['metadata']; spec: NetworkPolicySpec }): boolean => {
      const key = objKey(p);
      if (policies.has(key)) return false; // a name two Segmentations propose: the first by name keeps it
      policies.set(key, exportedPolicy(seg, p));
      namespaces.add(p.metadata.namespace ?? '');
      count++;
      return true;
    };
    if (proposalFrozen(seg)) {
      // As Enforce applies them: with the labels and annotations microseg set, not edits of them.
      const mine = proposals
        .filter((p) => isOurs(p, name, seg.metadata.uid))
        .map((p) => frozenProposed(seg, p))
        .sort((a, b) => byteOrder(objKey(a), objKey(b)));
      const denies = new Map<string, string>();
      for (const p of mine) {
        if (!add(p)) continue;
        const key = objKey(p);
        if (p.metadata.annotations?.['microseg.dev/purpose'] !== undefined)
          denies.set(p.metadata.namespace ?? '', key);
        for (const e of p.status?.evidence ?? [])
          evidence.push({
            policy: key,
            direction: e.direction,
            peer: e.peer,
            protocol: e.protocol,
            port: e.port,
            count: e.count,
            firstSeen: e.firstSeen,
            lastSeen: e.lastSeen,
            edges: [],
          } as RuleEvidence);
      }
      for (const p of mine) {
        const w = p.metadata.annotations?.[WORKLOAD_ANNOTATION];
        const deny = denies.get(p.metadata.namespace ?? '');
        if (w !== undefined && policies.get(objKey(p)) !== undefined)
          byWorkload[w] = [...(deny ? [deny] : []), objKey(p)];
      }
      // The default deny selects every pod of its namespace: a workload there without a policy of its own
      // (none was observed) is denied all the same, which its details must say.
      if (denies.size > 0)
        for (const w of cluster?.()?.workloads.values() ?? []) {
          const deny = denies.get(w.namespace);
          if (deny !== undefined && !w.hostNetwork && byWorkload[w.id] === undefined)
            byWorkload[w.id] = [deny];
        }
      out.segmentations.push({ name, mode, proposal: 'frozen', policies: count });
    } else {
      const proposal = analysisOf(name)?.proposal;
      if (proposal) {
        const kept = new Set<string>();
        for (const p of proposal.policies) if (add(p)) kept.add(objKey(p));
        for (const [w, names] of Object.entries(proposal.byWorkload)) byWorkload[w] = names;
        evidence.push(...proposal.evidence.filter((e) => kept.has(e.policy)));
        out.notExpressible.push(...proposal.notExpressible);
        out.unobserved.push(...proposal.unobserved);
        out.warnings.push(...proposal.warnings);
        for (const ns of proposal.namespaces) namespaces.add(ns);
      }
      out.segmentations.push({ name, mode, proposal: 'live', policies: count });
    }
  }
  out.policies = [...policies.entries()].sort(([a], [b]) => byteOrder(a, b)).map(([, p]) => p);
  out.byWorkload = Object.fromEntries(Object.entries(byWorkload).sort(([a], [b]) => byteOrder(a, b)));
  out.namespaces = [...namespaces].sort(byteOrder);
  return out;
}

export function controllerViewSource(input: ControllerViewInput): ViewSource {
  const current = () => mergeAnalyses(input.analyses());
  /** Pod (`namespace/name`) → workload id, from the caches: the same on every replica. */
  const podWorkload = (): ReadonlyMap<string, string> => input.cluster?.().podWorkload ?? new Map();
  /** Throws SourceUnavailable while the informer caches have not synced: what they hold is not all. */
  const cachesSynced = (): void => {
    if (input.leadership?.().synced === false) throw new SourceUnavailable(CACHES_NOT_SYNCED);
  };
  /** Throws SourceUnavailable when this replica does not hold the learned graph now. */
  const held = (names?: readonly string[]): void => {
    cachesSynced();
    const l = input.leadership?.();
    if (!l) return;
    if (!l.leading) throw new SourceUnavailable(NOT_LEADER_GRAPH);
    const pending = l.unrestored(names);
    if (pending.length > 0) throw new SourceUnavailable(restoringMessage(pending));
  };
  const learned = () => {
    held();
    return current();
  };
  const source: ViewSource = {
    info: () => ({ mode: 'controller', title: 'microseg' }),
    graph: () => learned().graph,
    segments: () => learned().segments,
    // Every Segmentation's live analysis, in Audit and Enforce too (as status.unobserved counts them):
    // a frozen proposal's default deny still selects a workload no flow was observed for.
    // One being deleted proposes nothing (see `proposal`), so none of its workloads is listed.
    ...(input.cronJob
      ? {
          cronJob: (ns: string, name: string) => {
            cachesSynced();
            return input.cronJob?.(ns, name);
          },
        }
      : {}),
    ...(input.snapshot
      ? {
          auditPolicies: (
            given: readonly NetworkPolicy[],
            opts: { prune: boolean; clusterPolicies: readonly OtherObject[]; signal?: AbortSignal },
          ) => {
            const graph = learned().graph;
            const snapshot = input.snapshot!();
            // In slices: a large set is audited without holding the event loop (the probes, watches,
            // reconciles and isolation webhooks go on meanwhile).
            return runInSlices(
              auditPolicySetSteps({
                snapshot,
                identity: input.identity?.() ?? buildIdentity(snapshot),
                graph,
                given,
                givenClusterPolicies: opts.clusterPolicies,
                prune: opts.prune,
                ...(input.engine ? { engine: input.engine } : {}),
              }),
              { signal: opts.signal },
            );
          },
        }
      : {}),
    unobserved: () => {
      const analysisOf = input.analysisOf;
      if (!analysisOf) return learned().proposal.unobserved;
      held(); // the same 503s as the graph, without merging every analysis only to read one list
      return input
        .segmentations()
        .filter((s) => !s.metadata.deletionTimestamp)
        .flatMap((s) => analysisOf(s.metadata.name)?.proposal.unobserved ?? []);
    },
    proposal: () => {
      cachesSynced();
      const segmentations = input.segmentations();
      const learn = segmentations
        .filter((s) => !s.metadata.deletionTimestamp && !proposalFrozen(s))
        .map((s) => s.metadata.name)
        .sort(byteOrder);
      const l = input.leadership?.();
      if (l && !l.leading && learn.length > 0) throw new SourceUnavailable(notLeaderProposal(learn));
      if (learn.length > 0) held(learn);
      return controllerProposal(
        segmentations,
        input.proposals?.() ?? [],
        input.analysisOf ?? (() => undefined),
        // Built only when a frozen default deny asks for the workloads it covers.
        () => input.cluster?.(),
      );
    },
    // The layout is cached per version: a new node or edge anywhere gives a new version.
    version: () => {
      const g = learned().graph;
      return `${g.nodes.length}:${g.edges.length}:${g.edges.reduce((n, e) => n + e.count, 0)}`;
    },
    audits: () => {
      cachesSynced();
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
      cachesSynced();
      const list = isolations();
      if (list.length === 0) return [];
      const pods = podWorkload();
      return [...list]
        .sort((a, b) => compareText(objKey(a), objKey(b)))
        .map((i) => isolationFromResource(i, pods));
    };
  }
  const actions = input.actions;
  if (actions) {
    source.isolate = async (req, user) => {
      // A custom resource's workload (CloudNativePG's Cluster) is isolated in the API group its pods'
      // controller owner reference gives; the graph's id names only its kind.
      const custom = input.cluster?.().workloads.get(req.workload)?.customResource;
      const group = custom ? custom.apiVersion.slice(0, custom.apiVersion.indexOf('/')) : undefined;
      return isolationFromResource(
        await actions.isolate(req.workload, req.reason, user, group),
        podWorkload(),
      );
    };
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
