/**
 * The controller's own endpoints (`/healthz`, `/readyz`, `/metrics`) and the paths under `/webhooks`
 * answer in JSON, as the rest of its API does, whatever is mounted after them (the web page answers
 * the paths it does not know alike, listing itself too).
 */
import type express from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { controllerApp, leaderGate } from '../../src/controller/server.ts';
import type { Kube } from '../../src/isolate/kube.ts';
import { isolationWebhooks } from '../../src/isolate/webhooks.ts';
import { createApp } from '../../src/server/app.ts';
import type { ViewSource } from '../../src/server/types.ts';
import { createPushEndpoint } from '../../src/telemetry/push.ts';
import { pageAuth } from '../../src/cli/commands/controller.ts';
import { fixtureAnalysis, withIsolation } from '../web/helpers.ts';
import { analysisSource } from '../../src/server/source.ts';
import { FlowQueue } from '../../src/telemetry/queue.ts';

/** The page's app over a source no test here reads. */
const page = () => createApp({} as ViewSource);

const kube: Kube = {
  request: () => Promise.reject(new Error('no API server in this test')),
};

function server(opts: { ui?: boolean; webhooks?: boolean } = {}): express.Express {
  return controllerApp({
    healthy: () => true,
    ready: () => ({ ok: true }),
    metrics: () => 'microseg_up 1\n',
    routers: opts.webhooks ? [{ router: isolationWebhooks({ kube, auth: { tokens: () => ['t'] } }) }] : [],
    ...(opts.ui ? { ui: page() } : {}),
  });
}

describe("the controller's own endpoints", () => {
  it('answers another method on /healthz, /readyz and /metrics 405 with Allow and a JSON error, its body unread', async () => {
    for (const ui of [false, true]) {
      const app = server({ ui, webhooks: true });
      for (const path of ['/healthz', '/readyz', '/metrics']) {
        expect((await request(app).get(path)).status, path).toBe(200);
        expect((await request(app).head(path)).status, path).toBe(200);
        for (const method of ['post', 'put', 'delete', 'patch', 'options'] as const) {
          const agent = request(app);
          const res = await agent[method](path).set('content-type', 'application/json').send('{not json');
          expect([ui, path, res.status, res.headers.allow, res.headers['content-type'], res.body]).toEqual([
            ui,
            path,
            405,
            'GET, HEAD',
            'application/json; charset=utf-8',
            { error: `${method.toUpperCase()} is not allowed on ${path}: it takes GET, HEAD` },
          ]);
        }
      }
    }
  });

  it('answers a path under /webhooks that is no webhook 404 in JSON, not with the page', async () => {
    const app = server({ ui: true, webhooks: true });
    const res = await request(app)
      .post('/webhooks/falco/x')
      .set('authorization', 'Bearer t')
      .send({ rule: 'r' });
    expect([res.status, res.headers['content-type'], res.body]).toEqual([
      404,
      'application/json; charset=utf-8',
      {
        error:
          'no such webhook: POST /webhooks/falco/x; the webhooks are POST /webhooks/falco and POST /webhooks/alertmanager',
      },
    ]);
  });

  it('says the webhooks are off when the controller serves none', async () => {
    for (const ui of [false, true]) {
      const app = server({ ui });
      for (const path of ['/webhooks/falco', '/webhooks/alertmanager', '/webhooks/x/y']) {
        const res = await request(app)
          .post(path)
          .set('authorization', 'Bearer t')
          .set('content-type', 'application/json')
          .send('{not json');
        expect([ui, res.status, res.headers['content-type'], res.body]).toEqual([
          ui,
          404,
          'application/json; charset=utf-8',
          {
            error: `no such webhook: POST ${path}; this controller serves no webhook (the isolation webhooks are on with --webhook-token-file)`,
          },
        ]);
      }
    }
  });
});

/** A controller with the flow push endpoint behind the leader gate the controller puts before it. */
function pushing(opts: { ui?: boolean; leading: boolean }) {
  const queue = new FlowQueue({ capacity: 100 });
  const ep = createPushEndpoint({ queue, token: 't' });
  const app = controllerApp({
    healthy: () => true,
    ready: () => ({ ok: true }),
    metrics: () => '',
    routers: [{ router: ep.router, gate: leaderGate(() => opts.leading), serves: ['POST /v1/flows'] }],
    ...(opts.ui ? { ui: page() } : {}),
  });
  return { app, queue };
}

const FLOW = '{"time":"2026-03-01T10:00:00Z","src":"shop/cart-7d9f","dst":{"ip":"10.0.3.7"},"port":5432}\n';

