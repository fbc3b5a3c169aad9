// The reconciler against an in-memory apiserver: the deny path does not wait for the leak check, a
// reconcile starts from the newest observed object and status, status writes of one Isolation land in
// order, and watch events that change nothing the reconciler acts on do not cause another reconcile.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Isolation } from '../../src/isolate/api.ts';
import {
  ISOLATION_FINALIZER,
  MAX_LISTED_PODS,
  QUARANTINE_LABEL,
  REARM_ANNOTATION,
  RECEIVED_AT_ANNOTATION,
} from '../../src/isolate/api.ts';
import type { KubeRequest } from '../../src/isolate/kube.ts';
import { KubeError, paths } from '../../src/isolate/kube.ts';
import { IsolationMetrics } from '../../src/isolate/metrics.ts';
import { IsolationReconciler, newerVersion } from '../../src/isolate/reconciler.ts';
import { isolateOutcome } from '../../src/isolate/cli.ts';
import type { EngineOptions } from '../../src/verify/types.ts';
import { FakeKube } from './fake-kube.ts';

const NS = 'shop';
const KEY = `${NS}/cut-web-1`;

let stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const s of stops) await s();
  stops = [];
});

/** The in-memory apiserver with shop's pods web-1 and db-1, and a reconciler stopped after the test. */
function setup(o: { now?: () => Date; dnsTtlMs?: number; engine?: EngineOptions; resyncMs?: number } = {}) {
  const kube = new FakeKube();
  kube.put('/api/v1/namespaces', { metadata: { name: NS, labels: {} } });
  for (const name of ['web-1', 'db-1'])
    kube.put(paths.pods(NS), {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: NS, labels: { app: name.split('-')[0]! } },
      spec: { containers: [{ name: 'c', ports: [{ containerPort: 8080 }] }] },
      status: { phase: 'Running', podIP: name === 'web-1' ? '10.0.0.1' : '10.0.0.2' },
    });
  const isolated: { key: string; ms: number }[] = [];
  const reconciler = new IsolationReconciler({
    kube,
    onIsolated: (key, ms) => isolated.push({ key, ms }),
    dns: { namespace: 'kube-system', podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } },
    ...(o.now ? { now: o.now } : {}),
    ...(o.dnsTtlMs !== undefined ? { dnsTtlMs: o.dnsTtlMs } : {}),
    ...(o.engine ? { engine: o.engine } : {}),
    ...(o.resyncMs !== undefined ? { resyncMs: o.resyncMs } : {}),
  });
  stops.push(() => reconciler.stop());
  return { kube, reconciler, isolated };
}

function createIsolation(kube: FakeKube, spec: Record<string, unknown> = {}): Isolation {
  return kube.put(paths.isolations(NS), {
    apiVersion: 'microseg.dev/v1alpha1',
    kind: 'Isolation',
    metadata: {
      name: 'cut-web-1',
      namespace: NS,
      finalizers: [ISOLATION_FINALIZER],
      annotations: { [RECEIVED_AT_ANNOTATION]: new Date().toISOString() },
    },
    spec: { target: { pods: ['web-1'] }, reason: 'shell in container', ...spec },
  }) as unknown as Isolation;
}

const background = (r: { priority?: string }) => r.priority === 'background';
const serverIso = (kube: FakeKube) => kube.get(paths.isolation(NS, 'cut-web-1')) as unknown as Isolation;
const serverPod = (kube: FakeKube, name: string) =>
  kube.get(paths.pod(NS, name)) as unknown as { metadata: { labels: Record<string, string> } };

/** Pod <name> of shop made a host-network pod of node-1 (its address the node's). */
function onHostNetwork(kube: FakeKube, name: string): void {
  const path = paths.pod(NS, name);
  const p = kube.get(path)!;
  kube.objects.set(path, {
    ...p,
    spec: { ...(p.spec as object), hostNetwork: true, nodeName: 'node-1' },
    status: { phase: 'Running', podIP: '192.168.1.5', hostIP: '192.168.1.5' },
  });
}

/** A NetworkPolicy of microseg's that lets db reach web (an isolation adds its exclusion); its path. */
function putMicrosegAllow(kube: FakeKube): string {
  kube.put(paths.networkPolicies(NS), {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: 'web-allow', namespace: NS, labels: { 'app.kubernetes.io/managed-by': 'microseg' } },
    spec: {
      podSelector: { matchLabels: { app: 'web' } },
      policyTypes: ['Ingress'],
      ingress: [{ from: [{ podSelector: { matchLabels: { app: 'db' } } }] }],
    },
  });
  return paths.networkPolicy(NS, 'web-allow');
}

/** The Isolation cut-web-1 being deleted (a responder released it): the next reconcile releases. */
function markDeleted(kube: FakeKube, r: IsolationReconciler): void {
  const cur = serverIso(kube);
  kube.objects.set(paths.isolation(NS, 'cut-web-1'), {
    ...(cur as unknown as { metadata: Record<string, unknown> }),
    metadata: { ...cur.metadata, deletionTimestamp: '2026-11-28T10:00:00Z' },
  });
  r.forget(NS, 'cut-web-1');
}

/** Someone else's policies take the quarantine policy's name and the salted one it falls back to. */
function takeQuarantineNames(kube: FakeKube, salted: string): void {
  for (const name of ['microseg-quarantine-cut-web-1', salted])
    kube.objects.set(paths.networkPolicy(NS, name), {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name, namespace: NS, resourceVersion: '1' },
      spec: { podSelector: { matchLabels: { app: 'nothing' } }, policyTypes: ['Ingress'] },
    });
}

const UNAVAILABLE = 'the server is currently unable to handle the request';
const unavailable = () => new KubeError(503, 'ServiceUnavailable', UNAVAILABLE);

/** Makes the leak check's first read (the Namespace list) fail with a 503 while `now` stays true. */
function refuseNamespaceReads(kube: FakeKube): { now: boolean } {
  const refusing = { now: true };
  const request = kube.request.bind(kube);
  kube.request = async (req: KubeRequest) => {
    if (refusing.now && req.method === 'GET' && req.path === paths.namespaces()) throw unavailable();
    return request(req);
  };
  return refusing;
}

/** The apiserver serves the admin-tier policy API (policy.networking.k8s.io/v1alpha1). */
function servesAdminPolicies(kube: FakeKube): void {
  kube.apiGroups = [{ name: 'policy.networking.k8s.io', versions: [{ version: 'v1alpha1' }] }];
}

/** Node node-b, labelled role=worker, at 192.168.0.11. */
function putWorkerNode(kube: FakeKube): void {
  kube.put(paths.nodes(), {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: 'node-b', labels: { role: 'worker' } },
    status: { addresses: [{ type: 'InternalIP', address: '192.168.0.11' }] },
  });
}

/** AdminNetworkPolicy allow-fqdn: an egress Allow to domain names, which the leak check cannot read. */
function putFqdnAdminPolicy(kube: FakeKube): void {
  kube.put(paths.adminNetworkPolicies(), {
    apiVersion: 'policy.networking.k8s.io/v1alpha1',
    kind: 'AdminNetworkPolicy',
    metadata: { name: 'allow-fqdn' },
    spec: {
      priority: 50,
      subject: { namespaces: {} },
      egress: [{ name: 'saas', action: 'Allow', to: [{ domainNames: ['*.example.com'] }] }],
    },
  });
}

/** Re-arms cut-web-1 (its re-arm annotation set 50 ms before `now`) and has `r` observe it. */
async function rearm(kube: FakeKube, r: IsolationReconciler, now: number): Promise<void> {
  const rearmed = await kube.request<Isolation>({
    method: 'PATCH',
    path: paths.isolation(NS, 'cut-web-1'),
    body: { metadata: { annotations: { [REARM_ANNOTATION]: new Date(now - 50).toISOString() } } },
  });
  r.observe(rearmed);
}

/** A responder edits the target pods of cut-web-1 (the schema lets any string through). */
async function editTargetPods(kube: FakeKube, pods: string[]): Promise<void> {
  await kube.request({
    method: 'PATCH',
    path: paths.isolation(NS, 'cut-web-1'),
    body: { spec: { target: { pods } } },
  });
}

/** Isolates web-1 for an hour, then moves the clock (`pass`) past the expiry and reconciles: Released. */
async function isolateForAnHourThenExpire(
  kube: FakeKube,
  r: IsolationReconciler,
  pass: (ms: number) => void,
): Promise<void> {
  r.observe(createIsolation(kube, { duration: '1h' }));
  await r.reconcile(KEY);
  await r.checks.idle();
  pass(3_600_000);
  await r.reconcile(KEY);
  await r.checks.idle();
}

/**
 * A second incident, shop/cut-db-1, observed and its reconcile started and stuck reading its pod (background
 * work waits while it is in flight): the gate that holds it, and that reconcile.
 */
async function stuckSecondIncident(kube: FakeKube, r: IsolationReconciler) {
  const other = kube.put(paths.isolations(NS), {
    apiVersion: 'microseg.dev/v1alpha1',
    kind: 'Isolation',
    metadata: { name: 'cut-db-1', namespace: NS, finalizers: [ISOLATION_FINALIZER] },
    spec: { target: { pods: ['db-1'] }, reason: 'second incident' },
  }) as unknown as Isolation;
  r.observe(other);
  const stuck = kube.gate((q) => q.path === paths.pod(NS, 'db-1') && q.method === 'GET');
  const second = r.reconcile(`${NS}/cut-db-1`);
  await stuck.reached;
  return { stuck, second };
}

/** Lets every queued leak check and status write finish, then stops the check queue. */
async function settle(r: IsolationReconciler): Promise<void> {
  await r.checks.idle();
  await r.stop();
}

