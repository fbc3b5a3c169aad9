/**
 * What `microseg isolate` and `microseg release` share: building an Isolation from flags (pure), the
 * kubeconfig, waiting for a phase, and the one-screen summary of an Isolation's status.
 */
import { createHash } from 'node:crypto';
import { UsageError } from '../cli/io.ts';
import type { KubeConfigPlaces } from '../cli/kubeconfig.ts';
import { loadKubeConfig } from '../cli/kubeconfig.ts';
import { parseDuration } from '../controller/api.ts';
import type { FieldName, Isolation, IsolationSpecInput } from './api.ts';
import {
  API_VERSION,
  KIND,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  NO_POD_MESSAGE,
  ISOLATION_FINALIZER,
  RECONCILED_CONDITION,
  isDnsLabel,
  isPodName,
  parseIsolationSpec,
  WORKLOAD_KINDS,
} from './api.ts';
import { WORKLOAD_KINDS as IDENTITY_WORKLOAD_KINDS } from '../identity/types.ts';
import { LABELLED_KIND, WORKLOAD_LABEL } from '../identity/index.ts';

/** The kinds identity knows, lower-cased: a slip of case (or Pod) is left to the spec's own messages. */
const KNOWN_KINDS: ReadonlySet<string> = new Set(IDENTITY_WORKLOAD_KINDS.map((k) => k.toLowerCase()));
import type { Kube } from './kube.ts';
import { KubeClient, paths } from './kube.ts';

export interface IsolateFlags {
  targets: string[];
  namespace?: string;
  name?: string;
  reason?: string;
  direction?: string;
  noDns?: boolean;
  forensicsNamespaces?: string[];
  forensicsPods?: string[];
  duration?: string;
  expiresAt?: string;
  detach?: boolean;
  incident?: string;
  requestedBy?: string;
  dryRun?: boolean;
  mechanism?: string;
  workload?: string;
  includeFuture?: boolean;
  selector?: string;
}

/** Parses `k=v,k2=v2` into matchLabels. */
export function parseLabels(text: string, flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(',')) {
    const m = /^([A-Za-z0-9./_-]+)=([A-Za-z0-9._-]*)$/.exec(part.trim());
    if (!m) throw new UsageError(`${flag} ${JSON.stringify(text)} must be key=value[,key=value]`);
    out[m[1]!] = m[2]!;
  }
  return out;
}

/** `namespace/name` → its parts, checked. */
export function splitRef(text: string, what: string): [string, string] {
  const parts = text.split('/');
  if (parts.length !== 2 || !isDnsLabel(parts[0]!) || !isPodName(parts[1]!))
    throw new UsageError(`${what} ${JSON.stringify(text)} must be namespace/name`);
  return [parts[0]!, parts[1]!];
}

/**
 * The flags that fill each field of the spec, for the problems of an Isolation built from a command
 * line: `--duration "4" is not a duration ...`, not `spec.duration "4" ...`. A forensics peer is named
 * by its flag and value (they repeat); a selector's problem follows the flag that gave the selector.
 */
function flagNames(f: IsolateFlags): FieldName {
  const forensics = [
    ...(f.forensicsNamespaces ?? []).map((v) => `--forensics-namespace ${JSON.stringify(v)}`),
    ...(f.forensicsPods ?? []).map((v) => `--forensics-pods ${JSON.stringify(v)}`),
  ];
  const flags: Record<string, string> = {
    'metadata.name': '--name',
    'spec.target.pods': 'NAMESPACE/POD arguments',
    'spec.target.podSelector':
      f.selector !== undefined ? `--selector ${JSON.stringify(f.selector)}` : '--selector',
    'spec.target.workload.kind': '--workload kind',
    'spec.target.workload.apiGroup': '--workload group',
    'spec.target.workload.name': '--workload name',
    'spec.target.workload.includeFuture': '--include-future',
    'spec.direction': '--direction',
    'spec.exceptions.dns': '--no-dns',
    'spec.exceptions.forensics': '--forensics-namespace and --forensics-pods',
    'spec.detachFromServices': '--detach',
    'spec.reason': '--reason',
    'spec.incident': '--incident',
    'spec.requestedBy': '--requested-by',
    'spec.duration': '--duration',
    'spec.expiresAt': '--expires-at',
    'spec.dryRun': '--dry-run',
    'spec.mechanism': '--mechanism',
  };
  return (path) => {
    const exact = flags[path];
    if (exact !== undefined) return exact;
    // A pod argument, by its value as given.
    const pod = /^spec\.target\.pods\[(\d+)\]$/.exec(path);
    if (pod) return 'pod';
    // A selector's, what is wrong in it after the flag: `--selector "app=-x" matchLabels: ...`.
    const selector = /^spec\.target\.podSelector\.(.*)$/s.exec(path);
    if (selector) return `${flags['spec.target.podSelector']!} ${selector[1]!}`;
    const peer = /^spec\.exceptions\.forensics\[(\d+)\]\.(?:namespaceSelector|podSelector)(?:\.(.*))?$/s.exec(
      path,
    );
    const given = peer ? forensics[Number(peer[1])] : undefined;
    if (given !== undefined) return peer![2] !== undefined ? `${given} ${peer![2]}` : given;
    return path;
  };
}

