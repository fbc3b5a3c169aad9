/**
 * Cluster objects for the tests of how identity names workloads (rollout, custom-owner, workload-label,
 * workload-order): pods with their owner references, a Deployment with its ReplicaSet and pod, a snapshot
 * of them, flows between their pods and the engine's queries of those flows.
 */
import type { Flow, FlowEndpoint } from '../../src/flows/types.ts';
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

/** The time the tests' flows count from. */
export const T0 = Date.parse('2026-11-01T10:00:00Z');

/** A forwarded TCP flow `minute` minutes after T0 to `port`, as a generic collector gives it. */
export function tcpFlow(minute: number, src: FlowEndpoint, dst: FlowEndpoint, port: number): Flow {
  return {
    time: T0 + minute * 60_000,
    src,
    dst,
    port,
    protocol: 'TCP',
    verdict: 'FORWARDED',
    input: 'generic',
  };
}

/** The connections of flows between pods, as the semantics engine's queries. */
export function queriesOf(flows: readonly Flow[]) {
  return flows.map((f) => ({
    from: { namespace: f.src.namespace!, pod: f.src.pod! },
    to: { namespace: f.dst.namespace!, pod: f.dst.pod! },
    port: f.port,
  }));
}

/** The builders above for namespace `ns`, and a flow endpoint of its pod `name` at `ip`. */
export function inNamespace(ns: string) {
  return {
    pod: (name: string, owner: Ref | undefined, labels: Record<string, string>, ip: string, port: number) =>
      pod(ns, name, owner, labels, ip, port),
    deployment: (name: string, ip: string, port: number) => deployment(ns, name, ip, port),
    snapshot: (items: Obj[]): ClusterSnapshot => snapshotOf(ns, items),
    at: (ip: string, name: string): FlowEndpoint => ({ ip, namespace: ns, pod: name }),
  };
}
