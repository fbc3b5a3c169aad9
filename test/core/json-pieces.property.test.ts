import fc from 'fast-check';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeFiles } from '../../src/cli/commands/recommend.ts';
import { JsonArrayOf, PolicyFiles, stableJson, stableJsonPieces } from '../../src/policy/render.ts';

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

  it('writes a JsonArrayOf as the array of its items, made one at a time within its depth', () => {
    fc.assert(
      fc.property(
        fc.array(value, { maxLength: 5 }),
        value,
        fc.integer({ min: 0, max: 4 }),
        (items, other, depth) => {
          fc.pre(JSON.stringify(other) !== undefined);
          let made = 0;
          const lazy = new JsonArrayOf({
            *[Symbol.iterator]() {
              for (const item of items) {
                made++;
                yield item;
              }
            },
          });
          const pieces = stableJsonPieces({ first: other, items: lazy, last: [lazy] }, depth);
          expect([...pieces].join('')).toBe(stableJson({ first: other, items, last: [items] }));
          expect(made).toBe(2 * items.length);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('makes each item of a JsonArrayOf only when it comes to be written', () => {
    let made = 0;
    const lazy = new JsonArrayOf({
      *[Symbol.iterator]() {
        for (let i = 0; i < 1000; i++) {
          made++;
          yield { i };
        }
      },
    });
    let most = 0;
    for (const piece of stableJsonPieces({ items: lazy }, 2)) {
      const i = /"i": (\d+)/.exec(piece)?.[1];
      if (i !== undefined) most = Math.max(most, made - Number(i));
    }
    expect(made).toBe(1000);
    expect(most).toBe(1);
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