describe('IsolationReconciler: the deny comes first', () => {
  it('labels the pod behind the deny policy while the leak check and every background write are held', async () => {
    const { kube, reconciler, isolated } = setup();
    const held = kube.gate(background);
    reconciler.observe(createIsolation(kube));
    const res = await reconciler.reconcile(KEY);
    await held.reached;

    expect(serverPod(kube, 'web-1').metadata.labels[QUARANTINE_LABEL]).toBe('cut-web-1');
    expect(kube.get(paths.networkPolicy(NS, 'microseg-quarantine-cut-web-1'))).toBeDefined();
    expect(isolated.map((i) => i.key)).toEqual([KEY]);
    expect(res.requeueAfterMs).toBe(30_000);
    // Nothing of the check or its status is on the server yet, and the Isolation was never read back.
    expect(serverIso(kube).status).toBeUndefined();
    expect(kube.log.filter((l) => l.startsWith('GET /apis/microseg.dev'))).toEqual([]);
    const deny = kube.log.indexOf(`POST ${paths.networkPolicies(NS)}`);
    const label = kube.log.indexOf(`PATCH ${paths.pod(NS, 'web-1')}`);
    expect(deny).toBeGreaterThanOrEqual(0);
    expect(label).toBeGreaterThan(deny);

    held.release();
    await settle(reconciler);
    const st = serverIso(kube).status!;
    expect(st.phase).toBe('Isolated');
    expect(st.isolatedPods).toEqual(['web-1']);
    expect(st.objects).toEqual([`NetworkPolicy/${NS}/microseg-quarantine-cut-web-1`]);
    expect(st.proof?.leaks).toBe(0);
    expect(st.proof?.probes).toBeGreaterThan(0);
    expect(st.timeline?.map((t) => t.action)).toEqual(['MechanismChosen', 'PodIsolated', 'Isolated']);
    expect(
      kube.events.map((e) => `${(e.involvedObject as { kind: string }).kind}/${e.reason as string}`),
    ).toEqual(['Pod/Isolated', 'Isolation/Isolated']);
  });

  it('a target that names no pod is a Warning Event naming it, once, and nothing is labelled', async () => {
    const { kube, reconciler } = setup();
    reconciler.observe(createIsolation(kube, { target: { pods: ['web-9'] } }));
    await reconciler.reconcile(KEY);
    await reconciler.checks.idle();
    await reconciler.reconcile(KEY);
    await settle(reconciler);
    await new Promise((r) => setTimeout(r, 20));
    const st = serverIso(kube).status!;
    expect(st.phase).toBe('Pending');
    expect(st.message).toBe('no pod to isolate: pod web-9 not found');
    expect(kube.events.map((e) => [e.type, e.reason, e.message])).toEqual([
      ['Warning', 'NoPodToIsolate', 'no pod to isolate: pod web-9 not found'],
    ]);
    for (const p of ['web-1', 'db-1'])
      expect(serverPod(kube, p).metadata.labels[QUARANTINE_LABEL]).toBe(undefined);
  });

  it('a host-network pod is not reported isolated: no policy applies to it, so it is left unlabelled and said so', async () => {
    const { kube, reconciler } = setup();
    onHostNetwork(kube, 'web-1');
    reconciler.observe(createIsolation(kube));
    await reconciler.reconcile(KEY);
    await settle(reconciler);
    await new Promise((r) => setTimeout(r, 20));
    const message =
      'no pod to isolate: pod web-1 uses the host network: no NetworkPolicy or admin-tier policy applies to it, so it cannot be isolated';
    const st = serverIso(kube).status!;
    expect(st.phase).toBe('Pending');
    expect(st.message).toBe(message);
    expect(st.podCount).toBe(0);
    expect(serverPod(kube, 'web-1').metadata.labels[QUARANTINE_LABEL]).toBe(undefined);
    expect(kube.events.map((e) => [e.type, e.reason, e.message])).toEqual([
      ['Warning', 'NoPodToIsolate', message],
    ]);
  });

  it('a workload of more pods than the status lists keeps every pod it isolated on the next reconcile', async () => {
    const { kube, reconciler } = setup();
    const n = MAX_LISTED_PODS + 5;
    for (let i = 0; i < n; i++)
      kube.put(paths.pods(NS), {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: `agent-${String(i).padStart(3, '0')}`, namespace: NS, labels: { app: 'agent' } },
        spec: { containers: [{ name: 'c' }] },
        status: { phase: 'Running', podIP: `10.1.${Math.floor(i / 200)}.${(i % 200) + 1}` },
      });
    const wl = paths.workload(NS, 'Deployment', 'agent');
    kube.put(wl.slice(0, wl.lastIndexOf('/')), {
      metadata: { name: 'agent', namespace: NS },
      spec: { selector: { matchLabels: { app: 'agent' } } },
    });
    reconciler.observe(
      createIsolation(kube, { target: { workload: { kind: 'Deployment', name: 'agent' } } }),
    );
    await reconciler.reconcile(KEY);
    await reconciler.checks.idle();
    await reconciler.reconcile(KEY);
    await settle(reconciler);
    const st = serverIso(kube).status!;
    expect(st.isolatedPods).toHaveLength(MAX_LISTED_PODS);
    expect(st.podCount).toBe(n);
    expect(st.message).toBe(`${n} pod(s) isolated with NetworkPolicy`);
  });

  it('a pod another Isolation holds is named in the phase message and the Warning Event', async () => {
    const { kube, reconciler } = setup();
    const path = paths.pod(NS, 'web-1');
    await kube.request({
      method: 'PATCH',
      path,
      body: { metadata: { labels: { [QUARANTINE_LABEL]: 'falco-web-1-0123456789' } } },
    });
    reconciler.observe(createIsolation(kube));
    await reconciler.reconcile(KEY);
    await settle(reconciler);
    await new Promise((r) => setTimeout(r, 20));
    const message = 'no pod to isolate: pod web-1 is already quarantined by Isolation falco-web-1-0123456789';
    const st = serverIso(kube).status!;
    expect(st.phase).toBe('Pending');
    expect(st.message).toBe(message);
    expect(kube.events.map((e) => [e.type, e.reason, e.message])).toEqual([
      ['Warning', 'NoPodToIsolate', message],
    ]);
    expect(serverPod(kube, 'web-1').metadata.labels[QUARANTINE_LABEL]).toBe('falco-web-1-0123456789');
  });

  it('a reconcile the apiserver refuses is a Warning Event naming the error, once, and nothing is labelled', async () => {
    const { kube, reconciler } = setup();
    const request = kube.request.bind(kube);
    kube.request = async (req: KubeRequest) => {
      if (req.method === 'POST' && req.path === paths.networkPolicies(NS))
        throw new KubeError(
          403,
          'Forbidden',
          'networkpolicies.networking.k8s.io is forbidden: User "system:serviceaccount:microseg-system:microseg-controller" cannot create resource "networkpolicies"',
        );
      return request(req);
    };
    reconciler.observe(createIsolation(kube));
    await expect(reconciler.reconcile(KEY)).rejects.toThrow(/forbidden/);
    await expect(reconciler.reconcile(KEY)).rejects.toThrow(/forbidden/);
    await settle(reconciler);
    await new Promise((r) => setTimeout(r, 20));
    expect(serverPod(kube, 'web-1').metadata.labels[QUARANTINE_LABEL]).toBe(undefined);
    expect(kube.events.map((e) => [e.type, e.reason, e.message])).toEqual([
      [
        'Warning',
        'ReconcileFailed',
        'networkpolicies.networking.k8s.io is forbidden: User "system:serviceaccount:microseg-system:microseg-controller" cannot create resource "networkpolicies" (retrying)',
      ],
    ]);
  });

  it('release takes the exclusion out of a microseg allow policy that changed meanwhile, not leaving it behind', async () => {
    const { kube, reconciler } = setup();
    const allow = putMicrosegAllow(kube);
    const before = kube.get(allow)!.spec;
    reconciler.observe(createIsolation(kube));
    await reconciler.reconcile(KEY);
    await reconciler.checks.idle();
    expect(JSON.stringify(kube.get(allow)!.spec)).toContain('DoesNotExist');
    // The Segmentation re-applies the policy (keeping the exclusion and its marker) just as the release
    // reads it: the release's guarded patch meets a newer resourceVersion.
    let bumped = false;
    const request = kube.request.bind(kube);
    kube.request = async (req: KubeRequest) => {
      if (req.method === 'PATCH' && req.path === allow && !bumped) {
        bumped = true;
        await request({ method: 'PATCH', path: allow, body: { metadata: { labels: { rev: '2' } } } });
      }
      return request(req);
    };
    markDeleted(kube, reconciler);
    await reconciler.reconcile(KEY);
    await settle(reconciler);
    expect(bumped).toBe(true);
    const after = kube.get(allow)!;
    expect(after.spec).toEqual(before);
    expect(
      (after.metadata.annotations as Record<string, string> | undefined)?.[
        'microseg.dev/quarantine-exclusion'
      ],
    ).toBe(undefined);
  });

  it('release does not end with the exclusion left in place when the policy keeps changing under it', async () => {
    const { kube, reconciler } = setup();
    const allow = putMicrosegAllow(kube);
    reconciler.observe(createIsolation(kube));
    await reconciler.reconcile(KEY);
    await reconciler.checks.idle();
    expect(JSON.stringify(kube.get(allow)!.spec)).toContain('DoesNotExist');
    // Every patch of the allow policy meets a newer resourceVersion.
    const request = kube.request.bind(kube);
    kube.request = async (req: KubeRequest) => {
      if (req.method === 'PATCH' && req.path === allow) throw new KubeError(409, 'Conflict', 'modified');
      return request(req);
    };
    markDeleted(kube, reconciler);
    // The release is not done (it is retried, the finalizer kept): the exclusion is still there.
    await expect(reconciler.reconcile(KEY)).rejects.toThrow(
      'NetworkPolicy shop/web-allow: gave up taking the quarantine exclusion out after repeated conflicts',
    );
    await settle(reconciler);
    expect(JSON.stringify(kube.get(allow)!.spec)).toContain('DoesNotExist');
    expect(serverIso(kube).metadata.finalizers).toContain(ISOLATION_FINALIZER);
  });

  // On Cilium an ipBlock never matches a pod IP: the check ran on the engine's default semantics, so an
  // ipBlock holding only db-1's address was a leak of web-1's isolation that the plugin never lets through.
  it.each([
    [{ ipBlockMatchesPods: false }, 'Isolated', 0],
    [{ ipBlockMatchesPods: true }, 'Leaking', 1],
  ])('checks for leaks with the semantics it is given (%j)', async (engine, phase, leaks) => {
    const { kube, reconciler } = setup({ engine });
    kube.put(paths.networkPolicies(NS), {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'web-from-db-ip', namespace: NS },
      spec: {
        podSelector: { matchLabels: { app: 'web' } },
        policyTypes: ['Ingress'],
        ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.2/32' } }], ports: [{ port: 8080 }] }],
      },
    });
    reconciler.observe(createIsolation(kube));
    await reconciler.reconcile(KEY);
    await settle(reconciler);
    const st = serverIso(kube).status!;
    expect(st.phase).toBe(phase);
    expect(st.proof?.leaks).toBe(leaks);
    expect(st.leaks?.map((l) => l.policy) ?? []).toEqual(leaks ? ['shop/web-from-db-ip'] : []);
  });

  it('a Leaking phase message still says which targeted pod uses the host network', async () => {
    const { kube, reconciler } = setup();
    onHostNetwork(kube, 'web-1');
    // A policy not microseg's admits any traffic to db-1: the isolation of db-1 leaks.
    kube.put(paths.networkPolicies(NS), {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'db-open', namespace: NS },
      spec: { podSelector: { matchLabels: { app: 'db' } }, policyTypes: ['Ingress'], ingress: [{}] },
    });
    reconciler.observe(createIsolation(kube, { target: { pods: ['web-1', 'db-1'] } }));
    await reconciler.reconcile(KEY);
    await settle(reconciler);
    const st = serverIso(kube).status!;
    expect(st.phase).toBe('Leaking');
    expect(st.isolatedPods).toEqual(['db-1']);
    expect(st.message).toContain(
      'pod web-1 uses the host network: no NetworkPolicy or admin-tier policy applies to it, so it cannot be isolated',
    );
  });

  it('pods another Isolation holds are named in the phase message up to three, however many', async () => {
    const { kube, reconciler } = setup();
    for (let i = 0; i < 6; i++)
      kube.put(paths.pods(NS), {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: `agent-${i}`,
          namespace: NS,
          labels: { app: 'agent', [QUARANTINE_LABEL]: 'cut-agents' },
        },
        spec: { containers: [{ name: 'c' }] },
        status: { phase: 'Running', podIP: `10.1.0.${i + 1}` },
      });
    reconciler.observe(createIsolation(kube, { target: { podSelector: { matchLabels: { app: 'agent' } } } }));
    await reconciler.reconcile(KEY);
    await settle(reconciler);
    expect(serverIso(kube).status!.message).toBe(
      'no pod to isolate: pod agent-0 is already quarantined by Isolation cut-agents; pod agent-1 is already quarantined by Isolation cut-agents; pod agent-2 is already quarantined by Isolation cut-agents; and 3 more pods are already quarantined by other Isolations',
    );
  });

  it('a pod selector that matches no pod is a Warning Event too', async () => {
    const { kube, reconciler } = setup();
    reconciler.observe(
      createIsolation(kube, { target: { podSelector: { matchLabels: { app: 'nothing' } } } }),
    );
    await reconciler.reconcile(KEY);
    await settle(reconciler);
    await new Promise((r) => setTimeout(r, 20));
    expect(serverIso(kube).status!.phase).toBe('Pending');
    expect(kube.events.map((e) => [e.type, e.reason, e.message])).toEqual([
      ['Warning', 'NoPodToIsolate', 'no pod to isolate'],
    ]);
  });

  it('leak checks wait while another reconcile is in flight, so the apiserver serves its deny first', async () => {
    const { kube, reconciler } = setup();
    reconciler.observe(createIsolation(kube));
    // The second incident's reconcile is stuck reading its pod.
    const { stuck, second } = await stuckSecondIncident(kube, reconciler);
    await reconciler.reconcile(KEY);
    await new Promise((r) => setTimeout(r, 30));
    // The first incident is isolated, but its leak check has not listed the namespace yet.
    expect(serverPod(kube, 'web-1').metadata.labels[QUARANTINE_LABEL]).toBe('cut-web-1');
    expect(kube.log).not.toContain(`GET ${paths.pods(NS)}`);
    // Held: the leak check and the pod's Event.
    expect(reconciler.background.stats()).toEqual({ foreground: 1, waiting: 2, running: 0 });
    stuck.release();
    await second;
    await settle(reconciler);
    expect(kube.log).toContain(`GET ${paths.pods(NS)}`);
    expect(serverIso(kube).status?.phase).toBe('Isolated');
  });

  it('reads the pod from the watch cache; a stale copy costs a conflict and a fresh read, never a lost label', async () => {
    const { kube, reconciler } = setup();
    const path = paths.pod(NS, 'web-1');
    kube.cached.set(path, kube.get(path)!);
    // Someone relabels the pod after the cache's copy was taken.
    await kube.request({ method: 'PATCH', path, body: { metadata: { labels: { team: 'blue' } } } });
    reconciler.observe(createIsolation(kube));
    await reconciler.reconcile(KEY);
    expect(kube.log.filter((l) => l.includes(path))).toEqual([
      `PATCH ${path}`, // the relabel above
      `GET ${path} (cache)`,
      `PATCH ${path}`, // guarded by the stale resourceVersion: 409
      `GET ${path}`,
      `PATCH ${path}`,
    ]);
    const pod = kube.get(path) as unknown as { metadata: { labels: Record<string, string> } };
    expect(pod.metadata.labels).toEqual({ app: 'web', team: 'blue', [QUARANTINE_LABEL]: 'cut-web-1' });
    await settle(reconciler);
  });

  it('a pod the watch cache shows quarantined by another Isolation is read fresh before it is left alone', async () => {
    const { kube, reconciler } = setup();
    const path = paths.pod(NS, 'web-1');
    const stale = kube.get(path)!;
    stale.metadata.labels = { ...stale.metadata.labels, [QUARANTINE_LABEL]: 'older-incident' };
    kube.cached.set(path, stale); // the older incident was released a moment ago
    reconciler.observe(createIsolation(kube));
    await reconciler.reconcile(KEY);
    expect(serverPod(kube, 'web-1').metadata.labels[QUARANTINE_LABEL]).toBe('cut-web-1');
    await settle(reconciler);
    expect(serverIso(kube).status?.timeline?.map((t) => t.action)).not.toContain('AlreadyQuarantined');
  });

  it('a pod missing from the watch cache is read fresh before it counts as gone', async () => {
    const { kube, reconciler } = setup();
    const path = paths.pod(NS, 'web-1');
    const real = kube.get(path)!;
    kube.objects.delete(path);
    const gate = kube.gate((r) => r.path === path && r.query?.resourceVersion !== '0');
    reconciler.observe(createIsolation(kube));
    const done = reconciler.reconcile(KEY);
    await gate.reached; // the cache said 404; the fresh read is under way, and the pod exists by now
    kube.objects.set(path, real);
    gate.release();
    await done;
    expect(serverPod(kube, 'web-1').metadata.labels[QUARANTINE_LABEL]).toBe('cut-web-1');
    await settle(reconciler);
  });

  it('a reconcile while the check still waits starts from the decided status: one isolatedAt, one latency sample', async () => {
    const { kube, reconciler, isolated } = setup();
    const held = kube.gate(background);
    reconciler.observe(createIsolation(kube));
    await reconciler.reconcile(KEY);
    await reconciler.reconcile(KEY);
    expect(isolated).toHaveLength(1);
    // The second pass found the deny policy recorded and the pod labelled: no new writes.
    const writes = kube.log.filter((l) => !l.startsWith('GET'));
    expect(writes.filter((l) => l.startsWith('POST /apis/networking'))).toHaveLength(1);
    expect(writes.filter((l) => l.startsWith('PATCH /api/v1'))).toHaveLength(1);
    held.release();
    await settle(reconciler);
    const st = serverIso(kube).status!;
    expect(st.phase).toBe('Isolated');
    expect(st.timeline?.filter((t) => t.action === 'PodIsolated')).toHaveLength(1);
  });

  it('status writes of one Isolation land in order: a release at expiry is not overwritten by an older check', async () => {
    let now = Date.parse('2026-11-28T10:00:00Z');
    const { kube, reconciler } = setup({ now: () => new Date(now) });
    reconciler.observe(createIsolation(kube, { duration: '1m' }));
    // Hold the check's status write (not the lists before it, nor any later status write).
    let statusWrites = 0;
    const held = kube.gate((r) => r.method === 'PATCH' && r.path.endsWith('/status') && statusWrites++ === 0);
    await reconciler.reconcile(KEY);
    await held.reached;
    now += 61_000;
    const released = reconciler.reconcile(KEY);
    await new Promise((r) => setTimeout(r, 20));
    held.release();
    await released;
    await settle(reconciler);
    const st = serverIso(kube).status!;
    expect(st.phase).toBe('Released');
    expect(st.message).toBe('released at expiry (2026-11-28T10:01:00.000Z)');
    expect(serverPod(kube, 'web-1').metadata.labels[QUARANTINE_LABEL]).toBeUndefined();
    expect(kube.get(paths.networkPolicy(NS, 'microseg-quarantine-cut-web-1'))).toBeUndefined();
  });

  it('a Released Isolation re-armed after its release isolates again; a re-arm from before the release does not', async () => {
    let now = Date.parse('2026-11-28T10:00:00Z');
    const { kube, reconciler, isolated } = setup({ now: () => new Date(now) });
    reconciler.observe(createIsolation(kube, { duration: '1m' }));
    await reconciler.reconcile(KEY);
    await reconciler.checks.idle();
    now += 61_000;
    await reconciler.reconcile(KEY);
    expect(serverIso(kube).status?.phase).toBe('Released');
    expect(serverPod(kube, 'web-1').metadata.labels[QUARANTINE_LABEL]).toBeUndefined();

    const rearm = async (at: string) => {
      const cur = serverIso(kube);
      const res = await kube.request<Isolation>({
        method: 'PATCH',
        path: paths.isolation(NS, 'cut-web-1'),
        body: { metadata: { annotations: { [REARM_ANNOTATION]: at, [RECEIVED_AT_ANNOTATION]: at } } },
      });
      expect(res.metadata.generation).toBe(cur.metadata.generation); // annotations do not bump it
      return reconciler.observe(res);
    };
    // Older than the release: a leftover, not a new alert.
    expect(await rearm('2026-11-28T10:00:30.000Z')).toBe(true);
    await reconciler.reconcile(KEY);
    expect(serverIso(kube).status?.phase).toBe('Released');
    expect(isolated).toHaveLength(1);

    now += 60_000;
    expect(await rearm(new Date(now - 50).toISOString())).toBe(true);
    const res = await reconciler.reconcile(KEY);
    expect(serverPod(kube, 'web-1').metadata.labels[QUARANTINE_LABEL]).toBe('cut-web-1');
    expect(isolated.map((i) => i.ms)).toEqual([expect.any(Number), 50]);
    expect(res.requeueAfterMs).toBe(30_000);
    await settle(reconciler);
    const st = serverIso(kube).status!;
    expect(st.phase).toBe('Isolated');
    expect(st.releasedAt).toBeUndefined();
    expect(st.isolatedAt).toBe(new Date(now).toISOString());
    expect(st.expiresAt).toBe(new Date(now + 60_000).toISOString());
    expect(st.timeline?.map((t) => t.action)).toEqual([
      'MechanismChosen',
      'PodIsolated',
      'Isolated',
      'Released',
      'Rearmed',
      'MechanismChosen',
      'PodIsolated',
      'Isolated',
    ]);
  });

  it('drops Events beyond the pending limit instead of queueing without bound', async () => {
    const kube = new FakeKube();
    const held = kube.gate(background);
    const reconciler = new IsolationReconciler({ kube, eventConcurrency: 1, maxPendingEvents: 2 });
    stops.push(() => reconciler.stop());
    // An invalid spec emits one Warning Event per reconcile that changes the message.
    for (let i = 0; i < 4; i++) {
      const iso = kube.put(paths.isolations(NS), {
        apiVersion: 'microseg.dev/v1alpha1',
        kind: 'Isolation',
        metadata: { name: `bad-${i}`, namespace: NS },
        spec: { target: { pods: [] }, reason: 'x' },
      }) as unknown as Isolation;
      reconciler.observe(iso);
      await reconciler.reconcile(`${NS}/bad-${i}`);
    }
    held.release();
    await settle(reconciler);
    await new Promise((r) => setTimeout(r, 20));
    expect(kube.events.map((e) => e.reason)).toEqual(['InvalidSpec', 'InvalidSpec']);
  });
});

