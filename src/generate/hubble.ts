/**
 * Renders Hubble flow events as `hubble observe -o jsonpb` lines: one `GetFlowsResponse` per line, fields
 * in the proto's declaration order, zero values omitted, as the Go protojson encoder prints them. A
 * connection is rendered the way Cilium reports it: at the source node (egress, overlay or stack) and at
 * the destination node (ingress), with reply packets and, where a policy applies, policy-verdict events.
 */
import type { NodeInfo, PodInfo } from './cluster.ts';
import { CILIUM_CLUSTER } from './cluster.ts';

/** Labels Cilium leaves out of security identities (and so out of Hubble endpoint labels). */
const NON_IDENTITY_LABELS = new Set([
  'pod-template-hash',
  'controller-revision-hash',
  'pod-template-generation',
  'statefulset.kubernetes.io/pod-name',
  'apps.kubernetes.io/pod-index',
  'controller-uid',
  'job-name',
  'batch.kubernetes.io/controller-uid',
  'batch.kubernetes.io/job-name',
]);

/** Endpoint labels of a pod as Cilium prints them (`k8s:` source prefix, sorted). */
export function ciliumLabels(
  namespace: string,
  podLabels: Record<string, string>,
  serviceAccount: string,
): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(podLabels)) {
    if (!NON_IDENTITY_LABELS.has(k)) out.push(`k8s:${k}=${v}`);
  }
  out.push(
    `k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=${namespace}`,
    `k8s:io.cilium.k8s.policy.cluster=${CILIUM_CLUSTER}`,
    `k8s:io.cilium.k8s.policy.serviceaccount=${serviceAccount}`,
    `k8s:io.kubernetes.pod.namespace=${namespace}`,
  );
  return out.sort();
}

export type PeerKind = 'pod' | 'host' | 'world' | 'kube-apiserver' | 'health';

/** One side of a connection. Host-network pods are `host` peers of their node. */
export interface Peer {
  kind: PeerKind;
  ip: string;
  ipv6?: string;
  pod?: PodInfo;
  node?: NodeInfo;
  mac?: string;
}

const podLabelCache = new WeakMap<object, string>();

function podLabelsJson(pod: PodInfo): string {
  const w = pod.workload;
  let s = podLabelCache.get(w);
  if (s === undefined) {
    s = JSON.stringify(ciliumLabels(w.namespace, w.labels, w.serviceAccount));
    podLabelCache.set(w, s);
  }
  return s;
}

/** How the agent on `observer` prints the endpoint `peer`. */
export function endpointJson(peer: Peer, observer: NodeInfo, opts: { anonymous?: boolean } = {}): string {
  switch (peer.kind) {
    case 'pod': {
      const pod = peer.pod!;
      const w = pod.workload;
      if (opts.anonymous) return `{"identity":${w.identity},"labels":${podLabelsJson(pod)}}`;
      const workloads = observer.oldAgent
        ? ''
        : `,"workloads":[{"name":${JSON.stringify(w.hubbleWorkload.name)},"kind":"${w.hubbleWorkload.kind}"}]`;
      if (pod.node === observer) {
        return `{"ID":${pod.endpointId},"identity":${w.identity},"namespace":"${pod.namespace}","labels":${podLabelsJson(pod)},"pod_name":"${pod.name}"${workloads}}`;
      }
      if (observer.oldAgent) return `{"identity":${w.identity},"labels":${podLabelsJson(pod)}}`;
      return `{"identity":${w.identity},"namespace":"${pod.namespace}","labels":${podLabelsJson(pod)},"pod_name":"${pod.name}"${workloads}}`;
    }
    case 'host':
      return peer.node === observer
        ? '{"identity":1,"labels":["reserved:host"]}'
        : '{"identity":6,"labels":["reserved:remote-node"]}';
    case 'kube-apiserver':
      return peer.node === observer
        ? '{"identity":1,"labels":["reserved:host","reserved:kube-apiserver"]}'
        : '{"identity":7,"labels":["reserved:kube-apiserver","reserved:remote-node"]}';
    case 'health':
      return peer.node === observer
        ? '{"ID":132,"identity":4,"labels":["reserved:health"]}'
        : '{"identity":4,"labels":["reserved:health"]}';
    case 'world':
      return '{"identity":2,"labels":["reserved:world"]}';
  }
}

