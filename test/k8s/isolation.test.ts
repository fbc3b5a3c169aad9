// Isolation against a real kube-apiserver, NetworkPolicy mechanism (the shared cluster serves no
// policy.networking.k8s.io): kubectl apply, leak detection with a foreign allow policy, exact release,
// Service detachment, expiry, the webhooks (auth, malformed and fuzzed bodies, duplicate storms) and the
// engine proof that the isolated pod is cut off except for the configured exceptions (DNS on the port
// the DNS pods take their Service's port 53 on: 5353 here).
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import fc from 'fast-check';
import type { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ClusterHandle,
  createNamespace,
  createPod,
  eventually,
  PAUSE_IMAGE,
  sharedCluster,
  uniqueName,
} from '../cluster/index.ts';
import {
  inNamespace,
  installIsolationCrd,
  kubectlOk,
  liftAdmission,
  refuseInAdmission,
} from '../controller/k8s-helpers.ts';
import type { Isolation } from '../../src/isolate/api.ts';
import { PRIOR_ANNOTATION, QUARANTINE_LABEL } from '../../src/isolate/api.ts';
import { type IsolationController, startIsolationController } from '../../src/isolate/controller.ts';
import { KubeClient, MERGE_PATCH, paths } from '../../src/isolate/kube.ts';
import { isolationFromFlags } from '../../src/isolate/cli.ts';
import { isolationActions } from '../../src/isolate/ui.ts';
import {
  KnownIsolations,
  Persister,
  alertmanagerRouter,
  falcoRouter,
  tokensFromSecret,
} from '../../src/isolate/webhooks.ts';
import { DEFAULT_ALERTMANAGER_CONFIG, DEFAULT_ISOLATION } from '../../src/isolate/triggers.ts';
import { Engine } from '../../src/verify/engine.ts';
import type { Namespace, NetworkPolicy, Pod } from '../../src/model/k8s.ts';

const TOKEN = 'test-token-3f9a';

let cluster: ClusterHandle;
let kc: KubeConfig;
let kube: KubeClient;
let ns: string;
let dnsNs: string;
let irNs: string;
let ctl: IsolationController;
let server: Server;
let base: string;
let known: KnownIsolations;

const kubectl = (args: string[], input?: string) => kubectlOk(cluster, args, input);

const getIso = (name: string) => kube.request<Isolation>({ method: 'GET', path: paths.isolation(ns, name) });
const getPod = (name: string) => kube.request<Pod>({ method: 'GET', path: paths.pod(ns, name) });
const listIsos = async () =>
  (await kube.request<{ items: Isolation[] }>({ method: 'GET', path: paths.isolations(ns) })).items;
const listNps = async (n = ns) =>
  (await kube.request<{ items: NetworkPolicy[] }>({ method: 'GET', path: paths.networkPolicies(n) })).items;

async function phaseOf(name: string, want: string[]): Promise<Isolation> {
  return eventually(`Isolation ${name} in ${want.join('/')}`, async () => {
    const i = await getIso(name);
    return want.includes(i.status?.phase ?? '') ? i : undefined;
  });
}

function np(name: string, spec: NetworkPolicy['spec'], labels: Record<string, string> = {}): NetworkPolicy {
  return { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name, labels }, spec };
}

async function createNp(p: NetworkPolicy): Promise<void> {
  await kube.request({ method: 'POST', path: paths.networkPolicies(ns), body: p });
}

function isolationYaml(name: string, spec: string): string {
  return `apiVersion: microseg.dev/v1alpha1\nkind: Isolation\nmetadata:\n  name: ${name}\n  namespace: ${ns}\nspec:\n${spec}`;
}

async function post(path: string, body: unknown, token = TOKEN, raw?: string) {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token !== '' ? { authorization: `Bearer ${token}` } : {}),
    },
    body: raw ?? JSON.stringify(body),
  });
  return {
    status: res.status,
    body: (await res.json().catch(() => undefined)) as Record<string, unknown> | undefined,
  };
}

const foreignAllow = np('team-web', {
  podSelector: { matchLabels: { app: 'web' } },
  policyTypes: ['Ingress'],
  ingress: [
    { from: [{ podSelector: { matchLabels: { app: 'db' } } }], ports: [{ port: 8080, protocol: 'TCP' }] },
  ],
});
const managedAllow = np(
  'microseg-allow-web',
  {
    podSelector: { matchLabels: { app: 'web' } },
    policyTypes: ['Ingress'],
    ingress: [{ from: [{ podSelector: {} }] }],
  },
  { 'app.kubernetes.io/managed-by': 'microseg' },
);

