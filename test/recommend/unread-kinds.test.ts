/**
 * One behaviour in every command that reads a snapshot: objects of kinds microseg does not read are
 * skipped and counted by kind, and policy objects the engine cannot evaluate (Cilium's, Calico's) are
 * named in a warning of their own, since no proof or verdict takes them into account.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { captureIO } from '../../src/cli/io.ts';
import { loadIdentity } from '../../src/cli/inputs.ts';
import { runCli } from '../../src/cli/main.ts';
import { generateDemo } from '../../src/generate/demo.ts';
import { writeLines } from '../../src/generate/write.ts';

const NOT_EVALUATED =
  'NOT EVALUATED: 3 policy object(s) of kinds microseg cannot evaluate, left out of every proof and verdict, so what they deny or allow is not taken into account: ' +
  'CiliumClusterwideNetworkPolicy no-world (cilium.io/v2), CiliumNetworkPolicy shop/deny-world (cilium.io/v2), NetworkPolicy shop/calico-deny (projectcalico.org/v3)';
const SKIPPED = 'skipped 3 object(s) of kinds microseg does not read: ConfigMap (1), Secret (2)';

let dir: string;
let plain: string;
let cluster: string;
let frontend: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'microseg-unread-'));
  const demo = generateDemo();
  const extra = [
    {
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumNetworkPolicy',
      metadata: { name: 'deny-world', namespace: 'shop' },
      spec: { endpointSelector: {}, ingressDeny: [{ fromEntities: ['world'] }] },
    },
    {
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumClusterwideNetworkPolicy',
      metadata: { name: 'no-world' },
      spec: { endpointSelector: {}, egressDeny: [{ toEntities: ['world'] }] },
    },
    {
      apiVersion: 'projectcalico.org/v3',
      kind: 'NetworkPolicy',
      metadata: { name: 'calico-deny', namespace: 'shop' },
      spec: { selector: 'all()', types: ['Ingress'] },
    },
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'a', namespace: 'shop' } },
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'b', namespace: 'shop' } },
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'shop' } },
  ];
  plain = join(dir, 'plain.json');
  cluster = join(dir, 'cluster.json');
  await writeFile(plain, JSON.stringify({ apiVersion: 'v1', kind: 'List', items: demo.objects }));
  await writeFile(
    cluster,
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [...demo.objects, ...extra] }),
  );
  await writeLines(join(dir, 'flows.jsonl'), demo.lines);
  frontend = (demo.objects as { kind: string; metadata: { name: string; namespace?: string } }[]).find(
    (o) => o.kind === 'Pod' && o.metadata.namespace === 'shop' && o.metadata.name.startsWith('frontend-'),
  )!.metadata.name;
});

async function cli(...args: string[]) {
  const io = captureIO();
  const code = await runCli(args, io);
  return { code, out: io.stdout, err: io.stderr };
}

describe('objects of kinds microseg does not read, and policies it cannot evaluate', () => {
  it('recommend: written as without them, and said in the summary and report.json', async () => {
    const out = join(dir, 'out');
    const r = await cli('recommend', '--flows', join(dir, 'flows.jsonl'), '--cluster', cluster, '--out', out);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain(`\n${NOT_EVALUATED}\n${SKIPPED}\n`);
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as { warnings: string[] };
    expect(report.warnings).toContain(NOT_EVALUATED);
    expect(report.warnings).toContain(SKIPPED);
    // The proposal itself is the one written without them.
    const base = join(dir, 'base');
    expect(
      (await cli('recommend', '--flows', join(dir, 'flows.jsonl'), '--cluster', plain, '--out', base)).code,
    ).toBe(0);
    expect(await readFile(join(out, 'shop.yaml'), 'utf8')).toBe(
      await readFile(join(base, 'shop.yaml'), 'utf8'),
    );
  });

  it('graph, explain, simulate and blast-radius: the same warnings on standard error, and a result', async () => {
    const warnings = (command: string) =>
      `microseg ${command}: warning: ${NOT_EVALUATED}\nmicroseg ${command}: warning: ${SKIPPED}\n`;
    const g = await cli('graph', '--flows', join(dir, 'flows.jsonl'), '--cluster', cluster);
    expect(g.code).toBe(0);
    expect(g.err.startsWith(warnings('graph'))).toBe(true);
    const e = await cli(
      'explain',
      '--cluster',
      cluster,
      '--from',
      `shop/${frontend}`,
      '--to',
      '1.1.1.1',
      '--port',
      '443',
    );
    expect(e).toMatchObject({ code: 0, err: warnings('explain') });
    expect(e.out).toContain('ALLOWED');
    // In the verdict too, for a consumer of the JSON, which reads only standard output.
    expect(e.out).toContain(NOT_EVALUATED);
    const ej = await cli(
      'explain',
      '--cluster',
      cluster,
      '--from',
      `shop/${frontend}`,
      '--to',
      '1.1.1.1',
      '--port',
      '443',
      '--output',
      'json',
    );
    expect((JSON.parse(ej.out) as { notes: string[] }).notes).toContain(NOT_EVALUATED);
    const queries = join(dir, 'q.json');
    await writeFile(
      queries,
      JSON.stringify([{ from: `shop/${frontend}`, to: { ip: '1.1.1.1' }, port: 443 }]),
    );
    const s = await cli('simulate', '--cluster', cluster, '--queries', queries, '--output', 'json');
    expect(s).toMatchObject({ code: 0, err: warnings('simulate') });
    expect((JSON.parse(s.out) as { notEvaluated?: string[] }[])[0]!.notEvaluated).toEqual([NOT_EVALUATED]);
    const b = await cli('blast-radius', '--cluster', cluster, '--workload', 'shop/Deployment/frontend');
    expect(b).toMatchObject({ code: 0, err: warnings('blast-radius') });
  });

  it('say nothing when there is nothing to say', async () => {
    const e = await cli(
      'explain',
      '--cluster',
      plain,
      '--from',
      `shop/${frontend}`,
      '--to',
      '1.1.1.1',
      '--port',
      '443',
    );
    expect(e).toMatchObject({ code: 0, err: '' });
    expect(e.out).not.toContain('NOT EVALUATED');
  });
});

describe('a --cluster of nothing but kinds microseg does not read', () => {
  // A wrong file (kubectl get configmaps): recommend wrote a proposal from the flows' labels alone,
  // exit 0, with the skip buried among the warnings.
  it('is bad input (exit 2) naming the file and the kinds, in every command that reads a snapshot, nothing written', async () => {
    const wrong = join(dir, 'configmaps.json');
    await writeFile(
      wrong,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: [
          { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'shop' } },
          { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', namespace: 'shop' } },
        ],
      }),
    );
    const message = (command: string) =>
      `microseg ${command}: --cluster ${wrong}: no object of a kind microseg reads, only ConfigMap (1), Secret (1): ` +
      'a cluster snapshot holds Namespaces, Pods, Services, EndpointSlices, workloads and NetworkPolicies ' +
      '(kubectl get ns,pods,svc,endpointslices,deploy,rs,sts,ds,jobs,cronjobs,networkpolicies -A -o json)\n';
    const flows = join(dir, 'flows.jsonl');
    const out = join(dir, 'out-wrong-cluster');
    const queries = join(dir, 'q-wrong.json');
    await writeFile(queries, JSON.stringify([{ from: '1.1.1.1', to: '1.1.1.2', port: 443 }]));
    const runs: [string, string[]][] = [
      ['recommend', ['--flows', flows, '--cluster', wrong, '--out', out]],
      ['graph', ['--flows', flows, '--cluster', wrong]],
      ['audit', ['--flows', flows, '--cluster', wrong, '--policies', plain]],
      ['explain', ['--cluster', wrong, '--from', '1.1.1.1', '--to', '1.1.1.2', '--port', '443']],
      ['simulate', ['--cluster', wrong, '--queries', queries, '--output', 'json']],
      ['blast-radius', ['--cluster', wrong, '--workload', 'shop/Deployment/frontend']],
    ];
    for (const [command, args] of runs) {
      const r = await cli(command, ...args);
      expect({ code: r.code, err: r.err, out: r.out }, command).toEqual({
        code: 2,
        err: message(command),
        out: '',
      });
    }
    await expect(readFile(join(out, 'report.json'))).rejects.toThrow(/ENOENT/);
    // With another --cluster file that holds what microseg reads, it is only skipped, as before.
    const both = await cli('graph', '--flows', flows, '--cluster', plain, '--cluster', wrong);
    expect(both.code).toBe(0);
    expect(both.err).toContain(
      'skipped 2 object(s) of kinds microseg does not read: ConfigMap (1), Secret (1)',
    );
  });
});

describe('objects given more than once under one name', () => {
  it('recommend: the last one read is used, and one of other content is said on standard error and in report.json', async () => {
    const demo = generateDemo();
    type Obj = { kind: string; metadata: { name: string; labels?: Record<string, string> } };
    const pod = (demo.objects as Obj[]).find((o) => o.kind === 'Pod' && o.metadata.name === frontend)!;
    const again = join(dir, 'again.json');
    const labels = { ...pod.metadata.labels, 'example.com/note': 'later' };
    await writeFile(again, JSON.stringify({ ...pod, metadata: { ...pod.metadata, labels } }));
    const warning =
      '1 object(s) given more than once under one name with other content; the last one read is used, as applying it replaces the others (--cluster is read first, then each --policies or --proposal in order): ' +
      `Pod shop/${frontend}`;
    const out = join(dir, 'out-repeated');
    const flows = join(dir, 'flows.jsonl');
    const r = await cli('recommend', '--flows', flows, '--cluster', plain, '--cluster', again, '--out', out);
    expect(r.code).toBe(0);
    expect(r.err).toBe(`microseg recommend: warning: ${warning}\n`);
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as { warnings: string[] };
    expect(report.warnings).toContain(warning);
    // The same object given twice is no change: nothing is said.
    const same = await cli(
      'recommend',
      '--flows',
      flows,
      '--cluster',
      plain,
      '--cluster',
      plain,
      '--out',
      out,
    );
    expect(same.code).toBe(0);
    expect(same.err).toBe('');
  });

  it('graph: the last one read is used, and one of other content is said on standard error', async () => {
    const demo = generateDemo();
    type Obj = {
      kind: string;
      metadata: { name: string; labels?: Record<string, string> };
      status: { podIP: string; podIPs?: { ip: string }[] };
    };
    const pod = (demo.objects as Obj[]).find((o) => o.kind === 'Pod' && o.metadata.name === frontend)!;
    // The same pod, read again at another address (and with another label).
    const before = pod.status.podIP;
    const moved = '10.123.45.67';
    const again = join(dir, 'again-moved.json');
    const labels = { ...pod.metadata.labels, 'example.com/note': 'later' };
    await writeFile(
      again,
      JSON.stringify({
        ...pod,
        metadata: { ...pod.metadata, labels },
        status: { ...pod.status, podIP: moved, podIPs: [{ ip: moved }] },
      }),
    );
    const warning =
      '1 object(s) given more than once under one name with other content; the last one read is used, as applying it replaces the others (--cluster is read first, then each --policies or --proposal in order): ' +
      `Pod shop/${frontend}`;
    const flows = join(dir, 'flows.jsonl');
    const g = await cli('graph', '--flows', flows, '--cluster', plain, '--cluster', again);
    expect(g.code).toBe(0);
    expect(g.err.startsWith(`microseg graph: warning: ${warning}\n`)).toBe(true);
    // The pod is the one read last: its first address is no longer its.
    const warnings: string[] = [];
    const identity = await loadIdentity([plain, again], undefined, {}, (w) => warnings.push(w));
    expect(warnings).toEqual([warning]);
    const at = Date.parse('2100-01-01T00:00:00Z');
    expect(identity.resolve({ ip: moved }, at).id).toBe('shop/Deployment/frontend');
    expect(identity.resolve({ ip: before }, at).id).not.toBe('shop/Deployment/frontend');
    // The same object given twice is no change: nothing is said.
    const same = await cli('graph', '--flows', flows, '--cluster', plain, '--cluster', plain);
    expect(same.code).toBe(0);
    expect(same.err).not.toContain('more than once');
  });
});
