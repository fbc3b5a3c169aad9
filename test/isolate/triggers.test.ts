import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseIsolationSpec } from '../../src/isolate/api.ts';
import { crdSchema, schemaProblems } from '../crd-schema.ts';
import {
  DEFAULT_ALERTMANAGER_CONFIG,
  DEFAULT_FALCO_CONFIG,
  DEFAULT_ISOLATION,
  alertmanagerActions,
  falcoAction,
  isRfc3339Time,
  normalizePriority,
  parseAlertmanagerPayload,
  parseFalcoAlert,
  PayloadError,
  truncationNote,
} from '../../src/isolate/triggers.ts';

const sample = (f: string): unknown =>
  JSON.parse(readFileSync(new URL(`../../../shared/samples/${f}`, import.meta.url), 'utf8'));
const fixture = (f: string): unknown =>
  JSON.parse(readFileSync(new URL(`fixtures/${f}`, import.meta.url), 'utf8'));
const NOW = '2026-11-28T18:00:00.000Z';
const ANY_SEVERITY = { ...DEFAULT_ALERTMANAGER_CONFIG, severities: [] };

describe('Falco alerts', () => {
  it('parses the real sample: rule, priority, namespace and pod from output_fields', () => {
    const a = parseFalcoAlert(sample('falco-alert.json'));
    expect(a).toMatchObject({
      rule: 'Terminal shell in container',
      priority: 'Critical',
      namespace: 'default',
      pod: 'kubecon',
      hostname: 'falco-xczjd',
      source: 'syscall',
      tags: ['container', 'mitre_execution', 'shell'],
    });
  });

  it('parses the older-format sample without hostname, source and tags', () => {
    const a = parseFalcoAlert(sample('falco-alert-network.json'));
    expect(a.namespace).toBe('openfaas-fn');
    expect(a.pod).toBe('falco-pod-delete-7dc9f5fbb8-gbfk7');
    expect(a.priority).toBe('Notice');
    expect(a.tags).toEqual([]);
  });

  it('turns a Critical alert into one Isolation of that pod, with the incident recorded', () => {
    const act = falcoAction(
      parseFalcoAlert(sample('falco-alert.json')),
      DEFAULT_FALCO_CONFIG,
      DEFAULT_ISOLATION,
      NOW,
    );
    expect(act.action).toBe('isolate');
    if (act.action !== 'isolate') return;
    expect(act.namespace).toBe('default');
    expect(act.name).toMatch(/^falco-kubecon-[0-9a-f]{10}$/);
    const iso = act.isolation;
    expect(iso.spec?.target).toEqual({ pods: ['kubecon'] });
    expect(iso.spec?.reason).toBe('Falco: Terminal shell in container (Critical)');
    expect(iso.metadata.annotations?.['microseg.dev/alert-received-at']).toBe(NOW);
    // The built Isolation passes the same validation a kubectl-applied one does.
    expect(parseIsolationSpec(act.name, iso.spec).ok).toBe(true);
  });

  it('gives the same name to the same rule+pod and different names otherwise', () => {
    const base = sample('falco-alert.json') as Record<string, unknown>;
    const name = (b: unknown) => {
      const a = falcoAction(parseFalcoAlert(b), DEFAULT_FALCO_CONFIG, DEFAULT_ISOLATION, NOW);
      return a.action === 'isolate' ? a.name : undefined;
    };
    const again = { ...base, time: '2023-05-25T13:50:00Z', output: 'another line' };
    expect(name(again)).toBe(name(base));
    expect(name({ ...base, rule: 'Other rule' })).not.toBe(name(base));
    const otherPod = {
      ...base,
      output_fields: { ...(base.output_fields as object), 'k8s.pod.name': 'kubecon-2' },
    };
    expect(name(otherPod)).not.toBe(name(base));
  });

  it('ignores alerts below the threshold, outside the allow-list, or without a pod', () => {
    const notice = parseFalcoAlert(sample('falco-alert-network.json'));
    expect(falcoAction(notice, DEFAULT_FALCO_CONFIG, DEFAULT_ISOLATION, NOW)).toEqual({
      action: 'ignore',
      reason: 'priority Notice is below Critical',
    });
    expect(falcoAction(notice, { minimumPriority: 'Notice', rules: [] }, DEFAULT_ISOLATION, NOW).action).toBe(
      'isolate',
    );
    const crit = parseFalcoAlert(sample('falco-alert.json'));
    expect(
      falcoAction(crit, { minimumPriority: 'Debug', rules: ['Write below etc'] }, DEFAULT_ISOLATION, NOW),
    ).toEqual({
      action: 'ignore',
      reason: 'rule "Terminal shell in container" is not in the allow-list',
    });
    const host = parseFalcoAlert({
      rule: 'r',
      priority: 'Emergency',
      output_fields: { 'k8s.ns.name': null, 'k8s.pod.name': null },
    });
    expect(falcoAction(host, DEFAULT_FALCO_CONFIG, DEFAULT_ISOLATION, NOW)).toEqual({
      action: 'ignore',
      reason:
        'output_fields names no pod (neither k8s.ns.name / k8s.pod.name nor k8smeta.ns.name / k8smeta.pod.name): not a Kubernetes pod',
    });
  });

  it('reads the k8smeta plugin fields too; both sources must agree when both are set', () => {
    // Was: an alert enriched by the k8smeta plugin only was ignored as "not a Kubernetes pod".
    const act = (fields: Record<string, string | null>) =>
      falcoAction(
        parseFalcoAlert({ rule: 'Terminal shell in container', priority: 'Critical', output_fields: fields }),
        DEFAULT_FALCO_CONFIG,
        DEFAULT_ISOLATION,
        NOW,
      );
    const target = (a: ReturnType<typeof act>) =>
      a.action === 'isolate' ? `${a.namespace}/${a.pod}` : `${a.action}: ${'reason' in a ? a.reason : ''}`;
    expect(target(act({ 'k8smeta.ns.name': 'shop', 'k8smeta.pod.name': 'cart-1' }))).toBe('shop/cart-1');
    // The runtime's fields unknown (<NA>, null, empty): the plugin's are used, and the other way round.
    expect(
      target(
        act({
          'k8s.ns.name': '<NA>',
          'k8s.pod.name': null,
          'k8smeta.ns.name': 'shop',
          'k8smeta.pod.name': 'cart-1',
        }),
      ),
    ).toBe('shop/cart-1');
    expect(
      target(
        act({
          'k8s.ns.name': 'shop',
          'k8s.pod.name': 'cart-1',
          'k8smeta.ns.name': '',
          'k8smeta.pod.name': '<NA>',
        }),
      ),
    ).toBe('shop/cart-1');
    // Both set and equal: that pod, under the same Isolation name as from either source alone.
    const both = act({
      'k8s.ns.name': 'shop',
      'k8s.pod.name': 'cart-1',
      'k8smeta.ns.name': 'shop',
      'k8smeta.pod.name': 'cart-1',
    });
    const alone = act({ 'k8s.ns.name': 'shop', 'k8s.pod.name': 'cart-1' });
    expect(both.action === 'isolate' && alone.action === 'isolate' && both.name === alone.name).toBe(true);
    // A field one source knows and the other does not is taken from the one that knows it.
    expect(target(act({ 'k8s.ns.name': 'shop', 'k8smeta.pod.name': 'cart-1' }))).toBe('shop/cart-1');
    // Set in both and different: neither pod is isolated, and the alert is rejected naming both.
    expect(
      target(
        act({
          'k8s.ns.name': 'shop',
          'k8s.pod.name': 'cart-1',
          'k8smeta.ns.name': 'shop',
          'k8smeta.pod.name': 'cart-2',
        }),
      ),
    ).toBe('reject: output_fields name different pods: k8s.pod.name "cart-1", k8smeta.pod.name "cart-2"');
    expect(
      target(
        act({
          'k8s.ns.name': 'shop',
          'k8s.pod.name': 'x',
          'k8smeta.ns.name': 'kube-system',
          'k8smeta.pod.name': 'x',
        }),
      ),
    ).toBe(
      'reject: output_fields name different namespaces: k8s.ns.name "shop", k8smeta.ns.name "kube-system"',
    );
    // Below the threshold it is ignored, not rejected.
    const low = falcoAction(
      parseFalcoAlert({
        rule: 'r',
        priority: 'Notice',
        output_fields: { 'k8s.pod.name': 'a', 'k8smeta.pod.name': 'b', 'k8s.ns.name': 'shop' },
      }),
      DEFAULT_FALCO_CONFIG,
      DEFAULT_ISOLATION,
      NOW,
    );
    expect(low.action).toBe('ignore');
    // A plugin value that is no name is a bad payload, as the runtime's is.
    expect(() =>
      parseFalcoAlert({ rule: 'r', priority: 'Critical', output_fields: { 'k8smeta.pod.name': 'Bad_Pod' } }),
    ).toThrow('output_fields["k8smeta.pod.name"] "Bad_Pod" is not a pod name');
  });

  it('accepts Falcosidekick lowercase priorities and its uuid', () => {
    expect(normalizePriority('critical')).toBe('Critical');
    expect(normalizePriority('info')).toBe('Informational');
    const a = parseFalcoAlert({
      ...(sample('falco-alert.json') as object),
      priority: 'critical',
      uuid: 'u-1',
    });
    expect(a.uuid).toBe('u-1');
  });

  it.each([
    [[], 'body must be a JSON object (a Falco alert)'],
    [{ priority: 'Critical' }, 'rule must be a non-empty string'],
    [{ rule: 'r' }, 'priority must be a string'],
    [
      { rule: 'r', priority: 'Severe' },
      'priority "Severe" is not one of Emergency, Alert, Critical, Error, Warning, Notice, Informational, Debug',
    ],
    [{ rule: 'r', priority: 'Critical', time: 'yesterday' }, 'time "yesterday" is not an RFC 3339 time'],
    [{ rule: 'r', priority: 'Critical', tags: 'a,b' }, 'tags must be a list of strings'],
    [{ rule: 'r', priority: 'Critical', output_fields: [] }, 'output_fields must be an object'],
    [
      { rule: 'r', priority: 'Critical', output_fields: { 'k8s.pod.name': 7 } },
      'output_fields["k8s.pod.name"] must be a string or null',
    ],
    [
      { rule: 'r', priority: 'Critical', output_fields: { 'k8s.ns.name': 'Bad_NS', 'k8s.pod.name': 'p' } },
      'output_fields["k8s.ns.name"] "Bad_NS" is not a namespace name',
    ],
  ])('rejects %j: %s', (body, message) => {
    expect(() => parseFalcoAlert(body)).toThrow(new PayloadError(message));
  });

  it('never throws anything but PayloadError on arbitrary JSON', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        try {
          parseFalcoAlert(v);
        } catch (e) {
          expect(e).toBeInstanceOf(PayloadError);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('Alertmanager webhook', () => {
  it('isolates the pod named by the Falcosidekick labels and ignores alerts without a pod', () => {
    const p = parseAlertmanagerPayload(fixture('alertmanager-firing.json'));
    const acts = alertmanagerActions(p, DEFAULT_ALERTMANAGER_CONFIG, DEFAULT_ISOLATION, NOW);
    expect(acts).toHaveLength(2);
    expect(acts[0]).toMatchObject({ action: 'isolate', namespace: 'shop', pod: 'cart-7d9f8b6c5-x2x4k' });
    expect(acts[0]?.action === 'isolate' && acts[0].name).toMatch(
      /^alert-cart-7d9f8b6c5-x2x4k-[0-9a-f]{10}$/,
    );
    expect(acts[1]).toEqual({
      action: 'ignore',
      reason: 'alert 0f0e0d0c0b0a0908 has no severity label (isolating severities: critical)',
    });
    const any = alertmanagerActions(p, ANY_SEVERITY, DEFAULT_ISOLATION, NOW);
    expect(any[1]).toEqual({
      action: 'ignore',
      reason:
        'alert 0f0e0d0c0b0a0908 has none of the label pairs k8s_ns_name/k8s_pod_name, exported_namespace/exported_pod, namespace/pod, kubernetes_namespace/kubernetes_pod_name',
    });
  });

  it('decides per alert status; resolved releases only when configured, under the same name', () => {
    const body = fixture('alertmanager-firing.json') as { alerts: Record<string, unknown>[] };
    const firing = alertmanagerActions(
      parseAlertmanagerPayload(body),
      DEFAULT_ALERTMANAGER_CONFIG,
      DEFAULT_ISOLATION,
      NOW,
    );
    const resolvedBody = {
      ...body,
      status: 'resolved',
      alerts: [{ ...body.alerts[0], status: 'resolved', endsAt: NOW }],
    };
    const kept = alertmanagerActions(
      parseAlertmanagerPayload(resolvedBody),
      DEFAULT_ALERTMANAGER_CONFIG,
      DEFAULT_ISOLATION,
      NOW,
    );
    expect(kept[0]).toMatchObject({
      action: 'ignore',
      reason: 'resolved alerts do not release (releaseOnResolve is off)',
    });
    const released = alertmanagerActions(
      parseAlertmanagerPayload(resolvedBody),
      { ...DEFAULT_ALERTMANAGER_CONFIG, releaseOnResolve: true },
      DEFAULT_ISOLATION,
      NOW,
    );
    expect(released[0]).toMatchObject({ action: 'release', namespace: 'shop' });
    expect(released[0]?.action === 'release' && released[0].name).toBe(
      firing[0]?.action === 'isolate' && firing[0].name,
    );
  });

  it('honours the alertname allow-list and custom label keys', () => {
    const p = parseAlertmanagerPayload({
      version: '4',
      status: 'firing',
      alerts: [
        { status: 'firing', labels: { alertname: 'X', ns: 'a', workload_pod: 'p-1' }, fingerprint: 'ff' },
      ],
    });
    const cfg = { ...ANY_SEVERITY, targetLabels: [{ namespace: 'ns', pod: 'workload_pod' }] };
    expect(alertmanagerActions(p, cfg, DEFAULT_ISOLATION, NOW)[0]).toMatchObject({
      action: 'isolate',
      namespace: 'a',
      pod: 'p-1',
    });
    expect(alertmanagerActions(p, { ...cfg, alertnames: ['Y'] }, DEFAULT_ISOLATION, NOW)[0]).toEqual({
      action: 'ignore',
      reason: 'alertname "X" is not in the allow-list',
    });
  });

  /** One firing alert with these labels, decided on. */
  const decide = (labels: Record<string, string>, cfg = DEFAULT_ALERTMANAGER_CONFIG) =>
    alertmanagerActions(
      parseAlertmanagerPayload({
        version: '4',
        status: 'firing',
        alerts: [{ status: 'firing', labels, fingerprint: 'f00d' }],
      }),
      cfg,
      DEFAULT_ISOLATION,
      NOW,
    )[0];
  const target = (a: ReturnType<typeof decide>) =>
    a?.action === 'isolate' ? `${a.namespace}/${a.pod} ${a.isolation.metadata.namespace}` : a;

  it('isolates the pod when the one label family present names it, or every family present agrees', () => {
    // Falcosidekick's Alertmanager output: k8s_* only.
    const sidekick = {
      alertname: 'Terminal shell in container',
      source: 'falco',
      severity: 'critical',
      k8s_ns_name: 'shop',
      k8s_pod_name: 'cart-7d9f-x2k4q',
    };
    expect(target(decide(sidekick))).toBe('shop/cart-7d9f-x2k4q shop');
    const families: [Record<string, string>, string][] = [
      [{ k8s_ns_name: 'a', k8s_pod_name: 'p-1' }, 'a/p-1 a'],
      [{ exported_namespace: 'b', exported_pod: 'p-2' }, 'b/p-2 b'],
      [{ namespace: 'c', pod: 'p-3' }, 'c/p-3 c'],
      [{ kubernetes_namespace: 'd', kubernetes_pod_name: 'p-4' }, 'd/p-4 d'],
      // Agreeing families: the pod they all name.
      [{ k8s_ns_name: 'c', k8s_pod_name: 'p-3', namespace: 'c', pod: 'p-3' }, 'c/p-3 c'],
      [
        {
          k8s_ns_name: 'c',
          k8s_pod_name: 'p-3',
          exported_namespace: 'c',
          exported_pod: 'p-3',
          namespace: 'c',
          pod: 'p-3',
          kubernetes_namespace: 'c',
          kubernetes_pod_name: 'p-3',
        },
        'c/p-3 c',
      ],
      // An empty label is no label (Prometheus drops them).
      [{ k8s_ns_name: '', k8s_pod_name: '', namespace: 'c', pod: 'p-3' }, 'c/p-3 c'],
    ];
    for (const [labels, want] of families)
      expect(target(decide(labels, ANY_SEVERITY)), JSON.stringify(labels)).toBe(want);
  });

  it("rejects the reviewer's forged payloads: a workload's own labels neither pick the target nor stop its isolation", () => {
    // With honor_labels: false, namespace/pod are the scrape target (the workload); k8s_* and exported_*
    // can be labels the workload put on its own series. Each was coredns isolated, or evil-1 let go.
    const evil = { alertname: 'CryptoMiner', severity: 'critical', namespace: 'tenant-a', pod: 'evil-1' };
    expect(decide({ ...evil, k8s_ns_name: 'kube-system', k8s_pod_name: 'coredns-5d78c9869d-x7k2p' })).toEqual(
      {
        action: 'reject',
        reason:
          'alert f00d names different pods: k8s_ns_name/k8s_pod_name kube-system/coredns-5d78c9869d-x7k2p, namespace/pod tenant-a/evil-1; every label family on an alert must name the same pod (--alertmanager-target-labels reads only the families given)',
      },
    );
    expect(
      decide({ ...evil, exported_namespace: 'kube-system', exported_pod: 'coredns-5d78c9869d-x7k2p' }),
    ).toEqual({
      action: 'reject',
      reason:
        'alert f00d names different pods: exported_namespace/exported_pod kube-system/coredns-5d78c9869d-x7k2p, namespace/pod tenant-a/evil-1; every label family on an alert must name the same pod (--alertmanager-target-labels reads only the families given)',
    });
    // Was ignored ("no pod to isolate"): evil-1 escaped unseen.
    expect(decide({ ...evil, k8s_ns_name: 'x' })).toEqual({
      action: 'reject',
      reason:
        'alert f00d has the label k8s_ns_name but not k8s_pod_name: a pod is named by both labels of a family, never completed from another',
    });
    // The same pod named twice, once by the workload itself, is no forgery.
    expect(target(decide({ ...evil, k8s_ns_name: 'tenant-a', k8s_pod_name: 'evil-1' }))).toBe(
      'tenant-a/evil-1 tenant-a',
    );
  });

  it('a falco-exporter alert (scrape target plus the affected pod) is rejected by default and isolates the affected pod when only k8s_* are read', () => {
    const exporter = {
      alertname: 'FalcoCritical',
      severity: 'critical',
      namespace: 'falco',
      pod: 'falcosidekick-5c7d9-abcde',
      k8s_ns_name: 'shop',
      k8s_pod_name: 'cart-7d9f-x2k4q',
    };
    expect(decide(exporter)).toEqual({
      action: 'reject',
      reason:
        'alert f00d names different pods: k8s_ns_name/k8s_pod_name shop/cart-7d9f-x2k4q, namespace/pod falco/falcosidekick-5c7d9-abcde; every label family on an alert must name the same pod (--alertmanager-target-labels reads only the families given)',
    });
    const k8sOnly = {
      ...DEFAULT_ALERTMANAGER_CONFIG,
      targetLabels: [{ namespace: 'k8s_ns_name', pod: 'k8s_pod_name' }],
    };
    expect(target(decide(exporter, k8sOnly))).toBe('shop/cart-7d9f-x2k4q shop');
    // Reading one family, the others are not looked at; without it the alert names no pod.
    expect(decide({ ...exporter, k8s_ns_name: '', k8s_pod_name: '' }, k8sOnly)).toEqual({
      action: 'ignore',
      reason: 'alert f00d has none of the label pairs k8s_ns_name/k8s_pod_name',
    });
  });

  it('a family with one of its two labels is rejected naming them, never completed from another family', () => {
    expect(
      decide({ k8s_pod_name: 'cart-1', namespace: 'falco', pod: 'falcosidekick-1' }, ANY_SEVERITY),
    ).toEqual({
      action: 'reject',
      reason:
        'alert f00d has the label k8s_pod_name but not k8s_ns_name: a pod is named by both labels of a family, never completed from another',
    });
    expect(decide({ exported_pod: 'cart-1', namespace: 'monitoring' }, ANY_SEVERITY)).toEqual({
      action: 'reject',
      reason:
        'alert f00d has the label exported_pod but not exported_namespace: a pod is named by both labels of a family, never completed from another',
    });
    expect(
      decide({ k8s_ns_name: 'shop', k8s_pod_name: 'cart-1', namespace: 'monitoring' }, ANY_SEVERITY),
    ).toEqual({
      action: 'reject',
      reason:
        'alert f00d has the label namespace but not pod: a pod is named by both labels of a family, never completed from another',
    });
    expect(decide({ namespace: 'Bad_NS', pod: 'p' }, ANY_SEVERITY)).toEqual({
      action: 'reject',
      reason: 'alert f00d: label namespace "Bad_NS" is not a namespace name',
    });
    expect(decide({ namespace: 'shop', pod: 'Bad/pod' }, ANY_SEVERITY)).toEqual({
      action: 'reject',
      reason: 'alert f00d: label pod "Bad/pod" is not a pod name',
    });
    // A forged family with a bad name is rejected too, not skipped.
    expect(
      decide({ namespace: 'shop', pod: 'cart-1', k8s_ns_name: 'A', k8s_pod_name: 'x' }, ANY_SEVERITY),
    ).toEqual({
      action: 'reject',
      reason: 'alert f00d: label k8s_ns_name "A" is not a namespace name',
    });
  });

  it('isolates only on severity critical by default; the severities are configurable', () => {
    const crashLoop = {
      alertname: 'KubePodCrashLooping',
      severity: 'warning',
      namespace: 'shop',
      pod: 'cart-7d9f-x2k4q',
    };
    expect(decide(crashLoop)).toEqual({
      action: 'ignore',
      reason: 'severity "warning" is not one of the isolating severities (critical)',
    });
    expect(target(decide({ ...crashLoop, severity: 'critical' }))).toBe('shop/cart-7d9f-x2k4q shop');
    expect(target(decide({ ...crashLoop, severity: 'Critical' }))).toBe('shop/cart-7d9f-x2k4q shop');
    const { severity: _, ...noSeverity } = crashLoop;
    expect(decide(noSeverity)).toEqual({
      action: 'ignore',
      reason: 'alert f00d has no severity label (isolating severities: critical)',
    });
    const cfg = { ...DEFAULT_ALERTMANAGER_CONFIG, severities: ['critical', 'warning'] };
    expect(target(decide(crashLoop, cfg))).toBe('shop/cart-7d9f-x2k4q shop');
    expect(target(decide(noSeverity, ANY_SEVERITY))).toBe('shop/cart-7d9f-x2k4q shop');
  });

  it.each([
    ['1', false],
    ['yesterday', false],
    ['2026-11-28', false],
    ['2026-11-28T17:00:00', false],
    ['2026-11-28 17:00:00Z', false],
    ['2026-11-28T17:00:00+0100', false],
    ['2026-11-28T17:00:00.Z', false],
    ['2026-11-28T24:00:00Z', false],
    ['2026-11-28T17:60:00Z', false],
    ['2026-02-29T00:00:00Z', false],
    ['2026-13-01T00:00:00Z', false],
    ['2026-11-28T17:00:00+24:00', false],
    ['2026-11-28T17:00:00Z ', false],
    ['2026-11-28T17:00:00Z', true],
    ['2026-11-28t17:00:00z', true],
    ['2026-11-28T17:00:00.123456789Z', true],
    ['2026-11-28T17:00:00.5-07:30', true],
    ['2028-02-29T00:00:00+00:00', true],
    ['2016-12-31T23:59:60Z', true],
    ['0001-01-01T00:00:00Z', true],
  ])('RFC 3339: %j is %s', (text, ok) => {
    expect(isRfc3339Time(text)).toBe(ok);
  });

  it('names the field whose time is not RFC 3339 (Date.parse took "1")', () => {
    const am = (k: string) => () =>
      parseAlertmanagerPayload({
        version: '4',
        status: 'firing',
        alerts: [{ status: 'firing', [k]: '1' }],
      });
    expect(am('startsAt')).toThrow(new PayloadError('alerts[0].startsAt "1" is not an RFC 3339 time'));
    expect(am('endsAt')).toThrow(new PayloadError('alerts[0].endsAt "1" is not an RFC 3339 time'));
    expect(() => parseFalcoAlert({ rule: 'r', priority: 'Critical', time: '1' })).toThrow(
      new PayloadError('time "1" is not an RFC 3339 time'),
    );
    // The real samples' times pass.
    expect(parseFalcoAlert(sample('falco-alert.json')).time).toBeDefined();
    expect(parseAlertmanagerPayload(fixture('alertmanager-firing.json')).alerts[0]?.endsAt).toBe(
      '0001-01-01T00:00:00Z',
    );
  });

  it.each([
    ['x', 'body must be a JSON object (an Alertmanager webhook payload)'],
    [{ version: 4, status: 'firing', alerts: [] }, 'version 4 is not supported (expected "4")'],
    [{ version: '4', status: 'pending', alerts: [] }, 'status "pending" is not one of firing, resolved'],
    [{ version: '4', status: 'firing' }, 'alerts must be a list'],
    [{ version: '4', status: 'firing', alerts: [1] }, 'alerts[0] must be an object'],
    [
      { version: '4', status: 'firing', alerts: [{ status: 'ok' }] },
      'alerts[0].status "ok" is not one of firing, resolved',
    ],
    [
      { version: '4', status: 'firing', alerts: [{ status: 'firing', labels: { a: 1 } }] },
      'alerts[0].labels.a must be a string',
    ],
    [
      { version: '4', status: 'firing', alerts: [{ status: 'firing', startsAt: 'soon' }] },
      'alerts[0].startsAt "soon" is not an RFC 3339 time',
    ],
    [
      { version: '4', status: 'firing', alerts: [{ status: 'firing', fingerprint: '../x' }] },
      'alerts[0].fingerprint "../x" is not a fingerprint',
    ],
  ])('rejects %j: %s', (body, message) => {
    expect(() => parseAlertmanagerPayload(body)).toThrow(new PayloadError(message));
  });

  it('reads truncatedAlerts, 0 when absent', () => {
    const body = fixture('alertmanager-firing.json') as Record<string, unknown>;
    expect(parseAlertmanagerPayload({ ...body, truncatedAlerts: 5 }).truncatedAlerts).toBe(5);
    const { truncatedAlerts: _t, ...without } = body;
    expect(parseAlertmanagerPayload(without).truncatedAlerts).toBe(0);
  });

  it('takes a truncatedAlerts that is not a count as 0 and names it, rather than refusing the alerts', () => {
    // A 400 would make Alertmanager drop the whole payload, the alerts that did come with it.
    const body = fixture('alertmanager-firing.json') as Record<string, unknown>;
    for (const [value, shown] of [
      [-1, '-1'],
      ['2', '"2"'],
      [1.5, '1.5'],
    ] as const) {
      const p = parseAlertmanagerPayload({ ...body, truncatedAlerts: value });
      expect([value, p.truncatedAlerts, p.truncatedAlertsInvalid, p.alerts.length]).toEqual([
        value,
        0,
        shown,
        (body.alerts as unknown[]).length,
      ]);
      expect(truncationNote(p)).toMatch(
        /^truncatedAlerts .* is not a count \(a whole number, 0 or more\): ignored/,
      );
      expect(truncationNote(p)).toContain(`truncatedAlerts ${shown} of a payload`);
    }
    expect(parseAlertmanagerPayload({ ...body, truncatedAlerts: 2 }).truncatedAlertsInvalid).toBeUndefined();
  });

  it('never throws anything but PayloadError on arbitrary JSON', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.jsonValue(),
          fc.record({
            version: fc.constant('4'),
            status: fc.constant('firing'),
            alerts: fc.array(fc.jsonValue()),
          }),
        ),
        (v) => {
          try {
            parseAlertmanagerPayload(v);
          } catch (e) {
            expect(e).toBeInstanceOf(PayloadError);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('the Isolations the webhooks create', () => {
  it('fit the CRD schema however long the names the alert brings (rule, uuid, hostname, receiver)', () => {
    const long = 'x'.repeat(2000);
    const schema = crdSchema('microseg.dev_isolations.yaml');
    const falco = falcoAction(
      parseFalcoAlert({
        ...(sample('falco-alert.json') as Record<string, unknown>),
        rule: long,
        uuid: long,
        hostname: `node-${long}`,
      }),
      { ...DEFAULT_FALCO_CONFIG, rules: [] },
      DEFAULT_ISOLATION,
      NOW,
    );
    const body = fixture('alertmanager-firing.json') as { alerts: Record<string, unknown>[] };
    const [alert] = alertmanagerActions(
      parseAlertmanagerPayload({ ...body, receiver: `team-${long}`, alerts: body.alerts.slice(0, 1) }),
      DEFAULT_ALERTMANAGER_CONFIG,
      DEFAULT_ISOLATION,
      NOW,
    );
    for (const act of [falco, alert]) {
      expect(act?.action).toBe('isolate');
      if (act?.action !== 'isolate') continue;
      expect(schemaProblems(schema, act.isolation)).toEqual([]);
      expect(act.isolation.spec?.requestedBy).toHaveLength(256);
    }
  });
});
