/**
 * The whole user story against a real kube-apiserver, with the controller running under its own
 * ServiceAccount token and the RBAC from manifests/: learn → audit → enforce (refused, then allowed) →
 * drift repair → pruning → foreign policies untouched → back to learn. Flows arrive through the HTTP
 * push endpoint.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KubeConfig } from '@kubernetes/client-node';
import { eventually, sharedCluster, uniqueName } from '../cluster/index.ts';
import type { NetworkPolicy } from '../../src/model/k8s.ts';
import type { ProposedNetworkPolicy } from '../../src/controller/api.ts';
import { canonicalSpec } from '../../src/controller/plan.ts';
import type { RunningController } from '../controller/k8s-helpers.ts';
import {
  applyForeignPolicy,
  applyYaml,
  asDeployed,
  cond,
  createShop,
  DB_MONITORING,
  events,
  flow,
  getSeg,
  install,
  listJson,
  mergePatch,
  SA,
  startLeader,
  waitSeg,
} from '../controller/k8s-helpers.ts';

const cluster = sharedCluster();
const ns = uniqueName('shop');
const team = uniqueName('team');
const segName = uniqueName('seg');
let admin: KubeConfig;
let ctrl: RunningController;

const npPath = `/apis/networking.k8s.io/v1/namespaces/${ns}/networkpolicies`;
const pnpPath = `/apis/microseg.dev/v1alpha1/namespaces/${ns}/proposednetworkpolicies`;
const segPath = `/apis/microseg.dev/v1alpha1/segmentations/${segName}`;

async function setMode(mode: string, extra: Record<string, unknown> = {}): Promise<void> {
  await mergePatch(cluster, segPath, { spec: { mode, ...extra } });
}

const managed = async () =>
  (await listJson<NetworkPolicy>(cluster, npPath)).filter(
    (p) => p.metadata.labels?.['microseg.dev/segmentation'] === segName,
  );

beforeAll(async () => {
  await install(cluster);
  admin = await cluster.kubeConfig();
  await createShop(admin, ns, team, '10.77.0');
  // A NetworkPolicy microseg does not own: it must never be touched.
  await applyForeignPolicy(cluster, ns, 'foreign-allow-monitoring', DB_MONITORING);
  ctrl = await startLeader(cluster, { ...asDeployed(segName), identity: 'story-a' });
}, 120_000);

afterAll(async () => {
  await ctrl?.stop();
});

describe('Segmentation: learn → audit → enforce → learn', () => {
  let foreignRV = '';

  it('Learn: flows become learned edges, ProposedNetworkPolicies with evidence, segments and counts', async () => {
    const np = (await listJson<NetworkPolicy>(cluster, npPath)).find(
      (p) => p.metadata.name === 'foreign-allow-monitoring',
    )!;
    foreignRV = np.metadata.resourceVersion!;
    await applyYaml(cluster, {
      apiVersion: 'microseg.dev/v1alpha1',
      kind: 'Segmentation',
      metadata: { name: segName, labels: { 'microseg.dev/test': segName } },
      spec: {
        namespaceSelector: { matchLabels: { team } },
        mode: 'Learn',
        learning: { stableAfter: '0s' },
        audit: { window: '3s', samples: 5 },
      },
    });
    await waitSeg(cluster, segName, 'Learning phase', (s) => s.status?.phase === 'Learning');
    const res = await ctrl.push([
      flow(`${ns}/frontend`, `${ns}/cart`, 8080, { count: 5 }),
      flow(`${ns}/cart`, `${ns}/db`, 5432, { count: 3 }),
    ]);
    expect(res.status, await res.text()).toBe(202);
    const seg = await waitSeg(
      cluster,
      segName,
      'edges and policies',
      (s) => (s.status?.edges ?? 0) === 2 && (s.status?.policies ?? 0) > 0,
    );
    expect(seg.status!.workloads).toBe(3);
    expect(seg.status!.namespaces).toEqual([ns]);
    expect(seg.status!.segmentCount).toBeGreaterThan(0);
    expect(seg.status!.segments!.flatMap((s) => s.members).sort()).toEqual([
      `${ns}/Pod/cart`,
      `${ns}/Pod/db`,
      `${ns}/Pod/frontend`,
    ]);
    expect(cond(seg, 'Valid')?.status).toBe('True');
    expect(cond(seg, 'Learning')?.reason).toBe('LearningFlows');
    expect(cond(seg, 'Enforced')?.reason).toBe('NotEnforcing');
    // The proposal is visible with kubectl, with evidence.
    const pnps = await eventually('proposal evidence', async () => {
      const items = await listJson<ProposedNetworkPolicy>(cluster, pnpPath);
      return items.some((p) => (p.status?.evidence ?? []).length > 0) ? items : undefined;
    });
    const withCart = pnps.find((p) =>
      (p.status?.evidence ?? []).some((e) => e.peer === `${ns}/Pod/frontend` && e.port === 8080),
    );
    expect(withCart, JSON.stringify(pnps.map((p) => p.status))).toBeDefined();
    // Nothing is enforced in Learn mode.
    expect(await managed()).toEqual([]);
    const get = await cluster.kubectl(['get', 'segmentations', segName]);
    expect(get.stdout).toMatch(
      /MODE\s+PHASE\s+WORKLOADS\s+EDGES\s+SEGMENTS\s+POLICIES\s+WOULD-BLOCK\s+UNAUDITABLE\s+UNOBSERVED\s+AGE/,
    );
    expect(get.stdout).toMatch(new RegExp(`${segName}\\s+Learn\\s+Learning\\s+3\\s+2\\s+`));
    // Learned edges are persisted in the API.
    const les = await eventually('LearnedEdgeSet', async () => {
      const items = await listJson<{ spec: { segmentation: string; edges: unknown[] } }>(
        cluster,
        '/apis/microseg.dev/v1alpha1/learnededgesets',
      );
      const mine = items.filter((i) => i.spec.segmentation === segName);
      return mine.reduce((n, i) => n + i.spec.edges.length, 0) === 2 ? mine : undefined;
    });
    expect(les.length).toBe(1);
  });

  it('Enforce straight from Learn is refused until an audit is clean, with a condition and a Warning Event', async () => {
    await setMode('Enforce');
    const seg = await waitSeg(
      cluster,
      segName,
      'refusal',
      (s) => cond(s, 'Enforced')?.reason === 'EnforceRefused',
    );
    expect(seg.status!.phase).toBe('Refused');
    // Enforce starts the audit itself and waits for it to be clean.
    expect(cond(seg, 'Enforced')!.message).toMatch(
      /^Enforce refused: no flow would be blocked so far; the 3s audit window started at \d{4}-\d\d-\d\dT[0-9:.]+Z; wait for AuditClean or set spec.enforce.force: true$/,
    );
    const ev = await eventually('refusal event', async () =>
      (await events(cluster, segName)).find((e) => e.reason === 'EnforceRefused'),
    );
    expect(ev.type).toBe('Warning');
    expect(await managed()).toEqual([]);
  });

  it('Audit: a flow outside the proposal is counted as would-be-blocked; Enforce stays refused', async () => {
    await setMode('Audit');
    await waitSeg(cluster, segName, 'Auditing', (s) => s.status?.phase === 'Auditing' && !!s.status.audit);
    const res = await ctrl.push([flow(`${ns}/frontend`, `${ns}/db`, 5432)]);
    expect(res.status).toBe(202);
    const seg = await waitSeg(cluster, segName, 'would-block', (s) => (s.status?.wouldBlock ?? 0) >= 1);
    expect(cond(seg, 'AuditClean')).toMatchObject({ status: 'False', reason: 'FlowsWouldBeBlocked' });
    expect(seg.status!.audit!.samples![0]).toMatchObject({
      source: `${ns}/Pod/frontend`,
      destination: `${ns}/Pod/db`,
      protocol: 'TCP',
      port: 5432,
    });
    const ev = await eventually('would-block event', async () =>
      (await events(cluster, segName)).find((e) => e.reason === 'WouldBlockFlows'),
    );
    expect(ev.message).toContain(`${ns}/Pod/frontend → ${ns}/Pod/db TCP/5432`);
    await setMode('Enforce');
    const refused = await waitSeg(
      cluster,
      segName,
      'refused',
      (s) => cond(s, 'Enforced')?.reason === 'EnforceRefused',
    );
    expect(cond(refused, 'Enforced')!.message).toMatch(
      /^Enforce refused: 1 flow\(s\) in the last 3s would be blocked by the proposal/,
    );
    expect(await managed()).toEqual([]);
  });

  it('Audit: AuditClean after a window with only proposed traffic', async () => {
    await setMode('Audit');
    const seg = await waitSeg(
      cluster,
      segName,
      'AuditClean',
      (s) => {
        void ctrl.push([flow(`${ns}/frontend`, `${ns}/cart`, 8080)]);
        return cond(s, 'AuditClean')?.status === 'True';
      },
      30_000,
    );
    expect(cond(seg, 'AuditClean')!.reason).toBe('NoBlockedFlows');
    expect(seg.status!.wouldBlock).toBe(0);
  });

  it('Enforce: NetworkPolicies by server-side apply, labelled, owned by the Segmentation', async () => {
    await setMode('Enforce');
    const seg = await waitSeg(cluster, segName, 'Enforced', (s) => cond(s, 'Enforced')?.status === 'True');
    expect(seg.status!.phase).toBe('Enforcing');
    const pnps = await listJson<ProposedNetworkPolicy>(cluster, pnpPath);
    const nps = await eventually('policies', async () => {
      const m = await managed();
      return m.length === pnps.length ? m : undefined;
    });
    for (const np of nps) {
      const pnp = pnps.find((p) => p.metadata.name === np.metadata.name)!;
      // Same policy; the API omits the empty lists the proposal spells out.
      expect(canonicalSpec(np.spec)).toBe(canonicalSpec(pnp.spec));
      expect(np.metadata.labels!['app.kubernetes.io/managed-by']).toBe('microseg');
      expect(np.metadata.ownerReferences![0]).toMatchObject({
        kind: 'Segmentation',
        name: segName,
        controller: true,
      });
      const fm = (np.metadata as { managedFields?: { manager: string; operation: string }[] }).managedFields!;
      expect(fm.some((f) => f.manager === 'microseg' && f.operation === 'Apply')).toBe(true);
    }
    expect(seg.status!.enforcedPolicies).toBe(nps.length);
  });

  it('drift repair: an edited or deleted managed policy is restored', async () => {
    const [first, second] = await managed();
    await mergePatch(cluster, `${npPath}/${first!.metadata.name}`, { spec: { ingress: [{}] } });
    await cluster.request('DELETE', `${npPath}/${second!.metadata.name}`);
    await eventually('drift repaired', async () => {
      const now = await managed();
      const a = now.find((p) => p.metadata.name === first!.metadata.name);
      const b = now.find((p) => p.metadata.name === second!.metadata.name);
      return a && b && JSON.stringify(a.spec) === JSON.stringify(first!.spec) ? true : undefined;
    });
    const ev = await eventually('drift event', async () =>
      (await events(cluster, segName)).find((e) => e.reason === 'PolicyDriftRepaired'),
    );
    expect(ev.message).toContain('was changed or deleted outside microseg; restored');
  });

  it('pruning: a managed policy no longer proposed is deleted; a foreign policy is never touched', async () => {
    await applyYaml(cluster, {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: {
        name: 'stale-from-old-proposal',
        namespace: ns,
        labels: { 'app.kubernetes.io/managed-by': 'microseg', 'microseg.dev/segmentation': segName },
      },
      spec: { podSelector: {}, policyTypes: ['Ingress'] },
    });
    await eventually('pruned', async () =>
      (await managed()).every((p) => p.metadata.name !== 'stale-from-old-proposal') ? true : undefined,
    );
    const ev = await eventually('prune event', async () =>
      (await events(cluster, segName)).find((e) => e.reason === 'PolicyPruned'),
    );
    expect(ev.message).toBe(`NetworkPolicy ${ns}/stale-from-old-proposal is no longer proposed; deleted`);
    const foreign = (await listJson<NetworkPolicy>(cluster, npPath)).find(
      (p) => p.metadata.name === 'foreign-allow-monitoring',
    )!;
    expect(foreign.metadata.resourceVersion).toBe(foreignRV);
  });

  it('back to Learn removes every applied policy, and only those', async () => {
    await setMode('Learn');
    await waitSeg(cluster, segName, 'Learning', (s) => s.status?.phase === 'Learning');
    await eventually('removed', async () => ((await managed()).length === 0 ? true : undefined));
    const all = await listJson<NetworkPolicy>(cluster, npPath);
    expect(all.map((p) => p.metadata.name)).toEqual(['foreign-allow-monitoring']);
    expect(all[0]!.metadata.resourceVersion).toBe(foreignRV);
    const seg = await getSeg(cluster, segName);
    expect(cond(seg, 'Degraded')).toMatchObject({ status: 'False', reason: 'AsExpected' });
    const reasons = (await events(cluster, segName)).map((e) => e.reason);
    for (const r of ['ModeChanged', 'PolicyApplied', 'PoliciesRemoved', 'ProposalUpdated'])
      expect(reasons).toContain(r);
    // kubectl describe shows the conditions and the Events (recorded in the default namespace).
    const d = await cluster.kubectl(['describe', 'segmentation', segName]);
    expect(d.code).toBe(0);
    expect(d.stdout).toMatch(/Reason:\s+NotEnforcing/);
    expect(d.stdout).toMatch(/Normal\s+PoliciesRemoved\s/);
  });

  it('ran entirely under the microseg ServiceAccount: no request was forbidden', () => {
    const forbidden = [...ctrl.client.requests.keys()].filter((k) => k.endsWith(' 403'));
    expect(forbidden).toEqual([]);
    expect(SA).toBe('microseg-system/microseg-controller');
  });

  it('deleting the Segmentation cleans up its proposal and learned graph (finalizer)', async () => {
    const r = await cluster.request('DELETE', segPath);
    expect(r.status).toBe(200);
    await eventually('gone', async () =>
      (await cluster.request('GET', segPath)).status === 404 ? true : undefined,
    );
    expect(await listJson(cluster, pnpPath)).toEqual([]);
    const les = await listJson<{ spec: { segmentation: string } }>(
      cluster,
      '/apis/microseg.dev/v1alpha1/learnededgesets',
    );
    expect(les.filter((l) => l.spec.segmentation === segName)).toEqual([]);
  });
});
