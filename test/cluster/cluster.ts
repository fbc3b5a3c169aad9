/**
 * A real Kubernetes control plane for tests: embedded etcd plus the real kube-apiserver, both on
 * 127.0.0.1 on free ports, with a generated PKI, service-account signing keys, an admin identity
 * (O=system:masters) and RBAC authorization. There is no controller-manager, scheduler or kubelet:
 * namespaces never finish terminating, no `default` ServiceAccount or token Secrets are created,
 * owned objects are not garbage collected and pods stay as written until a test patches their status.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request, type RequestOptions } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApiException, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { type Binaries, ensureBinaries, HarnessError } from './binaries.ts';

export { HarnessError } from './binaries.ts';

/** Who a kubeconfig authenticates as. */
export type Identity =
  /** The cluster admin: client certificate CN=microseg-admin, O=system:masters. */
  | 'admin'
  /**
   * A ServiceAccount `namespace/name`, authenticated by a bound token minted through the
   * TokenRequest API (`serviceaccounts/token`). The namespace and ServiceAccount are created if absent.
   */
  | { serviceAccount: string; expirationSeconds?: number }
  /** Any user name and groups, authenticated by a client certificate signed by the cluster CA. */
  | { user: string; groups?: string[] };

/** Everything needed to reach a running cluster from another process (JSON-serialisable). */
export interface ClusterInfo {
  /** Temp directory holding data, PKI, logs and kubeconfigs. */
  dir: string;
  /** API server URL, `https://127.0.0.1:<port>`. */
  server: string;
  /** Admin kubeconfig. */
  kubeconfigPath: string;
  etcdEndpoint: string;
  binaries: Binaries;
}

export interface RawResponse {
  status: number;
  /** Response body as text. */
  text: string;
  /** Response body parsed as JSON (undefined when it is not JSON). */
  json: unknown;
}

export interface RawRequestOptions {
  /** Request body; objects are sent as JSON. */
  body?: unknown;
  /** Content-Type, default `application/json` (use `application/apply-patch+yaml` for server-side apply). */
  contentType?: string;
  identity?: Identity;
}

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface KubectlOptions {
  /** Written to kubectl's stdin (for `-f -`). */
  input?: string;
  /** Kubeconfig to use instead of the admin one (see `kubeconfigFor`). */
  kubeconfig?: string;
}

/** A handle on a cluster: clients, kubectl and identities, but no control over its processes. */
export interface ClusterHandle extends ClusterInfo {
  info(): ClusterInfo;
  /** A client config for the admin (default) or the given identity. */
  kubeConfig(identity?: Identity): Promise<KubeConfig>;
  /** Writes a kubeconfig for the identity and returns its path. */
  kubeconfigFor(identity: Identity): Promise<string>;
  /** Runs the kubectl built with the server; never throws on a non-zero exit. */
  kubectl(args: string[], opts?: KubectlOptions): Promise<KubectlResult>;
  /** A raw HTTPS request to the API server (path like `/api/v1/namespaces`); never throws on HTTP errors. */
  request(method: string, path: string, opts?: RawRequestOptions): Promise<RawResponse>;
}

/** A cluster this process started and controls. */
export interface Cluster extends ClusterHandle {
  /** Stops and starts the kube-apiserver on the same port; etcd and its data stay. */
  restart(): Promise<void>;
  /** Compacts etcd history up to now, so older resourceVersions get 410 Gone. Returns the revision. */
  compactEtcd(): Promise<string>;
  /** Process id of the running kube-apiserver. */
  apiserverPid(): number;
  /** Stops the kube-apiserver and etcd and (unless `keepDir`) removes the temp directory. */
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Directory for data, PKI and logs; a fresh temp directory by default. */
  dir?: string;
  /** Keep the directory after `stop()` (the default removes a directory the harness created). */
  keepDir?: boolean;
  /** Extra kube-apiserver flags, e.g. `--runtime-config=...` or `--feature-gates=...`. */
  apiserverFlags?: string[];
  /** Progress messages; defaults to stderr. */
  log?: (line: string) => void;
  /** How long to wait for etcd and `/readyz`, default 90 s. */
  readyTimeoutMs?: number;
}

const ADMIN_USER = 'microseg-admin';

