// Watch semantics that only a real apiserver + etcd show: resuming a watch from a resourceVersion
// across an apiserver restart, 410 Gone for a compacted resourceVersion, and an informer that
// recovers from it by relisting. These tests restart the server, so they start their own cluster.
import { CoreV1Api, type KubeConfig, makeInformer, type V1ConfigMap, Watch } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, createNamespace, eventually, startCluster } from '../cluster/index.ts';

let cluster: Cluster;
let kc: KubeConfig;
let core: CoreV1Api;

beforeAll(async () => {
  cluster = await startCluster();
  kc = await cluster.kubeConfig();
  core = kc.makeApiClient(CoreV1Api);
});

afterAll(async () => {
  await cluster?.stop();
});

interface WatchEvent {
  type: string;
  name: string | undefined;
  resourceVersion?: string;
  code?: number;
  reason?: string;
  message?: string;
}

/** Opens a raw watch and collects its events until `stop()`; `ended` settles with the done-callback error. */
async function openWatch(path: string, resourceVersion: string, timeoutSeconds?: number) {
  const events: WatchEvent[] = [];
  const state = { done: false };
  let resolveEnded: (err: unknown) => void = () => {};
  const ended = new Promise<unknown>((resolve) => (resolveEnded = resolve));
  const req = await new Watch(kc).watch(
    path,
    { resourceVersion, timeoutSeconds },
    (
      type: string,
      obj: {
        metadata?: { name?: string; resourceVersion?: string };
        code?: number;
        reason?: string;
        message?: string;
      },
    ) => {
      if (type === 'BOOKMARK') return;
      events.push({
        type,
        name: obj.metadata?.name,
        ...(obj.metadata?.resourceVersion ? { resourceVersion: obj.metadata.resourceVersion } : {}),
        ...(obj.code === undefined ? {} : { code: obj.code, reason: obj.reason, message: obj.message }),
      });
    },
    (err: unknown) => {
      state.done = true;
      resolveEnded(err ?? null);
    },
  );
  return { events, ended, state, stop: () => req.abort() };
}

const cm = (name: string): V1ConfigMap => ({ metadata: { name }, data: { k: name } });

describe('watch resumption', () => {
  it('a watch resumed from its last resourceVersion sees exactly the later changes', async () => {
    const ns = 'resume';
    await createNamespace(kc, ns);
    await core.createNamespacedConfigMap({ namespace: ns, body: cm('one') });
    const rv = (await core.listNamespacedConfigMap({ namespace: ns })).metadata!.resourceVersion!;
    const path = `/api/v1/namespaces/${ns}/configmaps`;

    // the server ends this watch after one second, as it ends every watch sooner or later
    const first = await openWatch(path, rv, 1);
    await core.createNamespacedConfigMap({ namespace: ns, body: cm('two') });
    await eventually('first watch ended', () => first.state.done, 5_000).catch((e: unknown) => {
      console.log('DBG', JSON.stringify(first.events), first.state);
      throw e;
    });
    expect(first.events.map((e) => `${e.type} ${e.name}`)).toEqual(['ADDED two']);
    const lastSeen = first.events.at(-1)!.resourceVersion!;

    await core.createNamespacedConfigMap({ namespace: ns, body: cm('three') });
    await core.deleteNamespacedConfigMap({ namespace: ns, name: 'one' });
    const resumed = await openWatch(path, lastSeen);
    await eventually('two events', () => resumed.events.length >= 2);
    resumed.stop();
    expect(resumed.events.map((e) => `${e.type} ${e.name}`)).toEqual(['ADDED three', 'DELETED one']);
  });

  it('after an apiserver restart a pre-restart resourceVersion is 410 Expired, and a fresh list resumes', async () => {
    const ns = 'restart';
    await createNamespace(kc, ns);
    await core.createNamespacedConfigMap({ namespace: ns, body: cm('before') });
    const rv = (await core.listNamespacedConfigMap({ namespace: ns })).metadata!.resourceVersion!;
    const path = `/api/v1/namespaces/${ns}/configmaps`;
    const open = await openWatch(path, rv);

    const pidBefore = cluster.apiserverPid();
    await cluster.restart();
    expect(cluster.apiserverPid()).not.toBe(pidBefore);
    // the old connection ends with the old process
    await eventually('old watch ended', () => open.state.done);

    // the new server's watch cache starts at the current etcd revision, so older versions are gone
    const stale = await openWatch(path, rv);
    await stale.ended;
    expect(stale.events).toHaveLength(1);
    expect(stale.events[0]).toMatchObject({ type: 'ERROR', code: 410, reason: 'Expired' });
    expect(stale.events[0]!.message).toMatch(new RegExp(`^too old resource version: ${rv} \\(\\d+\\)$`));

    // the data survived in etcd; a relist gives a version to resume from
    const list = await core.listNamespacedConfigMap({ namespace: ns });
    expect(list.items.map((c) => c.metadata!.name)).toEqual(['before']);
    const fresh = await openWatch(path, list.metadata!.resourceVersion!);
    await core.createNamespacedConfigMap({ namespace: ns, body: cm('after') });
    await eventually('ADDED after', () => fresh.events.length >= 1);
    fresh.stop();
    expect(fresh.events.map((e) => `${e.type} ${e.name}`)).toEqual(['ADDED after']);
  });
});

