/**
 * What the web page shows, as plain JSON shapes, and the `ViewSource` interface every mode (the demo,
 * the CLI, the controller) implements to feed it. The server turns a source into HTTP; the page only
 * ever sees these shapes.
 */
import type { ServiceGraph } from '../graph/types.ts';
import type { NetworkPolicy, OtherObject } from '../model/k8s.ts';
import type { NotReplayed } from '../policy/audit.ts';
import type { PolicySetAudit } from '../policy/audit.ts';
import type { CronJobRuns } from '../policy/cronjobs.ts';
import type { Proposal } from '../policy/types.ts';
import type { SegmentResult } from '../segments/index.ts';

/** What a source is and what it can do; the page turns views and buttons on from this. */
export interface SourceInfo {
  /** `demo`, `offline` (files given to the CLI) or `controller`. */
  mode: 'demo' | 'offline' | 'controller';
  title: string;
  /** RFC 3339 time the data was computed. */
  generatedAt?: string;
  /**
   * Flow records read (after de-duplication), when known: noise left out of the graph included, a
   * record's `count` not added up (the graph's totals count flows by their counts).
   */
  flows?: number;
}

/** A Kubernetes-style condition, as a Segmentation reports it. */
export interface ConditionView {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime?: string;
}

/**
 * Whether an isolation is still in force (anything but released or failed): it may cut pods off now or
 * later, and can be released. See `isolationInEffect` for whether it cuts any off now.
 */
export function isolationActive(i: IsolationView): boolean {
  return i.state !== 'Released' && i.state !== 'Failed';
}

/**
 * Whether an isolation cuts pods off now: phase `Isolated` or `Leaking` (its pods are isolated, some rule
 * still admits traffic), or still `Pending` with pods isolated already (labelled before the leak check
 * publishes the phase). A `Pending` one with no pod isolated (not reconciled yet, a dry run, no pod to
 * isolate) cuts nothing off.
 */
export function isolationInEffect(i: IsolationView): boolean {
  if (!isolationActive(i)) return false;
  return i.state === 'Isolated' || i.state === 'Leaking' || i.pods.length > 0;
}

/** Key of a blocked flow: its graph edge id, or `src->dst:port/protocol` built the same way. */
export function blockedFlowKey(b: BlockedFlowView): string {
  return b.edge ?? `${b.source}->${b.target}:${b.port}/${b.protocol}`;
}

/** One observed (source, destination, protocol, port) the proposal would deny. */
export interface BlockedFlowView {
  /** Graph edge id (`src->dst:port/protocol`) when the flow maps onto an edge of the graph. */
  edge?: string;
  source: string;
  target: string;
  protocol: string;
  port: number;
  count: number;
  firstSeen?: string;
  lastSeen?: string;
  /** Why it would be blocked (the engine's reason), when known. */
  reason?: string;
}

/** What enforcing a proposal changes on the cluster, by `namespace/name`. */
export interface EnforceDiff {
  added: string[];
  changed: string[];
  removed: string[];
  unchanged: number;
  /**
   * Proposed names held by a NetworkPolicy microseg does not manage there (controller mode): enforcing
   * leaves those alone and reports the conflict.
   */
  conflicts?: string[];
  /**
   * Default denies held back (controller mode): a policy of their namespace is a conflict, and the deny
   * would cut off what that policy allows. Enforcing does not create them, and removes them when in place.
   */
  held?: string[];
}

/** The rollout state of one Segmentation (or the demo's offline audit). */
export interface AuditView {
  name: string;
  /** `Learn`, `Audit` or `Enforce`. */
  mode: string;
  phase?: string;
  namespaces: string[];
  conditions: ConditionView[];
  /** Start of the audit window (RFC 3339). */
  since?: string;
  wouldBlock: BlockedFlowView[];
  /**
   * Workloads in scope no flow was observed for: only the default deny selects them, so enforcing cuts
   * off every connection to or from them, and no flow of theirs shows in `wouldBlock`. `unobserved`
   * counts them; `unobservedWorkloads` names them, sorted (in the controller, the first 100, as the
   * Segmentation's status lists them).
   */
  unobserved: number;
  unobservedWorkloads: string[];
  /**
   * Observed connections the audit did not replay, so not in `wouldBlock`, by why (offline audits):
   * `protocol` ICMP, which NetworkPolicy cannot allow (blocked wherever a policy isolates an end);
   * `dropped` every observation dropped (denied now; blocked still unless a policy allows it); `node`
   * from a node to pods (a pod's own node is always admitted); `unplaced` an end the snapshot cannot
   * place. recommend's report.json names under `verification.willBeBlocked` the ICMP and dropped ones
   * its proposal blocks. Absent from the controller's audits.
   */
  notReplayed?: Record<NotReplayed, number>;
  enforce: EnforceDiff;
}

