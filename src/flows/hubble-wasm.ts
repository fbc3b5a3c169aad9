/**
 * Hubble jsonpb lines scanned on their raw bytes by the WebAssembly scanner (native/hubble-scan, built
 * into hubble-scan.wasm beside this file): a block of whole lines is copied (or read) into the
 * scanner's memory, scanned in one call, and every line comes back either as the fields normalisation
 * reads (numbers and ids of interned values) or as "take the JSON.parse path". Interned values
 * (strings, hour prefixes of timestamps, label arrays, endpoint objects, name lists, services) are
 * decoded here once, on first sight: strings as they are; label arrays split into their strings
 * (plain, as the scanner checked) and kept by the JSON.parse path's label rules; name lists, and
 * services not in Hubble's own plain shape, with that path's extraction code; endpoints from the
 * fields the scanner read (its type checks are those of that extraction). A value that extraction
 * rejects sends every line that carries it down the JSON.parse path, so results are always exactly
 * those of `parseHubbleLineSlow`.
 *
 * Pure computation on plain data: no I/O beyond loading the module file once.
 */
import { readFileSync } from 'node:fs';
import { isIPAddress, isLoopbackIP, parseRfc3339 } from './common.ts';
import type { Deduplicator } from './dedup.ts';
import {
  FIELD_IP,
  FIELD_LABELS,
  FIELD_NAMESPACE,
  FIELD_POD,
  FIELD_RESERVED,
  FIELD_SERVICE,
  FIELD_WORKLOAD,
  PROTOCOL_CODE,
  verdictRank,
} from './dedup.ts';
import type { DirectionRule } from './direction.ts';
import { DIRECTION_RULES, direction } from './direction.ts';
import { FlowInputError } from './errors.ts';
import type {
  BuiltEndpoint,
  EndpointTemplate,
  HubbleEndpointFields,
  HubbleFields,
  HubbleResult,
} from './hubble.ts';
import type { Flow, Protocol, ReservedIdentity, Verdict } from './types.ts';
import {
  CILIUM_DERIVED_PREFIXES,
  K8S_SOURCE,
  POD_NAMESPACE_LABEL,
  RESERVED_SOURCE,
  addReserved,
  applyEndpointTemplate,
  emptyEndpointFields,
  emptyHubbleFields,
  extractService,
  finishHubble,
  l7TypeName,
  reservedOf,
  resetHubbleFields,
  stringArray,
  traceReasonName,
  verdictOf,
} from './hubble.ts';

// Record layout: must match native/hubble-scan/src/lib.rs.
const SLOTS = 30;
const S_STATUS = 0;
const S_START = 1;
const S_END = 2;
const S_HOUR = 3;
const S_MS = 4;
const S_VERDICT = 5;
const S_DROP = 6;
const S_TRACE = 7;
const S_SRC_IP = 8;
const S_DST_IP = 9;
const S_L4 = 10;
const S_SPORT = 11;
const S_DPORT = 12;
const S_ICMP = 13;
const S_SYN = 14;
const S_ACK = 15;
const S_SRC_EP = 16;
const S_DST_EP = 17;
const S_SRC_NAMES = 18;
const S_DST_NAMES = 19;
const S_SRC_SVC = 20;
const S_DST_SVC = 21;
const S_REPLY = 22;
const S_IS_REPLY = 23;
const S_L7_TYPE = 24;
const S_DNS_QUERY = 25;
/** Offset and length (the next slot) of the flow's time text, then of the envelope's. */
const S_TIME_AT = 26;
const S_ENV_TIME_AT = 28;

const KIND_STR = 0;
const KIND_HOUR = 1;
const KIND_EP = 2;
const KIND_NAMES = 3;
const KIND_SVC = 4;
const KIND_LABELS = 5;
/** An absent string id in an endpoint's words. */
const NONE = 0xffffffff;

/** The interned values are forgotten when their bytes pass this size (between blocks). */
const ARENA_LIMIT = 64 << 20;
let arenaLimit = ARENA_LIMIT;

/** Bytes of the scanner's linear memory (its input block, records and interned values). */
export function wasmScannerMemory(): number {
  return wasm === undefined ? 0 : wasm.memory.buffer.byteLength;
}

/** Bytes of interned values the scanner holds (the arena that is forgotten past the limit below). */
export function wasmArenaBytes(): number {
  return wasm === undefined ? 0 : wasm.arena_size();
}

/** Sets the size at which interned values are forgotten (tests use a small one); returns the old one. */
export function setWasmArenaLimit(bytes: number): number {
  const old = arenaLimit;
  arenaLimit = bytes;
  return old;
}

