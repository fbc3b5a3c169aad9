/**
 * A bounded flow queue between telemetry sources (Hubble Relay stream, HTTP push) and the one
 * consumer (the controller). Capacity is counted in flows. When a source offers more than fits, the
 * flows that do not fit - the newest ones - are dropped and counted per source with reason
 * `queue_full`; what is already queued is never evicted, so the consumer sees an accepted flow
 * exactly once and in arrival order. Memory is bounded by `capacity` whatever the sources do.
 *
 * The consumer takes batches and acknowledges each one once it has fully processed it; the ack is
 * passed back to the source that produced the flows (with the opaque tags the source attached), which
 * is how the Hubble source advances the checkpoint it exposes for persistence.
 */
import type { Flow } from '../flows/types.ts';

export type DropReason = 'queue_full' | 'invalid' | 'ignored' | 'duplicate';

export interface FlowBatch {
  flows: Flow[];
  /** Flows in this batch per source name. */
  sources: Record<string, number>;
  /** Tells the sources the batch is fully processed. Calling it twice is a no-op. */
  ack(): void;
}

export interface QueueMetrics {
  capacity: number;
  /** Flows waiting now. */
  queued: number;
  /** Flows accepted into the queue, per source. */
  received: Record<string, number>;
  /** Flows handed to the consumer, per source. */
  delivered: Record<string, number>;
  /** Flows acknowledged by the consumer, per source. */
  acknowledged: Record<string, number>;
  /** Flows lost before reaching the consumer, per source and reason. */
  dropped: Record<string, Partial<Record<DropReason, number>>>;
}

type AckHandler = (tags: unknown[]) => void;

export interface FlowQueueOptions {
  /** Maximum number of queued flows. */
  capacity: number;
  /**
   * Fraction of capacity at or above which `hasRoom()` turns false; streaming sources pause until
   * `waitForRoom()` resolves, which happens once the queue is at or below `lowWater`. Defaults 0.9 / 0.5.
   */
  highWater?: number;
  lowWater?: number;
}

export class FlowQueue {
  readonly capacity: number;
  private readonly highMark: number;
  private readonly lowMark: number;
  private flows: Flow[] = [];
  private srcs: string[] = [];
  private tags: unknown[] = [];
  private head = 0;
  private closed = false;
  private takers: (() => void)[] = [];
  private roomWaiters: (() => void)[] = [];
  private readonly ackHandlers = new Map<string, AckHandler>();
  private readonly m: Omit<QueueMetrics, 'capacity' | 'queued'> = {
    received: {},
    delivered: {},
    acknowledged: {},
    dropped: {},
  };

  constructor(opts: FlowQueueOptions) {
    if (!Number.isInteger(opts.capacity) || opts.capacity < 1)
      throw new RangeError(`queue capacity must be a positive integer, got ${opts.capacity}`);
    const high = opts.highWater ?? 0.9;
    const low = opts.lowWater ?? 0.5;
    if (!(low >= 0 && low <= high && high <= 1))
      throw new RangeError(`queue water marks must satisfy 0 <= lowWater <= highWater <= 1`);
    this.capacity = opts.capacity;
    this.highMark = Math.max(1, Math.floor(opts.capacity * high));
    this.lowMark = Math.floor(opts.capacity * low);
  }

  /** Registers a source name; `onAck` receives the tags of that source's flows in each acked batch. */
  register(source: string, onAck?: AckHandler): void {
    if (onAck) this.ackHandlers.set(source, onAck);
    this.m.received[source] ??= 0;
    this.m.delivered[source] ??= 0;
    this.m.acknowledged[source] ??= 0;
    this.m.dropped[source] ??= {};
  }

