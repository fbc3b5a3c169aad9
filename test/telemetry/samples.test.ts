/**
 * The gRPC path and the file path agree: the real Hubble sample lines, served by the scripted relay
 * over microseg's own proto, normalise to exactly the records the jsonpb file reader makes of them.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { normalizeHubbleRecord } from '../../src/flows/hubble.ts';
import type { Flow } from '../../src/flows/types.ts';
import { parseTime, nsToTimestamp } from '../../src/telemetry/checkpoint.ts';
import { HubbleSource } from '../../src/telemetry/hubble.ts';
import { FlowQueue } from '../../src/telemetry/queue.ts';
import type { GetFlowsResponse } from '../../src/telemetry/proto.ts';
import { FakeRelay, decoded } from './fake-relay.ts';
import { consume, waitFor } from './helpers.ts';

const lines = readFileSync(new URL('../../../shared/samples/hubble-flows.jsonl', import.meta.url), 'utf8')
  .split('\n')
  .filter((l) => l.trim() !== '');

const ts = (s: string) => nsToTimestamp(parseTime(s)!);

/** A jsonpb GetFlowsResponse line as the object a gRPC server would encode. */
function toGrpc(line: string): GetFlowsResponse {
  const o = JSON.parse(line) as Record<string, unknown> & { flow?: Record<string, unknown> };
  const out = { ...o } as Record<string, unknown>;
  if (typeof o.time === 'string') out.time = ts(o.time);
  if (o.flow) {
    const f = { ...o.flow };
    if (typeof f.time === 'string') f.time = ts(f.time);
    if (typeof f.is_reply === 'boolean') f.is_reply = { value: f.is_reply };
    out.flow = f;
  }
  return out;
}

const stops: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
});

describe('Hubble samples over gRPC', () => {
  it('has the eleven sample lines', () => {
    expect(lines.length).toBe(11);
  });

  it('survive the wire with the fields the normaliser reads', () => {
    const first = decoded(toGrpc(lines[0]!)).flow!;
    expect(first.time).toEqual({ seconds: '1636540856', nanos: 465597700 });
    expect(first).toMatchObject({ verdict: 'FORWARDED', trace_observation_point: 'TO_PROXY' });
  });

  it('normalise to the same records as the jsonpb file path', async () => {
    const expected: Flow[] = [];
    let expectedSkips = 0;
    let expectedBad = 0;
    for (const l of lines) {
      const r = normalizeHubbleRecord(JSON.parse(l));
      if (r.kind === 'flow') expected.push(r.flow);
      else if (r.kind === 'skip') expectedSkips++;
      else if (r.kind === 'bad') expectedBad++;
    }
    expect([expected.length, expectedSkips, expectedBad]).toEqual([9, 2, 0]);

    const relay = new FakeRelay();
    await relay.start();
    stops.push(() => relay.stop());
    relay.publish(...lines.map(toGrpc));
    const queue = new FlowQueue({ capacity: 100 });
    const source = new HubbleSource(queue, {
      address: `127.0.0.1:${relay.port}`,
      checkpoint: { time: '2021-01-01T00:00:00Z', seen: [] },
    });
    stops.push(() => source.stop());
    const c = consume(queue);
    stops.push(c.stop);
    source.start();
    await waitFor(() => source.metrics().flowsReceived === 11);
    await waitFor(() => c.flows.length === expected.length);
    expect(c.flows).toEqual(expected);
    const m = source.metrics();
    expect(m.invalid).toBe(expectedBad);
    expect(Object.values(m.skipped).reduce((a, b) => a + b, 0)).toBe(expectedSkips);
    expect(JSON.stringify(c.flows)).toBe(JSON.stringify(expected));
  });
});
