/**
 * The ends the controller learns and audits a flow at: a flow to the kubernetes Service's ClusterIP is
 * audited at every endpoint address of the API server of the ClusterIP's family; an end given by
 * workload or labels alone at a pod of each workload it stands for; an end the audit cannot place is
 * told apart from one it admits.
 */
import { describe, expect, it } from 'vitest';
import type { AuditResult, PodLabels } from '../../src/controller/ends.ts';
import { auditFlow, audited as auditsPair, flowEnds, unplacedEnd } from '../../src/controller/ends.ts';
import type { Flow, FlowEndpoint } from '../../src/flows/types.ts';
import type { Identity } from '../../src/identity/index.ts';
import { buildIdentity } from '../../src/identity/index.ts';
import type { ClusterSnapshot } from '../../src/model/snapshot.ts';
import { snapshotFromObjects } from '../../src/model/snapshot.ts';
import { runPipeline } from '../../src/pipeline.ts';
import type { Engine } from '../../src/verify/engine.ts';
import { engineFromSnapshot } from '../../src/verify/engine.ts';
import { fixtureFlows, fixtureSnapshot, fixtureWithAPIServerAt } from '../core/fixture.ts';

const CART = { ip: '10.244.1.20', namespace: 'shop', pod: 'cart-7d9f-bbbbb' };

/** cart's connection to `ip` on `port`. */
function fromCart(ip: string, port = 443): Flow {
  return { ...fixtureFlows()[0]!, src: CART, dst: { ip }, port };
}

/** The ends of a flow's destination, as the controller's ingest makes them. */
function destinations(id: Identity, f: Flow) {
  return flowEnds(id, id.resolveNumber(f.dst, f.time, f.port), f, true).map((e) => ({
    peer: e.peer.id,
    port: e.port,
    at: e.at,
  }));
}

/** What the audit finds of `f`, at each backend it reaches (as the controller audits it). */
function audited(id: Identity, engine: Engine, f: Flow): AuditResult[] {
  return flowEnds(id, id.resolveNumber(f.dst, f.time, f.port), f, true).map((e) =>
    auditFlow(engine, { ...f, port: e.port }, undefined, e.at),
  );
}

/**
 * What the audit finds of `f` as the controller's ingest audits it: for each peer its source stands for
 * and each its destination does, `[source, destination, result]`; `live` as the controller's pod cache.
 */
function auditedEach(
  id: Identity,
  engine: Engine,
  f: Flow,
  live?: PodLabels,
): [string, string, AuditResult][] {
  const s = id.resolveNumber(f.src, f.time, undefined, f.timeless);
  const d = id.resolveNumber(f.dst, f.time, f.port, f.timeless);
  return flowEnds(id, s, f, false).flatMap((src) =>
    flowEnds(id, d, f, true).map((dst): [string, string, AuditResult] => [
      src.peer.id,
      dst.peer.id,
      auditFlow(engine, { ...f, port: dst.port }, src.at, dst.at, live),
    ]),
  );
}

/**
 * The engine of an audit in the controller: the proposal learned from `learnedFrom` (cart's watch of
 * the API server through its IPv4 ClusterIP), frozen, on the cluster as it is now (`now`).
 */
async function frozenAudit(learnedFrom: ClusterSnapshot, now: ClusterSnapshot) {
  const learned = await runPipeline(learnedFrom, [...fixtureFlows(), fromCart('10.96.0.1')]);
  const engine = engineFromSnapshot({ ...now, networkPolicies: learned.proposal.policies });
  return { identity: buildIdentity(now), engine };
}