  get size(): number {
    return this.flows.length - this.head;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Room left before the queue starts dropping. */
  get free(): number {
    return this.capacity - this.size;
  }

  /** False once the queue is at or above its high-water mark: a streaming source should pause. */
  hasRoom(): boolean {
    return this.size < this.highMark;
  }

  /** Resolves when the queue has drained to its low-water mark (or is closed). */
  waitForRoom(): Promise<void> {
    if (this.closed || this.size <= this.lowMark) return Promise.resolve();
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  /**
   * Adds as many of `flows` as fit; the rest are dropped (`queue_full`). Returns how many were
   * accepted. `tags[i]` travels with `flows[i]` back to the source's ack handler.
   */
  offer(source: string, flows: readonly Flow[], tags?: readonly unknown[]): number {
    this.register(source);
    if (this.closed) {
      this.countDrop(source, 'queue_full', flows.length);
      return 0;
    }
    const n = Math.min(flows.length, this.free);
    for (let i = 0; i < n; i++) {
      this.flows.push(flows[i]!);
      this.srcs.push(source);
      this.tags.push(tags?.[i]);
    }
    this.m.received[source]! += n;
    if (n < flows.length) this.countDrop(source, 'queue_full', flows.length - n);
    if (n > 0) this.wakeTakers();
    return n;
  }

  /** Adds all of `flows` or none of them (then they are counted as dropped, `queue_full`). */
  offerAll(source: string, flows: readonly Flow[], tags?: readonly unknown[]): boolean {
    this.register(source);
    if (this.closed || flows.length > this.free) {
      this.countDrop(source, 'queue_full', flows.length);
      return false;
    }
    this.offer(source, flows, tags);
    return true;
  }

  /** Counts flows a source discarded before offering them. */
  countDrop(source: string, reason: DropReason, n = 1): void {
    if (n <= 0) return;
    this.register(source);
    const d = this.m.dropped[source]!;
    d[reason] = (d[reason] ?? 0) + n;
  }

  /**
   * Waits until at least one flow is queued, then returns up to `max` flows in arrival order. After
   * `close()`, returns what is left, then empty batches.
   */
  async take(max = 1000, signal?: AbortSignal): Promise<FlowBatch> {
    while (this.size === 0 && !this.closed) {
      if (signal?.aborted) return emptyBatch();
      await new Promise<void>((resolve) => {
        const wake = () => {
          signal?.removeEventListener('abort', wake);
          resolve();
        };
        this.takers.push(wake);
        signal?.addEventListener('abort', wake, { once: true });
      });
    }
    return this.takeNow(max);
  }

  /** Returns up to `max` queued flows without waiting (possibly an empty batch). */
  takeNow(max = 1000): FlowBatch {
    const n = Math.min(Math.max(0, Math.floor(max)), this.size);
    if (n === 0) return emptyBatch();
    const start = this.head;
    const flows = this.flows.slice(start, start + n);
    const srcs = this.srcs.slice(start, start + n);
    const tags = this.tags.slice(start, start + n);
    this.head += n;
    if (this.head > 4096 && this.head * 2 > this.flows.length) {
      this.flows = this.flows.slice(this.head);
      this.srcs = this.srcs.slice(this.head);
      this.tags = this.tags.slice(this.head);
      this.head = 0;
    }
    const sources: Record<string, number> = {};
    for (const s of srcs) sources[s] = (sources[s] ?? 0) + 1;
    for (const [s, c] of Object.entries(sources)) this.m.delivered[s]! += c;
    if (this.size <= this.lowMark) this.wakeRoomWaiters();
    let acked = false;
    return {
      flows,
      sources,
      ack: () => {
        if (acked) return;
        acked = true;
        const bySource = new Map<string, unknown[]>();
        for (let i = 0; i < srcs.length; i++) {
          const s = srcs[i]!;
          let list = bySource.get(s);
          if (!list) bySource.set(s, (list = []));
          list.push(tags[i]);
        }
        for (const [s, list] of bySource) {
          this.m.acknowledged[s]! += list.length;
          this.ackHandlers.get(s)?.(list);
        }
      },
    };
  }

  /** Batches until the queue is closed and drained; the consumer acks each batch itself. */
  async *batches(max = 1000, signal?: AbortSignal): AsyncGenerator<FlowBatch> {
    while (!signal?.aborted) {
      const b = await this.take(max, signal);
      if (b.flows.length === 0) {
        if (this.closed || signal?.aborted) return;
        continue;
      }
      yield b;
    }
  }

  /** Stops accepting flows; waiting consumers get what is left, then an empty batch. */
  close(): void {
    this.closed = true;
    this.wakeTakers();
    this.wakeRoomWaiters();
  }

  metrics(): QueueMetrics {
    const copy = <T>(r: Record<string, T>) =>
      Object.fromEntries(Object.entries(r).sort(([a], [b]) => cmp(a, b)));
    const dropped: QueueMetrics['dropped'] = {};
    for (const [s, d] of Object.entries(this.m.dropped).sort(([a], [b]) => cmp(a, b))) dropped[s] = { ...d };
    return {
      capacity: this.capacity,
      queued: this.size,
      received: copy(this.m.received),
      delivered: copy(this.m.delivered),
      acknowledged: copy(this.m.acknowledged),
      dropped,
    };
  }

  private wakeTakers(): void {
    const t = this.takers;
    this.takers = [];
    for (const w of t) w();
  }

  private wakeRoomWaiters(): void {
    const t = this.roomWaiters;
    this.roomWaiters = [];
    for (const w of t) w();
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function emptyBatch(): FlowBatch {
  return { flows: [], sources: {}, ack: () => {} };
}
