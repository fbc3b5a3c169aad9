import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import express from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_ALERTMANAGER_CONFIG, DEFAULT_FALCO_CONFIG } from '../../src/isolate/triggers.ts';
import type { IsolationWiringOptions } from '../../src/isolate/wire.ts';
import { describeTriggers, triggerConfig, wireIsolation } from '../../src/isolate/wire.ts';
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
  return { app, kube, lines, warnings };
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

  it('passes the trigger settings to the webhooks and logs them at start', async () => {
    const dflt = wired('t');
    const ignored = await request(dflt.app)
      .post('/webhooks/alertmanager')
      .set('authorization', 'Bearer t')
      .send(crashLoop);
    expect(outcome(ignored)).toBe('ignored');
    expect(dflt.lines).toEqual([
      'isolation webhooks isolate on Falco alerts of priority Critical or more severe, any rule; on firing Alertmanager alerts with severity critical, any alertname',
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
      'isolation webhooks isolate on Falco alerts of priority Notice or more severe, rules "Terminal shell in container"; on firing Alertmanager alerts with severity warning or critical, any alertname',
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
      'isolation webhooks isolate on Falco alerts of priority Critical or more severe, any rule; on firing Alertmanager alerts with any severity or none, any alertname',
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
      [{ falcoRules: [''] }, '--falco-rule must not be empty'],
      [
        { falcoMinimumPriority: 'Severe' },
        '--falco-minimum-priority "Severe" is not one of Emergency, Alert, Critical, Error, Warning, Notice, Informational, Debug',
      ],
    ];
    for (const [flags, problem] of cases) expect(triggerConfig(flags)).toEqual({ problem });
  });
});
