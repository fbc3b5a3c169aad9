/**
 * Pure planning of the objects a Segmentation owns: from the desired set and the observed set to a
 * typed list of actions. Used for NetworkPolicies (Enforce mode) and ProposedNetworkPolicies (the
 * proposal). Rules:
 * - an object is ours only when it carries both microseg labels naming this Segmentation;
 * - desired and missing → apply (create); desired and different (spec or our labels) → apply (drift);
 * - ours and not desired → delete (prune);
 * - a desired object whose labels were edited by hand but whose controller owner reference is still
 *   this Segmentation (same uid) → apply (drift): it is ours and is taken back;
 * - a desired name held by any other object that is not ours → conflict (never touched);
 * - with `holdDenies` (Enforce): the default deny of a namespace where one of the other desired
 *   objects is a conflict, or where a policy of `missing` is → held (not created or changed; deleted
 *   when it is in place). Without that policy its pods would be isolated by the deny alone, and what
 *   was observed of them cut off.
 */
import { byteOrder, sortedJson } from '../model/order.ts';
import type { NetworkPolicy, NetworkPolicySpec, KObject } from '../model/k8s.ts';
import type { OwnedMetadata, ProposedNetworkPolicy, RuleEvidenceStatus, Segmentation } from './api.ts';
import { API_VERSION, MANAGED_BY_LABEL, MANAGED_BY_VALUE, SEGMENTATION_LABEL } from './api.ts';
import type { Proposal } from '../policy/types.ts';
import { isDefaultDeny } from '../policy/render.ts';
import { EXCLUSION_ANNOTATION, hasExclusion, withExclusion } from '../isolate/plan.ts';

export type Action<T extends KObject> =
  | {
      kind: 'apply';
      object: T;
      why: 'create' | 'drift';
      /** For a drift: the resourceVersion of the object found to differ. */
      from?: string;
    }
  | {
      kind: 'delete';
      namespace: string;
      name: string;
      /**
       * `prune`: no longer desired; `held`: a default deny held back (see `held`); `unapplied`: a
       * default deny in place, deleted while the policies named in `because` could not be created (a
       * write that failed, decided when it fails: never planned).
       */
      why: 'prune' | 'held' | 'unapplied';
      because?: string[];
      /** The object deleted is a default deny (see isDefaultDeny). */
      defaultDeny?: true;
    }
  | {
      kind: 'conflict';
      namespace: string;
      name: string;
      holder: string;
      /** The desired object whose name is held is a default deny. */
      defaultDeny?: true;
    }
  | {
      /** A desired default deny held back: the desired objects named in `because` are conflicts. */
      kind: 'held';
      namespace: string;
      name: string;
      because: string[];
    };

export const objKey = (o: { metadata: { namespace?: string; name: string } }): string =>
  `${o.metadata.namespace ?? ''}/${o.metadata.name}`;

/**
 * Whether `o` is the Segmentation's (`segmentation`, uid `uid`): its two labels name it (and its
 * controller owner reference, if any, names this uid), or, its labels edited by hand, its controller
 * owner reference still names it with that uid. What is ours is applied, frozen into the proposal,
 * pruned and removed alike, whatever its labels say.
 */
export function isOurs(o: KObject, segmentation: string, uid: string | undefined): boolean {
  if (isOwnedBy(o, segmentation)) {
    // Its owner reference names a Segmentation of the same name with another uid: a predecessor's
    // (deleted, its finalizer taken out by hand, the garbage collector not there yet). Not frozen into
    // this one's proposal, nor pruned by it: the collector deletes it.
    const owner = ownerUid(o, segmentation);
    return owner === undefined || uid === undefined || uid === '' || owner === uid;
  }
  // Labels that name another Segmentation in full are that one's claim: never taken by the uid.
  const l = o.metadata.labels ?? {};
  const other = l[SEGMENTATION_LABEL];
  if (l[MANAGED_BY_LABEL] === MANAGED_BY_VALUE && other !== undefined && other !== segmentation) return false;
  return uid !== undefined && uid !== '' && ownerUid(o, segmentation) === uid;
}

export function isOwnedBy(o: KObject, segmentation: string): boolean {
  const l = o.metadata.labels ?? {};
  return l[MANAGED_BY_LABEL] === MANAGED_BY_VALUE && l[SEGMENTATION_LABEL] === segmentation;
}

/**
 * Canonical form of a NetworkPolicy spec for comparison: what the apiserver returns for what we sent.
 * Empty lists and empty matchLabels/matchExpressions are dropped (the API omits them), port protocol
 * defaults to TCP, policyTypes are sorted.
 */
