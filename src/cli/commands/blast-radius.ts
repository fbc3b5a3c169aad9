/**
 * `microseg blast-radius --cluster cluster.json --workload ns/kind/name|ns/pod [--proposal dir]`: what the
 * workload can reach and be reached from under the current policies and under a proposal, multi-hop paths
 * to it from internet-exposed workloads, and the number of reachable pairs before and after.
 */
import {
  limitOption,
  loadClusterSnapshot,
  stdinOnce,
  warnOnStderr,
  withPolicyFilesPruned,
} from '../inputs.ts';
import { optionsCommand } from '../args.ts';
import { UsageError } from '../io.ts';
import { engineFromSnapshot } from '../../verify/engine.ts';
import { resolveWorkload } from '../../verify/load.ts';
import { InputError } from '../../model/snapshot.ts';
import { firstOf } from '../../model/order.ts';
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE } from '../../policy/index.ts';
import type { BlastRadius, ReachSide } from '../../verify/reach.ts';
import { blastRadius } from '../../verify/reach.ts';
import { parseEngineOptions, ENGINE_OPTION_HELP, ENGINE_OPTION_SPECS } from '../../verify/cli-options.ts';

export const HELP = `usage: microseg blast-radius --cluster FILE [--cluster FILE ...] --workload ns/kind/name|ns/pod [--proposal DIR [--prune]]

What a workload can reach and be reached from under the cluster's policies and, with --proposal, with
the proposed policies added; shortest paths to it from internet-exposed workloads (those whose ingress
admits an outside address); and the number of reachable workload pairs before and after. Pods of one
workload that policies could tell apart (a StatefulSet's pods each carry their own pod-name label) are
listed each with their pods: data/StatefulSet/kafka (kafka-1). A list's title counts its workloads, such
a workload once (the web page's counts), then its pod classes: reaches (13 workloads; pod classes: 16).
A workload pair is reachable when a pod of one can open a connection to a pod of the other on some
port; the pairs of pod classes (pods alike to every policy) are given beside it. Workloads are named as recommend names them (a CronJob for the
pods of its Jobs, a Deployment for those of its ReplicaSets, a pod with no owner as itself; a ReplicaSet
or Job given to --workload is titled by its owner), listed by namespace, then name, then kind (then
pods), their ports by number; paths shortest first, then in the order of the workload they start from.

options:
  --cluster FILE        Kubernetes List or multi-document YAML/JSON; '-' for stdin (repeatable)
  --workload ns/kind/name   e.g. shop/Deployment/cart (kinds: Deployment, StatefulSet, DaemonSet,
                        ReplicaSet, Job, CronJob, Pod, Rollout, CloneSet, Workload, or a custom
                        resource's controlling pods of the namespace, e.g. db/Cluster/pg); one
                        whose pods use their node's network counts as its nodes and is refused,
                        unless --host-network pod; or namespace/pod (as explain takes an end):
                        that pod's, titled by its workload (e.g. shop/cart-5c4b-y1 as
                        shop/Deployment/cart)
  --proposal DIR        proposed policies (a directory or a file), added to the cluster's; one named
                        like a policy of the cluster replaces it (as kubectl apply would); one that
                        holds no policy is refused
  --prune               with --proposal: leave out the cluster's NetworkPolicies labelled
                        ${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE} that the proposal does not
                        hold, in the namespaces it holds policies for, as Enforce or a GitOps sync
                        with pruning removes them (other namespaces' are kept), as audit --prune
  --internet-probe IP   outside address used to find internet-exposed workloads (default 203.0.113.10,
                        and 2001:db8:ffff::10 too in a cluster with IPv6 pod addresses); not a pod's
                        or node's address, nor one of the pod network (a Node's spec.podCIDRs, or
                        the /16 or /48 of a pod's address)
  --limit N             entries listed per section in text output (default 25)
  --output text|json    output format (default text)
${ENGINE_OPTION_HELP}

exit codes: 0 answered; 2 bad usage or input (a workload the snapshot does not have included);
            3 internal error`;

/** A list under its title, which says how many it holds: `count`, by default its number of entries. */
function section<T>(
  title: string,
  items: T[],
  fmt: (x: T) => string,
  limit: number,
  count = `${items.length}`,
): string[] {
  const lines = [`  ${title} (${count}):`];
  for (const x of items.slice(0, limit)) lines.push(`    ${fmt(x)}`);
  if (items.length > limit) lines.push(`    ... and ${items.length - limit} more`);
  return lines;
}

function formatSide(label: string, s: ReachSide, limit: number): string[] {
  // Counted as the web page counts them: workloads, a StatefulSet once though its pods are listed apart.
  const workloads = (n: number, classes: number) =>
    `${n} workload${n === 1 ? '' : 's'}; pod classes: ${classes}`;
  return [
    `${label}:`,
    ...section(
      'reaches',
      s.reaches,
      (r) => `${r.to} [${r.ports.join(', ')}]`,
      limit,
      workloads(s.canReach, s.reaches.length),
    ),
    ...section(
      'reached from',
      s.reachedFrom,
      (r) => `${r.from} [${r.ports.join(', ')}]`,
      limit,
      workloads(s.reachableFrom, s.reachedFrom.length),
    ),
    ...section(
      'paths from internet-exposed workloads',
      s.exposedPaths,
      (p) => p.join(' -> '),
      limit,
      `${s.exposedPaths.length}${s.exposedPathsCut ? ', the first found: there may be more' : ''}`,
    ),
    `  reachable workload pairs in the cluster: ${s.reachableWorkloadPairs} (pod classes: ${s.reachablePairs})`,
  ];
}

