/**
 * DNS rebinding: a server without a token answers only requests whose Host is a loopback name or
 * address, the address the request came in on, or a name allowed with --allow-host; others get 403.
 * Both servers: the page's app as the controller mounts it, and `microseg demo` as a process.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Application } from 'express';
import { afterAll, describe, expect, it } from 'vitest';
import { captureIO } from '../../src/cli/io.ts';
import { runCli } from '../../src/cli/main.ts';
import { createApp } from '../../src/server/app.ts';
import { allowedHost, serviceHostNames } from '../../src/server/hosts.ts';
import { analysisSource } from '../../src/server/source.ts';
import { fixtureAnalysis } from './helpers.ts';
import { getWithHost } from './host-request.ts';

const refused = (host: string, flag: string) =>
  JSON.stringify({
    error:
      `Host ${JSON.stringify(host)} is not allowed: this server has no token, so it answers only requests for ` +
      'localhost, 127.0.0.1, [::1] or the address it listens on (a guard against DNS rebinding); ' +
      `to reach it by this name, start it with --allow-host ${flag}`,
  });

const servers: { close(): void }[] = [];
afterAll(() => servers.forEach((s) => s.close()));

async function serve(app: Application, host = '127.0.0.1'): Promise<number> {
  const server = createServer(app);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, host, r));
  return (server.address() as AddressInfo).port;
}

async function page(opts: Parameters<typeof createApp>[1] = {}) {
  const { analysis } = await fixtureAnalysis();
  return createApp(analysisSource(analysis, { mode: 'offline', title: 't' }), opts);
}

describe('the page without a token checks Host', () => {
  it('answers loopback names and addresses, refuses another name with 403 naming --allow-host', async () => {
    const port = await serve(await page());
    for (const host of [
      `localhost:${port}`,
      `127.0.0.1:${port}`,
      `LOCALHOST:${port}`,
      'localhost',
      `[::1]:${port}`,
    ]) {
      const r = await getWithHost('127.0.0.1', port, '/api/v1/info', host);
      expect([host, r.status]).toEqual([host, 200]);
    }
    for (const [host, flag] of [
      [`rebind.attacker.example:${port}`, 'rebind.attacker.example'],
      ['microseg.example', 'microseg.example'],
      [`10.9.9.9:${port}`, '10.9.9.9'],
    ] as const) {
      for (const path of ['/api/v1/graph', '/', '/index.html']) {
        const r = await getWithHost('127.0.0.1', port, path, host);
        expect([host, path, r.status, r.body]).toEqual([host, path, 403, refused(host, flag)]);
      }
    }
  });

  it('answers the address a request came in on, and the names given in allowedHosts', async () => {
    // Listening on every address: a request to 127.0.0.2 (a loopback address the check does not name)
    // came in on that address, as a request to a pod's IP does.
    const port = await serve(await page({ allowedHosts: ['microseg.example'] }), '0.0.0.0');
    expect((await getWithHost('127.0.0.2', port, '/api/v1/info', `127.0.0.2:${port}`)).status).toBe(200);
    const other = await getWithHost('127.0.0.2', port, '/api/v1/info', `127.0.0.3:${port}`);
    expect([other.status, other.body]).toEqual([403, refused(`127.0.0.3:${port}`, '127.0.0.3')]);
    expect((await getWithHost('127.0.0.1', port, '/api/v1/info', `MicroSeg.Example:${port}`)).status).toBe(
      200,
    );
    expect((await getWithHost('127.0.0.1', port, '/api/v1/info', 'evil.example')).status).toBe(403);
    // `*`: any host.
    const any = await serve(await page({ allowedHosts: ['*'] }));
    expect((await getWithHost('127.0.0.1', any, '/api/v1/info', 'evil.example')).status).toBe(200);
  });

  it('does not check Host when the API needs a token (a rebinding page has none)', async () => {
    const port = await serve(await page({ auth: { token: 't' } }));
    const r = await getWithHost('127.0.0.1', port, '/api/v1/info', 'evil.example');
    expect(r.status).toBe(401);
  });

  it('takes host names and IP addresses as --allow-host, refuses a port or a path', () => {
    expect(allowedHost('Microseg.Example')).toEqual({ host: 'microseg.example' });
    expect(allowedHost('[::1]')).toEqual({ host: '::1' });
    expect(allowedHost('10.0.0.1')).toEqual({ host: '10.0.0.1' });
    expect(allowedHost('*')).toEqual({ host: '*' });
    for (const bad of ['microseg.example:8080', 'http://microseg.example', 'a/b', ''])
      expect(allowedHost(bad)).toEqual({
        problem: `--allow-host ${JSON.stringify(bad)} is not a host name or an IP address (without a port)`,
      });
  });
});

describe("the controller's Service names", () => {
  it('are answered, and named in the 403 with the other names the page answers', async () => {
    // The 403 listed only localhost, 127.0.0.1, [::1] and the listening address though the controller
    // answers its Service's names too: a caller of a renamed Service could not tell which it expects.
    const names = serviceHostNames('microseg-controller', 'microseg-system', 'cluster.local');
    const port = await serve(await page({ serviceHosts: names }));
    for (const host of [...names.map((n) => `${n}:${port}`), 'Microseg-Controller.microseg-system.svc.'])
      expect([host, (await getWithHost('127.0.0.1', port, '/api/v1/info', host)).status]).toEqual([
        host,
        200,
      ]);
    const host = `ui.microseg-system.svc:${port}`;
    const r = await getWithHost('127.0.0.1', port, '/api/v1/info', host);
    expect([r.status, r.body]).toEqual([
      403,
      JSON.stringify({
        error:
          `Host "${host}" is not allowed: this server has no token, so it answers only requests for ` +
          "localhost, 127.0.0.1, [::1], the address it listens on or its Service's names microseg-controller, " +
          'microseg-controller.microseg-system, microseg-controller.microseg-system.svc, ' +
          'microseg-controller.microseg-system.svc.cluster.local (a guard against DNS rebinding); ' +
          'to reach it by this name, start it with --allow-host ui.microseg-system.svc',
      }),
    ]);
  });

  it('are the in-cluster forms, <service>.<namespace> only under a namespace no top-level domain can be', () => {
    expect(serviceHostNames('microseg-controller', 'microseg-system', 'cluster.local')).toEqual([
      'microseg-controller',
      'microseg-controller.microseg-system',
      'microseg-controller.microseg-system.svc',
      'microseg-controller.microseg-system.svc.cluster.local',
    ]);
    // A digit or a '-' is in no ASCII top-level domain; letters only (dev, security) or an A-label
    // (xn--p1ai, .рф) may be one, where anyone could register <service>.<namespace>.
    expect(serviceHostNames('ui', 'team1', 'k8s.example')).toContain('ui.team1');
    for (const ns of ['dev', 'security', 'xn--p1ai'])
      expect(serviceHostNames('ui', ns, 'cluster.local'), ns).toEqual([
        'ui',
        `ui.${ns}.svc`,
        `ui.${ns}.svc.cluster.local`,
      ]);
  });
});

describe('microseg demo checks Host', () => {
  const out = mkdtempSync(join(tmpdir(), 'microseg-demo-host-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('a bad --allow-host is bad usage, for the demo and the controller', async () => {
    for (const [cmd, more] of [
      ['demo', ['--out', out]],
      ['controller', ['--kubeconfig', join(out, 'no-kubeconfig')]],
    ] as const) {
      const io = captureIO();
      expect(await runCli([cmd, '--allow-host', 'x.example:80', ...more], io)).toBe(2);
      expect(io.stderr).toBe(
        `microseg ${cmd}: --allow-host "x.example:80" is not a host name or an IP address (without a port)\n`,
      );
    }
  });

  it('serves localhost and --allow-host names, and refuses other names', async () => {
    const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
    const child = spawn(
      process.execPath,
      [main, 'demo', '--out', out, '--port', '0', '--allow-host', 'demo.example'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    try {
      let stdout = '';
      const port = await new Promise<number>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          stdout += d.toString();
          const m = /web page: http:\/\/localhost:(\d+)\//.exec(stdout);
          if (m) resolve(Number(m[1]));
        });
        child.on('exit', (code) => reject(new Error(`microseg demo exited with ${code}`)));
      });
      expect((await getWithHost('127.0.0.1', port, '/api/v1/info', `localhost:${port}`)).status).toBe(200);
      expect((await getWithHost('127.0.0.1', port, '/api/v1/graph', `demo.example:${port}`)).status).toBe(
        200,
      );
      const r = await getWithHost('127.0.0.1', port, '/api/v1/graph', `rebind.attacker.example:${port}`);
      expect([r.status, r.body]).toEqual([
        403,
        refused(`rebind.attacker.example:${port}`, 'rebind.attacker.example'),
      ]);
    } finally {
      if (child.exitCode === null && child.signalCode === null)
        await new Promise<void>((resolve) => {
          child.on('exit', () => resolve());
          child.kill('SIGTERM');
        });
    }
  }, 120_000);
});
