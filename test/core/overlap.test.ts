/**
 * A workload's selector that also matches the pods of another workload of its namespace (a chart's
 * migration Job labelled as its Deployment): the proposal narrows it by a label that separates them, in
 * the workload's own policy and wherever a rule names it as a peer, so neither gets the other's rules.
 */
import { describe, expect, it } from 'vitest';
import type { Flow, FlowEndpoint } from '../../src/flows/types.ts';
import type { Workload } from '../../src/identity/types.ts';
import type { LabelSelector, NetworkPolicy } from '../../src/model/k8s.ts';
import { loadSnapshotText } from '../../src/model/snapshot.ts';
import { narrowSelector } from '../../src/policy/narrow.ts';
import { policiesToYaml } from '../../src/policy/render.ts';
import { proveProposal } from '../../src/policy/prove.ts';
import type { Proposal } from '../../src/policy/types.ts';
import { runPipeline } from '../../src/pipeline.ts';
import { fixtureFlows, fixtureSnapshot } from './fixture.ts';
import { tcpFlow } from './workload-fixture.ts';

/**
 * A Deployment selecting `selector` whose pod template carries `labels`, with a ReplicaSet and its pod at
 * `ip`, which carries `podLabels` (another revision's, or with a label a webhook added), `hash` naming both.
 */
function deployment(
  name: string,
  selector: Record<string, string>,
  labels: Record<string, string>,
  ip: string,
  podLabels0: Record<string, string> = labels,
  hash = `${name}h`,
) {
  const podLabels = { ...podLabels0, 'pod-template-hash': hash };
  return [
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name, namespace: 'app', uid: `uid-${name}` },
      spec: {
        selector: { matchLabels: selector },
        template: { metadata: { labels }, spec: { containers: [{ name }] } },
      },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: {
        name: `${name}-${hash}`,
        namespace: 'app',
        uid: `uid-${name}-${hash}`,
        ownerReferences: [
          { apiVersion: 'apps/v1', kind: 'Deployment', name, uid: `uid-${name}`, controller: true },
        ],
      },
      spec: { selector: { matchLabels: { ...selector, 'pod-template-hash': hash } } },
    },
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: `${name}-${hash}-1`,
        namespace: 'app',
        labels: podLabels,
        ownerReferences: [
          {
            apiVersion: 'apps/v1',
            kind: 'ReplicaSet',
            name: `${name}-${hash}`,
            uid: `uid-${name}-${hash}`,
            controller: true,
          },
        ],
      },
      spec: { nodeName: 'node-1', containers: [{ name: 'c' }] },
      status: { phase: 'Running', podIP: ip, hostIP: '192.168.0.10', startTime: '2026-11-01T00:00:00Z' },
    },
  ];
}

/** The labels Kubernetes gives a Job's pods: since 1.27 (`now`), before (`legacy`). */
function jobLabels(name: string, version: 'now' | 'legacy'): Record<string, string> {
  const legacy = { 'job-name': name, 'controller-uid': `uid-${name}` };
  return version === 'legacy'
    ? legacy
    : {
        ...legacy,
        'batch.kubernetes.io/job-name': name,
        'batch.kubernetes.io/controller-uid': `uid-${name}`,
      };
}

/**
 * A running Job whose pod carries `labels` (and the labels Kubernetes `version` gives a Job's pods), made
 * by the CronJob `cronJob` when given.
 */
function job(
  name: string,
  labels: Record<string, string>,
  ip: string,
  version: 'now' | 'legacy' = 'now',
  cronJob?: string,
) {
  const generated = jobLabels(name, version);
  const owner = cronJob
    ? {
        ownerReferences: [
          { apiVersion: 'batch/v1', kind: 'CronJob', name: cronJob, uid: `uid-${cronJob}`, controller: true },
        ],
      }
    : {};
  return [
    {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name, namespace: 'app', uid: `uid-${name}`, ...owner },
      spec: {
        selector: { matchLabels: { 'batch.kubernetes.io/controller-uid': `uid-${name}` } },
        template: { metadata: { labels: { ...labels, ...generated } } },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: `${name}-x7k2p`,
        namespace: 'app',
        labels: { ...labels, ...generated },
        ownerReferences: [
          { apiVersion: 'batch/v1', kind: 'Job', name, uid: `uid-${name}`, controller: true },
        ],
      },
      spec: { nodeName: 'node-1', containers: [{ name: 'c' }] },
      status: { phase: 'Running', podIP: ip, hostIP: '192.168.0.10', startTime: '2026-11-01T09:00:00Z' },
    },
  ];
}

