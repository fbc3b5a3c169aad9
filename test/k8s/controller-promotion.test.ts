/**
 * Automatic promotion (off by default) Learn → Audit → Enforce once the conditions held long enough, and a
 * NetworkPolicy microseg does not own holding a proposed name: left untouched, reported as a conflict.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNamespace, sharedCluster, uniqueName } from '../cluster/index.ts';
import type { NetworkPolicy } from '../../src/model/k8s.ts';
import type { RunningController } from '../controller/k8s-helpers.ts';
import {
  applyForeignPolicy,
  createAppPods,
  applyYaml,
  cond,
  events,
  flow,
  install,
  listJson,
  scopedTo,
  startLeader,
  waitSeg,
  mergePatch,
} from '../controller/k8s-helpers.ts';

const cluster = sharedCluster();
const ns = uniqueName('promo');
const segName = uniqueName('promo');
let ctrl: RunningController;

beforeAll(async () => {
  await install(cluster);
  const admin = await cluster.kubeConfig();
  await createNamespace(admin, ns, { promo: ns });
  await createAppPods(admin, ns, [
    ['web', '10.79.0.1'],
    ['api', '10.79.0.2'],
  ]);
  // A foreign policy that happens to hold the name of the proposed default deny.
  await applyForeignPolicy(
    cluster,
    ns,
    'microseg-default-deny',
    { podSelector: { matchLabels: { app: 'nothing' } }, policyTypes: ['Ingress'] },
    { owner: 'platform-team' },
  );
  ctrl = await startLeader(cluster, { ...scopedTo(segName), identity: 'promotion-test' });
}, 120_000);

afterAll(async () => {
  await ctrl?.stop();
  await cluster.request('DELETE', `/apis/microseg.dev/v1alpha1/segmentations/${segName}`);
});

describe('automatic promotion', () => {
  it('is off by default: a stable proposal stays in Learn', async () => {
    await applyYaml(cluster, {
      apiVersion: 'microseg.dev/v1alpha1',
      kind: 'Segmentation',
      metadata: { name: segName, labels: { 'microseg.dev/test': segName } },
      spec: {
        namespaceSelector: { matchLabels: { promo: ns } },
        learning: { stableAfter: '0s' },
        audit: { window: '2s' },
        promotion: { after: '1s' },
      },
    });
    await waitSeg(cluster, segName, 'Learning', (s) => s.status?.phase === 'Learning');
    expect((await ctrl.push([flow(`${ns}/web`, `${ns}/api`, 8080)])).status).toBe(202);
    const s = await waitSeg(cluster, segName, 'stable', (x) => cond(x, 'ProposalStable')?.status === 'True');
    expect(s.spec!.promotion).toEqual({ automatic: false, after: '1s' });
    await new Promise((r) => setTimeout(r, 2000));
    const later = await waitSeg(cluster, segName, 'still Learn', () => true);
    expect(later.spec!.mode).toBe('Learn');
  });

  it('when on, promotes Learn → Audit → Enforce with Events, and never touches a foreign policy with a proposed name', async () => {
    await mergePatch(cluster, `/apis/microseg.dev/v1alpha1/segmentations/${segName}`, {
      spec: { promotion: { automatic: true } },
    });
    await waitSeg(cluster, segName, 'promoted to Audit', (s) => s.spec?.mode === 'Audit', 20_000);
    const s = await waitSeg(
      cluster,
      segName,
      'promoted to Enforce and acting on it',
      (x) => x.spec?.mode === 'Enforce' && x.status?.mode === 'Enforce',
      30_000,
    );
    const reasons = (await events(cluster, segName))
      .filter((e) => e.reason === 'AutoPromoted')
      .map((e) => e.message);
    expect(reasons).toContain('promoted Learn → Audit: the proposal has been stable for 1s');
    expect(reasons).toContain('promoted Audit → Enforce: the audit has been clean for 1s');
    const c = await waitSeg(
      cluster,
      segName,
      'conflict',
      (x) => cond(x, 'Enforced')?.reason === 'PolicyNameConflict',
    );
    expect(cond(c, 'Enforced')!.message).toBe(
      `NetworkPolicy ${ns}/microseg-default-deny exists and is not managed by this Segmentation (an object microseg does not manage); left untouched`,
    );
    expect(s.status!.phase).toBe('Enforcing');
    const nps = await listJson<NetworkPolicy>(
      cluster,
      `/apis/networking.k8s.io/v1/namespaces/${ns}/networkpolicies`,
    );
    const foreign = nps.find((p) => p.metadata.name === 'microseg-default-deny')!;
    expect(foreign.metadata.labels).toEqual({ owner: 'platform-team' });
    expect(foreign.spec.podSelector).toEqual({ matchLabels: { app: 'nothing' } });
    // The other proposed policies are applied.
    expect(
      nps.filter((p) => p.metadata.labels?.['microseg.dev/segmentation'] === segName).length,
    ).toBeGreaterThan(0);
  });
});
