/**
 * The offline pipeline, end to end, as pure functions: snapshot + flows → identity → graph → segments →
 * proposal. The CLI and the controller both call these; the controller feeds `analyse` from its own
 * long-lived aggregator.
 */
import type { Flow } from './flows/types.ts';
import { Aggregator } from './graph/aggregate.ts';
import type { StreamedGraph } from './graph/build.ts';
import { buildServiceGraph, streamServiceGraph } from './graph/build.ts';
import type { EdgeRecord, ServiceGraph } from './graph/types.ts';
import type { Identity, IdentityOptions } from './identity/index.ts';
import { buildIdentity, clusterDNSPorts } from './identity/index.ts';
import type { Peer } from './identity/types.ts';
import type { ClusterSnapshot } from './model/snapshot.ts';
import { proposePolicies } from './policy/index.ts';
import type { PolicyOptions, Proposal } from './policy/types.ts';
import type { SegmentOptions, SegmentResult } from './segments/index.ts';
import { computeSegments } from './segments/index.ts';

export interface PipelineOptions {
  identity?: IdentityOptions;
  segments?: SegmentOptions;
  policy?: PolicyOptions;
  /**
   * Called once identity is built, before the first flow is read: the set-up's garbage is all dead by
   * then (the CLI gives its memory back to the system there).
   */
  afterIdentity?: () => void;
  /**
   * Called once every flow is aggregated, before the graph is built: what reading needed (the
   * scanner's memory, the de-duplicator's connections) is garbage by then.
   */
  afterIngest?: () => void;
  /**
   * `recommend` only: called once the proposal is made, before it is proved (what building the
   * graph, its segments and the proposal needed is garbage by then).
   */
  afterAnalysis?: () => void;
  /**
   * `recommend` only: called once the proposal is proved, before the files are rendered (the
   * semantics engine the proof built is garbage by then).
   */
  afterProof?: () => void;
}

export interface Analysis {
  identity: Identity;
  graph: ServiceGraph;
  segments: SegmentResult;
  proposal: Proposal;
  /**
   * Flows with an end that could not be attributed, each counted once (summed, the edges' counts would
   * count a flow to a Service once per backend; see `src/graph/counts.ts`). Absent when the edges did
   * not come from an aggregation.
   */
  unattributedFlows?: number;
}

export interface AnalyseInput {
  identity: Identity;
  /** Sorted by source, destination, protocol, port; iterated once by buildServiceGraph. */
  edges: Iterable<EdgeRecord>;
  peers: Map<string, Peer>;
  names: Map<string, Set<string>>;
  /** See Analysis.unattributedFlows. */
  unattributedFlows?: number;
}

/** The graph and its segments, without a proposal (what `microseg graph` prints). */
export type GraphAnalysis = Omit<Analysis, 'proposal'>;

/** Graph and segments from aggregated edges. */
export function analyseGraph(input: AnalyseInput, opts: PipelineOptions = {}): GraphAnalysis {
  const graph = buildServiceGraph(input);
  return { identity: input.identity, graph, segments: segmentGraph(input.identity, graph, opts) };
}

/** Segments of a graph; each workload node gets its segment's id. */
function segmentGraph(identity: Identity, graph: StreamedGraph, opts: PipelineOptions): SegmentResult {
  const segments = computeSegments(identity.workloads, graph, opts.segments);
  for (const n of graph.nodes) {
    const s = segments.membership[n.id];
    if (s) n.segment = s;
  }
  return segments;
}

/** Graph, segments and proposal from aggregated edges. */
export function analyse(input: AnalyseInput, opts: PipelineOptions = {}): Analysis {
  const { graph, segments } = analyseGraph(input, opts);
  const proposal = proposePolicies(
    {
      workloads: input.identity.workloads,
      graph,
      clusterDNS: input.identity.clusterDNS,
      clusterDNSPorts: clusterDNSPorts(input.identity),
      clusterDNSServicePorts: input.identity.clusterDNSServicePorts,
      apiserverEndpoints: input.identity.apiserverEndpoints,
      podNetworks: input.identity.podNetworks,
      ipv6: input.identity.ipv6,
      membership: segments.membership,
    },
    opts.policy,
  );
  return {
    identity: input.identity,
    graph,
    segments,
    proposal,
    ...(input.unattributedFlows !== undefined ? { unattributedFlows: input.unattributedFlows } : {}),
  };
}

