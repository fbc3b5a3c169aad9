/**
 * Fast path for `hubble observe -o jsonpb` lines: a hand-written scanner that walks the JSON text once,
 * validates its syntax, and copies only the fields normalisation reads into a `HubbleFields` record —
 * without building the objects JSON.parse would. Anything unusual (escape sequences, control
 * characters, whitespace between tokens, null values, numbers that are not plain integers, strings
 * where numbers are expected, duplicate object-valued keys, non-flow records, bare Flow objects)
 * makes it give up and return undefined; the caller then uses the JSON.parse path, so results are
 * always those of `parseHubbleLineSlow`.
 */
import type {
  BuiltEndpoint,
  EndpointTemplate,
  HubbleEndpointFields,
  HubbleFields,
  HubbleResult,
} from './hubble.ts';
import {
  addCiliumLabel,
  applyEndpointTemplate,
  emptyHubbleFields,
  finishHubble,
  POD_NAMESPACE_LABEL,
  resetHubbleFields,
  parseHubbleLineSlow,
} from './hubble.ts';

const GIVE_UP = new Error('scanner gives up');

// Scanner state. `var`, not `let`: module-level `let` bindings are read with a temporal-dead-zone
// check on every access, which costs about a fifth of the scanner's time on these hot paths.
/* eslint-disable no-var */
var S = '';
var P = 0;
/** End of the line being scanned within S (S may be a whole block of lines). */
var END = 0;
/** The record being filled. */
var F: HubbleFields = emptyHubbleFields('flow.');
/** Start and length of the last key read by key(). */
var KS = 0;
var KL = 0;
/**
 * Text of the line before this position has been checked for backslashes and control characters
 * (directly, or because it is an endpoint text equal to a remembered, checked one).
 */
var CLEAN = 0;
/* eslint-enable no-var */

function giveUp(): never {
  throw GIVE_UP;
}

/**
 * Characters the scanner does not model: a backslash (escape sequences) and raw control characters
 * (JSON.parse rejects them inside strings; between tokens the scanner rejects them itself).
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const USUAL = /^[^\\\x00-\x1f]*$/;

/** Checks S[CLEAN, to) for unusual characters (gives up on one) and marks it clean. */
function checkTo(to: number): void {
  const from = CLEAN;
  if (to - from > 24) {
    if (!USUAL.test(S.slice(from, to))) giveUp();
  } else {
    for (let i = from; i < to; i++) {
      const c = S.charCodeAt(i);
      if (c < 32 || c === 92) giveUp();
    }
  }
  CLEAN = to;
}

/** Scans one line; undefined when the line must take the JSON.parse path. */
export function scanHubbleLine(line: string): HubbleFields | undefined {
  return scanRange(line, 0, line.length, emptyHubbleFields('flow.'));
}

/** Reused by the parse functions, which consume the fields before the next scan. */
const scratch = emptyHubbleFields('flow.');

/** Scans text[start, end) (one line of a block, no newline inside) into `f`. */
function scanRange(text: string, start: number, end: number, f: HubbleFields): HubbleFields | undefined {
  S = text;
  P = start;
  END = end;
  F = f;
  CLEAN = start;
  let ok: boolean;
  try {
    scanEnvelope();
    ok = P === end;
    if (ok) checkTo(end);
  } catch (err) {
    S = '';
    if (err === GIVE_UP) return undefined;
    throw err;
  }
  S = '';
  return ok ? f : undefined;
}

/** Parses one jsonpb line with the scanner, falling back to JSON.parse when it gives up. */
export function parseHubbleLine(line: string): HubbleResult {
  const f = scanRange(line, 0, line.length, resetHubbleFields(scratch));
  return f === undefined ? parseHubbleLineSlow(line) : finishHubble(f);
}

/**
 * Parses the line text[start, end) of a block in place, without copying the line unless the
 * JSON.parse path is needed. Same results as parseHubbleLine on the line.
 */
export function parseHubbleLineAt(block: string, start: number, end: number): HubbleResult {
  const f = scanRange(block, start, end, resetHubbleFields(scratch));
  return f === undefined ? parseHubbleLineSlow(block.slice(start, end)) : finishHubble(f);
}

