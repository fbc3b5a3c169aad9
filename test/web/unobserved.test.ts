/**
 * Workloads in scope that no observed flow reaches or leaves are not graph nodes, yet the proposal's
 * default deny blocks all their traffic once enforced. The API counts them with the graph, lists them
 * (`GET /unobserved`), finds them by search, gives their details (no traffic, the default deny, the
 * blast radius before and after) and lets an authenticated user isolate one, as for a drawn workload.
 */
import request from 'supertest';
import { beforeAll, describe, expect, it } from 'vitest';
import { blastRadiusViews } from '../../src/cli/commands/demo.ts';
import type { ServiceGraph } from '../../src/graph/types.ts';
import type { Proposal } from '../../src/policy/types.ts';
import { createApp } from '../../src/server/app.ts';
import type { Flow } from '../../src/flows/types.ts';
import { runPipeline } from '../../src/pipeline.ts';
import { offlineAudit } from '../../src/server/audit.ts';
import { analysisSource } from '../../src/server/source.ts';
import { fixtureFlows } from '../core/fixture.ts';
import type { GraphView, NodeDetails, ViewSource } from '../../src/server/types.ts';
import { nodeDetails, unobservedWorkloads } from '../../src/server/view.ts';
import { CART, REPORTS, idleAnalysis, withIsolation } from './helpers.ts';

let source: ViewSource;
let proposal: Proposal;
let graph: ServiceGraph;

beforeAll(async () => {
  const { snapshot, analysis } = await idleAnalysis();
  proposal = analysis.proposal;
  graph = analysis.graph;
  source = analysisSource(analysis, { title: 'idle', blastRadius: blastRadiusViews(snapshot, analysis) });
});

describe('workloads with no flow observed, through the API', () => {
  it('counts them beside the graph, which has no node for them', async () => {
    expect(proposal.unobserved).toEqual([REPORTS]);
    const view = (await request(createApp(source)).get('/api/v1/graph?view=full').expect(200))
      .body as GraphView;
    expect(view.totals.unobserved).toBe(1);
    expect(view.nodes.map((n) => n.id)).not.toContain(REPORTS);
    expect(view.nodes.map((n) => n.id)).toContain(CART);
  });

  it('lists them with namespace, name and kind', async () => {
    const res = await request(createApp(source)).get('/api/v1/unobserved').expect(200);
    expect(res.body).toEqual({
      total: 1,
      workloads: [{ id: REPORTS, label: 'reports', namespace: 'shop', workloadKind: 'Deployment' }],
    });
  });

  it('finds them by search, marked as not observed', async () => {
    const res = await request(createApp(source)).get('/api/v1/search?q=repo').expect(200);
    expect(res.body).toEqual({
      total: 1,
      results: [{ id: REPORTS, label: 'reports', kind: 'workload', namespace: 'shop', unobserved: true }],
    });
    // A drawn workload is not marked.
    const cart = await request(createApp(source)).get('/api/v1/search?q=cart').expect(200);
    expect(cart.body.results[0]).toMatchObject({ id: CART });
    expect(cart.body.results[0]).not.toHaveProperty('unobserved');
  });

  it('gives their details: no traffic, the default deny, and nothing reachable after the proposal', async () => {
    const res = await request(createApp(source))
      .get(`/api/v1/nodes?id=${encodeURIComponent(REPORTS)}`)
      .expect(200);
    const d = res.body as NodeDetails;
    const deny = proposal.policies.find(
      (p) => p.metadata.namespace === 'shop' && Object.keys(p.spec.podSelector ?? {}).length === 0,
    )!;
    expect(d).toMatchObject({
      id: REPORTS,
      kind: 'workload',
      label: 'reports',
      namespace: 'shop',
      unobserved: true,
      flowsIn: 0,
      flowsOut: 0,
      inbound: [],
      outbound: [],
      policies: [`shop/${deny.metadata.name}`],
    });
    expect(d.policyYaml).toContain(`name: ${deny.metadata.name}`);
    expect(d.policyYaml).toContain('podSelector: {}');
    // Before the proposal every pod reaches it; after, nothing does, and it reaches nothing.
    expect(d.blastRadius!.before.reachableFrom).toBeGreaterThan(0);
    expect(d.blastRadius!.after).toMatchObject({ canReach: 0, reachableFrom: 0 });
  });

  it('answers 404 for an id that is neither drawn nor unobserved', async () => {
    const res = await request(createApp(source)).get('/api/v1/nodes?id=shop/Deployment/nope').expect(404);
    expect(res.body).toEqual({ error: 'no node "shop/Deployment/nope" in the graph' });
  });

  it('isolates one for an authenticated user', async () => {
    const src = withIsolation(source);
    const app = createApp(src, {
      auth: { verify: (h) => (h === 'Bearer alice-token' ? 'alice' : undefined) },
    });
    await request(app)
      .post('/api/v1/isolations')
      .set({ Authorization: 'Bearer alice-token' })
      .send({ workload: REPORTS, reason: 'odd process' })
      .expect(201);
    expect(src.calls).toEqual([`isolate ${REPORTS} by alice`]);
    const missing = await request(app)
      .post('/api/v1/isolations')
      .set({ Authorization: 'Bearer alice-token' })
      .send({ workload: 'shop/Deployment/nope' })
      .expect(404);
    expect(missing.body).toEqual({ error: 'no workload "shop/Deployment/nope" in the graph' });
  });
});

