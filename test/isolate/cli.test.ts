import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type RequestListener, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { SERVICE_ACCOUNT_TOKEN } from '../../src/cli/kubeconfig.ts';
import type { Isolation } from '../../src/isolate/api.ts';
import { parseIsolationSpec } from '../../src/isolate/api.ts';
import { isolatedNone } from '../../src/isolate/cli.ts';
import { cli, writeKubeconfig } from '../cli-run.ts';

/**
 * Serves `handler` on a free local port, standing in for an API server, and writes a kubeconfig in `dir`
 * that points at it: its path, and how to close the server.
 */
async function serveWithKubeconfig(dir: string, handler: RequestListener) {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const file = writeKubeconfig(join(dir, `kubeconfig-${port}.yaml`), `http://127.0.0.1:${port}`);
  return { file, close: () => new Promise((resolve) => server.close(resolve)) };
}

describe('microseg isolate --print', () => {
  it('prints a valid Isolation for pods, with a stable name derived from the target', async () => {
    const r = await cli([
      'isolate',
      'shop/cart-1',
      'shop/cart-2',
      '--reason',
      'shell in container',
      '--duration',
      '4h',
      '--forensics-namespace',
      'team=ir',
      '--requested-by',
      'alice',
      '--print',
    ]);
    expect(r.code).toBe(0);
    const iso = parse(r.out) as Isolation;
    expect(iso.metadata).toEqual({
      name: expect.stringMatching(/^iso-cart-1-[0-9a-f]{6}$/) as string,
      namespace: 'shop',
      labels: { 'app.kubernetes.io/managed-by': 'microseg', 'microseg.dev/trigger': 'cli' },
    });
    expect(iso.spec).toEqual({
      target: { pods: ['cart-1', 'cart-2'] },
      exceptions: { dns: true, forensics: [{ namespaceSelector: { matchLabels: { team: 'ir' } } }] },
      reason: 'shell in container',
      requestedBy: 'alice',
      duration: '4h',
    });
    expect(parseIsolationSpec(iso.metadata.name, iso.spec).ok).toBe(true);
    const again = await cli(['isolate', 'shop/cart-2', 'shop/cart-1', '--reason', 'other words', '--print']);
    expect((parse(again.out) as Isolation).metadata.name).toBe(iso.metadata.name);
  });

  it('workloads and selectors need a namespace', async () => {
    const w = await cli([
      'isolate',
      '--workload',
      'Deployment/cart',
      '-n',
      'shop',
      '--include-future',
      '--reason',
      'r',
      '--no-dns',
      '--print',
      '--output',
      'json',
    ]);
    expect(w.code).toBe(0);
    expect((JSON.parse(w.out) as Isolation).spec).toMatchObject({
      target: { workload: { kind: 'Deployment', name: 'cart', includeFuture: true } },
      exceptions: { dns: false },
    });
    const s = await cli([
      'isolate',
      '--selector',
      'app=cart,tier=web',
      '-n',
      'shop',
      '--reason',
      'r',
      '--print',
      '--output',
      'json',
    ]);
    expect((JSON.parse(s.out) as Isolation).spec?.target).toEqual({
      podSelector: { matchLabels: { app: 'cart', tier: 'web' } },
    });
  });

  it("isolates a custom resource's workload named KIND.GROUP/NAME, the group in the name's hash", async () => {
    const print = async (workload: string) => {
      const r = await cli([
        'isolate',
        '--workload',
        workload,
        '-n',
        'db',
        '--include-future',
        '--reason',
        'r',
        '--print',
        '--output',
        'json',
      ]);
      expect(r.err).toBe('');
      return JSON.parse(r.out) as Isolation;
    };
    const pg = await print('Cluster.postgresql.cnpg.io/pg');
    expect(pg.spec?.target).toEqual({
      workload: { kind: 'Cluster', apiGroup: 'postgresql.cnpg.io', name: 'pg', includeFuture: true },
    });
    expect(pg.metadata.name).toMatch(/^iso-cluster-pg-[0-9a-f]{6}$/);
    expect(parseIsolationSpec(pg.metadata.name, pg.spec).ok).toBe(true);
    // A kind of the same name in another group is another Isolation.
    const other = await print('Cluster.clusters.example.com/pg');
    expect(other.metadata.name).toMatch(/^iso-cluster-pg-[0-9a-f]{6}$/);
    expect(other.metadata.name).not.toBe(pg.metadata.name);
    // A known kind may give its own group: the same Isolation as without.
    const cart = await print('Deployment.apps/cart');
    expect(cart.spec?.target).toEqual({
      workload: { kind: 'Deployment', apiGroup: 'apps', name: 'cart', includeFuture: true },
    });
    expect(cart.metadata.name).toBe((await print('Deployment/cart')).metadata.name);
  });

  it.each([
    [
      'Cluster/pg',
      '--workload "Cluster/pg": Cluster is not one of Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, Rollout, CloneSet; give a custom resource\'s kind with its API group, as KIND.GROUP/NAME (e.g. Cluster.postgresql.cnpg.io/pg)',
    ],
    [
      'Cluster.apps/pg',
      '--workload group "apps" is not a custom resource\'s API group (those have a dot, as postgresql.cnpg.io has), and Cluster is not one of Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, Rollout, CloneSet',
    ],
    [
      'Deployment.example.com/cart',
      '--workload group "example.com" is not the API group of Deployment (apps): leave it out, or give apps',
    ],
    [
      'Cluster.PostgreSQL.cnpg.io/pg',
      '--workload group "PostgreSQL.cnpg.io" is not an API group (a DNS subdomain such as postgresql.cnpg.io, at most 253 characters)',
    ],
    [
      'pg',
      '--workload "pg" must be KIND/NAME, e.g. Deployment/cart, or KIND.GROUP/NAME for a custom resource\'s kind, e.g. Cluster.postgresql.cnpg.io/pg',
    ],
    ['deployment/cart', '--workload kind "deployment" must be spelt Deployment'],
    ['Pod/cart-1', '--workload kind "Pod" is not a workload kind: name pods by NAMESPACE/POD arguments'],
    ['Deployment/Cart_1', '--workload name "Cart_1" is not a valid name'],
    [
      'Workload/build',
      '--workload "Workload/build": a Workload is named by the microseg.dev/workload label of its pods, not by an owner: isolate them by that label, --selector microseg.dev/workload=build',
    ],
  ])('--workload %s → usage error', async (workload, message) => {
    const r = await cli(['isolate', '--workload', workload, '-n', 'db', '--reason', 'r', '--print']);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toBe(`microseg isolate: ${message}\n`);
    expect(r.err).not.toMatch(/\bspec\./);
  });

  it.each([
    [['isolate', 'shop/cart-1', '--print'], '--reason is required (why the pods are isolated)'],
    [
      ['isolate', '--reason', 'r', '--print'],
      'give pods as namespace/pod arguments, or --workload KIND/NAME, or --selector k=v (exactly one)',
    ],
    [['isolate', 'cart-1', '--reason', 'r', '--print'], 'pod "cart-1" must be namespace/name'],
    [['isolate', 'a/x', 'b/y', '--reason', 'r', '--print'], 'all pods must be in one namespace (got a, b)'],
    [
      ['isolate', '--workload', 'Deployment/cart', '--reason', 'r', '--print'],
      '--namespace is required with --workload and --selector',
    ],
    [
      ['isolate', 'shop/x', '--reason', 'r', '--direction', 'Up', '--print'],
      '--direction "Up" is not one of Both, Ingress, Egress',
    ],
    [
      ['isolate', 'shop/x', '--reason', 'r', '--duration', 'soon', '--print'],
      '--duration "soon" is not a duration such as "90s", "15m" or "1h30m"',
    ],
    [
      ['isolate', 'shop/x', '--reason', 'r', '--duration', '4', '--print'],
      '--duration "4" is not a duration such as "90s", "15m" or "1h30m"',
    ],
    [
      ['isolate', 'shop/x', '--reason', 'r', '--duration', '500ms', '--print'],
      '--duration "500ms" is shorter than 1s',
    ],
    [
      [
        'isolate',
        'shop/x',
        '--reason',
        'r',
        '--duration',
        '1h',
        '--expires-at',
        '2030-01-01T00:00:00Z',
        '--print',
      ],
      '--duration and --expires-at are mutually exclusive',
    ],
    [
      ['isolate', 'shop/x', '--reason', 'r', '--expires-at', 'tomorrow', '--print'],
      '--expires-at "tomorrow" is not an RFC 3339 time such as "2026-01-02T15:04:05Z"',
    ],
    [
      ['isolate', 'shop/x', '--reason', 'r', '--mechanism', 'Calico', '--print'],
      '--mechanism "Calico" is not one of Auto, ClusterNetworkPolicy, AdminNetworkPolicy, NetworkPolicy',
    ],
    [
      ['isolate', 'shop/x', '--reason', 'r', '--name', 'Cut_X', '--print'],
      '--name "Cut_X" must be a DNS label of at most 63 characters (it becomes a label value)',
    ],
    [
      ['isolate', 'shop/x', '--reason', 'r', '--incident', 'x'.repeat(300), '--print'],
      '--incident must be at most 256 characters (has 300)',
    ],
    [
      ['isolate', '--selector', 'app=-web', '-n', 'shop', '--reason', 'r', '--print'],
      '--selector "app=-web" matchLabels: value "-web": must be empty or 63 characters at most',
    ],
    [
      [
        'isolate',
        'shop/x',
        '--reason',
        'r',
        '--forensics-namespace',
        'team=sec',
        '--forensics-pods',
        'role=ir',
        '--forensics-pods',
        'role=-x',
        '--print',
      ],
      '--forensics-pods "role=-x" matchLabels: value "-x": must be empty or 63 characters at most',
    ],
    [
      ['isolate', 'shop/x', '--reason', 'r', '--forensics-namespace', 'team', '--print'],
      '--forensics-namespace "team" must be key=value[,key=value]',
    ],
    [['isolate', 'shop/x', '--reason', 'r', '--bogus'], "Unknown option '--bogus'"],
    [['release'], 'name at least one NAMESPACE/ISOLATION or --pod NAMESPACE/POD'],
    [['release', 'nope'], 'isolation "nope" must be namespace/name'],
  ])('%j → usage error', async (args, message) => {
    const r = await cli(args);
    expect(r.code).toBe(2);
    expect(r.err).toContain(message);
    // The command line names its flags, not the fields of the Isolation they fill.
    expect(r.err).not.toMatch(/\b(spec|metadata)\./);
  });

  it('refuses a blank --reason, naming the flag (the CRD refuses a blank spec.reason too)', async () => {
    for (const [reason, shown] of [
      [' ', '" "'],
      ['\t\n', '"\\t\\n"'],
      ['\u00a0\u3000', '"\u00a0\u3000"'],
    ] as const) {
      const r = await cli(['isolate', 'shop/cart-1', '--reason', reason, '--print']);
      expect(r.code).toBe(2);
      expect(r.out).toBe('');
      expect(r.err).toBe(`microseg isolate: --reason ${shown} is blank: say why the pods are isolated\n`);
    }
  });

  it('lists isolate and release in the command overview', async () => {
    const r = await cli(['--help']);
    expect(r.out).toMatch(/isolate\s+cut pods off the network for incident response/);
    expect(r.out).toMatch(/release\s+release an Isolation and restore the pods exactly/);
  });
});

