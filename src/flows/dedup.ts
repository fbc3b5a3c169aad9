/**
 * De-duplication of observations of one connection.
 *
 * A *connection* is identified by its normalised 5-tuple: protocol, initiator address, initiator port,
 * responder address and responder port (for ICMP: protocol, both addresses and the ICMP type; an
 * address is the IP, or `namespace/pod` when the collector gave no IP). Every observation of the same
 * tuple whose time falls within the window of the connection's first observation is the same
 * connection: the egress trace at the source node, the ingress trace at the destination, the overlay
 * hop, the policy-verdict event, the L7 proxy record and the reply packets all collapse into one record.
 *
 * Records without an initiator port (aggregates such as Kubescape neighbours or generic records without
 * `srcPort`, every generic ICMP record among them) cannot be told apart as connections and pass through
 * untouched. ICMP has no ports: an ICMP observation of Hubble, a packet, is keyed by its type instead
 * (see `isConnection`).
 *
 * Memory is bounded: entries live in two generations of `windowMs` each (current and previous, keyed
 * by the time of the newest observation seen so far). When the newest time moves into a new
 * generation, the older one is emitted and dropped; if the two together exceed `maxEntries`, the
 * older generation is emitted early (counted as `evictions`). Output order is deterministic: the
 * order in which connections were first seen, generation by generation.
 *
 * Observations out of time order (older than both generations) take another path (`addLate`), which
 * an input in time order never does: they are merged into a connection held or emitted less than a
 * window from them, else held in late generations of their own (by the generation of their time, in
 * the same bound), so that no observation meets one far from it in time under the same key.
 */
import type { Flow, FlowEndpoint, Protocol, Verdict } from './types.ts';

export interface DedupOptions {
  /** Width of one generation in milliseconds (default 30 s). */
  windowMs?: number;
  /** Upper bound on connections held at once (default 50 000). */
  maxEntries?: number;
  /**
   * Endpoint numbers (see Deduplicator.key) kept before they are given afresh to what is held and
   * to the emitted connections remembered (default 4 × maxEntries, at least 1024; never fewer than
   * four per connection held or remembered), so that a long run over many addresses stays bounded.
   */
  maxEndpointKeys?: number;
}

export const DEFAULT_DEDUP_WINDOW_MS = 30_000;
export const DEFAULT_DEDUP_MAX_ENTRIES = 50_000;

/** How strongly an observation's verdict speaks for the connection; higher wins when merging. */
const VERDICT_RANK: Record<Verdict, number> = {
  DROPPED: 7,
  ERROR: 6,
  AUDIT: 5,
  FORWARDED: 4,
  REDIRECTED: 3,
  TRANSLATED: 2,
  TRACED: 1,
  UNKNOWN: 0,
};

export function endpointKey(e: FlowEndpoint): string {
  if (e.ip) return e.ip;
  if (e.pod) return `${e.namespace ?? ''}/${e.pod}`;
  return '';
}

export const PROTOCOL_CODE: Record<Protocol, number> = { TCP: 1, UDP: 2, SCTP: 3, ICMPv4: 4, ICMPv6: 5 };

/** The verdicts by VERDICT_RANK. */
const RANKED_VERDICTS = (Object.keys(VERDICT_RANK) as Verdict[]).sort(
  (a, b) => VERDICT_RANK[a] - VERDICT_RANK[b],
);

/** How strongly a verdict speaks for a connection (a merge keeps the strongest). */
export function verdictRank(v: Verdict): number {
  return VERDICT_RANK[v];
}

// Bits of the fields a FlowEndpoint has, as far as a merge of two endpoints goes (see endpointFields).
export const FIELD_NAMESPACE = 1;
export const FIELD_POD = 2;
export const FIELD_WORKLOAD = 4;
export const FIELD_LABELS = 8;
export const FIELD_RESERVED = 16;
export const FIELD_SERVICE = 32;
export const FIELD_IP = 64;

/** The FIELD_* bits of the fields `e` has (names aside: they merge by content). */
export function endpointFields(e: FlowEndpoint): number {
  return (
    (e.ip !== undefined ? FIELD_IP : 0) |
    (e.namespace !== undefined ? FIELD_NAMESPACE : 0) |
    (e.pod !== undefined ? FIELD_POD : 0) |
    (e.workload !== undefined ? FIELD_WORKLOAD : 0) |
    (e.labels !== undefined ? FIELD_LABELS : 0) |
    (e.reserved !== undefined ? FIELD_RESERVED : 0) |
    (e.service !== undefined ? FIELD_SERVICE : 0)
  );
}

/**
 * What `absorbs` needs of a held record, so that it never reads the record itself: -1 when
 * mergeObservation returns a copy for any observation (not a Hubble record, a count, a drop reason on
 * a verdict other than DROPPED); else its verdict's rank (3 bits), then its endpoints' FIELD_* bits (7
 * each, source first).
 */
function absorbInfo(f: Flow): number {
  if (
    f.input !== 'hubble' ||
    f.count !== undefined ||
    (f.verdict !== 'DROPPED' && f.dropReason !== undefined)
  )
    return -1;
  return VERDICT_RANK[f.verdict] | (endpointFields(f.src) << 3) | (endpointFields(f.dst) << 10);
}

/**
 * The compact connection key (see Deduplicator.key) of a protocol code, two endpoint numbers and two
 * ports of at most 16 bits.
 */