interface ScannerExports {
  memory: WebAssembly.Memory;
  input(capacity: number): number;
  scan(len: number): number;
  records(): number;
  news(): number;
  news_count(): number;
  arena(): number;
  arena_size(): number;
  reset(): void;
  slots(): number;
}

/**
 * What an endpoint object gives, decoded once per distinct text. It is its own `built` holder (the
 * FlowEndpoint built last from the text alone); the one built with a service is held per service id: the
 * first service the endpoint came with in `svc`/`withSvc`, any other in `builtWith`. (Tens of thousands
 * of endpoints are remembered; a holder object and a Map each would double what they take.)
 */
interface EndpointInfo extends EndpointTemplate, BuiltEndpoint {
  svc: number;
  withSvc: BuiltEndpoint | undefined;
  builtWith: Map<number, BuiltEndpoint> | undefined;
}

export interface ServiceInfo {
  name: string | undefined;
  namespace: string | undefined;
}

let wasm: ScannerExports | undefined;
// The compiled module, kept when an instance is dropped (holdWasmScanner): a new instance then starts
// with the code the engine has already compiled and optimised, instead of compiling the module again
// and running its first blocks on baseline code.
let wasmModule: WebAssembly.Module | undefined;

function scanner(): ScannerExports {
  if (wasm === undefined) {
    wasmModule ??= new WebAssembly.Module(readFileSync(new URL('./hubble-scan.wasm', import.meta.url)));
    const instance = new WebAssembly.Instance(wasmModule, {});
    const x = instance.exports as unknown as ScannerExports;
    if (x.slots() !== SLOTS)
      throw new Error(`hubble-scan.wasm has ${x.slots()} slots per line, expected ${SLOTS}`);
    wasm = x;
  }
  return wasm;
}

// Decoded values by kind and id (null: extraction rejected the name list or service; its lines take
// the slow path). Endpoints and label arrays are always decoded: the scanner validated all they hold.
let strs: string[] = [];
let hours: number[] = [];
let endpoints: EndpointInfo[] = [];
let nameLists: (string[] | null)[] = [];
let services: (ServiceInfo | null)[] = [];
/** Cilium label arrays by id: the labels kept (frozen, shared) and the reserved identity they name. */
let labelSets: LabelSet[] = [];

interface LabelSet {
  labels: string[] | undefined;
  reserved: ReservedIdentity | undefined;
  /** The namespace of an `io.kubernetes.pod.namespace=` label (see HubbleEndpointFields). */
  namespace: string | undefined;
}

/** Forgets every interned value (the benchmarks start each round with nothing remembered). */
export function resetWasmScanner(): void {
  scanner().reset();
  forgetDecoded();
}

// Readers scanning now (see holdWasmScanner).
let holders = 0;

/**
 * Marks the scanner as in use by a reader until the returned function is called. When the last reader
 * lets go, the scanner's instance and every decoded value are dropped, so that their memory (the
 * linear memory, tens of MB after a long input, and the endpoints decoded from it) can be collected
 * while the caller goes on to other work; the next scan starts a fresh instance, as after a reset.
 */
export function holdWasmScanner(): () => void {
  holders++;
  let held = true;
  return () => {
    if (!held) return;
    held = false;
    if (--holders === 0) {
      wasm = undefined;
      forgetDecoded();
    }
  };
}

function forgetDecoded(): void {
  strs = [];
  ipValid = new Int8Array(0);
  sideBits = new Int32Array(0);
  hours = [];
  endpoints = [];
  nameLists = [];
  services = [];
  labelSets = [];
  workloadRecords = [];
  workloadOfName = new Int32Array(0);
  workloadKindIds = new Int32Array(0);
  ipNumbers = new Int32Array(0);
  ipNumbersOf = undefined;
  ipNumbersEpoch = -1;
  svcBits = new Int8Array(0);
  protocolById = [];
  verdictById = [];
}

const latin1 = new TextDecoder('latin1');

