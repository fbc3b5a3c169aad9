import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import type {
  LearnedEdgeSet,
  PersistedEdge,
  ProposedNetworkPolicy,
  Segmentation,
} from '../../src/controller/api.ts';
import { ClusterCache } from '../../src/controller/cache.ts';
import type { ClusterCacheOptions } from '../../src/controller/cache.ts';
import { Informer } from '../../src/controller/informer.ts';
import type { KubeClient } from '../../src/controller/kube.ts';
import { KubeApiError, resourcePath } from '../../src/controller/kube.ts';
import {
  barePod,
  fakeWatches,
  proposedOfShop,
  shopApiFromWeb,
  shopDefaultDeny,
  webAndApi,
} from './fake-watch.ts';
import { silentLogger } from '../../src/controller/log.ts';
import { proposalHash, proposedPolicies } from '../../src/controller/plan.ts';
import { SegmentationController } from '../../src/controller/segmentation.ts';
import { controllerViewSource, restoringMessage } from '../../src/controller/view.ts';
import type { Flow } from '../../src/flows/types.ts';
import { createApp } from '../../src/server/app.ts';
import type { EngineOptions } from '../../src/verify/types.ts';

/**
 * A KubeClient stand-in: lists give `objects` by resource path (nothing for the rest), watches wait
 * until stopped (`emit` sends a watch event on a path), a merge patch answers the object's next
 * resourceVersion, or fails while `failPatches` is set, and listing LearnedEdgeSets fails while
 * `failEdgeSets` is set.
 */
function fakeClient(objects: Record<string, unknown[]>) {
  const watches = fakeWatches();
  const state = {
    applied: [] as { body: { kind: string; metadata: unknown; spec?: unknown }; subresource?: string }[],
    failEdgeSets: true,
    failPatches: false,
    edgeSetLists: 0,
    /** The bodies of the merge patches that took. */
    patches: [] as unknown[],
    /** The resourceVersion the API server holds per object (`namespace/name`), when the cache lags it. */
    serverVersions: {} as Record<string, string>,
    /** The bodies of the applies that took. */
    taken: [] as unknown[],
    /** Names of the objects whose apply fails. */
    failApply: new Set<string>(),
    /** The paths deleted, in order; deletes of the paths in `failDelete` fail. */
    deleted: [] as string[],
    failDelete: new Set<string>(),
    /** Names of the objects whose apply is accepted but does not take (the answer still differs). */
    untaken: new Set<string>(),
    /** The objects have changed since they were read: a spec patch naming a resourceVersion gets a 409. */
    movedOn: false,
    /** What a GET of `path` answers instead of the object listed, when it gives one. */
    readAs: undefined as ((path: string) => unknown) | undefined,
    emit: watches.emit,
  };
  const edgeSets = resourcePath('LearnedEdgeSet');
  const client = {
    requests: new Map<string, number>(),
    list: (path: string) => {
      if (path === edgeSets) {
        state.edgeSetLists++;
        if (state.failEdgeSets) return Promise.reject(new Error('learnedgesets is forbidden'));
      }
      return Promise.resolve({ items: objects[path] ?? [], resourceVersion: '1' });
    },
    watch: watches.watch,
    mergePatch: (path: string, body: unknown) => {
      if (state.failPatches) return Promise.reject(new Error('segmentations "shop" is forbidden'));
      const patch = body as { metadata?: { resourceVersion?: string }; spec?: unknown };
      if (state.movedOn && patch.spec !== undefined && patch.metadata?.resourceVersion !== undefined)
        return Promise.reject(
          new KubeApiError('PATCH', path, 409, 'Conflict', 'the object has been modified'),
        );
      state.patches.push(body);
      return Promise.resolve({ metadata: { resourceVersion: '2' } });
    },
    // An object as read: the Segmentation as listed, or as `readAs` gives it (the API server has moved
    // on from the cache); no one declares its spec.mode (no managedFields, no last-applied annotation).
    get: (path: string) => {
      const listed = (objects[resourcePath('Segmentation')] ?? []).find(
        (o) => resourcePath('Segmentation', undefined, (o as Segmentation).metadata.name) === path,
      );
      return Promise.resolve(state.readAs?.(path) ?? listed ?? { metadata: {} });
    },
    // The object as applied, as the API server answers an apply that takes; an apply naming a
    // resourceVersion other than the one `serverVersions` holds for the object is refused, as the API
    // server refuses it (its precondition).
    apply: (
      body: {
        kind: string;
        metadata: { namespace?: string; name: string; resourceVersion?: string };
        spec?: unknown;
      },
      opts?: { subresource?: string },
    ) => {
      state.applied.push({ body, ...(opts?.subresource ? { subresource: opts.subresource } : {}) });
      if (state.failApply.has(body.metadata.name))
        return Promise.reject(new Error(`admission webhook denied the request (HTTP 400)`));
      const current = state.serverVersions[`${body.metadata.namespace}/${body.metadata.name}`];
      if (
        body.metadata.resourceVersion !== undefined &&
        current !== undefined &&
        current !== body.metadata.resourceVersion
      )
        return Promise.reject(
          new Error(
            `Operation cannot be fulfilled on proposednetworkpolicies.microseg.dev "${body.metadata.name}": the object has been modified; please apply your changes to the latest version and try again (HTTP 409)`,
          ),
        );
      state.taken.push(body);
      // Accepted, but another field manager holds an ingress rule the apply does not name: it stays.
      if (state.untaken.has(body.metadata.name))
        return Promise.resolve({
          ...body,
          spec: { ...(body.spec as object), ingress: [{}] },
          metadata: { ...body.metadata, resourceVersion: '3' },
        });
      return Promise.resolve({ ...body, metadata: { ...body.metadata, resourceVersion: '3' } });
    },
    delete: (path: string) => {
      if (state.failDelete.has(path)) return Promise.reject(new Error('etcdserver: request timed out'));
      state.deleted.push(path);
      return Promise.resolve();
    },
    request: () => Promise.resolve({}),
  };
  return { client: client as unknown as KubeClient, state };
}

/** A forwarded Hubble flow web → api on 8080/TCP, seen now unless `extra` says otherwise. */
const webToApiFlow = (extra: Partial<Flow> = {}): Flow => ({
  time: Date.now(),
  src: { ip: '10.244.1.5' },
  dst: { ip: '10.244.1.6' },
  port: 8080,
  protocol: 'TCP',
  verdict: 'FORWARDED',
  input: 'hubble',
  ...extra,
});

/** The Segmentation statuses the controller wrote, in order. */
const segmentationStatuses = (state: ReturnType<typeof fakeClient>['state']) =>
  state.applied
    .filter((a) => a.subresource === 'status' && a.body.kind === 'Segmentation')
    .map((a) => (a.body as Segmentation).status!);

