/**
 * The proof covers what the proposal could not write a rule for: ingress from the API server (webhooks)
 * and from node addresses becomes ipBlock rules, anything still not expressible that the default deny
 * blocks fails the proof, and what the proof deliberately leaves out (dropped-only edges, ICMP) is named
 * as blocked.
 */
import { describe, expect, it } from 'vitest';
import type { Flow, FlowEndpoint } from '../../src/flows/types.ts';
import { recommend, summary } from '../../src/cli/commands/recommend.ts';
import type { ClusterSnapshot } from '../../src/model/snapshot.ts';
import { runPipeline } from '../../src/pipeline.ts';
import { NODE_INGRESS } from '../../src/policy/index.ts';
import { offlineAudit } from '../../src/server/audit.ts';
import { engineFromSnapshot } from '../../src/verify/engine.ts';
import { fixtureFlows, fixtureSnapshot, fixtureWithAPIServerAt as apiServerAt } from '../core/fixture.ts';

const T0 = Date.parse('2026-11-01T10:00:00Z');
const CART_POD = { namespace: 'shop', pod: 'cart-7d9f-bbbbb' };
const CART = ep({ ip: '10.244.1.20' });

function ep(x: FlowEndpoint): FlowEndpoint {
  return x;
}

function flow(minute: number, src: FlowEndpoint, dst: FlowEndpoint, port: number): Flow {
  return {
    time: T0 + minute * 60_000,
    src,
    dst,
    port,
    protocol: 'TCP',
    verdict: 'FORWARDED',
    input: 'hubble',
  };
}

function node(name: string, ip: string) {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name },
    status: { addresses: [{ type: 'InternalIP', address: ip }] },
  } as unknown as ClusterSnapshot['others'][number];
}

/** The fixture with two nodes: every pod runs on node-1 (192.168.0.10); node-2 is 192.168.0.11. */
function twoNodes(): ClusterSnapshot {
  const snap = fixtureSnapshot();
  snap.others.push(node('node-1', '192.168.0.10'), node('node-2', '192.168.0.11'));
  return snap;
}

async function proposeAndProve(snap: ClusterSnapshot, flows: Flow[]) {
  const r = await recommend(snap, flows);
  const engine = engineFromSnapshot({
    ...snap,
    networkPolicies: [...snap.networkPolicies, ...r.analysis.proposal.policies],
  });
  const allowed = (ip: string, port: number) =>
    engine.evaluate({ from: { ip }, to: CART_POD, port, protocol: 'TCP' }).allowed;
  const cart = r.analysis.proposal.policies.find((p) => p.metadata.name === 'microseg-cart')!;
  return { r, allowed, cart };
}

