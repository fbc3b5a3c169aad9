/**
 * The generic JSON-lines flow schema, for any collector microseg has no dedicated importer for (and
 * for the HTTP push endpoint). One JSON object per line; see docs/flows.md for the full description.
 *
 *   {"time":"2026-03-01T10:00:00Z","src":"shop/cart-7d9f","dst":{"ip":"10.0.3.7"},"port":5432,
 *    "protocol":"TCP","verdict":"FORWARDED","count":3}
 */
import { isIPAddress, parseRfc3339, stripDot } from './common.ts';
import { FlowInputError, describeValue, wrongType } from './errors.ts';
import type { Flow, FlowEndpoint, Protocol, ReservedIdentity, Verdict } from './types.ts';
import { VERDICTS } from './types.ts';

const TOP_KEYS = new Set([
  'time',
  'src',
  'dst',
  'source',
  'destination',
  'port',
  'srcPort',
  'protocol',
  'verdict',
  'dropReason',
  'count',
  'dnsQuery',
]);
const ENDPOINT_KEYS = new Set([
  'ip',
  'namespace',
  'pod',
  'workload',
  'labels',
  'reserved',
  'names',
  'service',
]);

const PROTOCOLS: Record<string, Protocol> = {
  tcp: 'TCP',
  udp: 'UDP',
  sctp: 'SCTP',
  icmp: 'ICMPv4',
  icmpv4: 'ICMPv4',
  icmpv6: 'ICMPv6',
};
const VERDICT_NAMES = new Set<Verdict>(VERDICTS);
/** The verdicts as an error lists them: the default first, UNKNOWN last (docs/flows.md's order). */
const VERDICT_LIST = (() => {
  const named = [...VERDICTS.filter((v) => v !== 'UNKNOWN'), 'UNKNOWN'];
  return `${named.slice(0, -1).join(', ')} or ${named[named.length - 1]}`;
})();
const RESERVED = new Set<ReservedIdentity>([
  'host',
  'remote-node',
  'world',
  'kube-apiserver',
  'health',
  'ingress',
  'unmanaged',
  'init',
  'unknown',
]);

type Obj = Record<string, unknown>;
function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fail(message: string, reason: 'bad-value' | 'missing-field' | 'unknown-field' = 'bad-value'): never {
  throw new FlowInputError(reason, message);
}

function nonEmptyString(v: unknown, path: string): string {
  // Reached for an absent value only inside an object given (workload, service): its field is missing.
  if (v === undefined) fail(`${path} is missing`, 'missing-field');
  if (typeof v !== 'string') throw wrongType(path, 'a string', v);
  if (v === '') fail(`${path}: must not be empty`);
  return v;
}

function stringList(v: unknown, path: string): string[] {
  if (!Array.isArray(v)) throw wrongType(path, 'an array of strings', v);
  return v.map((x, i) => nonEmptyString(x, `${path}[${i}]`));
}

/** Fails on a key of `o` that is not one of `keys`: a typo is caught, not ignored. */
function onlyKeys(o: Obj, keys: readonly string[], path: string): void {
  for (const k of Object.keys(o)) {
    if (!keys.includes(k)) fail(`${path}: unknown field ${JSON.stringify(k)}`, 'unknown-field');
  }
}

