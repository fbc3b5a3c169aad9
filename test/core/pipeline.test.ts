import { describe, expect, it } from 'vitest';
import { buildIdentity } from '../../src/identity/index.ts';
import { normaliseIP, isPrivateIP } from '../../src/identity/ip.ts';
import { runGraphPipeline, runPipeline } from '../../src/pipeline.ts';
import { policiesToYaml } from '../../src/policy/render.ts';
import { toDot } from '../../src/graph/build.ts';
import type { Flow } from '../../src/flows/types.ts';
import { fixtureFlows, fixtureSnapshot } from './fixture.ts';

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
    expect(id.resolve({ ip: '10.96.5.6' }, 0).id).toBe('shop/Deployment/cart');
    expect(id.resolve({ ip: '10.96.0.1' }, 0).id).toBe('kube-apiserver');
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
      // The kubelet probe's node address: nothing says the node is the one every cart pod runs on.
      { from: [{ ipBlock: { cidr: '192.168.0.10/32' } }], ports: [{ protocol: 'TCP', port: 8080 }] },
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
    expect(reasons['node:192.168.0.10->shop/Deployment/cart:8080/TCP']).toBeUndefined();
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
