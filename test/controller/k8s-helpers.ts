/**
 * Helpers for the controller's integration tests (test/k8s/controller*.test.ts): install microseg with
 * its own manifests, run a controller process in-process under the microseg ServiceAccount, push flows.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import type { ClusterHandle } from '../cluster/index.ts';
import { createNamespace, createPod, eventually, setPodIPs } from '../cluster/index.ts';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Condition, Segmentation } from '../../src/controller/api.ts';
import { KubeClient } from '../../src/controller/kube.ts';
import type { Logger } from '../../src/controller/log.ts';
import type { Checkpoint } from '../../src/telemetry/checkpoint.ts';
import { jsonLogger, silentLogger } from '../../src/controller/log.ts';
import { Manager } from '../../src/controller/manager.ts';
import type { ManagerOptions } from '../../src/controller/manager.ts';
import { parseGenericFlow } from '../../src/flows/generic.ts';
import { FlowInputError } from '../../src/flows/errors.ts';
import { Telemetry } from '../../src/telemetry/index.ts';
import type { TelemetryOptions } from '../../src/telemetry/index.ts';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const SA = 'microseg-system/microseg-controller';
export const TOKEN = 'test-push-token';

export async function install(cluster: ClusterHandle): Promise<void> {
  await applyCrds(
    cluster,
    ['--server-side', '--force-conflicts', '-k', `${ROOT}manifests`],
    ['segmentations.microseg.dev', 'proposednetworkpolicies.microseg.dev', 'learnededgesets.microseg.dev'],
  );
}

/** `kubectl apply` with `args`, then waits until each CRD named in `crds` is Established. */
export async function applyCrds(cluster: ClusterHandle, args: string[], crds: string[]): Promise<void> {
  const r = await cluster.kubectl(['apply', ...args]);
  expect(r.code, r.stderr).toBe(0);
  const w = await cluster.kubectl([
    'wait',
    '--for=condition=Established',
    ...crds.map((c) => `crd/${c}`),
    '--timeout=30s',
  ]);
  expect(w.code, w.stderr).toBe(0);
}

/** `microseg controller` run as a process by `spawnController`. */
export interface ControllerProcess {
  child: ChildProcess;
  /** Its standard error, a line each: the JSON log lines, a line of text (bad usage) as `{ text }`. */
  lines: Record<string, unknown>[];
  /** Its exit code, once it has exited. */
  exited: Promise<number | null>;
  /** Whether it has exited yet, and with which code. */
  exitCode(): number | null | undefined;
}

/**
 * Runs `microseg controller` as a process against `cluster`, campaigning with `--identity identity`
 * for a Lease `lease` of its own in microseg-system, listening on a free port of 127.0.0.1 and
 * managing only the Segmentations labelled `microseg.dev/test=<test>`; `args` are added, `env` set.
 */
export function spawnController(
  cluster: ClusterHandle,
  o: { identity: string; lease: string; test: string; args?: string[]; env?: Record<string, string> },
): ControllerProcess {
  const child = spawn(
    `${ROOT}node_modules/.bin/node`,
    [
      `${ROOT}src/cli/main.ts`,
      'controller',
      `--kubeconfig=${cluster.kubeconfigPath}`,
      '--leader-elect',
      '--lease-namespace=microseg-system',
      `--lease-name=${o.lease}`,
      `--identity=${o.identity}`,
      '--listen=127.0.0.1:0',
      `--segmentation-selector=microseg.dev/test=${o.test}`,
      ...(o.args ?? []),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...o.env } },
  );
  const lines: Record<string, unknown>[] = [];
  let buf = '';
  child.stderr.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      lines.push(line.startsWith('{') ? (JSON.parse(line) as Record<string, unknown>) : { text: line });
    }
  });
  let code: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve((code = c))));
  return { child, lines, exited, exitCode: () => code };
}

