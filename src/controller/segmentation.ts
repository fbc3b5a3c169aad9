/**
 * The Segmentation controller: the imperative shell around the pure core. Level-based: a reconcile
 * re-reads the Segmentation and the caches, computes the desired state with the same functions the
 * offline pipeline uses (identity → graph → segments → proposal), plans actions with `plan.ts` and
 * `decide.ts`, performs them, and writes status, conditions and Events.
 *
 * Flows reach it through `ingest` (leader only): each flow is resolved once and added to the learned
 * graph of every Segmentation whose namespaces it touches; in Audit and Enforce mode it is also replayed
 * against the frozen proposal with the NetworkPolicy semantics engine.
 */
import { isoSeconds } from '../model/time.ts';
import { ISOLATION_LABEL, QUARANTINE_LABEL } from '../isolate/api.ts';
import type { Flow } from '../flows/types.ts';
import { edgeId } from '../graph/build.ts';
import type { EdgeRecord } from '../graph/types.ts';
import type { Identity } from '../identity/index.ts';
import { buildIdentity } from '../identity/index.ts';
import type { Workload } from '../identity/types.ts';
import type { KObject, NetworkPolicy } from '../model/k8s.ts';
import { matchesSelector } from '../model/selectors.ts';
import { analyse } from '../pipeline.ts';
import type { Analysis } from '../pipeline.ts';
import { Histogram } from '../telemetry/prom.ts';
import { engineFromSnapshot } from '../verify/engine.ts';
import type { Engine } from '../verify/engine.ts';
import type { EngineOptions } from '../verify/types.ts';
import type {
  Condition,
  LearnedEdgeSet,
  Mode,
  ProposedNetworkPolicy,
  Segmentation,
  SegmentationSpec,
  SegmentationStatus,
  SegmentStatus,
} from './api.ts';
import { API_VERSION, FINALIZER, formatDuration, parseSegmentationSpec, SEGMENTATION_LABEL } from './api.ts';
import type { ClusterCache } from './cache.ts';
import type { AuditState } from './decide.ts';
import { cronJobsNotRunSince, notRunWait } from '../policy/cronjobs.ts';
import {
  auditVerdict,
  notRunNote,
  enforceGate,
  bucketOf,
  coverageMessage,
  namespaceConflicts,
  namespacesJoined,
  noNamespacesAnnouncement,
  modeDeclaredBy,
  promotionDueMessage,
  promotionWaitingMessage,
  promotionTarget,
  modeWaitMessage,
  modeWaitNote,
  findCondition,
  pruneBuckets,
  selectNamespaces,
  namespacesLeftOut,
  setCondition,
  transitionEvents,
  unauditableAnnouncement,
  unobservedAnnouncement,
  unobservedMessage,
  wasEnforcing,
  keepsAgedEdges,
  keptEdgesNote,
  analysisInputs,
  deferredChangeMessage,
  deferredChangeNote,
  proposalInputsChanged,
  proposalInputsOf,
  recordedProposalInputs,
  withInputs,
  wouldBlockAnnouncement,
  auditKey,
} from './decide.ts';
import {
  creditServiceEdges,
  EdgeStore,
  edgeKey,
  MAX_SHARD_BYTES,
  namespaceOf,
  peerFromId,
  restoredWorkloads,
  shardEdges,
  TARGET_EDGES_PER_SHARD,
} from './edges.ts';
import type { Place, PodLabels, Unplaced } from './ends.ts';
import { auditFlow, audited, flowEnds, unplacedEnd } from './ends.ts';
import type { EventSink } from './events.ts';
import type { Informer } from './informer.ts';
import type { KubeClient } from './kube.ts';
import { isConflict, objectPath, resourcePath } from './kube.ts';
import type { Logger } from './log.ts';
import type { Action } from './plan.ts';
import { isDefaultDeny } from '../policy/render.ts';
import { DEFAULT_DENY_NAME, SEGMENT_POLICY_LABEL, WORKLOAD_ANNOTATION } from '../policy/index.ts';
import { communityMembership, scopeSegments } from '../segments/index.ts';
import { canonicalSpec, conflictMessage, driftedFields, enforcementPhases, isOurs, objKey } from './plan.ts';
import { byteOrder, sortedJson } from '../model/order.ts';
import { analysisKey, Memo, ReconcileMemo } from './memo.ts';
import { Condition as C, Phase, Reason } from './reasons.ts';
import type { Result } from './workqueue.ts';
import { WorkQueue } from './workqueue.ts';

export interface SegmentationControllerOptions {
  /** Level-based resync of every Segmentation; default 10 s. */
  resyncMs?: number;
  /** Least time between two writes of the learned graph (LearnedEdgeSets) and of evidence; default 30 s. */
  persistIntervalMs?: number;
  /** Least time between two identity rebuilds on the flow path; default 2 s. */
  identityRefreshMs?: number;
  /**
   * The namespace this controller runs in (its webhooks, flow push endpoint and page): no Segmentation
   * covers it unless its selector names it (`selectNamespaces`), like the Kubernetes system namespaces.
   * Undefined: only the system namespaces are set apart.
   */
  ownNamespace?: string;
  now?: () => number;
  /**
   * The semantics the cluster's network plugin implements, for the audit's engine (whether ipBlocks
   * match pod IPs, ...: `microseg controller --ipblock-pods` and the others); default the engine's.
   */
  engine?: EngineOptions;
}

export interface SegmentationMetrics {
  flowsIngested: number;
  flowsNotLeader: number;
  flowsUnmatched: number;
  reconciles: number;
  reconcileErrors: number;
  reconcileSeconds: Histogram;
  applies: Record<string, number>;
  edgeWrites: number;
  wouldBlock: number;
  /** Flows the audit could not check (an end it cannot place) and did not find blocked otherwise. */
  unauditable: number;
}

interface SegState {
  uid: string;
  edges: EdgeStore;
  restored: boolean;
  namespaces: Set<string>;
  spec?: SegmentationSpec;
  /** Mode the flow path acts in (set by reconcile). */
  mode: Mode;
  flows: number;
  audit?: AuditState;
  /**
   * The hash of the frozen proposal the audit is of (see `audit`): when the proposal changes, what was
   * audited was another proposal, and the audit starts again. Undefined when not known (a status
   * written without `proposal.hash`).
   */
  auditedHash?: string;
  /** Changes made to `audit` by the flow path (a would-be-blocked or unauditable flow counted). */
  auditChanges: number;
  /**
   * Would-be-blocked flows counted by the flow path: a reconcile promotes only if none was counted
   * since it decided (its verdict does not hold them).
   */
  blockedChanges: number;
  /**
   * How many of `auditChanges` the status written holds (each status write records the count it was
   * built with): what a crash would lose is the difference (see `auditWritten`).
   */
  auditWritten: number;
  engine?: { key: string; engine: Engine };
  persistedVersion: number;
  lastPersistAt: number;
  persistedShards: Map<string, string>;
  lastEvidenceAt: number;
  lastEvidenceRefreshAt: number;
  /**
   * `shown`: the analysis as the page's API serves it, its segments cut down to the workloads the
   * Segmentation covers and those its graph draws (`scopeSegments`): the segmentation is computed over
   * every workload of the cluster, and a namespace no Segmentation covers is not the page's to list.
   */
  analysis?: { key: string; identity: Identity; edges: number; analysis: Analysis; shown: Analysis };
  /**
   * The community segment each workload was last in (workload id → name), for the next analysis to
   * keep the names of (SegmentOptions.previous): first the segments the proposal in place names, then
   * each analysis's; only of workloads the cluster still has (the identity's).
   */
  segmentNames?: Map<string, string>;
  /** The pure steps after the analysis, not repeated while their inputs are the same objects. */
  memo: ReconcileMemo;
  /** The latest flow the audit could not check, for the `Unauditable` Event (not kept across terms). */
  unauditableSample?: UnauditableSample;
  /** The count of unauditable flows the last `Unauditable` Event gave (see `unauditableAnnouncement`). */
  unauditableAnnounced?: number;
  /** The count of would-be-blocked flows the last `WouldBlockFlows` Event gave (`wouldBlockAnnouncement`). */
  wouldBlockAnnounced?: number;
  /**
   * The blocked connections (source, destination, protocol/port) announced since the count was last
   * zero, at most ANNOUNCED_MAX (not kept across terms), and the latest one blocked that is not.
   */
  announcedBlocked?: Set<string>;
  newBlocked?: { key: string; source: string; destination: string; protocol: string; port: number };
  /** The `PromotionDue` Event last recorded, while the promotion it names is still due and not made. */
  promotionDue?: string;
  /** The `PromotionWaiting` Event last recorded, while the promotion it names still waits. */
  promotionWaiting?: string;
  /** The `PromotionWaiting` Event of a promotion that waits for a mode entered since (a rollback). */
  modeWaiting?: string;
  /** The change of the proposal's inputs the last `SpecChangeDeferred` Event was of, while it waits. */
  deferredChange?: string;
  /** When each namespace that joined after the first reconcile joined (see `namespacesJoined`). */
  namespacesJoined?: Record<string, string>;
}

/** Blocked connections remembered as announced per Segmentation; beyond it, only doubling counts. */
const ANNOUNCED_MAX = 1000;

/** A flow the audit could not check: the peers of its ends, and the end it could not place and why. */
interface UnauditableSample extends Unplaced {
  time: number;
  source: string;
  destination: string;
  protocol: string;
  port: number;
}

const PASSING = new Set(['FORWARDED', 'AUDIT', 'REDIRECTED', 'TRACED', 'TRANSLATED', 'UNKNOWN']);
const L4 = new Set(['TCP', 'UDP', 'SCTP']);
const MAX_SEGMENT_MEMBERS = 100;
/** Writes in flight at once when applying or deleting many objects. */
const WRITE_CONCURRENCY = 16;
/** Up to this many actions get one Event each; more get one summary Event per kind of action. */
const EVENTS_PER_ACTION_LIMIT = 20;

/** Count and time updates of evidence are written every this many persist intervals. */
const EVIDENCE_REFRESH = 10;

/** Evidence without its counters and times: what changes only when a peer or port is added or removed. */
function evidenceShape(status: ProposedNetworkPolicy['status']): string {
  return sortedJson({
    rules: status?.rules,
    evidence: (status?.evidence ?? []).map((e) => [e.direction, e.peer, e.protocol, e.port]),
    truncated: status?.evidenceTruncated,
    owned: status?.owned,
  });
}

/** Runs `f` over `items` with at most `n` in flight. */
async function pool<T>(items: readonly T[], n: number, f: (x: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) await f(items[next++]!);
    }),
  );
}

/**
 * One way a flow may be audited: as the connection from `srcId` to `dstId`, checked from `srcAt` to
 * `dstAt` (each, when undefined, the flow's own end; see `FlowEnd.at`).
 */
interface AuditCandidate {
  flow: Flow;
  srcId: string;
  dstId: string;
  srcAt: readonly Place[] | undefined;
  dstAt: readonly Place[] | undefined;
}

export class SegmentationController {
  readonly metrics: SegmentationMetrics = {
    flowsIngested: 0,
    flowsNotLeader: 0,
    flowsUnmatched: 0,
    reconciles: 0,
    reconcileErrors: 0,
    reconcileSeconds: new Histogram([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]),
    applies: {},
    edgeWrites: 0,
    wouldBlock: 0,
    unauditable: 0,
  };
  /** The work queue of Segmentation names; a fresh one each time this replica starts leading. */
  queue = new WorkQueue();
  readonly #client: KubeClient;
  readonly #cache: ClusterCache;
  readonly #segmentations: Informer<Segmentation>;
  readonly #proposals: Informer<ProposedNetworkPolicy>;
  readonly #edgeSets: Informer<LearnedEdgeSet>;
  readonly #events: EventSink;
  readonly #log: Logger;
  readonly #opts: Required<Omit<SegmentationControllerOptions, 'ownNamespace'>>;
  readonly #ownNamespace: string | undefined;
  /** The labels a pod has now, from the pod cache: the audit reads a new pod's revision there. */
  readonly #podLabels: PodLabels = (namespace, pod) =>
    this.#cache.pods.get(`${namespace}/${pod}`)?.metadata.labels;
  #states = new Map<string, SegState>();
  /**
   * Per object repaired (`<kind> <namespace>/<name>`), the resourceVersion it differed at: the
   * informer's cache may still hold that version at the next reconcile, which is not drift again.
   */
  readonly #repairedFrom = new Map<string, string>();
  #identity: { version: number; at: number; identity: Identity } | undefined;
  /**
   * Workloads known only from flows that restored LearnedEdgeSets keep (restarted, or a new leader), by
   * id: the identity is built again with them at its next use, and keeps them from then on (#flowOnly).
   */
  readonly #restoredFlowOnly = new Map<string, Workload>();
  /** Namespaces where a pod carries the quarantine label, by the cache's version (see `#quarantined`). */
  readonly #quarantinedMemo = new Memo<Set<string>>();
  #leading = false;
  /** Segmentations reconciled at least once in this term (their state says whether the graph was restored). */
  #reconciled = new Set<string>();
  /**
   * Per Segmentation found invalid in this term (its spec, or a namespace another one covers): the uid
   * and generation it was invalid at (`invalidKey`). It has no learned graph, and the API waits for none.
   */
  #invalid = new Map<string, string>();
  /** Per Segmentation covering no namespace, the uid/generation its `NoNamespaces` Event was for. */
  readonly #noNamespacesAnnounced = new Map<string, string>();
  /**
   * Per Segmentation name: the status this replica wrote last, the uid it went to, and the
   * resourceVersions known to come before that write (the object the status was computed from, and
   * the finalizer patch of the same reconcile). While the cache still holds one of those versions it
   * has not seen the write, and the status written stands in for the cached one: compared with the
   * stale status, a reconcile would announce the same condition transitions again (the first
   * reconcile's finalizer patch wakes the next one before the status reaches the cache).
   */
  readonly #written = new Map<
    string,
    { uid: string | undefined; before: string[]; after: string; status: SegmentationStatus }
  >();
  #worker: Promise<void> | undefined;