export function compactKey(code: number, s: number, d: number, sport: number, port: number): string {
  return String.fromCharCode(code, s & 0xffff, s >>> 16, d & 0xffff, d >>> 16, sport, port);
}

/**
 * Whether a flow of the protocol class `icmp` takes part in de-duplication: with an initiator port, or
 * as an ICMP packet Hubble observed (ICMP has no ports; its type is in the key). A record of any other
 * input without an initiator port is an aggregate, which passes through untouched: a generic ICMP
 * record (the schema has no `srcPort` for ICMP) stands for `count` connections of its own, and two of
 * them are not one connection seen twice.
 */
function isConnection(f: Flow, icmp: boolean): boolean {
  return icmp ? f.input === 'hubble' : f.srcPort !== undefined;
}

/** The connection key of a flow, or undefined when it cannot be de-duplicated. */
export function connectionKey(f: Flow): string | undefined {
  const s = endpointKey(f.src);
  const d = endpointKey(f.dst);
  if (s === '' || d === '') return undefined;
  const icmp = f.protocol === 'ICMPv4' || f.protocol === 'ICMPv6';
  if (!isConnection(f, icmp)) return undefined;
  if (icmp) return `${f.protocol} ${s} ${d} ${f.port}`;
  return `${f.protocol} ${s} ${f.srcPort} ${d} ${f.port}`;
}

function mergeNames(a: string[] | undefined, b: string[] | undefined): string[] | undefined {
  if (!b || b.length === 0) return a;
  if (!a || a.length === 0) return b;
  let out: string[] | undefined;
  for (const n of b) {
    if (!a.includes(n) && !out?.includes(n)) (out ??= [...a]).push(n);
  }
  return out ?? a;
}

/** Fills what `into` lacks from `from` (the first observation's values win). */
function mergeEndpoint(into: FlowEndpoint, from: FlowEndpoint): FlowEndpoint {
  const out: FlowEndpoint = {};
  const ip = into.ip ?? from.ip;
  if (ip !== undefined) out.ip = ip;
  const ns = into.namespace ?? from.namespace;
  if (ns !== undefined) out.namespace = ns;
  const pod = into.pod ?? from.pod;
  if (pod !== undefined) out.pod = pod;
  const workload = into.workload ?? from.workload;
  if (workload !== undefined) out.workload = workload;
  const labels = into.labels ?? from.labels;
  if (labels !== undefined) out.labels = labels;
  const reserved = into.reserved ?? from.reserved;
  if (reserved !== undefined) out.reserved = reserved;
  const names = mergeNames(into.names, from.names);
  if (names !== undefined) out.names = names;
  const service = into.service ?? from.service;
  if (service !== undefined) out.service = service;
  return out;
}

/** True when merging `from` into `into` would give a copy of `into` (mergeEndpoint adds nothing). */
function endpointCovers(into: FlowEndpoint, from: FlowEndpoint): boolean {
  return (
    (into.ip !== undefined || from.ip === undefined) &&
    (into.namespace !== undefined || from.namespace === undefined) &&
    (into.pod !== undefined || from.pod === undefined) &&
    (into.workload !== undefined || from.workload === undefined) &&
    (into.labels !== undefined || from.labels === undefined) &&
    (into.reserved !== undefined || from.reserved === undefined) &&
    (into.service !== undefined || from.service === undefined) &&
    mergeNames(into.names, from.names) === into.names
  );
}

/**
 * Merges a later observation of the same connection into the record kept so far.
 *
 * Most observations of a connection add nothing to the first one. For Hubble records (built with
 * their keys in the order this merge writes them, and without undefined-valued keys) the kept record
 * is then returned as it is instead of an equal copy: same content, same key order.
 */
export function mergeObservation(kept: Flow, next: Flow): Flow {
  if (
    kept.input === 'hubble' &&
    kept.count === undefined &&
    next.count === undefined &&
    kept.time <= next.time &&
    VERDICT_RANK[next.verdict] <= VERDICT_RANK[kept.verdict] &&
    (kept.verdict === 'DROPPED'
      ? kept.dropReason !== undefined || next.dropReason === undefined
      : kept.dropReason === undefined) &&
    (kept.dnsQuery !== undefined || next.dnsQuery === undefined) &&
    endpointCovers(kept.src, next.src) &&
    endpointCovers(kept.dst, next.dst)
  )
    return kept;
  return mergeObservationCopy(kept, next);
}

/** mergeObservation's general case: a new record, keys in a fixed order. */
export function mergeObservationCopy(kept: Flow, next: Flow): Flow {
  const out = { time: Math.min(kept.time, next.time) } as Flow;
  out.src = mergeEndpoint(kept.src, next.src);
  out.dst = mergeEndpoint(kept.dst, next.dst);
  out.protocol = kept.protocol;
  out.port = kept.port;
  if (kept.srcPort !== undefined) out.srcPort = kept.srcPort;
  const stronger = VERDICT_RANK[next.verdict] > VERDICT_RANK[kept.verdict];
  out.verdict = stronger ? next.verdict : kept.verdict;
  const dropReason = stronger ? next.dropReason : (kept.dropReason ?? next.dropReason);
  if (dropReason !== undefined && out.verdict === 'DROPPED') out.dropReason = dropReason;
  const dns = kept.dnsQuery ?? next.dnsQuery;
  if (dns !== undefined) out.dnsQuery = dns;
  if (kept.count !== undefined || next.count !== undefined)
    out.count = Math.max(kept.count ?? 1, next.count ?? 1);
  out.input = kept.input;
  return out;
}