/** RFC 3339 with nanoseconds, from microseconds since the epoch. */
let lastSecond = -1;
let lastPrefix = '';

export function formatTime(us: number): string {
  const second = Math.floor(us / 1_000_000);
  if (second !== lastSecond) {
    lastSecond = second;
    lastPrefix = new Date(second * 1000).toISOString().slice(0, 19); // 2026-03-02T10:00:00
  }
  const frac = String(us % 1_000_000).padStart(6, '0');
  return `${lastPrefix}.${frac}${(us * 37) % 10}00Z`;
}

export type L4Proto = 'TCP' | 'UDP' | 'ICMPv4' | 'ICMPv6';

export interface TcpFlags {
  FIN?: boolean;
  SYN?: boolean;
  RST?: boolean;
  PSH?: boolean;
  ACK?: boolean;
}

function flagsJson(f: TcpFlags): string {
  const parts: string[] = [];
  if (f.FIN) parts.push('"FIN":true');
  if (f.SYN) parts.push('"SYN":true');
  if (f.RST) parts.push('"RST":true');
  if (f.PSH) parts.push('"PSH":true');
  if (f.ACK) parts.push('"ACK":true');
  return `{${parts.join(',')}}`;
}

function flagsSummary(f: TcpFlags): string {
  const names: string[] = [];
  if (f.ACK) names.push('ACK');
  if (f.FIN) names.push('FIN');
  if (f.PSH) names.push('PSH');
  if (f.RST) names.push('RST');
  if (f.SYN) names.push('SYN');
  return `TCP Flags: ${names.join(', ')}`;
}

const ICMP_NAMES: Record<string, string> = {
  'ICMPv4:8': 'EchoRequest',
  'ICMPv4:0': 'EchoReply',
  'ICMPv4:3': 'DestinationUnreachable',
  'ICMPv6:128': 'EchoRequest',
  'ICMPv6:129': 'EchoReply',
  'ICMPv6:133': 'RouterSolicitation',
};

/** The `l4` object and the `Summary` text of a packet. */
export function l4Json(proto: L4Proto, sport: number, dport: number, flags: TcpFlags = {}): [string, string] {
  switch (proto) {
    case 'TCP': {
      const fl = flagsJson(flags);
      return [
        `{"TCP":{"source_port":${sport},"destination_port":${dport}${fl === '{}' ? '' : `,"flags":${fl}`}}}`,
        flagsSummary(flags),
      ];
    }
    case 'UDP':
      return [`{"UDP":{"source_port":${sport},"destination_port":${dport}}}`, 'UDP'];
    case 'ICMPv4':
    case 'ICMPv6': {
      // dport carries the ICMP type; zero is omitted (an echo reply is `{"ICMPv4":{}}`).
      const body = dport === 0 ? '{}' : `{"type":${dport}}`;
      return [`{"${proto}":${body}}`, `${proto} ${ICMP_NAMES[`${proto}:${dport}`] ?? `Type ${dport}`}`];
    }
  }
}

export type ObservationPoint = 'TO_ENDPOINT' | 'FROM_ENDPOINT' | 'TO_STACK' | 'TO_OVERLAY' | 'TO_PROXY';
const POINT_SUBTYPE: Record<ObservationPoint, number> = {
  TO_ENDPOINT: 0,
  TO_PROXY: 1,
  TO_STACK: 3,
  TO_OVERLAY: 4,
  FROM_ENDPOINT: 5,
};

/** Everything one flow line can carry; absent fields are omitted from the output. */
export interface FlowEvent {
  timeUs: number;
  uuid?: string;
  verdict: 'FORWARDED' | 'DROPPED' | 'REDIRECTED';
  dropReason?: { code: number; desc: string };
  ethernet?: [string, string];
  ipSrc: string;
  ipDst: string;
  l4: string;
  source: string;
  destination: string;
  type: 'L3_L4' | 'L7';
  node: string;
  sourceNames?: string[];
  destinationNames?: string[];
  l7?: string;
  reply?: boolean;
  eventType: number;
  subType?: number;
  sourceService?: { name: string; namespace: string };
  destinationService?: { name: string; namespace: string };
  direction?: 'INGRESS' | 'EGRESS';
  policyMatchType?: number;
  point?: ObservationPoint;
  traceReason?: 'NEW' | 'ESTABLISHED' | 'REPLY';
  isReply?: boolean;
  iface?: { index: number; name: string };
  summary: string;
}

