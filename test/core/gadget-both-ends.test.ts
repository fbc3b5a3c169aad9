/**
 * A connection to a Service traced by Inspektor Gadget at both ends is two records: the client's
 * `connect` (client address and port → ClusterIP and Service port) and the backend's `accept` (client
 * address and port → the backend's own address and targetPort). They are one connection, and count
 * once in the evidence of the edge from the client to that backend, whatever order they come in.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/main.ts';
import { captureIO } from '../../src/cli/io.ts';
import { recommend } from '../../src/cli/commands/recommend.ts';
import { parseGadgetEvent } from '../../src/flows/inspektor-gadget.ts';
import { readFlows } from '../../src/flows/reader.ts';
import type { Flow } from '../../src/flows/types.ts';
import { Aggregator, GADGET_HOLD_MS, GADGET_PAIR_TOLERANCE_MS } from '../../src/graph/aggregate.ts';
import { buildIdentity } from '../../src/identity/index.ts';
import { countFlows } from '../../src/graph/counts.ts';
import { snapshotFromObjects } from '../../src/model/snapshot.ts';
import type { RuleEvidence } from '../../src/policy/types.ts';
import { runPipeline } from '../../src/pipeline.ts';
import { stableJson } from '../../src/policy/render.ts';

// The bundled trace_tcp event (a `connect`): the events below are it with other addresses and pods.
const sample = JSON.parse(
  readFileSync(new URL('../../../shared/samples/ig-trace-tcp.jsonl', import.meta.url), 'utf8').trim(),
) as Record<string, unknown> & { k8s: object; src: object; dst: object };

const T0 = Date.parse('2026-11-01T10:00:00.000Z');

function workload(name: string, ip: string, port?: number, extra: Record<string, string> = {}): object[] {
  const labels = { app: name, ...extra };
  const ports = port === undefined ? [] : [{ containerPort: port }];
  const rs = `${name}-aa`;
  return [
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name, namespace: 'app', uid: `uid-${name}` },
      spec: {
        selector: { matchLabels: labels },
        template: { metadata: { labels }, spec: { containers: [{ name, ports }] } },
      },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: {
        name: rs,
        namespace: 'app',
        uid: `uid-${rs}`,
        ownerReferences: [
          { apiVersion: 'apps/v1', kind: 'Deployment', name, uid: `uid-${name}`, controller: true },
        ],
      },
      spec: { selector: { matchLabels: { ...labels, 'pod-template-hash': 'aa' } } },
    },
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: `${rs}-1`,
        namespace: 'app',
        labels: { ...labels, 'pod-template-hash': 'aa' },
        ownerReferences: [
          { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: rs, uid: `uid-${rs}`, controller: true },
        ],
      },
      spec: { nodeName: 'node-1', containers: [{ name, ports }] },
      status: { phase: 'Running', podIP: ip, hostIP: '192.168.0.10', startTime: '2026-11-01T00:00:00Z' },
    },
  ];
}

function service(
  name: string,
  clusterIP: string,
  selector: Record<string, string>,
  port: number,
  to: number,
) {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'app' },
    spec: { clusterIP, selector, ports: [{ port, targetPort: to }] },
  };
}

/**
 * web calls `api` (10.96.0.10:80 → api pods on 8080); `other` (10.96.0.11:80 → other pods on 8080);
 * `pool` (10.96.0.12:9000 → the pods of be1 and be2 on 9000).
 */
const objects = [
  {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: 'app', labels: { 'kubernetes.io/metadata.name': 'app' } },
  },
  ...workload('web', '10.244.1.1'),
  ...workload('api', '10.244.1.2', 8080),
  ...workload('other', '10.244.1.3', 8080),
  ...workload('be1', '10.244.1.4', 9000, { tier: 'pool' }),
  ...workload('be2', '10.244.1.5', 9000, { tier: 'pool' }),
  service('api', '10.96.0.10', { app: 'api' }, 80, 8080),
  service('other', '10.96.0.11', { app: 'other' }, 80, 8080),
  service('pool', '10.96.0.12', { tier: 'pool' }, 9000, 9000),
];

const snapshot = () => snapshotFromObjects(objects, 'cluster.json');

const pods: Record<string, { pod: string; ip: string }> = {
  web: { pod: 'web-aa-1', ip: '10.244.1.1' },
  api: { pod: 'api-aa-1', ip: '10.244.1.2' },
  other: { pod: 'other-aa-1', ip: '10.244.1.3' },
  be1: { pod: 'be1-aa-1', ip: '10.244.1.4' },
};

