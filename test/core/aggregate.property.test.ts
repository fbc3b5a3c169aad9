import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Flow, Protocol, Verdict } from '../../src/flows/types.ts';
import { Deduplicator } from '../../src/flows/dedup.ts';
import { Aggregator, compareEdges, foldFlow, isMulticast } from '../../src/graph/aggregate.ts';
import type { EdgeRecord } from '../../src/graph/types.ts';
import { buildIdentity } from '../../src/identity/index.ts';
import { snapshotFromObjects } from '../../src/model/snapshot.ts';
import { fixtureSnapshot } from './fixture.ts';

// No pods: every peer is classified by its address, so the peer ids are known without identity.
const identity = buildIdentity(snapshotFromObjects([], 'empty'));
const peerId = (ip: string) => (ip.startsWith('10.') ? `private:${ip}` : `world:${ip}`);

const flowArb = fc.record({
  time: fc.integer({ min: 1_700_000_000_000, max: 1_700_000_100_000 }),
  src: fc.constantFrom('10.0.0.1', '10.0.0.2', '198.51.100.7'),
  dst: fc.constantFrom('10.0.0.1', '10.0.0.3', '203.0.113.9'),
  protocol: fc.constantFrom<Protocol>('TCP', 'UDP', 'SCTP', 'ICMPv4', 'ICMPv6'),
  // Edges of the port range and a few numbers that ICMP types share.
  port: fc.constantFrom(0, 1, 8, 53, 443, 65535),
  verdict: fc.constantFrom<Verdict>('FORWARDED', 'DROPPED', 'AUDIT'),
  dropReason: fc.option(fc.constantFrom('POLICY_DENIED', 'STALE_OR_UNROUTABLE_IP'), { nil: undefined }),
  count: fc.option(fc.integer({ min: 1, max: 5 }), { nil: undefined }),
});

type FlowRecord = typeof flowArb extends fc.Arbitrary<infer T> ? T : never;

function toFlow(r: FlowRecord): Flow {
  const f: Flow = {
    time: r.time,
    src: { ip: r.src },
    dst: { ip: r.dst },
    protocol: r.protocol,
    port: r.port,
    verdict: r.verdict,
    input: 'generic',
  };
  if (r.dropReason !== undefined) f.dropReason = r.dropReason;
  if (r.count !== undefined) f.count = r.count;
  return f;
}

/** A flow between two private addresses, without protocol and port. */
const ONE_PAIR = {
  time: 1,
  src: { ip: '10.0.0.1' },
  dst: { ip: '10.0.0.3' },
  verdict: 'FORWARDED' as const,
  input: 'generic' as const,
};

