/**
 * The sig-network policy-api conformance tests (kubernetes-sigs/network-policy-api conformance/), for
 * ClusterNetworkPolicy v1alpha2 and its v1alpha1 predecessors, transcribed as cases over the suite's
 * cluster: namespaces network-policy-conformance-<house> labelled conformance-house=<house>, two pods per
 * house (<name>-0, <name>-1) serving TCP 80 (web) and 8080, UDP 53 (dns) and 5353, SCTP 9003 and 9005.
 * Each step is the state the upstream test leaves the objects in (its patches accumulate).
 */
import { describe, expect, it } from 'vitest';
import type { NetworkPolicy, OtherObject, Pod } from '../../src/model/k8s.ts';
import { buildEngine } from '../../src/verify/engine.ts';
import type { L4Protocol } from '../../src/verify/types.ts';

const HOUSES: Record<string, string> = {
  gryffindor: 'harry-potter',
  slytherin: 'draco-malfoy',
  hufflepuff: 'cedric-diggory',
  ravenclaw: 'luna-lovegood',
  'forbidden-forrest': 'centaur',
};
const NS = (house: string) => `network-policy-conformance-${house}`;
const houseIndex = (house: string) => Object.keys(HOUSES).indexOf(house) + 1;
const ipOf = (house: string, i: number) => `10.20.${houseIndex(house)}.${i + 10}`;

function cluster() {
  const namespaces = Object.keys(HOUSES).map((h) => ({
    apiVersion: 'v1',
    kind: 'Namespace' as const,
    metadata: { name: NS(h), labels: { 'conformance-house': h } },
  }));
  const pods: Pod[] = Object.entries(HOUSES).flatMap(([h, name]) =>
    [0, 1].map((i) => ({
      apiVersion: 'v1',
      kind: 'Pod' as const,
      metadata: { name: `${name}-${i}`, namespace: NS(h), labels: { 'conformance-house': h } },
      spec: {
        containers: [
          { name: `${name}-80`, ports: [{ containerPort: 80, protocol: 'TCP', name: 'web' }] },
          { name: `${name}-8080`, ports: [{ containerPort: 8080, protocol: 'TCP' }] },
          { name: `${name}-5353`, ports: [{ containerPort: 5353, protocol: 'UDP' }] },
          { name: `${name}-53`, ports: [{ containerPort: 53, protocol: 'UDP', name: 'dns' }] },
          { name: `${name}-9003`, ports: [{ containerPort: 9003, protocol: 'SCTP' }] },
          { name: `${name}-9005`, ports: [{ containerPort: 9005, protocol: 'SCTP' }] },
        ],
      },
      status: { podIP: ipOf(h, i), podIPs: [{ ip: ipOf(h, i) }] },
    })),
  );
  return { namespaces, pods };
}

type Peer = Record<string, unknown>;
const nsName = (h: string): Peer => ({
  namespaces: { matchLabels: { 'kubernetes.io/metadata.name': NS(h) } },
});
const house = (h: string): Peer => ({
  pods: {
    namespaceSelector: { matchLabels: { 'conformance-house': h } },
    podSelector: { matchLabels: { 'conformance-house': h } },
  },
});
const tcpPort = (n: number) => ({ tcp: { destinationPort: { number: n } } });
const udpPort = (n: number) => ({ udp: { destinationPort: { number: n } } });
const sctpPort = (n: number) => ({ sctp: { destinationPort: { number: n } } });

function cnp(
  name: string,
  tier: 'Admin' | 'Baseline',
  priority: number,
  subject: unknown,
  spec: Record<string, unknown>,
): OtherObject {
  return {
    apiVersion: 'policy.networking.k8s.io/v1alpha2',
    kind: 'ClusterNetworkPolicy',
    metadata: { name },
    spec: { tier, priority, subject, ...spec },
  };
}

function rule(name: string, action: string, dir: 'from' | 'to', peers: Peer[], protocols?: unknown[]) {
  return { name, action, [dir]: peers, ...(protocols ? { protocols } : {}) };
}

