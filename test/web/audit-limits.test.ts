/**
 * `POST /api/v1/audit` with bodies within its limits that take much to read: the server, in a process
 * of its own (started as the controller is, `--max-old-space-size`), answers each with an error that
 * says what was wrong, soon, and goes on serving.
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { policiesToYaml } from '../../src/policy/render.ts';
import { fixtureAnalysis } from './helpers.ts';

const CHILD = new URL('./audit-server-child.ts', import.meta.url);
const started: ChildProcess[] = [];

afterEach(() => {
  for (const c of started.splice(0)) c.kill();
});

/** The server in a child process with the controller's heap flag; its port once it listens. */
async function startServer(env: Record<string, string> = {}): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(CHILD, [], {
    execArgv: ['--max-old-space-size=768'],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  started.push(child);
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /port (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code, signal) => reject(new Error(`server exited (${code ?? signal}): ${err}`)));
  });
  return { child, port };
}

async function postAudit(port: number, body: string): Promise<{ status: number; body: { error?: string } }> {
  const res = await fetch(`http://127.0.0.1:${port}/api/v1/audit`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/yaml' },
    body,
  });
  return { status: res.status, body: (await res.json()) as { error?: string } };
}

/** The longest the child's event loop was held since last asked (see audit-server-child.ts). */
async function loopMaxMs(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    child.once('message', (m: { loopMaxMs: number }) => resolve(m.loopMaxMs));
    child.send('loop');
  });
}

/** The server still answers: the fixture's own policies are audited. */
async function stillServes(child: ChildProcess, port: number): Promise<void> {
  const { analysis } = await fixtureAnalysis();
  const res = await postAudit(port, policiesToYaml(analysis.proposal.policies));
  expect(res.status).toBe(200);
  expect([child.exitCode, child.signalCode]).toEqual([null, null]);
}

describe('POST /api/v1/audit, bodies that take much to read', () => {
  it('reads a YAML map of 40,000 keys (390 KB) in seconds, and still refuses a key given twice', async () => {
    const { child, port } = await startServer();
    const keys = Array.from({ length: 40_000 }, (_, i) => `k${i}: v\n`).join('');
    const t0 = Date.now();
    const wide = await postAudit(port, `kind: X\n${keys}`);
    const took = Date.now() - t0;
    // Each key compared with every key before it took over a minute.
    expect(took).toBeLessThan(10_000);
    expect(wide).toEqual({ status: 400, body: { error: 'body: item 1 (X): metadata is missing' } });
    const twice = await postAudit(port, `kind: X\n${keys}k17: again\n`);
    expect(twice).toEqual({
      status: 400,
      body: { error: 'body: YAML document 1: Map keys must be unique at line 40002, column 1' },
    });
    await stillServes(child, port);
  }, 180_000);

  it("holds the parsing thread to its heap when the process's own is set larger (--max-old-space-size)", async () => {
    // The flag, as the controller's Deployment sets it, is V8's for every thread: the thread's
    // resourceLimits alone let it grow to 768 MB beside the main thread's, past the pod's memory.
    const { child, port } = await startServer({ PARSE_HEAP_MB: '48' });
    const many = Array.from({ length: 250_000 }, () => '- {kind: X}\n').join('');
    expect(await postAudit(port, many)).toEqual({
      status: 400,
      body: { error: "body: too large to parse: it needs more than the parser's 48 MB of memory" },
    });
    await stillServes(child, port);
  }, 180_000);

  it('refuses a body of many small objects in the parsing thread, the event loop free meanwhile', async () => {
    const { child, port } = await startServer();
    // 600,000 `{}` (1.8 MB; 8 MiB of them is more than the thread's heap holds, refused as such),
    // each copied to the main thread (some 60 MB of its heap) only to be refused there.
    const body = `[${Array.from({ length: 600_000 }, () => '{}').join(',')}]`;
    await loopMaxMs(child);
    expect(await postAudit(port, body)).toEqual({
      status: 400,
      body: { error: 'body: item 1: kind must be a non-empty string' },
    });
    // Copied and read on the main thread, it was held some 270 ms; now only the answer comes back.
    expect(await loopMaxMs(child)).toBeLessThan(150);
    await stillServes(child, port);
  }, 180_000);

  it('stops the parsing thread on a body it has not parsed within its time limit, and parses the next', async () => {
    // A parsing thread that never answers a body holding `slow-parse`: it held the only thread, and
    // every request behind it, for as long as it took.
    const { child, port } = await startServer({
      PARSE_WORKER: './slow-parse-worker.ts',
      PARSE_TIME_LIMIT_MS: '1500',
    });
    const t0 = Date.now();
    const slow = postAudit(port, 'kind: X # slow-parse\n');
    // Waits behind it, then goes to a new thread.
    const next = (async () => {
      await new Promise((r) => setTimeout(r, 200));
      const { analysis } = await fixtureAnalysis();
      return postAudit(port, policiesToYaml(analysis.proposal.policies));
    })();
    expect(await slow).toEqual({
      status: 400,
      body: { error: "body: too slow to parse: not parsed within the parser's 1.5 s" },
    });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1500);
    expect((await next).status).toBe(200);
    await stillServes(child, port);
  }, 60_000);
});
