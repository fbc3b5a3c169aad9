/**
 * Hubble Relay client: follows `observer.Observer/GetFlows`, normalises each flow and offers it to a
 * FlowQueue. Reconnects with bounded exponential backoff and jitter, resuming with `since` a little
 * before the newest flow received (`resumeOverlapMs`, to catch flows Relay delivers late and out of
 * order) and skipping the flows it already has by identity, so a reconnect neither loses nor repeats
 * flows. `checkpoint()` is the position of the newest flow the consumer has acknowledged - the one to
 * persist and hand back as `checkpoint` after a restart.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { Flow } from '../flows/types.ts';
import { normalizeHubbleFlow } from '../flows/hubble.ts';
import type { FlowQueue } from './queue.ts';
import type { Checkpoint } from './checkpoint.ts';
import {
  Cursor,
  RecentIdentities,
  flowIdentity,
  formatTime,
  nsToTimestamp,
  parseTime,
  timestampToNs,
} from './checkpoint.ts';
import type {
  DecodedFlow,
  FlowFilterMsg,
  GetFlowsRequest,
  GetFlowsResponse,
  GetNodesResponse,
  ObserverClient,
  ServerStatusResponse,
} from './proto.ts';
import { observerClientConstructor, observerService } from './proto.ts';

export interface HubbleTLS {
  /** PEM CA bundle that signed the relay's server certificate (system roots when absent). */
  ca?: string | Buffer;
  /** PEM client certificate and key, for mutual TLS. */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Name to verify the server certificate against, e.g. `ui.hubble-relay.cilium.io`. */
  serverName?: string;
}

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  multiplier: number;
  /** 0..1: each delay is reduced by up to this fraction at random. */
  jitter: number;
  /** A stream that stayed open this long counts as healthy even without messages (delay resets). */
  resetAfterMs: number;
}

export const DEFAULT_RESUME_OVERLAP_MS = 2000;
/**
 * Default interval of the HTTP/2 keepalive pings on the relay channel. grpc-js pings at this interval
 * for as long as a stream is open, whether or not messages arrive. Hubble Relay (and the agent's Hubble
 * server) run grpc-go with its default keepalive enforcement: a ping less than 5 minutes after the
 * previous one is a strike unless the server sent data in between, and after 3 strikes the server sends
 * GOAWAY ENHANCE_YOUR_CALM "too_many_pings" and closes the connection. A quiet stream (a filtered one, a
 * quiet cluster) pinged more often would be cut every few minutes.
 */
export const DEFAULT_KEEPALIVE_MS = 300_000;
/** How long a keepalive ping may go unanswered before the connection is taken for dead. */
export const KEEPALIVE_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_CLOCK_SKEW_MS = 300_000;
/**
 * Identities of flows ahead of the clock remembered to skip them when a resume sends them again: those
 * received (for a reconnect) and, apart, those acknowledged (for the checkpoint, for a restart).
 */
export const MAX_AHEAD = 10_000;

export const DEFAULT_BACKOFF: BackoffOptions = {
  initialMs: 500,
  maxMs: 30_000,
  multiplier: 2,
  jitter: 0.2,
  resetAfterMs: 30_000,
};

/** What a normaliser makes of one decoded Hubble flow (the shape `normalizeHubbleFlow` returns). */
export type HubbleNormalizeResult =
  | { kind: 'flow'; flow: Flow }
  | { kind: 'skip'; reason: string }
  | { kind: 'bad'; error: Error }
  | { kind: 'event' };

export type HubbleNormalizer = (flow: DecodedFlow) => HubbleNormalizeResult;

/** The default: microseg's Hubble normaliser (direction, reserved identities, labels). */
export const normalizeDecodedFlow: HubbleNormalizer = (flow) => normalizeHubbleFlow(flow);

export interface HubbleSourceOptions {
  /** `host:port` of Hubble Relay (4245 in-pod, the Service on 80/443). */
  address: string;
  tls?: HubbleTLS;
  /** Defaults to `normalizeDecodedFlow`. */
  normalize?: HubbleNormalizer;
  /** Source name in metrics and queue accounting. Default `hubble`. */
  name?: string;
  /** Where to resume from (what `checkpoint()` returned before a restart). */
  checkpoint?: Checkpoint;
  whitelist?: FlowFilterMsg[];
  blacklist?: FlowFilterMsg[];
  backoff?: Partial<BackoffOptions>;
  /**
   * A reconnect asks for flows from this long before the newest one received, and skips those it
   * already has; covers flows Relay delivers out of time order. Default 2000 ms; 0 = the exact instant.
   */
  resumeOverlapMs?: number;
  /**
   * A flow stamped more than this ahead of the local clock (a node whose clock is wrong) is learned but
   * does not move the resume position or the checkpoint: resuming from its time would skip every other
   * node's flows until the clock caught up. Default 300 000 ms (5 minutes).
   */
  maxClockSkewMs?: number;
  /**
   * Interval of the keepalive pings that find a connection that died without closing (a relay pod or
   * node gone): it is taken for dead when a ping is not answered within 10 s. Default 300 000 ms (5
   * minutes), the least interval a grpc-go server accepts by default (see `DEFAULT_KEEPALIVE_MS`); set
   * it lower only for a server whose keepalive enforcement policy permits it.
   */
  keepaliveMs?: number;
  /** Random source for jitter (tests pin it). */
  random?: () => number;
  /** Extra gRPC channel options. */
  channelOptions?: grpc.ChannelOptions;
  /** Called for connection events (connected, stream errors, backoff) and stream problems, for logs. */
  onEvent?: (event: HubbleEvent) => void;
  /**
   * Rejected flows and lost events are reported through `onEvent` when they first happen, then at most
   * once per this interval, summing what happened since the last report. Default 60 000 ms.
   */
  reportIntervalMs?: number;
  /**
   * How long after a new stream's opening node_status messages the relay's ServerStatus is asked about
   * the unavailable nodes of earlier streams that the opening did not name (see `nodesToConfirm`): a
   * relay that has just started names only the peers it has learnt so far. Default 30 000 ms.
   */
  nodeSettleMs?: number;
  /**
   * How often, while nodes are counted unavailable on an open stream, the relay's ServerStatus is asked
   * which nodes it cannot reach: one it no longer lists (when it lists them all) is taken out of the
   * unavailable ones although it sends no flow, told connected or, when the relay's GetNodes no longer
   * lists it (it left the cluster), gone. Default 30 000 ms.
   */
  nodeCheckMs?: number;
}

