import { describe, expect, it } from 'vitest';
import type { Pod } from '../../src/model/k8s.ts';
import type { ClusterSnapshot } from '../../src/model/snapshot.ts';
import { runPipeline } from '../../src/pipeline.ts';
import { fixtureFlows, fixtureSnapshot } from './fixture.ts';

/** A StatefulSet named cart beside the fixture's Deployment cart (its pods labelled app=cart-store). */
function addCartStatefulSet(snap: ClusterSnapshot): void {
  snap.workloads.push({
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name: 'cart', namespace: 'shop', uid: 'uid-sts-cart' },
    spec: {
      selector: { matchLabels: { app: 'cart-store' } },
      template: { metadata: { labels: { app: 'cart-store' } } },
    },
  });
}

describe('policy synthesis options', () => {
  it('widens external peers to the requested prefix', async () => {
    const r = await runPipeline(fixtureSnapshot(), fixtureFlows(), { policy: { externalPrefix: 24 } });
    const cart = r.proposal.policies.find((p) => p.metadata.name === 'microseg-cart')!;
    expect(cart.spec.egress).toContainEqual({
      to: [{ ipBlock: { cidr: '198.51.100.0/24' } }],
      ports: [{ protocol: 'TCP', port: 443 }],
    });
  });

  it('writes widened IPv6 peers and pod networks in canonical form', async () => {
    const snap = fixtureSnapshot();
    // The frontend pod is dual-stack, in a pod network whose third group is zero.
    const fe = snap.pods.find((p) => p.metadata.name === 'frontend-7d9f-aaaaa')!;
    fe.status!.podIPs = [{ ip: '10.244.1.10' }, { ip: 'fd00:10:0:1::a' }];
    const base = fixtureFlows()[1]!; // frontend -> cart
    const world = (ip: string) => ({ ...base, dst: { ip, reserved: 'world' as const }, port: 443 });
    const flows = [
      ...fixtureFlows(),
      world('2a00:1450:4001:82a::200e'),
      { ...base, src: { ip: '2001:db8:77::5', reserved: 'world' as const }, dst: { ip: 'fd00:10:0:1::a' } },
    ];
    const r = await runPipeline(snap, flows, { policy: { externalPrefixV6: 64 } });
    const policy = r.proposal.policies.find((p) => p.metadata.name === 'microseg-frontend')!;
    expect(policy.spec.egress).toContainEqual({
      to: [{ ipBlock: { cidr: '2a00:1450:4001:82a::/64' } }],
      ports: [{ protocol: 'TCP', port: 443 }],
    });
    // The cluster has IPv6, so the internet of both families, each minus its pod networks.
    expect(policy.spec.ingress).toContainEqual({
      from: [
        { ipBlock: { cidr: '0.0.0.0/0', except: ['10.244.0.0/16'] } },
        { ipBlock: { cidr: '::/0', except: ['fd00:10::/48'] } },
      ],
      ports: [{ protocol: 'TCP', port: 8080 }],
    });
    expect(r.identity.podNetworks).toEqual(['10.244.0.0/16', 'fd00:10::/48']);
  });

  it('with worldIngress any admits ::/0 too in a cluster that has IPv6, and only 0.0.0.0/0 in an IPv4 one', async () => {
    // The fixture's internet client of the load-balanced frontend is IPv4 (203.0.113.9).
    const frontendIngress = (r: Awaited<ReturnType<typeof runPipeline>>) =>
      r.proposal.policies
        .find((p) => p.metadata.name === 'microseg-frontend')!
        .spec.ingress!.filter((i) => i.from!.some((f) => f.ipBlock?.cidr.endsWith('/0')));
    const v4 = await runPipeline(fixtureSnapshot(), fixtureFlows());
    expect(v4.identity.ipv6).toBe(false);
    expect(frontendIngress(v4)).toEqual([
      {
        from: [{ ipBlock: { cidr: '0.0.0.0/0', except: ['10.244.0.0/16'] } }],
        ports: [{ protocol: 'TCP', port: 8080 }],
      },
    ]);
    // Dual-stack pods: the same IPv4 client gives one rule of both families, each minus its pod networks.
    const dual = fixtureSnapshot();
    for (const p of dual.pods)
      if (p.status?.podIP)
        p.status.podIPs = [{ ip: p.status.podIP }, { ip: `fd00:10:0:1::${p.status.podIP.split('.')[3]}` }];
    const both = await runPipeline(dual, fixtureFlows());
    expect(both.identity.ipv6).toBe(true);
    const expected = [
      {
        from: [
          { ipBlock: { cidr: '0.0.0.0/0', except: ['10.244.0.0/16'] } },
          { ipBlock: { cidr: '::/0', except: ['fd00:10::/48'] } },
        ],
        ports: [{ protocol: 'TCP', port: 8080 }],
      },
    ];
    expect(frontendIngress(both)).toEqual(expected);
    // An IPv6 ClusterIP alone says the cluster has IPv6; an IPv6 client joins the same rule.
    const svc = fixtureSnapshot();
    svc.services[0]!.spec.clusterIPs = [svc.services[0]!.spec.clusterIP!, 'fd00:10:96::a'];
    const v6client = { ...fixtureFlows()[0]!, src: { ip: '2001:db8::9', reserved: 'world' as const } };
    const bySvc = await runPipeline(svc, [...fixtureFlows(), v6client]);
    expect(bySvc.identity.ipv6).toBe(true);
    expect(frontendIngress(bySvc)).toEqual([
      {
        from: [{ ipBlock: { cidr: '0.0.0.0/0', except: ['10.244.0.0/16'] } }, { ipBlock: { cidr: '::/0' } }],
        ports: [{ protocol: 'TCP', port: 8080 }],
      },
    ]);
  });

  it('names the prefix a private address is allowed as', async () => {
    const base = fixtureFlows()[1]!; // frontend -> cart
    const flows = [
      ...fixtureFlows(),
      { ...base, dst: { ip: '10.99.0.7' }, port: 5000 },
      { ...base, dst: { ip: 'fd12:3456::9' }, port: 5000 },
    ];
    const r = await runPipeline(fixtureSnapshot(), flows);
    const warnings = r.proposal.warnings.filter((w) => w.includes('is a private address'));
    expect(warnings).toHaveLength(2);
    expect(warnings.find((w) => w.includes(' 10.99.0.7 '))).toMatch(/allowed as a \/32$/);
    expect(warnings.find((w) => w.includes(' fd12:3456::9 '))).toMatch(/allowed as a \/128$/);
  });

  it('lists only observed client addresses with worldIngress observed', async () => {
    const r = await runPipeline(fixtureSnapshot(), fixtureFlows(), { policy: { worldIngress: 'observed' } });
    const fe = r.proposal.policies.find((p) => p.metadata.name === 'microseg-frontend')!;
    expect(fe.spec.ingress).toEqual([
      { from: [{ ipBlock: { cidr: '203.0.113.9/32' } }], ports: [{ protocol: 'TCP', port: 8080 }] },
    ]);
  });

  it('allows dropped-only connections only when asked', async () => {
    const r = await runPipeline(fixtureSnapshot(), fixtureFlows(), { policy: { includeDropped: true } });
    const cart = r.proposal.policies.find((p) => p.metadata.name === 'microseg-cart')!;
    expect(cart.spec.ingress![0]!.ports).toEqual([
      { protocol: 'TCP', port: 8080 },
      { protocol: 'TCP', port: 9999 },
    ]);
  });

  it('proposes nothing, not even a default deny, for a namespace asked for with no observed workload', async () => {
    // What a Segmentation selecting a namespace whose traffic was not learned yet gives too.
    const snap = fixtureSnapshot();
    snap.namespaces.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'quiet' } });
    const r = await runPipeline(snap, fixtureFlows(), { policy: { namespaces: ['shop', 'quiet'] } });
    expect(r.proposal.namespaces).toEqual(['shop']);
    expect(r.proposal.policies.filter((p) => p.metadata.namespace !== 'shop')).toEqual([]);
    expect(r.proposal.policies[0]!.metadata).toMatchObject({
      namespace: 'shop',
      name: 'microseg-default-deny',
    });
    expect(r.proposal.warnings).toContain(
      'namespace quiet: no workload of it was observed in the flows; no policy is proposed for it (a default deny alone would cut off traffic nobody saw)',
    );
  });

  it('writes no default deny when told, and only for the namespaces asked', async () => {
    const r = await runPipeline(fixtureSnapshot(), fixtureFlows(), {
      policy: { defaultDeny: false, namespaces: ['kube-system'] },
    });
    expect(r.proposal.namespaces).toEqual(['kube-system']);
    // coredns is in kube-system: ingress from frontend and cart on 53/UDP; node-exporter is host-network.
    expect(r.proposal.policies.map((p) => p.metadata.name)).toEqual(['microseg-coredns']);
    expect(r.proposal.policies[0]!.spec.ingress).toEqual([
      {
        from: [
          {
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'shop' } },
            podSelector: { matchLabels: { app: 'cart' } },
          },
        ],
        ports: [{ protocol: 'UDP', port: 53 }],
      },
      {
        from: [
          {
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'shop' } },
            podSelector: { matchLabels: { app: 'frontend' } },
          },
        ],
        ports: [{ protocol: 'UDP', port: 53 }],
      },
    ]);
  });

  it('keeps policy names unique when two workload kinds share a name', async () => {
    const snap = fixtureSnapshot();
    addCartStatefulSet(snap);
    snap.pods.push({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'cart-0',
        namespace: 'shop',
        labels: { app: 'cart-store' },
        ownerReferences: [
          { apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'cart', uid: 'uid-sts-cart', controller: true },
        ],
      },
      spec: { containers: [] },
      status: { podIP: '10.244.1.99', podIPs: [{ ip: '10.244.1.99' }], startTime: '2026-11-01T00:00:00Z' },
    });
    const flows = [...fixtureFlows(), { ...fixtureFlows()[1]!, dst: { ip: '10.244.1.99' }, port: 6379 }];
    const r = await runPipeline(snap, flows);
    const names = r.proposal.policies
      .filter((p) => p.metadata.namespace === 'shop')
      .map((p) => p.metadata.name);
    expect(names).toContain('microseg-deployment-cart');
    expect(names).toContain('microseg-statefulset-cart');
    expect(new Set(names).size).toBe(names.length);
  });

  it('keeps policy names unique when a bare pod is named like a kind-qualified name', async () => {
    // Deployment cart and StatefulSet cart want microseg-deployment-cart and microseg-statefulset-cart;
    // the bare pod deployment-cart wants microseg-deployment-cart too.
    const snap = fixtureSnapshot();
    addCartStatefulSet(snap);
    const pod = (name: string, app: string, ip: string, owner?: string): Pod => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name,
        namespace: 'shop',
        labels: { app },
        ...(owner
          ? {
              ownerReferences: [
                { apiVersion: 'apps/v1', kind: 'StatefulSet', name: owner, controller: true },
              ],
            }
          : {}),
      },
      spec: { containers: [] },
      status: { podIP: ip, podIPs: [{ ip }], startTime: '2026-11-01T00:00:00Z' },
    });
    snap.pods.push(
      pod('cart-0', 'cart-store', '10.244.1.99', 'cart'),
      pod('deployment-cart', 'bare', '10.244.1.98'),
    );
    const flows = [
      ...fixtureFlows(),
      { ...fixtureFlows()[1]!, dst: { ip: '10.244.1.99' }, port: 6379 },
      { ...fixtureFlows()[1]!, dst: { ip: '10.244.1.98' }, port: 7000 },
    ];
    for (const order of [flows, [...flows].reverse()]) {
      const snapshot = order === flows ? snap : { ...snap, pods: [...snap.pods].reverse() };
      const r = await runPipeline(snapshot, order);
      const byWorkload = Object.fromEntries(
        r.proposal.policies
          .filter((p) => p.metadata.namespace === 'shop')
          .map((p) => [p.metadata.annotations?.['microseg.dev/workload'] ?? '', p.metadata.name]),
      );
      const names = Object.values(byWorkload);
      expect(new Set(names).size).toBe(names.length);
      // The name the bare pod wants is its own: it keeps it, and the Deployment's gets a hash of its id.
      expect(byWorkload['shop/Pod/deployment-cart']).toBe('microseg-deployment-cart');
      expect(byWorkload['shop/StatefulSet/cart']).toBe('microseg-statefulset-cart');
      expect(byWorkload['shop/Deployment/cart']).toMatch(/^microseg-deployment-cart-[0-9a-f]{8}$/);
      expect(byWorkload['shop/Deployment/frontend']).toBe('microseg-frontend');
    }
  });
});

