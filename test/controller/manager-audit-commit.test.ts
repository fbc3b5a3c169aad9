/**
 * The Hubble position the leader commits (the one the next leader resumes from, after a crash too) in
 * Audit: flows are audited as they come, but status.audit is written by reconciles (every --resync) and
 * on a graceful shutdown. A position committed past a would-be-blocked flow that status does not hold
 * yet loses the flow in a crash: the next leader restores the audit from status and is never sent the
 * flow again, so AuditClean could stay True, and promote to Enforce, over traffic that would be blocked.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Segmentation } from '../../src/controller/api.ts';
import type { KubeClient } from '../../src/controller/kube.ts';
import { resourcePath } from '../../src/controller/kube.ts';
import { silentLogger } from '../../src/controller/log.ts';
import { Manager } from '../../src/controller/manager.ts';
import type { Flow } from '../../src/flows/types.ts';
import type { Checkpoint } from '../../src/telemetry/index.ts';
import { Telemetry } from '../../src/telemetry/index.ts';
import { fakeWatches, proposedOfShop, shopApiFromWeb, shopDefaultDeny, webAndApi } from './fake-watch.ts';

/** The stream's time origin: a second ago, so that every flow is inside the 1h audit window. */
const BASE = Date.now() - 1000;

/**
 * A Hubble stream stand-in: flows offered to its queue, and as its position the time of the last flow
 * the consumer acknowledged (flow n is at BASE + n ms), as the Hubble source gives it.
 */
class FakeHubble extends Telemetry {
  constructor() {
    super({ queueCapacity: 1000 });
  }
  override checkpoint(): Checkpoint | undefined {
    const n = this.queue.metrics().acknowledged.hubble ?? 0;
    return n > 0 ? { time: new Date(BASE + n).toISOString(), seen: [] } : undefined;
  }
}

/** Segmentation shop in Audit, its frozen proposal admitting web → api on 8080/TCP only. */
function cluster() {
  const watches = fakeWatches();
  const statuses: NonNullable<Segmentation['status']>[] = [];
  const objects: Record<string, unknown[]> = {
    [resourcePath('Namespace')]: [
      { metadata: { name: 'shop', labels: { 'kubernetes.io/metadata.name': 'shop' } } },
    ],
    [resourcePath('Pod')]: webAndApi(),
    [resourcePath('ProposedNetworkPolicy')]: [
      shopDefaultDeny(),
      proposedOfShop('microseg-web', {
        podSelector: { matchLabels: { app: 'web' } },
        policyTypes: ['Egress'],
        egress: [
          {
            to: [{ podSelector: { matchLabels: { app: 'api' } } }],
            ports: [{ protocol: 'TCP', port: 8080 }],
          },
        ],
      }),
      shopApiFromWeb(),
    ],
    [resourcePath('Segmentation')]: [
      {
        apiVersion: 'microseg.dev/v1alpha1',
        kind: 'Segmentation',
        metadata: { name: 'shop', uid: 'uid-shop', resourceVersion: '1', generation: 1 },
        spec: {
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'shop' } },
          mode: 'Audit',
          audit: { window: '1h' },
        },
      },
    ],
  };
  const client = {
    requests: new Map<string, number>(),
    list: (path: string) => Promise.resolve({ items: objects[path] ?? [], resourceVersion: '1' }),
    watch: watches.watch,
    get: (path: string) => Promise.resolve({ metadata: { name: path.split('/').at(-1) } }),
    apply: (body: { kind: string; metadata: object; status?: unknown }, opts?: { subresource?: string }) => {
      if (body.kind === 'Segmentation' && opts?.subresource === 'status')
        statuses.push(body.status as NonNullable<Segmentation['status']>);
      return Promise.resolve({ ...body, metadata: { ...body.metadata, resourceVersion: '3' } });
    },
    mergePatch: () => Promise.resolve({ metadata: { resourceVersion: '2' } }),
    create: () => Promise.resolve({}),
    delete: () => Promise.resolve(),
    request: () => Promise.resolve({}),
  };
  return { client: client as unknown as KubeClient, statuses };
}