/** A bare pod (`kubectl run`, a debugging copy) carrying `labels`. */
function barePod(name: string, labels: Record<string, string>, ip: string) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'app', labels },
    spec: { nodeName: 'node-1', containers: [{ name: 'c' }] },
    status: { phase: 'Running', podIP: ip, hostIP: '192.168.0.10', startTime: '2026-11-01T09:30:00Z' },
  };
}

function cluster(items: unknown[]) {
  const ns = {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: 'app', labels: { 'kubernetes.io/metadata.name': 'app' } },
  };
  return loadSnapshotText(
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [ns, ...items] }),
    'cluster.json',
  );
}

const at = (ip: string, pod: string): FlowEndpoint => ({ ip, namespace: 'app', pod });
/** A forwarded TCP flow `minute` minutes after 10:00 (the shared fixture's). */
const flow = tcpFlow;

const WEB = at('10.244.1.1', 'web-webh-1');
const API = at('10.244.1.2', 'api-apih-1');
const DB = at('10.244.1.3', 'db-dbh-1');
/** web → api:8080, api → db:5432. */
const FLOWS = [flow(1, WEB, API, 8080), flow(2, API, DB, 5432)];

/** The chart's usual shape: the api Deployment selects app=api, its pods and the Job's carry more. */
const base = (apiLabels: Record<string, string>, migrateLabels: Record<string, string>) => [
  ...deployment('web', { app: 'web' }, { app: 'web' }, '10.244.1.1'),
  ...deployment('api', { app: 'api' }, apiLabels, '10.244.1.2'),
  ...deployment('db', { app: 'db' }, { app: 'db' }, '10.244.1.3'),
  ...job('migrate', migrateLabels, '10.244.1.7'),
];

/** The labels a Helm chart gives api's pod template: a version and a chart label every upgrade changes. */
const helm = (version: string) => ({
  app: 'api',
  'app.kubernetes.io/version': version,
  'helm.sh/chart': `api-${version}`,
});

const MIGRATE = at('10.244.1.7', 'migrate-x7k2p');
const DEBUG = at('10.244.1.8', 'api-debug');

const policy = (p: Proposal, name: string) => p.policies.find((x) => x.metadata.name === name)!;

async function analyse(items: unknown[], flows: Flow[] = FLOWS) {
  const snap = cluster(items);
  const r = await runPipeline(snap, flows);
  const prove = (proposal: Proposal) =>
    proveProposal({
      snapshot: snap,
      workloads: r.identity.workloads,
      graph: r.graph,
      proposal,
      apiserverIPs: r.identity.apiserverEndpoints.ips,
      podWorkload: r.identity.podWorkload,
    });
  return { r, prove };
}

/**
 * `p` with every podSelector (the policies' own and their peers') as the workloads' own selectors, as
 * the proposal wrote them before: here, their matchLabels alone.
 */
function unnarrowed(p: Proposal): Proposal {
  const undo = (s: LabelSelector): LabelSelector => ({ matchLabels: s.matchLabels! });
  const policies = p.policies.map((np): NetworkPolicy =>
    np.metadata.name === 'microseg-default-deny'
      ? np
      : {
          ...np,
          spec: {
            ...np.spec,
            podSelector: undo(np.spec.podSelector),
            ingress: np.spec.ingress!.map((r) => ({
              ...r,
              from: r.from!.map((peer) => ({ ...peer, podSelector: undo(peer.podSelector!) })),
            })),
            egress: np.spec.egress!.map((r) => ({
              ...r,
              to: r.to!.map((peer) => ({ ...peer, podSelector: undo(peer.podSelector!) })),
            })),
          },
        },
  );
  return { ...p, policies };
}