/** Accepts `"ns/pod"`, an IP address string, or an object; returns the endpoint. */
function parseEndpoint(v: unknown, path: string): FlowEndpoint {
  if (typeof v === 'string') {
    const slash = v.indexOf('/');
    if (slash >= 0) {
      const ns = v.slice(0, slash);
      const pod = v.slice(slash + 1);
      if (ns === '' || pod === '' || pod.includes('/'))
        fail(`${path}: ${JSON.stringify(v)} is neither "namespace/pod" nor an IP address`);
      return { namespace: ns, pod };
    }
    if (!isIPAddress(v)) fail(`${path}: ${JSON.stringify(v)} is neither "namespace/pod" nor an IP address`);
    return { ip: v };
  }
  if (!isObj(v)) throw wrongType(path, 'an object, "namespace/pod" or an IP address', v);
  for (const k of Object.keys(v)) {
    if (!ENDPOINT_KEYS.has(k)) fail(`${path}: unknown field ${JSON.stringify(k)}`, 'unknown-field');
  }
  const out: FlowEndpoint = {};
  if (v.ip !== undefined) {
    const ip = nonEmptyString(v.ip, `${path}.ip`);
    if (!isIPAddress(ip)) fail(`${path}.ip: not an IP address: ${JSON.stringify(ip)}`);
    out.ip = ip;
  }
  if (v.namespace !== undefined) out.namespace = nonEmptyString(v.namespace, `${path}.namespace`);
  if (v.pod !== undefined) out.pod = nonEmptyString(v.pod, `${path}.pod`);
  if (out.pod !== undefined && out.namespace === undefined)
    fail(`${path}: pod ${JSON.stringify(out.pod)} needs a namespace`, 'missing-field');
  if (v.workload !== undefined) {
    const w = v.workload;
    if (!isObj(w)) throw wrongType(`${path}.workload`, 'an object {kind, name}', w);
    onlyKeys(w, ['kind', 'name'], `${path}.workload`);
    out.workload = {
      kind: nonEmptyString(w.kind, `${path}.workload.kind`),
      name: nonEmptyString(w.name, `${path}.workload.name`),
    };
  }
  if (v.labels !== undefined) {
    let labels: string[];
    if (isObj(v.labels)) {
      labels = Object.entries(v.labels).map(([k, val]) => {
        if (typeof val !== 'string') throw wrongType(`${path}.labels.${k}`, 'a string', val);
        return `${k}=${val}`;
      });
    } else {
      labels = stringList(v.labels, `${path}.labels`);
      for (const [i, l] of labels.entries()) {
        if (!l.includes('=')) fail(`${path}.labels[${i}]: expected "key=value", got ${JSON.stringify(l)}`);
      }
    }
    out.labels = labels;
  }
  if (v.reserved !== undefined) {
    const given = nonEmptyString(v.reserved, `${path}.reserved`);
    // Any case, as protocol and verdict are taken.
    const r = given.toLowerCase();
    if (!RESERVED.has(r as ReservedIdentity))
      throw new FlowInputError(
        'unknown-enum',
        `${path}.reserved: unknown value ${JSON.stringify(given)} (expected one of ${[...RESERVED].join(', ')})`,
      );
    out.reserved = r as ReservedIdentity;
  }
  if (v.names !== undefined) out.names = stringList(v.names, `${path}.names`).map(stripDot);
  if (v.service !== undefined) {
    const s = v.service;
    if (isObj(s)) {
      onlyKeys(s, ['namespace', 'name'], `${path}.service`);
      out.service = {
        namespace: nonEmptyString(s.namespace, `${path}.service.namespace`),
        name: nonEmptyString(s.name, `${path}.service.name`),
      };
    } else if (typeof s === 'string' && /^[^/]+\/[^/]+$/.test(s)) {
      const [namespace, name] = s.split('/') as [string, string];
      out.service = { namespace, name };
    } else throw wrongType(`${path}.service`, '"namespace/name" or {namespace, name}', s);
  }
  // Empty labels or names say nothing about the endpoint: they do not count. A workload names one with
  // its namespace.
  const named = out.workload !== undefined && out.namespace !== undefined;
  if (out.ip === undefined && out.pod === undefined && !named && !out.labels?.length && !out.names?.length) {
    const empty = [out.labels && `${path}.labels`, out.names && `${path}.names`].filter((x) => x);
    fail(
      `${path}: needs an ip, a namespace and pod or workload, labels or names` +
        (empty.length > 0 ? ` (${empty.join(' and ')} ${empty.length > 1 ? 'are' : 'is'} empty)` : ''),
      'missing-field',
    );
  }
  return out;
}

/** Where an endpoint's IP address was given: the endpoint string itself, or its `ip` field. */
function ipPath(v: unknown, path: string): string {
  return typeof v === 'string' ? path : `${path}.ip`;
}

/**
 * One connection has one IP version at both ends, and ICMPv4 is IPv4's, ICMPv6 IPv6's: a record that
 * mixes them describes no packet that can be sent.
 */
function checkIPVersions(
  src: string | undefined,
  dst: string | undefined,
  srcPath: string,
  dstPath: string,
  protocol: Protocol,
  icmp: boolean,
): void {
  const v6 = (ip: string) => ip.includes(':');
  const name = (ip: string) => `${v6(ip) ? 'IPv6' : 'IPv4'} address ${JSON.stringify(ip)}`;
  if (src !== undefined && dst !== undefined && v6(src) !== v6(dst))
    fail(`${dstPath}: ${name(dst)} with ${srcPath} ${name(src)} (one connection has one IP version)`);
  if (!icmp) return;
  const wantV6 = protocol === 'ICMPv6';
  for (const [ip, path] of [
    [src, srcPath],
    [dst, dstPath],
  ] as const) {
    if (ip !== undefined && v6(ip) !== wantV6)
      fail(`${path}: ${name(ip)} with protocol ${protocol} (use ${wantV6 ? 'ICMPv4' : 'ICMPv6'})`);
  }
}

