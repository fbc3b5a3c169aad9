/**
 * Compiled label selectors for the hot path: the same semantics as `matchesSelector`
 * (src/model/selectors.ts), with the requirement list built once when a policy is compiled.
 */
import type { LabelSelector } from '../model/k8s.ts';

interface Req {
  key: string;
  op: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist' | 'Eq';
  values: readonly string[];
  value: string;
}

/** A compiled selector: every requirement must hold; an empty list matches everything. */
export type Matcher = readonly Req[];

/** The values of every `Eq` requirement (they compare `value`): one array for all. */
const NO_VALUES: readonly string[] = Object.freeze([]);

export function compileSelector(sel: LabelSelector): Matcher {
  const reqs: Req[] = [];
  for (const [key, value] of Object.entries(sel.matchLabels ?? {}))
    reqs.push({ key, op: 'Eq', values: NO_VALUES, value });
  for (const e of sel.matchExpressions ?? [])
    reqs.push({ key: e.key, op: e.operator, values: e.values ?? [], value: '' });
  return reqs;
}

export function matches(m: Matcher, labels: Readonly<Record<string, string>>): boolean {
  for (let i = 0; i < m.length; i++) {
    const r = m[i]!;
    const has = Object.prototype.hasOwnProperty.call(labels, r.key);
    const v = has ? labels[r.key]! : '';
    switch (r.op) {
      case 'Eq':
        if (!has || v !== r.value) return false;
        break;
      case 'In':
        if (!has || !r.values.includes(v)) return false;
        break;
      case 'NotIn':
        if (has && r.values.includes(v)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
    }
  }
  return true;
}

const cache = new WeakMap<LabelSelector, Matcher>();

/** Matches an uncompiled selector, compiling it once per selector object. */
export function selects(sel: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  let m = cache.get(sel);
  if (!m) {
    m = compileSelector(sel);
    cache.set(sel, m);
  }
  return matches(m, labels);
}

/** The first matchLabels entry of a selector, used to index policies and classes. */
export function firstLabel(sel: LabelSelector | undefined): [string, string] | undefined {
  if (!sel?.matchLabels) return undefined;
  for (const k in sel.matchLabels) return [k, sel.matchLabels[k]!];
  return undefined;
}
