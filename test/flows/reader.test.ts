import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { setWasmArenaLimit, wasmScannerMemory } from '../../src/flows/hubble-wasm.ts';
import { decodeHead, formatIngestStats, formatSample, readFlows } from '../../src/flows/reader.ts';
import type { Flow } from '../../src/flows/types.ts';
import { LIST_KIND_WAIT } from '../../src/model/snapshot.ts';

const sample = (f: string) => fileURLToPath(new URL(`../../../shared/samples/${f}`, import.meta.url));
const fixture = (f: string) => fileURLToPath(new URL(`../fixtures/flows/${f}`, import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'microseg-flows-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function tmp(name: string, content: string | Buffer): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

describe('reading the Hubble sample', () => {
  it('de-duplicates across observation points and counts what it did', async () => {
    const r = readFlows(sample('hubble-flows.jsonl'));
    const flows = await r.toArray();
    // 11 lines: 2 health checks skipped; lines 1+3 (flow + its reply) and 7+8 (DNS request + response)
    // are one connection each; line 2 is another client (different source port).
    expect(flows).toHaveLength(7);
    expect(r.stats).toMatchObject({
      lines: 11,
      observations: 9,
      flows: 7,
      duplicates: 2,
      repliesFlipped: 3,
      skipped: { health: 2 },
      badLines: 0,
      sources: [{ format: 'hubble', gzip: false, lines: 11 }],
    });
    expect(r.stats.direction).toMatchObject({ is_reply: 6, reply: 1, 'tcp-flags': 1, observed: 1 });
    const dns = flows.filter((f) => f.port === 53);
    expect(dns).toHaveLength(1);
    expect(dns[0]!.time).toBe(Date.parse('2021-10-04T11:22:26.592Z'));
  });

  it('without dedup every observation is emitted', async () => {
    const flows = await readFlows(sample('hubble-flows.jsonl'), { dedup: false }).toArray();
    expect(flows).toHaveLength(9);
  });

  it('reads gzip by magic bytes whatever the name, and stdin (gzip too)', async () => {
    const raw = readFileSync(sample('hubble-flows.jsonl'));
    const gz = tmp('flows.jsonl', gzipSync(raw));
    const plain = await readFlows(sample('hubble-flows.jsonl')).toArray();
    const r = readFlows(gz);
    expect(await r.toArray()).toEqual(plain);
    expect(r.stats.sources[0]).toMatchObject({ gzip: true, format: 'hubble' });
    const chunks = [];
    for (let i = 0; i < raw.length; i += 1000) chunks.push(raw.subarray(i, i + 1000));
    expect(await readFlows('-', { stdin: Readable.from(chunks) }).toArray()).toEqual(plain);
    const gzBytes = gzipSync(raw);
    const oneByte = [gzBytes.subarray(0, 1), gzBytes.subarray(1)];
    const s = readFlows('-', { stdin: Readable.from(oneByte) });
    expect(await s.toArray()).toEqual(plain);
    expect(s.stats.sources[0]).toMatchObject({ source: '-', gzip: true });
  });

  it('a gzip file cut short keeps the lines before the cut and counts the cut as a bad record', async () => {
    // Generic lines, one connection each (no srcPort: nothing merged), in time order.
    const total = 3000;
    const lines = Array.from(
      { length: total },
      (_, i) =>
        `{"time":${1772359200000 + i * 1000},"src":"10.0.0.1","dst":"10.0.0.2","port":${1 + (i % 60000)}}\n`,
    );
    const whole = gzipSync(Buffer.from(lines.join('')));
    // Only the 8-byte trailer (CRC and size) missing: every line is there, the cut is still said.
    const noTrailer = tmp('no-trailer.jsonl.gz', whole.subarray(0, whole.length - 8));
    const a = readFlows(noTrailer, { dedup: false });
    expect(await a.toArray()).toHaveLength(total);
    expect(a.stats).toMatchObject({ lines: total, flows: total, badLines: 1, bad: { truncated: 1 } });
    expect(a.stats.samples).toEqual([
      {
        source: noTrailer,
        line: total + 1,
        reason: 'truncated',
        message: 'gzip data ends early (unexpected end of file): the file is cut short',
      },
    ]);
    expect(a.stats.emptySources).toEqual([]);
    expect(formatIngestStats(a.stats)).toContain(
      `bad lines: 1 (truncated 1)\n  ${noTrailer}:${total + 1}: gzip data ends early`,
    );
    // Cut in the middle: the lines before the cut are flows, in order; the line the cut split (if any)
    // is a bad line of its own, before the cut's record.
    const half = whole.subarray(0, Math.floor(whole.length / 2));
    for (const [name, open] of [
      ['file', () => readFlows(tmp('half.jsonl.gz', half), { dedup: false })],
      ['stdin', () => readFlows('-', { dedup: false, stdin: Readable.from([half]) })],
    ] as const) {
      const r = open();
      const flows = await r.toArray();
      expect(flows.length, name).toBeGreaterThan(0);
      expect(flows.length, name).toBeLessThan(total);
      expect(flows.map((f) => f.port)).toEqual(flows.map((_, i) => 1 + i));
      expect(r.stats.bad.truncated, name).toBe(1);
      expect(r.stats.samples.at(-1)).toMatchObject({ reason: 'truncated', line: r.stats.lines + 1 });
    }
    // Under strict the cut ends the run, naming the file and where.
    await expect(readFlows(noTrailer, { strict: true }).toArray()).rejects.toThrow(
      `${noTrailer}:${total + 1}: gzip data ends early (unexpected end of file): the file is cut short`,
    );
  });

  it("reads UTF-16 text with a byte order mark (Windows PowerShell's `>`) as UTF-8: files, gzip and stdin", async () => {
    const plain = await readFlows(sample('hubble-flows.jsonl')).toArray();
    const text = readFileSync(sample('hubble-flows.jsonl'), 'utf8');
    const le = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]);
    const be = Buffer.from(le).swap16();
    for (const [name, bytes] of [
      ['le.jsonl', le],
      ['be.jsonl', be],
      ['le.jsonl.gz', gzipSync(le)],
    ] as const) {
      const r = readFlows(tmp(name, bytes));
      expect(await r.toArray()).toEqual(plain);
      expect(r.stats).toMatchObject({ lines: 11, badLines: 0 });
    }
    const oneByte = [le.subarray(0, 1), le.subarray(1, 3), le.subarray(3)];
    expect(await readFlows('-', { stdin: Readable.from(oneByte) }).toArray()).toEqual(plain);
  });

  it('reads UTF-16 text without a byte order mark (PowerShell redirection) too: files, gzip and stdin', async () => {
    const plain = await readFlows(sample('hubble-flows.jsonl')).toArray();
    const le = Buffer.from(readFileSync(sample('hubble-flows.jsonl'), 'utf8'), 'utf16le');
    const be = Buffer.from(le).swap16();
    for (const [name, bytes] of [
      ['nobom-le.jsonl', le],
      ['nobom-be.jsonl', be],
      ['nobom-le.jsonl.gz', gzipSync(le)],
    ] as const) {
      const r = readFlows(tmp(name, bytes));
      expect(await r.toArray()).toEqual(plain);
      expect(r.stats).toMatchObject({ lines: 11, badLines: 0 });
    }
    const oneByte = [be.subarray(0, 1), be.subarray(1, 3), be.subarray(3)];
    expect(await readFlows('-', { stdin: Readable.from(oneByte) }).toArray()).toEqual(plain);
  });

  it('reads gzip UTF-16 from standard input in one-byte chunks, the decompressed text then coming a byte at a time', async () => {
    const plain = await readFlows(sample('hubble-flows.jsonl')).toArray();
    const le = Buffer.from(readFileSync(sample('hubble-flows.jsonl'), 'utf8'), 'utf16le');
    for (const text of [le, Buffer.concat([Buffer.from([0xff, 0xfe]), le]), Buffer.from(le).swap16()]) {
      const bytes = [...gzipSync(text)].map((b) => Buffer.from([b]));
      const r = readFlows('-', { stdin: Readable.from(bytes) });
      expect(await r.toArray()).toEqual(plain);
      expect(r.stats).toMatchObject({ lines: 11, badLines: 0 });
    }
  });

  it('handles CRLF line ends and a missing final newline', async () => {
    const raw = readFileSync(sample('hubble-flows.jsonl'), 'utf8').trimEnd().replace(/\n/g, '\r\n');
    expect(await readFlows(tmp('crlf.jsonl', raw)).toArray()).toEqual(
      await readFlows(sample('hubble-flows.jsonl')).toArray(),
    );
  });
});

