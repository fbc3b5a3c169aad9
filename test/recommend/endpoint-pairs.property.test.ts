/**
 * `endpointPairs` asks the engine about one pair of two addresses where the cross product of an edge's
 * endpoints has many (an edge between two host-network DaemonSets: every node address of one against
 * every node address of the other). On random small clusters (nodes with and without Node objects, pods
 * on and off the host network with host ports, Services whose addresses and ports the engine refuses,
 * NetworkPolicies with ipBlocks and excepts of both families, AdminNetworkPolicies with node and network
 * peers, every engine option), the pairs it gives must answer as the whole cross product does: the
 * same pairs blocked, the same first one, whether any pair is answered at all, and the same replay.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { NetworkPolicy } from '../../src/model/k8s.ts';
import { snapshotFromObjects } from '../../src/model/snapshot.ts';
import { replayPairs } from '../../src/policy/audit.ts';
import { endpointPairs } from '../../src/policy/prove.ts';
import type { Engine } from '../../src/verify/engine.ts';
import { engineFromSnapshot } from '../../src/verify/engine.ts';
import type { Endpoint, EngineOptions, L4Protocol, Verdict } from '../../src/verify/types.ts';

const NODES = [
  { name: 'n1', ips: ['192.168.0.1', 'fd00::1'] },
  { name: 'n2', ips: ['192.168.0.2', 'fd00::2'] },
  { name: 'n3', ips: ['192.168.1.3'] },
];
const PODS = [
  { ns: 'x', name: 'p1', node: 'n1', ips: ['10.0.0.1', 'fd10::1'] },
  { ns: 'x', name: 'p2', node: 'n2', ips: ['10.0.1.2'] },
  { ns: 'y', name: 'p3', node: 'n3', ips: ['10.0.0.3', 'fd10::3'] },
];
const HOST_PODS = [
  { ns: 'x', name: 'h1', node: 'n1' },
  { ns: 'y', name: 'h2', node: 'n2' },
];
const OUTSIDE = ['203.0.113.5', '198.51.100.7', '2001:db8::5'];
const SERVICE_IPS = ['10.96.0.1', 'fd96::1'];
const PORTS = [80, 8080, 9100, 30080];
/** Blocks of both families, each with the blocks inside it an except may name. */
const CIDRS: [string, string[]][] = [
  ['0.0.0.0/0', ['192.168.0.0/16', '192.168.0.2/32', '10.0.0.0/8', '203.0.113.0/24']],
  ['192.168.0.0/16', ['192.168.0.0/24', '192.168.0.2/32', '192.168.1.3/32']],
  ['192.168.0.0/24', ['192.168.0.2/32', '192.168.0.1/32']],
  ['192.168.0.2/32', []],
  ['10.0.0.0/8', ['10.0.0.0/24', '10.0.1.2/32']],
  ['203.0.113.0/24', ['203.0.113.5/32']],
  ['::/0', ['fd00::/64', 'fd00::2/128', 'fd10::/64', '2001:db8::/32']],
  ['fd00::/64', ['fd00::2/128', 'fd00::1/128']],
  ['fd10::/64', ['fd10::3/128']],
  ['2001:db8::/32', ['2001:db8::5/128']],
];
const ADDRESSES = [...NODES.flatMap((n) => n.ips), ...PODS.flatMap((p) => p.ips), ...OUTSIDE, ...SERVICE_IPS];
const ENDPOINTS: Endpoint[] = [
  ...ADDRESSES.map((ip) => ({ ip })),
  ...[...PODS, ...HOST_PODS].map((p) => ({ namespace: p.ns, pod: p.name })),
  { namespace: 'x', pod: 'ghost' },
  { namespace: 'x', labels: { app: 'a' } },
];