  constructor(deps: {
    client: KubeClient;
    cache: ClusterCache;
    segmentations: Informer<Segmentation>;
    proposals: Informer<ProposedNetworkPolicy>;
    edgeSets: Informer<LearnedEdgeSet>;
    events: EventSink;
    log: Logger;
    options?: SegmentationControllerOptions;
  }) {
    this.#client = deps.client;
    this.#cache = deps.cache;
    this.#segmentations = deps.segmentations;
    this.#proposals = deps.proposals;
    this.#edgeSets = deps.edgeSets;
    this.#events = deps.events;
    this.#log = deps.log;
    this.#opts = {
      resyncMs: 10_000,
      persistIntervalMs: 30_000,
      identityRefreshMs: 2_000,
      now: Date.now,
      ...deps.options,
      engine: deps.options?.engine ?? {},
    };
    this.#ownNamespace = deps.options?.ownNamespace;
    this.#segmentations.on((_t, seg) => this.queue.add(seg.metadata.name));
    const byLabel = (
      _t: string,
      o: { metadata: { name: string; namespace?: string; labels?: Record<string, string> } },
    ) => {
      const s = o.metadata.labels?.[SEGMENTATION_LABEL];
      if (s) {
        this.queue.add(s);
        return;
      }
      // One that names no Segmentation and holds a name microseg proposes (`microseg-…`; not an
      // Isolation's): a name conflict begins or ends, so every Segmentation whose namespaces hold it looks
      // again now, not at its next resync, and a default deny held back for it comes back once it is gone.
      // Other tools' policies wait for the resync: their churn (or an incident's quarantines) would
      // otherwise reconcile every Segmentation of their namespaces at each change.
      const ns = o.metadata.namespace;
      if (ns === undefined || !o.metadata.name.startsWith('microseg-')) return;
      if (o.metadata.labels?.[ISOLATION_LABEL] !== undefined) return;
      for (const [name, st] of this.#states) if (st.namespaces.has(ns)) this.queue.add(name);
    };
    this.#cache.networkPolicies.on(byLabel);
    this.#proposals.on(byLabel);
    const everyOne = () => {
      for (const s of this.#segmentations.list()) this.queue.add(s.metadata.name);
    };
    this.#cache.namespaces.on(everyOne);
    // A cluster-wide policy created, changed or deleted: every audit's engine is built again now (at
    // the reconcile), not at the next resync, so flows are audited against what the cluster enforces.
    this.#cache.clusterPolicies?.on(everyOne);
  }

  get leading(): boolean {
    return this.#leading;
  }

  /**
   * The current analysis of every Segmentation, in name order (for the web page), its segments those of
   * the workloads it covers and its graph draws. A state kept for a Segmentation of the same name that is
   * gone (deleted and created again, the new one not reconciled yet) is not the current Segmentation's
   * and gives nothing.
   */
  analyses(): Analysis[] {
    return [...this.#states.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .flatMap(([name, s]) => (s.analysis && this.#current(name, s) ? [s.analysis.shown] : []));
  }

  /** The current analysis of one Segmentation, while this replica leads and has one for it (see `analyses`). */
  analysisOf(name: string): Analysis | undefined {
    const st = this.#states.get(name);
    return st && this.#current(name, st) ? st.analysis?.analysis : undefined;
  }

  /** Whether `st` is the state of the Segmentation named `name` the informer holds now (the same uid). */
  #current(name: string, st: SegState): boolean {
    const seg = this.#segmentations.get(name);
    return seg !== undefined && st.uid === (seg.metadata.uid ?? '');
  }

  /**
   * Segmentations (of `names`, or all the informer holds) whose learned graph this leader does not hold:
   * no state restored in this leadership term for that very Segmentation (its uid). That is one not yet
   * reconciled (a new leader has not restored the learned graphs and analyses yet; a Segmentation just
   * created, or deleted and created again under the same name, whose predecessor's state is not its
   * own), or one whose reconciles failed before its graph was restored (e.g. its finalizer could not be
   * added, or its LearnedEdgeSets could not be listed; they are retried). A new Segmentation is restored
   * (empty) once its reconcile has listed its LearnedEdgeSets and found none. An invalid Segmentation
   * (as reconciled at its present generation) has no graph to restore and is not listed, nor is one
   * being deleted (it gives nothing). Empty when not leading (nothing is restored then).
   */
  unrestored(names?: readonly string[]): string[] {
    if (!this.#leading) return [];
    const all = names ?? this.#segmentations.list().map((s) => s.metadata.name);
    return all
      .filter((n) => {
        const seg = this.#segmentations.get(n);
        if (seg === undefined || seg.metadata.deletionTimestamp) return false;
        const st = this.#states.get(n);
        if (st !== undefined && this.#current(n, st)) return !st.restored;
        return this.#invalid.get(n) !== invalidKey(seg);
      })
      .sort();
  }

  /** Starts reconciling (call when elected). State is rebuilt from the API: nothing is assumed. */
  startLeading(): void {
    if (this.#leading) return;
    this.#leading = true;
    this.#states = new Map();
    this.#reconciled = new Set();
    this.#invalid = new Map();
    // What is kept across terms, of Segmentations deleted while another replica led (this one's queue
    // was stopped: no reconcile of theirs found them gone and dropped it).
    for (const name of [...this.#written.keys(), ...this.#noNamespacesAnnounced.keys()])
      if (this.#segmentations.get(name) === undefined) {
        this.#written.delete(name);
        this.#noNamespacesAnnounced.delete(name);
      }
    this.queue = new WorkQueue();
    this.#worker = this.queue.run(
      (key) => this.#timedReconcile(key),
      (key, err) => this.#log.error('reconcile failed', { segmentation: key, error: err.message }),
    );
    for (const s of this.#segmentations.list()) this.queue.add(s.metadata.name);
  }

  /**
   * Stops reconciling; with `persist`, writes the learned graphs and the audits first (graceful
   * shutdown). True when `persist` left everything held in the API: every learned graph written, and
   * status holding every audit result (the position reached may then be committed).
   */
  async stopLeading(opts: { persist?: boolean } = {}): Promise<boolean> {
    if (!this.#leading) return false;
    this.#leading = false;
    this.queue.stop();
    const states = this.#states;
    await this.#worker;
    let held = opts.persist === true;
    if (opts.persist) {
      for (const [name, st] of states) {
        const seg = this.#segmentations.get(name);
        if (!seg || !st.restored) continue;
        await this.#persist(seg, st, true).catch((err: unknown) => {
          held = false;
          this.#log.warn('could not persist learned edges', { segmentation: name, error: errText(err) });
        });
        await this.#persistAudit(seg, st).catch((err: unknown) =>
          this.#log.warn('could not persist the audit', { segmentation: name, error: errText(err) }),
        );
        if (st.auditWritten < st.auditChanges) held = false;
      }
    }
    // A new term may have started meanwhile (startLeading replaces the map); leave its state alone.
    if (!this.#leading) this.#states.clear();
    return held;
  }

  /**
   * The audit results held in memory now, per Segmentation (`auditKey`): noted with a Hubble position,
   * every flow acknowledged up to it was audited by then (see `commitDecision`).
   */
  auditMark(): Map<string, number> {
    return new Map([...this.#states].map(([name, st]) => [auditKey(name, st.uid), st.auditChanges]));
  }

  /**
   * How many of those audit results the status written holds, per Segmentation held (`auditKey`);
   * undefined when not leading (nothing may be committed then).
   */
  auditWritten(): Map<string, number> | undefined {
    if (!this.#leading) return undefined;
    return new Map([...this.#states].map(([name, st]) => [auditKey(name, st.uid), st.auditWritten]));
  }

  /** Persists every learned graph now; true when all writes succeeded. */
  async persistAll(): Promise<boolean> {
    if (!this.#leading) return false;
    let ok = true;
    for (const [name, st] of this.#states) {
      const seg = this.#segmentations.get(name);
      if (!seg || !st.restored) continue;
      try {
        await this.#persist(seg, st, true);
      } catch (err) {
        ok = false;
        this.#log.warn('could not persist learned edges', { segmentation: name, error: errText(err) });
      }
    }
    return ok;
  }

  /** Learned edges of a Segmentation held in memory (for tests and the bench). */
  edgeCount(name: string): number {
    return this.#states.get(name)?.edges.size ?? 0;
  }

  /** Workloads whose segment name a Segmentation keeps for its next analysis (for tests). */
  segmentNamesKept(name: string): number {
    return this.#states.get(name)?.segmentNames?.size ?? 0;
  }

  /** How many entries each map kept across reconciles holds (for tests). */
  retained(): {
    states: number;
    reconciled: number;
    invalid: number;
    noNamespacesAnnounced: number;
    repairedFrom: number;
    written: number;
  } {
    return {
      states: this.#states.size,
      reconciled: this.#reconciled.size,
      invalid: this.#invalid.size,
      noNamespacesAnnounced: this.#noNamespacesAnnounced.size,
      repairedFrom: this.#repairedFrom.size,
      written: this.#written.size,
    };
  }

  /** Learned edges per Segmentation held in memory, for /metrics. */
  edgeCounts(): [string, number][] {
    return [...this.#states]
      .map(([n, st]) => [n, st.edges.size] as [string, number])
      .sort((a, b) => (a[0] < b[0] ? -1 : 1));
  }

  /**
   * The identity the flow path places flows with (built from the informer caches, recently deleted pods
   * included, and the Services deleted within the longest learning.ruleExpiry, and rebuilt at most every
   * identityRefreshMs): for the API's audit of a policy set.
   */
  identity(): Identity {
    return this.#currentIdentity();
  }

  // ---------- the flow path ----------

  #currentIdentity(force = false): Identity {
    const now = Date.now();
    const v = this.#cache.version;
    if (
      !this.#identity ||
      this.#restoredFlowOnly.size > 0 ||
      (this.#identity.version !== v && (force || now - this.#identity.at >= this.#opts.identityRefreshMs))
    ) {
      const observed = this.#flowOnly(this.#identity?.identity);
      this.#restoredFlowOnly.clear();
      this.#identity = {
        version: v,
        at: now,
        // Deleted Services are kept as long as an edge learned before their deletion may live.
        identity: buildIdentity(
          this.#cache.snapshot({
            withDeletedPods: true,
            deletedServicesFor: Math.max(
              0,
              ...[...this.#states.values()].map((st) => st.spec?.learning.ruleExpiryMs ?? 0),
            ),
          }),
          observed.length > 0 ? { observed } : {},
        ),
      };
    }
    return this.#identity.identity;
  }

  /**
   * The workloads known only from flows (a pod the cluster does not have, kept as a bare pod) of
   * `identity`, and those restored LearnedEdgeSets keep, that a learned edge of a Segmentation still
   * has, by id: the identity built next keeps them (unless the cluster has them now), so that a change
   * of another pod, or a restart, does not take them, and their edges, out of the analysis. One no edge
   * has any more is left behind: it leaves with its last edge.
   */
  #flowOnly(identity: Identity | undefined): Workload[] {
    const flowOnly = new Map(this.#restoredFlowOnly);
    for (const w of identity?.workloads.values() ?? []) if (w.observedOnly) flowOnly.set(w.id, w);
    if (flowOnly.size === 0) return [];
    const had = new Set<string>();
    for (const st of this.#states.values()) st.edges.peersAmong(flowOnly, had);
    return [...had].sort(byteOrder).map((id) => flowOnly.get(id)!);
  }

  /**
   * Resolves once every Segmentation has been reconciled in this term, so that the learned graphs a
   * previous leader persisted are restored before new flows are counted (flows ingested earlier would
   * be dropped, and a stream position acknowledged past them would lose them). Also resolves when
   * leadership ends or `signal` aborts: true when the graphs are restored (this replica leading).
   */
  async whenRestored(signal?: AbortSignal): Promise<boolean> {
    const restored = () =>
      this.#leading && this.#segmentations.list().every((s) => this.#reconciled.has(s.metadata.name));
    while (this.#leading && !signal?.aborted) {
      if (restored()) return true;
      await new Promise((r) => setTimeout(r, 20));
    }
    return restored();
  }

  /** Ingests flows into every active Segmentation they touch. Only the leader learns. */
  ingest(flows: readonly Flow[]): void {
    if (!this.#leading) {
      this.metrics.flowsNotLeader += flows.length;
      return;
    }
    const active = [...this.#states.values()].filter((s) => s.restored && s.spec && s.namespaces.size > 0);
    if (active.length === 0) {
      this.metrics.flowsUnmatched += flows.length;
      return;
    }
    const identity = this.#currentIdentity();
    for (const f of flows) {
      this.metrics.flowsIngested++;
      // A Service's ClusterIP stands for its backends, each on the port it takes the connection on. The
      // protocol names the host-network workload a node address's port means (a TCP and a UDP one may
      // share the port), as in the aggregator.
      const s = identity.resolveNumber(f.src, f.time, undefined, f.timeless);
      const d = identity.resolveNumber(f.dst, f.time, f.port, f.timeless, f.protocol);
      const sources = flowEnds(identity, s, f, false);
      const targets = flowEnds(identity, d, f, true);
      const fanned = sources.length > 1 || targets.length > 1;
      // Folded into several edges, the flow is marked shared on each, by the connection as observed,
      // so that the graph's counts can count it once.
      const shared = fanned
        ? edgeId({
            src: identity.peerAt(s).id,
            dst: identity.peerAt(d).id,
            port: f.port,
            protocol: f.protocol,
          })
        : undefined;
      // Each Segmentation counts the flow, and audits it, once however many backends it reached: the
      // connection went to one of them, which one is not known, so it would be blocked if the proposal
      // blocks it at any of them (the first such backend is the one reported).
      const candidates = fanned ? new Map<SegState, AuditCandidate[]>() : undefined;
      let matched = false;
      for (const { peer: src, at: srcAt } of sources) {
        const sns = namespaceOf(src.id);
        for (const { peer: dst, port, at: dstAt } of targets) {
          const dns = namespaceOf(dst.id);
          const flow = port === f.port ? f : { ...f, port };
          for (const st of active) {
            if (!((sns && st.namespaces.has(sns)) || (dns && st.namespaces.has(dns)))) continue;
            matched = true;
            st.edges.add(src, dst, flow, shared);
            const auditing =
              st.mode !== 'Learn' &&
              st.audit !== undefined &&
              st.engine !== undefined &&
              audited(src, dst, f);
            if (candidates === undefined) {
              st.flows += f.count ?? 1;
              if (auditing) this.#audit(st, [{ flow, srcId: src.id, dstId: dst.id, srcAt, dstAt }]);
              continue;
            }
            let list = candidates.get(st);
            if (list === undefined) {
              candidates.set(st, (list = []));
              st.flows += f.count ?? 1;
            }
            if (auditing) list.push({ flow, srcId: src.id, dstId: dst.id, srcAt, dstAt });
          }
        }
      }
      for (const [st, list] of candidates ?? []) if (list.length > 0) this.#audit(st, list);
      if (!matched) this.metrics.flowsUnmatched++;
    }
  }

  /**
   * Checks a flow against the proposal in audit, as each of `candidates` (one, or one per pair of the
   * peers its ends stand for in the Segmentation's namespaces: a Service's backends, the workloads a
   * selector selects): it would be blocked when the proposal blocks it as any of them, and counts once.
   * A candidate's `srcAt` and `dstAt` are where its ends are checked when not at the flow's own (a pod
   * of a workload, an address, each endpoint address of the API server): policies see a connection to
   * a ClusterIP after translation, and an end given by workload or labels at one of its pods. A flow
   * not found blocked that has a candidate the engine cannot place an end of is counted as unauditable.
   */
  #audit(st: SegState, candidates: readonly AuditCandidate[]): void {
    let blocked: AuditCandidate | undefined;
    let unauditable: AuditCandidate | undefined;
    for (const c of candidates) {
      if (!PASSING.has(c.flow.verdict) || !L4.has(c.flow.protocol)) continue;
      const r = auditFlow(st.engine!.engine, c.flow, c.srcAt, c.dstAt, this.#podLabels);
      if (r === 'blocked') {
        blocked = c;
        break;
      }
      if (r === 'unauditable') unauditable ??= c;
    }
    const audit = st.audit!;
    const windowMs = st.spec?.audit.windowMs ?? 60_000;
    if (blocked === undefined) {
      if (unauditable !== undefined) {
        const { time, count = 1 } = candidates[0]!.flow;
        const m = bucketOf(time, windowMs);
        audit.unauditable.set(m, (audit.unauditable.get(m) ?? 0) + count);
        st.auditChanges++;
        this.metrics.unauditable += count;
        this.#sampleUnauditable(st, unauditable);
      }
      return;
    }
    const { flow: f, srcId, dstId } = blocked;
    const key = `${srcId} ${dstId} ${f.protocol}/${f.port}`;
    if (st.announcedBlocked?.has(key) !== true && (st.announcedBlocked?.size ?? 0) < ANNOUNCED_MAX)
      st.newBlocked = { key, source: srcId, destination: dstId, protocol: f.protocol, port: f.port };
    const n = f.count ?? 1;
    const m = bucketOf(f.time, windowMs);
    audit.buckets.set(m, (audit.buckets.get(m) ?? 0) + n);
    st.auditChanges++;
    st.blockedChanges++;
    if (!audit.lastBlocked || f.time > audit.lastBlocked) audit.lastBlocked = f.time;
    this.metrics.wouldBlock += n;
    const max = st.spec?.audit.samples ?? 0;
    if (max > 0) {
      audit.samples.push({
        time: new Date(f.time).toISOString(),
        source: srcId,
        destination: dstId,
        protocol: f.protocol,
        port: f.port,
        count: n,
      });
      if (audit.samples.length > max) audit.samples.splice(0, audit.samples.length - max);
    }
  }

  /** Keeps `c` as the Segmentation's latest unauditable flow, with the end it could not place. */
  #sampleUnauditable(st: SegState, c: AuditCandidate): void {
    if (st.unauditableSample !== undefined && c.flow.time < st.unauditableSample.time) return;
    const unplaced = unplacedEnd(st.engine!.engine, c.flow, c.srcAt, c.dstAt, this.#podLabels);
    if (unplaced === undefined) return;
    st.unauditableSample = {
      time: c.flow.time,
      source: c.srcId,
      destination: c.dstId,
      protocol: c.flow.protocol,
      port: c.flow.port,
      ...unplaced,
    };
  }

  // ---------- reconcile ----------

  async #timedReconcile(name: string): Promise<Result> {
    const t0 = performance.now();
    this.metrics.reconciles++;
    try {
      const r = await this.reconcile(name);
      if (r.error) {
        this.metrics.reconcileErrors++;
        this.#reconcileFailed(name, r.error);
      }
      return r;
    } catch (err) {
      this.metrics.reconcileErrors++;
      this.#reconcileFailed(name, err);
      throw err;
    } finally {
      // Only Segmentations that exist are waited for (see whenRestored): the name of one gone (its
      // last reconcile found it deleted) is not kept for the rest of the term.
      if (this.#segmentations.get(name) !== undefined) this.#reconciled.add(name);
      else this.#reconciled.delete(name);
      this.metrics.reconcileSeconds.observe((performance.now() - t0) / 1000);
    }
  }

  /**
   * A reconcile that failed (its learned graph could not be listed, its status or finalizer not written,
   * a deleted one's policies not removed) wrote no status that says so: a Warning Event on the
   * Segmentation does, at each retry (repeats are counted). Not for a conflict (409): the object changed
   * meanwhile, and the retry reads the new version.
   */
  #reconcileFailed(name: string, err: unknown): void {
    if (isConflict(err)) return;
    const seg = this.#segmentations.get(name);
    if (seg === undefined) return;
    this.#events.record(
      seg,
      'Warning',
      Reason.ReconcileFailed,
      `reconcile failed, retried with backoff: ${errText(err)}`,
    );
  }

  async reconcile(name: string): Promise<Result> {
    this.#forgetRepairsOfGone();
    const cached = this.#segmentations.get(name);
    const seg = this.#withWrittenStatus(name, cached);
    if (!seg) {
      this.#states.delete(name);
      this.#invalid.delete(name);
      this.#noNamespacesAnnounced.delete(name);
      return {};
    }
    if (seg.metadata.deletionTimestamp) return this.#cleanup(seg);
    // A status written on top of a status this replica wrote before (the cache has seen neither): the
    // versions before that write, and the write's own, precede this one too.
    const prior = seg !== cached ? this.#written.get(name) : undefined;
    const versions = [...(prior ? [...prior.before, prior.after] : []), seg.metadata.resourceVersion ?? ''];
    if (!(seg.metadata.finalizers ?? []).includes(FINALIZER)) {
      const patched = await this.#client.mergePatch<Segmentation>(objectPath(seg), {
        metadata: {
          finalizers: [...(seg.metadata.finalizers ?? []), FINALIZER],
          resourceVersion: seg.metadata.resourceVersion,
        },
      });
      if (patched?.metadata?.resourceVersion) versions.push(patched.metadata.resourceVersion);
    }
    const now = this.#opts.now();
    const nowIso = new Date(now).toISOString();
    const phases: Record<string, number> = {};
    let tp = performance.now();
    const mark = (phase: string) => {
      phases[phase] = Math.round((performance.now() - tp) * 10) / 10;
      tp = performance.now();
    };
    const gen = seg.metadata.generation;
    const old = seg.status ?? {};
    let conds: Condition[] = old.conditions ?? [];
    const set = (
      type: (typeof C)[keyof typeof C],
      status: Condition['status'],
      reason: string,
      message: string,
    ) => {
      conds = setCondition(conds, { type, status, reason, message }, nowIso, gen);
    };

    // An invalid spec changes nothing applied, so what was enforced stays in place; but it is neither
    // repaired nor updated nor removed meanwhile, and Enforced says so rather than what the last valid
    // reconcile did. Nor is a flow learned or audited (the state is dropped), and Learning says so. Valid
    // is set by the caller; the status is written Invalid, and the error of persisting the learned edges
    // (if any) returned.
    const invalid = async (): Promise<Error | undefined> => {
      set(
        C.Learning,
        'False',
        Reason.SpecInvalid,
        'no flow is learned or audited while the spec is invalid (see Valid); the edges learned before are kept',
      );
      const c = findCondition(conds, C.Enforced);
      if (c !== undefined && wasEnforcing(old))
        set(
          C.Enforced,
          c.status,
          Reason.NotRepairedWhileInvalid,
          `${old.enforcedPolicies ?? 0} NetworkPolicies are kept as they were at the last valid reconcile; while the spec is invalid (see Valid) they are not repaired, updated or removed`,
        );
      const notPersisted = await this.#persistAndDrop(seg);
      this.#invalid.set(name, invalidKey(seg));
      await this.#writeStatus(
        seg,
        versions,
        { ...old, observedGeneration: gen, phase: Phase.Invalid, conditions: conds },
        now,
      );
      return notPersisted;
    };
    const parsed = parseSegmentationSpec(seg.metadata.name, seg.spec);
    if (!parsed.ok) {
      set(C.Valid, 'False', Reason.InvalidSpec, parsed.problems.join('; '));
      const notPersisted = await invalid();
      return notPersisted ? { error: notPersisted } : {};
    }
    const spec = parsed.spec;
    const own = this.#ownNamespace;
    const namespaces = selectNamespaces(spec.namespaceSelector, this.#cache.namespaces.list(), own);
    const others = this.#segmentations
      .list()
      .filter((o) => o.metadata.name !== name && !o.metadata.deletionTimestamp)
      .flatMap((o) => {
        const p = parseSegmentationSpec(o.metadata.name, o.spec);
        return p.ok
          ? [
              {
                seg: o,
                namespaces: selectNamespaces(p.spec.namespaceSelector, this.#cache.namespaces.list(), own),
              },
            ]
          : [];
      });
    const conflicts = namespaceConflicts(seg, namespaces, others);
    if (conflicts.length > 0) {
      set(
        C.Valid,
        'False',
        Reason.NamespaceConflict,
        conflicts
          .map(([ns, owner]) => `namespace ${ns} is already covered by Segmentation ${owner}`)
          .join('; '),
      );
      const notPersisted = await invalid();
      return notPersisted ? { error: notPersisted } : { requeueAfter: this.#opts.resyncMs };
    }
    const coverageText = coverageMessage(
      namespaces,
      namespacesLeftOut(spec.namespaceSelector, this.#cache.namespaces.list(), own),
    );
    set(C.Valid, 'True', Reason.SpecValid, coverageText);
    // The status read may predate the one this replica wrote last (the cache lags): remembered too.
    const coverage = `${seg.metadata.uid ?? ''}/${gen ?? ''}`;
    if (namespaces.length > 0) this.#noNamespacesAnnounced.delete(name);
    else if (
      noNamespacesAnnouncement(old, gen, namespaces) &&
      this.#noNamespacesAnnounced.get(name) !== coverage
    ) {
      this.#noNamespacesAnnounced.set(name, coverage);
      this.#events.record(seg, 'Warning', Reason.NoNamespaces, coverageText);
    }

    this.#invalid.delete(name);
    const st = await this.#state(seg);
    // When each namespace that joined later joined: from this replica's last reconcile, else from status
    // (the cache may lag behind what this replica wrote).
    st.namespacesJoined = namespacesJoined(
      namespaces,
      st.spec
        ? { reconciled: true, namespaces: [...st.namespaces], joined: st.namespacesJoined ?? {} }
        : {
            reconciled: old.observedGeneration !== undefined,
            namespaces: old.namespaces ?? [],
            joined: old.namespacesJoined ?? {},
          },
      isoSeconds(now),
    );
    st.spec = spec;
    st.namespaces = new Set(namespaces);
    // The proposal in place: the ProposedNetworkPolicies of this Segmentation (see below).
    const uid = seg.metadata.uid;
    const ours = (o: ProposedNetworkPolicy) => isOurs(o, name, uid);
    let proposal: ProposedNetworkPolicy[] = this.#proposals.list().filter(ours);
    // A frozen proposal covers only the namespaces selected now: the policies of a namespace that left
    // the selection (its label changed, the selector narrowed) are pruned, and so are their
    // NetworkPolicies in Enforce; kept, they would stay enforced in a namespace this Segmentation no
    // longer covers, and that another Segmentation may now select.
    const frozenInScope = proposal.filter((p) => st.namespaces.has(p.metadata.namespace ?? ''));
    const mode = spec.mode;
    const wasMode = old.mode;
    // A ProposedNetworkPolicy microseg does not manage holding the name of a proposed policy is left
    // untouched, in every mode: the proposal lacks that policy, and a Warning Event and ProposalStable
    // say so (as Enforced does for NetworkPolicies).
    // Only a proposal that is written can be held up: a frozen one (Audit, Enforce) is not rewritten
    // from the live analysis, so a name only that analysis proposes is nobody's conflict yet; nor is it
    // built or planned then (neither would be used, and the live analysis changes with every flow).
    // A proposal is frozen only once it is in place in full, however it left Learn: first written
    // outside Learn (created in Audit or Enforce, or a namespace selected anew), or promoted by hand
    // while one of its ProposedNetworkPolicies could not be written (refused, a name held by another) or
    // deleted. ProposalStable said so at the last reconcile (only a proposal being written can say it),
    // and it is written again now. Frozen as the objects in place, it would lose that policy for good,
    // and in Enforce the default deny of its namespace would cut off the workload the policy is for.
    // Status, not memory, tells it: a new leader goes on writing too. A Segmentation microseg has begun
    // to reconcile (its finalizer is there, added before anything is written) with no status of a
    // reconcile (no mode in it: the first reconcile's status write failed, or its leader stopped before
    // it) has nothing saying that the objects in place are the proposal in full: they may lack one the
    // API server refused, and frozen so, the default deny would cut off its workload. Written too.
    // Objects in place before microseg ever reconciled the Segmentation (no finalizer) are frozen as they
    // are: not written by a reconcile of it, they are all there is to go by.
    const lastStable = findCondition(old.conditions, C.ProposalStable);
    const writtenInPart =
      (wasMode === undefined && (seg.metadata.finalizers ?? []).includes(FINALIZER)) ||
      (lastStable?.status === 'False' &&
        (lastStable.reason === Reason.ApplyFailed || lastStable.reason === Reason.PolicyNameConflict));
    const writing = mode === 'Learn' || frozenInScope.length === 0 || writtenInPart;
    // A proposal still written over a frozen one in scope (see Enforce below).
    const stillWritten = writing && frozenInScope.length > 0;
    // Enforcing such a proposal, which follows the live analysis: an edge aging out would take its
    // allow out of what is enforced, unaudited. The edges past their expiry are kept until the proposal
    // is written in full (and frozen with their rules), and age out then.
    const expiredBefore = now - spec.learning.ruleExpiryMs;
    const keepAged = keepsAgedEdges(mode, stillWritten, old);
    // Nor does a change of the spec fields the proposal is made from (learning.minFlows, policy.*) reach
    // it then: what such a change took out of the proposal would leave what is enforced at once,
    // unaudited. The proposal goes on being made with those it was made from (status, so a new leader
    // does too) until it is written in full and frozen; frozen, it keeps them, as any frozen proposal
    // keeps what it was made from until it is proposed afresh in Learn.
    const specInputs = proposalInputsOf(spec);
    const inputs = analysisInputs(spec, keepAged, recordedProposalInputs(old));
    const deferred = proposalInputsChanged(inputs, specInputs).length > 0;
    const deferredKey = deferred ? JSON.stringify([inputs, specInputs]) : undefined;
    if (deferredKey !== undefined && st.deferredChange !== deferredKey)
      this.#events.record(
        seg,
        'Warning',
        Reason.SpecChangeDeferred,
        deferredChangeMessage(inputs, specInputs),
      );
    st.deferredChange = deferredKey;
    const analysed = withInputs(spec, inputs);

    const errors: { reason: string; message: string }[] = [];
    const identity = this.#currentIdentity(true);
    const touches = (id: string) => {
      const ns = namespaceOf(id);
      return !!ns && st.namespaces.has(ns);
    };
    // The learned edges (as credited to a Service's backends) an analysis takes.
    const analysable = (e: EdgeRecord) =>
      (touches(e.src) || touches(e.dst)) && e.count >= analysed.learning.minFlows;
    // Kept past their expiry meanwhile: only the edges the analysis takes, which back an allow (those
    // below minFlows or outside the namespaces covered back none, and age out as ever). One of a
    // workload gone from the cluster is kept too: its rules come back with the workload.
    let keptAged = 0;
    let aged = 0;
    if (!keepAged) aged = st.edges.ageOut(expiredBefore);
    else {
      const expired = st.edges.edges((e) => e.lastSeen < expiredBefore);
      if (expired.length > 0) {
        const taken = new Set(creditServiceEdges(identity, st.edges.edges()).filter(analysable).map(edgeKey));
        const backing = new Set(
          expired
            .filter((e) => creditServiceEdges(identity, [e]).some((c) => taken.has(edgeKey(c))))
            .map(edgeKey),
        );
        keptAged = backing.size;
        aged = st.edges.ageOut(expiredBefore, (e) => backing.has(edgeKey(e)));
      }
    }
    if (aged > 0)
      this.#events.record(
        seg,
        'Normal',
        Reason.EdgesAgedOut,
        `${aged} learned edge(s) unused for ${formatDuration(spec.learning.ruleExpiryMs)} aged out`,
      );

    // The analysis is recomputed only when its inputs changed (identity, learned edges, the spec fields
    // it reads, namespaces): not when the mode changes.
    const analysisKeyNow = analysisKey(st.edges.version, analysed, namespaces);
    if (!st.analysis || st.analysis.identity !== identity || st.analysis.key !== analysisKeyNow) {
      // An edge learned to the ClusterIP of a Service that had no backend then is its backends' once
      // it has some (no ipBlock for the address, which admits nothing); the store keeps it as learned.
      const learned = creditServiceEdges(identity, st.edges.edges()).filter(analysable);
      const peers = new Map(
        learned.flatMap((e) => [peerFromId(e.src), peerFromId(e.dst)]).map((p) => [p.id, p]),
      );
      for (const p of peers.values())
        if (p.kind === 'workload' && !identity.workloads.has(p.id)) peers.delete(p.id);
      // The segments before, so that a community keeps its name when a connection moves its anchor;
      // after a restart, those the proposal in place names.
      const previous = (st.segmentNames ??= this.#proposedSegments(name, seg.metadata.uid));
      const result = analyse(
        {
          identity,
          edges: learned.filter((e) => peers.has(e.src) && peers.has(e.dst)),
          peers,
          names: new Map(),
        },
        {
          segments: { previous },
          policy: {
            namespaces,
            defaultDeny: analysed.policy.defaultDeny,
            includeDropped: analysed.policy.includeDropped,
            worldIngress: analysed.policy.worldIngress,
          },
        },
      );
      const drawn = new Set(result.graph.nodes.map((n) => n.id));
      const shown = {
        ...result,
        segments: scopeSegments(result.segments, (w) => touches(w) || drawn.has(w)),
      };
      st.analysis = { key: analysisKeyNow, identity, edges: learned.length, analysis: result, shown };
      // Each workload's community now (one in a segment of another kind keeps the community it was
      // in last: a workload that made no flow lately, or a hub, may be one's member again).
      for (const [m, segment] of communityMembership(result.segments)) previous.set(m, segment);
      // A workload gone from the cluster is no member to keep a name for: forgotten, so the names do
      // not grow with every workload ever seen (preview environments, per-release Deployments).
      for (const m of previous.keys()) if (!identity.workloads.has(m)) previous.delete(m);
    }
    const analysis = st.analysis.analysis;
    const edgeCount = st.analysis.edges;

    mark('analysis');
    // ----- the proposal: live in Learn, frozen in Audit and Enforce -----
    const desired = writing ? st.memo.proposed(seg, analysis.proposal) : [];
    let actions: Action<ProposedNetworkPolicy>[] = [];
    if (writing) {
      const desiredKeys = new Set(desired.map(objKey));
      const observed = this.#proposals.list().filter((o) => ours(o) || desiredKeys.has(objKey(o)));
      actions = st.memo.proposalPlan(name, desired, observed, uid);
    }
    const held = writing ? actions.filter((a) => a.kind === 'conflict') : [];
    const heldKeys = new Set(held.map((a) => `${a.namespace}/${a.name}`));
    for (const a of held)
      this.#events.record(
        seg,
        'Warning',
        Reason.PolicyNameConflict,
        conflictMessage('ProposedNetworkPolicy', a),
      );
    // ProposedNetworkPolicies the API server refused (an admission policy, a quota), those it accepted
    // but that still differ from what was applied (another field manager), and those no longer proposed
    // that could not be deleted: the proposal in place is not the one proposed, and is not stable while
    // it is not (see ProposalStable below).
    let unwritten: string[] = [];
    let untaken: string[] = [];
    let undeleted: string[] = [];
    let notCreated = new Set<string>();
    if (writing) {
      let notDeleted: Set<string>;
      let written: Written;
      ({ unwritten, untaken, notCreated, notDeleted, written } = await this.#perform(
        seg,
        actions,
        'ProposedNetworkPolicy',
        errors,
        false,
      ));
      undeleted = [...notDeleted].sort(byteOrder);
      // Evidence (status) changes with every flow. A new peer or port is written at the next persist
      // interval; mere count and time updates only every EVIDENCE_REFRESH persist intervals, so a busy
      // cluster does not rewrite every proposal object all the time.
      if (now - st.lastEvidenceAt >= this.#opts.persistIntervalMs || actions.length > 0) {
        const refresh = now - st.lastEvidenceRefreshAt >= EVIDENCE_REFRESH * this.#opts.persistIntervalMs;
        const byKey = new Map(this.#proposals.list().map((o) => [objKey(o), o]));
        const stale = desired.filter((d) => {
          if (heldKeys.has(objKey(d)) || notCreated.has(objKey(d))) return false;
          const o = byKey.get(objKey(d));
          if (!o || !ours(o)) return true;
          if (sortedJson(o.status ?? {}) === sortedJson(d.status ?? {})) return false;
          return refresh || evidenceShape(o.status) !== evidenceShape(d.status);
        });
        if (refresh) st.lastEvidenceRefreshAt = now;
        await pool(stale, WRITE_CONCURRENCY, async (d) => {
          try {
            await this.#client.apply(
              {
                apiVersion: d.apiVersion,
                kind: d.kind,
                metadata: { name: d.metadata.name, namespace: d.metadata.namespace },
                status: d.status,
              } as ProposedNetworkPolicy,
              { subresource: 'status' },
            );
          } catch (err) {
            errors.push({
              reason: Reason.ApplyFailed,
              message: `status of ProposedNetworkPolicy ${objKey(d)}: ${errText(err)}`,
            });
          }
        });
        st.lastEvidenceAt = now;
      }
      // What was written, not what was planned: a write refused, failed or not taken is named as such
      // (and said by its Warning Event); when nothing was written, there is no update to announce.
      if (written.created + written.updated + written.deleted > 0)
        this.#events.record(
          seg,
          'Normal',
          Reason.ProposalUpdated,
          summarise('ProposedNetworkPolicy', written, unwritten, untaken, undeleted),
        );
      proposal = desired.filter((d) => !heldKeys.has(objKey(d)));
    } else {
      // The frozen proposal is not rewritten, but the labels and annotations microseg set on it are
      // its own as much as the spec: edited (a label removed, `microseg.dev/segment` changed), they are
      // put back like any drift, and its NetworkPolicies in Enforce are made from what microseg set.
      // Each repair names the resourceVersion it was made from: its spec is the cached copy's, and a
      // forced apply of a copy the object has moved on from (its spec edited again since) would put
      // that spec back. The API server refuses it then (409), and the next reconcile, which the newer
      // version's watch event brings, repairs from that version.
      const frozen = st.memo.frozen(seg, frozenInScope);
      const repairs = st.memo
        .frozenPlan(name, frozen, proposal, uid)
        .map((a) =>
          a.kind === 'apply' && a.from !== undefined
            ? { ...a, object: { ...a.object, metadata: { ...a.object.metadata, resourceVersion: a.from } } }
            : a,
        );
      await this.#perform(seg, repairs, 'ProposedNetworkPolicy', errors, true);
      proposal = frozen;
    }
    const hash = st.memo.hash(proposal);
    const proposalSince = old.proposal?.hash === hash ? old.proposal.since : nowIso;

    mark('proposal');
    // ----- conditions: learning and stability -----
    set(
      C.Learning,
      'True',
      mode === 'Learn' ? Reason.LearningFlows : Reason.ProposalFrozen,
      mode === 'Learn'
        ? `${edgeCount} edge(s) learned from flows; the proposal follows them`
        : `${edgeCount} edge(s) learned; the proposal is frozen while in ${mode} mode`,
    );
    // Promoted now, the frozen proposal would be the one in place, not the one proposed: a default deny
    // written without the policy of a workload whose ProposedNetworkPolicy was refused would cut that
    // workload off once enforced; one that did not take would be enforced as another field manager left
    // it; one no longer proposed but not deleted would be enforced all the same. Each reconcile says
    // what is so now, in this condition as in Degraded.
    const notAsProposed = notAsProposedMessage(unwritten, untaken, undeleted);
    if (held.length > 0)
      set(
        C.ProposalStable,
        'False',
        Reason.PolicyNameConflict,
        [
          ...held.map((a) => conflictMessage('ProposedNetworkPolicy', a)),
          ...(notAsProposed ? [notAsProposed] : []),
        ].join('; '),
      );
    else if (notAsProposed !== undefined) set(C.ProposalStable, 'False', Reason.ApplyFailed, notAsProposed);
    else if (proposal.length === 0)
      set(C.ProposalStable, 'False', Reason.NoProposal, 'no traffic learned yet: nothing to propose');
    else if (mode !== 'Learn')
      set(
        C.ProposalStable,
        'True',
        Reason.ProposalFrozen,
        `the proposal of ${proposal.length} policies is frozen`,
      );
    else if (now - Date.parse(proposalSince) >= spec.learning.stableAfterMs)
      set(
        C.ProposalStable,
        'True',
        Reason.ProposalUnchanged,
        `the proposal has not changed since ${proposalSince}`,
      );
    else set(C.ProposalStable, 'False', Reason.ProposalChanged, `the proposal changed at ${proposalSince}`);

    mark('conditions');
    // ----- audit -----
    let audit: AuditState | undefined;
    if (mode === 'Learn') {
      st.audit = undefined;
      st.auditedHash = undefined;
      st.engine = undefined;
      st.unauditableSample = undefined;
      st.newBlocked = undefined;
      st.announcedBlocked = undefined;
    } else {
      // Invalid at the last reconcile: nothing was learned or audited meanwhile, so the audit in status
      // (or in memory) vouches for no flow of that time; counted on, AuditClean would call a window
      // clean in which no flow was checked. The audit starts again.
      const wasInvalid = findCondition(old.conditions, C.Valid)?.status === 'False';
      // Set back from Enforce to Audit (a rollback): while enforced, the flows its policies dropped were
      // not audited (only flows that passed are), so the audit of that time looks clean whatever the
      // proposal blocks; counted on, AuditClean would vouch for the very proposal being rolled back.
      const afterEnforce = !wasInvalid && mode === 'Audit' && wasEnforcing(old);
      const restart = wasInvalid
        ? 'the spec was invalid, and no flow was audited meanwhile'
        : afterEnforce
          ? 'spec.mode went from Enforce to Audit, and the flows the enforced policies dropped could not be audited'
          : undefined;
      if (restart !== undefined) {
        st.audit = undefined;
        this.#events.record(
          seg,
          'Normal',
          Reason.AuditWindowOpen,
          `${restart}: the audit starts again, and AuditClean waits for a full ${formatDuration(spec.audit.windowMs)} window of it`,
        );
      }
      if (!st.audit) {
        const prev =
          old.audit && wasMode && wasMode !== 'Learn' && restart === undefined ? old.audit : undefined;
        st.audit = prev
          ? {
              since: Date.parse(prev.since),
              buckets: new Map(Object.entries(prev.buckets ?? {}).map(([k, v]) => [Number(k), v])),
              unauditable: new Map(
                Object.entries(prev.unauditableBuckets ?? {}).map(([k, v]) => [Number(k), v]),
              ),
              ...(prev.lastBlocked ? { lastBlocked: Date.parse(prev.lastBlocked) } : {}),
              samples: prev.samples ?? [],
            }
          : { since: now, buckets: new Map(), unauditable: new Map(), samples: [] };
        // Restored from status: the audit was of the proposal that status was written with.
        st.auditedHash = prev ? old.proposal?.hash : hash;
      }
      if (st.auditedHash !== undefined && st.auditedHash !== hash) {
        // The frozen proposal changed (a first proposal written in Audit, a frozen ProposedNetworkPolicy
        // edited or deleted, a namespace that left the selection): the flows counted so far were checked
        // against another proposal, so AuditClean would vouch for one never audited for a window.
        st.audit = { since: now, buckets: new Map(), unauditable: new Map(), samples: [] };
        this.#events.record(
          seg,
          'Normal',
          Reason.AuditWindowOpen,
          `the proposal changed (${proposal.length} policies): the audit starts again, and AuditClean waits for a full ${formatDuration(spec.audit.windowMs)} window of it`,
        );
      }
      st.auditedHash = hash;
      audit = st.audit;
      // spec.audit.samples bounds the samples kept, also those kept before it was lowered.
      if (audit.samples.length > spec.audit.samples)
        audit.samples = audit.samples.slice(audit.samples.length - spec.audit.samples);
      pruneBuckets(audit.buckets, now, spec.audit.windowMs);
      pruneBuckets(audit.unauditable, now, spec.audit.windowMs);
      const key = `${hash}\u0000${this.#cache.version}\u0000${this.#cache.policyVersion}\u0000${this.#cache.clusterPolicies?.version ?? 0}`;
      if (st.engine?.key !== key) {
        const snap = this.#cache.snapshot();
        // The frozen proposal replaces what microseg itself enforces; foreign policies still count.
        snap.networkPolicies = [
          ...snap.networkPolicies.filter((np) => !isOurs(np, name, seg.metadata.uid)),
          ...proposal.map((p): NetworkPolicy => ({
            apiVersion: 'networking.k8s.io/v1',
            kind: 'NetworkPolicy',
            metadata: p.metadata,
            spec: p.spec,
          })),
        ];
        try {
          st.engine = { key, engine: engineFromSnapshot(snap, this.#opts.engine) };
        } catch (err) {
          errors.push({
            reason: Reason.ApplyFailed,
            message: `cannot evaluate the proposal: ${errText(err)}`,
          });
        }
      }
    }
    st.mode = mode;
    // Workloads no observed flow reaches or leaves, from the live analysis: the default deny alone
    // selects them. The audit cannot see them (they make no flow), so AuditClean's message names them.
    const idle = analysis.proposal.unobserved.filter(touches);
    const unobserved = { count: idle.length, workloads: idle.slice(0, MAX_SEGMENT_MEMBERS) };
    // Of those, the CronJobs that have not run since this Segmentation was made: nothing of theirs could
    // be learned or audited, so automatic promotion to Enforce waits for their next run.
    // Runs count from the Segmentation's creation, or from when their namespace joined its scope.
    const created = Date.parse(seg.metadata.creationTimestamp ?? '') || 0;
    const joined = st.namespacesJoined;
    const since = (ns: string) => Math.max(created, Date.parse(joined[ns] ?? '') || 0);
    const cronJobOf = (ns: string, cj: string) => this.#cache.cronJobs.get(`${ns}/${cj}`);
    // A run that just ended may have flows not read or audited yet: it counts an audit window later.
    const gate = { finished: true, settleMs: spec.audit.windowMs, now };
    const notRun = cronJobsNotRunSince(idle, cronJobOf, since, gate);
    // For messages, each with what it waits for: the run going on, the end of the window, its next run.
    const notRunNamed = notRun.map((id) => {
      const [ns = '', , name = ''] = id.split('/');
      const cj = cronJobOf(ns, name);
      return cj ? `${id}${notRunWait(cj, since(ns), gate)}` : id;
    });
    // The would-be-blocked flows the verdict holds: flows are audited during this reconcile's awaits too.
    const blockedDecided = st.blockedChanges;
    const verdict = auditVerdict(
      audit,
      now,
      spec.audit.windowMs,
      unobserved.count,
      notRunNote(notRunNamed, spec.promotion.automatic && mode === 'Audit'),
    );
    if (mode === 'Learn')
      set(C.AuditClean, 'False', Reason.AuditNotRunning, 'the proposal is audited in Audit mode');
    else set(C.AuditClean, verdict.clean ? 'True' : 'False', verdict.reason, verdict.message);
    // A new leader compares with the count in status, so it does not announce again what was announced.
    const fresh = st.newBlocked;
    st.newBlocked = undefined;
    const blockedTold = wouldBlockAnnouncement(
      st.wouldBlockAnnounced ?? old.wouldBlock ?? 0,
      verdict.wouldBlock,
      fresh !== undefined,
    );
    st.wouldBlockAnnounced = blockedTold.announced;
    if (verdict.wouldBlock === 0) st.announcedBlocked = undefined;
    if (blockedTold.announce) {
      const last = fresh ?? audit?.samples.at(-1);
      if (fresh !== undefined) (st.announcedBlocked ??= new Set()).add(fresh.key);
      this.#events.record(
        seg,
        'Warning',
        Reason.WouldBlockFlows,
        `${verdict.wouldBlock} flow(s) would be blocked by the proposal${last ? `, e.g. ${last.source} → ${last.destination} ${last.protocol}/${last.port}` : ''}`,
      );
    }
    // A new leader compares with the count in status, so it does not announce again what was announced.
    const told = unauditableAnnouncement(
      st.unauditableAnnounced ?? old.unauditable ?? 0,
      verdict.unauditable,
    );
    st.unauditableAnnounced = told.announced;
    if (told.announce) {
      const u = st.unauditableSample;
      const example =
        u !== undefined && u.time > now - spec.audit.windowMs
          ? `, e.g. ${u.source} → ${u.destination} ${u.protocol}/${u.port}: the ${u.end} ${u.why}`
          : '';
      this.#events.record(
        seg,
        'Warning',
        Reason.Unauditable,
        `${verdict.unauditable} flow(s) in the last ${formatDuration(spec.audit.windowMs)} could not be audited against the proposal${example}`,
      );
    }
    // Compared with the status written last, so a resync or a new leader does not announce them again.
    if (
      unobservedAnnouncement(
        { count: old.unobserved ?? 0, workloads: old.unobservedWorkloads ?? [] },
        unobserved,
        mode === 'Audit',
      )
    )
      this.#events.record(seg, 'Warning', Reason.Unobserved, unobservedMessage(unobserved));

    mark('audit');
    // ----- enforcement -----
    const managed = this.#cache.networkPolicies.list().filter((np) => isOurs(np, name, seg.metadata.uid));
    let enforced = 0;
    let phase: string;
    if (mode === 'Enforce') {
      // A proposal still written over a frozen one in scope: one of it was refused, did not take, could
      // not be deleted, or its name is held by another object (writtenInPart). Each newly learned flow
      // changes it, and each change starts its audit again; what such a change applies only allows
      // traffic that was observed (or is the policy still missing), while withdrawing what is enforced
      // would open every namespace for a whole audit window at each new edge. So a Segmentation that
      // was enforcing keeps enforcing through it, and Enforced says why the proposal is still written.
      const why = [
        ...held.map(
          (a) => `the name of ProposedNetworkPolicy ${a.namespace}/${a.name} is held by another object`,
        ),
        ...notAsWrittenClauses(unwritten, untaken, undeleted, 'ProposedNetworkPolicies '),
      ].join('; ');
      const writtenNote = (then: string) =>
        stillWritten && why !== '' ? `; the proposal is still being written, as ${why}: ${then}` : '';
      const gate = enforceGate({
        // A proposal written anew in this reconcile (no frozen one in scope: the namespaces it covered
        // left the selection, and one came back or joined, or every ProposedNetworkPolicy was deleted)
        // was never audited: it waits for the audit, which its new hash starts again, however enforced
        // the Segmentation was before.
        alreadyEnforced: wasEnforcing(old) && (!writing || stillWritten),
        force: spec.enforce.force,
        audit: verdict,
      });
      // Said where it is why: enforcing on through an audit that is not clean, or refused again; and,
      // enforcing, the learned edges past their expiry kept meanwhile (keepsAgedEdges).
      const gateNote = !gate.allowed
        ? writtenNote('each change to it starts the audit again')
        : (!verdict.clean && !spec.enforce.force
            ? writtenNote(
                'it stays enforced while its audit starts again, and what newly learned flows add to it is applied',
              )
            : '') +
          keptEdgesNote(keptAged, formatDuration(spec.learning.ruleExpiryMs)) +
          deferredChangeNote(inputs, specInputs);
      if (gate.allowed) {
        const fromProposal = st.memo.enforced(seg, proposal);
        // A NetworkPolicy not in the frozen proposal (its ProposedNetworkPolicy deleted by hand) in a
        // namespace whose default deny stays, selecting pods no policy of the proposal selects: pruned, it
        // would leave the deny alone to select them and cut off all they do. It is kept as it is (not
        // repaired) until the Segmentation leaves Enforce. A deny, a policy of a namespace without one,
        // or one whose pods policies of the proposal select (one left from an earlier proposal: its
        // selector is one of the proposal's, or every pod it selects now is selected by one of them) is
        // pruned as before: that cuts off nothing the proposal allows. One that selects no pod now (its
        // workload scaled to zero) and whose selector is none of the proposal's is kept: its pods, once
        // back, would have nothing but the deny.
        const proposedKeys = new Set(fromProposal.map(objKey));
        const deniedIn = new Set(fromProposal.filter(isDefaultDeny).map((np) => np.metadata.namespace ?? ''));
        const selectorOf = (np: NetworkPolicy) =>
          `${np.metadata.namespace ?? ''}\n${canonicalSpec({ podSelector: np.spec?.podSelector ?? {} })}`;
        const allows = fromProposal.filter((np) => !isDefaultDeny(np));
        const selected = new Set(allows.map(selectorOf));
        const cutOffWithout = (np: NetworkPolicy): boolean => {
          if (selected.has(selectorOf(np))) return false;
          const ns = np.metadata.namespace ?? '';
          const theirs = allows
            .filter((p) => (p.metadata.namespace ?? '') === ns)
            .map((p) => p.spec?.podSelector ?? {});
          const pods = this.#cache.pods
            .list()
            .filter(
              (p) =>
                p.metadata.namespace === ns && matchesSelector(np.spec?.podSelector ?? {}, p.metadata.labels),
            );
          return (
            pods.length === 0 ||
            pods.some((p) => !theirs.some((sel) => matchesSelector(sel, p.metadata.labels)))
          );
        };
        const kept = writing
          ? []
          : managed.filter(
              (np) =>
                !proposedKeys.has(objKey(np)) &&
                !np.metadata.deletionTimestamp &&
                np.metadata.name !== DEFAULT_DENY_NAME &&
                !isDefaultDeny(np) &&
                deniedIn.has(np.metadata.namespace ?? '') &&
                cutOffWithout(np),
            );
        for (const np of kept)
          this.#events.record(
            seg,
            'Warning',
            Reason.PolicyKept,
            `NetworkPolicy ${objKey(np)} is kept, though it is not in the frozen proposal (its ProposedNetworkPolicy is gone) and no policy of the proposal selects its pods: without it the default deny of ${np.metadata.namespace ?? ''} would cut off what it allows (set spec.mode: Learn to propose afresh)`,
          );
        const desired = kept.length > 0 ? [...fromProposal, ...kept] : fromProposal;
        const keys = new Set(desired.map(objKey));
        const observed = this.#cache.networkPolicies
          .list()
          .filter((np) => isOurs(np, name, seg.metadata.uid) || keys.has(objKey(np)));
        // Namespaces where a pod is quarantined: an Isolation's exclusion on our policies stays there.
        const quarantined = this.#quarantined();
        // The policies the proposal lacks while their ProposedNetworkPolicy's name is held by another
        // object (a proposal being written): no NetworkPolicy is planned for them, so the default deny of
        // their namespace is held back, as for a NetworkPolicy's name conflict, until the name is free.
        const missing = held.filter((a) => !a.defaultDeny).map((a) => `${a.namespace}/${a.name}`);
        const actions = st.memo.enforcePlan(name, desired, observed, seg.metadata.uid, quarantined, missing);
        const { notInPlace, notDeleted, heldBack } = await this.#perform(
          seg,
          actions,
          'NetworkPolicy',
          errors,
          true,
          observed.filter((np) => isOurs(np, name, seg.metadata.uid)),
        );
        const conflicts = actions.filter((a) => a.kind === 'conflict');
        const heldDenies = actions.filter((a) => a.kind === 'held');
        // Only what is in place counts: an apply that failed, or a repair that did not take, is not;
        // nor is a default deny deleted while a policy of its namespace could not be created.
        enforced = desired.length - conflicts.length - heldDenies.length - notInPlace - heldBack;
        const notInPlaceNote = [
          ...(notInPlace > 0 ? [`${notInPlace} could not be applied or repaired`] : []),
          ...(heldBack > 0
            ? [
                `${heldBack} default ${heldBack === 1 ? 'deny' : 'denies'} held back while a policy of ${heldBack === 1 ? 'its namespace' : 'their namespaces'} could not be applied`,
              ]
            : []),
        ].join('; ');
        // A ProposedNetworkPolicy's name held by another object: the proposal, and so what is enforced,
        // lacks that policy (named first: the default deny held back for it names it too).
        if (conflicts.length > 0 || heldDenies.length > 0 || held.length > 0)
          set(
            C.Enforced,
            'False',
            Reason.PolicyNameConflict,
            [
              ...held.map((a) => conflictMessage('ProposedNetworkPolicy', a)),
              ...[...conflicts, ...heldDenies].map((a) =>
                a.kind === 'conflict'
                  ? `NetworkPolicy ${a.namespace}/${a.name} exists and is not managed by this Segmentation (${a.holder}); left untouched`
                  : a.kind === 'held'
                    ? heldMessage(a) +
                      // Its deletion failed: it is in place, and cuts off what it was held back for.
                      (notDeleted.has(`${a.namespace}/${a.name}`)
                        ? '; it could not be deleted and is still in place (see Degraded)'
                        : '')
                    : '',
              ),
            ].join('; ') +
              (notInPlaceNote ? `; ${notInPlaceNote} (see Degraded)` : '') +
              gateNote,
          );
        else if (notInPlaceNote)
          set(
            C.Enforced,
            'False',
            Reason.ApplyFailed,
            `${enforced} of ${desired.length} NetworkPolicies in place; ${notInPlaceNote} (see Degraded)${gateNote}`,
          );
        else
          set(
            C.Enforced,
            'True',
            gate.reason,
            `${enforced} NetworkPolicies applied; ${gate.message}${gateNote}`,
          );
        phase = Phase.Enforcing;
      } else {
        set(C.Enforced, 'False', gate.reason, `${gate.message}${gateNote}`);
        await this.#removeEnforced(seg, managed, errors);
        phase = Phase.Refused;
      }
    } else {
      set(C.Enforced, 'False', Reason.NotEnforcing, `nothing is enforced in ${mode} mode`);
      await this.#removeEnforced(seg, managed, errors);
      phase = mode === 'Learn' ? Phase.Learning : Phase.Auditing;
    }

    mark('enforcement');
    // ----- persistence of the learned graph -----
    try {
      await this.#persist(seg, st, false);
    } catch (err) {
      errors.push({ reason: Reason.PersistFailed, message: `learned edges: ${errText(err)}` });
    }

    if (errors.length > 0) {
      set(
        C.Degraded,
        'True',
        errors[0]!.reason,
        errors
          .map((e) => e.message)
          .join('; ')
          .slice(0, 2000),
      );
      phase = Phase.Degraded;
    } else set(C.Degraded, 'False', Reason.AsExpected, 'all writes succeeded');

    mark('persist');
    // ----- status -----
    const inScope = (id: string) => touches(id);
    const segments: SegmentStatus[] = analysis.segments.segments
      .map((s) => ({ ...s, members: s.members.filter(inScope) }))
      .filter((s) => s.members.length > 0)
      .map((s) => ({
        name: s.id,
        kind: s.kind,
        members: s.members.slice(0, MAX_SEGMENT_MEMBERS),
        memberCount: s.members.length,
      }));
    // The cluster's workloads of the namespaces covered, and those known only from flows (a pod it does
    // not have, see computeSegments) while a learned edge of the analysis has them: as the segments count.
    const drawn = new Set(analysis.graph.nodes.map((n) => n.id));
    const workloads = [...identity.workloads.values()].filter(
      (w) => st.namespaces.has(w.namespace) && (!w.observedOnly || drawn.has(w.id)),
    ).length;
    // When the Segmentation entered the mode it is in: automatic promotion counts from then at the
    // earliest, so that a mode set back by hand (a rollback) is not undone at once by conditions that
    // held since before it. A status written before modeSince existed counts from now.
    const modeSince = old.mode === mode && old.modeSince !== undefined ? old.modeSince : nowIso;
    const modeSinceMs = Date.parse(modeSince);
    const promotionUntil = modeSinceMs + spec.promotion.afterMs;
    const gating = mode === 'Learn' ? C.ProposalStable : mode === 'Audit' ? C.AuditClean : undefined;
    const gated = gating ? findCondition(conds, gating) : undefined;
    if (
      spec.promotion.automatic &&
      gating &&
      gated?.status === 'True' &&
      Date.parse(gated.lastTransitionTime) < modeSinceMs &&
      now < promotionUntil
    )
      set(gating, 'True', gated.reason, gated.message + modeWaitNote(mode, modeSince, promotionUntil));
    let lastChange = old.lastChange;
    const changeMsg =
      wasMode !== mode
        ? `mode ${wasMode ?? '(none)'} → ${mode}`
        : old.proposal?.hash !== hash
          ? `proposal changed: ${proposal.length} policies`
          : old.phase !== phase
            ? `phase ${old.phase ?? '(none)'} → ${phase}`
            : undefined;
    if (changeMsg) lastChange = { time: nowIso, message: changeMsg };
    if (wasMode !== undefined && wasMode !== mode)
      this.#events.record(seg, 'Normal', Reason.ModeChanged, `mode ${wasMode} → ${mode}`);
    // What status.audit below holds of the flow path's audit (no flow is audited while it is built).
    const auditChanges = st.auditChanges;
    const status: SegmentationStatus = {
      observedGeneration: gen,
      phase,
      mode,
      modeSince,
      namespaces,
      ...(Object.keys(joined).length > 0 ? { namespacesJoined: joined } : {}),
      workloads,
      edges: edgeCount,
      segmentCount: segments.length,
      // Only what is in place: a ProposedNetworkPolicy refused when created is not (a promotion would
      // freeze the proposal without it; ProposalStable says so).
      policies: proposal.filter((p) => !notCreated.has(objKey(p))).length,
      enforcedPolicies: enforced,
      wouldBlock: verdict.wouldBlock,
      unauditable: verdict.unauditable,
      unobserved: unobserved.count,
      unobservedWorkloads: [...unobserved.workloads],
      flowsIngested: st.flows,
      conditions: conds,
      segments,
      // What the proposal in place was made from: written now, with what it was written with; frozen,
      // what it was frozen with (none known of a proposal an earlier microseg froze).
      proposal: {
        hash,
        since: proposalSince,
        ...(writing ? { inputs } : old.proposal?.inputs !== undefined ? { inputs: old.proposal.inputs } : {}),
      },
      ...(audit ? { audit: auditStatus(audit) } : {}),
      ...(lastChange ? { lastChange } : {}),
    };
    await this.#writeStatus(seg, versions, status, now);
    st.auditWritten = Math.max(st.auditWritten, auditChanges);

    mark('status');
    // ----- automatic promotion -----
    const target = promotionTarget(spec, conds, now, notRun, modeSinceMs);
    // Due by its condition alone, but the mode was entered since (a rollback): said once by an Event.
    const byCondition = target ? undefined : promotionTarget(spec, conds, now, notRun);
    const modeWaiting =
      byCondition && !promotionTarget(spec, conds, now, notRun, modeSinceMs)
        ? modeWaitMessage(mode, byCondition, modeSince, promotionUntil)
        : undefined;
    if (modeWaiting !== undefined && st.modeWaiting !== modeWaiting)
      this.#events.record(seg, 'Normal', Reason.PromotionWaiting, modeWaiting);
    st.modeWaiting = modeWaiting;
    // Due but for CronJobs that have not run: said once by an Event, as the condition alone is easy to miss.
    const due = target ? undefined : promotionTarget(spec, conds, now, [], modeSinceMs);
    // Once per set of CronJobs (what each waits for changes as its run comes and goes).
    const waiting = due ? promotionWaitingMessage(due, notRun) : undefined;
    if (due && waiting !== undefined && st.promotionWaiting !== waiting)
      this.#events.record(seg, 'Normal', Reason.PromotionWaiting, promotionWaitingMessage(due, notRunNamed));
    st.promotionWaiting = waiting;
    // A would-be-blocked flow audited since the verdict (while this reconcile awaited its writes), or
    // the audit no longer this one (leadership lost): the promotion was decided without it, and would
    // enforce the proposal over it. Checked right before the write (no await between the two); the
    // reconcile is then retried (with backoff, not at the resync) and decides with the flow.
    const decidedOnOlderAudit = () =>
      !this.#leading || this.#states.get(name) !== st || st.blockedChanges !== blockedDecided;
    let redecide = false;
    if (!target) st.promotionDue = undefined;
    else {
      // The informer's copy has no managedFields: read who declares spec.mode from the object itself.
      const fresh = await this.#client.get<Segmentation>(objectPath(seg));
      const declaredBy = modeDeclaredBy(fresh.metadata);
      if (decidedOnOlderAudit()) {
        st.promotionDue = undefined;
        redecide = true;
        this.#log.info(
          'promotion not made: the audit it was decided on changed meanwhile (a flow that would be blocked was counted, or leadership was lost); decided again',
          { segmentation: name },
        );
      } else if (fresh.metadata.uid !== seg.metadata.uid || fresh.metadata.generation !== gen) {
        // The spec changed since this reconcile read it (spec.mode set back while it wrote, say): the
        // promotion was decided from the older one, and would overwrite the change. The change's own
        // watch event brings the next reconcile, which decides again.
        st.promotionDue = undefined;
      } else if (declaredBy) {
        const message = promotionDueMessage(spec.mode, target, declaredBy);
        if (st.promotionDue !== message) this.#events.record(seg, 'Normal', Reason.PromotionDue, message);
        st.promotionDue = message;
      } else {
        st.promotionDue = undefined;
        // Only onto the version just read: a change made since (a 409) is not overwritten, and brings
        // the next reconcile by its watch event.
        const promoted = await this.#client
          .mergePatch(objectPath(seg), {
            metadata: { resourceVersion: fresh.metadata.resourceVersion },
            spec: { mode: target.to },
          })
          .then(
            () => true,
            (err: unknown) => {
              if (isConflict(err)) return false;
              throw err;
            },
          );
        if (promoted) this.#events.record(seg, 'Normal', Reason.AutoPromoted, target.message);
        else this.#log.info('promotion not made: the Segmentation changed meanwhile', { segmentation: name });
      }
    }
    mark('promotion');
    this.#log.debug('reconciled', { segmentation: name, phaseMs: phases });
    // A write refused (admission, quota, RBAC) or failed is tried again with backoff, at the resync at
    // the latest: once the refusal is lifted, what it held back (a default deny too) follows within
    // the backoff, not only at the next resync, and a refusal that stays is not retried in a loop. So is
    // a promotion not made as its audit changed meanwhile.
    return errors.length > 0 || redecide
      ? { requeueAfter: this.#opts.resyncMs, retry: true }
      : { requeueAfter: this.#opts.resyncMs };
  }

  /**
   * Drops the state of a Segmentation found invalid (its spec, or a namespace an older one covers): it
   * learns nothing until it is valid again, when its graph is restored from its LearnedEdgeSets. The
   * edges learned since the last write are written first, else they would be lost with the state. When
   * that write fails, the state is kept (learning nothing: no spec, no namespace) and the error is
   * returned, so that the reconcile is retried with backoff and writes them then; valid again before,
   * the Segmentation goes on from the graph kept.
   */
  async #persistAndDrop(seg: Segmentation): Promise<Error | undefined> {
    const name = seg.metadata.name;
    const st = this.#states.get(name);
    if (st !== undefined && st.restored && st.uid === (seg.metadata.uid ?? '')) {
      st.spec = undefined;
      st.namespaces = new Set();
      st.analysis = undefined;
      try {
        await this.#persist(seg, st, true);
      } catch (err) {
        this.#log.warn('could not persist learned edges', { segmentation: name, error: errText(err) });
        return new Error(
          `the edges learned since the last write could not be written to LearnedEdgeSets (kept in memory, retried): ${errText(err)}`,
        );
      }
    }
    this.#states.delete(name);
    return undefined;
  }

  /**
   * Drops the repairs (see #repairedFrom) of objects the informers no longer hold (pruned, removed, their
   * namespace or Segmentation deleted): one made again is created, not repaired, so the entry would
   * never be read, and the map would keep one per object ever repaired.
   */
  #forgetRepairsOfGone(): void {
    for (const key of this.#repairedFrom.keys()) {
      const space = key.indexOf(' ');
      const kind = key.slice(0, space);
      const informer = kind === 'NetworkPolicy' ? this.#cache.networkPolicies : this.#proposals;
      if (informer.get(key.slice(space + 1)) === undefined) this.#repairedFrom.delete(key);
    }
  }

  /**
   * The namespaces where a pod carries the quarantine label: read again from the pods only when the
   * cache changed (its version counts every pod event), else the same set as last time.
   */
  #quarantined(): Set<string> {
    return this.#quarantinedMemo.get([this.#cache.version], () => {
      const quarantined = new Set<string>();
      for (const pod of this.#cache.pods.list())
        if (pod.metadata.labels?.[QUARANTINE_LABEL] !== undefined)
          quarantined.add(pod.metadata.namespace ?? '');
      return quarantined;
    });
  }

