import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { pageUrl, portOption } from '../../src/cli/commands/demo.ts';
import { runCli } from '../../src/cli/main.ts';
import { captureIO } from '../../src/cli/io.ts';
import { loadSnapshotText } from '../../src/model/snapshot.ts';

const root = mkdtempSync(join(tmpdir(), 'microseg-generate-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function gen(args: string[]) {
  const io = captureIO();
  const code = await runCli(['generate', ...args], io);
  return { code, out: io.stdout, err: io.stderr };
}

describe('microseg generate --scenario demo', () => {
  it('writes byte-identical files for the same seed', async () => {
    const a = join(root, 'a');
    const b = join(root, 'b');
    const r1 = await gen(['--scenario', 'demo', '--out', a]);
    expect(r1.code).toBe(0);
    expect(r1.out).toMatch(
      /^wrote .*cluster\.json \(\d+ objects\), .*flows\.jsonl \(\d+ lines\), .*truth\.json \(\d+ edges, 1 denied\)\n$/,
    );
    expect((await gen(['--scenario', 'demo', '--out', b, '--seed', '1'])).code).toBe(0);
    for (const f of ['cluster.json', 'flows.jsonl', 'truth.json']) {
      expect(readFileSync(join(a, f)).equals(readFileSync(join(b, f))), f).toBe(true);
    }
    const c = join(root, 'c');
    expect((await gen(['--scenario', 'demo', '--out', c, '--seed', '7'])).code).toBe(0);
    expect(readFileSync(join(a, 'flows.jsonl')).equals(readFileSync(join(c, 'flows.jsonl')))).toBe(false);
  });

  it('writes a kubectl-shaped List the snapshot loader reads, and gzip flows on request', async () => {
    const dir = join(root, 'gz');
    expect((await gen(['--scenario', 'demo', '--out', dir, '--gzip'])).code).toBe(0);
    const text = readFileSync(join(dir, 'cluster.json'), 'utf8');
    expect(text.startsWith('{\n    "apiVersion": "v1",\n    "items": [\n        {\n')).toBe(true);
    expect(
      text.endsWith(
        '    ],\n    "kind": "List",\n    "metadata": {\n        "resourceVersion": ""\n    }\n}\n',
      ),
    ).toBe(true);
    const snap = loadSnapshotText(text, 'cluster.json');
    expect(snap.pods.length).toBeGreaterThan(20);
    const kinds = (JSON.parse(text) as { items: { kind: string }[] }).items.map((i) => i.kind);
    expect(kinds.indexOf('Namespace')).toBe(0);
    expect(kinds.lastIndexOf('Pod')).toBeLessThan(kinds.indexOf('Service'));
    const plain = readFileSync(join(root, 'a', 'flows.jsonl'));
    expect(gunzipSync(readFileSync(join(dir, 'flows.jsonl.gz'))).equals(plain)).toBe(true);
  });

  it('removes the flows file of the other variant an earlier run left, saying so, and nothing else', async () => {
    const dir = join(root, 'variants');
    const plain = join(dir, 'flows.jsonl');
    const gz = join(dir, 'flows.jsonl.gz');
    const first = await gen(['--scenario', 'demo', '--out', dir]);
    expect([first.code, first.err]).toEqual([0, '']);
    writeFileSync(join(dir, 'flows.jsonl.bak'), 'mine\n');
    const zipped = await gen(['--scenario', 'demo', '--out', dir, '--gzip']);
    expect(zipped.code).toBe(0);
    expect(zipped.err).toBe(
      `microseg generate: removed ${plain}, written by an earlier run without --gzip: this run wrote ${gz}\n`,
    );
    expect(readdirSync(dir).sort()).toEqual([
      'cluster.json',
      'flows.jsonl.bak',
      'flows.jsonl.gz',
      'truth.json',
    ]);
    const back = await gen(['--scenario', 'demo', '--out', dir]);
    expect(back.err).toBe(
      `microseg generate: removed ${gz}, written by an earlier run with --gzip: this run wrote ${plain}\n`,
    );
    expect(readdirSync(dir).sort()).toEqual(['cluster.json', 'flows.jsonl', 'flows.jsonl.bak', 'truth.json']);
    expect(readFileSync(join(dir, 'flows.jsonl.bak'), 'utf8')).toBe('mine\n');
    // The same run again has nothing to remove.
    expect((await gen(['--scenario', 'demo', '--out', dir])).err).toBe('');
    // A directory of that name is no file of an earlier run: it is kept, and named.
    mkdirSync(gz);
    const kept = await gen(['--scenario', 'demo', '--out', dir]);
    expect(kept.code).toBe(0);
    expect(kept.err).toBe(
      `microseg generate: kept ${gz}: a directory, not the flows of an earlier run; this run wrote ${plain}\n`,
    );
    expect(existsSync(gz)).toBe(true);
  });

  it("keeps a flows file of the other variant that no run wrote (the user's own capture), saying so", async () => {
    // README's `hubble observe -o jsonpb > flows.jsonl` in the directory a demo is then generated into
    // with --gzip (or a capture gzipped as flows.jsonl.gz, then a run without): was deleted.
    const dir = join(root, 'capture');
    mkdirSync(dir);
    const plain = join(dir, 'flows.jsonl');
    const gz = join(dir, 'flows.jsonl.gz');
    const capture = readFileSync(
      new URL('../../../shared/samples/hubble-flows.jsonl', import.meta.url),
    ).subarray(0, 4096);
    writeFileSync(plain, capture);
    const zipped = await gen(['--scenario', 'demo', '--out', dir, '--gzip']);
    expect(zipped.code).toBe(0);
    expect(readFileSync(plain).equals(capture)).toBe(true);
    expect(zipped.err).toBe(
      `microseg generate: kept ${plain}: not flows microseg generate wrote; this run wrote ${gz}\n`,
    );
    rmSync(gz);
    rmSync(plain);
    const zippedCapture = gzipSync(capture);
    writeFileSync(gz, zippedCapture);
    const back = await gen(['--scenario', 'demo', '--out', dir]);
    expect(back.code).toBe(0);
    expect(readFileSync(gz).equals(zippedCapture)).toBe(true);
    expect(back.err).toBe(
      `microseg generate: kept ${gz}: not flows microseg generate wrote; this run wrote ${plain}\n`,
    );
    // A large run's flows are generate's too: removed by a demo run with --gzip.
    const large = join(root, 'large-then-demo');
    expect(
      (await gen(['--scenario', 'large', '--workloads', '50', '--flows', '20', '--out', large])).code,
    ).toBe(0);
    const demo = await gen(['--scenario', 'demo', '--out', large, '--gzip']);
    expect(demo.err).toMatch(/^microseg generate: removed .*flows\.jsonl, written by an earlier run/);
    expect(existsSync(join(large, 'flows.jsonl'))).toBe(false);
  });

  it('rejects bad usage with a clear message and exit code 2', async () => {
    const cases: [string[], string][] = [
      [['--out', root], '--scenario is required (demo or large)'],
      [['--scenario', 'huge', '--out', root], "--scenario must be demo or large, got 'huge'"],
      [['--scenario', 'demo'], '--out DIR is required'],
      [['--scenario', 'demo', '--out', ''], '--out is empty: give a directory\n'],
      [['--scenario', 'large', '--out='], '--out is empty: give a directory\n'],
      [['--scenario', 'demo', '--out', root, '--seed', 'abc'], "--seed must be an integer, got 'abc'"],
      [['--scenario', 'demo', '--out', root, '--seed=-1'], '--seed must be between 0 and 4294967295, got -1'],
      [['--scenario', 'demo', '--out', root, '--flows', '10'], '--flows applies to --scenario large only'],
      [
        ['--scenario', 'demo', '--out', root, '--workloads', '100'],
        '--workloads applies to --scenario large only',
      ],
      [
        ['--scenario', 'large', '--out', root, '--workloads', '3'],
        '--workloads must be between 50 and 200000, got 3',
      ],
      [['--scenario', 'demo', '--out', root, '--colour'], "Unknown option '--colour'"],
    ];
    for (const [args, message] of cases) {
      const r = await gen(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err).toContain(`microseg generate: ${message}`);
    }
  });

  it('an --out that cannot be written is bad usage naming it, not an internal error', async () => {
    // Was exit 3 with a stack trace (EEXIST or ENOTDIR from mkdir, EISDIR from the write).
    const file = join(root, 'out-is-a-file');
    writeFileSync(file, 'kept\n');
    const taken = join(root, 'out-taken');
    mkdirSync(join(taken, 'cluster.json'), { recursive: true });
    const cases: [string, string][] = [
      [file, `--out ${file}: cannot write: not a directory`],
      [join(file, 'sub'), `--out ${join(file, 'sub')}: cannot write: ${file} is not a directory`],
      [taken, `--out ${taken}: cannot write: cluster.json: is a directory`],
    ];
    for (const [out, message] of cases) {
      const r = await gen(['--scenario', 'demo', '--out', out]);
      expect(r.err, out).toBe(`microseg generate: ${message}\n`);
      expect(r.code, out).toBe(2);
      expect(r.out).toBe('');
    }
    expect(readFileSync(file, 'utf8')).toBe('kept\n');
    expect(readdirSync(taken)).toEqual(['cluster.json']);
    // A directory the file system refuses: was a hang at full CPU as root (mkdir's recursive mode
    // retries /proc/x for ever); permission denied otherwise.
    const proc = await gen(['--scenario', 'demo', '--out', '/proc/microseg-x']);
    expect(proc.err).toBe(
      process.getuid?.() === 0
        ? 'microseg generate: --out /proc/microseg-x: cannot write: cannot make the directory /proc/microseg-x: /proc does not allow new directories in it (no such file or directory)\n'
        : 'microseg generate: --out /proc/microseg-x: cannot write: cannot make the directory /proc/microseg-x: permission denied\n',
    );
    expect(proc.code).toBe(2);
    // A usage error found after --out is named leaves no directory behind.
    const none = join(root, 'not-made');
    expect((await gen(['--scenario', 'demo', '--out', none, '--flows', '10'])).code).toBe(2);
    expect(existsSync(none)).toBe(false);
  });

  it('prints help', async () => {
    const r = await gen(['--help']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('usage: microseg generate --scenario demo|large --out DIR');
  });
});

describe('microseg generate --scenario large', () => {
  it('writes the same bytes for the same seed, a compact List, and a truth with per-edge counts', async () => {
    const a = join(root, 'la');
    const b = join(root, 'lb');
    const args = ['--scenario', 'large', '--workloads', '120', '--flows', '3000', '--seed', '9'];
    const r = await gen([...args, '--out', a]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(
      /^wrote .*cluster\.json \(\d+ objects, \d+ pods on \d+ nodes\), .*flows\.jsonl \(3000 lines\), .*truth\.json \(\d+ edges, \d+ of them in the flows, \d+ domains?\)\n$/,
    );
    expect((await gen([...args, '--out', b])).code).toBe(0);
    for (const f of ['cluster.json', 'flows.jsonl', 'truth.json']) {
      expect(readFileSync(join(a, f)).equals(readFileSync(join(b, f))), f).toBe(true);
    }
    const text = readFileSync(join(a, 'cluster.json'), 'utf8');
    expect(text.split('\n')[0]).toBe('{"apiVersion":"v1","items":[');
    const snap = loadSnapshotText(text, 'cluster.json');
    const truth = JSON.parse(readFileSync(join(a, 'truth.json'), 'utf8'));
    expect(truth.scenario).toBe('large');
    expect(snap.pods).toHaveLength(truth.pods);
    const flows = readFileSync(join(a, 'flows.jsonl'), 'utf8').trim().split('\n');
    expect(flows).toHaveLength(3000);
    const drawn = truth.edges.reduce(
      (n: number, e: { connections: number }) => n + (e.connections > 0 ? 1 : 0),
      0,
    );
    expect(r.out).toContain(`${truth.edges.length} edges, ${drawn} of them in the flows`);
  });
});

describe('microseg generate --scenario large at its fewest workloads', () => {
  it('says the count of one domain in the singular', async () => {
    const dir = join(root, 'few');
    const r = await gen(['--scenario', 'large', '--workloads', '50', '--flows', '10', '--out', dir]);
    expect(r.code).toBe(0);
    const truth = JSON.parse(readFileSync(join(dir, 'truth.json'), 'utf8')) as { domains: unknown[] };
    expect(truth.domains).toHaveLength(1);
    expect(r.out).toMatch(/, 1 domain\)\n$/);
  });

  it('docs/demo.md gives the range of --workloads and --flows the command takes', async () => {
    const doc = readFileSync(new URL('../../docs/demo.md', import.meta.url), 'utf8').replace(/\s+/g, ' ');
    for (const option of ['--workloads', '--flows']) {
      const r = await gen(['--scenario', 'large', '--out', join(root, 'never'), option, '-1']);
      const [, min, max] = /must be between (\d+) and (\d+)/.exec(r.err)!;
      const en = (n: string) => Number(n).toLocaleString('en');
      expect(doc, option).toContain(`\`${option}\` from ${en(min!)} to ${en(max!)}`);
    }
  });
});

describe('microseg demo', () => {
  async function demo(args: string[]) {
    const io = captureIO();
    const code = await runCli(['demo', ...args], io);
    return { code, out: io.stdout, err: io.stderr };
  }

  it('a port in use is bad usage naming the address and --port, found before anything is written', async () => {
    // Was the whole run, its files written, then an internal error with a stack trace (exit 3).
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const port = (busy.address() as AddressInfo).port;
    const out = join(root, 'demo-busy');
    try {
      expect(await demo(['--out', out, '--port', String(port)])).toEqual({
        code: 2,
        out: '',
        err: `microseg demo: cannot listen on 127.0.0.1:${port}: the address is already in use (another process listens there); choose another with --port\n`,
      });
    } finally {
      await new Promise((resolve) => busy.close(resolve));
    }
    expect(existsSync(out)).toBe(false);
  });

  it('an empty or non-decimal --port or $PORT is bad usage naming it, not port 0 (any free port)', async () => {
    // Was: '' read as 0, so the page was served on a random port, and 0x50 or 1e3 as 80 or 1000.
    const out = join(root, 'demo-bad-port');
    const message = (flag: string, text: string) =>
      `microseg demo: ${flag} must be a port number, 0 to 65535 in decimal digits, got ${JSON.stringify(text)}\n`;
    for (const text of ['', ' ', '0x50', '1e3', '80.0', '+80', '65536', '-1'])
      expect(await demo(['--out', out, '--port', text, '--no-serve']), text).toEqual({
        code: 2,
        out: '',
        err: message('--port', text),
      });
    const saved = process.env.PORT;
    try {
      process.env.PORT = '0x50';
      expect(await demo(['--out', out, '--no-serve'])).toEqual({
        code: 2,
        out: '',
        err: message('--port ($PORT)', '0x50'),
      });
      // An empty $PORT is unset, as the shell's ${PORT:-8080} reads it: the default port.
      process.env.PORT = '';
      expect(portOption(undefined)).toBe(8080);
      process.env.PORT = '9123';
      expect(portOption(undefined)).toBe(9123);
      expect(portOption('0')).toBe(0);
    } finally {
      if (saved === undefined) delete process.env.PORT;
      else process.env.PORT = saved;
    }
    expect(existsSync(out)).toBe(false);
  });

  it('prints the page address as a URL a browser opens, an IPv6 address in brackets', () => {
    const at = (address: string, family: string) => pageUrl({ address, family, port: 8080 });
    expect(at('127.0.0.1', 'IPv4')).toBe('http://localhost:8080/');
    expect(at('192.0.2.10', 'IPv4')).toBe('http://192.0.2.10:8080/');
    // Was http://::1:8080/, which is no URL.
    expect(at('::1', 'IPv6')).toBe('http://[::1]:8080/');
    expect(at('fe80::1%eth0', 'IPv6')).toBe('http://[fe80::1%25eth0]:8080/');
  });

  it('an address of no interface here is bad usage naming --host', async () => {
    const r = await demo(['--out', join(root, 'demo-host'), '--port', '0', '--host', '192.0.2.1']);
    expect(r).toEqual({
      code: 2,
      out: '',
      err: 'microseg demo: cannot listen on 192.0.2.1:0: no network interface of this machine has that address; choose another with --host\n',
    });
  });

  it('--out is checked first too, and --no-serve listens nowhere', async () => {
    const file = join(root, 'demo-out-file');
    writeFileSync(file, 'kept\n');
    expect(await demo(['--out', file, '--no-serve'])).toEqual({
      code: 2,
      out: '',
      err: `microseg demo: --out ${file}: cannot write: not a directory\n`,
    });
    expect(readFileSync(file, 'utf8')).toBe('kept\n');
    const out = join(root, 'demo-no-serve');
    const r = await demo(['--out', out, '--no-serve']);
    expect(r.code).toBe(0);
    expect(r.out).not.toContain('web page:');
    expect(readdirSync(out).sort()).toEqual(['demo', 'graph.dot', 'graph.json', 'policies']);
  });
});

describe('microseg demo graph.json', () => {
  it('is what microseg graph prints for the demo inputs it wrote, segments and modularity included', async () => {
    const out = join(root, 'demo-graph');
    expect(await runCli(['demo', '--out', out, '--no-serve'], captureIO())).toBe(0);
    const io = captureIO();
    const code = await runCli(
      ['graph', '--flows', join(out, 'demo', 'flows.jsonl'), '--cluster', join(out, 'demo', 'cluster.json')],
      io,
    );
    expect(code).toBe(0);
    expect(readFileSync(join(out, 'graph.json'), 'utf8')).toBe(io.stdout);
  });
});
