import type { Flow } from '../../src/flows/types.ts';
import type { FlowQueue } from '../../src/telemetry/queue.ts';
import type { HubbleNormalizeResult } from '../../src/telemetry/hubble.ts';
import type { DecodedFlow } from '../../src/telemetry/proto.ts';

export async function waitFor(cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Drains a queue in the background, acking every batch; `flows` fills as batches arrive. */
export function consume(queue: FlowQueue, opts: { delayMs?: number; batch?: number } = {}) {
  const flows: Flow[] = [];
  const ac = new AbortController();
  const done = (async () => {
    for await (const b of queue.batches(opts.batch ?? 1000, ac.signal)) {
      if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
      flows.push(...b.flows);
      b.ack();
    }
  })();
  return {
    flows,
    stop: async () => {
      ac.abort();
      await done;
    },
  };
}

/** Test normaliser: just enough of a Hubble flow to identify it by source port. */
export function normalize(f: DecodedFlow): HubbleNormalizeResult {
  const tcp = (f.l4 as { TCP?: { source_port?: number; destination_port?: number } } | undefined)?.TCP;
  if (!tcp) return { kind: 'bad', error: new Error('l4: expected TCP') };
  if ((f.source as { pod_name?: string }).pod_name === 'health') return { kind: 'skip', reason: 'health' };
  const t = f.time!;
  return {
    kind: 'flow',
    flow: {
      time: Number(t.seconds) * 1000 + Math.floor((t.nanos ?? 0) / 1e6),
      src: { pod: (f.source as { pod_name?: string }).pod_name! },
      dst: { pod: (f.destination as { pod_name?: string }).pod_name! },
      protocol: 'TCP',
      port: tcp.destination_port!,
      srcPort: tcp.source_port!,
      verdict: 'FORWARDED',
      input: 'hubble',
    },
  };
}
