import { describe, expect, it } from 'vitest';
import { writePieces } from '../../src/cli/io.ts';
import { buildServiceGraph, dotPieces, streamServiceGraph, toDot } from '../../src/graph/build.ts';
import type { EdgeRecord, ServiceGraph } from '../../src/graph/types.ts';
import { buildIdentity } from '../../src/identity/index.ts';
import { snapshotFromObjects } from '../../src/model/snapshot.ts';

const graph: ServiceGraph = {
  nodes: [
    {
      id: 'shop/Deployment/cart',
      kind: 'workload',
      name: 'cart',
      namespace: 'shop',
      flowsIn: 3,
      flowsOut: 0,
      segment: 'shop-a',
    },
    {
      id: 'shop/Deployment/web',
      kind: 'workload',
      name: 'web',
      namespace: 'shop',
      flowsIn: 0,
      flowsOut: 4,
      segment: 'shop-a',
    },
    {
      id: 'kube-system/Deployment/coredns',
      kind: 'workload',
      name: 'coredns',
      namespace: 'kube-system',
      flowsIn: 1,
      flowsOut: 0,
      segment: 'dns',
    },
    {
      id: 'world:198.51.100.7',
      kind: 'world',
      name: 'api "pay"\\x',
      ip: '198.51.100.7',
      flowsIn: 1,
      flowsOut: 0,
    },
  ],
  edges: [
    {
      id: 'a',
      source: 'shop/Deployment/web',
      target: 'shop/Deployment/cart',
      protocol: 'TCP',
      port: 8080,
      count: 3,
      firstSeen: '',
      lastSeen: '',
      verdicts: {},
    },
    {
      id: 'b',
      source: 'shop/Deployment/web',
      target: 'world:198.51.100.7',
      protocol: 'TCP',
      port: 443,
      count: 1,
      firstSeen: '',
      lastSeen: '',
      verdicts: {},
    },
  ],
};

describe('Graphviz DOT', () => {
  it('groups nodes by segment, dashes external peers and quotes names', () => {
    expect(toDot(graph)).toBe(
      [
        'digraph microseg {',
        '  rankdir=LR;',
        '  node [shape=box, style=rounded];',
        '  "world:198.51.100.7" [label="api \\"pay\\"\\\\x", shape=ellipse, style=dashed];',
        '  subgraph "cluster_dns" {',
        '    label="dns";',
        '    "kube-system/Deployment/coredns" [label="kube-system/coredns"];',
        '  }',
        '  subgraph "cluster_shop-a" {',
        '    label="shop-a";',
        '    "shop/Deployment/cart" [label="shop/cart"];',
        '    "shop/Deployment/web" [label="shop/web"];',
        '  }',
        '  "shop/Deployment/web" -> "shop/Deployment/cart" [label="8080/TCP (3)"];',
        '  "shop/Deployment/web" -> "world:198.51.100.7" [label="443/TCP (1)"];',
        '}',
        '',
      ].join('\n'),
    );
    // In pieces: a line (or a segment's heading) at a time.
    expect([...dotPieces(graph)].length).toBe(12);
  });
  it('says how many flows of an edge went to a Service with several backends', () => {
    const shared = { 'shop/Deployment/web->service:shop/cart:80/TCP': 2 };
    const edge = { ...graph.edges[0]!, shared };
    expect(toDot({ nodes: graph.nodes, edges: [edge] })).toContain(
      '  "shop/Deployment/web" -> "shop/Deployment/cart" [label="8080/TCP (3, 2 shared)"];\n',
    );
  });
});

describe('writing text in pieces', () => {
  it('writes about a MiB at a time, in order, each write awaited before the next', async () => {
    const pieces = Array.from(
      { length: 3000 },
      (_, i) => `${String(i).padStart(6, '0')}${'x'.repeat(994)}\n`,
    );
    const chunks: string[] = [];
    let pending = false;
    await writePieces(pieces, async (chunk) => {
      expect(pending).toBe(false);
      pending = true;
      await new Promise((r) => setTimeout(r, 1));
      chunks.push(chunk);
      pending = false;
    });
    expect(chunks.join('')).toBe(pieces.join(''));
    expect(chunks.length).toBe(3);
    for (const c of chunks.slice(0, -1)) expect(c.length).toBeGreaterThanOrEqual(1 << 20);
    expect(chunks[0]!.length).toBeLessThan((1 << 20) + 1000);
  });

  it('writes nothing for no pieces', async () => {
    const chunks: string[] = [];
    await writePieces([], (c) => void chunks.push(c));
    expect(chunks).toEqual([]);
  });
});

describe('building the service graph', () => {
  const identity = buildIdentity(snapshotFromObjects([], 'empty'));
  const records: EdgeRecord[] = [
    {
      src: 'a',
      dst: 'b',
      protocol: 'TCP',
      port: 80,
      count: 3,
      firstSeen: 0,
      lastSeen: 5,
      verdicts: { FORWARDED: 3 },
    },
    {
      src: 'a',
      dst: 'c',
      protocol: 'UDP',
      port: 53,
      count: 2,
      firstSeen: 1,
      lastSeen: 2,
      verdicts: { DROPPED: 1, AUDIT: 1 },
      dropReasons: { POLICY_DENIED: 1 },
    },
    {
      src: 'c',
      dst: 'b',
      protocol: 'TCP',
      port: 443,
      count: 1,
      firstSeen: 9,
      lastSeen: 9,
      verdicts: { FORWARDED: 1 },
    },
  ];
  const input = (edges: Iterable<EdgeRecord>) => ({ identity, edges, peers: new Map(), names: new Map() });

  it('takes the records in one pass, so a one-shot iterable gives the graph an array gives', () => {
    const expected = buildServiceGraph(input(records));
    expect(expected.edges).toHaveLength(3);
    expect(expected.nodes.map((n) => [n.id, n.flowsIn, n.flowsOut])).toEqual([
      ['a', 0, 5],
      ['b', 4, 0],
      ['c', 2, 1],
    ]);
    expect(buildServiceGraph(input(records.values()))).toEqual(expected);
  });

  it('streamed, gives the same nodes and makes the same edges afresh on every iteration', () => {
    const expected = buildServiceGraph(input(records));
    const streamed = streamServiceGraph(input(records));
    expect(streamed.nodes).toEqual(expected.nodes);
    expect([...streamed.edges]).toEqual(expected.edges);
    expect([...streamed.edges]).toEqual(expected.edges);
  });
});
