/**
 * Exporting the proposal from the controller's API, against a real kube-apiserver: in Audit mode the
 * API serves the frozen ProposedNetworkPolicies (what is audited and enforced), not the live analysis;
 * a replica that does not lead answers what only the leader holds with 503 and serves the frozen
 * proposal from its caches, the same bytes as the leader; the GitOps recipe of docs/controller.md
 * (export, drop microseg's two labels, apply under another field manager) gives policies the controller
 * neither removes nor adopts; and two controller runs fed the same flows write the same
 * ProposedNetworkPolicies and serve the same YAML, byte for byte.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Cluster } from '../cluster/index.ts';
import { createNamespace, eventually, startCluster } from '../cluster/index.ts';
import type { RunningController } from '../controller/k8s-helpers.ts';
import {
  applyYaml,
  createAppPods,
  flow,
  install,
  listJson,
  mergePatch,
  ROOT,
  startController,
  TOKEN,
  waitSeg,
} from '../controller/k8s-helpers.ts';
import type { ProposedNetworkPolicy } from '../../src/controller/api.ts';
import { NOT_LEADER_GRAPH, notLeaderProposal } from '../../src/controller/view.ts';
import type { NetworkPolicy } from '../../src/model/k8s.ts';

let cluster: Cluster;
let admin: KubeConfig;
const running: RunningController[] = [];
const ns = 'shop';
const segName = 'shop';
const SEG = `/apis/microseg.dev/v1alpha1/segmentations/${segName}`;
// Every flow of both runs carries the same time, so that the evidence (first and last seen) is the same.
const T0 = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000).toISOString();
const FLOWS = [
  flow(`${ns}/frontend`, `${ns}/cart`, 8080, { count: 5, time: T0 }),
  flow(`${ns}/cart`, `${ns}/db`, 5432, { count: 3, time: T0 }),
];

async function start(identity: string): Promise<RunningController> {
  const c = await startController(cluster, { identity, ui: { auth: { token: TOKEN } } });
  running.push(c);
  return c;
}

async function api(c: RunningController, path: string): Promise<Response> {
  return fetch(`http://127.0.0.1:${c.port}/api/v1${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
}

async function yamlOf(c: RunningController): Promise<string> {
  const r = await api(c, '/proposals?format=yaml');
  const text = await r.text();
  expect(r.status, text).toBe(200);
  return text;
}

/** The ProposedNetworkPolicies of the namespace, as text: what two runs must write alike. */
async function pnpText(): Promise<string> {
  const items = await listJson<ProposedNetworkPolicy>(
    cluster,
    `/apis/microseg.dev/v1alpha1/namespaces/${ns}/proposednetworkpolicies`,
  );
  return items
    .map((p) =>
      JSON.stringify({
        name: p.metadata.name,
        namespace: p.metadata.namespace,
        labels: p.metadata.labels,
        annotations: p.metadata.annotations,
        spec: p.spec,
        status: p.status,
      }),
    )
    .join('\n');
}

/** Waits until `read` gives the same answer twice, 1.5 s apart (the controller has settled). */
async function settled(what: string, read: () => Promise<string>): Promise<string> {
  let last = await read();
  return eventually(
    what,
    async () => {
      await new Promise((r) => setTimeout(r, 1500));
      const now = await read();
      const same = now === last;
      last = now;
      return same ? now : undefined;
    },
    30_000,
  );
}

/** Pushes until the leader takes the flows. */
async function push(c: RunningController, records: unknown[]): Promise<void> {
  const r = await c.push(records);
  expect(r.status, await r.text()).toBe(202);
}

async function learn(c: RunningController): Promise<void> {
  await applyYaml(cluster, {
    apiVersion: 'microseg.dev/v1alpha1',
    kind: 'Segmentation',
    metadata: { name: segName },
    spec: { namespaceSelector: { matchLabels: { team: 'shop' } }, mode: 'Learn' },
  });
  await waitSeg(cluster, segName, 'Learning', (s) => s.status?.phase === 'Learning');
  await push(c, FLOWS);
  await waitSeg(
    cluster,
    segName,
    '2 edges, 4 policies',
    (s) => s.status?.edges === 2 && s.status.policies === 4,
  );
}