function decodeNews(x: ScannerExports): void {
  const n = x.news_count();
  if (n === 0) return;
  const news = new Uint32Array(x.memory.buffer, x.news(), n);
  const arena = Buffer.from(x.memory.buffer, x.arena(), x.arena_size());
  for (let i = 0; i < n;) {
    const kind = news[i]!;
    const id = news[i + 1]!;
    const off = news[i + 2]!;
    const len = news[i + 3]!;
    const words = i + 5;
    i = words + news[i + 4]!;
    if (kind === KIND_EP) {
      const info = endpointFromWords(news, words, arena);
      endpoints[id] = info;
      (sideBits = roomFor(sideBits, id, -1))[id] = endpointBits(info);
      continue;
    }
    if (kind === KIND_LABELS) {
      labelSets[id] = decodeLabels(arena, off, len);
      continue;
    }
    // The scanner accepts only ASCII, so latin1 decoding is exact.
    const text = arena.toString('latin1', off, off + len);
    switch (kind) {
      case KIND_STR:
        strs[id] = text;
        break;
      case KIND_HOUR:
        hours[id] = parseRfc3339(text + ':00:00Z');
        break;
      case KIND_NAMES:
        nameLists[id] = decodeNames(text);
        break;
      case KIND_SVC: {
        const svc = decodeService(text);
        services[id] = svc;
        (svcBits = roomFor(svcBits, id, -1))[id] = svc === null ? -1 : svc.name ? FIELD_SERVICE : 0;
        break;
      }
    }
  }
}

/** Runs the JSON.parse path's extraction on one value; null when it rejects it. */
function extracting<T>(fn: () => T): T | null {
  try {
    return fn();
  } catch (err) {
    if (err instanceof FlowInputError) return null;
    throw err;
  }
}

const QUOTE = 0x22;
const COLON = 0x3a;
const EQUALS = 0x3d;
const K8S_BYTES = Buffer.from(K8S_SOURCE, 'latin1');
const RESERVED_BYTES = Buffer.from(RESERVED_SOURCE, 'latin1');
const DERIVED_BYTES = CILIUM_DERIVED_PREFIXES.map((p) => Buffer.from(p, 'latin1'));
const NAMESPACE_BYTES = DERIVED_BYTES[CILIUM_DERIVED_PREFIXES.indexOf(POD_NAMESPACE_LABEL)]!;

/**
 * A `labels` array, from its bytes arena[off, off + len): the labels kept and the reserved identity,
 * by the rules of addCiliumLabel (see ciliumLabelAt). The scanner interns an array only when it is
 * `[`, then strings separated by `,`, then `]`, with no whitespace, escape or quote inside a string:
 * each label is the bytes from after a `"` to the next `"`. Read where they lie, without the array's
 * text as a string (a round of 200k lines decoded 4.5 MB of such texts only to split them); a kept
 * label is copied out on its own.
 */
function decodeLabels(arena: Buffer, off: number, len: number): LabelSet {
  const e = labelScratch;
  e.reserved = undefined;
  e.labelNamespace = undefined;
  const labels = keptScratch;
  labels.length = 0;
  if (len > 2) {
    // The last label's closing quote, before the `]`.
    const last = off + len - 2;
    for (let at = off + 2; ;) {
      let end = at;
      // (Bounded by `last`, a quote, whatever the bytes: never a run past the array.)
      while (end < last && arena[end] !== QUOTE) end++;
      const from = ciliumLabelAt(e, arena, at, end);
      if (from >= 0) labels.push(arena.toString('latin1', from, end));
      if (end >= last) break;
      at = end + 3;
    }
  }
  // A copy of exactly its length, frozen and shared; none when no label is kept.
  const kept = labels.length > 0 ? Object.freeze(labels.slice()) : undefined;
  labels.length = 0;
  return { labels: kept as string[] | undefined, reserved: e.reserved, namespace: e.labelNamespace };
}

// decodeLabels's scratch: the reserved identity found and the labels kept so far (reused: a round of
// 200k lines decodes tens of thousands of arrays).
const labelScratch = emptyEndpointFields();
const keptScratch: string[] = [];

/**
 * The rules of addCiliumLabel (hubble.ts) on one label's bytes a[start, end): where the label kept
 * starts (after its `k8s:` source), or -1 when it is dropped; a `reserved:` label's identity, and the
 * namespace of an `io.kubernetes.pod.namespace=` label, are recorded in `e`.
 */
export function ciliumLabelAt(e: HubbleEndpointFields, a: Buffer, start: number, end: number): number {
  if (startsWith(a, start, end, K8S_BYTES)) {
    const from = start + K8S_BYTES.length;
    return derivedAt(e, a, from, end) ? -1 : from;
  }
  if (startsWith(a, start, end, RESERVED_BYTES)) {
    addReserved(e, a.toString('latin1', start + RESERVED_BYTES.length, end));
    return -1;
  }
  // Another source (cidr:, fqdn:, ...): a `:` before any `=`.
  for (let i = start; i < end; i++) {
    const c = a[i];
    if (c === EQUALS) break;
    if (c === COLON) return -1;
  }
  return derivedAt(e, a, start, end) ? -1 : start;
}

