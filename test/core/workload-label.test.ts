/**
 * The workload label, `microseg.dev/workload`, on a pod template: the pods that carry it with one value
 * are one workload, `ns/Workload/<value>`, selected by that label alone, whatever owns them. For what
 * owner references cannot tell: each run of a pipeline is a new object (a Tekton TaskRun), each revision
 * of a Knative Service a new Deployment selected by the revision's uid. Without the label, a proposal
 * made from one run or revision denies the next.
 */
import { describe, expect, it } from 'vitest';
import type { Flow, FlowEndpoint } from '../../src/flows/types.ts';
import { buildIdentity } from '../../src/identity/index.ts';
import { isolationForWorkload } from '../../src/isolate/ui.ts';
import { runPipeline } from '../../src/pipeline.ts';
import { engineFromSnapshot } from '../../src/verify/engine.ts';
import { resolveWorkload } from '../../src/verify/load.ts';
import { verifyProposal } from '../../src/verify/reach.ts';
import { deployment, inNamespace, type Obj, queriesOf, ref, tcpFlow } from './workload-fixture.ts';

const NS = 'ci';

const { pod, snapshot } = inNamespace(NS);

/** A cache the pipeline's runs download from. */
const CACHE: Obj[] = deployment(NS, 'cache', '10.244.1.1', 8080);
const CACHE_END: FlowEndpoint = { ip: '10.244.1.1', namespace: NS, pod: 'cache-7d9f-x1x1x' };

/** The pod of Tekton TaskRun `build-run-<n>-compile` (its per-run labels as Tekton writes them). */
const run = (n: number, label: boolean): Obj =>
  pod(
    `build-run-${n}-compile-pod`,
    ref('tekton.dev/v1', 'TaskRun', `build-run-${n}-compile`),
    {
      'app.kubernetes.io/managed-by': 'tekton-pipelines',
      'tekton.dev/pipeline': 'build',
      'tekton.dev/pipelineRun': `build-run-${n}`,
      'tekton.dev/taskRun': `build-run-${n}-compile`,
      ...(label ? { 'microseg.dev/workload': 'build' } : {}),
    },
    `10.244.2.${n}`,
    0,
  );
const fromRun = (n: number): FlowEndpoint => ({
  ip: `10.244.2.${n}`,
  namespace: NS,
  pod: `build-run-${n}-compile-pod`,
});
const flow = (minute: number, src: FlowEndpoint, dst: FlowEndpoint): Flow => tcpFlow(minute, src, dst, 8080);
const query = (f: Flow) => queriesOf([f])[0]!;

/** The proposal for runs 1 and 2, proved against the cluster of run 3 with its connection. */
async function nextRun(label: boolean) {
  const before = snapshot([...CACHE, run(1, label), run(2, label)]);
  const r = await runPipeline(before, [flow(1, fromRun(1), CACHE_END), flow(2, fromRun(2), CACHE_END)]);
  const after = snapshot([...CACHE, run(3, label)]);
  after.networkPolicies.push(...r.proposal.policies);
  return { r, report: verifyProposal(engineFromSnapshot(after), [query(flow(3, fromRun(3), CACHE_END))]) };
}

/**
 * A Knative Service's revision `n`: a Deployment selected by its revision's uid, controlled by the
 * Revision; with `label`, the Service's template carries the workload label, so every revision's pods do.
 */
const revision = (n: number, ip: string, label: boolean): Obj[] => {
  const name = `hello-0000${n}-deployment`;
  const labels = {
    app: 'cache',
    ...(label ? { 'microseg.dev/workload': 'hello' } : {}),
    'serving.knative.dev/revisionUID': `uid-${n}`,
  };
  return [
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: {
        name,
        namespace: NS,
        uid: `uid-Deployment-${name}`,
        ownerReferences: [ref('serving.knative.dev/v1', 'Revision', `hello-0000${n}`, { uid: `uid-${n}` })],
      },
      spec: {
        selector: { matchLabels: { 'serving.knative.dev/revisionUID': `uid-${n}` } },
        template: { metadata: { labels }, spec: { containers: [{ name: 'c' }] } },
      },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: {
        name: `${name}-5b4c`,
        namespace: NS,
        uid: `uid-ReplicaSet-${name}-5b4c`,
        ownerReferences: [ref('apps/v1', 'Deployment', name)],
      },
      spec: { selector: { matchLabels: { ...labels, 'pod-template-hash': '5b4c' } } },
    },
    pod(
      `${name}-5b4c-k2lpq`,
      ref('apps/v1', 'ReplicaSet', `${name}-5b4c`),
      { ...labels, 'pod-template-hash': '5b4c' },
      ip,
      8012,
    ),
  ];
};

