/** Stable text for policies and the report: same proposal, byte-identical files. */
import { stringify } from 'yaml';
import type { NetworkPolicy, NetworkPolicySpec } from '../model/k8s.ts';
import { QUARANTINE_LABEL } from '../isolate/api.ts';

const YAML_OPTIONS = { lineWidth: 0, sortMapEntries: false, aliasDuplicateObjects: false } as const;

/**
 * Multi-document YAML of policies, in the order given, except that each namespace's default deny comes
 * after its other policies (inApplyOrder): `kubectl apply -f` writes them in this order.
 */
export function policiesToYaml(policies: readonly NetworkPolicy[], writer = new YamlWriter()): string {
  return inApplyOrder(policies)
    .map((p) => writer.document(p))
    .join('---\n');
}

/**
 * Whether a NetworkPolicy (or the proposal of one) is a namespace's default deny: it selects every pod
 * of its namespace (an empty podSelector) or every pod but the quarantined ones (the only requirement
 * `microseg.dev/quarantine DoesNotExist`, the exclusion an Isolation adds to microseg's policies and
 * Enforce keeps while a pod of the namespace is quarantined), is of at least one policy type and has no
 * rule.
 */
export function isDefaultDeny(p: { spec?: Partial<NetworkPolicySpec> }): boolean {
  const s = p.spec;
  if (!s || (s.policyTypes?.length ?? 0) === 0) return false;
  const sel = s.podSelector;
  const every =
    !sel ||
    (Object.keys(sel.matchLabels ?? {}).length === 0 &&
      (sel.matchExpressions ?? []).every((e) => e.key === QUARANTINE_LABEL && e.operator === 'DoesNotExist'));
  return every && (s.ingress?.length ?? 0) === 0 && (s.egress?.length ?? 0) === 0;
}

/**
 * Policies in the order to apply them: by namespace, in the order the namespaces first come, each
 * namespace's policies in the order given but its default denies after the others. A policy selects
 * pods of its own namespace only, so a namespace's pods are never cut off meanwhile from what its
 * policies allow: written first, its default deny denied the traffic of every pod whose policy came
 * later for as long as the writes took (`kubectl apply` of a namespace of many workloads).
 */
export function inApplyOrder<
  T extends { metadata: { namespace?: string }; spec?: Partial<NetworkPolicySpec> },
>(policies: readonly T[]): T[] {
  const byNs = new Map<string, { others: T[]; denies: T[] }>();
  for (const p of policies) {
    const ns = p.metadata.namespace ?? '';
    let g = byNs.get(ns);
    if (g === undefined) byNs.set(ns, (g = { others: [], denies: [] }));
    (isDefaultDeny(p) ? g.denies : g.others).push(p);
  }
  const out: T[] = [];
  for (const g of byNs.values()) out.push(...g.others, ...g.denies);
  return out;
}

/** Thrown inside YamlWriter for a value it leaves to the library. */
class Unusual extends Error {}

/**
 * `stringify(value, YAML_OPTIONS)` of the `yaml` library for JSON-like values, written directly: block
 * maps and sequences laid out as the library lays them out, every scalar rendered once by the library
 * in its context (a key of the top map, a key below it, a map value, a sequence item) and remembered,
 * since policies repeat the same names, labels and ports thousands of times. A document with anything
 * else (a string with a line break, a key the library would write in explicit form, undefined in an
 * array, a non-plain object, a number that is not finite) is given to the library whole. `test/core/yaml-writer.property.test.ts`
 * checks the output against the library's on random values.
 */
export class YamlWriter {
  /** Keys of a document's top map, and keys of the maps below it: the library writes some differently. */
  readonly #topKeys = new Map<string, string>();
  readonly #keys = new Map<string, string>();
  readonly #values = new Map<unknown, string>();
  readonly #items = new Map<unknown, string>();
  /** Documents given to the library whole. */
  fallbacks = 0;

  document(value: unknown): string {
    if (value === null || typeof value !== 'object') return stringify(value, YAML_OPTIONS);
    try {
      const out: string[] = [];
      if (Array.isArray(value)) {
        if (value.length === 0) return '[]\n';
        this.#seq(value, '', undefined, out);
      } else {
        if (!isPlain(value)) throw new Unusual();
        this.#map(value as Record<string, unknown>, '', undefined, out);
        // No keys, or only keys whose values are undefined (the library leaves them out, as #map does).
        if (out.length === 0) return '{}\n';
      }
      return out.join('');
    } catch (err) {
      if (!(err instanceof Unusual)) throw err;
      this.fallbacks++;
      return stringify(value, YAML_OPTIONS);
    }
  }

