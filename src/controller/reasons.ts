/**
 * Every condition type, condition reason and Event reason the controllers write, in one place, so that
 * `kubectl describe` output, alerts and tests all agree on the vocabulary.
 */

/** Condition types of a Segmentation's `status.conditions`. */
export const Condition = {
  /** The spec passed validation and the controller is acting on it. */
  Valid: 'Valid',
  /** Flows are being ingested into the learned graph (Learn mode, and kept up in Audit and Enforce). */
  Learning: 'Learning',
  /** The proposed policy set has not changed for `spec.learning.stableAfter`. */
  ProposalStable: 'ProposalStable',
  /** Zero flows would have been blocked by the frozen proposal over `spec.audit.window`. */
  AuditClean: 'AuditClean',
  /** The proposal is applied as NetworkPolicies. */
  Enforced: 'Enforced',
  /** Something the controller needs is failing (apiserver writes, flow source, persistence). */
  Degraded: 'Degraded',
} as const;
export type ConditionType = (typeof Condition)[keyof typeof Condition];

/** Reasons, used both in conditions and in Events. CamelCase, as Kubernetes requires. */
export const Reason = {
  // Valid
  SpecValid: 'SpecValid',
  InvalidSpec: 'InvalidSpec',
  NamespaceConflict: 'NamespaceConflict',
  // Learning
  LearningFlows: 'LearningFlows',
  ProposalFrozen: 'ProposalFrozen',
  SpecInvalid: 'SpecInvalid',
  // ProposalStable
  ProposalChanged: 'ProposalChanged',
  ProposalUnchanged: 'ProposalUnchanged',
  NoProposal: 'NoProposal',
  // AuditClean
  AuditNotRunning: 'AuditNotRunning',
  AuditWindowOpen: 'AuditWindowOpen',
  NoBlockedFlows: 'NoBlockedFlows',
  FlowsWouldBeBlocked: 'FlowsWouldBeBlocked',
  // Enforced
  NotEnforcing: 'NotEnforcing',
  PoliciesApplied: 'PoliciesApplied',
  EnforceRefused: 'EnforceRefused',
  EnforceForced: 'EnforceForced',
  PolicyNameConflict: 'PolicyNameConflict',
  NotRepairedWhileInvalid: 'NotRepairedWhileInvalid',
  // Degraded
  AsExpected: 'AsExpected',
  ApplyFailed: 'ApplyFailed',
  PersistFailed: 'PersistFailed',
  // Event-only reasons
  ModeChanged: 'ModeChanged',
  PolicyApplied: 'PolicyApplied',
  PolicyDriftRepaired: 'PolicyDriftRepaired',
  PolicyDriftNotRepaired: 'PolicyDriftNotRepaired',
  PolicyPruned: 'PolicyPruned',
  PoliciesRemoved: 'PoliciesRemoved',
  ProposalUpdated: 'ProposalUpdated',
  WouldBlockFlows: 'WouldBlockFlows',
  Unauditable: 'Unauditable',
  Unobserved: 'Unobserved',
  AutoPromoted: 'AutoPromoted',
  PromotionDue: 'PromotionDue',
  PromotionWaiting: 'PromotionWaiting',
  EdgesAgedOut: 'EdgesAgedOut',
  SpecChangeDeferred: 'SpecChangeDeferred',
  CleanedUp: 'CleanedUp',
  NoNamespaces: 'NoNamespaces',
  ReconcileFailed: 'ReconcileFailed',
  PolicyKept: 'PolicyKept',
} as const;
export type ReasonName = (typeof Reason)[keyof typeof Reason];

/** `status.phase` values, a one-word summary for `kubectl get`. */
export const Phase = {
  Learning: 'Learning',
  Auditing: 'Auditing',
  Enforcing: 'Enforcing',
  Refused: 'Refused',
  Invalid: 'Invalid',
  Degraded: 'Degraded',
} as const;
export type PhaseName = (typeof Phase)[keyof typeof Phase];
