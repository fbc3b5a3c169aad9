import { describe, expect, it } from 'vitest';
import type { DNSPort } from '../../src/identity/index.ts';
import type { Namespace, NetworkPolicy, OtherObject, Pod, Service } from '../../src/model/k8s.ts';
import type { MechanismName } from '../../src/isolate/api.ts';
import { parseIsolationSpec, QUARANTINE_LABEL } from '../../src/isolate/api.ts';
import { addressIn, checkIsolation, labelsFor } from '../../src/isolate/leaks.ts';
import {
  desiredObjects,
  dnsExceptionPorts,
  objectNames,
  podAfter,
  podLabelPlan,
  policiesAfter,
} from '../../src/isolate/plan.ts';
import { Engine } from '../../src/verify/engine.ts';
import { parseCidr } from '../../src/verify/ip.ts';
import type { EngineOptions } from '../../src/verify/types.ts';

const ns = (name: string, labels: Record<string, string> = {}): Namespace => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name, labels },
});
const pod = (
  namespace: string,
  name: string,
  labels: Record<string, string>,
  ip: string,
  port?: number,
): Pod => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace, labels },
  spec: { containers: [{ name: 'c', ...(port ? { ports: [{ containerPort: port, name: 'http' }] } : {}) }] },
  status: { phase: 'Running', podIP: ip },
});
const np = (
  namespace: string,
  name: string,
  spec: NetworkPolicy['spec'],
  labels: Record<string, string> = {},
): NetworkPolicy => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { name, namespace, labels },
  spec,
});

/** A policy of shop selecting the web pods, with the one ingress rule given. */
const webIngress = (
  name: string,
  rule: NonNullable<NetworkPolicy['spec']['ingress']>[number],
): NetworkPolicy =>
  np('shop', name, {
    podSelector: { matchLabels: { app: 'web' } },
    policyTypes: ['Ingress'],
    ingress: [rule],
  });
/** An AdminNetworkPolicy (policy.networking.k8s.io/v1alpha1). */
const anp = (name: string, spec: Record<string, unknown>): OtherObject => ({
  apiVersion: 'policy.networking.k8s.io/v1alpha1',
  kind: 'AdminNetworkPolicy',
  metadata: { name },
  spec,
});
/** An AdminNetworkPolicy over every namespace whose one egress rule allows the `nodes` picked, on `port`/TCP. */
const allowToNodes = (name: string, rule: string, nodes: object, port: number): OtherObject =>
  anp(name, {
    priority: 10,
    subject: { namespaces: {} },
    egress: [
      { name: rule, action: 'Allow', to: [{ nodes }], ports: [{ portNumber: { protocol: 'TCP', port } }] },
    ],
  });
/** A Node known by one InternalIP. */
const node = (name: string, ip: string, labels: Record<string, string> = {}): OtherObject => ({
  apiVersion: 'v1',
  kind: 'Node',
  metadata: { name, labels },
  status: { addresses: [{ type: 'InternalIP', address: ip }] },
});

const namespaces = [ns('shop'), ns('kube-system'), ns('forensics', { team: 'ir' })];
const basePods = [
  pod('shop', 'web-1', { app: 'web' }, '10.0.0.1', 8080),
  pod('shop', 'db-1', { app: 'db' }, '10.0.0.2', 5432),
  pod('kube-system', 'coredns-1', { 'k8s-app': 'kube-dns' }, '10.0.1.1'),
  pod('forensics', 'kit', { app: 'kit' }, '10.0.2.1'),
];
/** A foreign allow policy: web accepts any pod of the namespace on 8080 and reaches db on 5432. */
const foreign = np('shop', 'team-web', {
  podSelector: { matchLabels: { app: 'web' } },
  policyTypes: ['Ingress', 'Egress'],
  ingress: [{ from: [{ podSelector: {} }], ports: [{ port: 8080 }] }],
  egress: [{ to: [{ podSelector: { matchLabels: { app: 'db' } } }], ports: [{ port: 5432 }] }],
});
const managedAllow = np(
  'shop',
  'microseg-allow-web',
  {
    podSelector: { matchLabels: { app: 'web' } },
    policyTypes: ['Ingress'],
    ingress: [{ from: [{ ipBlock: { cidr: '0.0.0.0/0' } }] }],
  },
  { 'app.kubernetes.io/managed-by': 'microseg' },
);

