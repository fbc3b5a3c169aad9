/**
 * Hubble input: `hubble observe -o jsonpb` lines (the `GetFlowsResponse` envelope or a bare `Flow`) and
 * `Flow` objects received over gRPC (@grpc/proto-loader with keepCase, longs: String, enums: String).
 *
 * Two steps, shared by the slow (JSON.parse) and the fast (scanner) path: *extract* reads and type-checks
 * the few fields used into a flat `HubbleFields` record, *finish* turns that record into a `Flow`.
 */
import { MAX_TIME_MS, asInteger, isIPAddress, isLoopbackIP, parseRfc3339, stripDot } from './common.ts';
import type { DirectionRule } from './direction.ts';
import { DIRECTION_RULES, direction, icmpRequestType } from './direction.ts';
import type { SkipReason } from './errors.ts';
import { FlowInputError, describeValue, wrongType } from './errors.ts';
import type { Flow, FlowEndpoint, Protocol, ReservedIdentity, Verdict } from './types.ts';
import { VERDICTS } from './types.ts';

// ---------------------------------------------------------------------------------------------
// Enumerations (cilium api/v1/flow/flow.proto)

const VERDICT_BY_NAME = new Map<string, Verdict>([
  ['VERDICT_UNKNOWN', 'UNKNOWN'],
  ...VERDICTS.slice(1).map((v) => [v, v] as [string, Verdict]),
]);
/**
 * The verdicts a Hubble flow takes, as its refusal of another lists them: by name (the default first,
 * VERDICT_UNKNOWN last, as the generic schema lists its own) or by number (the enum's order).
 */
const VERDICT_CHOICES = (() => {
  const named = [...VERDICTS.slice(1), 'VERDICT_UNKNOWN'];
  return `${named.slice(0, -1).join(', ')} or ${named.at(-1)!}, or a number from 0 to ${VERDICTS.length - 1}`;
})();

const TRACE_REASONS = [
  'TRACE_REASON_UNKNOWN',
  'NEW',
  'ESTABLISHED',
  'REPLY',
  'RELATED',
  'REOPENED',
  'SRV6_ENCAP',
  'SRV6_DECAP',
  'ENCRYPT_OVERLAY',
];
const L7_TYPES = ['UNKNOWN_L7_TYPE', 'REQUEST', 'RESPONSE', 'SAMPLE'];

const DROP_REASONS: Record<number, string> = {
  130: 'INVALID_SOURCE_MAC',
  131: 'INVALID_DESTINATION_MAC',
  132: 'INVALID_SOURCE_IP',
  133: 'POLICY_DENIED',
  134: 'INVALID_PACKET_DROPPED',
  135: 'CT_TRUNCATED_OR_INVALID_HEADER',
  136: 'CT_MISSING_TCP_ACK_FLAG',
  137: 'CT_UNKNOWN_L4_PROTOCOL',
  138: 'CT_CANNOT_CREATE_ENTRY_FROM_PACKET',
  139: 'UNSUPPORTED_L3_PROTOCOL',
  140: 'MISSED_TAIL_CALL',
  141: 'ERROR_WRITING_TO_PACKET',
  142: 'UNKNOWN_L4_PROTOCOL',
  143: 'UNKNOWN_ICMPV4_CODE',
  144: 'UNKNOWN_ICMPV4_TYPE',
  145: 'UNKNOWN_ICMPV6_CODE',
  146: 'UNKNOWN_ICMPV6_TYPE',
  147: 'ERROR_RETRIEVING_TUNNEL_KEY',
  148: 'ERROR_RETRIEVING_TUNNEL_OPTIONS',
  149: 'INVALID_GENEVE_OPTION',
  150: 'UNKNOWN_L3_TARGET_ADDRESS',
  151: 'STALE_OR_UNROUTABLE_IP',
  152: 'NO_MATCHING_LOCAL_CONTAINER_FOUND',
  153: 'ERROR_WHILE_CORRECTING_L3_CHECKSUM',
  154: 'ERROR_WHILE_CORRECTING_L4_CHECKSUM',
  155: 'CT_MAP_INSERTION_FAILED',
  156: 'INVALID_IPV6_EXTENSION_HEADER',
  157: 'IP_FRAGMENTATION_NOT_SUPPORTED',
  158: 'SERVICE_BACKEND_NOT_FOUND',
  160: 'NO_TUNNEL_OR_ENCAPSULATION_ENDPOINT',
  161: 'FAILED_TO_INSERT_INTO_PROXYMAP',
  162: 'REACHED_EDT_RATE_LIMITING_DROP_HORIZON',
  163: 'UNKNOWN_CONNECTION_TRACKING_STATE',
  164: 'LOCAL_HOST_IS_UNREACHABLE',
  165: 'NO_CONFIGURATION_AVAILABLE_TO_PERFORM_POLICY_DECISION',
  166: 'UNSUPPORTED_L2_PROTOCOL',
  167: 'NO_MAPPING_FOR_NAT_MASQUERADE',
  168: 'UNSUPPORTED_PROTOCOL_FOR_NAT_MASQUERADE',
  169: 'FIB_LOOKUP_FAILED',
  170: 'ENCAPSULATION_TRAFFIC_IS_PROHIBITED',
  171: 'INVALID_IDENTITY',
  172: 'UNKNOWN_SENDER',
  173: 'NAT_NOT_NEEDED',
  174: 'IS_A_CLUSTERIP',
  175: 'FIRST_LOGICAL_DATAGRAM_FRAGMENT_NOT_FOUND',
  176: 'FORBIDDEN_ICMPV6_MESSAGE',
  177: 'DENIED_BY_LB_SRC_RANGE_CHECK',
  178: 'SOCKET_LOOKUP_FAILED',
  179: 'SOCKET_ASSIGN_FAILED',
  180: 'PROXY_REDIRECTION_NOT_SUPPORTED_FOR_PROTOCOL',
  181: 'POLICY_DENY',
  182: 'VLAN_FILTERED',
  183: 'INVALID_VNI',
  184: 'INVALID_TC_BUFFER',
  185: 'NO_SID',
  186: 'MISSING_SRV6_STATE',
  187: 'NAT46',
  188: 'NAT64',
  189: 'AUTH_REQUIRED',
  190: 'CT_NO_MAP_FOUND',
  191: 'SNAT_NO_MAP_FOUND',
  192: 'INVALID_CLUSTER_ID',
  193: 'UNSUPPORTED_PROTOCOL_FOR_DSR_ENCAP',
  194: 'NO_EGRESS_GATEWAY',
  196: 'TTL_EXCEEDED',
  197: 'NO_NODE_ID',
  202: 'DROP_HOST_NOT_READY',
  203: 'DROP_EP_NOT_READY',
};

