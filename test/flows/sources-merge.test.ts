/**
 * Several flow sources (one exporter file per node) are merged by time before de-duplication, so that
 * a connection observed at two nodes is one connection whichever files hold its observations; input
 * that goes back in time further than the de-duplication window is counted and reported.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateDemo } from '../../src/generate/demo.ts';
import { formatIngestStats, readFlows } from '../../src/flows/reader.ts';
import type { Flow } from '../../src/flows/types.ts';
import { buildReport } from '../../src/policy/report.ts';
import { runPipeline } from '../../src/pipeline.ts';
import { snapshotFromObjects } from '../../src/model/snapshot.ts';

const dir = mkdtempSync(join(tmpdir(), 'microseg-merge-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, lines: readonly string[]): string {
  const p = join(dir, name);
  writeFileSync(p, lines.map((l) => l + '\n').join(''));
  return p;
}

const T0 = Date.UTC(2026, 2, 2, 10, 0, 0);

/** A Hubble line: `frontend` (10.0.0.1) connecting to `postgres-0` (10.0.0.2) on 5432. */
function line(at: number, node: string, verdict: 'FORWARDED' | 'DROPPED', sport = 40000): string {
  return JSON.stringify({
    flow: {
      time: new Date(T0 + at).toISOString(),
      verdict,
      ...(verdict === 'DROPPED' ? { drop_reason_desc: 'POLICY_DENIED' } : {}),
      IP: { source: '10.0.0.1', destination: '10.0.0.2', ipVersion: 'IPv4' },
      l4: { TCP: { source_port: sport, destination_port: 5432, flags: { SYN: true } } },
      source: { namespace: 'shop', pod_name: 'frontend-1' },
      destination: { namespace: 'data', pod_name: 'postgres-0' },
      Type: 'L3_L4',
      node_name: node,
      traffic_direction: node === 'a' ? 'EGRESS' : 'INGRESS',
      is_reply: false,
    },
    node_name: node,
  });
}

/** What a flow list says, independent of its order. */
function summary(flows: readonly Flow[]): string[] {
  return flows
    .map((f) =>
      [f.time, f.protocol, f.src.ip ?? f.src.pod, f.srcPort, f.dst.ip ?? f.dst.pod, f.port, f.verdict].join(
        ' ',
      ),
    )
    .sort();
}

