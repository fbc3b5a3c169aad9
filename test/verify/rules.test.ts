/**
 * Targeted cases for the documented NetworkPolicy rules (API field comments and the concepts page) and
 * for the implementation-defined corners, which are options with the upstream e2e behaviour as default.
 */
import { describe, expect, it } from 'vitest';
import type { NetworkPolicy, OtherObject, Pod } from '../../src/model/k8s.ts';
import { buildEngine } from '../../src/verify/engine.ts';
import type { EngineOptions } from '../../src/verify/types.ts';
import { modelNamespaces, modelPods } from './e2e-model.ts';

function np(ns: string, name: string, spec: Record<string, unknown>): NetworkPolicy {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name, namespace: ns },
    spec,
  } as unknown as NetworkPolicy;
}

function pod(
  ns: string,
  name: string,
  labels: Record<string, string>,
  ip: string,
  extra: Partial<Pod['spec']> = {},
  ports: { name?: string; containerPort: number; protocol?: string }[] = [],
): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns, labels },
    spec: { containers: [{ name: 'c', ports }], ...extra },
    status: { podIPs: [{ ip }] },
  };
}

const ns = (name: string, labels: Record<string, string> = {}) => ({
  apiVersion: 'v1',
  kind: 'Namespace' as const,
  metadata: { name, labels },
});

const podRef = (p: string) => {
  const [namespace, pod] = p.split('/') as [string, string];
  return { namespace, pod };
};

function engine(policies: NetworkPolicy[], options?: EngineOptions, cluster: OtherObject[] = []) {
  return buildEngine(
    { namespaces: modelNamespaces(), pods: modelPods(), networkPolicies: policies, clusterPolicies: cluster },
    options,
  );
}

const allowed = (
  e: ReturnType<typeof engine>,
  from: string,
  to: string,
  port: number | string,
  protocol?: 'TCP' | 'UDP' | 'SCTP',
) =>
  e.evaluate({
    from: from.includes('/') ? podRef(from) : { ip: from },
    to: to.includes('/') ? podRef(to) : { ip: to },
    port,
    ...(protocol ? { protocol } : {}),
  }).allowed;

describe('policyTypes defaulting', () => {
  it('no policyTypes and no rules: ingress deny, egress untouched', () => {
    const e = engine([np('x', 'p', { podSelector: {} })]);
    expect(allowed(e, 'y/a', 'x/a', 80)).toBe(false);
    expect(allowed(e, 'x/a', 'y/a', 80)).toBe(true);
  });
  it('no policyTypes with egress rules: both directions governed', () => {
    const e = engine([np('x', 'p', { podSelector: {}, egress: [{ ports: [{ port: 81 }] }] })]);
    expect(allowed(e, 'x/a', 'y/a', 80)).toBe(false);
    expect(allowed(e, 'x/a', 'y/a', 81)).toBe(true);
    expect(allowed(e, 'y/a', 'x/a', 81)).toBe(false);
  });
  it('egress: [] without policyTypes does not touch egress', () => {
    const e = engine([np('x', 'p', { podSelector: {}, ingress: [{}], egress: [] })]);
    expect(allowed(e, 'x/a', 'y/a', 80)).toBe(true);
  });
  it('rules of a direction missing from policyTypes are ignored', () => {
    const e = engine([
      np('x', 'p', {
        podSelector: {},
        policyTypes: ['Ingress'],
        ingress: [{}],
        egress: [{ ports: [{ port: 1 }] }],
      }),
    ]);
    expect(allowed(e, 'x/a', 'y/a', 80)).toBe(true);
  });
});

