/**
 * The ends the controller learns and audits a flow at: a flow to the kubernetes Service's ClusterIP is
 * audited at every endpoint address of the API server of the ClusterIP's family.
 */
import { describe, expect, it } from 'vitest';
import { blocksFlow, flowEnds } from '../../src/controller/ends.ts';
import type { Flow } from '../../src/flows/types.ts';
import type { Identity } from '../../src/identity/index.ts';
import { buildIdentity } from '../../src/identity/index.ts';
import type { ClusterSnapshot } from '../../src/model/snapshot.ts';
import { runPipeline } from '../../src/pipeline.ts';
import type { Engine } from '../../src/verify/engine.ts';
import { engineFromSnapshot } from '../../src/verify/engine.ts';
import { fixtureFlows, fixtureWithAPIServerAt } from '../core/fixture.ts';

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

/** Whether the audit finds `f` blocked, at each backend it reaches (as the controller audits it). */
function audited(id: Identity, engine: Engine, f: Flow): boolean[] {
  return flowEnds(id, id.resolveNumber(f.dst, f.time, f.port), f, true).map((e) =>
    blocksFlow(engine, { ...f, port: e.port }, e.at),
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
      { peer: 'shop/Deployment/cart', port: 8080, at: [{ namespace: 'shop', pod: 'cart-7d9f-bbbbb' }] },
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
    expect(audited(identity, engine, fromCart('10.96.0.1'))).toEqual([false]);
    expect(audited(identity, engine, fromCart('fd00:10:96::1'))).toEqual([true]);
  });

  it('finds a flow blocked when one endpoint of its family is not in the frozen proposal', async () => {
    const { identity, engine } = await frozenAudit(
      fixtureWithAPIServerAt(['172.18.0.2']),
      fixtureWithAPIServerAt(['172.18.0.2', '172.18.0.3']),
    );
    expect(audited(identity, engine, fromCart('10.96.0.1'))).toEqual([true]);
    // Audited against a proposal of the same endpoints, it is admitted.
    const same = await frozenAudit(
      fixtureWithAPIServerAt(['172.18.0.2', '172.18.0.3']),
      fixtureWithAPIServerAt(['172.18.0.2', '172.18.0.3']),
    );
    expect(audited(same.identity, same.engine, fromCart('10.96.0.1'))).toEqual([false]);
  });
});
