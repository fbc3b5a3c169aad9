/**
 * The parsing thread of `POST /audit` bodies (src/server/parse.ts): the same objects and errors as
 * parsing in place, the event loop free meanwhile, a body too large for its heap failing alone.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { InputError, parseObjectsText } from '../../src/model/snapshot.ts';
import { ObjectsParser, ParseAbandoned } from '../../src/server/parse.ts';

const policy = (i: number) => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { name: `p-${i}`, namespace: `ns-${i % 7}`, labels: { team: 'a' } },
  spec: {
    podSelector: { matchLabels: { app: `a${i}` } },
    policyTypes: ['Ingress', 'Egress'],
    ingress: [
      {
        from: [{ podSelector: { matchLabels: { app: `x${i}` } } }],
        ports: [{ protocol: 'TCP', port: 8080 }],
      },
    ],
    egress: [],
  },
});
/** YAML documents of policies, about `bytes` long. */
function yamlOf(bytes: number): string {
  const docs: string[] = [];
  let n = 0;
  for (let i = 0; n < bytes; i++) {
    const d = stringify(policy(i));
    docs.push(d);
    n += d.length + 4;
  }
  return docs.join('---\n');
}
const outcome = async (f: () => unknown[] | Promise<unknown[]>): Promise<unknown> => {
  try {
    return { objects: await f() };
  } catch (err) {
    return { error: (err as Error).message, input: err instanceof InputError };
  }
};

const parser = new ObjectsParser();
afterAll(() => parser.close());

