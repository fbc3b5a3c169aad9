/**
 * `microseg recommend` on the Kubescape NetworkNeighborhood sample: the object's own workload and its
 * selector neighbours have no pod or address, its IP neighbours no time of their own; and a run whose
 * flows give no policy at all says so and writes nothing.
 */
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { captureIO } from '../../src/cli/io.ts';
import { runCli } from '../../src/cli/main.ts';

const SAMPLE = fileURLToPath(
  new URL('../../../shared/samples/kubescape-networkneighborhood.json', import.meta.url),
);

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'microseg-kubescape-'));
});

/** A Deployment with its ReplicaSet and one pod at `ip`, started at `start`. */
function deployment(ns: string, name: string, labels: Record<string, string>, ip: string, start: string) {
  const rs = `${name}-5d8f7b9c6`;
  const podLabels = { ...labels, 'pod-template-hash': '5d8f7b9c6' };
  return [
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name, namespace: ns, uid: `uid-${name}` },
      spec: {
        selector: { matchLabels: labels },
        template: { metadata: { labels }, spec: { containers: [{ name }] } },
      },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: {
        name: rs,
        namespace: ns,
        uid: `uid-${rs}`,
        labels: podLabels,
        ownerReferences: [
          { apiVersion: 'apps/v1', kind: 'Deployment', name, uid: `uid-${name}`, controller: true },
        ],
      },
      spec: { selector: { matchLabels: podLabels } },
    },
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: `${rs}-q2w4r`,
        namespace: ns,
        labels: podLabels,
        creationTimestamp: start,
        ownerReferences: [
          { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: rs, uid: `uid-${rs}`, controller: true },
        ],
      },
      spec: { nodeName: 'node-1', containers: [{ name }] },
      status: { phase: 'Running', podIP: ip, podIPs: [{ ip }], hostIP: '172.16.0.20', startTime: start },
    },
  ];
}

/**
 * The cluster the sample comes from, as far as the sample tells: Kubescape's workloads (the operator,
 * the peers its selectors name, gateway at 10.244.0.67 and node-agent at 10.244.0.73, the scheduler
 * CronJob), cluster DNS, and the API server behind 10.245.0.1. Its pods started at `start`.
 */
function kubescapeCluster(start: string, without?: string): object {
  const items: unknown[] = [
    ...['kubescape', 'kube-system', 'default'].map((name) => ({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name, labels: { 'kubernetes.io/metadata.name': name } },
    })),
    ...deployment(
      'kubescape',
      'operator',
      {
        'app.kubernetes.io/instance': 'kubescape',
        'app.kubernetes.io/name': 'operator',
        tier: 'ks-control-plane',
      },
      '10.244.0.40',
      start,
    ),
    ...deployment('kubescape', 'otel-collector', { app: 'otel-collector' }, '10.244.0.41', start),
    ...deployment('kubescape', 'kubescape', { app: 'kubescape' }, '10.244.0.42', start),
    ...deployment('kubescape', 'kubevuln', { app: 'kubevuln' }, '10.244.0.43', start),
    ...deployment('kubescape', 'gateway', { app: 'gateway' }, '10.244.0.67', start),
    ...deployment('kubescape', 'node-agent', { app: 'node-agent' }, '10.244.0.73', start),
    ...deployment('kube-system', 'coredns', { 'k8s-app': 'kube-dns' }, '10.244.0.2', start),
    {
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      metadata: { name: 'kubescape-scheduler', namespace: 'kubescape', uid: 'uid-scheduler' },
      spec: {
        schedule: '0 * * * *',
        jobTemplate: {
          spec: {
            template: {
              metadata: {
                labels: {
                  app: 'kubescape-scheduler',
                  'app.kubernetes.io/name': 'kubescape-scheduler',
                  'armo.tier': 'kubescape-scan',
                  'kubescape.io/tier': 'core',
                },
              },
              spec: { containers: [{ name: 'scheduler' }] },
            },
          },
        },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'kube-dns', namespace: 'kube-system' },
      spec: {
        selector: { 'k8s-app': 'kube-dns' },
        clusterIP: '10.245.0.10',
        ports: [{ name: 'dns', port: 53, protocol: 'UDP', targetPort: 53 }],
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'kubernetes', namespace: 'default' },
      spec: { clusterIP: '10.245.0.1', ports: [{ name: 'https', port: 443, targetPort: 6443 }] },
    },
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: 'kubernetes',
        namespace: 'default',
        labels: { 'kubernetes.io/service-name': 'kubernetes' },
      },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['172.16.0.10'] }],
      ports: [{ name: 'https', port: 6443, protocol: 'TCP' }],
    },
  ];
  return {
    apiVersion: 'v1',
    kind: 'List',
    items: items.filter(
      (o) => !(o as { metadata: { name: string } }).metadata.name.startsWith(without ?? '\0'),
    ),
  };
}

