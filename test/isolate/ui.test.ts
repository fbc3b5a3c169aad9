import { describe, expect, it } from 'vitest';
import type { Isolation } from '../../src/isolate/api.ts';
import {
  ISOLATION_FINALIZER,
  QUARANTINE_LABEL,
  REARM_ANNOTATION,
  parseIsolationSpec,
} from '../../src/isolate/api.ts';
import { paths } from '../../src/isolate/kube.ts';
import { isolationFromFlags } from '../../src/isolate/cli.ts';
import { IsolationReconciler } from '../../src/isolate/reconciler.ts';
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

  it("names the spec's fields in its refusals, never the CLI's flags (the page has none)", () => {
    const refusal = (w: string, apiGroup?: string) => {
      try {
        isolationForWorkload(w, 'r', 'u', apiGroup);
      } catch (e) {
        expect(e, w).toBeInstanceOf(IsolationRequestError);
        return [(e as IsolationRequestError).status, (e as IsolationRequestError).message];
      }
      return undefined;
    };
    const cases: [string, string | undefined, string][] = [
      // A label value the CLI's --selector parser refused in its own words.
      [
        'ci/Workload/bad name',
        undefined,
        "cannot isolate ci/Workload/bad name: spec.target.podSelector.matchLabels: value \"bad name\": must be empty or 63 characters at most, alphanumeric, '-', '_' or '.', starting and ending alphanumeric",
      ],
      // An API group that does not spell KIND.GROUP/NAME, refused as --workload "Cluster./pg".
      [
        'db/Cluster/pg',
        '',
        'cannot isolate db/Cluster/pg: spec.target.workload.apiGroup "" is not an API group (a DNS subdomain such as postgresql.cnpg.io, at most 253 characters)',
      ],
      // A pod name refused as `pod "shop/Bad_Name" must be namespace/name`, which it is.
      [
        'shop/Pod/Bad_Name',
        undefined,
        'cannot isolate shop/Pod/Bad_Name: spec.target.pods[0] "Bad_Name" is not a valid pod name',
      ],
      // A kind with a dot was read as KIND.GROUP: Cluster in group x.postgresql.cnpg.io, another target.
      [
        'db/Cluster.x/pg',
        'postgresql.cnpg.io',
        "cannot isolate db/Cluster.x/pg: spec.target.workload.kind \"Cluster.x\" is not a kind: one of Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, Rollout, CloneSet, or a custom resource's kind such as Cluster (a letter, then letters, digits or '-'; at most 63 characters)",
      ],
    ];
    for (const [w, group, message] of cases) {
      expect(refusal(w, group), w).toEqual([400, message]);
      expect(message).not.toMatch(/--/);
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

  describe('re-arming a released Isolation of a CronJob written without its runs to come', () => {
    const RELEASED = { phase: 'Released', releasedAt: '2026-11-28T17:00:00Z' } as const;
    /** What `microseg isolate --workload KIND/NAME` (no --include-future) writes, released since. */
    const releasedCli = (kube: FakeKube, workload: string): Isolation => {
      const cli = isolationFromFlags({ targets: [], namespace: 'batch', workload, reason: 'from the CLI' });
      return kube.put(paths.isolations('batch'), {
        ...cli,
        metadata: { ...cli.metadata, finalizers: [ISOLATION_FINALIZER] },
        status: RELEASED,
      }) as unknown as Isolation;
    };
    const patches = (kube: FakeKube) => kube.log.filter((l) => l.startsWith('PATCH'));

    it("the page's Isolate re-arms it covering the CronJob's runs to come, in one write", async () => {
      const kube = new FakeKube();
      const actions = isolationActions({ kube, persister: new Persister(kube, new KnownIsolations()) });
      const before = releasedCli(kube, 'CronJob/nightly');
      expect(before.spec?.target).toEqual({ workload: { kind: 'CronJob', name: 'nightly' } });
      const again = await actions.isolate('batch/CronJob/nightly', 'again', 'alice');
      expect(again.metadata.name).toBe(before.metadata.name);
      expect(again.spec?.target).toEqual({
        workload: { kind: 'CronJob', name: 'nightly', includeFuture: true },
      });
      expect(Date.parse(again.metadata.annotations![REARM_ANNOTATION]!)).toBeGreaterThan(
        Date.parse(RELEASED.releasedAt),
      );
      // The rest of the spec is the CLI's, as a re-arm keeps it.
      expect(again.spec).toMatchObject({ reason: 'from the CLI' });
      expect(again.metadata.generation).toBe(2);
      expect(patches(kube)).toEqual([`PATCH ${paths.isolation('batch', before.metadata.name)}`]);
    });

    it('also when the CLI gave the CronJob its own API group (--workload CronJob.batch/NAME)', async () => {
      const kube = new FakeKube();
      const actions = isolationActions({ kube, persister: new Persister(kube, new KnownIsolations()) });
      const before = releasedCli(kube, 'CronJob.batch/nightly');
      expect(before.spec?.target).toEqual({
        workload: { kind: 'CronJob', apiGroup: 'batch', name: 'nightly' },
      });
      const again = await actions.isolate('batch/CronJob/nightly', 'again', 'alice');
      expect(again.metadata.name).toBe(before.metadata.name);
      expect(again.spec?.target).toEqual({
        workload: { kind: 'CronJob', apiGroup: 'batch', name: 'nightly', includeFuture: true },
      });
    });

    it('leaves any other target as it is: a Deployment, a hand-edited target, an alert-style re-arm', async () => {
      const kube = new FakeKube();
      const persister = new Persister(kube, new KnownIsolations());
      const actions = isolationActions({ kube, persister });
      // A Deployment's: the page asks for no pods to come either.
      releasedCli(kube, 'Deployment/cart');
      const cart = await actions.isolate('batch/Deployment/cart', 'again', 'alice');
      expect(cart.spec?.target).toEqual({ workload: { kind: 'Deployment', name: 'cart' } });
      expect(cart.metadata.annotations?.[REARM_ANNOTATION]).toBeDefined();
      // The CronJob's Isolation edited by hand to target pods: the re-arm does not add a workload to it.
      const edited = releasedCli(kube, 'CronJob/nightly');
      kube.put(paths.isolations('batch'), {
        ...edited,
        spec: { ...edited.spec, target: { pods: ['nightly-100-abcde'] } },
      } as never);
      const pods = await actions.isolate('batch/CronJob/nightly', 'again', 'alice');
      expect(pods.spec?.target).toEqual({ pods: ['nightly-100-abcde'] });
      expect(pods.metadata.annotations?.[REARM_ANNOTATION]).toBeDefined();
      // Without the page's option (as the alert receivers call it), a re-arm writes the annotations only.
      const other = new FakeKube();
      const plain = releasedCli(other, 'CronJob/nightly');
      const r = await new Persister(other, new KnownIsolations()).isolate(
        isolationForWorkload('batch/CronJob/nightly', 'again', 'alice'),
      );
      expect(r.outcome).toBe('rearmed');
      const stored = other.get(paths.isolation('batch', plain.metadata.name)) as unknown as Isolation;
      expect(stored.spec?.target).toEqual({ workload: { kind: 'CronJob', name: 'nightly' } });
    });

    it('the reconciler then isolates a run that starts after the re-arm, not only the run going then', async () => {
      const kube = new FakeKube();
      kube.put(paths.namespaces(), { metadata: { name: 'batch', labels: {} } });
      kube.put('/apis/batch/v1/namespaces/batch/cronjobs', {
        apiVersion: 'batch/v1',
        kind: 'CronJob',
        metadata: { name: 'nightly', namespace: 'batch', uid: 'cj-uid' },
      });
      const run = (job: string, pod: string, ip: string) => {
        kube.put(paths.jobs('batch'), {
          apiVersion: 'batch/v1',
          kind: 'Job',
          metadata: {
            name: job,
            namespace: 'batch',
            ownerReferences: [
              { apiVersion: 'batch/v1', kind: 'CronJob', name: 'nightly', uid: 'cj-uid', controller: true },
            ],
          },
        });
        kube.put(paths.pods('batch'), {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: {
            name: pod,
            namespace: 'batch',
            labels: { app: 'nightly' },
            ownerReferences: [
              { apiVersion: 'batch/v1', kind: 'Job', name: job, uid: `${job}-uid`, controller: true },
            ],
          },
          spec: { containers: [{ name: 'c' }] },
          status: { phase: 'Running', podIP: ip },
        });
      };
      const reconciler = new IsolationReconciler({ kube });
      const actions = isolationActions({
        kube,
        persister: new Persister(kube, new KnownIsolations(), (_ns, _name, iso) => {
          if (iso) reconciler.observe(iso);
        }),
      });
      try {
        const iso = releasedCli(kube, 'CronJob/nightly');
        const key = `batch/${iso.metadata.name}`;
        reconciler.observe(iso);
        const label = (pod: string) =>
          (kube.get(paths.pod('batch', pod)) as { metadata: { labels: Record<string, string> } }).metadata
            .labels[QUARANTINE_LABEL];
        run('nightly-100', 'nightly-100-abcde', '10.0.0.1');
        await actions.isolate('batch/CronJob/nightly', 'again', 'alice');
        await reconciler.reconcile(key);
        expect(label('nightly-100-abcde')).toBe(iso.metadata.name);
        // The next run, after the re-arm took effect: its pod is isolated too.
        run('nightly-200', 'nightly-200-fghij', '10.0.0.2');
        await reconciler.reconcile(key);
        expect(label('nightly-200-fghij')).toBe(iso.metadata.name);
      } finally {
        await reconciler.checks.idle();
        await reconciler.stop();
      }
    });
  });
});