export interface RunningController {
  manager: Manager;
  client: KubeClient;
  port: number;
  logs: string[];
  push(records: unknown[]): Promise<Response>;
  stop(): Promise<void>;
}

/** Starts a controller process under the microseg ServiceAccount (RBAC from manifests/). */
export async function startController(
  cluster: ClusterHandle,
  opts: Partial<ManagerOptions> & {
    identity: string;
    telemetry?: Telemetry;
    telemetryOptions?: TelemetryOptions;
    /** Run as the cluster admin instead of the microseg ServiceAccount. */
    asAdmin?: boolean;
  },
): Promise<RunningController> {
  const { asAdmin, telemetryOptions, ...managerOpts } = opts;
  const kc = await cluster.kubeConfig(asAdmin ? 'admin' : { serviceAccount: SA });
  const client = new KubeClient(kc);
  const logs: string[] = [];
  const log: Logger = process.env.MICROSEG_TEST_LOGS
    ? jsonLogger({ level: 'debug', fields: { replica: opts.identity } })
    : jsonLogger({ level: 'debug', sink: (l) => logs.push(l) });
  void silentLogger;
  const telemetry =
    opts.telemetry ??
    new Telemetry({
      queueCapacity: 10_000,
      push: {
        token: TOKEN,
        parse: (rec) => {
          const r = parseGenericFlow(rec);
          return r instanceof FlowInputError ? { kind: 'bad', error: r } : { kind: 'flow', flow: r };
        },
      },
      ...telemetryOptions,
    });
  const manager = new Manager({
    client,
    log,
    leaderElect: true,
    leaseNamespace: 'microseg-system',
    leaseDurationMs: 3000,
    renewDeadlineMs: 2000,
    retryPeriodMs: 300,
    listen: { host: '127.0.0.1', port: 0 },
    informerBackoffMaxMs: 1000,
    controller: { resyncMs: 300, persistIntervalMs: 200, identityRefreshMs: 0 },
    ...managerOpts,
    telemetry,
  });
  await manager.start();
  const port = manager.port!;
  return {
    manager,
    client,
    port,
    logs,
    push: (records) =>
      fetch(`http://127.0.0.1:${port}/v1/flows`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify(records),
      }),
    stop: () => manager.stop(),
  };
}

/**
 * The options that give a test's controller a Segmentation and a Lease of its own: it reconciles only the
 * Segmentation labelled `microseg.dev/test: <name>` (as applyTeamSegmentation labels it) and leads on the
 * Lease `lease-<name>`, which only the cluster admin may write (it runs as the admin).
 */
export function scopedTo(name: string): {
  segmentationSelector: string;
  asAdmin: true;
  leaseName: string;
} {
  return { segmentationSelector: `microseg.dev/test=${name}`, asAdmin: true, leaseName: `lease-${name}` };
}

/**
 * The options of a test's controller as deployed: under the microseg ServiceAccount, leading on its Lease
 * `microseg-controller`, reconciling only the Segmentation labelled `microseg.dev/test: <name>`.
 */
export function asDeployed(name: string): { segmentationSelector: string; leaseName: string } {
  return { segmentationSelector: `microseg.dev/test=${name}`, leaseName: 'microseg-controller' };
}

/**
 * A controller's `hubble` option for the scripted relay of test/telemetry/fake-relay.ts: a Telemetry that
 * streams from `relay` on 127.0.0.1 (its port read at each start, so it follows a relay restarted),
 * retrying fast, from `checkpoint` when the Lease holds one.
 */
export function relayHubble(relay: { port: number }): (checkpoint: Checkpoint | undefined) => Telemetry {
  return (checkpoint) =>
    new Telemetry({
      queueCapacity: 1000,
      hubble: {
        address: `127.0.0.1:${relay.port}`,
        backoff: { initialMs: 50, maxMs: 200 },
        ...(checkpoint ? { checkpoint } : {}),
      },
    });
}