describe('the ends of a flow in the controller', () => {
  const dual = fixtureWithAPIServerAt(['172.18.0.2', '172.18.0.3', 'fd00:18::2', 'fd00:18::3']);

  it('audits a flow to a ClusterIP of the kubernetes Service at each endpoint address of its family', () => {
    const id = buildIdentity(dual);
    expect(destinations(id, fromCart('fd00:10:96::1'))).toEqual([
      { peer: 'kube-apiserver', port: 6443, at: [{ ip: 'fd00:18::2' }, { ip: 'fd00:18::3' }] },
    ]);
    expect(destinations(id, fromCart('10.96.0.1'))).toEqual([
      { peer: 'kube-apiserver', port: 6443, at: [{ ip: '172.18.0.2' }, { ip: '172.18.0.3' }] },
    ]);
  });

  it('audits other backends at a pod, and a flow to no Service at its own end', () => {
    const id = buildIdentity(dual);
    expect(destinations(id, fromCart('10.96.5.6', 8080))).toEqual([
      { peer: 'shop/Deployment/cart', port: 8080, at: [{ namespace: 'shop', pods: ['cart-7d9f-bbbbb'] }] },
    ]);
    const direct = {
      ...fromCart('fd00:18::3', 6443),
      dst: { ip: 'fd00:18::3', reserved: 'kube-apiserver' as const },
    };
    expect(destinations(id, direct)).toEqual([{ peer: 'kube-apiserver', port: 6443, at: undefined }]);
  });

  it('finds an IPv6 flow blocked by a proposal frozen before the API server had an IPv6 address', async () => {
    const { identity, engine } = await frozenAudit(
      fixtureWithAPIServerAt(['172.18.0.2']),
      fixtureWithAPIServerAt(['172.18.0.2', 'fd00:18::2']),
    );
    expect(audited(identity, engine, fromCart('10.96.0.1'))).toEqual(['admitted']);
    expect(audited(identity, engine, fromCart('fd00:10:96::1'))).toEqual(['blocked']);
  });

  it('audits a flow to the API server given with no address at each of its endpoint addresses', async () => {
    const { identity, engine } = await frozenAudit(
      fixtureWithAPIServerAt(['172.18.0.2']),
      fixtureWithAPIServerAt(['172.18.0.2', 'fd00:18::2']),
    );
    const f = { ...fromCart('', 6443), dst: { reserved: 'kube-apiserver' as const, names: ['kubernetes'] } };
    expect(destinations(identity, f)).toEqual([
      { peer: 'kube-apiserver', port: 6443, at: [{ ip: '172.18.0.2' }, { ip: 'fd00:18::2' }] },
    ]);
    // Admitted at its IPv4 address, not at the IPv6 one the proposal predates.
    expect(audited(identity, engine, f)).toEqual(['blocked']);
  });

  it('finds a flow blocked when one endpoint of its family is not in the frozen proposal', async () => {
    const { identity, engine } = await frozenAudit(
      fixtureWithAPIServerAt(['172.18.0.2']),
      fixtureWithAPIServerAt(['172.18.0.2', '172.18.0.3']),
    );
    expect(audited(identity, engine, fromCart('10.96.0.1'))).toEqual(['blocked']);
    // Audited against a proposal of the same endpoints, it is admitted.
    const same = await frozenAudit(
      fixtureWithAPIServerAt(['172.18.0.2', '172.18.0.3']),
      fixtureWithAPIServerAt(['172.18.0.2', '172.18.0.3']),
    );
    expect(audited(same.identity, same.engine, fromCart('10.96.0.1'))).toEqual(['admitted']);
  });
});

/**
 * The audit of the demo shop's proposal (learned from the fixture's flows: cart reaches db on 5432,
 * frontend reaches cart on 8080, never db), frozen, on the cluster `now` (the fixture by default).
 */
async function shopAudit(now = fixtureSnapshot()) {
  const learned = await runPipeline(fixtureSnapshot(), fixtureFlows());
  const policies = learned.proposal.policies;
  const engine = engineFromSnapshot({ ...fixtureSnapshot(), networkPolicies: policies });
  return { identity: buildIdentity(now), engine, policies };
}

/** A flow from `src` to `dst` on TCP `port`, at the time of the fixture's flows. */
function between(src: FlowEndpoint, dst: FlowEndpoint, port: number): Flow {
  return { ...fixtureFlows()[0]!, src, dst, port, protocol: 'TCP' };
}

const FRONTEND_POD = { ip: '10.244.1.10', namespace: 'shop', pod: 'frontend-7d9f-aaaaa' };
const DB_POD = { ip: '10.244.1.30', namespace: 'shop', pod: 'db-0' };
const workload = (kind: string, name: string, namespace = 'shop'): FlowEndpoint => ({
  namespace,
  workload: { kind, name },
});
const FRONTEND_W = workload('Deployment', 'frontend');
const CART_W = workload('Deployment', 'cart');
const DB_W = workload('StatefulSet', 'db');

