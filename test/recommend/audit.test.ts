/**
 * `microseg audit`: flows replayed against the cluster with given NetworkPolicies applied. The demo's
 * proposal audited over the flows it was learned from blocks nothing; with a policy taken out, exactly
 * the connections that policy allowed are named; workloads only a default deny selects that made no
 * flow are named, and bad input is refused with what was wrong.
 */
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { parseAllDocuments } from 'yaml';
import type { AuditResult } from '../../src/cli/commands/audit.ts';
import { formatAuditMarkdown } from '../../src/cli/commands/audit.ts';
import type { ServiceGraph } from '../../src/graph/types.ts';
import {
  appliedPolicies,
  auditPolicySet,
  auditPolicySetSteps,
  deniedUnobserved,
  replayEdges,
} from '../../src/policy/audit.ts';
import { runSteps } from '../../src/model/steps.ts';
import { captureIO, EXIT } from '../../src/cli/io.ts';
import { runCli } from '../../src/cli/main.ts';
import { generateDemo } from '../../src/generate/demo.ts';
import { writeLines } from '../../src/generate/write.ts';
import { buildIdentity } from '../../src/identity/index.ts';
import type { NetworkPolicy } from '../../src/model/k8s.ts';
import { emptySnapshot, snapshotFromObjects } from '../../src/model/snapshot.ts';
import { Engine, engineFromSnapshot } from '../../src/verify/engine.ts';
import { denyFromShop, fixtureSnapshot } from '../core/fixture.ts';

let dir: string;
const demo = generateDemo();

const template = (app: string) => ({
  metadata: { labels: { app } },
  spec: { containers: [{ name: 'c', image: `${app}:1` }] },
});
// A CronJob of shop with no Job or pod now, which last ran a week before the flows.
const backup = {
  apiVersion: 'batch/v1',
  kind: 'CronJob',
  metadata: { name: 'backup', namespace: 'shop', uid: 'uid-backup' },
  spec: { schedule: '0 3 * * 0', jobTemplate: { spec: { template: template('backup') } } },
  status: { lastScheduleTime: '2026-02-22T03:00:00Z' },
};

async function cli(...args: string[]) {
  const io = captureIO();
  const code = await runCli(args, io);
  return { code, out: io.stdout, err: io.stderr };
}

/** `microseg audit` over the demo's flows and cluster with `more` arguments. */
const auditDemo = (...more: string[]) =>
  cli('audit', '--flows', join(dir, 'flows.jsonl'), '--cluster', join(dir, 'cluster.json'), ...more);
/** `--policies` for each of `names`, in the test's directory. */
const policies = (...names: string[]) => names.flatMap((n) => ['--policies', join(dir, n)]);

/** `microseg audit` over the demo's flows and cluster with `policies`, as JSON. */
async function auditJson(...more: string[]): Promise<{ code: number; result: AuditResult }> {
  const r = await auditDemo('--output', 'json', ...more);
  return { code: r.code, result: JSON.parse(r.out) as AuditResult };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'microseg-audit-'));
  await writeFile(
    join(dir, 'cluster.json'),
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [...demo.objects, backup] }),
  );
  await writeLines(join(dir, 'flows.jsonl'), demo.lines);
  const r = await cli(
    'recommend',
    '--flows',
    join(dir, 'flows.jsonl'),
    '--cluster',
    join(dir, 'cluster.json'),
    '--out',
    join(dir, 'policies'),
    '--quiet',
  );
  expect(r.code).toBe(EXIT.ok);
});

