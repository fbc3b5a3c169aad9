/**
 * `microseg serve`: the page's API on a user's flows and cluster says what `microseg recommend` writes for
 * the same inputs, and bad input is refused as recommend refuses it.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureIO, EXIT } from '../../src/cli/io.ts';
import { runCli } from '../../src/cli/main.ts';
import { HELP } from '../../src/cli/commands/serve.ts';
import { closeServer, listenForPage } from '../../src/cli/page.ts';
import { HEADERS_TIMEOUT_MS, REQUEST_TIMEOUT_MS } from '../../src/server/listen.ts';
import { getWithHost } from '../web/host-request.ts';

const root = mkdtempSync(join(tmpdir(), 'microseg-serve-'));
const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const fixture = (p: string) => fileURLToPath(new URL(`../fixtures/${p}`, import.meta.url));
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function cli(args: string[]) {
  const io = captureIO();
  const code = await runCli(args, io);
  return { code, out: io.stdout, err: io.stderr };
}

/** Starts `microseg serve` with `args` and resolves with the page's address once it prints it. */
function startServe(args: string[]): Promise<{ child: ChildProcess; url: string; out: () => string }> {
  const child = spawn(process.execPath, [MAIN, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      const m = /web page: (http:\/\/localhost:\d+\/)/.exec(stdout);
      if (m) resolve({ child, url: m[1]!.replace('localhost', '127.0.0.1'), out: () => stdout });
    });
    child.on('exit', (code) => reject(new Error(`microseg serve exited with ${code}: ${stderr}`)));
  });
}

function stop(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    child.on('exit', (code) => resolve(code));
    child.kill('SIGTERM');
  });
}

const TOKEN = 'serve-test-token';

