/**
 * The controller watches the cluster's cluster-wide policies, against a real kube-apiserver of its own
 * (installing the policy.networking.k8s.io CRDs would change what other test files' clusters serve): an
 * AdminNetworkPolicy created or deleted changes the audit within seconds, far below the discovery poll
 * (set to ten minutes here, as the informers' relist, so no poll can make the change seen), and a CRD
 * installed after the controller started is found by the discovery poll and then watched. The watching
 * controller runs under its own ServiceAccount, with the RBAC of manifests/.
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
  createAppPods,
  flow,
  install,
  installIsolationCrd,
  mergePatch,
  SA,
  scopedTo,
  startController,
  startLeader,
  waitSeg,
} from '../controller/k8s-helpers.ts';
import { KubeClient } from '../../src/controller/kube.ts';
import type { Isolation } from '../../src/isolate/api.ts';
import { startIsolationController } from '../../src/isolate/controller.ts';
import { kubeFromControllerClient } from '../../src/isolate/kube.ts';
import { wireIsolation } from '../../src/isolate/wire.ts';

let cluster: Cluster;
let early: RunningController | undefined;
let ctrl: RunningController | undefined;
let isolating: RunningController | undefined;
const ns = uniqueName('anpw');
const team = uniqueName('team');
const segName = uniqueName('seg');
const TEN_MINUTES = 600_000;

/** An AdminNetworkPolicy that allows all traffic within `ns`, above any NetworkPolicy. */
const withinNamespace = (name: string) => anpWithinNamespace(name, ns);

const names = (c: RunningController | undefined) =>
  (c?.manager.cache.clusterPolicies?.list() ?? []).map((o) => `${o.kind}/${o.metadata.name}`);

beforeAll(async () => {
  cluster = await startCluster({ log: () => undefined });
  await install(cluster);
  const admin = await cluster.kubeConfig();
  await createNamespace(admin, ns, { team });
  await createAppPods(admin, ns, [
    ['client', '10.91.0.1'],
    ['web', '10.91.0.2'],
    ['monitor', '10.91.0.3'],
  ]);
  // Started before the CRD is installed: it discovers every second, and relists only every ten minutes.
  early = await startController(cluster, {
    identity: 'anpw-early',
    ...scopedTo(uniqueName('early')),
    informerResyncMs: TEN_MINUTES,
    clusterPolicyDiscoveryMs: 1000,
  });
}, 180_000);

afterAll(async () => {
  await isolating?.stop();
  await ctrl?.stop();
  await early?.stop();
  await cluster?.stop();
});

