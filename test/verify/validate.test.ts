/** Bad input: every error names the object and the field, with the exact message. */
import { describe, expect, it } from 'vitest';
import type { NetworkPolicy, OtherObject } from '../../src/model/k8s.ts';
import { InputError } from '../../src/model/snapshot.ts';
import { buildEngine } from '../../src/verify/engine.ts';
import { parseAddr, parseCidr } from '../../src/verify/ip.ts';
import { parseQueries, snapshotFromText } from '../../src/verify/load.ts';
import type { NpRule } from '../../src/verify/validate.ts';
import { CompileCache, compileNetworkPolicy } from '../../src/verify/validate.ts';
import { modelNamespaces, modelPods } from './e2e-model.ts';

const np = (spec: unknown, name = 'deny-all'): NetworkPolicy =>
  ({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name, namespace: 'x' },
    spec,
  }) as NetworkPolicy;

const failNp = (spec: unknown) => () => buildEngine({ networkPolicies: [np(spec)] });
const failCp = (obj: Record<string, unknown>) => () => buildEngine({ clusterPolicies: [obj as OtherObject] });

describe('NetworkPolicy validation', () => {
  const cases: [string, unknown, string][] = [
    [
      'bad CIDR',
      { podSelector: {}, ingress: [{ from: [{ podSelector: {} }, { ipBlock: { cidr: '10.0.0.0/33' } }] }] },
      'NetworkPolicy x/deny-all: spec.ingress[0].from[1].ipBlock.cidr "10.0.0.0/33" is not a valid CIDR',
    ],
    [
      'except outside the cidr',
      { podSelector: {}, egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['11.0.0.0/16'] } }] }] },
      'NetworkPolicy x/deny-all: spec.egress[0].to[0].ipBlock.except[0] "11.0.0.0/16" is not inside the ipBlock cidr "10.0.0.0/8"',
    ],
    [
      'except as wide as the cidr (the API server wants a strict subset)',
      {
        podSelector: {},
        egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['10.1.0.0/16', '10.0.0.0/8'] } }] }],
      },
      'NetworkPolicy x/deny-all: spec.egress[0].to[0].ipBlock.except[1] "10.0.0.0/8" is the whole ipBlock cidr "10.0.0.0/8" (an except must be narrower than its cidr)',
    ],
    [
      'invalid selector operator',
      { podSelector: { matchExpressions: [{ key: 'a', operator: 'Is', values: ['b'] }] } },
      'NetworkPolicy x/deny-all: spec.podSelector is not a valid label selector: matchExpressions[0].operator "Is" is not one of In, NotIn, Exists, DoesNotExist',
    ],
    [
      'invalid peer selector',
      { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 5 } } }] }] },
      'NetworkPolicy x/deny-all: spec.ingress[0].from[0].namespaceSelector is not a valid label selector: matchLabels.team must be a string',
    ],
    [
      'unknown protocol',
      { podSelector: {}, ingress: [{ ports: [{ protocol: 'ICMP', port: 1 }] }] },
      'NetworkPolicy x/deny-all: spec.ingress[0].ports[0].protocol "ICMP" is not one of TCP, UDP, SCTP',
    ],
    [
      'port out of range',
      { podSelector: {}, ingress: [{ ports: [{ port: 70000 }] }] },
      'NetworkPolicy x/deny-all: spec.ingress[0].ports[0].port 70000 is not a port number (1-65535)',
    ],
    [
      'bad port name',
      { podSelector: {}, ingress: [{ ports: [{ port: 'Not_A_Name' }] }] },
      `NetworkPolicy x/deny-all: spec.ingress[0].ports[0].port "Not_A_Name" is not a valid port name (1-15 lowercase letters, digits and '-', with at least one letter)`,
    ],
    [
      'endPort with a named port',
      { podSelector: {}, ingress: [{ ports: [{ port: 'http', endPort: 90 }] }] },
      'NetworkPolicy x/deny-all: spec.ingress[0].ports[0].endPort requires a numeric port',
    ],
    [
      'endPort below port',
      { podSelector: {}, egress: [{ ports: [{ port: 90, endPort: 80 }] }] },
      'NetworkPolicy x/deny-all: spec.egress[0].ports[0].endPort 80 is less than port 90',
    ],
    [
      'ipBlock with selectors',
      { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '1.0.0.0/8' }, podSelector: {} }] }] },
      'NetworkPolicy x/deny-all: spec.ingress[0].from[0] may not set ipBlock together with podSelector or namespaceSelector',
    ],
    [
      'empty peer',
      { podSelector: {}, ingress: [{ from: [{}] }] },
      'NetworkPolicy x/deny-all: spec.ingress[0].from[0] must set podSelector, namespaceSelector or ipBlock',
    ],
    [
      'bad policyType',
      { podSelector: {}, policyTypes: ['Inbound'] },
      'NetworkPolicy x/deny-all: spec.policyTypes[0] "Inbound" is not one of Ingress, Egress',
    ],
    [
      'rules not a list',
      { podSelector: {}, ingress: {} },
      'NetworkPolicy x/deny-all: spec.ingress must be a list',
    ],
  ];
  for (const [name, spec, message] of cases) {
    it(name, () => expect(failNp(spec)).toThrow(new InputError(message)));
  }
});