  /** The entries of a map at indentation `ind`; the first line starts with `first` when given. */
  #map(m: Record<string, unknown>, ind: string, first: string | undefined, out: string[]): void {
    let prefix = first ?? ind;
    for (const k of Object.keys(m)) {
      const v = m[k];
      if (v === undefined) continue;
      const key = prefix + this.#key(k, ind === '');
      prefix = ind;
      const inline = this.#inline(v, this.#values);
      if (inline !== undefined) out.push(key, ': ', inline, '\n');
      else if (Array.isArray(v)) {
        out.push(key, ':\n');
        this.#seq(v, ind + '  ', undefined, out);
      } else {
        out.push(key, ':\n');
        this.#map(v as Record<string, unknown>, ind + '  ', undefined, out);
      }
    }
  }

  /** The items of a sequence at indentation `ind`; the first line starts with `first` when given. */
  #seq(items: readonly unknown[], ind: string, first: string | undefined, out: string[]): void {
    let prefix = first ?? ind;
    for (const v of items) {
      if (v === undefined) throw new Unusual();
      const dash = prefix + '- ';
      prefix = ind;
      const inline = this.#inline(v, this.#items);
      if (inline !== undefined) out.push(dash, inline, '\n');
      else if (Array.isArray(v)) this.#seq(v, ind + '  ', dash, out);
      else this.#map(v as Record<string, unknown>, ind + '  ', dash, out);
    }
  }

  /** A scalar's text (or `[]`, `{}`), from `cache`; undefined for a non-empty map or sequence. */
  #inline(v: unknown, cache: Map<unknown, string>): string | undefined {
    if (typeof v === 'object' && v !== null) {
      if (Array.isArray(v)) return v.length === 0 ? '[]' : undefined;
      if (!isPlain(v)) throw new Unusual();
      for (const k in v) if ((v as Record<string, unknown>)[k] !== undefined) return undefined;
      if (Object.keys(v).length > 0) throw new Unusual(); // only undefined values: leave it to the library
      return '{}';
    }
    // A Map holds 0 and -0 as one key; the library writes them differently.
    let text = Object.is(v, -0) ? undefined : cache.get(v);
    if (text === undefined) {
      if (
        typeof v === 'string'
          ? /[\n\r]/.test(v)
          : typeof v === 'number'
            ? !Number.isFinite(v)
            : typeof v !== 'boolean' && v !== null
      )
        throw new Unusual();
      const item = cache === this.#items;
      const whole = item ? stringify([v], YAML_OPTIONS) : stringify({ a: v }, YAML_OPTIONS);
      const lead = item ? '- ' : 'a: ';
      if (!whole.startsWith(lead) || whole.indexOf('\n') !== whole.length - 1) throw new Unusual();
      text = whole.slice(lead.length, -1);
      if (!Object.is(v, -0)) cache.set(v, text);
    }
    return text;
  }

  /**
   * A key's text in the document's top map (`top`) or in a map below it. The library quotes a key that
   * starts with a document marker (`---`, `...`) in the top map only, where the key starts its line.
   */
  #key(k: string, top: boolean): string {
    const cache = top ? this.#topKeys : this.#keys;
    let text = cache.get(k);
    if (text === undefined) {
      if (/[\n\r]/.test(k)) throw new Unusual();
      const whole = top ? stringify({ [k]: 0 }, YAML_OPTIONS) : stringify({ a: { [k]: 0 } }, YAML_OPTIONS);
      const lead = top ? '' : 'a:\n  ';
      if (
        !whole.startsWith(lead) ||
        !whole.endsWith(': 0\n') ||
        whole.indexOf('\n', lead.length) !== whole.length - 1 ||
        whole.startsWith('? ', lead.length)
      )
        throw new Unusual();
      text = whole.slice(lead.length, -4);
      cache.set(k, text);
    }
    return text;
  }
}

