/**
 * Hubble ingest benchmark: the same generated `hubble observe -o jsonpb` lines are parsed, side by side
 * in one run, by (1) the scanner with full normalisation (`parseHubbleLine`) and (2) bare `JSON.parse`
 * (no normalisation at all), and by (3) JSON.parse + normalisation for reference. Rounds alternate
 * between the contenders and the best round of each counts, so a busy machine hurts both alike.
 *
 * Lines come from a small set of realistic templates (pod-to-pod TCP trace events with Cilium's label
 * set, their replies, policy-verdict events, L7 DNS records, drops, ICMP, IPv6), varied in addresses,
 * ports, pod names and timestamps.
 */
import { pathToFileURL } from 'node:url';
import { parseHubbleLine, parseHubbleLineAt, resetScannerMemo } from '../src/flows/hubble-scan.ts';
import { parseHubbleLineSlow } from '../src/flows/hubble.ts';
import { resetWasmScanner, scanHubbleBlock } from '../src/flows/hubble-wasm.ts';
import { seededRandom } from '../src/segments/index.ts';
import { toBlocks } from './pipeline.ts';

const APPS = [
  'cart',
  'checkout',
  'catalog',
  'payments',
  'reviews',
  'ratings',
  'search',
  'users',
  'orders',
  'shipping',
];
const NAMESPACES = ['shop', 'billing', 'search', 'identity'];

function endpoint(rand: () => number, app: string, ns: string, id: number, withPod: boolean) {
  const hash = Math.floor(rand() * 0xffffff).toString(16);
  const e: Record<string, unknown> = {
    ID: 100 + Math.floor(rand() * 3000),
    identity: 10000 + id,
    namespace: ns,
    labels: [
      `k8s:app=${app}`,
      `k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=${ns}`,
      'k8s:io.cilium.k8s.policy.cluster=prod-eu-1',
      `k8s:io.cilium.k8s.policy.serviceaccount=${app}`,
      `k8s:io.kubernetes.pod.namespace=${ns}`,
      'k8s:version=v1',
      `k8s:app.kubernetes.io/part-of=${ns}`,
    ],
  };
  if (withPod) {
    e.pod_name = `${app}-7d9f${hash}-x${hash.slice(0, 4)}`;
    e.workloads = [{ name: app, kind: 'Deployment' }];
  }
  return e;
}

function isoTime(ms: number, nanos: number): string {
  return new Date(ms).toISOString().slice(0, 19) + '.' + String(nanos).padStart(9, '0') + 'Z';
}

interface Pod {
  app: string;
  ns: string;
  ip: string;
  /** The endpoint as the local agent reports it (with pod name and workload). */
  local: Record<string, unknown>;
  /** The same pod as a remote node may report it: identity and labels, no pod name. */
  remote: Record<string, unknown>;
}

/** A cluster of `APPS.length` apps x 3 replicas; every flow is between two of these pods. */
function podPool(rand: () => number): Pod[] {
  const pods: Pod[] = [];
  for (let a = 0; a < APPS.length; a++) {
    for (let r = 0; r < 3; r++) {
      const app = APPS[a]!;
      const ns = NAMESPACES[a % NAMESPACES.length]!;
      pods.push({
        app,
        ns,
        ip: `10.244.${a}.${10 + r}`,
        local: endpoint(rand, app, ns, a, true),
        remote: endpoint(rand, app, ns, a, false),
      });
    }
  }
  return pods;
}

