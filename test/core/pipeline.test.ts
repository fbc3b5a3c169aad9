import { describe, expect, it } from 'vitest';
import type { Identity } from '../../src/identity/index.ts';
import { buildIdentity, ownershipOf, ownerWorkload } from '../../src/identity/index.ts';
import { ipv6Network, normaliseIP, isPrivateIP } from '../../src/identity/ip.ts';
import type { Analysis } from '../../src/pipeline.ts';
import { runGraphPipeline, runPipeline } from '../../src/pipeline.ts';
import { policiesToYaml } from '../../src/policy/render.ts';
import { toDot } from '../../src/graph/build.ts';
import type { Flow } from '../../src/flows/types.ts';
import type { ClusterSnapshot } from '../../src/model/snapshot.ts';
import { snapshotFromObjects } from '../../src/model/snapshot.ts';
import { fixtureFlows, fixtureSnapshot } from './fixture.ts';

const T1 = Date.parse('2026-11-01T11:00:00Z');

describe('identity', () => {
  const id = buildIdentity(fixtureSnapshot());

  it('maps pods to their root owner and strips generated labels from selectors', () => {
    expect(id.podWorkload.get('shop/frontend-7d9f-aaaaa')).toBe('shop/Deployment/frontend');
    expect(id.podWorkload.get('shop/db-0')).toBe('shop/StatefulSet/db');
    expect(id.workloads.get('shop/StatefulSet/db')!.selector).toEqual({ matchLabels: { app: 'db' } });
    expect(id.workloads.get('shop/Deployment/frontend')!.namedPorts).toEqual([
      { name: 'http', port: 8080, protocol: 'TCP' },
    ]);
    expect(id.workloads.get('shop/Deployment/frontend')!.roles).toEqual(['load-balanced']);
    expect(id.clusterDNS).toEqual(['kube-system/Deployment/coredns']);
    expect(id.apiserverEndpoints).toEqual({ ips: ['172.18.0.2'], ports: [6443] });
  });

  it('resolves IPs over time: a reused IP before its current holder started is not attributed to it', () => {
    const before = id.resolve({ ip: '10.244.1.30' }, Date.parse('2026-11-01T10:10:00Z'));
    const after = id.resolve({ ip: '10.244.1.30' }, Date.parse('2026-11-01T10:31:00Z'));
    expect(after).toEqual({ id: 'shop/StatefulSet/db', kind: 'workload' });
    expect(before).toEqual({ id: 'unknown:10.244.1.30', kind: 'unknown', ip: '10.244.1.30' });
  });

  it('attributes an address held by several pods in turn to the one holding it at the time', () => {
    const snap = fixtureSnapshot();
    const base = snap.pods.find((p) => p.metadata.name === 'db-0')!;
    const holder = (name: string, ip: string, start: string) => ({
      ...base,
      metadata: { ...base.metadata, name, ownerReferences: undefined },
      status: { ...base.status, podIP: ip, podIPs: [{ ip }], startTime: start },
    });
    // Listed out of time order; `reuse-c` and `reuse-b` share a start: the later in name order wins.
    snap.pods.push(
      holder('reuse-c', '10.244.9.9', '2026-11-01T12:00:00Z'),
      holder('reuse-a', '10.244.9.9', '2026-11-01T08:00:00Z'),
      holder('reuse-b', '10.244.9.9', '2026-11-01T12:00:00Z'),
      holder('single', '10.244.9.10', '2026-11-01T08:00:00Z'),
    );
    const ids = buildIdentity(snap);
    const at = (ip: string, t: string) => ids.resolve({ ip }, Date.parse(t)).id;
    expect(at('10.244.9.9', '2026-11-01T07:59:59Z')).toBe('unknown:10.244.9.9');
    expect(at('10.244.9.9', '2026-11-01T08:00:00Z')).toBe('shop/Pod/reuse-a');
    expect(at('10.244.9.9', '2026-11-01T11:59:59Z')).toBe('shop/Pod/reuse-a');
    expect(at('10.244.9.9', '2026-11-01T12:00:00Z')).toBe('shop/Pod/reuse-c');
    expect(at('10.244.9.10', '2026-11-01T09:00:00Z')).toBe('shop/Pod/single');
    expect(ids.stats.byIP).toBe(4);
    expect(ids.stats.ipReused).toBe(3);
    expect(ids.podNetworks).toContain('10.244.0.0/16');
  });

  it('prefers the pod name over the IP, and classifies non-pod peers', () => {
    expect(id.resolve({ ip: '10.244.1.20', namespace: 'shop', pod: 'frontend-7d9f-aaaaa' }, 0).id).toBe(
      'shop/Deployment/frontend',
    );
    // A ClusterIP is its Service, which stands for its backends on their target ports.
    const cartSvc = id.resolveNumber({ ip: '10.96.5.6' }, 0, 8080);
    expect(id.peerAt(cartSvc)).toMatchObject({ id: 'service:shop/cart', kind: 'service' });
    expect(id.serviceBackends(cartSvc, 8080, 'TCP')).toEqual([
      { peer: id.resolveNumber({ namespace: 'shop', pod: 'cart-7d9f-bbbbb' }, 0), port: 8080 },
    ]);
    expect(id.serviceBackends(id.resolveNumber({ ip: '10.244.1.20' }, 0), 8080, 'TCP')).toBeUndefined();
    // The API server's ClusterIP (443) reaches the API server on its endpoints' port (6443).
    const kubernetes = id.resolveNumber({ ip: '10.96.0.1' }, 0, 443);
    expect(id.peerAt(kubernetes).id).toBe('service:default/kubernetes');
    expect(id.serviceBackends(kubernetes, 443, 'TCP')!.map((b) => [id.peerAt(b.peer).id, b.port])).toEqual([
      ['kube-apiserver', 6443],
    ]);
    expect(id.resolve({ ip: '192.168.0.10' }, 0).id).toBe('node:192.168.0.10');
    expect(id.resolve({ ip: '8.8.8.8' }, 0).id).toBe('world:8.8.8.8');
    expect(id.resolve({ ip: '10.1.2.3' }, 0).id).toBe('private:10.1.2.3');
    expect(id.resolve({}, 0).id).toBe('unknown');
    expect(
      id.resolve(
        {
          namespace: 'shop',
          pod: 'ghost-1',
          workload: { kind: 'Deployment', name: 'ghost' },
          labels: ['app=ghost', 'pod-template-hash=1'],
        },
        0,
      ).id,
    ).toBe('shop/Deployment/ghost');
    expect(id.workloads.get('shop/Deployment/ghost')!.selector).toEqual({ matchLabels: { app: 'ghost' } });
  });

  it('normalises IPs', () => {
    expect(normaliseIP('2001:DB8:0:0:0:0:0:1')).toBe('2001:db8::1');
    expect(normaliseIP('::ffff:10.0.0.1')).toBe('10.0.0.1');
    expect(isPrivateIP('fd00::1')).toBe(true);
    expect(isPrivateIP('2001:db8::1')).toBe(false);
    expect(isPrivateIP('172.32.0.1')).toBe(false);
  });

  it('writes IPv6 networks in canonical form (RFC 5952)', () => {
    expect(ipv6Network('2a00:1450:4001:82a::200e', 64)).toBe('2a00:1450:4001:82a::/64');
    expect(ipv6Network('2A00:1450:4001:82A::200E', 20)).toBe('2a00:1000::/20');
    expect(ipv6Network('2001:db8:0:1::5', 64)).toBe('2001:db8:0:1::/64'); // one zero group stays
    expect(ipv6Network('2001:0:0:1:0:0:0:1', 128)).toBe('2001:0:0:1::1/128'); // the longest run goes
    expect(ipv6Network('fd00:10::1:5', 48)).toBe('fd00:10::/48');
    expect(ipv6Network('2001:db8::1', 0)).toBe('::/0');
  });
});

