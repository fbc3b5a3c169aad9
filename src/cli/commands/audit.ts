/**
 * `microseg audit --flows FILE... --cluster FILE... --policies PATH...`: the offline Audit mode. Replays
 * observed flows against the cluster as its snapshot has it and as it would be with the given
 * NetworkPolicies applied (recommend's output, or a GitOps repository's), and names the observed
 * connections they would newly block, and the workloads they cut off that made no flow. Exit 1 when a
 * connection would be blocked: a CI check that policies still allow the traffic seen since they were
 * written.
 */
import { FlowReader, formatIngestStats, readFlows } from '../../flows/reader.ts';
import type { Flow } from '../../flows/types.ts';
import { buildServiceGraph } from '../../graph/build.ts';
import { buildIdentity } from '../../identity/index.ts';
import type { NetworkPolicy, OtherObject } from '../../model/k8s.ts';
import { InputError } from '../../model/snapshot.ts';
import type { ClusterSnapshot } from '../../model/snapshot.ts';
import { firstOf } from '../../model/order.ts';
import type { NotReplayed, PolicySetAudit } from '../../policy/audit.ts';
import { auditPolicySet } from '../../policy/audit.ts';
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE } from '../../policy/index.ts';
import { aggregateFlows } from '../../pipeline.ts';
import { ENGINE_OPTION_HELP, ENGINE_OPTION_SPECS, parseEngineOptions } from '../../verify/cli-options.ts';
import { CLUSTER_POLICY_KINDS, isClusterPolicyKind } from '../../verify/validate.ts';
import {
  checkDistinctSources,
  flowFormatOption,
  flowsAndCluster,
  limitOption,
  loadClusterSnapshot,
  loadVerifySnapshot,
  noFlowsMessage,
  stdinOnce,
  warnOnStderr,
} from '../inputs.ts';
import { optionsCommand } from '../args.ts';
import { EXIT, UsageError } from '../io.ts';
import { releaseMemory } from '../memory.ts';

export const HELP = `usage: microseg audit --flows FILE [--flows FILE ...] --cluster FILE [--cluster FILE ...] --policies PATH [--policies PATH ...]

Replays observed flows against the cluster as the snapshot has it and as it would be with the
NetworkPolicies of --policies applied (the directory recommend wrote, or a GitOps repository's), with
microseg's NetworkPolicy semantics engine, and names every observed connection they would newly block:
allowed by the snapshot's policies, denied with the given ones. Also named: workloads that made no flow
in the flows read and that, of the policies in force once the given ones are applied, only their
namespace's default deny selects (all their traffic in the directions it isolates is then blocked, and
nothing observed shows it), and of them the CronJobs that started no run the flows cover (by their
last run and spec.schedule). Not replayed, and counted: connections whose every observation was
dropped, ICMP, traffic from a node to pods (a pod's own node is always admitted, and the address seen
may not tell which node sent it), and ends the snapshot cannot place.

options:
  --flows FILE           flow source (repeatable, each source once; '-' reads standard input)
  --cluster FILE         cluster snapshot (repeatable); its NetworkPolicies are the policies in force now
  --policies PATH        NetworkPolicies to audit, a file or a directory (repeatable; a directory's
                         report.json is skipped); added to the snapshot's, one named like a policy of
                         the snapshot replaces it, as kubectl apply would; cluster-wide policies in
                         it (${CLUSTER_POLICY_KINDS.join(', ')}) are applied alike
  --prune                leave out the snapshot's NetworkPolicies labelled
                         ${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE} that --policies does not hold, in
                         the namespaces it holds policies for, as Enforce or a GitOps sync with
                         pruning removes them (other namespaces' are kept)
  --format FORMAT        auto (default), hubble, generic, inspektor-gadget, kubescape
  --strict               stop at the first bad input line, or at a policy field its API does not
                         define (a warning without it: read without the field, as the API server)
  --output text|json|markdown
                         output format (default text); markdown: a heading and a table of what would
                         be blocked, for a pull request's comment
  --limit N              connections and workloads listed per section in text and markdown output
                         (default 25)
${ENGINE_OPTION_HELP}

exit codes: 0 no observed connection would be blocked; 1 observed connections would be blocked;
            2 bad usage or input (also: no flow read, or no policy in a --policies PATH); 3 internal error`;

/** The options the command takes, as node:util parseArgs reads them (its --help lists each). */
export const OPTIONS = {
  flows: { type: 'string', multiple: true },
  cluster: { type: 'string', multiple: true },
  policies: { type: 'string', multiple: true },
  prune: { type: 'boolean' },
  format: { type: 'string' },
  strict: { type: 'boolean' },
  output: { type: 'string', default: 'text' },
  limit: { type: 'string', default: '25' },
  help: { type: 'boolean', short: 'h' },
  ...ENGINE_OPTION_SPECS,
} as const;

/** What `microseg audit --output json` prints: the policy-set audit (see auditPolicySet). */
export type AuditResult = PolicySetAudit;