/** A pod-level leak found while an isolation is in place: traffic that still got through. */
export interface LeakView {
  time?: string;
  source: string;
  target: string;
  protocol?: string;
  port?: number;
  message: string;
}

export interface IsolationView {
  name: string;
  /** Namespace of the Isolation resource, when it is namespaced. */
  namespace?: string;
  /** Workload id (`namespace/Kind/name`) or pod (`namespace/pod`) the isolation targets. */
  target: string;
  /** Graph node ids marked as isolated on the page (the target's workload). */
  workloads: string[];
  pods: string[];
  /** How the isolation is enforced, e.g. `NetworkPolicy`, `CiliumNetworkPolicy`, `label`. */
  method: string;
  /** e.g. `Pending`, `Isolated`, `Leaking`, `Released`, `Failed`. */
  state: string;
  /** The status message: what was isolated, or why nothing was (e.g. a host-network pod). */
  message?: string;
  since?: string;
  reason?: string;
  leaks: LeakView[];
}

/** Reachability of one workload before and after the proposal, from the semantics engine. */
export interface BlastRadiusView {
  workload: string;
  before: ReachSummary;
  after: ReachSummary;
}

export interface ReachSummary {
  /** Workloads (or peers) this workload can open connections to. */
  canReach: number;
  /** Workloads (or peers) that can open connections to it. */
  reachableFrom: number;
  /** Up to a few examples of each, sorted. */
  reachExamples?: string[];
  fromExamples?: string[];
}

export interface IsolateRequest {
  /** Workload id (`namespace/Kind/name`). */
  workload: string;
  reason?: string;
}

/**
 * Thrown by a source method whose data this server cannot give now but another (or this one later)
 * can: the controller's non-leader replicas, which do not hold the learned graph. The API answers `503`
 * with `Retry-After` and `{"error": message}`, never empty data in its place.
 */
