/**
 * The engine checked against the NetworkPolicy API semantics case by case (field comments of
 * networking.k8s.io/v1, the concepts page, the upstream e2e suite and the policy-api conformance
 * scenarios), on a small cluster of its own: namespaces x (team=a) and y (team=b), pods x/a, x/b, y/a
 * on node n1 (192.168.0.1), and whatever a case adds.
 */
import { describe, expect, it } from 'vitest';
import type { NetworkPolicy, OtherObject, Pod } from '../../src/model/k8s.ts';
import { InputError } from '../../src/model/snapshot.ts';
import { buildEngine, engineFromSnapshot } from '../../src/verify/engine.ts';
import { snapshotFromText } from '../../src/verify/load.ts';
import type { EngineOptions, L4Protocol } from '../../src/verify/types.ts';

const NODE_IP = '192.168.0.1';

function pod(
  namespace: string,
  name: string,
  labels: Record<string, string>,
  ip: string,
  containers: {
    name: string;
    ports?: { name?: string; containerPort: number; protocol?: string; hostPort?: number }[];
  }[] = [{ name: 'c' }],
  status: Record<string, unknown> = { hostIP: NODE_IP },
): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels },
    spec: { nodeName: 'n1', containers },
    status: { podIPs: [{ ip }], ...status },
  };
}

const np = (namespace: string, name: string, spec: Record<string, unknown>): NetworkPolicy =>
  ({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name, namespace },
    spec,
  }) as unknown as NetworkPolicy;

const namespaces = [
  { apiVersion: 'v1', kind: 'Namespace' as const, metadata: { name: 'x', labels: { team: 'a' } } },
  { apiVersion: 'v1', kind: 'Namespace' as const, metadata: { name: 'y', labels: { team: 'b' } } },
];
const basePods = [
  pod('x', 'a', { app: 'a' }, '10.0.0.1'),
  pod('x', 'b', { app: 'b' }, '10.0.0.2'),
  pod('y', 'a', { app: 'a' }, '10.0.1.1'),
];

/** A host-network pod of x on `nodeName`: its addresses are the node's, the first its hostIP. */
function hostNetworkPod(
  name: string,
  labels: Record<string, string>,
  nodeName: string,
  ips: string[],
  containers: Pod['spec']['containers'] = [{ name: 'c' }],
): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'x', labels },
    spec: { nodeName, hostNetwork: true, containers },
    status: { podIPs: ips.map((ip) => ({ ip })), hostIP: ips[0]! },
  };
}

/** The text of a List snapshot: the namespaces and base pods, then `items`. */
const clusterList = (...items: unknown[]) =>
  JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [...namespaces, ...basePods, ...items] });

/** The engine of a snapshot read from its text, as `microseg explain` reads one. */
const snapshotEngine = (text: string) => engineFromSnapshot(snapshotFromText(text, 'cluster.json'));

/** Asks `e` whether y/a reaches the node's address (NODE_IP) on a port, as query 1. */
const nodeQuery = (e: ReturnType<typeof snapshotEngine>) => (port: number, protocol?: L4Protocol) => () =>
  e.evaluate(
    { from: { namespace: 'y', pod: 'a' }, to: { ip: NODE_IP }, port, ...(protocol ? { protocol } : {}) },
    'query 1',
  );

function engine(
  policies: NetworkPolicy[],
  extra: { pods?: Pod[]; nodes?: OtherObject[]; options?: EngineOptions; basePods?: Pod[] } = {},
) {
  return buildEngine(
    {
      namespaces,
      pods: [...(extra.basePods ?? basePods), ...(extra.pods ?? [])],
      networkPolicies: policies,
      nodes: extra.nodes ?? [],
    },
    extra.options,
  );
}

const end = (s: string) => {
  const i = s.indexOf('/');
  return i > 0 && !s.includes(':') ? { namespace: s.slice(0, i), pod: s.slice(i + 1) } : { ip: s };
};

/** `from -> to` allowed on (port, protocol)? */
const ok = (
  e: ReturnType<typeof engine>,
  from: string,
  to: string,
  port: number | string = 80,
  protocol?: L4Protocol,
) => e.evaluate({ from: end(from), to: end(to), port, ...(protocol ? { protocol } : {}) }).allowed;