async function setMode(mode: string, phase: string): Promise<void> {
  await mergePatch(cluster, SEG, { spec: { mode } });
  await waitSeg(cluster, segName, phase, (s) => s.status?.mode === mode && s.status.phase === phase);
}

async function networkPolicies(): Promise<NetworkPolicy[]> {
  return listJson<NetworkPolicy>(cluster, `/apis/networking.k8s.io/v1/namespaces/${ns}/networkpolicies`);
}

beforeAll(async () => {
  cluster = await startCluster({ log: () => {} });
  await install(cluster);
  admin = await cluster.kubeConfig();
  await createNamespace(admin, ns, { team: 'shop' });
  await createAppPods(admin, ns, [
    ['frontend', '10.7.0.1'],
    ['cart', '10.7.0.2'],
    ['db', '10.7.0.3'],
  ]);
}, 180_000);

afterAll(async () => {
  for (const c of running) await c.stop();
  await cluster?.stop();
});

/** The kustomization.yaml of the GitOps recipe, as docs/controller.md gives it. */
function recipeKustomization(): string {
  const doc = readFileSync(join(ROOT, 'docs/controller.md'), 'utf8');
  const m = /# kustomization\.yaml\n([\s\S]*?)```/.exec(doc);
  if (!m) throw new Error('docs/controller.md has no kustomization.yaml in its GitOps recipe');
  return m[1]!;
}

let run1 = { pnps: '', yaml: '' };