describe('the audit of flow ends with no pod or address', () => {
  it('checks a source given by namespace and workload at one of its pods', async () => {
    const { identity, engine } = await shopAudit();
    const f = between(FRONTEND_W, DB_POD, 5432);
    const s = identity.resolveNumber(f.src, f.time);
    expect(flowEnds(identity, s, f, false)).toEqual([
      {
        peer: expect.objectContaining({ id: 'shop/Deployment/frontend' }),
        port: 5432,
        at: [{ namespace: 'shop', pods: ['frontend-7d9f-aaaaa'] }],
      },
    ]);
    expect(auditedEach(identity, engine, f)).toEqual([
      ['shop/Deployment/frontend', 'shop/StatefulSet/db', 'blocked'],
    ]);
    expect(auditedEach(identity, engine, between(CART_W, DB_POD, 5432))).toEqual([
      ['shop/Deployment/cart', 'shop/StatefulSet/db', 'admitted'],
    ]);
  });

  it('checks a destination given by namespace and workload at one of its pods', async () => {
    const { identity, engine } = await shopAudit();
    expect(auditedEach(identity, engine, between(FRONTEND_POD, DB_W, 5432))).toEqual([
      ['shop/Deployment/frontend', 'shop/StatefulSet/db', 'blocked'],
    ]);
    expect(auditedEach(identity, engine, between(CART, DB_W, 5432))).toEqual([
      ['shop/Deployment/cart', 'shop/StatefulSet/db', 'admitted'],
    ]);
    // Both ends by workload alone.
    expect(auditedEach(identity, engine, between(FRONTEND_W, DB_W, 5432))).toEqual([
      ['shop/Deployment/frontend', 'shop/StatefulSet/db', 'blocked'],
    ]);
    expect(auditedEach(identity, engine, between(CART_W, DB_W, 5432))).toEqual([
      ['shop/Deployment/cart', 'shop/StatefulSet/db', 'admitted'],
    ]);
  });

  it('checks an end given by labels at a pod of the workload they select, and of each of several', async () => {
    const { identity, engine } = await shopAudit();
    const dbByLabels = { namespace: 'shop', labels: ['app=db'] };
    expect(auditedEach(identity, engine, between(FRONTEND_POD, dbByLabels, 5432))).toEqual([
      ['shop/Deployment/frontend', 'shop/StatefulSet/db', 'blocked'],
    ]);
    expect(
      auditedEach(identity, engine, between({ namespace: 'shop', labels: ['app=cart'] }, dbByLabels, 5432)),
    ).toEqual([['shop/Deployment/cart', 'shop/StatefulSet/db', 'admitted']]);
    // A selector of cart's and db's pods: the connection may have been to either, and is checked at each.
    const cartOrDb: FlowEndpoint = {
      namespace: 'shop',
      selector: {
        podSelector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['cart', 'db'] }] },
      },
    };
    expect(auditedEach(identity, engine, between(FRONTEND_POD, cartOrDb, 8080))).toEqual([
      ['shop/Deployment/frontend', 'shop/Deployment/cart', 'admitted'],
      ['shop/Deployment/frontend', 'shop/StatefulSet/db', 'blocked'],
    ]);
    // As a source, from each: a selector of frontend's and cart's pods to db.
    const frontendOrCart: FlowEndpoint = {
      namespace: 'shop',
      selector: {
        podSelector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['frontend', 'cart'] }] },
      },
    };
    expect(auditedEach(identity, engine, between(frontendOrCart, DB_POD, 5432))).toEqual([
      ['shop/Deployment/cart', 'shop/StatefulSet/db', 'admitted'],
      ['shop/Deployment/frontend', 'shop/StatefulSet/db', 'blocked'],
    ]);
  });

  it('passes over a pod of the workload the audit does not know, and finds an end it cannot place unauditable', async () => {
    // The identity still remembers a deleted frontend pod (its name sorts first); the audit's view of
    // the cluster no longer has it.
    const now = fixtureSnapshot();
    const live = now.pods.find((p) => p.metadata.name === 'frontend-7d9f-aaaaa')!;
    now.pods.push({
      ...live,
      metadata: { ...live.metadata, name: 'frontend-7d9f-00000' },
      status: { ...live.status, podIP: '10.244.1.11', podIPs: [{ ip: '10.244.1.11' }] },
    });
    const { identity, engine, policies } = await shopAudit(now);
    expect(identity.workloads.get('shop/Deployment/frontend')?.pods).toEqual([
      'frontend-7d9f-00000',
      'frontend-7d9f-aaaaa',
    ]);
    expect(auditedEach(identity, engine, between(FRONTEND_W, DB_POD, 5432))).toEqual([
      ['shop/Deployment/frontend', 'shop/StatefulSet/db', 'blocked'],
    ]);
    // A workload the snapshot lacks (reconstructed from the flow, no pod), labels no pod carries: the
    // engine cannot place them, and the audit says so rather than admitting the flow.
    const ghost = workload('Deployment', 'ghost');
    expect(auditedEach(identity, engine, between(ghost, DB_POD, 5432))).toEqual([
      ['shop/Deployment/ghost', 'shop/StatefulSet/db', 'unauditable'],
    ]);
    expect(auditedEach(identity, engine, between(FRONTEND_POD, ghost, 8080))).toEqual([
      ['shop/Deployment/frontend', 'shop/Deployment/ghost', 'unauditable'],
    ]);
    const nobody = { namespace: 'shop', labels: ['app=nobody'] };
    expect(auditedEach(identity, engine, between(FRONTEND_POD, nobody, 8080))).toEqual([
      ['shop/Deployment/frontend', 'unknown', 'unauditable'],
    ]);
    // Nor a workload whose only pod the audit's view no longer has (db-0, deleted since).
    const withoutDb = fixtureSnapshot();
    withoutDb.pods = withoutDb.pods.filter((p) => p.metadata.name !== 'db-0');
    const noDb = engineFromSnapshot({ ...withoutDb, networkPolicies: policies });
    expect(auditedEach(identity, noDb, between(FRONTEND_POD, DB_W, 5432))).toEqual([
      ['shop/Deployment/frontend', 'shop/StatefulSet/db', 'unauditable'],
    ]);
    // An end with its own pod or address is checked there, as before.
    expect(auditedEach(identity, engine, between(FRONTEND_POD, DB_POD, 5432))).toEqual([
      ['shop/Deployment/frontend', 'shop/StatefulSet/db', 'blocked'],
    ]);
  });

  it('names the end it cannot place, and why', async () => {
    const { identity, engine, policies } = await shopAudit();
    /** The end of `f` (its first pair of peers) the audit cannot place, as the controller finds it. */
    const unplaced = (f: Flow, e: Engine = engine) => {
      const s = flowEnds(identity, identity.resolveNumber(f.src, f.time), f, false)[0]!;
      const d = flowEnds(identity, identity.resolveNumber(f.dst, f.time, f.port), f, true)[0]!;
      return unplacedEnd(e, { ...f, port: d.port }, s.at, d.at);
    };
    const ghost = workload('Deployment', 'ghost');
    expect(unplaced(between(FRONTEND_POD, ghost, 8080))).toEqual({
      end: 'destination',
      why: "has no pod in the audit's view",
    });
    expect(unplaced(between(ghost, DB_POD, 5432))).toEqual({
      end: 'source',
      why: "has no pod in the audit's view",
    });
    expect(unplaced(between(FRONTEND_POD, { namespace: 'shop', labels: ['app=nobody'] }, 8080))).toEqual({
      end: 'destination',
      why: 'has neither a pod nor an address',
    });
    // A bare pod the view does not have, given without an address.
    expect(unplaced(between({ namespace: 'shop', pod: 'debug' }, DB_POD, 5432))).toEqual({
      end: 'source',
      why: "is pod shop/debug, not in the audit's view, and has no address",
    });
    // cart's pod went since the view was built, and identity found frontend's pod at cart's address.
    const moved = fixtureSnapshot();
    moved.pods = moved.pods.filter((p) => p.metadata.name !== CART.pod);
    const frontend = moved.pods.find((p) => p.metadata.name === 'frontend-7d9f-aaaaa')!;
    frontend.status = { ...frontend.status, podIP: CART.ip, podIPs: [{ ip: CART.ip }] };
    const after = buildIdentity(moved);
    const f = between({ ip: CART.ip }, DB_POD, 5432);
    const s = flowEnds(after, after.resolveNumber(f.src, f.time), f, false)[0]!;
    const noFrontend = engineFromSnapshot({
      ...fixtureSnapshot(),
      pods: fixtureSnapshot().pods.filter((p) => p.metadata.name !== 'frontend-7d9f-aaaaa'),
      networkPolicies: policies,
    });
    expect(unplacedEnd(noFrontend, f, s.at)).toEqual({
      end: 'source',
      why: `is at ${CART.ip}, another workload's pod in the audit's view`,
    });
    // Both ends placed: nothing to name.
    expect(unplaced(between(FRONTEND_POD, DB_POD, 5432))).toBeUndefined();
  });

  it('checks a pod newer than the audit at another pod of its workload, not at its address', async () => {
    // A cart pod created since the audit's view was built: identity has it, the engine does not.
    const now = fixtureSnapshot();
    const cart = now.pods.find((p) => p.metadata.name === CART.pod)!;
    now.pods.push({
      ...cart,
      metadata: { ...cart.metadata, name: 'cart-7d9f-zzzzz' },
      status: { ...cart.status, podIP: '10.244.1.99', podIPs: [{ ip: '10.244.1.99' }] },
    });
    const { identity, engine } = await shopAudit(now);
    const newCart = { ip: '10.244.1.99', namespace: 'shop', pod: 'cart-7d9f-zzzzz' };
    // cart reaches db in the proposal: admitted (at its address, no pod's to the engine, it was not).
    expect(auditedEach(identity, engine, between(newCart, DB_POD, 5432))).toEqual([
      ['shop/Deployment/cart', 'shop/StatefulSet/db', 'admitted'],
    ]);
    expect(auditedEach(identity, engine, between(FRONTEND_POD, newCart, 8080))).toEqual([
      ['shop/Deployment/frontend', 'shop/Deployment/cart', 'admitted'],
    ]);
    // and what the proposal does not admit from cart stays blocked.
    expect(auditedEach(identity, engine, between(newCart, FRONTEND_POD, 8080))).toEqual([
      ['shop/Deployment/cart', 'shop/Deployment/frontend', 'blocked'],
    ]);
    // Given by its address alone, which the view gives no pod, it is cart's all the same.
    expect(auditedEach(identity, engine, between({ ip: '10.244.1.99' }, DB_POD, 5432))).toEqual([
      ['shop/Deployment/cart', 'shop/StatefulSet/db', 'admitted'],
    ]);
  });

  it("checks a host-network workload at each of its pods' nodes, never one for another", async () => {
    // A host-network DaemonSet, now on two nodes.
    const snap = withObjects(
      daemonSet,
      hostPod('agent-a', '192.168.0.11'),
      hostPod('agent-b', '192.168.0.12'),
    );
    // The proposal was learned before node-3 joined: its rule admits node-2's address only.
    const learned = await runPipeline(withObjects(daemonSet, hostPod('agent-a', '192.168.0.11')), [
      ...fixtureFlows(),
      between({ ip: '192.168.0.11', namespace: 'kube-system', pod: 'agent-a' }, CART, 8080),
    ]);
    const engine = engineFromSnapshot({ ...snap, networkPolicies: learned.proposal.policies });
    const identity = buildIdentity(snap);
    const agent = 'kube-system/DaemonSet/agent';
    // Its pod on node-2 is admitted, the one on node-3 is not: given by workload alone, the flow may
    // have come from either.
    expect(
      auditedEach(
        identity,
        engine,
        between({ ip: '192.168.0.11', namespace: 'kube-system', pod: 'agent-a' }, CART, 8080),
      ),
    ).toEqual([[agent, 'shop/Deployment/cart', 'admitted']]);
    expect(
      auditedEach(
        identity,
        engine,
        between({ ip: '192.168.0.12', namespace: 'kube-system', pod: 'agent-b' }, CART, 8080),
      ),
    ).toEqual([[agent, 'shop/Deployment/cart', 'blocked']]);
    expect(
      auditedEach(identity, engine, between(workload('DaemonSet', 'agent', 'kube-system'), CART, 8080)),
    ).toEqual([[agent, 'shop/Deployment/cart', 'blocked']]);
  });
});

