/**
 * Dual-stack nodes: a node's IPv6 address is in its pods' `status.hostIPs` (and is a host-network pod's
 * second address), not in `status.hostIP`. The snapshot `kubectl get` of the README lists no Node
 * objects, so those fields are all that tells a node's addresses.
 */
import { describe, expect, it } from 'vitest';
import { buildIdentity } from '../../src/identity/index.ts';
import { compactObject } from '../../src/model/compact.ts';
import { snapshotFromObjects } from '../../src/model/snapshot.ts';
import { engineFromSnapshot } from '../../src/verify/engine.ts';
import { deployment, snapshotOf, type Obj } from './workload-fixture.ts';

const NODE_V4 = '192.168.0.10';
const NODE_V6 = 'fd00:192:168::10';

/** `obj` with its pods' status made dual-stack: pod addresses `v4`/`v6`, the node's both addresses. */
function dualStack(obj: Obj, v6: string): Obj {
  if (obj.kind !== 'Pod') return obj;
  const status = obj.status as { podIP: string };
  return {
    ...obj,
    status: {
      ...status,
      podIPs: [{ ip: status.podIP }, { ip: v6 }],
      hostIP: NODE_V4,
      hostIPs: [{ ip: NODE_V4 }, { ip: NODE_V6 }],
    },
  };
}

/** A host-network DaemonSet pod of kube-system on the node, declaring `port`/TCP. */
function hostAgent(port: number): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'node-agent-x1', namespace: 'kube-system', labels: { app: 'node-agent' } },
    spec: {
      nodeName: 'node-1',
      hostNetwork: true,
      containers: [{ name: 'c', ports: [{ containerPort: port, protocol: 'TCP' }] }],
    },
    status: {
      phase: 'Running',
      podIP: NODE_V4,
      podIPs: [{ ip: NODE_V4 }, { ip: NODE_V6 }],
      hostIP: NODE_V4,
      hostIPs: [{ ip: NODE_V4 }, { ip: NODE_V6 }],
    },
  };
}

const web = () => deployment('app', 'web', '10.244.1.1', 8080).map((o) => dualStack(o, 'fd00:244:1::1'));

describe('a dual-stack node known only from its pods (no Node object)', () => {
  it('compaction keeps the fields that tell the node’s and the pod’s IPv6 addresses', () => {
    const pod = web().find((o) => o.kind === 'Pod')!;
    const status = (compactObject(pod) as { status: Record<string, unknown> }).status;
    expect(status.podIPs).toEqual([{ ip: '10.244.1.1' }, { ip: 'fd00:244:1::1' }]);
    expect(status.hostIPs).toEqual([{ ip: NODE_V4 }, { ip: NODE_V6 }]);
  });

  it('a pod’s connection to the node’s IPv6 address is to the node', () => {
    const id = buildIdentity(snapshotOf('app', web()));
    expect(id.resolve({ ip: NODE_V4 }, 0, 10250).id).toBe(`node:${NODE_V4}`);
    expect(id.resolve({ ip: NODE_V6 }, 0, 10250).id).toBe(`node:${NODE_V6}`);
  });

  it('a connection to a host-network workload’s port on the node’s IPv6 address is to that workload', () => {
    const id = buildIdentity(snapshotOf('app', [...web(), hostAgent(9100)]));
    expect(id.resolve({ ip: NODE_V4 }, 0, 9100, false, 'TCP').id).toBe('kube-system/Pod/node-agent-x1');
    expect(id.resolve({ ip: NODE_V6 }, 0, 9100, false, 'TCP').id).toBe('kube-system/Pod/node-agent-x1');
    // Traffic from the node's IPv6 address is the node's, as from its IPv4 one.
    expect(id.resolve({ ip: NODE_V6 }, 0).id).toBe(`node:${NODE_V6}`);
  });

  it('without status.hostIPs (an older kubelet), a host-network pod’s IPv6 address is its node’s', () => {
    const agent = hostAgent(9100) as { status: Record<string, unknown> };
    delete agent.status.hostIPs;
    const id = buildIdentity(snapshotOf('app', [...web(), agent]));
    expect(id.resolve({ ip: NODE_V6 }, 0, 9100, false, 'TCP').id).toBe('kube-system/Pod/node-agent-x1');
    expect(id.resolve({ ip: NODE_V6 }, 0, 10250, false, 'TCP').id).toBe(`node:${NODE_V6}`);
  });

  it('a port a dual-stack pod publishes (hostPort) is reached at either node address', () => {
    const withHostPort = (objs: Obj[]) =>
      objs.map((o) => {
        if (o.kind !== 'Pod') return o;
        const spec = structuredClone(o.spec) as { containers: { ports: Record<string, unknown>[] }[] };
        spec.containers[0]!.ports[0]!.hostPort = 18080;
        return { ...o, spec };
      });
    const id = buildIdentity(snapshotOf('app', withHostPort(web())));
    const at = (ip: string) => id.resolve({ ip }, 0, 18080, false, 'TCP');
    expect([at(NODE_V4).kind, at(NODE_V6).kind]).toEqual(['service', 'service']);
    const n = id.resolveNumber({ ip: NODE_V6 }, 0, 18080, false, 'TCP');
    expect(id.serviceBackends(n, 18080, 'TCP')?.map((b) => [id.peerAt(b.peer).id, b.port])).toEqual([
      ['app/Deployment/web', 8080],
    ]);
    // A pod of one family publishes nothing on the node's address of the other.
    const v4only = withHostPort(deployment('app', 'web', '10.244.1.1', 8080)).map((o) =>
      o.kind === 'Pod'
        ? { ...o, status: { ...(o.status as object), hostIPs: [{ ip: NODE_V4 }, { ip: NODE_V6 }] } }
        : o,
    );
    const single = buildIdentity(snapshotOf('app', v4only));
    expect(single.resolve({ ip: NODE_V4 }, 0, 18080, false, 'TCP').kind).toBe('service');
    expect(single.resolve({ ip: NODE_V6 }, 0, 18080, false, 'TCP').id).toBe(`node:${NODE_V6}`);
  });

  it('the engine, reading a compacted snapshot, takes the IPv6 address for the node', () => {
    const objects = [
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'app' } },
      ...web(),
      {
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: { name: 'deny', namespace: 'app' },
        spec: { podSelector: {}, policyTypes: ['Ingress'] },
      },
    ];
    const snap = snapshotFromObjects(
      objects.map((o) => compactObject(o)),
      'cluster.json',
    );
    const engine = engineFromSnapshot(snap);
    const to = { namespace: 'app', pod: 'web-7d9f-x1x1x' };
    // The kubelet's probes from the node's addresses are admitted (nodeTraffic=allow); another node's are not.
    const v6 = engine.evaluate({ from: { ip: NODE_V6 }, to, port: 8080 });
    expect([v6.allowed, v6.from]).toEqual([true, `node node-1 (${NODE_V6})`]);
    expect(engine.evaluate({ from: { ip: 'fd00:192:168::11' }, to, port: 8080 }).allowed).toBe(false);
  });
});

