/**
 * The learned graph of one Segmentation: edges with evidence, bounded by the number of distinct
 * (source, destination, protocol, port) tuples. Persisted as LearnedEdgeSet shards: each edge goes to
 * shard hash(edge) mod N, N a power of two chosen so every shard stays under a byte budget, so adding an
 * edge rewrites one shard, not all of them.
 */
import type { Flow, Protocol, Verdict } from '../flows/types.ts';
import { compareEdges as graphOrder, edgeKey, foldFlow } from '../graph/aggregate.ts';
import { edgeId } from '../graph/build.ts';
import type { EdgeRecord } from '../graph/types.ts';
import type { Identity } from '../identity/index.ts';
import { flowOnlyWorkload } from '../identity/index.ts';
import type { KnownWorkloadKind, Peer, PeerKind, Workload } from '../identity/types.ts';
import { WORKLOAD_KINDS } from '../identity/types.ts';
import { byteOrder } from '../model/order.ts';
import { selectorLabelProblems } from '../model/selectors.ts';
import type { LearnedEdgeSet, PersistedEdge, PersistedWorkload, Segmentation } from './api.ts';
import { API_VERSION, MANAGED_BY_LABEL, MANAGED_BY_VALUE, SEGMENTATION_LABEL } from './api.ts';

/** Upper bound of one LearnedEdgeSet's JSON (the apiserver's limit is about 1.5 MiB). */
export const MAX_SHARD_BYTES = 512 * 1024;
/** Edges per shard aimed for; shards double when exceeded. */
export const TARGET_EDGES_PER_SHARD = 1500;

const DROPPED: Verdict = 'DROPPED';

export { edgeKey };

/** The Peer a graph node id stands for: `ns/Kind/name`, `world:IP`, `node:IP`, `private:IP`, ... */
export function peerFromId(id: string): Peer {
  const colon = id.indexOf(':');
  if (id === 'kube-apiserver') return { id, kind: 'kube-apiserver' };
  if (id === 'unknown') return { id, kind: 'unknown' };
  if (colon > 0) {
    const kind = id.slice(0, colon) as PeerKind;
    if (kind === 'world' || kind === 'node' || kind === 'private')
      return { id, kind, ip: id.slice(colon + 1) };
  }
  return { id, kind: 'workload' };
}

/** Namespace of a workload id (`ns/Kind/name`), undefined for other peers. */
export function namespaceOf(id: string): string | undefined {
  const p = peerFromId(id);
  if (p.kind !== 'workload') return undefined;
  const slash = id.indexOf('/');
  return slash > 0 ? id.slice(0, slash) : undefined;
}

export class EdgeStore {
  readonly #edges = new Map<string, EdgeRecord>();
  /** Bumped on every change that is visible in the persisted form. */
  version = 0;

  get size(): number {
    return this.#edges.size;
  }