describe('the workload label', () => {
  it("makes a pipeline's runs one workload, selected by the label, so that its next run is allowed", async () => {
    const id = buildIdentity(snapshot([...CACHE, run(1, true), run(2, true)]));
    expect([...id.podWorkload].filter(([p]) => p.startsWith('ci/build'))).toEqual([
      ['ci/build-run-1-compile-pod', 'ci/Workload/build'],
      ['ci/build-run-2-compile-pod', 'ci/Workload/build'],
    ]);
    const build = id.workloads.get('ci/Workload/build')!;
    expect([build.selector, build.labels, build.customResource]).toEqual([
      { matchLabels: { 'microseg.dev/workload': 'build' } },
      {
        'app.kubernetes.io/managed-by': 'tekton-pipelines',
        'microseg.dev/workload': 'build',
        'tekton.dev/pipeline': 'build',
      },
      undefined,
    ]);
    const { r, report } = await nextRun(true);
    expect(r.proposal.policies.map((p) => p.metadata.name)).toEqual([
      'microseg-default-deny',
      'microseg-build',
      'microseg-cache',
    ]);
    expect([report.blocked.length, report.allowedObserved]).toEqual([0, 1]);
  });

  it('is what a run needs: without it, each run is a workload of its own and the next run is denied', async () => {
    const { r, report } = await nextRun(false);
    expect(r.proposal.policies.map((p) => p.metadata.name)).toEqual([
      'microseg-default-deny',
      'microseg-build-run-1-compile',
      'microseg-build-run-2-compile',
      'microseg-cache',
    ]);
    expect([report.blocked.length, report.allowedObserved]).toEqual([1, 0]);
  });

  it('wins over a Deployment owner, and a Deployment whose selector takes the labelled pods too is narrowed', async () => {
    const snap = snapshot([...CACHE, ...revision(1, '10.244.3.1', true), ...revision(2, '10.244.3.2', true)]);
    const id = buildIdentity(snap);
    expect([...id.workloads.keys()]).toEqual(['ci/Deployment/cache', 'ci/Workload/hello']);
    expect(id.warnings).toEqual([]);
    // The revisions' pods carry app=cache (a copied template): cache's policy must not select them.
    const r = await runPipeline(snap, [
      flow(1, CACHE_END, { ip: '10.244.3.1', namespace: NS, pod: 'hello-00001-deployment-5b4c-k2lpq' }),
    ]);
    const cache = r.proposal.policies.find((p) => p.metadata.name === 'microseg-cache')!;
    expect(cache.spec.podSelector).toEqual({
      matchLabels: { app: 'cache' },
      matchExpressions: [{ key: 'microseg.dev/workload', operator: 'DoesNotExist' }],
    });
  });

  it('is suggested for a workload object selected by the uid of the custom resource that controls it', () => {
    const id = buildIdentity(snapshot([...revision(1, '10.244.3.1', false)]));
    expect(id.warnings).toEqual([
      'ci/Deployment/hello-00001-deployment: its selector rests on serving.knative.dev/revisionUID=uid-1, the uid of the serving.knative.dev Revision hello-00001 that controls it: the pods of the next Revision will not be selected (label their template microseg.dev/workload=<name> to make them one workload)',
    ]);
  });

  it('leaves an owner named to the what-if commands its own pods', () => {
    const snap = snapshot([...revision(1, '10.244.3.1', true), ...revision(2, '10.244.3.2', true)]);
    const w = resolveWorkload(snap, 'ci/Deployment/hello-00002-deployment');
    expect([w.name, w.pods]).toEqual([
      'ci/Deployment/hello-00002-deployment',
      ['ci/hello-00002-deployment-5b4c-k2lpq'],
    ]);
  });

  it('names the workload to the what-if commands and to the web page, which isolates it by the label', () => {
    const snap = snapshot([...CACHE, run(1, true), run(2, true)]);
    const w = resolveWorkload(snap, 'ci/workload/build');
    expect([w.name, w.pods]).toEqual([
      'ci/Workload/build',
      ['ci/build-run-1-compile-pod', 'ci/build-run-2-compile-pod'],
    ]);
    const iso = isolationForWorkload('ci/Workload/build', 'leaked token', 'ana');
    expect(iso.spec!.target).toEqual({ podSelector: { matchLabels: { 'microseg.dev/workload': 'build' } } });
  });
});

