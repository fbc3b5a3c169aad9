/**
 * Isolations edited while in effect, against a real kube-apiserver (which bumps metadata.generation on a
 * spec edit and not on a status write): the outcome of the new spec is said in Events even when the phase
 * stays. And the time to isolate of a reconcile that fails after labelling the first pod (the label of
 * the second refused by a ValidatingAdmissionPolicy): observed once, by the retry. And `microseg isolate
 * --wait` on an Isolation whose status is a Failed of the spec before an edit: it waits for the outcome
 * of the spec as edited.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ClusterHandle,
  createNamespace,
  createPod,
  eventually,
  sharedCluster,
  uniqueName,
} from '../cluster/index.ts';
import type { Isolation } from '../../src/isolate/api.ts';
import { type IsolationController, startIsolationController } from '../../src/isolate/controller.ts';
import { IsolationReconciler } from '../../src/isolate/reconciler.ts';
import { captureIO } from '../../src/cli/io.ts';
import { runCli } from '../../src/cli/main.ts';
import { KubeClient, MERGE_PATCH, paths } from '../../src/isolate/kube.ts';
import { installIsolationCrd, kubectlOk } from '../controller/k8s-helpers.ts';

let cluster: ClusterHandle;
let kc: KubeConfig;
let kube: KubeClient;
let ns: string;
let ctl: IsolationController;

const kubectl = (args: string[], input?: string) => kubectlOk(cluster, args, input);

const getIso = (n: string, name: string) =>
  kube.request<Isolation>({ method: 'GET', path: paths.isolation(n, name) });

async function createIsolation(n: string, name: string, spec: Record<string, unknown>): Promise<void> {
  await kube.request({
    method: 'POST',
    path: paths.isolations(n),
    body: { apiVersion: 'microseg.dev/v1alpha1', kind: 'Isolation', metadata: { name }, spec },
  });
}

/** A responder edits the spec (kubectl edit, a GitOps sync): the API server bumps the generation. */
async function editSpec(n: string, name: string, spec: Record<string, unknown>): Promise<Isolation> {
  const edited = await kube.request<Isolation>({
    method: 'PATCH',
    path: paths.isolation(n, name),
    contentType: MERGE_PATCH,
    body: { spec },
  });
  expect(edited.metadata.generation).toBe(2);
  return edited;
}

/** The Isolation once the controller reported on generation `generation` with `message`. */
function reported(n: string, name: string, generation: number, message: string): Promise<Isolation> {
  return eventually(
    `${name}: ${message} for generation ${generation}`,
    async () => {
      const i = await getIso(n, name);
      return i.status?.observedGeneration === generation && i.status.message === message ? i : undefined;
    },
    30_000,
  );
}

/** The Events on Isolation `name` of reason `reason`: their types and messages, sorted. */
async function eventsOn(n: string, name: string, reason: string): Promise<string[][]> {
  const list = await kube.request<{
    items: {
      involvedObject: { kind: string; name: string };
      reason: string;
      type: string;
      message: string;
    }[];
  }>({ method: 'GET', path: `/api/v1/namespaces/${n}/events` });
  return list.items
    .filter(
      (e) => e.involvedObject.kind === 'Isolation' && e.involvedObject.name === name && e.reason === reason,
    )
    .map((e) => [e.type, e.message])
    .sort((a, b) => (a.join() < b.join() ? -1 : 1));
}

/**
 * Has `r` fail generation 1 of Isolation `name` in `n` (the schema lets a pod name the controller refuses
 * through: `refused`), then, as a responder would, fixes the spec to target `pod` and starts `microseg
 * isolate n/pod --wait` on it. `settled()` says whether the CLI has returned yet.
 */
async function failFixAndWait(r: IsolationReconciler, n: string, name: string, refused: string, pod: string) {
  await createIsolation(n, name, { target: { pods: [refused] }, reason: 'shell' });
  r.observe(await getIso(n, name));
  await r.reconcile(`${n}/${name}`);
  const failed = await getIso(n, name);
  expect([failed.status?.phase, failed.status?.observedGeneration]).toEqual(['Failed', 1]);
  await editSpec(n, name, { target: { pods: [pod] } });
  const io = captureIO();
  let settled = false;
  const waiting = runCli(
    [
      'isolate',
      `${n}/${pod}`,
      '--name',
      name,
      '--reason',
      'shell',
      '--kubeconfig',
      cluster.kubeconfigPath,
      '--wait',
      '--timeout',
      '60s',
    ],
    io,
  ).finally(() => (settled = true));
  return { io, waiting, settled: () => settled };
}