/** Numbers per slot of a generation's table: s, d, protocol << 16 | source port, port, record + 1. */
const SLOT = 5;
/** Slots of a generation's table before it first grows (at most half of them used). */
const INITIAL_SLOTS = 1024;
/**
 * Slots of a late generation's table before it first grows: most hold a few connections, and up to
 * maxEntries of them may be held at once (one per window of an input far out of time order).
 */
const LATE_SLOTS = 8;
/** Emitted generations whose keys are kept for observations that come late (see Deduplicator.past). */
const MAX_PAST_GENERATIONS = 64;
/** In an emitted generation's `infos`: the record has a count (its verdict rank is in the low 3 bits). */
const COUNTED = 8;
/** In an emitted generation's `infos`: the record was timeless (`Flow.timeless`). */
const TIMELESS = 16;

/** The table's hash of a compact connection key's four numbers. */
function slotHash(s: number, d: number, w: number, port: number): number {
  let h =
    Math.imul(s, 0x9e3779b1) ^
    Math.imul(d, 0x85ebca6b) ^
    Math.imul(w, 0xc2b2ae35) ^
    Math.imul(port, 0x27d4eb2f);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  return h ^ (h >>> 13);
}

/**
 * One generation of held connections: the records in the order their connections were first seen,
 * found by the numbers of their compact key (protocol and source port together, both endpoints, the
 * port) in an open-addressing table of 32-bit numbers, or by the key's text when the compact form
 * cannot hold it. No key string is built to find a connection.
 */
class Generation {
  records: Flow[] = [];
  // Per record, by index: its time and its absorbInfo (typed arrays, so that a duplicate found by
  // `absorbs` reads neither the record nor its endpoints, which are seldom in the caches by then).
  // Once the generation is emitted (`retired`), `infos` holds each record's verdict rank instead, plus
  // COUNTED when the record has a count.
  times: Float64Array;
  infos: Int32Array;
  /** How many records an emitted generation had (its records are let go; its keys stay). */
  retired = 0;
  /**
   * Of an emitted generation, each record's two ends (source, destination) and whether it was
   * timeless (TIMELESS in `infos`): what identity resolved its edge from, so that a record replacing
   * its verdict is resolved to that same edge (`absorbLate`).
   */
  ends: FlowEndpoint[] = [];
  #table: Int32Array;
  #texts: Map<string, number> | undefined;
  /**
   * Of a record whose key an earlier record of this generation has (`insertAgain`: a late generation,
   * where a merge lowered that one's time to more than a window before it), that record's index.
   */
  #earlier: Map<number, number> | undefined;
  /** The table's first size in slots, a power of two: INITIAL_SLOTS, or LATE_SLOTS for a late generation. */
  readonly slots: number;

  constructor(slots = INITIAL_SLOTS) {
    this.slots = slots;
    this.times = new Float64Array(slots / 2);
    this.infos = new Int32Array(slots / 2);
    this.#table = new Int32Array(slots * SLOT);
  }

  get size(): number {
    return this.records.length;
  }

  /** The index of the record with this compact key, or -1. */
  find(s: number, d: number, w: number, port: number): number {
    const table = this.#table;
    const mask = table.length / SLOT - 1;
    for (let i = slotHash(s, d, w, port) & mask; ; i = (i + 1) & mask) {
      const at = i * SLOT;
      const held = table[at + 4]!;
      if (held === 0) return -1;
      if (table[at] === s && table[at + 1] === d && table[at + 2] === w && table[at + 3] === port)
        return held - 1;
    }
  }

  /** The index of the record with this key text, or -1. */
  findText(key: string): number {
    return this.#texts?.get(key) ?? -1;
  }

  /** The index of the record held before record `i` with the same key, or -1 (see `insertAgain`). */
  earlier(i: number): number {
    return this.#earlier?.get(i) ?? -1;
  }