/**
 * Starts etcd and the kube-apiserver, waits for `/readyz` and writes an admin kubeconfig. Ports are
 * picked free and then released, so another process can take one in between; when a server then
 * fails with "address already in use", the start is retried on new ports (twice at most, only when
 * the harness owns the directory).
 */
export async function startCluster(opts: StartOptions = {}): Promise<Cluster> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts);
    } catch (err) {
      const portTaken = err instanceof HarnessError && err.message.includes('address already in use');
      if (!portTaken || opts.dir !== undefined || attempt >= 3) throw err;
    }
  }
}

async function startOnce(opts: StartOptions): Promise<Cluster> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const binaries = await ensureBinaries({ log });
  const createdDir = opts.dir === undefined;
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'microseg-cluster-')));
  const pki = join(dir, 'pki');
  await mkdir(join(dir, 'logs'), { recursive: true });
  await run(binaries.testbin, ['certs', '--dir', pki, '--admin-user', ADMIN_USER]);

  const [etcdPort, peerPort, apiPort] = await freePorts(3);
  const etcdEndpoint = `http://127.0.0.1:${etcdPort}`;
  const server = `https://127.0.0.1:${apiPort}`;
  const timeout = opts.readyTimeoutMs ?? 90_000;
  const tracked = new Set<ChildProcess>();

  const etcd = launch(
    binaries.testbin,
    [
      'etcd',
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-url=${etcdEndpoint}`,
      `--listen-peer-url=http://127.0.0.1:${peerPort}`,
    ],
    join(dir, 'logs', 'etcd.log'),
    tracked,
  );
  const apiserverArgs = [
    'kube-apiserver',
    `--etcd-servers=${etcdEndpoint}`,
    '--etcd-compaction-interval=0',
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    `--secure-port=${apiPort}`,
    `--cert-dir=${join(dir, 'apiserver')}`,
    `--tls-cert-file=${join(pki, 'serving.crt')}`,
    `--tls-private-key-file=${join(pki, 'serving.key')}`,
    `--client-ca-file=${join(pki, 'ca.crt')}`,
    '--authorization-mode=RBAC',
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    `--service-account-key-file=${join(pki, 'sa.pub')}`,
    `--service-account-signing-key-file=${join(pki, 'sa.key')}`,
    '--service-cluster-ip-range=10.96.0.0/16',
    '--disable-admission-plugins=ServiceAccount',
    '--enable-priority-and-fairness=false',
    '--endpoint-reconciler-type=none',
    '--allow-privileged=true',
    '--profiling=false',
    '--shutdown-watch-termination-grace-period=2s',
    ...(opts.apiserverFlags ?? []),
  ];
  const apiserverLog = join(dir, 'logs', 'kube-apiserver.log');
  let apiserver: ChildProcess | undefined;
  let stopped = false;

  const clientTLS = {
    ca: readFileSync(join(pki, 'ca.crt')),
    cert: readFileSync(join(pki, 'admin.crt')),
    key: readFileSync(join(pki, 'admin.key')),
  };
  const startAPIServer = async (): Promise<void> => {
    apiserver = launch(binaries.testbin, apiserverArgs, apiserverLog, tracked);
    await waitFor(
      'kube-apiserver /readyz',
      async () => (await httpsGet(`${server}/readyz`, clientTLS)) === 200,
      timeout,
      apiserver,
      apiserverLog,
    );
  };

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (apiserver) await terminate(apiserver);
    await terminate(etcd);
    if (createdDir && !opts.keepDir) await rm(dir, { recursive: true, force: true });
  };

  try {
    await waitFor(
      'etcd',
      async () => {
        const res = await fetch(`${etcdEndpoint}/health`).catch(() => undefined);
        return res?.status === 200;
      },
      timeout,
      etcd,
      join(dir, 'logs', 'etcd.log'),
    );
    const t0 = Date.now();
    await startAPIServer();
    log(
      `microseg test cluster: kube-apiserver ${binaries.kubernetesVersion} ready at ${server} in ${Date.now() - t0} ms`,
    );
  } catch (err) {
    await stop();
    throw err;
  }

  const info: ClusterInfo = {
    dir,
    server,
    kubeconfigPath: join(dir, 'kubeconfig'),
    etcdEndpoint,
    binaries,
  };
  await writeFile(info.kubeconfigPath, adminKubeconfig(info), { mode: 0o600 });
  const handle = connectCluster(info);

  return {
    ...handle,
    async restart() {
      if (stopped) throw new HarnessError('restart() after stop()');
      if (apiserver) await terminate(apiserver);
      await startAPIServer();
    },
    async compactEtcd() {
      const out = await run(binaries.testbin, ['etcd-compact', `--endpoint=${etcdEndpoint}`]);
      return out.trim();
    },
    apiserverPid() {
      if (!apiserver?.pid) throw new HarnessError('kube-apiserver is not running');
      return apiserver.pid;
    },
    stop,
  };
}

