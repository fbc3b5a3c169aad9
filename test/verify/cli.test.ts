/** The explain, simulate and blast-radius commands, run in-process on fixture files. */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/main.ts';
import { captureIO } from '../../src/cli/io.ts';

const fixture = (p: string) => fileURLToPath(new URL(`../fixtures/verify/${p}`, import.meta.url));
const CLUSTER = fixture('shop-cluster.yaml');

async function cli(...argv: string[]) {
  const io = captureIO();
  const code = await runCli(argv, io);
  return { code, out: io.stdout, err: io.stderr };
}

/** The fixture cluster with `extra` YAML lines after it, in a file of its own (`name` names its folder). */
function clusterWith(name: string, extra: string[]): string {
  const file = join(mkdtempSync(join(tmpdir(), `microseg-${name}-`)), 'cluster.yaml');
  writeFileSync(file, readFileSync(CLUSTER, 'utf8') + extra.join('\n'));
  return file;
}

describe('microseg simulate', () => {
  it('answers the queries in order', async () => {
    const r = await cli(
      'simulate',
      '--cluster',
      CLUSTER,
      '--queries',
      fixture('queries.json'),
      '--output',
      'json',
    );
    expect(r.code).toBe(0);
    const answers = JSON.parse(r.out) as { allowed: boolean; reason: string; policies: string[] }[];
    expect(answers.map((a) => a.allowed)).toEqual([true, true, false, false, true, true]);
    expect(answers[2]).toEqual({
      allowed: false,
      reason: 'denied: ingress to shop/db-0: isolated by shop/db-from-cart and no ingress rule matches',
      policies: ['shop/db-from-cart'],
    });
    expect(answers[1]!.reason).toBe(
      'allowed: egress from shop/cart-5c4b-y1: no policy isolates it for egress, allowed by default; ingress to shop/db-0: allowed by shop/db-from-cart ingress[0]',
    );
  });
  it('applies --policies on top of the cluster', async () => {
    const r = await cli(
      'simulate',
      '--cluster',
      CLUSTER,
      '--policies',
      fixture('proposal'),
      '--queries',
      fixture('queries.json'),
    );
    const answers = JSON.parse(r.out) as { allowed: boolean; policies: string[] }[];
    expect(answers.map((a) => a.allowed)).toEqual([true, true, false, false, true, true]);
    expect(answers[0]!.policies).toEqual(['web/frontend', 'shop/cart']);
  });
  it('is deterministic', async () => {
    const a = await cli('simulate', '--cluster', CLUSTER, '--queries', fixture('queries.json'), '--detail');
    const b = await cli('simulate', '--cluster', CLUSTER, '--queries', fixture('queries.json'), '--detail');
    expect(a.out).toBe(b.out);
  });
  it('reports bad input with exit code 2', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'microseg-verify-'));
    writeFileSync(join(dir, 'q.json'), '[{"from":"shop/db-0","to":"shop/nope","port":80}]');
    const r = await cli('simulate', '--cluster', CLUSTER, '--queries', join(dir, 'q.json'));
    expect(r.code).toBe(2);
    expect(r.err).toBe(
      `microseg simulate: ${join(dir, 'q.json')}: query 1: to: pod shop/nope is not in the cluster snapshot\n`,
    );
    writeFileSync(join(dir, 'bad.yaml'), 'apiVersion: v1\nkind: Gadget\nmetadata: {name: g}\n');
    const k = await cli(
      'simulate',
      '--cluster',
      CLUSTER,
      '--cluster',
      join(dir, 'bad.yaml'),
      '--queries',
      join(dir, 'q.json'),
    );
    // A kind no stage reads is skipped with a warning, as in every command that reads a snapshot.
    expect(k.code).toBe(2);
    expect(k.err).toBe(
      'microseg simulate: warning: skipped 1 object(s) of kinds microseg does not read: Gadget (1)\n' +
        `microseg simulate: ${join(dir, 'q.json')}: query 1: to: pod shop/nope is not in the cluster snapshot\n`,
    );
    // Alone, it is no cluster snapshot at all: refused naming it.
    const alone = await cli('simulate', '--cluster', join(dir, 'bad.yaml'), '--queries', join(dir, 'q.json'));
    expect(alone.code).toBe(2);
    expect(alone.err).toMatch(
      new RegExp(
        `^microseg simulate: --cluster ${join(dir, 'bad.yaml')}: no object of a kind microseg reads, only Gadget \\(1\\): `,
      ),
    );
    const o = await cli(
      'simulate',
      '--cluster',
      CLUSTER,
      '--queries',
      join(dir, 'q.json'),
      '--output',
      'yaml',
    );
    expect(o.err).toBe('microseg simulate: --output yaml is not supported (use json)\n');
  });
});

describe('simulate query fields', () => {
  // A misspelt field was ignored: {"prot": "UDP"} was answered for TCP, {"ip": ..., "namespace"...} as a pod.
  it('refuses a field a query does not have, naming the closest one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'microseg-fields-'));
    const cases: [unknown, string][] = [
      [
        { from: 'shop/db-0', to: 'shop/db-0', port: 5432, prot: 'UDP' },
        'query 1: unknown field "prot" (did you mean "protocol"?); a query has from, to, port, protocol',
      ],
      [
        { from: 'shop/db-0', to: 'shop/db-0', port: 5432, protocl: 'UDP' },
        'query 1: unknown field "protocl" (did you mean "protocol"?); a query has from, to, port, protocol',
      ],
      [
        { from: 'shop/db-0', to: 'shop/db-0', ports: 5432 },
        'query 1: unknown field "ports" (did you mean "port"?); a query has from, to, port, protocol',
      ],
      [
        { src: 'shop/db-0', to: 'shop/db-0', port: 5432 },
        'query 1: unknown field "src"; a query has from, to, port, protocol',
      ],
      [
        { from: { ip: '10.0.2.30', prot: 'x' }, to: 'shop/db-0', port: 5432 },
        'query 1: from: unknown field "prot"; an {"ip"} end has only ip',
      ],
      [
        { from: { namespace: 'shop', pod: 'db-0', ip: '10.0.2.30' }, to: 'shop/db-0', port: 5432 },
        'query 1: from: unknown field "ip"; a {"namespace", "pod"} end has only namespace, pod',
      ],
      [
        { from: 'shop/db-0', to: { namespace: 'shop', labels: { app: 'db' }, namedPort: [] }, port: 5432 },
        'query 1: to: unknown field "namedPort" (did you mean "namedPorts"?); a {"namespace", "labels"} end has namespace, labels, namedPorts',
      ],
    ];
    for (const [q, message] of cases) {
      const file = join(dir, 'q.json');
      writeFileSync(file, JSON.stringify([q]));
      const r = await cli('simulate', '--cluster', CLUSTER, '--queries', file);
      expect([r.code, r.out, r.err], JSON.stringify(q)).toEqual([
        2,
        '',
        `microseg simulate: ${file}: ${message}\n`,
      ]);
    }
  });
});

describe('simulate --queries that cannot be read', () => {
  it('says why in words, naming the file, not with the error code', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'microseg-queries-'));
    const missing = join(dir, 'nope.json');
    const r = await cli('simulate', '--cluster', CLUSTER, '--queries', missing);
    expect([r.code, r.out, r.err]).toEqual([
      2,
      '',
      `microseg simulate: ${missing}: cannot read: no such file\n`,
    ]);
    const d = await cli('simulate', '--cluster', CLUSTER, '--queries', dir);
    expect([d.code, d.out, d.err]).toEqual([
      2,
      '',
      `microseg simulate: ${dir}: cannot read: is a directory\n`,
    ]);
  });
});

