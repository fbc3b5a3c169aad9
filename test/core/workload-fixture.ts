/**
 * Cluster objects for the tests of how identity names workloads (rollout, custom-owner, workload-label):
 * pods with their owner references, a Deployment with its ReplicaSet and pod, a snapshot of them.
 */
import { loadSnapshotText, type ClusterSnapshot } from '../../src/model/snapshot.ts';

export type Obj = Record<string, unknown>;

export interface Ref {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: true;
}

/** An owner reference (`uid-<kind>-<name>` unless given), the controller unless `controller` is false. */
export function ref(
  apiVersion: string,
  kind: string,
  name: string,
  { uid = `uid-${kind}-${name}`, controller = true }: { uid?: string; controller?: boolean } = {},
): Ref {
  return { apiVersion, kind, name, uid, ...(controller ? { controller: true } : {}) };
}

/** A running pod of namespace `ns` at `ip`, owned by `owner`, its one container naming `port` `p`. */
export function pod(
  ns: string,
  name: string,
  owner: Ref | undefined,
  labels: Record<string, string>,
  ip: string,
  port: number,
): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns, labels, ...(owner ? { ownerReferences: [owner] } : {}) },
    spec: { nodeName: 'node-1', containers: [{ name: 'c', ports: [{ name: 'p', containerPort: port }] }] },
    status: {
      phase: 'Running',
      podIP: ip,
      podIPs: [{ ip }],
      hostIP: '192.168.0.10',
      startTime: '2026-11-01T00:00:00Z',
    },
  };
}

/**
 * A Deployment `name` of namespace `ns` (app=name) with its ReplicaSet `<name>-7d9f` and one pod
 * `<name>-7d9f-x1x1x` at `ip`.
 */
export function deployment(ns: string, name: string, ip: string, port: number): Obj[] {
  const labels = { app: name };
  return [
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name, namespace: ns, uid: `uid-Deployment-${name}` },
      spec: {
        selector: { matchLabels: labels },
        template: { metadata: { labels }, spec: { containers: [{ name: 'c' }] } },
      },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: {
        name: `${name}-7d9f`,
        namespace: ns,
        uid: `uid-ReplicaSet-${name}-7d9f`,
        ownerReferences: [ref('apps/v1', 'Deployment', name)],
      },
      spec: { selector: { matchLabels: { ...labels, 'pod-template-hash': '7d9f' } } },
    },
    pod(
      ns,
      `${name}-7d9f-x1x1x`,
      ref('apps/v1', 'ReplicaSet', `${name}-7d9f`),
      { ...labels, 'pod-template-hash': '7d9f' },
      ip,
      port,
    ),
  ];
}

/** A snapshot of namespace `ns` (its Namespace object first) and `items`. */
export function snapshotOf(ns: string, items: Obj[]): ClusterSnapshot {
  const namespace = {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: ns, labels: { 'kubernetes.io/metadata.name': ns } },
  };
  return loadSnapshotText(
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [namespace, ...items] }),
    'cluster.json',
  );
}
