/**
 * Connections to a Service's ClusterIP: policies apply after the address is translated, so the rules
 * go to every backend, on the port each takes the connection on.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Flow, FlowEndpoint } from '../../src/flows/types.ts';
import { Aggregator } from '../../src/graph/aggregate.ts';
import { countFlows } from '../../src/graph/counts.ts';
import { buildIdentity } from '../../src/identity/index.ts';
import type { NetworkPolicy } from '../../src/model/k8s.ts';
import { compactObject } from '../../src/model/compact.ts';
import { loadSnapshotText, snapshotFromObjects } from '../../src/model/snapshot.ts';
import { proveProposal } from '../../src/policy/prove.ts';
import { buildReport } from '../../src/policy/report.ts';
import { analyse, runPipeline } from '../../src/pipeline.ts';
import { peerFromId } from '../../src/controller/edges.ts';

const T0 = Date.parse('2026-11-01T10:00:00Z');

type Port = { name?: string; containerPort: number };

function deployment(name: string, labels: Record<string, string>, ports: Port[] = []) {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: 'app', uid: `uid-${name}` },
    spec: {
      selector: { matchLabels: labels },
      template: { metadata: { labels }, spec: { containers: [{ name, ports }] } },
    },
  };
}

function replicaSet(deploy: string, hash: string, labels: Record<string, string>) {
  return {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: {
      name: `${deploy}-${hash}`,
      namespace: 'app',
      uid: `uid-${deploy}-${hash}`,
      ownerReferences: [
        { apiVersion: 'apps/v1', kind: 'Deployment', name: deploy, uid: `uid-${deploy}`, controller: true },
      ],
    },
    spec: { selector: { matchLabels: { ...labels, 'pod-template-hash': hash } } },
  };
}

function pod(name: string, rs: string, labels: Record<string, string>, ip: string, ports: Port[] = []) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: 'app',
      labels,
      ownerReferences: [
        { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: rs, uid: `uid-${rs}`, controller: true },
      ],
    },
    spec: { nodeName: 'node-1', containers: [{ name: 'c', ports }] },
    status: { phase: 'Running', podIP: ip, hostIP: '192.168.0.10', startTime: '2026-11-01T00:00:00Z' },
  };
}

function service(name: string, clusterIP: string, spec: Record<string, unknown>) {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'app' },
    spec: { clusterIP, ...spec },
  };
}

const http = [{ name: 'http', containerPort: 8080 }];

/** Another ReplicaSet of api, with one pod that names `port` `name`. */
function apiRevision(hash: string, ip: string, name: string, port: number) {
  return [
    replicaSet('api', hash, { app: 'api' }),
    pod(`api-${hash}-1`, `api-${hash}`, { app: 'api', 'pod-template-hash': hash }, ip, [
      { name, containerPort: port },
    ]),
  ];
}

/** web calls `api` (port 80 → 8080), `backend` (two Deployments behind one selector), `named` and `extdb`. */
function rawItems(extra: unknown[] = []): object[] {
  return [
    {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'app', labels: { 'kubernetes.io/metadata.name': 'app' } },
    },
    deployment('web', { app: 'web' }),
    replicaSet('web', 'aa', { app: 'web' }),
    pod('web-aa-1', 'web-aa', { app: 'web', 'pod-template-hash': 'aa' }, '10.244.1.1'),
    deployment('api', { app: 'api' }, http),
    replicaSet('api', 'bb', { app: 'api' }),
    pod('api-bb-1', 'api-bb', { app: 'api', 'pod-template-hash': 'bb' }, '10.244.1.2', http),
    deployment('be1', { app: 'be1', role: 'backend' }),
    replicaSet('be1', 'cc', { app: 'be1', role: 'backend' }),
    pod('be1-cc-1', 'be1-cc', { app: 'be1', role: 'backend', 'pod-template-hash': 'cc' }, '10.244.1.3'),
    deployment('be2', { app: 'be2', role: 'backend' }),
    replicaSet('be2', 'dd', { app: 'be2', role: 'backend' }),
    pod('be2-dd-1', 'be2-dd', { app: 'be2', role: 'backend', 'pod-template-hash': 'dd' }, '10.244.1.4'),
    service('api', '10.96.0.10', { selector: { app: 'api' }, ports: [{ port: 80, targetPort: 8080 }] }),
    service('backend', '10.96.0.11', { selector: { role: 'backend' }, ports: [{ port: 9000 }] }),
    service('named', '10.96.0.12', { selector: { app: 'api' }, ports: [{ port: 81, targetPort: 'http' }] }),
    service('extdb', '10.96.0.13', { ports: [{ port: 5432, targetPort: 5432 }] }),
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: 'extdb-1', namespace: 'app', labels: { 'kubernetes.io/service-name': 'extdb' } },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['10.0.5.5'] }],
      ports: [{ port: 15432, protocol: 'TCP' }],
    },
    ...(extra as object[]),
  ];
}

function cluster(extra: unknown[] = []) {
  const items = rawItems(extra);
  return loadSnapshotText(JSON.stringify({ apiVersion: 'v1', kind: 'List', items }), 'cluster.json');
}

const web: FlowEndpoint = { ip: '10.244.1.1', namespace: 'app', pod: 'web-aa-1' };
const flow = (minute: number, dst: FlowEndpoint, port: number): Flow => ({
  time: T0 + minute * 60_000,
  src: web,
  dst,
  port,
  protocol: 'TCP',
  verdict: 'FORWARDED',
  input: 'generic',
});

const policy = (ps: NetworkPolicy[], name: string) => ps.find((p) => p.metadata.name === name)!;