describe('1. policyTypes and per-direction isolation', () => {
  it('missing policyTypes without egress rules: Ingress only, egress stays open', () => {
    const e = engine([np('x', 'p', { podSelector: {} })]);
    expect(ok(e, 'y/a', 'x/a')).toBe(false);
    expect(ok(e, 'x/a', 'y/a')).toBe(true);
    expect(ok(e, 'x/a', '8.8.8.8', 53, 'UDP')).toBe(true);
  });
  it('missing or empty policyTypes with egress rules: both directions', () => {
    for (const policyTypes of [undefined, []]) {
      const e = engine([
        np('x', 'p', {
          podSelector: {},
          ...(policyTypes ? { policyTypes } : {}),
          egress: [{ ports: [{ port: 53 }] }],
        }),
      ]);
      expect(ok(e, 'x/a', 'y/a', 53)).toBe(true);
      expect(ok(e, 'x/a', 'y/a', 80)).toBe(false);
      expect(ok(e, 'y/a', 'x/a', 53)).toBe(false);
    }
  });
  it('policyTypes [Ingress] ignores the egress list; [Egress] leaves ingress open', () => {
    const e = engine([
      np('x', 'i', { podSelector: { matchLabels: { app: 'a' } }, policyTypes: ['Ingress'], egress: [{}] }),
      np('x', 'e', { podSelector: { matchLabels: { app: 'b' } }, policyTypes: ['Egress'] }),
    ]);
    expect(ok(e, 'x/a', 'y/a')).toBe(true);
    expect(ok(e, 'y/a', 'x/a')).toBe(false);
    expect(ok(e, 'x/b', 'y/a')).toBe(false);
    expect(ok(e, 'y/a', 'x/b')).toBe(true);
  });
});

describe('2. peers', () => {
  const ingressFrom = (from: unknown[]) => engine([np('x', 'p', { podSelector: {}, ingress: [{ from }] })]);
  it('podSelector alone: pods of the policy namespace only', () => {
    const e = ingressFrom([{ podSelector: { matchLabels: { app: 'a' } } }]);
    expect(ok(e, 'x/a', 'x/b')).toBe(true);
    expect(ok(e, 'y/a', 'x/b')).toBe(false);
  });
  it('namespaceSelector alone: every pod of the matching namespaces', () => {
    const e = ingressFrom([{ namespaceSelector: { matchLabels: { team: 'b' } } }]);
    expect(ok(e, 'y/a', 'x/a')).toBe(true);
    expect(ok(e, 'x/b', 'x/a')).toBe(false);
  });
  it('both in one peer are ANDed; in two peers ORed', () => {
    const and = ingressFrom([
      { namespaceSelector: { matchLabels: { team: 'b' } }, podSelector: { matchLabels: { app: 'b' } } },
    ]);
    expect(ok(and, 'y/a', 'x/a')).toBe(false);
    expect(ok(and, 'x/b', 'x/a')).toBe(false);
    const or = ingressFrom([
      { namespaceSelector: { matchLabels: { team: 'b' } } },
      { podSelector: { matchLabels: { app: 'b' } } },
    ]);
    expect(ok(or, 'y/a', 'x/a')).toBe(true);
    expect(ok(or, 'x/b', 'x/a')).toBe(true);
  });
  it('empty selectors: {} namespaceSelector is every pod, never an outside address', () => {
    const e = ingressFrom([{ namespaceSelector: {} }]);
    expect(ok(e, 'y/a', 'x/a')).toBe(true);
    expect(ok(e, '8.8.8.8', 'x/a')).toBe(false);
    const pods = ingressFrom([{ podSelector: {} }]);
    expect(ok(pods, 'x/b', 'x/a')).toBe(true);
    expect(ok(pods, 'y/a', 'x/a')).toBe(false);
  });
  it('matchExpressions: In, NotIn (true on a missing label), Exists, DoesNotExist', () => {
    const expr = (e: Record<string, unknown>) =>
      ingressFrom([{ namespaceSelector: {}, podSelector: { matchExpressions: [e] } }]);
    const inE = expr({ key: 'app', operator: 'In', values: ['b'] });
    expect([ok(inE, 'x/b', 'x/a'), ok(inE, 'y/a', 'x/b')]).toEqual([true, false]);
    const notIn = expr({ key: 'tier', operator: 'NotIn', values: ['web'] });
    expect(ok(notIn, 'y/a', 'x/a')).toBe(true);
    const notInApp = expr({ key: 'app', operator: 'NotIn', values: ['a'] });
    expect([ok(notInApp, 'y/a', 'x/b'), ok(notInApp, 'x/b', 'x/a')]).toEqual([false, true]);
    const exists = expr({ key: 'tier', operator: 'Exists' });
    expect(ok(exists, 'y/a', 'x/a')).toBe(false);
    const missing = expr({ key: 'tier', operator: 'DoesNotExist' });
    expect(ok(missing, 'y/a', 'x/a')).toBe(true);
  });
  it('ipBlock with except; except narrows only its own block', () => {
    const e = ingressFrom([{ ipBlock: { cidr: '203.0.113.0/24', except: ['203.0.113.128/25'] } }]);
    expect(ok(e, '203.0.113.5', 'x/a')).toBe(true);
    expect(ok(e, '203.0.113.200', 'x/a')).toBe(false);
  });
  it('ipBlock vs pod IPs: matched by default (ipBlockMatchesPods), not with the option off', () => {
    const pol = [
      np('x', 'p', { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '10.0.1.0/24' } }] }] }),
    ];
    expect(ok(engine(pol), 'y/a', 'x/a')).toBe(true);
    expect(ok(engine(pol, { options: { ipBlockMatchesPods: false } }), 'y/a', 'x/a')).toBe(false);
  });
  it('IPv6 blocks match IPv6 addresses and never IPv4 ones', () => {
    const e = ingressFrom([{ ipBlock: { cidr: '::/0' } }]);
    expect(ok(e, '2001:db8::1', 'x/a')).toBe(true);
    expect(ok(e, '203.0.113.5', 'x/a')).toBe(false);
  });
  it('an IPv4-mapped IPv6 address is the IPv4 address it carries', () => {
    const e = ingressFrom([{ ipBlock: { cidr: '203.0.113.0/24' } }]);
    expect(ok(e, '::ffff:203.0.113.5', 'x/a')).toBe(true);
    expect(ok(e, '::ffff:cb00:7105', 'x/a')).toBe(true);
    const byPod = ingressFrom([{ podSelector: { matchLabels: { app: 'b' } } }]);
    const v = byPod.evaluate({ from: { ip: '::ffff:10.0.0.2' }, to: { namespace: 'x', pod: 'a' }, port: 80 });
    expect(v.from).toBe('x/b');
    expect(v.allowed).toBe(true);
    const mappedBlock = ingressFrom([{ ipBlock: { cidr: '::ffff:203.0.113.0/120' } }]);
    expect(ok(mappedBlock, '203.0.113.5', 'x/a')).toBe(true);
  });
});

