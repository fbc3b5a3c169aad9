/**
 * Argo Rollouts and OpenKruise CloneSets: a workload whose controller is a custom resource. A Rollout owns
 * one ReplicaSet per revision (`<rollout>-<hash>`, its pods labelled `rollouts-pod-template-hash`); a
 * CloneSet owns its pods directly. The workload is the Rollout (the CloneSet), named and selected the
 * same across revisions, so that a proposal made before a rollout still admits the new pods after it.
 */
import { describe, expect, it } from 'vitest';
import type { Flow } from '../../src/flows/types.ts';
import { buildIdentity } from '../../src/identity/index.ts';
import type { ClusterSnapshot } from '../../src/model/snapshot.ts';
import { policiesToYaml } from '../../src/policy/render.ts';
import { runPipeline } from '../../src/pipeline.ts';
import { engineFromSnapshot } from '../../src/verify/engine.ts';
import { resolveWorkload } from '../../src/verify/load.ts';
import { podClasses, verifyProposal } from '../../src/verify/reach.ts';
import { inNamespace, type Obj, queriesOf, ref, T0, tcpFlow } from './workload-fixture.ts';

const NS = 'app';

/** `deployment(name, ip, port)`: a Deployment `name` (app=name) with its ReplicaSet and one pod at `ip`. */
const { pod, deployment, snapshot, at } = inNamespace(NS);

const ROLLOUT = {
  apiVersion: 'argoproj.io/v1alpha1',
  kind: 'Rollout',
  metadata: { name: 'web', namespace: NS, uid: 'uid-Rollout-web' },
  spec: {
    selector: { matchLabels: { app: 'web' } },
    template: {
      metadata: { labels: { app: 'web' } },
      spec: { containers: [{ name: 'c', ports: [{ name: 'p', containerPort: 8080 }] }] },
    },
    strategy: { canary: { steps: [{ setWeight: 20 }] } },
  },
};

/** A ReplicaSet of the Rollout web for revision `hash`, with a pod at `ip` (none without one). */
function revision(hash: string, ip: string | undefined): Obj[] {
  const labels = { app: 'web', 'rollouts-pod-template-hash': hash };
  return [
    {
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: {
        name: `web-${hash}`,
        namespace: NS,
        uid: `uid-ReplicaSet-web-${hash}`,
        labels,
        ownerReferences: [ref('argoproj.io/v1alpha1', 'Rollout', 'web')],
      },
      spec: {
        selector: { matchLabels: labels },
        template: { metadata: { labels }, spec: { containers: [{ name: 'c' }] } },
      },
    },
    ...(ip ? [pod(`web-${hash}-k2lpq`, ref('apps/v1', 'ReplicaSet', `web-${hash}`), labels, ip, 8080)] : []),
  ];
}

const BEFORE = '6f7d8c9';
const AFTER = '5b4c3d2';

/** front → web, db: before the rollout (web's pod of revision BEFORE) or after it (AFTER; BEFORE scaled to 0). */
function cluster(after: boolean, withRollout: boolean): ClusterSnapshot {
  return snapshot([
    ...deployment('front', '10.244.1.1', 80),
    ...deployment('db', '10.244.1.3', 5432),
    ...(withRollout ? [ROLLOUT] : []),
    ...revision(BEFORE, after ? undefined : '10.244.1.2'),
    ...(after ? revision(AFTER, '10.244.1.12') : []),
  ]);
}

const flow = tcpFlow;
const FRONT = at('10.244.1.1', 'front-7d9f-x1x1x');
const DB = at('10.244.1.3', 'db-7d9f-x1x1x');
const webFlows = (hash: string, ip: string) => [
  flow(1, FRONT, at(ip, `web-${hash}-k2lpq`), 8080),
  flow(2, at(ip, `web-${hash}-k2lpq`), DB, 5432),
];

/** The connections of a snapshot's flows, as the engine's queries. */
const observed = queriesOf;

/**
 * The proposal for `before`'s flows, proved against `after` (the cluster after a rollout, the proposal's
 * policies applied) with `afterFlows`, the same connections made by the new pods.
 */
async function proveAcrossRollout(
  before: ClusterSnapshot,
  beforeFlows: Flow[],
  after: ClusterSnapshot,
  afterFlows: Flow[],
) {
  const r = await runPipeline(before, beforeFlows);
  after.networkPolicies.push(...r.proposal.policies);
  return { r, report: verifyProposal(engineFromSnapshot(after), observed(afterFlows)) };
}