/**
 * Builds (and validates) the Isolation a command line asks for. Its problems name the flags; with
 * `names: 'spec'` (the web page's API, which has no flags) the spec's fields, as the controller does.
 */
export function isolationFromFlags(f: IsolateFlags, names: 'flags' | 'spec' = 'flags'): Isolation {
  const modes = [f.targets.length > 0, f.workload !== undefined, f.selector !== undefined].filter(
    Boolean,
  ).length;
  if (modes !== 1)
    throw new UsageError(
      'give pods as namespace/pod arguments, or --workload KIND/NAME, or --selector k=v (exactly one)',
    );
  if (!f.reason) throw new UsageError('--reason is required (why the pods are isolated)');
  if (f.reason.trim() === '')
    throw new UsageError(`--reason ${JSON.stringify(f.reason)} is blank: say why the pods are isolated`);
  let namespace = f.namespace;
  let target: IsolationSpecInput['target'];
  let seed: string;
  let hashed: string | undefined;
  if (f.targets.length > 0) {
    const refs = f.targets.map((t) => splitRef(t, 'pod'));
    const nss = [...new Set(refs.map((r) => r[0]))];
    if (nss.length > 1) throw new UsageError(`all pods must be in one namespace (got ${nss.join(', ')})`);
    if (namespace && namespace !== nss[0])
      throw new UsageError(`--namespace ${namespace} does not match the pods' namespace ${nss[0]}`);
    namespace = nss[0];
    target = { pods: refs.map((r) => r[1]) };
    seed = refs
      .map((r) => r[1])
      .sort()
      .join(',');
  } else if (f.workload !== undefined) {
    // KIND/NAME, or KIND.GROUP/NAME (kubectl's TYPE.GROUP) for a custom resource's kind: kinds have no dot.
    const m = /^([^./]+)(?:\.([^/]+))?\/(.+)$/.exec(f.workload);
    if (!m)
      throw new UsageError(
        `--workload ${JSON.stringify(f.workload)} must be KIND/NAME, e.g. Deployment/cart, or KIND.GROUP/NAME for a custom resource's kind, e.g. Cluster.postgresql.cnpg.io/pg`,
      );
    const [, kind, group, wname] = m as unknown as [string, string, string | undefined, string];
    // The workloads the workload label names (`ci/Workload/build`, as microseg prints them) have no
    // owner to target: their pods are those carrying the label, which a selector takes.
    if (group === undefined && kind.toLowerCase() === LABELLED_KIND.toLowerCase())
      throw new UsageError(
        `--workload ${JSON.stringify(f.workload)}: a ${LABELLED_KIND} is named by the ${WORKLOAD_LABEL} label of its pods, not by an owner: isolate them by that label, --selector ${WORKLOAD_LABEL}=${wname}`,
      );
    if (group === undefined && !KNOWN_KINDS.has(kind.toLowerCase()))
      throw new UsageError(
        `--workload ${JSON.stringify(f.workload)}: ${kind} is not one of ${WORKLOAD_KINDS.join(', ')}; give a custom resource's kind with its API group, as KIND.GROUP/NAME (e.g. Cluster.postgresql.cnpg.io/pg)`,
      );
    target = {
      workload: {
        kind,
        ...(group !== undefined ? { apiGroup: group } : {}),
        name: wname,
        ...(f.includeFuture ? { includeFuture: true } : {}),
      },
    };
    seed = `${kind.toLowerCase()}-${wname}`;
    // A custom resource's group tells apart two kinds of one name (in the generated name's hash, not its
    // readable part); a known kind's own group changes nothing.
    if (group !== undefined && !KNOWN_KINDS.has(kind.toLowerCase()))
      hashed = `${kind.toLowerCase()}.${group}-${wname}`;
  } else {
    target = { podSelector: { matchLabels: parseLabels(f.selector!, '--selector') } };
    seed = f.selector!;
  }
  if (!namespace) throw new UsageError('--namespace is required with --workload and --selector');
  if (f.includeFuture && f.workload === undefined)
    throw new UsageError('--include-future applies to --workload only');
  const first = seed.split(',')[0]!;
  const slug =
    first
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .slice(0, 40)
      .replace(/^-+|-+$/g, '') || 'x';
  const name =
    f.name ??
    `iso-${slug}-${createHash('sha256')
      .update(`${namespace}/${hashed ?? seed}`)
      .digest('hex')
      .slice(0, 6)}`;
  const forensics = [
    ...(f.forensicsNamespaces ?? []).map((s) => ({
      namespaceSelector: { matchLabels: parseLabels(s, '--forensics-namespace') },
    })),
    ...(f.forensicsPods ?? []).map((s) => ({
      podSelector: { matchLabels: parseLabels(s, '--forensics-pods') },
    })),
  ];
  const spec: IsolationSpecInput = {
    target,
    ...(f.direction ? { direction: f.direction } : {}),
    exceptions: { dns: !f.noDns, ...(forensics.length > 0 ? { forensics } : {}) },
    ...(f.detach ? { detachFromServices: true } : {}),
    reason: f.reason,
    ...(f.incident ? { incident: f.incident } : {}),
    requestedBy: f.requestedBy ?? process.env.USER ?? 'microseg-cli',
    ...(f.duration ? { duration: f.duration } : {}),
    ...(f.expiresAt ? { expiresAt: f.expiresAt } : {}),
    ...(f.dryRun ? { dryRun: true } : {}),
    ...(f.mechanism ? { mechanism: f.mechanism } : {}),
  };
  const checked = parseIsolationSpec(name, spec, names === 'flags' ? flagNames(f) : undefined);
  if (!checked.ok) throw new UsageError(checked.problems.join('; '));
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: {
      name,
      namespace,
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, 'microseg.dev/trigger': 'cli' },
    },
    spec,
  };
}

