/**
 * Isolation inside the controller process (its Kubernetes calls under the microseg ServiceAccount and the
 * RBAC from manifests/):
 * a Falco alert posted to the controller's own server becomes one Isolation, which the leader's reconciler
 * isolates; duplicates of the alert change nothing; deleting the Isolation releases the pod.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNamespace, createPod, eventually, sharedCluster, uniqueName } from '../cluster/index.ts';
import type { RunningController } from '../controller/k8s-helpers.ts';
import { install, SA, startLeader } from '../controller/k8s-helpers.ts';
import { KubeClient } from '../../src/controller/kube.ts';
import { kubeFromControllerClient } from '../../src/isolate/kube.ts';
import { wireIsolation } from '../../src/isolate/wire.ts';

const cluster = sharedCluster();
const ns = uniqueName('iso-ctl');
const TOKEN = 'falco-webhook-token';
let ctrl: RunningController;

interface Iso {
  metadata: { name: string; labels?: Record<string, string> };
  status?: { phase?: string; pods?: unknown[] };
}

async function isolations(): Promise<Iso[]> {
  const r = await cluster.request('GET', `/apis/microseg.dev/v1alpha1/namespaces/${ns}/isolations`);
  return (r.json as { items: Iso[] }).items;
}

beforeAll(async () => {
  await install(cluster);
  const admin = await cluster.kubeConfig();
  await createNamespace(admin, ns);
  await createPod(admin, { namespace: ns, name: 'web-1', labels: { app: 'web' }, ports: { http: 8080 } });
  const dir = await mkdtemp(join(tmpdir(), 'microseg-webhook-'));
  await writeFile(join(dir, 'token'), `${TOKEN}\n`);
  const kc = await cluster.kubeConfig({ serviceAccount: SA });
  const isolation = wireIsolation({
    kc,
    kube: kubeFromControllerClient(new KubeClient(kc)),
    webhookTokenFile: join(dir, 'token'),
    log: () => undefined,
  });
  ctrl = await startLeader(cluster, {
    identity: uniqueName('iso-ctl'),
    // The Lease under a test-only name needs the admin; the isolation work itself runs as the ServiceAccount.
    asAdmin: true,
    leaseName: `lease-${ns}`,
    segmentationSelector: `microseg.dev/test=${ns}`,
    leaderTasks: [isolation.leaderTask],
    routers: isolation.router ? [isolation.router] : [],
    extraMetrics: () => isolation.metrics.families(),
  });
}, 120_000);

afterAll(async () => {
  await ctrl?.stop();
});

describe('isolation in the controller', () => {
  const alert = {
    rule: 'Terminal shell in container',
    priority: 'Critical',
    time: '2026-11-28T17:00:00.000000000Z',
    output: 'A shell was spawned in a container',
    output_fields: { 'k8s.ns.name': ns, 'k8s.pod.name': 'web-1' },
  };
  const post = (body: unknown, token: string) =>
    fetch(`http://127.0.0.1:${ctrl.port}/webhooks/falco`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  it('turns a Falco alert into one reconciled Isolation, and exposes its metrics', async () => {
    expect((await post(alert, 'wrong')).status).toBe(401);
    expect(await isolations()).toEqual([]);
    const first = await post(alert, TOKEN);
    expect(first.status).toBeLessThan(300);
    for (let i = 0; i < 5; i++) expect((await post(alert, TOKEN)).status).toBeLessThan(300);
    const isolated = await eventually(
      'Isolation phase Isolated',
      async () => {
        const list = await isolations();
        return list.length === 1 && list[0]!.status?.phase === 'Isolated' ? list : undefined;
      },
      30_000,
    );
    expect(isolated).toHaveLength(1);
    const pod = await cluster.request('GET', `/api/v1/namespaces/${ns}/pods/web-1`);
    const labels = (pod.json as { metadata: { labels: Record<string, string> } }).metadata.labels;
    expect(labels['microseg.dev/quarantine']).toBe(isolated[0]!.metadata.name);
    const metrics = await (await fetch(`http://127.0.0.1:${ctrl.port}/metrics`)).text();
    // At least this one: the controller watches every namespace of the shared apiserver, where other
    // test files' Isolations may be in effect at the same time.
    const active = Number(/^microseg_isolations_active (\d+)$/m.exec(metrics)?.[1]);
    expect(active).toBeGreaterThanOrEqual(1);
    expect(metrics).toMatch(/^microseg_isolation_alerts_total\{source="falco",outcome="created"\} 1$/m);
  });

  it('releases the pod when the Isolation is deleted', async () => {
    const [iso] = await isolations();
    const del = await cluster.request(
      'DELETE',
      `/apis/microseg.dev/v1alpha1/namespaces/${ns}/isolations/${iso!.metadata.name}`,
    );
    expect(del.status).toBeLessThan(300);
    await eventually(
      'quarantine label removed',
      async () => {
        const pod = await cluster.request('GET', `/api/v1/namespaces/${ns}/pods/web-1`);
        const labels = (pod.json as { metadata: { labels: Record<string, string> } }).metadata.labels;
        return labels['microseg.dev/quarantine'] === undefined ? true : undefined;
      },
      30_000,
    );
  });
});
