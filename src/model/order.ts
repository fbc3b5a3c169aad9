/**
 * The one order of text in everything microseg writes: English collation, whatever the locale of the
 * machine it runs on. `localeCompare` and `new Intl.Collator()` follow the process's locale (LANG), so
 * the same input sorted differently in Copenhagen (where `aa` comes after `z`) or Tallinn (`z` after
 * `s`): GitOps diffs of policies written on two machines were not quiet.
 */
export const compareText: (a: string, b: string) => number = new Intl.Collator('en').compare;