export type HubbleEvent =
  | { type: 'connected'; since?: string }
  | { type: 'disconnected'; error: string; code?: number }
  | { type: 'backoff'; attempt: number; delayMs: number }
  /** Flows the normaliser rejected since the last report: the newest one's error, node and time. */
  | { type: 'invalid'; error: string; node?: string; time?: string; count: number }
  /** Events Hubble reported lost since the last report, per loss source. */
  | { type: 'lost_events'; lost: Record<string, number> }
  /**
   * Relay's node_status changed the state of these nodes (each told once per change, not per
   * message): NODE_ERROR or NODE_UNAVAILABLE (the node's flows are missing from the stream),
   * NODE_CONNECTED or NODE_GONE (also told for the nodes of earlier streams that a new stream's
   * opening messages did not name and the relay no longer knows; NODE_CONNECTED also for a node counted
   * missing whose flows arrive again, which the relay sends without a node_status, or that the relay's
   * ServerStatus no longer lists among the nodes it cannot reach and its GetNodes lists connected;
   * NODE_GONE also for such a node GetNodes does not list). `unavailable`: every node whose flows are missing now, sorted.
   */
  | { type: 'node_status'; state: string; nodes: string[]; message?: string; unavailable: string[] };

/** Relay node states under which that node's flows are missing from the stream. */
const NODE_MISSING_STATES = new Set(['NODE_ERROR', 'NODE_UNAVAILABLE']);
/** At most this many node names in one log line (the count is always there). */
const MAX_LOGGED_NODES = 20;

export const DEFAULT_REPORT_INTERVAL_MS = 60_000;
export const DEFAULT_NODE_SETTLE_MS = 30_000;
export const DEFAULT_NODE_CHECK_MS = 30_000;

/** The least a logger must do for `logHubbleEvent`. */
export interface HubbleEventLog {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
}

/**
 * Logs one HubbleEvent: a failed stream, rejected flows and lost events are warnings (the relay cannot
 * be reached, or the graph misses flows), the rest information.
 */
export function logHubbleEvent(log: HubbleEventLog, e: HubbleEvent): void {
  switch (e.type) {
    case 'connected':
      log.info('hubble relay stream open', e.since !== undefined ? { since: e.since } : {});
      return;
    case 'disconnected':
      log.warn('hubble relay stream failed', {
        error: e.error,
        ...(e.code !== undefined ? { code: grpc.status[e.code] ?? e.code } : {}),
      });
      return;
    case 'backoff':
      log.info('hubble relay: reconnecting after a delay', { attempt: e.attempt, delayMs: e.delayMs });
      return;
    case 'invalid':
      log.warn('hubble flows rejected', {
        error: e.error,
        ...(e.node !== undefined ? { node: e.node } : {}),
        ...(e.time !== undefined ? { flowTime: e.time } : {}),
        count: e.count,
      });
      return;
    case 'lost_events':
      log.warn('hubble lost events', { lost: e.lost });
      return;
    case 'node_status': {
      const fields = {
        state: e.state,
        nodes: e.nodes.slice(0, MAX_LOGGED_NODES),
        ...(e.nodes.length > MAX_LOGGED_NODES ? { nodeCount: e.nodes.length } : {}),
        ...(e.message !== undefined ? { error: e.message } : {}),
        unavailableNodes: e.unavailable.length,
      };
      if (NODE_MISSING_STATES.has(e.state))
        log.warn('hubble relay: flows of these nodes are missing from the stream', fields);
      else if (e.state === 'NODE_GONE') log.info('hubble relay: nodes gone', fields);
      else log.info('hubble relay: nodes connected', fields);
      return;
    }
  }
}

export interface HubbleMetrics {
  /** Flow messages received from the relay (before de-duplication and normalisation). */
  flowsReceived: number;
  /** Normalised records offered to the queue. */
  flowsOffered: number;
  /** Flows skipped because a resume sent them again (already received). */
  duplicates: number;
  /** Flow messages the normaliser rejected, and the last rejection message. */
  invalid: number;
  lastInvalid: string;
  /** Flow messages deliberately not turned into flows (health checks, ...), per reason. */
  skipped: Record<string, number>;
  /** Sum of num_events_lost over lost_events messages, per loss source. */
  lostEvents: Record<string, number>;
  /** node_status messages per state change. */
  nodeStatus: Record<string, number>;
  /**
   * Nodes whose last node_status was NODE_ERROR or NODE_UNAVAILABLE and of which no flow arrived since:
   * their flows are missing.
   */
  unavailableNodes: number;
  /** Stream (re)connections after the first one. */
  reconnects: number;
  /** Streams that ended before any message arrived and before `backoff.resetAfterMs`. */
  failedAttempts: number;
  connected: boolean;
  /** Seconds since the epoch of the acknowledged checkpoint (0 when none). */
  checkpointSeconds: number;
  /** Backpressure pauses (queue at its high-water mark). */
  pauses: number;
  /** Flows stamped more than `maxClockSkewMs` ahead of the local clock (learned, not resumed from). */
  aheadOfClock: number;
}

/**
 * Checks backoff options: each reconnect must wait a positive delay, so a relay that fails at once is
 * not asked again in a tight loop.
 */
export function validateBackoff(b: BackoffOptions): void {
  const positive = (v: number) => typeof v === 'number' && Number.isFinite(v) && v > 0;
  if (!positive(b.initialMs))
    throw new Error(`backoff.initialMs must be a positive number of milliseconds, got ${b.initialMs}`);
  if (!(typeof b.maxMs === 'number' && Number.isFinite(b.maxMs) && b.maxMs >= b.initialMs))
    throw new Error(`backoff.maxMs must be at least backoff.initialMs (${b.initialMs}), got ${b.maxMs}`);
  if (!(typeof b.multiplier === 'number' && Number.isFinite(b.multiplier) && b.multiplier >= 1))
    throw new Error(`backoff.multiplier must be a number of at least 1, got ${b.multiplier}`);
  if (!(typeof b.jitter === 'number' && b.jitter >= 0 && b.jitter < 1))
    throw new Error(`backoff.jitter must be from 0 to less than 1, got ${b.jitter}`);
  if (!positive(b.resetAfterMs))
    throw new Error(`backoff.resetAfterMs must be a positive number of milliseconds, got ${b.resetAfterMs}`);
}

/** Delay before reconnect attempt `attempt` (0-based). */
export function backoffDelay(attempt: number, opts: BackoffOptions, random: () => number): number {
  const base = Math.min(opts.maxMs, opts.initialMs * Math.pow(opts.multiplier, attempt));
  return Math.round(base * (1 - opts.jitter * random()));
}

function pem(v: string | Buffer | undefined): Buffer | null {
  if (v === undefined) return null;
  return Buffer.isBuffer(v) ? v : Buffer.from(v);
}

