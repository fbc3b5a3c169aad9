import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { BlockList, isIPv6 } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { isLoopbackIP } from '../../src/flows/common.ts';
import { Deduplicator } from '../../src/flows/dedup.ts';
import { parseHubbleLine } from '../../src/flows/hubble-scan.ts';
import { resetWasmScanner, scanHubbleBlock } from '../../src/flows/hubble-wasm.ts';
import type { HubbleResult } from '../../src/flows/hubble.ts';
import { parseHubbleLineSlow } from '../../src/flows/hubble.ts';
import { parseGadgetEvent } from '../../src/flows/inspektor-gadget.ts';
import type { Flow } from '../../src/flows/types.ts';
import { formatIngestStats, readFlows } from '../../src/flows/reader.ts';
import { parseGenericRecord } from '../../src/telemetry/push.ts';

// Traffic over the loopback interface never leaves its pod, and NetworkPolicy cannot affect it: every
// format skips a connection with a loopback address at either end (`skipped.loopback`), instead of
// making it an edge from a workload to itself or to an ipBlock ::1/128.

const dir = mkdtempSync(join(tmpdir(), 'microseg-loopback-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function tmp(name: string, lines: string[]): string {
  const p = join(dir, name);
  writeFileSync(p, lines.join('\n') + '\n');
  return p;
}

/** Node's own view of loopback: 127.0.0.0/8, ::1, and IPv4-mapped 127/8 (BlockList maps those). */
const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');

describe('isLoopbackIP', () => {
  it('knows 127/8, ::1 and IPv4-mapped 127/8 in any text form, and nothing else', () => {
    for (const ip of [
      '127.0.0.1',
      '127.255.255.254',
      '127.0.0.53',
      '::1',
      '0::1',
      '0:0:0:0:0:0:0:1',
      '0000:0000:0000:0000:0000:0000:0000:0001',
      '::ffff:127.0.0.1',
      '::FFFF:127.1.2.3',
      '::ffff:7f00:1',
      '0:0:0:0:0:ffff:127.0.0.1',
    ])
      expect([ip, isLoopbackIP(ip)]).toEqual([ip, true]);
    for (const ip of [
      '10.0.0.1',
      '12.7.0.1',
      '128.0.0.1',
      '0.0.0.0',
      '1.27.0.1',
      '::',
      '::2',
      '::1:1',
      '1::1',
      '::127.0.0.1',
      '::ffff:128.0.0.1',
      '::ffff:10.0.0.1',
      '::fffe:127.0.0.1',
      'fd00::1',
      '127::1',
    ])
      expect([ip, isLoopbackIP(ip)]).toEqual([ip, false]);
  });

  it('agrees with node:net BlockList on every text form of addresses near loopback (fast-check)', () => {
    const group = fc.oneof(
      { arbitrary: fc.constant(0), weight: 6 },
      fc.constantFrom(1, 0xffff, 0x7f00, 0x7fff, 0x7eff, 0x8000, 0xfffe),
      fc.integer({ min: 0, max: 0xffff }),
    );
    // ::1, an IPv4-mapped address of 127/8 or random groups, sometimes with one group changed.
    const near = fc
      .tuple(
        fc.oneof(
          fc.constant([0, 0, 0, 0, 0, 0, 0, 1]),
          fc
            .tuple(fc.integer({ min: 0x7e00, max: 0x80ff }), fc.nat(0xffff))
            .map(([a, b]) => [0, 0, 0, 0, 0, 0xffff, a, b]),
          fc.array(group, { minLength: 8, maxLength: 8 }),
        ),
        fc.option(fc.tuple(fc.nat(7), group), { nil: undefined }),
      )
      .map(([g, change]) => {
        const out = [...g];
        if (change) out[change[0]] = change[1];
        return out;
      });
    const text = fc
      .record({
        groups: near,
        zeroRun: fc.nat(8),
        quad: fc.boolean(),
        upper: fc.boolean(),
        pad: fc.boolean(),
      })
      .map(({ groups, zeroRun, quad, upper, pad }) => {
        const hex = groups.map((g) => g.toString(16).padStart(pad ? 4 : 1, '0'));
        let tail: string[] = [];
        if (quad) {
          const [a, b] = [groups[6]!, groups[7]!];
          tail = [`${a >> 8}.${a & 255}.${b >> 8}.${b & 255}`];
          hex.splice(6, 2);
        }
        // Compress the run of zero groups starting at zeroRun, if there is one.
        let end = zeroRun;
        while (end < hex.length && groups[end] === 0) end++;
        const parts =
          end > zeroRun
            ? [hex.slice(0, zeroRun).join(':') + '::' + [...hex.slice(end), ...tail].join(':')]
            : [[...hex, ...tail].join(':')];
        const s = parts[0]!;
        return upper ? s.toUpperCase() : s;
      })
      .filter((s) => isIPv6(s));
    const v4 = fc
      .tuple(fc.constantFrom(127, 126, 128, 10, 1, 0, 255), fc.nat(255), fc.nat(255), fc.nat(255))
      .map((o) => o.join('.'));
    const seen = { v4: 0, v6: 0 };
    fc.assert(
      fc.property(fc.oneof(text, v4), (ip) => {
        const want = loopback.check(ip, ip.includes(':') ? 'ipv6' : 'ipv4');
        expect(isLoopbackIP(ip)).toBe(want);
        if (want) seen[ip.includes(':') ? 'v6' : 'v4']++;
      }),
      { numRuns: 5000 },
    );
    // Not vacuous: loopback addresses of both families came up, in many forms.
    expect(seen.v4).toBeGreaterThan(100);
    expect(seen.v6).toBeGreaterThan(50);
  });
});

describe('Inspektor Gadget', () => {
  const event = (type: string, src: string, dst: string, sport: number, dport: number) => ({
    type,
    timestamp: '2026-03-02T10:00:00.123456789Z',
    k8s: { namespace: 'shop', podName: 'cart-1', containerName: 'cart' },
    src: { addr: src, port: sport, proto: 'TCP' },
    dst: { addr: dst, port: dport, proto: 'TCP' },
  });

  it('skips connect and accept events over the loopback interface', () => {
    expect(parseGadgetEvent(event('connect', '127.0.0.1', '127.0.0.1', 41000, 15000))).toEqual({
      skip: 'loopback',
    });
    expect(parseGadgetEvent(event('accept', '127.0.0.1', '127.0.0.1', 15000, 41000))).toEqual({
      skip: 'loopback',
    });
    expect(parseGadgetEvent(event('connect', '::1', '::1', 41001, 8080))).toEqual({ skip: 'loopback' });
    expect(parseGadgetEvent(event('connect', '::ffff:127.0.0.1', '::ffff:127.0.0.1', 1, 2))).toEqual({
      skip: 'loopback',
    });
    // A bound pod address talking to 127.0.0.1 still stays in the pod.
    expect(parseGadgetEvent(event('connect', '10.244.0.5', '127.0.0.1', 41002, 8080))).toEqual({
      skip: 'loopback',
    });
    // A bad line stays a bad line.
    const { timestamp: _, ...untimed } = event('connect', '127.0.0.1', '127.0.0.1', 41000, 15000);
    expect(parseGadgetEvent(untimed)).toMatchObject({ reason: 'missing-field' });
    expect(parseGadgetEvent(event('connect', '10.244.0.5', '10.244.0.9', 41002, 6379))).toMatchObject({
      src: { ip: '10.244.0.5', namespace: 'shop', pod: 'cart-1' },
      dst: { ip: '10.244.0.9' },
      port: 6379,
    });
  });

  it('the reader counts them as skipped, and the pod reaches no rule for itself', async () => {
    const r = readFlows([
      tmp('ig.jsonl', [
        JSON.stringify(event('connect', '127.0.0.1', '127.0.0.1', 41000, 15000)),
        JSON.stringify(event('accept', '127.0.0.1', '127.0.0.1', 15000, 41000)),
        JSON.stringify(event('connect', '::1', '::1', 41001, 8080)),
        JSON.stringify(event('connect', '10.244.0.5', '10.244.0.9', 41002, 6379)),
      ]),
    ]);
    const flows = await r.toArray();
    expect(flows.map((f) => `${f.src.ip}->${f.dst.ip}:${f.port}`)).toEqual(['10.244.0.5->10.244.0.9:6379']);
    expect(r.stats.skipped).toEqual({ loopback: 3 });
    expect(r.stats.observations).toBe(1);
    expect(formatIngestStats(r.stats)).toContain('skipped: loopback 3');
  });
});

describe('generic records', () => {
  const rec = (src: unknown, dst: unknown, extra: object = {}) =>
    JSON.stringify({ time: '2026-03-02T10:00:00.123456789Z', src, dst, port: 8080, ...extra });

  it('the reader skips those with a loopback address at either end', async () => {
    const r = readFlows([
      tmp('generic.jsonl', [
        rec('shop/cart-1', '127.0.0.1'),
        rec({ ip: '::1', namespace: 'shop', pod: 'cart-1' }, { ip: '::1' }),
        rec('127.0.0.1', 'shop/cart-1'),
        rec('shop/cart-1', '10.244.0.9', { count: 2 }),
        rec('shop/cart-1', { ip: '::ffff:127.0.0.1' }),
      ]),
    ]);
    const flows = await r.toArray();
    expect(flows.map((f) => [f.dst.ip, f.count])).toEqual([['10.244.0.9', 2]]);
    expect(r.stats.skipped).toEqual({ loopback: 4 });
    expect(r.stats.badLines).toBe(0);
  });

  it('the push endpoint skips them too, and still rejects bad ones', () => {
    expect(parseGenericRecord(JSON.parse(rec('shop/cart-1', '127.0.0.1')))).toEqual({
      kind: 'skip',
      reason: 'loopback',
    });
    expect(parseGenericRecord(JSON.parse(rec('shop/cart-1', '10.0.0.1')))).toMatchObject({ kind: 'flow' });
    expect(parseGenericRecord(JSON.parse(rec('shop/cart-1', '127.0.0.1', { prot: 1 })))).toMatchObject({
      kind: 'bad',
    });
  });
});

describe('Kubescape neighbours', () => {
  it('an IP neighbour on a loopback address is skipped', async () => {
    const nn = {
      apiVersion: 'spdx.softwarecomposition.kubescape.io/v1beta1',
      kind: 'NetworkNeighborhood',
      metadata: {
        name: 'deployment-cart',
        namespace: 'shop',
        creationTimestamp: '2026-03-02T10:00:00.123456789Z',
        labels: { 'kubescape.io/workload-kind': 'Deployment', 'kubescape.io/workload-name': 'cart' },
      },
      spec: {
        matchLabels: { app: 'cart' },
        containers: [
          {
            name: 'cart',
            ingress: [],
            egress: [
              {
                identifier: 'a',
                type: 'external',
                ipAddress: '127.0.0.1',
                ports: [{ name: 'TCP-8080', protocol: 'TCP', port: 8080 }],
              },
              {
                identifier: 'b',
                type: 'external',
                ipAddress: '10.0.0.9',
                ports: [{ name: 'TCP-6379', protocol: 'TCP', port: 6379 }],
              },
            ],
          },
        ],
      },
    };
    const r = readFlows([tmp('nn.json', [JSON.stringify(nn, null, 2)])]);
    const flows = await r.toArray();
    expect(r.stats.sources.map((s) => s.format)).toEqual(['kubescape']);
    expect(flows.map((f) => `${f.dst.ip}:${f.port}`)).toEqual(['10.0.0.9:6379']);
    expect(r.stats.skipped).toEqual({ loopback: 1 });
  });
});

describe('Hubble', () => {
  const line = (
    src: string,
    dst: string,
    sport: number,
    dport: number,
    t = '2026-03-02T10:00:00.123456789Z',
  ) =>
    `{"flow":{"time":"${t}","verdict":"FORWARDED","IP":{"source":"${src}","destination":"${dst}"},` +
    `"l4":{"TCP":{"source_port":${sport},"destination_port":${dport},"flags":{"SYN":true}}},` +
    `"source":{"identity":1234},"destination":{"identity":1234},"Type":"L3_L4"}}`;

  it('skips a loopback flow on every path (not normally seen, but one kind of input is not trusted more)', () => {
    const skip: HubbleResult = { kind: 'skip', reason: 'loopback' };
    for (const l of [line('127.0.0.1', '127.0.0.1', 41000, 8080), line('::1', '::1', 41000, 8080)]) {
      expect(parseHubbleLineSlow(l)).toEqual(skip);
      expect(parseHubbleLine(l)).toEqual(skip);
      const block = Buffer.from(l + '\n');
      const results: (HubbleResult | undefined)[] = [];
      scanHubbleBlock(block, 0, block.length, (r) => results.push(r));
      expect(results).toEqual([skip]);
    }
    expect(parseHubbleLine(line('10.0.0.1', '10.0.0.2', 41000, 8080))).toMatchObject({ kind: 'flow' });
  });

  it('the reader counts them; on the byte path they do not move the de-duplication window', async () => {
    const lines = [
      line('10.0.0.1', '10.0.0.2', 41000, 8080, '2026-03-02T10:00:00.123456789Z'),
      line('10.0.0.1', '10.0.0.2', 41000, 8080, '2026-03-02T10:00:01.123456789Z'),
      line('127.0.0.1', '127.0.0.1', 41000, 8080, '2026-03-02T10:01:00.123456789Z'),
      line('127.0.0.1', '127.0.0.1', 41000, 8080, '2026-03-02T10:01:00.123456789Z'),
      line('10.0.0.1', '10.0.0.2', 41000, 8080, '2026-03-02T10:00:02.123456789Z'),
    ];
    const r = readFlows([tmp('hubble.jsonl', lines)]);
    expect(await r.toArray()).toHaveLength(1);
    expect(r.stats.skipped).toEqual({ loopback: 2 });
    expect(r.stats.duplicates).toBe(2);
    // Repeated observations are counted without a Flow (DuplicateSink): a loopback line, a minute later,
    // must not end the held connection's window there, so the last line is still a duplicate.
    resetWasmScanner();
    const dedup = new Deduplicator();
    const out: Flow[] = [];
    const results: string[] = [];
    let fast = 0;
    const block = Buffer.from(lines.join('\n') + '\n');
    scanHubbleBlock(
      block,
      0,
      block.length,
      (res) => {
        results.push(res?.kind ?? 'slow');
        if (res?.kind === 'flow') dedup.add(res.flow, out);
      },
      { dedup, out, duplicate: () => fast++ },
    );
    dedup.flush(out);
    expect(results).toEqual(['flow', 'skip', 'skip']);
    expect(fast).toBe(2);
    expect(out).toHaveLength(1);
  });
});