beforeAll(async () => {
  cluster = sharedCluster();
  kc = await cluster.kubeConfig();
  kube = await KubeClient.fromKubeConfig(kc);
  await installIsolationCrd(cluster);
  ns = uniqueName('iso');
  dnsNs = uniqueName('dns');
  irNs = uniqueName('ir');
  await createNamespace(kc, ns);
  await createNamespace(kc, dnsNs);
  await createNamespace(kc, irNs, { team: 'ir' });
  for (const [name, labels] of [
    ['web-1', { app: 'web', tier: 'front' }],
    ['web-2', { app: 'web', tier: 'front' }],
    ['web-3', { app: 'web', tier: 'front' }],
    ['db-1', { app: 'db' }],
  ] as const)
    await createPod(kc, { namespace: ns, name, labels: { ...labels }, ports: { http: 8080 } });
  // CoreDNS listening on 5353, behind the DNS Service's port 53 by named targetPorts.
  await kube.request({
    method: 'POST',
    path: paths.pods(dnsNs),
    body: {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'coredns', labels: { 'k8s-app': 'kube-dns' } },
      spec: {
        nodeName: 'node-1',
        automountServiceAccountToken: false,
        containers: [
          {
            name: 'coredns',
            image: PAUSE_IMAGE,
            ports: [
              { name: 'dns', containerPort: 5353, protocol: 'UDP' },
              { name: 'dns-tcp', containerPort: 5353, protocol: 'TCP' },
            ],
          },
        ],
      },
    },
  });
  await kube.request({
    method: 'POST',
    path: paths.services(dnsNs),
    body: {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'kube-dns' },
      spec: {
        selector: { 'k8s-app': 'kube-dns' },
        ports: [
          { name: 'dns', port: 53, protocol: 'UDP', targetPort: 'dns' },
          { name: 'dns-tcp', port: 53, protocol: 'TCP', targetPort: 'dns-tcp' },
        ],
      },
    },
  });
  await createPod(kc, { namespace: irNs, name: 'kit', labels: { app: 'kit' } });
  await createNp(managedAllow);
  known = new KnownIsolations();
  ctl = await startIsolationController({
    kc,
    kube,
    known,
    namespace: ns,
    dns: { namespace: dnsNs, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } },
    resyncMs: 1000,
    liveResyncMs: 500,
  });
  const app = express();
  const opts = {
    kube,
    auth: { tokens: () => [TOKEN] },
    onPersisted: (n: string, name: string, created?: Isolation) => ctl.enqueue(n, name, created),
    known,
  };
  app.use('/webhooks/falco', falcoRouter({ ...opts, falco: { minimumPriority: 'Warning', rules: [] } }));
  // Isolations that expire after 2 s, for re-alerting after a release.
  app.use(
    '/webhooks/falco-brief',
    falcoRouter({
      ...opts,
      falco: { minimumPriority: 'Warning', rules: [] },
      defaults: { ...DEFAULT_ISOLATION, duration: '2s' },
    }),
  );
  app.use(
    '/webhooks/alertmanager',
    alertmanagerRouter({
      ...opts,
      alertmanager: { ...DEFAULT_ALERTMANAGER_CONFIG, releaseOnResolve: true },
    }),
  );
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await ctl?.stop();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  kube?.close();
});