describe('unknown paths and methods', () => {
  it('answers a path the controller does not serve 404 in JSON, with or without the page', async () => {
    for (const ui of [false, true]) {
      const { app } = pushing({ ui, leading: true });
      const paths: [string, string][] = [
        ['post', '/v1/flows/x'],
        ['post', '/v1/flow'],
        ['get', '/v1'],
      ];
      for (const [method, path] of paths) {
        const agent = request(app);
        const res = await agent[method as 'get'](path)
          .set('authorization', 'Bearer t')
          .set('content-type', 'application/x-ndjson')
          .send(FLOW);
        expect([ui, path, res.status, res.headers['content-type'], res.body]).toEqual([
          ui,
          path,
          404,
          'application/json; charset=utf-8',
          { error: `no such endpoint: ${method.toUpperCase()} ${path}` },
        ]);
      }
    }
  });

  it('answers any other path 404 in JSON naming it and listing what the controller serves, with or without the page', async () => {
    const probes = 'GET /healthz, GET /readyz, GET /metrics';
    for (const ui of [false, true]) {
      for (const push of [false, true]) {
        const app = push ? pushing({ ui, leading: true }).app : server({ ui });
        const serves = `${probes}${push ? ', POST /v1/flows' : ''}${ui ? ', the web page (GET /) and its JSON API (GET /api/v1/info and the rest of /api/v1/)' : ''}`;
        const paths: [string, string, string | undefined][] = [
          ['get', '/healthzz', undefined],
          ['get', '/metricz', '*/*'],
          ['head', '/readyzz', undefined],
          ['post', '/nope', 'application/json'],
          ...(ui
            ? []
            : ([
                ['delete', '/', undefined],
                ['get', '/api/v1/graph', undefined],
              ] as [string, string, string | undefined][])),
        ];
        for (const [method, path, accept] of paths) {
          const agent = request(app)[method as 'get'](path);
          if (accept) agent.set('accept', accept);
          const res = await agent;
          const body =
            method === 'head'
              ? undefined
              : { error: `no such endpoint: ${method.toUpperCase()} ${path}; this server serves ${serves}` };
          expect([
            ui,
            push,
            path,
            res.status,
            res.headers['content-type'],
            method === 'head' ? undefined : res.body,
          ]).toEqual([ui, push, path, 404, 'application/json; charset=utf-8', body]);
        }
        // A browser that mistypes a path gets a small page saying so, with a link to the page if any.
        const page = await request(app).get('/metricz').set('accept', 'text/html,*/*;q=0.8');
        expect([ui, push, page.status, page.headers['content-type']]).toEqual([
          ui,
          push,
          404,
          'text/html; charset=utf-8',
        ]);
        expect(page.text).toContain('<code>/metricz</code>');
        expect(page.text.includes('<a href="/">')).toBe(ui);
      }
    }
  });

  it('says so for POST /v1/flows when the push endpoint is off', async () => {
    for (const ui of [false, true]) {
      const res = await request(server({ ui }))
        .post('/v1/flows')
        .set('content-type', 'application/x-ndjson')
        .send(FLOW);
      expect([ui, res.status, res.headers['content-type'], res.body]).toEqual([
        ui,
        404,
        'application/json; charset=utf-8',
        {
          error:
            'no such endpoint: POST /v1/flows; this controller takes no pushed flows (POST /v1/flows is on with --push-token-file)',
        },
      ]);
    }
  });

  it('answers another method on /v1/flows 405 with Allow and a JSON error, on a leader and on another replica', async () => {
    for (const leading of [true, false]) {
      const { app, queue } = pushing({ ui: true, leading });
      for (const method of ['get', 'put', 'delete', 'patch'] as const) {
        const res = await request(app)[method]('/v1/flows').set('authorization', 'Bearer t').send(FLOW);
        expect([
          leading,
          method,
          res.status,
          res.headers.allow,
          res.headers['content-type'],
          res.body,
        ]).toEqual([
          leading,
          method,
          405,
          'POST',
          'application/json; charset=utf-8',
          { error: `${method.toUpperCase()} is not allowed on /v1/flows: it takes POST` },
        ]);
      }
      expect(queue.size).toBe(0);
    }
  });

  it('refuses flows on a replica that is not leading however the path is spelled', async () => {
    const { app, queue } = pushing({ ui: false, leading: false });
    for (const path of ['/v1/flows', '/V1/Flows', '/v1/flows/']) {
      const res = await request(app)
        .post(path)
        .set('authorization', 'Bearer t')
        .set('content-type', 'application/x-ndjson')
        .send(FLOW);
      expect([path, res.status, res.headers['retry-after'], res.body]).toEqual([
        path,
        503,
        '1',
        { error: 'not the leader: another replica is leading; retry' },
      ]);
    }
    expect(queue.size).toBe(0);
    // The leader takes them.
    const leader = pushing({ ui: false, leading: true });
    const ok = await request(leader.app)
      .post('/V1/Flows')
      .set('authorization', 'Bearer t')
      .set('content-type', 'application/x-ndjson')
      .send(FLOW);
    expect([ok.status, ok.body]).toEqual([202, { accepted: 1, skipped: 0 }]);
  });
});

