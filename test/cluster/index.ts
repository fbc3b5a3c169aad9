/**
 * The test-cluster API used by integration tests under test/k8s/. See docs/testing.md.
 */
import { inject } from 'vitest';
import { type ClusterHandle, connectCluster } from './cluster.ts';

export {
  type Cluster,
  type ClusterHandle,
  type ClusterInfo,
  connectCluster,
  HarnessError,
  type Identity,
  type KubectlOptions,
  type KubectlResult,
  type RawRequestOptions,
  type RawResponse,
  startCluster,
  type StartOptions,
} from './cluster.ts';
export { type Binaries, ensureBinaries } from './binaries.ts';
export {
  createNamespace,
  createPod,
  eventually,
  PAUSE_IMAGE,
  type PodSpecInput,
  setPodIPs,
  statusCode,
} from './objects.ts';

/** The cluster the `k8s` project's global setup started for this test run. */
export function sharedCluster(): ClusterHandle {
  return connectCluster(inject('microsegCluster'));
}

/** A namespace name unique to this test file and run, so files sharing a cluster do not collide. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid.toString(36)}-${Math.random().toString(36).slice(2, 7)}`;
}
