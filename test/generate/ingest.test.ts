import { describe, expect, it } from 'vitest';
import { generateDemo } from '../../src/generate/demo.ts';
import { generateFlowLines, largeTopology } from '../../src/generate/large.ts';
import { parseHubbleLine } from '../../src/flows/hubble-scan.ts';

/** The generated lines go through the project's own Hubble scanner without a single rejection. */
describe('generated Hubble lines and the ingest scanner', () => {
  const count = (lines: Iterable<string>) => {
    const kinds: Record<string, number> = {};
    const bad: string[] = [];
    for (const l of lines) {
      const r = parseHubbleLine(l);
      kinds[r.kind] = (kinds[r.kind] ?? 0) + 1;
      if (r.kind === 'bad') bad.push(`${r.error.message}: ${l.slice(0, 200)}`);
    }
    return { kinds, bad };
  };

  it('accepts every demo line; relay lines are events', () => {
    const demo = generateDemo();
    const { kinds, bad } = count(demo.lines);
    expect(bad).toEqual([]);
    const relay = demo.lines.filter(
      (l) => l.startsWith('{"node_status"') || l.startsWith('{"lost_events"'),
    ).length;
    expect(kinds.event).toBe(relay);
    expect(kinds.flow).toBeGreaterThan(demo.lines.length * 0.9);
  });

  it('accepts every large-scenario line', () => {
    const { kinds, bad } = count(
      generateFlowLines({ topology: largeTopology({ workloads: 200, seed: 4 }), count: 10_000 }),
    );
    expect(bad).toEqual([]);
    expect(kinds.flow).toBeGreaterThan(9_500);
  });
});
