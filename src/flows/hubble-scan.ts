/**
 * Fast path for `hubble observe -o jsonpb` lines: a hand-written scanner that walks the JSON text once,
 * validates its syntax, and copies only the fields normalisation reads into a `HubbleFields` record —
 * without building the objects JSON.parse would. Anything unusual (escape sequences, control
 * characters, whitespace between tokens, null values, numbers that are not plain integers, strings
 * where numbers are expected, duplicate object-valued keys, non-flow records, bare Flow objects)
 * makes it give up and return undefined; the caller then uses the JSON.parse path, so results are
 * always those of `parseHubbleLineSlow`.
 */
import type { HubbleEndpointFields, HubbleFields, HubbleResult } from './hubble.ts';
import {
  addCiliumLabel,
  emptyHubbleFields,
  finishHubble,
  isCiliumDerived,
  parseHubbleLineSlow,
} from './hubble.ts';

const GIVE_UP = new Error('scanner gives up');

let S = '';
let P = 0;

function giveUp(): never {
  throw GIVE_UP;
}

/** Validates JSON text has nothing the scanner does not model (backslash, raw control characters). */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const PLAIN = /^[^\\\x00-\x1f]*$/;

/** Scans one line; undefined when the line must take the JSON.parse path. */
export function scanHubbleLine(line: string): HubbleFields | undefined {
  if (!PLAIN.test(line)) return undefined;
  S = line;
  P = 0;
  try {
    const f = scanEnvelope();
    if (P !== line.length) return undefined;
    return f;
  } catch (err) {
    if (err === GIVE_UP) return undefined;
    throw err;
  } finally {
    S = '';
  }
}

/** Parses one jsonpb line with the scanner, falling back to JSON.parse when it gives up. */
export function parseHubbleLine(line: string): HubbleResult {
  const f = scanHubbleLine(line);
  return f === undefined ? parseHubbleLineSlow(line) : finishHubble(f);
}

// ---------------------------------------------------------------------------------------------
// Tokens

function str(): string {
  if (S.charCodeAt(P) !== 34) giveUp();
  const e = S.indexOf('"', P + 1);
  if (e < 0) giveUp();
  const v = S.slice(P + 1, e);
  P = e + 1;
  return v;
}

function skipStr(): void {
  const e = S.indexOf('"', P + 1);
  if (e < 0) giveUp();
  P = e + 1;
}

/** A key and its colon; returns the key. */
function key(): string {
  const k = str();
  if (S.charCodeAt(P) !== 58) giveUp();
  P++;
  return k;
}

/** After a member: true when another member follows (consumes ','), false at the closing char. */
function more(close: number): boolean {
  const c = S.charCodeAt(P);
  if (c === 44) {
    P++;
    return true;
  }
  if (c === close) {
    P++;
    return false;
  }
  return giveUp();
}

function openObject(): boolean {
  if (S.charCodeAt(P) !== 123) giveUp();
  P++;
  if (S.charCodeAt(P) === 125) {
    P++;
    return false;
  }
  return true;
}

function openArray(): boolean {
  if (S.charCodeAt(P) !== 91) giveUp();
  P++;
  if (S.charCodeAt(P) === 93) {
    P++;
    return false;
  }
  return true;
}

/** A plain non-negative integer no larger than max (no sign, fraction, exponent or leading zero). */
function int(max: number): number {
  let c = S.charCodeAt(P);
  if (c < 48 || c > 57) giveUp();
  const start = P;
  let v = 0;
  while (c >= 48 && c <= 57) {
    v = v * 10 + (c - 48);
    c = S.charCodeAt(++P);
  }
  if (c === 46 || c === 101 || c === 69 || P - start > 15 || v > max) giveUp();
  if (P - start > 1 && S.charCodeAt(start) === 48) giveUp();
  return v;
}

function bool(): boolean {
  const c = S.charCodeAt(P);
  if (c === 116 && S.startsWith('true', P)) {
    P += 4;
    return true;
  }
  if (c === 102 && S.startsWith('false', P)) {
    P += 5;
    return false;
  }
  return giveUp();
}

function enumValue(): string | number {
  return S.charCodeAt(P) === 34 ? str() : int(Number.MAX_SAFE_INTEGER);
}

