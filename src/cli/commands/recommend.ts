/**
 * `microseg recommend --flows FILE... --cluster FILE... --out DIR`: the offline pipeline. Reads flows and a
 * cluster snapshot, proposes least-privilege NetworkPolicies, proves them against every observed connection
 * and writes YAML per namespace plus report.json. A proposal that would block an observed connection is
 * not written (exit 1).
 */
import { constants } from 'node:fs';
import { lstat, open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { IngestStats } from '../../flows/reader.ts';
import { FlowReader, formatIngestStats, readFlows } from '../../flows/reader.ts';
import type { Flow } from '../../flows/types.ts';
import type { ClusterSnapshot } from '../../model/snapshot.ts';
import { InputError } from '../../model/snapshot.ts';
import type { Analysis, PipelineOptions } from '../../pipeline.ts';
import { aggregateFlows, analyse } from '../../pipeline.ts';
import { buildIdentity } from '../../identity/index.ts';
import type { Proof } from '../../policy/prove.ts';
import { proofFails, proveProposal } from '../../policy/prove.ts';
import { PolicyFiles, policyFileHeader, stableJsonPieces } from '../../policy/render.ts';
import { previousSegments } from '../previous.ts';
import { SYSTEM_NAMESPACES } from '../../policy/index.ts';
import { cronJobsNotRunSince, cronJobsNotRunWithin } from '../../policy/cronjobs.ts';
import { buildReport } from '../../policy/report.ts';
import { replaceRepeated, snapshotWarnings, VERIFY_EXTRA_KINDS } from '../../verify/load.ts';
import {
  checkDistinctSources,
  clusterFromFiles,
  flowFormatOption,
  flowsAndCluster,
  checkNamespaces,
  loadSnapshotFiles,
  refuseUnreadCluster,
  noFlowsMessage,
} from '../inputs.ts';
import { optionsCommand } from '../args.ts';
import { releaseMemory } from '../memory.ts';
import type { CliIO } from '../io.ts';
import { EXIT, UsageError } from '../io.ts';
import { nonEmptyOut, outputWriteError, prepareOutputDir, writeOutputFiles } from '../output.ts';
import { compareText, firstOf } from '../../model/order.ts';

/** The --help lines of the inputs recommend reads, which `serve` reads alike. */
export const INPUT_OPTION_HELP = `  --flows FILE             flow source (repeatable, each source once; '-' reads standard input)
  --cluster FILE           cluster snapshot (repeatable)`;

/**
 * The --help lines of the options of the analysis, which `serve` takes alike; `verb`: what the command
 * does with the policies (recommend writes them, serve proposes them).
 */
export function analysisOptionHelp(verb: 'write' | 'propose'): string {
  return `  --format FORMAT          auto (default), hubble, generic, inspektor-gadget, kubescape
  --strict                 stop at the first bad input line, or at a policy field its API does not
                           define (a warning without it: read without the field, as the API server)
  --namespace NS           ${verb} policies for this namespace (repeatable; default: every observed
                           namespace except kube-system, kube-public, kube-node-lease); one the
                           snapshot lacks is bad usage, one with no observed workload gets no policy
                           (a warning)
  --named-ports            use the destination's named container ports in rules that select its pods
                           (numbers in egress rules to an ipBlock, such as a host-network workload's nodes)
  --external-prefix N      widen external IPv4 peers to /N (default 32)
  --external-prefix-v6 N   widen external IPv6 peers to /N (default 128)
  --world-ingress MODE     any (default): internet-facing workloads accept 0.0.0.0/0, and ::/0 too in a
                           cluster with IPv6 pod or Service addresses, each minus the pod networks, on
                           observed ports; observed: only the client addresses seen
  --include-dropped        also allow connections whose every observation was dropped
  --no-default-deny        do not ${verb} the per-namespace default-deny policy
  --resolution R           Louvain resolution (default 1)
  --seed S                 Louvain seed (default 1)`;
}

export const HELP = `usage: microseg recommend --flows FILE [--flows FILE ...] --cluster FILE [--cluster FILE ...] [--out DIR]

Reads flows (Hubble jsonpb, generic JSON lines, Inspektor Gadget trace_tcp, Kubescape NetworkNeighborhood;
plain or gzip; '-' for standard input) and a cluster snapshot (kubectl get ... -o json|yaml), proposes
least-privilege NetworkPolicies, proves them against every observed connection, and writes
DIR/<namespace>.yaml and DIR/report.json, all or nothing. The <namespace>.yaml files an earlier run
wrote (known by their first line) that this run does not write are removed with them when the run
covers their namespace (those --namespace names; without it, all but the system ones), else kept; the
summary names both. Files microseg did not write are never touched. The segment names of the earlier
run (its DIR/report.json) are kept by the communities most of whose members had them.

options:
${INPUT_OPTION_HELP}
  --out DIR                output directory (default: policies)
${analysisOptionHelp('write')}
  --quiet                  print nothing on success

exit codes: 0 written; 1 not written because the proposal would block observed connections, or
            cannot check them;
            2 bad usage or input, no flow read at all, or no policy proposed from the flows read
            (nothing written); 3 internal error`;

/** The options of the analysis (analysisOptionHelp), which `serve` takes alike. */
export const ANALYSIS_OPTIONS = {
  format: { type: 'string' },
  strict: { type: 'boolean' },
  namespace: { type: 'string', multiple: true },
  'named-ports': { type: 'boolean' },
  'external-prefix': { type: 'string' },
  'external-prefix-v6': { type: 'string' },
  'world-ingress': { type: 'string' },
  'include-dropped': { type: 'boolean' },
  'no-default-deny': { type: 'boolean' },
  resolution: { type: 'string' },
  seed: { type: 'string' },
} as const;

/** The options the command takes, as node:util parseArgs reads them (its --help lists each). */
export const OPTIONS = {
  flows: { type: 'string', multiple: true },
  cluster: { type: 'string', multiple: true },
  out: { type: 'string' },
  ...ANALYSIS_OPTIONS,
  quiet: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/**
 * A whole-number option, written in decimal digits: Number() would read an empty value (an unset
 * variable in a script) or blanks as 0, which for --external-prefix widens every external peer to the
 * whole internet, and would take hexadecimal or exponents.
 */
function intOption(v: string | undefined, name: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < min || n > max)
    throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(v)}`);
  return n;
}

export function pipelineOptions(values: Record<string, unknown>): PipelineOptions {
  const wi = values['world-ingress'] as string | undefined;
  if (wi !== undefined && wi !== 'any' && wi !== 'observed')
    throw new UsageError(`--world-ingress must be any or observed, got ${JSON.stringify(wi)}`);
  const resolution = values.resolution === undefined ? undefined : Number(values.resolution);
  if (resolution !== undefined && !(resolution > 0 && Number.isFinite(resolution)))
    throw new UsageError(`--resolution must be a positive number, got ${JSON.stringify(values.resolution)}`);
  const policy: NonNullable<PipelineOptions['policy']> = {};
  if (values.namespace) policy.namespaces = values.namespace as string[];
  if (values['named-ports']) policy.namedPorts = true;
  const p4 = intOption(values['external-prefix'] as string | undefined, 'external-prefix', 0, 32);
  if (p4 !== undefined) policy.externalPrefix = p4;
  const p6 = intOption(values['external-prefix-v6'] as string | undefined, 'external-prefix-v6', 0, 128);
  if (p6 !== undefined) policy.externalPrefixV6 = p6;
  if (wi) policy.worldIngress = wi;
  if (values['include-dropped']) policy.includeDropped = true;
  if (values['no-default-deny']) policy.defaultDeny = false;
  const segments: NonNullable<PipelineOptions['segments']> = {};
  if (resolution !== undefined) segments.resolution = resolution;
  const seed = intOption(values.seed as string | undefined, 'seed', 0, 2 ** 31 - 1);
  if (seed !== undefined) segments.seed = seed;
  return { policy, segments };
}

export interface RecommendResult {
  analysis: Analysis;
  /** The snapshot analysed: the one given, an object given more than once under one name once. */
  snapshot: ClusterSnapshot;
  proof: Proof;
  report: object;
  /** The policy files and report.json, rendered as they are read. */
  files: PolicyFiles;
  ingest: IngestStats | undefined;
  /** What the snapshot holds that microseg does not read or cannot evaluate (`snapshotWarnings`). */
  snapshotWarnings: string[];
  /**
   * Objects given more than once under one name with other content, of which the last one read is used
   * (`replaceRepeated`), as the verify commands read them; in report.json's warnings too.
   */
  repeatWarnings: string[];
  /**
   * The CronJobs among the proposal's `unobserved` that started no run from the first flow to a minute
   * before the last (see cronJobsNotRunWithin): none of their runs is in the flows. Only those that
   * never ran when the flows' span has no known start (Kubescape records, flows not read by a
   * FlowReader).
   */
  cronJobsNotRun: string[];
}

/** The pure part of recommend: analysis, proof and file contents from a snapshot and flows. */
export async function recommend(
  given: ClusterSnapshot,
  flows: FlowReader | Iterable<Flow> | AsyncIterable<Flow>,
  opts: PipelineOptions = {},
): Promise<RecommendResult> {
  // An object given twice (two --cluster files, or one file's List holding it twice) stands once.
  const { snapshot: once, warnings: repeatWarnings } = replaceRepeated(given);
  const snapshot = once;
  const identity = buildIdentity(snapshot, opts.identity);
  opts.afterIdentity?.();
  const analysis = analyse((await aggregateFlows(identity, flows, opts)).input, opts);
  opts.afterAnalysis?.();
  const proof = proveProposal({
    snapshot,
    workloads: identity.workloads,
    graph: analysis.graph,
    proposal: analysis.proposal,
    apiserverIPs: identity.apiserverEndpoints.ips,
    podWorkload: identity.podWorkload,
  });
  opts.afterProof?.();
  const ingest = flows instanceof FlowReader ? flows.stats : undefined;
  const notRead = snapshotWarnings(snapshot);
  // A CronJob ran at a time the flows cover when its last run, or a run its schedule started before
  // that, is between the first flow and a minute before the last. When the flows may hold records
  // whose span has no known start (Kubescape's give only their object's latest time; any source other
  // than a reader may), only a CronJob that never ran is known to be outside them.
  let first = Infinity;
  let last = -Infinity;
  for (const e of analysis.graph.edges) {
    first = Math.min(first, Date.parse(e.firstSeen));
    last = Math.max(last, Date.parse(e.lastSeen));
  }
  const spanKnown = flows instanceof FlowReader && !flows.hasFormat('kubescape');
  const cronJobs = new Map(snapshot.cronJobs.map((c) => [`${c.metadata.namespace}/${c.metadata.name}`, c]));
  const cronJobOf = (ns: string, name: string) => cronJobs.get(`${ns}/${name}`);
  const cronJobsNotRun = !Number.isFinite(first)
    ? []
    : spanKnown && Number.isFinite(last)
      ? cronJobsNotRunWithin(analysis.proposal.unobserved, cronJobOf, first, last)
      : cronJobsNotRunSince(analysis.proposal.unobserved, cronJobOf, -Infinity);
  const report = buildReport(analysis, ingest, proof, [...repeatWarnings, ...notRead], cronJobsNotRun);
  const files = new PolicyFiles(
    analysis.proposal.policies,
    new Map([['report.json', () => stableJsonPieces(report)]]),
  );
  return {
    analysis,
    snapshot,
    proof,
    report,
    files,
    ingest,
    snapshotWarnings: notRead,
    repeatWarnings,
    cronJobsNotRun,
  };
}

/**
 * Edges not expressible and warnings listed in the summary when nothing is written (report.json, which
 * lists them all, is not).
 */
const LISTED = 10;

/**
 * Why the analysis proposes no policy at all, in words; undefined when it proposes one. `namespaces`:
 * those `--namespace` named, if any.
 */
export function noPolicyReason(
  analysis: Analysis,
  namespaces: readonly string[] | undefined,
): string | undefined {
  if (analysis.proposal.policies.length > 0) return undefined;
  const { graph, identity } = analysis;
  const hint = 'is --cluster a snapshot of the cluster the flows came from, taken while their pods ran?';
  if (graph.edges.length === 0)
    return `every flow was left out as noise: neither of its ends is a pod, address or workload of the snapshot, or it went to a multicast or broadcast address (${hint})`;
  const observed = new Set<string>();
  for (const e of graph.edges)
    for (const id of [e.source, e.target]) {
      const w = identity.workloads.get(id);
      if (w) observed.add(w.namespace);
    }
  if (observed.size === 0) {
    const unattributed = analysis.unattributedFlows ?? 0;
    return (
      `no flow has a workload of the snapshot at either end` +
      (unattributed > 0 ? ` (${unattributed} flow(s) have an end that could not be attributed)` : '') +
      ` (${hint})`
    );
  }
  const list = [...observed].sort().join(', ');
  const scope = new Set(analysis.proposal.namespaces);
  if (![...observed].some((ns) => scope.has(ns)))
    return namespaces !== undefined && namespaces.length > 0
      ? `no workload of ${[...new Set(namespaces)].sort().join(', ')} (what --namespace names) was observed; the workloads observed are in ${list}`
      : `the workloads observed are in ${list}, for which no policy is written unless --namespace names it`;
  const scoped = [...observed].filter((ns) => scope.has(ns)).sort();
  return `no policy could be written for the workloads observed in ${scoped.join(', ')} (see above)`;
}

/**
 * Why a proposal is not written: the observed connections it would block, and those the proof could not
 * check (not proven allowed), each listed. `outcome`: what is not done for it (default `not written`).
 */
export function notProvenMessage(command: string, proof: Proof, outcome = 'not written'): string {
  const parts: string[] = [];
  if (proof.blocked.length > 0)
    parts.push(
      `the proposal would block ${proof.blocked.length} observed connection(s):\n`,
      ...proof.blocked.map((b) => `  ${b}\n`),
    );
  if (proof.unchecked.length > 0)
    parts.push(
      `${parts.length > 0 ? 'and ' : ''}${proof.unchecked.length} observed connection(s) could not be checked, so the proposal is not proven to allow them:\n`,
      ...proof.unchecked.map((b) => `  ${b}\n`),
    );
  return `${command}: ${outcome}: ${parts.join('')}`;
}

/** The first LISTED of `items`, indented, then how many more there are. */
function listFirst(lines: string[], items: readonly string[]): void {
  lines.push(...items.slice(0, LISTED).map((i) => `  ${i}`));
  if (items.length > LISTED) lines.push(`  and ${items.length - LISTED} more`);
}

/** Segments named in the summary before it says how many more there are. */
const SUMMARY_SEGMENTS = 8;

/**
 * `out`: the directory the policies are written to; undefined when they are not written (`serve`).
 * `changes`: what writing removed and kept besides the files written (given once they are written).
 */
export function summary(r: RecommendResult, out: string | undefined, changes?: OutputChanges): string {
  const { graph, segments, proposal } = r.analysis;
  const workloads = graph.nodes.filter((n) => n.kind === 'workload').length;
  // Nothing is written when the proposal blocks a connection or holds no policy.
  const blocked = proofFails(r.proof);
  const proposed = !blocked && proposal.policies.length > 0;
  const written = proposed && out !== undefined;
  // Where the lists the summary only counts are: serve writes no report.json, recommend's has them; when
  // nothing is proposed, no file is pointed at (none is written): what a list holds is listed here.
  const report = !proposed
    ? undefined
    : out === undefined
      ? "the report.json 'microseg recommend' writes"
      : 'report.json';
  const seeIn = (what: string, before = false) =>
    report === undefined ? '' : before ? `see ${what} in ${report}; ` : `; see ${what} in ${report}`;
  const lines: string[] = [];
  if (r.ingest) lines.push(formatIngestStats(r.ingest).trimEnd());
  lines.push(
    `graph: ${workloads} workload(s), ${graph.nodes.length - workloads} other peer(s), ${graph.edges.length} edge(s)`,
  );
  // A short summary: every segment when there are few, else the largest ones.
  const shown =
    segments.segments.length <= SUMMARY_SEGMENTS
      ? segments.segments
      : [...segments.segments]
          .sort((a, b) => b.members.length - a.members.length || compareText(a.id, b.id))
          .slice(0, SUMMARY_SEGMENTS);
  const more = segments.segments.length - shown.length;
  lines.push(
    `segments: ${segments.segments.length} (modularity ${segments.modularity.toFixed(2)}): ` +
      shown.map((s) => `${s.id} (${s.members.length})`).join(', ') +
      (more > 0
        ? `, and ${more} more (largest first${report === undefined ? '' : `; all in ${report}`})`
        : ''),
  );
  if (segments.namesKept !== undefined)
    lines.push(
      `segment names kept from the report.json of the previous run: ${segments.namesKept.length} ` +
        `(a community keeps the name most of its members had)`,
    );
  const v = r.proof.report;
  // Allowed, blocked and not checked add up to the connections observed.
  const unchecked = r.proof.unchecked.length;
  lines.push(
    `verification: ${v.allowedObserved}/${r.proof.checked + unchecked} observed connection(s) allowed` +
      (proofFails(r.proof)
        ? `, ${r.proof.blocked.length} BLOCKED, ${unchecked} COULD NOT BE CHECKED (no address is known for an end: not proven allowed)`
        : '') +
      `; ${v.excessCount} allowed workload pair/port tuple(s) never observed (permissiveness ${v.permissiveness.toFixed(2)})`,
  );
  // Said on lines of their own, not only counted among the warnings: a policy the proof leaves out
  // may deny what it says is allowed.
  lines.push(...r.snapshotWarnings);
  // Likewise the pods whose Job the snapshot lacks: a CronJob inferred, or a name that changes every run.
  lines.push(...r.analysis.identity.jobWarnings);
  if (r.proof.willBeBlocked.length > 0) {
    lines.push(
      `WILL BE BLOCKED by the proposal: ${r.proof.willBeBlocked.length} observed connection(s) the proof leaves out ` +
        `(every observation dropped, or ICMP, which NetworkPolicy cannot allow${seeIn('verification.willBeBlocked')})` +
        (report === undefined ? ':' : ''),
    );
    if (report === undefined) listFirst(lines, r.proof.willBeBlocked);
  }
  // Workloads the default deny alone selects: what they do is blocked once enforced (a CronJob whose
  // runs fell outside the flows' span).
  const idle = proposal.unobserved;
  if (idle.length > 0)
    lines.push(
      `no flow observed for ${idle.length} workload(s) in scope: only the default deny selects them, which will block all their traffic: ` +
        `${firstOf(idle)} ` +
        `(${seeIn('policies.unobserved', true)}a CronJob's runs need flows over a span that includes them)`,
    );
  if (r.cronJobsNotRun.length > 0)
    lines.push(
      `of them, ${r.cronJobsNotRun.length} CronJob(s) started no run the flows cover (by their last run and schedule), so their traffic is unknown: ` +
        `${firstOf(r.cronJobsNotRun)} (${seeIn('policies.cronJobsNotRun', true)}record flows over one of their runs before enforcing)`,
    );
  // When nothing is written, the first of what report.json would list are listed here (edges not
  // expressible only when no policy is proposed: each blocked connection names why no rule was written
  // for it).
  const listed = (header: string, items: string[], list = true) => {
    if (items.length === 0) return;
    if (written || !list) {
      lines.push(`${header}${written ? ' (see report.json)' : ''}`);
      return;
    }
    lines.push(`${header}:`);
    listFirst(lines, items);
  };
  listed(
    `not expressible as NetworkPolicy: ${proposal.notExpressible.length} edge(s)`,
    proposal.notExpressible.map((n) => `${n.edge}: ${n.reason}`),
    !blocked,
  );
  const warnings = (r.report as { warnings: string[] }).warnings;
  listed(`warnings: ${warnings.length}`, warnings);
  if (proposed)
    lines.push(
      `policies: ${proposal.policies.length} in ${proposal.namespaces.length} namespace(s) ` +
        (written ? `written to ${out}` : 'proposed (not written: microseg recommend writes them)'),
    );
  if (changes?.removed.length) lines.push(`removed: ${changes.removed.join(', ')} (no longer proposed)`);
  if (changes?.kept.length)
    lines.push(
      `kept: ${changes.kept.join(', ')} (from an earlier run, for namespaces this run does not cover)`,
    );
  return lines.join('\n') + '\n';
}