  /**
   * Holds `flow` under a key record `earlier` has, which `find` and `findText` then give `flow`'s index
   * for, and `earlier` record `earlier`'s (a connection out of time order more than a window after
   * another of its key, in one late generation).
   */
  insertAgain(s: number, d: number, w: number, port: number, flow: Flow, earlier: number): void {
    const n = this.#push(flow);
    const table = this.#table;
    const mask = table.length / SLOT - 1;
    for (let i = slotHash(s, d, w, port) & mask; ; i = (i + 1) & mask) {
      const at = i * SLOT;
      if (table[at + 4] === earlier + 1) {
        table[at + 4] = n;
        break;
      }
    }
    (this.#earlier ??= new Map()).set(n - 1, earlier);
  }

  /** As `insertAgain`, under a key text. */
  insertTextAgain(key: string, flow: Flow, earlier: number): void {
    const n = this.#push(flow);
    this.#texts!.set(key, n - 1);
    (this.#earlier ??= new Map()).set(n - 1, earlier);
  }

  /** Holds `flow` under a compact key no record of this generation has. */
  insert(s: number, d: number, w: number, port: number, flow: Flow): void {
    const n = this.#push(flow);
    if (n * 2 > this.#table.length / SLOT) this.#grow();
    this.#place(s, d, w, port, n);
  }

  /** Holds `flow` under a key text no record of this generation has. */
  insertText(key: string, flow: Flow): void {
    (this.#texts ??= new Map()).set(key, this.#push(flow) - 1);
  }

  /** Replaces record `i` (a merge gave a new one). */
  set(i: number, flow: Flow): void {
    this.records[i] = flow;
    this.times[i] = flow.time;
    this.infos[i] = absorbInfo(flow);
  }

  /** Appends a record; the number of records. */
  #push(flow: Flow): number {
    const n = this.records.push(flow);
    if (n > this.times.length) {
      const times = new Float64Array(2 * this.times.length);
      times.set(this.times);
      this.times = times;
      const infos = new Int32Array(2 * this.infos.length);
      infos.set(this.infos);
      this.infos = infos;
    }
    this.times[n - 1] = flow.time;
    this.infos[n - 1] = absorbInfo(flow);
    return n;
  }

  clear(): void {
    this.records = [];
    this.retired = 0;
    this.ends = [];
    this.#texts = undefined;
    this.#earlier = undefined;
    // A table grown for a busy generation goes back to its first size.
    if (this.#table.length > this.slots * SLOT) {
      this.#table = new Int32Array(this.slots * SLOT);
      this.times = new Float64Array(this.slots / 2);
      this.infos = new Int32Array(this.slots / 2);
    } else this.#table.fill(0);
  }

  #place(s: number, d: number, w: number, port: number, held: number): void {
    const table = this.#table;
    const mask = table.length / SLOT - 1;
    let i = slotHash(s, d, w, port) & mask;
    while (table[i * SLOT + 4] !== 0) i = (i + 1) & mask;
    const at = i * SLOT;
    table[at] = s;
    table[at + 1] = d;
    table[at + 2] = w;
    table[at + 3] = port;
    table[at + 4] = held;
  }

  /**
   * Of an emitted generation, its compact keys under new endpoint numbers: `number` gives the new number
   * of an end of a record (`ends`). Indices, times, verdicts, key texts and earlier records stay.
   */
  renumberEnds(number: (end: FlowEndpoint) => number): void {
    const old = this.#table;
    this.#table = new Int32Array(old.length);
    for (let at = 0; at < old.length; at += SLOT) {
      const held = old[at + 4]!;
      if (held === 0) continue;
      const i = held - 1;
      this.#place(number(this.ends[2 * i]!), number(this.ends[2 * i + 1]!), old[at + 2]!, old[at + 3]!, held);
    }
  }

  #grow(): void {
    const old = this.#table;
    this.#table = new Int32Array(old.length * 2);
    for (let at = 0; at < old.length; at += SLOT)
      if (old[at + 4] !== 0) this.#place(old[at]!, old[at + 1]!, old[at + 2]!, old[at + 3]!, old[at + 4]!);
  }
}

/**
 * Endpoint keys numbered 0, 1, 2… in order of first sight: open addressing over a hash of the key's
 * characters, two 32-bit numbers per slot (the hash, never 0 in a used slot, and the number), at most
 * half full. A key's first sight writes one slot and appends the key; a Map did more (its buckets,
 * entries and chain are apart), and new keys are most of what is asked: each address once per run.
 */
class KeyNumbers {
  readonly keys: string[] = [];
  #slots = new Int32Array(2 * 1024);

  get size(): number {
    return this.keys.length;
  }

  /** The key's number; when it has none, the next one with `assign`, else -1. */
  number(key: string, assign = true): number {
    const h = keyHash(key);
    const slots = this.#slots;
    const mask = (slots.length >> 1) - 1;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const held = slots[i << 1]!;
      if (held === 0) {
        if (!assign) return -1;
        const n = this.keys.push(key) - 1;
        slots[i << 1] = h;
        slots[(i << 1) + 1] = n;
        if (2 * this.keys.length > mask) this.#grow();
        return n;
      }
      if (held === h && this.keys[slots[(i << 1) + 1]!] === key) return slots[(i << 1) + 1]!;
    }
  }

  #grow(): void {
    const old = this.#slots;
    const slots = (this.#slots = new Int32Array(old.length * 2));
    const mask = (slots.length >> 1) - 1;
    for (let at = 0; at < old.length; at += 2) {
      const h = old[at]!;
      if (h === 0) continue;
      let i = h & mask;
      while (slots[i << 1] !== 0) i = (i + 1) & mask;
      slots[i << 1] = h;
      slots[(i << 1) + 1] = old[at + 1]!;
    }
  }
}

/** FNV-1a over a key's UTF-16 units, mixed; never 0. */
function keyHash(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  return (h ^ (h >>> 13)) | 1;
}

/**
 * Streaming de-duplicator: `add` returns the records that left the structure (evicted generations),
 * `flush` returns the rest at the end of input.
 */
