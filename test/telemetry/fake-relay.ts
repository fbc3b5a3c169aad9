/**
 * A scripted Hubble Relay for tests, served from microseg's own observer.proto on 127.0.0.1. It keeps
 * a time-ordered history of GetFlowsResponse messages, answers GetFlows by replaying the history from
 * `since` (inclusive, as Hubble does) and then following new messages, can cut streams after a given
 * number of messages, and can be stopped and restarted on the same port.
 */
import * as grpc from '@grpc/grpc-js';
import { observerService } from '../../src/telemetry/proto.ts';
import type { GetFlowsRequest, GetFlowsResponse, Timestamp } from '../../src/telemetry/proto.ts';
import { timestampToNs } from '../../src/telemetry/checkpoint.ts';

export interface RelayTLS {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
  /** Require and verify a client certificate signed by `ca`. */
  requireClientCert: boolean;
}

type Stream = grpc.ServerWritableStream<GetFlowsRequest, GetFlowsResponse>;

export class FakeRelay {
  port = 0;
  /** Every GetFlows request received, in order. */
  readonly requests: GetFlowsRequest[] = [];
  /** ServerStatus calls answered. */
  statusCalls = 0;
  /**
   * The nodes ServerStatus reports unavailable: `num_unavailable_nodes` is their number (or
   * `unavailableCount` when set) and `unavailable_nodes` names the first 10, as Hubble Relay does.
   */
  unavailableNodes: string[] = [];
  unavailableCount: number | undefined;
  /**
   * When set, a ServerStatus answer is taken (its nodes as they are when the call arrives) and then
   * held until the promise this returns settles: an answer that reaches the client after the stream said more.
   */
  holdStatus: (() => Promise<void>) | undefined;
  /**
   * The nodes the relay knows (its peers), answered by GetNodes: connected, or unavailable when in
   * `unavailableNodes`. Unset, GetNodes is not served (as by a Hubble agent).
   */
  knownNodes: string[] | undefined;
  /** A state GetNodes gives a node instead (the two calls answered at different instants). */
  knownStates: Record<string, string> = {};
  getNodesCalls = 0;
  private history: GetFlowsResponse[] = [];
  private server: grpc.Server | undefined;
  private live = new Set<{ call: Stream; sent: number; limit: number | undefined }>();
  /** For connection i (0-based), cut the stream with UNAVAILABLE after this many messages. */
  cutAfter: (number | undefined)[] = [];
  /**
   * What stream i (0-based) is sent first, before its backlog, and kept in no history: as Hubble Relay
   * starts each GetFlows stream with node_status messages naming the nodes it knows (NODE_CONNECTED,
   * then NODE_UNAVAILABLE).
   */
  greeting: ((connection: number) => GetFlowsResponse[]) | undefined;
  private connections = 0;

  private readonly tls: RelayTLS | undefined;

  constructor(tls?: RelayTLS) {
    this.tls = tls;
  }

  /** Appends to the history and sends to every following stream. */
  publish(...msgs: GetFlowsResponse[]): void {
    for (const msg of msgs) {
      this.history.push(msg);
      for (const s of [...this.live]) this.send(s, msg);
    }
  }

  get connectionCount(): number {
    return this.connections;
  }

