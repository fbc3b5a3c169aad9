/**
 * DNS rebinding, in the controller: without a token its page and API answer only requests whose Host is
 * a loopback name or address, the address they came in on, or a name given with --allow-host; with a
 * token the Host is not checked (the token is). The controller's own endpoints are not the page's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sharedCluster } from '../cluster/index.ts';
import type { RunningController } from '../controller/k8s-helpers.ts';
import { install, startController } from '../controller/k8s-helpers.ts';
import { getWithHost } from '../web/host-request.ts';

const cluster = sharedCluster();
let open: RunningController;
let withToken: RunningController;

beforeAll(async () => {
  await install(cluster);
  open = await startController(cluster, {
    identity: 'host-check-open',
    ui: { allowedHosts: ['microseg.example'] },
  });
  withToken = await startController(cluster, {
    identity: 'host-check-token',
    ui: { auth: { token: 'admin' } },
  });
});
afterAll(async () => {
  await open?.stop();
  await withToken?.stop();
});

describe("the controller's page without a token", () => {
  it('answers loopback and --allow-host names, refuses others with 403 naming --allow-host', async () => {
    const port = open.port;
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `microseg.example:${port}`]) {
      const r = await getWithHost('127.0.0.1', port, '/api/v1/info', host);
      expect([host, r.status]).toEqual([host, 200]);
    }
    const host = `rebind.attacker.example:${port}`;
    const r = await getWithHost('127.0.0.1', port, '/api/v1/info', host);
    expect([r.status, JSON.parse(r.body)]).toEqual([
      403,
      {
        error:
          `Host "${host}" is not allowed: this server has no token, so it answers only requests for localhost, ` +
          '127.0.0.1, [::1] or the address it listens on (a guard against DNS rebinding); to reach it by this ' +
          'name, start it with --allow-host rebind.attacker.example',
      },
    ]);
    // The probes' and Prometheus's endpoints are the controller's, not the page's: not checked.
    expect((await getWithHost('127.0.0.1', port, '/healthz', host)).status).toBe(200);
  });

  it('with a token, checks the token, not the Host', async () => {
    const r = await getWithHost('127.0.0.1', withToken.port, '/api/v1/info', 'rebind.attacker.example');
    expect(r.status).toBe(401);
  });
});