function svcJson(s: { name: string; namespace: string }): string {
  return `{"name":"${s.name}","namespace":"${s.namespace}"}`;
}

/** One `GetFlowsResponse` line carrying a flow. */
export function flowLine(e: FlowEvent): string {
  const t = formatTime(e.timeUs);
  let s = `{"flow":{"time":"${t}"`;
  if (e.uuid) s += `,"uuid":"${e.uuid}"`;
  s += `,"verdict":"${e.verdict}"`;
  if (e.dropReason) s += `,"drop_reason":${e.dropReason.code}`;
  if (e.ethernet) s += `,"ethernet":{"source":"${e.ethernet[0]}","destination":"${e.ethernet[1]}"}`;
  const v6 = e.ipSrc.includes(':');
  s += `,"IP":{"source":"${e.ipSrc}","destination":"${e.ipDst}","ipVersion":"${v6 ? 'IPv6' : 'IPv4'}"}`;
  s += `,"l4":${e.l4},"source":${e.source},"destination":${e.destination},"Type":"${e.type}","node_name":"${e.node}"`;
  if (e.sourceNames) s += `,"source_names":${JSON.stringify(e.sourceNames)}`;
  if (e.destinationNames) s += `,"destination_names":${JSON.stringify(e.destinationNames)}`;
  if (e.l7) s += `,"l7":${e.l7}`;
  if (e.reply) s += ',"reply":true';
  s += `,"event_type":{"type":${e.eventType}${e.subType ? `,"sub_type":${e.subType}` : ''}}`;
  if (e.sourceService) s += `,"source_service":${svcJson(e.sourceService)}`;
  if (e.destinationService) s += `,"destination_service":${svcJson(e.destinationService)}`;
  if (e.direction) s += `,"traffic_direction":"${e.direction}"`;
  if (e.policyMatchType) s += `,"policy_match_type":${e.policyMatchType}`;
  if (e.point) s += `,"trace_observation_point":"${e.point}"`;
  if (e.traceReason) s += `,"trace_reason":"${e.traceReason}"`;
  if (e.dropReason) s += `,"drop_reason_desc":"${e.dropReason.desc}"`;
  if (e.isReply !== undefined) s += `,"is_reply":${e.isReply}`;
  if (e.iface) s += `,"interface":{"index":${e.iface.index},"name":"${e.iface.name}"}`;
  s += `,"Summary":${JSON.stringify(e.summary)}},"node_name":"${e.node}","time":"${t}"}`;
  return s;
}

export function nodeStatusLine(
  timeUs: number,
  state: 'NODE_CONNECTED' | 'NODE_UNAVAILABLE' | 'NODE_GONE' | 'NODE_ERROR',
  nodes: string[],
  message?: string,
): string {
  const t = formatTime(timeUs);
  const msg = message ? `,"message":${JSON.stringify(message)}` : '';
  return `{"node_status":{"state_change":"${state}","node_names":${JSON.stringify(nodes)}${msg}},"node_name":"hubble-relay","time":"${t}"}`;
}

export function lostEventsLine(
  timeUs: number,
  source: 'PERF_EVENT_RING_BUFFER' | 'OBSERVER_EVENTS_QUEUE' | 'HUBBLE_RING_BUFFER',
  lost: number,
  node: string,
  cpu?: number,
): string {
  const t = formatTime(timeUs);
  const cpuPart = cpu !== undefined ? `,"cpu":${cpu}` : '';
  return `{"lost_events":{"source":"${source}","num_events_lost":"${lost}"${cpuPart}},"node_name":"${node}","time":"${t}"}`;
}

