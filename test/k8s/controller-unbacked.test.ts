/**
 * Flows to the ClusterIP of a Service with no backend in the controller, against a real kube-apiserver:
 * such a connection fails at the Service (kube-proxy or Cilium refuses it) before any pod a policy
 * selects is reached, so the audit does not count it as would-be-blocked; it counts it as a flow it
 * could not audit, and says why. An edge learned to such an address gets no ipBlock in the proposal,
 * and stands for the Service's backends once it has some, and still once the Service is deleted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KubeConfig } from '@kubernetes/client-node';
import { createNamespace, eventually, sharedCluster, uniqueName } from '../cluster/index.ts';
import type { ProposedNetworkPolicy } from '../../src/controller/api.ts';
import type { RunningController } from '../controller/k8s-helpers.ts';
import {
  applyTeamSegmentation,
  cond,
  createAppPods,
  createService,
  events,
  flow,
  install,
  listJson,
  mergePatch,
  scopedTo,
  startLeader,
  waitSeg,
} from '../controller/k8s-helpers.ts';

const cluster = sharedCluster();
const ns = uniqueName('unbacked');
const team = uniqueName('team');
const segName = uniqueName('seg');
let admin: KubeConfig;
let ctrl: RunningController;
/** The ClusterIPs of the Services `ghost` and `idle`, which select no pod. */
const clusterIPs: Record<string, string> = {};

beforeAll(async () => {
  await install(cluster);
  admin = await cluster.kubeConfig();
  await createNamespace(admin, ns, { team });
  await createAppPods(
    admin,
    ns,
    [
      ['frontend', '10.84.0.1'],
      ['api', '10.84.0.2'],
    ],
    { http: 8080 },
  );
  for (const name of ['ghost', 'idle'])
    clusterIPs[name] = await createService(cluster, ns, name, { app: name });
  await applyTeamSegmentation(cluster, segName, team);
  ctrl = await startLeader(cluster, { ...scopedTo(segName), identity: 'unbacked-a' });
}, 120_000);

afterAll(async () => {
  await ctrl?.stop();
});

/** frontend's proposed egress: the app of each pod peer, or the CIDR of each ipBlock, with the ports. */
async function egress(): Promise<(string | undefined)[][]> {
  const pnps = await listJson<ProposedNetworkPolicy>(
    cluster,
    `/apis/microseg.dev/v1alpha1/namespaces/${ns}/proposednetworkpolicies`,
  );
  const frontend = pnps.find((p) => p.spec.podSelector.matchLabels?.app === 'frontend');
  return (frontend?.spec.egress ?? []).flatMap((r) =>
    (r.to ?? []).map((t) => [
      t.ipBlock?.cidr ?? t.podSelector?.matchLabels?.app,
      (r.ports ?? []).map((p) => p.port).join(','),
    ]),
  );
}

