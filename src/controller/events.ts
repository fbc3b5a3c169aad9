/**
 * Kubernetes Events (core/v1) about any object, for `kubectl describe` and `kubectl get events`.
 * Repeats of the same (object, type, reason, message) within this process bump `count` and
 * `lastTimestamp` on the existing Event instead of creating a new one. Events about cluster-scoped
 * objects go to the `default` namespace, as the Kubernetes libraries do. Recording never throws: a
 * failure is logged and counted.
 */
import { randomBytes } from 'node:crypto';
import type { KObject } from '../model/k8s.ts';
import type { KubeClient } from './kube.ts';
import { isNotFound, resourcePath } from './kube.ts';
import type { Logger } from './log.ts';

export type EventType = 'Normal' | 'Warning';

export interface RecordedEvent {
  type: EventType;
  reason: string;
  message: string;
  object: string;
}

/** What the controllers need: record one Event about one object. */
export interface EventSink {
  record(obj: KObject, type: EventType, reason: string, message: string): void;
}

export class EventRecorder implements EventSink {
  readonly #client: KubeClient;
  readonly #component: string;
  readonly #instance: string;
  readonly #log: Logger | undefined;
  readonly #seen = new Map<string, { namespace: string; name: string; count: number }>();
  #pending: Promise<void> = Promise.resolve();
  errors = 0;
  recorded = 0;

  constructor(client: KubeClient, opts: { component: string; instance: string; log?: Logger }) {
    this.#client = client;
    this.#component = opts.component;
    this.#instance = opts.instance;
    this.#log = opts.log;
  }

  record(obj: KObject, type: EventType, reason: string, message: string): void {
    // Serialised so repeats of one event see each other's names.
    this.#pending = this.#pending.then(() => this.#write(obj, type, reason, message));
  }

  /** Resolves when every Event recorded so far has been written (or failed). */
  flush(): Promise<void> {
    return this.#pending;
  }

  async #write(obj: KObject, type: EventType, reason: string, message: string): Promise<void> {
    const namespace = obj.metadata.namespace ?? 'default';
    const key = `${obj.metadata.uid ?? ''}\u0000${obj.kind}/${obj.metadata.namespace ?? ''}/${obj.metadata.name}\u0000${type}\u0000${reason}\u0000${message}`;
    const now = new Date().toISOString();
    try {
      const seen = this.#seen.get(key);
      let repeated = false;
      if (seen) {
        seen.count++;
        try {
          await this.#client.mergePatch(resourcePath('Event', seen.namespace, seen.name), {
            count: seen.count,
            lastTimestamp: now,
          });
          repeated = true;
        } catch (err) {
          // The Event is gone (the API server keeps Events for an hour by default, then deletes them):
          // its entry is stale, and the repeat is recorded as a new Event.
          if (!isNotFound(err)) throw err;
          this.#seen.delete(key);
        }
      }
      if (!repeated) {
        const name = `${obj.metadata.name}.${Date.now().toString(16)}${randomBytes(3).toString('hex')}`;
        await this.#client.create(resourcePath('Event', namespace), {
          apiVersion: 'v1',
          kind: 'Event',
          metadata: { name, namespace },
          involvedObject: {
            apiVersion: obj.apiVersion,
            kind: obj.kind,
            name: obj.metadata.name,
            ...(obj.metadata.namespace ? { namespace: obj.metadata.namespace } : {}),
            ...(obj.metadata.uid ? { uid: obj.metadata.uid } : {}),
          },
          type,
          reason,
          message: message.slice(0, 1024),
          source: { component: this.#component },
          reportingComponent: this.#component,
          reportingInstance: this.#instance,
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        });
        if (this.#seen.size > 5000) this.#seen.clear();
        this.#seen.set(key, { namespace, name, count: 1 });
      }
      this.recorded++;
    } catch (err) {
      this.errors++;
      this.#seen.delete(key);
      this.#log?.warn('could not record event', {
        reason,
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }
}

/** An EventSink that keeps events in memory (tests, dry runs). */
export class MemoryEventSink implements EventSink {
  readonly events: RecordedEvent[] = [];
  record(obj: KObject, type: EventType, reason: string, message: string): void {
    this.events.push({ type, reason, message, object: `${obj.kind}/${obj.metadata.name}` });
  }
}