/**
 * Whether a[at, end) starts with one of the prefixes of labels Cilium derives; the namespace label's
 * value is recorded in `e`.
 */
function derivedAt(e: HubbleEndpointFields, a: Buffer, at: number, end: number): boolean {
  for (const p of DERIVED_BYTES)
    if (startsWith(a, at, end, p)) {
      if (p === NAMESPACE_BYTES) e.labelNamespace ??= a.toString('latin1', at + p.length, end);
      return true;
    }
  return false;
}

/** Whether a[at, end) starts with the bytes `p`. */
function startsWith(a: Buffer, at: number, end: number, p: Buffer): boolean {
  if (end - at < p.length) return false;
  for (let i = 0; i < p.length; i++) if (a[at + i] !== p[i]) return false;
  return true;
}

/**
 * An endpoint from the words the scanner read (see `Endpoint::words` in lib.rs): the fields
 * extractEndpoint would give. The pod name is not interned: it is read from the endpoint's bytes in
 * the arena (its offset and length in the words).
 */
function endpointFromWords(w: Uint32Array, i: number, arena: Buffer): EndpointInfo {
  const labels = w[i + 6] === NONE ? undefined : labelSets[w[i + 6]!];
  const podAt = w[i + 1]!;
  const workloadName = strOrNone(w[i + 4]!);
  const workloadKind = strOrNone(w[i + 5]!);
  const info: EndpointInfo = {
    // Decoded once per endpoint text: with no `namespace` field, the one its labels name.
    namespace: strOrNone(w[i]!) || labels?.namespace,
    pod: podAt === NONE ? undefined : arena.toString('latin1', podAt, podAt + w[i + 7]!),
    labels: labels?.labels,
    reserved: labels?.reserved,
    workloadName,
    workloadKind,
    workload: workloadName
      ? sharedWorkload(w[i + 4]!, w[i + 5]!, workloadName, workloadKind ?? '')
      : undefined,
    identity: w[i + 2] === 1 ? w[i + 3] : undefined,
    built: undefined as unknown as BuiltEndpoint,
    endpoint: undefined,
    svc: -1,
    withSvc: undefined,
    builtWith: undefined,
  };
  info.built = info;
  return info;
}

/** The FIELD_* bits newEndpoint (hubble.ts) gives a FlowEndpoint built from `info`; -1 for health. */
function endpointBits(info: EndpointInfo): number {
  const reserved = reservedOf(info.reserved, info.identity);
  return reserved === 'health'
    ? -1
    : (info.namespace ? FIELD_NAMESPACE : 0) |
        (info.pod ? FIELD_POD : 0) |
        (info.workloadName ? FIELD_WORKLOAD : 0) |
        (info.labels !== undefined ? FIELD_LABELS : 0) |
        (reserved !== undefined ? FIELD_RESERVED : 0);
}

// The frozen workload records endpoints share (pods of one workload are many endpoint texts), and per
// workload name's string id the index of the one of the kind seen last (-1: none; a typed array, as
// only the ids of workload names are set).
let workloadRecords: { kind: string; name: string }[] = [];
let workloadOfName = new Int32Array(0);
// Per workload record, its kind's string id (NONE as -1): compared instead of the record's kind, which
// would be a read of a record made long before (a cache miss per new endpoint).
let workloadKindIds = new Int32Array(0);

/** The shared record of the workload named by string id `nameId` of the kind with string id `kindId`. */
function sharedWorkload(
  nameId: number,
  kindId: number,
  name: string,
  kind: string,
): { kind: string; name: string } {
  const at = nameId < workloadOfName.length ? workloadOfName[nameId]! : -1;
  if (at >= 0 && workloadKindIds[at] === (kindId | 0)) return workloadRecords[at]!;
  const record = Object.freeze({ kind, name });
  const n = workloadRecords.push(record) - 1;
  (workloadOfName = roomFor(workloadOfName, nameId, -1))[nameId] = n;
  (workloadKindIds = roomFor(workloadKindIds, n, 0))[n] = kindId | 0;
  return record;
}

/** The string of an id in an endpoint's words, or undefined for NONE. */
function strOrNone(id: number): string | undefined {
  return id === NONE ? undefined : strs[id];
}

function decodeNames(text: string): string[] | null {
  return extracting(() => stringArray({ n: JSON.parse(text) as unknown }, 'n', 'flow.source_names') ?? []);
}

const SVC_NAME = '{"name":"';
const SVC_NAMESPACE = '","namespace":"';

