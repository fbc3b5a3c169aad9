/** A small, hand-written cluster for core tests: shop (frontend, cart, db), kube-system DNS, the API server. */
import type { Flow, FlowEndpoint } from '../../src/flows/types.ts';
import type { ClusterSnapshot } from '../../src/model/snapshot.ts';
import { snapshotFromObjects } from '../../src/model/snapshot.ts';

const T0 = Date.parse('2026-11-01T10:00:00Z');

function deployment(
  ns: string,
  name: string,
  labels: Record<string, string>,
  ports: { name?: string; containerPort: number }[] = [],
) {
  return [
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name, namespace: ns, uid: `uid-${ns}-${name}` },
      spec: {
        selector: { matchLabels: labels },
        template: { metadata: { labels }, spec: { containers: [{ name, ports }] } },
      },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: {
        name: `${name}-7d9f`,
        namespace: ns,
        uid: `uid-${ns}-${name}-rs`,
        labels: { ...labels, 'pod-template-hash': '7d9f' },
        ownerReferences: [
          { apiVersion: 'apps/v1', kind: 'Deployment', name, uid: `uid-${ns}-${name}`, controller: true },
        ],
      },
      spec: { selector: { matchLabels: { ...labels, 'pod-template-hash': '7d9f' } } },
    },
  ];
}

function pod(
  ns: string,
  name: string,
  owner: { kind: string; name: string; uid: string } | undefined,
  labels: Record<string, string>,
  ip: string,
  start = '2026-11-01T00:00:00Z',
  extra: Record<string, unknown> = {},
) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: ns,
      labels,
      ...(owner ? { ownerReferences: [{ apiVersion: 'apps/v1', controller: true, ...owner }] } : {}),
    },
    spec: { nodeName: 'node-1', containers: [{ name: 'c' }], ...extra },
    status: { phase: 'Running', podIP: ip, podIPs: [{ ip }], hostIP: '192.168.0.10', startTime: start },
  };
}

/** The fixture's cluster, and `extra` objects after its own. */
export function fixtureSnapshot(...extra: unknown[]): ClusterSnapshot {
  const objs: unknown[] = [
    ...['shop', 'kube-system', 'default'].map((n) => ({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: n, labels: { 'kubernetes.io/metadata.name': n } },
    })),
    ...deployment('shop', 'frontend', { app: 'frontend' }, [{ name: 'http', containerPort: 8080 }]),
    ...deployment('shop', 'cart', { app: 'cart' }, [{ name: 'http', containerPort: 8080 }]),
    ...deployment('kube-system', 'coredns', { 'k8s-app': 'kube-dns' }),
    {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: 'db', namespace: 'shop', uid: 'uid-db' },
      spec: { selector: { matchLabels: { app: 'db' } }, template: { metadata: { labels: { app: 'db' } } } },
    },
    pod(
      'shop',
      'frontend-7d9f-aaaaa',
      { kind: 'ReplicaSet', name: 'frontend-7d9f', uid: 'uid-shop-frontend-rs' },
      { app: 'frontend', 'pod-template-hash': '7d9f' },
      '10.244.1.10',
      undefined,
      { containers: [{ name: 'frontend', ports: [{ name: 'http', containerPort: 8080 }] }] },
    ),
    pod(
      'shop',
      'cart-7d9f-bbbbb',
      { kind: 'ReplicaSet', name: 'cart-7d9f', uid: 'uid-shop-cart-rs' },
      { app: 'cart', 'pod-template-hash': '7d9f' },
      '10.244.1.20',
      undefined,
      { containers: [{ name: 'cart', ports: [{ name: 'http', containerPort: 8080 }] }] },
    ),
    // The IP 10.244.1.30 was reused: db-0 got it at 10:30, before that it belonged to a cart pod.
    pod(
      'shop',
      'db-0',
      { kind: 'StatefulSet', name: 'db', uid: 'uid-db' },
      { app: 'db', 'statefulset.kubernetes.io/pod-name': 'db-0', 'controller-revision-hash': 'db-5f' },
      '10.244.1.30',
      '2026-11-01T10:30:00Z',
    ),
    pod(
      'kube-system',
      'coredns-7d9f-ccccc',
      { kind: 'ReplicaSet', name: 'coredns-7d9f', uid: 'uid-kube-system-coredns-rs' },
      { 'k8s-app': 'kube-dns', 'pod-template-hash': '7d9f' },
      '10.244.2.5',
    ),
    pod('kube-system', 'node-exporter-x', undefined, { app: 'node-exporter' }, '192.168.0.10', undefined, {
      hostNetwork: true,
    }),
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'frontend', namespace: 'shop' },
      spec: {
        type: 'LoadBalancer',
        selector: { app: 'frontend' },
        clusterIP: '10.96.5.5',
        ports: [{ port: 80, targetPort: 8080 }],
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'cart', namespace: 'shop' },
      spec: { selector: { app: 'cart' }, clusterIP: '10.96.5.6', ports: [{ port: 8080 }] },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'kube-dns', namespace: 'kube-system' },
      spec: {
        selector: { 'k8s-app': 'kube-dns' },
        clusterIP: '10.96.0.10',
        ports: [{ port: 53, protocol: 'UDP' }],
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'kubernetes', namespace: 'default' },
      spec: { clusterIP: '10.96.0.1', ports: [{ port: 443 }] },
    },
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: 'kubernetes',
        namespace: 'default',
        labels: { 'kubernetes.io/service-name': 'kubernetes' },
      },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['172.18.0.2'] }],
      ports: [{ name: 'https', port: 6443, protocol: 'TCP' }],
    },
    ...extra,
  ];
  return snapshotFromObjects(objs, 'fixture');
}

