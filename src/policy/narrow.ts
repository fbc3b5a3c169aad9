/**
 * Selectors that tell a workload's pods from the pods of the other workloads of its namespace. A
 * workload's own selector (a Deployment's `app=api`) can match the pods of another workload labelled
 * alike (a chart's migration Job): a policy selecting by it would give that workload its rules too, and a
 * rule naming it as a peer would admit that workload's pods as well. NetworkPolicies add up, so this is
 * more than least privilege. The narrowed selector adds requirements on labels that separate them.
 */
import { GENERATED_LABELS } from '../identity/index.ts';
import type { Workload } from '../identity/types.ts';
import type { LabelSelector, LabelSelectorRequirement } from '../model/k8s.ts';
import { matchesSelector } from '../model/selectors.ts';
import { compareText } from '../model/order.ts';

export interface NarrowedSelector {
  /** The workload's selector, with requirements added that none of the overlapping workloads' pods meet. */
  selector: LabelSelector;
  /** The workloads its selector matched (sorted by id). */
  overlapping: Workload[];
  /** Of those, the ones no label tells apart from it: its selector still matches their pods. */
  unseparated: Workload[];
}

/**
 * The other workloads of `w`'s namespace (among `members`) whose pods `w`'s selector matches: not
 * host-network (NetworkPolicy does not apply to them) and with labels. Sorted by id.
 */
export function overlappingWorkloads(w: Workload, members: Iterable<Workload>): Workload[] {
  const out: Workload[] = [];
  for (const o of members)
    if (
      o !== w &&
      o.namespace === w.namespace &&
      !o.hostNetwork &&
      Object.keys(o.labels).length > 0 &&
      matchesSelector(w.selector, o.labels)
    )
      out.push(o);
  return out.sort((a, b) => compareText(a.id, b.id));
}

/**
 * `w`'s selector narrowed so that it keeps matching `w`'s pods and matches none of `overlapping`'s.
 * Preferred: `key In [value]` for a label every pod of `w` carries with that value and the other's pods
 * lack or carry with another value; else `key DoesNotExist` for a label the other's pods carry and `w`'s
 * never do. Labels Kubernetes generates per pod, revision or run (GENERATED_LABELS) are never used.
 * Among the candidates of a kind, the one that tells the most remaining workloads apart is taken first,
 * then the smallest key: few requirements, the same ones whatever the order of `overlapping`. A workload
 * whose stable labels are exactly `w`'s cannot be told apart: it stays selected, in `unseparated`.
 */
export function narrowSelector(w: Workload, overlapping: readonly Workload[]): NarrowedSelector {
  const sorted = [...overlapping].sort((a, b) => compareText(a.id, b.id));
  if (sorted.length === 0) return { selector: w.selector, overlapping: [], unseparated: [] };
  const own = w.labels;
  const inKeys = Object.keys(own)
    .filter((k) => !GENERATED_LABELS.has(k))
    .sort(compareText);
  /** The labels of `o` that `w`'s pods never carry. */
  const notOwn = (o: Workload) =>
    Object.keys(o.labels).filter((k) => !(k in own) && !GENERATED_LABELS.has(k));
  let remaining = sorted.filter((o) => inKeys.some((k) => o.labels[k] !== own[k]) || notOwn(o).length > 0);
  const unseparated = sorted.filter((o) => !remaining.includes(o));
  const added: LabelSelectorRequirement[] = [];
  while (remaining.length > 0) {
    // `key In [value]` excludes the workloads whose label `key` is missing or different.
    let best: { req: LabelSelectorRequirement; excludes: Workload[] } | undefined;
    for (const k of inKeys) {
      const excludes = remaining.filter((o) => o.labels[k] !== own[k]);
      if (excludes.length > (best?.excludes.length ?? 0))
        best = { req: { key: k, operator: 'In', values: [own[k]!] }, excludes };
    }
    if (best === undefined) {
      // No label of `w` tells them apart: one of theirs that `w`'s pods never carry.
      const keys = [...new Set(remaining.flatMap(notOwn))].sort(compareText);
      for (const k of keys) {
        const excludes = remaining.filter((o) => k in o.labels);
        if (excludes.length > (best?.excludes.length ?? 0))
          best = { req: { key: k, operator: 'DoesNotExist' }, excludes };
      }
    }
    // Every workload left has a label that tells it apart (checked above), so one is always found.
    added.push(best!.req);
    remaining = remaining.filter((o) => !best!.excludes.includes(o));
  }
  const expressions = [...(w.selector.matchExpressions ?? []), ...added].sort(
    (a, b) =>
      compareText(a.key, b.key) ||
      compareText(a.operator, b.operator) ||
      compareText((a.values ?? []).join(','), (b.values ?? []).join(',')),
  );
  const selector: LabelSelector =
    added.length === 0 ? w.selector : { ...w.selector, matchExpressions: expressions };
  return { selector, overlapping: sorted, unseparated };
}
