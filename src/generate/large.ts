/**
 * Large synthetic topologies for benchmarks, shaped by the published statistics of production
 * microservice call graphs (see docs/demo.md and the topology-stats reference, section 6): domains of
 * 10-60 services as namespaces with mostly intra-domain calls through one gateway per domain, platform
 * hubs in their own namespaces called by a large share of all workloads, heavy-tailed fan-out and
 * fan-in, entry/middle/leaf roles with private stores, heavy-tailed replica counts (capped).
 *
 * Three products, all deterministic from the seed: the plan (`largeTopology`), the snapshot objects
 * (`largeClusterObjects`, a generator), and Hubble lines (`generateFlowLines`, a lazy generator that
 * never holds more than one connection's lines).
 */
import type { NodeInfo, PodInfo, PodOverride, PortSpec, RootKind, WorkloadInfo } from './cluster.ts';
import { ClusterBuilder } from './cluster.ts';
import type { Connection, Peer } from './hubble.ts';
import { connectionLines, FlowIds, flowLine, lostEventsLine, nodeStatusLine } from './hubble.ts';
import { AliasTable, hash32, Rng } from './prng.ts';
import type { TruthEdge } from './truth.ts';

export type Role = 'hub' | 'scraper' | 'entry' | 'middle' | 'leaf' | 'store';

export interface LargeWorkload {
  index: number;
  namespace: string;
  name: string;
  kind: RootKind;
  role: Role;
  /** Index into `domains`; -1 for platform workloads. */
  domain: number;
  replicas: number;
  port: number;
  protocol: 'TCP' | 'UDP';
  portName: string;
}

export interface LargeEdge {
  src: number;
  dst: number;
  /** Relative connection rate (heavy-tailed). */
  weight: number;
  kind: 'intra' | 'cross' | 'hub' | 'scrape';
}

export interface LargeDomain {
  namespace: string;
  gateway: number;
  members: number[];
}

export interface LargeOptions {
  workloads?: number;
  seed?: number;
  /** Cap on replicas per workload (keeps pod counts sane for memory). Default 12. */
  maxReplicas?: number;
  /** Target pods per node. Default 80. */
  podsPerNode?: number;
  /** Share of non-hub calls that stay inside the caller's domain. Default 0.8. */
  intraDomainShare?: number;
}

export interface LargeTopology {
  seed: number;
  workloads: LargeWorkload[];
  edges: LargeEdge[];
  domains: LargeDomain[];
  options: Required<LargeOptions>;
  nodeCount: number;
}

export const METRICS_PORT = 9102;

/** Platform hubs: [namespace, name, port, protocol, share of eligible workloads calling it]. */
const HUBS: [string, string, number, 'TCP' | 'UDP', number][] = [
  ['kube-system', 'coredns', 53, 'UDP', 0.92],
  ['platform-vault', 'vault', 8200, 'TCP', 0.5],
  ['platform-config', 'config-server', 8888, 'TCP', 0.4],
  ['platform-auth', 'auth-server', 8443, 'TCP', 0.36],
  ['platform-telemetry', 'otel-collector', 4317, 'TCP', 0.34],
  ['platform-flags', 'feature-flags', 8080, 'TCP', 0.1],
  ['platform-ratelimit', 'rate-limiter', 8081, 'TCP', 0.09],
  ['platform-registry', 'service-registry', 8500, 'TCP', 0.08],
  ['platform-audit', 'audit-log', 9000, 'TCP', 0.08],
  ['platform-events', 'event-bus', 9092, 'TCP', 0.08],
  ['platform-cache', 'cache-proxy', 6379, 'TCP', 0.07],
  ['platform-ids', 'id-generator', 7000, 'TCP', 0.07],
  ['platform-geo', 'geo-lookup', 8080, 'TCP', 0.06],
  ['platform-notify', 'notifications', 8080, 'TCP', 0.06],
  ['platform-search', 'search-gateway', 9200, 'TCP', 0.06],
  ['platform-blob', 'blob-gateway', 9000, 'TCP', 0.05],
  ['platform-scheduler', 'job-scheduler', 8080, 'TCP', 0.05],
  ['platform-billing', 'usage-meter', 8080, 'TCP', 0.05],
  ['platform-i18n', 'translations', 8080, 'TCP', 0.05],
  ['platform-secrets', 'secrets-broker', 8443, 'TCP', 0.05],
  ['platform-email', 'mail-relay', 2525, 'TCP', 0.05],
  ['platform-pdf', 'pdf-renderer', 8080, 'TCP', 0.05],
  ['platform-images', 'image-resizer', 8080, 'TCP', 0.05],
  ['platform-webhooks', 'webhook-dispatcher', 8080, 'TCP', 0.05],
];