describe('flows to a Service ClusterIP', () => {
  it('become edges to every backend on its target port, and rules that admit them', async () => {
    const snap = cluster();
    const r = await runPipeline(snap, [
      flow(1, { ip: '10.96.0.10' }, 80),
      flow(2, { ip: '10.96.0.11' }, 9000),
      flow(3, { ip: '10.96.0.12' }, 81),
      flow(4, { ip: '10.96.0.13' }, 5432),
    ]);
    expect(r.graph.edges.map((e) => e.id).sort()).toEqual([
      'app/Deployment/web->app/Deployment/api:8080/TCP',
      'app/Deployment/web->app/Deployment/be1:9000/TCP',
      'app/Deployment/web->app/Deployment/be2:9000/TCP',
      'app/Deployment/web->private:10.0.5.5:15432/TCP',
    ]);
    // Two flows (via `api` and via `named`) reached api on 8080.
    expect(r.graph.edges.find((e) => e.target === 'app/Deployment/api')!.count).toBe(2);
    const ps = r.proposal.policies;
    expect(policy(ps, 'microseg-api').spec.ingress).toEqual([
      { from: [{ podSelector: { matchLabels: { app: 'web' } } }], ports: [{ protocol: 'TCP', port: 8080 }] },
    ]);
    for (const be of ['be1', 'be2'])
      expect(policy(ps, `microseg-${be}`).spec.ingress).toEqual([
        {
          from: [{ podSelector: { matchLabels: { app: 'web' } } }],
          ports: [{ protocol: 'TCP', port: 9000 }],
        },
      ]);
    const egress = policy(ps, 'microseg-web').spec.egress!;
    expect(egress).toContainEqual({
      to: [{ ipBlock: { cidr: '10.0.5.5/32' } }],
      ports: [{ protocol: 'TCP', port: 15432 }],
    });
    expect(egress.some((r) => r.to?.some((p) => p.ipBlock?.cidr.startsWith('10.96.')))).toBe(false);
    // The project's semantics engine agrees: every observed connection is allowed.
    const proof = proveProposal({
      snapshot: snap,
      workloads: r.identity.workloads,
      graph: r.graph,
      proposal: r.proposal,
      apiserverIPs: r.identity.apiserverEndpoints.ips,
      podWorkload: r.identity.podWorkload,
    });
    expect(proof.checked).toBe(4);
    expect(proof.blocked).toEqual([]);
  });

  it('resolves a named targetPort pod by pod: every number the pods give the name', async () => {
    // A second ReplicaSet of api whose pod calls 9090 "http", and a third whose pod does not name the
    // port at all (Kubernetes sends it nothing on this Service port).
    const snap = cluster([
      ...apiRevision('ee', '10.244.1.5', 'http', 9090),
      ...apiRevision('ff', '10.244.1.6', 'web', 7070),
    ]);
    const r = await runPipeline(snap, [flow(1, { ip: '10.96.0.12' }, 81)], { policy: { namedPorts: true } });
    expect(r.graph.edges.map((e) => e.id)).toEqual([
      'app/Deployment/web->app/Deployment/api:8080/TCP',
      'app/Deployment/web->app/Deployment/api:9090/TCP',
    ]);
    // The flow counts once in the flows that reached the graph's edges' ends, not once per edge.
    expect(r.unattributedFlows).toBe(0);
    // No name is common to every pod: the rule gives the numbers.
    expect(policy(r.proposal.policies, 'microseg-api').spec.ingress![0]!.ports).toEqual([
      { protocol: 'TCP', port: 8080 },
      { protocol: 'TCP', port: 9090 },
    ]);
  });

  it('counts a flow with an end it cannot attribute once, whatever the number of backends', async () => {
    // A source with no address and no pod: unknown.
    const r = await runPipeline(cluster(), [{ ...flow(1, { ip: '10.96.0.11' }, 9000), src: {}, count: 10 }]);
    expect(r.graph.edges.map((e) => [e.id, e.count])).toEqual([
      ['unknown->app/Deployment/be1:9000/TCP', 10],
      ['unknown->app/Deployment/be2:9000/TCP', 10],
    ]);
    expect(r.unattributedFlows).toBe(10);
    // Counted from the graph when the analysis does not say (its edges were not aggregated here).
    const { unattributedFlows: _, ...fromEdges } = r;
    expect((buildReport(fromEdges, undefined, undefined) as { warnings: string[] }).warnings).toContain(
      '10 flow(s) have an end that could not be attributed to a workload or peer',
    );
  });
});

/** A Job `name` (no CronJob) with one pod in `phase` that carries `labels` (a chart's migration hook). */
function jobWithPod(name: string, labels: Record<string, string>, ip: string, phase: string) {
  const job = { 'job-name': name, 'batch.kubernetes.io/controller-uid': `uid-${name}` };
  return [
    {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name, namespace: 'app', uid: `uid-${name}` },
      spec: {
        selector: { matchLabels: { 'batch.kubernetes.io/controller-uid': `uid-${name}` } },
        template: { metadata: { labels: { ...labels, ...job } } },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: `${name}-x7k2p`,
        namespace: 'app',
        labels: { ...labels, ...job },
        ownerReferences: [
          { apiVersion: 'batch/v1', kind: 'Job', name, uid: `uid-${name}`, controller: true },
        ],
      },
      spec: { nodeName: 'node-1', containers: [{ name: 'c' }] },
      status: { phase, podIP: ip, hostIP: '192.168.0.10', startTime: '2026-11-01T09:00:00Z' },
    },
  ];
}