function parsePort(v: unknown, path: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v))
    throw wrongType(path, `an integer from ${min} to ${max}`, v);
  if (v < min || v > max) fail(`${path}: ${v} is out of range ${min}-${max}`);
  return v;
}

/** Numbers in [SECONDS_LIKE_FROM, SECONDS_LIKE_TO) are epoch seconds of 2001-09-09 to 5138-11-16. */
const SECONDS_LIKE_FROM = 1e9;
const SECONDS_LIKE_TO = 1e11;
/**
 * Epoch milliseconds from 1e14 on would be year 5138 or later, which no flow is: numbers from
 * MICROS_FROM are epoch microseconds, from NANOS_FROM epoch nanoseconds (both 1973-03-03 to
 * 5138-11-16), what many collectors emit; from NANOS_TO on they are out of range.
 */
const MICROS_FROM = 1e14;
const NANOS_FROM = 1e17;
const NANOS_TO = 1e20;
/** The units a number is read in, by magnitude, as every message about a time number names them. */
const NUMBER_UNITS = (msNote = '') =>
  `epoch milliseconds (below 1e14${msNote}), microseconds (1e14 to 1e17) or nanoseconds (1e17 to 1e20)`;
/** A string of decimal digits: an int64 as protobuf JSON and many collectors write it. */
const DECIMAL_STRING = /^\d{1,25}(\.\d{1,20})?$/;
/**
 * What a string of digits may spell: epoch seconds (refused with their likely cause), milliseconds,
 * microseconds or nanoseconds of 2001-09-09 to 2286-11-20.
 */
const EPOCH_DIGITS: readonly (readonly [number, number])[] = [
  [SECONDS_LIKE_FROM, SECONDS_LIKE_TO],
  [1e12, 1e13],
  [1e15, 1e16],
  [1e18, 1e19],
];

/**
 * Milliseconds since the epoch from an RFC 3339 string or a number (or a string of decimal digits)
 * read by its magnitude: epoch milliseconds below 1e14, except those that look like epoch seconds
 * (1e9 to 1e11, which as milliseconds fall in 1970-1973), epoch microseconds from 1e14 and epoch
 * nanoseconds from 1e17 to 1e20 (both 1973 to 5138).
 */
export function parseFlowTime(v: unknown, path: string): number {
  if (typeof v === 'string' && DECIMAL_STRING.test(v)) {
    const n = Number(v);
    // Digits are also how compact dates are written (20260302, 20260302104000): read as a number
    // they would be a time of 1970 or 2612 without a word. Only the magnitudes of epoch times of this
    // era (and epoch seconds, refused below naming them) are taken as such.
    if (!EPOCH_DIGITS.some(([from, to]) => n >= from && n < to))
      fail(
        `${path}: ${JSON.stringify(v)} is neither an RFC 3339 timestamp nor epoch milliseconds, ` +
          `microseconds or nanoseconds of 2001 to 2286`,
      );
    v = n;
  }
  if (typeof v === 'number') {
    // JSON gives no NaN, but 1e400 parses to Infinity (out of range below, as is any number too large).
    if (Number.isNaN(v)) fail(`${path}: NaN is not a number: a number is ${NUMBER_UNITS()}`);
    if (v < 0) fail(`${path}: ${v} is negative: a number is ${NUMBER_UNITS()}`);
    if (v >= NANOS_TO) fail(`${path}: ${v} is out of range: a number is ${NUMBER_UNITS()}`);
    // Nanoseconds this large carry a precision of about 256 ns: rounded to the microsecond first, so
    // that a whole millisecond is not read as the one before.
    if (v >= NANOS_FROM) return Math.floor(Math.round(v / 1000) / 1000);
    if (v >= MICROS_FROM) return Math.floor(v / 1000);
    // Epoch seconds of this century read as milliseconds would date the flow in 1970-1973, when no
    // pod of the snapshot held its addresses; refused with the likely cause instead.
    if (v >= SECONDS_LIKE_FROM && v < SECONDS_LIKE_TO)
      fail(
        `${path}: ${v} looks like epoch seconds (${new Date(v * 1000).toISOString()}), which are not read: ` +
          `a number is ${NUMBER_UNITS(`; this one would be ${new Date(v).toISOString()}`)}: ` +
          `give it multiplied by 1000, or as RFC 3339`,
      );
    return Math.floor(v);
  }
  if (typeof v === 'string') {
    const t = parseRfc3339(v);
    if (Number.isNaN(t)) fail(`${path}: not an RFC 3339 timestamp: ${JSON.stringify(v)}`);
    return t;
  }
  throw wrongType(path, `an RFC 3339 string, or ${NUMBER_UNITS()} as a number or a string of digits`, v);
}