describe('cluster-scoped policy validation', () => {
  const anp = (spec: unknown, name = 'a') => ({
    apiVersion: 'policy.networking.k8s.io/v1alpha1',
    kind: 'AdminNetworkPolicy',
    metadata: { name },
    spec,
  });
  const subject = { namespaces: {} };
  it('priority out of range', () =>
    expect(failCp(anp({ priority: 1001, subject }))).toThrow(
      new InputError('AdminNetworkPolicy a: spec.priority 1001 is not an integer from 0 to 1000'),
    ));
  it('unknown action', () =>
    expect(
      failCp(anp({ priority: 1, subject, ingress: [{ action: 'Accept', from: [{ namespaces: {} }] }] })),
    ).toThrow(
      new InputError('AdminNetworkPolicy a: spec.ingress[0].action "Accept" is not one of Allow, Deny, Pass'),
    ));
  it('unsupported peer kinds are rejected, naming the field', () =>
    expect(
      failCp({
        apiVersion: 'policy.networking.k8s.io/v1alpha2',
        kind: 'ClusterNetworkPolicy',
        metadata: { name: 'c' },
        spec: {
          tier: 'Admin',
          priority: 1,
          subject,
          egress: [{ action: 'Accept', to: [{ domainNames: ['example.com'] }] }],
        },
      }),
    ).toThrow(
      new InputError(
        'ClusterNetworkPolicy c: spec.egress[0].to[0].domainNames is not supported by microseg for egress peers',
      ),
    ));
  it('bad networks CIDR', () =>
    expect(
      failCp({
        apiVersion: 'policy.networking.k8s.io/v1alpha2',
        kind: 'ClusterNetworkPolicy',
        metadata: { name: 'c' },
        spec: {
          tier: 'Baseline',
          priority: 1,
          subject,
          egress: [{ action: 'Deny', to: [{ networks: ['300.0.0.0/8'] }] }],
        },
      }),
    ).toThrow(
      new InputError(
        'ClusterNetworkPolicy c: spec.egress[0].to[0].networks[0] "300.0.0.0/8" is not a valid CIDR',
      ),
    ));
  it('bad tier', () =>
    expect(
      failCp({
        apiVersion: 'policy.networking.k8s.io/v1alpha2',
        kind: 'ClusterNetworkPolicy',
        metadata: { name: 'c' },
        spec: { tier: 'Top', priority: 1, subject },
      }),
    ).toThrow(new InputError('ClusterNetworkPolicy c: spec.tier "Top" is not one of Admin, Baseline')));
  it('BaselineAdminNetworkPolicy must be named default', () =>
    expect(
      failCp({
        apiVersion: 'policy.networking.k8s.io/v1alpha1',
        kind: 'BaselineAdminNetworkPolicy',
        metadata: { name: 'b' },
        spec: { subject },
      }),
    ).toThrow(
      new InputError(
        'BaselineAdminNetworkPolicy b: metadata.name must be "default" (only one BaselineAdminNetworkPolicy is allowed)',
      ),
    ));
  it('wrong apiVersion', () =>
    expect(
      failCp({ ...anp({ priority: 1, subject }), apiVersion: 'policy.networking.k8s.io/v1alpha2' }),
    ).toThrow(
      new InputError(
        'AdminNetworkPolicy a: apiVersion "policy.networking.k8s.io/v1alpha2" is not supported (expected policy.networking.k8s.io/v1alpha1)',
      ),
    ));
  it('subject must set exactly one field', () =>
    expect(failCp(anp({ priority: 1, subject: { namespaces: {}, pods: { podSelector: {} } } }))).toThrow(
      new InputError('AdminNetworkPolicy a: spec.subject must set exactly one of namespaces, pods'),
    ));
});