describe("flows to a Service's external IPs and load-balancer IPs", () => {
  /** api behind a LoadBalancer: its load balancer's address, an external IP and one whose ipMode is Proxy. */
  const lb = (ingress: object[]) =>
    cluster([
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'public', namespace: 'app' },
        spec: {
          type: 'LoadBalancer',
          clusterIP: '10.96.0.30',
          selector: { app: 'api' },
          externalIPs: ['198.51.100.7'],
          ports: [{ port: 443, targetPort: 8080, protocol: 'TCP' }],
        },
        status: { loadBalancer: { ingress } },
      },
    ]);

  it('become edges to the backends, as the ClusterIP does: kube-proxy translates them alike', async () => {
    const snap = lb([{ ip: '203.0.113.10' }]);
    const r = await runPipeline(snap, [
      flow(1, { ip: '203.0.113.10' }, 443),
      flow(2, { ip: '198.51.100.7', reserved: 'world' }, 443),
    ]);
    expect(r.graph.edges.map((e) => e.id)).toEqual(['app/Deployment/web->app/Deployment/api:8080/TCP']);
    expect(r.graph.edges[0]!.count).toBe(2);
    expect(policy(r.proposal.policies, 'microseg-api').spec.ingress).toEqual([
      { from: [{ podSelector: { matchLabels: { app: 'web' } } }], ports: [{ protocol: 'TCP', port: 8080 }] },
    ]);
    expect(r.identity.stats.byServiceIP).toBe(2);
  });

  it('stay the addresses themselves on a port the Service does not have, or behind a Proxy-mode load balancer', async () => {
    const snap = lb([{ ip: '203.0.113.10', ipMode: 'Proxy' }]);
    const r = await runPipeline(snap, [
      flow(1, { ip: '203.0.113.10' }, 443),
      flow(2, { ip: '198.51.100.7' }, 22),
    ]);
    expect(r.graph.edges.map((e) => e.id).sort()).toEqual([
      'app/Deployment/web->world:198.51.100.7:22/TCP',
      'app/Deployment/web->world:203.0.113.10:443/TCP',
    ]);
  });
});

describe("flows to a node's address a Service lists in spec.externalIPs", () => {
  it('become edges to the backends on its ports: kube-proxy translates a node address listed so too', async () => {
    // Bare metal: the Service is exposed on node-1's own address (192.168.0.10, the pods' hostIP).
    const snap = cluster([
      service('edge', '10.96.0.50', {
        selector: { app: 'api' },
        externalIPs: ['192.168.0.10'],
        ports: [{ port: 443, targetPort: 8080, protocol: 'TCP' }],
      }),
    ]);
    const r = await runPipeline(snap, [
      flow(1, { ip: '192.168.0.10' }, 443),
      flow(2, { ip: '192.168.0.10' }, 10250),
    ]);
    expect(r.graph.edges.map((e) => e.id).sort()).toEqual([
      'app/Deployment/web->app/Deployment/api:8080/TCP',
      'app/Deployment/web->node:192.168.0.10:10250/TCP',
    ]);
  });
});

describe('flows to a load-balancer IP that several Services share, each on its own ports', () => {
  it('become edges to the backends of the Service whose port they reach', async () => {
    // MetalLB's shared IP (allow-shared-ip): api answers TCP/443, backend TCP/9000 on one address.
    const shared = (name: string, clusterIP: string, selector: object, ports: object[]) => ({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: 'app' },
      spec: { type: 'LoadBalancer', clusterIP, selector, ports },
      status: { loadBalancer: { ingress: [{ ip: '203.0.113.20' }] } },
    });
    const snap = cluster([
      shared('public-api', '10.96.0.40', { app: 'api' }, [{ port: 443, targetPort: 8080, protocol: 'TCP' }]),
      shared('public-be', '10.96.0.41', { role: 'backend' }, [{ port: 9000, protocol: 'TCP' }]),
    ]);
    const r = await runPipeline(snap, [
      flow(1, { ip: '203.0.113.20' }, 443),
      flow(2, { ip: '203.0.113.20' }, 9000),
    ]);
    expect(r.graph.edges.map((e) => e.id).sort()).toEqual([
      'app/Deployment/web->app/Deployment/api:8080/TCP',
      'app/Deployment/web->app/Deployment/be1:9000/TCP',
      'app/Deployment/web->app/Deployment/be2:9000/TCP',
    ]);
    expect(r.identity.stats.byServiceIP).toBe(2);
  });
});

describe("flows to a node's address on a Service's nodePort", () => {
  it('become edges to the backends on their targetPort, from inside and outside the cluster', async () => {
    const snap = cluster([
      service('public', '10.96.0.31', {
        type: 'NodePort',
        selector: { app: 'api' },
        ports: [{ name: 'https', port: 443, targetPort: 8080, nodePort: 31443, protocol: 'TCP' }],
      }),
    ]);
    const client: FlowEndpoint = { ip: '203.0.113.5', reserved: 'world' };
    const r = await runPipeline(snap, [
      flow(1, { ip: '192.168.0.10' }, 31443),
      { ...flow(2, { ip: '192.168.0.10', reserved: 'host' }, 31443), src: client },
      flow(3, { ip: '192.168.0.10' }, 31444),
    ]);
    expect(r.graph.edges.map((e) => e.id).sort()).toEqual([
      'app/Deployment/web->app/Deployment/api:8080/TCP',
      'app/Deployment/web->node:192.168.0.10:31444/TCP',
      'world:203.0.113.5->app/Deployment/api:8080/TCP',
    ]);
    expect(r.identity.stats.byServiceIP).toBe(2);
    expect(r.identity.stats.reserved.service).toBeUndefined();
  });
});