export interface Connection {
  src: Peer;
  dst: Peer;
  proto: L4Proto;
  /** Responder port; for ICMP the request type (8 echo). */
  dport: number;
  sport: number;
  /** Start, microseconds since the epoch. */
  timeUs: number;
  /** Use the peers' IPv6 addresses. */
  v6?: boolean;
  /** Kubernetes Service the client addressed (the socket load balancer already picked the backend). */
  service?: { name: string; namespace: string };
  /** Names of the destination from DNS (world peers). */
  destinationNames?: string[];
  /** The destination enforces an ingress policy: emit policy-verdict events (L3+L4 match by default). */
  ingressPolicy?: { matchType: number };
  /** Dropped by the destination's ingress policy (the SYN is retried twice). */
  denied?: boolean;
  /** Also emit a data exchange (PSH/ACK) after the handshake. */
  data?: boolean;
  /** The destination side does not know the source's pod (remote metadata missing): only identity. */
  anonymousSourceAtDestination?: boolean;
  /** The exporter masked all endpoint metadata on the destination side: `"source":{}`. */
  bareSourceAtDestination?: boolean;
}

/** Per-run counters for flow uuids (cheap and unique: a random prefix and a sequence number). */
export class FlowIds {
  private seq = 0;
  private readonly prefix: string;
  constructor(prefix: string) {
    this.prefix = prefix;
  }
  next(): string {
    const n = (this.seq++).toString(16).padStart(12, '0');
    return `${this.prefix}-${n}`;
  }
}

/** Where a peer's packets are observed: the node of a (non-host-network) pod; nothing else runs an agent endpoint. */
function endpointNode(p: Peer): NodeInfo | undefined {
  return p.kind === 'pod' ? p.pod!.node : undefined;
}

function peerIP(p: Peer, v6: boolean): string {
  return v6 ? (p.ipv6 ?? p.ip) : p.ip;
}

function peerMac(p: Peer, gateway: string): string {
  return p.kind === 'pod' ? p.pod!.mac : (p.mac ?? gateway);
}

/**
 * All the lines Cilium reports for one connection, in time order. Lines from a node with an old agent
 * carry only the legacy `reply` field and no `uuid`, `is_reply`, `trace_reason` or `workloads`.
 */