describe('ports', () => {
  it('endPort opens an inclusive range', () => {
    const e = engine([np('x', 'p', { podSelector: {}, ingress: [{ ports: [{ port: 80, endPort: 81 }] }] })]);
    expect(allowed(e, 'y/a', 'x/a', 80)).toBe(true);
    expect(allowed(e, 'y/a', 'x/a', 81)).toBe(true);
    expect(allowed(e, 'y/a', 'x/a', 82)).toBe(false);
    expect(allowed(e, 'y/a', 'x/a', 81, 'UDP')).toBe(false);
  });
  it('a protocol-only port matches every port of that protocol', () => {
    const e = engine([np('x', 'p', { podSelector: {}, ingress: [{ ports: [{ protocol: 'UDP' }] }] })]);
    expect(allowed(e, 'y/a', 'x/a', 53, 'UDP')).toBe(true);
    expect(allowed(e, 'y/a', 'x/a', 53, 'TCP')).toBe(false);
  });
  it('a named port resolves on each destination pod to its own number', () => {
    const pods = [
      pod('s', 'one', { app: 'api' }, '10.9.0.1', {}, [{ name: 'web', containerPort: 8080 }]),
      pod('s', 'two', { app: 'api' }, '10.9.0.2', {}, [{ name: 'web', containerPort: 9090 }]),
      pod('s', 'client', { app: 'client' }, '10.9.0.3'),
    ];
    const e = buildEngine({
      namespaces: [ns('s')],
      pods,
      networkPolicies: [
        np('s', 'api', {
          podSelector: { matchLabels: { app: 'api' } },
          ingress: [{ ports: [{ port: 'web' }] }],
        }),
        np('s', 'client', {
          podSelector: { matchLabels: { app: 'client' } },
          policyTypes: ['Egress'],
          egress: [{ ports: [{ port: 'web' }] }],
        }),
      ],
    });
    const q = (to: string, port: number) =>
      e.evaluate({ from: { namespace: 's', pod: 'client' }, to: { namespace: 's', pod: to }, port }).allowed;
    expect(q('one', 8080)).toBe(true);
    expect(q('one', 9090)).toBe(false);
    expect(q('two', 9090)).toBe(true);
    expect(q('two', 8080)).toBe(false);
    // A named egress port never matches a destination that is not a pod.
    expect(
      e.evaluate({ from: { namespace: 's', pod: 'client' }, to: { ip: '8.8.8.8' }, port: 8080 }).allowed,
    ).toBe(false);
  });
  it('a named port must match the container port protocol', () => {
    const e = engine([
      np('x', 'p', { podSelector: {}, ingress: [{ ports: [{ port: 'serve-80-udp', protocol: 'TCP' }] }] }),
    ]);
    expect(allowed(e, 'y/a', 'x/a', 80, 'TCP')).toBe(false);
    expect(allowed(e, 'y/a', 'x/a', 80, 'UDP')).toBe(false);
  });
  it('peers and ports are not cross-multiplied across rules', () => {
    const e = engine([
      np('x', 'p', {
        podSelector: { matchLabels: { pod: 'a' } },
        ingress: [
          { from: [{ podSelector: { matchLabels: { pod: 'b' } } }], ports: [{ port: 80 }] },
          { from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }], ports: [{ port: 81 }] },
        ],
      }),
    ]);
    expect(allowed(e, 'x/b', 'x/a', 80)).toBe(true);
    expect(allowed(e, 'x/b', 'x/a', 81)).toBe(false);
    expect(allowed(e, 'y/c', 'x/a', 81)).toBe(true);
    expect(allowed(e, 'y/c', 'x/a', 80)).toBe(false);
  });
  it('a query port name is resolved on the destination pod', () => {
    const e = engine([
      np('x', 'p', { podSelector: {}, ingress: [{ ports: [{ port: 81, protocol: 'UDP' }] }] }),
    ]);
    const v = e.evaluate({ from: podRef('y/a'), to: podRef('x/a'), port: 'serve-81-udp' });
    expect([v.allowed, v.port, v.protocol]).toEqual([true, 81, 'UDP']);
  });
});

