/**
 * The ends of a flow as the controller learns and audits it. Pure: an identity and an engine in, plain
 * data out.
 *
 * A flow to a Service's ClusterIP stands for the Service's backends, each on the port it takes the
 * connection on; the audit checks it at a pod of a workload backend, or at the address of another. The
 * API server, the `default/kubernetes` Service's backend, is checked at each of its endpoint addresses of
 * the ClusterIP's family: the connection may have reached any of them, and a proposal frozen before an
 * address was added (or a cluster-wide deny of one) admits some and not others.
 *
 * An end given with neither pod nor address (a generic endpoint by namespace and workload or labels, a
 * Kubescape object's own workload and its selector neighbours) is checked at a pod of the workload it
 * resolves to, and one whose selector selects the pods of several workloads at a pod of each: the
 * engine places connections by pod or address, never by workload name.
 */
import type { Flow, FlowEndpoint } from '../flows/types.ts';
import type { Identity } from '../identity/index.ts';
import type { Peer, Workload } from '../identity/types.ts';
import type { Engine } from '../verify/engine.ts';
import type { L4Protocol, ResolvedEnd } from '../verify/types.ts';

/**
 * Where the audit checks one end of a connection: an address, a pod (else its address), or a pod of a
 * workload: the first of `pods` (its pods by name, as identity knows them) that the audit's engine
 * knows, so that a pod deleted or created since one of the two was built is passed over. A flow's own
 * pod comes with its workload's `pods` and its address: the pod, else a pod of its workload of the
 * pod's own revision, else any pod of its workload, else the address.
 */
export interface Place {
  ip?: string;
  namespace?: string;
  pod?: string;
  pods?: readonly string[];
  /** Every one of `pods` the engine knows is a place (a host-network workload's, each on its node). */
  each?: boolean;
  /**
   * No place: why the connection cannot be checked there (a phrase about the end, "is the ClusterIP of
   * ..."). The ClusterIP of a Service with no backend: the connection fails at the Service itself, and
   * no NetworkPolicy decides it.
   */
  none?: string;
  /** The workload of `pod`, and the flow's end that names it: what tells the pod's revision. */
  owner?: Workload;
  endpoint?: FlowEndpoint;
}

/**
 * The labels a pod has now (the controller's pod cache), when it has it: the revision label of a pod
 * newer than the audit's view is read there first.
 */
export type PodLabels = (namespace: string, pod: string) => Readonly<Record<string, string>> | undefined;

/** The labels Kubernetes gives a pod for its template's revision: its ReplicaSet's, or its controller's. */
const REVISION_LABELS = ['pod-template-hash', 'controller-revision-hash'] as const;

/** One peer a flow end stands for. */
export interface FlowEnd {
  peer: Peer;
  /** The port it takes the connection on: a destination's after translation, else the flow's. */
  port: number;
  /**
   * Where the audit checks the connection at it, when not at the flow's own end (a Service backend, an
   * end with neither pod nor address); any of them may be where the connection was. Empty: nowhere, the
   * end cannot be audited.
   */
  at?: Place[];
}

/**
 * The peers the flow end numbered `n` stands for: itself, or a Service's backends (a `selector` peer's
 * workloads among them).
 */
export function flowEnds(identity: Identity, n: number, f: Flow, destination: boolean): FlowEnd[] {
  const backends = identity.serviceBackends(n, f.port, f.protocol);
  if (!backends) {
    const peer = identity.peerAt(n);
    const own = destination ? f.dst : f.src;
    // The ClusterIP of a Service with no backend: kube-proxy or Cilium refuses the connection at the
    // Service, before any pod a policy selects is reached; enforcing the proposal changes nothing for
    // it, so it is not checked (not blocked, not admitted). Once the Service has backends, a flow to it
    // is checked at them.
    if (destination && peer.kind === 'private' && peer.service !== undefined)
      return [{ peer, port: f.port, at: [{ none: unbackedWhy(peer.service) }] }];
    if (placed(own)) {
      // A pod the audit's view of the cluster does not have (created since the last reconcile, or
      // given only by an address the view gives no pod) is checked at another pod of its workload, one
      // of its own revision first, before its address, which that view takes for no pod's. Not a
      // host-network workload's: its pods are their nodes' addresses, which rules admit node by node.
      const w = identity.workloads.get(peer.id);
      if (w === undefined || w.pods.length === 0 || w.hostNetwork) return [{ peer, port: f.port }];
      const place: Place = { namespace: w.namespace, pods: w.pods };
      if (own.pod && own.namespace) {
        place.pod = own.pod;
        place.owner = w;
        place.endpoint = own;
      }
      if (own.ip) place.ip = own.ip;
      return [{ peer, port: f.port, at: [place] }];
    }
    // Neither pod nor address: the peer's own places. The API server's are its endpoint addresses of
    // both families, as the flow gives no address to choose one by.
    return [{ peer, port: f.port, at: placesOf(identity, peer, () => identity.apiserverEndpoints.ips) }];
  }
  const clusterIP = identity.peerAt(n).ip;
  const apiserver = () => apiserverAddressesLike(identity, clusterIP);
  // A backend at the source end is one peer, whatever the ports it takes the Service's connections on
  // (the edge's port is the destination's): once, or the flow would be folded into its edge twice.
  const ends = destination
    ? backends
    : backends.filter((b, i) => backends.findIndex((c) => c.peer === b.peer) === i);
  return ends.map((b) => {
    const peer = identity.peerAt(b.peer);
    return { peer, port: destination ? b.port : f.port, at: placesOf(identity, peer, apiserver) };
  });
}

