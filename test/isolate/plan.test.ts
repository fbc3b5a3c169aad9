import { describe, expect, it } from 'vitest';
import { ownershipOf } from '../../src/identity/index.ts';
import type {
  CronJob,
  NetworkPolicy,
  Pod,
  Service,
  ServicePort,
  WorkloadObject,
} from '../../src/model/k8s.ts';
import type { IsolationSpec } from '../../src/isolate/api.ts';
import { expiryTime, parseIsolationSpec, PRIOR_ANNOTATION, QUARANTINE_LABEL } from '../../src/isolate/api.ts';
import {
  adminTierPolicy,
  chooseMechanism,
  dnsExceptionPorts,
  exclusionPatches,
  exclusionRemovalPatch,
  keptRules,
  objectNames,
  podAfter,
  podLabelPlan,
  podReleasePatch,
  quarantineNetworkPolicy,
  resolveTarget,
} from '../../src/isolate/plan.ts';
import { compileClusterPolicy, compileNetworkPolicy } from '../../src/verify/validate.ts';
import { mergePatch } from './fake-kube.ts';
import { crdSchema, schemaProblems } from '../crd-schema.ts';

function spec(input: Record<string, unknown>): IsolationSpec {
  const r = parseIsolationSpec('iso', { reason: 'test', ...input });
  if (!r.ok) throw new Error(r.problems.join('; '));
  return r.spec;
}

function pod(name: string, labels: Record<string, string>, extra: Partial<Pod['metadata']> = {}): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'shop', labels, resourceVersion: '7', ...extra },
    spec: { containers: [{ name: 'c' }] },
    status: { phase: 'Running' },
  };
}

