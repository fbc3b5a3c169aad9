import { describe, expect, it } from 'vitest';
import { FlowInputError } from '../../src/flows/errors.ts';
import { parseGenericFlow, parseGenericLine } from '../../src/flows/generic.ts';
import type { Flow } from '../../src/flows/types.ts';

function err(obj: unknown): [string, string] {
  const r = parseGenericFlow(obj);
  if (!(r instanceof FlowInputError)) throw new Error(`expected an error, got ${JSON.stringify(r)}`);
  return [r.reason, r.message];
}

describe('generic flow schema', () => {
  it('accepts the documented full example', () => {
    expect(
      parseGenericFlow({
        time: '2026-03-01T10:00:00.250Z',
        src: { namespace: 'shop', pod: 'cart-7d9f', labels: { app: 'cart' } },
        dst: { ip: '10.0.3.7', names: ['db.internal.'], service: 'shop/db' },
        port: 5432,
        srcPort: 41000,
        protocol: 'tcp',
        verdict: 'dropped',
        dropReason: 'POLICY_DENIED',
        count: 3,
      }),
    ).toEqual({
      time: Date.parse('2026-03-01T10:00:00.250Z'),
      src: { namespace: 'shop', pod: 'cart-7d9f', labels: ['app=cart'] },
      dst: { ip: '10.0.3.7', names: ['db.internal'], service: { namespace: 'shop', name: 'db' } },
      protocol: 'TCP',
      port: 5432,
      srcPort: 41000,
      verdict: 'DROPPED',
      dropReason: 'POLICY_DENIED',
      count: 3,
      input: 'generic',
    });
  });

  it('accepts "ns/pod" and IP strings, epoch ms, source/destination aliases and defaults', () => {
    expect(
      parseGenericFlow({ time: 1767225600000, source: 'a/web-1', destination: 'fd00::7', port: 443 }),
    ).toEqual({
      time: 1767225600000,
      src: { namespace: 'a', pod: 'web-1' },
      dst: { ip: 'fd00::7' },
      protocol: 'TCP',
      port: 443,
      verdict: 'FORWARDED',
      input: 'generic',
    });
    // 8.64e15 as milliseconds would be year 275760; from 1e14 on a number is epoch microseconds.
    expect(parseGenericFlow({ time: 8.64e15, src: 'a/p', dst: '10.0.0.2', port: 80 })).toMatchObject({
      time: 8.64e12,
    });
    expect(parseGenericFlow({ time: 0, src: 'fd00::1', dst: 'fd00::2', protocol: 'ICMPv6' })).toMatchObject({
      protocol: 'ICMPv6',
      port: 128,
    });
  });

  it('gives exact errors', () => {
    const ok = { time: 0, src: 'a/p', dst: '10.0.0.2', port: 80 };
    expect(err({ ...ok, time: undefined })).toEqual(['missing-field', 'time is missing']);
    expect(err({ ...ok, time: 'yesterday' })).toEqual([
      'bad-value',
      'time: not an RFC 3339 timestamp: "yesterday"',
    ]);
    expect(err({ ...ok, time: true })).toEqual([
      'wrong-type',
      'time: expected an RFC 3339 string, or epoch milliseconds (below 1e14), microseconds (1e14 to 1e17) or nanoseconds (1e17 to 1e20) as a number or a string of digits, got boolean true',
    ]);
    expect(err({ ...ok, time: -5 })).toEqual([
      'bad-value',
      'time: -5 is negative: a number is epoch milliseconds (below 1e14), microseconds (1e14 to 1e17) or nanoseconds (1e17 to 1e20)',
    ]);
    // Beyond nanoseconds of year 5138.
    expect(err({ ...ok, time: 1e20 })).toEqual([
      'bad-value',
      'time: 100000000000000000000 is out of range: a number is epoch milliseconds (below 1e14), microseconds (1e14 to 1e17) or nanoseconds (1e17 to 1e20)',
    ]);
    // Epoch seconds (this century's) given where milliseconds are read: refused with the likely cause.
    expect(err({ ...ok, time: 1772448000 })).toEqual([
      'bad-value',
      'time: 1772448000 looks like epoch seconds (2026-03-02T10:40:00.000Z), which are not read: a number is epoch milliseconds (below 1e14; this one would be 1970-01-21T12:20:48.000Z), microseconds (1e14 to 1e17) or nanoseconds (1e17 to 1e20): give it multiplied by 1000, or as RFC 3339',
    ]);
    expect(err({ ...ok, time: 99_999_999_999.5 })?.[0]).toBe('bad-value');
    // Just outside that range, numbers are milliseconds as documented.
    expect((parseGenericFlow({ ...ok, time: 999_999_999 }) as Flow).time).toBe(999_999_999);
    expect((parseGenericFlow({ ...ok, time: 1e11 }) as Flow).time).toBe(1e11);
    expect((parseGenericFlow({ ...ok, time: 1772448000000 }) as Flow).time).toBe(
      Date.parse('2026-03-02T10:40:00Z'),
    );
    expect(err({ ...ok, src: undefined })).toEqual(['missing-field', 'src is missing']);
    // A reserved identity in any case, as protocol and verdict; an unknown one names those it takes.
    expect(
      (parseGenericFlow({ ...ok, dst: { ip: '1.1.1.1', reserved: 'World' } }) as Flow).dst.reserved,
    ).toBe('world');
    expect(err({ ...ok, dst: { ip: '1.1.1.1', reserved: 'internet' } })).toEqual([
      'unknown-enum',
      'dst.reserved: unknown value "internet" (expected one of host, remote-node, world, kube-apiserver, health, ingress, unmanaged, init, unknown)',
    ]);
    expect(err({ ...ok, src: 'nopod' })).toEqual([
      'bad-value',
      'src: "nopod" is neither "namespace/pod" nor an IP address',
    ]);
    expect(err({ ...ok, src: { namespace: 'a' } })).toEqual([
      'missing-field',
      'src: needs an ip, a namespace and pod or workload, labels or names',
    ]);
    expect(err({ ...ok, src: { pod: 'p' } })).toEqual(['missing-field', 'src: pod "p" needs a namespace']);
    // A workload with its namespace names the endpoint; without it, it does not.
    expect(
      parseGenericFlow({ ...ok, src: { namespace: 'a', workload: { kind: 'deployment', name: 'w' } } }),
    ).toMatchObject({
      src: { namespace: 'a', workload: { kind: 'deployment', name: 'w' } },
    });
    expect(err({ ...ok, src: { workload: { kind: 'Deployment', name: 'w' } } })).toEqual([
      'missing-field',
      'src: needs an ip, a namespace and pod or workload, labels or names',
    ]);
    expect(err({ ...ok, dst: { ip: '300.1.1.1' } })).toEqual([
      'bad-value',
      'dst.ip: not an IP address: "300.1.1.1"',
    ]);
    expect(err({ ...ok, dst: { ip: '10.0.0.1', zone: 'x' } })).toEqual([
      'unknown-field',
      'dst: unknown field "zone"',
    ]);
    expect(err({ ...ok, port: '80' })).toEqual([
      'wrong-type',
      'port: expected an integer from 1 to 65535, got string "80"',
    ]);
    expect(err({ ...ok, port: 0 })).toEqual(['bad-value', 'port: 0 is out of range 1-65535']);
    expect(err({ ...ok, port: undefined })).toEqual(['missing-field', 'port is missing']);
    expect(err({ ...ok, protocol: 'gre' })).toEqual([
      'unknown-enum',
      'protocol: unknown value "gre" (expected TCP, UDP, SCTP, ICMPv4 or ICMPv6)',
    ]);
    expect(err({ ...ok, verdict: 'ALLOWED' })).toEqual([
      'unknown-enum',
      'verdict: unknown value "ALLOWED" (expected FORWARDED, DROPPED, ERROR, AUDIT, REDIRECTED, TRACED, TRANSLATED or UNKNOWN)',
    ]);
    expect(err({ ...ok, dropReason: 'X' })).toEqual([
      'bad-value',
      'dropReason: only allowed with verdict DROPPED',
    ]);
    expect(err({ ...ok, count: 0 })).toEqual(['bad-value', 'count: 0 is not a positive integer']);
    expect(err({ ...ok, count: 1.5 })).toEqual([
      'wrong-type',
      'count: expected a positive integer, got number 1.5',
    ]);
    expect(err({ ...ok, prot: 'TCP' })).toEqual(['unknown-field', 'unknown field "prot"']);
    expect(err({ ...ok, src: 'a/p', source: 'a/q' })).toEqual([
      'bad-value',
      'give either src or source, not both',
    ]);
    expect(err({ ...ok, src: { namespace: 'a', pod: 'p', labels: ['app'] } })).toEqual([
      'bad-value',
      'src.labels[0]: expected "key=value", got "app"',
    ]);
    expect(err('x')).toEqual(['not-an-object', 'expected a JSON object, got string "x"']);
  });

  it('names a missing or misspelt field of a workload or service object', () => {
    const ok = { time: 0, src: 'a/p', dst: '10.0.0.2', port: 80 };
    const w = (workload: object) => err({ ...ok, src: { namespace: 'a', workload } });
    expect(w({ kind: 'Deployment' })).toEqual(['missing-field', 'src.workload.name is missing']);
    expect(w({ name: 'cart' })).toEqual(['missing-field', 'src.workload.kind is missing']);
    expect(w({ kind: 'Deployment', nmae: 'cart' })).toEqual([
      'unknown-field',
      'src.workload: unknown field "nmae"',
    ]);
    expect(w({ kind: 'Deployment', name: 'cart', namespace: 'a' })).toEqual([
      'unknown-field',
      'src.workload: unknown field "namespace"',
    ]);
    const s = (service: object) => err({ ...ok, dst: { ip: '10.0.0.2', service } });
    expect(s({ name: 'db' })).toEqual(['missing-field', 'dst.service.namespace is missing']);
    expect(s({ namespace: 'shop', nmae: 'db' })).toEqual([
      'unknown-field',
      'dst.service: unknown field "nmae"',
    ]);
    expect(s({ namespace: 'shop', name: 5 })).toEqual([
      'wrong-type',
      'dst.service.name: expected a string, got number 5',
    ]);
  });

  it('rejects mixed IP versions, ICMP of the other version, empty endpoints and zone IDs', () => {
    // Each was taken as a flow before.
    const ok = { time: 0, src: '10.0.0.1', dst: '10.0.0.2', port: 80 };
    expect(err({ ...ok, dst: 'fd00::2' })).toEqual([
      'bad-value',
      'dst: IPv6 address "fd00::2" with src IPv4 address "10.0.0.1" (one connection has one IP version)',
    ]);
    expect(err({ ...ok, src: { ip: 'fd00::1' }, dst: { ip: '10.0.0.2' } })).toEqual([
      'bad-value',
      'dst.ip: IPv4 address "10.0.0.2" with src.ip IPv6 address "fd00::1" (one connection has one IP version)',
    ]);
    expect(err({ ...ok, src: 'fd00::1', dst: 'fd00::2', protocol: 'ICMPv4', port: undefined })).toEqual([
      'bad-value',
      'src: IPv6 address "fd00::1" with protocol ICMPv4 (use ICMPv6)',
    ]);
    expect(err({ ...ok, protocol: 'icmpv6', port: 129 })).toEqual([
      'bad-value',
      'src: IPv4 address "10.0.0.1" with protocol ICMPv6 (use ICMPv4)',
    ]);
    expect(err({ ...ok, src: 'a/p', dst: { ip: '10.0.0.2' }, protocol: 'ICMPv6' })).toEqual([
      'bad-value',
      'dst.ip: IPv4 address "10.0.0.2" with protocol ICMPv6 (use ICMPv4)',
    ]);
    expect(
      parseGenericFlow({ ...ok, src: 'a/p', dst: 'fd00::2', protocol: 'ICMPv6', port: undefined }),
    ).toMatchObject({
      protocol: 'ICMPv6',
      port: 128,
    });
    expect(err({ ...ok, src: { labels: {} } })).toEqual([
      'missing-field',
      'src: needs an ip, a namespace and pod or workload, labels or names (src.labels is empty)',
    ]);
    expect(err({ ...ok, dst: { names: [] } })).toEqual([
      'missing-field',
      'dst: needs an ip, a namespace and pod or workload, labels or names (dst.names is empty)',
    ]);
    expect(err({ ...ok, src: { labels: [], names: [], namespace: 'a' } })).toEqual([
      'missing-field',
      'src: needs an ip, a namespace and pod or workload, labels or names (src.labels and src.names are empty)',
    ]);
    expect(parseGenericFlow({ ...ok, src: { ip: '10.0.0.1', labels: {} } })).toMatchObject({
      src: { ip: '10.0.0.1', labels: [] },
    });
    expect(err({ ...ok, src: { ip: 'fe80::1%eth0' }, dst: 'fe80::2' })).toEqual([
      'bad-value',
      'src.ip: not an IP address: "fe80::1%eth0"',
    ]);
    expect(err({ ...ok, src: 'fd00::1', dst: 'fe80::2%1' })).toEqual([
      'bad-value',
      'dst: "fe80::2%1" is neither "namespace/pod" nor an IP address',
    ]);
  });

  it('reports invalid JSON lines', () => {
    const r = parseGenericLine('{"time":0,');
    expect(r instanceof FlowInputError && [r.reason, r.message]).toEqual([
      'invalid-json',
      'invalid JSON: Expected double-quoted property name in JSON at position 10 (line 1 column 11)',
    ]);
  });
});

