/**
 * Selectors that tell a workload's pods from the pods of the other workloads of its namespace. A
 * workload's own selector (a Deployment's `app=api`) can match the pods of another workload labelled
 * alike (a chart's migration Job): a policy selecting by it would give that workload its rules too, and a
 * rule naming it as a peer would admit that workload's pods as well. NetworkPolicies add up, so this is
 * more than least privilege. The narrowed selector adds requirements on labels that separate them.
 */
import { GENERATED_LABELS, KIND_LABELS, kindLabels, SEGMENT_LABEL } from '../identity/index.ts';
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
  /**
   * The `key In [value]` requirements added (sorted by key), each with the workloads it leaves out: they
   * rest on a label of the workload's pod template, which a rollout may change (a chart's version label),
   * and whose new pods the selector would then leave out. Empty when none was needed.
   */
  onTemplate: { requirement: LabelSelectorRequirement; leavesOut: Workload[] }[];
}

/**
 * `w` as its selectors see it: without the pin label (SEGMENT_LABEL) in its selector, unless the pin is
 * all it has (a selector of nothing would select every pod of the namespace; proposePolicies warns of
 * the policies that then select its pods by the pin alone). The pin is what a team changes to move a workload to another segment (on a pod template, a
 * rollout then changes it on the pods): a selector resting on it (a Job's or a CronJob's, made of its
 * template's labels) would leave out the pods of the workload's next revision or run once the pin is
 * added, changed or removed, and the default deny would block their traffic. Nor does a narrowed
 * selector ever rest on it (see narrowSelector).
 */