const AREAS = [
  'accounts',
  'ads',
  'analytics',
  'billing',
  'booking',
  'catalog',
  'checkout',
  'claims',
  'content',
  'crm',
  'delivery',
  'documents',
  'fleet',
  'fraud',
  'fulfilment',
  'growth',
  'identity',
  'insurance',
  'inventory',
  'invoicing',
  'kyc',
  'ledger',
  'lending',
  'loyalty',
  'maps',
  'marketing',
  'media',
  'messaging',
  'orders',
  'partners',
  'payments',
  'payroll',
  'pricing',
  'procurement',
  'profiles',
  'promotions',
  'quotes',
  'ratings',
  'recommend',
  'refunds',
  'reporting',
  'returns',
  'reviews',
  'risk',
  'routing',
  'search',
  'shipping',
  'social',
  'subscriptions',
  'support',
  'tax',
  'ticketing',
  'travel',
  'trust',
  'vendors',
  'video',
  'wallet',
  'warehouse',
];
const TEAMS = [
  'core',
  'edge',
  'ops',
  'data',
  'web',
  'mobile',
  'partner',
  'internal',
  'eu',
  'us',
  'apac',
  'batch',
  'realtime',
];
const NOUNS = [
  'api',
  'worker',
  'service',
  'engine',
  'store',
  'sync',
  'indexer',
  'resolver',
  'validator',
  'aggregator',
  'scheduler',
  'notifier',
  'exporter',
  'importer',
  'calculator',
  'router',
  'gateway',
  'manager',
  'tracker',
  'builder',
  'matcher',
  'scorer',
  'publisher',
  'consumer',
  'projector',
  'cache',
  'reader',
  'writer',
  'auditor',
  'planner',
];
const STORES: [string, number, string][] = [
  ['postgres', 5432, 'postgresql'],
  ['redis', 6379, 'redis'],
  ['mongodb', 27017, 'mongodb'],
  ['elasticsearch', 9200, 'http'],
  ['mysql', 3306, 'mysql'],
];

function resolved(opts: LargeOptions): Required<LargeOptions> {
  const workloads = opts.workloads ?? 2000;
  if (!Number.isInteger(workloads) || workloads < 50)
    throw new RangeError(`workloads must be an integer >= 50, got ${workloads}`);
  return {
    workloads,
    seed: opts.seed ?? 1,
    maxReplicas: opts.maxReplicas ?? 12,
    podsPerNode: opts.podsPerNode ?? 80,
    intraDomainShare: opts.intraDomainShare ?? 0.8,
  };
}

/** Samples `k` distinct items of `pool` (partial Fisher-Yates on a copy). */
function sample(rng: Rng, pool: readonly number[], k: number): number[] {
  const a = pool.slice();
  const n = Math.min(k, a.length);
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(rng.next() * (a.length - i));
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
  }
  return a.slice(0, n);
}