describe('bad lines', () => {
  it('are counted by reason, the first 5 kept with file and line, the run goes on', async () => {
    const path = fixture('hubble-bad-lines.jsonl');
    const r = readFlows(path);
    const flows = await r.toArray();
    expect(flows.map((f) => [f.src.ip, f.dst.ip, f.port])).toEqual([
      ['10.0.0.1', '10.0.0.2', 8080],
      ['fd00::1', 'fd00::2', 8080],
    ]);
    expect(r.stats.duplicates).toBe(1);
    expect(r.stats.events).toEqual({ node_status: 1, lost_events: 2, agent_event: 0, debug_event: 0 });
    // 9007199254740993 + 3: beyond Number.MAX_SAFE_INTEGER, so its digits.
    expect(r.stats.lostEvents).toBe('9007199254740996');
    expect(r.stats.bad).toEqual({
      'invalid-json': 1,
      'unknown-enum': 1,
      'wrong-type': 2,
      'missing-field': 1,
      'bad-value': 1,
    });
    expect(r.stats.badLines).toBe(6);
    expect(r.stats.samples.map((s) => `${s.line}: ${s.message}`)).toEqual([
      '2: invalid JSON: Unterminated string in JSON at position 70 (line 1 column 71)',
      '3: flow.verdict: unknown value "MAYBE" (expected FORWARDED, DROPPED, ERROR, AUDIT, REDIRECTED, TRACED, TRANSLATED or VERDICT_UNKNOWN, or a number from 0 to 7)',
      '4: flow.l4.TCP.source_port: expected an integer from 0 to 65535, got string "x"',
      '8: flow.IP.destination is missing',
      '11: flow.time: not an RFC 3339 timestamp: "2026-13-01T00:00:00Z"',
    ]);
    expect(r.stats.samples[0]!.source).toBe(path);
    expect(formatIngestStats(r.stats)).toContain(`${path}:3: flow.verdict: unknown value "MAYBE"`);
  });

  it('lost events are summed exactly: a number while it is one, the digits beyond', async () => {
    const lost = (n: string) =>
      JSON.stringify({ lost_events: { source: 'HUBBLE_RING_BUFFER', num_events_lost: n } });
    const small = readFlows(tmp('lost-small.jsonl', `${lost('3')}\n${lost('1312')}\n`));
    await small.toArray();
    expect(small.stats.lostEvents).toBe(1315);
    // 2^64 - 1 and 1: a Number would say 18446744073709552000.
    const big = readFlows(tmp('lost-big.jsonl', `${lost('18446744073709551615')}\n${lost('1')}\n`));
    await big.toArray();
    expect(big.stats.lostEvents).toBe('18446744073709551616');
    expect(formatIngestStats(big.stats)).toContain('events lost: 18446744073709551616\n');
    const edge = readFlows(tmp('lost-edge.jsonl', `${lost(String(Number.MAX_SAFE_INTEGER))}\n`));
    await edge.toArray();
    expect(edge.stats.lostEvents).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('strict mode stops at the first bad line with its message', async () => {
    const path = fixture('hubble-bad-lines.jsonl');
    await expect(readFlows(path, { strict: true }).toArray()).rejects.toThrow(
      `${path}:2: invalid JSON: Unterminated string in JSON at position 70 (line 1 column 71)`,
    );
  });

  it('unreadable sources and unknown formats are input errors', async () => {
    await expect(readFlows(join(dir, 'nope.jsonl')).toArray()).rejects.toThrow(
      `${join(dir, 'nope.jsonl')}: cannot read: no such file`,
    );
    await expect(readFlows(dir).toArray()).rejects.toThrow(`${dir}: cannot read: is a directory`);
    expect(() => readFlows('x', { format: 'pcap' as never })).toThrow(
      'unknown flow format "pcap" (expected auto, hubble, generic, inspektor-gadget, kubescape)',
    );
    await expect(readFlows(tmp('bad.gz', Buffer.from([0x1f, 0x8b, 1, 2, 3]))).toArray()).rejects.toThrow(
      /bad\.gz: cannot decompress: /,
    );
  });
});

describe('formats', () => {
  it('empty files are fine and noted', async () => {
    const e = tmp('empty.jsonl', '');
    const blank = tmp('blank.jsonl', '\n  \n');
    const r = readFlows([e, blank]);
    expect(await r.toArray()).toEqual([]);
    expect(r.stats.emptySources).toEqual([e, blank]);
    expect(r.stats.sources.map((s) => s.format)).toEqual(['empty', 'empty']);
    expect(formatIngestStats(r.stats)).toContain(`empty: ${e}, ${blank}`);
  });

  it('detects each format per file in one run', async () => {
    const r = readFlows([
      sample('hubble-flows.jsonl'),
      fixture('generic.jsonl'),
      sample('ig-trace-tcp.jsonl'),
      sample('kubescape-networkneighborhood.json'),
    ]);
    const flows = await r.toArray();
    expect(r.stats.sources.map((s) => s.format)).toEqual([
      'hubble',
      'generic',
      'inspektor-gadget',
      'kubescape',
    ]);
    const byInput = (i: string) => flows.filter((f) => f.input === i).length;
    expect([
      byInput('hubble'),
      byInput('generic'),
      byInput('inspektor-gadget'),
      byInput('kubescape'),
    ]).toEqual([7, 3, 1, 13]);
  });

  it('a bad first line does not stop detection and is reported', async () => {
    const raw = readFileSync(sample('hubble-flows.jsonl'), 'utf8');
    const r = readFlows(tmp('firstbad.jsonl', '{"flow":{"time"\n' + raw));
    expect(await r.toArray()).toHaveLength(7);
    expect(r.stats.sources[0]!.format).toBe('hubble');
    expect(r.stats.samples[0]).toMatchObject({ line: 1, reason: 'invalid-json' });
  });

  it('a bad first line that looks like a document start does not make JSON lines one document', async () => {
    // `[1,2]`, `---` and a lone `{` start documents, but the line after them is a record of its own.
    const raw = readFileSync(sample('hubble-flows.jsonl'), 'utf8');
    for (const [name, first] of [
      ['array', '[1,2]'],
      ['dashes', '---'],
      ['brace', '{'],
    ]) {
      // The smallest blocks too: the line that tells is read after the first one.
      for (const blockSize of [undefined, 4]) {
        const r = readFlows(tmp(`first-${name}.jsonl`, `${first}\n${raw}`), blockSize ? { blockSize } : {});
        expect(await r.toArray(), name).toHaveLength(7);
        expect(r.stats).toMatchObject({ lines: 12, observations: 9, badLines: 1 });
        expect(r.stats.sources[0]!.format).toBe('hubble');
        expect(r.stats.samples[0]).toMatchObject({ line: 1 });
      }
    }
    // Two lines, the last without a newline: decided at the end of the source.
    const [line1] = raw.split('\n');
    const r = readFlows(tmp('first-brace-short.jsonl', `{\n${line1}`));
    expect(await r.toArray()).toHaveLength(1);
    expect(r.stats).toMatchObject({ lines: 2, badLines: 1, sources: [{ format: 'hubble' }] });
  });

  it('a pretty-printed Kubescape document is one, however it is read; a truncated one is one error', async () => {
    const text = readFileSync(sample('kubescape-networkneighborhood.json'), 'utf8');
    for (const blockSize of [undefined, 4]) {
      const r = readFlows(sample('kubescape-networkneighborhood.json'), blockSize ? { blockSize } : {});
      expect(await r.toArray()).toHaveLength(13);
      expect(r.stats.sources[0]).toMatchObject({ format: 'kubescape', lines: 1 });
    }
    const cut = text.slice(0, text.indexOf('"egress"') + 20);
    const lines = cut.trimEnd().split('\n').length;
    const r = readFlows(tmp('nn-cut.json', cut));
    expect(await r.toArray()).toEqual([]);
    expect(r.stats.badLines).toBe(1);
    expect(r.stats.samples).toEqual([
      {
        source: join(dir, 'nn-cut.json'),
        line: 1,
        reason: 'invalid-json',
        message: `truncated document: the JSON ends at line ${lines} with 5 object(s) or array(s) still open`,
      },
    ]);
  });

  it('pretty-printed Kubescape objects one after another (kubectl get -o json per object) are each read', async () => {
    const nn = JSON.parse(readFileSync(sample('kubescape-networkneighborhood.json'), 'utf8')) as {
      metadata: { name: string };
    };
    const other = structuredClone(nn);
    other.metadata.name = 'replicaset-other-1';
    const broken = structuredClone(nn) as unknown as {
      spec: { containers: { egress: { ports: unknown[] }[] }[] };
    };
    broken.spec.containers[0]!.egress[0]!.ports = [{ protocol: 'TCP', port: 70000 }];
    const text = [nn, other, broken].map((o) => JSON.stringify(o, null, 4)).join('\n');
    for (const blockSize of [undefined, 64]) {
      const r = readFlows(
        tmp('nn-concat.json', text + '\n'),
        blockSize ? { blockSize, dedup: false } : { dedup: false },
      );
      const flows = await r.toArray();
      expect(flows).toHaveLength(26);
      expect(r.stats).toMatchObject({ lines: 3, badLines: 1, sources: [{ format: 'kubescape', lines: 3 }] });
      expect(r.stats.samples).toEqual([
        {
          source: join(dir, 'nn-concat.json'),
          line: 3,
          object: true,
          reason: 'wrong-type',
          message:
            'NetworkNeighborhood kubescape/replicaset-operator-55df98fc6d: spec.containers[0].egress[0].ports[0].port: expected an integer from 1 to 65535, got number 70000',
        },
      ]);
    }
  });

  it('pretty-printed objects one after another cut short keep the objects before the cut', async () => {
    // `kubectl gadget run trace_tcp -o jsonpretty > f.json`, or its gzip, copied or cut while written:
    // every whole object was lost to one "truncated document" record.
    const ig = JSON.parse(readFileSync(sample('ig-trace-tcp.jsonl'), 'utf8')) as { dst: object };
    const total = 200;
    const text =
      Array.from({ length: total }, (_, i) =>
        JSON.stringify({ ...ig, dst: { ...ig.dst, port: 1 + i } }, null, 2),
      ).join('\n') + '\n';
    const gz = gzipSync(Buffer.from(text));
    const cutMsg = 'the text ends inside an object: it is cut short';
    for (const [name, file] of [
      ['plain', tmp('ig-pretty-cut.json', text.slice(0, Math.floor(text.length / 2)))],
      ['gzip', tmp('ig-pretty-cut.json.gz', gz.subarray(0, Math.floor(gz.length / 2)))],
    ] as const) {
      const r = readFlows(file, { dedup: false });
      const flows = await r.toArray();
      expect(flows.length, name).toBeGreaterThan(0);
      expect(flows.length, name).toBeLessThan(total);
      expect(flows.map((f) => f.port)).toEqual(flows.map((_, i) => 1 + i));
      expect(r.stats.sources[0]!.format, name).toBe('inspektor-gadget');
      const n = flows.length;
      expect(r.stats.samples[0], name).toEqual({
        source: file,
        line: n + 1,
        object: true,
        reason: 'invalid-json',
        message: cutMsg,
      });
      if (name === 'gzip')
        expect(r.stats.samples[1]).toMatchObject({ line: n + 2, object: true, reason: 'truncated' });
      else expect(r.stats.samples).toHaveLength(1);
    }
  });

  it('a pretty-printed document is read as it arrives, one object at a time, whatever the chunks', async () => {
    // `kubectl gadget run ... -o jsonpretty` of a long capture was held whole before its first object
    // was read: memory grew with the capture (up to V8's longest string) and no flow came out early.
    const total = 300;
    // Strings with braces, brackets, quotes and escapes in them, which must not end an object.
    const records = Array.from({ length: total }, (_, i) => ({
      time: `2026-03-01T10:00:${String(i % 60).padStart(2, '0')}Z`,
      src: 'shop/cart-1',
      dst: { ip: '10.0.3.7' },
      port: 1000 + i,
      dnsQuery: `q${i}}{"]["\\\\\\"\u00e9\n{`,
    }));
    const asLines = readFlows(
      tmp('gen-stream.jsonl', records.map((o) => JSON.stringify(o)).join('\n') + '\n'),
      {
        dedup: false,
      },
    );
    const expected = await asLines.toArray();
    expect(expected).toHaveLength(total);
    const shapes: [string, string][] = [
      ['objects', records.map((o) => JSON.stringify(o, null, 2)).join('\n') + '\n'],
      ['array', JSON.stringify(records, null, 2) + '\n'],
      ['list', JSON.stringify({ apiVersion: 'v1', items: records, kind: 'List', metadata: {} }, null, 1)],
    ];
    for (const [shape, text] of shapes) {
      const bytes = Buffer.from(text);
      for (const piece of [7, 61]) {
        // Objects fully handed to the reader so far, and whether the input has ended.
        let given = 0;
        let ended = false;
        // Where each record's last string starts (unique per record): the record ends soon after.
        const ends = records.map((_, i) => bytes.indexOf(`"q${i}}`));
        const stdin = (async function* () {
          for (let at = 0; at < bytes.length; at += piece) {
            const end = Math.min(at + piece, bytes.length);
            // A producer that writes a piece at a time (a pipe from `kubectl gadget run ... -o jsonpretty`).
            await Promise.resolve();
            yield bytes.subarray(at, end);
            given = ends.filter((e) => e < end).length;
          }
          ended = true;
        })();
        const r = readFlows('-', { stdin, dedup: false, blockSize: 64 });
        const got: Flow[] = [];
        let firstBatchBeforeEnd: boolean | undefined;
        let batches = 0;
        for await (const batch of r.batches()) {
          firstBatchBeforeEnd ??= !ended;
          batches++;
          got.push(...batch);
          // No more than about one object is held: the flows handed out keep up with the input.
          expect(given - got.length, `${shape}/${piece}`).toBeLessThanOrEqual(4);
        }
        expect(firstBatchBeforeEnd, `${shape}/${piece}`).toBe(true);
        expect(batches, `${shape}/${piece}`).toBeGreaterThan(total / 2);
        expect(got, `${shape}/${piece}`).toEqual(expected);
        expect(r.stats, `${shape}/${piece}`).toMatchObject({ lines: total, badLines: 0 });
        expect(r.stats.sources[0]!.format).toBe('generic');
      }
    }
  });

  it('a pretty-printed array or List cut short keeps its items before the cut', async () => {
    const nn = JSON.parse(readFileSync(sample('kubescape-networkneighborhood.json'), 'utf8')) as object;
    const text = JSON.stringify({ apiVersion: 'v1', items: [nn, nn, nn], kind: 'List' }, null, 2);
    const cut = text.slice(0, Math.floor(text.length * 0.8));
    const lines = cut.trimEnd().split('\n').length;
    const r = readFlows(tmp('nn-list-cut.json', cut), { dedup: false });
    expect(await r.toArray()).toHaveLength(26);
    expect(r.stats.samples).toEqual([
      {
        source: join(dir, 'nn-list-cut.json'),
        line: 3,
        object: true,
        reason: 'invalid-json',
        message: expect.stringMatching(
          new RegExp(
            `^truncated document: the JSON ends at line ${lines}( inside a string,)? with \\d+ object`,
          ),
        ),
      },
    ]);
  });

  it('a pretty-printed document of other records is read in their format, not as Kubescape', async () => {
    // `kubectl gadget run trace_tcp -o jsonpretty`, a generic record or an array of them pretty-printed:
    // each object was told "expected kind NetworkNeighborhood".
    const ig = JSON.parse(readFileSync(sample('ig-trace-tcp.jsonl'), 'utf8')) as Record<string, unknown>;
    const gen = { time: '2024-07-31T20:38:31+02:00', src: '10.0.0.1', dst: '10.0.0.2', port: 80 };
    const hubble = readFileSync(sample('hubble-flows.jsonl'), 'utf8').split('\n')[0]!;
    const cases: [string, string, string, number][] = [
      [
        'ig-pretty.json',
        [ig, { ...ig, type: 'close' }, { ...ig, type: 'listen' }]
          .map((o) => JSON.stringify(o, null, 2))
          .join('\n'),
        'inspektor-gadget',
        1,
      ],
      ['gen-pretty.json', JSON.stringify(gen, null, 2), 'generic', 1],
      [
        'gen-array.json',
        JSON.stringify([gen, { ...gen, port: 81 }, { ...gen, prot: 'TCP' }], null, 2),
        'generic',
        2,
      ],
      ['hubble-pretty.json', JSON.stringify(JSON.parse(hubble), null, 2), 'hubble', 1],
    ];
    for (const [name, text, format, flows] of cases) {
      const r = readFlows(tmp(name, text + '\n'), { dedup: false });
      expect(await r.toArray(), name).toHaveLength(flows);
      expect(r.stats.sources[0]!.format, name).toBe(format);
    }
    const r = readFlows(join(dir, 'ig-pretty.json'));
    await r.toArray();
    expect(r.stats).toMatchObject({ lines: 3, skipped: { 'close-event': 1 }, badLines: 1 });
    expect(r.stats.samples).toEqual([
      {
        source: join(dir, 'ig-pretty.json'),
        line: 3,
        object: true,
        reason: 'unknown-enum',
        message: 'type: unknown value "listen"',
      },
    ]);
    const g = readFlows(join(dir, 'gen-array.json'));
    await g.toArray();
    expect(g.stats.samples.map(formatSample)).toEqual([
      `${join(dir, 'gen-array.json')}: object 3: unknown field "prot"`,
    ]);
    // Given as their format (--format generic, inspektor-gadget, hubble), they are read the same: each
    // line was a bad line of its own ("invalid JSON").
    for (const [name, format, flows] of [
      ['ig-pretty.json', 'inspektor-gadget', 1],
      ['gen-pretty.json', 'generic', 1],
      ['gen-array.json', 'generic', 2],
      ['hubble-pretty.json', 'hubble', 1],
    ] as const) {
      const f = readFlows(join(dir, name), { dedup: false, format });
      expect(await f.toArray(), `${name} as ${format}`).toHaveLength(flows);
      expect(f.stats.bad['invalid-json'], `${name} as ${format}`).toBeUndefined();
      expect(f.stats.sources[0]!.format).toBe(format);
    }
    // Forced to another format, the objects are read in it.
    const asGeneric = readFlows(join(dir, 'ig-pretty.json'), { format: 'generic' });
    expect(await asGeneric.toArray()).toEqual([]);
    expect(asGeneric.stats).toMatchObject({ lines: 3, badLines: 3, bad: { 'unknown-field': 3 } });
    // Forced to Kubescape, the objects are read as Kubescape's.
    const k = readFlows(join(dir, 'gen-pretty.json'), { format: 'kubescape' });
    await k.toArray();
    expect(k.stats.samples[0]!.message).toBe('object: expected kind NetworkNeighborhood, got undefined');
  });

  it('counts a Kubescape neighbour without ports in stats.skipped', async () => {
    const nn = JSON.parse(readFileSync(sample('kubescape-networkneighborhood.json'), 'utf8')) as {
      spec: { containers: { egress: { ports: unknown }[] }[] };
    };
    const lost = (nn.spec.containers[0]!.egress[0]!.ports as unknown[]).length;
    nn.spec.containers[0]!.egress[0]!.ports = null;
    const r = readFlows(tmp('nn-no-ports.json', JSON.stringify(nn)));
    expect(await r.toArray()).toHaveLength(13 - lost);
    expect(r.stats.skipped).toEqual({ 'no-ports': 1 });
  });

  it('an object Kubescape saved with no neighbour (resource-size 0) is a counted skip, not fatal under strict', async () => {
    type NN = { metadata: { name: string; annotations: Record<string, string> }; spec: unknown };
    const whole = JSON.parse(readFileSync(sample('kubescape-networkneighborhood.json'), 'utf8')) as NN;
    // Still learning, or a workload without network activity: Kubescape's storage writes the number of
    // neighbours it holds in kubescape.io/resource-size, here 0, and the spec names no container.
    const learning = structuredClone(whole);
    learning.metadata.name = 'replicaset-idle-1';
    learning.metadata.annotations['kubescape.io/status'] = 'initializing';
    learning.metadata.annotations['kubescape.io/resource-size'] = '0';
    learning.spec = { containers: null, initContainers: null, ephemeralContainers: null };
    const list = { apiVersion: 'v1', kind: 'List', items: [whole, learning] };
    const r = readFlows(tmp('nn-learning.json', JSON.stringify(list, null, 2)), { strict: true });
    expect(await r.toArray()).toHaveLength(13);
    expect(r.stats.badLines).toBe(0);
    expect(r.stats.skipped).toEqual({ 'empty-neighborhood': 1 });
    expect(formatIngestStats(r.stats)).toContain('skipped: empty-neighborhood 1');
    // The same object listed without its spec (its size says 13 neighbours) is still a bad record.
    const listed = structuredClone(whole);
    listed.spec = { containers: null, initContainers: null, ephemeralContainers: null };
    const l = readFlows(tmp('nn-listed.json', JSON.stringify({ ...list, items: [listed] }, null, 2)));
    expect(await l.toArray()).toEqual([]);
    expect(l.stats.bad).toEqual({ 'missing-field': 1 });
    expect(l.stats.skipped).toEqual({});
  });

  it('--format overrides detection', async () => {
    const r = readFlows(sample('ig-trace-tcp.jsonl'), { format: 'generic' });
    expect(await r.toArray()).toEqual([]);
    expect(r.stats.samples[0]!.message).toBe('unknown field "comm"');
  });

  it('reads Kubescape objects as YAML, as a List, and as JSON lines', async () => {
    const nn = JSON.parse(readFileSync(sample('kubescape-networkneighborhood.json'), 'utf8'));
    const yaml = tmp(
      'nn.yaml',
      `apiVersion: ${nn.apiVersion}\nkind: NetworkNeighborhood\nmetadata:\n  name: x\n  namespace: ns1\nspec:\n  containers:\n  - name: c\n    egress:\n    - ipAddress: 8.8.8.8\n      ports:\n      - {name: UDP-53, protocol: UDP, port: 53}\n`,
    );
    expect(await readFlows(yaml).toArray()).toEqual([
      {
        time: 0,
        src: { namespace: 'ns1' },
        dst: { ip: '8.8.8.8' },
        protocol: 'UDP',
        port: 53,
        verdict: 'FORWARDED',
        count: 1,
        timeless: true,
        input: 'kubescape',
      },
    ]);
    const list = tmp('nn-list.json', JSON.stringify({ kind: 'List', items: [nn, nn] }, null, 2));
    expect(await readFlows(list).toArray()).toHaveLength(26);
    const lines = tmp(
      'nn-lines.json',
      JSON.stringify(nn) + '\n' + JSON.stringify({ ...nn, kind: 'Pod' }) + '\n',
    );
    const r = readFlows(lines);
    expect(await r.toArray()).toHaveLength(13);
    expect(r.stats.samples[0]).toMatchObject({
      line: 2,
      reason: 'unknown-record',
      message: 'object: expected kind NetworkNeighborhood, got string "Pod"',
    });
  });

  it('reads a NetworkNeighborhoodList as the API serves it (kubectl get --raw: items without kind)', async () => {
    const nn = JSON.parse(readFileSync(sample('kubescape-networkneighborhood.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    const { kind: _kind, apiVersion, ...bare } = nn;
    const raw = {
      kind: 'NetworkNeighborhoodList',
      apiVersion,
      metadata: { resourceVersion: '1' },
      items: [bare, bare],
    };
    // Keys sorted (jq -S): the list's kind comes after its items.
    const sorted = { apiVersion, items: [bare, bare], kind: 'NetworkNeighborhoodList', metadata: {} };
    const files = [
      tmp('nn-raw.json', JSON.stringify(raw, null, 2)),
      tmp('nn-raw-line.json', JSON.stringify(raw)),
      tmp('nn-raw-sorted.json', JSON.stringify(sorted, null, 2)),
      tmp('nn-raw.yaml', JSON.stringify(raw, null, 2).replace(/^\{/, '{').replace(/$/, '\n')),
      tmp('nn-raw-lines.jsonl', JSON.stringify(raw) + '\n' + JSON.stringify(raw) + '\n'),
    ];
    for (const f of files) {
      for (const blockSize of [undefined, 7]) {
        const r = readFlows(f, blockSize ? { blockSize } : {});
        const flows = await r.toArray();
        expect(r.stats.samples, f).toEqual([]);
        expect(flows, f).toHaveLength(f.endsWith('.jsonl') ? 52 : 26);
        expect(r.stats.sources[0]!.format, f).toBe('kubescape');
      }
    }
    // A list that names no kind (List) gives its items none: such an item is no flow.
    const r = readFlows(tmp('nn-raw-list.json', JSON.stringify({ kind: 'List', items: [bare] }, null, 2)));
    expect(await r.toArray()).toEqual([]);
    expect(r.stats.badLines).toBe(1);
    expect(r.stats.samples[0]).toMatchObject({ reason: 'missing-field' });
    expect(r.stats.samples[0]!.message).toMatch(/^it has no kind, and its list \(List\) does not name one/);
  });

  it('a raw NetworkNeighborhoodList cut short, or followed by an object, gives its items the kind their list names', async () => {
    // Read as it arrives (the only way a JSON document that does not parse is read): its raw list's items
    // take the list's kind, cut short as whole.
    const nn = JSON.parse(readFileSync(sample('kubescape-networkneighborhood.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    const { kind: _kind, apiVersion, ...bare } = nn;
    const raw = { kind: 'NetworkNeighborhoodList', apiVersion, metadata: {}, items: [bare, bare, bare] };
    const text = JSON.stringify(raw, null, 2);
    // Cut inside the third item: the two before it are whole, and the cut is a bad record after them.
    const cut = readFlows(tmp('nn-raw-cut.json', text.slice(0, text.lastIndexOf('"metadata"'))));
    expect(await cut.toArray()).toHaveLength(26);
    expect(cut.stats.badLines).toBe(1);
    expect(cut.stats.samples[0]).toMatchObject({ line: 3, reason: 'invalid-json' });
    // Keys sorted (the kind after the items), then an object of its own: the kind read after them.
    const sorted = JSON.stringify({ apiVersion, items: [bare], kind: 'NetworkNeighborhoodList' }, null, 2);
    const two = readFlows(tmp('nn-raw-sorted-then.json', sorted + '\n' + JSON.stringify(nn, null, 2)));
    expect(await two.toArray()).toHaveLength(26);
    expect(two.stats.samples).toEqual([]);
  });

  it('holds a raw NetworkNeighborhoodList whose kind comes after its items only up to a bound', async () => {
    const nn = JSON.parse(readFileSync(sample('kubescape-networkneighborhood.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    const { kind: _kind, apiVersion, ...bare } = nn;
    const total = LIST_KIND_WAIT.items + 100;
    const sorted = {
      apiVersion,
      items: Array.from({ length: total }, () => bare),
      kind: 'NetworkNeighborhoodList',
    };
    const file = tmp('nn-raw-sorted-big.json', JSON.stringify(sorted, null, 2));
    // Whatever the blocks: the items read in the block that holds the list's kind too (the default
    // block's last) are refused as those before them are, never read by the kind read after the bound.
    for (const blockSize of [64 * 1024, undefined]) {
      const r = readFlows(file, blockSize === undefined ? {} : { blockSize });
      const flows = await r.toArray();
      // Past the bound its items are not waited for: read by their own kind, which they lack, the first
      // tells no NetworkNeighborhood, and every item is a bad record, not a flow (a smaller list whose kind
      // comes after its items is read: the test above).
      expect(flows).toEqual([]);
      expect(r.stats.badLines).toBe(total);
      // Refused saying why, and what to do: not read as a generic record ('unknown field "metadata"').
      expect(r.stats.samples[0]).toMatchObject({ line: 1, object: true, reason: 'missing-field' });
      expect(r.stats.samples[0]!.message).toBe(
        `it has no kind, and its list's kind comes after more than ${LIST_KIND_WAIT.items} of its items or ` +
          `${LIST_KIND_WAIT.bytes / 1024 / 1024} MiB of them (keys sorted, as jq -S writes them), more than ` +
          'microseg holds waiting for it; get the list with kubectl get <resource> -o json (each item with ' +
          'its kind), or keep its keys in the order kubectl get --raw writes them (jq without -S)',
      );
      expect(r.stats.bad).toEqual({ 'missing-field': total });
    }
  });
});

describe('generic aggregate records', () => {
  it('pass through untouched without srcPort, ICMP as TCP: each keeps its count and time', async () => {
    const line = (t: string, extra: string) =>
      `{"time":"2026-03-02T10:00:${t}Z","src":"10.244.2.7","dst":"10.244.0.4",${extra}}`;
    const lines = [
      line('00', '"protocol":"ICMPv4","count":5'),
      line('10', '"protocol":"ICMPv4","count":3'),
      line('00', '"port":8080,"count":5'),
      line('10', '"port":8080,"count":3'),
    ];
    const r = readFlows([tmp('aggregates.jsonl', lines.join('\n') + '\n')]);
    const flows = await r.toArray();
    expect(flows.map((f) => [f.protocol, f.count, new Date(f.time).toISOString()])).toEqual([
      ['ICMPv4', 5, '2026-03-02T10:00:00.000Z'],
      ['ICMPv4', 3, '2026-03-02T10:00:10.000Z'],
      ['TCP', 5, '2026-03-02T10:00:00.000Z'],
      ['TCP', 3, '2026-03-02T10:00:10.000Z'],
    ]);
    expect(r.stats.duplicates).toBe(0);
  });
});

describe('the byte path (WebAssembly scanner) against the string path', () => {
  it('gives the same flows and statistics for a large mixed Hubble file, whatever the chunking', async () => {
    const base = readFileSync(sample('hubble-flows.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '');
    const odd = [
      (l: string) => l.replace('"verdict":', '"verdict": '), // whitespace: JSON.parse path
      (l: string) => l.replace('true', 'trux'), // invalid JSON: a bad line
      (l: string) => l.slice(0, 200), // truncated: a bad line
      (l: string) => l.replace('"kind-control-plane"', '"nœud"'), // non-ASCII
      (l: string) => l + '\r', // CRLF
      () => '', // blank
      () => '{"node_status":{"state_change":"NODE_CONNECTED"},"time":"2021-11-10T10:40:56Z"}',
      () => '{"lost_events":{"source":"HUBBLE_RING_BUFFER","num_events_lost":"3"}}',
      (l: string) => l.replace('"verdict":"FORWARDED"', '"verdict":"BOGUS"'), // unknown enum: bad
    ];
    const lines: string[] = [];
    for (let i = 0; i < 4000; i++) {
      // Each copy a second later, so that repeats are new connections or duplicates alike.
      let l = base[i % base.length]!.replace(
        /"time":"2021-(\d\d)-(\d\d)T10:/g,
        `"time":"2021-$1-$2T${String(10 + (i % 12)).padStart(2, '0')}:`,
      );
      if (i % 37 === 5) l = odd[((i / 37) % odd.length) | 0]!(l);
      lines.push(l);
    }
    const content = Buffer.from(lines.join('\n') + '\n', 'utf8');
    expect(content.length).toBeGreaterThan(3 << 20);
    // One block: the first block of a source always takes the string path.
    const reference = readFlows('-', {
      stdin: Readable.from([content]),
      maxSamples: 50,
      blockSize: content.length + 1,
    });
    const expected = await reference.toArray();
    const file = tmp('mixed.jsonl', content);
    const fromFile = readFlows(file, { maxSamples: 50 });
    expect(await fromFile.toArray()).toEqual(expected);
    const chunks: Buffer[] = [];
    for (let i = 0; i < content.length; i += 4093) chunks.push(content.subarray(i, i + 4093));
    const fromChunks = readFlows('-', { stdin: Readable.from(chunks), maxSamples: 50 });
    expect(await fromChunks.toArray()).toEqual(expected);
    const stats = (r: typeof reference) => ({
      ...r.stats,
      sources: r.stats.sources.map((s) => s.lines),
      samples: r.stats.samples.map((s) => ({ ...s, source: '' })),
    });
    expect(stats(fromFile)).toEqual(stats(reference));
    expect(stats(fromChunks)).toEqual(stats(reference));
    // Blocks smaller than most lines: the buffer grows for them, the result is the same.
    const small = readFlows(file, { maxSamples: 50, blockSize: 100 });
    expect(await small.toArray()).toEqual(expected);
    expect(stats(small)).toEqual(stats(reference));
    // Not vacuous: flows, duplicates, bad lines with their line numbers, events.
    expect(expected.length).toBeGreaterThan(10);
    expect(reference.stats.observations).toBeGreaterThan(2500);
    expect(reference.stats.duplicates).toBeGreaterThan(100);
    expect(reference.stats.badLines).toBeGreaterThan(10);
    expect(reference.stats.samples.map((s) => s.line)).toEqual(fromChunks.stats.samples.map((s) => s.line));
    expect(reference.stats.events.node_status + reference.stats.events.lost_events).toBeGreaterThan(5);
  });
});

describe("the scanner's memory", () => {
  const lines = readFileSync(sample('hubble-flows.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '');
  // Blocks after a source's first are scanned by the WebAssembly scanner.
  const file = tmp(
    'scanner-memory.jsonl',
    Array.from({ length: 40 }, () => lines.join('\n')).join('\n') + '\n',
  );

  it('is given up when the last reader finishes, not while another still reads', async () => {
    const expected = await readFlows(file, { blockSize: 4096 }).toArray();
    expect(wasmScannerMemory()).toBe(0);
    const a = readFlows(file, { blockSize: 4096 });
    const b = readFlows(file, { blockSize: 4096 }).batches();
    const first = await b.next();
    expect(first.done).toBe(false);
    expect(await a.toArray()).toEqual(expected);
    // a is done, b still holds the scanner.
    expect(wasmScannerMemory()).toBeGreaterThan(0);
    const rest: Flow[] = [...(first.value as Flow[])];
    for (let r = await b.next(); !r.done; r = await b.next()) rest.push(...r.value);
    expect(rest).toEqual(expected);
    expect(wasmScannerMemory()).toBe(0);
    expect(expected.length).toBeGreaterThan(5);
  });

  it('serves readers whose blocks take turns: each gets what it gets alone', async () => {
    // Files are read straight into the scanner's input block; a reader's partial line is its own.
    const other = tmp(
      'scanner-memory-other.jsonl',
      Array.from({ length: 30 }, (_, i) => lines.slice(i % 7).join('\n')).join('\n') + '\n',
    );
    // Without de-duplication, so that every block gives a batch.
    const opts = (blockSize: number) => ({ blockSize, dedup: false as const });
    const alone = [await readFlows(file, opts(3000)).toArray(), await readFlows(other, opts(5000)).toArray()];
    const readers = [readFlows(file, opts(3000)).batches(), readFlows(other, opts(5000)).batches()];
    const got: Flow[][] = [[], []];
    const done = [false, false];
    let turns = 0;
    while (!done[0] || !done[1]) {
      for (const i of [0, 1]) {
        if (done[i]) continue;
        const r = await readers[i]!.next();
        if (r.done === true) done[i] = true;
        else got[i]!.push(...r.value);
        turns++;
      }
    }
    expect(turns).toBeGreaterThan(20);
    expect(got[0]).toEqual(alone[0]);
    expect(got[1]).toEqual(alone[1]);
    expect(alone[0]!.length).toBeGreaterThan(5);
    expect(alone[1]).not.toEqual(alone[0]);
    expect(wasmScannerMemory()).toBe(0);
  });

  it('forgets interned values between blocks read straight into it, and the flows stay the same', async () => {
    const expected = await readFlows(file, { blockSize: 4096 }).toArray();
    const old = setWasmArenaLimit(3000);
    try {
      const r = readFlows(file, { blockSize: 4096 });
      expect(await r.toArray()).toEqual(expected);
    } finally {
      setWasmArenaLimit(old);
    }
    expect(expected.length).toBeGreaterThan(5);
  });

  it('is given up when the caller stops early', async () => {
    for await (const batch of readFlows(file, { blockSize: 4096 }).batches()) {
      expect(wasmScannerMemory()).toBeGreaterThanOrEqual(0);
      if (batch.length > 0) break;
    }
    expect(wasmScannerMemory()).toBe(0);
  });
});

describe('a bad object of a multi-line document', () => {
  // Named by its position in the document, not as a line: 'nn-list.json:2: ...' pointed at the second
  // line of the file, while the object was the List's second, hundreds of lines further down.
  it('is told as the document object it is, in the summary and under strict', async () => {
    const nn = JSON.parse(readFileSync(sample('kubescape-networkneighborhood.json'), 'utf8')) as {
      spec: { containers: { egress: { ports: { port: number }[] }[] }[] };
    };
    const bad = structuredClone(nn);
    bad.spec.containers[0]!.egress[0]!.ports[0]!.port = 70000;
    const path = tmp(
      'nn-list.json',
      JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [nn, bad] }, null, 2),
    );
    const r = readFlows(path);
    expect(await r.toArray()).toHaveLength(13);
    const message =
      'NetworkNeighborhood kubescape/replicaset-operator-55df98fc6d: spec.containers[0].egress[0].ports[0].port: expected an integer from 1 to 65535, got number 70000';
    expect(formatIngestStats(r.stats)).toContain(`\n  ${path}: object 2: ${message}\n`);
    await expect(readFlows(path, { strict: true }).toArray()).rejects.toThrow(
      `${path}: object 2: ${message}`,
    );
  });
});

describe('decodeHead', () => {
  const zeros = gzipSync(Buffer.alloc(10 * 1024 * 1024, 0x20));

  it('inflates the head of gzip only as far as the text asked for, not all its bytes hold', async () => {
    // 512 bytes of gzip of spaces hold some 500 KB of them.
    const head = zeros.subarray(0, 512);
    const text = await decodeHead(head, 512);
    expect(text).toBe(' '.repeat(512));
  });

  it('reads what starts a file, compressed or not, UTF-16 too, to that length', async () => {
    const report = `{"reportVersion": 1, "warnings": [], "padding": "${'x'.repeat(5000)}"}`;
    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(report, 'utf16le')]);
    for (const bytes of [Buffer.from(report), gzipSync(report), utf16, gzipSync(utf16)]) {
      const text = await decodeHead(bytes.subarray(0, 512), 512);
      expect(text.startsWith('{"reportVersion": 1,')).toBe(true);
      expect(report.startsWith(text)).toBe(true);
    }
    // gzip that cannot be inflated gives no text.
    expect(await decodeHead(Buffer.from([0x1f, 0x8b, 1, 2, 3, 4]), 512)).toBe('');
  });
});
