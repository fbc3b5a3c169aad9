/**
 * Writes the API server refuses, with a real refusal: a ValidatingAdmissionPolicy (CEL, in the
 * kube-apiserver itself) that refuses the NetworkPolicy of one workload. In Enforce, the default deny of
 * its namespace is never in place without that workload's policy, each refusal is said with the
 * admission message, what was applied stays, and once the refusal is lifted the controller recovers by
 * itself, long before its resync. In Learn, a ProposedNetworkPolicy refused keeps the proposal from being
 * called stable (and promoted without it), and a LearnedEdgeSet refused loses no learned edge. Created in
 * Enforce, a first proposal with a refused ProposedNetworkPolicy is written again until it is in place in
 * full, never frozen without it; so is a proposal promoted by hand from Learn while one is refused.
 * Enforcing such a proposal, a learned edge past learning.ruleExpiry is kept until it is written in
 * full: its allow never leaves the enforced NetworkPolicy meanwhile; nor does a raised
 * learning.minFlows take one out, through a leader change too: the proposal is written with the
 * minFlows it was made from until it is frozen with it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KubeConfig } from '@kubernetes/client-node';
import { eventually, sharedCluster, uniqueName } from '../cluster/index.ts';
import type { NetworkPolicy } from '../../src/model/k8s.ts';
import { KubeClient } from '../../src/controller/kube.ts';
import type { RunningController } from '../controller/k8s-helpers.ts';
import {
  applyTeamSegmentation,
  cond,
  createShop,
  events,
  getSeg,
  inNamespace,
  install,
  flow,
  liftAdmission,
  listJson,
  mergePatch,
  refuseInAdmission,
  startLeader,
  waitSeg,
} from '../controller/k8s-helpers.ts';

const cluster = sharedCluster();
const ns = uniqueName('refuse');
const team = uniqueName('team');
const segName = uniqueName('seg');
const vap = uniqueName('refuse-db');
const npPath = `/apis/networking.k8s.io/v1/namespaces/${ns}/networkpolicies`;
const segPath = `/apis/microseg.dev/v1alpha1/segmentations/${segName}`;
const vapMessage = 'the platform team does not allow a NetworkPolicy named microseg-db here';
const ns2 = uniqueName('refuse');
const team2 = uniqueName('team');
const seg2 = uniqueName('seg');
const vap2 = uniqueName('refuse-pnp');
const vapMessage2 = 'microseg objects of this Segmentation are refused here';
const ns3 = uniqueName('refuse');
const team3 = uniqueName('team');
const seg3 = uniqueName('seg');
const vap3 = uniqueName('refuse-first');
const vapMessage3 = 'microseg-db is refused in this namespace';
const ns4 = uniqueName('refuse');
const team4 = uniqueName('team');
const seg4 = uniqueName('seg');
const vap4 = uniqueName('refuse-promoted');
const vapMessage4 = 'microseg-db is refused in this namespace too';
const ns5 = uniqueName('refuse');
const team5 = uniqueName('team');
const seg5 = uniqueName('seg');
const vap5 = uniqueName('refuse-aging');
const vapMessage5 = 'microseg-db is refused while an edge ages out';
const ns6 = uniqueName('refuse');
const team6 = uniqueName('team');
const seg6 = uniqueName('seg');
const vap6 = uniqueName('refuse-minflows');
const vapMessage6 = 'microseg-db is refused while minFlows is raised';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let admin: KubeConfig;
let ctrl: RunningController | undefined;
/** Each state of microseg's NetworkPolicies of `ns` in which the default deny was there without db's. */
let denyWithoutDb: ReturnType<typeof watchDenyWithoutDb> | undefined;

const managed = async () =>
  (await listJson<NetworkPolicy>(cluster, npPath))
    .filter((p) => p.metadata.labels?.['microseg.dev/segmentation'] === segName)
    .map((p) => p.metadata.name)
    .sort();

/**
 * Whether the admission policy refuses a (dry-run) creation of microseg-db in `ns` now. Once lifted, the
 * controller may have created microseg-db already: AlreadyExists (409) comes from storage, after
 * admission let the creation through, so it says the policy is lifted too.
 */
const refused = async (): Promise<boolean> => {
  const r = await cluster.request('POST', `${npPath}?dryRun=All`, {
    body: {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'microseg-db', namespace: ns },
      spec: { podSelector: {} },
    },
  });
  if (r.status === 201 || r.status === 409) return false;
  expect(r.text).toContain(vapMessage);
  return true;
};

