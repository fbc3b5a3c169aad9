/**
 * Cluster objects of namespace `app` for the tests of the policy stage: pods, Deployments (with their
 * ReplicaSet and pod), CronJobs (with a run's Job and pod), and a snapshot of them.
 */
import type { FlowEndpoint } from '../../src/flows/types.ts';
import { loadSnapshotText } from '../../src/model/snapshot.ts';
import type { ClusterSnapshot } from '../../src/model/snapshot.ts';

export const PIN = 'microseg.dev/segment';

export function pod(name: string, labels: Record<string, string>, ip: string, owner?: object): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'app', labels, ...(owner ? { ownerReferences: [owner] } : {}) },
    spec: { nodeName: 'node-1', containers: [{ name: 'c' }] },
    status: { phase: 'Running', podIP: ip, hostIP: '192.168.0.10', startTime: '2026-11-01T09:00:00Z' },
  };
}

/** A Deployment with its ReplicaSet `<name>-h1` and pod `<name>-h1-1` at `ip`. */
export function deployment(
  name: string,
  selector: Record<string, string>,
  labels: Record<string, string>,
  ip: string,
) {
  const rs = {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    name: `${name}-h1`,
    uid: `uid-${name}-h1`,
    controller: true,
  };
  return [
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name, namespace: 'app', uid: `uid-${name}` },
      spec: {
        selector: { matchLabels: selector },
        template: { metadata: { labels }, spec: { containers: [{ name }] } },
      },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: {
        name: `${name}-h1`,
        namespace: 'app',
        uid: `uid-${name}-h1`,
        ownerReferences: [
          { apiVersion: 'apps/v1', kind: 'Deployment', name, uid: `uid-${name}`, controller: true },
        ],
      },
      spec: { selector: { matchLabels: { ...selector, 'pod-template-hash': 'h1' } } },
    },
    pod(`${name}-h1-1`, { ...labels, 'pod-template-hash': 'h1' }, ip, rs),
  ];
}

/** The labels Kubernetes gives the pods of the Job `name`. */
export const jobLabels = (name: string) => ({
  'batch.kubernetes.io/job-name': name,
  'job-name': name,
  'batch.kubernetes.io/controller-uid': `uid-${name}`,
  'controller-uid': `uid-${name}`,
});

/** A CronJob `name` whose job template's pods carry `labels`, with one run (Job `<name>-1`) at `ip`. */
export function cronJob(name: string, labels: Record<string, string>, ip: string) {
  const job = `${name}-1`;
  return [
    {
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      metadata: { name, namespace: 'app', uid: `uid-${name}` },
      spec: {
        schedule: '*/5 * * * *',
        jobTemplate: { spec: { template: { metadata: { labels }, spec: { containers: [{ name: 'c' }] } } } },
      },
      status: { lastScheduleTime: '2026-11-01T10:00:00Z' },
    },
    {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: {
        name: job,
        namespace: 'app',
        uid: `uid-${job}`,
        ownerReferences: [
          { apiVersion: 'batch/v1', kind: 'CronJob', name, uid: `uid-${name}`, controller: true },
        ],
      },
      spec: {
        selector: { matchLabels: { 'batch.kubernetes.io/controller-uid': `uid-${job}` } },
        template: { metadata: { labels: { ...labels, ...jobLabels(job) } } },
      },
    },
    pod(`${job}-x1`, { ...labels, ...jobLabels(job) }, ip, {
      apiVersion: 'batch/v1',
      kind: 'Job',
      name: job,
      uid: `uid-${job}`,
      controller: true,
    }),
  ];
}

export function cluster(items: unknown[]): ClusterSnapshot {
  const ns = {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: 'app', labels: { 'kubernetes.io/metadata.name': 'app' } },
  };
  return loadSnapshotText(
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [ns, ...items] }),
    'cluster.json',
  );
}

export const at = (ip: string, name: string): FlowEndpoint => ({ ip, namespace: 'app', pod: name });
