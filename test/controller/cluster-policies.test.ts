/**
 * The controller's reading of cluster-wide policies (src/controller/cluster-policies.ts): the kinds the
 * API server serves, found by discovery, are watched (listed, then watched); a change of what was read
 * bumps the version and tells the listeners (the audits' engines are rebuilt then); a server without
 * the API group has none; a kind no longer served is no longer watched; a failed read keeps what was
 * read before, said once.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { eventually } from '../cluster/index.ts';
import { ClusterPolicies } from '../../src/controller/cluster-policies.ts';
import type { KubeClient } from '../../src/controller/kube.ts';
import { KubeApiError } from '../../src/controller/kube.ts';
import type { Logger } from '../../src/controller/log.ts';

interface Served {
  group?: string[];
  resources: Record<string, string[]>;
  items: Record<string, { metadata: { name: string; resourceVersion: string }; spec: object }[]>;
  fail?: number;
  /** Resources whose list fails with 403 (all when `fail` is set). */
  forbidden?: string[];
  /** Discovery reads of the group, counted. */
  reads?: number;
  /** Discovery of the group fails with this code. */
  discoveryFails?: number;
}

/**
 * A KubeClient stand-in serving `served`: its watches wait until stopped, or until `end` ends the watch of
 * a resource (the informer then lists it again, as it does after a relist period of 1 ms).
 */
function client(served: Served) {
  const get = (path: string) => {
    if (path === '/apis/policy.networking.k8s.io') {
      served.reads = (served.reads ?? 0) + 1;
      if (served.discoveryFails)
        throw new KubeApiError('GET', path, served.discoveryFails, 'ServiceUnavailable', 'unavailable');
      if (!served.group) throw new KubeApiError('GET', path, 404, 'NotFound', 'not found');
      return { versions: served.group.map((version) => ({ version })) };
    }
    const version = path.split('/').at(-1)!;
    return { resources: (served.resources[version] ?? []).map((name) => ({ name })) };
  };
  const list = (path: string) => {
    if (served.fail) throw new KubeApiError('GET', path, served.fail, 'Forbidden', 'forbidden');
    if (served.forbidden?.includes(path.split('/').at(-1)!))
      throw new KubeApiError('GET', path, 403, 'Forbidden', 'forbidden');
    return { items: served.items[path.split('/').at(-1)!] ?? [], resourceVersion: '1' };
  };
  const watchers = new Map<
    string,
    { on: (ev: { type: string; object: unknown }) => void; end: () => void }
  >();
  const kube = {
    get: (path: string) => Promise.resolve(get(path)),
    list: (path: string) => Promise.resolve(list(path)),
    watch: (
      path: string,
      _query: unknown,
      on: (ev: { type: string; object: unknown }) => void,
      signal: AbortSignal,
    ) =>
      new Promise<void>((resolve) => {
        const end = () => {
          watchers.delete(path);
          resolve();
        };
        watchers.set(path, { on, end });
        signal.addEventListener('abort', end);
      }),
  } as unknown as KubeClient;
  const resource = (plural: string) => [...watchers.keys()].find((p) => p.endsWith(`/${plural}`));
  return {
    kube,
    /** The resources watched now. */
    watched: () => [...watchers.keys()].map((p) => p.split('/').at(-1)).sort(),
    emit: (plural: string, type: string, object: unknown) =>
      watchers.get(resource(plural)!)!.on({ type, object }),
    end: (plural: string) => watchers.get(resource(plural)!)!.end(),
  };
}

const anp = {
  priority: 1,
  subject: { namespaces: {} },
  ingress: [{ action: 'Allow', from: [{ namespaces: {} }] }],
};
const banp = { subject: { namespaces: {} }, ingress: [{ action: 'Deny', from: [{ namespaces: {} }] }] };

function logger(lines: string[]): Logger {
  const l: Logger = {
    debug: () => undefined,
    info: () => undefined,
    warn: (msg) => lines.push(msg),
    error: () => undefined,
    child: () => l,
  };
  return l;
}

const stopAfter: ClusterPolicies[] = [];
/** A ClusterPolicies on `kube`, stopped after the test. */
function watching(kube: KubeClient, opts: ConstructorParameters<typeof ClusterPolicies>[1] = {}) {
  const cp = new ClusterPolicies(kube, opts);
  stopAfter.push(cp);
  return cp;
}