describe('ingress the proposal used to leave to the default deny', () => {
  it('admits the API server (a webhook) by its endpoint addresses on the observed port, with evidence', async () => {
    const apiserver = ep({ ip: '172.18.0.2', reserved: 'kube-apiserver' });
    const { r, allowed, cart } = await proposeAndProve(fixtureSnapshot(), [
      ...fixtureFlows(),
      flow(50, apiserver, CART, 8443),
    ]);
    const edge = 'kube-apiserver->shop/Deployment/cart:8443/TCP';
    expect(cart.spec.ingress).toContainEqual({
      from: [{ ipBlock: { cidr: '172.18.0.2/32' } }],
      ports: [{ protocol: 'TCP', port: 8443 }],
    });
    expect(r.analysis.proposal.evidence).toContainEqual(
      expect.objectContaining({
        policy: 'shop/microseg-cart',
        peer: 'kube-apiserver',
        port: 8443,
        edges: [edge],
      }),
    );
    expect(r.analysis.proposal.notExpressible.map((n) => n.edge)).not.toContain(edge);
    expect(r.proof.blocked).toEqual([]);
    expect(allowed('172.18.0.2', 8443)).toBe(true);
    expect(allowed('172.18.0.2', 8444)).toBe(false);
  });

  it('refuses when the API server address is unknown: the default deny would block the webhook', async () => {
    const snap = fixtureSnapshot();
    snap.services = snap.services.filter((s) => s.metadata.name !== 'kubernetes');
    snap.endpointSlices = [];
    const apiserver = ep({ ip: '172.18.0.2', reserved: 'kube-apiserver' });
    const { r } = await proposeAndProve(snap, [...fixtureFlows(), flow(50, apiserver, CART, 8443)]);
    const edge = 'kube-apiserver->shop/Deployment/cart:8443/TCP';
    expect(r.analysis.proposal.notExpressible).toContainEqual({
      edge,
      reason: `ingress to shop/Deployment/cart: the API server address is unknown (no default/kubernetes endpoints in the snapshot)`,
    });
    const unknown = 'the API server address is unknown (no default/kubernetes endpoints in the snapshot)';
    // The egress of cart's watch to the API server goes the same way. Neither is blocked by the engine:
    // they could not be checked, which fails the proof all the same.
    expect(r.proof.blocked).toEqual([]);
    expect(r.proof.unchecked).toEqual([
      `${edge}: cannot be checked: no address is known for kube-apiserver, so no rule can admit it` +
        ` (no rule written: ingress to shop/Deployment/cart: ${unknown})`,
      'shop/Deployment/cart->kube-apiserver:6443/TCP: cannot be checked: no address is known for kube-apiserver,' +
        ` so no rule can admit it (no rule written: egress from shop/Deployment/cart: ${unknown})`,
    ]);
    // Allowed, blocked and not checked add up, in the summary and in report.json.
    const { checked } = r.proof;
    expect(r.proof.report.allowedObserved).toBe(checked);
    expect(summary(r, 'out')).toContain(
      `verification: ${checked}/${checked + 2} observed connection(s) allowed, 0 BLOCKED, 2 COULD NOT BE CHECKED (no address is known for an end: not proven allowed); `,
    );
    const v = (r.report as { verification: Record<string, unknown> }).verification;
    expect(v.observedConnections).toBe(checked + 2);
    expect(v.checkedConnections).toBe(checked);
    expect(v.allowedObserved).toBe(checked);
    expect(v.blocked).toEqual([]);
    expect(v.unchecked).toEqual(r.proof.unchecked);
  });

  it('writes no ipBlock for a pod-network address no pod held, and refuses the proposal', async () => {
    const { r, cart } = await proposeAndProve(fixtureSnapshot(), [
      ...fixtureFlows(),
      flow(50, ep({ ip: '10.244.7.7' }), CART, 8080),
    ]);
    expect(JSON.stringify(cart.spec.ingress)).not.toContain('10.244.7.7');
    const edge = 'private:10.244.7.7->shop/Deployment/cart:8080/TCP';
    expect(r.analysis.proposal.notExpressible).toContainEqual({
      edge,
      reason:
        'ingress to shop/Deployment/cart: 10.244.7.7 is in the pod network 10.244.0.0/16, but no pod of the snapshot held it; an ipBlock would admit whichever pod gets the address next, so no rule is written (a snapshot taken while the pod ran names it)',
    });
    expect(r.proof.blocked.map((b) => b.slice(0, b.indexOf(':', edge.length)))).toEqual([edge]);
  });

  it('writes no rule for node traffic and leaves it out of the proof, saying so', async () => {
    const remote = ep({ ip: '192.168.0.11', reserved: 'remote-node' });
    const { r, allowed, cart } = await proposeAndProve(twoNodes(), [
      ...fixtureFlows(),
      flow(50, remote, CART, 8080),
    ]);
    expect(JSON.stringify(cart.spec.ingress)).not.toContain('192.168.0.1');
    const reasons = r.analysis.proposal.notExpressible.filter((n) => n.edge.startsWith('node:'));
    expect(reasons.map((n) => n.edge)).toEqual([
      'node:192.168.0.10->shop/Deployment/cart:8080/TCP',
      'node:192.168.0.11->shop/Deployment/cart:8080/TCP',
    ]);
    for (const n of reasons) expect(n.reason).toBe(`ingress to shop/Deployment/cart: ${NODE_INGRESS}`);
    expect(r.proof.blocked).toEqual([]);
    // The pod's own node is admitted whatever the rules say (the engine's nodeTraffic=allow); the other
    // node is not, as the reason says.
    expect(allowed('192.168.0.10', 9090)).toBe(true);
    expect(allowed('192.168.0.11', 8080)).toBe(false);
  });

  it('admits a host-network workload by the addresses of its nodes', async () => {
    const exporter = ep({ ip: '192.168.0.10', namespace: 'kube-system', pod: 'node-exporter-x' });
    const { r, cart } = await proposeAndProve(fixtureSnapshot(), [
      ...fixtureFlows(),
      flow(50, exporter, CART, 8081),
    ]);
    expect(cart.spec.ingress).toContainEqual({
      from: [{ ipBlock: { cidr: '192.168.0.10/32' } }],
      ports: [{ protocol: 'TCP', port: 8081 }],
    });
    expect(r.analysis.proposal.evidence).toContainEqual(
      expect.objectContaining({ peer: 'kube-system/Pod/node-exporter-x', port: 8081 }),
    );
    expect(r.proof.blocked).toEqual([]);
  });
});