describe('microseg serve on the demo inputs, against microseg recommend', () => {
  let inputs: { flows: string; cluster: string };
  let policies: string;
  let served: { child: ChildProcess; url: string; out: () => string };
  /** `token` '' sends none. */
  const api = async (path: string, token = TOKEN) =>
    fetch(new URL(`api/v1/${path}`, served.url), {
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
  const json = async (path: string) => {
    const r = await api(path);
    expect(r.status, path).toBe(200);
    return (await r.json()) as Record<string, unknown>;
  };

  beforeAll(async () => {
    const dir = join(root, 'demo');
    expect((await cli(['generate', '--scenario', 'demo', '--out', dir])).code).toBe(EXIT.ok);
    inputs = { flows: join(dir, 'flows.jsonl'), cluster: join(dir, 'cluster.json') };
    policies = join(root, 'policies');
    const r = await cli([
      'recommend',
      '--flows',
      inputs.flows,
      '--cluster',
      inputs.cluster,
      '--out',
      policies,
    ]);
    expect(r.code, r.err).toBe(EXIT.ok);
    const tokenFile = join(root, 'token');
    writeFileSync(tokenFile, `${TOKEN}\n`);
    served = await startServe([
      '--flows',
      inputs.flows,
      '--cluster',
      inputs.cluster,
      '--policies',
      policies,
      '--listen',
      '127.0.0.1:0',
      '--token-file',
      tokenFile,
    ]);
  }, 120_000);

  afterAll(async () => {
    if (served) expect(await stop(served.child)).toBe(EXIT.ok);
  });

  it("serves the page's graph, segments, proposal and evidence that recommend's report.json says", async () => {
    const report = JSON.parse(readFileSync(join(policies, 'report.json'), 'utf8')) as {
      graph: { nodes: number; edges: number; nodesByKind: Record<string, number> };
      segments: { list: unknown[]; modularity: number; resolution: number; seed: number };
      policies: { names: string[]; byWorkload: Record<string, string[]>; unobserved: string[] };
      evidence: unknown;
      notExpressible: unknown;
    };
    const graph = (await json('graph/export')) as { nodes: { kind: string }[]; edges: unknown[] };
    expect(graph.nodes.length).toBe(report.graph.nodes);
    expect(graph.edges.length).toBe(report.graph.edges);
    const byKind: Record<string, number> = {};
    for (const n of graph.nodes) byKind[n.kind] = (byKind[n.kind] ?? 0) + 1;
    expect(byKind).toEqual(report.graph.nodesByKind);
    const segments = await json('segments');
    expect(segments.segments).toEqual(report.segments.list);
    expect(segments.seed).toBe(report.segments.seed);
    expect(segments.resolution).toBe(report.segments.resolution);
    const proposal = (await json('proposals')) as {
      policies: { metadata: { namespace: string; name: string } }[];
      byWorkload: Record<string, string[]>;
      unobserved: string[];
      evidence: unknown;
      notExpressible: unknown;
    };
    expect(proposal.policies.map((p) => `${p.metadata.namespace}/${p.metadata.name}`).sort()).toEqual(
      [...report.policies.names].sort(),
    );
    expect(proposal.byWorkload).toEqual(report.policies.byWorkload);
    expect(proposal.unobserved).toEqual(report.policies.unobserved);
    expect(proposal.evidence).toEqual(report.evidence);
    expect(proposal.notExpressible).toEqual(report.notExpressible);
    // The policies as YAML: those recommend wrote, namespace by namespace, without their file's header.
    const yaml = await (await api('proposals?format=yaml')).text();
    for (const ns of new Set(report.policies.names.map((n) => n.split('/')[0]!))) {
      const file = readFileSync(join(policies, `${ns}.yaml`), 'utf8');
      const body = file.slice(file.indexOf('\n') + 1).replace(/^---\n/, '');
      expect(yaml, ns).toContain(body);
    }
  });

  it('the Rollout tab audits the --policies given and the proposal; the page is behind --token-file', async () => {
    const audits = (await json('audits')) as unknown as {
      name: string;
      wouldBlock: unknown[];
      enforce: { added: string[] };
    }[];
    expect(audits.map((a) => a.name)).toEqual([policies, 'proposal']);
    // recommend proved its policies against these flows: applying them blocks none.
    expect(audits[0]!.wouldBlock).toEqual([]);
    const report = JSON.parse(readFileSync(join(policies, 'report.json'), 'utf8')) as {
      policies: { names: string[] };
    };
    expect(audits[0]!.enforce.added).toEqual([...report.policies.names].sort());
    expect((await api('graph/export', '')).status).toBe(401);
    expect((await api('graph/export', 'wrong')).status).toBe(401);
    expect(served.out()).toContain('policies: 17 in 5 namespace(s) proposed (not written');
    // The token is asked for instead of a Host check (a rebinding page has no token).
    const port = Number(new URL(served.url).port);
    expect((await getWithHost('127.0.0.1', port, '/api/v1/info', 'rebind.attacker.example')).status).toBe(
      401,
    );
  });

  it('the summary points at no report.json of its own: serve writes none', () => {
    // The demo's summary sends the reader to report.json for the connections the proof leaves out.
    expect(served.out()).toContain(
      "see verification.willBeBlocked in the report.json 'microseg recommend' writes)",
    );
    expect(served.out()).not.toMatch(/in report\.json/);
  });

  it('without a token answers only loopback, its own address and --allow-host names, and cuts off slow clients', async () => {
    const open = await startServe([
      '--flows',
      inputs.flows,
      '--cluster',
      inputs.cluster,
      '--listen',
      '127.0.0.1:0',
      '--allow-host',
      'serve.example',
      '--allow-host',
      'Other.Example',
    ]);
    try {
      const port = Number(new URL(open.url).port);
      // A client that never finishes its headers: answered 408 after HEADERS_TIMEOUT_MS (10 s).
      const started = Date.now();
      const slow = new Promise<{ answer: string; ms: number }>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1', () =>
          socket.write(`GET / HTTP/1.1\r\nHost: localhost:${port}\r\n`),
        );
        let answer = '';
        socket.on('data', (d: Buffer) => (answer += d.toString()));
        socket.on('close', () => resolve({ answer, ms: Date.now() - started }));
        socket.on('error', reject);
      });
      for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `serve.example:${port}`, 'other.example'])
        expect([host, (await getWithHost('127.0.0.1', port, '/api/v1/graph', host)).status]).toEqual([
          host,
          200,
        ]);
      const r = await getWithHost('127.0.0.1', port, '/api/v1/graph', `rebind.attacker.example:${port}`);
      expect([r.status, r.body]).toEqual([
        403,
        JSON.stringify({
          error:
            `Host "rebind.attacker.example:${port}" is not allowed: this server has no token, so it answers only requests for ` +
            'localhost, 127.0.0.1, [::1] or the address it listens on (a guard against DNS rebinding); ' +
            'to reach it by this name, start it with --allow-host rebind.attacker.example',
        }),
      ]);
      const { answer, ms } = await slow;
      expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 408 Request Timeout');
      expect(ms).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 100);
      expect(ms).toBeLessThan(HEADERS_TIMEOUT_MS + 5_000);
    } finally {
      expect(await stop(open.child)).toBe(EXIT.ok);
    }
  }, 120_000);
});