  /**
   * Folds a flow into the edge from `src` to `dst`. `shared`: the id of the connection as observed when
   * the flow is folded into other edges too (a connection to a Service with several backends).
   */
  add(
    src: Peer,
    dst: Peer,
    flow: Pick<Flow, 'time' | 'protocol' | 'port' | 'verdict' | 'count' | 'dropReason'>,
    shared?: string,
  ): void {
    foldFlow(this.#edges, src.id, dst.id, flow, shared);
    this.version++;
  }

  /** Removes the edges last seen before `cutoff`, but those `keep` keeps; how many it removed. */
  ageOut(cutoff: number, keep?: (e: EdgeRecord) => boolean): number {
    let n = 0;
    for (const [k, e] of this.#edges) {
      if (e.lastSeen < cutoff && !(keep?.(e) ?? false)) {
        this.#edges.delete(k);
        n++;
      }
    }
    if (n > 0) this.version++;
    return n;
  }

  /** Merges persisted edges (after a restart or leader change): counts and times take the maximum. */
  restore(edges: readonly PersistedEdge[]): void {
    for (const p of edges) {
      const key = edgeKey(p);
      const firstSeen = Date.parse(p.firstSeen);
      const lastSeen = Date.parse(p.lastSeen);
      const dropped = p.dropped ?? 0;
      const existing = this.#edges.get(key);
      if (existing && existing.count >= p.count) continue;
      const verdicts: EdgeRecord['verdicts'] = {};
      if (p.count - dropped > 0) verdicts.FORWARDED = p.count - dropped;
      if (dropped > 0) verdicts[DROPPED] = dropped;
      const edge: EdgeRecord = {
        src: p.src,
        dst: p.dst,
        protocol: p.protocol as Protocol,
        port: p.port,
        count: p.count,
        firstSeen: existing ? Math.min(existing.firstSeen, firstSeen) : firstSeen,
        lastSeen: existing ? Math.max(existing.lastSeen, lastSeen) : lastSeen,
        verdicts,
      };
      if (p.shared !== undefined && Object.keys(p.shared).length > 0) edge.shared = { ...p.shared };
      this.#edges.set(key, edge);
    }
    this.version++;
  }

  /** Adds to `into` each of `ids` that an edge has as its source or destination. */
  peersAmong(ids: ReadonlyMap<string, unknown>, into: Set<string>): void {
    for (const e of this.#edges.values()) {
      if (ids.has(e.src)) into.add(e.src);
      if (ids.has(e.dst)) into.add(e.dst);
    }
  }

  /** Edges in graph order (source, destination, protocol, port), optionally filtered. */
  edges(filter?: (e: EdgeRecord) => boolean): EdgeRecord[] {
    const out = filter ? [...this.#edges.values()].filter(filter) : [...this.#edges.values()];
    return out.sort(compareEdges);
  }

  persisted(): PersistedEdge[] {
    return this.edges().map(toPersisted);
  }
}

/**
 * The learned edges as the cluster is now. An edge learned to the ClusterIP of a Service that had no
 * backend then (`private:<ClusterIP>`: the connection failed at the Service, and no rule can admit
 * the address, as a policy sees a connection only once it is translated to a backend pod) stands,
 * once the Service has backends, for a connection to them: it becomes an edge to each, on the port
 * it takes the connection on, as a flow to the Service now is learned (marked shared by the
 * connection when several, so that it counts once), folded into the edges learned to them since.
 * The offline pipeline does the same with a snapshot taken while the Service has backends: the client
 * calls the Service, and the proposal admits it to the pods behind it, instead of an ipBlock for an
 * address that admits nothing. An edge to a ClusterIP whose Service still has no backend, or to an
 * address that is no Service's, is kept as it is; but while the Service's backends are merely scaled to
 * zero (`Identity.idleBackends`), it stays theirs, so that their rule does not come and go. An edge is
 * placed at its last flow's time, and also at its first's when a Service held the address then that
 * no longer does (deleted, or replaced): its backends keep the credit of the flows before. Pure: the
 * edges given are not changed (the learned
 * evidence stays as it was learned); the result is in graph order.
 */
export function creditServiceEdges(
  identity: Pick<Identity, 'resolveNumber' | 'serviceBackends' | 'peerAt' | 'idleBackends'>,
  edges: readonly EdgeRecord[],
): readonly EdgeRecord[] {
  const out = new Map<string, EdgeRecord>();
  let credited = false;
  const fold = (e: EdgeRecord) => {
    const key = edgeKey(e);
    const had = out.get(key);
    out.set(key, had === undefined ? e : mergedEdge(had, e));
  };
  for (const e of edges) {
    if (!e.dst.startsWith('private:')) {
      fold(e);
      continue;
    }
    const creditAt = (time: number) => {
      const n = identity.resolveNumber(
        { ip: e.dst.slice('private:'.length) },
        time,
        e.port,
        false,
        e.protocol,
      );
      const peer = identity.peerAt(n);
      let backends = identity.serviceBackends(n, e.port, e.protocol);
      // A Service left without backends as they are scaled to zero: theirs still, so that the proposal
      // does not drop their rule until they run again, and take it back then.
      if ((backends === undefined || backends.length === 0) && peer.service !== undefined && peer.ip)
        backends = identity.idleBackends(peer.ip, e.port, e.protocol);
      return { peer, backends: backends ?? [] };
    };
    let { peer, backends } = creditAt(e.lastSeen);
    // The address changed hands within the edge's span (its Service deleted, another created since):
    // the flows before keep their credit, to the backends of the Service that held it at the first.
    if (e.firstSeen < e.lastSeen) {
      const first = creditAt(e.firstSeen);
      if (first.peer !== peer && first.backends.length > 0) {
        if (backends.length === 0) ({ peer, backends } = first);
        else {
          const seen = new Set(backends.map((b) => `${b.peer}/${b.port}`));
          backends = [...backends, ...first.backends.filter((b) => !seen.has(`${b.peer}/${b.port}`))];
        }
      }
    }
    if (backends.length === 0) {
      fold(e);
      continue;
    }
    credited = true;
    // The flows the edge shares already (a connection from a peer that stood for several workloads)
    // are named by that connection on every edge they are folded into; only the others are named by
    // the connection to the Service, so that each flow is counted once.
    let own = e.count;
    for (const v of Object.values(e.shared ?? {})) own -= v;
    const shared =
      backends.length > 1 && own > 0
        ? edgeId({
            src: e.src,
            // Named as the Service's connection is when it has backends (an idle one's too).
            dst:
              peer.service !== undefined
                ? `service:${peer.service}${peer.ip?.includes(':') ? ' (IPv6)' : ''}`
                : peer.id,
            port: e.port,
            protocol: e.protocol,
          })
        : undefined;
    for (const b of backends) {
      const edge: EdgeRecord = {
        ...e,
        dst: identity.peerAt(b.peer).id,
        port: b.port,
        verdicts: { ...e.verdicts },
      };
      if (e.dropReasons !== undefined) edge.dropReasons = { ...e.dropReasons };
      if (e.shared !== undefined || shared !== undefined) edge.shared = { ...e.shared };
      if (shared !== undefined) edge.shared![shared] = (edge.shared![shared] ?? 0) + own;
      fold(edge);
    }
  }
  return credited ? [...out.values()].sort(graphOrder) : edges;
}

/** Two records of one edge as one: counts added, the first and last times of both. New objects. */
function mergedEdge(a: EdgeRecord, b: EdgeRecord): EdgeRecord {
  const add = <T extends string>(x: Partial<Record<T, number>> = {}, y: Partial<Record<T, number>> = {}) => {
    const sum: Partial<Record<T, number>> = { ...x };
    for (const [k, v] of Object.entries(y) as [T, number][]) sum[k] = (sum[k] ?? 0) + v;
    return sum;
  };
  const edge: EdgeRecord = {
    ...a,
    count: a.count + b.count,
    firstSeen: Math.min(a.firstSeen, b.firstSeen),
    lastSeen: Math.max(a.lastSeen, b.lastSeen),
    verdicts: add(a.verdicts, b.verdicts),
  };
  if (a.dropReasons !== undefined || b.dropReasons !== undefined)
    edge.dropReasons = add(a.dropReasons, b.dropReasons) as Record<string, number>;
  if (a.shared !== undefined || b.shared !== undefined)
    edge.shared = add(a.shared, b.shared) as Record<string, number>;
  return edge;
}

export function toPersisted(e: EdgeRecord): PersistedEdge {
  const p: PersistedEdge = {
    src: e.src,
    dst: e.dst,
    protocol: e.protocol,
    port: e.port,
    count: e.count,
    firstSeen: new Date(e.firstSeen).toISOString(),
    lastSeen: new Date(e.lastSeen).toISOString(),
  };
  const dropped = e.verdicts.DROPPED ?? 0;
  if (dropped > 0) p.dropped = dropped;
  if (e.shared !== undefined)
    p.shared = Object.fromEntries(Object.entries(e.shared).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return p;
}

function compareEdges(a: EdgeRecord, b: EdgeRecord): number {
  const c = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);
  return c(a.src, b.src) || c(a.dst, b.dst) || c(a.protocol, b.protocol) || a.port - b.port;
}

/** FNV-1a, 32 bit: a stable shard assignment. */
export function fnv32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export const shardName = (segmentation: string, shard: number): string => `${segmentation}-edges-${shard}`;

/**
 * Splits persisted edges (sorted) into LearnedEdgeSet objects, each under `maxBytes` of JSON. Each
 * object also keeps the workloads known only from flows (`flowOnly`: id → the labels their flows gave)
 * that its edges have, by id. Pure and deterministic: the same edges and workloads always give the same
 * objects.
 */
export function shardEdges(
  seg: Pick<Segmentation, 'metadata'>,
  edges: readonly PersistedEdge[],
  maxBytes = MAX_SHARD_BYTES,
  targetPerShard = TARGET_EDGES_PER_SHARD,
  flowOnly: ReadonlyMap<string, Readonly<Record<string, string>>> = new Map(),
): LearnedEdgeSet[] {
  let shards = 1;
  while (edges.length / shards > targetPerShard) shards *= 2;
  const workloadsOf = (b: readonly PersistedEdge[]): PersistedWorkload[] => {
    if (flowOnly.size === 0) return [];
    const ids = new Set<string>();
    for (const e of b) for (const id of [e.src, e.dst]) if (flowOnly.has(id)) ids.add(id);
    return [...ids].sort(byteOrder).map((id) => ({ id, labels: { ...flowOnly.get(id)! } }));
  };
  for (;;) {
    const buckets: PersistedEdge[][] = Array.from({ length: shards }, () => []);
    for (const e of edges) buckets[fnv32(edgeKey(e)) % shards]!.push(e);
    const objs = buckets.map((b, i) => edgeSetObject(seg, i, shards, b, workloadsOf(b)));
    if (shards >= 1024 || objs.every((o) => JSON.stringify(o).length <= maxBytes)) return objs;
    shards *= 2;
  }
}

export function edgeSetObject(
  seg: Pick<Segmentation, 'metadata'>,
  shard: number,
  shards: number,
  edges: PersistedEdge[],
  workloads: PersistedWorkload[] = [],
): LearnedEdgeSet {
  const name = seg.metadata.name;
  return {
    apiVersion: API_VERSION,
    kind: 'LearnedEdgeSet',
    metadata: {
      name: shardName(name, shard),
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [SEGMENTATION_LABEL]: name },
      ...(seg.metadata.uid
        ? {
            ownerReferences: [
              {
                apiVersion: API_VERSION,
                kind: 'Segmentation',
                name,
                uid: seg.metadata.uid,
                controller: true,
              },
            ],
          }
        : {}),
    },
    spec: { segmentation: name, shard, shards, edges, ...(workloads.length > 0 ? { workloads } : {}) },
  };
}

/**
 * The workloads known only from flows a LearnedEdgeSet keeps (`spec.workloads`), as an identity keeps
 * them (IdentityOptions.observed), and the entries left out, one problem each: an id that is not
 * `namespace/Kind/name` of a kind of WORKLOAD_KINDS, labels that are not a map of strings Kubernetes
 * accepts as labels.
 */
export function restoredWorkloads(entries: readonly unknown[] | undefined): {
  workloads: Workload[];
  problems: string[];
} {
  const workloads: Workload[] = [];
  const problems: string[] = [];
  for (const [i, entry] of (entries ?? []).entries()) {
    const { id, labels } = (entry ?? {}) as Partial<PersistedWorkload>;
    const parts = typeof id === 'string' ? id.split('/') : [];
    const [namespace, kind, name] = parts;
    if (parts.length !== 3 || !namespace || !name || !(WORKLOAD_KINDS as readonly string[]).includes(kind!)) {
      problems.push(
        `workloads[${i}]: id ${JSON.stringify(id)} is not namespace/Kind/name of a kind of ${WORKLOAD_KINDS.join(', ')}`,
      );
      continue;
    }
    if (
      typeof labels !== 'object' ||
      labels === null ||
      Array.isArray(labels) ||
      Object.values(labels).some((v) => typeof v !== 'string')
    ) {
      problems.push(`workloads[${i}] (${id}): labels must be a map of strings`);
      continue;
    }
    const bad = selectorLabelProblems({ matchLabels: labels }).map((p) => p.replace(/^matchLabels: /, ''));
    if (bad.length > 0) {
      problems.push(`workloads[${i}] (${id}): labels: ${bad.join('; ')}`);
      continue;
    }
    workloads.push(flowOnlyWorkload(namespace, kind as KnownWorkloadKind, name, labels));
  }
  return { workloads, problems };
}