/**
 * A service in the shape Hubble writes it, `{"name":"N","namespace":"S"}` with no `"` in N or S (the
 * scanner's texts have no escapes): what the pattern `^\{"name":"([^"]*)","namespace":"([^"]*)"\}$`
 * matches, found with `indexOf` (a match array per new service was 1.3 MB per 200k lines); undefined
 * for any other text.
 */
export function plainService(text: string): ServiceInfo | undefined {
  if (!text.startsWith(SVC_NAME)) return undefined;
  const nameEnd = text.indexOf('"', SVC_NAME.length);
  if (nameEnd < 0 || !text.startsWith(SVC_NAMESPACE, nameEnd)) return undefined;
  const from = nameEnd + SVC_NAMESPACE.length;
  const end = text.indexOf('"', from);
  if (end !== text.length - 2 || text.charCodeAt(end + 1) !== 0x7d) return undefined;
  return { name: text.slice(SVC_NAME.length, nameEnd), namespace: text.slice(from, end) };
}

function decodeService(text: string): ServiceInfo | null {
  const plain = plainService(text);
  if (plain !== undefined) return plain;
  return extracting(() => {
    const e = emptyEndpointFields();
    extractService({ s: JSON.parse(text) as unknown }, 's', 'flow.source_service', e);
    return { name: e.serviceName, namespace: e.serviceNamespace };
  });
}

const scratch = emptyHubbleFields('flow.');

function str(id: number): string | undefined {
  return id < 0 ? undefined : strs[id];
}

/** An enum slot: a name's id (>= 0), a number n as -2 - n, or -1 when absent. */
function enumValue(v: number): string | number | undefined {
  return v >= 0 ? strs[v] : v === -1 ? undefined : -2 - v;
}

function flag(v: number): boolean | undefined {
  return v < 0 ? undefined : v === 1;
}

function num(v: number): number | undefined {
  return v < 0 ? undefined : v;
}

/** Fills `e` from an endpoint id; false when the endpoint must take the slow path. */
function fillEndpoint(
  e: HubbleFields['src'],
  ep: number,
  ip: number,
  port: number,
  names: number,
  svc: number,
): boolean {
  if (ip >= 0) {
    e.ip = strs[ip];
    e.ipValid = isIP(ip);
  }
  e.port = num(port);
  if (ep >= 0) {
    const info = endpoints[ep];
    if (info === undefined) return false;
    applyEndpointTemplate(e, info);
  }
  if (names >= 0) {
    const n = nameLists[names];
    if (n === null || n === undefined) return false;
    e.names = n;
  }
  if (svc >= 0) {
    const s = services[svc];
    if (s === null || s === undefined) return false;
    e.serviceName = s.name;
    e.serviceNamespace = s.namespace;
    if (ep >= 0) {
      const info = endpoints[ep]!;
      let b: BuiltEndpoint | undefined;
      if (info.svc === svc) b = info.withSvc;
      else if (info.svc === -1) {
        info.svc = svc;
        b = info.withSvc = { endpoint: undefined, withService: true };
      } else {
        b = (info.builtWith ??= new Map<number, BuiltEndpoint>()).get(svc);
        if (b === undefined) info.builtWith.set(svc, (b = { endpoint: undefined, withService: true }));
      }
      e.built = b;
    }
  }
  return true;
}

/** The text of a time slot pair (offset, length) in the block, or undefined when absent. */
function timeText(block: Uint8Array, r: Int32Array, at: number): string | undefined {
  const from = r[at]!;
  return from < 0 ? undefined : latin1.decode(block.subarray(from, from + r[at + 1]!));
}

/** The normalised result of one scanned line, or undefined when it must take the slow path. */
function finishLine(block: Uint8Array, r: Int32Array, o: number): HubbleResult | undefined {
  const f = resetHubbleFields(scratch);
  const hour = r[o + S_HOUR]! >= 0 ? hours[r[o + S_HOUR]!]! : NaN;
  if (!Number.isNaN(hour)) f.timeMs = hour + r[o + S_MS]!;
  else {
    // Not the usual shape (or not a valid hour): the texts go to finish as the JSON.parse path's do.
    f.time = timeText(block, r, o + S_TIME_AT);
    f.envelopeTime = timeText(block, r, o + S_ENV_TIME_AT);
  }
  f.verdict = enumValue(r[o + S_VERDICT]!);
  f.dropReason = enumValue(r[o + S_DROP]!);
  f.traceReason = enumValue(r[o + S_TRACE]!);
  f.l7Type = enumValue(r[o + S_L7_TYPE]!);
  f.dnsQuery = str(r[o + S_DNS_QUERY]!);
  f.l4 = str(r[o + S_L4]!);
  f.icmpType = num(r[o + S_ICMP]!);
  f.syn = flag(r[o + S_SYN]!);
  f.ack = flag(r[o + S_ACK]!);
  f.reply = flag(r[o + S_REPLY]!);
  f.isReply = flag(r[o + S_IS_REPLY]!);
  if (
    !fillEndpoint(
      f.src,
      r[o + S_SRC_EP]!,
      r[o + S_SRC_IP]!,
      r[o + S_SPORT]!,
      r[o + S_SRC_NAMES]!,
      r[o + S_SRC_SVC]!,
    ) ||
    !fillEndpoint(
      f.dst,
      r[o + S_DST_EP]!,
      r[o + S_DST_IP]!,
      r[o + S_DPORT]!,
      r[o + S_DST_NAMES]!,
      r[o + S_DST_SVC]!,
    )
  )
    return undefined;
  return finishHubble(f);
}