describe('peers', () => {
  it('empty from admits outside addresses; selector peers never do', () => {
    const open = engine([np('x', 'p', { podSelector: {}, ingress: [{ ports: [{ port: 80 }] }] })]);
    expect(allowed(open, '8.8.8.8', 'x/a', 80)).toBe(true);
    const sel = engine([np('x', 'p', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: {} }] }] })]);
    expect(allowed(sel, '8.8.8.8', 'x/a', 80)).toBe(false);
    expect(allowed(sel, 'z/c', 'x/a', 80)).toBe(true);
  });
  it('equal namespace selectors of several policies are answered for each namespace asked', () => {
    // The two policies' peers have one compiled selector, whose answers the engine keeps by namespace.
    const to = {
      namespaceSelector: { matchLabels: { team: 'red' } },
      podSelector: { matchLabels: { app: 'db' } },
    };
    const e = buildEngine({
      namespaces: [ns('a', { team: 'red' }), ns('b', { team: 'blue' })],
      pods: [
        pod('a', 'db', { app: 'db' }, '10.9.0.1', {}, [{ containerPort: 80 }]),
        pod('b', 'db', { app: 'db' }, '10.9.0.2', {}, [{ containerPort: 80 }]),
        pod('a', 'client', { app: 'client' }, '10.9.0.3'),
        pod('b', 'client', { app: 'client' }, '10.9.0.4'),
      ],
      networkPolicies: ['a', 'b'].map((n) =>
        np(n, 'p', {
          podSelector: { matchLabels: { app: 'client' } },
          policyTypes: ['Egress'],
          egress: [{ to: [to] }],
        }),
      ),
    });
    expect(allowed(e, 'a/client', 'a/db', 80)).toBe(true);
    expect(allowed(e, 'a/client', 'b/db', 80)).toBe(false);
    expect(allowed(e, 'b/client', 'b/db', 80)).toBe(false);
    expect(allowed(e, 'b/client', 'a/db', 80)).toBe(true);
  });
  it('a podSelector-only peer selects pods of the policy namespace', () => {
    const e = engine([np('x', 'p', { podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }] })]);
    expect(allowed(e, 'x/c', 'x/a', 80)).toBe(true);
    expect(allowed(e, 'y/c', 'x/a', 80)).toBe(false);
  });
  it('except narrows only its own ipBlock; another peer may still allow the address', () => {
    const e = engine([
      np('x', 'p', {
        podSelector: {},
        ingress: [
          {
            from: [
              { ipBlock: { cidr: '8.8.0.0/16', except: ['8.8.8.0/24'] } },
              { ipBlock: { cidr: '8.8.8.8/32' } },
            ],
          },
        ],
      }),
    ]);
    expect(allowed(e, '8.8.1.1', 'x/a', 80)).toBe(true);
    expect(allowed(e, '8.8.8.7', 'x/a', 80)).toBe(false);
    expect(allowed(e, '8.8.8.8', 'x/a', 80)).toBe(true);
  });
  it('IPv6 ipBlocks', () => {
    const e = engine([
      np('x', 'p', {
        podSelector: {},
        ingress: [{ from: [{ ipBlock: { cidr: '2001:db8::/32', except: ['2001:db8:1::/48'] } }] }],
      }),
    ]);
    expect(allowed(e, '2001:db8::5', 'x/a', 80)).toBe(true);
    expect(allowed(e, '2001:db8:1::5', 'x/a', 80)).toBe(false);
    expect(allowed(e, '8.8.8.8', 'x/a', 80)).toBe(false);
  });
  it('an IP that belongs to a pod stands for that pod', () => {
    const e = engine([
      np('x', 'p', {
        podSelector: {},
        ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b' } } }] }],
      }),
    ]);
    expect(allowed(e, '10.1.2.10', 'x/a', 80)).toBe(true); // x/b's address
    expect(allowed(e, '10.1.3.10', 'x/a', 80)).toBe(false); // x/c's address
  });
});

