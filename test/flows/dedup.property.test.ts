import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  Deduplicator,
  connectionKey,
  mergeObservation,
  mergeObservationCopy,
} from '../../src/flows/dedup.ts';
import type { Flow, FlowEndpoint, Verdict } from '../../src/flows/types.ts';

// mergeObservation returns the kept Hubble record itself when the later observation adds nothing;
// the result must be byte-identical (JSON, key order included) to the copying merge in every case.

const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined, freq: 2 });

/** An endpoint with its keys in the order the Hubble normaliser writes them, no undefined values. */
const endpoint: fc.Arbitrary<FlowEndpoint> = fc
  .record({
    ip: opt(fc.constantFrom('10.0.0.1', '10.0.0.2')),
    namespace: opt(fc.constantFrom('a', 'b')),
    pod: opt(fc.constantFrom('p1', 'p2')),
    workload: opt(fc.constantFrom({ kind: 'Deployment', name: 'w' }, { kind: '', name: 'x' })),
    labels: opt(fc.constantFrom(['app=a'], ['app=b', 'v=1'], [])),
    reserved: opt(fc.constantFrom('world' as const, 'host' as const)),
    names: opt(fc.constantFrom(['x.example'], ['y.example', 'x.example'], [])),
    service: opt(fc.constantFrom({ namespace: 'a', name: 's' })),
  })
  .map((r) => {
    const e: FlowEndpoint = {};
    for (const [k, v] of Object.entries(r)) if (v !== undefined) (e as Record<string, unknown>)[k] = v;
    return e;
  });

const verdicts: Verdict[] = ['FORWARDED', 'DROPPED', 'AUDIT', 'ERROR', 'TRACED', 'UNKNOWN'];

const hubbleFlow: fc.Arbitrary<Flow> = fc
  .record({
    time: fc.integer({ min: 0, max: 5 }),
    src: endpoint,
    dst: endpoint,
    srcPort: opt(fc.constantFrom(40000, 40001)),
    verdict: fc.constantFrom(...verdicts),
    dropReason: opt(fc.constantFrom('POLICY_DENIED', 'CT_MAP_INSERTION_FAILED')),
    dnsQuery: opt(fc.constantFrom('a.example', 'b.example')),
    count: fc.option(fc.constantFrom(2, 5), { nil: undefined, freq: 8 }),
  })
  .map((r) => {
    const f = { time: r.time, src: r.src, dst: r.dst, protocol: 'TCP', port: 80 } as Flow;
    if (r.srcPort !== undefined) f.srcPort = r.srcPort;
    f.verdict = r.verdict;
    if (r.dropReason !== undefined) f.dropReason = r.dropReason;
    if (r.dnsQuery !== undefined) f.dnsQuery = r.dnsQuery;
    if (r.count !== undefined) f.count = r.count;
    f.input = 'hubble';
    return f;
  });

/** A later observation built from `kept`: some fields dropped, a weaker or equal verdict. */
function derived(kept: Flow, r: Flow, mask: number): Flow {
  const thin = (e: FlowEndpoint, m: number): FlowEndpoint => {
    const out: FlowEndpoint = {};
    let bit = m;
    for (const [k, v] of Object.entries(e)) {
      if (bit & 1) (out as Record<string, unknown>)[k] = v;
      bit >>= 1;
    }
    return out;
  };
  const f = { time: kept.time + r.time, src: thin(kept.src, mask), dst: thin(kept.dst, mask >> 8) } as Flow;
  f.protocol = kept.protocol;
  f.port = kept.port;
  if (kept.srcPort !== undefined) f.srcPort = kept.srcPort;
  f.verdict = mask & 0x10000 ? kept.verdict : 'TRACED';
  if (mask & 0x20000 && r.dropReason !== undefined) f.dropReason = r.dropReason;
  if (mask & 0x40000 && r.dnsQuery !== undefined) f.dnsQuery = r.dnsQuery;
  f.input = 'hubble';
  return f;
}

