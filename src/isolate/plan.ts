/**
 * The pure core of an isolation: which mechanism the cluster allows, which pods a target means, the
 * objects that cut them off, the label change (and the record of the prior labels) for each pod, the
 * quarantine exclusion for microseg's own allow policies, and the exact undo of all of it.
 *
 * Mechanism ladder:
 *  a. ClusterNetworkPolicy (policy.networking.k8s.io/v1alpha2, tier Admin) or AdminNetworkPolicy
 *     (v1alpha1): a Deny rule at the top priority for the quarantined pods, exceptions as Accept/Allow
 *     rules written before it. Admin-tier decisions are final, so no NetworkPolicy can re-admit pod
 *     traffic. A NetworkPolicy deny-all is kept beside it for what the admin tier cannot name (ingress
 *     from outside the pod network).
 *  b. NetworkPolicy only: a deny-all (with the exceptions as its only rules) selecting the quarantine
 *     label, and every microseg-managed allow policy made to exclude that label. Policies microseg does
 *     not own may still admit traffic (NetworkPolicies are a union): the leak check names them.
 */
import type {
  LabelSelector,
  NetworkPolicy,
  NetworkPolicyEgressRule,
  NetworkPolicyIngressRule,
  OtherObject,
  Pod,
  Service,
} from '../model/k8s.ts';
import type { DNSPort, Ownership } from '../identity/index.ts';
import {
  buildIdentity,
  clusterDNSPorts,
  dnsRulePorts,
  dnsServicePorts,
  customController,
  jobPodsMade,
  ownershipOf,
  ownerWorkload,
} from '../identity/index.ts';
import { isEmptySelector, matchesSelector } from '../model/selectors.ts';
import { emptySnapshot } from '../model/snapshot.ts';
import type { IsolationSpec, MechanismName } from './api.ts';
import {
  API_VERSION,
  OWNER_RESOLVED_KINDS,
  ISOLATION_LABEL,
  KIND,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  PRIOR_ANNOTATION,
  QUARANTINE_LABEL,
} from './api.ts';

export const POLICY_GROUP = 'policy.networking.k8s.io';
export const NS_NAME_LABEL = 'kubernetes.io/metadata.name';
/** Label naming the namespace of the Isolation on cluster-scoped objects. */
export const ISOLATION_NAMESPACE_LABEL = 'microseg.dev/isolation-namespace';

/** One entry of the apiserver's `/apis` discovery document. */
export interface ApiGroup {
  name: string;
  versions: { groupVersion?: string; version: string }[];
}

export interface MechanismChoice {
  method?: MechanismName;
  /** Why the requested mechanism cannot be used. */
  problem?: string;
  /** Why this method was chosen, for the timeline. */
  why: string;
}

function serves(groups: readonly ApiGroup[], version: string): boolean {
  return groups.some((g) => g.name === POLICY_GROUP && g.versions.some((v) => v.version === version));
}

/** Picks the strongest mechanism the cluster serves (or checks the requested one). */
export function chooseMechanism(
  groups: readonly ApiGroup[],
  requested: MechanismName | 'Auto',
): MechanismChoice {
  const cnp = serves(groups, 'v1alpha2');
  const anp = serves(groups, 'v1alpha1');
  if (requested === 'ClusterNetworkPolicy')
    return cnp
      ? { method: requested, why: 'requested by spec.mechanism' }
      : {
          problem: `spec.mechanism ClusterNetworkPolicy is not served by this cluster (${POLICY_GROUP}/v1alpha2 not found)`,
          why: '',
        };
  if (requested === 'AdminNetworkPolicy')
    return anp
      ? { method: requested, why: 'requested by spec.mechanism' }
      : {
          problem: `spec.mechanism AdminNetworkPolicy is not served by this cluster (${POLICY_GROUP}/v1alpha1 not found)`,
          why: '',
        };
  if (requested === 'NetworkPolicy') return { method: requested, why: 'requested by spec.mechanism' };
  if (cnp)
    return {
      method: 'ClusterNetworkPolicy',
      why: `${POLICY_GROUP}/v1alpha2 is served: Admin-tier Deny wins`,
    };
  if (anp)
    return { method: 'AdminNetworkPolicy', why: `${POLICY_GROUP}/v1alpha1 is served: Admin-tier Deny wins` };
  return {
    method: 'NetworkPolicy',
    why: `${POLICY_GROUP} is not served: NetworkPolicy deny-all plus quarantine label; foreign allow policies can leak`,
  };
}