describe('implementation-defined corners', () => {
  const cidrToB = np('x', 'p', {
    podSelector: { matchLabels: { pod: 'a' } },
    policyTypes: ['Egress'],
    egress: [{ to: [{ ipBlock: { cidr: '10.1.2.10/32' } }] }],
  });
  it('ipBlock matches pod IPs by default (e2e), not with ipBlockMatchesPods=false', () => {
    const on = engine([cidrToB]);
    const v = on.evaluate({ from: podRef('x/a'), to: podRef('x/b'), port: 80 });
    expect(v.allowed).toBe(true);
    expect(v.notes).toEqual(['an ipBlock matched a pod IP (ipBlockMatchesPods=true)']);
    expect(allowed(engine([cidrToB], { ipBlockMatchesPods: false }), 'x/a', 'x/b', 80)).toBe(false);
  });
  it('an option given as undefined keeps its default, as one left out does', () => {
    // A caller passing its own optional settings through ({ ipBlockMatchesPods: flags.ipblockPods })
    // must get the documented defaults, not the opposite of each.
    const unset = {
      ipBlockMatchesPods: undefined,
      selfTraffic: undefined,
      nodeTraffic: undefined,
      hostNetworkPods: undefined,
    } as unknown as EngineOptions;
    const e = engine([cidrToB], unset);
    expect(e.options).toEqual(engine([cidrToB]).options);
    expect(allowed(e, 'x/a', 'x/b', 80)).toBe(true);
    const deny = np('x', 'deny', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
    expect(allowed(engine([deny], unset), 'x/a', 'x/a', 80)).toBe(true);
    // A misspelt value is refused, not read as the other one.
    expect(() => engine([deny], { selfTraffic: 'evaluat' } as unknown as EngineOptions)).toThrow(
      'engine option selfTraffic: "evaluat" is not one of "allow", "evaluate"',
    );
  });
  it('a denial shaped by ipBlockMatchesPods=false says which ipBlock held the pod IP', () => {
    const v = engine([cidrToB], { ipBlockMatchesPods: false }).evaluate({
      from: podRef('x/a'),
      to: podRef('x/b'),
      port: 80,
    });
    expect(v.allowed).toBe(false);
    expect(v.notes).toEqual([
      'x/p egress[0] ipBlock 10.1.2.10/32 holds the IP of x/b (10.1.2.10) but ipBlocks do not match pod IPs (ipBlockMatchesPods=false)',
    ]);
    // An ipBlock without the pod's address, or on other ports, did not shape the answer: no note.
    const other = np('x', 'p', {
      podSelector: { matchLabels: { pod: 'a' } },
      policyTypes: ['Egress'],
      egress: [
        { to: [{ ipBlock: { cidr: '10.1.0.0/16', except: ['10.1.2.0/24'] } }] },
        { to: [{ ipBlock: { cidr: '10.1.2.10/32' } }], ports: [{ port: 81 }] },
      ],
    });
    const w = engine([other], { ipBlockMatchesPods: false }).evaluate({
      from: podRef('x/a'),
      to: podRef('x/b'),
      port: 80,
    });
    expect([w.allowed, w.notes]).toEqual([false, []]);
  });
  it('a pod without an IP in the input: matched by a block of every address, else the ipBlocks are named', () => {
    // A workload with no pod in the snapshot is answered for its pod template: no address yet, but the
    // one it gets is an IPv4 address (the cluster's pods have IPv4 ones), inside 0.0.0.0/0 whatever it is.
    const open = (cidr: string) =>
      np('x', 'open', {
        podSelector: { matchLabels: { pod: 'b' } },
        ingress: [{ from: [{ ipBlock: { cidr } }], ports: [{ port: 80 }] }],
      });
    const template = { namespace: 'y', labels: { pod: 'new' }, name: 'y/Deployment/new' };
    const all = engine([open('0.0.0.0/0')]).evaluate({ from: template, to: podRef('x/b'), port: 80 });
    expect([all.allowed, all.notes]).toEqual([true, []]);
    // ::/0 holds no IPv4 address; 10.0.0.0/8 may or may not hold the address it gets.
    expect(engine([open('::/0')]).evaluate({ from: template, to: podRef('x/b'), port: 80 }).allowed).toBe(
      false,
    );
    const v = engine([open('10.0.0.0/8')]).evaluate({ from: template, to: podRef('x/b'), port: 80 });
    expect(v.allowed).toBe(false);
    expect(v.notes).toEqual([
      'x/open ingress[0] ipBlock 10.0.0.0/8 was not matched: y/Deployment/new has no IP in the input, and the one it gets may be inside it',
    ]);
    // Not with ipBlockMatchesPods=false; and on a port the rule does not name there is nothing to say.
    const off = engine([open('0.0.0.0/0')], { ipBlockMatchesPods: false });
    expect(off.evaluate({ from: template, to: podRef('x/b'), port: 80 }).allowed).toBe(false);
    const other = engine([open('10.0.0.0/8')]).evaluate({ from: template, to: podRef('x/b'), port: 81 });
    expect([other.allowed, other.notes]).toEqual([false, []]);
  });
  it('a pod without an IP in the input: an ipBlock of a family no pod of the cluster has is not named', () => {
    // The cluster's pods are IPv4 only: the address the template's pod gets is in no IPv6 block.
    const open = np('x', 'open', {
      podSelector: { matchLabels: { pod: 'b' } },
      ingress: [
        { from: [{ ipBlock: { cidr: '::/0' } }, { ipBlock: { cidr: 'fd00::/8' } }], ports: [{ port: 80 }] },
      ],
    });
    const template = { namespace: 'y', labels: { pod: 'new' }, name: 'y/Deployment/new' };
    const v = engine([open]).evaluate({ from: template, to: podRef('x/b'), port: 80 });
    expect([v.allowed, v.notes]).toEqual([false, []]);
  });
  it('an AdminNetworkPolicy networks peer of every address denies a pod without an IP in the input', () => {
    const denyAll = {
      apiVersion: 'policy.networking.k8s.io/v1alpha1',
      kind: 'AdminNetworkPolicy',
      metadata: { name: 'no-egress' },
      spec: {
        priority: 1,
        subject: { namespaces: {} },
        egress: [{ action: 'Deny', to: [{ networks: ['0.0.0.0/0'] }] }],
      },
    } as unknown as OtherObject;
    const v = engine([], {}, [denyAll]).evaluate({
      from: podRef('x/a'),
      to: { namespace: 'y', labels: { pod: 'new' } },
      port: 80,
    });
    expect([v.allowed, v.egress.tier]).toEqual([false, 'admin']);
  });
  it('the notes say when selfTraffic, nodeTraffic or hostNetworkPods set to their other value applied', () => {
    const deny = np('x', 'deny', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
    const self = engine([deny], { selfTraffic: 'evaluate' }).evaluate({
      from: podRef('x/a'),
      to: podRef('x/a'),
      port: 80,
    });
    expect([self.allowed, self.notes]).toEqual([
      false,
      ['a pod reaching itself is evaluated like any other connection (selfTraffic=evaluate)'],
    ]);
    const nodes = [
      {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: 'n1' },
        status: { addresses: [{ type: 'InternalIP', address: '192.168.1.1' }] },
      },
    ] as unknown as OtherObject[];
    const cluster = (options: EngineOptions) =>
      buildEngine(
        {
          namespaces: [ns('s')],
          pods: [
            pod('s', 'web', { app: 'web' }, '10.8.0.1', { nodeName: 'n1' }),
            pod('s', 'agent', { app: 'agent' }, '192.168.1.1', { nodeName: 'n1', hostNetwork: true }),
          ],
          networkPolicies: [np('s', 'deny', { podSelector: {} })],
          nodes,
        },
        options,
      );
    const node = cluster({ nodeTraffic: 'evaluate' }).evaluate({
      from: { ip: '192.168.1.1' },
      to: { namespace: 's', pod: 'web' },
      port: 80,
    });
    expect([node.allowed, node.notes]).toEqual([
      false,
      ['traffic from the node a pod runs on is evaluated like any other address (nodeTraffic=evaluate)'],
    ]);
    const host = cluster({ hostNetworkPods: 'pod' }).evaluate({
      from: { namespace: 's', pod: 'agent' },
      to: { namespace: 's', pod: 'web' },
      port: 80,
    });
    expect([host.allowed, host.notes]).toEqual([
      false,
      ['s/agent is a host-network pod, counted as a pod (hostNetworkPods=pod)'],
    ]);
  });
  it('two admin-tier policies of one priority that decide a connection differently: the note says so', () => {
    const anp = (name: string, priority: number, action: string, ingress = true) =>
      ({
        apiVersion: 'policy.networking.k8s.io/v1alpha1',
        kind: 'AdminNetworkPolicy',
        metadata: { name },
        spec: {
          priority,
          subject: { namespaces: { matchLabels: { ns: 'x' } } },
          ...(ingress
            ? { ingress: [{ action, from: [{ namespaces: { matchLabels: { ns: 'y' } } }] }] }
            : { egress: [{ action, to: [{ namespaces: {} }] }] }),
        },
      }) as unknown as OtherObject;
    const ask = (cluster: OtherObject[]) =>
      engine([], {}, cluster).evaluate({ from: podRef('y/a'), to: podRef('x/a'), port: 80 });
    // Upstream leaves the order of equal priorities unspecified: the cluster may apply either.
    const v = ask([anp('allow-y', 0, 'Allow'), anp('quarantine', 0, 'Deny')]);
    expect(v.allowed).toBe(true);
    expect(v.notes).toEqual([
      'AdminNetworkPolicy/allow-y (Allow) and AdminNetworkPolicy/quarantine (Deny) both have priority 0 and match this ingress; their order is unspecified, so the cluster may apply either: answered in Kind/name order',
    ]);
    const w = ask([anp('allow-y', 0, 'Pass'), anp('quarantine', 0, 'Deny')]);
    expect(w.notes).toEqual([
      'AdminNetworkPolicy/allow-y (Pass) and AdminNetworkPolicy/quarantine (Deny) both have priority 0 and match this ingress; their order is unspecified, so the cluster may apply either: answered in Kind/name order',
    ]);
    // The same action, another priority, or a policy that does not match this connection: no note.
    expect(ask([anp('allow-y', 0, 'Deny'), anp('quarantine', 0, 'Deny')]).notes).toEqual([]);
    expect(ask([anp('allow-y', 1, 'Allow'), anp('quarantine', 0, 'Deny')]).notes).toEqual([]);
    expect(ask([anp('allow-y', 0, 'Allow'), anp('quarantine', 0, 'Deny', false)]).notes).toEqual([]);
  });
  it('a pod reaching itself: allowed by default, evaluated on request', () => {
    const deny = np('x', 'deny', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
    const v = engine([deny]).evaluate({ from: podRef('x/a'), to: podRef('x/a'), port: 80 });
    expect(v.allowed).toBe(true);
    expect(v.reason).toBe(
      'allowed: x/a is connecting to itself, which policies do not restrict (selfTraffic=allow)',
    );
    expect(v.notes).toEqual(['a pod reaching itself is always allowed (selfTraffic=allow)']);
    expect(allowed(engine([deny], { selfTraffic: 'evaluate' }), 'x/a', 'x/a', 80)).toBe(false);
  });
  it('a pod reaching its own IP is not subject to ClusterNetworkPolicy (hairpin), also when evaluated', () => {
    const denyAll = {
      apiVersion: 'policy.networking.k8s.io/v1alpha2',
      kind: 'ClusterNetworkPolicy',
      metadata: { name: 'deny-all' },
      spec: {
        tier: 'Admin',
        priority: 1,
        subject: { namespaces: {} },
        ingress: [{ action: 'Deny', from: [{ namespaces: {} }] }],
        egress: [{ action: 'Deny', to: [{ namespaces: {} }] }],
      },
    } as unknown as OtherObject;
    const e = engine([], { selfTraffic: 'evaluate' }, [denyAll]);
    expect(e.evaluate({ from: podRef('x/a'), to: { ip: '10.1.1.10' }, port: 80 }).allowed).toBe(true);
    expect(allowed(e, 'x/a', 'x/a', 80)).toBe(true);
    expect(allowed(e, 'x/b', 'x/a', 80)).toBe(false);
  });
  const nodes = [
    {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: 'n1', labels: { role: 'worker' } },
      status: { addresses: [{ type: 'InternalIP', address: '192.168.1.1' }] },
    },
    {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: 'n2' },
      status: { addresses: [{ type: 'InternalIP', address: '192.168.1.2' }] },
    },
  ] as unknown as OtherObject[];
  const cluster = (options?: EngineOptions) =>
    buildEngine(
      {
        namespaces: [ns('s')],
        pods: [
          pod('s', 'web', { app: 'web' }, '10.8.0.1', { nodeName: 'n1' }),
          pod('s', 'agent', { app: 'agent' }, '192.168.1.2', { nodeName: 'n2', hostNetwork: true }),
        ],
        networkPolicies: [
          np('s', 'deny', {
            podSelector: {},
            ingress: [{ from: [{ podSelector: { matchLabels: { app: 'agent' } } }] }],
          }),
        ],
        nodes,
      },
      options,
    );
  it('traffic from the pod own node is always allowed by default', () => {
    const v = cluster().evaluate({
      from: { ip: '192.168.1.1' },
      to: { namespace: 's', pod: 'web' },
      port: 80,
    });
    expect(v.allowed).toBe(true);
    expect(v.ingress.tier).toBe('exception');
    expect(v.notes).toEqual(['traffic from the node a pod runs on is always allowed (nodeTraffic=allow)']);
    expect(
      cluster({ nodeTraffic: 'evaluate' }).evaluate({
        from: { ip: '192.168.1.1' },
        to: { namespace: 's', pod: 'web' },
        port: 80,
      }).allowed,
    ).toBe(false);
    expect(
      cluster().evaluate({ from: { ip: '192.168.1.2' }, to: { namespace: 's', pod: 'web' }, port: 80 })
        .allowed,
    ).toBe(false);
  });
  it("traffic from its own node's ExternalIP is evaluated, while a `nodes` peer matches the node at every address", () => {
    // A cloud node: its own traffic to its pods (the kubelet's probes) comes from its InternalIP; its
    // ExternalIP is NATed to it outside the cluster, so a connection from that address is not the
    // node's own, and no CNI admits it as such. A `nodes` peer, though, matches the IPs of
    // node.status.addresses, ExternalIP included (the AdminNetworkPolicy API says so).
    const cloudNodes = [
      {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: 'n1', labels: { role: 'worker' } },
        status: {
          addresses: [
            { type: 'InternalIP', address: '192.168.1.1' },
            { type: 'ExternalIP', address: '203.0.113.1' },
            { type: 'Hostname', address: 'n1' },
          ],
        },
      },
    ] as unknown as OtherObject[];
    const denyToWorkers = {
      apiVersion: 'policy.networking.k8s.io/v1alpha1',
      kind: 'AdminNetworkPolicy',
      metadata: { name: 'no-workers' },
      spec: {
        priority: 5,
        subject: { namespaces: {} },
        egress: [{ name: 'workers', action: 'Deny', to: [{ nodes: { matchLabels: { role: 'worker' } } }] }],
      },
    } as unknown as OtherObject;
    const e = (policies: NetworkPolicy[]) =>
      buildEngine({
        namespaces: [ns('s')],
        pods: [
          {
            ...pod('s', 'web', { app: 'web' }, '10.8.0.1', { nodeName: 'n1' }),
            status: { podIPs: [{ ip: '10.8.0.1' }], hostIP: '192.168.1.1' },
          },
        ],
        networkPolicies: policies,
        clusterPolicies: [denyToWorkers],
        nodes: cloudNodes,
      });
    const deny = np('s', 'deny', { podSelector: {} });
    const web = { namespace: 's', pod: 'web' };
    const fromInternal = e([deny]).evaluate({ from: { ip: '192.168.1.1' }, to: web, port: 80 });
    expect([fromInternal.allowed, fromInternal.ingress.tier]).toEqual([true, 'exception']);
    const fromExternal = e([deny]).evaluate({ from: { ip: '203.0.113.1' }, to: web, port: 80 });
    expect([fromExternal.allowed, fromExternal.ingress.tier]).toEqual([false, 'networkpolicy']);
    expect(fromExternal.notes).toEqual([
      "node n1 (203.0.113.1) is its node's ExternalIP: the node's own traffic to its pods comes from its InternalIP or a pod's status.hostIP, so traffic from this address is evaluated like any other",
    ]);
    // A rule for the address admits it.
    const admit = np('s', 'admit', {
      podSelector: {},
      ingress: [{ from: [{ ipBlock: { cidr: '203.0.113.1/32' } }] }],
    });
    expect(e([deny, admit]).evaluate({ from: { ip: '203.0.113.1' }, to: web, port: 80 }).allowed).toBe(true);
    // The `nodes` peer matches the node at both its InternalIP and its ExternalIP.
    for (const ip of ['192.168.1.1', '203.0.113.1']) {
      const v = e([]).evaluate({ from: web, to: { ip }, port: 10250 });
      expect([ip, v.allowed, v.egress.policy]).toEqual([ip, false, 'AdminNetworkPolicy/no-workers']);
    }
  });
  it('traffic from the pod own node is allowed also when a host-network pod counted as a pod shares its address', () => {
    // hostNetworkPods=pod: a host-network pod on n1 has n1's address; the address is still the node's
    // (the kubelet's probes come from it), and the host-network pod is asked about by name.
    const e = buildEngine(
      {
        namespaces: [ns('s')],
        pods: [
          pod('s', 'web', { app: 'web' }, '10.8.0.1', { nodeName: 'n1' }),
          pod('s', 'proxy', { app: 'proxy' }, '192.168.1.1', { nodeName: 'n1', hostNetwork: true }),
        ],
        networkPolicies: [np('s', 'deny', { podSelector: {} })],
        nodes,
      },
      { hostNetworkPods: 'pod' },
    );
    const v = e.evaluate({ from: { ip: '192.168.1.1' }, to: { namespace: 's', pod: 'web' }, port: 80 });
    expect([v.allowed, v.ingress.tier]).toEqual([true, 'exception']);
    expect(
      e.evaluate({ from: { namespace: 's', pod: 'proxy' }, to: { namespace: 's', pod: 'web' }, port: 80 })
        .allowed,
    ).toBe(false);
  });
  it('host-network pods count as their node by default: not selectable by pod selectors', () => {
    const v = cluster().evaluate({
      from: { namespace: 's', pod: 'agent' },
      to: { namespace: 's', pod: 'web' },
      port: 80,
    });
    expect(v.allowed).toBe(false);
    expect(v.notes).toEqual([
      's/agent (host network, node n2) is a host-network pod, treated as its node (hostNetworkPods=node)',
    ]);
    expect(
      cluster({ hostNetworkPods: 'pod' }).evaluate({
        from: { namespace: 's', pod: 'agent' },
        to: { namespace: 's', pod: 'web' },
        port: 80,
      }).allowed,
    ).toBe(true);
  });
});