function isolate(
  method: MechanismName,
  existing: NetworkPolicy[],
  extraCluster: OtherObject[] = [],
  dnsPorts?: DNSPort[],
  engine?: EngineOptions,
) {
  const r = parseIsolationSpec('iso', {
    reason: 'test',
    target: { pods: ['web-1'] },
    exceptions: { forensics: [{ namespaceSelector: { matchLabels: { team: 'ir' } } }] },
  });
  if (!r.ok) throw new Error(r.problems.join());
  const objs = desiredObjects({
    namespace: 'shop',
    name: 'iso',
    spec: r.spec,
    method,
    names: objectNames('shop', 'iso'),
    ...(dnsPorts ? { dnsPorts } : {}),
  });
  const pods = basePods.map((p) =>
    p.metadata.name === 'web-1' ? podAfter(p, podLabelPlan(p, 'iso', false, [])) : p,
  );
  const own = {
    networkPolicies: [objs.networkPolicy],
    clusterPolicies: objs.clusterPolicy ? [objs.clusterPolicy] : [],
  };
  const input = {
    namespaces,
    pods,
    networkPolicies: policiesAfter(existing, objs.networkPolicy),
    clusterPolicies: [...own.clusterPolicies, ...extraCluster],
    own,
    namespace: 'shop',
    isolatedPods: ['web-1'],
    direction: 'Both' as const,
    ...(engine ? { engine } : {}),
  };
  return { report: checkIsolation(input), input };
}

