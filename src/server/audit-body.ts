/**
 * What `POST /audit` takes from the objects of its body: the policies to audit and how many objects
 * of each other kind it leaves out. Read in the parsing thread (parse-worker.ts), so that only this
 * crosses to the main thread (encoded, see EncodedAuditBody), and a body refused (an object malformed)
 * is refused there: a body of millions of small objects never reaches the event loop.
 */
import { deserialize, serialize } from 'node:v8';
import type { NetworkPolicy, OtherObject } from '../model/k8s.ts';
import { snapshotFromObjects } from '../model/snapshot.ts';
import type { Steps } from '../model/steps.ts';
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

/**
 * An `AuditBody` as the parsing thread sends it: each policy serialized on its own (node:v8, the
 * format of a message between threads), in one buffer handed over to the main thread, not copied.
 * Sent as objects, thousands of policies were read on the main thread in one go when the message
 * arrived (some 100-250 ms for 8 MiB of them, the event loop held meanwhile); this way the main
 * thread reads them one at a time (`decodeAuditBodySteps`, run in slices).
 */
export interface EncodedAuditBody {
  /** The policies, serialized one after another: first the NetworkPolicies, then the cluster-wide. */
  bytes: ArrayBuffer;
  /** Where each policy ends in `bytes`, in that order. */
  ends: number[];
  /** How many of them are NetworkPolicies. */
  networkPolicies: number;
  ignored: AuditBody['ignored'];
}

/** `body` as the parsing thread sends it (see EncodedAuditBody); hand `bytes` over with the message. */
export function encodeAuditBody(body: AuditBody): EncodedAuditBody {
  const parts = [...body.networkPolicies, ...body.clusterPolicies].map((o) => serialize(o));
  const bytes = new Uint8Array(parts.reduce((n, b) => n + b.length, 0));
  const ends: number[] = [];
  let at = 0;
  for (const b of parts) {
    bytes.set(b, at);
    at += b.length;
    ends.push(at);
  }
  return { bytes: bytes.buffer, ends, networkPolicies: body.networkPolicies.length, ignored: body.ignored };
}

/** The `AuditBody` of `encoded`, read one policy at a time (see model/steps.ts). */
export function* decodeAuditBodySteps(encoded: EncodedAuditBody): Steps<AuditBody> {
  const bytes = new Uint8Array(encoded.bytes);
  const networkPolicies: NetworkPolicy[] = [];
  const clusterPolicies: OtherObject[] = [];
  let start = 0;
  for (const [i, end] of encoded.ends.entries()) {
    const o: unknown = deserialize(bytes.subarray(start, end));
    if (i < encoded.networkPolicies) networkPolicies.push(o as NetworkPolicy);
    else clusterPolicies.push(o as OtherObject);
    start = end;
    yield;
  }
  return { networkPolicies, clusterPolicies, ignored: encoded.ignored };
}