/**
 * The fixture with its API server at `addresses` (an EndpointSlice per family, port 6443, in place of the
 * fixture's) behind the ClusterIP 10.96.0.1, and fd00:10:96::1 too when an address is IPv6; `objects`
 * (cluster policies, say) are added.
 */
export function fixtureWithAPIServerAt(addresses: string[], ...objects: unknown[]): ClusterSnapshot {
  const snap = fixtureSnapshot();
  const v6 = addresses.filter((a) => a.includes(':'));
  const v4 = addresses.filter((a) => !a.includes(':'));
  const svc = snap.services.find((x) => x.metadata.name === 'kubernetes')!;
  svc.spec = { ...svc.spec, clusterIPs: v6.length > 0 ? ['10.96.0.1', 'fd00:10:96::1'] : ['10.96.0.1'] };
  const slice = (family: string, ips: string[]) => ({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: `kubernetes-${family}`,
      namespace: 'default',
      labels: { 'kubernetes.io/service-name': 'kubernetes' },
    },
    addressType: family,
    endpoints: ips.map((a) => ({ addresses: [a] })),
    ports: [{ name: 'https', port: 6443, protocol: 'TCP' }],
  });
  const more = snapshotFromObjects(
    [
      ...(v4.length > 0 ? [slice('IPv4', v4)] : []),
      ...(v6.length > 0 ? [slice('IPv6', v6)] : []),
      ...objects,
    ],
    'fixture',
  );
  snap.endpointSlices = [
    ...snap.endpointSlices.filter((es) => es.metadata.name !== 'kubernetes'),
    ...more.endpointSlices,
  ];
  snap.others.push(...more.others);
  return snap;
}

const ep = (x: FlowEndpoint) => x;
export function fixtureFlows(): Flow[] {
  const f = (
    minute: number,
    src: FlowEndpoint,
    dst: FlowEndpoint,
    port: number,
    protocol: Flow['protocol'] = 'TCP',
    extra: Partial<Flow> = {},
  ): Flow => ({
    time: T0 + minute * 60_000,
    src,
    dst,
    port,
    protocol,
    verdict: 'FORWARDED',
    input: 'hubble',
    ...extra,
  });
  const frontend = ep({ ip: '10.244.1.10', namespace: 'shop', pod: 'frontend-7d9f-aaaaa' });
  const cartByIP = ep({ ip: '10.244.1.20' });
  return [
    f(1, { ip: '203.0.113.9', reserved: 'world' }, frontend, 8080),
    f(2, frontend, cartByIP, 8080),
    f(3, frontend, { ip: '10.96.5.6' }, 8080), // via the cart Service ClusterIP
    f(4, frontend, { ip: '10.244.2.5' }, 53, 'UDP'),
    f(5, cartByIP, { ip: '10.244.2.5' }, 53, 'UDP'),
    f(40, cartByIP, { ip: '10.244.1.30' }, 5432), // db-0 holds the IP since 10:30
    f(6, cartByIP, { ip: '198.51.100.7', reserved: 'world', names: ['api.payments.example.'] }, 443),
    f(7, cartByIP, { ip: '172.18.0.2', reserved: 'kube-apiserver' }, 6443),
    f(8, { ip: '192.168.0.10', reserved: 'host' }, cartByIP, 8080), // kubelet probe
    f(9, frontend, cartByIP, 0, 'ICMPv4'),
    f(10, frontend, cartByIP, 9999, 'TCP', { verdict: 'DROPPED', dropReason: 'POLICY_DENIED' }),
  ];
}

/**
 * An AdminNetworkPolicy `name` that denies ingress from namespace shop to the pods labelled app=`app`
 * of namespace `namespace` (rule `deny-shop`).
 */
export function denyFromShop(name: string, namespace: string, app: string) {
  const ns = (n: string) => ({ matchLabels: { 'kubernetes.io/metadata.name': n } });
  return {
    apiVersion: 'policy.networking.k8s.io/v1alpha1',
    kind: 'AdminNetworkPolicy',
    metadata: { name },
    spec: {
      priority: 10,
      subject: { pods: { namespaceSelector: ns(namespace), podSelector: { matchLabels: { app } } } },
      ingress: [{ name: 'deny-shop', action: 'Deny', from: [{ namespaces: ns('shop') }] }],
    },
  };
}
