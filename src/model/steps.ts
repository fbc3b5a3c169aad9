/**
 * A computation done in steps: a generator whose every `yield` is a point where it may be paused, and
 * whose return value is its result. The functional core writes its long computations this way
 * (building an engine over thousands of policies, replaying thousands of edges) so that a server can
 * run them in slices and answer other requests between them (see src/server/slices.ts), while the CLI
 * runs them at once (`runSteps`). Either way the result is the same: pausing changes nothing of it.
 */
export type Steps<T> = Generator<undefined, T, undefined>;

/** Runs `steps` to its end at once, and gives its result. */
export function runSteps<T>(steps: Steps<T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done === true) return r.value;
  }
}