describe('ObjectsParser', () => {
  it("judges a body by its own memory, not what an earlier body's parse left on the thread", async () => {
    // The first body leaves 50 MB held on the thread (as a large body's garbage may stay uncollected);
    // the second needs 60 MB for a while. Each fits under the 96 MB cap alone, not both together.
    const leftover = new ObjectsParser({
      heapMb: 96,
      workerFile: new URL('./leftover-parse-worker.ts', import.meta.url),
    });
    try {
      const body = (marker: string) =>
        JSON.stringify([{ ...policy(1), metadata: { ...policy(1).metadata, labels: { marker } } }]);
      expect(await leftover.parse(body('keep-50mb'), 'first')).toHaveLength(1);
      expect(await outcome(() => leftover.parse(body('use-60mb'), 'second'))).toEqual({
        objects: [expect.objectContaining({ kind: 'NetworkPolicy' })],
      });
    } finally {
      await leftover.close();
    }
  });

  it('gives what parsing in place gives: objects, and errors as InputErrors worded the same', async () => {
    const texts = [
      JSON.stringify({ kind: 'List', items: [policy(1), policy(2)] }),
      JSON.stringify([policy(3)]),
      `${stringify(policy(4))}---\n${stringify(policy(5))}`,
      '{"kind": "List", "items": [',
      `${stringify(policy(6))}---\nkind: Pod\n metadata: bad\n`,
      '   ',
      '42',
      `${stringify({ __proto__: null, kind: 'Pod', metadata: { name: '__proto__' } })}`,
    ];
    let errors = 0;
    for (const text of texts) {
      const want = await outcome(() => parseObjectsText(text, 'body'));
      expect(await outcome(() => parser.parse(text, 'body')), text).toEqual(want);
      if ((want as { input?: boolean }).input === true) errors++;
    }
    expect(errors).toBe(4);
  });

  it('parses the largest body POST /audit takes, 8 MiB of YAML, within its default heap', async () => {
    const text = yamlOf(8 * 1024 * 1024 - 2048);
    expect(text.length).toBeLessThanOrEqual(8 * 1024 * 1024);
    const objects = await parser.parse(text, 'body');
    expect(objects.length).toBe(text.split('---\n').length);
  });

  it('keeps the event loop free while it parses', async () => {
    const text = yamlOf(1_000_000);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    try {
      const objects = await parser.parse(text, 'body');
      expect(objects.length).toBeGreaterThan(2000);
    } finally {
      clearInterval(timer);
    }
    // Parsed in place, the parse would have run to its end before any timer: none would have ticked.
    expect(ticks).toBeGreaterThanOrEqual(2);
  });

  it('fails a body too large for its heap alone, and parses the next in a new thread', async () => {
    const small = new ObjectsParser({ heapMb: 24 });
    try {
      const big = small.parse(yamlOf(6_000_000), 'body');
      const after = small.parse(JSON.stringify(policy(9)), 'next');
      expect(await outcome(() => big)).toEqual({
        error: "body: too large to parse: it needs more than the parser's 24 MB of memory",
        input: true,
      });
      expect(await after).toEqual([policy(9)]);
      expect(await small.parse(stringify(policy(10)), 'later')).toEqual([policy(10)]);
    } finally {
      await small.close();
    }
  });

  it('reads a body on its own thread only, never handing it to a second one outside its memory cap', async () => {
    // A policy 1000 levels deep, with a stack too small for it: handed to a second thread (which the
    // parser's heap limit does not hold), it would be read; on the parsing thread alone it is refused.
    const small = new ObjectsParser({ stackMb: 1 });
    const deep = `kind: NetworkPolicy\nmetadata: {name: d}\nspec: ${'['.repeat(998)}${']'.repeat(998)}\n`;
    try {
      // Where it overflows depends on how far the reader's code is optimised.
      expect(await outcome(() => small.parse(deep, 'body'))).toEqual({
        error: expect.stringMatching(
          /^body: YAML document 1: lists and objects nested too deeply for the YAML reader at line 3, column \d+$/,
        ),
        input: true,
      });
    } finally {
      await small.close();
    }
    // With the stack it has (DEEP_STACK_MB), as deep as that is read.
    expect(await parser.parse(deep, 'body')).toMatchObject([{ kind: 'NetworkPolicy' }]);
  });

  it('holds the process open while a request waits, and not once all are answered', () => {
    // A script whose only work is the parse: it must wait for the answer (its top-level await would
    // be left unsettled, exit code 13), then exit by itself, as a server stopped after an audit must.
    const dir = mkdtempSync(join(tmpdir(), 'microseg-parse-'));
    try {
      const file = join(dir, 'parse.mjs');
      writeFileSync(
        file,
        [
          `const { ObjectsParser } = await import(${JSON.stringify(new URL('../../src/server/parse.ts', import.meta.url).href)});`,
          'const p = new ObjectsParser();',
          `const text = ${JSON.stringify(yamlOf(200_000))};`,
          "const [a, b] = await Promise.all([p.parse(text, 'body'), p.parse('kind: Pod\\n', 'next')]);",
          'console.log(a.length > 500, JSON.stringify(b));',
        ].join('\n'),
      );
      const r = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 15_000 });
      expect([r.status, r.signal, r.stdout, r.stderr]).toEqual([0, null, 'true [{"kind":"Pod"}]\n', '']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('drops a request whose caller gives up before its turn, and stops the one it is parsing', async () => {
    const p = new ObjectsParser();
    try {
      const big = yamlOf(1_000_000);
      const first = p.parse(big, 'first');
      const gone = new AbortController();
      const second = p.parse(big, 'second', gone.signal);
      const third = p.parse(JSON.stringify(policy(3)), 'third');
      expect(p.waiting).toBe(3);
      gone.abort();
      // Out of the queue at once, its text no longer held.
      expect(p.waiting).toBe(2);
      await expect(second).rejects.toThrow(new ParseAbandoned('second'));
      await expect(second).rejects.toThrow('second: not parsed: the request was abandoned');
      expect((await first).length).toBeGreaterThan(2000);
      expect(await third).toEqual([policy(3)]);
      // Being parsed: the thread is stopped, and the next request goes to a new one.
      const stop = new AbortController();
      const fourth = p.parse(big, 'fourth', stop.signal);
      const fifth = p.parse(stringify(policy(5)), 'fifth');
      stop.abort();
      await expect(fourth).rejects.toThrow('fourth: not parsed: the request was abandoned');
      expect(await fifth).toEqual([policy(5)]);
      // Given up already: not even queued.
      await expect(p.parse('{}', 'sixth', stop.signal)).rejects.toThrow(
        'sixth: not parsed: the request was abandoned',
      );
      expect(p.waiting).toBe(0);
    } finally {
      await p.close();
    }
  });

  it('once closed, refuses what it had not answered and what comes after', async () => {
    const p = new ObjectsParser();
    const waiting = p.parse(yamlOf(500_000), 'body');
    await p.close();
    await expect(waiting).rejects.toThrow(/closed|stopped/);
    await expect(p.parse('{}', 'body')).rejects.toThrow('the body parser is closed');
  });
});
