/**
 * A policy of an input file with a misspelt field (`matchLabel` for `matchLabels`) is read as the API
 * server would store it, without the field: a selector that then holds nothing selects everything. The
 * commands say so, naming the file, the object and the field (a warning; with --strict, an error).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { captureIO } from '../../src/cli/io.ts';
import { runCli } from '../../src/cli/main.ts';
import { unknownPolicyFields } from '../../src/model/unknown-fields.ts';

const fixture = (p: string) => fileURLToPath(new URL(`../fixtures/${p}`, import.meta.url));
const CLUSTER = fixture('verify/shop-cluster.yaml');

async function cli(...argv: string[]) {
  const io = captureIO();
  const code = await runCli(argv, io);
  return { code, out: io.stdout, err: io.stderr };
}

const MISSPELT = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: cart-ingress, namespace: shop }
spec:
  podSelector: { matchLabel: { app: cart } }
  ingress:
    - from:
        - namespaceSelector: { matchLables: { tier: edge } }
          podSelector: { matchLabels: { app: frontend }, matchExpresions: [{ key: a, operator: Exists }] }
    - form: [{ podSelector: { matchLabels: { app: batch } } }]
      ports: [{ port: 8080, protocl: UDP }]
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: { name: guard }
spec:
  priority: 10
  subject: { pods: { namespaceSelectr: { matchLabels: { tier: core } }, podSelector: {} } }
  ingress:
    - action: Deny
      from: [{ namespaces: { matchLabels: { tier: edge }, matchExpressions: [{ key: x, operator: Exists, valuse: [] }] } }]
`;

let dir: string;
let policies: string;
let cluster: string;
let FLOWS: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'microseg-unknown-fields-'));
  policies = join(dir, 'extra.yaml');
  writeFileSync(policies, MISSPELT);
  cluster = join(dir, 'cluster.yaml');
  writeFileSync(cluster, readFileSync(CLUSTER, 'utf8') + '---\n' + MISSPELT);
  FLOWS = join(dir, 'flows.jsonl');
  writeFileSync(
    FLOWS,
    ['x1', 'x2']
      .map((p, i) =>
        JSON.stringify({
          time: `2026-03-01T10:00:0${i}Z`,
          src: `web/frontend-7d9f-${p}`,
          dst: 'shop/cart-5c4b-y1',
          port: 8080,
        }),
      )
      .join('\n') + '\n',
  );
});

const ignored = 'ignored as the API server drops it';
const messages = (file: string) => [
  `${file}: NetworkPolicy shop/cart-ingress: unknown field spec.podSelector.matchLabel (did you mean matchLabels?), ${ignored}: spec.podSelector is read as {}, which selects every pod`,
  `${file}: NetworkPolicy shop/cart-ingress: unknown field spec.ingress[0].from[0].namespaceSelector.matchLables (did you mean matchLabels?), ${ignored}: spec.ingress[0].from[0].namespaceSelector is read as {}, which selects every namespace`,
  `${file}: NetworkPolicy shop/cart-ingress: unknown field spec.ingress[0].from[0].podSelector.matchExpresions (did you mean matchExpressions?), ${ignored}`,
  `${file}: NetworkPolicy shop/cart-ingress: unknown field spec.ingress[1].form (did you mean from?), ${ignored}: spec.ingress[1] is read without from, which admits every source`,
  `${file}: NetworkPolicy shop/cart-ingress: unknown field spec.ingress[1].ports[0].protocl (did you mean protocol?), ${ignored}`,
  `${file}: AdminNetworkPolicy guard: unknown field spec.subject.pods.namespaceSelectr (did you mean namespaceSelector?), ${ignored}: spec.subject.pods is read without namespaceSelector, which selects every namespace`,
  `${file}: AdminNetworkPolicy guard: unknown field spec.ingress[0].from[0].namespaces.matchExpressions[0].valuse (did you mean values?), ${ignored}`,
];

describe('misspelt fields of policies in input files', () => {
  it('explain and blast-radius warn, naming the file, the object and the field', async () => {
    const e = await cli(
      'explain',
      '--cluster',
      CLUSTER,
      '--policies',
      policies,
      '--from',
      'web/frontend-7d9f-x1',
      '--to',
      'shop/cart-5c4b-y1',
      '--port',
      '8080',
    );
    expect(e.code).toBe(0);
    expect(e.err).toBe(
      messages(policies)
        .map((m) => `microseg explain: warning: ${m}\n`)
        .join(''),
    );
    const b = await cli('blast-radius', '--cluster', cluster, '--workload', 'shop/Deployment/cart');
    expect(b.code).toBe(0);
    expect(b.err).toBe(
      messages(cluster)
        .map((m) => `microseg blast-radius: warning: ${m}\n`)
        .join(''),
    );
  });

  it('graph and audit warn, and with --strict refuse the input (exit 2)', async () => {
    const g = await cli('graph', '--flows', FLOWS, '--cluster', cluster);
    expect(g.code).toBe(0);
    expect(g.err).toContain(
      messages(cluster)
        .map((m) => `microseg graph: warning: ${m}\n`)
        .join(''),
    );
    const gs = await cli('graph', '--flows', FLOWS, '--cluster', cluster, '--strict');
    expect([gs.code, gs.out, gs.err]).toEqual([
      2,
      '',
      `microseg graph: ${messages(cluster)[0]!.replace(`, ${ignored}: spec.podSelector is read as {}, which selects every pod`, '')} (--strict refuses it; without --strict it is ${ignored})\n`,
    ]);
    const as = await cli('audit', '--flows', FLOWS, '--cluster', CLUSTER, '--policies', policies, '--strict');
    expect([as.code, as.out]).toEqual([2, '']);
    expect(as.err).toBe(
      `microseg audit: ${policies}: NetworkPolicy shop/cart-ingress: unknown field spec.podSelector.matchLabel (did you mean matchLabels?) (--strict refuses it; without --strict it is ${ignored})\n`,
    );
  });

  it('recommend names them in its summary and report.json', async () => {
    const out = join(dir, 'out');
    const r = await cli('recommend', '--flows', FLOWS, '--cluster', cluster, '--out', out);
    expect([r.code, r.err]).toEqual([0, '']);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as { warnings: string[] };
    for (const m of messages(cluster)) {
      expect(r.out).toContain(`${m}\n`);
      expect(report.warnings).toContain(m);
    }
    const s = await cli(
      'recommend',
      '--flows',
      FLOWS,
      '--cluster',
      cluster,
      '--out',
      join(dir, 's'),
      '--strict',
    );
    expect([s.code, s.out]).toEqual([2, '']);
    expect(s.err).toBe(
      `microseg recommend: ${cluster}: NetworkPolicy shop/cart-ingress: unknown field spec.podSelector.matchLabel (did you mean matchLabels?) (--strict refuses it; without --strict it is ${ignored})\n`,
    );
  });

  it('say nothing of a policy with only known fields', async () => {
    const e = await cli(
      'explain',
      '--cluster',
      CLUSTER,
      '--from',
      'web/frontend-7d9f-x1',
      '--to',
      'shop/cart-5c4b-y1',
      '--port',
      '8080',
    );
    expect([e.code, e.err]).toEqual([0, '']);
  });
});

describe('unknown fields at the rule level of the cluster-scoped kinds', () => {
  // Was: only their label selectors and `pods` were checked, so a misspelt `ports` (or CNP's
  // `protocols`, `destinationPort`) was dropped without a word and the rule matched every port.
  const anp = (rule: Record<string, unknown>, spec: Record<string, unknown> = {}) => ({
    apiVersion: 'policy.networking.k8s.io/v1alpha1',
    kind: 'AdminNetworkPolicy',
    metadata: { name: 'guard' },
    spec: { priority: 10, subject: { namespaces: {} }, ingress: [rule], ...spec },
  });
  const cnp = (rule: Record<string, unknown>, spec: Record<string, unknown> = {}) => ({
    apiVersion: 'policy.networking.k8s.io/v1alpha2',
    kind: 'ClusterNetworkPolicy',
    metadata: { name: 'guard' },
    spec: { tier: 'Admin', priority: 10, subject: { namespaces: {} }, egress: [rule], ...spec },
  });
  const from = [{ namespaces: { matchLabels: { tier: 'edge' } } }];

  it('names a misspelt field of the spec, a rule, a port and a protocol, with what it then means', () => {
    const cases: [Record<string, unknown>, ReturnType<typeof unknownPolicyFields>][] = [
      [
        anp({ action: 'Deny', from, port: [{ portNumber: { protocol: 'TCP', port: 5432 } }] }),
        [
          {
            path: 'spec.ingress[0].port',
            near: 'ports',
            consequence: 'spec.ingress[0] is read without ports, which matches every port',
          },
        ],
      ],
      [
        anp({ action: 'Deny', from, ports: [{ portNumber: { protocl: 'UDP', port: 53 } }] }),
        [
          {
            path: 'spec.ingress[0].ports[0].portNumber.protocl',
            near: 'protocol',
            consequence: 'spec.ingress[0].ports[0].portNumber is read without protocol, which is TCP',
          },
        ],
      ],
      [
        anp({ action: 'Deny', from, ports: [{ portRange: { protocol: 'TCP', start: 1, ned: 9 } }] }),
        [{ path: 'spec.ingress[0].ports[0].portRange.ned', near: 'end' }],
      ],
      [
        // Meant to be the action (which the engine then finds missing), not the ports: no consequence.
        anp({ actoin: 'Deny', from }),
        [{ path: 'spec.ingress[0].actoin', near: 'action' }],
      ],
      [
        anp({ action: 'Deny', from }, { priorty: 10, priority: undefined }),
        [{ path: 'spec.priorty', near: 'priority' }],
      ],
      [
        anp({ action: 'Deny', from }, { egres: [{ action: 'Deny', to: from }] }),
        [
          {
            path: 'spec.egres',
            near: 'egress',
            consequence: 'spec is read without egress, so it has no egress rule',
          },
        ],
      ],
      [
        cnp({ action: 'Deny', to: from, protocol: [{ tcp: { destinationPort: { number: 443 } } }] }),
        [
          {
            path: 'spec.egress[0].protocol',
            near: 'protocols',
            consequence: 'spec.egress[0] is read without protocols, which matches every protocol and port',
          },
        ],
      ],
      [
        cnp({ action: 'Deny', to: from, protocols: [{ udp: { destinationPrt: { number: 53 } } }] }),
        [
          {
            path: 'spec.egress[0].protocols[0].udp.destinationPrt',
            near: 'destinationPort',
            consequence:
              'spec.egress[0].protocols[0].udp is read without destinationPort, which matches every UDP port',
          },
        ],
      ],
      [
        cnp({
          action: 'Deny',
          to: from,
          protocols: [{ tcp: { destinationPort: { range: { start: 1, edn: 9 } } } }],
        }),
        [{ path: 'spec.egress[0].protocols[0].tcp.destinationPort.range.edn', near: 'end' }],
      ],
      [
        cnp({ action: 'Deny', to: from, protocols: [{ tcp: { destinationPort: { numbr: 443 } } }] }),
        [{ path: 'spec.egress[0].protocols[0].tcp.destinationPort.numbr', near: 'number' }],
      ],
      [
        cnp({ action: 'Deny', to: from }, { teir: 'Admin', tier: undefined }),
        [{ path: 'spec.teir', near: 'tier' }],
      ],
      [
        {
          ...anp({}),
          kind: 'BaselineAdminNetworkPolicy',
          metadata: { name: 'default' },
          spec: { subject: { namespaces: {} }, ingress: [{ action: 'Deny', from, prots: [] }] },
        },
        [
          {
            path: 'spec.ingress[0].prots',
            near: 'ports',
            consequence: 'spec.ingress[0] is read without ports, which matches every port',
          },
        ],
      ],
    ];
    for (const [o, want] of cases)
      expect(
        unknownPolicyFields(JSON.parse(JSON.stringify(o)) as Record<string, unknown>),
        JSON.stringify(o),
      ).toEqual(want);
  });

  it('says nothing of valid objects of the versions read, as written in the wild', () => {
    const valid: Record<string, unknown>[] = [
      {
        apiVersion: 'policy.networking.k8s.io/v1alpha1',
        kind: 'AdminNetworkPolicy',
        metadata: { name: 'cluster-control' },
        spec: {
          priority: 34,
          subject: { namespaces: {} },
          ingress: [
            {
              name: 'allow-from-monitoring',
              action: 'Allow',
              from: [{ namespaces: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }],
            },
            {
              name: 'pass-from-same-tenant',
              action: 'Pass',
              from: [
                {
                  pods: {
                    namespaceSelector: { matchExpressions: [{ key: 'tenant', operator: 'Exists' }] },
                    podSelector: {},
                  },
                },
              ],
              ports: [
                { portNumber: { protocol: 'TCP', port: 8080 } },
                { portRange: { protocol: 'UDP', start: 30000, end: 32767 } },
                { namedPort: 'metrics' },
              ],
            },
          ],
          egress: [
            {
              name: 'allow-dns',
              action: 'Allow',
              to: [
                {
                  pods: {
                    namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
                    podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
                  },
                },
              ],
              ports: [{ portNumber: { protocol: 'UDP', port: 53 } }],
            },
            {
              name: 'allow-kube-apiserver',
              action: 'Allow',
              to: [
                {
                  nodes: {
                    matchExpressions: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists' }],
                  },
                },
              ],
              ports: [{ portNumber: { port: 6443 } }],
            },
            { name: 'deny-metadata', action: 'Deny', to: [{ networks: ['169.254.169.254/32'] }] },
            { name: 'allow-docs', action: 'Allow', to: [{ domainNames: ['*.kubernetes.io'] }] },
          ],
        },
        status: { conditions: [{ type: 'Ready', status: 'True' }] },
      },
      {
        apiVersion: 'policy.networking.k8s.io/v1alpha1',
        kind: 'BaselineAdminNetworkPolicy',
        metadata: { name: 'default' },
        spec: {
          subject: { pods: { namespaceSelector: {}, podSelector: { matchLabels: { app: 'web' } } } },
          ingress: [{ name: 'default-deny', action: 'Deny', from: [{ namespaces: {} }] }],
          egress: [
            {
              name: 'deny-internet',
              action: 'Deny',
              to: [{ networks: ['0.0.0.0/0', '::/0'] }],
              ports: [{ portRange: { protocol: 'TCP', start: 1, end: 65535 } }],
            },
            { action: 'Allow', to: [{ nodes: {} }, { pods: { namespaceSelector: {}, podSelector: {} } }] },
          ],
        },
      },
      {
        apiVersion: 'policy.networking.k8s.io/v1alpha2',
        kind: 'ClusterNetworkPolicy',
        metadata: { name: 'sensitive-ns' },
        spec: {
          tier: 'Admin',
          priority: 5,
          subject: { namespaces: { matchLabels: { sensitive: 'true' } } },
          ingress: [
            {
              name: 'accept-monitoring',
              action: 'Accept',
              from: [{ namespaces: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }],
              protocols: [
                { tcp: { destinationPort: { number: 9090 } } },
                { destinationNamedPort: 'metrics' },
              ],
            },
            { name: 'deny-rest', action: 'Deny', from: [{ namespaces: {} }] },
          ],
          egress: [
            {
              name: 'dns',
              action: 'Accept',
              to: [
                { pods: { namespaceSelector: {}, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } } },
              ],
              protocols: [
                { udp: { destinationPort: { number: 53 } } },
                { tcp: { destinationPort: { number: 53 } } },
              ],
            },
            {
              name: 'high-ports',
              action: 'Pass',
              to: [{ networks: ['10.0.0.0/8'] }],
              protocols: [
                { sctp: { destinationPort: { range: { start: 30000, end: 32767 } } } },
                { tcp: { destinationPort: { range: { start: 8000, end: 8999 } } } },
              ],
            },
            { name: 'docs', action: 'Accept', to: [{ domainNames: ['kubernetes.io'] }] },
            { name: 'nodes', action: 'Deny', to: [{ nodes: { matchLabels: { role: 'infra' } } }] },
          ],
        },
      },
    ];
    for (const o of valid) expect(unknownPolicyFields(o), `${String(o.kind)}`).toEqual([]);
  });

  it('reads the rules of other versions as before (their fields differ), checking only selectors', () => {
    const older = cnp({ action: 'Deny', to: from, ports: [] });
    expect(unknownPolicyFields({ ...older, apiVersion: 'policy.networking.k8s.io/v1alpha3' })).toEqual([]);
  });

  it('is said by the commands, naming the file and the object', async () => {
    const file = join(dir, 'anp-ports.yaml');
    writeFileSync(
      file,
      [
        'apiVersion: policy.networking.k8s.io/v1alpha1',
        'kind: AdminNetworkPolicy',
        'metadata: { name: db-only-pg }',
        'spec:',
        '  priority: 10',
        '  subject: { pods: { namespaceSelector: {}, podSelector: { matchLabels: { app: db } } } }',
        '  ingress:',
        '    - action: Deny',
        '      from: [{ namespaces: { matchLabels: { tier: edge } } }]',
        '      port: [{ portNumber: { protocol: TCP, port: 22 } }]',
        '',
      ].join('\n'),
    );
    const e = await cli(
      'explain',
      '--cluster',
      CLUSTER,
      '--policies',
      file,
      '--from',
      'web/frontend-7d9f-x1',
      '--to',
      'shop/db-0',
      '--port',
      'pg',
    );
    expect(e.err).toBe(
      `microseg explain: warning: ${file}: AdminNetworkPolicy db-only-pg: unknown field spec.ingress[0].port (did you mean ports?), ${ignored}: spec.ingress[0] is read without ports, which matches every port\n`,
    );
    expect(e.out.split('\n')[0]).toBe('web/frontend-7d9f-x1 -> shop/db-0 TCP/5432: DENIED');
  });
});
