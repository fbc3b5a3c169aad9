/**
 * A workload known only from flows (a pod the cluster does not have, kept as a bare pod) across a
 * controller restart: the new leader restores its learned edges and the labels its flows gave it from the
 * LearnedEdgeSets, so the analysis, the status and the proposal are as before the restart.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Cluster } from '../cluster/index.ts';
import { createNamespace, createPod, eventually, setPodIPs, startCluster } from '../cluster/index.ts';
import type { RunningController } from '../controller/k8s-helpers.ts';
import {
  applyYaml,
  flow,
  getSeg,
  install,
  listJson,
  startController,
  waitSeg,
} from '../controller/k8s-helpers.ts';

let cluster: Cluster;
let admin: KubeConfig;
let a: RunningController | undefined;
let b: RunningController | undefined;
const ns = 'phantom';
const segName = 'phantom';
const cart = `${ns}/Pod/cart-7d9f`;

/** The peers (pod selectors) api's ProposedNetworkPolicy admits. */
async function apiIngressFrom(): Promise<unknown[]> {
  const items = await listJson<{ metadata: { name: string }; spec: { ingress?: { from?: unknown[] }[] } }>(
    cluster,
    `/apis/microseg.dev/v1alpha1/namespaces/${ns}/proposednetworkpolicies`,
  );
  const api = items.find((i) => i.metadata.name === 'microseg-api');
  return (api?.spec.ingress ?? []).flatMap((r) => r.from ?? []);
}

/** The workloads known only from flows the LearnedEdgeSets of the Segmentation keep. */
async function persistedWorkloads(): Promise<unknown[]> {
  const items = await listJson<{ spec: { segmentation: string; workloads?: unknown[] } }>(
    cluster,
    '/apis/microseg.dev/v1alpha1/learnededgesets',
  );
  return items.filter((i) => i.spec.segmentation === segName).flatMap((i) => i.spec.workloads ?? []);
}

beforeAll(async () => {
  cluster = await startCluster({ log: () => {} });
  await install(cluster);
  admin = await cluster.kubeConfig();
  await createNamespace(admin, ns, { tier: ns });
  await createPod(admin, { namespace: ns, name: 'web', labels: { app: 'web' } });
  await createPod(admin, { namespace: ns, name: 'api', labels: { app: 'api' } });
  await setPodIPs(admin, { namespace: ns, name: 'web' }, ['10.8.0.1']);
  await setPodIPs(admin, { namespace: ns, name: 'api' }, ['10.8.0.2']);
  await applyYaml(cluster, {
    apiVersion: 'microseg.dev/v1alpha1',
    kind: 'Segmentation',
    metadata: { name: segName },
    spec: { namespaceSelector: { matchLabels: { tier: ns } } },
  });
  a = await startController(cluster, { identity: 'replica-a' });
  await eventually('replica-a leads', () => a!.manager.controller.leading, 15_000);
}, 180_000);

afterAll(async () => {
  await a?.stop();
  await b?.stop();
  await cluster?.stop();
});

describe('a workload known only from flows', () => {
  it('is restored, with the labels its flows gave, by a restarted controller', async () => {
    // web → api, and a pod no informer has (cart-7d9f, app=cart) → api.
    const records = [
      flow(`${ns}/web`, `${ns}/api`, 8080),
      flow(`${ns}/cart-7d9f`, `${ns}/api`, 8080, {
        src: { namespace: ns, pod: 'cart-7d9f', labels: { app: 'cart' } },
      }),
    ];
    await eventually(
      'replica-a accepts flows',
      async () => ((await a!.push(records)).status === 202 ? true : undefined),
      30_000,
    );
    await waitSeg(
      cluster,
      segName,
      '3 workloads, 2 edges',
      (s) => s.status?.workloads === 3 && s.status.edges === 2,
    );
    await eventually('api admits app=cart', async () =>
      JSON.stringify(await apiIngressFrom()).includes('"app":"cart"') ? true : undefined,
    );
    await eventually('the phantom persisted with its labels', async () =>
      (await persistedWorkloads()).length > 0 ? true : undefined,
    );
    expect(await persistedWorkloads()).toEqual([{ id: cart, labels: { app: 'cart' } }]);
    const before = await apiIngressFrom();

    // A restart: replica-a stops (persisting), replica-b starts and leads.
    await a!.stop();
    a = undefined;
    b = await startController(cluster, { identity: 'replica-b' });
    await eventually('replica-b leads', () => b!.manager.controller.leading, 15_000);
    await eventually('replica-b analysed', () => b!.manager.controller.analysisOf(segName));
    expect(
      b.manager.controller
        .analysisOf(segName)!
        .graph.nodes.map((n) => n.id)
        .sort(),
    ).toEqual([`${ns}/Pod/api`, cart, `${ns}/Pod/web`]);
    // Some reconciles of replica-b (every 300 ms): its status is written by then.
    await new Promise((r) => setTimeout(r, 1500));
    expect((await getSeg(cluster, segName)).status?.workloads).toBe(3);
    expect(await apiIngressFrom()).toEqual(before);

    // Another pod created: the identity built again keeps the phantom, as before the restart.
    await createPod(admin, { namespace: ns, name: 'late', labels: { app: 'late' } });
    await eventually('replica-b sees late', () =>
      b!.manager.cache.pods.get(`${ns}/late`) ? true : undefined,
    );
    await waitSeg(cluster, segName, '4 workloads', (s) => s.status?.workloads === 4);
    expect(b.manager.controller.analysisOf(segName)!.graph.nodes.map((n) => n.id)).toContain(cart);
    expect(await apiIngressFrom()).toEqual(before);
  });
});