function poke(
  policies: { cluster?: OtherObject[]; np?: NetworkPolicy[] },
  from: [string, number],
  to: [string, number],
  port: number,
  protocol: L4Protocol = 'TCP',
): boolean {
  const { namespaces, pods } = cluster();
  const engine = buildEngine({
    namespaces,
    pods,
    networkPolicies: policies.np ?? [],
    clusterPolicies: policies.cluster ?? [],
  });
  return engine.evaluate({
    from: { namespace: NS(from[0]), pod: `${HOUSES[from[0]]}-${from[1]}` },
    to: { namespace: NS(to[0]), pod: `${HOUSES[to[0]]}-${to[1]}` },
    port,
    protocol,
  }).allowed;
}

const gryffindorSubject = {
  namespaces: { matchLabels: { 'kubernetes.io/metadata.name': NS('gryffindor') } },
};

function ingressTcpRules() {
  return [
    rule('allow-from-ravenclaw-everything', 'Accept', 'from', [nsName('ravenclaw')]),
    rule('deny-from-ravenclaw-everything', 'Deny', 'from', [nsName('ravenclaw')]),
    rule('pass-from-ravenclaw-everything', 'Pass', 'from', [nsName('ravenclaw')]),
    rule('deny-from-slytherin-at-port-80', 'Deny', 'from', [nsName('slytherin')], [tcpPort(80)]),
    rule('pass-from-slytherin-at-port-80', 'Pass', 'from', [nsName('slytherin')], [tcpPort(80)]),
    rule('allow-from-hufflepuff-at-port-80', 'Accept', 'from', [nsName('hufflepuff')], [tcpPort(80)]),
    rule('deny-from-hufflepuff-everything-else', 'Deny', 'from', [nsName('hufflepuff')]),
  ];
}
const swap = <T>(xs: T[], i: number, j: number): T[] => {
  const out = [...xs];
  [out[i], out[j]] = [out[j]!, out[i]!];
  return out;
};

describe('policy-api conformance: admin tier ingress TCP rules (CNPAdminTierIngressTCP)', () => {
  const at = (rules: unknown[]) => ({
    cluster: [cnp('ingress-tcp', 'Admin', 3, gryffindorSubject, { ingress: rules })],
  });
  const G0: [string, number] = ['gryffindor', 0];
  it('allow-ingress for TCP; rule ordering is respected', () => {
    expect(poke(at(ingressTcpRules()), ['ravenclaw', 0], G0, 80)).toBe(true);
    expect(poke(at(ingressTcpRules()), ['ravenclaw', 1], G0, 8080)).toBe(true);
  });
  it('allow-ingress for TCP at the specified port', () => {
    expect(poke(at(ingressTcpRules()), ['hufflepuff', 0], G0, 80)).toBe(true);
    expect(poke(at(ingressTcpRules()), ['hufflepuff', 1], G0, 8080)).toBe(false);
  });
  const step2 = swap(ingressTcpRules(), 0, 1);
  it('deny-ingress for TCP; rule ordering is respected', () => {
    expect(poke(at(step2), ['ravenclaw', 0], G0, 80)).toBe(false);
    expect(poke(at(step2), ['ravenclaw', 1], G0, 8080)).toBe(false);
  });
  it('deny-ingress for TCP at the specified port', () => {
    expect(poke(at(step2), ['slytherin', 0], G0, 80)).toBe(false);
    expect(poke(at(step2), ['slytherin', 1], G0, 8080)).toBe(true);
  });
  const step3 = swap(step2, 0, 2);
  it('pass-ingress for TCP; rule ordering is respected', () => {
    expect(poke(at(step3), ['ravenclaw', 0], G0, 80)).toBe(true);
    expect(poke(at(step3), ['ravenclaw', 1], G0, 8080)).toBe(true);
  });
  const step4 = swap(step3, 3, 4);
  it('pass-ingress for TCP at the specified port', () => {
    expect(poke(at(step4), ['slytherin', 0], G0, 80)).toBe(true);
    expect(poke(at(step4), ['slytherin', 1], G0, 8080)).toBe(true);
  });
  it('UDP and SCTP traffic is not matched by TCP port rules', () => {
    expect(poke(at(step2), ['slytherin', 0], G0, 80, 'UDP')).toBe(true);
    expect(poke(at(step2), ['hufflepuff', 0], G0, 53, 'UDP')).toBe(false);
  });
});

