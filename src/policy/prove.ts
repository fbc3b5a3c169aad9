/**
 * The proof step of `recommend`: the proposal, applied on top of the cluster's own policies, must admit
 * every observed connection. Observed graph edges become engine queries between real pods (or
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
import { edgeWasAllowed, MANAGED_BY_LABEL, MANAGED_BY_VALUE } from './index.ts';
import type { Proposal } from './types.ts';

export interface ProofInput {
  snapshot: ClusterSnapshot;
  workloads: ReadonlyMap<string, Workload>;
  graph: ServiceGraph;
  proposal: Proposal;
  apiserverIPs: readonly string[];
  /** Workload id of each pod, by `namespace/name`: excess reachability is counted between workloads. */
  podWorkload: ReadonlyMap<string, string>;
}

export interface Proof {
  report: VerifyReport;
  /** Observed connections checked (allowed edges NetworkPolicy can express). */
  checked: number;
  /** Blocked connections as `edge id: reason`, sorted. */
  blocked: string[];
}

/** The engine endpoint standing for a graph node, or undefined when no query can represent it. */
function endpointFor(
  id: string,
  graph: Map<string, ServiceGraph['nodes'][number]>,
  input: ProofInput,
): Endpoint | undefined {
  const w = input.workloads.get(id);
  if (w) {
    if (w.hostNetwork) return w.hostIPs?.[0] ? { ip: w.hostIPs[0] } : undefined;
    if (w.pods.length > 0) return { namespace: w.namespace, pod: w.pods[0]! };
    const namedPorts = w.namedPorts.map((p) => ({
      name: p.name,
      port: p.port,
      protocol: p.protocol as L4Protocol,
    }));
    return { namespace: w.namespace, labels: w.labels, namedPorts, name: w.id };
  }
  const n = graph.get(id);
  if (n?.kind === 'kube-apiserver') {
    const ip = input.apiserverIPs[0] ?? n.ip;
    return ip ? { ip } : undefined;
  }
  return n?.ip ? { ip: n.ip } : undefined;
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
    const cls: PodClass = { ...c, index: out.length, members: [...c.members], ...(id ? { name: id } : {}) };
    if (id) byWorkload.set(id, cls);
    out.push(cls);
  }
  return out;
}

export function proveProposal(input: ProofInput, options?: EngineOptions): Proof {
  const notExpressible = new Set(input.proposal.notExpressible.map((n) => n.edge));
  const existing = input.snapshot.networkPolicies.filter(
    (p) => p.metadata.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY_VALUE,
  );
  const engine = engineFromSnapshot(
    { ...input.snapshot, networkPolicies: [...existing, ...input.proposal.policies] },
    options,
  );
  const nodes = new Map(input.graph.nodes.map((n) => [n.id, n]));
  const observed: ObservedConnection[] = [];
  for (const e of input.graph.edges) {
    if (!edgeWasAllowed(e) || notExpressible.has(e.id)) continue;
    if (e.protocol !== 'TCP' && e.protocol !== 'UDP' && e.protocol !== 'SCTP') continue;
    const from = endpointFor(e.source, nodes, input);
    const to = endpointFor(e.target, nodes, input);
    if (!from || !to || ('ip' in from && 'ip' in to && !('namespace' in from) && !('namespace' in to)))
      continue;
    observed.push({ from, to, port: e.port, protocol: e.protocol, evidence: e satisfies GraphEdge });
  }
  const report = verifyProposal(engine, observed, { classes: workloadClasses(engine, input.podWorkload) });
  const blocked = report.blocked.map((b) => `${(b.connection.evidence as GraphEdge).id}: ${b.reason}`).sort();
  return { report, checked: observed.length, blocked };
}