describe('the audit checks a host-network workload at the addresses its rules name', () => {
  it("leaves its node's ExternalIP out, as the proposal does, and admits what the proposal admits", async () => {
    const node = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: 'agent-a' },
      status: {
        addresses: [
          { type: 'InternalIP', address: '192.168.0.11' },
          { type: 'ExternalIP', address: '203.0.113.11' },
          { type: 'Hostname', address: 'agent-a' },
        ],
      },
    };
    const snap = withObjects(daemonSet, hostPod('agent-a', '192.168.0.11'), node);
    const learned = await runPipeline(snap, [
      ...fixtureFlows(),
      between({ ip: '192.168.0.11', namespace: 'kube-system', pod: 'agent-a' }, CART, 8080),
    ]);
    const engine = engineFromSnapshot({ ...snap, networkPolicies: learned.proposal.policies });
    const identity = buildIdentity(snap);
    const agent = 'kube-system/DaemonSet/agent';
    // Given by workload alone, the flow is checked at its pod and at its node's InternalIP only.
    const f = between(workload('DaemonSet', 'agent', 'kube-system'), CART, 8080);
    const at = flowEnds(identity, identity.resolveNumber(f.src, f.time), f, false).map((e) => e.at);
    expect(at).toEqual([
      [{ namespace: 'kube-system', pods: ['agent-a'], each: true }, { ip: '192.168.0.11' }],
    ]);
    expect(auditedEach(identity, engine, f)).toEqual([[agent, 'shop/Deployment/cart', 'admitted']]);
  });
});

