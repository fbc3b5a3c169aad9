/**
 * report.json: everything behind a proposal, deterministic (no run time, sorted collections). Every map
 * keyed by data (reasons, peer kinds, workload ids) is written with its keys sorted, whatever order the
 * input met them in: the same records in another order give the same file.
 */
import type { IngestStats } from '../flows/reader.ts';
import { sortKeys } from '../graph/build.ts';
import { countFlows } from '../graph/counts.ts';
import type { Analysis } from '../pipeline.ts';
import type { Proof } from './prove.ts';

export const REPORT_VERSION = 1;

export function buildReport(
  analysis: Analysis,
  ingest: IngestStats | undefined,
  proof: Proof | undefined,
  /** Warnings about the snapshot's input (objects skipped, policies not evaluated). */
  inputWarnings: readonly string[] = [],
  /** The unobserved CronJobs none of whose runs the flows cover (cronJobsNotRunSince). */
  cronJobsNotRun: readonly string[] = [],
): object {
  const { graph, segments, proposal, identity } = analysis;
  const byKind: Record<string, number> = {};
  for (const n of graph.nodes) byKind[n.kind] = (byKind[n.kind] ?? 0) + 1;
  // Each flow once, also one folded into the edges of several backends of a Service.
  const unattributed =
    analysis.unattributedFlows ??
    countFlows(graph.edges.filter((e) => e.source.startsWith('unknown') || e.target.startsWith('unknown')));
  const warnings = [...inputWarnings, ...identity.warnings, ...proposal.warnings];
  if (unattributed > 0)
    warnings.push(`${unattributed} flow(s) have an end that could not be attributed to a workload or peer`);
  if (ingest && ingest.lostEvents !== 0)
    warnings.push(`Hubble reported ${ingest.lostEvents} lost event(s): the graph may miss connections`);
  if (ingest && ingest.lateObservations > 0)
    warnings.push(
      `${ingest.lateObservations} observation(s) came out of time order, too late to be merged with their ` +
        `connection: connections may count twice, and one dropped at a node may look allowed (give each ` +
        `node's file as its own --flows, or sort the lines by time)`,
    );
  return {
    reportVersion: REPORT_VERSION,
    inputs: ingest
      ? {
          sources: ingest.sources,
          lines: ingest.lines,
          observations: ingest.observations,
          flows: ingest.flows,
          duplicatesMerged: ingest.duplicates,
          lateObservations: ingest.lateObservations,
          repliesFlipped: ingest.repliesFlipped,
          skipped: sortKeys(ingest.skipped),
          hubbleEvents: sortKeys(ingest.events),
          lostEvents: ingest.lostEvents,
          badLines: ingest.badLines,
          badByReason: sortKeys(ingest.bad),
          badSamples: ingest.samples,
        }
      : undefined,
    identity: { ...identity.stats, reserved: sortKeys(identity.stats.reserved) },
    graph: {
      nodes: graph.nodes.length,
      edges: graph.edges.length,
      nodesByKind: sortKeys(byKind),
      workloads: [...identity.workloads.values()].filter((w) => !w.observedOnly).length,
    },
    segments: {
      count: segments.segments.length,
      modularity: round(segments.modularity),
      resolution: segments.resolution,
      seed: segments.seed,
      hubDegree: segments.hubDegree,
      list: segments.segments,
    },
    policies: {
      count: proposal.policies.length,
      namespaces: proposal.namespaces,
      names: proposal.policies.map((p) => `${p.metadata.namespace}/${p.metadata.name}`),
      byWorkload: sortKeys(proposal.byWorkload),
      unobserved: proposal.unobserved,
      cronJobsNotRun,
    },
    verification: proof
      ? {
          observedConnections: proof.checked + proof.unchecked.length,
          checkedConnections: proof.checked,
          allowedObserved: proof.report.allowedObserved,
          blocked: proof.blocked,
          unchecked: proof.unchecked,
          willBeBlocked: proof.willBeBlocked,
          excessCount: proof.report.excessCount,
          allowedTuples: proof.report.allowedTuples,
          observedTuples: proof.report.observedTuples,
          permissiveness: round(proof.report.permissiveness),
          excess: proof.report.excess,
        }
      : undefined,
    evidence: proposal.evidence,
    notExpressible: proposal.notExpressible,
    warnings: [...new Set(warnings)].sort(),
  };
}

function round(x: number): number {
  return Math.round(x * 10000) / 10000;
}
