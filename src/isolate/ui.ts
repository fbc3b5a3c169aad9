/**
 * The web page's Isolate and Release buttons in controller mode. A graph workload becomes the Isolation
 * `microseg isolate` would write for it (same name, so the page, the CLI and a second click agree on one
 * object), persisted like an alert's (a released one is re-armed, an active one left alone; a CronJob's
 * re-armed with its runs to come, `includeFuture`, as the button would create it). Release
 * deletes the Isolation, as `microseg release` does; the leader's reconciler restores the pods.
 */
import { UsageError } from '../cli/io.ts';
import type { Isolation } from './api.ts';
import type { IsolationSpecInput } from './api.ts';
import { ISOLATION_FINALIZER, MAX_REASON, WORKLOAD_KINDS, isDnsLabel, parseIsolationSpec } from './api.ts';
import { isolationFromFlags } from './cli.ts';
import { LABELLED_KIND, WORKLOAD_LABEL } from '../identity/index.ts';
import type { Kube } from './kube.ts';
import { KubeError, isNotFound, paths } from './kube.ts';
import type { Persister } from './webhooks.ts';

/**
 * A request the page's server answers with `status` and this message: it sends errors that carry a 4xx
 * `status` and `expose` (the http-errors convention) as they are, anything else as a 500.
 */
export class IsolationRequestError extends Error {
  readonly status: number;
  readonly expose = true;
  constructor(status: number, message: string) {
    super(message);
    this.name = 'IsolationRequestError';
    this.status = status;
  }
}

/**
 * The Isolation for a graph workload (`namespace/Kind/name`): a bare pod (`Pod`) is isolated by name,
 * anything else as a workload target, i.e. the pods it has now (as `microseg isolate --workload` does;
 * replacements started later are clean), a CronJob's runs to come too (`includeFuture`): every kind the graph names workloads by (Deployment,
 * StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, Rollout, CloneSet), and the kind of a custom resource
 * that controls its pods (CloudNativePG's Cluster), whose API group `apiGroup` gives (the group of
 * identity's `Workload.customResource`): without it such a kind is refused, as is any other. Pure.
 */
export function isolationForWorkload(
  workload: string,
  reason: string | undefined,
  user: string,
  apiGroup?: string,
): Isolation {
  const parts = workload.split('/');
  if (parts.length !== 3 || parts.some((p) => p === ''))
    throw new IsolationRequestError(400, `workload ${JSON.stringify(workload)} is not namespace/Kind/name`);
  const [namespace, kind, name] = parts as [string, string, string];
  // The namespace goes into the request path as it is.
  if (!isDnsLabel(namespace))
    throw new IsolationRequestError(
      400,
      `namespace ${JSON.stringify(namespace)} of ${workload} is not a DNS label`,
    );
  const known = (WORKLOAD_KINDS as readonly string[]).includes(kind);
  // A workload the workload label names: its pods are those that carry the label with its name, now and later.
  const labelled = kind === LABELLED_KIND;
  if (!known && !labelled && kind !== 'Pod' && apiGroup === undefined)
    throw new IsolationRequestError(
      400,
      `cannot isolate ${workload}: ${kind} is not one of ${WORKLOAD_KINDS.join(', ')}, and no pod in the cluster names a custom resource ${kind} ${name} as its controller (its API group is not known)`,
    );
  const why = reason?.trim() || `isolated from the web page by ${user}`;
  // The target checked first as the spec names its fields (the page has no flags): spelt as the CLI's
  // flags below, a name or group they cannot carry was refused in the flags' words (`--workload
  // "Cluster./pg" must be KIND/NAME`), and a kind with a dot read as KIND.GROUP, another target.
  const target: IsolationSpecInput['target'] =
    kind === 'Pod'
      ? { pods: [name] }
      : labelled
        ? { podSelector: { matchLabels: { [WORKLOAD_LABEL]: name } } }
        : { workload: { kind, ...(known || apiGroup === undefined ? {} : { apiGroup }), name } };
  const checked = parseIsolationSpec('page', { target, reason: 'checked' });
  if (!checked.ok)
    throw new IsolationRequestError(400, `cannot isolate ${workload}: ${checked.problems.join('; ')}`);
  let iso: Isolation;
  try {
    iso = isolationFromFlags(
      {
        ...(kind === 'Pod'
          ? { targets: [`${namespace}/${name}`] }
          : labelled
            ? { targets: [], namespace, selector: `${WORKLOAD_LABEL}=${name}` }
            : {
                targets: [],
                namespace,
                workload: known || apiGroup === undefined ? `${kind}/${name}` : `${kind}.${apiGroup}/${name}`,
                // Each run of a CronJob makes new pods (between runs it has none): its runs to come are
                // isolated too, else the button would isolate nothing or only the run going now.
                ...(kind === 'CronJob' ? { includeFuture: true } : {}),
              }),
        // The longest reason the CRD takes: the rest of a pasted log is cut.
        reason: why.length > MAX_REASON ? `${why.slice(0, MAX_REASON - 3)}...` : why,
        requestedBy: `web page (${user})`,
      },
      'spec',
    );
  } catch (err) {
    if (err instanceof UsageError)
      throw new IsolationRequestError(400, `cannot isolate ${workload}: ${err.message}`);
    throw err;
  }
  return {
    ...iso,
    metadata: {
      ...iso.metadata,
      labels: { ...iso.metadata.labels, 'microseg.dev/trigger': 'web' },
      // Written by the controller itself, so its reconciler runs: register the release finalizer at once
      // (as the webhooks do) instead of in a second write.
      finalizers: [ISOLATION_FINALIZER],
    },
  };
}