describe('GET /unobserved: a namespace, and pages of them', () => {
  // Given out of order and with a repeat; the graph has cart, which is left out.
  const ids = [
    'web/Deployment/b',
    'shop/CronJob/nightly',
    'batch/Job/export',
    'shop/Deployment/reports',
    'web/Deployment/a',
    CART,
    'shop/StatefulSet/cache',
    'batch/CronJob/cleanup',
    'web/Deployment/a',
  ];
  const app = () => createApp({ ...source, unobserved: () => ids });
  const get = async (query: string) => {
    const res = await request(app()).get(`/api/v1/unobserved${query}`).expect(200);
    return res.body as { total: number; workloads: { id: string }[] };
  };
  const sorted = [
    'batch/CronJob/cleanup',
    'batch/Job/export',
    'shop/CronJob/nightly',
    'shop/Deployment/reports',
    'shop/StatefulSet/cache',
    'web/Deployment/a',
    'web/Deployment/b',
  ];

  it('lists every one in id order without parameters', async () => {
    const all = await get('');
    expect([all.total, all.workloads.map((w) => w.id)]).toEqual([7, sorted]);
  });

  it('takes a namespace: only its workloads, and total counts those', async () => {
    const shop = await get('?namespace=shop');
    expect([shop.total, shop.workloads.map((w) => w.id)]).toEqual([
      3,
      ['shop/CronJob/nightly', 'shop/Deployment/reports', 'shop/StatefulSet/cache'],
    ]);
    expect(shop.workloads[0]).toEqual({
      id: 'shop/CronJob/nightly',
      label: 'nightly',
      namespace: 'shop',
      workloadKind: 'CronJob',
    });
    expect(await get('?namespace=data')).toEqual({ total: 0, workloads: [] });
  });

  it('takes limit and offset: the pages follow one another and add up to the whole list', async () => {
    const pages: string[][] = [];
    for (let offset = 0; offset < 7; offset += 3) {
      const page = await get(`?limit=3&offset=${offset}`);
      expect(page.total).toBe(7);
      pages.push(page.workloads.map((w) => w.id));
    }
    expect(pages.map((p) => p.length)).toEqual([3, 3, 1]);
    expect(pages.flat()).toEqual(sorted);
    // Without limit, the rest from offset; past the end, none (total still says how many).
    expect((await get('?offset=5')).workloads.map((w) => w.id)).toEqual(sorted.slice(5));
    expect(await get('?offset=7&limit=3')).toEqual({ total: 7, workloads: [] });
    expect(await get(`?offset=${'9'.repeat(30)}`)).toEqual({ total: 7, workloads: [] });
    // Decimal digits, leading zeros allowed, as /search's limit.
    expect((await get('?limit=002&offset=01')).workloads.map((w) => w.id)).toEqual(sorted.slice(1, 3));
    // Within a namespace.
    const shop = await get('?namespace=shop&offset=1&limit=1');
    expect([shop.total, shop.workloads.map((w) => w.id)]).toEqual([3, ['shop/Deployment/reports']]);
  });

  it('answers 400 naming the parameter and the value it got', async () => {
    const cases: [string, string][] = [
      ...['0x2', '1e2', '2.0', '', ' 2', '+2', '-1', '501', '0', '9'.repeat(30)].map(
        (bad): [string, string] => [
          `limit=${encodeURIComponent(bad)}`,
          `limit must be a whole number from 1 to 500 in decimal digits (got "${bad}")`,
        ],
      ),
      ...['-1', '1.5', '0x1', '1e2', '', ' 1', '+1', 'two'].map((bad): [string, string] => [
        `offset=${encodeURIComponent(bad)}`,
        `offset must be a whole number, 0 or more, in decimal digits (got "${bad}")`,
      ]),
      ...['Shop', '', 'shop/x', '-shop', 'shop_1', 'a'.repeat(64)].map((bad): [string, string] => [
        `namespace=${encodeURIComponent(bad)}`,
        `namespace must be a namespace name: at most 63 lowercase letters, digits and "-", starting and ending with a letter or digit (got "${bad}")`,
      ]),
      ['namespace=shop&namespace=web', 'query parameter "namespace" must be given once'],
      ['limit=1&limit=2', 'query parameter "limit" must be given once'],
      ['offset=1&offset=2', 'query parameter "offset" must be given once'],
    ];
    for (const [query, error] of cases) {
      const res = await request(app()).get(`/api/v1/unobserved?${query}`);
      expect([query, res.status, res.body]).toEqual([query, 400, { error }]);
    }
  });
});