/** The CLI started by failFixAndWait returned 0 and printed that `pod` alone is isolated by `name`. */
async function expectIsolatedOutput(
  w: Awaited<ReturnType<typeof failFixAndWait>>,
  n: string,
  name: string,
  pod: string,
): Promise<void> {
  expect(await w.waiting).toBe(0);
  expect(w.io.stderr).toBe('');
  expect(w.io.stdout).toMatch(
    new RegExp(
      `^isolation ${n}/${name}: Isolated \\(NetworkPolicy\\)\\n  1 pod\\(s\\) isolated with NetworkPolicy\\n  pods: ${pod}\\n`,
    ),
  );
}

/** Deletes Isolation `name` and has `r` (which the finalizer waits for) release it, then stops `r`. */
async function release(r: IsolationReconciler, n: string, name: string): Promise<void> {
  await kube.request({ method: 'DELETE', path: paths.isolation(n, name) }).catch(() => undefined);
  r.forget(n, name);
  await r.reconcile(`${n}/${name}`).catch(() => undefined);
  await r.stop();
}

beforeAll(async () => {
  cluster = sharedCluster();
  kc = await cluster.kubeConfig();
  kube = await KubeClient.fromKubeConfig(kc);
  await installIsolationCrd(cluster);
  ns = uniqueName('iso-edit');
  await createNamespace(kc, ns);
  for (const name of ['web-1', 'web-2'])
    await createPod(kc, { namespace: ns, name, labels: { app: 'web' }, ports: { http: 8080 } });
  ctl = await startIsolationController({ kc, kube, namespace: ns, resyncMs: 1000, liveResyncMs: 500 });
});

afterAll(async () => {
  await ctl?.stop();
  kube?.close();
});

describe('an Isolation whose spec is edited while it is in effect', () => {
  it('says the outcome of the new spec in an Event, also when the phase stays Isolated', async () => {
    await createIsolation(ns, 'edited', { target: { pods: ['web-1'] }, reason: 'shell in container' });
    await reported(ns, 'edited', 1, '1 pod(s) isolated with NetworkPolicy');
    await eventually(
      'the Isolated Event',
      async () => (await eventsOn(ns, 'edited', 'Isolated')).length === 1,
    );
    await editSpec(ns, 'edited', { target: { pods: ['web-1', 'web-2'] }, reason: 'lateral movement' });
    const now = await reported(ns, 'edited', 2, '2 pod(s) isolated with NetworkPolicy');
    expect(now.status?.phase).toBe('Isolated');
    await eventually('the Isolated Event of the new spec', async () =>
      (await eventsOn(ns, 'edited', 'Isolated')).length >= 2 ? true : undefined,
    );
    expect(await eventsOn(ns, 'edited', 'Isolated')).toEqual([
      ['Normal', '1 pod(s) isolated with NetworkPolicy'],
      ['Normal', '2 pod(s) isolated with NetworkPolicy'],
    ]);
    await kubectl(['delete', 'isolation', '-n', ns, 'edited', '--wait=true', '--timeout=30s']);
  }, 60_000);

  it('a new target that names no pod either is a NoPodToIsolate Warning of its own', async () => {
    await createIsolation(ns, 'nothing', { target: { pods: ['gone-1'] }, reason: 'shell in container' });
    await reported(ns, 'nothing', 1, 'no pod to isolate: pod gone-1 not found');
    await editSpec(ns, 'nothing', { target: { pods: ['gone-2'] } });
    await reported(ns, 'nothing', 2, 'no pod to isolate: pod gone-2 not found');
    await eventually('the NoPodToIsolate Event of the new spec', async () =>
      (await eventsOn(ns, 'nothing', 'NoPodToIsolate')).length >= 2 ? true : undefined,
    );
    expect(await eventsOn(ns, 'nothing', 'NoPodToIsolate')).toEqual([
      ['Warning', 'no pod to isolate: pod gone-1 not found'],
      ['Warning', 'no pod to isolate: pod gone-2 not found'],
    ]);
    await kubectl(['delete', 'isolation', '-n', ns, 'nothing', '--wait=true', '--timeout=30s']);
  }, 60_000);
});

