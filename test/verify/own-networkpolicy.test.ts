/**
 * microseg segments itself: manifests/networkpolicy.yaml, read by the project's own semantics engine
 * over a small cluster, allows the controller exactly what it needs (the API server, DNS, Hubble Relay
 * out; its HTTP port in from the namespaces labelled for it and from its node's probes) and denies
 * everything else, in every plugin's semantics the engine knows.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { engineFromSnapshot } from '../../src/verify/engine.ts';
import { snapshotFromText } from '../../src/verify/load.ts';
import type { EngineOptions, Endpoint, L4Protocol } from '../../src/verify/types.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string) => readFileSync(`${ROOT}${path}`, 'utf8');

const ns = (name: string, labels: Record<string, string> = {}) => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name, labels: { 'kubernetes.io/metadata.name': name, ...labels } },
});
const node = (name: string, ip: string) => ({
  apiVersion: 'v1',
  kind: 'Node',
  metadata: { name, labels: { 'kubernetes.io/hostname': name } },
  status: { addresses: [{ type: 'InternalIP', address: ip }] },
});
const pod = (
  namespace: string,
  name: string,
  labels: Record<string, string>,
  ip: string,
  ports: { name?: string; containerPort: number; protocol?: string }[],
) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { namespace, name, labels },
  spec: { nodeName: 'worker', containers: [{ name: 'c', ports }] },
  status: { phase: 'Running', podIP: ip, podIPs: [{ ip }], hostIP: '172.18.0.3' },
});

const CONTROLLER_LABELS = {
  'app.kubernetes.io/name': 'microseg',
  'app.kubernetes.io/component': 'controller',
};
const CONTROLLER = { namespace: 'microseg-system', pod: 'microseg-controller-1' };
const CONTROL_PLANE = '172.18.0.2'; // the API server of kubeadm or kind, on its node, port 6443
const MANAGED_API_SERVER = '203.0.113.7'; // a managed cluster's, outside it, port 443
const WORKER = '172.18.0.3'; // the controller's node: the kubelet's probes

function cluster(extra: unknown[] = []): string {
  const objects = [
    ...extra,
    ns('microseg-system'),
    ns('kube-system'),
    ns('monitoring', { 'microseg.dev/controller-access': 'true' }),
    ns('shop'),
    node('control-plane', CONTROL_PLANE),
    node('worker', WORKER),
    pod('microseg-system', 'microseg-controller-1', CONTROLLER_LABELS, '10.244.1.10', [
      { name: 'http', containerPort: 8080 },
    ]),
    pod('microseg-system', 'debug', { run: 'debug' }, '10.244.1.11', [{ containerPort: 8080 }]),
    pod('kube-system', 'coredns-1', { 'k8s-app': 'kube-dns' }, '10.244.0.5', [
      { name: 'dns', containerPort: 53, protocol: 'UDP' },
      { name: 'dns-tcp', containerPort: 53, protocol: 'TCP' },
      { name: 'metrics', containerPort: 9153 },
    ]),
    pod('kube-system', 'hubble-relay-1', { 'k8s-app': 'hubble-relay' }, '10.244.0.6', [
      { name: 'grpc', containerPort: 4245 },
    ]),
    pod('kube-system', 'metrics-server-1', { 'k8s-app': 'metrics-server' }, '10.244.0.7', [
      { containerPort: 10250 },
      { containerPort: 53, protocol: 'UDP' },
    ]),
    pod('monitoring', 'prometheus-0', { app: 'prometheus' }, '10.244.2.5', [{ containerPort: 9090 }]),
    pod('shop', 'cart-1', { app: 'cart' }, '10.244.2.6', [{ containerPort: 8080 }]),
  ];
  const policies = parseAllDocuments(read('manifests/networkpolicy.yaml')).map((d) => d.toJS() as unknown);
  return JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [...objects, ...policies] });
}

const SEMANTICS: [string, EngineOptions][] = [
  ['upstream (ipBlocks match pods, node traffic allowed)', {}],
  ['Cilium (ipBlocks match no pod)', { ipBlockMatchesPods: false }],
];

describe.each(SEMANTICS)('manifests/networkpolicy.yaml in %s semantics', (_name, options) => {
  const engine = engineFromSnapshot(snapshotFromText(cluster(), 'cluster.json'), options);
  const allowed = (from: Endpoint, to: Endpoint, port: number | string, protocol: L4Protocol = 'TCP') =>
    engine.evaluate({ from, to, port, protocol }).allowed;

  it('is applied by kubectl apply -k manifests/', () => {
    expect((parse(read('manifests/kustomization.yaml')) as { resources: string[] }).resources).toContain(
      'networkpolicy.yaml',
    );
  });

  it('lets the controller reach the API server, DNS and Hubble Relay', () => {
    expect(allowed(CONTROLLER, { ip: CONTROL_PLANE }, 6443)).toBe(true);
    expect(allowed(CONTROLLER, { ip: MANAGED_API_SERVER }, 443)).toBe(true);
    const dns = { namespace: 'kube-system', pod: 'coredns-1' };
    expect(allowed(CONTROLLER, dns, 53, 'UDP')).toBe(true);
    expect(allowed(CONTROLLER, dns, 53, 'TCP')).toBe(true);
    expect(allowed(CONTROLLER, { namespace: 'kube-system', pod: 'hubble-relay-1' }, 4245)).toBe(true);
  });

  it('lets in, on its HTTP port only, the labelled namespaces and its node (the probes)', () => {
    const prometheus = { namespace: 'monitoring', pod: 'prometheus-0' };
    expect(allowed(prometheus, CONTROLLER, 8080)).toBe(true);
    expect(allowed(prometheus, CONTROLLER, 'http')).toBe(true);
    expect(allowed({ ip: WORKER }, CONTROLLER, 8080)).toBe(true);
    // Another port, another namespace, the controller's own namespace, another node, outside.
    expect(allowed(prometheus, CONTROLLER, 9090)).toBe(false);
    expect(allowed(prometheus, CONTROLLER, 8080, 'UDP')).toBe(false);
    expect(allowed({ namespace: 'shop', pod: 'cart-1' }, CONTROLLER, 8080)).toBe(false);
    expect(allowed({ namespace: 'kube-system', pod: 'metrics-server-1' }, CONTROLLER, 8080)).toBe(false);
    expect(allowed({ namespace: 'microseg-system', pod: 'debug' }, CONTROLLER, 8080)).toBe(false);
    expect(allowed({ ip: CONTROL_PLANE }, CONTROLLER, 8080)).toBe(false);
    expect(allowed({ ip: MANAGED_API_SERVER }, CONTROLLER, 8080)).toBe(false);
  });

  it('denies the controller every other connection out', () => {
    // DNS's other ports and DNS on other pods; the relay's other ports; other namespaces; outside.
    expect(allowed(CONTROLLER, { namespace: 'kube-system', pod: 'coredns-1' }, 9153)).toBe(false);
    expect(allowed(CONTROLLER, { namespace: 'kube-system', pod: 'metrics-server-1' }, 53, 'UDP')).toBe(false);
    expect(allowed(CONTROLLER, { namespace: 'kube-system', pod: 'hubble-relay-1' }, 80)).toBe(false);
    expect(allowed(CONTROLLER, { namespace: 'shop', pod: 'cart-1' }, 8080)).toBe(false);
    expect(allowed(CONTROLLER, { namespace: 'monitoring', pod: 'prometheus-0' }, 9090)).toBe(false);
    expect(allowed(CONTROLLER, { ip: MANAGED_API_SERVER }, 80)).toBe(false);
    expect(allowed(CONTROLLER, { ip: CONTROL_PLANE }, 10250)).toBe(false);
    expect(allowed(CONTROLLER, { ip: '198.51.100.1' }, 53, 'UDP')).toBe(false);
    // The API server's rule names no peer (see the manifest): its ports are open to any address, a
    // pod's too. What the documentation says, and the one thing allowed beyond the list above.
    expect(allowed(CONTROLLER, { namespace: 'kube-system', pod: 'metrics-server-1' }, 443)).toBe(true);
  });

  it('denies every other pod of the namespace everything, in and out', () => {
    const debug = { namespace: 'microseg-system', pod: 'debug' };
    expect(allowed(debug, { ip: CONTROL_PLANE }, 6443)).toBe(false);
    expect(allowed(debug, { namespace: 'kube-system', pod: 'coredns-1' }, 53, 'UDP')).toBe(false);
    expect(allowed(debug, CONTROLLER, 8080)).toBe(false);
    expect(allowed({ namespace: 'monitoring', pod: 'prometheus-0' }, debug, 8080)).toBe(false);
  });
});

// The Services the shipped Deployment reaches its peers through, as the cluster serves them: the
// kubernetes Service (443, translated to the API server's 6443 on kubeadm and kind), CoreDNS's, and
// Cilium's Hubble Relay (80, 443 with TLS, translated to the relay's grpc port 4245).
const service = (
  namespace: string,
  name: string,
  selector: Record<string, string> | undefined,
  ports: { port: number; targetPort: number | string; protocol?: L4Protocol }[],
) => ({ apiVersion: 'v1', kind: 'Service', metadata: { namespace, name }, spec: { selector, ports } });
const SERVICES = [
  service('default', 'kubernetes', undefined, [{ port: 443, targetPort: 6443 }]),
  service('kube-system', 'kube-dns', { 'k8s-app': 'kube-dns' }, [
    { port: 53, targetPort: 53, protocol: 'UDP' },
    { port: 53, targetPort: 53, protocol: 'TCP' },
  ]),
  service('kube-system', 'hubble-relay', { 'k8s-app': 'hubble-relay' }, [
    { port: 80, targetPort: 'grpc' },
    { port: 443, targetPort: 'grpc' },
  ]),
];

interface Container {
  args: string[];
  ports: { name: string; containerPort: number }[];
  readinessProbe: { httpGet: { port: string | number } };
  livenessProbe: { httpGet: { port: string | number } };
}

describe.each(SEMANTICS)(
  'the shipped deployment.yaml with its NetworkPolicies in %s semantics',
  (_n, options) => {
    const objects = JSON.parse(cluster(SERVICES)) as { items: unknown[] };
    const engine = engineFromSnapshot(snapshotFromText(JSON.stringify(objects), 'cluster.json'), options);
    const pods = (
      objects.items as {
        kind: string;
        metadata: { namespace: string; name: string; labels?: Record<string, string> };
      }[]
    ).filter((o) => o.kind === 'Pod');
    const deployment = parse(read('manifests/deployment.yaml')) as {
      spec: { template: { spec: { containers: Container[] } } };
    };
    const container = deployment.spec.template.spec.containers[0]!;
    const arg = (flag: string) =>
      container.args.find((a) => a.startsWith(`${flag}=`))?.slice(flag.length + 1);

    /**
     * Every pod behind `host:port` (a Service's DNS name) and the port a policy sees there (after the
     * Service's translation): the connection the controller makes.
     */
    function behind(address: string, protocol: L4Protocol = 'TCP') {
      const m = /^([^.:]+)\.([^.:]+)\.svc(?:\.cluster\.local)?:(\d+)$/.exec(address);
      expect(m, address).not.toBeNull();
      const [, name = '', namespace = '', port = ''] = m!;
      const svc = SERVICES.find((s) => s.metadata.namespace === namespace && s.metadata.name === name);
      expect(svc, `Service ${namespace}/${name}`).toBeDefined();
      const sp = svc!.spec.ports.find((p) => p.port === Number(port) && (p.protocol ?? 'TCP') === protocol);
      expect(sp, `${address} ${protocol}`).toBeDefined();
      const selector = svc!.spec.selector ?? {};
      const backends = pods.filter(
        (p) =>
          p.metadata.namespace === namespace &&
          Object.entries(selector).every(([k, v]) => p.metadata.labels?.[k] === v),
      );
      expect(backends.length, `pods of Service ${namespace}/${name}`).toBeGreaterThan(0);
      return backends.map((p) => ({ to: { namespace, pod: p.metadata.name }, port: sp!.targetPort }));
    }
    const allowed = (from: Endpoint, to: Endpoint, port: number | string, protocol: L4Protocol = 'TCP') =>
      engine.evaluate({ from, to, port, protocol }).allowed;

    it("reaches Hubble Relay at the address its --hubble-relay names, through Cilium's relay Service", () => {
      const relay = arg('--hubble-relay');
      expect(relay).toBeDefined();
      for (const { to, port } of behind(relay!))
        expect(allowed(CONTROLLER, to, port), `${relay} → ${port}`).toBe(true);
    });

    it('resolves names (UDP and TCP) and reaches the API server through the kubernetes Service, its Lease too', () => {
      for (const protocol of ['UDP', 'TCP'] as const)
        for (const { to, port } of behind('kube-dns.kube-system.svc:53', protocol))
          expect(allowed(CONTROLLER, to, port, protocol), protocol).toBe(true);
      // The kubernetes Service has no selector: its endpoint is the API server's address and port, the
      // control-plane node's on kubeadm and kind; a managed cluster's is outside it, on 443. Leader
      // election (--leader-elect: the Lease) goes there as every other call.
      expect(container.args).toContain('--leader-elect');
      const target = SERVICES[0]!.spec.ports[0]!.targetPort;
      expect(allowed(CONTROLLER, { ip: CONTROL_PLANE }, target)).toBe(true);
      expect(allowed(CONTROLLER, { ip: MANAGED_API_SERVER }, 443)).toBe(true);
    });

    it('lets the probes in on the port they name, and the labelled namespaces through its Service', () => {
      for (const probe of [container.readinessProbe, container.livenessProbe])
        expect(allowed({ ip: WORKER }, CONTROLLER, probe.httpGet.port)).toBe(true);
      const svc = parse(read('manifests/service.yaml')) as {
        spec: { ports: { targetPort: string | number }[] };
      };
      const listen = Number(/:(\d+)$/.exec(arg('--listen') ?? '')?.[1]);
      expect(container.ports.find((p) => p.name === 'http')?.containerPort).toBe(listen);
      for (const { targetPort } of svc.spec.ports) {
        expect(allowed({ namespace: 'monitoring', pod: 'prometheus-0' }, CONTROLLER, targetPort)).toBe(true);
        expect(allowed({ namespace: 'shop', pod: 'cart-1' }, CONTROLLER, targetPort)).toBe(false);
      }
    });
  },
);