/**
 * The FIELD_* bits of the endpoint a line's endpoint slots give, or -1 when the line must be
 * normalised in full for it (an endpoint or service extraction rejects, DNS names, a health endpoint).
 */
function sideFields(ep: number, names: number, svc: number): number {
  if (names >= 0) return -1;
  const bits = ep >= 0 ? (sideBits[ep] ?? -1) : 0;
  if (bits < 0 || svc < 0) return bits;
  const s = svcBits[svc] ?? -1;
  return s < 0 ? -1 : bits | s;
}

// Per endpoint id, the FIELD_* bits of its FlowEndpoint, or -1 when it must be normalised in full
// (a health endpoint); per service id, FIELD_SERVICE when it names a
// service, 0 when not, -1 when extraction rejected it. Typed arrays: the duplicate check reads them
// for every line, without touching the decoded objects.
let sideBits = new Int32Array(0);
let svcBits = new Int8Array(0);

// The de-duplicator's endpoint numbers of address string ids (-1: none known yet), for one
// de-duplicator and one numbering of its endpoints. Typed arrays indexed by string id: only the ids of
// addresses are set, and a JavaScript array set that sparsely can fall back to a dictionary.
let ipNumbers = new Int32Array(0);
let ipNumbersOf: Deduplicator | undefined;
let ipNumbersEpoch = -1;

/** `a` with room for index `i` at least (a copy twice as long when it has none); new room is `fill`. */
function roomFor<T extends Int32Array | Int8Array>(a: T, i: number, fill: number): T {
  if (i < a.length) return a;
  const b = new (a.constructor as new (n: number) => T)(Math.max(1024, 2 * a.length, i + 1));
  b.set(a);
  if (fill !== 0) b.fill(fill, a.length);
  return b;
}

/**
 * The de-duplicator's number of the address with string id `id` (a valid address), given now when it
 * has none (a line with a new address opens a connection, whose flow `add` numbers the same way), or
 * undefined when numbers are about to be given afresh.
 */
function ipNumber(dedup: Deduplicator, id: number): number | undefined {
  if (ipNumbersOf !== dedup || ipNumbersEpoch !== dedup.numbering) {
    ipNumbers.fill(-1);
    ipNumbersOf = dedup;
    ipNumbersEpoch = dedup.numbering;
  }
  if (id < ipNumbers.length) {
    const known = ipNumbers[id]!;
    if (known >= 0) return known;
  }
  const n = dedup.endpointNumber(strs[id]!, true);
  if (n !== undefined && n <= 0x7fffffff) (ipNumbers = roomFor(ipNumbers, id, -1))[id] = n;
  return n;
}

// What the string of an id is, once asked: 0 not asked yet, else one of these.
const IP_ADDRESS = 1;
const NO_IP = 2;
const LOOPBACK_IP = 3;
let ipValid = new Int8Array(0);

/** What the string with id `id` is: IP_ADDRESS, NO_IP or LOOPBACK_IP (remembered per id). */
function ipKind(id: number): number {
  if (id < ipValid.length) {
    const known = ipValid[id]!;
    if (known !== 0) return known;
  }
  const text = strs[id]!;
  const kind = !isIPAddress(text) ? NO_IP : isLoopbackIP(text) ? LOOPBACK_IP : IP_ADDRESS;
  (ipValid = roomFor(ipValid, id, 0))[id] = kind;
  return kind;
}

/** Whether the string with id `id` is an IP address. */
function isIP(id: number): boolean {
  return ipKind(id) !== NO_IP;
}

/**
 * Whether an address slot holds a valid IP address (never the empty string) that a held connection may
 * have: not a loopback one, whose lines normalisation skips (they must not move the de-duplicator's
 * generations either, as `absorbs` would).
 */