describe('3. ports', () => {
  const web = (name: string, ip: string, port: number) =>
    pod('x', name, { app: 'web' }, ip, [{ name: 'c', ports: [{ name: 'http', containerPort: port }] }]);
  it('absent ports: every port and protocol; a port without protocol is TCP', () => {
    const all = engine([np('x', 'p', { podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }] })]);
    expect(ok(all, 'x/b', 'x/a', 5353, 'UDP')).toBe(true);
    expect(ok(all, 'x/b', 'x/a', 9, 'SCTP')).toBe(true);
    const tcp = engine([np('x', 'p', { podSelector: {}, ingress: [{ ports: [{ port: 53 }] }] })]);
    expect(ok(tcp, 'x/b', 'x/a', 53)).toBe(true);
    expect(ok(tcp, 'x/b', 'x/a', 53, 'UDP')).toBe(false);
  });
  it('named ports resolve per destination pod: same name, different numbers; several containers', () => {
    const multi = pod('x', 'm', { app: 'web' }, '10.0.0.9', [
      { name: 'main', ports: [{ name: 'web', containerPort: 80 }] },
      { name: 'side', ports: [{ name: 'http', containerPort: 7070 }] },
    ]);
    const e = engine(
      [
        np('x', 'p', {
          podSelector: { matchLabels: { app: 'web' } },
          ingress: [{ ports: [{ port: 'http' }] }],
        }),
      ],
      { pods: [web('w1', '10.0.0.5', 8080), web('w2', '10.0.0.6', 9090), multi] },
    );
    expect([ok(e, 'x/a', 'x/w1', 8080), ok(e, 'x/a', 'x/w1', 9090)]).toEqual([true, false]);
    expect([ok(e, 'x/a', 'x/w2', 9090), ok(e, 'x/a', 'x/w2', 8080)]).toEqual([true, false]);
    expect([ok(e, 'x/a', 'x/m', 7070), ok(e, 'x/a', 'x/m', 80)]).toEqual([true, false]);
    // An egress named port resolves on the remote (destination) pod; never on an address.
    const eg = engine(
      [
        np('x', 'p', {
          podSelector: { matchLabels: { app: 'a' } },
          policyTypes: ['Egress'],
          egress: [{ ports: [{ port: 'http' }] }],
        }),
      ],
      { pods: [web('w1', '10.0.0.5', 8080), web('w2', '10.0.0.6', 9090)] },
    );
    expect([ok(eg, 'x/a', 'x/w1', 8080), ok(eg, 'x/a', 'x/w2', 9090), ok(eg, 'x/a', 'x/w2', 8080)]).toEqual([
      true,
      true,
      false,
    ]);
    expect(ok(eg, 'x/a', '8.8.8.8', 8080)).toBe(false);
  });
  it('endPort is an inclusive range of its protocol; SCTP is a protocol of its own', () => {
    const e = engine([
      np('x', 'p', {
        podSelector: {},
        ingress: [
          {
            ports: [
              { port: 32000, endPort: 32768 },
              { protocol: 'SCTP', port: 80 },
            ],
          },
        ],
      }),
    ]);
    expect([32000, 32768, 32769, 31999].map((p) => ok(e, 'x/b', 'x/a', p))).toEqual([
      true,
      true,
      false,
      false,
    ]);
    expect(ok(e, 'x/b', 'x/a', 32000, 'UDP')).toBe(false);
    expect([ok(e, 'x/b', 'x/a', 80, 'SCTP'), ok(e, 'x/b', 'x/a', 80)]).toEqual([true, false]);
  });
  it('a rule with ports and no from, or from: [], admits every peer on those ports', () => {
    for (const rule of [{ ports: [{ port: 80 }] }, { from: [], ports: [{ port: 80 }] }]) {
      const e = engine([np('x', 'p', { podSelector: {}, ingress: [rule] })]);
      expect([ok(e, 'y/a', 'x/a'), ok(e, '8.8.8.8', 'x/a'), ok(e, 'y/a', 'x/a', 81)]).toEqual([
        true,
        true,
        false,
      ]);
    }
    expect(ok(engine([np('x', 'p', { podSelector: {}, ingress: [] })]), 'x/b', 'x/a')).toBe(false);
  });
});