describe('mergeObservation (fast-check)', () => {
  it('gives exactly the copying merge, also along chains of observations', () => {
    let same = 0;
    fc.assert(
      fc.property(
        hubbleFlow,
        fc.array(fc.tuple(hubbleFlow, fc.nat(), fc.boolean()), { minLength: 1, maxLength: 4 }),
        (first, rest) => {
          let fast = first;
          let copy = first;
          for (const [r, mask, derive] of rest) {
            const next = derive ? derived(first, r, mask) : r;
            const before = JSON.stringify(fast);
            const merged = mergeObservation(fast, next);
            if (merged === fast) same++;
            copy = mergeObservationCopy(copy, next);
            expect(JSON.stringify(merged)).toBe(JSON.stringify(copy));
            // The kept record is never modified.
            expect(JSON.stringify(fast)).toBe(before);
            fast = merged;
          }
        },
      ),
      { numRuns: 3000 },
    );
    // Not vacuous: the shortcut was taken in a good share of the merges.
    expect(same).toBeGreaterThan(100);
  });

  it('an observation that adds nothing leaves the kept record as it is', () => {
    const kept: Flow = {
      time: 1,
      src: { ip: '10.0.0.1', namespace: 'a', pod: 'p1', labels: ['app=a'] },
      dst: { ip: '10.0.0.2' },
      protocol: 'TCP',
      port: 80,
      srcPort: 40000,
      verdict: 'DROPPED',
      dropReason: 'POLICY_DENIED',
      input: 'hubble',
    };
    const next: Flow = { ...kept, time: 2, src: { ip: '10.0.0.1' }, verdict: 'FORWARDED' };
    delete next.dropReason;
    expect(mergeObservation(kept, next)).toBe(kept);
    expect(mergeObservation(kept, { ...next, dst: { ip: '10.0.0.2', pod: 'p2' } })).not.toBe(kept);
    expect(mergeObservation(kept, { ...next, time: 0 })).not.toBe(kept);
  });
});