/** What writing the files did besides writing them. */
export interface OutputChanges {
  /** Files of an earlier run for namespaces this run covers, that it no longer writes: removed. */
  removed: string[];
  /** Files of an earlier run for namespaces this run does not cover: left as they are. */
  kept: string[];
}

/**
 * Whether a run covers namespace `ns`: those `--namespace` names when it is given, else every namespace
 * but the system ones (kube-system, kube-public, kube-node-lease), observed or not.
 */
function covers(namespaces: readonly string[] | undefined, ns: string): boolean {
  return namespaces !== undefined && namespaces.length > 0
    ? namespaces.includes(ns)
    : !SYSTEM_NAMESPACES.includes(ns);
}

const UTF8_BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/**
 * Whether `path` is a regular file (not a link) whose first line is `line` (given with its `\n`); false
 * when unreadable. The line may end in `\r\n` and follow a UTF-8 byte order mark, as a checkout with
 * git's core.autocrlf or an editor that adds the mark leaves a file recommend wrote.
 */
async function beginsWithLine(path: string, line: string): Promise<boolean> {
  try {
    if (!(await lstat(path)).isFile()) return false;
    const fh = await open(path, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0));
    try {
      const want = Buffer.from(line.slice(0, -1));
      const got = Buffer.alloc(UTF8_BOM.length + want.length + 2);
      const { bytesRead } = await fh.read(got, 0, got.length, 0);
      let head = got.subarray(0, bytesRead);
      if (head.subarray(0, UTF8_BOM.length).equals(UTF8_BOM)) head = head.subarray(UTF8_BOM.length);
      if (!head.subarray(0, want.length).equals(want)) return false;
      const end = head.subarray(want.length);
      return end[0] === 0x0a || (end[0] === 0x0d && end[1] === 0x0a);
    } finally {
      await fh.close();
    }
  } catch {
    return false;
  }
}

