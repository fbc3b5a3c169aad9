/**
 * Fast path for `hubble observe -o jsonpb` lines: a hand-written scanner that walks the JSON text once,
 * validates its syntax, and copies only the fields normalisation reads into a `HubbleFields` record —
 * without building the objects JSON.parse would. Anything unusual (escape sequences, control
 * characters, whitespace between tokens, null values, numbers that are not plain integers, strings
 * where numbers are expected, duplicate object-valued keys, non-flow records, bare Flow objects)
 * makes it give up and return undefined; the caller then uses the JSON.parse path, so results are
 * always those of `parseHubbleLineSlow`.
 */
import type { BuiltEndpoint, HubbleEndpointFields, HubbleFields, HubbleResult } from './hubble.ts';
import {
  addCiliumLabel,
  emptyHubbleFields,
  finishHubble,
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
// eslint-disable-next-line no-control-regex -- as above, newlines allowed (a block of lines)
const PLAIN_BLOCK = /^[^\\\x00-\x09\x0b-\x1f]*$/;

/**
 * True when a block of lines has no backslash and no control character other than newline. (The
 * scanner no longer needs this: it checks each line itself, skipping endpoint texts it remembers.)
 */
export function isPlainBlock(text: string): boolean {
  return PLAIN_BLOCK.test(text);
}

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

/**
 * Scans one line; undefined when the line must take the JSON.parse path. (`plain`, a promise that
 * the line has no backslash or control character, is accepted for compatibility; the scanner checks.)
 */
export function scanHubbleLine(line: string, plain = false): HubbleFields | undefined {
  void plain;
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
export function parseHubbleLine(line: string, plain = false): HubbleResult {
  void plain;
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

function bool(): boolean {
  const c = S.charCodeAt(P);
  if (c === 116 && at(S, P, 'true')) {
    P += 4;
    return true;
  }
  if (c === 102 && at(S, P, 'false')) {
    P += 5;
    return false;
  }
  return giveUp();
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

function scanEnvelope(): HubbleFields {
  let f: HubbleFields | undefined;
  let time: string | undefined;
  if (!openObject()) giveUp();
  do {
    const n = key();
    if (n === 4 && is('flow')) {
      if (f !== undefined) giveUp();
      f = scanFlow(F);
    } else if (n === 4 && is('time')) time = str();
    else if (n === 11 && (is('node_status') || is('lost_events') || is('agent_event') || is('debug_event')))
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

function once(seen: number, bit: number): number {
  if (seen & bit) giveUp();
  return seen | bit;
}

function scanFlow(f: HubbleFields): HubbleFields {
  let seen = 0;
  if (!openObject()) return f;
  do {
    switch (key()) {
      case 2: {
        const c0 = S.charCodeAt(KS);
        const c1 = S.charCodeAt(KS + 1);
        if (c0 === 73 && c1 === 80) {
          seen = once(seen, SEEN_IP);
          scanIP(f);
        } else if (c0 === 108 && c1 === 52) {
          seen = once(seen, SEEN_L4);
          scanL4(f);
        } else if (c0 === 108 && c1 === 55) {
          seen = once(seen, SEEN_L7);
          scanL7(f);
        } else skip();
        break;
      }
      case 4:
        if (is('time')) f.time = str();
        else skip();
        break;
      case 5:
        if (is('reply')) f.reply = bool();
        else skip();
        break;
      case 6:
        if (is('source')) {
          seen = once(seen, SEEN_SRC);
          scanEndpointMemo(f.src);
        } else skip();
        break;
      case 7:
        if (is('verdict')) f.verdict = enumValue();
        else skip();
        break;
      case 8:
        if (is('is_reply')) f.isReply = bool();
        else skip();
        break;
      case 11:
        if (is('destination')) {
          seen = once(seen, SEEN_DST);
          scanEndpointMemo(f.dst);
        } else skip();
        break;
      case 12:
        if (is('source_names')) f.src.names = stringArray();
        else if (is('trace_reason')) f.traceReason = enumValue();
        else skip();
        break;
      case 14:
        if (is('source_service')) {
          seen = once(seen, SEEN_SRC_SVC);
          scanService(f.src);
        } else skip();
        break;
      case 16:
        if (is('drop_reason_desc')) f.dropReason = enumValue();
        else skip();
        break;
      case 17:
        if (is('destination_names')) f.dst.names = stringArray();
        else skip();
        break;
      case 19:
        if (is('destination_service')) {
          seen = once(seen, SEEN_DST_SVC);
          scanService(f.dst);
        } else skip();
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
    const n = key();
    if (n === 6 && is('source')) f.src.ip = str();
    else if (n === 11 && is('destination')) f.dst.ip = str();
    else skip();
  } while (more(125));
}

function scanL4(f: HubbleFields): void {
  if (!openObject()) return;
  do {
    const n = key();
    if (f.l4 !== undefined || S.charCodeAt(P) !== 123 || (n === 8 && is('protocol'))) giveUp();
    const k = S.slice(KS, KS + n);
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
    const n = key();
    if (n === 11 && is('source_port')) f.src.port = int(65535);
    else if (n === 16 && is('destination_port')) f.dst.port = int(65535);
    else if (tcp && n === 5 && is('flags')) {
      if (flagsSeen) giveUp();
      flagsSeen = true;
      if (openObject()) {
        do {
          const m = key();
          if (m === 3 && is('SYN')) f.syn = bool();
          else if (m === 3 && is('ACK')) f.ack = bool();
          else skip();
        } while (more(125));
      }
    } else skip();
  } while (more(125));
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
interface EndpointMemo {
  /** Hash of the first MEMO_KEY characters (cheap rejection before the text comparison). */
  hash: number;
  text: string;
  namespace: string | undefined;
  pod: string | undefined;
  labels: string[] | undefined;
  reserved: HubbleEndpointFields['reserved'];
  identity: number | undefined;
  workloadName: string | undefined;
  workloadKind: string | undefined;
  /** The FlowEndpoint built last from this text (finish reuses it while the address is the same). */
  built: BuiltEndpoint;
}

const MEMO_KEY = 32;
const MEMO_SETS = 4096;
/**
 * Two-way set-associative: set = the hash's low bits; entry 2*set is the most recently used, 2*set+1
 * the other. A new text goes first and pushes the older one out.
 */
const memo: (EndpointMemo | undefined)[] = new Array<EndpointMemo | undefined>(2 * MEMO_SETS).fill(undefined);

/** Freezes a remembered array that flows share (typed as mutable: FlowEndpoint.labels is string[]). */
function frozen(a: string[]): string[] {
  Object.freeze(a);
  return a;
}

/**
 * Forgets every remembered endpoint text and labels array (results never depend on them; benchmarks
 * use this to start each round cold).
 */
export function resetScannerMemo(): void {
  memo.fill(undefined);
  labelsMemo.clear();
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

function matches(m: EndpointMemo | undefined, hash: number, start: number): m is EndpointMemo {
  if (m === undefined || m.hash !== hash) return false;
  const end = start + m.text.length;
  return end <= END && S.slice(start, end) === m.text;
}

function scanEndpointMemo(e: HubbleEndpointFields): void {
  const start = P;
  const hash = memoHash(start);
  const i = (hash & (MEMO_SETS - 1)) << 1;
  let m = memo[i];
  if (!matches(m, hash, start)) {
    const other = memo[i + 1];
    if (matches(other, hash, start)) {
      memo[i + 1] = m;
      memo[i] = other;
      m = other;
    } else m = undefined;
  }
  if (m !== undefined) {
    e.namespace = m.namespace;
    e.pod = m.pod;
    // Shared and frozen: flows are plain data that nothing modifies.
    e.labels = m.labels;
    e.reserved = m.reserved;
    e.identity = m.identity;
    e.workloadName = m.workloadName;
    e.workloadKind = m.workloadKind;
    e.built = m.built;
    checkTo(start);
    P = CLEAN = start + m.text.length;
    return;
  }
  LABELS_SHARED = false;
  scanEndpoint(e);
  // Only checked text is remembered: a later hit skips the check.
  checkTo(P);
  // The remembered strings are copies: slices would keep the whole block they came from alive.
  // (Labels that came from the labels memo are copies already.)
  const labels = e.labels === undefined || LABELS_SHARED ? e.labels : frozen(e.labels.map(detached));
  e.labels = labels;
  const built: BuiltEndpoint = { endpoint: undefined };
  e.built = built;
  e.namespace = detachedOpt(e.namespace);
  e.pod = detachedOpt(e.pod);
  e.workloadName = detachedOpt(e.workloadName);
  e.workloadKind = detachedOpt(e.workloadKind);
  memo[i + 1] = memo[i];
  memo[i] = {
    hash,
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
}

/**
 * Labels memo. An endpoint text the endpoint memo does not know (another pod, the same pod seen from
 * another node) mostly carries a labels array seen before: every pod of a workload has the same
 * labels. The candidate text runs from `[` to the first `]` after it; when it equals a remembered,
 * checked array text, that text is exactly the array (a JSON array's extent is fixed by its text) and
 * gives exactly the remembered labels. (An array with a `]` inside a string never hits; it is scanned.)
 * Bounded: cleared when it reaches LABELS_MAX entries.
 */
interface LabelsMemo {
  labels: string[] | undefined;
  reserved: HubbleEndpointFields['reserved'];
}
const LABELS_MAX = 32768;
const labelsMemo = new Map<string, LabelsMemo>();
/* eslint-disable no-var */
/** The current endpoint's labels came from the labels memo (they are detached copies already). */
var LABELS_SHARED = false;
/* eslint-enable no-var */

function scanLabels(e: HubbleEndpointFields): void {
  const start = P;
  if (S.charCodeAt(start) !== 91) giveUp();
  const close = S.indexOf(']', start);
  if (close < 0 || close >= END) giveUp();
  const text = S.slice(start, close + 1);
  const hit = labelsMemo.get(text);
  if (hit !== undefined) {
    checkTo(start);
    e.labels = hit.labels;
    e.reserved = hit.reserved;
    LABELS_SHARED = true;
    P = CLEAN = close + 1;
    return;
  }
  scanLabelsText(e);
  LABELS_SHARED = false;
  if (P !== close + 1) return;
  checkTo(P);
  const labels = e.labels === undefined ? undefined : frozen(e.labels.map(detached));
  e.labels = labels;
  LABELS_SHARED = true;
  if (labelsMemo.size >= LABELS_MAX) labelsMemo.clear();
  labelsMemo.set(detached(text), { labels, reserved: e.reserved });
}

/** Normalises labels in place: only kept labels are sliced out of the line. */
function scanLabelsText(e: HubbleEndpointFields): void {
  e.labels = undefined;
  e.reserved = undefined;
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
        s.charCodeAt(a + 6) === 46 && // .
        (at(s, a + 4, 'io.cilium.k8s.') || at(s, a + 4, 'io.kubernetes.pod.namespace='))
      ))
        (labels ??= []).push(s.slice(a + 4, b));
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
