/**
 * Vitest global setup of the `k8s` project: builds the control plane once (cached), starts one
 * etcd + kube-apiserver for the whole run and provides its `ClusterInfo` to the test files
 * (`sharedCluster()` in ./index.ts). Tests that restart or compact the server start their own.
 */
import type { TestProject } from 'vitest/node';
import { type ClusterInfo, startCluster } from './cluster.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    microsegCluster: ClusterInfo;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const cluster = await startCluster();
  project.provide('microsegCluster', cluster.info());
  return () => cluster.stop();
}
