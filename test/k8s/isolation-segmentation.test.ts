/**
 * An Isolation beside a Segmentation in Enforce mode in the same namespace (one controller runs both):
 * the Isolation's quarantine exclusion on the Segmentation's policies is not drift to the Segmentation,
 * so it stays in place while the pod is isolated (an allow policy that selected the quarantined pod again
 * would re-admit traffic to it), and the release restores the policies as they were.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNamespace, eventually, sharedCluster, uniqueName } from '../cluster/index.ts';
import type { NetworkPolicy } from '../../src/model/k8s.ts';
import type { Isolation } from '../../src/isolate/api.ts';
import type { RunningController } from '../controller/k8s-helpers.ts';
import {
  applyTeamSegmentation,
  learnAuditEnforce,
  applyYaml,
  createAppPods,
  events,
  install,
  listJson,
  SA,
  startLeader,
  waitSeg,
} from '../controller/k8s-helpers.ts';
import { KubeClient } from '../../src/controller/kube.ts';
import { kubeFromControllerClient } from '../../src/isolate/kube.ts';
import { wireIsolation } from '../../src/isolate/wire.ts';

const cluster = sharedCluster();
const ns = uniqueName('iso-seg');
const team = uniqueName('team');
const segName = uniqueName('seg');
let ctrl: RunningController;

const npPath = `/apis/networking.k8s.io/v1/namespaces/${ns}/networkpolicies`;
const isoPath = `/apis/microseg.dev/v1alpha1/namespaces/${ns}/isolations/cut-cart`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const exclusion = { key: 'microseg.dev/quarantine', operator: 'DoesNotExist' };

const segPolicies = async () =>
  (await listJson<NetworkPolicy>(cluster, npPath))
    .filter((p) => p.metadata.labels?.['microseg.dev/segmentation'] === segName)
    .sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1));
const selectors = async () =>
  Object.fromEntries((await segPolicies()).map((p) => [p.metadata.name, p.spec.podSelector]));

beforeAll(async () => {
  await install(cluster);
  const admin = await cluster.kubeConfig();
  await createNamespace(admin, ns, { team });
  await createAppPods(admin, ns, [
    ['frontend', '10.79.0.1'],
    ['cart', '10.79.0.2'],
    ['db', '10.79.0.3'],
  ]);
  const kc = await cluster.kubeConfig({ serviceAccount: SA });
  const isolation = wireIsolation({
    kc,
    kube: kubeFromControllerClient(new KubeClient(kc)),
    log: () => undefined,
  });
  ctrl = await startLeader(cluster, {
    identity: uniqueName('iso-seg'),
    asAdmin: true,
    leaseName: `lease-${ns}`,
    segmentationSelector: `microseg.dev/test=${segName}`,
    leaderTasks: [isolation.leaderTask],
  });
  await applyTeamSegmentation(cluster, segName, team);
  await learnAuditEnforce(cluster, ctrl, segName, ns);
  await waitSeg(cluster, segName, 'Enforcing', (s) => s.status?.phase === 'Enforcing');
}, 150_000);

afterAll(async () => {
  await ctrl?.stop();
});

describe('an Isolation beside an enforcing Segmentation', () => {
  it('keeps the Segmentation policies off the quarantined pod until the release, which restores them', async () => {
    const before = await segPolicies();
    expect(before.map((p) => p.metadata.name)).toEqual([
      'microseg-cart',
      'microseg-db',
      'microseg-default-deny',
      'microseg-frontend',
    ]);
    await applyYaml(cluster, {
      apiVersion: 'microseg.dev/v1alpha1',
      kind: 'Isolation',
      metadata: { name: 'cut-cart', namespace: ns },
      spec: { target: { pods: ['cart'] }, reason: 'shell in container' },
    });
    await eventually('Isolated', async () => {
      const r = await cluster.request('GET', isoPath);
      return (r.json as Isolation).status?.phase === 'Isolated';
    });
    // Several Segmentation resyncs (300 ms each) later, every policy still leaves the pod alone.
    await sleep(2000);
    expect(await selectors()).toEqual({
      'microseg-cart': { matchLabels: { app: 'cart' }, matchExpressions: [exclusion] },
      'microseg-db': { matchLabels: { app: 'db' }, matchExpressions: [exclusion] },
      'microseg-default-deny': { matchExpressions: [exclusion] },
      'microseg-frontend': { matchLabels: { app: 'frontend' }, matchExpressions: [exclusion] },
    });
    const drift = (await events(cluster, segName)).filter((e) => e.reason.startsWith('PolicyDrift'));
    expect(drift).toEqual([]);

    expect((await cluster.request('DELETE', isoPath)).status).toBe(200);
    await eventually('released', async () => (await cluster.request('GET', isoPath)).status === 404);
    await sleep(1500);
    const after = await segPolicies();
    expect(after.map((p) => [p.metadata.name, p.spec, p.metadata.annotations])).toEqual(
      before.map((p) => [p.metadata.name, p.spec, p.metadata.annotations]),
    );
    expect((await events(cluster, segName)).filter((e) => e.reason.startsWith('PolicyDrift'))).toEqual([]);
  }, 60_000);

  it('an Egress-only Isolation leaves the ingress as limited as the Segmentation had it', async () => {
    const cartPolicy = (await segPolicies()).find((p) => p.metadata.name === 'microseg-cart')!;
    const egressOnly = `${isoPath}-out`;
    await applyYaml(cluster, {
      apiVersion: 'microseg.dev/v1alpha1',
      kind: 'Isolation',
      metadata: { name: 'cut-cart-out', namespace: ns },
      spec: {
        target: { pods: ['cart'] },
        direction: 'Egress',
        reason: 'exfiltration',
        exceptions: { dns: false },
      },
    });
    await eventually('Isolated', async () => {
      const r = await cluster.request('GET', egressOnly);
      return (r.json as Isolation).status?.phase === 'Isolated';
    });
    // The Segmentation's policies no longer select the pod (the exclusion), so the quarantine policy
    // holds their ingress rules for it: frontend on 8080, and nothing else is let in.
    const quarantine = (await listJson<NetworkPolicy>(cluster, npPath)).find(
      (p) => p.metadata.labels?.['microseg.dev/isolation'] === 'cut-cart-out',
    )!;
    expect(quarantine.spec.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(quarantine.spec.ingress).toEqual(cartPolicy.spec.ingress);
    expect(quarantine.spec.egress ?? []).toEqual([]);
    expect(cartPolicy.spec.ingress?.length).toBeGreaterThan(0);
    expect((await cluster.request('DELETE', egressOnly)).status).toBe(200);
    await eventually('released', async () => (await cluster.request('GET', egressOnly)).status === 404);
  }, 60_000);
});