/** Plans the workloads, domains and workload-level edges (the ground truth). */
export function largeTopology(options: LargeOptions = {}): LargeTopology {
  const opts = resolved(options);
  const N = opts.workloads;
  const rng = Rng.derive(opts.seed, 'large-topology');
  const workloads: LargeWorkload[] = [];
  const add = (w: Omit<LargeWorkload, 'index'>) => {
    const x = { ...w, index: workloads.length };
    workloads.push(x);
    return x;
  };
  const replicas = (median: number) =>
    Math.max(1, Math.min(opts.maxReplicas, Math.round(rng.lognormal(median, 0.9))));

  // Platform hubs (about 0.1 % of workloads, at least 5) and the metrics scraper (the top fan-out).
  const hubCount = Math.min(HUBS.length, Math.max(5, Math.round(N / 1000)));
  const hubs = HUBS.slice(0, hubCount).map(([namespace, name, port, protocol]) =>
    add({
      namespace,
      name,
      kind: 'Deployment',
      role: 'hub',
      domain: -1,
      replicas: Math.min(opts.maxReplicas, rng.int(3, 10)),
      port,
      protocol,
      portName: protocol === 'UDP' ? 'dns' : 'http',
    }),
  );
  const scraper = add({
    namespace: 'platform-monitoring',
    name: 'prometheus',
    kind: 'StatefulSet',
    role: 'scraper',
    domain: -1,
    replicas: 2,
    port: 9090,
    protocol: 'TCP',
    portName: 'web',
  });

  // Domains of 10-60 services (lognormal around 25), one namespace each.
  const domains: LargeDomain[] = [];
  let remaining = N - workloads.length;
  const usedNs = new Set<string>();
  while (remaining > 0) {
    let size = Math.max(10, Math.min(60, Math.round(rng.lognormal(25, 0.45))));
    // Keep every domain within 10-60: never leave fewer than 10 for the last one.
    if (remaining <= 60) size = remaining;
    else size = Math.min(size, remaining - 10);
    remaining -= size;
    let ns = `${rng.pick(AREAS)}-${rng.pick(TEAMS)}`;
    while (usedNs.has(ns)) ns = `${rng.pick(AREAS)}-${rng.pick(TEAMS)}-${rng.int(2, 99)}`;
    usedNs.add(ns);
    const d = domains.length;
    const members: number[] = [];
    const usedNames = new Set<string>();
    const uniqueName = (base: string) => {
      let n = base;
      for (let k = 2; usedNames.has(n); k++) n = `${base}-${k}`;
      usedNames.add(n);
      return n;
    };
    const area = ns.split('-')[0]!;
    // Gateway first, then entries (13 %), middles (48 %), leaves (39 %, half of them stores).
    const entries = Math.max(1, Math.round(size * 0.13));
    const leaves = Math.max(1, Math.round(size * 0.39));
    const middles = Math.max(1, size - entries - leaves);
    const roles: Role[] = [];
    for (let i = 0; i < size; i++)
      roles.push(i < entries ? 'entry' : i < entries + middles ? 'middle' : 'leaf');
    for (const [i, role0] of roles.entries()) {
      let role = role0;
      if (i === 0) {
        members.push(
          add({
            namespace: ns,
            name: uniqueName(`${area}-gateway`),
            kind: 'Deployment',
            role: 'entry',
            domain: d,
            replicas: replicas(4),
            port: 8080,
            protocol: 'TCP',
            portName: 'http',
          }).index,
        );
        continue;
      }
      if (role === 'leaf' && rng.chance(0.5)) role = 'store';
      if (role === 'store') {
        const [tech, port, portName] = rng.pick(STORES);
        members.push(
          add({
            namespace: ns,
            name: uniqueName(`${rng.pick(NOUNS)}-${tech}`),
            kind: 'StatefulSet',
            role,
            domain: d,
            replicas: rng.int(1, 3),
            port,
            protocol: 'TCP',
            portName,
          }).index,
        );
        continue;
      }
      const cron = role === 'entry' && rng.chance(0.3);
      const grpc = rng.chance(0.3);
      members.push(
        add({
          namespace: ns,
          name: uniqueName(`${area}-${rng.pick(NOUNS)}`),
          kind: cron ? 'CronJob' : 'Deployment',
          role,
          domain: d,
          replicas: cron ? 1 : replicas(2),
          port: grpc ? 9090 : 8080,
          protocol: 'TCP',
          portName: grpc ? 'grpc' : 'http',
        }).index,
      );
    }
    domains.push({ namespace: ns, gateway: members[0]!, members });
  }

  // Popularity weights make fan-in heavy-tailed; domain popularity does the same for cross-domain calls.
  const popularity = workloads.map(() => Math.pow(1 - rng.next(), -1 / 1.3));
  const domainPopularity = domains.map(() => Math.pow(1 - rng.next(), -1 / 1.1));
  const domainTable = new AliasTable(domainPopularity);
  const tier = (r: Role) => (r === 'entry' ? 0 : r === 'middle' ? 1 : 2);

  const edges: LargeEdge[] = [];
  const seen = new Set<number>();
  const addEdge = (src: number, dst: number, kind: LargeEdge['kind'], base: number) => {
    if (src === dst) return false;
    const key = src * N + dst;
    if (seen.has(key)) return false;
    seen.add(key);
    edges.push({ src, dst, kind, weight: base * rng.lognormal(1, 1.2) });
    return true;
  };

  for (const [d, dom] of domains.entries()) {
    const ws = dom.members.map((i) => workloads[i]!);
    const stores = ws.filter((w) => w.role === 'store');
    const callers = ws.filter((w) => w.role === 'entry' || w.role === 'middle');
    // Database per service: most stores belong to exactly one caller.
    const shared: LargeWorkload[] = [];
    for (const s of stores) {
      if (callers.length > 0 && rng.chance(0.75)) addEdge(rng.pick(callers).index, s.index, 'intra', 1.5);
      else shared.push(s);
    }
    for (const w of callers) {
      const want = Math.min(Math.floor(0.3 * N), rng.powerLaw(2.5, 1) + (w.role === 'entry' ? 2 : 1));
      // Entries call middles and leaves; middles call other middles (cycles happen) and leaves.
      const intraTargets = ws.filter((t) => t !== w && t.role !== 'store' && tier(t.role) >= 1);
      const intraPool = [...intraTargets, ...shared];
      const intraTable =
        intraPool.length > 0 ? new AliasTable(intraPool.map((t) => popularity[t.index]!)) : undefined;
      const cross = () => {
        if (domains.length < 2) return false;
        let od = domainTable.draw(rng);
        if (od === d) od = (od + 1) % domains.length;
        const other = domains[od]!;
        const target = rng.chance(0.8) ? other.gateway : rng.pick(other.members);
        const t = workloads[target]!;
        // Stores are private to their domain; CronJobs serve nothing.
        return t.role !== 'store' && t.kind !== 'CronJob' && addEdge(w.index, target, 'cross', 0.7);
      };
      for (let k = 0; k < want; k++) {
        let added = false;
        if (intraTable && rng.chance(opts.intraDomainShare)) {
          for (let tries = 0; tries < 8 && !added; tries++) {
            added = addEdge(w.index, intraPool[intraTable.draw(rng)]!.index, 'intra', 1);
          }
          if (!added) {
            const free = intraPool.filter((t) => !seen.has(w.index * N + t.index));
            if (free.length > 0) added = addEdge(w.index, rng.pick(free).index, 'intra', 1);
          }
        }
        for (let tries = 0; tries < 6 && !added; tries++) added = cross();
      }
    }
  }

  // Hub calls: each hub is called by its share of the non-store, non-platform workloads.
  const eligible = workloads.filter((w) => w.domain >= 0 && w.role !== 'store').map((w) => w.index);
  for (const [h, hub] of hubs.entries()) {
    const share = HUBS[h]![4];
    const factor = hub.name === 'coredns' ? 5 : 2;
    for (const src of sample(rng, eligible, Math.round(share * eligible.length)))
      addEdge(src, hub.index, 'hub', factor);
  }
  // Platform services use the vault and DNS too.
  for (const hub of hubs.slice(1)) {
    addEdge(hub.index, hubs[0]!.index, 'hub', 5);
    if (hubs[1] && hub !== hubs[1]) addEdge(hub.index, hubs[1].index, 'hub', 2);
  }
  // The scraper reaches 30 % of all workloads on their metrics port.
  const scrapable = workloads.filter((w) => w.role !== 'scraper' && w.kind !== 'CronJob').map((w) => w.index);
  for (const dst of sample(rng, scrapable, Math.round(0.3 * scrapable.length)))
    addEdge(scraper.index, dst, 'scrape', 0.5);
  addEdge(scraper.index, hubs[0]!.index, 'hub', 5);

  const pods = workloads.reduce((a, w) => a + w.replicas, 0);
  const nodeCount = Math.max(3, Math.ceil(pods / opts.podsPerNode));
  return { seed: opts.seed, workloads, edges, domains, options: opts, nodeCount };
}