/** Reserved security identities by number (cilium pkg/identity/numericidentity.go). */
const RESERVED_BY_IDENTITY: Record<number, ReservedIdentity> = {
  1: 'host',
  2: 'world',
  3: 'unmanaged',
  4: 'health',
  5: 'init',
  6: 'remote-node',
  7: 'kube-apiserver',
  8: 'ingress',
  9: 'world',
  10: 'world',
};

/** `reserved:<name>` labels; when several are present the highest rank wins. */
const RESERVED_RANK: Record<string, [ReservedIdentity, number]> = {
  health: ['health', 9],
  'kube-apiserver': ['kube-apiserver', 8],
  host: ['host', 7],
  'remote-node': ['remote-node', 6],
  ingress: ['ingress', 5],
  world: ['world', 4],
  'world-ipv4': ['world', 4],
  'world-ipv6': ['world', 4],
  init: ['init', 3],
  unmanaged: ['unmanaged', 2],
  unknown: ['unknown', 1],
};

const L4_PROTOCOLS = new Set<string>(['TCP', 'UDP', 'SCTP', 'ICMPv4', 'ICMPv6']);

// ---------------------------------------------------------------------------------------------
// The flat record both paths produce

export interface HubbleEndpointFields {
  ip: string | undefined;
  port: number | undefined;
  namespace: string | undefined;
  pod: string | undefined;
  /** Labels already normalised (see addCiliumLabel); undefined when none were kept. */
  labels: string[] | undefined;
  /** Reserved identity named by a `reserved:` label. */
  reserved: ReservedIdentity | undefined;
  /**
   * The namespace an `io.kubernetes.pod.namespace=` label names (the first such label), which is the
   * endpoint's namespace when it has no `namespace` field (Hubble leaves it out on some endpoints).
   */
  labelNamespace: string | undefined;
  workloadName: string | undefined;
  workloadKind: string | undefined;
  /**
   * Set by the WebAssembly path: the workload record for workloadName and workloadKind, frozen and
   * shared by every endpoint that names that workload (newEndpoint builds one when unset).
   */
  workload: { kind: string; name: string } | undefined;
  identity: number | undefined;
  names: string[] | undefined;
  serviceName: string | undefined;
  serviceNamespace: string | undefined;
  /**
   * Set by the scanner when the endpoint's fields came from a remembered endpoint text: the record
   * built last time for that text, reused while the address is the same (see buildEndpoint).
   */
  built: BuiltEndpoint | undefined;
  /** Set by the WebAssembly path when `ip` is known to be an IP address (checked once per text). */
  ipValid: boolean | undefined;
}

/**
 * What an endpoint object gives on its own (without the flow's address, port, names or service), as
 * the scanners remember it per endpoint text.
 */
export interface EndpointTemplate {
  namespace: string | undefined;
  pod: string | undefined;
  labels: string[] | undefined;
  reserved: ReservedIdentity | undefined;
  identity: number | undefined;
  workloadName: string | undefined;
  workloadKind: string | undefined;
  /** A shared record of the workload, when the scanner keeps one (see HubbleEndpointFields). */
  workload?: { kind: string; name: string } | undefined;
  /** The FlowEndpoint built last from this text (finish reuses it while the address is the same). */
  built: BuiltEndpoint;
}

