/**
 * A platform team that keeps its Segmentations and Isolations in Git and applies them over and over, as
 * Argo CD or Flux do (server-side apply with a field manager of their own, or client-side
 * `kubectl apply`): the controller must not write what the next apply puts back, and a re-apply of the
 * same files must neither conflict nor change anything.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNamespace, eventually, sharedCluster, uniqueName } from '../cluster/index.ts';
import type { Segmentation } from '../../src/controller/api.ts';
import type { Isolation } from '../../src/isolate/api.ts';
import { parseIsolationSpec } from '../../src/isolate/api.ts';
import type { RunningController } from '../controller/k8s-helpers.ts';
import {
  cond,
  createAppPods,
  events,
  flow,
  getSeg,
  install,
  listJson,
  ROOT,
  SA,
  startLeader,
  waitSeg,
} from '../controller/k8s-helpers.ts';
import { KubeClient } from '../../src/controller/kube.ts';
import { kubeFromControllerClient } from '../../src/isolate/kube.ts';
import { wireIsolation } from '../../src/isolate/wire.ts';

const cluster = sharedCluster();
const run = uniqueName('gitops');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let ctrl: RunningController;
let controllerOptions: Parameters<typeof startLeader>[1];

interface Managed {
  manager: string;
  operation: string;
  subresource?: string;
  fieldsV1: Record<string, Record<string, unknown>>;
}

/** A Segmentation as Git holds it: promotion on, short times; `mode` only when given. */
function segInGit(name: string, ns: string, mode?: string): string {
  return JSON.stringify({
    apiVersion: 'microseg.dev/v1alpha1',
    kind: 'Segmentation',
    metadata: { name, labels: { 'microseg.dev/test': run } },
    spec: {
      namespaceSelector: { matchLabels: { gitops: ns } },
      ...(mode ? { mode } : {}),
      learning: { stableAfter: '0s' },
      audit: { window: '2s' },
      promotion: { automatic: true, after: '1s' },
    },
  });
}

/** `kubectl apply --server-side` as Argo CD's server-side sync does it, without forcing conflicts. */
const argoApply = (input: string) =>
  cluster.kubectl(['apply', '--server-side', '--field-manager=argocd', '-f', '-'], { input });

async function managedFields(path: string): Promise<Managed[]> {
  const r = await cluster.request('GET', path);
  expect(r.status, r.text).toBe(200);
  return (r.json as { metadata: { managedFields: Managed[] } }).metadata.managedFields;
}

const segPath = (name: string) => `/apis/microseg.dev/v1alpha1/segmentations/${name}`;

async function setUp(name: string, ip: string): Promise<string> {
  const ns = uniqueName(name);
  const admin = await cluster.kubeConfig();
  await createNamespace(admin, ns, { gitops: ns });
  await createAppPods(admin, ns, [
    ['web', `${ip}1`],
    ['api', `${ip}2`],
  ]);
  return ns;
}

beforeAll(async () => {
  await install(cluster);
  const kc = await cluster.kubeConfig({ serviceAccount: SA });
  const isolation = wireIsolation({
    kc,
    kube: kubeFromControllerClient(new KubeClient(kc)),
    log: () => undefined,
  });
  controllerOptions = {
    identity: run,
    asAdmin: true,
    leaseName: `lease-${run}`,
    segmentationSelector: `microseg.dev/test=${run}`,
    leaderTasks: [isolation.leaderTask],
  };
  ctrl = await startLeader(cluster, controllerOptions);
}, 120_000);

afterAll(async () => {
  await ctrl?.stop();
});