const app = fc.constantFrom('a', 'b', 'h');
const port = fc.constantFrom(...PORTS);
const protocol = fc.constantFrom<L4Protocol>('TCP', 'UDP');
const ipBlock = fc
  .constantFrom(...CIDRS)
  .chain(([cidr, inside]) =>
    fc
      .subarray(inside, { maxLength: Math.min(2, inside.length) })
      .map((except) => ({ ipBlock: except.length > 0 ? { cidr, except } : { cidr } })),
  );
const peer = fc.oneof(
  { weight: 4, arbitrary: ipBlock },
  { weight: 1, arbitrary: app.map((a) => ({ podSelector: { matchLabels: { app: a } } })) },
  { weight: 1, arbitrary: fc.constant({ namespaceSelector: {} }) },
);
const rule = fc.record(
  {
    peers: fc.array(peer, { minLength: 1, maxLength: 3 }),
    ports: fc.array(fc.record({ port, protocol }), { maxLength: 2 }),
  },
  { requiredKeys: ['peers'] },
);
const networkPolicy = (i: number) =>
  fc
    .record({
      ns: fc.constantFrom('x', 'y'),
      selector: fc.oneof(
        fc.constant({}),
        app.map((a) => ({ matchLabels: { app: a } })),
      ),
      ingress: fc.option(fc.array(rule, { maxLength: 2 }), { nil: undefined }),
      egress: fc.option(fc.array(rule, { maxLength: 2 }), { nil: undefined }),
    })
    .map(({ ns, selector, ingress, egress }): NetworkPolicy => ({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: `np-${i}`, namespace: ns },
      spec: {
        podSelector: selector,
        policyTypes: [...(ingress ? ['Ingress' as const] : []), ...(egress ? ['Egress' as const] : [])],
        ...(ingress
          ? { ingress: ingress.map((r) => ({ from: r.peers, ...(r.ports ? { ports: r.ports } : {}) })) }
          : {}),
        ...(egress
          ? { egress: egress.map((r) => ({ to: r.peers, ...(r.ports ? { ports: r.ports } : {}) })) }
          : {}),
      },
    }));
const networkPolicies = fc
  .integer({ min: 0, max: 3 })
  .chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => networkPolicy(i))));
/** An AdminNetworkPolicy on egress to nodes (by zone) or networks, or none. */
const adminPolicy = fc.option(
  fc
    .record({
      action: fc.constantFrom('Allow', 'Deny', 'Pass'),
      to: fc.oneof(
        fc.constantFrom('a', 'b').map((zone) => ({ nodes: { matchLabels: { zone } } })),
        fc.constant({ nodes: {} }),
        fc
          .subarray(
            CIDRS.map(([c]) => c),
            { minLength: 1, maxLength: 2 },
          )
          .map((networks) => ({ networks })),
      ),
    })
    .map(({ action, to }) => ({
      apiVersion: 'policy.networking.k8s.io/v1alpha1',
      kind: 'AdminNetworkPolicy',
      metadata: { name: 'anp' },
      spec: { priority: 1, subject: { namespaces: {} }, egress: [{ action, to: [to] }] },
    })),
  { nil: undefined },
);

const cluster = fc.record({
  nodeObjects: fc.array(fc.option(fc.constantFrom('a', 'b'), { nil: undefined }), {
    minLength: NODES.length,
    maxLength: NODES.length,
  }),
  podApps: fc.array(app, { minLength: PODS.length, maxLength: PODS.length }),
  hostPorts: fc.array(fc.option(port, { nil: undefined }), {
    minLength: PODS.length,
    maxLength: PODS.length,
  }),
  listeners: fc.array(fc.option(port, { nil: undefined }), {
    minLength: HOST_PODS.length,
    maxLength: HOST_PODS.length,
  }),
  nodePort: fc.option(port, { nil: undefined }),
  externalIP: fc.option(fc.constantFrom('192.168.0.2', 'fd00::1', '203.0.113.5'), { nil: undefined }),
});

