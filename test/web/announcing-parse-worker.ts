/**
 * The parsing thread of `ObjectsParser` made to say when it has answered: just after each answer it
 * posts `replying` on the BroadcastChannel `ANNOUNCE_CHANNEL` (the answer is on its way to the main
 * thread then, copied already), so that a test knows when the main thread gets to the answer. Bodies are parsed by parse-worker.ts.
 */
import { BroadcastChannel, parentPort } from 'node:worker_threads';

export const ANNOUNCE_CHANNEL = 'microseg-test-parse-replies';

const port = parentPort;
if (port !== null) {
  const channel = new BroadcastChannel(ANNOUNCE_CHANNEL);
  channel.unref();
  const post = port.postMessage.bind(port);
  port.postMessage = (value: unknown, transfer?: Parameters<typeof post>[1]) => {
    post(value, transfer);
    channel.postMessage('replying');
  };
  await import('../../src/server/parse-worker.ts');
}