describe('the manifests kept in Git', () => {
  it('manifests/ installed by kubectl, then applied by another field manager, and again: no conflict, no change', async () => {
    const apply = () =>
      cluster.kubectl(['apply', '--server-side', '--field-manager=argocd', '-k', `${ROOT}manifests`]);
    const versions = async () =>
      (
        await cluster.kubectl([
          'get',
          'crd,ns,deploy,svc,pdb,sa,clusterrole,clusterrolebinding,role,rolebinding',
          '-A',
          '-l',
          'app.kubernetes.io/part-of=microseg',
          '-o',
          'jsonpath={range .items[*]}{.kind}/{.metadata.name}={.metadata.resourceVersion}{"\\n"}{end}',
        ])
      ).stdout;
    const first = await apply();
    expect(first.code, first.stderr).toBe(0);
    const before = await versions();
    expect(before.split('\n').filter(Boolean).length).toBe(17);
    const again = await apply();
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toBe('');
    expect(await versions()).toBe(before);
  });
});

describe('Segmentations kept in Git', () => {
  it('spec.mode applied by server-side apply: promotion is announced, not made, and a re-apply neither conflicts nor changes anything', async () => {
    const name = uniqueName('ssa');
    const ns = await setUp('ssa', '10.83.0.');
    const r = await argoApply(segInGit(name, ns, 'Learn'));
    expect(r.code, r.stderr).toBe(0);
    await waitSeg(cluster, name, 'Learning', (s) => s.status?.phase === 'Learning');
    expect((await ctrl.push([flow(`${ns}/web`, `${ns}/api`, 8080)])).status).toBe(202);
    await waitSeg(cluster, name, 'stable', (s) => cond(s, 'ProposalStable')?.status === 'True');
    const due = await eventually(
      'PromotionDue',
      async () => (await events(cluster, name)).find((e) => e.reason === 'PromotionDue'),
      15_000,
    );
    expect(due.type).toBe('Normal');
    expect(due.message).toBe(
      'promotion Learn → Audit is due (the proposal has been stable for 1s), but spec.mode is declared by the server-side apply field manager "argocd", which would put it back: commit spec.mode: Audit where it is declared (in Git)',
    );
    await sleep(1500);
    const seg = await getSeg(cluster, name);
    expect(seg.spec!.mode).toBe('Learn');
    expect((await events(cluster, name)).filter((e) => e.reason === 'AutoPromoted')).toEqual([]);
    // The Event is recorded once, not at every resync.
    expect((await events(cluster, name)).find((e) => e.reason === 'PromotionDue')!.count ?? 1).toBe(1);

    // The same file again: no conflict, and nothing changes.
    const before = (await getSeg(cluster, name)).metadata.generation;
    const again = await argoApply(segInGit(name, ns, 'Learn'));
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toBe('');
    expect((await getSeg(cluster, name)).metadata.generation).toBe(before);
    // Every field the controller wrote is its own, under its name, none in spec.
    const managers = (await managedFields(segPath(name))).map((m) => [
      m.manager,
      m.operation,
      m.subresource ?? '',
    ]);
    expect(managers.sort()).toEqual([
      ['argocd', 'Apply', ''],
      ['microseg', 'Apply', 'status'],
      ['microseg', 'Update', ''],
    ]);
    const update = (await managedFields(segPath(name))).find((m) => m.operation === 'Update')!;
    expect(Object.keys(update.fieldsV1)).toEqual(['f:metadata']);

    // The team commits the promotion: the controller acts on it.
    expect((await argoApply(segInGit(name, ns, 'Audit'))).code).toBe(0);
    await waitSeg(cluster, name, 'Auditing', (s) => s.status?.phase === 'Auditing');
  });

  it('spec.mode applied by client-side kubectl apply (Argo CD default sync): promotion is announced, not made', async () => {
    const name = uniqueName('csa');
    const ns = await setUp('csa', '10.83.1.');
    const r = await cluster.kubectl(['apply', '-f', '-'], { input: segInGit(name, ns, 'Learn') });
    expect(r.code, r.stderr).toBe(0);
    expect((await ctrl.push([flow(`${ns}/web`, `${ns}/api`, 8080)])).status).toBe(202);
    const due = await eventually(
      'PromotionDue',
      async () => (await events(cluster, name)).find((e) => e.reason === 'PromotionDue'),
      15_000,
    );
    expect(due.message).toBe(
      'promotion Learn → Audit is due (the proposal has been stable for 1s), but spec.mode is declared by client-side kubectl apply (annotation kubectl.kubernetes.io/last-applied-configuration), which would put it back: commit spec.mode: Audit where it is declared (in Git)',
    );
    expect((await getSeg(cluster, name)).spec!.mode).toBe('Learn');
  });

  it('spec.mode left out of Git: the controller promotes, and a re-apply neither conflicts nor puts Learn back', async () => {
    const name = uniqueName('nomode');
    const ns = await setUp('nomode', '10.83.2.');
    expect((await argoApply(segInGit(name, ns))).code).toBe(0);
    expect((await ctrl.push([flow(`${ns}/web`, `${ns}/api`, 8080)])).status).toBe(202);
    await waitSeg(cluster, name, 'promoted to Audit', (s: Segmentation) => s.spec?.mode === 'Audit', 20_000);
    const again = await argoApply(segInGit(name, ns));
    expect(again.code, again.stderr).toBe(0);
    expect(['Audit', 'Enforce']).toContain((await getSeg(cluster, name)).spec!.mode);
    const owner = (await managedFields(segPath(name))).find((m) => 'f:mode' in (m.fieldsV1['f:spec'] ?? {}))!;
    expect([owner.manager, owner.operation]).toEqual(['microseg', 'Update']);
  });
});