/** Port an edge's connections use: the scraper uses the metrics port, everyone else the service port. */
export function edgePort(topo: LargeTopology, e: LargeEdge): { port: number; protocol: 'TCP' | 'UDP' } {
  const dst = topo.workloads[e.dst]!;
  if (e.kind === 'scrape') return { port: METRICS_PORT, protocol: 'TCP' };
  return { port: dst.port, protocol: dst.protocol };
}

export const LARGE_START = Date.UTC(2026, 2, 2, 10, 0, 0);

/** Labels of a planned workload's pods. */
function labelsOf(w: LargeWorkload): Record<string, string> {
  if (w.name === 'coredns') return { 'k8s-app': 'kube-dns' };
  const labels: Record<string, string> = { app: w.name, 'app.kubernetes.io/part-of': w.namespace };
  if (w.role === 'store') labels['app.kubernetes.io/component'] = 'database';
  return labels;
}

function serviceName(w: LargeWorkload): string {
  return w.name === 'coredns' ? 'kube-dns' : w.name;
}

const SUFFIX_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

function hashSuffix(h: number, length: number): string {
  let s = '';
  let x = h >>> 0;
  for (let i = 0; i < length; i++) {
    s += SUFFIX_ALPHABET[x % 27];
    x = Math.floor(x / 27);
    if (x === 0) x = Math.imul(h ^ (i + 1), 0x9e3779b1) >>> 0;
  }
  return s;
}