describe('compact connection keys', () => {
  const keyed: fc.Arbitrary<Flow> = fc
    .record({
      src: fc.constantFrom<FlowEndpoint>(
        { ip: '10.0.0.1' },
        { ip: '10.0.0.2' },
        { ip: 'fd00::1' },
        { namespace: 'a', pod: 'p1' },
        { namespace: 'a/p', pod: '1' },
        {},
      ),
      dst: fc.constantFrom<FlowEndpoint>(
        { ip: '10.0.0.1' },
        { ip: '10.0.0.2' },
        { namespace: 'a', pod: 'p1' },
        {},
      ),
      protocol: fc.constantFrom('TCP', 'UDP', 'SCTP', 'ICMPv4', 'ICMPv6'),
      port: fc.constantFrom(0, 53, 80, 128, 65535, 65536, 1.5),
      srcPort: fc.option(fc.constantFrom(1, 40000, 65535, 70000), { nil: undefined }),
      // ICMP is keyed for Hubble's packets only: a generic ICMP record is an aggregate.
      input: fc.constantFrom<Flow['input']>('hubble', 'generic'),
    })
    .map((r) => {
      const f = { time: 0, src: r.src, dst: r.dst, protocol: r.protocol, port: r.port } as Flow;
      if (r.srcPort !== undefined) f.srcPort = r.srcPort;
      f.verdict = 'FORWARDED';
      f.input = r.input;
      return f;
    });

  it('are equal exactly when the connection-key texts are equal', () => {
    fc.assert(
      fc.property(fc.array(keyed, { minLength: 2, maxLength: 12 }), (flows) => {
        const d = new Deduplicator();
        for (const a of flows)
          for (const b of flows) {
            const ka = d.key(a);
            const kb = d.key(b);
            expect(ka === undefined).toBe(connectionKey(a) === undefined);
            if (ka !== undefined && kb !== undefined)
              expect(ka === kb).toBe(connectionKey(a) === connectionKey(b));
          }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('de-duplication with compact keys, endpoints numbered afresh', () => {
  /** The reference: the same de-duplicator keyed by the connection-key texts. */
  class TextKeyed extends Deduplicator {
    override key(f: Flow): string | undefined {
      return connectionKey(f);
    }
  }
  const observation = fc
    .record({
      time: fc.integer({ min: 0, max: 3 }),
      src: fc.constantFrom<FlowEndpoint>(
        { ip: '10.0.0.1' },
        { ip: '10.0.0.2' },
        { ip: '10.0.0.3' },
        { namespace: 'a', pod: 'p' },
      ),
      dst: fc.constantFrom<FlowEndpoint>(
        { ip: '10.0.0.1' },
        { ip: '10.0.0.4' },
        { ip: '10.0.0.5' },
        { namespace: 'b', pod: 'q' },
      ),
      srcPort: fc.constantFrom(40000, 40001),
      verdict: fc.constantFrom<Verdict>('FORWARDED', 'DROPPED'),
    })
    .map((r) => {
      const f = {
        time: r.time,
        src: r.src,
        dst: r.dst,
        protocol: 'TCP',
        port: 80,
        srcPort: r.srcPort,
      } as Flow;
      f.verdict = r.verdict;
      f.input = 'hubble';
      return f;
    });

  it('emits exactly what text keys emit, in the same order', () => {
    fc.assert(
      fc.property(
        fc.array(observation, { maxLength: 40 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 5 }),
        (flows, maxEntries, maxEndpointKeys) => {
          let t = 0;
          const stream = flows.map((f) => ({ ...f, time: (t += f.time) }));
          const run = (d: Deduplicator) => {
            const out: Flow[] = [];
            for (const f of stream) d.add(f, out);
            d.flush(out);
            return { out: JSON.stringify(out), duplicates: d.duplicates, evictions: d.evictions };
          };
          const opts = { windowMs: 4, maxEntries };
          expect(run(new Deduplicator({ ...opts, maxEndpointKeys }))).toEqual(run(new TextKeyed(opts)));
        },
      ),
      { numRuns: 1500 },
    );
  });

  it('numbers asked for and expected before add change nothing, whichever flow they were for', () => {
    const keys = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', 'a/p', 'b/q'];
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(observation, fc.option(fc.tuple(fc.constantFrom(...keys), fc.constantFrom(...keys)))),
          { maxLength: 40 },
        ),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 5 }),
        (steps, maxEntries, maxEndpointKeys) => {
          let t = 0;
          const stream = steps.map(([f, hint]) => ({ flow: { ...f, time: (t += f.time) }, hint }));
          const opts = { windowMs: 4, maxEntries };
          const hinted = new Deduplicator({ ...opts, maxEndpointKeys });
          const out: Flow[] = [];
          for (const { flow, hint } of stream) {
            // As the byte scanner's duplicate check does: numbers for two keys (given when new, unless
            // a renumbering is due), then the hint; here often for keys the next flow does not have.
            if (hint !== null) {
              const [a, b] = hint;
              const s = hinted.endpointNumber(a, true);
              const d = hinted.endpointNumber(b, true);
              if (s !== undefined && d !== undefined) hinted.expect(a, s, b, d);
            }
            hinted.add(flow, out);
          }
          hinted.flush(out);
          const reference = new TextKeyed(opts);
          const expected: Flow[] = [];
          for (const { flow } of stream) reference.add(flow, expected);
          reference.flush(expected);
          expect(JSON.stringify(out)).toBe(JSON.stringify(expected));
          expect([hinted.duplicates, hinted.evictions]).toEqual([reference.duplicates, reference.evictions]);
        },
      ),
      { numRuns: 1500 },
    );
  });
});
