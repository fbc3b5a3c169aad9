/**
 * Flow counts on the page: a connection to a Service's ClusterIP is folded into the edge to each of its
 * backends, and still counts once in the totals, for its client and on a drawn edge.
 */
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import type { Flow } from '../../src/flows/types.ts';
import type { ServiceGraph } from '../../src/graph/types.ts';
import { loadSnapshotText } from '../../src/model/snapshot.ts';
import { runPipeline } from '../../src/pipeline.ts';
import { createApp } from '../../src/server/app.ts';
import { analysisSource } from '../../src/server/source.ts';
import type { GraphView, NodeDetails } from '../../src/server/types.ts';

const T0 = Date.parse('2026-11-01T10:00:00Z');

/** A Deployment pinned to `segment`, with one pod at `ip`. */
function workload(name: string, labels: Record<string, string>, segment: string, ip: string): object[] {
  return [
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name, namespace: 'app', uid: `uid-${name}`, labels: { 'microseg.dev/segment': segment } },
      spec: { selector: { matchLabels: labels }, template: { metadata: { labels } } },
    },
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: `${name}-1`,
        namespace: 'app',
        labels,
        ownerReferences: [
          { apiVersion: 'apps/v1', kind: 'Deployment', name, uid: `uid-${name}`, controller: true },
        ],
      },
      spec: { nodeName: 'node-1', containers: [{ name: 'c' }] },
      status: { phase: 'Running', podIP: ip, hostIP: '192.168.0.10', startTime: '2026-11-01T00:00:00Z' },
    },
  ];
}

/** web (segment front) calls the Service `backend`, whose selector picks be1 and be2 (segment back). */
const snapshot = loadSnapshotText(
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'List',
    items: [
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'app' } },
      ...workload('web', { app: 'web' }, 'front', '10.244.1.1'),
      ...workload('be1', { app: 'be1', role: 'backend' }, 'back', '10.244.1.3'),
      ...workload('be2', { app: 'be2', role: 'backend' }, 'back', '10.244.1.4'),
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'backend', namespace: 'app' },
        spec: { clusterIP: '10.96.0.11', selector: { role: 'backend' }, ports: [{ port: 9000 }] },
      },
    ],
  }),
  'cluster.json',
);

const toBackends = (minute: number, dst: string, count: number): Flow => ({
  time: T0 + minute * 60_000,
  src: { ip: '10.244.1.1', namespace: 'app', pod: 'web-1' },
  dst: { ip: dst },
  port: 9000,
  protocol: 'TCP',
  verdict: 'FORWARDED',
  input: 'generic',
  count,
});

const WEB = 'app/Deployment/web';
const BE1 = 'app/Deployment/be1';
const BE2 = 'app/Deployment/be2';

describe('flow counts on the page', async () => {
  // Five connections to the Service's ClusterIP, two straight to be1's pod.
  const analysis = await runPipeline(snapshot, [
    toBackends(1, '10.96.0.11', 5),
    toBackends(2, '10.244.1.3', 2),
  ]);
  const app = createApp(analysisSource(analysis));
  const get = async <T>(path: string) => (await request(app).get(path).expect(200)).body as T;

  it('count each flow once in the totals and for the client, and once for each backend it may have reached', async () => {
    const view = await get<GraphView>('/api/v1/graph?view=full');
    expect(view.totals).toEqual({ nodes: 3, edges: 2, flows: 7, unobserved: 0 });
    expect(view.nodes.map((n) => [n.id, n.flows])).toEqual([
      [BE1, 7],
      [BE2, 5],
      [WEB, 7],
    ]);
    expect(view.edges.map((e) => [e.id, e.count, e.viaService])).toEqual([
      [`${WEB}->${BE1}`, 7, 5],
      [`${WEB}->${BE2}`, 5, 5],
    ]);
  });

  it('count a flow once on a drawn edge that holds several of its backends, and say a segment sums its members', async () => {
    const view = await get<GraphView>('/api/v1/graph?view=segments');
    expect(view.totals.flows).toBe(7);
    expect(view.edges.map((e) => [e.id, e.count, e.viaService, e.edges])).toEqual([
      ['segment:front->segment:back', 7, 5, 2],
    ]);
    expect(view.nodes.map((n) => [n.id, n.flows])).toEqual([
      ['segment:back', 12],
      ['segment:front', 7],
    ]);
  });

  it('give each graph edge its own count in the details, marked shared', async () => {
    const d = await get<NodeDetails>(`/api/v1/nodes?id=${encodeURIComponent(WEB)}`);
    expect([d.flowsIn, d.flowsOut]).toEqual([0, 7]);
    expect(d.outbound.map((r) => [r.peer, r.count, r.viaService])).toEqual([
      [BE1, 7, 5],
      [BE2, 5, 5],
    ]);
    const export_ = await get<ServiceGraph>('/api/v1/graph/export');
    const shared = { [`${WEB}->service:app/backend:9000/TCP`]: 5 };
    expect(export_.edges.map((e) => [e.id, e.count, e.shared])).toEqual([
      [`${WEB}->${BE1}:9000/TCP`, 7, shared],
      [`${WEB}->${BE2}:9000/TCP`, 5, shared],
    ]);
  });
});