describe('IsolationReconciler: lists shared by leak checks', () => {
  it('keeps none past its time, however many namespaces were checked', async () => {
    const kube = new FakeKube();
    const r = new IsolationReconciler({ kube, listCacheMs: 50 });
    stops.push(() => r.stop());
    // The private cache, read as the leak checks of Isolations in 20 namespaces read it.
    const lists = r as unknown as {
      cachedList(path: string): Promise<unknown[]>;
      listCache: Map<string, unknown>;
    };
    for (let i = 0; i < 20; i++) await lists.cachedList(paths.pods(`preview-${i}`));
    // Shared while fresh.
    expect(lists.listCache.size).toBe(20);
    await new Promise((resolve) => setTimeout(resolve, 100));
    // Those namespaces deleted since: their lists are gone with the next read of any list.
    await lists.cachedList(paths.pods('shop'));
    expect([...lists.listCache.keys()]).toEqual([paths.pods('shop')]);
  });
});

describe('IsolationReconciler.observe', () => {
  const base = (over: Partial<Isolation['metadata']> = {}): Isolation => ({
    apiVersion: 'microseg.dev/v1alpha1',
    kind: 'Isolation',
    metadata: { name: 'a', namespace: NS, uid: 'u1', resourceVersion: '10', generation: 1, ...over },
    spec: { target: { pods: ['web-1'] }, reason: 'x' },
  });

  it('reports only what needs a reconcile', () => {
    const r = new IsolationReconciler({ kube: new FakeKube() });
    expect(r.observe(base())).toBe(true);
    expect(r.observe(base())).toBe(false); // the watch and the create response deliver the same object
    expect(r.observe(base({ resourceVersion: '9' }))).toBe(false); // older
    expect(r.observe({ ...base({ resourceVersion: '11' }), status: { phase: 'Isolated' } })).toBe(false);
    expect(r.observe(base({ resourceVersion: '12', generation: 2 }))).toBe(true); // spec changed
    expect(r.observe(base({ resourceVersion: '13', generation: 2, finalizers: ['f'] }))).toBe(true);
    expect(
      r.observe(base({ resourceVersion: '14', generation: 2, finalizers: ['f'], deletionTimestamp: 'now' })),
    ).toBe(true);
    expect(
      r.observe(base({ resourceVersion: '15', generation: 2, finalizers: [], deletionTimestamp: 'now' })),
    ).toBe(true);
    expect(r.observe(base({ resourceVersion: '3', uid: 'u2' }))).toBe(true); // deleted and created again
  });

  it('after a relist, queues what is new or changed and what disappeared', () => {
    const r = new IsolationReconciler({ kube: new FakeKube() });
    r.observe(base({ name: 'a' }));
    r.observe(base({ name: 'b', uid: 'ub' }));
    const keys = r.observeAll([
      base({ name: 'a', resourceVersion: '20' }),
      base({ name: 'c', uid: 'uc', resourceVersion: '21' }),
    ]);
    expect(keys).toEqual([`${NS}/c`, `${NS}/b`]);
  });
});