function skipNumber(): void {
  let c = S.charCodeAt(P);
  if (c === 45) c = S.charCodeAt(++P);
  if (c === 48) c = S.charCodeAt(++P);
  else if (c >= 49 && c <= 57) {
    do c = S.charCodeAt(++P);
    while (c >= 48 && c <= 57);
  } else giveUp();
  if (c === 46) {
    c = S.charCodeAt(++P);
    if (c < 48 || c > 57) giveUp();
    do c = S.charCodeAt(++P);
    while (c >= 48 && c <= 57);
  }
  if (c === 101 || c === 69) {
    c = S.charCodeAt(++P);
    if (c === 43 || c === 45) c = S.charCodeAt(++P);
    if (c < 48 || c > 57) giveUp();
    do c = S.charCodeAt(++P);
    while (c >= 48 && c <= 57);
  }
}

/** Skips any JSON value, validating its syntax. */
function skip(): void {
  const c = S.charCodeAt(P);
  if (c === 34) skipStr();
  else if (c === 123) {
    P++;
    if (S.charCodeAt(P) === 125) {
      P++;
      return;
    }
    do {
      if (S.charCodeAt(P) !== 34) giveUp();
      skipStr();
      if (S.charCodeAt(P) !== 58) giveUp();
      P++;
      skip();
    } while (more(125));
  } else if (c === 91) {
    P++;
    if (S.charCodeAt(P) === 93) {
      P++;
      return;
    }
    do skip();
    while (more(93));
  } else if (c === 116) {
    if (!S.startsWith('true', P)) giveUp();
    P += 4;
  } else if (c === 102) {
    if (!S.startsWith('false', P)) giveUp();
    P += 5;
  } else if (c === 110) {
    if (!S.startsWith('null', P)) giveUp();
    P += 4;
  } else skipNumber();
}

