/**
 * The order of the input lines does not change the policies, as far as the de-duplicator's window
 * allows (docs/architecture.md, "Order of the input"): a connection dropped at one node and forwarded
 * at another stays dropped when its forwarded observation comes late, after its record was emitted.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recommend } from '../../src/cli/commands/recommend.ts';
import { readFlows } from '../../src/flows/reader.ts';
import { generateDemo } from '../../src/generate/demo.ts';
import { Rng } from '../../src/generate/prng.ts';
import { writeLines } from '../../src/generate/write.ts';
import { snapshotFromObjects } from '../../src/model/snapshot.ts';

let dir: string;
let runs = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'microseg-order-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const demo = generateDemo();
const DENIED = 'shop/Deployment/frontend->data/StatefulSet/postgres:5432/TCP';

/** The policy files recommend writes for the demo's snapshot and these lines, and what it found. */
async function run(lines: string[]) {
  const path = join(dir, `flows-${runs++}.jsonl`);
  await writeLines(path, lines);
  const r = await recommend(snapshotFromObjects(demo.objects, 'cluster.json'), readFlows(path));
  const yaml = new Map([...r.files].filter(([name]) => name.endsWith('.yaml')));
  const denied = r.analysis.proposal.notExpressible.filter((n) => n.edge === DENIED).map((n) => n.reason);
  // The evidence of each edge: its connections by verdict.
  const edges = r.analysis.graph.edges.map((e) => ({ id: e.id, count: e.count, verdicts: e.verdicts }));
  const edge = edges.find((e) => e.id === DENIED);
  return { yaml, denied, edges, edge, stats: r.ingest! };
}

/** The lines shuffled (Fisher-Yates) with a seeded generator. */
function shuffled(lines: readonly string[], seed: number): string[] {
  const rng = new Rng(seed);
  const out = [...lines];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

const time = (line: string) => (JSON.parse(line) as { time: string }).time;

describe('recommend on the same lines in another order', () => {
  it('keeps a connection dropped at its destination dropped when its lines of either node come late', async () => {
    // frontend → postgres:5432, client port 60029, tried three times in three seconds: each try forwarded
    // at the frontend's node (egress, overlay) and dropped by policy at postgres' (a policy-verdict and a
    // drop event).
    const attempt = demo.lines.filter((l) => l.includes('"source_port":60029'));
    const forwarded = attempt.filter((l) => l.includes('"verdict":"FORWARDED"'));
    const dropped = attempt.filter((l) => l.includes('"verdict":"DROPPED"'));
    expect([forwarded.length, dropped.length]).toEqual([6, 6]);
    // An allowed connection two minutes later, which moves the de-duplicator on by four windows.
    const later = demo.lines.find(
      (l) => time(l) > '2026-03-02T10:02:00' && l.includes('"verdict":"FORWARDED"'),
    )!;
    const inOrder = await run([...forwarded, ...dropped, later]);
    expect(inOrder.denied).toEqual([
      'every observation was dropped: not allowed (--include-dropped, or policy.includeDropped of a Segmentation, allows it)',
    ]);
    expect(inOrder.edge).toEqual({ id: DENIED, count: 1, verdicts: { DROPPED: 1 } });
    // The connection's record is emitted when `later` comes; the other node's lines come after it, late:
    // the forwarded ones after the drop, or the drops after the forwarded ones.
    for (const lines of [
      [...dropped, later, ...forwarded],
      [...forwarded, later, ...dropped],
    ]) {
      const late = await run(lines);
      expect(late.denied).toEqual(inOrder.denied);
      expect(late.edges).toEqual(inOrder.edges);
      expect(late.yaml).toEqual(inOrder.yaml);
      expect(late.stats.lateObservations).toBe(0);
    }
  });

  it("gives the demo's lines shuffled the policy files and edges of the lines in time order", async () => {
    const inOrder = await run(demo.lines);
    // Seeds whose shuffles allowed frontend → postgres when the de-duplicator neither remembered the
    // connections it had emitted nor kept lines out of time order apart: 39 (a forwarded line after its
    // connection was emitted dropped), 11 and 13 (a drop after its connection was emitted forwarded). In
    // all three, blackbox-exporter's ICMP probes of frontend (one key for every probe) were 3 to 5
    // connections instead of 12: a late line met one of another time under the same key.
    for (const seed of [11, 13, 39]) {
      const mixed = await run(shuffled(demo.lines, seed));
      // Every connection emitted is remembered: none may count twice, and there is nothing to warn of.
      expect(mixed.stats.lateObservations).toBe(0);
      expect(mixed.stats.flows).toBe(inOrder.stats.flows);
      expect(mixed.denied).toEqual(inOrder.denied);
      expect(mixed.edges).toEqual(inOrder.edges);
      expect([...mixed.yaml.keys()]).toEqual([...inOrder.yaml.keys()]);
      for (const [name, text] of inOrder.yaml)
        expect(mixed.yaml.get(name), `${name}, seed ${seed}`).toBe(text);
    }
  });
});