describe('4. always allowed, never matched', () => {
  it('a pod reaching itself, by name or by its own IP', () => {
    const e = engine([np('x', 'p', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] })]);
    expect(ok(e, 'x/a', 'x/a')).toBe(true);
    expect(ok(e, '10.0.0.1', 'x/a')).toBe(true);
  });
  it('the kubelet (the pod node) reaches an isolated pod; another node does not', () => {
    const nodes = [
      {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: 'n1' },
        status: { addresses: [{ type: 'InternalIP', address: NODE_IP }] },
      } as unknown as OtherObject,
    ];
    const pol = [np('x', 'p', { podSelector: {} })];
    expect(ok(engine(pol, { nodes }), NODE_IP, 'x/a', 8080)).toBe(true);
    expect(ok(engine(pol, { nodes }), '192.168.0.2', 'x/a', 8080)).toBe(false);
  });
  it('the pod node is known from status.hostIP when no Node object is given', () => {
    const pol = [np('x', 'p', { podSelector: {} })];
    const e = engine(pol);
    const v = e.evaluate({ from: { ip: NODE_IP }, to: { namespace: 'x', pod: 'a' }, port: 8080 });
    expect(v.allowed).toBe(true);
    expect(v.ingress.tier).toBe('exception');
    expect(v.from).toBe('node n1 (192.168.0.1)');
    // status.hostIPs (dual-stack nodes) count too; the other node is still evaluated.
    const dual = engine(pol, {
      basePods: [
        pod('x', 'a', { app: 'a' }, '10.0.0.1', [{ name: 'c' }], {
          hostIP: NODE_IP,
          hostIPs: [{ ip: NODE_IP }, { ip: 'fd00::1' }],
        }),
      ],
    });
    expect(ok(dual, 'fd00::1', 'x/a', 8080)).toBe(true);
    expect(ok(dual, '192.168.0.2', 'x/a', 8080)).toBe(false);
    expect(ok(engine(pol, { options: { nodeTraffic: 'evaluate' } }), NODE_IP, 'x/a', 8080)).toBe(false);
  });
  it('host-network pods are their node: not matched by pod selectors', () => {
    const agent = hostNetworkPod('agent', { app: 'b' }, 'n2', ['192.168.0.2']);
    const e = engine(
      [
        np('x', 'p', {
          podSelector: {},
          ingress: [{ from: [{ podSelector: { matchLabels: { app: 'b' } } }] }],
        }),
      ],
      { pods: [agent] },
    );
    expect(ok(e, 'x/agent', 'x/a')).toBe(false);
    expect(ok(e, 'x/b', 'x/a')).toBe(true);
  });
});

describe('4a. a dual-stack node without status.hostIPs (an older kubelet)', () => {
  // A host-network pod's addresses are its node's: its IPv6 one is all that tells the node's IPv6 address.
  const agent = hostNetworkPod('agent', { app: 'agent' }, 'n2', ['192.168.0.2', 'fd00::2']);
  const deny = [np('x', 'p', { podSelector: {}, policyTypes: ['Ingress'] })];

  it('a host-network pod’s IPv6 address is its node’s (hostNetworkPods=node and =pod)', () => {
    for (const hostNetworkPods of ['node', 'pod'] as const) {
      const e = engine(deny, { pods: [agent], options: { hostNetworkPods } });
      const v = e.evaluate({ from: { ip: 'fd00::2' }, to: { namespace: 'x', pod: 'a' }, port: 8080 });
      expect([hostNetworkPods, v.from]).toEqual([hostNetworkPods, 'node n2 (fd00::2)']);
    }
  });

  it('an empty ANP nodes peer matches it', () => {
    const e = buildEngine({
      namespaces,
      pods: [...basePods, agent],
      networkPolicies: [],
      clusterPolicies: [
        {
          apiVersion: 'policy.networking.k8s.io/v1alpha1',
          kind: 'AdminNetworkPolicy',
          metadata: { name: 'no-nodes' },
          spec: {
            priority: 1,
            subject: { namespaces: {} },
            egress: [{ action: 'Deny', to: [{ nodes: {} }] }],
          },
        },
      ],
    });
    expect(ok(e, 'x/a', '192.168.0.2', 10250)).toBe(false);
    expect(ok(e, 'x/a', 'fd00::2', 10250)).toBe(false);
    expect(ok(e, 'x/a', 'fd00::3', 10250)).toBe(true);
  });
});