/** A trace_tcp event at `ms` after T0 of the pod `local`, its socket at `port`, the peer `peer`. */
function event(
  type: 'connect' | 'accept',
  ms: number,
  local: keyof typeof pods,
  port: number,
  peer: { addr: string; port: number },
): string {
  const { timestamp_raw: _raw, ...rest } = sample;
  const { pod, ip } = pods[local]!;
  return JSON.stringify({
    ...rest,
    type,
    timestamp: new Date(T0 + ms).toISOString(),
    k8s: { ...sample.k8s, namespace: 'app', podName: pod, containerName: local },
    src: { ...sample.src, addr: ip, port },
    dst: { ...sample.dst, ...peer },
  });
}

/** web (client port `sport`) connects to the ClusterIP `vip`:`port` at `ms`. */
const connect = (ms: number, sport: number, vip = '10.96.0.10', port = 80) =>
  event('connect', ms, 'web', sport, { addr: vip, port });
/** `backend` takes, on `port`, web's connection from client port `sport` at `ms`. */
const accept = (ms: number, sport: number, backend: keyof typeof pods = 'api', port = 8080) =>
  event('accept', ms, backend, port, { addr: pods.web!.ip, port: sport });

const flowsOf = (lines: string[]): Flow[] => lines.map((l) => parseGadgetEvent(JSON.parse(l)) as Flow);

const WEB = 'app/Deployment/web';
const edgeCount = (r: Awaited<ReturnType<typeof runPipeline>>, dst: string, port: number) =>
  r.graph.edges.find((e) => e.source === WEB && e.target === dst && e.port === port)?.count;

describe('Inspektor Gadget: a connection to a Service traced at both ends', () => {
  it('counts once on the edge from the client to the backend, in either order', async () => {
    const lines = [connect(0, 41464), accept(3, 41464)];
    const counts: unknown[] = [];
    for (const order of [lines, [...lines].reverse()]) {
      const r = await runPipeline(snapshot(), flowsOf(order));
      expect(r.graph.edges.map((e) => e.id)).toEqual([`${WEB}->app/Deployment/api:8080/TCP`]);
      counts.push(edgeCount(r, 'app/Deployment/api', 8080));
      // The earliest time of the two.
      expect(r.graph.edges[0]!.firstSeen).toBe(new Date(T0).toISOString());
      expect(r.graph.edges[0]!.lastSeen).toBe(new Date(T0).toISOString());
    }
    expect(counts).toEqual([1, 1]);
  });

  it('pairs ends up to the tolerance apart, also when the accept is stamped first (another clock)', async () => {
    for (const lines of [
      [connect(0, 41464), accept(GADGET_PAIR_TOLERANCE_MS, 41464)],
      [accept(0, 41464), connect(GADGET_PAIR_TOLERANCE_MS, 41464)],
    ]) {
      const r = await runPipeline(snapshot(), flowsOf(lines));
      expect(edgeCount(r, 'app/Deployment/api', 8080)).toBe(1);
    }
  });

  it('pairs a record that comes less than the hold behind the newest, whatever the order', async () => {
    // The connect at 30 s is settled once the newest reaches 60 s; its accept, 1 s after it, comes
    // after that newest record, 29 s behind it: within the hold, so it is paired all the same.
    const lines = [
      connect(0, 40001),
      connect(GADGET_HOLD_MS, 40004),
      connect(2 * GADGET_HOLD_MS, 40003),
      accept(GADGET_HOLD_MS + 1_000, 40004),
    ];
    const byTime = [lines[0]!, lines[1]!, lines[3]!, lines[2]!];
    for (const order of [lines, byTime]) {
      const r = await runPipeline(snapshot(), flowsOf(order));
      expect(edgeCount(r, 'app/Deployment/api', 8080)).toBe(3);
    }
  });

  it('keeps two connections two: another client port, a port reused later, another Service', async () => {
    const cases: [string, string[], Record<string, number>][] = [
      [
        'another client port',
        [connect(0, 41464), accept(2, 41464), connect(5, 41470), accept(6, 41470)],
        { api: 2 },
      ],
      // The port used again, past the tolerance: the first connection's accept was not traced.
      [
        'a port reused later',
        [connect(0, 41464), connect(300_000, 41464), accept(300_003, 41464)],
        { api: 2 },
      ],
      [
        'a port reused just past the tolerance',
        [connect(0, 41464), accept(GADGET_PAIR_TOLERANCE_MS + 1, 41464)],
        { api: 2 },
      ],
      // web's connection to `other` and one that reached api with the same client port: api is not a
      // backend of `other`.
      ['another Service', [connect(0, 41464, '10.96.0.11'), accept(1, 41464)], { api: 1, other: 1 }],
      // The backend took it on a port the Service port does not lead to.
      ['another port', [connect(0, 41464), accept(1, 41464, 'api', 9999)], { api: 1 }],
    ];
    for (const [what, lines, want] of cases)
      for (const order of [lines, [...lines].reverse()]) {
        const r = await runPipeline(snapshot(), flowsOf(order));
        const got: Record<string, number> = {};
        for (const e of r.graph.edges)
          if (e.port === 8080) got[e.target.split('/')[2]!] = (got[e.target.split('/')[2]!] ?? 0) + e.count;
        expect(got, what).toEqual(want);
      }
  });

  it('a Service with several backends: each still has its edge, and the connection counts once', async () => {
    const lines = [connect(0, 41464, '10.96.0.12', 9000), accept(4, 41464, 'be1', 9000)];
    for (const order of [lines, [...lines].reverse()]) {
      const r = await runPipeline(snapshot(), flowsOf(order));
      // The next connection may reach be2: the rule for it stays.
      expect(r.graph.edges.map((e) => [e.id, e.count])).toEqual([
        [`${WEB}->app/Deployment/be1:9000/TCP`, 1],
        [`${WEB}->app/Deployment/be2:9000/TCP`, 1],
      ]);
      expect(countFlows(r.graph.edges)).toBe(1);
    }
  });

  it('the aggregator counts the pairs, and holds records until flush', () => {
    const agg = new Aggregator(buildIdentity(snapshot()));
    for (const f of flowsOf([connect(0, 41464), accept(3, 41464), connect(10, 41470)])) agg.addGadget(f);
    // Within the hold: nothing folded yet.
    expect(agg.edges()).toEqual([]);
    agg.flush();
    expect(agg.edges().map((e) => [e.dst, e.port, e.count])).toEqual([['app/Deployment/api', 8080, 2]]);
    expect(agg.stats).toEqual({ flows: 3, ignored: 0, unattributed: 0, bothEnds: 1 });
  });

  it('pairs records far apart in the input, within the hold, and settles the rest', async () => {
    // Many connections over several holds, each end at its own place in the input.
    const lines: string[] = [];
    const n = 40;
    for (let i = 0; i < n; i++) {
      const at = i * (GADGET_HOLD_MS / 8);
      lines.push(connect(at, 40000 + i), accept(at + 5, 40000 + i));
    }
    for (const order of [lines, [...lines].reverse()]) {
      const r = await runPipeline(snapshot(), flowsOf(order));
      expect(edgeCount(r, 'app/Deployment/api', 8080)).toBe(n);
    }
  });
});

