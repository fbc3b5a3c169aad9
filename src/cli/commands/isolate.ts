/**
 * `microseg isolate ns/pod ... --reason TEXT`: creates an Isolation (the controller cuts the pods off),
 * optionally waits for the result and prints it; `--print` writes the Isolation YAML instead.
 */
import { stringify } from 'yaml';
import { argsCommand } from '../args.ts';
import { UsageError } from '../io.ts';
import { EXIT } from '../io.ts';
import {
  isolatedNone,
  isolateOutcome,
  isolationFromFlags,
  kubeFrom,
  lastReported,
  parseTimeout,
  summary,
  waitFor,
} from '../../isolate/cli.ts';
import { KubeError, KubeUnreachableError, paths } from '../../isolate/kube.ts';

export const HELP = `usage: microseg isolate NAMESPACE/POD [NAMESPACE/POD ...] --reason TEXT [options]
       microseg isolate --workload KIND[.GROUP]/NAME -n NAMESPACE --reason TEXT [--include-future] [options]
       microseg isolate --selector KEY=VALUE[,...] -n NAMESPACE --reason TEXT [options]

Cuts pods off the network (they keep running for forensics) by creating an Isolation; the controller
picks the strongest mechanism the cluster serves and reports whether the isolation holds.

options:
  --reason TEXT                 why (required, not blank)
  -n, --namespace NS            namespace for --workload and --selector
  --workload KIND/NAME          the pods a Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob,
                                Argo Rollout or OpenKruise CloneSet has now
  --workload KIND.GROUP/NAME    the pods a custom resource of API group GROUP controls (their controller
                                owner reference), e.g. Cluster.postgresql.cnpg.io/pg (a Workload the
                                microseg.dev/workload label names: --selector microseg.dev/workload=NAME)
  --include-future              with --workload: also the pods it creates later
  --selector KEY=VALUE[,...]    the pods these labels select, now and later
  --name NAME                   Isolation name (default derived from the target)
  --direction Both|Ingress|Egress   default Both
  --no-dns                      do not keep DNS to the cluster DNS pods open
  --forensics-namespace K=V     namespaces (by label) that may still reach the pods; repeatable
  --forensics-pods K=V          pods of this namespace (by label) that may still reach them; repeatable
  --duration DUR                release automatically this long after isolation (e.g. 4h)
  --expires-at TIME             release automatically at this RFC 3339 time
  --detach                      also remove the labels Services select the pods by (restored on release)
  --incident REF                incident reference
  --requested-by WHO            default $USER, else microseg-cli
  --mechanism M                 Auto (default), ClusterNetworkPolicy, AdminNetworkPolicy or NetworkPolicy
  --dry-run                     plan and check for leaks only
  --kubeconfig PATH             default $KUBECONFIG, ~/.kube/config, or in a pod its ServiceAccount
  --wait                        wait until the controller reports the outcome
  --timeout DUR                 how long --wait waits (default 30s)
  --print                       print the Isolation as YAML and do nothing else
  --output text|json            output format (default text)

exit codes: 0 isolated (or created without --wait, or a dry run planned); 1 leaking, failed or
released, no pod found to isolate, no outcome within --timeout, or the API server cannot be reached;
2 bad usage (no kubeconfig found, or an Isolation the API server refuses, included); 3 internal error
`;

