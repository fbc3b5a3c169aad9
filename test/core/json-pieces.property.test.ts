import fc from 'fast-check';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeFiles } from '../../src/cli/commands/recommend.ts';
import { PolicyFiles, stableJson, stableJsonPieces } from '../../src/policy/render.ts';

const dir = mkdtempSync(join(tmpdir(), 'microseg-json-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// JSON-like values with what JSON.stringify treats specially: undefined (left out of objects, null in
// arrays), functions, dates (toJSON), non-finite numbers, empty containers, strings needing escapes.
const { value } = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.oneof(
      fc.string(),
      fc.constantFrom('', 'line\nbreak', 'tab\t', 'quote"', 'ü', '\u2028'),
      fc.integer(),
      fc.double(),
      fc.boolean(),
      fc.constant(null),
      fc.constant(undefined),
      fc.constant(() => 1),
      fc.constant(new Date(0)),
    ),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.string({ maxLength: 6 }), tie('value'), { maxKeys: 4 }),
  ),
}));

describe('stableJsonPieces', () => {
  it('joins to stableJson, at every depth', () => {
    fc.assert(
      fc.property(value, fc.integer({ min: 0, max: 5 }), (v, depth) => {
        fc.pre(JSON.stringify(v) !== undefined);
        expect([...stableJsonPieces(v, depth)].join('')).toBe(stableJson(v));
      }),
      { numRuns: 3000 },
    );
  });

  it('hands a large array over in pieces, and writeFiles writes them whole', async () => {
    const report = {
      edges: Array.from({ length: 40_000 }, (_, i) => ({ id: `e${i}`, count: i, seen: [i, i + 1] })),
    };
    const pieces = [...stableJsonPieces(report)];
    expect(pieces.length).toBeGreaterThan(40_000);
    const expected = stableJson(report);
    expect(expected.length).toBeGreaterThan(3 << 20); // several of writeFiles' 1 MiB batches
    const files = new PolicyFiles([], new Map([['report.json', () => stableJsonPieces(report)]]));
    await writeFiles(join(dir, 'out'), files);
    expect(readFileSync(join(dir, 'out', 'report.json'), 'utf8')).toBe(expected);
    expect(files.get('report.json')).toBe(expected);
  });
});