/** The policy the proposal writes for the Rollout web (the same with or without its object). */
const WEB_POLICY = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: microseg-web
  namespace: app
  labels:
    app.kubernetes.io/managed-by: microseg
    microseg.dev/segment: app-web
  annotations:
    microseg.dev/workload: app/Rollout/web
spec:
  podSelector:
    matchLabels:
      app: web
  policyTypes:
    - Ingress
    - Egress
  ingress:
    - from:
        - podSelector:
            matchLabels:
              app: front
      ports:
        - protocol: TCP
          port: 8080
  egress:
    - to:
        - podSelector:
            matchLabels:
              app: db
      ports:
        - protocol: TCP
          port: 5432
    - to:
        - namespaceSelector:
            matchLabels:
              kubernetes.io/metadata.name: kube-system
          podSelector:
            matchLabels:
              k8s-app: kube-dns
      ports:
        - protocol: TCP
          port: 53
        - protocol: UDP
          port: 53
`;

describe('an Argo Rollout', () => {
  for (const withRollout of [true, false])
    it(`is the workload of its ReplicaSets' pods, named and selected alike across revisions, ${withRollout ? 'with' : 'without'} the Rollout object in the snapshot`, async () => {
      const before = cluster(false, withRollout);
      const id = buildIdentity(before);
      expect(id.podWorkload.get('app/web-6f7d8c9-k2lpq')).toBe('app/Rollout/web');
      const web = id.workloads.get('app/Rollout/web')!;
      expect([web.kind, web.name, web.selector, web.labels, web.generatedLabels, web.pods]).toEqual([
        'Rollout',
        'web',
        { matchLabels: { app: 'web' } },
        { app: 'web' },
        ['rollouts-pod-template-hash'],
        ['web-6f7d8c9-k2lpq'],
      ]);
      // No workload of the ReplicaSet: the revision is not one.
      expect([...id.workloads.keys()].filter((k) => k.includes('ReplicaSet'))).toEqual([]);
      // After the rollout: the new revision's pod is the same workload, selected alike.
      const after = cluster(true, withRollout);
      const next = buildIdentity(after);
      expect(next.podWorkload.get('app/web-5b4c3d2-k2lpq')).toBe('app/Rollout/web');
      expect(next.workloads.get('app/Rollout/web')!.selector).toEqual({ matchLabels: { app: 'web' } });

      const { r, report } = await proveAcrossRollout(
        before,
        webFlows(BEFORE, '10.244.1.2'),
        after,
        webFlows(AFTER, '10.244.1.12'),
      );
      const policy = r.proposal.policies.filter((p) => p.metadata.name === 'microseg-web');
      expect(policiesToYaml(policy)).toBe(WEB_POLICY);
      // Its peers name it by the same selector, and every policy has the same segment.
      expect(r.proposal.policies.map((p) => p.metadata.labels?.['microseg.dev/segment'])).toEqual([
        undefined,
        'app-web',
        'app-web',
        'app-web',
      ]);
      expect(report.blocked).toEqual([]);
      expect(report.allowedObserved).toBe(2);
    });

  it("takes its ReplicaSets' selector, the revision's hash left out, when its object has no selector of its own", () => {
    // A Rollout whose workloadRef names a Deployment's template: no selector, no template of its own.
    const { selector: _s, template: _t, ...spec } = ROLLOUT.spec;
    const refOnly = {
      ...ROLLOUT,
      spec: { ...spec, workloadRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' } },
    };
    const snap = snapshot([refOnly, ...revision(BEFORE, '10.244.1.2')]);
    const web = buildIdentity(snap).workloads.get('app/Rollout/web')!;
    expect([web.selector, web.labels]).toEqual([{ matchLabels: { app: 'web' } }, { app: 'web' }]);
  });

  it('takes the template and selector of the Deployment its workloadRef names when it has no pod', () => {
    // Scaled to zero (its old revision's ReplicaSet left with no pod): neither a pod nor a ReplicaSet
    // gives its labels; the Deployment it references, scaled to zero as Argo asks, does.
    const { selector: _s, template: _t, ...spec } = ROLLOUT.spec;
    const refOnly = {
      ...ROLLOUT,
      spec: { ...spec, workloadRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web-template' } },
    };
    const [template] = deployment('web-template', '10.244.1.5', 8080);
    const tpl = template as { spec: { template: { metadata: { labels: Record<string, string> } } } };
    const labels = { app: 'web' };
    const referenced = {
      ...template,
      spec: {
        replicas: 0,
        selector: { matchLabels: labels },
        template: { ...tpl.spec.template, metadata: { labels } },
      },
    };
    const snap = snapshot([refOnly, referenced, ...revision(BEFORE, undefined)]);
    const id = buildIdentity(snap);
    const web = id.workloads.get('app/Rollout/web')!;
    expect([web.selector, web.labels, id.warnings]).toEqual([{ matchLabels: labels }, labels, []]);
    // explain answers for its template's labels, as for a Deployment with no pod.
    expect(resolveWorkload(snap, 'app/Rollout/web').endpoint).toMatchObject({ namespace: NS, labels });
  });

  it('takes its own selector when its object has one', () => {
    const tiered = {
      ...ROLLOUT,
      spec: {
        ...ROLLOUT.spec,
        selector: {
          matchLabels: { app: 'web' },
          matchExpressions: [{ key: 'tier', operator: 'In', values: ['edge'] }],
        },
      },
    };
    const snap = snapshot([tiered, ...revision(BEFORE, '10.244.1.2')]);
    expect(buildIdentity(snap).workloads.get('app/Rollout/web')!.selector).toEqual({
      matchLabels: { app: 'web' },
      matchExpressions: [{ key: 'tier', operator: 'In', values: ['edge'] }],
    });
  });

  it("is found from a pod's labels when the snapshot has neither the Rollout nor the ReplicaSet", () => {
    const [, podOnly] = revision(BEFORE, '10.244.1.2');
    const id = buildIdentity(snapshot([podOnly!]));
    expect([...id.podWorkload]).toEqual([['app/web-6f7d8c9-k2lpq', 'app/Rollout/web']]);
    expect(id.workloads.get('app/Rollout/web')!.selector).toEqual({ matchLabels: { app: 'web' } });
  });

  it('is the workload a collector names by a ReplicaSet of it, by the Rollout, or by a pod gone from the snapshot', () => {
    const id = buildIdentity(cluster(false, false));
    const named = (kind: string, name: string, labels?: string[]) =>
      id.resolve({ namespace: NS, workload: { kind, name }, ...(labels ? { labels } : {}) }, T0).id;
    expect([
      named('ReplicaSet', 'web-6f7d8c9'),
      // A ReplicaSet the snapshot does not have: a Rollout's by its pods' hash label.
      named('ReplicaSet', 'web-5b4c3d2', ['app=web', 'rollouts-pod-template-hash=5b4c3d2']),
      named('Rollout', 'web'),
      named('rollout', 'web'),
      id.resolve({ namespace: NS, pod: 'web-5b4c3d2-q8w2e' }, T0).id,
    ]).toEqual([
      'app/Rollout/web',
      'app/Rollout/web',
      'app/Rollout/web',
      'app/Rollout/web',
      'app/Rollout/web',
    ]);
  });

  it('names pod classes as identity does, and is found by --workload', () => {
    const snap = cluster(false, true);
    expect(podClasses(engineFromSnapshot(snap)).map((c) => [c.name, c.members])).toEqual([
      ['app/Deployment/db', ['app/db-7d9f-x1x1x']],
      ['app/Deployment/front', ['app/front-7d9f-x1x1x']],
      ['app/Rollout/web', ['app/web-6f7d8c9-k2lpq']],
    ]);
    const asked = (spec: string) => {
      const w = resolveWorkload(snap, spec);
      return [w.name, w.asked, w.pods];
    };
    expect([asked('app/Rollout/web'), asked('app/ro/web'), asked('app/ReplicaSet/web-6f7d8c9')]).toEqual([
      ['app/Rollout/web', undefined, ['app/web-6f7d8c9-k2lpq']],
      ['app/Rollout/web', undefined, ['app/web-6f7d8c9-k2lpq']],
      ['app/Rollout/web', 'app/ReplicaSet/web-6f7d8c9', ['app/web-6f7d8c9-k2lpq']],
    ]);
    expect(() => resolveWorkload(snap, 'app/Rollout/webb')).toThrow(
      '--workload: no Rollout webb in namespace app (did you mean app/Rollout/web?)',
    );
  });

  it('is told apart from a Deployment of the same labels (a migration to Argo Rollouts) by the hash key of each kind', async () => {
    // The Deployment web, being replaced by the Rollout web: both app=web.
    const dep = deployment('web', '10.244.1.5', 8080);
    const snap = snapshot([
      ...deployment('front', '10.244.1.1', 80),
      ...dep,
      ROLLOUT,
      ...revision(BEFORE, '10.244.1.2'),
    ]);
    const r = await runPipeline(snap, [flow(1, FRONT, at('10.244.1.2', 'web-6f7d8c9-k2lpq'), 8080)]);
    const narrowed = {
      matchLabels: { app: 'web' },
      matchExpressions: [{ key: 'pod-template-hash', operator: 'DoesNotExist' }],
    };
    const own = r.proposal.policies.find((p) => p.metadata.name === 'microseg-rollout-web')!;
    expect([own.metadata.annotations?.['microseg.dev/workload'], own.spec.podSelector]).toEqual([
      'app/Rollout/web',
      narrowed,
    ]);
    // front's rule names its peer by the same selector: the Deployment's pods are not admitted.
    const front = r.proposal.policies.find((p) => p.metadata.name === 'microseg-front')!;
    expect(front.spec.egress![0]!.to).toEqual([{ podSelector: narrowed }]);
  });
});

