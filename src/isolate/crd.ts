/**
 * The Isolation CustomResourceDefinition, built in code next to the API types. `crds/microseg.dev_isolations.yaml`
 * is generated from here (`node src/isolate/crd.ts` rewrites it); a test fails when the file is stale.
 */
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { stringify } from 'yaml';
import { GROUP, VERSION } from '../controller/api.ts';
import { LABELLED_KIND, WORKLOAD_LABEL } from '../identity/index.ts';
import {
  DIRECTIONS,
  KIND,
  MAX_DURATION_TEXT,
  MAX_FORENSICS,
  MAX_ISOLATION_NAME,
  MAX_REASON,
  MAX_REFERENCE,
  MAX_TARGET_PODS,
  MECHANISMS,
  PHASES,
  PLURAL,
  RECONCILED,
  RECONCILED_CONDITION,
  RECONCILE_FAILED,
  APIGROUP_RE,
  CUSTOM_KIND_RE,
  MAX_APIGROUP,
  MAX_KIND,
  WORKLOAD_KINDS,
  WORKLOAD_KIND_GROUPS,
} from './api.ts';
import { WORKLOAD_KINDS as IDENTITY_WORKLOAD_KINDS } from '../identity/types.ts';
import type { Schema } from '../model/openapi.ts';
import {
  arr,
  bool,
  DURATION_PATTERN,
  durationAtLeast,
  int,
  labelSelector,
  obj,
  str,
} from '../model/openapi.ts';

/**
 * RE2 (CEL `matches`) for a character JavaScript's `trim()` keeps, i.e. one that is not white space or a
 * line terminator: a reason without one is what `parseIsolationSpec` refuses as blank. `\pZ` is every
 * Unicode space separator and U+2028/U+2029; `\s` in RE2 would leave out U+00A0 and the like.
 */
export const NOT_BLANK_RE2 = String.raw`[^\\t\\n\\v\\f\\r\\x{feff}\\pZ]`;

/** CEL text of a list of strings. */
const celList = (items: readonly string[]): string => `[${items.map((i) => `'${i}'`).join(', ')}]`;

/**
 * The CEL rules of `spec.target.workload`, as parseIsolationSpec checks kind and apiGroup: no `Pod`, no
 * known kind in another case; a known kind's apiGroup its own when given; a custom resource's kind with
 * an apiGroup that has a dot.
 */
function workloadRules(): { rule: string; message: string }[] {
  const known = celList(WORKLOAD_KINDS);
  const lower = celList(IDENTITY_WORKLOAD_KINDS.map((k) => k.toLowerCase()));
  const pairs = celList(WORKLOAD_KINDS.map((k) => `${k}.${WORKLOAD_KIND_GROUPS[k]}`));
  const byGroup = new Map<string, string[]>();
  for (const k of WORKLOAD_KINDS)
    byGroup.set(WORKLOAD_KIND_GROUPS[k], [...(byGroup.get(WORKLOAD_KIND_GROUPS[k]) ?? []), k]);
  const and = (l: string[]) => (l.length === 1 ? l[0]! : `${l.slice(0, -1).join(', ')} and ${l.at(-1)}`);
  const groupText = [...byGroup].map(([g, ks]) => `${g} for ${and(ks)}`).join(', ');
  return [
    {
      rule: `self.kind in ${known} || !(self.kind.lowerAscii() in ${lower})`,
      message:
        'kind must not be Pod (name pods by target.pods) nor a kind microseg knows spelt in another case',
    },
    {
      rule: `!has(self.apiGroup) || !(self.kind in ${known}) || self.kind + '.' + self.apiGroup in ${pairs}`,
      message: `apiGroup must be the API group of the kind: ${groupText}`,
    },
    {
      rule: `self.kind != '${LABELLED_KIND}' || has(self.apiGroup)`,
      message: `kind ${LABELLED_KIND} is a workload the ${WORKLOAD_LABEL} label of its pods names, not an owner: target its pods by podSelector on that label`,
    },
    {
      rule: `self.kind.lowerAscii() in ${lower} || self.kind == '${LABELLED_KIND}' || has(self.apiGroup)`,
      message: `apiGroup is required with a kind that is not one of ${WORKLOAD_KINDS.join(', ')}: a custom resource's kind is named with its API group`,
    },
    {
      rule: `self.kind.lowerAscii() in ${lower} || !has(self.apiGroup) || self.apiGroup.contains('.')`,
      message: "apiGroup of a custom resource's kind must have a dot (e.g. postgresql.cnpg.io)",
    },
  ];
}

