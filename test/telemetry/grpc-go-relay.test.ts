/**
 * The Hubble Relay client against a real grpc-go server with keepalive enforcement, as Hubble Relay
 * runs it (grpc-go's defaults: MinTime 5 minutes, no pings without a stream). The MinTime is scaled
 * down to 2 s here; the client's keepalive interval is scaled with it.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FlowQueue } from '../../src/telemetry/queue.ts';
import {
  DEFAULT_BACKOFF,
  DEFAULT_KEEPALIVE_MS,
  HubbleSource,
  hubbleChannelOptions,
} from '../../src/telemetry/hubble.ts';
import type { HubbleEvent } from '../../src/telemetry/hubble.ts';
import { grpcGoRelayBinary, startGrpcGoRelay } from './grpc-go-relay.ts';
import type { GrpcGoRelay } from './grpc-go-relay.ts';
import { normalize, waitFor } from './helpers.ts';

/** grpc-go's default keepalive.EnforcementPolicy.MinTime, what Hubble Relay enforces. */
const GRPC_GO_DEFAULT_MIN_TIME_MS = 5 * 60_000;
const MIN_TIME_MS = 2000;
/** ENHANCE_YOUR_CALM, the HTTP/2 error code of a GOAWAY for too many pings. */
const ENHANCE_YOUR_CALM = 11;

let bin: string;
beforeAll(async () => {
  bin = await grpcGoRelayBinary();
}, 300_000);

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function follow(keepaliveMs: number) {
  const relay: GrpcGoRelay = await startGrpcGoRelay(bin, MIN_TIME_MS);
  cleanups.push(() => relay.stop());
  const events: HubbleEvent[] = [];
  const source = new HubbleSource(new FlowQueue({ capacity: 100 }), {
    address: `127.0.0.1:${relay.port}`,
    normalize,
    keepaliveMs,
    backoff: { initialMs: 100, maxMs: 200 },
    random: () => 0,
    onEvent: (e) => events.push(e),
  });
  cleanups.push(() => source.stop());
  source.start();
  return { relay, source, events };
}

describe('HubbleSource against a grpc-go server enforcing keepalive (as Hubble Relay)', () => {
  it('pings a quiet stream no more often than grpc-go accepts by default, and can be told otherwise', () => {
    expect(DEFAULT_KEEPALIVE_MS).toBeGreaterThanOrEqual(GRPC_GO_DEFAULT_MIN_TIME_MS);
    expect(hubbleChannelOptions(DEFAULT_BACKOFF, DEFAULT_KEEPALIVE_MS)['grpc.keepalive_time_ms']).toBe(
      DEFAULT_KEEPALIVE_MS,
    );
    expect(hubbleChannelOptions(DEFAULT_BACKOFF, 60_000)['grpc.keepalive_time_ms']).toBe(60_000);
  });

  it('is cut with GOAWAY too_many_pings when it pings more often than the MinTime (the old 30 s against 5 min, scaled)', async () => {
    const { relay, events } = await follow((MIN_TIME_MS * 30_000) / GRPC_GO_DEFAULT_MIN_TIME_MS);
    await waitFor(() => relay.count('goaway') > 0, 20_000, 'a GOAWAY');
    expect(relay.events).toContain(`goaway ${ENHANCE_YOUR_CALM} too_many_pings`);
    await waitFor(() => events.some((e) => e.type === 'disconnected'), 10_000, 'the stream to fail');
  }, 45_000);

  it('keeps a quiet stream open for several keepalive periods when it pings at the MinTime', async () => {
    const { relay, source, events } = await follow(MIN_TIME_MS);
    // Three strikes would end the connection: four pings without one prove the policy is respected.
    await waitFor(() => relay.count('ping') >= 4, 30_000, 'four keepalive pings');
    expect(relay.count('goaway')).toBe(0);
    expect(relay.count('accept')).toBe(1);
    expect(events.filter((e) => e.type === 'disconnected')).toEqual([]);
    expect(source.metrics().reconnects).toBe(0);
  }, 45_000);
});
