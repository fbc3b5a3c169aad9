/**
 * What `POST /audit` takes from the objects of its body: the policies to audit and how many objects
 * of each other kind it leaves out. Read in the parsing thread (parse-worker.ts), so that only this
 * crosses to the main thread, and a body refused (an object malformed) is refused there: a body of
 * millions of small objects never reaches the event loop.
 */
import type { NetworkPolicy, OtherObject } from '../model/k8s.ts';
import { snapshotFromObjects } from '../model/snapshot.ts';
import { isClusterPolicyKind } from '../verify/validate.ts';

export interface AuditBody {
  networkPolicies: NetworkPolicy[];
  /** AdminNetworkPolicies and the other cluster-wide policies given. */
  clusterPolicies: OtherObject[];
  /** The objects of other kinds, counted by kind, in the order each kind was first met. */
  ignored: [kind: string, count: number][];
}

/** The policies of `objects` and the other objects counted by kind; a malformed object is an `InputError`. */
export function auditBodyOf(objects: Iterable<unknown>, source: string): AuditBody {
  const snap = snapshotFromObjects(objects, source);
  const clusterPolicies = snap.others.filter((o) => isClusterPolicyKind(o.kind));
  // Counted in a Map: an object's kind is the caller's text (`constructor`, `__proto__`), no key to
  // look up on a plain object.
  const ignored = new Map<string, number>();
  for (const list of [
    snap.namespaces,
    snap.pods,
    snap.services,
    snap.endpointSlices,
    snap.workloads,
    snap.cronJobs,
    snap.others.filter((o) => !isClusterPolicyKind(o.kind)),
  ])
    for (const o of list) {
      const kind = (o as { kind?: string }).kind ?? '';
      ignored.set(kind, (ignored.get(kind) ?? 0) + 1);
    }
  return { networkPolicies: snap.networkPolicies, clusterPolicies, ignored: [...ignored] };
}