/**
 * The files `recommend` wrote into `dir` in an earlier run, sorted: each `<namespace>.yaml` that is a
 * regular file whose first line is the header recommend writes for that namespace (policyFileHeader),
 * also with CRLF line ends or after a UTF-8 byte order mark.
 * A file without it (a user's own, or one a link points at) is not one of them.
 */
export async function earlierPolicyFiles(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return [];
    throw outputWriteError(dir, err);
  }
  const found: string[] = [];
  for (const name of names.sort(compareText)) {
    if (!name.endsWith('.yaml')) continue;
    if (await beginsWithLine(join(dir, name), policyFileHeader(name.slice(0, -'.yaml'.length))))
      found.push(name);
  }
  return found;
}

/**
 * Writes each file as it is rendered, in pieces, so that the files are never held; under temporary
 * names renamed into place once all are written (see writeOutputFiles). The files of an earlier run
 * (earlierPolicyFiles) that this run does not write are removed with them, all or nothing, when their
 * namespace is one the run covers (`namespaces`: those `--namespace` named, if any), and kept when not.
 */
export async function writeFiles(
  dir: string,
  files: PolicyFiles,
  namespaces?: readonly string[],
): Promise<OutputChanges> {
  const writing = new Set(files.names());
  const earlier = (await earlierPolicyFiles(dir)).filter((name) => !writing.has(name));
  const covered = (name: string) => covers(namespaces, name.slice(0, -'.yaml'.length));
  const removed = await writeOutputFiles(dir, files.pieces(), { remove: earlier.filter(covered) });
  return { removed, kept: earlier.filter((name) => !covered(name)) };
}

