/**
 * Inspektor Gadget `trace_tcp` events (`kubectl gadget run trace_tcp -o json`, one JSON object per line).
 *
 * What it can know: the local pod (`k8s.namespace`, `k8s.podName`, `k8s.owner`, `k8s.podLabels`) and
 * both socket addresses; `connect` is the initiator's side (src = local pod = initiator), `accept` the
 * responder's side (src = local listening socket = responder, dst = the remote client). With the
 * KubeIPResolver operator, `src.k8s` / `dst.k8s` name the peer pod or Service.
 * What it cannot know: verdicts (only established connections become flows, so every flow is FORWARDED),
 * UDP or ICMP traffic, the peer's pod when the resolver is off (only its IP), DNS names.
 * `close` events repeat a connection already reported and are skipped, as are connect and accept
 * events that carry an error (`error_raw`, a connection that never became established) and connections
 * over the loopback interface (an address of 127.0.0.0/8, ::1 or ::ffff:127.x.y.z at either end).
 */
import { MAX_TIME_MS, isIPAddress, isLoopbackIP, parseRfc3339 } from './common.ts';
import type { SkipReason } from './errors.ts';
import { FlowInputError, describeValue, wrongType } from './errors.ts';
import type { Flow, FlowEndpoint, Protocol } from './types.ts';

type Obj = Record<string, unknown>;
function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const PROTO_NUMBERS: Record<number, Protocol> = { 6: 'TCP', 17: 'UDP', 132: 'SCTP' };

export type GadgetResult = Flow | { skip: SkipReason } | FlowInputError;

/** True when a parsed object looks like a trace_tcp event (used by format detection). */
export function looksLikeGadgetEvent(o: Obj): boolean {
  return typeof o.type === 'string' && isObj(o.src) && isObj(o.dst) && ('addr' in o.src || 'k8s' in o);
}

function str(o: Obj, key: string, path: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw wrongType(path, 'a string', v);
  return v;
}

/** `a=b,c=d` (KubeIPResolver) or an object map (podLabels) into key=value strings. */
function labelsOf(v: unknown, path: string): string[] | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v === 'string') return v.split(',').filter((l) => l.includes('='));
  if (isObj(v)) {
    return Object.entries(v).map(([k, val]) => {
      if (typeof val !== 'string') throw wrongType(`${path}.${k}`, 'a string', val);
      return `${k}=${val}`;
    });
  }
  throw wrongType(path, 'a label map or "k=v,k=v" string', v);
}

function socket(o: Obj, key: 'src' | 'dst'): { ip: string; port: number; proto: Protocol; peer?: Obj } {
  const s = o[key];
  if (s === undefined || s === null) throw new FlowInputError('missing-field', `${key} is missing`);
  if (!isObj(s)) throw wrongType(key, 'an object {addr, port, proto}', s);
  const ip = s.addr;
  if (ip === undefined || ip === null || ip === '')
    throw new FlowInputError('missing-field', `${key}.addr is missing`);
  if (typeof ip !== 'string') throw wrongType(`${key}.addr`, 'a string', ip);
  if (!isIPAddress(ip))
    throw new FlowInputError('bad-value', `${key}.addr: not an IP address: ${JSON.stringify(ip)}`);
  const port = s.port;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535)
    throw wrongType(`${key}.port`, 'an integer from 0 to 65535', port);
  let proto: Protocol = 'TCP';
  const p = s.proto;
  if (typeof p === 'number') {
    const name = PROTO_NUMBERS[p];
    if (!name) throw new FlowInputError('unknown-enum', `${key}.proto: unknown value ${p}`);
    proto = name;
  } else if (typeof p === 'string') {
    const name = ({ TCP: 'TCP', UDP: 'UDP', SCTP: 'SCTP' } as Record<string, Protocol>)[p.toUpperCase()];
    if (!name) throw new FlowInputError('unknown-enum', `${key}.proto: unknown value ${JSON.stringify(p)}`);
    proto = name;
  } else if (p !== undefined && p !== null) throw wrongType(`${key}.proto`, 'a protocol name or number', p);
  const peer = isObj(s.k8s) ? s.k8s : undefined;
  return { ip, port, proto, peer };
}

function localEndpoint(o: Obj, ip: string): FlowEndpoint {
  const k = o.k8s;
  const out: FlowEndpoint = { ip };
  if (k === undefined || k === null) return out;
  if (!isObj(k)) throw wrongType('k8s', 'an object', k);
  if (k.hostnetwork === true) {
    out.reserved = 'host';
    return out;
  }
  const ns = str(k, 'namespace', 'k8s.namespace');
  const pod = str(k, 'podName', 'k8s.podName');
  if (ns) out.namespace = ns;
  if (pod) out.pod = pod;
  if (isObj(k.owner)) {
    const kind = str(k.owner, 'kind', 'k8s.owner.kind');
    const name = str(k.owner, 'name', 'k8s.owner.name');
    if (name) out.workload = { kind: kind ?? '', name };
  }
  const labels = labelsOf(k.podLabels ?? k.labels, 'k8s.podLabels');
  if (labels && labels.length > 0) out.labels = labels;
  return out;
}