/** `namespace/name` of an Isolation, or undefined when it cannot name one (nothing else reaches a path). */
export function parseIsolationRef(ref: string): { namespace: string; name: string } | undefined {
  const parts = ref.split('/');
  if (parts.length !== 2 || !isDnsLabel(parts[0]!) || !isDnsLabel(parts[1]!)) return undefined;
  return { namespace: parts[0]!, name: parts[1]! };
}

export interface IsolationActions {
  /**
   * Isolates a graph workload; resolves to the Isolation as the apiserver holds it. `apiGroup`: that of
   * a custom resource's kind (see isolationForWorkload).
   */
  isolate(workload: string, reason: string | undefined, user: string, apiGroup?: string): Promise<Isolation>;
  /** Deletes an Isolation; false when there was none. */
  release(namespace: string, name: string): Promise<boolean>;
}

/** Apiserver refusals (forbidden, invalid) are the request's problem, not the server's. */
function refused(err: unknown): never {
  if (err instanceof KubeError && err.status >= 400 && err.status < 500 && err.status !== 429)
    throw new IsolationRequestError(422, err.message);
  throw err;
}

export function isolationActions(o: { kube: Kube; persister: Persister }): IsolationActions {
  return {
    async isolate(workload, reason, user, apiGroup) {
      const iso = isolationForWorkload(workload, reason, user, apiGroup);
      const ns = iso.metadata.namespace!;
      const name = iso.metadata.name;
      // A released one is re-armed as the button would create it: a CronJob's runs to come included.
      await o.persister.isolate(iso, { rearmIncludeFuture: true }).catch(refused);
      // The persister says created, re-armed or exists; the page wants the object's state.
      let live: Isolation | undefined;
      try {
        live = await o.kube.request<Isolation>({ method: 'GET', path: paths.isolation(ns, name) });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      if (!live || live.metadata.deletionTimestamp)
        throw new IsolationRequestError(
          409,
          `Isolation ${ns}/${name} is being released; isolate again once it is gone`,
        );
      return live;
    },
    async release(namespace, name) {
      const r = await o.persister.release(namespace, name).catch(refused);
      return r.outcome === 'deleted';
    },
  };
}
