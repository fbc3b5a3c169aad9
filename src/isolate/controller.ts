/**
 * Runs the Isolation reconciler: lists and watches Isolations (all namespaces or one), feeds their keys to
 * a work queue, and re-lists when a watch ends. The webhooks call `enqueue` right after persisting an
 * Isolation, so an alert does not wait for the watch round trip.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { Watch } from '@kubernetes/client-node';
import type { Isolation } from './api.ts';
import type { Kube } from './kube.ts';
import { KubeClient, paths } from './kube.ts';
import { IsolationMetrics } from './metrics.ts';
import { KeyQueue } from './queue.ts';
import type { IsolationReconcilerOptions } from './reconciler.ts';
import { IsolationReconciler } from './reconciler.ts';
import type { KnownIsolations } from './webhooks.ts';

export interface IsolationControllerOptions extends Partial<Omit<IsolationReconcilerOptions, 'kube'>> {
  kc: KubeConfig;
  kube?: Kube;
  /** Watch one namespace only. */
  namespace?: string;
  concurrency?: number;
  log?: (line: string) => void;
  /** Told when the watch sees an Isolation deleted (the webhooks' cache of existing Isolations). */
  known?: KnownIsolations;
}

export interface IsolationController {
  reconciler: IsolationReconciler;
  queue: KeyQueue;
  metrics: IsolationMetrics;
  kube: Kube;
  /** Queues a reconcile; `created` is the object just written by this process, if any. */
  enqueue(namespace: string, name: string, created?: Isolation): void;
  /**
   * A cluster-wide policy not of an Isolation was created, changed or deleted: every Isolation not
   * released is reconciled (and its leak check run) again now.
   */
  clusterPoliciesChanged(): void;
  stop(): Promise<void>;
}

export async function startIsolationController(o: IsolationControllerOptions): Promise<IsolationController> {
  const kube = o.kube ?? (await KubeClient.fromKubeConfig(o.kc));
  const metrics = o.metrics ?? new IsolationMetrics();
  const log = o.log ?? (() => undefined);
  const reconciler = new IsolationReconciler({ ...o, kube, metrics });
  const queue = new KeyQueue((key) => reconciler.reconcile(key), {
    concurrency: o.concurrency ?? 64,
    onError: (key, err) => log(`isolation ${key}: ${err instanceof Error ? err.message : String(err)}`),
  });
  let stopped = false;
  let abort: AbortController | undefined;
  let relistTimer: NodeJS.Timeout | undefined;

  const listAndWatch = async (): Promise<void> => {
    if (stopped) return;
    try {
      const list = await kube.request<{ items: Isolation[]; metadata: { resourceVersion: string } }>({
        method: 'GET',
        path: paths.isolations(o.namespace),
      });
      // Stopped while the list was read: no watch is started, nothing would ever abort it.
      if (stopped) return;
      for (const key of reconciler.observeAll(list.items)) queue.add(key);
      // What was deleted before this list was not seen by any watch: the webhooks read those again.
      o.known?.clear();
      let ended = false;
      abort = await new Watch(o.kc).watch(
        paths.isolations(o.namespace),
        { resourceVersion: list.metadata.resourceVersion, allowWatchBookmarks: true },
        (type: string, obj: Isolation) => {
          if (type === 'BOOKMARK' || type === 'ERROR') return;
          const key = `${obj.metadata.namespace}/${obj.metadata.name}`;
          // Deleted, being deleted or released: the webhooks must look at the apiserver again for this
          // incident (a new alert creates or re-arms it, or is answered 503 while it is being deleted).
          if (type === 'DELETED' || obj.metadata.deletionTimestamp || obj.status?.phase === 'Released')
            o.known?.forget(obj.metadata.namespace ?? '', obj.metadata.name);
          if (type === 'DELETED') reconciler.forget(obj.metadata.namespace ?? '', obj.metadata.name);
          else if (!reconciler.observe(obj)) return;
          queue.add(key);
        },
        (err: unknown) => {
          ended = true;
          o.known?.setWatched(false);
          if (stopped) return;
          if (err) log(`isolation watch ended: ${err instanceof Error ? err.message : JSON.stringify(err)}`);
          relistTimer = setTimeout(() => void listAndWatch(), 1000);
          relistTimer.unref();
        },
      );
      // Stopped while the watch was being set up: ended here, as stop() could not abort it.
      if (stopped) abort.abort();
      // From here the watch tells the webhooks' cache of every deletion and release.
      else if (!ended) o.known?.setWatched(true);
    } catch (err) {
      o.known?.setWatched(false);
      log(`isolation list failed: ${err instanceof Error ? err.message : String(err)}`);
      relistTimer = setTimeout(() => void listAndWatch(), 2000);
      relistTimer.unref();
    }
  };
  await listAndWatch();

  return {
    reconciler,
    queue,
    metrics,
    kube,
    enqueue: (namespace, name, created) => {
      // The watch may have delivered this object already (and queued it): then there is nothing to add.
      if (created && !reconciler.observe(created)) return;
      queue.add(`${namespace}/${name}`);
    },
    clusterPoliciesChanged: () => {
      for (const key of reconciler.clusterPoliciesChanged()) queue.add(key);
    },
    stop: async () => {
      stopped = true;
      o.known?.setWatched(false);
      if (relistTimer) clearTimeout(relistTimer);
      abort?.abort();
      queue.stop();
      await queue.idle();
      await reconciler.stop();
      if (!o.kube && kube instanceof KubeClient) kube.close();
    },
  };
}
