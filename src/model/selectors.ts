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
      // The API server takes strings only; a number would match nothing (labels are strings).
      const bad = Array.isArray(r.values)
        ? (r.values as unknown[]).findIndex((v) => typeof v !== 'string')
        : -1;
      if (bad >= 0) return `matchExpressions[${i}].values[${bad}] must be a string`;
    }
  }
  return undefined;
}

/** A label name, or the name part of a prefixed key: 63 characters at most. */
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
/** A DNS subdomain, the prefix of a label key: 253 characters at most. */
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function labelKeyProblem(key: string): string | undefined {
  const slash = key.indexOf('/');
  const prefix = slash < 0 ? undefined : key.slice(0, slash);
  const name = slash < 0 ? key : key.slice(slash + 1);
  if (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix)))
    return `key ${JSON.stringify(key)}: the prefix must be a DNS subdomain (lower case, e.g. example.com)`;
  if (name.length > 63 || !LABEL_NAME.test(name))
    return `key ${JSON.stringify(key)}: the name must be 63 characters at most, alphanumeric, '-', '_' or '.', starting and ending alphanumeric`;
  return undefined;
}

/**
 * Limits the microseg CRDs put on a validated label selector (`labelSelector(..., true)` in
 * model/openapi.ts): the parsers check the same, so an object that breaks one gets the controller's
 * message rather than the API server's.
 */
export const MAX_MATCH_EXPRESSIONS = 32;
export const MAX_MATCH_LABELS = 32;
export const MAX_SELECTOR_VALUES = 64;
/** A label value: 63 characters at most (also a Kubernetes rule for every label). */
export const MAX_LABEL_VALUE = 63;

function labelValueProblem(value: string): string | undefined {
  if (value === '' || (value.length <= MAX_LABEL_VALUE && LABEL_NAME.test(value))) return undefined;
  return `value ${JSON.stringify(value)}: must be empty or ${MAX_LABEL_VALUE} characters at most, alphanumeric, '-', '_' or '.', starting and ending alphanumeric`;
}

/**
 * The label keys and values of a well-formed selector (see `selectorProblem`) that Kubernetes would
 * not accept as labels, one problem each, e.g. `matchLabels: key "bad key!": the name must be ...`.
 * Such a selector matches no object, so it is reported rather than quietly matching nothing.
 */
export function selectorLabelProblems(selector: LabelSelector): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) {
    const p = labelKeyProblem(k) ?? labelValueProblem(v);
    if (p) out.push(`matchLabels: ${p}`);
  }
  for (const [i, e] of (selector.matchExpressions ?? []).entries()) {
    const key = labelKeyProblem(e.key);
    if (key) out.push(`matchExpressions[${i}]: ${key}`);
    for (const v of e.values ?? []) {
      const p = labelValueProblem(v);
      if (p) out.push(`matchExpressions[${i}].values: ${p}`);
    }
  }
  return out;
}

/**
 * The size limits of a validated selector (see MAX_MATCH_EXPRESSIONS) a well-formed selector breaks,
 * one problem each, e.g. `matchExpressions must have at most 32 requirements (has 40)`. (The CRD needs
 * the bound on matchLabels for the cost of its rule on their keys.) A value longer
 * than MAX_LABEL_VALUE is one of `selectorLabelProblems`.
 */
export function selectorLimitProblems(selector: LabelSelector): string[] {
  const out: string[] = [];
  const labels = Object.keys(selector.matchLabels ?? {}).length;
  if (labels > MAX_MATCH_LABELS)
    out.push(`matchLabels must have at most ${MAX_MATCH_LABELS} labels (has ${labels})`);
  const expressions = selector.matchExpressions ?? [];
  if (expressions.length > MAX_MATCH_EXPRESSIONS)
    out.push(
      `matchExpressions must have at most ${MAX_MATCH_EXPRESSIONS} requirements (has ${expressions.length})`,
    );
  for (const [i, e] of expressions.entries()) {
    const n = e.values?.length ?? 0;
    if (n > MAX_SELECTOR_VALUES)
      out.push(`matchExpressions[${i}].values must have at most ${MAX_SELECTOR_VALUES} values (has ${n})`);
  }
  return out;
}

const KEY = '([^\\s=!<>(),]+)';
const REQUIREMENT_FORMS =
  'key, !key, key=value, key==value, key!=value, key in (v1,v2), key notin (v1,v2), key>N, key<N';

/** The problem of one requirement of a label selector in text form, or undefined when it is one. */
function requirementProblem(req: string): string | undefined {
  let m: RegExpExecArray | null;
  if ((m = new RegExp(`^!\\s*${KEY}$`).exec(req)) || (m = new RegExp(`^${KEY}$`).exec(req)))
    return labelKeyProblem(m[1]!);
  if ((m = new RegExp(`^${KEY}\\s*(==|=|!=)\\s*([^\\s=!<>(),]*)$`).exec(req)))
    return labelKeyProblem(m[1]!) ?? labelValueProblem(m[3]!);
  if ((m = new RegExp(`^${KEY}\\s+(in|notin)\\s*\\((.*)\\)$`).exec(req))) {
    const values = m[3]!.split(',').map((v) => v.trim());
    if (m[3]!.trim() === '') return `${JSON.stringify(req)}: ${m[2]} needs at least one value`;
    return labelKeyProblem(m[1]!) ?? values.map(labelValueProblem).find((p) => p !== undefined);
  }
  if ((m = new RegExp(`^${KEY}\\s*(<|>)\\s*(\\S*)$`).exec(req))) {
    if (!/^-?\d+$/.test(m[3]!)) return `${JSON.stringify(req)}: ${m[2]} needs a whole number`;
    return labelKeyProblem(m[1]!);
  }
  return `${JSON.stringify(req)} is none of ${REQUIREMENT_FORMS}`;
}

/**
 * Checks a label selector in the text form of the API's `labelSelector` parameter (what `kubectl -l`
 * takes): requirements separated by commas. Returns the problem, or undefined when the API server would
 * accept it (the empty selector, which selects everything, included).
 */
export function labelSelectorTextProblem(text: string): string | undefined {
  const requirements: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')' && --depth < 0) return 'a ")" without its "("';
    if (ch === ',' && depth === 0) {
      requirements.push(current.trim());
      current = '';
    } else current += ch;
  }
  if (depth > 0) return 'a "(" without its ")"';
  requirements.push(current.trim());
  if (requirements.length === 1 && requirements[0] === '') return undefined;
  for (const req of requirements) {
    if (req === '') return 'an empty requirement (a comma too many)';
    const problem = requirementProblem(req);
    if (problem !== undefined) return problem;
  }
  return undefined;
}