describe('aggregation', () => {
  it('gives exactly the edges of text-keyed folding (numbered peers, numeric edge keys)', () => {
    fc.assert(
      fc.property(fc.array(flowArb, { maxLength: 200 }), fc.nat(200), (records, cut) => {
        const agg = new Aggregator(identity);
        const reference = new Map<string, EdgeRecord>();
        const lazy = agg.sortedEdges();
        for (const [i, r] of records.entries()) {
          // Iterated midway too: what was sorted then must not stand for the edges added since.
          if (i === cut) expect([...lazy]).toEqual([...reference.values()].sort(compareEdges));
          const f = toFlow(r);
          agg.add(f);
          foldFlow(reference, peerId(r.src), peerId(r.dst), f);
        }
        const expected = [...reference.values()].sort(compareEdges);
        const got = agg.edges();
        expect(got).toEqual(expected);
        // Key order too (verdicts and drop reasons in order of first sight): the same JSON.
        expect(JSON.stringify(got)).toBe(JSON.stringify(expected));
        // Built as iterated, afresh each time.
        expect([...lazy]).toEqual(got);
        expect([...lazy]).toEqual(got);
        expect(new Set(got.map((e) => `${e.src} ${e.dst} ${e.protocol} ${e.port}`)).size).toBe(got.length);
        expect(agg.stats.flows).toBe(records.length);
      }),
      { numRuns: 300 },
    );
  });

  it('keeps every edge as its columns grow past their first size', () => {
    const agg = new Aggregator(identity);
    const reference = new Map<string, EdgeRecord>();
    const verdicts: Verdict[] = ['FORWARDED', 'DROPPED', 'AUDIT'];
    for (let i = 0; i < 5000; i++) {
      const f: Flow = {
        ...ONE_PAIR,
        src: { ip: `10.0.${i % 7}.1` },
        time: 1_700_000_000_000 + ((i * 7919) % 100_000),
        protocol: i % 3 === 0 ? 'UDP' : 'TCP',
        port: (i * 31) % 1500,
        verdict: verdicts[i % 3]!,
      };
      agg.add(f);
      foldFlow(reference, `private:${f.src.ip!}`, 'private:10.0.0.3', f);
    }
    const got = agg.edges();
    expect(got.length).toBeGreaterThan(2048);
    expect(JSON.stringify(got)).toBe(JSON.stringify([...reference.values()].sort(compareEdges)));
  });

  it('keeps protocols and ports apart on one pair', () => {
    const agg = new Aggregator(identity);
    const base = ONE_PAIR;
    agg.add({ ...base, protocol: 'TCP', port: 8 });
    agg.add({ ...base, protocol: 'ICMPv4', port: 8 });
    agg.add({ ...base, protocol: 'TCP', port: 65535 });
    agg.add({ ...base, protocol: 'UDP', port: 0 });
    agg.add({ ...base, protocol: 'TCP', port: 8, time: 5 });
    expect(agg.edges().map((e) => [e.protocol, e.port, e.count, e.firstSeen, e.lastSeen])).toEqual([
      ['ICMPv4', 8, 1, 1, 1],
      ['TCP', 8, 2, 1, 5],
      ['TCP', 65535, 1, 1, 1],
      ['UDP', 0, 1, 1, 1],
    ]);
  });

  it('counts a record that replaces the verdict of its connection once, with the new verdict', () => {
    const evidence = (flows: Partial<Flow>[]) => {
      const agg = new Aggregator(identity);
      for (const f of flows) agg.add({ ...ONE_PAIR, protocol: 'TCP', port: 5432, ...f });
      return agg.edges().map((e) => [e.count, e.verdicts, e.dropReasons, e.firstSeen, e.lastSeen]);
    };
    const dropped: Partial<Flow> = { verdict: 'DROPPED', dropReason: 'POLICY_DENIED', replaces: 'FORWARDED' };
    // Its only connection: the edge is dropped only.
    expect(evidence([{ time: 2 }, { ...dropped, time: 1 }])).toEqual([
      [1, { DROPPED: 1 }, { POLICY_DENIED: 1 }, 1, 2],
    ]);
    // One of two forwarded connections, and on an edge of several verdicts.
    expect(evidence([{}, {}, dropped])).toEqual([
      [2, { FORWARDED: 1, DROPPED: 1 }, { POLICY_DENIED: 1 }, 1, 1],
    ]);
    expect(evidence([{}, { verdict: 'AUDIT' }, dropped])).toEqual([
      [2, { AUDIT: 1, DROPPED: 1 }, { POLICY_DENIED: 1 }, 1, 1],
    ]);
    // An edge without the verdict replaced (its connection was counted elsewhere): a connection of its own.
    expect(evidence([{ verdict: 'AUDIT' }, dropped])).toEqual([
      [2, { AUDIT: 1, DROPPED: 1 }, { POLICY_DENIED: 1 }, 1, 1],
    ]);
    expect(evidence([dropped])).toEqual([[1, { DROPPED: 1 }, { POLICY_DENIED: 1 }, 1, 1]]);
  });

  it('refuses a flow whose port is not a 16-bit number', () => {
    const agg = new Aggregator(identity);
    const f = { ...ONE_PAIR, protocol: 'TCP' as const };
    expect(() => agg.add({ ...f, port: 65536 })).toThrow('flow port out of range: 65536');
    expect(() => agg.add({ ...f, port: -1 })).toThrow('flow port out of range: -1');
    expect(() => agg.add({ ...f, port: 1.5 })).toThrow('flow port out of range: 1.5');
  });
});

