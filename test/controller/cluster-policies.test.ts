/**
 * The controller's reading of cluster-wide policies (src/controller/cluster-policies.ts): the kinds the
 * API server serves, found by discovery, are listed; a change of what was read bumps the version (the
 * audit's engine is rebuilt then); a server without the API group has none; a failed read keeps what
 * was read before, said once.
 */
import { describe, expect, it } from 'vitest';
import { ClusterPolicies } from '../../src/controller/cluster-policies.ts';
import type { KubeClient } from '../../src/controller/kube.ts';
import { KubeApiError } from '../../src/controller/kube.ts';
import type { Logger } from '../../src/controller/log.ts';

interface Served {
  group?: string[];
  resources: Record<string, string[]>;
  items: Record<string, { metadata: { name: string; resourceVersion: string }; spec: object }[]>;
  fail?: number;
}

function client(served: Served): KubeClient {
  const get = (path: string) => {
    if (path === '/apis/policy.networking.k8s.io') {
      if (!served.group) throw new KubeApiError('GET', path, 404, 'NotFound', 'not found');
      return { versions: served.group.map((version) => ({ version })) };
    }
    const version = path.split('/').at(-1)!;
    return { resources: (served.resources[version] ?? []).map((name) => ({ name })) };
  };
  const list = (path: string) => {
    if (served.fail) throw new KubeApiError('GET', path, served.fail, 'Forbidden', 'forbidden');
    return { items: served.items[path.split('/').at(-1)!] ?? [], resourceVersion: '1' };
  };
  return {
    get: (path: string) => Promise.resolve(get(path)),
    list: (path: string) => Promise.resolve(list(path)),
  } as unknown as KubeClient;
}

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
        adminnetworkpolicies: [
          { metadata: { name: 'allow-dns', resourceVersion: '7' }, spec: { priority: 1 } },
        ],
        // Not served by this server: not listed, whatever the list would give.
        baselineadminnetworkpolicies: [{ metadata: { name: 'default', resourceVersion: '3' }, spec: {} }],
      },
    };
    const cp = new ClusterPolicies(client(served));
    await cp.refresh();
    expect(cp.list()).toEqual([
      {
        apiVersion: 'policy.networking.k8s.io/v1alpha1',
        kind: 'AdminNetworkPolicy',
        metadata: { name: 'allow-dns', resourceVersion: '7' },
        spec: { priority: 1 },
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
      items: { adminnetworkpolicies: [{ metadata: { name: 'a', resourceVersion: '1' }, spec: {} }] },
    };
    const lines: string[] = [];
    const cp = new ClusterPolicies(client(served), { log: logger(lines) });
    await cp.refresh();
    served.fail = 403;
    await cp.refresh();
    await cp.refresh();
    expect(cp.list().map((o) => o.metadata.name)).toEqual(['a']);
    expect(lines).toEqual(['cannot list AdminNetworkPolicy objects; they are left out of audits']);
  });
});