describe('simulate --queries written with a byte order mark', () => {
  // What Windows PowerShell writes (`> queries.json`, `Out-File -Encoding utf8BOM`), as --cluster reads it.
  it('is read as its text, UTF-8 or UTF-16', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'microseg-queries-bom-'));
    const text = readFileSync(fixture('queries.json'), 'utf8');
    const plain = await cli('simulate', '--cluster', CLUSTER, '--queries', fixture('queries.json'));
    expect(plain.code).toBe(0);
    const encodings: [string, Buffer][] = [
      ['utf8-bom.json', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)])],
      ['utf16le.json', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')])],
      ['utf16be.json', Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(text, 'utf16le').swap16()])],
      // PowerShell redirection may write UTF-16 with no mark: a NUL byte beside the first character.
      ['utf16le-nobom.json', Buffer.from(text, 'utf16le')],
      ['utf16be-nobom.json', Buffer.from(text, 'utf16le').swap16()],
    ];
    for (const [name, bytes] of encodings) {
      writeFileSync(join(dir, name), bytes);
      const r = await cli('simulate', '--cluster', CLUSTER, '--queries', join(dir, name));
      expect([r.code, r.err, r.out], name).toEqual([0, '', plain.out]);
    }
  });
});

describe('simulate --queries compressed or empty', () => {
  // Every other input of microseg takes gzip; an empty file is said to be empty, and one of only
  // whitespace to hold only whitespace, as --cluster says it.
  it('reads a gzip file as its text, and names an empty one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'microseg-queries-gz-'));
    const plain = await cli('simulate', '--cluster', CLUSTER, '--queries', fixture('queries.json'));
    expect(plain.code).toBe(0);
    const gz = join(dir, 'queries.json.gz');
    writeFileSync(gz, gzipSync(readFileSync(fixture('queries.json'))));
    const r = await cli('simulate', '--cluster', CLUSTER, '--queries', gz);
    expect([r.code, r.err, r.out]).toEqual([0, '', plain.out]);
    const empty = join(dir, 'empty.json');
    writeFileSync(empty, ' \r\n');
    const e = await cli('simulate', '--cluster', CLUSTER, '--queries', empty);
    expect([e.code, e.out, e.err]).toEqual([
      2,
      '',
      `microseg simulate: ${empty}: the file holds only whitespace\n`,
    ]);
    const none = join(dir, 'none.json');
    writeFileSync(none, '');
    const n = await cli('simulate', '--cluster', CLUSTER, '--queries', none);
    expect([n.code, n.out, n.err]).toEqual([2, '', `microseg simulate: ${none}: the file is empty\n`]);
    const blank = join(dir, 'blank.json');
    writeFileSync(blank, '');
    const c0 = await cli('simulate', '--cluster', blank, '--queries', none);
    expect([c0.code, c0.out, c0.err]).toEqual([2, '', `microseg simulate: ${blank}: the file is empty\n`]);
    writeFileSync(blank, ' \r\n');
    const c1 = await cli('simulate', '--cluster', blank, '--queries', none);
    expect([c1.code, c1.out, c1.err]).toEqual([
      2,
      '',
      `microseg simulate: ${blank}: the file holds only whitespace\n`,
    ]);
    const cut = join(dir, 'cut.json.gz');
    writeFileSync(cut, gzipSync(readFileSync(fixture('queries.json'))).subarray(0, 20));
    const c = await cli('simulate', '--cluster', CLUSTER, '--queries', cut);
    expect([c.code, c.out]).toEqual([2, '']);
    expect(c.err).toMatch(new RegExp(`^microseg simulate: ${cut}: cannot decompress: `));
  });
});

describe('a flows file or a report given as a cluster or policy file', () => {
  const SAMPLES = (f: string) => fileURLToPath(new URL(`../../../shared/samples/${f}`, import.meta.url));
  it('is named as what it is, not only as an object without a kind', async () => {
    const hubble = SAMPLES('hubble-flows.jsonl');
    const r = await cli(
      'recommend',
      '--flows',
      hubble,
      '--cluster',
      hubble,
      '--out',
      join(mkdtempSync(join(tmpdir(), 'microseg-asflows-')), 'p'),
    );
    expect([r.code, r.out, r.err]).toEqual([
      2,
      '',
      `microseg recommend: ${hubble}: item 1: kind must be a non-empty string: it is a Hubble flow record, not a Kubernetes object (a flows file given as a cluster or policy file?)\n`,
    ]);
    const gadget = SAMPLES('ig-trace-tcp.jsonl');
    const g = await cli(
      'explain',
      '--cluster',
      gadget,
      '--from',
      'shop/db-0',
      '--to',
      'shop/db-0',
      '--port',
      '80',
    );
    expect([g.code, g.out, g.err]).toEqual([
      2,
      '',
      `microseg explain: ${gadget}: item 1: kind must be a non-empty string: it is an Inspektor Gadget trace_tcp event, not a Kubernetes object (a flows file given as a cluster or policy file?)\n`,
    ]);
    const dir = mkdtempSync(join(tmpdir(), 'microseg-asreport-'));
    const report = join(dir, 'report.json');
    writeFileSync(report, JSON.stringify({ reportVersion: 1, inputs: {} }, null, 2));
    const p = await cli(
      'explain',
      '--cluster',
      CLUSTER,
      '--policies',
      report,
      '--from',
      'shop/db-0',
      '--to',
      'shop/db-0',
      '--port',
      '80',
    );
    expect([p.code, p.out, p.err]).toEqual([
      2,
      '',
      `microseg explain: ${report}: item 1: kind must be a non-empty string: it is the report.json microseg recommend writes, not a Kubernetes object\n`,
    ]);
  });
});

describe('microseg explain', () => {
  it('prints the verdict and the reasoning', async () => {
    const r = await cli(
      'explain',
      '--cluster',
      CLUSTER,
      '--from',
      '203.0.113.7',
      '--to',
      'shop/db-0',
      '--port',
      'pg',
    );
    expect(r.code).toBe(0);
    expect(r.out).toBe(
      [
        '203.0.113.7 -> shop/db-0 TCP/5432: DENIED',
        '  ok   egress from 203.0.113.7: not a pod, no egress policy applies',
        '  DENY ingress to shop/db-0: isolated by shop/db-from-cart and no ingress rule matches',
        '       selected for ingress by: shop/db-from-cart',
        '  decided by tier: networkpolicy',
        '',
      ].join('\n'),
    );
  });
  it('reads the cluster from standard input with --cluster -', async () => {
    const io = captureIO(Readable.from([readFileSync(CLUSTER)]));
    const code = await runCli(
      ['explain', '--cluster', '-', '--from', '203.0.113.7', '--to', 'shop/db-0', '--port', 'pg'],
      io,
    );
    expect(code).toBe(0);
    expect(io.stdout.split('\n')[0]).toBe('203.0.113.7 -> shop/db-0 TCP/5432: DENIED');
  });
  it('rejects an unknown protocol', async () => {
    const r = await cli(
      'explain',
      '--cluster',
      CLUSTER,
      '--from',
      'shop/db-0',
      '--to',
      'shop/db-0',
      '--port',
      '1',
      '--protocol',
      'icmp',
    );
    expect([r.code, r.err]).toEqual([
      2,
      'microseg explain: --protocol: protocol "icmp" is not one of TCP, UDP, SCTP\n',
    ]);
  });
  it('names the flag of a field it cannot resolve, after its own prefix only once', async () => {
    const explain = (...args: string[]) => cli('explain', '--cluster', CLUSTER, ...args);
    const cases: [string[], string][] = [
      [
        ['--from', 'shop/nosuch', '--to', 'shop/db-0', '--port', '80'],
        'microseg explain: --from: pod shop/nosuch is not in the cluster snapshot\n',
      ],
      [
        ['--from', 'shop/db-0', '--to', 'shop/nosuch', '--port', '80'],
        'microseg explain: --to: pod shop/nosuch is not in the cluster snapshot\n',
      ],
      [
        ['--from', 'shop/db-0', '--to', '10.9.9.9', '--port', 'pg'],
        'microseg explain: --port: named port "pg" cannot be resolved: 10.9.9.9 is not a pod\n',
      ],
      [
        ['--from', 'shop/db-0', '--to', 'shop/db-0', '--port', '70000'],
        'microseg explain: --port: port 70000 is not a port number (1-65535)\n',
      ],
    ];
    for (const [args, message] of cases) {
      const r = await explain(...args);
      expect([r.code, r.err], args.join(' ')).toEqual([2, message]);
    }
  });
});