const PEM_CERTIFICATE_RE = /-----BEGIN CERTIFICATE-----[^-]*-----END CERTIFICATE-----/g;

/**
 * Checks a CA bundle: one or more PEM certificates, each of which parses (text around them, such as the
 * comments of a system bundle, is allowed). gRPC would take anything here and fail every connection
 * later with a TLS error; this says what is wrong when the credentials are built.
 */
function checkCaBundle(ca: string | Buffer): void {
  const text = Buffer.isBuffer(ca) ? ca.toString('latin1') : ca;
  const blocks = text.match(PEM_CERTIFICATE_RE) ?? [];
  const begins = text.split('-----BEGIN CERTIFICATE-----').length - 1;
  if (begins === 0)
    throw new Error('hubble TLS: the CA bundle holds no PEM certificate (-----BEGIN CERTIFICATE-----)');
  if (blocks.length !== begins)
    throw new Error(
      `hubble TLS: the CA bundle has a certificate without its end (-----END CERTIFICATE-----): certificate ${blocks.length + 1} of ${begins}`,
    );
  blocks.forEach((block, i) => {
    try {
      new X509Certificate(block);
    } catch (err) {
      throw new Error(
        `hubble TLS: the CA bundle has a certificate that cannot be read (certificate ${i + 1} of ${blocks.length}): ${(err as Error).message}`,
        { cause: err },
      );
    }
  });
}

/**
 * Whether `address` is what the relay client dials: `host:port` or `[IPv6]:port`, the port from 1 to
 * 65535. An IPv6 address needs its brackets: gRPC reads `fd00::10:4245` as a host without a port, and
 * would dial port 443 of it.
 */
export function isHubbleAddress(address: string): boolean {
  const m = /^[^\s/:[\]]+:(\d+)$/.exec(address) ?? /^\[[0-9a-fA-F:.]+\]:(\d+)$/.exec(address);
  const port = m ? Number(m[1]) : 0;
  return port >= 1 && port <= 65535;
}

/** Reads TLS material from files (CLI/controller flags take paths). */
export function tlsFromFiles(files: {
  ca?: string;
  cert?: string;
  key?: string;
  serverName?: string;
}): HubbleTLS {
  const tls: HubbleTLS = {};
  if (files.ca) tls.ca = readFileSync(files.ca);
  if (files.cert) tls.cert = readFileSync(files.cert);
  if (files.key) tls.key = readFileSync(files.key);
  if (files.serverName) tls.serverName = files.serverName;
  return tls;
}

export function hubbleCredentials(tls: HubbleTLS | undefined): {
  credentials: grpc.ChannelCredentials;
  options: grpc.ChannelOptions;
} {
  if (!tls) return { credentials: grpc.credentials.createInsecure(), options: {} };
  if ((tls.cert === undefined) !== (tls.key === undefined))
    throw new Error('hubble TLS: a client certificate needs its key and a key needs its certificate');
  if (tls.ca !== undefined) checkCaBundle(tls.ca);
  const credentials = grpc.credentials.createSsl(pem(tls.ca), pem(tls.key), pem(tls.cert));
  const options: grpc.ChannelOptions = {};
  if (tls.serverName) {
    options['grpc.ssl_target_name_override'] = tls.serverName;
    options['grpc.default_authority'] = tls.serverName;
  }
  return { credentials, options };
}

/** The options of the relay channel (before the TLS ones and `channelOptions`). */
export function hubbleChannelOptions(backoff: BackoffOptions, keepaliveMs: number): grpc.ChannelOptions {
  return {
    'grpc.keepalive_time_ms': keepaliveMs,
    'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
    'grpc.max_receive_message_length': 16 * 1024 * 1024,
    // The channel's own reconnect backoff (1 s growing to 120 s by default) would stack on ours.
    'grpc.initial_reconnect_backoff_ms': backoff.initialMs,
    'grpc.max_reconnect_backoff_ms': backoff.maxMs,
  };
}

/** Marks a stream message that could not be decoded (the decoder's error message). */
const MALFORMED = Symbol('malformed');

interface Tag {
  t: bigint;
  k: string;
  /** Stamped ahead of the clock: acknowledging it does not move the checkpoint's time. */
  ahead?: true;
}

/** The first and last instants, in ns from the epoch, an RFC 3339 text holds: years 0000 to 9999. */
const MIN_RFC3339_NS = -62_167_219_200n * 1_000_000_000n;
const MAX_RFC3339_NS = 253_402_300_800n * 1_000_000_000n - 1n;

/**
 * `t` as RFC 3339 for an event, or undefined when no RFC 3339 text holds it (a flow stamped in year
 * 300 000, which no Date holds, where `formatTime` would throw, and the report of the flow's real
 * problem with it; or in year 20 000, which `formatTime` would garble).
 */
function eventTime(t: bigint): string | undefined {
  return t > MAX_RFC3339_NS || t < MIN_RFC3339_NS ? undefined : formatTime(t);
}

/** Remembers `key` at `t` in an insertion-ordered map, dropping the oldest entry beyond `max`. */
function remember(map: Map<string, bigint>, key: string, t: bigint, max: number): void {
  map.delete(key);
  map.set(key, t);
  if (map.size > max) map.delete(map.keys().next().value!);
}

