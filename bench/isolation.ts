/**
 * Isolation benchmark against a real kube-apiserver (the test harness's etcd + kube-apiserver): a sender
 * in a worker thread posts alerts to the Falco and Alertmanager webhooks at a fixed rate, each incident
 * alerted several times in a row (--duplicates N alerts per incident), and the controller isolates them.
 * Per incident it measures alert received by the webhook -> deny in effect (the deny policy acknowledged
 * by the apiserver and the pod labelled), and the same from the alert being sent.
 * Reports p50/p95/p99/max, alerts lost (any non-2xx or transport error), Isolations per incident, the
 * final phases, CPU per process, event-loop delay and the latency of each kind of apiserver request.
 *
 *   node bench/isolation.ts [--rate 100] [--seconds 20] [--namespaces 10] [--duplicates 2]
 *                           [--mechanism NetworkPolicy|AdminNetworkPolicy|ClusterNetworkPolicy] [--json]
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { readFileSync, readdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { startCluster } from '../test/cluster/cluster.ts';
import { createNamespace, createPod } from '../test/cluster/objects.ts';
import type { Isolation } from '../src/isolate/api.ts';
import { QUARANTINE_LABEL } from '../src/isolate/api.ts';
import { startIsolationController } from '../src/isolate/controller.ts';
import { KubeClient, paths } from '../src/isolate/kube.ts';
import { KnownIsolations, alertmanagerRouter, falcoRouter } from '../src/isolate/webhooks.ts';
import type { NetworkPolicy, Pod } from '../src/model/k8s.ts';
import type { Kube, KubeRequest } from '../src/isolate/kube.ts';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { loadavg } from 'node:os';
import tls from 'node:tls';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '100' },
    seconds: { type: 'string', default: '20' },
    namespaces: { type: 'string', default: '10' },
    duplicates: { type: 'string', default: '2' },
    mechanism: { type: 'string', default: 'NetworkPolicy' },
    json: { type: 'boolean', default: false },
  },
});
const RATE = Number(values.rate);
const SECONDS = Number(values.seconds);
const NAMESPACES = Number(values.namespaces);
const ALERTS = Math.round(RATE * SECONDS);
const DUPLICATES = Number(values.duplicates);
const INCIDENTS = Math.ceil(ALERTS / DUPLICATES);
const TOKEN = 'bench-token';

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

async function pool<T>(items: T[], n: number, f: (x: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) await f(items[next++]!);
    }),
  );
}

const log = (s: string) => process.stderr.write(`${s}\n`);

// Counts TLS connections opened (to the apiserver): each one costs a handshake on both sides.
let tlsConnections = 0;
const tlsConnect = tls.connect.bind(tls) as (...a: unknown[]) => tls.TLSSocket;
(tls as { connect: (...a: unknown[]) => tls.TLSSocket }).connect = (...a: unknown[]) => {
  tlsConnections++;
  return tlsConnect(...a);
};

/** What a request is, for the breakdown: verb and resource (item or collection). */
function requestKind(r: KubeRequest): string {
  const parts = r.path
    .split('?')[0]!
    .split('/')
    .filter((x) => x !== '');
  const i = parts.lastIndexOf('namespaces');
  const rest = i >= 0 ? parts.slice(i + 2) : parts.slice(parts[0] === 'api' ? 2 : 3);
  const res =
    rest.length === 0
      ? parts.slice(-1)[0]!
      : rest.length === 1
        ? rest[0]!
        : `${rest[0]}/{name}${rest.length > 2 ? `/${rest[2]}` : ''}`;
  return `${r.method} ${res}`;
}

/** Times every request the webhooks and the controller make. */
function timed(inner: Kube): {
  kube: Kube;
  stats: Map<string, number[]>;
  inflight: () => number;
  peak: () => number;
} {
  const stats = new Map<string, number[]>();
  let inflight = 0;
  let peak = 0;
  return {
    stats,
    inflight: () => inflight,
    peak: () => peak,
    kube: {
      async request<T>(req: KubeRequest): Promise<T> {
        const t = performance.now();
        inflight++;
        peak = Math.max(peak, inflight);
        try {
          return await inner.request<T>(req);
        } finally {
          inflight--;
          const k = requestKind(req);
          let a = stats.get(k);
          if (!a) stats.set(k, (a = []));
          a.push(performance.now() - t);
        }
      },
    },
  };
}

