/**
 * The thread `parseValues` (snapshot.ts) reads YAML in when composing it overflowed the calling thread's
 * stack on a document within MAX_NESTING: it reads the text again with a stack that holds that depth,
 * answers on the port it was given, and wakes the caller, which waits on `flag`. Started by the thread
 * that watches it (`DEEP_STACK_WATCH`), which wakes the caller instead when it stops without answering.
 */
import type { MessagePort } from 'node:worker_threads';
import { workerData } from 'node:worker_threads';
import { InputError, parseValuesOnDeepStack } from './snapshot.ts';
import type { DeepStackReply } from './snapshot.ts';

const { text, source, port, flag } = workerData as {
  text: string;
  source: string;
  port: MessagePort;
  flag: SharedArrayBuffer;
};
let reply: DeepStackReply;
try {
  reply = { parsed: parseValuesOnDeepStack(text, source) };
} catch (err) {
  reply = { error: (err as Error).message, input: err instanceof InputError };
}
port.postMessage(reply);
const done = new Int32Array(flag);
Atomics.store(done, 0, 1);
Atomics.notify(done, 0);
