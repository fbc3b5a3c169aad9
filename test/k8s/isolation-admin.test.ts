// The admin-tier rungs of the mechanism ladder against a real kube-apiserver of its own (installing the
// policy.networking.k8s.io CRDs would change what other test files' clusters serve): AdminNetworkPolicy
// (v1alpha1) once its CRD is served, ClusterNetworkPolicy (v1alpha2) once that is served too. A foreign
// allow policy that defeats the NetworkPolicy mechanism does not leak here; what the admin tier cannot
// name (ingress from outside addresses) is still found. Also: workload targets that include future pods.
import { fileURLToPath } from 'node:url';
import type { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Cluster,
  createNamespace,
  createPod,
  eventually,
  startCluster,
  uniqueName,
} from '../cluster/index.ts';
import type { Isolation } from '../../src/isolate/api.ts';
import { QUARANTINE_LABEL } from '../../src/isolate/api.ts';
import { type IsolationController, startIsolationController } from '../../src/isolate/controller.ts';
import { KubeClient, paths } from '../../src/isolate/kube.ts';
import type { NetworkPolicy, OtherObject, Pod } from '../../src/model/k8s.ts';

const file = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const fixtures = '../isolate/fixtures/crds/';

let cluster: Cluster;
let kc: KubeConfig;
let kube: KubeClient;
let ns: string;
let ctl: IsolationController;

async function kubectl(args: string[], input?: string): Promise<string> {
  const r = await cluster.kubectl(args, input === undefined ? {} : { input });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function installCrd(name: string): Promise<void> {
  await kubectl(['apply', '-f', file(`${fixtures}policy.networking.k8s.io_${name}.yaml`)]);
  await kubectl([
    'wait',
    '--for=condition=Established',
    `crd/${name}.policy.networking.k8s.io`,
    '--timeout=30s',
  ]);
  // Discovery catches up asynchronously after Established.
  await eventually(`${name} discovered`, async () =>
    (await kubectl(['api-resources', '--api-group=policy.networking.k8s.io', '-o', 'name'])).includes(name),
  );
  ctl.reconciler.forgetDiscovery();
}

const getIso = (name: string) => kube.request<Isolation>({ method: 'GET', path: paths.isolation(ns, name) });
const getPod = (name: string) => kube.request<Pod>({ method: 'GET', path: paths.pod(ns, name) });

async function phaseOf(name: string, want: string[]): Promise<Isolation> {
  return eventually(`Isolation ${name} in ${want.join('/')}`, async () => {
    const i = await getIso(name);
    return want.includes(i.status?.phase ?? '') ? i : undefined;
  });
}

function isolationYaml(name: string, spec: string): string {
  return `apiVersion: microseg.dev/v1alpha1\nkind: Isolation\nmetadata:\n  name: ${name}\n  namespace: ${ns}\nspec:\n${spec}`;
}

async function createNp(name: string, spec: NetworkPolicy['spec']): Promise<void> {
  await kube.request({
    method: 'POST',
    path: paths.networkPolicies(ns),
    body: { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name }, spec },
  });
}

beforeAll(async () => {
  cluster = await startCluster({ log: () => undefined });
  kc = await cluster.kubeConfig();
  kube = await KubeClient.fromKubeConfig(kc);
  await kubectl(['apply', '-f', file('../../crds/microseg.dev_isolations.yaml')]);
  await kubectl(['wait', '--for=condition=Established', 'crd/isolations.microseg.dev', '--timeout=30s']);
  ns = uniqueName('anp');
  await createNamespace(kc, ns);
  for (const [name, labels] of [
    ['web-1', { app: 'web' }],
    ['web-2', { app: 'web' }],
    ['db-1', { app: 'db' }],
  ] as const)
    await createPod(kc, { namespace: ns, name, labels: { ...labels }, ports: { http: 8080 } });
  // The policy that defeats a plain NetworkPolicy quarantine: web accepts db on 8080 and reaches db.
  await createNp('team-web', {
    podSelector: { matchLabels: { app: 'web' } },
    policyTypes: ['Ingress', 'Egress'],
    ingress: [
      { from: [{ podSelector: { matchLabels: { app: 'db' } } }], ports: [{ port: 8080, protocol: 'TCP' }] },
    ],
    egress: [{ to: [{ podSelector: { matchLabels: { app: 'db' } } }] }],
  });
  ctl = await startIsolationController({ kc, kube, namespace: ns, resyncMs: 1000, liveResyncMs: 300 });
}, 180_000);