interface SenderInput {
  base: string;
  pods: { ns: string; name: string }[];
}
interface SenderOutput {
  firstSent: [number, number][];
  persistedAt: [number, number][];
  nameOf: [number, string][];
  ok: number;
  lost: number;
  lostDetail: string[];
  sendSeconds: number;
}

/** CPU seconds (user + system) a process has used, from /proc; 0 where /proc is not available. */
function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

/** The child processes of this one with the given command name. */
function childPids(name: string): number[] {
  try {
    const tasks = readdirSync(`/proc/${process.pid}/task`);
    const kids = tasks.flatMap((t) =>
      readFileSync(`/proc/${process.pid}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean),
    );
    return kids.map(Number).filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === name;
      } catch {
        return false;
      }
    });
  } catch {
    return [];
  }
}

/** Milliseconds on a clock shared by the main thread and the sender worker. */
const now = (): number => performance.timeOrigin + performance.now();

/** Posts the alerts at the configured rate (in the worker thread); times are on the shared clock. */
async function sendAlerts(input: SenderInput): Promise<SenderOutput> {
  const persistedAt = new Map<number, number>();
  const firstSent = new Map<number, number>();
  const nameOf = new Map<number, string>();
  let ok = 0;
  let lost = 0;
  const lostDetail: string[] = [];
  const sends: Promise<void>[] = [];
  const { base, pods } = input;
  const send = async (j: number): Promise<void> => {
    const inc = Math.floor(j / DUPLICATES);
    const p = pods[inc]!;
    const falco = inc % 2 === 0;
    const body = falco
      ? {
          rule: 'Terminal shell in container',
          priority: 'Critical',
          time: new Date().toISOString(),
          output: 'bench',
          output_fields: { 'k8s.ns.name': p.ns, 'k8s.pod.name': p.name },
        }
      : {
          version: '4',
          status: 'firing',
          receiver: 'microseg',
          groupKey: `{}:{alertname="Bench"}`,
          alerts: [
            {
              status: 'firing',
              labels: { alertname: 'Bench', severity: 'critical', namespace: p.ns, pod: p.name },
              annotations: {},
              startsAt: new Date().toISOString(),
              endsAt: '0001-01-01T00:00:00Z',
              fingerprint: inc.toString(16).padStart(16, '0'),
            },
          ],
        };
    if (!firstSent.has(inc)) firstSent.set(inc, now());
    try {
      const res = await fetch(`${base}/${falco ? 'falco' : 'alertmanager'}/`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          authorization: `Bearer ${TOKEN}`,
          'x-bench-sent': String(now()),
        },
        body: JSON.stringify(body),
      });
      const json = (await res.json()) as { results?: { name?: string }[] };
      if (res.status >= 200 && res.status < 300 && json.results?.[0]?.name) {
        ok++;
        if (!persistedAt.has(inc)) persistedAt.set(inc, now());
        nameOf.set(inc, `${p.ns}/${json.results[0].name}`);
      } else {
        lost++;
        if (lostDetail.length < 5) lostDetail.push(`${res.status} ${JSON.stringify(json)}`);
      }
    } catch (err) {
      lost++;
      if (lostDetail.length < 5) lostDetail.push(String(err));
    }
  };

  const t0 = now();
  for (let j = 0; j < ALERTS; j++) {
    const due = t0 + (j * 1000) / RATE;
    const wait = due - now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    sends.push(send(j));
  }
  await Promise.all(sends);
  return {
    firstSent: [...firstSent],
    persistedAt: [...persistedAt],
    nameOf: [...nameOf],
    ok,
    lost,
    lostDetail,
    sendSeconds: (now() - t0) / 1000,
  };
}

if (!isMainThread) parentPort!.postMessage(await sendAlerts(workerData as SenderInput));
else await main();

async function main(): Promise<void> {
  const cluster = await startCluster({ log: () => undefined });
  try {
    const kc = await cluster.kubeConfig();
    const kube = await KubeClient.fromKubeConfig(kc);
    const crd = fileURLToPath(new URL('../crds/microseg.dev_isolations.yaml', import.meta.url));
    for (const args of [
      ['apply', '-f', crd],
      ['wait', '--for=condition=Established', 'crd/isolations.microseg.dev', '--timeout=30s'],
    ]) {
      const r = await cluster.kubectl(args);
      if (r.code !== 0) throw new Error(r.stderr);
    }
    if (values.mechanism !== 'NetworkPolicy') {
      // The admin-tier rung: serve policy.networking.k8s.io with the test stand-in CRDs.
      const file =
        values.mechanism === 'ClusterNetworkPolicy' ? 'clusternetworkpolicies' : 'adminnetworkpolicies';
      const path = fileURLToPath(
        new URL(`../test/isolate/fixtures/crds/policy.networking.k8s.io_${file}.yaml`, import.meta.url),
      );
      for (const args of [
        ['apply', '-f', path],
        ['wait', '--for=condition=Established', `crd/${file}.policy.networking.k8s.io`, '--timeout=30s'],
      ]) {
        const r = await cluster.kubectl(args);
        if (r.code !== 0) throw new Error(r.stderr);
      }
      for (;;) {
        const r = await cluster.kubectl([
          'api-resources',
          '--api-group=policy.networking.k8s.io',
          '-o',
          'name',
        ]);
        if (r.stdout.includes(file)) break;
        await new Promise((res) => setTimeout(res, 100));
      }
    }
    const nss = Array.from({ length: NAMESPACES }, (_, i) => `bench-${i}`);
    const pods: { ns: string; name: string }[] = [];
    for (let i = 0; i < INCIDENTS; i++) pods.push({ ns: nss[i % NAMESPACES]!, name: `app-${i}` });
    log(
      `setup: ${NAMESPACES} namespaces, ${pods.length} pods, a microseg allow policy and a foreign policy each`,
    );
    for (const ns of nss) {
      await createNamespace(kc, ns);
      const np = (name: string, labels: Record<string, string>, spec: NetworkPolicy['spec']) =>
        kube.request({
          method: 'POST',
          path: paths.networkPolicies(ns),
          body: {
            apiVersion: 'networking.k8s.io/v1',
            kind: 'NetworkPolicy',
            metadata: { name, labels },
            spec,
          },
        });
      await np(
        'microseg-allow-app',
        { 'app.kubernetes.io/managed-by': 'microseg' },
        {
          podSelector: { matchLabels: { tier: 'app' } },
          policyTypes: ['Ingress'],
          ingress: [{ from: [{ podSelector: {} }] }],
        },
      );
      await np(
        'monitoring',
        {},
        {
          podSelector: { matchLabels: { tier: 'app' } },
          policyTypes: ['Ingress'],
          ingress: [
            {
              from: [{ namespaceSelector: { matchLabels: { team: 'monitoring' } } }],
              ports: [{ port: 9090 }],
            },
          ],
        },
      );
    }
    const tPods = performance.now();
    await pool(pods, 16, async (p) => {
      await createPod(kc, {
        namespace: p.ns,
        name: p.name,
        labels: { tier: 'app', app: p.name },
        ports: { http: 8080 },
      });
    });

    const podRate = pods.length / ((performance.now() - tPods) / 1000);
    log(`apiserver capacity reference: ${podRate.toFixed(0)} pod creations/s with 16 in flight`);
    const isolatedAt = new Map<string, number>();
    const controllerLog: string[] = [];
    /** The controller's own measure: alert received by the webhook (annotation) -> deny in effect. */
    const receivedToDeny = new Map<string, number>();
    const known = new KnownIsolations();
    const probe = timed(kube);
    const ctl = await startIsolationController({
      kc,
      kube: probe.kube,
      known,
      resyncMs: 600_000,
      log: (line) => {
        controllerLog.push(line);
      },
      onIsolated: (key, sinceReceived) => {
        if (!isolatedAt.has(key)) isolatedAt.set(key, now());
        if (!receivedToDeny.has(key)) receivedToDeny.set(key, sinceReceived);
      },
    });
    const app = express();
    // Time from the request being sent by the bench to the server starting to handle it (client and
    // connection overhead of the load generator, which shares this process).
    const arrival: number[] = [];
    app.use((req, _res, next) => {
      const sent = Number(req.get('x-bench-sent'));
      if (sent > 0) arrival.push(now() - sent);
      next();
    });
    const opts = {
      kube: probe.kube,
      auth: { tokens: () => [TOKEN] },
      onPersisted: (n: string, name: string, created?: Isolation) => ctl.enqueue(n, name, created),
      known,
    };
    app.use('/falco', falcoRouter({ ...opts, falco: { minimumPriority: 'Warning', rules: [] } }));
    app.use('/alertmanager', alertmanagerRouter(opts));
    const server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    // Warm-up outside the measurement: the first custom-resource write and first reconcile pay one-off costs.
    await createNamespace(kc, 'bench-warmup');
    await createPod(kc, { namespace: 'bench-warmup', name: 'warm', labels: { tier: 'app' } });
    const warm = await fetch(`${base}/falco/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({
        rule: 'warm-up',
        priority: 'Critical',
        output_fields: { 'k8s.ns.name': 'bench-warmup', 'k8s.pod.name': 'warm' },
      }),
    });
    if (warm.status !== 200) throw new Error(`warm-up alert: ${warm.status}`);
    while (isolatedAt.size < 1) await new Promise((r) => setTimeout(r, 20));
    isolatedAt.clear();
    receivedToDeny.clear();
    probe.stats.clear();
    controllerLog.length = 0;
    const tlsBefore = tlsConnections;
    const loadBefore = loadavg()[0]!;
    // etcd and kube-apiserver are both the harness's multi-call binary: etcd is the other one.
    const etcdPids = childPids('k8s-testbin').filter((pid) => pid !== cluster.apiserverPid());
    const cpuOf = () => ({
      controller: process.cpuUsage(),
      apiserver: cpuSeconds(cluster.apiserverPid()),
      etcd: etcdPids.reduce((a, pid) => a + cpuSeconds(pid), 0),
    });
    const cpuBefore = cpuOf();
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();

    log(
      `sending ${ALERTS} alerts at ${RATE}/s (${INCIDENTS} incidents, each alerted ${DUPLICATES} times in a row)`,
    );
    // The load generator runs in a worker thread, as Falco and Alertmanager run outside the controller: its
    // CPU work does not delay the controller's event loop.
    const sender = await new Promise<SenderOutput>((resolve, reject) => {
      const w = new Worker(new URL(import.meta.url), {
        workerData: { base, pods } satisfies SenderInput,
        argv: process.argv.slice(2),
      });
      w.once('message', resolve);
      w.once('error', reject);
    });
    const firstSent = new Map(sender.firstSent);
    const persistedAt = new Map(sender.persistedAt);
    const nameOf = new Map(sender.nameOf);
    const { ok, lost, lostDetail, sendSeconds } = sender;
    const deadline = Date.now() + 120_000;
    while (isolatedAt.size < INCIDENTS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));

    loopDelay.disable();
    const cpuAfter = cpuOf();
    // Deferred work (leak checks, status, Events) catches up once the denies are done.
    const tDrain = now();
    await ctl.reconciler.checks.idle();
    const drainSeconds = (now() - tDrain) / 1000;
    const ctlCpu = process.cpuUsage(cpuBefore.controller);
    const cpuLine = `CPU used from the first alert until every deny was in effect: controller process ${((ctlCpu.user + ctlCpu.system) / 1e6).toFixed(1)} s (its sender thread included), kube-apiserver ${(cpuAfter.apiserver - cpuBefore.apiserver).toFixed(1)} s, etcd ${(cpuAfter.etcd - cpuBefore.etcd).toFixed(1)} s`;
    const latencies: number[] = [];
    const toPersist: number[] = [];
    const persistToDeny: number[] = [];
    for (const [inc, t] of firstSent) {
      const key = nameOf.get(inc);
      const done = key ? isolatedAt.get(key) : undefined;
      const persisted = persistedAt.get(inc);
      if (done !== undefined) latencies.push(done - t);
      if (persisted !== undefined) toPersist.push(persisted - t);
      if (persisted !== undefined && done !== undefined) persistToDeny.push(done - persisted);
    }
    latencies.sort((a, b) => a - b);
    const received = [...receivedToDeny.values()].sort((a, b) => a - b);
    toPersist.sort((a, b) => a - b);
    persistToDeny.sort((a, b) => a - b);
    const pct = (a: number[]) =>
      `p50 ${quantile(a, 0.5).toFixed(1)} p99 ${quantile(a, 0.99).toFixed(1)} max ${(a[a.length - 1] ?? NaN).toFixed(1)}`;
    const breakdown = [...probe.stats]
      .map(([k, a]) => {
        a.sort((x, y) => x - y);
        return `  ${k.padEnd(40)} n ${String(a.length).padStart(5)}  ${pct(a)} ms`;
      })
      .sort();

    // Ground truth from the apiserver: Isolations per incident, pods quarantined.
    let isolations = 0;
    let quarantined = 0;
    const perPod = new Map<string, number>();
    const methods: Record<string, number> = {};
    for (const ns of nss) {
      const list = await kube.request<{ items: Isolation[] }>({ method: 'GET', path: paths.isolations(ns) });
      isolations += list.items.length;
      for (const i of list.items) {
        const k = `${i.status?.phase ?? 'no status'}/${i.status?.method ?? 'none'}`;
        methods[k] = (methods[k] ?? 0) + 1;
      }
      for (const i of list.items)
        for (const p of i.spec?.target?.pods ?? [])
          perPod.set(`${ns}/${p}`, (perPod.get(`${ns}/${p}`) ?? 0) + 1);
      const podList = await kube.request<{ items: Pod[] }>({
        method: 'GET',
        path: paths.pods(ns),
        query: { labelSelector: QUARANTINE_LABEL },
      });
      quarantined += podList.items.length;
    }
    const duplicates = [...perPod.values()].filter((n) => n > 1).length;
    const hist = ctl.metrics.timeToIsolate.sample();
    const result = {
      rate: RATE,
      mechanism: values.mechanism,
      duplicatesPerIncident: DUPLICATES,
      alerts: ALERTS,
      incidents: INCIDENTS,
      sendSeconds: Number(sendSeconds.toFixed(2)),
      accepted2xx: ok,
      lost,
      isolations,
      incidentsWithMoreThanOneIsolation: duplicates,
      podsQuarantined: quarantined,
      isolatedIncidents: latencies.length,
      methods,
      podCreationsPerSecond: Number(podRate.toFixed(0)),
      receivedToDenyMs: {
        p50: quantile(received, 0.5),
        p95: quantile(received, 0.95),
        p99: quantile(received, 0.99),
        max: received[received.length - 1] ?? NaN,
      },
      latencyMs: {
        p50: Number(quantile(latencies, 0.5).toFixed(1)),
        p95: Number(quantile(latencies, 0.95).toFixed(1)),
        p99: Number(quantile(latencies, 0.99).toFixed(1)),
        max: Number((latencies[latencies.length - 1] ?? NaN).toFixed(1)),
      },
      serverHistogram: {
        count: hist.count,
        meanMs: Number(((hist.sum / Math.max(1, hist.count)) * 1000).toFixed(1)),
      },
      lostSamples: lostDetail,
    };
    if (values.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    else {
      process.stdout.write(
        [
          `mechanism: ${values.mechanism}; Isolations by status phase/method: ${JSON.stringify(methods)}`,
          `alerts: ${ALERTS} at ${RATE}/s over ${result.sendSeconds}s; 2xx ${ok}; lost ${lost}`,
          `incidents: ${INCIDENTS}; Isolations: ${isolations}; incidents with >1 Isolation: ${duplicates}; pods quarantined: ${quarantined}`,
          `alert sent -> deny in effect (policy acknowledged, pod labelled), ${latencies.length} incidents: p50 ${result.latencyMs.p50} ms, p95 ${result.latencyMs.p95} ms, p99 ${result.latencyMs.p99} ms, max ${result.latencyMs.max} ms`,
          `alert received by the webhook -> deny in effect (controller's measure, ms clock), ${received.length} incidents: ${pct(received)} ms`,
          `  of which alert sent -> Isolation persisted (2xx): ${pct(toPersist)} ms; persisted -> deny in effect: ${pct(persistToDeny)} ms`,
          `machine load average (1 min): ${loadBefore.toFixed(2)} before, ${loadavg()[0]!.toFixed(2)} after; TLS connections opened during the run: ${tlsConnections - tlsBefore}`,
          `request sent -> handled by the webhook server (load generator overhead): ${pct(arrival.sort((a, b) => a - b))} ms`,
          cpuLine,
          `leak checks and status writes deferred during the run finished ${drainSeconds.toFixed(1)} s after the last deny`,
          `controller errors (retried): ${controllerLog.length}${controllerLog.length ? `, e.g. ${controllerLog.slice(0, 3).join(' | ')}` : ''}`,
          `event loop delay: p50 ${(loopDelay.percentile(50) / 1e6).toFixed(1)} p99 ${(loopDelay.percentile(99) / 1e6).toFixed(1)} max ${(loopDelay.max / 1e6).toFixed(1)} ms; peak requests in flight ${probe.peak()}`,
          'apiserver requests during the run (latency as seen by the controller, including client-side queueing):',
          ...breakdown,
          '',
        ].join('\n'),
      );
    }
    await ctl.stop();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    kube.close();
  } finally {
    await cluster.stop();
  }
}
