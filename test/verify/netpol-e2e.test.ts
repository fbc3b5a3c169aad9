/**
 * The upstream Kubernetes e2e NetworkPolicy suite (test/e2e/network/netpol), transcribed as truth tables
 * over the full 3x3 model. Each step states the policies in force, the probed port and protocol, and the
 * expected reachability of every ordered pod pair; self-connections are ignored as upstream does.
 */
import { describe, expect, it } from 'vitest';
import type { NetworkPolicy } from '../../src/model/k8s.ts';
import type { L4Protocol } from '../../src/verify/types.ts';
import type { LabelChanges } from './e2e-model.ts';
import { ipOf, mismatches, modelEngine, nsNamed, podIs, policy, Reach } from './e2e-model.ts';

interface Step {
  policies: NetworkPolicy[];
  changes?: LabelChanges;
  probes: { port: number; protocol: L4Protocol; reach: () => Reach }[];
}

const X = { ns: 'x' };
const Y = { ns: 'y' };
const Z = { ns: 'z' };
const ANY = {};
const notInX = {
  matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['x'] }],
};

const denyIngressX = policy('x', 'deny-ingress', {}, { ingress: [] });
const denyAllX = policy('x', 'deny-all', {}, { ingress: [], egress: [] });
const allowFromY = (name: string, ports?: unknown[]) =>
  policy('x', name, podIs('a'), {
    ingress: [{ from: [{ namespaceSelector: nsNamed('y') }], ...(ports ? { ports } : {}) }],
  });

const tcp = (port: number, reach: () => Reach) => ({ port, protocol: 'TCP' as const, reach });

