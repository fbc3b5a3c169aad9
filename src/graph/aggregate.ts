/**
 * Aggregation: resolved flows become edges with evidence. Memory is bounded by the number of distinct
 * (source, destination, protocol, port) tuples, never by the number of flows (but for the Inspektor
 * Gadget records of the last GADGET_HOLD_MS or two, held for the other end of their connection).
 */
import { mergeObservationCopy } from '../flows/dedup.ts';
import type { Flow, Protocol, Verdict } from '../flows/types.ts';
import { VERDICTS } from '../flows/types.ts';
import type { Identity } from '../identity/index.ts';
import { normaliseIP } from '../identity/ip.ts';
import type { Peer } from '../identity/types.ts';
import type { EdgeRecord } from './types.ts';

export interface AggregateStats {
  flows: number;
  /** Flows left out as noise: multicast or broadcast destinations, or no address on either end. */
  ignored: number;
  /**
   * Flows (by their counts) kept with one end that could not be attributed: each counted once, also
   * when it was folded into the edges of several backends of a Service.
   */
  unattributed: number;
  /**
   * Connections to a Service traced by Inspektor Gadget at both ends whose two records (the client's
   * `connect` to the ClusterIP, the backend's `accept`) were folded as one (see `addGadget`): each of
   * these is one flow fewer in the edges than `flows` has records.
   */
  bothEnds: number;
}

/**
 * How far apart in time the two records of one connection traced at both ends by Inspektor Gadget may
 * be (the client's `connect`, the backend's `accept`, each stamped by its own node's clock).
 */
export const GADGET_PAIR_TOLERANCE_MS = 2_000;
/**
 * How long (in the records' time, behind the newest Inspektor Gadget record) a record is held for the
 * other end of its connection: records that come later than this behind the newest may miss theirs.
 */
export const GADGET_HOLD_MS = 30_000;

/** An Inspektor Gadget record held for the other end of its connection (`Aggregator.addGadget`). */
interface HeldEnd {
  flow: Flow;
  /** Peer numbers of its ends, as resolved when it came. */
  s: number;
  d: number;
  /** Protocol, client address and client port: what both records of one connection share. */
  key: string;
  /** Its destination is a Service's ClusterIP (a `connect`); else it may be the `accept` of one. */
  toService: boolean;
  /** Paired or folded. */
  done: boolean;
}

/** Protocol codes in an edge's numeric key (three bits). */
const PROTOCOL_CODE: Record<Protocol, number> = { TCP: 0, UDP: 1, SCTP: 2, ICMPv4: 3, ICMPv6: 4 };
const PROTOCOLS: Protocol[] = ['TCP', 'UDP', 'SCTP', 'ICMPv4', 'ICMPv6'];
/** Each protocol code's place when protocols are sorted by name (as compareEdges sorts them). */
const PROTOCOL_RANK = PROTOCOLS.map((p) => [...PROTOCOLS].sort(cmp).indexOf(p));

const VERDICT_CODE = new Map(VERDICTS.map((v, i) => [v, i]));

/**
 * A peer's bits in the aggregator: seen, an unknown peer, kept (an end of a flow not ignored), a
 * Service's ClusterIP or a selector peer (whose flows become edges to its backends).
 */
const SEEN = 1;
const UNKNOWN = 2;
const KEPT = 4;
const SERVICE = 8;

/** Edges held before the columns first grow. */
const INITIAL_EDGES = 1024;