describe('microseg audit', () => {
  it('finds nothing blocked when the policies were learned from the same flows, and counts what it replayed', async () => {
    const { code, result } = await auditJson('--policies', join(dir, 'policies'));
    expect(code).toBe(EXIT.ok);
    expect(result.wouldBlock).toEqual([]);
    expect(result.connections).toEqual({
      replayed: 53,
      notReplayed: { dropped: 1, protocol: 1, node: 8, unplaced: 0 },
    });
    expect(result.policies.audited).toContain('shop/microseg-checkout');
    expect(result.span).toEqual({ first: '2026-03-02T10:00:01.703Z', last: '2026-03-02T10:59:56.870Z' });
    // The CronJob made no flow: only shop's default deny selects it, and no run of it is in the flows.
    expect(result.unobserved).toEqual(['shop/CronJob/backup']);
    expect(result.cronJobsNotRun).toEqual(['shop/CronJob/backup']);
  });

  it('names the observed connections a missing policy leaves to the default deny, and exits 1', async () => {
    const cut = join(dir, 'cut');
    await mkdir(cut, { recursive: true });
    const shop = await readFile(join(dir, 'policies', 'shop.yaml'), 'utf8');
    const docs = shop.split('\n---\n').filter((d) => !d.includes('name: microseg-checkout\n'));
    await writeFile(join(cut, 'shop.yaml'), docs.join('\n---\n'));
    const { code, result } = await auditJson('--policies', cut);
    expect(code).toBe(EXIT.findings);
    expect(result.wouldBlock.map((b) => `${b.source} -> ${b.target} ${b.protocol}/${b.port}`)).toEqual([
      'monitoring/Deployment/prometheus -> shop/Deployment/checkout TCP/9464',
      'shop/Deployment/checkout -> data/StatefulSet/kafka TCP/9092',
      'shop/Deployment/checkout -> data/StatefulSet/postgres TCP/5432',
      'shop/Deployment/checkout -> kube-system/Deployment/coredns UDP/53',
      'shop/Deployment/checkout -> shop/Deployment/cart TCP/7070',
      'shop/Deployment/checkout -> shop/Deployment/payments TCP/50051',
      'shop/Deployment/frontend -> shop/Deployment/checkout TCP/8080',
    ]);
    expect(result.wouldBlock.at(-1)).toMatchObject({
      count: 15,
      firstSeen: '2026-03-02T10:02:04.442Z',
      lastSeen: '2026-03-02T10:59:00.413Z',
    });
    expect(result.wouldBlock.at(-1)?.reason).toMatch(
      /^denied: ingress to shop\/checkout-[a-z0-9]+-[a-z0-9]+: isolated by shop\/microseg-default-deny and no ingress rule matches$/,
    );
    // The text report says it first, one line per connection.
    const text = await auditDemo('--policies', cut, '--limit', '2');
    expect(text.code).toBe(EXIT.findings);
    expect(text.out.split('\n').slice(0, 5)).toEqual([
      'audited 6 NetworkPolicy(ies): 53 observed connection(s) replayed (flows from 2026-03-02T10:00:01.703Z to 2026-03-02T10:59:56.870Z)',
      'WOULD BE BLOCKED: 7 observed connection(s):',
      expect.stringMatching(
        /^ {2}monitoring\/Deployment\/prometheus -> shop\/Deployment\/checkout TCP\/9464: 12 flow\(s\), 2026-03-02T10:01:31.936Z to 2026-03-02T10:56:36.133Z: denied: /,
      ),
      expect.stringMatching(/^ {2}shop\/Deployment\/checkout -> data\/StatefulSet\/kafka TCP\/9092: /),
      '  ... and 5 more (--limit, or --output json)',
    ]);
  });

  it('does not name a workload that made no flow when a policy besides the default deny selects it', async () => {
    await writeFile(
      join(dir, 'backup.json'),
      JSON.stringify({
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: { name: 'backup-egress', namespace: 'shop' },
        spec: { podSelector: { matchLabels: { app: 'backup' } }, policyTypes: ['Egress'], egress: [{}] },
      }),
    );
    const { code, result } = await auditJson(...policies('policies', 'backup.json'));
    expect(code).toBe(EXIT.ok);
    expect(result.policies.audited).toContain('shop/backup-egress');
    expect(result.unobserved).toEqual([]);
    expect(result.cronJobsNotRun).toEqual([]);
  });

  it('takes a default deny that gives no policyTypes as the API server defaults it: of ingress', async () => {
    // A hand-written `podSelector: {}` with nothing else denies all ingress: it is a default deny, and
    // no policy besides one selects the CronJob (it did not hide shop's own default deny either).
    const doc = (name: string, spec: string) =>
      `apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: ${name}\n  namespace: shop\nspec:\n${spec}`;
    await writeFile(
      join(dir, 'deny-ingress.yaml'),
      doc('deny-ingress', '  podSelector: {}\n') +
        '---\n' +
        doc('deny-all', '  podSelector: {}\n  policyTypes: [Ingress, Egress]\n'),
    );
    for (const files of [['deny-ingress.yaml'], ['policies', 'deny-ingress.yaml']]) {
      const { result } = await auditJson(...files.flatMap((f) => ['--policies', join(dir, f)]));
      expect(result.unobserved).toEqual(['shop/CronJob/backup']);
      expect(result.cronJobsNotRun).toEqual(['shop/CronJob/backup']);
    }
    // The text says what it blocks: all their traffic in the directions the default deny isolates.
    const text = await auditDemo('--policies', join(dir, 'deny-ingress.yaml'));
    expect(text.out.split('\n')).toContain(
      'no flow observed for 1 workload(s) that only a default deny selects, which will block all their traffic in the directions it isolates: shop/CronJob/backup',
    );
    // With --limit 0, counted and not listed (as the connections are).
    const none = await auditDemo('--policies', join(dir, 'deny-ingress.yaml'), '--limit', '0');
    expect(none.out.split('\n').slice(3, 5)).toEqual([
      'no flow observed for 1 workload(s) that only a default deny selects, which will block all their traffic in the directions it isolates',
      'of them, 1 CronJob(s) started no run the flows cover (by their last run and schedule), so their traffic is unknown',
    ]);
  });

  it("with --prune, audits one namespace's file alone: other namespaces' policies of microseg are kept", async () => {
    // The cluster runs recommend's policies, and data has a default deny of its own besides.
    const applied: unknown[] = [];
    for (const f of ['data.yaml', 'shop.yaml'])
      applied.push(
        ...parseAllDocuments(await readFile(join(dir, 'policies', f), 'utf8')).map(
          (d) => d.toJS() as unknown,
        ),
      );
    const baseline = {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'baseline-deny', namespace: 'data' },
      spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] },
    };
    await writeFile(
      join(dir, 'enforced.json'),
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: [...demo.objects, backup, ...applied, baseline],
      }),
    );
    const r = await cli(
      'audit',
      '--flows',
      join(dir, 'flows.jsonl'),
      '--cluster',
      join(dir, 'enforced.json'),
      '--policies',
      join(dir, 'policies', 'shop.yaml'),
      '--prune',
      '--output',
      'json',
    );
    expect(r.code).toBe(EXIT.ok);
    const result = JSON.parse(r.out) as AuditResult;
    expect(result.policies.pruned).toEqual([]);
    expect(result.wouldBlock).toEqual([]);
  });

  it('applies the cluster-wide policies of --policies too, as explain --policies does', async () => {
    await writeFile(join(dir, 'anp.json'), JSON.stringify(denyFromShop('no-shop-to-redis', 'data', 'redis')));
    const { code, result } = await auditJson(...policies('policies', 'anp.json'));
    expect(code).toBe(EXIT.findings);
    expect(result.policies.audited).toContain('AdminNetworkPolicy/no-shop-to-redis');
    expect(result.wouldBlock.map((b) => `${b.source} -> ${b.target}: ${b.reason}`)).toEqual([
      'shop/Deployment/cart -> data/StatefulSet/redis: denied: ingress to data/redis-0: Deny by AdminNetworkPolicy/no-shop-to-redis ingress[0] (deny-shop)',
    ]);
    // Given alone, it is audited: the file is not refused for holding no NetworkPolicy.
    const alone = await auditDemo('--policies', join(dir, 'anp.json'));
    expect(alone.code).toBe(EXIT.findings);
    expect(alone.out.split('\n')[0]).toBe(
      'audited 0 NetworkPolicy(ies) and 1 cluster-wide policy(ies): 53 observed connection(s) replayed (flows from 2026-03-02T10:00:01.703Z to 2026-03-02T10:59:56.870Z)',
    );
  });

  it("applies the policies as kubectl apply would, and leaves microseg's own out with --prune", () => {
    const np = (ns: string, name: string, managed = false): NetworkPolicy => ({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: {
        name,
        namespace: ns,
        ...(managed ? { labels: { 'app.kubernetes.io/managed-by': 'microseg' } } : {}),
      },
      spec: { podSelector: {} },
    });
    const current = [
      np('a', 'mine'),
      np('a', 'microseg-old', true),
      np('a', 'microseg-web', true),
      np('b', 'microseg-db', true),
    ];
    const given = [
      { ...np('a', 'microseg-web', true), spec: { podSelector: { matchLabels: { app: 'web' } } } },
    ];
    const names = (ps: NetworkPolicy[]) => ps.map((p) => `${p.metadata.namespace}/${p.metadata.name}`);
    const applied = appliedPolicies(current, given, false);
    expect(names(applied.policies)).toEqual(['a/mine', 'a/microseg-old', 'b/microseg-db', 'a/microseg-web']);
    expect(applied.policies[3]).toBe(given[0]);
    // Pruned only in the namespaces the given policies are of: b's are not among them.
    const pruned = appliedPolicies(current, given, true);
    expect(names(pruned.policies)).toEqual(['a/mine', 'b/microseg-db', 'a/microseg-web']);
    expect(pruned.pruned).toEqual(['a/microseg-old']);
  });

  it('names the workloads only a default deny selects among tens of thousands of policies of a namespace', () => {
    // A set as large as POST /audit takes (8 MiB): one namespace's policies were gathered by copying the
    // list for each one, which took seconds (quadratic) with the API's caller waiting.
    const identity = buildIdentity(fixtureSnapshot());
    const np = (name: string, podSelector: Record<string, unknown>): NetworkPolicy => ({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name, namespace: 'shop' },
      spec: { podSelector, policyTypes: ['Ingress'] },
    });
    const policies = [
      ...Array.from({ length: 60_000 }, (_, i) => np(`p-${i}`, { matchLabels: { app: `none-${i}` } })),
      np('cart', { matchLabels: { app: 'cart' } }),
      np('default-deny', {}),
    ];
    // (How its time grows with the set is measured by `npm run bench -- --only audit`, not here.)
    const unobserved = deniedUnobserved(identity, { nodes: [], edges: [] }, policies);
    expect(unobserved).toEqual(['shop/Deployment/frontend', 'shop/StatefulSet/db']);
  }, 120_000);

  it('audits the identity as it was at its first step: a workload a flow adds meanwhile is not named', () => {
    // The controller's identity is live: the flow path adds to it each workload known only from flows
    // (a pod the cluster does not have) as flows come in, and POST /audit audits in slices, with flows
    // taken between them. The audit answers for the identity, graph and cluster of when it began.
    const snapshot = fixtureSnapshot();
    const identity = buildIdentity(snapshot);
    const deny: NetworkPolicy = {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'default-deny', namespace: 'shop' },
      spec: { podSelector: {}, policyTypes: ['Ingress'] },
    };
    const input = { snapshot, identity, graph: { nodes: [], edges: [] }, given: [deny] };
    const atOnce = JSON.stringify(auditPolicySet(input));
    const steps = auditPolicySetSteps(input);
    steps.next();
    identity.resolve(
      { namespace: 'shop', pod: 'ghost-1', workload: { kind: 'Deployment', name: 'ghost' } },
      0,
    );
    expect(identity.workloads.has('shop/Deployment/ghost')).toBe(true);
    const sliced = runSteps(steps);
    expect(sliced.unobserved).toEqual([
      'shop/Deployment/cart',
      'shop/Deployment/frontend',
      'shop/StatefulSet/db',
    ]);
    expect(JSON.stringify(sliced)).toBe(atOnce);
  });

  it('matches each policy against the idle workloads with the rarest label it requires: thousands with a policy each', () => {
    // A namespace of 15,000 workloads with no flow, each selected by a policy of its own (all sharing a
    // label too): each was checked against every policy of the namespace (15,000 × 15,000 selector
    // matches, seconds).
    const snapshot = emptySnapshot();
    for (let i = 0; i < 15_000; i++)
      snapshot.pods.push({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: `w-${i}`, namespace: 'big', labels: { tier: 'idle', app: `w-${i}` } },
        spec: { containers: [{ name: 'c', image: 'w:1' }] },
      });
    const identity = buildIdentity(snapshot);
    const np = (name: string, podSelector: Record<string, unknown>, ingress = [{}]): NetworkPolicy => ({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name, namespace: 'big' },
      spec: { podSelector, policyTypes: ['Ingress'], ingress },
    });
    const policies = [
      // Every workload but w-7 by its own label; w-8 by an expression (no matchLabels to index it by).
      ...Array.from({ length: 15_000 }, (_, i) => i)
        .filter((i) => i !== 7 && i !== 8)
        .map((i) => np(`w-${i}`, { matchLabels: { tier: 'idle', app: `w-${i}` } })),
      np('w-8', { matchExpressions: [{ key: 'app', operator: 'In', values: ['w-8'] }] }),
      np('deny', {}, []),
    ];
    // (How its time grows with the workloads is measured by `npm run bench -- --only audit`.)
    const unobserved = deniedUnobserved(identity, { nodes: [], edges: [] }, policies);
    expect(unobserved).toEqual(['big/Pod/w-7']);
  }, 120_000);

  it('gives no span of the flows for Kubescape records, which have none', async () => {
    const kubescape = fileURLToPath(
      new URL('../../../shared/samples/kubescape-networkneighborhood.json', import.meta.url),
    );
    const r = await cli(
      'audit',
      '--flows',
      kubescape,
      '--cluster',
      join(dir, 'cluster.json'),
      '--policies',
      join(dir, 'policies'),
      '--output',
      'json',
    );
    const result = JSON.parse(r.out) as AuditResult;
    expect(
      result.connections.replayed + Object.values(result.connections.notReplayed).reduce((a, b) => a + b, 0),
    ).toBeGreaterThan(0);
    expect(result).not.toHaveProperty('span');
  });

  it('writes Markdown for a pull request: what would be blocked as a table, cells escaped', async () => {
    const cut = join(dir, 'cut');
    const md = await auditDemo('--policies', cut, '--output', 'markdown', '--limit', '1');
    expect(md.code).toBe(EXIT.findings);
    const lines = md.out.split('\n');
    expect(lines.slice(0, 8)).toEqual([
      '### microseg audit',
      '',
      'Audited 6 NetworkPolicy(ies) against 53 observed connection(s) (flows from 2026-03-02T10:00:01.703Z to 2026-03-02T10:59:56.870Z).',
      '',
      '**Would be blocked: 7 observed connection(s).**',
      '',
      '| Source | Destination | Port | Flows | Last seen | Why |',
      '|---|---|---|---:|---|---|',
    ]);
    expect(lines[8]).toMatch(
      /^\| `monitoring\/Deployment\/prometheus` \| `shop\/Deployment\/checkout` \| TCP\/9464 \| 12 \| 2026-03-02T10:56:36.133Z \| denied: ingress to shop\/checkout-/,
    );
    expect(lines.slice(9, 11)).toEqual(['', '… and 6 more.']);
    // A reason holding a pipe or a backtick does not break the table.
    const one = formatAuditMarkdown(
      {
        connections: { replayed: 1, notReplayed: { dropped: 0, protocol: 0, node: 0, unplaced: 0 } },
        policies: { audited: ['a/p', 'AdminNetworkPolicy/x'], pruned: [] },
        wouldBlock: [
          {
            edge: 'a/Pod/x->a/Pod/y:80/TCP',
            source: 'a/Pod/x',
            target: 'a/Pod/y',
            protocol: 'TCP',
            port: 80,
            count: 2,
            firstSeen: 't0',
            lastSeen: 't1',
            reason: 'denied: rule `a|b`\nsecond line',
          },
        ],
        unobserved: ['a/CronJob/c'],
        cronJobsNotRun: ['a/CronJob/c'],
      },
      25,
    );
    expect(one.split('\n')).toEqual([
      '### microseg audit',
      '',
      'Audited 1 NetworkPolicy(ies) and 1 cluster-wide policy(ies) against 1 observed connection(s).',
      '',
      '**Would be blocked: 1 observed connection(s).**',
      '',
      '| Source | Destination | Port | Flows | Last seen | Why |',
      '|---|---|---|---:|---|---|',
      '| `a/Pod/x` | `a/Pod/y` | TCP/80 | 2 | t1 | denied: rule `a\\|b` second line |',
      '',
      '**No flow observed for 1 workload(s)** that only a default deny selects, which will block their traffic in the directions it isolates: `a/CronJob/c`.',
      '',
      'Of them, 1 CronJob(s) started no run the flows cover, so their traffic is unknown: `a/CronJob/c`.',
      '',
    ]);
  });

  it('refuses bad usage and input, naming what was wrong', async () => {
    const base = ['audit', '--flows', join(dir, 'flows.jsonl'), '--cluster', join(dir, 'cluster.json')];
    expect(await cli(...base)).toEqual({
      code: EXIT.usage,
      out: '',
      err: 'microseg audit: --policies is required (the NetworkPolicies to audit: a file or a directory)\n',
    });
    expect(await cli(...base, '--policies', join(dir, 'cluster.json'), '--output', 'yaml')).toEqual({
      code: EXIT.usage,
      out: '',
      err: 'microseg audit: --output yaml is not supported (use text, json or markdown)\n',
    });
    // Standard input is read once: two options naming it are refused before anything is read.
    expect(
      await cli('audit', '--flows', '-', '--cluster', join(dir, 'cluster.json'), '--policies', '-'),
    ).toEqual({
      code: EXIT.usage,
      out: '',
      err: 'microseg audit: --policies - and --flows -: standard input can be read only once, by one of them\n',
    });
    expect(await cli(...base, '--cluster', '-', '--policies', '-', '--policies', '-')).toEqual({
      code: EXIT.usage,
      out: '',
      err: 'microseg audit: --policies - is given twice: standard input can be read only once\n',
    });
    await writeFile(join(dir, 'empty.json'), JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [] }));
    expect(await cli(...base, '--policies', join(dir, 'empty.json'))).toEqual({
      code: EXIT.usage,
      out: '',
      err: `microseg audit: --policies ${join(dir, 'empty.json')}: no NetworkPolicy in it (nor AdminNetworkPolicy, BaselineAdminNetworkPolicy, ClusterNetworkPolicy)\n`,
    });
    await writeFile(join(dir, 'none.jsonl'), '');
    const noFlows = await cli(
      'audit',
      '--flows',
      join(dir, 'none.jsonl'),
      '--cluster',
      join(dir, 'cluster.json'),
      '--policies',
      join(dir, 'policies'),
    );
    expect(noFlows.code).toBe(EXIT.usage);
    expect(noFlows.out).toBe('');
  });
});