describe('explanations', () => {
  it('names the selecting policies, the admitting rule, and the isolating policies on a deny', () => {
    const e = engine([
      np('x', 'a-from-b', {
        podSelector: { matchLabels: { pod: 'a' } },
        ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b' } } }] }],
      }),
      np('x', 'deny-all', { podSelector: {}, policyTypes: ['Ingress'] }),
      np('y', 'egress-80', { podSelector: {}, policyTypes: ['Egress'], egress: [{ ports: [{ port: 80 }] }] }),
    ]);
    const ok = e.evaluate({ from: podRef('x/b'), to: podRef('x/a'), port: 81 });
    expect(ok.allowed).toBe(true);
    expect(ok.ingress.policy).toBe('x/a-from-b');
    expect(ok.ingress.rule).toBe('ingress[0]');
    expect(ok.policies).toEqual(['x/a-from-b', 'x/deny-all']);
    const no = e.evaluate({ from: podRef('y/a'), to: podRef('x/a'), port: 81 });
    expect(no.reason).toBe(
      'denied: egress from y/a: isolated by y/egress-80 and no egress rule matches; ingress to x/a: isolated by x/a-from-b, x/deny-all and no ingress rule matches',
    );
    expect(no.policies).toEqual(['y/egress-80', 'x/a-from-b', 'x/deny-all']);
    expect(no.tier).toBe('networkpolicy');
  });
  it('is independent of the order policies are given in', () => {
    const ps = [
      np('x', 'p1', { podSelector: {}, ingress: [{ ports: [{ port: 80 }] }] }),
      np('x', 'p2', { podSelector: {}, ingress: [{ ports: [{ port: 80 }] }] }),
    ];
    const a = engine(ps).evaluate({ from: podRef('y/a'), to: podRef('x/a'), port: 80 });
    const b = engine([...ps].reverse()).evaluate({ from: podRef('y/a'), to: podRef('x/a'), port: 80 });
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
    expect(a.ingress.policy).toBe('x/p1');
  });
});

describe('finished pods', () => {
  it('do not shadow the address of a running pod', async () => {
    const { podClasses } = await import('../../src/verify/reach.ts');
    const done = pod('s', 'job-1', { app: 'job' }, '10.7.0.5');
    done.status = { phase: 'Succeeded', podIPs: [{ ip: '10.7.0.5' }] };
    const e = buildEngine({
      namespaces: [ns('s')],
      pods: [done, pod('s', 'web', { app: 'web' }, '10.7.0.5')],
      networkPolicies: [
        np('s', 'web-only-from-web', {
          podSelector: {},
          ingress: [{ from: [{ podSelector: { matchLabels: { app: 'web' } } }] }],
        }),
      ],
    });
    expect(e.resolveIP('10.7.0.5').display).toBe('s/web');
    // Pods with no owner are workloads of their own, named as identity names them.
    expect(podClasses(e).map((c) => c.name)).toEqual(['s/Pod/job-1', 's/Pod/web']);
    expect(
      e.evaluate({ from: { ip: '10.7.0.5' }, to: { namespace: 's', pod: 'job-1' }, port: 80 }).allowed,
    ).toBe(true);
  });
});