describe('the push token and the API token (--api-token-file)', () => {
  /** The controller's server with the push endpoint (token `push`) and the page, as `run` wires them. */
  async function wired(tokens: { push?: string; api?: string }) {
    const { analysis } = await fixtureAnalysis();
    const source = withIsolation(analysisSource(analysis, { mode: 'offline', title: 't' }));
    const queue = new FlowQueue({ capacity: 100 });
    const auth = pageAuth(tokens);
    const app = controllerApp({
      healthy: () => true,
      ready: () => ({ ok: true }),
      metrics: () => '',
      routers: tokens.push
        ? [{ router: createPushEndpoint({ queue, token: tokens.push }).router, serves: ['POST /v1/flows'] }]
        : [],
      ui: createApp(source, auth ? { auth } : {}),
    });
    return { app, queue, source };
  }
  const isolate = (app: express.Express, token: string) =>
    request(app)
      .post('/api/v1/isolations')
      .set('authorization', `Bearer ${token}`)
      .send({ workload: 'shop/Deployment/cart', reason: 'r' });
  const release = (app: express.Express, token: string) =>
    request(app).delete('/api/v1/isolations/iso-cart').set('authorization', `Bearer ${token}`);
  const pushFlow = (app: express.Express, token: string) =>
    request(app)
      .post('/v1/flows')
      .set('authorization', `Bearer ${token}`)
      .set('content-type', 'application/x-ndjson')
      .send(FLOW);
  const REFUSED = [401, { error: 'authentication required: send "Authorization: Bearer <token>"' }];

  it('with both, the API takes only the API token, and POST /v1/flows only the push token', async () => {
    const { app, queue, source } = await wired({ push: 'push', api: 'admin' });
    // The push token (a flow collector's) no longer isolates, releases, audits nor reads.
    for (const res of [
      await isolate(app, 'push'),
      await release(app, 'push'),
      await request(app).post('/api/v1/audit').set('authorization', 'Bearer push').send('[]'),
      await request(app).get('/api/v1/graph').set('authorization', 'Bearer push'),
    ])
      expect([res.status, res.body]).toEqual(REFUSED);
    expect(source.calls).toEqual([]);
    // The API token does.
    const made = await isolate(app, 'admin');
    expect(made.status).toBe(201);
    expect((await release(app, 'admin')).status).toBe(204);
    expect(source.calls).toEqual(['isolate shop/Deployment/cart by token', 'release iso-cart by token']);
    // And it pushes no flows: the push endpoint keeps its own token.
    const wrong = await pushFlow(app, 'admin');
    expect([wrong.status, wrong.body]).toEqual([401, { error: 'invalid bearer token' }]);
    const ok = await pushFlow(app, 'push');
    expect([ok.status, ok.body]).toEqual([202, { accepted: 1, skipped: 0 }]);
    expect(queue.size).toBe(1);
  });

  it('without --api-token-file the push token works both, as before', async () => {
    const { app, source } = await wired({ push: 'push' });
    expect((await isolate(app, 'push')).status).toBe(201);
    expect(source.calls).toEqual(['isolate shop/Deployment/cart by token']);
    expect((await pushFlow(app, 'push')).status).toBe(202);
    const other = await isolate(app, 'admin');
    expect([other.status, other.body]).toEqual(REFUSED);
  });

  it('with the API token alone, the API needs it (no push endpoint)', async () => {
    const { app, source } = await wired({ api: 'admin' });
    const anon = await request(app).get('/api/v1/graph');
    expect([anon.status, anon.body]).toEqual(REFUSED);
    expect((await isolate(app, 'admin')).status).toBe(201);
    expect(source.calls).toEqual(['isolate shop/Deployment/cart by token']);
    expect(pageAuth({})).toBeUndefined();
  });
});
