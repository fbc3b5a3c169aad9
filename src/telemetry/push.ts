/**
 * HTTP push endpoint: `POST /v1/flows` takes flow records in the generic schema as JSON lines
 * (`application/x-ndjson`) or as a JSON array (`application/json`) and offers them to the FlowQueue.
 *
 * A request is all or nothing: if any record is bad the whole request is rejected with 400 naming the
 * first bad record (`line N` for JSON lines, `index N` for an array) and the field, and nothing from
 * it is queued; if the queue cannot take every record it answers 503 and queues none. So a client can
 * retry a failed request as is without double counting.
 *
 * Mount the router before any body parser: it reads the raw body itself to enforce the size limit.
 */
import type { IncomingMessage } from 'node:http';
import { gunzipSync } from 'node:zlib';
import express from 'express';
import type { Response, Router } from 'express';
import type { Flow } from '../flows/types.ts';
import { hasLoopbackEnd } from '../flows/common.ts';
import { parseGenericFlow } from '../flows/generic.ts';
import { notFlowRecord } from '../flows/not-flows.ts';
import { tokenMatches } from '../server/token-match.ts';
import type { FlowQueue } from './queue.ts';
import type { HubbleNormalizeResult } from './hubble.ts';

export type RecordResult = HubbleNormalizeResult;

export interface PushOptions {
  queue: FlowQueue;
  /** The bearer token clients must present. */
  token: string;
  /** Turns one parsed record into a flow. Defaults to the generic-schema parser (`parseGenericRecord`). */
  parse?: (record: unknown) => RecordResult;
  /** Largest accepted body in bytes. Default 1 MiB. */
  maxBytes?: number;
  /** Most records in one request. Default 10 000. */
  maxRecords?: number;
  /** Source name in queue accounting and metrics. Default `push`. */
  source?: string;
}

export interface PushMetrics {
  /** Responses per HTTP status code. */
  responses: Record<string, number>;
  /** Records queued. */
  accepted: number;
  /** Valid records deliberately not turned into flows, per reason. */
  skipped: Record<string, number>;
}

/**
 * The generic flow schema (docs/flows.md) as a record parser. A valid record with a loopback address
 * at either end is skipped (`loopback`), as the file reader skips it: such traffic never leaves its pod.
 * A record it refuses that is a Falco alert, an Alertmanager webhook payload or a Kubernetes object or
 * List is named as such, with where it belongs (a webhook, the API server), as the file reader names it
 * (`notFlowRecord`), not by its first field the schema lacks (`apiVersion`).
 */
export function parseGenericRecord(record: unknown): RecordResult {
  const r = parseGenericFlow(record);
  if (r instanceof Error) return { kind: 'bad', error: notFlowRecord(record, true, 'POST /v1/flows') ?? r };
  return hasLoopbackEnd(r) ? { kind: 'skip', reason: 'loopback' } : { kind: 'flow', flow: r };
}

export const DEFAULT_MAX_BYTES = 1024 * 1024;
export const DEFAULT_MAX_RECORDS = 10_000;

const CONTENT_TYPES: Record<string, 'ndjson' | 'json'> = {
  'application/x-ndjson': 'ndjson',
  'application/jsonl': 'ndjson',
  'application/json': 'json',
};

class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** The client closed the connection before sending its whole body. */
class ClientGone extends Error {
  constructor() {
    super('client closed the connection before the end of the body');
  }
}

/** Constant-time token comparison (equal-length digests, so no length leak either). */
export { tokenMatches };

