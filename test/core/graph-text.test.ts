import { describe, expect, it } from 'vitest';
import { writePieces } from '../../src/cli/io.ts';
import { dotPieces, toDot } from '../../src/graph/build.ts';
import type { ServiceGraph } from '../../src/graph/types.ts';

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
