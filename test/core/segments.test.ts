import { describe, expect, it } from 'vitest';
import type { GraphEdge, ServiceGraph } from '../../src/graph/types.ts';
import type { Workload } from '../../src/identity/types.ts';
import { runPipeline } from '../../src/pipeline.ts';
import { computeSegments, slug } from '../../src/segments/index.ts';
import { fixtureFlows, fixtureSnapshot } from './fixture.ts';

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

  it('gives a pinned name to the pinned workloads, and a suffix to the community that would take it', () => {
    const { workloads, graph, a, b } = twoGroups();
    // A beta workload pinned to "alpha", another to "alpha-2": alpha's community sorts first and used to
    // take "alpha", moving the pin to "alpha-2".
    for (const [w, pin] of [
      [b[1]!, 'alpha'],
      [b[2]!, 'alpha-2'],
      [b[3]!, 'kube-system-platform'],
    ] as const)
      workloads.set(w.id, { ...w, labels: { ...w.labels, 'microseg.dev/segment': pin } });
    for (const order of [workloads, new Map([...workloads].reverse())]) {
      const r = computeSegments(order, graph);
      expect(r.membership[b[1]!.id]).toBe('alpha');
      expect(r.membership[b[2]!.id]).toBe('alpha-2');
      expect(r.segments.find((s) => s.id === 'alpha')).toMatchObject({ kind: 'pinned', members: [b[1]!.id] });
      expect(new Set(a.map((w) => r.membership[w.id]))).toEqual(new Set(['alpha-3']));
      // A pin named like a platform segment is its own segment; the platform one gets the suffix.
      expect(r.segments.find((s) => s.id === 'kube-system-platform')).toMatchObject({
        kind: 'pinned',
        members: [b[3]!.id],
      });
      expect(r.membership['kube-system/Deployment/coredns']).toBe('kube-system-platform-2');
    }
  });

  it("reads the pin from the workload object's own labels first", () => {
    const { workloads, graph, a } = twoGroups();
    const both = { ...a[1]!, labels: { ...a[1]!.labels, 'microseg.dev/segment': 'template' } };
    workloads.set(both.id, { ...both, segmentLabel: 'object' });
    workloads.set(a[2]!.id, { ...a[2]!, segmentLabel: 'object' });
    const r = computeSegments(workloads, graph);
    expect(r.membership[a[1]!.id]).toBe('object');
    expect(r.membership[a[2]!.id]).toBe('object');
    expect(r.segments.find((s) => s.id === 'template')).toBeUndefined();
  });

  it('takes the pin from a Deployment, a StatefulSet or their pod templates in a snapshot', async () => {
    const snap = fixtureSnapshot();
    const obj = (kind: string, name: string) =>
      snap.workloads.find((w) => w.kind === kind && w.metadata.name === name)!;
    // cart: labelled on the Deployment only; frontend: on both, differently; db: on its pod template only.
    obj('Deployment', 'cart').metadata.labels = { team: 'pay', 'microseg.dev/segment': 'vault' };
    const frontend = obj('Deployment', 'frontend');
    frontend.metadata.labels = { 'microseg.dev/segment': 'edge' };
    const tmpl = (frontend.spec as { template: { metadata: { labels: Record<string, string> } } }).template;
    tmpl.metadata.labels = { ...tmpl.metadata.labels, 'microseg.dev/segment': 'web' };
    const db = (
      obj('StatefulSet', 'db').spec as { template: { metadata: { labels: Record<string, string> } } }
    ).template;
    db.metadata.labels = { ...db.metadata.labels, 'microseg.dev/segment': 'store' };
    const r = await runPipeline(snap, fixtureFlows());
    expect(r.segments.membership['shop/Deployment/cart']).toBe('vault');
    expect(r.segments.membership['shop/Deployment/frontend']).toBe('edge');
    expect(r.segments.membership['shop/StatefulSet/db']).toBe('store');
    expect(r.segments.segments.filter((s) => s.kind === 'pinned').map((s) => s.id)).toEqual([
      'edge',
      'store',
      'vault',
    ]);
    const cart = r.proposal.policies.find((p) => p.metadata.name === 'microseg-cart')!;
    expect(cart.metadata.labels?.['microseg.dev/segment']).toBe('vault');
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
