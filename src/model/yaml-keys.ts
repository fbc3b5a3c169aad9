/**
 * The check that no map of a YAML document names a key twice, in one pass. The YAML library's own
 * check (its `uniqueKeys` option) compares each key of a map with every key before it: a map of 40,000
 * keys, some 390 KB of text, took over a minute to read, and one of an 8 MiB body hours, its thread
 * held all that time. Readers compose with `YAML_COMPOSE_OPTIONS` (the library's check off) and ask
 * `firstDuplicateKey` instead, which refuses the same keys: two scalar keys of one map whose values are
 * the same (`a` and `"a"`, `1` and `0x1`); other keys (lists, maps, aliases) are never the same as
 * another.
 */
import { isAlias, isMap, isPair, isScalar, isSeq } from 'yaml';
import type { Document, DocumentOptions, ParseOptions } from 'yaml';

/** The Composer's options: keys are checked by `firstDuplicateKey`, not by the library. */
export const YAML_COMPOSE_OPTIONS: ParseOptions & DocumentOptions = { uniqueKeys: false };

/** The library's words for a key given twice, kept so that the message reads as before. */
export const DUPLICATE_KEY_MESSAGE = 'Map keys must be unique';

/**
 * The offset in the text of the first key (in the order of the text) that a map of `doc` names a
 * second time, or undefined when none is.
 */
export function firstDuplicateKey(doc: Document.Parsed): number | undefined {
  let first: number | undefined;
  const stack: unknown[] = [doc.contents];
  for (let node = stack.pop(); stack.length > 0 || node !== undefined; node = stack.pop()) {
    // An alias is its anchor's node, looked at where that is.
    if (node === null || node === undefined || isAlias(node) || isScalar(node)) continue;
    if (isPair(node)) {
      stack.push(node.key, node.value);
    } else if (isMap(node)) {
      const seen = new Set<unknown>();
      for (const pair of node.items) {
        stack.push(pair.key, pair.value);
        const key = pair.key;
        // NaN is not the same as itself (the library compares with ===), whatever a Set says.
        if (!isScalar(key) || Number.isNaN(key.value)) continue;
        if (!seen.has(key.value)) {
          seen.add(key.value);
          continue;
        }
        const at = key.range?.[0];
        if (at !== undefined && (first === undefined || at < first)) first = at;
      }
    } else if (isSeq(node)) {
      for (const item of node.items) stack.push(item);
    }
  }
  return first;
}