describe('a workload as an end, namespace/Kind/name', () => {
  /** explain over the cluster snapshot `cluster`. */
  const explainIn = (cluster: string, from: string, to: string, port = 'pg') =>
    cli('explain', '--cluster', cluster, '--from', from, '--to', to, '--port', port);
  const explain = (from: string, to: string, port = 'pg') => explainIn(CLUSTER, from, to, port);
  it('is answered for its first pod by name, which a note names', async () => {
    const r = await explain('web/Deployment/frontend', 'shop/StatefulSet/db');
    expect([r.code, r.err]).toEqual([0, '']);
    expect(r.out).toBe(
      [
        'web/frontend-7d9f-x1 -> shop/db-0 TCP/5432: DENIED',
        '  ok   egress from web/frontend-7d9f-x1: no policy isolates it for egress, allowed by default',
        '  DENY ingress to shop/db-0: isolated by shop/db-from-cart and no ingress rule matches',
        '       selected for ingress by: shop/db-from-cart',
        '  decided by tier: networkpolicy',
        '  note: --from web/Deployment/frontend: answered for web/frontend-7d9f-x1, the first of its 2 pods by name',
        '  note: --to shop/StatefulSet/db: answered for shop/db-0, its only pod',
        '',
      ].join('\n'),
    );
    // Kinds as kubectl abbreviates them; a Pod by kind is the pod itself, with no note.
    const a = await explain('shop/deploy/cart', 'shop/Pod/db-0');
    expect(a.out.split('\n')[0]).toBe('shop/cart-5c4b-y1 -> shop/db-0 TCP/5432: ALLOWED');
    expect(a.out).not.toContain('note: --to');
    // A pod of a run whose Job the snapshot no longer has is still the CronJob's, as recommend names it.
    const c = await explain('shop/CronJob/batch', 'shop/db-0');
    expect(c.out.split('\n')[0]).toBe('shop/batch-28000-z1 -> shop/db-0 TCP/5432: DENIED');
    expect(c.out).toContain(
      '  note: --from shop/CronJob/batch: answered for shop/batch-28000-z1, its only pod\n',
    );
  });
  it('is answered for its pod template when no pod of it is in the snapshot', async () => {
    const nightly = [
      '---',
      'apiVersion: batch/v1',
      'kind: CronJob',
      'metadata: { name: nightly, namespace: shop }',
      'spec:',
      "  schedule: '0 3 * * *'",
      '  jobTemplate:',
      '    spec: { template: { metadata: { labels: { app: nightly } }, spec: { containers: [{ name: main }] } } }',
      '',
    ].join('\n');
    const r = await explainIn(clusterWith('workload', [nightly]), 'shop/CronJob/nightly', 'shop/db-0');
    expect([r.code, r.err]).toEqual([0, '']);
    expect(r.out.split('\n')[0]).toBe('shop/CronJob/nightly -> shop/db-0 TCP/5432: DENIED');
    expect(r.out).toContain(
      "  note: --from shop/CronJob/nightly: no pod of it is in the cluster snapshot; answered for its pod template's labels and ports\n",
    );
  });
  it('answers a CronJob for the pods of its Jobs', async () => {
    const job = [
      '---',
      'apiVersion: batch/v1',
      'kind: Job',
      'metadata:',
      '  name: batch-28000',
      '  namespace: shop',
      '  ownerReferences: [{ apiVersion: batch/v1, kind: CronJob, name: batch, controller: true }]',
      'spec:',
      '  selector: { matchLabels: { app: batch } }',
      '  template: { metadata: { labels: { app: batch } }, spec: { containers: [{ name: main }] } }',
      '',
    ].join('\n');
    const r = await explainIn(clusterWith('workload', [job]), 'shop/CronJob/batch', 'shop/db-0');
    expect([r.code, r.err]).toEqual([0, '']);
    expect(r.out.split('\n')[0]).toBe('shop/batch-28000-z1 -> shop/db-0 TCP/5432: DENIED');
    expect(r.out).toContain(
      '  note: --from shop/CronJob/batch: answered for shop/batch-28000-z1, its only pod\n',
    );
  });
  it('says which pods differ, and answers a node agent as its node', async () => {
    const agent = (i: number, node: string) =>
      [
        '---',
        'apiVersion: v1',
        'kind: Pod',
        'metadata:',
        `  name: agent-${i}`,
        '  namespace: shop',
        `  labels: { app: agent${i === 1 ? ', extra: x' : ''} }`,
        '  ownerReferences: [{ apiVersion: apps/v1, kind: DaemonSet, name: agent, controller: true }]',
        `spec: { nodeName: ${node}, hostNetwork: true, containers: [{ name: a }] }`,
        `status: { podIP: 192.168.0.${i + 1}, hostIP: 192.168.0.${i + 1} }`,
        '',
      ].join('\n');
    const file = clusterWith('workload', [
      '---',
      'apiVersion: apps/v1',
      'kind: DaemonSet',
      'metadata: { name: agent, namespace: shop }',
      'spec:',
      '  selector: { matchLabels: { app: agent } }',
      '  template: { metadata: { labels: { app: agent } }, spec: { hostNetwork: true, containers: [{ name: a }] } }',
      agent(0, 'node-a') + agent(1, 'node-b'),
    ]);
    const r = await explainIn(file, 'shop/DaemonSet/agent', 'shop/db-0');
    expect([r.code, r.err]).toEqual([0, '']);
    expect(r.out).toBe(
      [
        'shop/agent-0 (host network, node node-a) -> shop/db-0 TCP/5432: DENIED',
        '  ok   egress from shop/agent-0 (host network, node node-a): not a pod, no egress policy applies',
        '  DENY ingress to shop/db-0: isolated by shop/db-from-cart and no ingress rule matches',
        '       selected for ingress by: shop/db-from-cart',
        '  decided by tier: networkpolicy',
        '  note: shop/agent-0 (host network, node node-a) is a host-network pod, treated as its node (hostNetworkPods=node)',
        '  note: --from shop/DaemonSet/agent: answered for shop/agent-0, the first of its 2 pods by name; its pods differ in labels or ports, so ask for the others by namespace/pod',
        '',
      ].join('\n'),
    );
  });
  it('names an unknown kind or a missing workload, with what it is likely meant to be', async () => {
    // Workload and a custom resource's kind are taken too: the message names them, so that a custom
    // resource's kind in a namespace with no pod it controls is not taken for a kind never taken.
    const kinds =
      'Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, Pod, Rollout, CloneSet, Workload, nor the kind of a custom resource controlling a pod of namespace shop';
    const cases: [string, string, string][] = [
      [
        'shop/Deploymnt/cart',
        'shop/db-0',
        `--from: kind "Deploymnt" is not one of ${kinds} (did you mean Deployment?)`,
      ],
      ['shop/Service/cart', 'shop/db-0', `--from: kind "Service" is not one of ${kinds}`],
      ['shop/Cluster/pg', 'shop/db-0', `--from: kind "Cluster" is not one of ${kinds}`],
      [
        'shop/db-0',
        'shop/Deployment/carts',
        '--to: no Deployment carts in namespace shop (did you mean shop/Deployment/cart?)',
      ],
      [
        'shop/db-0',
        'shop/StatefulSet/cart',
        '--to: no StatefulSet cart in namespace shop (did you mean shop/Deployment/cart?)',
      ],
      [
        'shop/db-0',
        'shopp/Deployment/cart',
        '--to: no Deployment cart in namespace shopp: it has no namespace shopp (did you mean shop?)',
      ],
      ['shop/db-0', 'shop/Pod/db-1', '--to: no Pod db-1 in namespace shop (did you mean shop/Pod/db-0?)'],
      [
        'shop/Deployment/cart/x',
        'shop/db-0',
        '--from: "shop/Deployment/cart/x" is neither namespace/pod, namespace/Kind/name nor an IP address',
      ],
      // A CIDR is not a namespace and a pod: an end is one address.
      [
        'shop/db-0',
        '10.0.0.0/8',
        '--to: "10.0.0.0/8" is a CIDR, not one end: give an address of it (e.g. 10.0.0.0), namespace/pod or namespace/Kind/name',
      ],
      [
        '2001:db8::/32',
        'shop/db-0',
        '--from: "2001:db8::/32" is a CIDR, not one end: give an address of it (e.g. 2001:db8::), namespace/pod or namespace/Kind/name',
      ],
    ];
    for (const [from, to, message] of cases) {
      const r = await explain(from, to);
      expect([r.code, r.out, r.err], `${from} ${to}`).toEqual([2, '', `microseg explain: ${message}\n`]);
    }
  });
  it('is taken by simulate as a query end', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'microseg-workload-'));
    const file = join(dir, 'q.json');
    writeFileSync(
      file,
      JSON.stringify([
        { from: 'web/Deployment/frontend', to: 'shop/StatefulSet/db', port: 5432 },
        { from: 'shop/Deployment/cart', to: 'shop/sts/db', port: 'pg' },
      ]),
    );
    const r = await cli('simulate', '--cluster', CLUSTER, '--queries', file, '--detail');
    expect([r.code, r.err]).toEqual([0, '']);
    const answers = JSON.parse(r.out) as { allowed: boolean; notes: string[] }[];
    expect(answers.map((a) => [a.allowed, a.notes])).toEqual([
      [
        false,
        [
          'from web/Deployment/frontend: answered for web/frontend-7d9f-x1, the first of its 2 pods by name',
          'to shop/StatefulSet/db: answered for shop/db-0, its only pod',
        ],
      ],
      [
        true,
        [
          'from shop/Deployment/cart: answered for shop/cart-5c4b-y1, its only pod',
          'to shop/StatefulSet/db: answered for shop/db-0, its only pod',
        ],
      ],
    ]);
    writeFileSync(
      file,
      JSON.stringify([{ from: 'shop/Deployment/cart', to: 'shop/Deployment/carts', port: 80 }]),
    );
    const bad = await cli('simulate', '--cluster', CLUSTER, '--queries', file);
    expect([bad.code, bad.out, bad.err]).toEqual([
      2,
      '',
      `microseg simulate: ${file}: query 1: to: no Deployment carts in namespace shop (did you mean shop/Deployment/cart?)\n`,
    ]);
  });
});

