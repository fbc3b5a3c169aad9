/**
 * The ends of a flow as the controller learns and audits it. Pure: an identity and an engine in, plain
 * data out.
 *
 * A flow to a Service's ClusterIP stands for the Service's backends, each on the port it takes the
 * connection on; the audit checks it at a pod of a workload backend, or at the address of another. The
 * API server, the `default/kubernetes` Service's backend, is checked at each of its endpoint addresses of
 * the ClusterIP's family: the connection may have reached any of them, and a proposal frozen before an
 * address was added (or a cluster-wide deny of one) admits some and not others.
 */
import type { Flow, FlowEndpoint } from '../flows/types.ts';
import type { Identity } from '../identity/index.ts';
import type { Peer } from '../identity/types.ts';
import type { Engine } from '../verify/engine.ts';
import type { L4Protocol, ResolvedEnd } from '../verify/types.ts';
import { namespaceOf } from './edges.ts';

/** One peer a flow end stands for. */
export interface FlowEnd {
  peer: Peer;
  /** The port it takes the connection on: a destination's after translation, else the flow's. */
  port: number;
  /** Where the audit checks the connection to it, when not at the flow's own end. */
  at?: FlowEndpoint[];
}

/** The peers the flow end numbered `n` stands for: itself, or a Service's backends. */
export function flowEnds(identity: Identity, n: number, f: Flow, destination: boolean): FlowEnd[] {
  const backends = identity.serviceBackends(n, f.port, f.protocol);
  if (!backends) return [{ peer: identity.peerAt(n), port: f.port }];
  const clusterIP = identity.peerAt(n).ip;
  // A backend at the source end is one peer, whatever the ports it takes the Service's connections on
  // (the edge's port is the destination's): once, or the flow would be folded into its edge twice.
  const ends = destination
    ? backends
    : backends.filter((b, i) => backends.findIndex((c) => c.peer === b.peer) === i);
  return ends.map((b) => {
    const peer = identity.peerAt(b.peer);
    const ns = namespaceOf(peer.id);
    const pod = identity.workloads.get(peer.id)?.pods[0];
    const at: FlowEndpoint[] =
      pod && ns
        ? [{ namespace: ns, pod }]
        : peer.ip
          ? [{ ip: peer.ip }]
          : peer.kind === 'kube-apiserver'
            ? apiserverAddressesLike(identity, clusterIP).map((ip) => ({ ip }))
            : [];
    return { peer, port: destination ? b.port : f.port, ...(at.length > 0 ? { at } : {}) };
  });
}

/** The API server's endpoint addresses of the family of `ip` (IPv4 when it is undefined). */
export function apiserverAddressesLike(identity: Identity, ip: string | undefined): string[] {
  const v6 = ip?.includes(':') ?? false;
  return identity.apiserverEndpoints.ips.filter((a) => a.includes(':') === v6);
}

/**
 * Whether `engine` blocks flow `f` at one of `at` (default its own destination). An end the engine cannot
 * resolve (a pod gone, no address) is not auditable, and blocks nothing.
 */
export function blocksFlow(engine: Engine, f: Flow, at?: readonly FlowEndpoint[]): boolean {
  const s = engineEnd(engine, f.src);
  if (!s) return false;
  for (const ep of at ?? [f.dst]) {
    const d = engineEnd(engine, ep);
    if (d && !engine.allows(s, d, f.port, f.protocol as L4Protocol)) return true;
  }
  return false;
}

/** A flow end as the engine knows it: its pod, or its address. */
function engineEnd(engine: Engine, ep: FlowEndpoint): ResolvedEnd | undefined {
  try {
    if (ep.pod && ep.namespace) return engine.resolve({ namespace: ep.namespace, pod: ep.pod });
  } catch {
    // not a known pod: fall back to the IP
  }
  if (ep.ip) {
    try {
      return engine.resolveIP(ep.ip);
    } catch {
      return undefined;
    }
  }
  return undefined;
}