/**
 * Where every pod of a topology lives, computed rather than stored: pod `k` (in workload order) is on
 * node `order[k % nodes]` with host number `2 + floor(k / nodes)` in that node's /24, and its name,
 * endpoint id and MAC are hashes of the seed and `k`. The snapshot writer and the flow generator both
 * read this, so they agree without keeping 50k pod records in memory.
 */
export class LargeLayout {
  readonly topology: LargeTopology;
  readonly nodes: NodeInfo[];
  readonly workloads: WorkloadInfo[];
  /** When the snapshot is taken (ms). */
  readonly now: number;
  private readonly podOffset: Int32Array;
  private readonly nodeOrder: Int32Array;
  private readonly salt: number;

  constructor(topo: LargeTopology, opts: { now?: number } = {}) {
    this.topology = topo;
    this.now = opts.now ?? LARGE_START + 3_600_000;
    const rng = Rng.derive(topo.seed, 'large-layout');
    this.salt = hash32(`salt-${topo.seed}`);
    this.nodes = [];
    for (let i = 0; i < topo.nodeCount; i++) {
      const prefix = `10.${128 + (i >> 8)}.${i & 255}`;
      this.nodes.push({
        name: `node-${String(i).padStart(5, '0')}`,
        ip: `10.0.${Math.floor(i / 250)}.${(i % 250) + 1}`,
        podPrefix: prefix,
        routerIP: `${prefix}.1`,
        controlPlane: i < 3,
        nextHost: 2,
        oldAgent: i % 10 === 9,
        mac: macOf(hash32(`node-${i}`) ^ this.salt),
      });
    }
    this.nodeOrder = new Int32Array(topo.nodeCount);
    for (let i = 0; i < this.nodeOrder.length; i++) this.nodeOrder[i] = i;
    for (let i = this.nodeOrder.length - 1; i > 0; i--) {
      const j = Math.floor(rng.next() * (i + 1));
      const t = this.nodeOrder[i]!;
      this.nodeOrder[i] = this.nodeOrder[j]!;
      this.nodeOrder[j] = t;
    }
    this.podOffset = new Int32Array(topo.workloads.length + 1);
    for (const [i, w] of topo.workloads.entries()) this.podOffset[i + 1] = this.podOffset[i]! + w.replicas;
    const pods = this.podOffset[topo.workloads.length]!;
    if (2 + Math.floor((pods - 1) / topo.nodeCount) > 253)
      throw new RangeError(`${pods} pods do not fit on ${topo.nodeCount} nodes (253 per node)`);
    this.workloads = topo.workloads.map((w) => ({
      namespace: w.namespace,
      kind: w.kind,
      name: w.name,
      labels: labelsOf(w),
      serviceAccount: w.name,
      identity: 10_000 + w.index * 3 + (hash32(w.name) % 3),
      hostNetwork: false,
      pods: [],
      hubbleWorkload: { name: w.name, kind: w.kind },
      uid: '',
    }));
  }