export class Deduplicator {
  readonly windowMs: number;
  readonly maxEntries: number;
  /** Observations merged into an earlier one. */
  duplicates = 0;
  /** Generations emitted early because the entry cap was reached. */
  evictions = 0;
  /**
   * Observations older than every generation held when they came (more than a window before the
   * newest), merged into no connection held or remembered and held as a connection of their own, when
   * a connection emitted less than a window from them is no longer remembered (or their connection was
   * emitted with a count, see absorbLate): the connection they belong to may have been emitted already.
   * Input far out of time order (files of several nodes concatenated, say) gives these.
   */
  late = 0;
  private current = new Generation();
  private previous = new Generation();
  /**
   * Generations emitted already, oldest first, at most MAX_PAST_GENERATIONS of them and maxEntries
   * connections together: their keys, first times and verdict ranks, not their records. Only a late
   * observation looks here (`absorbLate`), never one in time order.
   */
  private past: Generation[] = [];
  private pastSize = 0;
  /** The latest first time of an emitted connection no longer in `past` (-Infinity: none). */
  private forgottenUntil = -Infinity;
  /**
   * Connections first seen out of time order (older than every generation held), by the generation of
   * their time: kept apart from `current` and `previous`, whose records are all in time, so that an
   * observation in time never meets one far older under the same key (`addLate`). Emitted when room is
   * needed, oldest first, and by `flush`.
   */
  private lateGenerations = new Map<number, Generation>();
  /** Emptied generations in time let go from `past`, at most two, for `emitted` to use again. */
  private spare: Generation[] = [];
  /** The numbers of the late generations, a binary min-heap: the oldest is found without a scan. */
  private lateOrder: number[] = [];
  private lateSize = 0;
  private generation = -Infinity;
  /** Endpoint keys (an address, or namespace/pod) numbered in order of first sight. */
  private endpointIds = new KeyNumbers();
  private readonly maxEndpointKeys: number;
  private numberings = 0;
  // The key `parts` found last: its four numbers (compact), or its text.
  private ks = 0;
  private kd = 0;
  private kw = 0;
  private kp = 0;
  private ktext = '';
  // Two endpoint keys and their numbers given by `expect` ('' when none), looked at before the map.
  private lastKey = '';
  private lastId = -1;
  private lastKey2 = '';
  private lastId2 = -1;
  // The compact key `held` last found no connection for (absentHeld false: none), until the next
  // `add`: that add holds a flow with this key as a new connection without looking for it again.
  private absentHeld = false;
  private as = 0;
  private ad = 0;
  private aw = 0;
  private ap = 0;

  constructor(opts: DedupOptions = {}) {
    this.windowMs = opts.windowMs ?? DEFAULT_DEDUP_WINDOW_MS;
    this.maxEntries = opts.maxEntries ?? DEFAULT_DEDUP_MAX_ENTRIES;
    if (!(this.windowMs > 0)) throw new RangeError('dedup window must be a positive number of ms');
    if (!(this.maxEntries >= 1)) throw new RangeError('dedup maxEntries must be at least 1');
    this.maxEndpointKeys = opts.maxEndpointKeys ?? Math.max(4 * this.maxEntries, 1024);
  }

  /** Current number of connections held. */
  get size(): number {
    return this.current.size + this.previous.size + this.lateSize;
  }

  /**
   * The connection key in a compact form: seven UTF-16 units (protocol, both endpoints as numbers,
   * both ports), equal for two flows exactly when their `connectionKey` texts are equal (each
   * endpoint key has one number for the life of this deduplicator). The text stays the key for values
   * out of range. (Connections are found by the compact key's numbers; this is its text form.)
   */
  key(f: Flow): string | undefined {
    switch (this.parts(f)) {
      case 1:
        return compactKey(this.kw >>> 16, this.ks, this.kd, this.kw & 0xffff, this.kp);
      case 0:
        return this.ktext;
      default:
        return undefined;
    }
  }

  /**
   * Finds the key of `f`: 1 when it is compact (its numbers in ks, kd, kw — protocol code << 16 |
   * source port — and kp), 0 when it is the connection-key text (in ktext), -1 when the flow cannot
   * be de-duplicated.
   */
  private parts(f: Flow): number {
    const s = this.endpointId(f.src);
    const d = this.endpointId(f.dst);
    if (s < 0 || d < 0) return -1;
    const icmp = f.protocol === 'ICMPv4' || f.protocol === 'ICMPv6';
    if (!isConnection(f, icmp)) return -1;
    const sport = icmp ? 0 : f.srcPort!;
    const code = PROTOCOL_CODE[f.protocol];
    // A text key is at least 11 units long, so the two forms never meet.
    if (
      code === undefined ||
      !(sport >>> 0 <= 0xffff && f.port >>> 0 <= 0xffff && sport % 1 === 0 && f.port % 1 === 0) ||
      s > 0x7fffffff ||
      d > 0x7fffffff
    ) {
      const text = connectionKey(f);
      if (text === undefined) return -1;
      this.ktext = text;
      return 0;
    }
    this.ks = s;
    this.kd = d;
    this.kw = (code << 16) | sport;
    this.kp = f.port;
    return 1;
  }

  /** The index in `g` of the record with the key `parts` found last (kind 1 or 0), or -1. */
  private find(g: Generation, kind: number): number {
    return kind === 1 ? g.find(this.ks, this.kd, this.kw, this.kp) : g.findText(this.ktext);
  }

  /**
   * Changes whenever endpoint numbers are given afresh: a number `endpointNumber` returned stays the
   * endpoint's number while this is unchanged.
   */
  get numbering(): number {
    return this.numberings;
  }

  /**
   * The number of a non-empty endpoint key (an address, or namespace/pod): the number it has, or with
   * `assign`, a new one when it has none (as `add` would give it) unless the next `add` renumbers;
   * else undefined.
   */
  endpointNumber(key: string, assign = false): number | undefined {
    // renumberDue does not change with the lookup, so it is asked first: one lookup either way.
    const id = this.endpointIds.number(key, assign && !this.renumberDue());
    return id >= 0 ? id : undefined;
  }

  /**
   * Notes that the next flow is likely to have the endpoint keys `src` and `dst`, whose numbers
   * (`endpointNumber`'s, under the current numbering) are `s` and `d`: `add` then finds them without
   * the map. (The duplicate check of the byte scanner has them when a line opens a connection.)
   */
  expect(src: string, s: number, dst: string, d: number): void {
    this.lastKey = src;
    this.lastId = s;
    this.lastKey2 = dst;
    this.lastId2 = d;
  }

