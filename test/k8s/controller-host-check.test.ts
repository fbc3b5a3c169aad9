/**
 * DNS rebinding, in the controller: without a token its page and API answer only requests whose Host is
 * a loopback name or address, the address they came in on, its Service's in-cluster names, or a name
 * given with --allow-host; with a token the Host is not checked (the token is). The controller's own
 * endpoints are not the page's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, sharedCluster, uniqueName } from '../cluster/index.ts';
import type { RunningController } from '../controller/k8s-helpers.ts';
import { install, spawnController, startController } from '../controller/k8s-helpers.ts';
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

/** The 403 of a controller whose Service's names are `names`: it names them with the others it answers. */
const refused = (host: string, flag: string, names: readonly string[]) => ({
  error:
    `Host "${host}" is not allowed: this server has no token, so it answers only requests for localhost, ` +
    `127.0.0.1, [::1], the address it listens on or its Service's names ${names.join(', ')} (a guard ` +
    `against DNS rebinding); to reach it by this name, start it with --allow-host ${flag}`,
});
const manifestNames = [
  'microseg-controller',
  'microseg-controller.microseg-system',
  'microseg-controller.microseg-system.svc',
  'microseg-controller.microseg-system.svc.cluster.local',
];

/**
 * Runs `microseg controller` as a process (in the pod's place: `$POD_NAMESPACE` as the Downward API
 * gives it) with `args`, on a Lease and a selector of its own, until `use` is done with its port.
 */
async function withControllerProcess(
  namespace: string,
  args: string[],
  use: (port: number) => Promise<void>,
): Promise<void> {
  const name = uniqueName('host');
  const running = spawnController(cluster, {
    identity: name,
    lease: `lease-${name}`,
    test: name,
    args: ['--no-isolation', ...args],
    env: { POD_NAMESPACE: namespace },
  });
  try {
    const listening = await eventually(
      'listening',
      () => {
        const code = running.exitCode();
        if (code !== undefined) throw new Error(`exited ${code}: ${JSON.stringify(running.lines)}`);
        return running.lines.find((l) => l.msg === 'listening');
      },
      30_000,
    );
    await use(listening.port as number);
  } finally {
    running.child.kill('SIGTERM');
  }
  expect(await running.exited).toBe(0);
}

describe("the controller's page answers its Service's in-cluster names", () => {
  // An in-cluster caller (a script, another team's dashboard proxy) reaching the controller by its
  // Service's DNS name got 403 unless the operator had added each name with --allow-host.
  it('as the manifests install it: microseg-controller in $POD_NAMESPACE, cluster.local', async () => {
    await withControllerProcess('microseg-system', [], async (port) => {
      for (const name of [
        'microseg-controller',
        'microseg-controller.microseg-system',
        'microseg-controller.microseg-system.svc',
        'microseg-controller.microseg-system.svc.cluster.local',
        'MICROSEG-CONTROLLER.microseg-system.svc.cluster.local.',
      ]) {
        const host = `${name}:${port}`;
        const r = await getWithHost('127.0.0.1', port, '/api/v1/info', host);
        expect([host, r.status]).toEqual([host, 200]);
      }
      // Names that are not the Service's, in this namespace and domain, are still refused, in the same words.
      for (const [host, flag] of [
        [`evil.example:${port}`, 'evil.example'],
        ['evil.example', 'evil.example'],
        [`microseg-controller.other-ns.svc:${port}`, 'microseg-controller.other-ns.svc'],
        [
          `microseg-controller.microseg-system.svc.example.com:${port}`,
          'microseg-controller.microseg-system.svc.example.com',
        ],
        [
          `microseg-controller.microseg-system.svc.cluster.local.evil.example`,
          'microseg-controller.microseg-system.svc.cluster.local.evil.example',
        ],
        [`other.microseg-system.svc:${port}`, 'other.microseg-system.svc'],
      ] as const) {
        const r = await getWithHost('127.0.0.1', port, '/api/v1/info', host);
        expect([r.status, JSON.parse(r.body)]).toEqual([403, refused(host, flag, manifestNames)]);
      }
    });
  });

  it('a renamed Service (--service-name) in another cluster domain (--cluster-domain)', async () => {
    await withControllerProcess(
      'security',
      ['--service-name=seg-ui', '--cluster-domain=corp.internal.'],
      async (port) => {
        for (const name of ['seg-ui', 'seg-ui.security.svc', 'seg-ui.security.svc.corp.internal']) {
          const r = await getWithHost('127.0.0.1', port, '/api/v1/info', `${name}:${port}`);
          expect([name, r.status]).toEqual([name, 200]);
        }
        // `security` is a public top-level domain, where anyone may register seg-ui.security and rebind
        // it; the manifests' Service name and cluster.local are not this one's.
        for (const name of [
          'seg-ui.security',
          'seg-ui.security.svc.cluster.local',
          'microseg-controller',
          'microseg-controller.security.svc',
        ]) {
          const r = await getWithHost('127.0.0.1', port, '/api/v1/info', `${name}:${port}`);
          expect([r.status, JSON.parse(r.body)]).toEqual([
            403,
            refused(`${name}:${port}`, name, [
              'seg-ui',
              'seg-ui.security.svc',
              'seg-ui.security.svc.corp.internal',
            ]),
          ]);
        }
      },
    );
  });
});
