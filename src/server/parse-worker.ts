/**
 * The worker thread of `ObjectsParser` (parse.ts): parses the text of each request it is sent with
 * `parseObjectsText` and answers with the objects, or with the error's message and whether it was an
 * `InputError` (the caller's input was wrong) or something else.
 */
import { parentPort } from 'node:worker_threads';
import { InputError, parseObjectsText } from '../model/snapshot.ts';
import type { ParseReply, ParseRequest } from './parse.ts';

/**
 * The most levels of lists and objects inside one another a body may hold. Kubernetes objects need a
 * few dozen (a CustomResourceDefinition's schema in a kustomize build); what reads the objects after
 * the parse (the copy to the main thread, the snapshot, the audit) recurses, and a body of `[` a few
 * hundred KiB long would overflow its stack: an internal error for what is the body's fault.
 */
export const MAX_NESTING = 1000;

function tooDeep(source: string): InputError {
  return new InputError(
    `${source}: nested more than ${MAX_NESTING} levels deep (lists and objects inside one another), deeper than any Kubernetes object`,
  );
}

/** Whether `objects` (each at level 1) hold lists or objects more than `MAX_NESTING` levels deep. */
function nestedTooDeeply(objects: unknown[]): boolean {
  const stack: [unknown, number][] = objects.map((o) => [o, 1]);
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const [value, level] = top;
    if (value === null || typeof value !== 'object') continue;
    if (level > MAX_NESTING) return true;
    for (const child of Object.values(value)) stack.push([child, level + 1]);
  }
  return false;
}

const port = parentPort;
if (port === null) throw new Error('parse-worker.ts runs as a worker thread only');
port.on('message', (req: ParseRequest) => {
  let reply: ParseReply;
  try {
    const objects = parseObjectsText(req.text, req.source);
    if (nestedTooDeeply(objects)) throw tooDeep(req.source);
    reply = { id: req.id, objects };
  } catch (err) {
    // The parser itself recursing past its stack: nesting far deeper than the limit.
    const e = err instanceof RangeError && /call stack/.test(err.message) ? tooDeep(req.source) : err;
    reply = { id: req.id, error: (e as Error).message, input: e instanceof InputError };
  }
  port.postMessage(reply);
});