export function canonicalSpec(spec: NetworkPolicySpec | undefined): string {
  const walk = (v: unknown, key: string): unknown => {
    if (Array.isArray(v)) {
      const items = v.map((x) => walk(x, key));
      if (key === 'policyTypes') return [...(items as string[])].sort();
      return items;
    }
    if (v !== null && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
        if (x === undefined || x === null) continue;
        if (Array.isArray(x) && x.length === 0) continue;
        if ((k === 'matchLabels' || k === 'matchExpressions') && Object.keys(x).length === 0) continue;
        out[k] = walk(x, k);
      }
      return out;
    }
    return v;
  };
  const fixPorts = (s: unknown): unknown => {
    // Mark port entries so `walk` can default their protocol.
    const o = structuredClone(s) as NetworkPolicySpec;
    for (const r of [...(o.ingress ?? []), ...(o.egress ?? [])]) {
      if (r.ports) r.ports = r.ports.map((p) => ({ protocol: 'TCP', ...p }));
    }
    return o;
  };
  return sortedJson(walk(fixPorts(spec ?? { podSelector: {} }), ''));
}

/**
 * The spec as microseg applies it: every field the proposal leaves empty spelled out (`ingress: []`,
 * `egress: []`, `podSelector: {}`). Server-side apply owns only the fields an applied object names, so
 * a field left out (a default deny has no rules) would stay with whichever manager set it by hand, and
 * a forced apply would never take it back; an empty list it names is owned, and restored to empty.
 */
export function appliedSpec(spec: NetworkPolicySpec): NetworkPolicySpec {
  return {
    ...spec,
    podSelector: spec.podSelector ?? {},
    ingress: spec.ingress ?? [],
    egress: spec.egress ?? [],
  };
}

/**
 * The fields of `observed` that differ from `desired`, in canonical form (see `canonicalSpec`): each
 * top-level spec field (`spec.ingress`), each of our labels (`metadata.labels.<key>`) and each of our
 * annotations (`metadata.annotations.<key>`). Labels and annotations `desired` does not name (another
 * manager's) are not compared. Empty when the two agree, as `planObjects` compares them.
 */
export function driftedFields(
  desired: { metadata: KObject['metadata']; spec?: NetworkPolicySpec },
  observed: { metadata: KObject['metadata']; spec?: NetworkPolicySpec },
): string[] {
  const want = JSON.parse(canonicalSpec(desired.spec)) as Record<string, unknown>;
  const have = JSON.parse(canonicalSpec(observed.spec)) as Record<string, unknown>;
  const fields = [...new Set([...Object.keys(want), ...Object.keys(have)])]
    .sort(byteOrder)
    .filter((k) => sortedJson(want[k]) !== sortedJson(have[k]))
    .map((k) => `spec.${k}`);
  const wantLabels = desired.metadata.labels ?? {};
  const haveLabels = observed.metadata.labels ?? {};
  for (const k of Object.keys(wantLabels).sort(byteOrder))
    if (haveLabels[k] !== wantLabels[k]) fields.push(`metadata.labels.${k}`);
  const wantAnnotations = desired.metadata.annotations ?? {};
  const haveAnnotations = observed.metadata.annotations ?? {};
  for (const k of Object.keys(wantAnnotations).sort(byteOrder))
    if (haveAnnotations[k] !== wantAnnotations[k]) fields.push(`metadata.annotations.${k}`);
  return fields;
}

function ownerRef(seg: Segmentation) {
  return {
    apiVersion: API_VERSION,
    kind: 'Segmentation',
    name: seg.metadata.name,
    uid: seg.metadata.uid ?? '',
    controller: true,
    blockOwnerDeletion: true,
  };
}

function ourLabels(seg: Segmentation, extra: Record<string, string> | undefined): Record<string, string> {
  return { ...(extra ?? {}), [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [SEGMENTATION_LABEL]: seg.metadata.name };
}

/** The NetworkPolicy Enforce mode applies for one proposed policy. */
export function enforcedPolicy(
  seg: Segmentation,
  p: { metadata: KObject['metadata']; spec: NetworkPolicySpec },
): NetworkPolicy {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: {
      name: p.metadata.name,
      namespace: p.metadata.namespace!,
      labels: ourLabels(seg, withoutOurs(p.metadata.labels)),
      ...(p.metadata.annotations ? { annotations: p.metadata.annotations } : {}),
      ownerReferences: [ownerRef(seg)],
    },
    spec: appliedSpec(p.spec),
  };
}

