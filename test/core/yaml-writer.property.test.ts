import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { YamlWriter } from '../../src/policy/render.ts';

const OPTIONS = { lineWidth: 0, sortMapEntries: false, aliasDuplicateObjects: false } as const;

// Strings the library quotes, escapes or writes in special forms, beside ordinary names and labels.
const awkward = fc.constantFrom(
  '',
  ' ',
  ' lead',
  'trail ',
  'a: b',
  'a:b',
  '- x',
  '-',
  '#c',
  'y #z',
  'true',
  'False',
  'null',
  '~',
  'yes',
  '123',
  '0x1F',
  '1e3',
  '.inf',
  '-.5',
  '0o17',
  '@at',
  '`tick',
  '!tag',
  '&anchor',
  '*alias',
  '%pct',
  '|',
  '>',
  "it's",
  'say "hi"',
  '[a]',
  '{b}',
  'x,y',
  '?',
  '? q',
  '---',
  '...x',
  '--- a',
  'ü',
  '日本',
  '\t',
  'tab\there',
  'back\\slash',
  '\u0000',
  '\u007f',
  'line\nbreak',
  'cr\rhere',
  'kubernetes.io/metadata.name',
  'app.kubernetes.io/part-of',
  '10.0.0.0/8',
  '2001:db8::/32',
  'TCP',
  'Ingress',
  '  ',
  '\u00a0',
  '\ufeff',
  '\ufeffbom',
  'nel\u0085',
  '\u2028',
  'ls\u2028ps\u2029',
  '\ud800',
  'lone\udc00',
  '\u001b',
  '.nan',
  '-.inf',
  '<<',
  '=',
  'on',
  '+1',
  '1_000',
  '1:20',
  '2001-12-14',
  '1e+21',
  '-0',
  '01',
  '4294967295',
  '9007199254740993',
  'x'.repeat(1100),
  // Around the 1024 characters above which the library writes a key in explicit form (`? `), plain
  // and quoted, and one quoted in the top map only.
  'x'.repeat(1024),
  'x'.repeat(1025),
  ' ' + 'x'.repeat(1021),
  ' ' + 'x'.repeat(1022),
  '---' + 'x'.repeat(1021),
);
const str = fc.oneof(
  awkward,
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'grapheme', maxLength: 6 }),
  fc.string({ unit: 'binary', maxLength: 8 }), // any code point, lone surrogates too
);
const scalar = fc.oneof(
  str,
  fc.integer({ min: -70000, max: 70000 }),
  fc.double({ noNaN: false }),
  fc.constantFrom(1e21, 1e-7, 5e-324, -0, 2 ** 53 + 2, -(2 ** 64), Number.MAX_VALUE),
  fc.boolean(),
  fc.constant(null),
);
/** A map's value, now and then undefined (which the library leaves out). */
const member = (v: fc.Arbitrary<unknown>) => fc.option(v, { nil: undefined, freq: 10 });
const { value } = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    scalar,
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(str, member(tie('value')), { maxKeys: 4 }),
  ),
}));

describe('YamlWriter', () => {
  it('writes what the yaml library writes, on random JSON-like values', () => {
    // One writer for all documents, so a cache that keeps a scalar's text from one document wrongly for
    // another shows. A failure's message gives fast-check's seed and path; `{ seed, numRuns: 2000 }`
    // replays the documents in order (with `path`, the ones before the failing one are skipped, and
    // with them what they left in the caches).
    const writer = new YamlWriter();
    let documents = 0;
    fc.assert(
      fc.property(
        fc.oneof(fc.dictionary(str, member(value), { maxKeys: 5 }), fc.array(value, { maxLength: 5 })),
        (v) => {
          documents++;
          expect(writer.document(v)).toBe(stringify(v, OPTIONS));
        },
      ),
      { numRuns: 2000 },
    );
    // Most documents took the direct path (the rest have line breaks, long keys, NaN, ...).
    expect(writer.fallbacks).toBeLessThan(documents / 2);
  });

  it('writes policy-shaped documents without the library', () => {
    const writer = new YamlWriter();
    const policy = {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'api', namespace: 'shop', labels: { 'app.kubernetes.io/managed-by': 'microseg' } },
      spec: {
        podSelector: { matchLabels: { app: 'api' } },
        policyTypes: ['Ingress', 'Egress'],
        ingress: [
          {
            from: [
              {
                namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'shop' } },
                podSelector: { matchLabels: { app: 'web' } },
              },
            ],
            ports: [{ protocol: 'TCP', port: 8080 }],
          },
        ],
        egress: [
          { to: [{ ipBlock: { cidr: '203.0.113.7/32' } }], ports: [{ protocol: 'TCP', port: 443 }] },
          {},
        ],
      },
    };
    expect(writer.document(policy)).toBe(stringify(policy, OPTIONS));
    expect(writer.document({ a: [[]], b: [{}], c: [[{}]], d: {}, e: [] })).toBe(
      'a:\n  - []\nb:\n  - {}\nc:\n  - - {}\nd: {}\ne: []\n',
    );
    expect(writer.document({ a: 0, b: -0, c: [0, -0] })).toBe(
      stringify({ a: 0, b: -0, c: [0, -0] }, OPTIONS),
    );
    // A key starting with a document marker is quoted in the top map only; the writer once reused the
    // top map's text below it (found by the property test, about once in 500,000 documents).
    expect(writer.document({ '---': { '---': 1, '...x': [{ '--- b': 2 }] } })).toBe(
      '"---":\n  ---: 1\n  ...x:\n    - --- b: 2\n',
    );
    expect(writer.document([{ '...': { '---': 1 } }, { '---': 1 }])).toBe(
      stringify([{ '...': { '---': 1 } }, { '---': 1 }], OPTIONS),
    );
    // Undefined values are left out, as the library leaves them out; a map of only those is `{}`.
    expect(writer.document({ a: undefined })).toBe('{}\n');
    expect(writer.document({ a: undefined, b: { c: undefined, d: 1 } })).toBe('b:\n  d: 1\n');
    expect(writer.fallbacks).toBe(0);
  });
});