describe('Isolation spec validation', () => {
  it('fills defaults', () => {
    expect(spec({ target: { pods: ['b', 'a', 'a'] } })).toEqual({
      target: { kind: 'pods', pods: ['a', 'b'] },
      direction: 'Both',
      dns: true,
      forensics: [],
      detachFromServices: false,
      reason: 'test',
      dryRun: false,
      mechanism: 'Auto',
    });
  });

  it('reports every problem with the field and value', () => {
    const r = parseIsolationSpec('Bad_Name', {
      target: { pods: ['x'], podSelector: {} },
      direction: 'Sideways',
      exceptions: { dns: 'yes', forensics: [{}] },
      duration: '10 minutes',
      expiresAt: 'tomorrow',
      mechanism: 'Calico',
    });
    expect(r).toEqual({
      ok: false,
      problems: [
        'metadata.name "Bad_Name" must be a DNS label of at most 63 characters (it becomes a label value)',
        'spec.target must set exactly one of pods, podSelector, workload (has pods, podSelector)',
        'spec.direction "Sideways" is not one of Both, Ingress, Egress',
        'spec.exceptions.dns must be true or false (got "yes")',
        'spec.exceptions.forensics[0] must set namespaceSelector, podSelector or both',
        'spec.reason is required (why the workload is isolated)',
        'spec.duration and spec.expiresAt are mutually exclusive',
        'spec.duration "10 minutes" is not a duration such as "90s", "15m" or "1h30m"',
        'spec.expiresAt "tomorrow" is not an RFC 3339 time such as "2026-01-02T15:04:05Z"',
        'spec.mechanism "Calico" is not one of Auto, ClusterNetworkPolicy, AdminNetworkPolicy, NetworkPolicy',
      ],
    });
    expect(parseIsolationSpec('a', { reason: 'r', target: { podSelector: {} } })).toEqual({
      ok: false,
      problems: ['spec.target.podSelector must not be empty (it would isolate every pod of the namespace)'],
    });
    // Label keys and values Kubernetes would not accept, in the target's selector and a forensics peer's.
    expect(
      parseIsolationSpec('a', {
        reason: 'r',
        target: { podSelector: { matchLabels: { 'bad key!': 'cart' } } },
        exceptions: {
          forensics: [
            {
              namespaceSelector: { matchLabels: { team: 'incident response' } },
              podSelector: {
                matchExpressions: [{ key: 'Example.com/app', operator: 'In', values: ['ok', '-bad'] }],
              },
            },
          ],
        },
      }),
    ).toEqual({
      ok: false,
      problems: [
        `spec.target.podSelector.matchLabels: key "bad key!": the name must be 63 characters at most, alphanumeric, '-', '_' or '.', starting and ending alphanumeric`,
        `spec.exceptions.forensics[0].namespaceSelector.matchLabels: value "incident response": must be empty or 63 characters at most, alphanumeric, '-', '_' or '.', starting and ending alphanumeric`,
        'spec.exceptions.forensics[0].podSelector.matchExpressions[0]: key "Example.com/app": the prefix must be a DNS subdomain (lower case, e.g. example.com)',
        `spec.exceptions.forensics[0].podSelector.matchExpressions[0].values: value "-bad": must be empty or 63 characters at most, alphanumeric, '-', '_' or '.', starting and ending alphanumeric`,
      ],
    });
    expect(
      parseIsolationSpec('a', { reason: 'r', target: { workload: { kind: 'Pod', name: 'x' } } }),
    ).toEqual({
      ok: false,
      problems: ['spec.target.workload.kind "Pod" is not a workload kind: name pods by spec.target.pods'],
    });
  });

  it('takes every kind the graph names a workload by (a Rollout, a CloneSet, a CronJob)', () => {
    for (const kind of ['Rollout', 'CloneSet', 'CronJob'])
      expect(spec({ target: { workload: { kind, name: 'web', includeFuture: true } } }).target).toEqual({
        kind: 'workload',
        workloadKind: kind,
        name: 'web',
        includeFuture: true,
      });
  });

  it("takes a custom resource's kind with its API group; a known kind with its own group or none", () => {
    expect(
      spec({
        target: {
          workload: { kind: 'Cluster', apiGroup: 'postgresql.cnpg.io', name: 'pg', includeFuture: true },
        },
      }).target,
    ).toEqual({
      kind: 'workload',
      workloadKind: 'Cluster',
      apiGroup: 'postgresql.cnpg.io',
      name: 'pg',
      includeFuture: true,
    });
    // Kinds with digits and '-' (a CRD's kind is a DNS-1035 label once lower-cased).
    expect(
      spec({ target: { workload: { kind: 'K8s-Pool2', apiGroup: 'x.example.com', name: 'p' } } }).target,
    ).toMatchObject({ workloadKind: 'K8s-Pool2', apiGroup: 'x.example.com' });
    for (const [kind, apiGroup] of [
      ['Deployment', 'apps'],
      ['Job', 'batch'],
      ['Rollout', 'argoproj.io'],
      ['CloneSet', 'apps.kruise.io'],
    ])
      expect(spec({ target: { workload: { kind, apiGroup, name: 'web' } } }).target).toEqual({
        kind: 'workload',
        workloadKind: kind,
        name: 'web',
        includeFuture: false,
      });
  });

  it('names exactly what is wrong with a workload kind or its API group', () => {
    const problems = (workload: Record<string, unknown>) => {
      const r = parseIsolationSpec('a', { reason: 'r', target: { workload: { name: 'pg', ...workload } } });
      return r.ok ? [] : r.problems;
    };
    const known = 'Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, Rollout, CloneSet';
    const notKind = (k: string) =>
      `spec.target.workload.kind ${k} is not a kind: one of ${known}, or a custom resource's kind such as Cluster (a letter, then letters, digits or '-'; at most 63 characters)`;
    expect(problems({ kind: 'Cluster' })).toEqual([
      `spec.target.workload.apiGroup is required with kind "Cluster", which is not one of ${known}: a custom resource's kind is named with its API group (postgresql.cnpg.io for CloudNativePG's Cluster)`,
    ]);
    // A workload the microseg.dev/workload label names is no owner: its pods are a podSelector's.
    expect(problems({ kind: 'Workload' })).toEqual([
      'spec.target.workload.kind Workload is a workload the microseg.dev/workload label of its pods names, not an owner: target its pods by spec.target.podSelector (matchLabels: {microseg.dev/workload: NAME})',
    ]);
    expect(problems({ kind: 'Cluster', apiGroup: 'apps' })).toEqual([
      `spec.target.workload.apiGroup "apps" is not a custom resource's API group (those have a dot, as postgresql.cnpg.io has), and Cluster is not one of ${known}`,
    ]);
    for (const apiGroup of ['Postgresql.cnpg.io', 'postgresql.cnpg.io/v1', '', 7, `${'a'.repeat(251)}.io`])
      expect(problems({ kind: 'Cluster', apiGroup }), String(apiGroup)).toEqual([
        `spec.target.workload.apiGroup ${JSON.stringify(apiGroup)} is not an API group (a DNS subdomain such as postgresql.cnpg.io, at most 253 characters)`,
      ]);
    expect(problems({ kind: 'Deployment', apiGroup: 'apps.example.com' })).toEqual([
      'spec.target.workload.apiGroup "apps.example.com" is not the API group of Deployment (apps): leave it out, or give apps',
    ]);
    expect(problems({ kind: 'Rollout', apiGroup: 'rollouts.kruise.io' })).toEqual([
      'spec.target.workload.apiGroup "rollouts.kruise.io" is not the API group of Rollout (argoproj.io): leave it out, or give argoproj.io',
    ]);
    expect(problems({ kind: 'deployment' })).toEqual([
      'spec.target.workload.kind "deployment" must be spelt Deployment',
    ]);
    expect(problems({ kind: 'CLONESET', apiGroup: 'apps.kruise.io' })).toEqual([
      'spec.target.workload.kind "CLONESET" must be spelt CloneSet',
    ]);
    for (const kind of ['Pod', 'pod'])
      expect(problems({ kind, apiGroup: 'x.io' })).toEqual([
        `spec.target.workload.kind "${kind}" is not a workload kind: name pods by spec.target.pods`,
      ]);
    for (const kind of [
      'Cluster/pg',
      'postgresql.cnpg.io/Cluster',
      '1Cluster',
      'Cluster-',
      '',
      'K'.repeat(64),
    ])
      expect(problems({ kind, apiGroup: 'postgresql.cnpg.io' }), kind).toEqual([
        notKind(JSON.stringify(kind)),
      ]);
    expect(problems({ apiGroup: 'postgresql.cnpg.io' })).toEqual([notKind('undefined')]);
    expect(problems({ kind: 3 })).toEqual([notKind('3')]);
    // Every problem of the workload at once: its kind and its name.
    expect(problems({ kind: 'Cluster', name: 'Bad_Name' })).toEqual([
      `spec.target.workload.apiGroup is required with kind "Cluster", which is not one of ${known}: a custom resource's kind is named with its API group (postgresql.cnpg.io for CloudNativePG's Cluster)`,
      'spec.target.workload.name "Bad_Name" is not a valid name',
    ]);
  });

  it("agrees with the CRD schema on the shape of a workload's kind and API group", () => {
    const schema = crdSchema('microseg.dev_isolations.yaml');
    const cases: [string, unknown][] = [
      ['Cluster', 'postgresql.cnpg.io'],
      ['StrimziPodSet', 'core.strimzi.io'],
      ['VirtualMachineInstance', 'kubevirt.io'],
      ['K8s-Pool2', 'a-b.example.com'],
      ['K'.repeat(63), `${'a'.repeat(249)}.com`],
      ['K'.repeat(64), 'x.io'],
      ['Cluster', `${'a'.repeat(250)}.com`],
      ['Cluster/pg', 'x.io'],
      ['1Cluster', 'x.io'],
      ['Cluster-', 'x.io'],
      ['Cluster', 'X.io'],
      ['Cluster', 'x.io/v1'],
      ['Cluster', '-x.io'],
      ['Cluster', 'x..io'],
    ];
    for (const [kind, apiGroup] of cases) {
      const workload = { kind, apiGroup, name: 'pg' };
      const object = {
        apiVersion: 'microseg.dev/v1alpha1',
        kind: 'Isolation',
        metadata: { name: 'a' },
        spec: { reason: 'r', target: { workload } },
      };
      const bySchema = schemaProblems(schema, object).length === 0;
      expect(parseIsolationSpec('a', object.spec).ok, `${kind} ${String(apiGroup)}`).toBe(bySchema);
    }
  });

  it('checks the limits the CRD puts on selectors, lists and texts, naming each with its size', () => {
    const values = (n: number) => Array.from({ length: n }, (_, i) => `v${i}`);
    const exprs = (n: number) => Array.from({ length: n }, (_, i) => ({ key: `k${i}`, operator: 'Exists' }));
    expect(
      parseIsolationSpec('a', {
        reason: 'r'.repeat(1025),
        incident: 'i'.repeat(257),
        requestedBy: '\u{1F600}'.repeat(257),
        duration: '1h'.repeat(17),
        target: {
          podSelector: {
            matchExpressions: [...exprs(32), { key: 'app', operator: 'In', values: values(65) }],
          },
        },
        exceptions: {
          forensics: [
            {
              podSelector: {
                matchExpressions: [
                  { key: 'app', operator: 'NotIn', values: [...values(64), 'x'.repeat(64)] },
                ],
              },
            },
          ],
        },
      }),
    ).toEqual({
      ok: false,
      problems: [
        'spec.target.podSelector.matchExpressions must have at most 32 requirements (has 33)',
        'spec.target.podSelector.matchExpressions[32].values must have at most 64 values (has 65)',
        'spec.exceptions.forensics[0].podSelector.matchExpressions[0].values must have at most 64 values (has 65)',
        `spec.exceptions.forensics[0].podSelector.matchExpressions[0].values: value "${'x'.repeat(64)}": must be empty or 63 characters at most, alphanumeric, '-', '_' or '.', starting and ending alphanumeric`,
        'spec.reason must be at most 1024 characters (has 1025)',
        'spec.incident must be at most 256 characters (has 257)',
        'spec.requestedBy must be at most 256 characters (has 257)',
        'spec.duration must be at most 32 characters (has 34)',
      ],
    });
    expect(parseIsolationSpec('a', { reason: 'r', target: { pods: values(257) } })).toEqual({
      ok: false,
      problems: ['spec.target.pods must list at most 256 pods (has 257)'],
    });
    expect(
      parseIsolationSpec('a', {
        reason: 'r',
        target: { pods: ['a'] },
        exceptions: { forensics: Array.from({ length: 17 }, () => ({ podSelector: {} })) },
      }),
    ).toEqual({ ok: false, problems: ['spec.exceptions.forensics must list at most 16 peers (has 17)'] });
    // At the limits: accepted (characters counted as the API server does, not as UTF-16 units).
    expect(
      parseIsolationSpec('a', {
        reason: '\u{1F600}'.repeat(1024),
        incident: 'i'.repeat(256),
        requestedBy: 'u'.repeat(256),
        duration: '1h'.repeat(16),
        target: {
          podSelector: {
            matchExpressions: [...exprs(31), { key: 'app', operator: 'In', values: values(64) }],
          },
        },
        exceptions: {
          forensics: Array.from({ length: 16 }, () => ({
            podSelector: { matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['y'.repeat(63)] }] },
          })),
        },
      }).ok,
    ).toBe(true);
    expect(parseIsolationSpec('a', { reason: 'r', target: { pods: values(256) } }).ok).toBe(true);
  });

  it('refuses a duration longer than CEL duration() takes, as the CRD would', () => {
    expect(parseIsolationSpec('a', { reason: 'r', target: { pods: ['a'] }, duration: '3000000h' })).toEqual({
      ok: false,
      problems: [
        'spec.duration "3000000h" is longer than 2562047h47m16.854775807s, the longest duration Kubernetes takes',
      ],
    });
    expect(spec({ target: { pods: ['a'] }, duration: '2562047h47m16.854775807s' }).durationMs).toBe(
      9_223_372_036_855,
    );
  });

  it('refuses a duration shorter than 1s to the nanosecond, as the CRD rule compares it', () => {
    // 1000 ms rounded, yet short of 1s: the API server refuses it, and so does the parser.
    expect(parseIsolationSpec('a', { reason: 'r', target: { pods: ['a'] }, duration: '0.9999s' })).toEqual({
      ok: false,
      problems: ['spec.duration "0.9999s" is shorter than 1s'],
    });
    // Go reads 18 nines of a second's fraction as a whole second: the API server takes it.
    expect(spec({ target: { pods: ['a'] }, duration: '0.999999999999999999s' }).durationMs).toBe(1000);
  });

  it('computes expiry from duration after isolation, or from expiresAt', () => {
    expect(expiryTime(spec({ target: { pods: ['a'] }, duration: '90s' }), '2026-01-01T00:00:00.000Z')).toBe(
      '2026-01-01T00:01:30.000Z',
    );
    expect(expiryTime(spec({ target: { pods: ['a'] }, duration: '90s' }), undefined)).toBeUndefined();
    expect(
      expiryTime(spec({ target: { pods: ['a'] }, expiresAt: '2026-01-01T01:00:00+01:00' }), undefined),
    ).toBe('2026-01-01T00:00:00.000Z');
    expect(expiryTime(spec({ target: { pods: ['a'] } }), '2026-01-01T00:00:00.000Z')).toBeUndefined();
  });
});