/** Fills the fields of a flow's endpoint from a remembered endpoint text's template. */
export function applyEndpointTemplate(e: HubbleEndpointFields, t: EndpointTemplate): void {
  e.namespace = t.namespace;
  e.pod = t.pod;
  // Shared and frozen: flows are plain data that nothing modifies.
  e.labels = t.labels;
  e.reserved = t.reserved;
  e.identity = t.identity;
  e.workloadName = t.workloadName;
  e.workloadKind = t.workloadKind;
  e.workload = t.workload;
  e.built = t.built;
}

/** The last FlowEndpoint built from one remembered endpoint text. */
export interface BuiltEndpoint {
  endpoint: FlowEndpoint | undefined;
  /**
   * True when this holder belongs to one endpoint text *and* one service (the WebAssembly scanner
   * keeps a holder per pair), so a record with that service may be reused too.
   */
  withService?: boolean;
}

export interface HubbleFields {
  /** 'flow.' for enveloped lines, '' for bare Flow objects; prefixes field paths in messages. */
  prefix: string;
  time: string | undefined;
  timeSeconds: number | undefined;
  timeNanos: number | undefined;
  /** Epoch milliseconds already computed by the WebAssembly scanner (wins over the texts). */
  timeMs: number | undefined;
  envelopeTime: string | undefined;
  verdict: string | number | undefined;
  dropReason: string | number | undefined;
  /** Name of the l4 member that was set ('TCP', 'UDP', ..., or an unsupported one such as 'VRRP'). */
  l4: string | undefined;
  icmpType: number | undefined;
  syn: boolean | undefined;
  ack: boolean | undefined;
  src: HubbleEndpointFields;
  dst: HubbleEndpointFields;
  l7Type: string | number | undefined;
  dnsQuery: string | undefined;
  reply: boolean | undefined;
  isReply: boolean | undefined;
  traceReason: string | number | undefined;
}

export function emptyEndpointFields(): HubbleEndpointFields {
  return {
    ip: undefined,
    port: undefined,
    namespace: undefined,
    pod: undefined,
    labels: undefined,
    reserved: undefined,
    labelNamespace: undefined,
    workloadName: undefined,
    workloadKind: undefined,
    workload: undefined,
    identity: undefined,
    names: undefined,
    serviceName: undefined,
    serviceNamespace: undefined,
    built: undefined,
    ipValid: undefined,
  };
}

export function emptyHubbleFields(prefix: string): HubbleFields {
  return {
    prefix,
    time: undefined,
    timeSeconds: undefined,
    timeNanos: undefined,
    timeMs: undefined,
    envelopeTime: undefined,
    verdict: undefined,
    dropReason: undefined,
    l4: undefined,
    icmpType: undefined,
    syn: undefined,
    ack: undefined,
    src: emptyEndpointFields(),
    dst: emptyEndpointFields(),
    l7Type: undefined,
    dnsQuery: undefined,
    reply: undefined,
    isReply: undefined,
    traceReason: undefined,
  };
}

function resetEndpoint(e: HubbleEndpointFields): void {
  e.ip = undefined;
  e.port = undefined;
  e.namespace = undefined;
  e.pod = undefined;
  e.labels = undefined;
  e.reserved = undefined;
  e.labelNamespace = undefined;
  e.workloadName = undefined;
  e.workloadKind = undefined;
  e.workload = undefined;
  e.identity = undefined;
  e.names = undefined;
  e.serviceName = undefined;
  e.serviceNamespace = undefined;
  e.built = undefined;
  e.ipValid = undefined;
}

/** Clears a record for reuse (the scanner fills one scratch record per line). */
export function resetHubbleFields(f: HubbleFields): HubbleFields {
  f.time = undefined;
  f.timeSeconds = undefined;
  f.timeNanos = undefined;
  f.timeMs = undefined;
  f.envelopeTime = undefined;
  f.verdict = undefined;
  f.dropReason = undefined;
  f.l4 = undefined;
  f.icmpType = undefined;
  f.syn = undefined;
  f.ack = undefined;
  resetEndpoint(f.src);
  resetEndpoint(f.dst);
  f.l7Type = undefined;
  f.dnsQuery = undefined;
  f.reply = undefined;
  f.isReply = undefined;
  f.traceReason = undefined;
  return f;
}

// ---------------------------------------------------------------------------------------------
// Results

export type HubbleEventKind = 'node_status' | 'lost_events' | 'agent_event' | 'debug_event';

export type HubbleResult =
  | { kind: 'flow'; flow: Flow; flipped: boolean; rule: DirectionRule }
  | { kind: 'event'; event: HubbleEventKind; lost: bigint }
  | { kind: 'skip'; reason: SkipReason }
  | { kind: 'bad'; error: FlowInputError };

function bad(error: FlowInputError): HubbleResult {
  return { kind: 'bad', error };
}

// ---------------------------------------------------------------------------------------------
// Slow path: extract from a parsed object

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads an optional member: null and undefined are both "absent" (protobuf JSON semantics). */
function objField(o: Obj, key: string, path: string): Obj | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (!isObj(v)) throw wrongType(path, 'an object', v);
  return v;
}

function strField(o: Obj, key: string, path: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw wrongType(path, 'a string', v);
  return v;
}

function boolField(o: Obj, key: string, path: string): boolean | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw wrongType(path, 'a boolean', v);
  return v;
}

