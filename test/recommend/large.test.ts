import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSnapshotFiles } from '../../src/cli/inputs.ts';
import { captureIO } from '../../src/cli/io.ts';
import { runCli } from '../../src/cli/main.ts';
import { recommend } from '../../src/cli/commands/recommend.ts';
import { readFlows } from '../../src/flows/reader.ts';
import { VERIFY_EXTRA_KINDS } from '../../src/verify/load.ts';

const root = mkdtempSync(join(tmpdir(), 'microseg-large-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('recommend on a generated 150-workload cluster', () => {
  it('gives the same files from the compacted, streamed snapshot as from every field, and a short summary', async () => {
    const gen = captureIO();
    const args = ['generate', '--scenario', 'large', '--workloads', '150', '--flows', '4000', '--seed', '3'];
    expect(await runCli([...args, '--out', root], gen)).toBe(0);
    const cluster = join(root, 'cluster.json');
    const flows = join(root, 'flows.jsonl');

    const opts = { extraKinds: VERIFY_EXTRA_KINDS };
    const compact = await recommend(await loadSnapshotFiles([cluster], opts), readFlows([flows]));
    const full = await recommend(
      await loadSnapshotFiles([cluster], { ...opts, full: true }),
      readFlows([flows]),
    );
    expect(compact.files.names()).toEqual(full.files.names());
    expect([...compact.files].map(([name]) => name)).toEqual(compact.files.names());
    for (const [name, text] of compact.files) expect(text, name).toBe(full.files.get(name));
    expect(compact.proof.blocked).toEqual([]);

    const io = captureIO();
    const out = join(root, 'policies');
    expect(await runCli(['recommend', '--flows', flows, '--cluster', cluster, '--out', out], io)).toBe(0);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as {
      segments: { list: { id: string; members: string[] }[] };
    };
    const segs = report.segments.list;
    expect(segs.length).toBeGreaterThan(8);
    const line = io.stdout.split('\n').find((l) => l.startsWith('segments: '))!;
    const largest = [...segs]
      .sort((a, b) => b.members.length - a.members.length || a.id.localeCompare(b.id))
      .slice(0, 8)
      .map((s) => `${s.id} (${s.members.length})`);
    expect(line).toBe(
      `segments: ${segs.length} (modularity ${line.split('modularity ')[1]!.slice(0, 4)}): ` +
        `${largest.join(', ')}, and ${segs.length - 8} more (largest first; all in report.json)`,
    );
  });
});