describe('mechanism ladder', () => {
  const v = (version: string) => ({ name: 'policy.networking.k8s.io', versions: [{ version }] });
  it('prefers ClusterNetworkPolicy, then AdminNetworkPolicy, then NetworkPolicy', () => {
    expect(chooseMechanism([v('v1alpha1'), v('v1alpha2')], 'Auto').method).toBe('ClusterNetworkPolicy');
    expect(
      chooseMechanism([{ name: 'policy.networking.k8s.io', versions: [{ version: 'v1alpha1' }] }], 'Auto')
        .method,
    ).toBe('AdminNetworkPolicy');
    expect(chooseMechanism([{ name: 'apps', versions: [{ version: 'v1' }] }], 'Auto').method).toBe(
      'NetworkPolicy',
    );
  });
  it('refuses a requested mechanism the cluster does not serve', () => {
    expect(chooseMechanism([], 'AdminNetworkPolicy')).toEqual({
      problem:
        'spec.mechanism AdminNetworkPolicy is not served by this cluster (policy.networking.k8s.io/v1alpha1 not found)',
      why: '',
    });
    expect(chooseMechanism([v('v1alpha2')], 'NetworkPolicy').method).toBe('NetworkPolicy');
  });
});

describe('targets', () => {
  const pods = [
    pod('web-1', { app: 'web' }),
    pod('web-2', { app: 'web' }),
    pod('db-1', { app: 'db' }),
    pod('web-old', { app: 'web' }, { deletionTimestamp: '2026-01-01T00:00:00Z' }),
  ];
  it('pods by name, reporting missing ones', () => {
    expect(resolveTarget(spec({ target: { pods: ['web-1', 'gone'] } }), { pods, previously: [] })).toEqual({
      pods: ['web-1'],
      notes: ['pod gone not found'],
      live: false,
    });
  });
  it('a selector is live and skips terminating pods', () => {
    expect(
      resolveTarget(spec({ target: { podSelector: { matchLabels: { app: 'web' } } } }), {
        pods,
        previously: [],
      }),
    ).toEqual({
      pods: ['web-1', 'web-2'],
      notes: [],
      live: true,
    });
  });
  it('host-network pods are left out with one note, however many', () => {
    const host = (n: string): Pod => ({
      ...pod(n, { app: 'agent' }),
      spec: { containers: [{ name: 'c' }], hostNetwork: true },
    });
    const agents = [host('agent-a'), host('agent-b'), host('agent-c'), host('agent-d'), host('agent-e')];
    const sel = spec({ target: { podSelector: { matchLabels: { app: 'agent' } } } });
    expect(resolveTarget(sel, { pods: [...pods, ...agents], previously: [] })).toEqual({
      pods: [],
      notes: [
        'pods agent-a, agent-b, agent-c and 2 more use the host network: no NetworkPolicy or admin-tier policy applies to them, so they cannot be isolated',
      ],
      live: true,
    });
    expect(
      resolveTarget(spec({ target: { pods: ['agent-a', 'web-1'] } }), {
        pods: [...pods, ...agents],
        previously: [],
      }),
    ).toEqual({
      pods: ['web-1'],
      notes: [
        'pod agent-a uses the host network: no NetworkPolicy or admin-tier policy applies to it, so it cannot be isolated',
      ],
      live: false,
    });
  });
  it('a workload freezes its current pods unless includeFuture', () => {
    const workload = { spec: { selector: { matchLabels: { app: 'web' } } } };
    const more = [...pods, pod('web-3', { app: 'web' })];
    const frozen = spec({ target: { workload: { kind: 'Deployment', name: 'web' } } });
    expect(resolveTarget(frozen, { pods, workload, previously: [] }).pods).toEqual(['web-1', 'web-2']);
    expect(resolveTarget(frozen, { pods: more, workload, previously: ['web-1', 'web-2'] }).pods).toEqual([
      'web-1',
      'web-2',
    ]);
    const future = spec({ target: { workload: { kind: 'Deployment', name: 'web', includeFuture: true } } });
    expect(resolveTarget(future, { pods: more, workload, previously: ['web-1', 'web-2'] })).toEqual({
      pods: ['web-1', 'web-2', 'web-3'],
      notes: [],
      live: true,
    });
    expect(resolveTarget(frozen, { pods, previously: [] }).notes).toEqual(['Deployment web not found']);
  });
  it('a workload without includeFuture does not take the replacement of its isolated pods', () => {
    const workload = { spec: { selector: { matchLabels: { app: 'web' } } } };
    const frozen = spec({ target: { workload: { kind: 'Deployment', name: 'web' } } });
    // web-1 and web-2 were isolated, then deleted; web-3 is the Deployment's replacement.
    const replaced = [pod('web-3', { app: 'web' })];
    const isolatedAt = '2026-11-30T07:00:00.000Z';
    expect(resolveTarget(frozen, { pods: replaced, workload, previously: [], isolatedAt })).toEqual({
      pods: [],
      notes: [
        'the pods Deployment web had at isolation time are gone; pods it created later are not isolated (includeFuture is false)',
      ],
      live: false,
    });
    // Before it took effect (a workload with no pod yet), the pods are still looked for.
    expect(resolveTarget(frozen, { pods: replaced, workload, previously: [] }).pods).toEqual(['web-3']);
  });
  it('an owner named by the target takes the pods it owns, whatever workload their microseg.dev/workload label names', () => {
    const owned = (name: string) =>
      pod(
        name,
        { app: 'cs', 'microseg.dev/workload': 'front' },
        {
          ownerReferences: [
            {
              apiVersion: 'apps.kruise.io/v1alpha1',
              kind: 'CloneSet',
              name: 'cs',
              uid: 'uid-cs',
              controller: true,
            },
          ],
        },
      );
    const target = spec({ target: { workload: { kind: 'CloneSet', name: 'cs' } } });
    const ownership = ownershipOf({ workloads: [], cronJobs: [] });
    expect(
      resolveTarget(target, { pods: [owned('cs-a'), owned('cs-b')], ownership, previously: [] }).pods,
    ).toEqual(['cs-a', 'cs-b']);
  });
  it("a Rollout's pods are those of its ReplicaSets, a CloneSet's its own, a CronJob's its Jobs'", () => {
    const owner = (kind: string, name: string, apiVersion = 'apps/v1') => ({
      ownerReferences: [{ apiVersion, kind, name, uid: `uid-${name}`, controller: true }],
    });
    const rs = (name: string, rollout: string): WorkloadObject => ({
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: {
        name,
        namespace: 'shop',
        uid: `uid-${name}`,
        ...owner('Rollout', rollout, 'argoproj.io/v1alpha1'),
      },
      spec: {},
    });
    const ownership = ownershipOf({ workloads: [rs('web-aaa', 'web'), rs('api-ccc', 'api')], cronJobs: [] });
    const rolloutPods = [
      pod('web-aaa-1', { app: 'web', 'rollouts-pod-template-hash': 'aaa' }, owner('ReplicaSet', 'web-aaa')),
      pod('api-ccc-1', { app: 'web', 'rollouts-pod-template-hash': 'ccc' }, owner('ReplicaSet', 'api-ccc')),
      // A new revision's ReplicaSet, not in the list read: its name and hash label name the Rollout.
      pod('web-bbb-1', { app: 'web', 'rollouts-pod-template-hash': 'bbb' }, owner('ReplicaSet', 'web-bbb')),
    ];
    const rollout = spec({ target: { workload: { kind: 'Rollout', name: 'web' } } });
    expect(resolveTarget(rollout, { pods: rolloutPods.slice(0, 2), ownership, previously: [] })).toEqual({
      pods: ['web-aaa-1'],
      notes: [],
      live: false,
    });
    // Frozen: the new revision's pod is not taken once the first were isolated ...
    const at = '2026-11-30T07:00:00.000Z';
    const ctx = { pods: rolloutPods, ownership, previously: ['web-aaa-1'], isolatedAt: at };
    expect(resolveTarget(rollout, ctx).pods).toEqual(['web-aaa-1']);
    // ... unless includeFuture.
    const future = spec({ target: { workload: { kind: 'Rollout', name: 'web', includeFuture: true } } });
    expect(resolveTarget(future, ctx)).toEqual({ pods: ['web-aaa-1', 'web-bbb-1'], notes: [], live: true });
    // Nothing owned by it, no pod: not found.
    const ghost = spec({ target: { workload: { kind: 'Rollout', name: 'ghost' } } });
    expect(resolveTarget(ghost, { pods: rolloutPods, ownership, previously: [] })).toEqual({
      pods: [],
      notes: ['Rollout ghost not found'],
      live: false,
    });

    const clonePods = [
      pod('cs-x', { app: 'cs' }, owner('CloneSet', 'cs', 'apps.kruise.io/v1alpha1')),
      pod('cs-y', { app: 'cs' }, owner('CloneSet', 'cs', 'apps.kruise.io/v1alpha1')),
      // Same labels, another owner.
      pod('other', { app: 'cs' }, owner('CloneSet', 'cs2', 'apps.kruise.io/v1alpha1')),
    ];
    const cloneSet = spec({ target: { workload: { kind: 'CloneSet', name: 'cs' } } });
    expect(resolveTarget(cloneSet, { pods: clonePods, previously: [] }).pods).toEqual(['cs-x', 'cs-y']);

    const job: WorkloadObject = {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: {
        name: 'report-29000',
        namespace: 'shop',
        uid: 'uid-report-29000',
        ...owner('CronJob', 'report', 'batch/v1'),
      },
      spec: {},
    };
    const cronJob: CronJob = {
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      metadata: { name: 'report', namespace: 'shop' },
      spec: {},
    };
    const runs = [
      pod('report-29000-a', { app: 'report' }, owner('Job', 'report-29000', 'batch/v1')),
      // Its Job was deleted by the history limit: the CronJob names the run.
      pod('report-28000-a', { app: 'report' }, owner('Job', 'report-28000', 'batch/v1')),
    ];
    const cron = spec({ target: { workload: { kind: 'CronJob', name: 'report' } } });
    expect(
      resolveTarget(cron, {
        pods: runs,
        ownership: ownershipOf({ workloads: [job], cronJobs: [cronJob] }),
        previously: [],
      }).pods,
    ).toEqual(['report-28000-a', 'report-29000-a']);
  });
  it("a custom resource's pods are those it controls in its API group, any version; includeFuture takes a later one", () => {
    const ref = (name: string, apiVersion = 'postgresql.cnpg.io/v1', controller = true) => ({
      ownerReferences: [{ apiVersion, kind: 'Cluster', name, uid: `uid-${name}`, controller }],
    });
    const labels = { 'cnpg.io/cluster': 'pg' };
    const pods = [
      pod('pg-1', { ...labels, 'cnpg.io/instanceRole': 'primary' }, ref('pg')),
      // Written by an older operator version: the group is what counts.
      pod('pg-2', { ...labels, 'cnpg.io/instanceRole': 'replica' }, ref('pg', 'postgresql.cnpg.io/v1beta1')),
      // A kind of the same name in another group, with the same labels.
      pod('pg-other', labels, ref('pg', 'clusters.example.com/v1')),
      // Owned but not controlled: not its workload for identity.
      pod('pg-backup', labels, ref('pg', 'postgresql.cnpg.io/v1', false)),
      // Another Cluster.
      pod('pg2-1', labels, ref('pg2')),
      // Same labels, no owner.
      pod('lookalike', labels),
    ];
    const target = { kind: 'Cluster', apiGroup: 'postgresql.cnpg.io', name: 'pg' };
    const now = spec({ target: { workload: target } });
    expect(resolveTarget(now, { pods, previously: [] })).toEqual({
      pods: ['pg-1', 'pg-2'],
      notes: [],
      live: false,
    });
    // A replacement instance after the isolation took effect: taken with includeFuture only.
    const later = [...pods, pod('pg-3', labels, ref('pg'))];
    const at = '2026-11-30T07:00:00.000Z';
    const ctx = { pods: later, previously: ['pg-1', 'pg-2'], isolatedAt: at };
    expect(resolveTarget(now, ctx).pods).toEqual(['pg-1', 'pg-2']);
    const future = spec({ target: { workload: { ...target, includeFuture: true } } });
    expect(resolveTarget(future, ctx)).toEqual({ pods: ['pg-1', 'pg-2', 'pg-3'], notes: [], live: true });
    // Its pods all replaced, includeFuture false: said, as for any workload.
    expect(
      resolveTarget(now, { pods: [pod('pg-4', labels, ref('pg'))], previously: ['pg-1'], isolatedAt: at }),
    ).toEqual({
      pods: [],
      notes: [
        'the pods Cluster.postgresql.cnpg.io pg had at isolation time are gone; pods it created later are not isolated (includeFuture is false)',
      ],
      live: false,
    });
    // The group tells the two kinds apart.
    const other = spec({ target: { workload: { ...target, apiGroup: 'clusters.example.com' } } });
    expect(resolveTarget(other, { pods, previously: [] }).pods).toEqual(['pg-other']);
    // No pod it controls: not found (its object is never read), looked for again with includeFuture.
    const ghost = spec({ target: { workload: { ...target, name: 'ghost', includeFuture: true } } });
    expect(resolveTarget(ghost, { pods, previously: [] })).toEqual({
      pods: [],
      notes: ['Cluster.postgresql.cnpg.io ghost not found (no pod has it as its controller)'],
      live: true,
    });
  });

  it('keeps previously isolated pods even when their labels no longer match (detached)', () => {
    const detached = [pod('web-1', { [QUARANTINE_LABEL]: 'iso' }), pod('web-2', { app: 'web' })];
    expect(
      resolveTarget(spec({ target: { podSelector: { matchLabels: { app: 'web' } } } }), {
        pods: detached,
        previously: ['web-1', 'gone'],
      }).pods,
    ).toEqual(['web-1', 'web-2']);
  });
});

