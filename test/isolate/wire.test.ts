import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import express from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IsolationController } from '../../src/isolate/controller.ts';
import { DEFAULT_ALERTMANAGER_CONFIG, DEFAULT_FALCO_CONFIG } from '../../src/isolate/triggers.ts';
import type { IsolationWiringOptions } from '../../src/isolate/wire.ts';
import { describeTriggers, triggerConfig, wireIsolation } from '../../src/isolate/wire.ts';
import type { IsolationFlagValues } from '../../src/cli/commands/controller.ts';
import { isolationSettings } from '../../src/cli/commands/controller.ts';
import { UsageError } from '../../src/cli/io.ts';
import { FakeKube } from './fake-kube.ts';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'microseg-wire-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function wired(tokens: string, extra: Partial<IsolationWiringOptions> = {}) {
  const file = join(dir, `token-${Math.random().toString(16).slice(2)}`);
  writeFileSync(file, tokens);
  const kube = new FakeKube();
  const lines: string[] = [];
  const warnings: string[] = [];
  const w = wireIsolation({
    kc: new KubeConfig(),
    kube,
    webhookTokenFile: file,
    log: (l) => lines.push(l),
    warn: (l) => warnings.push(l),
    ...extra,
  });
  const app = express();
  app.use(w.router!);
  return { app, kube, lines, warnings, wiring: w };
}

const crashLoop = {
  version: '4',
  status: 'firing',
  alerts: [
    {
      status: 'firing',
      labels: { alertname: 'KubePodCrashLooping', severity: 'warning', namespace: 'shop', pod: 'cart-1' },
      fingerprint: 'cc01',
    },
  ],
};
const outcome = (r: request.Response) => (r.body as { results: { outcome: string }[] }).results[0]?.outcome;