function withoutOurs(labels: Record<string, string> | undefined): Record<string, string> | undefined {
  if (!labels) return undefined;
  const out = { ...labels };
  delete out[MANAGED_BY_LABEL];
  delete out[SEGMENTATION_LABEL];
  return out;
}

/** Most evidence entries kept in one ProposedNetworkPolicy's status. */
export const MAX_EVIDENCE = 200;

/** ProposedNetworkPolicy objects (spec and status) for a proposal. */
export function proposedPolicies(seg: Segmentation, proposal: Proposal): ProposedNetworkPolicy[] {
  const evidence = new Map<string, RuleEvidenceStatus[]>();
  for (const ev of proposal.evidence) {
    const list = evidence.get(ev.policy) ?? [];
    list.push({
      direction: ev.direction,
      peer: ev.peer,
      protocol: ev.protocol,
      port: ev.port,
      count: ev.count,
      firstSeen: ev.firstSeen,
      lastSeen: ev.lastSeen,
    });
    evidence.set(ev.policy, list);
  }
  return proposal.policies.map((np) => {
    const key = `${np.metadata.namespace}/${np.metadata.name}`;
    const ev = evidence.get(key) ?? [];
    const rules = (np.spec.ingress?.length ?? 0) + (np.spec.egress?.length ?? 0);
    const labels = ourLabels(seg, withoutOurs(np.metadata.labels));
    const annotations = np.metadata.annotations;
    return {
      apiVersion: API_VERSION,
      kind: 'ProposedNetworkPolicy',
      metadata: {
        name: np.metadata.name,
        namespace: np.metadata.namespace!,
        labels,
        ...(annotations ? { annotations } : {}),
        ownerReferences: [ownerRef(seg)],
      },
      spec: appliedSpec(np.spec),
      status: {
        rules,
        evidence: ev.slice(0, MAX_EVIDENCE),
        ...(ev.length > MAX_EVIDENCE ? { evidenceTruncated: ev.length - MAX_EVIDENCE } : {}),
        owned: { labels, ...(annotations ? { annotations } : {}) },
      },
    };
  });
}

/**
 * The labels and annotations microseg owns on a ProposedNetworkPolicy of `seg`: those it recorded in
 * `status.owned` when it wrote the object (which an edit of the metadata does not reach), with its two
 * labels naming `seg`. An object written before microseg recorded them: its two labels, and the labels
 * and annotations under `microseg.dev/` it carries now (the ones the proposal sets are all there).
 */
export function ownedMetadata(seg: Segmentation, p: ProposedNetworkPolicy): OwnedMetadata {
  const recorded = p.status?.owned;
  if (recorded !== undefined)
    return {
      labels: ourLabels(seg, withoutOurs(recorded.labels)),
      ...(recorded.annotations ? { annotations: { ...recorded.annotations } } : {}),
    };
  const ours = (m: Record<string, string> | undefined) =>
    Object.fromEntries(Object.entries(m ?? {}).filter(([k]) => k.startsWith('microseg.dev/')));
  const annotations = ours(p.metadata.annotations);
  return {
    labels: ourLabels(seg, withoutOurs(ours(p.metadata.labels))),
    ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
  };
}

/**
 * A frozen ProposedNetworkPolicy (Audit, Enforce) as microseg applies it: its spec as it is (the frozen
 * proposal is not rewritten from the live analysis), its owner reference to `seg`, and the labels and
 * annotations microseg owns (`ownedMetadata`) in place of what they were edited to. Applied when they
 * differ (server-side apply names only these, so labels and annotations others added stay); its
 * NetworkPolicy in Enforce is made from it. Its status is the object's (not applied: the evidence).
 */
export function frozenProposed(seg: Segmentation, p: ProposedNetworkPolicy): ProposedNetworkPolicy {
  const owned = ownedMetadata(seg, p);
  return {
    apiVersion: API_VERSION,
    kind: 'ProposedNetworkPolicy',
    metadata: {
      name: p.metadata.name,
      namespace: p.metadata.namespace!,
      labels: owned.labels ?? {},
      ...(owned.annotations ? { annotations: owned.annotations } : {}),
      ownerReferences: [ownerRef(seg)],
    },
    spec: appliedSpec(p.spec),
    ...(p.status ? { status: p.status } : {}),
  };
}