/** The fixture with an unlabelled bare pod `debug` (10.244.1.40), and its connection to db. */
function withDebugPod(): { snap: ClusterSnapshot; debugToDb: Flow } {
  const snap = fixtureSnapshot();
  const db = snap.pods.find((p) => p.metadata.name === 'db-0')!;
  snap.pods.push({
    ...db,
    metadata: { name: 'debug', namespace: 'shop' },
    status: { ...db.status, podIP: '10.244.1.40', podIPs: [{ ip: '10.244.1.40' }] },
  });
  return { snap, debugToDb: flow(50, { ip: '10.244.1.40' }, { ip: '10.244.1.30' }, 5432) };
}

describe('the proof checks the edges no rule was written for', () => {
  it('refuses a proposal whose default deny blocks an unlabelled bare pod', async () => {
    const { snap, debugToDb } = withDebugPod();
    const { r } = await proposeAndProve(snap, [...fixtureFlows(), debugToDb]);
    const edge = 'shop/Pod/debug->shop/StatefulSet/db:5432/TCP';
    expect(r.analysis.proposal.notExpressible.map((n) => n.edge)).toContain(edge);
    expect(r.proof.blocked).toHaveLength(1);
    expect(r.proof.blocked[0]).toMatch(new RegExp(`^${edge.replaceAll('.', '\\.')}: denied: `));
    expect(r.proof.blocked[0]).toContain(
      '(no rule written: ingress to shop/StatefulSet/db: shop/Pod/debug has no stable labels',
    );
    expect(summary(r, 'out')).toContain(
      `verification: ${r.proof.checked - 1}/${r.proof.checked} observed connection(s) allowed, 1 BLOCKED, 0 COULD NOT BE CHECKED`,
    );
  });

  it('names the connections it leaves out and the proposal blocks: dropped-only and ICMP', async () => {
    const { r } = await proposeAndProve(fixtureSnapshot(), fixtureFlows());
    expect(r.proof.blocked).toEqual([]);
    expect(r.proof.willBeBlocked).toEqual([
      'shop/Deployment/frontend->shop/Deployment/cart:0/ICMPv4: NetworkPolicy cannot allow ICMPv4, and the proposal isolates shop/Deployment/frontend and shop/Deployment/cart',
      'shop/Deployment/frontend->shop/Deployment/cart:9999/TCP: every observation was dropped; the proposal does not allow it either',
    ]);
    expect((r.report as { verification: { willBeBlocked: string[] } }).verification.willBeBlocked).toEqual(
      r.proof.willBeBlocked,
    );
    expect(summary(r, 'out')).toContain(
      'WILL BE BLOCKED by the proposal: 2 observed connection(s) the proof leaves out',
    );
  });

  it('names no dropped-only edge the proposal allows after all, nor one outside its namespaces', async () => {
    const flows = fixtureFlows().filter((f) => f.protocol !== 'ICMPv4');
    // The same connection seen forwarded later: allowed, so not listed.
    const dropped = flows.find((f) => f.verdict === 'DROPPED')!;
    const r1 = await recommend(fixtureSnapshot(), [
      ...flows,
      { ...dropped, time: dropped.time + 1, verdict: 'FORWARDED' },
    ]);
    expect(r1.proof.willBeBlocked).toEqual([]);
    const r2 = await recommend(fixtureSnapshot(), flows, { policy: { namespaces: ['kube-system'] } });
    expect(r2.proof.willBeBlocked).toEqual([]);
  });
});

