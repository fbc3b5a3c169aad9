/**
 * The RBAC in manifests/ is enough (the story test runs the controller under it without a single 403)
 * and not broader than needed (checked here with `kubectl auth can-i`). Also: a spec the schema cannot
 * judge — two Segmentations claiming one namespace — is reported in status with a clear reason.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNamespace, eventually, sharedCluster, uniqueName } from '../cluster/index.ts';
import type { RunningController } from '../controller/k8s-helpers.ts';
import { applyYaml, cond, events, install, startLeader, waitSeg } from '../controller/k8s-helpers.ts';

const cluster = sharedCluster();
const AS = 'system:serviceaccount:microseg-system:microseg-controller';

/** Subresources, which `kubectl auth can-i` takes by --subresource (`kind/x` alone names an object x). */
const SUBRESOURCES = new Set(['status', 'finalizers', 'eviction', 'exec', 'token']);

async function can(verb: string, resource: string, namespace?: string): Promise<boolean> {
  const [kind, sub] = resource.split('/');
  const args =
    sub !== undefined && SUBRESOURCES.has(sub)
      ? ['auth', 'can-i', verb, kind!, `--subresource=${sub}`, `--as=${AS}`]
      : ['auth', 'can-i', verb, resource, `--as=${AS}`];
  if (namespace) args.push('-n', namespace);
  else args.push('--all-namespaces');
  const r = await cluster.kubectl(args);
  return r.stdout.trim() === 'yes';
}

/**
 * The verbs on each resource (`[get list]`, the last column of `kubectl auth can-i --list`) of a new
 * ServiceAccount in a new namespace named from `prefix`, bound to `clusterRole` alone. A single can-i on
 * a kind the server does not serve answers no whatever the rules say, hence the list. The authorizer
 * learns of a new binding within moments: its rules are read once they name `marker`, a resource of the
 * role.
 */
async function verbsBoundTo(
  clusterRole: string,
  prefix: string,
  marker: string,
): Promise<(resource: string) => string | undefined> {
  const ns = uniqueName(prefix);
  await createNamespace(await cluster.kubeConfig(), ns);
  await applyYaml(cluster, {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: 'probe', namespace: ns },
  });
  await applyYaml(cluster, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: `${ns}-probe` },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: clusterRole },
    subjects: [{ kind: 'ServiceAccount', name: 'probe', namespace: ns }],
  });
  const rules = async () =>
    (await cluster.kubectl(['auth', 'can-i', '--list', `--as=system:serviceaccount:${ns}:probe`])).stdout;
  await eventually('the binding in effect', async () => (await rules()).includes(marker));
  const lines = (await rules()).split('\n');
  return (r) => /\[[^\]]*\]\s*$/.exec(lines.find((l) => l.startsWith(`${r} `)) ?? '')?.[0].trim();
}

beforeAll(async () => {
  await install(cluster);
}, 60_000);

