/**
 * A re-run of `recommend` into the directory of an earlier run keeps the segment names of that run
 * (its report.json): a community keeps the name most of its members had. Only the report's `segments`
 * member is read, and a report that cannot be read is said so and leaves the names to be chosen afresh.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureIO, EXIT } from '../../src/cli/io.ts';
import { runCli } from '../../src/cli/main.ts';
import { previousSegments } from '../../src/cli/previous.ts';
import { generateDemo } from '../../src/generate/demo.ts';
import { writeLines } from '../../src/generate/write.ts';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'microseg-previous-'));
  const demo = generateDemo();
  await writeFile(
    join(dir, 'cluster.json'),
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items: demo.objects }),
  );
  await writeLines(join(dir, 'flows.jsonl'), demo.lines);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function recommendInto(out: string) {
  const io = captureIO();
  const code = await runCli(
    ['recommend', '--flows', join(dir, 'flows.jsonl'), '--cluster', join(dir, 'cluster.json'), '--out', out],
    io,
  );
  return { code, out: io.stdout, err: io.stderr };
}

interface Report {
  segments: { list: { id: string; kind: string; members: string[] }[] };
}
const readReport = async (out: string) =>
  JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as Report;

/** A report.json in a directory of its own, from its text. */
async function reportDir(name: string, text: string | Buffer): Promise<string> {
  const d = join(dir, name);
  await mkdir(d, { recursive: true });
  await writeFile(join(d, 'report.json'), text);
  return d;
}

describe('recommend into the directory of an earlier run', () => {
  it('keeps the names of the earlier segments, and writes the same files when nothing else changed', async () => {
    const out = join(dir, 'policies');
    const first = await recommendInto(out);
    expect(first.code).toBe(EXIT.ok);
    expect(first.out).not.toContain('segment names kept');
    const before = await readReport(out);
    const files = async () =>
      Promise.all(['shop.yaml', 'data.yaml', 'report.json'].map((f) => readFile(join(out, f), 'utf8')));
    const written = await files();
    // Again: every community keeps its own name, and every file is the same bytes.
    const again = await recommendInto(out);
    expect(again.code).toBe(EXIT.ok);
    const communities = before.segments.list.filter((s) => s.kind === 'community');
    expect(again.out).toContain(
      `segment names kept from the report.json of the previous run: ${communities.length} (a community keeps the name most of its members had)`,
    );
    expect(await files()).toEqual(written);
    const after = await readReport(out);

    // The earlier run called shop-checkout's community `checkout-team` (a name given by hand, or by an
    // anchor a connection since moved): the policies of its workloads keep that label.
    const renamed = {
      ...after,
      segments: {
        ...after.segments,
        list: after.segments.list.map((s) => (s.id === 'shop-checkout' ? { ...s, id: 'checkout-team' } : s)),
      },
    };
    expect(renamed.segments.list.map((s) => s.id)).toContain('checkout-team');
    await writeFile(join(out, 'report.json'), JSON.stringify(renamed));
    expect((await recommendInto(out)).code).toBe(EXIT.ok);
    const kept = await readReport(out);
    expect(kept.segments.list.map((s) => s.id)).toEqual(renamed.segments.list.map((s) => s.id).sort());
    const yaml = await readFile(join(out, 'shop.yaml'), 'utf8');
    expect(yaml).toContain('microseg.dev/segment: checkout-team');
    expect(yaml).not.toContain('microseg.dev/segment: shop-checkout');
  });

  it('says why a report.json it cannot read is not used, and chooses the names afresh', async () => {
    const out = join(dir, 'broken');
    await mkdir(out, { recursive: true });
    await writeFile(join(out, 'report.json'), '{"reportVersion": 1, "segments": {"list": [1, 2]}}');
    const r = await recommendInto(out);
    expect(r.code).toBe(EXIT.ok);
    expect(r.err).toBe(
      `warning: ${join(out, 'report.json')} not read: "segments.list[0]" is not a segment (a string id and kind, a list of member ids); segment names are chosen afresh\n`,
    );
    expect(r.out).not.toContain('segment names kept');
  });
});

