/**
 * Which cluster a command talks to: the kubeconfig of `--kubeconfig`, else the files of `$KUBECONFIG`,
 * else `~/.kube/config`, else the in-cluster config of a pod's ServiceAccount (the order of client-node's
 * `loadFromDefault`). Nothing found, a file that cannot be read, or a config no client can use (no current
 * cluster, a plain-HTTP server) is bad usage naming where it looked; without this, client-node falls back
 * to http://localhost:8080 and the first request fails with a message that names no kubeconfig at all.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { readProblem } from '../flows/reader.ts';
import { UsageError } from './io.ts';

/** Where a pod's ServiceAccount token is mounted: its presence means "in a cluster". */
export const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export interface LoadedKubeConfig {
  kc: KubeConfig;
  /** Where it came from, for messages: `--kubeconfig kc.yaml`, `$KUBECONFIG a:b`, ... */
  source: string;
  /** The API server's URL. */
  server: string;
}

export interface KubeConfigPlaces {
  env?: NodeJS.ProcessEnv;
  /** The ServiceAccount token whose presence means "in a pod" (tests point it elsewhere). */
  serviceAccountToken?: string;
}

/**
 * Why `file` cannot be read as a kubeconfig, in a few words (`readProblem`'s, as for every file the CLI
 * reads), or undefined when it is a file.
 */
function fileProblem(file: string): string | undefined {
  try {
    return statSync(file).isFile() ? undefined : 'not a file';
  } catch (err) {
    return readProblem(err);
  }
}

/** `kc.loadFromFile(file)`, the file read here so that what the system refuses is said in its words. */
function loadFile(kc: KubeConfig, file: string, source: string): void {
  const problem = fileProblem(file);
  if (problem !== undefined) throw new UsageError(`${source}: ${problem}`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`${source}: ${readProblem(err)}`);
  }
  try {
    kc.loadFromString(text);
    // Certificate and key files named relative to the kubeconfig, as loadFromFile takes them.
    kc.makePathsAbsolute(dirname(file));
  } catch (err) {
    throw new UsageError(`${source}: cannot load: ${(err as Error).message}`);
  }
}

export function loadKubeConfig(flag: string | undefined, places: KubeConfigPlaces = {}): LoadedKubeConfig {
  const env = places.env ?? process.env;
  const token = places.serviceAccountToken ?? SERVICE_ACCOUNT_TOKEN;
  const kc = new KubeConfig();
  let source: string;
  const home = env.HOME || homedir();
  const homeConfig = join(home, '.kube', 'config');
  if (flag !== undefined) {
    source = `--kubeconfig ${flag}`;
    loadFile(kc, flag, source);
  } else if (env.KUBECONFIG) {
    source = `$KUBECONFIG ${env.KUBECONFIG}`;
    const files = env.KUBECONFIG.split(delimiter).filter((f) => f !== '');
    // Merged as client-node's loadFromDefault merges them (a later file's current context wins).
    for (const [i, file] of files.entries()) {
      if (i === 0) loadFile(kc, file, `$KUBECONFIG names ${file}`);
      else {
        const more = new KubeConfig();
        loadFile(more, file, `$KUBECONFIG names ${file}`);
        kc.mergeConfig(more);
      }
    }
  } else if (existsSync(homeConfig)) {
    source = homeConfig;
    loadFile(kc, homeConfig, source);
  } else if (existsSync(token)) {
    source = 'the in-cluster config (ServiceAccount)';
    try {
      kc.loadFromCluster();
    } catch (err) {
      throw new UsageError(`${source}: cannot load: ${(err as Error).message}`);
    }
  } else {
    throw new UsageError(
      `no kubeconfig found: no --kubeconfig given, $KUBECONFIG not set, no ${homeConfig}, ` +
        `and not in a pod (no ${token})`,
    );
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster)
    throw new UsageError(
      `${source}: no current cluster (current-context ${JSON.stringify(kc.getCurrentContext())} names none)`,
    );
  let url: URL;
  try {
    url = new URL(cluster.server);
  } catch {
    throw new UsageError(
      `${source}: cluster ${cluster.name}: server ${JSON.stringify(cluster.server)} is not a URL`,
    );
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && cluster.skipTLSVerify))
    throw new UsageError(
      `${source}: cluster ${cluster.name}: server ${cluster.server} is not https:// (the Kubernetes client ` +
        `takes plain http:// only with insecure-skip-tls-verify: true)`,
    );
  return { kc, source, server: cluster.server };
}