describe('ClusterPolicies', () => {
  afterEach(async () => {
    await Promise.all(stopAfter.splice(0).map((cp) => cp.stop()));
  });

  it('watches the served kinds, each object with its kind, and bumps the version only on a change', async () => {
    const served: Served = {
      group: ['v1alpha1'],
      resources: { v1alpha1: ['adminnetworkpolicies', 'adminnetworkpolicies/status'] },
      items: {
        adminnetworkpolicies: [{ metadata: { name: 'allow-dns', resourceVersion: '7' }, spec: anp }],
        // Not served by this server: not listed, whatever the list would give.
        baselineadminnetworkpolicies: [{ metadata: { name: 'default', resourceVersion: '3' }, spec: banp }],
      },
    };
    const c = client(served);
    const cp = watching(c.kube, { coalesceMs: 10 });
    let told = 0;
    cp.on(() => told++);
    await cp.start();
    expect(cp.list()).toEqual([
      {
        apiVersion: 'policy.networking.k8s.io/v1alpha1',
        kind: 'AdminNetworkPolicy',
        metadata: { name: 'allow-dns', resourceVersion: '7' },
        spec: anp,
      },
    ]);
    expect([cp.version, told, c.watched()]).toEqual([1, 1, ['adminnetworkpolicies']]);
    // Discovered again: the kind is watched already, and nothing changed.
    await cp.refresh();
    expect([cp.version, told, c.watched()]).toEqual([1, 1, ['adminnetworkpolicies']]);
    // A change, as the watch tells it: read at once, told once the quiet time after the last telling ends.
    c.emit('adminnetworkpolicies', 'MODIFIED', {
      metadata: { name: 'allow-dns', resourceVersion: '8' },
      spec: anp,
    });
    expect(cp.version).toBe(2);
    await eventually('told', () => told === 2);
    // Quiet again: the next change is told at once, one right after it when the quiet time ends.
    await new Promise((r) => setTimeout(r, 30));
    c.emit('adminnetworkpolicies', 'ADDED', { metadata: { name: 'a-new', resourceVersion: '9' }, spec: anp });
    expect(cp.list().map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([
      'AdminNetworkPolicy/a-new',
      'AdminNetworkPolicy/allow-dns',
    ]);
    c.emit('adminnetworkpolicies', 'DELETED', {
      metadata: { name: 'allow-dns', resourceVersion: '10' },
      spec: anp,
    });
    expect(cp.list().map((o) => o.metadata.name)).toEqual(['a-new']);
    expect([cp.version, told]).toEqual([4, 3]);
    await eventually('told', () => told === 4);
  });

  it('watches a kind once discovery finds it, and drops it when it is no longer served', async () => {
    const served: Served = {
      resources: {},
      items: { adminnetworkpolicies: [{ metadata: { name: 'a', resourceVersion: '1' }, spec: anp }] },
    };
    const c = client(served);
    const cp = watching(c.kube);
    await cp.start();
    expect([cp.list(), cp.version, c.watched()]).toEqual([[], 0, []]);
    // The CRD installed.
    served.group = ['v1alpha1'];
    served.resources.v1alpha1 = ['adminnetworkpolicies'];
    await cp.refresh();
    await eventually('listed', () => cp.list().length === 1);
    expect(c.watched()).toEqual(['adminnetworkpolicies']);
    // The CRD removed: no longer watched, its objects dropped.
    served.resources.v1alpha1 = [];
    await cp.refresh();
    expect([cp.list(), cp.version, c.watched()]).toEqual([[], 2, []]);
  });

  it('has none on a server without the API group, and keeps what it read when a read fails', async () => {
    const none = watching(client({ resources: {}, items: {} }).kube);
    await none.start();
    expect([none.list(), none.version]).toEqual([[], 0]);
    const served: Served = {
      group: ['v1alpha1'],
      resources: { v1alpha1: ['adminnetworkpolicies'] },
      items: { adminnetworkpolicies: [{ metadata: { name: 'a', resourceVersion: '1' }, spec: anp }] },
    };
    const lines: string[] = [];
    const c = client(served);
    // Listed again each time its watch ends; a failure tried again every 10 ms.
    const cp = watching(c.kube, { log: logger(lines), resyncMs: 1, backoffMaxMs: 10 });
    await cp.start();
    // Past the relist period: its watch ended, it is listed again.
    await new Promise((r) => setTimeout(r, 5));
    served.fail = 403;
    c.end('adminnetworkpolicies');
    await new Promise((r) => setTimeout(r, 100));
    expect(cp.list().map((o) => o.metadata.name)).toEqual(['a']);
    expect(lines).toEqual([
      'cannot list AdminNetworkPolicy objects; audits keep what was read of them last (none, if never read)',
    ]);
    // Once it can list again, it is read, and a failure after that is said again.
    delete served.fail;
    served.items.adminnetworkpolicies = [];
    await eventually('read again', () => cp.list().length === 0);
    await new Promise((r) => setTimeout(r, 5));
    served.fail = 403;
    c.end('adminnetworkpolicies');
    await eventually('said again', () => lines.length === 2);
  });

  it('tells onObjects of the objects added, changed, deleted or dropped, with their kind, one it cannot evaluate too', async () => {
    const served: Served = {
      group: ['v1alpha1'],
      resources: { v1alpha1: ['adminnetworkpolicies'] },
      items: { adminnetworkpolicies: [{ metadata: { name: 'a', resourceVersion: '1' }, spec: anp }] },
    };
    const c = client(served);
    const cp = watching(c.kube, { coalesceMs: 10 });
    const told: string[] = [];
    cp.onObjects((objs) =>
      told.push(objs.map((o) => `${o.kind}/${o.metadata.name}@${o.metadata.resourceVersion}`).join(' ')),
    );
    await cp.start();
    expect(told).toEqual(['AdminNetworkPolicy/a@1']);
    const byDomain = {
      metadata: { name: 'by-domain', resourceVersion: '2' },
      spec: {
        priority: 2,
        subject: { namespaces: {} },
        egress: [{ action: 'Allow', to: [{ domainNames: ['*.example.com'] }] }],
      },
    };
    await new Promise((r) => setTimeout(r, 20));
    // One the engine cannot evaluate changes nothing it reads, and is told all the same.
    c.emit('adminnetworkpolicies', 'ADDED', byDomain);
    expect(told.slice(1)).toEqual(['AdminNetworkPolicy/by-domain@2']);
    c.emit('adminnetworkpolicies', 'MODIFIED', { metadata: { name: 'a', resourceVersion: '3' }, spec: anp });
    c.emit('adminnetworkpolicies', 'DELETED', {
      ...byDomain,
      metadata: { ...byDomain.metadata, resourceVersion: '4' },
    });
    await eventually('told', () => told.length === 3);
    expect(told[2]).toEqual('AdminNetworkPolicy/a@3 AdminNetworkPolicy/by-domain@4');
    await new Promise((r) => setTimeout(r, 20));
    // The CRD removed: what it held is dropped, and told.
    served.resources.v1alpha1 = [];
    await cp.refresh();
    expect(told.slice(3)).toEqual(['AdminNetworkPolicy/a@3']);
  });

  it('leaves out a policy the semantics engine cannot evaluate, said once, and reads the others', async () => {
    const byDomain = {
      metadata: { name: 'by-domain', resourceVersion: '4' },
      spec: {
        priority: 2,
        subject: { namespaces: {} },
        egress: [{ action: 'Allow', to: [{ domainNames: ['*.example.com'] }] }],
      },
    };
    const served: Served = {
      group: ['v1alpha1'],
      resources: { v1alpha1: ['adminnetworkpolicies'] },
      items: {
        adminnetworkpolicies: [
          byDomain,
          {
            metadata: { name: 'same-ns', resourceVersion: '5' },
            spec: {
              priority: 3,
              subject: { namespaces: {} },
              ingress: [{ action: 'Allow', from: [{ namespaces: {} }] }],
            },
          },
        ],
      },
    };
    const lines: string[] = [];
    const warnings: unknown[] = [];
    const log = logger(lines);
    log.warn = (msg, fields) => {
      lines.push(msg);
      warnings.push(fields);
    };
    const c = client(served);
    const cp = watching(c.kube, { log });
    await cp.start();
    // Another event: the policy is not said again.
    c.emit('adminnetworkpolicies', 'ADDED', { metadata: { name: 'z', resourceVersion: '6' }, spec: anp });
    expect(cp.list().map((o) => o.metadata.name)).toEqual(['same-ns', 'z']);
    expect(cp.version).toBe(2);
    expect(lines).toEqual(['cannot evaluate AdminNetworkPolicy by-domain; it is left out of audits']);
    expect(warnings).toEqual([
      {
        error:
          'AdminNetworkPolicy by-domain: spec.egress[0].to[0].domainNames is not supported by microseg for egress peers',
      },
    ]);
  });

  // Most clusters do not serve policy.networking.k8s.io: there a discovery that works answers 404.
  it.each([
    ['a server with the API group', { group: ['v1alpha1'], resources: { v1alpha1: [] }, items: {} }],
    ['a server without it', { resources: {}, items: {} }],
  ] as [string, Served][])(
    'says a failed discovery again when it fails again after it worked, on %s',
    async (_, works) => {
      const served: Served = { ...works, discoveryFails: 503 };
      const lines: string[] = [];
      const cp = watching(client(served).kube, { log: logger(lines) });
      await cp.refresh();
      await cp.refresh();
      delete served.discoveryFails;
      await cp.refresh();
      served.discoveryFails = 503;
      await cp.refresh();
      const said = 'cannot discover policy.networking.k8s.io; cluster-wide policies are not read';
      expect(lines).toEqual([said, said]);
    },
  );

  it('keeps watching what it watches while discovery fails', async () => {
    const served: Served = {
      group: ['v1alpha1'],
      resources: { v1alpha1: ['adminnetworkpolicies'] },
      items: { adminnetworkpolicies: [{ metadata: { name: 'a', resourceVersion: '1' }, spec: anp }] },
    };
    const c = client(served);
    const cp = watching(c.kube, { log: logger([]) });
    await cp.start();
    served.discoveryFails = 503;
    await cp.refresh();
    expect(c.watched()).toEqual(['adminnetworkpolicies']);
    c.emit('adminnetworkpolicies', 'ADDED', { metadata: { name: 'b', resourceVersion: '2' }, spec: anp });
    expect(cp.list().map((o) => o.metadata.name)).toEqual(['a', 'b']);
  });

  it('forgets the unevaluable policies it said once they are deleted or changed', async () => {
    const byDomain = (name: string, resourceVersion: string) => ({
      metadata: { name, resourceVersion },
      spec: {
        priority: 2,
        subject: { namespaces: {} },
        egress: [{ action: 'Allow', to: [{ domainNames: ['*.example.com'] }] }],
      },
    });
    const served: Served = {
      group: ['v1alpha1'],
      resources: { v1alpha1: ['adminnetworkpolicies'] },
      items: { adminnetworkpolicies: [byDomain('kept', '1')] },
    };
    const lines: string[] = [];
    const c = client(served);
    const cp = watching(c.kube, { log: logger(lines) });
    await cp.start();
    // Policies of releases come and go, each edited once.
    for (let i = 0; i < 20; i++) {
      c.emit('adminnetworkpolicies', 'ADDED', byDomain(`release-${i}`, '1'));
      c.emit('adminnetworkpolicies', 'MODIFIED', byDomain(`release-${i}`, '2'));
      c.emit('adminnetworkpolicies', 'DELETED', byDomain(`release-${i}`, '2'));
    }
    expect(cp.told).toBe(1);
    // Each said once (each version of each).
    expect(lines).toHaveLength(41);
    // The API group gone: nothing is left of its objects.
    served.resources.v1alpha1 = [];
    await cp.refresh();
    expect(cp.told).toBe(0);
  });

  it('reads the kinds it may list when another may not be', async () => {
    const served: Served = {
      group: ['v1alpha1'],
      resources: { v1alpha1: ['adminnetworkpolicies', 'baselineadminnetworkpolicies'] },
      items: {
        adminnetworkpolicies: [{ metadata: { name: 'a', resourceVersion: '1' }, spec: anp }],
        baselineadminnetworkpolicies: [{ metadata: { name: 'default', resourceVersion: '2' }, spec: banp }],
      },
      forbidden: ['baselineadminnetworkpolicies'],
    };
    const lines: string[] = [];
    const cp = watching(client(served).kube, { log: logger(lines), backoffMaxMs: 10 });
    // Its first list failed: start() does not wait for it any longer.
    await cp.start();
    expect(cp.list().map((o) => `${o.kind}/${o.metadata.name}`)).toEqual(['AdminNetworkPolicy/a']);
    await new Promise((r) => setTimeout(r, 50));
    expect(lines).toEqual([
      'cannot list BaselineAdminNetworkPolicy objects; audits keep what was read of them last (none, if never read)',
    ]);
    // Once it may, it is read; the AdminNetworkPolicy read before is kept.
    served.forbidden = ['adminnetworkpolicies'];
    await eventually('read', () => cp.list().length === 2);
    expect(cp.list().map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([
      'AdminNetworkPolicy/a',
      'BaselineAdminNetworkPolicy/default',
    ]);
  });
});

describe('ClusterPolicies timer', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('tells a burst of changes at once and then once a second, not once a change', async () => {
    // Was: 100 AdminNetworkPolicies applied together (one watch event each, over 1.6 s) reconciled
    // every Segmentation 100 times, each building its audit's engine again.
    vi.useFakeTimers();
    const served: Served = {
      group: ['v1alpha1'],
      resources: { v1alpha1: ['adminnetworkpolicies'] },
      items: { adminnetworkpolicies: [] },
    };
    const c = client(served);
    const cp = new ClusterPolicies(c.kube);
    let told = 0;
    const objects: string[][] = [];
    cp.on(() => told++);
    cp.onObjects((objs) => objects.push(objs.map((o) => o.metadata.name)));
    await cp.start();
    expect([told, objects]).toEqual([0, []]);
    const add = (i: number) =>
      c.emit('adminnetworkpolicies', 'ADDED', {
        metadata: { name: `p${i}`, resourceVersion: `${i}` },
        spec: anp,
      });
    // The first change of a quiet spell is told at once.
    add(0);
    expect([told, objects]).toEqual([1, [['p0']]]);
    // The rest, one every 16 ms: told a second after the one before, each time with what changed since.
    for (let i = 1; i < 100; i++) {
      await vi.advanceTimersByTimeAsync(16);
      add(i);
    }
    expect(told).toBe(2);
    await vi.advanceTimersByTimeAsync(1000);
    expect(told).toBe(3);
    expect(objects.flat()).toEqual(Array.from({ length: 100 }, (_, i) => `p${i}`));
    expect(objects).toHaveLength(3);
    expect([cp.version, cp.list().length]).toEqual([100, 100]);
    // Quiet again: the next change is told at once.
    await vi.advanceTimersByTimeAsync(5000);
    c.emit('adminnetworkpolicies', 'DELETED', {
      metadata: { name: 'p0', resourceVersion: '200' },
      spec: anp,
    });
    expect([told, objects.at(-1)]).toEqual([4, ['p0']]);
    // Stopped: no timer left behind, nothing told after.
    add(300);
    await cp.stop();
    await vi.advanceTimersByTimeAsync(5000);
    expect(told).toBe(4);
  });

  it('discovers an interval after each discovery, at most every second, and not after stop()', async () => {
    vi.useFakeTimers();
    const served: Served = { resources: {}, items: {} };
    const cp = new ClusterPolicies(client(served).kube, { intervalMs: 0 });
    await cp.start();
    await vi.advanceTimersByTimeAsync(2500);
    expect(served.reads).toBe(3);
    await cp.stop();
    await vi.advanceTimersByTimeAsync(5000);
    expect(served.reads).toBe(3);
    // Stopped while its first discovery was under way: no timer is left behind, nothing is watched.
    const late: Served = {
      group: ['v1alpha1'],
      resources: { v1alpha1: ['adminnetworkpolicies'] },
      items: {},
    };
    const c = client(late);
    const cp2 = new ClusterPolicies(c.kube, { intervalMs: 1000 });
    const started = cp2.start();
    const stopped = cp2.stop();
    await started;
    await stopped;
    await vi.advanceTimersByTimeAsync(5000);
    expect([late.reads, c.watched()]).toEqual([1, []]);
  });
});