describe('the cluster-wide policies, watched', () => {
  it('finds a CRD installed after the controller started, and watches its kind', async () => {
    expect(names(early)).toEqual([]);
    await applyCrds(cluster, ['-f', ANP_CRD], ['adminnetworkpolicies.policy.networking.k8s.io']);
    await applyYaml(cluster, withinNamespace(`later-${ns}`));
    const t0 = Date.now();
    await eventually(
      'the AdminNetworkPolicy read',
      () => names(early).includes(`AdminNetworkPolicy/later-${ns}`),
      10_000,
    );
    expect(Date.now() - t0).toBeLessThan(10_000);
    const del = await cluster.kubectl(['delete', 'adminnetworkpolicy', `later-${ns}`]);
    expect(del.code, del.stderr).toBe(0);
    await eventually('the AdminNetworkPolicy gone', () => names(early).length === 0, 5000);
  });

  it('audits against an AdminNetworkPolicy within seconds of its creation and of its deletion', async () => {
    // What the first test may have left, had it failed.
    const left = await cluster.kubectl(['delete', 'adminnetworkpolicy', `later-${ns}`, '--ignore-not-found']);
    expect(left.code, left.stderr).toBe(0);
    // The CRD is served from the start: discovered once, then never again for ten minutes; Segmentations
    // are reconciled every minute at the least, so only the policy's own event can bring the change.
    ctrl = await startLeader(cluster, {
      identity: 'anpw-a',
      segmentationSelector: `microseg.dev/test=${segName}`,
      informerResyncMs: TEN_MINUTES,
      clusterPolicyDiscoveryMs: TEN_MINUTES,
      controller: { resyncMs: 60_000, persistIntervalMs: 200, identityRefreshMs: 0 },
    });
    const c = ctrl;
    await applyTeamSegmentation(cluster, segName, team);
    await waitSeg(cluster, segName, 'Learning', (s) => s.status?.phase === 'Learning');
    expect((await c.push([flow(`${ns}/client`, `${ns}/web`, 8080)])).status).toBe(202);
    await eventually('the flow learned', () => c.manager.controller.metrics.flowsIngested >= 1);
    await mergePatch(cluster, `/apis/microseg.dev/v1alpha1/segmentations/${segName}`, {
      spec: { mode: 'Audit' },
    });
    await waitSeg(cluster, segName, 'Auditing', (s) => s.status?.phase === 'Auditing');
    // Whether a flow of the monitor, which the frozen proposal's default deny blocks, is counted blocked.
    let port = 9000;
    const blocked = async (): Promise<boolean> => {
      const m = c.manager.controller.metrics;
      const [ingested, before] = [m.flowsIngested, m.wouldBlock];
      expect((await c.push([flow(`${ns}/monitor`, `${ns}/web`, port++)])).status).toBe(202);
      await eventually('the flow audited', () => m.flowsIngested > ingested);
      return m.wouldBlock > before;
    };
    expect(await blocked()).toBe(true);

    await applyYaml(cluster, withinNamespace(`within-${ns}`));
    let t0 = Date.now();
    await eventually(
      'the AdminNetworkPolicy read',
      () => names(c).includes(`AdminNetworkPolicy/within-${ns}`),
      5000,
    );
    await eventually('a flow it allows not blocked', async () => !(await blocked()), 5000);
    expect(Date.now() - t0).toBeLessThan(10_000);

    const del = await cluster.kubectl(['delete', 'adminnetworkpolicy', `within-${ns}`]);
    expect(del.code, del.stderr).toBe(0);
    t0 = Date.now();
    await eventually(
      'the AdminNetworkPolicy gone',
      () => !names(c).includes(`AdminNetworkPolicy/within-${ns}`),
      5000,
    );
    await eventually('the flow blocked again', blocked, 5000);
    expect(Date.now() - t0).toBeLessThan(10_000);
    // Under the ServiceAccount of manifests/: nothing it asked was forbidden.
    expect(c.logs.filter((l) => l.includes('forbidden'))).toEqual([]);
  });

  it('checks an Isolation in effect again within seconds of an AdminNetworkPolicy created or deleted', async () => {
    await installIsolationCrd(cluster);
    // The isolation work under the ServiceAccount of manifests/, as the controller runs it; the reconciler
    // looks again only every ten minutes, and its deny is at priority 50, so an AdminNetworkPolicy at 10
    // that allows traffic within the namespace is evaluated first: the isolated pod leaks.
    const kc = await cluster.kubeConfig({ serviceAccount: SA });
    const wiring = wireIsolation({
      kc,
      kube: kubeFromControllerClient(new KubeClient(kc)),
      log: () => undefined,
      startController: (o) =>
        startIsolationController({ ...o, namespace: ns, resyncMs: TEN_MINUTES, priority: 50 }),
    });
    isolating = await startLeader(cluster, {
      identity: 'anpw-iso',
      ...scopedTo(uniqueName('iso')),
      informerResyncMs: TEN_MINUTES,
      clusterPolicyDiscoveryMs: TEN_MINUTES,
      leaderTasks: [wiring.leaderTask],
    });
    const iso = uniqueName('iso');
    await applyYaml(cluster, {
      apiVersion: 'microseg.dev/v1alpha1',
      kind: 'Isolation',
      metadata: { name: iso, namespace: ns },
      spec: { target: { pods: ['web'] }, reason: 'test', mechanism: 'AdminNetworkPolicy' },
    });
    const status = async () => {
      const r = await cluster.request(
        'GET',
        `/apis/microseg.dev/v1alpha1/namespaces/${ns}/isolations/${iso}`,
      );
      return (r.json as Isolation).status;
    };
    await eventually('the Isolation in effect', async () => (await status())?.phase === 'Isolated', 20_000);

    await applyYaml(cluster, withinNamespace(`leak-${ns}`));
    let t0 = Date.now();
    const leaking = await eventually(
      'the Isolation leaking',
      async () => {
        const s = await status();
        return s?.phase === 'Leaking' ? s : undefined;
      },
      5000,
    );
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(new Set(leaking.leaks?.map((l) => l.policy))).toEqual(new Set([`AdminNetworkPolicy/leak-${ns}`]));

    const del = await cluster.kubectl(['delete', 'adminnetworkpolicy', `leak-${ns}`]);
    expect(del.code, del.stderr).toBe(0);
    t0 = Date.now();
    await eventually(
      'the Isolation isolated again',
      async () => (await status())?.phase === 'Isolated',
      5000,
    );
    expect(Date.now() - t0).toBeLessThan(10_000);
    const gone = await cluster.kubectl([
      'delete',
      'isolation',
      '-n',
      ns,
      iso,
      '--wait=true',
      '--timeout=30s',
    ]);
    expect(gone.code, gone.stderr).toBe(0);
  });
});