describe('RBAC of the microseg ServiceAccount', () => {
  it('grants what the controller uses', async () => {
    const allowed: [string, string, string?][] = [
      ['watch', 'pods'],
      ['list', 'endpointslices.discovery.k8s.io'],
      ['list', 'replicasets.apps'],
      ['list', 'cronjobs.batch'],
      ['patch', 'networkpolicies.networking.k8s.io'],
      ['delete', 'networkpolicies.networking.k8s.io'],
      ['patch', 'segmentations.microseg.dev'],
      ['patch', 'segmentations.microseg.dev/status'],
      ['update', 'segmentations.microseg.dev/finalizers'],
      ['patch', 'proposednetworkpolicies.microseg.dev/status'],
      ['patch', 'learnededgesets.microseg.dev'],
      ['create', 'leases.coordination.k8s.io', 'microseg-system'],
      ['update', 'leases.coordination.k8s.io/microseg-controller', 'microseg-system'],
      ['create', 'events', 'default'],
      // Incident isolation (manifests/rbac-isolation.yaml): the quarantine label on pods, the deny-all
      // policy and its repair, the admin-tier deny, Events on pods in their own namespaces.
      ['patch', 'pods'],
      ['update', 'networkpolicies.networking.k8s.io'],
      ['create', 'isolations.microseg.dev'],
      ['patch', 'isolations.microseg.dev/status'],
      ['create', 'events', 'kube-system'],
    ];
    for (const [verb, res, ns] of allowed) expect(await can(verb, res, ns), `${verb} ${res}`).toBe(true);
  });

  it('grants nothing more', async () => {
    const denied: [string, string, string?][] = [
      ['get', 'secrets'],
      ['list', 'configmaps'],
      ['create', 'pods'],
      ['delete', 'pods'],
      ['delete', 'pods/eviction'],
      ['create', 'pods/exec', 'default'],
      ['patch', 'namespaces'],
      ['delete', 'segmentations.microseg.dev'],
      ['update', 'services'],
      ['update', 'leases.coordination.k8s.io/kube-scheduler', 'microseg-system'],
      ['get', 'leases.coordination.k8s.io/kube-controller-manager', 'kube-system'],
      ['create', 'clusterrolebindings.rbac.authorization.k8s.io'],
      ['create', 'serviceaccounts/token', 'microseg-system'],
      // Isolations are changed by merge patch only (finalizer, spec.expiresAt on a re-armed one, status),
      // and the isolation reconciler creates Events without patching them; only the Segmentation
      // controller's Events, in default, are patched (their repeats).
      ['update', 'isolations.microseg.dev'],
      ['update', 'isolations.microseg.dev/status'],
      ['patch', 'events', 'kube-system'],
      // Status is only written by server-side apply (a patch), never read by itself; the proposals and
      // learned graphs are read by their informers (list and watch), never one by one; namespaces, nodes
      // and endpoint slices likewise (pods, services, workloads and NetworkPolicies are read one by one
      // by the isolation reconciler: see the Segmentation controller's own ClusterRole below).
      ['get', 'segmentations.microseg.dev/status'],
      ['get', 'proposednetworkpolicies.microseg.dev'],
      ['get', 'proposednetworkpolicies.microseg.dev/status'],
      ['get', 'learnededgesets.microseg.dev'],
      ['get', 'namespaces'],
      ['get', 'nodes'],
      ['get', 'endpointslices.discovery.k8s.io'],
    ];
    for (const [verb, res, ns] of denied) expect(await can(verb, res, ns), `${verb} ${res}`).toBe(false);
  });
});

describe("the Segmentation controller's own ClusterRole", () => {
  it('lists the cluster-wide policies the audit evaluates, and reads nothing one by one but a Segmentation', async () => {
    // A ServiceAccount bound to microseg-controller alone (the isolation role grants these kinds too).
    const verbs = await verbsBoundTo('microseg-controller', 'rbac-probe', 'segmentations.microseg.dev');
    const expected: [string, string][] = [
      // The cluster-wide policies: watched (an informer each), never read one by one.
      ...['adminnetworkpolicies', 'baselineadminnetworkpolicies', 'clusternetworkpolicies'].map(
        (kind): [string, string] => [`${kind}.policy.networking.k8s.io`, '[list watch]'],
      ),
      // The informers' kinds: listed and watched, never read one by one (the isolation role grants its
      // own reads of single pods, Services, workloads and NetworkPolicies).
      ...[
        'namespaces',
        'nodes',
        'pods',
        'services',
        'endpointslices.discovery.k8s.io',
        'deployments.apps',
        'replicasets.apps',
        'statefulsets.apps',
        'daemonsets.apps',
        'jobs.batch',
        'cronjobs.batch',
      ].map((r): [string, string] => [r, '[list watch]']),
      // Written by server-side apply (patch, and create when the apply creates) and pruned.
      ['networkpolicies.networking.k8s.io', '[list watch create patch delete]'],
      ['proposednetworkpolicies.microseg.dev', '[list watch create patch delete]'],
      ['learnededgesets.microseg.dev', '[list watch create patch delete]'],
      // A single Segmentation is read: who declares spec.mode, before an automatic promotion.
      ['segmentations.microseg.dev', '[get list watch patch]'],
      // Status is written by server-side apply only.
      ['segmentations.microseg.dev/status', '[patch]'],
      ['proposednetworkpolicies.microseg.dev/status', '[patch]'],
    ];
    expect(expected.map(([r]) => `${r} ${verbs(r)}`)).toEqual(expected.map(([r, v]) => `${r} ${v}`));
  });
});

