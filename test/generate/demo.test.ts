/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-return -- assertions over parsed JSON lines */
import { describe, expect, it } from 'vitest';
import { generateDemo } from '../../src/generate/demo.ts';
import { keyPaths, knownKeyPaths, sampleLines } from './shape.ts';
import { edgeKey, peerKey } from '../../src/generate/truth.ts';
import type { TruthPeer } from '../../src/generate/truth.ts';
import { snapshotFromObjects, podIPs } from '../../src/model/snapshot.ts';
import { matchesSelector } from '../../src/model/selectors.ts';
import type { KObject, Pod } from '../../src/model/k8s.ts';

const demo = generateDemo();
const snap = snapshotFromObjects(JSON.parse(JSON.stringify(demo.objects)), 'demo');
const parsed = demo.lines.map((l) => JSON.parse(l));
const flows = parsed.filter((p) => p.flow).map((p) => p.flow);

describe('generateDemo: determinism', () => {
  it('gives identical objects, lines and truth for the same seed', () => {
    const again = generateDemo();
    expect(JSON.stringify(again.objects)).toBe(JSON.stringify(demo.objects));
    expect(again.lines).toEqual(demo.lines);
    expect(again.truth).toEqual(demo.truth);
  });

  it('differs for another seed but keeps the same application', () => {
    const other = generateDemo({ seed: 2 });
    expect(other.lines).not.toEqual(demo.lines);
    expect(other.truth.edges.map(edgeKey)).toEqual(demo.truth.edges.map(edgeKey));
  });
});