  async #state(seg: Segmentation): Promise<SegState> {
    const name = seg.metadata.name;
    let st = this.#states.get(name);
    if (st && st.uid !== (seg.metadata.uid ?? '')) st = undefined;
    if (!st) {
      st = {
        uid: seg.metadata.uid ?? '',
        edges: new EdgeStore(),
        restored: false,
        namespaces: new Set(),
        mode: 'Learn',
        flows: seg.status?.flowsIngested ?? 0,
        auditChanges: 0,
        blockedChanges: 0,
        auditWritten: 0,
        persistedVersion: -1,
        lastPersistAt: 0,
        persistedShards: new Map(),
        lastEvidenceAt: 0,
        lastEvidenceRefreshAt: 0,
        memo: new ReconcileMemo(),
      };
      this.#states.set(name, st);
    }
    if (!st.restored) {
      // Read through the API (not the cache) so a new leader sees the latest persisted graph.
      const list = await this.#client.list<LearnedEdgeSet>(resourcePath('LearnedEdgeSet'), {
        labelSelector: `${SEGMENTATION_LABEL}=${name}`,
      });
      for (const les of list.items) {
        // A shard a Segmentation of the same name left behind (deleted, its finalizer taken out by hand,
        // the garbage collector not there yet): its graph is not this one's, and the shard is deleted.
        const owner = (les.metadata.ownerReferences ?? []).find((r) => r.controller);
        if (owner && seg.metadata.uid && owner.uid !== seg.metadata.uid) {
          await this.#client.delete(objectPath(les));
          continue;
        }
        st.edges.restore(les.spec.edges ?? []);
        const { workloads, problems } = restoredWorkloads(les.spec.workloads);
        for (const w of workloads) if (!this.#restoredFlowOnly.has(w.id)) this.#restoredFlowOnly.set(w.id, w);
        for (const problem of problems)
          this.#log.warn('a workload known only from flows left out of the restored graph', {
            segmentation: name,
            learnedEdgeSet: les.metadata.name,
            problem,
          });
        st.persistedShards.set(les.metadata.name, sortedJson(les.spec));
      }
      st.restored = true;
      st.persistedVersion = st.edges.version;
    }
    return st;
  }

  /**
   * On a graceful shutdown (the reconciles have ended): writes into status the audit as this replica
   * holds it, for the next leader to resume. The flows audited since the last reconcile (reconciles run at
   * --resync, not at each flow) are in memory only; lost, a would-be-blocked flow among them would be
   * forgotten, and AuditClean could call a window clean in which a flow would have been blocked. Only
   * when status records this very audit (the same Segmentation and mode family, the frozen proposal the
   * audit is of); the rest of the status is what the last reconcile wrote, with the counts of the audit
   * and, when a flow would now be blocked, AuditClean brought up to date (the next leader recomputes all).
   */
  async #persistAudit(cached: Segmentation, st: SegState): Promise<void> {
    const seg = this.#withWrittenStatus(cached.metadata.name, cached);
    const old = seg?.status;
    const audit = st.audit;
    if (!seg || !old?.audit || !audit || !st.spec) return;
    if (st.uid !== (seg.metadata.uid ?? '') || old.mode === 'Learn' || old.mode === undefined) return;
    if (st.auditedHash === undefined || old.proposal?.hash !== st.auditedHash) return;
    const now = this.#opts.now();
    const windowMs = st.spec.audit.windowMs;
    const verdict = auditVerdict(audit, now, windowMs, old.unobserved ?? 0);
    const clean = findCondition(old.conditions, C.AuditClean);
    const conditions =
      verdict.reason === Reason.FlowsWouldBeBlocked &&
      (clean?.reason !== verdict.reason || verdict.wouldBlock !== old.wouldBlock)
        ? setCondition(
            old.conditions ?? [],
            { type: C.AuditClean, status: 'False', reason: verdict.reason, message: verdict.message },
            new Date(now).toISOString(),
            clean?.observedGeneration,
          )
        : old.conditions;
    const status: SegmentationStatus = {
      ...old,
      wouldBlock: verdict.wouldBlock,
      unauditable: verdict.unauditable,
      flowsIngested: st.flows,
      ...(conditions ? { conditions } : {}),
      audit: auditStatus(audit),
    };
    const versions = [seg.metadata.resourceVersion ?? ''];
    const auditChanges = st.auditChanges;
    await this.#writeStatus(seg, versions, status, now);
    st.auditWritten = Math.max(st.auditWritten, auditChanges);
  }

  /** Writes LearnedEdgeSet shards whose content changed, and deletes shards no longer used. */
  async #persist(seg: Segmentation, st: SegState, force: boolean): Promise<void> {
    const now = this.#opts.now();
    if (st.edges.version === st.persistedVersion) return;
    if (!force && now - st.lastPersistAt < this.#opts.persistIntervalMs) return;
    const version = st.edges.version;
    // The workloads known only from flows its edges have, with the labels their flows gave: a restarted
    // controller, or a new leader, places and selects them as this one does.
    const flowOnly = new Map<string, Record<string, string>>();
    for (const w of this.#restoredFlowOnly.values()) flowOnly.set(w.id, w.labels);
    for (const w of this.#identity?.identity.workloads.values() ?? [])
      if (w.observedOnly) flowOnly.set(w.id, w.labels);
    const shards = shardEdges(seg, st.edges.persisted(), MAX_SHARD_BYTES, TARGET_EDGES_PER_SHARD, flowOnly);
    const wanted = new Set<string>();
    for (const s of shards) {
      wanted.add(s.metadata.name);
      const text = sortedJson(s.spec);
      if (st.persistedShards.get(s.metadata.name) === text) continue;
      await this.#client.apply(s);
      this.metrics.edgeWrites++;
      st.persistedShards.set(s.metadata.name, text);
    }
    for (const les of this.#edgeSets.list()) {
      if (les.spec?.segmentation === seg.metadata.name && !wanted.has(les.metadata.name)) {
        await this.#client.delete(objectPath(les));
        st.persistedShards.delete(les.metadata.name);
      }
    }
    st.persistedVersion = version;
    st.lastPersistAt = now;
  }

  async #perform<T extends ProposedNetworkPolicy | NetworkPolicy>(
    seg: Segmentation,
    actions: Action<T>[],
    kind: string,
    errors: { reason: string; message: string }[],
    announce: boolean,
    inPlace: readonly T[] = [],
  ): Promise<{
    notInPlace: number;
    notDeleted: Set<string>;
    heldBack: number;
    unwritten: string[];
    untaken: string[];
    notCreated: Set<string>;
    written: Written;
  }> {
    let notInPlace = 0;
    // The objects (`namespace/name`) an apply was meant for that do not hold what was applied: refused
    // or failed (`unwritten`), or accepted but not taken (`untaken`). Of the first, the ones that did not
    // exist before: not there at all.
    const unwritten: string[] = [];
    const untaken: string[] = [];
    const notCreated = new Set<string>();
    // Default denies held back (not created or changed, or deleted) while a policy of their namespace
    // could not be applied: not in place, on purpose.
    let heldBack = 0;
    // The objects (`namespace/name`) whose deletion failed: still in place.
    const notDeleted = new Set<string>();
    // Few actions: one Event each. Many (a first enforcement): one summary Event per kind of action.
    const each = announce && actions.length <= EVENTS_PER_ACTION_LIMIT;
    // Writes that failed are announced in every mode: one Event each, or one in all when there are many.
    const failuresEach = actions.length <= EVENTS_PER_ACTION_LIMIT;
    let failed = 0;
    const done = { create: 0, drift: 0, prune: 0, held: 0, unapplied: 0, untaken: 0 };
    // Namespaces where a NetworkPolicy could not be applied: their default deny waits (it would cut off
    // what that policy allows) until a later reconcile has applied it.
    const failedIn = new Set<string>();
    // Namespaces whose default deny could not be deleted: their other NetworkPolicies stay until it is,
    // else the deny would cut off what they allow (a namespace no longer proposed, its last workload gone).
    const denyKeptIn = new Set<string>();
    // The NetworkPolicies (other than a default deny) that could not be created, by namespace: no policy
    // of this Segmentation selects their pods but the namespace's default deny, which alone would cut
    // off what they allow.
    const notCreatedIn = new Map<string, string[]>();
    const write = async (a: Action<T>): Promise<void> => {
      try {
        if (a.kind === 'apply') {
          const key = `${kind} ${objKey(a.object)}`;
          // The version repaired last time, still in the cache (its watch event of the repair not yet
          // in): repaired already, not drift again.
          const repair = a.from === undefined ? undefined : `${a.from} ${canonicalSpec(a.object.spec)}`;
          if (a.why === 'drift' && repair !== undefined && this.#repairedFrom.get(key) === repair) return;
          const { status: _s, ...body } = a.object as T & { status?: unknown };
          const result = await this.#client.apply(body as T);
          this.metrics.applies[`${kind}:${a.why}`] = (this.metrics.applies[`${kind}:${a.why}`] ?? 0) + 1;
          // The apply took only if the object now is what was applied: a field another manager holds
          // that the apply does not name stays as it was (server-side apply leaves it alone).
          const left = driftedFields(a.object, result);
          if (left.length > 0) {
            const message = `${kind} ${objKey(a.object)} still differs from the proposal after apply (${left.join(', ')}): another field manager holds what microseg does not set`;
            errors.push({ reason: Reason.ApplyFailed, message: `${a.why} ${message}` });
            done.untaken++;
            notInPlace++;
            untaken.push(objKey(a.object));
            failedIn.add(a.object.metadata.namespace ?? '');
            // A failure: announced in every mode, as a write that failed is.
            if (failuresEach) this.#events.record(seg, 'Warning', Reason.PolicyDriftNotRepaired, message);
            return;
          }
          if (a.why === 'drift' && repair !== undefined) this.#repairedFrom.set(key, repair);
          else this.#repairedFrom.delete(key);
          done[a.why]++;
          if (each)
            this.#events.record(
              seg,
              a.why === 'drift' ? 'Warning' : 'Normal',
              a.why === 'drift' ? Reason.PolicyDriftRepaired : Reason.PolicyApplied,
              a.why === 'drift'
                ? `${kind} ${objKey(a.object)} was changed or deleted outside microseg; restored`
                : `${kind} ${objKey(a.object)} applied`,
            );
        } else if (a.kind === 'delete') {
          await this.#client.delete(resourcePath(kind, a.namespace, a.name));
          this.metrics.applies[`${kind}:prune`] = (this.metrics.applies[`${kind}:prune`] ?? 0) + 1;
          done[a.why]++;
          if (each)
            this.#events.record(
              seg,
              a.why === 'unapplied' ? 'Warning' : 'Normal',
              Reason.PolicyPruned,
              a.why === 'held'
                ? `${kind} ${a.namespace}/${a.name} deleted: held back while a policy of its namespace is not in place (a name conflict)`
                : a.why === 'unapplied'
                  ? `${kind} ${a.namespace}/${a.name} deleted: held back while ${(a.because ?? []).join(', ')} could not be created`
                  : `${kind} ${a.namespace}/${a.name} is no longer proposed; deleted`,
            );
        } else if (a.kind === 'held') {
          if (announce) this.#events.record(seg, 'Warning', Reason.PolicyNameConflict, heldMessage(a));
        } else if (announce) {
          this.#events.record(
            seg,
            'Warning',
            Reason.PolicyNameConflict,
            `${kind} ${a.namespace}/${a.name} exists and is not managed by this Segmentation (${a.holder}); left untouched`,
          );
        }
      } catch (err) {
        if (a.kind === 'apply') {
          notInPlace++;
          unwritten.push(objKey(a.object));
          if (a.why === 'create') notCreated.add(objKey(a.object));
          const ns = a.object.metadata.namespace ?? '';
          failedIn.add(ns);
          if (a.why === 'create' && !isDefaultDeny(a.object))
            notCreatedIn.set(ns, [...(notCreatedIn.get(ns) ?? []), objKey(a.object)]);
        } else if (a.kind === 'delete') {
          notDeleted.add(`${a.namespace}/${a.name}`);
          if (a.defaultDeny) denyKeptIn.add(a.namespace);
        }
        const what = a.kind === 'apply' ? objKey(a.object) : `${a.namespace}/${a.name}`;
        const message = `${a.kind} ${kind} ${what}: ${errText(err)}`;
        errors.push({ reason: Reason.ApplyFailed, message });
        // Each failure is an Event of its own: the Degraded condition's Event comes only when it turns
        // True, so a write that fails while it is True already would be named nowhere but in status.
        failed++;
        if (failuresEach) this.#events.record(seg, 'Warning', Reason.ApplyFailed, message);
      }
    };
    // What allows first, then the default denies, then what is deleted (see enforcementPhases).
    const [opening, denies, deletes] = enforcementPhases(actions);
    await pool(opening, WRITE_CONCURRENCY, write);
    // A default deny already in place where a policy could not be created is deleted: it alone selects
    // that policy's pods and would cut off all they do until a later reconcile creates it (the deny is
    // then created again, after it). Not when this plan deletes it already (a name conflict, a prune).
    const deleting = new Set(
      actions.flatMap((a) => (a.kind === 'delete' ? [`${a.namespace}/${a.name}`] : [])),
    );
    const unapplied: UnappliedDelete[] =
      kind === 'NetworkPolicy'
        ? inPlace
            .filter(
              (o) =>
                // By its name too: a deny changed by hand (a rule added) still selects every pod.
                (o.metadata.name === DEFAULT_DENY_NAME || isDefaultDeny(o)) &&
                !o.metadata.deletionTimestamp &&
                notCreatedIn.has(o.metadata.namespace ?? '') &&
                !deleting.has(objKey(o)),
            )
            .sort((a, b) => byteOrder(objKey(a), objKey(b)))
            .map((o) => ({
              kind: 'delete',
              namespace: o.metadata.namespace ?? '',
              name: o.metadata.name,
              why: 'unapplied',
              defaultDeny: true,
              because: notCreatedIn.get(o.metadata.namespace ?? '')!,
            }))
        : [];
    const unappliedIn = new Set(unapplied.map((a) => a.namespace));
    await pool(unapplied as Action<T>[], WRITE_CONCURRENCY, write);
    for (const a of unapplied) {
      // Not in place any more (or, its deletion failed, in place and cutting off): not enforced either way.
      heldBack++;
      // A failed deletion is in the errors already.
      if (!notDeleted.has(`${a.namespace}/${a.name}`))
        errors.push({ reason: Reason.ApplyFailed, message: unappliedMessage(a) });
    }
    // Only a NetworkPolicy denies: a ProposedNetworkPolicy held back would be missing from the proposal
    // a promotion freezes, and Enforce would then have no default deny for its namespace.
    const held = new Set(
      kind === 'NetworkPolicy'
        ? denies.filter((a) => a.kind === 'apply' && failedIn.has(a.object.metadata.namespace ?? ''))
        : [],
    );
    for (const a of held)
      // A deny deleted above is counted as such (unapplied), not again as not applied.
      if (a.kind === 'apply' && !unappliedIn.has(a.object.metadata.namespace ?? '')) {
        heldBack++;
        errors.push({
          reason: Reason.ApplyFailed,
          message: `${a.why} ${kind} ${objKey(a.object)}: held back, as a policy of its namespace could not be applied (the default deny would cut off what that policy allows)`,
        });
      }
    await pool(
      denies.filter((a) => !held.has(a)),
      WRITE_CONCURRENCY,
      write,
    );
    const kept = new Set(
      kind === 'NetworkPolicy'
        ? deletes.filter((a) => a.kind === 'delete' && denyKeptIn.has(a.namespace))
        : [],
    );
    for (const a of kept)
      if (a.kind === 'delete')
        errors.push({
          reason: Reason.ApplyFailed,
          message: `delete ${kind} ${a.namespace}/${a.name}: held back, as the default deny of its namespace could not be deleted (without this policy, the deny would cut off what it allows)`,
        });
    await pool(
      deletes.filter((a) => !kept.has(a)),
      WRITE_CONCURRENCY,
      write,
    );
    if (!failuresEach && failed > 0)
      this.#events.record(
        seg,
        'Warning',
        Reason.ApplyFailed,
        `${failed} ${plural(kind)} could not be written (see the Degraded condition)`,
      );
    if (!failuresEach && done.untaken > 0)
      this.#events.record(
        seg,
        'Warning',
        Reason.PolicyDriftNotRepaired,
        `${done.untaken} ${plural(kind)} still differ from the proposal after apply (see the Degraded condition)`,
      );
    if (announce && !each) {
      if (done.create > 0)
        this.#events.record(seg, 'Normal', Reason.PolicyApplied, `${done.create} ${plural(kind)} applied`);
      if (done.drift > 0)
        this.#events.record(
          seg,
          'Warning',
          Reason.PolicyDriftRepaired,
          `${done.drift} ${plural(kind)} were changed or deleted outside microseg; restored`,
        );
      if (done.prune > 0)
        this.#events.record(
          seg,
          'Normal',
          Reason.PolicyPruned,
          `${done.prune} ${plural(kind)} no longer proposed; deleted`,
        );
      if (done.held > 0)
        this.#events.record(
          seg,
          'Normal',
          Reason.PolicyPruned,
          `${done.held} ${plural(kind)} deleted: held back while a policy of their namespace is not in place (a name conflict)`,
        );
      if (done.unapplied > 0)
        this.#events.record(
          seg,
          'Warning',
          Reason.PolicyPruned,
          `${done.unapplied} ${plural(kind)} deleted: held back while a policy of their namespace could not be created`,
        );
    }
    return {
      notInPlace,
      notDeleted,
      heldBack,
      unwritten: unwritten.sort(byteOrder),
      untaken: untaken.sort(byteOrder),
      notCreated,
      written: {
        created: done.create,
        updated: done.drift,
        deleted: done.prune + done.held + done.unapplied,
      },
    };
  }

  /** `why`: what the `PoliciesRemoved` Event gives as the reason (by default, the mode). */
  async #removeEnforced(
    seg: Segmentation,
    managed: NetworkPolicy[],
    errors: { reason: string; message: string }[],
    why = 'not in Enforce mode',
  ): Promise<void> {
    let n = 0;
    // The default denies first: what stays is never more closed than before, nor than after.
    const removed = managed.filter((np) => !np.metadata.deletionTimestamp);
    // Namespaces whose default deny could not be deleted: their other policies stay until it is, else
    // the deny alone would select their pods and cut off all they do.
    const keptDeny = new Set<string>();
    let failed = 0;
    const remove = async (np: NetworkPolicy): Promise<void> => {
      try {
        await this.#client.delete(objectPath(np));
        n++;
      } catch (err) {
        if (isDefaultDeny(np)) keptDeny.add(np.metadata.namespace ?? '');
        const message = `delete NetworkPolicy ${objKey(np)}: ${errText(err)}`;
        errors.push({ reason: Reason.ApplyFailed, message });
        failed++;
        if (removed.length <= EVENTS_PER_ACTION_LIMIT)
          this.#events.record(seg, 'Warning', Reason.ApplyFailed, message);
      }
    };
    await pool(removed.filter(isDefaultDeny), WRITE_CONCURRENCY, remove);
    await pool(
      removed.filter((np) => !isDefaultDeny(np) && !keptDeny.has(np.metadata.namespace ?? '')),
      WRITE_CONCURRENCY,
      remove,
    );
    if (failed > 0 && removed.length > EVENTS_PER_ACTION_LIMIT)
      this.#events.record(
        seg,
        'Warning',
        Reason.ApplyFailed,
        `${failed} NetworkPolicies could not be removed (see the Degraded condition)`,
      );
    if (n > 0) {
      this.metrics.applies['NetworkPolicy:remove'] = (this.metrics.applies['NetworkPolicy:remove'] ?? 0) + n;
      this.#events.record(seg, 'Normal', Reason.PoliciesRemoved, `${n} NetworkPolicies removed: ${why}`);
    }
  }

  /**
   * The segment each workload's ProposedNetworkPolicy of this Segmentation names (its
   * `microseg.dev/segment` label, by its `microseg.dev/workload` annotation). The label does not say
   * the segment's kind: platform, unobserved and no-east-west names are never kept (see inheritNames), but a pin's
   * name, its pin since removed, may be kept by the community of its former members.
   */
  #proposedSegments(segmentation: string, uid: string | undefined): Map<string, string> {
    const out = new Map<string, string>();
    for (const p of this.#proposals.list()) {
      if (!isOurs(p, segmentation, uid)) continue;
      const workload = p.metadata.annotations?.[WORKLOAD_ANNOTATION];
      const segment = p.metadata.labels?.[SEGMENT_POLICY_LABEL];
      if (workload && segment) out.set(workload, segment);
    }
    return out;
  }

  /**
   * The cached Segmentation, with the status this replica wrote last in place of the cached one while
   * the cache has not yet seen that write (see #written).
   */
  #withWrittenStatus(name: string, cached: Segmentation | undefined): Segmentation | undefined {
    const w = this.#written.get(name);
    if (!w) return cached;
    if (cached && cached.metadata.uid === w.uid && w.before.includes(cached.metadata.resourceVersion ?? ''))
      return { ...cached, status: w.status };
    this.#written.delete(name);
    return cached;
  }

  /** `versions`: the resourceVersions the status was computed from (see #written). */
  async #writeStatus(
    seg: Segmentation,
    versions: string[],
    status: SegmentationStatus,
    now: number,
  ): Promise<void> {
    const before = seg.status?.conditions ?? [];
    for (const ev of transitionEvents(before, status.conditions ?? []))
      this.#events.record(seg, ev.type, ev.reason, ev.message);
    const strip = (s: SegmentationStatus | undefined) => sortedJson(s ?? {});
    if (strip(seg.status) === strip(status)) return;
    void now;
    const written: Segmentation | undefined = await this.#client.apply(
      {
        apiVersion: API_VERSION,
        kind: 'Segmentation',
        metadata: { name: seg.metadata.name },
        status,
      },
      { subresource: 'status' },
    );
    this.#written.set(seg.metadata.name, {
      uid: seg.metadata.uid,
      before: versions.slice(-16),
      after: written?.metadata?.resourceVersion ?? '',
      status,
    });
  }

  async #cleanup(seg: Segmentation): Promise<Result> {
    const name = seg.metadata.name;
    // Without microseg's finalizer there is nothing of its own to do: its cleanup is done (the object
    // waits for another finalizer, and each change of it would delete and announce all over again), or
    // the finalizer was taken out by hand to leave the objects to the garbage collector.
    if (!(seg.metadata.finalizers ?? []).includes(FINALIZER)) {
      this.#states.delete(name);
      return {};
    }
    const errors: { reason: string; message: string }[] = [];
    await this.#removeEnforced(
      seg,
      this.#cache.networkPolicies.list().filter((np) => isOurs(np, name, seg.metadata.uid)),
      errors,
      'the Segmentation is being deleted',
    );
    for (const p of this.#proposals.list().filter((o) => isOurs(o, name, seg.metadata.uid)))
      await this.#client.delete(objectPath(p));
    for (const les of this.#edgeSets.list().filter((o) => o.spec?.segmentation === name))
      await this.#client.delete(objectPath(les));
    if (errors.length > 0) return { error: new Error(errors.map((e) => e.message).join('; ')) };
    this.#states.delete(name);
    await this.#client.mergePatch(objectPath(seg), {
      metadata: {
        finalizers: (seg.metadata.finalizers ?? []).filter((f) => f !== FINALIZER),
        resourceVersion: seg.metadata.resourceVersion,
      },
    });
    this.#events.record(
      seg,
      'Normal',
      Reason.CleanedUp,
      'removed the NetworkPolicies, proposal and learned graph of this Segmentation',
    );
    return {};
  }
}

