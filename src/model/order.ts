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
