import { describe, expect, it } from 'vitest';
import { generateDemo } from '../../src/generate/demo.ts';
import { buildIdentity } from '../../src/identity/index.ts';
import { compactObject, Interner } from '../../src/model/compact.ts';
import { snapshotFromObjects } from '../../src/model/snapshot.ts';

describe('compaction', () => {
  it('keeps everything identity reads: same workloads and resolutions, far fewer bytes', () => {
    const { objects } = generateDemo();
    const full = buildIdentity(snapshotFromObjects(objects, 'demo'));
    function* compacted() {
      for (const o of objects) yield compactObject(o);
    }
    const small = snapshotFromObjects(compacted(), 'demo');
    const lean = buildIdentity(small);
    expect([...lean.workloads.values()]).toEqual([...full.workloads.values()]);
    expect(lean.podWorkload).toEqual(full.podWorkload);
    expect(lean.apiserverEndpoints).toEqual(full.apiserverEndpoints);
    expect(lean.podNetworks).toEqual(full.podNetworks);
    const before = JSON.stringify(objects.filter((o) => (o as { kind: string }).kind === 'Pod')).length;
    const after = JSON.stringify(small.pods).length;
    expect(after).toBeLessThan(before / 2);
  });
});

describe('sharing through an Interner', () => {
  const pod = (name: string, port: number) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'shop', labels: { app: 'cart' } },
    spec: {
      nodeName: 'node-1',
      containers: [{ name: 'cart', image: 'cart:1', ports: [{ containerPort: port, protocol: 'TCP' }] }],
    },
    status: { phase: 'Running', podIP: '10.0.0.1', hostIP: '192.168.0.1' },
  });

  it('shares equal container lists, port lists and short strings, deeply frozen', () => {
    const interner = new Interner();
    type P = {
      kind: string;
      spec: { containers: { ports: { containerPort: number }[] }[]; nodeName: string };
    };
    const a = compactObject(pod('cart-1', 8080), interner) as P;
    const b = compactObject(pod('cart-2', 8080), interner) as P;
    const c = compactObject(pod('cart-3', 9090), interner) as P;
    expect(b.spec.containers).toBe(a.spec.containers);
    expect(c.spec.containers).not.toBe(a.spec.containers);
    expect(c.spec.containers[0]!.ports[0]!.containerPort).toBe(9090);
    expect(a.spec.containers).toEqual([{ name: 'cart', ports: [{ containerPort: 8080, protocol: 'TCP' }] }]);
    expect(Object.isFrozen(a.spec.containers[0]!.ports[0])).toBe(true);
    expect(() => {
      a.spec.containers[0]!.ports[0]!.containerPort = 1;
    }).toThrow(TypeError);
    const slice = (name: string) => ({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name, namespace: 'shop' },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['10.0.0.1'] }],
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    });
    const s1 = compactObject(slice('cart-a'), interner) as { ports: unknown };
    const s2 = compactObject(slice('cart-b'), interner) as { ports: unknown };
    expect(s2.ports).toBe(s1.ports);
    expect(s1.ports).toEqual([{ name: 'http', port: 8080, protocol: 'TCP' }]);
  });

  it('gives the same identity as compaction without sharing', () => {
    const { objects } = generateDemo();
    const interner = new Interner();
    const plain = buildIdentity(
      snapshotFromObjects(
        objects.map((o) => compactObject(o)),
        'demo',
      ),
    );
    const sharedId = buildIdentity(
      snapshotFromObjects(
        objects.map((o) => compactObject(o, interner)),
        'demo',
      ),
    );
    expect([...sharedId.workloads.values()]).toEqual([...plain.workloads.values()]);
    expect(sharedId.podWorkload).toEqual(plain.podWorkload);
    expect(sharedId.podNetworks).toEqual(plain.podNetworks);
  });
});