describe("flows to a node's address on the nodePort of a Service with no backend", () => {
  const emptySlice = {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: 'manual-1', namespace: 'app', labels: { 'kubernetes.io/service-name': 'manual' } },
    addressType: 'IPv4',
    endpoints: [],
    ports: [{ port: 8080, protocol: 'TCP' }],
  };
  const nodePort = (name: string, type: string, nodePort: number, spec: Record<string, unknown> = {}) =>
    service(name, `10.96.0.${nodePort - 30000}`, {
      type,
      ports: [{ port: 80, targetPort: 8080, nodePort, protocol: 'TCP' }],
      ...spec,
    });

  it('count as the node’s, and a warning of report.json names each such Service port once', async () => {
    const snap = cluster([
      nodePort('gone', 'NodePort', 30080, { selector: { app: 'gone' } }),
      nodePort('manual', 'NodePort', 30081),
      emptySlice,
      nodePort('lb', 'LoadBalancer', 30082),
    ]);
    const client: FlowEndpoint = { ip: '203.0.113.5', reserved: 'world' };
    const r = await runPipeline(snap, [
      flow(1, { ip: '192.168.0.10' }, 30080),
      { ...flow(2, { ip: '192.168.0.10', reserved: 'host' }, 30080), src: client },
      flow(3, { ip: '192.168.0.10' }, 30081),
      flow(4, { ip: '192.168.0.10' }, 30082),
      flow(5, { ip: '192.168.0.10' }, 30082),
    ]);
    expect(r.graph.edges.map((e) => e.id).sort()).toEqual([
      'app/Deployment/web->node:192.168.0.10:30080/TCP',
      'app/Deployment/web->node:192.168.0.10:30081/TCP',
      'app/Deployment/web->node:192.168.0.10:30082/TCP',
      'world:203.0.113.5->node:192.168.0.10:30080/TCP',
    ]);
    const then =
      'they count as connections to the node (an egress rule for them admits its address on the port); a snapshot taken while the Service had backends attributes them to those';
    const warnings = (buildReport(r, undefined, undefined) as { warnings: string[] }).warnings;
    expect(warnings.filter((w) => w.includes('nodePort'))).toEqual([
      `connections to a node address on 30080/TCP, the nodePort of NodePort Service app/gone, which has no backend in the snapshot (its selector selects no pod): ${then}`,
      `connections to a node address on 30081/TCP, the nodePort of NodePort Service app/manual, which has no backend in the snapshot (it has no selector, and no EndpointSlice or Endpoints object of it names an address): ${then}`,
      `connections to a node address on 30082/TCP, the nodePort of LoadBalancer Service app/lb, which has no backend in the snapshot (it has no selector, and no EndpointSlice or Endpoints object of it names an address): ${then}`,
    ]);
  });

  it('are not named for a port no such Service has', async () => {
    const snap = cluster([nodePort('gone', 'NodePort', 30080, { selector: { app: 'gone' } })]);
    const r = await runPipeline(snap, [flow(1, { ip: '192.168.0.10' }, 30079)]);
    expect(r.graph.edges.map((e) => e.id)).toEqual(['app/Deployment/web->node:192.168.0.10:30079/TCP']);
    expect(r.identity.warnings.filter((w) => w.includes('nodePort'))).toEqual([]);
  });
});

describe('the readiness of a Service’s endpoints', () => {
  it('is not read: every endpoint of its slices is credited, ready, not ready or terminating', async () => {
    const slice = {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: 'pair-1', namespace: 'app', labels: { 'kubernetes.io/service-name': 'pair' } },
      addressType: 'IPv4',
      endpoints: [
        { addresses: ['10.244.1.3'], conditions: { ready: true, serving: true, terminating: false } },
        { addresses: ['10.244.1.4'], conditions: { ready: false, serving: false, terminating: false } },
        { addresses: ['10.244.1.2'], conditions: { ready: false, serving: true, terminating: true } },
      ],
      ports: [{ port: 9000, protocol: 'TCP' }],
    };
    const snap = cluster([service('pair', '10.96.0.90', { ports: [{ port: 9000 }] }), slice]);
    const r = await runPipeline(snap, [flow(1, { ip: '10.96.0.90' }, 9000)]);
    expect(r.graph.edges.map((e) => e.id).sort()).toEqual([
      'app/Deployment/web->app/Deployment/api:9000/TCP',
      'app/Deployment/web->app/Deployment/be1:9000/TCP',
      'app/Deployment/web->app/Deployment/be2:9000/TCP',
    ]);
  });
});

describe('the readiness of the addresses of a Service’s Endpoints object', () => {
  // A Service without a selector, whose backends come from its core/v1 Endpoints object (no slice of it
  // names an address): a not-ready backend is under `notReadyAddresses`, as one is under a slice's
  // endpoint with `ready: false` (the mirroring controller writes it so).
  const endpoints = (name: string, subset: Record<string, unknown>) => ({
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: { name, namespace: 'app' },
    subsets: [{ ...subset, ports: [{ port: 9000, protocol: 'TCP' }] }],
  });

  it('is not read: its not-ready addresses are credited as its ready ones are', async () => {
    const snap = cluster([
      service('pair', '10.96.0.91', { ports: [{ port: 9000 }] }),
      endpoints('pair', { addresses: [{ ip: '10.244.1.3' }], notReadyAddresses: [{ ip: '10.244.1.4' }] }),
    ]);
    const r = await runPipeline(snap, [flow(1, { ip: '10.96.0.91' }, 9000)]);
    expect(r.graph.edges.map((e) => e.id).sort()).toEqual([
      'app/Deployment/web->app/Deployment/be1:9000/TCP',
      'app/Deployment/web->app/Deployment/be2:9000/TCP',
    ]);
  });

  it('a Service whose every address is not ready has a backend all the same', async () => {
    const snap = cluster([
      service('pair', '10.96.0.91', { ports: [{ port: 9000 }] }),
      endpoints('pair', { notReadyAddresses: [{ ip: '10.244.1.4' }] }),
    ]);
    const r = await runPipeline(snap, [flow(1, { ip: '10.96.0.91' }, 9000)]);
    expect(r.graph.edges.map((e) => e.id)).toEqual(['app/Deployment/web->app/Deployment/be2:9000/TCP']);
    expect(r.identity.warnings.filter((w) => w.includes('no backend'))).toEqual([]);
  });
});