/**
 * Watches the NetworkPolicies at `path`, keeping each state in which the default deny was there without
 * db's policy (`denied`); abort `watching` to stop.
 */
function watchDenyWithoutDb(path: string): { denied: string[][]; watching: AbortController } {
  const present = new Set<string>();
  const denied: string[][] = [];
  const watching = new AbortController();
  void new KubeClient(admin)
    .watch<NetworkPolicy>(
      path,
      {},
      (ev) => {
        if (ev.type === 'BOOKMARK' || ev.type === 'ERROR') return;
        if (ev.type === 'DELETED') present.delete(ev.object.metadata.name);
        else present.add(ev.object.metadata.name);
        if (present.has('microseg-default-deny') && !present.has('microseg-db'))
          denied.push([...present].sort());
      },
      watching.signal,
    )
    .catch(() => undefined);
  return { denied, watching };
}

/** Makes the apiserver refuse db's ProposedNetworkPolicy and NetworkPolicy in `namespace` (admission). */
async function refuseDb(name: string, namespace: string, message: string): Promise<void> {
  await refuseInAdmission(cluster, name, {
    rules: [
      { apiGroups: ['networking.k8s.io'], apiVersions: ['v1'], resources: ['networkpolicies'] },
      { apiGroups: ['microseg.dev'], apiVersions: ['*'], resources: ['proposednetworkpolicies'] },
    ],
    validations: [{ expression: "object.metadata.name != 'microseg-db'", message }],
    matchResources: inNamespace(namespace),
  });
}

/** Stops the controller running, if any, and starts `identity`, leading, over this file's Segmentations. */
async function leader(
  identity: string,
  controller?: Parameters<typeof startLeader>[1]['controller'],
): Promise<RunningController> {
  await ctrl?.stop();
  ctrl = await startLeader(cluster, {
    segmentationSelector: `microseg.dev/test=${segName}`,
    identity,
    leaseName: 'microseg-controller',
    ...(controller ? { controller } : {}),
  });
  return ctrl;
}

/** Creates (not applies: `kubectl apply` would declare spec.mode) Segmentation `name` with `spec`. */
async function createSegmentation(name: string, spec: Record<string, unknown>): Promise<void> {
  const made = await cluster.request('POST', '/apis/microseg.dev/v1alpha1/segmentations', {
    body: {
      apiVersion: 'microseg.dev/v1alpha1',
      kind: 'Segmentation',
      metadata: { name, labels: { 'microseg.dev/test': segName } },
      spec,
    },
  });
  expect(made.status, made.text).toBe(201);
}

/** Pushes frontend → cart:8080 and cart → db:5432 of `namespace` to the controller, which takes them. */
async function pushShopFlows(namespace: string): Promise<void> {
  expect(
    (
      await ctrl!.push([
        flow(`${namespace}/frontend`, `${namespace}/cart`, 8080, { count: 5 }),
        flow(`${namespace}/cart`, `${namespace}/db`, 5432, { count: 3 }),
      ])
    ).status,
  ).toBe(202);
}

/** A dry-run creation of db's ProposedNetworkPolicy at `path` (the ProposedNetworkPolicies of `namespace`). */
const probeDb = async (path: string, namespace: string) =>
  cluster.request('POST', `${path}?dryRun=All`, {
    body: {
      apiVersion: 'microseg.dev/v1alpha1',
      kind: 'ProposedNetworkPolicy',
      metadata: { name: 'microseg-db', namespace },
      spec: { podSelector: {} },
    },
  });

/** The names of the objects at `path` that Segmentation `seg` manages, sorted. */
const segNames = async (seg: string, path: string) =>
  (await listJson<NetworkPolicy>(cluster, path))
    .filter((p) => p.metadata.labels?.['microseg.dev/segmentation'] === seg)
    .map((p) => p.metadata.name)
    .sort();

/**
 * Lifts the refusal of db's objects (binding `vap`), then waits for Segmentation `seg` to be enforced with
 * its proposal frozen: the four policies written, as ProposedNetworkPolicies (`pnp`) and NetworkPolicies
 * (`np`).
 */