describe('isolate and release without a usable kubeconfig or API server', () => {
  const base = mkdtempSync(join(tmpdir(), 'microseg-isolate-cli-'));
  afterAll(() => rmSync(base, { recursive: true, force: true }));
  const config = (name: string, cluster: string, current = 'x') => {
    const file = join(base, name);
    writeFileSync(
      file,
      [
        'apiVersion: v1',
        'kind: Config',
        `clusters: [{name: c, cluster: ${cluster}}]`,
        'users: [{name: u, user: {token: t}}]',
        'contexts: [{name: x, context: {cluster: c, user: u}}]',
        `current-context: ${current}`,
        '',
      ].join('\n'),
    );
    return file;
  };
  /** Runs with HOME an empty directory and no $KUBECONFIG (unless given). */
  const bare = async (args: string[], kubeconfigEnv?: string) => {
    const home = mkdtempSync(join(base, 'home-'));
    const saved = { HOME: process.env.HOME, KUBECONFIG: process.env.KUBECONFIG };
    process.env.HOME = home;
    if (kubeconfigEnv === undefined) delete process.env.KUBECONFIG;
    else process.env.KUBECONFIG = kubeconfigEnv;
    try {
      return { home, ...(await cli(args)) };
    } finally {
      for (const [k, v] of Object.entries(saved))
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
    }
  };
  const isolate = ['isolate', 'shop/cart-7d9f-x2k4q', '--reason', 'shell', '--duration', '4h', '--wait'];

  it('no kubeconfig found: bad usage naming the places looked at (was an internal error, exit 3)', async () => {
    for (const [cmd, args] of [
      ['isolate', isolate],
      ['release', ['release', 'shop/iso-cart']],
    ] as const) {
      const r = await bare([...args]);
      expect(r.err).toBe(
        `microseg ${cmd}: no kubeconfig found: no --kubeconfig given, $KUBECONFIG not set, ` +
          `no ${join(r.home, '.kube', 'config')}, and not in a pod (no ${SERVICE_ACCOUNT_TOKEN})\n`,
      );
      expect([r.code, r.out]).toEqual([2, '']);
    }
  });

  it('an API server that refuses the connection: one line naming it and the cause, exit 1', async () => {
    const refused = config('refused.yaml', '{server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}');
    const cause = 'connect ECONNREFUSED 127.0.0.1:1';
    const i = await bare([...isolate, '--kubeconfig', refused]);
    expect(i).toMatchObject({
      code: 1,
      out: '',
      err: `microseg isolate: cannot reach the API server https://127.0.0.1:1: ${cause}\n`,
    });
    // From $KUBECONFIG, and for release (also for --pod, whose pod is read first).
    for (const args of [
      ['release', 'shop/iso-cart'],
      ['release', '--pod', 'shop/cart-1', '--wait'],
    ]) {
      const r = await bare(args, refused);
      expect(r).toMatchObject({
        code: 1,
        out: '',
        err: `microseg release: cannot reach the API server https://127.0.0.1:1: ${cause}\n`,
      });
    }
  });

  it('a kubeconfig that cannot be used: bad usage naming it', async () => {
    const missing = join(base, 'missing.yaml');
    const http = config('http.yaml', '{server: "http://127.0.0.1:1"}');
    const none = config('no-context.yaml', '{server: "https://127.0.0.1:1"}', 'elsewhere');
    const cases: [string[], string | undefined, string][] = [
      [['--kubeconfig', missing], undefined, `--kubeconfig ${missing}: no such file`],
      [[], `${http}:${missing}`, `$KUBECONFIG names ${missing}: no such file`],
      [
        ['--kubeconfig', http],
        undefined,
        `--kubeconfig ${http}: cluster c: server http://127.0.0.1:1 is not https:// (the Kubernetes client takes plain http:// only with insecure-skip-tls-verify: true)`,
      ],
      [[], none, `$KUBECONFIG ${none}: no current cluster (current-context "elsewhere" names none)`],
    ];
    for (const [args, env, message] of cases) {
      const r = await bare([...isolate, ...args], env);
      expect(r, message).toMatchObject({ code: 2, out: '', err: `microseg isolate: ${message}\n` });
    }
  });
});

