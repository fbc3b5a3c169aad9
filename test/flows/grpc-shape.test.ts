import { fileURLToPath } from 'node:url';
import * as protoLoader from '@grpc/proto-loader';
import { describe, expect, it } from 'vitest';
import { normalizeHubbleFlow } from '../../src/flows/hubble.ts';

// Encode a GetFlowsResponse with the project's observer.proto and decode it the way the gRPC client
// does, so normalizeHubbleFlow is tested on real decoded shapes rather than hand-written ones.
const PROTO_DIR = fileURLToPath(new URL('../../proto', import.meta.url));

describe('normalizeHubbleFlow on objects decoded by @grpc/proto-loader', () => {
  const def = protoLoader.loadSync('observer.proto', {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: false,
    oneofs: true,
    includeDirs: [PROTO_DIR],
  });
  const getFlows = (def['observer.Observer'] as protoLoader.ServiceDefinition).GetFlows!;

  function roundTrip(response: object): { flow: unknown } {
    const bytes = getFlows.responseSerialize(response);
    return getFlows.responseDeserialize(bytes) as { flow: unknown };
  }

  it('reply flow with Timestamp, BoolValue and enum names', () => {
    const decoded = roundTrip({
      flow: {
        time: { seconds: 1767225600, nanos: 987_654_321 },
        verdict: 'DROPPED',
        drop_reason_desc: 'POLICY_DENIED',
        IP: { source: '10.0.0.2', destination: '10.0.0.1', ipVersion: 'IPv4' },
        l4: { TCP: { source_port: 5432, destination_port: 41000, flags: { ACK: true } } },
        source: {
          namespace: 'db',
          pod_name: 'pg-0',
          labels: ['k8s:app=pg'],
          workloads: [{ name: 'pg', kind: 'StatefulSet' }],
        },
        destination: {
          namespace: 'shop',
          pod_name: 'cart-1',
          labels: ['k8s:app=cart', 'k8s:io.kubernetes.pod.namespace=shop'],
        },
        source_service: { name: 'pg', namespace: 'db' },
        is_reply: { value: true },
        trace_reason: 'REPLY',
      },
      node_name: 'n1',
    });
    const r = normalizeHubbleFlow(decoded.flow);
    expect(r).toMatchObject({ kind: 'flow', flipped: true, rule: 'is_reply' });
    expect(r.kind === 'flow' && r.flow).toEqual({
      time: Date.parse('2026-01-01T00:00:00.987Z'),
      src: { ip: '10.0.0.1', namespace: 'shop', pod: 'cart-1', labels: ['app=cart'] },
      dst: {
        ip: '10.0.0.2',
        namespace: 'db',
        pod: 'pg-0',
        workload: { kind: 'StatefulSet', name: 'pg' },
        labels: ['app=pg'],
        service: { namespace: 'db', name: 'pg' },
      },
      protocol: 'TCP',
      port: 5432,
      srcPort: 41000,
      verdict: 'DROPPED',
      dropReason: 'POLICY_DENIED',
      input: 'hubble',
    });
  });

  it('ICMPv6 echo request and an L7 DNS record', () => {
    const icmp = roundTrip({
      flow: {
        time: { seconds: 1, nanos: 0 },
        verdict: 'FORWARDED',
        IP: { source: 'fd00::1', destination: 'fd00::2', ipVersion: 'IPv6' },
        l4: { ICMPv6: { type: 128 } },
      },
    });
    expect(normalizeHubbleFlow(icmp.flow)).toMatchObject({
      kind: 'flow',
      rule: 'icmp',
      flow: { protocol: 'ICMPv6', port: 128, time: 1000 },
    });
    const dns = roundTrip({
      flow: {
        time: { seconds: 2 },
        verdict: 'FORWARDED',
        IP: { source: '10.0.0.5', destination: '10.0.0.10' },
        l4: { UDP: { source_port: 50000, destination_port: 53 } },
        Type: 'L7',
        l7: { type: 'REQUEST', dns: { query: 'example.com.' } },
      },
    });
    expect(normalizeHubbleFlow(dns.flow)).toMatchObject({
      kind: 'flow',
      rule: 'l7',
      flow: { protocol: 'UDP', port: 53, srcPort: 50000, dnsQuery: 'example.com' },
    });
  });
});
