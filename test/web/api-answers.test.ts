/** What the API answers beyond its data: caching headers, status codes of failures, isolation marks. */
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/server/app.ts';
import { analysisSource } from '../../src/server/source.ts';
import type { GraphView, IsolationView, NodeDetails, ViewSource } from '../../src/server/types.ts';
import { CART, DB, FRONTEND, fixtureAnalysis } from './helpers.ts';

let fx: Awaited<ReturnType<typeof fixtureAnalysis>>;
let source: ViewSource;

beforeAll(async () => {
  fx = await fixtureAnalysis();
  source = analysisSource(fx.analysis, { title: 'fixture', mode: 'demo', audits: [fx.audit] });
});

describe('API answers are never cached', () => {
  it('carries no ETag and answers a conditional GET in full, as no-store says', async () => {
    const app = createApp(source);
    for (const path of ['/api/v1/info', '/api/v1/graph', '/api/v1/segments', '/api/v1/nodes?id=nope']) {
      const first = await request(app).get(path);
      expect([path, first.headers['cache-control'], first.headers.etag]).toEqual([
        path,
        'no-store',
        undefined,
      ]);
      // A client (or a proxy) that revalidates with what it saw gets the data again, never a 304.
      const again = await request(app).get(path).set('If-None-Match', '*');
      expect([path, again.status, again.text]).toEqual([path, first.status, first.text]);
      const since = await request(app)
        .get(path)
        .set('If-Modified-Since', new Date(Date.now() + 60_000).toUTCString());
      expect([path, since.status]).toEqual([path, first.status]);
    }
  });

  it('still lets a browser revalidate the page libraries it caches', async () => {
    const app = createApp(source);
    const first = await request(app).get('/vendor/sigma.min.js').expect(200);
    expect(first.headers['last-modified']).toBeDefined();
    await request(app)
      .get('/vendor/sigma.min.js')
      .set('If-Modified-Since', first.headers['last-modified'] as string)
      .expect(304);
  });
});

describe('GET /graph failures', () => {
  it('answers 400 for an unknown segment asked to expand', async () => {
    const res = await request(createApp(source)).get('/api/v1/graph?view=segments&expand=nope');
    expect([res.status, res.body]).toEqual([400, { error: 'unknown segment "nope"' }]);
  });

  it("answers 500, not the caller's fault (400), when the view cannot be built", async () => {
    // A source whose segmentation result is broken: a bug of the server's side, whatever was asked.
    const broken: ViewSource = {
      ...source,
      segments: () => ({ ...fx.analysis.segments, segments: undefined as never }),
    };
    const res = await request(createApp(broken)).get('/api/v1/graph');
    expect(res.status).toBe(500);
    expect(res.body.error).toMatch(/^internal error: /);
    expect(res.body.error).not.toMatch(/\n\s+at /);
  });

  it('tells the operator of an internal error, with its stack, and not of a 400', async () => {
    const broken: ViewSource = {
      ...source,
      segments: () => ({ ...fx.analysis.segments, segments: undefined as never }),
    };
    const told: { err: unknown; method: string; path: string }[] = [];
    const tell = {
      onInternalError: (err: unknown, req: { method: string; path: string }) => told.push({ err, ...req }),
    };
    await request(createApp(source, tell)).get('/api/v1/graph?view=segments&expand=nope').expect(400);
    expect(told).toEqual([]);
    await request(createApp(broken, tell)).get('/api/v1/graph?view=full').expect(500);
    expect(told.map((t) => [t.method, t.path])).toEqual([['GET', '/api/v1/graph']]);
    expect((told[0]!.err as Error).stack).toMatch(/\n\s+at /);
    // A logger that throws does not take the answer with it.
    const throwing = createApp(broken, {
      onInternalError: () => {
        throw new Error('log down');
      },
    });
    expect((await request(throwing).get('/api/v1/graph')).status).toBe(500);
  });

  it('tells the operator of a page file the server cannot read (500), not of one that is missing', async () => {
    // A symbolic link that loops: the file server cannot stat it (ELOOP) and answers 500 itself, an
    // error with its status set, as it would for a page file it may not read (EACCES) or a failing disk.
    const webRoot = mkdtempSync(join(tmpdir(), 'microseg-webroot-'));
    try {
      writeFileSync(join(webRoot, 'index.html'), '<html></html>');
      symlinkSync(join(webRoot, 'loop.js'), join(webRoot, 'loop.js'));
      const told: { err: unknown; method: string; path: string }[] = [];
      const app = createApp(source, {
        webRoot,
        onInternalError: (err, req) => told.push({ err, ...req }),
      });
      await request(app).get('/nope.js').expect(404);
      expect(told).toEqual([]);
      const res = await request(app).get('/loop.js?v=1').expect(500);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.body).toEqual({ error: 'request failed' });
      expect(told.map((t) => [t.method, t.path])).toEqual([['GET', '/loop.js']]);
      expect((told[0]!.err as NodeJS.ErrnoException).code).toBe('ELOOP');
    } finally {
      rmSync(webRoot, { recursive: true, force: true });
    }
  });
});

