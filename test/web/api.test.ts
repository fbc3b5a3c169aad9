import { readFileSync } from 'node:fs';
import { gzipSync, zstdCompressSync } from 'node:zlib';
import express from 'express';
import request from 'supertest';
import { parseAllDocuments } from 'yaml';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import type { NetworkPolicy } from '../../src/model/k8s.ts';
import { policiesToYaml } from '../../src/policy/render.ts';
import { createApp } from '../../src/server/app.ts';
import { enforceDiff } from '../../src/server/audit.ts';
import { analysisSource } from '../../src/server/source.ts';
import type { AuditView, GraphView, NodeDetails, ViewSource } from '../../src/server/types.ts';
import { computeLayout } from '../../src/server/view.ts';
import { CART, DB, FRONTEND, NEW_EDGE, fixtureAnalysis, syntheticGraph, withIsolation } from './helpers.ts';

let fx: Awaited<ReturnType<typeof fixtureAnalysis>>;
let source: ViewSource;

beforeAll(async () => {
  fx = await fixtureAnalysis();
  source = analysisSource(fx.analysis, { title: 'fixture', mode: 'demo', audits: [fx.audit] });
});

describe('offline audit and enforce diff', () => {
  it('flags the connection first seen after learning, and no learned workload connection', () => {
    const keys = fx.audit.wouldBlock.map((b) => b.edge);
    // Not the kubelet probe from the node to cart: node-to-pod traffic is always admitted.
    expect(keys).toEqual([NEW_EDGE]);
    const blocked = fx.audit.wouldBlock.find((b) => b.edge === NEW_EDGE)!;
    expect(blocked).toMatchObject({ source: FRONTEND, target: DB, protocol: 'TCP', port: 5432, count: 3 });
    expect(blocked.reason).toMatch(/^denied: /);
    for (const learned of [`${FRONTEND}->${CART}:8080/TCP`, `${CART}->${DB}:5432/TCP`])
      expect(keys).not.toContain(learned);
    expect(fx.audit.conditions[0]).toMatchObject({
      type: 'WouldBlock',
      status: 'True',
      reason: 'FlowsWouldBeBlocked',
    });
  });

  it('lists every proposed policy as added on a cluster without policies', () => {
    const names = fx.analysis.proposal.policies
      .map((p) => `${p.metadata.namespace}/${p.metadata.name}`)
      .sort();
    expect(fx.audit.enforce).toEqual({ added: names, changed: [], removed: [], unchanged: 0 });
  });

  it('diffs by name and spec, and removes only microseg-managed policies in covered namespaces', () => {
    const np = (ns: string, name: string, port: number, managed = true): NetworkPolicy => ({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: {
        name,
        namespace: ns,
        ...(managed ? { labels: { 'app.kubernetes.io/managed-by': 'microseg' } } : {}),
      },
      spec: { podSelector: {}, ingress: [{ ports: [{ port, protocol: 'TCP' }] }] },
    });
    const existing = [
      np('a', 'same', 80),
      np('a', 'edited', 80),
      np('a', 'stale', 80),
      np('a', 'theirs', 80, false),
      np('b', 'elsewhere', 80),
    ];
    const proposed = [np('a', 'same', 80), np('a', 'edited', 81), np('a', 'new', 80)];
    expect(enforceDiff(existing, proposed, ['a'])).toEqual({
      added: ['a/new'],
      changed: ['a/edited'],
      removed: ['a/stale'],
      unchanged: 1,
    });
  });
});