// ---------------------------------------------------------------------------------------------
// target resolution

export interface TargetContext {
  /** Pods of the Isolation's namespace. */
  pods: readonly Pod[];
  /**
   * The workload object for a workload target found by its selector (undefined when it does not exist).
   */
  workload?: { spec?: { selector?: LabelSelector } };
  /**
   * For a workload target of an OWNER_RESOLVED_KINDS kind: the ownership (of one namespace) of the
   * Isolation's namespace's ReplicaSets (a Rollout's), Jobs and CronJob (a CronJob's), which its pods are
   * walked up by. None for a CloneSet or a custom resource's kind, which own their pods.
   */
  ownership?: Ownership;
  /** Pods isolated by earlier reconciles (status.isolatedPods). */
  previously: readonly string[];
  /**
   * When the Isolation first took effect (status.isolatedAt). A workload target without includeFuture
   * is resolved only until then: pods the workload creates later (a replacement of an isolated pod that
   * was deleted) are not isolated.
   */
  isolatedAt?: string;
}

export interface TargetResolution {
  /** Pods to isolate now, sorted. */
  pods: string[];
  /** Problems that leave the target partly unresolved (missing pods, missing workload). */
  notes: string[];
  /** Whether the target must be re-resolved later (selectors and includeFuture workloads). */
  live: boolean;
}

function alive(p: Pod): boolean {
  return !p.metadata.deletionTimestamp && p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed';
}

type WorkloadTarget = Extract<IsolationSpec['target'], { kind: 'workload' }>;

/**
 * Whether a workload target's pods are found by their owner references (OWNER_RESOLVED_KINDS, or a
 * custom resource's kind) rather than by its object's pod selector.
 */
export function isOwnerResolved(t: WorkloadTarget): boolean {
  return t.apiGroup !== undefined || OWNER_RESOLVED_KINDS.has(t.workloadKind);
}

/** A workload target's kind as messages name it: `Cluster.postgresql.cnpg.io` for a custom resource's. */
export function workloadKindText(t: WorkloadTarget): string {
  return t.apiGroup === undefined ? t.workloadKind : `${t.workloadKind}.${t.apiGroup}`;
}

/**
 * Whether `pod` is one of the target's pods: its workload by its owners (ownerWorkload: as identity names
 * it, the workload label left aside, for the target names an owner) is the target's kind and name; for a
 * custom resource's kind, its controller owner reference is also a custom resource's (customController)
 * of the target's API group, whatever its version (`v1beta1` or `v1`).
 */
function isTargetPod(pod: Pod, t: WorkloadTarget, ownership: Ownership): boolean {
  const root = ownerWorkload(pod, ownership);
  if (root.kind !== t.workloadKind || root.name !== t.name) return false;
  if (t.apiGroup === undefined) return true;
  const ref = pod.metadata.ownerReferences?.find((o) => o.controller);
  return (
    ref !== undefined &&
    customController(ref) &&
    ref.kind === t.workloadKind &&
    ref.name === t.name &&
    ref.apiVersion.slice(0, ref.apiVersion.indexOf('/')) === t.apiGroup
  );
}