describe('kubectl apply of an Isolation (NetworkPolicy mechanism)', () => {
  it('isolates the pod, reports the foreign policy as a leak with a warning Event, and shows printer columns', async () => {
    await createNp(foreignAllow);
    await kubectl(
      ['apply', '-f', '-'],
      isolationYaml(
        'leaky',
        '  target:\n    pods: [web-1]\n  reason: shell in container\n  incident: INC-1\n',
      ),
    );
    const iso = await phaseOf('leaky', ['Leaking']);
    expect(iso.status?.method).toBe('NetworkPolicy');
    expect(iso.status?.isolatedPods).toEqual(['web-1']);
    expect(iso.status?.leaks).toEqual([
      {
        policy: `${ns}/team-web`,
        rule: 'ingress[0]',
        direction: 'ingress',
        pod: `${ns}/web-1`,
        example: `from ${ns}/db-1 8080/TCP`,
      },
    ]);
    expect(iso.status?.objects).toEqual([`NetworkPolicy/${ns}/microseg-quarantine-leaky`]);
    expect(iso.status?.patchedPolicies).toEqual([`${ns}/microseg-allow-web`]);
    expect(iso.status?.timeline?.map((t) => t.action)).toEqual(
      expect.arrayContaining(['MechanismChosen', 'PolicyExcluded', 'PodIsolated', 'Leaking']),
    );
    expect((await getPod('web-1')).metadata.labels?.[QUARANTINE_LABEL]).toBe('leaky');
    const events = await kubectl([
      'get',
      'events',
      '-n',
      ns,
      '--field-selector',
      'involvedObject.name=leaky',
      '-o',
      'json',
    ]);
    const reasons = (JSON.parse(events) as { items: { reason: string; type: string }[] }).items.map(
      (e) => `${e.type}/${e.reason}`,
    );
    expect(reasons).toContain('Warning/Leaking');
    const table = await kubectl(['get', 'isolations', '-n', ns, 'leaky']);
    expect(table.split('\n')[0]).toMatch(
      /^NAME\s+PHASE\s+RECONCILED\s+METHOD\s+PODS\s+LEAKS\s+EXPIRES\s+AGE/,
    );
    expect(table.split('\n')[1]).toMatch(/^leaky\s+Leaking\s+True\s+NetworkPolicy\s+1\s+1\s/);
  });

  it('never edits the foreign policy, and turns Isolated once its owner removes it', async () => {
    const foreign = (await listNps()).find((p) => p.metadata.name === 'team-web');
    expect(foreign?.spec).toEqual({
      ...foreignAllow.spec,
      ingress: [{ ...foreignAllow.spec.ingress![0], ports: [{ port: 8080, protocol: 'TCP' }] }],
    });
    await kube.request({ method: 'DELETE', path: paths.networkPolicy(ns, 'team-web') });
    const iso = await phaseOf('leaky', ['Isolated']);
    expect(iso.status?.leaks).toEqual([]);
    expect(iso.status?.proof?.leaks).toBe(0);
  });

  it('the engine proves the isolated pod cannot reach or be reached, except DNS and forensics', async () => {
    await kubectl(
      ['apply', '-f', '-'],
      isolationYaml(
        'proof',
        `  target:\n    pods: [web-2]\n  reason: proof\n  exceptions:\n    forensics:\n      - namespaceSelector:\n          matchLabels: {team: ir}\n`,
      ),
    );
    await phaseOf('proof', ['Isolated']);
    const [namespaces, pods, nps] = await Promise.all([
      kube.request<{ items: Namespace[] }>({ method: 'GET', path: paths.namespaces() }),
      Promise.all(
        [ns, dnsNs, irNs].map((n) => kube.request<{ items: Pod[] }>({ method: 'GET', path: paths.pods(n) })),
      ),
      listNps(),
    ]);
    const e = new Engine({
      namespaces: namespaces.items,
      pods: pods.flatMap((p) => p.items),
      networkPolicies: nps,
    });
    const ok = (
      from: [string, string],
      to: [string, string],
      port: number,
      protocol: 'TCP' | 'UDP' = 'TCP',
    ) =>
      e.evaluate({
        from: { namespace: from[0], pod: from[1] },
        to: { namespace: to[0], pod: to[1] },
        port,
        protocol,
      }).allowed;
    expect(ok([ns, 'db-1'], [ns, 'web-2'], 8080)).toBe(false);
    expect(ok([ns, 'web-3'], [ns, 'web-2'], 8080)).toBe(false);
    expect(ok([ns, 'web-2'], [ns, 'db-1'], 8080)).toBe(false);
    // DNS on the port CoreDNS takes the Service's port 53 on, not 53 itself.
    const own = nps.find((p) => p.metadata.name === 'microseg-quarantine-proof');
    expect(own?.spec.egress?.[0]?.ports).toEqual([
      { protocol: 'UDP', port: 5353 },
      { protocol: 'TCP', port: 5353 },
    ]);
    expect(ok([ns, 'web-2'], [dnsNs, 'coredns'], 5353, 'UDP')).toBe(true);
    expect(ok([ns, 'web-2'], [dnsNs, 'coredns'], 5353, 'TCP')).toBe(true);
    expect(ok([ns, 'web-2'], [dnsNs, 'coredns'], 53, 'UDP')).toBe(false);
    expect(ok([ns, 'web-2'], [dnsNs, 'coredns'], 443)).toBe(false);
    expect(ok([irNs, 'kit'], [ns, 'web-2'], 8080)).toBe(true);
    // The untouched sibling keeps its microseg allow policy.
    expect(ok([ns, 'db-1'], [ns, 'web-3'], 8080)).toBe(true);
  });

  it('a hand edit of the quarantine policy is taken back within a resync, a narrowed selector too', async () => {
    const path = paths.networkPolicy(ns, 'microseg-quarantine-proof');
    const original = await kube.request<NetworkPolicy>({ method: 'GET', path });
    // A selector that no longer selects the pod takes the deny off it, as would an added allow-all rule.
    await kube.request({
      method: 'PATCH',
      path,
      contentType: MERGE_PATCH,
      body: {
        spec: {
          podSelector: {
            matchLabels: { [QUARANTINE_LABEL]: 'proof' },
            matchExpressions: [{ key: 'never', operator: 'Exists' }],
          },
        },
      },
    });
    await eventually('the quarantine policy restored', async () => {
      const now = await kube.request<NetworkPolicy>({ method: 'GET', path });
      return now.metadata.resourceVersion !== original.metadata.resourceVersion &&
        JSON.stringify(now.spec) === JSON.stringify(original.spec)
        ? now
        : undefined;
    });
  });

  it('deleting the Isolation restores labels, annotations and policies exactly', async () => {
    const before = await getPod('web-3');
    await kubectl(
      ['apply', '-f', '-'],
      isolationYaml('undo', '  target:\n    pods: [web-3]\n  reason: undo test\n'),
    );
    await phaseOf('undo', ['Isolated']);
    expect((await getPod('web-3')).metadata.annotations?.[PRIOR_ANNOTATION]).toBeDefined();
    for (const n of ['undo', 'leaky', 'proof'])
      await kubectl(['delete', 'isolation', '-n', ns, n, '--wait=true', '--timeout=30s']);
    const after = await getPod('web-3');
    expect(after.metadata.labels).toEqual(before.metadata.labels);
    expect(after.metadata.annotations ?? {}).toEqual(before.metadata.annotations ?? {});
    const nps = await listNps();
    expect(nps.map((p) => p.metadata.name)).toEqual(['microseg-allow-web']);
    // The exclusion this Isolation added is gone again, now that no pod is quarantined.
    expect(nps[0]?.spec, JSON.stringify(nps[0]?.metadata)).toEqual(managedAllow.spec);
    expect(nps[0]?.metadata.annotations ?? {}).toEqual({});
    for (const p of ['web-1', 'web-2'])
      expect((await getPod(p)).metadata.labels).toEqual({ app: 'web', tier: 'front' });
  });

  it('detachFromServices removes the Service selector labels and release puts them back', async () => {
    await kube.request({
      method: 'POST',
      path: paths.services(ns),
      body: {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'web' },
        spec: { selector: { app: 'web' }, ports: [{ port: 80 }] },
      },
    });
    const before = await getPod('web-1');
    await kubectl(
      ['apply', '-f', '-'],
      isolationYaml('detach', '  target:\n    pods: [web-1]\n  reason: detach\n  detachFromServices: true\n'),
    );
    await phaseOf('detach', ['Isolated']);
    expect((await getPod('web-1')).metadata.labels).toEqual({ tier: 'front', [QUARANTINE_LABEL]: 'detach' });
    await kubectl(['delete', 'isolation', '-n', ns, 'detach', '--wait=true', '--timeout=30s']);
    const after = await getPod('web-1');
    expect(after.metadata.labels).toEqual(before.metadata.labels);
    expect(after.metadata.annotations ?? {}).toEqual(before.metadata.annotations ?? {});
  });

  it('expires: duration elapses, the pods are released and the Isolation stays as a Released record', async () => {
    await kubectl(
      ['apply', '-f', '-'],
      isolationYaml('brief', '  target:\n    pods: [web-2]\n  reason: brief\n  duration: 2s\n'),
    );
    const on = await phaseOf('brief', ['Isolated']);
    expect(on.status?.expiresAt).toBeDefined();
    const off = await phaseOf('brief', ['Released']);
    expect(Date.parse(off.status?.releasedAt ?? '')).toBeGreaterThanOrEqual(
      Date.parse(on.status?.expiresAt ?? ''),
    );
    expect((await getPod('web-2')).metadata.labels).toEqual({ app: 'web', tier: 'front' });
    expect((await listNps()).map((p) => p.metadata.name)).toEqual(['microseg-allow-web']);
    await kubectl(['delete', 'isolation', '-n', ns, 'brief', '--wait=true', '--timeout=30s']);
  });

  it('an invalid spec is reported as Failed with the exact problem', async () => {
    await kube.request({
      method: 'POST',
      path: paths.isolations(ns),
      body: {
        apiVersion: 'microseg.dev/v1alpha1',
        kind: 'Isolation',
        metadata: { name: 'bad' },
        // The schema refuses an empty podSelector at once (see controller-gitops.test.ts); a pod name
        // is checked by the controller.
        spec: { target: { pods: ['Bad_Pod'] }, reason: 'x' },
      },
    });
    const iso = await phaseOf('bad', ['Failed']);
    expect(iso.status?.message).toBe('spec.target.pods[0] "Bad_Pod" is not a valid pod name');
    await kube.request({ method: 'DELETE', path: paths.isolation(ns, 'bad') });
  });
});