/** What recommend reads and how it analyses it, as its options give them (`serve` takes them alike). */
export interface InputValues {
  flows?: string[] | undefined;
  cluster?: string[] | undefined;
  format?: string | undefined;
  strict?: boolean | undefined;
  namespace?: string[] | undefined;
  [option: string]: unknown;
}

/** The inputs and the pipeline's options, checked before anything is read. */
export interface CheckedInputs {
  flows: string[];
  cluster: string[];
  opts: PipelineOptions;
}

/**
 * Checks recommend's inputs and analysis options (bad usage, before anything is read): the flows and
 * the cluster given, the cluster not from standard input, each flow source once, the options' values.
 * `command` names the command in the errors.
 */
export async function checkInputs(command: string, values: InputValues): Promise<CheckedInputs> {
  const sources = flowsAndCluster(values);
  flowFormatOption('--format', values.format);
  clusterFromFiles(command, sources.cluster);
  await checkDistinctSources('--flows', sources.flows);
  const opts: PipelineOptions = {
    ...pipelineOptions(values),
    afterIdentity: releaseMemory,
    afterIngest: releaseMemory,
    afterAnalysis: releaseMemory,
    afterProof: releaseMemory,
  };
  return { ...sources, opts };
}

export const run = optionsCommand(OPTIONS, HELP, async (values, io) => {
  const inputs = await checkInputs('recommend', values);
  nonEmptyOut(values.out, 'directory', 'policies');
  const out = values.out ?? 'policies';
  // Before any input is read: a run over millions of lines should not end on a mistyped --out. The
  // directory is made now, and removed again if the run ends without writing in it.
  const outDir = await prepareOutputDir(out);
  try {
    return await recommendInto(out, values, inputs, io);
  } finally {
    await outDir.removeIfEmpty();
  }
});