/**
 * Two host-network DaemonSets of kube-system, `agent-a` and `agent-b` (listening on 9100/TCP), a pod of
 * each on each of `count` dual-stack nodes holding both of its node's addresses.
 */
function twoHostAgents(count: number) {
  const objects: unknown[] = [
    {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'kube-system', labels: { 'kubernetes.io/metadata.name': 'kube-system' } },
    },
  ];
  for (const name of ['agent-a', 'agent-b'])
    objects.push({
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: { name, namespace: 'kube-system', uid: `uid-${name}` },
      spec: {
        selector: { matchLabels: { app: name } },
        template: { metadata: { labels: { app: name } }, spec: { hostNetwork: true } },
      },
    });
  for (let i = 0; i < count; i++) {
    const v4 = `192.168.${i >> 8}.${i & 255}`;
    const v6 = `fd00:192:168::${i.toString(16)}`;
    const node = `node-${i}`;
    objects.push({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: node },
      status: {
        addresses: [
          { type: 'InternalIP', address: v4 },
          { type: 'InternalIP', address: v6 },
        ],
      },
    });
    for (const name of ['agent-a', 'agent-b'])
      objects.push({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: `${name}-${i}`,
          namespace: 'kube-system',
          labels: { app: name },
          ownerReferences: [
            { apiVersion: 'apps/v1', kind: 'DaemonSet', name, uid: `uid-${name}`, controller: true },
          ],
        },
        spec: {
          nodeName: node,
          hostNetwork: true,
          containers: [
            { name: 'agent', ports: name === 'agent-b' ? [{ containerPort: 9100, protocol: 'TCP' }] : [] },
          ],
        },
        status: {
          phase: 'Running',
          podIP: v4,
          podIPs: [{ ip: v4 }, { ip: v6 }],
          hostIP: v4,
          hostIPs: [{ ip: v4 }, { ip: v6 }],
        },
      });
  }
  return snapshotFromObjects(objects, 'two-host-agents');
}