describe('4b. a Service ClusterIP', () => {
  const dns = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'dns', namespace: 'y' },
    spec: {
      selector: { app: 'a' },
      clusterIP: '10.96.0.10',
      clusterIPs: ['10.96.0.10', 'fd00:96::a'],
      ports: [{ port: 53 }],
    },
  };
  const headless = { ...dns, metadata: { name: 'db', namespace: 'y' }, spec: { clusterIP: 'None' } };
  const text = clusterList(
    np('x', 'p', { podSelector: {}, egress: [{ to: [{ namespaceSelector: {} }] }] }),
    dns,
    headless,
  );
  it('is refused by a query: policies see the backend pod the address is translated to', () => {
    const e = snapshotEngine(text);
    for (const ip of ['10.96.0.10', 'fd00:96::a'])
      expect(() =>
        e.evaluate({ from: { namespace: 'x', pod: 'a' }, to: { ip }, port: 53 }, 'query 1'),
      ).toThrow(
        new InputError(
          `query 1: to: ${ip} is the ClusterIP of Service y/dns; policies see the connection after it is translated to a backend pod, so ask about a backend pod (namespace/pod or its IP) and the target port`,
        ),
      );
    expect(() =>
      e.evaluate({ from: { ip: '10.96.0.10' }, to: { namespace: 'x', pod: 'a' }, port: 53 }, 'query 2'),
    ).toThrow(
      new InputError(
        'query 2: from: 10.96.0.10 is the ClusterIP of Service y/dns; policies see the connection after it is translated to a backend pod, so ask about a backend pod (namespace/pod or its IP) and the target port',
      ),
    );
    // The backend pod is what a policy sees: it is allowed, while an outside address is not.
    expect(ok(e, 'x/a', 'y/a', 53)).toBe(true);
    expect(ok(e, 'x/a', '10.96.0.11', 53)).toBe(false);
  });
});

describe('4c. a Service external IP or load-balancer IP', () => {
  const web = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', namespace: 'x' },
    spec: {
      type: 'LoadBalancer',
      selector: { app: 'a' },
      clusterIP: '10.96.0.20',
      externalIPs: ['192.0.2.10', '2001:db8::10'],
      ports: [{ port: 80 }],
    },
    status: {
      loadBalancer: {
        ingress: [
          { hostname: 'lb.example.com' },
          { ip: '198.51.100.7', ipMode: 'VIP' },
          { ip: '198.51.100.8', ipMode: 'Proxy' },
        ],
      },
    },
  };
  // An egress policy that would admit the addresses as ipBlock peers, and none of the backend pods.
  const text = clusterList(
    np('y', 'p', {
      podSelector: {},
      policyTypes: ['Egress'],
      egress: [{ to: [{ ipBlock: { cidr: '0.0.0.0/0', except: ['10.0.0.0/8'] } }] }],
    }),
    web,
  );
  const tail =
    'policies see the connection after it is translated to a backend pod, so ask about a backend pod (namespace/pod or its IP) and the target port';
  it('is refused by a query, naming the Service and the field, as a ClusterIP is', () => {
    const e = snapshotEngine(text);
    const to = (ip: string) => () =>
      e.evaluate({ from: { namespace: 'y', pod: 'a' }, to: { ip }, port: 80 }, 'query 1');
    expect(to('192.0.2.10')).toThrow(
      new InputError(
        `query 1: to: 192.0.2.10 is an external IP of Service x/web (spec.externalIPs[0]); ${tail}`,
      ),
    );
    expect(to('2001:db8::10')).toThrow(
      new InputError(
        `query 1: to: 2001:db8::10 is an external IP of Service x/web (spec.externalIPs[1]); ${tail}`,
      ),
    );
    expect(to('198.51.100.7')).toThrow(
      new InputError(
        `query 1: to: 198.51.100.7 is the load-balancer IP of Service x/web (status.loadBalancer.ingress[1].ip); ${tail}`,
      ),
    );
    expect(() =>
      e.evaluate({ from: { ip: '192.0.2.10' }, to: { namespace: 'x', pod: 'a' }, port: 80 }, 'query 2'),
    ).toThrow(
      new InputError(
        `query 2: from: 192.0.2.10 is an external IP of Service x/web (spec.externalIPs[0]); ${tail}`,
      ),
    );
    // An ipMode Proxy address is not translated on the node: the packets leave for the load balancer
    // and y's egress sees the address itself.
    expect(ok(e, 'y/a', '198.51.100.8', 80)).toBe(true);
    // The backend pod is what a policy sees: y's egress admits no pod.
    expect(ok(e, 'y/a', 'x/a', 80)).toBe(false);
  });
});