function stringArray(): string[] {
  const out: string[] = [];
  if (openArray()) {
    do out.push(str());
    while (more(93));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Structure

function scanEnvelope(): HubbleFields {
  let f: HubbleFields | undefined;
  let time: string | undefined;
  if (!openObject()) giveUp();
  do {
    const k = key();
    if (k === 'flow') {
      if (f !== undefined) giveUp();
      f = scanFlow();
    } else if (k === 'time') time = str();
    else if (k === 'node_status' || k === 'lost_events' || k === 'agent_event' || k === 'debug_event')
      giveUp();
    else skip();
  } while (more(125));
  if (f === undefined) return giveUp();
  f.envelopeTime = time;
  return f;
}

const SEEN_IP = 1;
const SEEN_L4 = 2;
const SEEN_SRC = 4;
const SEEN_DST = 8;
const SEEN_SRC_SVC = 16;
const SEEN_DST_SVC = 32;
const SEEN_L7 = 64;

function scanFlow(): HubbleFields {
  const f = emptyHubbleFields('flow.');
  let seen = 0;
  if (!openObject()) return f;
  do {
    const k = key();
    switch (k) {
      case 'time':
        f.time = str();
        break;
      case 'verdict':
        f.verdict = enumValue();
        break;
      case 'drop_reason_desc':
        f.dropReason = enumValue();
        break;
      case 'trace_reason':
        f.traceReason = enumValue();
        break;
      case 'IP':
        if (seen & SEEN_IP) giveUp();
        seen |= SEEN_IP;
        scanIP(f);
        break;
      case 'l4':
        if (seen & SEEN_L4) giveUp();
        seen |= SEEN_L4;
        scanL4(f);
        break;
      case 'source':
        if (seen & SEEN_SRC) giveUp();
        seen |= SEEN_SRC;
        scanEndpoint(f.src);
        break;
      case 'destination':
        if (seen & SEEN_DST) giveUp();
        seen |= SEEN_DST;
        scanEndpoint(f.dst);
        break;
      case 'source_names':
        f.src.names = stringArray();
        break;
      case 'destination_names':
        f.dst.names = stringArray();
        break;
      case 'source_service':
        if (seen & SEEN_SRC_SVC) giveUp();
        seen |= SEEN_SRC_SVC;
        scanService(f.src);
        break;
      case 'destination_service':
        if (seen & SEEN_DST_SVC) giveUp();
        seen |= SEEN_DST_SVC;
        scanService(f.dst);
        break;
      case 'l7':
        if (seen & SEEN_L7) giveUp();
        seen |= SEEN_L7;
        scanL7(f);
        break;
      case 'reply':
        f.reply = bool();
        break;
      case 'is_reply':
        f.isReply = bool();
        break;
      default:
        skip();
    }
  } while (more(125));
  return f;
}

function scanIP(f: HubbleFields): void {
  if (!openObject()) return;
  do {
    const k = key();
    if (k === 'source') f.src.ip = str();
    else if (k === 'destination') f.dst.ip = str();
    else skip();
  } while (more(125));
}

function scanL4(f: HubbleFields): void {
  if (!openObject()) return;
  do {
    const k = key();
    if (f.l4 !== undefined || k === 'protocol' || S.charCodeAt(P) !== 123) giveUp();
    f.l4 = k;
    if (k === 'TCP' || k === 'UDP' || k === 'SCTP') scanPorts(f, k === 'TCP');
    else if (k === 'ICMPv4' || k === 'ICMPv6') scanIcmp(f);
    else skip();
  } while (more(125));
}

function scanPorts(f: HubbleFields, tcp: boolean): void {
  let flagsSeen = false;
  if (!openObject()) return;
  do {
    const k = key();
    if (k === 'source_port') f.src.port = int(65535);
    else if (k === 'destination_port') f.dst.port = int(65535);
    else if (tcp && k === 'flags') {
      if (flagsSeen) giveUp();
      flagsSeen = true;
      if (openObject()) {
        do {
          const fk = key();
          if (fk === 'SYN') f.syn = bool();
          else if (fk === 'ACK') f.ack = bool();
          else skip();
        } while (more(125));
      }
    } else skip();
  } while (more(125));
}

function scanIcmp(f: HubbleFields): void {
  if (!openObject()) return;
  do {
    const k = key();
    if (k === 'type') f.icmpType = int(255);
    else skip();
  } while (more(125));
}

function scanEndpoint(e: HubbleEndpointFields): void {
  let workloadsSeen = false;
  if (!openObject()) return;
  do {
    const k = key();
    switch (k) {
      case 'namespace':
        e.namespace = str();
        break;
      case 'pod_name':
        e.pod = str();
        break;
      case 'labels':
        scanLabels(e);
        break;
      case 'identity':
        e.identity = int(0xffffffff);
        break;
      case 'workloads':
        if (workloadsSeen) giveUp();
        workloadsSeen = true;
        if (openArray()) {
          scanWorkload(e);
          while (more(93)) skip();
        }
        break;
      default:
        skip();
    }
  } while (more(125));
}

/** Normalises labels in place: only kept `k8s:` labels are sliced out of the line. */
function scanLabels(e: HubbleEndpointFields): void {
  e.labels = undefined;
  e.reserved = undefined;
  if (!openArray()) return;
  do {
    if (S.charCodeAt(P) !== 34) giveUp();
    const a = P + 1;
    const b = S.indexOf('"', a);
    if (b < 0) giveUp();
    P = b + 1;
    if (
      S.charCodeAt(a) === 107 && // k
      S.charCodeAt(a + 1) === 56 && // 8
      S.charCodeAt(a + 2) === 115 && // s
      S.charCodeAt(a + 3) === 58 // :
    ) {
      if (S.charCodeAt(a + 4) === 105 && S.charCodeAt(a + 5) === 111 && S.charCodeAt(a + 6) === 46) {
        const kv = S.slice(a + 4, b);
        if (!isCiliumDerived(kv)) (e.labels ??= []).push(kv);
      } else (e.labels ??= []).push(S.slice(a + 4, b));
    } else addCiliumLabel(e, S.slice(a, b));
  } while (more(93));
}

function scanWorkload(e: HubbleEndpointFields): void {
  if (!openObject()) return;
  do {
    const k = key();
    if (k === 'name') e.workloadName = str();
    else if (k === 'kind') e.workloadKind = str();
    else skip();
  } while (more(125));
}

function scanService(e: HubbleEndpointFields): void {
  if (!openObject()) return;
  do {
    const k = key();
    if (k === 'name') e.serviceName = str();
    else if (k === 'namespace') e.serviceNamespace = str();
    else skip();
  } while (more(125));
}

function scanL7(f: HubbleFields): void {
  let dnsSeen = false;
  if (!openObject()) return;
  do {
    const k = key();
    if (k === 'type') f.l7Type = enumValue();
    else if (k === 'dns') {
      if (dnsSeen) giveUp();
      dnsSeen = true;
      if (openObject()) {
        do {
          if (key() === 'query') f.dnsQuery = str();
          else skip();
        } while (more(125));
      }
    } else skip();
  } while (more(125));
}