/** The options the command takes, as node:util parseArgs reads them (its --help lists each). */
export const OPTIONS = {
  reason: { type: 'string' },
  namespace: { type: 'string', short: 'n' },
  name: { type: 'string' },
  direction: { type: 'string' },
  'no-dns': { type: 'boolean', default: false },
  'forensics-namespace': { type: 'string', multiple: true },
  'forensics-pods': { type: 'string', multiple: true },
  duration: { type: 'string' },
  'expires-at': { type: 'string' },
  detach: { type: 'boolean', default: false },
  incident: { type: 'string' },
  'requested-by': { type: 'string' },
  mechanism: { type: 'string' },
  'dry-run': { type: 'boolean', default: false },
  workload: { type: 'string' },
  'include-future': { type: 'boolean', default: false },
  selector: { type: 'string' },
  kubeconfig: { type: 'string' },
  wait: { type: 'boolean', default: false },
  timeout: { type: 'string' },
  print: { type: 'boolean', default: false },
  output: { type: 'string', default: 'text' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const run = argsCommand(OPTIONS, HELP, true, async ({ values: v, positionals }, io) => {
  if (v.output !== 'text' && v.output !== 'json')
    throw new UsageError(`--output ${JSON.stringify(v.output)} is not one of text, json`);
  const iso = isolationFromFlags({
    targets: positionals,
    ...(v.namespace !== undefined ? { namespace: v.namespace } : {}),
    ...(v.name !== undefined ? { name: v.name } : {}),
    ...(v.reason !== undefined ? { reason: v.reason } : {}),
    ...(v.direction !== undefined ? { direction: v.direction } : {}),
    noDns: v['no-dns'],
    ...(v['forensics-namespace'] ? { forensicsNamespaces: v['forensics-namespace'] } : {}),
    ...(v['forensics-pods'] ? { forensicsPods: v['forensics-pods'] } : {}),
    ...(v.duration !== undefined ? { duration: v.duration } : {}),
    ...(v['expires-at'] !== undefined ? { expiresAt: v['expires-at'] } : {}),
    detach: v.detach,
    ...(v.incident !== undefined ? { incident: v.incident } : {}),
    ...(v['requested-by'] !== undefined ? { requestedBy: v['requested-by'] } : {}),
    dryRun: v['dry-run'],
    ...(v.mechanism !== undefined ? { mechanism: v.mechanism } : {}),
    ...(v.workload !== undefined ? { workload: v.workload } : {}),
    includeFuture: v['include-future'],
    ...(v.selector !== undefined ? { selector: v.selector } : {}),
  });
  if (v.print) {
    io.out(v.output === 'json' ? JSON.stringify(iso, null, 2) + '\n' : stringify(iso));
    return EXIT.ok;
  }
  const timeoutMs = parseTimeout(v.timeout, 30_000);
  const kube = await kubeFrom(v.kubeconfig);
  const ns = iso.metadata.namespace ?? '';
  const name = iso.metadata.name;
  try {
    let existed = false;
    try {
      await kube.request({ method: 'POST', path: paths.isolations(ns), body: iso });
    } catch (err) {
      if (!(err instanceof KubeError && err.status === 409)) {
        if (err instanceof KubeError && err.status >= 400 && err.status < 500)
          throw new UsageError(`the apiserver refused the Isolation: ${err.message}`);
        throw err;
      }
      existed = true;
    }
    if (!v.wait) {
      const text = `isolation ${ns}/${name} ${existed ? 'already exists' : 'created'}\n`;
      io.out(v.output === 'json' ? JSON.stringify({ namespace: ns, name, created: !existed }) + '\n' : text);
      return EXIT.ok;
    }
    // The controller's outcome for the spec as it is now: a status of an older generation (the spec
    // edited since) is not waited for.
    const { iso: last, timedOut } = await waitFor(kube, ns, name, isolateOutcome, timeoutMs);
    if (v.output === 'json') io.out(JSON.stringify(last ?? null, null, 2) + '\n');
    else if (last) io.out(summary(last));
    if (timedOut) {
      io.err(`microseg isolate: no outcome for ${ns}/${name} after ${timeoutMs} ms${lastReported(last)}\n`);
      return EXIT.findings;
    }
    if (isolatedNone(last)) {
      io.err(`microseg isolate: ${ns}/${name} isolated no pod (see its message above)\n`);
      return EXIT.findings;
    }
    const phase = last?.status?.phase;
    return phase === 'Isolated' || phase === 'Pending' ? EXIT.ok : EXIT.findings;
  } catch (err) {
    // Nothing was isolated: a failure (exit 1), said in one line.
    if (!(err instanceof KubeUnreachableError)) throw err;
    io.err(`microseg isolate: ${err.message}\n`);
    return EXIT.findings;
  } finally {
    kube.close();
  }
});
