import { describe, expect, it } from 'vitest';
import {
  Deduplicator,
  FIELD_IP,
  FIELD_LABELS,
  FIELD_NAMESPACE,
  FIELD_POD,
  FIELD_SERVICE,
  PROTOCOL_CODE,
  connectionKey,
  mergeObservation,
  verdictRank,
} from '../../src/flows/dedup.ts';
import type { Flow } from '../../src/flows/types.ts';

function flow(time: number, over: Partial<Flow> = {}): Flow {
  return {
    time,
    src: { ip: '10.0.0.1' },
    dst: { ip: '10.0.0.2' },
    protocol: 'TCP',
    port: 80,
    srcPort: 40000,
    verdict: 'FORWARDED',
    input: 'hubble',
    ...over,
  };
}

function run(d: Deduplicator, flows: Flow[]): Flow[] {
  const out: Flow[] = [];
  for (const f of flows) d.add(f, out);
  d.flush(out);
  return out;
}

describe('connection keys', () => {
  it('uses the 5-tuple, ICMP type, pod names without IPs, and nothing for aggregates', () => {
    expect(connectionKey(flow(0))).toBe('TCP 10.0.0.1 40000 10.0.0.2 80');
    expect(connectionKey(flow(0, { protocol: 'ICMPv6', port: 128, srcPort: undefined }))).toBe(
      'ICMPv6 10.0.0.1 10.0.0.2 128',
    );
    expect(connectionKey(flow(0, { src: { namespace: 'a', pod: 'p' } }))).toBe('TCP a/p 40000 10.0.0.2 80');
    expect(connectionKey(flow(0, { srcPort: undefined, count: 3 }))).toBeUndefined();
    // ICMP has no ports: a Hubble packet is keyed by its type, a generic record (no srcPort) is an aggregate.
    const icmp = { protocol: 'ICMPv4', port: 8, srcPort: undefined } as const;
    expect(connectionKey(flow(0, icmp))).toBe('ICMPv4 10.0.0.1 10.0.0.2 8');
    expect(connectionKey(flow(0, { ...icmp, input: 'generic' }))).toBeUndefined();
    expect(connectionKey(flow(0, { ...icmp, input: 'generic', count: 5 }))).toBeUndefined();
  });
});