describe('leak detection', () => {
  it('NetworkPolicy mechanism alone: a foreign allow policy leaks, and the report names policy and rule', () => {
    const { report } = isolate('NetworkPolicy', [foreign, managedAllow]);
    expect(report.leaks).toEqual([
      {
        policy: 'shop/team-web',
        rule: 'ingress[0]',
        direction: 'ingress',
        pod: 'shop/web-1',
        example: 'from shop/db-1 8080/TCP',
      },
      {
        policy: 'shop/team-web',
        rule: 'egress[0]',
        direction: 'egress',
        pod: 'shop/web-1',
        example: 'to shop/db-1 5432/TCP',
      },
    ]);
    expect(report.moreLeaks).toBe(0);
    expect(report.exceptions).toBeGreaterThan(0);
  });

  it('a foreign rule on every port of a protocol probed on none of the common ones (SCTP) is a leak', () => {
    const sctp = np('shop', 'sctp-any', {
      podSelector: { matchLabels: { app: 'web' } },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{ ports: [{ protocol: 'SCTP' }] }],
      egress: [{ ports: [{ protocol: 'SCTP' }] }],
    });
    const { report } = isolate('NetworkPolicy', [sctp]);
    expect(report.leaks.map((l) => [l.policy, l.rule, l.direction, l.example.endsWith('/SCTP')])).toEqual([
      ['shop/sctp-any', 'ingress[0]', 'ingress', true],
      ['shop/sctp-any', 'egress[0]', 'egress', true],
    ]);
  });

  it('an admin-tier rule admitting every SCTP port, evaluated before ours, is a leak', () => {
    const sctp: OtherObject = {
      apiVersion: 'policy.networking.k8s.io/v1alpha2',
      kind: 'ClusterNetworkPolicy',
      metadata: { name: 'a-sctp-any' },
      spec: {
        tier: 'Admin',
        priority: 0,
        subject: { namespaces: { matchLabels: { 'kubernetes.io/metadata.name': 'shop' } } },
        ingress: [
          { name: 'sctp-in', action: 'Accept', from: [{ namespaces: {} }], protocols: [{ sctp: {} }] },
        ],
      },
    };
    const { report } = isolate('ClusterNetworkPolicy', [], [sctp]);
    expect(report.leaks.map((l) => [l.policy, l.rule, l.direction, l.example.endsWith('/SCTP')])).toEqual([
      ['ClusterNetworkPolicy/a-sctp-any', 'ingress[0] (sctp-in)', 'ingress', true],
    ]);
  });

  it('NetworkPolicy mechanism without foreign policies holds: only DNS and forensics get through', () => {
    const { report, input } = isolate('NetworkPolicy', [managedAllow]);
    expect(report.leaks).toEqual([]);
    const e = new Engine(input);
    const q = (from: string, to: string, port: number, protocol: 'TCP' | 'UDP' = 'TCP') => {
      const [fn, fp] = from.split('/') as [string, string];
      const [tn, tp] = to.split('/') as [string, string];
      return e.evaluate({ from: { namespace: fn, pod: fp }, to: { namespace: tn, pod: tp }, port, protocol })
        .allowed;
    };
    expect(q('shop/db-1', 'shop/web-1', 8080)).toBe(false);
    expect(q('shop/web-1', 'shop/db-1', 5432)).toBe(false);
    expect(
      e.evaluate({ from: { ip: '203.0.113.9' }, to: { namespace: 'shop', pod: 'web-1' }, port: 8080 })
        .allowed,
    ).toBe(false);
    expect(q('shop/web-1', 'kube-system/coredns-1', 53, 'UDP')).toBe(true);
    expect(q('shop/web-1', 'kube-system/coredns-1', 443)).toBe(false);
    expect(q('forensics/kit', 'shop/web-1', 8080)).toBe(true);
    // The managed allow policy no longer selects the quarantined pod but still selects others.
    expect(
      e.evaluate({ from: { ip: '203.0.113.9' }, to: { namespace: 'shop', labels: { app: 'web' } }, port: 80 })
        .allowed,
    ).toBe(true);
  });

  it.each(['AdminNetworkPolicy', 'ClusterNetworkPolicy'] as const)(
    '%s mechanism: the admin-tier Deny beats the foreign pod rules; what it cannot name is reported',
    (method) => {
      const ipIngress = webIngress('team-lb', { from: [{ ipBlock: { cidr: '192.0.2.0/24' } }] });
      const { report } = isolate(method, [foreign]);
      expect(report.leaks).toEqual([]);
      // ANP/CNP ingress peers are pods and namespaces only: a foreign ipBlock rule still admits outside sources.
      const withIp = isolate(method, [foreign, ipIngress]).report;
      expect(withIp.leaks).toEqual([
        {
          policy: 'shop/team-lb',
          rule: 'ingress[0]',
          direction: 'ingress',
          pod: 'shop/web-1',
          example: 'from 192.0.2.1 53/TCP',
        },
      ]);
    },
  );

  // On Cilium an ipBlock never matches a pod: an ipBlock holding only a pod's IP admits nothing there,
  // and the leak check said the isolation leaked (or, the other way round, held) on the wrong semantics.
  it.each([
    [undefined, ['from shop/db-1 8080/TCP']],
    [{ ipBlockMatchesPods: true }, ['from shop/db-1 8080/TCP']],
    [{ ipBlockMatchesPods: false }, []],
  ])('checks with the semantics it is given (%j): an ipBlock holding a pod IP', (engine, examples) => {
    const fromDb = webIngress('team-db-ip', {
      from: [{ ipBlock: { cidr: '10.0.0.2/32' } }],
      ports: [{ port: 8080 }],
    });
    const { report } = isolate('NetworkPolicy', [fromDb], [], undefined, engine);
    expect(report.leaks.map((l) => l.example)).toEqual(examples);
    expect(report.leaks.every((l) => l.policy === 'shop/team-db-ip')).toBe(true);
  });

  // Its probe of an ipBlock was the block's first address, here web-1's own IP (10.0.0.1), and the block's
  // other pod, db-1, an ipBlock does not match on Cilium: the check said Isolated while the rule admits
  // every other address of 10.0.0.0/24 (a node, a VM) on port 8080.
  it.each([undefined, { ipBlockMatchesPods: true }, { ipBlockMatchesPods: false }])(
    'an ipBlock whose first addresses are pod IPs is probed on one no pod holds too (%j)',
    (engine) => {
      const fromRange = webIngress('team-range', {
        from: [{ ipBlock: { cidr: '10.0.0.0/24' } }],
        ports: [{ port: 8080 }],
      });
      const { report } = isolate('NetworkPolicy', [fromRange], [], undefined, engine);
      expect(report.leaks.map((l) => l.policy)).toEqual(['shop/team-range']);
      expect(report.leaks[0]!.example).toMatch(/^from (10\.0\.0\.3|shop\/db-1) 8080\/TCP$/);
    },
  );

  it('an admin-tier Allow evaluated before ours is a leak', () => {
    const early = anp('allow-monitoring', {
      priority: 0,
      subject: { namespaces: { matchLabels: { 'kubernetes.io/metadata.name': 'shop' } } },
      ingress: [
        {
          name: 'scrape',
          action: 'Allow',
          from: [{ namespaces: { matchLabels: { team: 'ir' } } }],
          ports: [{ portNumber: { protocol: 'TCP', port: 9090 } }],
        },
      ],
      egress: [{ name: 'all-out', action: 'Pass', to: [{ networks: ['0.0.0.0/0'] }] }],
    });
    const named = { ...early, metadata: { name: 'a-allow-monitoring' } };
    const { report } = isolate('AdminNetworkPolicy', [foreign], [named]);
    // The Pass hands egress back to the NetworkPolicy tier, where the foreign policy admits it.
    expect(report.leaks.map((l) => `${l.direction} ${l.policy} ${l.rule}`)).toContain(
      'egress shop/team-web egress[0]',
    );
  });

  it('an admin-tier policy the engine cannot read is left out and named, and the rest is still proved', () => {
    const fqdn = anp('allow-fqdn', {
      priority: 5,
      subject: { namespaces: {} },
      egress: [{ name: 'saas', action: 'Allow', to: [{ domainNames: ['*.example.com'] }] }],
    });
    const { report } = isolate('NetworkPolicy', [foreign], [fqdn]);
    expect(report.notEvaluated).toHaveLength(1);
    expect(report.notEvaluated[0]).toContain('AdminNetworkPolicy allow-fqdn');
    expect(report.notEvaluated[0]).toContain('domainNames');
    // The foreign NetworkPolicy is still checked: its rules are leaks.
    expect(report.leaks.map((l) => `${l.direction} ${l.policy} ${l.rule}`)).toEqual([
      'ingress shop/team-web ingress[0]',
      'egress shop/team-web egress[0]',
    ]);
    expect(isolate('NetworkPolicy', [foreign]).report.notEvaluated).toEqual([]);
  });

  it('an admin-tier Allow to nodes is a leak, found on the node addresses the snapshot knows', () => {
    const onNode = (p: Pod, node: string, hostIP: string): Pod => ({
      ...p,
      spec: { ...p.spec, nodeName: node },
      status: { ...p.status!, hostIP },
    });
    const kubelet = allowToNodes('allow-kubelet', 'to-nodes', { matchLabels: { role: 'worker' } }, 10250);
    const { input } = isolate('NetworkPolicy', [], [kubelet]);
    const pods = input.pods.map((p) =>
      p.metadata.name === 'web-1' ? onNode(p, 'node-a', '192.168.0.10') : p,
    );
    const nodes = [
      node('node-a', '192.168.0.10', { role: 'control' }),
      node('node-b', '192.168.0.11', { role: 'worker' }),
    ];
    const report = checkIsolation({ ...input, pods, nodes });
    expect(report.leaks.map((l) => `${l.direction} ${l.policy} ${l.rule} ${l.example}`)).toEqual([
      'egress AdminNetworkPolicy/allow-kubelet egress[0] (to-nodes) to node node-b (192.168.0.11) 10250/TCP',
    ]);
    // Known only from a pod's hostIP (no Node object), a node is probed too: its labels are unknown,
    // so only an empty node selector is known to select it.
    const anyNode = structuredClone(kubelet);
    (anyNode.spec as { egress: { to: unknown[] }[] }).egress[0]!.to = [{ nodes: {} }];
    const fromPods = checkIsolation({
      ...input,
      pods,
      clusterPolicies: [...input.own.clusterPolicies, anyNode],
    });
    expect(fromPods.leaks.map((l) => `${l.policy} ${l.example}`)).toEqual([
      'AdminNetworkPolicy/allow-kubelet to node node-a (192.168.0.10) 10250/TCP',
    ]);
  });

  it('an admin-tier Allow to the nodes a selector picks is found among hundreds of nodes', () => {
    const toControl = allowToNodes(
      'allow-apiserver',
      'to-control-plane',
      { matchExpressions: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists' }] },
      6443,
    );
    // 450 workers, and the control-plane node whose address sorts after all of theirs.
    const nodes = [
      ...Array.from({ length: 450 }, (_, i) =>
        node(`worker-${String(i).padStart(3, '0')}`, `10.1.${Math.floor(i / 250)}.${i % 250}`),
      ),
      node('control-0', '10.9.9.9', { 'node-role.kubernetes.io/control-plane': '' }),
    ];
    const { input } = isolate('NetworkPolicy', [], [toControl]);
    const report = checkIsolation({ ...input, nodes });
    expect(report.leaks.map((l) => `${l.policy} ${l.example}`)).toEqual([
      'AdminNetworkPolicy/allow-apiserver to node control-0 (10.9.9.9) 6443/TCP',
    ]);
  });

  it("a foreign rule admitting the pod's own node is no leak at its InternalIP, and one at its ExternalIP", () => {
    // The node's own traffic to its pods comes from its InternalIP (the pod's status.hostIP) and is
    // always admitted: a rule admitting that address changes nothing the isolation could hold. Its
    // ExternalIP is NATed to it outside the cluster: a rule admitting it lets outside clients in.
    const rules = [
      webIngress('from-node', { from: [{ ipBlock: { cidr: '192.168.0.10/32' } }], ports: [{ port: 8080 }] }),
      webIngress('from-edge', { from: [{ ipBlock: { cidr: '203.0.113.10/32' } }], ports: [{ port: 8080 }] }),
    ];
    const { input } = isolate('NetworkPolicy', rules);
    const pods = input.pods.map((p) =>
      p.metadata.name === 'web-1'
        ? { ...p, spec: { ...p.spec, nodeName: 'node-a' }, status: { ...p.status!, hostIP: '192.168.0.10' } }
        : p,
    );
    const cloudNode: OtherObject = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: 'node-a' },
      status: {
        addresses: [
          { type: 'InternalIP', address: '192.168.0.10' },
          { type: 'ExternalIP', address: '203.0.113.10' },
        ],
      },
    };
    const report = checkIsolation({ ...input, pods, nodes: [cloudNode] });
    expect(report.leaks.map((l) => `${l.policy} ${l.rule} ${l.example}`)).toEqual([
      'shop/from-edge ingress[0] from node node-a (203.0.113.10) 8080/TCP',
    ]);
    // Where the network plugin checks the node's traffic like any other (nodeTraffic=evaluate), the
    // rule for its InternalIP is a leak too.
    const evaluated = checkIsolation({
      ...input,
      pods,
      nodes: [cloudNode],
      engine: { nodeTraffic: 'evaluate' },
    });
    expect(evaluated.leaks.map((l) => `${l.policy} ${l.example}`)).toEqual([
      'shop/from-node from node node-a (192.168.0.10) 8080/TCP',
      'shop/from-edge from node node-a (203.0.113.10) 8080/TCP',
    ]);
  });

  it('a Node listing its Hostname and DNS names among its addresses is probed on its IPs, not failed', () => {
    const kubelet = allowToNodes('allow-kubelet', 'to-nodes', {}, 10250);
    // What the kubelet writes on a real Node: a Hostname (and on clouds DNS names) besides its IPs.
    const node: OtherObject = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: 'node-a' },
      status: {
        addresses: [
          { type: 'InternalIP', address: '192.168.0.10' },
          { type: 'Hostname', address: 'node-a' },
          { type: 'InternalDNS', address: 'ip-192-168-0-10.ec2.internal' },
        ],
      },
    };
    const { input } = isolate('NetworkPolicy', [], [kubelet]);
    const report = checkIsolation({ ...input, nodes: [node] });
    expect(report.leaks.map((l) => `${l.policy} ${l.example}`)).toEqual([
      'AdminNetworkPolicy/allow-kubelet to node node-a (192.168.0.10) 10250/TCP',
    ]);
  });

  describe('CoreDNS on 5353 behind the kube-dns Service', () => {
    const kubeDns: Service = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'kube-dns', namespace: 'kube-system' },
      spec: {
        selector: { 'k8s-app': 'kube-dns' },
        clusterIP: '10.96.0.10',
        ports: [
          { name: 'dns', port: 53, protocol: 'UDP', targetPort: 5353 },
          { name: 'dns-tcp', port: 53, protocol: 'TCP', targetPort: 5353 },
        ],
      },
    };
    const dnsPorts = dnsExceptionPorts(
      kubeDns,
      basePods.filter((p) => p.metadata.namespace === 'kube-system'),
    );
    /** A policy of the isolated pod's namespace letting its pods reach the DNS pods on `port`. */
    const allowDns = (port: number) =>
      np('shop', `allow-dns-${port}`, {
        podSelector: {},
        policyTypes: ['Egress'],
        egress: [
          {
            to: [
              {
                namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
                podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
              },
            ],
            ports: [
              { protocol: 'UDP', port },
              { protocol: 'TCP', port },
            ],
          },
        ],
      });

    it.each(['NetworkPolicy', 'ClusterNetworkPolicy'] as const)(
      '%s: the engine proves the isolated pod resolves names on 5353 and reaches nothing else there',
      (method) => {
        expect(dnsPorts).toEqual([
          { protocol: 'UDP', port: 5353 },
          { protocol: 'TCP', port: 5353 },
        ]);
        const { report, input } = isolate(method, [managedAllow], [], dnsPorts);
        expect(report.leaks).toEqual([]);
        const e = new Engine(input);
        const toDns = (port: number, protocol: 'TCP' | 'UDP') =>
          e.evaluate({
            from: { namespace: 'shop', pod: 'web-1' },
            to: { namespace: 'kube-system', pod: 'coredns-1' },
            port,
            protocol,
          }).allowed;
        expect(toDns(5353, 'UDP')).toBe(true);
        expect(toDns(5353, 'TCP')).toBe(true);
        expect(toDns(53, 'UDP')).toBe(false);
        expect(toDns(53, 'TCP')).toBe(false);
      },
    );

    it('NetworkPolicy mechanism: a foreign DNS rule on 5353 is the exception, one on 53 a leak', () => {
      expect(isolate('NetworkPolicy', [allowDns(5353)], [], dnsPorts).report.leaks).toEqual([]);
      expect(
        isolate('NetworkPolicy', [allowDns(53)], [], dnsPorts).report.leaks.map(
          (l) => `${l.policy} ${l.rule} ${l.example}`,
        ),
      ).toEqual(['shop/allow-dns-53 egress[0] to kube-system/coredns-1 53/TCP']);
    });
  });

  it('is deterministic', () => {
    expect(JSON.stringify(isolate('NetworkPolicy', [foreign]).report)).toBe(
      JSON.stringify(isolate('NetworkPolicy', [foreign]).report),
    );
  });
});

