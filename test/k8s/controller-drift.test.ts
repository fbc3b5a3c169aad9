/**
 * Enforcement that holds against a real kube-apiserver: a partial enforcement (a foreign policy holds a
 * proposed name) holds back its namespace's default deny and keeps enforcing when a would-be-blocked flow
 * arrives; once the foreign policy is gone, the policy and the deny are applied; fields added by hand to managed
 * policies, including the rule lists a default deny leaves empty, are taken back by the next resync; a
 * repair the API server does not take is reported (Degraded, a Warning naming the fields), not as
 * restored; a policy deleted by hand that cannot be created again takes the default deny with it until
 * it can.
 */
import { isDeepStrictEqual } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KubeConfig } from '@kubernetes/client-node';
import { eventually, sharedCluster, uniqueName } from '../cluster/index.ts';
import type { NetworkPolicy } from '../../src/model/k8s.ts';
import type { ProposedNetworkPolicy } from '../../src/controller/api.ts';
import { canonicalSpec } from '../../src/controller/plan.ts';
import type { RunningController } from '../controller/k8s-helpers.ts';
import {
  applyForeignPolicy,
  applyTeamSegmentation,
  asDeployed,
  learnAuditEnforce,
  cond,
  createShop,
  DB_MONITORING,
  events,
  flow,
  getSeg,
  install,
  listJson,
  mergePatch,
  startLeader,
  waitSeg,
} from '../controller/k8s-helpers.ts';

const cluster = sharedCluster();
const ns = uniqueName('drift');
const team = uniqueName('team');
const segName = uniqueName('seg');
let admin: KubeConfig;
let ctrl: RunningController;

const npPath = `/apis/networking.k8s.io/v1/namespaces/${ns}/networkpolicies`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const patch = (path: string, body: unknown) => mergePatch(cluster, path, body);

const managed = async () =>
  (await listJson<NetworkPolicy>(cluster, npPath))
    .filter((p) => p.metadata.labels?.['microseg.dev/segmentation'] === segName)
    .sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1));

beforeAll(async () => {
  await install(cluster);
  admin = await cluster.kubeConfig();
  await createShop(admin, ns, team, '10.78.0');
  // A NetworkPolicy microseg does not own, holding the name microseg proposes for db.
  await applyForeignPolicy(cluster, ns, 'microseg-db', DB_MONITORING);
  ctrl = await startLeader(cluster, { ...asDeployed(segName), identity: 'drift-a' });
  await applyTeamSegmentation(cluster, segName, team);
  await learnAuditEnforce(cluster, ctrl, segName, ns);
}, 120_000);

afterAll(async () => {
  await ctrl?.stop();
});