/** The message of a conflict: the object of `kind` holding a name, and its holder; left untouched. */
export function conflictMessage(
  kind: string,
  a: { namespace: string; name: string; holder: string },
): string {
  return `${kind} ${a.namespace}/${a.name} exists and is not managed by this Segmentation (${a.holder}); left untouched`;
}

/** The uid in `o`'s controller owner reference to the Segmentation `segmentation`, if it has one. */
function ownerUid(o: KObject, segmentation: string): string | undefined {
  const ref = (o.metadata.ownerReferences ?? []).find(
    (r) =>
      r.apiVersion === API_VERSION && r.kind === 'Segmentation' && r.name === segmentation && r.controller,
  );
  return ref?.uid || undefined;
}

/** Who holds a name `segmentation` would take, for the conflict message; says so when its labels were edited. */
function holderOf(o: KObject, segmentation: string): string {
  const l = o.metadata.labels ?? {};
  const seg = l[SEGMENTATION_LABEL];
  const managedBy = l[MANAGED_BY_LABEL];
  if (seg === segmentation)
    return `its label ${MANAGED_BY_LABEL}${
      managedBy === undefined
        ? `: ${MANAGED_BY_VALUE} was removed`
        : ` is ${JSON.stringify(managedBy)}, not ${MANAGED_BY_VALUE}`
    }; its label ${SEGMENTATION_LABEL} still names this Segmentation`;
  if (seg !== undefined) return `Segmentation ${seg}`;
  return 'an object microseg does not manage';
}

/**
 * Plans apply/delete actions for the objects of `segmentation`. `observed` holds every object of the
 * kind that could matter: ours (anywhere) and any object whose name a desired one would take.
 * `missing` (`namespace/name`, with `holdDenies`): policies other than a default deny that `desired`
 * lacks though they were proposed (their ProposedNetworkPolicy's name is held by another object); the
 * default deny of their namespace is held for them as for a conflict.
 */
export function planObjects<T extends KObject & { spec?: NetworkPolicySpec }>(
  segmentation: string,
  desired: readonly T[],
  observed: readonly T[],
  uid?: string,
  quarantined?: ReadonlySet<string>,
  holdDenies = false,
  missing: readonly string[] = [],
): Action<T>[] {
  const actions: Action<T>[] = [];
  const byKey = new Map(observed.map((o) => [objKey(o), o]));
  const wanted = new Set<string>();
  const sorted = [...desired].sort((a, b) => byteOrder(objKey(a), objKey(b)));
  // The namespaces where a desired object other than a default deny is a conflict, with its names.
  const conflictsIn = new Map<string, string[]>();
  const conflictOf = (d: T, o: T | undefined): string | undefined => {
    if (!o || isOwnedBy(o, segmentation)) return undefined;
    const uid = ownerUid(o, segmentation);
    // Its labels were changed by hand, but its owner reference still names this Segmentation: ours.
    return uid !== undefined && uid === ownerUid(d, segmentation) ? undefined : holderOf(o, segmentation);
  };
  if (holdDenies) {
    for (const d of sorted) {
      if (isDefaultDeny(d) || conflictOf(d, byKey.get(objKey(d))) === undefined) continue;
      const ns = d.metadata.namespace ?? '';
      conflictsIn.set(ns, [...(conflictsIn.get(ns) ?? []), objKey(d)]);
    }
    for (const key of [...missing].sort(byteOrder)) {
      const ns = key.slice(0, key.indexOf('/'));
      conflictsIn.set(ns, [...(conflictsIn.get(ns) ?? []), key].sort(byteOrder));
    }
  }
  for (const proposed of sorted) {
    const k = objKey(proposed);
    wanted.add(k);
    const o = byKey.get(k);
    const d = keepQuarantineExclusion(proposed, o, quarantined);
    const holder = conflictOf(d, o);
    const because = isDefaultDeny(d) ? conflictsIn.get(d.metadata.namespace ?? '') : undefined;
    if (holder !== undefined) {
      actions.push({
        kind: 'conflict',
        namespace: d.metadata.namespace ?? '',
        name: d.metadata.name,
        holder,
        ...(isDefaultDeny(d) ? { defaultDeny: true as const } : {}),
      });
    } else if (because !== undefined) {
      const namespace = d.metadata.namespace ?? '';
      actions.push({ kind: 'held', namespace, name: d.metadata.name, because });
      if (o && !o.metadata.deletionTimestamp)
        actions.push({ kind: 'delete', namespace, name: d.metadata.name, why: 'held', defaultDeny: true });
    } else if (!o) {
      actions.push({ kind: 'apply', object: d, why: 'create' });
    } else if (!isOwnedBy(o, segmentation) || driftedFields(d, o).length > 0) {
      // Not owned by label but ours by its owner reference (see conflictOf), or changed: taken back.
      actions.push({ kind: 'apply', object: d, why: 'drift', from: o.metadata.resourceVersion });
    }
  }
  for (const o of [...observed].sort((a, b) => byteOrder(objKey(a), objKey(b)))) {
    if (isOurs(o, segmentation, uid) && !wanted.has(objKey(o)) && !o.metadata.deletionTimestamp)
      actions.push({
        kind: 'delete',
        namespace: o.metadata.namespace ?? '',
        name: o.metadata.name,
        why: 'prune',
        ...(isDefaultDeny(o) ? { defaultDeny: true as const } : {}),
      });
  }
  return actions;
}