  async start(port = this.port): Promise<number> {
    const server = new grpc.Server();
    server.addService(observerService(), {
      GetFlows: (call: Stream) => this.getFlows(call),
      ServerStatus: (
        _call: grpc.ServerUnaryCall<unknown, unknown>,
        cb: grpc.sendUnaryData<Record<string, unknown>>,
      ) => {
        this.statusCalls++;
        const answer = {
          num_flows: String(this.history.length),
          max_flows: '4095',
          seen_flows: String(this.history.length),
          num_connected_nodes: { value: 2 },
          num_unavailable_nodes: { value: this.unavailableCount ?? this.unavailableNodes.length },
          unavailable_nodes: this.unavailableNodes.slice(0, 10),
          version: 'fake-relay',
        };
        if (this.holdStatus) void this.holdStatus().then(() => cb(null, answer));
        else cb(null, answer);
      },
      GetNodes: (
        _call: grpc.ServerUnaryCall<unknown, unknown>,
        cb: grpc.sendUnaryData<Record<string, unknown>>,
      ) => {
        this.getNodesCalls++;
        if (this.knownNodes === undefined) {
          cb({ code: grpc.status.UNIMPLEMENTED, details: 'GetNodes not implemented' });
          return;
        }
        cb(null, {
          nodes: this.knownNodes.map((name) => ({
            name,
            state:
              this.knownStates[name] ??
              (this.unavailableNodes.includes(name) ? 'NODE_UNAVAILABLE' : 'NODE_CONNECTED'),
          })),
        });
      },
    });
    const creds = this.tls
      ? grpc.ServerCredentials.createSsl(
          this.tls.ca,
          [{ private_key: this.tls.key, cert_chain: this.tls.cert }],
          this.tls.requireClientCert,
        )
      : grpc.ServerCredentials.createInsecure();
    this.port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${port}`, creds, (err, p) => (err ? reject(err) : resolve(p))),
    );
    this.server = server;
    return this.port;
  }

  /** Ends every open stream with UNAVAILABLE, the server staying up. */
  cutAll(): void {
    for (const s of this.live)
      s.call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'cut by test' });
    this.live.clear();
  }

  /** Kills the server and every open stream at once, like a relay pod going away. */
  stop(): void {
    for (const s of this.live) s.call.destroy();
    this.live.clear();
    this.server?.forceShutdown();
    this.server = undefined;
  }

  private getFlows(call: Stream): void {
    const req = call.request;
    this.requests.push(req);
    const idx = this.connections++;
    const s = { call, sent: 0, limit: this.cutAfter[idx] };
    this.live.add(s);
    call.on('cancelled', () => this.live.delete(s));
    call.on('close', () => this.live.delete(s));
    const since = req.since ? timestampToNs(req.since) : undefined;
    // Without `since`, a follow request only gets new messages (as Hubble does with number=0).
    const backlog = since === undefined ? [] : this.history.filter((m) => timeOf(m) >= since);
    for (const m of [...(this.greeting?.(idx) ?? []), ...backlog]) if (!this.send(s, m)) return;
    if (!req.follow) {
      this.live.delete(s);
      call.end();
    }
  }

  /** Sends one message; false when the stream was cut. */
  private send(s: { call: Stream; sent: number; limit: number | undefined }, msg: GetFlowsResponse): boolean {
    if (!this.live.has(s)) return false;
    if (s.limit !== undefined && s.sent >= s.limit) {
      this.live.delete(s);
      s.call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'relay stream cut by test' });
      return false;
    }
    s.call.write(msg);
    s.sent++;
    return true;
  }
}

function timeOf(m: GetFlowsResponse): bigint {
  const ts: Timestamp | undefined = m.flow?.time ?? m.time;
  return ts ? timestampToNs(ts) : 0n;
}

/** A minimal decoded flow at `seconds.nanos`, distinguishable by `n`. */
export function scriptedFlow(n: number, seconds: number, nanos = 0, uuid?: string): GetFlowsResponse {
  return {
    flow: {
      time: { seconds: String(seconds), nanos },
      ...(uuid ? { uuid } : {}),
      verdict: 'FORWARDED',
      IP: { source: '10.0.0.1', destination: '10.0.1.' + String(n % 250), ipVersion: 'IPv4' },
      l4: { TCP: { source_port: 40000 + n, destination_port: 8080, flags: { SYN: true } } },
      source: { namespace: 'shop', pod_name: `cart-${n}` },
      destination: { namespace: 'shop', pod_name: 'db-0' },
      Type: 'L3_L4',
      node_name: 'kind-worker',
      is_reply: { value: false },
      traffic_direction: 'EGRESS',
    },
    node_name: 'kind-worker',
    time: { seconds: String(seconds), nanos },
  };
}

/** A response as a client decodes it (wire round trip through the proto). */
export function decoded(msg: GetFlowsResponse): GetFlowsResponse {
  const m = observerService().GetFlows!;
  return m.responseDeserialize(m.responseSerialize(msg)) as GetFlowsResponse;
}
