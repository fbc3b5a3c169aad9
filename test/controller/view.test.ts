import request from 'supertest';
import { describe, expect, it } from 'vitest';
import type { ProposedNetworkPolicy, Segmentation } from '../../src/controller/api.ts';
import { enforcedPolicy, proposedPolicies } from '../../src/controller/plan.ts';
import { controllerApp } from '../../src/controller/server.ts';
import {
  controllerProposal,
  controllerViewSource,
  enforceDiffOf,
  exportedPolicy,
  mergeAnalyses,
  CACHES_NOT_SYNCED,
  NOT_LEADER_GRAPH,
  notLeaderProposal,
  restoringMessage,
} from '../../src/controller/view.ts';
import type { GraphEdge, GraphNode } from '../../src/graph/types.ts';
import { buildIdentity } from '../../src/identity/index.ts';
import type { Isolation } from '../../src/isolate/api.ts';
import type { IsolationActions } from '../../src/isolate/ui.ts';
import { IsolationRequestError, isolationActions } from '../../src/isolate/ui.ts';
import { paths } from '../../src/isolate/kube.ts';
import { KnownIsolations, Persister } from '../../src/isolate/webhooks.ts';
import { FakeKube } from '../isolate/fake-kube.ts';
import type { NetworkPolicy } from '../../src/model/k8s.ts';
import { runPipeline } from '../../src/pipeline.ts';
import { policiesToYaml } from '../../src/policy/render.ts';
import { createApp } from '../../src/server/app.ts';
import { StepsAbandoned } from '../../src/server/slices.ts';
import { Turns } from '../../src/server/turns.ts';
import type { AuditView, GraphView, IsolationView, ViewSource } from '../../src/server/types.ts';
import { fixtureFlows, fixtureSnapshot } from '../core/fixture.ts';