export class Aggregator {
  readonly #identity: Identity;
  // State is kept by the identity's peer numbers (resolveNumber), so no peer is looked up by id per
  // flow. Indexed by peer number: its id ('' until seen) and its SEEN/UNKNOWN/KEPT bits (no holes:
  // numbers not seen yet are 0).
  readonly #ids: string[] = [];
  readonly #state: number[] = [];
  // The numbers of the kept peers in the order they were first kept; `peers()` builds its map from
  // them when asked (a map insert per new peer cost more than the flow's other work on a round of
  // new peers).
  readonly #kept: number[] = [];
  readonly #peers = new Map<string, Peer>();
  /** How many of `#kept` are in `#peers`. */
  #inPeers = 0;
  readonly #names = new Map<string, Set<string>>();
  // Each edge is a slot in these columns (an object per edge only when edges() is called): its
  // source's number, its (destination, protocol, port) key, its flow count, first and last time
  // (together in `#stat`, three numbers per edge: a flow of a known edge writes one place), and its
  // first verdict. An edge that sees a second verdict gets its counts by verdict in `#mixed`; drop
  // reasons are kept in `#drops`.
  #size = 0;
  #src = new Uint32Array(INITIAL_EDGES);
  #key = new Float64Array(INITIAL_EDGES);
  #stat = new Float64Array(INITIAL_EDGES * 3);
  #verdict = new Uint8Array(INITIAL_EDGES);
  readonly #mixed = new Map<number, Partial<Record<Verdict, number>>>();
  readonly #drops = new Map<number, Record<string, number>>();
  // Flows several edges hold (a connection to a Service with several backends, folded into the edge of
  // each): by edge, the flows of each shared connection. A shared connection is numbered by its
  // observed source, destination, protocol and port (`#sharedNumbers`), which `#sharedSrc` and
  // `#sharedKey` (destination * 2^19 + protocol << 16 | port) keep by number.
  readonly #shared = new Map<number, Map<number, number>>();
  readonly #sharedNumbers = new Map<number, Map<number, number>>();
  readonly #sharedSrc: number[] = [];
  readonly #sharedKey: number[] = [];
  /** The edges one flow via a Service was folded into (reused from flow to flow). */
  readonly #folded: number[] = [];
  // The edges by (source, destination, protocol and port): open addressing, four numbers per slot
  // (source, destination, protocol << 16 | port, edge + 1; 0 when free), at most half full. One
  // lookup reads one slot (no map per source, no key object).
  #table = new Int32Array(INITIAL_EDGES * 2 * 4);
  readonly stats: AggregateStats = { flows: 0, ignored: 0, unattributed: 0, bothEnds: 0 };
  // Inspektor Gadget records held for the other end of their connection (addGadget): in the order they
  // came, and by key; the newest time among them, and the time up to which they are settled.
  #held: HeldEnd[] = [];
  readonly #heldByKey = new Map<string, HeldEnd[]>();
  #heldNewest = -Infinity;
  #settledTo = -Infinity;

  constructor(identity: Identity) {
    this.#identity = identity;
  }

