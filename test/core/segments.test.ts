import { describe, expect, it } from 'vitest';
import type { GraphEdge, ServiceGraph } from '../../src/graph/types.ts';
import type { Workload } from '../../src/identity/types.ts';
import { computeSegments, slug } from '../../src/segments/index.ts';

function workload(ns: string, name: string, extra: Partial<Workload> = {}): Workload {
  return {
    id: `${ns}/Deployment/${name}`,
    namespace: ns,
    kind: 'Deployment',
    name,
    selector: { matchLabels: { app: name } },
    labels: { app: name },
    namedPorts: [],
    pods: [`${name}-1`],
    hostNetwork: false,
    roles: [],
    ...extra,
  };
}

function edge(a: Workload, b: Workload, count = 10): GraphEdge {
  return {
    id: `${a.id}->${b.id}:80/TCP`,
    source: a.id,
    target: b.id,
    protocol: 'TCP',
    port: 80,
    count,
    firstSeen: '2026-01-01T00:00:00.000Z',
    lastSeen: '2026-01-01T00:00:00.000Z',
    verdicts: { FORWARDED: count },
  };
}

/** Two tight groups joined by one edge, plus a DNS server everyone calls and a scraper calling everyone. */
function twoGroups() {
  const a = ['a1', 'a2', 'a3', 'a4'].map((n) => workload('alpha', n));
  const b = ['b1', 'b2', 'b3', 'b4'].map((n) => workload('beta', n));
  const dns = workload('kube-system', 'coredns', { roles: ['cluster-dns'] });
  const scraper = workload('monitoring', 'prometheus');
  const edges: GraphEdge[] = [];
  for (const g of [a, b]) for (const x of g) for (const y of g) if (x !== y) edges.push(edge(x, y));
  edges.push(edge(a[0]!, b[0]!, 1));
  for (const x of [...a, ...b]) edges.push(edge(x, dns), edge(scraper, x));
  const all = [...a, ...b, dns, scraper];
  const graph: ServiceGraph = { nodes: [], edges };
  return { workloads: new Map(all.map((w) => [w.id, w])), graph, a, b };
}

describe('segments', () => {
  it('finds the planted groups and keeps hubs out of them', () => {
    const { workloads, graph, a, b } = twoGroups();
    const r = computeSegments(workloads, graph);
    expect(new Set(a.map((w) => r.membership[w.id]))).toEqual(new Set(['alpha']));
    expect(new Set(b.map((w) => r.membership[w.id]))).toEqual(new Set(['beta']));
    expect(r.membership['kube-system/Deployment/coredns']).toBe('kube-system-platform');
    expect(r.membership['monitoring/Deployment/prometheus']).toBe('monitoring-platform');
    expect(r.modularity).toBeGreaterThan(0.3);
    expect(r.segments.find((s) => s.id === 'alpha')).toMatchObject({ kind: 'community', internalEdges: 12 });
  });

  it('is deterministic for a seed and independent of input order', () => {
    const { workloads, graph } = twoGroups();
    const first = computeSegments(workloads, graph, { seed: 5 });
    const reversed = new Map([...workloads.entries()].reverse());
    const again = computeSegments(reversed, { nodes: [], edges: [...graph.edges].reverse() }, { seed: 5 });
    expect(again).toEqual(first);
  });

  it('pins a workload to the segment its label names', () => {
    const { workloads, graph, a } = twoGroups();
    const pinned = { ...a[1]!, labels: { ...a[1]!.labels, 'microseg.dev/segment': 'Payments PCI' } };
    workloads.set(pinned.id, pinned);
    const r = computeSegments(workloads, graph);
    expect(r.membership[pinned.id]).toBe('payments-pci');
    expect(r.segments.find((s) => s.id === 'payments-pci')!.kind).toBe('pinned');
    expect(r.membership[a[0]!.id]).toBe('alpha');
  });

  it('names several communities of one namespace after their busiest member, without collisions', () => {
    const { workloads, graph, b } = twoGroups();
    // Move beta's workloads into alpha's namespace: two communities in one namespace.
    for (const w of b) workloads.set(w.id, { ...w, namespace: 'alpha' });
    const r = computeSegments(workloads, graph);
    const names = r.segments.filter((s) => s.kind === 'community').map((s) => s.id);
    expect(names).toHaveLength(2);
    expect(new Set(names).size).toBe(2);
    for (const n of names) expect(n).toMatch(/^alpha-[ab]\d$/);
  });

  it('slugs names into DNS labels', () => {
    expect(slug('Team/Payments  (PCI)')).toBe('team-payments-pci');
    expect(slug('---')).toBe('segment');
    expect(slug('x'.repeat(80))).toHaveLength(50);
  });
});