describe('isolations on the graph', () => {
  const isolation = (name: string, workload: string, state: string, pods: string[]): IsolationView => ({
    name,
    namespace: 'shop',
    target: workload,
    workloads: [workload],
    pods,
    method: 'NetworkPolicy',
    state,
    leaks: [],
  });

  it('marks isolated only the workloads whose pods are cut off, and pending ones apart', async () => {
    const views = [
      // Created, not reconciled yet (or a dry run, or no pod found): nothing is cut off.
      isolation('iso-cart', CART, 'Pending', []),
      isolation('iso-db', DB, 'Isolated', ['shop/db-0']),
      // Leaking: its pods are isolated, some rule still admits traffic (the panel names it).
      isolation('iso-frontend', FRONTEND, 'Leaking', ['shop/frontend-7d9f-aaaaa']),
      isolation('iso-old', 'shop/Deployment/backend', 'Released', []),
    ];
    const app = createApp({ ...source, isolations: () => views });
    const full = (await request(app).get('/api/v1/graph?view=full').expect(200)).body as GraphView;
    const marks = (id: string) => {
      const n = full.nodes.find((x) => x.id === id)!;
      return { isolated: n.isolated, isolationPending: n.isolationPending };
    };
    expect(marks(CART)).toEqual({ isolated: undefined, isolationPending: 1 });
    expect(marks(DB)).toEqual({ isolated: 1, isolationPending: undefined });
    expect(marks(FRONTEND)).toEqual({ isolated: 1, isolationPending: undefined });
    expect(full.nodes.filter((n) => n.isolated).map((n) => n.id)).toEqual([DB, FRONTEND].sort());

    // Aggregated: a segment counts its members of each kind.
    const segs = (await request(app).get('/api/v1/graph?view=segments').expect(200)).body as GraphView;
    const isolated = segs.nodes.reduce((s, n) => s + (n.isolated ?? 0), 0);
    const pending = segs.nodes.reduce((s, n) => s + (n.isolationPending ?? 0), 0);
    expect([isolated, pending]).toEqual([2, 1]);

    // The details still name the pending Isolation: it can be released (and its message read).
    const d = (await request(app).get('/api/v1/nodes').query({ id: CART }).expect(200)).body as NodeDetails;
    expect(d.isolation?.name).toBe('iso-cart');
  });

  it('counts a Pending isolation whose pods are labelled already as isolated', async () => {
    // The pods are labelled before the leak check publishes the phase.
    const app = createApp({
      ...source,
      isolations: () => [isolation('iso-cart', CART, 'Pending', ['shop/cart-1'])],
    });
    const full = (await request(app).get('/api/v1/graph?view=full').expect(200)).body as GraphView;
    expect(full.nodes.find((n) => n.id === CART)!.isolated).toBe(1);
  });
});