describe('policy-api conformance: admin tier egress rules across protocols (CNPAdminTierGressRules)', () => {
  const egress = () => [
    rule('allow-to-ravenclaw-everything', 'Accept', 'to', [nsName('ravenclaw')]),
    rule('deny-to-ravenclaw-everything', 'Deny', 'to', [nsName('ravenclaw')]),
    rule('pass-to-ravenclaw-everything', 'Pass', 'to', [nsName('ravenclaw')]),
    rule(
      'deny-to-slytherin-at-ports-80-53-9003',
      'Deny',
      'to',
      [nsName('slytherin')],
      [tcpPort(80), udpPort(53), sctpPort(9003)],
    ),
    rule(
      'pass-to-slytherin-at-port-80-53-9003',
      'Pass',
      'to',
      [nsName('slytherin')],
      [tcpPort(80), udpPort(53), sctpPort(9003)],
    ),
    rule(
      'allow-to-hufflepuff-at-ports-8080-5353-9003',
      'Accept',
      'to',
      [nsName('hufflepuff')],
      [tcpPort(8080), udpPort(5353), sctpPort(9003)],
    ),
    rule('deny-to-hufflepuff-everything-else', 'Deny', 'to', [nsName('hufflepuff')]),
  ];
  const at = (rules: unknown[]) => ({
    cluster: [cnp('gress-rules', 'Admin', 15, gryffindorSubject, { egress: rules })],
  });
  const G0: [string, number] = ['gryffindor', 0];
  it('allow to ravenclaw on every protocol; hufflepuff only on the listed ports', () => {
    for (const [port, proto] of [
      [80, 'TCP'],
      [53, 'UDP'],
      [9003, 'SCTP'],
    ] as const)
      expect(poke(at(egress()), G0, ['ravenclaw', 0], port, proto)).toBe(true);
    expect(poke(at(egress()), G0, ['hufflepuff', 0], 8080, 'TCP')).toBe(true);
    expect(poke(at(egress()), G0, ['hufflepuff', 0], 5353, 'UDP')).toBe(true);
    expect(poke(at(egress()), G0, ['hufflepuff', 0], 9003, 'SCTP')).toBe(true);
    expect(poke(at(egress()), G0, ['hufflepuff', 0], 80, 'TCP')).toBe(false);
    expect(poke(at(egress()), G0, ['hufflepuff', 0], 53, 'UDP')).toBe(false);
    expect(poke(at(egress()), G0, ['hufflepuff', 0], 9005, 'SCTP')).toBe(false);
  });
  it('deny to slytherin only on the listed ports', () => {
    expect(poke(at(egress()), G0, ['slytherin', 1], 80, 'TCP')).toBe(false);
    expect(poke(at(egress()), G0, ['slytherin', 1], 53, 'UDP')).toBe(false);
    expect(poke(at(egress()), G0, ['slytherin', 1], 9003, 'SCTP')).toBe(false);
    expect(poke(at(egress()), G0, ['slytherin', 1], 8080, 'TCP')).toBe(true);
    expect(poke(at(egress()), G0, ['slytherin', 1], 5353, 'UDP')).toBe(true);
    expect(poke(at(egress()), G0, ['slytherin', 1], 9005, 'SCTP')).toBe(true);
  });
  it('rule order: deny first, then pass first', () => {
    const s2 = swap(egress(), 0, 1);
    expect(poke(at(s2), G0, ['ravenclaw', 0], 80)).toBe(false);
    const s3 = swap(s2, 0, 2);
    expect(poke(at(s3), G0, ['ravenclaw', 0], 80)).toBe(true);
    const s4 = swap(s3, 3, 4);
    expect(poke(at(s4), G0, ['slytherin', 0], 80)).toBe(true);
  });
});