afterAll(async () => {
  await ctl?.stop();
  kube?.close();
  await cluster?.stop();
});

describe('mechanism ladder', () => {
  it('without the policy API the foreign allow policy leaks (NetworkPolicy mechanism)', async () => {
    await kubectl(
      ['apply', '-f', '-'],
      isolationYaml('np', '  target:\n    pods: [web-1]\n  reason: baseline\n'),
    );
    const iso = await phaseOf('np', ['Leaking']);
    expect(iso.status?.method).toBe('NetworkPolicy');
    expect(iso.status?.leaks?.map((l) => `${l.direction} ${l.policy} ${l.rule}`)).toEqual([
      `ingress ${ns}/team-web ingress[0]`,
      `egress ${ns}/team-web egress[0]`,
    ]);
    await kubectl(['delete', 'isolation', '-n', ns, 'np', '--wait=true', '--timeout=30s']);
  });

  it('AdminNetworkPolicy served: an admin-tier Deny wins over the foreign policy; release deletes it', async () => {
    await installCrd('adminnetworkpolicies');
    await kubectl(
      ['apply', '-f', '-'],
      isolationYaml('anp', '  target:\n    pods: [web-1]\n  reason: admin tier\n'),
    );
    const iso = await phaseOf('anp', ['Isolated']);
    expect(iso.status?.method).toBe('AdminNetworkPolicy');
    const anpName = `microseg-quarantine-${ns}-anp`;
    expect(iso.status?.objects).toEqual([
      `NetworkPolicy/${ns}/microseg-quarantine-anp`,
      `AdminNetworkPolicy/${anpName}`,
    ]);
    const anp = await kube.request<OtherObject & { spec: Record<string, unknown> }>({
      method: 'GET',
      path: `${paths.adminNetworkPolicies()}/${anpName}`,
    });
    expect(anp.spec.priority).toBe(0);
    expect(anp.spec.subject).toEqual({
      pods: {
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } },
        podSelector: { matchLabels: { [QUARANTINE_LABEL]: 'anp' } },
      },
    });
    expect((anp.spec.ingress as { action: string }[]).map((r) => r.action)).toEqual(['Deny']);
    expect((anp.spec.egress as { action: string }[]).map((r) => r.action)).toEqual(['Allow', 'Deny']);
    expect(iso.status?.leaks).toEqual([]);

    // The admin tier names pods and namespaces only on ingress: an ipBlock allow from outside still leaks.
    await createNp('team-lb', {
      podSelector: { matchLabels: { app: 'web' } },
      policyTypes: ['Ingress'],
      ingress: [{ from: [{ ipBlock: { cidr: '198.51.100.0/24' } }] }],
    });
    const leaking = await phaseOf('anp', ['Leaking']);
    expect(leaking.status?.leaks?.map((l) => `${l.direction} ${l.policy} ${l.rule} ${l.example}`)).toEqual([
      `ingress ${ns}/team-lb ingress[0] from 198.51.100.1 53/TCP`,
    ]);
    await kube.request({ method: 'DELETE', path: paths.networkPolicy(ns, 'team-lb') });
    await phaseOf('anp', ['Isolated']);

    await kubectl(['delete', 'isolation', '-n', ns, 'anp', '--wait=true', '--timeout=30s']);
    const left = await kube.request<{ items: OtherObject[] }>({
      method: 'GET',
      path: paths.adminNetworkPolicies(),
    });
    expect(left.items).toEqual([]);
    expect((await getPod('web-1')).metadata.labels).toEqual({ app: 'web' });
  });

  it('ClusterNetworkPolicy served too: it is preferred, with tier Admin', async () => {
    await installCrd('clusternetworkpolicies');
    await kubectl(
      ['apply', '-f', '-'],
      isolationYaml(
        'cnp',
        '  target:\n    pods: [web-2]\n  reason: admin tier v1alpha2\n  direction: Egress\n',
      ),
    );
    const iso = await phaseOf('cnp', ['Isolated']);
    expect(iso.status?.method).toBe('ClusterNetworkPolicy');
    const cnp = await kube.request<OtherObject & { spec: Record<string, unknown> }>({
      method: 'GET',
      path: `${paths.clusterNetworkPolicies()}/microseg-quarantine-${ns}-cnp`,
    });
    expect(cnp.spec.tier).toBe('Admin');
    expect(cnp.spec.ingress).toBeUndefined();
    expect(cnp.spec.egress).toEqual([
      {
        name: 'dns',
        action: 'Accept',
        to: [
          {
            pods: {
              namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
              podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
            },
          },
        ],
        protocols: [
          { udp: { destinationPort: { number: 53 } } },
          { tcp: { destinationPort: { number: 53 } } },
        ],
      },
      {
        name: 'quarantine-egress',
        action: 'Deny',
        to: [{ namespaces: {} }, { networks: ['0.0.0.0/0', '::/0'] }],
      },
    ]);
    await kubectl(['delete', 'isolation', '-n', ns, 'cnp', '--wait=true', '--timeout=30s']);
    const left = await kube.request<{ items: OtherObject[] }>({
      method: 'GET',
      path: paths.clusterNetworkPolicies(),
    });
    expect(left.items).toEqual([]);
  });

  it('never overwrites an object it does not own: a name clash moves to a salted name', async () => {
    const taken = `microseg-quarantine-${ns}-clash`;
    await kube.request({
      method: 'POST',
      path: paths.clusterNetworkPolicies(),
      body: {
        apiVersion: 'policy.networking.k8s.io/v1alpha2',
        kind: 'ClusterNetworkPolicy',
        metadata: { name: taken },
        spec: { tier: 'Baseline', priority: 5, subject: { namespaces: {} } },
      },
    });
    await kubectl(
      ['apply', '-f', '-'],
      isolationYaml('clash', '  target:\n    pods: [web-2]\n  reason: clash\n'),
    );
    const iso = await phaseOf('clash', ['Isolated']);
    const own = iso.status?.objects?.find((o) => o.startsWith('ClusterNetworkPolicy/'));
    expect(own).toMatch(new RegExp(`^ClusterNetworkPolicy/${taken}-[0-9a-f]{8}$`));
    const theirs = await kube.request<OtherObject & { spec: unknown }>({
      method: 'GET',
      path: `${paths.clusterNetworkPolicies()}/${taken}`,
    });
    expect(theirs.spec).toEqual({ tier: 'Baseline', priority: 5, subject: { namespaces: {} } });
    await kubectl(['delete', 'isolation', '-n', ns, 'clash', '--wait=true', '--timeout=30s']);
    const left = await kube.request<{ items: OtherObject[] }>({
      method: 'GET',
      path: paths.clusterNetworkPolicies(),
    });
    expect(left.items.map((o) => o.metadata.name)).toEqual([taken]);
  });
});

