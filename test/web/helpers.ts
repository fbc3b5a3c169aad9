/** Shared inputs for the web tests: the core fixture with an audit window, and large synthetic graphs. */
import { existsSync } from 'node:fs';
import type { Application } from 'express';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { Flow } from '../../src/flows/types.ts';
import type { GraphEdge, GraphNode, ServiceGraph } from '../../src/graph/types.ts';
import { runPipeline } from '../../src/pipeline.ts';
import type { Proposal } from '../../src/policy/types.ts';
import type { SegmentResult } from '../../src/segments/index.ts';
import { seededRandom } from '../../src/segments/index.ts';
import { offlineAudit } from '../../src/server/audit.ts';
import type { IsolateRequest, IsolationView, ViewSource } from '../../src/server/types.ts';
import { fixtureFlows, fixtureSnapshot } from '../core/fixture.ts';
import { deployment } from '../core/workload-fixture.ts';

const T0 = Date.parse('2026-11-01T10:00:00Z');

/** Traffic seen after the proposal was learned: frontend opens connections to db, which it never did. */
export function laterFlows(): Flow[] {
  return [50, 51, 52].map((minute) => ({
    time: T0 + minute * 60_000,
    src: { ip: '10.244.1.10', namespace: 'shop', pod: 'frontend-7d9f-aaaaa' },
    dst: { ip: '10.244.1.30' },
    port: 5432,
    protocol: 'TCP' as const,
    verdict: 'FORWARDED' as const,
    input: 'hubble' as const,
  }));
}

export const FRONTEND = 'shop/Deployment/frontend';
export const CART = 'shop/Deployment/cart';
export const DB = 'shop/StatefulSet/db';
export const NEW_EDGE = `${FRONTEND}->${DB}:5432/TCP`;

/** The fixture learned over its flows, audited over the same flows plus `laterFlows()`. */
export async function fixtureAnalysis() {
  const snapshot = fixtureSnapshot();
  const analysis = await runPipeline(snapshot, fixtureFlows());
  const later = await runPipeline(snapshot, [...fixtureFlows(), ...laterFlows()]);
  const audit = offlineAudit({
    name: 'shop-rollout',
    snapshot,
    identity: analysis.identity,
    graph: later.graph,
    proposal: analysis.proposal,
  });
  return { snapshot, analysis, audit };
}

export const REPORTS = 'shop/Deployment/reports';

/**
 * The fixture's cluster with one more Deployment in shop, `reports`, whose running pod no flow names,
 * learned over the fixture's flows: a workload in scope with no flow observed.
 */
export async function idleAnalysis() {
  const snapshot = fixtureSnapshot(...deployment('shop', 'reports', '10.244.1.77', 8080));
  const analysis = await runPipeline(snapshot, fixtureFlows());
  return { snapshot, analysis };
}

/** An in-memory source with isolation actions, wrapping another source. */
export function withIsolation(base: ViewSource): ViewSource & { calls: string[] } {
  const isolations: IsolationView[] = [];
  const calls: string[] = [];
  return {
    ...base,
    calls,
    isolations: () => isolations,
    isolate: (req: IsolateRequest, user: string) => {
      calls.push(`isolate ${req.workload} by ${user}`);
      const name = `iso-${req.workload.split('/')[2]}`;
      const v: IsolationView = {
        name,
        target: req.workload,
        workloads: [req.workload],
        pods: [],
        method: 'NetworkPolicy',
        state: 'Isolated',
        since: '2026-11-01T11:00:00Z',
        ...(req.reason ? { reason: req.reason } : {}),
        leaks: [],
      };
      isolations.push(v);
      return Promise.resolve(v);
    },
    release: (name: string, user: string) => {
      calls.push(`release ${name} by ${user}`);
      const i = isolations.findIndex((x) => x.name === name && x.state !== 'Released');
      if (i < 0) return Promise.resolve(false);
      isolations.splice(i, 1);
      return Promise.resolve(true);
    },
  };
}

/**
 * A large synthetic service graph: `workloads` workloads in `segments` namespaces (one segment each),
 * each calling three workloads of its own segment and, one time in ten, one of another segment; a few
 * hundred internet peers. Deterministic for a seed.
 */
