/**
 * The controller's own endpoints (`/healthz`, `/readyz`, `/metrics`) and the paths under `/webhooks`
 * answer in JSON, as the rest of its API does, whatever is mounted after them (the web page answers
 * the paths it does not know in plain text).
 */
import type express from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { controllerApp } from '../../src/controller/server.ts';
import type { Kube } from '../../src/isolate/kube.ts';
import { isolationWebhooks } from '../../src/isolate/webhooks.ts';
import { createApp } from '../../src/server/app.ts';
import type { ViewSource } from '../../src/server/types.ts';

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