describe('the controller wiring of the webhooks', () => {
  it('reports no Isolation in effect once it stops leading: what it knew of them is stale', async () => {
    const w = wireIsolation({ kc: new KubeConfig(), kube: new FakeKube(), log: () => undefined });
    // Isolated and leaking as this replica's reconciles found them while it led.
    w.metrics.setActive('shop/cut-web-1', 'Isolated');
    w.metrics.setActive('shop/cut-web-2', 'Leaking');
    expect(w.metrics.activeCount()).toBe(2);
    // Leadership ends; another replica's term may delete them, which this one never reconciles.
    await w.leaderTask.stop();
    expect(w.metrics.activeCount()).toBe(0);
    const gauges = w.metrics
      .families()
      .filter((f) => f.name === 'microseg_isolations_active' || f.name === 'microseg_isolations_leaking');
    expect(gauges.map((f) => (f.type === 'histogram' ? undefined : f.samples[0]!.value))).toEqual([0, 0]);
  });

  it("starts the reconciler with the controller's semantics, for its leak check", async () => {
    const given: unknown[] = [];
    const w = wireIsolation({
      kc: new KubeConfig(),
      kube: new FakeKube(),
      log: () => undefined,
      engine: { ipBlockMatchesPods: false },
      startController: (o) => {
        given.push(o.engine);
        return Promise.resolve({ stop: () => Promise.resolve() } as unknown as IsolationController);
      },
    });
    await w.leaderTask.start();
    await w.leaderTask.stop();
    expect(given).toEqual([{ ipBlockMatchesPods: false }]);
  });

  it('a stop while the reconciler is still starting leaves none running, and a start runs one', async () => {
    // Was: stop() during start() did nothing, and the reconciler then ran on a replica that no longer led.
    const made: { stopped: boolean; enqueued: string[] }[] = [];
    const pending: (() => void)[] = [];
    const startController = () =>
      new Promise<IsolationController>((resolve) => {
        const c = { stopped: false, enqueued: [] as string[] };
        made.push(c);
        pending.push(() =>
          resolve({
            enqueue: (ns: string, name: string) => c.enqueued.push(`${ns}/${name}`),
            stop: () => {
              c.stopped = true;
              return Promise.resolve();
            },
          } as unknown as IsolationController),
        );
      });
    const w = wireIsolation({
      kc: new KubeConfig(),
      kube: new FakeKube(),
      log: () => undefined,
      startController,
    });
    const started = w.leaderTask.start();
    const again = w.leaderTask.start(); // a second start while the first is under way starts no other
    const stopped = w.leaderTask.stop();
    let stopDone = false;
    void stopped.then(() => (stopDone = true));
    await new Promise((r) => setTimeout(r, 10));
    expect(made).toHaveLength(1);
    pending[0]!();
    await Promise.all([started, again, stopped]);
    expect(stopDone).toBe(true);
    expect(made[0]!.stopped).toBe(true);
    // Leading again: one runs, and stop() stops it.
    const next = w.leaderTask.start();
    await new Promise((r) => setTimeout(r, 10));
    pending[1]!();
    await next;
    expect(made.map((c) => c.stopped)).toEqual([true, false]);
    await w.leaderTask.stop();
    expect(made.map((c) => c.stopped)).toEqual([true, true]);
    // stop() then start() while the first start is pending: the later start wins, one runs.
    const a = w.leaderTask.start();
    const b = w.leaderTask.stop();
    const c = w.leaderTask.start();
    await new Promise((r) => setTimeout(r, 10));
    expect(made).toHaveLength(3);
    pending[2]!();
    await Promise.all([a, b, c]);
    expect(made[2]!.stopped).toBe(false);
    await w.leaderTask.stop();
    expect(made[2]!.stopped).toBe(true);
  });

  it('tells the leading reconciler of a cluster-wide policy change, not of the deny object of an Isolation', async () => {
    // Was: nothing told it; an Isolation in effect was checked again only at its 30 s resync.
    let rechecks = 0;
    const w = wireIsolation({
      kc: new KubeConfig(),
      kube: new FakeKube(),
      log: () => undefined,
      startController: () =>
        Promise.resolve({
          clusterPoliciesChanged: () => rechecks++,
          stop: () => Promise.resolve(),
        } as unknown as IsolationController),
    });
    const anp = (name: string, labels?: Record<string, string>) => ({
      apiVersion: 'policy.networking.k8s.io/v1alpha1',
      kind: 'AdminNetworkPolicy',
      metadata: { name, ...(labels ? { labels } : {}) },
      spec: {},
    });
    // Not leading: no reconciler to tell (the next leader reconciles every Isolation when it starts).
    w.leaderTask.clusterPoliciesChanged([anp('allow-monitoring')]);
    await w.leaderTask.start();
    w.leaderTask.clusterPoliciesChanged([anp('allow-monitoring')]);
    expect(rechecks).toBe(1);
    // An Isolation's own deny: its reconciler puts it back itself.
    const own = anp('microseg-quarantine-cut-web-1', {
      'app.kubernetes.io/managed-by': 'microseg',
      'microseg.dev/isolation': 'cut-web-1',
    });
    w.leaderTask.clusterPoliciesChanged([own, own]);
    expect(rechecks).toBe(1);
    // One that only says it is an Isolation's, by someone else than microseg, is not taken for one.
    w.leaderTask.clusterPoliciesChanged([anp('look-alike', { 'microseg.dev/isolation': 'cut-web-1' })]);
    expect(rechecks).toBe(2);
    // Told together with an Isolation's own: checked again, once.
    w.leaderTask.clusterPoliciesChanged([own, anp('allow-monitoring'), anp('allow-backup')]);
    expect(rechecks).toBe(3);
    await w.leaderTask.stop();
    w.leaderTask.clusterPoliciesChanged([anp('allow-monitoring')]);
    expect(rechecks).toBe(3);
  });

  it('reads the token file one per line or comma-separated, as tokensFromSecret does', async () => {
    // Was one token "tok1,tok2": every call got 401.
    const { app } = wired('tok1,tok2\ntok3\n');
    for (const tok of ['tok1', 'tok2', 'tok3']) {
      const r = await request(app)
        .post('/webhooks/alertmanager')
        .set('authorization', `Bearer ${tok}`)
        .send({ version: '4', status: 'firing', alerts: [] });
      expect(r.status, tok).toBe(200);
    }
    const wrong = await request(app)
      .post('/webhooks/alertmanager')
      .set('authorization', 'Bearer tok1,tok2')
      .send({ version: '4', status: 'firing', alerts: [] });
    expect(wrong.status).toBe(401);
  });

  it('answers 503 with Retry-After while the token file cannot be read, says so once, and recovers at once', async () => {
    // Was 401 for every call, which Alertmanager and Falcosidekick do not retry: the alerts were lost.
    const file = join(dir, 'token-unreadable');
    mkdirSync(file); // a directory where the token file should be: reading it fails with EISDIR
    const warnings: string[] = [];
    const w = wireIsolation({
      kc: new KubeConfig(),
      kube: new FakeKube(),
      webhookTokenFile: file,
      log: () => undefined,
      warn: (l) => warnings.push(l),
    });
    const app = express();
    app.use(w.router!);
    const send = (path: string) =>
      request(app)
        .post(path)
        .set('authorization', 'Bearer t')
        .send({ version: '4', status: 'firing', alerts: [] });
    for (const path of ['/webhooks/alertmanager', '/webhooks/falco', '/webhooks/alertmanager']) {
      const r = await send(path);
      expect(r.status, path).toBe(503);
      expect(r.headers['retry-after'], path).toBe('5');
      expect((r.body as { error: string }).error).toBe(
        'the bearer tokens of this webhook cannot be read; retry later',
      );
    }
    // One line for the operator, naming the file and the error, however many requests came.
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      new RegExp(
        `^webhook token file ${file} cannot be read: EISDIR.*: the webhooks answer 503 until it can$`,
      ),
    );
    const gauge = () => {
      const f = w.metrics.families().find((x) => x.name === 'microseg_isolation_webhook_tokens_unreadable');
      return f?.type === 'histogram' ? undefined : f?.samples[0]?.value;
    };
    expect(gauge()).toBe(1);
    const counted = w.metrics.families().find((x) => x.name === 'microseg_isolation_alerts_total');
    expect(counted?.type !== 'histogram' && counted?.samples).toEqual([
      { labels: { source: 'alertmanager', outcome: 'tokens_unreadable' }, value: 2 },
      { labels: { source: 'falco', outcome: 'tokens_unreadable' }, value: 1 },
    ]);

    // Readable again: the very next request is authenticated.
    rmSync(file, { recursive: true });
    writeFileSync(file, 't\n');
    expect((await send('/webhooks/alertmanager')).status).toBe(200);
    expect(gauge()).toBe(0);
    expect(warnings[1]).toBe(`webhook token file ${file} is readable again`);

    // A file that holds no token (an empty Secret key) cannot authenticate anyone either: retryable.
    const empty = join(dir, 'token-empty');
    writeFileSync(empty, ' \n');
    const e = wireIsolation({
      kc: new KubeConfig(),
      kube: new FakeKube(),
      webhookTokenFile: empty,
      log: () => undefined,
      warn: (l) => warnings.push(l),
    });
    const app2 = express();
    app2.use(e.router!);
    const r = await request(app2).post('/webhooks/falco').set('authorization', 'Bearer t').send({});
    expect(r.status).toBe(503);
    expect(warnings[2]).toBe(
      `webhook token file ${empty} cannot be read: it holds no token: the webhooks answer 503 until it can`,
    );
  });

  it('passes the trigger settings to the webhooks and logs them at start', async () => {
    const dflt = wired('t');
    const ignored = await request(dflt.app)
      .post('/webhooks/alertmanager')
      .set('authorization', 'Bearer t')
      .send(crashLoop);
    expect(outcome(ignored)).toBe('ignored');
    expect(dflt.lines).toEqual([
      'isolation webhooks isolate on Falco alerts of priority Critical or more severe, any rule; on firing Alertmanager alerts with severity critical, any alertname, the pod named by the labels k8s_ns_name/k8s_pod_name, exported_namespace/exported_pod, namespace/pod, kubernetes_namespace/kubernetes_pod_name (all of them present on an alert must agree)',
    ]);
    expect(dflt.warnings).toEqual([]);

    const cfg = triggerConfig({
      alertmanagerSeverities: ['Warning', 'critical'],
      falcoMinimumPriority: 'notice',
      falcoRules: ['Terminal shell in container'],
    });
    if ('problem' in cfg) throw new Error(cfg.problem);
    const set = wired('t', cfg);
    const created = await request(set.app)
      .post('/webhooks/alertmanager')
      .set('authorization', 'Bearer t')
      .send(crashLoop);
    expect(outcome(created)).toBe('created');
    const falco = (rule: string) =>
      request(set.app)
        .post('/webhooks/falco')
        .set('authorization', 'Bearer t')
        .send({
          rule,
          priority: 'Notice',
          output_fields: { 'k8s.ns.name': 'shop', 'k8s.pod.name': 'cart-2' },
        });
    expect(outcome(await falco('Terminal shell in container'))).toBe('created');
    expect(outcome(await falco('Other rule'))).toBe('ignored');
    expect(set.lines).toEqual([
      'isolation webhooks isolate on Falco alerts of priority Notice or more severe, rules "Terminal shell in container"; on firing Alertmanager alerts with severity warning or critical, any alertname, the pod named by the labels k8s_ns_name/k8s_pod_name, exported_namespace/exported_pod, namespace/pod, kubernetes_namespace/kubernetes_pod_name (all of them present on an alert must agree)',
    ]);
  });

  it("warns of the alerts Alertmanager left out of a payload, and exposes their count with the controller's metrics", async () => {
    const w = wired('t');
    const res = await request(w.app)
      .post('/webhooks/alertmanager')
      .set('authorization', 'Bearer t')
      .send({ ...crashLoop, receiver: 'microseg', truncatedAlerts: 2 });
    expect(res.status).toBe(200);
    expect(w.warnings).toEqual([
      "Alertmanager left out 2 alerts (receiver microseg) because of the receiver's max_alerts: they were never sent here, so no Isolation they ask for was made; raise max_alerts on the receiver (0 = no limit)",
    ]);
    const family = w.wiring.metrics
      .families()
      .find((f) => f.name === 'microseg_isolation_alerts_truncated_total');
    expect(family?.type !== 'histogram' && family?.samples).toEqual([
      { labels: { receiver: 'microseg' }, value: 2 },
    ]);
  });

  it('warns when every firing Alertmanager alert isolates', () => {
    const cfg = triggerConfig({ alertmanagerSeverities: ['any'] });
    if ('problem' in cfg) throw new Error(cfg.problem);
    expect(cfg.alertmanager.severities).toEqual([]);
    const w = wired('t', cfg);
    expect(w.warnings).toEqual([
      'the Alertmanager webhook isolates on every firing alert that names a pod: the Alertmanager route to it is the only filter (set --alertmanager-severity or --alertmanager-alertname)',
    ]);
    const named = triggerConfig({ alertmanagerSeverities: ['any'], alertmanagerAlertnames: ['Shell'] });
    if ('problem' in named) throw new Error(named.problem);
    expect(wired('t', named).warnings).toEqual([]);
    expect(describeTriggers(DEFAULT_FALCO_CONFIG, { ...DEFAULT_ALERTMANAGER_CONFIG, severities: [] })).toBe(
      'isolation webhooks isolate on Falco alerts of priority Critical or more severe, any rule; on firing Alertmanager alerts with any severity or none, any alertname, the pod named by the labels k8s_ns_name/k8s_pod_name, exported_namespace/exported_pod, namespace/pod, kubernetes_namespace/kubernetes_pod_name (all of them present on an alert must agree)',
    );
  });

  it('triggerConfig: the defaults, and each bad value naming its flag', () => {
    expect(triggerConfig({})).toEqual({
      falco: DEFAULT_FALCO_CONFIG,
      alertmanager: DEFAULT_ALERTMANAGER_CONFIG,
    });
    expect(triggerConfig({ alertmanagerAlertnames: ['A', 'B'] })).toMatchObject({
      alertmanager: { alertnames: ['A', 'B'], severities: ['critical'] },
    });
    expect(
      triggerConfig({
        alertmanagerTargetLabels: ['k8s_ns_name/k8s_pod_name', 'ns/workload_pod', 'k8s_ns_name/k8s_pod_name'],
      }),
    ).toMatchObject({
      alertmanager: {
        targetLabels: [
          { namespace: 'k8s_ns_name', pod: 'k8s_pod_name' },
          { namespace: 'ns', pod: 'workload_pod' },
        ],
      },
    });
    const cases: [Parameters<typeof triggerConfig>[0], string][] = [
      [
        { alertmanagerSeverities: ['critical,warning'] },
        '--alertmanager-severity "critical,warning" is not a severity (letters, digits, "_", "." and "-"; repeat the flag for several)',
      ],
      [
        { alertmanagerSeverities: [''] },
        '--alertmanager-severity "" is not a severity (letters, digits, "_", "." and "-"; repeat the flag for several)',
      ],
      [
        { alertmanagerSeverities: ['any', 'critical'] },
        '--alertmanager-severity any cannot be given with other severities',
      ],
      [{ alertmanagerAlertnames: [' '] }, '--alertmanager-alertname must not be empty'],
      ...['k8s_ns_name', 'a/b/c', '/pod', 'ns/', 'k8s-ns/pod', '1ns/pod', 'ns/pod name'].map(
        (v): [Parameters<typeof triggerConfig>[0], string] => [
          { alertmanagerTargetLabels: [v] },
          `--alertmanager-target-labels ${JSON.stringify(v)} is not NS_LABEL/POD_LABEL (two Prometheus label names, e.g. k8s_ns_name/k8s_pod_name; repeat the flag for several)`,
        ],
      ),
      [
        { alertmanagerTargetLabels: ['pod/pod'] },
        '--alertmanager-target-labels "pod/pod" names the same label for the namespace and the pod',
      ],
      [
        { alertmanagerTargetLabels: ['namespace/pod', 'namespace/pod_name'] },
        '--alertmanager-target-labels "namespace/pod_name" shares a label with namespace/pod (each label belongs to one family)',
      ],
      [{ falcoRules: [''] }, '--falco-rule must not be empty'],
      [
        { falcoMinimumPriority: 'Severe' },
        '--falco-minimum-priority "Severe" is not one of Emergency, Alert, Critical, Error, Warning, Notice, Informational, Debug',
      ],
    ];
    for (const [flags, problem] of cases) expect(triggerConfig(flags)).toEqual({ problem });
  });
});

