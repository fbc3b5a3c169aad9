import { isIPv6 } from 'node:net';

/**
 * The latest epoch milliseconds a JavaScript Date holds (+275760-09-13T00:00:00Z). Every importer
 * rejects a time beyond it as a bad value: the graph, the report and the policies write times out as
 * dates, and one such time would otherwise end the whole run there.
 */
export const MAX_TIME_MS = 8.64e15;

/** 400 Gregorian years: 146,097 days. */
const GREGORIAN_CYCLE_MS = 146_097 * 86_400_000;

/**
 * Parses an RFC 3339 timestamp with 0 to 9 fractional digits (`2021-11-10T10:40:56.465597700Z`,
 * `2024-07-31T20:38:31+02:00`) into milliseconds since the epoch (fraction truncated to the
 * millisecond; years 0000-9999 as written, those before 1970 negative). Returns NaN when the text is
 * not such a timestamp.
 */
export function parseRfc3339(s: string): number {
  const n = s.length;
  if (n < 20) return NaN;
  const year = digits(s, 0, 4);
  const month = digits(s, 5, 2);
  const day = digits(s, 8, 2);
  const hour = digits(s, 11, 2);
  const minute = digits(s, 14, 2);
  const second = digits(s, 17, 2);
  if (
    s.charCodeAt(4) !== 45 ||
    s.charCodeAt(7) !== 45 ||
    s.charCodeAt(13) !== 58 ||
    s.charCodeAt(16) !== 58 ||
    year < 0 ||
    month < 1 ||
    month > 12 ||
    day < 1 ||
    day > daysInMonth(year, month) ||
    hour < 0 ||
    hour > 23 ||
    minute < 0 ||
    minute > 59 ||
    second < 0 ||
    second > 60
  )
    return NaN;
  const sep = s.charCodeAt(10);
  if (sep !== 84 && sep !== 116 && sep !== 32) return NaN; // T, t or space
  let i = 19;
  let ms = 0;
  if (s.charCodeAt(i) === 46) {
    i++;
    const start = i;
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c < 48 || c > 57) break;
      if (i - start < 3) ms = ms * 10 + (c - 48);
      i++;
    }
    const len = i - start;
    if (len === 0 || len > 9) return NaN;
    if (len === 1) ms *= 100;
    else if (len === 2) ms *= 10;
  }
  let offset = 0;
  const z = s.charCodeAt(i);
  if (z === 90 || z === 122) {
    if (i + 1 !== n) return NaN;
  } else if (z === 43 || z === 45) {
    const oh = digits(s, i + 1, 2);
    const om = digits(s, i + 4, 2);
    if (i + 6 !== n || s.charCodeAt(i + 3) !== 58 || oh < 0 || oh > 23 || om < 0 || om > 59) return NaN;
    offset = (oh * 60 + om) * 60_000 * (z === 43 ? 1 : -1);
  } else {
    return NaN;
  }
  // Date.UTC reads years 0-99 as 1900-1999: those are computed 400 years on (the Gregorian calendar
  // repeats every 400 years, leap days included) and moved back, so the year is taken as written.
  const early = year < 100;
  const t = Date.UTC(early ? year + 400 : year, month - 1, day, hour, minute, Math.min(second, 59));
  return (early ? t - GREGORIAN_CYCLE_MS : t) + ms - offset;
}

function digits(s: string, at: number, count: number): number {
  let v = 0;
  for (let i = at; i < at + count; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return -1;
    v = v * 10 + (c - 48);
  }
  return v;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/**
 * True for a dotted-quad IPv4 address without leading zeros, or any IPv6 text form without a zone ID
 * (`fe80::1%eth0` names an interface of one host: no rule or CIDR can hold it).
 */
export function isIPAddress(s: string): boolean {
  const n = s.length;
  if (n >= 7 && n <= 15) {
    let parts = 0;
    let value = 0;
    let len = 0;
    let ok = true;
    for (let i = 0; i <= n; i++) {
      const c = i === n ? 46 : s.charCodeAt(i);
      if (c === 46) {
        if (len === 0 || value > 255 || (len > 1 && s.charCodeAt(i - len) === 48)) {
          ok = false;
          break;
        }
        parts++;
        value = 0;
        len = 0;
      } else if (c >= 48 && c <= 57) {
        value = value * 10 + (c - 48);
        len++;
      } else {
        ok = false;
        break;
      }
    }
    if (ok && parts === 4) return true;
  }
  return s.includes(':') && !s.includes('%') && isIPv6(s);
}

/**
 * True for a loopback address: IPv4 127.0.0.0/8, IPv6 ::1, or an IPv4-mapped IPv6 address of 127/8
 * (`::ffff:127.0.0.1`, `::ffff:7f00:1`), in any valid text form. Traffic to or from one never leaves
 * the host, or the pod's network namespace, it is seen in: NetworkPolicy cannot affect it.
 */
export function isLoopbackIP(ip: string): boolean {
  const c = ip.charCodeAt(0);
  // '127.' — an IPv6 text cannot start with it.
  if (c === 49) return ip.charCodeAt(1) === 50 && ip.charCodeAt(2) === 55 && ip.charCodeAt(3) === 46;
  // Both IPv6 forms have a first group of zero: the text starts with '0' or '::'.
  if ((c !== 48 && c !== 58) || !ip.includes(':')) return false;
  const g = ipv6Groups(ip);
  if (g === undefined) return false;
  for (let i = 0; i < 5; i++) if (g[i] !== 0) return false;
  if (g[5] === 0xffff) return g[6]! >>> 8 === 127;
  return g[5] === 0 && g[6] === 0 && g[7] === 1;
}

/** The eight 16-bit groups of an IPv6 text (a trailing dotted quad included), or undefined. */
function ipv6Groups(ip: string): number[] | undefined {
  let s = ip;
  const quad = /^(.*:)(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (quad) {
    const [a, b, c, d] = quad.slice(2).map(Number) as [number, number, number, number];
    if (a > 255 || b > 255 || c > 255 || d > 255) return undefined;
    s = `${quad[1]}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const groups = (t: string) => (t === '' ? [] : t.split(':'));
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  const zeros = 8 - head.length - tail.length;
  if (halves.length === 2 ? zeros < 1 : zeros !== 0) return undefined;
  const out: number[] = [];
  for (const t of [...head, ...Array<string>(zeros).fill('0'), ...tail]) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(t)) return undefined;
    out.push(parseInt(t, 16));
  }
  return out;
}

/** Whether either end of a flow has a loopback address (see isLoopbackIP). */
export function hasLoopbackEnd(f: { src: { ip?: string }; dst: { ip?: string } }): boolean {
  return (
    (f.src.ip !== undefined && isLoopbackIP(f.src.ip)) || (f.dst.ip !== undefined && isLoopbackIP(f.dst.ip))
  );
}

/** Removes one trailing dot of a fully qualified DNS name. */
export function stripDot(name: string): string {
  return name.length > 1 && name.charCodeAt(name.length - 1) === 46 ? name.slice(0, -1) : name;
}

/** Integer in [min, max], or undefined. Accepts a decimal string too (protobuf JSON allows it). */
export function asInteger(v: unknown, min: number, max: number): number | undefined {
  let n: number;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string' && /^-?\d{1,20}$/.test(v)) n = Number(v);
  else return undefined;
  return Number.isInteger(n) && n >= min && n <= max ? n : undefined;
}