function parse(obj: unknown): Flow {
  if (!isObj(obj))
    throw new FlowInputError('not-an-object', `expected a JSON object, got ${describeValue(obj)}`);
  for (const k of Object.keys(obj)) {
    if (!TOP_KEYS.has(k)) fail(`unknown field ${JSON.stringify(k)}`, 'unknown-field');
  }
  if (obj.src !== undefined && obj.source !== undefined) fail('give either src or source, not both');
  if (obj.dst !== undefined && obj.destination !== undefined)
    fail('give either dst or destination, not both');
  const srcIn = obj.src ?? obj.source;
  const dstIn = obj.dst ?? obj.destination;
  if (obj.time === undefined) fail('time is missing', 'missing-field');
  const time = parseFlowTime(obj.time, 'time');
  if (srcIn === undefined) fail('src is missing', 'missing-field');
  if (dstIn === undefined) fail('dst is missing', 'missing-field');
  const src = parseEndpoint(srcIn, 'src');
  const dst = parseEndpoint(dstIn, 'dst');
  let protocol: Protocol = 'TCP';
  if (obj.protocol !== undefined) {
    if (typeof obj.protocol !== 'string') throw wrongType('protocol', 'a string', obj.protocol);
    const p = PROTOCOLS[obj.protocol.toLowerCase()];
    if (p === undefined)
      throw new FlowInputError(
        'unknown-enum',
        `protocol: unknown value ${JSON.stringify(obj.protocol)} (expected TCP, UDP, SCTP, ICMPv4 or ICMPv6)`,
      );
    protocol = p;
  }
  const icmp = protocol === 'ICMPv4' || protocol === 'ICMPv6';
  checkIPVersions(src.ip, dst.ip, ipPath(srcIn, 'src'), ipPath(dstIn, 'dst'), protocol, icmp);
  let port: number;
  if (obj.port === undefined) {
    if (!icmp) fail('port is missing', 'missing-field');
    port = protocol === 'ICMPv4' ? 8 : 128;
  } else port = icmp ? parsePort(obj.port, 'port', 0, 255) : parsePort(obj.port, 'port', 1, 65535);
  const flow = { time, src, dst, protocol, port } as Flow;
  if (obj.srcPort !== undefined) {
    if (icmp) fail('srcPort: not allowed for ICMP');
    flow.srcPort = parsePort(obj.srcPort, 'srcPort', 1, 65535);
  }
  let verdict: Verdict = 'FORWARDED';
  if (obj.verdict !== undefined) {
    if (typeof obj.verdict !== 'string') throw wrongType('verdict', 'a string', obj.verdict);
    const v = obj.verdict.toUpperCase();
    if (!VERDICT_NAMES.has(v as Verdict))
      throw new FlowInputError(
        'unknown-enum',
        `verdict: unknown value ${JSON.stringify(obj.verdict)} (expected ${VERDICT_LIST})`,
      );
    verdict = v as Verdict;
  }
  flow.verdict = verdict;
  if (obj.dropReason !== undefined) {
    const r = nonEmptyString(obj.dropReason, 'dropReason');
    if (verdict !== 'DROPPED') fail('dropReason: only allowed with verdict DROPPED');
    flow.dropReason = r;
  }
  if (obj.dnsQuery !== undefined) flow.dnsQuery = stripDot(nonEmptyString(obj.dnsQuery, 'dnsQuery'));
  if (obj.count !== undefined) {
    const c = obj.count;
    if (typeof c !== 'number' || !Number.isSafeInteger(c)) throw wrongType('count', 'a positive integer', c);
    if (c < 1) fail(`count: ${c} is not a positive integer`);
    flow.count = c;
  }
  flow.input = 'generic';
  return flow;
}

/**
 * Validates one generic flow object (already parsed from JSON) and returns the normalised Flow, or a
 * FlowInputError whose message names the offending field. Usable directly by an HTTP push endpoint.
 */
export function parseGenericFlow(obj: unknown): Flow | FlowInputError {
  try {
    return parse(obj);
  } catch (err) {
    if (err instanceof FlowInputError) return err;
    throw err;
  }
}

/** One line of a generic JSON-lines file. */
export function parseGenericLine(line: string): Flow | FlowInputError {
  let obj: unknown;
  try {
    obj = JSON.parse(line);
  } catch (err) {
    return new FlowInputError('invalid-json', `invalid JSON: ${(err as Error).message}`);
  }
  return parseGenericFlow(obj);
}
