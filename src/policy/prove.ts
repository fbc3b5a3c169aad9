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
import { PROTOCOLS } from '../verify/types.ts';
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

/** What is needed to turn graph node ids into engine endpoints. */
export interface EndpointContext {
  workloads: ReadonlyMap<string, Workload>;
  /** Graph nodes by id (external peers carry their address). */
  nodes: ReadonlyMap<string, ServiceGraph['nodes'][number]>;
  /** API server addresses, the endpoints first. */
  apiserverIPs: readonly string[];
}

/**
 * The engine endpoint standing for a graph node: a concrete pod of a workload when the snapshot has one
 * (the engine then knows its node and container ports), the workload's pod template as a class otherwise,
 * the address of an external peer; undefined when no query can represent it.
 */
export function graphEndpoint(id: string, ctx: EndpointContext): Endpoint | undefined {
  const w = ctx.workloads.get(id);
  if (w) {
    if (w.hostNetwork) return w.hostIPs?.[0] ? { ip: w.hostIPs[0] } : undefined;
    if (w.pods.length > 0) return { namespace: w.namespace, pod: w.pods[0]! };
    const namedPorts = w.namedPorts.map((p) => ({
      name: p.name,
      port: p.port,
      ...((PROTOCOLS as readonly string[]).includes(p.protocol)
        ? { protocol: p.protocol as L4Protocol }
        : {}),
    }));
    return { namespace: w.namespace, labels: w.labels, namedPorts, name: w.id };
  }
  const n = ctx.nodes.get(id);
  if (n?.kind === 'kube-apiserver') {
    const ip = ctx.apiserverIPs[0] ?? n.ip;
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
  const ctx: EndpointContext = {
    workloads: input.workloads,
    nodes: new Map(input.graph.nodes.map((n) => [n.id, n])),
    apiserverIPs: input.apiserverIPs,
  };
  const observed: ObservedConnection[] = [];
  for (const e of input.graph.edges) {
    if (!edgeWasAllowed(e) || notExpressible.has(e.id)) continue;
    if (e.protocol !== 'TCP' && e.protocol !== 'UDP' && e.protocol !== 'SCTP') continue;
    const from = graphEndpoint(e.source, ctx);
    const to = graphEndpoint(e.target, ctx);
    if (!from || !to || ('ip' in from && 'ip' in to && !('namespace' in from) && !('namespace' in to)))
      continue;
    observed.push({ from, to, port: e.port, protocol: e.protocol, evidence: e satisfies GraphEdge });
  }
  const report = verifyProposal(engine, observed, { classes: workloadClasses(engine, input.podWorkload) });
  const blocked = report.blocked.map((b) => `${(b.connection.evidence as GraphEdge).id}: ${b.reason}`).sort();
  return { report, checked: observed.length, blocked };
}