/**
 * The request's body, at most `maxBytes` (else a 413 `HttpError`). Rejects with `ClientGone` when the
 * client closed the connection before the end of the body, also when that happened before this was
 * called (the router mounted behind a middleware that awaited): the events are not waited for then.
 * Exported for its tests.
 */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > maxBytes)
    return Promise.reject(
      new HttpError(413, `body of ${declared} bytes is over the limit of ${maxBytes} bytes`),
    );
  return new Promise((resolve, reject) => {
    // Already destroyed (the client went away) and not read to its end: 'close' was emitted before, and
    // neither 'data' nor 'end' will come.
    if (req.destroyed && !req.readableEnded) {
      reject(new ClientGone());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    let ended = false;
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > maxBytes) {
        failed = true;
        chunks.length = 0;
        reject(new HttpError(413, `body is over the limit of ${maxBytes} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      ended = true;
      if (!failed) resolve(Buffer.concat(chunks));
    });
    // The client went away before the end of its body was read (timed out, killed): there is no one to
    // answer. Whether the body had all arrived does not matter: once destroyed, 'end' never comes.
    const gone = () => {
      if (failed || ended) return;
      failed = true;
      chunks.length = 0;
      reject(new ClientGone());
    };
    req.on('error', gone);
    req.on('close', gone);
  });
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

interface Located {
  where: string;
  value?: unknown;
  /** Set when the line is not JSON; reported only if no earlier record is bad. */
  jsonError?: string;
}

function splitRecords(text: string, format: 'ndjson' | 'json', maxRecords: number): Located[] {
  const tooMany = () => new HttpError(413, `more than ${maxRecords} records in one request`);
  if (format === 'json') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new HttpError(400, `invalid JSON: ${(err as Error).message}`);
    }
    if (!Array.isArray(parsed)) {
      if (typeof parsed === 'object' && parsed !== null) {
        // A Falco alert or Alertmanager payload is named with its webhook, a Kubernetes object or List
        // (`kubectl get -o json`) as such; any other object is taken for a single record, and the two
        // ways to send one are said.
        const other = notFlowRecord(parsed, true, 'POST /v1/flows');
        throw new HttpError(
          400,
          other?.message ??
            'expected a JSON array of flow records, got an object: send a single record as an array of one ' +
              '([{...}]), or as JSON lines with Content-Type: application/x-ndjson',
        );
      }
      throw new HttpError(
        400,
        `expected a JSON array of flow records, got ${parsed === null ? 'null' : typeof parsed}`,
      );
    }
    if (parsed.length > maxRecords) throw tooMany();
    return (parsed as unknown[]).map((value, i) => ({ where: `index ${i}`, value }));
  }
  const out: Located[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    if (out.length >= maxRecords) throw tooMany();
    try {
      out.push({ where: `line ${i + 1}`, value: JSON.parse(line) });
    } catch (err) {
      out.push({ where: `line ${i + 1}`, jsonError: (err as Error).message });
    }
  }
  return out;
}

/** Builds the router and a metrics snapshot function. */
export function createPushEndpoint(opts: PushOptions): { router: Router; metrics: () => PushMetrics } {
  if (typeof opts.token !== 'string' || opts.token.length === 0)
    throw new Error('push endpoint: a non-empty bearer token is required');
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  const maxRecords = opts.maxRecords ?? DEFAULT_MAX_RECORDS;
  const source = opts.source ?? 'push';
  const parse = opts.parse ?? parseGenericRecord;
  const m: PushMetrics = { responses: {}, accepted: 0, skipped: {} };
  opts.queue.register(source);

  const reply = (res: Response, status: number, body: object) => {
    m.responses[status] = (m.responses[status] ?? 0) + 1;
    res.status(status).json(body);
  };

  const router = express.Router();
  router.post('/v1/flows', async (req, res) => {
    const auth = req.headers.authorization;
    const match = typeof auth === 'string' ? /^Bearer +(\S+) *$/i.exec(auth) : null;
    if (!match) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="microseg"');
      return reply(res, 401, { error: 'missing bearer token' });
    }
    if (!tokenMatches(match[1]!, opts.token)) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="microseg", error="invalid_token"');
      return reply(res, 401, { error: 'invalid bearer token' });
    }
    try {
      const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      const format = CONTENT_TYPES[type];
      if (!format)
        throw new HttpError(
          415,
          `unsupported content type '${type}': use application/x-ndjson (JSON lines) or application/json (an array)`,
        );
      const encoding = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
      if (encoding !== 'identity' && encoding !== 'gzip')
        throw new HttpError(415, `unsupported content encoding '${encoding}': use gzip or none`);
      let body = await readBody(req, maxBytes);
      if (encoding === 'gzip') {
        try {
          body = gunzipSync(body, { maxOutputLength: maxBytes });
        } catch (err) {
          if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE')
            throw new HttpError(413, `decompressed body is over the limit of ${maxBytes} bytes`);
          throw new HttpError(400, `body is not valid gzip: ${(err as Error).message}`);
        }
      }
      let text: string;
      try {
        text = utf8.decode(body);
      } catch {
        throw new HttpError(400, 'body is not valid UTF-8');
      }
      const records = splitRecords(text, format, maxRecords);
      if (records.length === 0) throw new HttpError(400, 'no flow records in the body');
      const flows: Flow[] = [];
      const skipped: Record<string, number> = {};
      for (const r of records) {
        if (r.jsonError !== undefined) throw new HttpError(400, `${r.where}: invalid JSON: ${r.jsonError}`);
        let result: RecordResult;
        try {
          result = parse(r.value);
        } catch (err) {
          result = { kind: 'bad', error: err instanceof Error ? err : new Error(String(err)) };
        }
        if (result.kind === 'bad') throw new HttpError(400, `${r.where}: ${result.error.message}`);
        if (result.kind === 'flow') flows.push(result.flow);
        else {
          const reason = result.kind === 'skip' ? result.reason : 'event';
          skipped[reason] = (skipped[reason] ?? 0) + 1;
        }
      }
      // A request the queue could not take even empty would be answered 503 for ever: the client must
      // split it, not retry it.
      if (flows.length > opts.queue.capacity)
        throw new HttpError(
          413,
          `request of ${flows.length} flows is over the flow queue capacity of ${opts.queue.capacity} flows: send at most ${opts.queue.capacity} records per request`,
        );
      // A replica shutting down has closed its queue: the records are refused, not lost (the client
      // retries, through the Service another replica), so they are not counted as dropped.
      if (opts.queue.isClosed) {
        res.setHeader('Retry-After', '1');
        throw new HttpError(
          503,
          `this replica is shutting down: ${flows.length} records not accepted, retry (another replica may take them)`,
        );
      }
      if (!opts.queue.offerAll(source, flows)) {
        res.setHeader('Retry-After', '1');
        throw new HttpError(503, `flow queue is full: ${flows.length} records not accepted, retry later`);
      }
      m.accepted += flows.length;
      for (const [k, v] of Object.entries(skipped)) m.skipped[k] = (m.skipped[k] ?? 0) + v;
      opts.queue.countDrop(source, 'ignored', records.length - flows.length);
      return reply(res, 202, { accepted: flows.length, skipped: records.length - flows.length });
    } catch (err) {
      // No response can reach a client that is gone, and it is no server error: nothing is counted.
      if (err instanceof ClientGone) return;
      if (err instanceof HttpError) {
        if (err.status === 413) {
          // Stop reading an oversized body: answer and close the connection.
          res.setHeader('Connection', 'close');
          req.resume();
        }
        return reply(res, err.status, { error: err.message });
      }
      return reply(res, 500, { error: 'internal error' });
    }
  });
  // Another method: 405 with Allow and a JSON error, as the controller's other endpoints answer one.
  router.all('/v1/flows', (req, res) => {
    res.setHeader('Allow', 'POST');
    reply(res, 405, { error: `${req.method} is not allowed on /v1/flows: it takes POST` });
  });

  return {
    router,
    metrics: () => ({ responses: { ...m.responses }, accepted: m.accepted, skipped: { ...m.skipped } }),
  };
}
