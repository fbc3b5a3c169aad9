/** The blast radius the details panel shows: counts of workloads, a StatefulSet's pods counted once. */
import { describe, expect, it } from 'vitest';
import { blastRadiusViews } from '../../src/cli/commands/demo.ts';
import { runPipeline } from '../../src/pipeline.ts';
import { fixtureFlows, fixtureSnapshot } from '../core/fixture.ts';
import { pod, ref } from '../core/workload-fixture.ts';
import { DB, FRONTEND } from './helpers.ts';

describe('blast radius of the details panel', () => {
  it('counts the workloads reached, not the classes of pods: each pod of a StatefulSet is one class', async () => {
    // db gets a second pod: each has its own pod-name label, so the engine tells them apart.
    const db1 = pod(
      'shop',
      'db-1',
      ref('apps/v1', 'StatefulSet', 'db', { uid: 'uid-db' }),
      { app: 'db', 'statefulset.kubernetes.io/pod-name': 'db-1', 'controller-revision-hash': 'db-5f' },
      '10.244.1.31',
      5432,
    );
    const snapshot = fixtureSnapshot(db1);
    const analysis = await runPipeline(snapshot, fixtureFlows());
    const br = blastRadiusViews(snapshot, analysis)(FRONTEND)!;
    // Before the proposal, every workload of the cluster but the host-network pod reaches frontend; the
    // examples name db's two pods apart.
    expect(br.before.fromExamples).toEqual([
      'kube-system/Deployment/coredns (8080/TCP)',
      'shop/Deployment/cart (8080/TCP)',
      `${DB} (db-0) (8080/TCP)`,
      `${DB} (db-1) (8080/TCP)`,
      `${FRONTEND} (8080/TCP)`,
    ]);
    // Was 5: db counted once per pod.
    expect(br.before.reachableFrom).toBe(4);
    expect(br.before.canReach).toBe(br.before.reachExamples!.length);
  });
});