export class HubbleSource {
  readonly name: string;
  private readonly opts: HubbleSourceOptions;
  private readonly backoff: BackoffOptions;
  private readonly random: () => number;
  private readonly keepaliveMs: number;
  private readonly queue: FlowQueue;
  /** Newest flow received: where a reconnect resumes (less the overlap). */
  private readonly received: Cursor;
  /** Flows received within the overlap of the newest: skipped when a resume sends them again. */
  private readonly recent: RecentIdentities;
  private readonly overlapNs: bigint;
  /** Resumes never go before this: the start checkpoint, else the first flow received. */
  private knownFrom: bigint | undefined;
  /**
   * When the first stream was asked for, by the local clock (ns). A reconnect before any flow was
   * received resumes from there (less the overlap), so that the flows of the outage are asked for too.
   */
  private openedAt: bigint | undefined;
  /** Newest flow the consumer acknowledged: what `checkpoint()` reports. */
  private readonly committed: Cursor;
  /** Built when the source is made, so that unusable TLS material fails there rather than at start. */
  private readonly credentials: { credentials: grpc.ChannelCredentials; options: grpc.ChannelOptions };
  private client: ObserverClient | undefined;
  private call: grpc.ClientReadableStream<GetFlowsResponse> | undefined;
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private readonly m: HubbleMetrics = {
    flowsReceived: 0,
    flowsOffered: 0,
    duplicates: 0,
    invalid: 0,
    lastInvalid: '',
    skipped: {},
    lostEvents: {},
    nodeStatus: {},
    unavailableNodes: 0,
    reconnects: 0,
    failedAttempts: 0,
    connected: false,
    checkpointSeconds: 0,
    pauses: 0,
    aheadOfClock: 0,
  };
  private readonly maxSkewNs: bigint;
  /** Flows received ahead of the clock, by identity: skipped when a resume sends them again. */
  private readonly ahead = new Map<string, bigint>();
  /**
   * Flows ahead of the clock the consumer acknowledged, by identity, not before the acknowledged
   * position: the checkpoint carries them, so that the resume after a restart skips them.
   */
  private readonly aheadAcked = new Map<string, bigint>();
  /** lost_events received, by content, with their time: skipped when a resume sends them again. */
  private readonly lostSeen = new Map<string, bigint>();
  private connections = 0;
  /** Each node's last state the relay told, as 'missing' or 'connected' (NODE_GONE forgets it). */
  private readonly nodeStates = new Map<string, 'missing' | 'connected'>();
  /**
   * The nodes counted missing, by name, and those named with their cluster (`cluster/node`) by their
   * bare name too: a flow of one (its `node_name`, with or without the cluster) says it is back
   * (`nodeFlowsBack`). Rebuilt whenever the node states change (`tellNodes`).
   */
  private missingByName = new Map<string, string>();
  private missingByBareName = new Map<string, string[]>();
  /**
   * While a new stream's opening node_status messages (the relay names every node it knows, connected
   * then unavailable, before anything else) are coming: the nodes of earlier streams it has not named
   * yet. Those still unnamed when anything else arrives are forgotten, as gone, when last connected, and
   * checked with the relay when last unavailable (`nodesToConfirm`): a node that left the cluster while
   * no stream was open would otherwise be counted unavailable for ever.
   */
  private unconfirmedNodes: Set<string> | undefined;
  /**
   * Nodes unavailable in earlier streams that a new stream's opening messages did not name. Hubble Relay
   * names there only the peers it knows at that instant, and a relay just started learns them from the
   * peer service meanwhile (it never names on that stream the peers it learns later, reachable or not):
   * so such a node may have left the cluster, or not be known to the relay yet. It stays counted until
   * the relay's ServerStatus, asked `nodeSettleMs` after the opening, does not list it among the nodes
   * it cannot reach (and lists them all): then it is forgotten, as gone.
   */
  private nodesToConfirm = new Set<string>();
  private nodeConfirmTimer: ReturnType<typeof setTimeout> | undefined;
  /** A ServerStatus check is under way (the next is scheduled when it is over). */
  private nodeCheckRunning = false;
  /**
   * Per node counted missing, when the relay last said so (a count of such messages): a ServerStatus
   * answer asked for before then is older than what the stream said, and does not take it out.
   */
  private readonly missingSaid = new Map<string, number>();
  private missingSaidCount = 0;
  /** Counts streams, so that a ServerStatus answer arriving after its stream ended is ignored. */
  private streamSeq = 0;
  private readonly nodeSettleMs: number;
  private readonly nodeCheckMs: number;
  private readonly reportIntervalMs: number;
  /** Rejected flows since the last `invalid` event, and when that event was. */
  private invalidUnreported = 0;
  private invalidReportedAt = -Infinity;
  /** Lost events per source since the last `lost_events` event, and when that event was. */
  private lostUnreported: Record<string, number> = {};
  private lostReportedAt = -Infinity;
  /** The newest rejected flow not reported yet (what the next `invalid` event names). */
  private invalidPending: { error: string; node?: string; time?: string } | undefined;
  /** Reports what was held back within an interval once it ends, so that the tail of a burst is told. */
  private reportTimer: ReturnType<typeof setTimeout> | undefined;
  /**
   * Flows received while the queue had no room (another source, e.g. a push, filled it): kept, in
   * order, and offered once there is room, while the stream is paused. Dropping them instead would
   * lose them for good: their position is passed, and a resume would skip them as already received.
   */
  private held: { flow: Flow; tag: Tag | undefined }[] = [];

  constructor(queue: FlowQueue, opts: HubbleSourceOptions) {
    if (!isHubbleAddress(opts.address))
      throw new Error(`hubble address must be host:port, got '${opts.address}'`);
    this.opts = opts;
    this.name = opts.name ?? 'hubble';
    this.queue = queue;
    try {
      this.credentials = hubbleCredentials(opts.tls);
    } catch (err) {
      const message = (err as Error).message;
      throw new Error(
        message.startsWith('hubble TLS:')
          ? message
          : `hubble TLS: the client certificate and key cannot be used: ${message}`,
        { cause: err },
      );
    }
    this.backoff = { ...DEFAULT_BACKOFF, ...opts.backoff };
    validateBackoff(this.backoff);
    this.keepaliveMs = opts.keepaliveMs ?? DEFAULT_KEEPALIVE_MS;
    if (!Number.isInteger(this.keepaliveMs) || this.keepaliveMs <= 0)
      throw new Error(`keepaliveMs must be a positive integer, got ${opts.keepaliveMs}`);
    this.random = opts.random ?? Math.random;
    this.received = new Cursor(opts.checkpoint);
    const overlapMs = opts.resumeOverlapMs ?? DEFAULT_RESUME_OVERLAP_MS;
    if (!Number.isInteger(overlapMs) || overlapMs < 0)
      throw new Error(`resumeOverlapMs must be a non-negative integer, got ${overlapMs}`);
    this.overlapNs = BigInt(overlapMs) * 1_000_000n;
    this.reportIntervalMs = opts.reportIntervalMs ?? DEFAULT_REPORT_INTERVAL_MS;
    this.nodeSettleMs = opts.nodeSettleMs ?? DEFAULT_NODE_SETTLE_MS;
    if (!Number.isInteger(this.nodeSettleMs) || this.nodeSettleMs < 0)
      throw new Error(`nodeSettleMs must be a non-negative integer, got ${opts.nodeSettleMs}`);
    this.nodeCheckMs = opts.nodeCheckMs ?? DEFAULT_NODE_CHECK_MS;
    if (!Number.isInteger(this.nodeCheckMs) || this.nodeCheckMs <= 0)
      throw new Error(`nodeCheckMs must be a positive integer, got ${opts.nodeCheckMs}`);
    const skewMs = opts.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS;
    if (!Number.isInteger(skewMs) || skewMs < 0)
      throw new Error(`maxClockSkewMs must be a non-negative integer, got ${skewMs}`);
    this.maxSkewNs = BigInt(skewMs) * 1_000_000n;
    this.recent = new RecentIdentities(this.overlapNs);
    this.knownFrom = this.received.time;
    if (opts.checkpoint && this.knownFrom !== undefined)
      for (const k of opts.checkpoint.seen) this.recent.add(this.knownFrom, k);
    this.committed = new Cursor(opts.checkpoint);
    // Counted before the restart: skipped when the relay sends them again, and kept in the checkpoint.
    for (const a of opts.checkpoint?.ahead ?? []) {
      const t = parseTime(a.time);
      if (t === undefined) continue;
      remember(this.ahead, a.id, t, MAX_AHEAD);
      remember(this.aheadAcked, a.id, t, MAX_AHEAD);
    }
    this.updateCheckpointGauge();
    queue.register(this.name, (tags) => {
      const before = this.committed.time;
      for (const tag of tags as (Tag | undefined)[]) {
        if (!tag) continue;
        if (tag.ahead) remember(this.aheadAcked, tag.k, tag.t, MAX_AHEAD);
        else this.committed.advance(tag.t, tag.k);
      }
      // A resume from the acknowledged position is not sent flows before it: forget those.
      const floor = this.committed.time;
      if (floor !== undefined && floor !== before)
        for (const [k, t] of this.aheadAcked) if (t < floor) this.aheadAcked.delete(k);
      this.updateCheckpointGauge();
    });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    const { credentials, options } = this.credentials;
    const Ctor = observerClientConstructor();
    this.client = new Ctor(this.opts.address, credentials, {
      ...hubbleChannelOptions(this.backoff, this.keepaliveMs),
      ...options,
      ...this.opts.channelOptions,
    });
    this.loop = this.run();
  }

