import type { Flow } from '../../src/flows/types.ts';
import type { FlowQueue } from '../../src/telemetry/queue.ts';

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
