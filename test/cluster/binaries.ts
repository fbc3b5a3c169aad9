/**
 * Builds (once) and locates the test control-plane binary: a multi-call Go binary holding the real
 * kube-apiserver, an embedded single-member etcd and kubectl, compiled from the Go module in
 * `test/cluster/apiserver/`. The result is cached outside the repository, keyed by the Kubernetes
 * version and a hash of the module's go.mod, go.sum, Go sources and linker flags, so a change to any of them
 * triggers a rebuild and an unchanged tree never rebuilds.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export const MODULE_DIR = fileURLToPath(new URL('./apiserver/', import.meta.url));

/** Name of the multi-call binary; `kube-apiserver`, `etcd` and `kubectl` are symlinks to it. */
export const BINARY = 'k8s-testbin';

export interface Binaries {
  /** Directory holding the binary and its symlinks; put it on PATH to get `kubectl`. */
  dir: string;
  /** The multi-call binary. */
  testbin: string;
  kubeApiserver: string;
  etcd: string;
  kubectl: string;
  /** Kubernetes version the binaries were built from, e.g. `v1.37.2`. */
  kubernetesVersion: string;
}

export class HarnessError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'HarnessError';
  }
}

/** Reads the pinned k8s.io/kubernetes version from the module's go.mod. */
export function kubernetesVersionOf(goMod: string): string {
  const m =
    /^require\s+k8s\.io\/kubernetes\s+(v\S+)\s*$/m.exec(goMod) ??
    /^\s+k8s\.io\/kubernetes\s+(v\S+)/m.exec(goMod);
  if (!m?.[1]) throw new HarnessError('test/cluster/apiserver/go.mod does not require k8s.io/kubernetes');
  return m[1];
}

/** Cache root: `$MICROSEG_K8S_CACHE`, else `${XDG_CACHE_HOME:-$HOME/.cache}/microseg/apiserver`. */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.MICROSEG_K8S_CACHE) return env.MICROSEG_K8S_CACHE;
  const xdg =
    env.XDG_CACHE_HOME && env.XDG_CACHE_HOME !== '' ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return join(xdg, 'microseg', 'apiserver');
}

/** The cache key: `<k8s version>-<first 16 hex of sha256 over go.mod, go.sum, *.go and the ldflags>`. */
export async function cacheKey(moduleDir: string = MODULE_DIR): Promise<{ key: string; version: string }> {
  const names = (await readdir(moduleDir))
    .filter((n) => n === 'go.mod' || n === 'go.sum' || n.endsWith('.go'))
    .sort();
  const hash = createHash('sha256');
  let goMod = '';
  for (const name of names) {
    const text = await readFile(join(moduleDir, name), 'utf8');
    if (name === 'go.mod') goMod = text;
    hash.update(`${name}\0${text}\0`);
  }
  const version = kubernetesVersionOf(goMod);
  hash.update(`ldflags\0${versionLdflags(version)}`);
  return { key: `${version}-${hash.digest('hex').slice(0, 16)}`, version };
}

function binariesIn(dir: string, version: string): Binaries {
  return {
    dir,
    testbin: join(dir, BINARY),
    kubeApiserver: join(dir, 'kube-apiserver'),
    etcd: join(dir, 'etcd'),
    kubectl: join(dir, 'kubectl'),
    kubernetesVersion: version,
  };
}

export interface EnsureOptions {
  /** Progress messages (building takes minutes the first time). Defaults to stderr. */
  log?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
}

/**
 * Returns the cached binaries, building them first when the cache has no entry for the current
 * sources. A lock file serialises builds across processes (e.g. `npm test` and `npm run cluster:up`
 * started together); a lock left by a dead process is taken over. After a successful build, entries
 * for other keys are removed so the cache holds one build (about 170 MB).
 */
export async function ensureBinaries(opts: EnsureOptions = {}): Promise<Binaries> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const env = opts.env ?? process.env;
  const { key, version } = await cacheKey();
  const root = cacheRoot(env);
  const dir = join(root, key);
  const bins = binariesIn(dir, version);
  const complete = (): boolean => existsSync(bins.testbin) && existsSync(bins.kubectl);
  if (complete()) return bins;

  await mkdir(dir, { recursive: true });
  const release = await acquireLock(join(dir, 'build.lock'), log);
  try {
    if (complete()) return bins;
    const tmp = join(dir, `${BINARY}.tmp-${process.pid}`);
    log(
      `microseg test cluster: building kube-apiserver ${version}, etcd and kubectl from Go modules into ${dir}\n` +
        '  (this takes several minutes the first time; later runs reuse the cache)',
    );
    const started = Date.now();
    await goBuild(tmp, version, env);
    for (const link of [bins.kubeApiserver, bins.etcd, bins.kubectl]) {
      await rm(link, { force: true });
      await symlink(BINARY, link);
    }
    // the binary appears last: its presence (with kubectl) marks a complete entry
    await rename(tmp, bins.testbin);
    log(`microseg test cluster: built in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  } finally {
    await release();
  }
  for (const other of await readdir(root)) {
    if (other !== key && /^v\d+\.\d+\.\d+.*-[0-9a-f]{16}$/.test(other)) {
      await rm(join(root, other), { recursive: true, force: true });
    }
  }
  return bins;
}

async function acquireLock(file: string, log: (line: string) => void): Promise<() => Promise<void>> {
  let announced = false;
  for (;;) {
    try {
      await writeFile(file, String(process.pid), { flag: 'wx' });
      return () => rm(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = Number((await readFile(file, 'utf8').catch(() => '')).trim());
    if (!Number.isInteger(holder) || holder <= 0 || !processAlive(holder)) {
      await rm(file, { force: true });
      continue;
    }
    if (!announced) {
      log(`microseg test cluster: waiting for the build running in process ${holder}`);
      announced = true;
    }
    await sleep(1000);
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Linker flags stamping the Kubernetes version into the binaries, as the upstream release build does. */
export function versionLdflags(version: string): string {
  const m = /^v(\d+)\.(\d+)\./.exec(version);
  if (!m) throw new HarnessError(`unexpected Kubernetes version ${JSON.stringify(version)}`);
  const flags = ['-s', '-w'];
  for (const pkg of ['k8s.io/component-base/version', 'k8s.io/client-go/pkg/version']) {
    flags.push(
      `-X ${pkg}.gitVersion=${version}`,
      `-X ${pkg}.gitMajor=${m[1]}`,
      `-X ${pkg}.gitMinor=${m[2]}`,
      `-X ${pkg}.gitTreeState=clean`,
    );
  }
  return flags.join(' ');
}

function goBuild(out: string, version: string, env: NodeJS.ProcessEnv): Promise<void> {
  const args = ['build', '-trimpath', `-ldflags=${versionLdflags(version)}`, '-o', out, '.'];
  return new Promise((resolve, reject) => {
    let stderr = '';
    const child = spawn('go', args, {
      cwd: MODULE_DIR,
      env: { ...env, GOFLAGS: `${env.GOFLAGS ?? ''} -mod=readonly`.trim() },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      reject(
        new HarnessError(
          err.code === 'ENOENT'
            ? 'cannot build the test control plane: the `go` command was not found on PATH (Go 1.26+ is required)'
            : `cannot run go build: ${err.message}`,
          { cause: err },
        ),
      );
    });
    child.on('close', (code) => {
      if (code === 0) resolve();
      else
        reject(
          new HarnessError(
            `go build of the test control plane failed (exit ${code}) in ${MODULE_DIR}:\n${stderr.trim()}`,
          ),
        );
    });
  });
}