  /** Stops streaming and closes the channel; resolves when the loop has exited. */
  async stop(): Promise<void> {
    this.running = false;
    this.call?.cancel();
    this.wake?.();
    await this.loop;
    // Flows still held go to the queue if it has room now; what cannot is counted (queue_full). They
    // are not acknowledged, so the next leader is sent them again.
    for (const h of this.held.splice(0)) this.queue.offer(this.name, [h.flow], [h.tag]);
    // What an interval held back is told now rather than never.
    this.flushReports();
    this.client?.close();
    this.client = undefined;
    this.m.connected = false;
    this.nodeStates.clear();
    this.missingSaid.clear();
    this.missingByName.clear();
    this.missingByBareName.clear();
    this.unconfirmedNodes = undefined;
    this.stopNodeConfirm();
    this.m.unavailableNodes = 0;
  }

  /**
   * Position of the newest acknowledged flow, to persist; undefined before any. Before the first
   * on-time flow is acknowledged, acknowledged ahead-of-clock flows still make a checkpoint: at the
   * time the first stream was asked for, with no identities, listing them in `ahead`.
   */
  checkpoint(): Checkpoint | undefined {
    let cp = this.committed.snapshot();
    if (this.aheadAcked.size === 0) return cp;
    if (!cp) {
      // Only without a start checkpoint (that one is the committed position): the first run.
      if (this.openedAt === undefined) return undefined;
      cp = { time: formatTime(this.openedAt), seen: [] };
    }
    const ahead = [...this.aheadAcked]
      .sort(([ka, ta], [kb, tb]) => (ta < tb ? -1 : ta > tb ? 1 : ka < kb ? -1 : ka > kb ? 1 : 0))
      .map(([id, t]) => ({ time: formatTime(t), id }));
    return { ...cp, ahead };
  }

  metrics(): HubbleMetrics {
    return {
      ...this.m,
      lostEvents: { ...this.m.lostEvents },
      nodeStatus: { ...this.m.nodeStatus },
      skipped: { ...this.m.skipped },
    };
  }

  /** One ServerStatus call on the source's channel (call after start()). */
  serverStatus(timeoutMs = 5000): Promise<ServerStatusResponse> {
    return this.unary((client, options, cb) => client.ServerStatus({}, options, cb), timeoutMs);
  }

  /** One GetNodes call on the source's channel (Hubble Relay only; call after start()). */
  getNodes(timeoutMs = 5000): Promise<GetNodesResponse> {
    return this.unary((client, options, cb) => client.GetNodes({}, options, cb), timeoutMs);
  }

  private unary<T>(
    call: (
      client: ObserverClient,
      options: grpc.CallOptions,
      cb: (err: grpc.ServiceError | null, res?: T) => void,
    ) => unknown,
    timeoutMs: number,
  ): Promise<T> {
    const client = this.client;
    if (!client) return Promise.reject(new Error('hubble source is not started'));
    return new Promise((resolve, reject) => {
      call(client, { deadline: Date.now() + timeoutMs }, (err, res) => {
        if (err) reject(err);
        else resolve(res ?? ({} as T));
      });
    });
  }

  private updateCheckpointGauge(): void {
    const t = this.committed.time;
    this.m.checkpointSeconds = t === undefined ? 0 : Number(t / 1_000_000n) / 1000;
  }