export function resolveTarget(spec: IsolationSpec, ctx: TargetContext): TargetResolution {
  const byName = new Map(ctx.pods.map((p) => [p.metadata.name, p]));
  const still = ctx.previously.filter((n) => byName.has(n));
  const t = spec.target;
  const notes: string[] = [];
  let found: string[] = [];
  let live = false;
  if (t.kind === 'pods') {
    for (const n of t.pods) {
      if (byName.has(n)) found.push(n);
      else notes.push(`pod ${n} not found`);
    }
  } else if (t.kind === 'selector') {
    live = true;
    found = ctx.pods
      .filter((p) => alive(p) && matchesSelector(t.podSelector, p.metadata.labels))
      .map((p) => p.metadata.name);
  } else if (isOwnerResolved(t)) {
    const given = ctx.ownership ?? ownershipOf({ workloads: [], cronJobs: [] });
    // A Job the cluster no longer has is a CronJob's run or not by its first pod, for all its pods alike.
    const ownership = { ...given, jobFirstPod: jobPodsMade(given.objByKey, ctx.pods) };
    const owned = ctx.pods.filter((p) => isTargetPod(p, t, ownership));
    // Known by its object (a CronJob's), an object it owns (a Rollout's ReplicaSet, a CronJob's Job) or a
    // pod. A custom resource's object is not read: only a pod it controls makes it known.
    const known =
      owned.length > 0 ||
      (t.apiGroup === undefined &&
        ([...ownership.objByKey.values()].some(
          (o) => o.kind === t.workloadKind && o.metadata.name === t.name,
        ) ||
          [...ownership.ownerByKey.values()].some((o) => o.kind === t.workloadKind && o.name === t.name)));
    if (!known)
      notes.push(
        t.apiGroup === undefined
          ? `${t.workloadKind} ${t.name} not found`
          : `${workloadKindText(t)} ${t.name} not found (no pod has it as its controller)`,
      );
    else if (t.includeFuture || (ctx.previously.length === 0 && !ctx.isolatedAt))
      found = owned.filter(alive).map((p) => p.metadata.name);
    else if (still.length === 0)
      notes.push(
        `the pods ${workloadKindText(t)} ${t.name} had at isolation time are gone; pods it created later are not isolated (includeFuture is false)`,
      );
    live = t.includeFuture;
  } else {
    const sel = ctx.workload?.spec?.selector;
    if (!ctx.workload) notes.push(`${t.workloadKind} ${t.name} not found`);
    else if (!sel || isEmptySelector(sel)) notes.push(`${t.workloadKind} ${t.name} has no pod selector`);
    else if (t.includeFuture || (ctx.previously.length === 0 && !ctx.isolatedAt)) {
      found = ctx.pods
        .filter((p) => alive(p) && matchesSelector(sel, p.metadata.labels))
        .map((p) => p.metadata.name);
    } else if (still.length === 0)
      notes.push(
        `the pods ${t.workloadKind} ${t.name} had at isolation time are gone; pods it created later are not isolated (includeFuture is false)`,
      );
    live = t.includeFuture;
  }
  // A host-network pod shares its node's network: no NetworkPolicy or admin-tier policy applies to it, so
  // labelling it would report an isolation that does not hold. It is left alone and said so.
  const pods: string[] = [];
  const host: string[] = [];
  for (const n of [...new Set([...still, ...found])].sort())
    (byName.get(n)?.spec?.hostNetwork === true ? host : pods).push(n);
  if (host.length === 1)
    notes.push(
      `pod ${host[0]!} uses the host network: no NetworkPolicy or admin-tier policy applies to it, so it cannot be isolated`,
    );
  else if (host.length > 1)
    // One note however many (a host-network DaemonSet has a pod per node): the message stays short.
    notes.push(
      `pods ${host.slice(0, 3).join(', ')}${host.length > 3 ? ` and ${host.length - 3} more` : ''} use the host network: no NetworkPolicy or admin-tier policy applies to them, so they cannot be isolated`,
    );
  return { pods, notes, live };
}

// ---------------------------------------------------------------------------------------------
// objects

export interface ObjectNames {
  /** Name of the NetworkPolicy in the Isolation's namespace. */
  networkPolicy: string;
  /** Name of the cluster-scoped AdminNetworkPolicy / ClusterNetworkPolicy. */
  clusterPolicy: string;
}

/** Deterministic names; `salt` (from the Isolation's uid) is appended only after a name clash. */
export function objectNames(namespace: string, name: string, salt?: string): ObjectNames {
  const s = salt ? `-${salt}` : '';
  return {
    networkPolicy: `microseg-quarantine-${name}${s}`,
    clusterPolicy: `microseg-quarantine-${namespace}-${name}${s}`.slice(0, 253),
  };
}

/** The cluster DNS pods the DNS exception lets isolated pods reach. */
export interface DnsTarget {
  namespace: string;
  podSelector: LabelSelector;
  /**
   * The Service of `namespace` that pods resolve names through (default `kube-dns`): the exception opens
   * the port its pods take that Service's port 53 on (`PlanInput.dnsPorts`, which the reconciler reads).
   */
  service?: string;
}

export const DEFAULT_DNS: DnsTarget = {
  namespace: 'kube-system',
  podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
};

/** UDP and TCP 53: the DNS exception's ports when the plan is given none. */
const DEFAULT_DNS_PORTS: readonly DNSPort[] = [
  { protocol: 'UDP', port: 53 },
  { protocol: 'TCP', port: 53 },
];