describe('flows to the ClusterIP of a Service with no backend', () => {
  const emptySlice = {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: 'manual-1', namespace: 'app', labels: { 'kubernetes.io/service-name': 'manual' } },
    addressType: 'IPv4',
    endpoints: [],
    ports: [{ port: 8080, protocol: 'TCP' }],
  };
  const snap = () =>
    cluster([
      service('gone', '10.96.0.80', { selector: { app: 'gone' }, ports: [{ port: 80, targetPort: 8080 }] }),
      service('manual', '10.96.0.81', { ports: [{ port: 80, targetPort: 8080 }] }),
      emptySlice,
    ]);
  const flows = () => [
    flow(1, { ip: '10.96.0.80' }, 80),
    flow(2, { ip: '10.96.0.80' }, 80),
    flow(3, { ip: '10.96.0.81' }, 80),
  ];

  it('are named in report.json once per Service, and no ipBlock for the ClusterIP is written', async () => {
    const r = await runPipeline(snap(), flows());
    expect(r.graph.edges.map((e) => e.id).sort()).toEqual([
      'app/Deployment/web->private:10.96.0.80:80/TCP',
      'app/Deployment/web->private:10.96.0.81:80/TCP',
    ]);
    expect(r.graph.nodes.filter((n) => n.id.startsWith('private:')).map((n) => [n.id, n.service])).toEqual([
      ['private:10.96.0.80', 'app/gone'],
      ['private:10.96.0.81', 'app/manual'],
    ]);
    const then =
      'no rule is written for them, as a policy sees such a connection only once it is translated to a backend pod (an ipBlock for the ClusterIP admits nothing), so the proposal blocks them when the Service has backends again; a snapshot taken while the Service had backends attributes them to those';
    const warnings = (buildReport(r, undefined, undefined) as { warnings: string[] }).warnings;
    expect(warnings.filter((w) => w.includes('ClusterIP'))).toEqual([
      `connections to 10.96.0.80, the ClusterIP of Service app/gone, which has no backend in the snapshot (its selector selects no pod): ${then}`,
      `connections to 10.96.0.81, the ClusterIP of Service app/manual, which has no backend in the snapshot (it has no selector, and no EndpointSlice or Endpoints object of it names an address): ${then}`,
    ]);
    const egress = r.proposal.policies.flatMap((p) => p.spec.egress ?? []);
    expect(egress.some((rule) => rule.to?.some((p) => p.ipBlock?.cidr.startsWith('10.96.')))).toBe(false);
    expect(r.proposal.notExpressible).toContainEqual({
      edge: 'app/Deployment/web->private:10.96.0.80:80/TCP',
      reason:
        'egress from app/Deployment/web: 10.96.0.80 is the ClusterIP of Service app/gone, which has no backend in the snapshot: a policy sees a connection to it only once it is translated to a backend pod, so no rule can admit it',
    });
  });

  it('are not checked by the proof, which names them as blocked by the proposal', async () => {
    const s = snap();
    const r = await runPipeline(s, flows());
    const proof = proveProposal({
      snapshot: s,
      workloads: r.identity.workloads,
      graph: r.graph,
      proposal: r.proposal,
      apiserverIPs: r.identity.apiserverEndpoints.ips,
      podWorkload: r.identity.podWorkload,
    });
    expect([proof.checked, proof.blocked, proof.unchecked]).toEqual([0, [], []]);
    expect(proof.willBeBlocked).toEqual([
      'app/Deployment/web->private:10.96.0.80:80/TCP: 10.96.0.80 is the ClusterIP of Service app/gone, which has no backend in the snapshot: no rule can admit it, and the proposal isolates app/Deployment/web, so it is blocked once the Service has backends',
      'app/Deployment/web->private:10.96.0.81:80/TCP: 10.96.0.81 is the ClusterIP of Service app/manual, which has no backend in the snapshot: no rule can admit it, and the proposal isolates app/Deployment/web, so it is blocked once the Service has backends',
    ]);
  });

  /**
   * An edge learned to 10.96.0.80 at T0, rebuilt from its id as the controller rebuilds learned edges,
   * analysed: the Service its node names, and whether an ipBlock for a ClusterIP is written.
   */
  const rebuiltFromId = (identity: ReturnType<typeof buildIdentity>) => {
    const edge = {
      src: 'app/Deployment/web',
      dst: 'private:10.96.0.80',
      protocol: 'TCP' as const,
      port: 80,
      count: 1,
      firstSeen: T0,
      lastSeen: T0,
      verdicts: { FORWARDED: 1 },
    };
    const peers = new Map([edge.src, edge.dst].map((id) => [id, peerFromId(id)]));
    const r = analyse({ identity, edges: [edge], peers, names: new Map() });
    const egress = r.proposal.policies.flatMap((p) => p.spec.egress ?? []);
    return {
      service: r.graph.nodes.find((n) => n.id === edge.dst)?.service,
      ipBlock: egress.some((rule) => rule.to?.some((p) => p.ipBlock?.cidr.startsWith('10.96.'))),
    };
  };

  it('are the Service’s when the peer is rebuilt from its id, as the controller rebuilds learned edges', () => {
    expect(rebuiltFromId(buildIdentity(snap()))).toEqual({ service: 'app/gone', ipBlock: false });
  });

  it('stay the Service’s once it is deleted, for the flows before its deletion: its deletion adds no rule', async () => {
    // gone never had a backend; the controller keeps it once deleted, with the time of its deletion.
    const deleted = () => {
      const s = snap();
      const gone = s.services.find((x) => x.metadata.name === 'gone')!;
      gone.metadata.creationTimestamp = new Date(T0 - 3_600_000).toISOString();
      s.services = s.services.filter((x) => x !== gone);
      s.deletedServices = [{ service: gone, deletedAt: T0 + 3_600_000, endpointSlices: [] }];
      return s;
    };
    const r = await runPipeline(deleted(), flows());
    expect(r.graph.nodes.find((n) => n.id === 'private:10.96.0.80')?.service).toBe('app/gone (deleted)');
    const egress = r.proposal.policies.flatMap((p) => p.spec.egress ?? []);
    expect(egress.some((rule) => rule.to?.some((p) => p.ipBlock?.cidr.startsWith('10.96.')))).toBe(false);
    expect(r.identity.warnings.filter((w) => w.includes('10.96.0.80'))).toEqual([
      'connections to 10.96.0.80, the ClusterIP of Service app/gone (deleted), which has no backend in the snapshot (it was deleted, and its selector selected no pod): no rule is written for them, as a policy sees such a connection only once it is translated to a backend pod (an ipBlock for the ClusterIP admits nothing), so the proposal blocks them when the Service has backends again; a snapshot taken while the Service had backends attributes them to those',
    ]);
    // As the controller rebuilds an edge learned to the address before the deletion from its id.
    const identity = buildIdentity(deleted());
    expect(identity.unbackedClusterIPs.get('10.96.0.80')).toBe('app/gone (deleted)');
    expect(identity.resolve({ ip: '10.96.0.80' }, T0, 80, false, 'TCP').service).toBe('app/gone (deleted)');
    expect(rebuiltFromId(identity)).toEqual({ service: 'app/gone (deleted)', ipBlock: false });
  });

  it('leave a Service with a backend as it was', async () => {
    const r = await runPipeline(snap(), [flow(1, { ip: '10.96.0.10' }, 80)]);
    expect(r.graph.nodes.some((n) => n.service !== undefined)).toBe(false);
    expect(r.identity.warnings.filter((w) => w.includes('ClusterIP'))).toEqual([]);
  });
});