describe('the audit, where the view and identity disagree', () => {
  it('checks a host-network workload at a node that joined since the view was built', async () => {
    const before = withObjects(daemonSet, hostPod('agent-a', '192.168.0.11'));
    const learned = await runPipeline(before, [
      ...fixtureFlows(),
      between({ ip: '192.168.0.11', namespace: 'kube-system', pod: 'agent-a' }, CART, 8080),
    ]);
    // The view is as the proposal was made; identity already has agent-b, on node-3.
    const engine = engineFromSnapshot({ ...before, networkPolicies: learned.proposal.policies });
    const identity = buildIdentity(
      withObjects(daemonSet, hostPod('agent-a', '192.168.0.11'), hostPod('agent-b', '192.168.0.12')),
    );
    expect(
      auditedEach(identity, engine, between(workload('DaemonSet', 'agent', 'kube-system'), CART, 8080)),
    ).toEqual([['kube-system/DaemonSet/agent', 'shop/Deployment/cart', 'blocked']]);
  });

  it("never checks a flow as another workload's pod that holds its address in the view", async () => {
    // Since the view was built, cart's pod went and a frontend pod got its address, 10.244.1.20.
    const now = fixtureSnapshot();
    const cart = now.pods.find((p) => p.metadata.name === CART.pod)!;
    const frontend = now.pods.find((p) => p.metadata.name === 'frontend-7d9f-aaaaa')!;
    now.pods = now.pods.filter((p) => p !== cart);
    now.pods.push({
      ...frontend,
      metadata: { ...frontend.metadata, name: 'frontend-7d9f-zzzzz' },
      status: { ...frontend.status, podIP: CART.ip, podIPs: [{ ip: CART.ip }] },
    });
    const { identity, engine } = await shopAudit(now);
    // frontend does not reach db in the proposal, cart does: checked as frontend, it is blocked.
    expect(auditedEach(identity, engine, between({ ip: CART.ip }, DB_POD, 5432))).toEqual([
      ['shop/Deployment/frontend', 'shop/StatefulSet/db', 'blocked'],
    ]);
  });

  it("leaves out a node's traffic to its own pods, not another node's", () => {
    const identity = buildIdentity(fixtureSnapshot());
    const cart = identity.resolve(CART, 0);
    const probe = between({ ip: '192.168.0.10', reserved: 'host' }, CART, 8080);
    const remote = between({ ip: '192.168.0.10', reserved: 'remote-node' }, CART, 8080);
    expect(auditsPair(identity.resolve(probe.src, 0), cart, probe)).toBe(false);
    expect(auditsPair(identity.resolve(remote.src, 0), cart, remote)).toBe(true);
  });
});