  private async run(): Promise<void> {
    let attempt = 0;
    while (this.running) {
      const { gotMessages, openMs } = await this.streamOnce();
      if (!this.running) break;
      // Only a stream that stayed open a while was healthy: one that carried a message or two and then
      // failed (a flapping relay) must not bring the delay back to the start, or it is hammered.
      if (openMs >= this.backoff.resetAfterMs) attempt = 0;
      else if (!gotMessages) this.m.failedAttempts++;
      const delayMs = backoffDelay(attempt, this.backoff, this.random);
      this.opts.onEvent?.({ type: 'backoff', attempt, delayMs });
      attempt++;
      await this.sleep(delayMs);
      // No new stream while flows of the last one are held: its flows would be held behind them, and a
      // queue that stays full (a stalled consumer, a flapping relay) would grow the held flows without
      // bound, one stream's worth per reconnect. The next stream opens once they are in the queue.
      if (this.held.length > 0 && this.running)
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          void this.releaseHeld().then(resolve);
        });
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  /**
   * Runs one GetFlows stream to its end: whether at least one message arrived, and how long the stream
   * was open (from its headers or first message; from the request when neither came).
   */
  private streamOnce(): Promise<{ gotMessages: boolean; openMs: number }> {
    const client = this.client!;
    const request: GetFlowsRequest = { follow: true };
    if (this.opts.whitelist?.length) request.whitelist = this.opts.whitelist;
    if (this.opts.blacklist?.length) request.blacklist = this.opts.blacklist;
    let since = this.received.time ?? this.openedAt;
    this.openedAt ??= BigInt(Date.now()) * 1_000_000n;
    if (since !== undefined) {
      since -= this.overlapNs;
      if (this.knownFrom !== undefined && since < this.knownFrom) since = this.knownFrom;
      request.since = nsToTimestamp(since);
    }
    if (this.connections++ > 0) this.m.reconnects++;
    // What earlier streams said of the nodes holds until this one has named those it knows.
    this.unconfirmedNodes = new Set(this.nodeStates.keys());
    this.stopNodeConfirm();
    this.streamSeq++;

    return new Promise((resolve) => {
      let got = false;
      let finished = false;
      // A quiet stream may send no headers until its first message: then it counts from the request.
      const requestedAtMs = Date.now();
      let openedAtMs: number | undefined;
      // A message the proto cannot decode would otherwise fail the call (INTERNAL), and every resume
      // would be sent it again: it is counted as invalid and skipped, and the stream goes on.
      const def = observerService().GetFlows!;
      const call = client.makeServerStreamRequest<GetFlowsRequest, GetFlowsResponse>(
        def.path,
        def.requestSerialize,
        (buf: Buffer) => {
          try {
            return def.responseDeserialize(buf) as GetFlowsResponse;
          } catch (err) {
            return { [MALFORMED]: err instanceof Error ? err.message : String(err) } as GetFlowsResponse;
          }
        },
        request,
      );
      this.call = call;
      const finish = (err?: grpc.ServiceError) => {
        if (finished) return;
        finished = true;
        this.m.connected = false;
        this.call = undefined;
        // The next stream's opening decides again about the nodes this one could not confirm.
        this.stopNodeConfirm();
        if (this.running)
          this.opts.onEvent?.({
            type: 'disconnected',
            error: err ? err.details || err.message : 'stream ended',
            ...(err ? { code: err.code } : {}),
          });
        resolve({ gotMessages: got, openMs: Date.now() - (openedAtMs ?? requestedAtMs) });
      };
      call.on('metadata', () => {
        openedAtMs ??= Date.now();
        this.m.connected = true;
        const from = since === undefined ? undefined : eventTime(since);
        this.opts.onEvent?.({ type: 'connected', ...(from !== undefined ? { since: from } : {}) });
      });
      call.on('data', (res: GetFlowsResponse) => {
        got = true;
        openedAtMs ??= Date.now();
        this.m.connected = true;
        const malformed = (res as { [MALFORMED]?: string })[MALFORMED];
        try {
          if (malformed !== undefined) {
            this.endNodeGreeting();
            this.noteInvalid(`malformed message: ${malformed}`, {});
          } else this.handle(res);
        } catch (err) {
          // A message this code cannot handle must not take the stream (or the process) down.
          this.noteInvalid(`unhandled message: ${(err as Error).message}`, res);
        }
        if ((this.held.length > 0 || !this.queue.hasRoom()) && !finished) {
          this.m.pauses++;
          call.pause();
          void this.releaseHeld().then(() => {
            if (!finished) call.resume();
          });
        }
      });
      call.on('error', (err: grpc.ServiceError) => finish(err));
      call.on('end', () => finish());
    });
  }

  /** Offers a flow, or holds it when the queue has no room or flows are held already (order is kept). */
  private enqueue(flow: Flow, tag: Tag | undefined): void {
    if (this.held.length === 0 && this.queue.free > 0) {
      this.queue.offer(this.name, [flow], [tag]);
      return;
    }
    if (this.queue.isClosed) {
      this.queue.offer(this.name, [flow], [tag]); // counted as dropped
      return;
    }
    this.held.push({ flow, tag });
  }

  /** Offers held flows, oldest first, as far as the queue has room. */
  private offerHeld(): void {
    let n = 0;
    while (n < this.held.length && this.queue.free > 0) {
      const h = this.held[n++]!;
      this.queue.offer(this.name, [h.flow], [h.tag]);
    }
    if (n > 0) this.held.splice(0, n);
  }

  /**
   * Resolves once the queue is below its low-water mark with every held flow offered (or the queue is
   * closed: then what is held is offered, and counted as dropped).
   */
  private async releaseHeld(): Promise<void> {
    for (;;) {
      await this.queue.waitForRoom();
      if (this.queue.isClosed) {
        for (const h of this.held.splice(0)) this.queue.offer(this.name, [h.flow], [h.tag]);
        return;
      }
      this.offerHeld();
      if (this.held.length === 0 && this.queue.hasRoom()) return;
      // Another source took the room first: wait for the consumer again.
      await new Promise((r) => setImmediate(r));
    }
  }

  /** Counts a rejected flow message; reports it when no report was made within the interval. */
  private noteInvalid(message: string, res: GetFlowsResponse, t?: bigint): void {
    this.m.invalid++;
    this.m.lastInvalid = message;
    this.queue.countDrop(this.name, 'invalid');
    this.invalidUnreported++;
    const node = res.flow?.node_name ?? res.node_name;
    const time = t === undefined ? undefined : eventTime(t);
    this.invalidPending = {
      error: message,
      ...(typeof node === 'string' && node !== '' ? { node } : {}),
      ...(time !== undefined ? { time } : {}),
    };
    if (Date.now() - this.invalidReportedAt < this.reportIntervalMs) this.scheduleReport();
    else this.reportInvalid();
  }

  /**
   * Follows each node's state from node_status, and tells the nodes whose state changed: the relay
   * repeats a node's error on every failed attempt to reach it, and that is told once.
   */
  private noteNodeStatus(state: string, names: string[], message: string | undefined): void {
    if (this.unconfirmedNodes !== undefined) {
      if (state === 'NODE_CONNECTED' || state === 'NODE_UNAVAILABLE')
        for (const n of names) this.unconfirmedNodes.delete(n);
      else this.endNodeGreeting();
    }
    // The relay named it: its state is what it says now.
    for (const n of names) this.nodesToConfirm.delete(n);
    const next = NODE_MISSING_STATES.has(state)
      ? 'missing'
      : state === 'NODE_CONNECTED'
        ? 'connected'
        : state === 'NODE_GONE'
          ? undefined
          : null;
    if (next === null) return;
    if (next === 'missing') for (const n of names) this.missingSaid.set(n, ++this.missingSaidCount);
    const changed = [...new Set(names)].filter((n) => n !== '' && this.nodeStates.get(n) !== next);
    if (changed.length === 0) return;
    for (const n of changed) {
      if (next === undefined) this.nodeStates.delete(n);
      else this.nodeStates.set(n, next);
    }
    this.tellNodes(state, changed, message);
  }