function validIP(id: number): boolean {
  return id >= 0 && ipKind(id) === IP_ADDRESS;
}

// What fastDuplicate made of a string id as a protocol and as a verdict (null: none it models).
let protocolById: (Protocol | null)[] = [];
let verdictById: (Verdict | null)[] = [];

/** The protocols whose observations fastDuplicate models. */
const FAST_PROTOCOLS = new Map<string, Protocol>([
  ['TCP', 'TCP'],
  ['UDP', 'UDP'],
  ['SCTP', 'SCTP'],
]);

/**
 * Where a block's repeated observations go without a Flow being built for them: the de-duplicator
 * that holds the connections, the array its emitted records go to, and a callback per such line.
 */
export interface DuplicateSink {
  dedup: Deduplicator;
  out: Flow[];
  /** Called for a line that was an observation adding nothing to a connection already held. */
  duplicate(rule: DirectionRule, flipped: boolean): void;
}

/**
 * Whether a scanned line is an observation that `normalise + dedup.add` would merge into a held
 * connection without changing it (mergeObservation returning the kept record); if so, it is counted
 * as a duplicate and reported to the sink. Lines that would be anything else — a new connection, a
 * merge that adds, a skip, a bad line, a shape this check does not model (ICMP, DNS names, drop
 * reasons, a DNS query, unusual time text) — return false and are normalised in full.
 */
function fastDuplicate(r: Int32Array, o: number, sink: DuplicateSink): boolean {
  const hourId = r[o + S_HOUR]!;
  if (hourId < 0) return false;
  const hour = hours[hourId]!;
  if (Number.isNaN(hour)) return false;
  const time = hour + r[o + S_MS]!;
  const l4 = r[o + S_L4]!;
  if (l4 < 0) return false;
  const protocol = (protocolById[l4] ??= FAST_PROTOCOLS.get(strs[l4]!) ?? null);
  if (protocol === null) return false;
  const drop = r[o + S_DROP]!;
  if (drop !== -1 && drop !== -2) {
    // Only an absent or empty drop reason is modelled here (-2 is the number 0).
    const d = drop >= 0 ? strs[drop] : undefined;
    if (d !== '' && d !== 'DROP_REASON_UNKNOWN') return false;
  }
  const dns = r[o + S_DNS_QUERY]!;
  if (dns >= 0 && strs[dns] !== '') return false;
  const v = r[o + S_VERDICT]!;
  const verdict =
    v >= 0 ? (verdictById[v] ??= verdictOf(strs[v]) ?? null) : (verdictOf(enumValue(v)) ?? null);
  if (verdict === null) return false;
  const srcId = r[o + S_SRC_IP]!;
  const dstId = r[o + S_DST_IP]!;
  if (!validIP(srcId) || !validIP(dstId)) return false;
  const srcFields = sideFields(r[o + S_SRC_EP]!, r[o + S_SRC_NAMES]!, r[o + S_SRC_SVC]!);
  if (srcFields < 0) return false;
  const dstFields = sideFields(r[o + S_DST_EP]!, r[o + S_DST_NAMES]!, r[o + S_DST_SVC]!);
  if (dstFields < 0) return false;
  const sport = r[o + S_SPORT]!;
  const dport = r[o + S_DPORT]!;
  const srcPort = sport < 0 ? 0 : sport;
  const dstPort = dport < 0 ? 0 : dport;
  if (srcPort > 0xffff || dstPort > 0xffff) return false;
  const dir = direction(
    protocol,
    flag(r[o + S_IS_REPLY]!),
    flag(r[o + S_REPLY]!),
    traceReasonName(enumValue(r[o + S_TRACE]!)),
    l7TypeName(enumValue(r[o + S_L7_TYPE]!)),
    r[o + S_SYN] === 1,
    r[o + S_ACK] === 1,
    srcPort,
    dstPort,
    dstPort,
  );
  const flip = (dir & 1) === 1;
  // The connection as the normalised flow names it: initiator first.
  const fromPort = flip ? dstPort : srcPort;
  if (fromPort === 0) return false;
  // A responder's port of 0 is a bad line (see finish in hubble.ts): it must not move the
  // de-duplicator's generations here, as absorbs would, before normalisation rejects it.
  const toPort = flip ? srcPort : dstPort;
  if (toPort === 0) return false;
  const dedup = sink.dedup;
  const s = ipNumber(dedup, flip ? dstId : srcId);
  if (s === undefined) return false;
  const d = ipNumber(dedup, flip ? srcId : dstId);
  if (d === undefined) return false;
  // Both ends have an address; the flow's endpoints are the line's, swapped when it is flipped.
  dedup.absorbTime[0] = time;
  if (
    !dedup.absorbs(
      PROTOCOL_CODE[protocol],
      s,
      d,
      fromPort,
      toPort,
      verdictRank(verdict),
      (flip ? dstFields : srcFields) | FIELD_IP,
      (flip ? srcFields : dstFields) | FIELD_IP,
      sink.out,
    )
  ) {
    // Not a duplicate: its flow comes to dedup.add next, with these endpoints.
    dedup.expect(strs[flip ? dstId : srcId]!, s, strs[flip ? srcId : dstId]!, d);
    return false;
  }
  sink.duplicate(DIRECTION_RULES[dir >> 1]!, flip);
  return true;
}

