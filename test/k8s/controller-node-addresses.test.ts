/**
 * A host-network workload's rules in the controller, against a real kube-apiserver: its node's Node
 * object lists an InternalIP and an ExternalIP (as a cloud node does), and the ProposedNetworkPolicies
 * of the pod it talks with name the InternalIP (its pod's status.hostIP) only, never the public
 * ExternalIP, which no connection between a pod and it shows.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KubeConfig } from '@kubernetes/client-node';
import { createNamespace, eventually, sharedCluster, uniqueName } from '../cluster/index.ts';
import type { ProposedNetworkPolicy } from '../../src/controller/api.ts';
import type { RunningController } from '../controller/k8s-helpers.ts';
import {
  applyTeamSegmentation,
  createAppPods,
  flow,
  install,
  listJson,
  mergePatch,
  scopedTo,
  startLeader,
  waitSeg,
} from '../controller/k8s-helpers.ts';

const cluster = sharedCluster();
const ns = uniqueName('hostnet');
const team = uniqueName('team');
const segName = uniqueName('seg');
const node = uniqueName('node');
const INTERNAL = '10.93.4.11';
const EXTERNAL = '203.0.113.41';
const CART = '10.93.0.2';
let admin: KubeConfig;
let ctrl: RunningController;

const pnpPath = `/apis/microseg.dev/v1alpha1/namespaces/${ns}/proposednetworkpolicies`;

beforeAll(async () => {
  await install(cluster);
  admin = await cluster.kubeConfig();
  const created = await cluster.request('POST', '/api/v1/nodes', {
    body: { apiVersion: 'v1', kind: 'Node', metadata: { name: node } },
  });
  expect(created.status, created.text).toBe(201);
  await mergePatch(cluster, `/api/v1/nodes/${node}/status`, {
    status: {
      addresses: [
        { type: 'InternalIP', address: INTERNAL },
        { type: 'ExternalIP', address: EXTERNAL },
        { type: 'Hostname', address: node },
      ],
    },
  });
  await createNamespace(admin, ns, { team });
  await createAppPods(admin, ns, [['cart', CART]], { http: 8080 });
  // The host-network agent on the node: its address is the node's InternalIP, as a kubelet writes it.
  const pod = await cluster.request('POST', `/api/v1/namespaces/${ns}/pods`, {
    body: {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'agent', labels: { app: 'agent' } },
      spec: {
        nodeName: node,
        hostNetwork: true,
        automountServiceAccountToken: false,
        containers: [
          {
            name: 'main',
            image: 'registry.k8s.io/pause:3.10',
            ports: [{ name: 'metrics', containerPort: 9100, protocol: 'TCP' }],
          },
        ],
      },
    },
  });
  expect(pod.status, pod.text).toBe(201);
  await mergePatch(cluster, `/api/v1/namespaces/${ns}/pods/agent/status`, {
    status: {
      phase: 'Running',
      podIP: INTERNAL,
      podIPs: [{ ip: INTERNAL }],
      hostIP: INTERNAL,
      hostIPs: [{ ip: INTERNAL }],
      startTime: new Date().toISOString(),
    },
  });
  ctrl = await startLeader(cluster, { ...scopedTo(segName), identity: 'node-addresses' });
}, 120_000);

afterAll(async () => {
  await ctrl?.stop();
  await cluster.request('DELETE', `/api/v1/nodes/${node}`);
});

describe('a host-network workload on a node with an ExternalIP', () => {
  it("is written in the proposal at its node's InternalIP, never at the ExternalIP", async () => {
    await eventually('node read', () =>
      ctrl.manager.cache.nodes.list().some((n) => n.metadata.name === node),
    );
    await applyTeamSegmentation(cluster, segName, team);
    await waitSeg(cluster, segName, 'Learning', (s) => s.status?.phase === 'Learning');
    const res = await ctrl.push([
      // The agent scrapes cart, and cart reaches the agent's metrics port at the node's address.
      flow(`${ns}/agent`, `${ns}/cart`, 8080, { src: { ip: INTERNAL, namespace: ns, pod: 'agent' } }),
      flow(`${ns}/cart`, `${ns}/agent`, 9100, { dst: { ip: INTERNAL } }),
    ]);
    expect(res.status, await res.text()).toBe(202);
    await waitSeg(cluster, segName, 'edges', (s) => (s.status?.edges ?? 0) === 2);
    const cart = await eventually('the proposal for cart, with both rules', async () => {
      const items = await listJson<ProposedNetworkPolicy>(cluster, pnpPath);
      const p = items.find((i) => i.spec.podSelector?.matchLabels?.app === 'cart');
      return p && (p.spec.ingress ?? []).length > 0 && (p.spec.egress ?? []).length > 0 ? p : undefined;
    });
    const blocks = (rules: { from?: unknown[]; to?: unknown[] }[] | undefined) =>
      (rules ?? []).flatMap((r) =>
        ((r.from ?? r.to ?? []) as { ipBlock?: { cidr: string } }[]).flatMap((p) =>
          p.ipBlock ? [p.ipBlock.cidr] : [],
        ),
      );
    expect(blocks(cart.spec.ingress)).toEqual([`${INTERNAL}/32`]);
    expect(blocks(cart.spec.egress)).toContain(`${INTERNAL}/32`);
    expect(cart.spec.ingress).toEqual([
      { from: [{ ipBlock: { cidr: `${INTERNAL}/32` } }], ports: [{ protocol: 'TCP', port: 8080 }] },
    ]);
    // No proposal of the namespace names the ExternalIP.
    const all = await listJson<ProposedNetworkPolicy>(cluster, pnpPath);
    expect(JSON.stringify(all.map((p) => p.spec))).not.toContain(EXTERNAL);
  });
});