/** Identity and the flows aggregated into edges. Memory is bounded by distinct edges, not flows. */
async function aggregate(
  snapshot: ClusterSnapshot,
  flows: AsyncIterable<Flow> | Iterable<Flow>,
  opts: PipelineOptions,
): Promise<{ input: AnalyseInput; flows: number }> {
  const identity = buildIdentity(snapshot, opts.identity);
  opts.afterIdentity?.();
  return aggregateFlows(identity, flows, opts);
}

/**
 * The flows aggregated into edges, resolved by an identity already built; `opts.afterIngest` is called
 * once the last flow is in.
 */
export async function aggregateFlows(
  identity: Identity,
  flows: AsyncIterable<Flow> | Iterable<Flow>,
  opts: Pick<PipelineOptions, 'afterIngest'> = {},
): Promise<{ input: AnalyseInput; flows: number }> {
  const agg = new Aggregator(identity);
  // A reader's batches are taken whole: one await per batch instead of one per flow. Inspektor Gadget
  // records go to `addGadget` (a connection to a Service traced at both ends is one); a reader says
  // whether it has read any, so that a run of other formats looks at no flow's format.
  if (hasBatches(flows))
    for await (const batch of flows.batches()) {
      if (flows.hasFormat?.('inspektor-gadget') === false) agg.addAll(batch);
      else addEach(agg, batch);
    }
  else for await (const f of flows) addOne(agg, f);
  agg.flush();
  opts.afterIngest?.();
  return {
    // Edge records are built as the graph takes them, never all held at once.
    input: {
      identity,
      edges: agg.sortedEdges(),
      peers: agg.peers(),
      names: agg.names(),
      unattributedFlows: agg.stats.unattributed,
    },
    flows: agg.stats.flows,
  };
}

/** A source that also hands its flows out in batches (as FlowReader does). */
interface FlowBatches {
  batches(): AsyncIterable<readonly Flow[]>;
  /** Whether the flows handed out so far may include some of this input format. */
  hasFormat?(format: Flow['input']): boolean;
}

function addOne(agg: Aggregator, f: Flow): void {
  if (f.input === 'inspektor-gadget') agg.addGadget(f);
  else agg.add(f);
}

function addEach(agg: Aggregator, flows: readonly Flow[]): void {
  for (let i = 0; i < flows.length; i++) addOne(agg, flows[i]!);
}

function hasBatches(flows: object): flows is FlowBatches {
  return typeof (flows as Partial<FlowBatches>).batches === 'function';
}

/** Runs the whole pipeline over a stream of flows. */
export async function runPipeline(
  snapshot: ClusterSnapshot,
  flows: AsyncIterable<Flow> | Iterable<Flow>,
  opts: PipelineOptions = {},
): Promise<Analysis & { flows: number }> {
  const { input, flows: n } = await aggregate(snapshot, flows, opts);
  return { ...analyse(input, opts), flows: n };
}

/**
 * The graph pipeline from an identity already built: nothing after identity reads the snapshot, so a
 * caller that keeps only the identity (`microseg graph`) ingests without the snapshot in memory.
 */
export async function runGraphPipelineWith(
  identity: Identity,
  flows: AsyncIterable<Flow> | Iterable<Flow>,
  opts: PipelineOptions = {},
): Promise<GraphAnalysis & { flows: number }> {
  const { input, flows: n } = await aggregateFlows(identity, flows, opts);
  return { ...analyseGraph(input, opts), flows: n };
}

/**
 * runGraphPipelineWith with the graph's edges made as they are iterated (from the aggregated edges,
 * each time): the same graph, without every edge held at once (what `microseg graph` writes).
 */
export async function runStreamedGraphPipeline(
  identity: Identity,
  flows: AsyncIterable<Flow> | Iterable<Flow>,
  opts: PipelineOptions = {},
): Promise<{ graph: StreamedGraph; segments: SegmentResult; flows: number }> {
  const { input, flows: n } = await aggregateFlows(identity, flows, opts);
  const graph = streamServiceGraph(input);
  return { graph, segments: segmentGraph(identity, graph, opts), flows: n };
}

/** The pipeline up to the graph and its segments: no policies are proposed. */
export async function runGraphPipeline(
  snapshot: ClusterSnapshot,
  flows: AsyncIterable<Flow> | Iterable<Flow>,
  opts: PipelineOptions = {},
): Promise<GraphAnalysis & { flows: number }> {
  const identity = buildIdentity(snapshot, opts.identity);
  opts.afterIdentity?.();
  return runGraphPipelineWith(identity, flows, opts);
}
