/** Flows to observed connections, and the refusal message for a proposal that blocks traffic. */
import { describe, expect, it } from 'vitest';
import type { Flow } from '../../src/flows/types.ts';
import type { NetworkPolicy } from '../../src/model/k8s.ts';
import { buildEngine } from '../../src/verify/engine.ts';
import { connectionsFromFlows, describeBlocked } from '../../src/verify/flows.ts';
import { verifyProposal } from '../../src/verify/reach.ts';
import { modelNamespaces, modelPods } from './e2e-model.ts';

const flow = (
  src: Flow['src'],
  dst: Flow['dst'],
  port: number,
  protocol: Flow['protocol'] = 'TCP',
): Flow => ({
  time: 0,
  src,
  dst,
  port,
  protocol,
  verdict: 'FORWARDED',
  input: 'generic',
});

describe('connectionsFromFlows', () => {
  it('keeps pods, label sets and IPs; skips ICMP and unidentified ends', () => {
    const flows = [
      flow({ namespace: 'x', pod: 'a' }, { namespace: 'y', labels: ['pod=b'] }, 80),
      flow({ ip: '8.8.8.8' }, { namespace: 'x', pod: 'b' }, 81, 'UDP'),
      flow({ namespace: 'x', pod: 'a' }, { ip: '1.1.1.1' }, 8, 'ICMPv4'),
      flow({}, { namespace: 'x', pod: 'b' }, 80),
    ];
    const { connections, skipped } = connectionsFromFlows(flows);
    expect(connections.map((c) => [c.from, c.to, c.port, c.protocol])).toEqual([
      [{ namespace: 'x', pod: 'a' }, { namespace: 'y', labels: { pod: 'b' } }, 80, 'TCP'],
      [{ ip: '8.8.8.8' }, { namespace: 'x', pod: 'b' }, 81, 'UDP'],
    ]);
    expect(skipped.map((s) => s.reason)).toEqual([
      'protocol ICMPv4 is not governed by NetworkPolicy',
      'the source has no pod, labels or IP',
    ]);
  });
  it('feeds verifyProposal and names what a proposal would block', () => {
    const deny = {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'deny', namespace: 'y' },
      spec: { podSelector: {} },
    } as NetworkPolicy;
    const engine = buildEngine({ namespaces: modelNamespaces(), pods: modelPods(), networkPolicies: [deny] });
    const { connections } = connectionsFromFlows([
      flow({ namespace: 'x', pod: 'a' }, { namespace: 'y', labels: ['pod=b'] }, 80),
    ]);
    const report = verifyProposal(engine, connections);
    expect(describeBlocked(report)).toBe(
      [
        'the proposal blocks 1 observed connection(s):',
        '  x/a -> y/{pod=b} TCP/80: denied: ingress to y/Pod/b: isolated by y/deny and no ingress rule matches',
      ].join('\n'),
    );
  });
});