describe('a reconcile that fails after labelling the first pod', () => {
  const vap = uniqueName('refuse-label');
  const vapPath = (what: string) => `/apis/admissionregistration.k8s.io/v1/${what}/${vap}`;

  afterAll(async () => {
    for (const what of ['validatingadmissionpolicybindings', 'validatingadmissionpolicies'])
      await cluster.request('DELETE', vapPath(what));
  });

  it('leaves the time-to-isolate sample to its retry: observed once, not lost', async () => {
    for (const name of ['stuck-1', 'stuck-2'])
      await createPod(kc, { namespace: ns, name, labels: { app: 'stuck' }, ports: { http: 8080 } });
    // The quarantine label of stuck-2 is refused; stuck-1's is not.
    await kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'ValidatingAdmissionPolicy',
        metadata: { name: vap },
        spec: {
          failurePolicy: 'Fail',
          matchConstraints: {
            resourceRules: [
              { apiGroups: [''], apiVersions: ['v1'], operations: ['UPDATE'], resources: ['pods'] },
            ],
          },
          validations: [
            {
              expression:
                "object.metadata.name != 'stuck-2' || !has(object.metadata.labels) || !('microseg.dev/quarantine' in object.metadata.labels)",
              message: 'stuck-2 may not be quarantined',
            },
          ],
        },
      }),
    );
    await kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'ValidatingAdmissionPolicyBinding',
        metadata: { name: vap },
        spec: {
          policyName: vap,
          validationActions: ['Deny'],
          matchResources: { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } } },
        },
      }),
    );
    const refused = async (): Promise<boolean> => {
      const r = await cluster.request('PATCH', `${paths.pod(ns, 'stuck-2')}?dryRun=All`, {
        body: { metadata: { labels: { 'microseg.dev/quarantine': 'x' } } },
        contentType: MERGE_PATCH,
      });
      return r.status !== 200;
    };
    await eventually('the admission policy in effect', refused);
    const before = ctl.metrics.timeToIsolate.sample().count;
    await createIsolation(ns, 'stuck', { target: { pods: ['stuck-1', 'stuck-2'] }, reason: 'shell' });
    const failing = await eventually(
      'the reconcile failing on stuck-2',
      async () => {
        const i = await getIso(ns, 'stuck');
        return i.status?.conditions?.[0]?.status === 'False' ? i : undefined;
      },
      30_000,
    );
    expect(failing.status?.conditions?.[0]?.message).toContain('stuck-2 may not be quarantined');
    const stuck1 = await kube.request<{ metadata: { labels?: Record<string, string> } }>({
      method: 'GET',
      path: paths.pod(ns, 'stuck-1'),
    });
    expect(stuck1.metadata.labels?.['microseg.dev/quarantine']).toBe('stuck');
    expect(ctl.metrics.timeToIsolate.sample().count).toBe(before);
    // Lifted: the retry labels stuck-2 and observes the sample, once.
    expect((await cluster.request('DELETE', vapPath('validatingadmissionpolicybindings'))).status).toBe(200);
    await reported(ns, 'stuck', 1, '2 pod(s) isolated with NetworkPolicy');
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(ctl.metrics.timeToIsolate.sample().count).toBe(before + 1);
    await kubectl(['delete', 'isolation', '-n', ns, 'stuck', '--wait=true', '--timeout=30s']);
  }, 90_000);
});

