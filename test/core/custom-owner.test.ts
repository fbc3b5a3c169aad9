/**
 * Pods whose controller is a custom resource microseg does not know (an operator's: CloudNativePG's
 * Cluster owns its PostgreSQL pods directly, Strimzi's StrimziPodSet its Kafka pods): they are one
 * workload of the resource's kind and name, selected by the labels they all share, so that a proposal
 * made before a failover (the operator moves `role=primary` to another pod) or a replacement (a new
 * instance, `pg-4`) still admits every instance. Before, each pod was a workload of its own, selected
 * by all of its labels, its role among them.
 */
import { describe, expect, it } from 'vitest';
import type { Flow, FlowEndpoint } from '../../src/flows/types.ts';
import { buildIdentity } from '../../src/identity/index.ts';
import { runPipeline } from '../../src/pipeline.ts';
import { engineFromSnapshot } from '../../src/verify/engine.ts';
import { resolveWorkload } from '../../src/verify/load.ts';
import { verifyProposal } from '../../src/verify/reach.ts';
import {
  deployment,
  inNamespace,
  type Obj,
  queriesOf,
  ref,
  type Ref,
  T0,
  tcpFlow,
} from './workload-fixture.ts';

const NS = 'app';

const { pod, snapshot } = inNamespace(NS);

const FRONT: Obj[] = deployment(NS, 'front', '10.244.1.1', 80);

const CLUSTER = ref('postgresql.cnpg.io/v1', 'Cluster', 'pg');

/** A CloudNativePG instance `pg-<n>` as the operator labels it, at 10.244.1.1<n>. */
const instance = (n: number, role: 'primary' | 'replica', owner: Ref = CLUSTER): Obj =>
  pod(
    `pg-${n}`,
    owner,
    {
      'cnpg.io/cluster': 'pg',
      'cnpg.io/instanceName': `pg-${n}`,
      'cnpg.io/instanceRole': role,
      'cnpg.io/podRole': 'instance',
      role,
    },
    `10.244.1.1${n}`,
    5432,
  );

const at = (n: number): FlowEndpoint => ({ ip: `10.244.1.1${n}`, namespace: NS, pod: `pg-${n}` });
const FROM_FRONT: FlowEndpoint = { ip: '10.244.1.1', namespace: NS, pod: 'front-7d9f-x1x1x' };
const flow = (minute: number, src: FlowEndpoint, dst: FlowEndpoint): Flow => tcpFlow(minute, src, dst, 5432);

/** The connections of flows, as the engine's queries. */
const observed = queriesOf;