describe('4c2. a load-balancer IP several Services share', () => {
  it('is refused naming the Service whose port the query names, not the first to claim the address', () => {
    // MetalLB's shared IP: public-api answers TCP/443, public-be TCP/9000 on one address; the pipeline
    // translates port 9000 to public-be's backends, and the refusal must send the user there too.
    const shared = (name: string, clusterIP: string, port: number) => ({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: 'x' },
      spec: { type: 'LoadBalancer', clusterIP, selector: { app: 'a' }, ports: [{ port, protocol: 'TCP' }] },
      status: { loadBalancer: { ingress: [{ ip: '203.0.113.20' }] } },
    });
    const text = clusterList(
      shared('public-api', '10.96.0.40', 443),
      shared('public-be', '10.96.0.41', 9000),
    );
    const e = snapshotEngine(text);
    const to = (port: number | string) => () =>
      e.evaluate({ from: { namespace: 'y', pod: 'a' }, to: { ip: '203.0.113.20' }, port }, 'query 1');
    const lb = (svc: string) =>
      `query 1: to: 203.0.113.20 is the load-balancer IP of Service x/${svc} (status.loadBalancer.ingress[0].ip); policies see the connection after it is translated to a backend pod, so ask about a backend pod (namespace/pod or its IP) and the target port`;
    expect(to(9000)).toThrow(new InputError(lb('public-be')));
    expect(to('9000')).toThrow(new InputError(lb('public-be')));
    expect(to(443)).toThrow(new InputError(lb('public-api')));
    // A port no Service has: the first to claim the address.
    expect(to(22)).toThrow(new InputError(lb('public-api')));
  });
});

describe("4d. a node's address on a nodePort or a hostPort", () => {
  const web = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', namespace: 'x' },
    spec: {
      type: 'NodePort',
      selector: { app: 'a' },
      clusterIP: '10.96.0.20',
      ports: [
        { name: 'dns', port: 53, protocol: 'UDP', nodePort: 30053 },
        { name: 'http', port: 80, targetPort: 8080, nodePort: 30080 },
      ],
    },
  };
  const agent = pod('x', 'agent', { app: 'agent' }, '10.0.0.9', [
    { name: 'c', ports: [{ containerPort: 4317, hostPort: 14317 }] },
  ]);
  const hostPod: Pod = {
    ...pod('x', 'exporter', { app: 'exporter' }, NODE_IP, [
      { name: 'c', ports: [{ containerPort: 9100, hostPort: 9100 }] },
    ]),
    spec: {
      nodeName: 'n1',
      hostNetwork: true,
      containers: [{ name: 'c', ports: [{ containerPort: 9100 }] }],
    },
  };
  // An egress policy that admits the node's address and none of the pods the node translates to.
  const text = clusterList(
    agent,
    hostPod,
    np('y', 'p', {
      podSelector: {},
      policyTypes: ['Egress'],
      egress: [{ to: [{ ipBlock: { cidr: `${NODE_IP}/32` } }] }],
    }),
    web,
  );
  const e = snapshotEngine(text);
  const to = nodeQuery(e);
  it("is refused as a Service's ClusterIP is: the node translates it to the backends", () => {
    expect(to(30080)).toThrow(
      new InputError(
        `query 1: to: node n1 (${NODE_IP}) on TCP/30080 is the nodePort of Service x/web (spec.ports[1].nodePort); policies see the connection after the node translates it to a pod, so ask about a backend pod (namespace/pod or its IP) and the target port`,
      ),
    );
    expect(to(30053, 'UDP')).toThrow(/is the nodePort of Service x\/web \(spec\.ports\[0\]\.nodePort\)/);
    // The backend is what a policy sees: y's egress admits no pod.
    expect(ok(e, 'y/a', 'x/a', 8080)).toBe(false);
  });
  it("is refused on a pod's hostPort, naming the pod and its container port", () => {
    expect(to(14317)).toThrow(
      new InputError(
        `query 1: to: node n1 (${NODE_IP}) on TCP/14317 is the hostPort of pod x/agent (to its container port 4317); policies see the connection after the node translates it to a pod, so ask about the pod (x/agent) and port 4317`,
      ),
    );
    expect(ok(e, 'y/a', 'x/agent', 4317)).toBe(false);
  });
  it('is the node on any other port or protocol, and where a host-network pod listens', () => {
    expect(to(30080, 'UDP')().allowed).toBe(true);
    expect(to(22)().allowed).toBe(true);
    expect(to(9100)().allowed).toBe(true);
  });
  it('is refused on the ports of a Service listing it in spec.externalIPs, as the pipeline translates it', () => {
    // Bare metal: a Service exposed on the node's own address. Identity takes <node>:443 for the
    // backends (README, Services); explain answered it as the node, which y's egress admits.
    const edge = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'edge', namespace: 'x' },
      spec: {
        selector: { app: 'a' },
        clusterIP: '10.96.0.21',
        externalIPs: [NODE_IP],
        ports: [{ port: 443, targetPort: 8080, protocol: 'TCP' }],
      },
    };
    const doc = JSON.parse(text) as { items: unknown[] };
    const e2 = snapshotEngine(JSON.stringify({ ...doc, items: [...doc.items, edge] }));
    const at = nodeQuery(e2);
    expect(at(443)).toThrow(
      new InputError(
        `query 1: to: node n1 (${NODE_IP}) on TCP/443 is an external IP of Service x/edge (spec.externalIPs[0]), port 443 of spec.ports[0]; policies see the connection after the node translates it to a pod, so ask about a backend pod (namespace/pod or its IP) and the target port`,
      ),
    );
    // Other ports and protocols are the node's; the node's listeners and nodePorts keep theirs.
    expect(at(443, 'UDP')().allowed).toBe(true);
    expect(at(22)().allowed).toBe(true);
    expect(at(30080)).toThrow(/is the nodePort of Service x\/web/);
  });
});