describe('several sources', () => {
  // The source node forwarded the connection; the destination's policy dropped it. Node a's file goes
  // on a minute later than node b's, so read one after the other the two observations were windows apart.
  const a = file('node-a.jsonl', [line(0, 'a', 'FORWARDED'), line(5 * 60_000, 'a', 'FORWARDED', 40001)]);
  const b = file('node-b.jsonl', [line(3, 'b', 'DROPPED')]);

  it('merge the observations of one connection at two nodes, in either order', async () => {
    for (const sources of [
      [a, b],
      [b, a],
    ]) {
      const reader = readFlows(sources);
      const flows = await reader.toArray();
      const first = flows.filter((f) => f.srcPort === 40000);
      expect(first.map((f) => f.verdict)).toEqual(['DROPPED']);
      expect(reader.stats.flows).toBe(2);
      expect(reader.stats.duplicates).toBe(1);
      expect(reader.stats.lateObservations).toBe(0);
    }
  });

  it('merge what comes out of time order in one stream into the connection emitted before it', async () => {
    // Concatenated: node b's drop comes after node a's line five minutes later, which emitted the
    // connection as forwarded. The drop is handed on as replacing that verdict: one connection, dropped.
    const cat = file('cat.jsonl', [
      line(0, 'a', 'FORWARDED'),
      line(5 * 60_000, 'a', 'FORWARDED', 40001),
      line(3, 'b', 'DROPPED'),
    ]);
    const reader = readFlows(cat);
    const flows = await reader.toArray();
    expect(flows.filter((f) => f.srcPort === 40000).map((f) => [f.verdict, f.replaces])).toEqual([
      ['FORWARDED', undefined],
      ['DROPPED', 'FORWARDED'],
    ]);
    expect([reader.stats.duplicates, reader.stats.lateObservations]).toEqual([1, 0]);
  });

  it('count what comes out of time order in one stream beyond what is remembered, and say so', async () => {
    // With room for one connection, the one at 2 minutes pushes the first out of memory before the drop.
    const cat = file('cat-far.jsonl', [
      line(0, 'a', 'FORWARDED'),
      line(2 * 60_000, 'a', 'FORWARDED', 40002),
      line(5 * 60_000, 'a', 'FORWARDED', 40001),
      line(3, 'b', 'DROPPED'),
    ]);
    const reader = readFlows(cat, { dedup: { maxEntries: 1 } });
    const flows = await reader.toArray();
    // Too late to be merged: the connection is two records, one of them forwarded.
    expect(
      flows
        .filter((f) => f.srcPort === 40000)
        .map((f) => f.verdict)
        .sort(),
    ).toEqual(['DROPPED', 'FORWARDED']);
    expect(reader.stats.lateObservations).toBe(1);
    expect(formatIngestStats(reader.stats)).toContain(
      'out of time order: 1 observation(s) came after later ones by more than the de-duplication window',
    );
    const report = buildReport(
      await runPipeline(snapshotFromObjects(generateDemo().objects, 'demo'), flows),
      reader.stats,
      undefined,
    ) as { inputs: { lateObservations: number }; warnings: string[] };
    expect(report.inputs.lateObservations).toBe(1);
    expect(report.warnings).toContain(
      "1 observation(s) came out of time order, too late to be merged with their connection: connections may count twice, and one dropped at a node may look allowed (give each node's file as its own --flows, or sort the lines by time)",
    );
  });

  it("give the demo's flows split by node what the one stream gives", async () => {
    const demo = generateDemo();
    const byNode = new Map<string, string[]>();
    for (const l of demo.lines) {
      const node = (JSON.parse(l) as { node_name?: string }).node_name ?? '';
      byNode.set(node, [...(byNode.get(node) ?? []), l]);
    }
    expect(byNode.size).toBeGreaterThan(2);
    const one = readFlows(file('demo.jsonl', demo.lines));
    const whole = summary(await one.toArray());
    const files = [...byNode].map(([node, lines], i) => file(`demo-${i}-${node}.jsonl`, lines));
    const snapshot = snapshotFromObjects(demo.objects, 'demo');
    const reports: string[] = [];
    for (const sources of [files, [...files].reverse()]) {
      const reader = readFlows(sources);
      const flows = await reader.toArray();
      expect(summary(flows)).toEqual(whole);
      expect(reader.stats.flows).toBe(one.stats.flows);
      expect(reader.stats.duplicates).toBe(one.stats.duplicates);
      expect(reader.stats.lateObservations).toBe(0);
      const report = buildReport(await runPipeline(snapshot, flows), undefined, undefined);
      reports.push(JSON.stringify(report));
    }
    // Segments and policies do not depend on the order the files are given in.
    expect(reports[1]).toBe(reports[0]);
  });
});

describe('several sources, stopped early', () => {
  const openFiles = () => readdirSync('/proc/self/fd').length;
  const lines = Array.from({ length: 3000 }, (_, i) => line(i * 1000, 'a', 'FORWARDED', 10000 + i));
  const big = [file('big-a.jsonl', lines), file('big-b.jsonl', lines), file('big-c.jsonl', lines)];

  it('leave no source open when the caller stops after the first batch', async () => {
    const before = openFiles();
    const reader = readFlows(big, { blockSize: 4096 });
    let batches = 0;
    for await (const batch of reader.batches()) {
      expect(batch.length).toBeGreaterThan(0);
      // The first connections come out long before the sources end: all three are open.
      expect(openFiles()).toBeGreaterThanOrEqual(before + 3);
      if (++batches === 1) break;
    }
    expect(batches).toBe(1);
    expect(openFiles()).toBe(before);
  });

  it('name a source that cannot be read, and leave the others closed', async () => {
    const before = openFiles();
    const missing = join(dir, 'no-such-node.jsonl');
    await expect(readFlows([big[0]!, missing, big[1]!]).toArray()).rejects.toThrow(missing);
    expect(openFiles()).toBe(before);
  });
});