describe('workload targets found by owner references (no Rollout, CloneSet or other custom resource CRD installed)', () => {
  const ROLLOUT_REF = {
    apiVersion: 'argoproj.io/v1alpha1',
    kind: 'Rollout',
    name: 'roll',
    uid: '00000000-0000-4000-8000-00000000a001',
    controller: true,
  };
  /** A ReplicaSet of the Rollout (one per revision): nothing runs it here, its pods are created by hand. */
  async function revision(
    hash: string,
  ): Promise<{ kind: string; apiVersion: string; name: string; uid: string }> {
    const labels = { app: 'roll', 'rollouts-pod-template-hash': hash };
    const rs = await kube.request<{ metadata: { uid: string } }>({
      method: 'POST',
      path: `/apis/apps/v1/namespaces/${ns}/replicasets`,
      body: {
        apiVersion: 'apps/v1',
        kind: 'ReplicaSet',
        metadata: { name: `roll-${hash}`, labels, ownerReferences: [ROLLOUT_REF] },
        spec: {
          replicas: 1,
          selector: { matchLabels: labels },
          template: { metadata: { labels }, spec: { containers: [{ name: 'c', image: PAUSE_IMAGE }] } },
        },
      },
    });
    await createPod(kc, {
      namespace: ns,
      name: `roll-${hash}-1`,
      labels,
      ownerReferences: [
        {
          apiVersion: 'apps/v1',
          kind: 'ReplicaSet',
          name: `roll-${hash}`,
          uid: rs.metadata.uid,
          controller: true,
        },
      ],
    });
    return { kind: 'ReplicaSet', apiVersion: 'apps/v1', name: `roll-${hash}`, uid: rs.metadata.uid };
  }

  it("a Rollout's pods are quarantined, with includeFuture a new revision's too; a look-alike pod is not", async () => {
    await revision('aaa');
    // Same labels, no owner: a selector would take it; the Rollout does not own it.
    await createPod(kc, { namespace: ns, name: 'roll-lookalike', labels: { app: 'roll' } });
    await kubectl(
      ['apply', '-f', '-'],
      isolationYaml(
        'roll',
        '  target:\n    workload: {kind: Rollout, name: roll, includeFuture: true}\n  reason: rollout\n',
      ),
    );
    const first = await phaseOf('roll', ['Isolated', 'Leaking']);
    expect(first.status?.isolatedPods).toEqual(['roll-aaa-1']);
    expect((await getPod('roll-aaa-1')).metadata.labels?.[QUARANTINE_LABEL]).toBe('roll');
    // A new revision: its ReplicaSet and pod appear after the isolation took effect.
    await revision('bbb');
    await eventually(
      'roll-bbb-1 quarantined',
      async () => (await getPod('roll-bbb-1')).metadata.labels?.[QUARANTINE_LABEL] === 'roll',
    );
    const iso = await eventually('status lists both revisions', async () => {
      const i = await getIso('roll');
      return i.status?.podCount === 2 ? i : undefined;
    });
    expect(iso.status?.isolatedPods).toEqual(['roll-aaa-1', 'roll-bbb-1']);
    expect((await getPod('roll-lookalike')).metadata.labels).toEqual({ app: 'roll' });
    await kubectl(['delete', 'isolation', '-n', ns, 'roll', '--wait=true', '--timeout=30s']);
    for (const [p, hash] of [
      ['roll-aaa-1', 'aaa'],
      ['roll-bbb-1', 'bbb'],
    ] as const)
      expect((await getPod(p)).metadata.labels).toEqual({ app: 'roll', 'rollouts-pod-template-hash': hash });
  });

  it("a CloneSet's own pods are quarantined", async () => {
    const owner = (name: string) => [
      {
        apiVersion: 'apps.kruise.io/v1alpha1',
        kind: 'CloneSet',
        name,
        uid: `00000000-0000-4000-8000-0000000${name === 'clone' ? 'c001' : 'c002'}`,
        controller: true,
      },
    ];
    await createPod(kc, {
      namespace: ns,
      name: 'clone-x1',
      labels: { app: 'clone' },
      ownerReferences: owner('clone'),
    });
    await createPod(kc, {
      namespace: ns,
      name: 'clone-y1',
      labels: { app: 'clone' },
      ownerReferences: owner('other'),
    });
    await kubectl(
      ['apply', '-f', '-'],
      isolationYaml('clone', '  target:\n    workload: {kind: CloneSet, name: clone}\n  reason: cloneset\n'),
    );
    const iso = await phaseOf('clone', ['Isolated', 'Leaking']);
    expect(iso.status?.isolatedPods).toEqual(['clone-x1']);
    expect((await getPod('clone-y1')).metadata.labels).toEqual({ app: 'clone' });
    await kubectl(['delete', 'isolation', '-n', ns, 'clone', '--wait=true', '--timeout=30s']);
    expect((await getPod('clone-x1')).metadata.labels).toEqual({ app: 'clone' });
  });

  it("a custom resource's pods (a CloudNativePG Cluster) are quarantined, with includeFuture a replacement instance too", async () => {
    // No CloudNativePG CRD: the Cluster is only named by its pods' controller owner references.
    const cnpg = (name: string, apiVersion = 'postgresql.cnpg.io/v1') => [
      { apiVersion, kind: 'Cluster', name, uid: '00000000-0000-4000-8000-00000000d001', controller: true },
    ];
    const labels = { 'cnpg.io/cluster': 'pg' };
    await createPod(kc, {
      namespace: ns,
      name: 'pg-1',
      labels: { ...labels, 'cnpg.io/instanceRole': 'primary' },
      ownerReferences: cnpg('pg'),
    });
    // A kind of the same name and labels in another API group: not the target.
    await createPod(kc, {
      namespace: ns,
      name: 'pg-other',
      labels,
      ownerReferences: cnpg('pg', 'clusters.example.com/v1'),
    });
    await kubectl(
      ['apply', '-f', '-'],
      isolationYaml(
        'pg',
        '  target:\n    workload: {kind: Cluster, apiGroup: postgresql.cnpg.io, name: pg, includeFuture: true}\n  reason: exfiltration\n',
      ),
    );
    const first = await phaseOf('pg', ['Isolated', 'Leaking']);
    expect(first.status?.isolatedPods).toEqual(['pg-1']);
    expect((await getPod('pg-1')).metadata.labels?.[QUARANTINE_LABEL]).toBe('pg');
    // A failover's replacement instance, created after the isolation took effect.
    await createPod(kc, {
      namespace: ns,
      name: 'pg-2',
      labels: { ...labels, 'cnpg.io/instanceRole': 'replica' },
      ownerReferences: cnpg('pg'),
    });
    await eventually(
      'pg-2 quarantined',
      async () => (await getPod('pg-2')).metadata.labels?.[QUARANTINE_LABEL] === 'pg',
    );
    const iso = await eventually('status lists both instances', async () => {
      const i = await getIso('pg');
      return i.status?.podCount === 2 ? i : undefined;
    });
    expect(iso.status?.isolatedPods).toEqual(['pg-1', 'pg-2']);
    expect((await getPod('pg-other')).metadata.labels).toEqual(labels);
    await kubectl(['delete', 'isolation', '-n', ns, 'pg', '--wait=true', '--timeout=30s']);
    expect((await getPod('pg-1')).metadata.labels).toEqual({ ...labels, 'cnpg.io/instanceRole': 'primary' });
    expect((await getPod('pg-2')).metadata.labels).toEqual({ ...labels, 'cnpg.io/instanceRole': 'replica' });
  });
});

