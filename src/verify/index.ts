/**
 * The NetworkPolicy semantics engine: evaluation with explanations, batch reachability over pod
 * equivalence classes, proposal verification and blast radius. See docs/semantics.md.
 */
export type { EngineInput, Decision } from './engine.ts';
export { buildEngine, engineFromSnapshot, Engine, NS_NAME_LABEL } from './engine.ts';
export type {
  DirectionVerdict,
  Endpoint,
  EngineOptions,
  L4Protocol,
  PodEnd,
  Query,
  ResolvedEnd,
  Tier,
  Verdict,
} from './types.ts';
export { DEFAULT_OPTIONS, PROTOCOLS } from './types.ts';
export type {
  BlastOptions,
  BlastRadius,
  ExcessTuple,
  ObservedConnection,
  PodClass,
  PortProto,
  ReachSide,
  VerifyOptions,
  VerifyReport,
} from './reach.ts';
export { blastRadius, podClasses, ReachMatrix, verifyProposal } from './reach.ts';
export { connectionsFromFlows, describeBlocked } from './flows.ts';
export {
  CLUSTER_POLICY_KINDS,
  compileClusterPolicy,
  compileNetworkPolicy,
  isClusterPolicyKind,
} from './validate.ts';
export { snapshotFromText, VERIFY_EXTRA_KINDS, workloadEndpoint } from './load.ts';