  private endpointId(e: FlowEndpoint): number {
    const k = endpointKey(e);
    if (k === '') return -1;
    if (k === this.lastKey) return this.lastId;
    if (k === this.lastKey2) return this.lastId2;
    return this.endpointIds.number(k);
  }

  /** Forgets every endpoint number (they are given afresh from here). */
  private forgetNumbers(): void {
    this.endpointIds = new KeyNumbers();
    this.numberings++;
    this.lastKey = this.lastKey2 = '';
    this.lastId = this.lastId2 = -1;
    this.absentHeld = false;
  }

  /**
   * Numbers the endpoint keys afresh, from the connections held only, and re-keys those connections
   * (in the same order, so output order does not change). A kept record has the endpoint keys of the
   * observations merged into it, so its new key is its old key under the new numbering.
   */
  private renumber(): void {
    this.forgetNumbers();
    // The emitted generations' keys, in the new numbers (forgetting them would make what a late
    // observation merges into depend on when numbers were given afresh).
    const number = (end: FlowEndpoint) => this.endpointId(end);
    for (const g of this.past) g.renumberEnds(number);
    const rekey = (g: Generation, slots?: number) => {
      const out = new Generation(slots);
      for (const f of g.records) {
        // A held record always has a key (kind 1 or 0; -1 only for flows never held).
        this.place(out, this.parts(f), f);
      }
      return out;
    };
    this.previous = rekey(this.previous);
    this.current = rekey(this.current);
    for (const [at, g] of this.lateGenerations) this.lateGenerations.set(at, rekey(g, LATE_SLOTS));
  }

  /** Whether the endpoint numbers are to be given afresh before the next flow is held. */
  private renumberDue(): boolean {
    // Held connections use at most two numbers each, so renumbering always leaves room to grow.
    // The emitted generations' connections too; twice what they all use, so that renumbering comes at
    // most once per as many new keys as are kept.
    return this.endpointIds.size >= Math.max(this.maxEndpointKeys, 4 * (this.size + this.pastSize) + 2);
  }

  add(flow: Flow, out: Flow[]): void {
    let absent = this.absentHeld;
    this.absentHeld = false;
    if (this.renumberDue()) {
      this.renumber();
      absent = false;
    }
    const kind = this.parts(flow);
    if (kind < 0) {
      out.push(flow);
      return;
    }
    const generation = this.generation;
    if (Math.floor(flow.time / this.windowMs) < generation - 1) {
      // Older than every generation held (and so it moves no generation on).
      this.addLate(kind, flow, out);
      return;
    }
    this.advance(flow.time, out);
    if (
      absent &&
      kind === 1 &&
      this.generation === generation &&
      this.ks === this.as &&
      this.kd === this.ad &&
      this.kw === this.aw &&
      this.kp === this.ap
    ) {
      // `held` just found no connection with this key, and nothing was held or emitted since.
      this.hold(kind, out, flow);
      return;
    }
    const current = this.current;
    const i = this.find(current, kind);
    if (i >= 0) {
      // Most observations add nothing: the kept record stays, and nothing is written.
      const kept = current.records[i]!;
      const merged = mergeObservation(kept, flow);
      if (merged !== kept) current.set(i, merged);
      this.duplicates++;
      return;
    }
    const previous = this.previous;
    const j = this.find(previous, kind);
    if (j >= 0 && flow.time - previous.times[j]! < this.windowMs) {
      const old = previous.records[j]!;
      const merged = mergeObservation(old, flow);
      if (merged !== old) previous.set(j, merged);
      this.duplicates++;
      return;
    }
    this.hold(kind, out, flow);
  }

  /**
   * Adds an observation older than every generation held, under the key `parts` found last. It is
   * merged into a connection with that key first seen less than a window from it: one held (in time,
   * or out of time order in the generation of its time or a neighbour), else one emitted already
   * (`absorbLate`). Else it is held as a connection of its own in the late generation of its time; it
   * is counted as late when an emitted connection first seen less than a window from it is no longer
   * remembered, which may have been its own.
   */
  private addLate(kind: number, flow: Flow, out: Flow[]): void {
    if (this.mergeNear(this.previous, kind, flow) || this.mergeNear(this.current, kind, flow)) return;
    const at = Math.floor(flow.time / this.windowMs);
    const late = this.lateGenerations;
    for (let k = at - 1; k <= at + 1; k++) {
      const g = late.get(k);
      if (g !== undefined && this.mergeNear(g, kind, flow)) return;
    }
    const absorbed = this.absorbLate(kind, flow, out);
    if (absorbed > 0) return;
    // Its connection was emitted with a count, or may have been emitted and let go since: it may count
    // twice.
    if (absorbed < 0 || flow.time - this.forgottenUntil < this.windowMs) this.late++;
    if (this.size >= this.maxEntries) this.evict(out);
    let g = late.get(at);
    if (g === undefined) {
      late.set(at, (g = new Generation(LATE_SLOTS)));
      heapPush(this.lateOrder, at);
    }
    // A record of `g` with this key is more than a window from the flow (a merge lowered its time).
    this.place(g, kind, flow);
    this.lateSize++;
  }

