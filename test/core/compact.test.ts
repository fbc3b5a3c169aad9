import { describe, expect, it } from 'vitest';
import { generateDemo } from '../../src/generate/demo.ts';
import { buildIdentity } from '../../src/identity/index.ts';
import { compactObject, Interner, textHash } from '../../src/model/compact.ts';
import type { Pod } from '../../src/model/k8s.ts';
import { SYNC_WAVE_ANNOTATION } from '../../src/policy/index.ts';
import { podIPs, snapshotFromObjects } from '../../src/model/snapshot.ts';

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

  it("keeps microseg's annotations: its own, and the Argo CD sync wave it sets on a NetworkPolicy", () => {
    const annotations = {
      'microseg.dev/purpose': 'default deny: only observed traffic is allowed',
      [SYNC_WAVE_ANNOTATION]: '1',
      'kubectl.kubernetes.io/last-applied-configuration': '{}',
    };
    const np = {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'microseg-default-deny', namespace: 'shop', annotations },
      spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] },
    };
    expect((compactObject(np) as typeof np).metadata.annotations).toEqual({
      'microseg.dev/purpose': 'default deny: only observed traffic is allowed',
      [SYNC_WAVE_ANNOTATION]: '1',
    });
    // Only there: any other object keeps microseg.dev/ annotations only.
    const cm = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'c', namespace: 'shop', annotations },
    };
    expect((compactObject(cm) as typeof cm).metadata.annotations).toEqual({
      'microseg.dev/purpose': 'default deny: only observed traffic is allowed',
    });
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
      metadata: {
        name,
        namespace: 'shop',
        labels: { 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' },
      },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['10.0.0.1'], targetRef: { kind: 'Pod', name: 'cart-1', namespace: 'shop' } }],
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    });
    const s1 = compactObject(slice('cart-a'), interner) as { ports: unknown; endpoints?: unknown };
    const s2 = compactObject(slice('cart-b'), interner) as { ports: unknown };
    expect(s2.ports).toBe(s1.ports);
    expect(s1.ports).toEqual([{ name: 'http', port: 8080, protocol: 'TCP' }]);
    // A selector's slices hold its pods' addresses, known from the pods: not kept.
    expect(s1.endpoints).toBeUndefined();
  });

  it('tells apart values and label sets whose texts hash alike, and shares each', () => {
    const interner = new Interner();
    // Two port lists, and two label values, whose texts have the same hash (found by search).
    const p1 = [{ name: 'port-499489' }];
    const p2 = [{ name: 'port-1122306' }];
    expect(textHash(JSON.stringify(p1))).toBe(textHash(JSON.stringify(p2)));
    const a1 = interner.shared(p1);
    const a2 = interner.shared(p2);
    expect(a1).toEqual(p1);
    expect(a2).toEqual(p2);
    expect(interner.shared([{ name: 'port-499489' }])).toBe(a1);
    expect(interner.shared([{ name: 'port-1122306' }])).toBe(a2);
    // Same text, keys in another order: another value.
    expect(interner.shared([{ b: 1, a: 2 }])).not.toBe(interner.shared([{ a: 2, b: 1 }]));
    // A property set to undefined is not in the text: shared with the value without it.
    expect(interner.shared([{ name: 'port-499489', ports: undefined }])).toBe(a1);
    const labelHash = (v: string) => textHash('\u0000', textHash(v, textHash('\u0000', textHash('app'))));
    expect(labelHash('v35452')).toBe(labelHash('v1420910'));
    const l1 = interner.labels({ app: 'v35452' });
    const l2 = interner.labels({ app: 'v1420910' });
    expect(l1).toEqual({ app: 'v35452' });
    expect(l2).toEqual({ app: 'v1420910' });
    expect(interner.labels({ app: 'v35452' })).toBe(l1);
    expect(interner.labels({ app: 'v1420910' })).toBe(l2);
    expect(interner.labels({ app: 'v1420910', tier: 'web' })).not.toBe(l2);
    expect(interner.labels({ tier: 'web', app: 'v1420910' })).not.toBe(
      interner.labels({ app: 'v1420910', tier: 'web' }),
    );
  });

  it('shares owner references, and leaves out podIPs that only repeat podIP', () => {
    const interner = new Interner();
    const owned = (name: string, ips: string[]) => ({
      ...pod(name, 8080),
      metadata: {
        name,
        namespace: 'shop',
        ownerReferences: [
          { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'cart-7d9', uid: 'u-1', controller: true },
        ],
      },
      status: { phase: 'Running', podIP: ips[0], podIPs: ips.map((ip) => ({ ip })) },
    });
    type P = { metadata: { ownerReferences: unknown[] }; status: { podIP: string; podIPs?: unknown } };
    const a = compactObject(owned('cart-1', ['10.0.0.1']), interner) as P;
    const b = compactObject(owned('cart-2', ['10.0.0.2', 'fd00::2']), interner) as P;
    expect(b.metadata.ownerReferences).toBe(a.metadata.ownerReferences);
    expect(Object.isFrozen(a.metadata.ownerReferences[0])).toBe(true);
    expect(a.metadata.ownerReferences).toEqual([
      { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'cart-7d9', uid: 'u-1', controller: true },
    ]);
    expect(a.status).toEqual({ phase: 'Running', podIP: '10.0.0.1' });
    expect(podIPs(a as unknown as Pod)).toEqual(['10.0.0.1']);
    expect(b.status.podIPs).toEqual([{ ip: '10.0.0.2' }, { ip: 'fd00::2' }]);
    expect(podIPs(b as unknown as Pod)).toEqual(['10.0.0.2', 'fd00::2']);
    // An entry with more than the address is kept as it is.
    const c = compactObject(
      { ...owned('cart-3', ['10.0.0.3']), status: { podIP: '10.0.0.3', podIPs: [{ ip: '10.0.0.3', x: 1 }] } },
      interner,
    ) as P;
    expect(c.status.podIPs).toEqual([{ ip: '10.0.0.3', x: 1 }]);
  });

  it('keeps every field of a Service spec, sharing selectors and ports', () => {
    const interner = new Interner();
    const svc = (name: string, ip: string) => ({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: 'shop' },
      spec: {
        type: 'ClusterIP',
        clusterIP: ip,
        clusterIPs: [ip],
        ipFamilies: ['IPv4'],
        ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 'http' }],
        selector: { app: 'cart' },
        sessionAffinity: 'None',
      },
      status: { loadBalancer: {} },
    });
    type S = { spec: Record<string, unknown>; status?: unknown };
    const a = compactObject(svc('cart', '10.96.0.5'), interner) as S;
    const b = compactObject(svc('cart-2', '10.96.0.6'), interner) as S;
    expect(a.spec).toEqual(svc('cart', '10.96.0.5').spec);
    expect(a).not.toHaveProperty('status');
    expect(b.spec.ports).toBe(a.spec.ports);
    expect(b.spec.selector).toBe(a.spec.selector);
    expect(b.spec.ipFamilies).toBe(a.spec.ipFamilies);
    expect(b.spec.clusterIPs).toEqual(['10.96.0.6']);
    expect(compactObject(svc('cart', '10.96.0.5'))).toEqual({
      ...svc('cart', '10.96.0.5'),
      status: undefined,
    });
  });

  it("keeps a CronJob's schedule, suspension, last scheduled and completed runs and active Jobs' names, nothing else of its status", () => {
    const cronJob = (suspend?: boolean) => ({
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      metadata: { name: 'backup', namespace: 'shop' },
      spec: {
        schedule: '0 3 * * 0',
        ...(suspend !== undefined ? { suspend } : {}),
        concurrencyPolicy: 'Forbid',
        jobTemplate: {
          spec: { template: { metadata: { labels: { app: 'backup' } }, spec: { containers: [] } } },
        },
      },
      status: {
        lastScheduleTime: '2026-11-22T03:00:00Z',
        lastSuccessfulTime: '2026-11-22T03:01:00Z',
        active: [],
      },
    });
    expect(compactObject(cronJob(true))).toEqual({
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      metadata: { name: 'backup', namespace: 'shop' },
      spec: {
        schedule: '0 3 * * 0',
        suspend: true,
        jobTemplate: {
          spec: { template: { metadata: { labels: { app: 'backup' } }, spec: { containers: [] } } },
        },
      },
      status: { lastScheduleTime: '2026-11-22T03:00:00Z', lastSuccessfulTime: '2026-11-22T03:01:00Z' },
    });
    // A run still going: the names of its active Jobs are kept, nothing else of their references.
    const running = cronJob();
    running.status.active = [
      { apiVersion: 'batch/v1', kind: 'Job', name: 'backup-29000000', namespace: 'shop', uid: 'u1' },
    ] as never[];
    expect((compactObject(running) as { status: object }).status).toEqual({
      lastScheduleTime: '2026-11-22T03:00:00Z',
      lastSuccessfulTime: '2026-11-22T03:01:00Z',
      active: [{ name: 'backup-29000000' }],
    });
    const { status: _s, ...never } = cronJob();
    expect(compactObject(never)).not.toHaveProperty('status');
    expect(compactObject(never)).not.toHaveProperty('spec.suspend');
  });

  it("keeps a Service's load-balancer IPs, at the indexes of its status", () => {
    const lb = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web', namespace: 'shop' },
      spec: { type: 'LoadBalancer', clusterIP: '10.96.0.7', externalIPs: ['192.0.2.10'] },
      status: {
        loadBalancer: {
          ingress: [
            { hostname: 'lb.example.com', ports: [{ port: 80, protocol: 'TCP' }] },
            { ip: '198.51.100.7', ipMode: 'VIP', ports: [{ port: 80, protocol: 'TCP' }] },
          ],
        },
        conditions: [{ type: 'x', status: 'True' }],
      },
    };
    for (const interner of [undefined, new Interner()])
      expect(compactObject(lb, interner)).toEqual({
        ...lb,
        status: { loadBalancer: { ingress: [{}, { ip: '198.51.100.7', ipMode: 'VIP' }] } },
      });
    // Only hostnames: nothing kept.
    const named = { ...lb, status: { loadBalancer: { ingress: [{ hostname: 'lb.example.com' }] } } };
    expect(compactObject(named)).not.toHaveProperty('status');
  });

  it('keeps endpoint addresses except in the slices Kubernetes writes for a selector', () => {
    const slice = (namespace: string, service: string, bySelector = false) => ({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: `${service}-x`,
        namespace,
        labels: {
          'kubernetes.io/service-name': service,
          ...(bySelector
            ? { 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' }
            : {}),
        },
      },
      addressType: 'IPv4',
      endpoints: [
        {
          addresses: ['172.18.0.2'],
          conditions: { ready: true },
          targetRef: { kind: 'Pod', name: 'p', namespace },
        },
      ],
      ports: [{ name: 'https', port: 6443, protocol: 'TCP' }],
    });
    for (const interner of [undefined, new Interner()]) {
      // The API server's, whoever wrote them.
      expect(compactObject(slice('default', 'kubernetes', true), interner)).toMatchObject({
        endpoints: [{ addresses: ['172.18.0.2'] }],
      });
      // A Service without a selector (an operator's slices, even of pods): the only place they are.
      expect(compactObject(slice('other', 'patroni'), interner)).toMatchObject({
        endpoints: [{ addresses: ['172.18.0.2'] }],
      });
      // A selector's: its pods' addresses, known from the pods.
      expect(compactObject(slice('other', 'web', true), interner)).not.toHaveProperty('endpoints');
      expect(compactObject(slice('default', 'kubernetes-dashboard', true), interner)).not.toHaveProperty(
        'endpoints',
      );
    }
  });

  it("keeps the API server's Endpoints subsets: its ClusterIP is translated from the compacted object", () => {
    const objects = [
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'kubernetes', namespace: 'default', labels: { component: 'apiserver' } },
        spec: {
          clusterIP: '10.96.0.1',
          ports: [{ name: 'https', port: 443, targetPort: 6443, protocol: 'TCP' }],
        },
        status: { loadBalancer: {} },
      },
      {
        apiVersion: 'v1',
        kind: 'Endpoints',
        metadata: {
          name: 'kubernetes',
          namespace: 'default',
          labels: { 'endpointslice.kubernetes.io/skip-mirror': 'true' },
          managedFields: [{ manager: 'kube-apiserver', operation: 'Update' }],
        },
        subsets: [
          {
            addresses: [{ ip: '172.18.0.2', nodeName: 'cp-1' }, { ip: '172.18.0.3' }],
            ports: [{ name: 'https', port: 6443, protocol: 'TCP' }],
          },
        ],
      },
    ];
    for (const interner of [undefined, new Interner()]) {
      const lean = objects.map((o) => compactObject(o, interner));
      expect(lean[1]).toMatchObject({
        subsets: [
          {
            addresses: [{ ip: '172.18.0.2' }, { ip: '172.18.0.3' }],
            ports: [{ name: 'https', port: 6443, protocol: 'TCP' }],
          },
        ],
      });
      const id = buildIdentity(snapshotFromObjects(lean, 'test'));
      expect(id.apiserverEndpoints).toEqual({ ips: ['172.18.0.2', '172.18.0.3'], ports: [6443] });
      const svc = id.resolveNumber({ ip: '10.96.0.1' }, 0, 443);
      expect(id.serviceBackends(svc, 443, 'TCP')!.map((b) => [id.peerAt(b.peer).id, b.port])).toEqual([
        ['kube-apiserver', 6443],
      ]);
    }
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
