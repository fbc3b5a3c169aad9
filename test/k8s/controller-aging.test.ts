/**
 * Learned rules age out: an edge unused for spec.learning.ruleExpiry leaves the graph, the persisted
 * LearnedEdgeSets and the proposal, with an Event. The controller's clock is advanced instead of waiting.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNamespace, eventually, sharedCluster, uniqueName } from '../cluster/index.ts';
import type { ProposedNetworkPolicy } from '../../src/controller/api.ts';
import type { RunningController } from '../controller/k8s-helpers.ts';
import {
  createAppPods,
  applyYaml,
  events,
  flow,
  install,
  listJson,
  startLeader,
  waitSeg,
} from '../controller/k8s-helpers.ts';

const cluster = sharedCluster();
const ns = uniqueName('age');
const segName = uniqueName('age');
let ctrl: RunningController;
let offsetMs = 0;

async function persistedEdges(): Promise<{ dst: string; port: number }[]> {
  const items = await listJson<{ spec: { segmentation: string; edges: { dst: string; port: number }[] } }>(
    cluster,
    '/apis/microseg.dev/v1alpha1/learnededgesets',
  );
  return items.filter((i) => i.spec.segmentation === segName).flatMap((i) => i.spec.edges);
}

beforeAll(async () => {
  await install(cluster);
  const admin = await cluster.kubeConfig();
  await createNamespace(admin, ns, { age: ns });
  await createAppPods(admin, ns, [
    ['a', '10.80.0.1'],
    ['b', '10.80.0.2'],
    ['c', '10.80.0.3'],
  ]);
  await applyYaml(cluster, {
    apiVersion: 'microseg.dev/v1alpha1',
    kind: 'Segmentation',
    metadata: { name: segName, labels: { 'microseg.dev/test': segName } },
    spec: {
      namespaceSelector: { matchLabels: { age: ns } },
      learning: { ruleExpiry: '1m' },
      audit: { window: '30s' },
    },
  });
  ctrl = await startLeader(cluster, {
    identity: 'aging-test',
    asAdmin: true,
    leaseName: `lease-${segName}`,
    segmentationSelector: `microseg.dev/test=${segName}`,
    controller: {
      resyncMs: 300,
      persistIntervalMs: 200,
      identityRefreshMs: 0,
      now: () => Date.now() + offsetMs,
    },
  });
  await waitSeg(cluster, segName, 'Learning', (s) => s.status?.phase === 'Learning');
}, 120_000);

afterAll(async () => {
  await ctrl?.stop();
  await cluster.request('DELETE', `/apis/microseg.dev/v1alpha1/segmentations/${segName}`);
});

describe('rule expiry', () => {
  it('an edge unused for ruleExpiry leaves the graph, the persisted edges and the proposal', async () => {
    const now = Date.now();
    // a→b was last seen 50 s ago; a→c just now.
    const r = await ctrl.push([
      flow(`${ns}/a`, `${ns}/b`, 80, { time: new Date(now - 50_000).toISOString() }),
      flow(`${ns}/a`, `${ns}/c`, 81, { time: new Date(now).toISOString() }),
    ]);
    expect(r.status).toBe(202);
    await waitSeg(cluster, segName, 'two edges', (s) => s.status?.edges === 2);
    await eventually('two persisted', async () => ((await persistedEdges()).length === 2 ? true : undefined));
    const proposalFor = async (app: string) =>
      (
        await listJson<ProposedNetworkPolicy>(
          cluster,
          `/apis/microseg.dev/v1alpha1/namespaces/${ns}/proposednetworkpolicies`,
        )
      ).some((p) => p.spec.podSelector.matchLabels?.app === app);
    expect(await proposalFor('b')).toBe(true);

    offsetMs = 20_000; // a→b is now 70 s old, past the 1m expiry; a→c is 20 s old.
    await waitSeg(cluster, segName, 'one edge', (s) => s.status?.edges === 1);
    await eventually('one persisted', async () => {
      const e = await persistedEdges();
      return e.length === 1 && e[0]!.dst === `${ns}/Pod/c` ? true : undefined;
    });
    await eventually('b no longer in the proposal', async () =>
      (await proposalFor('b')) ? undefined : true,
    );
    expect(await proposalFor('c')).toBe(true);
    const ev = await eventually('aged-out event', async () =>
      (await events(cluster, segName)).find((e) => e.reason === 'EdgesAgedOut'),
    );
    expect(ev.message).toBe('1 learned edge(s) unused for 1m aged out');
  });
});