describe('the replay of an edge between two host-network DaemonSets', () => {
  it('asks the engine a number of questions linear in their addresses, not one per pair: 200 dual-stack nodes', () => {
    const snap = twoHostAgents(200);
    const identity = buildIdentity(snap);
    const a = 'kube-system/DaemonSet/agent-a';
    const b = 'kube-system/DaemonSet/agent-b';
    expect(identity.workloads.get(a)?.hostIPs).toHaveLength(400);
    expect(identity.workloads.get(b)?.hostIPs).toHaveLength(400);
    const time = '2026-11-01T10:00:00.000Z';
    const graph: ServiceGraph = {
      nodes: [a, b].map((id) => ({ id, kind: 'workload', name: id, flowsIn: 1, flowsOut: 1 })),
      edges: [
        {
          id: `${a}->${b}:9100/TCP`,
          source: a,
          target: b,
          protocol: 'TCP',
          port: 9100,
          count: 1,
          firstSeen: time,
          lastSeen: time,
          verdicts: { FORWARDED: 1 },
        },
      ],
    };
    const before = engineFromSnapshot(snap);
    // A default deny of kube-system both ways: it selects no host-network pod, so it blocks nothing here.
    const after = engineFromSnapshot({
      ...snap,
      networkPolicies: [
        {
          apiVersion: 'networking.k8s.io/v1',
          kind: 'NetworkPolicy',
          metadata: { name: 'deny', namespace: 'kube-system' },
          spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] },
        },
      ],
    });
    const queries = [vi.spyOn(Engine.prototype, 'evaluate'), vi.spyOn(Engine.prototype, 'allows')];
    const checks = vi.spyOn(Engine.prototype, 'refuses');
    try {
      const replay = replayEdges(graph, identity, before, after);
      expect(replay.wouldBlock).toEqual([]);
      expect(replay.replayed).toBe(1);
      // The cross product would be 400 × 400 pairs, each asked before and after: 320,000 queries.
      const asked = queries.reduce((n, q) => n + q.mock.calls.length, 0);
      expect(asked).toBeLessThanOrEqual(800);
      // Whether the engine refuses an address is checked at most once per address.
      expect(checks.mock.calls.length).toBeLessThanOrEqual(800);
    } finally {
      for (const q of [...queries, checks]) q.mockRestore();
    }
  });
});