const CASES: Record<string, Step[]> = {
  "should support a 'default-deny-ingress' policy": [
    { policies: [denyIngressX], probes: [tcp(80, () => new Reach().expectPeer(ANY, X, false))] },
  ],
  "should support a 'default-deny-all' policy": [
    {
      policies: [denyAllX],
      probes: [tcp(80, () => new Reach().expectPeer(ANY, X, false).expectPeer(X, ANY, false))],
    },
  ],
  'should enforce policy to allow traffic from pods within server namespace based on PodSelector': [
    {
      policies: [
        policy('x', 'x-a-allows-x-b', podIs('a'), { ingress: [{ from: [{ podSelector: podIs('b') }] }] }),
      ],
      probes: [tcp(80, () => new Reach().expectAllIngress('x/a', false).expect('x/b', 'x/a', true))],
    },
  ],
  'should enforce policy to allow ingress traffic for a target': [
    {
      policies: [
        policy('x', 'deny-all', {}, { ingress: [] }),
        policy('x', 'allow-all-to-a', podIs('a'), {
          ingress: [{ from: [{ podSelector: {}, namespaceSelector: {} }] }],
        }),
      ],
      probes: [tcp(80, () => new Reach().expectPeer(ANY, X, false).expectAllIngress('x/a', true))],
    },
  ],
  'should enforce policy to allow ingress traffic from pods in all namespaces': [
    {
      policies: [
        policy('x', 'allow-from-another-ns', podIs('a'), {
          ingress: [{ from: [{ namespaceSelector: { matchLabels: {} } }] }],
        }),
      ],
      probes: [tcp(80, () => new Reach())],
    },
  ],
  'should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector': [
    {
      policies: [allowFromY('allow-client-a-via-ns-selector')],
      probes: [
        tcp(80, () =>
          new Reach().expectPeer(X, { ns: 'x', pod: 'a' }, false).expectPeer(Z, { ns: 'x', pod: 'a' }, false),
        ),
      ],
    },
  ],
  'should enforce policy based on PodSelector with MatchExpressions': [
    {
      policies: [
        policy('x', 'x-a-allows-x-b', podIs('a'), {
          ingress: [
            {
              from: [{ podSelector: { matchExpressions: [{ key: 'pod', operator: 'In', values: ['b'] }] } }],
            },
          ],
        }),
      ],
      probes: [tcp(80, () => new Reach().expectAllIngress('x/a', false).expect('x/b', 'x/a', true))],
    },
  ],
  'should enforce policy based on NamespaceSelector with MatchExpressions': [
    {
      policies: [
        policy('x', 'allow-ns-y-match-selector', podIs('a'), {
          ingress: [
            {
              from: [
                {
                  namespaceSelector: {
                    matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['y'] }],
                  },
                },
              ],
            },
          ],
        }),
      ],
      probes: [
        tcp(80, () =>
          new Reach().expectPeer(X, { ns: 'x', pod: 'a' }, false).expectPeer(Z, { ns: 'x', pod: 'a' }, false),
        ),
      ],
    },
  ],
  'should enforce policy based on PodSelector or NamespaceSelector': [
    {
      policies: [
        policy('x', 'allow-ns-y-match-selector', podIs('a'), {
          ingress: [{ from: [{ namespaceSelector: notInX }, { podSelector: podIs('b') }] }],
        }),
      ],
      probes: [tcp(80, () => new Reach().expect('x/a', 'x/a', false).expect('x/c', 'x/a', false))],
    },
  ],
  'should enforce policy based on PodSelector and NamespaceSelector': [
    {
      policies: [
        policy('x', 'allow-ns-y-podselector-and-nsselector', podIs('a'), {
          ingress: [{ from: [{ namespaceSelector: notInX, podSelector: podIs('b') }] }],
        }),
      ],
      probes: [
        tcp(80, () =>
          new Reach().expectAllIngress('x/a', false).expect('y/b', 'x/a', true).expect('z/b', 'x/a', true),
        ),
      ],
    },
  ],
  'should enforce policy based on Multiple PodSelectors and NamespaceSelectors': [
    {
      policies: [
        policy('x', 'allow-ns-y-z-pod-b-c', podIs('a'), {
          ingress: [
            {
              from: [
                {
                  namespaceSelector: notInX,
                  podSelector: { matchExpressions: [{ key: 'pod', operator: 'In', values: ['b', 'c'] }] },
                },
              ],
            },
          ],
        }),
      ],
      probes: [
        tcp(80, () =>
          new Reach()
            .expectPeer(X, { ns: 'x', pod: 'a' }, false)
            .expect('y/a', 'x/a', false)
            .expect('z/a', 'x/a', false),
        ),
      ],
    },
  ],
  'should enforce policy based on any PodSelectors': [
    {
      policies: [
        policy('x', 'allow-ns-x-pod-b-c', podIs('a'), {
          ingress: [{ from: [{ podSelector: podIs('b') }, { podSelector: podIs('c') }] }],
        }),
      ],
      probes: [
        tcp(80, () =>
          new Reach().expectAllIngress('x/a', false).expect('x/b', 'x/a', true).expect('x/c', 'x/a', true),
        ),
      ],
    },
  ],
  'should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector':
    [
      {
        policies: [
          policy('x', 'allow-ns-y-pod-a-via-namespace-pod-selector', podIs('a'), {
            ingress: [{ from: [{ namespaceSelector: nsNamed('y'), podSelector: podIs('a') }] }],
          }),
        ],
        probes: [tcp(80, () => new Reach().expectAllIngress('x/a', false).expect('y/a', 'x/a', true))],
      },
    ],
  'should enforce policy based on Ports': [
    {
      policies: [allowFromY('allow-client-a-via-ns-selector', [{ port: 81, protocol: 'TCP' }])],
      probes: [
        tcp(81, () =>
          new Reach()
            .expectPeer(X, { ns: 'x', pod: 'a' }, false)
            .expectPeer(Y, { ns: 'x', pod: 'a' }, true)
            .expectPeer(Z, { ns: 'x', pod: 'a' }, false),
        ),
      ],
    },
  ],
  'should enforce multiple, stacked policies with overlapping podSelectors': [
    {
      policies: [allowFromY('allow-client-a-via-ns-selector', [{ port: 81, protocol: 'TCP' }])],
      probes: [
        tcp(81, () =>
          new Reach().expectPeer(X, { ns: 'x', pod: 'a' }, false).expectPeer(Z, { ns: 'x', pod: 'a' }, false),
        ),
        tcp(80, () => new Reach().expectAllIngress('x/a', false)),
      ],
    },
    {
      policies: [
        allowFromY('allow-client-a-via-ns-selector', [{ port: 81, protocol: 'TCP' }]),
        allowFromY('allow-client-a-via-ns-selector-80', [{ port: 80, protocol: 'TCP' }]),
      ],
      probes: [
        tcp(80, () =>
          new Reach().expectPeer(X, { ns: 'x', pod: 'a' }, false).expectPeer(Z, { ns: 'x', pod: 'a' }, false),
        ),
        tcp(81, () =>
          new Reach().expectPeer(X, { ns: 'x', pod: 'a' }, false).expectPeer(Z, { ns: 'x', pod: 'a' }, false),
        ),
      ],
    },
  ],
  'should support allow-all policy': [
    {
      policies: [policy('x', 'allow-all', {}, { ingress: [{}] })],
      probes: [tcp(80, () => new Reach()), tcp(81, () => new Reach())],
    },
  ],
  'should allow ingress access on one named port': [
    {
      policies: [policy('x', 'allow-all', {}, { ingress: [{ ports: [{ port: 'serve-81-tcp' }] }] })],
      probes: [tcp(81, () => new Reach()), tcp(80, () => new Reach().expectPeer(ANY, X, false))],
    },
  ],
  'should allow ingress access from namespace on one named port': [
    {
      policies: [
        allowFromY('allow-client-a-via-ns-selector-80', [{ port: 'serve-80-tcp', protocol: 'TCP' }]),
      ],
      probes: [
        tcp(80, () =>
          new Reach().expectPeer(X, { ns: 'x', pod: 'a' }, false).expectPeer(Z, { ns: 'x', pod: 'a' }, false),
        ),
        tcp(81, () => new Reach().expectAllIngress('x/a', false)),
      ],
    },
  ],
  'should allow egress access on one named port': [
    {
      policies: [policy('x', 'allow-egress', {}, { egress: [{ ports: [{ port: 'serve-80-tcp' }] }] })],
      probes: [tcp(80, () => new Reach()), tcp(81, () => new Reach().expectPeer(X, ANY, false))],
    },
  ],
  'should enforce updated policy': [
    {
      policies: [policy('x', 'allow-all-mutate-to-deny-all', {}, { ingress: [{}] })],
      probes: [tcp(81, () => new Reach())],
    },
    {
      policies: [policy('x', 'allow-all-mutate-to-deny-all', {}, { ingress: [] })],
      probes: [tcp(81, () => new Reach().expectPeer(ANY, X, false))],
    },
  ],
  'should allow ingress access from updated namespace': [
    {
      policies: [
        policy('x', 'allow-client-a-via-ns-selector', podIs('a'), {
          ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns2: 'updated' } } }] }],
        }),
      ],
      probes: [tcp(80, () => new Reach().expectAllIngress('x/a', false))],
    },
    {
      policies: [
        policy('x', 'allow-client-a-via-ns-selector', podIs('a'), {
          ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns2: 'updated' } } }] }],
        }),
      ],
      changes: { ns: { y: { ns2: 'updated' } } },
      probes: [tcp(80, () => new Reach().expectAllIngress('x/a', false).expectPeer(Y, ANY, true))],
    },
  ],
  'should allow ingress access from updated pod': [
    {
      policies: [
        policy('x', 'allow-client-a-via-pod-selector', podIs('a'), {
          ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b', pod2: 'updated' } } }] }],
        }),
      ],
      probes: [tcp(80, () => new Reach().expectAllIngress('x/a', false))],
    },
    {
      policies: [
        policy('x', 'allow-client-a-via-pod-selector', podIs('a'), {
          ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b', pod2: 'updated' } } }] }],
        }),
      ],
      changes: { pod: { 'x/b': { pod: 'b', pod2: 'updated' } } },
      probes: [tcp(80, () => new Reach().expectAllIngress('x/a', false).expect('x/b', 'x/a', true))],
    },
  ],
  'should deny ingress from pods on other namespaces': [
    {
      policies: [
        policy('x', 'deny-empty-policy', {}, { ingress: [{ from: [{ podSelector: { matchLabels: {} } }] }] }),
      ],
      probes: [tcp(80, () => new Reach().expectPeer(Y, X, false).expectPeer(Z, X, false))],
    },
  ],
  'should deny ingress access to updated pod': [
    {
      policies: [
        policy(
          'x',
          'deny-ingress-via-label-selector',
          { matchLabels: { target: 'isolated' } },
          { ingress: [] },
        ),
      ],
      probes: [tcp(80, () => new Reach())],
    },
    {
      policies: [
        policy(
          'x',
          'deny-ingress-via-label-selector',
          { matchLabels: { target: 'isolated' } },
          { ingress: [] },
        ),
      ],
      changes: { pod: { 'x/a': { target: 'isolated' } } },
      probes: [tcp(80, () => new Reach().expectAllIngress('x/a', false))],
    },
  ],
  'should deny egress from pods based on PodSelector': [
    {
      policies: [policy('x', 'deny-egress-pod-a', podIs('a'), { egress: [] })],
      probes: [tcp(80, () => new Reach().expectAllEgress('x/a', false))],
    },
  ],
  'should deny egress from all pods in a namespace': [
    {
      policies: [policy('x', 'deny-egress-ns-x', {}, { egress: [] })],
      probes: [tcp(80, () => new Reach().expectPeer(X, ANY, false))],
    },
  ],
  'should work with Ingress, Egress specified together': [
    {
      policies: [
        policy('x', 'allow-client-a-via-pod-selector', podIs('a'), {
          ingress: [{ from: [{ podSelector: podIs('b') }] }],
          egress: [{ ports: [{ port: 80 }] }],
        }),
      ],
      probes: [
        tcp(80, () => new Reach().expectAllIngress('x/a', false).expect('x/b', 'x/a', true)),
        tcp(81, () =>
          new Reach().expectAllIngress('x/a', false).expectAllEgress('x/a', false).expect('x/b', 'x/a', true),
        ),
      ],
    },
  ],
  'should support denying of egress traffic on the client side (even if the server explicitly allows this traffic)':
    [
      {
        policies: [
          policy('x', 'allow-to-ns-y-pod-a', podIs('a'), {
            egress: [{ to: [{ namespaceSelector: nsNamed('y'), podSelector: podIs('a') }] }],
          }),
          policy('y', 'allow-from-xa-on-ya-match-selector', podIs('a'), {
            ingress: [{ from: [{ namespaceSelector: nsNamed('x'), podSelector: podIs('a') }] }],
          }),
          policy('y', 'allow-from-xa-on-yb-match-selector', podIs('b'), {
            ingress: [{ from: [{ namespaceSelector: nsNamed('x'), podSelector: podIs('a') }] }],
          }),
        ],
        probes: [
          tcp(80, () =>
            new Reach()
              .expectPeer({ ns: 'x', pod: 'a' }, ANY, false)
              .expectPeer(ANY, { ns: 'y', pod: 'a' }, false)
              .expectPeer({ ns: 'x', pod: 'a' }, { ns: 'y', pod: 'a' }, true)
              .expectPeer(ANY, { ns: 'y', pod: 'b' }, false),
          ),
        ],
      },
    ],
  'should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector and NamespaceSelector':
    [
      {
        policies: [
          policy('x', 'allow-to-ns-y-pod-a', podIs('a'), {
            egress: [{ to: [{ namespaceSelector: nsNamed('y'), podSelector: podIs('a') }] }],
          }),
        ],
        probes: [tcp(80, () => new Reach().expectAllEgress('x/a', false).expect('x/a', 'y/a', true))],
      },
    ],
  'should enforce ingress policy allowing any port traffic to a server on a specific protocol': [
    {
      policies: [
        policy('x', 'allow-ingress-by-proto', podIs('a'), { ingress: [{ ports: [{ protocol: 'TCP' }] }] }),
      ],
      probes: [
        tcp(80, () => new Reach()),
        { port: 80, protocol: 'UDP', reach: () => new Reach().expectPeer(ANY, { ns: 'x', pod: 'a' }, false) },
      ],
    },
  ],
  'should enforce multiple ingress policies with ingress allow-all policy taking precedence': [
    {
      policies: [policy('x', 'allow-ingress-port-80', {}, { ingress: [{ ports: [{ port: 80 }] }] })],
      probes: [tcp(81, () => new Reach().expectPeer(ANY, X, false))],
    },
    {
      policies: [
        policy('x', 'allow-ingress-port-80', {}, { ingress: [{ ports: [{ port: 80 }] }] }),
        policy('x', 'allow-ingress', {}, { ingress: [{}] }),
      ],
      probes: [tcp(81, () => new Reach())],
    },
  ],
  'should enforce multiple egress policies with egress allow-all policy taking precedence': [
    {
      policies: [policy('x', 'allow-egress-port-80', {}, { egress: [{ ports: [{ port: 80 }] }] })],
      probes: [tcp(81, () => new Reach().expectPeer(X, ANY, false))],
    },
    {
      policies: [
        policy('x', 'allow-egress-port-80', {}, { egress: [{ ports: [{ port: 80 }] }] }),
        policy('x', 'allow-egress', {}, { egress: [{}] }),
      ],
      probes: [tcp(81, () => new Reach())],
    },
  ],
  'should stop enforcing policies after they are deleted': [
    {
      policies: [denyAllX],
      probes: [tcp(80, () => new Reach().expectPeer(X, ANY, false).expectPeer(ANY, X, false))],
    },
    { policies: [], probes: [tcp(80, () => new Reach())] },
  ],
  'should allow egress access to server in CIDR block': [
    {
      policies: [
        policy('x', 'allow-client-a-via-cidr-egress-rule', podIs('a'), {
          egress: [{ to: [{ ipBlock: { cidr: `${ipOf('y/b')}/32` } }] }],
        }),
      ],
      probes: [tcp(80, () => new Reach().expectAllEgress('x/a', false).expect('x/a', 'y/b', true))],
    },
  ],
  'should enforce except clause while egress access to server in CIDR block': [
    {
      policies: [
        policy('x', 'allow-client-a-via-cidr-egress-rule', podIs('a'), {
          egress: [{ to: [{ ipBlock: { cidr: '0.0.0.0/4', except: [`${ipOf('x/b')}/32`] } }] }],
        }),
      ],
      probes: [tcp(80, () => new Reach().expect('x/a', 'x/b', false))],
    },
  ],
  'should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed': [
    {
      policies: [
        policy('x', 'allow-client-a-via-cidr-egress-rule', podIs('a'), {
          egress: [{ to: [{ ipBlock: { cidr: '0.0.0.0/4', except: [`${ipOf('x/b')}/32`] } }] }],
        }),
      ],
      probes: [tcp(80, () => new Reach().expect('x/a', 'x/b', false))],
    },
    {
      // UpdatePolicy replaces the policy of the same name with one allowing only x/b's address.
      policies: [
        policy('x', 'allow-client-a-via-cidr-egress-rule', podIs('a'), {
          egress: [{ to: [{ ipBlock: { cidr: `${ipOf('x/b')}/32` } }] }],
        }),
      ],
      probes: [tcp(80, () => new Reach().expectAllEgress('x/a', false).expect('x/a', 'x/b', true))],
    },
  ],
  'should enforce policies to check ingress and egress policies can be controlled independently based on PodSelector':
    [
      {
        policies: [policy('x', 'allow-egress-for-target', podIs('a'), { egress: [{}] })],
        probes: [tcp(80, () => new Reach())],
      },
      {
        policies: [
          policy('x', 'allow-egress-for-target', podIs('a'), { egress: [{}] }),
          policy('x', 'deny-ingress-via-label-selector', podIs('a'), { ingress: [] }),
        ],
        probes: [tcp(80, () => new Reach().expectAllIngress('x/a', false))],
      },
    ],
  "should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP', even if the plugin doesn't support SCTP":
    [
      {
        policies: [
          denyIngressX,
          policy('x', 'allow-only-sctp-ingress-on-port-81', podIs('a'), {
            ingress: [{ ports: [{ port: 81, protocol: 'SCTP' }] }],
          }),
        ],
        probes: [tcp(81, () => new Reach().expectPeer(ANY, X, false))],
      },
    ],
  "should properly isolate pods that are selected by a policy allowing SCTP, even if the plugin doesn't support SCTP":
    [
      {
        policies: [
          policy('x', 'allow-only-sctp-ingress-on-port-80', podIs('a'), {
            ingress: [{ ports: [{ port: 80, protocol: 'SCTP' }] }],
          }),
        ],
        probes: [tcp(81, () => new Reach().expectAllIngress('x/a', false))],
      },
    ],
  'should not allow access by TCP when a policy specifies only UDP': [
    {
      policies: [
        policy('x', 'allow-only-udp-ingress-on-port-81', podIs('a'), {
          ingress: [{ ports: [{ port: 81, protocol: 'UDP' }] }],
        }),
      ],
      probes: [tcp(81, () => new Reach().expectAllIngress('x/a', false))],
    },
  ],
  'should enforce policy to allow traffic based on NamespaceSelector with MatchLabels using default ns label':
    [
      {
        policies: [allowFromY('allow-client-a-via-ns-selector-for-immutable-ns-label')],
        probes: [
          tcp(80, () =>
            new Reach()
              .expectPeer(X, { ns: 'x', pod: 'a' }, false)
              .expectPeer(Z, { ns: 'x', pod: 'a' }, false),
          ),
        ],
      },
    ],
  'should enforce policy based on NamespaceSelector with MatchExpressions using default ns label': [
    {
      policies: [
        policy('x', 'allow-ns-y-match-selector-for-immutable-ns-label', podIs('a'), {
          egress: [
            {
              to: [
                {
                  namespaceSelector: {
                    matchExpressions: [
                      { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['y'] },
                    ],
                  },
                },
              ],
            },
          ],
        }),
      ],
      probes: [tcp(80, () => new Reach().expectPeer({ ns: 'x', pod: 'a' }, Y, false))],
    },
  ],
};

