/**
 * The web page's API in controller mode, end to end (the isolation work under the microseg
 * ServiceAccount and the RBAC from manifests/): each rollout view says what enforcing would change, from
 * the Segmentation's ProposedNetworkPolicies against the live NetworkPolicies; the Isolate button writes
 * an Isolation the leader reconciles, the isolation view and the graph show it (a replica that does not
 * lead alike, from its caches), and Release restores the pod.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNamespace, eventually, sharedCluster, uniqueName } from '../cluster/index.ts';
import type { RunningController } from '../controller/k8s-helpers.ts';
import {
  applyYaml,
  createAppPods,
  flow,
  install,
  listJson,
  SA,
  startController,
  startLeader,
  waitSeg,
} from '../controller/k8s-helpers.ts';
import type { ProposedNetworkPolicy } from '../../src/controller/api.ts';
import { KubeClient } from '../../src/controller/kube.ts';
import { kubeFromControllerClient } from '../../src/isolate/kube.ts';
import { wireIsolation } from '../../src/isolate/wire.ts';
import type { AuditView, GraphView, IsolationView } from '../../src/server/types.ts';

const cluster = sharedCluster();
const ns = uniqueName('ui');
const team = uniqueName('team');
const segName = uniqueName('seg');
const UI_TOKEN = 'ui-token';
let admin: KubeConfig;
let ctrl: RunningController;
/** A second replica of the same Lease: it does not lead. */
let follower: RunningController;

async function api<T>(
  path: string,
  init: RequestInit = {},
  port = ctrl.port,
): Promise<{ status: number; body: T; text: string }> {
  const r = await fetch(`http://127.0.0.1:${port}/api/v1${path}`, {
    ...init,
    headers: { authorization: `Bearer ${UI_TOKEN}`, 'content-type': 'application/json' },
  });
  const text = await r.text();
  return { status: r.status, body: (text ? JSON.parse(text) : undefined) as T, text };
}

async function quarantineLabel(pod: string): Promise<string | undefined> {
  const r = await cluster.request('GET', `/api/v1/namespaces/${ns}/pods/${pod}`);
  return (r.json as { metadata: { labels: Record<string, string> } }).metadata.labels[
    'microseg.dev/quarantine'
  ];
}

beforeAll(async () => {
  await install(cluster);
  admin = await cluster.kubeConfig();
  await createNamespace(admin, ns, { team });
  await createAppPods(admin, ns, [
    ['frontend', '10.78.0.1'],
    ['cart', '10.78.0.2'],
  ]);
  const kc = await cluster.kubeConfig({ serviceAccount: SA });
  const isolation = wireIsolation({
    kc,
    kube: kubeFromControllerClient(new KubeClient(kc)),
    log: () => undefined,
  });
  ctrl = await startLeader(cluster, {
    identity: uniqueName('ui'),
    // The Lease under a test-only name needs the admin; the isolation work itself runs as the ServiceAccount.
    asAdmin: true,
    leaseName: `lease-${ns}`,
    segmentationSelector: `microseg.dev/test=${segName}`,
    ui: { auth: { token: UI_TOKEN } },
    leaderTasks: [isolation.leaderTask],
    isolation: { actions: isolation.actions },
  });
  follower = await startController(cluster, {
    identity: uniqueName('ui-b'),
    asAdmin: true,
    leaseName: `lease-${ns}`,
    segmentationSelector: `microseg.dev/test=${segName}`,
    ui: { auth: { token: UI_TOKEN } },
    isolation: {},
  });
  await applyYaml(cluster, {
    apiVersion: 'microseg.dev/v1alpha1',
    kind: 'Segmentation',
    metadata: { name: segName, labels: { 'microseg.dev/test': segName } },
    spec: { namespaceSelector: { matchLabels: { team } }, mode: 'Learn' },
  });
  await waitSeg(cluster, segName, 'Learning phase', (s) => s.status?.phase === 'Learning');
  const res = await ctrl.push([flow(`${ns}/frontend`, `${ns}/cart`, 8080, { count: 5 })]);
  expect(res.status, await res.text()).toBe(202);
  await waitSeg(cluster, segName, 'policies', (s) => (s.status?.policies ?? 0) > 0);
}, 120_000);

afterAll(async () => {
  await follower?.stop();
  await ctrl?.stop();
});

describe('the web page in controller mode', () => {
  it('says what enforcing would change: every proposed policy is added, nothing being enforced yet', async () => {
    const proposed = (
      await listJson<ProposedNetworkPolicy>(
        cluster,
        `/apis/microseg.dev/v1alpha1/namespaces/${ns}/proposednetworkpolicies`,
      )
    )
      .map((p) => `${ns}/${p.metadata.name}`)
      .sort();
    expect(proposed.length).toBeGreaterThan(0);
    const audit = await eventually('enforce diff', async () => {
      const r = await api<AuditView[]>('/audits');
      const a = r.body.find((x) => x.name === segName);
      return a && a.enforce.added.length === proposed.length ? a : undefined;
    });
    expect(audit.enforce).toEqual({
      added: proposed,
      changed: [],
      removed: [],
      unchanged: 0,
      conflicts: [],
      held: [],
    });
  });

  it('isolates a workload from the page, shows it, and releases it', async () => {
    const workload = `${ns}/Pod/cart`;
    await eventually('cart in the graph', async () => {
      const g = await api<GraphView>('/graph?view=full');
      return g.body.nodes.some((n) => n.id === workload) || undefined;
    });
    const info = await api<{ features: Record<string, boolean> }>('/info');
    expect(info.body.features).toMatchObject({ isolations: true, isolate: true, release: true });
    const created = await api<IsolationView>('/isolations', {
      method: 'POST',
      body: JSON.stringify({ workload, reason: 'suspected compromise' }),
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body).toMatchObject({
      namespace: ns,
      workloads: [workload],
      reason: 'suspected compromise',
    });
    const name = created.body.name;
    const shown = await eventually(
      'isolated on the page',
      async () => {
        const r = await api<IsolationView[]>('/isolations');
        const i = r.body.find((x) => x.name === name);
        return i?.state === 'Isolated' ? i : undefined;
      },
      30_000,
    );
    expect(shown).toMatchObject({ workloads: [workload], pods: [`${ns}/cart`] });
    // The page's Isolation targets the bare pod by name: a replica that does not lead places it on its
    // workload from its caches, and answers the same bytes as the leader.
    expect(follower.manager.controller.leading).toBe(false);
    const same = await eventually('the same isolations on both replicas', async () => {
      const [a, b] = await Promise.all([api('/isolations'), api('/isolations', {}, follower.port)]);
      return a.status === 200 && a.text === b.text ? (b.body as IsolationView[]) : undefined;
    });
    expect(same.find((x) => x.name === name)).toMatchObject({ workloads: [workload], state: 'Isolated' });
    expect(await quarantineLabel('cart')).toBe(name);
    const g = await api<GraphView>('/graph?view=full');
    expect(g.body.nodes.filter((n) => n.isolated).map((n) => n.id)).toEqual([workload]);

    const del = await api(`/isolations/${encodeURIComponent(`${ns}/${name}`)}`, { method: 'DELETE' });
    expect(del.status).toBe(204);
    await eventually(
      'pod restored',
      async () => ((await quarantineLabel('cart')) === undefined ? true : undefined),
      30_000,
    );
    await eventually('gone from the page', async () => {
      const r = await api<IsolationView[]>('/isolations');
      return r.body.some((x) => x.name === name) ? undefined : true;
    });
  });
});