/**
 * The ports the DNS exception opens, from the DNS Service (`kube-system/kube-dns`, or the DnsTarget's)
 * and the pods of its namespace that it selects: where those pods take a query to the Service's port 53
 * once its ClusterIP is translated, as identity resolves it (`clusterDNSPorts`: its targetPort, a named
 * one resolved pod by pod), UDP and TCP; without such a pod, the targetPort when it is a number; else 53
 * (`dnsRulePorts`). A Service without a selector is backed by EndpointSlices, not read here: its numeric
 * targetPort, else 53.
 */
export function dnsExceptionPorts(service: Service | undefined, pods: readonly Pod[]): DNSPort[] {
  if (!service) return dnsRulePorts([], []);
  const ref = { namespace: service.metadata.namespace ?? '', name: service.metadata.name };
  const identity = buildIdentity({ ...emptySnapshot(), services: [service], pods: [...pods] });
  return dnsRulePorts(clusterDNSPorts(identity, ref).values(), dnsServicePorts(service));
}

export interface PlanInput {
  namespace: string;
  name: string;
  uid?: string;
  spec: IsolationSpec;
  method: MechanismName;
  names: ObjectNames;
  dns?: DnsTarget;
  /**
   * The ports the DNS exception opens to the DNS pods: those the pods take a query to the DNS Service's
   * port 53 on, after its ClusterIP is translated (`dnsRulePorts`: 5353 for a CoreDNS listening there).
   * Default UDP and TCP 53.
   */
  dnsPorts?: readonly DNSPort[];
  /** Admin-tier priority of the deny (0 = evaluated first). */
  priority?: number;
  /** The rules of the direction a single-direction Isolation leaves open (see keptRules). */
  kept?: KeptRules;
}

/**
 * Rules of the direction an Ingress-only or Egress-only Isolation leaves open, kept from microseg's own
 * allow policies: the exclusion takes the quarantined pods out of those policies for both directions, so
 * the quarantine policy holds their rules for the open direction, and that direction stays as limited as
 * it was.
 */
export interface KeptRules {
  direction: 'Ingress' | 'Egress';
  ingress?: NetworkPolicyIngressRule[];
  egress?: NetworkPolicyEgressRule[];
}

/** A pod's labels as they were before it was quarantined (the quarantine label out, detached labels back). */
export function labelsBefore(pod: Pod): Record<string, string> {
  const labels: Record<string, string> = { ...(pod.metadata.labels ?? {}) };
  delete labels[QUARANTINE_LABEL];
  for (const [k, v] of Object.entries(readPrior(pod)?.labels ?? {})) {
    if (v === null) delete labels[k];
    else labels[k] = v;
  }
  return labels;
}

/**
 * The kept rules of a single-direction Isolation of `pods` (see KeptRules). The quarantine policy selects
 * every pod of the Isolation alike, so it can keep only what held for each of them: when every pod was
 * selected, for the direction the Isolation leaves open, by the same microseg allow policies (those that
 * list the direction in their policyTypes, matched by the pod's labels before the quarantine), their
 * rules for it, in policy-name order, each rule once. Undefined for `Both`, or when no such policy
 * selected any of the pods (microseg did not limit that direction). When the pods were selected by
 * different policies, no rule is kept and the direction is closed: one pod's rules must not open
 * another.
 */
export function keptRules(
  spec: IsolationSpec,
  pods: readonly Pod[],
  nps: readonly NetworkPolicy[],
): KeptRules | undefined {
  if (spec.direction === 'Both') return undefined;
  const direction: KeptRules['direction'] = spec.direction === 'Ingress' ? 'Egress' : 'Ingress';
  const limiting = [...nps]
    .filter((np) => isManagedAllowPolicy(np) && policyTypesOf(np).includes(direction))
    .sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0));
  // Per pod, the policies that selected it.
  const selecting = pods.map((pod) => {
    const labels = labelsBefore(pod);
    return limiting.filter((np) => matchesSelector(withoutExclusion(np.spec.podSelector), labels));
  });
  if (selecting.every((s) => s.length === 0)) return undefined;
  const names = (s: readonly NetworkPolicy[]) => s.map((np) => np.metadata.name).join('\n');
  const closed: KeptRules = direction === 'Egress' ? { direction, egress: [] } : { direction, ingress: [] };
  if (selecting.some((s) => names(s) !== names(selecting[0]!))) return closed;
  const rules: (NetworkPolicyIngressRule | NetworkPolicyEgressRule)[] = [];
  const seen = new Set<string>();
  for (const np of selecting[0]!)
    for (const r of (direction === 'Egress' ? np.spec.egress : np.spec.ingress) ?? []) {
      const key = JSON.stringify(r);
      if (seen.has(key)) continue;
      seen.add(key);
      rules.push(r);
    }
  return direction === 'Egress' ? { direction, egress: rules } : { direction, ingress: rules };
}