/**
 * The client for the cluster of `--kubeconfig` (else $KUBECONFIG, ~/.kube/config, in-cluster): no
 * kubeconfig found, or one that cannot be used, is bad usage naming where it looked.
 */
export async function kubeFrom(
  kubeconfig: string | undefined,
  places?: KubeConfigPlaces,
): Promise<KubeClient> {
  const { kc, source } = loadKubeConfig(kubeconfig, places);
  try {
    return await KubeClient.fromKubeConfig(kc);
  } catch (err) {
    // A certificate or key file it names that cannot be read, an exec plugin that fails, ...
    throw new UsageError(`${source}: ${(err as Error).message}`);
  }
}

export function parseTimeout(text: string | undefined, dflt: number): number {
  if (text === undefined) return dflt;
  const ms = parseDuration(text);
  if (ms === undefined)
    throw new UsageError(`--timeout ${JSON.stringify(text)} is not a duration such as "30s"`);
  return ms;
}

/**
 * Whether the status is the controller's for the Isolation's current spec: written for the generation
 * the API server gave the spec last (a spec edited since, by `kubectl apply` or by hand, has not been
 * reported on yet, and what the status says is of the spec before).
 */
export function ofCurrentSpec(iso: Isolation | undefined): boolean {
  const s = iso?.status;
  return s?.observedGeneration !== undefined && s.observedGeneration === (iso?.metadata.generation ?? 0);
}

/**
 * Whether the controller has reported, for the Isolation's current spec, that it found no pod to
 * isolate (phase Pending, the reason in its message): an outcome, not a wait for the controller. With
 * `includeFuture` it stays armed for the workload's next pods.
 */
export function isolatedNone(iso: Isolation | undefined): boolean {
  const s = iso?.status;
  return (
    s?.phase === 'Pending' &&
    !iso?.spec?.dryRun &&
    ofCurrentSpec(iso) &&
    (s.message ?? '').startsWith(NO_POD_MESSAGE)
  );
}

/**
 * Whether `isolate --wait` has its outcome: the controller's for the current spec (Isolated, Leaking,
 * Failed, no pod to isolate, a dry run planned), not a status of a spec since edited (a Failed of an
 * invalid spec since fixed); or Released, which a record stays whatever its spec says until it is
 * re-armed.
 */
export function isolateOutcome(iso: Isolation | undefined): boolean {
  const p = iso?.status?.phase;
  if (p === 'Released') return true;
  if (!ofCurrentSpec(iso)) return false;
  if (p === 'Isolated' || p === 'Leaking' || p === 'Failed') return true;
  if (isolatedNone(iso)) return true;
  return p === 'Pending' && !!iso?.spec?.dryRun && (iso.status?.message ?? '').startsWith('dry run');
}

/** Polls an Isolation until `done` says so, or the timeout passes (returns the last state seen). */

