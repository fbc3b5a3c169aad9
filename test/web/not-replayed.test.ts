/**
 * The Rollout view's audits leave out connections replaying cannot show (ICMP, those dropped at every
 * observation, node to pod, ends the snapshot cannot place): each audit says how many, by why, so that
 * the page can say what it does not list that recommend's report.json counts as will be blocked.
 */
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { recommend } from '../../src/cli/commands/recommend.ts';
import { auditPolicySet } from '../../src/policy/audit.ts';
import { createApp } from '../../src/server/app.ts';
import { policySetAuditView } from '../../src/server/audit.ts';
import { analysisSource } from '../../src/server/source.ts';
import type { AuditView } from '../../src/server/types.ts';
import { fixtureFlows, fixtureSnapshot } from '../core/fixture.ts';
import { fixtureAnalysis } from './helpers.ts';

describe('an audit of the Rollout view counts the connections it does not replay', () => {
  it("the offline audit: the fixture's ICMP and all-dropped connections, which the proof says will be blocked", async () => {
    const fx = await fixtureAnalysis();
    const proof = (await recommend(fixtureSnapshot(), fixtureFlows())).proof;
    // The fixture's two: frontend to cart over ICMPv4, and to cart:9999 with every observation dropped.
    expect(proof.willBeBlocked.map((w) => w.split(':')[0] + ':' + w.split(':')[1]!.split('/')[1])).toEqual([
      'shop/Deployment/frontend->shop/Deployment/cart:ICMPv4',
      'shop/Deployment/frontend->shop/Deployment/cart:TCP',
    ]);
    expect(fx.audit.notReplayed).toMatchObject({ protocol: 1, dropped: 1 });
    expect(fx.audit.wouldBlock.some((b) => b.protocol === 'ICMPv4' || b.port === 9999)).toBe(false);
    const res = await request(
      createApp(analysisSource(fx.analysis, { title: 'fixture', mode: 'demo', audits: [fx.audit] })),
    ).get('/api/v1/audits');
    expect(res.status).toBe(200);
    expect((res.body as AuditView[])[0]!.notReplayed).toEqual(fx.audit.notReplayed);
  });

  it("serve's audit of --policies: the policy-set audit's counts", async () => {
    const fx = await fixtureAnalysis();
    const audit = auditPolicySet({
      snapshot: fx.snapshot,
      identity: fx.analysis.identity,
      graph: fx.analysis.graph,
      given: fx.analysis.proposal.policies,
    });
    const view = policySetAuditView('policies', fx.snapshot, fx.analysis.proposal.policies, audit, false);
    expect(view.notReplayed).toEqual(audit.connections.notReplayed);
    expect(view.notReplayed).toMatchObject({ protocol: 1, dropped: 1 });
  });
});
