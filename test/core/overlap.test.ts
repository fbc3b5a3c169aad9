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

const T0 = Date.parse('2026-11-01T10:00:00Z');

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

/** A running Job whose pod carries `labels` (and the labels Kubernetes gives a Job's pods). */
function job(name: string, labels: Record<string, string>, ip: string) {
  const generated = { 'job-name': name, 'batch.kubernetes.io/controller-uid': `uid-${name}` };
  return [
    {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name, namespace: 'app', uid: `uid-${name}` },
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
const flow = (minute: number, src: FlowEndpoint, dst: FlowEndpoint, port: number): Flow => ({
  time: T0 + minute * 60_000,
  src,
  dst,
  port,
  protocol: 'TCP',
  verdict: 'FORWARDED',
  input: 'generic',
});

const WEB = at('10.244.1.1', 'web-webh-1');
const API = at('10.244.1.2', 'api-apih-1');
const DB = at('10.244.1.3', 'db-dbh-1');
/** web → api:8080, api → db:5432. */
const FLOWS = [flow(1, WEB, API, 8080), flow(2, API, DB, 5432)];

/** The chart's usual shape: the api Deployment selects app=api, its pods and the Job's carry more. */
const base = (apiLabels: Record<string, string>, jobLabels: Record<string, string>) => [
  ...deployment('web', { app: 'web' }, { app: 'web' }, '10.244.1.1'),
  ...deployment('api', { app: 'api' }, apiLabels, '10.244.1.2'),
  ...deployment('db', { app: 'db' }, { app: 'db' }, '10.244.1.3'),
  ...job('migrate', jobLabels, '10.244.1.7'),
];

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
  it("is narrowed by a label of its own the Job's pods lack: the excess the engine found is gone", async () => {
    const { r, prove } = await analyse(base({ app: 'api', tier: 'backend' }, { app: 'api' }));
    const p = r.proposal;
    const narrowed: LabelSelector = {
      matchLabels: { app: 'api' },
      matchExpressions: [{ key: 'tier', operator: 'In', values: ['backend'] }],
    };
    expect(policy(p, 'microseg-api').spec.podSelector).toEqual(narrowed);
    // The peer of web's egress and db's ingress is the same narrowed selector.
    expect(policy(p, 'microseg-web').spec.egress![0]!.to).toEqual([{ podSelector: narrowed }]);
    expect(policy(p, 'microseg-db').spec.ingress).toEqual([
      { from: [{ podSelector: narrowed }], ports: [{ protocol: 'TCP', port: 5432 }] },
    ]);
    expect(p.warnings.filter((w) => w.includes('also selects'))).toEqual([]);

    // With the workloads' own selectors, as before, the Job's pods got api's rules (and db admitted
    // them as it admits api): excess reachability the engine reports.
    const before = prove(unnarrowed(p));
    expect(before.blocked).toEqual([]);
    expect(before.report.excess).toEqual([
      { from: 'app/Job/migrate', to: 'app/Deployment/db', port: 5432, protocol: 'TCP' },
    ]);
    const after = prove(p);
    expect(after.blocked).toEqual([]);
    expect(after.checked).toBe(2);
    expect(after.report.excess).toEqual([]);
    expect(after.report.excessCount).toBe(0);
  });

  it('is written as exactly this YAML', async () => {
    const { r } = await analyse(base({ app: 'api', tier: 'backend' }, { app: 'api', hook: 'pre-upgrade' }));
    expect(policiesToYaml([policy(r.proposal, 'microseg-api')])).toBe(YAML);
  });

  it("is narrowed by a label only the Job's pods carry, DoesNotExist, when none of its own separates them", async () => {
    const { r, prove } = await analyse(base({ app: 'api' }, { app: 'api', hook: 'pre-upgrade' }));
    const narrowed: LabelSelector = {
      matchLabels: { app: 'api' },
      matchExpressions: [{ key: 'hook', operator: 'DoesNotExist' }],
    };
    expect(policy(r.proposal, 'microseg-api').spec.podSelector).toEqual(narrowed);
    expect(policy(r.proposal, 'microseg-web').spec.egress![0]!.to).toEqual([{ podSelector: narrowed }]);
    expect(prove(r.proposal).report.excess).toEqual([]);
  });

  it("narrows both ways: the Job's own selector leaves out api's pods", async () => {
    // The Job (selected by its template's labels) calls db too: its policy must not select api's pods.
    const { r: both, prove } = await analyse(base({ app: 'api', tier: 'backend' }, { app: 'api' }), [
      ...FLOWS,
      flow(3, at('10.244.1.7', 'migrate-x7k2p'), DB, 5432),
    ]);
    expect(policy(both.proposal, 'microseg-migrate').spec.podSelector).toEqual({
      matchLabels: { app: 'api' },
      matchExpressions: [{ key: 'tier', operator: 'DoesNotExist' }],
    });
    // db admits each of the two by its own narrowed selector.
    expect(policy(both.proposal, 'microseg-db').spec.ingress).toEqual([
      {
        from: [
          {
            podSelector: {
              matchLabels: { app: 'api' },
              matchExpressions: [{ key: 'tier', operator: 'In', values: ['backend'] }],
            },
          },
        ],
        ports: [{ protocol: 'TCP', port: 5432 }],
      },
      {
        from: [
          {
            podSelector: {
              matchLabels: { app: 'api' },
              matchExpressions: [{ key: 'tier', operator: 'DoesNotExist' }],
            },
          },
        ],
        ports: [{ protocol: 'TCP', port: 5432 }],
      },
    ]);
    const proof = prove(both.proposal);
    expect(proof.checked).toBe(3);
    expect(proof.blocked).toEqual([]);
    expect(proof.report.excess).toEqual([]);
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
    // would leave that pod out, and the connection web made to it would be blocked.
    const older = deployment(
      'api',
      { app: 'api' },
      { app: 'api' },
      '10.244.1.4',
      { app: 'api' },
      'old',
    ).slice(1);
    const { r, prove } = await analyse(
      [...base({ app: 'api', tier: 'backend' }, { app: 'api' }), ...older],
      [...FLOWS, flow(3, WEB, at('10.244.1.4', 'api-old-1'), 8080)],
    );
    expect(r.identity.workloads.get('app/Deployment/api')!.varyingLabels).toEqual(['tier']);
    expect(policy(r.proposal, 'microseg-api').spec.podSelector).toEqual({ matchLabels: { app: 'api' } });
    expect(r.proposal.warnings.filter((w) => w.includes('also selects'))).toEqual([
      'policy app/microseg-api (app/Deployment/api) also selects the pods of app/Job/migrate: no label separates them (the labels they differ by, tier, are not carried alike by all their pods), so its rules apply to them too (see verification.excess)',
    ]);
    expect(prove(r.proposal).blocked).toEqual([]);

    // A label the Job's template has and a webhook added to api's pod: `mesh DoesNotExist` would leave
    // api's own pod out; and the Job's selector app=api,mesh=on selects that pod, which its template
    // does not say.
    const meshed = await analyse(
      [
        ...deployment('web', { app: 'web' }, { app: 'web' }, '10.244.1.1'),
        ...deployment('api', { app: 'api' }, { app: 'api' }, '10.244.1.2', { app: 'api', mesh: 'on' }),
        ...deployment('db', { app: 'db' }, { app: 'db' }, '10.244.1.3'),
        ...job('migrate', { app: 'api', mesh: 'on' }, '10.244.1.7'),
      ],
      [...FLOWS, flow(3, at('10.244.1.7', 'migrate-x7k2p'), DB, 5432)],
    );
    expect(meshed.r.identity.workloads.get('app/Deployment/api')!.varyingLabels).toEqual(['mesh']);
    expect(policy(meshed.r.proposal, 'microseg-api').spec.podSelector).toEqual({
      matchLabels: { app: 'api' },
    });
    expect(meshed.r.proposal.warnings.filter((w) => w.includes('also selects'))).toEqual([
      'policy app/microseg-api (app/Deployment/api) also selects the pods of app/Job/migrate: no label separates them (the labels they differ by, mesh, are not carried alike by all their pods), so its rules apply to them too (see verification.excess)',
      'policy app/microseg-migrate (app/Job/migrate) also selects the pods of app/Deployment/api: no label separates them (the labels they differ by, mesh, are not carried alike by all their pods), so its rules apply to them too (see verification.excess)',
    ]);
    expect(meshed.prove(meshed.r.proposal).blocked).toEqual([]);
  });

  it('keeps the warning, saying no label separates them, when their labels are the same', async () => {
    const { r, prove } = await analyse(base({ app: 'api' }, { app: 'api' }));
    expect(policy(r.proposal, 'microseg-api').spec.podSelector).toEqual({ matchLabels: { app: 'api' } });
    expect(r.proposal.warnings.filter((w) => w.includes('also selects'))).toEqual([
      'policy app/microseg-api (app/Deployment/api) also selects the pods of app/Job/migrate: no label separates them (both carry exactly app=api), so its rules apply to them too (see verification.excess)',
    ]);
    expect(prove(r.proposal).report.excess.length).toBeGreaterThan(0);
  });
});

/** api's policy when its pods carry tier=backend and the Job's carry hook=pre-upgrade: In preferred. */
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
      - key: tier
        operator: In
        values:
          - backend
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

  it('never uses a label Kubernetes generates per pod, revision or run', () => {
    // The two differ only in generated labels: nothing separates them.
    const sts = w('StatefulSet/db', { app: 'db', 'controller-revision-hash': 'r1' });
    const pod = w('Pod/db-debug', { app: 'db', 'statefulset.kubernetes.io/pod-name': 'db-0' });
    const n = narrowSelector(sts, [pod]);
    expect(n.selector).toBe(sts.selector);
    expect(n.unseparated).toEqual([pod]);
  });
});