describe('Deduplicator', () => {
  it('counts observations of one connection at several points once, DROPPED wins', () => {
    const d = new Deduplicator({ windowMs: 1000 });
    const out = run(d, [
      flow(100, { src: { ip: '10.0.0.1' } }),
      flow(150, { src: { ip: '10.0.0.1', namespace: 'a', pod: 'p' } }),
      flow(180, { verdict: 'DROPPED', dropReason: 'POLICY_DENIED' }),
      flow(190, { verdict: 'FORWARDED' }),
    ]);
    expect(out).toEqual([
      flow(100, {
        src: { ip: '10.0.0.1', namespace: 'a', pod: 'p' },
        verdict: 'DROPPED',
        dropReason: 'POLICY_DENIED',
      }),
    ]);
    expect(d.duplicates).toBe(3);
  });

  it('numbers thousands of endpoint keys, each once, through the number table growing', () => {
    const d = new Deduplicator({ maxEntries: 100_000 });
    const ip = (i: number) => `10.${i >> 8}.${i & 255}.${i % 7}`;
    const flows: Flow[] = [];
    for (let i = 0; i < 6000; i++) flows.push(flow(i, { src: { ip: ip(i) }, dst: { ip: ip(i + 1) } }));
    const out: Flow[] = [];
    for (const f of [...flows, ...flows.map((f) => ({ ...f, time: f.time + 1 }))]) d.add(f, out);
    const numbers = Array.from({ length: 6001 }, (_, i) => d.endpointNumber(ip(i)));
    expect(numbers).toEqual(Array.from({ length: 6001 }, (_, i) => i));
    expect(d.endpointNumber('10.255.255.255')).toBeUndefined();
    d.flush(out);
    expect(out).toEqual(flows);
    expect(d.duplicates).toBe(6000);
  });

  it('tells an observation that adds nothing to a held connection from one that does (absorbs)', () => {
    const d = new Deduplicator({ windowMs: 1000 });
    const out: Flow[] = [];
    d.add(flow(100), out);
    // A merge that adds the source's pod gives a new record, which absorbs now judges by.
    d.add(flow(150, { src: { ip: '10.0.0.1', namespace: 'a', pod: 'p' } }), out);
    const s = d.endpointNumber('10.0.0.1')!;
    const t = d.endpointNumber('10.0.0.2')!;
    const tcp = PROTOCOL_CODE.TCP;
    const pod = FIELD_IP | FIELD_NAMESPACE | FIELD_POD;
    const forwarded = verdictRank('FORWARDED');
    const absorbs = (time: number, rank: number, src: number, dst: number, sport = 40000) => {
      d.absorbTime[0] = time;
      return d.absorbs(tcp, s, t, sport, 80, rank, src, dst, out);
    };
    expect(absorbs(200, forwarded, pod, FIELD_IP)).toBe(true);
    expect(absorbs(200, forwarded, FIELD_IP, FIELD_IP)).toBe(true);
    // More fields, a stronger verdict, an earlier time, another connection: not absorbed.
    expect(absorbs(200, forwarded, pod | FIELD_LABELS, FIELD_IP)).toBe(false);
    expect(absorbs(200, forwarded, pod, FIELD_IP | FIELD_SERVICE)).toBe(false);
    expect(absorbs(200, verdictRank('DROPPED'), pod, FIELD_IP)).toBe(false);
    expect(absorbs(50, forwarded, pod, FIELD_IP)).toBe(false);
    expect(absorbs(200, forwarded, pod, FIELD_IP, 40001)).toBe(false);
    expect(d.duplicates).toBe(3);
    expect(out).toEqual([]);
  });

  it('passes generic ICMP records through untouched, as every record without an initiator port', () => {
    // Two aggregates of echo requests 10 s apart: 5 and 3 connections, not one connection seen twice.
    const packet = { protocol: 'ICMPv4', port: 8, srcPort: undefined } as const;
    const icmp = { ...packet, input: 'generic' } as const;
    const generic = [flow(0, { ...icmp, count: 5 }), flow(10_000, { ...icmp, count: 3 }), flow(20_000, icmp)];
    const d = new Deduplicator();
    expect(run(d, generic)).toEqual(generic);
    expect(d.duplicates).toBe(0);
    // Hubble's ICMP packets of one exchange are still one connection.
    const hubble = new Deduplicator();
    expect(run(hubble, [flow(0, packet), flow(10_000, { ...packet, verdict: 'DROPPED' })])).toEqual([
      flow(0, { ...packet, verdict: 'DROPPED' }),
    ]);
    expect(hubble.duplicates).toBe(1);
  });

  it("measures the window from a held connection's earliest time, also after a merge lowered it", () => {
    // The observation at 1100 comes after the one at 1500 and lowers the connection's time; at 2150,
    // in the next generation, it is more than a window past 1100 (though not past 1500): a new connection.
    const d = new Deduplicator({ windowMs: 1000 });
    const other = { src: { ip: '10.0.0.3' } };
    const out = run(d, [flow(1500), flow(1100), flow(2050, other), flow(2150)]);
    expect(out).toEqual([flow(1100), flow(2050, other), flow(2150)]);
    expect(d.duplicates).toBe(1);
  });

  it('keeps AUDIT over FORWARDED and unions DNS names', () => {
    const out = run(new Deduplicator(), [
      flow(1, { dst: { ip: '10.0.0.2', names: ['a.example'] } }),
      flow(2, {
        verdict: 'AUDIT',
        dst: { ip: '10.0.0.2', names: ['b.example', 'a.example'] },
        dnsQuery: 'a.example',
      }),
    ]);
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({
      verdict: 'AUDIT',
      dnsQuery: 'a.example',
      dst: { names: ['a.example', 'b.example'] },
    });
  });

  it('a new observation after the window is a new connection', () => {
    const d = new Deduplicator({ windowMs: 1000 });
    const out = run(d, [flow(0), flow(500), flow(2500), flow(2600)]);
    expect(out.map((f) => f.time)).toEqual([0, 2500]);
    expect(d.duplicates).toBe(2);
  });

  it('merges a late observation into the connection emitted before it, when its verdict is not stronger', () => {
    // The connection is dropped at the destination and forwarded at the source; `other`, three windows
    // later, emits its record before the forwarded observation comes.
    const dropped = flow(0, { verdict: 'DROPPED', dropReason: 'POLICY_DENIED' });
    const forwarded = flow(1);
    const other = flow(3500, { srcPort: 40001 });
    const inOrder = new Deduplicator({ windowMs: 1000 });
    const late = new Deduplicator({ windowMs: 1000 });
    const a = run(inOrder, [forwarded, dropped, other]);
    const b = run(late, [dropped, other, forwarded]);
    expect(b.map((f) => [f.srcPort, f.verdict])).toEqual([
      [40000, 'DROPPED'],
      [40001, 'FORWARDED'],
    ]);
    expect(b.map((f) => [f.srcPort, f.verdict])).toEqual(a.map((f) => [f.srcPort, f.verdict]));
    expect([late.duplicates, late.late]).toEqual([1, 0]);
    // A late observation more than a window from the emitted one is another connection.
    const apart = new Deduplicator({ windowMs: 1000 });
    // Held out of time order, it is emitted at the end before the generations held in time.
    // Every connection emitted is remembered: it is not one of them, and not counted as late.
    expect(run(apart, [dropped, other, flow(-1000)]).map((f) => f.time)).toEqual([0, -1000, 3500]);
    expect([apart.duplicates, apart.late]).toEqual([0, 0]);
  });

  it('hands on a late observation with a stronger verdict as replacing the verdict emitted', () => {
    // The record handed on cannot be changed: the drop follows it, marked as replacing its verdict; a
    // later drop of the connection adds nothing more.
    const d = new Deduplicator({ windowMs: 1000 });
    const out = run(d, [
      flow(0),
      flow(3500, { srcPort: 40001 }),
      flow(1, { verdict: 'DROPPED' }),
      flow(2, { verdict: 'DROPPED' }),
      flow(3),
    ]);
    expect(out.map((f) => [f.srcPort, f.verdict, f.replaces])).toEqual([
      [40000, 'FORWARDED', undefined],
      [40000, 'DROPPED', 'FORWARDED'],
      [40001, 'FORWARDED', undefined],
    ]);
    expect([d.duplicates, d.late]).toEqual([3, 0]);
    // With a count on either side, a record cannot stand in for the other: the drop is held on its own.
    const counted = new Deduplicator({ windowMs: 1000 });
    const kept = run(counted, [
      flow(0, { input: 'generic', count: 2 }),
      flow(3500, { srcPort: 40001 }),
      flow(1, { verdict: 'DROPPED', input: 'generic' }),
    ]);
    expect(kept.map((f) => [f.srcPort, f.verdict, f.replaces])).toEqual([
      [40000, 'FORWARDED', undefined],
      [40000, 'DROPPED', undefined],
      [40001, 'FORWARDED', undefined],
    ]);
    expect([counted.duplicates, counted.late]).toEqual([0, 1]);
  });

  it('keeps observations out of time order apart from one another and from those in time, beyond a window', () => {
    // The same key (a client port used again, an ICMP probe) dropped at 0 ms and forwarded at 5000 ms,
    // both read after 10000 ms: two connections, as in time order, not one dropped.
    const k = { srcPort: 40000 };
    const late = (flows: Flow[]) => {
      const d = new Deduplicator({ windowMs: 1000 });
      return run(d, flows).map((f) => [f.time, f.srcPort, f.verdict]);
    };
    const x = flow(10_000, { srcPort: 50000 });
    expect(late([x, flow(0, { ...k, verdict: 'DROPPED' }), flow(5000, k), flow(5001, k)])).toEqual([
      [0, 40000, 'DROPPED'],
      [5000, 40000, 'FORWARDED'],
      [10_000, 50000, 'FORWARDED'],
    ]);
    // Nor does one in time meet one held out of time order.
    expect(late([x, flow(0, { ...k, verdict: 'DROPPED' }), flow(10_001, k)])).toEqual([
      [0, 40000, 'DROPPED'],
      [10_000, 50000, 'FORWARDED'],
      [10_001, 40000, 'FORWARDED'],
    ]);
  });

  it('merges an observation in time into a connection held out of time order less than a window from it', () => {
    // The drop at 1990 ms comes after 3500 ms and is held out of time order; the forwarded observation
    // of the same connection at 2010 ms, in time, is the same connection (20 ms later), as in time order:
    // held as another, it left the connection allowed as well as dropped.
    const byTime = (flows: Flow[]) => {
      const d = new Deduplicator({ windowMs: 1000 });
      return [run(d, flows).map((f) => [f.time, f.srcPort, f.verdict]), d.duplicates, d.late];
    };
    const x = flow(3500, { srcPort: 1 });
    const dropped = flow(1990, { verdict: 'DROPPED' });
    const expected = [
      [
        [1990, 40000, 'DROPPED'],
        [3500, 1, 'FORWARDED'],
      ],
      1,
      0,
    ];
    expect(byTime([dropped, flow(2010), x])).toEqual(expected);
    expect(byTime([x, dropped, flow(2010)])).toEqual(expected);
  });

  it('keeps a connection out of time order apart from an earlier one of its key whose time a merge lowered', () => {
    // Held out of time order at 5900 ms, a connection is merged with 4950 ms; 5960 ms is more than a
    // window past that, another connection, held in the same late generation; 5970 and 5980 ms are
    // of that one (they made a connection each).
    const byTime = (flows: Flow[]) => {
      const d = new Deduplicator({ windowMs: 1000 });
      return [run(d, flows).map((f) => f.time), d.duplicates];
    };
    const x = flow(10_000, { srcPort: 1 });
    const lines = [flow(5900), flow(4950), flow(5960), flow(5970), flow(5980)];
    const inOrder = [flow(4950), flow(5900), flow(5960), flow(5970), flow(5980), x];
    expect(byTime(inOrder)).toEqual([[4950, 5960, 10_000], 3]);
    expect(byTime([x, ...lines])).toEqual([[4950, 5960, 10_000], 3]);
    // A port out of the compact key's range: keyed by text, alike; 4940 ms is of the earlier one.
    const wide = [...lines, flow(4940)].map((f) => ({ ...f, srcPort: 70_000 }));
    expect(byTime([x, ...wide])).toEqual([[4940, 5960, 10_000], 4]);
    // Still so after the endpoint numbers are given afresh (30 aggregates of new addresses, passed on,
    // bring them past four times the connections held and emitted), and once the late generation is emitted to make room: the drop at 5990 ms replaces
    // the verdict of the connection of 5960 ms, the drop at 4960 ms that of the one of 4950 ms.
    const d = new Deduplicator({ windowMs: 1000, maxEntries: 3, maxEndpointKeys: 2 });
    const aggregates = Array.from({ length: 30 }, (_, i) =>
      flow(10_001 + i, { src: { ip: `10.1.0.${i}` }, srcPort: undefined, input: 'generic' }),
    );
    const out = run(d, [
      x,
      ...lines,
      ...aggregates,
      flow(5975),
      flow(10_010, { srcPort: 2 }),
      flow(5990, { verdict: 'DROPPED' }),
      flow(4960, { verdict: 'DROPPED' }),
    ]);
    expect(out.filter((f) => f.input === 'hubble').map((f) => [f.time, f.verdict, f.replaces])).toEqual([
      [4950, 'FORWARDED', undefined],
      [5960, 'FORWARDED', undefined],
      [5960, 'DROPPED', 'FORWARDED'],
      [4950, 'DROPPED', 'FORWARDED'],
      [10_000, 'FORWARDED', undefined],
      [10_010, 'FORWARDED', undefined],
    ]);
    // Numbered afresh twice before the end, and once by flush.
    expect([d.duplicates, d.late, d.evictions, d.numbering]).toEqual([6, 0, 1, 3]);
  });

  it('remembers the emitted connections for late observations within maxEntries only', () => {
    // maxEntries 2: the drop at 0 ms is emitted at 2000 ms, the connection at 2000 ms and the drop at 2001 ms at 4000 ms, which
    // leaves room to remember the last two only.
    const d = new Deduplicator({ windowMs: 1000, maxEntries: 2 });
    const out = run(d, [
      flow(0, { srcPort: 40000, verdict: 'DROPPED' }),
      flow(2000, { srcPort: 50000 }),
      flow(2001, { srcPort: 40001, verdict: 'DROPPED' }),
      flow(4000, { srcPort: 50001 }),
      flow(1, { srcPort: 40000 }),
      flow(2002, { srcPort: 40001 }),
    ]);
    expect(out.filter((f) => f.srcPort! < 50000).map((f) => [f.srcPort, f.verdict])).toEqual([
      [40000, 'DROPPED'],
      [40001, 'DROPPED'],
      [40000, 'FORWARDED'],
    ]);
    expect([d.duplicates, d.late]).toEqual([1, 1]);
  });

  it('holds a connection out of time order in little memory, each in a late generation of its own', () => {
    // 2000 late observations, each of another window: every one is held, in a late generation of its
    // own. Such a generation began with the tables of a busy one (26 kB), 52 MB here, 1.3 GB at the
    // default maxEntries.
    const d = new Deduplicator({ windowMs: 1000 });
    const out: Flow[] = [];
    d.add(flow(10_000_000, { srcPort: 1 }), out);
    const before = process.memoryUsage().arrayBuffers;
    for (let i = 1; i <= 2000; i++) d.add(flow(i * 1000, { srcPort: 2 + i }), out);
    const grown = process.memoryUsage().arrayBuffers - before;
    expect([d.size, out.length, d.late]).toEqual([2001, 0, 0]);
    expect(grown).toBeLessThan(8_000_000);
    expect(run(d, []).map((f) => f.srcPort)).toEqual([...Array.from({ length: 2000 }, (_, i) => 3 + i), 1]);
  });

  it('makes room among thousands of late generations, the oldest first', () => {
    // 90 000 late observations, each of another window, 30 000 held at most: each of the last 60 000
    // emits the oldest late generation. Found by looking at every one held, that took 7 s; with a new
    // generation made to take the place of each (26 kB of garbage), 1.7 s; with the late generations'
    // numbers in a min-heap, 0.4 s on a quiet machine. How long it takes is the benchmark's to say, not a
    // test's: a shared machine under load took 1.7 s for the same code.
    const d = new Deduplicator({ windowMs: 1000, maxEntries: 30_000 });
    const out: Flow[] = [];
    const src = { ip: '10.0.0.1' };
    const at = (i: number): Flow => ({ ...flow(i * 1000, { srcPort: 1 + (i % 60_000) }), src });
    d.add(at(100_000), out);
    for (let i = 1; i <= 90_000; i++) d.add(at(i), out);
    expect([d.size, d.evictions, out.length]).toEqual([30_000, 60_001, 60_001]);
    // The oldest late generation first (the connection in time stays held), in order.
    expect(out.slice(0, 3).map((f) => f.time)).toEqual([1000, 2000, 3000]);
    expect(out.slice(0, -1).every((f, i) => f.time === (i + 1) * 1000)).toBe(true);
    expect(out.at(-1)!.time).toBe(60_001_000);
  });

  it('memory is bounded by maxEntries, early evictions are counted', () => {
    const d = new Deduplicator({ windowMs: 60_000, maxEntries: 100 });
    const out: Flow[] = [];
    let maxSize = 0;
    for (let i = 0; i < 10_000; i++) {
      d.add(flow(i, { srcPort: 1024 + i }), out);
      maxSize = Math.max(maxSize, d.size);
    }
    d.flush(out);
    expect(maxSize).toBeLessThanOrEqual(100);
    expect(out).toHaveLength(10_000);
    expect(d.evictions).toBeGreaterThan(0);
  });

  it('holds at most two windows of connections when time moves on', () => {
    const d = new Deduplicator({ windowMs: 1000, maxEntries: 1_000_000 });
    const out: Flow[] = [];
    let maxSize = 0;
    for (let i = 0; i < 20_000; i++) {
      d.add(flow(i * 10, { srcPort: 1024 + (i % 60000) }), out);
      maxSize = Math.max(maxSize, d.size);
    }
    expect(maxSize).toBeLessThanOrEqual(200);
    expect(d.evictions).toBe(0);
  });

  it('keeps apart thousands of connections of two addresses that differ only in protocol or a port', () => {
    // One pair of addresses: the connections' keys differ only in the numbers for protocol, source
    // port and port, so they share the table's probe chains; each connection is observed twice,
    // the second time with a drop that must reach that connection's record only.
    const protocols = ['TCP', 'UDP', 'SCTP'] as const;
    const input: Flow[] = [];
    for (const protocol of protocols)
      for (let sport = 30000; sport < 30400; sport++)
        for (const port of [80, 443, 8080]) input.push(flow(1, { protocol, srcPort: sport, port }));
    for (const [i, f] of [...input].entries())
      input.push({ ...f, time: 2, ...(i % 7 === 0 ? { verdict: 'DROPPED', dropReason: `R${i}` } : {}) });
    const d = new Deduplicator();
    const out = run(d, input);
    expect(out).toHaveLength(3600);
    expect(d.duplicates).toBe(3600);
    expect(out.map((f) => `${f.protocol} ${f.srcPort} ${f.port}`)).toEqual(
      input.slice(0, 3600).map((f) => `${f.protocol} ${f.srcPort} ${f.port}`),
    );
    expect(out.filter((f) => f.verdict === 'DROPPED').map((f) => f.dropReason)).toEqual(
      input
        .slice(0, 3600)
        .map((_, i) => i)
        .filter((i) => i % 7 === 0)
        .map((i) => `R${i}`),
    );
  });

  it('keeps apart connections that differ only in their source or only in their destination', () => {
    const ip = (i: number) => `10.1.${i >> 8}.${i & 255}`;
    const first: Flow[] = [];
    for (let i = 0; i < 1500; i++)
      first.push(flow(1, { src: { ip: ip(i) } }), flow(1, { dst: { ip: ip(i) } }));
    const again = first.map((f, i) => ({
      ...f,
      time: 2,
      ...(i % 5 === 0 ? { verdict: 'AUDIT' as const } : {}),
    }));
    const d = new Deduplicator();
    const out = run(d, [...first, ...again]);
    expect(out.map((f) => `${f.src.ip} ${f.dst.ip}`)).toEqual(first.map((f) => `${f.src.ip} ${f.dst.ip}`));
    expect(out.map((f, i) => [i, f.verdict]).filter(([, v]) => v === 'AUDIT')).toEqual(
      first.map((_, i) => [i, 'AUDIT']).filter(([i]) => (i as number) % 5 === 0),
    );
  });

  it('passes aggregates through and output is deterministic', () => {
    const input = [flow(5, { srcPort: undefined, count: 2 }), flow(1), flow(2, { srcPort: 40001 }), flow(3)];
    const a = run(new Deduplicator(), input);
    const b = run(new Deduplicator(), input);
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
    expect(a.map((f) => [f.time, f.srcPort])).toEqual([
      [5, undefined],
      [1, 40000],
      [2, 40001],
    ]);
  });

  it('merge keeps the earliest time and the larger count', () => {
    expect(mergeObservation(flow(10, { count: 2 }), flow(5, { count: 7 }))).toMatchObject({
      time: 5,
      count: 7,
    });
  });

  it('gives no new endpoint number when the next add renumbers', () => {
    const d = new Deduplicator({ maxEntries: 1, maxEndpointKeys: 2 });
    expect(d.endpointNumber('10.0.0.1')).toBeUndefined();
    expect(d.endpointNumber('10.0.0.1', true)).toBe(0);
    expect(d.endpointNumber('10.0.0.2', true)).toBe(1);
    expect(d.endpointNumber('10.0.0.1', true)).toBe(0);
    // Two numbers and nothing held: the next add numbers afresh, so no third number is given.
    expect(d.endpointNumber('10.0.0.3', true)).toBeUndefined();
    d.add(flow(0, { src: { ip: '10.0.0.3' }, dst: { ip: '10.0.0.4' } }), []);
    expect(d.endpointNumber('10.0.0.3')).toBe(0);
    expect(d.endpointNumber('10.0.0.1')).toBeUndefined();
  });

  it('rejects nonsense options', () => {
    expect(() => new Deduplicator({ windowMs: 0 })).toThrow('dedup window must be a positive number of ms');
    expect(() => new Deduplicator({ maxEntries: 0 })).toThrow('dedup maxEntries must be at least 1');
  });
});