function enumField(o: Obj, key: string, path: string): string | number | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' && typeof v !== 'number') throw wrongType(path, 'an enum name or number', v);
  return v;
}

function intField(o: Obj, key: string, path: string, max: number): number | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  const n = asInteger(v, 0, max);
  if (n === undefined) throw wrongType(path, `an integer from 0 to ${max}`, v);
  return n;
}

export function stringArray(o: Obj, key: string, path: string): string[] | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw wrongType(path, 'an array of strings', v);
  for (let i = 0; i < v.length; i++) {
    if (typeof v[i] !== 'string') throw wrongType(`${path}[${i}]`, 'a string', v[i]);
  }
  return v as string[];
}

function extractEndpoint(o: Obj, key: string, path: string, into: HubbleEndpointFields): void {
  const e = objField(o, key, path);
  if (!e) return;
  into.namespace = strField(e, 'namespace', `${path}.namespace`);
  into.pod = strField(e, 'pod_name', `${path}.pod_name`);
  const labels = stringArray(e, 'labels', `${path}.labels`);
  into.labels = undefined;
  into.reserved = undefined;
  into.labelNamespace = undefined;
  if (labels) for (const l of labels) addCiliumLabel(into, l);
  if (!into.namespace && into.labelNamespace) into.namespace = into.labelNamespace;
  into.identity = intField(e, 'identity', `${path}.identity`, 0xffffffff);
  const w = e.workloads;
  if (w !== undefined && w !== null) {
    if (!Array.isArray(w)) throw wrongType(`${path}.workloads`, 'an array of {name, kind}', w);
    if (w.length > 0) {
      const first: unknown = w[0];
      if (!isObj(first)) throw wrongType(`${path}.workloads[0]`, 'an object', first);
      into.workloadName = strField(first, 'name', `${path}.workloads[0].name`);
      into.workloadKind = strField(first, 'kind', `${path}.workloads[0].kind`);
    }
  }
}

export function extractService(o: Obj, key: string, path: string, into: HubbleEndpointFields): void {
  const s = objField(o, key, path);
  if (!s) return;
  into.serviceName = strField(s, 'name', `${path}.name`);
  into.serviceNamespace = strField(s, 'namespace', `${path}.namespace`);
}

/** Type-checks and copies the fields of a Flow object that normalisation reads. */
export function extractHubbleFields(flow: Obj, prefix: string, envelopeTime?: string): HubbleFields {
  const p = prefix;
  const f = emptyHubbleFields(prefix);
  f.envelopeTime = envelopeTime;
  const t = flow.time;
  if (typeof t === 'string') f.time = t;
  else if (isObj(t)) {
    f.timeSeconds = intField(t, 'seconds', `${p}time.seconds`, Number.MAX_SAFE_INTEGER) ?? 0;
    f.timeNanos = intField(t, 'nanos', `${p}time.nanos`, 999_999_999) ?? 0;
  } else if (t !== undefined && t !== null) {
    throw wrongType(`${p}time`, 'an RFC 3339 string or {seconds, nanos}', t);
  }
  f.verdict = enumField(flow, 'verdict', `${p}verdict`);
  f.dropReason = enumField(flow, 'drop_reason_desc', `${p}drop_reason_desc`);
  const ip = objField(flow, 'IP', `${p}IP`);
  if (ip) {
    f.src.ip = strField(ip, 'source', `${p}IP.source`);
    f.dst.ip = strField(ip, 'destination', `${p}IP.destination`);
  }
  const l4 = objField(flow, 'l4', `${p}l4`);
  if (l4) {
    for (const key of Object.keys(l4)) {
      const v = l4[key];
      if (key === 'protocol' || v === undefined || v === null) continue; // proto-loader's oneof name
      if (!isObj(v)) throw wrongType(`${p}l4.${key}`, 'an object', v);
      if (f.l4 !== undefined)
        throw new FlowInputError('bad-value', `${p}l4: more than one protocol (${f.l4}, ${key})`);
      f.l4 = key;
      const lp = `${p}l4.${key}`;
      if (key === 'ICMPv4' || key === 'ICMPv6') {
        f.icmpType = intField(v, 'type', `${lp}.type`, 255);
      } else if (key === 'TCP' || key === 'UDP' || key === 'SCTP') {
        f.src.port = intField(v, 'source_port', `${lp}.source_port`, 65535);
        f.dst.port = intField(v, 'destination_port', `${lp}.destination_port`, 65535);
        if (key === 'TCP') {
          const flags = objField(v, 'flags', `${lp}.flags`);
          if (flags) {
            f.syn = boolField(flags, 'SYN', `${lp}.flags.SYN`);
            f.ack = boolField(flags, 'ACK', `${lp}.flags.ACK`);
          }
        }
      }
    }
  }
  extractEndpoint(flow, 'source', `${p}source`, f.src);
  extractEndpoint(flow, 'destination', `${p}destination`, f.dst);
  f.src.names = stringArray(flow, 'source_names', `${p}source_names`);
  f.dst.names = stringArray(flow, 'destination_names', `${p}destination_names`);
  extractService(flow, 'source_service', `${p}source_service`, f.src);
  extractService(flow, 'destination_service', `${p}destination_service`, f.dst);
  const l7 = objField(flow, 'l7', `${p}l7`);
  if (l7) {
    f.l7Type = enumField(l7, 'type', `${p}l7.type`);
    const dns = objField(l7, 'dns', `${p}l7.dns`);
    if (dns) f.dnsQuery = strField(dns, 'query', `${p}l7.dns.query`);
  }
  f.reply = boolField(flow, 'reply', `${p}reply`);
  const ir = flow.is_reply;
  if (isObj(ir))
    f.isReply = boolField(ir, 'value', `${p}is_reply.value`) ?? false; // BoolValue over gRPC
  else f.isReply = boolField(flow, 'is_reply', `${p}is_reply`);
  f.traceReason = enumField(flow, 'trace_reason', `${p}trace_reason`);
  return f;
}

