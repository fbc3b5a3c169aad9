/**
 * The CustomResourceDefinitions of microseg.dev, built in code so every description lives next to the
 * API types. `crds/*.yaml` is generated from here (`node src/controller/crds.ts && npx prettier --write crds` rewrites it); a test
 * fails when the files are stale.
 */
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { stringify } from 'yaml';
import { DEFAULTS, GROUP, MAX_DURATION_TEXT, MAX_NAME_LENGTH, VERSION } from './api.ts';
import type { Schema } from '../model/openapi.ts';
import {
  arr,
  bool,
  DURATION_PATTERN,
  durationAtLeast,
  int,
  labelSelector,
  malformedDuration,
  obj,
  str,
} from '../model/openapi.ts';

const duration = (description: string, dflt: string, min: string): Schema =>
  str(`${description} A duration such as "90s", "15m" or "1h30m". Default ${dflt}.`, {
    default: dflt,
    pattern: DURATION_PATTERN,
    maxLength: MAX_DURATION_TEXT,
    'x-kubernetes-validations': [durationAtLeast(min)],
  });

function peerSchema(): Schema {
  return obj('A peer: pods chosen by selectors, or an IP block.', {
    podSelector: labelSelector(
      "Pods, in the namespaces chosen by namespaceSelector (or the policy's own namespace when absent).",
    ),
    namespaceSelector: labelSelector('Namespaces whose pods are peers. {} means every namespace.'),
    ipBlock: obj(
      'A CIDR range of peer addresses, with exceptions.',
      {
        cidr: str('A CIDR such as 10.0.0.0/8 or 2001:db8::/32.'),
        except: arr('CIDRs inside cidr that are not peers.', { type: 'string' }),
      },
      { required: ['cidr'] },
    ),
  });
}

function portsSchema(): Schema {
  return arr(
    'Destination ports the rule allows. Empty or absent: every port.',
    obj('A port or port range.', {
      protocol: str('TCP, UDP or SCTP. Default TCP.', { enum: ['TCP', 'UDP', 'SCTP'] }),
      port: {
        'x-kubernetes-int-or-string': true,
        description: 'A port number or a named container port. Absent: every port of the protocol.',
      },
      endPort: int('Last port of a range starting at port (a number).'),
    }),
  );
}

/** A networking.k8s.io/v1 NetworkPolicy spec (what ProposedNetworkPolicy.spec holds). */
function networkPolicySpec(description: string): Schema {
  return obj(
    description,
    {
      podSelector: labelSelector(
        'The pods of this namespace the policy selects (isolates). {} selects every pod.',
      ),
      policyTypes: arr('Directions the policy isolates: Ingress, Egress or both.', {
        type: 'string',
        enum: ['Ingress', 'Egress'],
      }),
      ingress: arr(
        'Allowed incoming connections. Empty with policyTypes Ingress: deny all ingress.',
        obj('One ingress rule: traffic from any of `from` to any of `ports`.', {
          from: arr('Allowed sources. Empty: every source.', peerSchema()),
          ports: portsSchema(),
        }),
      ),
      egress: arr(
        'Allowed outgoing connections. Empty with policyTypes Egress: deny all egress.',
        obj('One egress rule: traffic to any of `to` on any of `ports`.', {
          to: arr('Allowed destinations. Empty: every destination.', peerSchema()),
          ports: portsSchema(),
        }),
      ),
    },
    { required: ['podSelector'] },
  );
}

const conditionSchema = obj(
  'A condition of the object (Kubernetes metav1.Condition).',
  {
    type: str('Condition type: Valid, Learning, ProposalStable, AuditClean, Enforced or Degraded.'),
    status: str('True, False or Unknown.', { enum: ['True', 'False', 'Unknown'] }),
    reason: str('A CamelCase reason code (see docs/crds.md for the list).'),
    message: str('A human-readable explanation.'),
    lastTransitionTime: str('When status last changed.', { format: 'date-time' }),
    observedGeneration: int('The metadata.generation the condition was computed for.', { format: 'int64' }),
  },
  { required: ['type', 'status', 'reason', 'lastTransitionTime'] },
);