describe('isolatedNone: the outcome isolate --wait takes for a target with no pod', () => {
  const iso = (
    status: Isolation['status'],
    o: { generation?: number; dryRun?: boolean } = {},
  ): Isolation => ({
    apiVersion: 'microseg.dev/v1alpha1',
    kind: 'Isolation',
    metadata: { name: 'cut', namespace: 'shop', generation: o.generation ?? 2 },
    spec: { reason: 'r', target: { pods: ['web-9'] }, ...(o.dryRun ? { dryRun: true } : {}) },
    status,
  });
  const none = { phase: 'Pending', message: 'no pod to isolate: pod web-9 not found' } as const;
  it('is reported for the current spec only, and never for a dry run', () => {
    expect(isolatedNone(iso({ ...none, observedGeneration: 2 }))).toBe(true);
    // Written for an earlier spec (the pod named then did not exist): the controller has not answered yet.
    expect(isolatedNone(iso({ ...none, observedGeneration: 1 }))).toBe(false);
    expect(isolatedNone(iso({ ...none }))).toBe(false);
    expect(isolatedNone(iso({ ...none, observedGeneration: 2 }, { dryRun: true }))).toBe(false);
    expect(isolatedNone(iso({ phase: 'Pending', observedGeneration: 2 }))).toBe(false);
    expect(
      isolatedNone(iso({ phase: 'Isolated', observedGeneration: 2, message: '1 pod(s) isolated' })),
    ).toBe(false);
    expect(isolatedNone(undefined)).toBe(false);
  });
});

