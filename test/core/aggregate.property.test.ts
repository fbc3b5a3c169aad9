import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Flow, Protocol, Verdict } from '../../src/flows/types.ts';
import { Aggregator, compareEdges, foldFlow } from '../../src/graph/aggregate.ts';
import type { EdgeRecord } from '../../src/graph/types.ts';
import { buildIdentity } from '../../src/identity/index.ts';
import { snapshotFromObjects } from '../../src/model/snapshot.ts';

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

  it('refuses a flow whose port is not a 16-bit number', () => {
    const agg = new Aggregator(identity);
    const f = { ...ONE_PAIR, protocol: 'TCP' as const };
    expect(() => agg.add({ ...f, port: 65536 })).toThrow('flow port out of range: 65536');
    expect(() => agg.add({ ...f, port: -1 })).toThrow('flow port out of range: -1');
    expect(() => agg.add({ ...f, port: 1.5 })).toThrow('flow port out of range: 1.5');
  });
});
