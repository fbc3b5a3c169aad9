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
  const d = direction(
    e.protocol,
    e.isReply,
    e.reply,
    e.traceReason,
    e.l7Type,
    e.syn,
    e.ack,
    e.srcPort,
    e.dstPort,
    e.icmpType,
  );
  return { reply: (d & 1) === 1, rule: DIRECTION_RULES[d >> 1]! };
}

// Rule indexes in DIRECTION_RULES, shifted past the reply bit.
const IS_REPLY = 0 << 1;
const REPLY = 1 << 1;
const TRACE_REASON = 2 << 1;
const L7 = 3 << 1;
const TCP_FLAGS = 4 << 1;
const ICMP = 5 << 1;
const PORTS = 6 << 1;
const OBSERVED = 7 << 1;

/**
 * decideDirection on the evidence's fields, without an object either way: the rule's index in
 * DIRECTION_RULES times two, plus one when the packet is a reply.
 */
export function direction(
  protocol: Protocol,
  isReply: boolean | undefined,
  reply: boolean | undefined,
  traceReason: string | undefined,
  l7Type: string | undefined,
  syn: boolean,
  ack: boolean,
  s: number,
  d: number,
  icmpType: number,
): number {
  if (isReply !== undefined) return IS_REPLY | (isReply ? 1 : 0);
  if (reply === true) return REPLY | 1;
  if (traceReason === 'REPLY') return TRACE_REASON | 1;
  if (traceReason === 'NEW') return TRACE_REASON;
  if (l7Type === 'RESPONSE') return L7 | 1;
  if (l7Type === 'REQUEST') return L7;
  if (protocol === 'ICMPv4' || protocol === 'ICMPv6') {
    const request = protocol === 'ICMPv4' ? 8 : 128;
    const answer = protocol === 'ICMPv4' ? 0 : 129;
    if (icmpType === request) return ICMP;
    if (icmpType === answer) return ICMP | 1;
    return OBSERVED;
  }
  if (protocol === 'TCP' && syn) return TCP_FLAGS | (ack ? 1 : 0);
  if ((d >= EPHEMERAL_PORT_MIN && s < EPHEMERAL_PORT_MIN && s > 0) || (s > 0 && s < 1024 && d >= 1024))
    return PORTS | 1;
  if ((s >= EPHEMERAL_PORT_MIN && d < EPHEMERAL_PORT_MIN && d > 0) || (d > 0 && d < 1024 && s >= 1024))
    return PORTS;
  return OBSERVED;
}

/** The ICMP type that names a connection whose reply was observed (echo reply -> echo request). */
export function icmpRequestType(protocol: 'ICMPv4' | 'ICMPv6', type: number): number {
  if (protocol === 'ICMPv4' && type === 0) return 8;
  if (protocol === 'ICMPv6' && type === 129) return 128;
  return type;
}