/** A Segmentation's uid and generation: what it was found invalid at (see `#invalid`). */
function invalidKey(seg: Segmentation): string {
  return `${seg.metadata.uid ?? ''}/${seg.metadata.generation ?? ''}`;
}

/** The writes of a plan that took: objects created, updated (drift repaired, a new spec), deleted. */
interface Written {
  created: number;
  updated: number;
  deleted: number;
}

/**
 * What a plan's writes did, as the ProposalUpdated Event says: what was written, then, by name, the
 * objects whose write did not happen (refused, failed), did not take, or whose deletion failed.
 */
function summarise(
  kind: string,
  written: Written,
  unwritten: readonly string[],
  untaken: readonly string[],
  undeleted: readonly string[],
): string {
  return [
    `${plural(kind)}: ${written.created} created, ${written.updated} updated, ${written.deleted} deleted`,
    ...notAsWrittenClauses(unwritten, untaken, undeleted, ''),
  ].join('; ');
}

/**
 * One clause per kind of write that did not leave an object as planned (each list of `namespace/name`,
 * sorted), each counted as `N <noun>...`.
 */
function notAsWrittenClauses(
  unwritten: readonly string[],
  untaken: readonly string[],
  undeleted: readonly string[],
  noun: string,
): string[] {
  const parts = [
    [unwritten, 'could not be written'],
    [untaken, 'still differ from the proposal after apply'],
    [undeleted, 'no longer proposed could not be deleted'],
  ] as const;
  return parts
    .filter(([keys]) => keys.length > 0)
    .map(([keys, what]) => `${keys.length} ${noun}${what} (${keys.join(', ')}; see Degraded)`);
}