  /** Sets the gauge from the node states and tells the nodes whose state changed. */
  private tellNodes(state: string, changed: string[], message?: string): void {
    const unavailable = [...this.nodeStates].filter(([, v]) => v === 'missing').map(([n]) => n);
    unavailable.sort();
    this.m.unavailableNodes = unavailable.length;
    for (const n of this.missingSaid.keys())
      if (this.nodeStates.get(n) !== 'missing') this.missingSaid.delete(n);
    this.missingByName = new Map(unavailable.map((n) => [n, n]));
    this.missingByBareName = new Map();
    for (const n of unavailable) {
      const slash = n.lastIndexOf('/');
      if (slash < 0) continue;
      const bare = n.slice(slash + 1);
      const named = this.missingByBareName.get(bare);
      if (named === undefined) this.missingByBareName.set(bare, [n]);
      else named.push(n);
    }
    this.opts.onEvent?.({
      type: 'node_status',
      state,
      nodes: changed,
      ...(message ? { message } : {}),
      unavailable,
    });
    this.scheduleNodeCheck(this.nodeCheckMs);
  }

  /**
   * A flow from `node` arrived while some nodes are counted missing. Hubble Relay retries the nodes it
   * cannot reach every few seconds during a follow stream and, once one answers, sends its flows on the
   * stream without a node_status message: a node counted missing whose flow arrives is connected again
   * (told as NODE_CONNECTED). Its name may be given with its cluster (`cluster/node`, the agent's name
   * for itself) on one side and without on the other; two names that both give a cluster must match.
   */
  private nodeFlowsBack(node: string | undefined): void {
    if (node === undefined || node === '') return;
    let back: string[] | undefined;
    const exact = this.missingByName.get(node);
    if (exact !== undefined) back = [exact];
    else {
      const slash = node.lastIndexOf('/');
      if (slash < 0) back = this.missingByBareName.get(node);
      else {
        const bare = node.slice(slash + 1);
        if (this.missingByName.has(bare)) back = [bare];
      }
    }
    if (back === undefined || back.length === 0) return;
    for (const n of back) {
      this.nodeStates.set(n, 'connected');
      this.nodesToConfirm.delete(n);
    }
    this.tellNodes('NODE_CONNECTED', [...back].sort());
  }

  /**
   * A stream's opening node_status messages are over. The nodes of earlier streams it did not name are
   * not known to the relay now: those last connected are forgotten as if it had said NODE_GONE; those
   * unavailable stay counted until the relay's ServerStatus settles them (`nodesToConfirm`).
   */
  private endNodeGreeting(): void {
    const unnamed = this.unconfirmedNodes;
    if (unnamed === undefined) return;
    this.unconfirmedNodes = undefined;
    const gone: string[] = [];
    for (const n of unnamed) {
      if (this.nodeStates.get(n) === 'missing') this.nodesToConfirm.add(n);
      else {
        this.nodeStates.delete(n);
        gone.push(n);
      }
    }
    if (gone.length > 0) this.tellNodes('NODE_GONE', gone.sort());
    // The first check waits `nodeSettleMs` when there are nodes to confirm (not what that tell set).
    if (this.nodeConfirmTimer !== undefined) clearTimeout(this.nodeConfirmTimer);
    this.nodeConfirmTimer = undefined;
    this.scheduleNodeCheck(this.nodesToConfirm.size > 0 ? this.nodeSettleMs : this.nodeCheckMs);
  }

  /**
   * While nodes are counted missing on an open stream whose opening is over, the relay's ServerStatus is
   * asked about them after `delayMs` (`nodeSettleMs` after the opening when it left some unnamed, then
   * every `nodeCheckMs`), one check at a time.
   */
  private scheduleNodeCheck(delayMs: number): void {
    if (this.nodeConfirmTimer !== undefined || this.nodeCheckRunning) return;
    if (!this.running || this.call === undefined || this.unconfirmedNodes !== undefined) return;
    if (this.m.unavailableNodes === 0) return;
    const seq = this.streamSeq;
    this.nodeConfirmTimer = setTimeout(() => {
      this.nodeConfirmTimer = undefined;
      void this.confirmNodes(seq);
    }, delayMs);
    this.nodeConfirmTimer.unref?.();
  }

  private stopNodeConfirm(): void {
    if (this.nodeConfirmTimer !== undefined) clearTimeout(this.nodeConfirmTimer);
    this.nodeConfirmTimer = undefined;
    this.nodesToConfirm.clear();
  }

  /**
   * Asks the relay which nodes it cannot reach. When it lists them all (it names at most 10), a node
   * counted missing that it does not list is taken out: one to confirm (the opening did not name it) is
   * one it no longer knows or reaches, forgotten as gone. Any other is reachable again (the relay attaches
   * a peer it reaches to the stream, with no node_status) or has left the cluster (its peer removed):
   * ServerStatus does not say which, so the relay's GetNodes, which lists every node it knows with its
   * state, is asked. One it lists connected is told NODE_CONNECTED; one it does not list, NODE_GONE (and
   * forgotten); one it lists in another state stays counted. A relay that does not answer GetNodes (an
   * agent's Hubble server does not serve it) has them told NODE_CONNECTED. One ServerStatus lists stays
   * unavailable, and so does one the stream said missing again after the question was sent (the answer
   * is older). Without an answer (or with a partial list) they stay counted and are asked about again at
   * the next check.
   */
  private async confirmNodes(seq: number): Promise<void> {
    this.nodeCheckRunning = true;
    try {
      await this.checkNodes(seq);
    } finally {
      this.nodeCheckRunning = false;
    }
    // Told within the check: what a tell schedules is this one.
    if (this.isStream(seq)) this.scheduleNodeCheck(this.nodeCheckMs);
  }

  /** True while stream `seq` is the one open. */
  private isStream(seq: number): boolean {
    return seq === this.streamSeq && this.running && this.call !== undefined;
  }

  private async checkNodes(seq: number): Promise<void> {
    const asked = this.missingSaidCount;
    // Still counted, and not said missing by the stream since the question was sent.
    const stillOut = (n: string) =>
      this.nodeStates.get(n) === 'missing' && (this.missingSaid.get(n) ?? 0) <= asked;
    const res = await this.serverStatus().catch(() => undefined);
    if (!this.isStream(seq) || res === undefined) return;
    const listed = new Set(res.unavailable_nodes ?? []);
    const count = res.num_unavailable_nodes?.value ?? 0;
    const complete = res.num_unavailable_nodes !== undefined && listed.size >= count;
    const gone: string[] = [];
    const reached: string[] = [];
    for (const n of this.nodeStates.keys()) {
      if (!complete || listed.has(n) || !stillOut(n)) continue;
      if (this.nodesToConfirm.has(n)) {
        this.nodeStates.delete(n);
        gone.push(n);
      } else reached.push(n);
    }
    this.nodesToConfirm.clear();
    if (gone.length > 0) this.tellNodes('NODE_GONE', gone.sort());
    if (reached.length === 0) return;
    const nodes = await this.getNodes().catch(() => undefined);
    if (!this.isStream(seq)) return;
    const known =
      nodes === undefined
        ? undefined
        : new Map((nodes.nodes ?? []).map((n) => [n.name ?? '', n.state ?? 'UNKNOWN_NODE_STATE']));
    const back: string[] = [];
    const left: string[] = [];
    for (const n of reached) {
      if (!stillOut(n)) continue;
      if (known === undefined || known.get(n) === 'NODE_CONNECTED') {
        this.nodeStates.set(n, 'connected');
        back.push(n);
      } else if (!known.has(n)) {
        this.nodeStates.delete(n);
        left.push(n);
      }
    }
    if (left.length > 0) this.tellNodes('NODE_GONE', left.sort());
    if (back.length > 0) this.tellNodes('NODE_CONNECTED', back.sort());
  }