interface Report {
  graph: { nodes: number; edges: number };
  evidence: { policy: string; direction: string; peer: string; port: number | string }[];
  verification: { blocked: string[]; checkedConnections: number; allowedObserved: number };
  warnings: string[];
}

async function recommendOn(name: string, start: string, without?: string) {
  const cluster = join(dir, `${name}.json`);
  await writeFile(cluster, JSON.stringify(kubescapeCluster(start, without)));
  const out = join(dir, `out-${name}`);
  const io = captureIO();
  const code = await runCli(['recommend', '--flows', SAMPLE, '--cluster', cluster, '--out', out], io);
  return { code, io, out };
}

/** Each rule of the report's evidence as `policy direction peer:port`, sorted. */
const rules = (r: Report) =>
  r.evidence.map((e) => `${e.policy} ${e.direction} ${e.peer}:${e.port}`).sort((a, b) => a.localeCompare(b));

describe('recommend on the Kubescape sample', () => {
  it("proposes policies for the object's workload and every neighbour", async () => {
    const { code, io, out } = await recommendOn('cluster', '2024-05-01T00:00:00Z');
    expect(io.stderr).toBe('');
    expect(code).toBe(0);
    expect(io.stdout).toContain('verification: 13/13 observed connection(s) allowed');
    expect((await readdir(out)).sort()).toEqual(['kubescape.yaml', 'report.json']);
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as Report;
    expect(report.verification.blocked).toEqual([]);
    expect(rules(report).filter((r) => r.startsWith('kubescape/microseg-operator '))).toEqual([
      'kubescape/microseg-operator egress kube-apiserver:6443',
      'kubescape/microseg-operator egress kube-system/Deployment/coredns:53',
      'kubescape/microseg-operator egress kubescape/Deployment/gateway:8001',
      'kubescape/microseg-operator egress kubescape/Deployment/kubescape:8080',
      'kubescape/microseg-operator egress kubescape/Deployment/kubevuln:8080',
      'kubescape/microseg-operator egress kubescape/Deployment/otel-collector:4317',
      'kubescape/microseg-operator egress world:13.50.180.111/32:443',
      'kubescape/microseg-operator egress world:16.170.46.131/32:443',
      'kubescape/microseg-operator egress world:16.171.184.118/32:443',
      'kubescape/microseg-operator egress world:35.186.253.219/32:443',
      'kubescape/microseg-operator ingress kubescape/CronJob/kubescape-scheduler:4002',
      'kubescape/microseg-operator ingress kubescape/Deployment/gateway:4002',
      'kubescape/microseg-operator ingress kubescape/Deployment/node-agent:8000',
    ]);
    expect(report.warnings).toEqual([]);
  });

  it('attributes its IP neighbours to pods started after the object was created (a rollout)', async () => {
    const { code, io, out } = await recommendOn('rolled', '2024-06-10T00:00:00Z');
    expect(io.stderr).toBe('');
    expect(code).toBe(0);
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as Report;
    expect(rules(report)).toContain('kubescape/microseg-operator ingress kubescape/Deployment/gateway:4002');
    expect(rules(report)).toContain(
      'kubescape/microseg-operator ingress kubescape/Deployment/node-agent:8000',
    );
    expect(report.warnings).toEqual(
      ['10.244.0.67', '10.244.0.73'].map(
        (ip) =>
          `${ip} (in a record without times of its own, such as a Kubescape neighbour) was held by no pod of the snapshot at the latest time the record gives; taken for kubescape/Deployment/${ip.endsWith('67') ? 'gateway' : 'node-agent'}, whose pod holds it as of the snapshot`,
      ),
    );
  });

  it('names a neighbour whose pods no workload of the snapshot has, and blocks its connection', async () => {
    const { code, io, out } = await recommendOn('no-otel', '2024-05-01T00:00:00Z', 'otel-collector');
    expect(code).toBe(1);
    // Nothing is written, so the warnings report.json would hold are listed.
    expect(io.stderr).toContain(
      'warnings: 2:\n' +
        '  1 flow(s) have an end that could not be attributed to a workload or peer\n' +
        '  no workload of the snapshot has pods labelled app=otel-collector in namespace kubescape: a flow endpoint selecting them is unknown\n',
    );
    expect(io.stderr).toContain(
      'microseg recommend: not written: 1 observed connection(s) could not be checked, so the proposal is not proven to allow them:\n' +
        '  kubescape/Deployment/operator->unknown:4317/TCP: cannot be checked',
    );
    // Allowed, blocked and not checked add up to the connections observed.
    const [, allowed, total] =
      /verification: (\d+)\/(\d+) observed connection\(s\) allowed, 0 BLOCKED, 1 COULD NOT BE CHECKED /.exec(
        io.stderr,
      )!;
    expect(Number(allowed) + 1).toBe(Number(total));
    await expect(readdir(out)).rejects.toThrow(/ENOENT/);
  });
});