describe('generic time numbers by magnitude', () => {
  const ok = { src: 'a/p', dst: '10.0.0.2', port: 80 };
  const at = '2026-03-02T10:40:00.123Z';
  const ms = Date.parse(at);
  const timeOf = (time: unknown): number => {
    const r = parseGenericFlow({ ...ok, time });
    if (r instanceof FlowInputError) throw new Error(r.message);
    return r.time;
  };

  it('reads epoch microseconds and nanoseconds (what many collectors emit) as such', () => {
    expect(timeOf(ms)).toBe(ms);
    expect(new Date(timeOf(ms * 1000 + 456)).toISOString()).toBe(at);
    expect(new Date(timeOf(ms * 1_000_000 + 456_789)).toISOString()).toBe(at);
    // At the bounds: 1e14 is the first microseconds value, 1e17 the first nanoseconds one.
    expect(timeOf(1e14 - 1)).toBe(1e14 - 1);
    expect(timeOf(1e14)).toBe(1e11);
    expect(timeOf(1e17 - 1000)).toBe(1e14 - 1);
    expect(timeOf(1e17)).toBe(1e11);
  });

  it('reads a string of digits as the number it spells (int64 in protobuf JSON)', () => {
    expect(timeOf(String(ms))).toBe(ms);
    expect(timeOf(`${ms}000`)).toBe(ms);
    expect(timeOf(`${ms}000000`)).toBe(ms);
    expect(err({ ...ok, time: String(1772448000) })[1]).toMatch(/^time: 1772448000 looks like epoch seconds/);
    expect(err({ ...ok, time: '12ab' })).toEqual(['bad-value', 'time: not an RFC 3339 timestamp: "12ab"']);
  });

  it('refuses a string of digits that is a compact date, not an epoch time, instead of dating it 1970 or 2612', () => {
    // yyyyMMdd, yyyyMMddHHmm, yyyyMMddHHmmss, yyyyMMddHHmmssSSS: each read as a number gave a time of
    // 1970, 1976, 2612 or (as microseconds) 2611, without a word.
    for (const time of ['20260302', '202603021040', '20260302104000', '20260302104000123', '0']) {
      expect(err({ ...ok, time }), time).toEqual([
        'bad-value',
        `time: "${time}" is neither an RFC 3339 timestamp nor epoch milliseconds, microseconds or nanoseconds of 2001 to 2286`,
      ]);
    }
    // Epoch times of this era in each unit are read, with a fraction too.
    expect(timeOf(`${ms}.5`)).toBe(ms);
    expect(timeOf(`${ms}456`)).toBe(ms);
  });

  it('reads RFC 3339 with nanosecond fractions to the millisecond', () => {
    expect(timeOf('2026-03-02T10:40:00.123456789Z')).toBe(ms);
    expect(timeOf('2026-03-02T12:40:00.123456789+02:00')).toBe(ms);
  });

  it('refuses a number beyond nanoseconds of year 5138 naming the units it takes', () => {
    expect(err({ ...ok, time: 1e20 })).toEqual([
      'bad-value',
      'time: 100000000000000000000 is out of range: a number is epoch milliseconds (below 1e14), microseconds (1e14 to 1e17) or nanoseconds (1e17 to 1e20)',
    ]);
    // JSON.parse reads 1e400 as Infinity: out of range too, not a message of its own.
    expect(parseGenericLine('{"time":1e400,"src":"a/p","dst":"10.0.0.2","port":80}')).toMatchObject({
      reason: 'bad-value',
      message:
        'time: Infinity is out of range: a number is epoch milliseconds (below 1e14), microseconds (1e14 to 1e17) or nanoseconds (1e17 to 1e20)',
    });
  });
});