describe('release of one Isolation named more than once', () => {
  const base = mkdtempSync(join(tmpdir(), 'microseg-release-cli-'));
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  /** A stand-in API server: pods quarantined by shop/iso-cart, which exists until deleted once. */
  async function fakeApiServer() {
    const deletes: string[] = [];
    let present = true;
    const served = await serveWithKubeconfig(base, (req, res) => {
      const url = req.url ?? '';
      const json = (code: number, body: unknown) => {
        res.writeHead(code, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      const pod = /^\/api\/v1\/namespaces\/shop\/pods\/(cart-[12])$/.exec(url);
      if (req.method === 'GET' && pod)
        return json(200, {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: pod[1], namespace: 'shop', labels: { 'microseg.dev/quarantine': 'iso-cart' } },
        });
      if (
        req.method === 'DELETE' &&
        url.startsWith('/apis/microseg.dev/v1alpha1/namespaces/shop/isolations/')
      ) {
        deletes.push(url.split('/').pop()!);
        if (url.endsWith('/iso-cart') && present) {
          present = false;
          return json(200, { kind: 'Status', status: 'Success' });
        }
      }
      return json(404, { kind: 'Status', status: 'Failure', reason: 'NotFound', code: 404 });
    });
    return { ...served, deletes };
  }

  it('is deleted once and reported released, not also as not found (exit 0)', async () => {
    for (const args of [
      ['--pod', 'shop/cart-1', '--pod', 'shop/cart-2'],
      ['shop/iso-cart', '--pod', 'shop/cart-1'],
      ['shop/iso-cart', 'shop/iso-cart'],
    ]) {
      const api = await fakeApiServer();
      try {
        const r = await cli(['release', ...args, '--kubeconfig', api.file]);
        expect(r, args.join(' ')).toEqual({
          code: 0,
          out: 'isolation shop/iso-cart released (the controller restores the pods)\n',
          err: '',
        });
        expect(api.deletes).toEqual(['iso-cart']);
      } finally {
        await api.close();
      }
    }
  });
});

describe('isolate --wait and release --wait that time out', () => {
  const base = mkdtempSync(join(tmpdir(), 'microseg-wait-cli-'));
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  /**
   * A stand-in API server that has no controller behind it: creates and deletes are acknowledged, and
   * shop/cut-web-1 reads back as `stored` (with the status the controller last wrote, or none) for ever.
   */
  async function apiServerServing(stored: Isolation) {
    return serveWithKubeconfig(base, (req, res) => {
      const json = (code: number, body: unknown) => {
        res.writeHead(code, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      const url = req.url ?? '';
      if (req.method === 'POST' && url === '/apis/microseg.dev/v1alpha1/namespaces/shop/isolations') {
        req.resume();
        return req.on('end', () => json(201, stored));
      }
      if (url === '/apis/microseg.dev/v1alpha1/namespaces/shop/isolations/cut-web-1')
        return json(200, stored);
      return json(404, { kind: 'Status', status: 'Failure', reason: 'NotFound', code: 404 });
    });
  }
  const stored = (status?: Isolation['status'], generation = 1): Isolation => ({
    apiVersion: 'microseg.dev/v1alpha1',
    kind: 'Isolation',
    metadata: { name: 'cut-web-1', namespace: 'shop', generation },
    spec: { reason: 'shell', target: { pods: ['web-1'] } },
    ...(status ? { status } : {}),
  });
  const run = async (iso: Isolation, args: string[]) => {
    const api = await apiServerServing(iso);
    try {
      return await cli([...args, '--wait', '--timeout', '300ms', '--kubeconfig', api.file]);
    } finally {
      await api.close();
    }
  };
  const isolate = ['isolate', 'shop/web-1', '--name', 'cut-web-1', '--reason', 'shell'];
  const checkFailed =
    '1 pod(s) isolated with NetworkPolicy; the leak check failed: the server is currently unable to handle the request (retrying)';

  it('isolate: with no status written, asks whether the controller runs', async () => {
    const r = await run(stored(), isolate);
    expect(r.code).toBe(1);
    expect(r.err).toBe(
      'microseg isolate: no outcome for shop/cut-web-1 after 300 ms (is the controller running?)\n',
    );
  });

  it('isolate: with a status the controller wrote, says what it last reported instead', async () => {
    const r = await run(stored({ observedGeneration: 1, message: checkFailed, podCount: 1 }), isolate);
    expect(r.code).toBe(1);
    expect(r.err).toBe(
      `microseg isolate: no outcome for shop/cut-web-1 after 300 ms; the controller last reported phase Pending: ${checkFailed} (its Events: kubectl describe isolation -n shop cut-web-1)\n`,
    );
    // Written for an earlier spec: said so.
    const older = await run(
      stored(
        { observedGeneration: 1, phase: 'Pending', message: 'no pod to isolate: pod web-9 not found' },
        2,
      ),
      isolate,
    );
    expect(older.err).toBe(
      'microseg isolate: no outcome for shop/cut-web-1 after 300 ms; the controller last reported, for generation 1 of the spec (now 2), phase Pending: no pod to isolate: pod web-9 not found (its Events: kubectl describe isolation -n shop cut-web-1)\n',
    );
  });

  const refused =
    "networkpolicies.networking.k8s.io \"microseg-quarantine-cut-web-1\" is forbidden: ValidatingAdmissionPolicy 'np-team-label' with binding 'np-team-label' denied request: every NetworkPolicy needs a team label (retrying)";
  const failing = (status: 'True' | 'False', message: string) => [
    {
      type: 'Reconciled',
      status,
      reason: status === 'False' ? 'ReconcileFailed' : 'Reconciled',
      message,
      lastTransitionTime: '2026-11-28T10:00:00Z',
      observedGeneration: 1,
    },
  ];
  /**
   * cut-web-1 Isolated (with the Reconciled `conditions` given), then deleted: what the API server answers
   * after the DELETE, the deletion marked and microseg's finalizer holding it; `generation` is the one
   * the API server bumped to as it marked the deletion.
   */
  const deletedIsolated = (conditions?: ReturnType<typeof failing>, generation = 1): Isolation => {
    const deleting = stored(
      {
        observedGeneration: 1,
        phase: 'Isolated',
        message: '1 pod(s) isolated with NetworkPolicy',
        ...(conditions ? { conditions } : {}),
      },
      generation,
    );
    deleting.metadata = {
      ...deleting.metadata,
      deletionTimestamp: '2026-11-28T10:00:00Z',
      finalizers: ['microseg.dev/isolation-release'],
    };
    return deleting;
  };
  /**
   * release of `deleting` says the controller has not released it, its last reconcile failing with
   * `error`; then, that condition made one from before the deletion, asks whether the controller runs.
   */
  async function releaseSaysFailedThenNot(deleting: Isolation, error: string): Promise<void> {
    const r = await run(deleting, ['release', 'shop/cut-web-1']);
    expect(r.code).toBe(1);
    expect(r.err).toBe(
      `microseg release: shop/cut-web-1 still present after 300 ms: deleted, but the controller has not released its pods and removed its finalizer microseg.dev/isolation-release: its last reconcile failed: ${error} (its Events: kubectl describe isolation -n shop cut-web-1)\n`,
    );
    deleting.status = {
      ...deleting.status,
      conditions: [{ ...failing('False', error)[0]!, lastTransitionTime: '2026-11-28T09:59:00Z' }],
    };
    const before = await run(deleting, ['release', 'shop/cut-web-1']);
    expect(before.err).toContain('(is the controller running? A release that fails');
  }

  it("isolate: a first reconcile that keeps failing says the controller's error, not whether it runs", async () => {
    const r = await run(
      stored({
        observedGeneration: 1,
        phase: 'Pending',
        message: `reconcile failed: ${refused}`,
        conditions: failing('False', refused),
      }),
      isolate,
    );
    expect(r.code).toBe(1);
    expect(r.err).toBe(
      `microseg isolate: no outcome for shop/cut-web-1 after 300 ms; the controller last reported phase Pending: reconcile failed: ${refused} (its Events: kubectl describe isolation -n shop cut-web-1)\n`,
    );
  });

  it('release: with no status written, asks whether the controller runs', async () => {
    const r = await run(stored(), ['release', 'shop/cut-web-1']);
    expect(r.code).toBe(1);
    expect(r.err).toBe(
      'microseg release: shop/cut-web-1 still present after 300 ms (is the controller running?)\n',
    );
  });

  it('release: with a status the controller wrote, says what it last reported instead', async () => {
    const r = await run(
      stored({ observedGeneration: 1, phase: 'Isolated', message: '1 pod(s) isolated with NetworkPolicy' }),
      ['release', 'shop/cut-web-1'],
    );
    expect(r.code).toBe(1);
    expect(r.err).toBe(
      'microseg release: shop/cut-web-1 still present after 300 ms; the controller last reported phase Isolated: 1 pod(s) isolated with NetworkPolicy (its Events: kubectl describe isolation -n shop cut-web-1)\n',
    );
  });

  it('release: deleted but held by the finalizer, says the controller has not released it, not the status from before', async () => {
    // What a real API server answers after the DELETE: the deletion marked, the finalizer holding the
    // object; the status is the one the controller wrote before (it writes none while releasing).
    const deleting = deletedIsolated();
    const r = await run(deleting, ['release', 'shop/cut-web-1']);
    expect(r.code).toBe(1);
    expect(r.err).toBe(
      'microseg release: shop/cut-web-1 still present after 300 ms: deleted, but the controller has not released its pods and removed its finalizer microseg.dev/isolation-release (is the controller running? A release that fails is said in a ReconcileFailed Event: kubectl describe isolation -n shop cut-web-1)\n',
    );
    // Held by another's finalizer only: microseg's is gone (its release done, or nothing isolated).
    deleting.metadata = { ...deleting.metadata, finalizers: ['example.com/audit-hold'] };
    const other = await run(deleting, ['release', 'shop/cut-web-1']);
    expect(other.err).toBe(
      "microseg release: shop/cut-web-1 still present after 300 ms: deleted, and microseg holds it no longer (its pods released, or none isolated), but finalizers that are not microseg's do: example.com/audit-hold\n",
    );
  });

  it('release: deleted, held by the finalizer, and the release failing since, says the error of the Reconciled condition', async () => {
    const refused = 'networkpolicies "cut-web-1" is forbidden: denied by admission (retrying)';
    // Generation 2: the API server bumps it as it marks the deletion. The condition was written 0.5 s
    // after the deletion, with the milliseconds the controller's clock gives; a failure from before the
    // deletion says nothing of the release.
    const deleting = deletedIsolated(
      [{ ...failing('False', refused)[0]!, lastTransitionTime: '2026-11-28T10:00:00.500Z' }],
      2,
    );
    await releaseSaysFailedThenNot(deleting, refused);
  });

  it('release: deleted, and the release failing as the reconcile before the deletion did, says that error', async () => {
    // A pod label patch RBAC forbids: it failed before the deletion, and the release fails with it
    // too. The condition stays False, so its lastTransitionTime is from before the deletion; its
    // observedGeneration is the deleted object's (the API server bumps the generation as it marks the
    // deletion), so a reconcile since the deletion wrote it.
    const forbidden = 'pods "web-1" is forbidden: User cannot patch resource "pods" (retrying)';
    // Then not reconciled since the deletion (the condition is of the generation before it): not said.
    const deleting = deletedIsolated(
      [
        {
          ...failing('False', forbidden)[0]!,
          lastTransitionTime: '2026-11-28T09:59:00Z',
          observedGeneration: 2,
        },
      ],
      2,
    );
    await releaseSaysFailedThenNot(deleting, forbidden);
  });

  it('release: a release that keeps failing says the error of the Reconciled condition after the phase', async () => {
    const unavailable = 'the server is currently unable to handle the request (retrying)';
    const r = await run(
      stored({
        observedGeneration: 1,
        phase: 'Isolated',
        message: '1 pod(s) isolated with NetworkPolicy',
        conditions: failing('False', unavailable),
      }),
      ['release', 'shop/cut-web-1'],
    );
    expect(r.code).toBe(1);
    expect(r.err).toBe(
      `microseg release: shop/cut-web-1 still present after 300 ms; the controller last reported phase Isolated: 1 pod(s) isolated with NetworkPolicy; its last reconcile failed: ${unavailable} (its Events: kubectl describe isolation -n shop cut-web-1)\n`,
    );
    // A Reconciled condition that is True adds nothing.
    const ok = await run(
      stored({
        observedGeneration: 1,
        phase: 'Isolated',
        message: '1 pod(s) isolated with NetworkPolicy',
        conditions: failing('True', 'the last reconcile succeeded'),
      }),
      ['release', 'shop/cut-web-1'],
    );
    expect(ok.err).toBe(
      'microseg release: shop/cut-web-1 still present after 300 ms; the controller last reported phase Isolated: 1 pod(s) isolated with NetworkPolicy (its Events: kubectl describe isolation -n shop cut-web-1)\n',
    );
  });
});

describe('isolate --wait on an Isolation whose status is of an older spec', () => {
  const base = mkdtempSync(join(tmpdir(), 'microseg-wait-gen-cli-'));
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  /**
   * A stand-in API server where shop/cut-web-1 exists (the create answers 409), its spec edited to
   * generation 2, and its status still the controller's Failed of generation 1 for the first `stale`
   * reads, then the controller's outcome for generation 2.
   */
  async function apiServer(stale: number, outcome: Isolation['status']) {
    const reads = { n: 0 };
    const iso = (status: Isolation['status']): Isolation => ({
      apiVersion: 'microseg.dev/v1alpha1',
      kind: 'Isolation',
      metadata: { name: 'cut-web-1', namespace: 'shop', generation: 2 },
      spec: { reason: 'shell', target: { pods: ['web-1'] } },
      status,
    });
    const failed: Isolation['status'] = {
      observedGeneration: 1,
      phase: 'Failed',
      message: 'spec.target.pods[0] "Web_1" is not a valid pod name',
    };
    const served = await serveWithKubeconfig(base, (req, res) => {
      const json = (code: number, body: unknown) => {
        res.writeHead(code, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      const url = req.url ?? '';
      if (req.method === 'POST' && url === '/apis/microseg.dev/v1alpha1/namespaces/shop/isolations') {
        req.resume();
        return req.on('end', () =>
          json(409, { kind: 'Status', status: 'Failure', reason: 'AlreadyExists', code: 409 }),
        );
      }
      if (url === '/apis/microseg.dev/v1alpha1/namespaces/shop/isolations/cut-web-1')
        return json(200, iso(++reads.n <= stale ? failed : outcome));
      return json(404, { kind: 'Status', status: 'Failure', reason: 'NotFound', code: 404 });
    });
    return { ...served, reads };
  }
  const isolate = ['isolate', 'shop/web-1', '--name', 'cut-web-1', '--reason', 'shell', '--wait'];

  it('waits for the outcome of the current generation instead of taking the older Failed', async () => {
    const api = await apiServer(3, {
      observedGeneration: 2,
      phase: 'Isolated',
      method: 'NetworkPolicy',
      message: '1 pod(s) isolated with NetworkPolicy',
      isolatedPods: ['web-1'],
    });
    try {
      const r = await cli([...isolate, '--timeout', '20s', '--kubeconfig', api.file]);
      expect(r).toEqual({
        code: 0,
        out: 'isolation shop/cut-web-1: Isolated (NetworkPolicy)\n  1 pod(s) isolated with NetworkPolicy\n  pods: web-1\n',
        err: '',
      });
      expect(api.reads.n).toBe(4);
    } finally {
      await api.close();
    }
  });

  it('a Failed of the current generation is the outcome, at once', async () => {
    const api = await apiServer(0, {
      observedGeneration: 2,
      phase: 'Failed',
      message: 'spec.target.pods[0] "Web_2" is not a valid pod name',
    });
    try {
      const r = await cli([...isolate, '--timeout', '20s', '--kubeconfig', api.file]);
      expect(r).toEqual({
        code: 1,
        out: 'isolation shop/cut-web-1: Failed\n  spec.target.pods[0] "Web_2" is not a valid pod name\n',
        err: '',
      });
      expect(api.reads.n).toBe(1);
    } finally {
      await api.close();
    }
  });

  it('times out naming the older generation when the controller never reports the current one', async () => {
    const api = await apiServer(Infinity, {});
    try {
      const r = await cli([...isolate, '--timeout', '500ms', '--kubeconfig', api.file]);
      expect(r.code).toBe(1);
      expect(r.err).toBe(
        'microseg isolate: no outcome for shop/cut-web-1 after 500 ms; the controller last reported, for generation 1 of the spec (now 2), phase Failed: spec.target.pods[0] "Web_1" is not a valid pod name (its Events: kubectl describe isolation -n shop cut-web-1)\n',
      );
    } finally {
      await api.close();
    }
  });
});