// ---------------------------------------------------------------------------------------------
// Finish: fields -> Flow

function enumName(v: string | number | undefined, names: readonly string[]): string | undefined {
  if (typeof v === 'number') return names[v];
  return v;
}

/** A flow's verdict from its `verdict` value (absent: UNKNOWN); undefined when it names none. */
export function verdictOf(v: string | number | undefined): Verdict | undefined {
  if (v === undefined) return 'UNKNOWN';
  if (typeof v === 'number') return VERDICTS[v];
  return VERDICT_BY_NAME.get(v);
}

/** The `trace_reason` name a value gives (numbers by the enum's order). */
export function traceReasonName(v: string | number | undefined): string | undefined {
  return enumName(v, TRACE_REASONS);
}

/** The `l7.type` name a value gives (numbers by the enum's order). */
export function l7TypeName(v: string | number | undefined): string | undefined {
  return enumName(v, L7_TYPES);
}

/** The reserved identity of an endpoint: from its labels, else from its identity number. */
export function reservedOf(
  reserved: ReservedIdentity | undefined,
  identity: number | undefined,
): ReservedIdentity | undefined {
  return reserved ?? (identity !== undefined ? RESERVED_BY_IDENTITY[identity] : undefined);
}

export interface LabelInfo {
  labels: string[];
  reserved: ReservedIdentity | undefined;
}

/**
 * Adds one raw Cilium label (`source:key=value`) to an endpoint: kept (its `key=value`), reserved (the
 * identity recorded in `e`), or dropped (the namespace of `io.kubernetes.pod.namespace=` recorded in
 * `e.labelNamespace`). The WebAssembly path applies the same rules to a label's bytes where they lie
 * (`ciliumLabelAt` in hubble-wasm.ts), and the scanner to its `k8s:` labels (`scanLabels`).
 */
export function addCiliumLabel(e: HubbleEndpointFields, raw: string): void {
  let from = 0;
  if (raw.startsWith(K8S_SOURCE)) {
    // Tested before the prefix is cut off: most of them are Cilium's, dropped without a copy.
    from = K8S_SOURCE.length;
  } else if (raw.startsWith(RESERVED_SOURCE)) {
    addReserved(e, raw.slice(RESERVED_SOURCE.length));
    return;
  } else {
    const colon = raw.indexOf(':');
    const eq = raw.indexOf('=');
    if (colon >= 0 && (eq < 0 || colon < eq)) return; // cidr:, fqdn:, container:, ... sources
  }
  // Cilium adds these to every endpoint; they are not the pod's own labels.
  for (const p of CILIUM_DERIVED_PREFIXES)
    if (raw.startsWith(p, from)) {
      if (p === POD_NAMESPACE_LABEL) e.labelNamespace ??= raw.slice(from + p.length);
      return;
    }
  (e.labels ??= []).push(raw.slice(from));
}

/** The source prefix of Kubernetes labels, cut off. */
export const K8S_SOURCE = 'k8s:';
/** The source prefix of a reserved identity label. */
export const RESERVED_SOURCE = 'reserved:';
/** The label Cilium gives every endpoint with its pod's namespace (after any `k8s:`). */
export const POD_NAMESPACE_LABEL = 'io.kubernetes.pod.namespace=';
/** Labels Cilium adds to every endpoint (after any `k8s:`), which are not the pod's own. */
export const CILIUM_DERIVED_PREFIXES = ['io.cilium.k8s.', POD_NAMESPACE_LABEL] as const;

/** Records a `reserved:<name>` label; with several, the highest-ranked identity wins. */
export function addReserved(e: HubbleEndpointFields, name: string): void {
  const r = RESERVED_RANK[name] ?? RESERVED_UNKNOWN;
  if (e.reserved === undefined || r[1] > RESERVED_RANK_OF[e.reserved]) e.reserved = r[0];
}

const RESERVED_UNKNOWN: [ReservedIdentity, number] = ['unknown', 1];
const RESERVED_RANK_OF: Record<ReservedIdentity, number> = {
  health: 9,
  'kube-apiserver': 8,
  host: 7,
  'remote-node': 6,
  ingress: 5,
  world: 4,
  init: 3,
  unmanaged: 2,
  unknown: 1,
};