describe('a Service address as an end', () => {
  // Read from a file, through the compaction every command applies: the load balancer's addresses are
  // in the Service's status, which compaction otherwise leaves out.
  const SERVICE = [
    '---',
    'apiVersion: v1',
    'kind: Service',
    'metadata: { name: web, namespace: shop }',
    'spec:',
    '  type: LoadBalancer',
    '  selector: { app: cart }',
    '  clusterIP: 10.96.0.20',
    '  externalIPs: [192.0.2.10]',
    '  ports: [{ port: 80, targetPort: 8080 }]',
    'status:',
    '  loadBalancer: { ingress: [{ ip: 198.51.100.7, ipMode: VIP }] }',
    '',
  ].join('\n');
  const tail =
    'policies see the connection after it is translated to a backend pod, so ask about a backend pod (namespace/pod or its IP) and the target port';
  it('is refused, naming the Service and the field the address is in', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'microseg-svc-'));
    const file = join(dir, 'cluster.yaml');
    writeFileSync(file, readFileSync(CLUSTER, 'utf8') + SERVICE);
    const explain = (from: string, to: string) =>
      cli('explain', '--cluster', file, '--from', from, '--to', to, '--port', '80');
    const cases: [string, string, string][] = [
      ['shop/db-0', '10.96.0.20', '--to: 10.96.0.20 is the ClusterIP of Service shop/web'],
      [
        'shop/db-0',
        '198.51.100.7',
        '--to: 198.51.100.7 is the load-balancer IP of Service shop/web (status.loadBalancer.ingress[0].ip)',
      ],
      [
        '192.0.2.10',
        'shop/db-0',
        '--from: 192.0.2.10 is an external IP of Service shop/web (spec.externalIPs[0])',
      ],
    ];
    for (const [from, to, message] of cases) {
      const r = await explain(from, to);
      expect([r.code, r.out, r.err], `${from} ${to}`).toEqual([
        2,
        '',
        `microseg explain: ${message}; ${tail}\n`,
      ]);
    }
  });
});

describe('a policy given again under its name', () => {
  // What `kubectl apply` of the file would do: the object of that name is replaced, not joined by a
  // second one whose allows add to the first's.
  const TIGHTER = [
    'apiVersion: networking.k8s.io/v1',
    'kind: NetworkPolicy',
    'metadata: { name: db-from-cart, namespace: shop }',
    'spec:',
    '  podSelector: { matchLabels: { app: db } }',
    '  policyTypes: [Ingress]',
    '',
  ].join('\n');
  const REPLACED =
    'warning: 1 object(s) given more than once under one name with other content; the last one read is used, as applying it replaces the others (--cluster is read first, then each --policies or --proposal in order): NetworkPolicy shop/db-from-cart\n';
  it("replaces the cluster's policy in explain and simulate", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'microseg-replace-'));
    writeFileSync(join(dir, 'tighter.yaml'), TIGHTER);
    const args = ['--from', 'shop/cart-5c4b-y1', '--to', 'shop/db-0', '--port', 'pg'];
    const before = await cli('explain', '--cluster', CLUSTER, ...args);
    expect(before.out.split('\n')[0]).toBe('shop/cart-5c4b-y1 -> shop/db-0 TCP/5432: ALLOWED');
    const r = await cli('explain', '--cluster', CLUSTER, '--policies', join(dir, 'tighter.yaml'), ...args);
    expect([r.code, r.err]).toEqual([0, `microseg explain: ${REPLACED}`]);
    expect(r.out).toBe(
      [
        'shop/cart-5c4b-y1 -> shop/db-0 TCP/5432: DENIED',
        '  ok   egress from shop/cart-5c4b-y1: no policy isolates it for egress, allowed by default',
        '  DENY ingress to shop/db-0: isolated by shop/db-from-cart and no ingress rule matches',
        '       selected for ingress by: shop/db-from-cart',
        '  decided by tier: networkpolicy',
        '',
      ].join('\n'),
    );
    const s = await cli(
      'simulate',
      '--cluster',
      CLUSTER,
      '--policies',
      join(dir, 'tighter.yaml'),
      '--queries',
      fixture('queries.json'),
    );
    expect(s.err).toBe(`microseg simulate: ${REPLACED}`);
    expect((JSON.parse(s.out) as { allowed: boolean }[]).map((a) => a.allowed)).toEqual([
      true,
      false,
      false,
      false,
      true,
      true,
    ]);
  });
  it("replaces the cluster's policy in blast-radius --proposal", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'microseg-replace-'));
    writeFileSync(join(dir, 'tighter.yaml'), TIGHTER);
    const r = await cli(
      'blast-radius',
      '--cluster',
      CLUSTER,
      '--workload',
      'shop/StatefulSet/db',
      '--proposal',
      join(dir, 'tighter.yaml'),
      '--output',
      'json',
    );
    expect([r.code, r.err]).toEqual([0, `microseg blast-radius: ${REPLACED}`]);
    const b = JSON.parse(r.out) as { before: { reachedFrom: unknown[] }; after: { reachedFrom: unknown[] } };
    expect(b.before.reachedFrom).toEqual([{ from: 'shop/Deployment/cart', ports: ['5432/TCP'] }]);
    expect(b.after.reachedFrom).toEqual([]);
  });
  it('says nothing when the policy given again is the same', async () => {
    const r = await cli(
      'explain',
      '--cluster',
      CLUSTER,
      '--policies',
      CLUSTER,
      '--from',
      'shop/cart-5c4b-y1',
      '--to',
      'shop/db-0',
      '--port',
      'pg',
    );
    expect([r.code, r.err]).toEqual([0, '']);
    expect(r.out).toContain('       selected for ingress by: shop/db-from-cart\n');
  });
});

