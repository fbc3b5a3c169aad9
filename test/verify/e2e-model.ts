/**
 * The upstream e2e network policy model (kubernetes/kubernetes test/e2e/network/netpol): namespaces x, y,
 * z labelled ns=<name>; pods a, b, c labelled pod=<name>; one container per (port, protocol) for ports 80
 * and 81 over TCP, UDP and SCTP, with container port names serve-<port>-<protocol>. Written from the
 * suite's description; pod IPs are ours (10.<ns>.<pod>.10, all inside 0.0.0.0/4).
 */
import type { LabelSelector, NetworkPolicy, Namespace, Pod } from '../../src/model/k8s.ts';
import type { Engine } from '../../src/verify/engine.ts';
import { buildEngine } from '../../src/verify/engine.ts';
import type { EngineOptions, L4Protocol } from '../../src/verify/types.ts';

export const NAMESPACES = ['x', 'y', 'z'] as const;
export const PODS = ['a', 'b', 'c'] as const;
export const ALL = NAMESPACES.flatMap((ns) => PODS.map((p) => `${ns}/${p}`));

export function ipOf(pod: string): string {
  const [ns, p] = pod.split('/') as [string, string];
  return `10.${NAMESPACES.indexOf(ns as 'x') + 1}.${PODS.indexOf(p as 'a') + 1}.10`;
}

export function modelNamespaces(): Namespace[] {
  return NAMESPACES.map((ns) => ({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: ns, labels: { ns } },
  }));
}

export function modelPods(): Pod[] {
  return ALL.map((full) => {
    const [ns, name] = full.split('/') as [string, string];
    const containers = [80, 81].flatMap((port) =>
      (['TCP', 'UDP', 'SCTP'] as const).map((protocol) => ({
        name: `cont-${port}-${protocol.toLowerCase()}`,
        ports: [{ containerPort: port, name: `serve-${port}-${protocol.toLowerCase()}`, protocol }],
      })),
    );
    return {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: ns, labels: { pod: name } },
      spec: { nodeName: 'node-1', containers },
      status: { podIP: ipOf(full), podIPs: [{ ip: ipOf(full) }] },
    };
  });
}

/** Reachability truth table, default true, with the suite's expectation helpers. */
export class Reach {
  readonly m = new Map<string, boolean>();
  constructor(def = true) {
    for (const f of ALL) for (const t of ALL) this.m.set(`${f}>${t}`, def);
  }
  private static sel(peer: { ns?: string; pod?: string }): string[] {
    return ALL.filter((p) => {
      const [ns, name] = p.split('/');
      return (!peer.ns || peer.ns === ns) && (!peer.pod || peer.pod === name);
    });
  }
  expectPeer(from: { ns?: string; pod?: string }, to: { ns?: string; pod?: string }, v: boolean): this {
    for (const f of Reach.sel(from)) for (const t of Reach.sel(to)) this.m.set(`${f}>${t}`, v);
    return this;
  }
  expect(from: string, to: string, v: boolean): this {
    this.m.set(`${from}>${to}`, v);
    return this;
  }
  expectAllIngress(pod: string, v: boolean): this {
    for (const f of ALL) this.m.set(`${f}>${pod}`, v);
    return this;
  }
  expectAllEgress(pod: string, v: boolean): this {
    for (const t of ALL) this.m.set(`${pod}>${t}`, v);
    return this;
  }
}

/** Evaluates every ordered pair (loopback ignored, as upstream does) and lists disagreements. */
export function mismatches(
  engine: Engine,
  reach: Reach,
  port: number | string,
  protocol: L4Protocol,
): string[] {
  const out: string[] = [];
  for (const f of ALL) {
    for (const t of ALL) {
      if (f === t) continue;
      const [fn, fp] = f.split('/') as [string, string];
      const [tn, tp] = t.split('/') as [string, string];
      const v = engine.evaluate({
        from: { namespace: fn, pod: fp },
        to: { namespace: tn, pod: tp },
        port,
        protocol,
      });
      if (v.allowed !== reach.m.get(`${f}>${t}`)) out.push(`${f} -> ${t}: got ${v.allowed} (${v.reason})`);
    }
  }
  return out;
}

export interface LabelChanges {
  /** Extra labels per namespace (AddNamespaceLabel in the suite). */
  ns?: Record<string, Record<string, string>>;
  /** Extra labels per pod `ns/pod` (AddPodLabels in the suite). */
  pod?: Record<string, Record<string, string>>;
}

export function modelEngine(
  policies: NetworkPolicy[],
  changes: LabelChanges = {},
  options?: EngineOptions,
): Engine {
  const namespaces = modelNamespaces().map((n) => ({
    ...n,
    metadata: { ...n.metadata, labels: { ...n.metadata.labels, ...(changes.ns?.[n.metadata.name] ?? {}) } },
  }));
  const pods = modelPods().map((p) => ({
    ...p,
    metadata: {
      ...p.metadata,
      labels: {
        ...p.metadata.labels,
        ...(changes.pod?.[`${p.metadata.namespace}/${p.metadata.name}`] ?? {}),
      },
    },
  }));
  return buildEngine({ namespaces, pods, networkPolicies: policies }, options);
}

export interface Tweaks {
  ingress?: unknown[];
  egress?: unknown[];
}

/** A policy built like the suite's generator: each rules list given also adds its policyType. */
export function policy(ns: string, name: string, podSelector: LabelSelector, t: Tweaks): NetworkPolicy {
  const spec: Record<string, unknown> = { podSelector, policyTypes: [] as string[] };
  if (t.ingress) {
    spec.ingress = t.ingress;
    (spec.policyTypes as string[]).push('Ingress');
  }
  if (t.egress) {
    spec.egress = t.egress;
    (spec.policyTypes as string[]).push('Egress');
  }
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name, namespace: ns },
    spec,
  } as unknown as NetworkPolicy;
}

export const podIs = (p: string): LabelSelector => ({ matchLabels: { pod: p } });
export const nsNamed = (ns: string): LabelSelector => ({
  matchLabels: { 'kubernetes.io/metadata.name': ns },
});
