/**
 * Memos of a reconcile's pure steps, keyed by the identity of their inputs. The informers replace an
 * object when it changes (a watch event or a relist brings a new one) and never modify one in place,
 * and the steps below neither modify their inputs nor their results; so a step given the very same
 * objects again (and the same plain values) would compute the same result, and the memo returns the
 * one it computed last. Anything new (an object edited, added, removed or reordered, another value)
 * computes afresh. A reconcile stays level-based: it re-reads every input and decides from it; only
 * the work whose inputs are the same objects as last time is not repeated.
 */
import type { NetworkPolicy } from '../model/k8s.ts';
import type { Proposal } from '../policy/types.ts';
import type { ProposedNetworkPolicy, Segmentation, SegmentationSpec } from './api.ts';
import type { Action } from './plan.ts';
import { enforcedPolicy, frozenProposed, planObjects, proposalHash, proposedPolicies } from './plan.ts';

/**
 * One input of a memo: a plain value (compared with `===`) or a list of objects (compared item by item
 * with `===`, so a list rebuilt from the same objects is the same input).
 */
export type MemoInput = string | number | boolean | undefined | null | object | readonly unknown[];

function same(a: MemoInput, b: MemoInput): boolean {
  if (a === b) return true;
  if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The last result of a pure function, returned again while its inputs are the same (see above). */
export class Memo<R> {
  #inputs: readonly MemoInput[] | undefined;
  #result: R | undefined;
  /** How many times the function was computed (for tests and figures). */
  computed = 0;
  /** How many times the last result was returned instead. */
  reused = 0;

  /** `compute()` when `inputs` differ from the last call's, else the result it returned then. */
  get(inputs: readonly MemoInput[], compute: () => R): R {
    const last = this.#inputs;
    if (last !== undefined && last.length === inputs.length && last.every((v, i) => same(v, inputs[i]))) {
      this.reused++;
      return this.#result as R;
    }
    // Lists are copied: a caller may reuse and refill the array it passed.
    const result = compute();
    this.#inputs = inputs.map((v) => (Array.isArray(v) ? [...(v as unknown[])] : v));
    this.#result = result;
    this.computed++;
    return result;
  }

  /** Forgets the last result. */
  clear(): void {
    this.#inputs = undefined;
    this.#result = undefined;
  }
}

/**
 * The pure steps of a Segmentation's reconcile after its analysis, each memoised: its proposal objects
 * (from the analysis's proposal), their plan in Learn, the proposal's hash, and in Enforce its
 * NetworkPolicies and their plan. Each returns what the plain function (`proposedPolicies`,
 * `planObjects`, `proposalHash`, `enforcedPolicy`) returns for the same inputs.
 */
export class ReconcileMemo {
  readonly #proposed = new Memo<ProposedNetworkPolicy[]>();
  readonly #proposalPlan = new Memo<Action<ProposedNetworkPolicy>[]>();
  readonly #frozen = new Memo<ProposedNetworkPolicy[]>();
  readonly #frozenPlan = new Memo<Action<ProposedNetworkPolicy>[]>();
  readonly #hash = new Memo<string>();
  readonly #enforced = new Memo<NetworkPolicy[]>();
  readonly #enforcePlan = new Memo<Action<NetworkPolicy>[]>();

  /** `proposedPolicies(seg, proposal)`: depends on the Segmentation's name and uid only. */
  proposed(seg: Segmentation, proposal: Proposal): ProposedNetworkPolicy[] {
    return this.#proposed.get([seg.metadata.name, seg.metadata.uid, proposal], () =>
      proposedPolicies(seg, proposal),
    );
  }

  /** `planObjects(segmentation, desired, observed, uid)` for ProposedNetworkPolicies. */
  proposalPlan(
    segmentation: string,
    desired: readonly ProposedNetworkPolicy[],
    observed: readonly ProposedNetworkPolicy[],
    uid: string | undefined,
  ): Action<ProposedNetworkPolicy>[] {
    return this.#proposalPlan.get([segmentation, uid, desired, observed], () =>
      planObjects(segmentation, desired, observed, uid),
    );
  }

  /** `frozenProposed(seg, p)` of each frozen ProposedNetworkPolicy. */
  frozen(seg: Segmentation, frozen: readonly ProposedNetworkPolicy[]): ProposedNetworkPolicy[] {
    return this.#frozen.get([seg.metadata.name, seg.metadata.uid, frozen], () =>
      frozen.map((p) => frozenProposed(seg, p)),
    );
  }

  /** `planObjects(segmentation, desired, observed, uid)` for a frozen proposal (`desired`: `frozen`). */
  frozenPlan(
    segmentation: string,
    desired: readonly ProposedNetworkPolicy[],
    observed: readonly ProposedNetworkPolicy[],
    uid: string | undefined,
  ): Action<ProposedNetworkPolicy>[] {
    return this.#frozenPlan.get([segmentation, uid, desired, observed], () =>
      planObjects(segmentation, desired, observed, uid),
    );
  }

  /** `proposalHash(policies)`. */
  hash(policies: readonly ProposedNetworkPolicy[]): string {
    return this.#hash.get([policies], () => proposalHash(policies));
  }

  /** The NetworkPolicy `enforcedPolicy` makes of each proposed policy. */
  enforced(seg: Segmentation, proposal: readonly ProposedNetworkPolicy[]): NetworkPolicy[] {
    return this.#enforced.get([seg.metadata.name, seg.metadata.uid, proposal], () =>
      proposal.map((p) => enforcedPolicy(seg, p)),
    );
  }

  /**
   * `planObjects(segmentation, desired, observed, uid, quarantined, true, missing)` for NetworkPolicies;
   * `quarantined` counts as the same input only when it is the same set (see `Memo`).
   */
  enforcePlan(
    segmentation: string,
    desired: readonly NetworkPolicy[],
    observed: readonly NetworkPolicy[],
    uid: string | undefined,
    quarantined: ReadonlySet<string>,
    missing: readonly string[] = [],
  ): Action<NetworkPolicy>[] {
    return this.#enforcePlan.get([segmentation, uid, desired, observed, quarantined, missing], () =>
      planObjects(segmentation, desired, observed, uid, quarantined, true, missing),
    );
  }

  /** How many steps were computed and how many results reused, over all steps (for tests). */
  counts(): { computed: number; reused: number } {
    const all = [
      this.#proposed,
      this.#proposalPlan,
      this.#frozen,
      this.#frozenPlan,
      this.#hash,
      this.#enforced,
      this.#enforcePlan,
    ];
    return {
      computed: all.reduce((n, m) => n + m.computed, 0),
      reused: all.reduce((n, m) => n + m.reused, 0),
    };
  }
}

/**
 * What a Segmentation's analysis depends on besides the identity: the learned edges (their version),
 * the namespaces it covers, and the spec fields the analysis reads (`learning.minFlows`, `policy`). Not
 * the mode, nor any other field: switching to Audit or Enforce, or changing the audit window, analyses
 * nothing again (the generation, which any spec change bumps, did).
 */
export function analysisKey(
  edgesVersion: number,
  spec: Pick<SegmentationSpec, 'learning' | 'policy'>,
  namespaces: readonly string[],
): string {
  const { defaultDeny, includeDropped, worldIngress } = spec.policy;
  return JSON.stringify([
    edgesVersion,
    spec.learning.minFlows,
    defaultDeny,
    includeDropped,
    worldIngress,
    namespaces,
  ]);
}
