/**
 * IPv4 and IPv6 addresses and CIDR blocks as plain numbers (bigint), enough for ipBlock and
 * `networks` matching. Parsing is strict: anything that is not an address or a CIDR returns undefined.
 */

export interface Addr {
  family: 4 | 6;
  value: bigint;
}

export interface Cidr {
  family: 4 | 6;
  /** The network address (host bits cleared). */
  base: bigint;
  prefix: number;
}

function parseV4(text: string): bigint | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let v = 0n;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined;
    if (p.length > 1 && p.startsWith('0')) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    v = (v << 8n) | BigInt(n);
  }
  return v;
}

function parseV6(text: string): bigint | undefined {
  if (text.length === 0 || text.includes(':::')) return undefined;
  let head = text;
  let tailV4: bigint | undefined;
  const lastColon = text.lastIndexOf(':');
  if (lastColon >= 0 && text.slice(lastColon + 1).includes('.')) {
    tailV4 = parseV4(text.slice(lastColon + 1));
    if (tailV4 === undefined) return undefined;
    head = text.slice(0, lastColon + 1) + '0:0';
  }
  const halves = head.split('::');
  if (halves.length > 2) return undefined;
  const parseGroups = (s: string): number[] | undefined => {
    if (s === '') return [];
    const groups = s.split(':');
    const out: number[] = [];
    for (const g of groups) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const left = parseGroups(halves[0]!);
  const right = halves.length === 2 ? parseGroups(halves[1]!) : [];
  if (!left || !right) return undefined;
  let groups: number[];
  if (halves.length === 2) {
    const missing = 8 - left.length - right.length;
    if (missing < 1) return undefined;
    groups = [...left, ...new Array<number>(missing).fill(0), ...right];
  } else {
    groups = left;
  }
  if (groups.length !== 8) return undefined;
  let v = 0n;
  for (const g of groups) v = (v << 16n) | BigInt(g);
  if (tailV4 !== undefined) v = (v & ~0xffffffffn) | tailV4;
  return v;
}

/** The IPv4-mapped IPv6 block `::ffff:0:0/96`: its addresses are IPv4 addresses written in IPv6 form. */
const V4_MAPPED_PREFIX = 0xffffn << 32n;
const V4_MAPPED_MASK = ~0xffffffffn & ((1n << 128n) - 1n);

function parseAddrAsWritten(text: string): Addr | undefined {
  if (typeof text !== 'string') return undefined;
  if (text.includes(':')) {
    const v = parseV6(text);
    return v === undefined ? undefined : { family: 6, value: v };
  }
  const v = parseV4(text);
  return v === undefined ? undefined : { family: 4, value: v };
}

function isV4Mapped(a: Addr): boolean {
  return a.family === 6 && (a.value & V4_MAPPED_MASK) === V4_MAPPED_PREFIX;
}

/**
 * Parses an address. An IPv4-mapped IPv6 address (`::ffff:10.1.2.3`, as a dual-stack socket reports an
 * IPv4 peer) is the IPv4 address it carries: the packet a policy sees is IPv4, and Kubernetes (Go's
 * `net.IP`) compares it as one.
 */
export function parseAddr(text: string): Addr | undefined {
  const a = parseAddrAsWritten(text);
  return a && isV4Mapped(a) ? { family: 4, value: a.value & 0xffffffffn } : a;
}

export function parseCidr(text: string): Cidr | undefined {
  if (typeof text !== 'string') return undefined;
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  let addr = parseAddrAsWritten(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (!addr || !/^\d{1,3}$/.test(prefixText)) return undefined;
  let prefix = Number(prefixText);
  if (prefix > (addr.family === 4 ? 32 : 128)) return undefined;
  // A block inside ::ffff:0:0/96 holds IPv4-mapped addresses, which are IPv4 addresses (see parseAddr).
  if (isV4Mapped(addr) && prefix >= 96) {
    addr = { family: 4, value: addr.value & 0xffffffffn };
    prefix -= 96;
  }
  const bits = addr.family === 4 ? 32 : 128;
  const hostBits = BigInt(bits - prefix);
  const base = (addr.value >> hostBits) << hostBits;
  return { family: addr.family, base, prefix };
}

export function cidrContains(cidr: Cidr, addr: Addr): boolean {
  if (cidr.family !== addr.family) return false;
  const hostBits = BigInt((cidr.family === 4 ? 32 : 128) - cidr.prefix);
  return addr.value >> hostBits === cidr.base >> hostBits;
}

/** True when `inner` lies entirely inside `outer`. */
export function cidrWithin(inner: Cidr, outer: Cidr): boolean {
  return (
    inner.family === outer.family &&
    inner.prefix >= outer.prefix &&
    cidrContains(outer, { family: inner.family, value: inner.base })
  );
}

export function formatAddr(addr: Addr): string {
  if (addr.family === 4) {
    const v = Number(addr.value);
    return [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join('.');
  }
  const groups: string[] = [];
  for (let i = 7; i >= 0; i--) groups.push(((addr.value >> BigInt(i * 16)) & 0xffffn).toString(16));
  return groups
    .join(':')
    .replace(/(^|:)0(:0)+(:|$)/, '::')
    .replace(/:{3,}/, '::');
}

export function formatCidr(c: Cidr): string {
  return `${formatAddr({ family: c.family, value: c.base })}/${c.prefix}`;
}
