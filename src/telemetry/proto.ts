/**
 * Loads microseg's own copy of the Hubble observer API (proto/observer.proto + proto/flow.proto) at
 * runtime with @grpc/proto-loader. Decoding options are fixed so every consumer sees the same shapes:
 * field names as in the .proto (`keepCase`), 64-bit integers as decimal strings, enums as their
 * names, absent fields left absent (`defaults: false`) and a virtual field naming the set member of
 * each oneof (`response_types`, `protocol`, `record`).
 */
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
};

/** The proto directory: `<project>/proto`, found from this file whether it runs from src/ or dist/. */
export function protoDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const candidate = join(dir, 'proto', 'observer.proto');
    if (existsSync(candidate)) return join(dir, 'proto');
    dir = dirname(dir);
  }
  throw new Error('proto/observer.proto not found next to the microseg installation');
}

let cached: grpc.GrpcObject | undefined;

/** The loaded gRPC package object; `observer.Observer` is the service client constructor. */
export function observerPackage(): grpc.GrpcObject {
  if (!cached) {
    const dir = protoDir();
    const def = protoLoader.loadSync('observer.proto', { ...LOADER_OPTIONS, includeDirs: [dir] });
    cached = grpc.loadPackageDefinition(def);
  }
  return cached;
}

export type ObserverClient = grpc.Client & {
  GetFlows(request: GetFlowsRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<GetFlowsResponse>;
  ServerStatus(
    request: Record<string, never>,
    options: grpc.CallOptions,
    callback: (err: grpc.ServiceError | null, res?: ServerStatusResponse) => void,
  ): grpc.ClientUnaryCall;
  GetNodes(
    request: Record<string, never>,
    options: grpc.CallOptions,
    callback: (err: grpc.ServiceError | null, res?: GetNodesResponse) => void,
  ): grpc.ClientUnaryCall;
};

export type ObserverClientConstructor = new (
  address: string,
  credentials: grpc.ChannelCredentials,
  options?: grpc.ClientOptions,
) => ObserverClient;

export function observerService(): grpc.ServiceDefinition {
  return (observerClientConstructor() as unknown as { service: grpc.ServiceDefinition }).service;
}

export function observerClientConstructor(): ObserverClientConstructor {
  const pkg = observerPackage().observer as grpc.GrpcObject;
  return pkg.Observer as unknown as ObserverClientConstructor;
}

/** A protobuf Timestamp as decoded with `longs: String`. */
export interface Timestamp {
  seconds?: string;
  nanos?: number;
}

export interface FlowFilterMsg {
  source_pod?: string[];
  destination_pod?: string[];
  verdict?: string[];
  source_label?: string[];
  destination_label?: string[];
  protocol?: string[];
  node_name?: string[];
}

export interface GetFlowsRequest {
  number?: string;
  first?: boolean;
  follow?: boolean;
  whitelist?: FlowFilterMsg[];
  blacklist?: FlowFilterMsg[];
  since?: Timestamp;
  until?: Timestamp;
}

export interface NodeStatusEvent {
  state_change?: string;
  node_names?: string[];
  message?: string;
}

export interface LostEvent {
  source?: string;
  num_events_lost?: string;
  cpu?: { value?: number };
}

/** A flow as decoded; only the fields microseg's telemetry layer looks at are typed. */
export interface DecodedFlow {
  time?: Timestamp;
  uuid?: string;
  [field: string]: unknown;
}

export interface GetFlowsResponse {
  response_types?: 'flow' | 'node_status' | 'lost_events';
  flow?: DecodedFlow;
  node_status?: NodeStatusEvent;
  lost_events?: LostEvent;
  node_name?: string;
  time?: Timestamp;
}

export interface ServerStatusResponse {
  num_flows?: string;
  max_flows?: string;
  seen_flows?: string;
  uptime_ns?: string;
  num_connected_nodes?: { value?: number };
  num_unavailable_nodes?: { value?: number };
  unavailable_nodes?: string[];
  version?: string;
}

/** GetNodes (Hubble Relay): every node the relay knows, with its state (a NodeState name). */
export interface GetNodesResponse {
  nodes?: { name?: string; state?: string }[];
}
