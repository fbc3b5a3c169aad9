/**
 * A de-duplicating work queue of object keys, as in controller-runtime: a key added many times before
 * it is processed is processed once; a key is never processed by two workers at once (an add while it
 * is being processed runs it again afterwards); failures are retried with per-key exponential backoff.
 */
export interface Result {
  /** Look again after this many ms (level-based resync). */
  requeueAfter?: number;
  /** The attempt failed: retried with backoff. */
  error?: Error;
  /**
   * The attempt did part of its work and said what it could not (writes the API server refused): tried
   * again after the key's backoff delay, as a failure is, or after `requeueAfter` when that is sooner;
   * neither a tight loop nor a wait for the resync.
   */
  retry?: boolean;
}

export class WorkQueue {
  readonly #pending = new Set<string>();
  readonly #processing = new Set<string>();
  readonly #dirtyWhileProcessing = new Set<string>();
  readonly #timers = new Map<string, NodeJS.Timeout>();
  readonly #failures = new Map<string, number>();
  readonly #baseDelayMs: number;
  readonly #maxDelayMs: number;
  #wake: (() => void) | undefined;
  #stopped = false;

  constructor(opts: { baseDelayMs?: number; maxDelayMs?: number } = {}) {
    this.#baseDelayMs = opts.baseDelayMs ?? 200;
    this.#maxDelayMs = opts.maxDelayMs ?? 60_000;
  }

  get length(): number {
    return this.#pending.size;
  }

  add(key: string): void {
    if (this.#stopped) return;
    const t = this.#timers.get(key);
    if (t) {
      clearTimeout(t);
      this.#timers.delete(key);
    }
    if (this.#processing.has(key)) {
      this.#dirtyWhileProcessing.add(key);
      return;
    }
    this.#pending.add(key);
    this.#wake?.();
  }

  /** Adds the key after `ms`, unless it is added sooner. */
  addAfter(key: string, ms: number): void {
    if (this.#stopped) return;
    const existing = this.#timers.get(key);
    if (existing) clearTimeout(existing);
    const t = setTimeout(() => {
      this.#timers.delete(key);
      this.add(key);
    }, ms);
    t.unref();
    this.#timers.set(key, t);
  }

  /** Retries after an exponential delay that grows with consecutive failures of the key. */
  addRateLimited(key: string, atMostMs = Infinity): number {
    const n = (this.#failures.get(key) ?? 0) + 1;
    this.#failures.set(key, n);
    const delay = Math.min(this.#maxDelayMs, this.#baseDelayMs * 2 ** (n - 1), atMostMs);
    this.addAfter(key, delay);
    return delay;
  }

  forget(key: string): void {
    this.#failures.delete(key);
  }

  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers.values()) clearTimeout(t);
    this.#timers.clear();
    this.#pending.clear();
    this.#wake?.();
  }

  /** Runs `handle` for keys until stopped; one key at a time per worker. */
  async run(
    handle: (key: string) => Promise<Result>,
    onError?: (key: string, err: Error) => void,
  ): Promise<void> {
    while (!this.#stopped) {
      const next = this.#pending.values().next();
      if (next.done) {
        await new Promise<void>((resolve) => (this.#wake = resolve));
        this.#wake = undefined;
        continue;
      }
      const key = next.value;
      this.#pending.delete(key);
      this.#processing.add(key);
      let result: Result;
      try {
        result = await handle(key);
      } catch (err) {
        result = { error: err instanceof Error ? err : new Error(String(err)) };
      }
      this.#processing.delete(key);
      if (result.error) {
        onError?.(key, result.error);
        this.addRateLimited(key);
      } else if (result.retry) {
        this.addRateLimited(key, result.requeueAfter);
      } else {
        this.forget(key);
        if (result.requeueAfter !== undefined) this.addAfter(key, result.requeueAfter);
      }
      if (this.#dirtyWhileProcessing.delete(key)) this.add(key);
    }
  }
}
