/**
 * Aggregation: resolved flows become edges with evidence. Memory is bounded by the number of distinct
 * (source, destination, protocol, port) tuples, never by the number of flows.
 */
import type { Flow, Protocol, Verdict } from '../flows/types.ts';
import { VERDICTS } from '../flows/types.ts';
import type { Identity } from '../identity/index.ts';
import type { Peer } from '../identity/types.ts';
import type { EdgeRecord } from './types.ts';

export interface AggregateStats {
  flows: number;
  /** Flows left out as noise: multicast or broadcast destinations, or no address on either end. */
  ignored: number;
}

/** Protocol codes in an edge's numeric key (three bits). */
const PROTOCOL_CODE: Record<Protocol, number> = { TCP: 0, UDP: 1, SCTP: 2, ICMPv4: 3, ICMPv6: 4 };
const PROTOCOLS: Protocol[] = ['TCP', 'UDP', 'SCTP', 'ICMPv4', 'ICMPv6'];
/** Each protocol code's place when protocols are sorted by name (as compareEdges sorts them). */
const PROTOCOL_RANK = PROTOCOLS.map((p) => [...PROTOCOLS].sort(cmp).indexOf(p));

const VERDICT_CODE = new Map(VERDICTS.map((v, i) => [v, i]));

/** Edges held before the columns first grow. */
const INITIAL_EDGES = 1024;

export class Aggregator {
  readonly #identity: Identity;
  // Peers are numbered as they are first seen; the edges of a source are kept by one number for
  // (destination, protocol, port), so no key text is built or held per edge.
  readonly #index = new Map<string, number>();
  readonly #ids: string[] = [];
  readonly #bySource: Map<number, number>[] = [];
  readonly #peers = new Map<string, Peer>();
  readonly #names = new Map<string, Set<string>>();
  // Each edge is a slot in these columns (an object per edge only when edges() is called): its
  // source's number, its (destination, protocol, port) key, its flow count, first and last time, and
  // its first verdict. An edge that sees a second verdict gets its counts by verdict in `#mixed`;
  // drop reasons are kept in `#drops`.
  #size = 0;
  #src = new Uint32Array(INITIAL_EDGES);
  #key = new Float64Array(INITIAL_EDGES);
  #count = new Float64Array(INITIAL_EDGES);
  #first = new Float64Array(INITIAL_EDGES);
  #last = new Float64Array(INITIAL_EDGES);
  #verdict = new Uint8Array(INITIAL_EDGES);
  readonly #mixed = new Map<number, Partial<Record<Verdict, number>>>();
  readonly #drops = new Map<number, Record<string, number>>();
  readonly stats: AggregateStats = { flows: 0, ignored: 0 };

  constructor(identity: Identity) {
    this.#identity = identity;
  }