describe('informers', () => {
  it('an informer reconnects after the restart and keeps its cache in step', async () => {
    const ns = 'informer';
    await createNamespace(kc, ns);
    await core.createNamespacedConfigMap({ namespace: ns, body: cm('a') });
    const informer = makeInformer(kc, `/api/v1/namespaces/${ns}/configmaps`, () =>
      core.listNamespacedConfigMap({ namespace: ns }),
    );
    const adds: string[] = [];
    const deletes: string[] = [];
    let errors = 0;
    informer.on('add', (o) => adds.push(o.metadata!.name!));
    informer.on('delete', (o) => deletes.push(o.metadata!.name!));
    // like a controller: on a connection error, start again after a short delay (keeps its resourceVersion)
    informer.on('error', () => {
      errors++;
      setTimeout(() => void informer.start(), 200);
    });
    await informer.start();
    await eventually('a in cache', () => informer.get('a', ns));

    await cluster.restart();
    await core.createNamespacedConfigMap({ namespace: ns, body: cm('b') });
    await eventually('b in cache', () => informer.get('b', ns), 20_000);
    await informer.stop();

    expect(
      informer
        .list(ns)
        .map((o) => o.metadata!.name)
        .sort(),
    ).toEqual(['a', 'b']);
    expect(adds.sort()).toEqual(['a', 'b']);
    expect(errors).toBeGreaterThanOrEqual(1);
  });
});

describe('410 Gone', () => {
  it('a watch from a compacted resourceVersion gets 410, and an informer recovers by relisting', async () => {
    const ns = 'gone';
    await createNamespace(kc, ns);
    await core.createNamespacedConfigMap({ namespace: ns, body: cm('keep') });
    await core.createNamespacedConfigMap({ namespace: ns, body: cm('doomed') });

    const informer = makeInformer(kc, `/api/v1/namespaces/${ns}/configmaps`, () =>
      core.listNamespacedConfigMap({ namespace: ns }),
    );
    const deleted: string[] = [];
    const added: string[] = [];
    informer.on('delete', (o) => deleted.push(o.metadata!.name!));
    informer.on('add', (o) => added.push(o.metadata!.name!));
    await informer.start();
    await eventually('informer synced', () => informer.list(ns).length === 2);
    const staleRV = (informer as unknown as { latestResourceVersion(): string }).latestResourceVersion();
    // the controller goes away; the world changes; history is compacted; the server restarts
    await informer.stop();
    await core.deleteNamespacedConfigMap({ namespace: ns, name: 'doomed' });
    await core.createNamespacedConfigMap({ namespace: ns, body: cm('fresh') });
    const compactedTo = await cluster.compactEtcd();
    expect(Number(compactedTo)).toBeGreaterThan(Number(staleRV));
    await cluster.restart();

    const stale = await cluster.request(
      'GET',
      `/api/v1/namespaces/${ns}/configmaps?watch=true&timeoutSeconds=5&resourceVersion=${staleRV}`,
    );
    expect(stale.status).toBe(200);
    const event = stale.json as { type: string; object: { code: number; reason: string; message: string } };
    expect(event.type).toBe('ERROR');
    expect(event.object).toMatchObject({ code: 410, reason: 'Expired' });
    // a list at the compacted version is refused by etcd itself
    const exact = await cluster.request(
      'GET',
      `/api/v1/namespaces/${ns}/configmaps?resourceVersion=${staleRV}&resourceVersionMatch=Exact`,
    );
    expect(exact.status).toBe(410);
    expect((exact.json as { reason: string }).reason).toBe('Expired');

    // restarting the informer resumes from its stale resourceVersion, gets 410 and relists
    added.length = 0;
    await informer.start();
    await eventually('informer recovered', () => informer.get('fresh', ns) && !informer.get('doomed', ns));
    await informer.stop();
    expect(deleted).toEqual(['doomed']);
    expect(added).toEqual(['fresh']);
    expect(
      informer
        .list(ns)
        .map((o) => o.metadata!.name)
        .sort(),
    ).toEqual(['fresh', 'keep']);
  });
});
