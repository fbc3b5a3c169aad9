import { describe, expect, it } from 'vitest';
import type { Isolation } from '../../src/isolate/api.ts';
import { ISOLATION_FINALIZER, parseIsolationSpec } from '../../src/isolate/api.ts';
import { paths } from '../../src/isolate/kube.ts';
import { isolationFromFlags } from '../../src/isolate/cli.ts';
import { IsolationRequestError, isolationActions, isolationForWorkload } from '../../src/isolate/ui.ts';
import { KnownIsolations, Persister } from '../../src/isolate/webhooks.ts';
import { FakeKube } from './fake-kube.ts';

describe("the web page's Isolate and Release buttons", () => {
  it('turns a graph workload into the Isolation `microseg isolate` writes for it', () => {
    const iso = isolationForWorkload('shop/Deployment/cart', 'shell in container', 'token');
    expect(iso.metadata).toMatchObject({
      namespace: 'shop',
      labels: { 'app.kubernetes.io/managed-by': 'microseg', 'microseg.dev/trigger': 'web' },
      finalizers: [ISOLATION_FINALIZER],
    });
    expect(iso.metadata.name).toMatch(/^iso-deployment-cart-[0-9a-f]{6}$/);
    expect(iso.spec).toMatchObject({
      target: { workload: { kind: 'Deployment', name: 'cart' } },
      reason: 'shell in container',
      requestedBy: 'web page (token)',
    });
    expect(parseIsolationSpec(iso.metadata.name, iso.spec).ok).toBe(true);
    // A second click names the same object.
    expect(isolationForWorkload('shop/Deployment/cart', 'again', 'x').metadata.name).toBe(iso.metadata.name);
    // A bare pod is isolated by name; no reason given says who did it.
    const pod = isolationForWorkload('shop/Pod/debug', '  ', 'alice');
    expect(pod.spec).toMatchObject({
      target: { pods: ['debug'] },
      reason: 'isolated from the web page by alice',
    });
  });

  it('isolates an Argo Rollout, an OpenKruise CloneSet and a CronJob as workload targets', () => {
    for (const kind of ['Rollout', 'CloneSet', 'CronJob']) {
      const iso = isolationForWorkload(`app/${kind}/web`, undefined, 'alice');
      expect(iso.metadata.namespace).toBe('app');
      // A CronJob's later runs too: each run's pods are new, and between runs it has none.
      expect(iso.spec?.target).toEqual({
        workload: { kind, name: 'web', ...(kind === 'CronJob' ? { includeFuture: true } : {}) },
      });
      expect(parseIsolationSpec(iso.metadata.name, iso.spec).ok).toBe(true);
      // The CLI names the same object, with --include-future or without.
      const cli = isolationFromFlags({ targets: [], namespace: 'app', workload: `${kind}/web`, reason: 'r' });
      expect(cli.metadata.name).toBe(iso.metadata.name);
    }
  });

  it("isolates a custom resource's workload in the API group its pods give", () => {
    const iso = isolationForWorkload('db/Cluster/pg', 'exfiltration', 'alice', 'postgresql.cnpg.io');
    expect(iso.metadata.namespace).toBe('db');
    expect(iso.spec?.target).toEqual({
      workload: { kind: 'Cluster', apiGroup: 'postgresql.cnpg.io', name: 'pg' },
    });
    expect(parseIsolationSpec(iso.metadata.name, iso.spec).ok).toBe(true);
    // The CLI names the same object.
    const cli = isolationFromFlags({
      targets: [],
      namespace: 'db',
      workload: 'Cluster.postgresql.cnpg.io/pg',
      reason: 'r',
    });
    expect(cli.metadata.name).toBe(iso.metadata.name);
    // A group the API server would refuse is a request error, not a 500 or a refused write.
    const err = (() => {
      try {
        isolationForWorkload('db/Cluster/pg', 'r', 'u', 'apps');
      } catch (e) {
        return e as IsolationRequestError;
      }
    })();
    expect([err?.status, err?.message]).toEqual([
      400,
      'cannot isolate db/Cluster/pg: spec.target.workload.apiGroup "apps" is not a custom resource\'s API group (those have a dot, as postgresql.cnpg.io has), and Cluster is not one of Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, Rollout, CloneSet',
    ]);
  });

  it('refuses what an Isolation cannot target, as a request error', () => {
    const kindErr = (() => {
      try {
        isolationForWorkload('shop/Widget/w', 'r', 'u');
      } catch (e) {
        return e as IsolationRequestError;
      }
    })();
    expect(kindErr?.message).toBe(
      'cannot isolate shop/Widget/w: Widget is not one of Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, Rollout, CloneSet, and no pod in the cluster names a custom resource Widget w as its controller (its API group is not known)',
    );
    for (const w of ['shop/Widget/w', 'shop/Deployment', 'shop//x', 'Shop/Deployment/cart']) {
      const err = (() => {
        try {
          isolationForWorkload(w, 'r', 'u');
        } catch (e) {
          return e;
        }
      })();
      expect(err, w).toBeInstanceOf(IsolationRequestError);
      expect((err as IsolationRequestError).status).toBe(400);
    }
  });

  it('creates the Isolation once, tells the reconciler, returns it; release deletes it', async () => {
    const kube = new FakeKube();
    const persisted: string[] = [];
    const actions = isolationActions({
      kube,
      persister: new Persister(kube, new KnownIsolations(), (ns, name, created) =>
        persisted.push(`${ns}/${name}${created ? ' (created)' : ''}`),
      ),
    });
    const iso = await actions.isolate('shop/Deployment/cart', 'why', 'token');
    const path = paths.isolation('shop', iso.metadata.name);
    expect(iso.metadata.resourceVersion).toBeDefined();
    expect(kube.get(path)?.spec).toEqual(iso.spec);
    expect(persisted).toEqual([`shop/${iso.metadata.name} (created)`]);
    const stored = () => kube.get(path) as unknown as Isolation;
    // Isolating again changes nothing and answers with the object as it is.
    kube.put(paths.isolations('shop'), { ...stored(), status: { phase: 'Isolated' } } as never);
    const again = await actions.isolate('shop/Deployment/cart', 'why', 'token');
    expect(again.status?.phase).toBe('Isolated');
    expect(kube.log.filter((l) => l.startsWith('POST'))).toHaveLength(1);
    // Being released (deleted, waiting for its finalizer): the page is told to wait.
    kube.put(paths.isolations('shop'), {
      ...stored(),
      metadata: { ...stored().metadata, deletionTimestamp: '2026-11-28T17:00:00Z' },
    });
    await expect(actions.isolate('shop/Deployment/cart', 'why', 'token')).rejects.toMatchObject({
      status: 409,
    });
    expect(await actions.release('shop', iso.metadata.name)).toBe(true);
    expect(kube.get(path)).toBeUndefined();
    expect(await actions.release('shop', iso.metadata.name)).toBe(false);
  });

  it('re-arms a released Isolation', async () => {
    const kube = new FakeKube();
    const actions = isolationActions({ kube, persister: new Persister(kube, new KnownIsolations()) });
    const iso = isolationForWorkload('shop/Deployment/cart', 'why', 'token');
    kube.put(paths.isolations('shop'), {
      ...iso,
      status: { phase: 'Released', releasedAt: '2026-11-28T17:00:00Z' },
    } as never);
    const again = await actions.isolate('shop/Deployment/cart', 'why', 'token');
    expect(Date.parse(again.metadata.annotations!['microseg.dev/rearmed-at']!)).toBeGreaterThan(
      Date.parse('2026-11-28T17:00:00Z'),
    );
  });
});