describe('recommend when no flow gives a policy', () => {
  const run = async (name: string, lines: object[], extra: string[] = []) => {
    const cluster = join(dir, 'nopolicy-cluster.json');
    await writeFile(cluster, JSON.stringify(kubescapeCluster('2024-05-01T00:00:00Z')));
    const flows = join(dir, `${name}.jsonl`);
    await writeFile(flows, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    const out = join(dir, `out-${name}`);
    const io = captureIO();
    const code = await runCli(
      ['recommend', '--flows', flows, '--cluster', cluster, '--out', out, ...extra],
      io,
    );
    return { code, io, out };
  };
  const time = '2024-06-01T00:00:00Z';

  it('says why, writes nothing and exits 2', async () => {
    // Neither end is known: left out as noise.
    const noise = await run('noise', [
      { time, src: { names: ['a.example'] }, dst: { names: ['b.example'] }, port: 80 },
    ]);
    expect(noise.code).toBe(2);
    expect(noise.io.stdout).toBe('');
    expect(noise.io.stderr).toContain('graph: 0 workload(s), 0 other peer(s), 0 edge(s)\n');
    expect(noise.io.stderr).not.toContain('written to');
    expect(noise.io.stderr).toContain(
      'microseg recommend: no policy proposed: every flow was left out as noise: neither of its ends is a pod, address or workload of the snapshot, or it went to a multicast or broadcast address (is --cluster a snapshot of the cluster the flows came from, taken while their pods ran?); nothing written\n',
    );
    await expect(readdir(noise.out)).rejects.toThrow(/ENOENT/);
    // Addresses outside the cluster and pod addresses no pod of the snapshot held.
    const outside = await run('outside', [
      { time, src: '10.244.9.9', dst: '8.8.8.8', port: 53, protocol: 'UDP' },
      { time, src: '10.244.9.8', dst: '10.244.9.9', port: 80 },
    ]);
    expect(outside.code).toBe(2);
    expect(outside.io.stderr).toContain(
      'microseg recommend: no policy proposed: no flow has a workload of the snapshot at either end (is --cluster a snapshot of the cluster the flows came from, taken while their pods ran?); nothing written\n',
    );
    await expect(readdir(outside.out)).rejects.toThrow(/ENOENT/);
    // Workloads only in namespaces no policy is written for.
    const dns = {
      time,
      src: { namespace: 'kube-system', labels: ['k8s-app=kube-dns'] },
      dst: '8.8.8.8',
      port: 53,
    };
    const system = await run('system', [dns]);
    expect(system.code).toBe(2);
    expect(system.io.stderr).toContain(
      'microseg recommend: no policy proposed: the workloads observed are in kube-system, for which no policy is written unless --namespace names it; nothing written\n',
    );
    const named = await run('system', [dns], ['--namespace', 'kube-system']);
    expect(named.code).toBe(0);
    expect(named.io.stdout).toContain('policies: 2 in 1 namespace(s) written to');
    // Every connection dropped, and no default deny asked for: the edges not expressible are listed.
    const dropped = await run(
      'dropped',
      [{ time, src: '10.244.0.42', dst: '10.244.0.43', port: 8080, verdict: 'DROPPED' }],
      ['--no-default-deny'],
    );
    expect(dropped.code).toBe(2);
    expect(dropped.io.stderr).toContain(
      'not expressible as NetworkPolicy: 1 edge(s):\n' +
        '  kubescape/Deployment/kubescape->kubescape/Deployment/kubevuln:8080/TCP: every observation was dropped: not allowed (--include-dropped, or policy.includeDropped of a Segmentation, allows it)\n',
    );
    expect(dropped.io.stderr).toContain(
      'microseg recommend: no policy proposed: no policy could be written for the workloads observed in kubescape (see above); nothing written\n',
    );
  });
});
