/**
 * Ground truth written next to generated data: the workload-level connections the generator intended,
 * so tests and benchmarks can score what the pipeline recovers from the flows.
 */
import type { RootKind } from './cluster.ts';

export type TruthPeer =
  | { workload: { namespace: string; kind: RootKind; name: string } }
  /** A peer outside the cluster. `names` are its DNS names; `cidr` its address(es); neither = any. */
  | { world: { names?: string[]; cidrs?: string[] } }
  | { reserved: 'host' | 'kube-apiserver' };

export interface TruthEdge {
  src: TruthPeer;
  dst: TruthPeer;
  /** Responder port as the destination pod sees it (the Service's target port); ICMP type for ICMP. */
  port: number;
  protocol: 'TCP' | 'UDP' | 'ICMPv4' | 'ICMPv6';
  /** Why the edge is there or what is special about its evidence. */
  note?: string;
}

export function peerKey(p: TruthPeer): string {
  if ('workload' in p) return `${p.workload.namespace}/${p.workload.kind}/${p.workload.name}`;
  if ('world' in p) {
    const what = p.world.names?.[0] ?? p.world.cidrs?.join(',');
    return what ? `world:${what}` : 'world';
  }
  return `reserved:${p.reserved}`;
}

/** `shop/Deployment/frontend -> shop/Deployment/cart TCP/7070` */
export function edgeKey(e: TruthEdge): string {
  return `${peerKey(e.src)} -> ${peerKey(e.dst)} ${e.protocol}/${e.port}`;
}

export function workloadPeer(w: { namespace: string; kind: RootKind; name: string }): TruthPeer {
  return { workload: { namespace: w.namespace, kind: w.kind, name: w.name } };
}
