import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseHubbleLine, parseHubbleLineAt, scanHubbleLine } from '../../src/flows/hubble-scan.ts';
import { parseHubbleLineSlow } from '../../src/flows/hubble.ts';
import { label, line, mutation, render, sampleLines, shuffleKeys, text } from './hubble-lines.ts';

// The fast scanner must give exactly what JSON.parse + normalisation gives, for every line: valid
// ones (where it should take the fast path) and invalid or unusual ones (where it must give up).

describe('scanner equivalence (fast-check)', () => {
  it('real sample lines: shuffled key order and text mutations give the JSON.parse result', () => {
    fc.assert(
      fc.property(fc.constantFrom(...sampleLines), fc.nat(), mutation, (l, seed, mutate) => {
        const text = mutate(JSON.stringify(shuffleKeys(JSON.parse(l), { s: seed })));
        const expected = parseHubbleLineSlow(text);
        expect(parseHubbleLine(text)).toEqual(expected);
        const block = `{"x":[1\n${text}\n"}]}\n`;
        expect(parseHubbleLineAt(block, 8, 8 + text.length)).toEqual(expected);
      }),
      { numRuns: 1500 },
    );
  });

  it('generated lines: random fields, orders, omissions, escapes, unicode, IPv6, enums as numbers', () => {
    let fast = 0;
    let total = 0;
    fc.assert(
      fc.property(line, (r) => {
        const text = render(r);
        total++;
        if (scanHubbleLine(text) !== undefined) fast++;
        const expected = parseHubbleLineSlow(text);
        expect(parseHubbleLine(text)).toEqual(expected);
        // In place inside a block of lines, as the reader scans: the neighbours must not leak in.
        const block = `{"flow":{"time":"x"\n${text}\n"IP"}}\n`;
        expect(parseHubbleLineAt(block, 20, 20 + text.length)).toEqual(expected);
      }),
      { numRuns: 2000 },
    );
    // The property is not vacuous: most lines went through the scanner itself.
    expect(fast / total).toBeGreaterThan(0.15);
  });

  it('remembered endpoint texts: unusual characters elsewhere in the line, or inside a repeat, still fall back', () => {
    const src = sampleLines
      .map((l) => JSON.parse(l) as { flow?: { source?: unknown } })
      .find((o) => o.flow?.source);
    expect(src).toBeDefined();
    const base = JSON.stringify(src);
    const endpointText = JSON.stringify(src!.flow!.source);
    const at = base.indexOf(endpointText);
    expect(at).toBeGreaterThan(0);
    fc.assert(
      fc.property(
        fc.nat(),
        fc.constantFrom('\u0001', '\t', '\\', '\u001f', '\r'),
        fc.boolean(),
        (n, c, inside) => {
          // Scan the clean line first so that its endpoint text is remembered.
          expect(parseHubbleLine(base)).toEqual(parseHubbleLineSlow(base));
          const i = inside ? at + 1 + (n % (endpointText.length - 2)) : n % (base.length + 1);
          const text = base.slice(0, i) + c + base.slice(i);
          const expected = parseHubbleLineSlow(text);
          expect(parseHubbleLine(text)).toEqual(expected);
          const block = `${base}\n${text}\n`;
          expect(parseHubbleLineAt(block, base.length + 1, base.length + 1 + text.length)).toEqual(expected);
          // A dirty endpoint text is never remembered: the clean line after it is unaffected.
          expect(parseHubbleLine(base)).toEqual(parseHubbleLineSlow(base));
        },
      ),
      { numRuns: 400 },
    );
  });

  it('repeated label arrays in new endpoint texts, clean or altered, give the JSON.parse result', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(label, fc.constantFrom('k8s:a]b=c', 'k8s:x=[y]')), { maxLength: 6 }),
        fc.array(text, { minLength: 3, maxLength: 3 }),
        fc.nat(),
        fc.constantFrom('\u0001', '\t', '\\', ' ', ']', '"', 'x'),
        fc.boolean(),
        (labels, pods, n, c, alter) => {
          const lineFor = (pod: string) =>
            JSON.stringify({
              flow: {
                time: '2026-01-01T00:00:00Z',
                IP: { source: '10.0.0.1', destination: '10.0.0.2' },
                l4: { TCP: { source_port: 40000, destination_port: 80 } },
                source: { identity: 300, namespace: 'shop', labels, pod_name: pod },
                destination: { identity: 301, labels },
              },
            });
          // The first line's endpoints are remembered; the others repeat its label arrays in other
          // endpoint texts.
          for (const pod of pods) {
            let text = lineFor(pod);
            if (alter) {
              const at = text.indexOf('"labels":[') + 9;
              const i = at + (n % Math.max(1, JSON.stringify(labels).length));
              text = text.slice(0, i) + c + text.slice(i);
            }
            const expected = parseHubbleLineSlow(text);
            expect(parseHubbleLine(text)).toEqual(expected);
            const block = `${lineFor(pods[0]!)}\n${text}\n`;
            const from = block.indexOf('\n') + 1;
            expect(parseHubbleLineAt(block, from, from + text.length)).toEqual(expected);
          }
          // An altered endpoint text is never remembered: the clean line still gives the JSON.parse result.
          const clean = lineFor(pods[1]!);
          expect(parseHubbleLine(clean)).toEqual(parseHubbleLineSlow(clean));
        },
      ),
      { numRuns: 600 },
    );
  });

  it('endpoint records reused across lines equal the JSON.parse result and are frozen', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(3), fc.nat(3), fc.boolean()), { minLength: 2, maxLength: 12 }),
        (picks) => {
          for (const [pod, ip, names] of picks) {
            const text = JSON.stringify({
              flow: {
                time: '2026-01-01T00:00:00Z',
                IP: { source: `10.0.0.${ip}`, destination: '10.0.1.1' },
                l4: { TCP: { source_port: 40000, destination_port: 80 } },
                source: {
                  identity: 300 + pod,
                  namespace: 'shop',
                  labels: ['k8s:app=web'],
                  pod_name: `web-${pod}`,
                  workloads: [{ name: 'web', kind: 'Deployment' }],
                },
                destination: { identity: 2, labels: ['reserved:world'] },
                ...(names ? { source_names: ['web.example.'] } : {}),
              },
            });
            const r = parseHubbleLine(text);
            expect(r).toEqual(parseHubbleLineSlow(text));
            if (r.kind === 'flow' && !names) {
              expect(Object.isFrozen(r.flow.src)).toBe(true);
              expect(Object.isFrozen(r.flow.src.labels)).toBe(true);
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