/** A default deny in place deleted while policies of its namespace (`because`) could not be created. */
type UnappliedDelete = Extract<Action<KObject>, { kind: 'delete' }>;

/** What the Degraded condition says of such a deny. */
function unappliedMessage(a: UnappliedDelete): string {
  const because = a.because ?? [];
  return `NetworkPolicy ${a.namespace}/${a.name} deleted: without ${because.join(', ')}, which could not be created, it would cut off what ${because.length === 1 ? 'that policy allows' : 'those policies allow'}`;
}

/** What a default deny held back for a name conflict in its namespace says (see planObjects). */
function heldMessage(a: { namespace: string; name: string; because: string[] }): string {
  return `NetworkPolicy ${a.namespace}/${a.name} held back: without ${a.because.join(', ')} it would cut off what ${a.because.length === 1 ? 'that policy allows' : 'those policies allow'}`;
}

/**
 * What ProposalStable says while the ProposedNetworkPolicies in place are not the proposal (each list
 * of `namespace/name`, sorted): refused or failed writes, writes that did not take, and deletions of
 * those no longer proposed that failed. Undefined when all are as proposed.
 */
function notAsProposedMessage(
  unwritten: readonly string[],
  untaken: readonly string[],
  undeleted: readonly string[],
): string | undefined {
  const said = notAsWrittenClauses(unwritten, untaken, undeleted, 'ProposedNetworkPolicies ');
  return said.length === 0
    ? undefined
    : `${said.join('; ')}: the proposal in place is not the one proposed, so it is not stable, and is not promoted, until it is`;
}

/** The plural of a kind, as messages name several objects: NetworkPolicy → NetworkPolicies. */
export function plural(kind: string): string {
  return /[^aeiou]y$/.test(kind) ? `${kind.slice(0, -1)}ies` : `${kind}s`;
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** status.audit of an audit held in memory (bucket keys sorted, empty parts left out). */
function auditStatus(audit: AuditState): NonNullable<SegmentationStatus['audit']> {
  const sorted = (m: ReadonlyMap<number, number>) =>
    Object.fromEntries([...m].sort((a, b) => a[0] - b[0]).map(([k, v]) => [String(k), v]));
  return {
    since: new Date(audit.since).toISOString(),
    ...(audit.buckets.size > 0 ? { buckets: sorted(audit.buckets) } : {}),
    ...(audit.unauditable.size > 0 ? { unauditableBuckets: sorted(audit.unauditable) } : {}),
    ...(audit.lastBlocked ? { lastBlocked: new Date(audit.lastBlocked).toISOString() } : {}),
    ...(audit.samples.length > 0 ? { samples: audit.samples } : {}),
  };
}
