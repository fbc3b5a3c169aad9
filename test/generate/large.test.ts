import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import {
  edgePort,
  generateFlowLines,
  LargeLayout,
  largeClusterObjects,
  largeTopology,
  largeTruth,
} from '../../src/generate/large.ts';
import { edgeKey } from '../../src/generate/truth.ts';
import { podIPs, snapshotFromObjects } from '../../src/model/snapshot.ts';
import { matchesSelector } from '../../src/model/selectors.ts';
import { keyPaths, knownKeyPaths } from './shape.ts';

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.floor(q * (xs.length - 1))]!;

describe('largeTopology', () => {
  const N = 5000;
  const topo = largeTopology({ workloads: N, seed: 11 });
  const out = new Array<number>(N).fill(0);
  const inn = new Array<number>(N).fill(0);
  for (const e of topo.edges) {
    out[e.src]!++;
    inn[e.dst]!++;
  }

  it('is deterministic for a seed and differs across seeds', () => {
    const again = largeTopology({ workloads: N, seed: 11 });
    expect(again.edges).toEqual(topo.edges);
    expect(again.workloads).toEqual(topo.workloads);
    const other = largeTopology({ workloads: N, seed: 12 });
    expect(other.edges.length).not.toBe(topo.edges.length);
  });

  it('has about five distinct callees per workload on average, no self or duplicate edges', () => {
    expect(topo.workloads).toHaveLength(N);
    expect(topo.edges.length / N).toBeGreaterThan(3.5);
    expect(topo.edges.length / N).toBeLessThan(6.5);
    const keys = new Set(topo.edges.map((e) => `${e.src}>${e.dst}`));
    expect(keys.size).toBe(topo.edges.length);
    expect(topo.edges.some((e) => e.src === e.dst)).toBe(false);
  });

  it('has heavy-tailed fan-out and fan-in', () => {
    const medOut = quantile(out, 0.5);
    const medIn = quantile(inn, 0.5);
    expect(medOut).toBeGreaterThanOrEqual(3);
    expect(medOut).toBeLessThanOrEqual(6);
    expect(Math.max(...out)).toBeGreaterThan(100 * medOut);
    expect(Math.max(...inn)).toBeGreaterThan(0.5 * N);
    expect(quantile(out, 0.99)).toBeGreaterThan(2 * medOut);
    expect(quantile(inn, 0.99)).toBeGreaterThan(5 * Math.max(1, medIn));
    // Caps from the reference: fan-out near 0.3 N, fan-in near 0.75 N... 0.92 for DNS.
    expect(Math.max(...out)).toBeLessThanOrEqual(0.31 * N);
  });

  it('plants platform hubs in their own namespaces, called by large shares of workloads', () => {
    const platform = topo.workloads.filter((w) => w.domain < 0);
    expect(platform.length).toBe(6);
    expect(new Set(platform.map((w) => w.namespace)).size).toBe(platform.length);
    const hubs = platform.filter((w) => w.role === 'hub');
    for (const h of hubs) expect(inn[h.index]).toBeGreaterThanOrEqual(0.05 * N);
    expect(hubs.filter((h) => inn[h.index]! >= 0.25 * N).length).toBeGreaterThanOrEqual(4);
    const dns = topo.workloads.find((w) => w.name === 'coredns')!;
    expect(dns.namespace).toBe('kube-system');
    expect(inn[dns.index]).toBeGreaterThan(0.7 * N);
    for (const w of topo.workloads.filter((x) => x.domain >= 0)) {
      expect(platform.some((p) => p.namespace === w.namespace)).toBe(false);
    }
  });

  it('builds domains of 10-60 services with mostly intra-domain calls and one gateway each', () => {
    for (const d of topo.domains) {
      expect(d.members.length).toBeGreaterThanOrEqual(10);
      expect(d.members.length).toBeLessThanOrEqual(60);
      expect(new Set(d.members.map((i) => topo.workloads[i]!.namespace))).toEqual(new Set([d.namespace]));
      expect(topo.workloads[d.gateway]!.name).toMatch(/-gateway$/);
    }
    const nonHub = topo.edges.filter((e) => e.kind === 'intra' || e.kind === 'cross');
    const intra = nonHub.filter((e) => topo.workloads[e.src]!.domain === topo.workloads[e.dst]!.domain);
    expect(intra.length / nonHub.length).toBeGreaterThan(0.7);
    expect(intra.length / nonHub.length).toBeLessThan(0.9);
    const cross = nonHub.filter((e) => e.kind === 'cross');
    const viaGateway = cross.filter((e) => topo.domains.some((d) => d.gateway === e.dst));
    expect(viaGateway.length / cross.length).toBeGreaterThan(0.7);
  });

  it('assigns roles in the published proportions and caps replicas', () => {
    const domainWs = topo.workloads.filter((w) => w.domain >= 0);
    const share = (r: string[]) => domainWs.filter((w) => r.includes(w.role)).length / domainWs.length;
    expect(share(['entry'])).toBeGreaterThan(0.1);
    expect(share(['entry'])).toBeLessThan(0.17);
    expect(share(['leaf', 'store'])).toBeGreaterThan(0.34);
    expect(share(['leaf', 'store'])).toBeLessThan(0.44);
    for (const w of topo.workloads) {
      expect(w.replicas).toBeGreaterThanOrEqual(1);
      expect(w.replicas).toBeLessThanOrEqual(12);
    }
    for (const cron of domainWs.filter((w) => w.kind === 'CronJob')) {
      expect(topo.edges.some((e) => e.dst === cron.index)).toBe(false);
    }
    expect(domainWs.some((w) => w.kind === 'CronJob')).toBe(true);
    for (const s of domainWs.filter((w) => w.role === 'store')) {
      expect(s.kind).toBe('StatefulSet');
      expect(out[s.index]).toBe(0);
    }
  });

  it('rejects too few workloads', () => {
    expect(() => largeTopology({ workloads: 10 })).toThrow('workloads must be an integer >= 50, got 10');
  });
});

