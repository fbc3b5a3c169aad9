/**
 * The controller's audit knows the cluster's AdminNetworkPolicies, against a real kube-apiserver of its
 * own (installing the policy.networking.k8s.io CRDs would change what other test files' clusters
 * serve): traffic an AdminNetworkPolicy allows is not "would be blocked" by a frozen proposal whose
 * default deny it passes over, and traffic it does not allow still is; one the engine cannot evaluate is
 * left out rather than leaving the audit without an engine. An AdminNetworkPolicy's `nodes` peer is
 * matched by the labels of the cluster's Node objects, which the controller watches. The controller reads
 * them under its own ServiceAccount, with the RBAC of manifests/.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, createNamespace, eventually, startCluster, uniqueName } from '../cluster/index.ts';
import type { RunningController } from '../controller/k8s-helpers.ts';
import {
  ANP_CRD,
  anpWithinNamespace,
  applyCrds,
  applyTeamSegmentation,
  applyYaml,
  cond,
  createAppPods,
  flow,
  install,
  mergePatch,
  startLeader,
  waitSeg,
} from '../controller/k8s-helpers.ts';

let cluster: Cluster;
let ctrl: RunningController;
const ns = uniqueName('anp');
const other = uniqueName('outside');
const team = uniqueName('team');
const segName = uniqueName('seg');

beforeAll(async () => {
  cluster = await startCluster({ log: () => undefined });
  await install(cluster);
  await applyCrds(cluster, ['-f', ANP_CRD], ['adminnetworkpolicies.policy.networking.k8s.io']);
  await eventually('adminnetworkpolicies discovered', async () => {
    const r = await cluster.kubectl(['api-resources', '--api-group=policy.networking.k8s.io', '-o', 'name']);
    return r.stdout.includes('adminnetworkpolicies');
  });
  const admin = await cluster.kubeConfig();
  await createNamespace(admin, ns, { team });
  await createNamespace(admin, other);
  await createAppPods(admin, ns, [
    ['client', '10.90.0.1'],
    ['web', '10.90.0.2'],
    ['monitor', '10.90.0.3'],
  ]);
  await createAppPods(admin, other, [['intruder', '10.90.1.1']]);
  // Everything within the namespace is allowed, above any NetworkPolicy.
  await applyYaml(cluster, anpWithinNamespace(`within-${ns}`, ns));
  // One the semantics engine cannot evaluate (an egress peer by domain name): left out, not the end of
  // every audit (the engine refuses a set that holds it).
  await applyYaml(cluster, {
    apiVersion: 'policy.networking.k8s.io/v1alpha1',
    kind: 'AdminNetworkPolicy',
    metadata: { name: `by-domain-${ns}` },
    spec: {
      priority: 20,
      subject: { namespaces: { matchLabels: { 'kubernetes.io/metadata.name': ns } } },
      egress: [{ name: 'docs', action: 'Allow', to: [{ domainNames: ['*.example.com'] }] }],
    },
  });
  ctrl = await startLeader(cluster, {
    identity: 'anp-a',
    segmentationSelector: `microseg.dev/test=${segName}`,
  });
}, 180_000);

afterAll(async () => {
  await ctrl?.stop();
  await cluster?.stop();
});

describe("the audit with the cluster's AdminNetworkPolicies", () => {
  it('does not count as would-be-blocked what an AdminNetworkPolicy allows', async () => {
    expect(ctrl.manager.cache.clusterPolicies?.list().map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([
      `AdminNetworkPolicy/within-${ns}`,
    ]);
    await applyTeamSegmentation(cluster, segName, team);
    await waitSeg(cluster, segName, 'Learning', (s) => s.status?.phase === 'Learning');
    expect((await ctrl.push([flow(`${ns}/client`, `${ns}/web`, 8080)])).status).toBe(202);
    await waitSeg(cluster, segName, 'one edge', (s) => s.status?.edges === 1);
    await mergePatch(cluster, `/apis/microseg.dev/v1alpha1/segmentations/${segName}`, {
      spec: { mode: 'Audit' },
    });
    const auditing = await waitSeg(cluster, segName, 'Auditing', (s) => s.status?.phase === 'Auditing');
    expect(cond(auditing, 'Degraded')?.status).toBe('False');
    // Neither was learned, so the frozen proposal's default deny blocks both; the AdminNetworkPolicy
    // lets the one within the namespace through.
    const res = await ctrl.push([
      flow(`${ns}/monitor`, `${ns}/web`, 9090),
      flow(`${other}/intruder`, `${ns}/web`, 8080),
    ]);
    expect(res.status).toBe(202);
    // Samples of blocked flows are kept past the window; the batch is audited in order, so once the
    // intruder's is there, the monitor's flow was audited before it.
    const samplesOf = (s: { status?: { audit?: unknown } }) =>
      ((s.status?.audit as { samples?: { source: string }[] } | undefined)?.samples ?? []).map(
        (x) => x.source,
      );
    const seg = await waitSeg(cluster, segName, 'the intruder audited', (s) => samplesOf(s).length > 0);
    expect(samplesOf(seg)).toEqual([`${other}/Pod/intruder`]);
  });

  it("matches an AdminNetworkPolicy's nodes peer by the labels of the Node objects it watches", async () => {
    // A node (no kubelet here: its address is set through nodes/status) and an AdminNetworkPolicy that
    // lets the namespace's pods reach the kubelets of the nodes labelled so.
    const node = uniqueName('node');
    const created = await cluster.request('POST', '/api/v1/nodes', {
      body: {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: node, labels: { 'microseg.dev/kubelet': ns } },
      },
    });
    expect(created.status, created.text).toBe(201);
    await mergePatch(cluster, `/api/v1/nodes/${node}/status`, {
      status: { addresses: [{ type: 'InternalIP', address: '10.90.9.1' }] },
    });
    await applyYaml(cluster, {
      apiVersion: 'policy.networking.k8s.io/v1alpha1',
      kind: 'AdminNetworkPolicy',
      metadata: { name: `kubelets-${ns}` },
      spec: {
        priority: 11,
        subject: { namespaces: { matchLabels: { 'kubernetes.io/metadata.name': ns } } },
        egress: [
          {
            name: 'kubelet',
            action: 'Allow',
            to: [{ nodes: { matchLabels: { 'microseg.dev/kubelet': ns } } }],
            ports: [{ portNumber: { protocol: 'TCP', port: 10250 } }],
          },
        ],
      },
    });
    // Read: each from its watch.
    await eventually(
      'node and policy read',
      () =>
        ctrl.manager.cache.nodes.list().some((n) => n.metadata.name === node) &&
        ctrl.manager.cache.clusterPolicies?.list().some((o) => o.metadata.name === `kubelets-${ns}`) === true,
    );
    // Flows are audited against the engine of the last reconcile: one that started after both were read.
    const r0 = ctrl.manager.controller.metrics.reconciles;
    await eventually('a reconcile after', () => ctrl.manager.controller.metrics.reconciles >= r0 + 2);
    // The kubelet of the node is allowed; the same port of an address no node has is not.
    const res = await ctrl.push([
      flow(`${ns}/monitor`, '10.90.9.1', 10250),
      flow(`${ns}/monitor`, '10.90.9.2', 10250),
    ]);
    expect(res.status).toBe(202);
    const destinations = (s: { status?: { audit?: unknown } }) =>
      ((s.status?.audit as { samples?: { destination: string }[] } | undefined)?.samples ?? []).map(
        (x) => x.destination,
      );
    const seg = await waitSeg(cluster, segName, 'the flows to nodes audited', (s) =>
      destinations(s).some((d) => d.includes('10.90.9.2')),
    );
    expect(destinations(seg).filter((d) => d.includes('10.90.9.'))).toEqual([
      expect.stringContaining('10.90.9.2'),
    ]);
  });
});