describe('Services deleted since, in whichever order the snapshot lists them', () => {
  // Two Services held 10.96.0.90 one after the other within one second, so their creation times (to
  // the second) are the same: old (→ api) from T0 to T0 + 300 ms, then renewed (→ be1 and be2) until
  // T0 + 1h; both are deleted since.
  const held = (name: string, uid: string, selector: Record<string, string>, deletedAt: number) => {
    const spec = { selector, ports: [{ port: 80, targetPort: 8080 }] };
    const svc = cluster([service(name, '10.96.0.90', spec)]).services.find((x) => x.metadata.name === name)!;
    svc.metadata.uid = uid;
    svc.metadata.creationTimestamp = '2026-11-01T10:00:00Z';
    return { service: svc, deletedAt, endpointSlices: [] };
  };
  const first = () => held('old', 'uid-old', { app: 'api' }, T0 + 300);
  const second = () => held('renewed', 'uid-renewed', { role: 'backend' }, T0 + 3_600_000);
  const withDeleted = (deleted: ReturnType<typeof held>[]) => {
    const s = cluster();
    s.deletedServices = deleted;
    return s;
  };
  // web connects to the address while the first held it, then while the second did.
  const flows = () => [
    { ...flow(0, { ip: '10.96.0.90' }, 80), time: T0 + 100 },
    flow(10, { ip: '10.96.0.90' }, 80),
  ];
  const fromWeb = [
    { from: [{ podSelector: { matchLabels: { app: 'web' } } }], ports: [{ protocol: 'TCP', port: 8080 }] },
  ];

  it('give byte-identical proposals, each flow going to the Service that held the address at its time', async () => {
    const inOrder = await runPipeline(withDeleted([first(), second()]), flows());
    const reversed = await runPipeline(withDeleted([second(), first()]), flows());
    expect(JSON.stringify(reversed.proposal)).toBe(JSON.stringify(inOrder.proposal));
    expect(JSON.stringify(reversed.graph)).toBe(JSON.stringify(inOrder.graph));
    expect(inOrder.graph.edges.map((e) => e.id).sort()).toEqual([
      'app/Deployment/web->app/Deployment/api:8080/TCP',
      'app/Deployment/web->app/Deployment/be1:8080/TCP',
      'app/Deployment/web->app/Deployment/be2:8080/TCP',
    ]);
    for (const backend of ['api', 'be1', 'be2'])
      expect(policy(inOrder.proposal.policies, `microseg-${backend}`).spec.ingress).toEqual(fromWeb);
  });

  it('are told apart when they have the same name: each flow goes to the backends of the one holding the address then', async () => {
    // old was deleted and created again (a new uid) with its address, selecting other pods.
    const again = () => held('old', 'uid-old-again', { role: 'backend' }, T0 + 3_600_000);
    const ids = (r: Awaited<ReturnType<typeof runPipeline>>) => r.graph.edges.map((e) => e.id).sort();
    for (const deleted of [
      [first(), again()],
      [again(), first()],
    ]) {
      const r = await runPipeline(withDeleted(deleted), flows());
      expect(ids(r)).toEqual([
        'app/Deployment/web->app/Deployment/api:8080/TCP',
        'app/Deployment/web->app/Deployment/be1:8080/TCP',
        'app/Deployment/web->app/Deployment/be2:8080/TCP',
      ]);
      for (const backend of ['api', 'be1', 'be2'])
        expect(policy(r.proposal.policies, `microseg-${backend}`).spec.ingress).toEqual(fromWeb);
    }
    // Each is a peer of its own, the one of the earlier deletion named by its time.
    const identity = buildIdentity(withDeleted([first(), again()]));
    const at = (t: number) => identity.resolve({ ip: '10.96.0.90' }, t, 80, false, 'TCP').id;
    expect([at(T0 + 100), at(T0 + 600_000)]).toEqual([
      'service:app/old (deleted 2026-11-01T10:00:00.300Z)',
      'service:app/old (deleted 2026-11-01T11:00:00.000Z)',
    ]);
  });
});