describe('objects', () => {
  const names = objectNames('shop', 'iso');
  it('the NetworkPolicy mechanism: deny-all with DNS and forensics as its only rules, valid for the engine', () => {
    const np = quarantineNetworkPolicy({
      namespace: 'shop',
      name: 'iso',
      uid: 'u-1',
      spec: spec({
        target: { pods: ['a'] },
        exceptions: { forensics: [{ namespaceSelector: { matchLabels: { team: 'ir' } } }] },
      }),
      method: 'NetworkPolicy',
      names,
    });
    expect(np.metadata.name).toBe('microseg-quarantine-iso');
    expect(np.metadata.ownerReferences?.[0]).toMatchObject({
      kind: 'Isolation',
      name: 'iso',
      uid: 'u-1',
      controller: true,
    });
    expect(np.spec).toEqual({
      podSelector: { matchLabels: { [QUARANTINE_LABEL]: 'iso' } },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'ir' } } }] }],
      egress: [
        {
          to: [
            {
              namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
              podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
            },
          ],
          ports: [
            { protocol: 'UDP', port: 53 },
            { protocol: 'TCP', port: 53 },
          ],
        },
      ],
    });
    expect(() => compileNetworkPolicy(np)).not.toThrow();
  });

  it('direction Egress without DNS is a pure egress deny-all', () => {
    const np = quarantineNetworkPolicy({
      namespace: 'shop',
      name: 'iso',
      spec: spec({ target: { pods: ['a'] }, direction: 'Egress', exceptions: { dns: false } }),
      method: 'NetworkPolicy',
      names,
    });
    expect(np.spec).toEqual({
      podSelector: { matchLabels: { [QUARANTINE_LABEL]: 'iso' } },
      policyTypes: ['Egress'],
      egress: [],
    });
  });

  describe('a single-direction Isolation keeps the open direction as limited as microseg had it', () => {
    const managed = (name: string, podSelector: NetworkPolicy['spec']['podSelector'], extra: object) =>
      ({
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: { name, namespace: 'shop', labels: { 'app.kubernetes.io/managed-by': 'microseg' } },
        spec: { podSelector, policyTypes: ['Ingress', 'Egress'], ingress: [], egress: [], ...extra },
      }) as NetworkPolicy;
    const fromFrontend = {
      from: [{ podSelector: { matchLabels: { app: 'frontend' } } }],
      ports: [{ protocol: 'TCP' as const, port: 8080 }],
    };
    const toDb = {
      to: [{ podSelector: { matchLabels: { app: 'db' } } }],
      ports: [{ protocol: 'TCP' as const, port: 5432 }],
    };
    const nps = [
      managed('microseg-default-deny', {}, {}),
      // As it is once an Isolation added its exclusion: still the cart's policy.
      managed(
        'microseg-cart',
        {
          matchLabels: { app: 'cart' },
          matchExpressions: [{ key: QUARANTINE_LABEL, operator: 'DoesNotExist' }],
        },
        { ingress: [fromFrontend], egress: [toDb] },
      ),
      managed(
        'microseg-db',
        { matchLabels: { app: 'db' } },
        { ingress: [{ from: [{ podSelector: { matchLabels: { app: 'cart' } } }] }] },
      ),
      {
        ...managed('other-team', { matchLabels: { app: 'cart' } }, { egress: [{}] }),
        metadata: { name: 'other-team', namespace: 'shop' },
      },
    ];
    const cart = pod('cart-1', { app: 'cart', [QUARANTINE_LABEL]: 'iso' });

    it('Egress-only: the ingress of microseg policies that selected the pods is kept, and nothing else', () => {
      const kept = keptRules(spec({ target: { pods: ['cart-1'] }, direction: 'Egress' }), [cart], nps);
      expect(kept).toEqual({ direction: 'Ingress', ingress: [fromFrontend] });
      const np = quarantineNetworkPolicy({
        namespace: 'shop',
        name: 'iso',
        spec: spec({ target: { pods: ['cart-1'] }, direction: 'Egress', exceptions: { dns: false } }),
        method: 'NetworkPolicy',
        names,
        kept: kept!,
      });
      expect(np.spec).toEqual({
        podSelector: { matchLabels: { [QUARANTINE_LABEL]: 'iso' } },
        policyTypes: ['Ingress', 'Egress'],
        ingress: [fromFrontend],
        egress: [],
      });
      expect(() => compileNetworkPolicy(np)).not.toThrow();
    });

    it('Ingress-only: the egress is kept; a pod detached from its Services is matched by its labels before', () => {
      const detached = pod(
        'cart-1',
        { [QUARANTINE_LABEL]: 'iso' },
        {
          annotations: { [PRIOR_ANNOTATION]: JSON.stringify({ isolation: 'iso', labels: { app: 'cart' } }) },
        },
      );
      for (const p of [cart, detached])
        expect(keptRules(spec({ target: { pods: ['cart-1'] }, direction: 'Ingress' }), [p], nps)).toEqual({
          direction: 'Egress',
          egress: [toDb],
        });
    });

    it("pods selected by different policies keep no rule: one pod's rules must not open another", () => {
      const db = pod('db-0', { app: 'db', [QUARANTINE_LABEL]: 'iso' });
      const iso = spec({ target: { podSelector: { matchLabels: { tier: 'x' } } }, direction: 'Egress' });
      expect(keptRules(iso, [cart, db], nps)).toEqual({ direction: 'Ingress', ingress: [] });
      // A pod no microseg policy limited beside one that was: closed too.
      const loose = pod('loose', { app: 'loose', [QUARANTINE_LABEL]: 'iso' });
      const noDeny = nps.filter((n) => n.metadata.name !== 'microseg-default-deny');
      expect(keptRules(iso, [cart, loose], noDeny)).toEqual({ direction: 'Ingress', ingress: [] });
      // Two pods of one workload: its rules.
      expect(keptRules(iso, [cart, pod('cart-2', { app: 'cart' })], nps)).toEqual({
        direction: 'Ingress',
        ingress: [fromFrontend],
      });
    });

    it('the exceptions open only the direction the Isolation closes', () => {
      const np = (direction: string, kept: NonNullable<ReturnType<typeof keptRules>>) =>
        quarantineNetworkPolicy({
          namespace: 'shop',
          name: 'iso',
          spec: spec({
            target: { pods: ['cart-1'] },
            direction,
            exceptions: { forensics: [{ namespaceSelector: { matchLabels: { team: 'ir' } } }] },
          }),
          method: 'NetworkPolicy',
          names,
          kept,
        }).spec;
      // Ingress-only, DNS exception on by default: the kept egress is the Segmentation's, no DNS added.
      expect(np('Ingress', { direction: 'Egress', egress: [toDb] })).toEqual({
        podSelector: { matchLabels: { [QUARANTINE_LABEL]: 'iso' } },
        policyTypes: ['Ingress', 'Egress'],
        ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'ir' } } }] }],
        egress: [toDb],
      });
      // Egress-only with forensics peers: they are not let in where the Segmentation did not let them.
      const out = np('Egress', { direction: 'Ingress', ingress: [fromFrontend] });
      expect(out.ingress).toEqual([fromFrontend]);
      expect(out.egress).toHaveLength(1); // the DNS exception
    });

    it('none for Both, or when no microseg policy limited that direction of the pods', () => {
      expect(keptRules(spec({ target: { pods: ['cart-1'] } }), [cart], nps)).toBeUndefined();
      const mine = nps.filter((n) => n.metadata.name === 'microseg-db');
      expect(
        keptRules(spec({ target: { pods: ['cart-1'] }, direction: 'Egress' }), [cart], mine),
      ).toBeUndefined();
      // The namespace's default deny alone keeps the direction closed: no rule is kept, the direction is.
      const denyOnly = nps.filter((n) => n.metadata.name === 'microseg-default-deny');
      expect(
        keptRules(spec({ target: { pods: ['cart-1'] }, direction: 'Egress' }), [cart], denyOnly),
      ).toEqual({
        direction: 'Ingress',
        ingress: [],
      });
    });
  });

  it.each(['ClusterNetworkPolicy', 'AdminNetworkPolicy'] as const)(
    '%s: exceptions first, then Deny; the engine compiles it into the admin tier',
    (method) => {
      const obj = adminTierPolicy({
        namespace: 'shop',
        name: 'iso',
        spec: spec({
          target: { pods: ['a'] },
          exceptions: { forensics: [{ podSelector: { matchLabels: { app: 'ir' } } }] },
        }),
        method,
        names,
      });
      const c = compileClusterPolicy(obj);
      expect(c.tier).toBe('admin');
      expect(c.priority).toBe(0);
      expect(c.ingress.map((r) => [r.label, r.action])).toEqual([
        ['ingress[0] (forensics)', 'Allow'],
        ['ingress[1] (quarantine-ingress)', 'Deny'],
      ]);
      expect(c.egress.map((r) => [r.label, r.action])).toEqual([
        ['egress[0] (dns)', 'Allow'],
        ['egress[1] (quarantine-egress)', 'Deny'],
      ]);
      expect(c.subject).toEqual({
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'shop' } },
        podSelector: { matchLabels: { [QUARANTINE_LABEL]: 'iso' } },
      });
      // Beside it, the NetworkPolicy is a plain deny-all (the admin tier decides the exceptions).
      const np = quarantineNetworkPolicy({
        namespace: 'shop',
        name: 'iso',
        spec: spec({ target: { pods: ['a'] } }),
        method,
        names,
      });
      expect(np.spec.ingress).toEqual([]);
      expect(np.spec.egress).toEqual([]);
    },
  );

  it('names carry a salt only when asked (after a clash)', () => {
    expect(objectNames('shop', 'iso', 'abc123')).toEqual({
      networkPolicy: 'microseg-quarantine-iso-abc123',
      clusterPolicy: 'microseg-quarantine-shop-iso-abc123',
    });
  });
});

