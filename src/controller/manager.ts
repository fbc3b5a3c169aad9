/**
 * Wires the controller process together: informers (cluster cache + microseg CRDs), leader election,
 * the Segmentation controller, flow telemetry (Hubble Relay and/or HTTP push, one bounded queue) and
 * the HTTP server. Every replica keeps its caches warm and serves /healthz, /readyz and /metrics; only
 * the leader ingests flows and writes. `stop()` shuts down gracefully: stop taking flows, persist the
 * learned graphs, release the Lease, close the server.
 */
import type { Router } from 'express';
import type { KObject, OtherObject } from '../model/k8s.ts';
import { Histogram } from '../telemetry/prom.ts';
import type { MetricFamily } from '../telemetry/prom.ts';
import { formatPrometheus } from '../telemetry/prom.ts';
import type { Checkpoint, QueueMetrics, Telemetry, TelemetryMetrics } from '../telemetry/index.ts';
import { telemetryMetricFamilies } from '../telemetry/metrics.ts';
import { validateCheckpoint } from '../telemetry/index.ts';
import type { LearnedEdgeSet, ProposedNetworkPolicy, Segmentation } from './api.ts';
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE } from './api.ts';
import { ClusterCache } from './cache.ts';
import { ClusterPolicies } from './cluster-policies.ts';
import { EventRecorder } from './events.ts';
import { Informer } from './informer.ts';
import type { KubeClient } from './kube.ts';
import { resourcePath } from './kube.ts';
import { commitDecision } from './decide.ts';
import type { PendingCommit } from './decide.ts';
import { LeaderElector } from './leader.ts';
import type { Logger } from './log.ts';
import { SegmentationController } from './segmentation.ts';
import type { SegmentationControllerOptions } from './segmentation.ts';
import type { Listening } from './server.ts';
import { controllerApp, leaderGate, listen } from './server.ts';
import { controllerViewSource } from './view.ts';
import { createApp } from '../server/app.ts';
import type { AuthOptions } from '../server/app.ts';
import type { Isolation } from '../isolate/api.ts';
import type { IsolationActions } from '../isolate/ui.ts';

/** Lease annotation carrying the Hubble resume position from one leader to the next. */
export const CHECKPOINT_ANNOTATION = 'microseg.dev/hubble-checkpoint';
/**
 * Largest checkpoint annotation written; beyond it the ahead-of-clock flows are dropped, the earliest
 * first, then the boundary identities.
 */
export const MAX_CHECKPOINT_BYTES = 32 * 1024;

function mergeQueues(a: QueueMetrics, b: QueueMetrics): QueueMetrics {
  return {
    capacity: a.capacity + b.capacity,
    queued: a.queued + b.queued,
    received: { ...a.received, ...b.received },
    delivered: { ...a.delivered, ...b.delivered },
    acknowledged: { ...a.acknowledged, ...b.acknowledged },
    dropped: { ...a.dropped, ...b.dropped },
  };
}

/**
 * The checkpoint as the Lease annotation, at most `MAX_CHECKPOINT_BYTES` long: when it is longer, as many
 * of the latest ahead-of-clock flows as fit are kept (the relay is likelier to still hold those and send
 * them again), and when even none fit, the boundary identities are dropped too.
 */
export function checkpointAnnotation(cp: Checkpoint): string {
  const ahead = cp.ahead ?? [];
  for (const seen of [cp.seen, []]) {
    const text = (n: number) =>
      JSON.stringify(
        n > 0 ? { time: cp.time, seen, ahead: ahead.slice(ahead.length - n) } : { time: cp.time, seen },
      );
    if (text(0).length > MAX_CHECKPOINT_BYTES) continue;
    // The most that fit: text(lo) fits, text(hi + 1) does not.
    let lo = 0;
    let hi = ahead.length;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (text(mid).length <= MAX_CHECKPOINT_BYTES) lo = mid;
      else hi = mid - 1;
    }
    return text(lo);
  }
  return JSON.stringify({ time: cp.time, seen: [] });
}

