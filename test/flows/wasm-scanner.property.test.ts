import fc from 'fast-check';
import { beforeEach, describe, expect, it } from 'vitest';
import { scanHubbleLine } from '../../src/flows/hubble-scan.ts';
import {
  plainService,
  resetWasmScanner,
  scanHubbleBlock,
  setWasmArenaLimit,
  wasmArenaBytes,
} from '../../src/flows/hubble-wasm.ts';
import type { HubbleResult } from '../../src/flows/hubble.ts';
import { parseHubbleLineSlow } from '../../src/flows/hubble.ts';
import { line, mutation, render, sampleLines, shuffleKeys } from './hubble-lines.ts';

// The WebAssembly scanner works on the raw bytes of whole blocks of lines. For every line it either
// gives exactly what JSON.parse + normalisation gives, or undefined (the caller then takes that path).

interface Scanned {
  text: string;
  result: HubbleResult | undefined;
}

/** Lines as the reader would see them: no newline inside, and the same text after UTF-8 encoding. */
const asRead = (l: string) => !l.includes('\n') && Buffer.from(l, 'utf8').toString('utf8') === l;

/** Scans the lines as one block (each ended by '\n'), returning each line's text and result. */
function scanLines(lines: readonly string[]): Scanned[] {
  const bytes = Buffer.from(lines.map((l) => l + '\n').join(''), 'utf8');
  const out: Scanned[] = [];
  scanHubbleBlock(bytes, 0, bytes.length, (result, start, end) => {
    out.push({ text: bytes.toString('utf8', start, end), result });
  });
  return out;
}

/** Asserts every fast result equals the JSON.parse path's; returns how many were fast. */
function check(lines: readonly string[]): number {
  const scanned = scanLines(lines);
  expect(scanned.map((s) => s.text)).toEqual(lines);
  let fast = 0;
  for (const s of scanned) {
    if (s.result === undefined) continue;
    fast++;
    expect(s.result).toEqual(parseHubbleLineSlow(s.text));
    // Same key order, so JSON output is byte-identical whichever path built a record.
    expect(JSON.stringify(s.result)).toBe(JSON.stringify(parseHubbleLineSlow(s.text)));
  }
  return fast;
}

beforeEach(() => resetWasmScanner());

