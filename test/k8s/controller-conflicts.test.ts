/**
 * What a Segmentation cannot take, said plainly: a foreign ProposedNetworkPolicy holding a proposed name,
 * its own proposal whose labels were edited by hand (taken back when its owner reference names it), a
 * selector that covers no namespace or has a bad label key, and an older Segmentation that is itself
 * Invalid (it blocks no newer one).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNamespace, eventually, sharedCluster, uniqueName } from '../cluster/index.ts';
import type { ProposedNetworkPolicy } from '../../src/controller/api.ts';
import type { RunningController } from '../controller/k8s-helpers.ts';
import {
  applyYaml,
  cond,
  createAppPods,
  events,
  flow,
  getSeg,
  install,
  listJson,
  startLeader,
  waitSeg,
  mergePatch,
} from '../controller/k8s-helpers.ts';

const cluster = sharedCluster();
const ns = uniqueName('confl');
const segName = uniqueName('confl');
const label = uniqueName('confl');
const pnpPath = `/apis/microseg.dev/v1alpha1/namespaces/${ns}/proposednetworkpolicies`;
const segPath = (n: string) => `/apis/microseg.dev/v1alpha1/segmentations/${n}`;
const created: string[] = [];
let ctrl: RunningController;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const mkSeg = async (name: string, spec: Record<string, unknown>) => {
  created.push(name);
  await applyYaml(cluster, {
    apiVersion: 'microseg.dev/v1alpha1',
    kind: 'Segmentation',
    metadata: { name, labels: { 'microseg.dev/test': label } },
    spec,
  });
};
const byName = (n: string) => ({
  matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: [n] }],
});

beforeAll(async () => {
  await install(cluster);
  const admin = await cluster.kubeConfig();
  await createNamespace(admin, ns, { confl: label });
  await createAppPods(admin, ns, [
    ['frontend', '10.77.0.1'],
    ['cart', '10.77.0.2'],
  ]);
  ctrl = await startLeader(cluster, {
    segmentationSelector: `microseg.dev/test=${label}`,
    identity: 'conflicts-test',
    asAdmin: true,
    leaseName: `lease-${label}`,
  });
}, 120_000);

afterAll(async () => {
  await ctrl?.stop();
  for (const n of created) await cluster.request('DELETE', segPath(n));
});

describe('conflicts and coverage', () => {
  it('a foreign ProposedNetworkPolicy holding a proposed name: warned, left untouched, not counted', async () => {
    await applyYaml(cluster, {
      apiVersion: 'microseg.dev/v1alpha1',
      kind: 'ProposedNetworkPolicy',
      metadata: { name: 'microseg-cart', namespace: ns },
      spec: { podSelector: {} },
    });
    await mkSeg(segName, { namespaceSelector: byName(ns) });
    await waitSeg(cluster, segName, 'Learning', (s) => s.status?.phase === 'Learning');
    await ctrl.push([flow(`${ns}/frontend`, `${ns}/cart`, 8080)]);
    const message = `ProposedNetworkPolicy ${ns}/microseg-cart exists and is not managed by this Segmentation (an object microseg does not manage); left untouched`;
    const s = await waitSeg(
      cluster,
      segName,
      'conflict',
      (x) => cond(x, 'ProposalStable')?.reason === 'PolicyNameConflict',
    );
    expect(cond(s, 'ProposalStable')).toMatchObject({ status: 'False', message });
    // Only what was written is counted: the default deny and frontend's policy.
    expect(s.status?.policies).toBe(2);
    const pnps = await listJson<ProposedNetworkPolicy>(cluster, pnpPath);
    expect(pnps.map((p) => p.metadata.name).sort()).toEqual([
      'microseg-cart',
      'microseg-default-deny',
      'microseg-frontend',
    ]);
    const foreign = pnps.find((p) => p.metadata.name === 'microseg-cart')!;
    expect(foreign.metadata.labels).toBeUndefined();
    expect(foreign.spec).toEqual({ podSelector: {} });
    expect(foreign.status).toBeUndefined();
    const evs = await events(cluster, segName);
    expect(evs.filter((e) => e.reason === 'PolicyNameConflict').map((e) => [e.type, e.message])).toEqual(
      expect.arrayContaining([
        ['Warning', message],
        ['Warning', `ProposalStable=False: ${message}`],
      ]),
    );
    // Removing the foreign object lets the proposal take the name.
    await cluster.request('DELETE', `${pnpPath}/microseg-cart`);
    const after = await waitSeg(cluster, segName, 'policies 3', (x) => x.status?.policies === 3);
    expect(cond(after, 'ProposalStable')?.reason).toBe('ProposalChanged');
    const cart = await eventually('microseg-cart written', async () =>
      (await listJson<ProposedNetworkPolicy>(cluster, pnpPath)).find(
        (p) => p.metadata.name === 'microseg-cart' && p.metadata.labels?.['microseg.dev/segmentation'],
      ),
    );
    expect(cart.status?.rules).toBeGreaterThan(0);
  });

  it('its own proposal with an edited label is taken back; without its owner reference, the message says what is wrong', async () => {
    const patch = (name: string, metadata: Record<string, unknown>) =>
      mergePatch(cluster, `${pnpPath}/${name}`, { metadata });
    await patch('microseg-frontend', { labels: { 'app.kubernetes.io/managed-by': null } });
    await eventually('label restored', async () => {
      const p = (await listJson<ProposedNetworkPolicy>(cluster, pnpPath)).find(
        (x) => x.metadata.name === 'microseg-frontend',
      );
      return p?.metadata.labels?.['app.kubernetes.io/managed-by'] === 'microseg';
    });
    await patch('microseg-default-deny', {
      labels: { 'app.kubernetes.io/managed-by': null },
      ownerReferences: null,
    });
    const s = await waitSeg(
      cluster,
      segName,
      'conflict',
      (x) => cond(x, 'ProposalStable')?.reason === 'PolicyNameConflict',
    );
    expect(cond(s, 'ProposalStable')?.message).toBe(
      `ProposedNetworkPolicy ${ns}/microseg-default-deny exists and is not managed by this Segmentation (its label app.kubernetes.io/managed-by: microseg was removed; its label microseg.dev/segmentation still names this Segmentation); left untouched`,
    );
    expect(s.status?.policies).toBe(2);
  });

  it('a selector that covers no namespace is valid, said plainly, and warned of once', async () => {
    const empty = `${segName}-none`;
    await mkSeg(empty, { namespaceSelector: { matchLabels: { nothing: label } } });
    const s = await waitSeg(cluster, empty, 'valid', (x) => cond(x, 'Valid')?.status === 'True');
    expect(cond(s, 'Valid')).toMatchObject({
      reason: 'SpecValid',
      message:
        'covers no namespace: spec.namespaceSelector matches none, so nothing is learned, proposed or enforced until a namespace matches',
    });
    await sleep(1500); // several resyncs (300 ms)
    const warned = (await events(cluster, empty)).filter((e) => e.reason === 'NoNamespaces');
    expect(warned.map((e) => [e.type, e.count, e.message])).toEqual([
      [
        'Warning',
        1,
        'covers no namespace: spec.namespaceSelector matches none, so nothing is learned, proposed or enforced until a namespace matches',
      ],
    ]);
  });

  it('announces each condition of a new Segmentation once (its own writes are not taken for news)', async () => {
    // The first reconcile adds the finalizer, which wakes the next reconcile before the status it
    // writes reaches the cache: compared with the stale status, every transition was announced twice
    // (2 of 5 Segmentations in a scratch run).
    const admin = await cluster.kubeConfig();
    const names = [0, 1, 2, 3, 4, 5].map((i) => `${segName}-once${i}`);
    for (const n of names) {
      const space = uniqueName('once');
      await createNamespace(admin, space, {});
      await mkSeg(n, { namespaceSelector: byName(space) });
    }
    for (const n of names) await waitSeg(cluster, n, 'valid', (x) => cond(x, 'Valid')?.status === 'True');
    await sleep(1500); // several resyncs (300 ms)
    for (const n of names) {
      const told = (await events(cluster, n)).map((e) => [e.reason, e.count]).sort();
      expect({ n, told }).toEqual({
        n,
        told: [
          ['LearningFlows', 1],
          ['NotEnforcing', 1],
          ['SpecValid', 1],
        ],
      });
    }
  });

  it('in Audit, an object holding a name only the live analysis proposes is no conflict of the frozen proposal', async () => {
    const admin = await cluster.kubeConfig();
    const space = uniqueName('frozen');
    await createNamespace(admin, space, {});
    await createAppPods(admin, space, [
      ['web', '10.77.1.1'],
      ['db', '10.77.1.2'],
      ['extra', '10.77.1.3'],
    ]);
    const n = `${segName}-frozen`;
    await mkSeg(n, { namespaceSelector: byName(space) });
    await waitSeg(cluster, n, 'Learning', (x) => x.status?.phase === 'Learning');
    await ctrl.push([flow(`${space}/web`, `${space}/db`, 5432)]);
    await waitSeg(cluster, n, 'proposal', (x) => x.status?.policies === 3);
    await mergePatch(cluster, segPath(n), { spec: { mode: 'Audit' } });
    await waitSeg(cluster, n, 'frozen', (x) => cond(x, 'ProposalStable')?.reason === 'ProposalFrozen');
    // Not managed by microseg, and named as the live analysis will name extra's policy.
    await applyYaml(cluster, {
      apiVersion: 'microseg.dev/v1alpha1',
      kind: 'ProposedNetworkPolicy',
      metadata: { name: 'microseg-extra', namespace: space },
      spec: { podSelector: {} },
    });
    await ctrl.push([flow(`${space}/extra`, `${space}/db`, 5432)]);
    await waitSeg(
      cluster,
      n,
      'learned',
      (x) => cond(x, 'Learning')?.message.startsWith('2 edge(s)') === true,
    );
    await sleep(1000); // several resyncs (300 ms)
    const s = await getSeg(cluster, n);
    expect(cond(s, 'ProposalStable')).toMatchObject({
      status: 'True',
      reason: 'ProposalFrozen',
      message: 'the proposal of 3 policies is frozen',
    });
    expect((await events(cluster, n)).filter((e) => e.reason === 'PolicyNameConflict')).toEqual([]);
  });

  it('a selector with a label key Kubernetes would not take is refused by the API server, naming the key', async () => {
    // The CRD schema refuses it at apply time; the controller's own check of the key (InvalidSpec, for an
    // object stored before the schema had the rule) is tested in test/controller/spec.test.ts.
    const bad = `${segName}-badkey`;
    const r = await cluster.kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'microseg.dev/v1alpha1',
        kind: 'Segmentation',
        metadata: { name: bad, labels: { 'microseg.dev/test': label } },
        spec: { namespaceSelector: { matchLabels: { 'bad key!': 'x' } } },
      }),
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(
      `spec.namespaceSelector.matchLabels: Invalid value: key "bad key!" must be a label key`,
    );
    expect((await cluster.request('GET', segPath(bad))).status).toBe(404);
  });

  it('an older Segmentation that is itself Invalid blocks no newer one', async () => {
    const admin = await cluster.kubeConfig();
    const pay = uniqueName('pay');
    const ship = uniqueName('ship');
    await createNamespace(admin, pay, {});
    await createNamespace(admin, ship, {});
    const [a, b, c] = ['a', 'b', 'c'].map((x) => `${segName}-${x}`) as [string, string, string];
    await mkSeg(a, { namespaceSelector: byName(pay) });
    await sleep(1100); // creation timestamps have a resolution of one second
    await mkSeg(b, {
      namespaceSelector: {
        matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: [pay, ship] }],
      },
    });
    await sleep(1100);
    await mkSeg(c, { namespaceSelector: byName(ship) });
    const sb = await waitSeg(cluster, b, 'b invalid', (x) => cond(x, 'Valid')?.status === 'False');
    expect(cond(sb, 'Valid')).toMatchObject({
      reason: 'NamespaceConflict',
      message: `namespace ${pay} is already covered by Segmentation ${a}`,
    });
    const sc = await waitSeg(cluster, c, 'c valid', (x) => cond(x, 'Valid')?.status === 'True');
    expect(sc.status?.namespaces).toEqual([ship]);
    expect((await getSeg(cluster, a)).status?.namespaces).toEqual([pay]);
  });
});
