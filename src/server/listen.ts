/**
 * Listening on an address, with the failure said in words: the demo's web page and the controller's
 * endpoints take a port a user chose (`--port`, `--listen`), and a port another process holds is a
 * mistake to name, not a crash.
 */
import type { Server as HttpServer } from 'node:http';
import type { Server } from 'node:net';

/**
 * Slow clients: a client that sends its request a byte now and then holds its connection, and a body's
 * bytes, for as long as the server lets it (Node's defaults: 60 s for the headers, 300 s for the request,
 * checked every 30 s), so that enough of them exhaust the server's connections and memory. Every server
 * `listenOn` starts (the controller's, the demo page's) cuts such a client off with `408 Request
 * Timeout` sooner. Only receiving the request is timed: an answer may take longer (an audit waiting to be
 * parsed, a webhook waiting for the API server).
 *
 * Longest time a client may take to send a request's headers.
 */
export const HEADERS_TIMEOUT_MS = 10_000;
/** Longest time a client may take to send a whole request, headers and body. */
export const REQUEST_TIMEOUT_MS = 60_000;
/** How often the server checks its connections against those two limits. */
export const CONNECTIONS_CHECK_MS = 1_000;

/** A server could not listen on host:port; `code` is the system's (EADDRINUSE, EACCES, ...). */
export class ListenError extends Error {
  readonly code: string | undefined;
  /** `host:port`, the host in brackets when it is an IPv6 address; `:port` for every address (`''`). */
  readonly address: string;
  constructor(host: string, port: number, cause: unknown) {
    const code = (cause as NodeJS.ErrnoException | undefined)?.code;
    const address = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    super(`cannot listen on ${address}: ${listenProblem(code, port, cause)}`);
    this.name = 'ListenError';
    this.code = code;
    this.address = address;
  }

  /** Whether the host is what is wrong (no such address here, no such name), not the port. */
  get hostProblem(): boolean {
    return this.code === 'EADDRNOTAVAIL' || this.code === 'ENOTFOUND' || this.code === 'EAI_AGAIN';
  }
}

function listenProblem(code: string | undefined, port: number, cause: unknown): string {
  switch (code) {
    case 'EADDRINUSE':
      return 'the address is already in use (another process listens there)';
    case 'EACCES':
      return port < 1024 ? 'permission denied (a port below 1024 needs privileges)' : 'permission denied';
    case 'EADDRNOTAVAIL':
      return 'no network interface of this machine has that address';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'no such host';
    default:
      return cause instanceof Error ? cause.message : String(cause);
  }
}

/**
 * Starts `server` listening on host:port (0: any free port); a failure is a `ListenError`. A host of `''`
 * is every address: Node.js then listens on `::`, which takes IPv4 connections too, or on `0.0.0.0` when
 * the machine has no IPv6.
 */
export function listenOn(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      server.off('listening', onListening);
      reject(new ListenError(host, port, err));
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    if (isHttpServer(server)) {
      server.headersTimeout = HEADERS_TIMEOUT_MS;
      server.requestTimeout = REQUEST_TIMEOUT_MS;
      // Read when the server starts listening: how often the two limits above are checked.
      (server as unknown as { connectionsCheckingInterval: number }).connectionsCheckingInterval =
        CONNECTIONS_CHECK_MS;
    }
    server.once('error', onError);
    server.once('listening', onListening);
    if (host === '') server.listen(port);
    else server.listen(port, host);
  });
}

function isHttpServer(server: Server): server is HttpServer {
  return 'headersTimeout' in server && 'requestTimeout' in server;
}