describe('a pod the snapshot does not have', () => {
  it('is named with the pods it is likely a typo or the workload of', async () => {
    const explain = (from: string) =>
      cli('explain', '--cluster', CLUSTER, '--from', from, '--to', 'shop/db-0', '--port', 'pg');
    const cases: [string, string][] = [
      [
        'shop/cart-5c4b-y',
        'microseg explain: --from: pod shop/cart-5c4b-y is not in the cluster snapshot (did you mean shop/cart-5c4b-y1?)\n',
      ],
      [
        'web/frontend',
        'microseg explain: --from: pod web/frontend is not in the cluster snapshot (did you mean one of web/frontend-7d9f-x1, web/frontend-7d9f-x2?)\n',
      ],
      [
        'shopp/cart-5c4b-y1',
        'microseg explain: --from: pod shopp/cart-5c4b-y1 is not in the cluster snapshot: it has no namespace shopp (did you mean shop?)\n',
      ],
      ['shop/nosuch', 'microseg explain: --from: pod shop/nosuch is not in the cluster snapshot\n'],
    ];
    for (const [from, message] of cases) {
      const r = await explain(from);
      expect([r.code, r.err], from).toEqual([2, message]);
    }
  });
});

describe('microseg blast-radius', () => {
  it('compares the current policies with a proposal', async () => {
    const r = await cli(
      'blast-radius',
      '--cluster',
      CLUSTER,
      '--workload',
      'shop/StatefulSet/db',
      '--proposal',
      fixture('proposal'),
    );
    expect(r.code).toBe(0);
    expect(r.out).toContain('blast radius of shop/StatefulSet/db\n');
    expect(r.out).toContain('    web/Deployment/frontend -> shop/Deployment/cart -> shop/StatefulSet/db\n');
    expect(r.out.endsWith('reachable workload pairs: 9 before, 2 after\n')).toBe(true);
  });
  it("--prune leaves out the cluster's microseg policies the proposal no longer holds, as audit --prune", async () => {
    // Was: no --prune, so a microseg policy of the cluster the new proposal dropped stayed in the answer
    // "with the proposal", which overstated what the workload is reached from after the change.
    const dir = mkdtempSync(join(tmpdir(), 'microseg-prune-'));
    const file = join(dir, 'cluster.yaml');
    const managed = (ns: string, name: string, spec: string[]) => [
      '---',
      'apiVersion: networking.k8s.io/v1',
      'kind: NetworkPolicy',
      `metadata: { name: ${name}, namespace: ${ns}, labels: { app.kubernetes.io/managed-by: microseg } }`,
      'spec:',
      ...spec.map((l) => `  ${l}`),
    ];
    writeFileSync(
      file,
      [
        readFileSync(CLUSTER, 'utf8').trimEnd(),
        // An earlier proposal's: frontend may reach db.
        ...managed('shop', 'microseg-db', [
          'podSelector: { matchLabels: { app: db } }',
          'ingress:',
          '  - from: [{ namespaceSelector: { matchLabels: { tier: edge } }, podSelector: { matchLabels: { app: frontend } } }]',
          '    ports: [{ port: 5432 }]',
        ]),
        // One of a namespace the proposal holds no policy for: kept.
        ...managed('web', 'microseg-frontend', [
          'podSelector: { matchLabels: { app: frontend } }',
          'policyTypes: [Egress]',
          'egress: [{}]',
        ]),
        '',
      ].join('\n'),
    );
    const radius = (...more: string[]) =>
      cli(
        'blast-radius',
        '--cluster',
        file,
        '--workload',
        'shop/StatefulSet/db',
        '--proposal',
        fixture('proposal/shop.yaml'),
        ...more,
      );
    type Side = { reachedFrom: { from: string }[] };
    const from = (side: Side) => side.reachedFrom.map((r) => r.from);
    const kept = await radius('--output', 'json');
    expect([kept.code, kept.err]).toEqual([0, '']);
    const k = JSON.parse(kept.out) as { before: Side; after: Side; pruned?: string[] };
    expect(from(k.before)).toEqual(['shop/Deployment/cart', 'web/Deployment/frontend']);
    expect(from(k.after)).toEqual(['shop/Deployment/cart', 'web/Deployment/frontend']);
    expect(k.pruned).toBeUndefined();
    const pruned = await radius('--prune', '--output', 'json');
    expect([pruned.code, pruned.err]).toEqual([0, '']);
    const p = JSON.parse(pruned.out) as { before: Side; after: Side; pruned: string[] };
    expect(from(p.before)).toEqual(['shop/Deployment/cart', 'web/Deployment/frontend']);
    expect(from(p.after)).toEqual(['shop/Deployment/cart']);
    expect(p.pruned).toEqual(['shop/microseg-db']);
    const text = await radius('--prune');
    expect(text.out).toContain(
      "\nwith the proposal, leaving out 1 of microseg's (--prune: shop/microseg-db):\n",
    );
    const alone = await cli(
      'blast-radius',
      '--cluster',
      file,
      '--workload',
      'shop/StatefulSet/db',
      '--prune',
    );
    expect([alone.code, alone.out, alone.err]).toEqual([
      2,
      '',
      "microseg blast-radius: --prune applies to a --proposal: it leaves out the cluster's microseg policies the proposal does not hold\n",
    ]);
  });
  it('refuses a proposal that holds no policy, which would answer "after" as "before"', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'microseg-noproposal-'));
    const file = join(dir, 'p.yaml');
    writeFileSync(file, 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: x, namespace: shop }\n');
    const report = join(dir, 'out');
    mkdirSync(report);
    writeFileSync(join(report, 'report.json'), '{"reportVersion": 1}\n');
    for (const p of [file, report]) {
      const r = await cli(
        'blast-radius',
        '--cluster',
        CLUSTER,
        '--workload',
        'shop/StatefulSet/db',
        '--proposal',
        p,
      );
      expect([r.code, r.out], p).toEqual([2, '']);
      expect(r.err, p).toBe(
        p === file
          ? 'microseg blast-radius: warning: skipped 1 object(s) of kinds microseg does not read: ConfigMap (1)\n' +
              `microseg blast-radius: --proposal ${p}: no NetworkPolicy in it (nor AdminNetworkPolicy, BaselineAdminNetworkPolicy, ClusterNetworkPolicy)\n`
          : `microseg blast-radius: ${p}: the directory has no .json, .yaml or .yml file but report.json, which recommend writes (no Kubernetes object)\n`,
      );
    }
  });
  it('explain and simulate refuse --policies that hold no policy, which would be answered without them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'microseg-nopolicies-'));
    // A kustomization.yaml given for the policies it lists: skipped, and the answer was the cluster's.
    const file = join(dir, 'kustomization.yaml');
    writeFileSync(
      file,
      'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nmetadata: { name: k }\n',
    );
    const skipped = (command: string) =>
      `microseg ${command}: warning: skipped 1 object(s) of kinds microseg does not read: Kustomization (1)\n`;
    const refused = (command: string) =>
      `microseg ${command}: --policies ${file}: no NetworkPolicy in it (nor AdminNetworkPolicy, BaselineAdminNetworkPolicy, ClusterNetworkPolicy)\n`;
    const e = await cli(
      ...['explain', '--cluster', CLUSTER, '--policies', fixture('proposal'), '--policies', file],
      ...['--from', 'web/frontend-7d9f-x1', '--to', 'shop/db-0', '--port', '5432'],
    );
    expect([e.code, e.out, e.err]).toEqual([2, '', skipped('explain') + refused('explain')]);
    const s = await cli(
      'simulate',
      '--cluster',
      CLUSTER,
      '--policies',
      file,
      '--queries',
      fixture('queries.json'),
    );
    expect([s.code, s.out, s.err]).toEqual([2, '', skipped('simulate') + refused('simulate')]);
  });
  it('refuses a --cluster directory that holds only report.json, which read as an empty cluster', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'microseg-reportonly-'));
    writeFileSync(join(dir, 'report.json'), '{"reportVersion": 1}\n');
    const r = await cli(
      'explain',
      '--cluster',
      dir,
      '--from',
      '10.0.1.10',
      '--to',
      '10.0.2.30',
      '--port',
      '5432',
    );
    expect([r.code, r.out, r.err]).toEqual([
      2,
      '',
      `microseg explain: ${dir}: the directory has no .json, .yaml or .yml file but report.json, which recommend writes (no Kubernetes object)\n`,
    ]);
  });
  it('refuses a workload whose pods count as their nodes', async () => {
    // Answered for its pod template, the node agent was counted as a pod of its labels.
    const file = clusterWith('agent', [
      '---',
      'apiVersion: apps/v1',
      'kind: DaemonSet',
      'metadata: { name: agent, namespace: shop }',
      'spec:',
      '  selector: { matchLabels: { app: agent } }',
      '  template: { metadata: { labels: { app: agent } }, spec: { hostNetwork: true, containers: [{ name: a }] } }',
      '---',
      'apiVersion: v1',
      'kind: Pod',
      'metadata:',
      '  name: agent-0',
      '  namespace: shop',
      '  labels: { app: agent }',
      '  ownerReferences: [{ apiVersion: apps/v1, kind: DaemonSet, name: agent, controller: true }]',
      'spec: { nodeName: node-a, hostNetwork: true, containers: [{ name: a, ports: [{ containerPort: 9100 }] }] }',
      'status: { podIP: 192.168.0.1, hostIP: 192.168.0.1 }',
      '',
    ]);
    const r = await cli('blast-radius', '--cluster', file, '--workload', 'shop/DaemonSet/agent');
    expect([r.code, r.out, r.err]).toEqual([
      2,
      '',
      "microseg blast-radius: --workload: the pods of shop/DaemonSet/agent use their node's network, so policies see them as their nodes and they have no blast radius of their own (--host-network pod counts them as pods)\n",
    ]);
    const p = await cli(
      'blast-radius',
      '--cluster',
      file,
      '--workload',
      'shop/ds/agent',
      '--host-network',
      'pod',
    );
    expect([p.code, p.err]).toEqual([0, '']);
    expect(p.out).toContain('blast radius of shop/DaemonSet/agent\n');
    expect(p.out).toContain('    shop/StatefulSet/db [9100/TCP]\n');
    // Its pod given as namespace/pod: the same.
    const one = await cli('blast-radius', '--cluster', file, '--workload', 'shop/agent-0');
    expect([one.code, one.out, one.err]).toEqual([
      2,
      '',
      "microseg blast-radius: --workload: pod shop/agent-0 uses its node's network, so policies see it as its node and it has no blast radius of its own (--host-network pod counts it as a pod)\n",
    ]);
    const asPod = await cli(
      'blast-radius',
      '--cluster',
      file,
      '--workload',
      'shop/agent-0',
      '--host-network',
      'pod',
    );
    expect([asPod.code, asPod.out]).toEqual([0, p.out]);
  });
  it('refuses an internet probe that is no outside address, naming the flag', async () => {
    const probe = (ip: string) =>
      cli('blast-radius', '--cluster', CLUSTER, '--workload', 'shop/StatefulSet/db', '--internet-probe', ip);
    const cases: [string, string][] = [
      ['nope', '--internet-probe: "nope" is not an IP address'],
      [
        '10.0.1.10',
        '--internet-probe: 10.0.1.10 is an address of web/frontend-7d9f-x1, not an outside address',
      ],
      [
        '192.168.0.2',
        '--internet-probe: 192.168.0.2 is an address of node node-b (192.168.0.2), not an outside address',
      ],
    ];
    for (const [ip, message] of cases) {
      const r = await probe(ip);
      expect([r.code, r.out, r.err], ip).toEqual([2, '', `microseg blast-radius: ${message}\n`]);
    }
    expect((await probe('198.51.100.1')).code).toBe(0);
  });
  it('refuses an internet probe inside the pod network that no pod holds, saying why', async () => {
    // Policies written for the internet (recommend's: 0.0.0.0/0 minus the pod networks) leave the pod
    // network out, so such a probe found no internet-exposed workload where there are some.
    const file = clusterWith('probe', [
      '---',
      'apiVersion: v1',
      'kind: Node',
      'metadata: { name: node-c }',
      'spec: { podCIDR: 10.1.0.0/24, podCIDRs: [10.1.0.0/24, "fd00:1::/64"] }',
      'status: { addresses: [{ type: InternalIP, address: 192.168.0.3 }] }',
      '---',
      'apiVersion: v1',
      'kind: Node',
      'metadata: { name: node-d }',
      'spec: { podCIDR: 10.2.0.0/24 }',
      '---',
      'apiVersion: networking.k8s.io/v1',
      'kind: NetworkPolicy',
      'metadata: { name: frontend-from-world, namespace: web }',
      'spec:',
      '  podSelector: { matchLabels: { app: frontend } }',
      '  ingress: [{ from: [{ ipBlock: { cidr: 0.0.0.0/0, except: [10.0.0.0/16] } }] }]',
      '',
    ]);
    const probe = (ip: string) =>
      cli('blast-radius', '--cluster', file, '--workload', 'shop/StatefulSet/db', '--internet-probe', ip);
    const why =
      'not an outside address: no pod holds it now, but traffic from it is pod traffic, which policies meant for the internet leave out (give an address outside the pod network)';
    const cases: [string, string][] = [
      [
        '10.0.99.99',
        `10.0.99.99 is in the pod network 10.0.0.0/16 (the /16 of the pods' IPv4 addresses), ${why}`,
      ],
      ['10.1.0.7', `10.1.0.7 is in the pod network 10.1.0.0/24 (spec.podCIDRs of node node-c), ${why}`],
      ['fd00:1::9', `fd00:1::9 is in the pod network fd00:1::/64 (spec.podCIDRs of node node-c), ${why}`],
      // A Node that gives spec.podCIDR alone is named by that field.
      ['10.2.0.7', `10.2.0.7 is in the pod network 10.2.0.0/24 (spec.podCIDR of node node-d), ${why}`],
    ];
    for (const [ip, message] of cases) {
      const r = await probe(ip);
      expect([r.code, r.out, r.err], ip).toEqual([
        2,
        '',
        `microseg blast-radius: --internet-probe: ${message}\n`,
      ]);
    }
    const ok = await probe('198.51.100.1');
    expect(ok.code).toBe(0);
    expect(ok.out).toContain('    web/Deployment/frontend -> shop/Deployment/cart -> shop/StatefulSet/db\n');
  });
  it('refuses an empty --internet-probe rather than probing the defaults', async () => {
    // An unset variable in a script (--internet-probe "$PROBE") was taken as no probe given.
    const r = await cli(
      'blast-radius',
      '--cluster',
      CLUSTER,
      '--workload',
      'shop/StatefulSet/db',
      '--internet-probe',
      '',
    );
    expect([r.code, r.out, r.err]).toEqual([
      2,
      '',
      'microseg blast-radius: --internet-probe: "" is not an IP address\n',
    ]);
  });
  it('finds workloads exposed to the IPv6 internet in a cluster with IPv6 pod addresses', async () => {
    // The one default probe, 203.0.113.10, is IPv4: a workload whose ingress admits ::/0 alone was
    // never found exposed.
    const file = clusterWith('probe6', [
      '---',
      'apiVersion: v1',
      'kind: Node',
      'metadata: { name: node-c }',
      'spec: { podCIDRs: [10.1.0.0/24, "fd00:1::/64"] }',
      '---',
      'apiVersion: networking.k8s.io/v1',
      'kind: NetworkPolicy',
      'metadata: { name: frontend-from-world6, namespace: web }',
      'spec:',
      '  podSelector: { matchLabels: { app: frontend } }',
      '  ingress: [{ from: [{ ipBlock: { cidr: "::/0" } }] }]',
      '',
    ]);
    const r = await cli('blast-radius', '--cluster', file, '--workload', 'shop/StatefulSet/db');
    expect([r.code, r.err]).toEqual([0, '']);
    expect(r.out).toContain(
      '  paths from internet-exposed workloads (2):\n' +
        '    shop/Deployment/cart -> shop/StatefulSet/db\n' +
        '    web/Deployment/frontend -> shop/Deployment/cart -> shop/StatefulSet/db\n',
    );
    // A probe given is the only one.
    const v4 = await cli(
      ...[
        'blast-radius',
        '--cluster',
        file,
        '--workload',
        'shop/StatefulSet/db',
        '--internet-probe',
        '198.51.100.1',
      ],
    );
    expect(v4.out).toContain(
      '  paths from internet-exposed workloads (1):\n    shop/Deployment/cart -> shop/StatefulSet/db\n',
    );
  });
  it('takes --workload namespace/pod, as explain does, for the pod and its workload', async () => {
    // Was refused: --workload: "shop/db-0" is not namespace/kind/name.
    const radius = (w: string) =>
      cli('blast-radius', '--cluster', CLUSTER, '--workload', w, '--proposal', fixture('proposal'));
    for (const [pod, workload] of [
      ['shop/db-0', 'shop/StatefulSet/db'],
      ['shop/cart-5c4b-y1', 'shop/Deployment/cart'],
      ['shop/batch-28000-z1', 'shop/CronJob/batch'],
    ] as const) {
      const [byPod, byWorkload] = [await radius(pod), await radius(workload)];
      expect([byPod.code, byPod.err], pod).toEqual([0, '']);
      expect(byPod.out, pod).toContain(`blast radius of ${workload}\n`);
      expect(byPod.out, pod).toBe(byWorkload.out);
    }
    const cases: [string, string][] = [
      ['shop/db-1', 'pod shop/db-1 is not in the cluster snapshot (did you mean shop/db-0?)'],
      [
        'shop',
        '"shop" is neither namespace/Kind/name (a workload, e.g. shop/Deployment/cart) nor namespace/pod (that pod\'s workload)',
      ],
      [
        'shop/StatefulSet/db/0',
        '"shop/StatefulSet/db/0" is neither namespace/Kind/name (a workload, e.g. shop/Deployment/cart) nor namespace/pod (that pod\'s workload)',
      ],
    ];
    for (const [w, message] of cases) {
      const r = await cli('blast-radius', '--cluster', CLUSTER, '--workload', w);
      expect([r.code, r.out, r.err], w).toEqual([2, '', `microseg blast-radius: --workload: ${message}\n`]);
    }
  });
  it('names a missing workload', async () => {
    const r = await cli('blast-radius', '--cluster', CLUSTER, '--workload', 'shop/Deployment/ghost');
    expect([r.code, r.err]).toEqual([
      2,
      'microseg blast-radius: --workload: no Deployment ghost in namespace shop\n',
    ]);
  });
  it('names the workload or namespace a misspelt one is likely meant to be', async () => {
    const cases: [string, string][] = [
      ['shop/Deployment/carts', 'no Deployment carts in namespace shop (did you mean shop/Deployment/cart?)'],
      ['shop/StatefulSet/dbb', 'no StatefulSet dbb in namespace shop (did you mean shop/StatefulSet/db?)'],
      ['shop/CronJob/btach', 'no CronJob btach in namespace shop (did you mean shop/CronJob/batch?)'],
      [
        'shopp/Deployment/cart',
        'no Deployment cart in namespace shopp: it has no namespace shopp (did you mean shop?)',
      ],
    ];
    for (const [w, message] of cases) {
      const r = await cli('blast-radius', '--cluster', CLUSTER, '--workload', w);
      expect([r.code, r.err], w).toEqual([2, `microseg blast-radius: --workload: ${message}\n`]);
    }
  });
});