describe('the workload label added to a workload object that has pods', () => {
  /** Deployment `web` whose template now carries the label: a pod of the old revision, one of the new. */
  const midRollout = (): Obj[] => [
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', namespace: NS, uid: 'uid-Deployment-web' },
      spec: {
        selector: { matchLabels: { app: 'web' } },
        template: {
          metadata: { labels: { app: 'web', 'microseg.dev/workload': 'web' } },
          spec: { containers: [{ name: 'c' }] },
        },
      },
    },
    ...['6c5d', '7f8e'].map((hash) => ({
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: {
        name: `web-${hash}`,
        namespace: NS,
        uid: `uid-ReplicaSet-web-${hash}`,
        ownerReferences: [ref('apps/v1', 'Deployment', 'web')],
      },
      spec: { selector: { matchLabels: { app: 'web', 'pod-template-hash': hash } } },
    })),
    pod(
      'web-6c5d-a1a1a',
      ref('apps/v1', 'ReplicaSet', 'web-6c5d'),
      { app: 'web', 'pod-template-hash': '6c5d' },
      '10.244.4.1',
      8080,
    ),
    pod(
      'web-7f8e-b2b2b',
      ref('apps/v1', 'ReplicaSet', 'web-7f8e'),
      { app: 'web', 'microseg.dev/workload': 'web', 'pod-template-hash': '7f8e' },
      '10.244.4.2',
      8080,
    ),
  ];

  it("leaves the label out of the old revision's workload, whose selector then leaves the new pods out", async () => {
    const snap = snapshot([...CACHE, ...midRollout()]);
    const id = buildIdentity(snap);
    expect(id.workloads.get('ci/Deployment/web')!.labels).toEqual({ app: 'web' });
    const r = await runPipeline(snap, [
      flow(1, { ip: '10.244.4.1', namespace: NS, pod: 'web-6c5d-a1a1a' }, CACHE_END),
      flow(2, { ip: '10.244.4.2', namespace: NS, pod: 'web-7f8e-b2b2b' }, CACHE_END),
    ]);
    expect(
      r.proposal.policies
        .filter((p) => p.metadata.name.includes('web'))
        .map((p) => [p.metadata.name, p.spec.podSelector]),
    ).toEqual([
      [
        'microseg-deployment-web',
        {
          matchLabels: { app: 'web' },
          matchExpressions: [{ key: 'microseg.dev/workload', operator: 'DoesNotExist' }],
        },
      ],
      ['microseg-workload-web', { matchLabels: { 'microseg.dev/workload': 'web' } }],
    ]);
    expect(r.proposal.warnings.filter((w) => w.includes('no label separates'))).toEqual([]);
  });

  it("keeps a CronJob's pods of runs made before the label selected", () => {
    const id = buildIdentity(
      snapshot([
        {
          apiVersion: 'batch/v1',
          kind: 'CronJob',
          metadata: { name: 'report', namespace: NS, uid: 'uid-CronJob-report' },
          spec: {
            jobTemplate: {
              spec: {
                template: {
                  metadata: { labels: { app: 'report', 'microseg.dev/workload': 'report' } },
                  spec: { containers: [{ name: 'c' }] },
                },
              },
            },
          },
        },
        {
          apiVersion: 'batch/v1',
          kind: 'Job',
          metadata: {
            name: 'report-29000000',
            namespace: NS,
            uid: 'uid-Job-report-29000000',
            ownerReferences: [ref('batch/v1', 'CronJob', 'report')],
          },
          spec: { template: { metadata: { labels: { app: 'report' } } } },
        },
        pod(
          'report-29000000-c3c3c',
          ref('batch/v1', 'Job', 'report-29000000'),
          { app: 'report', 'job-name': 'report-29000000' },
          '10.244.4.3',
          0,
        ),
      ]),
    );
    expect(id.workloads.get('ci/CronJob/report')!.selector).toEqual({ matchLabels: { app: 'report' } });
  });
});

