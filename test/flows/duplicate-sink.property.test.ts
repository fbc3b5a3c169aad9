import fc from 'fast-check';
import { beforeEach, describe, expect, it } from 'vitest';
import type { DedupOptions } from '../../src/flows/dedup.ts';
import { Deduplicator } from '../../src/flows/dedup.ts';
import type { DirectionRule } from '../../src/flows/direction.ts';
import type { DuplicateSink } from '../../src/flows/hubble-wasm.ts';
import { resetWasmScanner, scanHubbleBlock } from '../../src/flows/hubble-wasm.ts';
import { parseHubbleLineSlow } from '../../src/flows/hubble.ts';
import type { Flow } from '../../src/flows/types.ts';

// The byte scanner can count an observation that adds nothing to a connection the de-duplicator holds
// without building its Flow (a DuplicateSink). The flows that come out, their order, the duplicate
// count and the direction statistics must be exactly those of normalising every line and handing
// each flow to the same de-duplicator.

const CONNECTIONS = [
  { src: '10.0.0.1', dst: '10.0.0.2', sport: 40000, dport: 8080, proto: 'TCP' },
  { src: '10.0.0.1', dst: '10.0.0.3', sport: 40001, dport: 53, proto: 'UDP' },
  { src: 'fd00::1', dst: 'fd00::2', sport: 50000, dport: 443, proto: 'TCP' },
  { src: '10.0.0.4', dst: '8.8.8.8', sport: 33333, dport: 443, proto: 'TCP' },
  { src: '10.0.0.5', dst: '10.0.0.2', sport: 41000, dport: 9000, proto: 'SCTP' },
  { src: '10.0.0.5', dst: '10.0.0.6', sport: 0, dport: 8, proto: 'ICMPv4' },
  { src: '10.0.0.7', dst: '10.0.0.2', sport: 0, dport: 8080, proto: 'TCP' },
  // The first connection with its roles swapped: same ports, so endpoint numbers given afresh must
  // never let one be taken for the other.
  { src: '10.0.0.2', dst: '10.0.0.1', sport: 40000, dport: 8080, proto: 'TCP' },
  // Loopback connections are skipped: their lines must not move the de-duplicator's generations.
  { src: '127.0.0.1', dst: '127.0.0.1', sport: 41000, dport: 15000, proto: 'TCP' },
  { src: '::1', dst: '::1', sport: 41001, dport: 8080, proto: 'TCP' },
  { src: '10.0.0.1', dst: '127.0.0.53', sport: 41002, dport: 53, proto: 'UDP' },
];

/** Endpoint objects by address: richer and poorer views of the same peer, and odd ones. */
const ENDPOINTS: Record<string, string[]> = {
  any: [
    '{}',
    '{"identity":2,"labels":["reserved:world"]}',
    '{"identity":4,"labels":["reserved:health"]}',
    '{"identity":1234}',
    '{"identity":1234,"labels":["k8s:app=x"]}',
  ],
  pod: [
    '{"ID":12,"identity":5001,"namespace":"shop","labels":["k8s:app=cart","k8s:io.kubernetes.pod.namespace=shop"],"pod_name":"cart-1","workloads":[{"name":"cart","kind":"Deployment"}]}',
    '{"identity":5001,"namespace":"shop","labels":["k8s:app=cart"],"pod_name":"cart-1"}',
    '{"identity":5001,"namespace":"shop","pod_name":"cart-1"}',
    '{"identity":5001,"labels":["k8s:app=cart"]}',
  ],
};

/** Mostly `usual`, sometimes one of `odd`. */
function mostly<T>(usual: T, ...odd: T[]): fc.Arbitrary<T> {
  return fc.oneof({ arbitrary: fc.constant(usual), weight: 4 * odd.length }, fc.constantFrom(...odd));
}