describe('flows to the ClusterIP of a Service with no backend in the controller', () => {
  it('get no ipBlock for the ClusterIP in the proposal, and are credited to the backends the Service has since', async () => {
    await waitSeg(cluster, segName, 'Learning phase', (s) => s.status?.phase === 'Learning');
    const learned = await ctrl.push([
      flow(`${ns}/frontend`, `${ns}/api`, 8080, { count: 2 }),
      flow(`${ns}/frontend`, clusterIPs.ghost!, 80, { count: 3 }),
    ]);
    expect(learned.status, await learned.text()).toBe(202);
    await waitSeg(cluster, segName, 'two edges', (s) => (s.status?.edges ?? 0) === 2);
    const apiOnly = await eventually('a proposal for frontend', async () => {
      const e = await egress();
      return e.length > 0 ? e : undefined;
    });
    expect(apiOnly.filter(([peer]) => peer !== undefined)).toEqual([['api', '8080']]);
    // ghost gets a backend: the edge learned to its address stands for it now, on its targetPort.
    await createAppPods(admin, ns, [['ghost', '10.84.0.3']], { http: 8080 });
    const both = await eventually('ghost in frontend’s egress', async () => {
      const e = await egress();
      return e.some(([peer]) => peer === 'ghost') ? e : undefined;
    });
    expect(both.filter(([peer]) => peer !== undefined).sort()).toEqual([
      ['api', '8080'],
      ['ghost', '8080'],
    ]);
    // The edge is kept as it was learned, to the address.
    const persisted = await eventually('the learned edge to the ClusterIP', async () => {
      const sets = await listJson<{
        spec: { segmentation: string; edges: { dst: string; count: number }[] };
      }>(cluster, '/apis/microseg.dev/v1alpha1/learnededgesets');
      return sets
        .filter((x) => x.spec.segmentation === segName)
        .flatMap((x) => x.spec.edges)
        .find((e) => e.dst === `private:${clusterIPs.ghost}`);
    });
    expect(persisted.count).toBe(3);
  });

  it('stay credited to the backends a deleted Service had, and a flow from before the deletion reported late goes to them', async () => {
    const beforeDeletion = new Date().toISOString();
    await cluster.request('DELETE', `/api/v1/namespaces/${ns}/services/ghost`);
    await eventually('the controller saw ghost deleted', () =>
      ctrl.manager.cache.services.list().some((s) => s.metadata.name === 'ghost') ? undefined : true,
    );
    // A flow sent while ghost existed, reported after its deletion: ghost's pod's, a new edge.
    const late = await ctrl.push([
      flow(`${ns}/frontend`, clusterIPs.ghost!, 80, { count: 1, time: beforeDeletion }),
    ]);
    expect(late.status, await late.text()).toBe(202);
    // Learned (and persisted) as an edge to ghost's pod, not folded into the edge to the address.
    const toPod = await eventually('the learned edge to ghost’s pod', async () => {
      const sets = await listJson<{
        spec: { segmentation: string; edges: { dst: string; port: number; count: number }[] };
      }>(cluster, '/apis/microseg.dev/v1alpha1/learnededgesets');
      return sets
        .filter((x) => x.spec.segmentation === segName)
        .flatMap((x) => x.spec.edges)
        .find((e) => e.dst === `${ns}/Pod/ghost`);
    });
    expect(toPod).toMatchObject({ port: 8080, count: 1 });
    // The proposal written after the deletion (the reconcile that persisted the edge wrote it too) still
    // admits frontend to ghost's pod, and has no ipBlock for the address.
    const after = await egress();
    expect(after.filter(([peer]) => peer !== undefined).sort()).toEqual([
      ['api', '8080'],
      ['ghost', '8080'],
    ]);
    expect(after.some(([peer]) => peer?.startsWith(clusterIPs.ghost!))).toBe(false);
  });

  it('are not counted as would-be-blocked in Audit: AuditClean stays True and says they could not be audited, and why', async () => {
    await mergePatch(cluster, `/apis/microseg.dev/v1alpha1/segmentations/${segName}`, {
      spec: { mode: 'Audit' },
    });
    // The audit's 3 s window passes clean.
    await waitSeg(cluster, segName, 'a clean audit', (s) => cond(s, 'AuditClean')?.status === 'True');
    // frontend keeps calling idle, scaled to nothing: the proposal (frontend isolated, no rule to the
    // address) would change nothing for that connection, which fails at the Service.
    const res = await ctrl.push([flow(`${ns}/frontend`, clusterIPs.idle!, 80, { count: 4 })]);
    expect(res.status, await res.text()).toBe(202);
    const seg = await waitSeg(cluster, segName, 'unauditable 4', (s) => s.status?.unauditable === 4);
    expect(seg.status!.wouldBlock).toBe(0);
    expect(ctrl.manager.controller.metrics.wouldBlock).toBe(0);
    expect(cond(seg, 'AuditClean')).toMatchObject({
      status: 'True',
      reason: 'NoBlockedFlows',
      message:
        'no flow would have been blocked in the last 3s; 4 flow(s) could not be audited (see status.unauditable)',
    });
    const warned = await eventually('an Unauditable Event', async () =>
      (await events(cluster, segName)).find((e) => e.reason === 'Unauditable'),
    );
    expect(warned).toMatchObject({
      type: 'Warning',
      message: `4 flow(s) in the last 3s could not be audited against the proposal, e.g. ${ns}/Pod/frontend → private:${clusterIPs.idle} TCP/80: the destination is the ClusterIP of Service ${ns}/idle, which has no backend: the connection fails at the Service, and no policy decides it`,
    });
    expect((await events(cluster, segName)).some((e) => e.reason === 'WouldBlockFlows')).toBe(false);
  });
});