describe("IsolationReconciler: the DNS exception follows the kube-dns Service's targetPort", () => {
  const DNS_SVC = paths.service('kube-system', 'kube-dns');
  /** kube-system/kube-dns on port 53 to `targetPort`, and a CoreDNS pod naming 5353 `dns`/`dns-tcp`. */
  function dnsAt(kube: FakeKube, targetPort: number | string) {
    kube.put(paths.services('kube-system'), {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'kube-dns', namespace: 'kube-system' },
      spec: {
        selector: { 'k8s-app': 'kube-dns' },
        clusterIP: '10.96.0.10',
        ports: [
          { name: 'dns', port: 53, protocol: 'UDP', targetPort },
          {
            name: 'dns-tcp',
            port: 53,
            protocol: 'TCP',
            targetPort: targetPort === 'dns' ? 'dns-tcp' : targetPort,
          },
        ],
      },
    });
    kube.put(paths.pods('kube-system'), {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'coredns-1', namespace: 'kube-system', labels: { 'k8s-app': 'kube-dns' } },
      spec: {
        containers: [
          {
            name: 'coredns',
            ports: [
              { name: 'dns', containerPort: 5353, protocol: 'UDP' },
              { name: 'dns-tcp', containerPort: 5353, protocol: 'TCP' },
            ],
          },
        ],
      },
      status: { phase: 'Running', podIP: '10.0.9.1' },
    });
  }
  const dnsRulePortsOn = (kube: FakeKube) =>
    (
      kube.get(paths.networkPolicy(NS, 'microseg-quarantine-cut-web-1')) as unknown as {
        spec: { egress: { ports: unknown }[] };
      }
    ).spec.egress[0]!.ports;
  const both = (port: number) => [
    { protocol: 'UDP', port },
    { protocol: 'TCP', port },
  ];

  it('opens the port the CoreDNS pods resolve a named targetPort to (5353), not 53', async () => {
    const { kube, reconciler } = setup();
    dnsAt(kube, 'dns');
    reconciler.observe(createIsolation(kube));
    await reconciler.reconcile(KEY);
    expect(dnsRulePortsOn(kube)).toEqual(both(5353));
    // Read from the watch cache, the pods by the Service's selector.
    expect(kube.log).toContain(`GET ${DNS_SVC} (cache)`);
    expect(kube.log).toContain(`GET ${paths.pods('kube-system')} (cache)`);
    await settle(reconciler);
    expect(serverIso(kube).status?.phase).toBe('Isolated');
  });

  it('a DNS Service that moves is followed; the read after the first never holds up a deny', async () => {
    const { kube, reconciler } = setup({ dnsTtlMs: 0 });
    dnsAt(kube, 5353);
    reconciler.observe(createIsolation(kube));
    await reconciler.reconcile(KEY);
    expect(dnsRulePortsOn(kube)).toEqual(both(5353));
    dnsAt(kube, 1053);
    // This reconcile takes the ports read before; the new read runs beside it.
    await reconciler.reconcile(KEY);
    expect(dnsRulePortsOn(kube)).toEqual(both(5353));
    await new Promise((r) => setTimeout(r, 0));
    await reconciler.reconcile(KEY);
    expect(dnsRulePortsOn(kube)).toEqual(both(1053));
    await settle(reconciler);
  });

  it("isolates a custom resource's pods without reading its object (RBAC would refuse it)", async () => {
    const { kube, reconciler } = setup();
    kube.put(paths.pods(NS), {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'pg-1',
        namespace: NS,
        labels: { 'cnpg.io/cluster': 'pg' },
        ownerReferences: [
          {
            apiVersion: 'postgresql.cnpg.io/v1',
            kind: 'Cluster',
            name: 'pg',
            uid: 'uid-pg',
            controller: true,
          },
        ],
      },
      spec: { containers: [{ name: 'c' }] },
      status: { phase: 'Running', podIP: '10.0.0.3' },
    });
    const request = kube.request.bind(kube);
    const refused: string[] = [];
    kube.request = async <T>(req: KubeRequest): Promise<T> => {
      // The controller may read pods, ReplicaSets and Jobs, not an operator's resources.
      if (/\/clusters(\/|$)/.test(req.path)) {
        refused.push(req.path);
        throw new KubeError(403, 'Forbidden', 'clusters is forbidden');
      }
      return request<T>(req);
    };
    reconciler.observe(
      createIsolation(kube, {
        target: {
          workload: { kind: 'Cluster', apiGroup: 'postgresql.cnpg.io', name: 'pg', includeFuture: true },
        },
      }),
    );
    await reconciler.reconcile(KEY);
    expect(refused).toEqual([]);
    expect(serverPod(kube, 'pg-1').metadata.labels[QUARANTINE_LABEL]).toBe('cut-web-1');
    expect(serverPod(kube, 'web-1').metadata.labels[QUARANTINE_LABEL]).toBeUndefined();
    await settle(reconciler);
    expect(serverIso(kube).status?.isolatedPods).toEqual(['pg-1']);
  });

  it('a failed read leaves 53 and isolates all the same; the next reconcile reads again', async () => {
    const { kube, reconciler } = setup();
    dnsAt(kube, 5353);
    const request = kube.request.bind(kube);
    let forbidden = true;
    kube.request = async <T>(req: KubeRequest): Promise<T> => {
      if (forbidden && req.path === DNS_SVC) throw new KubeError(403, 'Forbidden', 'services is forbidden');
      return request<T>(req);
    };
    reconciler.observe(createIsolation(kube));
    await reconciler.reconcile(KEY);
    expect(serverPod(kube, 'web-1').metadata.labels[QUARANTINE_LABEL]).toBe('cut-web-1');
    expect(dnsRulePortsOn(kube)).toEqual(both(53));
    forbidden = false;
    await reconciler.reconcile(KEY);
    expect(dnsRulePortsOn(kube)).toEqual(both(5353));
    await settle(reconciler);
  });

  it.each([{ direction: 'Ingress' }, { exceptions: { dns: false } }])(
    'reads nothing of DNS for an Isolation without a DNS exception (%j)',
    async (spec) => {
      const { kube, reconciler } = setup();
      dnsAt(kube, 5353);
      reconciler.observe(createIsolation(kube, spec));
      await reconciler.reconcile(KEY);
      expect(kube.log.filter((l) => l.includes('kube-system'))).toEqual([]);
      await settle(reconciler);
    },
  );
});

describe('newerVersion', () => {
  it('compares etcd revisions as numbers and treats anything else as newer when different', () => {
    expect(newerVersion('10', '9')).toBe(true);
    expect(newerVersion('9', '10')).toBe(false);
    expect(newerVersion('10', '10')).toBe(false);
    expect(newerVersion('123456789012345678901', '123456789012345678900')).toBe(true);
    expect(newerVersion('b', 'a')).toBe(true);
    expect(newerVersion('a', 'a')).toBe(false);
    expect(newerVersion(undefined, '1')).toBe(false);
    expect(newerVersion('1', undefined)).toBe(true);
  });
});

describe('IsolationReconciler: the proof checks the policies as they are', () => {
  it('a microseg allow policy the reconcile did not exclude (missed by the watch cache) is reported as a leak', async () => {
    const { kube, reconciler } = setup();
    const allow = putMicrosegAllow(kube);
    // The watch cache has not seen the policy yet: the deny path reads no microseg policy to exclude.
    kube.cached.set(paths.networkPolicies(NS), { metadata: { name: '' }, items: [] });
    reconciler.observe(createIsolation(kube));
    await reconciler.reconcile(KEY);
    await settle(reconciler);
    expect(JSON.stringify(kube.get(allow)!.spec)).not.toContain('DoesNotExist');
    const st = serverIso(kube).status!;
    expect(st.phase).toBe('Leaking');
    expect(st.leaks?.map((l) => [l.policy, l.direction, l.pod])).toEqual([
      ['shop/web-allow', 'ingress', 'shop/web-1'],
    ]);
  });
});

describe('IsolationReconciler: a leak check that fails', () => {
  it('is said in a Warning Event and the status message, and is retried until the proof is published', async () => {
    const { kube, reconciler } = setup();
    const refusing = refuseNamespaceReads(kube);
    reconciler.observe(createIsolation(kube));
    await reconciler.reconcile(KEY);
    await reconciler.checks.idle();
    await new Promise((r) => setTimeout(r, 20));
    expect(serverPod(kube, 'web-1').metadata.labels[QUARANTINE_LABEL]).toBe('cut-web-1');
    expect(serverIso(kube).status?.message).toBe(
      '1 pod(s) isolated with NetworkPolicy; the leak check failed: the server is currently unable to handle the request (retrying)',
    );
    expect(kube.events.filter((e) => e.reason === 'LeakCheckFailed').map((e) => [e.type, e.message])).toEqual(
      [['Warning', 'the server is currently unable to handle the request (retrying)']],
    );
    // The apiserver answers again: the retry publishes the proof.
    refusing.now = false;
    reconciler.checks.add(KEY);
    await settle(reconciler);
    const st = serverIso(kube).status!;
    expect([st.phase, st.message]).toEqual(['Isolated', '1 pod(s) isolated with NetworkPolicy']);
  });
});

describe('IsolationReconciler: a leak check that fails in two episodes', () => {
  it('is said again in a LeakCheckFailed Event for the episode a re-arm starts', async () => {
    let now = Date.parse('2026-11-28T10:00:00Z');
    const { kube, reconciler } = setup({ now: () => new Date(now) });
    refuseNamespaceReads(kube);
    const said = () => kube.events.filter((e) => e.reason === 'LeakCheckFailed').map((e) => e.message);
    reconciler.observe(createIsolation(kube, { duration: '1m' }));
    await reconciler.reconcile(KEY);
    await reconciler.checks.idle();
    await vi.waitFor(() => expect(said()).toEqual([`${UNAVAILABLE} (retrying)`]));
    now += 61_000;
    await reconciler.reconcile(KEY);
    expect(serverIso(kube).status?.phase).toBe('Released');
    now += 60_000;
    await rearm(kube, reconciler, now);
    await reconciler.reconcile(KEY);
    await reconciler.checks.idle();
    expect(serverPod(kube, 'web-1').metadata.labels[QUARANTINE_LABEL]).toBe('cut-web-1');
    await vi.waitFor(() =>
      expect(said()).toEqual([`${UNAVAILABLE} (retrying)`, `${UNAVAILABLE} (retrying)`]),
    );
    expect(serverIso(kube).status?.message).toBe(
      `1 pod(s) isolated with NetworkPolicy; the leak check failed: ${UNAVAILABLE} (retrying)`,
    );
  });
});

describe('IsolationReconciler: an admin-tier policy the engine cannot read', () => {
  it('is left out of the leak check, and the status, the proof and a Warning Event name it', async () => {
    const { kube, reconciler } = setup();
    servesAdminPolicies(kube);
    putFqdnAdminPolicy(kube);
    reconciler.observe(createIsolation(kube, { mechanism: 'NetworkPolicy' }));
    await reconciler.reconcile(KEY);
    await settle(reconciler);
    const problem =
      'AdminNetworkPolicy allow-fqdn: spec.egress[0].to[0].domainNames is not supported by microseg for egress peers';
    const st = serverIso(kube).status!;
    expect(st.phase).toBe('Isolated');
    expect(st.message).toBe(
      `1 pod(s) isolated with NetworkPolicy; not proved: 1 admin-tier policy the leak check cannot read was left out of it, so what it admits is not known: ${problem}`,
    );
    expect(st.proof?.notEvaluated).toBe(1);
    expect(st.proof?.probes).toBeGreaterThan(0);
    expect(kube.events.filter((e) => e.reason === 'LeakCheckFailed')).toEqual([]);
    expect(
      kube.events.filter((e) => e.reason === 'PolicyNotEvaluated').map((e) => [e.type, e.message]),
    ).toEqual([['Warning', st.message]]);
  });
});

describe('IsolationReconciler: an admin-tier policy the engine cannot read, across episodes', () => {
  it('is said again in a PolicyNotEvaluated Event when a released Isolation is re-armed and isolates anew', async () => {
    let now = Date.parse('2026-11-28T10:00:00Z');
    const { kube, reconciler } = setup({ now: () => new Date(now) });
    servesAdminPolicies(kube);
    putFqdnAdminPolicy(kube);
    const said = () => kube.events.filter((e) => e.reason === 'PolicyNotEvaluated').map((e) => e.message);
    reconciler.observe(createIsolation(kube, { mechanism: 'NetworkPolicy', duration: '1m' }));
    await reconciler.reconcile(KEY);
    await reconciler.checks.idle();
    const message = serverIso(kube).status!.message!;
    expect(message).toContain('not proved: 1 admin-tier policy');
    // A reconcile of the same episode does not say it again.
    await reconciler.reconcile(KEY);
    await reconciler.checks.idle();
    await vi.waitFor(() => expect(said()).toEqual([message]));
    now += 61_000;
    await reconciler.reconcile(KEY);
    expect(serverIso(kube).status?.phase).toBe('Released');
    // Alerted again: a new episode, whose proof leaves the same policy out, and says so.
    now += 60_000;
    await rearm(kube, reconciler, now);
    await reconciler.reconcile(KEY);
    await settle(reconciler);
    expect(serverIso(kube).status?.phase).toBe('Isolated');
    expect(serverIso(kube).status?.message).toBe(message);
    // Once for each episode: the second reconcile of the first said nothing.
    await vi.waitFor(() => expect(said()).toEqual([message, message]));
  });
});

describe('IsolationReconciler: an admin-tier Allow to nodes', () => {
  it('is reported as a leak, probed on the addresses of the Node objects', async () => {
    const { kube, reconciler } = setup();
    servesAdminPolicies(kube);
    putWorkerNode(kube);
    kube.put(paths.adminNetworkPolicies(), {
      apiVersion: 'policy.networking.k8s.io/v1alpha1',
      kind: 'AdminNetworkPolicy',
      metadata: { name: 'allow-kubelet' },
      spec: {
        priority: 10,
        subject: { namespaces: {} },
        egress: [
          {
            name: 'to-workers',
            action: 'Allow',
            to: [{ nodes: { matchLabels: { role: 'worker' } } }],
            ports: [{ portNumber: { protocol: 'TCP', port: 10250 } }],
          },
        ],
      },
    });
    reconciler.observe(createIsolation(kube, { mechanism: 'NetworkPolicy' }));
    await reconciler.reconcile(KEY);
    await settle(reconciler);
    const st = serverIso(kube).status!;
    expect(st.phase).toBe('Leaking');
    expect(st.leaks?.map((l) => [l.policy, l.rule, l.example])).toEqual([
      [
        'AdminNetworkPolicy/allow-kubelet',
        'egress[0] (to-workers)',
        'to node node-b (192.168.0.11) 10250/TCP',
      ],
    ]);
  });
});

describe('IsolationReconciler: the Node objects', () => {
  it('are not listed by a leak check when no admin-tier policy names nodes', async () => {
    const { kube, reconciler } = setup();
    servesAdminPolicies(kube);
    putWorkerNode(kube);
    reconciler.observe(createIsolation(kube, { mechanism: 'NetworkPolicy' }));
    await reconciler.reconcile(KEY);
    await settle(reconciler);
    expect(serverIso(kube).status!.phase).toBe('Isolated');
    // A Node list is large (each Node's status.images): read only for a policy it can matter to.
    expect(kube.log.filter((l) => l.startsWith(`GET ${paths.nodes()}`))).toEqual([]);
  });
});