describe('workload targets', () => {
  it('includeFuture also isolates pods the workload creates later', async () => {
    await kube.request({
      method: 'POST',
      path: `/apis/apps/v1/namespaces/${ns}/replicasets`,
      body: {
        apiVersion: 'apps/v1',
        kind: 'ReplicaSet',
        metadata: { name: 'api' },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'api' } },
          template: {
            metadata: { labels: { app: 'api' } },
            spec: { containers: [{ name: 'c', image: 'registry.k8s.io/pause:3.10' }] },
          },
        },
      },
    });
    await createPod(kc, { namespace: ns, name: 'api-1', labels: { app: 'api' } });
    await kubectl(
      ['apply', '-f', '-'],
      isolationYaml(
        'wl',
        '  target:\n    workload: {kind: ReplicaSet, name: api, includeFuture: true}\n  reason: workload\n',
      ),
    );
    await phaseOf('wl', ['Isolated']);
    await createPod(kc, { namespace: ns, name: 'api-2', labels: { app: 'api' } });
    await eventually(
      'api-2 quarantined',
      async () => (await getPod('api-2')).metadata.labels?.[QUARANTINE_LABEL] === 'wl',
    );
    const iso = await eventually('status lists both', async () => {
      const i = await getIso('wl');
      return i.status?.podCount === 2 ? i : undefined;
    });
    expect(iso.status?.isolatedPods).toEqual(['api-1', 'api-2']);
    await kubectl(['delete', 'isolation', '-n', ns, 'wl', '--wait=true', '--timeout=30s']);
    for (const p of ['api-1', 'api-2']) expect((await getPod(p)).metadata.labels).toEqual({ app: 'api' });
  });
});