describe('a Rollout of another API group', () => {
  it("(OpenKruise's rollouts.kruise.io) is no workload, nor suggested for one", () => {
    const kruise = {
      apiVersion: 'rollouts.kruise.io/v1beta1',
      kind: 'Rollout',
      metadata: { name: 'web', namespace: NS },
      spec: { workloadRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' } },
    };
    const snap = snapshot([kruise, ...deployment('web', '10.244.1.5', 8080)]);
    expect([...buildIdentity(snap).workloads.keys()]).toEqual(['app/Deployment/web']);
    const refused = (spec: string) => {
      try {
        resolveWorkload(snap, spec);
        return 'resolved';
      } catch (err) {
        return (err as Error).message;
      }
    };
    expect([refused('app/Rollout/web'), refused('app/StatefulSet/web')]).toEqual([
      '--workload: no Rollout web in namespace app (did you mean app/Deployment/web?)',
      '--workload: no StatefulSet web in namespace app (did you mean app/Deployment/web?)',
    ]);
  });
});

const CLONESET = {
  apiVersion: 'apps.kruise.io/v1alpha1',
  kind: 'CloneSet',
  metadata: { name: 'api', namespace: NS, uid: 'uid-CloneSet-api' },
  spec: {
    selector: { matchLabels: { app: 'api' } },
    template: {
      metadata: { labels: { app: 'api' } },
      spec: { containers: [{ name: 'c', ports: [{ name: 'p', containerPort: 8080 }] }] },
    },
  },
};

/** A pod of the CloneSet api of revision `hash`, instance `id`, at `ip`: the labels OpenKruise writes. */
const clonePod = (hash: string, id: string, ip: string) =>
  pod(
    `api-${id}`,
    ref('apps.kruise.io/v1alpha1', 'CloneSet', 'api'),
    {
      app: 'api',
      'controller-revision-hash': `api-${hash}`,
      'pod-template-hash': hash,
      'apps.kruise.io/cloneset-instance-id': id,
      'lifecycle.apps.kruise.io/state': 'Normal',
    },
    ip,
    8080,
  );

describe('an OpenKruise CloneSet', () => {
  const front = deployment('front', '10.244.1.1', 80);
  const toApi = (id: string, ip: string) => [flow(1, FRONT, at(ip, `api-${id}`), 8080)];

  for (const withObject of [true, false])
    it(`is the workload of its pods, named and selected alike across revisions, ${withObject ? 'with' : 'without'} its object in the snapshot`, async () => {
      const cs = withObject ? [CLONESET] : [];
      // Two pods of one revision; after a recreating update, one of another with a new instance id.
      const before = snapshot([
        ...front,
        ...cs,
        clonePod('7c9d8f6b5', 'x7k2p', '10.244.1.4'),
        clonePod('7c9d8f6b5', 'q8w2e', '10.244.1.5'),
      ]);
      const after = snapshot([...front, ...cs, clonePod('5f4e3d2c1', 'm3n4b', '10.244.1.14')]);
      const id = buildIdentity(before);
      expect([...id.podWorkload].filter(([p]) => p.startsWith('app/api'))).toEqual([
        ['app/api-q8w2e', 'app/CloneSet/api'],
        ['app/api-x7k2p', 'app/CloneSet/api'],
      ]);
      const api = id.workloads.get('app/CloneSet/api')!;
      expect([api.selector, api.labels, api.generatedLabels, api.varyingLabels]).toEqual([
        { matchLabels: { app: 'api' } },
        { app: 'api' },
        [
          'apps.kruise.io/cloneset-instance-id',
          'controller-revision-hash',
          'lifecycle.apps.kruise.io/state',
          'pod-template-hash',
        ],
        undefined,
      ]);
      expect(buildIdentity(after).podWorkload.get('app/api-m3n4b')).toBe('app/CloneSet/api');

      const { r, report } = await proveAcrossRollout(
        before,
        toApi('x7k2p', '10.244.1.4'),
        after,
        toApi('m3n4b', '10.244.1.14'),
      );
      const own = r.proposal.policies.find((p) => p.metadata.name === 'microseg-api')!;
      expect([
        own.metadata.annotations?.['microseg.dev/workload'],
        own.spec.podSelector,
        own.spec.ingress,
      ]).toEqual([
        'app/CloneSet/api',
        { matchLabels: { app: 'api' } },
        [
          {
            from: [{ podSelector: { matchLabels: { app: 'front' } } }],
            ports: [{ protocol: 'TCP', port: 8080 }],
          },
        ],
      ]);
      expect(report.blocked).toEqual([]);
      expect(report.allowedObserved).toBe(1);
    });
});

describe('a workload owned by a custom resource of a kind microseg does not know', () => {
  it('is named as before when it owns a ReplicaSet (after the ReplicaSet); it is the workload of the pods it owns directly', () => {
    // A StrimziPodSet owns its pods directly; an operator's custom resource owns a ReplicaSet.
    const strimzi = ref('core.strimzi.io/v1beta2', 'StrimziPodSet', 'kafka');
    const snap = snapshot([
      pod(
        'kafka-0',
        strimzi,
        { 'strimzi.io/cluster': 'kafka', 'strimzi.io/pod-name': 'kafka-0' },
        '10.244.1.6',
        9092,
      ),
      {
        apiVersion: 'apps/v1',
        kind: 'ReplicaSet',
        metadata: {
          name: 'tool-abc12',
          namespace: NS,
          uid: 'uid-ReplicaSet-tool-abc12',
          ownerReferences: [ref('example.com/v1', 'Tool', 'tool')],
        },
        spec: { selector: { matchLabels: { app: 'tool' } } },
      },
      pod('tool-abc12-x1x1x', ref('apps/v1', 'ReplicaSet', 'tool-abc12'), { app: 'tool' }, '10.244.1.7', 80),
      // A Rollout of another API group is not Argo's.
      {
        apiVersion: 'apps/v1',
        kind: 'ReplicaSet',
        metadata: {
          name: 'other-abc12',
          namespace: NS,
          uid: 'uid-ReplicaSet-other-abc12',
          ownerReferences: [ref('example.com/v1', 'Rollout', 'other')],
        },
        spec: { selector: { matchLabels: { app: 'other' } } },
      },
      pod(
        'other-abc12-x1x1x',
        ref('apps/v1', 'ReplicaSet', 'other-abc12'),
        { app: 'other' },
        '10.244.1.8',
        80,
      ),
    ]);
    const id = buildIdentity(snap);
    expect([...id.podWorkload]).toEqual([
      ['app/kafka-0', 'app/StrimziPodSet/kafka'],
      ['app/other-abc12-x1x1x', 'app/ReplicaSet/other-abc12'],
      ['app/tool-abc12-x1x1x', 'app/ReplicaSet/tool-abc12'],
    ]);
    // Its per-pod label left out of the selector (test/core/custom-owner.test.ts has the rest).
    expect(id.workloads.get('app/StrimziPodSet/kafka')!.selector).toEqual({
      matchLabels: { 'strimzi.io/cluster': 'kafka' },
    });
  });
});