describe('the backends of a Service whose selector also matches pods that have ended', () => {
  it('leave out the workloads whose selected pods all ended: Kubernetes sends them nothing', async () => {
    const snap = cluster([
      ...jobWithPod('migrate', { app: 'api' }, '10.244.1.7', 'Succeeded'),
      ...jobWithPod('seed', { app: 'api' }, '10.244.1.8', 'Failed'),
    ]);
    const r = await runPipeline(snap, [flow(1, { ip: '10.96.0.10' }, 80)]);
    expect(r.graph.edges.map((e) => e.id)).toEqual(['app/Deployment/web->app/Deployment/api:8080/TCP']);
    expect(r.proposal.policies.map((p) => p.metadata.name).sort()).toEqual([
      'microseg-api',
      'microseg-default-deny',
      'microseg-web',
    ]);
  });

  it('are those workloads when every selected pod has ended: the traffic reached them while they ran', async () => {
    const snap = cluster([
      ...jobWithPod('migrate', { app: 'migrate' }, '10.244.1.7', 'Succeeded'),
      service('migrate', '10.96.0.20', { selector: { app: 'migrate' }, ports: [{ port: 5000 }] }),
    ]);
    const r = await runPipeline(snap, [flow(1, { ip: '10.96.0.20' }, 5000)]);
    expect(r.graph.edges.map((e) => e.id)).toEqual(['app/Deployment/web->app/Job/migrate:5000/TCP']);
  });

  it('are not a finished Job’s when the Service’s own workload is scaled to zero: its leftover pods took no traffic since', async () => {
    // api scaled to zero (its Deployment left, no pod), and the chart's migration Job, finished, whose
    // pod still carries api's labels: every pod api's selector selects has ended, but the Job is not api.
    const snap = cluster(jobWithPod('migrate', { app: 'api' }, '10.244.1.7', 'Succeeded'));
    snap.pods = snap.pods.filter((p) => p.metadata.labels?.app !== 'api' || p.metadata.labels['job-name']);
    const r = await runPipeline(snap, [flow(1, { ip: '10.96.0.10' }, 80)]);
    // No rule to the Job: the address is api's, with no backend (as it is without the Job's pod).
    expect(r.graph.edges.map((e) => e.id)).toEqual(['app/Deployment/web->private:10.96.0.10:80/TCP']);
    expect(r.identity.unbackedClusterIPs.get('10.96.0.10')).toBe('app/api');
    expect(r.proposal.policies.map((p) => p.metadata.name)).not.toContain('microseg-migrate');
    // A workload of another kind whose pods all ended (api's, evicted) is the backend, not the Job.
    const evicted = cluster(jobWithPod('migrate', { app: 'api' }, '10.244.1.7', 'Succeeded'));
    for (const p of evicted.pods) if (p.metadata.name === 'api-bb-1') p.status!.phase = 'Failed';
    const e = await runPipeline(evicted, [flow(1, { ip: '10.96.0.10' }, 80)]);
    expect(e.graph.edges.map((x) => x.id)).toEqual(['app/Deployment/web->app/Deployment/api:8080/TCP']);
  });
});

describe('a policy whose podSelector also selects the pods of another workload', () => {
  it('is named in a warning when no label separates them: its rules apply to those pods too', async () => {
    // A bare pod labelled exactly as api's Deployment (kubectl run): api's selector app=api selects it,
    // and no label of either tells them apart (a Deployment's pods carry pod-template-hash, which a bare
    // pod lacking it cannot be left out by).
    const debug = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'api-debug', namespace: 'app', labels: { app: 'api' } },
      spec: { nodeName: 'node-1', containers: [{ name: 'c' }] },
      status: { phase: 'Running', podIP: '10.244.1.8', hostIP: '192.168.0.10' },
    };
    const flows = [flow(1, { ip: '10.244.1.2' }, 8080), flow(2, { ip: '10.244.1.3' }, 9000)];
    const r = await runPipeline(cluster([debug]), flows);
    expect(r.proposal.warnings.filter((w) => w.includes('also selects'))).toEqual([
      'policy app/microseg-api (app/Deployment/api) also selects the pods of app/Pod/api-debug: no label separates them (both carry exactly app=api), so its rules apply to them too (see verification.excess)',
    ]);

    // A running Job labelled exactly as api (a chart's hook) is told apart by the label Kubernetes gives
    // every Job's pods.
    const withJob = await runPipeline(
      cluster(jobWithPod('migrate', { app: 'api' }, '10.244.1.7', 'Running')),
      flows,
    );
    expect(withJob.proposal.warnings.filter((w) => w.includes('also selects'))).toEqual([]);
    expect(
      withJob.proposal.policies.find((p) => p.metadata.name === 'microseg-api')!.spec.podSelector
        .matchExpressions,
    ).toEqual([{ key: 'job-name', operator: 'DoesNotExist' }]);
  });
});

