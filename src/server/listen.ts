/**
 * Listening on an address, with the failure said in words: the demo's web page and the controller's
 * endpoints take a port a user chose (`--port`, `--listen`), and a port another process holds is a
 * mistake to name, not a crash.
 */
import type { Server } from 'node:net';

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
    server.once('error', onError);
    server.once('listening', onListening);
    if (host === '') server.listen(port);
    else server.listen(port, host);
  });
}
