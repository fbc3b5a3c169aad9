/**
 * Aggregation: resolved flows become edges with evidence. Memory is bounded by the number of distinct
 * (source, destination, protocol, port) tuples, never by the number of flows.
 */
import type { Flow, Protocol } from '../flows/types.ts';
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

export class Aggregator {
  readonly #identity: Identity;
  // Peers are numbered as they are first seen; the edges of a source are kept by one number for
  // (destination, protocol, port), so no key text is built or held per edge.
  readonly #index = new Map<string, number>();
  readonly #bySource: Map<number, EdgeRecord>[] = [];
  readonly #peers = new Map<string, Peer>();
  readonly #names = new Map<string, Set<string>>();
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
    const key = (d * 8 + PROTOCOL_CODE[flow.protocol]) * 65536 + port;
    const edges = this.#bySource[s]!;
    let e = edges.get(key);
    if (e === undefined) edges.set(key, (e = newEdge(src.id, dst.id, flow)));
    foldEvidence(e, flow);
  }

  /** The peer's number, numbering it (and remembering it) on first sight; DNS names are kept. */
  #remember(p: Peer, names: string[] | undefined): number {
    let i = this.#index.get(p.id);
    if (i === undefined) {
      i = this.#bySource.length;
      this.#index.set(p.id, i);
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

  /** Edges sorted by source, destination, protocol, port. */
  edges(): EdgeRecord[] {
    const all: EdgeRecord[] = [];
    for (const m of this.#bySource) for (const e of m.values()) all.push(e);
    return all.sort(compareEdges);
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