describe('JSON API', () => {
  it('describes the source, its features and the caller', async () => {
    const res = await request(createApp(source)).get('/api/v1/info').expect(200);
    expect(res.body).toEqual({
      info: { mode: 'demo', title: 'fixture', flows: fx.analysis.flows },
      features: {
        audit: true,
        auditPolicies: false,
        isolations: false,
        blastRadius: false,
        isolate: false,
        release: false,
      },
      auth: { enabled: false, authenticated: false, canAct: false },
    });
    // With the snapshot, a change can be audited.
    const withSnapshot = analysisSource(fx.analysis, { snapshot: fx.snapshot });
    const info = await request(createApp(withSnapshot)).get('/api/v1/info').expect(200);
    expect(info.body.features.auditPolicies).toBe(true);
  });

  it('serves every graph node with a position, merged edges and segment colours', async () => {
    const res = await request(createApp(source)).get('/api/v1/graph').expect(200);
    const view = res.body as GraphView;
    expect(view.view).toBe('full');
    expect(view.nodes.map((n) => n.id)).toEqual(fx.analysis.graph.nodes.map((n) => n.id).sort());
    for (const n of view.nodes) {
      expect(Number.isFinite(n.x) && Number.isFinite(n.y)).toBe(true);
    }
    const fc = view.edges.find((e) => e.id === `${FRONTEND}->${CART}`)!;
    // ICMP, the forwarded 8080 flows (by pod IP and via the Service) and the dropped 9999 attempt.
    expect(fc.ports).toEqual(['ICMPv4/0', 'TCP/8080', 'TCP/9999']);
    expect(fc.count).toBe(4);
    expect(fc.edges).toBe(3);
    expect(view.segments.find((s) => s.id === 'shop-cart')).toMatchObject({ members: 3, color: '#59a14f' });
    expect(view.totals).toEqual({
      nodes: fx.analysis.graph.nodes.length,
      edges: fx.analysis.graph.edges.length,
      flows: fx.analysis.graph.edges.reduce((s, e) => s + e.count, 0),
      unobserved: 0,
    });
  });

  it('gives byte-identical graphs across reloads and app instances (stable layout)', async () => {
    const a = await request(createApp(source)).get('/api/v1/graph');
    const b = await request(createApp(analysisSource(fx.analysis))).get('/api/v1/graph');
    expect(a.text).toBe(b.text);
  });

  it('marks would-be-blocked flows of an audit on the graph', async () => {
    const res = await request(createApp(source)).get('/api/v1/graph?audit=shop-rollout').expect(200);
    const view = res.body as GraphView;
    expect(view.audit).toBe('shop-rollout');
    const e = view.edges.find((x) => x.id === `${FRONTEND}->${DB}`)!;
    expect(e).toMatchObject({ blocked: 3, blockedFlows: [NEW_EDGE], ports: ['TCP/5432'], count: 0 });
    expect(view.edges.find((x) => x.id === `${CART}->${DB}`)!.blocked).toBeUndefined();
  });

  it('rejects bad graph parameters with exact messages', async () => {
    const app = createApp(source);
    const cases: [string, number, string][] = [
      ['/api/v1/graph?view=tree', 400, 'view must be one of auto, full, segments (got "tree")'],
      ['/api/v1/graph?view=segments&expand=nope', 400, 'unknown segment "nope"'],
      ['/api/v1/graph?audit=other', 404, 'no audit named "other"'],
      ['/api/v1/graph?view=full&view=segments', 400, 'query parameter "view" must be given once'],
    ];
    for (const [url, status, error] of cases) {
      const res = await request(app).get(url);
      expect([url, res.status, res.body]).toEqual([url, status, { error }]);
    }
  });

  it('returns a workload with its evidence and its proposed policies as YAML', async () => {
    const res = await request(createApp(source))
      .get(`/api/v1/nodes?id=${encodeURIComponent(CART)}`)
      .expect(200);
    const d = res.body as NodeDetails;
    expect(d).toMatchObject({
      id: CART,
      kind: 'workload',
      label: 'cart',
      namespace: 'shop',
      segment: 'shop-cart',
    });
    const toDb = d.outbound.find((e) => e.peer === DB)!;
    expect(toDb).toMatchObject({ protocol: 'TCP', port: 5432, count: 1, peerLabel: 'db' });
    expect(toDb.firstSeen).toBe('2026-11-01T10:40:00.000Z');
    expect(d.inbound.map((e) => `${e.peer}:${e.port}`)).toContain(`${FRONTEND}:8080`);
    expect(d.policies).toEqual(fx.analysis.proposal.byWorkload[CART]);
    const docs = parseAllDocuments(d.policyYaml).map((doc) => doc.toJS() as NetworkPolicy);
    // The same policies, in the order to apply them: the namespace's default deny last.
    const names = docs.map((p) => `${p.metadata.namespace}/${p.metadata.name}`);
    expect([...names].sort()).toEqual([...d.policies].sort());
    expect(names.at(-1)).toBe('shop/microseg-default-deny');
    expect(docs.find((p) => p.metadata.name === 'microseg-cart')?.kind).toBe('NetworkPolicy');
  });

  it('explains a missing or unknown node id', async () => {
    const app = createApp(source);
    expect((await request(app).get('/api/v1/nodes').expect(400)).body).toEqual({
      error: 'query parameter "id" is required',
    });
    expect((await request(app).get('/api/v1/nodes?id=shop/Deployment/nope').expect(404)).body).toEqual({
      error: 'no node "shop/Deployment/nope" in the graph',
    });
  });

  it('exports the same data as the CLI: graph, segments, proposal (JSON and YAML)', async () => {
    const app = createApp(source);
    expect((await request(app).get('/api/v1/graph/export')).body).toEqual(fx.analysis.graph);
    expect((await request(app).get('/api/v1/segments')).body).toEqual(fx.analysis.segments);
    expect((await request(app).get('/api/v1/proposals')).body).toEqual(fx.analysis.proposal);
    const yaml = await request(app).get('/api/v1/proposals?format=yaml').expect('Content-Type', /yaml/);
    expect(yaml.text).toBe(policiesToYaml(fx.analysis.proposal.policies));
    expect((await request(app).get('/api/v1/proposals?format=xml').expect(400)).body).toEqual({
      error: 'format must be json or yaml (got "xml")',
    });
    expect((await request(app).get('/api/v1/audits')).body).toEqual([fx.audit] as AuditView[]);
  });

  it('searches by name, exact and prefix matches first', async () => {
    const app = createApp(source);
    const res = await request(app).get('/api/v1/search?q=CART').expect(200);
    expect(res.body.results[0]).toEqual({
      id: CART,
      label: 'cart',
      kind: 'workload',
      namespace: 'shop',
      segment: 'shop-cart',
    });
    const ip = await request(app).get('/api/v1/search?q=198.51').expect(200);
    expect(ip.body.results.map((r: { id: string }) => r.id)).toEqual(['world:198.51.100.7']);
    expect((await request(app).get('/api/v1/search').expect(400)).body.error).toBe(
      'query parameter "q" is required',
    );
    expect((await request(app).get('/api/v1/search?q=a&limit=0').expect(400)).body.error).toBe(
      'limit must be a whole number from 1 to 500 in decimal digits (got "0")',
    );
  });

  it('takes limit in decimal digits only, from 1 to 500', async () => {
    const big = syntheticGraph(600, 6);
    const app = createApp({
      info: () => ({ mode: 'offline', title: 'synthetic' }),
      graph: () => big.graph,
      segments: () => big.segments,
      proposal: () => big.proposal,
    });
    for (const bad of ['0x2', '1e2', '2.0', '', ' 2', '+2', '-1', '501', '0', '9'.repeat(30)]) {
      const res = await request(app).get(`/api/v1/search?q=svc&limit=${encodeURIComponent(bad)}`);
      expect([bad, res.status, res.body]).toEqual([
        bad,
        400,
        { error: `limit must be a whole number from 1 to 500 in decimal digits (got "${bad}")` },
      ]);
    }
    for (const [good, n] of [
      ['2', 2],
      ['007', 7],
      ['500', 500],
    ] as const) {
      const res = await request(app).get(`/api/v1/search?q=svc&limit=${good}`).expect(200);
      expect([good, res.body.results.length]).toEqual([good, n]);
    }
  });

  it('answers a method an endpoint does not take with 405 and the methods it takes', async () => {
    const app = createApp(source);
    const cases: [string, string, string][] = [
      ['put', '/api/v1/graph', 'GET, HEAD'],
      ['delete', '/api/v1/graph', 'GET, HEAD'],
      ['options', '/api/v1/graph', 'GET, HEAD'],
      ['post', '/api/v1/info', 'GET, HEAD'],
      ['post', '/api/v1/graph/export', 'GET, HEAD'],
      ['patch', '/api/v1/isolations', 'GET, HEAD, POST'],
      ['delete', '/api/v1/isolations', 'GET, HEAD, POST'],
      ['get', '/api/v1/isolations/iso-cart', 'DELETE'],
      ['post', '/api/v1/isolations/iso-cart', 'DELETE'],
    ];
    for (const [method, path, allow] of cases) {
      const res = await request(app)[method as 'put'](path);
      const shown = path.replace('/iso-cart', '/<name>');
      expect([method, path, res.status, res.headers.allow, res.body]).toEqual([
        method,
        path,
        405,
        allow,
        { error: `${method.toUpperCase()} is not allowed on ${shown}: it takes ${allow}` },
      ]);
    }
    // Mounted under a path, the message names the path the client used.
    const outer = express();
    outer.use('/ui', app);
    expect((await request(outer).put('/ui/api/v1/graph').expect(405)).body.error).toBe(
      'PUT is not allowed on /ui/api/v1/graph: it takes GET, HEAD',
    );
    // HEAD stays served where GET is, and an unknown path is still unknown.
    await request(app).head('/api/v1/graph').expect(200);
    expect((await request(app).put('/api/v1/nothing').expect(404)).body.error).toBe('no such API endpoint');
    // Authentication comes first: without a token, a wrong method is not described.
    await request(createApp(source, { auth: { token: 't' } }))
      .put('/api/v1/graph')
      .expect(401);
  });

  it('names the path segment that is not valid percent-encoding (400, not 500)', async () => {
    const app = createApp(source);
    const res = await request(app).delete('/api/v1/isolations/%E0%A4%A').expect(400);
    expect(res.body).toEqual({
      error:
        'path segment "%E0%A4%A" is not valid percent-encoding (each "%" takes two hex digits, and the bytes must be UTF-8)',
    });
    expect((await request(app).get('/api/v1/isolations/%E0%A4').expect(400)).body.error).toBe(
      'path segment "%E0%A4" is not valid percent-encoding (each "%" takes two hex digits, and the bytes must be UTF-8)',
    );
    // Outside the API: JSON too, not express's error page with a stack trace.
    const vendor = await request(app)
      .get('/vendor/%ZZ')
      .expect(400)
      .expect('Content-Type', 'application/json; charset=utf-8');
    expect(vendor.body).toEqual({
      error:
        'path segment "%ZZ" is not valid percent-encoding (each "%" takes two hex digits, and the bytes must be UTF-8)',
    });
    // Only a segment the router decodes (a parameter) is checked; elsewhere a path that matches no
    // endpoint or file is unknown: JSON, never an HTML error page.
    for (const path of ['/api/v1/gr%ZZaph', '/api/v1/graph/%ZZ', '/api', '/api/foo', '/api/v2/graph']) {
      const res = await request(app).get(path).expect(404).expect('Content-Type', /json/);
      expect([path, res.body]).toEqual([path, { error: 'no such API endpoint' }]);
    }
  });

  it('answers a path outside the API that is no file of the page 404 in JSON naming it and what the server serves', async () => {
    const app = createApp(source);
    for (const [method, path, named, accept] of [
      ['get', '/index%ZZ.html', '/index%ZZ.html', undefined],
      ['get', '/nothing.js?x=1', '/nothing.js', '*/*'],
      ['get', '/vendor/nothing.js', '/vendor/nothing.js', 'application/json'],
      ['get', '/healthzz', '/healthzz', 'text/plain'],
      ['post', '/nothing', '/nothing', undefined],
    ] as const) {
      const agent = request(app)[method](path);
      if (accept) agent.set('accept', accept);
      const res = await agent;
      expect([path, res.status, res.headers['content-type'], res.body]).toEqual([
        path,
        404,
        'application/json; charset=utf-8',
        {
          error: `no such endpoint: ${method.toUpperCase()} ${named}; this server serves the web page (GET /) and its JSON API (GET /api/v1/info and the rest of /api/v1/)`,
        },
      ]);
    }
  });

  it('answers a browser that asks for a page that is none with a small HTML page naming the path', async () => {
    const app = createApp(source);
    const res = await request(app)
      .get('/graph<b>')
      .set('accept', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8');
    expect([res.status, res.headers['content-type']]).toEqual([404, 'text/html; charset=utf-8']);
    expect(res.text).toContain('<title>Not found</title>');
    // The path as sent, escaped: no markup of the caller's reaches the page.
    expect(res.text).toContain('<code>/graph%3Cb%3E</code>');
    expect(res.text).toContain('<a href="/">');
    expect(res.text).not.toContain('<b>');
    // The page itself is still the page.
    await request(app)
      .get('/')
      .set('accept', 'text/html')
      .expect(200)
      .expect('Content-Type', /html/)
      .expect(/vendor\/sigma\.min\.js/);
  });

  it("answers another method on the page's files 405 with Allow and a JSON error", async () => {
    const app = createApp(source);
    for (const [method, path] of [
      ['post', '/index.html'],
      ['put', '/'],
      ['delete', '/app.js'],
      ['patch', '/vendor/sigma.min.js'],
      ['options', '/style.css'],
    ] as const) {
      const res = await request(app)[method](path).set('content-type', 'application/json').send('{not json');
      expect([path, res.status, res.headers.allow, res.headers['content-type'], res.body]).toEqual([
        path,
        405,
        'GET, HEAD',
        'application/json; charset=utf-8',
        { error: `${method.toUpperCase()} is not allowed on ${path}: it takes GET, HEAD` },
      ]);
    }
  });

  it('says which data a mode does not have', async () => {
    const app = createApp(analysisSource(fx.analysis));
    expect((await request(app).get('/api/v1/audits').expect(404)).body.error).toBe(
      'this source has no audit data',
    );
    expect((await request(app).get('/api/v1/isolations').expect(404)).body.error).toBe(
      'this source has no isolation data',
    );
    expect((await request(app).get('/api/v1/nothing').expect(404)).body.error).toBe('no such API endpoint');
  });

  it('serves the page and its libraries from local files', async () => {
    const app = createApp(source);
    const page = await request(app).get('/').expect(200).expect('Content-Type', /html/);
    // Relative URLs, so that the app can be mounted under a path (e.g. next to the controller's API).
    expect(page.text).toContain('<script src="vendor/sigma.min.js"></script>');
    const sigma = await request(app)
      .get('/vendor/sigma.min.js')
      .expect(200)
      .expect('Content-Type', /javascript/);
    expect(sigma.text.length).toBeGreaterThan(100_000);
    await request(app).get('/vendor/graphology.umd.min.js').expect(200);
    await request(app).get('/vendor/../package.json').expect(404);
    await request(app)
      .get('/app.js')
      .expect(200)
      .expect('Content-Type', /javascript/);
    const outer = express();
    outer.use('/ui', app);
    await request(outer).get('/ui/').expect(200).expect('Content-Type', /html/);
    await request(outer).get('/ui/vendor/sigma.min.js').expect(200);
    expect((await request(outer).get('/ui/api/v1/info').expect(200)).body.info.title).toBe('fixture');
  });

  it('serves the page, its files and the API with a Content-Security-Policy and nosniff', async () => {
    const app = createApp(source);
    for (const path of [
      '/',
      '/index.html',
      '/app.js',
      '/style.css',
      '/vendor/sigma.min.js',
      '/api/v1/info',
      '/api/v1/graph',
      '/api/v1/nodes',
      '/nope',
    ]) {
      const res = await request(app).get(path);
      expect(res.headers['x-content-type-options'], path).toBe('nosniff');
      const csp = String(res.headers['content-security-policy'] ?? '');
      // Scripts only from the server's own files: no inline script, no eval, nothing from elsewhere.
      expect(csp, path).toMatch(/(^|; )default-src 'none'(;|$)/);
      expect(csp, path).toMatch(/(^|; )script-src 'self'(;|$)/);
      expect(csp, path).toMatch(/(^|; )connect-src 'self'(;|$)/);
      expect(csp, path).toMatch(/(^|; )frame-ancestors 'none'(;|$)/);
      expect(csp, path).toMatch(/(^|; )object-src 'none'(;|$)/);
      expect(csp, path).toMatch(/(^|; )base-uri 'none'(;|$)/);
    }
    // The page itself has no inline script for the policy to block.
    const page = (await request(app).get('/').expect(200)).text;
    expect(page).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(page).not.toMatch(/\son[a-z]+=/i);
  });
});

describe('authentication and actions', () => {
  it('asks for a token on every API call when one is set', async () => {
    const app = createApp(source, { auth: { token: 's3cret' } });
    const res = await request(app).get('/api/v1/graph').expect(401);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="microseg"');
    expect(res.body).toEqual({ error: 'authentication required: send "Authorization: Bearer <token>"' });
    await request(app).get('/api/v1/graph').set('Authorization', 'Bearer wrong').expect(401);
    await request(app).get('/api/v1/graph').set('Authorization', 'Bearer s3cret').expect(200);
    const info = await request(app).get('/api/v1/info').set('Authorization', 'Bearer s3cret').expect(200);
    expect(info.body.auth).toEqual({ enabled: true, authenticated: true, user: 'token', canAct: true });
  });

  it('answers 503 with Retry-After when the credentials cannot be checked, not 500, and tells no internal error', async () => {
    const internal: unknown[] = [];
    const unchecked: [unknown, { method: string; path: string }][] = [];
    const src = withIsolation(source);
    // A TokenReview that is down (throws at once) or times out (rejects later).
    for (const verify of [
      (): string => {
        throw new Error('connect ECONNREFUSED 10.96.0.1:443');
      },
      async (): Promise<string> => {
        await new Promise((r) => setTimeout(r, 5));
        throw new Error('TokenReview timed out after 10s');
      },
    ]) {
      const app = createApp(src, {
        auth: { verify, anonymousRead: true },
        onInternalError: (err) => internal.push(err),
        onAuthUnavailable: (err, req) => unchecked.push([err, req]),
      });
      const error = {
        error: 'the token could not be checked now (the authentication check failed); retry later',
      };
      const read = await request(app).get('/api/v1/graph').set('Authorization', 'Bearer alice-token');
      expect([read.status, read.headers['retry-after'], read.headers['content-type'], read.body]).toEqual([
        503,
        '5',
        'application/json; charset=utf-8',
        error,
      ]);
      expect(read.headers['www-authenticate']).toBeUndefined();
      // An action's body is not read (not valid JSON here) before the caller is known.
      const act = await request(app)
        .post('/api/v1/isolations')
        .set('Authorization', 'Bearer alice-token')
        .set('Content-Type', 'application/json')
        .send('{');
      expect([act.status, act.headers['retry-after'], act.body]).toEqual([503, '5', error]);
      // A caller sending no credentials is not checked: an anonymous read still works.
      await request(app).get('/api/v1/info').expect(200);
    }
    expect(internal).toEqual([]);
    expect(src.calls).toEqual([]);
    expect(unchecked.map(([err, req]) => [(err as Error).message, req])).toEqual([
      ['connect ECONNREFUSED 10.96.0.1:443', { method: 'GET', path: '/api/v1/graph' }],
      ['connect ECONNREFUSED 10.96.0.1:443', { method: 'POST', path: '/api/v1/isolations' }],
      ['TokenReview timed out after 10s', { method: 'GET', path: '/api/v1/graph' }],
      ['TokenReview timed out after 10s', { method: 'POST', path: '/api/v1/isolations' }],
    ]);
    // As docs/api.md says it (the doc wraps lines).
    expect(
      readFileSync(new URL('../../docs/api.md', import.meta.url), 'utf8').replace(/\s+/g, ' '),
    ).toContain('the token could not be checked now (the authentication check failed); retry later');
  });

  it('answers 503 when the credentials check does not settle within verifyTimeoutMs, and ignores its late answer', async () => {
    const internal: unknown[] = [];
    const unchecked: [unknown, { method: string; path: string }][] = [];
    const src = withIsolation(source);
    const pending: ((user: string) => void)[] = [];
    // A TokenReview that never answers (its resolver is kept, to answer too late below).
    const verify = (): Promise<string> => new Promise((resolve) => pending.push(resolve));
    const app = createApp(src, {
      auth: { verify, verifyTimeoutMs: 20 },
      onInternalError: (err) => internal.push(err),
      onAuthUnavailable: (err, req) => unchecked.push([err, req]),
    });
    const error = {
      error: 'the token could not be checked now (the authentication check failed); retry later',
    };
    const read = await request(app).get('/api/v1/graph').set('Authorization', 'Bearer alice-token');
    expect([read.status, read.headers['retry-after'], read.headers['content-type'], read.body]).toEqual([
      503,
      '5',
      'application/json; charset=utf-8',
      error,
    ]);
    // An action's body is not read (not valid JSON here) before the caller is known.
    const act = await request(app)
      .post('/api/v1/isolations')
      .set('Authorization', 'Bearer alice-token')
      .set('Content-Type', 'application/json')
      .send('{');
    expect([act.status, act.headers['retry-after'], act.body]).toEqual([503, '5', error]);
    // The check answering after the request was answered changes nothing (no second answer, no action).
    expect(pending).toHaveLength(2);
    for (const resolve of pending) resolve('alice');
    await new Promise((r) => setImmediate(r));
    expect(internal).toEqual([]);
    expect(src.calls).toEqual([]);
    expect(unchecked.map(([err, req]) => [(err as Error).message, req])).toEqual([
      ['the authentication check did not answer within 20 ms', { method: 'GET', path: '/api/v1/graph' }],
      [
        'the authentication check did not answer within 20 ms',
        { method: 'POST', path: '/api/v1/isolations' },
      ],
    ]);
  });

  it('waits 5 s for the credentials check by default', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const unchecked: unknown[] = [];
      let asked = 0;
      const app = createApp(source, {
        auth: {
          verify: () => {
            asked++;
            return new Promise<string>(() => {});
          },
        },
        onAuthUnavailable: (err) => unchecked.push(err),
      });
      const answer = request(app)
        .get('/api/v1/graph')
        .set('Authorization', 'Bearer alice-token')
        .then((r) => r);
      // The request reaches the check (setImmediate is not faked: no fake time passes meanwhile).
      while (asked === 0) await new Promise((r) => setImmediate(r));
      await vi.advanceTimersByTimeAsync(4_999);
      expect(unchecked).toEqual([]);
      await vi.advanceTimersByTimeAsync(1);
      expect(unchecked.map((e) => (e as Error).message)).toEqual([
        'the authentication check did not answer within 5 s',
      ]);
      vi.useRealTimers();
      const res = await answer;
      expect([res.status, res.headers['retry-after']]).toEqual([503, '5']);
    } finally {
      vi.useRealTimers();
    }
  });

  it('refuses a verifyTimeoutMs that is no positive number of milliseconds', () => {
    for (const verifyTimeoutMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY])
      expect(
        () => createApp(source, { auth: { verify: () => 'a', verifyTimeoutMs } }),
        String(verifyTimeoutMs),
      ).toThrow(`auth.verifyTimeoutMs must be a positive number of milliseconds, found ${verifyTimeoutMs}`);
  });

  it('answers a request without a token before reading its body', async () => {
    const src = withIsolation(source);
    const app = createApp(src, {
      auth: { verify: (h) => (h === 'Bearer alice-token' ? 'alice' : undefined) },
    });
    // Not valid JSON, and over the body limit: neither is looked at before the caller is known.
    const junk = '{'.repeat(100 * 1024);
    const bad = await request(app)
      .post('/api/v1/isolations')
      .set('Content-Type', 'application/json')
      .send(junk)
      .expect(401);
    expect(bad.body).toEqual({ error: 'authentication required: send "Authorization: Bearer <token>"' });
    const known = await request(app)
      .post('/api/v1/isolations')
      .set('Authorization', 'Bearer alice-token')
      .set('Content-Type', 'application/json')
      .send('{')
      .expect(400);
    expect(known.body.error).toMatch(/^body is not valid JSON: /);
    expect(src.calls).toEqual([]);
  });

  it('lets anonymous users read but not act when anonymousRead is on', async () => {
    const src = withIsolation(source);
    const app = createApp(src, { auth: { token: 's3cret', anonymousRead: true } });
    await request(app).get('/api/v1/graph').expect(200);
    await request(app).post('/api/v1/isolations').send({ workload: CART }).expect(401);
    expect(src.calls).toEqual([]);
  });

  it('refuses credentials it does not accept when anonymousRead is on, rather than ignoring them', async () => {
    const app = createApp(source, { auth: { token: 's3cret', anonymousRead: true } });
    // A rotated or mistyped token is said to be refused (so the page asks for the current one), not
    // taken silently as an anonymous read-only caller.
    for (const header of ['Bearer wrong', 'Basic dXNlcjpwYXNz']) {
      const res = await request(app).get('/api/v1/info').set('Authorization', header);
      expect([header, res.status, res.headers['www-authenticate']]).toEqual([
        header,
        401,
        'Bearer realm="microseg"',
      ]);
    }
    const anonymous = await request(app).get('/api/v1/info').expect(200);
    expect(anonymous.body.auth).toEqual({ enabled: true, authenticated: false, canAct: false });
    const signedIn = await request(app).get('/api/v1/info').set('Authorization', 'Bearer s3cret').expect(200);
    expect(signedIn.body.auth).toMatchObject({ authenticated: true, canAct: true });
  });

  it('refuses actions when the server runs without authentication', async () => {
    const src = withIsolation(source);
    const res = await request(createApp(src)).post('/api/v1/isolations').send({ workload: CART }).expect(403);
    expect(res.body.error).toBe(
      'actions need an authenticated user; the server was started without authentication',
    );
    expect(src.calls).toEqual([]);
  });

  it('isolates and releases a workload for an authenticated user, marking it on the graph', async () => {
    const src = withIsolation(source);
    const app = createApp(src, {
      auth: { verify: (h) => (h === 'Bearer alice-token' ? 'alice' : undefined) },
    });
    const auth = { Authorization: 'Bearer alice-token' };
    const created = await request(app)
      .post('/api/v1/isolations')
      .set(auth)
      .send({ workload: CART, reason: 'suspected compromise' })
      .expect(201);
    expect(created.body).toMatchObject({
      name: 'iso-cart',
      target: CART,
      state: 'Isolated',
      method: 'NetworkPolicy',
    });
    const graph = (await request(app).get('/api/v1/graph').set(auth)).body as GraphView;
    expect(graph.nodes.find((n) => n.id === CART)!.isolated).toBe(1);
    expect(graph.nodes.filter((n) => n.isolated).length).toBe(1);
    const d = (
      await request(app)
        .get(`/api/v1/nodes?id=${encodeURIComponent(CART)}`)
        .set(auth)
    ).body as NodeDetails;
    expect(d.isolation?.name).toBe('iso-cart');
    await request(app).delete('/api/v1/isolations/iso-cart').set(auth).expect(204);
    expect((await request(app).delete('/api/v1/isolations/iso-cart').set(auth).expect(404)).body.error).toBe(
      'no isolation named "iso-cart"',
    );
    expect(src.calls).toEqual([
      `isolate ${CART} by alice`,
      'release iso-cart by alice',
      'release iso-cart by alice',
    ]);
  });

  it('validates isolation requests', async () => {
    const src = withIsolation(source);
    const app = createApp(src, { auth: { token: 't' } });
    const post = (body: unknown) =>
      request(app)
        .post('/api/v1/isolations')
        .set('Authorization', 'Bearer t')
        .send(body as object);
    const notObject = 'body must be a JSON object {"workload": "namespace/Kind/name", "reason"?: string}';
    expect((await post([1]).expect(400)).body.error).toBe(`${notObject} (got an array)`);
    const raw = (text: string, type = 'application/json') =>
      request(app)
        .post('/api/v1/isolations')
        .set('Authorization', 'Bearer t')
        .set('Content-Type', type)
        .send(text);
    // Valid JSON that is not an object is named as what it is, not as invalid JSON.
    expect((await raw('"str"').expect(400)).body.error).toBe(`${notObject} (got a string)`);
    expect((await raw('42').expect(400)).body.error).toBe(`${notObject} (got a number)`);
    expect((await raw('null').expect(400)).body.error).toBe(`${notObject} (got null)`);
    expect((await raw('{"workload": 1}', 'text/plain').expect(400)).body.error).toBe(
      `${notObject} (got no JSON body: send it with Content-Type: application/json)`,
    );
    expect((await post({ workload: 'cart' }).expect(400)).body.error).toBe(
      'body.workload must be a workload id "namespace/Kind/name"',
    );
    // Three parts, but not a namespace, a kind and a name: malformed, not a workload the graph lacks.
    for (const workload of ['//', 'shop//cart', '/Deployment/cart', 'shop/Deployment/'])
      expect((await post({ workload }).expect(400)).body.error, workload).toBe(
        'body.workload must be a workload id "namespace/Kind/name"',
      );
    expect((await post({ workload: CART, reason: 5 }).expect(400)).body.error).toBe(
      'body.reason must be a string',
    );
    expect((await post({ workload: 'shop/Deployment/ghost' }).expect(404)).body.error).toBe(
      'no workload "shop/Deployment/ghost" in the graph',
    );
    const bad = await request(app)
      .post('/api/v1/isolations')
      .set('Authorization', 'Bearer t')
      .set('Content-Type', 'application/json')
      .send('{"workload":')
      .expect(400);
    expect(bad.body.error).toBe('body is not valid JSON: Unexpected end of JSON input');
    const big = await request(app)
      .post('/api/v1/isolations')
      .set('Authorization', 'Bearer t')
      .send({ workload: CART, reason: 'x'.repeat(70_000) })
      .expect(413);
    expect(big.body.error).toBe('body is larger than 64 KiB');
    // The limit holds for the body as inflated: 70 kB of JSON gzipped to a few hundred bytes.
    const zipped = gzipSync(JSON.stringify({ workload: CART, reason: 'x'.repeat(70_000) }));
    const bomb = await request(app)
      .post('/api/v1/isolations')
      .set('Authorization', 'Bearer t')
      .set('Content-Type', 'application/json')
      .set('Content-Encoding', 'gzip')
      // Sent as the bytes given (superagent's type says string, it writes a Buffer as is).
      .serialize((b: Buffer) => b as unknown as string)
      .send(zipped)
      .expect(413);
    expect(bomb.body.error).toBe('body is larger than 64 KiB');
    const notGzip = await request(app)
      .post('/api/v1/isolations')
      .set('Authorization', 'Bearer t')
      .set('Content-Type', 'application/json')
      .set('Content-Encoding', 'gzip')
      .send(JSON.stringify({ workload: CART }))
      .expect(400);
    expect(notGzip.body.error).toBe(
      'body is not valid gzip data (Content-Encoding: gzip): incorrect header check',
    );
    // zstd is read too; another encoding is refused.
    const zstd = await request(app)
      .post('/api/v1/isolations')
      .set('Authorization', 'Bearer t')
      .set('Content-Type', 'application/json')
      .set('Content-Encoding', 'zstd')
      .serialize((b: Buffer) => b as unknown as string)
      .send(zstdCompressSync(JSON.stringify({ workload: 'shop/Deployment/ghost' })))
      .expect(404);
    expect(zstd.body.error).toBe('no workload "shop/Deployment/ghost" in the graph');
    const notZstd = await request(app)
      .post('/api/v1/isolations')
      .set('Authorization', 'Bearer t')
      .set('Content-Type', 'application/json')
      .set('Content-Encoding', 'zstd')
      .send(JSON.stringify({ workload: CART }))
      .expect(400);
    expect(notZstd.body.error).toBe(
      'body is not valid zstd data (Content-Encoding: zstd): Unknown frame descriptor',
    );
    const compress = await request(app)
      .post('/api/v1/isolations')
      .set('Authorization', 'Bearer t')
      .set('Content-Type', 'application/json')
      .set('Content-Encoding', 'compress')
      .send(JSON.stringify({ workload: CART }))
      .expect(415);
    expect(compress.body.error).toBe(
      'unsupported content encoding "compress": send the body as is or with gzip, deflate, br or zstd',
    );
    const ro = createApp(source, { auth: { token: 't' } });
    expect(
      (
        await request(ro)
          .post('/api/v1/isolations')
          .set('Authorization', 'Bearer t')
          .send({ workload: CART })
          .expect(405)
          .expect('Allow', 'GET, HEAD')
      ).body.error,
    ).toBe('this source cannot isolate workloads');
    const noRelease = await request(ro)
      .delete('/api/v1/isolations/iso-cart')
      .set('Authorization', 'Bearer t')
      .expect(405)
      .expect('Allow', '');
    expect(noRelease.body.error).toBe('this source cannot release isolations');
    expect(src.calls).toEqual([]);
  });
});