// ---------------------------------------------------------------------------------------------
// Tokens

function str(): string {
  if (S.charCodeAt(P) !== 34) giveUp();
  const e = S.indexOf('"', P + 1);
  if (e < 0 || e >= END) giveUp();
  const v = S.slice(P + 1, e);
  P = e + 1;
  return v;
}

/** Reads a key and its colon without copying it; returns its length (see KS / KL). */
function key(): number {
  if (S.charCodeAt(P) !== 34) giveUp();
  const e = S.indexOf('"', P + 1);
  if (e < 0 || e >= END || S.charCodeAt(e + 1) !== 58) giveUp();
  KS = P + 1;
  KL = e - KS;
  P = e + 2;
  return KL;
}

/** True when the last key is `name` (whose length the caller has already matched). */
function is(name: string): boolean {
  return at(S, KS, name);
}

/**
 * True when `s` has `lit` at `pos`. (String.prototype.startsWith with a position is far slower on
 * a large block string than this loop over a short literal.)
 */
function at(s: string, pos: number, lit: string): boolean {
  for (let i = 0; i < lit.length; i++) {
    if (s.charCodeAt(pos + i) !== lit.charCodeAt(i)) return false;
  }
  return true;
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

function enumValue(): string | number {
  return S.charCodeAt(P) === 34 ? str() : int(Number.MAX_SAFE_INTEGER);
}

/** Skips any JSON value, validating its syntax. */
function skip(): void {
  const p = skipValue(S, P, END);
  if (p < 0) giveUp();
  P = p;
}

/**
 * Skips the JSON value that starts at `p` in `s` and returns the position after it, or -1 when the
 * text there is not a value the scanner accepts within [p, end): no whitespace between tokens (the
 * caller checks strings for backslashes and control characters). One loop with local state: nesting
 * is a bit stack (bit d set: the container at depth d is an array), at most 30 deep.
 */
function skipValue(s: string, p: number, end: number): number {
  let arrays = 0;
  let depth = 0;
  for (;;) {
    let c = s.charCodeAt(p);
    if (c === 34) {
      const e = s.indexOf('"', p + 1);
      if (e < 0 || e >= end) return -1;
      p = e + 1;
    } else if (c === 123) {
      c = s.charCodeAt(++p);
      if (c === 125) p++;
      else {
        if (depth === 30 || c !== 34) return -1;
        arrays &= ~(1 << depth);
        depth++;
        const e = s.indexOf('"', p + 1);
        if (e < 0 || e >= end || s.charCodeAt(e + 1) !== 58) return -1;
        p = e + 2;
        continue;
      }
    } else if (c === 91) {
      if (s.charCodeAt(++p) === 93) p++;
      else {
        if (depth === 30) return -1;
        arrays |= 1 << depth;
        depth++;
        continue;
      }
    } else if (c === 116) {
      if (s.charCodeAt(p + 1) !== 114 || s.charCodeAt(p + 2) !== 117 || s.charCodeAt(p + 3) !== 101)
        return -1;
      p += 4;
    } else if (c === 102) {
      if (!at(s, p, 'false')) return -1;
      p += 5;
    } else if (c === 110) {
      if (!at(s, p, 'null')) return -1;
      p += 4;
    } else {
      if (c === 45) c = s.charCodeAt(++p);
      if (c === 48) c = s.charCodeAt(++p);
      else if (c >= 49 && c <= 57) {
        do c = s.charCodeAt(++p);
        while (c >= 48 && c <= 57);
      } else return -1;
      if (c === 46) {
        c = s.charCodeAt(++p);
        if (c < 48 || c > 57) return -1;
        do c = s.charCodeAt(++p);
        while (c >= 48 && c <= 57);
      }
      if (c === 101 || c === 69) {
        c = s.charCodeAt(++p);
        if (c === 43 || c === 45) c = s.charCodeAt(++p);
        if (c < 48 || c > 57) return -1;
        do c = s.charCodeAt(++p);
        while (c >= 48 && c <= 57);
      }
    }
    // After a value: close containers, or move on to the next element or member.
    for (;;) {
      if (depth === 0) return p;
      c = s.charCodeAt(p);
      if (((arrays >>> (depth - 1)) & 1) === 0) {
        if (c === 44) {
          if (s.charCodeAt(p + 1) !== 34) return -1;
          const e = s.indexOf('"', p + 2);
          if (e < 0 || e >= end || s.charCodeAt(e + 1) !== 58) return -1;
          p = e + 2;
          break;
        }
        if (c !== 125) return -1;
      } else {
        if (c === 44) {
          p++;
          break;
        }
        if (c !== 93) return -1;
      }
      p++;
      depth--;
    }
  }
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

// The hot members (envelope, flow, IP, l4 with ports) are scanned with the position in a local
// variable: functions take (s, p, end) and return the position after what they read, so the position
// stays in a register instead of a module binding. Rare members (l7, services, names, ICMP) sync the
// position with P and use the functions above.

/** Position just after the string that starts at p. */
function strEnd(s: string, p: number, end: number): number {
  if (s.charCodeAt(p) !== 34) giveUp();
  const e = s.indexOf('"', p + 1);
  if (e < 0 || e >= end) giveUp();
  return e + 1;
}

/** Position of the closing quote of the key that starts at p (which must be followed by a colon). */
function keyEnd(s: string, p: number, end: number): number {
  if (s.charCodeAt(p) !== 34) giveUp();
  const e = s.indexOf('"', p + 1);
  if (e < 0 || e >= end || s.charCodeAt(e + 1) !== 58) giveUp();
  return e;
}

/** Skips a value we do not read. */
function skipAt(s: string, p: number, end: number): number {
  const q = skipValue(s, p, end);
  if (q < 0) giveUp();
  return q;
}

/**
 * After a member: the position of the next key, or, at the closing brace, -2 minus the position after
 * it (so callers return `-2 - q`).
 */
function nextMember(s: string, p: number): number {
  const c = s.charCodeAt(p);
  if (c === 44) return p + 1;
  if (c === 125) return -3 - p;
  return giveUp();
}

/** Value read by the last intAt / boolAt / enumAt. */
/* eslint-disable no-var */
var NUM = 0;
var BOOL = false;
var ENUM: string | number = 0;
/* eslint-enable no-var */

/** A plain non-negative integer no larger than max (see int()); the value goes to NUM. */
function intAt(s: string, p: number, max: number): number {
  let c = s.charCodeAt(p);
  if (c < 48 || c > 57) giveUp();
  const start = p;
  let v = 0;
  while (c >= 48 && c <= 57) {
    v = v * 10 + (c - 48);
    c = s.charCodeAt(++p);
  }
  if (c === 46 || c === 101 || c === 69 || p - start > 15 || v > max) giveUp();
  if (p - start > 1 && s.charCodeAt(start) === 48) giveUp();
  NUM = v;
  return p;
}

function boolAt(s: string, p: number): number {
  const c = s.charCodeAt(p);
  if (
    c === 116 &&
    s.charCodeAt(p + 1) === 114 &&
    s.charCodeAt(p + 2) === 117 &&
    s.charCodeAt(p + 3) === 101
  ) {
    BOOL = true;
    return p + 4;
  }
  if (c === 102 && at(s, p, 'false')) {
    BOOL = false;
    return p + 5;
  }
  return giveUp();
}

function enumAt(s: string, p: number): number {
  if (s.charCodeAt(p) === 34) {
    const q = strEnd(s, p, END);
    ENUM = s.slice(p + 1, q - 1);
    return q;
  }
  const q = intAt(s, p, Number.MAX_SAFE_INTEGER);
  ENUM = NUM;
  return q;
}

function scanEnvelope(): HubbleFields {
  const s = S;
  const end = END;
  let p = P;
  let f: HubbleFields | undefined;
  let time: string | undefined;
  if (s.charCodeAt(p) !== 123 || s.charCodeAt(p + 1) === 125) giveUp();
  p++;
  for (;;) {
    const ke = keyEnd(s, p, end);
    const n = ke - p - 1;
    const ks = p + 1;
    p = ke + 2;
    if (n === 4 && at(s, ks, 'flow')) {
      if (f !== undefined) giveUp();
      f = F;
      p = scanFlowAt(s, p, end, f);
    } else if (n === 4 && at(s, ks, 'time')) {
      const q = strEnd(s, p, end);
      time = s.slice(p + 1, q - 1);
      p = q;
    } else if (
      n === 11 &&
      (at(s, ks, 'node_status') ||
        at(s, ks, 'lost_events') ||
        at(s, ks, 'agent_event') ||
        at(s, ks, 'debug_event'))
    )
      giveUp();
    else p = skipAt(s, p, end);
    const q = nextMember(s, p);
    if (q < 0) {
      P = -2 - q;
      break;
    }
    p = q;
  }
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

function once(seen: number, bit: number): number {
  if (seen & bit) giveUp();
  return seen | bit;
}

/** Scans the Flow object at p into f; returns the position after it. */
function scanFlowAt(s: string, p: number, end: number, f: HubbleFields): number {
  let seen = 0;
  if (s.charCodeAt(p) !== 123) giveUp();
  p++;
  if (s.charCodeAt(p) === 125) return p + 1;
  for (;;) {
    const ke = keyEnd(s, p, end);
    const ks = p + 1;
    p = ke + 2;
    switch (ke - ks) {
      case 2: {
        const c0 = s.charCodeAt(ks);
        const c1 = s.charCodeAt(ks + 1);
        if (c0 === 73 && c1 === 80) {
          seen = once(seen, SEEN_IP);
          p = scanIPAt(s, p, end, f);
        } else if (c0 === 108 && c1 === 52) {
          seen = once(seen, SEEN_L4);
          p = scanL4At(s, p, end, f);
        } else if (c0 === 108 && c1 === 55) {
          seen = once(seen, SEEN_L7);
          P = p;
          scanL7(f);
          p = P;
        } else p = skipAt(s, p, end);
        break;
      }
      case 4:
        if (at(s, ks, 'time')) {
          const q = strEnd(s, p, end);
          f.time = s.slice(p + 1, q - 1);
          p = q;
        } else p = skipAt(s, p, end);
        break;
      case 5:
        if (at(s, ks, 'reply')) {
          p = boolAt(s, p);
          f.reply = BOOL;
        } else p = skipAt(s, p, end);
        break;
      case 6:
        if (at(s, ks, 'source')) {
          seen = once(seen, SEEN_SRC);
          P = p;
          scanEndpointMemo(f.src);
          p = P;
        } else p = skipAt(s, p, end);
        break;
      case 7:
        if (at(s, ks, 'verdict')) {
          p = enumAt(s, p);
          f.verdict = ENUM;
        } else p = skipAt(s, p, end);
        break;
      case 8:
        if (at(s, ks, 'is_reply')) {
          p = boolAt(s, p);
          f.isReply = BOOL;
        } else p = skipAt(s, p, end);
        break;
      case 11:
        if (at(s, ks, 'destination')) {
          seen = once(seen, SEEN_DST);
          P = p;
          scanEndpointMemo(f.dst);
          p = P;
        } else p = skipAt(s, p, end);
        break;
      case 12:
        if (at(s, ks, 'source_names')) {
          P = p;
          f.src.names = stringArray();
          p = P;
        } else if (at(s, ks, 'trace_reason')) {
          p = enumAt(s, p);
          f.traceReason = ENUM;
        } else p = skipAt(s, p, end);
        break;
      case 14:
        if (at(s, ks, 'source_service')) {
          seen = once(seen, SEEN_SRC_SVC);
          P = p;
          scanService(f.src);
          p = P;
        } else p = skipAt(s, p, end);
        break;
      case 16:
        if (at(s, ks, 'drop_reason_desc')) {
          p = enumAt(s, p);
          f.dropReason = ENUM;
        } else p = skipAt(s, p, end);
        break;
      case 17:
        if (at(s, ks, 'destination_names')) {
          P = p;
          f.dst.names = stringArray();
          p = P;
        } else p = skipAt(s, p, end);
        break;
      case 19:
        if (at(s, ks, 'destination_service')) {
          seen = once(seen, SEEN_DST_SVC);
          P = p;
          scanService(f.dst);
          p = P;
        } else p = skipAt(s, p, end);
        break;
      default:
        p = skipAt(s, p, end);
    }
    const q = nextMember(s, p);
    if (q < 0) return -2 - q;
    p = q;
  }
}

function scanIPAt(s: string, p: number, end: number, f: HubbleFields): number {
  if (s.charCodeAt(p) !== 123) giveUp();
  p++;
  if (s.charCodeAt(p) === 125) return p + 1;
  for (;;) {
    const ke = keyEnd(s, p, end);
    const n = ke - p - 1;
    const ks = p + 1;
    p = ke + 2;
    if (n === 6 && at(s, ks, 'source')) {
      const q = strEnd(s, p, end);
      f.src.ip = s.slice(p + 1, q - 1);
      p = q;
    } else if (n === 11 && at(s, ks, 'destination')) {
      const q = strEnd(s, p, end);
      f.dst.ip = s.slice(p + 1, q - 1);
      p = q;
    } else p = skipAt(s, p, end);
    const q = nextMember(s, p);
    if (q < 0) return -2 - q;
    p = q;
  }
}

function scanL4At(s: string, p: number, end: number, f: HubbleFields): number {
  if (s.charCodeAt(p) !== 123) giveUp();
  p++;
  if (s.charCodeAt(p) === 125) return p + 1;
  for (;;) {
    const ke = keyEnd(s, p, end);
    const n = ke - p - 1;
    const ks = p + 1;
    p = ke + 2;
    if (f.l4 !== undefined || s.charCodeAt(p) !== 123 || (n === 8 && at(s, ks, 'protocol'))) giveUp();
    // The common names as constants (no slice); anything else is copied out of the line.
    const k =
      n === 3 && at(s, ks, 'TCP')
        ? 'TCP'
        : n === 3 && at(s, ks, 'UDP')
          ? 'UDP'
          : n === 6 && at(s, ks, 'ICMPv4')
            ? 'ICMPv4'
            : n === 6 && at(s, ks, 'ICMPv6')
              ? 'ICMPv6'
              : s.slice(ks, ks + n);
    f.l4 = k;
    if (k === 'TCP' || k === 'UDP' || k === 'SCTP') p = scanPortsAt(s, p, end, f, k === 'TCP');
    else if (k === 'ICMPv4' || k === 'ICMPv6') {
      P = p;
      scanIcmp(f);
      p = P;
    } else p = skipAt(s, p, end);
    const q = nextMember(s, p);
    if (q < 0) return -2 - q;
    p = q;
  }
}

function scanPortsAt(s: string, p: number, end: number, f: HubbleFields, tcp: boolean): number {
  let flagsSeen = false;
  p++; // the caller checked the brace
  if (s.charCodeAt(p) === 125) return p + 1;
  for (;;) {
    const ke = keyEnd(s, p, end);
    const n = ke - p - 1;
    const ks = p + 1;
    p = ke + 2;
    if (n === 11 && at(s, ks, 'source_port')) {
      p = intAt(s, p, 65535);
      f.src.port = NUM;
    } else if (n === 16 && at(s, ks, 'destination_port')) {
      p = intAt(s, p, 65535);
      f.dst.port = NUM;
    } else if (tcp && n === 5 && at(s, ks, 'flags')) {
      if (flagsSeen) giveUp();
      flagsSeen = true;
      p = scanFlagsAt(s, p, end, f);
    } else p = skipAt(s, p, end);
    const q = nextMember(s, p);
    if (q < 0) return -2 - q;
    p = q;
  }
}

function scanFlagsAt(s: string, p: number, end: number, f: HubbleFields): number {
  if (s.charCodeAt(p) !== 123) giveUp();
  p++;
  if (s.charCodeAt(p) === 125) return p + 1;
  for (;;) {
    const ke = keyEnd(s, p, end);
    const n = ke - p - 1;
    const ks = p + 1;
    p = ke + 2;
    if (n === 3 && at(s, ks, 'SYN')) {
      p = boolAt(s, p);
      f.syn = BOOL;
    } else if (n === 3 && at(s, ks, 'ACK')) {
      p = boolAt(s, p);
      f.ack = BOOL;
    } else p = skipAt(s, p, end);
    const q = nextMember(s, p);
    if (q < 0) return -2 - q;
    p = q;
  }
}

function scanIcmp(f: HubbleFields): void {
  if (!openObject()) return;
  do {
    if (key() === 4 && is('type')) f.icmpType = int(255);
    else skip();
  } while (more(125));
}

/**
 * Endpoint objects repeat: every flow of a pod carries the same `source`/`destination` text (ID,
 * identity, namespace, labels, pod name, workloads). A small memo maps the text of recently scanned
 * endpoint objects to what scanning them produced. A JSON object's extent is fixed by its own text, so
 * when the line continues with exactly a remembered object text, scanning it would consume exactly
 * that text and produce exactly the remembered fields. Candidates are found by a hash of the first
 * MEMO_KEY characters; the full text is then compared. Bounded: MEMO_SETS sets of two entries.
 */
interface EndpointMemo extends EndpointTemplate {
  text: string;
}

const MEMO_KEY = 32;
const MEMO_SETS = 4096;
/**
 * Two-way set-associative: set = the hash's low bits; entry 2*set is the most recently used, 2*set+1
 * the other. A new text goes first and pushes the older one out.
 */
const memo: (EndpointMemo | undefined)[] = new Array<EndpointMemo | undefined>(2 * MEMO_SETS).fill(undefined);
/**
 * Hash of the first MEMO_KEY characters of memo[i]'s text (cheap rejection before the text
 * comparison), kept apart so that rejecting a candidate does not load the entry.
 */
const memoHashes = new Int32Array(2 * MEMO_SETS);

/** Freezes a remembered array that flows share (typed as mutable: FlowEndpoint.labels is string[]). */
function frozen(a: string[]): string[] {
  Object.freeze(a);
  return a;
}

/**
 * Forgets every remembered endpoint text (results never depend on them; benchmarks use this to start
 * each round cold).
 */
export function resetScannerMemo(): void {
  memo.fill(undefined);
  memoHashes.fill(0);
}

/** A copy that does not keep the (large) string it was sliced from alive. */
function detached(s: string): string {
  return (' ' + s).slice(1);
}

function memoHash(start: number): number {
  const s = S;
  const n = Math.min(start + MEMO_KEY, END);
  let h = 0;
  for (let i = start; i < n; i++) h = (Math.imul(h, 31) + s.charCodeAt(i)) | 0;
  return h ^ (h >>> 12);
}

function matches(i: number, hash: number, start: number): boolean {
  if (memoHashes[i] !== hash) return false;
  const m = memo[i];
  if (m === undefined) return false;
  const end = start + m.text.length;
  return end <= END && S.slice(start, end) === m.text;
}

function scanEndpointMemo(e: HubbleEndpointFields): void {
  const start = P;
  const hash = memoHash(start);
  const i = (hash & (MEMO_SETS - 1)) << 1;
  let m: EndpointMemo | undefined;
  if (matches(i, hash, start)) m = memo[i];
  else if (matches(i + 1, hash, start)) {
    m = memo[i + 1];
    memo[i + 1] = memo[i];
    memo[i] = m;
    memoHashes[i + 1] = memoHashes[i]!;
    memoHashes[i] = hash;
  }
  if (m !== undefined) {
    applyEndpointTemplate(e, m);
    checkTo(start);
    P = CLEAN = start + m.text.length;
    return;
  }
  scanEndpoint(e);
  // Only checked text is remembered: a later hit skips the check.
  checkTo(P);
  // The remembered strings are copies: slices would keep the whole block they came from alive.
  const labels = e.labels === undefined ? undefined : frozen(e.labels.map(detached));
  e.labels = labels;
  const built: BuiltEndpoint = { endpoint: undefined };
  e.built = built;
  e.namespace = detachedOpt(e.namespace);
  e.pod = detachedOpt(e.pod);
  e.workloadName = detachedOpt(e.workloadName);
  e.workloadKind = detachedOpt(e.workloadKind);
  memo[i + 1] = memo[i];
  memoHashes[i + 1] = memoHashes[i]!;
  memoHashes[i] = hash;
  memo[i] = {
    text: detached(S.slice(start, P)),
    namespace: e.namespace,
    pod: e.pod,
    labels,
    reserved: e.reserved,
    identity: e.identity,
    workloadName: e.workloadName,
    workloadKind: e.workloadKind,
    built,
  };
}

function detachedOpt(s: string | undefined): string | undefined {
  return s === undefined ? undefined : detached(s);
}

function scanEndpoint(e: HubbleEndpointFields): void {
  let workloadsSeen = false;
  if (!openObject()) return;
  do {
    const n = key();
    if (n === 6 && is('labels')) scanLabels(e);
    else if (n === 9 && is('namespace')) e.namespace = str();
    else if (n === 8 && is('pod_name')) e.pod = str();
    else if (n === 8 && is('identity')) e.identity = int(0xffffffff);
    else if (n === 9 && is('workloads')) {
      if (workloadsSeen) giveUp();
      workloadsSeen = true;
      e.workloadName = undefined;
      e.workloadKind = undefined;
      if (openArray()) {
        scanWorkload(e);
        while (more(93)) skip();
      }
    } else skip();
  } while (more(125));
  // Scanned once per endpoint text (the memo keeps the result), whichever order its keys came in.
  if (!e.namespace && e.labelNamespace) e.namespace = e.labelNamespace;
}

/** Normalises labels in place: only kept labels are sliced out of the line. */
function scanLabels(e: HubbleEndpointFields): void {
  e.labels = undefined;
  e.reserved = undefined;
  e.labelNamespace = undefined;
  const s = S;
  const end = END;
  let p = P;
  if (s.charCodeAt(p) !== 91) giveUp();
  p++;
  if (s.charCodeAt(p) === 93) {
    P = p + 1;
    return;
  }
  let labels: string[] | undefined;
  for (;;) {
    if (s.charCodeAt(p) !== 34) giveUp();
    const a = p + 1;
    const b = s.indexOf('"', a);
    if (b < 0 || b >= end) giveUp();
    p = b + 1;
    if (
      s.charCodeAt(a) === 107 && // k
      s.charCodeAt(a + 1) === 56 && // 8
      s.charCodeAt(a + 2) === 115 && // s
      s.charCodeAt(a + 3) === 58 // :
    ) {
      if (!(
        s.charCodeAt(a + 4) === 105 && // i
        s.charCodeAt(a + 5) === 111 && // o
        s.charCodeAt(a + 6) === 46 // .
      ))
        (labels ??= []).push(s.slice(a + 4, b));
      else if (at(s, a + 4, POD_NAMESPACE_LABEL))
        e.labelNamespace ??= s.slice(a + 4 + POD_NAMESPACE_LABEL.length, b);
      else if (!at(s, a + 4, 'io.cilium.k8s.')) (labels ??= []).push(s.slice(a + 4, b));
    } else {
      e.labels = labels;
      addCiliumLabel(e, s.slice(a, b));
      labels = e.labels;
    }
    const c = s.charCodeAt(p);
    if (c === 44) p++;
    else if (c === 93) break;
    else giveUp();
  }
  e.labels = labels;
  P = p + 1;
}

function scanWorkload(e: HubbleEndpointFields): void {
  if (!openObject()) return;
  do {
    const n = key();
    if (n === 4 && is('name')) e.workloadName = str();
    else if (n === 4 && is('kind')) e.workloadKind = str();
    else skip();
  } while (more(125));
}

function scanService(e: HubbleEndpointFields): void {
  if (!openObject()) return;
  do {
    const n = key();
    if (n === 4 && is('name')) e.serviceName = str();
    else if (n === 9 && is('namespace')) e.serviceNamespace = str();
    else skip();
  } while (more(125));
}

function scanL7(f: HubbleFields): void {
  let dnsSeen = false;
  if (!openObject()) return;
  do {
    const n = key();
    if (n === 4 && is('type')) f.l7Type = enumValue();
    else if (n === 3 && is('dns')) {
      if (dnsSeen) giveUp();
      dnsSeen = true;
      if (openObject()) {
        do {
          if (key() === 5 && is('query')) f.dnsQuery = str();
          else skip();
        } while (more(125));
      }
    } else skip();
  } while (more(125));
}