/** A pod of the host-network DaemonSet kube-system/agent on its own node, whose address is `ip`. */
function hostPod(name: string, ip: string) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: 'kube-system',
      labels: { app: 'agent' },
      ownerReferences: [
        { apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'agent', uid: 'uid-agent', controller: true },
      ],
    },
    spec: { nodeName: name, hostNetwork: true, containers: [{ name: 'c' }] },
    status: { phase: 'Running', podIP: ip, podIPs: [{ ip }], hostIP: ip, startTime: '2026-11-01T00:00:00Z' },
  };
}
const daemonSet = {
  apiVersion: 'apps/v1',
  kind: 'DaemonSet',
  metadata: { name: 'agent', namespace: 'kube-system', uid: 'uid-agent' },
  spec: { selector: { matchLabels: { app: 'agent' } }, template: { metadata: { labels: { app: 'agent' } } } },
};

/** The fixture with `objs` added (parsed as a snapshot file's objects are). */
function withObjects(...objs: unknown[]): ClusterSnapshot {
  const snap = fixtureSnapshot();
  const more = snapshotFromObjects(objs, 'test');
  for (const k of Object.keys(more) as (keyof ClusterSnapshot)[])
    (snap[k] as unknown[]).push(...(more[k] as unknown[]));
  return snap;
}