describe("the DNS exception: the port the DNS pods take the kube-dns Service's port 53 on", () => {
  const names = objectNames('shop', 'iso');
  type Ports = ServicePort[];
  /** The kube-system/kube-dns Service with `ports`, selecting k8s-app=kube-dns. */
  const kubeDns = (ports: Ports, selector: Record<string, string> | undefined = { 'k8s-app': 'kube-dns' }) =>
    ({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'kube-dns', namespace: 'kube-system' },
      spec: { ...(selector ? { selector } : {}), clusterIP: '10.96.0.10', ports },
    }) as Service;
  /** A CoreDNS pod naming its ports as `container` gives them. */
  const coredns = (name: string, container: { name: string; containerPort: number; protocol: string }[]) =>
    ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name,
        namespace: 'kube-system',
        labels: { 'k8s-app': 'kube-dns', 'pod-template-hash': '7d9f' },
        ownerReferences: [
          { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'coredns-7d9f', uid: 'rs', controller: true },
        ],
      },
      spec: { containers: [{ name: 'coredns', ports: container }] },
      status: { phase: 'Running' },
    }) as Pod;
  const at5353 = [
    { name: 'dns', containerPort: 5353, protocol: 'UDP' },
    { name: 'dns-tcp', containerPort: 5353, protocol: 'TCP' },
  ];
  const both = (udp: number, tcp = udp) => [
    { protocol: 'UDP', port: udp },
    { protocol: 'TCP', port: tcp },
  ];

  it('CoreDNS on 5353 behind port 53: a numeric targetPort, or a named one the pods give 5353', () => {
    const numeric = kubeDns([
      { port: 53, protocol: 'UDP', targetPort: 5353 },
      { port: 53, protocol: 'TCP', targetPort: 5353 },
      { port: 9153, protocol: 'TCP', targetPort: 9153 },
    ]);
    expect(dnsExceptionPorts(numeric, [coredns('coredns-7d9f-a', at5353)])).toEqual(both(5353));
    const named = kubeDns([
      { port: 53, protocol: 'UDP', targetPort: 'dns' },
      { port: 53, protocol: 'TCP', targetPort: 'dns-tcp' },
    ]);
    expect(dnsExceptionPorts(named, [coredns('coredns-7d9f-a', at5353)])).toEqual(both(5353));
    // Pods of two revisions giving the name two numbers: both are opened.
    const other = [
      { name: 'dns', containerPort: 1053, protocol: 'UDP' },
      { name: 'dns-tcp', containerPort: 1053, protocol: 'TCP' },
    ];
    expect(
      dnsExceptionPorts(named, [coredns('coredns-7d9f-a', at5353), coredns('coredns-7d9f-bb', other)]),
    ).toEqual([
      { protocol: 'UDP', port: 1053 },
      { protocol: 'UDP', port: 5353 },
      { protocol: 'TCP', port: 1053 },
      { protocol: 'TCP', port: 5353 },
    ]);
  });

  it('without the pods: a numeric targetPort still, 53 for a named one, and 53 without the Service', () => {
    const mixed = kubeDns([
      { port: 53, protocol: 'UDP', targetPort: 5353 },
      { port: 53, protocol: 'TCP', targetPort: 'dns-tcp' },
    ]);
    expect(dnsExceptionPorts(mixed, [])).toEqual(both(5353, 53));
    // Without a selector (backed by EndpointSlices, not read): the same.
    expect(dnsExceptionPorts(kubeDns(mixed.spec.ports!, undefined), [])).toEqual(both(5353, 53));
    // A protocol the Service has no port 53 of, and no targetPort (the port itself).
    expect(dnsExceptionPorts(kubeDns([{ port: 53, protocol: 'UDP' }]), [])).toEqual(both(53));
    expect(dnsExceptionPorts(undefined, [])).toEqual(both(53));
  });

  it('every mechanism opens those ports to the DNS pods, and the engine compiles them', () => {
    const iso = spec({ target: { pods: ['a'] } });
    const ports = dnsExceptionPorts(
      kubeDns([
        { port: 53, protocol: 'UDP', targetPort: 'dns' },
        { port: 53, protocol: 'TCP', targetPort: 'dns-tcp' },
      ]),
      [coredns('coredns-7d9f-a', at5353)],
    );
    const np = quarantineNetworkPolicy({
      namespace: 'shop',
      name: 'iso',
      spec: iso,
      method: 'NetworkPolicy',
      names,
      dnsPorts: ports,
    });
    expect(np.spec.egress?.[0]?.ports).toEqual(both(5353));
    expect(() => compileNetworkPolicy(np)).not.toThrow();
    const cnp = adminTierPolicy({
      namespace: 'shop',
      name: 'iso',
      spec: iso,
      method: 'ClusterNetworkPolicy',
      names,
      dnsPorts: ports,
    });
    const cnpEgress = (cnp.spec as { egress: Record<string, unknown>[] }).egress;
    expect(cnpEgress[0]).toMatchObject({
      name: 'dns',
      action: 'Accept',
      protocols: [
        { udp: { destinationPort: { number: 5353 } } },
        { tcp: { destinationPort: { number: 5353 } } },
      ],
    });
    const anp = adminTierPolicy({
      namespace: 'shop',
      name: 'iso',
      spec: iso,
      method: 'AdminNetworkPolicy',
      names,
      dnsPorts: ports,
    });
    expect((anp.spec as { egress: Record<string, unknown>[] }).egress[0]).toMatchObject({
      name: 'dns',
      action: 'Allow',
      ports: [
        { portNumber: { protocol: 'UDP', port: 5353 } },
        { portNumber: { protocol: 'TCP', port: 5353 } },
      ],
    });
    for (const obj of [cnp, anp])
      expect(compileClusterPolicy(obj).egress[0]?.ports).toEqual([
        { protocol: 'UDP', start: 5353, end: 5353 },
        { protocol: 'TCP', start: 5353, end: 5353 },
      ]);
  });
});