export interface ManagerOptions {
  client: KubeClient;
  log: Logger;
  /** This replica's name (the pod name): the Lease holder identity and Event reporter. */
  identity: string;
  /** Leader election; when false this process always leads (a single replica). */
  leaderElect: boolean;
  /**
   * The Lease's namespace; unless `controller.ownNamespace` says otherwise, also the namespace this
   * controller runs in, which no Segmentation covers unless its selector names it.
   */
  leaseNamespace: string;
  leaseName?: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  /** HTTP listen address; undefined: no server. */
  listen?: { host: string; port: number };
  /** Long-lived telemetry on every replica: the push endpoint (its router is mounted on the server). */
  telemetry?: Telemetry;
  /**
   * Leader-only telemetry: the Hubble Relay stream, created for each leadership term from the checkpoint
   * the previous leader left on the Lease, so a new leader resumes where the old one stopped.
   */
  hubble?: (checkpoint: Checkpoint | undefined) => Telemetry;
  controller?: SegmentationControllerOptions;
  /**
   * Which semantics the engines evaluate policies with (`controller.engine`, the isolation leak check's),
   * as a line logged at start, once the server listens.
   */
  semantics?: string;
  /**
   * Serve the web page and its JSON API next to the controller's endpoints. With a token, the API needs
   * it (the same bearer token as the flow push endpoint); without, the page is read-only.
   */
  ui?: { auth?: AuthOptions; allowedHosts?: readonly string[]; serviceHosts?: readonly string[] };
  /**
   * Isolation is on: with the page, every replica watches Isolations to show them, and with `actions`
   * an authenticated user of the page can isolate and release.
   */
  isolation?: { actions?: IsolationActions };
  /**
   * Work that runs only while this replica leads (the isolation reconciler); one with
   * `clusterPoliciesChanged` is told of the cluster-wide policies added, changed or deleted (see
   * `ClusterPolicies.onObjects`), whether it runs or not.
   */
  leaderTasks?: {
    start(): Promise<void>;
    stop(): Promise<void>;
    clusterPoliciesChanged?: (objs: readonly OtherObject[]) => void;
  }[];
  /**
   * More routers on every replica's server (the isolation webhooks), each with the endpoints it serves
   * that a 404 lists (`POST /webhooks/falco`; none for a bare router), and their metric families.
   */
  routers?: (Router | { router: Router; serves?: readonly string[] })[];
  extraMetrics?: () => MetricFamily[];
  /**
   * Label selector limiting which Segmentations this controller manages (several controllers, or a
   * canary, side by side). Default: all.
   */
  segmentationSelector?: string;
  /** Informer full relist period. */
  informerResyncMs?: number;
  informerBackoffMaxMs?: number;
  /**
   * How often the kinds of cluster-wide policies the API server serves are discovered (default 30 s,
   * not more often than every second): a kind found is watched from then on.
   */
  clusterPolicyDiscoveryMs?: number;
}

export class Manager {
  readonly cache: ClusterCache;
  readonly segmentations: Informer<Segmentation>;
  readonly proposals: Informer<ProposedNetworkPolicy>;
  readonly edgeSets: Informer<LearnedEdgeSet>;
  /** Isolations for the web page (isolation and the page both on). */
  readonly isolations: Informer<Isolation> | undefined;
  readonly events: EventRecorder;
  readonly controller: SegmentationController;
  readonly elector: LeaderElector | undefined;
  readonly #o: ManagerOptions;
  readonly #batchSeconds = new Histogram([0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5]);
  #server: Listening | undefined;
  #consumer: Promise<void> | undefined;
  #hubble:
    | { telemetry: Telemetry; consumer: Promise<void>; abort: AbortController; persister: NodeJS.Timeout }
    | undefined;
  /**
   * The Hubble position up to which every flow is persisted in LearnedEdgeSets and its audit results are
   * in the Segmentations' status: what the next leader resumes from, even after a crash.
   */
  #committed: Checkpoint | undefined;
  /** Positions noted at a persist whose audit results status does not hold yet (oldest first). */
  #pending: PendingCommit<Checkpoint>[] = [];
  readonly #persistIntervalMs: number;
  #abort = new AbortController();
  /** Aborted when stop() begins: the consumer then waits no more for the learned graphs' restore. */
  #stopping = new AbortController();
  #started = false;