function objectsOf(c: ClusterShape): unknown[] {
  const objects: unknown[] = ['x', 'y'].map((name) => ({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name, labels: { 'kubernetes.io/metadata.name': name } },
  }));
  NODES.forEach((n, i) => {
    const zone = c.nodeObjects[i];
    if (zone !== undefined)
      objects.push({
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: n.name, labels: { zone } },
        status: { addresses: n.ips.map((address) => ({ type: 'InternalIP', address })) },
      });
  });
  PODS.forEach((p, i) => {
    const hostPort = c.hostPorts[i];
    const node = NODES.find((n) => n.name === p.node)!;
    objects.push({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: p.name, namespace: p.ns, labels: { app: c.podApps[i] } },
      spec: {
        nodeName: p.node,
        containers: [{ name: 'c', ports: [{ containerPort: 80, ...(hostPort ? { hostPort } : {}) }] }],
      },
      status: {
        phase: 'Running',
        podIPs: p.ips.map((ip) => ({ ip })),
        hostIP: node.ips[0],
        hostIPs: node.ips.map((ip) => ({ ip })),
      },
    });
  });
  HOST_PODS.forEach((p, i) => {
    const listener = c.listeners[i];
    const node = NODES.find((n) => n.name === p.node)!;
    objects.push({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: p.name, namespace: p.ns, labels: { app: 'h' } },
      spec: {
        nodeName: p.node,
        hostNetwork: true,
        containers: [{ name: 'c', ports: listener ? [{ containerPort: listener }] : [] }],
      },
      status: {
        phase: 'Running',
        podIPs: node.ips.map((ip) => ({ ip })),
        hostIP: node.ips[0],
        hostIPs: node.ips.map((ip) => ({ ip })),
      },
    });
  });
  objects.push({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'svc', namespace: 'x' },
    spec: {
      type: c.nodePort ? 'NodePort' : 'ClusterIP',
      selector: { app: 'a' },
      clusterIP: SERVICE_IPS[0],
      clusterIPs: SERVICE_IPS,
      ...(c.externalIP ? { externalIPs: [c.externalIP] } : {}),
      ports: [{ port: 8080, targetPort: 80, ...(c.nodePort ? { nodePort: c.nodePort } : {}) }],
    },
  });
  return objects;
}

interface ClusterShape {
  nodeObjects: ('a' | 'b' | undefined)[];
  podApps: string[];
  hostPorts: (number | undefined)[];
  listeners: (number | undefined)[];
  nodePort: number | undefined;
  externalIP: string | undefined;
}

const options: fc.Arbitrary<EngineOptions> = fc.record({
  ipBlockMatchesPods: fc.boolean(),
  selfTraffic: fc.constantFrom('allow' as const, 'evaluate' as const),
  nodeTraffic: fc.constantFrom('allow' as const, 'evaluate' as const),
  hostNetworkPods: fc.constantFrom('node' as const, 'pod' as const),
});

const ends = fc.array(fc.constantFrom(...ENDPOINTS), { minLength: 1, maxLength: 5 });

/** What `evaluate` answers for a pair: allowed, blocked with its reason, or refused (it throws). */
function evaluated(engine: Engine, [from, to]: [Endpoint, Endpoint], port: number, protocol: L4Protocol) {
  try {
    const v: Verdict = engine.evaluate({ from, to, port, protocol });
    return v.allowed ? 'allowed' : `blocked: ${v.reason}`;
  } catch {
    return 'refused';
  }
}

/** What `allows` (the proof's check) answers for a pair, or that an end does not resolve. */
function allowed(engine: Engine, [from, to]: [Endpoint, Endpoint], port: number, protocol: L4Protocol) {
  try {
    return engine.allows(engine.resolve(from), engine.resolve(to), port, protocol) ? 'allowed' : 'blocked';
  } catch {
    return 'unresolved';
  }
}

const key = ([f, t]: [Endpoint, Endpoint]) => `${JSON.stringify(f)} -> ${JSON.stringify(t)}`;