describe('pod labels: quarantine and exact restore', () => {
  const svc = (name: string, selector: Record<string, string>): Service => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'shop' },
    spec: { selector },
  });

  it('round-trips: release restores the labels and annotations exactly', () => {
    const before = pod(
      'web-1',
      { app: 'web', tier: 'front', 'pod-template-hash': 'abc' },
      { annotations: { keep: 'me' } },
    );
    const plan = podLabelPlan(before, 'iso', true, [svc('web', { app: 'web' }), svc('other', { app: 'db' })]);
    expect(plan.kind).toBe('patch');
    if (plan.kind !== 'patch') return;
    expect(plan.removed).toEqual(['app']);
    const isolated = mergePatch(before, plan.patch) as Pod;
    expect(isolated.metadata.labels).toEqual({
      tier: 'front',
      'pod-template-hash': 'abc',
      [QUARANTINE_LABEL]: 'iso',
    });
    expect(JSON.parse(isolated.metadata.annotations?.[PRIOR_ANNOTATION] ?? '')).toEqual({
      isolation: 'iso',
      labels: { [QUARANTINE_LABEL]: null, app: 'web' },
    });
    expect(podAfter(before, plan).metadata.labels).toEqual(isolated.metadata.labels);
    const restored = mergePatch(isolated, podReleasePatch(isolated, 'iso')) as Pod;
    expect(restored.metadata.labels).toEqual(before.metadata.labels);
    expect(restored.metadata.annotations).toEqual(before.metadata.annotations);
  });

  it('a quarantine label taken off by hand and put back keeps the record of the detached labels', () => {
    const before = pod('web-1', { app: 'web', tier: 'front' }, { annotations: { keep: 'me' } });
    const services = [svc('web', { app: 'web' })];
    const first = podLabelPlan(before, 'iso', true, services);
    if (first.kind !== 'patch') throw new Error('expected a patch');
    // Someone takes the quarantine label off by hand; the next reconcile puts it back.
    const unlabelled = mergePatch(mergePatch(before, first.patch), {
      metadata: { labels: { [QUARANTINE_LABEL]: null } },
    }) as Pod;
    const again = podLabelPlan(unlabelled, 'iso', true, services);
    if (again.kind !== 'patch') throw new Error('expected a patch');
    const isolated = mergePatch(unlabelled, again.patch) as Pod;
    expect(isolated.metadata.labels).toEqual({ tier: 'front', [QUARANTINE_LABEL]: 'iso' });
    const restored = mergePatch(isolated, podReleasePatch(isolated, 'iso')) as Pod;
    expect(restored.metadata.labels).toEqual(before.metadata.labels);
    expect(restored.metadata.annotations).toEqual(before.metadata.annotations);
  });

  it('is idempotent and never takes over another isolation', () => {
    expect(podLabelPlan(pod('a', { [QUARANTINE_LABEL]: 'iso' }), 'iso', false, [])).toEqual({ kind: 'done' });
    expect(podLabelPlan(pod('a', { [QUARANTINE_LABEL]: 'other' }), 'iso', false, [])).toEqual({
      kind: 'other',
      by: 'other',
    });
    expect(podReleasePatch(pod('a', { [QUARANTINE_LABEL]: 'other' }), 'iso')).toBeUndefined();
  });

  it('the patch is guarded by the resourceVersion it was computed from', () => {
    const plan = podLabelPlan(pod('a', {}), 'iso', false, []);
    expect(plan.kind === 'patch' && plan.patch.metadata.resourceVersion).toBe('7');
  });
});

