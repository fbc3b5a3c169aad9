/**
 * Same snapshot, same workloads: the order of a snapshot's objects does not change how identity names,
 * selects and warns about workloads — custom resources that control pods, the workload label, workloads
 * whose labels come from their pods, objects selected by their controller's uid — nor the policies the
 * proposal writes for them (GitOps diffs stay quiet when `kubectl get` lists objects in another order).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildIdentity } from '../../src/identity/index.ts';
import { policiesToYaml } from '../../src/policy/render.ts';
import { runPipeline } from '../../src/pipeline.ts';
import { deployment, inNamespace, type Obj, pod, ref, snapshotOf, tcpFlow } from './workload-fixture.ts';

const NS = 'app';

/** A cluster of every kind of workload naming this session's identity has. */
function objects(): Obj[] {
  const cnpg = (n: number, role: string) =>
    pod(
      NS,
      `pg-${n}`,
      ref('postgresql.cnpg.io/v1', 'Cluster', 'pg'),
      { 'cnpg.io/cluster': 'pg', 'cnpg.io/instanceName': `pg-${n}`, 'cnpg.io/podRole': 'instance', role },
      `10.244.1.1${n}`,
      5432,
    );
  const vm = (n: number) =>
    pod(
      NS,
      `virt-launcher-vm${n}-abcde`,
      ref('kubevirt.io/v1', 'VirtualMachineInstance', `vm${n}`),
      { 'kubevirt.io': 'virt-launcher', 'kubevirt.io/nodeName': 'node-1', 'vm.kubevirt.io/name': `vm${n}` },
      `10.244.2.${n}`,
      22,
    );
  const run = (n: number) =>
    pod(
      NS,
      `build-run-${n}-pod`,
      ref('tekton.dev/v1', 'TaskRun', `build-run-${n}`),
      { 'microseg.dev/workload': 'build', 'tekton.dev/taskRun': `build-run-${n}`, tier: n === 1 ? 'a' : 'b' },
      `10.244.3.${n}`,
      0,
    );
  const revision = (n: number, label: boolean) => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: `hello-0000${n}-deployment`,
      namespace: NS,
      uid: `uid-d-${n}`,
      ownerReferences: [ref('serving.knative.dev/v1', 'Revision', `hello-0000${n}`, { uid: `uid-r-${n}` })],
    },
    spec: {
      replicas: 0,
      selector: { matchLabels: { 'serving.knative.dev/revisionUID': `uid-r-${n}` } },
      template: {
        metadata: {
          labels: {
            'serving.knative.dev/revisionUID': `uid-r-${n}`,
            ...(label ? { 'microseg.dev/workload': 'hello' } : {}),
          },
        },
        spec: { containers: [{ name: 'c', ports: [{ name: `p${n}`, containerPort: 8012 }] }] },
      },
    },
  });
  return [
    ...deployment(NS, 'front', '10.244.1.1', 80),
    cnpg(1, 'primary'),
    cnpg(2, 'replica'),
    cnpg(3, 'replica'),
    vm(1),
    vm(2),
    run(1),
    run(2),
    revision(1, true),
    revision(2, true),
    revision(3, false),
    revision(4, false),
  ];
}

const { at } = inNamespace(NS);
const flow = tcpFlow;
const FRONT = at('10.244.1.1', 'front-7d9f-x1x1x');
const FLOWS = [
  flow(1, FRONT, at('10.244.1.11', 'pg-1'), 5432),
  flow(2, at('10.244.1.12', 'pg-2'), at('10.244.1.11', 'pg-1'), 5432),
  flow(3, FRONT, at('10.244.2.1', 'virt-launcher-vm1-abcde'), 22),
  flow(4, at('10.244.3.1', 'build-run-1-pod'), FRONT, 80),
];

/** What identity and the proposal make of the objects in this order. */
async function outcome(items: Obj[]) {
  const snap = snapshotOf(NS, items);
  const id = buildIdentity(snap);
  const workloads = [...id.workloads.values()]
    .map((w) => JSON.stringify(w))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const r = await runPipeline(snapshotOf(NS, items), FLOWS);
  return { workloads, warnings: id.warnings, yaml: policiesToYaml(r.proposal.policies) };
}

describe('the order of the snapshot objects', () => {
  it('changes no workload, warning or policy', async () => {
    const items = objects();
    const expected = await outcome(items);
    // The workloads it is about are there.
    expect(expected.workloads.map((w) => (JSON.parse(w) as { id: string }).id).sort()).toEqual([
      'app/Cluster/pg',
      'app/Deployment/front',
      'app/Deployment/hello-00003-deployment',
      'app/Deployment/hello-00004-deployment',
      'app/VirtualMachineInstance/vm1',
      'app/VirtualMachineInstance/vm2',
      'app/Workload/build',
      'app/Workload/hello',
    ]);
    expect(expected.warnings.length).toBe(2);
    await fc.assert(
      fc.asyncProperty(fc.shuffledSubarray(items, { minLength: items.length }), async (shuffled) => {
        expect(await outcome(shuffled)).toEqual(expected);
      }),
      { numRuns: 40, seed: 24 },
    );
  });
});