/** Why a connection to the ClusterIP of Service `service`, which has no backend, is not checked. */
export function unbackedWhy(service: string): string {
  return `is the ClusterIP of Service ${service}, which has no backend: the connection fails at the Service, and no policy decides it`;
}

/**
 * Whether the audit checks a connection from peer `src` to peer `dst` of flow `f`: not a pod's own
 * node's traffic to it (kubelet probes, `reserved: host`), which the proposal writes no rule for and
 * the pod's node is admitted without one, as the offline proof leaves it out. Traffic from another node
 * (`remote-node`) is checked: the proposal writes no rule for it either, and enforced it stays blocked.
 */
export function audited(src: Peer, dst: Peer, f: Flow): boolean {
  return !(src.kind === 'node' && dst.kind === 'workload' && f.src.reserved === 'host');
}

/** Whether the engine can place a flow endpoint by itself: by its pod, or its address. */
function placed(ep: FlowEndpoint): boolean {
  return Boolean((ep.pod && ep.namespace) || ep.ip);
}

/**
 * Where a peer is: a pod of a workload, its address, or for the API server the addresses `apiserver`
 * gives; nowhere for another peer without an address.
 */
function placesOf(identity: Identity, peer: Peer, apiserver: () => readonly string[]): Place[] {
  const w = identity.workloads.get(peer.id);
  // A host-network workload is at each of its pods' nodes: every one the view has, and every node
  // address identity knows for its pods (a pod on a node that joined since the view was built).
  if (w !== undefined && w.hostNetwork)
    return [{ namespace: w.namespace, pods: w.pods, each: true }, ...(w.hostIPs ?? []).map((ip) => ({ ip }))];
  if (w !== undefined) return [{ namespace: w.namespace, pods: w.pods }];
  if (peer.ip) return [{ ip: peer.ip }];
  if (peer.kind === 'kube-apiserver') return apiserver().map((ip) => ({ ip }));
  return [];
}

/** The API server's endpoint addresses of the family of `ip` (IPv4 when it is undefined). */
export function apiserverAddressesLike(identity: Identity, ip: string | undefined): string[] {
  const v6 = ip?.includes(':') ?? false;
  return identity.apiserverEndpoints.ips.filter((a) => a.includes(':') === v6);
}

/**
 * What the audit finds of a connection: `blocked` by the engine, `admitted`, or `unauditable` when
 * not blocked and an end, or one of its places, is one the engine cannot resolve (a workload with no
 * pod it knows, a pod gone and no address, an end with neither).
 */
export type AuditResult = 'blocked' | 'admitted' | 'unauditable';

/**
 * Audits flow `f` from each of `srcAt` (default its own source) to each of `dstAt` (default its own
 * destination): blocked when the engine blocks any pair of places the connection may have been at.
 * `live` gives the labels a pod has now, for one the engine does not know (see `Place`).
 */
export function auditFlow(
  engine: Engine,
  f: Flow,
  srcAt?: readonly Place[],
  dstAt?: readonly Place[],
  live?: PodLabels,
): AuditResult {
  const sources = engineEnds(engine, srcAt ?? [f.src], live);
  const targets = engineEnds(engine, dstAt ?? [f.dst], live);
  for (const s of sources.ends)
    for (const d of targets.ends)
      if (!engine.allows(s, d, f.port, f.protocol as L4Protocol)) return 'blocked';
  return sources.missing !== undefined || targets.missing !== undefined ? 'unauditable' : 'admitted';
}

/** The end of a flow the audit could not place, and why (a phrase about it: "has no pod in ..."). */
export interface Unplaced {
  end: 'source' | 'destination';
  why: string;
}

/**
 * Which end of flow `f`, checked as `auditFlow` checks it, the engine cannot place (the source when
 * both), and why; undefined when it can place both.
 */
export function unplacedEnd(
  engine: Engine,
  f: Flow,
  srcAt?: readonly Place[],
  dstAt?: readonly Place[],
  live?: PodLabels,
): Unplaced | undefined {
  const source = engineEnds(engine, srcAt ?? [f.src], live).missing;
  if (source !== undefined) return { end: 'source', why: source };
  const destination = engineEnds(engine, dstAt ?? [f.dst], live).missing;
  return destination !== undefined ? { end: 'destination', why: destination } : undefined;
}

