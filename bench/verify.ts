/**
 * Benchmark of the semantics engine: a synthetic cluster of 20k workloads (one pod each, 200 namespaces),
 * a per-workload least-privilege proposal (ingress from its callers, egress to its callees, port 8080),
 * and 100k observed edges. Reports the time to verify the edges against the proposal (blocked flows plus
 * excess reachability over every class pair) and the throughput of the reachability matrix.
 */
import { pathToFileURL } from 'node:url';
import type { Namespace, NetworkPolicy, Pod } from '../src/model/k8s.ts';
import { buildEngine } from '../src/verify/engine.ts';
import { podClasses, ReachMatrix, verifyProposal } from '../src/verify/reach.ts';
import type { ObservedConnection } from '../src/verify/reach.ts';
import { seededRandom } from '../src/segments/index.ts';

export function syntheticCluster(workloads = 20_000, edges = 100_000, namespaces = 200) {
  const rand = seededRandom(42);
  const nsOf = (i: number) => `ns-${i % namespaces}`;
  const ns: Namespace[] = Array.from({ length: namespaces }, (_, i) => ({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: `ns-${i}`, labels: { team: `t${i % 10}` } },
  }));
  const pods: Pod[] = Array.from({ length: workloads }, (_, i) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: `w${i}-0`, namespace: nsOf(i), labels: { app: `w${i}` } },
    spec: { containers: [{ name: 'main', ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }] }] },
    status: { podIPs: [{ ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` }] },
  }));
  const callees = new Map<number, Set<number>>();
  const callers = new Map<number, Set<number>>();
  const observed: ObservedConnection[] = [];
  while (observed.length < edges) {
    const a = Math.floor(rand() * workloads);
    // Mostly local calls (same namespace band), some far away.
    const b = rand() < 0.8 ? (a + 1 + Math.floor(rand() * 400)) % workloads : Math.floor(rand() * workloads);
    if (a === b || callees.get(a)?.has(b)) continue;
    (callees.get(a) ?? callees.set(a, new Set()).get(a)!).add(b);
    (callers.get(b) ?? callers.set(b, new Set()).get(b)!).add(a);
    observed.push({
      from: { namespace: nsOf(a), labels: { app: `w${a}` } },
      to: { namespace: nsOf(b), labels: { app: `w${b}` } },
      port: 8080,
      protocol: 'TCP',
    });
  }
  const peer = (j: number) => ({
    namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': nsOf(j) } },
    podSelector: { matchLabels: { app: `w${j}` } },
  });
  const proposal: NetworkPolicy[] = pods.map((_, i) => {
    const ins = [...(callers.get(i) ?? [])].sort((x, y) => x - y);
    const outs = [...(callees.get(i) ?? [])].sort((x, y) => x - y);
    return {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: `w${i}`, namespace: nsOf(i) },
      spec: {
        podSelector: { matchLabels: { app: `w${i}` } },
        policyTypes: ['Ingress', 'Egress'],
        ingress: ins.length > 0 ? [{ from: ins.map(peer), ports: [{ port: 'http' }] }] : [],
        egress: outs.length > 0 ? [{ to: outs.map(peer), ports: [{ port: 8080 }] }] : [],
      },
    };
  });
  return { namespaces: ns, pods, proposal, observed };
}

export async function benchVerify(): Promise<{ name: string; value: number; unit: string }[]> {
  const { namespaces, pods, proposal, observed } = syntheticCluster();
  const t0 = performance.now();
  const engine = buildEngine({ namespaces, pods, networkPolicies: proposal });
  const t1 = performance.now();
  const cpu1 = process.cpuUsage();
  const report = verifyProposal(engine, observed);
  const cpuVerify = process.cpuUsage(cpu1);
  const t2 = performance.now();
  if (report.blocked.length !== 0) throw new Error(`bench: ${report.blocked.length} observed edges blocked`);
  if (report.excessCount !== 0) throw new Error(`bench: unexpected excess ${report.excessCount}`);
  const classes = podClasses(engine);
  const m = new ReachMatrix(engine, classes);
  const t3 = performance.now();
  const totals = m.totals();
  const t4 = performance.now();
  const open = buildEngine({ namespaces, pods });
  const mOpen = new ReachMatrix(open, podClasses(open));
  const t5 = performance.now();
  const openTotals = mOpen.totals();
  const t6 = performance.now();
  await Promise.resolve();
  return [
    { name: 'verify: build engine (20k pods, 20k policies)', value: round((t1 - t0) / 1000), unit: 's' },
    {
      name: 'verify: 100k observed edges vs proposal, with excess',
      value: round((t2 - t1) / 1000),
      unit: 's',
    },
    {
      name: 'verify: 100k observed edges vs proposal, with excess (CPU time)',
      value: round((cpuVerify.user + cpuVerify.system) / 1e6),
      unit: 's',
    },
    { name: 'verify: reachability matrix (proposal), cells', value: totals.cells, unit: 'cells' },
    {
      name: 'verify: reachability matrix (proposal)',
      value: Math.round(totals.cells / ((t4 - t3) / 1000)),
      unit: 'pairs/s',
    },
    {
      name: 'verify: reachability matrix (proposal), engine evaluations',
      value: m.evaluations,
      unit: 'evaluations',
    },
    {
      name: 'verify: reachability matrix (no policies)',
      value: Math.round(openTotals.cells / ((t6 - t5) / 1000)),
      unit: 'pairs/s',
    },
    { name: 'verify: reachable pairs before proposal', value: openTotals.allowedPairs, unit: 'pairs' },
    { name: 'verify: reachable pairs after proposal', value: totals.allowedPairs, unit: 'pairs' },
  ];
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  for (const r of await benchVerify()) console.log(`${r.name}: ${r.value} ${r.unit}`);
}
