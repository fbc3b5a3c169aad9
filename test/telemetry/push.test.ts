import { describe, expect, it } from 'vitest';
import express from 'express';
import request from 'supertest';
import { request as httpRequest } from 'node:http';
import { gzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import type { Flow } from '../../src/flows/types.ts';
import { FlowQueue } from '../../src/telemetry/queue.ts';
import { createPushEndpoint, readBody, tokenMatches } from '../../src/telemetry/push.ts';
import { createServer } from 'node:http';
import { connect } from 'node:net';
import type { PushOptions, RecordResult } from '../../src/telemetry/push.ts';
import { telemetryMetricFamilies } from '../../src/telemetry/metrics.ts';

const TOKEN = 's3cret-token-for-tests';
const ONE_OBJECT =
  'expected a JSON array of flow records, got an object: send a single record as an array of one ([{...}]), or as JSON lines with Content-Type: application/x-ndjson';

/** Test parser for a tiny record shape {src, dst, port, health?}. */
function parse(r: unknown): RecordResult {
  const o = r as Record<string, unknown>;
  if (typeof o !== 'object' || o === null || Array.isArray(o))
    return { kind: 'bad', error: new Error('expected an object') };
  if (o.health === true) return { kind: 'skip', reason: 'health' };
  if (typeof o.src !== 'string') return { kind: 'bad', error: new Error('src: expected a string') };
  if (typeof o.dst !== 'string') return { kind: 'bad', error: new Error('dst: expected a string') };
  if (!Number.isInteger(o.port))
    return { kind: 'bad', error: new Error(`port: expected an integer, got ${JSON.stringify(o.port)}`) };
  const flow: Flow = {
    time: 0,
    src: { pod: o.src },
    dst: { pod: o.dst },
    protocol: 'TCP',
    port: o.port as number,
    verdict: 'FORWARDED',
    input: 'generic',
  };
  return { kind: 'flow', flow };
}

function app(opts: Partial<PushOptions> = {}) {
  const queue = opts.queue ?? new FlowQueue({ capacity: 100 });
  const ep = createPushEndpoint({ queue, token: TOKEN, parse, maxBytes: 2048, maxRecords: 5, ...opts });
  const a = express();
  a.use(ep.router);
  return { app: a, queue, metrics: ep.metrics };
}

const rec = (port: number) => JSON.stringify({ src: 'a', dst: 'b', port });
const post = (a: express.Express, type = 'application/x-ndjson') =>
  request(a).post('/v1/flows').set('Authorization', `Bearer ${TOKEN}`).set('Content-Type', type);

describe('POST /v1/flows with the generic flow schema (default parser)', () => {
  const generic = () => {
    const queue = new FlowQueue({ capacity: 100 });
    const ep = createPushEndpoint({ queue, token: TOKEN });
    const a = express();
    a.use(ep.router);
    return { app: a, queue };
  };
  const good = {
    time: '2026-03-01T10:00:00Z',
    src: 'shop/cart-7d9f',
    dst: { ip: '10.0.3.7' },
    port: 5432,
    protocol: 'TCP',
    verdict: 'FORWARDED',
    count: 3,
  };

  it('queues normalised generic records', async () => {
    const { app: a, queue } = generic();
    const res = await post(a).send(`${JSON.stringify(good)}
${JSON.stringify({ ...good, port: 6379 })}
`);
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ accepted: 2, skipped: 0 });
    const flows = queue.takeNow(10).flows;
    expect(flows.map((f) => [f.input, f.port, f.count, f.time])).toEqual([
      ['generic', 5432, 3, Date.parse('2026-03-01T10:00:00Z')],
      ['generic', 6379, 3, Date.parse('2026-03-01T10:00:00Z')],
    ]);
  });

  it('names the line and the field of the first bad record', async () => {
    const { app: a, queue } = generic();
    const body = [good, { ...good, port: '80' }, { ...good, dst: undefined }]
      .map((r) => JSON.stringify(r))
      .join('\n');
    const res = await post(a).send(body);
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'line 2: port: expected an integer from 1 to 65535, got string "80"' });
    const missing = await post(a, 'application/json').send(
      JSON.stringify([good, good, { ...good, dst: undefined }]),
    );
    expect(missing.body).toEqual({ error: 'index 2: dst is missing' });
    const unknown = await post(a).send(JSON.stringify({ ...good, colour: 'red' }));
    expect(unknown.body).toEqual({ error: 'line 1: unknown field "colour"' });
    expect(queue.size).toBe(0);
  });

  it('lists the accepted values of a bad enum, the verdict as the protocol and reserved identity', async () => {
    const { app: a, queue } = generic();
    const verdict = await post(a).send(
      `${JSON.stringify(good)}\n${JSON.stringify({ ...good, verdict: 'ALLOWED' })}\n`,
    );
    expect(verdict.status).toBe(400);
    expect(verdict.body).toEqual({
      error:
        'line 2: verdict: unknown value "ALLOWED" (expected FORWARDED, DROPPED, ERROR, AUDIT, REDIRECTED, TRACED, TRANSLATED or UNKNOWN)',
    });
    const protocol = await post(a, 'application/json').send(JSON.stringify([{ ...good, protocol: 'gre' }]));
    expect(protocol.body).toEqual({
      error: 'index 0: protocol: unknown value "gre" (expected TCP, UDP, SCTP, ICMPv4 or ICMPv6)',
    });
    // Every value the message lists is taken.
    const listed = /\(expected (.*)\)$/
      .exec(verdict.body.error as string)![1]!
      .replace(' or ', ', ')
      .split(', ');
    expect(listed).toHaveLength(8);
    for (const v of listed) {
      const ok = await post(a).send(JSON.stringify({ ...good, verdict: v }));
      expect(ok.status, v).toBe(202);
    }
    expect(queue.size).toBe(8);
  });

  it('says what to send instead of a single record posted as application/json, and both ways are taken', async () => {
    const { app: a, queue } = generic();
    const one = await post(a, 'application/json').send(JSON.stringify(good));
    expect(one.status).toBe(400);
    expect(one.body).toEqual({ error: ONE_OBJECT });
    expect(queue.size).toBe(0);
    const wrapped = await post(a, 'application/json').send(`[${JSON.stringify(good)}]`);
    expect(wrapped.status).toBe(202);
    const lines = await post(a, 'application/x-ndjson').send(JSON.stringify(good));
    expect(lines.status).toBe(202);
    expect(queue.size).toBe(2);
  });

  it('names a Falco alert or an Alertmanager payload posted as flows, and the webhook it belongs to', async () => {
    const { app: a, queue } = generic();
    const falco = readFileSync(
      fileURLToPath(new URL('../../../shared/samples/falco-alert.json', import.meta.url)),
      'utf8',
    );
    const alertmanager = readFileSync(
      fileURLToPath(new URL('../isolate/fixtures/alertmanager-firing.json', import.meta.url)),
      'utf8',
    );
    const FALCO =
      "a Falco alert, not a flow (it has output, priority, rule and output_fields): Falco alerts are for the controller's webhook (POST /webhooks/falco), not POST /v1/flows";
    const ALERTMANAGER =
      "an Alertmanager webhook payload, not a flow (it has version, groupKey, status, receiver and alerts): Alertmanager alerts are for the controller's webhook (POST /webhooks/alertmanager), not POST /v1/flows";
    const lines = await post(a).send(`${JSON.stringify(good)}\n${JSON.stringify(JSON.parse(falco))}\n`);
    expect(lines.status).toBe(400);
    expect(lines.body).toEqual({ error: `line 2: ${FALCO}` });
    const array = await post(a, 'application/json').send(`[${JSON.stringify(good)},${alertmanager}]`);
    expect(array.status).toBe(400);
    expect(array.body).toEqual({ error: `index 1: ${ALERTMANAGER}` });
    // Posted alone as application/json (as the alert senders post them): named, with no position.
    const alone = await post(a, 'application/json').send(alertmanager);
    expect(alone.status).toBe(400);
    expect(alone.body).toEqual({ error: ALERTMANAGER });
    const falcoAlone = await post(a, 'application/json').send(falco);
    expect(falcoAlone.body).toEqual({ error: FALCO });
    // A generic record with one of their fields is no alert: the field is named as before.
    const record = await post(a).send(JSON.stringify({ ...good, rule: 'x', priority: 'Critical' }));
    expect(record.body).toEqual({ error: 'line 1: unknown field "rule"' });
    expect(queue.size).toBe(0);
  });
  it('names a Kubernetes object or List posted as flows, and where the objects of a cluster come from', async () => {
    const { app: a, queue } = generic();
    const ADVICE =
      'the controller reads the objects of a cluster from the API server (the CLI takes them with --cluster), not POST /v1/flows';
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web-1', namespace: 'shop' } };
    const lines = await post(a).send(`${JSON.stringify(good)}\n${JSON.stringify(pod)}\n`);
    expect(lines.status).toBe(400);
    expect(lines.body).toEqual({
      error: `line 2: a Kubernetes object (Pod shop/web-1, apiVersion v1), not a flow: ${ADVICE}`,
    });
    // An object of a group outside Kubernetes (Falco's k8smeta plugin), in an array.
    const meta = { apiVersion: 'k8smeta.falco.org/v1', kind: 'Meta', metadata: { name: 'node-1' } };
    const array = await post(a, 'application/json').send(JSON.stringify([good, meta]));
    expect(array.status).toBe(400);
    expect(array.body).toEqual({
      error: `index 1: a Kubernetes object (Meta node-1, apiVersion k8smeta.falco.org/v1), not a flow: ${ADVICE}`,
    });
    const list = await post(a).send(JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [pod, pod] }));
    expect(list.body).toEqual({ error: `line 1: a Kubernetes List of 2 object(s), not flows: ${ADVICE}` });
    // Posted alone as application/json (kubectl get -o json | curl -H 'Content-Type: application/json'),
    // as named: no advice to send it as an array of one, where it would be refused as what it is.
    const alone = await post(a, 'application/json').send(
      JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [pod, pod] }),
    );
    expect([alone.status, alone.body]).toEqual([
      400,
      { error: `a Kubernetes List of 2 object(s), not flows: ${ADVICE}` },
    ]);
    const podAlone = await post(a, 'application/json').send(JSON.stringify(pod));
    expect(podAlone.body).toEqual({
      error: `a Kubernetes object (Pod shop/web-1, apiVersion v1), not a flow: ${ADVICE}`,
    });
    // A Falco alert with an apiVersion and a kind is named as the Falco alert it is.
    const falco = {
      apiVersion: 'v1',
      kind: 'Event',
      rule: 'Terminal shell',
      priority: 'Critical',
      output: 'x',
    };
    expect((await post(a).send(JSON.stringify(falco))).body).toEqual({
      error:
        "line 1: a Falco alert, not a flow (it has output, priority and rule): Falco alerts are for the controller's webhook (POST /webhooks/falco), not POST /v1/flows",
    });
    // A generic record with one of their fields is no object: the field is named as before.
    const record = await post(a).send(JSON.stringify({ ...good, apiVersion: 'v1' }));
    expect(record.body).toEqual({ error: 'line 1: unknown field "apiVersion"' });
    expect(queue.size).toBe(0);
  });
});