describe('the offline audit', () => {
  it('flags an edge the proposal could write no rule for', async () => {
    const { snap, debugToDb } = withDebugPod();
    const learned = await runPipeline(snap, [...fixtureFlows(), debugToDb]);
    const audit = offlineAudit({
      name: 'debug',
      snapshot: snap,
      identity: learned.identity,
      graph: learned.graph,
      proposal: learned.proposal,
    });
    expect(audit.wouldBlock.map((b) => b.edge)).toEqual(['shop/Pod/debug->shop/StatefulSet/db:5432/TCP']);
  });
});

describe('the offline audit of a proposal', () => {
  it("keeps microseg's policies of the namespaces the proposal does not cover, as Enforce does", async () => {
    // kube-system has a deny of its own and an allow for DNS that an earlier microseg run wrote.
    const np = (name: string, spec: object, managed: boolean) => ({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: {
        name,
        namespace: 'kube-system',
        ...(managed ? { labels: { 'app.kubernetes.io/managed-by': 'microseg' } } : {}),
      },
      spec,
    });
    const snap = fixtureSnapshot(
      np('deny-all', { podSelector: {}, policyTypes: ['Ingress'] }, false),
      np(
        'microseg-coredns',
        {
          podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
          policyTypes: ['Ingress'],
          ingress: [{ from: [{ namespaceSelector: {} }], ports: [{ port: 53, protocol: 'UDP' }] }],
        },
        true,
      ),
    );
    const learned = await runPipeline(snap, fixtureFlows());
    expect(learned.proposal.namespaces).not.toContain('kube-system');
    expect(learned.graph.edges.some((e) => e.target === 'kube-system/Deployment/coredns')).toBe(true);
    const audit = offlineAudit({
      name: 'scope',
      snapshot: snap,
      identity: learned.identity,
      graph: learned.graph,
      proposal: learned.proposal,
    });
    expect(audit.wouldBlock).toEqual([]);
  });
});

/** An AdminNetworkPolicy that denies cart's pods egress to `cidr`, or ingress from it. */
function denyCart(direction: 'egress' | 'ingress', cidr: string) {
  const peers = [{ networks: [cidr] }];
  return {
    apiVersion: 'policy.networking.k8s.io/v1alpha1',
    kind: 'AdminNetworkPolicy',
    metadata: { name: `deny-cart-${direction}` },
    spec: {
      priority: 10,
      subject: {
        pods: {
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'shop' } },
          podSelector: { matchLabels: { app: 'cart' } },
        },
      },
      [direction]: [
        { name: 'no-api', action: 'Deny', ...(direction === 'egress' ? { to: peers } : { from: peers }) },
      ],
    },
  };
}