async function liftedThenFrozen(
  vap: string,
  probe: () => Promise<{ status: number }>,
  seg: string,
  np: string,
  pnp: string,
): Promise<void> {
  await liftAdmission(cluster, vap);
  // Admitted again: created, or, when the controller's retry created it first, already there (409).
  await eventually('the admission policy lifted', async () => [201, 409].includes((await probe()).status));
  const after = await waitSeg(
    cluster,
    seg,
    'enforced and frozen',
    (x) => cond(x, 'Enforced')?.status === 'True' && cond(x, 'ProposalStable')?.reason === 'ProposalFrozen',
    30_000,
  );
  expect(after.status).toMatchObject({ policies: 4, enforcedPolicies: 4 });
  expect(cond(after, 'Degraded')?.status).toBe('False');
  const all = ['microseg-cart', 'microseg-db', 'microseg-default-deny', 'microseg-frontend'];
  expect(await segNames(seg, pnp)).toEqual(all);
  expect(await segNames(seg, np)).toEqual(all);
}

beforeAll(async () => {
  await install(cluster);
  admin = await cluster.kubeConfig();
  await createShop(admin, ns, team, '10.79.0');
  // Every state the policies of `ns` go through, in order.
  denyWithoutDb = watchDenyWithoutDb(npPath);
}, 120_000);

afterAll(async () => {
  denyWithoutDb?.watching.abort();
  await ctrl?.stop();
  await cluster.request('DELETE', segPath);
  await cluster.request('DELETE', `/apis/microseg.dev/v1alpha1/segmentations/${seg2}`);
  await cluster.request('DELETE', `/apis/microseg.dev/v1alpha1/segmentations/${seg3}`);
  await cluster.request('DELETE', `/apis/microseg.dev/v1alpha1/segmentations/${seg4}`);
  await cluster.request('DELETE', `/apis/microseg.dev/v1alpha1/segmentations/${seg5}`);
  await cluster.request('DELETE', `/apis/microseg.dev/v1alpha1/segmentations/${seg6}`);
  for (const what of ['validatingadmissionpolicybindings', 'validatingadmissionpolicies'])
    for (const name of [vap2, vap3, vap4, vap5, vap6])
      await cluster.request('DELETE', `/apis/admissionregistration.k8s.io/v1/${what}/${name}`);
  await cluster.request(
    'DELETE',
    `/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings/${vap}`,
  );
  await cluster.request('DELETE', `/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/${vap}`);
});