for (const proto of ['UDP', 'SCTP'] as const) {
  CASES[`${proto}: should support a 'default-deny-ingress' policy`] = [
    {
      policies: [denyIngressX],
      probes: [{ port: 80, protocol: proto, reach: () => new Reach().expectPeer(ANY, X, false) }],
    },
  ];
  CASES[`${proto}: should enforce policy based on Ports`] = [
    {
      policies: [allowFromY('allow-ingress-on-port-81-ns-x', [{ port: 81, protocol: proto }])],
      probes: [
        {
          port: 81,
          protocol: proto,
          reach: () =>
            new Reach()
              .expectPeer(X, { ns: 'x', pod: 'a' }, false)
              .expectPeer(Z, { ns: 'x', pod: 'a' }, false),
        },
      ],
    },
  ];
  CASES[
    `${proto}: should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector`
  ] = [
    {
      policies: [
        policy('x', 'allow-ns-y-pod-a-via-namespace-pod-selector', podIs('a'), {
          ingress: [{ from: [{ namespaceSelector: nsNamed('y'), podSelector: podIs('a') }] }],
        }),
      ],
      probes: [
        {
          port: 80,
          protocol: proto,
          reach: () => new Reach().expectAllIngress('x/a', false).expect('y/a', 'x/a', true),
        },
      ],
    },
  ];
}

describe('upstream e2e netpol suite, as truth tables', () => {
  for (const [name, steps] of Object.entries(CASES)) {
    it(name, () => {
      for (const [i, step] of steps.entries()) {
        const engine = modelEngine(step.policies, step.changes);
        for (const probe of step.probes) {
          const bad = mismatches(engine, probe.reach(), probe.port, probe.protocol);
          expect(bad, `step ${i + 1}, ${probe.protocol}/${probe.port}`).toEqual([]);
        }
      }
    });
  }

  it('covers the whole suite', () => {
    expect(Object.keys(CASES).length).toBe(48);
  });
});