describe('the rollout view (audits)', () => {
  it('names them in an offline audit while the replayed traffic has none of theirs', async () => {
    const { snapshot, analysis } = await idleAnalysis();
    const audit = (flows: Flow[]) =>
      runPipeline(snapshot, flows).then((later) =>
        offlineAudit({
          name: 'idle',
          snapshot,
          identity: analysis.identity,
          graph: later.graph,
          proposal: analysis.proposal,
        }),
      );
    const quiet = await audit(fixtureFlows());
    expect([quiet.unobserved, quiet.unobservedWorkloads]).toEqual([1, [REPORTS]]);
    // Once reports talks, its connection is a would-be-blocked flow instead.
    const talk: Flow = {
      time: Date.parse('2026-11-01T10:30:00Z'),
      src: { ip: '10.244.1.77', namespace: 'shop', pod: 'reports-7d9f-x1x1x' },
      dst: { ip: '10.244.1.30' },
      port: 5432,
      protocol: 'TCP',
      verdict: 'FORWARDED',
      input: 'hubble',
    };
    const busy = await audit([...fixtureFlows(), talk]);
    expect([busy.unobserved, busy.unobservedWorkloads]).toEqual([0, []]);
    expect(busy.wouldBlock.map((b) => b.source)).toContain(REPORTS);
  });
});

describe('unobservedWorkloads', () => {
  const base = (unobserved: string[]): Proposal => ({
    policies: [],
    byWorkload: {},
    evidence: [],
    notExpressible: [],
    unobserved,
    namespaces: [],
    warnings: [],
  });

  it('names each once in id order, leaves out a workload the graph has, and reads custom kinds', () => {
    // Two Segmentations' proposals merged: one lists cart, which the other observed.
    const merged = base(['shop/Workload/ci-run', 'db/Cluster/pg', CART, 'db/Cluster/pg']);
    expect(unobservedWorkloads(graph, merged.unobserved)).toEqual([
      { id: 'db/Cluster/pg', label: 'pg', namespace: 'db', workloadKind: 'Cluster' },
      { id: 'shop/Workload/ci-run', label: 'ci-run', namespace: 'shop', workloadKind: 'Workload' },
    ]);
    expect(nodeDetails(graph, merged, 'db/Cluster/pg')).toMatchObject({ unobserved: true, policies: [] });
    // The drawn workload's details are its graph node's.
    expect(nodeDetails(graph, merged, CART)).not.toHaveProperty('unobserved');
  });
});