describe('a workload whose selector also matches the pods of a Job of its namespace', () => {
  const ports = (port: number) => [{ protocol: 'TCP', port }];
  /** api's selector, narrowed by the presence of the label Kubernetes gives every Job's pods. */
  const API_SELECTOR: LabelSelector = {
    matchLabels: { app: 'api' },
    matchExpressions: [{ key: 'batch.kubernetes.io/job-name', operator: 'DoesNotExist' }],
  };
  /** The Job's selector, narrowed by the presence of the label a Deployment gives every pod. */
  const JOB_SELECTOR: LabelSelector = {
    matchLabels: { app: 'api' },
    matchExpressions: [{ key: 'pod-template-hash', operator: 'DoesNotExist' }],
  };

  it("is narrowed, both ways, by the labels their kinds give their pods, not by api's version label: no excess, nothing blocked after a rollout", async () => {
    // A chart's api Deployment (app=api, plus labels each upgrade changes) and its migration Job (app=api),
    // which fills the cache.
    const cache = deployment('cache', { app: 'cache' }, { app: 'cache' }, '10.244.1.6');
    const CACHE = at('10.244.1.6', 'cache-cacheh-1');
    const flows = [...FLOWS, flow(3, MIGRATE, CACHE, 6379)];
    const { r, prove } = await analyse([...base(helm('1.2.3'), { app: 'api' }), ...cache], flows);
    const p = r.proposal;
    expect(r.identity.workloads.get('app/Job/migrate')!.generatedLabels).toEqual([
      'batch.kubernetes.io/controller-uid',
      'batch.kubernetes.io/job-name',
      'controller-uid',
      'job-name',
    ]);
    expect(r.identity.workloads.get('app/Deployment/api')!.generatedLabels).toEqual(['pod-template-hash']);
    expect(policy(p, 'microseg-api').spec.podSelector).toEqual(API_SELECTOR);
    expect(policy(p, 'microseg-migrate').spec.podSelector).toEqual(JOB_SELECTOR);
    // The peer of web's egress and db's ingress is the same narrowed selector; db admits each by its own.
    expect(policy(p, 'microseg-web').spec.egress![0]!.to).toEqual([{ podSelector: API_SELECTOR }]);
    expect(policy(p, 'microseg-db').spec.ingress).toEqual([
      { from: [{ podSelector: API_SELECTOR }], ports: ports(5432) },
    ]);
    expect(policy(p, 'microseg-cache').spec.ingress).toEqual([
      { from: [{ podSelector: JOB_SELECTOR }], ports: ports(6379) },
    ]);
    expect(p.warnings.filter((w) => w.includes('also selects') || w.includes('pod-template'))).toEqual([]);

    // With the workloads' own selectors, as before narrowing, each got the other's rules (and db and
    // cache admitted both): api may reach the cache and the Job db, excess reachability the engine reports.
    const before = prove(unnarrowed(p));
    expect(before.blocked).toEqual([]);
    expect(before.report.excess).toEqual(EXCESS);
    const after = prove(p);
    expect(after.blocked).toEqual([]);
    expect(after.checked).toBe(3);
    expect(after.report.excess).toEqual([]);

    // The next upgrade: api's pods of a new revision carry version 1.2.4 and chart api-1.2.4. The
    // proposal made before still selects them: nothing they do is blocked.
    const newApi = at('10.244.1.5', 'api-newh-1');
    const upgraded = await analyse(
      [
        ...deployment('web', { app: 'web' }, { app: 'web' }, '10.244.1.1'),
        ...deployment('api', { app: 'api' }, helm('1.2.4'), '10.244.1.5', helm('1.2.4'), 'newh'),
        ...deployment('db', { app: 'db' }, { app: 'db' }, '10.244.1.3'),
        ...job('migrate', { app: 'api' }, '10.244.1.7'),
        ...cache,
      ],
      [flow(1, WEB, newApi, 8080), flow(2, newApi, DB, 5432), flow(3, MIGRATE, CACHE, 6379)],
    );
    const rolledOut = upgraded.prove(p);
    expect(rolledOut.checked).toBe(3);
    expect(rolledOut.blocked).toEqual([]);
    expect(rolledOut.report.excess).toEqual([]);
  });

  it('is written as exactly this YAML', async () => {
    const { r } = await analyse(base(helm('1.2.3'), { app: 'api', hook: 'pre-upgrade' }));
    expect(policiesToYaml([policy(r.proposal, 'microseg-api')])).toBe(YAML);
  });

  it("uses the Job label every one of its pods carries: job-name before Kubernetes 1.27, and for a CronJob's Jobs of both", async () => {
    const legacy = await analyse(
      [
        ...base(helm('1.2.3'), { app: 'api' }).slice(0, -2),
        ...job('migrate', { app: 'api' }, '10.244.1.7', 'legacy'),
      ],
      [...FLOWS, flow(3, MIGRATE, DB, 5432)],
    );
    const jobName: LabelSelector = {
      matchLabels: { app: 'api' },
      matchExpressions: [{ key: 'job-name', operator: 'DoesNotExist' }],
    };
    expect(policy(legacy.r.proposal, 'microseg-api').spec.podSelector).toEqual(jobName);
    expect(legacy.prove(legacy.r.proposal).report.excess).toEqual([]);

    // A CronJob whose Jobs ran before and after an upgrade: only the older labels are on all its pods.
    const cronJob = {
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      metadata: { name: 'migrate', namespace: 'app', uid: 'uid-migrate' },
      spec: {
        schedule: '0 * * * *',
        jobTemplate: { spec: { template: { metadata: { labels: { app: 'api' } } } } },
      },
    };
    const cron = await analyse(
      [
        ...base(helm('1.2.3'), { app: 'api' }).slice(0, -2),
        cronJob,
        ...job('migrate-100', { app: 'api' }, '10.244.1.7', 'legacy', 'migrate'),
        ...job('migrate-200', { app: 'api' }, '10.244.1.9', 'now', 'migrate'),
      ],
      [...FLOWS, flow(3, at('10.244.1.9', 'migrate-200-x7k2p'), DB, 5432)],
    );
    const cw = cron.r.identity.workloads.get('app/CronJob/migrate')!;
    expect(cw.generatedLabels).toEqual(['controller-uid', 'job-name']);
    expect(cw.varyingLabels).toEqual(['batch.kubernetes.io/controller-uid', 'batch.kubernetes.io/job-name']);
    expect(policy(cron.r.proposal, 'microseg-api').spec.podSelector).toEqual(jobName);
    expect(policy(cron.r.proposal, 'microseg-migrate').spec.podSelector).toEqual(JOB_SELECTOR);
    const proof = cron.prove(cron.r.proposal);
    expect(proof.blocked).toEqual([]);
    expect(proof.report.excess).toEqual([]);
  });

  it("is narrowed by a stable label only the other's pods carry, DoesNotExist, before a label of its own template", async () => {
    // A bare pod (kubectl run) labelled app=api, debug=true: no label of its kind tells it apart, its
    // debug label does; api's version label is not used.
    const { r, prove } = await analyse(
      [
        ...base(helm('1.2.3'), { app: 'api' }),
        barePod('api-debug', { app: 'api', debug: 'true' }, DEBUG.ip!),
      ],
      [...FLOWS, flow(3, DEBUG, DB, 5432)],
    );
    const narrowed: LabelSelector = {
      matchLabels: { app: 'api' },
      matchExpressions: [
        { key: 'batch.kubernetes.io/job-name', operator: 'DoesNotExist' },
        { key: 'debug', operator: 'DoesNotExist' },
      ],
    };
    expect(policy(r.proposal, 'microseg-api').spec.podSelector).toEqual(narrowed);
    expect(policy(r.proposal, 'microseg-web').spec.egress![0]!.to).toEqual([{ podSelector: narrowed }]);
    expect(r.proposal.warnings.filter((w) => w.includes('pod-template'))).toEqual([]);
    const proof = prove(r.proposal);
    expect(proof.blocked).toEqual([]);
    expect(proof.report.excess).toEqual([]);
  });

  it('is narrowed by a label of its own pod template only when nothing else tells them apart, with a warning naming the policies and the label', async () => {
    // A bare pod labelled app=api alone: only api's version and chart labels tell api's pods from it.
    const { r, prove } = await analyse(
      [...base(helm('1.2.3'), { app: 'api' }), barePod('api-debug', { app: 'api' }, DEBUG.ip!)],
      [...FLOWS, flow(3, DEBUG, DB, 5432)],
    );
    const narrowed: LabelSelector = {
      matchLabels: { app: 'api' },
      matchExpressions: [
        { key: 'app.kubernetes.io/version', operator: 'In', values: ['1.2.3'] },
        { key: 'batch.kubernetes.io/job-name', operator: 'DoesNotExist' },
      ],
    };
    expect(policy(r.proposal, 'microseg-api').spec.podSelector).toEqual(narrowed);
    // The bare pod's own selector leaves api's pods out by the label a Deployment gives them, the Job's
    // by the label a Job gives its pods.
    expect(policy(r.proposal, 'microseg-api-debug').spec.podSelector).toEqual({
      matchLabels: { app: 'api' },
      matchExpressions: [
        { key: 'batch.kubernetes.io/job-name', operator: 'DoesNotExist' },
        { key: 'pod-template-hash', operator: 'DoesNotExist' },
      ],
    });
    expect(
      r.proposal.warnings.filter((w) => w.includes('pod-template') || w.includes('also selects')),
    ).toEqual([
      "policies app/microseg-api, app/microseg-db, app/microseg-web select the pods of app/Deployment/api by their pod-template label app.kubernetes.io/version=1.2.3 (app.kubernetes.io/version In [1.2.3], leaving out the pods of app/Pod/api-debug): a rollout that changes the label would leave its new pods unselected, and the namespace's default deny would block their traffic; pin the label or give either workload's pods a label that tells them apart",
    ]);
    const proof = prove(r.proposal);
    expect(proof.blocked).toEqual([]);
    expect(proof.report.excess).toEqual([]);

    // Only api's own policy selects by it: one policy named.
    const alone = await analyse(
      [...base(helm('1.2.3'), { app: 'api' }), barePod('api-debug', { app: 'api' }, DEBUG.ip!)],
      [flow(1, API, { ip: '93.184.216.34' }, 443)],
    );
    expect(alone.r.proposal.warnings.filter((w) => w.includes('pod-template'))).toEqual([
      "policy app/microseg-api selects the pods of app/Deployment/api by their pod-template label app.kubernetes.io/version=1.2.3 (app.kubernetes.io/version In [1.2.3], leaving out the pods of app/Pod/api-debug): a rollout that changes the label would leave its new pods unselected, and the namespace's default deny would block their traffic; pin the label or give either workload's pods a label that tells them apart",
    ]);
  });

  it('is the cluster DNS peer of every DNS rule, narrowed alike', async () => {
    // A bare debug pod in kube-system labelled as coredns, plus debug=true: coredns's selector
    // k8s-app=kube-dns selects it; DNS rules name coredns without it, whether a flow to it was observed
    // (cart's, whose rule names it as a peer) or not (db's, the rule every policy gets).
    const snap = fixtureSnapshot();
    snap.pods.push({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'dns-debug',
        namespace: 'kube-system',
        labels: { 'k8s-app': 'kube-dns', debug: 'true' },
      },
      spec: { nodeName: 'node-1', containers: [{ name: 'c' }] },
      status: { phase: 'Running', podIP: '10.244.1.99', hostIP: '192.168.0.10' },
    });
    const r = await runPipeline(snap, fixtureFlows());
    const kubeSystem = { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } };
    for (const name of ['microseg-cart', 'microseg-db']) {
      const dnsPeers = policy(r.proposal, name)
        .spec.egress!.flatMap((e) => e.to!)
        .filter((t) => t.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === 'kube-system');
      // The kube-dns Service selects the debug pod too: a DNS workload of its own, by its labels.
      expect(dnsPeers, name).toEqual([
        {
          namespaceSelector: kubeSystem,
          podSelector: {
            matchLabels: { 'k8s-app': 'kube-dns' },
            matchExpressions: [{ key: 'debug', operator: 'DoesNotExist' }],
          },
        },
        {
          namespaceSelector: kubeSystem,
          podSelector: { matchLabels: { debug: 'true', 'k8s-app': 'kube-dns' } },
        },
      ]);
    }
  });

  it('never rests on a label the pods of either do not all carry alike', async () => {
    // api's template says tier=backend, but its pod of an older revision has no tier: `tier In [backend]`
    // would leave that pod out of the policies, and the connection web made to it would be blocked. A
    // bare pod labelled app=api has no label of its kind, nor one of its own, to tell it apart instead.
    const older = deployment(
      'api',
      { app: 'api' },
      { app: 'api' },
      '10.244.1.4',
      { app: 'api' },
      'old',
    ).slice(1);
    const { r, prove } = await analyse(
      [
        ...base({ app: 'api', tier: 'backend' }, { app: 'api' }),
        ...older,
        barePod('api-debug', { app: 'api' }, DEBUG.ip!),
      ],
      [...FLOWS, flow(3, WEB, at('10.244.1.4', 'api-old-1'), 8080)],
    );
    expect(r.identity.workloads.get('app/Deployment/api')!.varyingLabels).toEqual(['tier']);
    expect(policy(r.proposal, 'microseg-api').spec.podSelector).toEqual(API_SELECTOR);
    expect(
      r.proposal.warnings.filter((w) => w.includes('also selects') || w.includes('pod-template')),
    ).toEqual([
      'policy app/microseg-api (app/Deployment/api) also selects the pods of app/Pod/api-debug: no label separates them (the labels they differ by, tier, are not carried alike by all their pods), so its rules apply to them too (see verification.excess)',
    ]);
    expect(prove(r.proposal).blocked).toEqual([]);

    // A label the bare pod carries and a webhook added to api's pod: `mesh DoesNotExist` would leave
    // api's own pod out. The bare pod's selector app=api,mesh=on selects api's pod too, which api's
    // template does not say: it leaves api's pods out by the label a Deployment gives them.
    const meshed = await analyse(
      [
        ...deployment('web', { app: 'web' }, { app: 'web' }, '10.244.1.1'),
        ...deployment('api', { app: 'api' }, { app: 'api' }, '10.244.1.2', { app: 'api', mesh: 'on' }),
        ...deployment('db', { app: 'db' }, { app: 'db' }, '10.244.1.3'),
        barePod('api-debug', { app: 'api', mesh: 'on' }, DEBUG.ip!),
      ],
      [...FLOWS, flow(3, DEBUG, DB, 5432)],
    );
    expect(meshed.r.identity.workloads.get('app/Deployment/api')!.varyingLabels).toEqual(['mesh']);
    expect(policy(meshed.r.proposal, 'microseg-api').spec.podSelector).toEqual({
      matchLabels: { app: 'api' },
    });
    expect(policy(meshed.r.proposal, 'microseg-api-debug').spec.podSelector).toEqual({
      matchLabels: { app: 'api', mesh: 'on' },
      matchExpressions: [{ key: 'pod-template-hash', operator: 'DoesNotExist' }],
    });
    expect(meshed.r.proposal.warnings.filter((w) => w.includes('also selects'))).toEqual([
      'policy app/microseg-api (app/Deployment/api) also selects the pods of app/Pod/api-debug: no label separates them (the labels they differ by, mesh, are not carried alike by all their pods), so its rules apply to them too (see verification.excess)',
    ]);
    expect(meshed.prove(meshed.r.proposal).blocked).toEqual([]);
  });

  it('keeps the warning, saying no label separates them, when their labels are the same', async () => {
    // A bare pod labelled exactly as api's pods: nothing keeps it out of api's policy (its own selector
    // would leave api's pods out by the label a Deployment gives them).
    const { r, prove } = await analyse([
      ...deployment('web', { app: 'web' }, { app: 'web' }, '10.244.1.1'),
      ...deployment('api', { app: 'api' }, { app: 'api' }, '10.244.1.2'),
      ...deployment('db', { app: 'db' }, { app: 'db' }, '10.244.1.3'),
      barePod('api-debug', { app: 'api' }, DEBUG.ip!),
    ]);
    expect(policy(r.proposal, 'microseg-api').spec.podSelector).toEqual({ matchLabels: { app: 'api' } });
    expect(r.proposal.warnings.filter((w) => w.includes('also selects'))).toEqual([
      'policy app/microseg-api (app/Deployment/api) also selects the pods of app/Pod/api-debug: no label separates them (both carry exactly app=api), so its rules apply to them too (see verification.excess)',
    ]);
    expect(prove(r.proposal).report.excess.length).toBeGreaterThan(0);
  });
});