describe('a Segmentation pruned from Git while the controller is down, then added back', () => {
  it('the new Segmentation starts from nothing: the learned graph its predecessor left is not restored', async () => {
    const name = uniqueName('again');
    const ns = await setUp('again', '10.83.4.');
    expect((await argoApply(segInGit(name, ns, 'Learn'))).code).toBe(0);
    expect((await ctrl.push([flow(`${ns}/web`, `${ns}/api`, 8080)])).status).toBe(202);
    await waitSeg(cluster, name, 'learned', (s) => s.status?.edges === 1);
    const lesPath = '/apis/microseg.dev/v1alpha1/learnededgesets';
    const shards = async () =>
      (
        await listJson<{ metadata: { name: string }; spec: { segmentation: string } }>(cluster, lesPath)
      ).filter((l) => l.spec.segmentation === name);
    await eventually('persisted', async () => ((await shards()).length > 0 ? true : undefined), 10_000);
    // The controller is down: the finalizer holds the Segmentation until it is taken out by hand, and no
    // garbage collector runs here (as when the new one comes before the collector got to the old objects).
    await ctrl.stop();
    const del = await cluster.request('DELETE', segPath(name));
    expect(del.status, del.text).toBe(200);
    expect((await getSeg(cluster, name)).metadata.deletionTimestamp).toBeDefined();
    const patch = await cluster.request('PATCH', segPath(name), {
      body: [{ op: 'remove', path: '/metadata/finalizers' }],
      contentType: 'application/json-patch+json',
    });
    expect(patch.status, patch.text).toBe(200);
    await eventually('gone', async () =>
      (await cluster.request('GET', segPath(name))).status === 404 ? true : undefined,
    );
    expect((await argoApply(segInGit(name, ns, 'Learn'))).code).toBe(0);
    ctrl = await startLeader(cluster, { ...controllerOptions, identity: `${run}-2` });
    const s = await waitSeg(cluster, name, 'reconciled', (x) => x.status?.phase === 'Learning');
    expect(s.status!.edges).toBe(0);
    expect(s.status!.policies).toBe(0);
    await eventually(
      'old shards deleted',
      async () => ((await shards()).length === 0 ? true : undefined),
      10_000,
    );
  });
});

