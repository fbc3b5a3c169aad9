/**
 * The worker thread of `ObjectsParser` (parse.ts): parses the text of each request it is sent with
 * `parseObjectsText` and answers with the objects (or, for `audit`, with what `POST /audit` takes of
 * them, `auditBodyOf`, read here, encoded for the main thread to read in slices: `encodeAuditBody`), or with the error's message and whether it was an `InputError` (the
 * caller's input was wrong) or something else.
 */
import { parentPort } from 'node:worker_threads';
import { InputError, isStackOverflow, nestedTooDeeply, parseObjectsText } from '../model/snapshot.ts';
import { auditBodyOf, encodeAuditBody } from './audit-body.ts';
import type { ParseReply, ParseRequest } from './parse.ts';

const port = parentPort;
if (port === null) throw new Error('parse-worker.ts runs as a worker thread only');
port.on('message', (req: ParseRequest) => {
  let reply: ParseReply;
  // The buffer of an audit's policies, handed over (see EncodedAuditBody).
  const transfer: ArrayBuffer[] = [];
  try {
    // Lists and objects nested more than MAX_NESTING levels are refused there, as in the CLI's files.
    // Read on this thread's stack (DEEP_STACK_MB, see parse.ts), never on a second thread, which would
    // not be held to this one's memory limit.
    const objects = parseObjectsText(req.text, req.source, { ownStack: true });
    // Only the policies cross to the main thread: a body of millions of objects is refused here.
    if (req.audit) {
      const encoded = encodeAuditBody(auditBodyOf(objects, req.source));
      transfer.push(encoded.bytes);
      reply = { id: req.id, value: encoded };
    } else reply = { id: req.id, value: objects };
  } catch (err) {
    // A reader recursing past its stack all the same: nesting too deep.
    const e = isStackOverflow(err) ? nestedTooDeeply(req.source) : err;
    reply = { id: req.id, error: (e as Error).message, input: e instanceof InputError };
  }
  port.postMessage(reply, transfer);
});
