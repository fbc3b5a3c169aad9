import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseHubbleLine, scanHubbleLine } from '../../src/flows/hubble-scan.ts';
import { ciliumLabelAt, scanHubbleBlock } from '../../src/flows/hubble-wasm.ts';
import type { HubbleResult } from '../../src/flows/hubble.ts';
import {
  addCiliumLabel,
  emptyEndpointFields,
  normalizeHubbleFlow,
  normalizeHubbleRecord,
  parseHubbleLineSlow,
} from '../../src/flows/hubble.ts';
import type { Flow } from '../../src/flows/types.ts';

const SAMPLE = new URL('../../../shared/samples/hubble-flows.jsonl', import.meta.url);
const lines = readFileSync(SAMPLE, 'utf8')
  .split('\n')
  .filter((l) => l.trim() !== '');

function flowOf(r: HubbleResult): Flow {
  if (r.kind !== 'flow') throw new Error(`expected a flow, got ${JSON.stringify(r)}`);
  return r.flow;
}

function line(n: number): string {
  return lines[n - 1]!;
}

const BOOKINFO_PRODUCTPAGE = [
  'app=productpage',
  'sidecar.opentelemetry.io/injected=bookinfo.otelcol-bookinfo',
  'version=v1',
];

describe('Hubble sample lines', () => {
  it('has the 11 documented lines, all handled by the fast scanner', () => {
    expect(lines).toHaveLength(11);
    for (const l of lines) expect(scanHubbleLine(l)).toBeDefined();
  });

  it('line 1: egress TO_PROXY observation of productpage -> reviews:9080, labels cleaned', () => {
    const r = parseHubbleLine(line(1));
    expect(r).toMatchObject({ kind: 'flow', flipped: false, rule: 'is_reply' });
    expect(flowOf(r)).toEqual({
      time: Date.parse('2021-11-10T10:40:56.465Z'),
      src: {
        ip: '10.244.0.177',
        namespace: 'bookinfo',
        pod: 'productpage-v1-6b746f74dc-9rcxx',
        labels: BOOKINFO_PRODUCTPAGE,
      },
      dst: {
        ip: '10.244.0.110',
        namespace: 'bookinfo',
        pod: 'reviews-v2-7bf8c9648f-r7bs2',
        labels: ['app=reviews', 'sidecar.opentelemetry.io/injected=bookinfo.otelcol-bookinfo', 'version=v2'],
      },
      protocol: 'TCP',
      port: 9080,
      srcPort: 35128,
      verdict: 'FORWARDED',
      input: 'hubble',
    });
  });

  it('line 2: a source without pod name keeps its IP and labels, its namespace from its labels', () => {
    // No `namespace` field, but the label k8s:io.kubernetes.pod.namespace=bookinfo: the slow path
    // (the scanner's fallback) and the scanner agree on it.
    const f = flowOf(parseHubbleLine(line(2)));
    expect(f.src).toEqual({ ip: '10.244.0.148', namespace: 'bookinfo', labels: BOOKINFO_PRODUCTPAGE });
    expect(flowOf(parseHubbleLineSlow(line(2))).src).toEqual(f.src);
    // And the WebAssembly scanner's (its label arrays decoded in JavaScript), on the line's bytes.
    const bytes = Buffer.from(line(2) + '\n');
    const fast: (HubbleResult | undefined)[] = [];
    scanHubbleBlock(bytes, 0, bytes.length, (r) => fast.push(r));
    expect(fast).toHaveLength(1);
    expect(flowOf(fast[0]!).src).toEqual(f.src);
    expect(f.dst.pod).toBe('reviews-v2-7bf8c9648f-r7bs2');
    expect([f.port, f.srcPort]).toEqual([9080, 46690]);
  });

  it('line 3: the reply reviews -> productpage is flipped to productpage -> reviews:9080', () => {
    const r = parseHubbleLine(line(3));
    expect(r).toMatchObject({ kind: 'flow', flipped: true, rule: 'is_reply' });
    const f = flowOf(r);
    expect(f.src.pod).toBe('productpage-v1-6b746f74dc-9rcxx');
    expect(f.dst.pod).toBe('reviews-v2-7bf8c9648f-r7bs2');
    expect([f.port, f.srcPort]).toEqual([9080, 35128]);
  });

  it('line 4: overlay flow without traffic_direction to reserved:health is dropped as health', () => {
    expect(parseHubbleLine(line(4))).toEqual({ kind: 'skip', reason: 'health' });
  });

  it('line 5: policy-verdict event keeps its REDIRECTED verdict', () => {
    const f = flowOf(parseHubbleLine(line(5)));
    expect(f).toMatchObject({ verdict: 'REDIRECTED', port: 9080, srcPort: 59736, protocol: 'TCP' });
    expect(f.src.pod).toBe('ratings-v1-b6994bb9-jgqxb');
  });

  it('line 6: legacy reply from a world peer is flipped: pod -> world:443', () => {
    const r = parseHubbleLine(line(6));
    expect(r).toMatchObject({ kind: 'flow', flipped: true, rule: 'reply' });
    const f = flowOf(r);
    expect(f.src).toEqual({
      ip: '10.0.2.13',
      namespace: 'kube-system',
      pod: 'event-exporter-gke-67986489c8-svnrf',
      labels: ['k8s-app=event-exporter', 'version=v0.3.4'],
    });
    expect(f.dst).toEqual({ ip: '35.246.31.234', reserved: 'world' });
    expect([f.port, f.srcPort]).toEqual([443, 36804]);
  });

  it('lines 7-8: DNS request and response give the same pod -> DNS server:53 flow with the query', () => {
    const req = flowOf(parseHubbleLine(line(7)));
    const resp = parseHubbleLine(line(8));
    expect(resp).toMatchObject({ flipped: true });
    for (const f of [req, flowOf(resp)]) {
      expect(f.src.pod).toBe('node-local-dns-88zrp');
      expect(f.dst.pod).toBe('kube-dns-b4f5c58c7-vnx5s');
      expect(f.port).toBe(53);
      expect(f.dnsQuery).toBe('istiod-istio-1611.istio-system.svc.istio-system.svc.cluster.local');
    }
  });

  it('line 9: host -> health ICMP echo is dropped as health', () => {
    expect(parseHubbleLine(line(9))).toEqual({ kind: 'skip', reason: 'health' });
  });

  it('line 10: IPv6 ICMPv6 router solicitation dropped with its reason, port = ICMP type', () => {
    const r = parseHubbleLine(line(10));
    expect(r).toMatchObject({ rule: 'observed', flipped: false });
    expect(flowOf(r)).toEqual({
      time: Date.parse('2023-08-21T12:12:13.517Z'),
      src: { ip: 'fe80::64d8:8aff:fe72:fc14' },
      dst: { ip: 'ff02::2' },
      protocol: 'ICMPv6',
      port: 133,
      verdict: 'DROPPED',
      dropReason: 'INVALID_SOURCE_IP',
      input: 'hubble',
    });
  });

  it('line 11: SYN dropped by policy, direction from the TCP flags', () => {
    const r = parseHubbleLine(line(11));
    expect(r).toMatchObject({ rule: 'tcp-flags', flipped: false });
    expect(flowOf(r)).toMatchObject({
      src: { ip: '10.244.1.60', namespace: 'default', pod: 'xwing' },
      dst: { ip: '10.244.1.5', namespace: 'default', pod: 'deathstar-7848d6c4d5-th9v2' },
      port: 80,
      srcPort: 44916,
      verdict: 'DROPPED',
      dropReason: 'POLICY_DENIED',
    });
  });

  it('scanner and JSON.parse paths agree on every sample line', () => {
    for (const l of lines) expect(parseHubbleLine(l)).toEqual(parseHubbleLineSlow(l));
  });
});