describe('a host-network pod that lists only its IPv4 address on a dual-stack node', () => {
  /** The agent with podIPs of IPv4 only; `status` replaces its node addresses. */
  const v4Agent = (status: Record<string, unknown>): Obj => {
    const agent = hostAgent(9100) as { status: Record<string, unknown> };
    return { ...agent, status: { phase: 'Running', podIP: NODE_V4, podIPs: [{ ip: NODE_V4 }], ...status } };
  };
  const node = (addresses: [string, string][]): Obj => ({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: 'node-1' },
    status: { addresses: addresses.map(([type, address]) => ({ type, address })) },
  });
  const agentId = 'kube-system/Pod/node-agent-x1';

  it('holds the node’s IPv6 address of status.hostIPs: a connection to it on the agent’s port is the agent’s', () => {
    const agent = v4Agent({ hostIP: NODE_V4, hostIPs: [{ ip: NODE_V4 }, { ip: NODE_V6 }] });
    const id = buildIdentity(snapshotOf('app', [...web(), agent]));
    expect(id.workloads.get(agentId)?.hostIPs).toEqual([NODE_V4, NODE_V6]);
    expect(id.resolve({ ip: NODE_V6 }, 0, 9100, false, 'TCP').id).toBe(agentId);
    expect(id.resolve({ ip: NODE_V4 }, 0, 9100, false, 'TCP').id).toBe(agentId);
    expect(id.resolve({ ip: NODE_V6 }, 0, 10250, false, 'TCP').id).toBe(`node:${NODE_V6}`);
  });

  it('holds the addresses of its Node object (spec.nodeName) when its status tells only the IPv4 one', () => {
    const agent = v4Agent({ hostIP: NODE_V4 });
    const other = { ...node([['InternalIP', 'fd00:192:168::11']]), metadata: { name: 'node-2' } };
    const snap = snapshotOf('app', [
      ...web(),
      agent,
      node([
        ['InternalIP', NODE_V4],
        ['InternalIP', NODE_V6],
        ['Hostname', 'node-1'],
      ]),
      other,
    ]);
    const id = buildIdentity(snap);
    expect(id.workloads.get(agentId)?.hostIPs).toEqual([NODE_V4, NODE_V6]);
    expect(id.resolve({ ip: NODE_V6 }, 0, 9100, false, 'TCP').id).toBe(agentId);
    // Another node's address is not the agent's: it runs on node-1 alone.
    expect(id.resolve({ ip: 'fd00:192:168::11' }, 0, 9100, false, 'TCP').id).toBe('node:fd00:192:168::11');
  });
});

describe('a Node address that is a name, not an IP', () => {
  it('is never taken for a host-network pod’s address, even a name of hexadecimal letters only', () => {
    const agent = hostAgent(9100);
    const node: Obj = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: 'node-1' },
      status: {
        addresses: [
          { type: 'InternalIP', address: NODE_V4 },
          { type: 'Hostname', address: 'cafe' },
          { type: 'InternalDNS', address: 'dead.beef' },
          { type: 'ExternalDNS', address: 'fade' },
        ],
      },
    };
    const id = buildIdentity(snapshotOf('app', [...web(), agent, node]));
    // A name in Workload.hostIPs became an ipBlock `cafe/128`, which the API server refuses.
    expect(id.workloads.get('kube-system/Pod/node-agent-x1')?.hostIPs).toEqual([NODE_V4, NODE_V6]);
  });
});