describe('webhooks', () => {
  const falco = (pod: string, rule = 'Terminal shell in container') => ({
    rule,
    priority: 'Critical',
    time: '2026-11-28T17:00:00.000000000Z',
    output: 'shell',
    output_fields: { 'k8s.ns.name': ns, 'k8s.pod.name': pod, 'evt.time': 1685022245478 },
  });

  it('unauthenticated or wrong-token calls get 401 and change nothing', async () => {
    const before = await listIsos();
    expect((await post('/webhooks/falco/', falco('web-1'), '')).status).toBe(401);
    expect((await post('/webhooks/falco/', falco('web-1'), 'wrong')).status).toBe(401);
    expect((await post('/webhooks/alertmanager/', {}, `${TOKEN}x`)).status).toBe(401);
    expect(await listIsos()).toEqual(before);
  });

  it('bearer tokens come from a Secret, one per line or comma-separated, and rotate without a restart', async () => {
    const secret = (data: string) => ({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'webhook-token' },
      data: { token: Buffer.from(data).toString('base64') },
    });
    await kube.request({
      method: 'POST',
      path: `/api/v1/namespaces/${ns}/secrets`,
      body: secret('alpha\nbeta, gamma\n'),
    });
    const t = await tokensFromSecret(kube, ns, 'webhook-token', 'token', 100);
    try {
      expect(t.tokens()).toEqual(['alpha', 'beta', 'gamma']);
      await kube.request({
        method: 'PUT',
        path: `/api/v1/namespaces/${ns}/secrets/webhook-token`,
        body: secret('delta'),
      });
      await eventually('rotated token', () => t.tokens().join() === 'delta');
    } finally {
      t.stop();
    }
    await expect(tokensFromSecret(kube, ns, 'webhook-token', 'missing')).rejects.toThrow(
      `Secret ${ns}/webhook-token has no key "missing"`,
    );
  });

  it('malformed and fuzzed payloads get 400 and change nothing', async () => {
    const before = await listIsos();
    const bad = await post('/webhooks/falco/', undefined, TOKEN, '{"rule": "x", ');
    expect(bad.status).toBe(400);
    expect(String(bad.body?.error)).toMatch(/^body is not valid JSON/);
    expect(await post('/webhooks/falco/', { rule: 'x', priority: 'Severe' })).toEqual({
      status: 400,
      body: {
        error:
          'priority "Severe" is not one of Emergency, Alert, Critical, Error, Warning, Notice, Informational, Debug',
      },
    });
    expect(await post('/webhooks/alertmanager/', { version: '3', status: 'firing', alerts: [] })).toEqual({
      status: 400,
      body: { error: 'version "3" is not supported (expected "4")' },
    });
    await fc.assert(
      fc.asyncProperty(
        fc.jsonValue(),
        fc.constantFrom('/webhooks/falco/', '/webhooks/alertmanager/'),
        async (v, path) => {
          const r = await post(path, v);
          expect(r.status).toBe(400);
        },
      ),
      { numRuns: 60 },
    );
    expect(await listIsos()).toEqual(before);
  });

  it('a storm of the same Falco alert yields one Isolation, answered only after it is persisted', async () => {
    const results = await Promise.all(
      Array.from({ length: 25 }, () => post('/webhooks/falco/', falco('web-3'))),
    );
    expect(results.map((r) => r.status)).toEqual(Array(25).fill(200));
    const names = new Set(results.map((r) => (r.body?.results as { name: string }[])[0]?.name));
    expect(names.size).toBe(1);
    const name = [...names][0]!;
    // 2xx only after persistence: the Isolation is readable as soon as any response arrived.
    const isos = (await listIsos()).filter((i) => i.metadata.name.startsWith('falco-'));
    expect(isos.map((i) => i.metadata.name)).toEqual([name]);
    const iso = await phaseOf(name, ['Isolated']);
    expect(iso.spec?.target).toEqual({ pods: ['web-3'] });
    expect(iso.metadata.annotations?.['microseg.dev/alert-received-at']).toBeDefined();
    expect(ctl.metrics.timeToIsolate.sample().count).toBeGreaterThan(0);
    await kubectl(['delete', 'isolation', '-n', ns, name, '--wait=true', '--timeout=30s']);
  });

  it('re-alerting an incident whose Isolation expired isolates again, in the same Isolation', async () => {
    const first = await post('/webhooks/falco-brief/', falco('web-2', 'Brief rule'));
    const r0 = (first.body?.results as { outcome: string; name: string }[])[0]!;
    expect([first.status, r0.outcome]).toEqual([200, 'created']);
    await phaseOf(r0.name, ['Isolated']);
    // While it is in effect, the incident is answered by the existing Isolation.
    const dup = await post('/webhooks/falco-brief/', falco('web-2', 'Brief rule'));
    expect((dup.body?.results as { outcome: string }[])[0]?.outcome).toBe('exists');
    const released = await phaseOf(r0.name, ['Released']);
    expect((await getPod('web-2')).metadata.labels?.[QUARANTINE_LABEL]).toBeUndefined();

    const again = await post('/webhooks/falco-brief/', falco('web-2', 'Brief rule'));
    expect(again.status).toBe(200);
    expect(again.body?.results).toEqual([
      { action: 'isolate', namespace: ns, name: r0.name, outcome: 'rearmed' },
    ]);
    const iso = await phaseOf(r0.name, ['Isolated']);
    expect((await getPod('web-2')).metadata.labels?.[QUARANTINE_LABEL]).toBe(r0.name);
    expect(Date.parse(iso.status?.isolatedAt ?? '')).toBeGreaterThan(
      Date.parse(released.status?.releasedAt ?? ''),
    );
    expect(iso.status?.releasedAt).toBeUndefined();
    expect(iso.metadata.annotations?.['microseg.dev/rearmed-at']).toBe(
      iso.metadata.annotations?.['microseg.dev/alert-received-at'],
    );
    const actions = iso.status?.timeline?.map((t) => t.action) ?? [];
    // A whole new episode: the mechanism is chosen again and the allow policy, whose exclusion the
    // release took out, excludes quarantined pods again.
    expect(actions.slice(actions.indexOf('Released'))).toEqual([
      'Released',
      'Rearmed',
      'MechanismChosen',
      'PolicyExcluded',
      'PodIsolated',
      'Isolated',
    ]);
    // Still one Isolation for the incident; it expires again and the pod is restored again.
    expect((await listIsos()).filter((i) => i.metadata.name === r0.name)).toHaveLength(1);
    await phaseOf(r0.name, ['Released']);
    expect((await getPod('web-2')).metadata.labels).toEqual({ app: 'web', tier: 'front' });
    await kubectl(['delete', 'isolation', '-n', ns, r0.name, '--wait=true', '--timeout=30s']);
  });

  it("the web page's Isolate re-arms a CronJob's expired Isolation written without --include-future with its runs to come", async () => {
    const cronJob = await kube.request<{ metadata: { uid: string } }>({
      method: 'POST',
      path: `/apis/batch/v1/namespaces/${ns}/cronjobs`,
      body: {
        apiVersion: 'batch/v1',
        kind: 'CronJob',
        metadata: { name: 'nightly' },
        spec: {
          schedule: '0 3 * * *',
          jobTemplate: {
            spec: {
              template: { spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: PAUSE_IMAGE }] } },
            },
          },
        },
      },
    });
    // A run: its Job (nothing runs it here) and the Job's pod, created by hand.
    const run = async (job: string) => {
      const j = await kube.request<{ metadata: { uid: string } }>({
        method: 'POST',
        path: paths.jobs(ns),
        body: {
          apiVersion: 'batch/v1',
          kind: 'Job',
          metadata: {
            name: job,
            ownerReferences: [
              {
                apiVersion: 'batch/v1',
                kind: 'CronJob',
                name: 'nightly',
                uid: cronJob.metadata.uid,
                controller: true,
              },
            ],
          },
          spec: {
            suspend: true,
            template: { spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: PAUSE_IMAGE }] } },
          },
        },
      });
      await createPod(kc, {
        namespace: ns,
        name: `${job}-x1x1x`,
        labels: { app: 'nightly' },
        ownerReferences: [
          { apiVersion: 'batch/v1', kind: 'Job', name: job, uid: j.metadata.uid, controller: true },
        ],
      });
      return `${job}-x1x1x`;
    };
    const label = async (pod: string) => (await getPod(pod)).metadata.labels?.[QUARANTINE_LABEL];
    // What `microseg isolate --workload CronJob/nightly --duration 6s` writes: no includeFuture.
    const cli = isolationFromFlags({
      targets: [],
      namespace: ns,
      workload: 'CronJob/nightly',
      duration: '6s',
      reason: 'from the CLI',
    });
    const name = cli.metadata.name;
    const first = await run('nightly-29000000');
    await kube.request({ method: 'POST', path: paths.isolations(ns), body: cli });
    await phaseOf(name, ['Isolated', 'Leaking']);
    expect(await label(first)).toBe(name);
    await phaseOf(name, ['Released']);
    expect(await label(first)).toBeUndefined();

    const actions = isolationActions({
      kube,
      persister: new Persister(kube, known, (n, i, created) => ctl.enqueue(n, i, created)),
    });
    known.forget(ns, name); // as the controller's watch does when it sees the release
    const again = await actions.isolate(`${ns}/CronJob/nightly`, 'again', 'alice');
    expect(again.spec?.target).toEqual({
      workload: { kind: 'CronJob', name: 'nightly', includeFuture: true },
    });
    expect(again.spec?.reason).toBe('from the CLI');
    await eventually('isolated again', async () => ((await label(first)) === name ? true : undefined));
    // A run that starts after the re-arm took effect is isolated too.
    const next = await run('nightly-29000001');
    await eventually(`${next} quarantined`, async () => ((await label(next)) === name ? true : undefined));
    const iso = await getIso(name);
    expect(iso.status?.timeline?.map((t) => t.action)).toContain('Rearmed');
    await kubectl(['delete', 'isolation', '-n', ns, name, '--wait=true', '--timeout=30s']);
  });

  it('Alertmanager: firing isolates, resolved releases (releaseOnResolve), repeats are idempotent', async () => {
    const alert = (status: string) => ({
      version: '4',
      status,
      receiver: 'microseg',
      groupKey: '{}:{alertname="Shell"}',
      alerts: [
        {
          status,
          labels: { alertname: 'Shell', severity: 'critical', namespace: ns, pod: 'db-1' },
          annotations: { summary: 'shell in db' },
          startsAt: '2026-11-28T17:00:00Z',
          endsAt: status === 'firing' ? '0001-01-01T00:00:00Z' : '2026-11-28T17:05:00Z',
          fingerprint: 'c0ffee0000000001',
        },
      ],
    });
    const first = await post('/webhooks/alertmanager/', alert('firing'));
    const again = await post('/webhooks/alertmanager/', alert('firing'));
    expect(first.status).toBe(200);
    const r0 = (first.body?.results as { outcome: string; name: string }[])[0]!;
    expect(r0.outcome).toBe('created');
    expect((again.body?.results as { outcome: string }[])[0]?.outcome).toBe('exists');
    await phaseOf(r0.name, ['Isolated']);
    expect((await getPod('db-1')).metadata.labels?.[QUARANTINE_LABEL]).toBe(r0.name);
    const resolved = await post('/webhooks/alertmanager/', alert('resolved'));
    expect((resolved.body?.results as { outcome: string }[])[0]?.outcome).toBe('deleted');
    await eventually('Isolation gone', async () =>
      (await listIsos()).every((i) => i.metadata.name !== r0.name),
    );
    expect((await getPod('db-1')).metadata.labels).toEqual({ app: 'db' });
  });

  it('a pod target in a namespace that does not exist is refused with 422, not retried forever', async () => {
    const r = await post('/webhooks/falco/', {
      ...falco('x'),
      output_fields: { 'k8s.ns.name': 'no-such-ns-zz', 'k8s.pod.name': 'x' },
    });
    expect(r.status).toBe(422);
  });

  it('merge patches keep working on the status subresource (sanity of the client)', async () => {
    await kubectl(
      ['apply', '-f', '-'],
      isolationYaml('dry', '  target:\n    pods: [web-1]\n  reason: plan only\n  dryRun: true\n'),
    );
    const iso = await phaseOf('dry', ['Pending']);
    expect(iso.status?.message).toBe('dry run: would isolate 1 pod(s) with NetworkPolicy; 0 leaking rule(s)');
    expect((await getPod('web-1')).metadata.labels?.[QUARANTINE_LABEL]).toBeUndefined();
    expect(iso.metadata.finalizers ?? []).toEqual([]);
    await kube.request({
      method: 'PATCH',
      path: paths.isolation(ns, 'dry'),
      contentType: MERGE_PATCH,
      body: { spec: { dryRun: false } },
    });
    await phaseOf('dry', ['Isolated']);
    await kubectl(['delete', 'isolation', '-n', ns, 'dry', '--wait=true', '--timeout=30s']);
    expect((await getPod('web-1')).metadata.labels).toEqual({ app: 'web', tier: 'front' });
  });
});