export function connectionLines(c: Connection, ids: FlowIds): string[] {
  const out: string[] = [];
  const v6 = c.v6 === true;
  const srcNode = endpointNode(c.src);
  const dstNode = endpointNode(c.dst);
  const srcIP = peerIP(c.src, v6);
  const dstIP = peerIP(c.dst, v6);
  const dstHome = dstNode ?? c.dst.node;
  const crossNode = srcNode !== undefined && dstHome !== undefined && dstHome !== srcNode;
  let t = c.timeUs;
  const tick = (us: number) => (t += us);

  // Each endpoint is printed the same way by the same node: render it once per connection.
  const views: [Peer, NodeInfo, string][] = [];
  const view = (p: Peer, observer: NodeInfo): string => {
    for (const v of views) if (v[0] === p && v[1] === observer) return v[2];
    const json = endpointJson(p, observer);
    views.push([p, observer, json]);
    return json;
  };

  const emit = (
    observer: NodeInfo,
    reply: boolean,
    fields: Partial<FlowEvent> & Pick<FlowEvent, 'l4' | 'summary' | 'eventType'>,
  ) => {
    const from = reply ? c.dst : c.src;
    const to = reply ? c.src : c.dst;
    const atRemoteDestination = !reply && observer === dstNode && observer !== srcNode;
    const fromJson =
      atRemoteDestination && c.bareSourceAtDestination
        ? '{}'
        : atRemoteDestination && c.anonymousSourceAtDestination === true
          ? endpointJson(from, observer, { anonymous: true })
          : view(from, observer);
    const old = observer.oldAgent;
    const e: FlowEvent = {
      timeUs: t,
      uuid: old ? undefined : ids.next(),
      verdict: fields.verdict ?? 'FORWARDED',
      dropReason: fields.dropReason,
      ethernet: [peerMac(from, observer.mac), peerMac(to, observer.mac)],
      ipSrc: reply ? dstIP : srcIP,
      ipDst: reply ? srcIP : dstIP,
      l4: fields.l4,
      source: fromJson,
      destination: view(to, observer),
      type: 'L3_L4',
      node: observer.name,
      sourceNames: reply ? c.destinationNames : undefined,
      destinationNames: reply ? undefined : c.destinationNames,
      reply: reply || undefined,
      eventType: fields.eventType,
      subType: fields.subType,
      sourceService: reply ? c.service : undefined,
      destinationService: reply ? undefined : c.service,
      direction: fields.direction,
      policyMatchType: fields.policyMatchType,
      point: fields.point,
      traceReason: old ? undefined : fields.traceReason,
      isReply: old ? undefined : fields.isReply,
      iface: fields.iface,
      summary: fields.summary,
    };
    out.push(flowLine(e));
  };

  const pkt = (reply: boolean, flags: TcpFlags): [string, string] => {
    if (c.proto === 'TCP' || c.proto === 'UDP') {
      return reply ? l4Json(c.proto, c.dport, c.sport, flags) : l4Json(c.proto, c.sport, c.dport, flags);
    }
    const echoReply = c.proto === 'ICMPv4' ? 0 : 129;
    return l4Json(c.proto, 0, reply ? echoReply : c.dport);
  };

  const request = (flags: TcpFlags, reason: 'NEW' | 'ESTABLISHED') => {
    const [l4, summary] = pkt(false, flags);
    if (srcNode) {
      emit(srcNode, false, {
        l4,
        summary,
        eventType: 4,
        subType: POINT_SUBTYPE.FROM_ENDPOINT,
        direction: 'EGRESS',
        point: 'FROM_ENDPOINT',
        traceReason: reason,
        isReply: false,
      });
      tick(9);
      if (crossNode) {
        emit(srcNode, false, {
          l4,
          summary,
          eventType: 4,
          subType: POINT_SUBTYPE.TO_OVERLAY,
          point: 'TO_OVERLAY',
          iface: { index: 6, name: 'cilium_vxlan' },
        });
        tick(180 + (t % 300));
      } else if (dstNode === undefined) {
        emit(srcNode, false, {
          l4,
          summary,
          eventType: 4,
          subType: POINT_SUBTYPE.TO_STACK,
          direction: 'EGRESS',
          point: 'TO_STACK',
          traceReason: reason,
          isReply: false,
        });
        tick(15);
      }
    }
    return [l4, summary] as const;
  };

  const deliver = (l4: string, summary: string, reason: 'NEW' | 'ESTABLISHED') => {
    if (!dstNode) return;
    emit(dstNode, false, {
      l4,
      summary,
      eventType: 4,
      direction: 'INGRESS',
      point: 'TO_ENDPOINT',
      traceReason: reason,
      isReply: false,
      iface: c.dst.pod!.iface,
    });
    tick(40 + (t % 90));
  };

  const respond = (flags: TcpFlags) => {
    const [l4, summary] = pkt(true, flags);
    if (dstNode) {
      emit(dstNode, true, {
        l4,
        summary,
        eventType: 4,
        subType: POINT_SUBTYPE.FROM_ENDPOINT,
        direction: 'INGRESS',
        point: 'FROM_ENDPOINT',
        traceReason: 'REPLY',
        isReply: true,
      });
      tick(crossNode ? 200 + (t % 250) : 12);
    } else {
      tick(dstIP.startsWith('10.') ? 300 : 9_000 + (t % 20_000));
    }
    if (srcNode) {
      emit(srcNode, true, {
        l4,
        summary,
        eventType: 4,
        direction: 'EGRESS',
        point: 'TO_ENDPOINT',
        traceReason: 'REPLY',
        isReply: true,
        iface: c.src.pod!.iface,
      });
      tick(25);
    }
  };

  const tcp = c.proto === 'TCP';
  const synFlags: TcpFlags = tcp ? { SYN: true } : {};
  if (c.denied) {
    for (let attempt = 0; attempt < 3; attempt++) {
      const [l4, summary] = request(synFlags, 'NEW');
      if (dstNode) {
        const drop = { code: 133, desc: 'POLICY_DENIED' };
        emit(dstNode, false, {
          verdict: 'DROPPED',
          dropReason: drop,
          l4,
          summary,
          eventType: 5,
          direction: 'INGRESS',
          isReply: false,
        });
        emit(dstNode, false, {
          verdict: 'DROPPED',
          dropReason: drop,
          l4,
          summary,
          eventType: 1,
          subType: 133,
          direction: 'INGRESS',
          isReply: false,
        });
      }
      tick(attempt === 0 ? 1_000_000 : 2_000_000);
    }
    return out;
  }

  const [l4, summary] = request(synFlags, 'NEW');
  if (dstNode && c.ingressPolicy) {
    emit(dstNode, false, {
      l4,
      summary,
      eventType: 5,
      direction: 'INGRESS',
      policyMatchType: c.ingressPolicy.matchType,
      isReply: false,
    });
    tick(3);
  }
  deliver(l4, summary, 'NEW');
  respond(tcp ? { SYN: true, ACK: true } : {});
  if (c.data && tcp) {
    const [dl4, dsum] = request({ PSH: true, ACK: true }, 'ESTABLISHED');
    deliver(dl4, dsum, 'ESTABLISHED');
    respond({ PSH: true, ACK: true });
  }
  return out;
}