describe('microseg simulate on the e2e model', () => {
  it('agrees with the upstream truth table through files', async () => {
    const { ALL, Reach, modelNamespaces, modelPods, ipOf } = await import('./e2e-model.ts');
    const dir = mkdtempSync(join(tmpdir(), 'microseg-e2e-'));
    const list = {
      apiVersion: 'v1',
      kind: 'List',
      items: [
        ...modelNamespaces().map((n) => ({
          ...n,
          metadata: { name: n.metadata.name, labels: { ns: n.metadata.name } },
        })),
        ...modelPods(),
      ],
    };
    writeFileSync(join(dir, 'cluster.json'), JSON.stringify(list));
    writeFileSync(
      join(dir, 'policies.yaml'),
      [
        'apiVersion: networking.k8s.io/v1',
        'kind: NetworkPolicy',
        'metadata: {name: allow-client-a-via-cidr-egress-rule, namespace: x}',
        'spec:',
        '  podSelector: {matchLabels: {pod: a}}',
        '  policyTypes: [Egress]',
        '  egress:',
        `  - to: [{ipBlock: {cidr: 0.0.0.0/4, except: ["${ipOf('x/b')}/32"]}}]`,
        '---',
        'apiVersion: networking.k8s.io/v1',
        'kind: NetworkPolicy',
        'metadata: {name: allow-client-a-via-ns-selector, namespace: y}',
        'spec:',
        '  podSelector: {matchLabels: {pod: c}}',
        '  ingress:',
        '  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: z}}}]',
        '    ports: [{port: serve-81-udp, protocol: UDP}]',
        '',
      ].join('\n'),
    );
    const pairs = ALL.flatMap((f) => ALL.filter((t) => t !== f).map((t) => [f, t] as const));
    const queries = pairs.flatMap(([from, to]) => [
      { from, to, port: 80, protocol: 'TCP' },
      { from: { ip: ipOf(from) }, to, port: 'serve-81-udp' },
    ]);
    writeFileSync(join(dir, 'q.json'), JSON.stringify(queries));
    const r = await cli(
      'simulate',
      '--cluster',
      join(dir, 'cluster.json'),
      '--policies',
      join(dir, 'policies.yaml'),
      '--queries',
      join(dir, 'q.json'),
    );
    expect(r.err).toBe('');
    const answers = JSON.parse(r.out) as { allowed: boolean }[];
    const tcp80 = new Reach().expect('x/a', 'x/b', false).expectAllIngress('y/c', false);
    const udp81 = new Reach()
      .expect('x/a', 'x/b', false)
      .expectAllIngress('y/c', false)
      .expectPeer({ ns: 'z' }, { ns: 'y', pod: 'c' }, true);
    const want = pairs.flatMap(([f, t]) => [tcp80.m.get(`${f}>${t}`), udp81.m.get(`${f}>${t}`)]);
    expect(answers.map((a) => a.allowed)).toEqual(want);
  });
});