describe('policy-api conformance: Admin tier, NetworkPolicy and Baseline tier together (CNPAdminTierIntegration)', () => {
  const admin = (ingressAction: string, egressAction: string) =>
    cnp(
      'pass-example',
      'Admin',
      10,
      { namespaces: { matchLabels: { 'conformance-house': 'gryffindor' } } },
      {
        ingress: [
          rule('deny-all-ingress-from-slytherin', ingressAction, 'from', [
            { namespaces: { matchLabels: { 'conformance-house': 'slytherin' } } },
          ]),
        ],
        egress: [
          rule('deny-all-egress-to-slytherin', egressAction, 'to', [
            { namespaces: { matchLabels: { 'conformance-house': 'slytherin' } } },
          ]),
        ],
      },
    );
  const baseline = cnp(
    'default',
    'Baseline',
    10,
    { namespaces: { matchLabels: { 'conformance-house': 'gryffindor' } } },
    {
      ingress: [
        rule('deny-all-ingress-from-slytherin', 'Deny', 'from', [
          { namespaces: { matchLabels: { 'conformance-house': 'slytherin' } } },
        ]),
      ],
      egress: [
        rule('deny-all-egress-to-slytherin', 'Deny', 'to', [
          { namespaces: { matchLabels: { 'conformance-house': 'slytherin' } } },
        ]),
      ],
    },
  );
  const np = {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: 'allow-gress-from-to-slytherin-to-gryffindor', namespace: NS('gryffindor') },
    spec: {
      podSelector: null,
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{ from: [{ namespaceSelector: { matchLabels: { 'conformance-house': 'slytherin' } } }] }],
      egress: [{ to: [{ namespaceSelector: { matchLabels: { 'conformance-house': 'slytherin' } } }] }],
    },
  } as unknown as NetworkPolicy;
  it('admin Deny wins over the NetworkPolicy allow', () => {
    const p = { cluster: [admin('Deny', 'Deny'), baseline], np: [np] };
    expect(poke(p, ['slytherin', 0], ['gryffindor', 0], 80)).toBe(false);
    expect(poke(p, ['slytherin', 1], ['gryffindor', 0], 8080)).toBe(false);
    expect(poke(p, ['gryffindor', 0], ['slytherin', 0], 80)).toBe(false);
  });
  it('admin Pass hands over to the NetworkPolicy, which allows', () => {
    const p = { cluster: [admin('Pass', 'Pass'), baseline], np: [np] };
    expect(poke(p, ['slytherin', 0], ['gryffindor', 0], 80)).toBe(true);
    expect(poke(p, ['gryffindor', 0], ['slytherin', 1], 8080)).toBe(true);
  });
  it('admin Pass with no NetworkPolicy falls to the baseline Deny', () => {
    const p = { cluster: [admin('Pass', 'Pass'), baseline] };
    expect(poke(p, ['slytherin', 0], ['gryffindor', 0], 80)).toBe(false);
    expect(poke(p, ['gryffindor', 0], ['slytherin', 1], 80)).toBe(false);
    expect(poke(p, ['hufflepuff', 0], ['gryffindor', 0], 80)).toBe(true);
  });
});

describe('policy-api conformance: priority field (CNPAdminTierPriorityField)', () => {
  const mk = (passPriority: number) => [
    cnp('priority-50-example', 'Admin', 50, house('gryffindor'), {
      ingress: [rule('deny-all-ingress-from-slytherin', 'Deny', 'from', [house('slytherin')])],
      egress: [rule('deny-all-egress-to-slytherin', 'Deny', 'to', [house('slytherin')])],
    }),
    cnp('old-priority-60-new-priority-40-example', 'Admin', passPriority, house('gryffindor'), {
      ingress: [rule('pass-all-ingress-from-slytherin', 'Pass', 'from', [house('slytherin')])],
      egress: [rule('pass-all-egress-to-slytherin', 'Pass', 'to', [house('slytherin')])],
    }),
  ];
  it('priority 50 Deny beats priority 60 Pass', () => {
    expect(poke({ cluster: mk(60) }, ['slytherin', 0], ['gryffindor', 0], 80)).toBe(false);
    expect(poke({ cluster: mk(60) }, ['gryffindor', 0], ['slytherin', 0], 80)).toBe(false);
  });
  it('after the update to priority 40 the Pass wins', () => {
    expect(poke({ cluster: mk(40) }, ['slytherin', 0], ['gryffindor', 0], 80)).toBe(true);
    expect(poke({ cluster: mk(40) }, ['gryffindor', 0], ['slytherin', 0], 80)).toBe(true);
  });
});

