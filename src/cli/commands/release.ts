/**
 * `microseg release ns/isolation ...` (or `--pod ns/pod`): deletes Isolations; the controller restores the
 * pods' labels and removes what it created before the object disappears. `--wait` waits for that.
 */
import { argsCommand } from '../args.ts';
import { UsageError } from '../io.ts';
import { EXIT } from '../io.ts';
import type { Pod } from '../../model/k8s.ts';
import { QUARANTINE_LABEL } from '../../isolate/api.ts';
import { kubeFrom, notReleased, parseTimeout, splitRef, waitFor } from '../../isolate/cli.ts';
import { isNotFound, KubeUnreachableError, paths } from '../../isolate/kube.ts';

export const HELP = `usage: microseg release NAMESPACE/ISOLATION [...] [options]
       microseg release --pod NAMESPACE/POD [--pod NAMESPACE/POD ...] [options]

Releases isolations: deleting an Isolation makes the controller restore the pods' labels exactly and
remove the policies it created.

options:
  --pod NS/POD          release the Isolation that quarantines this pod; repeatable
  --kubeconfig PATH     default $KUBECONFIG, ~/.kube/config, or in a pod its ServiceAccount
  --wait                wait until the release is complete (the Isolation is gone)
  --timeout DUR         how long --wait waits (default 60s)

exit codes: 0 released; 1 an Isolation not found, not gone after --timeout, or the API server cannot
be reached; 2 bad usage (a --pod not found or not quarantined, or no kubeconfig found, included);
3 internal error
`;

/** The options the command takes, as node:util parseArgs reads them (its --help lists each). */
export const OPTIONS = {
  pod: { type: 'string', multiple: true },
  kubeconfig: { type: 'string' },
  wait: { type: 'boolean', default: false },
  timeout: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const run = argsCommand(OPTIONS, HELP, true, async ({ values: v, positionals }, io) => {
  const refs = positionals.map((p) => splitRef(p, 'isolation'));
  const pods = (v.pod ?? []).map((p) => splitRef(p, '--pod'));
  if (refs.length + pods.length === 0)
    throw new UsageError('name at least one NAMESPACE/ISOLATION or --pod NAMESPACE/POD');
  const timeoutMs = parseTimeout(v.timeout, 60_000);
  const kube = await kubeFrom(v.kubeconfig);
  let code: number = EXIT.ok;
  try {
    for (const [ns, pod] of pods) {
      let p: Pod;
      try {
        p = await kube.request<Pod>({ method: 'GET', path: paths.pod(ns, pod) });
      } catch (err) {
        if (isNotFound(err)) throw new UsageError(`pod ${ns}/${pod} not found`);
        throw err;
      }
      const iso = p.metadata.labels?.[QUARANTINE_LABEL];
      if (!iso) throw new UsageError(`pod ${ns}/${pod} is not quarantined (no ${QUARANTINE_LABEL} label)`);
      refs.push([ns, iso]);
    }
    // One Isolation named more than once (two pods it quarantines, or by name and by a pod) is released
    // once: deleting it again would find it gone and report it as not found.
    const once = new Set<string>();
    for (const [ns, name] of refs) {
      if (once.has(`${ns}/${name}`)) continue;
      once.add(`${ns}/${name}`);
      try {
        await kube.request({ method: 'DELETE', path: paths.isolation(ns, name) });
      } catch (err) {
        if (isNotFound(err)) {
          io.err(`microseg release: isolation ${ns}/${name} not found\n`);
          code = EXIT.findings;
          continue;
        }
        throw err;
      }
      if (!v.wait) {
        io.out(`isolation ${ns}/${name} released (the controller restores the pods)\n`);
        continue;
      }
      const { iso: last, timedOut } = await waitFor(kube, ns, name, (i) => i === undefined, timeoutMs);
      if (timedOut) {
        io.err(`microseg release: ${ns}/${name} still present after ${timeoutMs} ms${notReleased(last)}\n`);
        code = EXIT.findings;
      } else io.out(`isolation ${ns}/${name} released; pods restored\n`);
    }
  } catch (err) {
    if (!(err instanceof KubeUnreachableError)) throw err;
    io.err(`microseg release: ${err.message}\n`);
    return EXIT.findings;
  } finally {
    kube.close();
  }
  return code;
});