describe('microseg isolate / release', () => {
  it('isolate --wait on a pod that does not exist ends at once with the reason, exit 1, not at --timeout', async () => {
    const { captureIO } = await import('../../src/cli/io.ts');
    const { runCli } = await import('../../src/cli/main.ts');
    const io = captureIO();
    const t0 = Date.now();
    const code = await runCli(
      [
        'isolate',
        `${ns}/nosuch-1`,
        '--reason',
        'cli test',
        '--name',
        'cli-none',
        '--kubeconfig',
        cluster.kubeconfigPath,
        '--wait',
        '--timeout',
        '60s',
      ],
      io,
    );
    expect([code, io.stderr]).toEqual([
      1,
      `microseg isolate: ${ns}/cli-none isolated no pod (see its message above)\n`,
    ]);
    expect(io.stdout).toBe(
      `isolation ${ns}/cli-none: Pending (NetworkPolicy)\n  no pod to isolate: pod nosuch-1 not found\n` +
        '  checked 0 connections: 0 allowed by exceptions, 0 leaking rule(s)\n',
    );
    expect(Date.now() - t0).toBeLessThan(45_000);
    await kubectl(['delete', 'isolation', '-n', ns, 'cli-none', '--wait=true', '--timeout=30s']);
  });

  it('isolates with --wait, prints the outcome, and release --pod restores the pod', async () => {
    const { captureIO } = await import('../../src/cli/io.ts');
    const { runCli } = await import('../../src/cli/main.ts');
    const io = captureIO();
    const code = await runCli(
      [
        'isolate',
        `${ns}/db-1`,
        '--reason',
        'cli test',
        '--name',
        'cli-iso',
        '--kubeconfig',
        cluster.kubeconfigPath,
        '--wait',
      ],
      io,
    );
    expect(io.stderr).toBe('');
    expect(code).toBe(0);
    expect(io.stdout).toMatch(
      new RegExp(
        `^isolation ${ns}/cli-iso: Isolated \\(NetworkPolicy\\)\\n  1 pod\\(s\\) isolated with NetworkPolicy\\n  pods: db-1\\n`,
      ),
    );
    expect((await getPod('db-1')).metadata.labels?.[QUARANTINE_LABEL]).toBe('cli-iso');
    const rel = captureIO();
    expect(
      await runCli(['release', '--pod', `${ns}/db-1`, '--kubeconfig', cluster.kubeconfigPath, '--wait'], rel),
    ).toBe(0);
    expect(rel.stdout).toBe(`isolation ${ns}/cli-iso released; pods restored\n`);
    expect((await getPod('db-1')).metadata.labels).toEqual({ app: 'db' });
    const again = captureIO();
    expect(await runCli(['release', `${ns}/cli-iso`, '--kubeconfig', cluster.kubeconfigPath], again)).toBe(1);
    expect(again.stderr).toBe(`microseg release: isolation ${ns}/cli-iso not found\n`);
  });
});