describe('the audit of a pod newer than its view, at a pod of the same revision', () => {
  // shop/web: a Deployment in the middle of a rollout, its pods of two ReplicaSets whose template labels
  // differ; shop/cache: a StatefulSet in the middle of one, its pods of two revisions likewise. A policy
  // on db admits only the old revision of each (track: stable) on 5432.
  const OLD = '5d9c7b8f6';
  const NEW = '6b8d9f7c5';
  const webPod = (hash: string, suffix: string, ip: string) =>
    ownedPod(`web-${hash}-${suffix}`, 'ReplicaSet', `web-${hash}`, ip, {
      app: 'web',
      track: hash === OLD ? 'stable' : 'canary',
      'pod-template-hash': hash,
    });
  const cachePod = (ordinal: number, revision: string, ip: string) =>
    ownedPod(`cache-${ordinal}`, 'StatefulSet', 'cache', ip, {
      app: 'cache',
      track: revision === 'cache-6d4f' ? 'stable' : 'canary',
      'controller-revision-hash': revision,
    });
  const view = [
    ...webWorkload(OLD, NEW),
    webPod(OLD, 'aaaaa', '10.244.1.40'),
    webPod(NEW, 'bbbbb', '10.244.1.41'),
    cacheSet,
    cachePod(0, 'cache-6d4f', '10.244.1.50'),
    cachePod(1, 'cache-7c9b', '10.244.1.51'),
    dbFromStable,
  ];
  // Since the view was built: a new pod of each ReplicaSet, and cache-2 of the new revision.
  const newCanary = { ip: '10.244.1.42', namespace: 'shop', pod: `web-${NEW}-zzzzz` };
  const newStable = { ip: '10.244.1.43', namespace: 'shop', pod: `web-${OLD}-yyyyy` };
  const cache2 = { ip: '10.244.1.52', namespace: 'shop', pod: 'cache-2' };
  const now = withObjects(
    ...view,
    webPod(NEW, 'zzzzz', newCanary.ip),
    webPod(OLD, 'yyyyy', newStable.ip),
    cachePod(2, 'cache-7c9b', cache2.ip),
  );
  const engine = engineFromSnapshot(withObjects(...view));
  const identity = buildIdentity(now);

  it("checks a Deployment's new pod at a pod of its own ReplicaSet, which its name gives", () => {
    expect(identity.workloads.get('shop/Deployment/web')?.pods).toEqual([
      `web-${OLD}-aaaaa`,
      `web-${OLD}-yyyyy`,
      `web-${NEW}-bbbbb`,
      `web-${NEW}-zzzzz`,
    ]);
    // The first pod of web the view has is of the old ReplicaSet, which db admits; the new pod is of
    // the new one, which it does not.
    expect(auditedEach(identity, engine, between(newCanary, DB_POD, 5432))).toEqual([
      ['shop/Deployment/web', 'shop/StatefulSet/db', 'blocked'],
    ]);
    expect(auditedEach(identity, engine, between(newStable, DB_POD, 5432))).toEqual([
      ['shop/Deployment/web', 'shop/StatefulSet/db', 'admitted'],
    ]);
    // Given without its address, alike.
    expect(auditedEach(identity, engine, between({ ...newCanary, ip: undefined }, DB_POD, 5432))).toEqual([
      ['shop/Deployment/web', 'shop/StatefulSet/db', 'blocked'],
    ]);
  });

  it('checks a pod of a revision the view has no pod of at the first pod of its workload', () => {
    const other = { namespace: 'shop', pod: 'web-7f8e9d0c1-xxxxx', ip: '10.244.1.44' };
    const id = buildIdentity(withObjects(...view, webPod('7f8e9d0c1', 'xxxxx', other.ip)));
    expect(auditedEach(id, engine, between(other, DB_POD, 5432))).toEqual([
      ['shop/Deployment/web', 'shop/StatefulSet/db', 'admitted'],
    ]);
  });

  it("checks a StatefulSet's new pod at a pod of its revision, given by the pod's labels now or the flow's", () => {
    const live: PodLabels = (ns, pod) =>
      now.pods.find((p) => p.metadata.namespace === ns && p.metadata.name === pod)?.metadata.labels;
    // Its name tells no revision: without its labels it is checked at cache-0, of the old one.
    expect(auditedEach(identity, engine, between(cache2, DB_POD, 5432))).toEqual([
      ['shop/StatefulSet/cache', 'shop/StatefulSet/db', 'admitted'],
    ]);
    expect(auditedEach(identity, engine, between(cache2, DB_POD, 5432), live)).toEqual([
      ['shop/StatefulSet/cache', 'shop/StatefulSet/db', 'blocked'],
    ]);
    const labelled = { ...cache2, labels: ['app=cache', 'controller-revision-hash=cache-7c9b'] };
    expect(auditedEach(identity, engine, between(labelled, DB_POD, 5432))).toEqual([
      ['shop/StatefulSet/cache', 'shop/StatefulSet/db', 'blocked'],
    ]);
  });
});

/** A pod of namespace shop owned by `kind/owner`, at `ip`, with `labels`. */
function ownedPod(name: string, kind: string, owner: string, ip: string, labels: Record<string, string>) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: 'shop',
      labels,
      ownerReferences: [{ apiVersion: 'apps/v1', kind, name: owner, uid: `uid-${owner}`, controller: true }],
    },
    spec: { nodeName: 'node-1', containers: [{ name: 'c' }] },
    status: {
      phase: 'Running',
      podIP: ip,
      podIPs: [{ ip }],
      hostIP: '192.168.0.10',
      startTime: '2026-11-01T00:00:00Z',
    },
  };
}