/** The audit of `given` over `flows`: pure, but for reading the flows. */
export async function audit(
  cluster: ClusterSnapshot,
  given: readonly NetworkPolicy[],
  flows: FlowReader | Iterable<Flow>,
  opts: {
    prune?: boolean;
    engine?: ReturnType<typeof parseEngineOptions>;
    clusterPolicies?: readonly OtherObject[];
  } = {},
): Promise<AuditResult> {
  const identity = buildIdentity(cluster);
  const { input } = await aggregateFlows(identity, flows, { afterIngest: releaseMemory });
  return auditPolicySet({
    snapshot: cluster,
    identity,
    graph: buildServiceGraph(input),
    given,
    ...(opts.clusterPolicies ? { givenClusterPolicies: opts.clusterPolicies } : {}),
    ...(opts.prune ? { prune: true } : {}),
    ...(opts.engine ? { engine: opts.engine } : {}),
    // As recommend: the span is known from a reader of flows other than Kubescape records, which give
    // only their object's latest time.
    spanKnown: flows instanceof FlowReader && !flows.hasFormat('kubescape'),
  });
}

/** What was not replayed, by why, in words (those with a count). */
function notReplayedParts(n: Record<NotReplayed, number>): string[] {
  return [
    n.dropped > 0 ? `${n.dropped} dropped at every observation` : '',
    n.protocol > 0 ? `${n.protocol} ICMP` : '',
    n.node > 0 ? `${n.node} from a node to pods` : '',
    n.unplaced > 0 ? `${n.unplaced} with an end the snapshot cannot place` : '',
  ].filter((x) => x !== '');
}

/** How many NetworkPolicies and cluster-wide policies were audited, in words. */
function auditedPolicies(r: AuditResult): string {
  // Cluster-wide policies are named by kind, namespaces (DNS labels) are lower case.
  const clusterWide = r.policies.audited.filter((k) => /^[A-Z]/.test(k)).length;
  return (
    `${r.policies.audited.length - clusterWide} NetworkPolicy(ies)` +
    (clusterWide > 0 ? ` and ${clusterWide} cluster-wide policy(ies)` : '')
  );
}

/** The text report: what would be blocked first, then what is cut off unseen, then what was not replayed. */
export function formatAudit(r: AuditResult, limit: number): string {
  const lines: string[] = [];
  const n = r.connections.notReplayed;
  // The first `limit` of a list, after a colon; none with --limit 0 (the count says how many).
  const named = (ids: readonly string[]) => (limit > 0 ? `: ${firstOf(ids, limit)}` : '');
  lines.push(
    `audited ${auditedPolicies(r)}` +
      (r.policies.pruned.length > 0
        ? `, leaving out ${r.policies.pruned.length} of microseg's (--prune)`
        : '') +
      `: ${r.connections.replayed} observed connection(s) replayed` +
      (r.span ? ` (flows from ${r.span.first} to ${r.span.last})` : ''),
  );
  if (r.wouldBlock.length === 0) lines.push('would be blocked: none');
  else {
    lines.push(`WOULD BE BLOCKED: ${r.wouldBlock.length} observed connection(s):`);
    for (const b of r.wouldBlock.slice(0, limit))
      lines.push(
        `  ${b.source} -> ${b.target} ${b.protocol}/${b.port}: ${b.count} flow(s), ${b.firstSeen} to ${b.lastSeen}: ${b.reason}`,
      );
    if (r.wouldBlock.length > limit)
      lines.push(`  ... and ${r.wouldBlock.length - limit} more (--limit, or --output json)`);
  }
  if (r.unobserved.length > 0)
    lines.push(
      `no flow observed for ${r.unobserved.length} workload(s) that only a default deny selects, which will block all their traffic in the directions it isolates${named(r.unobserved)}`,
    );
  if (r.cronJobsNotRun.length > 0)
    lines.push(
      `of them, ${r.cronJobsNotRun.length} CronJob(s) started no run the flows cover (by their last run and schedule), so their traffic is unknown${named(r.cronJobsNotRun)}`,
    );
  const skipped = notReplayedParts(n);
  if (skipped.length > 0) lines.push(`not replayed: ${skipped.join(', ')}`);
  return lines.join('\n') + '\n';
}

/** A Markdown table cell: pipes escaped, line breaks made spaces. */
const cell = (text: string): string =>
  text
    .replace(/\\/g, '\\\\')
    .replace(/\|/g, '\\|')
    .replace(/\s*\n\s*/g, ' ');
/** Markdown code: the text between enough backticks (none are in workload ids; a reason may hold one). */
const code = (text: string): string => (text.includes('`') ? `\`\` ${text} \`\`` : `\`${text}\``);

/**
 * The report in Markdown, for a pull request's comment: a heading, what was audited, the connections
 * that would be blocked as a table (the first `limit`), then what is cut off unseen and what was not
 * replayed.
 */