const observation = fc.record({
  conn: fc.nat(CONNECTIONS.length - 1),
  reply: fc.boolean(),
  evidence: mostly('is_reply', 'trace', 'flags', 'none', 'reply-flag'),
  verdict: mostly('"FORWARDED"', '"DROPPED"', '"AUDIT"', '2', '"TRACED"', '"BOGUS"', '99'),
  drop: mostly(
    undefined,
    '"POLICY_DENIED"',
    '"DROP_REASON_UNKNOWN"',
    '""',
    '133',
    '0',
    '7',
    '"NOPE"',
    '9999',
  ),
  srcEp: fc.oneof({ arbitrary: fc.nat(1), weight: 3 }, fc.nat(9)),
  dstEp: fc.oneof({ arbitrary: fc.nat(1), weight: 3 }, fc.nat(9)),
  srcNames: mostly(undefined, '["api.example.com."]', '[]'),
  dstSvc: mostly(undefined, '{"name":"cart","namespace":"shop"}', '{"name":""}'),
  dns: mostly(undefined, 'example.com.', ''),
  dt: fc.oneof(
    { arbitrary: fc.integer({ min: 0, max: 50 }), weight: 4 },
    fc.integer({ min: -3_000, max: 20_000 }),
  ),
  time: mostly('z', 'offset', 'seconds'),
});

type Observation = typeof observation extends fc.Arbitrary<infer T> ? T : never;

function endpointText(ip: string, n: number): string | undefined {
  const pool =
    ip.startsWith('10.0.0.') || ip.startsWith('fd00')
      ? [...ENDPOINTS.pod!, ...ENDPOINTS.any!]
      : ENDPOINTS.any!;
  return n < pool.length ? pool[n] : undefined;
}

function iso(ms: number, shape: string): string {
  const z = new Date(ms).toISOString();
  if (shape === 'offset') return z.replace('Z', '+00:00');
  if (shape === 'seconds') return z.replace(/\.\d+Z$/, 'Z');
  return z.replace('Z', '123456Z').replace(/(\.\d{3})123456Z$/, '$1123456Z');
}

function render(o: Observation, t: number): string {
  const c = CONNECTIONS[o.conn]!;
  const [sip, dip] = o.reply ? [c.dst, c.src] : [c.src, c.dst];
  const [sp, dp] = o.reply ? [c.dport, c.sport] : [c.sport, c.dport];
  const parts: string[] = [`"time":"${iso(t, o.time)}"`, `"verdict":${o.verdict}`];
  if (o.drop !== undefined) parts.push(`"drop_reason_desc":${o.drop}`);
  parts.push(
    `"IP":{"source":"${sip}","destination":"${dip}","ipVersion":"${sip.includes(':') ? 'IPv6' : 'IPv4'}"}`,
  );
  if (c.proto === 'ICMPv4') parts.push(`"l4":{"ICMPv4":{"type":${o.reply ? 0 : 8}}}`);
  else {
    const flags =
      o.evidence === 'flags'
        ? `,"flags":{${o.reply ? '"SYN":true,"ACK":true' : '"SYN":true'}}`
        : ',"flags":{"ACK":true}';
    const ports = (sp > 0 ? `"source_port":${sp},` : '') + `"destination_port":${dp}`;
    parts.push(`"l4":{"${c.proto}":{${ports}${c.proto === 'TCP' ? flags : ''}}}`);
  }
  const s = endpointText(sip, o.srcEp);
  const d = endpointText(dip, o.dstEp);
  if (s !== undefined) parts.push(`"source":${s}`);
  if (d !== undefined) parts.push(`"destination":${d}`);
  parts.push('"Type":"L3_L4"', '"node_name":"n1"');
  if (o.srcNames !== undefined) parts.push(`"source_names":${o.srcNames}`);
  if (o.evidence === 'trace') parts.push(`"trace_reason":"${o.reply ? 'REPLY' : 'NEW'}"`);
  if (o.evidence === 'is_reply') parts.push(`"is_reply":${o.reply}`);
  if (o.evidence === 'reply-flag') parts.push(`"reply":${o.reply}`);
  if (o.dstSvc !== undefined) parts.push(`"destination_service":${o.dstSvc}`);
  if (o.dns !== undefined) parts.push(`"l7":{"type":"REQUEST","dns":{"query":"${o.dns}"}}`);
  return `{"flow":{${parts.join(',')}},"node_name":"n1","time":"${iso(t, 'z')}"}`;
}