/** A NetworkPolicy's policyTypes, defaulted as the API server does (Egress only with egress rules). */
function policyTypesOf(np: NetworkPolicy): readonly string[] {
  if (np.spec.policyTypes && np.spec.policyTypes.length > 0) return np.spec.policyTypes;
  return np.spec.egress && np.spec.egress.length > 0 ? ['Ingress', 'Egress'] : ['Ingress'];
}

function ownedMeta(p: PlanInput): {
  labels: Record<string, string>;
  ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller: boolean }[];
} {
  return {
    labels: {
      [MANAGED_BY_LABEL]: MANAGED_BY_VALUE,
      [ISOLATION_LABEL]: p.name,
      [ISOLATION_NAMESPACE_LABEL]: p.namespace,
    },
    ...(p.uid
      ? {
          ownerReferences: [
            { apiVersion: API_VERSION, kind: KIND, name: p.name, uid: p.uid, controller: true },
          ],
        }
      : {}),
  };
}

const wantIngress = (s: IsolationSpec): boolean => s.direction !== 'Egress';
const wantEgress = (s: IsolationSpec): boolean => s.direction !== 'Ingress';

/** The pods of the Isolation, as a selector: the quarantine label with the Isolation's name. */
export function quarantineSelector(name: string): LabelSelector {
  return { matchLabels: { [QUARANTINE_LABEL]: name } };
}

/**
 * The NetworkPolicy of the Isolation. For the NetworkPolicy mechanism it is the deny-all whose only rules
 * are the exceptions; beside an admin-tier policy it is a plain deny-all (the admin tier decides the
 * exceptions, which are final there; this one only catches peers the admin tier cannot name).
 */
export function quarantineNetworkPolicy(p: PlanInput): NetworkPolicy {
  const s = p.spec;
  const withExceptions = p.method === 'NetworkPolicy';
  const dns = p.dns ?? DEFAULT_DNS;
  const ingress: NetworkPolicyIngressRule[] = [];
  const egress: NetworkPolicyEgressRule[] = [];
  // The exceptions open only the directions the Isolation closes.
  if (withExceptions && wantIngress(s) && s.forensics.length > 0)
    ingress.push({
      from: s.forensics.map((f) => ({
        ...(f.namespaceSelector ? { namespaceSelector: f.namespaceSelector } : {}),
        ...(f.podSelector ? { podSelector: f.podSelector } : {}),
      })),
    });
  if (withExceptions && wantEgress(s) && s.dns)
    egress.push({
      to: [
        {
          namespaceSelector: { matchLabels: { [NS_NAME_LABEL]: dns.namespace } },
          podSelector: dns.podSelector,
        },
      ],
      ports: (p.dnsPorts ?? DEFAULT_DNS_PORTS).map((d) => ({ protocol: d.protocol, port: d.port })),
    });
  // The direction a single-direction Isolation leaves open, as limited as microseg's policies had it.
  const kept = p.kept && s.direction !== 'Both' ? p.kept : undefined;
  if (kept?.direction === 'Ingress') ingress.push(...(kept.ingress ?? []));
  if (kept?.direction === 'Egress') egress.push(...(kept.egress ?? []));
  const hasIngress = wantIngress(s) || kept?.direction === 'Ingress';
  const hasEgress = wantEgress(s) || kept?.direction === 'Egress';
  const policyTypes: ('Ingress' | 'Egress')[] = [];
  if (hasIngress) policyTypes.push('Ingress');
  if (hasEgress) policyTypes.push('Egress');
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: p.names.networkPolicy, namespace: p.namespace, ...ownedMeta(p) },
    spec: {
      podSelector: quarantineSelector(p.name),
      policyTypes,
      ...(hasIngress ? { ingress } : {}),
      ...(hasEgress ? { egress } : {}),
    },
  };
}