describe('IsolationReconciler: the exclusion patch of a microseg allow policy conflicts', () => {
  it('is retried on the policy read again, so the policy stops selecting the pod in the same reconcile', async () => {
    const { kube, reconciler } = setup();
    const allow = putMicrosegAllow(kube);
    const stale = kube.get(allow)!;
    // Changed since the watch cache saw it (the Segmentation controller re-applied it).
    kube.put(paths.networkPolicies(NS), {
      ...stale,
      metadata: { ...stale.metadata, annotations: { x: '1' } },
    });
    kube.cached.set(paths.networkPolicies(NS), { metadata: { name: '' }, items: [stale] });
    reconciler.observe(createIsolation(kube));
    await reconciler.reconcile(KEY);
    expect(JSON.stringify(kube.get(allow)!.spec)).toContain('DoesNotExist');
    await settle(reconciler);
    const st = serverIso(kube).status!;
    expect(st.phase).toBe('Isolated');
    expect(st.patchedPolicies).toEqual([`${NS}/web-allow`]);
  });

  it('that keeps conflicting is requeued promptly, not at the resync', async () => {
    const { kube, reconciler } = setup();
    const allow = putMicrosegAllow(kube);
    const request = kube.request.bind(kube);
    kube.request = async (req: KubeRequest) => {
      if (req.method === 'PATCH' && req.path === allow)
        throw new KubeError(409, 'Conflict', `${allow}: the object has been modified`);
      return request(req);
    };
    reconciler.observe(createIsolation(kube));
    const res = await reconciler.reconcile(KEY);
    await settle(reconciler);
    expect(serverIso(kube).status!.phase).toBe('Leaking');
    expect(res.requeueAfterMs).toBeLessThan(5_000);
  });

  it('that keeps conflicting reconcile after reconcile is requeued with backoff, 1 s doubling to a minute, and promptly again once it took', async () => {
    // The leak re-check (resync) an hour apart: only the exclusion's retry brings the next reconcile.
    const { kube, reconciler } = setup({ resyncMs: 3_600_000 });
    const allow = putMicrosegAllow(kube);
    const conflicting = { now: true };
    const request = kube.request.bind(kube);
    kube.request = async (req: KubeRequest) => {
      if (conflicting.now && req.method === 'PATCH' && req.path === allow)
        throw new KubeError(409, 'Conflict', `${allow}: the object has been modified`);
      return request(req);
    };
    reconciler.observe(createIsolation(kube));
    const waits: (number | undefined)[] = [];
    for (let i = 0; i < 8; i++) waits.push((await reconciler.reconcile(KEY)).requeueAfterMs);
    expect(waits).toEqual([1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000]);
    await settle(reconciler);
    expect(serverIso(kube).status!.phase).toBe('Leaking');
    expect(JSON.stringify(serverIso(kube).status!.leaks)).toContain('web-allow');
    // The patch takes: the policy is excluded, and the Isolation is looked at again at the resync.
    conflicting.now = false;
    expect((await reconciler.reconcile(KEY)).requeueAfterMs).toBe(3_600_000);
    expect(JSON.stringify(kube.get(allow)!.spec)).toContain('DoesNotExist');
    // A later conflict (the policy changed under the next patch) starts from a second again.
    const excluded = kube.get(allow)!;
    kube.objects.set(allow, { ...excluded, spec: { ...(excluded.spec as object), podSelector: {} } });
    conflicting.now = true;
    expect((await reconciler.reconcile(KEY)).requeueAfterMs).toBe(1000);
    await settle(reconciler);
  });

  it('that kept conflicting in an episode released at expiry starts from a second again when re-armed', async () => {
    let now = Date.parse('2026-11-28T10:00:00Z');
    const { kube, reconciler } = setup({ now: () => new Date(now), resyncMs: 3_600_000 });
    const allow = putMicrosegAllow(kube);
    const conflicting = { now: true };
    const request = kube.request.bind(kube);
    kube.request = async (req: KubeRequest) => {
      if (conflicting.now && req.method === 'PATCH' && req.path === allow)
        throw new KubeError(409, 'Conflict', `${allow}: the object has been modified`);
      return request(req);
    };
    reconciler.observe(createIsolation(kube, { duration: '10m' }));
    const waits: (number | undefined)[] = [];
    for (let i = 0; i < 7; i++) waits.push((await reconciler.reconcile(KEY)).requeueAfterMs);
    expect(waits).toEqual([1000, 2000, 4000, 8000, 16_000, 32_000, 60_000]);
    await reconciler.checks.idle();
    // Released at expiry while the patches still conflicted: the episode ends.
    now += 11 * 60_000;
    await reconciler.reconcile(KEY);
    await reconciler.checks.idle();
    expect(serverIso(kube).status?.phase).toBe('Released');
    // Alerted again: a new episode, whose first conflicting patch is retried within a second, as the
    // policy admits traffic to the quarantined pod until it is excluded.
    now += 60_000;
    await rearm(kube, reconciler, now);
    expect((await reconciler.reconcile(KEY)).requeueAfterMs).toBe(1000);
    expect(serverPod(kube, 'web-1').metadata.labels[QUARANTINE_LABEL]).toBe('cut-web-1');
    await settle(reconciler);
  });
});

describe('IsolationReconciler: a restart between the label and the status write', () => {
  it('keeps the time the pods were isolated, so the expiry is not moved by the downtime', async () => {
    const t0 = Date.parse('2026-11-28T10:00:00Z');
    let t = t0;
    const { kube, reconciler } = setup({ now: () => new Date(t) });
    reconciler.observe(createIsolation(kube, { duration: '4h' }));
    await reconciler.reconcile(KEY);
    await settle(reconciler);
    expect(serverIso(kube).status?.isolatedAt).toBe(new Date(t0).toISOString());
    // The status write was lost: the controller stopped after labelling the pod.
    const path = paths.isolation(NS, 'cut-web-1');
    const { status: _lost, ...withoutStatus } = kube.get(path)!;
    kube.objects.set(path, withoutStatus);
    expect(serverPod(kube, 'web-1').metadata.labels[QUARANTINE_LABEL]).toBe('cut-web-1');
    // Another replica takes over an hour later.
    t = t0 + 3_600_000;
    const next = new IsolationReconciler({
      kube,
      now: () => new Date(t),
      dns: { namespace: 'kube-system', podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } },
    });
    stops.push(() => next.stop());
    next.observe(serverIso(kube));
    await next.reconcile(KEY);
    await settle(next);
    const st = serverIso(kube).status!;
    expect(st.isolatedAt).toBe(new Date(t0).toISOString());
    expect(st.expiresAt).toBe(new Date(t0 + 4 * 3_600_000).toISOString());
  });
});

describe('IsolationReconciler: time to isolate across a leader takeover', () => {
  it('is observed once, by the leader that labelled the pod: a takeover an hour later adds no sample', async () => {
    const t0 = Date.parse('2026-11-28T10:00:00Z');
    let t = t0;
    const kube = new FakeKube();
    kube.put('/api/v1/namespaces', { metadata: { name: NS, labels: {} } });
    kube.put(paths.pods(NS), {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'web-1', namespace: NS, labels: { app: 'web' } },
      spec: { containers: [{ name: 'c' }] },
      status: { phase: 'Running', podIP: '10.0.0.1' },
    });
    const leader = () => {
      const metrics = new IsolationMetrics();
      const samples: number[] = [];
      const r = new IsolationReconciler({
        kube,
        metrics,
        now: () => new Date(t),
        onIsolated: (_key, ms) => samples.push(ms),
        dns: { namespace: 'kube-system', podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } },
      });
      stops.push(() => r.stop());
      return { r, metrics, samples };
    };
    const first = leader();
    const created = kube.put(paths.isolations(NS), {
      apiVersion: 'microseg.dev/v1alpha1',
      kind: 'Isolation',
      metadata: {
        name: 'cut-web-1',
        namespace: NS,
        creationTimestamp: new Date(t0).toISOString(),
        annotations: { [RECEIVED_AT_ANNOTATION]: new Date(t0 - 40).toISOString() },
      },
      spec: { target: { pods: ['web-1'] }, reason: 'shell in container', duration: '4h' },
    }) as unknown as Isolation;
    // The first leader labels the pod; then it stops, and its status write is lost.
    first.r.observe(created);
    await first.r.reconcile(KEY);
    await settle(first.r);
    expect(serverPod(kube, 'web-1').metadata.labels[QUARANTINE_LABEL]).toBe('cut-web-1');
    expect(first.samples).toEqual([40]);
    expect(first.metrics.timeToIsolate.sample().count).toBe(1);
    const path = paths.isolation(NS, 'cut-web-1');
    const { status: _lost, ...withoutStatus } = kube.get(path)!;
    kube.objects.set(path, withoutStatus);
    // Another replica takes over an hour later: the pod was isolated before it led.
    t = t0 + 3_600_000;
    const next = leader();
    next.r.observe(serverIso(kube));
    await next.r.reconcile(KEY);
    await settle(next.r);
    expect(serverIso(kube).status?.isolatedAt).toBe(new Date(t0).toISOString());
    expect(next.samples).toEqual([]);
    expect(next.metrics.timeToIsolate.sample().count).toBe(0);
  });
});

describe('IsolationReconciler: a Released record', () => {
  it('counts no isolated pod and no leak, as its leaks list none', async () => {
    let now = Date.parse('2026-11-28T10:00:00Z');
    const { kube, reconciler } = setup({ now: () => new Date(now) });
    putMicrosegAllow(kube);
    kube.cached.set(paths.networkPolicies(NS), { metadata: { name: '' }, items: [] });
    reconciler.observe(createIsolation(kube, { duration: '1m' }));
    await reconciler.reconcile(KEY);
    await reconciler.checks.idle();
    const before = serverIso(kube).status!;
    expect([before.phase, before.podCount, before.proof?.leaks]).toEqual(['Leaking', 1, 1]);
    now += 61_000;
    await reconciler.reconcile(KEY);
    await settle(reconciler);
    const st = serverIso(kube).status!;
    expect(st.phase).toBe('Released');
    expect(st.leaks).toEqual([]);
    // The Pods and Leaks columns of `kubectl get isolations` read these.
    expect(st.podCount).toBe(0);
    expect(st.proof).toBeUndefined();
    // Which pods it held stays on record.
    expect(st.isolatedPods).toEqual(['web-1']);
  });
});