interface Run {
  flows: Flow[];
  duplicates: number;
  fast: number;
  rules: Partial<Record<DirectionRule, number>>;
  flipped: number;
  observations: number;
}

/**
 * Records from another input of the same run (a generic flows file read first), some of them
 * aggregates, with their keys in another order than Hubble records: merging into them always builds a
 * copy (keys in the merge's order), never keeps them as they are.
 */
function priorFlows(prior: { conn: number; count: number | undefined }[], t: number): Flow[] {
  return prior.map(({ conn, count }) => {
    const c = CONNECTIONS[conn]!;
    const f = { input: 'generic' } as Flow;
    if (count !== undefined) f.count = count;
    Object.assign(f, { verdict: 'FORWARDED', time: t, src: { ip: c.src }, dst: { ip: c.dst } });
    Object.assign(f, { protocol: c.proto, port: c.dport });
    if (c.sport > 0) f.srcPort = c.sport;
    return f;
  });
}

function run(blocks: Buffer[], opts: DedupOptions, prior: Flow[], withSink: boolean): Run {
  resetWasmScanner();
  const dedup = new Deduplicator(opts);
  const out: Flow[] = [];
  for (const f of prior) dedup.add(f, out);
  const r: Run = { flows: out, duplicates: 0, fast: 0, rules: {}, flipped: 0, observations: 0 };
  const count = (rule: DirectionRule, flipped: boolean) => {
    r.rules[rule] = (r.rules[rule] ?? 0) + 1;
    if (flipped) r.flipped++;
    r.observations++;
  };
  const sink: DuplicateSink = {
    dedup,
    out,
    duplicate(rule, flipped) {
      r.fast++;
      count(rule, flipped);
    },
  };
  for (const block of blocks)
    scanHubbleBlock(
      block,
      0,
      block.length,
      (result, start, end) => {
        const res = result ?? parseHubbleLineSlow(block.toString('utf8', start, end));
        if (res.kind !== 'flow') return;
        count(res.rule, res.flipped);
        dedup.add(res.flow, out);
      },
      withSink ? sink : undefined,
    );
  dedup.flush(out);
  r.duplicates = dedup.duplicates;
  return r;
}

beforeEach(() => resetWasmScanner());

