/**
 * The Isolation controller's list and watch, as the webhooks' cache of Isolations (`KnownIsolations`)
 * depends on it: trusted alone only while the watch runs, emptied at each list, told of deletions.
 */
import type * as K8s from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startIsolationController } from '../../src/isolate/controller.ts';
import type { Kube, KubeRequest } from '../../src/isolate/kube.ts';
import { KnownIsolations } from '../../src/isolate/webhooks.ts';

interface FakeWatch {
  event: (type: string, obj: unknown) => void;
  done: (err: unknown) => void;
  aborted: boolean;
}

const w = vi.hoisted(() => ({ watches: [] as FakeWatch[], endAtOnce: false }));

vi.mock('@kubernetes/client-node', async (importOriginal) => {
  const real = await importOriginal<typeof K8s>();
  class Watch {
    watch(
      _path: string,
      _query: unknown,
      event: FakeWatch['event'],
      done: FakeWatch['done'],
    ): Promise<AbortController> {
      const ac = new AbortController();
      const fw: FakeWatch = { event, done, aborted: false };
      ac.signal.addEventListener('abort', () => (fw.aborted = true));
      w.watches.push(fw);
      // A watch the apiserver ends before its request resolves (a 410 Gone at once).
      if (w.endAtOnce) done(new Error('too old resource version'));
      return Promise.resolve(ac);
    }
  }
  return { ...real, Watch };
});

const kube: Kube = {
  request: <T>(req: KubeRequest) =>
    Promise.resolve((req.method === 'GET' ? { items: [], metadata: { resourceVersion: '5' } } : {}) as T),
};
const iso = (name: string, phase?: string) => ({
  apiVersion: 'microseg.dev/v1alpha1',
  kind: 'Isolation',
  metadata: { namespace: 'shop', name, uid: `uid-${name}`, resourceVersion: '6' },
  spec: { target: { pods: ['web-1'] } },
  ...(phase ? { status: { phase } } : {}),
});

afterEach(() => {
  w.watches.length = 0;
  w.endAtOnce = false;
  vi.useRealTimers();
});

describe('the Isolation controller and the webhooks cache', () => {
  it('says the cache is watched only while its watch runs, and empties it at each list', async () => {
    vi.useFakeTimers();
    const known = new KnownIsolations();
    known.remember('shop', 'before-start');
    const c = await startIsolationController({ kc: {} as KubeConfig, kube, known });
    // What was deleted before the list is seen by no watch: forgotten, read again by the webhooks.
    expect([known.watched, known.has('shop', 'before-start'), w.watches.length]).toEqual([true, false, 1]);

    // Deleted, released: forgotten, so the next alert looks at the apiserver again.
    known.remember('shop', 'gone');
    known.remember('shop', 'released');
    known.remember('shop', 'kept');
    w.watches[0]!.event('DELETED', iso('gone'));
    w.watches[0]!.event('MODIFIED', iso('released', 'Released'));
    w.watches[0]!.event('MODIFIED', iso('kept', 'Isolated'));
    expect(['gone', 'released', 'kept'].map((n) => known.has('shop', n))).toEqual([false, false, true]);

    // The watch ends: until the next list and watch, an entry no longer answers alone.
    w.watches[0]!.done(new Error('connection reset'));
    expect(known.watched).toBe(false);
    await vi.advanceTimersByTimeAsync(1000);
    expect([w.watches.length, known.watched, known.has('shop', 'kept')]).toEqual([2, true, false]);

    await c.stop();
    expect([known.watched, w.watches[1]!.aborted]).toEqual([false, true]);
  });

  it('does not say the cache is watched when the watch ended before it was set up', async () => {
    vi.useFakeTimers();
    w.endAtOnce = true;
    const known = new KnownIsolations();
    const c = await startIsolationController({ kc: {} as KubeConfig, kube, known });
    expect([w.watches.length, known.watched]).toEqual([1, false]);
    await c.stop();
  });

  it('starts no watch when stopped while a re-list is read', async () => {
    vi.useFakeTimers();
    const lists: (() => void)[] = [];
    let calls = 0;
    const slow: Kube = {
      request: <T>(req: KubeRequest) =>
        calls++ === 0
          ? kube.request<T>(req)
          : new Promise<T>((resolve) => lists.push(() => void kube.request<T>(req).then(resolve))),
    };
    const known = new KnownIsolations();
    const c = await startIsolationController({ kc: {} as KubeConfig, kube: slow, known });
    w.watches[0]!.done(new Error('connection reset'));
    await vi.advanceTimersByTimeAsync(1000);
    expect(lists).toHaveLength(1);
    // Stopped (leadership lost) while the re-list is read; then the list answers.
    await c.stop();
    lists[0]!();
    await vi.advanceTimersByTimeAsync(10);
    // No watch left running that nothing would ever abort, and the cache is not said to be watched.
    expect([w.watches.length, known.watched]).toEqual([1, false]);
  });
});
