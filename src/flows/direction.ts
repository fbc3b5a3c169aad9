import type { Protocol } from './types.ts';

/**
 * Which rule decided that an observed packet travels in the connection's direction (initiator to
 * responder) or against it (a reply, which is flipped). Rules are tried in this order:
 *
 * 1. `is_reply`      — Hubble's explicit flag (present = known).
 * 2. `reply`         — the deprecated flag; only `true` carries information.
 * 3. `trace_reason`  — conntrack state of the packet: `REPLY` is a reply, `NEW` an initiator.
 * 4. `l7`            — L7 records: `RESPONSE` is a reply, `REQUEST` an initiator.
 * 5. `tcp-flags`     — SYN without ACK opens a connection; SYN+ACK answers one.
 * 6. `icmp`          — echo request (v4 8, v6 128) versus echo reply (v4 0, v6 129).
 * 7. `ports`         — a well-known or service port talking to an ephemeral port (>= 32768, or
 *                      >= 1024 from a port below 1024) is a reply; the reverse is an initiator.
 * 8. `observed`      — nothing decided: the packet direction is taken as the connection direction.
 */
export type DirectionRule =
  'is_reply' | 'reply' | 'trace_reason' | 'l7' | 'tcp-flags' | 'icmp' | 'ports' | 'observed';

export const DIRECTION_RULES: readonly DirectionRule[] = [
  'is_reply',
  'reply',
  'trace_reason',
  'l7',
  'tcp-flags',
  'icmp',
  'ports',
  'observed',
];

export interface DirectionEvidence {
  protocol: Protocol;
  isReply: boolean | undefined;
  reply: boolean | undefined;
  /** 'NEW' | 'REPLY' | other conntrack state names (ignored). */
  traceReason: string | undefined;
  /** 'REQUEST' | 'RESPONSE' | other (ignored). */
  l7Type: string | undefined;
  syn: boolean;
  ack: boolean;
  srcPort: number;
  dstPort: number;
  icmpType: number;
}

export const EPHEMERAL_PORT_MIN = 32768;

/** Decides whether the observed packet is a reply; the first rule with an opinion wins. */
export function decideDirection(e: DirectionEvidence): { reply: boolean; rule: DirectionRule } {
  if (e.isReply !== undefined) return { reply: e.isReply, rule: 'is_reply' };
  if (e.reply === true) return { reply: true, rule: 'reply' };
  if (e.traceReason === 'REPLY') return { reply: true, rule: 'trace_reason' };
  if (e.traceReason === 'NEW') return { reply: false, rule: 'trace_reason' };
  if (e.l7Type === 'RESPONSE') return { reply: true, rule: 'l7' };
  if (e.l7Type === 'REQUEST') return { reply: false, rule: 'l7' };
  const p = e.protocol;
  if (p === 'ICMPv4' || p === 'ICMPv6') {
    const request = p === 'ICMPv4' ? 8 : 128;
    const answer = p === 'ICMPv4' ? 0 : 129;
    if (e.icmpType === request) return { reply: false, rule: 'icmp' };
    if (e.icmpType === answer) return { reply: true, rule: 'icmp' };
    return { reply: false, rule: 'observed' };
  }
  if (p === 'TCP' && e.syn) return { reply: e.ack, rule: 'tcp-flags' };
  const s = e.srcPort;
  const d = e.dstPort;
  if ((d >= EPHEMERAL_PORT_MIN && s < EPHEMERAL_PORT_MIN && s > 0) || (s > 0 && s < 1024 && d >= 1024))
    return { reply: true, rule: 'ports' };
  if ((s >= EPHEMERAL_PORT_MIN && d < EPHEMERAL_PORT_MIN && d > 0) || (d > 0 && d < 1024 && s >= 1024))
    return { reply: false, rule: 'ports' };
  return { reply: false, rule: 'observed' };
}

/** The ICMP type that names a connection whose reply was observed (echo reply -> echo request). */
export function icmpRequestType(protocol: 'ICMPv4' | 'ICMPv6', type: number): number {
  if (protocol === 'ICMPv4' && type === 0) return 8;
  if (protocol === 'ICMPv6' && type === 129) return 128;
  return type;
}