describe('duplicate observations counted without a Flow (fast-check)', () => {
  it('gives the flows, order, counts and direction statistics of normalising every line', () => {
    let fast = 0;
    let duplicates = 0;
    fc.assert(
      fc.property(
        fc.array(observation, { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 1, max: 40 }),
        fc.record({
          windowMs: fc.constantFrom(1_000, 5_000, 30_000, 600_000),
          maxEntries: fc.integer({ min: 1, max: 20 }),
          maxEndpointKeys: fc.integer({ min: 1, max: 8 }),
        }),
        fc.array(fc.record({ conn: fc.nat(CONNECTIONS.length - 1), count: mostly(undefined, 3) }), {
          maxLength: 3,
        }),
        (obs, perBlock, opts, priorSpec) => {
          let t = Date.UTC(2026, 10, 29, 10, 59, 50);
          const prior = priorFlows(priorSpec, t - 1);
          const lines = obs.map((o) => render(o, (t = Math.max(0, t + o.dt))));
          const blocks: Buffer[] = [];
          for (let i = 0; i < lines.length; i += perBlock)
            blocks.push(Buffer.from(lines.slice(i, i + perBlock).join('\n') + '\n'));
          const plain = run(blocks, opts, prior, false);
          const sunk = run(blocks, opts, prior, true);
          expect(sunk.flows).toEqual(plain.flows);
          expect(JSON.stringify(sunk.flows)).toBe(JSON.stringify(plain.flows));
          expect(sunk.duplicates).toBe(plain.duplicates);
          expect(sunk.rules).toEqual(plain.rules);
          expect(sunk.flipped).toBe(plain.flipped);
          expect(sunk.observations).toBe(plain.observations);
          fast += sunk.fast;
          duplicates += plain.duplicates;
        },
      ),
      { numRuns: 2000 },
    );
    // Not vacuous: many duplicates took the sink, and not all of them (the rest merge something).
    expect(fast).toBeGreaterThan(duplicates * 0.1);
    expect(fast).toBeLessThan(duplicates);
  });

  it('a late observation merges into its emitted connection whenever endpoint numbers were given afresh', () => {
    // Found by the property above: renumbering let the emitted connections' keys go, and the two paths
    // renumber at different lines (the duplicate check hands fewer flows to add), so the second late
    // observation of 10.0.0.1:40000 was merged on one path and a second connection on the other.
    const base = {
      reply: false,
      evidence: 'is_reply',
      verdict: '"FORWARDED"',
      srcEp: 0,
      dstEp: 0,
      time: 'z',
    };
    const obs = [
      { ...base, conn: 2, dt: 0 },
      { ...base, conn: 0, dns: 'example.com.', dt: -1001 },
      { ...base, conn: 1, dstSvc: '{"name":"cart","namespace":"shop"}', dt: 0 },
      { ...base, conn: 0, dns: 'example.com.', dt: 0 },
    ] as unknown as Observation[];
    let t = Date.UTC(2026, 10, 29, 10, 59, 50);
    const lines = obs.map((o) => render(o, (t = Math.max(0, t + o.dt))));
    const blocks = [Buffer.from(lines.join('\n') + '\n')];
    for (const maxEndpointKeys of [5, 100]) {
      const opts = { windowMs: 1000, maxEntries: 1, maxEndpointKeys };
      const plain = run(blocks, opts, [], false);
      const sunk = run(blocks, opts, [], true);
      expect(plain.flows.map((f) => [f.srcPort, f.dnsQuery])).toEqual([
        [50000, undefined],
        [40000, 'example.com'],
        [40001, undefined],
      ]);
      expect(plain.duplicates).toBe(1);
      expect(JSON.stringify(sunk.flows)).toBe(JSON.stringify(plain.flows));
    }
  });

  it('a line whose responder port is 0 (a bad line) moves no generation on either path', () => {
    // Found by the property above: the line from 10.0.0.2:8080 to 10.0.0.7 port 0, which normalisation
    // rejects, had the duplicate check emit the generations its time leaves behind first.
    const base = { verdict: '"FORWARDED"', srcEp: 0, dstEp: 0, dt: 0, time: 'z' };
    const obs = [
      { ...base, conn: 6, reply: true, evidence: 'none', dt: 1000 },
      { ...base, conn: 6, reply: false, evidence: 'is_reply' },
      { ...base, conn: 0, reply: false, evidence: 'is_reply', drop: '"POLICY_DENIED"', time: 'offset' },
    ] as unknown as Observation[];
    let t = Date.UTC(2026, 10, 29, 10, 59, 50);
    const prior = priorFlows([{ conn: 0, count: undefined }], t - 1);
    const lines = obs.map((o) => render(o, (t = Math.max(0, t + o.dt))));
    expect(parseHubbleLineSlow(lines[0]!).kind).toBe('bad');
    const blocks = [Buffer.from(lines.join('\n') + '\n')];
    const opts = { windowMs: 1000, maxEntries: 1, maxEndpointKeys: 1 };
    const plain = run(blocks, opts, prior, false);
    const sunk = run(blocks, opts, prior, true);
    expect(sunk.flows.map((f) => f.input)).toEqual(['hubble', 'generic', 'hubble']);
    expect(JSON.stringify(sunk.flows)).toBe(JSON.stringify(plain.flows));
  });
});