/**
 * A plan's actions in the order whose writes never cut off, meanwhile, a connection both the policies
 * before and the policies after allow: first what opens or allows (a default deny deleted; any other
 * policy created or changed: it allows what was observed of the pods it selects, which until then no
 * policy of this plan isolated, or its older version did), then the default denies created or changed,
 * then the other policies deleted. Each phase is written before the next starts. Applied the other way,
 * a first enforcement of a namespace of many workloads denied the traffic of every workload whose
 * policy was not written yet for as long as the writes took. Conflicts (no write) come first.
 */
export function enforcementPhases<T extends KObject & { spec?: Partial<NetworkPolicySpec> }>(
  actions: readonly Action<T>[],
): [opening: Action<T>[], denies: Action<T>[], deletes: Action<T>[]] {
  const phases: [Action<T>[], Action<T>[], Action<T>[]] = [[], [], []];
  for (const a of actions) {
    if (a.kind === 'apply') phases[isDefaultDeny(a.object) ? 1 : 0].push(a);
    else if (a.kind === 'delete') phases[a.defaultDeny ? 0 : 2].push(a);
    else phases[0].push(a);
  }
  return phases;
}

/**
 * `desired` with the quarantine exclusion of an Isolation kept: when the live object's podSelector
 * carries `microseg.dev/quarantine DoesNotExist` (an Isolation added it so that the policy stops
 * selecting the pods it quarantines), the exclusion is part of what is desired. It is neither drift
 * (taking it out would let this policy admit traffic to the quarantined pods again) nor lost when a real
 * drift or a new proposal is applied. The Isolation takes it out on release.
 *
 * Kept only while an Isolation still wants it: the object carries the annotation the Isolation sets with
 * the exclusion, or `quarantined` (when given) holds its namespace (a pod there carries the quarantine
 * label); in that namespace a policy created now, or one without the exclusion yet, gets it too, so no
 * policy of the Segmentation selects a quarantined pod until the Isolation's next reconcile. Otherwise it
 * is drift like any other: an exclusion added by hand, or put back from a stale copy of the object just
 * after a release took it out (which removes the annotation too), is taken out, so it cannot stay for
 * good.
 */
export function keepQuarantineExclusion<T extends KObject & { spec?: NetworkPolicySpec }>(
  desired: T,
  observed: T | undefined,
  quarantined?: ReadonlySet<string>,
): T {
  const have = observed?.spec?.podSelector;
  const want = desired.spec?.podSelector ?? {};
  if (!desired.spec || hasExclusion(want)) return desired;
  const wanted =
    // A pod of the namespace is quarantined: the policy must not select it, also when it is created
    // now or does not carry the exclusion yet (the Isolation adds it at its next reconcile).
    quarantined?.has(desired.metadata.namespace ?? '') === true ||
    (have !== undefined &&
      hasExclusion(have) &&
      observed?.metadata.annotations?.[EXCLUSION_ANNOTATION] !== undefined);
  if (!wanted) return desired;
  return { ...desired, spec: { ...desired.spec, podSelector: withExclusion(want) } };
}

/** Hash of a proposal's policies (names and canonical specs), for ProposalStable. */
export function proposalHash(
  policies: readonly { metadata: KObject['metadata']; spec: NetworkPolicySpec }[],
): string {
  const text = policies
    .map((p) => `${objKey(p)}=${canonicalSpec(p.spec)}`)
    .sort()
    .join('\n');
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193) >>> 0;
    h2 = Math.imul(h2 ^ c, 0x5bd1e995) >>> 0;
  }
  return `${h1.toString(16).padStart(8, '0')}${h2.toString(16).padStart(8, '0')}`;
}