describe('the proof checks a connection to or from the API server at each of its addresses', () => {
  const CART_NAMED = ep({ ip: '10.244.1.20', namespace: 'shop', pod: 'cart-7d9f-bbbbb' });
  // cart's watch through a ClusterIP of the kubernetes Service, in place of the fixture's direct one.
  const viaClusterIP = (ip: string) => [
    ...fixtureFlows().filter((f) => f.port !== 6443),
    flow(50, CART_NAMED, ep({ ip }), 443),
  ];
  const edge = 'shop/Deployment/cart->kube-apiserver:6443/TCP';

  it('admits a dual-stack API server at every address, counting each edge once', async () => {
    const r = await recommend(apiServerAt(['172.18.0.2', 'fd00:18::2']), viaClusterIP('fd00:10:96::1'));
    const cart = r.analysis.proposal.policies.find((p) => p.metadata.name === 'microseg-cart')!;
    expect(cart.spec.egress![0]).toEqual({
      to: [{ ipBlock: { cidr: '172.18.0.2/32' } }, { ipBlock: { cidr: 'fd00:18::2/128' } }],
      ports: [{ protocol: 'TCP', port: 6443 }],
    });
    expect(r.proof.blocked).toEqual([]);
    const base = await recommend(fixtureSnapshot(), viaClusterIP('10.96.0.1'));
    expect(base.analysis.graph.edges.map((e) => e.id)).toEqual(r.analysis.graph.edges.map((e) => e.id));
    expect(r.proof.checked).toBe(base.proof.checked);
    expect(r.proof.report.allowedObserved).toBe(r.proof.checked);
  });

  it('refuses when the IPv6 endpoint an IPv6 connection reaches is denied, though the IPv4 one is not', async () => {
    const snap = apiServerAt(['172.18.0.2', 'fd00:18::2'], denyCart('egress', 'fd00:18::2/128'));
    const r = await recommend(snap, viaClusterIP('fd00:10:96::1'));
    expect(r.proof.blocked).toHaveLength(1);
    expect(r.proof.blocked[0]).toMatch(/^shop\/Deployment\/cart->kube-apiserver:6443\/TCP: denied: /);
    expect(r.proof.blocked[0]).toContain('(at the API server address fd00:18::2)');
    expect(r.proof.report.allowedObserved).toBe(r.proof.checked - 1);
    expect(summary(r, 'out')).toContain('1 BLOCKED');
  });

  it('refuses when one of several endpoints of a family is denied: a connection may reach any', async () => {
    const snap = apiServerAt(['172.18.0.2', '172.18.0.3'], denyCart('egress', '172.18.0.3/32'));
    const r = await recommend(snap, viaClusterIP('10.96.0.1'));
    expect(r.proof.blocked.map((b) => b.slice(0, edge.length))).toEqual([edge]);
    expect(r.proof.blocked[0]).toContain('(at the API server address 172.18.0.3)');
  });

  it('audits a proposal written before the API server had an IPv6 address at that address', async () => {
    const webhook = (ip: string) => flow(51, ep({ ip, reserved: 'kube-apiserver' }), CART_NAMED, 8443);
    const learned = await runPipeline(apiServerAt(['172.18.0.2']), [
      ...viaClusterIP('10.96.0.1'),
      webhook('172.18.0.2'),
    ]);
    const snap = apiServerAt(['172.18.0.2', 'fd00:18::2']);
    const now = await runPipeline(snap, [...viaClusterIP('fd00:10:96::1'), webhook('fd00:18::2')]);
    const audit = offlineAudit({
      name: 'dual-stack',
      snapshot: snap,
      identity: now.identity,
      graph: now.graph,
      proposal: learned.proposal,
    });
    expect(audit.wouldBlock.map((b) => [b.edge, b.reason?.slice(b.reason.indexOf(' (at '))])).toEqual([
      ['kube-apiserver->shop/Deployment/cart:8443/TCP', ' (at the API server address fd00:18::2)'],
      [edge, ' (at the API server address fd00:18::2)'],
    ]);
    // Audited with the proposal of the same snapshot, nothing would be blocked.
    const fresh = offlineAudit({
      name: 'fresh',
      snapshot: snap,
      identity: now.identity,
      graph: now.graph,
      proposal: now.proposal,
    });
    expect(fresh.wouldBlock).toEqual([]);
  });
});