describe('POST /v1/flows', () => {
  it('accepts JSON lines and queues every record', async () => {
    const { app: a, queue, metrics } = app();
    const res = await post(a).send(`${rec(80)}\n\n${rec(443)}\r\n${JSON.stringify({ health: true })}\n`);
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ accepted: 2, skipped: 1 });
    expect(queue.takeNow(10).flows.map((f) => f.port)).toEqual([80, 443]);
    expect(metrics()).toEqual({ responses: { 202: 1 }, accepted: 2, skipped: { health: 1 } });
    expect(queue.metrics().received).toEqual({ push: 2 });
    // As for Hubble, a record deliberately not taken as a flow is counted as dropped, `ignored`.
    expect(queue.metrics().dropped).toEqual({ push: { ignored: 1 } });
    expect(telemetryMetricFamilies({ queue: queue.metrics() })[3]).toEqual({
      name: 'microseg_telemetry_flows_dropped_total',
      help: 'Flows lost before the consumer, per source and reason (queue_full, invalid, ignored, duplicate).',
      type: 'counter',
      samples: [{ labels: { source: 'push', reason: 'ignored' }, value: 1 }],
    });
  });

  it('accepts a JSON array', async () => {
    const { app: a, queue } = app();
    const res = await post(a, 'application/json; charset=utf-8').send(`[${rec(1)},${rec(2)}]`);
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ accepted: 2, skipped: 0 });
    expect(queue.size).toBe(2);
  });

  it('answers 401 without a token and with a wrong one', async () => {
    const { app: a, queue, metrics } = app();
    const none = await request(a).post('/v1/flows').set('Content-Type', 'application/x-ndjson').send(rec(1));
    expect(none.status).toBe(401);
    expect(none.body).toEqual({ error: 'missing bearer token' });
    expect(none.headers['www-authenticate']).toBe('Bearer realm="microseg"');
    const wrong = await request(a)
      .post('/v1/flows')
      .set('Authorization', `Bearer ${TOKEN}x`)
      .set('Content-Type', 'application/x-ndjson')
      .send(rec(1));
    expect(wrong.status).toBe(401);
    expect(wrong.body).toEqual({ error: 'invalid bearer token' });
    const basic = await request(a).post('/v1/flows').set('Authorization', `Basic ${TOKEN}`).send(rec(1));
    expect(basic.status).toBe(401);
    expect(queue.size).toBe(0);
    expect(metrics().responses).toEqual({ 401: 3 });
  });

  it('rejects the whole request with 400 naming the first bad line and field', async () => {
    const { app: a, queue } = app();
    const res = await post(a).send(
      [rec(1), '', JSON.stringify({ src: 'a', dst: 'b', port: '80' }), '{bad'].join('\n'),
    );
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'line 3: port: expected an integer, got "80"' });
    expect(queue.size).toBe(0);
  });

  it('names the array index of a bad record', async () => {
    const { app: a, queue } = app();
    const res = await post(a, 'application/json').send(`[${rec(1)},{"src":"a","port":1}]`);
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'index 1: dst: expected a string' });
    expect(queue.size).toBe(0);
  });

  it('reports invalid JSON, a non-array, an empty body and bad UTF-8', async () => {
    const { app: a } = app();
    const bad = await post(a).send(`${rec(1)}\n{"src":`);
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/^line 2: invalid JSON: /);
    const obj = await post(a, 'application/json').send(rec(1));
    expect(obj.status).toBe(400);
    expect(obj.body).toEqual({ error: ONE_OBJECT });
    const num = await post(a, 'application/json').send('42');
    expect(num.body).toEqual({ error: 'expected a JSON array of flow records, got number' });
    const nul = await post(a, 'application/json').send('null');
    expect(nul.body).toEqual({ error: 'expected a JSON array of flow records, got null' });
    const empty = await post(a).send('\n\n');
    expect(empty.status).toBe(400);
    expect(empty.body).toEqual({ error: 'no flow records in the body' });
    const bytes = await post(a).send(Buffer.from([0x7b, 0xff, 0x7d]));
    expect(bytes.body).toEqual({ error: 'body is not valid UTF-8' });
  });

  it('answers 415 for other content types', async () => {
    const { app: a } = app();
    const res = await post(a, 'text/plain').send(rec(1));
    expect(res.status).toBe(415);
    expect(res.body).toEqual({
      error:
        "unsupported content type 'text/plain': use application/x-ndjson (JSON lines) or application/json (an array)",
    });
  });

  it('answers 413 over the byte limit and over the record limit', async () => {
    const { app: a, queue } = app();
    const big = await post(a).send('x'.repeat(3000));
    expect(big.status).toBe(413);
    expect(big.body).toEqual({ error: 'body of 3000 bytes is over the limit of 2048 bytes' });
    const many = await post(a).send([1, 2, 3, 4, 5, 6].map(rec).join('\n'));
    expect(many.status).toBe(413);
    expect(many.body).toEqual({ error: 'more than 5 records in one request' });
    const manyArr = await post(a, 'application/json').send(`[${[1, 2, 3, 4, 5, 6].map(rec).join(',')}]`);
    expect(manyArr.body).toEqual({ error: 'more than 5 records in one request' });
    expect(queue.size).toBe(0);
  });

  it('takes a gzip body and applies the size limit to the decompressed size', async () => {
    const { app: a, queue } = app();
    const ok = await post(a)
      .set('Content-Encoding', 'gzip')
      .send(gzipSync(`${rec(1)}\n${rec(2)}\n`));
    expect(ok.status).toBe(202);
    expect(ok.body).toEqual({ accepted: 2, skipped: 0 });
    const bomb = gzipSync(' '.repeat(100_000)); // about 130 bytes compressed
    const big = await post(a).set('Content-Encoding', 'gzip').send(bomb);
    expect(big.status).toBe(413);
    expect(big.body).toEqual({ error: 'decompressed body is over the limit of 2048 bytes' });
    const notGzip = await post(a).set('Content-Encoding', 'gzip').send(rec(1));
    expect(notGzip.status).toBe(400);
    expect(notGzip.body.error).toMatch(/^body is not valid gzip: /);
    const br = await post(a).set('Content-Encoding', 'br').send(rec(1));
    expect(br.status).toBe(415);
    expect(br.body).toEqual({ error: "unsupported content encoding 'br': use gzip or none" });
    expect(queue.size).toBe(2);
  });

  it('answers 413 for a chunked body that grows over the limit', async () => {
    const { app: a } = app();
    const server = a.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const { port } = server.address() as AddressInfo;
      const result = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = httpRequest(
          {
            host: '127.0.0.1',
            port,
            method: 'POST',
            path: '/v1/flows',
            headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/x-ndjson' },
          },
          (res) => {
            let body = '';
            res.on('data', (c: Buffer) => (body += c.toString()));
            res.on('end', () => resolve({ status: res.statusCode!, body }));
          },
        );
        req.on('error', reject);
        for (let i = 0; i < 5; i++) req.write('y'.repeat(1000));
        req.end();
      });
      expect(result.status).toBe(413);
      expect(JSON.parse(result.body)).toEqual({ error: 'body is over the limit of 2048 bytes' });
    } finally {
      server.close();
    }
  });

  it('does not count a client that gave up mid-body as a server error', async () => {
    const { app: a, queue, metrics } = app();
    const server = a.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const { port } = server.address() as AddressInfo;
      const req = httpRequest({
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/v1/flows',
        headers: {
          Authorization: `Bearer ${TOKEN}`,
          'Content-Type': 'application/x-ndjson',
          'Content-Length': '1000',
        },
      });
      req.on('error', () => {});
      req.write(rec(1) + '\n');
      await new Promise((r) => setTimeout(r, 50));
      // The collector times out or is killed before it has sent the whole body.
      req.destroy();
      await new Promise((r) => setTimeout(r, 200));
      expect(metrics().responses).toEqual({});
      expect(queue.size).toBe(0);
      const ok = await post(a).send(rec(2));
      expect(ok.status).toBe(202);
      expect(metrics().responses).toEqual({ 202: 1 });
    } finally {
      server.close();
    }
  });

  it('settles the body read of a request whose client was gone before the read began', async () => {
    // Was: the read waited for events already emitted, so its promise (and the request's handler) never
    // settled; each such request was held for ever. A middleware that awaits before the push router (an
    // authorisation check, a gate) leaves that window open.
    for (const sent of ['the whole body', 'half the body']) {
      const outcome = await new Promise<string>((done, fail) => {
        const server = createServer((req) => {
          // The read starts once the client has gone, as behind a middleware that awaited meanwhile.
          req.once('close', () =>
            setTimeout(() => {
              const settle = (what: string) => {
                clearTimeout(timer);
                server.close();
                done(what);
              };
              const timer = setTimeout(() => settle('never settled'), 1000);
              readBody(req, 2048).then(
                (b) => settle(`resolved with ${b.length} bytes`),
                (err: Error) => settle(`rejected: ${err.message}`),
              );
            }, 20),
          );
        });
        server.on('error', fail);
        server.listen(0, '127.0.0.1', () => {
          const { port } = server.address() as AddressInfo;
          const body = rec(1);
          const part = sent === 'the whole body' ? body : body.slice(0, 5);
          const sock = connect(port, '127.0.0.1', () => {
            sock.write(
              `POST /v1/flows HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nContent-Length: ${body.length}\r\n\r\n${part}`,
            );
            setTimeout(() => sock.destroy(), 20);
          });
          sock.on('error', () => undefined);
        });
      });
      expect(outcome, sent).toBe('rejected: client closed the connection before the end of the body');
    }
  });

  it('answers 503 with Retry-After and queues nothing when the queue cannot take the batch', async () => {
    const queue = new FlowQueue({ capacity: 3 });
    queue.offer(
      'hubble',
      [parse(JSON.parse(rec(9))) as never].map((r: { flow: Flow }) => r.flow),
    );
    const { app: a } = app({ queue });
    const res = await post(a).send([1, 2, 3].map(rec).join('\n'));
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('1');
    expect(res.body).toEqual({ error: 'flow queue is full: 3 records not accepted, retry later' });
    expect(queue.size).toBe(1);
    expect(queue.metrics().dropped.push).toEqual({ queue_full: 3 });
    const ok = await post(a).send([1, 2].map(rec).join('\n'));
    expect(ok.status).toBe(202);
  });

  it('answers 413, not a 503 to retry for ever, when a request holds more flows than the queue can', async () => {
    const queue = new FlowQueue({ capacity: 3 });
    const { app: a, metrics } = app({ queue });
    const res = await post(a).send([1, 2, 3, 4].map(rec).join('\n'));
    expect(res.status).toBe(413);
    expect(res.headers['retry-after']).toBeUndefined();
    expect(res.body).toEqual({
      error:
        'request of 4 flows is over the flow queue capacity of 3 flows: send at most 3 records per request',
    });
    expect(queue.size).toBe(0);
    expect(queue.metrics().dropped.push).toEqual({});
    expect(metrics().responses).toEqual({ 413: 1 });
    // Skipped records take no room: only the flows count against the capacity.
    const ok = await post(a).send([...[1, 2, 3].map(rec), JSON.stringify({ health: true })].join('\n'));
    expect(ok.status).toBe(202);
    expect(ok.body).toEqual({ accepted: 3, skipped: 1 });
  });

  it('answers a push during shutdown with a 503 that says so, counting nothing as dropped', async () => {
    const { app: a, queue, metrics } = app();
    queue.close();
    const res = await post(a).send([1, 2].map(rec).join('\n'));
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('1');
    expect(res.body).toEqual({
      error: 'this replica is shutting down: 2 records not accepted, retry (another replica may take them)',
    });
    // Refused, not lost: the client retries elsewhere, so no queue_full drop is counted.
    expect(queue.metrics().dropped.push).toEqual({});
    expect(metrics().responses).toEqual({ 503: 1 });
  });

  it('answers 405 for other methods', async () => {
    const { app: a } = app();
    const res = await request(a).get('/v1/flows').set('Authorization', `Bearer ${TOKEN}`);
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('POST');
    expect(res.body).toEqual({ error: 'GET is not allowed on /v1/flows: it takes POST' });
  });

  it('refuses to start without a token', () => {
    expect(() => createPushEndpoint({ queue: new FlowQueue({ capacity: 1 }), token: '', parse })).toThrow(
      'push endpoint: a non-empty bearer token is required',
    );
  });

  it('compares tokens exactly', () => {
    expect(tokenMatches('abc', 'abc')).toBe(true);
    expect(tokenMatches('abc', 'abd')).toBe(false);
    expect(tokenMatches('ab', 'abc')).toBe(false);
    expect(tokenMatches('', 'abc')).toBe(false);
  });
});