describe('aggregation on a cluster identity', () => {
  // Pods named, pods by address, services, the API server, nodes, the world, unknown ends (no
  // address), multicast destinations, DNS names: the peers the identity numbers in every way it can.
  const endpointArb = fc.constantFrom<Flow['src']>(
    { namespace: 'shop', pod: 'frontend-7d9f-aaaaa', ip: '10.244.1.20' },
    Object.freeze({ namespace: 'shop', pod: 'frontend-7d9f-aaaaa' }),
    { ip: '10.244.1.20' },
    { namespace: 'shop', pod: 'gone-pod-1', ip: '10.244.9.9' },
    { ip: '10.96.5.6' },
    { ip: '10.96.0.1' },
    { ip: '192.168.0.10' },
    { ip: '8.8.8.8', names: ['dns.google.'] },
    { ip: '8.8.8.8', names: ['dns.google', 'google-public-dns-a.google.com.'] },
    { ip: '10.1.2.3' },
    {},
    { ip: '224.0.0.251' },
    { ip: 'ff02::fb' },
    { ip: '255.255.255.255' },
  );
  const recordArb = fc.record({
    src: endpointArb,
    dst: endpointArb,
    time: fc.integer({ min: 1_700_000_000_000, max: 1_700_000_100_000 }),
    protocol: fc.constantFrom<Protocol>('TCP', 'UDP', 'ICMPv4'),
    port: fc.constantFrom(0, 53, 8080, 65535),
    verdict: fc.constantFrom<Verdict>('FORWARDED', 'DROPPED'),
  });

  it('counts a record that replaces a verdict on the edge its connection was counted on, whatever its own ends resolve to', () => {
    // frontend → 10.9.9.9:5432 (an address no pod of the snapshot holds: a private peer), forwarded at
    // the frontend's node; its drop comes late, from a node that names the cart pod at that address.
    // Another connection, frontend → cart:5432, was forwarded: its edge must keep it.
    const agg = new Aggregator(buildIdentity(fixtureSnapshot()));
    const d = new Deduplicator({ windowMs: 1000 });
    const frontend = { namespace: 'shop', pod: 'frontend-7d9f-aaaaa' };
    const f = (time: number, dst: Flow['dst'], over: Partial<Flow> = {}): Flow => ({
      time: 1_700_000_000_000 + time,
      src: frontend,
      dst,
      protocol: 'TCP',
      port: 5432,
      srcPort: 40000,
      verdict: 'FORWARDED',
      input: 'hubble',
      ...over,
    });
    const out: Flow[] = [];
    for (const flow of [
      f(0, { ip: '10.9.9.9' }),
      f(3500, { namespace: 'shop', pod: 'cart-7d9f-bbbbb', ip: '10.244.1.20' }, { srcPort: 40001 }),
      f(
        1,
        { namespace: 'shop', pod: 'cart-7d9f-bbbbb', ip: '10.9.9.9' },
        { verdict: 'DROPPED', dropReason: 'POLICY_DENIED' },
      ),
    ])
      d.add(flow, out);
    d.flush(out);
    expect(out.map((x) => x.replaces)).toEqual([undefined, 'FORWARDED', undefined]);
    agg.addAll(out);
    expect(agg.edges().map((e) => [e.src, e.dst, e.count, e.verdicts])).toEqual([
      ['shop/Deployment/frontend', 'private:10.9.9.9', 1, { DROPPED: 1 }],
      ['shop/Deployment/frontend', 'shop/Deployment/cart', 1, { FORWARDED: 1 }],
    ]);
  });

  it('gives the edges, peers and names of resolving each end and folding its flow', () => {
    fc.assert(
      fc.property(fc.array(recordArb, { maxLength: 120 }), fc.nat(120), (records, cut) => {
        // Two identities over one snapshot: one for the aggregator, one for the reference, so that
        // the numbers the aggregator keeps by are its own identity's.
        const mine = buildIdentity(fixtureSnapshot());
        const theirs = buildIdentity(fixtureSnapshot());
        const agg = new Aggregator(mine);
        const reference = new Map<string, EdgeRecord>();
        const peers = new Map<string, string>();
        const names = new Map<string, Set<string>>();
        let ignored = 0;
        let unattributed = 0;
        const peersSoFar = () => [...agg.peers()].map(([id, p]) => [id, p.kind]);
        for (const [i, r] of records.entries()) {
          // Peers asked for part-way: what was kept so far, and later ones still come (below).
          if (i === cut) expect(peersSoFar()).toEqual([...peers]);
          const f: Flow = { ...r, input: 'generic' };
          agg.add(f);
          // A Service's ClusterIP stands for each of its backends, on the port each takes it on.
          const ends = (n: number, dst: boolean) =>
            theirs
              .serviceBackends(n, f.port, f.protocol)
              ?.map((b) => ({ peer: theirs.peerAt(b.peer), port: dst ? b.port : f.port })) ?? [
              { peer: theirs.peerAt(n), port: f.port },
            ];
          const srcs = ends(theirs.resolveNumber(f.src, f.time), false);
          const dsts = ends(theirs.resolveNumber(f.dst, f.time, f.port), true);
          let unknownEnd = false;
          for (const { peer: src } of srcs)
            for (const { peer: dst, port } of dsts) {
              const multicast = /^(22[4-9]|23\d)\.|^255\.255\.255\.255$|^ff/.test(f.dst.ip ?? '');
              if ((src.kind === 'unknown' && dst.kind === 'unknown') || multicast) {
                ignored++;
                continue;
              }
              for (const [p, ep] of [
                [src, f.src],
                [dst, f.dst],
              ] as const) {
                if (!peers.has(p.id)) peers.set(p.id, p.kind);
                if (p.kind !== 'workload' && ep.names)
                  for (const n of ep.names) {
                    if (!names.has(p.id)) names.set(p.id, new Set());
                    names.get(p.id)!.add(n.replace(/\.$/, ''));
                  }
              }
              foldFlow(reference, src.id, dst.id, { ...f, port });
              if ((src.kind === 'unknown') !== (dst.kind === 'unknown')) unknownEnd = true;
            }
          // Once per flow, however many backends it was folded into.
          if (unknownEnd) unattributed += f.count ?? 1;
        }
        expect(JSON.stringify(agg.edges())).toBe(JSON.stringify([...reference.values()].sort(compareEdges)));
        expect(peersSoFar()).toEqual([...peers]);
        expect(agg.names()).toEqual(names);
        expect(agg.stats).toEqual({ flows: records.length, ignored, unattributed, bothEnds: 0 });
        expect(mine.stats).toEqual(theirs.stats);
      }),
      { numRuns: 200 },
    );
  });

  it('adds a batch with addAll as it adds its flows one by one', () => {
    fc.assert(
      fc.property(fc.array(fc.array(recordArb, { maxLength: 20 }), { maxLength: 6 }), (batches) => {
        const one = new Aggregator(buildIdentity(fixtureSnapshot()));
        const all = new Aggregator(buildIdentity(fixtureSnapshot()));
        for (const batch of batches) {
          const flows: Flow[] = batch.map((r) => ({ ...r, input: 'generic' }));
          for (const f of flows) one.add(f);
          all.addAll(flows);
        }
        expect(JSON.stringify(all.edges())).toBe(JSON.stringify(one.edges()));
        expect([...all.peers().keys()]).toEqual([...one.peers().keys()]);
        expect(all.stats).toEqual(one.stats);
      }),
      { numRuns: 100 },
    );
  });

  it('keeps many sources and destinations apart as its edge table grows', () => {
    const agg = new Aggregator(identity);
    const reference = new Map<string, EdgeRecord>();
    for (let i = 0; i < 20_000; i++) {
      const s = i % 150;
      const d = Math.floor(i / 150) % 140;
      const f: Flow = {
        ...ONE_PAIR,
        src: { ip: `10.1.${s}.1` },
        dst: { ip: `10.2.${d}.1` },
        protocol: 'TCP',
        port: 80 + (i % 3),
        time: 1_700_000_000_000 + i,
      };
      agg.add(f);
      foldFlow(reference, `private:10.1.${s}.1`, `private:10.2.${d}.1`, f);
    }
    const got = agg.edges();
    expect(got.length).toBe(reference.size);
    expect(got.length).toBeGreaterThan(10_000);
    expect(JSON.stringify(got)).toBe(JSON.stringify([...reference.values()].sort(compareEdges)));
  });
});

