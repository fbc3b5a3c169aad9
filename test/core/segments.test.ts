import { describe, expect, it } from 'vitest';
import type { GraphEdge, GraphNode, ServiceGraph } from '../../src/graph/types.ts';
import type { Workload } from '../../src/identity/types.ts';
import { runPipeline } from '../../src/pipeline.ts';
import { communityMembership, computeSegments, slug } from '../../src/segments/index.ts';
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
    // Each community is named after its anchor, the member connected to the most workloads: a1 and b1
    // have the edge between the groups besides.
    expect(new Set(a.map((w) => r.membership[w.id]))).toEqual(new Set(['alpha-a1']));
    expect(new Set(b.map((w) => r.membership[w.id]))).toEqual(new Set(['beta-b1']));
    expect(r.membership['kube-system/Deployment/coredns']).toBe('kube-system-platform');
    expect(r.membership['monitoring/Deployment/prometheus']).toBe('monitoring-platform');
    expect(r.modularity).toBeGreaterThan(0.3);
    expect(r.segments.find((s) => s.id === 'alpha-a1')).toMatchObject({
      kind: 'community',
      internalEdges: 12,
    });
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
    expect(r.membership[a[0]!.id]).toBe('alpha-a1');
  });

  it('gives a pinned name to the pinned workloads, and a suffix to the community that would take it', () => {
    const { workloads, graph, a, b } = twoGroups();
    // A beta workload pinned to "alpha-a1", another to "alpha-a1-2": alpha's community sorts first and
    // used to take "alpha-a1", moving the pin to "alpha-a1-2".
    for (const [w, pin] of [
      [b[1]!, 'alpha-a1'],
      [b[2]!, 'alpha-a1-2'],
      [b[3]!, 'kube-system-platform'],
    ] as const)
      workloads.set(w.id, { ...w, labels: { ...w.labels, 'microseg.dev/segment': pin } });
    for (const order of [workloads, new Map([...workloads].reverse())]) {
      const r = computeSegments(order, graph);
      expect(r.membership[b[1]!.id]).toBe('alpha-a1');
      expect(r.membership[b[2]!.id]).toBe('alpha-a1-2');
      expect(r.segments.find((s) => s.id === 'alpha-a1')).toMatchObject({
        kind: 'pinned',
        members: [b[1]!.id],
      });
      expect(new Set(a.map((w) => r.membership[w.id]))).toEqual(new Set(['alpha-a1-3']));
      // A pin named like a platform segment is its own segment; the platform one gets the suffix.
      expect(r.segments.find((s) => s.id === 'kube-system-platform')).toMatchObject({
        kind: 'pinned',
        members: [b[3]!.id],
      });
      expect(r.membership['kube-system/Deployment/coredns']).toBe('kube-system-platform-2');
    }
  });

  it("keeps two pins apart that differ after their 50th character, and two long namespaces' platforms", () => {
    const { workloads, graph, b } = twoGroups();
    // Label values of up to 63 characters: these two share their first 55.
    const eu = 'payments-settlement-reconciliation-and-clearing-group-eu-west';
    const us = 'payments-settlement-reconciliation-and-clearing-group-us-east';
    workloads.set(b[1]!.id, { ...b[1]!, segmentLabel: eu });
    workloads.set(b[2]!.id, { ...b[2]!, segmentLabel: us });
    // Two namespaces whose names share their first 55 characters, each with its cluster DNS (a hub).
    const long = (zone: string) =>
      workload(`tenant-acme-corporation-production-environment-region-${zone}`, 'dns', {
        roles: ['cluster-dns'],
      });
    const dnsA = long('1a');
    const dnsB = long('1b');
    workloads.set(dnsA.id, dnsA).set(dnsB.id, dnsB);
    graph.edges.push(edge(b[0]!, dnsA), edge(b[0]!, dnsB));
    const r = computeSegments(workloads, graph);
    expect(r.membership[b[1]!.id]).toBe(eu);
    expect(r.membership[b[2]!.id]).toBe(us);
    expect(r.segments.filter((s) => s.kind === 'pinned').map((s) => s.members)).toEqual([
      [b[1]!.id],
      [b[2]!.id],
    ]);
    const platforms = r.segments.filter((s) => s.kind === 'platform' && s.id.startsWith('tenant-'));
    expect(platforms.map((s) => s.members)).toEqual([[dnsA.id], [dnsB.id]]);
    for (const s of platforms) expect(s.namespaces).toHaveLength(1);
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

  it('names several communities of one namespace after their anchors, without collisions', () => {
    const { workloads, graph, b } = twoGroups();
    // Move beta's workloads into alpha's namespace: two communities in one namespace.
    for (const w of b) workloads.set(w.id, { ...w, namespace: 'alpha' });
    const r = computeSegments(workloads, graph);
    const names = r.segments.filter((s) => s.kind === 'community').map((s) => s.id);
    expect(names).toHaveLength(2);
    expect(new Set(names).size).toBe(2);
    for (const n of names) expect(n).toMatch(/^alpha-[ab]\d$/);
  });

  it('gives the same segments and names whatever the counts of the edges and the traffic of the nodes', () => {
    const { workloads, graph, b } = twoGroups();
    // Two communities in one namespace: the name of each used to be its busiest member's.
    for (const w of b) workloads.set(w.id, { ...w, namespace: 'alpha' });
    const node = (id: string, flows: number): GraphNode => ({
      id,
      kind: 'workload',
      name: id,
      flowsIn: flows,
      flowsOut: 0,
    });
    const week1 = { nodes: [...workloads.keys()].map((id) => node(id, 1)), edges: graph.edges };
    const week2 = {
      // a4 and b4 busiest now, and every count different
      nodes: [...workloads.keys()].map((id) => node(id, id.endsWith('4') ? 1000 : 2)),
      edges: graph.edges.map((e, i) => ({ ...e, count: 1 + ((i * 7919) % 5000) })),
    };
    const r1 = computeSegments(workloads, week1);
    const r2 = computeSegments(workloads, week2);
    expect(r2).toEqual(r1);
    expect(r1.membership[b[0]!.id]).toBe('alpha-b1');
  });

  it("keeps a community's name when its namespace gains a second community", () => {
    const { workloads, graph, a, b } = twoGroups();
    const before = computeSegments(workloads, {
      nodes: [],
      edges: graph.edges.filter((e) => !b.some((w) => w.id === e.source || w.id === e.target)),
    });
    expect(before.membership[a[0]!.id]).toBe('alpha-a1');
    // b joins alpha's namespace: a second community there.
    for (const w of b) workloads.set(w.id, { ...w, namespace: 'alpha' });
    const after = computeSegments(workloads, graph);
    expect(new Set(a.map((w) => after.membership[w.id]))).toEqual(new Set(['alpha-a1']));
    expect(new Set(b.map((w) => after.membership[w.id]))).toEqual(new Set(['alpha-b1']));
  });

  describe('with the membership of a previous run', () => {
    const previousOf = communityMembership;

    it('gives the same segments over the same graph', () => {
      const { workloads, graph } = twoGroups();
      const fresh = computeSegments(workloads, graph);
      expect(computeSegments(workloads, graph, { previous: previousOf(fresh) })).toEqual({
        ...fresh,
        namesKept: ['alpha-a1', 'beta-b1'],
      });
    });

    it("keeps a community's name when a new connection moves its anchor to another member", () => {
      const { workloads, graph, a } = twoGroups();
      const before = computeSegments(workloads, graph);
      expect(new Set(a.map((w) => before.membership[w.id]))).toEqual(new Set(['alpha-a1']));
      // a3 now also calls two workloads of its own: the best connected of alpha, its anchor.
      const extra = ['x1', 'x2'].map((n) => workload('gamma', n));
      for (const x of extra) workloads.set(x.id, x);
      const grown = { nodes: [], edges: [...graph.edges, ...extra.map((x) => edge(a[2]!, x))] };
      const fresh = computeSegments(workloads, grown);
      expect(fresh.membership[a[0]!.id]).toBe('alpha-a3');
      const kept = computeSegments(workloads, grown, { previous: previousOf(before) });
      expect(new Set(a.map((w) => kept.membership[w.id]))).toEqual(new Set(['alpha-a1']));
      // Only the name differs: the same groups.
      const groups = (r: typeof fresh) => r.segments.map((s) => s.members.join(' ')).sort();
      expect(groups(kept)).toEqual(groups(fresh));
    });

    it('gives a name to the community that kept most of its members, once', () => {
      const { workloads, graph, a, b } = twoGroups();
      // Before, a1..a4 and b1 were one segment, b2..b4 another.
      const previous = new Map<string, string>([
        ...a.map((w) => [w.id, 'old-big'] as [string, string]),
        [b[0]!.id, 'old-big'],
        ...b.slice(1).map((w) => [w.id, 'old-small'] as [string, string]),
      ]);
      const r = computeSegments(workloads, graph, { previous });
      expect(new Set(a.map((w) => r.membership[w.id]))).toEqual(new Set(['old-big']));
      // b's community: three of its four were in old-small, a majority.
      expect(new Set(b.map((w) => r.membership[w.id]))).toEqual(new Set(['old-small']));
      // Both previous names on one community's members, neither a majority: its anchor's name.
      const split = new Map<string, string>([
        ...a.slice(0, 2).map((w) => [w.id, 'left'] as [string, string]),
        ...a.slice(2).map((w) => [w.id, 'right'] as [string, string]),
      ]);
      const r2 = computeSegments(workloads, graph, { previous: split });
      expect(new Set(a.map((w) => r2.membership[w.id]))).toEqual(new Set(['alpha-a1']));
    });

    it('never takes over the name a pinned, platform or unobserved segment has, nor an invalid one', () => {
      const { workloads, graph, a, b } = twoGroups();
      const pinned = workload('delta', 'd1', { labels: { app: 'd1', 'microseg.dev/segment': 'payments' } });
      workloads.set(pinned.id, pinned);
      const previousA = (name: string) => new Map(a.map((w) => [w.id, name] as [string, string]));
      for (const name of [
        'payments',
        'monitoring-platform',
        'alpha-platform',
        'alpha-unobserved',
        'Not A Label',
      ])
        expect([
          name,
          computeSegments(workloads, graph, { previous: previousA(name) }).membership[a[0]!.id],
        ]).toEqual([name, 'alpha-a1']);
      // A name as long as a segment's can be (50 characters and a collision's suffix) is kept; one
      // longer than a DNS label is not.
      const long = `${'a'.repeat(50)}-2`;
      expect(computeSegments(workloads, graph, { previous: previousA(long) }).membership[a[0]!.id]).toBe(
        long,
      );
      expect(
        computeSegments(workloads, graph, { previous: previousA('a'.repeat(64)) }).membership[a[0]!.id],
      ).toBe('alpha-a1');
      // A name taken over reserves it: the community whose anchor would give it gets a suffix.
      const r = computeSegments(workloads, graph, { previous: new Map(b.map((w) => [w.id, 'alpha-a1'])) });
      expect(new Set(b.map((w) => r.membership[w.id]))).toEqual(new Set(['alpha-a1']));
      expect(new Set(a.map((w) => r.membership[w.id]))).toEqual(new Set(['alpha-a1-2']));
    });
  });

  it('names the workloads whose flows reach no other workload apart from those with no flow', () => {
    // A pod whose only connections go to outside addresses (Inspektor Gadget's sample: wget to 1.1.1.1)
    // was observed; it is no `-unobserved` workload. Neither end of such an edge is a workload id.
    const { workloads, graph, a } = twoGroups();
    const out = workload('gamma', 'egress');
    const api = workload('gamma', 'operator');
    const self = workload('gamma', 'loop');
    const idle = workload('gamma', 'idle');
    for (const w of [out, api, self, idle]) workloads.set(w.id, w);
    const world: GraphEdge = { ...edge(out, out), id: 'w', target: 'world:1.1.1.1' };
    const fromWorld: GraphEdge = { ...edge(api, api), id: 'k', source: 'kube-apiserver' };
    const edges = [...graph.edges, world, fromWorld, edge(self, self)];
    const r = computeSegments(workloads, { nodes: [], edges });
    expect([out, api, self, idle].map((w) => r.membership[w.id])).toEqual([
      'gamma-no-east-west',
      'gamma-no-east-west',
      'gamma-no-east-west',
      'gamma-unobserved',
    ]);
    expect(r.segments.filter((x) => x.id.startsWith('gamma-')).map((x) => [x.id, x.kind])).toEqual([
      ['gamma-no-east-west', 'isolated'],
      ['gamma-unobserved', 'isolated'],
    ]);
    // The same input gives the same names, and a community never takes the name over from a previous run.
    const previous = new Map(a.map((w) => [w.id, 'gamma-no-east-west'] as [string, string]));
    const again = computeSegments(workloads, { nodes: [], edges }, { previous });
    expect(again.membership[out.id]).toBe('gamma-no-east-west');
    expect(new Set(a.map((w) => again.membership[w.id]))).toEqual(new Set(['alpha-a1']));
    // Nor when no workload of its namespace is in it now: workloads the controller's last proposal
    // labelled alpha-no-east-west (they had only egress to the world) that talk to each other since
    // are a community named after its anchor, not after traffic they no longer lack.
    const gone = new Map(a.map((w) => [w.id, 'alpha-no-east-west'] as [string, string]));
    const joined = computeSegments(workloads, { nodes: [], edges }, { previous: gone });
    expect(new Set(a.map((w) => joined.membership[w.id]))).toEqual(new Set(['alpha-a1']));
    expect(joined.segments.map((x) => x.id)).not.toContain('alpha-no-east-west');
  });

  it('keeps a pinned workload in its segment whatever the graph around it does', () => {
    const { workloads, graph, a, b } = twoGroups();
    const pinned = { ...a[1]!, segmentLabel: 'payments' };
    workloads.set(pinned.id, pinned);
    const r1 = computeSegments(workloads, graph);
    // It now talks to beta only.
    const moved = graph.edges.filter((e) => e.source !== pinned.id && e.target !== pinned.id);
    moved.push(
      ...b.map((w) => ({ ...graph.edges[0]!, id: `${pinned.id}->${w.id}`, source: pinned.id, target: w.id })),
    );
    const r2 = computeSegments(workloads, { nodes: [], edges: moved });
    expect(r1.membership[pinned.id]).toBe('payments');
    expect(r2.membership[pinned.id]).toBe('payments');
  });

  it('slugs names into DNS labels', () => {
    expect(slug('Team/Payments  (PCI)')).toBe('team-payments-pci');
    expect(slug('---')).toBe('segment');
    expect(slug('x'.repeat(80))).toHaveLength(50);
  });
});