describe('WebAssembly scanner equivalence (fast-check)', () => {
  it('real sample lines: shuffled key order and text mutations', () => {
    let fast = 0;
    let total = 0;
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom(...sampleLines), fc.nat(), mutation), {
          minLength: 1,
          maxLength: 6,
        }),
        (items) => {
          const lines = items
            .map(([l, seed, mutate]) => mutate(JSON.stringify(shuffleKeys(JSON.parse(l), { s: seed }))))
            .filter(asRead);
          total += lines.length;
          fast += check(lines);
        },
      ),
      { numRuns: 1500 },
    );
    expect(fast / total).toBeGreaterThan(0.3);
  });

  it('generated lines: random fields, orders, omissions, escapes, unicode, IPv6, enums as numbers', () => {
    let fast = 0;
    let plain = 0;
    fc.assert(
      fc.property(fc.array(line, { minLength: 1, maxLength: 8 }), (records) => {
        const lines = records.map(render).filter(asRead);
        fast += check(lines);
        // ASCII lines the string scanner takes: the byte scanner must take them too.
        for (const l of lines) if (/^[\x20-\x7e]*$/.test(l) && scanHubbleLine(l) !== undefined) plain++;
      }),
      { numRuns: 1500 },
    );
    expect(plain).toBeGreaterThan(100);
    expect(fast).toBeGreaterThanOrEqual(plain);
  });

  it('remembered values: a repeat altered inside an endpoint, service or name list is not taken for it', () => {
    const base = sampleLines.find((l) => l.includes('"destination":{"ID"'))!;
    const parsed = JSON.parse(base) as { flow: Record<string, unknown> };
    parsed.flow.destination_service = { name: 'reviews', namespace: 'bookinfo' };
    parsed.flow.destination_names = ['reviews.bookinfo.svc.cluster.local.'];
    const clean = JSON.stringify(parsed);
    const spans = ['"destination":{', '"destination_service":{', '"destination_names":['].map((k) => {
      const from = clean.indexOf(k) + k.length - 1;
      return { from, to: clean.indexOf(k === '"destination_names":[' ? ']' : '}', from) + 1 };
    });
    let fast = 0;
    fc.assert(
      fc.property(
        fc.constantFrom(...spans),
        fc.nat(),
        fc.constantFrom('\u0001', '\t', '\\', ' ', 'x', '"', '}', ',', '0', 'é', ']'),
        fc.boolean(),
        (span, n, c, replace) => {
          const i = span.from + 1 + (n % (span.to - span.from - 1));
          const altered = clean.slice(0, i) + c + clean.slice(replace ? i + 1 : i);
          fast += check([clean, altered, clean]);
        },
      ),
      { numRuns: 1500 },
    );
    expect(fast).toBeGreaterThan(1500);
  });

  it('an endpoint with and without a leading ID member is remembered once, and only a valid one', () => {
    const base = sampleLines.find((l) => l.includes('"destination":{"ID"'))!;
    const at = base.indexOf('"destination":{"ID"') + '"destination":{'.length;
    const rest = base.slice(base.indexOf(',', at) + 1);
    // What may stand between `{` and the rest of the endpoint: valid IDs, none, and near misses.
    const heads = [
      '',
      '"ID":0,',
      '"ID":7,',
      '"ID":123456789012345678901234,',
      '"ID":007,',
      '"ID":-1,',
      '"ID":-0,',
      '"ID":-01,',
      '"ID":--1,',
      '"ID":-,',
      '"ID":1.5,',
      '"ID":1e3,',
      '"ID":"7",',
      '"ID":7 ,',
      '"ID": 7,',
      '"ID":7,"ID":8,',
      '"ID":,',
      '"ID":7,,',
      '"id":7,',
    ];
    const lineWith = (head: string, tail: string) => base.slice(0, at) + head + tail;
    // The endpoint's remaining members, or none: `{"ID":7,}` is not JSON, `{}` is.
    const tails = [rest, rest.slice(rest.indexOf('}'))];
    let fast = 0;
    let sameEndpoint = 0;
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom(...heads), fc.constantFrom(...tails)), {
          minLength: 2,
          maxLength: 6,
        }),
        (picks) => {
          const lines = picks.map(([h, t]) => lineWith(h, t));
          fast += check(lines);
          // Both texts of the endpoint in one sequence: the case the shared memory is for.
          const has = (h: string) => picks.some(([ph, pt]) => ph === h && pt === tails[0]);
          if (has('') && (has('"ID":7,') || has('"ID":0,'))) sameEndpoint++;
        },
      ),
      {
        numRuns: 800,
        // The case the shared memory is for, in every run: random picks alone gave it 4 times in 800
        // with one seed of 400 tried (and the count below then failed).
        examples: [
          [
            [
              ['', tails[0]!],
              ['"ID":7,', tails[0]!],
            ],
          ],
          [
            [
              ['"ID":0,', tails[0]!],
              ['', tails[0]!],
              ['"ID":7,', tails[0]!],
            ],
          ],
        ],
      },
    );
    expect(fast).toBeGreaterThan(800);
    expect(sameEndpoint).toBeGreaterThanOrEqual(2);
    // The sample's two texts of one endpoint give one record for the endpoint fields: the second line
    // takes the remembered endpoint (same frozen labels array, as a repeat of one text does).
    resetWasmScanner();
    const [a, b] = scanLines([lineWith('"ID":7,', tails[0]!), lineWith('', tails[0]!)]);
    expect(a!.result?.kind).toBe('flow');
    expect(b!.result).toEqual(parseHubbleLineSlow(b!.text));
    const labels = (r: HubbleResult | undefined) => (r?.kind === 'flow' ? r.flow.dst.labels : undefined);
    expect(labels(a!.result)).toBeDefined();
    expect(labels(b!.result)).toBe(labels(a!.result));
  });

  it("endpoints that share a labels array hold its text once: the array's entry, not each endpoint", () => {
    const base = sampleLines.find((l) => l.includes('"destination":{"ID"'))!;
    const labels = JSON.stringify(Array.from({ length: 12 }, (_, i) => `k8s:label-${i}=${'v'.repeat(40)}`));
    // 500 pods of one workload: the same labels, their own names.
    const lines = Array.from({ length: 500 }, (_, i) => {
      const parsed = JSON.parse(base) as { flow: Record<string, unknown> };
      parsed.flow.destination = {
        identity: 5001,
        namespace: 'shop',
        labels: JSON.parse(labels),
        pod_name: `cart-${i}`,
      };
      return JSON.stringify(parsed);
    });
    resetWasmScanner();
    expect(check(lines)).toBe(500);
    // 500 copies of the array would be 500 × its length (370 KB before endpoints left it out; 38 KB
    // now: the endpoints' own text, the names and addresses, one copy of the array).
    expect(wasmArenaBytes()).toBeLessThan((500 * labels.length) / 5);
    expect(wasmArenaBytes()).toBeGreaterThan(labels.length);
  });

  it('pods of one workload share its workload record; another kind of the same name gets its own', () => {
    const base = sampleLines.find((l) => l.includes('"destination":{"ID"'))!;
    const lines = ['Deployment', 'Deployment', 'StatefulSet', 'Deployment'].map((kind, i) => {
      const parsed = JSON.parse(base) as { flow: Record<string, unknown> };
      parsed.flow.destination = {
        identity: 5001,
        namespace: 'shop',
        labels: ['k8s:app=cart'],
        pod_name: `cart-${i}`,
        workloads: [{ name: 'cart', kind }],
      };
      return JSON.stringify(parsed);
    });
    expect(check(lines)).toBe(4);
    const workloads = scanLines(lines).map((s) =>
      s.result?.kind === 'flow'
        ? [s.result.flow.src, s.result.flow.dst].find((e) => e.pod?.startsWith('cart-'))!.workload
        : undefined,
    );
    expect(workloads.map((w) => w?.kind)).toEqual(['Deployment', 'Deployment', 'StatefulSet', 'Deployment']);
    expect(workloads[1]).toBe(workloads[0]);
    expect(workloads[2]).not.toBe(workloads[0]);
    expect(Object.isFrozen(workloads[2])).toBe(true);
  });

  it('interned values forgotten between blocks (a tiny arena limit): later blocks stay exact', () => {
    const old = setWasmArenaLimit(2000);
    try {
      let fast = 0;
      fc.assert(
        fc.property(
          fc.array(fc.array(fc.constantFrom(...sampleLines), { maxLength: 5 }), { maxLength: 6 }),
          (blocks) => {
            for (const lines of blocks) fast += check(lines);
          },
        ),
        { numRuns: 300 },
      );
      expect(fast).toBeGreaterThan(300);
    } finally {
      setWasmArenaLimit(old);
    }
  });

  it('arbitrary bytes never crash the scanner, and whatever it takes equals the JSON.parse result', () => {
    const base = sampleLines[0]!;
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(), (junk, at) => {
        const bytes = Buffer.from(junk.map((b) => (b === 10 ? 32 : b)));
        const i = at % (base.length + 1);
        // Inside a real line (so that most of it is valid) and on its own.
        const lines = [base.slice(0, i) + bytes.toString('latin1') + base.slice(i), bytes.toString('latin1')];
        const block = Buffer.concat([
          Buffer.from(base.slice(0, i)),
          bytes,
          Buffer.from(base.slice(i) + '\n'),
          bytes,
          Buffer.from('\n'),
        ]);
        let n = 0;
        scanHubbleBlock(block, 0, block.length, (result, start, end) => {
          n++;
          if (result !== undefined)
            expect(result).toEqual(parseHubbleLineSlow(block.toString('utf8', start, end)));
        });
        expect(n).toBe(lines.length);
      }),
      { numRuns: 2000 },
    );
  });

  it('nesting deeper than the scanner follows is left to JSON.parse', () => {
    const ok = sampleLines[0]!;
    const deep = '['.repeat(100) + ']'.repeat(100);
    const [s] = scanLines([ok.replace('"Type":"L3_L4"', `"extra":${deep},"Type":"L3_L4"`)]);
    expect(s!.result).toBeUndefined();
    const [t] = scanLines([
      ok.replace('"Type":"L3_L4"', `"extra":${'['.repeat(20) + ']'.repeat(20)},"Type":"L3_L4"`),
    ]);
    expect(t!.result).toEqual(parseHubbleLineSlow(t!.text));
  });

  it('blocks split anywhere between lines: values remembered from earlier blocks are reused exactly', () => {
    fc.assert(
      fc.property(fc.array(line, { minLength: 2, maxLength: 12 }), fc.nat(), (records, cut) => {
        const lines = records.map(render).filter(asRead);
        const at = cut % (lines.length + 1);
        check(lines.slice(0, at));
        check(lines.slice(at));
        check(lines);
      }),
      { numRuns: 500 },
    );
  });
});

