/**
 * Live telemetry ingestion, the imperative shell in front of the flow pipeline: a Hubble Relay
 * stream and/or an HTTP push endpoint feed one bounded queue; the controller takes batches of
 * normalised `Flow` records from it, acknowledges them when processed, persists `checkpoint()` and
 * exposes `metrics()` (plain numbers) or `prometheus()` (text for /metrics).
 */
import type { Router } from 'express';
import { FlowQueue } from './queue.ts';
import type { FlowBatch } from './queue.ts';
import { HubbleSource } from './hubble.ts';
import type { HubbleSourceOptions } from './hubble.ts';
import { createPushEndpoint } from './push.ts';
import type { PushMetrics, PushOptions } from './push.ts';
import type { Checkpoint } from './checkpoint.ts';
import { formatPrometheus } from './prom.ts';
import { telemetryMetricFamilies } from './metrics.ts';
import type { TelemetryMetrics } from './metrics.ts';

export type { Checkpoint } from './checkpoint.ts';
export type { FlowBatch, QueueMetrics } from './queue.ts';
export type { HubbleEvent, HubbleMetrics, HubbleSourceOptions, HubbleTLS } from './hubble.ts';
export type { PushMetrics } from './push.ts';
export type { TelemetryMetrics } from './metrics.ts';
export {
  DEFAULT_KEEPALIVE_MS,
  hubbleCredentials,
  isHubbleAddress,
  logHubbleEvent,
  tlsFromFiles,
} from './hubble.ts';
export { validateCheckpoint } from './checkpoint.ts';
export { PROMETHEUS_CONTENT_TYPE } from './prom.ts';

export const DEFAULT_QUEUE_CAPACITY = 50_000;

export interface TelemetryOptions {
  /** Ingest queue capacity in flows. */
  queueCapacity?: number;
  hubble?: HubbleSourceOptions;
  push?: Omit<PushOptions, 'queue'>;
}

export class Telemetry {
  readonly queue: FlowQueue;
  readonly hubble: HubbleSource | undefined;
  /** Express router with `POST /v1/flows`, when push is configured. */
  readonly router: Router | undefined;
  private readonly pushMetrics: (() => PushMetrics) | undefined;

  constructor(opts: TelemetryOptions) {
    this.queue = new FlowQueue({ capacity: opts.queueCapacity ?? DEFAULT_QUEUE_CAPACITY });
    this.hubble = opts.hubble ? new HubbleSource(this.queue, opts.hubble) : undefined;
    if (opts.push) {
      const ep = createPushEndpoint({ ...opts.push, queue: this.queue });
      this.router = ep.router;
      this.pushMetrics = ep.metrics;
    }
  }

  start(): void {
    this.hubble?.start();
  }

  /** Stops the Hubble stream and closes the queue; batches() ends once the queue is drained. */
  async stop(): Promise<void> {
    await this.hubble?.stop();
    this.queue.close();
  }

  /** Batches of normalised flows; call `ack()` on each once fully processed. */
  batches(max = 1000, signal?: AbortSignal): AsyncGenerator<FlowBatch> {
    return this.queue.batches(max, signal);
  }

  /** Hubble resume position to persist (the newest acknowledged flow). */
  checkpoint(): Checkpoint | undefined {
    return this.hubble?.checkpoint();
  }

  metrics(): TelemetryMetrics {
    return {
      queue: this.queue.metrics(),
      ...(this.hubble ? { hubble: this.hubble.metrics() } : {}),
      ...(this.pushMetrics ? { push: this.pushMetrics() } : {}),
    };
  }

  /** The metrics in Prometheus text format. */
  prometheus(): string {
    return formatPrometheus(telemetryMetricFamilies(this.metrics()));
  }
}