/** A compact valid envelope to mutate in the bad-input tests. */
function envelope(flow: Record<string, unknown>, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ flow, node_name: 'n1', time: '2026-01-01T00:00:00Z', ...extra });
}
const BASE = {
  time: '2026-01-01T00:00:00.123456789Z',
  verdict: 'FORWARDED',
  IP: { source: '10.0.0.1', destination: '10.0.0.2', ipVersion: 'IPv4' },
  l4: { TCP: { source_port: 40000, destination_port: 8080, flags: { SYN: true } } },
  source: { namespace: 'a', pod_name: 'client', labels: ['k8s:app=client'] },
  destination: { namespace: 'b', pod_name: 'server', labels: ['k8s:app=server'] },
};

function both(l: string): HubbleResult {
  const fast = parseHubbleLine(l);
  expect(fast).toEqual(parseHubbleLineSlow(l));
  return fast;
}

function badMessage(l: string): [string, string] {
  const r = both(l);
  if (r.kind !== 'bad') throw new Error(`expected bad, got ${JSON.stringify(r)}`);
  return [r.error.reason, r.error.message];
}

describe('Hubble bad input and edge cases', () => {
  it('parses 9 fractional digits, 0 digits and offsets', () => {
    expect(flowOf(both(envelope(BASE))).time).toBe(Date.parse('2026-01-01T00:00:00.123Z'));
    expect(flowOf(both(envelope({ ...BASE, time: '2026-01-01T00:00:00Z' }))).time).toBe(
      Date.parse('2026-01-01T00:00:00Z'),
    );
    expect(flowOf(both(envelope({ ...BASE, time: '2026-01-01T02:00:00.5+02:00' }))).time).toBe(
      Date.parse('2026-01-01T00:00:00.500Z'),
    );
  });

  it('falls back to the envelope time when the flow has none', () => {
    const { time: _t, ...noTime } = BASE;
    expect(flowOf(both(envelope(noTime))).time).toBe(Date.parse('2026-01-01T00:00:00Z'));
    expect(badMessage(JSON.stringify({ flow: noTime }))).toEqual(['missing-field', 'flow.time is missing']);
  });

  it('truncated JSON', () => {
    const l = envelope(BASE);
    expect(badMessage(l.slice(0, 60))).toEqual([
      'invalid-json',
      `invalid JSON: Unterminated string in JSON at position 60 (line 1 column 61)`,
    ]);
  });

  it('wrong types', () => {
    expect(badMessage(envelope({ ...BASE, l4: { TCP: { destination_port: true } } }))).toEqual([
      'wrong-type',
      'flow.l4.TCP.destination_port: expected an integer from 0 to 65535, got boolean true',
    ]);
    expect(badMessage(envelope({ ...BASE, l4: { TCP: { destination_port: 70000 } } }))).toEqual([
      'wrong-type',
      'flow.l4.TCP.destination_port: expected an integer from 0 to 65535, got number 70000',
    ]);
    expect(badMessage(envelope({ ...BASE, source: { labels: 'k8s:app=x' } }))).toEqual([
      'wrong-type',
      'flow.source.labels: expected an array of strings, got string "k8s:app=x"',
    ]);
    expect(badMessage(envelope({ ...BASE, IP: [] }))).toEqual([
      'wrong-type',
      'flow.IP: expected an object, got array',
    ]);
    expect(badMessage('[1,2]')).toEqual(['not-an-object', 'expected a JSON object, got array']);
  });

  it('unknown enum values', () => {
    expect(badMessage(envelope({ ...BASE, verdict: 'MAYBE' }))).toEqual([
      'unknown-enum',
      'flow.verdict: unknown value "MAYBE" (expected FORWARDED, DROPPED, ERROR, AUDIT, REDIRECTED, TRACED, TRANSLATED or VERDICT_UNKNOWN, or a number from 0 to 7)',
    ]);
    expect(badMessage(envelope({ ...BASE, verdict: 42 }))).toEqual([
      'unknown-enum',
      'flow.verdict: unknown value 42 (expected FORWARDED, DROPPED, ERROR, AUDIT, REDIRECTED, TRACED, TRANSLATED or VERDICT_UNKNOWN, or a number from 0 to 7)',
    ]);
    // The generic schema's spelling of the unknown verdict is not Hubble's: the list says which it takes.
    expect(badMessage(envelope({ ...BASE, verdict: 'UNKNOWN' }))).toEqual([
      'unknown-enum',
      'flow.verdict: unknown value "UNKNOWN" (expected FORWARDED, DROPPED, ERROR, AUDIT, REDIRECTED, TRACED, TRANSLATED or VERDICT_UNKNOWN, or a number from 0 to 7)',
    ]);
    expect(flowOf(both(envelope({ ...BASE, verdict: 'VERDICT_UNKNOWN' }))).verdict).toBe('UNKNOWN');
    expect(flowOf(both(envelope({ ...BASE, verdict: 7 }))).verdict).toBe('TRANSLATED');
  });

  it('keeps a drop reason it does not know, on DROPPED flows only', () => {
    // A drop reason says why, not whether: one a newer Cilium added must not cost the dropped flow
    // (an unknown number was a bad line, an unknown name was kept even on a FORWARDED flow).
    const reason = (verdict: unknown, drop: unknown) => {
      const l = envelope({ ...BASE, verdict, drop_reason_desc: drop });
      const r = both(l);
      // The WebAssembly scanner agrees, on the lines it takes (all but a null, left to JSON.parse).
      const bytes = Buffer.from(l + '\n');
      const wasm: (HubbleResult | undefined)[] = [];
      scanHubbleBlock(bytes, 0, bytes.length, (x) => wasm.push(x));
      expect(wasm).toEqual([drop === null ? undefined : r]);
      return flowOf(r).dropReason;
    };
    expect(reason('DROPPED', 9999)).toBe('DROP_REASON_9999');
    expect(reason(2, 9999)).toBe('DROP_REASON_9999');
    expect(reason('DROPPED', 'NOPE')).toBe('NOPE');
    expect(reason('DROPPED', 133)).toBe('POLICY_DENIED');
    expect(reason('DROPPED', '133')).toBe('133');
    for (const none of [0, '', 'DROP_REASON_UNKNOWN', null]) expect(reason('DROPPED', none)).toBeUndefined();
    for (const verdict of ['FORWARDED', 'AUDIT', 'ERROR', undefined])
      for (const drop of ['NOPE', 'POLICY_DENIED', 133, 9999]) expect(reason(verdict, drop)).toBeUndefined();
    // Over gRPC (proto-loader, enums: String) a value the loaded proto lacks comes as its number.
    const grpc = normalizeHubbleFlow({ ...BASE, verdict: 'DROPPED', drop_reason_desc: 250 });
    expect(flowOf(grpc).dropReason).toBe('DROP_REASON_250');
    expect(badMessage(envelope({ ...BASE, verdict: 'DROPPED', drop_reason_desc: 1.5 }))).toEqual([
      'wrong-type',
      'flow.drop_reason_desc: expected an enum name or a 32-bit integer, got number 1.5',
    ]);
    expect(badMessage(envelope({ ...BASE, verdict: 'DROPPED', drop_reason_desc: 2 ** 31 }))).toEqual([
      'wrong-type',
      'flow.drop_reason_desc: expected an enum name or a 32-bit integer, got number 2147483648',
    ]);
    expect(badMessage(envelope({ ...BASE, verdict: 'FORWARDED', drop_reason_desc: true }))).toEqual([
      'wrong-type',
      'flow.drop_reason_desc: expected an enum name or number, got boolean true',
    ]);
  });

  it('enums given as numbers and integers as decimal strings are accepted', () => {
    const f = flowOf(
      both(
        envelope({
          ...BASE,
          verdict: 2,
          drop_reason_desc: 133,
          l4: { TCP: { source_port: '40000', destination_port: '8080', flags: { SYN: true } } },
        }),
      ),
    );
    expect(f).toMatchObject({ verdict: 'DROPPED', dropReason: 'POLICY_DENIED', port: 8080, srcPort: 40000 });
  });

  it("a connection whose responder's port is 0 or left out is a bad line, on every path", () => {
    const cases: [Record<string, unknown>, string][] = [
      [
        { TCP: { source_port: 40000, flags: { SYN: true } } },
        "flow.l4.TCP.destination_port: 0 (or left out) is out of range 1-65535 (the responder's port)",
      ],
      [
        { UDP: { source_port: 40000, destination_port: 0 } },
        "flow.l4.UDP.destination_port: 0 (or left out) is out of range 1-65535 (the responder's port)",
      ],
      [
        { SCTP: { source_port: 40000 } },
        "flow.l4.SCTP.destination_port: 0 (or left out) is out of range 1-65535 (the responder's port)",
      ],
      [
        { TCP: { destination_port: 40000, flags: { SYN: true, ACK: true } } },
        "flow.l4.TCP.source_port: 0 (or left out) is out of range 1-65535 (the responder's port: this flow is a reply)",
      ],
    ];
    for (const [l4, message] of cases) {
      const line = envelope({ ...BASE, l4 });
      expect(badMessage(line)).toEqual(['bad-value', message]);
      const bytes = Buffer.from(line + '\n');
      const wasm: (HubbleResult | undefined)[] = [];
      scanHubbleBlock(bytes, 0, bytes.length, (x) => wasm.push(x));
      expect(wasm).toEqual([parseHubbleLineSlow(line)]);
    }
    // An initiator's port of 0 is only left out of the flow; ICMP has no ports.
    expect(flowOf(both(envelope({ ...BASE, l4: { TCP: { destination_port: 8080 } } })))).toMatchObject({
      port: 8080,
    });
    expect(flowOf(both(envelope({ ...BASE, l4: { ICMPv4: { type: 8 } } })))).toMatchObject({ port: 8 });
  });

  it('missing and malformed IPs', () => {
    expect(badMessage(envelope({ ...BASE, IP: { destination: '10.0.0.2' } }))).toEqual([
      'missing-field',
      'flow.IP.source is missing',
    ]);
    expect(badMessage(envelope({ ...BASE, IP: { source: '10.0.0.1', destination: '10.0.0.256' } }))).toEqual([
      'bad-value',
      'flow.IP.destination: not an IP address: "10.0.0.256"',
    ]);
    expect(badMessage(envelope({ ...BASE, l4: undefined }))).toEqual(['missing-field', 'flow.l4 is missing']);
    // A zone ID names an interface of one host, not an address (the WebAssembly scanner agrees).
    const zoned = envelope({ ...BASE, IP: { source: 'fe80::1%eth0', destination: 'fe80::2' } });
    expect(badMessage(zoned)).toEqual(['bad-value', 'flow.IP.source: not an IP address: "fe80::1%eth0"']);
    const bytes = Buffer.from(zoned + '\n');
    const wasm: (HubbleResult | undefined)[] = [];
    scanHubbleBlock(bytes, 0, bytes.length, (x) => wasm.push(x));
    expect(wasm).toEqual([parseHubbleLineSlow(zoned)]);
  });

  it('missing pod names keep the flow with IP and namespace only', () => {
    const f = flowOf(both(envelope({ ...BASE, source: { namespace: 'a' }, destination: {} })));
    expect(f.src).toEqual({ ip: '10.0.0.1', namespace: 'a' });
    expect(f.dst).toEqual({ ip: '10.0.0.2' });
  });

  it('IPv6 TCP with names, service and workload', () => {
    const f = flowOf(
      both(
        envelope({
          ...BASE,
          IP: { source: 'fd00::1', destination: '2001:db8::5', ipVersion: 'IPv6' },
          destination: { identity: 2, labels: ['reserved:world', 'cidr:2001:db8::/32'] },
          destination_names: ['api.example.com.'],
          source: { namespace: 'a', pod_name: 'c', workloads: [{ name: 'client', kind: 'Deployment' }] },
          destination_service: { name: 'ext', namespace: 'a' },
        }),
      ),
    );
    expect(f.src).toEqual({
      ip: 'fd00::1',
      namespace: 'a',
      pod: 'c',
      workload: { kind: 'Deployment', name: 'client' },
    });
    expect(f.dst).toEqual({
      ip: '2001:db8::5',
      reserved: 'world',
      names: ['api.example.com'],
      service: { namespace: 'a', name: 'ext' },
    });
  });

  it('ICMP echo reply ({} = type 0) is flipped and named by the echo request type', () => {
    const r = both(envelope({ ...BASE, l4: { ICMPv4: {} } }));
    expect(r).toMatchObject({ kind: 'flow', flipped: true, rule: 'icmp' });
    const f = flowOf(r);
    expect([f.src.ip, f.dst.ip, f.protocol, f.port, f.srcPort]).toEqual([
      '10.0.0.2',
      '10.0.0.1',
      'ICMPv4',
      8,
      undefined,
    ]);
  });

  it('direction rules without a reply flag: trace_reason, SYN-ACK, ports, observed', () => {
    const tcp = (sp: number, dp: number, flags: object = { ACK: true }) => ({
      ...BASE,
      l4: { TCP: { source_port: sp, destination_port: dp, flags } },
    });
    expect(both(envelope({ ...tcp(8080, 40000), trace_reason: 'REPLY' }))).toMatchObject({
      rule: 'trace_reason',
      flipped: true,
    });
    expect(both(envelope({ ...tcp(40000, 8080), trace_reason: 1 }))).toMatchObject({
      rule: 'trace_reason',
      flipped: false,
    });
    expect(both(envelope(tcp(8080, 40000, { SYN: true, ACK: true })))).toMatchObject({
      rule: 'tcp-flags',
      flipped: true,
    });
    expect(both(envelope(tcp(443, 40000)))).toMatchObject({ rule: 'ports', flipped: true });
    expect(both(envelope(tcp(40000, 443)))).toMatchObject({ rule: 'ports', flipped: false });
    expect(both(envelope(tcp(5000, 6000)))).toMatchObject({ rule: 'observed', flipped: false });
    expect(both(envelope({ ...tcp(8080, 40000), is_reply: false }))).toMatchObject({
      rule: 'is_reply',
      flipped: false,
    });
  });

  it('node_status, lost_events (64-bit string), agent and debug events are counted, not flows', () => {
    expect(
      both(JSON.stringify({ node_status: { state_change: 'NODE_CONNECTED', node_names: ['a'] } })),
    ).toEqual({
      kind: 'event',
      event: 'node_status',
      lost: 0n,
    });
    expect(
      both(
        JSON.stringify({
          lost_events: { source: 'HUBBLE_RING_BUFFER', num_events_lost: '18446744073709551615' },
        }),
      ),
    ).toEqual({ kind: 'event', event: 'lost_events', lost: 18446744073709551615n });
    expect(badMessage(JSON.stringify({ lost_events: { num_events_lost: '12x' } }))).toEqual([
      'wrong-type',
      'lost_events.num_events_lost: expected a 64-bit unsigned integer string, got string "12x"',
    ]);
    expect(both(JSON.stringify({ agent_event: { type: 'AGENT_STARTED' } }))).toMatchObject({
      event: 'agent_event',
    });
    expect(both(JSON.stringify({ debug_event: { type: 'DBG_GENERIC' } }))).toMatchObject({
      event: 'debug_event',
    });
    expect(badMessage(JSON.stringify({ hello: 1 }))).toEqual([
      'unknown-record',
      'not a Hubble record: expected one of flow, node_status, lost_events, agent_event, debug_event',
    ]);
  });

  it('a bare Flow object (legacy json output) is accepted with unprefixed paths', () => {
    expect(flowOf(both(JSON.stringify(BASE))).port).toBe(8080);
    expect(badMessage(JSON.stringify({ ...BASE, verdict: 'X' }))).toEqual([
      'unknown-enum',
      'verdict: unknown value "X" (expected FORWARDED, DROPPED, ERROR, AUDIT, REDIRECTED, TRACED, TRANSLATED or VERDICT_UNKNOWN, or a number from 0 to 7)',
    ]);
  });

  it('VRRP/IGMP are skipped as unsupported protocols', () => {
    expect(both(envelope({ ...BASE, l4: { VRRP: { type: 1 } } }))).toEqual({
      kind: 'skip',
      reason: 'unsupported-protocol',
    });
  });

  it('escapes and whitespace go through the JSON.parse path with the same result', () => {
    const l = envelope({ ...BASE, source: { ...BASE.source, pod_name: 'cli\u00e9nt"x' } });
    expect(scanHubbleLine(l)).toBeUndefined();
    expect(flowOf(both(l)).src.pod).toBe('cli\u00e9nt"x');
    const spaced = JSON.stringify(JSON.parse(envelope(BASE)), null, 1).replace(/\n/g, '');
    expect(scanHubbleLine(spaced)).toBeUndefined();
    expect(both(spaced)).toEqual(both(envelope(BASE)));
  });
});