/** Returns a handle on a cluster started elsewhere (e.g. by the vitest global setup). */
export function connectCluster(info: ClusterInfo): ClusterHandle {
  const pki = join(info.dir, 'pki');
  const adminKC = (): KubeConfig => {
    const kc = new KubeConfig();
    kc.loadFromString(adminKubeconfig(info));
    return kc;
  };
  let counter = 0;

  const kubeconfigFor = async (identity: Identity): Promise<string> => {
    if (identity === 'admin') return info.kubeconfigPath;
    const file = join(
      info.dir,
      'kubeconfigs',
      `${identityFileName(identity)}-${process.pid}-${++counter}.yaml`,
    );
    await mkdir(join(info.dir, 'kubeconfigs'), { recursive: true });
    let user: Record<string, unknown>;
    if ('serviceAccount' in identity) {
      const token = await serviceAccountToken(
        adminKC(),
        identity.serviceAccount,
        identity.expirationSeconds ?? 3600,
      );
      user = { token };
    } else {
      if (!identity.user) throw new HarnessError('identity.user must not be empty');
      const prefix = file.replace(/\.yaml$/, '');
      await run(info.binaries.testbin, [
        'client-cert',
        `--ca-dir=${pki}`,
        `--cn=${identity.user}`,
        `--out=${prefix}`,
        ...(identity.groups ?? []).map((g) => `--org=${g}`),
      ]);
      user = {
        'client-certificate-data': b64(await readFile(`${prefix}.crt`)),
        'client-key-data': b64(await readFile(`${prefix}.key`)),
      };
    }
    await writeFile(file, kubeconfigYAML(info, identityLabel(identity), user), { mode: 0o600 });
    return file;
  };

  return {
    ...info,
    info: () => info,
    async kubeConfig(identity: Identity = 'admin') {
      if (identity === 'admin') return adminKC();
      const kc = new KubeConfig();
      kc.loadFromFile(await kubeconfigFor(identity));
      return kc;
    },
    kubeconfigFor,
    kubectl(args: string[], opts: KubectlOptions = {}) {
      return runKubectl(info.binaries.kubectl, args, opts.kubeconfig ?? info.kubeconfigPath, opts.input);
    },
    async request(method: string, path: string, opts: RawRequestOptions = {}) {
      const kc = opts.identity === undefined || opts.identity === 'admin' ? adminKC() : new KubeConfig();
      if (opts.identity !== undefined && opts.identity !== 'admin')
        kc.loadFromFile(await kubeconfigFor(opts.identity));
      const httpsOpts: RequestOptions = { method, headers: {} };
      await kc.applyToHTTPSOptions(httpsOpts);
      const body =
        opts.body === undefined
          ? undefined
          : typeof opts.body === 'string'
            ? opts.body
            : JSON.stringify(opts.body);
      httpsOpts.headers = {
        ...(httpsOpts.headers as Record<string, string>),
        Accept: 'application/json',
        ...(body === undefined ? {} : { 'Content-Type': opts.contentType ?? 'application/json' }),
      };
      return rawRequest(`${info.server}${path}`, httpsOpts, body);
    },
  };
}

