/**
 * The blast radius the details panel shows: counts of workloads, a StatefulSet's pods counted once, as
 * `microseg blast-radius` counts them.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { blastRadiusViews } from '../../src/cli/commands/demo.ts';
import { recommend, writeFiles } from '../../src/cli/commands/recommend.ts';
import { captureIO, EXIT } from '../../src/cli/io.ts';
import { runCli } from '../../src/cli/main.ts';
import { readFlows } from '../../src/flows/reader.ts';
import { generateDemo } from '../../src/generate/demo.ts';
import { writeLines, writeObjectList } from '../../src/generate/write.ts';
import { snapshotFromObjects } from '../../src/model/snapshot.ts';
import { createApp } from '../../src/server/app.ts';
import { analysisSource } from '../../src/server/source.ts';
import type { BlastRadiusView } from '../../src/server/types.ts';
import { VERIFY_EXTRA_KINDS } from '../../src/verify/load.ts';
import { runPipeline } from '../../src/pipeline.ts';
import { fixtureFlows, fixtureSnapshot } from '../core/fixture.ts';
import { pod, ref } from '../core/workload-fixture.ts';
import { DB, FRONTEND } from './helpers.ts';

describe('blast radius of the details panel', () => {
  it('counts the workloads reached, not the classes of pods: each pod of a StatefulSet is one class', async () => {
    // db gets a second pod: each has its own pod-name label, so the engine tells them apart.
    const db1 = pod(
      'shop',
      'db-1',
      ref('apps/v1', 'StatefulSet', 'db', { uid: 'uid-db' }),
      { app: 'db', 'statefulset.kubernetes.io/pod-name': 'db-1', 'controller-revision-hash': 'db-5f' },
      '10.244.1.31',
      5432,
    );
    const snapshot = fixtureSnapshot(db1);
    const analysis = await runPipeline(snapshot, fixtureFlows());
    const br = blastRadiusViews(snapshot, analysis)(FRONTEND)!;
    // Before the proposal, every workload of the cluster but the host-network pod reaches frontend; the
    // examples name db's two pods apart.
    expect(br.before.fromExamples).toEqual([
      'kube-system/Deployment/coredns (8080/TCP)',
      'shop/Deployment/cart (8080/TCP)',
      `${DB} (db-0) (8080/TCP)`,
      `${DB} (db-1) (8080/TCP)`,
      `${FRONTEND} (8080/TCP)`,
    ]);
    // Was 5: db counted once per pod.
    expect(br.before.reachableFrom).toBe(4);
    expect(br.before.canReach).toBe(br.before.reachExamples!.length);
  });
});

describe('blast radius of the demo: the page and `microseg blast-radius` count alike', () => {
  it("gives checkout's counts of workloads on the page's API and the command line, a StatefulSet once", async () => {
    // The demo's inputs and proposal, written as `microseg demo` writes them, then read as a user would.
    const dir = await mkdtemp(join(tmpdir(), 'microseg-blast-'));
    const demo = generateDemo();
    const cluster = join(dir, 'cluster.json');
    const flows = join(dir, 'flows.jsonl');
    await writeObjectList(cluster, demo.objects);
    await writeLines(flows, demo.lines);
    const snapshot = snapshotFromObjects(demo.objects, cluster, { extraKinds: VERIFY_EXTRA_KINDS });
    const result = await recommend(snapshot, readFlows(flows));
    const policies = join(dir, 'policies');
    await writeFiles(policies, result.files);
    const { analysis } = result;

    const checkout = 'shop/Deployment/checkout';
    const app = createApp(analysisSource(analysis, { blastRadius: blastRadiusViews(snapshot, analysis) }));
    const page = (
      (await request(app).get('/api/v1/nodes').query({ id: checkout }).expect(200)).body as {
        blastRadius: BlastRadiusView;
      }
    ).blastRadius;

    const io = captureIO();
    const args = ['blast-radius', '--cluster', cluster, '--workload', checkout, '--proposal', policies];
    expect(await runCli([...args, '--output', 'json'], io)).toBe(EXIT.ok);
    type Side = {
      canReach: number;
      reachableFrom: number;
      reaches: { to: string }[];
      reachedFrom: { from: string }[];
    };
    const json = JSON.parse(io.stdout) as { before: Side; after: Side };
    const counts = (s: { canReach: number; reachableFrom: number }) => [s.canReach, s.reachableFrom];
    expect(counts(json.before)).toEqual(counts(page.before));
    expect(counts(json.after)).toEqual(counts(page.after));

    // kafka (three pods, each its own class) and postgres (two) are reached before the proposal: named
    // apart in the command's list and in the page's examples, counted once in both counts.
    const kafka = ['kafka-0', 'kafka-1', 'kafka-2'].map((p) => `data/StatefulSet/kafka (${p})`);
    const names = json.before.reaches.map((r) => r.to);
    expect(names.filter((n) => n.startsWith('data/StatefulSet/kafka'))).toEqual(kafka);
    expect(page.before.reachExamples!.filter((e) => e.startsWith('data/StatefulSet/kafka'))).toEqual(
      kafka.map((k) => `${k} (9092/TCP, 9308/TCP)`),
    );
    // A class named with its pods counts as its workload; kafka's three and postgres's two count twice.
    const workloads = (list: string[]) => new Set(list.map((n) => n.replace(/ \([^()]*\)$/, ''))).size;
    expect(json.before.canReach).toBe(workloads(names));
    expect(json.before.canReach).toBe(names.length - 3);
    expect(json.before.reachableFrom).toBe(workloads(json.before.reachedFrom.map((r) => r.from)));

    // The text says the same counts.
    const text = captureIO();
    expect(await runCli(args, text)).toBe(EXIT.ok);
    expect(text.stdout).toContain(
      `\n  reaches (${page.before.canReach} workloads; pod classes: ${json.before.reaches.length}):\n`,
    );
    expect(text.stdout).toContain(
      `\n  reached from (${page.after.reachableFrom} workloads; pod classes: ${json.after.reachedFrom.length}):\n`,
    );
    // docs/semantics.md quotes that title of checkout's list.
    const doc = readFileSync(new URL('../../docs/semantics.md', import.meta.url), 'utf8').replace(
      /\s+/g,
      ' ',
    );
    expect(doc).toContain(
      `the demo's checkout's current policies \`reaches (${json.before.canReach} workloads; pod classes: ${names.length})\``,
    );
  });
});