describe('options given more than once', () => {
  it('explain, simulate and blast-radius read every --cluster, as recommend, graph and audit do', async () => {
    // The last one alone was read: here the pods were not in the snapshot.
    const dir = mkdtempSync(join(tmpdir(), 'microseg-twoclusters-'));
    const extra = join(dir, 'extra.yaml');
    writeFileSync(extra, 'apiVersion: v1\nkind: Namespace\nmetadata: { name: extra }\n');
    const e = await cli(
      ...['explain', '--cluster', CLUSTER, '--cluster', extra],
      ...['--from', 'web/frontend-7d9f-x1', '--to', 'shop/db-0', '--port', '5432'],
    );
    expect([e.code, e.err]).toEqual([0, '']);
    expect(e.out).toContain('web/frontend-7d9f-x1 -> shop/db-0 TCP/5432: DENIED\n');
    const s = await cli(
      'simulate',
      '--cluster',
      CLUSTER,
      '--cluster',
      extra,
      '--queries',
      fixture('queries.json'),
    );
    expect([s.code, s.err]).toEqual([0, '']);
    const b = await cli(
      'blast-radius',
      '--cluster',
      extra,
      '--cluster',
      CLUSTER,
      '--workload',
      'shop/sts/db',
    );
    expect([b.code, b.err]).toEqual([0, '']);
  });
  it('refuse an option of one value given twice, naming both values', async () => {
    const cases: [string[], string][] = [
      [
        ['explain', '--cluster', CLUSTER, '--from', 'web/frontend-7d9f-x1', '--from', 'shop/cart-5c4b-y1'],
        'microseg explain: --from is given more than once (web/frontend-7d9f-x1, shop/cart-5c4b-y1): it takes one value\n',
      ],
      [
        [
          'blast-radius',
          '--cluster',
          CLUSTER,
          '--workload',
          'shop/sts/db',
          '--proposal',
          'a',
          '--proposal=b',
        ],
        'microseg blast-radius: --proposal is given more than once (a, b): it takes one value\n',
      ],
      [
        ['simulate', '--cluster', CLUSTER, '--queries', 'a.json', '--queries', 'b.json'],
        'microseg simulate: --queries is given more than once (a.json, b.json): it takes one value\n',
      ],
      [
        ['recommend', '--flows', 'f', '--cluster', 'c', '--out', 'a', '--out', 'b'],
        'microseg recommend: --out is given more than once (a, b): it takes one value\n',
      ],
      [
        ['graph', '--flows', 'f', '--cluster', 'c', '--format', 'dot', '--format', 'json'],
        'microseg graph: --format is given more than once (dot, json): it takes one value\n',
      ],
      [
        [
          'audit',
          '--flows',
          'f',
          '--cluster',
          'c',
          '--policies',
          'p',
          '--output',
          'json',
          '--output',
          'text',
        ],
        'microseg audit: --output is given more than once (json, text): it takes one value\n',
      ],
    ];
    for (const [args, message] of cases) {
      const r = await cli(...args);
      expect([r.code, r.out, r.err], args.join(' ')).toEqual([2, '', message]);
    }
  });
});

