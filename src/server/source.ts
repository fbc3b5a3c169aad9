/** Adapts an offline `Analysis` (the demo, the CLI) to the `ViewSource` the server and page read. */
import type { CronJob } from '../model/k8s.ts';
import type { ClusterSnapshot } from '../model/snapshot.ts';
import { auditPolicySetSteps } from '../policy/audit.ts';
import type { Analysis } from '../pipeline.ts';
import type { AuditView, BlastRadiusView, IsolationView, SourceInfo, ViewSource } from './types.ts';
import { runInSlices } from './slices.ts';

export interface AnalysisExtras {
  mode?: SourceInfo['mode'];
  title?: string;
  generatedAt?: string;
  /** Audit views to show (the demo passes its `offlineAudit`). Omitted: no rollout view. */
  audits?: AuditView[];
  /** Isolations to show. Omitted: no isolation view. */
  isolations?: IsolationView[];
  /** Blast radius of a workload before and after the proposal (from the semantics engine). */
  blastRadius?: (workload: string) => BlastRadiusView | undefined;
  /** The snapshot's CronJobs, for their details (schedule and runs). */
  cronJobs?: readonly CronJob[];
  /** The cluster snapshot the analysis was made from: with it, `POST /audit` audits policy sets. */
  snapshot?: ClusterSnapshot;
}

/** A read-only source over one computed analysis: its graph never changes, so its version is fixed. */
export function analysisSource(
  analysis: Analysis & { flows?: number },
  extras: AnalysisExtras = {},
): ViewSource {
  const info: SourceInfo = {
    mode: extras.mode ?? 'offline',
    title: extras.title ?? 'microseg',
    ...(extras.generatedAt ? { generatedAt: extras.generatedAt } : {}),
    ...(analysis.flows !== undefined ? { flows: analysis.flows } : {}),
  };
  const source: ViewSource = {
    info: () => info,
    graph: () => analysis.graph,
    segments: () => analysis.segments,
    proposal: () => analysis.proposal,
    version: () => 'static',
  };
  if (extras.audits) {
    const audits = extras.audits;
    source.audits = () => audits;
  }
  if (extras.isolations) {
    const isolations = extras.isolations;
    source.isolations = () => isolations;
  }
  if (extras.blastRadius) {
    const cache = new Map<string, BlastRadiusView | undefined>();
    const f = extras.blastRadius;
    source.blastRadius = (w) => {
      if (!cache.has(w)) cache.set(w, f(w));
      return cache.get(w);
    };
  }
  if (extras.snapshot) {
    const snapshot = extras.snapshot;
    // In slices: a large set is audited without holding the event loop.
    source.auditPolicies = (given, { prune, clusterPolicies, signal }) =>
      runInSlices(
        auditPolicySetSteps({
          snapshot,
          identity: analysis.identity,
          graph: analysis.graph,
          given,
          givenClusterPolicies: clusterPolicies,
          prune,
        }),
        { signal },
      );
  }
  if (extras.cronJobs) {
    const byName = new Map(extras.cronJobs.map((c) => [`${c.metadata.namespace}/${c.metadata.name}`, c]));
    source.cronJob = (ns, name) => byName.get(`${ns}/${name}`);
  }
  return source;
}