describe('the web page in controller mode', async () => {
  const all = await runPipeline(fixtureSnapshot(), fixtureFlows());
  const half = await runPipeline(fixtureSnapshot(), fixtureFlows().slice(0, 3));
  // What the informer caches hold of the workloads, alike on every replica (ClusterCache.workloadIdentity).
  const caches = buildIdentity(fixtureSnapshot());
  const cluster = () => caches;

  it('stops an audit of a policy set once its caller has gone (its signal aborted)', async () => {
    const source = controllerViewSource({
      analyses: () => [all],
      segmentations: () => [],
      snapshot: () => fixtureSnapshot(),
    });
    const given = all.proposal.policies;
    const audit = (signal?: AbortSignal) =>
      Promise.resolve(
        source.auditPolicies!(given, { prune: false, clusterPolicies: [], ...(signal ? { signal } : {}) }),
      );
    expect((await audit()).wouldBlock).toEqual([]);
    await expect(audit(AbortSignal.abort())).rejects.toThrow(StepsAbandoned);
  });

  it('answers a set that waited in line while the replica stopped leading 503, and gives its turn back', async () => {
    // POST /audit audits one set at a time (src/server/turns.ts): one waiting behind another is
    // audited against the learned graph of when its turn comes, and a turn kept would hold every
    // later audit.
    let leading = true;
    const real = controllerViewSource({
      analyses: () => [all],
      segmentations: () => [],
      snapshot: () => fixtureSnapshot(),
      leadership: () => ({ leading, unrestored: () => [] }),
    });
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    let calls = 0;
    const source: ViewSource = {
      ...real,
      auditPolicies: async (given, opts) => {
        // The first is begun while leading, and answered once released.
        const answer = real.auditPolicies!(given, opts);
        if (calls++ === 0) await held;
        return answer;
      },
    };
    const turns = new Turns();
    const app = createApp(source, { auditTurns: turns });
    const body = policiesToYaml(all.proposal.policies);
    const post = () =>
      request(app)
        .post('/api/v1/audit')
        .set('Content-Type', 'application/yaml')
        .send(body)
        .then((r) => r);
    const first = post();
    await expect.poll(() => calls).toBe(1);
    const second = post();
    await expect.poll(() => turns.waiting).toBe(1);
    leading = false;
    release();
    expect((await first).status).toBe(200);
    const refused = await second;
    expect([refused.status, refused.body]).toEqual([
      503,
      {
        error: NOT_LEADER_GRAPH,
      },
    ]);
    expect([turns.holding, turns.waiting]).toEqual([0, 0]);
    leading = true;
    expect((await post()).status).toBe(200);
  });

  it('merges the analyses of several Segmentations without duplicates', () => {
    const m = mergeAnalyses([half, all]);
    expect(m.graph.edges.map((e) => e.id)).toEqual(all.graph.edges.map((e) => e.id));
    expect(new Set(m.graph.nodes.map((n) => n.id)).size).toBe(m.graph.nodes.length);
    expect(m.proposal.policies.map((p) => `${p.metadata.namespace}/${p.metadata.name}`)).toEqual(
      all.proposal.policies.map((p) => `${p.metadata.namespace}/${p.metadata.name}`).sort(),
    );
  });

  it("counts each node's flows over the merged edges, each flow once", () => {
    // `half` holds some of the edges of `all`'s nodes: its nodes' counts are its own edges'.
    const m = mergeAnalyses([half, all]);
    const sum = (pick: (e: GraphEdge) => boolean) =>
      m.graph.edges.filter(pick).reduce((n, e) => n + e.count, 0);
    for (const n of m.graph.nodes) {
      expect([n.id, n.flowsIn, n.flowsOut]).toEqual([
        n.id,
        sum((e) => e.target === n.id),
        sum((e) => e.source === n.id),
      ]);
    }
    // A connection to a Service with two backends, learned by two Segmentations: one holds the edge to
    // one backend only (the other backend's namespace is another Segmentation's).
    const via = 'a/Deployment/web->service:a/backend:80/TCP';
    const node = (id: string, flowsIn: number, flowsOut: number): GraphNode => ({
      id,
      kind: 'workload',
      name: id.split('/')[2]!,
      namespace: id.split('/')[0]!,
      flowsIn,
      flowsOut,
    });
    const edge = (target: string): GraphEdge => ({
      id: `a/Deployment/web->${target}:8080/TCP`,
      source: 'a/Deployment/web',
      target,
      protocol: 'TCP',
      port: 8080,
      count: 4,
      firstSeen: '2026-11-01T10:00:00.000Z',
      lastSeen: '2026-11-01T10:00:00.000Z',
      verdicts: { FORWARDED: 4 },
      shared: { [via]: 4 },
    });
    const one = {
      ...half,
      graph: {
        nodes: [node('a/Deployment/web', 0, 4), node('b/Deployment/be2', 4, 0)],
        edges: [edge('b/Deployment/be2')],
      },
    };
    const two = {
      ...half,
      graph: {
        nodes: [
          node('a/Deployment/be1', 4, 0),
          node('a/Deployment/web', 0, 4),
          node('b/Deployment/be2', 4, 0),
        ],
        edges: [edge('a/Deployment/be1'), edge('b/Deployment/be2')],
      },
    };
    const merged = mergeAnalyses([one, two]).graph;
    expect(merged.nodes.map((n) => [n.id, n.flowsIn, n.flowsOut])).toEqual([
      ['a/Deployment/be1', 4, 0],
      ['a/Deployment/web', 0, 4],
      ['b/Deployment/be2', 4, 0],
    ]);
    // The analyses' own nodes are left as they were.
    expect(one.graph.nodes.map((n) => n.flowsOut)).toEqual([4, 0]);
  });

  it('merges the same whatever the order of the analyses: a workload of no Segmentation’s namespace, and a segment id two list', async () => {
    // a covers namespace a, b namespace b; both draw x's ext (a namespace neither covers) as a peer,
    // each in a segment of its own, and both have a segment named shared.
    const node = (id: string, segment: string): GraphNode => ({
      id,
      kind: 'workload',
      name: id.split('/')[2]!,
      namespace: id.split('/')[0]!,
      flowsIn: 0,
      flowsOut: 0,
      segment,
    });
    const analysis = (ns: string, segs: [string, string[], number][]) => ({
      ...all,
      graph: { nodes: segs.flatMap(([id, members]) => members.map((m) => node(m, id))), edges: [] },
      segments: {
        ...all.segments,
        segments: segs.map(([id, members, internalEdges]) => ({
          id,
          kind: 'community' as const,
          members,
          namespaces: [...new Set(members.map((m) => m.split('/')[0]!))].sort(),
          internalEdges,
          crossingEdges: 0,
        })),
        membership: Object.fromEntries(segs.flatMap(([id, members]) => members.map((m) => [m, id]))),
      },
      proposal: { ...all.proposal, policies: [], byWorkload: {}, evidence: [], namespaces: [ns] },
    });
    const a = analysis('a', [
      ['a-web', ['a/Deployment/web', 'x/Deployment/ext'], 1],
      ['shared', ['a/Deployment/api'], 2],
    ]);
    const b = analysis('b', [
      ['b-be', ['b/Deployment/be', 'x/Deployment/ext'], 3],
      ['shared', ['b/Deployment/db'], 4],
    ]);
    const answers = async (analyses: (typeof a)[]) => {
      const app = createApp(controllerViewSource({ analyses: () => analyses, segmentations: () => [] }));
      return {
        segments: (await request(app).get('/api/v1/segments').expect(200)).body as {
          segments: { id: string; members: string[]; internalEdges: number }[];
          membership: Record<string, string>;
        },
        graph: (await request(app).get('/api/v1/graph?view=full').expect(200)).body as {
          nodes: { id: string; segment?: string }[];
        },
      };
    };
    const ab = await answers([a, b]);
    const ba = await answers([b, a]);
    expect(ba).toEqual(ab);
    expect(JSON.stringify(mergeAnalyses([b, a]))).toBe(JSON.stringify(mergeAnalyses([a, b])));
    // ext is in one segment, the one of the analysis covering the first namespace (a), and the graph the
    // page draws puts its node there too.
    const listing = ab.segments.segments.filter((s) => s.members.includes('x/Deployment/ext'));
    expect(listing.map((s) => s.id)).toEqual(['a-web']);
    expect(ab.segments.membership['x/Deployment/ext']).toBe('a-web');
    expect(ab.graph.nodes.find((n) => n.id === 'x/Deployment/ext')?.segment).toBe('a-web');
    // shared holds both analyses' members; its other fields are a's.
    expect(ab.segments.segments.find((s) => s.id === 'shared')).toMatchObject({
      members: ['a/Deployment/api', 'b/Deployment/db'],
      internalEdges: 2,
    });
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

  const seg = {
    apiVersion: 'microseg.dev/v1alpha1',
    kind: 'Segmentation',
    metadata: { name: 'shop', uid: 'uid-seg-shop' },
    spec: { namespaceSelector: {}, mode: 'Audit' },
    status: { mode: 'Audit', phase: 'Auditing' },
  } as unknown as Segmentation;
  const auth = (r: request.Test) => r.set('authorization', 'Bearer s3cret');

  it('says what enforcing would change: the plan Enforce mode performs against the live policies', async () => {
    const proposals: ProposedNetworkPolicy[] = proposedPolicies(seg, all.proposal);
    expect(proposals.length).toBeGreaterThanOrEqual(4);
    const [same, drifted, taken, ...rest] = proposals.map((p) => enforcedPolicy(seg, p));
    const key = (p: { metadata: { namespace?: string; name: string } }) =>
      `${p.metadata.namespace}/${p.metadata.name}`;
    const stale: NetworkPolicy = {
      ...enforcedPolicy(seg, proposals[0]!),
      metadata: { ...same!.metadata, name: 'gone' },
    };
    const live: NetworkPolicy[] = [
      same!,
      { ...drifted!, spec: { ...drifted!.spec, ingress: [] } },
      // The name is held by a policy someone else wrote: Enforce leaves it alone.
      { ...taken!, metadata: { name: taken!.metadata.name, namespace: taken!.metadata.namespace! } },
      stale,
      // Another Segmentation's policies are not this one's to remove.
      {
        ...stale,
        metadata: {
          ...stale.metadata,
          name: 'theirs',
          labels: { ...stale.metadata.labels, 'microseg.dev/segmentation': 'other' },
        },
      },
    ];
    // The first proposal is its namespace's default deny, which the conflict there holds back: in
    // place, it is removed.
    expect(same!.spec.podSelector).toEqual({});
    expect(same!.metadata.namespace).toBe(taken!.metadata.namespace);
    const expected = {
      added: rest.map(key).sort(),
      changed: [key(drifted!)],
      removed: [key(same!), key(stale)],
      conflicts: [key(taken!)],
      held: [key(same!)],
      unchanged: 0,
    };
    expect(enforceDiffOf(seg, proposals, live)).toEqual(expected);
    // Another Segmentation's proposal is not this one's to enforce.
    const other = { ...seg, metadata: { name: 'other' } } as Segmentation;
    expect(enforceDiffOf(other, proposals, live)).toEqual({
      added: [],
      changed: [],
      removed: ['shop/theirs'],
      conflicts: [],
      held: [],
      unchanged: 0,
    });

    // A proposal whose labels were edited by hand (its owner reference kept) is still this one's, as in
    // Enforce: its policy is not listed as removed.
    const relabelled = proposals.map((p, i) =>
      i === 0 ? { ...p, metadata: { ...p.metadata, labels: { 'microseg.dev/segmentation': 'shop' } } } : p,
    );
    expect(enforceDiffOf(seg, relabelled, live)).toEqual(expected);

    const source = controllerViewSource({
      analyses: () => [all],
      segmentations: () => [seg],
      proposals: () => proposals,
      networkPolicies: () => live,
    });
    const audits = await request(createApp(source)).get('/api/v1/audits');
    expect((audits.body as AuditView[])[0]!.enforce).toEqual(expected);
  });

  // An Isolation of the cart Deployment (isolated) and one of the db pod by name (released).
  const isolations: Isolation[] = [
    {
      apiVersion: 'microseg.dev/v1alpha1',
      kind: 'Isolation',
      metadata: { name: 'iso-db', namespace: 'shop' },
      spec: { target: { pods: ['db-0'] }, reason: 'old' },
      status: { phase: 'Released', isolatedPods: ['db-0'] },
    },
    {
      apiVersion: 'microseg.dev/v1alpha1',
      kind: 'Isolation',
      metadata: { name: 'iso-cart', namespace: 'shop' },
      spec: { target: { pods: ['cart-7d9f-bbbbb'] }, reason: 'shell in container' },
      status: {
        phase: 'Isolated',
        method: 'NetworkPolicy',
        isolatedPods: ['cart-7d9f-bbbbb'],
        isolatedAt: '2026-11-28T17:00:00Z',
      },
    },
  ];

  it('shows the Isolations, placing isolated pods on their workloads', async () => {
    const app = createApp(
      controllerViewSource({
        analyses: () => [half, all],
        segmentations: () => [seg],
        cluster,
        isolations: () => isolations,
      }),
    );
    const info = await request(app).get('/api/v1/info');
    expect((info.body as { features: Record<string, boolean> }).features).toMatchObject({
      isolations: true,
      isolate: false,
      release: false,
    });
    const list = (await request(app).get('/api/v1/isolations')).body as IsolationView[];
    expect(list.map((i) => [i.name, i.state, i.workloads])).toEqual([
      ['iso-cart', 'Isolated', ['shop/Deployment/cart']],
      ['iso-db', 'Released', ['shop/StatefulSet/db']],
    ]);
    expect(list[0]).toMatchObject({
      namespace: 'shop',
      method: 'NetworkPolicy',
      since: '2026-11-28T17:00:00Z',
    });
    const graph = (await request(app).get('/api/v1/graph?view=full')).body as GraphView;
    const marked = graph.nodes.filter((n) => n.isolated).map((n) => n.id);
    expect(marked).toEqual(['shop/Deployment/cart']);
    const node = await request(app).get('/api/v1/nodes').query({ id: 'shop/Deployment/cart' });
    expect((node.body as { isolation?: IsolationView }).isolation?.name).toBe('iso-cart');
    // Without isolation the page has no isolation view, as before.
    const off = createApp(controllerViewSource({ analyses: () => [all], segmentations: () => [seg] }));
    expect((await request(off).get('/api/v1/isolations')).status).toBe(404);
  });

  it('places isolated pods from the caches: a replica that does not lead answers the same bytes', async () => {
    const bySelector: Isolation = {
      apiVersion: 'microseg.dev/v1alpha1',
      kind: 'Isolation',
      metadata: { name: 'iso-frontend', namespace: 'shop' },
      spec: { target: { podSelector: { matchLabels: { app: 'frontend' } } }, reason: 'scan' },
      status: { phase: 'Isolated', isolatedPods: ['frontend-7d9f-aaaaa'] },
    };
    const replica = (leading: boolean) =>
      createApp(
        controllerViewSource({
          analyses: () => (leading ? [half, all] : []),
          leadership: () => ({ leading, unrestored: () => [] }),
          segmentations: () => [seg],
          cluster,
          isolations: () => [...isolations, bySelector],
        }),
      );
    const leader = await request(replica(true)).get('/api/v1/isolations');
    const follower = await request(replica(false)).get('/api/v1/isolations');
    expect([leader.status, follower.status]).toEqual([200, 200]);
    expect(follower.text).toBe(leader.text);
    expect((follower.body as IsolationView[]).map((i) => [i.name, i.workloads])).toEqual([
      ['iso-cart', ['shop/Deployment/cart']],
      ['iso-db', ['shop/StatefulSet/db']],
      ['iso-frontend', ['shop/Deployment/frontend']],
    ]);
  });

  it('isolates and releases for an authenticated user through the isolation actions', async () => {
    const calls: string[] = [];
    const actions: IsolationActions = {
      isolate: (workload, reason, user) => {
        calls.push(`isolate ${workload} ${reason} ${user}`);
        const [ns, , name] = workload.split('/');
        return Promise.resolve({
          apiVersion: 'microseg.dev/v1alpha1',
          kind: 'Isolation',
          metadata: { name: `iso-${name}`, namespace: ns },
          spec: { target: { workload: { kind: 'Deployment', name } }, reason: reason ?? '' },
        } as Isolation);
      },
      release: (namespace, name) => {
        calls.push(`release ${namespace}/${name}`);
        return Promise.resolve(name !== 'iso-none');
      },
    };
    const twins = [...isolations, { ...isolations[0]!, metadata: { name: 'iso-db', namespace: 'other' } }];
    const app = createApp(
      controllerViewSource({
        analyses: () => [all],
        segmentations: () => [seg],
        isolations: () => twins,
        actions,
      }),
      { auth: { token: 's3cret' } },
    );
    const info = await auth(request(app).get('/api/v1/info'));
    expect((info.body as { features: Record<string, boolean> }).features).toMatchObject({
      isolate: true,
      release: true,
    });
    const body = { workload: 'shop/Deployment/frontend', reason: 'suspected compromise' };
    expect((await request(app).post('/api/v1/isolations').send(body)).status).toBe(401);
    const created = await auth(request(app).post('/api/v1/isolations').send(body));
    expect(created.status, created.text).toBe(201);
    expect(created.body as IsolationView).toMatchObject({
      name: 'iso-frontend',
      namespace: 'shop',
      target: 'shop/Deployment/frontend',
      workloads: ['shop/Deployment/frontend'],
      state: 'Pending',
      reason: 'suspected compromise',
    });
    // A workload the graph does not have is refused before the actions are asked.
    const absent = await auth(
      request(app).post('/api/v1/isolations').send({ workload: 'shop/Deployment/nope' }),
    );
    expect(absent.status).toBe(404);
    // The page names an Isolation namespace/name (encoded); a bare name must be unambiguous.
    expect((await auth(request(app).delete('/api/v1/isolations/shop%2Fiso-cart'))).status).toBe(204);
    expect((await auth(request(app).delete('/api/v1/isolations/iso-cart'))).status).toBe(204);
    const ambiguous = await auth(request(app).delete('/api/v1/isolations/iso-db'));
    expect(ambiguous.status).toBe(400);
    expect((ambiguous.body as { error: string }).error).toMatch(/other\/iso-db, shop\/iso-db/);
    expect((await auth(request(app).delete('/api/v1/isolations/shop%2Fiso-none'))).status).toBe(404);
    expect((await auth(request(app).delete('/api/v1/isolations/nothing-here'))).status).toBe(404);
    expect((await auth(request(app).delete('/api/v1/isolations/a%2F..%2Fb'))).status).toBe(404);
    expect(calls).toEqual([
      'isolate shop/Deployment/frontend suspected compromise token',
      'release shop/iso-cart',
      'release shop/iso-cart',
      'release shop/iso-none',
    ]);
  });

  it("isolates an Argo Rollout's pods from the page: the Isolation targets the Rollout", async () => {
    // The fixture with cart's ReplicaSet owned by a Rollout instead of its Deployment.
    const snap = fixtureSnapshot();
    snap.workloads = snap.workloads
      .filter((w) => !(w.kind === 'Deployment' && w.metadata.name === 'cart'))
      .map((w) =>
        w.kind === 'ReplicaSet' && w.metadata.name === 'cart-7d9f'
          ? {
              ...w,
              metadata: {
                ...w.metadata,
                ownerReferences: [
                  {
                    apiVersion: 'argoproj.io/v1alpha1',
                    kind: 'Rollout',
                    name: 'cart',
                    uid: 'uid-rollout-cart',
                    controller: true,
                  },
                ],
              },
            }
          : w,
      );
    const rollout = await runPipeline(snap, fixtureFlows());
    expect(rollout.graph.nodes.map((n) => n.id)).toContain('shop/Rollout/cart');
    const kube = new FakeKube();
    const app = createApp(
      controllerViewSource({
        analyses: () => [rollout],
        segmentations: () => [seg],
        isolations: () => [],
        actions: isolationActions({ kube, persister: new Persister(kube, new KnownIsolations()) }),
      }),
      { auth: { token: 's3cret' } },
    );
    const r = await auth(
      request(app).post('/api/v1/isolations').send({ workload: 'shop/Rollout/cart', reason: 'shell' }),
    );
    expect([r.status, r.body]).toMatchObject([
      201,
      { namespace: 'shop', target: 'shop/Rollout/cart', workloads: ['shop/Rollout/cart'], reason: 'shell' },
    ]);
    const stored = kube.get(paths.isolation('shop', (r.body as IsolationView).name)) as unknown as Isolation;
    expect(stored.spec?.target).toEqual({ workload: { kind: 'Rollout', name: 'cart' } });
  });

  it("isolates a custom resource's pods from the page: the Isolation names its kind in the group its pods give", async () => {
    // The fixture with db-0 controlled by a CloudNativePG Cluster instead of a StatefulSet.
    const snap = fixtureSnapshot();
    snap.workloads = snap.workloads.filter((w) => w.kind !== 'StatefulSet');
    snap.pods = snap.pods.map((p) =>
      p.metadata.name === 'db-0'
        ? {
            ...p,
            metadata: {
              ...p.metadata,
              ownerReferences: [
                {
                  apiVersion: 'postgresql.cnpg.io/v1',
                  kind: 'Cluster',
                  name: 'db',
                  uid: 'uid-pg',
                  controller: true,
                },
              ],
            },
          }
        : p,
    );
    const pg = await runPipeline(snap, fixtureFlows());
    expect(pg.graph.nodes.map((n) => n.id)).toContain('shop/Cluster/db');
    const identity = buildIdentity(snap);
    const app = (kube: FakeKube, withCluster: boolean) =>
      createApp(
        controllerViewSource({
          analyses: () => [pg],
          segmentations: () => [seg],
          ...(withCluster ? { cluster: () => identity } : {}),
          isolations: () => [],
          actions: isolationActions({ kube, persister: new Persister(kube, new KnownIsolations()) }),
        }),
        { auth: { token: 's3cret' } },
      );
    const kube = new FakeKube();
    const r = await auth(
      request(app(kube, true))
        .post('/api/v1/isolations')
        .send({ workload: 'shop/Cluster/db', reason: 'exfiltration' }),
    );
    expect([r.status, r.body]).toMatchObject([
      201,
      {
        namespace: 'shop',
        target: 'shop/Cluster/db',
        workloads: ['shop/Cluster/db'],
        reason: 'exfiltration',
      },
    ]);
    const stored = kube.get(paths.isolation('shop', (r.body as IsolationView).name)) as unknown as Isolation;
    expect(stored.spec?.target).toEqual({
      workload: { kind: 'Cluster', apiGroup: 'postgresql.cnpg.io', name: 'db' },
    });
    // Without the cluster's workloads the group is not known: refused, nothing written.
    const blind = new FakeKube();
    const refused = await auth(
      request(app(blind, false)).post('/api/v1/isolations').send({ workload: 'shop/Cluster/db' }),
    );
    expect([refused.status, refused.body]).toEqual([
      400,
      {
        error:
          'cannot isolate shop/Cluster/db: Cluster is not one of Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, Rollout, CloneSet, and no pod in the cluster names a custom resource Cluster db as its controller (its API group is not known)',
      },
    ]);
    expect(blind.log.filter((l) => l.startsWith('POST'))).toEqual([]);
  });

  it('answers a refused isolation with its status', async () => {
    const actions: IsolationActions = {
      isolate: () => Promise.reject(new IsolationRequestError(409, 'being released')),
      release: () => Promise.resolve(false),
    };
    const app = createApp(
      controllerViewSource({
        analyses: () => [all],
        segmentations: () => [seg],
        isolations: () => [],
        actions,
      }),
      { auth: { token: 's3cret' } },
    );
    const r = await auth(request(app).post('/api/v1/isolations').send({ workload: 'shop/Deployment/cart' }));
    expect(r.status).toBe(409);
    expect(r.body).toEqual({ error: 'being released' });
  });

  describe('the proposal endpoint', () => {
    const learnSeg = {
      ...seg,
      metadata: { name: 'shop', uid: 'uid-seg-shop' },
      spec: { namespaceSelector: {}, mode: 'Learn' },
    } as unknown as Segmentation;
    // Frozen when the first half of the flows was learned; the live analysis has learned more since.
    const frozen = proposedPolicies(seg, half.proposal);
    const key = (p: { metadata: { namespace?: string; name: string } }) =>
      `${p.metadata.namespace}/${p.metadata.name}`;
    const get = (app: ReturnType<typeof createApp>, path: string) => request(app).get(path);
    const appFor = (s: Segmentation, pnps = frozen, live = all) =>
      createApp(
        controllerViewSource({
          analyses: () => [live],
          analysisOf: (name) => (name === 'shop' ? live : undefined),
          segmentations: () => [s],
          cluster,
          proposals: () => pnps,
        }),
      );

    it("builds the cluster's workloads only when a frozen default deny needs them", () => {
      let built = 0;
      const counting = () => {
        built++;
        return cluster();
      };
      controllerProposal([learnSeg], [], (name) => (name === 'shop' ? all : undefined), counting);
      expect(built).toBe(0);
      controllerProposal([seg], frozen, () => undefined, counting);
      expect(built).toBe(1);
    });

    it('serves the frozen ProposedNetworkPolicies in Audit and Enforce, as Enforce applies them', async () => {
      expect(frozen.map(key)).not.toEqual(all.proposal.policies.map(key));
      for (const mode of ['Audit', 'Enforce']) {
        const s = { ...seg, spec: { ...seg.spec, mode } } as Segmentation;
        const r = await get(appFor(s), '/api/v1/proposals');
        expect(r.status).toBe(200);
        const body = r.body as { policies: NetworkPolicy[]; segmentations: unknown[] };
        expect(body.policies.map(key)).toEqual(frozen.map(key).sort());
        expect(body.segmentations).toEqual([
          { name: 'shop', mode, proposal: 'frozen', policies: frozen.length },
        ]);
        const byName = new Map(frozen.map((p) => [key(p), enforcedPolicy(s, p)]));
        for (const p of body.policies) {
          const applied = byName.get(key(p))!;
          const { ownerReferences: _o, ...metadata } = applied.metadata;
          const { ingress, egress, ...spec } = applied.spec;
          expect(p).toEqual({
            ...applied,
            metadata,
            spec: { ...spec, ...(ingress?.length ? { ingress } : {}), ...(egress?.length ? { egress } : {}) },
          });
          expect(p.metadata.labels).toMatchObject({
            'app.kubernetes.io/managed-by': 'microseg',
            'microseg.dev/segmentation': 'shop',
          });
        }
        const yaml = await get(appFor(s), '/api/v1/proposals?format=yaml');
        expect(yaml.text).toBe(
          policiesToYaml(frozen.map((p) => exportedPolicy(s, p)).sort((a, b) => (key(a) < key(b) ? -1 : 1))),
        );
        expect(yaml.text).not.toContain('ownerReferences');
        expect(yaml.text).not.toContain('[]');
      }
    });

    it('serves the live analysis in Learn, rendered as the same policies frozen would be', async () => {
      const r = await get(appFor(learnSeg, []), '/api/v1/proposals');
      const body = r.body as { policies: NetworkPolicy[]; segmentations: unknown[]; byWorkload: unknown };
      expect(body.policies.map(key)).toEqual(all.proposal.policies.map(key).sort());
      expect(body.segmentations).toEqual([
        { name: 'shop', mode: 'Learn', proposal: 'live', policies: all.proposal.policies.length },
      ]);
      expect(body.byWorkload).toEqual(all.proposal.byWorkload);
      // Frozen from this very analysis, the Audit answer is the same text.
      const yamlLearn = (await get(appFor(learnSeg, []), '/api/v1/proposals?format=yaml')).text;
      const frozenAll = proposedPolicies(seg, all.proposal);
      const yamlAudit = (await get(appFor(seg, frozenAll), '/api/v1/proposals?format=yaml')).text;
      expect(yamlAudit).toBe(yamlLearn);
    });

    it('gives the same bytes whatever the order of the objects and of their keys', async () => {
      const reorder = (v: unknown): unknown => {
        if (Array.isArray(v)) return v.map(reorder);
        if (v !== null && typeof v === 'object')
          return Object.fromEntries(
            Object.entries(v as Record<string, unknown>)
              .reverse()
              .map(([k, x]) => [k, reorder(x)]),
          );
        return v;
      };
      const shuffled = [...frozen].reverse().map((p) => reorder(p) as ProposedNetworkPolicy);
      for (const format of ['yaml', 'json']) {
        const a = await get(appFor(seg), `/api/v1/proposals?format=${format}`);
        const b = await get(appFor(seg, shuffled), `/api/v1/proposals?format=${format}`);
        expect(b.text).toBe(a.text);
      }
    });

    it('maps each frozen policy to its workload, after its namespace default deny', async () => {
      const r = await get(appFor(seg), '/api/v1/proposals');
      const body = r.body as { byWorkload: Record<string, string[]>; evidence: { policy: string }[] };
      const cart = frozen.find(
        (p) => p.metadata.annotations?.['microseg.dev/workload'] === 'shop/Deployment/cart',
      );
      const deny = frozen.find(
        (p) => p.metadata.namespace === 'shop' && p.metadata.annotations?.['microseg.dev/purpose'],
      );
      expect(body.byWorkload['shop/Deployment/cart']).toEqual([key(deny!), key(cart!)]);
      expect(body.evidence.length).toBe(frozen.reduce((n, p) => n + (p.status?.evidence?.length ?? 0), 0));
    });

    it('gives a frozen proposal the default deny of every workload it covers, as the live one', async () => {
      // Frozen from the live analysis of `half`, in which db was seen in no flow: only the deny selects it.
      const deny = 'shop/microseg-default-deny';
      expect(half.proposal.byWorkload['shop/StatefulSet/db']).toEqual([deny]);
      const learn = (await get(appFor(learnSeg, [], half), '/api/v1/proposals')).body as {
        byWorkload: Record<string, string[]>;
      };
      const audit = (await get(appFor(seg, frozen, half), '/api/v1/proposals')).body as {
        byWorkload: Record<string, string[]>;
      };
      expect(audit.byWorkload).toEqual(learn.byWorkload);
      expect(audit.byWorkload['shop/StatefulSet/db']).toEqual([deny]);
      // Neither lists a workload of a namespace no Segmentation covers (kube-system).
      expect(Object.keys(audit.byWorkload).sort()).toEqual([
        'shop/Deployment/cart',
        'shop/Deployment/frontend',
        'shop/StatefulSet/db',
      ]);
      // Nor one on the host network, which no NetworkPolicy selects.
      const snap = fixtureSnapshot();
      const exporter = snap.pods.find((p) => p.metadata.name === 'node-exporter-x')!;
      snap.pods.push({ ...exporter, metadata: { ...exporter.metadata, name: 'agent', namespace: 'shop' } });
      const withAgent = buildIdentity(snap);
      expect(withAgent.workloads.get('shop/Pod/agent')?.hostNetwork).toBe(true);
      expect(
        controllerProposal(
          [seg],
          frozen,
          () => undefined,
          () => withAgent,
        ).byWorkload,
      ).toEqual(audit.byWorkload);
      // The details panel of db (in the graph learned since) says the deny selects it, as Enforce denies it.
      const node = await get(appFor(seg), '/api/v1/nodes?id=shop/StatefulSet/db');
      const details = node.body as { policies: string[]; policyYaml: string };
      expect([node.status, details.policies]).toEqual([200, [deny]]);
      expect(details.policyYaml).toContain('name: microseg-default-deny');
    });
  });

  describe('workloads no flow was observed for', () => {
    const app = (mode: string, live: typeof all) =>
      createApp(
        controllerViewSource({
          analyses: () => [live],
          analysisOf: (name) => (name === 'shop' ? live : undefined),
          segmentations: () => [{ ...seg, spec: { ...seg.spec, mode } }],
          cluster,
          proposals: () => proposedPolicies(seg, half.proposal),
        }),
      );

    it('leaves out those of a Segmentation being deleted, which proposes nothing', async () => {
      const deleting = createApp(
        controllerViewSource({
          analyses: () => [half],
          analysisOf: (name) => (name === 'shop' ? half : undefined),
          segmentations: () => [
            { ...seg, metadata: { ...seg.metadata, deletionTimestamp: '2026-11-30T10:00:00Z' } },
          ],
          cluster,
          proposals: () => proposedPolicies(seg, half.proposal),
        }),
      );
      const listed = await request(deleting).get('/api/v1/unobserved').expect(200);
      expect(listed.body).toEqual({ total: 0, workloads: [] });
      await request(deleting).get('/api/v1/nodes?id=shop/StatefulSet/db').expect(404);
    });

    it('lists them from the live analysis in every mode, as status.unobserved counts them', async () => {
      // In `half`, db was seen in no flow; in `all`, every shop workload was.
      expect(half.proposal.unobserved).toEqual(['shop/StatefulSet/db']);
      for (const mode of ['Learn', 'Audit', 'Enforce']) {
        const listed = await request(app(mode, half)).get('/api/v1/unobserved').expect(200);
        expect([mode, listed.body]).toEqual([
          mode,
          {
            total: 1,
            workloads: [
              { id: 'shop/StatefulSet/db', label: 'db', namespace: 'shop', workloadKind: 'StatefulSet' },
            ],
          },
        ]);
        const graph = (await request(app(mode, half)).get('/api/v1/graph').expect(200)).body as GraphView;
        expect(graph.totals.unobserved).toBe(1);
        // Its details: the frozen (or live) default deny selects it.
        const details = await request(app(mode, half))
          .get('/api/v1/nodes?id=shop/StatefulSet/db')
          .expect(200);
        expect(details.body).toMatchObject({ unobserved: true, policies: ['shop/microseg-default-deny'] });
        const none = await request(app(mode, all)).get('/api/v1/unobserved').expect(200);
        expect(none.body).toEqual({ total: 0, workloads: [] });
      }
    });

    it('counts, lists, finds and isolates them without building the proposal (nor the cluster for it)', async () => {
      // A frozen proposal builds the cluster's workloads (every pod's identity) at each call: the graph
      // is asked for at every view, search at every key typed.
      let built = 0;
      const isolated: string[] = [];
      const source = controllerViewSource({
        analyses: () => [half],
        analysisOf: (name) => (name === 'shop' ? half : undefined),
        segmentations: () => [{ ...seg, spec: { ...seg.spec, mode: 'Audit' } }],
        cluster: () => {
          built++;
          return cluster();
        },
        proposals: () => proposedPolicies(seg, half.proposal),
        actions: {
          isolate: (workload) => {
            isolated.push(workload);
            return Promise.resolve({
              apiVersion: 'microseg.dev/v1alpha1',
              kind: 'Isolation',
              metadata: { name: 'db', namespace: 'shop' },
              spec: { target: { workload: { kind: 'StatefulSet', name: 'db' } } },
            } as Isolation);
          },
          release: () => Promise.resolve(false),
        },
      });
      const app = createApp(source, { auth: { token: 't' } });
      const as = { Authorization: 'Bearer t' };
      const graph = await request(app).get('/api/v1/graph').set(as).expect(200);
      expect((graph.body as GraphView).totals.unobserved).toBe(1);
      const found = await request(app).get('/api/v1/search?q=db').set(as).expect(200);
      expect(found.body.results).toContainEqual(expect.objectContaining({ id: 'shop/StatefulSet/db' }));
      expect((await request(app).get('/api/v1/unobserved').set(as).expect(200)).body.total).toBe(1);
      expect(built).toBe(0);
      await request(app)
        .post('/api/v1/isolations')
        .set(as)
        .send({ workload: 'shop/StatefulSet/db' })
        .expect(201);
      expect(isolated).toEqual(['shop/StatefulSet/db']);
      // Its details need the proposal: the frozen default deny selects it.
      const details = await request(app).get('/api/v1/nodes?id=shop/StatefulSet/db').set(as).expect(200);
      expect(details.body).toMatchObject({ unobserved: true, policies: ['shop/microseg-default-deny'] });
    });
  });

  describe('on a replica that does not hold the learned graph', () => {
    const appWith = (leading: boolean, unrestored: string[], s: Segmentation = seg) =>
      createApp(
        controllerViewSource({
          analyses: () => [],
          analysisOf: () => undefined,
          leadership: () => ({
            leading,
            unrestored: (names) => unrestored.filter((n) => !names || names.includes(n)),
          }),
          segmentations: () => [s],
          proposals: () => proposedPolicies(seg, half.proposal),
          networkPolicies: () => [],
        }),
      );
    const learnSeg = { ...seg, spec: { ...seg.spec, mode: 'Learn' } } as Segmentation;

    it('answers what needs it 503 with the reason and Retry-After, never empty data', async () => {
      const app = appWith(false, []);
      for (const path of [
        '/api/v1/graph',
        '/api/v1/graph/export',
        '/api/v1/segments',
        '/api/v1/search?q=cart',
        '/api/v1/nodes?id=shop/Deployment/cart',
      ]) {
        const r = await request(app).get(path);
        expect([path, r.status, r.headers['retry-after'], r.body]).toEqual([
          path,
          503,
          '1',
          { error: NOT_LEADER_GRAPH },
        ]);
      }
      const learn = await request(appWith(false, [], learnSeg)).get('/api/v1/proposals?format=yaml');
      expect([learn.status, learn.headers['retry-after'], learn.body]).toEqual([
        503,
        '1',
        { error: notLeaderProposal(['shop']) },
      ]);
      expect(notLeaderProposal(['a', 'b'])).toBe(
        'not the leader: the live proposal of Segmentations a, b (Learn mode) is kept by the leading replica only; retry (through the Service, the leader may answer); frozen proposals (Audit, Enforce) every replica serves',
      );
      expect(NOT_LEADER_GRAPH).toBe(
        'not the leader: the learned graph is kept by the leading replica only; retry (through the Service, the leader may answer)',
      );
    });

    it('answers 503 before its informer caches have synced, never what a partial cache holds', async () => {
      const app = createApp(
        controllerViewSource({
          analyses: () => [],
          analysisOf: () => undefined,
          leadership: () => ({ leading: true, unrestored: () => [], synced: false }),
          segmentations: () => [],
          proposals: () => [],
          networkPolicies: () => [],
          isolations: () => [],
        }),
      );
      for (const path of ['/api/v1/proposals', '/api/v1/audits', '/api/v1/isolations', '/api/v1/graph']) {
        const r = await request(app).get(path);
        expect([path, r.status, r.headers['retry-after'], r.body]).toEqual([
          path,
          503,
          '1',
          { error: CACHES_NOT_SYNCED },
        ]);
      }
      expect((await request(app).get('/api/v1/info')).status).toBe(200);
    });

    it('serves from its caches what they hold: frozen proposals, audits, info', async () => {
      const app = appWith(false, []);
      const yaml = await request(app).get('/api/v1/proposals?format=yaml');
      expect(yaml.status).toBe(200);
      const leader = await request(
        createApp(
          controllerViewSource({
            analyses: () => [all],
            segmentations: () => [seg],
            proposals: () => proposedPolicies(seg, half.proposal),
          }),
        ),
      ).get('/api/v1/proposals?format=yaml');
      expect(yaml.text).toBe(leader.text);
      expect(yaml.text.length).toBeGreaterThan(0);
      expect((await request(app).get('/api/v1/audits')).status).toBe(200);
      expect((await request(app).get('/api/v1/info')).status).toBe(200);
    });

    it('a new leader answers 503 until it has restored the learned graph', async () => {
      const r = await request(appWith(true, ['shop'])).get('/api/v1/graph');
      expect([r.status, r.headers['retry-after'], r.body]).toEqual([
        503,
        '1',
        { error: restoringMessage(['shop']) },
      ]);
      expect(restoringMessage(['shop'])).toBe(
        'the leader has not restored the learned graph of Segmentation shop yet (it took over recently, the Segmentation is new or was re-created, or its reconcile failed and is retried); retry',
      );
      const p = await request(appWith(true, ['shop'], learnSeg)).get('/api/v1/proposals');
      expect([p.status, p.body]).toEqual([503, { error: restoringMessage(['shop']) }]);
      // A frozen proposal does not wait for the restore.
      expect((await request(appWith(true, ['shop'])).get('/api/v1/proposals')).status).toBe(200);
      expect((await request(appWith(true, [])).get('/api/v1/graph')).status).toBe(200);
    });
  });
});