describe('large graphs', () => {
  it('aggregates 6,000 workloads by segment and expands one on request', async () => {
    const big = syntheticGraph(6000, 60);
    const src: ViewSource = {
      info: () => ({ mode: 'offline', title: 'big' }),
      graph: () => big.graph,
      segments: () => big.segments,
      proposal: () => big.proposal,
    };
    const app = createApp(src);
    const t0 = performance.now();
    const res = await request(app).get('/api/v1/graph').expect(200);
    const firstMs = performance.now() - t0;
    const view = res.body as GraphView;
    expect(view.view).toBe('segments');
    // 60 segments plus one group for the internet peers.
    expect(view.nodes.length).toBe(61);
    expect(view.nodes.filter((n) => n.kind === 'segment').every((n) => n.members === 100)).toBe(true);
    expect(view.nodes.find((n) => n.id === 'group:world')).toMatchObject({ kind: 'group', members: 300 });
    const flows = big.graph.edges.reduce((s, e) => s + e.count, 0);
    const inside = big.graph.edges
      .filter((e) => big.segments.membership[e.source] === big.segments.membership[e.target])
      .reduce((s, e) => s + e.count, 0);
    // Edges inside a segment vanish; every other flow is kept on an aggregated edge.
    expect(view.edges.reduce((s, e) => s + e.count, 0)).toBe(flows - inside);
    expect(view.totals.nodes).toBe(6300);

    const t1 = performance.now();
    const ex = (await request(app).get('/api/v1/graph?expand=seg-003').expect(200)).body as GraphView;
    const expandMs = performance.now() - t1;
    expect(ex.expanded).toEqual(['seg-003']);
    expect(ex.nodes.length).toBe(60 + 100);
    expect(ex.nodes.filter((n) => n.segment === 'seg-003' && n.kind === 'workload').length).toBe(100);
    const full = (await request(app).get('/api/v1/graph?view=full').expect(200)).body as GraphView;
    expect(full.nodes.length).toBe(6300);
    console.log(
      `6,300-node graph: first response (layout + aggregation) ${firstMs.toFixed(0)} ms, expand ${expandMs.toFixed(0)} ms`,
    );
    // The layout is cached: the second request does not lay the graph out again.
    expect(expandMs).toBeLessThan(firstMs);
  });

  it('keeps drawn nodes in place when the graph changes, and puts a new node beside its segment', async () => {
    const base = syntheticGraph(300, 6, 5);
    let graph = base.graph;
    let version = 'v1';
    const src: ViewSource = {
      info: () => ({ mode: 'controller', title: 'live' }),
      graph: () => graph,
      segments: () => base.segments,
      proposal: () => base.proposal,
      version: () => version,
    };
    const app = createApp(src);
    const v1 = (await request(app).get('/api/v1/graph').expect(200)).body as GraphView;
    const member = base.graph.nodes.find((n) => n.segment === 'seg-002')!;
    const added = {
      ...member,
      id: `${member.namespace}/Deployment/newcomer`,
      name: 'newcomer',
      flowsIn: 3,
      flowsOut: 0,
    };
    graph = {
      nodes: [...base.graph.nodes, added],
      edges: [
        ...base.graph.edges,
        {
          ...base.graph.edges[0]!,
          id: `${member.id}->${added.id}:80/TCP`,
          source: member.id,
          target: added.id,
          port: 80,
        },
      ],
    };
    version = 'v2';
    const v2 = (await request(app).get('/api/v1/graph').expect(200)).body as GraphView;
    const at = new Map(v2.nodes.map((n) => [n.id, n]));
    for (const n of v1.nodes) expect([n.id, at.get(n.id)!.x, at.get(n.id)!.y]).toEqual([n.id, n.x, n.y]);
    const seg = v2.nodes.filter((n) => n.segment === 'seg-002' && n.id !== added.id);
    const xs = seg.map((n) => n.x);
    const ys = seg.map((n) => n.y);
    const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
    const pad = Math.max(x1 - x0, y1 - y0) / 2;
    const p = at.get(added.id)!;
    expect(p.x >= x0 - pad && p.x <= x1 + pad && p.y >= y0 - pad && p.y <= y1 + pad).toBe(true);
  });

  it('lays a new version out once for the requests that come while its graph is read', async () => {
    const base = syntheticGraph(300, 6, 5);
    let reads = 0;
    const src: ViewSource = {
      info: () => ({ mode: 'controller', title: 'live' }),
      graph: async () => {
        reads++;
        await new Promise((r) => setTimeout(r, 20));
        return base.graph;
      },
      segments: () => base.segments,
      proposal: () => base.proposal,
      version: () => 'v1',
    };
    const app = createApp(src);
    const answers = await Promise.all([1, 2, 3].map(() => request(app).get('/api/v1/graph').expect(200)));
    // Each request reads the graph for its answer; the layout reads it once, not once per request.
    expect(reads).toBe(3 + 1);
    const first = (answers[0]!.body as GraphView).nodes;
    for (const a of answers) expect((a.body as GraphView).nodes).toEqual(first);
  });

  it('lays a version out again after its graph could not be read, not answering that failure for good', async () => {
    const base = syntheticGraph(60, 3, 5);
    let down = true;
    const src: ViewSource = {
      info: () => ({ mode: 'controller', title: 'live' }),
      graph: async () => {
        await new Promise((r) => setTimeout(r, 5));
        if (down) throw new Error('graph not ready');
        return base.graph;
      },
      segments: () => base.segments,
      proposal: () => base.proposal,
      version: () => 'v1',
    };
    const app = createApp(src);
    await request(app).get('/api/v1/graph').expect(500);
    // The same version, now readable: the failed read was not the version's layout.
    down = false;
    await request(app).get('/api/v1/graph').expect(200);
  });

  it('lays segments out together: members sit closer to their own segment than to others', () => {
    const { graph } = syntheticGraph(600, 12, 3);
    const layout = computeLayout(graph);
    const centre = new Map<string, { x: number; y: number; n: number }>();
    for (const n of graph.nodes) {
      if (!n.segment) continue;
      const p = layout.get(n.id)!;
      const c = centre.get(n.segment) ?? { x: 0, y: 0, n: 0 };
      centre.set(n.segment, { x: c.x + p.x, y: c.y + p.y, n: c.n + 1 });
    }
    let closest = 0;
    let total = 0;
    for (const n of graph.nodes) {
      if (!n.segment) continue;
      total++;
      const p = layout.get(n.id)!;
      let best = '';
      let bestD = Infinity;
      for (const [id, c] of centre) {
        const d = Math.hypot(p.x - c.x / c.n, p.y - c.y / c.n);
        if (d < bestD) [best, bestD] = [id, d];
      }
      if (best === n.segment) closest++;
    }
    expect(closest / total).toBeGreaterThan(0.9);
    expect(computeLayout(graph)).toEqual(layout);
  });
});