describe('files and queries', () => {
  it('unknown kinds name the object', () =>
    expect(() =>
      snapshotFromText('[{"apiVersion":"v1","kind":"Widget","metadata":{"name":"w"}}]', 'c.json'),
    ).toThrow(new InputError('c.json: Widget w: unsupported kind Widget')));
  it('cluster-scoped policy kinds and Nodes are accepted', () => {
    const snap = snapshotFromText(
      '[{"apiVersion":"policy.networking.k8s.io/v1alpha2","kind":"ClusterNetworkPolicy","metadata":{"name":"c"},"spec":{}},{"apiVersion":"v1","kind":"Node","metadata":{"name":"n"}}]',
      'c.json',
    );
    expect(snap.others.map((o) => o.kind)).toEqual(['ClusterNetworkPolicy', 'Node']);
  });
  it('query errors name the query', () => {
    const none = snapshotFromText('[]', 'c.json');
    expect(() =>
      parseQueries('[{"from":"x/a","to":"x/b","port":80,"protocol":"ICMP"}]', 'q.json', none),
    ).toThrow(new InputError('q.json: query 1: protocol "ICMP" is not one of TCP, UDP, SCTP'));
    expect(() => parseQueries('[{"from":"x/a","to":"nowhere","port":80}]', 'q.json', none)).toThrow(
      new InputError(
        'q.json: query 1: to: "nowhere" is neither namespace/pod, namespace/Kind/name nor an IP address',
      ),
    );
    expect(() => parseQueries('{}', 'q.json', none)).toThrow(
      new InputError('q.json: expected a JSON array of queries'),
    );
  });
  it('evaluation errors name the endpoint or port', () => {
    const e = buildEngine({ namespaces: modelNamespaces(), pods: modelPods() });
    expect(() =>
      e.evaluate({ from: { namespace: 'x', pod: 'zz' }, to: { ip: '1.2.3.4' }, port: 80 }),
    ).toThrow(new InputError('query: from: pod x/zz is not in the cluster snapshot'));
    expect(() =>
      e.evaluate({ from: { namespace: 'x', pod: 'a' }, to: { ip: '1.2.3.4' }, port: 'http' }),
    ).toThrow(new InputError('query: named port "http" cannot be resolved: 1.2.3.4 is not a pod'));
    expect(() =>
      e.evaluate({ from: { namespace: 'x', pod: 'a' }, to: { namespace: 'x', pod: 'b' }, port: 'http' }),
    ).toThrow(new InputError('query: x/b has no container port named "http"'));
    expect(() => e.evaluate({ from: { ip: '1.2.3' }, to: { namespace: 'x', pod: 'b' }, port: 80 })).toThrow(
      new InputError('query: from: "1.2.3" is not an IP address'),
    );
  });
  it('takes no container port the API server would refuse: a named port of one resolves to nothing', () => {
    const pods = modelPods();
    const b = pods.find((p) => p.metadata.namespace === 'x' && p.metadata.name === 'b')!;
    const bad = [80.5, 0, -1, 65536];
    b.spec.containers = bad.map((containerPort, i) => ({
      name: `c${i}`,
      ports: [{ containerPort, name: `bad-${i}`, protocol: 'TCP' as const }],
    }));
    b.spec.containers.push({ name: 'ok', ports: [{ containerPort: 8080, name: 'good', protocol: 'TCP' }] });
    const e = buildEngine({ namespaces: modelNamespaces(), pods });
    const ask = (port: string) =>
      e.evaluate({ from: { namespace: 'x', pod: 'a' }, to: { namespace: 'x', pod: 'b' }, port });
    for (const [i] of bad.entries())
      expect(() => ask(`bad-${i}`)).toThrow(
        new InputError(`query: x/b has no container port named "bad-${i}"`),
      );
    expect(ask('good').allowed).toBe(true);
  });
});