  /** pod-template-hash (Deployments) or revision suffix (StatefulSets) of workload `i`. */
  templateHash(i: number): string {
    return hashSuffix(hash32(`tpl-${i}`) ^ this.salt, 10);
  }

  /** When workload `i`'s CronJob last scheduled its Job (ms). */
  jobScheduledAt(i: number): number {
    return this.now - 3_600_000 + (i % 60) * 60_000 - 60_000;
  }

  podCount(i: number): number {
    return this.podOffset[i + 1]! - this.podOffset[i]!;
  }

  /** Replica `r` of workload `i`. */
  pod(i: number, r: number): PodInfo {
    const k = this.podOffset[i]! + r;
    const w = this.topology.workloads[i]!;
    const node = this.nodes[this.nodeOrder[k % this.nodes.length]!]!;
    const host = 2 + Math.floor(k / this.nodes.length);
    const h = hash32(`pod-${k}`) ^ this.salt;
    let name: string;
    if (w.kind === 'StatefulSet') name = `${w.name}-${r}`;
    else if (w.kind === 'CronJob')
      name = `${w.name}-${Math.floor(this.jobScheduledAt(i) / 60_000)}-${hashSuffix(h, 5)}`;
    else name = `${w.name}-${this.templateHash(i)}-${hashSuffix(h, 5)}`;
    return {
      namespace: w.namespace,
      name,
      ip: `${node.podPrefix}.${host}`,
      node,
      workload: this.workloads[i]!,
      // Cilium endpoint IDs are small unsigned numbers (h is a signed 32-bit hash).
      endpointId: 100 + ((h >>> 0) % 60_000),
      startTime:
        w.kind === 'CronJob' ? this.jobScheduledAt(i) + 2_000 : this.now - 86_400_000 - (h % 86_400_000),
      mac: macOf(h),
      iface: {
        index: 10 + host,
        name: `lxc${(h >>> 0).toString(16).padStart(8, '0')}${(k & 0xffff).toString(16).padStart(4, '0')}`,
      },
    };
  }
}

