import { describe, expect, it } from 'vitest';
import express from 'express';
import type { KubeClient } from '../../src/controller/kube.ts';
import { jsonLogger, silentLogger } from '../../src/controller/log.ts';
import { Manager } from '../../src/controller/manager.ts';
import type { Flow } from '../../src/flows/types.ts';
import type { Checkpoint } from '../../src/telemetry/index.ts';
import { Telemetry } from '../../src/telemetry/index.ts';
import { FlowQueue } from '../../src/telemetry/queue.ts';
import { fakeWatches } from './fake-watch.ts';

/** A KubeClient stand-in for a cluster with no objects: lists are empty, watches wait until stopped. */
function emptyCluster(): KubeClient {
  const watches = fakeWatches();
  return {
    requests: new Map<string, number>(),
    list: () => Promise.resolve({ items: [], resourceVersion: '1' }),
    watch: watches.watch,
    request: () => Promise.resolve({}),
  } as unknown as KubeClient;
}

const flow = (n: number): Flow => ({
  time: 1_700_000_000_000 + n,
  src: { ip: '10.0.0.1' },
  dst: { ip: '10.0.1.1' },
  protocol: 'TCP',
  port: 8080,
  verdict: 'FORWARDED',
  input: 'generic',
});

/** A Manager of the empty cluster (or of `client`), leading at once (no election), with the given flow sources. */
function manager(
  sources: { telemetry?: Telemetry; hubble?: () => Telemetry },
  client: KubeClient = emptyCluster(),
): Manager {
  return new Manager({
    client,
    log: silentLogger,
    identity: 'test',
    leaderElect: false,
    leaseNamespace: 'microseg-system',
    ...sources,
  });
}

/** A restore that only an abort ends (a Segmentation whose reconcile waits on the API server). */
function restoreNeverEnds(m: Manager): { waits: number } {
  const seen = { waits: 0 };
  m.controller.whenRestored = (signal?: AbortSignal) => {
    seen.waits++;
    return new Promise<boolean>((resolve) => {
      if (signal?.aborted) resolve(false);
      else signal?.addEventListener('abort', () => resolve(false), { once: true });
    });
  };
  return seen;
}

/** Whether stop() ends within 5 s. */
function stopsInTime(m: Manager): Promise<unknown> {
  return Promise.race([
    m.stop().then(() => 'stopped'),
    new Promise((r) => setTimeout(() => r('still waiting'), 5_000)),
  ]);
}

describe('Manager shutdown', () => {
  it('takes every pushed flow accepted into the queue before it stops, not only the batch at hand', async () => {
    const telemetry = new Telemetry({ queueCapacity: 10_000, push: { token: 't' } });
    const m = manager({ telemetry });
    await m.start();
    // Accepted (a push answered 202) just before SIGTERM: more than one batch of the consumer.
    expect(
      telemetry.queue.offerAll(
        'push',
        Array.from({ length: 3500 }, (_, i) => flow(i)),
      ),
    ).toBe(true);
    await m.stop();
    const q = telemetry.queue.metrics();
    expect(q.queued).toBe(0);
    expect(q.acknowledged).toEqual({ push: 3500 });
    // Taken by the controller (here no Segmentation matches them: counted as such, not lost unseen).
    expect(m.controller.metrics.flowsUnmatched + m.controller.metrics.flowsIngested).toBe(3500);
  });

  it('does not wait for a restore that has not ended when it stops', async () => {
    const telemetry = new Telemetry({ queueCapacity: 10_000, push: { token: 't' } });
    const m = manager({ telemetry });
    const restore = restoreNeverEnds(m);
    await m.start();
    expect(
      telemetry.queue.offerAll(
        'push',
        Array.from({ length: 1500 }, (_, i) => flow(i)),
      ),
    ).toBe(true);
    await new Promise((r) => setTimeout(r, 50));
    expect(restore.waits).toBe(1);
    expect(await stopsInTime(m)).toBe('stopped');
    // The queue is still taken: nothing accepted is left in it.
    expect(telemetry.queue.metrics().queued).toBe(0);
  });

  it('does not commit a Hubble position past flows it took while the learned graphs were not restored', async () => {
    // A Hubble stream stand-in: its checkpoint is the newest flow acknowledged (what the next leader
    // resumes after).
    const queue = new FlowQueue({ capacity: 10_000 });
    let newest: number | undefined;
    queue.register('hubble', (tags) => {
      for (const t of tags as number[]) newest = Math.max(newest ?? t, t);
    });
    const hubble = {
      queue,
      router: undefined,
      start: () => undefined,
      stop: () => {
        queue.close();
        return Promise.resolve();
      },
      batches: (max: number, signal?: AbortSignal) => queue.batches(max, signal),
      checkpoint: (): Checkpoint | undefined =>
        newest === undefined ? undefined : { time: new Date(newest).toISOString(), seen: [] },
      metrics: () => ({ queue: queue.metrics() }),
    } as unknown as Telemetry;
    const m = manager({ hubble: () => hubble });
    restoreNeverEnds(m);
    await m.start();
    const flows = Array.from({ length: 1500 }, (_, i) => flow(i));
    queue.offer(
      'hubble',
      flows,
      flows.map((f) => f.time),
    );
    await new Promise((r) => setTimeout(r, 50));
    expect(await stopsInTime(m)).toBe('stopped');
    // Not learned by the graphs not restored: the next leader must be sent them again.
    expect(queue.metrics().acknowledged).toEqual({ hubble: 0 });
    expect(m.committedCheckpoint).toBeUndefined();
  });
});

