/**
 * A keyed work queue in the controller-runtime style: a key waiting or running once is never queued
 * twice, a key changed while running is run again afterwards, failures retry with exponential backoff,
 * and a reconcile can ask to be run again after a delay.
 */
export interface QueueOptions {
  concurrency?: number;
  /** First retry delay after an error (doubles up to maxBackoffMs). */
  baseBackoffMs?: number;
  maxBackoffMs?: number;
  onError?: (key: string, err: unknown) => void;
}

export class KeyQueue {
  private readonly work: (key: string) => Promise<{ requeueAfterMs?: number }>;
  private readonly o: Required<Omit<QueueOptions, 'onError'>> & Pick<QueueOptions, 'onError'>;
  private readonly pending: string[] = [];
  private readonly queued = new Set<string>();
  private readonly running = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly failures = new Map<string, number>();
  private active = 0;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];

  constructor(work: (key: string) => Promise<{ requeueAfterMs?: number }>, options: QueueOptions = {}) {
    this.work = work;
    this.o = {
      concurrency: options.concurrency ?? 4,
      baseBackoffMs: options.baseBackoffMs ?? 200,
      maxBackoffMs: options.maxBackoffMs ?? 30_000,
      onError: options.onError,
    };
  }

  add(key: string): void {
    if (this.stopped) return;
    const t = this.timers.get(key);
    if (t) {
      clearTimeout(t);
      this.timers.delete(key);
    }
    if (this.running.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.pending.push(key);
    this.pump();
  }

  addAfter(key: string, ms: number): void {
    if (this.stopped) return;
    if (this.timers.has(key) || this.queued.has(key)) return;
    const t = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, ms);
    t.unref();
    this.timers.set(key, t);
  }

  /** Resolves when nothing is queued or running (timers may still be set). */
  idle(): Promise<void> {
    if (this.active === 0 && this.pending.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.pending.length = 0;
    this.queued.clear();
  }

  private pump(): void {
    while (!this.stopped && this.active < this.o.concurrency && this.pending.length > 0) {
      const key = this.pending.shift()!;
      this.queued.delete(key);
      this.running.add(key);
      this.active++;
      void this.run(key);
    }
    if (this.active === 0 && this.pending.length === 0) {
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const f of w) f();
    }
  }

  private async run(key: string): Promise<void> {
    let again: number | undefined;
    try {
      const res = await this.work(key);
      this.failures.delete(key);
      again = res.requeueAfterMs;
    } catch (err) {
      const n = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, n);
      again = Math.min(this.o.maxBackoffMs, this.o.baseBackoffMs * 2 ** (n - 1));
      this.o.onError?.(key, err);
    } finally {
      this.running.delete(key);
      this.active--;
    }
    if (this.dirty.delete(key)) this.add(key);
    else if (again !== undefined) this.addAfter(key, again);
    this.pump();
  }
}

/**
 * Lets background work run only while no foreground work is in flight, up to `limit` at once. Work that
 * has waited `maxDeferMs` runs anyway, one at a time, so that a long stream of foreground work delays the
 * background but never starves it.
 */
export class PriorityGate {
  private readonly limit: number;
  private readonly maxDeferMs: number;
  private readonly clock: () => number;
  private foreground = 0;
  private running = 0;
  private readonly waiters: { since: number; go: () => void }[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(limit: number, maxDeferMs: number, clock: () => number = () => performance.now()) {
    this.limit = Math.max(1, limit);
    this.maxDeferMs = maxDeferMs;
    this.clock = clock;
  }

  /** Marks foreground work as started; call the returned function when it ends. */
  enterForeground(): () => void {
    this.foreground++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.foreground--;
      this.pump();
    };
  }

  /** Waits for a background slot; call the returned function to give it back. */
  async acquire(): Promise<() => void> {
    await new Promise<void>((go) => {
      this.waiters.push({ since: this.clock(), go });
      this.pump();
    });
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.running--;
      this.pump();
    };
  }

  /** Background work waiting and running, foreground work in flight. */
  stats(): { waiting: number; running: number; foreground: number } {
    return { waiting: this.waiters.length, running: this.running, foreground: this.foreground };
  }

  private pump(): void {
    for (;;) {
      const head = this.waiters[0];
      if (!head) break;
      const overdue = this.clock() - head.since >= this.maxDeferMs;
      const cap = this.foreground === 0 ? this.limit : overdue ? 1 : 0;
      if (this.running >= cap) break;
      this.waiters.shift();
      this.running++;
      head.go();
    }
    const head = this.waiters[0];
    if (head && !this.timer) {
      const wait = Math.max(0, this.maxDeferMs - (this.clock() - head.since));
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.pump();
      }, wait + 1);
      this.timer.unref();
    }
  }
}
