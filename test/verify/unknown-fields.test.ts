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