/**
 * api's policy when its pods carry a chart's version labels and the Job's carry hook=pre-upgrade: the
 * presence of the Job's own label preferred to either.
 */
const EXCESS = [
  { from: 'app/Deployment/api', to: 'app/Deployment/cache', port: 6379, protocol: 'TCP' },
  { from: 'app/Job/migrate', to: 'app/Deployment/db', port: 5432, protocol: 'TCP' },
];

const YAML = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: microseg-api
  namespace: app
  labels:
    app.kubernetes.io/managed-by: microseg
    microseg.dev/segment: app-api
  annotations:
    microseg.dev/workload: app/Deployment/api
spec:
  podSelector:
    matchLabels:
      app: api
    matchExpressions:
      - key: batch.kubernetes.io/job-name
        operator: DoesNotExist
  policyTypes:
    - Ingress
    - Egress
  ingress:
    - from:
        - podSelector:
            matchLabels:
              app: web
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

describe('narrowSelector', () => {
  const w = (id: string, labels: Record<string, string>, selector: LabelSelector = { matchLabels: labels }) =>
    ({ id: `app/${id}`, namespace: 'app', labels, selector }) as Workload;

  it('takes the label that separates the most workloads first, then the smallest key; sorted; the same in any order', () => {
    const api = w(
      'Deployment/api',
      { app: 'api', 'pod-template-hash': 'x', tier: 'backend', zone: 'a' },
      {
        matchLabels: { app: 'api' },
        matchExpressions: [{ key: 'zone', operator: 'Exists' }],
      },
    );
    const a = w('Job/a', { app: 'api', tier: 'backend', zone: 'b' });
    const b = w('Job/b', { app: 'api', zone: 'b' });
    const c = w('Job/c', { app: 'api', tier: 'backend', zone: 'a', extra: 'y' });
    const want = {
      matchLabels: { app: 'api' },
      matchExpressions: [
        { key: 'extra', operator: 'DoesNotExist' },
        { key: 'zone', operator: 'Exists' },
        { key: 'zone', operator: 'In', values: ['a'] },
      ],
    };
    for (const others of [
      [a, b, c],
      [c, b, a],
    ]) {
      const n = narrowSelector(api, others);
      expect(n.selector).toEqual(want);
      expect(n.unseparated).toEqual([]);
      expect(n.overlapping.map((o) => o.id)).toEqual(['app/Job/a', 'app/Job/b', 'app/Job/c']);
    }
  });

  /** `w(…)` of `kind`, its pods carrying the generated keys `generatedLabels` (and varying in `varying`). */
  const of = (
    kind: Workload['kind'],
    x: Workload,
    generatedLabels?: string[],
    varyingLabels?: string[],
  ): Workload => ({
    ...x,
    kind,
    ...(generatedLabels ? { generatedLabels } : {}),
    ...(varyingLabels ? { varyingLabels } : {}),
  });
  const JOB = [
    'batch.kubernetes.io/controller-uid',
    'batch.kubernetes.io/job-name',
    'controller-uid',
    'job-name',
  ];
  const doesNotExist = (key: string) => ({ key, operator: 'DoesNotExist' });

  it("prefers, in turn, the presence of a label of the other's kind, a stable label of the other's, a label of its own template, which it reports", () => {
    const api = of(
      'Deployment',
      w('Deployment/api', { app: 'api', version: 'v1' }, { matchLabels: { app: 'api' } }),
      ['pod-template-hash'],
    );
    // `version In [v1]` alone would leave out all three: it is taken only for the one nothing else does.
    const migrate = of('Job', w('Job/migrate', { app: 'api', version: 'v0' }), JOB);
    const debug = of('Pod', w('Pod/debug', { app: 'api', debug: 'true' }));
    const shell = of('Pod', w('Pod/shell', { app: 'api' }));
    for (const others of [
      [migrate, debug, shell],
      [shell, debug, migrate],
    ]) {
      const n = narrowSelector(api, others);
      expect(n.selector).toEqual({
        matchLabels: { app: 'api' },
        matchExpressions: [
          doesNotExist('batch.kubernetes.io/job-name'),
          doesNotExist('debug'),
          { key: 'version', operator: 'In', values: ['v1'] },
        ],
      });
      expect(n.unseparated).toEqual([]);
      expect(n.onTemplate).toEqual([
        { requirement: { key: 'version', operator: 'In', values: ['v1'] }, leavesOut: [shell] },
      ]);
    }
    // Without shell, nothing rests on api's template.
    expect(narrowSelector(api, [migrate, debug]).onTemplate).toEqual([]);
  });

  it("relies on a generated key only where every pod of the other carries it, and no pod of its own does or its kind's may", () => {
    const labels = { app: 'api' };
    const api = of('Deployment', w('Deployment/api', labels), ['pod-template-hash']);
    // A CronJob's Jobs from before and after an upgrade: only the older keys are on every pod.
    const cron = of(
      'CronJob',
      w('CronJob/migrate', labels),
      ['controller-uid', 'job-name'],
      ['batch.kubernetes.io/controller-uid', 'batch.kubernetes.io/job-name'],
    );
    expect(narrowSelector(api, [cron]).selector).toEqual({
      matchLabels: labels,
      matchExpressions: [doesNotExist('job-name')],
    });
    // The same CronJob between runs (no pod in the snapshot): nothing says which keys its pods carry.
    const idle = of('CronJob', w('CronJob/migrate', labels));
    expect(narrowSelector(api, [idle]).unseparated).toEqual([idle]);
    // A Job beside a CronJob: their pods carry the same keys.
    const job = of('Job', w('Job/manual', labels), JOB);
    expect(narrowSelector(job, [cron]).unseparated).toEqual([cron]);
    // A bare pod copied from api's, pod-template-hash and all: that key no longer tells them apart.
    const copy = of('Pod', w('Pod/api-copy', labels), ['pod-template-hash']);
    expect(narrowSelector(copy, [api]).unseparated).toEqual([api]);
    // A StatefulSet and a DaemonSet both carry controller-revision-hash; only the DaemonSet's pods carry
    // pod-template-generation.
    const sts = of('StatefulSet', w('StatefulSet/db', labels), [
      'controller-revision-hash',
      'statefulset.kubernetes.io/pod-name',
    ]);
    const ds = of('DaemonSet', w('DaemonSet/agent', labels), [
      'controller-revision-hash',
      'pod-template-generation',
    ]);
    expect(narrowSelector(sts, [ds]).selector.matchExpressions).toEqual([
      doesNotExist('pod-template-generation'),
    ]);
    expect(narrowSelector(ds, [sts]).selector.matchExpressions).toEqual([
      doesNotExist('statefulset.kubernetes.io/pod-name'),
    ]);
  });

  it('never uses a label Kubernetes generates per pod, revision or run', () => {
    // The two differ only in generated labels: nothing separates them.
    const sts = w('StatefulSet/db', { app: 'db', 'controller-revision-hash': 'r1' });
    const pod = w('Pod/db-debug', { app: 'db', 'statefulset.kubernetes.io/pod-name': 'db-0' });
    const n = narrowSelector(sts, [pod]);
    expect(n.selector).toBe(sts.selector);
    expect(n.unseparated).toEqual([pod]);
  });
});
