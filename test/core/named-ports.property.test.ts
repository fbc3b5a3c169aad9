/**
 * A workload's named ports are those every one of its pods names alike (name, number and protocol):
 * checked against that definition on random pods of one workload, whose containers name ports
 * differently (two revisions, a port renamed or moved).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildIdentity } from '../../src/identity/index.ts';
import { loadSnapshotText } from '../../src/model/snapshot.ts';

const portArb = fc.record({
  name: fc.constantFrom('http', 'web', 'metrics', ''),
  containerPort: fc.constantFrom(80, 8080, 9102),
  protocol: fc.constantFrom('TCP', 'UDP', undefined),
});
const containersArb = fc.array(fc.array(portArb, { maxLength: 3 }), { minLength: 1, maxLength: 2 });

describe('named ports of a workload', () => {
  it('are those every one of its pods names alike', () => {
    fc.assert(
      fc.property(fc.array(containersArb, { minLength: 1, maxLength: 6 }), (pods) => {
        const podObjects = pods.map((containers, i) => ({
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: `p${i}`, namespace: 'a', labels: { 'microseg.dev/workload': 'w' } },
          spec: {
            nodeName: 'node-1',
            containers: containers.map((ports, c) => ({
              name: `c${c}`,
              ports: ports.map((p) => ({
                ...(p.name ? { name: p.name } : {}),
                containerPort: p.containerPort,
                ...(p.protocol ? { protocol: p.protocol } : {}),
              })),
            })),
          },
          status: { phase: 'Running', podIP: `10.244.0.${i + 1}`, podIPs: [{ ip: `10.244.0.${i + 1}` }] },
        }));
        const snap = loadSnapshotText(
          JSON.stringify({
            apiVersion: 'v1',
            kind: 'List',
            items: [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'a' } }, ...podObjects],
          }),
          'cluster.json',
        );
        const w = buildIdentity(snap).workloads.get('a/Workload/w')!;
        const named = (containers: (typeof pods)[number]) =>
          containers
            .flat()
            .flatMap((p) => (p.name ? [`${p.name}/${p.containerPort}/${p.protocol ?? 'TCP'}`] : []));
        const expected = named(pods[0]!).filter((p) => pods.every((c) => named(c).includes(p)));
        expect(w.namedPorts.map((p) => `${p.name}/${p.port}/${p.protocol}`).sort()).toEqual(
          [...expected].sort(),
        );
      }),
      { numRuns: 300 },
    );
  });
});