describe('a connection to a Service with several backends', () => {
  const via = (service: string, port: number) => `app/Deployment/web->service:app/${service}:${port}/TCP`;
  const flowsOf = (nodes: { id: string; flowsIn: number; flowsOut: number }[]) =>
    Object.fromEntries(nodes.map((n) => [n.id, [n.flowsIn, n.flowsOut]]));

  it('is on the edge to each backend, marked shared there, and counts once in the totals and for its client', async () => {
    const r = await runPipeline(cluster(), [
      { ...flow(1, { ip: '10.96.0.11' }, 9000), count: 5 },
      // Straight to be1's pod: be1's alone.
      { ...flow(2, { ip: '10.244.1.3' }, 9000), count: 2 },
    ]);
    expect(r.graph.edges.map((e) => [e.id, e.count, e.shared])).toEqual([
      ['app/Deployment/web->app/Deployment/be1:9000/TCP', 7, { [via('backend', 9000)]: 5 }],
      ['app/Deployment/web->app/Deployment/be2:9000/TCP', 5, { [via('backend', 9000)]: 5 }],
    ]);
    expect(countFlows(r.graph.edges)).toBe(7);
    // Once for web; once for each backend it may have reached.
    expect(flowsOf(r.graph.nodes)).toEqual({
      'app/Deployment/be1': [7, 0],
      'app/Deployment/be2': [5, 0],
      'app/Deployment/web': [0, 7],
    });
  });

  it('counts once for a backend that takes it on two ports', async () => {
    const snap = cluster([...apiRevision('ee', '10.244.1.5', 'http', 9090)]);
    const r = await runPipeline(snap, [{ ...flow(1, { ip: '10.96.0.12' }, 81), count: 3 }]);
    expect(r.graph.edges.map((e) => [e.id, e.count, e.shared])).toEqual([
      ['app/Deployment/web->app/Deployment/api:8080/TCP', 3, { [via('named', 81)]: 3 }],
      ['app/Deployment/web->app/Deployment/api:9090/TCP', 3, { [via('named', 81)]: 3 }],
    ]);
    expect(countFlows(r.graph.edges)).toBe(3);
    expect(flowsOf(r.graph.nodes)).toEqual({ 'app/Deployment/api': [3, 0], 'app/Deployment/web': [0, 3] });
  });

  it('from a ClusterIP whose backend takes the Service on two ports is one edge, folded once', async () => {
    const snap = cluster([...apiRevision('ee', '10.244.1.5', 'http', 9090)]);
    const r = await runPipeline(snap, [{ ...flow(1, web, 81), src: { ip: '10.96.0.12' }, count: 3 }]);
    expect(r.graph.edges.map((e) => [e.id, e.count, e.shared])).toEqual([
      ['app/Deployment/api->app/Deployment/web:81/TCP', 3, undefined],
    ]);
  });

  it('counts every flow once, and once for each end it may have had, whatever the Services', async () => {
    const snap = cluster([...apiRevision('ee', '10.244.1.5', 'http', 9090)]);
    const identity = buildIdentity(snap);
    const ends: FlowEndpoint[] = [
      web,
      { ip: '10.244.1.3' },
      { ip: '10.96.0.10' },
      { ip: '10.96.0.11' },
      { ip: '10.96.0.12' },
      { ip: '10.96.0.13' },
      { ip: '198.51.100.7' },
      {},
    ];
    const arb = fc.record({
      src: fc.constantFrom(...ends),
      dst: fc.constantFrom(...ends),
      port: fc.constantFrom(80, 81, 5432, 8080, 9000),
      protocol: fc.constantFrom<Flow['protocol']>('TCP', 'UDP'),
      minute: fc.nat(59),
      count: fc.integer({ min: 1, max: 4 }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(arb, { maxLength: 40 }), async (records) => {
        const flows: Flow[] = records.map((r) => ({
          ...flow(r.minute, r.dst, r.port),
          src: r.src,
          protocol: r.protocol,
          count: r.count,
        }));
        // The ends each flow was folded into, from aggregating it alone.
        let total = 0;
        const into = new Map<string, number>();
        const outOf = new Map<string, number>();
        const add = (m: Map<string, number>, id: string, n: number) => m.set(id, (m.get(id) ?? 0) + n);
        for (const f of flows) {
          const alone = new Aggregator(identity);
          alone.add(f);
          const edges = alone.edges();
          if (edges.length === 0) continue;
          total += f.count!;
          for (const id of new Set(edges.map((e) => e.src))) add(outOf, id, f.count!);
          for (const id of new Set(edges.map((e) => e.dst))) add(into, id, f.count!);
        }
        const r = await runPipeline(snap, flows);
        expect(countFlows(r.graph.edges)).toBe(total);
        for (const n of r.graph.nodes) {
          expect([n.id, n.flowsIn, n.flowsOut]).toEqual([n.id, into.get(n.id) ?? 0, outOf.get(n.id) ?? 0]);
        }
      }),
      { numRuns: 100 },
    );
  });
});

describe('Services without a selector', () => {
  const slice = (name: string, service: string, addressType: string, addresses: string[], pod = false) => ({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace: 'app', labels: { 'kubernetes.io/service-name': service } },
    addressType,
    endpoints: addresses.map((a) => ({
      addresses: [a],
      ...(pod ? { targetRef: { kind: 'Pod', name: 'be1-cc-1', namespace: 'app' } } : {}),
    })),
    ports: [{ port: 5432, protocol: 'TCP' }],
  });

  it('reach the pods, addresses and address family their EndpointSlices name, compacted as `--cluster` reads them', async () => {
    const extra = [
      // An operator's Service whose slices name a pod (Patroni-style): its address is kept by compaction.
      service('patroni', '10.96.0.20', { ports: [{ port: 5432 }] }),
      slice('patroni-1', 'patroni', 'IPv4', ['10.244.1.3'], true),
      // Dual-stack: the IPv4 ClusterIP reaches the IPv4 slice's addresses only.
      service('dual', '10.96.0.21', { clusterIPs: ['10.96.0.21', 'fd00:96::21'], ports: [{ port: 5432 }] }),
      slice('dual-4', 'dual', 'IPv4', ['10.0.6.6']),
      slice('dual-6', 'dual', 'IPv6', ['fd00:6::6']),
      // A name is no address: FQDN slices are left out.
      service('named-db', '10.96.0.22', { ports: [{ port: 5432 }] }),
      slice('named-db-1', 'named-db', 'FQDN', ['db.example.com']),
      slice('named-db-2', 'named-db', 'IPv4', ['10.0.7.7']),
    ];
    const snap = snapshotFromObjects(
      rawItems(extra).map((o) => compactObject(o)),
      'cluster.json',
    );
    const r = await runPipeline(snap, [
      flow(1, { ip: '10.96.0.20' }, 5432),
      flow(2, { ip: '10.96.0.21' }, 5432),
      flow(3, { ip: '10.96.0.22' }, 5432),
    ]);
    expect(r.graph.edges.map((e) => e.id).sort()).toEqual([
      'app/Deployment/web->app/Deployment/be1:5432/TCP',
      'app/Deployment/web->private:10.0.6.6:5432/TCP',
      'app/Deployment/web->private:10.0.7.7:5432/TCP',
    ]);
  });
});

describe('named ports', () => {
  it('are written by name only when every pod of the workload names the port alike', async () => {
    const one = await runPipeline(cluster(), [flow(1, { ip: '10.244.1.2' }, 8080)], {
      policy: { namedPorts: true },
    });
    expect(policy(one.proposal.policies, 'microseg-api').spec.ingress![0]!.ports).toEqual([
      { protocol: 'TCP', port: 'http' },
    ]);
    const two = await runPipeline(
      cluster([...apiRevision('ee', '10.244.1.5', 'web', 8080)]),
      [flow(1, { ip: '10.244.1.2' }, 8080)],
      { policy: { namedPorts: true } },
    );
    expect(policy(two.proposal.policies, 'microseg-api').spec.ingress![0]!.ports).toEqual([
      { protocol: 'TCP', port: 8080 },
    ]);
  });
});