/** Generates `n` jsonpb lines from the templates. */
export function generateHubbleLines(n: number, seed = 7): string[] {
  const rand = seededRandom(seed);
  const pool = podPool(rand);
  const dnsPod = endpoint(rand, 'kube-dns', 'kube-system', 99, true);
  const out: string[] = [];
  let t = Date.UTC(2026, 0, 1);
  for (let i = 0; i < n; i++) {
    t += Math.floor(rand() * 3);
    const time = isoTime(t, Math.floor(rand() * 1e9));
    const pa = pool[Math.floor(rand() * pool.length)]!;
    let pb = pool[Math.floor(rand() * pool.length)]!;
    if (pb.app === pa.app) pb = pool[(pool.indexOf(pb) + 3) % pool.length]!;
    const a = APPS.indexOf(pa.app);
    const b = APPS.indexOf(pb.app);
    const nsB = pb.ns;
    const ipA = pa.ip;
    const ipB = pb.ip;
    const sport = 32768 + Math.floor(rand() * 28000);
    const dport = [8080, 9090, 5432, 6379, 443][b % 5]!;
    const src = pa.local;
    const dst = rand() < 0.9 ? pb.local : pb.remote;
    const kind = rand();
    let flow: Record<string, unknown>;
    const base = {
      time,
      uuid: `5f3c${Math.floor(rand() * 1e8)}-8a1e-4b1c-9d2e-${Math.floor(rand() * 1e12)}`,
      ethernet: { source: '2a:1b:3c:4d:5e:6f', destination: '6e:3c:ce:d3:9e:a6' },
      node_name: `prod-eu-1/node-${a}`,
      Type: 'L3_L4',
    };
    if (kind < 0.5) {
      flow = {
        ...base,
        verdict: 'FORWARDED',
        IP: { source: ipA, destination: ipB, ipVersion: 'IPv4' },
        l4: { TCP: { source_port: sport, destination_port: dport, flags: { PSH: true, ACK: true } } },
        source: src,
        destination: dst,
        event_type: { type: 4, sub_type: 3 },
        traffic_direction: 'EGRESS',
        trace_observation_point: rand() < 0.5 ? 'TO_ENDPOINT' : 'FROM_ENDPOINT',
        is_reply: false,
        interface: { index: 29, name: 'lxc0c465a40f24b' },
        Summary: 'TCP Flags: ACK, PSH',
      };
    } else if (kind < 0.75) {
      flow = {
        ...base,
        verdict: 'FORWARDED',
        IP: { source: ipB, destination: ipA, ipVersion: 'IPv4' },
        l4: { TCP: { source_port: dport, destination_port: sport, flags: { ACK: true } } },
        source: dst,
        destination: src,
        event_type: { type: 4 },
        traffic_direction: 'INGRESS',
        trace_observation_point: 'TO_STACK',
        is_reply: true,
        Summary: 'TCP Flags: ACK',
      };
    } else if (kind < 0.85) {
      flow = {
        ...base,
        verdict: 'FORWARDED',
        IP: { source: ipA, destination: ipB, ipVersion: 'IPv4' },
        l4: { TCP: { source_port: sport, destination_port: dport, flags: { SYN: true } } },
        source: src,
        destination: dst,
        event_type: { type: 5 },
        traffic_direction: 'INGRESS',
        policy_match_type: 2,
        is_reply: false,
        Summary: 'TCP Flags: SYN',
      };
    } else if (kind < 0.93) {
      flow = {
        ...base,
        verdict: 'FORWARDED',
        Type: 'L7',
        IP: { source: ipA, destination: '10.96.0.10', ipVersion: 'IPv4' },
        l4: { UDP: { source_port: sport, destination_port: 53 } },
        source: src,
        destination: dnsPod,
        destination_names: [],
        l7: {
          type: 'REQUEST',
          latency_ns: '0',
          dns: { query: `${APPS[b]}.${nsB}.svc.cluster.local.`, qtypes: ['A'], observation_source: 'proxy' },
        },
        event_type: { type: 129 },
        traffic_direction: 'EGRESS',
        is_reply: false,
        Summary: `DNS Query ${APPS[b]}.${nsB}.svc.cluster.local. A`,
      };
    } else if (kind < 0.97) {
      flow = {
        ...base,
        verdict: 'DROPPED',
        drop_reason: 133,
        drop_reason_desc: 'POLICY_DENIED',
        IP: { source: ipA, destination: ipB, ipVersion: 'IPv4' },
        l4: { TCP: { source_port: sport, destination_port: dport, flags: { SYN: true } } },
        source: src,
        destination: dst,
        event_type: { type: 1, sub_type: 133 },
        traffic_direction: 'INGRESS',
        Summary: 'TCP Flags: SYN',
      };
    } else {
      flow = {
        ...base,
        verdict: 'FORWARDED',
        IP: { source: `fd00::${a}:${b}`, destination: `fd00::${b}:1`, ipVersion: 'IPv6' },
        l4: { ICMPv6: { type: 128 } },
        source: src,
        destination: { identity: 2, labels: ['reserved:world'] },
        destination_names: ['api.example.com'],
        event_type: { type: 4 },
        traffic_direction: 'EGRESS',
        is_reply: false,
        Summary: 'ICMPv6 EchoRequest',
      };
    }
    out.push(JSON.stringify({ flow, node_name: flow.node_name, time }));
  }
  return out;
}

/**
 * Lines per second of `fn` over every line of the blocks; the line splitting is the same for every
 * contender.
 */
interface Rate {
  /** Lines per wall-clock second. */
  wall: number;
  /** Lines per second of process CPU time (user + system), less sensitive to a busy machine. */
  cpu: number;
}

function rate(total: number, t0: number, c0: NodeJS.CpuUsage): Rate {
  const dt = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { wall: (total / dt) * 1000, cpu: (total / (c.user + c.system)) * 1e6 };
}