/** Strips source prefixes and Cilium-derived labels; `reserved:*` becomes the reserved identity. */
export function normalizeCiliumLabels(raw: readonly string[]): LabelInfo {
  const e = emptyEndpointFields();
  for (const l of raw) addCiliumLabel(e, l);
  return { labels: e.labels ?? [], reserved: e.reserved };
}

/**
 * The FlowEndpoint of an endpoint. When its fields came from a remembered endpoint text and nothing
 * outside that text (names, service) adds to them, the record built last time for the same text and
 * address is returned again (frozen, like the remembered label arrays it holds: flows are plain data
 * that nothing modifies, so equal endpoints may be one object).
 */
function buildEndpoint(e: HubbleEndpointFields, ip: string): FlowEndpoint {
  const b = e.built;
  if (
    b === undefined ||
    (e.names !== undefined && e.names.length > 0) ||
    (e.serviceName !== undefined && b.withService !== true)
  )
    return newEndpoint(e, ip);
  const last = b.endpoint;
  if (last !== undefined && last.ip === ip) return last;
  const out = newEndpoint(e, ip);
  if (out.workload !== undefined) Object.freeze(out.workload);
  if (out.service !== undefined) Object.freeze(out.service);
  return (b.endpoint = Object.freeze(out));
}

// Which fields this gives a FlowEndpoint is mirrored by `endpointFromWords` and `sideFields` in
// hubble-wasm.ts (the duplicate check compares them with the record held): change them together.
function newEndpoint(e: HubbleEndpointFields, ip: string): FlowEndpoint {
  let out: FlowEndpoint;
  if (e.namespace && e.pod && e.workloadName && e.labels !== undefined) {
    // A pod's endpoint, the usual shape, in one literal: V8 keeps the properties a literal starts
    // with in the object itself, and those added later in a separate array (one more load, and a
    // cache miss, for every read of them).
    out = {
      ip,
      namespace: e.namespace,
      pod: e.pod,
      workload: e.workload ?? { kind: e.workloadKind ?? '', name: e.workloadName },
      labels: e.labels,
    };
  } else {
    out = { ip };
    if (e.namespace) out.namespace = e.namespace;
    if (e.pod) out.pod = e.pod;
    if (e.workloadName) out.workload = e.workload ?? { kind: e.workloadKind ?? '', name: e.workloadName };
    if (e.labels !== undefined) out.labels = e.labels;
  }
  const reserved = reservedOf(e.reserved, e.identity);
  if (reserved !== undefined) out.reserved = reserved;
  if (e.names !== undefined && e.names.length > 0) out.names = e.names.map(stripDot);
  if (e.serviceName)
    out.service = { namespace: e.serviceNamespace || e.namespace || '', name: e.serviceName };
  return out;
}

/** The endpoint's address, checked; `prefix` + `field` names it in errors (joined only then). */
function ipOf(e: HubbleEndpointFields, prefix: string, field: string): string {
  const ip = e.ip;
  if (ip === undefined || ip === '')
    throw new FlowInputError('missing-field', `${prefix}${field} is missing`);
  if (e.ipValid !== true && !isIPAddress(ip))
    throw new FlowInputError('bad-value', `${prefix}${field}: not an IP address: ${JSON.stringify(ip)}`);
  return ip;
}

/** `YYYY-MM-DDTHH` of the last timestamp that took the slow path, and its epoch milliseconds. */
let hourText = '';
let hourMs = 0;

/**
 * parseRfc3339 with a fast path for the shape Hubble writes, `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z`: the
 * epoch of the `YYYY-MM-DDTHH` prefix is remembered (consecutive flows share it), minutes, seconds
 * and milliseconds are added to it. Anything else takes parseRfc3339, so results are always its.
 */
export function parseHubbleTime(s: string): number {
  const n = s.length;
  const h = hourText;
  if (n < 20 || n > 30 || h.length !== 13 || s.charCodeAt(n - 1) !== 90) return parseSlowTime(s);
  for (let i = 12; i >= 0; i--) if (s.charCodeAt(i) !== h.charCodeAt(i)) return parseSlowTime(s);
  const m1 = s.charCodeAt(14) - 48;
  const m2 = s.charCodeAt(15) - 48;
  const s1 = s.charCodeAt(17) - 48;
  const s2 = s.charCodeAt(18) - 48;
  if (
    s.charCodeAt(13) !== 58 ||
    s.charCodeAt(16) !== 58 ||
    m1 >>> 0 > 5 ||
    m2 >>> 0 > 9 ||
    s1 >>> 0 > 6 ||
    s2 >>> 0 > 9 ||
    (s1 === 6 && s2 !== 0)
  )
    return parseSlowTime(s);
  let ms = 0;
  if (n > 20) {
    // '.' then 1 to 9 digits, then the Z at n - 1.
    if (s.charCodeAt(19) !== 46 || n === 21) return parseSlowTime(s);
    for (let i = 20; i < n - 1; i++) {
      const d = s.charCodeAt(i) - 48;
      if (d >>> 0 > 9) return parseSlowTime(s);
      if (i < 23) ms = ms * 10 + d;
    }
    if (n === 22) ms *= 100;
    else if (n === 23) ms *= 10;
  } else if (s.charCodeAt(19) !== 90) return parseSlowTime(s);
  const sec = s1 === 6 ? 59 : s1 * 10 + s2;
  return hourMs + (m1 * 10 + m2) * 60_000 + sec * 1000 + ms;
}