  constructor(o: ManagerOptions) {
    this.#o = o;
    this.#persistIntervalMs = o.controller?.persistIntervalMs ?? 30_000;
    const common = {
      log: o.log,
      resyncMs: o.informerResyncMs,
      backoffMaxMs: o.informerBackoffMaxMs,
    };
    this.cache = new ClusterCache(o.client, common);
    // Cluster-wide policies for the audits' semantics engine: each kind served watched, the kinds
    // discovered at start and every 30 s (a CRD installed later).
    this.cache.clusterPolicies = new ClusterPolicies(o.client, {
      log: o.log,
      ...(o.clusterPolicyDiscoveryMs !== undefined ? { intervalMs: o.clusterPolicyDiscoveryMs } : {}),
      ...(o.informerResyncMs !== undefined ? { resyncMs: o.informerResyncMs } : {}),
      ...(o.informerBackoffMaxMs !== undefined ? { backoffMaxMs: o.informerBackoffMaxMs } : {}),
    });
    for (const t of o.leaderTasks ?? []) {
      const told = t.clusterPoliciesChanged;
      if (told) this.cache.clusterPolicies.onObjects((objs) => told(objs));
    }
    const ours = `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`;
    this.segmentations = new Informer<Segmentation>(o.client, {
      ...common,
      path: resourcePath('Segmentation'),
      name: 'Segmentation',
      ...(o.segmentationSelector ? { labelSelector: o.segmentationSelector } : {}),
    });
    this.proposals = new Informer<ProposedNetworkPolicy>(o.client, {
      ...common,
      path: resourcePath('ProposedNetworkPolicy'),
      name: 'ProposedNetworkPolicy',
    });
    this.edgeSets = new Informer<LearnedEdgeSet>(o.client, {
      ...common,
      path: resourcePath('LearnedEdgeSet'),
      name: 'LearnedEdgeSet',
      labelSelector: ours,
    });
    // Not among `informers()`: the page must not hold up readiness or leadership, e.g. on a cluster
    // whose Isolation CRD is not installed yet (the reconciler then only logs).
    this.isolations =
      o.ui && o.isolation
        ? new Informer<Isolation>(o.client, { ...common, path: resourcePath('Isolation'), name: 'Isolation' })
        : undefined;
    this.events = new EventRecorder(o.client, {
      component: 'microseg-controller',
      instance: o.identity,
      log: o.log,
    });
    this.controller = new SegmentationController({
      client: o.client,
      cache: this.cache,
      segmentations: this.segmentations,
      proposals: this.proposals,
      edgeSets: this.edgeSets,
      events: this.events,
      log: o.log.child({ controller: 'segmentation' }),
      options: { ...o.controller, ownNamespace: o.controller?.ownNamespace ?? o.leaseNamespace },
    });
    if (o.leaderElect) {
      this.elector = new LeaderElector(o.client, {
        namespace: o.leaseNamespace,
        name: o.leaseName ?? 'microseg-controller',
        identity: o.identity,
        leaseDurationMs: o.leaseDurationMs,
        renewDeadlineMs: o.renewDeadlineMs,
        retryPeriodMs: o.retryPeriodMs,
        log: o.log,
        onStartedLeading: (annotations) => {
          this.controller.startLeading();
          this.#startHubble(annotations[CHECKPOINT_ANNOTATION]);
          this.#startLeaderTasks();
        },
        onStoppedLeading: () => {
          void this.#stopHubble();
          void this.controller.stopLeading();
          void this.#stopLeaderTasks();
        },
        annotations: (): Record<string, string> =>
          this.#committed ? { [CHECKPOINT_ANNOTATION]: checkpointAnnotation(this.#committed) } : {},
      });
    }
  }

