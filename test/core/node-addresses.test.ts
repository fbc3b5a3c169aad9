/**
 * The one reading of a Node object's status.addresses that identity, the semantics engine and the
 * isolation leak check share (src/model/nodes.ts).
 */
import { describe, expect, it } from 'vitest';
import type { OtherObject } from '../../src/model/k8s.ts';
import { nodeIPAddresses } from '../../src/model/nodes.ts';
import { formatAddr } from '../../src/verify/ip.ts';

const node = (addresses: unknown): OtherObject => ({
  apiVersion: 'v1',
  kind: 'Node',
  metadata: { name: 'node-a' },
  status: { addresses },
});

describe('nodeIPAddresses', () => {
  it('gives the IP addresses in order, repeats kept, each with its type and whether it is an InternalIP', () => {
    const got = nodeIPAddresses(
      node([
        { type: 'Hostname', address: 'node-a' },
        { type: 'InternalIP', address: '10.0.0.11' },
        { type: 'InternalDNS', address: 'cafe' },
        { type: 'ExternalIP', address: '203.0.113.10' },
        { type: 'InternalIP', address: 'FD00:192:168:0:0:0:0:11' },
        { address: '192.0.2.7' },
        { type: 'Hostname', address: '10.0.0.11' },
        { type: 'InternalIP', address: '::ffff:10.0.0.12' },
        { type: 'InternalIP' },
        { type: 'InternalIP', address: '' },
        null,
      ]),
    );
    expect(got.map((a) => [a.text, formatAddr(a.addr), a.type, a.internal])).toEqual([
      ['10.0.0.11', '10.0.0.11', 'InternalIP', true],
      ['203.0.113.10', '203.0.113.10', 'ExternalIP', false],
      ['FD00:192:168:0:0:0:0:11', 'fd00:192:168::11', 'InternalIP', true],
      ['192.0.2.7', '192.0.2.7', undefined, false],
      ['10.0.0.11', '10.0.0.11', 'Hostname', false],
      ['::ffff:10.0.0.12', '10.0.0.12', 'InternalIP', true],
    ]);
  });

  it('gives none for a Node without addresses', () => {
    expect(nodeIPAddresses(node(null))).toEqual([]);
    expect(nodeIPAddresses(node(undefined))).toEqual([]);
    expect(nodeIPAddresses({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n' } })).toEqual([]);
  });
});