describe('pods a custom resource controls', () => {
  const before = snapshot([...FRONT, instance(1, 'primary'), instance(2, 'replica'), instance(3, 'replica')]);
  // front writes to the primary and reads from a replica; the replicas stream from the primary.
  const flows = [
    flow(1, FROM_FRONT, at(1)),
    flow(2, FROM_FRONT, at(2)),
    flow(3, at(2), at(1)),
    flow(4, at(3), at(1)),
  ];

  it("are one workload of the resource's kind and name, selected by the labels they all share", () => {
    const id = buildIdentity(before);
    expect(['pg-1', 'pg-2', 'pg-3'].map((p) => id.podWorkload.get(`app/${p}`))).toEqual([
      'app/Cluster/pg',
      'app/Cluster/pg',
      'app/Cluster/pg',
    ]);
    const pg = id.workloads.get('app/Cluster/pg')!;
    expect([pg.kind, pg.name, pg.customResource, pg.selector, pg.labels, pg.varyingLabels, pg.pods]).toEqual([
      'Cluster',
      'pg',
      { apiVersion: 'postgresql.cnpg.io/v1' },
      { matchLabels: { 'cnpg.io/cluster': 'pg', 'cnpg.io/podRole': 'instance' } },
      { 'cnpg.io/cluster': 'pg', 'cnpg.io/podRole': 'instance' },
      ['cnpg.io/instanceName', 'cnpg.io/instanceRole', 'role'],
      ['pg-1', 'pg-2', 'pg-3'],
    ]);
    expect([...id.workloads.keys()].filter((k) => k.includes('/Pod/'))).toEqual([]);
    expect(id.warnings).toEqual([]);
  });

  it('keep every observed connection allowed after a failover and a replacement instance', async () => {
    const r = await runPipeline(before, flows);
    expect(r.proposal.policies.map((p) => p.metadata.name)).toEqual([
      'microseg-default-deny',
      'microseg-front',
      'microseg-pg',
    ]);
    // pg-1 failed: pg-2 is promoted, the operator replaces pg-1 with pg-4 (a replica).
    const after = snapshot([
      ...FRONT,
      instance(2, 'primary'),
      instance(3, 'replica'),
      instance(4, 'replica'),
    ]);
    after.networkPolicies.push(...r.proposal.policies);
    const afterFlows = [
      flow(1, FROM_FRONT, at(2)),
      flow(2, FROM_FRONT, at(3)),
      flow(3, at(3), at(2)),
      flow(4, at(4), at(2)),
    ];
    const report = verifyProposal(engineFromSnapshot(after), observed(afterFlows));
    expect(report.blocked).toEqual([]);
    expect(report.allowedObserved).toBe(4);
    // Nothing unobserved is opened: front's pods take no connection on 5432, nor do pg's from elsewhere.
    const engine = engineFromSnapshot(after);
    const reverse = verifyProposal(engine, [
      { from: { namespace: NS, pod: 'pg-2' }, to: { namespace: NS, pod: 'front-7d9f-x1x1x' }, port: 80 },
    ]);
    expect(reverse.allowedObserved).toBe(0);
  });

  it('drop a label whose value is the pod name, and warn when the snapshot has one pod of the resource', () => {
    const id = buildIdentity(snapshot([instance(1, 'primary')]));
    const pg = id.workloads.get('app/Cluster/pg')!;
    expect([pg.selector, pg.varyingLabels]).toEqual([
      {
        matchLabels: {
          'cnpg.io/cluster': 'pg',
          'cnpg.io/instanceRole': 'primary',
          'cnpg.io/podRole': 'instance',
          role: 'primary',
        },
      },
      ['cnpg.io/instanceName'],
    ]);
    expect(id.warnings).toEqual([
      'app/Cluster/pg: this postgresql.cnpg.io Cluster has one pod in the snapshot, whose labels select it (cnpg.io/cluster=pg,cnpg.io/instanceRole=primary,cnpg.io/podRole=instance,role=primary); a label its operator gives each pod (a role) would leave out the pods it makes later (label their template microseg.dev/workload=<name> to name their workload)',
    ]);
  });

  it('are warned about once per kind when many have one pod each (a namespace of virtual machines)', () => {
    const vm = (n: number) =>
      pod(
        `virt-launcher-vm${n}-abcde`,
        ref('kubevirt.io/v1', 'VirtualMachineInstance', `vm${n}`),
        { 'kubevirt.io': 'virt-launcher', 'vm.kubevirt.io/name': `vm${n}` },
        `10.244.2.${n}`,
        22,
      );
    const id = buildIdentity(snapshot([1, 2, 3, 4, 5].map(vm)));
    expect(id.warnings).toEqual([
      '5 workloads of kind kubevirt.io VirtualMachineInstance have one pod each in the snapshot, whose labels select it (app/VirtualMachineInstance/vm1, app/VirtualMachineInstance/vm2, app/VirtualMachineInstance/vm3, and 2 more); a label their operator gives each pod (a role) would leave out the pods it makes later (label their template microseg.dev/workload=<name> to name their workload)',
    ]);
  });

  it("drop a label whose value is the pod's node name, which a live migration changes", () => {
    const vmi = ref('kubevirt.io/v1', 'VirtualMachineInstance', 'vm1');
    const labels = {
      'kubevirt.io': 'virt-launcher',
      'kubevirt.io/nodeName': 'node-1',
      'vm.kubevirt.io/name': 'vm1',
    };
    const id = buildIdentity(snapshot([pod('virt-launcher-vm1-abcde', vmi, labels, '10.244.1.41', 22)]));
    const vm = id.workloads.get('app/VirtualMachineInstance/vm1')!;
    expect([vm.selector, vm.varyingLabels]).toEqual([
      { matchLabels: { 'kubevirt.io': 'virt-launcher', 'vm.kubevirt.io/name': 'vm1' } },
      ['kubevirt.io/nodeName'],
    ]);
  });

  it("drop a label whose value is the resource's uid, which a restart changes (a new VirtualMachineInstance)", async () => {
    // KubeVirt labels a VM's virt-launcher pod with the uid of its VirtualMachineInstance, which a VM
    // restart replaces by a new one of the same name.
    const launcher = (name: string, uid: string, ip: string) =>
      pod(
        name,
        { ...ref('kubevirt.io/v1', 'VirtualMachineInstance', 'vm1'), uid },
        { 'kubevirt.io': 'virt-launcher', 'kubevirt.io/created-by': uid, 'vm.kubevirt.io/name': 'vm1' },
        ip,
        22,
      );
    const first = launcher('virt-launcher-vm1-abcde', '7c1d5a4e-0b1f-4c3a-9d2e-1f0a2b3c4d5e', '10.244.1.41');
    const before = snapshot([...FRONT, first]);
    const vm = buildIdentity(before).workloads.get('app/VirtualMachineInstance/vm1')!;
    expect([vm.selector, vm.varyingLabels]).toEqual([
      { matchLabels: { 'kubevirt.io': 'virt-launcher', 'vm.kubevirt.io/name': 'vm1' } },
      ['kubevirt.io/created-by'],
    ]);
    const to = (p: Obj): FlowEndpoint => ({
      ip: (p.status as { podIP: string }).podIP,
      namespace: NS,
      pod: (p.metadata as { name: string }).name,
    });
    const ssh = (p: Obj): Flow => ({ ...flow(1, FROM_FRONT, to(p)), port: 22 });
    const r = await runPipeline(before, [ssh(first)]);
    // The VM restarted: a new VirtualMachineInstance vm1, a new uid, a new pod.
    const restarted = launcher(
      'virt-launcher-vm1-fghij',
      '0e9f8d7c-6b5a-4d3c-8b2a-9f8e7d6c5b4a',
      '10.244.1.42',
    );
    const after = snapshot([...FRONT, restarted]);
    after.networkPolicies.push(...r.proposal.policies);
    const report = verifyProposal(
      engineFromSnapshot(after),
      observed([ssh(restarted)]).map((q) => ({ ...q, port: 22 })),
    );
    expect([report.blocked, report.allowedObserved]).toEqual([[], 1]);
  });

  it('are named by a collector that names the resource for a pod the snapshot lacks', () => {
    const id = buildIdentity(before);
    const peer = id.resolve(
      { ip: '10.244.1.14', namespace: NS, pod: 'pg-4', workload: { kind: 'Cluster', name: 'pg' } },
      T0,
    );
    expect(peer.id).toBe('app/Cluster/pg');
  });

  it('are one workload to the what-if commands, by the kind as the owner reference spells it', () => {
    const w = resolveWorkload(before, 'app/Cluster/pg');
    expect([w.name, w.pods]).toEqual(['app/Cluster/pg', ['app/pg-1', 'app/pg-2', 'app/pg-3']]);
  });

  it('are each their own when the owner is a core kind, is no controller, or names no API group', () => {
    const node = ref('v1', 'Node', 'node-1');
    const driver = ref('v1', 'Pod', 'spark-driver');
    const snap = snapshot([
      // Static pods' mirrors: the Node is their controller; a Spark executor's is its driver pod.
      pod('etcd-node-1', node, { component: 'etcd' }, '10.244.1.21', 2379),
      pod('kube-apiserver-node-1', node, { component: 'kube-apiserver' }, '10.244.1.22', 6443),
      pod('exec-1', driver, { 'spark-role': 'executor' }, '10.244.1.23', 7079),
      instance(5, 'replica', ref('postgresql.cnpg.io/v1', 'Cluster', 'pg', { controller: false })),
      instance(6, 'replica', { ...CLUSTER, apiVersion: 'v1' }),
    ]);
    expect([...buildIdentity(snap).workloads.keys()]).toEqual([
      'app/Pod/etcd-node-1',
      'app/Pod/exec-1',
      'app/Pod/kube-apiserver-node-1',
      'app/Pod/pg-5',
      'app/Pod/pg-6',
    ]);
  });
});

describe('a workload whose labels are its pods', () => {
  it('is selected by the labels all its pods carry alike when the snapshot lacks its object', () => {
    // Two revisions of a Deployment mid-rollout, neither the Deployment nor its ReplicaSets listed.
    const rs = (hash: string) => ref('apps/v1', 'ReplicaSet', `web-${hash}`);
    const labels = (hash: string, version: string) => ({ app: 'web', version, 'pod-template-hash': hash });
    const snap = snapshot([
      pod('web-6f7d8c9-aaaaa', rs('6f7d8c9'), labels('6f7d8c9', 'v1'), '10.244.1.31', 8080),
      pod('web-5b4c3d2-bbbbb', rs('5b4c3d2'), labels('5b4c3d2', 'v2'), '10.244.1.32', 8080),
    ]);
    const web = buildIdentity(snap).workloads.get('app/Deployment/web')!;
    expect([web.selector, web.labels, web.varyingLabels]).toEqual([
      { matchLabels: { app: 'web' } },
      { app: 'web' },
      ['version'],
    ]);
  });
});