/**
 * The pairs of `pairs` answered blocked (with the answer, sorted), the first of them, and whether any
 * pair is answered (resolved, not refused).
 */
function answers(pairs: [Endpoint, Endpoint][], answer: (p: [Endpoint, Endpoint]) => string) {
  const all = pairs.map((p) => `${key(p)}: ${answer(p)}`);
  const blocked = all.filter((a) => a.includes(': blocked'));
  return {
    blocked: [...new Set(blocked)].sort(),
    first: blocked[0],
    answered: all.some((a) => !a.endsWith(': refused') && !a.endsWith(': unresolved')),
  };
}

/** The replay over the whole cross product, as `replayEdges` did before `endpointPairs` left pairs out. */
function replayAll(
  before: Engine,
  after: Engine,
  from: readonly Endpoint[],
  to: readonly Endpoint[],
  p: number,
  proto: L4Protocol,
): { placed: boolean; blocked?: string } {
  let placed = false;
  for (const f of from)
    for (const t of to) {
      const q = { from: f, to: t, port: p, protocol: proto };
      try {
        const allowedBefore = before.evaluate(q).allowed;
        placed = true;
        if (!allowedBefore) continue;
        const v = after.evaluate(q);
        if (!v.allowed) return { placed, blocked: `${key([f, t])}: ${v.reason}` };
      } catch {
        // Not answered: an end not resolved, or refused.
      }
    }
  return { placed };
}

describe('endpointPairs', () => {
  it('answers as the whole cross product of the two ends: same pairs blocked, same first, same replay', () => {
    fc.assert(
      fc.property(
        cluster,
        networkPolicies,
        networkPolicies,
        adminPolicy,
        options,
        ends,
        ends,
        port,
        protocol,
        (shape, beforePolicies, afterPolicies, admin, opts, from, to, p, proto) => {
          const snap = snapshotFromObjects(objectsOf(shape), 'random');
          const before = engineFromSnapshot({ ...snap, networkPolicies: beforePolicies }, opts);
          const after = engineFromSnapshot(
            { ...snap, networkPolicies: afterPolicies, others: [...snap.others, ...(admin ? [admin] : [])] },
            opts,
          );
          const cross = from.flatMap((f) => to.map((t): [Endpoint, Endpoint] => [f, t]));
          for (const engine of [before, after]) {
            const pairs = endpointPairs(engine, from, to, p, proto);
            expect(answers(pairs, (x) => evaluated(engine, x, p, proto))).toEqual(
              answers(cross, (x) => evaluated(engine, x, p, proto)),
            );
            // The proof's check: every pair allowed, the first that is not (or does not resolve).
            const proof = (list: [Endpoint, Endpoint][]) => {
              const all = list.map((x) => `${key(x)}: ${allowed(engine, x, p, proto)}`);
              return {
                ...answers(list, (x) => allowed(engine, x, p, proto)),
                first: all.find((a) => !a.endsWith(': allowed')),
              };
            };
            expect(proof(pairs)).toEqual(proof(cross));
            // Pairs of the cross product in its order, and of pairs of two addresses at most one.
            let k = 0;
            for (const [f, t] of cross) if (k < pairs.length && pairs[k]![0] === f && pairs[k]![1] === t) k++;
            expect(k).toBe(pairs.length);
            const isAddress = (ep: Endpoint) => {
              try {
                return engine.resolve(ep).kind === 'ip';
              } catch {
                return false;
              }
            };
            expect(pairs.filter(([f, t]) => isAddress(f) && isAddress(t)).length).toBeLessThanOrEqual(1);
          }
          const replay = replayPairs(before, after, from, to, p, proto);
          expect({
            placed: replay.placed,
            ...(replay.blocked
              ? { blocked: `${key(replay.blocked.pair)}: ${replay.blocked.verdict.reason}` }
              : {}),
          }).toEqual(replayAll(before, after, from, to, p, proto));
        },
      ),
      { numRuns: 400 },
    );
  });
});