describe('a policy the engine refuses', () => {
  // The message names the file the policy was read from, as the snapshot loader's messages do; it named
  // only the policy, which could be in any of the --cluster and --policies files.
  it('is bad usage naming the file, the policy and the field', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'microseg-badpolicy-'));
    const bad = join(dir, 'bad.yaml');
    writeFileSync(
      bad,
      'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: x, namespace: shop}\nspec:\n  podSelector: {}\n  policyTypes: [Ingres]\n',
    );
    const anp = join(dir, 'anp.yaml');
    writeFileSync(
      anp,
      'apiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\nmetadata: {name: a}\nspec:\n  priority: 5000\n  subject: {namespaces: {}}\n',
    );
    const r = await cli(
      ...['explain', '--cluster', CLUSTER, '--policies', bad, '--from', '203.0.113.7'],
      ...['--to', 'shop/db-0', '--port', 'pg'],
    );
    expect(r).toEqual({
      code: 2,
      out: '',
      err: `microseg explain: ${bad}: NetworkPolicy shop/x: spec.policyTypes[0] "Ingres" is not one of Ingress, Egress\n`,
    });
    const a = await cli(
      ...['explain', '--cluster', CLUSTER, '--policies', anp, '--from', '203.0.113.7'],
      ...['--to', 'shop/db-0', '--port', 'pg'],
    );
    expect(a.code).toBe(2);
    expect(a.err).toMatch(new RegExp(`^microseg explain: ${anp}: AdminNetworkPolicy a: spec\\.priority `));
  });
});

describe('--limit', () => {
  // A negative number is a number: it said "--limit -1 is not a number".
  it('below 0 or not whole is bad usage saying what it takes', async () => {
    for (const limit of ['-1', '2.5', 'x']) {
      const b = await cli(
        'blast-radius',
        '--cluster',
        CLUSTER,
        '--workload',
        'shop/Pod/db-0',
        '--limit',
        limit,
      );
      expect(b).toEqual({
        code: 2,
        out: '',
        err: `microseg blast-radius: --limit must be a whole number, 0 or more, got ${JSON.stringify(limit)}\n`,
      });
      const a = await cli(
        ...['audit', '--flows', 'flows.jsonl', '--cluster', CLUSTER, '--policies', CLUSTER],
        ...['--limit', limit],
      );
      expect(a).toEqual({
        code: 2,
        out: '',
        err: `microseg audit: --limit must be a whole number, 0 or more, got ${JSON.stringify(limit)}\n`,
      });
    }
  });
});

describe('standard input named by two options', () => {
  // Read once, by the first: the second found it empty and was refused as '-: the file is empty'. Said as
  // audit says it, before anything is read.
  it('is bad usage naming both', async () => {
    const cases: [string[], string][] = [
      [
        [
          'explain',
          '--cluster',
          '-',
          '--policies',
          '-',
          '--from',
          '1.2.3.4',
          '--to',
          'shop/db-0',
          '--port',
          '80',
        ],
        'microseg explain: --cluster - and --policies -: standard input can be read only once, by one of them',
      ],
      [
        ['simulate', '--cluster', '-', '--queries', '-'],
        'microseg simulate: --cluster - and --queries -: standard input can be read only once, by one of them',
      ],
      [
        ['simulate', '--cluster', CLUSTER, '--policies', '-', '--policies', '-', '--queries', 'q.json'],
        'microseg simulate: --policies - is given twice: standard input can be read only once',
      ],
      [
        ['blast-radius', '--cluster', '-', '--proposal', '-', '--workload', 'shop/Pod/db-0'],
        'microseg blast-radius: --cluster - and --proposal -: standard input can be read only once, by one of them',
      ],
    ];
    for (const [argv, err] of cases) {
      const io = captureIO(Readable.from([readFileSync(CLUSTER)]));
      expect(await runCli(argv, io)).toBe(2);
      expect({ out: io.stdout, err: io.stderr }).toEqual({ out: '', err: `${err}\n` });
    }
  });
});

describe('simulate: namedPorts of a {"namespace", "labels"} end', () => {
  // Anything but a list was ignored (and the query answered as if the end had no named port: "has no
  // container port named"), and the entries of a list were taken unchecked.
  it('is a list of {name, port, protocol}, each checked, naming the field', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'microseg-namedports-'));
    const end = (namedPorts: unknown) => ({ namespace: 'shop', labels: { app: 'db' }, namedPorts });
    const cases: [unknown, string][] = [
      [{ pg: 5432 }, 'query 1: to: namedPorts must be a list of {"name", "port", "protocol"}'],
      [[{ name: 'pg', port: '5432' }], 'query 1: to: namedPorts[0].port must be a port number (1-65535)'],
      [
        [{ name: 'pg', port: 5432, protocol: 'ICMP' }],
        'query 1: to: namedPorts[0]: protocol "ICMP" is not one of TCP, UDP, SCTP',
      ],
      [[{ name: 5, port: 5432 }], 'query 1: to: namedPorts[0].name must be a string'],
      [
        [{ nmae: 'pg', port: 5432 }],
        'query 1: to: namedPorts[0]: unknown field "nmae"; a named port has name, port, protocol',
      ],
    ];
    for (const [namedPorts, message] of cases) {
      const file = join(dir, 'q.json');
      writeFileSync(file, JSON.stringify([{ from: 'shop/db-0', to: end(namedPorts), port: 'pg' }]));
      const r = await cli('simulate', '--cluster', CLUSTER, '--queries', file);
      expect([r.code, r.out, r.err], JSON.stringify(namedPorts)).toEqual([
        2,
        '',
        `microseg simulate: ${file}: ${message}\n`,
      ]);
    }
    const file = join(dir, 'q.json');
    writeFileSync(
      file,
      JSON.stringify([{ from: 'shop/db-0', to: end([{ name: 'pg', port: 5432 }]), port: 'pg' }]),
    );
    const ok = await cli('simulate', '--cluster', CLUSTER, '--queries', file);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.out)).toHaveLength(1);
  });
});

describe('a --cluster file that holds only null', () => {
  it('is refused naming the file, not read as an empty cluster', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'microseg-null-'));
    const file = join(dir, 'cluster.json');
    writeFileSync(file, 'null\n');
    const r = await cli(
      'explain',
      '--cluster',
      file,
      '--from',
      '10.0.0.1',
      '--to',
      '10.0.0.2',
      '--port',
      '80',
    );
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toBe(
      `microseg explain: ${file}: no object in the file, only null or empty YAML documents (a cluster with no object is a List with no items: {"kind":"List","items":[]})\n`,
    );
  });
});