describe('writes the API server refuses (a ValidatingAdmissionPolicy)', () => {
  it('in Enforce: no default deny without the refused policy, each refusal said, the rest kept, recovered once lifted', async () => {
    // Learn and audit with a quick resync, then hand over to a controller whose resync is far away: what
    // it does after a refusal is its own retry, not the resync.
    ctrl = await leader('refusals-1');
    await applyTeamSegmentation(cluster, segName, team);
    await waitSeg(cluster, segName, 'Learning', (x) => x.status?.phase === 'Learning');
    await ctrl.push([
      flow(`${ns}/frontend`, `${ns}/cart`, 8080, { count: 5 }),
      flow(`${ns}/cart`, `${ns}/db`, 5432, { count: 3 }),
    ]);
    await waitSeg(cluster, segName, 'proposal', (x) => x.status?.edges === 2 && x.status.policies === 4);
    await mergePatch(cluster, segPath, { spec: { mode: 'Audit' } });
    await waitSeg(cluster, segName, 'auditing', (x) => x.status?.phase === 'Auditing');
    await ctrl.stop();
    ctrl = undefined;

    await refuseInAdmission(cluster, vap, {
      rules: [{ apiGroups: ['networking.k8s.io'], apiVersions: ['v1'], resources: ['networkpolicies'] }],
      validations: [{ expression: "object.metadata.name != 'microseg-db'", message: vapMessage }],
      matchResources: inNamespace(ns),
    });
    await eventually('the admission policy in effect', refused);

    ctrl = await leader('refusals-2', { resyncMs: 600_000, persistIntervalMs: 200, identityRefreshMs: 0 });
    // Enforced (forced: the audit of this short test proves nothing) while db's policy is refused.
    await mergePatch(cluster, segPath, { spec: { mode: 'Enforce', enforce: { force: true } } });
    const s = await waitSeg(
      cluster,
      segName,
      'refusal reported',
      (x) => cond(x, 'Enforced')?.reason === 'ApplyFailed' && x.status?.enforcedPolicies === 2,
    );
    expect(cond(s, 'Enforced')?.status).toBe('False');
    expect(cond(s, 'Degraded')).toMatchObject({ status: 'True', reason: 'ApplyFailed' });
    expect(cond(s, 'Degraded')?.message).toContain(`apply NetworkPolicy ${ns}/microseg-db:`);
    expect(cond(s, 'Degraded')?.message).toContain(vapMessage);
    const warned = await eventually('the refusal as a Warning Event', async () =>
      (await events(cluster, segName)).find(
        (e) => e.reason === 'ApplyFailed' && e.message.startsWith(`apply NetworkPolicy ${ns}/microseg-db:`),
      ),
    );
    expect(warned.type).toBe('Warning');
    expect(warned.message).toContain(vapMessage);
    // What was applied stays; the default deny is held back.
    expect(await managed()).toEqual(['microseg-cart', 'microseg-frontend']);

    // Lifted: the controller applies db's policy, then the default deny, without waiting for its resync.
    await liftAdmission(cluster, vap);
    await eventually('the admission policy lifted', async () => !(await refused()));
    const after = await waitSeg(
      cluster,
      segName,
      'enforced again',
      (x) => cond(x, 'Enforced')?.status === 'True',
      30_000,
    );
    expect(after.status?.enforcedPolicies).toBe(4);
    expect(cond(after, 'Degraded')?.status).toBe('False');
    expect(await managed()).toEqual([
      'microseg-cart',
      'microseg-db',
      'microseg-default-deny',
      'microseg-frontend',
    ]);
    const seg = await getSeg(cluster, segName);
    expect(seg.spec?.mode).toBe('Enforce');
    expect(denyWithoutDb!.denied).toEqual([]);
    denyWithoutDb!.watching.abort();
  }, 120_000);

  it('in Learn: a refused ProposedNetworkPolicy keeps the proposal unstable (no promotion), a refused LearnedEdgeSet loses no edge', async () => {
    ctrl = await leader('refusals-3');
    await createShop(admin, ns2, team2, '10.79.1');
    await refuseInAdmission(cluster, vap2, {
      rules: [
        {
          apiGroups: ['microseg.dev'],
          apiVersions: ['*'],
          resources: ['proposednetworkpolicies', 'learnededgesets'],
        },
      ],
      validations: [
        {
          expression: "object.kind == 'LearnedEdgeSet' ? false : object.metadata.name != 'microseg-db'",
          message: vapMessage2,
        },
      ],
      matchResources: { objectSelector: { matchLabels: { 'microseg.dev/segmentation': seg2 } } },
    });
    const probe = async () =>
      cluster.request(
        'POST',
        `/apis/microseg.dev/v1alpha1/namespaces/${ns2}/proposednetworkpolicies?dryRun=All`,
        {
          body: {
            apiVersion: 'microseg.dev/v1alpha1',
            kind: 'ProposedNetworkPolicy',
            metadata: { name: 'microseg-db', namespace: ns2, labels: { 'microseg.dev/segmentation': seg2 } },
            spec: { podSelector: {} },
          },
        },
      );
    await eventually('the admission policy in effect', async () => (await probe()).status !== 201);
    // Created, not applied: `kubectl apply` would declare spec.mode, which is then not promoted.
    await createSegmentation(seg2, {
      namespaceSelector: { matchLabels: { team: team2 } },
      mode: 'Learn',
      learning: { stableAfter: '0s' },
      promotion: { automatic: true, after: '1s' },
    });
    await waitSeg(cluster, seg2, 'Learning', (x) => x.status?.phase === 'Learning');
    await pushShopFlows(ns2);
    const s = await waitSeg(
      cluster,
      seg2,
      'refusals reported',
      (x) =>
        x.status?.edges === 2 &&
        !!cond(x, 'Degraded')?.message.includes(`apply ProposedNetworkPolicy ${ns2}/microseg-db:`) &&
        !!cond(x, 'Degraded')?.message.includes('learned edges:'),
    );
    expect(cond(s, 'Degraded')?.message).toContain(vapMessage2);
    // Only the three written count, and the proposal is not stable while one is missing: promoted, the
    // frozen proposal would hold the default deny without db's policy.
    expect(s.status?.policies).toBe(3);
    expect(cond(s, 'ProposalStable')).toMatchObject({ status: 'False', reason: 'ApplyFailed' });
    expect(cond(s, 'ProposalStable')?.message).toContain(`${ns2}/microseg-db`);
    await sleep(2500); // more than promotion.after
    const still = await getSeg(cluster, seg2);
    expect(still.spec?.mode).toBe('Learn');
    expect(cond(still, 'ProposalStable')?.status).toBe('False');

    // Lifted: all four written, the learned edges persisted, then promoted.
    await liftAdmission(cluster, vap2);
    // Admitted again: created, or, when the controller's retry created it first, already there (409).
    await eventually('the admission policy lifted', async () => [201, 409].includes((await probe()).status));
    const promoted = await waitSeg(cluster, seg2, 'promoted', (x) => x.spec?.mode === 'Audit');
    expect(promoted.status?.policies).toBe(4);
    // The edges are written by the persist timer, which need not have run before the promotion.
    const persisted = async () =>
      (
        await listJson<{ spec: { edges?: unknown[] } }>(
          cluster,
          `/apis/microseg.dev/v1alpha1/learnededgesets?labelSelector=microseg.dev/segmentation=${seg2}`,
        )
      ).flatMap((x) => x.spec.edges ?? []);
    await eventually('the learned edges written', async () =>
      (await persisted()).length >= 2 ? true : undefined,
    );
    expect(await persisted()).toHaveLength(2);
  }, 60_000);

  it('created in Enforce: a refused ProposedNetworkPolicy of the first proposal is written again, not frozen out', async () => {
    ctrl = await leader('refusals-4');
    await createShop(admin, ns3, team3, '10.79.2');
    const np3 = `/apis/networking.k8s.io/v1/namespaces/${ns3}/networkpolicies`;
    const pnp3 = `/apis/microseg.dev/v1alpha1/namespaces/${ns3}/proposednetworkpolicies`;
    // Each state of the NetworkPolicies of ns3 in which the default deny was there without db's.
    const { denied, watching } = watchDenyWithoutDb(np3);
    // db's ProposedNetworkPolicy and NetworkPolicy are both refused in ns3.
    await refuseDb(vap3, ns3, vapMessage3);
    const probe = () => probeDb(pnp3, ns3);
    await eventually('the admission policy in effect', async () => (await probe()).status !== 201);
    await createSegmentation(seg3, {
      namespaceSelector: { matchLabels: { team: team3 } },
      mode: 'Enforce',
      enforce: { force: true },
    });
    await waitSeg(cluster, seg3, 'reconciled', (x) => x.status?.mode === 'Enforce');
    await pushShopFlows(ns3);
    await waitSeg(cluster, seg3, 'the flows learned', (x) => x.status?.edges === 2);
    // Several reconciles later (a resync every 300 ms), the proposal is still the four policies: db's is
    // tried again, not frozen out, and the default deny waits for db's NetworkPolicy.
    await sleep(2500);
    const s = await getSeg(cluster, seg3);
    expect(cond(s, 'ProposalStable')).toMatchObject({ status: 'False', reason: 'ApplyFailed' });
    expect(cond(s, 'ProposalStable')?.message).toContain(`(${ns3}/microseg-db; see Degraded)`);
    expect(cond(s, 'Degraded')).toMatchObject({ status: 'True', reason: 'ApplyFailed' });
    expect(cond(s, 'Degraded')?.message).toContain(`apply ProposedNetworkPolicy ${ns3}/microseg-db:`);
    expect(cond(s, 'Degraded')?.message).toContain(`apply NetworkPolicy ${ns3}/microseg-db:`);
    expect(cond(s, 'Degraded')?.message).toContain(vapMessage3);
    expect(s.status?.policies).toBe(3);
    expect(await segNames(seg3, np3)).toEqual(['microseg-cart', 'microseg-frontend']);

    // Lifted: db's objects are written, then the deny, and the proposal of four is frozen.
    await liftedThenFrozen(vap3, probe, seg3, np3, pnp3);
    expect(denied).toEqual([]);
    watching.abort();
  }, 90_000);
  it('promoted by hand to Enforce while a ProposedNetworkPolicy is refused: written on, no default deny without it', async () => {
    ctrl = await leader('refusals-5');
    await createShop(admin, ns4, team4, '10.79.3');
    const np4 = `/apis/networking.k8s.io/v1/namespaces/${ns4}/networkpolicies`;
    const pnp4 = `/apis/microseg.dev/v1alpha1/namespaces/${ns4}/proposednetworkpolicies`;
    // Each state of the NetworkPolicies of ns4 in which the default deny was there without db's.
    const { denied, watching } = watchDenyWithoutDb(np4);
    // db's ProposedNetworkPolicy and NetworkPolicy are both refused in ns4.
    await refuseDb(vap4, ns4, vapMessage4);
    const probe = () => probeDb(pnp4, ns4);
    await eventually('the admission policy in effect', async () => (await probe()).status !== 201);
    await createSegmentation(seg4, { namespaceSelector: { matchLabels: { team: team4 } }, mode: 'Learn' });
    await waitSeg(cluster, seg4, 'Learning', (x) => x.status?.phase === 'Learning');
    await pushShopFlows(ns4);
    // In Learn, the proposal in place lacks db's policy, and ProposalStable says so.
    await waitSeg(
      cluster,
      seg4,
      'the refusal reported',
      (x) =>
        x.status?.edges === 2 &&
        x.status.policies === 3 &&
        cond(x, 'ProposalStable')?.reason === 'ApplyFailed',
    );
    // Promoted by hand (forced: the audit of this short test proves nothing) while db's is refused.
    await mergePatch(cluster, `/apis/microseg.dev/v1alpha1/segmentations/${seg4}`, {
      spec: { mode: 'Enforce', enforce: { force: true } },
    });
    await waitSeg(cluster, seg4, 'enforcing', (x) => x.status?.mode === 'Enforce');
    // Several reconciles later (a resync every 300 ms), db's ProposedNetworkPolicy is still tried, and
    // the default deny waits for db's NetworkPolicy.
    await sleep(2500);
    const s = await getSeg(cluster, seg4);
    expect(cond(s, 'ProposalStable')).toMatchObject({ status: 'False', reason: 'ApplyFailed' });
    expect(cond(s, 'ProposalStable')?.message).toContain(`(${ns4}/microseg-db; see Degraded)`);
    expect(cond(s, 'Enforced')).toMatchObject({ status: 'False', reason: 'ApplyFailed' });
    expect(cond(s, 'Degraded')).toMatchObject({ status: 'True', reason: 'ApplyFailed' });
    expect(cond(s, 'Degraded')?.message).toContain(`apply ProposedNetworkPolicy ${ns4}/microseg-db:`);
    expect(cond(s, 'Degraded')?.message).toContain(`apply NetworkPolicy ${ns4}/microseg-db:`);
    expect(cond(s, 'Degraded')?.message).toContain(
      `create NetworkPolicy ${ns4}/microseg-default-deny: held back, as a policy of its namespace could not be applied`,
    );
    expect(cond(s, 'Degraded')?.message).toContain(vapMessage4);
    expect(await segNames(seg4, np4)).toEqual(['microseg-cart', 'microseg-frontend']);

    // Lifted: db's objects are written, then the deny, and the proposal of four is frozen.
    await liftedThenFrozen(vap4, probe, seg4, np4, pnp4);
    expect(denied).toEqual([]);
    watching.abort();
  }, 90_000);

  it('enforcing while a ProposedNetworkPolicy is refused: an edge that ages out takes no allow out of what is enforced', async () => {
    await ctrl?.stop();
    let offsetMs = 0;
    ctrl = await startLeader(cluster, {
      segmentationSelector: `microseg.dev/test=${segName}`,
      identity: 'refusals-6',
      leaseName: 'microseg-controller',
      controller: { resyncMs: 300, persistIntervalMs: 200, now: () => Date.now() + offsetMs },
    });
    await createShop(admin, ns5, team5, '10.79.4');
    const np5 = `/apis/networking.k8s.io/v1/namespaces/${ns5}/networkpolicies`;
    const pnp5 = `/apis/microseg.dev/v1alpha1/namespaces/${ns5}/proposednetworkpolicies`;
    /** The ports cart's policy admits frontend on, as `policy` has them. */
    const cartPorts = (policy: NetworkPolicy | undefined) =>
      (policy?.spec?.ingress ?? []).flatMap((r) => (r.ports ?? []).map((p) => p.port)).sort();
    // Each spec of microseg's NetworkPolicy for cart in ns5 that does not admit frontend on 9090.
    const without9090: unknown[] = [];
    const watching = new AbortController();
    void new KubeClient(admin)
      .watch<NetworkPolicy>(
        np5,
        {},
        (ev) => {
          if (ev.type === 'BOOKMARK' || ev.type === 'ERROR') return;
          if (ev.object.metadata.name !== 'microseg-cart') return;
          if (ev.type === 'DELETED' || !cartPorts(ev.object).includes(9090))
            without9090.push({ type: ev.type, spec: ev.object.spec });
        },
        watching.signal,
      )
      .catch(() => undefined);
    // db's ProposedNetworkPolicy and NetworkPolicy are both refused in ns5: the proposal is still written.
    await refuseDb(vap5, ns5, vapMessage5);
    const probe = () => probeDb(pnp5, ns5);
    await eventually('the admission policy in effect', async () => (await probe()).status !== 201);
    const made = await cluster.request('POST', '/apis/microseg.dev/v1alpha1/segmentations', {
      body: {
        apiVersion: 'microseg.dev/v1alpha1',
        kind: 'Segmentation',
        metadata: { name: seg5, labels: { 'microseg.dev/test': segName } },
        spec: {
          namespaceSelector: { matchLabels: { team: team5 } },
          mode: 'Enforce',
          enforce: { force: true },
          learning: { ruleExpiry: '1m' },
          audit: { window: '30s' },
        },
      },
    });
    expect(made.status, made.text).toBe(201);
    await waitSeg(cluster, seg5, 'reconciled', (x) => x.status?.mode === 'Enforce');
    // frontend → cart on 9090 was last seen 50 s ago; the other two just now.
    const now = Date.now();
    expect(
      (
        await ctrl.push([
          flow(`${ns5}/frontend`, `${ns5}/cart`, 8080, { count: 5 }),
          flow(`${ns5}/frontend`, `${ns5}/cart`, 9090, { time: new Date(now - 50_000).toISOString() }),
          flow(`${ns5}/cart`, `${ns5}/db`, 5432, { count: 3 }),
        ])
      ).status,
    ).toBe(202);
    await waitSeg(cluster, seg5, 'enforcing the three edges', (x) => x.status?.edges === 3);
    const cart = async () =>
      (await listJson<NetworkPolicy>(cluster, np5)).find((p) => p.metadata.name === 'microseg-cart');
    await eventually('cart admits frontend on 8080 and 9090', async () =>
      JSON.stringify(cartPorts(await cart())) === '[8080,9090]' ? true : undefined,
    );
    expect(without9090).toEqual([]);

    // 20 s on, the 9090 edge is 70 s old, past the 1m expiry. Several reconciles later (a resync every
    // 300 ms), it is kept while the proposal is still written, and cart's policy still admits it.
    offsetMs = 20_000;
    await sleep(2500);
    expect(cartPorts(await cart())).toEqual([8080, 9090]);
    expect(without9090).toEqual([]);
    const s = await getSeg(cluster, seg5);
    expect(s.status).toMatchObject({ mode: 'Enforce', edges: 3, enforcedPolicies: 2 });
    expect(cond(s, 'ProposalStable')).toMatchObject({ status: 'False', reason: 'ApplyFailed' });
    expect(cond(s, 'Enforced')?.message).toContain(
      '1 learned edge(s) unused for 1m are kept while the proposal is still being written, so that no allow enforced is withdrawn without an audit (they age out once it is written in full)',
    );
    expect((await events(cluster, seg5)).filter((e) => e.reason === 'EdgesAgedOut')).toEqual([]);

    // Lifted: the proposal of four, cart's 9090 rule included, is frozen; the edge then ages out, and
    // the frozen proposal keeps the rule.
    await liftedThenFrozen(vap5, probe, seg5, np5, pnp5);
    await waitSeg(cluster, seg5, 'the edge aged out', (x) => x.status?.edges === 2);
    expect((await events(cluster, seg5)).find((e) => e.reason === 'EdgesAgedOut')?.message).toBe(
      '1 learned edge(s) unused for 1m aged out',
    );
    expect(cartPorts(await cart())).toEqual([8080, 9090]);
    expect(without9090).toEqual([]);
    watching.abort();
  }, 90_000);

  it('enforcing while a ProposedNetworkPolicy is refused: a raised learning.minFlows takes no allow out of what is enforced, through a leader change too', async () => {
    const opts = { resyncMs: 300, persistIntervalMs: 200 };
    ctrl = await leader('refusals-7', opts);
    await createShop(admin, ns6, team6, '10.79.5');
    const np6 = `/apis/networking.k8s.io/v1/namespaces/${ns6}/networkpolicies`;
    const pnp6 = `/apis/microseg.dev/v1alpha1/namespaces/${ns6}/proposednetworkpolicies`;
    const path6 = `/apis/microseg.dev/v1alpha1/segmentations/${seg6}`;
    /** Whether `policy` (microseg's for cart) admits frontend on 8080. */
    const admitsFrontend = (policy: NetworkPolicy) =>
      (policy.spec?.ingress ?? []).some(
        (r) =>
          (r.ports ?? []).some((p) => p.port === 8080) &&
          (r.from ?? []).some((f) => f.podSelector?.matchLabels?.app === 'frontend'),
      );
    // Each state of microseg's NetworkPolicies for frontend and cart in ns6 that took an allow out.
    const withdrawn: unknown[] = [];
    const watching = new AbortController();
    void new KubeClient(admin)
      .watch<NetworkPolicy>(
        np6,
        {},
        (ev) => {
          if (ev.type === 'BOOKMARK' || ev.type === 'ERROR') return;
          const name = ev.object.metadata.name;
          if (name !== 'microseg-cart' && name !== 'microseg-frontend') return;
          if (ev.type === 'DELETED' || (name === 'microseg-cart' && !admitsFrontend(ev.object)))
            withdrawn.push({ type: ev.type, name, spec: ev.object.spec });
        },
        watching.signal,
      )
      .catch(() => undefined);
    // db's ProposedNetworkPolicy and NetworkPolicy are both refused in ns6: the proposal is still written.
    await refuseDb(vap6, ns6, vapMessage6);
    const probe = () => probeDb(pnp6, ns6);
    await eventually('the admission policy in effect', async () => (await probe()).status !== 201);
    await createSegmentation(seg6, {
      namespaceSelector: { matchLabels: { team: team6 } },
      mode: 'Enforce',
      enforce: { force: true },
    });
    await waitSeg(cluster, seg6, 'reconciled', (x) => x.status?.mode === 'Enforce');
    // frontend → cart on 8080 seen once, cart → db three times.
    expect(
      (
        await ctrl.push([
          flow(`${ns6}/frontend`, `${ns6}/cart`, 8080),
          flow(`${ns6}/cart`, `${ns6}/db`, 5432, { count: 3 }),
        ])
      ).status,
    ).toBe(202);
    await waitSeg(
      cluster,
      seg6,
      'enforcing the two edges',
      (x) => x.status?.edges === 2 && x.status.enforcedPolicies === 2,
    );
    expect(await segNames(seg6, np6)).toEqual(['microseg-cart', 'microseg-frontend']);
    const made = await getSeg(cluster, seg6);
    expect(made.status?.proposal?.inputs).toEqual({
      minFlows: 1,
      defaultDeny: true,
      includeDropped: false,
      worldIngress: 'any',
    });

    // minFlows raised to 2: frontend → cart would make no rule, and frontend's and cart's allows would
    // leave what is enforced at once. Several reconciles later they are all in place.
    await mergePatch(cluster, path6, { spec: { learning: { minFlows: 2 } } });
    await sleep(2500);
    expect(withdrawn).toEqual([]);
    expect(await segNames(seg6, np6)).toEqual(['microseg-cart', 'microseg-frontend']);
    await eventually('the change said', async () =>
      (await events(cluster, seg6)).some((e) => e.reason === 'SpecChangeDeferred') ? true : undefined,
    );
    const said = (await events(cluster, seg6)).find((e) => e.reason === 'SpecChangeDeferred');
    expect(said).toMatchObject({ type: 'Warning' });
    expect(said?.message).toMatch(
      /^spec learning\.minFlows \(1 → 2\) changed while the proposal of this enforcing Segmentation is still being written .*: it is written, and enforced, as made with learning\.minFlows 1 \(status\.proposal\.inputs\) until it is in place in full/,
    );
    let s = await getSeg(cluster, seg6);
    expect(s.status).toMatchObject({
      mode: 'Enforce',
      enforcedPolicies: 2,
      proposal: { inputs: { minFlows: 1 } },
    });
    expect(cond(s, 'Enforced')?.message).toContain(
      '; spec learning.minFlows (1 → 2) waits until the proposal is written in full (status.proposal.inputs)',
    );

    // Another leader takes over: it reads the minFlows the proposal was made from in status.
    ctrl = await leader('refusals-8', opts);
    // It says the change waits too (its own Event, once).
    await eventually('the new leader reconciled', async () =>
      (await events(cluster, seg6)).filter((e) => e.reason === 'SpecChangeDeferred').length === 2
        ? true
        : undefined,
    );
    await sleep(2500);
    expect(withdrawn).toEqual([]);
    s = await getSeg(cluster, seg6);
    expect(s.status).toMatchObject({ enforcedPolicies: 2, proposal: { inputs: { minFlows: 1 } } });

    // Lifted: the proposal made with minFlows 1, its four policies, is frozen; frozen, it keeps them.
    await liftedThenFrozen(vap6, probe, seg6, np6, pnp6);
    await sleep(1500);
    expect(withdrawn).toEqual([]);
    s = await getSeg(cluster, seg6);
    expect(s.status).toMatchObject({ enforcedPolicies: 4, proposal: { inputs: { minFlows: 1 } } });
    expect(cond(s, 'Enforced')?.message).not.toContain('waits until');
    watching.abort();
  }, 120_000);
});