  add(flow: Flow): void {
    this.stats.flows++;
    const src = this.#identity.resolve(flow.src, flow.time);
    const dst = this.#identity.resolve(flow.dst, flow.time, flow.port);
    if ((src.kind === 'unknown' && dst.kind === 'unknown') || isMulticast(flow.dst.ip)) {
      this.stats.ignored++;
      return;
    }
    const s = this.#remember(src, flow.src.names);
    const d = this.#remember(dst, flow.dst.names);
    // Ports fit 16 bits (ICMP types 8), the protocol code 3: the key stays an exact double. Inputs
    // check ports at the edge; a flow built elsewhere with another port is a programming error.
    const port = flow.port;
    if (!(port >>> 0 === port && port <= 0xffff)) throw new RangeError(`flow port out of range: ${port}`);
    const verdict = VERDICT_CODE.get(flow.verdict);
    if (verdict === undefined) throw new RangeError(`unknown flow verdict: ${String(flow.verdict)}`);
    const key = (d * 8 + PROTOCOL_CODE[flow.protocol]) * 65536 + port;
    const edges = this.#bySource[s]!;
    let e = edges.get(key);
    if (e === undefined) edges.set(key, (e = this.#newEdge(s, key, flow.time, verdict)));
    // What foldFlow does to an EdgeRecord, on the columns.
    const n = flow.count ?? 1;
    const before = this.#count[e]!;
    this.#count[e] = before + n;
    if (flow.time < this.#first[e]!) this.#first[e] = flow.time;
    if (flow.time > this.#last[e]!) this.#last[e] = flow.time;
    const mixed = this.#mixed.get(e);
    if (mixed !== undefined) mixed[flow.verdict] = (mixed[flow.verdict] ?? 0) + n;
    else if (verdict !== this.#verdict[e])
      this.#mixed.set(e, { [VERDICTS[this.#verdict[e]!]!]: before, [flow.verdict]: n });
    if (flow.dropReason) {
      let drops = this.#drops.get(e);
      if (drops === undefined) this.#drops.set(e, (drops = {}));
      drops[flow.dropReason] = (drops[flow.dropReason] ?? 0) + n;
    }
  }

  #newEdge(s: number, key: number, time: number, verdict: number): number {
    const e = this.#size++;
    if (e === this.#src.length) {
      const grow = <T extends Uint32Array | Float64Array | Uint8Array>(a: T): T => {
        const b = new (a.constructor as new (n: number) => T)(a.length * 2);
        b.set(a);
        return b;
      };
      this.#src = grow(this.#src);
      this.#key = grow(this.#key);
      this.#count = grow(this.#count);
      this.#first = grow(this.#first);
      this.#last = grow(this.#last);
      this.#verdict = grow(this.#verdict);
    }
    this.#src[e] = s;
    this.#key[e] = key;
    this.#count[e] = 0;
    this.#first[e] = time;
    this.#last[e] = time;
    this.#verdict[e] = verdict;
    return e;
  }

  /** The peer's number, numbering it (and remembering it) on first sight; DNS names are kept. */
  #remember(p: Peer, names: string[] | undefined): number {
    let i = this.#index.get(p.id);
    if (i === undefined) {
      i = this.#bySource.length;
      this.#index.set(p.id, i);
      this.#ids.push(p.id);
      this.#bySource.push(new Map());
      this.#peers.set(p.id, p);
    }
    if (names && names.length > 0 && p.kind !== 'workload') {
      let s = this.#names.get(p.id);
      if (!s) this.#names.set(p.id, (s = new Set()));
      for (const n of names) s.add(n.endsWith('.') ? n.slice(0, -1) : n);
    }
    return i;
  }

  /** Edges sorted by source, destination, protocol, port: records as foldFlow builds them. */
  edges(): EdgeRecord[] {
    return [...this.sortedEdges()];
  }

  /**
   * The edges of `edges()`, in the same order, built one at a time as they are iterated (each
   * iteration starts afresh): a consumer that keeps something else per edge (the service graph) never
   * holds every record at once.
   */
  sortedEdges(): Iterable<EdgeRecord> {
    return { [Symbol.iterator]: () => this.#records() };
  }

  *#records(): Generator<EdgeRecord> {
    const ids = this.#ids;
    const srcs = this.#src;
    const keys = this.#key;
    for (const e of this.#sorted()) {
      const key = keys[e]!;
      const port = key % 65536;
      const dp = (key - port) / 65536;
      const mixed = this.#mixed.get(e);
      const edge: EdgeRecord = {
        src: ids[srcs[e]!]!,
        dst: ids[Math.floor(dp / 8)]!,
        protocol: PROTOCOLS[dp % 8]!,
        port,
        count: this.#count[e]!,
        firstSeen: this.#first[e]!,
        lastSeen: this.#last[e]!,
        verdicts: mixed ? { ...mixed } : { [VERDICTS[this.#verdict[e]!]!]: this.#count[e]! },
      };
      const drops = this.#drops.get(e);
      if (drops !== undefined) edge.dropReasons = { ...drops };
      yield edge;
    }
  }

  // The edge slots in sorted order, kept until an edge is added (later flows of known edges change
  // their evidence, not their order).
  #order = new Uint32Array(0);

  #sorted(): Uint32Array {
    if (this.#order.length === this.#size) return this.#order;
    // Peers ranked by id once, so that edges sort by numbers: what compareEdges orders by.
    const ids = this.#ids;
    const byId = Array.from(ids.keys()).sort((a, b) => cmp(ids[a]!, ids[b]!));
    const rank = new Uint32Array(ids.length);
    for (let r = 0; r < byId.length; r++) rank[byId[r]!] = r;
    const order = new Uint32Array(this.#size);
    for (let e = 0; e < order.length; e++) order[e] = e;
    const srcs = this.#src;
    const keys = this.#key;
    order.sort(
      (a, b) =>
        rank[srcs[a]!]! - rank[srcs[b]!]! ||
        rank[Math.floor(keys[a]! / 524288)]! - rank[Math.floor(keys[b]! / 524288)]! ||
        PROTOCOL_RANK[Math.floor(keys[a]! / 65536) % 8]! - PROTOCOL_RANK[Math.floor(keys[b]! / 65536) % 8]! ||
        (keys[a]! % 65536) - (keys[b]! % 65536),
    );
    return (this.#order = order);
  }

  peers(): Map<string, Peer> {
    return this.#peers;
  }

  names(): Map<string, Set<string>> {
    return this.#names;
  }
}

/** IPv4 224.0.0.0/4 and 255.255.255.255, IPv6 ff00::/8: neighbour discovery, mDNS, ... never a service. */
export function isMulticast(ip: string | undefined): boolean {
  if (!ip) return false;
  if (ip.includes(':')) return /^ff[0-9a-f]{2}:/i.test(ip);
  const first = Number(ip.slice(0, ip.indexOf('.')));
  return (first >= 224 && first <= 239) || ip === '255.255.255.255';
}

/** The key of an edge: (source, destination, protocol, port). */
export const edgeKey = (e: { src: string; dst: string; protocol: string; port: number }): string =>
  `${e.src}\u0000${e.dst}\u0000${e.protocol}\u0000${e.port}`;

type Evidence = Pick<Flow, 'time' | 'protocol' | 'port' | 'verdict' | 'count' | 'dropReason'>;

/** Folds one flow into the evidence of its edge, creating the edge on first sight. */
export function foldFlow(
  edges: Map<string, EdgeRecord>,
  src: string,
  dst: string,
  flow: Evidence,
): EdgeRecord {
  const key = `${src}\u0000${dst}\u0000${flow.protocol}\u0000${flow.port}`; // edgeKey, inlined
  let e = edges.get(key);
  if (!e) edges.set(key, (e = newEdge(src, dst, flow)));
  foldEvidence(e, flow);
  return e;
}

function newEdge(src: string, dst: string, flow: Evidence): EdgeRecord {
  return {
    src,
    dst,
    protocol: flow.protocol,
    port: flow.port,
    count: 0,
    firstSeen: flow.time,
    lastSeen: flow.time,
    verdicts: {},
  };
}

function foldEvidence(e: EdgeRecord, flow: Evidence): void {
  const n = flow.count ?? 1;
  e.count += n;
  if (flow.time < e.firstSeen) e.firstSeen = flow.time;
  if (flow.time > e.lastSeen) e.lastSeen = flow.time;
  e.verdicts[flow.verdict] = (e.verdicts[flow.verdict] ?? 0) + n;
  if (flow.dropReason) {
    e.dropReasons ??= {};
    e.dropReasons[flow.dropReason] = (e.dropReasons[flow.dropReason] ?? 0) + n;
  }
}

export function compareEdges(a: EdgeRecord, b: EdgeRecord): number {
  return cmp(a.src, b.src) || cmp(a.dst, b.dst) || cmp(a.protocol, b.protocol) || a.port - b.port;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