describe('the isolation ClusterRole', () => {
  it('writes only the admin-tier kinds an Isolation creates, and only lists BaselineAdminNetworkPolicies', async () => {
    // A ServiceAccount bound to microseg-isolation alone. An Isolation writes a ClusterNetworkPolicy or
    // an AdminNetworkPolicy (one by name: get, create, update, delete); the leak check lists the
    // BaselineAdminNetworkPolicy, which no Isolation ever writes: a write of the cluster's baseline (the
    // singleton `default`) would be a grant no code uses.
    const verbs = await verbsBoundTo('microseg-isolation', 'rbac-iso', 'isolations.microseg.dev');
    const expected: [string, string][] = [
      ['adminnetworkpolicies.policy.networking.k8s.io', '[get list create update delete]'],
      ['clusternetworkpolicies.policy.networking.k8s.io', '[get list create update delete]'],
      ['baselineadminnetworkpolicies.policy.networking.k8s.io', '[list]'],
    ];
    expect(expected.map(([r]) => `${r} ${verbs(r)}`)).toEqual(expected.map(([r, v]) => `${r} ${v}`));
  });
});

describe('conflicts the schema cannot see', () => {
  const team = uniqueName('conf');
  const older = uniqueName('older');
  const newer = uniqueName('newer');
  let ctrl: RunningController;

  beforeAll(async () => {
    await createNamespace(await cluster.kubeConfig(), uniqueName('conf-ns'), { conflict: team });
    ctrl = await startLeader(cluster, {
      segmentationSelector: `microseg.dev/test=${older}`,
      identity: 'conflict-test',
      asAdmin: true,
      leaseName: `lease-${older}`,
    });
  }, 60_000);

  afterAll(async () => {
    await ctrl?.stop();
    for (const n of [older, newer])
      await cluster.request('DELETE', `/apis/microseg.dev/v1alpha1/segmentations/${n}`);
  });

  it('a second Segmentation over the same namespace is Invalid with NamespaceConflict, and says why', async () => {
    const seg = (name: string) => ({
      apiVersion: 'microseg.dev/v1alpha1',
      kind: 'Segmentation',
      metadata: { name, labels: { 'microseg.dev/test': older } },
      spec: { namespaceSelector: { matchLabels: { conflict: team } } },
    });
    await applyYaml(cluster, seg(older));
    await waitSeg(cluster, older, 'older valid', (s) => cond(s, 'Valid')?.status === 'True');
    await new Promise((r) => setTimeout(r, 1100)); // creationTimestamp has one-second resolution
    await applyYaml(cluster, seg(newer));
    const s = await waitSeg(
      cluster,
      newer,
      'conflict',
      (x) => cond(x, 'Valid')?.reason === 'NamespaceConflict',
    );
    expect(s.status!.phase).toBe('Invalid');
    expect(cond(s, 'Valid')!.message).toMatch(
      new RegExp(`^namespace conf-ns-\\S+ is already covered by Segmentation ${older}$`),
    );
    const ev = await eventually('conflict event', async () =>
      (await events(cluster, newer)).find((e) => e.reason === 'NamespaceConflict'),
    );
    expect(ev.type).toBe('Warning');
    expect(cond(await waitSeg(cluster, older, 'older still valid', () => true), 'Valid')!.status).toBe(
      'True',
    );
  });
});