export function isolationCRD(): Schema {
  const spec = obj(
    'What to cut off, in which direction, with which exceptions, why, and for how long.',
    {
      target: obj(
        'The pods to isolate: exactly one of pods, podSelector, workload.',
        {
          pods: arr(
            'Pod names in the Isolation namespace.',
            { type: 'string' },
            { minItems: 1, maxItems: MAX_TARGET_PODS },
          ),
          podSelector: {
            ...labelSelector(
              'Pods of the namespace matching this selector, now and later. Must not be empty.',
              true,
            ),
            'x-kubernetes-validations': [
              {
                rule: '(has(self.matchLabels) && size(self.matchLabels) > 0) || (has(self.matchExpressions) && size(self.matchExpressions) > 0)',
                message: 'must not be empty (it would isolate every pod of the namespace)',
              },
            ],
          },
          workload: obj(
            'A workload: its pods at the time of isolation, or also its future pods.',
            {
              kind: str(
                `Workload kind: ${WORKLOAD_KINDS.join(', ')}, or the kind of a custom resource that is the controller of its pods (with apiGroup), e.g. Cluster.`,
                { pattern: CUSTOM_KIND_RE.source, maxLength: MAX_KIND },
              ),
              apiGroup: str(
                "The kind's API group: required with a custom resource's kind (e.g. postgresql.cnpg.io; its pods are those whose controller owner reference names the resource in this group, whatever the version); with another kind, optional and its own group (apps, batch, argoproj.io for Rollout, apps.kruise.io for CloneSet).",
                { pattern: APIGROUP_RE.source, maxLength: MAX_APIGROUP },
              ),
              name: str('Workload name.'),
              includeFuture: bool('Also isolate pods the workload creates later (replacements, scale-ups).', {
                default: false,
              }),
            },
            { required: ['kind', 'name'], 'x-kubernetes-validations': workloadRules() },
          ),
        },
        {
          'x-kubernetes-validations': [
            {
              rule: '[has(self.pods), has(self.podSelector), has(self.workload)].filter(x, x).size() == 1',
              message: 'set exactly one of pods, podSelector, workload',
            },
          ],
        },
      ),
      direction: str('Both (default), Ingress or Egress.', { enum: [...DIRECTIONS], default: 'Both' }),
      exceptions: obj('Traffic still allowed to or from the isolated pods.', {
        dns: bool(
          "Allow DNS to the cluster DNS pods, UDP and TCP, on the port they take the kube-dns Service's port 53 on (its targetPort: 5353 for a CoreDNS listening there; 53 without the Service). Default true.",
          { default: true },
        ),
        forensics: arr(
          'Peers allowed to reach the isolated pods (forensic tooling). podSelector alone means this namespace.',
          obj(
            'A peer.',
            {
              namespaceSelector: labelSelector('Namespaces of the peer.', true),
              podSelector: labelSelector('Pods of the peer.', true),
            },
            {
              'x-kubernetes-validations': [
                {
                  rule: 'has(self.namespaceSelector) || has(self.podSelector)',
                  message: 'must set namespaceSelector, podSelector or both',
                },
              ],
            },
          ),
          { maxItems: MAX_FORENSICS },
        ),
      }),
      detachFromServices: bool(
        'Also remove the labels Services select the pods by (recorded and restored on release), so they leave the Service endpoints and their controller replaces them.',
        { default: false },
      ),
      reason: str('Why the pods are isolated. Not blank.', {
        minLength: 1,
        maxLength: MAX_REASON,
        'x-kubernetes-validations': [
          { rule: `self.matches('${NOT_BLANK_RE2}')`, message: 'must not be blank' },
        ],
      }),
      incident: str('Incident reference (ticket, alert fingerprint, Falco event id).', {
        maxLength: MAX_REFERENCE,
      }),
      requestedBy: str('Who asked for the isolation.', { maxLength: MAX_REFERENCE }),
      duration: str('Release automatically this long after isolation, e.g. "4h".', {
        pattern: DURATION_PATTERN,
        maxLength: MAX_DURATION_TEXT,
        'x-kubernetes-validations': [durationAtLeast('1s')],
      }),
      expiresAt: str('Release automatically at this time.', { format: 'date-time' }),
      dryRun: bool('Plan and check for leaks, change nothing.', { default: false }),
      mechanism: str('Auto (default) picks the strongest the cluster serves.', {
        enum: ['Auto', ...MECHANISMS],
        default: 'Auto',
      }),
    },
    {
      required: ['target', 'reason'],
      'x-kubernetes-validations': [
        {
          rule: '!(has(self.duration) && has(self.expiresAt))',
          message: 'duration and expiresAt are mutually exclusive',
        },
      ],
    },
  );
  const status = obj('What the controller did and found.', {
    observedGeneration: int('The spec generation this status describes.'),
    phase: str('Pending, Isolated, Leaking, Released or Failed.', { enum: [...PHASES] }),
    method: str('The mechanism used.', { enum: [...MECHANISMS] }),
    message: str('A one-line summary, or the validation problems.'),
    isolatedPods: arr(
      'Names of the isolated pods (at most 100 listed); on a Released record, the pods it held.',
      { type: 'string' },
    ),
    podCount: int('Number of pods isolated now: 0 on a Released record.'),
    objects: arr('Objects created for this Isolation.', { type: 'string' }),
    patchedPolicies: arr('microseg allow policies given the quarantine exclusion by this Isolation.', {
      type: 'string',
    }),
    leaks: arr(
      'Policies and rules that still admit traffic to or from an isolated pod.',
      obj('One leaking rule.', {
        policy: str('The policy.'),
        rule: str('The rule, e.g. ingress[0].'),
        direction: str('ingress or egress.'),
        pod: str('The isolated pod.'),
        example: str('A connection the rule admits.'),
      }),
    ),
    proof: obj('The engine check of the isolation.', {
      probes: int('Connections checked.'),
      exceptions: int('Connections admitted by the configured exceptions.'),
      leaks: int('Leaking rules found.'),
      notEvaluated: int(
        'Admin-tier policies the semantics engine cannot read (e.g. an egress peer by domainNames), left out of the check: what they admit is not proved. The message names them.',
      ),
    }),
    isolatedAt: str('When the isolation took effect.'),
    expiresAt: str('When it will be released automatically.'),
    releasedAt: str('When it was released.'),
    conditions: arr(
      `Conditions. ${RECONCILED_CONDITION}: False (reason ${RECONCILE_FAILED}) with the error while the controller's reconcile fails and is retried with backoff; True (reason ${RECONCILED}) once one succeeds.`,
      obj(
        'A condition of the Isolation (Kubernetes metav1.Condition).',
        {
          type: str(`Condition type: ${RECONCILED_CONDITION}.`),
          status: str('True, False or Unknown.', { enum: ['True', 'False', 'Unknown'] }),
          reason: str(`A CamelCase reason code: ${RECONCILED} or ${RECONCILE_FAILED}.`),
          message: str('A human-readable explanation: for a failure, the error.'),
          lastTransitionTime: str('When status last changed.', { format: 'date-time' }),
          observedGeneration: int('The metadata.generation the condition was computed for.', {
            format: 'int64',
          }),
        },
        { required: ['type', 'status', 'reason', 'lastTransitionTime'] },
      ),
      { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] },
    ),
    timeline: arr(
      'What happened, oldest first (the newest 40 kept).',
      obj('One action.', { time: str('When.'), action: str('What.'), message: str('Details.') }),
    ),
  });
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${PLURAL}.${GROUP}`,
      labels: { 'app.kubernetes.io/name': 'microseg', 'app.kubernetes.io/part-of': 'microseg' },
    },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: {
        kind: KIND,
        listKind: `${KIND}List`,
        plural: PLURAL,
        singular: 'isolation',
        shortNames: ['iso'],
        categories: ['microseg'],
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            {
              name: 'Phase',
              type: 'string',
              jsonPath: '.status.phase',
              description: 'Pending, Isolated, Leaking, Released or Failed.',
            },
            {
              name: 'Reconciled',
              type: 'string',
              jsonPath: '.status.conditions[?(@.type=="Reconciled")].status',
              description: 'False when the last reconcile failed (its error: kubectl describe).',
            },
            { name: 'Method', type: 'string', jsonPath: '.status.method', description: 'Mechanism used.' },
            { name: 'Pods', type: 'integer', jsonPath: '.status.podCount', description: 'Isolated pods.' },
            {
              name: 'Leaks',
              type: 'integer',
              jsonPath: '.status.proof.leaks',
              description: 'Leaking rules found.',
            },
            {
              name: 'Expires',
              type: 'string',
              jsonPath: '.status.expiresAt',
              description: 'Automatic release.',
            },
            { name: 'Reason', type: 'string', jsonPath: '.spec.reason', priority: 1, description: 'Why.' },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          schema: {
            openAPIV3Schema: obj(
              'Cuts pods off the network for incident response, keeping them running for forensics.',
              {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: {
                  type: 'object',
                  properties: { name: { type: 'string', maxLength: MAX_ISOLATION_NAME } },
                },
                spec,
                status,
              },
              { required: ['spec'] },
            ),
          },
        },
      ],
    },
  };
}

export const CRD_FILE = 'microseg.dev_isolations.yaml';

export function isolationCrdYaml(): string {
  return `# Generated by src/isolate/crd.ts; do not edit.\n${stringify(isolationCRD(), { lineWidth: 0, singleQuote: true })}`;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  writeFileSync(new URL(`../../crds/${CRD_FILE}`, import.meta.url), isolationCrdYaml());
}
