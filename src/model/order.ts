/**
 * The one order of text in everything microseg writes: English collation, whatever the locale of the
 * machine it runs on. `localeCompare` and `new Intl.Collator()` follow the process's locale (LANG), so
 * the same input sorted differently in Copenhagen (where `aa` comes after `z`) or Tallinn (`z` after
 * `s`): GitOps diffs of policies written on two machines were not quiet.
 */
const collate = new Intl.Collator('en').compare;

/**
 * Compares two strings in that order; two different strings the collation holds equal (canonically
 * equivalent forms, characters it ignores) are told apart by their UTF-16 code units, so that no sort's
 * result depends on the order of its input.
 */
export function compareText(a: string, b: string): number {
  return collate(a, b) || (a < b ? -1 : a > b ? 1 : 0);
}

/**
 * The candidate nearest to `name` by edit distance, when it is near enough to be a typo of it (at most
 * 2 edits, and fewer than half its length); the first in collation order among equals.
 */
export function closestName(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.min(2, Math.ceil(name.length / 2) - 1);
  for (const c of [...candidates].sort(compareText)) {
    const d = editDistance(name, c);
    if (d <= bestDistance && (best === undefined || d < editDistance(name, best))) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

/** Levenshtein distance: insertions, deletions and substitutions of one character each. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++)
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}

/** Strings in the order of their UTF-16 code units (no collation): the order of sorted keys in JSON. */
export function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** JSON with object keys sorted at every level (undefined members left out): equal values give equal text. */
export function sortedJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(sortedJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${sortedJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/**
 * The first `shown` of `items` joined by commas, then how many more there are of `total` (the items'
 * count unless more were counted than listed): `a, b, c, and 4 more`. How messages name a few of many.
 */
export function firstOf(items: readonly string[], shown = 3, total = items.length): string {
  const more = total - Math.min(shown, items.length);
  return items.slice(0, shown).join(', ') + (more > 0 ? `, and ${more} more` : '');
}