describe('the controller flags to the webhooks (isolationSettings, what `microseg controller` passes to wireIsolation)', () => {
  /** The webhooks `microseg controller` would serve with these flags (and a token file). */
  function fromFlags(values: IsolationFlagValues) {
    const file = join(dir, `token-${Math.random().toString(16).slice(2)}`);
    writeFileSync(file, 't');
    const settings = isolationSettings({ 'webhook-token-file': file, ...values });
    expect(settings.ignored).toBeUndefined();
    const kube = new FakeKube();
    const w = wireIsolation({
      kc: new KubeConfig(),
      kube,
      ...settings.wiring,
      log: () => {},
      warn: () => {},
    });
    const app = express();
    app.use(w.router!);
    const am = async (labels: Record<string, string>) =>
      outcome(
        await request(app)
          .post('/webhooks/alertmanager')
          .set('authorization', 'Bearer t')
          .send({
            version: '4',
            status: 'firing',
            alerts: [{ status: 'firing', labels, fingerprint: 'f1' }],
          }),
      );
    const falco = async (rule: string, priority: string) =>
      outcome(
        await request(app)
          .post('/webhooks/falco')
          .set('authorization', 'Bearer t')
          .send({ rule, priority, output_fields: { 'k8s.ns.name': 'shop', 'k8s.pod.name': 'cart-1' } }),
      );
    return { am, falco };
  }
  const pod = { namespace: 'shop', pod: 'cart-1' };
  const exporter = {
    alertname: 'FalcoCritical',
    severity: 'critical',
    namespace: 'falco',
    pod: 'falcosidekick-1',
    k8s_ns_name: 'shop',
    k8s_pod_name: 'cart-1',
  };

  it('each trigger flag reaches the webhooks', async () => {
    // Without flags: the defaults, each of which a flag below changes.
    const dflt = fromFlags({});
    expect(await dflt.am({ alertname: 'KubePodCrashLooping', severity: 'warning', ...pod })).toBe('ignored');
    expect(await dflt.am({ alertname: 'Other', severity: 'critical', ...pod })).toBe('created');
    expect(await dflt.am(exporter)).toBe('rejected');
    expect(await dflt.falco('Terminal shell in container', 'Notice')).toBe('ignored');
    expect(await dflt.falco('Other rule', 'Critical')).toBe('created');

    const severity = fromFlags({ 'alertmanager-severity': ['warning'] });
    expect(await severity.am({ alertname: 'KubePodCrashLooping', severity: 'warning', ...pod })).toBe(
      'created',
    );
    const alertname = fromFlags({ 'alertmanager-alertname': ['Shell'] });
    expect(await alertname.am({ alertname: 'Other', severity: 'critical', ...pod })).toBe('ignored');
    expect(await alertname.am({ alertname: 'Shell', severity: 'critical', ...pod })).toBe('created');
    const target = fromFlags({ 'alertmanager-target-labels': ['k8s_ns_name/k8s_pod_name'] });
    expect(await target.am(exporter)).toBe('created');
    const priority = fromFlags({ 'falco-minimum-priority': 'notice' });
    expect(await priority.falco('Terminal shell in container', 'Notice')).toBe('created');
    const rule = fromFlags({ 'falco-rule': ['Terminal shell in container'] });
    expect(await rule.falco('Other rule', 'Critical')).toBe('ignored');
    expect(await rule.falco('Terminal shell in container', 'Critical')).toBe('created');
  });

  it('trigger flags without the webhooks have no effect and are named in one line to log; bad values are still refused', () => {
    const flags: IsolationFlagValues = {
      'alertmanager-severity': ['critical'],
      'falco-minimum-priority': 'Critical',
    };
    // The stock manifest with --no-isolation: was exit 2 (a crash loop).
    expect(
      isolationSettings({
        ...flags,
        'webhook-token-file': '/etc/microseg/webhook/token',
        'no-isolation': true,
      }),
    ).toEqual({
      ignored:
        '--webhook-token-file, --alertmanager-severity, --falco-minimum-priority are ignored: --no-isolation turns the webhooks off',
    });
    expect(isolationSettings({ 'falco-rule': ['r'], 'no-isolation': true })).toEqual({
      ignored: '--falco-rule is ignored: --no-isolation turns the webhooks off',
    });
    expect(isolationSettings({ 'no-isolation': true })).toEqual({});
    // Without the token file line: was exit 2.
    expect(isolationSettings(flags)).toEqual({
      wiring: { falco: DEFAULT_FALCO_CONFIG, alertmanager: DEFAULT_ALERTMANAGER_CONFIG },
      ignored:
        '--alertmanager-severity, --falco-minimum-priority are ignored: the webhooks run only with --webhook-token-file, which is not given',
    });
    expect(isolationSettings({})).toEqual({
      wiring: { falco: DEFAULT_FALCO_CONFIG, alertmanager: DEFAULT_ALERTMANAGER_CONFIG },
    });
    const refused = (values: IsolationFlagValues) => {
      try {
        isolationSettings(values);
      } catch (err) {
        if (err instanceof UsageError) return err.message;
        throw err;
      }
      return 'accepted';
    };
    expect(refused({ 'no-isolation': true, 'falco-minimum-priority': 'Severe' })).toBe(
      '--falco-minimum-priority "Severe" is not one of Emergency, Alert, Critical, Error, Warning, Notice, Informational, Debug',
    );
    expect(refused({ 'alertmanager-target-labels': ['k8s_ns_name'] })).toBe(
      '--alertmanager-target-labels "k8s_ns_name" is not NS_LABEL/POD_LABEL (two Prometheus label names, e.g. k8s_ns_name/k8s_pod_name; repeat the flag for several)',
    );
    expect(refused({ 'webhook-token-file': '' })).toBe('--webhook-token-file must not be empty');
    expect(refused({ 'webhook-token-file': dir })).toBe(`--webhook-token-file ${dir}: not a file`);
  });
});