describe('the Segmentation controller', () => {
  const stops: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop();
  });

  const seg = (name: string, spec: unknown): Segmentation =>
    ({
      apiVersion: 'microseg.dev/v1alpha1',
      kind: 'Segmentation',
      metadata: { name, uid: `uid-${name}`, resourceVersion: '1', generation: 1 },
      spec,
    }) as unknown as Segmentation;

  async function start(
    segmentations: Segmentation[],
    objects: Record<string, unknown[]> = {},
    cacheOptions: ClusterCacheOptions = {},
    now: () => number = Date.now,
    engine?: EngineOptions,
  ) {
    const recorded: { reason: string; type: string; message: string }[] = [];
    const { client, state } = fakeClient({
      [resourcePath('Namespace')]: [
        { metadata: { name: 'shop', labels: { 'kubernetes.io/metadata.name': 'shop' } } },
      ],
      ...objects,
      [resourcePath('Segmentation')]: segmentations,
    });
    const cache = new ClusterCache(client, cacheOptions);
    const segs = new Informer<Segmentation>(client, { path: resourcePath('Segmentation') });
    const proposals = new Informer<ProposedNetworkPolicy>(client, {
      path: resourcePath('ProposedNetworkPolicy'),
    });
    const edgeSets = new Informer<LearnedEdgeSet>(client, { path: resourcePath('LearnedEdgeSet') });
    const informers = [...cache.informers(), segs, proposals];
    for (const i of informers) i.start();
    await Promise.all(informers.map((i) => i.waitForSync()));
    const controller = new SegmentationController({
      client,
      cache,
      segmentations: segs,
      proposals,
      edgeSets,
      events: { record: (_o, type, reason, message) => void recorded.push({ type, reason, message }) },
      log: silentLogger,
      options: { now, ...(engine ? { engine } : {}) },
    });
    stops.push(async () => {
      await controller.stopLeading();
      await Promise.all(informers.map((i) => i.stop()));
    });
    // The page's API as the Manager wires it to the controller.
    const app = createApp(
      controllerViewSource({
        analyses: () => controller.analyses(),
        analysisOf: (name) => controller.analysisOf(name),
        leadership: () => ({
          leading: controller.leading,
          unrestored: (names) => controller.unrestored(names),
        }),
        segmentations: () => segs.list(),
        proposals: () => proposals.list(),
        networkPolicies: () => cache.networkPolicies.list(),
        snapshot: () => cache.snapshot(),
        ...(engine ? { engine } : {}),
      }),
    );
    return { controller, state, app, segs, recorded };
  }

  const shopSpec = { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'shop' } } };
  const shop = (uid: string, resourceVersion: string): Segmentation => ({
    apiVersion: 'microseg.dev/v1alpha1',
    kind: 'Segmentation',
    metadata: { name: 'shop', uid, resourceVersion, generation: 1 },
    spec: shopSpec,
  });

  /**
   * shop (web and api) learning with a 1m ruleExpiry, led and analysed once, on a clock `clock.offsetMs`
   * moves on: an edge left unused two minutes ages out.
   */
  async function startShortExpiry() {
    const clock = { offsetMs: 0 };
    const now = () => Date.now() + clock.offsetMs;
    const started = await start(
      [
        {
          ...shop('uid-shop', '1'),
          spec: { ...shopSpec, learning: { ruleExpiry: '1m' }, audit: { window: '1s' } },
        },
      ],
      { [resourcePath('Pod')]: webAndApi() },
      {},
      now,
    );
    started.state.failEdgeSets = false;
    started.controller.startLeading();
    await expect.poll(() => started.controller.analysisOf('shop') !== undefined).toBe(true);
    return { ...started, clock, now };
  }

  /** Every endpoint of the page's API that serves what a Segmentation learned, and what each answers. */
  async function answers(app: ReturnType<typeof createApp>) {
    const out: Record<string, unknown> = {};
    for (const path of [
      '/api/v1/graph',
      '/api/v1/graph/export',
      '/api/v1/segments',
      '/api/v1/proposals',
      '/api/v1/proposals?format=yaml',
      '/api/v1/search?q=cart',
      '/api/v1/nodes?id=shop/Deployment/cart',
    ]) {
      const r = await request(app).get(path);
      out[path] = r.status === 503 ? [r.status, r.headers['retry-after'], r.body] : r.status;
    }
    return out;
  }
  const unavailable = (message: string) => [503, '1', { error: message }];
  const all503 = (message: string) =>
    Object.fromEntries(
      [
        '/api/v1/graph',
        '/api/v1/graph/export',
        '/api/v1/segments',
        '/api/v1/proposals',
        '/api/v1/proposals?format=yaml',
        '/api/v1/search?q=cart',
        '/api/v1/nodes?id=shop/Deployment/cart',
      ].map((p) => [p, unavailable(message)]),
    );

  it('looks again at once when an object naming no Segmentation takes or frees a name it proposes in its namespaces', async () => {
    const { controller, state } = await start([shop('uid-shop', '1')]);
    state.failEdgeSets = false;
    controller.startLeading();
    await expect.poll(() => state.applied.some((a) => a.subresource === 'status')).toBe(true);
    await expect.poll(() => controller.queue.length).toBe(0);
    const foreign = (namespace: string, name = 'microseg-web', labels: Record<string, string> = {}) => ({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name, namespace, resourceVersion: '7', labels },
      spec: { podSelector: {}, policyTypes: ['Ingress'] },
    });
    const before = controller.metrics.reconciles;
    // Another namespace's, another tool's name, an Isolation's quarantine: nothing to look at now (the
    // resync is 10 s away).
    state.emit(resourcePath('NetworkPolicy'), 'ADDED', foreign('other'));
    state.emit(resourcePath('NetworkPolicy'), 'ADDED', foreign('shop', 'allow-monitoring'));
    state.emit(
      resourcePath('NetworkPolicy'),
      'ADDED',
      foreign('shop', 'microseg-quarantine-web-1', { 'microseg.dev/isolation': 'web-1' }),
    );
    await new Promise((r) => setTimeout(r, 300));
    expect(controller.metrics.reconciles).toBe(before);
    // One of shop's, taking or freeing a name microseg proposes there: reconciled now.
    state.emit(resourcePath('NetworkPolicy'), 'ADDED', foreign('shop'));
    await expect.poll(() => controller.metrics.reconciles).toBe(before + 1);
    state.emit(resourcePath('NetworkPolicy'), 'DELETED', foreign('shop'));
    await expect.poll(() => controller.metrics.reconciles).toBe(before + 2);
  });

  it('answers 503 for a Segmentation whose first reconcile failed before its state existed', async () => {
    const { controller, state, app } = await start([shop('uid-shop', '1')]);
    state.failEdgeSets = false;
    // The finalizer cannot be added: the reconcile fails before it restores (or even looks for) a graph.
    state.failPatches = true;
    controller.startLeading();
    await expect.poll(() => controller.metrics.reconcileErrors).toBeGreaterThanOrEqual(1);
    expect(state.edgeSetLists).toBe(0);
    expect(controller.unrestored()).toEqual(['shop']);
    expect(controller.unrestored(['shop'])).toEqual(['shop']);
    expect(await answers(app)).toEqual(all503(restoringMessage(['shop'])));
    // Once a retry gets through, its (empty: it is new) graph is restored and served.
    state.failPatches = false;
    await expect.poll(() => controller.unrestored(), { timeout: 5_000 }).toEqual([]);
    expect(controller.unrestored(['shop'])).toEqual([]);
    const served = await answers(app);
    expect(served['/api/v1/graph/export']).toBe(200);
    expect(served['/api/v1/proposals']).toBe(200);
  });

  for (const how of ['deleted, then created', 'replaced in one watch event'] as const)
    it(`answers 503 for a Segmentation re-created under the same name (${how}) until it is reconciled`, async () => {
      const { controller, state, app, segs } = await start([shop('uid-old', '1')]);
      state.failEdgeSets = false;
      controller.startLeading();
      await expect.poll(() => controller.analysisOf('shop') !== undefined).toBe(true);
      expect(controller.unrestored()).toEqual([]);
      expect(controller.analyses()).toHaveLength(1);
      // The new Segmentation's first reconcile fails before its state replaces its predecessor's.
      state.failPatches = true;
      const errors = controller.metrics.reconcileErrors;
      const path = resourcePath('Segmentation');
      if (how === 'deleted, then created') {
        state.emit(path, 'DELETED', shop('uid-old', '5'));
        // The deletion's reconcile drops the predecessor's state; the Segmentation is gone meanwhile.
        await expect.poll(() => controller.analysisOf('shop')).toBeUndefined();
        expect(controller.unrestored()).toEqual([]);
      }
      state.emit(path, how === 'deleted, then created' ? 'ADDED' : 'MODIFIED', shop('uid-new', '6'));
      expect(segs.get('shop')?.metadata.uid).toBe('uid-new');
      await expect.poll(() => controller.metrics.reconcileErrors).toBeGreaterThan(errors);
      expect(controller.unrestored()).toEqual(['shop']);
      expect(controller.unrestored(['shop'])).toEqual(['shop']);
      // Nothing of the predecessor is the new one's.
      expect(controller.analysisOf('shop')).toBeUndefined();
      expect(controller.analyses()).toEqual([]);
      expect(await answers(app)).toEqual(all503(restoringMessage(['shop'])));
      state.failPatches = false;
      await expect.poll(() => controller.unrestored(), { timeout: 5_000 }).toEqual([]);
      expect(controller.analysisOf('shop')).toBeDefined();
      expect((await request(app).get('/api/v1/graph/export')).status).toBe(200);
    });

  it('says by a Warning Event on the Segmentation why a reconcile failed, each time it is retried', async () => {
    // Its learned graph cannot be listed (RBAC): nothing is reconciled, and no status can say why.
    const { controller, recorded } = await start([shop('uid-shop', '1')]);
    controller.startLeading();
    await expect.poll(() => controller.metrics.reconcileErrors).toBeGreaterThanOrEqual(2);
    const failed = recorded.filter((e) => e.reason === 'ReconcileFailed');
    expect(failed.length).toBeGreaterThanOrEqual(2);
    expect(failed[0]).toEqual({
      type: 'Warning',
      reason: 'ReconcileFailed',
      message: 'reconcile failed, retried with backoff: learnedgesets is forbidden',
    });
  });

  it('says by a Warning Event why a deleted Segmentation waits: what it could not remove', async () => {
    const np = {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: {
        name: 'microseg-default-deny',
        namespace: 'shop',
        labels: { 'app.kubernetes.io/managed-by': 'microseg', 'microseg.dev/segmentation': 'shop' },
      },
      spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] },
    };
    const deleting: Segmentation = {
      ...shop('uid-shop', '1'),
      metadata: {
        ...shop('uid-shop', '1').metadata,
        deletionTimestamp: new Date().toISOString(),
        finalizers: ['microseg.dev/cleanup'],
      },
    };
    const { controller, state, recorded } = await start([deleting], {
      [resourcePath('NetworkPolicy')]: [np],
    });
    state.failDelete.add(resourcePath('NetworkPolicy', 'shop', 'microseg-default-deny'));
    controller.startLeading();
    await expect.poll(() => controller.metrics.reconcileErrors).toBeGreaterThanOrEqual(1);
    expect(recorded.filter((e) => e.reason === 'ReconcileFailed')[0]).toEqual({
      type: 'Warning',
      reason: 'ReconcileFailed',
      message:
        'reconcile failed, retried with backoff: delete NetworkPolicy shop/microseg-default-deny: etcdserver: request timed out',
    });
    expect(recorded.map((e) => e.reason)).not.toContain('CleanedUp');
  });

  it('says why it removes the NetworkPolicies of a deleted Segmentation, and says it once', async () => {
    const ours = { 'app.kubernetes.io/managed-by': 'microseg', 'microseg.dev/segmentation': 'shop' };
    const np = {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'microseg-default-deny', namespace: 'shop', labels: ours },
      spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] },
    };
    const deleting = (finalizers: string[], resourceVersion: string): Segmentation => ({
      ...shop('uid-shop', resourceVersion),
      spec: { ...shopSpec, mode: 'Enforce' },
      metadata: {
        ...shop('uid-shop', resourceVersion).metadata,
        deletionTimestamp: new Date().toISOString(),
        finalizers,
      },
    });
    const { controller, state, recorded } = await start(
      [deleting(['microseg.dev/cleanup', 'example.com/backup'], '1')],
      { [resourcePath('NetworkPolicy')]: [np] },
    );
    controller.startLeading();
    await expect.poll(() => recorded.map((e) => e.reason)).toContain('CleanedUp');
    expect(recorded.filter((e) => e.reason === 'PoliciesRemoved')).toEqual([
      {
        type: 'Normal',
        reason: 'PoliciesRemoved',
        message: '1 NetworkPolicies removed: the Segmentation is being deleted',
      },
    ]);
    // Its finalizer gone, another holds it: there is nothing left to do, and nothing to say again.
    const deleted = state.deleted.length;
    state.emit(resourcePath('Segmentation'), 'MODIFIED', deleting(['example.com/backup'], '2'));
    await new Promise((r) => setTimeout(r, 200));
    await controller.reconcile('shop');
    expect(state.deleted.length).toBe(deleted);
    expect(recorded.filter((e) => e.reason === 'CleanedUp')).toHaveLength(1);
  });

  it('does not wait for an invalid Segmentation, until its spec changes', async () => {
    const { controller, state } = await start([seg('broken', { namespaceSelector: {}, mode: 'Sometimes' })]);
    state.failEdgeSets = false;
    controller.startLeading();
    await expect.poll(() => controller.metrics.reconciles).toBeGreaterThanOrEqual(1);
    await expect.poll(() => controller.unrestored()).toEqual([]);
    // A new generation (its spec edited) is not known to be invalid until it is reconciled.
    state.failPatches = true;
    const errors = controller.metrics.reconcileErrors;
    state.emit(resourcePath('Segmentation'), 'MODIFIED', {
      ...seg('broken', shopSpec),
      metadata: { name: 'broken', uid: 'uid-broken', resourceVersion: '7', generation: 2 },
    });
    await expect.poll(() => controller.metrics.reconcileErrors).toBeGreaterThan(errors);
    expect(controller.unrestored()).toEqual(['broken']);
  });

  it('lists as unrestored a Segmentation whose learned graph could not be restored, until it is', async () => {
    const { controller, state } = await start([
      seg('shop', { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'shop' } } }),
      // Invalid: it has no learned graph to restore, and is never listed (else the API answered 503 for ever).
      seg('broken', { namespaceSelector: {}, mode: 'Sometimes' }),
    ]);
    controller.startLeading();
    // The first reconcile of each has run: `shop`'s failed at listing its LearnedEdgeSets.
    await expect.poll(() => controller.metrics.reconcileErrors).toBeGreaterThanOrEqual(1);
    await expect.poll(() => controller.unrestored(['broken'])).toEqual([]);
    expect(state.edgeSetLists).toBeGreaterThanOrEqual(1);
    expect(controller.unrestored()).toEqual(['shop']);
    expect(controller.unrestored(['shop'])).toEqual(['shop']);
    expect(controller.unrestored(['broken'])).toEqual([]);
    // Flows are not held up by a Segmentation that keeps failing.
    await controller.whenRestored();
    // Once the list succeeds (the queue retries it), the graph is restored and nothing is pending.
    state.failEdgeSets = false;
    await expect.poll(() => controller.unrestored(), { timeout: 5_000 }).toEqual([]);
  });

  /** A frozen (Audit) proposal of one default deny as microseg wrote it, and as edited by hand since. */
  function editedFrozen() {
    const audit = { ...shop('uid-shop', '1'), spec: { ...shopSpec, mode: 'Audit' as const } };
    const [written] = proposedPolicies(audit, {
      policies: [
        {
          apiVersion: 'networking.k8s.io/v1',
          kind: 'NetworkPolicy',
          metadata: {
            name: 'microseg-default-deny',
            namespace: 'shop',
            labels: { 'app.kubernetes.io/managed-by': 'microseg', 'microseg.dev/segment': 'shop' },
            annotations: { 'microseg.dev/purpose': 'default deny: only observed traffic is allowed' },
          },
          spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] },
        },
      ],
      byWorkload: {},
      evidence: [],
      notExpressible: [],
      unobserved: [],
      namespaces: ['shop'],
      warnings: [],
    });
    // Edited by hand while frozen: microseg's label removed, its segment label changed, its annotation
    // removed, a label and an annotation of someone else's added.
    const edited: ProposedNetworkPolicy = {
      ...written!,
      metadata: {
        ...written!.metadata,
        resourceVersion: '9',
        labels: { 'microseg.dev/segmentation': 'shop', 'microseg.dev/segment': 'elsewhere', team: 'ops' },
        annotations: { note: 'mine' },
      },
    };
    return { audit, written: written!, edited };
  }

  it('puts back the labels and annotations microseg set on a frozen proposal, and only those', async () => {
    const { audit, written, edited } = editedFrozen();
    const { controller, state, recorded } = await start([audit], {
      [resourcePath('ProposedNetworkPolicy')]: [edited],
    });
    state.failEdgeSets = false;
    controller.startLeading();
    await expect
      .poll(() => recorded.filter((e) => e.reason === 'PolicyDriftRepaired'))
      .toEqual([
        {
          type: 'Warning',
          reason: 'PolicyDriftRepaired',
          message:
            'ProposedNetworkPolicy shop/microseg-default-deny was changed or deleted outside microseg; restored',
        },
      ]);
    const applies = state.applied.filter((a) => a.body.kind === 'ProposedNetworkPolicy');
    // One server-side apply (the frozen spec as it is, no status, on the version it was read from):
    // microseg's labels and annotations, not the ones others added.
    expect(applies).toEqual([
      {
        body: {
          apiVersion: 'microseg.dev/v1alpha1',
          kind: 'ProposedNetworkPolicy',
          metadata: {
            name: 'microseg-default-deny',
            namespace: 'shop',
            labels: {
              'app.kubernetes.io/managed-by': 'microseg',
              'microseg.dev/segment': 'shop',
              'microseg.dev/segmentation': 'shop',
            },
            annotations: { 'microseg.dev/purpose': 'default deny: only observed traffic is allowed' },
            ownerReferences: written.metadata.ownerReferences,
            resourceVersion: '9',
          },
          spec: written.spec,
        },
      },
    ]);
    expect(recorded.filter((e) => e.reason === 'PolicyDriftNotRepaired')).toEqual([]);
  });

  it('forgets a repair once the object repaired is gone, with its namespace', async () => {
    const { audit, edited } = editedFrozen();
    const { controller, state, recorded } = await start([audit], {
      [resourcePath('ProposedNetworkPolicy')]: [edited],
    });
    state.failEdgeSets = false;
    controller.startLeading();
    await expect.poll(() => recorded.some((e) => e.reason === 'PolicyDriftRepaired')).toBe(true);
    await expect.poll(() => controller.queue.length).toBe(0);
    expect(controller.retained().repairedFrom).toBe(1);
    // The namespace is deleted (a preview environment), and its proposal with it.
    state.emit(resourcePath('ProposedNetworkPolicy'), 'DELETED', edited);
    state.emit(resourcePath('Namespace'), 'DELETED', {
      metadata: { name: 'shop', labels: { 'kubernetes.io/metadata.name': 'shop' } },
    });
    await controller.reconcile('shop');
    expect(controller.retained().repairedFrom).toBe(0);
  });

  it('does not put back a frozen proposal from a cached copy older than the object: a newer spec edit stays', async () => {
    const { audit, edited } = editedFrozen();
    const { controller, state, recorded } = await start([audit], {
      [resourcePath('ProposedNetworkPolicy')]: [edited],
    });
    // The spec was edited again (version 10: what is audited and enforced from now on) after the version
    // the cache holds (9, its labels edited): a repair from version 9 would put its spec back.
    state.serverVersions['shop/microseg-default-deny'] = '10';
    state.failEdgeSets = false;
    controller.startLeading();
    const statusOf = () =>
      state.applied.find((a) => a.body.kind === 'Segmentation' && a.subresource === 'status')?.body as
        Segmentation | undefined;
    await expect.poll(() => statusOf()).toBeDefined();
    // No apply of version 9's spec took; the one made names the version it was computed from, which the
    // API server refuses. The labels are put back at the next reconcile, from version 10.
    expect(state.taken.filter((b) => (b as { kind: string }).kind === 'ProposedNetworkPolicy')).toEqual([]);
    expect(state.applied.find((a) => a.body.kind === 'ProposedNetworkPolicy')!.body.metadata).toMatchObject({
      resourceVersion: '9',
    });
    expect(recorded.filter((e) => e.reason === 'PolicyDriftRepaired')).toEqual([]);
    expect(statusOf()!.status!.conditions!.find((c) => c.type === 'Degraded')).toMatchObject({
      status: 'True',
      reason: 'ApplyFailed',
      message:
        'apply ProposedNetworkPolicy shop/microseg-default-deny: Operation cannot be fulfilled on proposednetworkpolicies.microseg.dev "microseg-default-deny": the object has been modified; please apply your changes to the latest version and try again (HTTP 409)',
    });
  });
  it.each([
    [1, ['shop/Deployment/c']],
    [0, undefined],
  ])(
    'keeps at most spec.audit.samples (%i) would-be-blocked samples, also of those the status already has',
    async (samples, kept) => {
      const sample = (source: string, time: string) => ({
        time,
        source,
        destination: 'shop/Deployment/db',
        protocol: 'TCP',
        port: 5432,
        count: 1,
      });
      const auditing: Segmentation = {
        ...shop('uid-shop', '1'),
        spec: { ...shopSpec, mode: 'Audit', audit: { samples } },
        status: {
          mode: 'Audit',
          audit: {
            since: '2026-01-01T00:00:00.000Z',
            samples: [
              sample('shop/Deployment/a', '2026-01-01T00:00:01.000Z'),
              sample('shop/Deployment/b', '2026-01-01T00:00:02.000Z'),
              sample('shop/Deployment/c', '2026-01-01T00:00:03.000Z'),
            ],
          },
        },
      };
      const { controller, state } = await start([auditing]);
      state.failEdgeSets = false;
      controller.startLeading();
      await expect
        .poll(() => state.applied.filter((a) => a.body.kind === 'Segmentation' && a.subresource === 'status'))
        .toHaveLength(1);
      const written = state.applied.find((a) => a.body.kind === 'Segmentation')!.body as Segmentation;
      expect(written.status?.audit?.samples?.map((x) => x.source)).toEqual(kept);
    },
  );

  // Cilium never applies an ipBlock to a pod's IP: audited as if it did, a flow the proposal admits only
  // through such an ipBlock was counted allowed (AuditClean, a promotion to Enforce), and dropped once
  // enforced.
  it.each([
    [{ ipBlockMatchesPods: false }, 1],
    [{ ipBlockMatchesPods: true }, 0],
    [undefined, 0],
  ])(
    'audits with the semantics it is given (%j): a flow admitted only by an ipBlock holding the pod IP is blocked where ipBlocks match no pod',
    async (engine, blocked) => {
      // web may reach api's address on 8080 (egress by ipBlock), api takes 8080 from web.
      const frozen = [
        shopDefaultDeny(),
        proposedOfShop('microseg-web', {
          podSelector: { matchLabels: { app: 'web' } },
          policyTypes: ['Egress'],
          egress: [
            { to: [{ ipBlock: { cidr: '10.244.1.6/32' } }], ports: [{ protocol: 'TCP', port: 8080 }] },
          ],
        }),
        shopApiFromWeb(),
      ];
      const auditing: Segmentation = { ...shop('uid-shop', '1'), spec: { ...shopSpec, mode: 'Audit' } };
      const { controller, state, app } = await start(
        [auditing],
        {
          [resourcePath('Pod')]: webAndApi(),
          [resourcePath('ProposedNetworkPolicy')]: frozen,
        },
        {},
        Date.now,
        engine,
      );
      state.failEdgeSets = false;
      controller.startLeading();
      await expect.poll(() => state.applied.some((a) => a.subresource === 'status')).toBe(true);
      controller.ingest([webToApiFlow()]);
      expect(controller.metrics.unauditable).toBe(0);
      expect(controller.metrics.wouldBlock).toBe(blocked);
      await controller.reconcile('shop');
      const status = segmentationStatuses(state).at(-1)!;
      expect(status.wouldBlock ?? 0).toBe(blocked);
      expect(status.audit?.samples?.map((x) => `${x.source} -> ${x.destination} ${x.port}`) ?? []).toEqual(
        blocked ? ['shop/Pod/web -> shop/Pod/api 8080'] : [],
      );
      // The page's API audits a policy set with the same semantics.
      const set = frozen.map((p) => ({ ...p, apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy' }));
      const r = await request(app)
        .post('/api/v1/audit')
        .set('Content-Type', 'application/json')
        .send(JSON.stringify({ apiVersion: 'v1', kind: 'List', items: set }))
        .expect(200);
      expect(r.body.connections.replayed).toBe(1);
      expect(r.body.wouldBlock).toHaveLength(blocked);
    },
  );

  // Reconciles run at the resync, not at each flow: what was audited since the last one was in memory
  // only, and a graceful shutdown (a rolling update) lost it; the next leader's audit could then be
  // clean although a flow would have been blocked.
  it.each([true, false])(
    'on a graceful shutdown (persist: %s) writes the flows audited since the last reconcile into status.audit',
    async (persist) => {
      const frozen = [shopDefaultDeny()];
      const auditing: Segmentation = {
        ...shop('uid-shop', '1'),
        spec: { ...shopSpec, mode: 'Audit', audit: { window: '1h', samples: 3 } },
      };
      const { controller, state } = await start([auditing], {
        [resourcePath('Pod')]: webAndApi(),
        [resourcePath('ProposedNetworkPolicy')]: frozen,
      });
      const statuses = () => segmentationStatuses(state);
      state.failEdgeSets = false;
      controller.startLeading();
      await expect.poll(() => statuses().length).toBe(1);
      await expect.poll(() => controller.queue.length).toBe(0);
      const reconciled = statuses()[0]!;
      expect(reconciled.wouldBlock).toBe(0);
      expect(reconciled.audit?.buckets).toBeUndefined();
      const time = Date.now();
      controller.ingest([webToApiFlow({ time, count: 3 })]);
      expect(controller.metrics.wouldBlock).toBe(3);
      await controller.stopLeading({ persist });
      if (!persist) {
        expect(statuses()).toHaveLength(1);
        return;
      }
      expect(statuses()).toHaveLength(2);
      const last = statuses()[1]!;
      expect(last.audit?.since).toBe(reconciled.audit?.since);
      expect(Object.values(last.audit?.buckets ?? {})).toEqual([3]);
      expect(last.audit?.lastBlocked).toBe(new Date(time).toISOString());
      expect(last.audit?.samples?.map((x) => `${x.source} -> ${x.destination} ${x.port}`)).toEqual([
        'shop/Pod/web -> shop/Pod/api 8080',
      ]);
      expect(last.wouldBlock).toBe(3);
      expect(last.flowsIngested).toBe(3);
      expect(last.proposal).toEqual(reconciled.proposal);
      expect(last.modeSince).toBe(reconciled.modeSince);
      expect(last.conditions?.find((c) => c.type === 'AuditClean')).toMatchObject({
        status: 'False',
        reason: 'FlowsWouldBeBlocked',
        message: '3 flow(s) in the last 1h would be blocked by the proposal',
      });
    },
  );

  it('learns a flow to a host-network port by its protocol: a UDP listener sharing a port with a TCP one is its own end', async () => {
    const node = '192.168.0.10';
    const hostPod = (name: string, protocol: string) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: 'shop', uid: `uid-${name}`, labels: { app: name } },
      spec: {
        nodeName: 'node-1',
        hostNetwork: true,
        containers: [{ name: 'c', ports: [{ containerPort: 5353, protocol }] }],
      },
      status: { phase: 'Running', podIP: node, podIPs: [{ ip: node }], hostIP: node },
    });
    const client = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'client', namespace: 'shop', uid: 'uid-client', labels: { app: 'client' } },
      spec: { nodeName: 'node-1', containers: [{ name: 'c' }] },
      status: { phase: 'Running', podIP: '10.244.1.5', podIPs: [{ ip: '10.244.1.5' }], hostIP: node },
    };
    const { controller, state } = await start([shop('uid-shop', '1')], {
      // Without the protocol, the UDP listener's flows would go to the TCP one (taken first).
      [resourcePath('Pod')]: [hostPod('dns-tcp', 'TCP'), hostPod('dns-udp', 'UDP'), client],
    });
    state.failEdgeSets = false;
    controller.startLeading();
    await expect.poll(() => controller.analysisOf('shop') !== undefined).toBe(true);
    const flow = (protocol: 'TCP' | 'UDP'): Flow => ({
      time: Date.now(),
      src: { ip: '10.244.1.5' },
      dst: { ip: node },
      port: 5353,
      protocol,
      verdict: 'FORWARDED',
      input: 'hubble',
    });
    controller.ingest([flow('TCP'), flow('UDP')]);
    await controller.reconcile('shop');
    expect(
      controller
        .analysisOf('shop')!
        .graph.edges.filter((e) => e.port === 5353)
        .map((e) => `${e.source} -> ${e.target} ${e.port}/${e.protocol}`),
    ).toEqual([
      'shop/Pod/client -> shop/Pod/dns-tcp 5353/TCP',
      'shop/Pod/client -> shop/Pod/dns-udp 5353/UDP',
    ]);
  });
  it("lists on the page's API the segments of what its graph shows and its Segmentations cover, not of a namespace none covers", async () => {
    const pod = (namespace: string, name: string, ip: string) => ({
      ...barePod(name, ip),
      metadata: { name, namespace, uid: `uid-${namespace}-${name}`, labels: { app: name } },
    });
    const { controller, state, app } = await start([shop('uid-shop', '1')], {
      [resourcePath('Namespace')]: ['shop', 'microseg-system', 'billing'].map((name) => ({
        metadata: { name, labels: { 'kubernetes.io/metadata.name': name } },
      })),
      [resourcePath('Pod')]: [
        ...webAndApi(),
        // Idle in shop: covered, unobserved.
        barePod('reports', '10.244.1.7'),
        // The controller itself, in a namespace no Segmentation covers; and a peer of shop's outside it.
        pod('microseg-system', 'controller', '10.244.9.1'),
        pod('billing', 'ledger', '10.244.8.1'),
      ],
    });
    state.failEdgeSets = false;
    controller.startLeading();
    await expect.poll(() => controller.analysisOf('shop') !== undefined).toBe(true);
    controller.ingest([webToApiFlow(), webToApiFlow({ dst: { ip: '10.244.8.1' }, port: 9000 })]);
    await controller.reconcile('shop');
    const graph = (await request(app).get('/api/v1/graph?view=full').expect(200)).body as {
      nodes: { id: string; segment?: string }[];
      segments: { id: string; members: number }[];
    };
    const segments = (await request(app).get('/api/v1/segments').expect(200)).body as {
      segments: { id: string; members: string[] }[];
      membership: Record<string, string>;
    };
    const members = segments.segments.flatMap((s) => s.members).sort();
    // The graph's workloads, with the segment each is drawn in, and shop's idle one (unobserved).
    expect(members).toEqual(['billing/Pod/ledger', 'shop/Pod/api', 'shop/Pod/reports', 'shop/Pod/web']);
    expect(Object.keys(segments.membership).sort()).toEqual(members);
    for (const n of graph.nodes)
      if (n.segment !== undefined) expect(segments.membership[n.id], n.id).toBe(n.segment);
    expect(segments.segments.map((s) => s.id)).not.toContain('microseg-system-unobserved');
    // The page's list of segments (beside the graph) is the same list.
    expect(graph.segments.map((s) => [s.id, s.members])).toEqual(
      segments.segments.map((s) => [s.id, s.members.length]),
    );
    // As the Segmentation's status counts them: shop's workloads only.
    const status = segmentationStatuses(state).at(-1)!;
    expect(status.segments!.flatMap((s) => s.members).sort()).toEqual([
      'shop/Pod/api',
      'shop/Pod/reports',
      'shop/Pod/web',
    ]);
  });

  it("lists each workload once on the page's API with two Segmentations, in the segment of the one covering it, not also where the other draws it as a peer", async () => {
    const pod = (namespace: string, name: string, ip: string) => ({
      ...barePod(name, ip),
      metadata: { name, namespace, uid: `uid-${namespace}-${name}`, labels: { app: name } },
    });
    const billing: Segmentation = {
      apiVersion: 'microseg.dev/v1alpha1',
      kind: 'Segmentation',
      metadata: { name: 'billing', uid: 'uid-billing', resourceVersion: '1', generation: 1 },
      spec: { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'billing' } } },
    };
    const { controller, state, app } = await start([shop('uid-shop', '1'), billing], {
      [resourcePath('Namespace')]: ['shop', 'billing'].map((name) => ({
        metadata: { name, labels: { 'kubernetes.io/metadata.name': name } },
      })),
      [resourcePath('Pod')]: [
        ...webAndApi(),
        pod('billing', 'ledger', '10.244.8.1'),
        pod('billing', 'db', '10.244.8.2'),
        pod('billing', 'idle', '10.244.8.3'),
      ],
    });
    state.failEdgeSets = false;
    controller.startLeading();
    await expect
      .poll(
        () => controller.analysisOf('shop') !== undefined && controller.analysisOf('billing') !== undefined,
      )
      .toBe(true);
    controller.ingest([
      webToApiFlow(),
      webToApiFlow({ dst: { ip: '10.244.8.1' }, port: 9000 }),
      webToApiFlow({ src: { ip: '10.244.8.1' }, dst: { ip: '10.244.8.2' }, port: 5432 }),
    ]);
    await controller.reconcile('shop');
    await controller.reconcile('billing');
    const graph = (await request(app).get('/api/v1/graph?view=full').expect(200)).body as {
      nodes: { id: string; segment?: string }[];
    };
    const segments = (await request(app).get('/api/v1/segments').expect(200)).body as {
      segments: { id: string; members: string[] }[];
      membership: Record<string, string>;
    };
    // Each Segmentation draws a peer of the other's namespace (shop's web, billing's ledger) in a
    // segment of its own analysis; listed there as well, each was in two segments, and the membership
    // named only one of them.
    const listed = segments.segments.flatMap((s) => s.members.map((m) => [m, s.id] as const));
    expect(listed.map(([m]) => m).sort()).toEqual([
      'billing/Pod/db',
      'billing/Pod/idle',
      'billing/Pod/ledger',
      'shop/Pod/api',
      'shop/Pod/web',
    ]);
    for (const [m, id] of listed) expect(segments.membership[m], m).toBe(id);
    // In the segment the Segmentation covering it puts it in.
    const own = (seg: string, w: string) => controller.analysisOf(seg)!.segments.membership[w];
    expect(segments.membership['shop/Pod/web']).toBe(own('shop', 'shop/Pod/web'));
    expect(segments.membership['billing/Pod/ledger']).toBe(own('billing', 'billing/Pod/ledger'));
    for (const n of graph.nodes)
      if (segments.membership[n.id] !== undefined) expect(n.segment, n.id).toBe(segments.membership[n.id]);
  });

  it('counts a workload known only from flows (a pod the cluster never had) while a learned edge has it, and forgets it with its last edge', async () => {
    const { controller, state, app, recorded, clock, now } = await startShortExpiry();
    // As docs/telemetry.md's example posts it: a pod by name that no informer ever saw.
    const phantom: Flow = {
      ...webToApiFlow({ time: now() }),
      src: { namespace: 'shop', pod: 'cart-7d9f' },
      input: 'generic',
    };
    controller.ingest([webToApiFlow({ time: now() }), phantom]);
    await controller.reconcile('shop');
    const members = async () =>
      (
        (await request(app).get('/api/v1/segments').expect(200)).body as { segments: { members: string[] }[] }
      ).segments
        .flatMap((s) => s.members)
        .sort();
    const counted = () => {
      const st = segmentationStatuses(state).at(-1)!;
      return {
        workloads: st.workloads,
        unobserved: st.unobserved,
        members: st.segments!.flatMap((s) => s.members).sort(),
        memberCount: st.segments!.reduce((n, s) => n + s.memberCount, 0),
      };
    };
    // Learned from its flow, the bare pod is a workload of the graph and of the counts.
    expect(counted()).toEqual({
      workloads: 3,
      unobserved: 0,
      members: ['shop/Pod/api', 'shop/Pod/cart-7d9f', 'shop/Pod/web'],
      memberCount: 3,
    });
    expect(await members()).toEqual(['shop/Pod/api', 'shop/Pod/cart-7d9f', 'shop/Pod/web']);

    // Two minutes on, web → api seen again, the phantom's edge unused past the 1m expiry: it ages out,
    // and the workload known only from it goes with it (no pod changed, so the identity is the same).
    clock.offsetMs = 120_000;
    controller.ingest([webToApiFlow({ time: now() })]);
    await controller.reconcile('shop');
    expect(recorded).toContainEqual({
      type: 'Normal',
      reason: 'EdgesAgedOut',
      message: '1 learned edge(s) unused for 1m aged out',
    });
    expect(counted()).toEqual({
      workloads: 2,
      unobserved: 0,
      members: ['shop/Pod/api', 'shop/Pod/web'],
      memberCount: 2,
    });
    expect(await members()).toEqual(['shop/Pod/api', 'shop/Pod/web']);
  });

  it('keeps a workload known only from flows, and its rules, through changes of other pods, until its last edge ages out', async () => {
    const { controller, state, app, clock, now } = await startShortExpiry();
    // A pod by name, with its labels, that no informer ever saw: a bare pod known only from flows.
    const phantom = (time: number): Flow => ({
      ...webToApiFlow({ time }),
      src: { namespace: 'shop', pod: 'cart-7d9f', labels: ['app=cart'] },
      input: 'generic',
    });
    controller.ingest([webToApiFlow({ time: now() }), phantom(now())]);
    await controller.reconcile('shop');
    const seen = async () => {
      const analysis = controller.analysisOf('shop')!;
      const st = segmentationStatuses(state).at(-1)!;
      return {
        nodes: analysis.graph.nodes.map((n) => n.id).sort(),
        edges: analysis.graph.edges.map((e) => `${e.source} -> ${e.target} ${e.port}/${e.protocol}`),
        policies: analysis.proposal.policies.map((p) => [p.metadata.name, p.spec]),
        hash: st.proposal?.hash,
        workloads: st.workloads,
        edgeCount: st.edges,
        members: st.segments!.flatMap((s) => s.members).sort(),
        page: (
          (await request(app).get('/api/v1/segments').expect(200)).body as {
            segments: { members: string[] }[];
          }
        ).segments
          .flatMap((s) => s.members)
          .sort(),
      };
    };
    const learned = await seen();
    expect(learned.nodes).toEqual(['shop/Pod/api', 'shop/Pod/cart-7d9f', 'shop/Pod/web']);
    expect(learned.edges).toContain('shop/Pod/cart-7d9f -> shop/Pod/api 8080/TCP');
    expect(learned.members).toEqual(['shop/Pod/api', 'shop/Pod/cart-7d9f', 'shop/Pod/web']);
    expect(learned.page).toEqual(learned.members);
    // api admits the phantom by the labels its flow gave.
    const apiIngress = learned.policies.find(([name]) => name === 'microseg-api')![1] as {
      ingress: { from: { podSelector?: { matchLabels?: Record<string, string> } }[] }[];
    };
    expect(apiIngress.ingress.flatMap((r) => r.from.map((f) => f.podSelector?.matchLabels))).toContainEqual({
      app: 'cart',
    });

    // Another pod changes (an annotation of web): the identity is built again, and the phantom, which
    // its learned edge still has, is still a workload of the analysis, with the same proposal.
    const path = resourcePath('Pod');
    const [web] = webAndApi();
    state.emit(path, 'MODIFIED', {
      ...web,
      metadata: { ...web!.metadata, resourceVersion: '2', annotations: { touched: 'yes' } },
    });
    await controller.reconcile('shop');
    expect(await seen()).toEqual(learned);
    // A pod of shop created, and one of another namespace: the same.
    state.emit(path, 'ADDED', {
      ...barePod('elsewhere', '10.244.3.1'),
      metadata: { name: 'elsewhere', namespace: 'other', uid: 'uid-elsewhere', labels: { app: 'x' } },
    });
    await controller.reconcile('shop');
    expect(await seen()).toEqual(learned);
    expect(state.deleted.filter((p) => p.includes('cart'))).toEqual([]);

    // Two minutes on, web → api seen again, the phantom's edge unused past the 1m expiry: it ages out,
    // and the workload goes with it, and stays gone when the identity is built again.
    clock.offsetMs = 120_000;
    controller.ingest([webToApiFlow({ time: now() })]);
    await controller.reconcile('shop');
    const gone = await seen();
    expect(gone.nodes).toEqual(['shop/Pod/api', 'shop/Pod/web']);
    expect(gone.members).toEqual(['shop/Pod/api', 'shop/Pod/web']);
    expect(gone.workloads).toBe(2);
    state.emit(path, 'MODIFIED', {
      ...web,
      metadata: { ...web!.metadata, resourceVersion: '3', annotations: { touched: 'again' } },
    });
    await controller.reconcile('shop');
    expect(await seen()).toEqual(gone);
  });

  it('keeps nothing for Segmentations created and deleted while it leads', async () => {
    const { controller, state } = await start([shop('uid-shop', '1')]);
    state.failEdgeSets = false;
    controller.startLeading();
    await expect.poll(() => controller.unrestored()).toEqual([]);
    const path = resourcePath('Segmentation');
    // Each covers no namespace (announced by a NoNamespaces Event); every other one is invalid.
    const preview = (i: number) =>
      seg(`preview-${i}`, {
        namespaceSelector: { matchLabels: { preview: `${i}` } },
        ...(i % 2 === 1 ? { mode: 'Sometimes' } : {}),
      });
    for (let i = 0; i < 20; i++) state.emit(path, 'ADDED', preview(i));
    await expect.poll(() => controller.retained().reconciled, { timeout: 5_000 }).toBe(21);
    await expect.poll(() => controller.queue.length).toBe(0);
    for (let i = 0; i < 20; i++) state.emit(path, 'DELETED', preview(i));
    await expect
      .poll(() => controller.retained(), { timeout: 5_000 })
      .toMatchObject({ states: 1, reconciled: 1, invalid: 0, noNamespacesAnnounced: 0 });
    await controller.whenRestored();
  });

  it('keeps nothing for Segmentations deleted while another replica led', async () => {
    const preview = seg('preview', { namespaceSelector: { matchLabels: { preview: '1' } } });
    const { controller, state, recorded } = await start([shop('uid-shop', '1'), preview]);
    state.failEdgeSets = false;
    controller.startLeading();
    await expect.poll(() => recorded.some((e) => e.reason === 'NoNamespaces')).toBe(true);
    await expect.poll(() => controller.queue.length).toBe(0);
    expect(controller.retained()).toMatchObject({ noNamespacesAnnounced: 1, written: 2 });
    await controller.stopLeading();
    state.emit(resourcePath('Segmentation'), 'DELETED', preview);
    controller.startLeading();
    await expect.poll(() => controller.retained().reconciled).toBe(1);
    expect(controller.retained()).toMatchObject({ noNamespacesAnnounced: 0, written: 1 });
  });

  it('covers a Kubernetes system namespace only when the selector names it, and says which it left out', async () => {
    const namespace = (name: string, labels: Record<string, string> = {}) => ({
      metadata: { name, labels: { ...labels, 'kubernetes.io/metadata.name': name } },
    });
    const notIn = (values: string[]) => ({
      matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values }],
    });
    const { controller, state, recorded } = await start(
      [
        // "Every namespace but dev", and a label kube-system carries: neither names a system namespace.
        seg('all-but-dev', { namespaceSelector: notIn(['dev']) }),
        seg('tiered', { namespaceSelector: { matchExpressions: [{ key: 'tier', operator: 'Exists' }] } }),
      ],
      {
        [resourcePath('Namespace')]: [
          namespace('shop'),
          namespace('dev'),
          namespace('kube-system', { tier: 'control-plane' }),
          namespace('kube-public'),
          namespace('kube-node-lease'),
        ],
      },
    );
    state.failEdgeSets = false;
    await controller.reconcile('all-but-dev');
    await controller.reconcile('tiered');
    type Status = { namespaces?: string[]; conditions?: { type: string; status: string; message: string }[] };
    const written = (name: string) =>
      state.applied
        .filter(
          (a) =>
            a.subresource === 'status' &&
            a.body.kind === 'Segmentation' &&
            (a.body.metadata as { name: string }).name === name,
        )
        .map((a) => (a.body as unknown as { status: Status }).status)
        .at(-1)!;
    const valid = (name: string) => written(name).conditions!.find((c) => c.type === 'Valid')!;
    expect(written('all-but-dev').namespaces).toEqual(['shop']);
    expect(valid('all-but-dev')).toMatchObject({
      status: 'True',
      message:
        'covers 1 namespace(s); spec.namespaceSelector also matches namespaces kube-node-lease, kube-public, kube-system, not covered: Kubernetes system namespaces (cluster DNS and add-ons every namespace relies on), covered only by a selector that names them by kubernetes.io/metadata.name',
    });
    // Only kube-system carries the label: nothing is covered, which the NoNamespaces Event says, and why.
    expect(written('tiered').namespaces ?? []).toEqual([]);
    const none =
      'covers no namespace: spec.namespaceSelector matches only namespace kube-system, not covered: a Kubernetes system namespace (cluster DNS and add-ons every namespace relies on), covered only by a selector that names it by kubernetes.io/metadata.name; nothing is learned, proposed or enforced until another namespace matches';
    expect(valid('tiered').message).toBe(none);
    expect(recorded.filter((e) => e.reason === 'NoNamespaces').map((e) => e.message)).toEqual([none]);
    // Nothing was proposed in a system namespace.
    expect(
      state.taken.filter((b) =>
        (b as { metadata: { namespace?: string } }).metadata.namespace?.startsWith('kube-'),
      ),
    ).toEqual([]);
  });

  it('keeps segment names only for workloads the cluster still has, however many come and go', async () => {
    const flow = (src: string, dst: string): Flow => ({
      time: Date.now(),
      src: { ip: src },
      dst: { ip: dst },
      port: 8080,
      protocol: 'TCP',
      verdict: 'FORWARDED',
      input: 'hubble',
    });
    // No tombstones: a deleted pod's workload is gone from identity at once.
    const { controller, state } = await start(
      [shop('uid-shop', '1')],
      { [resourcePath('Pod')]: webAndApi() },
      { maxTombstones: 0 },
    );
    state.failEdgeSets = false;
    controller.startLeading();
    await expect.poll(() => controller.analysisOf('shop') !== undefined).toBe(true);
    controller.ingest([flow('10.244.1.5', '10.244.1.6')]);
    await controller.reconcile('shop');
    expect(controller.segmentNamesKept('shop')).toBe(2);
    // Preview workloads, each talking to api, then deleted.
    for (let i = 0; i < 20; i++) {
      const preview = barePod(`preview-${i}`, `10.244.2.${i + 1}`);
      state.emit(resourcePath('Pod'), 'ADDED', preview);
      // A reconcile builds the identity the flow path places the new pod with.
      await controller.reconcile('shop');
      controller.ingest([flow(`10.244.2.${i + 1}`, '10.244.1.6')]);
      await controller.reconcile('shop');
      expect(controller.segmentNamesKept('shop')).toBe(3);
      state.emit(resourcePath('Pod'), 'DELETED', preview);
      await controller.reconcile('shop');
    }
    expect(controller.segmentNamesKept('shop')).toBe(2);
  });

  it('writes no ipBlock for a ClusterIP learned while its Service had no backend, and credits the flows to the backends it has since', async () => {
    // Service ghost (10.96.0.80, 80 → 8080) selects app=ghost: no pod at first.
    const ghost = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'ghost', namespace: 'shop', uid: 'uid-ghost' },
      spec: { selector: { app: 'ghost' }, clusterIP: '10.96.0.80', ports: [{ port: 80, targetPort: 8080 }] },
    };
    const { controller, state } = await start([shop('uid-shop', '1')], {
      [resourcePath('Pod')]: webAndApi(),
      [resourcePath('Service')]: [ghost],
    });
    state.failEdgeSets = false;
    controller.startLeading();
    await expect.poll(() => controller.analysisOf('shop') !== undefined).toBe(true);
    controller.ingest([
      webToApiFlow(),
      webToApiFlow({ dst: { ip: '10.96.0.80' }, port: 80, count: 3 }),
      webToApiFlow({ dst: { ip: '10.96.0.80' }, port: 80, count: 2 }),
    ]);
    await controller.reconcile('shop');
    const ipBlocks = () =>
      controller
        .analysisOf('shop')!
        .proposal.policies.flatMap((p) => p.spec.egress ?? [])
        .flatMap((r) => r.to ?? [])
        .flatMap((peer) => (peer.ipBlock ? [peer.ipBlock.cidr] : []));
    const edges = () =>
      controller
        .analysisOf('shop')!
        .graph.edges.map((e) => `${e.source} -> ${e.target} ${e.port}/${e.protocol} ${e.count}`);
    expect(edges()).toEqual([
      'shop/Pod/web -> private:10.96.0.80 80/TCP 5',
      'shop/Pod/web -> shop/Pod/api 8080/TCP 1',
    ]);
    expect(ipBlocks()).toEqual([]);
    // ghost gets a backend: the edge learned to its address stands for it now, on its targetPort.
    state.emit(resourcePath('Pod'), 'ADDED', barePod('ghost', '10.244.1.7'));
    await controller.reconcile('shop');
    expect(ipBlocks()).toEqual([]);
    expect(edges()).toEqual([
      'shop/Pod/web -> shop/Pod/api 8080/TCP 1',
      'shop/Pod/web -> shop/Pod/ghost 8080/TCP 5',
    ]);
    const web = controller
      .analysisOf('shop')!
      .proposal.policies.find((p) => p.metadata.name === 'microseg-web')!;
    expect(
      web.spec.egress?.map((r) => [r.to?.map((t) => t.podSelector?.matchLabels?.app), r.ports]),
    ).toContainEqual([['ghost'], [{ port: 8080, protocol: 'TCP' }]]);
    // The evidence learned is kept as it was learned, to the address.
    expect(controller.edgeCount('shop')).toBe(2);
  });

  describe('workloads no observed flow reaches or leaves', () => {
    const template = (app: string) => ({
      metadata: { labels: { app } },
      spec: { containers: [{ name: 'c', image: `${app}:1` }] },
    });
    const cronJob = (name: string) => ({
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      metadata: { name, namespace: 'shop', uid: `uid-${name}` },
      spec: { schedule: '0 3 * * 0', jobTemplate: { spec: { template: template(name) } } },
    });
    const objects = {
      [resourcePath('Pod')]: webAndApi(),
      [resourcePath('CronJob')]: [cronJob('backup')],
      [resourcePath('Deployment')]: [
        {
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: { name: 'reports', namespace: 'shop', uid: 'uid-reports' },
          spec: { replicas: 0, selector: { matchLabels: { app: 'reports' } }, template: template('reports') },
        },
      ],
    };
    const webToApi = webToApiFlow();
    type Written = {
      kind: string;
      status?: { [k: string]: unknown; conditions?: { type: string; message: string }[] };
    };
    /** The status the controller wrote last. */
    const lastStatus = (state: { applied: { body: unknown; subresource?: string }[] }) =>
      state.applied
        .filter((a) => a.subresource === 'status' && (a.body as Written).kind === 'Segmentation')
        .map((a) => (a.body as Written).status!)
        .at(-1)!;
    const auditClean = (status: ReturnType<typeof lastStatus>) =>
      status.conditions!.find((c) => c.type === 'AuditClean')!.message;
    const unobserved = (recorded: { reason: string; type: string; message: string }[]) =>
      recorded.filter((e) => e.reason === 'Unobserved');

    /** A Segmentation of shop with `spec`, reconciled once it learned web → api. */
    async function learned(spec: Record<string, unknown>) {
      const s: Segmentation = { ...shop('uid-shop', '1'), spec: { ...shopSpec, ...spec } };
      const started = await start([s], objects);
      started.state.failEdgeSets = false;
      started.controller.startLeading();
      // The first reconcile, from the queue, is over when it wrote a status.
      await expect.poll(() => started.state.applied.some((a) => a.subresource === 'status')).toBe(true);
      started.controller.ingest([webToApi]);
      await started.controller.reconcile('shop');
      return started;
    }
    /** The backup CronJob's next run (Sundays at 03:00 UTC) after now, as messages give it. */
    const nextBackupRun = () => {
      const d = new Date();
      d.setUTCHours(3, 0, 0, 0);
      d.setUTCDate(d.getUTCDate() + ((7 - d.getUTCDay()) % 7));
      if (d.getTime() <= Date.now()) d.setUTCDate(d.getUTCDate() + 7);
      return d.toISOString().replace('.000Z', 'Z');
    };
    // The CronJob has never run (no status.lastScheduleTime): its traffic is unknown. Its schedule says
    // when it runs next.
    const note = () =>
      '; 2 workload(s) saw no flow and will be cut off by the default deny once enforced (see status.unobservedWorkloads)' +
      `; 1 CronJob(s) have not finished a run since learning began, so their traffic is unknown: shop/CronJob/backup (next run ${nextBackupRun()})`;

    it('are in status, at the end of the AuditClean message, and announced once by a Warning Event', async () => {
      const { controller, state, recorded } = await learned({ mode: 'Audit' });
      const status = lastStatus(state);
      expect(status.unobserved).toBe(2);
      expect(status.unobservedWorkloads).toEqual(['shop/CronJob/backup', 'shop/Deployment/reports']);
      const since = (status.audit as { since: string }).since;
      expect(auditClean(status)).toBe(
        `no flow would be blocked so far; the 1h audit window started at ${since}${note()}`,
      );
      expect(unobserved(recorded)).toEqual([
        {
          type: 'Warning',
          reason: 'Unobserved',
          message:
            '2 workload(s) saw no flow and will be cut off by the default deny once enforced: shop/CronJob/backup, shop/Deployment/reports (see status.unobservedWorkloads)',
        },
      ]);
      // A resync finds the same set: no Event.
      await controller.reconcile('shop');
      expect(unobserved(recorded)).toHaveLength(1);
      // A CronJob added while in Audit changes the set: announced.
      state.emit(resourcePath('CronJob'), 'ADDED', cronJob('archive'));
      await controller.reconcile('shop');
      expect(lastStatus(state).unobservedWorkloads).toEqual([
        'shop/CronJob/archive',
        'shop/CronJob/backup',
        'shop/Deployment/reports',
      ]);
      expect(unobserved(recorded).map((e) => e.message)).toEqual([
        '2 workload(s) saw no flow and will be cut off by the default deny once enforced: shop/CronJob/backup, shop/Deployment/reports (see status.unobservedWorkloads)',
        '3 workload(s) saw no flow and will be cut off by the default deny once enforced: shop/CronJob/archive, shop/CronJob/backup, shop/Deployment/reports (see status.unobservedWorkloads)',
      ]);
    });

    for (const how of ['a field', 'a namespace another Segmentation covers'] as const)
      it(`say, once enforced and then invalid (${how}), that the policies are kept as they are and not repaired`, async () => {
        const enforcing = {
          mode: 'Enforce',
          enforcedPolicies: 3,
          conditions: [
            {
              type: 'Valid',
              status: 'True',
              reason: 'SpecValid',
              message: 'covers 1 namespace(s)',
              lastTransitionTime: '2026-01-01T00:00:00Z',
            },
            {
              type: 'Learning',
              status: 'True',
              reason: 'ProposalFrozen',
              message: '1 edge(s) learned; the proposal is frozen while in Enforce mode',
              lastTransitionTime: '2026-01-01T00:00:00Z',
            },
            {
              type: 'Enforced',
              status: 'True',
              reason: 'PoliciesApplied',
              message: '3 NetworkPolicies applied; the proposal is enforced',
              lastTransitionTime: '2026-01-01T00:00:00Z',
            },
          ],
        };
        const s: Segmentation = {
          ...shop('uid-shop', '1'),
          metadata: { ...shop('uid-shop', '1').metadata, creationTimestamp: '2026-01-02T00:00:00Z' },
          spec: { ...shopSpec, mode: how === 'a field' ? 'Sometimes' : 'Enforce' },
          status: enforcing,
        } as unknown as Segmentation;
        const older = {
          ...seg('shop-old', shopSpec),
          metadata: { ...seg('shop-old', shopSpec).metadata, creationTimestamp: '2025-01-01T00:00:00Z' },
        };
        const { controller, state, recorded } = await start(how === 'a field' ? [s] : [s, older], objects);
        state.failEdgeSets = false;
        await controller.reconcile('shop');
        const status = lastStatus(state);
        expect(status.phase).toBe('Invalid');
        expect(status.conditions!.find((c) => c.type === 'Enforced')).toMatchObject({
          status: 'True',
          reason: 'NotRepairedWhileInvalid',
          message:
            '3 NetworkPolicies are kept as they were at the last valid reconcile; while the spec is invalid (see Valid) they are not repaired, updated or removed',
        });
        expect(recorded.filter((e) => e.reason === 'NotRepairedWhileInvalid')).toHaveLength(1);
        // Nor is anything learned meanwhile, and Learning says so.
        expect(status.conditions!.find((c) => c.type === 'Learning')).toMatchObject({
          status: 'False',
          reason: 'SpecInvalid',
          message:
            'no flow is learned or audited while the spec is invalid (see Valid); the edges learned before are kept',
        });
        // Said once, not at every resync.
        await controller.reconcile('shop');
        expect(recorded.filter((e) => e.reason === 'NotRepairedWhileInvalid')).toHaveLength(1);
      });

    it('persist the edges learned since the last write when the spec turns invalid, so none is lost', async () => {
      const { controller, state } = await learned({ mode: 'Learn' });
      // Written at that reconcile (the first change since the start); the next is learned after it.
      controller.ingest([{ ...webToApi, port: 9090, time: Date.now() }]);
      const persisted = () =>
        state.applied
          .filter((a) => a.body.kind === 'LearnedEdgeSet')
          .flatMap((a) => (a.body.spec as { edges: { port: number }[] }).edges.map((e) => e.port));
      expect(persisted()).not.toContain(9090);
      const s = shop('uid-shop', '2');
      state.emit(resourcePath('Segmentation'), 'MODIFIED', {
        ...s,
        metadata: { ...s.metadata, generation: 2 },
        spec: { ...shopSpec, mode: 'Sometimes' },
      });
      await expect.poll(() => controller.retained().invalid).toBe(1);
      expect(persisted()).toContain(9090);
    });

    it('keep the edges learned since the last write when the spec turns invalid and that write fails, and write them at the retry', async () => {
      const { controller, state, recorded } = await learned({ mode: 'Learn' });
      controller.ingest([{ ...webToApi, port: 9090, time: Date.now() }]);
      const shards = state.applied.filter((a) => a.body.kind === 'LearnedEdgeSet');
      const persisted = () =>
        state.taken
          .filter((b) => (b as { kind: string }).kind === 'LearnedEdgeSet')
          .flatMap((b) => (b as { spec: { edges: { port: number }[] } }).spec.edges.map((e) => e.port));
      expect(shards.length).toBeGreaterThan(0);
      for (const a of shards) state.failApply.add((a.body.metadata as { name: string }).name);
      const s = shop('uid-shop', '2');
      const invalid = {
        ...s,
        metadata: { ...s.metadata, generation: 2 },
        spec: { ...shopSpec, mode: 'Sometimes' },
      };
      state.emit(resourcePath('Segmentation'), 'MODIFIED', invalid);
      await expect.poll(() => controller.retained().invalid).toBe(1);
      expect(persisted()).not.toContain(9090);
      // The failed write is retried (with backoff), and names what failed; nothing is learned meanwhile.
      expect(recorded).toContainEqual({
        type: 'Warning',
        reason: 'ReconcileFailed',
        message:
          'reconcile failed, retried with backoff: the edges learned since the last write could not be written to LearnedEdgeSets (kept in memory, retried): admission webhook denied the request (HTTP 400)',
      });
      state.failApply.clear();
      await expect.poll(() => persisted()).toContain(9090);
    });

    it('keep the segment name the proposal in place gives them when the controller starts again', async () => {
      const segmentOf = (state: { applied: { body: unknown; subresource?: string }[] }, name: string) =>
        state.applied
          .filter((a) => a.subresource === undefined)
          .map((a) => a.body as { kind: string; metadata: { name: string; labels?: Record<string, string> } })
          .filter((b) => b.kind === 'ProposedNetworkPolicy' && b.metadata.name === name)
          .at(-1)?.metadata.labels?.['microseg.dev/segment'];
      const fresh = await learned({ mode: 'Learn' });
      const named = segmentOf(fresh.state, 'microseg-web');
      expect(named).toBe(segmentOf(fresh.state, 'microseg-api'));
      expect(named).toMatch(/^shop-/);
      // The proposal in place, written by a run that called web and api's segment `storefront`.
      const ours = { 'app.kubernetes.io/managed-by': 'microseg', 'microseg.dev/segmentation': 'shop' };
      const inPlace = (workload: string) => ({
        apiVersion: 'microseg.dev/v1alpha1',
        kind: 'ProposedNetworkPolicy',
        metadata: {
          name: `microseg-${workload}`,
          namespace: 'shop',
          labels: { ...ours, 'microseg.dev/segment': 'storefront' },
          annotations: { 'microseg.dev/workload': `shop/Pod/${workload}` },
        },
        spec: { podSelector: { matchLabels: { app: workload } }, policyTypes: ['Ingress', 'Egress'] },
      });
      const s: Segmentation = { ...shop('uid-shop', '1'), spec: { ...shopSpec, mode: 'Learn' } };
      const { controller, state } = await start([s], {
        ...objects,
        [resourcePath('ProposedNetworkPolicy')]: [inPlace('web'), inPlace('api')],
      });
      state.failEdgeSets = false;
      controller.startLeading();
      await expect.poll(() => state.applied.some((a) => a.subresource === 'status')).toBe(true);
      controller.ingest([webToApi]);
      await controller.reconcile('shop');
      expect([segmentOf(state, 'microseg-web'), segmentOf(state, 'microseg-api')]).toEqual([
        'storefront',
        'storefront',
      ]);
      expect(lastStatus(state).segments).toContainEqual(expect.objectContaining({ name: 'storefront' }));
    });

    /** The graph learned so far, web → api, as a previous leader persisted it. */
    const learnedGraph = () => {
      const now = new Date().toISOString();
      return {
        apiVersion: 'microseg.dev/v1alpha1',
        kind: 'LearnedEdgeSet',
        metadata: { name: 'shop-0', labels: { 'microseg.dev/segmentation': 'shop' } },
        spec: {
          segmentation: 'shop',
          shard: 0,
          shards: 1,
          edges: [
            {
              src: 'shop/Pod/web',
              dst: 'shop/Pod/api',
              protocol: 'TCP',
              port: 8080,
              count: 1,
              firstSeen: now,
              lastSeen: now,
            },
          ],
        },
      };
    };

    it('are not announced again by a new leader that restores the graph and finds them in status', async () => {
      const les = learnedGraph();
      const s: Segmentation = {
        ...shop('uid-shop', '1'),
        spec: { ...shopSpec, mode: 'Audit' },
        status: {
          mode: 'Audit',
          unobserved: 2,
          unobservedWorkloads: ['shop/CronJob/backup', 'shop/Deployment/reports'],
        },
      };
      const { controller, state, recorded } = await start([s], {
        ...objects,
        [resourcePath('LearnedEdgeSet')]: [les],
      });
      state.failEdgeSets = false;
      controller.startLeading();
      await expect.poll(() => state.applied.some((a) => a.subresource === 'status')).toBe(true);
      await controller.reconcile('shop');
      expect(lastStatus(state).unobservedWorkloads).toEqual([
        'shop/CronJob/backup',
        'shop/Deployment/reports',
      ]);
      expect(auditClean(lastStatus(state)).endsWith(note())).toBe(true);
      expect(unobserved(recorded)).toEqual([]);
    });

    /**
     * A Segmentation of shop created a week ago, in Audit with automatic promotion after 1s, whose audit
     * (1s window) has been clean for an hour: the promotion to Enforce is due but for the CronJobs.
     */
    const dueForEnforce = (mode = 'Audit'): Segmentation => {
      const hourAgo = new Date(Date.now() - 3_600_000).toISOString();
      return {
        ...shop('uid-shop', '1'),
        metadata: {
          ...shop('uid-shop', '1').metadata,
          creationTimestamp: new Date(Date.now() - 7 * 86_400_000).toISOString().replace(/\.\d+Z$/, 'Z'),
        },
        spec: { ...shopSpec, mode, audit: { window: '1s' }, promotion: { automatic: true, after: '1s' } },
        status: {
          mode,
          modeSince: hourAgo,
          audit: { since: hourAgo },
          conditions: [
            {
              type: 'AuditClean',
              status: 'True',
              reason: 'NoBlockedFlows',
              message: '',
              lastTransitionTime: hourAgo,
            },
          ],
        },
      } as unknown as Segmentation;
    };
    const aMinuteAgo = () => new Date(Date.now() - 60_000).toISOString().replace(/\.\d+Z$/, 'Z');
    it('hold automatic promotion to Enforce while the run of a CronJob is still going, and say so by an Event once', async () => {
      // The CronJob's run was scheduled a minute ago (lastScheduleTime is set when its Job is created)
      // and its Job is still active: its pods have made no flow yet, or not all of them.
      const running = {
        ...cronJob('backup'),
        status: { lastScheduleTime: aMinuteAgo(), active: [{ kind: 'Job', name: 'backup-29000000' }] },
      };
      const { controller, state, recorded } = await start([dueForEnforce()], {
        ...objects,
        [resourcePath('CronJob')]: [running],
        [resourcePath('LearnedEdgeSet')]: [learnedGraph()],
      });
      state.failEdgeSets = false;
      controller.startLeading();
      await expect.poll(() => state.applied.some((a) => a.subresource === 'status')).toBe(true);
      await controller.reconcile('shop');
      expect(state.patches.filter((p) => (p as { spec?: unknown }).spec !== undefined)).toEqual([]);
      expect(auditClean(lastStatus(state))).toBe(
        'no flow would have been blocked in the last 1s; 2 workload(s) saw no flow and will be cut off by the default deny once enforced (see status.unobservedWorkloads)' +
          '; 1 CronJob(s) have not finished a run since learning began, so their traffic is unknown and automatic promotion to Enforce waits for their next run: shop/CronJob/backup (a run is going)',
      );
      expect(recorded.filter((e) => e.reason === 'PromotionWaiting')).toEqual([
        {
          type: 'Normal',
          reason: 'PromotionWaiting',
          message:
            'promotion Audit → Enforce would be due (the audit has been clean for 1s), but waits for 1 CronJob(s) that have not finished a run since learning began, so their traffic is unknown: shop/CronJob/backup (a run is going) (see AuditClean)',
        },
      ]);
      // Its run over (the Job no longer active) and still no flow: idle on purpose, promoted.
      state.emit(resourcePath('CronJob'), 'MODIFIED', {
        ...running,
        metadata: { ...running.metadata, resourceVersion: '2' },
        status: { lastScheduleTime: running.status.lastScheduleTime },
      });
      await controller.reconcile('shop');
      expect(state.patches).toContainEqual({ metadata: { resourceVersion: '1' }, spec: { mode: 'Enforce' } });
      expect(recorded.filter((e) => e.reason === 'PromotionWaiting')).toHaveLength(1);
      expect(recorded.map((e) => e.reason)).toContain('AutoPromoted');
    });

    it('promote nothing when the Segmentation changed since it was read: a mode set meanwhile stays', async () => {
      // Due for Enforce (no CronJob waits), the cache's copy in Audit; meanwhile the platform team set
      // spec.mode back to Learn (generation 2), as the API server answers.
      const s = dueForEnforce();
      const { controller, state, recorded } = await start([s], {
        ...objects,
        [resourcePath('CronJob')]: [],
        [resourcePath('LearnedEdgeSet')]: [learnedGraph()],
      });
      state.readAs = () => ({
        ...s,
        metadata: { ...s.metadata, generation: 2, resourceVersion: '7' },
        spec: { ...(s.spec as object), mode: 'Learn' },
      });
      state.failEdgeSets = false;
      controller.startLeading();
      await expect.poll(() => state.applied.some((a) => a.subresource === 'status')).toBe(true);
      await controller.reconcile('shop');
      expect(state.patches.filter((p) => (p as { spec?: unknown }).spec !== undefined)).toEqual([]);
      expect(recorded.map((e) => e.reason)).not.toContain('AutoPromoted');
      // Changed between the read and the patch: the API server refuses it, and nothing is promoted.
      state.readAs = undefined;
      state.movedOn = true;
      expect(await controller.reconcile('shop')).toEqual({ requeueAfter: 10_000 });
      expect(state.patches.filter((p) => (p as { spec?: unknown }).spec !== undefined)).toEqual([]);
      expect(recorded.map((e) => e.reason)).not.toContain('AutoPromoted');
      // The object as read is the one the reconcile saw: promoted, on condition it is still that version.
      state.movedOn = false;
      await controller.reconcile('shop');
      expect(state.patches).toContainEqual({
        metadata: { resourceVersion: '1' },
        spec: { mode: 'Enforce' },
      });
      expect(recorded.map((e) => e.reason)).toContain('AutoPromoted');
    });

    it('promote nothing over a would-be-blocked flow audited after the reconcile found the audit clean', async () => {
      // Due for Enforce, its audit clean; while the reconcile that decided so reads the Segmentation to
      // promote it (its last await before the write), a flow the proposal blocks (web → api on
      // 9999/TCP; only 8080 is allowed) is audited. The decision was made without it: promoted now, the
      // proposal would be enforced over it.
      const frozen = [
        shopDefaultDeny(),
        proposedOfShop('microseg-web', {
          podSelector: { matchLabels: { app: 'web' } },
          policyTypes: ['Egress'],
          egress: [
            {
              to: [{ podSelector: { matchLabels: { app: 'api' } } }],
              ports: [{ protocol: 'TCP', port: 8080 }],
            },
          ],
        }),
        shopApiFromWeb(),
      ];
      let clock = Date.now();
      const { controller, state, recorded } = await start(
        [dueForEnforce()],
        {
          ...objects,
          [resourcePath('CronJob')]: [],
          [resourcePath('LearnedEdgeSet')]: [learnedGraph()],
          [resourcePath('ProposedNetworkPolicy')]: frozen,
        },
        {},
        () => clock,
      );
      const promotions = () => state.patches.filter((p) => (p as { spec?: unknown }).spec !== undefined);
      let audited = 0;
      state.readAs = () => {
        if (audited++ === 0) controller.ingest([webToApiFlow({ port: 9999, time: clock })]);
        return undefined;
      };
      state.failEdgeSets = false;
      controller.startLeading();
      await expect.poll(() => audited).toBeGreaterThan(0);
      // Decided again at once (not at the resync, 10s), now with the flow: not clean, not promoted.
      await expect
        .poll(() => ({
          promotions: promotions(),
          auditClean: segmentationStatuses(state)
            .at(-1)
            ?.conditions?.find((c) => c.type === 'AuditClean'),
        }))
        .toMatchObject({ promotions: [], auditClean: { status: 'False', reason: 'FlowsWouldBeBlocked' } });
      expect(segmentationStatuses(state).at(-1)?.wouldBlock).toBe(1);
      expect(promotions()).toEqual([]);
      expect(recorded.map((e) => e.reason)).not.toContain('AutoPromoted');
      // The flow out of the 1s window, the audit is clean again, and once it has been for promotion.after
      // (1s), promoted by the reconcile that decided so with nothing audited since.
      clock += 2000;
      await controller.reconcile('shop');
      expect(promotions()).toEqual([]);
      clock += 1000;
      await controller.reconcile('shop');
      expect(promotions()).toEqual([{ metadata: { resourceVersion: '1' }, spec: { mode: 'Enforce' } }]);
      expect(recorded.map((e) => e.reason)).toContain('AutoPromoted');
    });

    it('keep a rollback to Learn for a full promotion.after from it, and say that the promotion waits', async () => {
      // Enforced with automatic promotion, the proposal stable for two hours: during an incident the
      // platform team sets spec.mode back to Learn (generation 2). The status is still Enforce's.
      let clock = Date.now();
      const twoHoursAgo = new Date(clock - 7_200_000).toISOString();
      const s: Segmentation = {
        ...shop('uid-shop', '1'),
        metadata: { ...shop('uid-shop', '1').metadata, generation: 2 },
        spec: {
          ...shopSpec,
          mode: 'Learn',
          learning: { stableAfter: '0s' },
          promotion: { automatic: true, after: '1h' },
        },
        status: {
          mode: 'Enforce',
          conditions: [
            {
              type: 'ProposalStable',
              status: 'True',
              reason: 'ProposalFrozen',
              message: '',
              lastTransitionTime: twoHoursAgo,
            },
          ],
        },
      };
      const { controller, state, recorded } = await start(
        [s],
        { ...objects, [resourcePath('CronJob')]: [], [resourcePath('LearnedEdgeSet')]: [learnedGraph()] },
        {},
        () => clock,
      );
      const promotions = () => state.patches.filter((p) => (p as { spec?: unknown }).spec !== undefined);
      state.failEdgeSets = false;
      controller.startLeading();
      await expect.poll(() => state.applied.some((a) => a.subresource === 'status')).toBe(true);
      const rolledBack = new Date(clock).toISOString();
      await controller.reconcile('shop');
      // The rollback stays: no promotion back to Audit, and the wait is said, once.
      expect(promotions()).toEqual([]);
      expect(lastStatus(state).modeSince).toBe(rolledBack);
      const until = new Date(clock + 3_600_000).toISOString();
      const waiting = [
        {
          type: 'Normal',
          reason: 'PromotionWaiting',
          message: `promotion Learn → Audit would be due (the proposal has been stable for 1h), but automatic promotion counts from status.modeSince, ${rolledBack} (when spec.mode became Learn, or when an upgrade first recorded it), and waits until ${until}`,
        },
      ];
      expect(recorded.filter((e) => e.reason === 'PromotionWaiting')).toEqual(waiting);
      expect(lastStatus(state).conditions!.find((c) => c.type === 'ProposalStable')!.message).toMatch(
        new RegExp(
          `; automatic promotion to Audit counts from status.modeSince, ${rolledBack} \\(when spec.mode became Learn, or when an upgrade first recorded it\\), and waits until ${until}$`,
        ),
      );
      clock += 3_599_000;
      await controller.reconcile('shop');
      expect(promotions()).toEqual([]);
      expect(recorded.filter((e) => e.reason === 'PromotionWaiting')).toEqual(waiting);
      // A full promotion.after of stability since the rollback: promoted.
      clock += 1000;
      await controller.reconcile('shop');
      expect(promotions()).toEqual([{ metadata: { resourceVersion: '1' }, spec: { mode: 'Audit' } }]);
    });

    it('after an upgrade, wait a promotion.after from the first status.modeSince without saying spec.mode changed', async () => {
      // In Learn for days with automatic promotion, the proposal stable for two hours: the status was
      // written by a microseg without status.modeSince. Nobody set spec.mode; the upgrade records it now.
      const clock = Date.now();
      const s: Segmentation = {
        ...shop('uid-shop', '1'),
        spec: {
          ...shopSpec,
          mode: 'Learn',
          learning: { stableAfter: '0s' },
          promotion: { automatic: true, after: '1h' },
        },
        status: {
          observedGeneration: 1,
          mode: 'Learn',
          conditions: [
            {
              type: 'ProposalStable',
              status: 'True',
              reason: 'ProposalUnchanged',
              message: '',
              lastTransitionTime: new Date(clock - 7_200_000).toISOString(),
            },
          ],
        },
      };
      const { controller, state, recorded } = await start(
        [s],
        { ...objects, [resourcePath('CronJob')]: [], [resourcePath('LearnedEdgeSet')]: [learnedGraph()] },
        {},
        () => clock,
      );
      state.failEdgeSets = false;
      controller.startLeading();
      await expect.poll(() => state.applied.some((a) => a.subresource === 'status')).toBe(true);
      await controller.reconcile('shop');
      const since = new Date(clock).toISOString();
      const until = new Date(clock + 3_600_000).toISOString();
      expect(state.patches.filter((p) => (p as { spec?: unknown }).spec !== undefined)).toEqual([]);
      expect(lastStatus(state).modeSince).toBe(since);
      // What is said is what is known: counted from status.modeSince, which a mode change or the upgrade
      // set; not that spec.mode became Learn then.
      expect(recorded.filter((e) => e.reason === 'PromotionWaiting')).toEqual([
        {
          type: 'Normal',
          reason: 'PromotionWaiting',
          message: `promotion Learn → Audit would be due (the proposal has been stable for 1h), but automatic promotion counts from status.modeSince, ${since} (when spec.mode became Learn, or when an upgrade first recorded it), and waits until ${until}`,
        },
      ]);
      expect(lastStatus(state).conditions!.find((c) => c.type === 'ProposalStable')!.message).toMatch(
        new RegExp(
          `; automatic promotion to Audit counts from status.modeSince, ${since} \\(when spec.mode became Learn, or when an upgrade first recorded it\\), and waits until ${until}$`,
        ),
      );
    });

    /** Reconciles `s` once and expects the audit to start again, said by one AuditWindowOpen Event. */
    const expectAuditStartsAgain = async (s: Segmentation, message: string) => {
      const { controller, state, recorded } = await start([s], { ...objects, [resourcePath('CronJob')]: [] });
      state.failEdgeSets = false;
      const before = Date.now();
      await controller.reconcile('shop');
      const status = lastStatus(state);
      expect(status.conditions!.find((c) => c.type === 'AuditClean')).toMatchObject({
        status: 'False',
        reason: 'AuditWindowOpen',
      });
      expect(Date.parse((status.audit as { since: string }).since)).toBeGreaterThanOrEqual(before - 1000);
      expect(
        recorded.filter((e) => e.reason === 'AuditWindowOpen' && !e.message.startsWith('AuditClean=')),
      ).toEqual([{ type: 'Normal', reason: 'AuditWindowOpen', message }]);
    };

    it('start the audit again when the spec is valid again: no flow was audited while it was invalid', async () => {
      // In Audit, its 1h audit started three hours ago; two hours ago the spec turned invalid (nothing
      // learned or audited since), and now it is fixed (generation 3).
      const threeHoursAgo = new Date(Date.now() - 3 * 3_600_000).toISOString();
      const twoHoursAgo = new Date(Date.now() - 2 * 3_600_000).toISOString();
      const s = {
        ...shop('uid-shop', '1'),
        metadata: { ...shop('uid-shop', '1').metadata, generation: 3 },
        spec: { ...shopSpec, mode: 'Audit' },
        status: {
          mode: 'Audit',
          modeSince: threeHoursAgo,
          proposal: { hash: proposalHash([]), since: threeHoursAgo },
          audit: { since: threeHoursAgo },
          conditions: [
            {
              type: 'Valid',
              status: 'False',
              reason: 'InvalidSpec',
              message: 'spec.mode "Sometimes" is not one of Learn, Audit, Enforce',
              lastTransitionTime: twoHoursAgo,
            },
            {
              type: 'AuditClean',
              status: 'False',
              reason: 'AuditWindowOpen',
              message: '',
              lastTransitionTime: threeHoursAgo,
            },
          ],
        },
      } as unknown as Segmentation;
      await expectAuditStartsAgain(
        s,
        'the spec was invalid, and no flow was audited meanwhile: the audit starts again, and AuditClean waits for a full 1h window of it',
      );
    });

    it('start the audit again when set back from Enforce to Audit: what the policies dropped was never audited', async () => {
      // Enforced for three hours (its audit clean all along, as the flows its policies dropped are not
      // audited); in an incident, spec.mode is set back to Audit.
      const threeHoursAgo = new Date(Date.now() - 3 * 3_600_000).toISOString();
      const s = {
        ...shop('uid-shop', '1'),
        metadata: { ...shop('uid-shop', '1').metadata, generation: 3 },
        spec: { ...shopSpec, mode: 'Audit' },
        status: {
          mode: 'Enforce',
          modeSince: threeHoursAgo,
          enforcedPolicies: 3,
          proposal: { hash: proposalHash([]), since: threeHoursAgo },
          audit: { since: threeHoursAgo },
          conditions: [
            {
              type: 'AuditClean',
              status: 'True',
              reason: 'NoBlockedFlows',
              message: 'no flow would have been blocked in the last 1h',
              lastTransitionTime: threeHoursAgo,
            },
            {
              type: 'Enforced',
              status: 'True',
              reason: 'PoliciesApplied',
              message: '3 NetworkPolicies applied; the proposal is enforced',
              lastTransitionTime: threeHoursAgo,
            },
          ],
        },
      } as unknown as Segmentation;
      await expectAuditStartsAgain(
        s,
        'spec.mode went from Enforce to Audit, and the flows the enforced policies dropped could not be audited: the audit starts again, and AuditClean waits for a full 1h window of it',
      );
    });

    it('audit a proposal written in Audit for a full window before AuditClean holds again', async () => {
      // In Audit for an hour with nothing learned: the audit of the empty proposal has been clean all
      // along. Now web → api is learned, and the first proposal is written (and frozen) in Audit.
      const s = dueForEnforce();
      const hourAgo = (s.status!.audit as { since: string }).since;
      s.status!.proposal = { hash: proposalHash([]), since: hourAgo };
      const { controller, state } = await start([s], {
        ...objects,
        [resourcePath('CronJob')]: [],
        [resourcePath('LearnedEdgeSet')]: [learnedGraph()],
      });
      state.failEdgeSets = false;
      const before = Date.now();
      controller.startLeading();
      await expect.poll(() => state.applied.some((a) => a.subresource === 'status')).toBe(true);
      await controller.reconcile('shop');
      const status = lastStatus(state);
      expect(status.policies).toBe(3);
      // The audit starts again with the proposal it audits: not clean before a window of it has passed.
      expect(status.conditions!.find((c) => c.type === 'AuditClean')).toMatchObject({
        status: 'False',
        reason: 'AuditWindowOpen',
      });
      expect(Date.parse((status.audit as { since: string }).since)).toBeGreaterThanOrEqual(before - 1000);
      expect(state.patches.filter((p) => (p as { spec?: unknown }).spec !== undefined)).toEqual([]);
    });

    it('in Enforce, do not say that a promotion to Enforce waits for them', async () => {
      const { controller, state } = await start([dueForEnforce('Enforce')], {
        ...objects,
        [resourcePath('LearnedEdgeSet')]: [learnedGraph()],
      });
      state.failEdgeSets = false;
      controller.startLeading();
      await expect.poll(() => state.applied.some((a) => a.subresource === 'status')).toBe(true);
      await controller.reconcile('shop');
      expect(auditClean(lastStatus(state))).toBe(`no flow would have been blocked in the last 1s${note()}`);
    });

    describe('the order of the NetworkPolicy writes', () => {
      const npPath = (name: string) => resourcePath('NetworkPolicy', 'shop', name);
      const appliedPolicies = (state: { applied: { body: { kind: string; metadata: unknown } }[] }) =>
        state.applied
          .filter((a) => a.body.kind === 'NetworkPolicy')
          .map((a) => (a.body.metadata as { name: string }).name);
      async function enforcing(failing: string[] = [], pods: unknown[] = objects[resourcePath('Pod')]!) {
        const started = await start([dueForEnforce('Enforce')], {
          ...objects,
          [resourcePath('Pod')]: pods,
          [resourcePath('LearnedEdgeSet')]: [learnedGraph()],
        });
        for (const name of failing) started.state.failApply.add(name);
        started.state.failEdgeSets = false;
        started.controller.startLeading();
        await expect.poll(() => started.state.applied.some((a) => a.subresource === 'status')).toBe(true);
        await started.controller.reconcile('shop');
        return started;
      }

      /** A first enforcement's NetworkPolicies: a copy of the one named so, as the API server holds it. */
      async function writtenByFirst(): Promise<(name: string) => unknown> {
        const first = await enforcing();
        const written = first.state.taken.filter((b) => (b as { kind: string }).kind === 'NetworkPolicy');
        return (name) =>
          structuredClone(written.find((b) => (b as { metadata: { name: string } }).metadata.name === name)!);
      }

      /**
       * An Enforce Segmentation over the learned graph with `policies` in place, reconciled twice;
       * `prepare` sets the fake API server's failures first.
       */
      async function enforcedOver(
        policies: unknown[],
        prepare: (state: Awaited<ReturnType<typeof start>>['state']) => void = () => {},
      ) {
        const started = await start([dueForEnforce('Enforce')], {
          ...objects,
          [resourcePath('LearnedEdgeSet')]: [learnedGraph()],
          [resourcePath('NetworkPolicy')]: policies,
        });
        prepare(started.state);
        started.state.failEdgeSets = false;
        started.controller.startLeading();
        await expect.poll(() => started.state.applied.some((a) => a.subresource === 'status')).toBe(true);
        await started.controller.reconcile('shop');
        return started;
      }

      it('applies the default deny after every policy that allows', async () => {
        const { state } = await enforcing();
        // Each reconcile writes the three (the fake's cache never sees them): the first one's order.
        const first = appliedPolicies(state).slice(0, 3);
        expect(new Set(first)).toEqual(new Set(['microseg-api', 'microseg-default-deny', 'microseg-web']));
        // In name order the deny came between the two: web's traffic was denied until its policy came.
        expect(first[2]).toBe('microseg-default-deny');
      });

      it('applies it after them too when a pod of the namespace is quarantined (every policy excludes it)', async () => {
        const db = barePod('db', '10.244.1.7');
        const quarantined = {
          ...db,
          metadata: { ...db.metadata, labels: { app: 'db', 'microseg.dev/quarantine': 'iso-db' } },
        };
        const { state } = await enforcing([], [...objects[resourcePath('Pod')]!, quarantined]);
        const first = state.applied
          .filter((a) => a.body.kind === 'NetworkPolicy')
          .slice(0, 3)
          .map((a) => a.body as { metadata: { name: string }; spec: { podSelector: unknown } });
        expect(first.at(-1)).toMatchObject({
          metadata: { name: 'microseg-default-deny' },
          spec: {
            podSelector: { matchExpressions: [{ key: 'microseg.dev/quarantine', operator: 'DoesNotExist' }] },
          },
        });
      });

      it('finds nothing to repair in the policies it applied, the Argo CD sync wave on the default deny included', async () => {
        const first = await enforcing();
        const written = first.state.taken.filter((b) => (b as { kind: string }).kind === 'NetworkPolicy');
        const deny = written.find(
          (b) => (b as { metadata: { name: string } }).metadata.name === 'microseg-default-deny',
        );
        expect(deny).toMatchObject({ metadata: { annotations: { 'argocd.argoproj.io/sync-wave': '1' } } });
        // The next controller finds them in place: its cache holds them as the API server returns them.
        const { state, recorded } = await enforcedOver(written.map((b) => structuredClone(b)));
        expect(appliedPolicies(state)).toEqual([]);
        expect(recorded.filter((e) => e.reason.startsWith('PolicyDrift'))).toEqual([]);
      });

      it('deletes a default deny held back for a name conflict, and says so when it could not', async () => {
        const named = await writtenByFirst();
        // web's name is taken by a policy microseg does not manage; the deny and api's are in place.
        const foreignWeb = {
          apiVersion: 'networking.k8s.io/v1',
          kind: 'NetworkPolicy',
          metadata: { name: 'microseg-web', namespace: 'shop' },
          spec: { podSelector: { matchLabels: { app: 'other' } }, policyTypes: ['Ingress'] },
        };
        const conflict =
          'NetworkPolicy shop/microseg-web exists and is not managed by this Segmentation (an object microseg does not manage); left untouched; ' +
          'NetworkPolicy shop/microseg-default-deny held back: without shop/microseg-web it would cut off what that policy allows';
        for (const failing of [false, true]) {
          const { state } = await enforcedOver(
            [named('microseg-api'), named('microseg-default-deny'), foreignWeb],
            (state) => {
              if (failing) state.failDelete.add(npPath('microseg-default-deny'));
            },
          );
          // Each reconcile deletes it again (the fake's cache never sees the deletion).
          expect([...new Set(state.deleted)]).toEqual(failing ? [] : [npPath('microseg-default-deny')]);
          expect(appliedPolicies(state)).toEqual([]);
          const status = lastStatus(state);
          const enforced = status.conditions!.find((c) => c.type === 'Enforced')!;
          // Still in place, the deny cuts off web: the condition says so, and counts it among neither.
          expect([failing, enforced.message]).toEqual([
            failing,
            failing ? `${conflict}; it could not be deleted and is still in place (see Degraded)` : conflict,
          ]);
          expect(status.enforcedPolicies).toBe(1);
          if (failing)
            expect(status.conditions!.find((c) => c.type === 'Degraded')!.message).toBe(
              'delete NetworkPolicy shop/microseg-default-deny: etcdserver: request timed out',
            );
        }
      });

      it('tells a held deny deleted from the policies no longer proposed in the Events that count many', async () => {
        const first = await enforcing();
        const written = first.state.taken.filter((b) => (b as { kind: string }).kind === 'NetworkPolicy');
        const deny = written.find(
          (b) => (b as { metadata: { name: string } }).metadata.name === 'microseg-default-deny',
        )!;
        // 25 policies of a namespace no longer proposed: more actions than one Event each.
        const ours = { 'app.kubernetes.io/managed-by': 'microseg', 'microseg.dev/segmentation': 'shop' };
        const stale = Array.from({ length: 25 }, (_, i) => ({
          apiVersion: 'networking.k8s.io/v1',
          kind: 'NetworkPolicy',
          metadata: { name: `microseg-gone-${i}`, namespace: 'old', labels: ours },
          spec: {
            podSelector: { matchLabels: { app: `gone-${i}` } },
            policyTypes: ['Ingress'],
            ingress: [{}],
          },
        }));
        const foreignWeb = {
          apiVersion: 'networking.k8s.io/v1',
          kind: 'NetworkPolicy',
          metadata: { name: 'microseg-web', namespace: 'shop' },
          spec: { podSelector: { matchLabels: { app: 'other' } }, policyTypes: ['Ingress'] },
        };
        const { controller, state, recorded } = await start([dueForEnforce('Enforce')], {
          ...objects,
          [resourcePath('LearnedEdgeSet')]: [learnedGraph()],
          [resourcePath('NetworkPolicy')]: [structuredClone(deny), foreignWeb, ...stale],
        });
        state.failEdgeSets = false;
        controller.startLeading();
        await expect.poll(() => state.applied.some((a) => a.subresource === 'status')).toBe(true);
        expect(new Set(state.deleted).size).toBe(26);
        expect(recorded.filter((e) => e.reason === 'PolicyPruned').map((e) => e.message)).toEqual([
          '25 NetworkPolicies no longer proposed; deleted',
          '1 NetworkPolicies deleted: held back while a policy of their namespace is not in place (a name conflict)',
        ]);
      });

      it("holds a namespace's default deny back while a policy of it could not be applied", async () => {
        const { state } = await enforcing(['microseg-web']);
        expect(appliedPolicies(state)).not.toContain('microseg-default-deny');
        const status = lastStatus(state);
        const degraded = status.conditions!.find((c) => c.type === 'Degraded')!;
        expect(degraded.message).toContain(
          'create NetworkPolicy shop/microseg-default-deny: held back, as a policy of its namespace could not be applied (the default deny would cut off what that policy allows)',
        );
      });

      it('asks for a retry with backoff while a write is refused, and none once all is written', async () => {
        const { controller, state } = await enforcing(['microseg-web']);
        // Retried with backoff (at the resync at the latest): what the refusal held back follows soon
        // after it is lifted, not only at the resync.
        expect(await controller.reconcile('shop')).toEqual({ requeueAfter: 10_000, retry: true });
        state.failApply.clear();
        expect(await controller.reconcile('shop')).toEqual({ requeueAfter: 10_000 });
        expect(appliedPolicies(state)).toContain('microseg-default-deny');
      });

      it('names each write that failed in a Warning Event, also one that fails while Degraded already', async () => {
        const { controller, state, recorded } = await enforcing(['microseg-web']);
        const failed = () =>
          // Not the Events of condition transitions (`Degraded=True: ...`, `Enforced=False: ...`).
          recorded.filter((e) => e.reason === 'ApplyFailed' && !/^[A-Za-z]+=(True|False): /.test(e.message));
        expect(failed()).toContainEqual({
          type: 'Warning',
          reason: 'ApplyFailed',
          message: 'apply NetworkPolicy shop/microseg-web: admission webhook denied the request (HTTP 400)',
        });
        // A second policy fails too: Degraded stays True (no transition), its Event alone names it.
        state.failApply.add('microseg-api');
        await controller.reconcile('shop');
        expect(failed()).toContainEqual({
          type: 'Warning',
          reason: 'ApplyFailed',
          message: 'apply NetworkPolicy shop/microseg-api: admission webhook denied the request (HTTP 400)',
        });
      });

      it('deletes a default deny in place while a policy of its namespace could not be created, and says so when it could not', async () => {
        const named = await writtenByFirst();
        const note =
          'NetworkPolicy shop/microseg-default-deny deleted: without shop/microseg-web, which could not be created, it would cut off what that policy allows';
        for (const failing of [false, true]) {
          // web's policy was deleted by hand and cannot be created again; the deny and api's are in place.
          const { state, recorded } = await enforcedOver(
            [named('microseg-api'), named('microseg-default-deny')],
            (state) => {
              state.failApply.add('microseg-web');
              if (failing) state.failDelete.add(npPath('microseg-default-deny'));
            },
          );
          // Each reconcile deletes it again (the fake's cache never sees the deletion).
          expect([...new Set(state.deleted)]).toEqual(failing ? [] : [npPath('microseg-default-deny')]);
          // web's create was tried, the deny was not written again.
          expect(new Set(appliedPolicies(state))).toEqual(new Set(['microseg-web']));
          const status = lastStatus(state);
          expect(status.conditions!.find((c) => c.type === 'Enforced')).toMatchObject({
            status: 'False',
            reason: 'ApplyFailed',
            message:
              '1 of 3 NetworkPolicies in place; 1 could not be applied or repaired; 1 default deny held back while a policy of its namespace could not be applied (see Degraded)',
          });
          expect(status.enforcedPolicies).toBe(1);
          const degraded = status.conditions!.find((c) => c.type === 'Degraded')!.message;
          expect(degraded).toContain(
            'apply NetworkPolicy shop/microseg-web: admission webhook denied the request (HTTP 400)',
          );
          // Deleted, the Degraded condition says why; still in place, that its deletion failed.
          expect([
            degraded.includes(note),
            degraded.includes('delete NetworkPolicy shop/microseg-default-deny: etcdserver'),
          ]).toEqual([!failing, failing]);
          expect(
            recorded
              .filter((e) => e.reason === 'PolicyPruned')
              .map((e) => [e.type, e.message])
              .slice(0, 1),
          ).toEqual(
            failing
              ? []
              : [
                  [
                    'Warning',
                    'NetworkPolicy shop/microseg-default-deny deleted: held back while shop/microseg-web could not be created',
                  ],
                ],
          );
        }
      });

      it('deletes the default deny by its name when a rule added by hand makes it no default deny', async () => {
        const named = await writtenByFirst();
        const deny = named('microseg-default-deny') as { spec: { ingress?: unknown[] } };
        deny.spec.ingress = [{ from: [{ podSelector: { matchLabels: { app: 'api' } } }] }];
        const { state } = await enforcedOver([named('microseg-api'), deny], (state) =>
          state.failApply.add('microseg-web'),
        );
        // Its repair waits (web's policy is missing); it still selects web's pods: deleted.
        expect([...new Set(state.deleted)]).toEqual([npPath('microseg-default-deny')]);
        expect(appliedPolicies(state)).not.toContain('microseg-default-deny');
      });

      it('leaves the default deny in place while a policy of its namespace in place could not be changed', async () => {
        const named = await writtenByFirst();
        // web's policy is in place but was changed by hand: its repair fails, the old version still
        // selects web's pods, so the deny does not cut them off alone.
        const web = named('microseg-web') as { spec: { ingress?: unknown[] } };
        web.spec.ingress = [{}];
        const { state } = await enforcedOver(
          [named('microseg-api'), named('microseg-default-deny'), web],
          (state) => state.failApply.add('microseg-web'),
        );
        expect(state.deleted).toEqual([]);
        expect(lastStatus(state).conditions!.find((c) => c.type === 'Enforced')!.message).toBe(
          '2 of 3 NetworkPolicies in place; 1 could not be applied or repaired (see Degraded)',
        );
      });

      it('prunes the default deny of a namespace no longer proposed first, and keeps the rest while it stays', async () => {
        // A namespace whose last observed workload went: its policies are no longer proposed.
        const ours = { 'app.kubernetes.io/managed-by': 'microseg', 'microseg.dev/segmentation': 'shop' };
        const inOld = (name: string, spec: Record<string, unknown>) => ({
          apiVersion: 'networking.k8s.io/v1',
          kind: 'NetworkPolicy',
          metadata: { name, namespace: 'old', labels: ours },
          spec,
        });
        const oldPath = (name: string) => resourcePath('NetworkPolicy', 'old', name);
        for (const failing of [false, true]) {
          const { controller, state } = await start([dueForEnforce('Enforce')], {
            ...objects,
            [resourcePath('LearnedEdgeSet')]: [learnedGraph()],
            [resourcePath('NetworkPolicy')]: [
              inOld('microseg-default-deny', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] }),
              inOld('microseg-batch', {
                podSelector: { matchLabels: { app: 'batch' } },
                policyTypes: ['Egress'],
                egress: [{}],
              }),
            ],
          });
          if (failing) state.failDelete.add(oldPath('microseg-default-deny'));
          state.failEdgeSets = false;
          controller.startLeading();
          await expect.poll(() => state.applied.some((a) => a.subresource === 'status')).toBe(true);
          const deleted = state.deleted.filter((d) => d.includes('/namespaces/old/'));
          if (!failing) {
            expect(deleted).toEqual([oldPath('microseg-default-deny'), oldPath('microseg-batch')]);
            continue;
          }
          // Deleted, the policy would leave the deny alone to select the namespace's pods.
          expect(deleted).toEqual([]);
          const degraded = lastStatus(state).conditions!.find((c) => c.type === 'Degraded')!;
          expect(degraded.message).toBe(
            'delete NetworkPolicy old/microseg-default-deny: etcdserver: request timed out; delete NetworkPolicy old/microseg-batch: held back, as the default deny of its namespace could not be deleted (without this policy, the deny would cut off what it allows)',
          );
        }
      });

      it("writes the proposal's default deny all the same: a ProposedNetworkPolicy denies nothing", async () => {
        const { controller, state } = await start([dueForEnforce('Learn')], {
          ...objects,
          [resourcePath('LearnedEdgeSet')]: [learnedGraph()],
        });
        state.failApply.add('microseg-web');
        state.failEdgeSets = false;
        controller.startLeading();
        await expect.poll(() => state.applied.some((a) => a.subresource === 'status')).toBe(true);
        // Held back, it was missing from the proposal a promotion freezes: Enforce would have no deny.
        expect(
          state.applied
            .filter((a) => a.body.kind === 'ProposedNetworkPolicy' && a.subresource === undefined)
            .map((a) => (a.body.metadata as { name: string }).name),
        ).toContain('microseg-default-deny');
        const status = lastStatus(state);
        const degraded = status.conditions!.find((c) => c.type === 'Degraded')!;
        // No status write for an object that is not there.
        expect(degraded.message).toBe(
          'apply ProposedNetworkPolicy shop/microseg-web: admission webhook denied the request (HTTP 400)',
        );
        // Not stable, so not promoted: frozen now, the proposal would hold the deny without web's policy.
        expect(status.conditions!.find((c) => c.type === 'ProposalStable')).toMatchObject({
          status: 'False',
          reason: 'ApplyFailed',
          message:
            '1 ProposedNetworkPolicies could not be written (shop/microseg-web; see Degraded): the proposal in place is not the one proposed, so it is not stable, and is not promoted, until it is',
        });
        const attempted = state.applied.filter(
          (a) => a.body.kind === 'ProposedNetworkPolicy' && a.subresource === undefined,
        ).length;
        expect(status.policies).toBe(attempted - 1); // all but the refused one
      });

      it('deletes the default deny first when enforcement ends, and keeps the rest while it stays', async () => {
        const np = (name: string, spec: Record<string, unknown>) => ({
          apiVersion: 'networking.k8s.io/v1',
          kind: 'NetworkPolicy',
          metadata: {
            name,
            namespace: 'shop',
            labels: { 'app.kubernetes.io/managed-by': 'microseg', 'microseg.dev/segmentation': 'shop' },
          },
          spec,
        });
        const enforced = [
          np('microseg-api', {
            podSelector: { matchLabels: { app: 'api' } },
            policyTypes: ['Ingress'],
            ingress: [{}],
          }),
          np('microseg-default-deny', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] }),
          np('microseg-web', {
            podSelector: { matchLabels: { app: 'web' } },
            policyTypes: ['Egress'],
            egress: [{}],
          }),
        ];
        for (const failing of [false, true]) {
          const { controller, state, recorded } = await start([dueForEnforce('Audit')], {
            ...objects,
            [resourcePath('LearnedEdgeSet')]: [learnedGraph()],
            [resourcePath('NetworkPolicy')]: enforced,
          });
          if (failing) state.failDelete.add(npPath('microseg-default-deny'));
          state.failEdgeSets = false;
          controller.startLeading();
          await expect.poll(() => state.applied.some((a) => a.subresource === 'status')).toBe(true);
          await controller.reconcile('shop');
          // Without the deny, every other deletion only opens; with it kept, they would cut off.
          expect([failing, state.deleted[0]]).toEqual([
            failing,
            failing ? undefined : npPath('microseg-default-deny'),
          ]);
          if (failing)
            expect(recorded).toContainEqual({
              type: 'Warning',
              reason: 'ApplyFailed',
              message: 'delete NetworkPolicy shop/microseg-default-deny: etcdserver: request timed out',
            });
          if (!failing)
            expect(new Set(state.deleted)).toEqual(
              new Set(['microseg-api', 'microseg-default-deny', 'microseg-web'].map(npPath)),
            );
        }
      });
    });

    describe('ProposalStable while the ProposedNetworkPolicies in place are not the proposal', () => {
      const notInPlace =
        ': the proposal in place is not the one proposed, so it is not stable, and is not promoted, until it is';
      type State = Awaited<ReturnType<typeof start>>['state'];
      const condition = (state: State, type: string) =>
        lastStatus(state).conditions!.find((c) => c.type === type)!;
      /**
       * `s` over the learned graph (and the objects of `more`), `prepare`d, leading: its first reconcile
       * has written a status.
       */
      async function leading(
        s: Segmentation,
        prepare: (state: State) => void,
        more: Record<string, unknown[]> = {},
      ) {
        const started = await start([s], {
          ...objects,
          [resourcePath('LearnedEdgeSet')]: [learnedGraph()],
          ...more,
        });
        prepare(started.state);
        started.state.failEdgeSets = false;
        started.controller.startLeading();
        await expect.poll(() => started.state.applied.some((a) => a.subresource === 'status')).toBe(true);
        return started;
      }
      /** shop in Learn over the learned graph, with `proposals` in place, reconciled twice. */
      async function learning(proposals: unknown[], prepare: (state: State) => void, stableAfter = '1h') {
        const s = dueForEnforce('Learn');
        s.spec = { ...s.spec, learning: { stableAfter } };
        const started = await leading(s, prepare, { [resourcePath('ProposedNetworkPolicy')]: proposals });
        await started.controller.reconcile('shop');
        return started;
      }
      /**
       * A function that puts the objects with a spec the API server took since its last call, of the
       * kinds `cached` keeps (all but Segmentations), in the informers' caches, and names them `Kind name`.
       */
      const takenIntoCache = (state: State, cached = (kind: string) => kind !== 'Segmentation') => {
        let seen = 0;
        return () => {
          const taken = state.taken.slice(seen) as {
            kind: string;
            metadata: { name: string };
            spec?: unknown;
          }[];
          seen = state.taken.length;
          for (const body of taken)
            if (body.spec !== undefined && cached(body.kind))
              state.emit(resourcePath(body.kind), 'ADDED', {
                ...body,
                metadata: { ...body.metadata, resourceVersion: '3' },
              });
          return taken.filter((b) => b.spec !== undefined).map((b) => `${b.kind} ${b.metadata.name}`);
        };
      };
      /** `Kind name` of each object but a Segmentation that was applied, in order. */
      const triedOf = (state: State) => () =>
        state.applied
          .filter((a) => a.subresource === undefined && a.body.kind !== 'Segmentation')
          .map((a) => `${a.body.kind} ${(a.body.metadata as { name: string }).name}`);
      /** Another tool's ProposedNetworkPolicy in shop named `name`. */
      const foreignProposed = (name: string) => {
        const proposed = proposedOfShop(name, { podSelector: {} });
        return {
          ...proposed,
          metadata: { ...proposed.metadata, labels: { 'app.kubernetes.io/managed-by': 'someone' } },
        };
      };

      it('says which were written but did not take, not that they could not be written, and when they do', async () => {
        const { controller, state, recorded } = await learning([], (state) =>
          state.untaken.add('microseg-web'),
        );
        const what =
          'ProposedNetworkPolicy shop/microseg-web still differs from the proposal after apply (spec.ingress): another field manager holds what microseg does not set';
        expect(condition(state, 'Degraded')).toMatchObject({ status: 'True', message: `create ${what}` });
        expect(condition(state, 'ProposalStable')).toMatchObject({
          status: 'False',
          reason: 'ApplyFailed',
          message: `1 ProposedNetworkPolicies still differ from the proposal after apply (shop/microseg-web; see Degraded)${notInPlace}`,
        });
        // Said in a Warning Event in Learn too, as in the other modes.
        expect(recorded).toContainEqual({ type: 'Warning', reason: 'PolicyDriftNotRepaired', message: what });
        // Taken: neither condition names it any more.
        state.untaken.clear();
        await controller.reconcile('shop');
        expect(condition(state, 'Degraded')).toMatchObject({ status: 'False', reason: 'AsExpected' });
        expect(condition(state, 'ProposalStable')).toMatchObject({
          status: 'False',
          reason: 'ProposalChanged',
        });
      });

      it('counts in the ProposalUpdated Event what was written, and names what was not', async () => {
        const updates = (recorded: { reason: string; type: string; message: string }[]) =>
          recorded.filter((e) => e.reason === 'ProposalUpdated').map((e) => [e.type, e.message]);
        // Three created; web's refused.
        const refused = await learning([], (state) => state.failApply.add('microseg-web'));
        expect(updates(refused.recorded)[0]).toEqual([
          'Normal',
          'ProposedNetworkPolicies: 2 created, 0 updated, 0 deleted; 1 could not be written (shop/microseg-web; see Degraded)',
        ]);
        // Web's accepted, but it does not hold what was applied.
        const untaken = await learning([], (state) => state.untaken.add('microseg-web'));
        expect(updates(untaken.recorded)[0]).toEqual([
          'Normal',
          'ProposedNetworkPolicies: 2 created, 0 updated, 0 deleted; 1 still differ from the proposal after apply (shop/microseg-web; see Degraded)',
        ]);
        // One no longer proposed that could not be deleted.
        const old = proposedOfShop('microseg-old', {
          podSelector: { matchLabels: { app: 'old' } },
          policyTypes: ['Ingress'],
        });
        const undeleted = await learning([old], (state) =>
          state.failDelete.add(resourcePath('ProposedNetworkPolicy', 'shop', 'microseg-old')),
        );
        expect(updates(undeleted.recorded)[0]).toEqual([
          'Normal',
          'ProposedNetworkPolicies: 3 created, 0 updated, 0 deleted; 1 no longer proposed could not be deleted (shop/microseg-old; see Degraded)',
        ]);
        // Nothing written at all: no ProposalUpdated Event (the ApplyFailed Warnings say it).
        const none = await learning([], (state) => {
          for (const name of ['microseg-web', 'microseg-api', 'microseg-default-deny'])
            state.failApply.add(name);
        });
        expect(updates(none.recorded)).toEqual([]);
        expect(none.recorded.filter((e) => e.reason === 'ApplyFailed')).not.toEqual([]);
      });

      it('names those that could not be written beside a name conflict', async () => {
        // Another tool's object holding the name of api's proposed policy.
        const foreign = foreignProposed('microseg-api');
        const { state } = await learning([foreign], (state) => state.failApply.add('microseg-web'));
        expect(condition(state, 'Degraded').message).toBe(
          'apply ProposedNetworkPolicy shop/microseg-web: admission webhook denied the request (HTTP 400)',
        );
        expect(condition(state, 'ProposalStable')).toMatchObject({
          status: 'False',
          reason: 'PolicyNameConflict',
          message: `ProposedNetworkPolicy shop/microseg-api exists and is not managed by this Segmentation (an object microseg does not manage); left untouched; 1 ProposedNetworkPolicies could not be written (shop/microseg-web; see Degraded)${notInPlace}`,
        });
      });

      it('keeps writing a first proposal made in Enforce while one of it is refused, and freezes it whole', async () => {
        // Created in Enforce (the audit clean): its first proposal is written now, and the API server
        // refuses web's objects, the ProposedNetworkPolicy and the NetworkPolicy alike.
        const { controller, state } = await leading(dueForEnforce('Enforce'), (state) =>
          state.failApply.add('microseg-web'),
        );
        const cacheTaken = takenIntoCache(state);
        expect(new Set(cacheTaken())).toEqual(
          new Set([
            'ProposedNetworkPolicy microseg-api',
            'ProposedNetworkPolicy microseg-default-deny',
            'NetworkPolicy microseg-api',
          ]),
        );
        const tried = triedOf(state);
        const written = (i: number) => tried().slice(i);
        const notWritten =
          '1 ProposedNetworkPolicies could not be written (shop/microseg-web; see Degraded)' + notInPlace;
        // The next reconciles (the retry of the refusal) find api's and the deny's ProposedNetworkPolicies
        // in place: the proposal is still web's too. Web's is tried again, and the deny still waits for
        // web's NetworkPolicy.
        for (let i = 0; i < 2; i++) {
          const before = tried().length;
          expect(await controller.reconcile('shop')).toEqual({ requeueAfter: 10_000, retry: true });
          expect(written(before)).toContain('ProposedNetworkPolicy microseg-web');
          expect(written(before)).toContain('NetworkPolicy microseg-web');
          expect(written(before)).not.toContain('NetworkPolicy microseg-default-deny');
          expect(cacheTaken()).toEqual([]);
          expect(condition(state, 'ProposalStable')).toMatchObject({
            status: 'False',
            reason: 'ApplyFailed',
            message: notWritten,
          });
          expect(condition(state, 'Degraded')).toMatchObject({ status: 'True', reason: 'ApplyFailed' });
          expect(condition(state, 'Degraded').message).toContain(
            'apply ProposedNetworkPolicy shop/microseg-web: admission webhook denied the request (HTTP 400)',
          );
          expect(lastStatus(state).policies).toBe(2);
        }
        // Lifted: web's objects are written, then the deny; the proposal of three is frozen.
        state.failApply.clear();
        expect(await controller.reconcile('shop')).toEqual({ requeueAfter: 10_000 });
        expect(new Set(cacheTaken())).toEqual(
          new Set([
            'ProposedNetworkPolicy microseg-web',
            'NetworkPolicy microseg-web',
            'NetworkPolicy microseg-default-deny',
          ]),
        );
        expect(condition(state, 'ProposalStable')).toMatchObject({
          status: 'True',
          reason: 'ProposalFrozen',
        });
        expect(condition(state, 'Degraded')).toMatchObject({ status: 'False' });
        const before = tried().length;
        await controller.reconcile('shop');
        expect(written(before)).toEqual([]);
        expect(lastStatus(state)).toMatchObject({ policies: 3, enforcedPolicies: 3 });
        expect(condition(state, 'ProposalStable')).toMatchObject({
          status: 'True',
          reason: 'ProposalFrozen',
          message: 'the proposal of 3 policies is frozen',
        });
      });

      it('keeps enforcing a proposal still being written while one of it is refused when a new edge changes it', async () => {
        // Created in Enforce with a clean audit (not forced): web's objects are refused, api's policy is
        // enforced, and the proposal is still written from the live analysis.
        const { controller, state, recorded } = await leading(dueForEnforce('Enforce'), (state) =>
          state.failApply.add('microseg-web'),
        );
        const cacheTaken = takenIntoCache(state, (kind) =>
          ['NetworkPolicy', 'ProposedNetworkPolicy'].includes(kind),
        );
        cacheTaken();
        await controller.reconcile('shop');
        cacheTaken();
        expect(lastStatus(state)).toMatchObject({ mode: 'Enforce', enforcedPolicies: 1 });
        expect(condition(state, 'Enforced')).toMatchObject({ reason: 'ApplyFailed' });
        // One newly learned edge (web → api on 9090) changes api's policy: the audit starts again, and
        // enforcement is not withdrawn meanwhile; api's policy is applied with the new port.
        const tried = state.applied.length;
        controller.ingest([{ ...webToApiFlow(), port: 9090 }]);
        await controller.reconcile('shop');
        cacheTaken();
        expect(recorded).toContainEqual(
          expect.objectContaining({
            reason: 'AuditWindowOpen',
            message: expect.stringMatching(/^the proposal changed/),
          }),
        );
        expect(state.deleted.filter((p) => p.includes('networkpolicies/'))).toEqual([]);
        const api = state.applied
          .slice(tried)
          .filter(
            (a) =>
              a.body.kind === 'NetworkPolicy' &&
              (a.body.metadata as { name: string }).name === 'microseg-api',
          )
          .map((a) => JSON.stringify(a.body.spec));
        expect(api.some((spec) => spec.includes('9090'))).toBe(true);
        expect(lastStatus(state)).toMatchObject({ mode: 'Enforce', enforcedPolicies: 1, phase: 'Degraded' });
        expect(condition(state, 'Enforced')).toMatchObject({
          status: 'False',
          reason: 'ApplyFailed',
          message:
            '1 of 3 NetworkPolicies in place; 1 could not be applied or repaired; 1 default deny held back while a policy of its namespace could not be applied (see Degraded); the proposal is still being written, as 1 ProposedNetworkPolicies could not be written (shop/microseg-web; see Degraded): it stays enforced while its audit starts again, and what newly learned flows add to it is applied',
        });
      });

      /**
       * shop enforcing with web's objects refused (the proposal is still written from the live analysis):
       * api's policy admits web on 8080 and on 9090, whose edge was last seen 50 s ago (rules expire after
       * 1m), reconciled once (`setup`: `status` and `extra` objects for a controller that takes over).
       * `step` reconciles and hands the objects applied to the cache; `apiPorts(kind, from)` gives the ports
       * of api's policy (of `kind`) in each apply since the `from`th. `setup.learning` is merged into
       * `spec.learning`; `setup.edges` changes the persisted edges (web → api on 8080, then on 9090).
       */
      async function enforcingWhileWritten(
        setup: {
          status?: unknown;
          extra?: Record<string, unknown[]>;
          offsetMs?: number;
          learning?: Record<string, unknown>;
          edges?: (edges: PersistedEdge[], old: string) => void;
        } = {},
      ) {
        const clock = { offsetMs: setup.offsetMs ?? 0 };
        const s = dueForEnforce('Enforce');
        s.spec = { ...s.spec, learning: { ruleExpiry: '1m', ...setup.learning } };
        if (setup.status !== undefined) s.status = setup.status as Segmentation['status'];
        const graph = learnedGraph();
        const old = new Date(Date.now() - 50_000).toISOString();
        graph.spec.edges.push({ ...graph.spec.edges[0]!, port: 9090, firstSeen: old, lastSeen: old });
        setup.edges?.(graph.spec.edges, old);
        const started = await start(
          [s],
          { ...objects, [resourcePath('LearnedEdgeSet')]: [graph], ...setup.extra },
          {},
          () => Date.now() + clock.offsetMs,
        );
        const { controller, state } = started;
        state.failApply.add('microseg-web');
        state.failEdgeSets = false;
        controller.startLeading();
        await expect.poll(() => state.applied.some((a) => a.subresource === 'status')).toBe(true);
        let seen = 0;
        const cacheTaken = () => {
          const taken = state.taken.slice(seen) as {
            kind: string;
            metadata: { name: string };
            spec?: unknown;
          }[];
          seen = state.taken.length;
          for (const body of taken)
            if (body.spec !== undefined && ['NetworkPolicy', 'ProposedNetworkPolicy'].includes(body.kind))
              state.emit(resourcePath(body.kind), 'ADDED', {
                ...body,
                metadata: { ...body.metadata, resourceVersion: '3' },
              });
        };
        cacheTaken();
        const step = async () => {
          await controller.reconcile('shop');
          cacheTaken();
        };
        const apiPorts = (kind: string, from: number) =>
          state.applied
            .slice(from)
            .filter(
              (a) =>
                a.subresource === undefined &&
                a.body.kind === kind &&
                (a.body.metadata as { name: string }).name === 'microseg-api',
            )
            .map((a) =>
              (a.body.spec as { ingress: { ports?: { port: number }[] }[] }).ingress
                .flatMap((r) => (r.ports ?? []).map((p) => p.port))
                .sort(),
            );
        await step();
        return { ...started, s, clock, step, apiPorts };
      }
      const keptNote =
        '1 learned edge(s) unused for 1m are kept while the proposal is still being written, so that no allow enforced is withdrawn without an audit (they age out once it is written in full)';

      /**
       * Lifts the apply failure: the proposal is frozen, then the kept edge ages out and all three
       * NetworkPolicies are in place. Returns how many applies there were once it was frozen.
       */
      const liftThenAgeOut = async ({
        state,
        recorded,
        step,
      }: Pick<Awaited<ReturnType<typeof enforcingWhileWritten>>, 'state' | 'recorded' | 'step'>) => {
        state.failApply.clear();
        await step();
        expect(condition(state, 'ProposalStable')).toMatchObject({
          status: 'True',
          reason: 'ProposalFrozen',
        });
        const frozenAt = state.applied.length;
        await step();
        expect(recorded).toContainEqual({
          type: 'Normal',
          reason: 'EdgesAgedOut',
          message: '1 learned edge(s) unused for 1m aged out',
        });
        expect(lastStatus(state)).toMatchObject({ mode: 'Enforce', enforcedPolicies: 3, edges: 1 });
        return frozenAt;
      };

      it('keeps an allow it enforces while the proposal is still being written when the edge behind it ages out', async () => {
        const { state, recorded, clock, step, apiPorts } = await enforcingWhileWritten();
        expect(lastStatus(state)).toMatchObject({ mode: 'Enforce', enforcedPolicies: 1, edges: 2 });
        expect(apiPorts('NetworkPolicy', 0).at(-1)).toEqual([8080, 9090]);

        // 20 s later the 9090 edge is 70 s old, past the expiry: it is kept while the proposal is
        // still written, so api's enforced policy keeps admitting web on 9090.
        clock.offsetMs = 20_000;
        const before = state.applied.length;
        for (let i = 0; i < 2; i++) await step();
        expect(apiPorts('NetworkPolicy', before)).toEqual([]);
        expect(apiPorts('ProposedNetworkPolicy', before)).toEqual([]);
        expect(state.deleted.filter((p) => p.includes('networkpolicies/'))).toEqual([]);
        expect(recorded.filter((e) => e.reason === 'EdgesAgedOut')).toEqual([]);
        expect(lastStatus(state)).toMatchObject({ mode: 'Enforce', enforcedPolicies: 1, edges: 2 });
        expect(condition(state, 'Enforced')).toMatchObject({
          status: 'False',
          reason: 'ApplyFailed',
          message: `1 of 3 NetworkPolicies in place; 1 could not be applied or repaired; 1 default deny held back while a policy of its namespace could not be applied (see Degraded); ${keptNote}`,
        });

        // Lifted: web's objects are written and the proposal, api's 9090 rule included, is frozen. The
        // edge then ages out, and the frozen proposal keeps its rule until it is proposed afresh.
        await liftThenAgeOut({ state, recorded, step });
        expect(apiPorts('NetworkPolicy', before)).toEqual([]);
        expect(apiPorts('ProposedNetworkPolicy', before)).toEqual([]);
      });

      it('keeps past their expiry, and counts, only the learned edges behind an allow: not those below learning.minFlows or outside its namespaces', async () => {
        const { state, recorded, clock, step, apiPorts } = await enforcingWhileWritten({
          learning: { minFlows: 2 },
          edges: (edges, old) => {
            // web → api on 8080 and 9090 seen twice each; on 7070 once, 50 s ago (below minFlows); and
            // two workloads of a namespace shop's Segmentation does not cover, 50 s ago.
            for (const e of edges) e.count = 2;
            edges.push({ ...edges[0]!, port: 7070, count: 1, firstSeen: old, lastSeen: old });
            edges.push({
              ...edges[0]!,
              src: 'other/Pod/x',
              dst: 'other/Pod/y',
              count: 5,
              firstSeen: old,
              lastSeen: old,
            });
          },
        });
        expect(apiPorts('NetworkPolicy', 0).at(-1)).toEqual([8080, 9090]);
        clock.offsetMs = 20_000;
        const before = state.applied.length;
        await step();
        // The 9090 edge is kept, and counted; the other two age out.
        expect(condition(state, 'Enforced').message).toContain(`; ${keptNote}`);
        expect(recorded.filter((e) => e.reason === 'EdgesAgedOut')).toEqual([
          { type: 'Normal', reason: 'EdgesAgedOut', message: '2 learned edge(s) unused for 1m aged out' },
        ]);
        const persisted = state.applied.filter((a) => a.body.kind === 'LearnedEdgeSet').at(-1)!
          .body as unknown as LearnedEdgeSet;
        expect(persisted.spec.edges.map((e) => `${e.src} ${e.dst} ${e.port}`).sort()).toEqual([
          'shop/Pod/web shop/Pod/api 8080',
          'shop/Pod/web shop/Pod/api 9090',
        ]);
        expect(apiPorts('NetworkPolicy', before)).toEqual([]);
        expect(state.deleted.filter((p) => p.includes('networkpolicies/'))).toEqual([]);
      });

      it('counts an edge behind an allow by its flows since it was learned, dropped ones too, not by the records or within ruleExpiry', async () => {
        const { state, recorded, clock, step, apiPorts } = await enforcingWhileWritten({
          learning: { minFlows: 3 },
          edges: (edges, old) => {
            const learned = new Date(Date.now() - 10 * 60_000).toISOString();
            // web → api on 8080: three flows. On 9090: three flows learned over ten minutes (longer than
            // ruleExpiry, as it never aged out), two of them dropped. On 7070: two flows, 50 s ago.
            edges[0]!.count = 3;
            Object.assign(edges[1]!, { count: 3, dropped: 2, firstSeen: learned });
            edges.push({ ...edges[0]!, port: 7070, count: 2, firstSeen: old, lastSeen: old });
          },
        });
        expect(apiPorts('NetworkPolicy', 0).at(-1)).toEqual([8080, 9090]);
        clock.offsetMs = 20_000;
        await step();
        // The 9090 edge is kept, and counted; the 7070 one, below minFlows, ages out.
        expect(condition(state, 'Enforced').message).toContain(`; ${keptNote}`);
        expect(recorded.filter((e) => e.reason === 'EdgesAgedOut')).toEqual([
          { type: 'Normal', reason: 'EdgesAgedOut', message: '1 learned edge(s) unused for 1m aged out' },
        ]);
        const persisted = state.applied.filter((a) => a.body.kind === 'LearnedEdgeSet').at(-1)!
          .body as unknown as LearnedEdgeSet;
        expect(persisted.spec.edges.map((e) => `${e.port} ${e.count} ${e.dropped ?? 0}`).sort()).toEqual([
          '8080 3 0',
          '9090 3 2',
        ]);
      });

      it('keeps them too after a restart or a leader change, from status and the persisted graph, and lets them age out once the proposal is frozen', async () => {
        const first = await enforcingWhileWritten();
        first.clock.offsetMs = 20_000;
        await first.step();
        expect(condition(first.state, 'Enforced').message).toContain(keptNote);
        await first.controller.stopLeading();
        // A new leader: the status the last one wrote, the graph it persisted (the 9090 edge with it, as
        // it was kept), and the objects it applied.
        const persisted = first.state.applied
          .filter((a) => a.body.kind === 'LearnedEdgeSet')
          .map((a) => a.body);
        const taken = (kind: string) =>
          (first.state.taken as { kind: string; metadata: object; spec?: unknown }[])
            .filter((b) => b.kind === kind && b.spec !== undefined)
            .map((b) => ({ ...b, metadata: { ...b.metadata, resourceVersion: '3' } }));
        const next = await enforcingWhileWritten({
          status: lastStatus(first.state),
          offsetMs: 20_000,
          extra: {
            ...(persisted.length > 0 ? { [resourcePath('LearnedEdgeSet')]: persisted } : {}),
            [resourcePath('ProposedNetworkPolicy')]: taken('ProposedNetworkPolicy'),
            [resourcePath('NetworkPolicy')]: taken('NetworkPolicy'),
          },
        });
        const { state, recorded, step, apiPorts } = next;
        // Its first reconciles find what the last leader wrote (no status differs from it): the edge
        // kept, said so.
        expect(segmentationStatuses(state)).toEqual([]);
        const taken0 = lastStatus(first.state);
        expect(recorded.filter((e) => e.reason === 'EdgesAgedOut')).toEqual([]);
        expect(taken0).toMatchObject({ mode: 'Enforce', enforcedPolicies: 1, edges: 2 });
        expect(taken0.conditions!.find((c) => c.type === 'Enforced')!.message).toContain(keptNote);
        expect(apiPorts('NetworkPolicy', 0).every((p) => p.includes(9090))).toBe(true);
        expect(state.deleted.filter((p) => p.includes('networkpolicies/'))).toEqual([]);
        // Lifted: frozen with the 9090 rule, then aged out.
        const before = await liftThenAgeOut({ state, recorded, step });
        expect(apiPorts('NetworkPolicy', before)).toEqual([]);
      });

      /** Emits Segmentation shop edited to `spec` (resourceVersion, generation), its status as last written. */
      const editedSpec = async (
        { state, s, segs }: Awaited<ReturnType<typeof enforcingWhileWritten>>,
        resourceVersion: string,
        generation: number,
        spec: object,
      ) => {
        state.emit(resourcePath('Segmentation'), 'MODIFIED', {
          ...s,
          metadata: { ...s.metadata, resourceVersion, generation },
          spec,
          status: lastStatus(state),
        });
        await expect.poll(() => segs.get('shop')?.metadata.resourceVersion).toBe(resourceVersion);
      };
      const madeWith = { minFlows: 1, defaultDeny: true, includeDropped: false, worldIngress: 'any' };
      const deferred =
        'spec learning.minFlows (1 → 2) changed while the proposal of this enforcing Segmentation is still being written (see Enforced and ProposalStable): it is written, and enforced, as made with learning.minFlows 1 (status.proposal.inputs) until it is in place in full, so that the change takes no allow out of what is enforced without an audit; frozen then, it keeps them, and the change takes effect when the proposal is next made from the spec: at once if the Segmentation is set back to Audit while its proposal is still being written (nothing is enforced then), else once it is set back to Learn and its proposal promoted again';

      it('keeps writing the proposal it enforces with the learning.minFlows and policy.* it was made from while it is still being written, until it is frozen', async () => {
        const started = await enforcingWhileWritten();
        const { state, recorded, step, s, apiPorts } = started;
        expect(lastStatus(state).proposal).toMatchObject({ inputs: madeWith });
        const changes = () => recorded.filter((e) => e.reason === 'SpecChangeDeferred');
        // Nothing to say while the spec fields the proposal is made from stay as they were.
        await step();
        expect(changes()).toEqual([]);
        // minFlows raised to 2: web's two edges (one flow each) would make no rule, and api's enforced
        // policy would be taken out at once, unaudited. The proposal goes on with minFlows 1.
        await editedSpec(started, '7', 2, { ...s.spec, learning: { ruleExpiry: '1m', minFlows: 2 } });
        const before = state.applied.length;
        for (let i = 0; i < 2; i++) await step();
        expect(state.deleted.filter((p) => p.includes('networkpolicies/'))).toEqual([]);
        expect(apiPorts('NetworkPolicy', before)).toEqual([]);
        expect(apiPorts('ProposedNetworkPolicy', before)).toEqual([]);
        expect(lastStatus(state)).toMatchObject({
          mode: 'Enforce',
          enforcedPolicies: 1,
          edges: 2,
          proposal: { inputs: madeWith },
        });
        expect(condition(state, 'Enforced').message).toContain(
          '; spec learning.minFlows (1 → 2) waits until the proposal is written in full (status.proposal.inputs)',
        );
        // Said once, for the change.
        expect(changes()).toEqual([{ type: 'Warning', reason: 'SpecChangeDeferred', message: deferred }]);

        // Lifted: web's objects are written and the proposal made with minFlows 1 is frozen, api's rules
        // in it; frozen, it is not made again from the new spec, and nothing enforced is taken out.
        state.failApply.clear();
        await step();
        expect(condition(state, 'ProposalStable')).toMatchObject({
          status: 'True',
          reason: 'ProposalFrozen',
        });
        for (let i = 0; i < 2; i++) await step();
        expect(state.deleted.filter((p) => p.includes('networkpolicies/'))).toEqual([]);
        expect(apiPorts('NetworkPolicy', before)).toEqual([]);
        expect(lastStatus(state)).toMatchObject({
          mode: 'Enforce',
          enforcedPolicies: 3,
          proposal: { inputs: madeWith },
        });
        expect(condition(state, 'Enforced').message).not.toContain('waits until');
        expect(changes()).toHaveLength(1);
      });

      it('keeps them too after a leader change, from status.proposal.inputs', async () => {
        const first = await enforcingWhileWritten();
        await editedSpec(first, '7', 2, { ...first.s.spec, learning: { ruleExpiry: '1m', minFlows: 2 } });
        await first.step();
        expect(first.state.deleted.filter((p) => p.includes('networkpolicies/'))).toEqual([]);
        await first.controller.stopLeading();
        const taken = (kind: string) =>
          (first.state.taken as { kind: string; metadata: object; spec?: unknown }[])
            .filter((b) => b.kind === kind && b.spec !== undefined)
            .map((b) => ({ ...b, metadata: { ...b.metadata, resourceVersion: '3' } }));
        // A new leader finds the edited spec, the status the last one wrote and the objects it applied.
        const next = await enforcingWhileWritten({
          status: lastStatus(first.state),
          learning: { minFlows: 2 },
          extra: {
            [resourcePath('ProposedNetworkPolicy')]: taken('ProposedNetworkPolicy'),
            [resourcePath('NetworkPolicy')]: taken('NetworkPolicy'),
          },
        });
        const { state, recorded, step, apiPorts } = next;
        await step();
        expect(state.deleted.filter((p) => p.includes('networkpolicies/'))).toEqual([]);
        expect(apiPorts('NetworkPolicy', 0).every((p) => p.includes(8080) && p.includes(9090))).toBe(true);
        expect(apiPorts('ProposedNetworkPolicy', 0).every((p) => p.includes(8080))).toBe(true);
        expect(lastStatus(state)).toMatchObject({ enforcedPolicies: 1, proposal: { inputs: madeWith } });
        // The new leader says it too, once.
        expect(recorded.filter((e) => e.reason === 'SpecChangeDeferred')).toEqual([
          { type: 'Warning', reason: 'SpecChangeDeferred', message: deferred },
        ]);
      });

      it("keeps past their expiry the edges behind an allow of the learning.minFlows the proposal is made with while a raise waits, says a further raise again, and takes the spec's in Learn", async () => {
        const started = await enforcingWhileWritten();
        const { state, recorded, clock, step, s, apiPorts } = started;
        const changes = () => recorded.filter((e) => e.reason === 'SpecChangeDeferred');
        await editedSpec(started, '7', 2, { ...s.spec, learning: { ruleExpiry: '1m', minFlows: 2 } });
        await step();
        await step();
        expect(changes().map((e) => e.message)).toEqual([deferred]);
        // Raised again, to 3: a change of its own, said again (once).
        await editedSpec(started, '8', 3, { ...s.spec, learning: { ruleExpiry: '1m', minFlows: 3 } });
        await step();
        await step();
        expect(changes().map((e) => e.message)).toEqual([
          deferred,
          expect.stringMatching(
            /^spec learning\.minFlows \(1 → 3\) changed while .*as made with learning\.minFlows 1 \(status\.proposal\.inputs\)/,
          ),
        ]);
        // 20 s on, web → api on 9090 (one flow, 50 s ago) is past the 1m expiry: it backs an allow of the
        // proposal made with minFlows 1, though not of one made with 3, and is kept, and counted.
        clock.offsetMs = 20_000;
        const before = state.applied.length;
        await step();
        expect(condition(state, 'Enforced').message).toContain(`; ${keptNote}`);
        expect(condition(state, 'Enforced').message).toContain(
          '; spec learning.minFlows (1 → 3) waits until the proposal is written in full (status.proposal.inputs)',
        );
        expect(recorded.filter((e) => e.reason === 'EdgesAgedOut')).toEqual([]);
        expect(state.deleted.filter((p) => p.includes('networkpolicies/'))).toEqual([]);
        expect(lastStatus(state)).toMatchObject({ edges: 2, proposal: { inputs: madeWith } });
        expect(apiPorts('NetworkPolicy', before)).toEqual([]);
        expect(changes()).toHaveLength(2);

        // Set back to Learn: the proposal is made from the spec's values, and status says so.
        await editedSpec(started, '9', 4, {
          ...s.spec,
          mode: 'Learn',
          learning: { ruleExpiry: '1m', minFlows: 3 },
        });
        await step();
        expect(lastStatus(state)).toMatchObject({
          mode: 'Learn',
          proposal: { inputs: { ...madeWith, minFlows: 3 } },
        });
        expect(condition(state, 'Enforced').message ?? '').not.toContain('waits until');
        expect(changes()).toHaveLength(2);
      });

      it("makes the proposal with the spec's values at once when a Segmentation whose change waits is set back to Audit while its proposal is still being written, as its Event says", async () => {
        const started = await enforcingWhileWritten();
        const { state, recorded, step, s } = started;
        await editedSpec(started, '7', 2, { ...s.spec, learning: { ruleExpiry: '1m', minFlows: 2 } });
        await step();
        const said = recorded.filter((e) => e.reason === 'SpecChangeDeferred').map((e) => e.message);
        expect(said).toEqual([deferred]);
        expect(said[0]).toContain(
          'the change takes effect when the proposal is next made from the spec: at once if the Segmentation is set back to Audit while its proposal is still being written (nothing is enforced then), else once it is set back to Learn and its proposal promoted again',
        );
        // Set back to Audit, web's objects still refused: nothing is enforced, the proposal is still
        // written, and made with minFlows 2 at once: web's edges, one flow each, make no rule, and api's
        // proposed policy, which admitted web, is taken out.
        const deletedBefore = state.deleted.length;
        await editedSpec(started, '8', 3, {
          ...s.spec,
          mode: 'Audit',
          learning: { ruleExpiry: '1m', minFlows: 2 },
        });
        await step();
        expect(lastStatus(state)).toMatchObject({
          mode: 'Audit',
          proposal: { inputs: { ...madeWith, minFlows: 2 } },
        });
        expect(state.deleted.slice(deletedBefore)).toContain(
          '/apis/microseg.dev/v1alpha1/namespaces/shop/proposednetworkpolicies/microseg-api',
        );
        expect(condition(state, 'Enforced').message ?? '').not.toContain('waits until');
        expect(recorded.filter((e) => e.reason === 'SpecChangeDeferred')).toHaveLength(1);
      });

      it('lets them age out once spec.mode is set back to Audit or Learn, which withdraw what was enforced', async () => {
        for (const mode of ['Audit', 'Learn']) {
          const { state, recorded, clock, step, s, segs } = await enforcingWhileWritten();
          clock.offsetMs = 20_000;
          await step();
          expect(condition(state, 'Enforced').message).toContain(keptNote);
          expect(recorded.filter((e) => e.reason === 'EdgesAgedOut')).toEqual([]);
          state.emit(resourcePath('Segmentation'), 'MODIFIED', {
            ...s,
            metadata: { ...s.metadata, resourceVersion: '7', generation: 2 },
            spec: { ...s.spec, mode },
            status: lastStatus(state),
          });
          await expect.poll(() => segs.get('shop')?.metadata.resourceVersion).toBe('7');
          await step();
          expect(recorded, mode).toContainEqual({
            type: 'Normal',
            reason: 'EdgesAgedOut',
            message: '1 learned edge(s) unused for 1m aged out',
          });
          expect(lastStatus(state)).toMatchObject({ mode, edges: 1 });
          expect(condition(state, 'Enforced').message).not.toContain('kept while');
        }
      });

      it('says in a refusal of Enforce that the proposal is still being written while one of it is refused', async () => {
        // In Enforce, its audit begun just now (not clean): web's objects are refused, so the proposal is
        // written from the live analysis at each reconcile, and each change to it starts the audit again.
        const s = dueForEnforce('Enforce');
        const now = new Date().toISOString();
        const { controller, state } = await leading(
          { ...s, status: { mode: 'Enforce', modeSince: now, audit: { since: now } } },
          (state) => state.failApply.add('microseg-web'),
        );
        // Api's and the deny's ProposedNetworkPolicies, written, are now in the informer's cache.
        for (const body of state.taken as { kind: string; metadata: object; spec?: unknown }[])
          if (body.kind === 'ProposedNetworkPolicy' && body.spec !== undefined)
            state.emit(resourcePath(body.kind), 'ADDED', {
              ...body,
              metadata: { ...body.metadata, resourceVersion: '3' },
            });
        await controller.reconcile('shop');
        expect(lastStatus(state)).toMatchObject({ mode: 'Enforce', enforcedPolicies: 0 });
        expect(condition(state, 'Enforced')).toMatchObject({ status: 'False', reason: 'EnforceRefused' });
        expect(condition(state, 'Enforced').message).toMatch(
          /^Enforce refused: no flow would be blocked so far; the 1s audit window started at .*; wait for AuditClean or set spec\.enforce\.force: true; the proposal is still being written, as 1 ProposedNetworkPolicies could not be written \(shop\/microseg-web; see Degraded\): each change to it starts the audit again$/,
        );
      });

      it('keeps writing a proposal promoted by hand to Enforce while one of it is refused, its deny held back until it is written', async () => {
        // In Learn, the API server refuses web's objects: the proposal in place is api's and the deny's,
        // and ProposalStable says it is not the one proposed.
        const { controller, state, recorded } = await learning([], (state) =>
          state.failApply.add('microseg-web'),
        );
        const notWritten =
          '1 ProposedNetworkPolicies could not be written (shop/microseg-web; see Degraded)' + notInPlace;
        expect(condition(state, 'ProposalStable')).toMatchObject({
          status: 'False',
          reason: 'ApplyFailed',
          message: notWritten,
        });
        const cacheTaken = takenIntoCache(state);
        expect(new Set(cacheTaken())).toEqual(
          new Set(['ProposedNetworkPolicy microseg-api', 'ProposedNetworkPolicy microseg-default-deny']),
        );
        const tried = triedOf(state);
        // Promoted by hand to Enforce (forced: no audit ran), with web's still refused.
        const learned = lastStatus(state);
        const s = dueForEnforce('Learn');
        const before = tried().length;
        state.emit(resourcePath('Segmentation'), 'MODIFIED', {
          ...s,
          metadata: { ...s.metadata, generation: 2, resourceVersion: '5' },
          spec: { ...shopSpec, mode: 'Enforce', enforce: { force: true }, learning: { stableAfter: '1h' } },
          status: learned,
        });
        await expect.poll(() => lastStatus(state).mode).toBe('Enforce');
        // Web's ProposedNetworkPolicy and NetworkPolicy are tried again; the deny waits for web's.
        await controller.reconcile('shop');
        const written = tried().slice(before);
        expect(written).toContain('ProposedNetworkPolicy microseg-web');
        expect(written).toContain('NetworkPolicy microseg-web');
        expect(written).toContain('NetworkPolicy microseg-api');
        expect(written).not.toContain('NetworkPolicy microseg-default-deny');
        expect(new Set(cacheTaken())).toEqual(new Set(['NetworkPolicy microseg-api']));
        expect(condition(state, 'ProposalStable')).toMatchObject({
          status: 'False',
          reason: 'ApplyFailed',
          message: notWritten,
        });
        expect(condition(state, 'Enforced')).toMatchObject({
          status: 'False',
          reason: 'ApplyFailed',
          message:
            '1 of 3 NetworkPolicies in place; 1 could not be applied or repaired; 1 default deny held back while a policy of its namespace could not be applied (see Degraded)',
        });
        expect(condition(state, 'Degraded').message).toContain(
          'create NetworkPolicy shop/microseg-default-deny: held back, as a policy of its namespace could not be applied (the default deny would cut off what that policy allows)',
        );
        expect(recorded).toContainEqual({
          type: 'Warning',
          reason: 'ApplyFailed',
          message: 'apply NetworkPolicy shop/microseg-web: admission webhook denied the request (HTTP 400)',
        });
        // Lifted: web's objects are written, then the deny; the proposal of three is frozen.
        state.failApply.clear();
        const lifted = tried().length;
        await controller.reconcile('shop');
        expect(tried().slice(lifted)).toContain('NetworkPolicy microseg-default-deny');
        expect(new Set(cacheTaken())).toEqual(
          new Set([
            'ProposedNetworkPolicy microseg-web',
            'NetworkPolicy microseg-web',
            'NetworkPolicy microseg-default-deny',
          ]),
        );
        expect(condition(state, 'Degraded')).toMatchObject({ status: 'False' });
        const after = tried().length;
        await controller.reconcile('shop');
        expect(tried().slice(after)).toEqual([]);
        expect(lastStatus(state)).toMatchObject({ mode: 'Enforce', policies: 3, enforcedPolicies: 3 });
        expect(condition(state, 'ProposalStable')).toMatchObject({
          status: 'True',
          reason: 'ProposalFrozen',
          message: 'the proposal of 3 policies is frozen',
        });
      });

      it('holds back the default deny of a first proposal made in Enforce while another object holds the name of a policy of it', async () => {
        // Created in Enforce: another tool's ProposedNetworkPolicy holds the name of web's, so the
        // proposal lacks web's policy, and shop's default deny alone would cut off web.
        const foreign = foreignProposed('microseg-web');
        const s = dueForEnforce('Enforce');
        const { controller, state, recorded } = await leading(
          { ...s, spec: { ...s.spec, enforce: { force: true } } },
          () => undefined,
          { [resourcePath('ProposedNetworkPolicy')]: [foreign] },
        );
        const cacheTaken = takenIntoCache(state);
        const npWritten = () =>
          state.taken
            .filter((b) => (b as { kind: string }).kind === 'NetworkPolicy')
            .map((b) => (b as { metadata: { name: string } }).metadata.name);
        const conflict =
          'ProposedNetworkPolicy shop/microseg-web exists and is not managed by this Segmentation (an object microseg does not manage); left untouched';
        const heldBack =
          'NetworkPolicy shop/microseg-default-deny held back: without shop/microseg-web it would cut off what that policy allows';
        for (let i = 0; i < 2; i++) {
          await controller.reconcile('shop');
          cacheTaken();
          // Api's policy only (written at each reconcile until the cache has it); never the deny.
          expect(new Set(npWritten())).toEqual(new Set(['microseg-api']));
          expect(condition(state, 'Enforced')).toMatchObject({
            status: 'False',
            reason: 'PolicyNameConflict',
            message: `${conflict}; ${heldBack}`,
          });
          expect(condition(state, 'ProposalStable')).toMatchObject({
            status: 'False',
            reason: 'PolicyNameConflict',
          });
          expect(lastStatus(state)).toMatchObject({ policies: 2, enforcedPolicies: 1 });
        }
        expect(recorded).toContainEqual({ type: 'Warning', reason: 'PolicyNameConflict', message: heldBack });
        // The name freed: web's ProposedNetworkPolicy and NetworkPolicy are written, then the deny.
        state.emit(resourcePath('ProposedNetworkPolicy'), 'DELETED', foreign);
        await controller.reconcile('shop');
        expect(new Set(cacheTaken())).toEqual(
          new Set([
            'ProposedNetworkPolicy microseg-web',
            'NetworkPolicy microseg-web',
            'NetworkPolicy microseg-default-deny',
          ]),
        );
        expect(npWritten().indexOf('microseg-web')).toBeLessThan(
          npWritten().indexOf('microseg-default-deny'),
        );
        await controller.reconcile('shop');
        expect(condition(state, 'Enforced')).toMatchObject({ status: 'True' });
        expect(lastStatus(state)).toMatchObject({ policies: 3, enforcedPolicies: 3 });
        expect(condition(state, 'ProposalStable')).toMatchObject({
          status: 'True',
          reason: 'ProposalFrozen',
        });
      });

      it('does not freeze a first proposal made in Enforce without a refused policy when the status saying so was never written', async () => {
        // Created in Enforce (forced): the API server refuses web's objects, and the status of that first
        // reconcile is not written (refused too; a leader that stopped before writing it leaves the same).
        const s = dueForEnforce('Enforce');
        const created = { ...s, spec: { ...s.spec, enforce: { force: true } }, status: undefined };
        const first = await start([created], {
          ...objects,
          [resourcePath('LearnedEdgeSet')]: [learnedGraph()],
        });
        first.state.failApply.add('microseg-web');
        first.state.failApply.add('shop');
        first.state.failEdgeSets = false;
        await first.controller.reconcile('shop').catch(() => undefined);
        const taken = first.state.taken as { kind: string; metadata: { name: string }; spec?: unknown }[];
        const proposals = taken
          .filter((b) => b.kind === 'ProposedNetworkPolicy' && b.spec !== undefined)
          .map((b) => ({ ...b, metadata: { ...b.metadata, resourceVersion: '3' } }));
        const policies = taken
          .filter((b) => b.kind === 'NetworkPolicy')
          .map((b) => ({ ...b, metadata: { ...b.metadata, resourceVersion: '3' } }));
        expect(proposals.map((p) => p.metadata.name).sort()).toEqual([
          'microseg-api',
          'microseg-default-deny',
        ]);
        expect(policies.map((p) => p.metadata.name)).toEqual(['microseg-api']);
        expect(segmentationStatuses(first.state)).toHaveLength(1);
        expect(taken.filter((b) => b.kind === 'Segmentation')).toEqual([]);
        // The next reconcile (the retry, or a new leader) finds api's and the deny's in place, and no
        // status (only the finalizer the first one added): web's is still the proposal's, tried again,
        // and the deny waits for it.
        expect(first.state.patches).toContainEqual({
          metadata: { finalizers: ['microseg.dev/cleanup'], resourceVersion: '1' },
        });
        const begun = {
          ...created,
          metadata: { ...created.metadata, resourceVersion: '2', finalizers: ['microseg.dev/cleanup'] },
        };
        const { controller, state } = await start([begun], {
          ...objects,
          [resourcePath('LearnedEdgeSet')]: [learnedGraph()],
          [resourcePath('ProposedNetworkPolicy')]: proposals,
          [resourcePath('NetworkPolicy')]: policies,
        });
        state.failApply.add('microseg-web');
        state.failEdgeSets = false;
        for (let i = 0; i < 2; i++) {
          const before = state.applied.length;
          await controller.reconcile('shop');
          const tried = state.applied
            .slice(before)
            .filter((a) => a.subresource === undefined && a.body.kind !== 'Segmentation')
            .map((a) => `${a.body.kind} ${(a.body.metadata as { name: string }).name}`);
          expect(tried).toContain('ProposedNetworkPolicy microseg-web');
          expect(tried).not.toContain('NetworkPolicy microseg-default-deny');
          expect(condition(state, 'ProposalStable')).toMatchObject({
            status: 'False',
            reason: 'ApplyFailed',
          });
        }
        const npTaken = () =>
          state.taken
            .filter((b) => (b as { kind: string }).kind === 'NetworkPolicy')
            .map((b) => (b as { metadata: { name: string } }).metadata.name);
        expect(npTaken()).not.toContain('microseg-default-deny');
        // Lifted: web's objects, then the deny; frozen whole.
        state.failApply.clear();
        await controller.reconcile('shop');
        expect(npTaken().slice(-2)).toEqual(['microseg-web', 'microseg-default-deny']);
        expect(condition(state, 'ProposalStable')).toMatchObject({
          status: 'True',
          reason: 'ProposalFrozen',
        });
      });

      it('is not stable while one no longer proposed could not be deleted: a promotion would freeze it', async () => {
        const old = proposedOfShop('microseg-old', {
          podSelector: { matchLabels: { app: 'old' } },
          policyTypes: ['Ingress'],
        });
        const { controller, state } = await learning(
          [old],
          (state) => state.failDelete.add(resourcePath('ProposedNetworkPolicy', 'shop', 'microseg-old')),
          '0s',
        );
        expect(condition(state, 'Degraded').message).toBe(
          'delete ProposedNetworkPolicy shop/microseg-old: etcdserver: request timed out',
        );
        expect(condition(state, 'ProposalStable')).toMatchObject({
          status: 'False',
          reason: 'ApplyFailed',
          message: `1 ProposedNetworkPolicies no longer proposed could not be deleted (shop/microseg-old; see Degraded)${notInPlace}`,
        });
        state.failDelete.clear();
        await controller.reconcile('shop');
        expect(condition(state, 'Degraded')).toMatchObject({ status: 'False', reason: 'AsExpected' });
        expect(condition(state, 'ProposalStable')).toMatchObject({
          status: 'True',
          reason: 'ProposalUnchanged',
        });
      });
    });

    describe('a namespace that leaves the selection', () => {
      const ours = { 'app.kubernetes.io/managed-by': 'microseg', 'microseg.dev/segmentation': 'shop' };
      const spec = (app?: string) =>
        app === undefined
          ? { podSelector: {}, policyTypes: ['Ingress', 'Egress'], ingress: [], egress: [] }
          : {
              podSelector: { matchLabels: { app } },
              policyTypes: ['Ingress'],
              ingress: [{ from: [{ podSelector: { matchLabels: { app: 'web' } } }] }],
              egress: [],
            };
      const object = (kind: string, namespace: string, name: string, app?: string) => ({
        apiVersion: kind === 'NetworkPolicy' ? 'networking.k8s.io/v1' : 'microseg.dev/v1alpha1',
        kind,
        metadata: { name, namespace, labels: ours, resourceVersion: '1' },
        spec: spec(app),
      });
      /** The frozen proposal, and its NetworkPolicies, of shop and of pay, which the selector left. */
      const inBoth = (kind: string) => [
        object(kind, 'shop', 'microseg-api', 'api'),
        object(kind, 'shop', 'microseg-default-deny'),
        object(kind, 'pay', 'microseg-ledger', 'ledger'),
        object(kind, 'pay', 'microseg-default-deny'),
      ];
      const namespaces = [
        { metadata: { name: 'shop', labels: { 'kubernetes.io/metadata.name': 'shop' } } },
        { metadata: { name: 'pay', labels: { 'kubernetes.io/metadata.name': 'pay' } } },
      ];

      it('in Enforce, keeps the NetworkPolicy of a frozen proposal deleted by hand while its namespace stays denied', async () => {
        // web's ProposedNetworkPolicy was deleted by hand; its NetworkPolicy and shop's deny are in place.
        const frozen = [
          object('ProposedNetworkPolicy', 'shop', 'microseg-api', 'api'),
          object('ProposedNetworkPolicy', 'shop', 'microseg-default-deny'),
        ];
        const enforced = [
          object('NetworkPolicy', 'shop', 'microseg-api', 'api'),
          object('NetworkPolicy', 'shop', 'microseg-default-deny'),
          object('NetworkPolicy', 'shop', 'microseg-web', 'web'),
        ];
        const { controller, state, recorded } = await start([dueForEnforce('Enforce')], {
          ...objects,
          [resourcePath('LearnedEdgeSet')]: [learnedGraph()],
          [resourcePath('ProposedNetworkPolicy')]: frozen,
          [resourcePath('NetworkPolicy')]: enforced,
        });
        state.failEdgeSets = false;
        controller.startLeading();
        await expect.poll(() => state.applied.some((a) => a.subresource === 'status')).toBe(true);
        await controller.reconcile('shop');
        // Deleted, it would leave the deny alone to select web's pods: all their traffic cut off.
        expect(state.deleted).toEqual([]);
        expect(recorded).toContainEqual({
          type: 'Warning',
          reason: 'PolicyKept',
          message:
            'NetworkPolicy shop/microseg-web is kept, though it is not in the frozen proposal (its ProposedNetworkPolicy is gone) and no policy of the proposal selects its pods: without it the default deny of shop would cut off what it allows (set spec.mode: Learn to propose afresh)',
        });
        expect(lastStatus(state).enforcedPolicies).toBe(3);
      });

      it('in Enforce, prunes a NetworkPolicy not in the frozen proposal whose pods a policy of the proposal selects', async () => {
        // Left from an earlier proposal, selecting api's pods, which microseg-api of the proposal selects:
        // kept, it would add to what the proposal allows api.
        const frozen = [
          object('ProposedNetworkPolicy', 'shop', 'microseg-api', 'api'),
          object('ProposedNetworkPolicy', 'shop', 'microseg-default-deny'),
        ];
        const enforced = [
          object('NetworkPolicy', 'shop', 'microseg-api', 'api'),
          object('NetworkPolicy', 'shop', 'microseg-default-deny'),
          object('NetworkPolicy', 'shop', 'microseg-api-old', 'api'),
          // The same pods by another selector: every pod it selects, microseg-api selects too.
          {
            ...object('NetworkPolicy', 'shop', 'microseg-api-v1', 'api'),
            spec: {
              ...spec('api'),
              podSelector: {
                matchExpressions: [{ key: 'app', operator: 'In', values: ['api', 'api-canary'] }],
              },
            },
          },
        ];
        const { controller, state, recorded } = await start([dueForEnforce('Enforce')], {
          ...objects,
          [resourcePath('LearnedEdgeSet')]: [learnedGraph()],
          [resourcePath('ProposedNetworkPolicy')]: frozen,
          [resourcePath('NetworkPolicy')]: enforced,
        });
        state.failEdgeSets = false;
        controller.startLeading();
        await expect.poll(() => state.applied.some((a) => a.subresource === 'status')).toBe(true);
        await controller.reconcile('shop');
        expect(new Set(state.deleted)).toEqual(
          new Set([
            resourcePath('NetworkPolicy', 'shop', 'microseg-api-old'),
            resourcePath('NetworkPolicy', 'shop', 'microseg-api-v1'),
          ]),
        );
        expect(recorded.filter((e) => e.reason === 'PolicyKept')).toEqual([]);
      });

      it('in Enforce, does not enforce at once the proposal written anew for a namespace that came back', async () => {
        // shop left the selection while enforced (its policies were pruned) and is selected again; the
        // frozen proposal holds only pay's, which left in turn. shop's proposal is written from what was
        // learned: never audited, it waits for a clean audit rather than being enforced at once.
        const seg = dueForEnforce('Enforce');
        const hourAgo = new Date(Date.now() - 3_600_000).toISOString();
        (seg.status as unknown as { conditions: unknown[] }).conditions.push({
          type: 'Enforced',
          status: 'True',
          reason: 'PoliciesApplied',
          message: 'the proposal is enforced',
          lastTransitionTime: hourAgo,
        });
        (seg.status as unknown as { enforcedPolicies: number }).enforcedPolicies = 2;
        // The audit was of the proposal enforced then, pay's and shop's.
        (seg.status as unknown as { proposal: { hash: string } }).proposal = { hash: 'shop-and-pay' };
        const inPay = (kind: string) => inBoth(kind).filter((o) => o.metadata.namespace === 'pay');
        const { controller, state } = await start([seg], {
          ...objects,
          [resourcePath('Namespace')]: namespaces,
          [resourcePath('LearnedEdgeSet')]: [learnedGraph()],
          [resourcePath('ProposedNetworkPolicy')]: inPay('ProposedNetworkPolicy'),
          [resourcePath('NetworkPolicy')]: inPay('NetworkPolicy'),
        });
        state.failEdgeSets = false;
        controller.startLeading();
        await expect.poll(() => state.applied.some((a) => a.subresource === 'status')).toBe(true);
        await controller.reconcile('shop');
        const applied = (kind: string) =>
          state.applied.filter(
            (a) => a.body.kind === kind && (a.body.metadata as { namespace?: string }).namespace === 'shop',
          );
        expect(applied('ProposedNetworkPolicy').length).toBeGreaterThan(0);
        expect(applied('NetworkPolicy')).toEqual([]);
        const enforced = (lastStatus(state).conditions as unknown as { type: string; reason: string }[]).find(
          (c) => c.type === 'Enforced',
        );
        expect(enforced?.reason).toBe('EnforceRefused');
      });

      for (const mode of ['Enforce', 'Audit'])
        it(`in ${mode}, takes its policies out: they are no longer this Segmentation's to enforce`, async () => {
          const { controller, state } = await start([dueForEnforce(mode)], {
            ...objects,
            [resourcePath('Namespace')]: namespaces,
            [resourcePath('LearnedEdgeSet')]: [learnedGraph()],
            [resourcePath('ProposedNetworkPolicy')]: inBoth('ProposedNetworkPolicy'),
            [resourcePath('NetworkPolicy')]: mode === 'Enforce' ? inBoth('NetworkPolicy') : [],
          });
          state.failEdgeSets = false;
          controller.startLeading();
          await expect.poll(() => state.applied.some((a) => a.subresource === 'status')).toBe(true);
          await controller.reconcile('shop');
          const status = lastStatus(state);
          expect(status.namespaces).toEqual(['shop']);
          // Nothing of pay is written again; its NetworkPolicies (the deny first) and proposal go.
          expect(
            state.applied.filter((a) => (a.body.metadata as { namespace?: string }).namespace === 'pay'),
          ).toEqual([]);
          const inPay = (kind: string) =>
            state.deleted.filter((d) => d.startsWith(resourcePath(kind, 'pay')));
          expect(new Set(inPay('ProposedNetworkPolicy'))).toEqual(
            new Set([
              resourcePath('ProposedNetworkPolicy', 'pay', 'microseg-default-deny'),
              resourcePath('ProposedNetworkPolicy', 'pay', 'microseg-ledger'),
            ]),
          );
          // The first reconcile's (the fake's cache never sees the deletions): the deny first.
          expect(inPay('NetworkPolicy').slice(0, 2)).toEqual(
            mode === 'Enforce'
              ? [
                  resourcePath('NetworkPolicy', 'pay', 'microseg-default-deny'),
                  resourcePath('NetworkPolicy', 'pay', 'microseg-ledger'),
                ]
              : [],
          );
          // shop's stay as they are, frozen.
          expect(state.deleted.filter((d) => d.includes('/namespaces/shop/'))).toEqual([]);
          expect(status.policies).toBe(2);
        });
    });

    it('are none without a default deny: nothing selects them, nothing cuts them off', async () => {
      const { state, recorded } = await learned({ mode: 'Audit', policy: { defaultDeny: false } });
      const status = lastStatus(state);
      expect(status.unobserved).toBe(0);
      expect(status.unobservedWorkloads).toEqual([]);
      const since = (status.audit as { since: string }).since;
      expect(auditClean(status)).toBe(
        `no flow would be blocked so far; the 1h audit window started at ${since}`,
      );
      expect(unobserved(recorded)).toEqual([]);
    });
  });
});