describe('4e. a hostPort on a dual-stack node', () => {
  // The node translates a hostPort to the pod's address of the family connected to: a pod with an IPv4
  // address only publishes nothing on the node's IPv6 address (identity reads it so, README).
  const NODE_V6 = 'fd00::1';
  const dual = { hostIP: NODE_IP, hostIPs: [{ ip: NODE_IP }, { ip: NODE_V6 }] };
  const v4only = pod(
    'x',
    'agent',
    { app: 'agent' },
    '10.0.0.9',
    [{ name: 'c', ports: [{ containerPort: 4317, hostPort: 14317 }] }],
    dual,
  );
  const query = (e: ReturnType<typeof engine>, ip: string) => () =>
    e.evaluate({ from: { namespace: 'y', pod: 'a' }, to: { ip }, port: 14317 }, 'query 1');

  it("is refused on the node's addresses of the pod's families only", () => {
    const e = engine([], { pods: [v4only] });
    expect(query(e, NODE_IP)).toThrow(/is the hostPort of pod x\/agent/);
    expect(query(e, NODE_V6)().from).toBe('y/a');
    expect(query(e, NODE_V6)().to).toBe(`node n1 (${NODE_V6})`);
    const dualPod: Pod = {
      ...v4only,
      status: { ...v4only.status, podIPs: [{ ip: '10.0.0.9' }, { ip: 'fd00:10::9' }] },
    };
    expect(query(engine([], { pods: [dualPod] }), NODE_V6)).toThrow(/is the hostPort of pod x\/agent/);
  });
});

describe('5. several policies', () => {
  it('default deny plus allow: the union of the rules of every selecting policy', () => {
    const e = engine([
      np('x', 'deny', { podSelector: {} }),
      np('x', 'allow', { podSelector: { matchLabels: { app: 'a' } }, ingress: [{ ports: [{ port: 80 }] }] }),
    ]);
    expect([ok(e, 'y/a', 'x/a', 80), ok(e, 'y/a', 'x/a', 81), ok(e, 'y/a', 'x/b', 80)]).toEqual([
      true,
      false,
      false,
    ]);
  });
  it('a policy of another namespace never selects the pod', () => {
    const e = engine([np('y', 'deny', { podSelector: {} })]);
    expect(ok(e, 'x/b', 'x/a')).toBe(true);
    expect(ok(e, 'x/b', 'y/a')).toBe(false);
  });
});