/** The Deployment shop/web and its ReplicaSets of `hashes`. */
function webWorkload(...hashes: string[]) {
  return [
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', namespace: 'shop', uid: 'uid-web' },
      spec: { selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } } } },
    },
    ...hashes.map((hash) => ({
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: {
        name: `web-${hash}`,
        namespace: 'shop',
        uid: `uid-web-${hash}`,
        labels: { app: 'web', 'pod-template-hash': hash },
        ownerReferences: [
          { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', uid: 'uid-web', controller: true },
        ],
      },
      spec: { selector: { matchLabels: { app: 'web', 'pod-template-hash': hash } } },
    })),
  ];
}

const cacheSet = {
  apiVersion: 'apps/v1',
  kind: 'StatefulSet',
  metadata: { name: 'cache', namespace: 'shop', uid: 'uid-cache' },
  spec: { selector: { matchLabels: { app: 'cache' } }, template: { metadata: { labels: { app: 'cache' } } } },
};

/** db admits the stable pods of web and cache on 5432, and nothing else. */
const dbFromStable = {
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { name: 'db-from-stable', namespace: 'shop' },
  spec: {
    podSelector: { matchLabels: { app: 'db' } },
    policyTypes: ['Ingress'],
    ingress: [
      {
        from: [{ podSelector: { matchLabels: { track: 'stable' } } }],
        ports: [{ protocol: 'TCP', port: 5432 }],
      },
    ],
  },
};

describe('the audit of a flow to the ClusterIP of a Service with no backend', () => {
  /** shop's Service ghost (10.96.0.80, port 80 → 8080), whose selector selects no pod. */
  const ghostService = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'ghost', namespace: 'shop' },
    spec: { selector: { app: 'ghost' }, clusterIP: '10.96.0.80', ports: [{ port: 80, targetPort: 8080 }] },
  };

  it('finds it unauditable, not blocked: it fails at the Service, and no policy decides it', async () => {
    const { identity, engine } = await shopAudit(fixtureSnapshot(ghostService));
    // The proposal isolates cart (its default deny), and admits no egress to the address: asked, the
    // engine would block it; but the connection never reaches a pod a policy selects.
    const f = between(CART, { ip: '10.96.0.80' }, 80);
    expect(auditedEach(identity, engine, f)).toEqual([
      ['shop/Deployment/cart', 'private:10.96.0.80', 'unauditable'],
    ]);
    const d = identity.resolveNumber(f.dst, f.time, f.port);
    const [dst] = flowEnds(identity, d, f, true);
    expect(unplacedEnd(engine, f, undefined, dst!.at)).toEqual({
      end: 'destination',
      why: 'is the ClusterIP of Service shop/ghost, which has no backend: the connection fails at the Service, and no policy decides it',
    });
  });

  it('audits it against the backends once the Service has them', async () => {
    const backed = { ...ghostService, spec: { ...ghostService.spec, selector: { app: 'db' } } };
    const { identity, engine } = await shopAudit(fixtureSnapshot(backed));
    // db admits cart on 5432 only: on 8080 the flow would be blocked.
    expect(auditedEach(identity, engine, between(CART, { ip: '10.96.0.80' }, 80))).toEqual([
      ['shop/Deployment/cart', 'shop/StatefulSet/db', 'blocked'],
    ]);
  });

  it('audits it against the addresses of an EndpointSlice someone else writes for a Service whose selector selects no pod', async () => {
    // kube-proxy and Cilium take every EndpointSlice labelled with the Service's name, not only those
    // the EndpointSlice controller writes for its selector: this one sends ghost's connections to db.
    const foreignSlice = {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: 'ghost-extra',
        namespace: 'shop',
        labels: {
          'kubernetes.io/service-name': 'ghost',
          'endpointslice.kubernetes.io/managed-by': 'operator.example.com',
        },
      },
      addressType: 'IPv4',
      ports: [{ port: 8080, protocol: 'TCP' }],
      endpoints: [{ addresses: [DB_POD.ip] }],
    };
    const { identity, engine } = await shopAudit(fixtureSnapshot(ghostService, foreignSlice));
    // db admits cart on 5432 only: on 8080 the flow would be blocked, and is not hidden as unauditable.
    expect(auditedEach(identity, engine, between(CART, { ip: '10.96.0.80' }, 80))).toEqual([
      ['shop/Deployment/cart', 'shop/StatefulSet/db', 'blocked'],
    ]);
  });
});
