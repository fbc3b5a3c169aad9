/**
 * Ingestion from Hubble Relay: a scripted relay speaking microseg's own observer proto on 127.0.0.1
 * streams flows (built from a real Hubble sample) to the controller, which learns them into the
 * Segmentation's graph. The relay restarts mid-stream; the controller resumes from its checkpoint with
 * no gap and no double count.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNamespace, eventually, sharedCluster, uniqueName } from '../cluster/index.ts';
import { nsToTimestamp } from '../../src/telemetry/checkpoint.ts';
import type { GetFlowsResponse } from '../../src/telemetry/proto.ts';
import type { RunningController } from '../controller/k8s-helpers.ts';
import {
  applyYaml,
  createAppPods,
  install,
  listJson,
  relayHubble,
  scopedTo,
  startController,
  waitSeg,
} from '../controller/k8s-helpers.ts';
import { FakeRelay } from '../telemetry/fake-relay.ts';

const cluster = sharedCluster();
const ns = uniqueName('hub');
const segName = uniqueName('hubseg');
const relay = new FakeRelay();
let ctrl: RunningController;
let other: RunningController | undefined;

/** A replica whose Hubble stream runs only while it leads, from the checkpoint on the Lease. */
function startReplica(identity: string): Promise<RunningController> {
  return startController(cluster, { ...scopedTo(segName), identity, hubble: relayHubble(relay) });
}

const sample = JSON.parse(
  readFileSync(new URL('../../../shared/samples/hubble-flows.jsonl', import.meta.url), 'utf8').split(
    '\n',
  )[0]!,
) as { flow: Record<string, unknown> };

/** The sample's pod→pod flow, rewritten to our pods, at time `ms`, from source port `sport`. */
function hubbleFlow(ms: number, sport: number): GetFlowsResponse {
  const f: Record<string, unknown> = structuredClone(sample.flow);
  const time = nsToTimestamp(BigInt(ms) * 1_000_000n);
  f.time = time;
  f.is_reply = { value: false };
  f.IP = { source: '10.78.0.1', destination: '10.78.0.2', ipVersion: 'IPv4' };
  f.l4 = { TCP: { source_port: sport, destination_port: 9080, flags: { SYN: true } } };
  f.source = {
    ...(f.source as object),
    namespace: ns,
    pod_name: 'productpage',
    labels: ['k8s:app=productpage'],
  };
  f.destination = {
    ...(f.destination as object),
    namespace: ns,
    pod_name: 'reviews',
    labels: ['k8s:app=reviews'],
  };
  return { flow: f, node_name: 'node-1', time };
}

async function persistedCount(): Promise<number> {
  const items = await listJson<{ spec: { segmentation: string; edges: { count: number }[] } }>(
    cluster,
    '/apis/microseg.dev/v1alpha1/learnededgesets',
  );
  return items
    .filter((i) => i.spec.segmentation === segName)
    .reduce((n, i) => n + i.spec.edges.reduce((m, e) => m + e.count, 0), 0);
}

beforeAll(async () => {
  await install(cluster);
  const admin = await cluster.kubeConfig();
  await createNamespace(admin, ns, { hubble: ns });
  await createAppPods(admin, ns, [['productpage', '10.78.0.1']]);
  await createAppPods(admin, ns, [['reviews', '10.78.0.2']], { http: 9080 });
  await applyYaml(cluster, {
    apiVersion: 'microseg.dev/v1alpha1',
    kind: 'Segmentation',
    metadata: { name: segName, labels: { 'microseg.dev/test': segName } },
    spec: { namespaceSelector: { matchLabels: { hubble: ns } } },
  });
  await relay.start();
  ctrl = await startReplica('hubble-a');
  await eventually('leadership', () => ctrl.manager.controller.leading, 15_000);
  await waitSeg(cluster, segName, 'Learning', (s) => s.status?.phase === 'Learning');
}, 120_000);

afterAll(async () => {
  await ctrl?.stop();
  await other?.stop();
  relay.stop();
  await cluster.request('DELETE', `/apis/microseg.dev/v1alpha1/segmentations/${segName}`);
});

describe('Hubble Relay ingestion', () => {
  it('learns the streamed flows into the graph and the proposal', async () => {
    const t = Date.now();
    relay.publish(hubbleFlow(t, 40_001), hubbleFlow(t + 1, 40_002), hubbleFlow(t + 2, 40_003));
    const seg = await waitSeg(
      cluster,
      segName,
      'one edge',
      (s) => s.status?.edges === 1 && (s.status.policies ?? 0) > 0,
    );
    expect(seg.status!.workloads).toBe(2);
    await eventually('3 flows persisted', async () => ((await persistedCount()) === 3 ? true : undefined));
    const m = await (await fetch(`http://127.0.0.1:${ctrl.port}/metrics`)).text();
    expect(m).toMatch(/^microseg_flows_ingested_total 3$/m);
    expect(m).toContain(`microseg_learned_edges{segmentation="${segName}"} 1`);
  });

  it('resumes after a relay restart with no gap and no double count', async () => {
    relay.stop();
    const t = Date.now();
    await relay.start(relay.port);
    relay.publish(hubbleFlow(t, 40_004), hubbleFlow(t + 1, 40_005));
    await eventually(
      '5 flows persisted',
      async () => ((await persistedCount()) === 5 ? true : undefined),
      20_000,
    );
    await new Promise((r) => setTimeout(r, 500));
    expect(await persistedCount()).toBe(5);
    expect(relay.requests.length).toBeGreaterThanOrEqual(2);
    expect(relay.requests.at(-1)!.since).toBeDefined();
  });

  it('a new leader resumes from the checkpoint the old one left on the Lease: no gap, no double count', async () => {
    other = await startReplica('hubble-b');
    const before = relay.requests.length;
    await ctrl.stop(); // graceful: drains, persists, commits the checkpoint to the Lease, releases it
    const lease = await cluster.request(
      'GET',
      `/apis/coordination.k8s.io/v1/namespaces/microseg-system/leases/lease-${segName}`,
    );
    const annotation = (lease.json as { metadata: { annotations: Record<string, string> } }).metadata
      .annotations['microseg.dev/hubble-checkpoint']!;
    const cp = JSON.parse(annotation) as { time: string; seen: string[] };
    expect(cp.seen.length).toBe(1);
    // New flows arrive while no replica leads: the new leader gets them in its replay from the
    // checkpoint, at once, while it is still restoring what the old leader persisted.
    const t = Date.now();
    relay.publish(hubbleFlow(t, 40_006), hubbleFlow(t + 1, 40_007));
    await eventually('hubble-b leads', () => other!.manager.controller.leading, 15_000);
    await eventually('hubble-b connects', () => (relay.requests.length > before ? true : undefined), 15_000);
    // It asked the relay for everything since the committed position (the relay replays from there).
    const since = relay.requests.at(-1)!.since!;
    expect(new Date(Number(since.seconds) * 1000 + Math.floor((since.nanos ?? 0) / 1e6)).toISOString()).toBe(
      new Date(Date.parse(cp.time)).toISOString(),
    );
    let last = -1;
    await eventually(
      '7 flows persisted',
      async () => ((last = await persistedCount()) === 7 ? true : undefined),
      20_000,
    ).catch((err: unknown) => {
      throw new Error(`${(err as Error).message} (last count: ${last})`);
    });
    await new Promise((r) => setTimeout(r, 500));
    expect(await persistedCount()).toBe(7);
  });
});