describe('6. defaults and tiers, case by case', () => {
  const cp = (kind: string, name: string, spec: Record<string, unknown>): OtherObject => ({
    apiVersion:
      kind === 'ClusterNetworkPolicy'
        ? 'policy.networking.k8s.io/v1alpha2'
        : 'policy.networking.k8s.io/v1alpha1',
    kind,
    metadata: { name },
    spec,
  });
  const web = (name: string, ip: string, port: number) =>
    pod('y', name, { app: 'web' }, ip, [{ name: 'c', ports: [{ name: 'http', containerPort: port }] }]);
  const tiered = (clusterPolicies: OtherObject[], policies: NetworkPolicy[] = []) =>
    buildEngine({
      namespaces,
      pods: [...basePods, web('w1', '10.0.1.5', 8080), web('w2', '10.0.1.6', 9090)],
      networkPolicies: policies,
      clusterPolicies,
    });
  it('an empty nodes peer matches every node, also one known only from its pods (no Node object)', () => {
    // n1 is known from the pods' status.hostIP alone: its labels are unknown, but {} needs none.
    const deny = (nodes: Record<string, unknown>) =>
      tiered([
        cp('AdminNetworkPolicy', 'no-nodes', {
          priority: 1,
          subject: { namespaces: {} },
          egress: [{ action: 'Deny', to: [{ nodes }] }],
        }),
      ]);
    expect(ok(deny({}), 'x/a', NODE_IP, 10250)).toBe(false);
    expect(ok(deny({}), 'x/a', '192.168.0.9', 10250)).toBe(true);
  });
  it('a missing spec.podSelector selects every pod of the policy namespace', () => {
    const e = engine([np('x', 'p', { ingress: [] })]);
    expect([ok(e, 'y/a', 'x/a'), ok(e, 'y/a', 'x/b'), ok(e, 'x/a', 'y/a')]).toEqual([false, false, true]);
  });
  it('an AdminNetworkPolicy namedPort on egress resolves on each destination pod', () => {
    const e = tiered([
      cp('AdminNetworkPolicy', 'web-only', {
        priority: 1,
        subject: { namespaces: { matchLabels: { team: 'a' } } },
        egress: [
          { action: 'Allow', to: [{ namespaces: {} }], ports: [{ namedPort: 'http' }] },
          { action: 'Deny', to: [{ namespaces: {} }] },
        ],
      }),
    ]);
    expect([ok(e, 'x/a', 'y/w1', 8080), ok(e, 'x/a', 'y/w2', 9090)]).toEqual([true, true]);
    expect([ok(e, 'x/a', 'y/w1', 9090), ok(e, 'x/a', 'y/w2', 8080), ok(e, 'x/a', 'y/a', 8080)]).toEqual([
      false,
      false,
      false,
    ]);
  });
  it('an AdminNetworkPolicy subject by pods: namespace AND pod selector', () => {
    const e = tiered([
      cp('AdminNetworkPolicy', 'deny', {
        priority: 1,
        subject: {
          pods: {
            namespaceSelector: { matchLabels: { team: 'a' } },
            podSelector: { matchLabels: { app: 'a' } },
          },
        },
        ingress: [{ action: 'Deny', from: [{ namespaces: {} }] }],
      }),
    ]);
    expect([ok(e, 'y/a', 'x/a'), ok(e, 'y/a', 'x/b'), ok(e, 'x/a', 'y/a')]).toEqual([false, true, true]);
  });
  it('no implicit isolation: an AdminNetworkPolicy whose rules do not match leaves the connection to the next tier', () => {
    const anp = cp('AdminNetworkPolicy', 'deny-y', {
      priority: 1,
      subject: { namespaces: {} },
      ingress: [{ action: 'Deny', from: [{ namespaces: { matchLabels: { team: 'b' } } }] }],
    });
    expect([ok(tiered([anp]), 'x/b', 'x/a'), ok(tiered([anp]), 'y/a', 'x/a')]).toEqual([true, false]);
    const iso = np('x', 'iso', {
      podSelector: {},
      ingress: [{ from: [{ podSelector: { matchLabels: { app: 'z' } } }] }],
    });
    expect(ok(tiered([anp], [iso]), 'x/b', 'x/a')).toBe(false);
  });
  it('a Baseline ClusterNetworkPolicy Pass skips the rest of the tier: allowed by default', () => {
    const e = tiered([
      cp('ClusterNetworkPolicy', 'pass-x', {
        tier: 'Baseline',
        priority: 1,
        subject: { namespaces: {} },
        ingress: [{ action: 'Pass', from: [{ namespaces: { matchLabels: { team: 'a' } } }] }],
      }),
      cp('ClusterNetworkPolicy', 'deny-all', {
        tier: 'Baseline',
        priority: 2,
        subject: { namespaces: {} },
        ingress: [{ action: 'Deny', from: [{ namespaces: {} }] }],
      }),
    ]);
    expect([ok(e, 'x/b', 'x/a'), ok(e, 'y/a', 'x/a')]).toEqual([true, false]);
  });
  it('an ipBlock matches a host-network pod by its node address; pod selectors never do', () => {
    const agent = hostNetworkPod('agent', { app: 'agent' }, 'n1', [NODE_IP]);
    const toNode = np('x', 'eg', {
      podSelector: { matchLabels: { app: 'a' } },
      policyTypes: ['Egress'],
      egress: [{ to: [{ ipBlock: { cidr: `${NODE_IP}/32` } }] }],
    });
    const toPods = np('x', 'eg', {
      podSelector: { matchLabels: { app: 'a' } },
      policyTypes: ['Egress'],
      egress: [{ to: [{ podSelector: {} }] }],
    });
    expect(ok(engine([toNode], { pods: [agent] }), 'x/a', 'x/agent')).toBe(true);
    expect(ok(engine([toPods], { pods: [agent] }), 'x/a', 'x/agent')).toBe(false);
    expect(ok(engine([toPods], { pods: [agent] }), 'x/a', 'x/b')).toBe(true);
  });
  it('a host-network pod answered as its node still resolves its own named ports', () => {
    const exporter = hostNetworkPod(
      'exporter',
      { app: 'exporter' },
      'n1',
      [NODE_IP],
      [{ name: 'c', ports: [{ name: 'metrics', containerPort: 9100 }] }],
    );
    const toMetrics = np('x', 'eg', {
      podSelector: { matchLabels: { app: 'a' } },
      policyTypes: ['Egress'],
      egress: [{ to: [{ ipBlock: { cidr: `${NODE_IP}/32` } }], ports: [{ port: 9100 }] }],
    });
    const e = engine([toMetrics], { pods: [exporter] });
    const v = e.evaluate({ from: end('x/a'), to: end('x/exporter'), port: 'metrics' });
    expect([v.port, v.protocol, v.allowed]).toEqual([9100, 'TCP', true]);
    expect(() => e.evaluate({ from: end('x/a'), to: end('x/exporter'), port: 'web' })).toThrow(
      new InputError('query: x/exporter (host network, node n1) has no container port named "web"'),
    );
    // The node's address is the node, not the pod: it has no named port.
    expect(() => e.evaluate({ from: end('x/a'), to: end(NODE_IP), port: 'metrics' })).toThrow(
      /cannot be resolved: node n1 \(192\.168\.0\.1\) is not a pod/,
    );
  });
});