/** The admin-tier policy (AdminNetworkPolicy v1alpha1 or ClusterNetworkPolicy v1alpha2) of the Isolation. */
export function adminTierPolicy(p: PlanInput): OtherObject {
  if (p.method === 'NetworkPolicy')
    throw new Error('adminTierPolicy: the NetworkPolicy mechanism has no admin-tier policy');
  const cnp = p.method === 'ClusterNetworkPolicy';
  const s = p.spec;
  const dns = p.dns ?? DEFAULT_DNS;
  const nsSel = (ns: string): LabelSelector => ({ matchLabels: { [NS_NAME_LABEL]: ns } });
  const allow = cnp ? 'Accept' : 'Allow';
  const ports = p.dnsPorts ?? DEFAULT_DNS_PORTS;
  const dnsPorts = cnp
    ? {
        protocols: ports.map((d) => ({
          [d.protocol === 'UDP' ? 'udp' : 'tcp']: { destinationPort: { number: d.port } },
        })),
      }
    : { ports: ports.map((d) => ({ portNumber: { protocol: d.protocol, port: d.port } })) };
  const ingress: Record<string, unknown>[] = [];
  const egress: Record<string, unknown>[] = [];
  if (wantIngress(s)) {
    if (s.forensics.length > 0)
      ingress.push({
        name: 'forensics',
        action: allow,
        from: s.forensics.map((f) =>
          f.podSelector
            ? {
                pods: {
                  namespaceSelector: f.namespaceSelector ?? nsSel(p.namespace),
                  podSelector: f.podSelector,
                },
              }
            : { namespaces: f.namespaceSelector ?? {} },
        ),
      });
    ingress.push({ name: 'quarantine-ingress', action: 'Deny', from: [{ namespaces: {} }] });
  }
  if (wantEgress(s)) {
    if (s.dns)
      egress.push({
        name: 'dns',
        action: allow,
        to: [{ pods: { namespaceSelector: nsSel(dns.namespace), podSelector: dns.podSelector } }],
        ...dnsPorts,
      });
    egress.push({
      name: 'quarantine-egress',
      action: 'Deny',
      to: [{ namespaces: {} }, { networks: ['0.0.0.0/0', '::/0'] }],
    });
  }
  const meta = ownedMeta(p);
  return {
    apiVersion: cnp ? `${POLICY_GROUP}/v1alpha2` : `${POLICY_GROUP}/v1alpha1`,
    kind: p.method,
    metadata: { name: p.names.clusterPolicy, labels: meta.labels },
    spec: {
      ...(cnp ? { tier: 'Admin' } : {}),
      priority: p.priority ?? 0,
      subject: { pods: { namespaceSelector: nsSel(p.namespace), podSelector: quarantineSelector(p.name) } },
      ...(ingress.length > 0 ? { ingress } : {}),
      ...(egress.length > 0 ? { egress } : {}),
    },
  };
}

/** Every object an Isolation needs, in the order to create them. */
export function desiredObjects(p: PlanInput): { networkPolicy: NetworkPolicy; clusterPolicy?: OtherObject } {
  return {
    networkPolicy: quarantineNetworkPolicy(p),
    ...(p.method !== 'NetworkPolicy' ? { clusterPolicy: adminTierPolicy(p) } : {}),
  };
}

/** True when `obj` was created for this Isolation (so microseg may change or delete it). */
export function ownedBy(
  obj: { metadata: { labels?: Record<string, string> } },
  namespace: string,
  name: string,
): boolean {
  const l = obj.metadata.labels ?? {};
  return (
    l[MANAGED_BY_LABEL] === MANAGED_BY_VALUE &&
    l[ISOLATION_LABEL] === name &&
    l[ISOLATION_NAMESPACE_LABEL] === namespace
  );
}

// ---------------------------------------------------------------------------------------------
// pod labels and their exact undo

/** What the pod annotation records: the Isolation and each changed label's prior value (null = absent). */
export interface PriorRecord {
  isolation: string;
  labels: Record<string, string | null>;
  /**
   * When the pod was first quarantined by this Isolation (RFC 3339): a time that outlives the
   * controller, so an isolation whose status was not written before a restart keeps its isolatedAt.
   */
  at?: string;
}

export type PodLabelPlan =
  | { kind: 'done' }
  | { kind: 'other'; by: string }
  | { kind: 'patch'; patch: { metadata: Record<string, unknown> }; prior: PriorRecord; removed: string[] };

