/**
 * Long computations of the functional core run in slices on the event loop (see model/steps.ts): a
 * slice takes at most `SLICE_MS` of steps, then the loop gets a turn (`setImmediate`: the requests,
 * timers and watch events waiting meanwhile are served) before the next. `POST /audit` audits a large
 * policy set this way: done at once, it held everything else the process does (the controller's probes,
 * reconciles, isolation webhooks) for a second or more.
 */
import { performance } from 'node:perf_hooks';
import type { Steps } from '../model/steps.ts';

/** How long a slice of steps may run before the event loop gets a turn, in ms. */
export const SLICE_MS = 10;

/** Resolves in the event loop's next turn, after the I/O waiting now. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** The error of steps whose caller gave up (its signal aborted: the client went away) before their end. */
export class StepsAbandoned extends Error {
  constructor() {
    super('not done: the request was abandoned');
    this.name = 'StepsAbandoned';
  }
}

/**
 * Runs `steps` to its end in slices of at most `sliceMs` (but one step each), and gives its result.
 * Once `signal` aborts, no slice more is run: it fails with StepsAbandoned (and what the steps held
 * is let go).
 */
export async function runInSlices<T>(
  steps: Steps<T>,
  opts: { signal?: AbortSignal | undefined; sliceMs?: number } = {},
): Promise<T> {
  const sliceMs = opts.sliceMs ?? SLICE_MS;
  // A function: read after each turn (TypeScript would take the first reading for all of them).
  const abandoned = () => opts.signal?.aborted === true;
  if (abandoned()) throw new StepsAbandoned();
  let until = performance.now() + sliceMs;
  for (;;) {
    const r = steps.next();
    if (r.done === true) return r.value;
    if (performance.now() >= until) {
      await nextTurn();
      if (abandoned()) throw new StepsAbandoned();
      until = performance.now() + sliceMs;
    }
  }
}