describe('policy-api conformance: inline CIDR peers (CNPAdminTierEgressInlineCIDRPeers)', () => {
  const rules = (extra: unknown[] = []) => [
    ...extra,
    rule('allow-egress-to-slytherin', 'Accept', 'to', [house('slytherin')]),
    rule('deny-egress-to-internet', 'Deny', 'to', [{ networks: ['0.0.0.0/0', '::/0'] }]),
  ];
  const at = (r: unknown[]) => ({
    cluster: [cnp('inline-cidr-as-peers-example', 'Admin', 85, house('gryffindor'), { egress: r })],
  });
  it('networks 0.0.0.0/0 covers pod-to-pod traffic', () => {
    expect(poke(at(rules()), ['gryffindor', 0], ['slytherin', 0], 80)).toBe(true);
    expect(poke(at(rules()), ['gryffindor', 0], ['ravenclaw', 0], 80)).toBe(false);
    expect(poke(at(rules()), ['gryffindor', 0], ['hufflepuff', 1], 53, 'UDP')).toBe(false);
  });
  it('an Accept of specific pod IPs placed first opens them', () => {
    const extra = [
      rule('allow-egress-to-specific-podIPs', 'Accept', 'to', [
        { networks: [`${ipOf('ravenclaw', 0)}/32`, `${ipOf('hufflepuff', 0)}/32`] },
      ]),
    ];
    expect(poke(at(rules(extra)), ['gryffindor', 0], ['ravenclaw', 0], 80)).toBe(true);
    expect(poke(at(rules(extra)), ['gryffindor', 0], ['hufflepuff', 0], 8080)).toBe(true);
    expect(poke(at(rules(extra)), ['gryffindor', 0], ['ravenclaw', 1], 80)).toBe(false);
  });
});

describe('v1alpha1 AdminNetworkPolicy and BaselineAdminNetworkPolicy', () => {
  const anp = (priority: number, ingress: unknown[]): OtherObject => ({
    apiVersion: 'policy.networking.k8s.io/v1alpha1',
    kind: 'AdminNetworkPolicy',
    metadata: { name: `anp-${priority}` },
    spec: {
      priority,
      subject: { namespaces: { matchLabels: { 'conformance-house': 'gryffindor' } } },
      ingress,
    },
  });
  const banp = (egress: unknown[]): OtherObject => ({
    apiVersion: 'policy.networking.k8s.io/v1alpha1',
    kind: 'BaselineAdminNetworkPolicy',
    metadata: { name: 'default' },
    spec: { subject: { namespaces: {} }, egress },
  });
  const fromSly = [{ namespaces: { matchLabels: { 'conformance-house': 'slytherin' } } }];
  it('ports: portNumber, portRange and namedPort', () => {
    const p = {
      cluster: [
        anp(5, [
          { action: 'Allow', from: fromSly, ports: [{ namedPort: 'web' }] },
          {
            action: 'Allow',
            from: fromSly,
            ports: [{ portRange: { start: 5000, end: 6000, protocol: 'UDP' } }],
          },
          { action: 'Deny', from: fromSly },
        ]),
      ],
    };
    expect(poke(p, ['slytherin', 0], ['gryffindor', 0], 80)).toBe(true);
    expect(poke(p, ['slytherin', 0], ['gryffindor', 0], 5353, 'UDP')).toBe(true);
    expect(poke(p, ['slytherin', 0], ['gryffindor', 0], 53, 'UDP')).toBe(false);
    expect(poke(p, ['slytherin', 0], ['gryffindor', 0], 8080)).toBe(false);
  });
  it('baseline deny applies only where no NetworkPolicy isolates the pod', () => {
    const p = {
      cluster: [
        banp([
          { action: 'Deny', to: [{ namespaces: { matchLabels: { 'conformance-house': 'ravenclaw' } } }] },
        ]),
      ],
    };
    expect(poke(p, ['gryffindor', 0], ['ravenclaw', 0], 80)).toBe(false);
    expect(poke(p, ['gryffindor', 0], ['slytherin', 0], 80)).toBe(true);
    const np = {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'egress-all', namespace: NS('gryffindor') },
      spec: { podSelector: {}, policyTypes: ['Egress'], egress: [{}] },
    } as unknown as NetworkPolicy;
    expect(poke({ ...p, np: [np] }, ['gryffindor', 0], ['ravenclaw', 0], 80)).toBe(true);
  });
  it('explains tier decisions and Pass chains', () => {
    const { namespaces, pods } = cluster();
    const engine = buildEngine({
      namespaces,
      pods,
      clusterPolicies: [anp(1, [{ name: 'pass-sly', action: 'Pass', from: fromSly }])],
    });
    const v = engine.evaluate({
      from: { namespace: NS('slytherin'), pod: 'draco-malfoy-0' },
      to: { namespace: NS('gryffindor'), pod: 'harry-potter-0' },
      port: 80,
    });
    expect(v.allowed).toBe(true);
    expect(v.ingress.passedBy).toEqual(['AdminNetworkPolicy/anp-1']);
    expect(v.ingress.reason).toBe(
      'ingress to network-policy-conformance-gryffindor/harry-potter-0: no policy decided after Pass by AdminNetworkPolicy/anp-1, allowed by default',
    );
    expect(v.policies).toEqual(['AdminNetworkPolicy/anp-1']);
  });
});

