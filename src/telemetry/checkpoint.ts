/**
 * Resume positions for the Hubble stream. A checkpoint is the time of the newest flow processed plus
 * the identities of the flows processed at exactly that time: Hubble's `since` includes the boundary,
 * so on resume the flows at that instant come again and the identities say which ones to skip.
 * Times are kept in nanoseconds (bigint) because Hubble timestamps carry nanoseconds and two flows a
 * few nanoseconds apart must not collapse.
 */
import { createHash } from 'node:crypto';
import { InputError } from '../model/snapshot.ts';
import type { DecodedFlow, Timestamp } from './proto.ts';

/** The persisted form: JSON-friendly, RFC 3339 time with nanoseconds. */
export interface Checkpoint {
  time: string;
  /** Identities of the flows already processed at exactly `time`. */
  seen: string[];
  /**
   * Flows already processed that were stamped ahead of the clock (they do not move `time`) and are not
   * before `time`: a resume from `time` is sent them again, and skips those listed.
   */
  ahead?: AheadFlow[];
}

/** A flow stamped ahead of the clock: its time (RFC 3339, nanoseconds) and identity. */
export interface AheadFlow {
  time: string;
  id: string;
}

const NS = 1_000_000_000n;
/** More flows than this at one nanosecond is not a real stream; beyond it identities are not kept. */
export const MAX_SEEN = 10_000;

export function timestampToNs(ts: Timestamp): bigint {
  return BigInt(ts.seconds ?? '0') * NS + BigInt(ts.nanos ?? 0);
}

export function nsToTimestamp(ns: bigint): { seconds: string; nanos: number } {
  let s = ns / NS;
  let n = ns % NS;
  if (n < 0n) {
    n += NS;
    s -= 1n;
  }
  return { seconds: s.toString(), nanos: Number(n) };
}

export function formatTime(ns: bigint): string {
  const { seconds, nanos } = nsToTimestamp(ns);
  const iso = new Date(Number(seconds) * 1000).toISOString();
  return `${iso.slice(0, 19)}.${String(nanos).padStart(9, '0')}Z`;
}

const RFC3339 = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/;

/** Parses an RFC 3339 time (0-9 fractional digits) into nanoseconds; undefined when malformed. */
export function parseTime(text: string): bigint | undefined {
  const m = RFC3339.exec(text);
  if (!m) return undefined;
  const ms = Date.parse(`${m[1]}${m[3] === 'Z' ? 'Z' : m[3]}`);
  if (Number.isNaN(ms)) return undefined;
  return BigInt(ms) * 1_000_000n + BigInt((m[2] ?? '').padEnd(9, '0'));
}

/** A flow's identity for boundary de-duplication: its uuid, else a digest of its decoded content. */
export function flowIdentity(flow: DecodedFlow): string {
  if (typeof flow.uuid === 'string' && flow.uuid !== '') return flow.uuid;
  return 'h:' + createHash('sha256').update(JSON.stringify(flow)).digest('base64url').slice(0, 22);
}

/** A mutable resume position: newest time seen plus identities at that time. */
export class Cursor {
  time: bigint | undefined;
  private seen = new Set<string>();

  constructor(start?: Checkpoint) {
    if (start) {
      this.time = parseTime(start.time);
      for (const k of start.seen) this.seen.add(k);
    }
  }

  /** True when a flow at `time` with identity `key` is at or before this position and already counted. */
  has(time: bigint, key: string): boolean {
    return this.time !== undefined && time === this.time && this.seen.has(key);
  }

  /** Moves the position forward to include a flow; a flow older than the position leaves it alone. */
  advance(time: bigint, key: string): void {
    if (this.time === undefined || time > this.time) {
      this.time = time;
      this.seen = new Set([key]);
    } else if (time === this.time && this.seen.size < MAX_SEEN) {
      this.seen.add(key);
    }
  }

  snapshot(): Checkpoint | undefined {
    if (this.time === undefined) return undefined;
    return { time: formatTime(this.time), seen: [...this.seen].sort() };
  }
}

/** Checks a checkpoint read from storage; throws InputError naming the bad field. */
export function validateCheckpoint(value: unknown, source = 'checkpoint'): Checkpoint {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new InputError(`${source}: must be an object with time and seen`);
  const o = value as Record<string, unknown>;
  if (typeof o.time !== 'string' || parseTime(o.time) === undefined)
    throw new InputError(`${source}: time must be an RFC 3339 timestamp, got ${JSON.stringify(o.time)}`);
  if (!Array.isArray(o.seen) || o.seen.some((k) => typeof k !== 'string'))
    throw new InputError(`${source}: seen must be an array of strings`);
  const cp: Checkpoint = { time: o.time, seen: [...(o.seen as string[])] };
  if (o.ahead === undefined) return cp;
  if (!Array.isArray(o.ahead))
    throw new InputError(`${source}: ahead must be an array of objects with time and id`);
  cp.ahead = o.ahead.map((a: unknown, i): AheadFlow => {
    const at = `${source}: ahead[${i}]`;
    if (a === null || typeof a !== 'object' || Array.isArray(a))
      throw new InputError(`${at} must be an object with time and id`);
    const { time, id } = a as Record<string, unknown>;
    if (typeof time !== 'string' || parseTime(time) === undefined)
      throw new InputError(`${at}.time must be an RFC 3339 timestamp, got ${JSON.stringify(time)}`);
    if (typeof id !== 'string' || id === '')
      throw new InputError(`${at}.id must be a non-empty string, got ${JSON.stringify(id)}`);
    return { time, id };
  });
  return cp;
}

/**
 * Identities of the flows received within `windowNs` of the newest one, for de-duplicating a resume
 * that starts `windowNs` before the newest flow (to pick up flows that arrived late and out of
 * order). Bounded: at most `max` identities, the oldest evicted first.
 */
export class RecentIdentities {
  private readonly windowNs: bigint;
  private readonly max: number;
  private readonly byKey = new Map<string, bigint>();
  private newest: bigint | undefined;

  constructor(windowNs: bigint, max = 200_000) {
    this.windowNs = windowNs;
    this.max = max;
  }

  has(time: bigint, key: string): boolean {
    return this.byKey.get(key) === time;
  }

  add(time: bigint, key: string): void {
    if (this.newest === undefined || time > this.newest) this.newest = time;
    const floor = this.newest - this.windowNs;
    if (time < floor) return;
    this.byKey.delete(key);
    this.byKey.set(key, time);
    for (const [k, t] of this.byKey) {
      if (t >= floor && this.byKey.size <= this.max) break;
      this.byKey.delete(k);
    }
  }

  get size(): number {
    return this.byKey.size;
  }
}