describe('witness helpers', () => {
  it('labelsFor satisfies In/Exists and refuses contradictions', () => {
    expect(
      labelsFor({
        matchLabels: { a: '1' },
        matchExpressions: [
          { key: 'b', operator: 'In', values: ['x', 'y'] },
          { key: 'c', operator: 'Exists' },
        ],
      }),
    ).toEqual({
      a: '1',
      b: 'x',
      c: 'probe',
    });
    expect(
      labelsFor({ matchLabels: { a: '1' }, matchExpressions: [{ key: 'a', operator: 'DoesNotExist' }] }),
    ).toBeUndefined();
  });
  it('addressIn avoids except blocks', () => {
    expect(addressIn(parseCidr('10.0.0.0/8')!, [])).toBe('10.0.0.1');
    expect(addressIn(parseCidr('10.0.0.0/8')!, [parseCidr('10.0.0.0/16')!])).toBe('10.1.0.0');
    expect(addressIn(parseCidr('10.0.0.5/32')!, [])).toBe('10.0.0.5');
    expect(addressIn(parseCidr('10.0.0.0/24')!, [parseCidr('10.0.0.0/24')!])).toBeUndefined();
  });
  it('addressIn with addresses to avoid gives one it need not avoid, else the first', () => {
    const pods = new Set(['10.0.0.1', '10.0.0.2', '10.1.0.0']);
    const avoid = (a: string) => pods.has(a);
    expect(addressIn(parseCidr('10.0.0.0/24')!, [], avoid)).toBe('10.0.0.3');
    expect(addressIn(parseCidr('10.0.0.0/8')!, [parseCidr('10.0.0.0/16')!], avoid)).toBe('10.1.0.1');
    expect(addressIn(parseCidr('10.0.0.1/32')!, [], avoid)).toBe('10.0.0.1');
    expect(addressIn(parseCidr('10.0.0.0/24')!, [parseCidr('10.0.0.0/24')!], avoid)).toBeUndefined();
  });
  it('the quarantine label is what selects the isolated pod', () => {
    expect(QUARANTINE_LABEL).toBe('microseg.dev/quarantine');
  });
});