describe('policy-api conformance: node peers (CNPAdminTierEgressNodePeers, experimental)', () => {
  const node = {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: 'kind-worker', labels: { 'kubernetes.io/os': 'linux' } },
    status: { addresses: [{ type: 'InternalIP', address: '172.18.0.2' }] },
  } as unknown as OtherObject;
  const hostServer: Pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'host-server', namespace: NS('forbidden-forrest'), labels: { app: 'host-server' } },
    spec: { nodeName: 'kind-worker', hostNetwork: true, containers: [{ name: 'c' }] },
    status: { podIP: '172.18.0.2', podIPs: [{ ip: '172.18.0.2' }] },
  };
  const policy = cnp('node-and-cidr-as-peers-example', 'Admin', 75, house('gryffindor'), {
    egress: [
      rule(
        'allow-egress-to-34345-on-nodes',
        'Accept',
        'to',
        [{ nodes: { matchLabels: { 'kubernetes.io/os': 'linux' } } }],
        [tcpPort(34345)],
      ),
      rule(
        'pass-egress-to-34347-on-nodes',
        'Pass',
        'to',
        [{ nodes: { matchLabels: { 'kubernetes.io/os': 'linux' } } }],
        [udpPort(34347)],
      ),
      rule('deny-egress-to-slytherin-and-nodes-and-internet', 'Deny', 'to', [
        house('slytherin'),
        { nodes: { matchLabels: { 'kubernetes.io/os': 'linux' } } },
        { networks: ['0.0.0.0/0', '::/0'] },
      ]),
    ],
  });
  const engine = () => {
    const { namespaces, pods } = cluster();
    return buildEngine({ namespaces, pods: [...pods, hostServer], clusterPolicies: [policy], nodes: [node] });
  };
  const toHost = (port: number, protocol: L4Protocol) =>
    engine().evaluate({
      from: { namespace: NS('gryffindor'), pod: 'harry-potter-1' },
      to: { namespace: NS('forbidden-forrest'), pod: 'host-server' },
      port,
      protocol,
    });
  it('Accept and Pass to node ports, Deny the rest', () => {
    expect(toHost(34345, 'TCP').allowed).toBe(true);
    expect(toHost(34347, 'UDP').allowed).toBe(true);
    expect(toHost(34346, 'TCP').allowed).toBe(false);
    expect(toHost(34348, 'UDP').allowed).toBe(false);
    expect(toHost(34350, 'SCTP').allowed).toBe(false);
    expect(toHost(34345, 'TCP').egress.rule).toBe('egress[0] (allow-egress-to-34345-on-nodes)');
  });
  it('a host-network pod counted as a pod (hostNetworkPods=pod) is still reached as its node', () => {
    const { namespaces, pods } = cluster();
    const e = buildEngine(
      { namespaces, pods: [...pods, hostServer], clusterPolicies: [policy], nodes: [node] },
      { hostNetworkPods: 'pod' },
    );
    const q = (port: number, protocol: L4Protocol) =>
      e.evaluate({
        from: { namespace: NS('gryffindor'), pod: 'harry-potter-1' },
        to: { namespace: NS('forbidden-forrest'), pod: 'host-server' },
        port,
        protocol,
      }).allowed;
    expect([q(34345, 'TCP'), q(34347, 'UDP'), q(34346, 'TCP'), q(34348, 'UDP')]).toEqual([
      true,
      true,
      false,
      false,
    ]);
  });
  it('the node address itself is a node peer; other pods are denied by the networks rule', () => {
    const e = engine();
    const q = (to: { ip: string } | { namespace: string; pod: string }) =>
      e.evaluate({ from: { namespace: NS('gryffindor'), pod: 'harry-potter-0' }, to, port: 34345 }).allowed;
    expect(q({ ip: '172.18.0.2' })).toBe(true);
    expect(q({ namespace: NS('ravenclaw'), pod: 'luna-lovegood-0' })).toBe(false);
    expect(q({ ip: '1.1.1.1' })).toBe(false);
  });
});
