import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import express from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Kube, KubeRequest } from '../../src/isolate/kube.ts';
import { KubeError } from '../../src/isolate/kube.ts';
import type { Isolation } from '../../src/isolate/api.ts';
import { KnownIsolations } from '../../src/isolate/webhooks.ts';
import { IsolationMetrics } from '../../src/isolate/metrics.ts';
import { formatPrometheus } from '../../src/telemetry/prom.ts';
import { DEFAULT_ALERTMANAGER_CONFIG } from '../../src/isolate/triggers.ts';
import {
  RateLimiter,
  isolationWebhooks,
  parseTokens,
  tokenMatches,
  tokensFromSecret,
} from '../../src/isolate/webhooks.ts';

/** An in-memory stand-in for the apiserver's Isolation collection. */
class FakeKube implements Kube {
  readonly objects = new Map<string, unknown>();
  calls: KubeRequest[] = [];
  fail?: KubeError;
  delayMs = 0;
  async request<T>(req: KubeRequest): Promise<T> {
    this.calls.push(req);
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.fail) throw this.fail;
    const body = req.body as { metadata: { name: string } } | undefined;
    if (req.method === 'POST') {
      const key = `${req.path}/${body!.metadata.name}`;
      if (this.objects.has(key)) throw new KubeError(409, 'AlreadyExists', 'exists');
      const stored = { ...body, metadata: { ...body!.metadata, resourceVersion: '1' } };
      this.objects.set(key, stored);
      return structuredClone(stored) as T;
    }
    if (req.method === 'DELETE') {
      if (!this.objects.delete(req.path)) throw new KubeError(404, 'NotFound', 'not found');
      return {} as T;
    }
    const cur = this.objects.get(req.path) as Isolation | undefined;
    if (req.method === 'GET') {
      if (!cur) throw new KubeError(404, 'NotFound', 'not found');
      return structuredClone(cur) as T;
    }
    if (req.method === 'PATCH' && cur) {
      const patch = req.body as {
        metadata: { resourceVersion?: string; annotations?: Record<string, string> };
      };
      const rv = cur.metadata.resourceVersion ?? '1';
      if (patch.metadata.resourceVersion !== undefined && patch.metadata.resourceVersion !== rv)
        throw new KubeError(409, 'Conflict', 'modified');
      const next = structuredClone(cur);
      next.metadata.annotations = { ...next.metadata.annotations, ...patch.metadata.annotations };
      next.metadata.resourceVersion = String(Number(rv) + 1);
      this.objects.set(req.path, next);
      return structuredClone(next) as T;
    }
    throw new Error(`unexpected ${req.method}`);
  }
}

const TOKEN = 's3cret-token';
const falco = (pod: string) => ({
  rule: 'Terminal shell in container',
  priority: 'Critical',
  output_fields: { 'k8s.ns.name': 'shop', 'k8s.pod.name': pod },
});

function app(kube: Kube, extra: Partial<Parameters<typeof isolationWebhooks>[0]> = {}) {
  const a = express();
  a.use(isolationWebhooks({ kube, auth: { tokens: () => [TOKEN] }, ...extra }));
  return a;
}

/**
 * Webhooks over a fake API server with their own known Isolations (`watched`: fed by the leader's
 * watch), and a sender of a Falco alert for shop/`pod`.
 */
function falcoSender(pod: string, watched: boolean) {
  const kube = new FakeKube();
  const known = new KnownIsolations();
  known.setWatched(watched);
  const a = app(kube, { known });
  const send = () =>
    request(a).post('/webhooks/falco').set('authorization', `Bearer ${TOKEN}`).send(falco(pod));
  return { kube, known, send };
}

/**
 * A responder released the Isolation shop/<name>: the controller is restoring the pods before it
 * removes the finalizer. Its path.
 */
function beingReleased(kube: FakeKube, known: KnownIsolations, name: string): string {
  const path = `/apis/microseg.dev/v1alpha1/namespaces/shop/isolations/${name}`;
  const stored = kube.objects.get(path) as Isolation;
  kube.objects.set(path, {
    ...stored,
    metadata: { ...stored.metadata, deletionTimestamp: '2026-11-28T10:00:00Z' },
    status: { phase: 'Isolated' },
  });
  known.forget('shop', name);
  return path;
}

describe('KnownIsolations', () => {
  it('keeps none past its time, however many Isolations alerts named', async () => {
    const known = new KnownIsolations(20);
    const entries = (known as unknown as { entries: Map<string, number> }).entries;
    for (let i = 0; i < 50; i++) known.remember('shop', `cut-web-${i}`);
    expect(entries.size).toBe(50);
    await new Promise((resolve) => setTimeout(resolve, 50));
    // Those 50 never looked up again: gone with the next one remembered.
    known.remember('shop', 'cut-api-1');
    expect([...entries.keys()]).toEqual(['shop/cut-api-1']);
    expect(known.has('shop', 'cut-api-1')).toBe(true);
  });
});