describe('microseg isolate --wait on an Isolation whose spec was fixed after the controller failed it', () => {
  it('waits for the outcome of the fixed spec, not the Failed of the one before', async () => {
    // A namespace the running controller does not watch: this test's reconciler runs when it says.
    const other = uniqueName('iso-fix');
    await createNamespace(kc, other);
    await createPod(kc, { namespace: other, name: 'web-x', labels: { app: 'web' }, ports: { http: 8080 } });
    const r = new IsolationReconciler({ kube });
    try {
      // Failed for generation 1; the responder fixes the spec and waits for the isolation.
      const w = await failFixAndWait(r, other, 'cli-fixed', 'Web_X', 'web-x');
      // The Isolation exists (the create is answered 409) with the Failed of generation 1: not an outcome.
      await new Promise((resolve) => setTimeout(resolve, 2000));
      expect([w.settled(), w.io.stdout, w.io.stderr]).toEqual([false, '', '']);
      // The controller reconciles the fixed spec: that is the outcome.
      r.observe(await getIso(other, 'cli-fixed'));
      await r.reconcile(`${other}/cli-fixed`);
      await r.checks.idle();
      await expectIsolatedOutput(w, other, 'cli-fixed', 'web-x');
      expect((await getIso(other, 'cli-fixed')).status?.observedGeneration).toBe(2);
    } finally {
      // Released by this test's reconciler, which the finalizer waits for.
      await release(r, other, 'cli-fixed');
    }
  }, 90_000);
});

describe('microseg isolate --wait when the first leak check of the fixed spec fails', () => {
  it('waits on: the Failed of the spec before is not taken for its outcome', async () => {
    const other = uniqueName('iso-chk');
    await createNamespace(kc, other);
    await createPod(kc, { namespace: other, name: 'web-y', labels: { app: 'web' }, ports: { http: 8080 } });
    // A controller identity RBAC lets do all a reconcile does, but not list Namespaces (the leak check's
    // first read): its check fails with the API server's 403 until that is granted.
    const user = uniqueName('iso-nolist');
    const rules = [
      { apiGroups: ['microseg.dev'], resources: ['isolations', 'isolations/status'], verbs: ['*'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch', 'patch', 'update'] },
      { apiGroups: ['networking.k8s.io'], resources: ['networkpolicies'], verbs: ['*'] },
      { apiGroups: ['', 'events.k8s.io'], resources: ['events'], verbs: ['create', 'patch'] },
    ];
    const grant = (name: string, r: unknown[]) =>
      kubectl(
        ['apply', '-f', '-'],
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'List',
          items: [
            { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name }, rules: r },
            {
              apiVersion: 'rbac.authorization.k8s.io/v1',
              kind: 'ClusterRoleBinding',
              metadata: { name },
              roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
              subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }],
            },
          ],
        }),
      );
    await grant(user, rules);
    const limited = await KubeClient.fromKubeConfig(await cluster.kubeConfig({ user }));
    const r = new IsolationReconciler({ kube: limited });
    try {
      const w = await failFixAndWait(r, other, 'cli-check', 'Web_Y', 'web-y');
      r.observe(await getIso(other, 'cli-check'));
      await r.reconcile(`${other}/cli-check`);
      const checkFailed = await eventually(
        'the leak check failing',
        async () => {
          const i = await getIso(other, 'cli-check');
          return (i.status?.message ?? '').includes('the leak check failed') ? i : undefined;
        },
        30_000,
      );
      expect(checkFailed.status?.message).toMatch(
        /^1 pod\(s\) isolated with NetworkPolicy; the leak check failed: .*namespaces.*forbidden/,
      );
      expect([checkFailed.status?.phase, checkFailed.status?.observedGeneration]).toEqual(['Pending', 2]);
      // Polled at least once more since: still waiting, nothing printed.
      await new Promise((resolve) => setTimeout(resolve, 2000));
      expect([w.settled(), w.io.stdout, w.io.stderr]).toEqual([false, '', '']);
      // Namespaces may be listed: the retried check publishes the fixed spec's outcome.
      await grant(`${user}-ns`, [{ apiGroups: [''], resources: ['namespaces'], verbs: ['list', 'get'] }]);
      await expectIsolatedOutput(w, other, 'cli-check', 'web-y');
    } finally {
      await release(r, other, 'cli-check');
      limited.close();
      for (const name of [user, `${user}-ns`])
        await kubectl(['delete', 'clusterrole,clusterrolebinding', name, '--ignore-not-found']);
    }
  }, 120_000);
});
