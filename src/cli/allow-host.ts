/** `--allow-host`, as the demo and the controller take it (see `src/server/hosts.ts`). */
import { allowedHost } from '../server/hosts.ts';
import { UsageError } from './io.ts';

/**
 * The host names the page answers besides loopback and the address a request came in on: each
 * `--allow-host` (bad usage naming it when it is no host name), and the host it listens on (`--host`, `--listen`).
 */
export function allowedHostsOption(given: readonly string[] | undefined, listenHost: string): string[] {
  const hosts: string[] = [];
  for (const text of given ?? []) {
    const r = allowedHost(text);
    if ('problem' in r) throw new UsageError(r.problem);
    hosts.push(r.host);
  }
  // A host given to listen on (not every address: '', 0.0.0.0, ::) is how the server is reached.
  const own = allowedHost(listenHost);
  if ('host' in own && own.host !== '0.0.0.0' && own.host !== '::') hosts.push(own.host);
  return hosts;
}
