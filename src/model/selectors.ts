import type { LabelSelector } from './k8s.ts';

/**
 * Label selector semantics of metav1.LabelSelector: matchLabels and matchExpressions are ANDed;
 * an empty selector ({}) matches everything; a null/absent selector is handled by the caller (its
 * meaning depends on the field: absent podSelector in a peer means "no constraint").
 */
export function matchesSelector(
  selector: LabelSelector,
  labels: Readonly<Record<string, string>> | undefined,
): boolean {
  const l = labels ?? {};
  if (selector.matchLabels) {
    for (const [k, v] of Object.entries(selector.matchLabels)) {
      if (l[k] !== v) return false;
    }
  }
  if (selector.matchExpressions) {
    for (const req of selector.matchExpressions) {
      const has = Object.prototype.hasOwnProperty.call(l, req.key);
      const value = l[req.key];
      switch (req.operator) {
        case 'In':
          if (!has || !(req.values ?? []).includes(value!)) return false;
          break;
        case 'NotIn':
          if (has && (req.values ?? []).includes(value!)) return false;
          break;
        case 'Exists':
          if (!has) return false;
          break;
        case 'DoesNotExist':
          if (has) return false;
          break;
        default:
          throw new Error(
            `unknown label selector operator ${JSON.stringify((req as { operator: unknown }).operator)}`,
          );
      }
    }
  }
  return true;
}

/** True when the selector has no requirement at all, i.e. selects every object. */
export function isEmptySelector(selector: LabelSelector | undefined): boolean {
  return (
    !!selector &&
    Object.keys(selector.matchLabels ?? {}).length === 0 &&
    (selector.matchExpressions ?? []).length === 0
  );
}

/**
 * Validates a selector's shape, returning a problem description or undefined. Used at the input edge
 * so that evaluation code can assume well-formed selectors.
 */
export function selectorProblem(selector: unknown): string | undefined {
  if (selector === null || typeof selector !== 'object' || Array.isArray(selector))
    return 'must be an object';
  const s = selector as Record<string, unknown>;
  if (s.matchLabels !== undefined) {
    if (s.matchLabels === null || typeof s.matchLabels !== 'object' || Array.isArray(s.matchLabels))
      return 'matchLabels must be an object of strings';
    for (const [k, v] of Object.entries(s.matchLabels)) {
      if (typeof v !== 'string') return `matchLabels.${k} must be a string`;
    }
  }
  if (s.matchExpressions !== undefined) {
    if (!Array.isArray(s.matchExpressions)) return 'matchExpressions must be a list';
    for (const [i, e] of (s.matchExpressions as unknown[]).entries()) {
      const r = e as Record<string, unknown> | null;
      if (!r || typeof r.key !== 'string') return `matchExpressions[${i}].key must be a string`;
      if (!['In', 'NotIn', 'Exists', 'DoesNotExist'].includes(r.operator as string))
        return `matchExpressions[${i}].operator ${JSON.stringify(r.operator)} is not one of In, NotIn, Exists, DoesNotExist`;
      if (
        (r.operator === 'In' || r.operator === 'NotIn') &&
        (!Array.isArray(r.values) || r.values.length === 0)
      )
        return `matchExpressions[${i}].values must be a non-empty list for ${r.operator as string}`;
      if (
        (r.operator === 'Exists' || r.operator === 'DoesNotExist') &&
        Array.isArray(r.values) &&
        r.values.length > 0
      )
        return `matchExpressions[${i}].values must be empty for ${r.operator as string}`;
    }
  }
  return undefined;
}