/** Flow n of the stream (at BASE + n ms) between two of shop's pods. */
const hubbleFlow = (n: number, src: string, dst: string, port: number): Flow => ({
  time: BASE + n,
  src: { ip: src },
  dst: { ip: dst },
  port,
  protocol: 'TCP',
  verdict: 'FORWARDED',
  input: 'hubble',
});
const WEB = '10.244.1.5';
const API = '10.244.1.6';

const blockedIn = (s: NonNullable<Segmentation['status']> | undefined) =>
  Object.values(s?.audit?.buckets ?? {}).reduce((n, v) => n + v, 0);

describe('the Hubble position committed in Audit', () => {
  const managers: Manager[] = [];
  afterEach(async () => {
    for (const m of managers.splice(0)) await m.stop();
  });

  async function leader() {
    const { client, statuses } = cluster();
    const hubble = new FakeHubble();
    const m = new Manager({
      client,
      log: silentLogger,
      identity: 'test',
      leaderElect: false,
      leaseNamespace: 'microseg-system',
      hubble: () => hubble,
      // No reconcile but the first (and those the test runs): what the flow path audits meanwhile is in
      // memory only, as between two resyncs.
      controller: { resyncMs: 600_000, persistIntervalMs: 20, identityRefreshMs: 0 },
    });
    managers.push(m);
    await m.start();
    await expect.poll(() => statuses.length).toBeGreaterThan(0);
    await expect.poll(() => m.controller.queue.length).toBe(0);
    expect(statuses.at(-1)!.mode).toBe('Audit');
    expect(statuses.at(-1)!.audit).toBeDefined();
    return { m, hubble, statuses };
  }
  const committed = (m: Manager) => m.committedCheckpoint?.time;
  const at = (n: number) => new Date(BASE + n).toISOString();
  const settle = () => new Promise((r) => setTimeout(r, 300)); // 15 persist intervals

  it('is not committed past a would-be-blocked flow until status holds it', async () => {
    const { m, hubble, statuses } = await leader();
    // A flow the proposal admits changes no audit result: its position is committed at the next persist.
    hubble.queue.offerAll('hubble', [hubbleFlow(1, WEB, API, 8080)]);
    await expect.poll(() => committed(m)).toBe(at(1));
    expect(m.controller.metrics.wouldBlock).toBe(0);

    // A flow the proposal would block, audited in memory; no reconcile has written it into status.
    hubble.queue.offerAll('hubble', [hubbleFlow(2, API, WEB, 9090)]);
    await expect.poll(() => m.controller.metrics.wouldBlock).toBe(1);
    await expect.poll(() => hubble.checkpoint()?.time).toBe(at(2));
    await settle();
    expect(blockedIn(statuses.at(-1))).toBe(0);
    // Committed past it, a crash now would lose it: the next leader would restore a clean audit from
    // status and resume the stream after the flow.
    expect(committed(m)).toBe(at(1));

    // A reconcile writes it into status.audit: the position past it may now be committed.
    await m.controller.reconcile('shop');
    expect(blockedIn(statuses.at(-1))).toBe(1);
    await expect.poll(() => committed(m)).toBe(at(2));
  });

  it('a graceful shutdown writes the audit into status, then commits the final position', async () => {
    const { m, hubble, statuses } = await leader();
    hubble.queue.offerAll('hubble', [hubbleFlow(1, API, WEB, 9090), hubbleFlow(2, API, WEB, 9091)]);
    await expect.poll(() => m.controller.metrics.wouldBlock).toBe(2);
    await settle();
    expect(committed(m)).toBeUndefined();
    managers.splice(0);
    await m.stop();
    expect(blockedIn(statuses.at(-1))).toBe(2);
    expect(committed(m)).toBe(at(2));
  });
});