/**
 * A host-network DaemonSet `node-agent` of kube-system listening on 9100/TCP, a pod on each of `nodes`
 * (`[node name, IPv4, IPv6]`): dual-stack nodes, whose pods hold both of their node's addresses (in
 * `status.podIPs` too, unless `v4PodIPs`: then only in `status.hostIPs`).
 */
function hostAgent(nodes: [string, string, string][], v4PodIPs = false): unknown[] {
  const labels = { app: 'node-agent' };
  return [
    {
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: { name: 'node-agent', namespace: 'kube-system', uid: 'uid-node-agent' },
      spec: {
        selector: { matchLabels: labels },
        template: { metadata: { labels }, spec: { hostNetwork: true, containers: [{ name: 'agent' }] } },
      },
    },
    ...nodes.map(([name, v4, v6]) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: `node-agent-${name}`,
        namespace: 'kube-system',
        labels,
        ownerReferences: [
          {
            apiVersion: 'apps/v1',
            kind: 'DaemonSet',
            name: 'node-agent',
            uid: 'uid-node-agent',
            controller: true,
          },
        ],
      },
      spec: {
        nodeName: name,
        hostNetwork: true,
        containers: [{ name: 'agent', ports: [{ containerPort: 9100, protocol: 'TCP' }] }],
      },
      status: {
        phase: 'Running',
        podIP: v4,
        podIPs: v4PodIPs ? [{ ip: v4 }] : [{ ip: v4 }, { ip: v6 }],
        hostIP: v4,
        hostIPs: [{ ip: v4 }, { ip: v6 }],
        startTime: '2026-11-01T00:00:00Z',
      },
    })),
  ];
}

describe("a host-network workload's rules name the node addresses connections with pods show", () => {
  const NODE_1: [string, string, string] = ['node-1', '192.168.0.10', 'fd00:192:168::10'];
  /** node-1 as its Node object lists it: both InternalIPs, two ExternalIPs, a Hostname and an InternalDNS name. */
  const node1 = {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: 'node-1' },
    status: {
      addresses: [
        { type: 'InternalIP', address: '192.168.0.10' },
        { type: 'InternalIP', address: 'fd00:192:168::10' },
        { type: 'ExternalIP', address: '203.0.113.10' },
        { type: 'ExternalIP', address: '2001:db8::10' },
        { type: 'Hostname', address: 'node-1' },
        { type: 'InternalDNS', address: 'node-1.internal' },
      ],
    },
  };
  const CART_NAMED = ep({ ip: '10.244.1.20', namespace: 'shop', pod: 'cart-7d9f-bbbbb' });
  const AGENT = ep({ ip: '192.168.0.10', namespace: 'kube-system', pod: 'node-agent-node-1' });
  const flows = () => [
    ...fixtureFlows(),
    // cart scrapes the agent, and the agent calls cart.
    flow(50, CART_NAMED, ep({ ip: '192.168.0.10' }), 9100),
    flow(51, AGENT, CART_NAMED, 8080),
  ];
  const internal = ['192.168.0.10/32', 'fd00:192:168::10/128'].map((cidr) => ({ ipBlock: { cidr } }));

  it("writes its InternalIP addresses and its pods' status.hostIPs, never an ExternalIP, and proves the proposal", async () => {
    // Its pod lists only its IPv4 address: the IPv6 one comes from status.hostIPs and the Node object.
    const r = await recommend(fixtureSnapshot(...hostAgent([NODE_1], true), node1), flows());
    const agent = r.analysis.identity.workloads.get('kube-system/DaemonSet/node-agent')!;
    expect(agent.hostIPs).toEqual(['192.168.0.10', 'fd00:192:168::10']);
    const cart = r.analysis.proposal.policies.find((p) => p.metadata.name === 'microseg-cart')!;
    expect(cart.spec.egress).toContainEqual({ to: internal, ports: [{ protocol: 'TCP', port: 9100 }] });
    expect(cart.spec.ingress).toContainEqual({ from: internal, ports: [{ protocol: 'TCP', port: 8080 }] });
    const text = JSON.stringify(r.analysis.proposal.policies);
    expect([text.includes('203.0.113.10'), text.includes('2001:db8::10')]).toEqual([false, false]);
    // The proof checks the edges at the addresses the rules name, and every one is allowed.
    expect([r.proof.blocked, r.proof.unchecked]).toEqual([[], []]);
    expect(r.proof.report.allowedObserved).toBe(r.proof.checked);
    // report.json says which node addresses were left out, and which are used.
    expect((r.report as { warnings: string[] }).warnings).toContain(
      "node node-1: ExternalIP 203.0.113.10, ExternalIP 2001:db8::10 left out of the rules of the host-network workload(s) on it (kube-system/DaemonSet/node-agent, kube-system/Pod/node-exporter-x): a host-network workload is written at its nodes' InternalIP addresses and its pods' status.hostIP(s), the addresses its connections with pods show",
    );
  });

  it("takes a connection to an ExternalIP on the agent's port for the node's, at that address, not the agent's", async () => {
    const r = await recommend(fixtureSnapshot(...hostAgent([NODE_1], true), node1), [
      ...fixtureFlows(),
      flow(50, CART_NAMED, ep({ ip: '203.0.113.10' }), 9100),
    ]);
    expect(r.analysis.identity.resolve({ ip: '203.0.113.10' }, T0, 9100, false, 'TCP').id).toBe(
      'node:203.0.113.10',
    );
    // Observed there, so its rule names that address alone (and the proof checks it there).
    const cart = r.analysis.proposal.policies.find((p) => p.metadata.name === 'microseg-cart')!;
    expect(cart.spec.egress).toContainEqual({
      to: [{ ipBlock: { cidr: '203.0.113.10/32' } }],
      ports: [{ protocol: 'TCP', port: 9100 }],
    });
    expect([r.proof.blocked, r.proof.unchecked]).toEqual([[], []]);
  });
});