describe("serve's page server (the demo's too)", () => {
  it('gives a request 10 s for its headers and 60 s in all', async () => {
    const server = await listenForPage('127.0.0.1', 0, 'busy\n', () => '--listen');
    try {
      expect([HEADERS_TIMEOUT_MS, REQUEST_TIMEOUT_MS]).toEqual([10_000, 60_000]);
      expect([server.headersTimeout, server.requestTimeout]).toEqual([
        HEADERS_TIMEOUT_MS,
        REQUEST_TIMEOUT_MS,
      ]);
    } finally {
      await closeServer(server);
    }
  });
});

describe('microseg serve: usage', () => {
  it('--help prints the usage and exits 0; microseg --help lists the command', async () => {
    expect(await cli(['serve', '--help'])).toEqual({ code: EXIT.ok, out: HELP + '\n', err: '' });
    expect(HELP).toMatch(/^usage: microseg serve --flows FILE \[--flows FILE \.\.\.\] --cluster FILE/);
    expect(HELP).toContain('[--allow-host NAME ...]');
    // The flags that change what is served and to whom are named in the usage line, as README's table names them.
    expect(HELP).toContain(
      '[--policies PATH [--policies PATH ...] [--prune]] [--listen ADDR] [--token-file FILE]',
    );
    expect(HELP).toMatch(
      /2 bad usage or input \(an address in use, or one that is not a loopback\s+one without --token-file, included\)/,
    );
    const usage = await cli(['--help']);
    expect(usage.out).toMatch(/\n {2}serve +serve the web page of the graph on your flows/);
  });

  it('says why a --token-file cannot be read in the words every file the CLI reads gets', async () => {
    writeFileSync(join(root, 'plain.txt'), 'x');
    const err = async (file: string) =>
      (await cli(['serve', '--flows', 'a', '--cluster', 'b', '--listen', '0.0.0.0:0', '--token-file', file]))
        .err;
    expect(await err(join(root, 'plain.txt', 'token'))).toBe(
      `microseg serve: --token-file ${join(root, 'plain.txt', 'token')}: cannot read: a part of the path is not a directory\n`,
    );
    expect(await err(join(root, 'no-token'))).toBe(
      `microseg serve: --token-file ${join(root, 'no-token')}: cannot read: no such file\n`,
    );
  });

  it('refuses a non-loopback --listen without --token-file, before anything is read', async () => {
    const r = await cli([
      'serve',
      '--flows',
      'nope.jsonl',
      '--cluster',
      'nope.json',
      '--listen',
      '0.0.0.0:0',
    ]);
    expect(r).toEqual({
      code: EXIT.usage,
      out: '',
      err:
        "microseg serve: --listen 0.0.0.0:0: 0.0.0.0 is not a loopback address and lets others read the cluster's graph and policies: " +
        'give --token-file FILE (the bearer token the page asks for), or listen on a loopback address (default 127.0.0.1:8080)\n',
    });
    expect((await cli(['serve', '--flows', 'a', '--cluster', 'b', '--listen', ':0'])).err).toContain(
      '--listen :0: every address of this machine lets others read',
    );
    expect((await cli(['serve', '--flows', 'a', '--cluster', 'b', '--listen', 'x:y'])).err).toBe(
      'microseg serve: --listen "x:y" is not host:port, :port or a port number\n',
    );
  });

  it('a bad --allow-host is bad usage, in the words of the demo and the controller', async () => {
    expect(await cli(['serve', '--flows', 'a', '--cluster', 'b', '--allow-host', 'x.example:80'])).toEqual({
      code: EXIT.usage,
      out: '',
      err: 'microseg serve: --allow-host "x.example:80" is not a host name or an IP address (without a port)\n',
    });
  });

  it('names --listen when its address is in use', async () => {
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    try {
      const port = (busy.address() as AddressInfo).port;
      const r = await cli([
        'serve',
        '--flows',
        fixture('flows/generic.jsonl'),
        '--cluster',
        fixture('verify/shop-cluster.yaml'),
        '--listen',
        `127.0.0.1:${port}`,
      ]);
      expect(r.code).toBe(EXIT.usage);
      expect(r.err).toBe(
        `microseg serve: cannot listen on 127.0.0.1:${port}: the address is already in use (another process listens there); choose another with --listen\n`,
      );
    } finally {
      busy.close();
    }
  });
});