/** What `microseg blast-radius` prints as JSON: with --prune, `pruned` names the policies left out. */
export type BlastRadiusResult = BlastRadius & { pruned?: string[] };

export function formatBlastRadius(b: BlastRadiusResult, limit = 25): string {
  const lines = [`blast radius of ${b.workload}`, ...formatSide('current policies', b.before, limit)];
  if (b.after) {
    const pruned = b.pruned?.length
      ? `, leaving out ${b.pruned.length} of microseg's (--prune: ${firstOf(b.pruned, Math.max(limit, 1))})`
      : '';
    lines.push(...formatSide(`with the proposal${pruned}`, b.after, limit));
    lines.push(
      `reachable workload pairs: ${b.before.reachableWorkloadPairs} before, ${b.after.reachableWorkloadPairs} after`,
    );
  }
  return lines.join('\n') + '\n';
}

/** The options the command takes, as node:util parseArgs reads them (its --help lists each). */
export const OPTIONS = {
  cluster: { type: 'string', multiple: true },
  workload: { type: 'string' },
  proposal: { type: 'string' },
  prune: { type: 'boolean' },
  'internet-probe': { type: 'string' },
  limit: { type: 'string', default: '25' },
  output: { type: 'string', default: 'text' },
  help: { type: 'boolean', short: 'h' },
  ...ENGINE_OPTION_SPECS,
} as const;

export const run = optionsCommand(OPTIONS, HELP, async (values, io) => {
  if (!values.cluster?.length) throw new UsageError('--cluster is required');
  if (!values.workload) throw new UsageError('--workload is required');
  if (values.output !== 'text' && values.output !== 'json')
    throw new UsageError(`--output ${values.output} is not supported (use text or json)`);
  if (values.prune && !values.proposal)
    throw new UsageError(
      "--prune applies to a --proposal: it leaves out the cluster's microseg policies the proposal does not hold",
    );
  const limit = limitOption(values.limit);
  const options = parseEngineOptions(values);
  stdinOnce([
    ['--cluster', values.cluster],
    ['--proposal', values.proposal],
  ]);
  const warn = warnOnStderr(io, 'blast-radius');
  const cluster = await loadClusterSnapshot(values.cluster, io.stdin, warn);
  // namespace/pod, as explain takes an end: that pod, named by its workload (blastRadius names the
  // pod's class so, with the pod when the workload's pods differ).
  const pod = /^([^/\s]+)\/([^/\s]+)$/.exec(values.workload);
  if (!pod && !/^[^/\s]+\/[^/\s]+\/[^/\s]+$/.test(values.workload))
    throw new UsageError(
      `--workload: ${JSON.stringify(values.workload)} is neither namespace/Kind/name (a workload, e.g. shop/Deployment/cart) nor namespace/pod (that pod's workload)`,
    );
  // A node agent's pods (host network) are resolved too: counted as their nodes (the default), they
  // have no blast radius of their own, and answering for their pod template would count them as pods.
  const workload = pod ? undefined : resolveWorkload(cluster, values.workload, '--workload', true);
  const target = pod ? { namespace: pod[1]!, pod: pod[2]! } : workload!.endpoint;
  const before = engineFromSnapshot(cluster, options);
  if (before.resolve(target, '--workload').kind !== 'pod')
    throw new InputError(
      workload
        ? `--workload: the pods of ${workload.name} use their node's network, so policies see them as their nodes and they have no blast radius of their own (--host-network pod counts them as pods)`
        : `--workload: pod ${values.workload} uses its node's network, so policies see it as its node and it has no blast radius of its own (--host-network pod counts it as a pod)`,
    );
  // A proposal of no policy (a wrong file, a directory of only report.json) would answer "with the
  // proposal" as the current policies, as if it changed nothing: withPolicyFilesPruned refuses it.
  // With --prune, microseg's own policies the proposal no longer holds are left out, as applying it
  // with pruning removes them: kept, they would overstate what is reachable with the proposal.
  const proposed = values.proposal
    ? await withPolicyFilesPruned(
        cluster,
        '--proposal',
        [values.proposal],
        io.stdin,
        warn,
        values.prune === true,
      )
    : undefined;
  const after = proposed ? engineFromSnapshot(proposed.snapshot, options) : undefined;
  const result: BlastRadiusResult = {
    ...blastRadius(before, after, target, {
      ...(values['internet-probe'] !== undefined ? { internetProbe: values['internet-probe'] } : {}),
      internetProbeName: '--internet-probe',
    }),
    ...(values.prune ? { pruned: proposed!.pruned } : {}),
  };
  io.out(
    values.output === 'json' ? JSON.stringify(result, null, 2) + '\n' : formatBlastRadius(result, limit),
  );
  return 0;
});