describe('host-network workloads on one node', () => {
  /** A bare host-network pod of kube-system at `node` whose container declares `port` (TCP unless `protocol`). */
  const hostPod = (name: string, node: string, port: number, hostPort?: number, protocol?: string) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'kube-system', labels: { app: name } },
    spec: {
      nodeName: 'node-1',
      hostNetwork: true,
      containers: [
        {
          name: 'c',
          ports: [
            { containerPort: port, ...(hostPort ? { hostPort } : {}), ...(protocol ? { protocol } : {}) },
          ],
        },
      ],
    },
    status: { phase: 'Running', podIP: node, podIPs: [{ ip: node }], hostIP: node },
  });

  it('are told apart by node address and port; two declaring one port are named in a warning', () => {
    const snap = fixtureSnapshot();
    snap.pods.push(
      ...snapshotFromObjects(
        [
          hostPod('agent', '192.168.0.10', 9100, 9100),
          hostPod('exporter', '192.168.0.10', 9100),
          hostPod('proxy', '192.168.0.10', 9200),
          // The same port on another node is no clash.
          hostPod('other', '192.168.0.11', 9200),
          hostPod('v6-a', 'fd00::10', 53),
          hostPod('v6-b', 'fd00::10', 53),
        ],
        'extra.json',
      ).pods,
    );
    const id = buildIdentity(snap);
    expect(id.warnings.filter((w) => w.includes('both declare'))).toEqual([
      'host-network workloads kube-system/Pod/agent and kube-system/Pod/exporter both declare port 9100/TCP on node 192.168.0.10: TCP connections to 192.168.0.10:9100 are attributed to kube-system/Pod/exporter alone',
      'host-network workloads kube-system/Pod/v6-a and kube-system/Pod/v6-b both declare port 53/TCP on node fd00::10: TCP connections to [fd00::10]:53 are attributed to kube-system/Pod/v6-b alone',
    ]);
    expect(id.resolve({ ip: '192.168.0.10' }, 0, 9100).id).toBe('kube-system/Pod/exporter');
    expect(id.resolve({ ip: '192.168.0.10' }, 0, 9200).id).toBe('kube-system/Pod/proxy');
    expect(id.resolve({ ip: '192.168.0.11' }, 0, 9200).id).toBe('kube-system/Pod/other');
  });

  it('are told apart by protocol too: a TCP and a UDP listener on one port of one node are both attributed', async () => {
    const snap = fixtureSnapshot();
    snap.pods.push(
      ...snapshotFromObjects(
        [
          // The names sort so that, keyed by address and port alone, the UDP one would take the TCP one's.
          hostPod('dns-a-tcp', '192.168.0.10', 5353, undefined, 'TCP'),
          hostPod('dns-b-udp', '192.168.0.10', 5353, undefined, 'UDP'),
        ],
        'extra.json',
      ).pods,
    );
    const id = buildIdentity(snap);
    expect(id.warnings.filter((w) => w.includes('both declare'))).toEqual([]);
    const at = (protocol?: string) => id.resolve({ ip: '192.168.0.10' }, 0, 5353, false, protocol).id;
    expect([at('TCP'), at('UDP'), at('SCTP'), at()]).toEqual([
      'kube-system/Pod/dns-a-tcp',
      'kube-system/Pod/dns-b-udp',
      'node:192.168.0.10',
      // Without a protocol: the TCP one.
      'kube-system/Pod/dns-a-tcp',
    ]);
    // Flows to each reach their own workload's graph node.
    const base = fixtureFlows()[0]!;
    const to = (protocol: 'TCP' | 'UDP'): Flow => ({
      ...base,
      src: { ip: '10.244.1.20' },
      dst: { ip: '192.168.0.10' },
      port: 5353,
      protocol,
    });
    const res = await runPipeline(snap, [to('TCP'), to('UDP')]);
    expect(
      res.graph.edges.filter((e) => e.port === 5353).map((e) => [e.target, `${e.port}/${e.protocol}`]),
    ).toEqual([
      ['kube-system/Pod/dns-a-tcp', '5353/TCP'],
      ['kube-system/Pod/dns-b-udp', '5353/UDP'],
    ]);
  });
});