  /**
   * Holds `flow` in `g` under the key `parts` found last (kind 1 or 0), after the records of `g` that
   * have it (`insertAgain`).
   */
  private place(g: Generation, kind: number, flow: Flow): void {
    const i = this.find(g, kind);
    if (kind === 1) {
      if (i < 0) g.insert(this.ks, this.kd, this.kw, this.kp, flow);
      else g.insertAgain(this.ks, this.kd, this.kw, this.kp, flow, i);
    } else if (i < 0) g.insertText(this.ktext, flow);
    else g.insertTextAgain(this.ktext, flow, i);
  }

  /**
   * The index in `g` of the record with the key `parts` found last (kind 1 or 0) first seen less than a
   * window from `time`, or -1.
   */
  private findNear(g: Generation, kind: number, time: number): number {
    let i = this.find(g, kind);
    while (i >= 0 && !(Math.abs(time - g.times[i]!) < this.windowMs)) i = g.earlier(i);
    return i;
  }

  /**
   * Merges `flow` into the record of `g` with the key `parts` found last, if that connection was first
   * seen less than a window from it; whether it did.
   */
  private mergeNear(g: Generation, kind: number, flow: Flow): boolean {
    const i = this.findNear(g, kind, flow.time);
    if (i < 0) return false;
    const kept = g.records[i]!;
    const merged = mergeObservation(kept, flow);
    if (merged !== kept) g.set(i, merged);
    this.duplicates++;
    return true;
  }

  /**
   * Whether a late observation (older than every generation held) is one of a connection emitted
   * already, with the key `parts` found last, first seen less than a window from it: 1 when it is
   * counted as a duplicate and not held as a second connection (which, forwarded at one node after the
   * connection was emitted as dropped at another, would allow what the cluster denied). Merged, a
   * verdict at least as strong changes nothing; a stronger one (dropped after the connection was
   * emitted as forwarded) is emitted into `out` at once, marked as replacing the verdict emitted
   * (`Flow.replaces`), so that the connection is counted once, with the stronger verdict. -1 when the
   * observation or the emitted record has a count and the observation's verdict is stronger: it is to
   * be held on its own, counted as late. 0 when no such connection is remembered.
   */
  private absorbLate(kind: number, flow: Flow, out: Flow[]): number {
    const past = this.past;
    for (let k = past.length - 1; k >= 0; k--) {
      const g = past[k]!;
      const i = this.findNear(g, kind, flow.time);
      if (i < 0) continue;
      const emitted = g.infos[i]!;
      const rank = VERDICT_RANK[flow.verdict];
      if (rank > (emitted & 7)) {
        if ((emitted & COUNTED) !== 0 || flow.count !== undefined) return -1;
        // With the ends and time of the record emitted: identity resolves them to the edge that record
        // was counted on (this observation's own ends may resolve elsewhere: a pod name where the
        // record had only an address no pod of the snapshot holds, say).
        const replacing: Flow = {
          ...flow,
          src: g.ends[2 * i]!,
          dst: g.ends[2 * i + 1]!,
          time: g.times[i]!,
          replaces: RANKED_VERDICTS[emitted & 7]!,
        };
        if ((emitted & TIMELESS) !== 0) replacing.timeless = true;
        else delete replacing.timeless;
        out.push(replacing);
        g.infos[i] = rank | (emitted & TIMELESS);
      }
      this.duplicates++;
      return 1;
    }
    return 0;
  }

  /**
   * Holds `flow`, an observation in time that no connection in time takes, as a new connection under
   * the key `parts` found last, unless one held out of time order was first seen less than a window
   * before it (in the late generation of the window before its own: every other is more than a window
   * older): it is merged into that one, as in time order.
   */
  private hold(kind: number, out: Flow[], flow: Flow): void {
    if (this.lateSize > 0) {
      const g = this.lateGenerations.get(Math.floor(flow.time / this.windowMs) - 1);
      if (g !== undefined && this.mergeNear(g, kind, flow)) return;
    }
    if (this.current.size + this.previous.size + this.lateSize >= this.maxEntries) this.evict(out);
    if (kind === 1) this.current.insert(this.ks, this.kd, this.kw, this.kp, flow);
    else this.current.insertText(this.ktext, flow);
  }

  /**
   * Emits a generation early to make room (counted in `evictions`): the oldest late generation, else
   * the previous generation, else the current one.
   */
  private evict(out: Flow[]): void {
    this.evictions++;
    if (this.lateSize > 0) this.emitLate(heapPop(this.lateOrder), out);
    else if (this.previous.size > 0) this.previous = this.emitted(this.previous, out);
    else this.current = this.emitted(this.current, out);
  }

  /** Emits the late generation of generation number `at`. */
  private emitLate(at: number, out: Flow[]): void {
    const g = this.lateGenerations.get(at)!;
    this.lateGenerations.delete(at);
    this.lateSize -= g.size;
    this.emit(g, out);
  }

  /** Emits what a flow at `time` leaves behind: generations more than one window older. */
  private advance(time: number, out: Flow[]): void {
    const gen = Math.floor(time / this.windowMs);
    if (gen > this.generation) {
      if (gen === this.generation + 1) {
        const emptied = this.emitted(this.previous, out);
        this.previous = this.current;
        this.current = emptied;
      } else {
        this.previous = this.emitted(this.previous, out);
        this.current = this.emitted(this.current, out);
      }
      this.generation = gen;
    }
  }

  /**
   * The time of the observation `absorbs` is asked about next, which the caller sets first. A number
   * passed to a call that is not inlined goes as a heap number when it is not a small integer (times
   * are not): 16 bytes for every duplicate line, 3 MB per 200k lines, and more young collections. In a
   * typed array it is written and read in place.
   */
  readonly absorbTime = new Float64Array(1);

