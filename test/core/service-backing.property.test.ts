/**
 * The workloads behind a Service are those of the pods of its namespace its selector selects, whichever
 * way identity finds those pods (it looks them up by label rather than testing every pod of the
 * namespace): checked against that definition, applied pod by pod, on random clusters. A LoadBalancer
 * Service's backends get the `load-balanced` role; one that selects no pod is unbacked. Pods that have
 * ended back a Service only when every pod it selects has ended. A pod listed twice (two files giving it)
 * is of the workload of the last listed, both times.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildIdentity } from '../../src/identity/index.ts';
import { loadSnapshotText } from '../../src/model/snapshot.ts';

const NAMESPACES = ['a', 'b'];
const KEYS = ['app', 'tier', 'team'];
const VALUES = ['x', 'y', 'z'];

const labelsArb = fc.dictionary(fc.constantFrom(...KEYS), fc.constantFrom(...VALUES), { maxKeys: 3 });

const clusterArb = fc.record({
  pods: fc.array(
    fc.record({
      ns: fc.constantFrom(...NAMESPACES),
      name: fc.integer({ min: 0, max: 30 }),
      labels: labelsArb,
      workload: fc.option(fc.constantFrom('w1', 'w2'), { nil: undefined }),
      ended: fc.boolean(),
    }),
    { maxLength: 25 },
  ),
  services: fc.array(fc.record({ ns: fc.constantFrom(...NAMESPACES), selector: labelsArb }), {
    maxLength: 12,
  }),
});

describe('Service backends', () => {
  it('are the workloads of the pods its selector selects in its namespace', () => {
    fc.assert(
      fc.property(clusterArb, ({ pods, services }) => {
        const podObjects = pods.map((p, i) => ({
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: {
            name: `p${p.name}`,
            namespace: p.ns,
            labels: { ...p.labels, ...(p.workload ? { 'microseg.dev/workload': p.workload } : {}) },
          },
          spec: { nodeName: 'node-1', containers: [{ name: 'c' }] },
          status: {
            phase: p.ended ? 'Succeeded' : 'Running',
            podIP: `10.244.0.${i + 1}`,
            podIPs: [{ ip: `10.244.0.${i + 1}` }],
            startTime: '2026-11-01T00:00:00Z',
          },
        }));
        const serviceObjects = services.map((s, i) => ({
          apiVersion: 'v1',
          kind: 'Service',
          metadata: { name: `s${i}`, namespace: s.ns },
          spec: {
            type: 'LoadBalancer',
            clusterIP: `10.96.0.${i + 1}`,
            selector: s.selector,
            ports: [{ port: 80, protocol: 'TCP' }],
          },
        }));
        const namespaces = NAMESPACES.map((name) => ({
          apiVersion: 'v1',
          kind: 'Namespace',
          metadata: { name },
        }));
        const snap = loadSnapshotText(
          JSON.stringify({
            apiVersion: 'v1',
            kind: 'List',
            items: [...namespaces, ...podObjects, ...serviceObjects],
          }),
          'cluster.json',
        );
        const identity = buildIdentity(snap);

        // A pod's workload: the last listed of its key's.
        const idOf = new Map<string, string>();
        for (const p of pods)
          idOf.set(
            `${p.ns}/p${p.name}`,
            p.workload ? `${p.ns}/Workload/${p.workload}` : `${p.ns}/Pod/p${p.name}`,
          );
        const balanced = new Set<string>();
        const unbacked = new Set<string>();
        services.forEach((s, i) => {
          const selected = pods
            .map((p) => ({ ...p, id: idOf.get(`${p.ns}/p${p.name}`)! }))
            .filter(
              (p) =>
                p.ns === s.ns &&
                Object.keys(s.selector).length > 0 &&
                Object.entries(s.selector).every(([k, v]) => p.labels[k] === v),
            );
          const running = selected.filter((p) => !p.ended);
          const backing = running.length > 0 ? running : selected;
          for (const p of backing) balanced.add(p.id);
          if (backing.length === 0) unbacked.add(`10.96.0.${i + 1}`);
        });
        const withRole = [...identity.workloads.values()]
          .filter((w) => w.roles.includes('load-balanced'))
          .map((w) => w.id);
        expect(withRole.sort()).toEqual([...balanced].sort());
        expect([...identity.unbackedClusterIPs.keys()].sort()).toEqual([...unbacked].sort());
      }),
      { numRuns: 300 },
    );
  });
});
