/**
 * Controller benchmark against a real kube-apiserver (the test harness's etcd + kube-apiserver):
 * - memory of a controller process whose informers hold 10,000 pods (10 namespaces × 1,000);
 * - time to enforce a 1,000-NetworkPolicy proposal (990 workload policies + 10 default denies), from
 *   `spec.mode: Enforce` to every policy acknowledged by the apiserver and Enforced=True;
 * - writes made by the following reconciles (should be none: level-based and idempotent), and their
 *   duration (a steady-state reconcile: nothing changed since the last one).
 *
 *   node bench/controller.ts [--json]
 */
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { startCluster } from '../test/cluster/cluster.ts';
import type { Cluster } from '../test/cluster/cluster.ts';
import type { Segmentation } from '../src/controller/api.ts';
import { ClusterCache } from '../src/controller/cache.ts';
import { KubeClient, resourcePath } from '../src/controller/kube.ts';
import { jsonLogger, silentLogger } from '../src/controller/log.ts';
import { Manager } from '../src/controller/manager.ts';
import { collector } from '../src/cli/memory.ts';
import type { Flow } from '../src/flows/types.ts';

interface Figure {
  name: string;
  value: number;
  unit: string;
}

const gc = collector();

const NAMESPACES = 10;
let PODS_PER_NS = 1000;
/** Workloads per namespace that talk (a chain): 99 policies + 1 default deny per namespace. */
const TALKERS = 99;
const SEG = 'bench';

async function pool<T>(items: T[], n: number, f: (x: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) await f(items[next++]!);
    }),
  );
}

const writes = (c: KubeClient): number =>
  [...c.requests].filter(([k]) => !k.startsWith('GET ')).reduce((n, [, v]) => n + v, 0);