/**
 * The merge patch that quarantines a pod: sets the quarantine label, optionally removes the labels that
 * Services select it by (detaching it from their endpoints), and records the prior values in an
 * annotation, all in one write guarded by the pod's resourceVersion.
 */
export function podLabelPlan(
  pod: Pod,
  isolationName: string,
  detachFromServices: boolean,
  services: readonly Service[],
  at?: string,
): PodLabelPlan {
  const labels = pod.metadata.labels ?? {};
  const current = labels[QUARANTINE_LABEL];
  if (current === isolationName) return { kind: 'done' };
  if (current !== undefined) return { kind: 'other', by: current };
  // A record this Isolation left on the pod (its quarantine label was taken off by hand and is put back
  // now) holds the values from before the first quarantine: they are kept, or release would restore the
  // labels detached then as absent.
  const earlier = readPrior(pod);
  const prior: Record<string, string | null> = {
    ...(earlier?.isolation === isolationName ? earlier.labels : {}),
    [QUARANTINE_LABEL]: null,
  };
  const change: Record<string, string | null> = { [QUARANTINE_LABEL]: isolationName };
  const removed: string[] = [];
  if (detachFromServices) {
    const keys = new Set<string>();
    for (const svc of services) {
      const sel = svc.spec.selector;
      if (!sel || Object.keys(sel).length === 0) continue;
      if (matchesSelector({ matchLabels: sel }, labels)) for (const k of Object.keys(sel)) keys.add(k);
    }
    for (const k of [...keys].sort()) {
      if (k === QUARANTINE_LABEL) continue;
      if (!(k in prior)) prior[k] = labels[k] ?? null;
      change[k] = null;
      removed.push(k);
    }
  }
  const since = earlier?.isolation === isolationName && earlier.at !== undefined ? earlier.at : at;
  const record: PriorRecord = { isolation: isolationName, labels: prior, ...(since ? { at: since } : {}) };
  return {
    kind: 'patch',
    patch: {
      metadata: {
        ...(pod.metadata.resourceVersion ? { resourceVersion: pod.metadata.resourceVersion } : {}),
        labels: change,
        annotations: { [PRIOR_ANNOTATION]: JSON.stringify(record) },
      },
    },
    prior: record,
    removed,
  };
}

/** Reads the prior-state record of a pod, or undefined when absent or unreadable. */
export function readPrior(pod: Pod): PriorRecord | undefined {
  const text = pod.metadata.annotations?.[PRIOR_ANNOTATION];
  if (!text) return undefined;
  try {
    const v = JSON.parse(text) as unknown;
    if (v === null || typeof v !== 'object') return undefined;
    const r = v as { isolation?: unknown; labels?: unknown; at?: unknown };
    if (typeof r.isolation !== 'string' || r.labels === null || typeof r.labels !== 'object')
      return undefined;
    for (const x of Object.values(r.labels)) if (x !== null && typeof x !== 'string') return undefined;
    const at = typeof r.at === 'string' && !Number.isNaN(Date.parse(r.at)) ? r.at : undefined;
    return {
      isolation: r.isolation,
      labels: r.labels as Record<string, string | null>,
      ...(at ? { at } : {}),
    };
  } catch {
    return undefined;
  }
}

/**
 * The merge patch that restores a pod's labels exactly as they were before this Isolation, or undefined
 * when the pod does not carry this Isolation's quarantine.
 */