/**
 * Called for every line of a block: the result, or undefined when the line must take the JSON.parse
 * path (or is not a Hubble flow line at all: blank, events, anything unusual); `start` and `end` are
 * the line's byte offsets in `bytes` (end at its '\n'): the caller's bytes for `scanHubbleBlock`, the
 * scanner's input block for `scanHubbleInput` (valid during the call only).
 */
export type HubbleLineHandler = (
  result: HubbleResult | undefined,
  start: number,
  end: number,
  bytes: Uint8Array,
) => void;

/**
 * Scans bytes[start, end) — whole lines, the last one ended by '\n' — calling `onLine` for each line
 * in order. With a `sink`, a line that is an observation adding nothing to a connection its
 * de-duplicator holds goes to `sink.duplicate` instead (no Flow is built for it); `onLine` gets the
 * others, and their flows are meant for the same de-duplicator. The bytes are copied into the
 * scanner's memory first; `hubbleInput` and `scanHubbleInput` scan bytes read there directly.
 */
export function scanHubbleBlock(
  bytes: Uint8Array,
  start: number,
  end: number,
  onLine: HubbleLineHandler,
  sink?: DuplicateSink,
): void {
  const len = end - start;
  hubbleInput(len).set(bytes.subarray(start, end));
  scanLines(scanner(), len, bytes, start, onLine, sink);
}

/**
 * The scanner's input block, with room for `capacity` bytes, for a caller that reads bytes into it
 * (a file read straight into the scanner's memory: no copy) and then calls `scanHubbleInput`. The
 * view is valid until the next call into the scanner (its memory may grow, which detaches views);
 * what the block holds stays until the next `scanHubbleBlock` or until another caller writes it, and
 * a scan writes over the bytes just after those it scans, so a caller reads into it, copies out what
 * it keeps of it (a partial line) and scans, with nothing in between. Interned values past their
 * limit are forgotten here, between blocks.
 */
export function hubbleInput(capacity: number): Uint8Array {
  const x = scanner();
  if (x.arena_size() > arenaLimit) resetWasmScanner();
  const at = x.input(capacity); // first: it may grow the memory, detaching the old buffer
  return new Uint8Array(x.memory.buffer, at, capacity);
}

/**
 * Scans the first `len` bytes of the input block (filled through `hubbleInput`): whole lines, the
 * last one ended by '\n', as `scanHubbleBlock` scans its bytes.
 */
export function scanHubbleInput(len: number, onLine: HubbleLineHandler, sink?: DuplicateSink): void {
  scanLines(scanner(), len, undefined, 0, onLine, sink);
}

/**
 * Scans input[0, len), whose bytes are also `bytes[base, base + len)` (or, without `bytes`, read in the
 * scanner's memory), reporting each line's offsets in those bytes.
 */
function scanLines(
  x: ScannerExports,
  len: number,
  bytes: Uint8Array | undefined,
  base: number,
  onLine: HubbleLineHandler,
  sink: DuplicateSink | undefined,
): void {
  const lines = x.scan(len);
  decodeNews(x);
  // Views made after the scan: the scanner's memory may have grown during it.
  const r = new Int32Array(x.memory.buffer, x.records(), lines * SLOTS);
  const lineBytes = bytes ?? new Uint8Array(x.memory.buffer, x.input(0), len); // input(0) never grows it
  const block = bytes === undefined ? lineBytes : bytes.subarray(base, base + len);
  for (let i = 0, o = 0; i < lines; i++, o += SLOTS) {
    if (sink !== undefined && r[o + S_STATUS] === 0 && fastDuplicate(r, o, sink)) continue;
    const result = r[o + S_STATUS] === 0 ? finishLine(block, r, o) : undefined;
    onLine(result, base + r[o + S_START]!, base + r[o + S_END]!, lineBytes);
  }
}