async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function benchController(opts: { podsPerNamespace?: number } = {}): Promise<Figure[]> {
  PODS_PER_NS = opts.podsPerNamespace ?? 1000;
  const P = (NAMESPACES * PODS_PER_NS).toLocaleString('en');
  const figures: Figure[] = [];
  const cluster: Cluster = await startCluster({ log: () => {} });
  try {
    const root = fileURLToPath(new URL('../', import.meta.url));
    const inst = await cluster.kubectl(['apply', '--server-side', '-k', `${root}manifests`]);
    if (inst.code !== 0) throw new Error(inst.stderr);
    await cluster.kubectl([
      'wait',
      '--for=condition=Established',
      'crd/segmentations.microseg.dev',
      '--timeout=30s',
    ]);
    const admin = new KubeClient(await cluster.kubeConfig());

    // 10k pods.
    const t0 = performance.now();
    for (let n = 0; n < NAMESPACES; n++)
      await admin.create(resourcePath('Namespace'), {
        metadata: { name: `bench-${n}`, labels: { bench: 'yes' } },
      });
    const pods = Array.from(
      { length: NAMESPACES * PODS_PER_NS },
      (_, i) => [Math.floor(i / PODS_PER_NS), i % PODS_PER_NS] as const,
    );
    await pool(pods, 32, async ([n, i]) => {
      await admin.create(resourcePath('Pod', `bench-${n}`), {
        metadata: { name: `p${i}`, labels: { app: `p${i}` } },
        spec: {
          nodeName: 'node-1',
          automountServiceAccountToken: false,
          containers: [{ name: 'main', image: 'registry.k8s.io/pause:3.10' }],
        },
      });
    });
    figures.push({
      name: `setup: create ${P} pods (32 concurrent)`,
      value: round((performance.now() - t0) / 1000, 1),
      unit: 's',
    });

    // Memory of a fresh controller process whose informers hold the pods (nothing else in its heap).
    const child = spawnSync(
      process.execPath,
      [fileURLToPath(import.meta.url), '--informers-only', cluster.kubeconfigPath],
      {
        encoding: 'utf8',
      },
    );
    if (child.status !== 0) throw new Error(`informer memory child failed: ${child.stderr}`);
    const mem = JSON.parse(child.stdout) as {
      baseline: NodeJS.MemoryUsage;
      synced: NodeJS.MemoryUsage;
      pods: number;
    };
    if (mem.pods !== NAMESPACES * PODS_PER_NS) throw new Error(`child cached ${mem.pods} pods`);
    figures.push({
      name: `controller process: heap used with ${P} pods in the informers`,
      value: round(mem.synced.heapUsed / 2 ** 20, 1),
      unit: 'MiB',
    });
    figures.push({
      name: `controller process: heap growth from the informers (${P} pods)`,
      value: round((mem.synced.heapUsed - mem.baseline.heapUsed) / 2 ** 20, 1),
      unit: 'MiB',
    });
    figures.push({
      name: 'controller process: RSS after sync',
      value: round(mem.synced.rss / 2 ** 20, 1),
      unit: 'MiB',
    });

    // The controller under test, in this process.
    const client = new KubeClient(await cluster.kubeConfig());
    client.writeLog = [];
    const manager = new Manager({
      client,
      log: process.env.MICROSEG_BENCH_LOGS ? jsonLogger({ level: 'debug' }) : silentLogger,
      identity: 'bench',
      leaderElect: false,
      leaseNamespace: 'microseg-system',
      controller: { resyncMs: 1000, persistIntervalMs: 1000, identityRefreshMs: 1000 },
    });
    const ts = performance.now();
    await manager.start();
    figures.push({
      name: `informers: initial list of ${P} pods and the rest`,
      value: round((performance.now() - ts) / 1000, 2),
      unit: 's',
    });
    const podBytes = manager.cache.pods.list().reduce((n, p) => n + JSON.stringify(p).length, 0);
    figures.push({
      name: 'pods cached (slimmed), as JSON',
      value: round(podBytes / 2 ** 20, 2),
      unit: 'MiB',
    });

    // A Segmentation over the 10 namespaces, learning a chain of 99 workloads in each.
    await admin.create(resourcePath('Segmentation'), {
      apiVersion: 'microseg.dev/v1alpha1',
      kind: 'Segmentation',
      metadata: { name: SEG },
      spec: { namespaceSelector: { matchLabels: { bench: 'yes' } }, mode: 'Learn', enforce: { force: true } },
    });
    const get = () => admin.get<Segmentation>(resourcePath('Segmentation', undefined, SEG));
    await waitFor(
      'Learning',
      async () => ((await get()).status?.phase === 'Learning' ? true : undefined),
      60_000,
    );
    const flows: Flow[] = [];
    const now = Date.now();
    for (let n = 0; n < NAMESPACES; n++)
      for (let i = 0; i < TALKERS - 1; i++)
        flows.push({
          time: now,
          src: { namespace: `bench-${n}`, pod: `p${i}` },
          dst: { namespace: `bench-${n}`, pod: `p${i + 1}` },
          protocol: 'TCP',
          port: 8080,
          verdict: 'FORWARDED',
          input: 'generic',
        });
    const tl = performance.now();
    manager.controller.ingest(flows);
    await waitFor(
      '1,000 proposed policies',
      async () => ((await get()).status?.policies === 1000 ? true : undefined),
      120_000,
    );
    const pnps = await admin.list(resourcePath('ProposedNetworkPolicy'));
    if (pnps.items.length !== 1000)
      throw new Error(`expected 1000 ProposedNetworkPolicies, found ${pnps.items.length}`);
    figures.push({
      name: 'Learn: 980 flows → 1,000 ProposedNetworkPolicies written',
      value: round((performance.now() - tl) / 1000, 2),
      unit: 's',
    });

    // Enforce.
    const te = performance.now();
    await admin.mergePatch(resourcePath('Segmentation', undefined, SEG), { spec: { mode: 'Enforce' } });
    await waitFor(
      'Enforced',
      async () => {
        const s = await get();
        return s.status?.conditions?.find((c) => c.type === 'Enforced')?.status === 'True' ? true : undefined;
      },
      120_000,
    );
    const enforceSeconds = (performance.now() - te) / 1000;
    const nps = await admin.list<{ metadata: { labels?: Record<string, string> } }>(
      resourcePath('NetworkPolicy'),
    );
    const managed = nps.items.filter((p) => p.metadata.labels?.['microseg.dev/segmentation'] === SEG).length;
    if (managed !== 1000) throw new Error(`expected 1000 NetworkPolicies, found ${managed}`);
    figures.push({
      name: 'Enforce: 1,000 NetworkPolicies applied (SSA) until Enforced=True',
      value: round(enforceSeconds, 2),
      unit: 's',
    });

    // The next reconciles write nothing.
    await new Promise((r) => setTimeout(r, 1500));
    const reconcilesBefore = manager.controller.metrics.reconciles;
    const h0 = manager.controller.metrics.reconcileSeconds.sample();
    const w0 = writes(client);
    await waitFor(
      '3 more reconciles',
      () => (manager.controller.metrics.reconciles >= reconcilesBefore + 3 ? true : undefined),
      30_000,
    );
    figures.push({
      name: 'writes made by the next 3 reconciles',
      value: writes(client) - w0,
      unit: 'requests',
    });
    // Their duration (each ends after it started): nothing changed since the last one.
    await waitFor(
      '3 reconciles finished',
      () => (manager.controller.metrics.reconcileSeconds.sample().count >= h0.count + 3 ? true : undefined),
      30_000,
    );
    const h1 = manager.controller.metrics.reconcileSeconds.sample();
    figures.push({
      name: `steady-state reconcile duration, mean of the next 3 (${P} pods)`,
      value: round(((h1.sum - h0.sum) / (h1.count - h0.count)) * 1000, 1),
      unit: 'ms',
    });
    if (writes(client) > w0) console.error(client.writeLog.slice(-(writes(client) - w0)).join('\n'));
    const h = manager.controller.metrics.reconcileSeconds.sample();
    figures.push({
      name: `reconcile duration, mean (${P} pods, 1,000 policies)`,
      value: round((h.sum / h.count) * 1000, 1),
      unit: 'ms',
    });
    await manager.stop();
  } finally {
    await cluster.stop();
  }
  return figures;
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/** Child mode: start only the informers against a kubeconfig, report memory as JSON. */
async function informersOnly(kubeconfig: string): Promise<void> {
  const client = KubeClient.fromKubeconfigFile(kubeconfig);
  gc();
  const baseline = process.memoryUsage();
  const cache = new ClusterCache(client, {});
  cache.start();
  await cache.waitForSync();
  gc();
  const synced = process.memoryUsage();
  process.stdout.write(JSON.stringify({ baseline, synced, pods: cache.pods.size }));
  await cache.stop();
}

if (process.argv[2] === '--informers-only') {
  await informersOnly(process.argv[3]!);
} else if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      json: { type: 'boolean', default: false },
      'pods-per-namespace': { type: 'string', default: '1000' },
    },
  });
  const figures = await benchController({ podsPerNamespace: Number(values['pods-per-namespace']) });
  if (values.json) console.log(JSON.stringify(figures, null, 2));
  else for (const f of figures) console.log(`${f.name.padEnd(64)} ${String(f.value).padStart(12)} ${f.unit}`);
}