describe('enforcement holds', () => {
  it('a partial enforcement (a name conflict) holds back the default deny and keeps enforcing when a would-be-blocked flow arrives', async () => {
    const conflict = await waitSeg(
      cluster,
      segName,
      'partial enforcement',
      (s) => cond(s, 'Enforced')?.reason === 'PolicyNameConflict',
    );
    expect(conflict.status!.phase).toBe('Enforcing');
    // db's policy is not in place, so the default deny would cut db off: it is held back too.
    expect(conflict.status!.enforcedPolicies).toBe(2);
    expect(cond(conflict, 'Enforced')!.message).toBe(
      `NetworkPolicy ${ns}/microseg-db exists and is not managed by this Segmentation (an object microseg does not manage); left untouched; NetworkPolicy ${ns}/microseg-default-deny held back: without ${ns}/microseg-db it would cut off what that policy allows`,
    );
    expect((await managed()).map((p) => p.metadata.name)).toEqual(['microseg-cart', 'microseg-frontend']);
    expect((await ctrl.push([flow(`${ns}/frontend`, `${ns}/db`, 5432)])).status).toBe(202);
    const seg = await waitSeg(
      cluster,
      segName,
      'would-block counted',
      (s) => (s.status?.wouldBlock ?? 0) >= 1,
    );
    // A few resyncs later (300 ms each) nothing was taken down, and the deny was not written meanwhile.
    await sleep(1500);
    const later = await getSeg(cluster, segName);
    for (const s of [seg, later]) {
      expect(s.status!.phase).toBe('Enforcing');
      expect(s.status!.enforcedPolicies).toBe(2);
      expect(cond(s, 'Enforced')).toMatchObject({ status: 'False', reason: 'PolicyNameConflict' });
      expect(cond(s, 'AuditClean')?.reason).toBe('FlowsWouldBeBlocked');
    }
    expect((await managed()).length).toBe(2);
    const all = await events(cluster, segName);
    expect(all.find((e) => e.reason === 'ProposalUpdated')?.message).toBe(
      'ProposedNetworkPolicies: 4 created, 0 updated, 0 deleted',
    );
    expect(
      all
        .filter(
          (e) =>
            e.message ===
            `NetworkPolicy ${ns}/microseg-default-deny held back: without ${ns}/microseg-db it would cut off what that policy allows`,
        )
        .map((e) => [e.type, e.reason]),
    ).toEqual([['Warning', 'PolicyNameConflict']]);
    const reasons = all.map((e) => e.reason);
    expect(reasons).not.toContain('PoliciesRemoved');
    expect(reasons).not.toContain('EnforceRefused');
    expect(all.filter((e) => e.reason === 'PolicyApplied').map((e) => e.message)).not.toContain(
      `NetworkPolicy ${ns}/microseg-default-deny applied`,
    );
  });

  it('once the foreign policy is deleted, its own policy and then the default deny are applied', async () => {
    const del = await cluster.request('DELETE', `${npPath}/microseg-db`);
    expect(del.status).toBe(200);
    const seg = await waitSeg(
      cluster,
      segName,
      'enforced in full',
      (s) => cond(s, 'Enforced')?.status === 'True',
    );
    expect(seg.status!.enforcedPolicies).toBe(4);
    expect((await managed()).map((p) => p.metadata.name)).toEqual([
      'microseg-cart',
      'microseg-db',
      'microseg-default-deny',
      'microseg-frontend',
    ]);
    // The deny was written after db's policy (the deny's resourceVersion is the later one).
    const byName = new Map((await managed()).map((p) => [p.metadata.name, p]));
    expect(Number(byName.get('microseg-default-deny')!.metadata.resourceVersion)).toBeGreaterThan(
      Number(byName.get('microseg-db')!.metadata.resourceVersion),
    );
  });

  it('rules added by hand to the default deny and to a workload policy are taken back within a resync', async () => {
    const before = new Map((await managed()).map((p) => [p.metadata.name, canonicalSpec(p.spec)]));
    await patch(`${npPath}/microseg-default-deny`, { spec: { ingress: [{}], egress: [{}] } });
    await patch(`${npPath}/microseg-frontend`, {
      spec: { ingress: [{}], podSelector: { matchLabels: { extra: 'x' } } },
    });
    const restored = await eventually(
      'restored',
      async () => {
        const now = await managed();
        return now.length === 4 && now.every((p) => before.get(p.metadata.name) === canonicalSpec(p.spec))
          ? now
          : undefined;
      },
      5_000,
    );
    expect(restored.find((p) => p.metadata.name === 'microseg-default-deny')!.spec).toEqual({
      podSelector: {},
      policyTypes: ['Ingress', 'Egress'],
    });
    // Restored once, not every resync: the repair took.
    await sleep(1500);
    const drift = (await events(cluster, segName)).filter((e) => e.reason === 'PolicyDriftRepaired');
    expect(drift.map((e) => [e.message, e.count]).sort()).toEqual([
      [`NetworkPolicy ${ns}/microseg-default-deny was changed or deleted outside microseg; restored`, 1],
      [`NetworkPolicy ${ns}/microseg-frontend was changed or deleted outside microseg; restored`, 1],
    ]);
    expect(cond(await getSeg(cluster, segName), 'Degraded')).toMatchObject({ status: 'False' });
  });

  it('a repair the API server does not take is Degraded with a Warning naming the fields, not "restored"', async () => {
    // The controller's apply of the default deny made as before every field was named: without its
    // empty rule lists, which server-side apply then leaves to the manager that set them by hand.
    const client = ctrl.client;
    const apply = client.apply.bind(client);
    client.apply = (obj, opts) => {
      if (obj.kind === 'NetworkPolicy' && obj.metadata.name === 'microseg-default-deny') {
        const { ingress: _i, egress: _e, ...spec } = (obj as unknown as NetworkPolicy).spec;
        return apply({ ...obj, spec }, opts);
      }
      return apply(obj, opts);
    };
    try {
      await patch(`${npPath}/microseg-default-deny`, { spec: { ingress: [{}], egress: [{}] } });
      const what = `NetworkPolicy ${ns}/microseg-default-deny still differs from the proposal after apply (spec.egress, spec.ingress): another field manager holds what microseg does not set`;
      const seg = await waitSeg(cluster, segName, 'Degraded', (s) => cond(s, 'Degraded')?.status === 'True');
      expect(cond(seg, 'Degraded')).toMatchObject({ reason: 'ApplyFailed', message: `drift ${what}` });
      expect(seg.status!.phase).toBe('Degraded');
      // What is not in place is not counted as enforced.
      expect(cond(seg, 'Enforced')).toMatchObject({
        status: 'False',
        reason: 'ApplyFailed',
        message: `3 of 4 NetworkPolicies in place; 1 could not be applied or repaired (see Degraded)`,
      });
      expect(seg.status!.enforcedPolicies).toBe(3);
      const ev = await eventually('not repaired event', async () =>
        (await events(cluster, segName)).find((e) => e.reason === 'PolicyDriftNotRepaired'),
      );
      expect(ev).toMatchObject({ type: 'Warning', message: what });
      const restored = (await events(cluster, segName)).filter(
        (e) => e.reason === 'PolicyDriftRepaired' && e.message.includes('microseg-default-deny'),
      );
      expect(restored.map((e) => e.count)).toEqual([1]);
    } finally {
      client.apply = apply;
    }
    // With every field named again, the next resync takes it back.
    await waitSeg(cluster, segName, 'recovered', (s) => cond(s, 'Degraded')?.status === 'False');
    const deny = (await managed()).find((p) => p.metadata.name === 'microseg-default-deny')!;
    expect(deny.spec).toEqual({ podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
  });

  it('a ProposedNetworkPolicy whose labels were edited by hand stays in the frozen proposal: its NetworkPolicy stays', async () => {
    const pnp = `/apis/microseg.dev/v1alpha1/namespaces/${ns}/proposednetworkpolicies/microseg-cart`;
    await patch(pnp, { metadata: { labels: { 'app.kubernetes.io/managed-by': null } } });
    await sleep(3000);
    expect((await managed()).map((p) => p.metadata.name)).toEqual([
      'microseg-cart',
      'microseg-db',
      'microseg-default-deny',
      'microseg-frontend',
    ]);
    const seg = await getSeg(cluster, segName);
    expect(seg.status!.enforcedPolicies).toBe(4);
    const pruned = (await events(cluster, segName)).filter((e) => e.reason === 'PolicyPruned');
    expect(pruned).toEqual([]);
  });

  it('labels and annotations microseg set, edited on a frozen proposal and on an enforced policy, are put back under its field manager; others stay', async () => {
    const pnpPath = `/apis/microseg.dev/v1alpha1/namespaces/${ns}/proposednetworkpolicies`;
    type Meta = {
      metadata: {
        name: string;
        labels?: Record<string, string>;
        annotations?: Record<string, string>;
        managedFields?: {
          manager: string;
          operation: string;
          subresource?: string;
          fieldsV1?: { 'f:metadata'?: unknown };
        }[];
      };
    };
    const one = async (path: string, name: string) =>
      (await listJson<Meta>(cluster, path)).find((o) => o.metadata.name === name)!;
    const pick = (o: Meta) => ({ labels: o.metadata.labels, annotations: o.metadata.annotations });
    const pnpBefore = pick(await one(pnpPath, 'microseg-frontend'));
    const npBefore = pick(await one(npPath, 'microseg-frontend'));
    expect(pnpBefore.labels?.['microseg.dev/segment']).toBeDefined();
    expect(pnpBefore.annotations?.['microseg.dev/workload']).toBe(`${ns}/Pod/frontend`);
    const edit = {
      metadata: {
        labels: { 'app.kubernetes.io/managed-by': null, 'microseg.dev/segment': 'hijacked', owner: 'ops' },
        annotations: { 'microseg.dev/workload': null, note: 'kept' },
      },
    };
    await patch(`${pnpPath}/microseg-frontend`, edit);
    await patch(`${npPath}/microseg-frontend`, edit);
    const withOthers = (m: typeof pnpBefore) => ({
      labels: { ...m.labels, owner: 'ops' },
      annotations: { ...m.annotations, note: 'kept' },
    });
    await eventually(
      'labels put back',
      async () =>
        isDeepStrictEqual(pick(await one(pnpPath, 'microseg-frontend')), withOthers(pnpBefore)) &&
        isDeepStrictEqual(pick(await one(npPath, 'microseg-frontend')), withOthers(npBefore)),
      10_000,
    );
    for (const path of [pnpPath, npPath]) {
      const o = await one(path, 'microseg-frontend');
      expect(pick(o)).toEqual(withOthers(path === pnpPath ? pnpBefore : npBefore));
      // microseg's server-side apply owns its labels and annotations again; the ones others added are theirs.
      const applied = o.metadata.managedFields?.find(
        (m) => m.manager === 'microseg' && m.operation === 'Apply' && m.subresource === undefined,
      );
      const meta = JSON.stringify(applied?.fieldsV1?.['f:metadata']);
      for (const k of ['app.kubernetes.io/managed-by', 'microseg.dev/segment', 'microseg.dev/workload'])
        expect(meta).toContain(`"f:${k}"`);
      expect(meta).not.toContain('"f:owner"');
      expect(meta).not.toContain('"f:note"');
    }
    const repaired = await eventually('events', async () => {
      const ev = (await events(cluster, segName))
        .filter((e) => e.reason === 'PolicyDriftRepaired' && e.message.includes(`${ns}/microseg-frontend`))
        .map((e) => e.message)
        .sort();
      return ev.length === 2 ? ev : undefined;
    });
    expect(repaired).toEqual([
      `NetworkPolicy ${ns}/microseg-frontend was changed or deleted outside microseg; restored`,
      `ProposedNetworkPolicy ${ns}/microseg-frontend was changed or deleted outside microseg; restored`,
    ]);
    const seg = await getSeg(cluster, segName);
    expect(seg.spec?.mode).toBe('Enforce');
    expect(cond(seg, 'Degraded')).toMatchObject({ status: 'False' });
    // A frozen repair names the resourceVersion of the copy it was made from: the API server refuses a
    // forced apply of a copy the object has moved on from, so an older spec is never put back.
    const current = (await listJson<ProposedNetworkPolicy>(cluster, pnpPath)).find(
      (o) => o.metadata.name === 'microseg-frontend',
    )!;
    await patch(`${pnpPath}/microseg-frontend`, { metadata: { labels: { owner: 'ops-2' } } });
    const { status: _s, ...body } = current;
    const { managedFields: _m, ...metadata } = current.metadata as typeof current.metadata & {
      managedFields?: unknown;
    };
    await expect(ctrl.client.apply({ ...body, metadata })).rejects.toThrow(/the object has been modified/);
  });

  it('a policy deleted by hand that cannot be created again takes the default deny with it until it can, then both come back', async () => {
    // An admission webhook refuses db's policy (an error of the API server's own, as a webhook's would be).
    const client = ctrl.client;
    const apply = client.apply.bind(client);
    client.apply = (obj, opts) =>
      obj.kind === 'NetworkPolicy' && obj.metadata.name === 'microseg-db' && opts?.subresource === undefined
        ? Promise.reject(new Error('admission webhook "policy.example.com" denied the request (HTTP 400)'))
        : apply(obj, opts);
    try {
      const del = await cluster.request('DELETE', `${npPath}/microseg-db`);
      expect(del.status).toBe(200);
      // The deny alone would select db's pods and cut off all db does: it goes until db's policy is back.
      const ev = await eventually('deny deleted', async () =>
        (await events(cluster, segName)).find(
          (e) => e.reason === 'PolicyPruned' && e.message.includes('could not be created'),
        ),
      );
      expect(ev).toMatchObject({
        type: 'Warning',
        message: `NetworkPolicy ${ns}/microseg-default-deny deleted: held back while ${ns}/microseg-db could not be created`,
      });
      expect((await managed()).map((p) => p.metadata.name)).toEqual(['microseg-cart', 'microseg-frontend']);
      // Later resyncs keep it out (its creation held back), and say so.
      await sleep(1000);
      const later = await getSeg(cluster, segName);
      expect(cond(later, 'Enforced')).toMatchObject({
        status: 'False',
        reason: 'ApplyFailed',
        message:
          '2 of 4 NetworkPolicies in place; 1 could not be applied or repaired; 1 default deny held back while a policy of its namespace could not be applied (see Degraded)',
      });
      expect(later.status!.enforcedPolicies).toBe(2);
      expect(cond(later, 'Degraded')!.message).toBe(
        `apply NetworkPolicy ${ns}/microseg-db: admission webhook "policy.example.com" denied the request (HTTP 400); create NetworkPolicy ${ns}/microseg-default-deny: held back, as a policy of its namespace could not be applied (the default deny would cut off what that policy allows)`,
      );
      expect((await managed()).map((p) => p.metadata.name)).toEqual(['microseg-cart', 'microseg-frontend']);
    } finally {
      client.apply = apply;
    }
    const seg = await waitSeg(
      cluster,
      segName,
      'enforced again',
      (s) => cond(s, 'Enforced')?.status === 'True',
    );
    expect(seg.status!.enforcedPolicies).toBe(4);
    const byName = new Map((await managed()).map((p) => [p.metadata.name, p]));
    expect([...byName.keys()]).toEqual([
      'microseg-cart',
      'microseg-db',
      'microseg-default-deny',
      'microseg-frontend',
    ]);
    expect(Number(byName.get('microseg-default-deny')!.metadata.resourceVersion)).toBeGreaterThan(
      Number(byName.get('microseg-db')!.metadata.resourceVersion),
    );
  });
});