describe('identity of objects and pods missing from the snapshot', () => {
  /** The fixture with `objs` added (parsed as a snapshot file's objects are). */
  const withObjects = (...objs: unknown[]) => {
    const snap = fixtureSnapshot();
    const more = snapshotFromObjects(objs, 'test');
    for (const k of Object.keys(more) as (keyof ClusterSnapshot)[])
      (snap[k] as unknown[]).push(...(more[k] as unknown[]));
    return snap;
  };
  const apiEndpoints = (ip: string, port: number) => ({
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: { name: 'kubernetes', namespace: 'default' },
    subsets: [{ addresses: [{ ip }], ports: [{ name: 'https', port, protocol: 'TCP' }] }],
  });

  /** cart's connection to the API server's ClusterIP `ip` on 443. */
  const viaClusterIP = (ip: string): Flow => ({
    ...fixtureFlows()[0]!,
    src: { ip: '10.244.1.20' },
    dst: { ip },
    port: 443,
  });
  /** What a connection to the API server's ClusterIP `ip` on 443 reaches, as [peer, port]. */
  const kubernetesBackends = (id: Identity, ip: string) =>
    id
      .serviceBackends(id.resolveNumber({ ip }, 0, 443), 443, 'TCP')!
      .map((b) => [id.peerAt(b.peer).id, b.port]);
  const egressOf = (r: Analysis, name: string) =>
    r.proposal.policies.find((p) => p.metadata.name === name)!.spec.egress!;

  it("takes the API server's endpoints from its Endpoints object when no EndpointSlice has them", async () => {
    const snap = withObjects(apiEndpoints('172.18.0.3', 6443));
    snap.endpointSlices = [];
    const id = buildIdentity(snap);
    expect(id.apiserverEndpoints).toEqual({ ips: ['172.18.0.3'], ports: [6443] });
    expect(id.resolve({ ip: '172.18.0.3' }, 0, 6443).id).toBe('kube-apiserver');
    // The ClusterIP (443) is translated to the endpoints' port, as with a slice: no rule opens 443.
    expect(id.peerAt(id.resolveNumber({ ip: '10.96.0.1' }, 0, 443)).id).toBe('service:default/kubernetes');
    expect(kubernetesBackends(id, '10.96.0.1')).toEqual([['kube-apiserver', 6443]]);
    const res = await runPipeline(snap, [...fixtureFlows(), viaClusterIP('10.96.0.1')]);
    expect(res.graph.edges.filter((e) => e.target === 'kube-apiserver').map((e) => [e.id, e.count])).toEqual([
      ['shop/Deployment/cart->kube-apiserver:6443/TCP', 2],
    ]);
    expect(egressOf(res, 'microseg-cart')).toContainEqual({
      to: [{ ipBlock: { cidr: '172.18.0.3/32' } }],
      ports: [{ protocol: 'TCP', port: 6443 }],
    });
    expect(res.proposal.notExpressible.filter((n) => n.edge.includes('kube-apiserver'))).toEqual([]);
    // A collector that marks the ClusterIP as the API server's does not stop the translation.
    const marked: Flow = {
      ...viaClusterIP('10.96.0.1'),
      dst: { ip: '10.96.0.1', reserved: 'kube-apiserver' },
    };
    expect(id.peerAt(id.resolveNumber(marked.dst, 0, 443)).id).toBe('service:default/kubernetes');
    const markedRes = await runPipeline(snap, [...fixtureFlows(), marked]);
    expect(markedRes.graph.edges.filter((e) => e.target === 'kube-apiserver').map((e) => e.id)).toEqual([
      'shop/Deployment/cart->kube-apiserver:6443/TCP',
    ]);
    expect(egressOf(markedRes, 'microseg-cart')).toContainEqual({
      to: [{ ipBlock: { cidr: '172.18.0.3/32' } }],
      ports: [{ protocol: 'TCP', port: 6443 }],
    });
    // With a slice as well, the slice is what counts (the Endpoints object only mirrors it).
    const both = buildIdentity(withObjects(apiEndpoints('172.18.0.3', 6444)));
    expect(both.apiserverEndpoints).toEqual({ ips: ['172.18.0.2'], ports: [6443] });
    expect(kubernetesBackends(both, '10.96.0.1')).toEqual([['kube-apiserver', 6443]]);
    const bothRes = await runPipeline(withObjects(apiEndpoints('172.18.0.3', 6444)), [
      ...fixtureFlows(),
      viaClusterIP('10.96.0.1'),
    ]);
    expect(egressOf(bothRes, 'microseg-cart')[0]).toEqual({
      to: [{ ipBlock: { cidr: '172.18.0.2/32' } }],
      ports: [{ protocol: 'TCP', port: 6443 }],
    });
  });

  /**
   * The fixture with the API server's Service given `spec` and its addresses given by `objects` (an
   * Endpoints object, or EndpointSlices) in place of the fixture's slice.
   */
  const apiServerFrom = (spec: Record<string, unknown>, ...objects: unknown[]) => {
    const snap = withObjects(...objects);
    // The fixture's slice (the slices given here are named kubernetes-…).
    snap.endpointSlices = snap.endpointSlices.filter((es) => es.metadata.name !== 'kubernetes');
    const svc = snap.services.find((s) => s.metadata.name === 'kubernetes')!;
    svc.spec = { ...svc.spec, ...spec };
    return snap;
  };
  const apiSlice = (name: string, addressType: string, addresses: string[], ports: object[]) => ({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace: 'default', labels: { 'kubernetes.io/service-name': 'kubernetes' } },
    addressType,
    endpoints: addresses.map((a) => ({ addresses: [a] })),
    ports,
  });
  const endpointsObject = (subsets: { ips: string[]; ports: object[] }[]) => ({
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: { name: 'kubernetes', namespace: 'default' },
    subsets: subsets.map((s) => ({ addresses: s.ips.map((ip) => ({ ip })), ports: s.ports })),
  });
  /** Runs both snapshots on the fixture's flows and `flows`: the analyses must be the same. */
  const sameAnalysis = async (fromEndpoints: ClusterSnapshot, fromSlices: ClusterSnapshot, flows: Flow[]) => {
    const a = await runPipeline(fromEndpoints, [...fixtureFlows(), ...flows]);
    const b = await runPipeline(fromSlices, [...fixtureFlows(), ...flows]);
    expect(a.identity.apiserverEndpoints).toEqual(b.identity.apiserverEndpoints);
    expect(a.identity.stats).toEqual(b.identity.stats);
    expect(a.graph).toEqual(b.graph);
    expect(a.proposal).toEqual(b.proposal);
    expect(policiesToYaml(a.proposal.policies)).toBe(policiesToYaml(b.proposal.policies));
    return a;
  };

  it("translates the ClusterIP to each Endpoints subset as the same slices would: the port of the Service port's name, several addresses", async () => {
    const https = (port: number) => ({ name: 'https', port, protocol: 'TCP' });
    const metrics = { name: 'metrics', port: 9443, protocol: 'TCP' };
    const spec = { ports: [{ name: 'https', port: 443, targetPort: 6443, protocol: 'TCP' }] };
    const subsets = [
      { ips: ['172.18.0.2', '172.18.0.3'], ports: [metrics, https(6443)] },
      { ips: ['172.18.0.4'], ports: [https(6444)] },
    ];
    const fromEndpoints = apiServerFrom(spec, endpointsObject(subsets));
    const fromSlices = apiServerFrom(
      spec,
      ...subsets.map((s, i) => apiSlice(`kubernetes-${i}`, 'IPv4', s.ips, s.ports)),
    );
    const id = buildIdentity(fromEndpoints);
    expect(kubernetesBackends(id, '10.96.0.1')).toEqual([
      ['kube-apiserver', 6443],
      ['kube-apiserver', 6444],
    ]);
    expect(kubernetesBackends(id, '10.96.0.1')).toEqual(
      kubernetesBackends(buildIdentity(fromSlices), '10.96.0.1'),
    );
    const r = await sameAnalysis(fromEndpoints, fromSlices, [viaClusterIP('10.96.0.1')]);
    // One rule to the API server's addresses on the endpoint ports the connections were translated to
    // (as with slices); the endpoints' metrics port, which no connection used, stays closed.
    expect(egressOf(r, 'microseg-cart')[0]).toEqual({
      to: ['172.18.0.2/32', '172.18.0.3/32', '172.18.0.4/32'].map((cidr) => ({ ipBlock: { cidr } })),
      ports: [6443, 6444].map((port) => ({ protocol: 'TCP', port })),
    });
  });

  it("opens to the API server only the endpoint ports each workload's connections used", async () => {
    const https = { name: 'https', port: 6443, protocol: 'TCP' };
    const metrics = { name: 'metrics', port: 9443, protocol: 'TCP' };
    const spec = { ports: [{ name: 'https', port: 443, targetPort: 6443, protocol: 'TCP' }] };
    const snap = apiServerFrom(spec, apiSlice('kubernetes-v4', 'IPv4', ['172.18.0.2'], [https, metrics]));
    expect(buildIdentity(snap).apiserverEndpoints).toEqual({ ips: ['172.18.0.2'], ports: [6443, 9443] });
    const frontend = { ip: '10.244.1.10', namespace: 'shop', pod: 'frontend-7d9f-aaaaa' };
    const r = await runPipeline(snap, [
      ...fixtureFlows(), // cart to 172.18.0.2:6443
      viaClusterIP('10.96.0.1'), // cart to 10.96.0.1:443, which is 6443
      // frontend scrapes the metrics port, straight to the endpoint address.
      {
        ...viaClusterIP('10.96.0.1'),
        src: frontend,
        dst: { ip: '172.18.0.2', reserved: 'kube-apiserver' },
        port: 9443,
      },
    ]);
    const toAPI = (name: string) =>
      egressOf(r, name).filter((rule) => rule.to?.[0]?.ipBlock?.cidr === '172.18.0.2/32');
    expect(toAPI('microseg-cart')).toEqual([
      { to: [{ ipBlock: { cidr: '172.18.0.2/32' } }], ports: [{ protocol: 'TCP', port: 6443 }] },
    ]);
    expect(toAPI('microseg-frontend')).toEqual([
      { to: [{ ipBlock: { cidr: '172.18.0.2/32' } }], ports: [{ protocol: 'TCP', port: 9443 }] },
    ]);
    expect(
      r.proposal.evidence.filter((e) => e.peer === 'kube-apiserver').map((e) => [e.policy, e.port]),
    ).toEqual([
      ['shop/microseg-cart', 6443],
      ['shop/microseg-frontend', 9443],
    ]);
  });

  it("reads the Endpoints object when the API server's slice names no address", async () => {
    const ports = [{ name: 'https', port: 6443, protocol: 'TCP' }];
    const snap = apiServerFrom(
      {},
      apiSlice('kubernetes-empty', 'IPv4', [], ports),
      endpointsObject([{ ips: ['172.18.0.3'], ports }]),
    );
    const id = buildIdentity(snap);
    expect(id.apiserverEndpoints).toEqual({ ips: ['172.18.0.3'], ports: [6443] });
    expect(kubernetesBackends(id, '10.96.0.1')).toEqual([['kube-apiserver', 6443]]);
    const r = await runPipeline(snap, [...fixtureFlows(), viaClusterIP('10.96.0.1')]);
    expect(egressOf(r, 'microseg-cart')[0]).toEqual({
      to: [{ ipBlock: { cidr: '172.18.0.3/32' } }],
      ports: [{ protocol: 'TCP', port: 6443 }],
    });
  });

  it('translates the ClusterIP to an unnamed port, the single one each side, as the same slice would', async () => {
    // The fixture's Service has one unnamed port (443); the Endpoints object one named port.
    const subsets = [{ ips: ['172.18.0.2'], ports: [{ name: 'https', port: 6443, protocol: 'TCP' }] }];
    const r = await sameAnalysis(
      apiServerFrom({}, endpointsObject(subsets)),
      apiServerFrom({}, apiSlice('kubernetes-v4', 'IPv4', subsets[0]!.ips, subsets[0]!.ports)),
      [viaClusterIP('10.96.0.1')],
    );
    expect(egressOf(r, 'microseg-cart')[0]).toEqual({
      to: [{ ipBlock: { cidr: '172.18.0.2/32' } }],
      ports: [{ protocol: 'TCP', port: 6443 }],
    });
  });

  it('translates each ClusterIP of a dual-stack kubernetes Service to the endpoints of its family', async () => {
    const spec = { clusterIPs: ['10.96.0.1', 'fd00:10:96::1'] };
    const ports = [{ name: 'https', port: 6443, protocol: 'TCP' }];
    // One subset of both families (as written by hand), split by family as the mirroring controller does.
    const fromEndpoints = apiServerFrom(
      spec,
      endpointsObject([{ ips: ['172.18.0.2', 'fd00:18::2', '172.18.0.3', 'fd00:18::3'], ports }]),
    );
    const fromSlices = apiServerFrom(
      spec,
      apiSlice('kubernetes-v4', 'IPv4', ['172.18.0.2', '172.18.0.3'], ports),
      apiSlice('kubernetes-v6', 'IPv6', ['fd00:18::2', 'fd00:18::3'], ports),
    );
    const id = buildIdentity(fromEndpoints);
    expect(id.peerAt(id.resolveNumber({ ip: 'fd00:10:96::1' }, 0, 443)).id).toBe(
      'service:default/kubernetes (IPv6)',
    );
    expect(kubernetesBackends(id, 'fd00:10:96::1')).toEqual([['kube-apiserver', 6443]]);
    expect(kubernetesBackends(id, '10.96.0.1')).toEqual([['kube-apiserver', 6443]]);
    const r = await sameAnalysis(fromEndpoints, fromSlices, [
      viaClusterIP('10.96.0.1'),
      { ...viaClusterIP('fd00:10:96::1'), src: { namespace: 'shop', pod: 'cart-7d9f-bbbbb' } },
    ]);
    expect(egressOf(r, 'microseg-cart')[0]).toEqual({
      to: ['172.18.0.2/32', '172.18.0.3/32', 'fd00:18::2/128', 'fd00:18::3/128'].map((cidr) => ({
        ipBlock: { cidr },
      })),
      ports: [{ protocol: 'TCP', port: 6443 }],
    });
  });

  it('translates the ClusterIP of an IPv6 kubernetes Service to its IPv6 Endpoints', async () => {
    const spec = { clusterIP: 'fd00:10:96::1' };
    const ports = [{ name: 'https', port: 6443, protocol: 'TCP' }];
    const ips = ['fd00:18::2', 'fd00:18::3'];
    const r = await sameAnalysis(
      apiServerFrom(spec, endpointsObject([{ ips, ports }])),
      apiServerFrom(spec, apiSlice('kubernetes-v6', 'IPv6', ips, ports)),
      [{ ...viaClusterIP('fd00:10:96::1'), src: { namespace: 'shop', pod: 'cart-7d9f-bbbbb' } }],
    );
    expect(r.graph.edges.filter((e) => e.target === 'kube-apiserver').map((e) => e.id)).toEqual([
      'shop/Deployment/cart->kube-apiserver:6443/TCP',
    ]);
    expect(egressOf(r, 'microseg-cart')[0]).toEqual({
      to: [{ ipBlock: { cidr: 'fd00:18::2/128' } }, { ipBlock: { cidr: 'fd00:18::3/128' } }],
      ports: [{ protocol: 'TCP', port: 6443 }],
    });
  });

  it('translates the ClusterIP of any Service without a selector by its Endpoints object when no slice names an address', async () => {
    // A Service in front of a database outside the cluster, its address kept by hand in an Endpoints
    // object; the snapshot has no EndpointSlice for it (an older export).
    const service = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'billing-db', namespace: 'shop' },
      spec: { clusterIP: '10.96.7.7', ports: [{ name: 'pg', port: 5432, protocol: 'TCP' }] },
    };
    const subsets = [{ ips: ['203.0.113.50'], ports: [{ name: 'pg', port: 15432, protocol: 'TCP' }] }];
    const endpoints = {
      ...endpointsObject(subsets),
      metadata: { name: 'billing-db', namespace: 'shop' },
    };
    const slice = {
      ...apiSlice('billing-db-1', 'IPv4', subsets[0]!.ips, subsets[0]!.ports),
      metadata: {
        name: 'billing-db-1',
        namespace: 'shop',
        labels: { 'kubernetes.io/service-name': 'billing-db' },
      },
    };
    const toDB = { ...viaClusterIP('10.96.7.7'), port: 5432 };
    const r = await sameAnalysis(withObjects(service, endpoints), withObjects(service, slice), [toDB]);
    expect(r.graph.edges.filter((e) => e.target.includes('203.0.113.50')).map((e) => e.id)).toEqual([
      'shop/Deployment/cart->world:203.0.113.50:15432/TCP',
    ]);
    expect(egressOf(r, 'microseg-cart')).toContainEqual({
      to: [{ ipBlock: { cidr: '203.0.113.50/32' } }],
      ports: [{ protocol: 'TCP', port: 15432 }],
    });
    expect(JSON.stringify(r.graph)).not.toContain('10.96.7.7');
    // A slice that names an address wins; the Endpoints object of a Service with a selector is not read.
    const moved = {
      ...endpoints,
      subsets: [{ addresses: [{ ip: '203.0.113.99' }], ports: subsets[0]!.ports }],
    };
    const both = buildIdentity(withObjects(service, moved, slice));
    const backends = (id: Identity, ip: string, port: number) =>
      id
        .serviceBackends(id.resolveNumber({ ip }, 0, port), port, 'TCP')!
        .map((b) => [id.peerAt(b.peer).id, b.port]);
    expect(backends(both, '10.96.7.7', 5432)).toEqual([['world:203.0.113.50', 15432]]);
    const cartEndpoints = {
      ...endpointsObject([{ ips: ['203.0.113.51'], ports: [{ port: 9999, protocol: 'TCP' }] }]),
      metadata: { name: 'cart', namespace: 'shop' },
    };
    const id = buildIdentity(withObjects(cartEndpoints));
    expect(backends(id, '10.96.5.6', 8080)).toEqual([['shop/Deployment/cart', 8080]]);
  });

  const cronJob = (name: string) => ({
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: { name, namespace: 'shop', uid: `uid-${name}` },
    spec: {
      schedule: '0 0 * * *',
      jobTemplate: { spec: { template: { metadata: { labels: { app: name } } } } },
    },
  });
  const jobPod = (job: string, app: string, ip: string) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `${job}-abcde`,
      namespace: 'shop',
      labels: { app, 'job-name': job, 'batch.kubernetes.io/job-name': job },
      ownerReferences: [
        { apiVersion: 'batch/v1', kind: 'Job', name: job, uid: `uid-${job}`, controller: true },
      ],
    },
    spec: { containers: [{ name: 'c' }] },
    status: { phase: 'Succeeded', podIP: ip, startTime: '2026-11-01T00:00:00Z' },
  });

  it('traces a Job absent from the snapshot to the CronJob named in its name, if that exists', () => {
    const id = buildIdentity(
      withObjects(
        cronJob('nightly'),
        jobPod('nightly-29000000', 'nightly', '10.244.3.1'),
        jobPod('adhoc-29000000', 'adhoc', '10.244.3.2'),
        jobPod('nightly-backfill', 'nightly', '10.244.3.3'),
      ),
    );
    expect(id.podWorkload.get('shop/nightly-29000000-abcde')).toBe('shop/CronJob/nightly');
    expect(id.workloads.get('shop/CronJob/nightly')!.pods).toEqual(['nightly-29000000-abcde']);
    expect(id.workloads.has('shop/Job/nightly-29000000')).toBe(false);
    // No CronJob `adhoc`; `backfill` is no scheduled time: the Jobs stay themselves.
    expect(id.podWorkload.get('shop/adhoc-29000000-abcde')).toBe('shop/Job/adhoc-29000000');
    expect(id.podWorkload.get('shop/nightly-backfill-abcde')).toBe('shop/Job/nightly-backfill');
  });

  it("infers a CronJob from its Job's name when the snapshot has neither, if the pod started within a day of the run's scheduled minute, and says so", () => {
    // 29000000 minutes is 2025-02-19T21:20Z, 29001440 a day later: two runs of `report`.
    const run = (job: string, ip: string, start: string | undefined) => {
      const p = jobPod(job, 'report', ip);
      return { ...p, status: { ...p.status, startTime: start } };
    };
    const id = buildIdentity(
      withObjects(
        run('report-29000000', '10.244.3.1', '2025-02-19T21:20:04Z'),
        run('report-29001440', '10.244.3.2', '2025-02-20T21:21:30Z'),
        // Started two days after the minute its name would be: no run of a CronJob of that time.
        run('migrate-29000000', '10.244.3.3', '2025-02-21T21:20:00Z'),
        // No time to tell by.
        run('backup-29000000', '10.244.3.4', undefined),
      ),
    );
    expect(id.podWorkload.get('shop/report-29000000-abcde')).toBe('shop/CronJob/report');
    expect(id.podWorkload.get('shop/report-29001440-abcde')).toBe('shop/CronJob/report');
    expect(id.workloads.get('shop/CronJob/report')!.pods).toEqual([
      'report-29000000-abcde',
      'report-29001440-abcde',
    ]);
    expect(id.workloads.get('shop/CronJob/report')!.selector).toEqual({ matchLabels: { app: 'report' } });
    expect(id.podWorkload.get('shop/migrate-29000000-abcde')).toBe('shop/Job/migrate-29000000');
    expect(id.podWorkload.get('shop/backup-29000000-abcde')).toBe('shop/Job/backup-29000000');
    const fix = 'include jobs and cronjobs in the snapshot (kubectl get ...,jobs,cronjobs -o json)';
    expect(id.warnings).toContain(
      "shop/CronJob/report: inferred from the name of its pods' Job report-29000000, which the snapshot lacks, as it " +
        'lacks the CronJob: a CronJob names its Jobs <cronjob>-<scheduled minute> (29000000: 2025-02-19T21:20:00Z), ' +
        `and its first pod was created within a day after it; ${fix}`,
    );
    expect(id.warnings).toContain(
      "2 workloads are named after their pods' Job, which the snapshot lacks, whose name is of a CronJob's run " +
        '(<cronjob>-<scheduled minute>) but not taken for one (shop/Job/backup-29000000, ' +
        'shop/Job/migrate-29000000): if a CronJob made one, each of its runs is another workload and its ' +
        `policy is named anew every run; ${fix}`,
    );
    expect(id.jobWarnings).toEqual(id.warnings.filter((w) => w.includes(fix)));
    expect(id.jobWarnings).toHaveLength(2);
    // With the CronJob in the snapshot, or the Job naming it, nothing is said.
    const known = buildIdentity(
      withObjects(cronJob('report'), run('report-29000000', '10.244.3.1', undefined)),
    );
    expect(known.podWorkload.get('shop/report-29000000-abcde')).toBe('shop/CronJob/report');
    expect(known.jobWarnings).toEqual([]);
  });

  it('takes a Job the snapshot lacks, with its CronJob, for a run or not by its first pod, for all its pods alike', () => {
    // 29000000 minutes is 2025-02-19T21:20Z. The first pod made on time, another two days later (made
    // again after an eviction): both are the run's, by identity and by ownerWorkload given the pods.
    const made = (name: string, start: string) => {
      const p = jobPod('report-29000000', 'report', '10.244.3.1');
      return { ...p, metadata: { ...p.metadata, name }, status: { ...p.status, startTime: start } };
    };
    const pods = [
      made('report-29000000-late1', '2025-02-21T21:20:00Z'),
      made('report-29000000-first', '2025-02-19T21:20:04Z'),
    ];
    const id = buildIdentity(withObjects(...pods));
    expect(id.podWorkload.get('shop/report-29000000-first')).toBe('shop/CronJob/report');
    expect(id.podWorkload.get('shop/report-29000000-late1')).toBe('shop/CronJob/report');
    expect(id.jobWarnings).toEqual([expect.stringMatching(/^shop\/CronJob\/report: inferred /)]);
    const snap = snapshotFromObjects(pods, 'test');
    const ownership = ownershipOf({ workloads: [], cronJobs: [], pods: snap.pods });
    expect(snap.pods.map((p) => ownerWorkload(p, ownership))).toEqual([
      { kind: 'CronJob', name: 'report' },
      { kind: 'CronJob', name: 'report' },
    ]);
    // Without the pods, each pod is told by its own time.
    const alone = ownershipOf({ workloads: [], cronJobs: [] });
    expect(snap.pods.map((p) => ownerWorkload(p, alone).kind)).toEqual(['Job', 'CronJob']);
  });

  it('keeps a Job that is in the snapshot without an owner as a Job, whatever its name', () => {
    const job = {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: 'nightly-1', namespace: 'shop', uid: 'uid-nightly-1' },
      spec: { template: { metadata: { labels: { app: 'nightly' } } } },
    };
    const id = buildIdentity(
      withObjects(cronJob('nightly'), job, jobPod('nightly-1', 'nightly', '10.244.3.1')),
    );
    expect(id.podWorkload.get('shop/nightly-1-abcde')).toBe('shop/Job/nightly-1');
  });

  const daemonSet = {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name: 'agent', namespace: 'shop', uid: 'uid-agent' },
    spec: {
      selector: { matchLabels: { app: 'agent' } },
      template: { metadata: { labels: { app: 'agent' } } },
    },
  };

  it('never gives a pod the flow names, absent from the snapshot, to the pod holding its address', () => {
    const id = buildIdentity(withObjects(daemonSet, cronJob('nightly')));
    const cartIP = '10.244.1.20'; // held by cart-7d9f-bbbbb since before the flows
    const at = (pod: string, ns = 'shop') => id.resolve({ namespace: ns, pod, ip: cartIP }, T1).id;
    // The workload its name's shape names, when that workload is in the snapshot.
    expect(at('frontend-7d9f-zzzzz')).toBe('shop/Deployment/frontend');
    expect(at('frontend-5c6b7d8f9-x2b4n')).toBe('shop/Deployment/frontend');
    expect(at('db-3')).toBe('shop/StatefulSet/db');
    expect(at('agent-q7w9z')).toBe('shop/DaemonSet/agent');
    expect(at('nightly-29000000-k2m4p')).toBe('shop/CronJob/nightly');
    expect(id.stats).toMatchObject({ byPodName: 5, byIP: 0, unattributed: 0 });
    // Otherwise the pod itself, unattributed: no such workload, a shape that names none, another
    // namespace, a workload only flows have shown.
    id.resolve({ namespace: 'shop', pod: 'ghost-1', workload: { kind: 'Deployment', name: 'ghost' } }, T1);
    expect(at('gone-7f9c-xx')).toBe('shop/Pod/gone-7f9c-xx');
    expect(at('frontend-7d9f')).toBe('shop/Pod/frontend-7d9f');
    expect(at('cart-7d9f-zzzzz', 'kube-system')).toBe('kube-system/Pod/cart-7d9f-zzzzz');
    expect(at('ghost-7d9f-zzzzz')).toBe('shop/Pod/ghost-7d9f-zzzzz');
    expect(id.stats).toMatchObject({ byPodName: 5, byIP: 0, byHubbleWorkload: 1, unattributed: 4 });
    expect(id.warnings).toContain(
      'workload shop/Pod/gone-7f9c-xx was seen in flows but is not in the snapshot; its selector comes from flow labels',
    );
    // Hubble's workload and a label match still come first.
    expect(
      id.resolve(
        { namespace: 'shop', pod: 'db-3', ip: cartIP, workload: { kind: 'Deployment', name: 'cart' } },
        T1,
      ).id,
    ).toBe('shop/Deployment/cart');
    expect(id.resolve({ namespace: 'shop', pod: 'x-1', ip: cartIP, labels: ['app=db'] }, T1).id).toBe(
      'shop/StatefulSet/db',
    );
    // The address alone still means its holder.
    expect(id.resolve({ ip: cartIP }, T1).id).toBe('shop/Deployment/cart');
  });

  it('gives a pod name whose shape fits two workloads to neither', () => {
    const ds = { ...daemonSet, metadata: { ...daemonSet.metadata, name: 'frontend-7d9f', uid: 'uid-ds' } };
    const id = buildIdentity(withObjects(ds));
    expect(id.resolve({ namespace: 'shop', pod: 'frontend-7d9f-zzzzz', ip: '10.244.1.20' }, T1).id).toBe(
      'shop/Pod/frontend-7d9f-zzzzz',
    );
    expect(id.stats).toMatchObject({ byPodName: 0, byIP: 0, unattributed: 1 });
  });
});