describe('IsolationReconciler: a spec edited into one the controller refuses', () => {
  it('keeps the isolated pods isolated, says so, and still releases them at the expiry', async () => {
    let t = Date.parse('2026-11-28T10:00:00Z');
    const { kube, reconciler } = setup({ now: () => new Date(t) });
    reconciler.observe(createIsolation(kube, { duration: '1h' }));
    await reconciler.reconcile(KEY);
    await reconciler.checks.idle();
    expect(serverPod(kube, 'web-1').metadata.labels[QUARANTINE_LABEL]).toBe('cut-web-1');
    // A responder edits the target into a pod name the controller refuses (the schema lets it through).
    await editTargetPods(kube, ['web-1', 'Web_1']);
    reconciler.observe(serverIso(kube));
    const res = await reconciler.reconcile(KEY);
    await reconciler.checks.idle();
    const failed = serverIso(kube).status!;
    expect([failed.phase, failed.message]).toEqual([
      'Failed',
      'spec.target.pods[1] "Web_1" is not a valid pod name; the 1 pod(s) isolated before stay isolated until 2026-11-28T11:00:00.000Z: fix the spec, or delete the Isolation to release them',
    ]);
    expect(res.requeueAfterMs).toBe(3_600_000);
    expect(serverPod(kube, 'web-1').metadata.labels[QUARANTINE_LABEL]).toBe('cut-web-1');
    t += 3_600_000;
    await reconciler.reconcile(KEY);
    await settle(reconciler);
    expect(serverPod(kube, 'web-1').metadata.labels[QUARANTINE_LABEL]).toBe(undefined);
    expect(kube.get(paths.networkPolicy(NS, 'microseg-quarantine-cut-web-1'))).toBeUndefined();
    expect(serverIso(kube).status?.phase).toBe('Released');
  });

  it('leaves a Released record Released: nothing is isolated for the spec to concern', async () => {
    let t = Date.parse('2026-11-28T10:00:00Z');
    const { kube, reconciler } = setup({ now: () => new Date(t) });
    await isolateForAnHourThenExpire(kube, reconciler, (ms) => (t += ms));
    const released = serverIso(kube).status!;
    expect(released.phase).toBe('Released');
    await editTargetPods(kube, ['Web_1']);
    reconciler.observe(serverIso(kube));
    await reconciler.reconcile(KEY);
    await settle(reconciler);
    const st = serverIso(kube).status!;
    expect([st.phase, st.message, st.releasedAt]).toEqual([
      'Released',
      released.message,
      released.releasedAt,
    ]);
    expect(kube.events.filter((e) => e.reason === 'InvalidSpec')).toEqual([]);
  });

  it('a Released record re-armed while its spec is invalid isolates anew once the spec is fixed', async () => {
    let t = Date.parse('2026-11-28T10:00:00Z');
    const { kube, reconciler } = setup({ now: () => new Date(t) });
    await isolateForAnHourThenExpire(kube, reconciler, (ms) => (t += ms));
    expect(serverIso(kube).status!.phase).toBe('Released');
    await editTargetPods(kube, ['Web_1']);
    // Alerted again: the new episode cannot start with this spec.
    t += 60_000;
    const at = new Date(t).toISOString();
    await kube.request({
      method: 'PATCH',
      path: paths.isolation(NS, 'cut-web-1'),
      body: { metadata: { annotations: { [REARM_ANNOTATION]: at, [RECEIVED_AT_ANNOTATION]: at } } },
    });
    reconciler.observe(serverIso(kube));
    await reconciler.reconcile(KEY);
    await reconciler.checks.idle();
    expect(serverIso(kube).status!.phase).toBe('Failed');
    // Fixed: the episode the alert asked for starts, with its own expiry, not the last episode's.
    t += 60_000;
    await editTargetPods(kube, ['web-1']);
    reconciler.observe(serverIso(kube));
    await reconciler.reconcile(KEY);
    await settle(reconciler);
    const st = serverIso(kube).status!;
    expect(st.phase).toBe('Isolated');
    expect(serverPod(kube, 'web-1').metadata.labels[QUARANTINE_LABEL]).toBe('cut-web-1');
    expect(st.isolatedAt).toBe(new Date(t).toISOString());
    expect(st.expiresAt).toBe(new Date(t + 3_600_000).toISOString());
    expect(st.releasedAt).toBeUndefined();
  });
});

describe('IsolationReconciler: a leak check of a spec since edited into an invalid one', () => {
  it('does not publish over the Failed status that names the invalid spec', async () => {
    const { kube, reconciler } = setup();
    const refusing = refuseNamespaceReads(kube);
    reconciler.observe(createIsolation(kube));
    await reconciler.reconcile(KEY);
    await reconciler.checks.idle();
    // The check of the valid spec failed and waits for its retry; meanwhile the spec is made invalid.
    await editTargetPods(kube, ['Web_1']);
    reconciler.observe(serverIso(kube));
    await reconciler.reconcile(KEY);
    const failed = serverIso(kube).status!;
    expect(failed.phase).toBe('Failed');
    // The apiserver answers again and the retry runs: the superseded state is not published.
    refusing.now = false;
    reconciler.checks.add(KEY);
    await settle(reconciler);
    const st = serverIso(kube).status!;
    expect([st.phase, st.message]).toEqual([failed.phase, failed.message]);
    expect(serverPod(kube, 'web-1').metadata.labels[QUARANTINE_LABEL]).toBe('cut-web-1');
  });
});

describe('IsolationReconciler: a leak check that fails while its Isolation is deleted', () => {
  it('is not kept and retried for an Isolation released meanwhile', async () => {
    const { kube, reconciler } = setup();
    let nsReads = 0;
    let held: ((err: Error) => void) | undefined;
    let reached!: () => void;
    const checking = new Promise<void>((r) => (reached = r));
    const request = kube.request.bind(kube);
    kube.request = async (req: KubeRequest) => {
      if (req.method === 'GET' && req.path === paths.namespaces()) {
        nsReads++;
        if (!held) {
          // The first check's read hangs until the Isolation is released, then fails.
          return new Promise((_, reject) => {
            held = reject;
            reached();
          });
        }
        throw unavailable();
      }
      return request(req);
    };
    reconciler.observe(createIsolation(kube));
    await reconciler.reconcile(KEY);
    await checking;
    markDeleted(kube, reconciler);
    await reconciler.reconcile(KEY);
    expect(serverPod(kube, 'web-1').metadata.labels[QUARANTINE_LABEL]).toBeUndefined();
    held!(unavailable());
    await reconciler.checks.idle();
    const before = nsReads;
    // The queue's retry (or any later run of the key) finds nothing to check for the released Isolation.
    reconciler.checks.add(KEY);
    await reconciler.checks.idle();
    expect(nsReads).toBe(before);
    expect(kube.events.filter((e) => e.reason === 'LeakCheckFailed')).toEqual([]);
  });
});

describe('IsolationReconciler: a reconcile that fails', () => {
  const REFUSAL =
    "networkpolicies.networking.k8s.io \"microseg-quarantine-cut-web-1\" is forbidden: ValidatingAdmissionPolicy 'np-team-label' with binding 'np-team-label' denied request: every NetworkPolicy needs a team label";
  /** The apiserver's admission refuses the quarantine NetworkPolicy while `now` stays true. */
  function refuseQuarantinePolicy(kube: FakeKube): { now: boolean } {
    const refusing = { now: true };
    const request = kube.request.bind(kube);
    kube.request = async (req: KubeRequest) => {
      if (refusing.now && req.method === 'POST' && req.path === paths.networkPolicies(NS))
        throw new KubeError(403, 'Forbidden', REFUSAL);
      return request(req);
    };
    return refusing;
  }
  const statusWrites = (kube: FakeKube) =>
    kube.log.filter((l) => l === `PATCH ${paths.isolation(NS, 'cut-web-1')}/status`).length;

  it('on the first reconcile is a Pending status with a Reconciled False condition naming the error, replaced once a reconcile succeeds', async () => {
    let t = Date.parse('2026-11-28T10:00:00Z');
    const { kube, reconciler } = setup({ now: () => new Date(t) });
    const refusing = refuseQuarantinePolicy(kube);
    reconciler.observe(createIsolation(kube));
    await expect(reconciler.reconcile(KEY)).rejects.toThrow(REFUSAL);
    const failed = serverIso(kube).status!;
    expect(failed.phase).toBe('Pending');
    expect(failed.message).toBe(`reconcile failed: ${REFUSAL} (retrying)`);
    expect(failed.observedGeneration).toBe(1);
    expect(failed.conditions).toEqual([
      {
        type: 'Reconciled',
        status: 'False',
        reason: 'ReconcileFailed',
        message: `${REFUSAL} (retrying)`,
        lastTransitionTime: '2026-11-28T10:00:00.000Z',
        observedGeneration: 1,
      },
    ]);
    expect(failed.timeline?.map((e) => [e.action, e.message])).toEqual([
      ['ReconcileFailed', `${REFUSAL} (retrying)`],
    ]);
    expect(serverPod(kube, 'web-1').metadata.labels[QUARANTINE_LABEL]).toBe(undefined);
    // The same error again (the retry with backoff): nothing new to write or say.
    const writes = statusWrites(kube);
    t += 1000;
    await expect(reconciler.reconcile(KEY)).rejects.toThrow(REFUSAL);
    expect(statusWrites(kube)).toBe(writes);
    expect(serverIso(kube).status).toEqual(failed);
    // The admission policy is fixed: the next reconcile isolates, and the condition is replaced.
    refusing.now = false;
    t += 1000;
    await reconciler.reconcile(KEY);
    await settle(reconciler);
    await new Promise((r) => setTimeout(r, 20));
    const st = serverIso(kube).status!;
    expect([st.phase, st.message]).toEqual(['Isolated', '1 pod(s) isolated with NetworkPolicy']);
    expect(st.conditions).toEqual([
      {
        type: 'Reconciled',
        status: 'True',
        reason: 'Reconciled',
        message: 'the last reconcile succeeded',
        lastTransitionTime: '2026-11-28T10:00:02.000Z',
        observedGeneration: 1,
      },
    ]);
    expect(serverPod(kube, 'web-1').metadata.labels[QUARANTINE_LABEL]).toBe('cut-web-1');
    expect(kube.events.filter((e) => e.reason === 'ReconcileFailed').map((e) => e.message)).toEqual([
      `${REFUSAL} (retrying)`,
    ]);
  });

  it('replaced by True also when the write that replaces it fails once: the reconcile is retried until it is written', async () => {
    const { kube, reconciler } = setup({ now: () => new Date('2026-11-28T10:00:00Z') });
    const status = `PATCH ${paths.isolation(NS, 'cut-web-1')}/status`;
    const fail = { discovery: false, status: false };
    const request = kube.request.bind(kube);
    kube.request = async (req: KubeRequest) => {
      if (fail.discovery && req.method === 'GET' && req.path === '/apis') throw unavailable();
      if (fail.status && `${req.method} ${req.path}` === status) {
        fail.status = false;
        throw unavailable();
      }
      return request(req);
    };
    // AdminNetworkPolicy is not served: Failed, an outcome the next reconciles repeat without a write.
    reconciler.observe(createIsolation(kube, { mechanism: 'AdminNetworkPolicy' }));
    await reconciler.reconcile(KEY);
    expect(serverIso(kube).status?.phase).toBe('Failed');
    // Discovery does not answer: the condition turns False, the phase stays.
    fail.discovery = true;
    reconciler.forgetDiscovery();
    await expect(reconciler.reconcile(KEY)).rejects.toThrow(UNAVAILABLE);
    expect(serverIso(kube).status?.conditions?.[0]).toMatchObject({ status: 'False' });
    // It answers again, but the status write that would replace the condition fails: the reconcile is
    // not done (the status still says the failure), and is retried.
    fail.discovery = false;
    fail.status = true;
    reconciler.forgetDiscovery();
    await expect(reconciler.reconcile(KEY)).rejects.toThrow(UNAVAILABLE);
    await reconciler.reconcile(KEY);
    const st = serverIso(kube).status!;
    expect(st.phase).toBe('Failed');
    expect(st.conditions).toEqual([
      expect.objectContaining({
        status: 'True',
        reason: 'Reconciled',
        message: 'the last reconcile succeeded',
      }),
    ]);
    await settle(reconciler);
  });

  it('once isolated keeps the phase and message, and the Reconciled condition names the error', async () => {
    let t = Date.parse('2026-11-28T10:00:00Z');
    const { kube, reconciler } = setup({ now: () => new Date(t) });
    reconciler.observe(createIsolation(kube));
    await reconciler.reconcile(KEY);
    await reconciler.checks.idle();
    await new Promise((r) => setTimeout(r, 20));
    expect(serverIso(kube).status?.phase).toBe('Isolated');
    // The quarantine policy is read back at the next reconcile; the apiserver does not answer.
    const request = kube.request.bind(kube);
    kube.request = async (req: KubeRequest) => {
      if (req.method === 'GET' && req.path === paths.networkPolicy(NS, 'microseg-quarantine-cut-web-1'))
        throw unavailable();
      return request(req);
    };
    t += 30_000;
    await expect(reconciler.reconcile(KEY)).rejects.toThrow(UNAVAILABLE);
    await settle(reconciler);
    const st = serverIso(kube).status!;
    expect([st.phase, st.message, st.podCount]).toEqual([
      'Isolated',
      '1 pod(s) isolated with NetworkPolicy',
      1,
    ]);
    expect(st.conditions).toEqual([
      {
        type: 'Reconciled',
        status: 'False',
        reason: 'ReconcileFailed',
        message: `${UNAVAILABLE} (retrying)`,
        lastTransitionTime: '2026-11-28T10:00:30.000Z',
        observedGeneration: 1,
      },
    ]);
    expect(st.timeline?.at(-1)).toEqual({
      time: '2026-11-28T10:00:30.000Z',
      action: 'ReconcileFailed',
      message: `${UNAVAILABLE} (retrying)`,
    });
  });
});

