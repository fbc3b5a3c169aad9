// Proof that the test cluster is a real kube-apiserver: schema validation, CRDs through kubectl,
// status subresources, server-side apply conflicts, RBAC with a restricted ServiceAccount identity,
// and pod IPs through pods/status.
import { fileURLToPath } from 'node:url';
import {
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  NetworkingV1Api,
  type V1NetworkPolicy,
  VersionApi,
} from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type ClusterHandle,
  createNamespace,
  createPod,
  setPodIPs,
  sharedCluster,
  statusCode,
  uniqueName,
} from '../cluster/index.ts';

const testdata = (p: string): string => fileURLToPath(new URL(`../cluster/testdata/${p}`, import.meta.url));

let cluster: ClusterHandle;
let kc: KubeConfig;
let ns: string;

beforeAll(async () => {
  cluster = sharedCluster();
  kc = await cluster.kubeConfig();
  ns = uniqueName('apiserver');
  await createNamespace(kc, ns, { purpose: 'harness-test' });
});

function policy(name: string, spec: Record<string, unknown>): V1NetworkPolicy {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name },
    spec,
  };
}

describe('the server', () => {
  it('is the pinned Kubernetes release', async () => {
    const version = await kc.makeApiClient(VersionApi).getCode();
    expect(version.gitVersion).toBe(cluster.binaries.kubernetesVersion);
  });

  it('serves the built-in APIs kubectl discovers', async () => {
    const res = await cluster.kubectl(['api-resources', '--api-group=networking.k8s.io', '-o', 'name']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout.split('\n')).toContain('networkpolicies.networking.k8s.io');
  });
});