describe('largeClusterObjects and generateFlowLines', () => {
  const topo = largeTopology({ workloads: 300, seed: 5 });
  const objects = [...largeClusterObjects(topo)];
  const snap = snapshotFromObjects(JSON.parse(JSON.stringify(objects)), 'large');
  const layout = new LargeLayout(topo);

  it('emits a snapshot the loader accepts, with one pod per planned replica and unique pod IPs', () => {
    const replicas = topo.workloads.reduce((a, w) => a + w.replicas, 0);
    expect(snap.pods).toHaveLength(replicas);
    const ips = snap.pods.flatMap(podIPs);
    expect(new Set(ips).size).toBe(ips.length);
    expect(snap.others.filter((o) => o.kind === 'Node')).toHaveLength(topo.nodeCount);
    expect(snap.namespaces.length).toBe(new Set(topo.workloads.map((w) => w.namespace)).size);
    const again = [...largeClusterObjects(topo)];
    expect(JSON.stringify(again)).toBe(JSON.stringify(objects));
  });

  it('can leave out fields no stage reads, keeping names, uids, labels, owners and addresses', () => {
    const lean = snapshotFromObjects([...largeClusterObjects(topo, { lean: true })], 'lean');
    expect(lean.pods.map((p) => [p.metadata.uid, p.metadata.name, p.status!.podIP, p.spec.nodeName])).toEqual(
      snap.pods.map((p) => [p.metadata.uid, p.metadata.name, p.status!.podIP, p.spec.nodeName]),
    );
    expect(lean.pods.map((p) => p.metadata.ownerReferences)).toEqual(
      snap.pods.map((p) => p.metadata.ownerReferences),
    );
    expect(lean.pods[0]!.status).not.toHaveProperty('conditions');
    expect(snap.pods[0]!.status).toHaveProperty('conditions');
    expect(lean.pods[0]!.spec.containers[0]!.ports).toEqual(snap.pods[0]!.spec.containers[0]!.ports);
  });

  it('gives every pod an owner chain to its planned root controller', () => {
    const byUid = new Map([...snap.workloads, ...snap.cronJobs].map((o) => [o.metadata.uid!, o]));
    const planned = new Set(topo.workloads.map((w) => `${w.namespace}/${w.kind}/${w.name}`));
    const roots = new Set<string>();
    for (const pod of snap.pods) {
      let o: { kind: string; metadata: (typeof pod)['metadata'] } = pod;
      while (o.metadata.ownerReferences?.length) {
        const owner = byUid.get(o.metadata.ownerReferences[0]!.uid!);
        expect(owner, pod.metadata.name).toBeDefined();
        o = owner!;
      }
      roots.add(`${o.metadata.namespace}/${o.kind}/${o.metadata.name}`);
      expect(o.kind).not.toBe('Pod');
    }
    expect(roots).toEqual(planned);
  });

  it('places pods exactly where the layout says (what the flows use)', () => {
    const byName = new Map(snap.pods.map((p) => [`${p.metadata.namespace}/${p.metadata.name}`, p]));
    for (const w of topo.workloads) {
      for (let r = 0; r < w.replicas; r++) {
        const p = layout.pod(w.index, r);
        const pod = byName.get(`${w.namespace}/${p.name}`);
        expect(pod, p.name).toBeDefined();
        expect(pod!.status!.podIP).toBe(p.ip);
        expect(pod!.spec.nodeName).toBe(p.node.name);
      }
    }
  });

  it('has Services selecting their workload pods, with EndpointSlices listing them', () => {
    for (const svc of snap.services) {
      const pods = snap.pods.filter(
        (p) =>
          p.metadata.namespace === svc.metadata.namespace &&
          matchesSelector({ matchLabels: svc.spec.selector! }, p.metadata.labels),
      );
      const slice = snap.endpointSlices.find(
        (s) =>
          s.metadata.namespace === svc.metadata.namespace &&
          s.metadata.labels?.['kubernetes.io/service-name'] === svc.metadata.name,
      )!;
      expect(slice.endpoints!.map((e) => e.addresses[0]).sort()).toEqual(
        pods.map((p) => p.status!.podIP).sort(),
      );
    }
  });

  it('yields exactly the requested lines, deterministically, shaped like real Hubble output', () => {
    const lines = [...generateFlowLines({ topology: topo, layout, count: 10_000 })];
    expect(lines).toHaveLength(10_000);
    expect([...generateFlowLines({ topology: topo, count: 10_000 })]).toEqual(lines);
    const known = knownKeyPaths();
    const seen = new Set<string>();
    for (const l of lines) keyPaths(JSON.parse(l), '', seen);
    expect([...seen].filter((k) => !known.has(k))).toEqual([]);
    expect(lines.some((l) => l.startsWith('{"node_status"'))).toBe(true);
    expect(lines.some((l) => l.includes('"reserved:health"'))).toBe(true);
  });

  it('draws every edge when the count allows, and every connection is a truth edge between real pods', () => {
    const perEdge = new Uint32Array(topo.edges.length);
    const lines = [
      ...generateFlowLines({ topology: topo, layout, count: 15_000, connectionsPerEdge: perEdge }),
    ];
    expect(perEdge.every((c) => c > 0)).toBe(true);
    const counts = [...perEdge];
    expect(Math.max(...counts)).toBeGreaterThan(10 * quantile(counts, 0.5));
    const podOwner = new Map<string, string>();
    for (const w of topo.workloads)
      for (let r = 0; r < w.replicas; r++)
        podOwner.set(`${w.namespace}/${layout.pod(w.index, r).name}`, `${w.namespace}/${w.kind}/${w.name}`);
    const truth = new Set(largeTruth(topo).edges.map(edgeKey));
    let checked = 0;
    for (const l of lines) {
      if (!l.includes('"trace_observation_point":"FROM_ENDPOINT"') || !l.includes('"is_reply":false'))
        continue;
      const f = JSON.parse(l).flow;
      const proto = Object.keys(f.l4)[0]!;
      const src = podOwner.get(`${f.source.namespace}/${f.source.pod_name}`);
      const dst = podOwner.get(`${f.destination.namespace}/${f.destination.pod_name}`);
      expect(src, f.source.pod_name).toBeDefined();
      if (!dst) continue; // old agents on the source node print remote pods without names
      expect(truth.has(`${src} -> ${dst} ${proto}/${f.l4[proto].destination_port}`)).toBe(true);
      checked++;
    }
    expect(checked).toBeGreaterThan(500);
    const t = largeTruth(topo, perEdge);
    expect(t.edges).toHaveLength(topo.edges.length);
    expect(t.edges[0]!.connections).toBe(perEdge[0]);
    expect(t.domains.flatMap((d) => d.workloads).length + t.platform.length).toBe(300);
    expect(
      edgePort(
        topo,
        topo.edges.find((e) => e.kind === 'scrape')!,
      ).port,
    ).toBe(9102);
  });

  it('streams: heap does not grow with the number of lines', () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const big = largeTopology({ workloads: 2000, seed: 3 });
    const it = generateFlowLines({ topology: big, count: 1_000_000 });
    let bytes = 0;
    for (let i = 0; i < 20_000; i++) bytes += it.next().value!.length;
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 400_000; i++) bytes += it.next().value!.length;
    gc();
    const after = process.memoryUsage().heapUsed;
    expect(bytes).toBeGreaterThan(400_000 * 1000);
    expect(after - before).toBeLessThan(8 * 1024 * 1024);
  });
});
