import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Flow } from '../../src/flows/types.ts';
import { FlowQueue } from '../../src/telemetry/queue.ts';
import {
  HubbleSource,
  backoffDelay,
  DEFAULT_BACKOFF,
  hubbleCredentials,
  isHubbleAddress,
  logHubbleEvent,
  normalizeDecodedFlow,
} from '../../src/telemetry/hubble.ts';
import type { HubbleEvent, HubbleSourceOptions } from '../../src/telemetry/hubble.ts';
import { jsonLogger } from '../../src/controller/log.ts';
import { formatPrometheus } from '../../src/telemetry/prom.ts';
import { telemetryMetricFamilies } from '../../src/telemetry/metrics.ts';
import { flowIdentity, validateCheckpoint } from '../../src/telemetry/checkpoint.ts';
import { observerService } from '../../src/telemetry/proto.ts';
import { FakeRelay, decoded, scriptedFlow } from './fake-relay.ts';
import { consume, normalize, waitFor } from './helpers.ts';

/** How the normaliser refuses a verdict number Cilium's enum does not have (the relay's flow of verdict 42). */
const VERDICT_42 =
  'verdict: unknown value 42 (expected FORWARDED, DROPPED, ERROR, AUDIT, REDIRECTED, TRACED, TRANSLATED or VERDICT_UNKNOWN, or a number from 0 to 7)';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(relay: FakeRelay, opts: Partial<HubbleSourceOptions> = {}, capacity = 1000) {
  if (relay.port === 0) await relay.start();
  cleanups.push(() => relay.stop());
  const queue = new FlowQueue({ capacity });
  const source = new HubbleSource(queue, {
    address: `127.0.0.1:${relay.port}`,
    normalize,
    backoff: { initialMs: 20, maxMs: 200 },
    random: () => 0,
    ...opts,
  });
  cleanups.push(() => source.stop());
  return { queue, source };
}

/** setup, then a consumer of the queue (stopped after the test), then the source started. */
async function started(relay: FakeRelay, opts: Partial<HubbleSourceOptions> = {}, capacity = 1000) {
  const { queue, source } = await setup(relay, opts, capacity);
  const c = consume(queue);
  cleanups.push(c.stop);
  source.start();
  return { queue, source, c };
}

/** A checkpoint at 100 s past the epoch (1970-01-01T00:01:40Z) that has seen no flow. */
const at100s = () => ({ time: '1970-01-01T00:01:40Z', seen: [] });

/** An onEvent that keeps the `invalid` reports in `events`. */
const invalidInto = (events: HubbleEvent[]) => (e: HubbleEvent) => {
  if (e.type === 'invalid') events.push(e);
};

/**
 * A node_status as Hubble Relay sends it mid-stream: with the relay's own node_name and the time it was
 * sent (`seconds`).
 */
const relayNodeStatus = (state_change: string, node_names: string[], seconds: number, message?: string) => ({
  node_status: { state_change, node_names, ...(message !== undefined ? { message } : {}) },
  node_name: 'kind-kind/kind-control-plane',
  time: { seconds: String(seconds) },
});
const ports = (flows: Flow[]) => flows.map((f) => f.srcPort! - 40000);
const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

describe('backoffDelay', () => {
  it('doubles from the initial delay up to the maximum, jitter only shortening it', () => {
    const o = { initialMs: 100, maxMs: 1000, multiplier: 2, jitter: 0.5, resetAfterMs: 0 };
    expect([0, 1, 2, 3, 4, 5].map((a) => backoffDelay(a, o, () => 0))).toEqual([
      100, 200, 400, 800, 1000, 1000,
    ]);
    expect([0, 1, 4].map((a) => backoffDelay(a, o, () => 1))).toEqual([50, 100, 500]);
    expect(DEFAULT_BACKOFF).toEqual({
      initialMs: 500,
      maxMs: 30_000,
      multiplier: 2,
      jitter: 0.2,
      resetAfterMs: 30_000,
    });
  });
});