function parseSlowTime(s: string): number {
  const t = parseRfc3339(s);
  if (s.length >= 20 && s.charCodeAt(13) === 58) {
    const prefix = s.slice(0, 13);
    const ms = parseRfc3339(prefix + ':00:00Z');
    if (!Number.isNaN(ms)) {
      hourText = (' ' + prefix).slice(1);
      hourMs = ms;
    }
  }
  return t;
}

/**
 * The drop reason a flow keeps: the name, for a DROPPED flow only (on any other verdict it is ignored).
 * A drop reason says why, not whether: one this version does not know (newer Cilium adds them) is kept
 * as given, or as `DROP_REASON_<n>` for a number, and never costs the flow. 0, `''` and
 * `DROP_REASON_UNKNOWN` are no reason. A number that is no enum number (not a 32-bit integer) is bad.
 */
function dropReasonOf(v: string | number, verdict: Verdict, p: string): string | undefined {
  let name: string | undefined;
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff)
      throw wrongType(`${p}drop_reason_desc`, 'an enum name or a 32-bit integer', v);
    if (v !== 0) name = DROP_REASONS[v] ?? `DROP_REASON_${v}`;
  } else if (v !== '' && v !== 'DROP_REASON_UNKNOWN') name = v;
  return verdict === 'DROPPED' ? name : undefined;
}

/** Turns extracted fields into a normalised, direction-corrected Flow. */
export function finishHubble(f: HubbleFields): HubbleResult {
  try {
    return finish(f);
  } catch (err) {
    if (err instanceof FlowInputError) return bad(err);
    throw err;
  }
}

function finish(f: HubbleFields): HubbleResult {
  const p = f.prefix;
  let time: number;
  if (f.timeMs !== undefined) time = f.timeMs;
  else if (f.time !== undefined || (f.timeSeconds === undefined && f.envelopeTime !== undefined)) {
    const text = f.time ?? f.envelopeTime!;
    time = parseHubbleTime(text);
    if (Number.isNaN(time))
      throw new FlowInputError(
        'bad-value',
        `${f.time !== undefined ? `${p}time` : 'time'}: not an RFC 3339 timestamp: ${JSON.stringify(text)}`,
      );
  } else if (f.timeSeconds !== undefined) {
    time = f.timeSeconds * 1000 + Math.floor((f.timeNanos ?? 0) / 1e6);
    // Only {seconds, nanos} can name a time a Date does not hold (RFC 3339 years end at 9999).
    if (time > MAX_TIME_MS)
      throw new FlowInputError(
        'bad-value',
        `${p}time: ${f.timeSeconds}${f.timeNanos ? `.${String(f.timeNanos).padStart(9, '0')}` : ''} seconds ` +
          `is out of range 0-${MAX_TIME_MS / 1000}`,
      );
  } else {
    throw new FlowInputError('missing-field', `${p}time is missing`);
  }
  const verdict = verdictOf(f.verdict);
  if (verdict === undefined)
    throw new FlowInputError(
      'unknown-enum',
      `${p}verdict: unknown value ${JSON.stringify(f.verdict)} (expected ${VERDICT_CHOICES})`,
    );
  const dropReason = f.dropReason === undefined ? undefined : dropReasonOf(f.dropReason, verdict, p);
  const srcIP = ipOf(f.src, p, 'IP.source');
  const dstIP = ipOf(f.dst, p, 'IP.destination');
  if (f.l4 === undefined) throw new FlowInputError('missing-field', `${p}l4 is missing`);
  if (!L4_PROTOCOLS.has(f.l4)) return { kind: 'skip', reason: 'unsupported-protocol' };
  const protocol = f.l4 as Protocol;
  let src = buildEndpoint(f.src, srcIP);
  let dst = buildEndpoint(f.dst, dstIP);
  if (src.reserved === 'health' || dst.reserved === 'health') return { kind: 'skip', reason: 'health' };
  // Not normally seen (Cilium's datapath is not on the loopback interface), skipped as in every format.
  if (isLoopbackIP(srcIP) || isLoopbackIP(dstIP)) return { kind: 'skip', reason: 'loopback' };
  const isIcmp = protocol === 'ICMPv4' || protocol === 'ICMPv6';
  let srcPort = isIcmp ? 0 : (f.src.port ?? 0);
  let port = isIcmp ? (f.icmpType ?? 0) : (f.dst.port ?? 0);
  const traceReason = traceReasonName(f.traceReason);
  const l7Type = l7TypeName(f.l7Type);
  const dir = direction(
    protocol,
    f.isReply,
    f.reply,
    traceReason,
    l7Type,
    f.syn === true,
    f.ack === true,
    srcPort,
    port,
    port,
  );
  const flipped = (dir & 1) === 1;
  if (flipped) {
    const e = src;
    src = dst;
    dst = e;
    if (isIcmp) port = icmpRequestType(protocol, port);
    else {
      const sp = srcPort;
      srcPort = port;
      port = sp;
    }
  }
  // Protobuf leaves a zero port out, so a flow without one says port 0: no connection is made to it,
  // and no policy can name it.
  if (port === 0 && !isIcmp)
    throw new FlowInputError(
      'bad-value',
      `${p}l4.${protocol}.${flipped ? 'source_port' : 'destination_port'}: 0 (or left out) is out of range ` +
        `1-65535 (the responder's port${flipped ? ': this flow is a reply' : ''})`,
    );
  // Fixed key order so that JSON output is byte-identical whichever path built the record. The usual
  // record in one literal, so that its properties are kept in the object itself (see newEndpoint).
  let flow: Flow;
  if (srcPort > 0 && dropReason === undefined && !f.dnsQuery)
    flow = { time, src, dst, protocol, port, srcPort, verdict, input: 'hubble' };
  else {
    flow = { time, src, dst, protocol, port } as Flow;
    if (srcPort > 0) flow.srcPort = srcPort;
    flow.verdict = verdict;
    if (dropReason !== undefined) flow.dropReason = dropReason;
    if (f.dnsQuery) flow.dnsQuery = stripDot(f.dnsQuery);
    flow.input = 'hubble';
  }
  return { kind: 'flow', flow, flipped, rule: DIRECTION_RULES[dir >> 1]! };
}

