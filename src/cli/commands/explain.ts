/**
 * `microseg explain --cluster cluster.json [--policies extra.yaml] --from ns/pod|ns/Kind/name|IP
 * --to ns/pod|ns/Kind/name|IP --port 80|name [--protocol TCP]` prints the verdict and the reasoning.
 */
import { loadClusterSnapshot, stdinOnce, warnOnStderr, withPolicyFiles } from '../inputs.ts';
import { optionsCommand } from '../args.ts';
import { UsageError } from '../io.ts';
import { engineFromSnapshot } from '../../verify/engine.ts';
import {
  endpointOf,
  NOT_EVALUATED,
  parseEndpointArg,
  parseProtocolArg,
  workloadNote,
} from '../../verify/load.ts';
import type { Verdict } from '../../verify/types.ts';
import { parseEngineOptions, ENGINE_OPTION_HELP, ENGINE_OPTION_SPECS } from '../../verify/cli-options.ts';

export const HELP = `usage: microseg explain --cluster FILE [--cluster FILE ...] [--policies FILE ...] --from END --to END --port N|name [--protocol TCP]

Says whether a connection is allowed and why: the policies selecting the source for egress and the
destination for ingress, the rule that admitted it (or that none did), and tier decisions.

options:
  --cluster FILE      Kubernetes List or multi-document YAML/JSON; '-' for stdin (repeatable)
  --policies FILE     extra policy objects (file or directory), repeatable; one named like an object
                      read before it replaces that object (as kubectl apply would); one that holds
                      no policy is refused
  --from, --to END    namespace/pod, an IP address, or a workload as namespace/Kind/name (e.g.
                      shop/Deployment/cart; kinds: Deployment, StatefulSet, DaemonSet, ReplicaSet,
                      Job, CronJob, Pod, Rollout (Argo), CloneSet (OpenKruise), also as kubectl
                      abbreviates them: deploy, sts, ds, rs, ro, clone; Workload, a workload the
                      microseg.dev/workload label names; the kind of a custom resource controlling
                      pods of the namespace, e.g. db/Cluster/pg),
                      answered for its first pod by name (a note says which, and whether its pods
                      differ), or for its pod template when the cluster has no pod of it
  --port              destination port number or container port name (resolved on the destination pod)
  --protocol          TCP (default), UDP or SCTP
  --output text|json  output format (default text)
${ENGINE_OPTION_HELP}

exit codes: 0 answered (allowed or denied); 2 bad usage or input (an end, a port or a kind it cannot
            place included); 3 internal error`;

export function formatVerdict(v: Verdict): string {
  const lines = [`${v.from} -> ${v.to} ${v.protocol}/${v.port}: ${v.allowed ? 'ALLOWED' : 'DENIED'}`];
  for (const d of [v.egress, v.ingress]) {
    lines.push(`  ${d.allowed ? 'ok  ' : 'DENY'} ${d.reason}`);
    if (d.selecting.length > 0)
      lines.push(`       selected for ${d.direction} by: ${d.selecting.join(', ')}`);
  }
  lines.push(`  decided by tier: ${v.tier}`);
  for (const n of v.notes) lines.push(`  note: ${n}`);
  return lines.join('\n') + '\n';
}

/** The options the command takes, as node:util parseArgs reads them (its --help lists each). */
export const OPTIONS = {
  cluster: { type: 'string', multiple: true },
  policies: { type: 'string', multiple: true },
  from: { type: 'string' },
  to: { type: 'string' },
  port: { type: 'string' },
  protocol: { type: 'string' },
  output: { type: 'string', default: 'text' },
  help: { type: 'boolean', short: 'h' },
  ...ENGINE_OPTION_SPECS,
} as const;

export const run = optionsCommand(OPTIONS, HELP, async (values, io) => {
  for (const k of ['cluster', 'from', 'to', 'port'] as const)
    if (!values[k]) throw new UsageError(`--${k} is required`);
  if (values.output !== 'text' && values.output !== 'json')
    throw new UsageError(`--output ${values.output} is not supported (use text or json)`);
  const options = parseEngineOptions(values);
  const from = parseEndpointArg(values.from!, '--from');
  const to = parseEndpointArg(values.to!, '--to');
  const protocol = parseProtocolArg(values.protocol, '--protocol');
  const port = /^\d+$/.test(values.port!) ? Number(values.port) : values.port!;
  const stderr = warnOnStderr(io, 'explain');
  // Policies the engine cannot evaluate are said in the verdict too (its notes), not only on stderr: a
  // consumer of --output json reads only the verdict.
  const unevaluated: string[] = [];
  const warn = (message: string) => {
    if (message.startsWith(NOT_EVALUATED)) unevaluated.push(message);
    stderr(message);
  };
  stdinOnce([
    ['--cluster', values.cluster],
    ['--policies', values.policies],
  ]);
  const cluster = await loadClusterSnapshot(values.cluster!, io.stdin, warn);
  const snap = await withPolicyFiles(cluster, '--policies', values.policies ?? [], io.stdin, warn);
  const src = endpointOf(snap, from, '--from');
  const dst = endpointOf(snap, to, '--to');
  const engine = engineFromSnapshot(snap, options);
  // Messages name the flag a field came from; the command's own prefix is added by runCli.
  const v = engine.evaluate(
    { from: src.endpoint, to: dst.endpoint, port, ...(protocol ? { protocol } : {}) },
    { from: '--from', to: '--to', port: '--port', protocol: '--protocol' },
  );
  for (const [option, end] of [
    ['--from', src],
    ['--to', dst],
  ] as const) {
    const note = end.workload && workloadNote(option, end.workload);
    if (note) v.notes.push(note);
  }
  v.notes.push(...unevaluated);
  io.out(values.output === 'json' ? JSON.stringify(v, null, 2) + '\n' : formatVerdict(v));
  return 0;
});
