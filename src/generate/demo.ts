/**
 * The bundled demo: a small but realistic multi-namespace shop running on a three-node Cilium cluster,
 * its cluster snapshot, one hour of Hubble flows with the quirks real clusters show, and the ground truth
 * of which workload-level connections the traffic was generated from.
 */
import type { NodeInfo, PodInfo, PortSpec, WorkloadInfo } from './cluster.ts';
import { ClusterBuilder, iso } from './cluster.ts';
import type { Connection, Peer } from './hubble.ts';
import {
  connectionLines,
  dnsLines,
  FlowIds,
  flowLine,
  formatTime,
  lineTime,
  lostEventsLine,
  nodeStatusLine,
} from './hubble.ts';
import { Rng } from './prng.ts';
import type { TruthEdge, TruthPeer } from './truth.ts';
import { edgeKey, workloadPeer } from './truth.ts';
import { compareText } from '../model/order.ts';

export interface DemoOptions {
  seed?: number;
  /** Window start (ms since the epoch); the snapshot is taken at its end. */
  start?: number;
  /** Window length in ms (default one hour). */
  durationMs?: number;
  /** Multiplies every connection rate (default 1). */
  rate?: number;
}

export interface IpReuse {
  ip: string;
  before: { namespace: string; pod: string; workload: string; until: string };
  after: { namespace: string; pod: string; workload: string; from: string };
}

export interface DemoTruth {
  scenario: 'demo';
  seed: number;
  window: { start: string; end: string };
  /** Intended connections: every one appears in the flows as FORWARDED traffic. */
  edges: TruthEdge[];
  /** Attempted connections the cluster's existing NetworkPolicy drops (they must stay denied). */
  denied: TruthEdge[];
  ipReuse: IpReuse[];
}

export interface Demo {
  /** Snapshot objects, as `kubectl get ... -o json` lists them. */
  objects: object[];
  /** Hubble jsonpb lines, sorted by time. */
  lines: string[];
  truth: DemoTruth;
}

export const DEMO_START = Date.UTC(2026, 2, 2, 10, 0, 0);
const MIN = 60_000;

const WORLD_CLIENTS = ['203.0.113.24', '198.51.100.77', '192.0.2.140', '203.0.113.201', '198.51.100.9'];

interface Target {
  peer: (t: number, rng: Rng) => Peer | undefined;
  service?: { name: string; namespace: string };
  names?: string[];
}