describe('identity numbers', () => {
  it('numbers each peer once, by id, and gives the same frozen record for every resolution of it', () => {
    const id = buildIdentity(fixtureSnapshot());
    const ends: Flow['src'][] = [
      { namespace: 'shop', pod: 'frontend-7d9f-aaaaa' },
      { ip: '10.244.1.20' },
      { ip: '8.8.8.8' },
      { ip: '8.8.8.8', names: ['dns.google'] },
      {},
      {},
      { ip: '10.96.0.1' },
    ];
    const t = Date.parse('2026-11-01T12:00:00Z');
    const numbers = ends.map((e) => id.resolveNumber(e, t, 443));
    const peers = ends.map((e) => id.resolve(e, t, 443));
    expect(peers.map((p) => p.id)).toEqual([
      'shop/Deployment/frontend',
      // The address went to a pod of cart later (fixture.ts).
      'shop/Deployment/cart',
      'world:8.8.8.8',
      'world:8.8.8.8',
      'unknown',
      'unknown',
      // The API server's ClusterIP is its Service, whose backend is the API server (below).
      'service:default/kubernetes',
    ]);
    expect(numbers).toEqual([0, 1, 2, 2, 3, 3, 4]);
    for (const [i, n] of numbers.entries()) {
      expect(id.peerAt(n)).toBe(peers[i]);
      expect(Object.isFrozen(peers[i])).toBe(true);
    }
    const [api] = id.serviceBackends(numbers[6]!, 443, 'TCP')!;
    expect(api!.port).toBe(6443);
    expect(id.peerAt(api!.peer)).toBe(id.resolve({ ip: '172.18.0.2', reserved: 'kube-apiserver' }, t, 6443));
    expect(id.peerAt(api!.peer).id).toBe('kube-apiserver');
  });
});