describe('endpoint memo of the scanner', () => {
  it('a repeated endpoint text gives the same fields; a text differing after the memo key does not', () => {
    const a = envelope({
      ...BASE,
      source: { ID: 1, identity: 300, namespace: 'a', pod_name: 'client-1', labels: ['k8s:app=client'] },
    });
    const b = envelope({
      ...BASE,
      source: { ID: 1, identity: 300, namespace: 'a', pod_name: 'client-2', labels: ['k8s:app=other'] },
    });
    expect(flowOf(both(a)).src).toEqual({
      ip: '10.0.0.1',
      namespace: 'a',
      pod: 'client-1',
      labels: ['app=client'],
    });
    expect(flowOf(both(a)).src).toEqual({
      ip: '10.0.0.1',
      namespace: 'a',
      pod: 'client-1',
      labels: ['app=client'],
    });
    expect(flowOf(both(b)).src).toEqual({
      ip: '10.0.0.1',
      namespace: 'a',
      pod: 'client-2',
      labels: ['app=other'],
    });
    // Flows may share the memo's label arrays and endpoint records, which are frozen: a caller
    // cannot change what later flows get.
    const f1 = flowOf(parseHubbleLine(a));
    expect(() => f1.src.labels!.push('mutated=yes')).toThrow(TypeError);
    expect(() => {
      f1.src.pod = 'other';
    }).toThrow(TypeError);
    expect(flowOf(parseHubbleLine(a)).src).toEqual({
      ip: '10.0.0.1',
      namespace: 'a',
      pod: 'client-1',
      labels: ['app=client'],
    });
  });
});

