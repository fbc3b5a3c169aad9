/**
 * A pod (not on the host network) that publishes a container port on its node (`hostPort`): a connection
 * to the node's address on that port is translated to the pod, on its container port, before any policy
 * applies (a tracing agent's DaemonSet that applications reach at their node's address).
 */
import { describe, expect, it } from 'vitest';
import { runPipeline } from '../../src/pipeline.ts';
import { deployment, pod, ref, snapshotOf, tcpFlow, type Obj } from './workload-fixture.ts';

/** A DaemonSet `agent` whose pod on node-1 (192.168.0.10) publishes container port 4318 as `hostPort`. */
function agent(hostPort: number, phase = 'Running'): Obj[] {
  const labels = { app: 'agent' };
  const p = pod('app', 'agent-x7k2p', ref('apps/v1', 'DaemonSet', 'agent'), labels, '10.244.1.9', 4318) as {
    spec: { containers: { ports: Record<string, unknown>[] }[] };
    status: { phase: string };
  };
  p.spec.containers[0]!.ports[0]!.hostPort = hostPort;
  p.status.phase = phase;
  return [
    {
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: { name: 'agent', namespace: 'app', uid: 'uid-DaemonSet-agent' },
      spec: {
        selector: { matchLabels: labels },
        template: { metadata: { labels }, spec: { containers: [{ name: 'c' }] } },
      },
    },
    p,
  ];
}

const web = { ip: '10.244.1.1', namespace: 'app', pod: 'web-7d9f-x1x1x' };

describe('a connection to a node address on a port a pod publishes there (hostPort)', () => {
  it('is an edge to the pod’s workload on its container port, which the rules admit', async () => {
    const snap = snapshotOf('app', [...deployment('app', 'web', '10.244.1.1', 8080), ...agent(14318)]);
    const r = await runPipeline(snap, [tcpFlow(1, web, { ip: '192.168.0.10' }, 14318)]);
    expect(r.graph.edges.map((e) => e.id)).toEqual(['app/Deployment/web->app/DaemonSet/agent:4318/TCP']);
    const agentPolicy = r.proposal.policies.find((p) => p.metadata.name === 'microseg-agent')!;
    expect(agentPolicy.spec.ingress).toEqual([
      { from: [{ podSelector: { matchLabels: { app: 'web' } } }], ports: [{ protocol: 'TCP', port: 4318 }] },
    ]);
  });

  it('stays the node on another port, on another protocol, or when the pod has ended', async () => {
    const snap = snapshotOf('app', [...deployment('app', 'web', '10.244.1.1', 8080), ...agent(4318)]);
    const r = await runPipeline(snap, [
      tcpFlow(1, web, { ip: '192.168.0.10' }, 10250),
      { ...tcpFlow(2, web, { ip: '192.168.0.10' }, 4318), protocol: 'UDP' },
    ]);
    expect(r.graph.edges.map((e) => e.id).sort()).toEqual([
      'app/Deployment/web->node:192.168.0.10:10250/TCP',
      'app/Deployment/web->node:192.168.0.10:4318/UDP',
    ]);
    const ended = snapshotOf('app', [
      ...deployment('app', 'web', '10.244.1.1', 8080),
      ...agent(4318, 'Succeeded'),
    ]);
    const e = await runPipeline(ended, [tcpFlow(1, web, { ip: '192.168.0.10' }, 4318)]);
    expect(e.graph.edges.map((x) => x.id)).toEqual(['app/Deployment/web->node:192.168.0.10:4318/TCP']);
  });
});
