/** The flow inputs stage: every input format turned into normalised `Flow` records. See docs/flows.md. */
export type { Flow, FlowEndpoint, Protocol, ReservedIdentity, Verdict } from './types.ts';
export type { BadReason, SkipReason } from './errors.ts';
export { FlowInputError } from './errors.ts';
export type { DirectionRule } from './direction.ts';
export { decideDirection } from './direction.ts';
export type { HubbleResult, HubbleEventKind, NormalizeHubbleOptions } from './hubble.ts';
export { normalizeHubbleFlow, normalizeHubbleRecord, parseHubbleLineSlow } from './hubble.ts';
export { parseHubbleLine, scanHubbleLine } from './hubble-scan.ts';
export { parseGenericFlow, parseGenericLine, parseFlowTime } from './generic.ts';
export { parseGadgetEvent } from './inspektor-gadget.ts';
export { parseNetworkNeighborhood } from './kubescape.ts';
export type { DedupOptions } from './dedup.ts';
export { Deduplicator, connectionKey, mergeObservation } from './dedup.ts';
export type { BadLineSample, FlowFormat, IngestStats, ReadFlowsOptions, SourceStats } from './reader.ts';
export { FLOW_FORMATS, FlowReader, formatIngestStats, formatSample, readFlows } from './reader.ts';
