/**
 * A Service being deleted but held by a finalizer (a LoadBalancer Service's
 * `service.kubernetes.io/load-balancer-cleanup`) is still a Service: kube-proxy forwards its ClusterIP,
 * nodePorts and load-balancer and external addresses until it is gone. A snapshot taken meanwhile
 * reads as the same snapshot without its `metadata.deletionTimestamp`.
 */
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { captureIO } from '../../src/cli/io.ts';
import { runCli } from '../../src/cli/main.ts';
import { buildIdentity } from '../../src/identity/index.ts';
import { snapshotFromObjects } from '../../src/model/snapshot.ts';

const T0 = Date.parse('2026-11-01T10:00:00Z');
const iso = (t: number) => new Date(t).toISOString();

function app(name: string, labels: Record<string, string>, ip: string) {
  const hash = '7d9f';
  return [
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name, namespace: 'app', uid: `uid-${name}` },
      spec: {
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: { containers: [{ name, ports: [{ containerPort: 8080 }] }] },
        },
      },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: {
        name: `${name}-${hash}`,
        namespace: 'app',
        uid: `uid-${name}-${hash}`,
        ownerReferences: [
          { apiVersion: 'apps/v1', kind: 'Deployment', name, uid: `uid-${name}`, controller: true },
        ],
      },
      spec: { selector: { matchLabels: { ...labels, 'pod-template-hash': hash } } },
    },
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: `${name}-${hash}-aaaaa`,
        namespace: 'app',
        labels: { ...labels, 'pod-template-hash': hash },
        ownerReferences: [
          { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `${name}-${hash}`, controller: true },
        ],
      },
      spec: { nodeName: 'node-1', containers: [{ name, ports: [{ containerPort: 8080 }] }] },
      status: {
        phase: 'Running',
        podIP: ip,
        podIPs: [{ ip }],
        hostIP: '192.168.0.10',
        startTime: iso(T0 - 3_600_000),
      },
    },
  ];
}

/** The cluster, its public LoadBalancer Service being deleted since `terminatingSince` when given. */
function cluster(terminatingSince?: number) {
  const service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: 'public',
      namespace: 'app',
      uid: 'uid-public',
      creationTimestamp: iso(T0 - 86_400_000),
      ...(terminatingSince === undefined
        ? {}
        : {
            deletionTimestamp: iso(terminatingSince),
            finalizers: ['service.kubernetes.io/load-balancer-cleanup'],
          }),
    },
    spec: {
      type: 'LoadBalancer',
      clusterIP: '10.96.0.30',
      clusterIPs: ['10.96.0.30'],
      selector: { app: 'api' },
      externalIPs: ['198.51.100.7'],
      ports: [{ port: 443, targetPort: 8080, nodePort: 31443, protocol: 'TCP' }],
    },
    status: { loadBalancer: { ingress: [{ ip: '203.0.113.10' }] } },
  };
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'app' } },
    {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: 'node-1' },
      status: { addresses: [{ type: 'InternalIP', address: '192.168.0.10' }] },
    },
    ...app('web', { app: 'web' }, '10.244.1.10'),
    ...app('api', { app: 'api' }, '10.244.1.20'),
    service,
  ];
}

/** Flows to each of the Service's addresses, all after it began terminating (at T0). */
const flows = () =>
  [
    { dst: { ip: '10.96.0.30' }, port: 443 },
    { dst: { ip: '203.0.113.10' }, port: 443 },
    { dst: { ip: '198.51.100.7' }, port: 443 },
    { dst: { ip: '192.168.0.10' }, port: 31443 },
  ].map((f, i) => ({
    time: iso(T0 + (i + 1) * 60_000),
    src: { namespace: 'app', pod: 'web-7d9f-aaaaa', ip: '10.244.1.10' },
    ...f,
    protocol: 'TCP',
    verdict: 'FORWARDED',
  }));

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'microseg-terminating-'));
  const list = (items: unknown[]) => JSON.stringify({ apiVersion: 'v1', kind: 'List', items });
  await writeFile(join(dir, 'live.json'), list(cluster()));
  await writeFile(join(dir, 'terminating.json'), list(cluster(T0)));
  await writeFile(
    join(dir, 'flows.jsonl'),
    flows()
      .map((f) => JSON.stringify(f) + '\n')
      .join(''),
  );
});

async function recommend(clusterFile: string, out: string) {
  const io = captureIO();
  const code = await runCli(
    ['recommend', '--flows', join(dir, 'flows.jsonl'), '--cluster', join(dir, clusterFile), '--out', out],
    io,
  );
  const files = (await readdir(out)).sort();
  const contents = new Map<string, string>();
  for (const f of files) {
    const text = await readFile(join(out, f), 'utf8');
    contents.set(f, text.replaceAll(clusterFile, '<cluster>').replaceAll(out, '<out>'));
  }
  return {
    code,
    stdout: io.stdout.replaceAll(clusterFile, '<cluster>').replaceAll(out, '<out>'),
    stderr: io.stderr,
    contents,
  };
}

describe('a LoadBalancer Service held by its finalizer after its deletion began', () => {
  it('recommend: the output is the same as without its deletionTimestamp', async () => {
    const live = await recommend('live.json', join(dir, 'out-live'));
    const terminating = await recommend('terminating.json', join(dir, 'out-terminating'));
    expect(live.code).toBe(0);
    // The flows reach api through the Service on every address it is exposed on.
    const policy = live.contents.get('app.yaml') ?? '';
    expect(policy).toContain('port: 8080');
    expect(live.stdout).not.toContain('10.96.0.30');
    expect(terminating).toEqual(live);
  });

  it('identity: its roles, nodePorts and addresses are kept, and flows after its deletionTimestamp reach its backends', () => {
    const identity = buildIdentity(snapshotFromObjects(cluster(T0), 'terminating.json'));
    expect(identity.workloads.get('app/Deployment/api')?.roles).toContain('load-balanced');
    for (const [ip, port] of [
      ['10.96.0.30', 443],
      ['203.0.113.10', 443],
      ['198.51.100.7', 443],
      ['192.168.0.10', 31443],
    ] as const) {
      const n = identity.resolveNumber({ ip }, T0 + 3_600_000, port, false, 'TCP');
      const backends = identity.serviceBackends(n, port, 'TCP');
      expect(
        backends?.map((b) => [identity.peerAt(b.peer).id, b.port]),
        `${ip}:${port}`,
      ).toEqual([['app/Deployment/api', 8080]]);
    }
  });
});