describe('generateDemo: cluster snapshot', () => {
  it('passes the snapshot loader with every kind the pipeline reads', () => {
    expect(snap.namespaces.map((n) => n.metadata.name).sort()).toEqual([
      'batch',
      'data',
      'default',
      'ingress-nginx',
      'kube-node-lease',
      'kube-public',
      'kube-system',
      'monitoring',
      'shop',
    ]);
    const kinds = new Set(snap.workloads.map((w) => w.kind));
    expect([...kinds].sort()).toEqual(['DaemonSet', 'Deployment', 'Job', 'ReplicaSet', 'StatefulSet']);
    expect(snap.cronJobs.map((c) => c.metadata.name)).toEqual(['report-generator']);
    expect(snap.networkPolicies.map((p) => p.metadata.name)).toEqual(['postgres-ingress']);
    expect(snap.others.map((o) => o.kind)).toEqual(['Node', 'Node', 'Node']);
    for (const pod of snap.pods) {
      expect(pod.metadata.uid).toMatch(
        /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
      );
      expect(pod.spec.nodeName).toBeTruthy();
      expect(pod.status?.hostIP).toMatch(/^172\.18\.0\.\d$/);
      expect(pod.status?.startTime).toMatch(/^2026-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    }
  });

  it('gives every pod an owner chain that ends at an existing root controller', () => {
    const byUid = new Map<string, KObject>();
    for (const o of [...snap.workloads, ...snap.cronJobs]) byUid.set(o.metadata.uid!, o);
    const roots = new Map<string, number>();
    for (const pod of snap.pods) {
      let refs = pod.metadata.ownerReferences;
      let root = '';
      for (let depth = 0; refs && refs.length > 0; depth++) {
        expect(refs).toHaveLength(1);
        const ref = refs[0]!;
        const owner = byUid.get(ref.uid!);
        expect(owner, `${pod.metadata.name} -> ${ref.kind}/${ref.name}`).toBeDefined();
        expect(owner!.kind).toBe(ref.kind);
        expect(owner!.metadata.name).toBe(ref.name);
        root = `${owner!.kind}`;
        refs = owner!.metadata.ownerReferences;
        expect(depth).toBeLessThan(3);
      }
      roots.set(root, (roots.get(root) ?? 0) + 1);
    }
    expect([...roots.keys()].sort()).toEqual(['CronJob', 'DaemonSet', 'Deployment', 'StatefulSet']);
  });

  it('labels pods the way their controllers do', () => {
    const pods = (prefix: string) => snap.pods.filter((p) => p.metadata.name.startsWith(prefix));
    for (const p of pods('postgres-')) {
      expect(p.metadata.labels!['statefulset.kubernetes.io/pod-name']).toBe(p.metadata.name);
      expect(p.metadata.labels!['controller-revision-hash']).toMatch(/^postgres-/);
    }
    expect(pods('postgres-').map((p) => p.metadata.name)).toEqual(['postgres-0', 'postgres-1']);
    for (const p of pods('frontend-')) {
      const hash = p.metadata.labels!['pod-template-hash']!;
      expect(p.metadata.name).toMatch(new RegExp(`^frontend-${hash}-[a-z0-9]{5}$`));
    }
    const job = snap.workloads.find((w) => w.kind === 'Job')!;
    expect(job.metadata.name).toMatch(/^report-generator-\d{8}$/);
    const jobPod = pods('report-generator-')[0]!;
    expect(jobPod.metadata.labels!['job-name']).toBe(job.metadata.name);
    expect(jobPod.status!.phase).toBe('Succeeded');
    expect((job as { status?: { succeeded?: number } }).status?.succeeded).toBe(1);
    const ne = pods('node-exporter-');
    expect(ne).toHaveLength(3);
    for (const p of ne) {
      expect(p.spec.hostNetwork).toBe(true);
      expect(p.status!.podIP).toBe(p.status!.hostIP);
    }
  });

  it('has Services whose selectors and EndpointSlices agree with the pods', () => {
    const podByName = new Map(snap.pods.map((p) => [`${p.metadata.namespace}/${p.metadata.name}`, p]));
    for (const svc of snap.services) {
      if (!svc.spec.selector) continue;
      const selected = snap.pods.filter(
        (p) =>
          p.metadata.namespace === svc.metadata.namespace &&
          matchesSelector({ matchLabels: svc.spec.selector }, p.metadata.labels),
      );
      expect(selected.length, svc.metadata.name).toBeGreaterThan(0);
      const slices = snap.endpointSlices.filter(
        (s) =>
          s.metadata.namespace === svc.metadata.namespace &&
          s.metadata.labels?.['kubernetes.io/service-name'] === svc.metadata.name,
      );
      expect(slices.length, svc.metadata.name).toBeGreaterThan(0);
      for (const slice of slices) {
        for (const ep of slice.endpoints ?? []) {
          const pod = podByName.get(`${ep.targetRef!.namespace}/${ep.targetRef!.name}`) as Pod;
          expect(pod, ep.targetRef!.name).toBeDefined();
          expect(selected).toContain(pod);
          expect(podIPs(pod)).toContain(ep.addresses[0]);
        }
      }
    }
    const dns = snap.services.find((s) => s.metadata.name === 'kube-dns')!;
    expect(dns.spec.clusterIP).toBe('10.96.0.10');
    expect(dns.spec.ports!.map((p) => `${p.protocol}/${p.port}`)).toEqual(['UDP/53', 'TCP/53', 'TCP/9153']);
    const api = snap.endpointSlices.find((s) => s.metadata.name === 'kubernetes')!;
    expect(api.endpoints![0]!.addresses).toEqual(['172.18.0.2']);
    const catalogSlice = snap.endpointSlices.find(
      (s) => s.metadata.labels?.['kubernetes.io/service-name'] === 'catalog',
    )!;
    expect(catalogSlice.ports).toEqual([{ name: 'http', port: 8080, protocol: 'TCP' }]);
  });

  it('has dual-stack pods and exactly one IP held by two pods over the window', () => {
    const v6 = snap.pods.filter((p) => podIPs(p).some((ip) => ip.includes(':')));
    expect(v6.map((p) => p.metadata.name.split('-')[0]).sort()).toEqual([
      'cart',
      'cart',
      'cart',
      'frontend',
      'frontend',
      'frontend',
    ]);
    const reuse = demo.truth.ipReuse[0]!;
    const holder = snap.pods.filter((p) => podIPs(p).includes(reuse.ip));
    expect(holder.map((p) => p.metadata.name)).toEqual([reuse.after.pod]);
    expect(holder[0]!.status!.startTime).toBe('2026-03-02T10:26:00Z');
    expect(snap.pods.some((p) => p.metadata.name === reuse.before.pod)).toBe(false);
    const oldRs = snap.workloads.filter(
      (w) => w.kind === 'ReplicaSet' && w.metadata.name.startsWith('recommendations-'),
    );
    expect(oldRs).toHaveLength(2);
    expect(
      reuse.before.pod.startsWith(
        oldRs.find((r) => (r.spec as { replicas?: number }).replicas === 0)!.metadata.name,
      ),
    ).toBe(true);
  });
});

describe('generateDemo: Hubble lines', () => {
  it('are JSON GetFlowsResponse envelopes sorted by time', () => {
    for (const p of parsed) {
      const member = ['flow', 'node_status', 'lost_events'].filter((k) => k in p);
      expect(member).toHaveLength(1);
      expect(typeof p.node_name).toBe('string');
      expect(p.time).toMatch(/^2026-03-02T1[01]:\d\d:\d\d\.\d{9}Z$/);
      if (p.flow) expect(p.flow.time).toBe(p.time);
    }
    const times = parsed.map((p) => p.time as string);
    const outOfOrder = times.findIndex((t, i) => i > 0 && t < times[i - 1]!);
    expect(outOfOrder).toBe(-1);
  });

  it('use only key paths that real Hubble output has (the sample, plus documented newer fields)', () => {
    const known = knownKeyPaths();
    const seen = new Set<string>();
    for (const p of parsed) keyPaths(p, '', seen);
    expect([...seen].filter((k) => !known.has(k))).toEqual([]);
  });

  it('have, for each real sample flow shape, a generated line with the same keys (newer fields aside)', () => {
    const newer = new Set([
      'uuid',
      'trace_reason',
      'destination_service',
      'source_service',
      'drop_reason',
      'event_type',
      'Type',
      'ethernet',
      'interface',
      'Summary',
      'is_reply',
      'reply',
      'destination_names',
      'source_names',
    ]);
    const shape = (f: Record<string, unknown>) => Object.keys(f).sort();
    // Sample line 1 is an L7 proxy redirect (TO_PROXY), which the demo does not model.
    for (const [i, s] of sampleLines.entries()) {
      if (i === 0) continue;
      const want = shape(s.flow);
      const match = flows.find((g) => {
        const got = shape(g);
        return (
          want.every((k) => got.includes(k)) &&
          got.every((k) => want.includes(k) || newer.has(k)) &&
          g.Type === (s.flow.Type ?? g.Type) &&
          (g.verdict === s.flow.verdict || (s.flow.verdict === 'REDIRECTED' && g.verdict === 'FORWARDED')) &&
          (g.trace_observation_point ?? null) === (s.flow.trace_observation_point ?? null) &&
          'reply' in g === 'reply' in s.flow &&
          'is_reply' in g === 'is_reply' in s.flow
        );
      });
      expect(match, `sample line ${i + 1}: ${want.join(',')}`).toBeDefined();
    }
  });

  it('cover the real-world shapes the pipeline must handle', () => {
    const has = (pred: (f: any) => boolean) => flows.some(pred);
    const labels = (e: any) => (e?.labels ?? []) as string[];
    expect(has((f) => f.is_reply === true && f.reply === true)).toBe(true);
    expect(has((f) => f.reply === true && !('is_reply' in f))).toBe(true);
    expect(has((f) => f.trace_observation_point === 'TO_OVERLAY' && !('traffic_direction' in f))).toBe(true);
    expect(
      has((f) => f.trace_observation_point === 'FROM_ENDPOINT' && f.traffic_direction === 'EGRESS'),
    ).toBe(true);
    expect(has((f) => f.trace_observation_point === 'TO_STACK' && f.traffic_direction === 'EGRESS')).toBe(
      true,
    );
    expect(has((f) => f.trace_observation_point === 'TO_ENDPOINT' && f.traffic_direction === 'INGRESS')).toBe(
      true,
    );
    expect(
      has((f) => f.event_type.type === 5 && f.policy_match_type === 2 && f.verdict === 'FORWARDED'),
    ).toBe(true);
    expect(has((f) => f.event_type.type === 5 && f.verdict === 'DROPPED')).toBe(true);
    expect(
      has(
        (f) => f.verdict === 'DROPPED' && f.drop_reason_desc === 'POLICY_DENIED' && f.event_type.type === 1,
      ),
    ).toBe(true);
    expect(has((f) => f.drop_reason_desc === 'INVALID_SOURCE_IP' && f.IP.ipVersion === 'IPv6')).toBe(true);
    expect(has((f) => f.l7?.dns?.query === 'api.stripe.com.' && f.l7.type === 'REQUEST')).toBe(true);
    expect(has((f) => f.l7?.dns?.rcode === 3)).toBe(true);
    expect(
      has(
        (f) =>
          f.destination_names?.[0] === 'api.stripe.com' && labels(f.destination).includes('reserved:world'),
      ),
    ).toBe(true);
    expect(has((f) => f.l4.ICMPv4?.type === 8)).toBe(true);
    expect(has((f) => f.l4.ICMPv4 && Object.keys(f.l4.ICMPv4).length === 0)).toBe(true);
    expect(has((f) => f.l4.UDP?.destination_port === 53)).toBe(true);
    expect(has((f) => f.IP.ipVersion === 'IPv6' && f.l4.TCP?.destination_port === 7070)).toBe(true);
    expect(has((f) => f.destination_service?.name === 'kube-dns')).toBe(true);
    expect(
      has(
        (f) =>
          labels(f.destination).includes('reserved:kube-apiserver') && f.l4.TCP?.destination_port === 6443,
      ),
    ).toBe(true);
    expect(
      has((f) => labels(f.source).includes('reserved:host') && f.l4.TCP?.destination_port === 8080),
    ).toBe(true);
    expect(
      has(
        (f) => labels(f.destination).includes('reserved:remote-node') && f.l4.TCP?.destination_port === 9100,
      ),
    ).toBe(true);
    expect(has((f) => labels(f.destination).includes('reserved:health'))).toBe(true);
    expect(has((f) => f.source.identity > 255 && !f.source.pod_name && f.source.labels)).toBe(true);
    expect(has((f) => Object.keys(f.source).length === 0 && f.IP.source.startsWith('10.244.'))).toBe(true);
    expect(
      has((f) => labels(f.source).includes('k8s:io.cilium.k8s.policy.serviceaccount=prometheus-k8s')),
    ).toBe(true);
    expect(parsed.filter((p) => p.node_status).map((p) => p.node_status.state_change)).toEqual([
      'NODE_CONNECTED',
      'NODE_UNAVAILABLE',
      'NODE_CONNECTED',
    ]);
    expect(parsed.filter((p) => p.lost_events).map((p) => typeof p.lost_events.num_events_lost)).toEqual([
      'string',
      'string',
    ]);
    // No labels that Cilium keeps out of identities.
    expect(
      demo.lines.some((l) =>
        /pod-template-hash|statefulset\.kubernetes\.io|controller-revision-hash/.test(l),
      ),
    ).toBe(false);
  });

  it('reply lines reverse the request: addresses and ports swapped', () => {
    const req = flows.find(
      (f) => f.l4.TCP?.flags?.SYN && !f.l4.TCP.flags.ACK && f.trace_observation_point === 'FROM_ENDPOINT',
    )!;
    const reply = flows.find(
      (f) =>
        f.is_reply === true &&
        f.l4.TCP?.destination_port === req.l4.TCP.source_port &&
        f.IP.destination === req.IP.source,
    )!;
    expect(reply.IP.source).toBe(req.IP.destination);
    expect(reply.l4.TCP.source_port).toBe(req.l4.TCP.destination_port);
    expect(reply.l4.TCP.flags).toEqual({ SYN: true, ACK: true });
  });
});

describe('generateDemo: ground truth', () => {
  // A small, independent reading of the flows: initiator -> responder per request packet.
  const podOwner = new Map<string, string>();
  const rsOwner = new Map<string, string>();
  for (const w of snap.workloads) {
    const ref = w.metadata.ownerReferences?.[0];
    rsOwner.set(
      `${w.metadata.namespace}/${w.metadata.name}`,
      ref
        ? `${w.metadata.namespace}/${ref.kind}/${ref.name}`
        : `${w.metadata.namespace}/${w.kind}/${w.metadata.name}`,
    );
  }
  const jobToCron = (id: string) => {
    const [ns, , name] = id.split('/');
    const job = snap.workloads.find(
      (w) => w.kind === 'Job' && w.metadata.name === name && w.metadata.namespace === ns,
    );
    const ref = job?.metadata.ownerReferences?.[0];
    return ref ? `${ns}/${ref.kind}/${ref.name}` : id;
  };
  for (const p of snap.pods) {
    const ref = p.metadata.ownerReferences![0]!;
    const key = `${p.metadata.namespace}/${ref.name}`;
    const owner =
      ref.kind === 'ReplicaSet' ? rsOwner.get(key)! : `${p.metadata.namespace}/${ref.kind}/${ref.name}`;
    podOwner.set(`${p.metadata.namespace}/${p.metadata.name}`, ref.kind === 'Job' ? jobToCron(owner) : owner);
  }
  const reuse = demo.truth.ipReuse[0]!;
  podOwner.set(`shop/${reuse.before.pod}`, 'shop/Deployment/recommendations');
  const nodeIPs = new Set(snap.pods.map((p) => p.status!.hostIP!));
  const worldKeys = new Map<string, string>();
  for (const e of demo.truth.edges) {
    if ('world' in e.dst && e.dst.world.cidrs)
      worldKeys.set(e.dst.world.cidrs[0]!.replace('/32', ''), peerKey(e.dst));
  }
  const side = (ep: any, ip: string, port: number): string | undefined => {
    const l: string[] = ep.labels ?? [];
    if (l.includes('reserved:health')) return undefined;
    if (l.includes('reserved:kube-apiserver')) return 'reserved:kube-apiserver';
    if (l.includes('reserved:world')) return worldKeys.get(ip) ?? 'world';
    if (l.includes('reserved:host') || l.includes('reserved:remote-node'))
      return nodeIPs.has(ip) && port === 9100 ? 'monitoring/DaemonSet/node-exporter' : 'reserved:host';
    if (ep.pod_name) return podOwner.get(`${ep.namespace}/${ep.pod_name}`);
    return undefined;
  };

  it('lists exactly the connections the forwarded request packets show', () => {
    // A connection the destination dropped still shows FORWARDED egress at its source: leave it out.
    const tuple = (f: any) =>
      `${f.IP.source}:${f.l4.TCP?.source_port}>${f.IP.destination}:${f.l4.TCP?.destination_port}`;
    const dropped = new Set(flows.filter((f) => f.verdict === 'DROPPED').map(tuple));
    const observed = new Set<string>();
    for (const f of flows) {
      if (f.verdict !== 'FORWARDED' || f.Type !== 'L3_L4' || f.reply || f.is_reply) continue;
      if (dropped.has(tuple(f))) continue;
      if (f.trace_observation_point === 'TO_OVERLAY' && !f.source.pod_name) continue;
      const proto = Object.keys(f.l4)[0]!;
      if (proto === 'TCP' && !(f.l4.TCP.flags?.SYN && !f.l4.TCP.flags.ACK)) continue;
      const port = proto.startsWith('ICMP') ? f.l4[proto].type : f.l4[proto].destination_port;
      const src = side(f.source, f.IP.source, port);
      const dst = side(f.destination, f.IP.destination, port);
      if (!src || !dst) continue;
      observed.add(`${src} -> ${dst} ${proto}/${port}`);
    }
    expect([...observed].sort()).toEqual(demo.truth.edges.map(edgeKey).sort());
  });

  it('lists the denied attempt, which appears only as drops', () => {
    expect(demo.truth.denied.map(edgeKey)).toEqual([
      'shop/Deployment/frontend -> data/StatefulSet/postgres TCP/5432',
    ]);
    const frontendIPs = new Set(
      snap.pods.filter((p) => p.metadata.name.startsWith('frontend-')).flatMap(podIPs),
    );
    const toPg = flows.filter((f) => frontendIPs.has(f.IP.source) && f.l4.TCP?.destination_port === 5432);
    expect(toPg.length).toBeGreaterThan(0);
    expect(toPg.filter((f) => f.trace_observation_point === 'TO_ENDPOINT')).toEqual([]);
    expect(toPg.some((f) => f.verdict === 'DROPPED')).toBe(true);
  });

  it('names every edge endpoint with a key format the identity stage uses', () => {
    const keys = demo.truth.edges.flatMap((e) => [e.src, e.dst]).map((p: TruthPeer) => peerKey(p));
    for (const k of keys)
      expect(k).toMatch(
        /^([a-z0-9-]+\/(Deployment|StatefulSet|DaemonSet|CronJob)\/[a-z0-9-]+|world(:.+)?|reserved:(host|kube-apiserver))$/,
      );
    expect(keys).toContain('world:api.stripe.com');
    expect(keys).toContain('batch/CronJob/report-generator');
  });

  it('attributes the reused IP by time: the old pod before minute 20, nobody until the new pod starts', () => {
    const before = flows.filter(
      (f) => f.IP.source === reuse.ip && f.time < reuse.before.until && !f.is_reply && !f.reply,
    );
    expect(before.length).toBeGreaterThan(0);
    expect(before.some((f) => Object.keys(f.source).length === 0)).toBe(true);
    for (const f of before) if (f.source.pod_name) expect(f.source.pod_name).toBe(reuse.before.pod);
    const gap = flows.filter(
      (f) =>
        (f.IP.source === reuse.ip || f.IP.destination === reuse.ip) &&
        f.time >= reuse.before.until &&
        f.time < reuse.after.from,
    );
    expect(gap).toEqual([]);
    const after = flows.filter(
      (f) => f.IP.source === reuse.ip && f.time >= reuse.after.from && f.source.pod_name,
    );
    expect(after.length).toBeGreaterThan(0);
    for (const f of after) expect(f.source.pod_name).toBe(reuse.after.pod);
  });
});
