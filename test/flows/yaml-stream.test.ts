import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { readFlows } from '../../src/flows/reader.ts';
import { parseObjectsText } from '../../src/model/snapshot.ts';
import type { FlowReader } from '../../src/flows/reader.ts';
import type { Flow } from '../../src/flows/types.ts';

const sample = (f: string) => fileURLToPath(new URL(`../../../shared/samples/${f}`, import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'microseg-yaml-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function tmp(name: string, content: string): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

type NN = {
  metadata: { name: string; namespace: string };
  spec: { containers: { egress: { ipAddress: string }[] }[] };
};
const base = JSON.parse(readFileSync(sample('kubescape-networkneighborhood.json'), 'utf8')) as NN;

/** The sample NetworkNeighborhood (13 flows) as object `i`: its own name, namespace and addresses. */
function neighborhood(i: number): NN {
  const nn = structuredClone(base);
  nn.metadata.name = `replicaset-app${i}-55df98fc6d`;
  nn.metadata.namespace = `ns${i % 17}`;
  for (const e of nn.spec.containers[0]!.egress)
    if (e.ipAddress !== '') e.ipAddress = `10.${(i >> 8) & 255}.${i & 255}.${e.ipAddress.split('.')[3]}`;
  return nn;
}

async function readAll(r: FlowReader): Promise<Flow[]> {
  const flows: Flow[] = [];
  for await (const b of r.batches()) flows.push(...b);
  return flows;
}

describe('multi-document YAML flow input', () => {
  it("hands on a document's flows before the rest of the source has arrived", async () => {
    const docs = range(1, 8).map((i) => stringify(neighborhood(i)));
    let restSent = false;
    let firstBatch: () => void = () => {};
    const seen = new Promise<void>((resolve) => (firstBatch = resolve));
    // The writer sends four documents and then waits for the reader to hand on flows; without them it
    // goes on after a while (so that a reader that waits for the end cannot hang the test) and the
    // assertion below tells.
    const stdin = (async function* () {
      yield Buffer.from('---\n' + docs.slice(0, 4).join('---\n'));
      await Promise.race([seen, new Promise((r) => setTimeout(r, 3000))]);
      restSent = true;
      yield Buffer.from('---\n' + docs.slice(4).join('---\n'));
    })();
    const r = readFlows('-', { stdin, dedup: false });
    let restSentAtFirst: boolean | undefined;
    let first: Flow[] | undefined;
    const flows: Flow[] = [];
    for await (const b of r.batches()) {
      if (first === undefined) {
        first = b;
        restSentAtFirst = restSent;
        firstBatch();
      }
      flows.push(...b);
    }
    expect(restSentAtFirst).toBe(false);
    // The first document's flows come first; all eight documents' flows are read in the end.
    const one = await readFlows(tmp('one.yaml', docs[0]!), { dedup: false }).toArray();
    expect(one).toHaveLength(13);
    expect(first!.slice(0, 13)).toEqual(one);
    expect(flows).toHaveLength(8 * 13);
    expect(r.stats.sources).toEqual([{ source: '-', format: 'kubescape', gzip: false, lines: 8 }]);
  });

  it('gives the same flows and statistics as the same objects in a JSON List, whatever the chunking', async () => {
    const objects = range(1, 120).map(neighborhood);
    // Documents as kubectl and people write them: comments, an explicit end (`...`), an empty
    // document, a List of two objects, a document whose text is flow style.
    const parts: string[] = [];
    for (const [i, o] of objects.entries()) {
      if (i === 10) parts.push('# an empty document\n');
      if (i === 20) {
        parts.push(stringify({ apiVersion: 'v1', kind: 'List', items: [o, objects[i + 1]] }));
        continue;
      }
      if (i === 21) continue;
      if (i === 30) parts.push(JSON.stringify(o) + '\n');
      else parts.push(stringify(o) + (i % 7 === 0 ? '...\n' : '') + (i % 5 === 0 ? '# next\n' : ''));
    }
    const text = '---\n' + parts.join('---\n');
    expect(text.length).toBeGreaterThan(750_000);
    const yamlFile = tmp('many.yaml', text);
    const jsonFile = tmp(
      'many.json',
      JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }, null, 2),
    );
    const json = readFlows(jsonFile);
    const expected = await readAll(json);
    expect(expected).toHaveLength(120 * 13);
    for (const blockSize of [1 << 16, 4096, 97]) {
      const r = readFlows(yamlFile, { blockSize });
      expect(await readAll(r), `block ${blockSize}`).toEqual(expected);
      expect({ ...r.stats, sources: [] }, `block ${blockSize}`).toEqual({ ...json.stats, sources: [] });
      expect(r.stats.sources).toEqual([{ source: yamlFile, format: 'kubescape', gzip: false, lines: 120 }]);
    }
  });

  it('reads the documents before a bad one, which is one bad record after them', async () => {
    const docs = range(1, 4).map((i) => stringify(neighborhood(i)));
    const bad = tmp('bad.yaml', '---\n' + [docs[0], docs[1], 'kind: [unclosed\n', docs[2]].join('---\n'));
    // Its message is the one reading the text whole gives, line and column in the whole text.
    const whole = (file: string) => {
      try {
        parseObjectsText(readFileSync(file, 'utf8'), file);
      } catch (err) {
        return (err as Error).message.replace(`${file}: `, '');
      }
      throw new Error('expected an error');
    };
    expect(whole(bad)).toMatch(/^YAML document 3: .* at line \d+, column \d+$/);
    for (const blockSize of [1 << 16, 97]) {
      const r = readFlows(bad, { blockSize });
      expect(await r.toArray()).toHaveLength(2 * 13);
      expect(r.stats.bad).toEqual({ 'invalid-json': 1 });
      expect(r.stats.samples).toEqual([
        { source: bad, line: 3, object: true, reason: 'invalid-json', message: whole(bad) },
      ]);
    }
    // A first document that is bad is the source bad as a whole, at its line 1, as before.
    const first = tmp('bad-first.yaml', '---\n' + ['kind: [unclosed\n', docs[0]].join('---\n'));
    const f = readFlows(first);
    expect(await f.toArray()).toEqual([]);
    expect(f.stats.samples).toEqual([
      {
        source: first,
        line: 1,
        reason: 'invalid-json',
        message: whole(first),
      },
    ]);
  });

  it('refuses a key given twice in a map of 40,000 keys quickly, with the message reading it whole gives', async () => {
    // The YAML library's own check compares each key with every key before it: over a minute here.
    const keys = range(1, 40_000)
      .map((i) => `k${i}: v\n`)
      .join('');
    const wide = tmp(
      'wide.yaml',
      '---\n' + [stringify(neighborhood(1)), `kind: X\n${keys}k17: again\n`].join('---\n'),
    );
    const whole = (() => {
      try {
        parseObjectsText(readFileSync(wide, 'utf8'), wide);
      } catch (err) {
        return (err as Error).message.replace(`${wide}: `, '');
      }
      throw new Error('expected an error');
    })();
    expect(whole).toMatch(/^YAML document 2: Map keys must be unique at line \d+, column 1$/);
    // Read in blocks of any size, the key's position is the same.
    for (const blockSize of [1 << 16, 97]) {
      const t0 = Date.now();
      const r = readFlows(wide, { blockSize });
      expect(await r.toArray()).toHaveLength(13);
      expect(Date.now() - t0, `block ${blockSize}`).toBeLessThan(10_000);
      expect(r.stats.samples).toEqual([
        { source: wide, line: expect.any(Number), object: true, reason: 'invalid-json', message: whole },
      ]);
    }
  }, 180_000);
});

function range(a: number, b: number): number[] {
  return Array.from({ length: b - a + 1 }, (_, i) => a + i);
}