describe('normalizeHubbleFlow on gRPC-decoded objects', () => {
  it('accepts {seconds, nanos} time, BoolValue is_reply and the oneof name field', () => {
    const r = normalizeHubbleFlow({
      time: { seconds: '1767225600', nanos: 250_000_000 },
      verdict: 'FORWARDED',
      IP: { source: '10.0.0.2', destination: '10.0.0.1', ipVersion: 'IPv4' },
      l4: { protocol: 'TCP', TCP: { source_port: 8080, destination_port: 40000 } },
      source: { namespace: 'b', pod_name: 'server' },
      destination: { namespace: 'a', pod_name: 'client' },
      is_reply: { value: true },
    });
    expect(r).toMatchObject({ kind: 'flow', flipped: true });
    expect(flowOf(r)).toMatchObject({
      time: Date.parse('2026-01-01T00:00:00.250Z'),
      src: { pod: 'client' },
      dst: { pod: 'server' },
      port: 8080,
      srcPort: 40000,
    });
    expect(normalizeHubbleRecord({ flow: { ...BASE, is_reply: {} } })).toMatchObject({
      rule: 'is_reply',
      flipped: false,
    });
  });

  it('rejects a {seconds, nanos} time beyond what a Date holds as a bad value', () => {
    const at = (time: unknown) => normalizeHubbleFlow({ ...BASE, time });
    expect(flowOf(at({ seconds: '8640000000000' })).time).toBe(8.64e15);
    const bad = (time: unknown) => {
      const r = at(time);
      return r.kind === 'bad' ? [r.error.reason, r.error.message] : r;
    };
    expect(bad({ seconds: '9000000000000', nanos: 0 })).toEqual([
      'bad-value',
      'time: 9000000000000 seconds is out of range 0-8640000000000',
    ]);
    expect(bad({ seconds: 8640000000000, nanos: 1_000_000 })).toEqual([
      'bad-value',
      'time: 8640000000000.001000000 seconds is out of range 0-8640000000000',
    ]);
    expect(normalizeHubbleRecord({ flow: { ...BASE, time: { seconds: '9000000000000' } } })).toMatchObject({
      kind: 'bad',
      error: {
        reason: 'bad-value',
        message: 'flow.time: 9000000000000 seconds is out of range 0-8640000000000',
      },
    });
  });

  it('reports a non-object flow', () => {
    const r = normalizeHubbleFlow('x');
    expect(r.kind === 'bad' && r.error.message).toBe('flow: expected an object, got string "x"');
  });
});