async function recommendInto(
  out: string,
  values: InputValues & { quiet?: boolean | undefined },
  inputs: CheckedInputs,
  io: CliIO,
): Promise<number> {
  // The segments an earlier run wrote here: the communities that continue them keep their names.
  const previous = await previousSegments(out);
  if (previous.kind === 'unread' && !values.quiet)
    io.err(`warning: ${previous.path} not read: ${previous.reason}; segment names are chosen afresh\n`);
  if (previous.kind === 'read')
    inputs = {
      ...inputs,
      opts: { ...inputs.opts, segments: { ...inputs.opts.segments, previous: previous.membership } },
    };
  const analysed = await analyseInputs('recommend', values, inputs, io, {
    out,
    policiesAdvice:
      'recommend reads the network policies already applied from the cluster snapshot: give them in ' +
      '--cluster (to check policies against flows: microseg audit --policies)',
  });
  if (typeof analysed === 'number') return analysed;
  const { result } = analysed;
  const changes = await writeFiles(out, result.files, values.namespace);
  if (!values.quiet) io.out(summary(result, out, changes));
  return EXIT.ok;
}

/**
 * Reads the cluster snapshot and the flows `inputs` names and runs recommend's pipeline on them
 * (`recommend`): the one way recommend and `serve` make their proposal. What recommend refuses is
 * refused alike, `command` naming the command: bad input (an InputError or UsageError thrown: no flow
 * read, no policy proposed, a namespace the snapshot lacks) and a proposal not proven to allow every
 * observed connection (said on standard error with the summary; EXIT.findings returned). `out`: where
 * the policies would be written, for the summary said then; `outcome`: what a refusal leaves undone
 * (default `nothing written`, and `not written` for a proposal not proven).
 */