const NO_POD_IN_VIEW = "has no pod in the audit's view";
const NO_PLACE = 'has neither a pod nor an address';

/** The places the engine resolves, and why it cannot resolve one (or the only one), if it cannot. */
function engineEnds(
  engine: Engine,
  at: readonly Place[],
  live: PodLabels | undefined,
): { ends: ResolvedEnd[]; missing: string | undefined } {
  const ends: ResolvedEnd[] = [];
  let missing = at.length === 0 ? NO_PLACE : undefined;
  for (const p of at) {
    if (p.none !== undefined) {
      missing ??= p.none;
      continue;
    }
    if (p.each === true && p.pods && p.namespace) {
      let any = false;
      for (const pod of p.pods) {
        const e = podEnd(engine, p.namespace, pod);
        if (e !== undefined) {
          ends.push(e);
          any = true;
        }
      }
      if (!any) missing ??= NO_POD_IN_VIEW;
      continue;
    }
    const e = engineEnd(engine, p, live);
    if (typeof e === 'string') missing ??= e;
    else ends.push(e);
  }
  return { ends, missing };
}

/**
 * A place as the engine knows it: its pod, or its address; a pod of its workload it knows (of the
 * pod's own revision first). Else why it cannot be placed.
 */
function engineEnd(engine: Engine, p: Place, live: PodLabels | undefined): ResolvedEnd | string {
  if (p.pod && p.namespace) {
    const e = podEnd(engine, p.namespace, p.pod);
    if (e !== undefined) return e;
    // not a known pod: another pod of its workload, else the IP
  }
  let addr: ResolvedEnd | undefined;
  if (p.ip) {
    try {
      addr = engine.resolveIP(p.ip);
    } catch {
      addr = undefined;
    }
  }
  // An address the view gives a pod is that pod, for a place that names none, when it is a pod of the
  // workload identity found for the address (or no workload was found): addresses are reused, and the
  // view may be older than identity.
  const ours =
    addr?.kind === 'pod' &&
    (p.pods === undefined || (addr.namespace === p.namespace && p.pods.includes(addr.podName ?? '')));
  if (ours && !p.pod && addr !== undefined) return addr;
  if (p.pods && p.namespace) {
    const e = workloadPodEnd(engine, p, live);
    if (e !== undefined) return e;
  }
  // Another workload's pod holds the address in the view: the flow's workload cannot be placed there.
  if (addr?.kind === 'pod' && !ours) return `is at ${p.ip}, another workload's pod in the audit's view`;
  if (addr !== undefined) return addr;
  if (p.ip) return `is at ${p.ip}, which is not an IP address`;
  if (p.pods) return NO_POD_IN_VIEW;
  return p.pod ? `is pod ${p.namespace}/${p.pod}, not in the audit's view, and has no address` : NO_PLACE;
}

/**
 * The pod of `p.pods` the engine knows that stands for `p.pod`: the first, by name, of the revision
 * `p.pod` is of, when it tells one and the engine knows a pod of it; else the first it knows.
 */
function workloadPodEnd(engine: Engine, p: Place, live: PodLabels | undefined): ResolvedEnd | undefined {
  const revision = p.pod ? revisionOf(p, live) : undefined;
  let first: ResolvedEnd | undefined;
  for (const pod of p.pods!) {
    const e = podEnd(engine, p.namespace!, pod);
    if (e === undefined) continue;
    if (revision === undefined || (e.kind === 'pod' && e.labels[revision[0]] === revision[1])) return e;
    first ??= e;
  }
  return first;
}

/**
 * The revision of the pod `p.pod` as a label and its value: its revision label in the labels it has
 * now (`live`), else in the labels the flow gives it; else, for a Deployment's pod, the hash of its
 * ReplicaSet that its name `<deployment>-<hash>-<5>` carries. Undefined when none tells it.
 */
function revisionOf(p: Place, live: PodLabels | undefined): readonly [string, string] | undefined {
  const labels = live?.(p.namespace!, p.pod!);
  if (labels !== undefined)
    for (const l of REVISION_LABELS) if (labels[l] !== undefined) return [l, labels[l]];
  for (const l of REVISION_LABELS) {
    const text = p.endpoint?.labels?.find((x) => x.startsWith(`${l}=`));
    if (text !== undefined) return [l, text.slice(l.length + 1)];
  }
  const w = p.owner;
  if (w?.kind !== 'Deployment' || !p.pod!.startsWith(`${w.name}-`)) return undefined;
  const hash = /^([a-z0-9]+)-[a-z0-9]{5}$/.exec(p.pod!.slice(w.name.length + 1))?.[1];
  return hash !== undefined ? ['pod-template-hash', hash] : undefined;
}

/** The pod `namespace/pod` as the engine knows it, if it does. */
function podEnd(engine: Engine, namespace: string, pod: string): ResolvedEnd | undefined {
  try {
    return engine.resolve({ namespace, pod });
  } catch {
    return undefined;
  }
}