describe('Manager start', () => {
  it('says at start which NetworkPolicy semantics its engines use', async () => {
    const lines: string[] = [];
    const m = new Manager({
      client: emptyCluster(),
      log: jsonLogger({ level: 'info', sink: (l) => lines.push(l) }),
      identity: 'test',
      leaderElect: false,
      leaseNamespace: 'microseg-system',
      controller: { engine: { ipBlockMatchesPods: false } },
      semantics: 'NetworkPolicy semantics: --ipblock-pods no',
    });
    await m.start();
    await m.stop();
    expect(
      lines.map((l) => JSON.parse(l) as { msg: string }).filter((l) => l.msg.startsWith('NetworkPolicy')),
    ).toMatchObject([{ level: 'info', msg: 'NetworkPolicy semantics: --ipblock-pods no' }]);
  });
});

describe('Manager server', () => {
  /** The error of GET /nope on a Manager listening with these routers and the push endpoint. */
  async function notFoundError(
    routers: ConstructorParameters<typeof Manager>[0]['routers'],
  ): Promise<unknown> {
    const m = new Manager({
      client: emptyCluster(),
      log: silentLogger,
      identity: 'test',
      leaderElect: false,
      leaseNamespace: 'microseg-system',
      listen: { host: '127.0.0.1', port: 0 },
      telemetry: new Telemetry({ queueCapacity: 10, push: { token: 't' } }),
      ...(routers ? { routers } : {}),
    });
    await m.start();
    try {
      const res = await fetch(`http://127.0.0.1:${m.port}/nope`);
      expect(res.status).toBe(404);
      return ((await res.json()) as { error: unknown }).error;
    } finally {
      await m.stop();
    }
  }

  it('lists in a 404 the endpoints a router is said to serve, and no webhook for a router that is none', async () => {
    const hello = express.Router();
    hello.get('/hello', (_req, res) => res.send('hi'));
    // A router of another controller (the Manager is a reusable piece) is not the isolation webhooks.
    expect(await notFoundError([hello])).toBe(
      'no such endpoint: GET /nope; this server serves GET /healthz, GET /readyz, GET /metrics, POST /v1/flows',
    );
    expect(await notFoundError([{ router: hello, serves: ['GET /hello'] }])).toBe(
      'no such endpoint: GET /nope; this server serves GET /healthz, GET /readyz, GET /metrics, POST /v1/flows, GET /hello',
    );
  });
  it('starts nothing more once stopped while its caches were syncing (SIGTERM during start)', async () => {
    // A slow API server: every list answers after 300 ms. stop() comes before the caches are synced;
    // a start() that went on to lead (elector, leader tasks, streams) after stop() had ended left
    // them running, and the process never exited.
    const watches = fakeWatches();
    const slow = <T>(v: T) => new Promise<T>((r) => setTimeout(() => r(v), 300));
    const client = {
      requests: new Map<string, number>(),
      list: () => slow({ items: [], resourceVersion: '1' }),
      watch: watches.watch,
      request: () => slow({}),
    } as unknown as KubeClient;
    const m = manager({}, client);
    const started = m.start();
    await new Promise((r) => setTimeout(r, 50));
    expect(await stopsInTime(m)).toBe('stopped');
    await started;
    await new Promise((r) => setTimeout(r, 500));
    expect(m.controller.leading).toBe(false);
  }, 20_000);
});
