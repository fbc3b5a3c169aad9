/** What the API answers beyond its data: caching headers, status codes of failures, isolation marks. */
import request from 'supertest';
import { beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/server/app.ts';
import { analysisSource } from '../../src/server/source.ts';
import type { ViewSource } from '../../src/server/types.ts';
import { fixtureAnalysis } from './helpers.ts';

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
});
