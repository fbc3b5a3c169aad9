/**
 * The controller's own namespace (where its webhooks, flow push endpoint and page are served) is covered
 * by no Segmentation whose selector does not name it: a `{}` Segmentation learns, proposes and enforces
 * in another namespace and writes nothing into the controller's, and its Valid condition says why.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNamespace, sharedCluster, uniqueName } from '../cluster/index.ts';
import type { ProposedNetworkPolicy } from '../../src/controller/api.ts';
import type { NetworkPolicy } from '../../src/model/k8s.ts';
import type { RunningController } from '../controller/k8s-helpers.ts';
import {
  applyYaml,
  cond,
  createAppPods,
  flow,
  install,
  listJson,
  mergePatch,
  startLeader,
  waitSeg,
} from '../controller/k8s-helpers.ts';

const cluster = sharedCluster();
const own = uniqueName('ownns');
const app = uniqueName('ownapp');
const segName = uniqueName('ownns');
const segPath = `/apis/microseg.dev/v1alpha1/segmentations/${segName}`;
const pnps = (ns: string) =>
  listJson<ProposedNetworkPolicy>(
    cluster,
    `/apis/microseg.dev/v1alpha1/namespaces/${ns}/proposednetworkpolicies`,
  );
const nps = (ns: string) =>
  listJson<NetworkPolicy>(cluster, `/apis/networking.k8s.io/v1/namespaces/${ns}/networkpolicies`);
let ctrl: RunningController;

beforeAll(async () => {
  await install(cluster);
  const admin = await cluster.kubeConfig();
  await createNamespace(admin, own, {});
  await createNamespace(admin, app, {});
  await createAppPods(admin, own, [
    ['controller', '10.93.0.1'],
    ['falco', '10.93.0.2'],
  ]);
  await createAppPods(admin, app, [
    ['web', '10.93.1.1'],
    ['db', '10.93.1.2'],
  ]);
  ctrl = await startLeader(cluster, {
    segmentationSelector: `microseg.dev/test=${segName}`,
    identity: 'own-namespace-test',
    asAdmin: true,
    leaseName: `lease-${segName}`,
    controller: { resyncMs: 300, persistIntervalMs: 200, identityRefreshMs: 0, ownNamespace: own },
  });
}, 120_000);

afterAll(async () => {
  await ctrl?.stop();
  await cluster.request('DELETE', segPath);
});

describe("the controller's own namespace", () => {
  it('a {} Segmentation writes nothing into it in Learn or Enforce, and says why', async () => {
    await applyYaml(cluster, {
      apiVersion: 'microseg.dev/v1alpha1',
      kind: 'Segmentation',
      metadata: { name: segName, labels: { 'microseg.dev/test': segName } },
      spec: {
        namespaceSelector: {},
        mode: 'Learn',
        learning: { stableAfter: '0s' },
        audit: { window: '3s', samples: 5 },
      },
    });
    const learning = await waitSeg(cluster, segName, 'Learning', (s) => s.status?.phase === 'Learning');
    expect(learning.status?.namespaces).toContain(app);
    expect(learning.status?.namespaces).not.toContain(own);
    expect(cond(learning, 'Valid')?.message).toMatch(
      new RegExp(
        `^covers \\d+ namespace\\(s\\); spec\\.namespaceSelector also matches namespace ${own}, not covered: ` +
          "the controller's own namespace \\(its webhooks, flow push endpoint and page\\), covered only by a " +
          'selector that names it by kubernetes\\.io/metadata\\.name; ' +
          // The API server's system namespaces, which {} matches but does not cover either.
          'and namespaces kube-node-lease, kube-public, kube-system, not covered: Kubernetes system ' +
          'namespaces \\(cluster DNS and add-ons every namespace relies on\\), covered only by a selector ' +
          'that names them by kubernetes\\.io/metadata\\.name$',
      ),
    );

    // The incident path (falco → controller) and an application's traffic, both learned from flows.
    const traffic = () =>
      ctrl.push([
        flow(`${own}/falco`, `${own}/controller`, 8080, { count: 5 }),
        flow(`${app}/web`, `${app}/db`, 5432, { count: 5 }),
      ]);
    expect((await traffic()).status).toBe(202);
    await waitSeg(cluster, segName, 'proposal', (s) => s.status?.policies === 3);
    expect((await pnps(app)).map((p) => p.metadata.name).sort()).toEqual([
      'microseg-db',
      'microseg-default-deny',
      'microseg-web',
    ]);
    expect(await pnps(own)).toEqual([]);

    await mergePatch(cluster, segPath, { spec: { mode: 'Audit' } });
    await waitSeg(
      cluster,
      segName,
      'AuditClean',
      (s) => {
        void traffic();
        return cond(s, 'AuditClean')?.status === 'True';
      },
      30_000,
    );
    await mergePatch(cluster, segPath, { spec: { mode: 'Enforce' } });
    await waitSeg(cluster, segName, 'Enforcing', (s) => cond(s, 'Enforced')?.status === 'True', 30_000);
    expect((await nps(app)).map((p) => p.metadata.name).sort()).toEqual([
      'microseg-db',
      'microseg-default-deny',
      'microseg-web',
    ]);
    expect(await nps(own)).toEqual([]);
    expect(await pnps(own)).toEqual([]);
  });
});