// ---------------------------------------------------------------------------------------------
// Public entry points

export interface NormalizeHubbleOptions {
  /** Time of the enclosing GetFlowsResponse, used when the Flow itself has none. */
  envelopeTime?: string;
  /** Prefix for field paths in error messages ('flow.' when the Flow came inside an envelope). */
  pathPrefix?: string;
}

/**
 * Normalises one parsed Hubble `Flow` object: from `JSON.parse` of jsonpb output, or from gRPC via
 * @grpc/proto-loader (`keepCase: true, longs: String, enums: String`; `time` as `{seconds, nanos}`,
 * `is_reply` as a BoolValue `{value}`).
 */
export function normalizeHubbleFlow(flow: unknown, opts: NormalizeHubbleOptions = {}): HubbleResult {
  const prefix = opts.pathPrefix ?? '';
  if (!isObj(flow)) return bad(wrongType(prefix ? prefix.slice(0, -1) : 'flow', 'an object', flow));
  let fields: HubbleFields;
  try {
    fields = extractHubbleFields(flow, prefix, opts.envelopeTime);
  } catch (err) {
    if (err instanceof FlowInputError) return bad(err);
    throw err;
  }
  return finishHubble(fields);
}

const EVENT_KINDS: readonly HubbleEventKind[] = ['node_status', 'lost_events', 'agent_event', 'debug_event'];
const BARE_FLOW_KEYS = ['IP', 'l4', 'verdict', 'source', 'destination', 'Type', 'event_type'];

/**
 * Normalises one parsed `hubble observe -o jsonpb` line: a GetFlowsResponse envelope (`flow`,
 * `node_status`, `lost_events`, `agent_event`, `debug_event`) or a bare Flow.
 */
export function normalizeHubbleRecord(obj: unknown): HubbleResult {
  if (!isObj(obj))
    return bad(new FlowInputError('not-an-object', `expected a JSON object, got ${describeValue(obj)}`));
  const flow = obj.flow;
  if (flow !== undefined && flow !== null) {
    const t = obj.time;
    if (t !== undefined && t !== null && typeof t !== 'string') return bad(wrongType('time', 'a string', t));
    return normalizeHubbleFlow(flow, { pathPrefix: 'flow.', envelopeTime: t ?? undefined });
  }
  for (const kind of EVENT_KINDS) {
    const ev = obj[kind];
    if (ev === undefined || ev === null) continue;
    let lost = 0n;
    if (kind === 'lost_events') {
      if (!isObj(ev)) return bad(wrongType('lost_events', 'an object', ev));
      const n = ev.num_events_lost;
      if (typeof n === 'string' && /^\d{1,20}$/.test(n)) lost = BigInt(n);
      else if (typeof n === 'number' && Number.isSafeInteger(n) && n >= 0) lost = BigInt(n);
      else if (n !== undefined && n !== null)
        return bad(wrongType('lost_events.num_events_lost', 'a 64-bit unsigned integer string', n));
    }
    return { kind: 'event', event: kind, lost };
  }
  for (const k of BARE_FLOW_KEYS) {
    if (k in obj) return normalizeHubbleFlow(obj);
  }
  return bad(
    new FlowInputError(
      'unknown-record',
      'not a Hubble record: expected one of flow, node_status, lost_events, agent_event, debug_event',
    ),
  );
}

/** Slow path for one line: JSON.parse, then normalise. The fast scanner must agree with this. */
export function parseHubbleLineSlow(line: string): HubbleResult {
  let obj: unknown;
  try {
    obj = JSON.parse(line);
  } catch (err) {
    return bad(new FlowInputError('invalid-json', `invalid JSON: ${(err as Error).message}`));
  }
  return normalizeHubbleRecord(obj);
}
