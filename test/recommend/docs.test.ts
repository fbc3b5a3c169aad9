/**
 * What the docs say about the files recommend writes stays what it writes: every label and annotation
 * key on the generated NetworkPolicies has its row in docs/crds.md, and README says what report.json's
 * `graph` holds.
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { recommend } from '../../src/cli/commands/recommend.ts';
import { readFlows } from '../../src/flows/reader.ts';
import { generateDemo } from '../../src/generate/demo.ts';
import { writeLines } from '../../src/generate/write.ts';
import { snapshotFromObjects } from '../../src/model/snapshot.ts';
import { VERIFY_EXTRA_KINDS } from '../../src/verify/load.ts';

const doc = (path: string) => readFile(new URL(`../../${path}`, import.meta.url), 'utf8');

async function demoResult() {
  const demo = generateDemo();
  const flows = join(await mkdtemp(join(tmpdir(), 'microseg-docs-')), 'flows.jsonl');
  await writeLines(flows, demo.lines);
  const snapshot = snapshotFromObjects(demo.objects, 'demo', { extraKinds: VERIFY_EXTRA_KINDS });
  return recommend(snapshot, readFlows(flows));
}

describe('the docs of what recommend writes', () => {
  it('docs/crds.md has a row for every label and annotation key of the generated policies', async () => {
    const { analysis } = await demoResult();
    const keys = new Set<string>();
    for (const p of analysis.proposal.policies)
      for (const k of [...Object.keys(p.metadata.labels ?? {}), ...Object.keys(p.metadata.annotations ?? {})])
        keys.add(k);
    expect([...keys].sort()).toEqual([
      'app.kubernetes.io/managed-by',
      'argocd.argoproj.io/sync-wave',
      'microseg.dev/external-names',
      'microseg.dev/purpose',
      'microseg.dev/segment',
      'microseg.dev/workload',
    ]);
    const crds = await doc('docs/crds.md');
    const section = crds.slice(crds.indexOf('### Labels and annotations of the generated NetworkPolicies'));
    for (const k of keys) expect(section, k).toContain(`\n| \`${k}\` |`);
  });

  it("README says what report.json's graph holds: counts, not the graph", async () => {
    const { report } = await demoResult();
    const graph = (report as { graph: Record<string, unknown> }).graph;
    expect(Object.keys(graph).sort()).toEqual(['edges', 'nodes', 'nodesByKind', 'workloads']);
    const readme = (await doc('README.md')).replace(/\s+/g, ' ');
    expect(readme).toContain(
      'the size of the graph (`graph`: its node and edge counts, nodes by kind and workloads; the graph itself is what `microseg graph` prints',
    );
  });
});