describe('IsolationReconciler: a spec edited while the Isolation is in effect', () => {
  const onIsolation = (kube: FakeKube, reason: string) =>
    kube.events
      .filter((e) => (e.involvedObject as { kind: string }).kind === 'Isolation' && e.reason === reason)
      .map((e) => [e.type, e.message]);
  /** Edits cut-web-1 (a new generation) and hands the reconciler the edited object, as the watch would. */
  async function edit(kube: FakeKube, r: IsolationReconciler, spec: Record<string, unknown>): Promise<void> {
    const edited = await kube.request<Isolation>({
      method: 'PATCH',
      path: paths.isolation(NS, 'cut-web-1'),
      body: { spec },
    });
    expect(r.observe(edited)).toBe(true);
  }
  async function reconcileAndCheck(r: IsolationReconciler): Promise<void> {
    await r.reconcile(KEY);
    await r.checks.idle();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }

  it('says the outcome of the new spec again, in the Events and the timeline, even when the phase stays', async () => {
    const { kube, reconciler } = setup();
    reconciler.observe(createIsolation(kube));
    await reconcileAndCheck(reconciler);
    expect(onIsolation(kube, 'Isolated')).toEqual([['Normal', '1 pod(s) isolated with NetworkPolicy']]);
    // A new target, a new reason and a duration: still Isolated, now of the new spec, said again.
    await edit(kube, reconciler, {
      target: { pods: ['web-1', 'db-1'] },
      reason: 'lateral movement',
      duration: '2h',
    });
    await reconcileAndCheck(reconciler);
    const st = serverIso(kube).status!;
    expect([st.phase, st.message, st.observedGeneration]).toEqual([
      'Isolated',
      '2 pod(s) isolated with NetworkPolicy',
      2,
    ]);
    expect(onIsolation(kube, 'Isolated')).toEqual([
      ['Normal', '1 pod(s) isolated with NetworkPolicy'],
      ['Normal', '2 pod(s) isolated with NetworkPolicy'],
    ]);
    expect(st.timeline?.filter((e) => e.action === 'Isolated').map((e) => e.message)).toEqual([
      '1 pod(s) isolated with NetworkPolicy',
      '2 pod(s) isolated with NetworkPolicy',
    ]);
    // Nothing more of the same spec at the next resync, nor by a replica that takes over.
    await reconcileAndCheck(reconciler);
    await settle(reconciler);
    const next = new IsolationReconciler({
      kube,
      dns: { namespace: 'kube-system', podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } },
    });
    stops.push(() => next.stop());
    next.observe(serverIso(kube));
    await reconcileAndCheck(next);
    await settle(next);
    expect(onIsolation(kube, 'Isolated')).toHaveLength(2);
  });

  it('a new target that names no pod either is a NoPodToIsolate Warning of its own', async () => {
    const { kube, reconciler } = setup();
    reconciler.observe(createIsolation(kube, { target: { pods: ['web-9'] } }));
    await reconcileAndCheck(reconciler);
    await edit(kube, reconciler, { target: { pods: ['web-8'] } });
    await reconcileAndCheck(reconciler);
    await settle(reconciler);
    expect(serverIso(kube).status?.message).toBe('no pod to isolate: pod web-8 not found');
    expect(onIsolation(kube, 'NoPodToIsolate')).toEqual([
      ['Warning', 'no pod to isolate: pod web-9 not found'],
      ['Warning', 'no pod to isolate: pod web-8 not found'],
    ]);
  });

  it('a reconcile and a leak check failing as they did for the last spec are said again for the new one', async () => {
    const { kube, reconciler } = setup();
    const refusing = refuseNamespaceReads(kube);
    const failDiscovery = { now: true };
    const request = kube.request.bind(kube);
    kube.request = async (req: KubeRequest) => {
      if (failDiscovery.now && req.method === 'GET' && req.path === '/apis') throw unavailable();
      return request(req);
    };
    reconciler.observe(createIsolation(kube));
    await expect(reconciler.reconcile(KEY)).rejects.toThrow(UNAVAILABLE);
    await edit(kube, reconciler, { target: { pods: ['db-1'] } });
    await expect(reconciler.reconcile(KEY)).rejects.toThrow(UNAVAILABLE);
    expect(onIsolation(kube, 'ReconcileFailed')).toEqual([
      ['Warning', `${UNAVAILABLE} (retrying)`],
      ['Warning', `${UNAVAILABLE} (retrying)`],
    ]);
    expect(serverIso(kube).status?.timeline?.filter((e) => e.action === 'ReconcileFailed')).toHaveLength(2);
    // Discovery answers; the leak check's reads do not, for this spec and for the next.
    failDiscovery.now = false;
    reconciler.forgetDiscovery();
    await reconcileAndCheck(reconciler);
    await vi.waitFor(() => expect(onIsolation(kube, 'LeakCheckFailed')).toHaveLength(1));
    await edit(kube, reconciler, { target: { pods: ['web-1'] } });
    await reconcileAndCheck(reconciler);
    await vi.waitFor(() =>
      expect(onIsolation(kube, 'LeakCheckFailed')).toEqual([
        ['Warning', `${UNAVAILABLE} (retrying)`],
        ['Warning', `${UNAVAILABLE} (retrying)`],
      ]),
    );
    refusing.now = false;
    reconciler.checks.add(KEY);
    await settle(reconciler);
  });
});

describe('IsolationReconciler: time to isolate when the reconcile fails after labelling', () => {
  it('is observed once, by the retry, from the alert to the first label, not lost nor counted twice', async () => {
    const t0 = Date.parse('2026-11-28T10:00:00Z');
    let t = t0;
    const kube = new FakeKube();
    kube.put('/api/v1/namespaces', { metadata: { name: NS, labels: {} } });
    for (const name of ['web-1', 'db-1'])
      kube.put(paths.pods(NS), {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, namespace: NS, labels: { app: name.split('-')[0]! } },
        spec: { containers: [{ name: 'c' }] },
        status: { phase: 'Running', podIP: name === 'web-1' ? '10.0.0.1' : '10.0.0.2' },
      });
    // The label patch of db-1 is refused (an admission webhook, say) while `refusing.now` holds.
    const refusing = { now: true };
    const request = kube.request.bind(kube);
    kube.request = async (req: KubeRequest) => {
      if (refusing.now && req.method === 'PATCH' && req.path === paths.pod(NS, 'db-1'))
        throw new KubeError(403, 'Forbidden', 'pods "db-1" is forbidden: refused by a test webhook');
      return request(req);
    };
    const metrics = new IsolationMetrics();
    const samples: number[] = [];
    const r = new IsolationReconciler({
      kube,
      metrics,
      now: () => new Date(t),
      onIsolated: (_key, ms) => samples.push(ms),
      dns: { namespace: 'kube-system', podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } },
    });
    stops.push(() => r.stop());
    r.observe(
      kube.put(paths.isolations(NS), {
        apiVersion: 'microseg.dev/v1alpha1',
        kind: 'Isolation',
        metadata: {
          name: 'cut-web-1',
          namespace: NS,
          creationTimestamp: new Date(t0 - 1000).toISOString(),
          annotations: { [RECEIVED_AT_ANNOTATION]: new Date(t0 - 40).toISOString() },
        },
        spec: { target: { pods: ['web-1', 'db-1'] }, reason: 'shell in container', duration: '4h' },
      }) as unknown as Isolation,
    );
    // web-1 is labelled (the deny is in effect for it), then the reconcile fails on db-1.
    await expect(r.reconcile(KEY)).rejects.toThrow('refused by a test webhook');
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(serverPod(kube, 'web-1').metadata.labels[QUARANTINE_LABEL]).toBe('cut-web-1');
    // The retry, five seconds later, labels db-1: the sample is the first label's, 40 ms after the alert.
    refusing.now = false;
    t = t0 + 5000;
    await r.reconcile(KEY);
    t = t0 + 35_000;
    await r.reconcile(KEY);
    await settle(r);
    expect(serverPod(kube, 'db-1').metadata.labels[QUARANTINE_LABEL]).toBe('cut-web-1');
    expect(serverIso(kube).status?.isolatedAt).toBe(new Date(t0).toISOString());
    expect(samples).toEqual([40]);
    expect(metrics.timeToIsolate.sample().count).toBe(1);
  });
});

describe('IsolationReconciler: the first leak check of an edited spec fails', () => {
  const failedCheck = (pods: number) =>
    `${pods} pod(s) isolated with NetworkPolicy; the leak check failed: ${UNAVAILABLE} (retrying)`;
  async function reconcileAndCheck(r: IsolationReconciler): Promise<void> {
    await r.reconcile(KEY);
    await r.checks.idle();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }

  it('does not report the Failed of the spec before as the fixed spec outcome', async () => {
    const { kube, reconciler } = setup();
    reconciler.observe(createIsolation(kube, { target: { pods: ['Web_1'] } }));
    await reconcileAndCheck(reconciler);
    expect([serverIso(kube).status?.phase, serverIso(kube).status?.observedGeneration]).toEqual([
      'Failed',
      1,
    ]);
    const refusing = refuseNamespaceReads(kube);
    await editTargetPods(kube, ['web-1']);
    reconciler.observe(serverIso(kube));
    await reconcileAndCheck(reconciler);
    expect(serverPod(kube, 'web-1').metadata.labels[QUARANTINE_LABEL]).toBe('cut-web-1');
    const st = serverIso(kube).status!;
    expect([st.phase, st.observedGeneration, st.message]).toEqual(['Pending', 2, failedCheck(1)]);
    expect(isolateOutcome(serverIso(kube))).toBe(false);
    // The apiserver answers again: the retry publishes the fixed spec's outcome.
    refusing.now = false;
    reconciler.checks.add(KEY);
    await settle(reconciler);
    const done = serverIso(kube).status!;
    expect([done.phase, done.observedGeneration, done.message]).toEqual([
      'Isolated',
      2,
      '1 pod(s) isolated with NetworkPolicy',
    ]);
  });

  it('does not report the Isolated, leaks and proof of the spec before as the new spec outcome', async () => {
    const { kube, reconciler } = setup();
    reconciler.observe(createIsolation(kube));
    await reconcileAndCheck(reconciler);
    const before = serverIso(kube).status!;
    expect([before.phase, before.observedGeneration, before.proof?.probes !== undefined]).toEqual([
      'Isolated',
      1,
      true,
    ]);
    // The leak check's list of the namespace's pods is refused (once the one it read is past its time).
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const refusing = { now: true };
    const request = kube.request.bind(kube);
    kube.request = async (req: KubeRequest) => {
      if (refusing.now && req.method === 'GET' && req.path === paths.pods(NS)) throw unavailable();
      return request(req);
    };
    await editTargetPods(kube, ['web-1', 'db-1']);
    reconciler.observe(serverIso(kube));
    await reconcileAndCheck(reconciler);
    const st = serverIso(kube).status!;
    expect([st.phase, st.observedGeneration, st.message, st.podCount]).toEqual([
      'Pending',
      2,
      failedCheck(2),
      2,
    ]);
    expect([st.leaks, st.proof]).toEqual([undefined, undefined]);
    expect(isolateOutcome(serverIso(kube))).toBe(false);
    refusing.now = false;
    reconciler.checks.add(KEY);
    await settle(reconciler);
    const done = serverIso(kube).status!;
    expect([done.phase, done.observedGeneration, done.message]).toEqual([
      'Isolated',
      2,
      '2 pod(s) isolated with NetworkPolicy',
    ]);
    expect(done.timeline?.filter((e) => e.action === 'Isolated').map((e) => e.message)).toEqual([
      '1 pod(s) isolated with NetworkPolicy',
      '2 pod(s) isolated with NetworkPolicy',
    ]);
  });
});