export interface DnsExchange {
  client: Peer;
  server: Peer;
  query: string;
  qtype: 'A' | 'AAAA';
  /** Answer addresses; empty with rcode 3 for NXDOMAIN. */
  ips: string[];
  ttl: number;
  rcode: number;
  sport: number;
  timeUs: number;
  /** The Service the client addressed (kube-dns). */
  service?: { name: string; namespace: string };
}

/**
 * The L7 DNS request/response pair Cilium's DNS proxy reports at the client's node (when a DNS-aware
 * policy applies to the client): `Type: L7`, `event_type.type=129`, UDP port 53.
 */
export function dnsLines(d: DnsExchange, ids: FlowIds): string[] {
  const node = d.client.pod!.node;
  const q = d.query.endsWith('.') ? d.query : `${d.query}.`;
  const cl = endpointJson(d.client, node);
  const sv = endpointJson(d.server, node);
  const base = {
    verdict: 'FORWARDED' as const,
    type: 'L7' as const,
    node: node.name,
    eventType: 129,
    direction: 'EGRESS' as const,
  };
  const req: FlowEvent = {
    ...base,
    timeUs: d.timeUs,
    ...(node.oldAgent ? {} : { uuid: ids.next() }),
    ipSrc: d.client.ip,
    ipDst: d.server.ip,
    l4: `{"UDP":{"source_port":${d.sport},"destination_port":53}}`,
    source: cl,
    destination: sv,
    l7: `{"type":"REQUEST","dns":{"query":"${q}","observation_source":"proxy","qtypes":["${d.qtype}"]}}`,
    ...(d.service ? { destinationService: d.service } : {}),
    ...(node.oldAgent ? {} : { isReply: false }),
    summary: `DNS Query ${q} ${d.qtype}`,
  };
  const latencyNs = 180_000 + ((d.timeUs * 7919) % 2_400_000);
  const ips = d.ips.length > 0 ? `,"ips":${JSON.stringify(d.ips)}` : '';
  const rcode = d.rcode !== 0 ? `,"rcode":${d.rcode}` : '';
  const rr = d.ips.length > 0 ? `,"rrtypes":["${d.qtype}"]` : '';
  const answer =
    d.rcode === 3
      ? `DNS Answer RCode: Non-Existent Domain TTL: ${d.ttl} (Proxy ${q} ${d.qtype})`
      : `DNS Answer "${d.ips.join(',')}" TTL: ${d.ttl} (Proxy ${q} ${d.qtype})`;
  const resp: FlowEvent = {
    ...base,
    timeUs: d.timeUs + Math.floor(latencyNs / 1000),
    ...(node.oldAgent ? {} : { uuid: ids.next() }),
    ipSrc: d.server.ip,
    ipDst: d.client.ip,
    l4: `{"UDP":{"source_port":53,"destination_port":${d.sport}}}`,
    source: sv,
    destination: cl,
    l7: `{"type":"RESPONSE","latency_ns":"${latencyNs}","dns":{"query":"${q}"${ips},"ttl":${d.ttl},"observation_source":"proxy"${rcode},"qtypes":["${d.qtype}"]${rr}}}`,
    reply: true,
    ...(d.service ? { sourceService: d.service } : {}),
    ...(node.oldAgent ? {} : { isReply: true }),
    summary: answer,
  };
  return [flowLine(req), flowLine(resp)];
}

/** The envelope time of a line this module rendered (always the last field). */
export function lineTime(line: string): string {
  return line.slice(line.lastIndexOf('"time":"') + 8, -2);
}
