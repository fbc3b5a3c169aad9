import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseIsolationSpec } from '../../src/isolate/api.ts';
import {
  DEFAULT_ALERTMANAGER_CONFIG,
  DEFAULT_FALCO_CONFIG,
  DEFAULT_ISOLATION,
  alertmanagerActions,
  falcoAction,
  normalizePriority,
  parseAlertmanagerPayload,
  parseFalcoAlert,
  PayloadError,
} from '../../src/isolate/triggers.ts';

const sample = (f: string): unknown =>
  JSON.parse(readFileSync(new URL(`../../../shared/samples/${f}`, import.meta.url), 'utf8'));
const fixture = (f: string): unknown =>
  JSON.parse(readFileSync(new URL(`fixtures/${f}`, import.meta.url), 'utf8'));
const NOW = '2026-11-28T18:00:00.000Z';

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
      reason: 'output_fields has no k8s.ns.name and k8s.pod.name (not a Kubernetes pod)',
    });
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
      reason:
        'alert 0f0e0d0c0b0a0908 has no namespace (namespace, kubernetes_namespace, k8s_ns_name) and pod (pod, kubernetes_pod_name, k8s_pod_name) labels',
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
    const cfg = { ...DEFAULT_ALERTMANAGER_CONFIG, namespaceLabels: ['ns'], podLabels: ['workload_pod'] };
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
