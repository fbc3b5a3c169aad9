/**
 * The worker thread of `ObjectsParser` (parse.ts): parses the text of each request it is sent with
 * `parseObjectsText` and answers with the objects, or with the error's message and whether it was an
 * `InputError` (the caller's input was wrong) or something else.
 */
import { parentPort } from 'node:worker_threads';
import { InputError, parseObjectsText } from '../model/snapshot.ts';
import type { ParseReply, ParseRequest } from './parse.ts';

const port = parentPort;
if (port === null) throw new Error('parse-worker.ts runs as a worker thread only');
port.on('message', (req: ParseRequest) => {
  let reply: ParseReply;
  try {
    reply = { id: req.id, objects: parseObjectsText(req.text, req.source) };
  } catch (err) {
    reply = { id: req.id, error: (err as Error).message, input: err instanceof InputError };
  }
  port.postMessage(reply);
});
