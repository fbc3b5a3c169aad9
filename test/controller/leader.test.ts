import { afterEach, describe, expect, it } from 'vitest';
import type { KubeClient, RequestOptions } from '../../src/controller/kube.ts';
import { KubeApiError } from '../../src/controller/kube.ts';
import { LeaderElector } from '../../src/controller/leader.ts';

/**
 * An API server holding one Lease. While `partitioned`, a request gets no answer at all (packets
 * dropped): it fails only when its time limit runs out (30 s unless the caller sets `timeoutMs`, as
 * KubeClient does) or its signal aborts.
 */
function fakeServer() {
  const state = { lease: undefined as Record<string, unknown> | undefined, partitioned: false, version: 0 };
  const answer = <T>(opts: RequestOptions | undefined, f: () => T): Promise<T> => {
    if (!state.partitioned) return Promise.resolve().then(f);
    return new Promise((_resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error('The operation was aborted due to timeout')),
        opts?.timeoutMs ?? 30_000,
      );
      opts?.signal?.addEventListener('abort', () => {
        clearTimeout(t);
        reject(new Error('aborted'));
      });
    });
  };
  const notFound = (path: string) => new KubeApiError('GET', path, 404, 'NotFound', 'not found');
  const store = (body: unknown) => {
    const lease = body as { metadata: Record<string, unknown> };
    state.lease = { ...lease, metadata: { ...lease.metadata, resourceVersion: String(++state.version) } };
    return state.lease;
  };
  const request = (method: string, path: string, opts?: RequestOptions) =>
    answer(opts, () => {
      if (method === 'GET') {
        if (!state.lease) throw notFound(path);
        return structuredClone(state.lease);
      }
      return store(opts?.body);
    });
  const client = {
    request,
    get: (path: string) => request('GET', path),
    create: (_path: string, body: unknown) => answer(undefined, () => store(body)),
  };
  return { client: client as unknown as KubeClient, state };
}

describe('LeaderElector', () => {
  const stops: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop();
  });

  it('stops leading within the renew deadline when the API server stops answering, before another may take over', async () => {
    const { client, state } = fakeServer();
    const leaseDurationMs = 1_000;
    const elector = new LeaderElector(client, {
      namespace: 'microseg-system',
      name: 'microseg-controller',
      identity: 'replica-a',
      leaseDurationMs,
      renewDeadlineMs: 600,
      retryPeriodMs: 50,
      onStartedLeading: () => {},
      onStoppedLeading: () => {},
    });
    elector.start();
    stops.push(() => {
      state.partitioned = false;
      return elector.stop();
    });
    await expect.poll(() => elector.isLeader).toBe(true);
    // A renewal that took: from then on, another replica may take the Lease once leaseDuration passed.
    const renewed = state.version;
    await expect.poll(() => state.version).toBeGreaterThan(renewed);
    const lastRenew = Date.now();
    state.partitioned = true;
    await expect.poll(() => elector.isLeader, { timeout: 5_000, interval: 10 }).toBe(false);
    expect(Date.now() - lastRenew).toBeLessThan(leaseDurationMs);
  });
  it('keeps its defaults for timings given as undefined, as the manager passes options it was not given', async () => {
    const { client, state } = fakeServer();
    let requests = 0;
    const counting = {
      ...client,
      request: (...args: Parameters<KubeClient['request']>) => {
        requests++;
        return client.request(...args);
      },
    } as unknown as KubeClient;
    const elector = new LeaderElector(counting, {
      namespace: 'microseg-system',
      name: 'microseg-controller',
      identity: 'replica-a',
      leaseDurationMs: undefined,
      renewDeadlineMs: undefined,
      retryPeriodMs: undefined,
      onStartedLeading: () => {},
      onStoppedLeading: () => {},
    });
    elector.start();
    stops.push(() => elector.stop());
    await expect.poll(() => elector.isLeader).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    // Retry period 2 s: the Lease is read and written once, not every millisecond.
    expect(requests).toBeLessThanOrEqual(3);
    expect((state.lease?.spec as { leaseDurationSeconds?: unknown }).leaseDurationSeconds).toBe(15);
  });
  it('refuses timings that cannot work, naming them', () => {
    const make = (t: { leaseDurationMs?: number; renewDeadlineMs?: number; retryPeriodMs?: number }) => () =>
      new LeaderElector(fakeServer().client, {
        namespace: 'microseg-system',
        name: 'microseg-controller',
        identity: 'replica-a',
        ...t,
        onStartedLeading: () => {},
        onStoppedLeading: () => {},
      });
    expect(make({ retryPeriodMs: 0 })).toThrow(
      'leader election: retryPeriodMs must be a positive number of milliseconds (got 0)',
    );
    expect(make({ leaseDurationMs: 10_000 })).toThrow(
      'leader election: renewDeadlineMs (10000) must be less than leaseDurationMs (10000)',
    );
    expect(make({ renewDeadlineMs: 2_000 })).toThrow(
      'leader election: retryPeriodMs (2000) must be less than renewDeadlineMs (2000)',
    );
  });
});