export function syntheticGraph(
  workloads: number,
  segments: number,
  seed = 7,
): { graph: ServiceGraph; segments: SegmentResult; proposal: Proposal } {
  const rnd = seededRandom(seed);
  const pick = (n: number) => Math.floor(rnd() * n);
  const nodes: GraphNode[] = [];
  const edges: GraphEdge[] = [];
  const segOf: string[] = [];
  const seg = (i: number) => `seg-${String(i).padStart(3, '0')}`;
  const per = Math.ceil(workloads / segments);
  for (let i = 0; i < workloads; i++) {
    const s = Math.floor(i / per);
    segOf.push(seg(s));
    nodes.push({
      id: `ns-${s}/Deployment/svc-${i}`,
      kind: 'workload',
      name: `svc-${i}`,
      namespace: `ns-${s}`,
      workloadKind: 'Deployment',
      flowsIn: 0,
      flowsOut: 0,
      segment: seg(s),
    });
  }
  const worlds = Math.max(1, Math.floor(workloads / 20));
  for (let i = 0; i < worlds; i++) {
    const ip = `203.0.${Math.floor(i / 250)}.${(i % 250) + 1}`;
    nodes.push({ id: `world:${ip}`, kind: 'world', name: ip, ip, flowsIn: 0, flowsOut: 0 });
  }
  const seen = new Set<string>();
  const add = (a: number, b: number, port: number, count: number) => {
    const src = nodes[a]!;
    const dst = nodes[b]!;
    const id = `${src.id}->${dst.id}:${port}/TCP`;
    if (a === b || seen.has(id)) return;
    seen.add(id);
    src.flowsOut += count;
    dst.flowsIn += count;
    edges.push({
      id,
      source: src.id,
      target: dst.id,
      protocol: 'TCP',
      port,
      count,
      firstSeen: '2026-11-01T10:00:00.000Z',
      lastSeen: '2026-11-01T11:00:00.000Z',
      verdicts: { FORWARDED: count },
    });
  };
  for (let i = 0; i < workloads; i++) {
    const s = Math.floor(i / per);
    const lo = s * per;
    const hi = Math.min(workloads, lo + per);
    for (let k = 0; k < 3; k++) add(i, lo + pick(hi - lo), 8080, 1 + pick(500));
    if (rnd() < 0.1) add(i, pick(workloads), 9090, 1 + pick(50));
    if (rnd() < 0.05) add(i, workloads + pick(worlds), 443, 1 + pick(20));
  }
  const members = new Map<string, string[]>();
  for (let i = 0; i < workloads; i++) {
    const list = members.get(segOf[i]!) ?? [];
    list.push(nodes[i]!.id);
    members.set(segOf[i]!, list);
  }
  const segResult: SegmentResult = {
    segments: [...members.entries()].map(([id, m]) => ({
      id,
      kind: 'community',
      members: m.sort(),
      namespaces: [`ns-${Number(id.slice(4))}`],
      internalEdges: 0,
      crossingEdges: 0,
    })),
    membership: Object.fromEntries(nodes.filter((n) => n.segment).map((n) => [n.id, n.segment!])),
    modularity: 0,
    resolution: 1,
    seed: 1,
    hubDegree: 6,
  };
  const proposal: Proposal = {
    policies: [],
    byWorkload: {},
    evidence: [],
    notExpressible: [],
    unobserved: [],
    namespaces: [],
    warnings: [],
  };
  return { graph: { nodes, edges }, segments: segResult, proposal };
}

export function listen(app: Application): Promise<{ server: Server; url: string }> {
  return new Promise((resolve, reject) => {
    const server = app.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({ server, url: `http://127.0.0.1:${port}` });
    });
    server.on('error', reject);
  });
}

export const CHROMIUM = '/usr/bin/chromium';

/** Fails (never skips) when the browser is missing, with the fix in the message. */
export function requireChromium(): void {
  if (!existsSync(CHROMIUM))
    throw new Error(`Chromium is not installed at ${CHROMIUM}: run "apt-get install -y chromium"`);
}

/** CronJob shop/backup (Sundays at 03:00 UTC, no Job or pod now), with `extra` spec fields and status. */
export function backup(extra: { spec?: object; status?: object } = {}) {
  return {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: { name: 'backup', namespace: 'shop', uid: 'uid-backup' },
    spec: {
      schedule: '0 3 * * 0',
      jobTemplate: {
        spec: {
          template: { metadata: { labels: { app: 'backup' } }, spec: { containers: [{ name: 'c' }] } },
        },
      },
      ...extra.spec,
    },
    ...(extra.status ? { status: extra.status } : {}),
  };
}