describe('webhook receivers', () => {
  it('compares tokens in constant time over digests, rejecting empty configured tokens', () => {
    expect(tokenMatches('abc', ['x', 'abc'])).toBe(true);
    expect(tokenMatches('abc', ['abcd'])).toBe(false);
    expect(tokenMatches('', [''])).toBe(false);
  });

  it('401 without or with a wrong token; nothing reaches the apiserver', async () => {
    const kube = new FakeKube();
    const a = app(kube);
    const none = await request(a).post('/webhooks/falco').send(falco('p'));
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer realm="microseg"');
    expect(none.body).toEqual({ error: 'authentication required (bearer token or client certificate)' });
    const wrong = await request(a)
      .post('/webhooks/alertmanager')
      .set('authorization', 'Bearer nope')
      .send({});
    expect(wrong.status).toBe(401);
    expect(wrong.body).toEqual({ error: 'invalid bearer token' });
    expect(kube.calls).toEqual([]);
  });

  it('400 for malformed bodies; 200 with the persisted Isolation otherwise; duplicates coalesce', async () => {
    const kube = new FakeKube();
    kube.delayMs = 20;
    const metrics = new IsolationMetrics();
    const persisted: string[] = [];
    const a = app(kube, { metrics, onPersisted: (ns, name) => persisted.push(`${ns}/${name}`) });
    const bad = await request(a)
      .post('/webhooks/falco')
      .set('authorization', `Bearer ${TOKEN}`)
      .set('content-type', 'application/json')
      .send('{"rule":');
    expect(bad.status).toBe(400);
    const empty = await request(a).post('/webhooks/falco').set('authorization', `Bearer ${TOKEN}`);
    expect(empty.body).toEqual({ error: 'body is empty' });
    expect(kube.calls).toEqual([]);
    const res = await Promise.all(
      Array.from({ length: 10 }, () =>
        request(a).post('/webhooks/falco').set('authorization', `Bearer ${TOKEN}`).send(falco('cart-1')),
      ),
    );
    expect(res.map((r) => r.status)).toEqual(Array(10).fill(200));
    expect(kube.calls.filter((c) => c.method === 'POST')).toHaveLength(1);
    expect(kube.objects.size).toBe(1);
    expect(persisted).toHaveLength(1);
    const text = formatPrometheus(metrics.families());
    expect(text).toContain('microseg_isolation_alerts_total{source="falco",outcome="invalid"} 2');
    expect(text).toContain('microseg_isolation_alerts_total{source="falco",outcome="created"} 10');
  });

  it('an alert for an incident whose Isolation was released re-arms it; one still in effect is left alone', async () => {
    const kube = new FakeKube();
    const created: (Isolation | undefined)[] = [];
    const known = new KnownIsolations();
    const a = app(kube, { known, onPersisted: (_ns, _name, iso) => created.push(iso) });
    const send = () =>
      request(a).post('/webhooks/falco').set('authorization', `Bearer ${TOKEN}`).send(falco('cart-2'));
    const first = await send();
    const name = (first.body as { results: { name: string }[] }).results[0]!.name;
    const path = `/apis/microseg.dev/v1alpha1/namespaces/shop/isolations/${name}`;
    const stored = () => kube.objects.get(path) as Isolation;
    const setStatus = (status: Isolation['status']) => kube.objects.set(path, { ...stored(), status });
    const outcome = async () => {
      known.forget('shop', name); // as the controller's watch does when it sees the release
      const r = await send();
      return [r.status, (r.body as { results: { outcome: string }[] }).results[0]!.outcome];
    };

    setStatus({ phase: 'Isolated', isolatedAt: '2026-11-28T10:00:00.000Z' });
    expect(await outcome()).toEqual([200, 'exists']);
    expect(kube.calls.filter((c) => c.method === 'PATCH')).toEqual([]);

    setStatus({ phase: 'Released', releasedAt: '2000-01-01T00:00:00.000Z' });
    expect(await outcome()).toEqual([200, 'rearmed']);
    const patch = kube.calls.find((c) => c.method === 'PATCH')!;
    const received = (patch.body as { metadata: { annotations: Record<string, string> } }).metadata
      .annotations;
    expect(patch.body).toEqual({
      metadata: {
        resourceVersion: '1',
        annotations: {
          'microseg.dev/rearmed-at': received['microseg.dev/alert-received-at'],
          'microseg.dev/alert-received-at': received['microseg.dev/rearmed-at'],
        },
      },
    });
    expect(stored().metadata.annotations?.['microseg.dev/rearmed-at']).toBe(
      received['microseg.dev/rearmed-at'],
    );
    // The re-armed object is handed to the reconciler, as a created one is.
    expect(created.at(-1)?.metadata.resourceVersion).toBe('2');
    // Already re-armed after that release (another alert got there first): nothing more is written.
    expect(await outcome()).toEqual([200, 'exists']);
    expect(kube.calls.filter((c) => c.method === 'PATCH')).toHaveLength(1);
  });

  it('a replica no watch tells of deletions (not the leader) does not answer "exists" for an Isolation deleted elsewhere', async () => {
    // Its known Isolations are fed by no watch, as on a replica that does not lead.
    const { kube, send } = falcoSender('cart-9', false);
    const first = await send();
    const name = (first.body as { results: { name: string }[] }).results[0]!.name;
    const path = `/apis/microseg.dev/v1alpha1/namespaces/shop/isolations/${name}`;
    // The rest of the storm: one read from the apiserver's watch cache each, no write.
    kube.calls = [];
    const storm = await send();
    expect((storm.body as { results: { outcome: string }[] }).results[0]!.outcome).toBe('exists');
    expect(kube.calls.map((c) => [c.method, c.path, c.query])).toEqual([
      ['GET', path, { resourceVersion: '0' }],
    ]);
    // A responder releases it with `microseg release` (or through another replica): this replica is not told.
    kube.objects.delete(path);
    const again = await send();
    expect(again.status).toBe(200);
    expect((again.body as { results: { outcome: string }[] }).results[0]!.outcome).toBe('created');
    expect(kube.objects.has(path)).toBe(true);
    // Remembered again: the next alert is one read, as before.
    kube.calls = [];
    await send();
    expect(kube.calls.map((c) => c.method)).toEqual(['GET']);
    // Expired meanwhile (Released): the alert re-arms it.
    kube.objects.set(path, {
      ...(kube.objects.get(path) as Isolation),
      status: { phase: 'Released', releasedAt: '2000-01-01T00:00:00.000Z' },
    });
    const rearm = await send();
    expect((rearm.body as { results: { outcome: string }[] }).results[0]!.outcome).toBe('rearmed');
  });

  it('while a watch tells it of deletions (the leader), the rest of a storm makes no apiserver call', async () => {
    const { kube, known, send } = falcoSender('cart-8', true);
    await send();
    kube.calls = [];
    const storm = await send();
    expect((storm.body as { results: { outcome: string }[] }).results[0]!.outcome).toBe('exists');
    expect(kube.calls).toEqual([]);
    // The watch ends: what it would have forgotten meanwhile is not known, so each hit is read again.
    known.setWatched(false);
    await send();
    expect(kube.calls.map((c) => c.method)).toEqual(['GET']);
  });

  it('an Isolation the watch saw deleted while an alert was reading it is not remembered as existing', async () => {
    const { kube, known, send } = falcoSender('cart-7', true);
    const first = await send();
    const name = (first.body as { results: { name: string }[] }).results[0]!.name;
    const path = `/apis/microseg.dev/v1alpha1/namespaces/shop/isolations/${name}`;
    known.forget('shop', name); // another replica's alert: this one has not remembered it
    // The alert finds it (AlreadyExists, then read in effect); right after the read a responder deletes it
    // and the watch tells the cache, before the alert's answer remembers it.
    const request0 = kube.request.bind(kube);
    kube.request = async <T>(req: KubeRequest): Promise<T> => {
      const out = await request0<T>(req);
      if (req.method === 'GET' && req.path === path) {
        kube.objects.delete(path);
        known.forget('shop', name);
      }
      return out;
    };
    const raced = await send();
    expect((raced.body as { results: { outcome: string }[] }).results[0]!.outcome).toBe('exists');
    kube.request = request0;
    const next = await send();
    expect((next.body as { results: { outcome: string }[] }).results[0]!.outcome).toBe('created');
    expect(kube.objects.has(path)).toBe(true);
  });

  it('an alert for an incident whose Isolation is being deleted is answered 503, not lost as "exists"', async () => {
    const { kube, known, send } = falcoSender('cart-3', false);
    const first = await send();
    const name = (first.body as { results: { name: string }[] }).results[0]!.name;
    const path = beingReleased(kube, known, name);
    const again = await send();
    expect(again.status).toBe(503);
    expect(again.body).toEqual({
      error: `could not persist the Isolation: Isolation shop/${name} is being released; send the alert again once it is gone`,
    });
    // Not remembered as existing: once it is gone, the next alert creates it anew.
    kube.objects.delete(path);
    const later = await send();
    expect(later.status).toBe(200);
    expect((later.body as { results: { outcome: string }[] }).results[0]!.outcome).toBe('created');
  });

  it("Alertmanager: one alert's refused namespace does not hide another's Isolation being deleted (503, not 422)", async () => {
    const kube = new FakeKube();
    const known = new KnownIsolations();
    const a = app(kube, { known });
    const alert = (ns: string, pod: string, fingerprint: string) => ({
      status: 'firing',
      labels: { alertname: 'Shell', severity: 'critical', namespace: ns, pod },
      annotations: {},
      fingerprint,
    });
    const send = (alerts: unknown[]) =>
      request(a)
        .post('/webhooks/alertmanager')
        .set('authorization', `Bearer ${TOKEN}`)
        .send({ version: '4', status: 'firing', alerts });
    const first = await send([alert('shop', 'web-1', 'b2')]);
    expect(first.status).toBe(200);
    const name = (first.body as { results: { name: string }[] }).results[0]!.name;
    beingReleased(kube, known, name);
    const request0 = kube.request.bind(kube);
    kube.request = async <T>(req: KubeRequest): Promise<T> => {
      if (req.path.includes('/namespaces/gone/'))
        throw new KubeError(404, 'NotFound', 'namespaces "gone" not found');
      return request0<T>(req);
    };
    // Answering 422 (the refusal) would make Alertmanager drop the payload, and the shop alert with it.
    const res = await send([alert('gone', 'web-1', 'a1'), alert('shop', 'web-1', 'b2')]);
    expect(res.status).toBe(503);
    expect(res.body).toEqual({
      error: `could not persist the Isolation: Isolation shop/${name} is being released; send the alert again once it is gone`,
    });
  });

  it('apiserver trouble: 503 on 5xx (Alertmanager retries), 422 when the apiserver refuses the object', async () => {
    const kube = new FakeKube();
    const a = app(kube);
    kube.fail = new KubeError(500, 'InternalError', 'etcd down');
    const down = await request(a)
      .post('/webhooks/falco')
      .set('authorization', `Bearer ${TOKEN}`)
      .send(falco('p'));
    expect(down.status).toBe(503);
    kube.fail = new KubeError(404, 'NotFound', 'namespaces "shop" not found');
    const refused = await request(a)
      .post('/webhooks/falco')
      .set('authorization', `Bearer ${TOKEN}`)
      .send(falco('p'));
    expect(refused.status).toBe(422);
  });

  it("Alertmanager: one alert's refused namespace does not hide another's retryable failure (503, so nothing is lost)", async () => {
    // The refusal of the alert for a namespace that does not exist comes back first; the create of the
    // other alert's Isolation then fails with a 503. Answering 422 would make Alertmanager drop both.
    const kube: Kube = {
      async request<T>(req: KubeRequest): Promise<T> {
        if (req.path.includes('/namespaces/gone/'))
          throw new KubeError(404, 'NotFound', 'namespaces "gone" not found');
        await new Promise((r) => setTimeout(r, 20));
        throw new KubeError(503, 'ServiceUnavailable', 'etcd leader changed');
      },
    };
    const alert = (ns: string, fingerprint: string) => ({
      status: 'firing',
      labels: { alertname: 'Shell', severity: 'critical', namespace: ns, pod: 'web-1' },
      annotations: {},
      fingerprint,
    });
    const res = await request(app(kube))
      .post('/webhooks/alertmanager')
      .set('authorization', `Bearer ${TOKEN}`)
      .send({ version: '4', status: 'firing', alerts: [alert('gone', 'a1'), alert('shop', 'b2')] });
    expect(res.status).toBe(503);
    expect(res.body.error).toMatch(/^could not persist the Isolation: /);
  });

  it('Alertmanager: each alert of a payload answered 503 is counted under its own outcome (a rejection is not hidden)', async () => {
    const kube = new FakeKube();
    const metrics = new IsolationMetrics();
    const request0 = kube.request.bind(kube);
    kube.request = async <T>(req: KubeRequest): Promise<T> => {
      if (req.path.includes('/namespaces/busy/'))
        throw new KubeError(503, 'ServiceUnavailable', 'etcd leader changed');
      return request0<T>(req);
    };
    const alert = (labels: Record<string, string>, fingerprint: string) => ({
      status: 'firing',
      labels: { alertname: 'Shell', severity: 'critical', ...labels },
      fingerprint,
    });
    const res = await request(app(kube, { metrics }))
      .post('/webhooks/alertmanager')
      .set('authorization', `Bearer ${TOKEN}`)
      .send({
        version: '4',
        status: 'firing',
        alerts: [
          alert(
            { namespace: 'shop', pod: 'web-1', k8s_ns_name: 'kube-system', k8s_pod_name: 'coredns-1' },
            'f1',
          ),
          alert({ namespace: 'busy', pod: 'web-2' }, 'f2'),
          alert({ namespace: 'shop', pod: 'web-3' }, 'f3'),
        ],
      });
    expect(res.status).toBe(503);
    const text = formatPrometheus(metrics.families());
    expect(text).toContain('microseg_isolation_alerts_total{source="alertmanager",outcome="rejected"} 1');
    expect(text).toContain('microseg_isolation_alerts_total{source="alertmanager",outcome="failed"} 1');
    expect(text).toContain('microseg_isolation_alerts_total{source="alertmanager",outcome="created"} 1');
  });

  it('takes a large Alertmanager group, and answers a body over the limit with the limit', async () => {
    // Was 413 "body too large" above 1 MiB, which Alertmanager does not retry: the whole group was lost.
    const kube = new FakeKube();
    const lines: string[] = [];
    const a = app(kube, { log: (l) => lines.push(l) });
    const alerts = Array.from({ length: 600 }, (_, i) => ({
      status: 'firing',
      labels: { alertname: 'Shell', severity: 'critical', namespace: 'shop', pod: `cart-${i}` },
      annotations: { description: 'x'.repeat(4000) },
      fingerprint: `f${i}`,
    }));
    const group = { version: '4', status: 'firing', receiver: 'microseg', alerts };
    expect(JSON.stringify(group).length).toBeGreaterThan(2 * 1024 * 1024);
    const big = await request(a)
      .post('/webhooks/alertmanager')
      .set('authorization', `Bearer ${TOKEN}`)
      .send(group);
    expect(big.status).toBe(200);
    expect((big.body as { results: unknown[] }).results).toHaveLength(600);

    // Still bounded: over 8 MiB by default, and the answer says the limit.
    const huge = { ...group, alerts: [...alerts, ...alerts, ...alerts, ...alerts] };
    const over = await request(a)
      .post('/webhooks/alertmanager')
      .set('authorization', `Bearer ${TOKEN}`)
      .send(huge);
    expect(over.status).toBe(413);
    expect(over.body).toEqual({
      error:
        "body is larger than 8 MiB, the largest this webhook accepts; send smaller groups (the receiver's max_alerts in Alertmanager)",
    });
    expect(lines).toEqual([
      'the Alertmanager webhook refused a body larger than 8 MiB (413): its alerts were not acted on',
    ]);
    const small = app(kube, { maxBodyBytes: 1000 });
    const falcoOver = await request(small)
      .post('/webhooks/falco')
      .set('authorization', `Bearer ${TOKEN}`)
      .send({ ...falco('a'), output: 'y'.repeat(2000) });
    expect([falcoOver.status, (falcoOver.body as { error: string }).error]).toEqual([
      413,
      'body is larger than 1000 bytes, the largest this webhook accepts',
    ]);
  });

  it('bounds the bytes of bodies in flight: one more is asked to come again, not read', async () => {
    // 8 MiB bodies, 400 of them in a burst, could hold gigabytes at once.
    const kube = new FakeKube();
    const metrics = new IsolationMetrics();
    const server = app(kube, { maxBodyBytes: 1000, maxBytesInFlight: 1500, metrics }).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const { port } = server.address() as AddressInfo;
    const post = (body: string) =>
      fetch(`http://127.0.0.1:${port}/webhooks/alertmanager`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body,
      });
    const payload = (n: number) => {
      const base = JSON.stringify({ version: '4', status: 'firing', receiver: 'r', alerts: [], pad: '' });
      return JSON.stringify({
        version: '4',
        status: 'firing',
        receiver: 'r',
        alerts: [],
        pad: 'p'.repeat(n - base.length),
      });
    };
    const { connect } = await import('node:net');
    const slow = connect(port, '127.0.0.1');
    try {
      await new Promise((r) => slow.once('connect', r));
      // A sender of 800 bytes that has sent only part of them: in flight.
      slow.write(
        `POST /webhooks/alertmanager HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\n` +
          'Content-Type: application/json\r\nContent-Length: 800\r\n\r\n{"version":"4",',
      );
      await new Promise((r) => setTimeout(r, 100));
      const busy = await post(payload(800));
      expect([busy.status, busy.headers.get('retry-after')]).toEqual([503, '1']);
      expect(((await busy.json()) as { error: string }).error).toBe(
        'busy: 1 KiB of other alerts are being read or acted on; retry later',
      );
      // One that fits beside it is read.
      expect((await post(payload(300))).status).toBe(200);
      slow.destroy();
      await new Promise((r) => setTimeout(r, 100));
      // Once the sender is gone, its bytes are free again.
      expect((await post(payload(800))).status).toBe(200);
    } finally {
      slow.destroy();
      await new Promise((r) => server.close(r));
    }
    expect(formatPrometheus(metrics.families())).toContain(
      'microseg_isolation_alerts_total{source="alertmanager",outcome="busy"} 1',
    );
  });

  it('counts a compressed body as the largest, whatever its Content-Length', async () => {
    // A gzip body of a few bytes inflates to the limit: counted by its Content-Length, many such bodies
    // passed the bound together, each parsed at full size.
    const kube = new FakeKube();
    const server = app(kube, { maxBodyBytes: 1000, maxBytesInFlight: 1500 }).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const { port } = server.address() as AddressInfo;
    const { gzipSync } = await import('node:zlib');
    const am = JSON.stringify({
      version: '4',
      status: 'firing',
      receiver: 'r',
      alerts: [],
      pad: 'p'.repeat(800),
    });
    const gzipped = gzipSync(am);
    expect(gzipped.length).toBeLessThan(100);
    const post = () =>
      fetch(`http://127.0.0.1:${port}/webhooks/alertmanager`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${TOKEN}`,
          'content-type': 'application/json',
          'content-encoding': 'gzip',
        },
        body: gzipped,
      });
    // Alone, it is read (and inflated).
    expect((await post()).status).toBe(200);
    const { connect } = await import('node:net');
    const slow = connect(port, '127.0.0.1');
    try {
      await new Promise((r) => slow.once('connect', r));
      slow.write(
        `POST /webhooks/alertmanager HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\n` +
          'Content-Type: application/json\r\nContent-Length: 800\r\n\r\n{"version":"4",',
      );
      await new Promise((r) => setTimeout(r, 100));
      // Beside 800 bytes in flight, it may grow to 1000: over the 1500.
      const busy = await post();
      expect([busy.status, busy.headers.get('retry-after')]).toEqual([503, '1']);
    } finally {
      slow.destroy();
      await new Promise((r) => server.close(r));
    }
  });

  it('rate limits: 429 for Falco, 503 with Retry-After for Alertmanager', async () => {
    const kube = new FakeKube();
    const a = app(kube, { rateLimit: { perSecond: 0.001, burst: 1 } });
    const am = { version: '4', status: 'firing', alerts: [] };
    expect(
      (await request(a).post('/webhooks/falco').set('authorization', `Bearer ${TOKEN}`).send(falco('a')))
        .status,
    ).toBe(200);
    expect(
      (await request(a).post('/webhooks/falco').set('authorization', `Bearer ${TOKEN}`).send(falco('b')))
        .status,
    ).toBe(429);
    expect(
      (await request(a).post('/webhooks/alertmanager').set('authorization', `Bearer ${TOKEN}`).send(am))
        .status,
    ).toBe(200);
    const limited = await request(a)
      .post('/webhooks/alertmanager')
      .set('authorization', `Bearer ${TOKEN}`)
      .send(am);
    expect(limited.status).toBe(503);
    expect(limited.headers['retry-after']).toBe('1');
  });

  it('a method other than POST with a valid token gets 405, Allow: POST and a JSON error; without one 401', async () => {
    const kube = new FakeKube();
    const a = app(kube);
    for (const path of ['/webhooks/falco', '/webhooks/alertmanager', '/webhooks/falco/']) {
      const get = await request(a).get(path).set('authorization', `Bearer ${TOKEN}`);
      expect([get.status, get.headers.allow, get.headers['content-type']], path).toEqual([
        405,
        'POST',
        'application/json; charset=utf-8',
      ]);
      expect(get.body).toEqual({ error: 'method GET is not allowed; alerts are sent with POST' });
      const put = await request(a)
        .put(path)
        .set('authorization', `Bearer ${TOKEN}`)
        .set('content-type', 'application/json')
        .send('{not json');
      expect([put.status, put.headers.allow, put.body]).toEqual([
        405,
        'POST',
        { error: 'method PUT is not allowed; alerts are sent with POST' },
      ]);
    }
    expect((await request(a).get('/webhooks/falco')).status).toBe(401);
    expect(kube.calls).toEqual([]);
  });

  it('a path under /webhooks that is no webhook gets a JSON 404 naming the webhooks, its body unread', async () => {
    const kube = new FakeKube();
    const lines: string[] = [];
    // Bodies over the limit and not JSON: had either been read, the answer would be 413 or 400.
    const a = app(kube, { maxBodyBytes: 100, log: (l) => lines.push(l) });
    const auth = { authorization: `Bearer ${TOKEN}` };
    for (const [method, path] of [
      ['POST', '/webhooks/falco/x'],
      ['POST', '/webhooks/alertmanager/api/v2/alerts'],
      ['PUT', '/webhooks/falco/x'],
      ['POST', '/webhooks/other'],
      ['POST', '/webhooks'],
      ['GET', '/webhooks/'],
    ] as const) {
      const m = method === 'POST' ? 'post' : method === 'PUT' ? 'put' : 'get';
      for (const body of ['x'.repeat(1000), '{not json']) {
        const agent = request(a);
        const res = await agent[m](path).set(auth).set('content-type', 'application/json').send(body);
        expect([path, res.status, res.headers['content-type'], res.body]).toEqual([
          path,
          404,
          'application/json; charset=utf-8',
          {
            error: `no such webhook: ${method} ${path}; the webhooks are POST /webhooks/falco and POST /webhooks/alertmanager`,
          },
        ]);
      }
    }
    // Under a receiver, authentication still comes first.
    expect((await request(a).post('/webhooks/falco/x').send(falco('p'))).status).toBe(401);
    expect(kube.calls).toEqual([]);
    expect(lines).toEqual([]);
  });

  it("Alertmanager: the reviewer's forged and mixed payloads are rejected, answered and counted, and isolate nothing", async () => {
    const kube = new FakeKube();
    const metrics = new IsolationMetrics();
    const a = app(kube, { metrics });
    const send = (labels: Record<string, string>) =>
      request(a)
        .post('/webhooks/alertmanager')
        .set('authorization', `Bearer ${TOKEN}`)
        .send({
          version: '4',
          status: 'firing',
          alerts: [{ status: 'firing', labels: { severity: 'critical', ...labels }, fingerprint: 'ab12' }],
        });
    const evil = { alertname: 'CryptoMiner', namespace: 'tenant-a', pod: 'evil-1' };
    const cases: [Record<string, string>, string][] = [
      // Was kube-system/coredns isolated.
      [
        { ...evil, k8s_ns_name: 'kube-system', k8s_pod_name: 'coredns-5d78c9869d-x7k2p' },
        'alert ab12 names different pods: k8s_ns_name/k8s_pod_name kube-system/coredns-5d78c9869d-x7k2p, namespace/pod tenant-a/evil-1; every label family on an alert must name the same pod (--alertmanager-target-labels reads only the families given)',
      ],
      [
        { ...evil, exported_namespace: 'kube-system', exported_pod: 'coredns-5d78c9869d-x7k2p' },
        'alert ab12 names different pods: exported_namespace/exported_pod kube-system/coredns-5d78c9869d-x7k2p, namespace/pod tenant-a/evil-1; every label family on an alert must name the same pod (--alertmanager-target-labels reads only the families given)',
      ],
      // Was ignored: evil-1 escaped.
      [
        { ...evil, k8s_ns_name: 'x' },
        'alert ab12 has the label k8s_ns_name but not k8s_pod_name: a pod is named by both labels of a family, never completed from another',
      ],
      // falco-exporter scraped by Prometheus: was Falcosidekick isolated (before the last change), then
      // shop/cart; by default neither.
      [
        {
          alertname: 'FalcoCritical',
          k8s_ns_name: 'shop',
          k8s_pod_name: 'cart-7d9f-x2k4q',
          namespace: 'falco',
          pod: 'falcosidekick-5c7d9-abcde',
        },
        'alert ab12 names different pods: k8s_ns_name/k8s_pod_name shop/cart-7d9f-x2k4q, namespace/pod falco/falcosidekick-5c7d9-abcde; every label family on an alert must name the same pod (--alertmanager-target-labels reads only the families given)',
      ],
    ];
    for (const [labels, reason] of cases) {
      const res = await send(labels);
      expect(res.status, JSON.stringify(labels)).toBe(200);
      expect(res.body, JSON.stringify(labels)).toEqual({
        results: [{ action: 'reject', outcome: 'rejected', reason }],
      });
    }
    expect(kube.calls).toEqual([]);
    expect(formatPrometheus(metrics.families())).toContain(
      'microseg_isolation_alerts_total{source="alertmanager",outcome="rejected"} 4',
    );
  });

  it('Alertmanager: a Falcosidekick alert (k8s_* only) isolates its pod; falco-exporter alerts isolate the affected pod when only k8s_* are read', async () => {
    const send = (a: express.Express, labels: Record<string, string>) =>
      request(a)
        .post('/webhooks/alertmanager')
        .set('authorization', `Bearer ${TOKEN}`)
        .send({
          version: '4',
          status: 'firing',
          alerts: [{ status: 'firing', labels: { severity: 'critical', ...labels }, fingerprint: 'ab12' }],
        });
    const created = (kube: FakeKube, res: request.Response, ns: string, pod: string) => {
      expect(res.status).toBe(200);
      const r = (res.body as { results: { namespace: string; name: string; outcome: string }[] }).results;
      expect(r).toEqual([
        {
          action: 'isolate',
          namespace: ns,
          name: expect.stringMatching(`^alert-${pod}-`),
          outcome: 'created',
        },
      ]);
      const stored = kube.objects.get(
        `/apis/microseg.dev/v1alpha1/namespaces/${ns}/isolations/${r[0]!.name}`,
      ) as Isolation;
      expect(stored.spec?.target).toEqual({ pods: [pod] });
    };
    const kube = new FakeKube();
    const dflt = app(kube);
    created(
      kube,
      await send(dflt, {
        alertname: 'Terminal shell in container',
        source: 'falco',
        k8s_ns_name: 'shop',
        k8s_pod_name: 'cart-7d9f-x2k4q',
      }),
      'shop',
      'cart-7d9f-x2k4q',
    );
    // Agreeing families isolate.
    created(
      kube,
      await send(dflt, { namespace: 'pay', pod: 'api-1', exported_namespace: 'pay', exported_pod: 'api-1' }),
      'pay',
      'api-1',
    );
    const k8sOnly = new FakeKube();
    const exporter = app(k8sOnly, {
      alertmanager: {
        ...DEFAULT_ALERTMANAGER_CONFIG,
        targetLabels: [{ namespace: 'k8s_ns_name', pod: 'k8s_pod_name' }],
      },
    });
    created(
      k8sOnly,
      await send(exporter, {
        alertname: 'FalcoCritical',
        k8s_ns_name: 'shop',
        k8s_pod_name: 'cart-7d9f-x2k4q',
        namespace: 'falco',
        pod: 'falcosidekick-5c7d9-abcde',
      }),
      'shop',
      'cart-7d9f-x2k4q',
    );
    expect([...k8sOnly.objects.keys()].every((k) => k.includes('/namespaces/shop/'))).toBe(true);
  });

  it('Alertmanager: a warning (KubePodCrashLooping) does not isolate by default', async () => {
    const kube = new FakeKube();
    const res = await request(app(kube))
      .post('/webhooks/alertmanager')
      .set('authorization', `Bearer ${TOKEN}`)
      .send({
        version: '4',
        status: 'firing',
        alerts: [
          {
            status: 'firing',
            labels: {
              alertname: 'KubePodCrashLooping',
              severity: 'warning',
              namespace: 'shop',
              pod: 'cart-7d9f-x2k4q',
            },
            fingerprint: 'cc01',
          },
        ],
      });
    expect(res.body).toEqual({
      results: [
        {
          action: 'ignore',
          outcome: 'ignored',
          reason: 'severity "warning" is not one of the isolating severities (critical)',
        },
      ],
    });
    expect(kube.calls).toEqual([]);
  });

  it('Alertmanager: alerts it dropped beyond max_alerts (truncatedAlerts) are counted, logged and named in the answer', async () => {
    const kube = new FakeKube();
    const metrics = new IsolationMetrics();
    const logged: string[] = [];
    const a = app(kube, { metrics, log: (line) => logged.push(line) });
    const groupKey = '{}:{alertname="Terminal shell in container"}';
    const res = await request(a)
      .post('/webhooks/alertmanager')
      .set('authorization', `Bearer ${TOKEN}`)
      .send({
        version: '4',
        status: 'firing',
        receiver: 'microseg',
        groupKey,
        truncatedAlerts: 3,
        alerts: [
          {
            status: 'firing',
            labels: { alertname: 'Shell', severity: 'critical', namespace: 'shop', pod: 'web-1' },
            fingerprint: 'ab01',
          },
        ],
      });
    expect(res.status).toBe(200);
    const note = `Alertmanager left out 3 alerts of group ${groupKey} (receiver microseg) because of the receiver's max_alerts: they were never sent here, so no Isolation they ask for was made; raise max_alerts on the receiver (0 = no limit)`;
    expect(res.body).toMatchObject({
      results: [{ action: 'isolate', outcome: 'created' }],
      truncatedAlerts: 3,
      warning: note,
    });
    expect(logged).toEqual([note]);
    const text = formatPrometheus(metrics.families());
    expect(text).toContain('microseg_isolation_alerts_truncated_total{receiver="microseg"} 3');
    // A payload with nothing left out adds nothing.
    const whole = await request(a)
      .post('/webhooks/alertmanager')
      .set('authorization', `Bearer ${TOKEN}`)
      .send({ version: '4', status: 'firing', receiver: 'microseg', truncatedAlerts: 0, alerts: [] });
    expect(whole.body).toEqual({ results: [] });
    expect(logged).toHaveLength(1);
  });

  it('Alertmanager: a truncatedAlerts that is not a count is warned of, and the alerts that came still isolate', async () => {
    // A 4xx is final for Alertmanager: refusing the payload would drop its isolation requests too.
    const kube = new FakeKube();
    const metrics = new IsolationMetrics();
    const logged: string[] = [];
    const a = app(kube, { metrics, log: (line) => logged.push(line) });
    const res = await request(a)
      .post('/webhooks/alertmanager')
      .set('authorization', `Bearer ${TOKEN}`)
      .send({
        version: '4',
        status: 'firing',
        receiver: 'microseg',
        truncatedAlerts: '2',
        alerts: [
          {
            status: 'firing',
            labels: { alertname: 'Shell', severity: 'critical', namespace: 'shop', pod: 'web-1' },
            fingerprint: 'ab02',
          },
        ],
      });
    const note =
      'truncatedAlerts "2" of a payload (receiver microseg) is not a count (a whole number, 0 or more): ignored, the alerts that came were acted on; alerts of the group may have been left out';
    expect([res.status, res.body]).toEqual([
      200,
      { results: [expect.objectContaining({ action: 'isolate', outcome: 'created' })], warning: note },
    ]);
    expect(logged).toEqual([note]);
    expect(formatPrometheus(metrics.families())).not.toContain('microseg_isolation_alerts_truncated_total{');
  });

  it('Alertmanager: a field nested too deeply to quote is answered 400 in JSON naming it, never a 500 page with a stack', async () => {
    const kube = new FakeKube();
    const metrics = new IsolationMetrics();
    const logged: string[] = [];
    const a = app(kube, { metrics, log: (line) => logged.push(line) });
    // Deeper than JSON.stringify can follow (it recurses), well within the body limit.
    const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    const alert = (fields: string) =>
      `{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"severity":"critical","namespace":"shop","pod":"web-1"}${fields}}]}`;
    const send = (body: string) =>
      request(a)
        .post('/webhooks/alertmanager')
        .set('authorization', `Bearer ${TOKEN}`)
        .set('content-type', 'application/json')
        .send(body);
    const cases: [string, string][] = [
      [`{"version":${deep}}`, 'version (a list nested too deeply to show) is not supported (expected "4")'],
      [
        `{"version":"4","status":${deep}}`,
        'status (a list nested too deeply to show) is not one of firing, resolved',
      ],
      [
        alert(`,"startsAt":${deep}`),
        'alerts[0].startsAt (a list nested too deeply to show) is not an RFC 3339 time',
      ],
      [
        alert(`,"fingerprint":${deep}`),
        'alerts[0].fingerprint (a list nested too deeply to show) is not a fingerprint',
      ],
    ];
    for (const [body, error] of cases) {
      const res = await send(body);
      expect([res.status, res.headers['content-type'], res.body]).toEqual([
        400,
        'application/json; charset=utf-8',
        { error },
      ]);
    }
    // Not refused (see truncatedAlerts above): the alerts that came are acted on, the warning says so.
    const truncated = await send(
      alert('').replace('"status":"firing",', `"status":"firing","truncatedAlerts":${deep},`),
    );
    expect([truncated.status, truncated.body.warning]).toEqual([
      200,
      'truncatedAlerts (a list nested too deeply to show) of a payload is not a count (a whole number, 0 or more): ignored, the alerts that came were acted on; alerts of the group may have been left out',
    ]);
    expect(kube.calls.filter((c) => c.method === 'POST')).toHaveLength(1);
    expect(formatPrometheus(metrics.families())).toContain(
      'microseg_isolation_alerts_total{source="alertmanager",outcome="invalid"} 4',
    );
    // Any other failure of a receiver is answered in JSON too, and its stack goes to the log only.
    const failures: string[] = [];
    const broken = app(new FakeKube(), {
      now: () => {
        throw new Error('clock broken');
      },
      log: (line) => failures.push(line),
    });
    for (const [path, name] of [
      ['/webhooks/falco', 'Falco'],
      ['/webhooks/alertmanager', 'Alertmanager'],
    ]) {
      const res = await request(broken).post(path!).set('authorization', `Bearer ${TOKEN}`).send({});
      expect([res.status, res.headers['content-type'], res.body]).toEqual([
        500,
        'application/json; charset=utf-8',
        { error: 'internal error: clock broken' },
      ]);
      expect(failures.pop()).toMatch(
        new RegExp(`^the ${name} webhook failed on POST ${path}: Error: clock broken\n +at `),
      );
    }
  });

  it('a body that is not what its Content-Encoding says is answered 400 naming the encoding; nothing is written', async () => {
    const kube = new FakeKube();
    const metrics = new IsolationMetrics();
    const a = app(kube, { metrics });
    for (const [encoding, cause] of [
      ['gzip', 'incorrect header check'],
      ['deflate', 'incorrect header check'],
    ]) {
      const res = await request(a)
        .post('/webhooks/falco')
        .set('authorization', `Bearer ${TOKEN}`)
        .set('content-type', 'application/json')
        .set('content-encoding', encoding!)
        .send(JSON.stringify(falco('cart-1')));
      expect([res.status, res.body]).toEqual([
        400,
        { error: `body is not valid ${encoding} data (Content-Encoding: ${encoding}): ${cause}` },
      ]);
    }
    // The same alert compressed as it says is taken.
    const ok = await request(a)
      .post('/webhooks/falco')
      .set('authorization', `Bearer ${TOKEN}`)
      .set('content-type', 'application/json')
      .set('content-encoding', 'gzip')
      // Sent as the bytes given (superagent would write a Buffer as JSON).
      .serialize((b: Buffer) => b as unknown as string)
      .send(gzipSync(JSON.stringify(falco('cart-1'))));
    expect([ok.status, ok.body.results[0].outcome]).toEqual([200, 'created']);
    expect(kube.calls.filter((c) => c.method === 'POST')).toHaveLength(1);
    expect(formatPrometheus(metrics.families())).toContain(
      'microseg_isolation_alerts_total{source="falco",outcome="invalid"} 2',
    );
  });

  it('tokens are read one per line or comma-separated, by the Secret reader as by the token file reader', async () => {
    expect(parseTokens('tok1,tok2')).toEqual(['tok1', 'tok2']);
    expect(parseTokens(' a \r\nb, c\n\n,d,\n')).toEqual(['a', 'b', 'c', 'd']);
    expect(parseTokens('\n , \n')).toEqual([]);
    const kube = new FakeKube();
    kube.objects.set('/api/v1/namespaces/ms/secrets/hook', {
      data: { token: Buffer.from('tok1,tok2\ntok3\n').toString('base64') },
    });
    const t = await tokensFromSecret(kube, 'ms', 'hook');
    t.stop();
    expect(t.tokens()).toEqual(['tok1', 'tok2', 'tok3']);
  });

  it('a token refresh from the Secret that fails is logged, once per problem, and its recovery too', async () => {
    vi.useFakeTimers();
    try {
      const kube = new FakeKube();
      const path = '/api/v1/namespaces/ms/secrets/hook';
      const secret = (text: string) => ({ data: { token: Buffer.from(text).toString('base64') } });
      kube.objects.set(path, secret('tok1'));
      let down = false;
      const request = kube.request.bind(kube);
      kube.request = async <T>(req: KubeRequest): Promise<T> => {
        if (down)
          throw new KubeError(
            503,
            'ServiceUnavailable',
            'the server is currently unable to handle the request',
          );
        return request<T>(req);
      };
      const logged: string[] = [];
      const t = await tokensFromSecret(kube, 'ms', 'hook', 'token', 1000, (line) => logged.push(line));
      // The apiserver unavailable: the tokens read before are still accepted.
      down = true;
      await vi.advanceTimersByTimeAsync(1000);
      await vi.advanceTimersByTimeAsync(1000);
      expect(t.tokens()).toEqual(['tok1']);
      down = false;
      kube.objects.delete(path);
      await vi.advanceTimersByTimeAsync(1000);
      kube.objects.set(path, secret(' \n'));
      await vi.advanceTimersByTimeAsync(1000);
      kube.objects.set(path, secret('tok2'));
      await vi.advanceTimersByTimeAsync(1000);
      t.stop();
      expect(t.tokens()).toEqual(['tok2']);
      expect(logged).toEqual([
        'webhook tokens of Secret ms/hook key "token" cannot be refreshed: the server is currently unable to handle the request; the tokens read before are still accepted',
        'webhook tokens of Secret ms/hook key "token" cannot be refreshed: not found; the webhooks answer 503 until it holds a token again',
        'webhook tokens of Secret ms/hook key "token" cannot be refreshed: Secret ms/hook key "token" holds no token; the webhooks answer 503 until it holds a token again',
        'webhook tokens of Secret ms/hook key "token" are refreshed again',
      ]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a Secret key emptied or a Secret deleted revokes its tokens: requests get 503, retryable, until it holds one', async () => {
    vi.useFakeTimers();
    try {
      const kube = new FakeKube();
      const path = '/api/v1/namespaces/ms/secrets/hook';
      const secret = (text: string) => ({ data: { token: Buffer.from(text).toString('base64') } });
      kube.objects.set(path, secret('leaked'));
      const t = await tokensFromSecret(kube, 'ms', 'hook', 'token', 1000, () => undefined);
      expect(t.tokens()).toEqual(['leaked']);
      kube.objects.set(path, secret(''));
      await vi.advanceTimersByTimeAsync(1000);
      expect(() => t.tokens()).toThrow('Secret ms/hook key "token" holds no token');
      kube.objects.set(path, secret('fresh'));
      await vi.advanceTimersByTimeAsync(1000);
      expect(t.tokens()).toEqual(['fresh']);
      kube.objects.delete(path);
      await vi.advanceTimersByTimeAsync(1000);
      t.stop();
      expect(() => t.tokens()).toThrow('not found');
    } finally {
      vi.useRealTimers();
    }
  });

  it('the token bucket refills at its rate', () => {
    let t = 0;
    const rl = new RateLimiter(10, 2, () => t);
    expect([rl.take(), rl.take(), rl.take()]).toEqual([true, true, false]);
    t = 100;
    expect(rl.take()).toBe(true);
    expect(rl.take()).toBe(false);
  });
});

describe('mTLS', () => {
  let dir: string;
  let server: https.Server;
  let port: number;
  const kube = new FakeKube();
  const pem = (f: string) => readFileSync(join(dir, f));

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'microseg-mtls-'));
    const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
    ssl(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '1',
      '-subj',
      '/CN=test-ca',
    );
    for (const [n, cn] of [
      ['server', 'localhost'],
      ['client', 'falcosidekick'],
    ] as const) {
      ssl(
        'req',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        `${n}.key`,
        '-out',
        `${n}.csr`,
        '-subj',
        `/CN=${cn}`,
      );
      ssl(
        'x509',
        '-req',
        '-in',
        `${n}.csr`,
        '-CA',
        'ca.crt',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-out',
        `${n}.crt`,
        '-days',
        '1',
      );
    }
    const a = express();
    a.use(isolationWebhooks({ kube, auth: { clientCertificates: true } }));
    server = https.createServer(
      {
        key: pem('server.key'),
        cert: pem('server.crt'),
        ca: pem('ca.crt'),
        requestCert: true,
        rejectUnauthorized: false,
      },
      a,
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  const post = (withCert: boolean) =>
    new Promise<number>((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port,
          path: '/webhooks/falco',
          method: 'POST',
          ca: pem('ca.crt'),
          servername: 'localhost',
          headers: { 'content-type': 'application/json' },
          ...(withCert ? { cert: pem('client.crt'), key: pem('client.key') } : {}),
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end(JSON.stringify(falco('tls-pod')));
    });

  it('accepts a client certificate signed by the configured CA and refuses a request without one', async () => {
    expect(await post(false)).toBe(401);
    expect(kube.objects.size).toBe(0);
    expect(await post(true)).toBe(200);
    expect(kube.objects.size).toBe(1);
  });
});