describe('isMulticast', () => {
  // What it answered before its first-character shortcut: every string must get the same answer.
  const reference = (ip: string | undefined): boolean => {
    if (!ip) return false;
    if (ip.includes(':')) return /^ff[0-9a-f]{2}:/i.test(ip);
    const first = Number(ip.slice(0, ip.indexOf('.')));
    return (first >= 224 && first <= 239) || ip === '255.255.255.255';
  };

  it('answers as the octet rule does on addresses and on any text', () => {
    const octet = fc.oneof(
      fc.integer({ min: 0, max: 255 }).map(String),
      fc.constantFrom('0224', '2e2', ' 230', ''),
    );
    const text = fc.oneof(
      fc.tuple(octet, octet, octet, octet).map((o) => o.join('.')),
      fc.ipV6(),
      fc.constantFrom(
        'ff02::1',
        'FF05::2',
        'fe80::1',
        '255.255.255.255',
        '239.1.1.1',
        '224.0.0.0',
        '1e3.0.0.1',
      ),
      fc.string({ unit: fc.constantFrom('1', '2', '3', '9', '0', '.', ':', 'f', 'F', 'e', ' ') }),
    );
    fc.assert(
      fc.property(text, (ip) => {
        expect(isMulticast(ip)).toBe(reference(ip));
      }),
      { numRuns: 2000 },
    );
    expect(isMulticast('239.255.255.250')).toBe(true);
    expect(isMulticast('10.0.0.1')).toBe(false);
    expect(isMulticast(undefined)).toBe(false);
  });
});