/** Starts a controller (startController) and waits until it leads: the set-up of a single-replica test. */
export async function startLeader(
  cluster: ClusterHandle,
  opts: Parameters<typeof startController>[1],
): Promise<RunningController> {
  const ctrl = await startController(cluster, opts);
  await eventually('leadership', () => ctrl.manager.controller.leading, 15_000);
  return ctrl;
}

export async function getSeg(cluster: ClusterHandle, name: string): Promise<Segmentation> {
  const r = await cluster.request('GET', `/apis/microseg.dev/v1alpha1/segmentations/${name}`);
  if (r.status !== 200) throw new Error(`GET segmentation ${name}: ${r.status} ${r.text}`);
  return r.json as Segmentation;
}

export function cond(seg: Segmentation, type: string): Condition | undefined {
  return seg.status?.conditions?.find((c) => c.type === type);
}

/** Waits until the Segmentation satisfies `check`; the error shows the last status seen. */
export async function waitSeg(
  cluster: ClusterHandle,
  name: string,
  what: string,
  check: (s: Segmentation) => boolean,
  timeoutMs = 20_000,
): Promise<Segmentation> {
  let last: Segmentation | undefined;
  try {
    return await eventually(
      what,
      async () => {
        last = await getSeg(cluster, name);
        return check(last) ? last : undefined;
      },
      timeoutMs,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; last status: ${JSON.stringify(last?.status, null, 1)}`, {
      cause: err,
    });
  }
}

/** A JSON merge patch (`kubectl patch --type merge`) of the object at `path`; it must succeed. */
export async function mergePatch(cluster: ClusterHandle, path: string, body: unknown): Promise<void> {
  const r = await cluster.request('PATCH', path, { body, contentType: 'application/merge-patch+json' });
  expect(r.status, r.text).toBe(200);
}

/** `kubectl args` (`input` on its stdin) that must succeed: its stdout; else it throws with the stderr. */
export async function kubectlOk(cluster: ClusterHandle, args: string[], input?: string): Promise<string> {
  const r = await cluster.kubectl(args, input === undefined ? {} : { input });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** Applies the Isolation CRD of crds/ alone and waits until it is Established (kubectlOk). */
export async function installIsolationCrd(cluster: ClusterHandle): Promise<void> {
  await kubectlOk(cluster, ['apply', '-f', `${ROOT}crds/microseg.dev_isolations.yaml`]);
  await kubectlOk(cluster, [
    'wait',
    '--for=condition=Established',
    'crd/isolations.microseg.dev',
    '--timeout=30s',
  ]);
}

/** The AdminNetworkPolicy CRD (a minimal stand-in with the real group, names and version). */
export const ANP_CRD = `${ROOT}test/isolate/fixtures/crds/policy.networking.k8s.io_adminnetworkpolicies.yaml`;

/** AdminNetworkPolicy `name` at priority 10 (above any NetworkPolicy): all traffic within `ns` allowed. */
export function anpWithinNamespace(name: string, ns: string): Record<string, unknown> {
  const namespace = { namespaces: { matchLabels: { 'kubernetes.io/metadata.name': ns } } };
  return {
    apiVersion: 'policy.networking.k8s.io/v1alpha1',
    kind: 'AdminNetworkPolicy',
    metadata: { name },
    spec: {
      priority: 10,
      subject: namespace,
      ingress: [{ name: 'same', action: 'Allow', from: [namespace] }],
      egress: [{ name: 'same', action: 'Allow', to: [namespace] }],
    },
  };
}

export async function applyYaml(cluster: ClusterHandle, obj: unknown): Promise<void> {
  const r = await cluster.kubectl(['apply', '-f', '-'], { input: JSON.stringify(obj) });
  expect(r.code, r.stderr).toBe(0);
}

/** A NetworkPolicy's spec, as a test writes it. */
export type PolicySpec = Record<string, unknown>;

/** What a monitoring agent's policy admits: db's metrics port 9187, from anywhere. */
export const DB_MONITORING: PolicySpec = {
  podSelector: { matchLabels: { app: 'db' } },
  ingress: [{ ports: [{ port: 9187 }] }],
  policyTypes: ['Ingress'],
};

/** NetworkPolicy `name` of `namespace`, written by someone else than microseg (none of its labels). */
export async function applyForeignPolicy(
  cluster: ClusterHandle,
  namespace: string,
  name: string,
  spec: PolicySpec,
  labels?: Record<string, string>,
): Promise<void> {
  await applyYaml(cluster, {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name, namespace, ...(labels ? { labels } : {}) },
    spec,
  });
}

/** The resources of API groups a ValidatingAdmissionPolicy matches (their CREATE and UPDATE). */
export interface AdmissionRule {
  apiGroups: string[];
  apiVersions: string[];
  resources: string[];
}

/**
 * Makes the API server refuse, in admission, a CREATE or UPDATE of the resources of `rules` whose object
 * fails one of `validations` (CEL), among the objects `matchResources` selects: ValidatingAdmissionPolicy
 * `name` (failurePolicy Fail) and its binding of the same name, which denies. liftAdmission lifts it.
 */
export async function refuseInAdmission(
  cluster: ClusterHandle,
  name: string,
  refusal: {
    rules: AdmissionRule[];
    validations: { expression: string; message: string }[];
    matchResources: Record<string, unknown>;
  },
): Promise<void> {
  await applyYaml(cluster, {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingAdmissionPolicy',
    metadata: { name },
    spec: {
      failurePolicy: 'Fail',
      matchConstraints: {
        resourceRules: refusal.rules.map((rule) => ({
          apiGroups: rule.apiGroups,
          apiVersions: rule.apiVersions,
          operations: ['CREATE', 'UPDATE'],
          resources: rule.resources,
        })),
      },
      validations: refusal.validations,
    },
  });
  await applyYaml(cluster, {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingAdmissionPolicyBinding',
    metadata: { name },
    spec: { policyName: name, validationActions: ['Deny'], matchResources: refusal.matchResources },
  });
}

/** Lifts the refusal of refuseInAdmission `name`: its binding is deleted (it must have been there). */
export async function liftAdmission(cluster: ClusterHandle, name: string): Promise<void> {
  expect(
    (
      await cluster.request(
        'DELETE',
        `/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings/${name}`,
      )
    ).status,
  ).toBe(200);
}

/** Matches the objects of namespace `namespace` (a binding's matchResources). */
export const inNamespace = (namespace: string) => ({
  namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': namespace } },
});

/**
 * Applies the Segmentation most controller tests run: `name`, labelled `microseg.dev/test: <name>` for
 * the controller's selector, over the namespaces labelled `team: <team>`, in Learn, stable at once, with
 * an audit window of `auditWindow` (short unless given).
 */
export async function applyTeamSegmentation(
  cluster: ClusterHandle,
  name: string,
  team: string,
  auditWindow = '3s',
): Promise<void> {
  await applyYaml(cluster, {
    apiVersion: 'microseg.dev/v1alpha1',
    kind: 'Segmentation',
    metadata: { name, labels: { 'microseg.dev/test': name } },
    spec: {
      namespaceSelector: { matchLabels: { team } },
      mode: 'Learn',
      learning: { stableAfter: '0s' },
      audit: { window: auditWindow, samples: 5 },
    },
  });
}

/**
 * The three-tier story: Segmentation `name` (Learning) learns frontend → cart:8080 and cart → db:5432 of
 * `ns`, proposes its four policies, goes to Audit, and once the audit is clean (frontend → cart pushed
 * again while it waits) is set to Enforce; the caller waits for what it checks next.
 */
export async function learnAuditEnforce(
  cluster: ClusterHandle,
  ctrl: RunningController,
  name: string,
  ns: string,
): Promise<void> {
  const path = `/apis/microseg.dev/v1alpha1/segmentations/${name}`;
  await waitSeg(cluster, name, 'Learning', (s) => s.status?.phase === 'Learning');
  const res = await ctrl.push([
    flow(`${ns}/frontend`, `${ns}/cart`, 8080, { count: 5 }),
    flow(`${ns}/cart`, `${ns}/db`, 5432, { count: 3 }),
  ]);
  expect(res.status).toBe(202);
  await waitSeg(cluster, name, 'proposal', (s) => s.status?.edges === 2 && s.status.policies === 4);
  await mergePatch(cluster, path, { spec: { mode: 'Audit' } });
  await waitSeg(
    cluster,
    name,
    'AuditClean',
    (s) => {
      void ctrl.push([flow(`${ns}/frontend`, `${ns}/cart`, 8080)]);
      return cond(s, 'AuditClean')?.status === 'True';
    },
    30_000,
  );
  await mergePatch(cluster, path, { spec: { mode: 'Enforce' } });
}

export async function listJson<T>(cluster: ClusterHandle, path: string): Promise<T[]> {
  const r = await cluster.request('GET', path);
  if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${r.text}`);
  return (r.json as { items: T[] }).items;
}

export async function events(
  cluster: ClusterHandle,
  name: string,
): Promise<{ reason: string; message: string; type: string; count?: number }[]> {
  const items = await listJson<{
    reason: string;
    message: string;
    type: string;
    count?: number;
    involvedObject: { name: string; kind: string };
  }>(cluster, '/api/v1/namespaces/default/events');
  return items.filter((e) => e.involvedObject.kind === 'Segmentation' && e.involvedObject.name === name);
}

/** A generic-schema flow record between two pods (namespace/pod) now. */
export function flow(
  src: string,
  dst: string,
  port: number,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return { time: new Date().toISOString(), src, dst, port, protocol: 'TCP', ...extra };
}

/**
 * A team's namespace (labelled `team`) with the shop's three pods, frontend, cart and db, at `.1`, `.2`
 * and `.3` of `prefix` (e.g. `10.79.0`).
 */
export async function createShop(
  kc: KubeConfig,
  namespace: string,
  team: string,
  prefix: string,
): Promise<void> {
  await createNamespace(kc, namespace, { team });
  await createAppPods(kc, namespace, [
    ['frontend', `${prefix}.1`],
    ['cart', `${prefix}.2`],
    ['db', `${prefix}.3`],
  ]);
}

/**
 * Pods named after their `app` label, each given its IP through pods/status (there is no kubelet), with
 * the named container ports `ports` if given (e.g. `{ http: 8080 }`, what a Service's targetPort names).
 */
export async function createAppPods(
  kc: KubeConfig,
  namespace: string,
  pods: readonly (readonly [string, string])[],
  ports?: Record<string, number>,
): Promise<void> {
  for (const [name, ip] of pods) {
    await createPod(kc, { namespace, name, labels: { app: name }, ...(ports ? { ports } : {}) });
    await setPodIPs(kc, { namespace, name }, [ip]);
  }
}

/**
 * Service `name` of `namespace` selecting the pods labelled `selector`, its port 80 sent to their 8080;
 * returns the ClusterIP the API server gave it (it must have given one).
 */
export async function createService(
  cluster: ClusterHandle,
  namespace: string,
  name: string,
  selector: Record<string, string>,
): Promise<string> {
  await applyYaml(cluster, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace },
    spec: { selector, ports: [{ port: 80, targetPort: 8080 }] },
  });
  const svc = await cluster.request('GET', `/api/v1/namespaces/${namespace}/services/${name}`);
  const clusterIP = (svc.json as { spec: { clusterIP: string } }).spec.clusterIP;
  expect(clusterIP).toMatch(/^[0-9.]+$/);
  return clusterIP;
}
