import { afterEach, describe, expect, it } from 'vitest';
import request from 'supertest';
import express from 'express';
import { Telemetry } from '../../src/telemetry/index.ts';
import { FakeRelay, scriptedFlow } from './fake-relay.ts';
import { normalize, waitFor } from './helpers.ts';
import type { Flow } from '../../src/flows/types.ts';
import type { RecordResult } from '../../src/telemetry/push.ts';

const parse = (r: unknown): RecordResult => {
  const o = r as { port: number };
  const flow: Flow = {
    time: 0,
    src: { pod: 'pusher' },
    dst: { pod: 'db' },
    protocol: 'TCP',
    port: o.port,
    verdict: 'FORWARDED',
    input: 'generic',
  };
  return { kind: 'flow', flow };
};

const stops: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
});

describe('Telemetry', () => {
  it('merges Hubble and pushed flows into one stream of acknowledged batches with metrics', async () => {
    const relay = new FakeRelay();
    await relay.start();
    stops.push(() => relay.stop());
    relay.publish(scriptedFlow(1, 101), scriptedFlow(2, 102), {
      lost_events: { source: 'OBSERVER_EVENTS_QUEUE', num_events_lost: '3' },
      time: { seconds: '102' },
    });
    const t = new Telemetry({
      queueCapacity: 100,
      hubble: {
        address: `127.0.0.1:${relay.port}`,
        normalize,
        checkpoint: { time: '1970-01-01T00:01:40Z', seen: [] },
      },
      push: { token: 'tkn', parse },
    });
    stops.push(() => t.stop());
    const app = express();
    app.use(t.router!);
    t.start();
    await waitFor(() => t.queue.size === 2);
    const res = await request(app)
      .post('/v1/flows')
      .set('Authorization', 'Bearer tkn')
      .set('Content-Type', 'application/x-ndjson')
      .send('{"port":5432}\n');
    expect(res.status).toBe(202);

    const got: Flow[] = [];
    for await (const b of t.batches(10)) {
      got.push(...b.flows);
      b.ack();
      if (got.length === 3) break;
    }
    expect(got.map((f) => [f.input, f.port])).toEqual([
      ['hubble', 8080],
      ['hubble', 8080],
      ['generic', 5432],
    ]);
    expect(t.checkpoint()?.time).toBe('1970-01-01T00:01:42.000000000Z');
    const text = t.prometheus();
    for (const line of [
      'microseg_telemetry_flows_received_total{source="hubble"} 2',
      'microseg_telemetry_flows_received_total{source="push"} 1',
      'microseg_telemetry_flows_acknowledged_total{source="hubble"} 2',
      'microseg_telemetry_queue_depth 0',
      'microseg_telemetry_queue_capacity 100',
      'microseg_hubble_lost_events_total{source="OBSERVER_EVENTS_QUEUE"} 3',
      'microseg_hubble_reconnects_total 0',
      'microseg_hubble_connected 1',
      'microseg_hubble_checkpoint_timestamp_seconds 102',
      'microseg_push_responses_total{code="202"} 1',
    ])
      expect(text.split('\n')).toContain(line);
    expect(text).toContain('# TYPE microseg_telemetry_flows_dropped_total counter\n');

    await t.stop();
    expect(t.metrics().hubble!.connected).toBe(false);
    // After stop the queue is closed: batches() ends.
    const rest: Flow[] = [];
    for await (const b of t.batches()) rest.push(...b.flows);
    expect(rest).toEqual([]);
  });

  it('keeps a Hubble flow that finds the shared queue filled by a push, instead of dropping it for good', async () => {
    const relay = new FakeRelay();
    await relay.start();
    stops.push(() => relay.stop());
    const t = new Telemetry({
      queueCapacity: 4,
      hubble: {
        address: `127.0.0.1:${relay.port}`,
        normalize,
        checkpoint: { time: '1970-01-01T00:01:40Z', seen: [] },
      },
      push: { token: 'tkn', parse },
    });
    stops.push(() => t.stop());
    const app = express();
    app.use(t.router!);
    // A collector fills the whole queue while the consumer is busy.
    const res = await request(app)
      .post('/v1/flows')
      .set('Authorization', 'Bearer tkn')
      .set('Content-Type', 'application/x-ndjson')
      .send('{"port":1}\n{"port":2}\n{"port":3}\n{"port":4}\n');
    expect(res.status).toBe(202);
    expect(t.queue.free).toBe(0);
    relay.publish(scriptedFlow(1, 101), scriptedFlow(2, 102), scriptedFlow(3, 103));
    t.start();
    await waitFor(() => t.metrics().hubble!.flowsReceived >= 1, 5000, 'a flow from the relay');
    await new Promise((r) => setTimeout(r, 50));
    const got: Flow[] = [];
    for await (const b of t.batches(2, AbortSignal.timeout(3000))) {
      got.push(...b.flows);
      b.ack();
      if (got.length === 7) break;
    }
    // Every relay flow reaches the consumer, in order; none is lost to the full queue.
    expect(got.filter((f) => f.input === 'hubble').map((f) => f.srcPort! - 40000)).toEqual([1, 2, 3]);
    expect(t.metrics().queue.dropped.hubble).toEqual({});
    expect(t.checkpoint()?.time).toBe('1970-01-01T00:01:43.000000000Z');
  });
});
