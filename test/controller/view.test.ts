import request from 'supertest';
import { describe, expect, it } from 'vitest';
import type { Segmentation } from '../../src/controller/api.ts';
import { controllerApp } from '../../src/controller/server.ts';
import { controllerViewSource, mergeAnalyses } from '../../src/controller/view.ts';
import { runPipeline } from '../../src/pipeline.ts';
import { createApp } from '../../src/server/app.ts';
import { fixtureFlows, fixtureSnapshot } from '../core/fixture.ts';

describe('the web page in controller mode', async () => {
  const all = await runPipeline(fixtureSnapshot(), fixtureFlows());
  const half = await runPipeline(fixtureSnapshot(), fixtureFlows().slice(0, 3));

  it('merges the analyses of several Segmentations without duplicates', () => {
    const m = mergeAnalyses([half, all]);
    expect(m.graph.edges.map((e) => e.id)).toEqual(all.graph.edges.map((e) => e.id));
    expect(new Set(m.graph.nodes.map((n) => n.id)).size).toBe(m.graph.nodes.length);
    expect(m.proposal.policies.map((p) => `${p.metadata.namespace}/${p.metadata.name}`)).toEqual(
      all.proposal.policies.map((p) => `${p.metadata.namespace}/${p.metadata.name}`).sort(),
    );
  });

  it('serves the page and its API next to the controller endpoints, behind the token', async () => {
    const seg = {
      apiVersion: 'microseg.dev/v1alpha1',
      kind: 'Segmentation',
      metadata: { name: 'shop' },
      spec: { namespaceSelector: {}, mode: 'Audit' },
      status: { mode: 'Audit', phase: 'Auditing' },
    } as unknown as Segmentation;
    const source = controllerViewSource({ analyses: () => [all], segmentations: () => [seg] });
    const app = controllerApp({
      healthy: () => true,
      ready: () => ({ ok: true }),
      metrics: () => '',
      ui: createApp(source, { auth: { token: 's3cret' } }),
    });
    expect((await request(app).get('/healthz')).text).toBe('ok\n');
    expect((await request(app).get('/api/v1/graph')).status).toBe(401);
    const g = await request(app).get('/api/v1/graph').set('authorization', 'Bearer s3cret');
    expect(g.status).toBe(200);
    expect((g.body as { nodes: { id: string }[] }).nodes.map((n) => n.id)).toContain('shop/Deployment/cart');
    const audits = await request(app).get('/api/v1/audits').set('authorization', 'Bearer s3cret');
    expect((audits.body as { name: string; mode: string }[]).map((a) => [a.name, a.mode])).toEqual([
      ['shop', 'Audit'],
    ]);
    const info = await request(app).get('/api/v1/info').set('authorization', 'Bearer s3cret');
    expect((info.body as { info: { mode: string } }).info.mode).toBe('controller');
    expect((await request(app).get('/')).status).toBe(200);
  });
});