describe("microseg serve: bad input gets recommend's errors and exit codes", () => {
  const cluster = fixture('verify/shop-cluster.yaml');
  const flows = fixture('flows/generic.jsonl');
  const cases: [string, string[]][] = [
    ['no --flows', ['--cluster', cluster]],
    ['no --cluster', ['--flows', flows]],
    ['the cluster from standard input', ['--flows', flows, '--cluster', '-']],
    ['a flow source twice', ['--flows', flows, '--flows', flows, '--cluster', cluster]],
    ['a bad --resolution', ['--flows', flows, '--cluster', cluster, '--resolution', '0']],
    ['a bad --world-ingress', ['--flows', flows, '--cluster', cluster, '--world-ingress', 'all']],
    ['a missing flow file', ['--flows', join(root, 'missing.jsonl'), '--cluster', cluster]],
    ['a missing cluster file', ['--flows', flows, '--cluster', join(root, 'missing.json')]],
    ['a namespace the snapshot lacks', ['--flows', flows, '--cluster', cluster, '--namespace', 'shpo']],
    ['an empty flow file', ['--flows', join(root, 'empty.jsonl'), '--cluster', cluster]],
    ['flows that give no policy', ['--flows', join(root, 'outside.jsonl'), '--cluster', cluster]],
    ['a proposal that would block observed connections', ['--flows', flows, '--cluster', cluster]],
  ];
  beforeAll(() => {
    writeFileSync(join(root, 'empty.jsonl'), '');
    // Between two addresses of no pod of the snapshot: no workload observed, so no policy.
    writeFileSync(
      join(root, 'outside.jsonl'),
      '{"time": "2026-03-01T10:00:00Z", "src": {"ip": "192.0.2.1"}, "dst": {"ip": "192.0.2.2"}, "port": 80}\n',
    );
  });

  for (const [what, args] of cases)
    it(what, async () => {
      const recommend = await cli(['recommend', ...args, '--out', join(root, 'out')]);
      const serve = await cli(['serve', ...args, '--listen', '127.0.0.1:0']);
      expect(recommend.code).not.toBe(EXIT.ok);
      expect(serve.code).toBe(recommend.code);
      expect(serve.out).toBe('');
      // The same message, naming the command, and what is not done: serving where recommend writes.
      expect(serve.err).toBe(
        recommend.err
          .replaceAll('microseg recommend:', 'microseg serve:')
          .replace('--cluster -: recommend reads', '--cluster -: serve reads')
          .replace('nothing written', 'nothing served')
          .replace('microseg serve: not written:', 'microseg serve: not served:')
          // serve writes no report.json: its summary names recommend's.
          .replaceAll(' in report.json', " in the report.json 'microseg recommend' writes"),
      );
    });
});
