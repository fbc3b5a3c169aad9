/**
 * The pin label (`microseg.dev/segment`) is what a team changes to move a workload to another segment:
 * on a pod template, a rollout then changes it on the workload's pods. A proposal whose selectors rested
 * on it (a Job's or CronJob's selector made of its template labels, or a narrowing requirement) stopped
 * selecting the workload's new pods once the pin was added, changed or removed, and the namespace's
 * default deny blocked their traffic. The selectors never rest on it.
 */
import { describe, expect, it } from 'vitest';
import type { Flow } from '../../src/flows/types.ts';
import { runPipeline } from '../../src/pipeline.ts';
import { engineFromSnapshot } from '../../src/verify/engine.ts';
import { at, cluster, cronJob, deployment, jobLabels, PIN, pod } from './policy-objects.ts';
import { tcpFlow } from './workload-fixture.ts';

/**
 * Whether the connection from pod `from` to pod `to` on TCP `port` is allowed once the proposal made
 * from `items` and `flows` is applied to the cluster of `items` and `later` (the pods of a rollout).
 */
async function allowedLater(
  items: unknown[],
  flows: Flow[],
  later: unknown[],
  from: string,
  to: string,
  port: number,
): Promise<{ allowed: boolean; selectors: unknown[] }> {
  const r = await runPipeline(cluster(items), flows);
  const after = cluster([...items, ...later]);
  const engine = engineFromSnapshot({ ...after, networkPolicies: r.proposal.policies });
  const verdict = engine.evaluate({
    from: { namespace: 'app', pod: from },
    to: { namespace: 'app', pod: to },
    port,
    protocol: 'TCP',
  });
  return { allowed: verdict.allowed, selectors: r.proposal.policies.map((p) => p.spec.podSelector) };
}

describe('a pin on a pod template', () => {
  it("is not in a CronJob's selector: its next run, pinned elsewhere, keeps its connections", async () => {
    const items = [
      ...deployment('api', { app: 'api' }, { app: 'api' }, '10.244.1.2'),
      ...cronJob('report', { app: 'report', [PIN]: 'batch' }, '10.244.1.7'),
    ];
    const flows = [tcpFlow(1, at('10.244.1.7', 'report-1-x1'), at('10.244.1.2', 'api-h1-1'), 8080)];
    // The team moves the CronJob to another segment: its next run's pod carries the new pin.
    const next = pod(
      'report-2-x1',
      { app: 'report', [PIN]: 'reports', ...jobLabels('report-2') },
      '10.244.1.9',
    );
    const r = await allowedLater(items, flows, [next], 'report-2-x1', 'api-h1-1', 8080);
    expect(r.allowed).toBe(true);
    expect(JSON.stringify(r.selectors)).not.toContain(PIN);
  });

  it('is never what a narrowed selector rests on: pinning the other workload keeps its connections', async () => {
    // api's selector (app=api) also matches api-batch's pods, which carry tier=batch and a pin: api's
    // selector is narrowed by tier, never by the pin, which api's own pods get once api is pinned too.
    const items = [
      ...deployment('web', { app: 'web' }, { app: 'web' }, '10.244.1.1'),
      ...deployment('api', { app: 'api' }, { app: 'api' }, '10.244.1.2'),
      ...deployment(
        'api-batch',
        { app: 'api', tier: 'batch' },
        { app: 'api', tier: 'batch', [PIN]: 'batch' },
        '10.244.1.3',
      ),
    ];
    const flows = [
      tcpFlow(1, at('10.244.1.1', 'web-h1-1'), at('10.244.1.2', 'api-h1-1'), 8080),
      tcpFlow(2, at('10.244.1.3', 'api-batch-h1-1'), at('10.244.1.2', 'api-h1-1'), 8080),
    ];
    const pinned = pod('api-h2-1', { app: 'api', [PIN]: 'core', 'pod-template-hash': 'h2' }, '10.244.1.12', {
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      name: 'api-h2',
      uid: 'uid-api-h2',
      controller: true,
    });
    const r = await allowedLater(items, flows, [pinned], 'web-h1-1', 'api-h2-1', 8080);
    expect(r.allowed).toBe(true);
    expect(JSON.stringify(r.selectors)).not.toContain(PIN);
  });
});

describe('two workloads told apart by their pins alone', () => {
  it('are named in a warning that says the pin is no label to tell them apart by', async () => {
    const items = [
      ...deployment('web', { app: 'web' }, { app: 'web' }, '10.244.1.1'),
      ...deployment('api', { app: 'api' }, { app: 'api' }, '10.244.1.2'),
      ...deployment('api-eu', { app: 'api', [PIN]: 'eu' }, { app: 'api', [PIN]: 'eu' }, '10.244.1.3'),
    ];
    const flows = [
      tcpFlow(1, at('10.244.1.1', 'web-h1-1'), at('10.244.1.2', 'api-h1-1'), 8080),
      tcpFlow(2, at('10.244.1.1', 'web-h1-1'), at('10.244.1.3', 'api-eu-h1-1'), 8080),
    ];
    const r = await runPipeline(cluster(items), flows);
    expect(r.proposal.warnings.filter((w) => w.includes('also selects'))).toEqual([
      `policy app/microseg-api (app/Deployment/api) also selects the pods of app/Deployment/api-eu: no label separates them (they differ only by the pin label ${PIN}, which a selector never rests on: a team changes it to move a workload to another segment), so its rules apply to them too (see verification.excess)`,
      `policy app/microseg-api-eu (app/Deployment/api-eu) also selects the pods of app/Deployment/api: no label separates them (they differ only by the pin label ${PIN}, which a selector never rests on: a team changes it to move a workload to another segment), so its rules apply to them too (see verification.excess)`,
    ]);
  });
});

describe('a workload whose only label is its pin', () => {
  it('is selected by the pin, as nothing else tells its pods, and a warning names the policies that do', async () => {
    // The CronJob's pod template carries the pin alone: a selector without it would select every pod of
    // the namespace, so it keeps it, and says so rather than claiming a pin can move freely.
    const items = [
      ...deployment('api', { app: 'api' }, { app: 'api' }, '10.244.1.2'),
      ...cronJob('report', { [PIN]: 'batch' }, '10.244.1.7'),
    ];
    const flows = [tcpFlow(1, at('10.244.1.7', 'report-1-x1'), at('10.244.1.2', 'api-h1-1'), 8080)];
    const r = await runPipeline(cluster(items), flows);
    const report = r.proposal.policies.find((p) => p.metadata.name === 'microseg-report')!;
    expect(report.spec.podSelector).toEqual({ matchLabels: { [PIN]: 'batch' } });
    expect(r.proposal.warnings.filter((w) => w.includes('by the pin label'))).toEqual([
      `policies app/microseg-api, app/microseg-report select the pods of app/CronJob/report by the pin label ${PIN}=batch alone, the only label they carry: moving the workload to another segment or removing its pin would leave its new pods unselected, and the namespace's default deny would block their traffic; give its pod template a label of its own`,
    ]);
  });
});