function isPlain(v: object): boolean {
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/** The policies by namespace, namespaces sorted. */
function byNamespace(policies: readonly NetworkPolicy[]): Map<string, NetworkPolicy[]> {
  const byNs = new Map<string, NetworkPolicy[]>();
  for (const p of policies) {
    const ns = p.metadata.namespace!;
    let l = byNs.get(ns);
    if (l === undefined) byNs.set(ns, (l = []));
    l.push(p);
  }
  return new Map([...byNs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * The first line of each `<namespace>.yaml` that `recommend` writes. A later run into the same directory
 * recognises its own earlier files by it (the whole line, for the namespace the file is named after),
 * and removes those it no longer writes; a file without it is never touched.
 */
export function policyFileHeader(namespace: string): string {
  return `# Written by microseg recommend for namespace ${namespace}; a later run covering ${namespace} replaces or removes this file\n`;
}

/**
 * The files of a proposal, rendered when they are read: `<namespace>.yaml` for each namespace
 * (sorted; each begins with policyFileHeader), then any extra files (given as pieces of text). `pieces()` renders one file at a time and
 * hands large ones over in pieces, so a writer that writes each piece as it comes never holds the
 * files (20k policies make about 145 MB of YAML and an 88 MB report).
 */
export class PolicyFiles implements Iterable<[string, string]> {
  readonly #byNs: Map<string, NetworkPolicy[]>;
  readonly #extra: Map<string, () => Iterable<string>>;
  readonly #writer = new YamlWriter();

  constructor(policies: readonly NetworkPolicy[], extra: Map<string, () => Iterable<string>> = new Map()) {
    this.#byNs = byNamespace(policies);
    this.#extra = extra;
  }

  /** File names, in the order iteration gives them. */
  names(): string[] {
    return [...[...this.#byNs.keys()].map((ns) => `${ns}.yaml`), ...this.#extra.keys()];
  }

  /** One file's text, rendered now; undefined for a name that is not a file of this proposal. */
  get(name: string): string | undefined {
    const extra = this.#extra.get(name);
    if (extra !== undefined) return [...extra()].join('');
    const ns = name.endsWith('.yaml') ? this.#byNs.get(name.slice(0, -'.yaml'.length)) : undefined;
    return ns === undefined
      ? undefined
      : policyFileHeader(name.slice(0, -'.yaml'.length)) + policiesToYaml(ns, this.#writer);
  }

  /** Each file with its text in pieces, rendered as they are taken. */
  *pieces(): Generator<[string, Iterable<string>]> {
    for (const [ns, policies] of this.#byNs)
      yield [`${ns}.yaml`, [policyFileHeader(ns), policiesToYaml(policies, this.#writer)]];
    for (const [name, text] of this.#extra) yield [name, text()];
  }

  *[Symbol.iterator](): Iterator<[string, string]> {
    for (const [name, pieces] of this.pieces()) yield [name, [...pieces].join('')];
  }
}

/** JSON with a trailing newline and two-space indent (object key order as built). */
export function stableJson(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}

/**
 * `stableJson(value)` in pieces: the members of plain objects and the elements of arrays in the top
 * `depth` levels are written one by one, each deeper value by `JSON.stringify` and indented to its
 * place (JSON text has no line breaks inside strings, so indenting every line is exact). Anything
 * `JSON.stringify` treats specially (`toJSON`, a non-plain object) is given to it whole.
 */
export function* stableJsonPieces(value: unknown, depth = 3): Generator<string> {
  yield* jsonPieces(value, '', depth);
  yield '\n';
}

/**
 * An array whose elements are made as they are written: stableJsonPieces iterates it in place (within
 * its `depth`), so its elements are never all held; elsewhere (JSON.stringify) it is the array of them.
 */
export class JsonArrayOf<T> {
  readonly #items: Iterable<T>;
  constructor(items: Iterable<T>) {
    this.#items = items;
  }
  [Symbol.iterator](): Iterator<T> {
    return this.#items[Symbol.iterator]();
  }
  toJSON(): T[] {
    return [...this.#items];
  }
}

function* jsonPieces(value: unknown, pad: string, depth: number): Generator<string> {
  if (depth > 0 && value instanceof JsonArrayOf) {
    // As an array below, without knowing its length beforehand.
    const inner = pad + '  ';
    let i = 0;
    for (const item of value as JsonArrayOf<unknown>) {
      yield i++ === 0 ? '[\n' + inner : ',\n' + inner;
      yield* jsonPieces(item, inner, depth - 1);
    }
    yield i === 0 ? '[]' : '\n' + pad + ']';
    return;
  }
  const structured =
    depth > 0 &&
    value !== null &&
    typeof value === 'object' &&
    (Array.isArray(value) ||
      ((Object.getPrototypeOf(value) === Object.prototype || Object.getPrototypeOf(value) === null) &&
        typeof (value as { toJSON?: unknown }).toJSON !== 'function'));
  if (!structured) {
    const text = JSON.stringify(value, null, 2) as string | undefined;
    yield text === undefined ? 'null' : pad === '' ? text : text.replaceAll('\n', '\n' + pad);
    return;
  }
  const inner = pad + '  ';
  if (Array.isArray(value)) {
    if (value.length === 0) {
      yield '[]';
      return;
    }
    yield '[';
    for (let i = 0; i < value.length; i++) {
      yield i === 0 ? '\n' + inner : ',\n' + inner;
      yield* jsonPieces(value[i], inner, depth - 1);
    }
    yield '\n' + pad + ']';
    return;
  }
  let first = true;
  for (const [k, v] of Object.entries(value)) {
    // Members JSON.stringify leaves out.
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
    yield (first ? '{\n' : ',\n') + inner + JSON.stringify(k) + ': ';
    first = false;
    yield* jsonPieces(v, inner, depth - 1);
  }
  yield first ? '{}' : '\n' + pad + '}';
}