describe('exporting the proposal', () => {
  it('in Audit mode the API serves the frozen proposal, not the live analysis', async () => {
    const a = await start('run1');
    await eventually('run1 leads', () => a.manager.controller.leading, 15_000);
    await learn(a);
    const learnYaml = await settled('the Learn proposal', () => yamlOf(a));
    expect(learnYaml).toContain('microseg.dev/segmentation: shop');
    expect(learnYaml).not.toContain('ownerReferences');
    run1 = { pnps: await settled('the ProposedNetworkPolicies', pnpText), yaml: learnYaml };

    await setMode('Audit', 'Auditing');
    // Frozen from the live analysis, the proposal is the same text as in Learn.
    expect(await yamlOf(a)).toBe(learnYaml);
    // A new connection: the live analysis proposes it, the frozen proposal (audited) does not.
    await push(a, [flow(`${ns}/frontend`, `${ns}/db`, 5432, { time: T0 })]);
    await waitSeg(
      cluster,
      segName,
      '3 edges',
      (s) => s.status?.edges === 3 && (s.status.wouldBlock ?? 0) > 0,
    );
    await eventually('the live analysis has the new rule', () =>
      a.manager.controller
        .analysisOf(segName)
        ?.proposal.evidence.some((e) => e.policy === `${ns}/microseg-frontend` && e.peer === `${ns}/Pod/db`)
        ? true
        : undefined,
    );
    expect(await yamlOf(a)).toBe(learnYaml);
    const json = (await (await api(a, '/proposals')).json()) as { segmentations: unknown[] };
    expect(json.segmentations).toEqual([{ name: segName, mode: 'Audit', proposal: 'frozen', policies: 4 }]);
    expect(await pnpText()).toBe(run1.pnps);
  });

  it('the GitOps recipe: exported copies without microseg labels are neither removed nor adopted', async () => {
    const exported = await yamlOf(running[0]!);
    // As exported, the copies carry this Segmentation's labels: the controller, auditing, removes
    // them as policies it applied (a GitOps tool would put them back at every sync).
    const asIs = exported.replace(/name: microseg-/g, 'name: as-is-');
    const raw = await cluster.kubectl(['apply', '--server-side', '--field-manager=gitops', '-f', '-'], {
      input: asIs,
    });
    expect(raw.code, raw.stderr).toBe(0);
    await eventually('the controller removes the copies with its labels', async () =>
      (await networkPolicies()).some((p) => p.metadata.name.startsWith('as-is-')) ? undefined : true,
    );

    // The recipe: the exported file as it is, and a kustomization dropping the two labels when applied.
    const dir = mkdtempSync(join(tmpdir(), 'microseg-gitops-'));
    writeFileSync(join(dir, 'proposal.yaml'), exported);
    writeFileSync(join(dir, 'kustomization.yaml'), recipeKustomization());
    const built = await cluster.kubectl(['kustomize', dir]);
    expect(built.code, built.stderr).toBe(0);
    expect(built.stdout).not.toContain('microseg.dev/segmentation');
    expect(built.stdout).not.toContain('app.kubernetes.io/managed-by');
    // In the order to apply them (sortOptions fifo): the default deny after the policies that allow.
    const order = [...built.stdout.matchAll(/^ {2}name: (\S+)$/gm)].map((m) => m[1]);
    expect(order).toEqual(['microseg-cart', 'microseg-db', 'microseg-frontend', 'microseg-default-deny']);
    const apply = () => cluster.kubectl(['apply', '--server-side', '--field-manager=gitops', '-k', dir]);
    const first = await apply();
    expect(first.code, first.stderr).toBe(0);
    const names = (await networkPolicies()).map((p) => p.metadata.name).sort();
    expect(names).toEqual(['microseg-cart', 'microseg-db', 'microseg-default-deny', 'microseg-frontend']);
    const versions = async () =>
      (await networkPolicies()).map((p) => `${p.metadata.name}@${p.metadata.resourceVersion}`).join(',');
    const before = await versions();
    // Many resyncs (300 ms) in Audit, then in Learn: the controller touches none of them.
    await new Promise((r) => setTimeout(r, 3000));
    await setMode('Learn', 'Learning');
    await new Promise((r) => setTimeout(r, 3000));
    expect(await versions()).toBe(before);
    const again = await apply();
    expect(again.code, again.stderr).toBe(0);
    // The same file applied again writes nothing (no resourceVersion moves).
    expect(await versions()).toBe(before);
    // What the audit replays them against is the frozen proposal plus these, policies that are not its.
    const r = await cluster.kubectl(['delete', 'networkpolicies', '--all', '-n', ns]);
    expect(r.code, r.stderr).toBe(0);
  });

  it('a second run fed the same flows writes the same proposal; a non-leader answers 503 or the same bytes', async () => {
    const r = await cluster.request('DELETE', SEG);
    expect(r.status, r.text).toBeLessThan(300);
    await eventually(
      'the Segmentation and its proposal are gone',
      async () =>
        (await cluster.request('GET', SEG)).status === 404 && (await pnpText()) === '' ? true : undefined,
      30_000,
    );
    await running.shift()!.stop();

    const a = await start('run2-a');
    await eventually('run2-a leads', () => a.manager.controller.leading, 15_000);
    const b = await start('run2-b');
    await learn(a);
    expect(await settled('the ProposedNetworkPolicies', pnpText)).toBe(run1.pnps);
    expect(await settled('the Learn proposal', () => yamlOf(a))).toBe(run1.yaml);

    expect(b.manager.controller.leading).toBe(false);
    for (const path of [
      '/graph',
      '/graph/export',
      '/segments',
      '/search?q=cart',
      `/nodes?id=${ns}/Pod/cart`,
    ]) {
      const g = await api(b, path);
      expect([path, g.status, g.headers.get('retry-after'), await g.json()]).toEqual([
        path,
        503,
        '1',
        { error: NOT_LEADER_GRAPH },
      ]);
    }
    const p = await api(b, '/proposals?format=yaml');
    expect([p.status, p.headers.get('retry-after'), await p.json()]).toEqual([
      503,
      '1',
      { error: notLeaderProposal([segName]) },
    ]);
    expect((await api(b, '/audits')).status).toBe(200);

    await setMode('Audit', 'Auditing');
    expect(await yamlOf(b)).toBe(run1.yaml);
    expect(await yamlOf(a)).toBe(run1.yaml);
    const [ja, jb] = await Promise.all([api(a, '/proposals'), api(b, '/proposals')]);
    expect(await jb.text()).toBe(await ja.text());
  });
});