  informers(): Informer<KObject>[] {
    return [
      ...this.cache.informers(),
      this.segmentations,
      this.proposals,
      this.edgeSets,
    ] as unknown as Informer<KObject>[];
  }

  get synced(): boolean {
    return this.informers().every((i) => i.synced);
  }

  get port(): number | undefined {
    return this.#server?.port;
  }

  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    this.#abort = new AbortController();
    this.#stopping = new AbortController();
    if (this.#o.listen) {
      const gate = leaderGate(() => this.controller.leading);
      const isolations = this.isolations;
      const app = controllerApp({
        healthy: () => true,
        ready: () => (this.synced ? { ok: true } : { ok: false, reason: 'informer caches not synced' }),
        metrics: () => this.prometheus(),
        routers: [
          ...(this.#o.telemetry?.router
            ? [{ router: this.#o.telemetry.router, gate, serves: ['POST /v1/flows'] }]
            : []),
          // A Router is a function; an entry with what it serves is not.
          ...(this.#o.routers ?? []).map((r) => (typeof r === 'function' ? { router: r } : r)),
        ],
        ...(this.#o.ui
          ? {
              ui: createApp(
                controllerViewSource({
                  analyses: () => this.controller.analyses(),
                  analysisOf: (name) => this.controller.analysisOf(name),
                  leadership: () => ({
                    leading: this.controller.leading,
                    unrestored: (names) => this.controller.unrestored(names),
                    synced: this.synced,
                  }),
                  segmentations: () => this.segmentations.list(),
                  cluster: () => this.cache.workloadIdentity(),
                  proposals: () => this.proposals.list(),
                  networkPolicies: () => this.cache.networkPolicies.list(),
                  cronJob: (ns, name) => this.cache.cronJobs.get(`${ns}/${name}`),
                  snapshot: () => this.cache.snapshot(),
                  identity: () => this.controller.identity(),
                  ...(this.#o.controller?.engine ? { engine: this.#o.controller.engine } : {}),
                  ...(isolations ? { isolations: () => isolations.list() } : {}),
                  ...(this.#o.isolation?.actions ? { actions: this.#o.isolation.actions } : {}),
                }),
                {
                  ...(this.#o.ui.auth ? { auth: this.#o.ui.auth } : {}),
                  ...(this.#o.ui.allowedHosts ? { allowedHosts: this.#o.ui.allowedHosts } : {}),
                  ...(this.#o.ui.serviceHosts ? { serviceHosts: this.#o.ui.serviceHosts } : {}),
                  onInternalError: (err, req) =>
                    this.#o.log.error('web request failed', {
                      method: req.method,
                      path: req.path,
                      error: err instanceof Error ? err.message : String(err),
                      ...(err instanceof Error && err.stack ? { stack: err.stack } : {}),
                    }),
                  // A token check that failed (answered 503) is an outage to watch, not a bug.
                  onAuthUnavailable: (err, req) =>
                    this.#o.log.warn('web request credentials could not be checked', {
                      method: req.method,
                      path: req.path,
                      error: err instanceof Error ? err.message : String(err),
                    }),
                },
              ),
            }
          : {}),
      });
      try {
        this.#server = await listen(app, this.#o.listen.host, this.#o.listen.port);
      } catch (err) {
        // Nothing else has started yet: the manager is as before, and may be started again.
        this.#started = false;
        throw err;
      }
      this.#o.log.info('listening', { port: this.#server.port });
    }
    if (this.#o.semantics !== undefined) this.#o.log.info(this.#o.semantics);
    for (const i of this.informers()) i.start();
    this.isolations?.start();
    // stop() may come while the caches sync (SIGTERM soon after start): from then on nothing more is
    // started (no election, leading, stream or consumer that no stop() would end), and start() ends
    // without waiting for informers stop() has ended.
    const stopping = this.#stopping.signal;
    const stopped = new Promise<void>((resolve) =>
      stopping.aborted ? resolve() : stopping.addEventListener('abort', () => resolve(), { once: true }),
    );
    await Promise.race([this.cache.clusterPolicies?.start(), stopped]);
    if (stopping.aborted) return;
    await Promise.race([Promise.all(this.informers().map((i) => i.waitForSync())), stopped]);
    if (stopping.aborted) return;
    this.#o.log.info('caches synced', { objects: this.informers().reduce((n, i) => n + i.size, 0) });
    if (this.elector) this.elector.start();
    else {
      this.controller.startLeading();
      this.#startHubble(undefined);
      this.#startLeaderTasks();
    }
    if (this.#o.telemetry) {
      this.#o.telemetry.start();
      this.#consumer = this.#consume(this.#o.telemetry, this.#abort.signal);
    }
  }

  async #consume(t: Telemetry, signal: AbortSignal, replayable = false): Promise<void> {
    try {
      for await (const batch of t.batches(1000, signal)) {
        // A new leader counts flows only once the learned graphs are restored; meanwhile the queue
        // fills and streaming sources pause.
        // On shutdown it waits no more: a restore that never ends (its reconcile waiting on the API
        // server) must not hold up stop(), which waits for this loop to take the queue.
        if (
          this.controller.leading &&
          !(await this.controller.whenRestored(AbortSignal.any([signal, this.#stopping.signal]))) &&
          replayable &&
          this.#stopping.signal.aborted
        )
          // A stream the next leader is sent again (Hubble) leaves the batch unacknowledged: ingested
          // now, the graphs not restored would not learn it, and the position committed past it would
          // lose it for them.
          return;
        const t0 = performance.now();
        this.controller.ingest(batch.flows);
        this.#batchSeconds.observe((performance.now() - t0) / 1000);
        batch.ack();
      }
    } catch (err) {
      if (!signal.aborted) this.#o.log.error('flow consumer stopped', { error: String(err) });
    }
  }

  #startLeaderTasks(): void {
    for (const t of this.#o.leaderTasks ?? [])
      t.start().catch((err: unknown) =>
        this.#o.log.error('leader task failed to start', {
          error: err instanceof Error ? err.message : String(err),
        }),
      );
  }

  async #stopLeaderTasks(): Promise<void> {
    await Promise.all((this.#o.leaderTasks ?? []).map((t) => t.stop()));
  }

  #startHubble(annotation: string | undefined): void {
    if (!this.#o.hubble || this.#hubble) return;
    let checkpoint: Checkpoint | undefined;
    if (annotation) {
      try {
        checkpoint = validateCheckpoint(JSON.parse(annotation), `Lease annotation ${CHECKPOINT_ANNOTATION}`);
      } catch (err) {
        this.#o.log.warn('ignoring the Hubble checkpoint on the Lease', { error: String(err) });
      }
    }
    this.#committed = checkpoint;
    this.#pending = [];
    const telemetry = this.#o.hubble(checkpoint);
    const abort = new AbortController();
    telemetry.start();
    this.#o.log.info('streaming from Hubble Relay', { since: checkpoint?.time ?? 'now' });
    // Every persist interval: note the position (and the audit results up to it), persist the graphs,
    // then commit the latest position noted whose audit results the status holds. Flows are audited
    // at once but status is written by reconciles (every --resync): a position committed past a
    // would-be-blocked flow not yet in status would lose it in a crash, the next leader restoring the
    // audit from status and resuming the stream after it.
    const persister = setInterval(() => {
      const cp = telemetry.checkpoint();
      const audits = this.controller.auditMark();
      void this.controller.persistAll().then((ok) => {
        if (ok && cp) this.#pending.push({ checkpoint: cp, audits });
        this.#commitHeld();
      });
    }, this.#persistIntervalMs);
    persister.unref();
    this.#hubble = { telemetry, consumer: this.#consume(telemetry, abort.signal, true), abort, persister };
  }

  /** Commits the latest position noted whose audit results the status holds (see `commitDecision`). */
  #commitHeld(): void {
    const written = this.controller.auditWritten();
    if (!written) return;
    const { commit, pending } = commitDecision(this.#pending, written);
    if (commit) this.#committed = commit;
    this.#pending = pending;
  }

  /** Stops the leader-only stream, drained; its final position (for stop() to commit), if any. */
  async #stopHubble(): Promise<Checkpoint | undefined> {
    const h = this.#hubble;
    if (!h) return undefined;
    this.#hubble = undefined;
    clearInterval(h.persister);
    await h.telemetry.stop();
    await h.consumer; // the queue is closed: the consumer drains it and ends
    h.abort.abort();
    return h.telemetry.checkpoint();
  }

  /** The committed Hubble position (what the next leader resumes from). */
  get committedCheckpoint(): Checkpoint | undefined {
    return this.#committed;
  }

  /** Graceful shutdown. */
  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    // The queue is closed: the consumer takes what was accepted (a push answered 202) and ends. Aborting
    // it first would leave all but the batch at hand in the queue, neither learned nor counted. It does
    // not wait for a restore meanwhile (what is not restored yet learns nothing: counted as unmatched;
    // the Hubble stream's flows are left unacknowledged instead, for the next leader to be sent again).
    this.#stopping.abort();
    await this.#o.telemetry?.stop();
    await this.#consumer;
    this.#abort.abort();
    // The stream's final position is committed once the learned graphs and the audits (into status) are
    // written: the next leader is sent again only what this one did not keep.
    const final = await this.#stopHubble();
    if ((await this.controller.stopLeading({ persist: true })) && final) this.#committed = final;
    await this.#stopLeaderTasks();
    await this.elector?.stop();
    await this.events.flush();
    await this.cache.clusterPolicies?.stop();
    await Promise.all(
      [...this.informers(), ...(this.isolations ? [this.isolations] : [])].map((i) => i.stop()),
    );
    await this.#server?.close();
    this.#o.log.info('stopped');
  }

  metricFamilies(): MetricFamily[] {
    const m = this.controller.metrics;
    const informers = [
      ...this.informers(),
      ...(this.isolations ? [this.isolations as unknown as Informer<KObject>] : []),
    ];
    const fam: MetricFamily[] = [
      {
        name: 'microseg_hubble_checkpoint_seconds',
        help: 'Time of the newest Hubble flow persisted in the learned graph and audited into status (resume point of the next leader).',
        type: 'gauge',
        samples: [{ value: this.#committed ? Date.parse(this.#committed.time) / 1000 : 0 }],
      },
      {
        name: 'microseg_leader',
        help: 'Whether this replica is the leader (1) or not (0).',
        type: 'gauge',
        samples: [{ value: this.controller.leading ? 1 : 0 }],
      },
      {
        name: 'microseg_flows_ingested_total',
        help: 'Flows ingested into learned graphs by this replica.',
        type: 'counter',
        samples: [{ value: m.flowsIngested }],
      },
      {
        name: 'microseg_flows_dropped_total',
        help: 'Flows taken from the queue but not learned, by reason.',
        type: 'counter',
        samples: [
          { labels: { reason: 'not_leader' }, value: m.flowsNotLeader },
          { labels: { reason: 'no_segmentation' }, value: m.flowsUnmatched },
        ],
      },
      {
        name: 'microseg_learned_edges',
        help: 'Learned edges held in memory per Segmentation.',
        type: 'gauge',
        samples: this.controller.edgeCounts().map(([s, n]) => ({ labels: { segmentation: s }, value: n })),
      },
      {
        name: 'microseg_would_block_flows_total',
        help: 'Flows the frozen proposal would block (Audit and Enforce modes).',
        type: 'counter',
        samples: [{ value: m.wouldBlock }],
      },
      {
        name: 'microseg_unauditable_flows_total',
        help: 'Flows the audit could not check against the frozen proposal, as it could place an end at no pod or address it knows (Audit and Enforce modes).',
        type: 'counter',
        samples: [{ value: m.unauditable }],
      },
      {
        name: 'microseg_reconcile_total',
        help: 'Reconciles of Segmentations.',
        type: 'counter',
        samples: [{ value: m.reconciles }],
      },
      {
        name: 'microseg_reconcile_errors_total',
        help: 'Reconciles that failed and were retried.',
        type: 'counter',
        samples: [{ value: m.reconcileErrors }],
      },
      {
        name: 'microseg_reconcile_duration_seconds',
        help: 'Duration of Segmentation reconciles.',
        type: 'histogram',
        samples: [m.reconcileSeconds.sample()],
      },
      {
        name: 'microseg_flow_batch_duration_seconds',
        help: 'Time to ingest one batch of flows.',
        type: 'histogram',
        samples: [this.#batchSeconds.sample()],
      },
      {
        name: 'microseg_applies_total',
        help: 'Objects written or deleted, by kind and action (create, drift, prune, remove).',
        type: 'counter',
        samples: Object.entries(m.applies)
          .sort()
          .map(([k, v]) => {
            const [kind, action] = k.split(':') as [string, string];
            return { labels: { kind, action }, value: v };
          }),
      },
      {
        name: 'microseg_learned_edge_writes_total',
        help: 'LearnedEdgeSet shards written.',
        type: 'counter',
        samples: [{ value: m.edgeWrites }],
      },
      {
        name: 'microseg_informer_objects',
        help: 'Objects in each informer cache.',
        type: 'gauge',
        samples: informers.map((i) => ({ labels: { resource: i.name }, value: i.size })),
      },
      {
        name: 'microseg_informer_errors_total',
        help: 'List or watch failures per informer (each retried with backoff).',
        type: 'counter',
        samples: informers.map((i) => ({ labels: { resource: i.name }, value: i.stats.errors })),
      },
      {
        name: 'microseg_informer_relists_total',
        help: 'Full lists per informer (start, resync, 410 Gone).',
        type: 'counter',
        samples: informers.map((i) => ({ labels: { resource: i.name }, value: i.stats.lists })),
      },
      {
        name: 'microseg_apiserver_requests_total',
        help: 'Requests to the Kubernetes API by method and status code.',
        type: 'counter',
        samples: [...this.#o.client.requests].sort().map(([k, v]) => {
          const [method, code] = k.split(' ') as [string, string];
          return { labels: { method, code }, value: v };
        }),
      },
      {
        name: 'microseg_events_total',
        help: 'Kubernetes Events recorded, and failures to record.',
        type: 'counter',
        samples: [
          { labels: { result: 'ok' }, value: this.events.recorded },
          { labels: { result: 'error' }, value: this.events.errors },
        ],
      },
    ];
    fam.push(...(this.#o.extraMetrics?.() ?? []));
    return fam;
  }

  prometheus(): string {
    // The push queue (every replica) and the Hubble queue (leader) are reported as one: their sources
    // have distinct names, so per-source counters merge without collision.
    const parts = [this.#o.telemetry?.metrics(), this.#hubble?.telemetry.metrics()].filter(
      (m): m is TelemetryMetrics => m !== undefined,
    );
    const telemetry: MetricFamily[] =
      parts.length === 0
        ? []
        : telemetryMetricFamilies({
            queue: parts.map((p) => p.queue).reduce(mergeQueues),
            ...(parts.find((p) => p.hubble)?.hubble ? { hubble: parts.find((p) => p.hubble)!.hubble! } : {}),
            ...(parts.find((p) => p.push)?.push ? { push: parts.find((p) => p.push)!.push! } : {}),
          });
    return formatPrometheus([...this.metricFamilies(), ...telemetry]);
  }
}