export function podReleasePatch(
  pod: Pod,
  isolationName: string,
): { metadata: Record<string, unknown> } | undefined {
  const labels = pod.metadata.labels ?? {};
  const prior = readPrior(pod);
  if (prior && prior.isolation === isolationName) {
    return {
      metadata: {
        ...(pod.metadata.resourceVersion ? { resourceVersion: pod.metadata.resourceVersion } : {}),
        labels: { ...prior.labels },
        annotations: { [PRIOR_ANNOTATION]: null },
      },
    };
  }
  if (labels[QUARANTINE_LABEL] === isolationName)
    return {
      metadata: {
        ...(pod.metadata.resourceVersion ? { resourceVersion: pod.metadata.resourceVersion } : {}),
        labels: { [QUARANTINE_LABEL]: null },
      },
    };
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// microseg-managed allow policies

export const QUARANTINE_EXCLUSION = { key: QUARANTINE_LABEL, operator: 'DoesNotExist' as const };
/** Annotation marking a policy whose quarantine exclusion was added by an Isolation (and is removed on release). */
export const EXCLUSION_ANNOTATION = 'microseg.dev/quarantine-exclusion';

/** A NetworkPolicy microseg generated as an allow policy (not one of the Isolation objects). */
export function isManagedAllowPolicy(np: NetworkPolicy): boolean {
  const l = np.metadata.labels ?? {};
  return l[MANAGED_BY_LABEL] === MANAGED_BY_VALUE && l[ISOLATION_LABEL] === undefined;
}

export function hasExclusion(sel: LabelSelector): boolean {
  return (sel.matchExpressions ?? []).some(
    (e) => e.key === QUARANTINE_LABEL && e.operator === 'DoesNotExist',
  );
}

/** The podSelector with the quarantine exclusion added (what the policy generator can also emit itself). */
export function withExclusion(sel: LabelSelector): LabelSelector {
  if (hasExclusion(sel)) return sel;
  return { ...sel, matchExpressions: [...(sel.matchExpressions ?? []), { ...QUARANTINE_EXCLUSION }] };
}

export function withoutExclusion(sel: LabelSelector): LabelSelector {
  const rest = (sel.matchExpressions ?? []).filter(
    (e) => !(e.key === QUARANTINE_LABEL && e.operator === 'DoesNotExist'),
  );
  const { matchExpressions: _drop, ...others } = sel;
  return rest.length > 0 ? { ...others, matchExpressions: rest } : others;
}

/**
 * Merge patches adding the exclusion to each managed allow policy that lacks it. The patch replaces
 * `spec.podSelector` whole (matchExpressions is an atomic list) and is guarded by resourceVersion.
 */
export function exclusionPatches(
  nps: readonly NetworkPolicy[],
): { name: string; patch: Record<string, unknown> }[] {
  return nps
    .filter((np) => isManagedAllowPolicy(np) && !hasExclusion(np.spec.podSelector))
    .map((np) => ({
      name: np.metadata.name,
      patch: {
        metadata: {
          resourceVersion: np.metadata.resourceVersion,
          annotations: { [EXCLUSION_ANNOTATION]: 'added' },
        },
        spec: {
          podSelector: {
            ...withExclusion(np.spec.podSelector),
            matchLabels: np.spec.podSelector.matchLabels ?? null,
          },
        },
      },
    }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * The merge patch that takes out an exclusion an Isolation added (marked by EXCLUSION_ANNOTATION), on release
 * once no pod of the namespace is quarantined; undefined for policies that carried it on their own.
 */
export function exclusionRemovalPatch(np: NetworkPolicy): Record<string, unknown> | undefined {
  if (np.metadata.annotations?.[EXCLUSION_ANNOTATION] === undefined) return undefined;
  const sel = withoutExclusion(np.spec.podSelector);
  return {
    metadata: { resourceVersion: np.metadata.resourceVersion, annotations: { [EXCLUSION_ANNOTATION]: null } },
    spec: {
      podSelector: {
        matchLabels: sel.matchLabels ?? null,
        matchExpressions: sel.matchExpressions ?? null,
      },
    },
  };
}

/** The policies of the namespace as they will be once the plan is applied (for dry runs and leak checks). */
export function policiesAfter(existing: readonly NetworkPolicy[], own: NetworkPolicy): NetworkPolicy[] {
  const out: NetworkPolicy[] = [];
  for (const np of existing) {
    if (np.metadata.name === own.metadata.name) continue;
    out.push(
      isManagedAllowPolicy(np)
        ? { ...np, spec: { ...np.spec, podSelector: withExclusion(np.spec.podSelector) } }
        : np,
    );
  }
  out.push(own);
  return out;
}

/** A pod as it will be labelled (for dry runs and leak checks). */
export function podAfter(pod: Pod, plan: PodLabelPlan): Pod {
  if (plan.kind !== 'patch') return pod;
  const labels: Record<string, string> = { ...(pod.metadata.labels ?? {}) };
  const change = plan.patch.metadata.labels as Record<string, string | null>;
  for (const [k, v] of Object.entries(change)) {
    if (v === null) delete labels[k];
    else labels[k] = v;
  }
  return { ...pod, metadata: { ...pod.metadata, labels } };
}
