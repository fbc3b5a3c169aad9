/**
 * The controller's reading of cluster-wide policies (src/controller/cluster-policies.ts): the kinds the
 * API server serves, found by discovery, are listed; a change of what was read bumps the version (the
 * audit's engine is rebuilt then); a server without the API group has none; a failed read keeps what
 * was read before, said once.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
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

function client(served: Served): KubeClient {
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
  return {
    get: (path: string) => Promise.resolve(get(path)),
    list: (path: string) => Promise.resolve(list(path)),
  } as unknown as KubeClient;
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

describe('ClusterPolicies', () => {
  it('lists the served kinds, each object with its kind, and bumps the version only on a change', async () => {
    const served: Served = {
      group: ['v1alpha1'],
      resources: { v1alpha1: ['adminnetworkpolicies', 'adminnetworkpolicies/status'] },
      items: {
        adminnetworkpolicies: [{ metadata: { name: 'allow-dns', resourceVersion: '7' }, spec: anp }],
        // Not served by this server: not listed, whatever the list would give.
        baselineadminnetworkpolicies: [{ metadata: { name: 'default', resourceVersion: '3' }, spec: banp }],
      },
    };
    const cp = new ClusterPolicies(client(served));
    await cp.refresh();
    expect(cp.list()).toEqual([
      {
        apiVersion: 'policy.networking.k8s.io/v1alpha1',
        kind: 'AdminNetworkPolicy',
        metadata: { name: 'allow-dns', resourceVersion: '7' },
        spec: anp,
      },
    ]);
    expect(cp.version).toBe(1);
    await cp.refresh();
    expect(cp.version).toBe(1);
    served.items.adminnetworkpolicies![0]!.metadata.resourceVersion = '8';
    await cp.refresh();
    expect(cp.version).toBe(2);
  });

  it('has none on a server without the API group, and keeps what it read when a read fails', async () => {
    const none = new ClusterPolicies(client({ resources: {}, items: {} }));
    await none.refresh();
    expect([none.list(), none.version]).toEqual([[], 0]);
    const served: Served = {
      group: ['v1alpha1'],
      resources: { v1alpha1: ['adminnetworkpolicies'] },
      items: { adminnetworkpolicies: [{ metadata: { name: 'a', resourceVersion: '1' }, spec: anp }] },
    };
    const lines: string[] = [];
    const cp = new ClusterPolicies(client(served), { log: logger(lines) });
    await cp.refresh();
    served.fail = 403;
    await cp.refresh();
    await cp.refresh();
    expect(cp.list().map((o) => o.metadata.name)).toEqual(['a']);
    expect(lines).toEqual([
      'cannot list AdminNetworkPolicy objects; audits keep what was read of them last (none, if never read)',
    ]);
  });

  it('leaves out a policy the semantics engine cannot evaluate, said once, and reads the others', async () => {
    const served: Served = {
      group: ['v1alpha1'],
      resources: { v1alpha1: ['adminnetworkpolicies'] },
      items: {
        adminnetworkpolicies: [
          {
            metadata: { name: 'by-domain', resourceVersion: '4' },
            spec: {
              priority: 2,
              subject: { namespaces: {} },
              egress: [{ action: 'Allow', to: [{ domainNames: ['*.example.com'] }] }],
            },
          },
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
    const cp = new ClusterPolicies(client(served), { log });
    await cp.refresh();
    await cp.refresh();
    expect(cp.list().map((o) => o.metadata.name)).toEqual(['same-ns']);
    expect(cp.version).toBe(1);
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
      const cp = new ClusterPolicies(client(served), { log: logger(lines) });
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
      items: { adminnetworkpolicies: [] },
    };
    const lines: string[] = [];
    const cp = new ClusterPolicies(client(served), { log: logger(lines) });
    // Policies of releases come and go, each edited once.
    for (let i = 0; i < 20; i++) {
      served.items.adminnetworkpolicies = [byDomain('kept', '1'), byDomain(`release-${i}`, '1')];
      await cp.refresh();
      served.items.adminnetworkpolicies = [byDomain('kept', '1'), byDomain(`release-${i}`, '2')];
      await cp.refresh();
    }
    served.items.adminnetworkpolicies = [byDomain('kept', '1')];
    await cp.refresh();
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
    const cp = new ClusterPolicies(client(served), { log: logger(lines) });
    await cp.refresh();
    expect(cp.list().map((o) => `${o.kind}/${o.metadata.name}`)).toEqual(['AdminNetworkPolicy/a']);
    expect(lines).toEqual([
      'cannot list BaselineAdminNetworkPolicy objects; audits keep what was read of them last (none, if never read)',
    ]);
    // Once it may, it is read; the AdminNetworkPolicy read before is kept while its list fails.
    served.forbidden = ['adminnetworkpolicies'];
    await cp.refresh();
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

  it('reads an interval after each read, at most every second, and not after stop()', async () => {
    vi.useFakeTimers();
    const served: Served = { resources: {}, items: {} };
    const cp = new ClusterPolicies(client(served), { intervalMs: 0 });
    await cp.start();
    await vi.advanceTimersByTimeAsync(2500);
    expect(served.reads).toBe(3);
    cp.stop();
    await vi.advanceTimersByTimeAsync(5000);
    expect(served.reads).toBe(3);
    // Stopped while its first read was under way: no timer is left behind.
    const late: Served = { resources: {}, items: {} };
    const cp2 = new ClusterPolicies(client(late), { intervalMs: 1000 });
    const started = cp2.start();
    cp2.stop();
    await started;
    await vi.advanceTimersByTimeAsync(5000);
    expect(late.reads).toBe(1);
  });
});
