/**
 * Views of the controller's custom resources for the page: a Segmentation's status as an `AuditView`,
 * an Isolation as an `IsolationView`. Pure: the controller passes the objects it has cached.
 */
import type { Segmentation } from '../controller/api.ts';
import type { Isolation } from '../isolate/api.ts';
import type { LabelSelector } from '../model/k8s.ts';
import type { AuditView, BlockedFlowView, EnforceDiff, IsolationView } from './types.ts';

const NO_CHANGE: EnforceDiff = { added: [], changed: [], removed: [], unchanged: 0 };

/**
 * A Segmentation as the rollout view shows it. Its audit samples (graph node ids, one per observed
 * would-be-blocked flow) are merged per (source, destination, protocol, port) into blocked flows keyed
 * like graph edges. `enforce` is what enforcing would change, when the caller computed it.
 */
export function auditFromSegmentation(seg: Segmentation, enforce: EnforceDiff = NO_CHANGE): AuditView {
  const st = seg.status ?? {};
  const merged = new Map<string, BlockedFlowView>();
  for (const s of st.audit?.samples ?? []) {
    const edge = `${s.source}->${s.destination}:${s.port}/${s.protocol}`;
    const m = merged.get(edge);
    if (!m) {
      merged.set(edge, {
        edge,
        source: s.source,
        target: s.destination,
        protocol: s.protocol,
        port: s.port,
        count: s.count,
        firstSeen: s.time,
        lastSeen: s.time,
      });
      continue;
    }
    m.count += s.count;
    if (s.time < m.firstSeen!) m.firstSeen = s.time;
    if (s.time > m.lastSeen!) m.lastSeen = s.time;
  }
  const mode = st.mode ?? seg.spec?.mode ?? 'Learn';
  return {
    name: seg.metadata.name,
    mode,
    ...(st.phase ? { phase: st.phase } : {}),
    namespaces: [...(st.namespaces ?? [])],
    conditions: (st.conditions ?? []).map((c) => ({
      type: c.type,
      status: c.status,
      reason: c.reason,
      message: c.message,
      lastTransitionTime: c.lastTransitionTime,
    })),
    ...(st.audit?.since ? { since: st.audit.since } : {}),
    wouldBlock: [...merged.values()].sort((a, b) => b.count - a.count || (a.edge! < b.edge! ? -1 : 1)),
    unobserved: st.unobserved ?? 0,
    unobservedWorkloads: [...(st.unobservedWorkloads ?? [])],
    enforce,
  };
}

function selectorText(sel: LabelSelector | undefined): string {
  const parts = Object.entries(sel?.matchLabels ?? {})
    .sort()
    .map(([k, v]) => `${k}=${v}`);
  for (const e of sel?.matchExpressions ?? [])
    parts.push(`${e.key} ${e.operator}${e.values?.length ? ` (${e.values.join(', ')})` : ''}`);
  return parts.join(', ') || 'every pod';
}

/**
 * An Isolation as the isolation view shows it. `podWorkload` (pod `namespace/name` → workload id)
 * places isolated pods on the graph when the target is a list of pods or a selector.
 */
export function isolationFromResource(
  iso: Isolation,
  podWorkload: ReadonlyMap<string, string> = new Map(),
): IsolationView {
  const ns = iso.metadata.namespace ?? 'default';
  const target = iso.spec?.target;
  const st = iso.status ?? {};
  const pods = (st.isolatedPods ?? []).map((p) => `${ns}/${p}`).sort();
  const workloads = new Set<string>();
  let targetText: string;
  if (target?.workload?.name) {
    const id = `${ns}/${target.workload.kind ?? 'Deployment'}/${target.workload.name}`;
    targetText = id;
    workloads.add(id);
  } else if (target?.pods?.length) {
    targetText = target.pods.map((p) => `${ns}/${p}`).join(', ');
  } else {
    targetText = `${ns} pods matching ${selectorText(target?.podSelector)}`;
  }
  for (const p of [...pods, ...(target?.pods ?? []).map((x) => `${ns}/${x}`)]) {
    const w = podWorkload.get(p);
    if (w) workloads.add(w);
  }
  return {
    name: iso.metadata.name,
    namespace: ns,
    target: targetText,
    workloads: [...workloads].sort(),
    pods,
    method: st.method ?? iso.spec?.mechanism ?? 'Auto',
    state: st.phase ?? 'Pending',
    ...(st.message ? { message: st.message } : {}),
    ...(st.isolatedAt ? { since: st.isolatedAt } : {}),
    ...(iso.spec?.reason ? { reason: iso.spec.reason } : {}),
    leaks: (st.leaks ?? []).map((l) => ({
      source: l.direction === 'ingress' ? l.example : l.pod,
      target: l.direction === 'ingress' ? l.pod : l.example,
      message: `${l.pod}: ${l.policy} ${l.rule} admits ${l.direction} ${l.example}`,
    })),
  };
}