  add(flow: Flow): void {
    this.stats.flows++;
    const s = this.#identity.resolveNumber(flow.src, flow.time, undefined, flow.timeless);
    const d = this.#identity.resolveNumber(flow.dst, flow.time, flow.port, flow.timeless, flow.protocol);
    const a = (this.#state[s] ?? 0) === 0 ? this.#see(s) : this.#state[s]!;
    const b = (this.#state[d] ?? 0) === 0 ? this.#see(d) : this.#state[d]!;
    if (((a | b) & SERVICE) !== 0) {
      this.#addViaService(flow, s, d, a, b);
      return;
    }
    if (
      this.#addPeers(flow, s, d, a, b, flow.port) >= 0 &&
      ((a ^ b) & UNKNOWN) !== 0 &&
      flow.replaces === undefined
    )
      this.stats.unattributed += flow.count ?? 1;
  }

  /**
   * Adds an Inspektor Gadget record. A connection to a Service traced at both ends is two records: the
   * client's `connect` names the ClusterIP and the Service port, the backend's `accept` the backend's
   * own address and the port it took the connection on; de-duplication, which runs before ClusterIPs
   * are translated, cannot tell they are one. Here, where they are: a `connect` to a ClusterIP and a
   * record with the same protocol, client address and client port whose destination is one of the
   * backends the Service port leads to, on the port it leads to there, at most
   * GADGET_PAIR_TOLERANCE_MS apart, are one connection, folded once, as the client addressed it (to the
   * Service, so that every backend is still admitted: the next connection may reach another), with the
   * earliest time and the strongest verdict of the two. Records that may have such a partner are held
   * until the newest record is GADGET_HOLD_MS later, then paired in the order of their times, each with
   * the first in time that fits, so that neither the order of the records nor that of the files they
   * came in changes what is paired. `flush` settles the rest. Only Inspektor Gadget records come here
   * (`add` is unchanged for every other).
   */
  addGadget(flow: Flow): void {
    this.stats.flows++;
    const s = this.#identity.resolveNumber(flow.src, flow.time, undefined, flow.timeless);
    const d = this.#identity.resolveNumber(flow.dst, flow.time, flow.port, flow.timeless, flow.protocol);
    const a = this.#state[s] || this.#see(s);
    const b = this.#state[d] || this.#see(d);
    const toService = (b & SERVICE) !== 0 && this.#identity.peerAt(d).kind === 'service';
    if (
      flow.srcPort === undefined ||
      flow.src.ip === undefined ||
      flow.count !== undefined ||
      (a & SERVICE) !== 0 ||
      ((b & SERVICE) !== 0 && !toService)
    ) {
      this.#fold(flow, s, d);
      return;
    }
    const held: HeldEnd = {
      flow,
      s,
      d,
      key: `${flow.protocol} ${normaliseIP(flow.src.ip)} ${flow.srcPort}`,
      toService,
      done: false,
    };
    this.#held.push(held);
    const same = this.#heldByKey.get(held.key);
    if (same === undefined) this.#heldByKey.set(held.key, [held]);
    else same.push(held);
    if (flow.time > this.#heldNewest) this.#heldNewest = flow.time;
    // Settled a hold's time at a time, so that each record is sorted a few times at most; up to the
    // pairing tolerance before the hold, so that every record a settled one could pair with is at least
    // GADGET_HOLD_MS behind the newest: one that comes later than that missed the hold anyway.
    if (this.#heldNewest - this.#settledTo >= 2 * GADGET_HOLD_MS)
      this.#settle(this.#heldNewest - GADGET_HOLD_MS - GADGET_PAIR_TOLERANCE_MS);
  }

  /**
   * Folds every Inspektor Gadget record still held (see `addGadget`); call once the last flow is in.
   * The edges, peers and names given before it leave out what is held.
   */
  flush(): void {
    if (this.#held.length > 0) this.#settle(Infinity);
  }

  /** Pairs or folds, in the order of their times, the held records up to time `limit`. */
  #settle(limit: number): void {
    this.#settledTo = limit;
    const held = this.#held.sort(compareHeld);
    for (const e of held) {
      if (e.flow.time > limit) break;
      if (e.done) continue;
      e.done = true;
      // The first in time of the records that fit (the key's list is in the order they came).
      let other: HeldEnd | undefined;
      for (const x of this.#heldByKey.get(e.key)!)
        if (!x.done && (other === undefined || compareHeld(x, other) < 0) && this.#oneConnection(e, x))
          other = x;
      if (other === undefined) {
        this.#fold(e.flow, e.s, e.d);
        continue;
      }
      other.done = true;
      const [c, x] = e.toService ? [e, other] : [other, e];
      // The accept's observation of the connection, as the client addressed it.
      const merged = mergeObservationCopy(c.flow, { ...x.flow, dst: c.flow.dst, port: c.flow.port });
      this.stats.bothEnds++;
      this.#fold(merged, c.s, c.d);
    }
    this.#held = held.filter((e) => !e.done);
    for (const [key, same] of this.#heldByKey) {
      const left = same.filter((e) => !e.done);
      if (left.length === 0) this.#heldByKey.delete(key);
      else if (left.length < same.length) this.#heldByKey.set(key, left);
    }
  }

  /**
   * Whether held records `e` and `x` (same key) are the two ends of one connection to a Service: one a
   * record to its ClusterIP, the other to a backend the Service port leads to, on its port there, close
   * enough in time.
   */
  #oneConnection(e: HeldEnd, x: HeldEnd): boolean {
    if (e.toService === x.toService || Math.abs(e.flow.time - x.flow.time) > GADGET_PAIR_TOLERANCE_MS)
      return false;
    const [c, accept] = e.toService ? [e, x] : [x, e];
    const backends = this.#identity.serviceBackends(c.d, c.flow.port, c.flow.protocol)!;
    return backends.some((to) => to.peer === accept.d && to.port === accept.flow.port);
  }

  /** What `add` does with a flow once its ends are resolved (peer numbers `s` and `d`). */
  #fold(flow: Flow, s: number, d: number): void {
    const a = this.#state[s]!;
    const b = this.#state[d]!;
    if (((a | b) & SERVICE) !== 0) {
      this.#addViaService(flow, s, d, a, b);
      return;
    }
    if (this.#addPeers(flow, s, d, a, b, flow.port) >= 0 && ((a ^ b) & UNKNOWN) !== 0)
      this.stats.unattributed += flow.count ?? 1;
  }

  /**
   * A flow with a Service's ClusterIP at one end: an edge to (or from) each of its backends, on the
   * port the backend takes the connection on. The connection reached one of them, and which one is
   * not known: a policy must admit it at every one. Folded into several edges, it is marked shared on
   * each (by the connection as observed), so that it can be counted once.
   */
  #addViaService(flow: Flow, s: number, d: number, a: number, b: number): void {
    const identity = this.#identity;
    const ends = (n: number, bits: number, port: number) =>
      (bits & SERVICE) !== 0 ? identity.serviceBackends(n, port, flow.protocol)! : [{ peer: n, port }];
    // A backend at the source end is one peer, whatever the ports it takes the Service's connections
    // on: the edge's port is the destination's.
    let sources = ends(s, a, flow.port);
    if (sources.length > 1)
      sources = sources.filter((x, i) => sources.findIndex((y) => y.peer === x.peer) === i);
    const folded = this.#folded;
    folded.length = 0;
    let unknown = false;
    for (const from of sources)
      for (const to of ends(d, b, flow.port)) {
        const x = this.#state[from.peer] || this.#see(from.peer);
        const y = this.#state[to.peer] || this.#see(to.peer);
        const e = this.#addPeers(flow, from.peer, to.peer, x, y, (b & SERVICE) !== 0 ? to.port : flow.port);
        if (e >= 0) {
          folded.push(e);
          if (((x ^ y) & UNKNOWN) !== 0) unknown = true;
        }
      }
    // The flow counts once, whatever the number of backends (and a replacing one was counted).
    if (flow.replaces !== undefined) return;
    if (folded.length > 0 && unknown) this.stats.unattributed += flow.count ?? 1;
    if (folded.length > 1) this.#share(folded, s, d, flow);
  }

  /** Marks `flow`, observed from peer `s` to peer `d`, shared on each of the edges `folded`. */
  #share(folded: readonly number[], s: number, d: number, flow: Flow): void {
    const key = d * 524288 + ((PROTOCOL_CODE[flow.protocol] << 16) | flow.port);
    let bySrc = this.#sharedNumbers.get(s);
    if (bySrc === undefined) this.#sharedNumbers.set(s, (bySrc = new Map<number, number>()));
    let g = bySrc.get(key);
    if (g === undefined) {
      bySrc.set(key, (g = this.#sharedSrc.length));
      this.#sharedSrc.push(s);
      this.#sharedKey.push(key);
    }
    const n = flow.count ?? 1;
    for (const e of folded) {
      let shared = this.#shared.get(e);
      if (shared === undefined) this.#shared.set(e, (shared = new Map<number, number>()));
      shared.set(g, (shared.get(g) ?? 0) + n);
    }
  }

  /**
   * Folds `flow` into the edge from peer `s` to peer `d` (bits `a` and `b`) on `port`; returns the edge,
   * or -1 when the flow is left out as noise.
   */
  #addPeers(flow: Flow, s: number, d: number, a: number, b: number, port: number): number {
    if ((a & b & UNKNOWN) !== 0 || isMulticast(flow.dst.ip)) {
      this.stats.ignored++;
      return -1;
    }
    if ((a & KEPT) === 0) this.#keep(s);
    if ((b & KEPT) === 0) this.#keep(d);
    if (flow.src.names !== undefined && flow.src.names.length > 0) this.#addNames(s, flow.src.names);
    if (flow.dst.names !== undefined && flow.dst.names.length > 0) this.#addNames(d, flow.dst.names);
    // Ports fit 16 bits (ICMP types 8), the protocol code 3. Inputs check ports at the edge; a flow
    // built elsewhere with another port is a programming error.
    if (!(port >>> 0 === port && port <= 0xffff)) throw new RangeError(`flow port out of range: ${port}`);
    const verdict = VERDICT_CODE.get(flow.verdict);
    if (verdict === undefined) throw new RangeError(`unknown flow verdict: ${String(flow.verdict)}`);
    const pp = (PROTOCOL_CODE[flow.protocol] << 16) | port;
    const e = this.#edge(s, d, pp, flow.time, verdict);
    // What foldFlow does to an EdgeRecord, on the columns.
    const n = flow.count ?? 1;
    // A record that replaces the verdict its connection was counted with (Flow.replaces) takes that
    // count back first: the connection counts once, with the new verdict.
    if (flow.replaces !== undefined) this.#takeBack(e, flow.replaces, n);
    const stat = this.#stat;
    const before = stat[e * 3]!;
    stat[e * 3] = before + n;
    if (flow.time < stat[e * 3 + 1]!) stat[e * 3 + 1] = flow.time;
    if (flow.time > stat[e * 3 + 2]!) stat[e * 3 + 2] = flow.time;
    if (this.#mixed.size > 0 || verdict !== this.#verdict[e]) {
      const mixed = this.#mixed.get(e);
      // With every count taken back (#takeBack), the edge has the new verdict only.
      if (mixed !== undefined) mixed[flow.verdict] = (mixed[flow.verdict] ?? 0) + n;
      else if (before === 0) this.#verdict[e] = verdict;
      else if (verdict !== this.#verdict[e])
        this.#mixed.set(e, { [VERDICTS[this.#verdict[e]!]!]: before, [flow.verdict]: n });
    }
    if (flow.dropReason) {
      let drops = this.#drops.get(e);
      if (drops === undefined) this.#drops.set(e, (drops = {}));
      drops[flow.dropReason] = (drops[flow.dropReason] ?? 0) + n;
    }
    return e;
  }

  /**
   * Takes `n` connections counted with `verdict` back from edge `e`, if it has them (a record that
   * replaces the verdict of its connection; the edge it was counted on before has them, unless its
   * ends were resolved otherwise, and then the record is counted as a connection of its own).
   */
  #takeBack(e: number, verdict: Verdict, n: number): void {
    const stat = this.#stat;
    const mixed = this.#mixed.get(e);
    if (mixed !== undefined) {
      const had = mixed[verdict] ?? 0;
      if (had < n) return;
      if (had === n) delete mixed[verdict];
      else mixed[verdict] = had - n;
    } else if (VERDICTS[this.#verdict[e]!] !== verdict || stat[e * 3]! < n) return;
    stat[e * 3] = stat[e * 3]! - n;
  }

  /**
   * Adds every flow of `flows` in order (a reader's batch): an indexed loop, where `for…of` over each
   * batch allocated its iterator's results (0.6 MB per 200k lines in a heap profile).
   */
  addAll(flows: readonly Flow[]): void {
    for (let i = 0; i < flows.length; i++) this.add(flows[i]!);
  }

  /** The edge (source s, destination d, protocol and port pp), created on first sight. */
  #edge(s: number, d: number, pp: number, time: number, verdict: number): number {
    const table = this.#table;
    const mask = (table.length >> 2) - 1;
    for (let i = slotHash(s, d, pp) & mask; ; i = (i + 1) & mask) {
      const at = i << 2;
      const held = table[at + 3]!;
      if (held === 0) {
        const e = this.#newEdge(s, (d * 8 + (pp >>> 16)) * 65536 + (pp & 0xffff), time, verdict);
        table[at] = s;
        table[at + 1] = d;
        table[at + 2] = pp;
        table[at + 3] = e + 1;
        if (this.#size * 2 > mask) this.#rehash();
        return e;
      }
      if (table[at] === s && table[at + 1] === d && table[at + 2] === pp) return held - 1;
    }
  }

  /** Doubles the edge table, placing every edge again. */
  #rehash(): void {
    const old = this.#table;
    const table = (this.#table = new Int32Array(old.length * 2));
    const mask = (table.length >> 2) - 1;
    for (let at = 0; at < old.length; at += 4) {
      if (old[at + 3] === 0) continue;
      let i = slotHash(old[at]!, old[at + 1]!, old[at + 2]!) & mask;
      while (table[(i << 2) + 3] !== 0) i = (i + 1) & mask;
      // Four stores, not a `subarray` view per edge.
      const to = i << 2;
      table[to] = old[at]!;
      table[to + 1] = old[at + 1]!;
      table[to + 2] = old[at + 2]!;
      table[to + 3] = old[at + 3]!;
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
      this.#stat = grow(this.#stat);
      this.#verdict = grow(this.#verdict);
    }
    this.#src[e] = s;
    this.#key[e] = key;
    this.#stat[e * 3] = 0;
    this.#stat[e * 3 + 1] = time;
    this.#stat[e * 3 + 2] = time;
    this.#verdict[e] = verdict;
    return e;
  }

  /** Makes room for peer `n` (the arrays stay without holes) and notes what it is; returns its bits. */
  #see(n: number): number {
    const peer = this.#identity.peerAt(n);
    while (this.#state.length <= n) {
      this.#state.push(0);
      this.#ids.push('');
    }
    this.#ids[n] = peer.id;
    return (this.#state[n] =
      SEEN |
      (peer.kind === 'unknown' ? UNKNOWN : 0) |
      (peer.kind === 'service' || peer.kind === 'selector' ? SERVICE : 0));
  }

  /** Remembers peer `n` on its first sight as an end of a flow that is kept (not ignored). */
  #keep(n: number): void {
    this.#state[n]! |= KEPT;
    this.#kept.push(n);
  }

  /** Keeps the DNS names a flow gave a peer that is not a workload. */
  #addNames(n: number, names: string[]): void {
    const p = this.#identity.peerAt(n);
    if (p.kind === 'workload') return;
    let s = this.#names.get(p.id);
    if (!s) this.#names.set(p.id, (s = new Set()));
    for (const name of names) s.add(name.endsWith('.') ? name.slice(0, -1) : name);
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
        count: this.#stat[e * 3]!,
        firstSeen: this.#stat[e * 3 + 1]!,
        lastSeen: this.#stat[e * 3 + 2]!,
        verdicts: mixed ? { ...mixed } : { [VERDICTS[this.#verdict[e]!]!]: this.#stat[e * 3]! },
      };
      const drops = this.#drops.get(e);
      if (drops !== undefined) edge.dropReasons = { ...drops };
      const shared = this.#shared.get(e);
      if (shared !== undefined) edge.shared = this.#sharedRecord(shared);
      yield edge;
    }
  }

  /** An edge's shared flows by the id of the connection as observed (`src->dst:port/protocol`), sorted. */
  #sharedRecord(shared: Map<number, number>): Record<string, number> {
    const ids = this.#ids;
    const byId: [string, number][] = [];
    for (const [g, n] of shared) {
      const key = this.#sharedKey[g]!;
      const port = key % 65536;
      const dp = (key - port) / 65536;
      byId.push([
        `${ids[this.#sharedSrc[g]!]!}->${ids[Math.floor(dp / 8)]!}:${port}/${PROTOCOLS[dp % 8]!}`,
        n,
      ]);
    }
    byId.sort((x, y) => cmp(x[0], y[0]));
    return Object.fromEntries(byId);
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

  /** The peers at either end of a kept flow, by id, in the order they were first kept. */
  peers(): Map<string, Peer> {
    const kept = this.#kept;
    // Peers are only ever added: the map is extended from where it was built last.
    for (; this.#inPeers < kept.length; this.#inPeers++) {
      const n = kept[this.#inPeers]!;
      this.#peers.set(this.#ids[n]!, this.#identity.peerAt(n));
    }
    return this.#peers;
  }

  names(): Map<string, Set<string>> {
    return this.#names;
  }
}

/** Held records by time, then what tells apart two records of one key at one time. */
function compareHeld(x: HeldEnd, y: HeldEnd): number {
  const f = x.flow;
  const g = y.flow;
  return (
    f.time - g.time ||
    cmp(x.key, y.key) ||
    Number(y.toService) - Number(x.toService) ||
    cmp(f.dst.ip ?? '', g.dst.ip ?? '') ||
    f.port - g.port ||
    cmp(JSON.stringify(f), JSON.stringify(g))
  );
}

/** The edge table's hash of (source, destination, protocol << 16 | port). */
function slotHash(s: number, d: number, pp: number): number {
  let h = Math.imul(s, 0x9e3779b1) ^ Math.imul(d, 0x85ebca6b) ^ Math.imul(pp, 0xc2b2ae35);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  return h ^ (h >>> 13);
}

/** IPv4 224.0.0.0/4 and 255.255.255.255, IPv6 ff00::/8: neighbour discovery, mDNS, ... never a service. */
export function isMulticast(ip: string | undefined): boolean {
  if (!ip) return false;
  // Most addresses (10.x, 1xx.x, 3x.x ... 9x.x) start with a digit that neither a multicast first
  // octet (224-239), the broadcast address nor an ff00::/8 address starts with.
  const c = ip.charCodeAt(0);
  if (c === 49 || (c >= 51 && c <= 57)) return false;
  if (ip.includes(':')) return /^ff[0-9a-f]{2}:/i.test(ip);
  const first = Number(ip.slice(0, ip.indexOf('.')));
  return (first >= 224 && first <= 239) || ip === '255.255.255.255';
}

/** The key of an edge: (source, destination, protocol, port). */
export const edgeKey = (e: { src: string; dst: string; protocol: string; port: number }): string =>
  `${e.src}\u0000${e.dst}\u0000${e.protocol}\u0000${e.port}`;

type Evidence = Pick<Flow, 'time' | 'protocol' | 'port' | 'verdict' | 'count' | 'dropReason'>;

/**
 * Folds one flow into the evidence of its edge, creating the edge on first sight. `shared`: the id of
 * the connection as observed, when the flow is folded into other edges too (EdgeEvidence.shared).
 */
export function foldFlow(
  edges: Map<string, EdgeRecord>,
  src: string,
  dst: string,
  flow: Evidence,
  shared?: string,
): EdgeRecord {
  const key = `${src}\u0000${dst}\u0000${flow.protocol}\u0000${flow.port}`; // edgeKey, inlined
  let e = edges.get(key);
  if (!e) edges.set(key, (e = newEdge(src, dst, flow)));
  foldEvidence(e, flow);
  if (shared !== undefined) {
    e.shared ??= {};
    e.shared[shared] = (e.shared[shared] ?? 0) + (flow.count ?? 1);
  }
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