describe('HubbleSource against a scripted relay', () => {
  it('resumes with since after a cut stream: no gap, boundary flows not counted twice', async () => {
    const relay = new FakeRelay();
    // Flows 4, 5 and 6 share one nanosecond-precise instant; the first stream is cut after flow 5.
    relay.publish(
      scriptedFlow(1, 100),
      scriptedFlow(2, 101),
      scriptedFlow(3, 102),
      scriptedFlow(4, 103, 5),
      scriptedFlow(5, 103, 5),
      scriptedFlow(6, 103, 5),
      ...range(7, 10).map((n) => scriptedFlow(n, 97 + n)),
    );
    relay.cutAfter = [5];
    const events: string[] = [];
    const { queue, source, c } = await started(relay, {
      checkpoint: { time: '1970-01-01T00:01:39Z', seen: [] },
      resumeOverlapMs: 0,
      onEvent: (e) => events.push(e.type),
    });
    await waitFor(() => c.flows.length >= 10, 5000, '10 flows');
    expect(ports(c.flows)).toEqual(range(1, 10));
    expect(relay.requests.map((r) => r.since)).toEqual([
      { seconds: '99', nanos: 0 },
      { seconds: '103', nanos: 5 },
    ]);
    expect(relay.requests.every((r) => r.follow === true)).toBe(true);
    const m = source.metrics();
    expect(m).toMatchObject({
      flowsReceived: 12,
      flowsOffered: 10,
      duplicates: 2,
      reconnects: 1,
      failedAttempts: 0,
    });
    expect(events).toEqual(['connected', 'disconnected', 'backoff', 'connected']);
    // Live flows keep coming on the resumed stream.
    relay.publish(scriptedFlow(11, 108), scriptedFlow(12, 109));
    await waitFor(() => c.flows.length >= 12, 5000, '12 flows');
    expect(ports(c.flows)).toEqual(range(1, 12));
    await waitFor(() => source.checkpoint()?.time === '1970-01-01T00:01:49.000000000Z');
    expect(source.checkpoint()!.seen).toEqual([flowIdentity(decoded(scriptedFlow(12, 109)).flow!)]);
    expect(queue.metrics().dropped).toEqual({ hubble: { duplicate: 2 } });
  });

  it('a reconnect before any flow came asks for the flows since the first stream was asked for', async () => {
    const relay = new FakeRelay();
    const { queue, source } = await setup(relay);
    const c = consume(queue);
    cleanups.push(c.stop);
    const before = Math.floor(Date.now() / 1000);
    source.start();
    await waitFor(() => relay.connectionCount === 1, 5000, 'a stream');
    const opened = Math.ceil(Date.now() / 1000);
    relay.cutAll();
    await waitFor(() => relay.connectionCount === 2, 5000, 'a reconnect');
    expect(relay.requests[0]!.since).toBeUndefined();
    const since = relay.requests[1]!.since as { seconds: string } | undefined;
    expect(since).toBeDefined();
    // When the first stream was asked for, less the overlap (at most a few seconds).
    expect(Number(since!.seconds)).toBeGreaterThanOrEqual(before - 10);
    expect(Number(since!.seconds)).toBeLessThanOrEqual(opened);
    // A flow of the outage, which the relay still holds, is learned.
    relay.publish(scriptedFlow(1, Math.floor(Date.now() / 1000)));
    await waitFor(() => c.flows.length >= 1, 5000, '1 flow');
  });

  it('a flow stamped far ahead of the clock (a node with a wrong clock) does not move the resume point', async () => {
    const relay = new FakeRelay();
    const future = Math.floor(Date.now() / 1000) + 3600;
    relay.publish(scriptedFlow(1, 100), scriptedFlow(9, future), scriptedFlow(2, 101));
    const { queue, source, c } = await started(relay, { checkpoint: at100s() });
    await waitFor(() => c.flows.length >= 3, 5000, '3 flows');
    relay.cutAll();
    await waitFor(() => relay.connectionCount === 2, 5000, 'a reconnect');
    relay.publish(scriptedFlow(3, 102));
    await waitFor(() => c.flows.length >= 4, 5000, '4 flows');
    // The skewed flow is learned once; the flows after it, before and after the reconnect, are not lost.
    expect(ports(c.flows)).toEqual([1, 9, 2, 3]);
    expect(relay.requests[1]!.since).toEqual({ seconds: '100', nanos: 0 });
    await waitFor(() => source.checkpoint()?.time === '1970-01-01T00:01:42.000000000Z', 5000, 'checkpoint');
    expect(source.metrics()).toMatchObject({ aheadOfClock: 1, duplicates: 3 });
    const text = formatPrometheus(
      telemetryMetricFamilies({ queue: queue.metrics(), hubble: source.metrics() }),
    );
    expect(text.split('\n')).toContain('microseg_hubble_flows_ahead_of_clock_total 1');
  });

  it('a flow ahead of the clock is counted once across a restart, and one not acknowledged is not lost', async () => {
    const relay = new FakeRelay();
    const future = Math.floor(Date.now() / 1000) + 3600;
    relay.publish(
      scriptedFlow(1, 100),
      scriptedFlow(8, future),
      scriptedFlow(2, 101),
      scriptedFlow(9, future + 1),
      scriptedFlow(3, 102),
    );
    const first = await setup(relay, { checkpoint: at100s() });
    first.source.start();
    await waitFor(() => first.queue.size === 5);
    // The consumer processes (and the controller persists) the first three, with flow 8 ahead of the
    // clock; flow 9, ahead too, is still in the queue when the process stops.
    first.queue.takeNow(3).ack();
    await first.source.stop();
    const saved = first.source.checkpoint()!;
    // The next leader resumes from the saved position: the relay sends flows 8, 2, 9 and 3 again.
    const second = await setup(relay, { checkpoint: validateCheckpoint(JSON.parse(JSON.stringify(saved))) });
    const c = consume(second.queue);
    cleanups.push(c.stop);
    second.source.start();
    await waitFor(() => c.flows.length >= 2, 5000, '2 flows');
    relay.publish(scriptedFlow(4, 103));
    await waitFor(() => c.flows.length >= 3, 5000, '3 flows');
    // Flow 8 was counted before the restart and is not counted again; flow 9 was not, and is.
    expect(ports(c.flows)).toEqual([9, 3, 4]);
    expect(second.source.metrics()).toMatchObject({ duplicates: 2, aheadOfClock: 1 });
    // What made that possible: the checkpoint names the ahead-of-clock flows acknowledged.
    expect(saved).toEqual({
      time: '1970-01-01T00:01:41.000000000Z',
      seen: [flowIdentity(decoded(scriptedFlow(2, 101)).flow!)],
      ahead: [
        {
          time: `${new Date(future * 1000).toISOString().slice(0, 19)}.000000000Z`,
          id: flowIdentity(decoded(scriptedFlow(8, future)).flow!),
        },
      ],
    });
    // The saved flow stays in the checkpoint until the position passes its time (a third leader would
    // be sent it again too), next to flow 9, now acknowledged.
    await waitFor(() => second.source.checkpoint()?.time === '1970-01-01T00:01:43.000000000Z');
    expect(second.source.checkpoint()!.ahead!.map((a) => a.id)).toEqual(
      [8, 9].map((n) => flowIdentity(decoded(scriptedFlow(n, future + n - 8)).flow!)),
    );
  });

  it('a flow counted ahead of the clock before a restart is skipped even when the new clock finds it on time', async () => {
    const relay = new FakeRelay();
    const future = Math.floor(Date.now() / 1000) + 3600;
    relay.publish(scriptedFlow(1, 100), scriptedFlow(8, future), scriptedFlow(2, 101));
    const first = await setup(relay, { checkpoint: at100s() });
    first.source.start();
    await waitFor(() => first.queue.size === 3);
    first.queue.takeNow(3).ack();
    await first.source.stop();
    const saved = first.source.checkpoint()!;
    expect(saved.ahead!.map((a) => a.id)).toEqual([flowIdentity(decoded(scriptedFlow(8, future)).flow!)]);
    // The next leader allows two hours of skew (or its clock is ahead too): flow 8 is on time for it.
    const second = await setup(relay, { checkpoint: saved, maxClockSkewMs: 7_200_000 });
    const c = consume(second.queue);
    cleanups.push(c.stop);
    second.source.start();
    relay.publish(scriptedFlow(3, 102));
    await waitFor(() => c.flows.length >= 1, 5000, '1 flow');
    await new Promise((r) => setTimeout(r, 50));
    expect(ports(c.flows)).toEqual([3]);
    expect(second.source.metrics()).toMatchObject({ duplicates: 2, aheadOfClock: 0 });
  });

  it('a first run that acknowledged only flows ahead of the clock checkpoints them at the time its stream was asked for', async () => {
    const relay = new FakeRelay();
    const first = await setup(relay);
    const before = Date.now();
    first.source.start();
    await waitFor(() => relay.connectionCount === 1, 5000, 'a stream');
    const after = Date.now();
    const future = Math.floor(Date.now() / 1000) + 3600;
    const now = Date.now();
    const onTime = scriptedFlow(2, Math.floor(now / 1000), (now % 1000) * 1e6);
    relay.publish(scriptedFlow(8, future), onTime);
    await waitFor(() => first.queue.size === 2, 5000, '2 flows');
    // The consumer processes flow 8, ahead of the clock; flow 2, on time, is still queued at the stop.
    first.queue.takeNow(1).ack();
    await first.source.stop();
    const saved = first.source.checkpoint()!;
    expect(saved).toBeDefined();
    expect(saved.seen).toEqual([]);
    expect(saved.ahead).toEqual([
      {
        time: `${new Date(future * 1000).toISOString().slice(0, 19)}.000000000Z`,
        id: flowIdentity(decoded(scriptedFlow(8, future)).flow!),
      },
    ]);
    const at = Date.parse(saved.time);
    expect(at).toBeGreaterThanOrEqual(before);
    expect(at).toBeLessThanOrEqual(after);
    // The next leader resumes from there: flow 8 is not counted again, flow 2 is not lost.
    const second = await setup(relay, { checkpoint: validateCheckpoint(JSON.parse(JSON.stringify(saved))) });
    const c = consume(second.queue);
    cleanups.push(c.stop);
    second.source.start();
    await waitFor(() => c.flows.length >= 1, 5000, '1 flow');
    relay.publish(scriptedFlow(3, Math.floor(Date.now() / 1000) + 1));
    await waitFor(() => c.flows.length >= 2, 5000, '2 flows');
    expect(ports(c.flows)).toEqual([2, 3]);
    expect(second.source.metrics()).toMatchObject({ duplicates: 1, aheadOfClock: 0 });
    expect(relay.requests[1]!.since).toEqual({
      seconds: String(Math.floor(at / 1000)),
      nanos: Number(saved.time.slice(20, 29)),
    });
  });

  it('forgets an acknowledged ahead-of-clock flow once the checkpoint has passed its time', async () => {
    const relay = new FakeRelay();
    const { source, c } = await started(relay, {
      checkpoint: at100s(),
      maxClockSkewMs: 0,
    });
    await waitFor(() => relay.connectionCount === 1, 5000, 'a stream');
    // 300 ms ahead of the clock, with no skew allowed.
    const at = Date.now() + 300;
    const flowAt = (n: number, ms: number) => scriptedFlow(n, Math.floor(ms / 1000), (ms % 1000) * 1e6);
    relay.publish(flowAt(8, at));
    await waitFor(() => c.flows.length === 1, 5000, 'the flow ahead');
    await waitFor(() => source.checkpoint()?.ahead?.length === 1, 5000, 'the flow ahead acknowledged');
    // The clock catches up; a flow stamped after it moves the checkpoint past it.
    await waitFor(() => Date.now() > at + 100, 5000, 'the clock');
    relay.publish(flowAt(2, at + 50));
    await waitFor(() => c.flows.length === 2, 5000, 'the flow on time');
    await waitFor(() => source.checkpoint()?.seen.length === 1, 5000, 'the checkpoint');
    expect(source.checkpoint()).toEqual({
      time: `${new Date(at + 50).toISOString().slice(0, 23)}000000Z`,
      seen: [flowIdentity(decoded(flowAt(2, at + 50)).flow!)],
    });
    expect(source.metrics().aheadOfClock).toBe(1);
  });

  it('picks up a flow delivered late and out of order thanks to the resume overlap', async () => {
    // Relay sent 100 s and 102 s; a lagging node's flow at 101 s was still on its way when the
    // stream broke. Resuming at the newest instant would miss it; the overlap does not.
    for (const [overlap, expected] of [
      [0, [1, 2, 4]],
      [2000, [1, 2, 3, 4]],
    ] as const) {
      const relay = new FakeRelay();
      relay.publish(scriptedFlow(1, 100), scriptedFlow(2, 102), scriptedFlow(3, 101), scriptedFlow(4, 103));
      relay.cutAfter = [2];
      const { source, c } = await started(relay, {
        checkpoint: at100s(),
        resumeOverlapMs: overlap,
      });
      await waitFor(() => c.flows.length >= expected.length);
      await new Promise((r) => setTimeout(r, 20));
      expect(ports(c.flows)).toEqual(expected);
      expect(source.metrics().duplicates).toBe(overlap === 0 ? 1 : 2);
      expect(relay.requests[1]!.since).toEqual({ seconds: overlap === 0 ? '102' : '100', nanos: 0 });
      await source.stop();
      relay.stop();
    }
  });

  it('backs off while the relay is down and catches up on what happened meanwhile', async () => {
    const relay = new FakeRelay();
    relay.publish(scriptedFlow(1, 100));
    const delays: number[] = [];
    const { source, c } = await started(relay, {
      checkpoint: at100s(),
      onEvent: (e) => {
        if (e.type === 'backoff') delays.push(e.delayMs);
      },
    });
    await waitFor(() => c.flows.length === 1);
    relay.stop();
    await waitFor(() => source.metrics().failedAttempts >= 4, 5000, 'failed attempts');
    // 20 ms after the stream that worked, then doubling per failed attempt up to the 200 ms cap.
    expect(delays.slice(0, 5)).toEqual([20, 40, 80, 160, 200]);
    expect(source.metrics().connected).toBe(false);
    // While the relay is away its ring buffer still fills.
    relay.publish(scriptedFlow(2, 101), scriptedFlow(3, 102));
    await relay.start();
    await waitFor(() => c.flows.length >= 3, 5000, '3 flows');
    relay.publish(scriptedFlow(4, 103));
    await waitFor(() => c.flows.length >= 4, 5000, '4 flows');
    expect(ports(c.flows)).toEqual([1, 2, 3, 4]);
    const m = source.metrics();
    expect(m.duplicates).toBe(1); // flow 1 comes again at the boundary and is skipped
    expect(m.reconnects).toBe(m.failedAttempts + 1);
    expect(relay.requests.at(-1)!.since).toEqual({ seconds: '100', nanos: 0 });
  });

  it('a restarted source resumes from the acknowledged checkpoint, not the received one', async () => {
    const relay = new FakeRelay();
    relay.publish(...range(1, 6).map((n) => scriptedFlow(n, 100 + n)));
    const first = await setup(relay, { checkpoint: at100s() });
    first.source.start();
    await waitFor(() => first.queue.size === 6);
    // The consumer processes only three of the six before the process stops.
    first.queue.takeNow(3).ack();
    await first.source.stop();
    const saved = first.source.checkpoint()!;
    expect(saved).toEqual({
      time: '1970-01-01T00:01:43.000000000Z',
      seen: [flowIdentity(decoded(scriptedFlow(3, 103)).flow!)],
    });
    const second = await setup(relay, { checkpoint: JSON.parse(JSON.stringify(saved)) });
    const c = consume(second.queue);
    cleanups.push(c.stop);
    second.source.start();
    await waitFor(() => c.flows.length >= 3);
    expect(ports(c.flows)).toEqual([4, 5, 6]);
    expect(second.source.metrics().duplicates).toBe(1);
  });

  it('counts node_status and sums lost_events', async () => {
    const relay = new FakeRelay();
    relay.publish(
      { node_status: { state_change: 'NODE_CONNECTED', node_names: ['a', 'b'] }, time: { seconds: '100' } },
      scriptedFlow(1, 101),
      { lost_events: { source: 'HUBBLE_RING_BUFFER', num_events_lost: '5' }, time: { seconds: '102' } },
      {
        node_status: { state_change: 'NODE_UNAVAILABLE', node_names: ['b'], message: 'timeout' },
        time: { seconds: '103' },
      },
      { lost_events: { source: 'HUBBLE_RING_BUFFER', num_events_lost: '7' }, time: { seconds: '104' } },
      {
        lost_events: { source: 'PERF_EVENT_RING_BUFFER', num_events_lost: '9007199254740993' },
        time: { seconds: '104' },
      },
      scriptedFlow(2, 105),
    );
    const { source, c } = await started(relay, { checkpoint: at100s() });
    await waitFor(() => c.flows.length >= 2);
    const m = source.metrics();
    expect(m.nodeStatus).toEqual({ NODE_CONNECTED: 1, NODE_UNAVAILABLE: 1 });
    expect(m.lostEvents).toEqual({ HUBBLE_RING_BUFFER: 12, PERF_EVENT_RING_BUFFER: 9007199254740992 });
    expect(m.flowsReceived).toBe(2);
  });

  it('tells each node whose flows go missing once per state change, and gauges them', async () => {
    const relay = new FakeRelay();
    const status = (state_change: string, node_names: string[], message?: string) => ({
      node_status: { state_change, node_names, ...(message !== undefined ? { message } : {}) },
      time: { seconds: '100' },
    });
    relay.publish(
      status('NODE_CONNECTED', ['a', 'b', 'c']),
      status('NODE_ERROR', ['b'], 'tls: bad certificate'),
      status('NODE_ERROR', ['b'], 'tls: bad certificate'),
      status('NODE_UNAVAILABLE', ['b', 'c'], 'context deadline exceeded'),
      scriptedFlow(1, 101),
    );
    const events: HubbleEvent[] = [];
    const { queue, source, c } = await started(relay, {
      checkpoint: at100s(),
      onEvent: (e) => events.push(e),
    });
    await waitFor(() => c.flows.length >= 1);
    const nodeEvents = () => events.filter((e) => e.type === 'node_status');
    expect(nodeEvents()).toEqual([
      { type: 'node_status', state: 'NODE_CONNECTED', nodes: ['a', 'b', 'c'], unavailable: [] },
      {
        type: 'node_status',
        state: 'NODE_ERROR',
        nodes: ['b'],
        message: 'tls: bad certificate',
        unavailable: ['b'],
      },
      {
        type: 'node_status',
        state: 'NODE_UNAVAILABLE',
        nodes: ['c'],
        message: 'context deadline exceeded',
        unavailable: ['b', 'c'],
      },
    ]);
    expect(source.metrics().unavailableNodes).toBe(2);
    const text = formatPrometheus(
      telemetryMetricFamilies({ queue: queue.metrics(), hubble: source.metrics() }),
    );
    expect(text).toMatch(/^microseg_hubble_nodes_unavailable 2$/m);
    relay.publish(status('NODE_CONNECTED', ['b']), status('NODE_GONE', ['c']), scriptedFlow(2, 102));
    await waitFor(() => c.flows.length >= 2);
    expect(nodeEvents().slice(3)).toEqual([
      { type: 'node_status', state: 'NODE_CONNECTED', nodes: ['b'], unavailable: ['c'] },
      { type: 'node_status', state: 'NODE_GONE', nodes: ['c'], unavailable: [] },
    ]);
    expect(source.metrics().unavailableNodes).toBe(0);
    expect(source.metrics().nodeStatus).toEqual({
      NODE_CONNECTED: 2,
      NODE_ERROR: 2,
      NODE_UNAVAILABLE: 1,
      NODE_GONE: 1,
    });
  });

  it('takes a node out of the unavailable ones when its flows arrive again mid-stream, as Hubble Relay says it is back', async () => {
    // Hubble Relay retries the nodes it cannot reach every few seconds during a follow stream and, once
    // one answers, sends its flows on that stream with no node_status: the node's flows are what says so.
    const relay = new FakeRelay();
    const status = (state_change: string, node_names: string[], seconds: number, message?: string) => ({
      node_status: { state_change, node_names, ...(message !== undefined ? { message } : {}) },
      time: { seconds: String(seconds) },
    });
    const from = (node: string, n: number, seconds: number) => {
      const m = scriptedFlow(n, seconds);
      m.flow!.node_name = node;
      m.node_name = node;
      return m;
    };
    relay.greeting = () => [
      status('NODE_CONNECTED', ['kind-control-plane'], 100),
      status('NODE_UNAVAILABLE', ['kind-worker', 'kind-worker2', 'kind-kind/kind-worker3'], 100),
    ];
    relay.publish(from('kind-control-plane', 1, 101));
    const events: HubbleEvent[] = [];
    const { queue, source, c } = await started(relay, {
      checkpoint: at100s(),
      onEvent: (e) => events.push(e),
    });
    const nodeEvents = () => events.filter((e) => e.type === 'node_status');
    const gauge = () =>
      formatPrometheus(telemetryMetricFamilies({ queue: queue.metrics(), hubble: source.metrics() }))
        .split('\n')
        .filter((l) => l.startsWith('microseg_hubble_nodes_unavailable '));
    await waitFor(() => c.flows.length >= 1);
    expect(source.metrics().unavailableNodes).toBe(3);
    expect(gauge()).toEqual(['microseg_hubble_nodes_unavailable 3']);

    relay.publish(from('kind-worker', 2, 102));
    await waitFor(() => c.flows.length >= 2);
    expect(source.metrics().unavailableNodes).toBe(2);
    expect(gauge()).toEqual(['microseg_hubble_nodes_unavailable 2']);
    expect(nodeEvents().slice(2)).toEqual([
      {
        type: 'node_status',
        state: 'NODE_CONNECTED',
        nodes: ['kind-worker'],
        unavailable: ['kind-kind/kind-worker3', 'kind-worker2'],
      },
    ]);
    // More of its flows tell nothing new.
    relay.publish(from('kind-worker', 3, 103));
    await waitFor(() => c.flows.length >= 3);
    expect(nodeEvents()).toHaveLength(3);

    // A node's name with its cluster in front (kind-kind/...) on one side and without on the other.
    relay.publish(from('kind-kind/kind-worker2', 4, 104), from('kind-worker3', 5, 105));
    await waitFor(() => c.flows.length >= 5);
    expect(source.metrics().unavailableNodes).toBe(0);
    expect(gauge()).toEqual(['microseg_hubble_nodes_unavailable 0']);
    expect(nodeEvents().slice(3)).toEqual([
      {
        type: 'node_status',
        state: 'NODE_CONNECTED',
        nodes: ['kind-worker2'],
        unavailable: ['kind-kind/kind-worker3'],
      },
      { type: 'node_status', state: 'NODE_CONNECTED', nodes: ['kind-kind/kind-worker3'], unavailable: [] },
    ]);

    // Their flows fail again: they are missing again, and told so again; a flow from another cluster's
    // node of the same name brings a node named with its cluster back no more.
    relay.publish(
      status('NODE_ERROR', ['kind-kind/kind-worker3', 'kind-worker'], 106, 'connection reset by peer'),
      from('kind-control-plane', 6, 107),
      from('other/kind-worker3', 7, 108),
    );
    await waitFor(() => c.flows.length >= 7);
    expect(source.metrics().unavailableNodes).toBe(2);
    expect(gauge()).toEqual(['microseg_hubble_nodes_unavailable 2']);
    expect(nodeEvents().slice(5)).toEqual([
      {
        type: 'node_status',
        state: 'NODE_ERROR',
        nodes: ['kind-kind/kind-worker3', 'kind-worker'],
        message: 'connection reset by peer',
        unavailable: ['kind-kind/kind-worker3', 'kind-worker'],
      },
    ]);
    // The node_status counter counts the relay's messages only.
    expect(source.metrics().nodeStatus).toEqual({ NODE_CONNECTED: 1, NODE_UNAVAILABLE: 1, NODE_ERROR: 1 });
  });

  it('rebuilds the unavailable nodes from what a new stream names, forgetting those the relay no longer knows', async () => {
    const relay = new FakeRelay();
    const status = (state_change: string, node_names: string[]) => ({
      node_status: { state_change, node_names },
    });
    // Each stream opens with the nodes the relay knows. While the first stream was down, node c left
    // the cluster and node d recovered: the second stream names neither as unavailable, c not at all.
    relay.greeting = (i) =>
      i === 0
        ? [status('NODE_CONNECTED', ['a', 'b']), status('NODE_UNAVAILABLE', ['b', 'c', 'd'])]
        : [status('NODE_CONNECTED', ['a', 'd']), status('NODE_UNAVAILABLE', ['b'])];
    relay.publish(scriptedFlow(1, 101));
    const events: HubbleEvent[] = [];
    const { queue, source, c } = await started(relay, {
      checkpoint: at100s(),
      onEvent: (e) => events.push(e),
      nodeSettleMs: 0,
    });
    await waitFor(() => c.flows.length >= 1);
    expect(source.metrics().unavailableNodes).toBe(3);
    // c is forgotten once the relay's ServerStatus (which lists b alone) confirms it does not miss it.
    relay.unavailableNodes = ['b'];
    relay.cutAll();
    await waitFor(() => relay.connectionCount === 2, 5000, 'a reconnect');
    relay.publish(scriptedFlow(2, 102));
    await waitFor(() => c.flows.length >= 2);
    await waitFor(() => events.some((e) => e.type === 'node_status' && e.state === 'NODE_GONE'));
    expect(relay.statusCalls).toBe(1);
    const nodeEvents = events.filter((e) => e.type === 'node_status');
    expect(nodeEvents.slice(2)).toEqual([
      { type: 'node_status', state: 'NODE_CONNECTED', nodes: ['d'], unavailable: ['b', 'c'] },
      { type: 'node_status', state: 'NODE_GONE', nodes: ['c'], unavailable: ['b'] },
    ]);
    expect(source.metrics().unavailableNodes).toBe(1);
    const text = formatPrometheus(
      telemetryMetricFamilies({ queue: queue.metrics(), hubble: source.metrics() }),
    );
    expect(text).toMatch(/^microseg_hubble_nodes_unavailable 1$/m);
  });

  it('keeps the unavailable nodes while a new stream has not said which it knows', async () => {
    const relay = new FakeRelay();
    const status = (state_change: string, node_names: string[]) => ({
      node_status: { state_change, node_names },
    });
    relay.greeting = (i) =>
      i === 0 ? [status('NODE_CONNECTED', ['a']), status('NODE_UNAVAILABLE', ['b'])] : [];
    // The second stream sends nothing yet: until it does, what the first one said holds.
    const events: HubbleEvent[] = [];
    const { source, c } = await started(relay, {
      checkpoint: at100s(),
      nodeSettleMs: 0,
      onEvent: (e) => events.push(e),
    });
    await waitFor(() => source.metrics().unavailableNodes === 1);
    relay.cutAll();
    await waitFor(() => relay.connectionCount === 2, 5000, 'a reconnect');
    expect(source.metrics().unavailableNodes).toBe(1);
    await new Promise((r) => setTimeout(r, 100));
    expect(source.metrics().unavailableNodes).toBe(1);
    expect(relay.statusCalls).toBe(0);
    // Then a flow: the stream named no node first, and the relay (asked) misses none: b is gone.
    relay.publish(scriptedFlow(1, 101));
    await waitFor(() => c.flows.length >= 1);
    await waitFor(() => source.metrics().unavailableNodes === 0, 5000, 'b forgotten');
    expect(events.filter((e) => e.type === 'node_status').at(-1)).toEqual({
      type: 'node_status',
      state: 'NODE_GONE',
      nodes: ['b'],
      unavailable: [],
    });
  });

  it('keeps counting an unavailable node that a restarted relay leaves out of its opening messages while the relay still lists it', async () => {
    // Hubble Relay learns its peers from the peer service after it starts, and names in a stream's
    // opening messages only those it knows then (the nodes it learns later it never names): b, still
    // unreachable, is missing from the second stream's opening but not from the relay's ServerStatus.
    const relay = new FakeRelay();
    const status = (state_change: string, node_names: string[]) => ({
      node_status: { state_change, node_names },
    });
    relay.greeting = (i) =>
      i === 0
        ? [status('NODE_CONNECTED', ['a']), status('NODE_UNAVAILABLE', ['b'])]
        : [status('NODE_CONNECTED', ['a'])];
    relay.unavailableNodes = ['b'];
    relay.publish(scriptedFlow(1, 101));
    const events: HubbleEvent[] = [];
    const { source, c } = await started(relay, {
      checkpoint: at100s(),
      nodeSettleMs: 0,
      onEvent: (e) => events.push(e),
    });
    await waitFor(() => c.flows.length >= 1);
    expect(source.metrics().unavailableNodes).toBe(1);
    relay.cutAll();
    await waitFor(() => relay.connectionCount === 2, 5000, 'a reconnect');
    relay.publish(scriptedFlow(2, 102));
    await waitFor(() => c.flows.length >= 2);
    await waitFor(() => relay.statusCalls === 1, 5000, 'the ServerStatus check');
    await new Promise((r) => setTimeout(r, 100));
    expect(source.metrics().unavailableNodes).toBe(1);
    expect(events.filter((e) => e.type === 'node_status' && e.state === 'NODE_GONE')).toEqual([]);
    // A relay listing more unavailable nodes than it names (over 10) cannot clear one it does not name.
    relay.unavailableNodes = Array.from({ length: 10 }, (_, i) => `x${i}`);
    relay.unavailableCount = 11;
    relay.cutAll();
    await waitFor(() => relay.connectionCount === 3, 5000, 'a second reconnect');
    relay.publish(scriptedFlow(3, 103));
    await waitFor(() => c.flows.length >= 3);
    await waitFor(() => relay.statusCalls === 2, 5000, 'the second ServerStatus check');
    await new Promise((r) => setTimeout(r, 100));
    expect(source.metrics().unavailableNodes).toBe(1);
    expect(events.filter((e) => e.type === 'node_status' && e.state === 'NODE_GONE')).toEqual([]);
  });

  it('takes a node out of the unavailable ones at once when the relay, asked while it is counted, no longer lists it, though it sends no flow', async () => {
    // As Hubble Relay sends them: node_status with the relay's own node_name and the time it was sent;
    // its ServerStatus names the peers it cannot reach (at most 10) and counts them. A node named
    // unavailable (the opening) or failing (NODE_ERROR) that recovers is attached to the stream again
    // with no node_status, and a quiet one sends no flow that could say so.
    const relay = new FakeRelay();
    const status = relayNodeStatus;
    relay.greeting = () => [
      status('NODE_CONNECTED', ['kind-kind/kind-control-plane', 'kind-kind/kind-worker2'], 100),
      status('NODE_UNAVAILABLE', ['kind-kind/kind-worker3'], 100),
    ];
    relay.unavailableNodes = ['kind-kind/kind-worker3'];
    relay.publish(scriptedFlow(1, 101));
    const events: HubbleEvent[] = [];
    const { queue, source, c } = await started(relay, {
      checkpoint: at100s(),
      nodeCheckMs: 20,
      onEvent: (e) => events.push(e),
    });
    const gauge = () =>
      formatPrometheus(telemetryMetricFamilies({ queue: queue.metrics(), hubble: source.metrics() }))
        .split('\n')
        .filter((l) => l.startsWith('microseg_hubble_nodes_unavailable '));
    const nodeEvents = () => events.filter((e) => e.type === 'node_status');
    await waitFor(() => c.flows.length >= 1);
    // Asked, the relay still lists it: it stays counted.
    await waitFor(() => relay.statusCalls >= 2, 5000, 'two ServerStatus checks');
    expect(gauge()).toEqual(['microseg_hubble_nodes_unavailable 1']);

    // It recovers and sends nothing: the next check takes it out.
    relay.unavailableNodes = [];
    await waitFor(() => source.metrics().unavailableNodes === 0, 5000, 'kind-worker3 back');
    expect(gauge()).toEqual(['microseg_hubble_nodes_unavailable 0']);
    expect(nodeEvents().slice(2)).toEqual([
      { type: 'node_status', state: 'NODE_CONNECTED', nodes: ['kind-kind/kind-worker3'], unavailable: [] },
    ]);
    // With none counted, the relay is not asked any more.
    const calls = relay.statusCalls;
    await new Promise((r) => setTimeout(r, 100));
    expect(relay.statusCalls).toBe(calls);

    // Mid-stream a node's flows fail (NODE_ERROR): it is asked about again, and once the relay reaches
    // it, out of the gauge at once.
    relay.unavailableNodes = ['kind-kind/kind-worker2'];
    relay.publish(status('NODE_ERROR', ['kind-kind/kind-worker2'], 102, 'connection reset by peer'));
    await waitFor(() => source.metrics().unavailableNodes === 1, 5000, 'kind-worker2 failing');
    await waitFor(() => relay.statusCalls >= calls + 2, 5000, 'two more checks');
    expect(source.metrics().unavailableNodes).toBe(1);
    relay.unavailableNodes = [];
    await waitFor(() => source.metrics().unavailableNodes === 0, 5000, 'kind-worker2 back');
    expect(nodeEvents().at(-1)).toEqual({
      type: 'node_status',
      state: 'NODE_CONNECTED',
      nodes: ['kind-kind/kind-worker2'],
      unavailable: [],
    });
    // The counter counts the relay's messages only.
    expect(source.metrics().nodeStatus).toEqual({ NODE_CONNECTED: 1, NODE_UNAVAILABLE: 1, NODE_ERROR: 1 });
  });

  it('tells a node the relay no longer lists because it left the cluster as gone, not connected', async () => {
    // Its agent stops (NODE_ERROR on the stream), then the node is deleted (a scale-down): the relay drops
    // the peer, so ServerStatus no longer lists it among the nodes it cannot reach, as for one reached
    // again. GetNodes lists every node the relay knows: one it does not list has left.
    const relay = new FakeRelay();
    const status = relayNodeStatus;
    const all = ['kind-kind/kind-control-plane', 'kind-kind/kind-worker2', 'kind-kind/kind-worker3'];
    relay.greeting = () => [status('NODE_CONNECTED', all, 100)];
    relay.knownNodes = all;
    relay.publish(scriptedFlow(1, 101));
    const events: HubbleEvent[] = [];
    const { source, c } = await started(relay, {
      checkpoint: at100s(),
      nodeCheckMs: 20,
      onEvent: (e) => events.push(e),
    });
    const nodeEvents = () => events.filter((e) => e.type === 'node_status');
    await waitFor(() => c.flows.length >= 1);

    relay.unavailableNodes = ['kind-kind/kind-worker2', 'kind-kind/kind-worker3'];
    relay.publish(
      status('NODE_ERROR', ['kind-kind/kind-worker2', 'kind-kind/kind-worker3'], 102, 'connection refused'),
    );
    await waitFor(() => source.metrics().unavailableNodes === 2, 5000, 'both failing');
    // worker2 is deleted; worker3 comes back, quiet. Neither is listed unreachable any more.
    relay.knownNodes = ['kind-kind/kind-control-plane', 'kind-kind/kind-worker3'];
    relay.unavailableNodes = [];
    await waitFor(() => source.metrics().unavailableNodes === 0, 5000, 'both out');
    expect(nodeEvents().slice(-2)).toEqual([
      { type: 'node_status', state: 'NODE_GONE', nodes: ['kind-kind/kind-worker2'], unavailable: [] },
      { type: 'node_status', state: 'NODE_CONNECTED', nodes: ['kind-kind/kind-worker3'], unavailable: [] },
    ]);
    expect(relay.getNodesCalls).toBeGreaterThanOrEqual(1);

    // One ServerStatus no longer lists but GetNodes still says unreachable (the two calls raced) stays
    // counted until a check agrees.
    relay.publish(status('NODE_ERROR', ['kind-kind/kind-worker3'], 103, 'connection refused'));
    await waitFor(() => source.metrics().unavailableNodes === 1, 5000, 'worker3 failing again');
    const getNodes = relay.getNodesCalls;
    relay.knownStates = { 'kind-kind/kind-worker3': 'NODE_ERROR' };
    relay.unavailableNodes = [];
    await waitFor(() => relay.getNodesCalls >= getNodes + 2, 5000, 'two checks asking GetNodes');
    expect(source.metrics().unavailableNodes).toBe(1);
    relay.knownStates = {};
    await waitFor(() => source.metrics().unavailableNodes === 0, 5000, 'worker3 back');
    expect(nodeEvents().at(-1)).toMatchObject({ state: 'NODE_CONNECTED', nodes: ['kind-kind/kind-worker3'] });
  });

  it('keeps counting a node that failed after the relay answered a check, whatever that answer says', async () => {
    const relay = new FakeRelay();
    const status = relayNodeStatus;
    relay.greeting = () => [
      status('NODE_CONNECTED', ['a', 'b'], 100),
      status('NODE_UNAVAILABLE', ['a'], 100),
    ];
    relay.unavailableNodes = ['a'];
    relay.publish(scriptedFlow(1, 101));
    // The answer taken while b was reachable reaches the client after the stream said b fails.
    let answered!: () => void;
    const held = new Promise<void>((r) => (answered = r));
    let asked!: () => void;
    const askedP = new Promise<void>((r) => (asked = r));
    relay.holdStatus = () => {
      asked();
      return held;
    };
    const { source, c } = await started(relay, { checkpoint: at100s(), nodeCheckMs: 20 });
    await waitFor(() => c.flows.length >= 1);
    await askedP;
    relay.holdStatus = undefined;
    relay.unavailableNodes = [];
    relay.publish(status('NODE_ERROR', ['b'], 102), scriptedFlow(2, 103));
    await waitFor(() => c.flows.length >= 2);
    expect(source.metrics().unavailableNodes).toBe(2);
    relay.unavailableNodes = ['b'];
    answered();
    // a is taken out (the answer, older than nothing said of it, does not list it); b stays.
    await waitFor(() => source.metrics().unavailableNodes === 1, 5000, 'a back');
    const calls = relay.statusCalls;
    await waitFor(() => relay.statusCalls >= calls + 2, 5000, 'two more checks');
    expect(source.metrics().unavailableNodes).toBe(1);
  });

  it('does not count lost_events twice when a resume sends them again', async () => {
    const relay = new FakeRelay();
    relay.publish(
      scriptedFlow(1, 100),
      // The agent's own losses are kept in its ring buffer with the flows: a resume replays them.
      {
        lost_events: { source: 'PERF_EVENT_RING_BUFFER', num_events_lost: '5' },
        node_name: 'kind-worker',
        time: { seconds: '101' },
      },
      scriptedFlow(2, 102),
    );
    const lost: Record<string, number>[] = [];
    const { source, c } = await started(relay, {
      checkpoint: at100s(),
      reportIntervalMs: 0,
      onEvent: (e) => {
        if (e.type === 'lost_events') lost.push(e.lost);
      },
    });
    await waitFor(() => c.flows.length >= 2);
    relay.cutAll();
    await waitFor(() => relay.connectionCount === 2, 5000, 'a reconnect');
    // The resume reaches back over the overlap (2 s) to the first flow: all three come again.
    expect(relay.requests[1]!.since).toEqual({ seconds: '100', nanos: 0 });
    relay.publish(
      { lost_events: { source: 'PERF_EVENT_RING_BUFFER', num_events_lost: '3' }, time: { seconds: '103' } },
      scriptedFlow(3, 104),
    );
    await waitFor(() => c.flows.length >= 3);
    expect(ports(c.flows)).toEqual([1, 2, 3]);
    expect(source.metrics().lostEvents).toEqual({ PERF_EVENT_RING_BUFFER: 8 });
    expect(lost).toEqual([{ PERF_EVENT_RING_BUFFER: 5 }, { PERF_EVENT_RING_BUFFER: 3 }]);
  });

  it('counts flows the normaliser rejects or skips, and keeps going', async () => {
    const relay = new FakeRelay();
    const udp = scriptedFlow(2, 102);
    udp.flow!.l4 = { UDP: { source_port: 53, destination_port: 53 } };
    const health = scriptedFlow(3, 103);
    health.flow!.source = { pod_name: 'health' };
    relay.publish(scriptedFlow(1, 101), udp, health, scriptedFlow(4, 104));
    const { queue, source, c } = await started(relay, { checkpoint: at100s() });
    await waitFor(() => c.flows.length >= 2);
    expect(ports(c.flows)).toEqual([1, 4]);
    expect(source.metrics()).toMatchObject({
      flowsReceived: 4,
      flowsOffered: 2,
      invalid: 1,
      lastInvalid: 'l4: expected TCP',
      skipped: { health: 1 },
    });
    expect(queue.metrics().dropped).toEqual({ hubble: { invalid: 1, ignored: 1 } });
  });

  it('skips a message that cannot be decoded and keeps the stream, instead of reconnecting to it for ever', async () => {
    // A relay whose stream carries one message the proto cannot decode (a truncated field) between two
    // flows; every stream it serves sends the same three.
    const def = observerService().GetFlows!;
    const server = new grpc.Server();
    let streams = 0;
    server.addService(
      {
        GetFlows: {
          ...def,
          responseSerialize: (m: unknown) => (Buffer.isBuffer(m) ? m : def.responseSerialize(m)),
        },
      },
      {
        GetFlows: (call: grpc.ServerWritableStream<unknown, unknown>) => {
          streams++;
          call.write(scriptedFlow(1, 101));
          call.write(Buffer.from([0x0a, 0x10]));
          call.write(scriptedFlow(2, 102));
        },
      },
    );
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    cleanups.push(() => server.forceShutdown());
    const events: HubbleEvent[] = [];
    const queue = new FlowQueue({ capacity: 100 });
    const source = new HubbleSource(queue, {
      address: `127.0.0.1:${port}`,
      normalize,
      backoff: { initialMs: 20, maxMs: 200 },
      random: () => 0,
      checkpoint: at100s(),
      onEvent: (e) => events.push(e),
    });
    cleanups.push(() => source.stop());
    const c = consume(queue);
    cleanups.push(c.stop);
    source.start();
    await waitFor(() => c.flows.length >= 2 || streams > 3, 5000, 'two flows');
    await new Promise((r) => setTimeout(r, 200));
    expect(ports(c.flows)).toEqual([1, 2]);
    expect(streams).toBe(1);
    expect(source.metrics()).toMatchObject({ reconnects: 0, invalid: 1, connected: true });
    expect(source.metrics().lastInvalid).toMatch(/^malformed message: /);
    expect(queue.metrics().dropped).toEqual({ hubble: { invalid: 1 } });
    expect(events.map((e) => e.type)).toEqual(['connected', 'invalid']);
  });

  it('reports why live flows are rejected and that Hubble lost events, at most once per interval', async () => {
    for (const reportIntervalMs of [60_000, 0]) {
      const relay = new FakeRelay();
      const noPort = scriptedFlow(2, 102);
      noPort.flow!.l4 = { TCP: { source_port: 40002 } };
      const newVerdict = scriptedFlow(3, 103);
      newVerdict.flow!.verdict = 42; // a verdict newer than microseg's proto
      newVerdict.flow!.node_name = 'kind-worker2';
      relay.publish(
        scriptedFlow(1, 101),
        noPort,
        newVerdict,
        { lost_events: { source: 'HUBBLE_RING_BUFFER', num_events_lost: '5' }, time: { seconds: '104' } },
        { lost_events: { source: 'OBSERVER_EVENTS_QUEUE', num_events_lost: '7' }, time: { seconds: '104' } },
        scriptedFlow(4, 105),
      );
      const events: HubbleEvent[] = [];
      const { source, c } = await started(relay, {
        normalize: normalizeDecodedFlow,
        reportIntervalMs,
        checkpoint: at100s(),
        onEvent: (e) => {
          if (e.type === 'invalid' || e.type === 'lost_events') events.push(e);
        },
      });
      await waitFor(() => c.flows.length >= 2);
      expect(c.flows.map((f) => f.srcPort)).toEqual([40001, 40004]);
      const first: HubbleEvent[] = [
        {
          type: 'invalid',
          error: "l4.TCP.destination_port: 0 (or left out) is out of range 1-65535 (the responder's port)",
          node: 'kind-worker',
          time: '1970-01-01T00:01:42.000000000Z',
          count: 1,
        },
        { type: 'lost_events', lost: { HUBBLE_RING_BUFFER: 5 } },
      ];
      expect(events).toEqual(
        reportIntervalMs === 0
          ? [
              first[0],
              {
                type: 'invalid',
                error: VERDICT_42,
                node: 'kind-worker2',
                time: '1970-01-01T00:01:43.000000000Z',
                count: 1,
              },
              first[1],
              { type: 'lost_events', lost: { OBSERVER_EVENTS_QUEUE: 7 } },
            ]
          : first,
      );
      expect(source.metrics()).toMatchObject({ invalid: 2, lastInvalid: VERDICT_42 });
      await c.stop();
      await source.stop();
      relay.stop();
      // What the interval held back is told at stop, not lost with the end of the burst.
      const tail: HubbleEvent[] = [
        {
          type: 'invalid',
          error: VERDICT_42,
          node: 'kind-worker2',
          time: '1970-01-01T00:01:43.000000000Z',
          count: 1,
        },
        { type: 'lost_events', lost: { OBSERVER_EVENTS_QUEUE: 7 } },
      ];
      if (reportIntervalMs !== 0) expect(events).toEqual([...first, ...tail]);
    }
  });

  it("reports a flow rejected for a time no date can hold once, with the normaliser's reason", async () => {
    // Year 287 000 and more: beyond what an RFC 3339 text (or a Date) can say.
    const relay = new FakeRelay();
    const farOff = scriptedFlow(2, 9_000_000_000_000);
    farOff.flow!.node_name = 'kind-worker3';
    relay.publish(scriptedFlow(1, 101), farOff, scriptedFlow(3, 103));
    const events: HubbleEvent[] = [];
    const { queue, source, c } = await started(relay, {
      normalize: normalizeDecodedFlow,
      checkpoint: at100s(),
      onEvent: invalidInto(events),
    });
    await waitFor(() => c.flows.length >= 2);
    expect(c.flows.map((f) => f.srcPort)).toEqual([40001, 40003]);
    const m = source.metrics();
    expect(m.invalid).toBe(1);
    expect(m.lastInvalid).toMatch(/^time: 9000000000000 seconds /);
    expect(queue.metrics().dropped).toEqual({ hubble: { invalid: 1 } });
    expect(events).toEqual([{ type: 'invalid', error: m.lastInvalid, node: 'kind-worker3', count: 1 }]);
  });

  it('leaves out of the report a flow time a Date holds but RFC 3339 does not (past year 9999)', async () => {
    // Year 33 658: the report's flowTime was "+033658-09-27T01:46.000000000Z", its seconds lost and no
    // RFC 3339 text, where docs/telemetry.md says such a time is left out.
    const relay = new FakeRelay();
    const late = scriptedFlow(2, 1_000_000_000_000);
    late.flow!.node_name = 'kind-worker3';
    relay.publish(scriptedFlow(1, 101), late, scriptedFlow(3, 103));
    const events: HubbleEvent[] = [];
    const { c } = await started(relay, {
      normalize: (f) =>
        f.node_name === 'kind-worker3'
          ? { kind: 'bad', error: new Error('verdict: unknown value 42') }
          : normalize(f),
      checkpoint: at100s(),
      onEvent: invalidInto(events),
    });
    await waitFor(() => c.flows.length >= 2);
    await waitFor(() => events.length >= 1);
    expect(events).toEqual([
      { type: 'invalid', error: 'verdict: unknown value 42', node: 'kind-worker3', count: 1 },
    ]);
  });

  it('reports the tail of a burst once the interval ends, without waiting for another event', async () => {
    const relay = new FakeRelay();
    const bad = (n: number) => {
      const f = scriptedFlow(n, 100 + n);
      f.flow!.l4 = { TCP: { source_port: 40000 + n } };
      return f;
    };
    relay.publish(bad(1), bad(2), bad(3));
    const events: HubbleEvent[] = [];
    const { source } = await started(relay, {
      normalize: normalizeDecodedFlow,
      reportIntervalMs: 300,
      checkpoint: at100s(),
      onEvent: invalidInto(events),
    });
    await waitFor(() => events.length >= 2, 5000, 'the held-back report');
    expect(events.map((e) => (e.type === 'invalid' ? [e.count, e.time] : []))).toEqual([
      [1, '1970-01-01T00:01:41.000000000Z'],
      [2, '1970-01-01T00:01:43.000000000Z'],
    ]);
    await source.stop();
    relay.stop();
    expect(events).toHaveLength(2);
  });

  it('logs nodes whose flows go missing as a warning naming them and the error, recovery as info', () => {
    const lines: string[] = [];
    const log = jsonLogger({ sink: (l) => lines.push(l), now: () => new Date(0) });
    const many = range(1, 25).map((n) => `n${n}`);
    for (const e of [
      {
        type: 'node_status',
        state: 'NODE_ERROR',
        nodes: ['b'],
        message: 'tls: bad certificate',
        unavailable: ['b'],
      },
      { type: 'node_status', state: 'NODE_CONNECTED', nodes: ['b'], unavailable: [] },
      { type: 'node_status', state: 'NODE_UNAVAILABLE', nodes: many, unavailable: many },
      { type: 'node_status', state: 'NODE_GONE', nodes: ['n1'], unavailable: many.slice(1) },
    ] satisfies HubbleEvent[])
      logHubbleEvent(log, e);
    const time = '1970-01-01T00:00:00.000Z';
    expect(lines.map((l) => JSON.parse(l) as unknown)).toEqual([
      {
        time,
        level: 'warn',
        msg: 'hubble relay: flows of these nodes are missing from the stream',
        state: 'NODE_ERROR',
        nodes: ['b'],
        error: 'tls: bad certificate',
        unavailableNodes: 1,
      },
      {
        time,
        level: 'info',
        msg: 'hubble relay: nodes connected',
        state: 'NODE_CONNECTED',
        nodes: ['b'],
        unavailableNodes: 0,
      },
      {
        time,
        level: 'warn',
        msg: 'hubble relay: flows of these nodes are missing from the stream',
        state: 'NODE_UNAVAILABLE',
        nodes: many.slice(0, 20),
        nodeCount: 25,
        unavailableNodes: 25,
      },
      {
        time,
        level: 'info',
        msg: 'hubble relay: nodes gone',
        state: 'NODE_GONE',
        nodes: ['n1'],
        unavailableNodes: 24,
      },
    ]);
  });

  it('logs a relay that cannot be reached, rejected flows and lost events as warnings', () => {
    const lines: string[] = [];
    const log = jsonLogger({ sink: (l) => lines.push(l), now: () => new Date(0) });
    for (const e of [
      { type: 'connected', since: '1970-01-01T00:01:40.000000000Z' },
      { type: 'disconnected', error: 'No connection established', code: 14 },
      { type: 'backoff', attempt: 0, delayMs: 500 },
      { type: 'invalid', error: 'verdict: unknown value 42', node: 'n1', time: 'T', count: 3 },
      { type: 'lost_events', lost: { HUBBLE_RING_BUFFER: 5 } },
    ] satisfies HubbleEvent[])
      logHubbleEvent(log, e);
    expect(lines.map((l) => JSON.parse(l) as unknown)).toEqual([
      {
        time: '1970-01-01T00:00:00.000Z',
        level: 'info',
        msg: 'hubble relay stream open',
        since: '1970-01-01T00:01:40.000000000Z',
      },
      {
        time: '1970-01-01T00:00:00.000Z',
        level: 'warn',
        msg: 'hubble relay stream failed',
        error: 'No connection established',
        code: 'UNAVAILABLE',
      },
      {
        time: '1970-01-01T00:00:00.000Z',
        level: 'info',
        msg: 'hubble relay: reconnecting after a delay',
        attempt: 0,
        delayMs: 500,
      },
      {
        time: '1970-01-01T00:00:00.000Z',
        level: 'warn',
        msg: 'hubble flows rejected',
        error: 'verdict: unknown value 42',
        node: 'n1',
        flowTime: 'T',
        count: 3,
      },
      {
        time: '1970-01-01T00:00:00.000Z',
        level: 'warn',
        msg: 'hubble lost events',
        lost: { HUBBLE_RING_BUFFER: 5 },
      },
    ]);
  });

  it('pauses the stream instead of dropping when the queue is full', async () => {
    const relay = new FakeRelay();
    relay.publish(...range(1, 40).map((n) => scriptedFlow(n, 100 + n)));
    const { queue, source } = await setup(relay, { checkpoint: at100s() }, 8);
    source.start();
    await waitFor(() => queue.size >= 7);
    const c = consume(queue, { delayMs: 5, batch: 3 });
    cleanups.push(c.stop);
    await waitFor(() => c.flows.length >= 40, 10_000, '40 flows');
    expect(ports(c.flows)).toEqual(range(1, 40));
    expect(queue.metrics().dropped).toEqual({ hubble: {} });
    expect(source.metrics().pauses).toBeGreaterThan(0);
  });

  it('without a checkpoint follows new flows, then resumes from the newest received', async () => {
    const relay = new FakeRelay();
    relay.publish(scriptedFlow(1, 100)); // history before the client came: not asked for
    relay.cutAfter = [2];
    const events: string[] = [];
    const filter = { source_pod: ['shop/'], verdict: ['DROPPED'] };
    const { source, c } = await started(relay, {
      whitelist: [filter],
      blacklist: [{ destination_pod: ['kube-system/'] }],
      onEvent: (e) => events.push(e.type === 'connected' ? `connected ${e.since ?? '-'}` : e.type),
    });
    await waitFor(() => relay.connectionCount === 1);
    relay.publish(scriptedFlow(2, 200, 7), scriptedFlow(3, 201), scriptedFlow(4, 202));
    await waitFor(() => c.flows.length >= 3);
    expect(ports(c.flows)).toEqual([2, 3, 4]);
    expect(relay.requests[0]).toEqual({
      follow: true,
      whitelist: [filter],
      blacklist: [{ destination_pod: ['kube-system/'] }],
    });
    // The resume overlap (2 s) would reach back to 199 s, but nothing before the first flow is known.
    expect(relay.requests[1]!.since).toEqual({ seconds: '200', nanos: 7 });
    expect(events).toEqual([
      'connected -',
      'disconnected',
      'backoff',
      'connected 1970-01-01T00:03:20.000000007Z',
    ]);
    expect(source.metrics().duplicates).toBe(2);
  });

  it('treats a quiet stream that stayed up long enough as healthy', async () => {
    for (const [resetAfterMs, failed, attempts] of [
      [50, 0, [0, 0]],
      [60_000, 2, [0, 1]],
    ] as const) {
      const relay = new FakeRelay();
      const backoffs: number[] = [];
      const { source } = await setup(relay, {
        backoff: { initialMs: 20, maxMs: 200, resetAfterMs },
        onEvent: (e) => {
          if (e.type === 'backoff') backoffs.push(e.attempt);
        },
      });
      source.start();
      for (let i = 1; i <= 2; i++) {
        await waitFor(() => relay.connectionCount === i);
        await new Promise((r) => setTimeout(r, 100));
        relay.cutAll();
        await waitFor(() => backoffs.length === i);
      }
      expect(source.metrics().failedAttempts).toBe(failed);
      expect(backoffs).toEqual(attempts);
      await source.stop();
      relay.stop();
    }
  });

  it('backs off from a flapping relay that sends one message and then fails, instead of hammering it', async () => {
    // Every stream gets one message (the flow at the resume point, sent again) and is then cut with
    // UNAVAILABLE, again and again.
    const relay = new FakeRelay();
    relay.publish(scriptedFlow(1, 100), scriptedFlow(2, 101));
    relay.cutAfter = Array.from({ length: 100 }, () => 1);
    const backoffs: { attempt: number; delayMs: number }[] = [];
    const { source } = await setup(relay, {
      checkpoint: at100s(),
      resumeOverlapMs: 0,
      onEvent: (e) => {
        if (e.type === 'backoff') backoffs.push({ attempt: e.attempt, delayMs: e.delayMs });
      },
    });
    source.start();
    await waitFor(() => backoffs.length >= 6, 5000, 'six reconnect delays');
    // Each stream delivered something but stayed up far shorter than backoff.resetAfterMs (30 s): the
    // delay keeps growing to the cap rather than going back to the initial 20 ms every time.
    expect(backoffs.slice(0, 6).map((b) => b.delayMs)).toEqual([20, 40, 80, 160, 200, 200]);
    expect(backoffs.slice(0, 6).map((b) => b.attempt)).toEqual([0, 1, 2, 3, 4, 5]);
    await source.stop();
    // Bounded: in the time six delays took, no more than about that many streams were asked for.
    expect(relay.connectionCount).toBeLessThanOrEqual(8);
  });

  it('rejects backoff options that would let it reconnect without waiting', () => {
    const make = (backoff: HubbleSourceOptions['backoff']) => () =>
      new HubbleSource(new FlowQueue({ capacity: 1 }), { address: '127.0.0.1:4245', normalize, backoff });
    expect(make({ initialMs: 0 })).toThrow(
      'backoff.initialMs must be a positive number of milliseconds, got 0',
    );
    expect(make({ initialMs: 1000, maxMs: 10 })).toThrow(
      'backoff.maxMs must be at least backoff.initialMs (1000), got 10',
    );
    expect(make({ multiplier: 0.5 })).toThrow('backoff.multiplier must be a number of at least 1, got 0.5');
    expect(make({ jitter: 1 })).toThrow('backoff.jitter must be from 0 to less than 1, got 1');
    expect(make({ resetAfterMs: 0 })).toThrow(
      'backoff.resetAfterMs must be a positive number of milliseconds, got 0',
    );
    expect(make({ initialMs: Number.NaN })).toThrow('backoff.initialMs');
    expect(make({ initialMs: 100, maxMs: 100, multiplier: 1, jitter: 0, resetAfterMs: 1 })).not.toThrow();
  });

  it('rejects node check timings that would ask the relay without pause or cannot be waited', () => {
    const make = (o: Partial<HubbleSourceOptions>) => () =>
      new HubbleSource(new FlowQueue({ capacity: 1 }), { address: '127.0.0.1:4245', normalize, ...o });
    // A check every 0 ms would call ServerStatus back to back for as long as a node is counted unavailable.
    expect(make({ nodeCheckMs: 0 })).toThrow('nodeCheckMs must be a positive integer, got 0');
    expect(make({ nodeCheckMs: 1.5 })).toThrow('nodeCheckMs must be a positive integer, got 1.5');
    expect(make({ nodeCheckMs: Number.NaN })).toThrow('nodeCheckMs must be a positive integer, got NaN');
    expect(make({ nodeSettleMs: -1 })).toThrow('nodeSettleMs must be a non-negative integer, got -1');
    expect(make({ nodeCheckMs: 1, nodeSettleMs: 0 })).not.toThrow();
  });

  it('stops promptly while waiting to reconnect', async () => {
    const relay = new FakeRelay();
    await relay.start();
    relay.stop();
    const { source } = await setup(relay, { backoff: { initialMs: 60_000, maxMs: 60_000 } });
    source.start();
    await waitFor(() => source.metrics().failedAttempts === 1);
    const t0 = Date.now();
    await source.stop();
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('rejects an address that is not host:port', () => {
    expect(
      () => new HubbleSource(new FlowQueue({ capacity: 1 }), { address: 'hubble-relay', normalize }),
    ).toThrow("hubble address must be host:port, got 'hubble-relay'");
  });

  it('takes an IPv6 address with its port only in brackets, as gRPC reads it', () => {
    // gRPC reads an unbracketed IPv6 address as a host without a port and dials port 443 of it.
    for (const address of ['fd00::10:4245', '::1:4245', 'hubble-relay:4245:80'])
      expect([address, isHubbleAddress(address)]).toEqual([address, false]);
    for (const address of [
      '[fd00::10]:4245',
      '[::1]:4245',
      'hubble-relay.kube-system.svc:80',
      '10.0.0.7:4245',
    ])
      expect([address, isHubbleAddress(address)]).toEqual([address, true]);
  });

  it('answers ServerStatus on the same channel', async () => {
    const relay = new FakeRelay();
    const { source } = await setup(relay);
    source.start();
    const st = await source.serverStatus();
    expect(st).toMatchObject({ max_flows: '4095', version: 'fake-relay', num_connected_nodes: { value: 2 } });
  });
});

describe('HubbleSource over TLS', () => {
  let dir = '';
  const pemOf = (f: string) => readFileSync(join(dir, f));

  beforeAll(() => {
    // A throwaway CA, a relay certificate for *.hubble-relay.cilium.io and a client certificate.
    dir = mkdtempSync(join(tmpdir(), 'microseg-tls-'));
    const ossl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    ossl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key');
    ossl(
      'req',
      '-x509',
      '-new',
      '-key',
      'ca.key',
      '-subj',
      '/CN=microseg-test-ca',
      '-days',
      '1',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
      '-out',
      'ca.crt',
    );
    for (const [name, ext] of [
      ['server', 'subjectAltName=DNS:*.hubble-relay.cilium.io\nextendedKeyUsage=serverAuth\n'],
      ['client', 'subjectAltName=DNS:microseg.hubble-relay.cilium.io\nextendedKeyUsage=clientAuth\n'],
    ] as const) {
      writeFileSync(join(dir, `${name}.ext`), ext);
      ossl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`);
      ossl('req', '-new', '-key', `${name}.key`, '-subj', `/CN=${name}`, '-out', `${name}.csr`);
      ossl(
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        'ca.crt',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-days',
        '1',
        '-extfile',
        `${name}.ext`,
        '-out',
        `${name}.crt`,
      );
    }
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const tlsRelay = () =>
    new FakeRelay({
      ca: pemOf('ca.crt'),
      cert: pemOf('server.crt'),
      key: pemOf('server.key'),
      requireClientCert: true,
    });

  it('streams over mutual TLS with the relay server name', async () => {
    const relay = tlsRelay();
    relay.publish(scriptedFlow(1, 100), scriptedFlow(2, 101));
    const { source, c } = await started(relay, {
      checkpoint: at100s(),
      tls: {
        ca: pemOf('ca.crt'),
        cert: pemOf('client.crt'),
        key: pemOf('client.key'),
        serverName: 'ui.hubble-relay.cilium.io',
      },
    });
    await waitFor(() => c.flows.length >= 2);
    expect(ports(c.flows)).toEqual([1, 2]);
    expect(source.metrics().failedAttempts).toBe(0);
  });

  it('does not connect when the certificate does not name the address dialled', async () => {
    const relay = tlsRelay();
    relay.publish(scriptedFlow(1, 100));
    const errors: (number | undefined)[] = [];
    const { queue, source } = await setup(relay, {
      checkpoint: at100s(),
      tls: { ca: pemOf('ca.crt'), cert: pemOf('client.crt'), key: pemOf('client.key') },
      onEvent: (e) => {
        if (e.type === 'disconnected') errors.push(e.code);
      },
    });
    source.start();
    await waitFor(() => source.metrics().failedAttempts >= 2);
    expect(queue.size).toBe(0);
    expect(relay.connectionCount).toBe(0);
    expect(errors.slice(0, 2)).toEqual([14, 14]); // UNAVAILABLE
  });

  it('is refused by a relay that requires a client certificate when none is given', async () => {
    const relay = tlsRelay();
    relay.publish(scriptedFlow(1, 100));
    const { queue, source } = await setup(relay, {
      checkpoint: at100s(),
      tls: { ca: pemOf('ca.crt'), serverName: 'ui.hubble-relay.cilium.io' },
    });
    source.start();
    await waitFor(() => source.metrics().failedAttempts >= 2);
    expect(queue.size).toBe(0);
    expect(relay.connectionCount).toBe(0);
  });

  it('rejects a client key that does not match its certificate when made, not later at start', () => {
    const queue = new FlowQueue({ capacity: 1 });
    const make = () =>
      new HubbleSource(queue, {
        address: '127.0.0.1:4245',
        normalize,
        tls: { ca: pemOf('ca.crt'), cert: pemOf('client.crt'), key: pemOf('server.key') },
      });
    expect(make).toThrow(/^hubble TLS: the client certificate and key cannot be used: /);
  });

  it('rejects a CA bundle that is not PEM certificates when the credentials are built', () => {
    // Was accepted silently: every connection then failed later, with a TLS error far from the cause.
    const ca = pemOf('ca.crt').toString();
    const bad: [string, string | Buffer][] = [
      ['not PEM at all', 'hello'],
      ['empty', ''],
      ['a key, not a certificate', pemOf('server.key')],
      ['a certificate whose body is damaged', ca.replace(/-----\n(.{10})/, '-----\n@@@@@@@@@@')],
      [
        'a good certificate and a damaged one',
        Buffer.from(`${ca}\n${ca.replace(/-----\n(.{10})/, '-----\n@@@@@@@@@@')}`),
      ],
      ['a certificate cut short', ca.slice(0, ca.length - 40)],
    ];
    for (const [what, value] of bad)
      expect(() => hubbleCredentials({ ca: value }), what).toThrow(/^hubble TLS: the CA bundle /);
    expect(() => hubbleCredentials({ ca: 'hello' })).toThrow(
      'hubble TLS: the CA bundle holds no PEM certificate (-----BEGIN CERTIFICATE-----)',
    );
    // The HubbleSource says the same, not that the client certificate is at fault.
    expect(
      () =>
        new HubbleSource(new FlowQueue({ capacity: 1 }), {
          address: '127.0.0.1:4245',
          normalize,
          tls: { ca: 'hello' },
        }),
    ).toThrow('hubble TLS: the CA bundle holds no PEM certificate (-----BEGIN CERTIFICATE-----)');
    // Good bundles, comments between certificates (as system bundles have) included.
    expect(() => hubbleCredentials({ ca })).not.toThrow();
    expect(() => hubbleCredentials({ ca: Buffer.from(`# our CA\n${ca}\n# again\n${ca}`) })).not.toThrow();
  });

  it('rejects a client certificate without its key', () => {
    expect(() => hubbleCredentials({ cert: 'x' })).toThrow(
      'hubble TLS: a client certificate needs its key and a key needs its certificate',
    );
  });
});

describe('flows held for a full shared queue', () => {
  it('opens no new stream while flows of the last one are held, so they cannot pile up', async () => {
    const relay = new FakeRelay();
    // Every stream is cut after a few messages, a reconnect sending each time one more new flow.
    relay.cutAfter = range(1, 10);
    relay.publish(...range(1, 10).map((n) => scriptedFlow(n, 100 + n)));
    const { queue, source } = await setup(relay, { checkpoint: at100s() }, 4);
    // Another source (a push) filled the queue: the first relay flow is held.
    const pushed: Flow[] = range(1, 4).map((n) => ({
      time: 100_000 + n,
      src: { pod: 'collector' },
      dst: { pod: 'db' },
      protocol: 'TCP',
      port: 5432,
      srcPort: n,
      verdict: 'FORWARDED',
      input: 'generic',
    }));
    expect(queue.offer('push', pushed)).toBe(4);
    source.start();
    await waitFor(() => source.metrics().flowsReceived >= 1, 5000, 'a flow from the relay');
    // Backoff is 20-200 ms: without room in the queue no stream is opened again, whatever the time.
    await new Promise((r) => setTimeout(r, 500));
    expect([relay.connectionCount, source.metrics().flowsOffered]).toEqual([1, 1]);
    // Room made: the held flow goes first, then streams open again and bring the rest, in order.
    const c = consume(queue);
    cleanups.push(() => c.stop());
    await waitFor(() => c.flows.length >= 14, 5000, 'every flow');
    expect(ports(c.flows.filter((f) => f.input === 'hubble'))).toEqual(range(1, 10));
    expect(queue.metrics().dropped.hubble?.queue_full).toBeUndefined();
  });
});