describe('an Isolation whose reconcile the API server refuses (a ValidatingAdmissionPolicy)', () => {
  const vap = uniqueName('refuse-quarantine');
  const vapMessage = 'the platform team does not allow this quarantine NetworkPolicy';
  const vapPath = (what: string) => `/apis/admissionregistration.k8s.io/v1/${what}/${vap}`;

  afterAll(async () => {
    for (const what of ['validatingadmissionpolicybindings', 'validatingadmissionpolicies'])
      await cluster.request('DELETE', vapPath(what));
  });

  it('is Pending with a Reconciled False condition naming the refusal, said by isolate --wait, and Isolated once lifted', async () => {
    await createPod(kc, { namespace: ns, name: 'refused-1', labels: { app: 'refused' } });
    await refuseInAdmission(cluster, vap, {
      rules: [{ apiGroups: ['networking.k8s.io'], apiVersions: ['v1'], resources: ['networkpolicies'] }],
      validations: [
        { expression: "object.metadata.name != 'microseg-quarantine-refused'", message: vapMessage },
      ],
      matchResources: inNamespace(ns),
    });
    const refused = async (): Promise<boolean> => {
      const r = await cluster.request('POST', `${paths.networkPolicies(ns)}?dryRun=All`, {
        body: np('microseg-quarantine-refused', { podSelector: {} }),
      });
      return r.status !== 201;
    };
    await eventually('the admission policy in effect', refused);

    const { captureIO } = await import('../../src/cli/io.ts');
    const { runCli } = await import('../../src/cli/main.ts');
    const io = captureIO();
    const code = await runCli(
      [
        'isolate',
        `${ns}/refused-1`,
        '--reason',
        'refused test',
        '--name',
        'refused',
        '--kubeconfig',
        cluster.kubeconfigPath,
        '--wait',
        '--timeout',
        '8s',
      ],
      io,
    );
    expect(code).toBe(1);
    const error = `POST ${paths.networkPolicies(ns)}: 422 networkpolicies.networking.k8s.io "microseg-quarantine-refused" is forbidden: ValidatingAdmissionPolicy '${vap}' with binding '${vap}' denied request: ${vapMessage} (retrying)`;
    expect(io.stderr).toBe(
      `microseg isolate: no outcome for ${ns}/refused after 8000 ms; the controller last reported phase Pending: reconcile failed: ${error} (its Events: kubectl describe isolation -n ${ns} refused)\n`,
    );
    const failed = await getIso('refused');
    expect(failed.status?.phase).toBe('Pending');
    expect(failed.status?.conditions).toEqual([
      {
        type: 'Reconciled',
        status: 'False',
        reason: 'ReconcileFailed',
        message: error,
        lastTransitionTime: expect.any(String),
        observedGeneration: 1,
      },
    ]);
    const table = await kubectl(['get', 'isolation', '-n', ns, 'refused']);
    // The failed reconcile shows in kubectl's table, not only in the YAML.
    expect(table.split('\n')[0]).toMatch(/^NAME\s+PHASE\s+RECONCILED\s/);
    expect(table.split('\n')[1]).toMatch(/^refused\s+Pending\s+False\s/);
    expect((await getPod('refused-1')).metadata.labels?.[QUARANTINE_LABEL]).toBe(undefined);

    // Lifted: the retry isolates, and the condition is replaced.
    await liftAdmission(cluster, vap);
    await eventually('the admission policy lifted', async () => !(await refused()));
    const on = await eventually(
      'Isolated and reconciled',
      async () => {
        const i = await getIso('refused');
        return i.status?.phase === 'Isolated' && i.status.conditions?.[0]?.status === 'True' ? i : undefined;
      },
      45_000,
    );
    expect(on.status?.conditions).toEqual([
      {
        type: 'Reconciled',
        status: 'True',
        reason: 'Reconciled',
        message: 'the last reconcile succeeded',
        lastTransitionTime: expect.any(String),
        observedGeneration: 1,
      },
    ]);
    const lifted = await kubectl(['get', 'isolation', '-n', ns, 'refused']);
    expect(lifted.split('\n')[1]).toMatch(/^refused\s+Isolated\s+True\s/);
    expect((await getPod('refused-1')).metadata.labels?.[QUARANTINE_LABEL]).toBe('refused');
    await kubectl(['delete', 'isolation', '-n', ns, 'refused', '--wait=true', '--timeout=30s']);
  }, 120_000);
});