export function formatAuditMarkdown(r: AuditResult, limit: number): string {
  const lines: string[] = ['### microseg audit', ''];
  const n = r.connections.notReplayed;
  lines.push(
    `Audited ${auditedPolicies(r)}` +
      (r.policies.pruned.length > 0 ? `, leaving out ${r.policies.pruned.length} of microseg's` : '') +
      ` against ${r.connections.replayed} observed connection(s)` +
      (r.span ? ` (flows from ${r.span.first} to ${r.span.last})` : '') +
      '.',
    '',
  );
  if (r.wouldBlock.length === 0) lines.push('**Would be blocked: none.**');
  else {
    lines.push(
      `**Would be blocked: ${r.wouldBlock.length} observed connection(s).**`,
      '',
      '| Source | Destination | Port | Flows | Last seen | Why |',
      '|---|---|---|---:|---|---|',
    );
    for (const b of r.wouldBlock.slice(0, limit))
      lines.push(
        `| ${cell(code(b.source))} | ${cell(code(b.target))} | ${b.protocol}/${b.port} | ${b.count} | ${b.lastSeen} | ${cell(b.reason)} |`,
      );
    if (r.wouldBlock.length > limit) lines.push('', `… and ${r.wouldBlock.length - limit} more.`);
  }
  const list = (ids: readonly string[]) =>
    limit > 0
      ? `: ${ids.slice(0, limit).map(code).join(', ')}${ids.length > limit ? `, and ${ids.length - limit} more` : ''}`
      : '';
  if (r.unobserved.length > 0)
    lines.push(
      '',
      `**No flow observed for ${r.unobserved.length} workload(s)** that only a default deny selects, which will block their traffic in the directions it isolates${list(r.unobserved)}.`,
    );
  if (r.cronJobsNotRun.length > 0)
    lines.push(
      '',
      `Of them, ${r.cronJobsNotRun.length} CronJob(s) started no run the flows cover, so their traffic is unknown${list(r.cronJobsNotRun)}.`,
    );
  const skipped = notReplayedParts(n);
  if (skipped.length > 0) lines.push('', `Not replayed: ${skipped.join(', ')}.`);
  return lines.join('\n') + '\n';
}

/**
 * The NetworkPolicies, and the cluster-wide policies, of each `--policies` path (a file or a directory,
 * whose report.json is skipped; `-` standard input); one that holds none is bad input. `serve` reads
 * its `--policies` alike.
 */
export async function loadPolicies(
  paths: readonly string[],
  stdin: NodeJS.ReadableStream,
  warn: (message: string) => void,
  reading: { unknownFields: 'error' | 'warn' },
): Promise<{ given: NetworkPolicy[]; clusterWide: OtherObject[] }> {
  const given: NetworkPolicy[] = [];
  const clusterWide: OtherObject[] = [];
  for (const path of paths) {
    const loaded = await loadVerifySnapshot([path], stdin, warn, reading);
    const found = loaded.others.filter((o) => isClusterPolicyKind(o.kind));
    if (loaded.networkPolicies.length === 0 && found.length === 0)
      throw new InputError(
        `--policies ${path}: no NetworkPolicy in it (nor ${CLUSTER_POLICY_KINDS.join(', ')})`,
      );
    given.push(...loaded.networkPolicies);
    clusterWide.push(...found);
  }
  return { given, clusterWide };
}

export const run = optionsCommand(OPTIONS, HELP, async (values, io) => {
  const sources = flowsAndCluster(values);
  if (!values.policies?.length)
    throw new UsageError('--policies is required (the NetworkPolicies to audit: a file or a directory)');
  if (values.output !== 'text' && values.output !== 'json' && values.output !== 'markdown')
    throw new UsageError(`--output ${values.output} is not supported (use text, json or markdown)`);
  const limit = limitOption(values.limit);
  const format = flowFormatOption('--format', values.format);
  const engine = parseEngineOptions(values);
  await checkDistinctSources('--flows', sources.flows);
  // Standard input is read once: by the first of the options that names it, the others finding it empty.
  stdinOnce([
    ['--cluster', sources.cluster],
    ['--policies', values.policies],
    ['--flows', sources.flows.includes('-') ? ['-'] : []],
  ]);
  const warn = warnOnStderr(io, 'audit');
  // --strict refuses a policy field its API does not define, as it refuses a bad flow line.
  const reading = { unknownFields: values.strict === true ? 'error' : 'warn' } as const;
  const cluster = await loadClusterSnapshot(sources.cluster, io.stdin, warn, reading);
  const { given, clusterWide: givenCluster } = await loadPolicies(values.policies, io.stdin, warn, reading);
  const reader = readFlows(sources.flows, {
    ...(format ? { format } : {}),
    strict: values.strict === true,
    policiesAdvice: 'give it as --policies',
    stdin: io.stdin as AsyncIterable<Buffer>,
  });
  const result = await audit(cluster, given, reader, {
    prune: values.prune === true,
    engine,
    clusterPolicies: givenCluster,
  });
  if (reader.stats.flows === 0) {
    io.err(formatIngestStats(reader.stats));
    throw new InputError(noFlowsMessage(reader.stats, format && `--format ${format}`, 'nothing audited'));
  }
  io.err(formatIngestStats(reader.stats));
  io.out(
    values.output === 'json'
      ? JSON.stringify(result, null, 2) + '\n'
      : values.output === 'markdown'
        ? formatAuditMarkdown(result, limit)
        : formatAudit(result, limit),
  );
  return result.wouldBlock.length > 0 ? EXIT.findings : EXIT.ok;
});
