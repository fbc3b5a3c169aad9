/**
 * `microseg simulate --cluster cluster.json [--policies p.yaml ...] --queries queries.json --output json`
 * answers many connection queries at once, in order.
 */
import { loadClusterSnapshot, stdinOnce, warnOnStderr, withPolicyFiles } from '../inputs.ts';
import { optionsCommand } from '../args.ts';
import { UsageError } from '../io.ts';
import { engineFromSnapshot } from '../../verify/engine.ts';
import { NOT_EVALUATED, parseQueries, readText, workloadNote } from '../../verify/load.ts';
import { parseEngineOptions, ENGINE_OPTION_HELP, ENGINE_OPTION_SPECS } from '../../verify/cli-options.ts';

export const HELP = `usage: microseg simulate --cluster FILE [--cluster FILE ...] [--policies FILE ...] --queries FILE [--output json]

Answers connection queries against the cluster's policies (plus --policies). Each query is
{"from": END, "to": END, "port": 80 | "name", "protocol": "TCP"|"UDP"|"SCTP"}
and has no other field (one is refused, naming the field it is closest to: a misspelt "protocol"
would be answered for TCP); the answer is a JSON array in the same order of {"allowed", "reason",
"policies"}. An END is "namespace/pod", a workload "namespace/Kind/name" (as explain takes it:
answered for its first pod by name, or its pod template when the cluster has no pod of it; --detail's
notes say which), an IP address ("10.0.0.7" or {"ip": "..."}), {"namespace", "pod"} or
{"namespace", "labels", "namedPorts": [{"name", "port", "protocol"}, ...]}.

options:
  --cluster FILE      Kubernetes List or multi-document YAML/JSON (Namespaces, Pods, policies); '-' for
                      stdin (repeatable)
  --policies FILE     extra policy objects (file or directory), repeatable; one named like an object
                      read before it replaces that object (as kubectl apply would); one that holds
                      no policy is refused
  --queries FILE      JSON array of queries (plain or gzip); '-' for stdin
  --output json       output format (json is the only one)
  --detail            include the egress/ingress breakdown, tier and notes in each answer
${ENGINE_OPTION_HELP}

exit codes: 0 answered (allowed or denied); 2 bad usage or input (a query it cannot read included);
            3 internal error`;

/** The options the command takes, as node:util parseArgs reads them (its --help lists each). */
export const OPTIONS = {
  cluster: { type: 'string', multiple: true },
  policies: { type: 'string', multiple: true },
  queries: { type: 'string' },
  output: { type: 'string', default: 'json' },
  detail: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h' },
  ...ENGINE_OPTION_SPECS,
} as const;

export const run = optionsCommand(OPTIONS, HELP, async (values, io) => {
  if (!values.cluster?.length) throw new UsageError('--cluster is required');
  if (!values.queries) throw new UsageError('--queries is required');
  if (values.output !== 'json') throw new UsageError(`--output ${values.output} is not supported (use json)`);
  const options = parseEngineOptions(values);
  stdinOnce([
    ['--cluster', values.cluster],
    ['--policies', values.policies],
    ['--queries', values.queries],
  ]);
  const stderr = warnOnStderr(io, 'simulate');
  // Policies the engine cannot evaluate are said in each answer too, not only on stderr.
  const unevaluated: string[] = [];
  const warn = (message: string) => {
    if (message.startsWith(NOT_EVALUATED)) unevaluated.push(message);
    stderr(message);
  };
  const cluster = await loadClusterSnapshot(values.cluster, io.stdin, warn);
  const snap = await withPolicyFiles(cluster, '--policies', values.policies ?? [], io.stdin, warn);
  const engine = engineFromSnapshot(snap, options);
  const queries = parseQueries(await readText(values.queries, io.stdin), values.queries, snap);
  const answers = queries.map(({ query, workloads }, i) => {
    const v = engine.evaluate(query, `${values.queries}: query ${i + 1}`);
    for (const [field, w] of [
      ['from', workloads.from],
      ['to', workloads.to],
    ] as const) {
      const note = w && workloadNote(field, w);
      if (note) v.notes.push(note);
    }
    const base = {
      allowed: v.allowed,
      reason: v.reason,
      policies: v.policies,
      ...(unevaluated.length > 0 ? { notEvaluated: unevaluated } : {}),
    };
    return values.detail
      ? {
          ...base,
          tier: v.tier,
          egress: v.egress,
          ingress: v.ingress,
          notes: v.notes,
          port: v.port,
          protocol: v.protocol,
        }
      : base;
  });
  io.out(JSON.stringify(answers, null, 2) + '\n');
  return 0;
});