function peerEndpoint(ip: string, peer: Obj | undefined, path: string): FlowEndpoint {
  const out: FlowEndpoint = { ip };
  if (!peer) return out;
  const kind = str(peer, 'kind', `${path}.kind`);
  const name = str(peer, 'name', `${path}.name`);
  const ns = str(peer, 'namespace', `${path}.namespace`);
  if (kind === 'pod' && name && ns) {
    out.namespace = ns;
    out.pod = name;
  } else if (kind === 'svc' && name && ns) {
    out.service = { namespace: ns, name };
  }
  const labels = labelsOf(peer.labels, `${path}.labels`);
  if (labels && labels.length > 0 && kind === 'pod') out.labels = labels;
  return out;
}

function eventTime(o: Obj): number {
  const raw = o.timestamp_raw;
  // Given, it is the time: a text or anything else there is a damaged record, not a missing time.
  if (raw !== undefined && raw !== null && typeof raw !== 'number')
    throw wrongType('timestamp_raw', 'epoch nanoseconds (a number)', raw);
  if (typeof raw === 'number' && Number.isFinite(raw) && raw > 0) {
    const ms = Math.floor(raw / 1e6);
    if (ms > MAX_TIME_MS)
      throw new FlowInputError(
        'bad-value',
        `timestamp_raw: ${raw} is out of range 0-${MAX_TIME_MS * 1e6} epoch nanoseconds`,
      );
    return ms;
  }
  const t = o.timestamp;
  if (typeof t === 'string') {
    const ms = parseRfc3339(t);
    if (Number.isNaN(ms))
      throw new FlowInputError('bad-value', `timestamp: not an RFC 3339 timestamp: ${JSON.stringify(t)}`);
    return ms;
  }
  if (t === undefined || t === null) throw new FlowInputError('missing-field', 'timestamp is missing');
  throw wrongType('timestamp', 'an RFC 3339 string', t);
}

/** Whether an event carries an error: `error_raw` (an errno) other than 0, or, without it, an `error` name. */
function failed(o: Obj): boolean {
  const raw = o.error_raw;
  if (raw !== undefined && raw !== null) {
    if (typeof raw !== 'number' || !Number.isInteger(raw))
      throw wrongType('error_raw', 'an errno (a number)', raw);
    return raw !== 0;
  }
  const name = o.error;
  return typeof name === 'string' && name !== '';
}

function convert(o: unknown): Flow | { skip: SkipReason } {
  if (!isObj(o)) throw new FlowInputError('not-an-object', `expected a JSON object, got ${describeValue(o)}`);
  const type = o.type;
  if (type === 'close') return { skip: 'close-event' };
  if (type !== 'connect' && type !== 'accept') {
    if (typeof type !== 'string') throw wrongType('type', '"connect", "accept" or "close"', type);
    throw new FlowInputError('unknown-enum', `type: unknown value ${JSON.stringify(type)}`);
  }
  const time = eventTime(o);
  const s = socket(o, 'src');
  const d = socket(o, 'dst');
  const local = localEndpoint(o, s.ip);
  const srcPeer = peerEndpoint(s.ip, s.peer, 'src.k8s');
  const localMerged: FlowEndpoint = { ...srcPeer, ...local };
  const remote = peerEndpoint(d.ip, d.peer, 'dst.k8s');
  const connect = type === 'connect';
  // The responder's port is the rule's port: 0 names no port a policy can hold (the gadget never
  // reports one; a record that does is damaged). The initiator's port may be 0: it is then left out.
  const port = connect ? d.port : s.port;
  if (port === 0)
    throw new FlowInputError(
      'bad-value',
      `${connect ? 'dst' : 'src'}.port: 0 is out of range 1-65535 (the responder's port of ${connect ? 'a connect' : 'an accept'} event)`,
    );
  // Current trace_tcp also reports connections that never became established (refused, timed out,
  // which is what a policy that drops the SYN gives) as connect events carrying the errno: they are
  // no evidence the connection is used and allowed, and a rule for them would open what was closed.
  if (failed(o)) return { skip: 'failed-connection' };
  // A connection over the loopback interface stays inside the pod (a sidecar and its app, a process
  // and its admin port): no NetworkPolicy can affect it, and a rule for it would open the port
  // between the workload's pods (127.0.0.1) or to an ipBlock ::1/128.
  if (isLoopbackIP(s.ip) || isLoopbackIP(d.ip)) return { skip: 'loopback' };
  const flow = {
    time,
    src: connect ? localMerged : remote,
    dst: connect ? remote : localMerged,
    protocol: s.proto,
    port,
  } as Flow;
  const srcPort = connect ? s.port : d.port;
  if (srcPort > 0) flow.srcPort = srcPort;
  flow.verdict = 'FORWARDED';
  flow.input = 'inspektor-gadget';
  return flow;
}

/** Converts one parsed trace_tcp event. */
export function parseGadgetEvent(o: unknown): GadgetResult {
  try {
    return convert(o);
  } catch (err) {
    if (err instanceof FlowInputError) return err;
    throw err;
  }
}