  private reportInvalid(): void {
    if (!this.invalidPending || this.invalidUnreported === 0) return;
    this.invalidReportedAt = Date.now();
    this.opts.onEvent?.({ type: 'invalid', ...this.invalidPending, count: this.invalidUnreported });
    this.invalidUnreported = 0;
    this.invalidPending = undefined;
  }

  private reportLost(): void {
    if (Object.keys(this.lostUnreported).length === 0) return;
    this.lostReportedAt = Date.now();
    this.opts.onEvent?.({ type: 'lost_events', lost: this.lostUnreported });
    this.lostUnreported = {};
  }

  /** Reports what an interval held back when it ends (and at stop), without waiting for the next one. */
  private scheduleReport(): void {
    if (this.reportTimer !== undefined) return;
    const due = Math.min(
      this.invalidPending ? this.invalidReportedAt + this.reportIntervalMs : Infinity,
      Object.keys(this.lostUnreported).length > 0 ? this.lostReportedAt + this.reportIntervalMs : Infinity,
    );
    if (!Number.isFinite(due)) return;
    this.reportTimer = setTimeout(() => this.flushReports(), Math.max(0, due - Date.now()));
    this.reportTimer.unref?.();
  }

  private flushReports(): void {
    if (this.reportTimer !== undefined) clearTimeout(this.reportTimer);
    this.reportTimer = undefined;
    this.reportInvalid();
    this.reportLost();
  }

  private handle(res: GetFlowsResponse): void {
    const kind =
      res.response_types ??
      (res.flow ? 'flow' : res.node_status ? 'node_status' : res.lost_events ? 'lost_events' : undefined);
    if (kind !== 'node_status' || !res.node_status) this.endNodeGreeting();
    if (kind === 'node_status' && res.node_status) {
      const state = res.node_status.state_change ?? 'UNKNOWN_NODE_STATE';
      this.m.nodeStatus[state] = (this.m.nodeStatus[state] ?? 0) + 1;
      this.noteNodeStatus(state, res.node_status.node_names ?? [], res.node_status.message);
      return;
    }
    if (kind === 'lost_events' && res.lost_events) {
      // The agents keep their lost_events in the ring buffer with the flows, so a resume sends those
      // of its window again: skipped by time and content, as flows are.
      const lt = res.time ? timestampToNs(res.time) : undefined;
      if (lt !== undefined) {
        const key = flowIdentity(res as DecodedFlow);
        if (this.lostSeen.get(key) === lt) return;
        remember(this.lostSeen, key, lt, MAX_AHEAD);
        // A resume asks for nothing before the newest flow received less the overlap: forget those.
        const floor = this.received.time === undefined ? undefined : this.received.time - this.overlapNs;
        if (floor !== undefined) for (const [k, t] of this.lostSeen) if (t < floor) this.lostSeen.delete(k);
      }
      const src = res.lost_events.source ?? 'UNKNOWN_LOST_EVENT_SOURCE';
      const n = Number(res.lost_events.num_events_lost ?? '0');
      const lost = Number.isFinite(n) ? n : 0;
      this.m.lostEvents[src] = (this.m.lostEvents[src] ?? 0) + lost;
      this.lostUnreported[src] = (this.lostUnreported[src] ?? 0) + lost;
      if (Date.now() - this.lostReportedAt >= this.reportIntervalMs) this.reportLost();
      else this.scheduleReport();
      return;
    }
    if (kind !== 'flow' || !res.flow) return;
    const flow = res.flow;
    this.m.flowsReceived++;
    if (this.m.unavailableNodes > 0) {
      // The node that observed it (the flow's node_name; the response's, which the relay copies from it).
      const node = flow.node_name;
      this.nodeFlowsBack(typeof node === 'string' && node !== '' ? node : res.node_name);
    }
    const ts = flow.time ?? res.time;
    const t = ts ? timestampToNs(ts) : undefined;
    const key = flowIdentity(flow);
    // Received (or, before a restart, counted) ahead of the clock, sent again by a resume: skipped even
    // when the clock has caught up with it since, or the new leader's clock judges it otherwise.
    if (t !== undefined && this.ahead.get(key) === t) {
      this.m.duplicates++;
      this.queue.countDrop(this.name, 'duplicate');
      return;
    }
    // Ahead of the clock: remembered apart, so it moves neither the resume position nor the checkpoint.
    const ahead = t !== undefined && t > BigInt(Date.now()) * 1_000_000n + this.maxSkewNs;
    if (ahead) {
      this.m.aheadOfClock++;
      remember(this.ahead, key, t, MAX_AHEAD);
    } else if (t !== undefined) {
      if (this.recent.has(t, key)) {
        this.m.duplicates++;
        this.queue.countDrop(this.name, 'duplicate');
        return;
      }
      this.received.advance(t, key);
      this.recent.add(t, key);
      this.knownFrom ??= t;
    }
    let r: HubbleNormalizeResult;
    try {
      r = (this.opts.normalize ?? normalizeDecodedFlow)(flow);
    } catch (err) {
      r = { kind: 'bad', error: err instanceof Error ? err : new Error(String(err)) };
    }
    if (r.kind === 'bad') {
      this.noteInvalid(r.error.message, res, t);
      return;
    }
    if (r.kind !== 'flow') {
      const reason = r.kind === 'skip' ? r.reason : 'event';
      this.m.skipped[reason] = (this.m.skipped[reason] ?? 0) + 1;
      this.queue.countDrop(this.name, 'ignored');
      return;
    }
    this.m.flowsOffered++;
    this.enqueue(
      r.flow,
      t === undefined ? undefined : ({ t, k: key, ...(ahead ? { ahead: true } : {}) } satisfies Tag),
    );
  }
}