describe('Inspektor Gadget both ends, read from files', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'microseg-igboth-'));
  });

  const apiEvidence = (report: { evidence: RuleEvidence[] }) =>
    report.evidence
      .filter((e) => e.port === 8080 && (e.peer === WEB || e.peer === 'app/Deployment/api'))
      .map((e) => [e.policy, e.direction, e.peer, e.count]);

  it('recommend: the evidence counts the connection once, whichever file holds which end', async () => {
    // The client's node and the backend's node, each its own file, given in either order; and both
    // events in one file, in either order.
    const client = join(dir, 'client.jsonl');
    const backend = join(dir, 'backend.jsonl');
    const one = join(dir, 'one.jsonl');
    const reversed = join(dir, 'reversed.jsonl');
    await writeFile(client, connect(0, 41464) + '\n');
    await writeFile(backend, accept(3, 41464) + '\n');
    await writeFile(one, [connect(0, 41464), accept(3, 41464)].join('\n') + '\n');
    await writeFile(reversed, [accept(3, 41464), connect(0, 41464)].join('\n') + '\n');
    const reports: string[] = [];
    for (const sources of [[client, backend], [backend, client], [one], [reversed]]) {
      const reader = readFlows(sources);
      const r = await recommend(snapshot(), reader);
      expect(reader.stats.flows).toBe(2);
      const report = r.report as { evidence: RuleEvidence[]; inputs: Record<string, unknown> };
      expect(apiEvidence(report)).toEqual([
        ['app/microseg-api', 'ingress', WEB, 1],
        ['app/microseg-web', 'egress', 'app/Deployment/api', 1],
      ]);
      const { sources: _s, ...inputs } = report.inputs;
      reports.push(stableJson({ ...report, inputs }));
    }
    expect(new Set(reports).size).toBe(1);
  });

  it('the recommend command writes report.json with a count of 1', async () => {
    const flows = join(dir, 'cli.jsonl');
    const cluster = join(dir, 'cluster.json');
    const out = join(dir, 'out');
    await writeFile(flows, [accept(3, 41464), connect(0, 41464)].join('\n') + '\n');
    await writeFile(cluster, JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }));
    const io = captureIO();
    const code = await runCli(['recommend', '--flows', flows, '--cluster', cluster, '--out', out], io);
    expect(io.stderr).toBe('');
    expect(code).toBe(0);
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as {
      evidence: RuleEvidence[];
    };
    expect(apiEvidence(report)).toEqual([
      ['app/microseg-api', 'ingress', WEB, 1],
      ['app/microseg-web', 'egress', 'app/Deployment/api', 1],
    ]);
  });
});
