/**
 * Dual-stack nodes: a node's IPv6 address is in its pods' `status.hostIPs` (and is a host-network pod's
 * second address), not in `status.hostIP`. The snapshot `kubectl get` of the README lists no Node
 * objects, so those fields are all that tells a node's addresses.
 */
import { describe, expect, it } from 'vitest';
import { compactObject } from '../../src/model/compact.ts';
import { snapshotFromObjects } from '../../src/model/snapshot.ts';
import { engineFromSnapshot } from '../../src/verify/engine.ts';
import { deployment, type Obj } from './workload-fixture.ts';

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

const web = () => deployment('app', 'web', '10.244.1.1', 8080).map((o) => dualStack(o, 'fd00:244:1::1'));

describe('a dual-stack node known only from its pods (no Node object)', () => {
  it('compaction keeps the fields that tell the node’s and the pod’s IPv6 addresses', () => {
    const pod = web().find((o) => o.kind === 'Pod')!;
    const status = (compactObject(pod) as { status: Record<string, unknown> }).status;
    expect(status.podIPs).toEqual([{ ip: '10.244.1.1' }, { ip: 'fd00:244:1::1' }]);
    expect(status.hostIPs).toEqual([{ ip: NODE_V4 }, { ip: NODE_V6 }]);
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
