/**
 * `deniedUnobserved` (what `microseg audit` and POST /audit name as cut off) over a proposal's own
 * policies names the workloads the proposal names as unobserved: a narrowed selector leaves out the pods
 * of a Job or CronJob by a label Kubernetes gives them (`batch.kubernetes.io/job-name DoesNotExist`),
 * which its stable labels never hold, so it is no policy of theirs.
 */
import { describe, expect, it } from 'vitest';
import { deniedUnobserved } from '../../src/policy/audit.ts';
import { runPipeline } from '../../src/pipeline.ts';
import { at, cluster, cronJob, deployment } from './policy-objects.ts';
import { tcpFlow } from './workload-fixture.ts';

describe('the workloads only a default deny selects', () => {
  it("counts a CronJob labelled as a Deployment as cut off when the Deployment's policy leaves its pods out", async () => {
    // The CronJob's run is in the snapshot but made no flow; api's selector (app=api) leaves its pod out
    // by the Job label its pods carry.
    const items = [
      ...deployment('web', { app: 'web' }, { app: 'web' }, '10.244.1.1'),
      ...deployment('api', { app: 'api' }, { app: 'api' }, '10.244.1.2'),
      ...cronJob('migrate', { app: 'api' }, '10.244.1.7'),
    ];
    const r = await runPipeline(cluster(items), [
      tcpFlow(1, at('10.244.1.1', 'web-h1-1'), at('10.244.1.2', 'api-h1-1'), 8080),
    ]);
    expect(r.proposal.unobserved).toEqual(['app/CronJob/migrate']);
    const api = r.proposal.policies.find((p) => p.metadata.name === 'microseg-api')!;
    expect(api.spec.podSelector.matchExpressions).toEqual([
      { key: 'batch.kubernetes.io/job-name', operator: 'DoesNotExist' },
    ]);
    expect(deniedUnobserved(r.identity, r.graph, r.proposal.policies)).toEqual(['app/CronJob/migrate']);
  });
});