describe('microseg-managed allow policies', () => {
  const np = (
    name: string,
    labels: Record<string, string>,
    podSelector: NetworkPolicy['spec']['podSelector'],
  ): NetworkPolicy => ({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name, namespace: 'shop', labels, resourceVersion: '3' },
    spec: { podSelector, policyTypes: ['Ingress'], ingress: [{}] },
  });
  const managed = { 'app.kubernetes.io/managed-by': 'microseg' };

  it('patches only microseg allow policies lacking the exclusion, and the undo restores the selector', () => {
    const nps = [
      np('b-allow', managed, { matchLabels: { app: 'web' } }),
      np('a-allow', managed, {
        matchLabels: { app: 'db' },
        matchExpressions: [{ key: QUARANTINE_LABEL, operator: 'DoesNotExist' }],
      }),
      np('foreign', {}, { matchLabels: { app: 'web' } }),
      np(
        'microseg-quarantine-x',
        { ...managed, 'microseg.dev/isolation': 'x' },
        { matchLabels: { [QUARANTINE_LABEL]: 'x' } },
      ),
    ];
    const patches = exclusionPatches(nps);
    expect(patches.map((p) => p.name)).toEqual(['b-allow']);
    const patched = mergePatch(nps[0], patches[0]?.patch) as NetworkPolicy;
    expect(patched.spec.podSelector).toEqual({
      matchLabels: { app: 'web' },
      matchExpressions: [{ key: QUARANTINE_LABEL, operator: 'DoesNotExist' }],
    });
    const undone = mergePatch(patched, exclusionRemovalPatch(patched)) as NetworkPolicy;
    expect(undone.spec.podSelector).toEqual(nps[0]?.spec.podSelector);
    expect(undone.metadata.annotations).toEqual({});
    // A policy that carried the exclusion on its own keeps it.
    expect(exclusionRemovalPatch(nps[1]!)).toBeUndefined();
  });
});