export async function analyseInputs(
  command: string,
  values: InputValues,
  inputs: CheckedInputs,
  io: CliIO,
  options: { out?: string; policiesAdvice: string; outcome?: { refused: string; notProven: string } },
): Promise<{ snapshot: ClusterSnapshot; result: RecommendResult } | number> {
  // --strict refuses a policy field its API does not define, as it refuses a bad flow line.
  const snapshot = await loadSnapshotFiles(inputs.cluster, {
    extraKinds: VERIFY_EXTRA_KINDS,
    unknownFields: values.strict === true ? 'error' : 'warn',
  });
  refuseUnreadCluster(snapshot, inputs.cluster);
  // A namespace the snapshot does not have is a typo or the wrong snapshot: said before flows are read.
  if (values.namespace) checkNamespaces('--namespace', values.namespace, snapshot);
  const format = flowFormatOption('--format', values.format);
  const reader = readFlows(inputs.flows, {
    ...(format ? { format } : {}),
    strict: values.strict === true,
    policiesAdvice: options.policiesAdvice,
    stdin: io.stdin as AsyncIterable<Buffer>,
  });
  const stop = progress(io, reader);
  let result: RecommendResult;
  try {
    result = await recommend(snapshot, reader, inputs.opts);
  } finally {
    stop();
  }
  // Said on standard error as the verify commands say it, whatever the outcome (and in report.json).
  for (const w of result.repeatWarnings) io.err(`microseg ${command}: warning: ${w}\n`);
  if (reader.stats.flows === 0) {
    io.err(formatIngestStats(reader.stats));
    throw new InputError(
      noFlowsMessage(reader.stats, format && `--format ${format}`, options.outcome?.refused),
    );
  }
  if (proofFails(result.proof)) {
    io.err(summary(result, options.out));
    io.err(notProvenMessage(`microseg ${command}`, result.proof, options.outcome?.notProven));
    return EXIT.findings;
  }
  // Flows were read, and not one gave a policy: an empty proposal is no result to write.
  const none = noPolicyReason(result.analysis, values.namespace);
  if (none !== undefined) {
    io.err(summary(result, options.out));
    throw new InputError(`no policy proposed: ${none}; ${options.outcome?.refused ?? 'nothing written'}`);
  }
  return { snapshot, result };
}

/** A one-line progress display on stderr while flows are read, when stderr is a terminal. */
function progress(io: CliIO, reader: FlowReader): () => void {
  if (!io.isTTY) return () => {};
  const started = Date.now();
  const timer = setInterval(() => {
    const s = reader.stats;
    const secs = (Date.now() - started) / 1000;
    io.err(
      `\rreading flows: ${s.lines.toLocaleString('en')} lines, ${s.flows.toLocaleString('en')} flows, ${Math.round(s.lines / Math.max(secs, 0.001)).toLocaleString('en')} lines/s `,
    );
  }, 250);
  timer.unref();
  return () => {
    clearInterval(timer);
    io.err('\r\x1b[K');
  };
}