describe('NetworkPolicy validation', () => {
  it('rejects an invalid field value with 422 Invalid', async () => {
    const api = kc.makeApiClient(NetworkingV1Api);
    const err = await api
      .createNamespacedNetworkPolicy({
        namespace: ns,
        body: policy('bad-types', { podSelector: {}, policyTypes: ['Sideways'] }),
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(statusCode(err)).toBe(422);
    const body = JSON.parse((err as { body: string }).body) as { reason: string; message: string };
    expect(body.reason).toBe('Invalid');
    expect(body.message).toContain(
      'spec.policyTypes[0]: Unsupported value: "Sideways": supported values: "Ingress", "Egress"',
    );
  });

  it('rejects an invalid port range', async () => {
    const res = await cluster.request('POST', `/apis/networking.k8s.io/v1/namespaces/${ns}/networkpolicies`, {
      body: policy('bad-port', { podSelector: {}, ingress: [{ ports: [{ port: 8080, endPort: 80 }] }] }),
    });
    expect(res.status).toBe(422);
    expect((res.json as { message: string }).message).toContain(
      'spec.ingress[0].ports[0].endPort: Invalid value: 80: must be greater than or equal to `port`',
    );
  });

  it('rejects an unknown field under strict field validation (kubectl apply)', async () => {
    const manifest = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: typo
  namespace: ${ns}
spec:
  podSelectr: {}
`;
    const res = await cluster.kubectl(['apply', '-f', '-'], { input: manifest });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('unknown field "spec.podSelectr"');
  });

  it('accepts a valid policy and kubectl reads it back', async () => {
    await kc.makeApiClient(NetworkingV1Api).createNamespacedNetworkPolicy({
      namespace: ns,
      body: policy('default-deny', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] }),
    });
    const res = await cluster.kubectl([
      'get',
      'networkpolicy',
      'default-deny',
      '-n',
      ns,
      '-o',
      'jsonpath={.spec.policyTypes}',
    ]);
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout)).toEqual(['Ingress', 'Egress']);
  });
});

describe('CRDs through kubectl', () => {
  beforeAll(async () => {
    const res = await cluster.kubectl(['apply', '-f', testdata('crds/')]);
    expect(res.code, res.stderr).toBe(0);
    const wait = await cluster.kubectl([
      'wait',
      '--for=condition=Established',
      '--timeout=30s',
      'crd/widgets.test.microseg.io',
    ]);
    expect(wait.code, wait.stderr).toBe(0);
  });

  it('creates and lists custom resources with kubectl', async () => {
    const input = `apiVersion: test.microseg.io/v1alpha1
kind: Widget
metadata:
  name: w1
  namespace: ${ns}
spec:
  size: 3
  color: blue
`;
    const created = await cluster.kubectl(['apply', '-f', '-'], { input });
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout.trim()).toBe('widget.test.microseg.io/w1 created');
    const got = await cluster.kubectl([
      'get',
      'widgets',
      '-n',
      ns,
      '--no-headers',
      '-o',
      'custom-columns=NAME:.metadata.name,SIZE:.spec.size',
    ]);
    expect(got.code, got.stderr).toBe(0);
    expect(got.stdout.trim().split(/\s+/)).toEqual(['w1', '3']);
  });

  it('validates custom resources against the CRD schema', async () => {
    const input = `apiVersion: test.microseg.io/v1alpha1
kind: Widget
metadata:
  name: w-bad
  namespace: ${ns}
spec:
  size: 0
  color: purple
`;
    const res = await cluster.kubectl(['apply', '-f', '-'], { input });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(
      'spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1',
    );
    expect(res.stderr).toContain(
      'spec.color: Unsupported value: "purple": supported values: "red", "green", "blue"',
    );
  });

  it('keeps status and spec apart through the status subresource', async () => {
    const api = kc.makeApiClient(CustomObjectsApi);
    const group = 'test.microseg.io';
    const version = 'v1alpha1';
    const plural = 'widgets';
    const created = (await api.createNamespacedCustomObject({
      group,
      version,
      plural,
      namespace: ns,
      body: {
        apiVersion: `${group}/${version}`,
        kind: 'Widget',
        metadata: { name: 'w2' },
        spec: { size: 2 },
        status: { phase: 'Ignored' },
      },
    })) as { metadata: { generation: number }; status?: unknown };
    // status written through the main resource is dropped
    expect(created.status).toBeUndefined();
    expect(created.metadata.generation).toBe(1);

    const status = await cluster.request(
      'PATCH',
      `/apis/${group}/${version}/namespaces/${ns}/${plural}/w2/status`,
      {
        body: { status: { phase: 'Ready', observedGeneration: 1 } },
        contentType: 'application/merge-patch+json',
      },
    );
    expect(status.status, status.text).toBe(200);
    const afterStatus = status.json as { metadata: { generation: number }; status: { phase: string } };
    expect(afterStatus.status.phase).toBe('Ready');
    expect(afterStatus.metadata.generation).toBe(1); // status changes do not bump generation

    const spec = await cluster.request('PATCH', `/apis/${group}/${version}/namespaces/${ns}/${plural}/w2`, {
      body: { spec: { size: 5 }, status: { phase: 'Hacked' } },
      contentType: 'application/merge-patch+json',
    });
    expect(spec.status, spec.text).toBe(200);
    const afterSpec = spec.json as { metadata: { generation: number }; status: { phase: string } };
    expect(afterSpec.metadata.generation).toBe(2);
    expect(afterSpec.status.phase).toBe('Ready');
  });
});

describe('server-side apply', () => {
  const path = (name: string): string =>
    `/apis/networking.k8s.io/v1/namespaces/${ns}/networkpolicies/${name}`;
  const apply = (name: string, manager: string, ingress: unknown[], force = false) =>
    cluster.request('PATCH', `${path(name)}?fieldManager=${manager}${force ? '&force=true' : ''}`, {
      body: {
        ...policy(name, { podSelector: { matchLabels: { app: 'web' } }, ingress }),
        metadata: { name, namespace: ns },
      },
      contentType: 'application/apply-patch+yaml',
    });
  const fromApp = (app: string) => [{ from: [{ podSelector: { matchLabels: { app } } }] }];

  it('reports a conflict between two field managers and transfers ownership on force', async () => {
    const first = await apply('shared', 'alice', fromApp('frontend'));
    expect(first.status, first.text).toBe(201);

    const conflict = await apply('shared', 'bob', fromApp('batch'));
    expect(conflict.status).toBe(409);
    const status = conflict.json as {
      reason: string;
      message: string;
      details: { causes: { field: string }[] };
    };
    expect(status.reason).toBe('Conflict');
    expect(status.message).toContain('conflict with "alice"');
    expect(status.details.causes.map((c) => c.field)).toContain('.spec.ingress');

    // the same value from a second manager is shared ownership, not a conflict
    const same = await apply('shared', 'carol', fromApp('frontend'));
    expect(same.status, same.text).toBe(200);

    const forced = await apply('shared', 'bob', fromApp('batch'), true);
    expect(forced.status, forced.text).toBe(200);
    const np = forced.json as {
      spec: { ingress: { from: { podSelector: { matchLabels: Record<string, string> } }[] }[] };
      metadata: { managedFields: { manager: string; fieldsV1: unknown }[] };
    };
    expect(np.spec.ingress[0]?.from[0]?.podSelector.matchLabels).toEqual({ app: 'batch' });
    const owners = np.metadata.managedFields
      .filter((f) => JSON.stringify(f.fieldsV1).includes('f:ingress'))
      .map((f) => f.manager);
    expect(owners).toEqual(['bob']);
  });
});

describe('pods without a kubelet', () => {
  it('creates pods with labels and owner references and sets their IPs through pods/status', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const owner = await core.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: 'owner' } },
    });
    const pod = await createPod(kc, {
      namespace: ns,
      name: 'web-0',
      labels: { app: 'web' },
      ports: { http: 8080 },
      ownerReferences: [
        { apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata!.uid!, controller: true },
      ],
    });
    expect(pod.status?.podIP).toBeUndefined();
    const updated = await setPodIPs(kc, pod, ['10.244.1.7', 'fd00::7']);
    expect(updated.status?.phase).toBe('Running');
    expect(updated.status?.podIP).toBe('10.244.1.7');
    expect(updated.status?.podIPs).toEqual([{ ip: '10.244.1.7' }, { ip: 'fd00::7' }]);
    const read = await core.readNamespacedPod({ namespace: ns, name: 'web-0' });
    expect(read.metadata?.labels).toEqual({ app: 'web' });
    expect(read.metadata?.ownerReferences?.[0]?.name).toBe('owner');
    expect(read.status?.podIPs?.map((p) => p.ip)).toEqual(['10.244.1.7', 'fd00::7']);
  });

  it('rejects an invalid pod IP', async () => {
    await createPod(kc, { namespace: ns, name: 'web-1', labels: { app: 'web' } });
    const err = await setPodIPs(kc, { namespace: ns, name: 'web-1' }, ['10.244.1.300']).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(statusCode(err)).toBe(422);
  });
});

describe('RBAC and identities', () => {
  it('authenticates the admin and client-certificate users', async () => {
    const admin = await cluster.kubectl(['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}']);
    expect(admin.code, admin.stderr).toBe(0);
    expect(admin.stdout).toBe('microseg-admin');
    const alice = await cluster.kubeconfigFor({ user: 'alice', groups: ['devs'] });
    const who = await cluster.kubectl(['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.groups}'], {
      kubeconfig: alice,
    });
    expect(who.code, who.stderr).toBe(0);
    expect(JSON.parse(who.stdout)).toEqual(['devs', 'system:authenticated']);
  });

  it('a ServiceAccount token is forbidden until a RoleBinding grants access', async () => {
    const sa = await cluster.kubeconfigFor({ serviceAccount: 'microseg-system/microseg' });
    const who = await cluster.kubectl(['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'], {
      kubeconfig: sa,
    });
    expect(who.stdout).toBe('system:serviceaccount:microseg-system:microseg');

    await cluster.kubectl(['create', 'namespace', 'rbac-demo']);
    const denied = await cluster.kubectl(['get', 'pods', '-n', 'rbac-demo'], { kubeconfig: sa });
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain(
      'pods is forbidden: User "system:serviceaccount:microseg-system:microseg" cannot list resource "pods" in API group "" in the namespace "rbac-demo"',
    );

    const granted = await cluster.kubectl(['apply', '-f', testdata('rbac-pod-reader.yaml')]);
    expect(granted.code, granted.stderr).toBe(0);
    const allowed = await cluster.kubectl(['get', 'pods', '-n', 'rbac-demo'], { kubeconfig: sa });
    expect(allowed.code, allowed.stderr).toBe(0);
    const cannotDelete = await cluster.kubectl(['auth', 'can-i', 'delete', 'pods', '-n', 'rbac-demo'], {
      kubeconfig: sa,
    });
    expect(cannotDelete.stdout.trim()).toBe('no');
    const otherNs = await cluster.kubectl(['auth', 'can-i', 'list', 'pods', '-n', ns], { kubeconfig: sa });
    expect(otherNs.stdout.trim()).toBe('no');
  });
});