export async function waitFor(
  kube: Kube,
  ns: string,
  name: string,
  done: (iso: Isolation | undefined) => boolean,
  timeoutMs: number,
): Promise<{ iso: Isolation | undefined; timedOut: boolean }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let iso: Isolation | undefined;
    try {
      iso = await kube.request<Isolation>({ method: 'GET', path: paths.isolation(ns, name) });
    } catch (err) {
      if (!(err instanceof Error && 'status' in err && (err as { status: number }).status === 404)) throw err;
    }
    if (done(iso)) return { iso, timedOut: false };
    if (Date.now() >= deadline) return { iso, timedOut: true };
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Why `--wait` saw no outcome, for the line after "no outcome ... after N ms": what the controller last
 * wrote in the status (its phase and message, and the spec generation it was for when that is not the
 * current one; the error of its last reconcile when that failed and the message does not say it), or,
 * when it never wrote any, the question whether it runs at all.
 */
export function lastReported(iso: Isolation | undefined): string {
  const s = iso?.status;
  const written =
    s !== undefined &&
    (s.observedGeneration !== undefined || !!s.phase || !!s.message || (s.conditions ?? []).length > 0);
  if (!iso || !written) return ' (is the controller running?)';
  const failed = s.conditions?.find((c) => c.type === RECONCILED_CONDITION && c.status === 'False');
  const failure =
    failed?.message && !(s.message ?? '').includes(failed.message)
      ? `; its last reconcile failed: ${failed.message}`
      : '';
  const generation = iso.metadata.generation;
  const older =
    s.observedGeneration !== undefined && generation !== undefined && s.observedGeneration < generation
      ? `, for generation ${s.observedGeneration} of the spec (now ${generation}),`
      : '';
  const ns = iso.metadata.namespace ?? '';
  return `; the controller last reported${older} phase ${s.phase ?? 'Pending'}${s.message ? `: ${s.message}` : ''}${failure} (its Events: kubectl describe isolation -n ${ns} ${iso.metadata.name})`;
}

/**
 * Why `release --wait` still found the Isolation, for the line after "still present after N ms". Once
 * deleted, what holds it is a finalizer: microseg's while the controller has not released the pods (the
 * phase and message are the ones from before the deletion and say nothing of the release; a release
 * that fails is a ReconcileFailed Event and a Reconciled condition written False since the deletion,
 * whose error is said), or another's. Not deleted (created again since, say): what the controller last
 * reported.
 */
export function notReleased(iso: Isolation | undefined): string {
  if (!iso?.metadata.deletionTimestamp) return lastReported(iso);
  const finalizers = iso.metadata.finalizers ?? [];
  if (finalizers.includes(ISOLATION_FINALIZER)) {
    // A release that failed after the deletion is in the Reconciled condition too: say its error. Turned
    // False since the deletion, or False since before it and written again by a reconcile of the deleted
    // object (the release failing as the isolation did, a pod patch RBAC forbids, say): its
    // lastTransitionTime stays, but its observedGeneration is the one the API server gave the object as
    // it marked the deletion (it bumps the generation then).
    const failed = iso.status?.conditions?.find(
      (c) =>
        c.type === RECONCILED_CONDITION &&
        c.status === 'False' &&
        (Date.parse(c.lastTransitionTime) >= Date.parse(iso.metadata.deletionTimestamp ?? '') ||
          (c.observedGeneration !== undefined && c.observedGeneration === iso.metadata.generation)),
    );
    if (failed?.message)
      return `: deleted, but the controller has not released its pods and removed its finalizer ${ISOLATION_FINALIZER}: its last reconcile failed: ${failed.message} (its Events: kubectl describe isolation -n ${iso.metadata.namespace ?? ''} ${iso.metadata.name})`;
    return `: deleted, but the controller has not released its pods and removed its finalizer ${ISOLATION_FINALIZER} (is the controller running? A release that fails is said in a ReconcileFailed Event: kubectl describe isolation -n ${iso.metadata.namespace ?? ''} ${iso.metadata.name})`;
  }
  return `: deleted, and microseg holds it no longer (its pods released, or none isolated), but finalizers that are not microseg's do: ${finalizers.join(', ')}`;
}

export function summary(iso: Isolation): string {
  const s = iso.status ?? {};
  const lines = [
    `isolation ${iso.metadata.namespace}/${iso.metadata.name}: ${s.phase ?? 'Pending'}${s.method ? ` (${s.method})` : ''}`,
  ];
  if (s.message) lines.push(`  ${s.message}`);
  if (s.isolatedPods && s.isolatedPods.length > 0) lines.push(`  pods: ${s.isolatedPods.join(', ')}`);
  for (const l of s.leaks ?? [])
    lines.push(`  LEAK ${l.direction} ${l.policy} ${l.rule}: ${l.example} (${l.pod})`);
  if (s.proof)
    lines.push(
      `  checked ${s.proof.probes} connections: ${s.proof.exceptions} allowed by exceptions, ${s.proof.leaks} leaking rule(s)`,
    );
  if (s.expiresAt) lines.push(`  expires: ${s.expiresAt}`);
  return lines.join('\n') + '\n';
}