describe('previousSegments', () => {
  const segments = {
    count: 3,
    list: [
      { id: 'shop-web', kind: 'community', members: ['shop/Deployment/web', 'shop/Deployment/api'] },
      { id: 'shop-platform', kind: 'platform', members: ['shop/Deployment/auth'] },
      { id: 'payments', kind: 'pinned', members: ['pay/Deployment/ledger'] },
    ],
  };
  const community = new Map([
    ['shop/Deployment/web', 'shop-web'],
    ['shop/Deployment/api', 'shop-web'],
  ]);

  it('reads the community segments of the report, not the other members nor nested "segments"', async () => {
    const d = await reportDir(
      'nested',
      JSON.stringify({
        reportVersion: 1,
        inputs: { note: 'a "segments": {} in a string', segments: { list: [] } },
        graph: [{ segments: 1 }],
        segments,
        evidence: [],
      }),
    );
    expect(await previousSegments(d)).toEqual({
      kind: 'read',
      path: join(d, 'report.json'),
      membership: community,
      segments: 1,
    });
  });

  it('finds the member across the reads of a large report, its key split between two', async () => {
    // The file is read 1 MiB at a time: the key starts 3 bytes before the first read's end.
    const head = '{"reportVersion":1,"inputs":"';
    const fill = 'x'.repeat((1 << 20) - head.length - '","'.length - 3);
    const text = `${head}${fill}","segments":${JSON.stringify(segments)},"evidence":[]}`;
    expect(text.indexOf('"segments"')).toBe((1 << 20) - 4);
    const d = await reportDir('large', text);
    expect(await previousSegments(d)).toMatchObject({ kind: 'read', membership: community });
  });

  it('reads a report saved with a UTF-8 byte order mark or CRLF line ends (an editor, a Windows checkout)', async () => {
    const text = JSON.stringify({ reportVersion: 1, segments, evidence: [] }, null, 2).replaceAll(
      '\n',
      '\r\n',
    );
    for (const [name, body] of [
      ['bom', '\ufeff' + text],
      ['crlf', text],
    ]) {
      const d = await reportDir(name!, body!);
      expect(await previousSegments(d), name).toMatchObject({ kind: 'read', membership: community });
    }
    // A mark anywhere but at the start is no report's.
    const d = await reportDir('bom-late', ' \ufeff' + text);
    expect(await previousSegments(d)).toMatchObject({ kind: 'unread' });
  });

  // Windows PowerShell's `Get-Content report.json | Set-Content` or `>` writes it again as UTF-16, as every
  // other input of microseg reads it; and gzip, as they take it too.
  it('reads a report saved as UTF-16, with a byte order mark or without, or gzip', async () => {
    const text = JSON.stringify({ reportVersion: 1, segments, evidence: [] }, null, 2);
    const le = Buffer.from(text, 'utf16le');
    for (const [name, body] of [
      ['utf16le', Buffer.concat([Buffer.from([0xff, 0xfe]), le])],
      ['utf16be', Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(le).swap16()])],
      ['utf16le-nobom', le],
      ['utf16be-nobom', Buffer.from(le).swap16()],
      ['gzip', gzipSync(text)],
    ] as const) {
      const d = await reportDir(name, body);
      expect(await previousSegments(d), name).toEqual({
        kind: 'read',
        path: join(d, 'report.json'),
        membership: community,
        segments: 1,
      });
    }
  });

  it('says what is wrong with a report it cannot use', async () => {
    const cases: [string, string][] = [
      [
        '[1, 2]',
        'it has no top-level "segments" object in its first 64 MB (not a report of microseg recommend?)',
      ],
      [
        '{"reportVersion": 1}',
        'it has no top-level "segments" object in its first 64 MB (not a report of microseg recommend?)',
      ],
      [
        '{"segments": {"list": [1,]}}',
        'its "segments" member is not valid JSON: Unexpected token \']\', "{"list": [1,]}" is not valid JSON',
      ],
      ['{"segments": {"count": 2}}', '"segments.list" is not a list'],
      ['{"segments": {"list": [{"id": "a"', 'it ends inside its "segments" member'],
      [
        '{"segments": {"list": [{"id": "a", "kind": "community", "members": [1]}]}}',
        '"segments.list[0]" is not a segment (a string id and kind, a list of member ids)',
      ],
    ];
    for (const [i, [text, reason]] of cases.entries()) {
      const d = await reportDir(`bad-${i}`, text);
      expect(await previousSegments(d)).toEqual({ kind: 'unread', path: join(d, 'report.json'), reason });
    }
    expect(await previousSegments(join(dir, 'no-such-dir'))).toEqual({ kind: 'none' });
  });
});