describe('Cilium label rules', () => {
  // [raw label, labels kept, reserved identity, namespace named]
  const CASES: [string, string[] | undefined, string | undefined, string?][] = [
    ['k8s:app=web', ['app=web'], undefined],
    ['k8s:io.cilium.k8s.policy.cluster=default', undefined, undefined],
    ['k8s:io.kubernetes.pod.namespace=shop', undefined, undefined, 'shop'],
    ['io.kubernetes.pod.namespace=shop', undefined, undefined, 'shop'],
    ['k8s:io.kubernetes.pod.namespace=', undefined, undefined, ''],
    ['container:io.kubernetes.pod.namespace=shop', undefined, undefined],
    ['io.cilium.k8s.policy.serviceaccount=web', undefined, undefined],
    ['k8s:io.cilium.k8s.', undefined, undefined],
    ['k8s:io.cilium.k8s', ['io.cilium.k8s'], undefined],
    ['k8s', ['k8s'], undefined],
    ['k8s:', [''], undefined],
    ['', [''], undefined],
    ['reserved:host', undefined, 'host'],
    ['reserved:something-new', undefined, 'unknown'],
    ['cidr:10.0.0.0/8', undefined, undefined],
    ['fqdn:api.example.com', undefined, undefined],
    ['app=a:b', ['app=a:b'], undefined],
    ['team:x=y', undefined, undefined],
    ['plain', ['plain'], undefined],
  ];

  it('keep, reserve or drop each label, alone and read in place from the bytes of a longer text', () => {
    for (const [raw, labels, reserved, namespace] of CASES) {
      const alone = emptyEndpointFields();
      addCiliumLabel(alone, raw);
      expect({
        raw,
        labels: alone.labels,
        reserved: alone.reserved,
        namespace: alone.labelNamespace,
      }).toEqual({
        raw,
        labels,
        reserved,
        namespace,
      });
      // The same label between other text, which would complete a prefix or hold a ':' or '=' if
      // the range were not respected.
      const around: [string, string][] = [
        ['', ''],
        ['x', ':io.cilium.k8s.a=b'],
        ['', '.a=b'],
        ['k8s:', 'io.kubernetes.pod.namespace=x'],
        ['reserved:', '=:'],
      ];
      for (const [before, after] of around) {
        // As the WebAssembly path reads a labels array: on its bytes, where they lie.
        const inPlace = emptyEndpointFields();
        const text = before + raw + after;
        const end = before.length + raw.length;
        const from = ciliumLabelAt(inPlace, Buffer.from(text, 'latin1'), before.length, end);
        const kept = from >= 0 ? [text.slice(from, end)] : undefined;
        expect({
          raw,
          text,
          labels: kept,
          reserved: inPlace.reserved,
          namespace: inPlace.labelNamespace,
        }).toEqual({
          raw,
          text,
          labels,
          reserved,
          namespace,
        });
      }
    }
  });
});