describe('pipeline on the fixture', async () => {
  const res = await runPipeline(fixtureSnapshot(), fixtureFlows());
  const policy = (name: string) => res.proposal.policies.find((p) => p.metadata.name === name)!;

  it('builds one edge per (source, destination, protocol, port) with evidence', () => {
    const e = res.graph.edges.find(
      (x) => x.id === 'shop/Deployment/frontend->shop/Deployment/cart:8080/TCP',
    )!;
    expect(e.count).toBe(2); // by pod IP and by Service ClusterIP
    expect(e.firstSeen).toBe('2026-11-01T10:02:00.000Z');
    expect(e.lastSeen).toBe('2026-11-01T10:03:00.000Z');
    expect(res.graph.nodes.find((n) => n.id === 'world:198.51.100.7')!.names).toEqual([
      'api.payments.example',
    ]);
    expect(toDot(res.graph)).toContain(
      '"shop/Deployment/frontend" -> "shop/Deployment/cart" [label="8080/TCP (2)"]',
    );
  });

  it('segments workloads deterministically and keeps DNS out of app segments', () => {
    expect(res.segments.membership['kube-system/Deployment/coredns']).toBe('kube-system-platform');
    expect(res.segments.membership['shop/Deployment/cart']).toBe(
      res.segments.membership['shop/Deployment/frontend'],
    );
  });

  it('writes least-privilege policies with both policy types, DNS and the API server', () => {
    expect(res.proposal.namespaces).toEqual(['shop']);
    expect(res.proposal.policies.map((p) => p.metadata.name)).toEqual([
      'microseg-default-deny',
      'microseg-cart',
      'microseg-db',
      'microseg-frontend',
    ]);
    const cart = policy('microseg-cart');
    expect(cart.spec.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(cart.spec.podSelector).toEqual({ matchLabels: { app: 'cart' } });
    expect(cart.spec.ingress).toEqual([
      {
        from: [{ podSelector: { matchLabels: { app: 'frontend' } } }],
        ports: [{ protocol: 'TCP', port: 8080 }],
      },
    ]);
    expect(cart.spec.egress).toEqual([
      { to: [{ ipBlock: { cidr: '172.18.0.2/32' } }], ports: [{ protocol: 'TCP', port: 6443 }] },
      {
        to: [
          {
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
            podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
          },
        ],
        ports: [
          { protocol: 'TCP', port: 53 },
          { protocol: 'UDP', port: 53 },
        ],
      },
      { to: [{ podSelector: { matchLabels: { app: 'db' } } }], ports: [{ protocol: 'TCP', port: 5432 }] },
      { to: [{ ipBlock: { cidr: '198.51.100.7/32' } }], ports: [{ protocol: 'TCP', port: 443 }] },
    ]);
    expect(cart.metadata.annotations!['microseg.dev/external-names']).toBe(
      '198.51.100.7/32=api.payments.example',
    );
    // A LoadBalancer-backed workload takes internet clients on the observed port.
    // ...but never pods: the pod networks inferred from pod addresses are excluded.
    expect(policy('microseg-frontend').spec.ingress).toEqual([
      {
        from: [{ ipBlock: { cidr: '0.0.0.0/0', except: ['10.244.0.0/16'] } }],
        ports: [{ protocol: 'TCP', port: 8080 }],
      },
    ]);
  });

  it('records what it could not express instead of opening it', () => {
    const reasons = Object.fromEntries(res.proposal.notExpressible.map((n) => [n.edge, n.reason]));
    expect(reasons['shop/Deployment/frontend->shop/Deployment/cart:0/ICMPv4']).toBe(
      'NetworkPolicy cannot express ICMPv4',
    );
    expect(reasons['shop/Deployment/frontend->shop/Deployment/cart:9999/TCP']).toMatch(
      /every observation was dropped/,
    );
    expect(reasons['node:192.168.0.10->shop/Deployment/cart:8080/TCP']).toMatch(/always admitted/);
    expect(policy('microseg-cart').spec.ingress!.flatMap((r) => r.ports)).not.toContainEqual({
      protocol: 'TCP',
      port: 9999,
    });
  });

  it('traces every rule to its flows', () => {
    const ev = res.proposal.evidence.find(
      (e) => e.policy === 'shop/microseg-db' && e.direction === 'ingress',
    )!;
    expect(ev).toMatchObject({ peer: 'shop/Deployment/cart', protocol: 'TCP', port: 5432, count: 1 });
    expect(res.proposal.byWorkload['shop/StatefulSet/db']).toEqual([
      'shop/microseg-default-deny',
      'shop/microseg-db',
    ]);
  });

  it('uses named ports when asked', async () => {
    const named = await runPipeline(fixtureSnapshot(), fixtureFlows(), { policy: { namedPorts: true } });
    const cart = named.proposal.policies.find((p) => p.metadata.name === 'microseg-cart')!;
    expect(cart.spec.ingress![0]!.ports).toEqual([{ protocol: 'TCP', port: 'http' }]);
  });

  it('is deterministic regardless of flow order', async () => {
    const again = await runPipeline(fixtureSnapshot(), [...fixtureFlows()].reverse());
    expect(policiesToYaml(again.proposal.policies)).toBe(policiesToYaml(res.proposal.policies));
    expect(JSON.stringify(again.graph)).toBe(JSON.stringify(res.graph));
  });

  it('stops at the graph and its segments for `microseg graph`', async () => {
    const g = await runGraphPipeline(fixtureSnapshot(), fixtureFlows());
    expect(JSON.stringify(g.graph)).toBe(JSON.stringify(res.graph));
    expect(g.segments).toEqual(res.segments);
    expect(g.flows).toBe(res.flows);
    expect(g.graph.nodes.some((n) => n.segment !== undefined)).toBe(true);
    expect('proposal' in g).toBe(false);
  });

  it("takes a reader's flows in batches when it has them", async () => {
    const all = [...fixtureFlows()];
    const batched = {
      async *batches() {
        yield await Promise.resolve(all.slice(0, 3));
        yield all.slice(3);
      },
      [Symbol.asyncIterator](): AsyncIterator<Flow> {
        throw new Error('taken one by one');
      },
    };
    for (const run of [runGraphPipeline, runPipeline]) {
      const g = await run(fixtureSnapshot(), batched);
      expect(JSON.stringify(g.graph)).toBe(JSON.stringify(res.graph));
      expect(g.flows).toBe(all.length);
    }
  });

  it('calls afterIdentity before the first flow is read, afterIngest after the last, once each', async () => {
    const { recommend } = await import('../../src/cli/commands/recommend.ts');
    for (const run of [runPipeline, runGraphPipeline, recommend]) {
      const events: string[] = [];
      function* flows() {
        events.push('first flow read');
        yield* fixtureFlows();
        events.push('last flow read');
      }
      const r = await run(fixtureSnapshot(), flows(), {
        afterIdentity: () => events.push('identity built'),
        afterIngest: () => events.push('ingest done'),
      });
      expect(events).toEqual(['identity built', 'first flow read', 'last flow read', 'ingest done']);
      expect(JSON.stringify(('analysis' in r ? r.analysis : r).graph)).toBe(JSON.stringify(res.graph));
    }
  });

  it('recommend calls afterAnalysis once the proposal is made and afterProof once it is proved', async () => {
    const { recommend } = await import('../../src/cli/commands/recommend.ts');
    const events: string[] = [];
    const r = await recommend(fixtureSnapshot(), fixtureFlows(), {
      afterIngest: () => events.push('ingest done'),
      afterAnalysis: () => events.push('analysed'),
      afterProof: () => events.push('proved'),
    });
    expect(events).toEqual(['ingest done', 'analysed', 'proved']);
    expect(r.proof.checked).toBeGreaterThan(0);
    expect(JSON.stringify(r.analysis.proposal)).toBe(JSON.stringify(res.proposal));
  });
});
