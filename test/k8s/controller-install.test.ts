/**
 * Installation: `kubectl apply -k manifests/` against a real kube-apiserver, `kubectl explain`, the
 * CRD schema rejecting invalid Segmentations with exact messages, and taking every object the documents
 * show.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createNamespace, sharedCluster, uniqueName } from '../cluster/index.ts';
import { MAX_DURATION, parseSegmentationSpec } from '../../src/controller/api.ts';
import { parseIsolationSpec } from '../../src/isolate/api.ts';
import { DEFAULT_SERVICE_NAME } from '../../src/server/hosts.ts';
import { install } from '../controller/k8s-helpers.ts';
import { documentedExamples } from '../docs-examples.ts';
import { applyCrds } from '../controller/k8s-helpers.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const cluster = sharedCluster();

function seg(name: string, spec: Record<string, unknown>): string {
  return JSON.stringify({
    apiVersion: 'microseg.dev/v1alpha1',
    kind: 'Segmentation',
    metadata: { name },
    spec,
  });
}

describe('install with kubectl apply -k manifests/', () => {
  it('installs CRDs, namespace, RBAC, Deployment, Service, PodDisruptionBudget and NetworkPolicies', async () => {
    const r = await cluster.kubectl(['apply', '-k', `${root}manifests`]);
    expect(r.code, r.stderr).toBe(0);
    // Only warnings (objects another test installed with server-side apply first), never errors.
    for (const line of r.stderr.split('\n').filter(Boolean)) expect(line).toMatch(/^Warning: /);
    for (const line of [
      'customresourcedefinition.apiextensions.k8s.io/segmentations.microseg.dev',
      'customresourcedefinition.apiextensions.k8s.io/proposednetworkpolicies.microseg.dev',
      'customresourcedefinition.apiextensions.k8s.io/learnededgesets.microseg.dev',
      'namespace/microseg-system',
      'serviceaccount/microseg-controller',
      'clusterrole.rbac.authorization.k8s.io/microseg-controller',
      'role.rbac.authorization.k8s.io/microseg-leader-election',
      'deployment.apps/microseg-controller',
      'service/microseg-controller',
      'poddisruptionbudget.policy/microseg-controller',
      'networkpolicy.networking.k8s.io/microseg-default-deny',
      'networkpolicy.networking.k8s.io/microseg-controller',
    ])
      expect(r.stdout).toContain(line);
    // microseg segments itself: the API server took its NetworkPolicies as they are written (a named
    // port, a rule with ports and no peer), and they select the Deployment's pods.
    const np = await cluster.kubectl(['get', 'networkpolicy', '-n', 'microseg-system', '-o', 'json']);
    expect(np.code, np.stderr).toBe(0);
    const policies = (
      JSON.parse(np.stdout) as {
        items: { metadata: { name: string }; spec: Record<string, unknown> }[];
      }
    ).items;
    const byName = new Map(policies.map((p) => [p.metadata.name, p.spec]));
    expect(byName.get('microseg-default-deny')).toEqual({
      podSelector: {},
      policyTypes: ['Ingress', 'Egress'],
    });
    const controller = byName.get('microseg-controller') as {
      podSelector: { matchLabels: Record<string, string> };
      ingress: { ports: unknown[] }[];
      egress: { to?: unknown[]; ports: unknown[] }[];
    };
    expect(controller.ingress[0]!.ports).toEqual([{ port: 'http', protocol: 'TCP' }]);
    expect(controller.egress.map((e) => [e.to === undefined, e.ports])).toEqual([
      [
        true,
        [
          { port: 443, protocol: 'TCP' },
          { port: 6443, protocol: 'TCP' },
        ],
      ],
      [
        false,
        [
          { port: 53, protocol: 'UDP' },
          { port: 53, protocol: 'TCP' },
        ],
      ],
      [false, [{ port: 4245, protocol: 'TCP' }]],
    ]);
    await cluster.kubectl([
      'wait',
      '--for=condition=Established',
      'crd/segmentations.microseg.dev',
      '--timeout=30s',
    ]);
    const dep = await cluster.kubectl([
      'get',
      'deploy',
      '-n',
      'microseg-system',
      'microseg-controller',
      '-o',
      'json',
    ]);
    const d = JSON.parse(dep.stdout);
    expect(d.spec.replicas).toBe(2);
    const c = d.spec.template.spec.containers[0];
    expect(c.securityContext.readOnlyRootFilesystem).toBe(true);
    expect(d.spec.template.spec.securityContext.runAsNonRoot).toBe(true);
    expect(c.args).toContain('--leader-elect');
    expect(d.spec.template.metadata.labels).toMatchObject(controller.podSelector.matchLabels);
    expect(c.ports).toContainEqual(expect.objectContaining({ name: 'http', containerPort: 8080 }));
    // The page answers its Service's in-cluster names: --service-name's default is the Service the
    // manifests install, in the namespace the Downward API gives the pod as $POD_NAMESPACE.
    const svc = await cluster.kubectl([
      'get',
      'service',
      '-n',
      'microseg-system',
      DEFAULT_SERVICE_NAME,
      '-o',
      'json',
    ]);
    expect(svc.code, svc.stderr).toBe(0);
    const service = JSON.parse(svc.stdout) as { spec: { selector: Record<string, string> } };
    expect(d.spec.template.metadata.labels).toMatchObject(service.spec.selector);
    expect(c.env).toContainEqual({
      name: 'POD_NAMESPACE',
      valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } },
    });
    expect(
      c.args.filter((a: string) => a.startsWith('--service-name') || a.startsWith('--cluster-domain')),
    ).toEqual([]);
  });

  it('kubectl explain documents every Segmentation field', async () => {
    await cluster.kubectl([
      'wait',
      '--for=condition=Established',
      'crd/segmentations.microseg.dev',
      '--timeout=30s',
    ]);
    const r = await cluster.kubectl(['explain', 'segmentation.spec']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('namespaceSelector');
    expect(r.stdout).toContain('Learn: ingest flows and keep ProposedNetworkPolicies current');
    const w = await cluster.kubectl(['explain', 'segmentation.spec.audit.window']);
    expect(w.stdout).toContain('AuditClean becomes True only after the audit has run this long');
  });

  it('the schema rejects invalid Segmentations with clear messages', async () => {
    await cluster.kubectl([
      'wait',
      '--for=condition=Established',
      'crd/segmentations.microseg.dev',
      '--timeout=30s',
    ]);
    const cases: [string, string, string][] = [
      [
        'bad-mode',
        seg('bad-mode', { namespaceSelector: {}, mode: 'Block' }),
        'spec.mode: Unsupported value: "Block": supported values: "Learn", "Audit", "Enforce"',
      ],
      ['no-selector', seg('no-selector', { mode: 'Learn' }), 'spec.namespaceSelector: Required value'],
      [
        'bad-window',
        seg('bad-window', { namespaceSelector: {}, audit: { window: '5 minutes' } }),
        'spec.audit.window: Invalid value: "5 minutes": spec.audit.window in body should match',
      ],
      [
        'window-too-long',
        seg('window-too-long', {
          namespaceSelector: {},
          audit: { window: '200h' },
          learning: { ruleExpiry: '1h' },
        }),
        'spec.audit.window must not be longer than spec.learning.ruleExpiry',
      ],
      [
        'bad-expr',
        seg('bad-expr', { namespaceSelector: { matchExpressions: [{ key: 'team', operator: 'In' }] } }),
        'values must be non-empty for In and NotIn, and empty for Exists and DoesNotExist',
      ],
      [
        'x'.repeat(41),
        seg('x'.repeat(41), { namespaceSelector: {} }),
        'metadata.name must be at most 40 characters',
      ],
      [
        'short-expiry',
        seg('short-expiry', { namespaceSelector: {}, learning: { ruleExpiry: '10s' } }),
        'spec.learning.ruleExpiry: Invalid value: "10s": must be at least 1m',
      ],
      [
        'forever',
        seg('forever', { namespaceSelector: {}, learning: { ruleExpiry: '2562047h47m16.854775808s' } }),
        `spec.learning.ruleExpiry: Invalid value: "string": type conversion error from 'string' to 'google.protobuf.Duration' evaluating rule: must be at least 1m`,
      ],
    ];
    for (const [name, body, message] of cases) {
      const r = await cluster.kubectl(['apply', '-f', '-'], { input: body });
      expect(r.code, name).not.toBe(0);
      expect(r.stderr, name).toContain(message);
    }
    // A malformed duration was also refused by every CEL rule that reads it, as a type conversion error
    // naming the rule (`spec.audit.window must not be longer than spec.learning.ruleExpiry`, `must be at
    // least 1s`): two more problems the spec does not have. Now only the pattern says what is wrong.
    for (const spec of [
      { namespaceSelector: {}, audit: { window: '5 minutes' } },
      { namespaceSelector: {}, learning: { ruleExpiry: '1 week' } },
    ]) {
      const r = await cluster.kubectl(['apply', '-f', '-'], { input: seg('bad-duration', spec) });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('in body should match');
      expect(r.stderr).not.toContain('type conversion error');
      expect(r.stderr).not.toContain('must not be longer than');
    }
    // The longest duration CEL's duration() takes is taken, by the API server and by the controller.
    const longest = { namespaceSelector: {}, learning: { ruleExpiry: MAX_DURATION } };
    const r = await cluster.kubectl(['apply', '--dry-run=server', '-f', '-'], {
      input: seg('longest', longest),
    });
    expect(r.code, r.stderr).toBe(0);
    expect(parseSegmentationSpec('longest', longest).ok).toBe(true);
    expect(parseSegmentationSpec('forever', JSON.parse(cases.at(-1)![1]).spec)).toEqual({
      ok: false,
      problems: [
        'spec.learning.ruleExpiry "2562047h47m16.854775808s" is longer than 2562047h47m16.854775807s, the longest duration Kubernetes takes',
      ],
    });
  });
});

describe('label keys and values in selectors', () => {
  // The reconciler refuses a selector whose keys or values are no labels (it would match nothing); the
  // schema refuses them too, at apply time, naming the field.
  it('are refused by the API server as by the controller, naming the field', async () => {
    await install(cluster);
    const w = await cluster.kubectl([
      'wait',
      '--for=condition=Established',
      'crd/segmentations.microseg.dev',
      '--timeout=30s',
    ]);
    expect(w.code, w.stderr).toBe(0);
    const key =
      "must be a label key: an optional prefix, a DNS subdomain (lower case, e.g. example.com) and '/', then a name of 63 characters at most, alphanumeric, '-', '_' or '.', starting and ending alphanumeric";
    const prefix = (n: number) => `${'a'.repeat(n - 4)}.com`;
    const refused: [string, Record<string, unknown>, string][] = [
      [
        'a matchLabels key',
        { matchLabels: { team: 'shop', 'bad key!': 'x' } },
        `spec.namespaceSelector.matchLabels: Invalid value: key "bad key!" ${key}`,
      ],
      [
        'a matchLabels key with a 254-character prefix',
        { matchLabels: { [`${prefix(254)}/team`]: 'x' } },
        `spec.namespaceSelector.matchLabels: Invalid value: key "${prefix(254)}/team" ${key}`,
      ],
      [
        'a matchLabels value',
        { matchLabels: { team: 'a b' } },
        `spec.namespaceSelector.matchLabels.team: Invalid value: "a b": spec.namespaceSelector.matchLabels.team in body should match '^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$'`,
      ],
      [
        'a matchLabels value of 64 characters',
        { matchLabels: { team: 'v'.repeat(64) } },
        'spec.namespaceSelector.matchLabels.team: Too long: may not be more than 63 bytes',
      ],
      [
        'more than 32 matchLabels',
        { matchLabels: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v'])) },
        'spec.namespaceSelector.matchLabels: Too many: 33: must have at most 32 items',
      ],
      [
        'a matchExpressions key',
        { matchExpressions: [{ key: 'Example.com/tier', operator: 'Exists' }] },
        `spec.namespaceSelector.matchExpressions[0].key: Invalid value: "Example.com/tier": ${key}`,
      ],
      [
        'a matchExpressions key with a 64-character name',
        { matchExpressions: [{ key: 'k'.repeat(64), operator: 'Exists' }] },
        `spec.namespaceSelector.matchExpressions[0].key: Invalid value: "${'k'.repeat(64)}": ${key}`,
      ],
      [
        'a matchExpressions value',
        { matchExpressions: [{ key: 'tier', operator: 'In', values: ['web', '-db'] }] },
        `spec.namespaceSelector.matchExpressions[0].values[1]: Invalid value: "-db": spec.namespaceSelector.matchExpressions[0].values[1] in body should match '^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$'`,
      ],
    ];
    const taken: [string, Record<string, unknown>][] = [
      [
        'prefixed keys and an empty value',
        { matchLabels: { 'example.com/team': 'shop', 'kubernetes.io/metadata.name': '' } },
      ],
      [
        'a 253-character prefix and a 63-character name',
        { matchLabels: { [`${prefix(253)}/${'n'.repeat(63)}`]: 'v'.repeat(63) } },
      ],
      [
        'values with dots and underscores',
        { matchExpressions: [{ key: 'Tier_1', operator: 'NotIn', values: ['web.1', 'db_2'] }] },
      ],
    ];
    const post = (i: number, selector: Record<string, unknown>) =>
      cluster.request('POST', '/apis/microseg.dev/v1alpha1/segmentations?dryRun=All', {
        body: {
          apiVersion: 'microseg.dev/v1alpha1',
          kind: 'Segmentation',
          metadata: { name: `labels-${i}` },
          spec: { namespaceSelector: selector },
        },
      });
    // What the API server said: a Status's message (the object itself when it took it).
    const said = (text: string) => (JSON.parse(text) as { message?: string }).message ?? 'no message';
    const answers: string[] = [];
    for (const [i, [what, selector, message]] of refused.entries()) {
      const r = await post(i, selector);
      const controller = parseSegmentationSpec(`labels-${i}`, { namespaceSelector: selector }).ok;
      answers.push(
        `${what}: ${r.status}${said(r.text).includes(message) ? ' naming it' : ` ${said(r.text)}`}, controller ${controller ? 'takes' : 'refuses'}`,
      );
    }
    for (const [i, [what, selector]] of taken.entries()) {
      const r = await post(100 + i, selector);
      const controller = parseSegmentationSpec(`labels-${i}`, { namespaceSelector: selector }).ok;
      answers.push(
        `${what}: ${r.status}${r.status === 201 ? '' : ` ${said(r.text)}`}, controller ${controller ? 'takes' : 'refuses'}`,
      );
    }
    expect(answers).toEqual([
      ...refused.map(([what]) => `${what}: 422 naming it, controller refuses`),
      ...taken.map(([what]) => `${what}: 201, controller takes`),
    ]);
  });
});

describe('duration minimums at the edge', () => {
  // The schema is the edge: the controller must neither take what the API server refuses nor refuse what
  // it takes. CEL compares durations to the nanosecond, as Go's time.ParseDuration reads them.
  it('the API server and the controllers take and refuse the same durations', async () => {
    await install(cluster);
    const w = await cluster.kubectl([
      'wait',
      '--for=condition=Established',
      'crd/segmentations.microseg.dev',
      'crd/isolations.microseg.dev',
      '--timeout=30s',
    ]);
    expect(w.code, w.stderr).toBe(0);
    const segmentations: [string, Record<string, unknown>][] = [
      ['ruleExpiry 1m', { learning: { ruleExpiry: '1m' }, audit: { window: '1s' } }],
      ['ruleExpiry 59.9999s', { learning: { ruleExpiry: '59.9999s' }, audit: { window: '1s' } }],
      ['ruleExpiry 59.9999999999s', { learning: { ruleExpiry: '59.9999999999s' }, audit: { window: '1s' } }],
      [
        'ruleExpiry 59.999999999999999999s',
        { learning: { ruleExpiry: '59.999999999999999999s' }, audit: { window: '1s' } },
      ],
      ['ruleExpiry 59999.9999ms', { learning: { ruleExpiry: '59999.9999ms' }, audit: { window: '1s' } }],
      ['window 1s', { audit: { window: '1s' } }],
      ['window 999.9999ms', { audit: { window: '999.9999ms' } }],
      ['window 0.9999999999s', { audit: { window: '0.9999999999s' } }],
      ['after 1000ms', { promotion: { after: '1000ms' } }],
      ['after 0.9999s', { promotion: { after: '0.9999s' } }],
      ['stableAfter 0s', { learning: { stableAfter: '0s' } }],
      ['window = ruleExpiry', { learning: { ruleExpiry: '1m0.0004ms' }, audit: { window: '1m0.0004ms' } }],
      ['window > ruleExpiry', { learning: { ruleExpiry: '1m' }, audit: { window: '1m0.0004ms' } }],
    ];
    const isolations: [string, string][] = [
      ['duration 1s', '1s'],
      ['duration 0.9999s', '0.9999s'],
      ['duration 999.9999999ms', '999.9999999ms'],
      ['duration 0.999999999999999999s', '0.999999999999999999s'],
    ];
    const ns = uniqueName('durations');
    await createNamespace(await cluster.kubeConfig(), ns);
    const answers: string[] = [];
    const say = (label: string, server: boolean, controller: boolean) =>
      answers.push(
        `${label}: API server ${server ? 'takes' : 'refuses'}, controller ${controller ? 'takes' : 'refuses'}`,
      );
    for (const [i, [label, spec]] of segmentations.entries()) {
      const object = {
        apiVersion: 'microseg.dev/v1alpha1',
        kind: 'Segmentation',
        metadata: { name: `durations-${i}` },
        spec: { namespaceSelector: {}, ...spec },
      };
      const r = await cluster.request('POST', '/apis/microseg.dev/v1alpha1/segmentations?dryRun=All', {
        body: object,
      });
      expect([201, 422], r.text).toContain(r.status);
      // The controller reads the object as the API server stores it, defaults filled in.
      const stored = r.status === 201 ? (JSON.parse(r.text) as { spec: unknown }).spec : object.spec;
      say(label, r.status === 201, parseSegmentationSpec(object.metadata.name, stored).ok);
    }
    const isolationDryRun = (name: string, spec: Record<string, unknown>) =>
      cluster.request('POST', `/apis/microseg.dev/v1alpha1/namespaces/${ns}/isolations?dryRun=All`, {
        body: { apiVersion: 'microseg.dev/v1alpha1', kind: 'Isolation', metadata: { name }, spec },
      });
    for (const [i, [label, duration]] of isolations.entries()) {
      const spec = { target: { pods: ['web-0'] }, reason: 'incident', duration };
      const r = await isolationDryRun(`d-${i}`, spec);
      expect([201, 422], r.text).toContain(r.status);
      say(label, r.status === 201, parseIsolationSpec(`d-${i}`, spec).ok);
    }
    const agree = (label: string, takes: boolean) =>
      `${label}: API server ${takes ? 'takes' : 'refuses'}, controller ${takes ? 'takes' : 'refuses'}`;
    expect(answers).toEqual([
      agree('ruleExpiry 1m', true),
      agree('ruleExpiry 59.9999s', false),
      agree('ruleExpiry 59.9999999999s', false),
      // Go reads 18 nines of a second's fraction as a whole second (through a float64): 1m.
      agree('ruleExpiry 59.999999999999999999s', true),
      agree('ruleExpiry 59999.9999ms', false),
      agree('window 1s', true),
      agree('window 999.9999ms', false),
      agree('window 0.9999999999s', false),
      agree('after 1000ms', true),
      agree('after 0.9999s', false),
      agree('stableAfter 0s', true),
      agree('window = ruleExpiry', true),
      agree('window > ruleExpiry', false),
      agree('duration 1s', true),
      agree('duration 0.9999s', false),
      agree('duration 999.9999999ms', false),
      agree('duration 0.999999999999999999s', true),
    ]);
    // An Isolation's malformed duration (4 hours, written in haste during an incident) was also refused
    // by its CEL rule, as a type conversion error naming `must be at least 1s`, which 4 hours is; as for
    // a Segmentation, the pattern alone now says what is wrong.
    const bad = await isolationDryRun('bad-duration', {
      target: { pods: ['web-0'] },
      reason: 'incident',
      duration: '4 hours',
    });
    expect(bad.status, bad.text).toBe(422);
    expect(bad.text).toContain('spec.duration in body should match');
    expect(bad.text).not.toContain('type conversion error');
    expect(bad.text).not.toContain('must be at least 1s');
  });
});

describe('the Segmentations and Isolations the documents show', () => {
  // Those test/core/docs-true.test.ts checks against the schema's structure and the controllers' parsers;
  // here the API server judges them, CEL rules and defaulting included, as `kubectl apply` would send them.
  it('are each accepted by the API server with the CRDs installed (a server-side dry run)', async () => {
    // Installed here, as the test above or another file may not have run (a `-t` filter, a shard): the
    // CRDs of this tree, so that the schema judged is the one the documents describe.
    await applyCrds(
      cluster,
      ['--server-side', '--force-conflicts', '-k', `${root}crds`],
      ['segmentations.microseg.dev', 'isolations.microseg.dev'],
    );
    const examples = documentedExamples();
    expect(examples.map((e) => e.kind).sort()).toEqual([
      'Isolation',
      'Segmentation',
      'Segmentation',
      'Segmentation',
    ]);
    // A namespaced object goes to a namespace of this test's own (creating it is not dry run).
    const ns = uniqueName('doc-examples');
    await createNamespace(await cluster.kubeConfig(), ns);
    const answers: string[] = [];
    for (const e of examples) {
      const meta = e.object.metadata as { name: string; namespace?: string };
      const object =
        e.kind === 'Isolation' ? { ...e.object, metadata: { ...meta, namespace: ns } } : e.object;
      const plural = e.kind === 'Isolation' ? `namespaces/${ns}/isolations` : 'segmentations';
      const r = await cluster.request(
        'POST',
        `/apis/microseg.dev/v1alpha1/${plural}?dryRun=All&fieldValidation=Strict`,
        { body: object },
      );
      answers.push(`${e.file}: ${e.kind} ${e.name}: ${r.status}${r.status === 201 ? '' : ` ${r.text}`}`);
    }
    expect(answers).toEqual(examples.map((e) => `${e.file}: ${e.kind} ${e.name}: 201`));
  });
});