describe('Isolations kept in Git', () => {
  it("the finalizer the controller adds is microseg's, and a re-apply of the same file is clean", async () => {
    const ns = await setUp('iso', '10.83.3.');
    const iso = JSON.stringify({
      apiVersion: 'microseg.dev/v1alpha1',
      kind: 'Isolation',
      metadata: { name: 'cut-api', namespace: ns },
      spec: { target: { pods: ['api'] }, reason: 'shell in container' },
    });
    expect((await argoApply(iso)).code).toBe(0);
    const path = `/apis/microseg.dev/v1alpha1/namespaces/${ns}/isolations/cut-api`;
    await eventually(
      'finalizer',
      async () => ((await cluster.request('GET', path)).json as Isolation).metadata.finalizers?.length,
      15_000,
    );
    const owner = (await managedFields(path)).find(
      (m) => 'f:finalizers' in (m.fieldsV1['f:metadata'] ?? {}),
    )!;
    expect(owner.manager).toBe('microseg');
    const again = await argoApply(iso);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toBe('');
  });
});

describe('an invalid Isolation in Git', () => {
  it('is refused by the schema at apply time, naming the field, instead of being accepted and Failed later', async () => {
    const ns = uniqueName('isoval');
    await createNamespace(await cluster.kubeConfig(), ns, {});
    const cases: [string, Record<string, unknown>, string][] = [
      [
        'empty-selector',
        { target: { podSelector: {} }, reason: 'x' },
        'spec.target.podSelector: Invalid value: must not be empty (it would isolate every pod of the namespace)',
      ],
      [
        'empty-labels',
        { target: { podSelector: { matchLabels: {} } }, reason: 'x' },
        'spec.target.podSelector: Invalid value: must not be empty (it would isolate every pod of the namespace)',
      ],
      [
        'short',
        { target: { pods: ['a'] }, reason: 'x', duration: '0s' },
        'spec.duration: Invalid value: "0s": must be at least 1s',
      ],
      [
        'none',
        { target: {}, reason: 'x' },
        'spec.target: Invalid value: set exactly one of pods, podSelector, workload',
      ],
      [
        'no-pods',
        { target: { pods: [] }, reason: 'x' },
        'spec.target.pods: Invalid value: 0: spec.target.pods in body should have at least 1 items',
      ],
      ['no-reason', { target: { pods: ['a'] } }, 'spec.reason: Required value'],
      [
        'bad-duration',
        { target: { pods: ['a'] }, reason: 'x', duration: '4 hours' },
        `spec.duration: Invalid value: "4 hours": spec.duration in body should match '^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$'`,
      ],
      [
        'bad-expiry',
        { target: { pods: ['a'] }, reason: 'x', expiresAt: 'tomorrow' },
        'spec.expiresAt: Invalid value: "tomorrow": spec.expiresAt in body must be of type date-time: "tomorrow"',
      ],
      [
        'both-ends',
        { target: { pods: ['a'] }, reason: 'x', duration: '1h', expiresAt: '2030-01-01T00:00:00Z' },
        'spec: Invalid value: duration and expiresAt are mutually exclusive',
      ],
      [
        'up',
        { target: { pods: ['a'] }, reason: 'x', direction: 'Up' },
        'spec.direction: Unsupported value: "Up": supported values: "Both", "Ingress", "Egress"',
      ],
      [
        'x'.repeat(64),
        { target: { pods: ['a'] }, reason: 'x' },
        'metadata.name: Too long: may not be more than 63 bytes',
      ],
      [
        'no-peer',
        { target: { pods: ['a'] }, reason: 'x', exceptions: { forensics: [{}] } },
        'spec.exceptions.forensics[0]: Invalid value: must set namespaceSelector, podSelector or both',
      ],
      [
        'in-without-values',
        { target: { podSelector: { matchExpressions: [{ key: 'app', operator: 'In' }] } }, reason: 'x' },
        'spec.target.podSelector.matchExpressions[0]: Invalid value: values must be non-empty for In and NotIn, and empty for Exists and DoesNotExist',
      ],
      [
        'exists-with-values',
        {
          target: { pods: ['a'] },
          reason: 'x',
          exceptions: {
            forensics: [
              { podSelector: { matchExpressions: [{ key: 'app', operator: 'Exists', values: ['x'] }] } },
            ],
          },
        },
        'spec.exceptions.forensics[0].podSelector.matchExpressions[0]: Invalid value: values must be non-empty for In and NotIn, and empty for Exists and DoesNotExist',
      ],
      // A workload's kind and API group (the controller's messages are more precise; tested in plan.test.ts).
      ...(
        [
          [
            'wl-no-group',
            { kind: 'Cluster', name: 'pg' },
            "spec.target.workload: Invalid value: apiGroup is required with a kind that is not one of Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, Rollout, CloneSet: a custom resource's kind is named with its API group",
          ],
          [
            'wl-labelled',
            { kind: 'Workload', name: 'build' },
            'spec.target.workload: Invalid value: kind Workload is a workload the microseg.dev/workload label of its pods names, not an owner: target its pods by podSelector on that label',
          ],
          [
            'wl-no-dot',
            { kind: 'Cluster', apiGroup: 'apps', name: 'pg' },
            "spec.target.workload: Invalid value: apiGroup of a custom resource's kind must have a dot (e.g. postgresql.cnpg.io)",
          ],
          [
            'wl-other-group',
            { kind: 'Deployment', apiGroup: 'apps.example.com', name: 'web' },
            'spec.target.workload: Invalid value: apiGroup must be the API group of the kind: apps for Deployment, StatefulSet, DaemonSet and ReplicaSet, batch for Job and CronJob, argoproj.io for Rollout, apps.kruise.io for CloneSet',
          ],
          [
            'wl-pod',
            { kind: 'Pod', name: 'web' },
            'spec.target.workload: Invalid value: kind must not be Pod (name pods by target.pods) nor a kind microseg knows spelt in another case',
          ],
          [
            'wl-case',
            { kind: 'deployment', name: 'web' },
            'spec.target.workload: Invalid value: kind must not be Pod (name pods by target.pods) nor a kind microseg knows spelt in another case',
          ],
          [
            'wl-slash',
            { kind: 'Cluster/v1', apiGroup: 'postgresql.cnpg.io', name: 'pg' },
            `spec.target.workload.kind: Invalid value: "Cluster/v1": spec.target.workload.kind in body should match '^[A-Za-z]([-A-Za-z0-9]*[A-Za-z0-9])?$'`,
          ],
          [
            'wl-group-version',
            { kind: 'Cluster', apiGroup: 'postgresql.cnpg.io/v1', name: 'pg' },
            `spec.target.workload.apiGroup: Invalid value: "postgresql.cnpg.io/v1": spec.target.workload.apiGroup in body should match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'`,
          ],
        ] as const
      ).map(([name, workload, message]): [string, Record<string, unknown>, string] => [
        name,
        { target: { workload }, reason: 'x' },
        message,
      ]),
      // A blank reason: white space or line terminators only, as the controller's trim() sees them (the
      // API server shows the value quoted as Go does).
      ...(
        [
          [' ', '" "'],
          ['\t\n', '"\\t\\n"'],
          ['\u00a0', '"\\u00a0"'],
          ['\u3000\u2028', '"\\u3000\\u2028"'],
          ['\ufeff', '"\\ufeff"'],
          ['\v', '"\\v"'],
        ] as const
      ).map(([reason, shown], i): [string, Record<string, unknown>, string] => [
        `blank-${i}`,
        { target: { pods: ['a'] }, reason },
        `spec.reason: Invalid value: ${shown}: must not be blank`,
      ]),
      // Longer than CEL's duration() takes (the controller names the field and the longest one).
      ...['3000000h', '2562047h47m16.854775808s'].map(
        (duration, i): [string, Record<string, unknown>, string] => [
          `forever-${i}`,
          { target: { pods: ['a'] }, reason: 'x', duration },
          `spec.duration: Invalid value: "string": type conversion error from 'string' to 'google.protobuf.Duration' evaluating rule: must be at least 1s`,
        ],
      ),
    ];
    for (const [name, spec, message] of cases) {
      const r = await cluster.kubectl(['apply', '-f', '-'], {
        input: JSON.stringify({
          apiVersion: 'microseg.dev/v1alpha1',
          kind: 'Isolation',
          metadata: { name, namespace: ns },
          spec,
        }),
      });
      expect(r.code, name).toBe(1);
      expect(r.stderr, name).toContain(message);
      // The controller refuses it too (an Isolation from the CLI, the web page or a webhook).
      expect(parseIsolationSpec(name, spec).ok, name).toBe(false);
    }
    // What the schema accepts is still accepted.
    const ok = await cluster.kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'microseg.dev/v1alpha1',
        kind: 'Isolation',
        metadata: { name: 'fine', namespace: ns },
        spec: {
          target: { podSelector: { matchExpressions: [{ key: 'app', operator: 'Exists' }] } },
          reason: 'x',
          duration: '1s',
          exceptions: { forensics: [{ podSelector: {} }] },
          dryRun: true,
        },
      }),
    });
    expect(ok.code, ok.stderr).toBe(0);
    // A custom resource's kind with its group, a known kind with its own or none: accepted by both.
    for (const workload of [
      { kind: 'Cluster', apiGroup: 'postgresql.cnpg.io', name: 'pg', includeFuture: true },
      { kind: 'K8s-Pool2', apiGroup: 'x.example.com', name: 'p' },
      { kind: 'CloneSet', apiGroup: 'apps.kruise.io', name: 'c' },
      { kind: 'Job', apiGroup: 'batch', name: 'j' },
      { kind: 'Rollout', name: 'r' },
    ]) {
      const spec = { target: { workload }, reason: 'x' };
      const r = await cluster.kubectl(['apply', '--dry-run=server', '-f', '-'], {
        input: JSON.stringify({
          apiVersion: 'microseg.dev/v1alpha1',
          kind: 'Isolation',
          metadata: { name: 'wl', namespace: ns },
          spec,
        }),
      });
      expect(r.code, `${workload.kind}: ${r.stderr}`).toBe(0);
      expect(parseIsolationSpec('wl', spec).ok, workload.kind).toBe(true);
    }
    // At the bounds: a reason with a character trim() keeps (U+0085), the longest duration CEL takes.
    for (const [reason, duration] of [
      ['\u0085', '2562047h47m16.854775807s'],
      [' x ', '1s'],
    ]) {
      const edge = await cluster.kubectl(['apply', '--dry-run=server', '-f', '-'], {
        input: JSON.stringify({
          apiVersion: 'microseg.dev/v1alpha1',
          kind: 'Isolation',
          metadata: { name: 'edge', namespace: ns },
          spec: { target: { pods: ['a'] }, reason, duration },
        }),
      });
      expect(edge.code, edge.stderr).toBe(0);
      expect(parseIsolationSpec('edge', { target: { pods: ['a'] }, reason, duration }).ok).toBe(true);
    }
    // What only the controller checks is accepted, and Failed with the problem named.
    const bad = await cluster.kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'microseg.dev/v1alpha1',
        kind: 'Isolation',
        metadata: { name: 'bad-pod', namespace: ns },
        spec: { target: { pods: ['Bad_Pod'] }, reason: 'x' },
      }),
    });
    expect(bad.code, bad.stderr).toBe(0);
    const failed = await eventually(
      'Failed',
      async () => {
        const r = await cluster.request(
          'GET',
          `/apis/microseg.dev/v1alpha1/namespaces/${ns}/isolations/bad-pod`,
        );
        const st = (r.json as Isolation).status;
        return st?.phase === 'Failed' ? st : undefined;
      },
      15_000,
    );
    expect(failed.message).toBe('spec.target.pods[0] "Bad_Pod" is not a valid pod name');
  });
});