describe('the proof checks a host-network workload at every address its pods hold', () => {
  const NODE_1: [string, string, string] = ['node-1', '192.168.0.10', 'fd00:192:168::10'];
  const NODE_2: [string, string, string] = ['node-2', '192.168.0.11', 'fd00:192:168::11'];
  const CART_NAMED = ep({ ip: '10.244.1.20', namespace: 'shop', pod: 'cart-7d9f-bbbbb' });
  // cart scrapes the agent on node-1's IPv4 address: the edge stands for every pod of the DaemonSet.
  const scrape = () => [...fixtureFlows(), flow(50, CART_NAMED, ep({ ip: '192.168.0.10' }), 9100)];
  const edge = 'shop/Deployment/cart->kube-system/DaemonSet/node-agent:9100/TCP';

  it('admits the agent of two dual-stack nodes at each of their four addresses, counting the edge once', async () => {
    const r = await recommend(fixtureSnapshot(...hostAgent([NODE_1, NODE_2])), scrape());
    expect(r.analysis.graph.edges.map((e) => e.id)).toContain(edge);
    const cart = r.analysis.proposal.policies.find((p) => p.metadata.name === 'microseg-cart')!;
    expect(cart.spec.egress).toContainEqual({
      to: ['192.168.0.10/32', '192.168.0.11/32', 'fd00:192:168::10/128', 'fd00:192:168::11/128'].map(
        (cidr) => ({ ipBlock: { cidr } }),
      ),
      ports: [{ protocol: 'TCP', port: 9100 }],
    });
    expect(r.proof.blocked).toEqual([]);
    const base = await recommend(fixtureSnapshot(...hostAgent([NODE_1])), scrape());
    expect(r.proof.checked).toBe(base.proof.checked);
    expect(r.proof.report.allowedObserved).toBe(r.proof.checked);
  });

  it('refuses when the IPv6 address of a dual-stack node is denied, though its IPv4 one is not', async () => {
    const snap = fixtureSnapshot(...hostAgent([NODE_1]), denyCart('egress', 'fd00:192:168::10/128'));
    const r = await recommend(snap, scrape());
    expect(r.proof.blocked).toHaveLength(1);
    expect(r.proof.blocked[0]).toMatch(
      /^shop\/Deployment\/cart->kube-system\/DaemonSet\/node-agent:9100\/TCP: denied: /,
    );
    expect(r.proof.blocked[0]).toContain('(at the node address fd00:192:168::10)');
    expect(r.proof.report.allowedObserved).toBe(r.proof.checked - 1);
    expect(summary(r, 'out')).toContain('1 BLOCKED');
  });

  it('refuses when the node of another pod of the workload is denied', async () => {
    const snap = fixtureSnapshot(...hostAgent([NODE_1, NODE_2]), denyCart('egress', '192.168.0.11/32'));
    const r = await recommend(snap, scrape());
    expect(r.proof.blocked.map((b) => b.slice(0, edge.length))).toEqual([edge]);
    expect(r.proof.blocked[0]).toContain('(at the node address 192.168.0.11)');
  });

  it('audits a proposal written while the agent ran on one node at the addresses of the node added since', async () => {
    const learned = await runPipeline(fixtureSnapshot(...hostAgent([NODE_1])), scrape());
    const snap = fixtureSnapshot(...hostAgent([NODE_1, NODE_2]));
    const now = await runPipeline(snap, scrape());
    const audit = offlineAudit({
      name: 'new-node',
      snapshot: snap,
      identity: now.identity,
      graph: now.graph,
      proposal: learned.proposal,
    });
    expect(audit.wouldBlock.map((b) => [b.edge, b.reason?.slice(b.reason.indexOf(' (at '))])).toEqual([
      [edge, ' (at the node address 192.168.0.11)'],
    ]);
    const fresh = offlineAudit({
      name: 'fresh',
      snapshot: snap,
      identity: now.identity,
      graph: now.graph,
      proposal: now.proposal,
    });
    expect(fresh.wouldBlock).toEqual([]);
  });
});