  /**
   * Whether an observation with compact key (protocol code, endpoint numbers s and d, source port,
   * port) at time `absorbTime[0]` is one that `add` would merge into a held connection without changing it
   * (mergeObservation returning the record held); if so it is counted as a duplicate, and the caller
   * need not build its flow. The caller vouches for what the observation would be: a Hubble flow with
   * no count, DNS query, DNS names or drop reason, whose verdict has rank `rank` (verdictRank) and whose
   * endpoints have the fields `srcFields` and `dstFields` (FIELD_* bits). The generations such an
   * observation leaves behind are emitted into `out` first, as `add` would. The endpoint numbers are
   * `endpointNumber`'s, under the current `numbering`; the ports fit 16 bits. When no connection with
   * this key is held, an `add` that follows at once with a flow of this key holds it without looking
   * for it again. Only the de-duplicator's own typed arrays are read, never the held record.
   */
  absorbs(
    code: number,
    s: number,
    d: number,
    sport: number,
    port: number,
    rank: number,
    srcFields: number,
    dstFields: number,
    out: Flow[],
  ): boolean {
    const time = this.absorbTime[0]!;
    this.advance(time, out);
    const w = (code << 16) | sport;
    let g = this.current;
    let i = g.find(s, d, w, port);
    if (i < 0) {
      g = this.previous;
      i = g.find(s, d, w, port);
      if (i < 0 || !(time - g.times[i]! < this.windowMs)) {
        // `add` holds a flow with this key as a new connection, if it comes next.
        this.absentHeld = true;
        this.as = s;
        this.ad = d;
        this.aw = w;
        this.ap = port;
        return false;
      }
    }
    const info = g.infos[i]!;
    if (
      info < 0 ||
      g.times[i]! > time ||
      rank > (info & 7) ||
      (srcFields & ~(info >> 3)) !== 0 ||
      (dstFields & ~(info >> 10)) !== 0
    )
      return false;
    this.duplicates++;
    return true;
  }

  flush(out: Flow[]): void {
    while (this.lateOrder.length > 0) this.emitLate(heapPop(this.lateOrder), out);
    this.previous = this.emitted(this.previous, out);
    this.current = this.emitted(this.current, out);
    // Nothing is held: endpoint numbers start afresh, and the emitted generations are let go.
    this.forgetNumbers();
    for (const g of this.past) this.forget(g);
    this.past = [];
    this.pastSize = 0;
  }

  /**
   * Emits the records of generation in time `g` (as `emit`) and returns an empty generation to take
   * its place: `g` itself when it held none, else one let go from `past`, else a new one.
   */
  private emitted(g: Generation, out: Flow[]): Generation {
    if (g.size === 0) return g;
    this.emit(g, out);
    return this.spare.pop() ?? new Generation();
  }

  /**
   * Emits the records of `g` in the order first seen, and keeps its keys among the emitted generations
   * (`past`, the oldest let go beyond its bounds).
   */
  private emit(g: Generation, out: Flow[]): void {
    // Indexed: the iterator's result objects were not optimised away here (1 MB per 200k lines).
    const records = g.records;
    const n = records.length;
    if (n === 0) return;
    const infos = g.infos;
    const ends: FlowEndpoint[] = [];
    for (let i = 0; i < n; i++) {
      const f = records[i]!;
      out.push(f);
      // absorbInfo holds the verdict's rank when it is not -1 (a Hubble record without a count).
      const info = infos[i]!;
      infos[i] =
        (info >= 0 ? info & 7 : VERDICT_RANK[f.verdict] | (f.count === undefined ? 0 : COUNTED)) |
        (f.timeless === true ? TIMELESS : 0);
      // (Aggregation reads the record's ends right after: reading them here moves that load.)
      ends.push(f.src, f.dst);
    }
    g.records = [];
    g.ends = ends;
    g.retired = n;
    const past = this.past;
    past.push(g);
    this.pastSize += n;
    while (past.length > MAX_PAST_GENERATIONS || this.pastSize > this.maxEntries) {
      const old = past.shift()!;
      this.pastSize -= old.retired;
      this.forget(old);
      // Kept to take the place of a generation in time (`emitted`); a late generation's small table
      // is not one for that.
      if (old.slots === INITIAL_SLOTS && this.spare.length < 2) this.spare.push(old);
    }
  }

  /** Lets an emitted generation go (its keys), noting how late its connections were first seen. */
  private forget(g: Generation): void {
    const times = g.times;
    let until = this.forgottenUntil;
    for (let i = 0; i < g.retired; i++) if (times[i]! > until) until = times[i]!;
    this.forgottenUntil = until;
    g.clear();
  }
}

/** Adds `n` to the binary min-heap `heap`. */
function heapPush(heap: number[], n: number): void {
  let i = heap.push(n) - 1;
  while (i > 0) {
    const up = (i - 1) >> 1;
    if (heap[up]! <= n) break;
    heap[i] = heap[up]!;
    i = up;
  }
  heap[i] = n;
}

/** Takes the least number out of the binary min-heap `heap`, which is not empty. */
function heapPop(heap: number[]): number {
  const least = heap[0]!;
  const last = heap.pop()!;
  const n = heap.length;
  if (n === 0) return least;
  let i = 0;
  for (;;) {
    let child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && heap[child + 1]! < heap[child]!) child++;
    if (heap[child]! >= last) break;
    heap[i] = heap[child]!;
    i = child;
  }
  heap[i] = last;
  return least;
}