describe('WebAssembly scanner: lines it leaves to the JSON.parse path', () => {
  const ok = sampleLines[0]!;
  const cases: [string, string][] = [
    ['whitespace between tokens', ok.replace('"verdict":', '"verdict": ')],
    ['an escape sequence', ok.replace('FORWARDED', 'FORWARD\\u0045D')],
    ['a non-ASCII character', ok.replace('kind-control-plane', 'kind-contrôle')],
    ['a duplicate endpoint', ok.replace('"source":{', '"source":{},"source":{')],
    ['a duplicate flags object', ok.replace('"flags":{', '"flags":{"SYN":true},"flags":{')],
    ['two l4 protocols', ok.replace('"l4":{', '"l4":{"UDP":{},')],
    ['a null field', ok.replace('"verdict":"FORWARDED"', '"verdict":null')],
    ['a verdict number too large', ok.replace('"verdict":"FORWARDED"', '"verdict":2147483648')],
    ['a port with a fraction', ok.replace(/"destination_port":(\d+)/, '"destination_port":$1.0')],
    ['two l7 DNS objects', ok.replace('"Type":"L3_L4"', '"l7":{"dns":{},"dns":{}},"Type":"L3_L4"')],
    [
      'a node status event',
      '{"node_status":{"state_change":"NODE_CONNECTED"},"time":"2026-01-01T00:00:00Z"}',
    ],
    ['a bare Flow object', JSON.stringify((JSON.parse(ok) as { flow: unknown }).flow)],
    ['a CR line end', ok + '\r'],
    ['trailing text', ok + 'x'],
    ['an empty line', ''],
  ];
  it.each(cases)('%s', (_name, text) => {
    const [s] = scanLines([text]);
    expect(s!.result).toBeUndefined();
  });

  const taken: [string, string][] = [
    ['a plain sample flow line', ok],
    ['a numeric verdict', ok.replace('"verdict":"FORWARDED"', '"verdict":1')],
    [
      'an l7 DNS record',
      ok.replace('"Type":"L3_L4"', '"l7":{"type":"REQUEST","dns":{"query":"a.example."}},"Type":"L3_L4"'),
    ],
    [
      'an unknown verdict name (a counted bad line)',
      ok.replace('"verdict":"FORWARDED"', '"verdict":"BOGUS"'),
    ],
  ];
  it.each(taken)('takes %s itself', (_name, text) => {
    const [s] = scanLines([text]);
    expect(s!.result).toBeDefined();
    expect(s!.result).toEqual(parseHubbleLineSlow(text));
  });

  it("a service's plain shape is read as the pattern reads it", () => {
    const pattern = /^\{"name":"([^"]*)","namespace":"([^"]*)"\}$/;
    const piece = fc.constantFrom(
      '{"name":"',
      '","namespace":"',
      '"}',
      '"',
      '}',
      '{',
      ',',
      ':',
      'a',
      'ns-1',
      '',
    );
    const text = fc.oneof(
      fc.array(piece, { maxLength: 8 }).map((p) => p.join('')),
      fc.tuple(fc.string(), fc.string()).map(([n, s]) => `{"name":"${n}","namespace":"${s}"}`),
      // Another separator of about the same length between the two values.
      fc
        .tuple(
          fc.string({ maxLength: 4 }),
          fc.string({ minLength: 14, maxLength: 16 }),
          fc.string({ maxLength: 4 }),
        )
        .map(([n, sep, s]) => `{"name":"${n}"${sep}${s}"}`),
      fc.string(),
    );
    fc.assert(
      fc.property(text, (t) => {
        const m = pattern.exec(t);
        expect(plainService(t)).toEqual(m === null ? undefined : { name: m[1], namespace: m[2] });
      }),
      { numRuns: 5000 },
    );
  });
});