function rawRequest(url: string, opts: RequestOptions, body: string | undefined): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, opts, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, text, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function serviceAccountToken(kc: KubeConfig, ref: string, expirationSeconds: number): Promise<string> {
  const [namespace, name, ...rest] = ref.split('/');
  if (!namespace || !name || rest.length > 0) {
    throw new HarnessError(`serviceAccount must be "namespace/name", got ${JSON.stringify(ref)}`);
  }
  const core = kc.makeApiClient(CoreV1Api);
  await ignoreConflict(() => core.createNamespace({ body: { metadata: { name: namespace } } }));
  await ignoreConflict(() =>
    core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } }),
  );
  const tr = await core.createNamespacedServiceAccountToken({
    name,
    namespace,
    body: {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { audiences: [], expirationSeconds },
    },
  });
  const token = tr.status?.token;
  if (!token) throw new HarnessError(`TokenRequest for ${ref} returned no token`);
  return token;
}

async function ignoreConflict(fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (!(err instanceof ApiException && err.code === 409)) throw err;
  }
}

function identityLabel(identity: Exclude<Identity, 'admin'>): string {
  return 'serviceAccount' in identity
    ? `system:serviceaccount:${identity.serviceAccount.replace('/', ':')}`
    : identity.user;
}

function identityFileName(identity: Exclude<Identity, 'admin'>): string {
  return identityLabel(identity).replace(/[^A-Za-z0-9._-]+/g, '_');
}

function b64(data: Buffer | string): string {
  return Buffer.from(data).toString('base64');
}

function adminKubeconfig(info: ClusterInfo): string {
  const pki = join(info.dir, 'pki');
  return kubeconfigYAML(info, ADMIN_USER, {
    'client-certificate-data': b64(readFileSync(join(pki, 'admin.crt'))),
    'client-key-data': b64(readFileSync(join(pki, 'admin.key'))),
  });
}

function kubeconfigYAML(info: ClusterInfo, userName: string, user: Record<string, unknown>): string {
  const ca = b64(readFileSync(join(info.dir, 'pki', 'ca.crt')));
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'microseg-test', cluster: { server: info.server, 'certificate-authority-data': ca } }],
    users: [{ name: userName, user }],
    contexts: [{ name: 'microseg-test', context: { cluster: 'microseg-test', user: userName } }],
    'current-context': 'microseg-test',
  });
}

// ---------------------------------------------------------------------------------------------
// processes

function launch(bin: string, args: string[], logFile: string, tracked: Set<ChildProcess>): ChildProcess {
  const out = createWriteStream(logFile, { flags: 'a' });
  // MICROSEG_DIE_WITH_PARENT: on Linux the server gets SIGTERM if this process dies without stopping it
  const child = spawn(bin, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, MICROSEG_DIE_WITH_PARENT: '1' },
  });
  child.stdout?.pipe(out, { end: false });
  child.stderr?.pipe(out, { end: false });
  tracked.add(child);
  liveChildren.add(child);
  child.on('exit', () => {
    tracked.delete(child);
    liveChildren.delete(child);
  });
  return child;
}

/** Children still running when this process exits are killed, so no server outlives its test run. */
const liveChildren = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of liveChildren) child.kill('SIGKILL');
});

async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

async function waitFor(
  what: string,
  probe: () => Promise<boolean>,
  timeoutMs: number,
  child: ChildProcess,
  logFile: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new HarnessError(
        `${what}: process exited (${child.exitCode ?? child.signalCode}) before it was ready; last log lines:\n${tail(logFile)}`,
      );
    }
    if (await probe().catch(() => false)) return;
    await sleep(100);
  }
  throw new HarnessError(`${what} not ready after ${timeoutMs} ms; last log lines:\n${tail(logFile)}`);
}

function tail(file: string, lines = 30): string {
  if (!existsSync(file)) return '(no log)';
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

function httpsGet(url: string, tls: { ca: Buffer; cert: Buffer; key: Buffer }): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ...tls, method: 'GET', timeout: 5_000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const s = createServer();
          s.once('error', reject);
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => {
    const addr = s.address();
    if (addr === null || typeof addr === 'string') throw new HarnessError('could not allocate a port');
    return addr.port;
  });
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

/** Runs a short helper command of the test binary and returns its stdout. */
function run(bin: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(stdout);
      else reject(new HarnessError(`${args[0]} failed (exit ${code}): ${stderr.trim()}`));
    });
  });
}

function runKubectl(bin: string, args: string[], kubeconfig: string, input?: string): Promise<KubectlResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, {
      env: { ...process.env, KUBECONFIG: kubeconfig },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}
