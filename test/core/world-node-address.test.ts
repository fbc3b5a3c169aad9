/**
 * A node's address that Hubble labels `reserved:world`: NodePort traffic forwarded from another node and
 * SNATed to that node's address, which Cilium still takes (and enforces) as the outside client's.
 * The label is trusted over the address (README, Identity), so the peer is the world address, and the
 * proposal admits it, as an ipBlock, where a node peer from another node gets no rule and is blocked.
 */
import { describe, expect, it } from 'vitest';
import { buildIdentity } from '../../src/identity/index.ts';
import { runPipeline } from '../../src/pipeline.ts';
import { deployment, snapshotOf, tcpFlow } from './workload-fixture.ts';

// The fixture's pods run on node-1, whose address (status.hostIP) is 192.168.0.10.
const NODE = '192.168.0.10';
const web = { ip: '10.244.1.1', namespace: 'app', pod: 'web-7d9f-x1x1x' };

describe('a node address labelled reserved:world', () => {
  it('is a world peer; unlabelled, or labelled host or remote-node, it stays the node', () => {
    const id = buildIdentity(snapshotOf('app', deployment('app', 'web', '10.244.1.1', 8080)));
    expect(id.resolve({ ip: NODE, reserved: 'world' }, 0).id).toBe(`world:${NODE}`);
    expect(id.resolve({ ip: NODE }, 0).id).toBe(`node:${NODE}`);
    expect(id.resolve({ ip: NODE, reserved: 'remote-node' }, 0).id).toBe(`node:${NODE}`);
    expect(id.resolve({ ip: NODE, reserved: 'host' }, 0).id).toBe(`node:${NODE}`);
  });

  it('gets an ingress rule admitting the address on the port it used', async () => {
    const snap = snapshotOf('app', deployment('app', 'web', '10.244.1.1', 8080));
    const r = await runPipeline(snap, [tcpFlow(1, { ip: NODE, reserved: 'world' }, web, 8080)]);
    expect(r.graph.edges.map((e) => e.id)).toEqual([`world:${NODE}->app/Deployment/web:8080/TCP`]);
    const policy = r.proposal.policies.find((p) => p.metadata.name === 'microseg-web')!;
    expect(policy.spec.ingress).toEqual([
      { from: [{ ipBlock: { cidr: `${NODE}/32` } }], ports: [{ protocol: 'TCP', port: 8080 }] },
    ]);
  });
});