describe('DNS egress', () => {
  /** The fixture with kube-dns's ports (and coredns's container ports, template and pod alike) replaced. */
  function dnsSnapshot(
    servicePorts: { name?: string; port: number; protocol: string; targetPort?: number | string }[] | null,
    containerPorts: { name: string; containerPort: number; protocol: string }[] = [],
  ): ClusterSnapshot {
    const snap = fixtureSnapshot();
    const i = snap.services.findIndex((s) => s.metadata.name === 'kube-dns');
    if (servicePorts === null) snap.services.splice(i, 1);
    else snap.services[i]!.spec.ports = servicePorts;
    const coredns = snap.workloads.find((w) => w.kind === 'Deployment' && w.metadata.name === 'coredns')!;
    const template = (coredns.spec as { template: { spec: { containers: { ports?: unknown }[] } } }).template;
    template.spec.containers[0]!.ports = containerPorts;
    const pod = snap.pods.find((p) => p.metadata.name.startsWith('coredns-'))!;
    pod.spec.containers = [{ name: 'coredns', ports: containerPorts }];
    return snap;
  }
  /** The ports of each shop policy's rule to the DNS pods; DNS flows left out, so only the DNS rule opens them. */
  async function dnsPorts(snap: ClusterSnapshot, namedPorts = false) {
    const flows = fixtureFlows().filter((f) => f.port !== 53);
    const r = await runPipeline(snap, flows, { policy: { namedPorts } });
    const out: Record<string, unknown> = {};
    for (const p of r.proposal.policies) {
      const rule = p.spec.egress?.find(
        (e) => e.to?.[0]?.podSelector?.matchLabels?.['k8s-app'] === 'kube-dns',
      );
      if (rule) out[p.metadata.name] = rule.ports;
    }
    return out;
  }
  const both = (udp: number | string, tcp: number | string = udp) => [
    { protocol: 'TCP', port: tcp },
    { protocol: 'UDP', port: udp },
  ];

  it("opens the port the DNS pods take the kube-dns Service's port 53 on (CoreDNS on 5353)", async () => {
    const ports = [
      { name: 'dns', port: 53, protocol: 'UDP', targetPort: 5353 },
      { name: 'dns-tcp', port: 53, protocol: 'TCP', targetPort: 5353 },
      { name: 'metrics', port: 9153, protocol: 'TCP', targetPort: 9153 },
    ];
    expect(await dnsPorts(dnsSnapshot(ports))).toEqual({
      'microseg-cart': both(5353),
      'microseg-db': both(5353),
      'microseg-frontend': both(5353),
    });
  });

  it('resolves a named targetPort pod by pod, and names it with namedPorts', async () => {
    const ports = [
      { name: 'dns', port: 53, protocol: 'UDP', targetPort: 'dns' },
      { name: 'dns-tcp', port: 53, protocol: 'TCP', targetPort: 'dns-tcp' },
    ];
    const container = [
      { name: 'dns', containerPort: 1053, protocol: 'UDP' },
      { name: 'dns-tcp', containerPort: 1054, protocol: 'TCP' },
    ];
    const snap = dnsSnapshot(ports, container);
    expect((await dnsPorts(snap))['microseg-cart']).toEqual(both(1053, 1054));
    expect((await dnsPorts(snap, true))['microseg-cart']).toEqual(both('dns', 'dns-tcp'));
  });

  /** The same without the DNS pods or their workload objects: no DNS workload to select. */
  function withoutDNSPods(snap: ClusterSnapshot): ClusterSnapshot {
    snap.pods = snap.pods.filter((p) => !p.metadata.name.startsWith('coredns-'));
    snap.workloads = snap.workloads.filter((w) => !w.metadata.name.startsWith('coredns'));
    return snap;
  }

  it("without a DNS workload, the fallback rule opens the kube-dns Service's numeric targetPort", async () => {
    const ports = [
      { name: 'dns', port: 53, protocol: 'UDP', targetPort: 5353 },
      { name: 'dns-tcp', port: 53, protocol: 'TCP', targetPort: 5353 },
    ];
    const snap = withoutDNSPods(dnsSnapshot(ports));
    expect(await dnsPorts(snap)).toEqual({
      'microseg-cart': both(5353),
      'microseg-db': both(5353),
      'microseg-frontend': both(5353),
    });
    const flows = fixtureFlows().filter((f) => f.port !== 53);
    const r = await runPipeline(withoutDNSPods(dnsSnapshot(ports)), flows);
    expect(r.proposal.warnings).toContain(
      'no cluster DNS workload in the snapshot; DNS egress allowed to kube-system pods labelled k8s-app=kube-dns on 5353/UDP, 5353/TCP',
    );
    // A protocol the Service has no port 53 of keeps 53; so does a targetPort by name, which no pod
    // of the snapshot gives a number.
    const udp = [{ name: 'dns', port: 53, protocol: 'UDP', targetPort: 5353 }];
    expect((await dnsPorts(withoutDNSPods(dnsSnapshot(udp))))['microseg-cart']).toEqual(both(5353, 53));
    const named = [
      { name: 'dns', port: 53, protocol: 'UDP', targetPort: 'dns' },
      { name: 'dns-tcp', port: 53, protocol: 'TCP', targetPort: 5353 },
    ];
    expect((await dnsPorts(withoutDNSPods(dnsSnapshot(named))))['microseg-cart']).toEqual(both(53, 5353));
    expect((await dnsPorts(withoutDNSPods(dnsSnapshot(null))))['microseg-cart']).toEqual(both(53));
  });

  it('falls back to 53 without a kube-dns Service, or for a protocol it has no port 53 of', async () => {
    expect((await dnsPorts(dnsSnapshot(null)))['microseg-cart']).toEqual(both(53));
    // UDP only, translated; TCP is not a port of the Service: 53, as before.
    const udp = [{ name: 'dns', port: 53, protocol: 'UDP', targetPort: 5353 }];
    expect((await dnsPorts(dnsSnapshot(udp)))['microseg-cart']).toEqual(both(5353, 53));
  });
});