function best(a: Rate, b: Rate): Rate {
  return { wall: Math.max(a.wall, b.wall), cpu: Math.max(a.cpu, b.cpu) };
}

function timeRound(blocks: string[], total: number, fn: (line: string) => unknown): Rate {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  let sink = 0;
  for (const block of blocks) {
    let start = 0;
    for (;;) {
      const nl = block.indexOf('\n', start);
      if (nl < 0) break;
      if (fn(block.slice(start, nl)) !== undefined) sink++;
      start = nl + 1;
    }
  }
  if (sink !== total) throw new Error('benchmark lost lines');
  return rate(total, t0, c0);
}

/** The reader's path: lines scanned in place inside the block (copied only on fallback). */
function timeScanner(blocks: string[], total: number): Rate {
  resetScannerMemo();
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  let sink = 0;
  for (const block of blocks) {
    let start = 0;
    for (;;) {
      const nl = block.indexOf('\n', start);
      if (nl < 0) break;
      const r = parseHubbleLineAt(block, start, nl);
      if (r.kind === 'flow') sink++;
      start = nl + 1;
    }
  }
  if (sink !== total) throw new Error('benchmark lost lines');
  return rate(total, t0, c0);
}

/** The reader's path: blocks of bytes through the WebAssembly scanner (odd lines parsed one by one). */
function timeBytes(blocks: Buffer[], total: number): Rate {
  resetWasmScanner();
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  let sink = 0;
  for (const block of blocks) {
    scanHubbleBlock(block, 0, block.length, (result, start, end) => {
      const r = result ?? parseHubbleLine(block.toString('utf8', start, end));
      if (r.kind === 'flow') sink++;
    });
  }
  if (sink !== total) throw new Error('benchmark lost lines');
  return rate(total, t0, c0);
}

export async function benchIngest(
  opts: { lines: number; rounds?: number } = { lines: 100_000 },
): Promise<{ name: string; value: number; unit: string }[]> {
  const lines = generateHubbleLines(opts.lines);
  const bytes = lines.reduce((s, l) => s + l.length, 0);
  const blocks = toBlocks(lines);
  const byteBlocks = blocks.map((b) => Buffer.from(b, 'utf8'));
  const n = lines.length;
  const rounds = opts.rounds ?? 7;
  // Sanity: the scanner path gives flows for these lines.
  if (parseHubbleLine(lines[0]!).kind !== 'flow') throw new Error('generated line did not parse');
  const zero: Rate = { wall: 0, cpu: 0 };
  let scanner = zero;
  let bytesScanner = zero;
  let parse = zero;
  let slow = zero;
  for (let r = 0; r < rounds; r++) {
    scanner = best(scanner, timeScanner(blocks, n));
    bytesScanner = best(bytesScanner, timeBytes(byteBlocks, n));
    parse = best(
      parse,
      timeRound(blocks, n, (l) => JSON.parse(l) as unknown),
    );
    slow = best(slow, timeRound(blocks, n, parseHubbleLineSlow));
    await new Promise((resolve) => setImmediate(resolve));
  }
  const ratio = (x: number, y: number) => Math.round((x / y) * 100) / 100;
  return [
    {
      name: 'WebAssembly byte scanner + normalisation (CPU time)',
      value: Math.round(bytesScanner.cpu),
      unit: 'lines/s',
    },
    {
      name: 'WebAssembly byte scanner speed-up over JSON.parse (CPU time)',
      value: ratio(bytesScanner.cpu, parse.cpu),
      unit: 'x',
    },
    { name: 'hubble scanner + normalisation', value: Math.round(scanner.wall), unit: 'lines/s' },
    { name: 'JSON.parse only', value: Math.round(parse.wall), unit: 'lines/s' },
    { name: 'scanner speed-up over JSON.parse', value: ratio(scanner.wall, parse.wall), unit: 'x' },
    { name: 'JSON.parse + normalisation', value: Math.round(slow.wall), unit: 'lines/s' },
    { name: 'hubble scanner + normalisation (CPU time)', value: Math.round(scanner.cpu), unit: 'lines/s' },
    { name: 'JSON.parse only (CPU time)', value: Math.round(parse.cpu), unit: 'lines/s' },
    { name: 'scanner speed-up over JSON.parse (CPU time)', value: ratio(scanner.cpu, parse.cpu), unit: 'x' },
    { name: 'average line length', value: Math.round(bytes / lines.length), unit: 'bytes' },
  ];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  for (const r of await benchIngest({ lines: 100_000 })) console.log(`${r.name}: ${r.value} ${r.unit}`);
}