function crd(opts: {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  scope: 'Cluster' | 'Namespaced';
  description: string;
  spec: Schema;
  status?: Schema;
  columns: { name: string; type: string; jsonPath: string; description: string; priority?: number }[];
  rootValidations?: Schema[];
}): Schema {
  const properties: Record<string, Schema> = {
    apiVersion: str('The API version, microseg.dev/v1alpha1.'),
    kind: str(`${opts.kind}.`),
    metadata: { type: 'object' },
    spec: opts.spec,
  };
  if (opts.status) properties.status = opts.status;
  const schema: Schema = {
    type: 'object',
    description: opts.description,
    properties,
    required: ['spec'],
  };
  if (opts.rootValidations) schema['x-kubernetes-validations'] = opts.rootValidations;
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${opts.plural}.${GROUP}`,
      labels: { 'app.kubernetes.io/name': 'microseg', 'app.kubernetes.io/part-of': 'microseg' },
    },
    spec: {
      group: GROUP,
      scope: opts.scope,
      names: {
        kind: opts.kind,
        listKind: `${opts.kind}List`,
        plural: opts.plural,
        singular: opts.singular,
        shortNames: opts.shortNames,
        categories: ['microseg'],
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: opts.status ? { status: {} } : undefined,
          additionalPrinterColumns: [
            ...opts.columns,
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          schema: { openAPIV3Schema: schema },
        },
      ],
    },
  };
}

export function segmentationCRD(): Schema {
  const spec = obj(
    'What to segment and how far to go: learn the traffic of the selected namespaces, audit the proposal against live flows, then enforce it.',
    {
      namespaceSelector: labelSelector(
        'Namespaces this Segmentation covers, by their labels. Example: {matchLabels: {team: shop}}. The Kubernetes system namespaces (kube-system, kube-public, kube-node-lease) and the namespace the controller runs in are covered only by a selector that names them by kubernetes.io/metadata.name (matchLabels, or an In requirement); any other selector that matches them ({}, a NotIn on the name, a label they carry) leaves them out, and the Valid message names each one left out and why. So {} selects every namespace but those. A namespace may belong to only one Segmentation; the later one reports NamespaceConflict.',
        true,
      ),
      mode: str(
        'Learn: ingest flows and keep ProposedNetworkPolicies current; nothing is enforced. Audit: freeze the proposal and count live flows it would block. Enforce: apply the proposal as NetworkPolicies (refused while the audit shows would-be-blocked flows, unless enforce.force). Switching back to Learn or Audit removes the applied NetworkPolicies. Default Learn.',
        { enum: ['Learn', 'Audit', 'Enforce'], default: 'Learn' },
      ),
      learning: obj(
        'How the traffic graph is learned.',
        {
          ruleExpiry: duration(
            'A learned edge not seen for this long ages out of the graph and its rule leaves the proposal; not an edge behind an allow (learning.minFlows flows or more on it since it was learned, dropped ones too, of the learning.minFlows the proposal is made with; an end in a namespace covered) while the proposal of a Segmentation that is enforcing it is still being written (a ProposedNetworkPolicy of it refused, not taken, not deleted or its name held), when it waits until the proposal is written in full.',
            DEFAULTS.ruleExpiry,
            '1m',
          ),
          stableAfter: duration(
            'ProposalStable becomes True once the proposed policies have not changed for this long.',
            DEFAULTS.stableAfter,
            '0s',
          ),
          minFlows: int(
            'An edge becomes a rule only after this many flows were seen on it. Default 1 (every observed edge).',
            { default: DEFAULTS.minFlows, minimum: 1, maximum: 1_000_000 },
          ),
        },
        { default: {} },
      ),
      audit: obj(
        'How the frozen proposal is audited in Audit mode.',
        {
          window: duration(
            'AuditClean becomes True only after the audit has run this long with zero would-be-blocked flows in the last window.',
            DEFAULTS.auditWindow,
            '1s',
          ),
          samples: int(
            `How many would-be-blocked flows are kept in status.audit.samples (0 to ${DEFAULTS.maxSamples}). Default ${DEFAULTS.samples}.`,
            { default: DEFAULTS.samples, minimum: 0, maximum: DEFAULTS.maxSamples },
          ),
        },
        { default: {} },
      ),
      enforce: obj(
        'Enforce-mode options.',
        {
          force: bool(
            'Enforce even though the audit shows would-be-blocked flows (or has not run for a full window). Default false: Enforce is refused with condition Enforced=False, reason EnforceRefused.',
            { default: false },
          ),
        },
        { default: {} },
      ),
      promotion: obj(
        'Automatic promotion Learn → Audit → Enforce. Off by default.',
        {
          automatic: bool(
            'When true, the controller moves spec.mode from Learn to Audit once ProposalStable has held for `after`, and from Audit to Enforce once AuditClean has held for `after` and every CronJob in scope that made no flow and is not suspended has finished a run since the Segmentation was created (or since its namespace joined the scope, status.namespacesJoined), at least audit.window ago (the traffic of one that has not could not be learned or audited; AuditClean names it, a PromotionWaiting Event says the promotion waits). Default false. Not while spec.mode is declared by a server-side apply manager other than microseg or in the kubectl last-applied annotation (GitOps: the next apply would put it back): a PromotionDue Event says the promotion is due instead.',
            { default: false },
          ),
          after: duration('How long a condition must hold before promotion.', DEFAULTS.promotionAfter, '1s'),
        },
        { default: {} },
      ),
      policy: obj(
        'How policies are synthesised from the learned graph.',
        {
          defaultDeny: bool('Write a default-deny NetworkPolicy per namespace. Default true.', {
            default: true,
          }),
          includeDropped: bool('Also allow edges whose every observation was DROPPED. Default false.', {
            default: false,
          }),
          worldIngress: str(
            'Ingress from the internet to load-balanced workloads: any allows 0.0.0.0/0 minus the IPv4 pod networks, and in a cluster that has IPv6 (an IPv6 pod address or ClusterIP) ::/0 minus the IPv6 pod networks too, on the observed ports; observed allows only client addresses seen. Default any.',
            { enum: ['any', 'observed'], default: 'any' },
          ),
        },
        { default: {} },
      ),
    },
    {
      required: ['namespaceSelector'],
      'x-kubernetes-validations': [
        {
          rule: `!has(self.audit) || !has(self.learning) || !has(self.audit.window) || !has(self.learning.ruleExpiry) || ${malformedDuration('self.audit.window')} || ${malformedDuration('self.learning.ruleExpiry')} || duration(self.audit.window) <= duration(self.learning.ruleExpiry)`,
          message: 'spec.audit.window must not be longer than spec.learning.ruleExpiry',
        },
      ],
    },
  );
  const status = obj('What the controller observed and did. Written only by the controller.', {
    observedGeneration: int('The metadata.generation this status describes.', { format: 'int64' }),
    phase: str('One-word summary: Learning, Auditing, Enforcing, Refused, Invalid or Degraded.'),
    mode: str('The mode the controller is acting in.'),
    modeSince: str(
      'When the controller first acted in this mode. Automatic promotion counts the condition it waits for from then at the earliest, so a mode set back by hand (a rollback) holds for a full spec.promotion.after.',
      { format: 'date-time' },
    ),
    namespaces: arr('Namespaces currently selected.', { type: 'string' }),
    namespacesJoined: {
      type: 'object',
      description:
        'When each selected namespace that was not selected at the first reconcile joined the scope (namespace → time, RFC 3339): learning of it began then, so a CronJob of it counts its runs for the promotion gate from then, not from the creation of the Segmentation. A namespace that leaves the selection is dropped, and joins again from the time it is selected again.',
      additionalProperties: { type: 'string', format: 'date-time' },
    },
    workloads: int(
      "Workloads in the selected namespaces: the cluster's, and one known only from flows (a pod the cluster does not have) while a learned edge has it.",
    ),
    edges: int('Learned edges (source, destination, protocol, port) touching the selected namespaces.'),
    segmentCount: int('Segments found in the learned graph.'),
    policies: int('Policies in the current proposal.'),
    enforcedPolicies: int('NetworkPolicies currently applied by microseg for this Segmentation.'),
    wouldBlock: int('Flows the frozen proposal would block inside the audit window.'),
    unauditable: int(
      'Flows the frozen proposal could not be checked against inside the audit window: an end the audit could place at no pod or address (a workload with no pod, say), or a connection to the ClusterIP of a Service with no backend, which fails at the Service whatever the policies. They do not make AuditClean False; its message names their count.',
    ),
    unobserved: int(
      'Workloads in the selected namespaces that no learned flow reaches or leaves (a CronJob between runs, a Deployment scaled to zero): only the default deny selects them, which cuts off all their traffic once enforced. They do not make AuditClean False; its message names their count.',
    ),
    unobservedWorkloads: arr('Those workloads as namespace/Kind/name, sorted (at most 100 listed).', {
      type: 'string',
    }),
    flowsIngested: int(
      'Flows learned for this Segmentation; a new leader (or a restarted controller) counts on from this value.',
      { format: 'int64' },
    ),
    conditions: arr(
      'Conditions: Valid, Learning, ProposalStable, AuditClean, Enforced, Degraded.',
      conditionSchema,
      {
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['type'],
      },
    ),
    segments: arr(
      'Segments of the learned graph and their member workloads (at most 100 members listed each).',
      obj('One segment.', {
        name: str('Segment name.'),
        kind: str('community, pinned, platform or isolated.'),
        members: arr('Member workloads as namespace/Kind/name.', { type: 'string' }),
        memberCount: int('Number of members (members may be truncated).'),
      }),
    ),
    proposal: obj('The current proposal.', {
      hash: str('Hash of the proposed policy specs.'),
      since: str('When the proposal last changed.', { format: 'date-time' }),
      inputs: obj(
        "The spec fields the proposal in place was made from. While the proposal of a Segmentation that is enforcing it is still being written, a change of them waits (a SpecChangeDeferred Event says so), so that no allow enforced is taken out without an audit: until it is written in full and frozen, and a frozen proposal keeps them until it is proposed afresh in Learn, or until spec.mode is set back to Audit or Learn, which enforce nothing: a proposal still being written is then made with the spec's at once.",
        {
          minFlows: int('learning.minFlows.'),
          defaultDeny: bool('policy.defaultDeny.'),
          includeDropped: bool('policy.includeDropped.'),
          worldIngress: str('policy.worldIngress.', { enum: ['any', 'observed'] }),
        },
      ),
    }),
    audit: obj('Audit state, kept across leader changes.', {
      since: str('When the audit started (the proposal was frozen).', { format: 'date-time' }),
      buckets: {
        type: 'object',
        description:
          'Would-be-blocked flows per time bucket (bucket start in epoch seconds → count; a bucket is a sixtieth of the window, at least 1s) within the audit window.',
        additionalProperties: { type: 'integer' },
      },
      unauditableBuckets: {
        type: 'object',
        description:
          'Flows that could not be audited per time bucket, keyed like buckets, within the audit window.',
        additionalProperties: { type: 'integer' },
      },
      lastBlocked: str('When a flow was last found that the proposal would block.', { format: 'date-time' }),
      samples: arr(
        'Recent would-be-blocked flows.',
        obj('One would-be-blocked flow.', {
          time: str('When the flow was seen.', { format: 'date-time' }),
          source: str('Source peer (namespace/Kind/name, world:IP, ...).'),
          destination: str('Destination peer.'),
          protocol: str('TCP, UDP or SCTP.'),
          port: int('Destination port.'),
          count: int('Connections the record stands for.'),
        }),
      ),
    }),
    lastChange: obj('The last transition the controller made.', {
      time: str('When.', { format: 'date-time' }),
      message: str('What changed.'),
    }),
  });
  return crd({
    kind: 'Segmentation',
    plural: 'segmentations',
    singular: 'segmentation',
    shortNames: ['seg'],
    scope: 'Cluster',
    description:
      'Segmentation: microsegment the namespaces chosen by spec.namespaceSelector. The controller learns their traffic, proposes least-privilege NetworkPolicies (ProposedNetworkPolicy objects), audits the proposal against live flows and, in Enforce mode, applies it.',
    spec,
    status,
    rootValidations: [
      {
        rule: `size(self.metadata.name) <= ${MAX_NAME_LENGTH}`,
        message: `metadata.name must be at most ${MAX_NAME_LENGTH} characters`,
      },
    ],
    columns: [
      { name: 'Mode', type: 'string', jsonPath: '.spec.mode', description: 'Requested mode.' },
      { name: 'Phase', type: 'string', jsonPath: '.status.phase', description: 'Summary.' },
      { name: 'Workloads', type: 'integer', jsonPath: '.status.workloads', description: 'Workloads.' },
      { name: 'Edges', type: 'integer', jsonPath: '.status.edges', description: 'Learned edges.' },
      { name: 'Segments', type: 'integer', jsonPath: '.status.segmentCount', description: 'Segments.' },
      { name: 'Policies', type: 'integer', jsonPath: '.status.policies', description: 'Proposed policies.' },
      {
        name: 'Would-Block',
        type: 'integer',
        jsonPath: '.status.wouldBlock',
        description: 'Flows the proposal would block in the audit window.',
      },
      {
        name: 'Unauditable',
        type: 'integer',
        jsonPath: '.status.unauditable',
        description: 'Flows the proposal could not be checked against in the audit window.',
      },
      {
        name: 'Unobserved',
        type: 'integer',
        jsonPath: '.status.unobserved',
        description:
          'Workloads no learned flow reaches or leaves: the default deny cuts them off once enforced.',
      },
    ],
  });
}

export function proposedNetworkPolicyCRD(): Schema {
  return crd({
    kind: 'ProposedNetworkPolicy',
    plural: 'proposednetworkpolicies',
    singular: 'proposednetworkpolicy',
    shortNames: ['pnp'],
    scope: 'Namespaced',
    description:
      'ProposedNetworkPolicy: a NetworkPolicy microseg proposes, not enforced. spec is exactly the NetworkPolicy spec that Enforce mode would apply under the same name; status carries the evidence (observed flows) behind each rule. Owned by the controller: in Learn mode it rewrites them from the learned traffic (edits are overwritten); in Audit and Enforce they are the frozen proposal, audited and enforced with their spec as it is (an edit of the spec is what is enforced), their labels and annotations put back from status.owned.',
    spec: networkPolicySpec('The proposed networking.k8s.io/v1 NetworkPolicy spec.'),
    status: obj('Evidence behind the proposal.', {
      rules: int('Number of ingress and egress rules.'),
      evidence: arr(
        'Per allowed (peer, port): the flows that justify it (at most 200 entries).',
        obj('Evidence for one allowed peer and port.', {
          direction: str('ingress or egress.', { enum: ['ingress', 'egress'] }),
          peer: str('The peer as namespace/Kind/name, world:IP, kube-apiserver, ...'),
          protocol: str('TCP, UDP or SCTP.'),
          port: { 'x-kubernetes-int-or-string': true, description: 'Port number or name.' },
          count: int('Flows observed.', { format: 'int64' }),
          firstSeen: str('First observation.', { format: 'date-time' }),
          lastSeen: str('Last observation.', { format: 'date-time' }),
        }),
      ),
      evidenceTruncated: int('Evidence entries left out to bound the object size.'),
      owned: obj(
        'The labels and annotations the controller sets on this object; in Audit and Enforce mode it puts them back when they are edited.',
        {
          labels: {
            type: 'object',
            description: 'Label key → value.',
            additionalProperties: { type: 'string' },
          },
          annotations: {
            type: 'object',
            description: 'Annotation key → value.',
            additionalProperties: { type: 'string' },
          },
        },
      ),
    }),
    columns: [
      {
        name: 'Segmentation',
        type: 'string',
        jsonPath: `.metadata.labels.microseg\\.dev/segmentation`,
        description: 'Owning Segmentation.',
      },
      { name: 'Rules', type: 'integer', jsonPath: '.status.rules', description: 'Rules.' },
    ],
  });
}

export function learnedEdgeSetCRD(): Schema {
  return crd({
    kind: 'LearnedEdgeSet',
    plural: 'learnededgesets',
    singular: 'learnededgeset',
    shortNames: ['les'],
    scope: 'Cluster',
    description:
      'LearnedEdgeSet: one shard of the traffic graph a Segmentation has learned, persisted so a restart or leader change loses nothing. Written by the controller only when its content changes; each shard stays well under 1 MiB.',
    spec: obj(
      'One shard of learned edges.',
      {
        segmentation: str('The Segmentation that learned these edges.'),
        shard: int('Index of this shard, from 0.', { minimum: 0 }),
        shards: int('How many shards the graph is split into.', { minimum: 1 }),
        edges: arr(
          'Edges of this shard: initiator → responder on one protocol and port.',
          obj(
            'One learned edge.',
            {
              src: str('Initiator: namespace/Kind/name, world:IP, node:IP, private:IP, kube-apiserver.'),
              dst: str('Responder, in the same notation.'),
              protocol: str('TCP, UDP, SCTP, ICMPv4 or ICMPv6.'),
              port: int('Responder port (ICMP type for ICMP).'),
              count: int('Connections observed.', { format: 'int64' }),
              firstSeen: str('First observation.', { format: 'date-time' }),
              lastSeen: str('Last observation.', { format: 'date-time' }),
              dropped: int('Connections observed DROPPED.', { format: 'int64' }),
              shared: {
                type: 'object',
                description:
                  'Connections of count that other edges hold too, by the connection as observed (src->service:namespace/name:port/protocol): a connection to a Service with several backends is on the edge to each. Counted once in totals.',
                additionalProperties: { type: 'integer', format: 'int64' },
              },
            },
            { required: ['src', 'dst', 'protocol', 'port', 'count', 'firstSeen', 'lastSeen'] },
          ),
          { maxItems: 5000 },
        ),
        workloads: arr(
          'Workloads known only from flows (a pod the cluster does not have, kept as a bare pod) that edges of this shard have, with the labels their flows gave: a restarted controller or a new leader places and selects them as the controller that learned them did. Absent when there are none.',
          obj(
            'One workload known only from flows.',
            {
              id: str('namespace/Kind/name.'),
              labels: {
                type: 'object',
                description: 'The labels its flows gave (those it is selected by), key → value.',
                additionalProperties: { type: 'string' },
              },
            },
            { required: ['id', 'labels'] },
          ),
          { maxItems: 10000 },
        ),
      },
      { required: ['segmentation', 'shard', 'shards', 'edges'] },
    ),
    columns: [
      { name: 'Segmentation', type: 'string', jsonPath: '.spec.segmentation', description: 'Owner.' },
      { name: 'Shard', type: 'integer', jsonPath: '.spec.shard', description: 'Shard index.' },
    ],
  });
}

export const CRD_FILES: Record<string, () => Schema> = {
  'microseg.dev_segmentations.yaml': segmentationCRD,
  'microseg.dev_proposednetworkpolicies.yaml': proposedNetworkPolicyCRD,
  'microseg.dev_learnededgesets.yaml': learnedEdgeSetCRD,
};

/** The YAML text of one CRD file, stable across runs. */
export function crdYaml(build: () => Schema): string {
  const strip = (v: unknown): unknown => JSON.parse(JSON.stringify(v));
  return `# Generated by src/controller/crds.ts; do not edit.\n${stringify(strip(build()), { lineWidth: 0 })}`;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const dir = new URL('../../crds/', import.meta.url);
  for (const [file, build] of Object.entries(CRD_FILES)) writeFileSync(new URL(file, dir), crdYaml(build));
}