describe('IsolationReconciler: a leak check that publishes while a reconcile of the same Isolation runs', () => {
  /** The Events on the Isolation: type, reason, message. */
  const onIsolation = (kube: FakeKube) =>
    kube.events
      .filter((e) => (e.involvedObject as { kind: string }).kind === 'Isolation')
      .map((e) => [e.type, e.reason, e.message]);

  /**
   * Reconciles once, holds that reconcile's leak check at its first read (the Namespace list), runs
   * `meanwhile` (what changes in the cluster before the resync), starts the next reconcile (a resync) and
   * holds it at its read of pod `pod` (or at the first request `holdAt` matches), lets the check publish,
   * then lets the reconcile finish and the check it queues run.
   */
  async function checkPublishesDuringReconcile(
    kube: FakeKube,
    r: IsolationReconciler,
    pod: string,
    o: { holdAt?: (q: KubeRequest) => boolean; meanwhile?: () => void } = {},
  ): Promise<void> {
    const checking = kube.gate((q) => q.method === 'GET' && q.path === paths.namespaces());
    await r.reconcile(KEY);
    await checking.reached;
    o.meanwhile?.();
    const reading = kube.gate(o.holdAt ?? ((q) => q.method === 'GET' && q.path === paths.pod(NS, pod)));
    const resync = r.reconcile(KEY);
    await reading.reached;
    checking.release();
    // The first check's outcome is on the server while the resync is still at its read.
    await vi.waitFor(() => expect(serverIso(kube).status?.phase).toBeDefined());
    reading.release();
    await resync;
    await settle(r);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }

  it('a target that names no pod: the NoPodToIsolate Warning and its timeline entry are said once', async () => {
    const { kube, reconciler } = setup();
    reconciler.observe(createIsolation(kube, { target: { pods: ['web-9'] } }));
    await checkPublishesDuringReconcile(kube, reconciler, 'web-9');
    const st = serverIso(kube).status!;
    expect([st.phase, st.message]).toEqual(['Pending', 'no pod to isolate: pod web-9 not found']);
    expect(st.timeline?.filter((e) => e.action === 'Pending')).toHaveLength(1);
    expect(onIsolation(kube)).toEqual([
      ['Warning', 'NoPodToIsolate', 'no pod to isolate: pod web-9 not found'],
    ]);
  });

  it('a pod isolated: the Isolated Event and its timeline entry are said once, and the resync keeps its pods', async () => {
    const { kube, reconciler } = setup();
    reconciler.observe(createIsolation(kube));
    await checkPublishesDuringReconcile(kube, reconciler, 'web-1');
    const st = serverIso(kube).status!;
    expect([st.phase, st.message, st.isolatedPods, st.podCount]).toEqual([
      'Isolated',
      '1 pod(s) isolated with NetworkPolicy',
      ['web-1'],
      1,
    ]);
    expect(st.timeline?.map((e) => e.action)).toEqual(['MechanismChosen', 'PodIsolated', 'Isolated']);
    expect(onIsolation(kube)).toEqual([['Normal', 'Isolated', '1 pod(s) isolated with NetworkPolicy']]);
  });
  it('the mechanism spec.mechanism asks for no longer served: the Failed keeps the Isolated the check published (timeline entry, proof)', async () => {
    const { kube, reconciler } = setup();
    servesAdminPolicies(kube);
    reconciler.observe(createIsolation(kube, { mechanism: 'AdminNetworkPolicy' }));
    await checkPublishesDuringReconcile(kube, reconciler, 'web-1', {
      // The admin-tier API is gone (its CRDs uninstalled); the resync reads discovery again.
      meanwhile: () => {
        kube.apiGroups = [];
        reconciler.forgetDiscovery();
      },
      holdAt: (q) => q.method === 'GET' && q.path === '/apis',
    });
    const st = serverIso(kube).status!;
    const unserved =
      'spec.mechanism AdminNetworkPolicy is not served by this cluster (policy.networking.k8s.io/v1alpha1 not found)';
    expect([st.phase, st.message]).toEqual(['Failed', unserved]);
    expect(st.timeline?.map((e) => e.action)).toEqual([
      'MechanismChosen',
      'PodIsolated',
      'Isolated',
      'Failed',
    ]);
    expect(st.proof?.leaks).toBe(0);
    expect(st.leaks).toEqual([]);
    expect(onIsolation(kube)).toEqual([
      ['Normal', 'Isolated', '1 pod(s) isolated with AdminNetworkPolicy'],
      ['Warning', 'MechanismUnavailable', unserved],
    ]);
  });

  it('a name conflict found by the resync: the Failed keeps the Isolated the check published (timeline entry, proof)', async () => {
    const { kube, reconciler } = setup();
    reconciler.observe(createIsolation(kube, { mechanism: 'NetworkPolicy' }));
    // The name the reconciler falls back to on a conflict: salted with the start of the Isolation's uid.
    const salted = `microseg-quarantine-cut-web-1-${serverIso(kube).metadata.uid!.replace(/-/g, '').slice(0, 8)}`;
    const clash = `NetworkPolicy ${salted} exists and is not owned by this Isolation`;
    await checkPublishesDuringReconcile(kube, reconciler, 'web-1', {
      // Someone else's policies now hold the quarantine policy's name and the salted one it falls back to.
      meanwhile: () => {
        takeQuarantineNames(kube, salted);
      },
    });
    const st = serverIso(kube).status!;
    expect([st.phase, st.message]).toEqual(['Failed', clash]);
    expect(st.timeline?.map((e) => e.action)).toEqual([
      'MechanismChosen',
      'PodIsolated',
      'Isolated',
      'Failed',
    ]);
    expect(st.proof?.leaks).toBe(0);
    expect(onIsolation(kube)).toEqual([
      ['Normal', 'Isolated', '1 pod(s) isolated with NetworkPolicy'],
      ['Warning', 'NameConflict', clash],
    ]);
  });
  it('a Failed written while the leak check of the same generation waits to run is not overwritten by that check', async () => {
    const { kube, reconciler } = setup();
    servesAdminPolicies(kube);
    reconciler.observe(createIsolation(kube, { mechanism: 'AdminNetworkPolicy' }));
    // Another incident's reconcile is stuck reading its pod: background work (the leak check) waits.
    const { stuck, second } = await stuckSecondIncident(kube, reconciler);
    await reconciler.reconcile(KEY);
    // The admin-tier API is gone before the check ran; the resync says so.
    kube.apiGroups = [];
    reconciler.forgetDiscovery();
    await reconciler.reconcile(KEY);
    stuck.release();
    await second;
    await settle(reconciler);
    const unserved =
      'spec.mechanism AdminNetworkPolicy is not served by this cluster (policy.networking.k8s.io/v1alpha1 not found)';
    const st = serverIso(kube).status!;
    expect([st.phase, st.message]).toEqual(['Failed', unserved]);
    const onThis = kube.events
      .filter((e) => (e.involvedObject as { name: string }).name === 'cut-web-1')
      .map((e) => e.reason);
    expect(onThis).toEqual(['MechanismUnavailable']);
  });
});

describe('IsolationReconciler: a leak check already running when a resync says the isolation failed', () => {
  /**
   * Reconciles once and holds that reconcile's leak check at its Namespace list (it has taken its state
   * and is running), runs `meanwhile`, lets the resync finish (it writes what failed), then lets the check
   * finish: what it found was proved of a state the status no longer says.
   */
  async function failedWhileCheckRuns(kube: FakeKube, r: IsolationReconciler, meanwhile: () => void) {
    const checking = kube.gate((q) => q.method === 'GET' && q.path === paths.namespaces());
    await r.reconcile(KEY);
    await checking.reached;
    meanwhile();
    await r.reconcile(KEY).catch(() => undefined);
    const written = structuredClone(serverIso(kube).status!);
    checking.release();
    await settle(r);
    await new Promise((resolve) => setTimeout(resolve, 20));
    return written;
  }
  const reasons = (kube: FakeKube) =>
    kube.events
      .filter((e) => (e.involvedObject as { kind: string }).kind === 'Isolation')
      .map((e) => e.reason);

  it('the mechanism gone: the check does not publish Isolated over the Failed', async () => {
    const { kube, reconciler } = setup();
    servesAdminPolicies(kube);
    reconciler.observe(createIsolation(kube, { mechanism: 'AdminNetworkPolicy' }));
    const written = await failedWhileCheckRuns(kube, reconciler, () => {
      kube.apiGroups = [];
      reconciler.forgetDiscovery();
    });
    const unserved =
      'spec.mechanism AdminNetworkPolicy is not served by this cluster (policy.networking.k8s.io/v1alpha1 not found)';
    expect([written.phase, written.message]).toEqual(['Failed', unserved]);
    const st = serverIso(kube).status!;
    expect(st).toEqual(written);
    expect(st.timeline?.map((e) => e.action)).toEqual(['MechanismChosen', 'PodIsolated', 'Failed']);
    expect(st.proof).toBeUndefined();
    expect(reasons(kube)).toEqual(['MechanismUnavailable']);
  });

  it('a name conflict: the check does not publish Isolated over the Failed', async () => {
    const { kube, reconciler } = setup();
    reconciler.observe(createIsolation(kube, { mechanism: 'NetworkPolicy' }));
    const salted = `microseg-quarantine-cut-web-1-${serverIso(kube).metadata.uid!.replace(/-/g, '').slice(0, 8)}`;
    const written = await failedWhileCheckRuns(kube, reconciler, () => {
      takeQuarantineNames(kube, salted);
    });
    expect([written.phase, written.message]).toEqual([
      'Failed',
      `NetworkPolicy ${salted} exists and is not owned by this Isolation`,
    ]);
    const st = serverIso(kube).status!;
    expect(st).toEqual(written);
    expect(st.proof).toBeUndefined();
    expect(reasons(kube)).toEqual(['NameConflict']);
  });

  it('its NetworkPolicy deleted and the apiserver refusing it again: the check does not publish Isolated over the failure', async () => {
    const { kube, reconciler } = setup();
    reconciler.observe(createIsolation(kube, { mechanism: 'NetworkPolicy' }));
    const refused = 'admission webhook "deny.example" denied the request';
    const written = await failedWhileCheckRuns(kube, reconciler, () => {
      kube.objects.delete(paths.networkPolicy(NS, 'microseg-quarantine-cut-web-1'));
      const request = kube.request.bind(kube);
      kube.request = async (req: KubeRequest) => {
        if (req.method !== 'GET' && req.path.startsWith(paths.networkPolicies(NS)))
          throw new KubeError(403, 'Forbidden', refused);
        return request(req);
      };
    });
    const failed = written.conditions?.find((c) => c.type === 'Reconciled');
    expect(failed?.status).toBe('False');
    expect(failed?.message).toContain(refused);
    const st = serverIso(kube).status!;
    expect(st).toEqual(written);
    expect(st.phase).not.toBe('Isolated');
    expect(st.proof).toBeUndefined();
    expect(reasons(kube)).not.toContain('Isolated');
  });
});

describe('IsolationReconciler: a leak check already running when the Isolation is deleted', () => {
  it('publishes nothing while, or after, its pods are released', async () => {
    const { kube, reconciler } = setup();
    reconciler.observe(createIsolation(kube, { mechanism: 'NetworkPolicy' }));
    const checking = kube.gate((q) => q.method === 'GET' && q.path === paths.namespaces());
    await reconciler.reconcile(KEY);
    await checking.reached;
    // The Isolation is deleted: the reconcile releases its pod and is held at the finalizer's removal,
    // while the check that was running finishes.
    markDeleted(kube, reconciler);
    const unfinalized = kube.gate((q) => q.method === 'PATCH' && q.path === paths.isolation(NS, 'cut-web-1'));
    const deleting = reconciler.reconcile(KEY);
    await unfinalized.reached;
    expect(serverPod(kube, 'web-1').metadata.labels[QUARANTINE_LABEL]).toBeUndefined();
    checking.release();
    await new Promise((resolve) => setTimeout(resolve, 50));
    unfinalized.release();
    // Done in one reconcile: no status write of the check's moved the Isolation under the finalizer's removal.
    await deleting;
    expect(serverIso(kube).metadata.finalizers ?? []).not.toContain(ISOLATION_FINALIZER);
    await settle(reconciler);
    const reasons = kube.events
      .filter((e) => (e.involvedObject as { kind: string }).kind === 'Isolation')
      .map((e) => e.reason);
    expect(reasons).not.toContain('Isolated');
    expect(serverIso(kube).status?.phase).not.toBe('Isolated');
  });
});

describe('IsolationReconciler: a cluster-wide policy changed', () => {
  it('asks for every Isolation not released nor being deleted, and reads discovery and the admin-tier lists again', async () => {
    const { kube, reconciler } = setup();
    const iso = (name: string, extra: { status?: Isolation['status']; deleting?: boolean } = {}) =>
      ({
        apiVersion: 'microseg.dev/v1alpha1',
        kind: 'Isolation',
        metadata: {
          name,
          namespace: NS,
          uid: `uid-${name}`,
          resourceVersion: '1',
          generation: 1,
          ...(extra.deleting ? { deletionTimestamp: '2026-12-02T00:00:00Z' } : {}),
        },
        spec: { target: { pods: ['web-1'] }, reason: 'test' },
        ...(extra.status ? { status: extra.status } : {}),
      }) as Isolation;
    reconciler.observe(
      iso('in-effect', { status: { phase: 'Isolated', isolatedAt: '2026-12-02T00:00:00Z' } }),
    );
    reconciler.observe(iso('leaking', { status: { phase: 'Leaking', isolatedAt: '2026-12-02T00:00:00Z' } }));
    reconciler.observe(iso('new'));
    reconciler.observe(iso('released', { status: { phase: 'Released' } }));
    reconciler.observe(iso('deleting', { deleting: true, status: { phase: 'Isolated' } }));
    expect(reconciler.clusterPoliciesChanged().sort()).toEqual([
      `${NS}/in-effect`,
      `${NS}/leaking`,
      `${NS}/new`,
    ]);
    // Discovery is read again at the next reconcile (a CRD installed since is seen).
    const discoveries = () => kube.log.filter((l) => l === 'GET /apis').length;
    reconciler.observe(createIsolation(kube));
    await reconciler.reconcile(KEY);
    const before = discoveries();
    await reconciler.reconcile(KEY);
    expect(discoveries()).toBe(before);
    reconciler.clusterPoliciesChanged();
    await reconciler.reconcile(KEY);
    expect(discoveries()).toBe(before + 1);
  });
});