describe('addresses', () => {
  it('parses IPv4, IPv6 and CIDRs strictly', () => {
    expect(parseAddr('10.0.0.1')?.value).toBe(0x0a000001n);
    expect(parseAddr('64:ff9b::10.0.0.1')).toEqual({ family: 6, value: 0x64ff9b00000000000000000a000001n });
    expect(parseAddr('2001:db8::1')?.family).toBe(6);
    for (const bad of ['10.0.0', '10.0.0.256', '01.2.3.4', '1::2::3', '2001:db8:::1', ''])
      expect(parseAddr(bad)).toBeUndefined();
    expect(parseCidr('10.1.2.3/8')).toEqual({ family: 4, base: 0x0a000000n, prefix: 8 });
    for (const bad of ['10.0.0.0', '10.0.0.0/33', '::/129', '10.0.0.0/x'])
      expect(parseCidr(bad)).toBeUndefined();
  });
  it('takes an IPv4-mapped IPv6 address for the IPv4 address it carries, as Go and the data path do', () => {
    for (const mapped of ['::ffff:10.0.0.1', '::ffff:a00:1', '0:0:0:0:0:ffff:10.0.0.1'])
      expect(parseAddr(mapped)).toEqual({ family: 4, value: 0x0a000001n });
    expect(parseCidr('::ffff:10.0.0.0/104')).toEqual({ family: 4, base: 0x0a000000n, prefix: 8 });
    expect(parseCidr('::ffff:0:0/96')).toEqual({ family: 4, base: 0n, prefix: 0 });
    // A wider IPv6 block is an IPv6 block (Go's IPNet.Contains never matches an IPv4 address with it).
    expect(parseCidr('::/80')).toEqual({ family: 6, base: 0n, prefix: 80 });
  });
});

