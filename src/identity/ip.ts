import { isIPv4, isIPv6 } from 'node:net';

/** Canonical text of an IP: IPv4 as is, IPv6 lower-case and compressed, IPv4-mapped IPv6 as IPv4. */
export function normaliseIP(ip: string): string {
  if (isIPv4(ip)) return ip;
  if (!isIPv6(ip)) return ip;
  const lower = ip.toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (mapped) return mapped[1]!;
  return compressIPv6(expandIPv6(lower));
}

export function expandIPv6(ip: string): number[] {
  let s = ip;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const o = v4[1]!.split('.').map(Number);
    s =
      s.slice(0, -v4[1]!.length) +
      `${((o[0]! << 8) | o[1]!).toString(16)}:${((o[2]! << 8) | o[3]!).toString(16)}`;
  }
  const [head, tail] = s.includes('::') ? s.split('::') : [s, undefined];
  const h = head ? head.split(':').filter((x) => x !== '') : [];
  const t = tail ? tail.split(':').filter((x) => x !== '') : [];
  const zeros = tail === undefined ? 0 : 8 - h.length - t.length;
  return [...h, ...Array<string>(zeros).fill('0'), ...t].map((x) => parseInt(x, 16));
}

function compressIPv6(groups: number[]): string {
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i > 1) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/**
 * The IPv6 network of `prefix` bits holding `ip`, as a CIDR in canonical text (RFC 5952: compressed,
 * lower-case), the form Kubernetes and `ip` print, so the same network is always written the same way.
 */
export function ipv6Network(ip: string, prefix: number): string {
  // Zero the whole and partial 16-bit groups past the prefix.
  const groups = expandIPv6(ip.toLowerCase());
  for (let i = 0; i < 8; i++) {
    const bits = Math.max(0, Math.min(16, prefix - i * 16));
    groups[i] = bits === 16 ? groups[i]! : bits === 0 ? 0 : groups[i]! & ((0xffff << (16 - bits)) & 0xffff);
  }
  return `${compressIPv6(groups)}/${prefix}`;
}

/** RFC 1918, CGNAT, loopback, link-local, unique-local: addresses that are not "the internet". */
export function isPrivateIP(ip: string): boolean {
  if (isIPv4(ip)) {
    const [a, b] = ip.split('.').map(Number) as [number, number];
    return (
      a === 10 ||
      a === 127 ||
      (a === 172 && b >= 16 && b <= 31) ||
      (a === 192 && b === 168) ||
      (a === 100 && b >= 64 && b <= 127) ||
      (a === 169 && b === 254)
    );
  }
  if (isIPv6(ip)) {
    const g = expandIPv6(ip.toLowerCase());
    const first = g[0]!;
    return (
      (first & 0xfe00) === 0xfc00 ||
      (first & 0xffc0) === 0xfe80 ||
      g.every((x, i) => (i < 7 ? x === 0 : x === 1))
    );
  }
  return false;
}

/** The single-address CIDR of an IP: /32 for IPv4, /128 for IPv6. */
export function hostCIDR(ip: string): string {
  return isIPv4(ip) ? `${ip}/32` : `${ip}/128`;
}