export function generateDemo(opts: DemoOptions = {}): Demo {
  const seed = opts.seed ?? 1;
  const start = opts.start ?? DEMO_START;
  const duration = opts.durationMs ?? 60 * MIN;
  const rateScale = opts.rate ?? 1;
  const end = start + duration;
  const rng = Rng.derive(seed, 'demo-objects');
  const b = new ClusterBuilder(rng, end);

  // Nodes: a kind-like three-node cluster; demo-worker2 runs an older Cilium agent.
  const cp = b.addNode({
    name: 'demo-control-plane',
    ip: '172.18.0.2',
    podPrefix: '10.244.0',
    podPrefix6: 'fd00:10:244:0',
    routerHost: 148,
    controlPlane: true,
  });
  const w1 = b.addNode({
    name: 'demo-worker',
    ip: '172.18.0.3',
    podPrefix: '10.244.1',
    podPrefix6: 'fd00:10:244:1',
    routerHost: 201,
  });
  const w2 = b.addNode({
    name: 'demo-worker2',
    ip: '172.18.0.4',
    podPrefix: '10.244.2',
    podPrefix6: 'fd00:10:244:2',
    routerHost: 87,
    oldAgent: true,
  });
  const nodes = [cp, w1, w2];
  const workers = [w1, w2];
  const health = new Map<NodeInfo, string>(nodes.map((n) => [n, b.allocatePodIP(n, false).ip]));

  for (const ns of ['default', 'kube-system', 'kube-public', 'kube-node-lease'])
    b.namespace(ns, {}, end - 30 * 86_400_000);
  b.namespace('ingress-nginx', {
    'app.kubernetes.io/instance': 'ingress-nginx',
    'app.kubernetes.io/name': 'ingress-nginx',
  });
  b.namespace('shop', { team: 'storefront' });
  b.namespace('data', { team: 'platform-data' });
  b.namespace('batch', { team: 'analytics' });
  b.namespace('monitoring', { 'app.kubernetes.io/part-of': 'kube-prometheus' });

  // --- kube-system -------------------------------------------------------------------------------
  const corednsPorts: PortSpec[] = [
    { name: 'dns', port: 53, protocol: 'UDP' },
    { name: 'dns-tcp', port: 53, protocol: 'TCP' },
    { name: 'metrics', port: 9153, protocol: 'TCP' },
  ];
  const coredns = b.workload({
    namespace: 'kube-system',
    name: 'coredns',
    kind: 'Deployment',
    replicas: 2,
    labels: { 'k8s-app': 'kube-dns' },
    image: 'registry.k8s.io/coredns/coredns:v1.11.3',
    ports: corednsPorts,
    nodes: [cp, w1],
  });
  b.service({
    workload: coredns,
    name: 'kube-dns',
    clusterIP: '10.96.0.10',
    ports: [
      { name: 'dns', port: 53, targetPort: 53, protocol: 'UDP' },
      { name: 'dns-tcp', port: 53, targetPort: 53, protocol: 'TCP' },
      { name: 'metrics', port: 9153, targetPort: 9153 },
    ],
    containerPorts: corednsPorts,
  });
  const apiSvcMeta = {
    name: 'kubernetes',
    namespace: 'default',
    uid: b.uid(),
    resourceVersion: b.resourceVersionString(),
    creationTimestamp: iso(end - 30 * 86_400_000),
    labels: { component: 'apiserver', provider: 'kubernetes' },
  };
  b.raw({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: apiSvcMeta,
    spec: {
      type: 'ClusterIP',
      clusterIP: '10.96.0.1',
      clusterIPs: ['10.96.0.1'],
      ipFamilies: ['IPv4'],
      ipFamilyPolicy: 'SingleStack',
      internalTrafficPolicy: 'Cluster',
      ports: [{ name: 'https', port: 443, protocol: 'TCP', targetPort: 6443 }],
      sessionAffinity: 'None',
    },
    status: { loadBalancer: {} },
  });
  b.raw({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: 'kubernetes',
      namespace: 'default',
      uid: b.uid(),
      resourceVersion: b.resourceVersionString(),
      generation: 1,
      creationTimestamp: apiSvcMeta.creationTimestamp,
      labels: { 'kubernetes.io/service-name': 'kubernetes' },
    },
    addressType: 'IPv4',
    endpoints: [{ addresses: [cp.ip], conditions: { ready: true, serving: true, terminating: false } }],
    ports: [{ name: 'https', port: 6443, protocol: 'TCP' }],
  });

  // --- ingress-nginx -----------------------------------------------------------------------------
  const ingressPorts: PortSpec[] = [
    { name: 'http', port: 80 },
    { name: 'https', port: 443 },
    { name: 'metrics', port: 10254 },
    { name: 'webhook', port: 8443 },
  ];
  const ingress = b.workload({
    namespace: 'ingress-nginx',
    name: 'ingress-nginx-controller',
    kind: 'Deployment',
    replicas: 2,
    labels: {
      'app.kubernetes.io/component': 'controller',
      'app.kubernetes.io/instance': 'ingress-nginx',
      'app.kubernetes.io/name': 'ingress-nginx',
    },
    serviceAccount: 'ingress-nginx',
    image: 'registry.k8s.io/ingress-nginx/controller:v1.12.1',
    ports: ingressPorts,
    nodes: workers,
  });
  b.service({
    workload: ingress,
    type: 'LoadBalancer',
    loadBalancerIP: '172.18.255.200',
    ports: [
      { name: 'http', port: 80, targetPort: 'http', nodePort: 31080 },
      { name: 'https', port: 443, targetPort: 'https', nodePort: 31443 },
    ],
    containerPorts: ingressPorts,
  });

  // --- shop --------------------------------------------------------------------------------------
  const shopLabels = (app: string, extra: Record<string, string> = {}) => ({
    app,
    'app.kubernetes.io/part-of': 'shop',
    ...extra,
  });
  const http8080: PortSpec[] = [{ name: 'http', port: 8080 }];
  const frontend = b.workload({
    namespace: 'shop',
    name: 'frontend',
    kind: 'Deployment',
    replicas: 3,
    labels: shopLabels('frontend', { tier: 'web', version: 'v2' }),
    image: 'ghcr.io/example/shop-frontend:2.4.1',
    ports: http8080,
    dualStack: true,
  });
  b.service({
    workload: frontend,
    ports: [{ name: 'http', port: 80, targetPort: 'http' }],
    containerPorts: http8080,
    selector: { app: 'frontend' },
    dualStack: true,
  });
  const cartPorts: PortSpec[] = [
    { name: 'grpc', port: 7070 },
    { name: 'metrics', port: 9464 },
  ];
  // The third cart pod was added by an autoscaler 26 minutes in, on the IP an old recommendations pod held.
  const reusedIP = `${w2.podPrefix}.${w2.nextHost + 40}`;
  const cart = b.workload({
    namespace: 'shop',
    name: 'cart',
    kind: 'Deployment',
    replicas: 3,
    labels: shopLabels('cart'),
    image: 'ghcr.io/example/shop-cart:1.9.0',
    ports: cartPorts,
    dualStack: true,
    podOverrides: {
      2: { node: w2, ip: { ip: reusedIP, ipv6: `${w2.podPrefix6}::aa` }, startTime: start + 26 * MIN },
    },
  });
  b.service({
    workload: cart,
    ports: [{ name: 'grpc', port: 7070, targetPort: 'grpc' }],
    containerPorts: cartPorts,
    selector: { app: 'cart' },
    dualStack: true,
  });
  const catalog = b.workload({
    namespace: 'shop',
    name: 'catalog',
    kind: 'Deployment',
    replicas: 2,
    labels: shopLabels('catalog'),
    image: 'ghcr.io/example/shop-catalog:3.0.2',
    ports: http8080,
  });
  b.service({
    workload: catalog,
    ports: [{ name: 'http', port: 80, targetPort: 8080 }],
    containerPorts: http8080,
    selector: { app: 'catalog' },
  });
  const checkoutPorts: PortSpec[] = [
    { name: 'http', port: 8080 },
    { name: 'metrics', port: 9464 },
  ];
  const checkout = b.workload({
    namespace: 'shop',
    name: 'checkout',
    kind: 'Deployment',
    replicas: 2,
    labels: shopLabels('checkout'),
    image: 'ghcr.io/example/shop-checkout:1.4.7',
    ports: checkoutPorts,
  });
  b.service({
    workload: checkout,
    ports: [{ name: 'http', port: 80, targetPort: 'http' }],
    containerPorts: checkoutPorts,
    selector: { app: 'checkout' },
  });
  const paymentsPorts: PortSpec[] = [
    { name: 'grpc', port: 50051 },
    { name: 'metrics', port: 9464 },
  ];
  const payments = b.workload({
    namespace: 'shop',
    name: 'payments',
    kind: 'Deployment',
    replicas: 2,
    labels: shopLabels('payments', { 'pci-scope': 'true' }),
    image: 'ghcr.io/example/shop-payments:0.9.3',
    ports: paymentsPorts,
  });
  b.service({
    workload: payments,
    ports: [{ name: 'grpc', port: 50051, targetPort: 'grpc' }],
    containerPorts: paymentsPorts,
    selector: { app: 'payments' },
  });
  const recoPorts: PortSpec[] = [{ name: 'grpc', port: 9090 }];
  const rolloutAt = start + 19 * MIN;
  const recommendations = b.workload({
    namespace: 'shop',
    name: 'recommendations',
    kind: 'Deployment',
    replicas: 1,
    labels: shopLabels('recommendations'),
    image: 'ghcr.io/example/shop-recommendations:5.1.0',
    ports: recoPorts,
    nodes: [w1],
    podStartTime: rolloutAt,
  });
  b.service({
    workload: recommendations,
    ports: [{ name: 'grpc', port: 9090, targetPort: 9090 }],
    containerPorts: recoPorts,
    selector: { app: 'recommendations' },
  });
  // The previous revision's ReplicaSet, scaled to zero by the rollout; its pod is gone from the snapshot.
  const oldRs = b.oldReplicaSet(recommendations, recommendations.uid);
  const oldRecoPod: PodInfo = {
    namespace: 'shop',
    name: `${oldRs.name}-${rng.suffix(5)}`,
    ip: reusedIP,
    node: w2,
    workload: recommendations,
    endpointId: 3311,
    startTime: start - 3 * 86_400_000,
    endTime: start + 20 * MIN,
    mac: b.mac(),
    iface: { index: 41, name: `lxc${rng.hex(12)}` },
  };

  // --- data --------------------------------------------------------------------------------------
  const pgPorts: PortSpec[] = [
    { name: 'postgresql', port: 5432 },
    { name: 'metrics', port: 9187 },
  ];
  const postgres = b.workload({
    namespace: 'data',
    name: 'postgres',
    kind: 'StatefulSet',
    replicas: 2,
    labels: { app: 'postgres', 'app.kubernetes.io/name': 'postgresql' },
    image: 'docker.io/library/postgres:16.4',
    ports: pgPorts,
    nodes: workers,
  });
  b.service({
    workload: postgres,
    ports: [{ name: 'postgresql', port: 5432, targetPort: 'postgresql' }],
    containerPorts: pgPorts,
    selector: { app: 'postgres' },
  });
  b.service({
    workload: postgres,
    name: 'postgres-headless',
    headless: true,
    ports: [{ name: 'postgresql', port: 5432, targetPort: 'postgresql' }],
    containerPorts: pgPorts,
    selector: { app: 'postgres' },
  });
  const redisPorts: PortSpec[] = [
    { name: 'redis', port: 6379 },
    { name: 'metrics', port: 9121 },
  ];
  const redis = b.workload({
    namespace: 'data',
    name: 'redis',
    kind: 'StatefulSet',
    replicas: 1,
    labels: { app: 'redis', 'app.kubernetes.io/name': 'redis' },
    image: 'docker.io/library/redis:7.4',
    ports: redisPorts,
    nodes: [cp],
  });
  b.service({
    workload: redis,
    ports: [{ name: 'redis', port: 6379, targetPort: 'redis' }],
    containerPorts: redisPorts,
    selector: { app: 'redis' },
  });
  const kafkaPorts: PortSpec[] = [
    { name: 'kafka', port: 9092 },
    { name: 'metrics', port: 9308 },
  ];
  const kafka = b.workload({
    namespace: 'data',
    name: 'kafka',
    kind: 'StatefulSet',
    replicas: 3,
    labels: { app: 'kafka', 'app.kubernetes.io/name': 'kafka' },
    image: 'docker.io/apache/kafka:3.8.0',
    ports: kafkaPorts,
  });
  b.service({
    workload: kafka,
    ports: [{ name: 'kafka', port: 9092, targetPort: 'kafka' }],
    containerPorts: kafkaPorts,
    selector: { app: 'kafka' },
  });
  b.service({
    workload: kafka,
    name: 'kafka-headless',
    headless: true,
    ports: [{ name: 'kafka', port: 9092, targetPort: 'kafka' }],
    containerPorts: kafkaPorts,
    selector: { app: 'kafka' },
  });

  // --- batch -------------------------------------------------------------------------------------
  const jobAt = start + 30 * MIN;
  const reports = b.workload({
    namespace: 'batch',
    name: 'report-generator',
    kind: 'CronJob',
    schedule: '30 * * * *',
    jobScheduledAt: jobAt,
    jobCompletedAt: jobAt + 12 * MIN,
    labels: { app: 'report-generator' },
    image: 'ghcr.io/example/report-generator:2026.02',
    nodes: [w1],
  });

  // --- monitoring --------------------------------------------------------------------------------
  const promPorts: PortSpec[] = [{ name: 'web', port: 9090 }];
  const prometheus = b.workload({
    namespace: 'monitoring',
    name: 'prometheus',
    kind: 'Deployment',
    replicas: 1,
    labels: { 'app.kubernetes.io/name': 'prometheus', 'app.kubernetes.io/instance': 'k8s' },
    serviceAccount: 'prometheus-k8s',
    image: 'quay.io/prometheus/prometheus:v3.2.1',
    ports: promPorts,
    nodes: [cp],
  });
  b.service({
    workload: prometheus,
    name: 'prometheus-k8s',
    ports: [{ name: 'web', port: 9090, targetPort: 'web' }],
    containerPorts: promPorts,
  });
  const nePorts: PortSpec[] = [{ name: 'metrics', port: 9100 }];
  const nodeExporter = b.workload({
    namespace: 'monitoring',
    name: 'node-exporter',
    kind: 'DaemonSet',
    labels: { 'app.kubernetes.io/name': 'node-exporter', 'app.kubernetes.io/part-of': 'kube-prometheus' },
    image: 'quay.io/prometheus/node-exporter:v1.8.2',
    ports: nePorts,
    hostNetwork: true,
  });
  b.service({
    workload: nodeExporter,
    headless: true,
    ports: [{ name: 'metrics', port: 9100, targetPort: 'metrics' }],
    containerPorts: nePorts,
  });
  const bbPorts: PortSpec[] = [{ name: 'http', port: 9115 }];
  const blackbox = b.workload({
    namespace: 'monitoring',
    name: 'blackbox-exporter',
    kind: 'Deployment',
    replicas: 1,
    labels: { 'app.kubernetes.io/name': 'blackbox-exporter' },
    image: 'quay.io/prometheus/blackbox-exporter:v0.25.0',
    ports: bbPorts,
    nodes: [w2],
  });

  // --- the existing policy: only known clients may reach postgres ----------------------------------
  b.raw({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: {
      name: 'postgres-ingress',
      namespace: 'data',
      uid: b.uid(),
      resourceVersion: b.resourceVersionString(),
      generation: 1,
      creationTimestamp: iso(end - 12 * 86_400_000),
    },
    spec: {
      podSelector: { matchLabels: { app: 'postgres' } },
      policyTypes: ['Ingress'],
      ingress: [
        {
          from: [
            {
              namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'shop' } },
              podSelector: {
                matchExpressions: [{ key: 'app', operator: 'In', values: ['catalog', 'checkout'] }],
              },
            },
            {
              namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'batch' } },
              podSelector: { matchLabels: { app: 'report-generator' } },
            },
            { podSelector: { matchLabels: { app: 'postgres' } } },
          ],
          ports: [{ protocol: 'TCP', port: 'postgresql' }],
        },
        {
          from: [
            {
              namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } },
              podSelector: { matchLabels: { 'app.kubernetes.io/name': 'prometheus' } },
            },
          ],
          ports: [{ protocol: 'TCP', port: 9187 }],
        },
      ],
    },
  });

  // ================================ traffic =========================================================
  const frng = Rng.derive(seed, 'demo-flows');
  const ids = new FlowIds(`${frng.hex(8)}-${frng.hex(4)}-4${frng.hex(3)}-a${frng.hex(3)}`);
  const events: { t: number; seq: number; line: string }[] = [];
  let seq = 0;
  const push = (t: number, lines: string[]) => {
    for (const line of lines) events.push({ t, seq: seq++, line });
  };
  const edges = new Map<string, TruthEdge>();
  const denied: TruthEdge[] = [];
  const addEdge = (e: TruthEdge) => {
    const k = edgeKey(e);
    if (!edges.has(k)) edges.set(k, e);
  };

  const alive = (p: PodInfo, t: number) => p.startTime <= t && (p.endTime === undefined || t < p.endTime);
  const podsOf = (w: WorkloadInfo, t: number) => {
    const pods = w === recommendations ? [...w.pods, oldRecoPod] : w.pods;
    return pods.filter((p) => alive(p, t));
  };
  const podPeer = (p: PodInfo): Peer =>
    p.workload.hostNetwork
      ? { kind: 'host', ip: p.node.ip, node: p.node }
      : { kind: 'pod', ip: p.ip, ...(p.ipv6 ? { ipv6: p.ipv6 } : {}), pod: p };
  const anyPod =
    (w: WorkloadInfo): Target['peer'] =>
    (t, r) => {
      const pods = podsOf(w, t);
      return pods.length === 0 ? undefined : podPeer(r.pick(pods));
    };
  const hostPeer = (n: NodeInfo): Peer => ({ kind: 'host', ip: n.ip, node: n, mac: n.mac });
  const apiserver: Peer = { kind: 'kube-apiserver', ip: cp.ip, node: cp, mac: cp.mac };
  const svc = (name: string, namespace: string) => ({ name, namespace });
  const truthPeerOf = (w: WorkloadInfo) => workloadPeer(w);
  const startUs = start * 1000;
  const durUs = duration * 1000;
  const ephemeral = (r: Rng) => r.int(32768, 60999);

  /** Spreads `perHour` connections of one edge over the window. */
  const traffic = (spec: {
    from: WorkloadInfo | 'world' | 'host';
    to: WorkloadInfo | 'kube-apiserver' | 'node-exporter' | { world: string; names?: string[] };
    port: number;
    proto?: 'TCP' | 'UDP' | 'ICMPv4';
    perHour: number;
    service?: { name: string; namespace: string };
    note?: string;
    ingressPolicy?: boolean;
    denied?: boolean;
    v6Share?: number;
  }) => {
    const proto = spec.proto ?? 'TCP';
    const srcTruth: TruthPeer =
      spec.from === 'world'
        ? { world: {} }
        : spec.from === 'host'
          ? { reserved: 'host' }
          : truthPeerOf(spec.from);
    const dstTruth: TruthPeer =
      spec.to === 'kube-apiserver'
        ? { reserved: 'kube-apiserver' }
        : spec.to === 'node-exporter'
          ? truthPeerOf(nodeExporter)
          : 'world' in spec.to
            ? {
                world: { ...(spec.to.names ? { names: spec.to.names } : {}), cidrs: [`${spec.to.world}/32`] },
              }
            : truthPeerOf(spec.to);
    const edge: TruthEdge = {
      src: srcTruth,
      dst: dstTruth,
      port: spec.port,
      protocol: proto,
      ...(spec.note ? { note: spec.note } : {}),
    };
    if (spec.denied) denied.push(edge);
    const n = Math.max(1, Math.round(spec.perHour * rateScale * (duration / (60 * MIN))));
    let emitted = 0;
    for (let i = 0; i < n * 3 && emitted < n; i++) {
      const tUs = startUs + Math.floor(frng.next() * durUs);
      const t = Math.floor(tUs / 1000);
      let src: Peer | undefined;
      if (spec.from === 'world') src = { kind: 'world', ip: frng.pick(WORLD_CLIENTS) };
      else if (spec.from === 'host')
        src = undefined; // chosen from the destination's node below
      else src = anyPod(spec.from)(t, frng);
      let dst: Peer | undefined;
      if (spec.to === 'kube-apiserver') dst = apiserver;
      else if (spec.to === 'node-exporter') dst = hostPeer(frng.pick(nodes));
      else if ('world' in spec.to) dst = { kind: 'world', ip: spec.to.world };
      else dst = anyPod(spec.to)(t, frng);
      if (spec.from === 'host' && dst?.kind === 'pod')
        src = { kind: 'host', ip: dst.pod!.node.routerIP, node: dst.pod!.node, mac: dst.pod!.node.mac };
      if (!src || !dst) continue;
      if (src.kind === 'pod' && dst.kind === 'pod' && src.pod === dst.pod) continue;
      const v6 =
        spec.v6Share !== undefined &&
        src.ipv6 !== undefined &&
        dst.ipv6 !== undefined &&
        frng.chance(spec.v6Share);
      const toWorld = typeof spec.to === 'object' && 'world' in spec.to ? spec.to : undefined;
      const c: Connection = {
        src,
        dst,
        proto,
        dport: spec.port,
        sport: proto === 'ICMPv4' ? 0 : ephemeral(frng),
        timeUs: tUs,
        ...(v6 ? { v6: true } : {}),
        ...(spec.service ? { service: spec.service } : {}),
        ...(toWorld?.names ? { destinationNames: toWorld.names } : {}),
        ...(spec.ingressPolicy ? { ingressPolicy: { matchType: 2 } } : {}),
        ...(spec.denied ? { denied: true } : {}),
        data: proto === 'TCP' && frng.chance(0.35),
        ...(src.kind === 'pod' && frng.chance(0.04) ? { anonymousSourceAtDestination: true } : {}),
      };
      push(tUs, connectionLines(c, ids));
      emitted++;
    }
    if (emitted > 0 && !spec.denied) addEdge(edge);
  };

  // North-south entry.
  traffic({
    from: 'world',
    to: ingress,
    port: 443,
    perHour: 90,
    note: 'internet clients through the LoadBalancer (externalTrafficPolicy Local keeps their IPs)',
  });
  traffic({
    from: 'world',
    to: ingress,
    port: 80,
    perHour: 15,
    note: 'plain-HTTP clients, redirected to HTTPS',
  });
  traffic({ from: ingress, to: frontend, port: 8080, perHour: 100, service: svc('frontend', 'shop') });
  // Shop calls.
  traffic({
    from: frontend,
    to: cart,
    port: 7070,
    perHour: 50,
    service: svc('cart', 'shop'),
    v6Share: 0.3,
    note: 'part of it over IPv6 (dual-stack pods)',
  });
  traffic({
    from: frontend,
    to: catalog,
    port: 8080,
    perHour: 70,
    service: svc('catalog', 'shop'),
    note: 'Service port 80, pod port 8080',
  });
  traffic({ from: frontend, to: checkout, port: 8080, perHour: 15, service: svc('checkout', 'shop') });
  traffic({
    from: frontend,
    to: recommendations,
    port: 9090,
    perHour: 30,
    service: svc('recommendations', 'shop'),
  });
  traffic({
    from: recommendations,
    to: catalog,
    port: 8080,
    perHour: 40,
    service: svc('catalog', 'shop'),
    note: 'until minute 20 from a pod that no longer exists, on the IP a cart pod took later',
  });
  traffic({ from: checkout, to: cart, port: 7070, perHour: 15, service: svc('cart', 'shop') });
  traffic({ from: checkout, to: payments, port: 50051, perHour: 12, service: svc('payments', 'shop') });
  traffic({
    from: checkout,
    to: postgres,
    port: 5432,
    perHour: 12,
    service: svc('postgres', 'data'),
    ingressPolicy: true,
  });
  traffic({ from: checkout, to: kafka, port: 9092, perHour: 12, service: svc('kafka', 'data') });
  traffic({
    from: catalog,
    to: postgres,
    port: 5432,
    perHour: 30,
    service: svc('postgres', 'data'),
    ingressPolicy: true,
  });
  traffic({ from: cart, to: redis, port: 6379, perHour: 40, service: svc('redis', 'data') });
  traffic({
    from: payments,
    to: { world: '54.187.216.72', names: ['api.stripe.com'] },
    port: 443,
    perHour: 12,
    note: 'external payment API, named by DNS (destination_names)',
  });
  // Stateful peers talking to themselves.
  traffic({
    from: kafka,
    to: kafka,
    port: 9092,
    perHour: 20,
    note: 'broker replication inside the StatefulSet',
  });
  traffic({
    from: postgres,
    to: postgres,
    port: 5432,
    perHour: 6,
    ingressPolicy: true,
    note: 'streaming replication, postgres-1 to postgres-0',
  });
  // The report job, inside its run.
  traffic({
    from: reports,
    to: postgres,
    port: 5432,
    perHour: 10,
    service: svc('postgres', 'data'),
    ingressPolicy: true,
    note: 'CronJob pod (CronJob -> Job -> Pod), runs minutes 30-42',
  });
  traffic({
    from: reports,
    to: { world: '52.218.48.10', names: ['reports-archive.s3.eu-west-1.amazonaws.com'] },
    port: 443,
    perHour: 6,
    note: 'S3 upload by DNS name',
  });
  // DNS from everything that resolves names.
  for (const w of [
    frontend,
    cart,
    catalog,
    checkout,
    payments,
    recommendations,
    reports,
    ingress,
    prometheus,
    kafka,
  ]) {
    traffic({
      from: w,
      to: coredns,
      port: 53,
      proto: 'UDP',
      perHour: w === payments || w === frontend ? 30 : 10,
      service: svc('kube-dns', 'kube-system'),
    });
  }
  traffic({
    from: payments,
    to: coredns,
    port: 53,
    proto: 'TCP',
    perHour: 2,
    service: svc('kube-dns', 'kube-system'),
    note: 'DNS over TCP after a truncated answer',
  });
  traffic({
    from: coredns,
    to: { world: '1.1.1.1' },
    port: 53,
    proto: 'UDP',
    perHour: 20,
    note: 'upstream resolver',
  });
  // Controllers watching the API server (Service default/kubernetes, translated to the node IP).
  for (const w of [coredns, ingress, prometheus]) {
    traffic({ from: w, to: 'kube-apiserver', port: 6443, perHour: 4, service: svc('kubernetes', 'default') });
  }
  // Prometheus scrapes (pod IPs directly, no Service).
  const scrapes: [WorkloadInfo, number][] = [
    [coredns, 9153],
    [ingress, 10254],
    [cart, 9464],
    [checkout, 9464],
    [payments, 9464],
    [frontend, 8080],
    [catalog, 8080],
    [postgres, 9187],
    [redis, 9121],
    [kafka, 9308],
  ];
  for (const [w, port] of scrapes)
    traffic({ from: prometheus, to: w, port, perHour: 12, ingressPolicy: w === postgres });
  traffic({
    from: prometheus,
    to: 'node-exporter',
    port: 9100,
    perHour: 24,
    note: 'host-network DaemonSet: the destination is a node IP (reserved:host / remote-node)',
  });
  // Kubelet probes come from the node (cilium_host address inside the pod CIDR).
  for (const w of [frontend, catalog, checkout])
    traffic({ from: 'host', to: w, port: 8080, perHour: 40, note: 'kubelet readiness probe' });
  traffic({ from: 'host', to: prometheus, port: 9090, perHour: 20, note: 'kubelet readiness probe' });
  // ICMP.
  traffic({ from: blackbox, to: frontend, port: 8, proto: 'ICMPv4', perHour: 12, note: 'ICMP echo probes' });
  // Denied: a frontend pod trying the database directly.
  traffic({
    from: frontend,
    to: postgres,
    port: 5432,
    perHour: 3,
    service: svc('postgres', 'data'),
    denied: true,
    note: 'dropped by NetworkPolicy data/postgres-ingress',
  });

  // L7 DNS seen by the DNS proxy for the pods with DNS-aware egress policy.
  const dnsClients: [WorkloadInfo, string, string][] = [
    [payments, 'api.stripe.com', '54.187.216.72'],
    [reports, 'reports-archive.s3.eu-west-1.amazonaws.com', '52.218.48.10'],
  ];
  for (const [w, name, ip] of dnsClients) {
    for (let i = 0; i < 8 * rateScale; i++) {
      const tUs = startUs + Math.floor(frng.next() * durUs);
      const t = Math.floor(tUs / 1000);
      const client = anyPod(w)(t, frng);
      const server = anyPod(coredns)(t, frng);
      if (!client || !server) continue;
      const sport = ephemeral(frng);
      const base = { client, server, qtype: 'A' as const, sport, service: svc('kube-dns', 'kube-system') };
      // ndots:5 walks the search path first: NXDOMAIN for <name>.<ns>.svc.cluster.local, then the answer.
      push(
        tUs,
        dnsLines(
          {
            ...base,
            query: `${name}.${w.namespace}.svc.cluster.local`,
            ips: [],
            ttl: 30,
            rcode: 3,
            timeUs: tUs,
          },
          ids,
        ),
      );
      push(
        tUs + 900,
        dnsLines({ ...base, query: name, ips: [ip], ttl: 60, rcode: 0, timeUs: tUs + 900 }, ids),
      );
    }
  }

  // The IP-reuse pod: a few of its connections reached the destination with no metadata at all.
  for (let i = 0; i < 4; i++) {
    const tUs = startUs + Math.floor(frng.next() * 18 * MIN * 1000);
    const dst = anyPod(catalog)(Math.floor(tUs / 1000), frng)!;
    const c: Connection = {
      src: { kind: 'pod', ip: oldRecoPod.ip, pod: oldRecoPod },
      dst,
      proto: 'TCP',
      dport: 8080,
      sport: ephemeral(frng),
      timeUs: tUs,
      service: svc('catalog', 'shop'),
      bareSourceAtDestination: true,
    };
    push(
      tUs,
      connectionLines(c, ids).filter((l) => l.includes(`"node_name":"${dst.pod!.node.name}"`)),
    );
  }

  // Noise: Cilium health checks, IPv6 router solicitations, relay status and lost events.
  for (let m = 0; m < duration / MIN; m += 2) {
    for (const n of nodes) {
      const tUs = startUs + m * MIN * 1000 + frng.int(0, 59_000_000);
      const other = nodes[(nodes.indexOf(n) + 1) % nodes.length]!;
      push(tUs, [
        flowLine({
          timeUs: tUs,
          ...(n.oldAgent ? {} : { uuid: ids.next() }),
          verdict: 'FORWARDED',
          ethernet: [n.mac, other.mac],
          ipSrc: n.routerIP,
          ipDst: health.get(other)!,
          l4: `{"TCP":{"source_port":${ephemeral(frng)},"destination_port":4240,"flags":{"ACK":true}}}`,
          source: '{"identity":6,"labels":["reserved:remote-node"]}',
          destination: '{"identity":4,"labels":["reserved:health"]}',
          type: 'L3_L4',
          node: n.name,
          eventType: 4,
          subType: 4,
          point: 'TO_OVERLAY',
          iface: { index: 6, name: 'cilium_vxlan' },
          summary: 'TCP Flags: ACK',
        }),
      ]);
      const tPing = tUs + 5_000_000;
      push(tPing, [
        flowLine({
          timeUs: tPing,
          ...(n.oldAgent ? {} : { uuid: ids.next() }),
          verdict: 'FORWARDED',
          ethernet: [n.mac, n.mac],
          ipSrc: n.routerIP,
          ipDst: health.get(n)!,
          l4: '{"ICMPv4":{"type":8}}',
          source: '{"identity":1,"labels":["reserved:host"]}',
          destination: '{"ID":132,"identity":4,"labels":["reserved:health"]}',
          type: 'L3_L4',
          node: n.name,
          eventType: 4,
          direction: 'INGRESS',
          point: 'TO_ENDPOINT',
          ...(n.oldAgent ? {} : { isReply: false }),
          iface: { index: 10, name: 'lxc_health' },
          summary: 'ICMPv4 EchoRequest',
        }),
        flowLine({
          timeUs: tPing + 60,
          ...(n.oldAgent ? {} : { uuid: ids.next() }),
          verdict: 'FORWARDED',
          ethernet: [n.mac, n.mac],
          ipSrc: health.get(n)!,
          ipDst: n.routerIP,
          l4: '{"ICMPv4":{}}',
          source: '{"ID":132,"identity":4,"labels":["reserved:health"]}',
          destination: '{"identity":1,"labels":["reserved:host"]}',
          type: 'L3_L4',
          node: n.name,
          reply: true,
          eventType: 4,
          subType: 5,
          direction: 'INGRESS',
          point: 'FROM_ENDPOINT',
          ...(n.oldAgent ? {} : { isReply: true }),
          summary: 'ICMPv4 EchoReply',
        }),
      ]);
    }
  }
  for (let i = 0; i < 6; i++) {
    const n = frng.pick(nodes);
    const tUs = startUs + Math.floor(frng.next() * durUs);
    push(tUs, [
      flowLine({
        timeUs: tUs,
        ...(n.oldAgent ? {} : { uuid: ids.next() }),
        verdict: 'DROPPED',
        dropReason: { code: 132, desc: 'INVALID_SOURCE_IP' },
        ipSrc: `fe80::${frng.hex(4)}:${frng.hex(2)}ff:fe${frng.hex(2)}:${frng.hex(4)}`,
        ipDst: 'ff02::2',
        l4: '{"ICMPv6":{"type":133}}',
        source: '{}',
        destination: '{}',
        type: 'L3_L4',
        node: n.name,
        eventType: 1,
        subType: 132,
        summary: 'ICMPv6 RouterSolicitation',
      }),
    ]);
  }
  push(startUs, [
    nodeStatusLine(
      startUs,
      'NODE_CONNECTED',
      nodes.map((n) => n.name),
    ),
  ]);
  const outageStart = startUs + 37 * MIN * 1000;
  const outageEnd = outageStart + 75_000_000;
  push(outageStart, [
    nodeStatusLine(
      outageStart,
      'NODE_UNAVAILABLE',
      [w2.name],
      `connection to ${w2.ip}:4244 lost: rpc error: code = Unavailable`,
    ),
  ]);
  push(outageEnd, [nodeStatusLine(outageEnd, 'NODE_CONNECTED', [w2.name])]);
  push(outageEnd + 10, [lostEventsLine(outageEnd + 10, 'HUBBLE_RING_BUFFER', 1312, w2.name)]);
  const lostAt = startUs + 48 * MIN * 1000;
  push(lostAt, [lostEventsLine(lostAt, 'PERF_EVENT_RING_BUFFER', 57, w1.name, 1)]);

  // Lines the relay never received while demo-worker2 was unreachable.
  const w2Marker = `"node_name":"${w2.name}","time"`;
  const outageFrom = formatTime(outageStart);
  const outageTo = formatTime(outageEnd);
  const timed = events.map((e) => ({ ...e, time: lineTime(e.line) }));
  const kept = timed.filter(
    (e) =>
      !(
        e.time >= outageFrom &&
        e.time < outageTo &&
        e.line.includes(w2Marker) &&
        e.line.startsWith('{"flow"')
      ),
  );
  kept.sort((a, b2) => (a.time < b2.time ? -1 : a.time > b2.time ? 1 : a.seq - b2.seq));

  const truth: DemoTruth = {
    scenario: 'demo',
    seed,
    window: { start: new Date(start).toISOString(), end: new Date(end).toISOString() },
    edges: [...edges.values()].sort((a, c) => compareText(edgeKey(a), edgeKey(c))),
    denied,
    ipReuse: [
      {
        ip: reusedIP,
        before: {
          namespace: 'shop',
          pod: oldRecoPod.name,
          workload: 'Deployment/recommendations',
          until: new Date(oldRecoPod.endTime!).toISOString(),
        },
        after: {
          namespace: 'shop',
          pod: cart.pods[2]!.name,
          workload: 'Deployment/cart',
          from: new Date(cart.pods[2]!.startTime).toISOString(),
        },
      },
    ],
  };
  return { objects: b.takeObjects(), lines: kept.map((e) => e.line), truth };
}