describe('compiling NetworkPolicies with a CompileCache', () => {
  const peer = (podSelector: unknown, ns?: string) => ({
    podSelector,
    ...(ns ? { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } } } : {}),
  });
  const policies = [
    np(
      {
        podSelector: { matchLabels: { app: 'a' } },
        ingress: [{ from: [peer({ matchLabels: { app: 'b' } }, 'x')], ports: [{ port: 80 }] }],
      },
      'p1',
    ),
    np(
      {
        podSelector: { matchLabels: { app: 'c' } },
        ingress: [{ from: [peer({ matchLabels: { app: 'b' } }, 'x')], ports: [{ port: 80 }] }],
      },
      'p2',
    ),
    np(
      {
        podSelector: {},
        egress: [
          {
            to: [peer({ matchExpressions: [{ key: 'app', operator: 'In', values: ['b'] }] }, 'x')],
            ports: [{ port: 80, protocol: 'UDP' }],
          },
          {
            to: [peer({ matchLabels: { app: 'b2' } }, 'y')],
            ports: [{ port: 'http' }, { port: 80, endPort: 90 }],
          },
          { to: [peer({ matchLabels: { app: 'b' } })], ports: [{ port: 80 }] },
        ],
      },
      'p3',
    ),
  ];

  it('gives what compiling each policy alone gives, holding equal requirements and ports once', () => {
    const cache = new CompileCache();
    const shared = policies.map((p) => compileNetworkPolicy(p, cache));
    expect(shared).toEqual(policies.map((p) => compileNetworkPolicy(p)));
    const [p1, p2, p3] = shared.map((c) => [...(c.ingress ?? []), ...(c.egress ?? [])]);
    const pods = (r: NpRule) => (r.peers![0] as { podMatch?: unknown }).podMatch;
    const nss = (r: NpRule) => (r.peers![0] as { nsMatch?: unknown }).nsMatch;
    // Equal selectors and ports: one object.
    expect(pods(p1![0]!)).toBe(pods(p2![0]!));
    expect(nss(p1![0]!)).toBe(nss(p2![0]!));
    expect(p1![0]!.ports![0]).toBe(p2![0]!.ports![0]);
    expect(pods(p3![2]!)).toBe(pods(p1![0]!));
    // Requirements that differ (an operator, a value, a namespace) or ports that differ (protocol,
    // name, range): apart.
    expect(pods(p3![0]!)).not.toBe(pods(p1![0]!));
    expect(pods(p3![1]!)).not.toBe(pods(p1![0]!));
    expect(nss(p3![1]!)).not.toBe(nss(p1![0]!));
    expect(nss(p3![0]!)).toBe(nss(p1![0]!));
    expect(p3![0]!.ports![0]).not.toBe(p1![0]!.ports![0]);
    expect(p3![1]!.ports![1]).not.toBe(p1![0]!.ports![0]);
    expect(p3![1]!.ports![0]).not.toBe(p1![0]!.ports![0]);
  });

  it('keeps apart requirements on another label key or with other values, and ports by other names', () => {
    const cache = new CompileCache();
    const [a, b] = [
      ['app', ['b'], 'http'],
      ['role', ['c'], 'grpc'],
    ].map(([key, values, port]) =>
      compileNetworkPolicy(
        np({
          podSelector: {},
          ingress: [
            { from: [peer({ matchLabels: { [key as string]: 'b' } })], ports: [{ port }] },
            { from: [peer({ matchExpressions: [{ key: 'app', operator: 'In', values }] })] },
          ],
        }),
        cache,
      ),
    );
    const pods = (r: NpRule) => (r.peers![0] as { podMatch?: unknown }).podMatch;
    expect(pods(a!.ingress![0]!)).not.toBe(pods(b!.ingress![0]!));
    expect(pods(a!.ingress![1]!)).not.toBe(pods(b!.ingress![1]!));
    expect(a!.ingress![0]!.ports![0]).not.toBe(b!.ingress![0]!.ports![0]);
  });

  it('keeps apart values that differ in where they split, and refuses values that are not strings', () => {
    // `['a\u0000b']` is one value, `['a', 'b']` two. Shared, the second policy would get the first's.
    const nsIn = (values: unknown[]) =>
      np({
        podSelector: {},
        ingress: [
          { from: [{ namespaceSelector: { matchExpressions: [{ key: 'v', operator: 'In', values }] } }] },
        ],
      });
    const cache = new CompileCache();
    compileNetworkPolicy(nsIn(['a\u0000b']), cache);
    expect(compileNetworkPolicy(nsIn(['a', 'b']), cache)).toEqual(compileNetworkPolicy(nsIn(['a', 'b'])));
    // A YAML `values: [1]` is the number 1, which the API server refuses (and no label value equals):
    // refused here too, so it is never taken for `['1']`.
    for (const value of [1, true])
      expect(() => compileNetworkPolicy(nsIn([value]), cache)).toThrow(
        'matchExpressions[0].values[0] must be a string',
      );
    expect(compileNetworkPolicy(nsIn(['1']), cache)).toEqual(compileNetworkPolicy(nsIn(['1'])));
  });

  it('validates every policy, also one whose parts equal an earlier one', () => {
    const cache = new CompileCache();
    compileNetworkPolicy(policies[0]!, cache);
    expect(() =>
      compileNetworkPolicy(
        np({
          podSelector: {},
          ingress: [{ from: [peer({ matchLabels: { app: 'b' } }, 'x')], ports: [{ port: 0 }] }],
        }),
        cache,
      ),
    ).toThrow('NetworkPolicy x/deny-all: spec.ingress[0].ports[0].port 0 is not a port number (1-65535)');
  });
});