describe('a host-network workload whose pods list only their IPv4 address on dual-stack nodes', () => {
  const NODE_1: [string, string, string] = ['node-1', '192.168.0.10', 'fd00:192:168::10'];
  const CART_NAMED = ep({ ip: '10.244.1.20', namespace: 'shop', pod: 'cart-7d9f-bbbbb' });
  // cart scrapes the agent at the node's IPv6 address.
  const scrape = () => [...fixtureFlows(), flow(50, CART_NAMED, ep({ ip: 'fd00:192:168::10' }), 9100)];
  const edge = 'shop/Deployment/cart->kube-system/DaemonSet/node-agent:9100/TCP';

  it('is credited with a connection to the node’s IPv6 address, admitted and checked at both addresses', async () => {
    const r = await recommend(fixtureSnapshot(...hostAgent([NODE_1], true)), scrape());
    expect(r.analysis.graph.edges.map((e) => e.id)).toContain(edge);
    const cart = r.analysis.proposal.policies.find((p) => p.metadata.name === 'microseg-cart')!;
    expect(cart.spec.egress).toContainEqual({
      to: ['192.168.0.10/32', 'fd00:192:168::10/128'].map((cidr) => ({ ipBlock: { cidr } })),
      ports: [{ protocol: 'TCP', port: 9100 }],
    });
    expect(r.proof.blocked).toEqual([]);
  });

  it('refuses when the node’s IPv6 address is denied', async () => {
    const snap = fixtureSnapshot(...hostAgent([NODE_1], true), denyCart('egress', 'fd00:192:168::10/128'));
    const r = await recommend(snap, scrape());
    expect(r.proof.blocked.map((b) => b.slice(0, edge.length))).toEqual([edge]);
    expect(r.proof.blocked[0]).toContain('(at the node address fd00:192:168::10)');
  });
});
