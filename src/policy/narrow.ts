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
 * The other workloads of `w`'s namespace (among `members`) whose pods `w`'s selector may match: not
 * host-network (NetworkPolicy does not apply to them) and with labels, whose labels match it but for
 * those their pods do not all carry alike (`varyingLabels`: some pod may meet the requirement). Sorted by id.
 */
export function overlappingWorkloads(w: Workload, members: Iterable<Workload>): Workload[] {
  const out: Workload[] = [];
  for (const o of members)
    if (
      o !== w &&
      o.namespace === w.namespace &&
      !o.hostNetwork &&
      Object.keys(o.labels).length > 0 &&
      mayMatch(w.selector, o)
    )
      out.push(o);
  return out.sort((a, b) => compareText(a.id, b.id));
}

/** Does `selector` match the labels of `o`, a requirement on a label its pods vary in counting as met? */
function mayMatch(selector: LabelSelector, o: Workload): boolean {
  const varying = o.varyingLabels ?? [];
  if (varying.length === 0) return matchesSelector(selector, o.labels);
  const matchLabels = Object.fromEntries(
    Object.entries(selector.matchLabels ?? {}).filter(([k]) => !varying.includes(k)),
  );
  const matchExpressions = (selector.matchExpressions ?? []).filter((e) => !varying.includes(e.key));
  return matchesSelector({ matchLabels, matchExpressions }, o.labels);
}

/**
 * `w`'s selector narrowed so that it keeps matching `w`'s pods and matches none of `overlapping`'s.
 * Preferred: `key In [value]` for a label every pod of `w` carries with that value and every pod of the
 * other lacks or carries with another value; else `key DoesNotExist` for a label every pod of the other
 * carries and no pod of `w` does. Labels Kubernetes generates per pod, revision or run (GENERATED_LABELS)
 * are never used, nor labels the pods of either do not all carry alike (`varyingLabels`). Among the
 * candidates of a kind, the one that tells the most remaining workloads apart is taken first, then the
 * smallest key: few requirements, the same ones whatever the order of `overlapping`. A workload no such
 * label tells apart stays selected, in `unseparated`.
 */
export function narrowSelector(w: Workload, overlapping: readonly Workload[]): NarrowedSelector {
  const sorted = [...overlapping].sort((a, b) => compareText(a.id, b.id));
  if (sorted.length === 0) return { selector: w.selector, overlapping: [], unseparated: [] };
  const own = w.labels;
  const steady = (x: Workload, k: string) => !GENERATED_LABELS.has(k) && !x.varyingLabels?.includes(k);
  const inKeys = Object.keys(own)
    .filter((k) => steady(w, k))
    .sort(compareText);
  /** Does `key In [own value]` leave out every pod of `o`? */
  const inExcludes = (o: Workload, k: string) => o.labels[k] !== own[k] && steady(o, k);
  /** The labels every pod of `o` carries and no pod of `w` does: `key DoesNotExist` leaves `o` out. */
  const theirs = (o: Workload) =>
    Object.keys(o.labels).filter((k) => !(k in own) && steady(w, k) && steady(o, k));
  let remaining = sorted.filter((o) => inKeys.some((k) => inExcludes(o, k)) || theirs(o).length > 0);
  const unseparated = sorted.filter((o) => !remaining.includes(o));
  const added: LabelSelectorRequirement[] = [];
  while (remaining.length > 0) {
    let best: { req: LabelSelectorRequirement; excludes: Workload[] } | undefined;
    for (const k of inKeys) {
      const excludes = remaining.filter((o) => inExcludes(o, k));
      if (excludes.length > (best?.excludes.length ?? 0))
        best = { req: { key: k, operator: 'In', values: [own[k]!] }, excludes };
    }
    if (best === undefined) {
      // No label of `w` tells them apart: one of theirs.
      const keys = [...new Set(remaining.flatMap(theirs))].sort(compareText);
      for (const k of keys) {
        const excludes = remaining.filter((o) => theirs(o).includes(k));
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