export function withoutPin(w: Workload): Workload {
  const sel = w.selector;
  const inLabels = sel.matchLabels !== undefined && SEGMENT_LABEL in sel.matchLabels;
  const inExpressions = (sel.matchExpressions ?? []).some((e) => e.key === SEGMENT_LABEL);
  if (!inLabels && !inExpressions) return w;
  const matchLabels = Object.fromEntries(
    Object.entries(sel.matchLabels ?? {}).filter(([k]) => k !== SEGMENT_LABEL),
  );
  const matchExpressions = (sel.matchExpressions ?? []).filter((e) => e.key !== SEGMENT_LABEL);
  if (Object.keys(matchLabels).length === 0 && matchExpressions.length === 0) return w;
  const selector: LabelSelector = {
    ...(Object.keys(matchLabels).length > 0 ? { matchLabels } : {}),
    ...(matchExpressions.length > 0 ? { matchExpressions } : {}),
  };
  return { ...w, selector };
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
      o.id !== w.id &&
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

/** The rank of a generated key: its place in the list of a kind that lists it (KIND_LABELS), 0 first. */
const KIND_LABEL_RANK = new Map<string, number>();
for (const keys of Object.values(KIND_LABELS))
  keys.forEach((k, i) => KIND_LABEL_RANK.set(k, Math.min(i, KIND_LABEL_RANK.get(k) ?? i)));

/**
 * `w`'s selector narrowed so that it keeps matching `w`'s pods and matches none of `overlapping`'s, by
 * requirements that a rollout of either leaves true whenever a label allows it. In order of preference:
 * 1. `key DoesNotExist` for a generated key whose presence is intrinsic to the other's kind and not to
 *    `w`'s (KIND_LABELS: a Job's pods carry `job-name`, a Deployment's `pod-template-hash`), which every
 *    pod of the other in the snapshot carries and no pod of `w` does; its value is never used.
 * 2. `key DoesNotExist` for a stable label every pod of the other carries and no pod of `w` does.
 * 3. `key In [value]` for a label of `w`'s pod template, which every pod of `w` carries with that value
 *    and every pod of the other lacks or carries with another value: a rollout changing it (a chart's
 *    version label) would leave `w`'s new pods out, so these are listed in `onTemplate`.
 * Otherwise labels Kubernetes generates per pod, revision or run (GENERATED_LABELS) are never used, nor
 * labels the pods of either do not all carry alike (`varyingLabels`), nor the pin label (SEGMENT_LABEL),
 * which a team changes to move a workload to another segment. Within a kind of requirement, the
 * one that tells the most remaining workloads apart is taken first, then the generated key a kind lists
 * first (KIND_LABELS), then the smallest key: few requirements, the same ones whatever the order of
 * `overlapping`. A workload no such label tells apart stays selected, in `unseparated`.
 */
export function narrowSelector(w: Workload, overlapping: readonly Workload[]): NarrowedSelector {
  const sorted = [...overlapping].sort((a, b) => compareText(a.id, b.id));
  if (sorted.length === 0) return { selector: w.selector, overlapping: [], unseparated: [], onTemplate: [] };
  const own = w.labels;
  const steady = (x: Workload, k: string) =>
    !GENERATED_LABELS.has(k) && k !== SEGMENT_LABEL && !x.varyingLabels?.includes(k);
  /** Keys the pods of `w` carry or, being of its kind, may: never a DoesNotExist. */
  const ownKind = new Set(kindLabels(w.kind));
  const ownCarried = (k: string) =>
    ownKind.has(k) || !!w.generatedLabels?.includes(k) || !!w.varyingLabels?.includes(k);
  /** The generated keys of `o`'s kind that every pod of `o` carries and no pod of `w` does. */
  const kindKeys = (o: Workload) =>
    kindLabels(o.kind).filter((k) => !!o.generatedLabels?.includes(k) && !ownCarried(k));
  /** The stable labels every pod of `o` carries and no pod of `w` does. */
  const theirs = (o: Workload) =>
    Object.keys(o.labels).filter((k) => !(k in own) && steady(w, k) && steady(o, k));
  const inKeys = Object.keys(own)
    .filter((k) => steady(w, k))
    .sort(compareText);
  /** Does `key In [own value]` leave out every pod of `o`? */
  const inExcludes = (o: Workload, k: string) => o.labels[k] !== own[k] && steady(o, k);

  type Choice = { req: LabelSelectorRequirement; excludes: Workload[]; rank: number };
  /** Of `keys`, the one whose requirement leaves out the most of `remaining`, then the best ranked. */
  const pick = (
    remaining: Workload[],
    keys: Iterable<string>,
    excludes: (o: Workload, k: string) => boolean,
    req: (k: string) => LabelSelectorRequirement,
    rank: (k: string) => number = () => 0,
  ): Choice | undefined => {
    let best: Choice | undefined;
    for (const k of [...new Set(keys)].sort(compareText)) {
      const out = remaining.filter((o) => excludes(o, k));
      const r = rank(k);
      if (
        out.length > 0 &&
        (best === undefined ||
          out.length > best.excludes.length ||
          (out.length === best.excludes.length && r < best.rank))
      )
        best = { req: req(k), excludes: out, rank: r };
    }
    return best;
  };
  const notThere = (k: string): LabelSelectorRequirement => ({ key: k, operator: 'DoesNotExist' });

  let remaining = sorted.filter(
    (o) => kindKeys(o).length > 0 || theirs(o).length > 0 || inKeys.some((k) => inExcludes(o, k)),
  );
  const unseparated = sorted.filter((o) => !remaining.includes(o));
  const added: LabelSelectorRequirement[] = [];
  const onTemplate: NarrowedSelector['onTemplate'] = [];
  while (remaining.length > 0) {
    const left = remaining;
    const choice =
      pick(
        left,
        left.flatMap(kindKeys),
        (o, k) => kindKeys(o).includes(k),
        notThere,
        (k) => KIND_LABEL_RANK.get(k)!,
      ) ??
      pick(left, left.flatMap(theirs), (o, k) => theirs(o).includes(k), notThere) ??
      pick(left, inKeys, inExcludes, (k) => ({ key: k, operator: 'In', values: [own[k]!] }));
    // Every workload left has a requirement that leaves it out (checked above), so one is always found.
    added.push(choice!.req);
    if (choice!.req.operator === 'In')
      onTemplate.push({ requirement: choice!.req, leavesOut: choice!.excludes });
    remaining = left.filter((o) => !choice!.excludes.includes(o));
  }
  const expressions = [...(w.selector.matchExpressions ?? []), ...added].sort(
    (a, b) =>
      compareText(a.key, b.key) ||
      compareText(a.operator, b.operator) ||
      compareText((a.values ?? []).join(','), (b.values ?? []).join(',')),
  );
  const selector: LabelSelector =
    added.length === 0 ? w.selector : { ...w.selector, matchExpressions: expressions };
  onTemplate.sort((a, b) => compareText(a.requirement.key, b.requirement.key));
  return { selector, overlapping: sorted, unseparated, onTemplate };
}
