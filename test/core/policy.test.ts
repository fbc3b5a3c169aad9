import { describe, expect, it } from 'vitest';
import type { Pod } from '../../src/model/k8s.ts';
import { runPipeline } from '../../src/pipeline.ts';
import { fixtureFlows, fixtureSnapshot } from './fixture.ts';

describe('policy synthesis options', () => {
  it('widens external peers to the requested prefix', async () => {
    const r = await runPipeline(fixtureSnapshot(), fixtureFlows(), { policy: { externalPrefix: 24 } });
    const cart = r.proposal.policies.find((p) => p.metadata.name === 'microseg-cart')!;
    expect(cart.spec.egress).toContainEqual({
      to: [{ ipBlock: { cidr: '198.51.100.0/24' } }],
      ports: [{ protocol: 'TCP', port: 443 }],
    });
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
    snap.workloads.push({
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: 'cart', namespace: 'shop', uid: 'uid-sts-cart' },
      spec: {
        selector: { matchLabels: { app: 'cart-store' } },
        template: { metadata: { labels: { app: 'cart-store' } } },
      },
    });
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
    snap.workloads.push({
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: 'cart', namespace: 'shop', uid: 'uid-sts-cart' },
      spec: {
        selector: { matchLabels: { app: 'cart-store' } },
        template: { metadata: { labels: { app: 'cart-store' } } },
      },
    });
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