describe('a workload the label names with no pod', () => {
  /** Revision 1 of a Knative Service scaled to zero: its Deployment, no ReplicaSet pod. */
  const scaledToZero = (): Obj[] =>
    revision(1, '10.244.3.1', true)
      .filter((o) => o.kind === 'Deployment')
      .map((o) => ({ ...o, spec: { ...(o.spec as Obj), replicas: 0 } }));

  it('is named to the what-if commands by the template that carries the label, as identity has it', () => {
    const snap = snapshot([...CACHE, ...scaledToZero()]);
    expect([...buildIdentity(snap).workloads.keys()]).toEqual(['ci/Deployment/cache', 'ci/Workload/hello']);
    const w = resolveWorkload(snap, 'ci/Workload/hello');
    expect([w.name, w.pods, w.endpoint]).toEqual([
      'ci/Workload/hello',
      [],
      {
        namespace: NS,
        labels: {
          app: 'cache',
          'microseg.dev/workload': 'hello',
          'serving.knative.dev/revisionUID': 'uid-1',
        },
        namedPorts: [],
        name: 'ci/Workload/hello',
      },
    ]);
  });

  it('takes the template of the object of the smallest key, whatever the order of the snapshot', () => {
    // Two retained revisions scaled to zero, their templates differing (revision 2 names a port).
    const zero = (n: number): Obj[] =>
      revision(n, `10.244.3.${n}`, true)
        .filter((o) => o.kind === 'Deployment')
        .map((o) => ({ ...o, spec: { ...(o.spec as Obj), replicas: 0 } }));
    const two = zero(2).map((o) => {
      const spec = o.spec as { template: { spec: Obj } };
      const containers = [{ name: 'c', ports: [{ name: 'http', containerPort: 8012 }] }];
      return { ...o, spec: { ...spec, template: { ...spec.template, spec: { containers } } } };
    });
    const seen = [
      [...zero(1), ...two],
      [...two, ...zero(1)],
    ].map((items) => {
      const snap = snapshot(items);
      const w = buildIdentity(snap).workloads.get('ci/Workload/hello')!;
      return JSON.stringify([w.labels, w.namedPorts, resolveWorkload(snap, 'ci/Workload/hello').endpoint]);
    });
    expect(seen[1]).toBe(seen[0]);
    expect(JSON.parse(seen[0]!)[0]['serving.knative.dev/revisionUID']).toBe('uid-1');
  });

  it('is not found when no template carries the label with its name', () => {
    const snap = snapshot([...CACHE, ...scaledToZero()]);
    expect(() => resolveWorkload(snap, 'ci/Workload/hallo')).toThrow(
      /^--workload: no Workload hallo in namespace ci$/,
    );
  });
});

describe('the warning of a selector resting on the uid of the custom resource controlling it', () => {
  it("is one for a kind's resources, as a Knative Service's retained revisions are, not one each", () => {
    const id = buildIdentity(snapshot([1, 2, 3, 4].flatMap((n) => revision(n, `10.244.3.${n}`, false))));
    expect(id.warnings).toEqual([
      '4 workloads have a selector resting on the uid of the serving.knative.dev Revision that controls each (ci/Deployment/hello-00001-deployment: serving.knative.dev/revisionUID=uid-1, ci/Deployment/hello-00002-deployment: serving.knative.dev/revisionUID=uid-2, ci/Deployment/hello-00003-deployment: serving.knative.dev/revisionUID=uid-3, and 1 more): the pods of the next Revision will not be selected (label their template microseg.dev/workload=<name> to make them one workload)',
    ]);
  });
});