export class SourceUnavailable extends Error {
  readonly retryAfterSeconds: number;
  constructor(message: string, retryAfterSeconds = 1) {
    super(message);
    this.name = 'SourceUnavailable';
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/**
 * The data behind the page. Only `info`, `graph`, `segments` and `proposal` are required; a mode that
 * has no audit, isolation or engine data leaves those members out and the page hides the matching view.
 * Methods may return promises (the controller reads its caches).
 */
export interface ViewSource {
  info(): SourceInfo | Promise<SourceInfo>;
  graph(): ServiceGraph | Promise<ServiceGraph>;
  segments(): SegmentResult | Promise<SegmentResult>;
  proposal(): Proposal | Promise<Proposal>;
  /**
   * A token that changes whenever the graph changes; the server caches its layout per version. Default:
   * the graph is laid out once and cached for the life of the app.
   */
  version?(): string | Promise<string>;
  /**
   * The ids of the workloads in scope no flow was observed for (the page lists them: no node stands for
   * them). Default: the proposal's `unobserved`.
   */
  unobserved?(): readonly string[] | Promise<readonly string[]>;
  audits?(): AuditView[] | Promise<AuditView[]>;
  isolations?(): IsolationView[] | Promise<IsolationView[]>;
  blastRadius?(workload: string): BlastRadiusView | undefined | Promise<BlastRadiusView | undefined>;
  /** Isolate a workload; the server only calls it for authenticated requests. */
  isolate?(req: IsolateRequest, user: string): Promise<IsolationView>;
  /** Release an isolation by name; resolves false when there is no such isolation. */
  release?(name: string, user: string): Promise<boolean>;
  /**
   * What applying `given` NetworkPolicies would do to the observed traffic (`POST /audit`): the cluster
   * as it is against the same with them applied (see auditPolicySet); `prune` leaves out microseg's own
   * policies that `given` does not hold; `clusterPolicies`, cluster-wide policies given too, replace the
   * cluster's of their kind and name. `signal` aborts when the caller has gone: an audit done in slices
   * stops then (StepsAbandoned, see slices.ts). Without it, the API has no policy audit.
   */
  auditPolicies?(
    given: readonly NetworkPolicy[],
    opts: { prune: boolean; clusterPolicies: readonly OtherObject[]; signal?: AbortSignal },
  ): PolicySetAudit | Promise<PolicySetAudit>;
  /** The CronJob `namespace/name`, for its details (schedule, runs); undefined when not known. */
  cronJob?(namespace: string, name: string): CronJobRuns | undefined | Promise<CronJobRuns | undefined>;
}

/** A node as the page draws it. */
export interface ViewNode {
  id: string;
  /** A graph node kind, or `segment` for an aggregated segment, or `group` for aggregated peers. */
  kind: string;
  label: string;
  namespace?: string;
  segment?: string;
  roles?: string[];
  x: number;
  y: number;
  /**
   * Flows in + out, each once per graph node (a connection to a Service once for its client, once for
   * each backend it may have reached); for `segment`/`group` nodes, the sum over their members.
   */
  flows: number;
  /** For `segment`/`group` nodes: how many graph nodes it stands for. */
  members?: number;
  /** How many of the workloads it stands for are isolated (1 for an isolated workload). */
  isolated?: number;
  /**
   * How many of the workloads it stands for have an isolation in force that isolates no pod yet
   * (`Pending`: not reconciled yet, a dry run, no pod to isolate) and none that does.
   */
  isolationPending?: number;
}

/** Every (protocol, port) between two drawn nodes, merged into one edge. */
export interface ViewEdge {
  id: string;
  source: string;
  target: string;
  /** `TCP/8080` etc., sorted. */
  ports: string[];
  /** Flows between the two nodes, each once (also a connection to a Service on several of its edges). */
  count: number;
  /**
   * How many of `count` went to a Service's ClusterIP with several backends (or a backend taking it on
   * several ports): they may have reached another backend, whose edge carries them too. Absent when none.
   */
  viaService?: number;
  firstSeen: string;
  lastSeen: string;
  /** How many graph edges were merged into this one. */
  edges: number;
  /** True when no flow on it was forwarded (every observation dropped). */
  dropped?: boolean;
  /** With `audit=<name>`: flows on it the proposal would block. */
  blocked?: number;
  /** With `audit=<name>`: keys (`src->dst:port/protocol`) of the would-be-blocked flows it carries. */
  blockedFlows?: string[];
}

export interface SegmentSummary {
  id: string;
  kind: string;
  members: number;
  namespaces: string[];
  color: string;
}

export interface GraphView {
  /** `full`: every graph node; `segments`: segments aggregated, those in `expanded` shown in full. */
  view: 'full' | 'segments';
  expanded: string[];
  nodes: ViewNode[];
  edges: ViewEdge[];
  segments: SegmentSummary[];
  namespaces: string[];
  /**
   * Graph nodes and edges; `flows`: the flows folded into the graph, each once; `unobserved`: the
   * workloads in scope no flow was observed for, which no node stands for (`GET /unobserved` lists them).
   */
  totals: { nodes: number; edges: number; flows: number; unobserved: number };
  /** The audit whose would-be-blocked flows are marked on `edges`, when one was asked for. */
  audit?: string;
}

/** One edge touching a workload, for the details panel. */
export interface EdgeEvidenceView {
  id: string;
  peer: string;
  peerLabel: string;
  protocol: string;
  port: number;
  /** Flows folded into the graph edge (a connection to a Service counts on the edge to each backend). */
  count: number;
  /** How many of `count` went to a Service with several backends: the edges to the others carry them too. */
  viaService?: number;
  firstSeen: string;
  lastSeen: string;
  verdicts: Record<string, number>;
}

export interface NodeDetails {
  id: string;
  kind: string;
  label: string;
  namespace?: string;
  /**
   * True for a workload in scope no flow was observed for: it is not in the graph, and only the default
   * deny selects it (once enforced, every connection to or from it is blocked).
   */
  unobserved?: true;
  segment?: string;
  roles?: string[];
  labels?: Record<string, string>;
  ip?: string;
  names?: string[];
  /** As GraphNode: each flow once (a backend counts each connection to its Service it may have taken). */
  flowsIn: number;
  flowsOut: number;
  inbound: EdgeEvidenceView[];
  outbound: EdgeEvidenceView[];
  /** Names (`namespace/name`) of the proposed policies selecting this workload. */
  policies: string[];
  /** Those policies as multi-document YAML, ready to apply. */
  policyYaml: string;
  blastRadius?: BlastRadiusView;
  isolation?: IsolationView;
  /** For a CronJob the source knows: its schedule and runs (`cronJobView`). */
  cronJob?: CronJobView;
}

/** A CronJob's schedule and runs, as its object tells them (times RFC 3339, to the second). */
export interface CronJobView {
  /**
   * `spec.schedule`, and the zone of its times: `spec.timeZone`, else the zone a `TZ=` or `CRON_TZ=`
   * prefix of the schedule names (absent: the controller manager's zone, taken to be UTC).
   */
  schedule?: string;
  timeZone?: string;
  /** `spec.suspend`: no run starts. */
  suspended?: true;
  /** A Job of it is active (`status.active`). */
  running?: true;
  /** `status.lastScheduleTime` and `status.lastSuccessfulTime`. */
  lastRun?: string;
  lastSuccess?: string;
  /** When its schedule starts the next run, within a year (absent when suspended or not read). */
  nextRun?: string;
}

/** A workload in scope no flow was observed for (`GET /unobserved`). */
export interface UnobservedView {
  /** `namespace/Kind/name`. */
  id: string;
  /** Its name. */
  label: string;
  namespace: string;
  /** The kind in its id (`Deployment`, `CronJob`, a custom resource's kind, `Workload`, ...). */
  workloadKind: string;
}

export type { CronJobRuns, NetworkPolicy, PolicySetAudit };