function macOf(h: number): string {
  const b = [0x0a, (h >>> 24) & 255, (h >>> 16) & 255, (h >>> 8) & 255, h & 255, (h >>> 5) & 255];
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/**
 * Streams the snapshot objects of a topology (Nodes, Namespaces, controllers, Pods, Services,
 * EndpointSlices), workload by workload. Memory stays flat: pods are dropped once their Service is out.
 * `lean` leaves out the fields no stage reads (pod conditions, container resources and probes, ...),
 * which halves the memory of a benchmark that holds the whole snapshot.
 */
export function* largeClusterObjects(
  topo: LargeTopology,
  opts: { now?: number; lean?: boolean } = {},
): Generator<object> {
  const layout = new LargeLayout(topo, opts);
  const rng = Rng.derive(topo.seed, 'large-objects');
  const b = new ClusterBuilder(rng, layout.now, { lean: opts.lean === true });
  for (const n of layout.nodes) {
    b.addNode({
      name: n.name,
      ip: n.ip,
      podPrefix: n.podPrefix,
      routerHost: 1,
      controlPlane: n.controlPlane,
      oldAgent: n.oldAgent,
    });
  }
  yield* b.takeObjects();
  const nodeByName = new Map(b.nodes.map((n) => [n.name, n]));
  for (const w of topo.workloads) {
    const ports: PortSpec[] = [{ name: w.portName, port: w.port, protocol: w.protocol }];
    if (w.kind !== 'CronJob' && w.port !== METRICS_PORT) ports.push({ name: 'metrics', port: METRICS_PORT });
    const overrides: Record<number, PodOverride> = {};
    for (let r = 0; r < w.replicas; r++) {
      const p = layout.pod(w.index, r);
      overrides[r] = {
        name: p.name,
        node: nodeByName.get(p.node.name)!,
        ip: { ip: p.ip },
        endpointId: p.endpointId,
        mac: p.mac,
        iface: p.iface,
        startTime: p.startTime,
      };
    }
    const labels = labelsOf(w);
    const info = b.workload({
      namespace: w.namespace,
      name: w.name,
      kind: w.kind,
      replicas: w.replicas,
      labels,
      image: `registry.example.com/${w.namespace}/${w.name}:1.${w.index % 20}.${w.index % 7}`,
      ports,
      podOverrides: overrides,
      templateHash: layout.templateHash(w.index),
      identity: layout.workloads[w.index]!.identity,
      ...(w.kind === 'CronJob'
        ? { schedule: `${w.index % 60} * * * *`, jobScheduledAt: layout.jobScheduledAt(w.index) }
        : {}),
    });
    if (w.kind !== 'CronJob') {
      b.service({
        workload: info,
        name: serviceName(w),
        ...(w.name === 'coredns' ? { clusterIP: '10.96.0.10' } : {}),
        ports: [{ name: w.portName, port: w.port, targetPort: w.portName, protocol: w.protocol }],
        containerPorts: ports,
        selector: labels,
      });
    }
    info.pods = [];
    yield* b.takeObjects();
  }
}

export interface FlowLineOptions {
  topology: LargeTopology;
  /** Layout from `new LargeLayout(topology)` (built here when absent). */
  layout?: LargeLayout;
  /** Number of lines to yield. */
  count: number;
  seed?: number;
  /** Window start (ms) and length (ms); lines are spread over it in time order. */
  start?: number;
  durationMs?: number;
  /** Filled with the number of connections drawn per edge (same index as `topology.edges`). */
  connectionsPerEdge?: Uint32Array;
}

/**
 * Yields `count` Hubble jsonpb lines lazily. Connections are drawn from the edge list by weight (heavy
 * repetition of busy edges), with every edge drawn at least once when `count` allows; each connection
 * produces the lines Cilium reports for it (egress, overlay, ingress, replies). Memory does not depend
 * on `count`.
 */
export function* generateFlowLines(opts: FlowLineOptions): Generator<string, void, undefined> {
  const topo = opts.topology;
  const layout = opts.layout ?? new LargeLayout(topo);
  const start = opts.start ?? LARGE_START;
  const durUs = (opts.durationMs ?? 3_600_000) * 1000;
  const startUs = start * 1000;
  const rng = Rng.derive(opts.seed ?? topo.seed, 'large-flows');
  const ids = new FlowIds(`${rng.hex(8)}-${rng.hex(4)}-4${rng.hex(3)}-b${rng.hex(3)}`);
  const edges = topo.edges;
  const table = new AliasTable(edges.map((e) => e.weight));
  // Coverage: every edge once, in a shuffled order, interleaved with weighted draws.
  const cover = new Int32Array(edges.length);
  for (let i = 0; i < cover.length; i++) cover[i] = i;
  for (let i = cover.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    const t = cover[i]!;
    cover[i] = cover[j]!;
    cover[j] = t;
  }
  let covered = 0;
  // Running mean of lines per connection, to pace the coverage pass so it ends well before `count`.
  let connectionLineTotal = 0;
  let connections = 0;
  const count = opts.count;
  let emitted = 0;
  const timeAt = () => startUs + Math.floor((emitted / Math.max(1, count)) * durUs);
  const nodes = layout.nodes;
  const podPeer = (i: number): Peer => {
    const p = layout.pod(i, Math.floor(rng.next() * layout.podCount(i)));
    return { kind: 'pod', ip: p.ip, pod: p };
  };
  let nextNoise = 0;

  while (emitted < count) {
    // Occasional relay and health-check noise.
    if (emitted >= nextNoise) {
      nextNoise = emitted + 2_000 + Math.floor(rng.next() * 4_000);
      const t = timeAt();
      const ni = Math.floor(rng.next() * nodes.length);
      const n = nodes[ni]!;
      const r = rng.next();
      let line: string;
      if (emitted === 0)
        line = nodeStatusLine(
          t,
          'NODE_CONNECTED',
          nodes.slice(0, 50).map((x) => x.name),
        );
      else if (r < 0.04)
        line = lostEventsLine(t, 'HUBBLE_RING_BUFFER', 1 + Math.floor(rng.next() * 4000), n.name);
      else
        line = flowLine({
          timeUs: t,
          ...(n.oldAgent ? {} : { uuid: ids.next() }),
          verdict: 'FORWARDED',
          ipSrc: n.routerIP,
          ipDst: `${nodes[(ni + 1) % nodes.length]!.podPrefix}.254`,
          l4: `{"TCP":{"source_port":${32768 + Math.floor(rng.next() * 28000)},"destination_port":4240,"flags":{"ACK":true}}}`,
          source: '{"identity":6,"labels":["reserved:remote-node"]}',
          destination: '{"identity":4,"labels":["reserved:health"]}',
          type: 'L3_L4',
          node: n.name,
          eventType: 4,
          subType: 4,
          point: 'TO_OVERLAY',
          iface: { index: 6, name: 'cilium_vxlan' },
          summary: 'TCP Flags: ACK',
        });
      emitted++;
      yield line;
      continue;
    }
    const perConnection = connections > 0 ? connectionLineTotal / connections : 6;
    const remainingConns = Math.max(1, (count - emitted) / perConnection);
    const uncovered = edges.length - covered;
    const ei =
      uncovered > 0 && rng.next() < (1.5 * uncovered) / remainingConns ? cover[covered++]! : table.draw(rng);
    const e = edges[ei]!;
    const { port, protocol } = edgePort(topo, e);
    const src = podPeer(e.src);
    const dst = podPeer(e.dst);
    if (src.pod!.name === dst.pod!.name) continue;
    if (opts.connectionsPerEdge) opts.connectionsPerEdge[ei] = opts.connectionsPerEdge[ei]! + 1;
    const dw = topo.workloads[e.dst]!;
    const c: Connection = {
      src,
      dst,
      proto: protocol,
      dport: port,
      sport: 32768 + Math.floor(rng.next() * 28232),
      timeUs: timeAt(),
      ...(e.kind !== 'scrape' && dw.kind !== 'CronJob'
        ? { service: { name: serviceName(dw), namespace: dw.namespace } }
        : {}),
      data: protocol === 'TCP' && rng.next() < 0.3,
      ...(rng.next() < 0.03 ? { anonymousSourceAtDestination: true } : {}),
    };
    const lines = connectionLines(c, ids);
    connections++;
    connectionLineTotal += lines.length;
    for (const line of lines) {
      if (emitted >= count) return;
      emitted++;
      yield line;
    }
  }
}

/** Ground truth of a large topology: every edge, the planted domains and the roles. */
export function largeTruth(topo: LargeTopology, connectionsPerEdge?: Uint32Array) {
  const key = (w: LargeWorkload) => `${w.namespace}/${w.kind}/${w.name}`;
  const peer = (w: LargeWorkload) => ({ workload: { namespace: w.namespace, kind: w.kind, name: w.name } });
  const edges: (TruthEdge & { kind: LargeEdge['kind']; connections?: number })[] = topo.edges.map((e, i) => {
    const { port, protocol } = edgePort(topo, e);
    return {
      src: peer(topo.workloads[e.src]!),
      dst: peer(topo.workloads[e.dst]!),
      port,
      protocol,
      kind: e.kind,
      ...(connectionsPerEdge ? { connections: connectionsPerEdge[i]! } : {}),
    };
  });
  return {
    scenario: 'large' as const,
    seed: topo.seed,
    options: topo.options,
    nodes: topo.nodeCount,
    pods: topo.workloads.reduce((a, w) => a + w.replicas, 0),
    domains: topo.domains.map((d) => ({
      namespace: d.namespace,
      gateway: key(topo.workloads[d.gateway]!),
      workloads: d.members.map((i) => key(topo.workloads[i]!)),
    })),
    platform: topo.workloads.filter((w) => w.domain < 0).map(key),
    roles: Object.fromEntries(topo.workloads.map((w) => [key(w), w.role])),
    edges,
  };
}
