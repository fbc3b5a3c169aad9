/**
 * The addresses of a Node object (`status.addresses`) as identity, the semantics engine and the
 * isolation leak check all read them: its IP addresses only, each with its type and whether it is an
 * InternalIP.
 */
import type { OtherObject } from './k8s.ts';
import type { Addr } from '../verify/ip.ts';
import { parseAddr } from '../verify/ip.ts';

/** One IP address a Node object lists. */
export interface NodeAddress {
  /** The address, parsed (an IPv4-mapped IPv6 address is the IPv4 address it carries). */
  addr: Addr;
  /** The address as the Node writes it. */
  text: string;
  /** Its `type` (`InternalIP`, `ExternalIP`, a `Hostname` given as an IP, …); undefined when it has none. */
  type: string | undefined;
  /**
   * Whether it is an `InternalIP`: an address of the node's own traffic with pods (the kubelet's
   * probes, host-network pods), as a pod's `status.hostIP` is. Its other addresses are the node's too,
   * but no connection with a pod shows them (an ExternalIP is NATed to the node outside the cluster, or
   * not on it at all).
   */
  internal: boolean;
}

/**
 * The IP addresses of a Node object's `status.addresses`, in its order, repeats kept. A Hostname,
 * InternalDNS or ExternalDNS address is a name, no address a connection is made from or to or a rule
 * can name (`cafe` is hexadecimal but no address), so it is left out; so is any other text that is no IP
 * address.
 */
export function nodeIPAddresses(node: OtherObject): NodeAddress[] {
  const status = (node as { status?: { addresses?: { type?: unknown; address?: unknown }[] } }).status;
  const out: NodeAddress[] = [];
  for (const a of status?.addresses ?? []) {
    const text = a?.address;
    const addr = typeof text === 'string' ? parseAddr(text) : undefined;
    if (addr === undefined) continue;
    const type = typeof a.type === 'string' ? a.type : undefined;
    out.push({ addr, text: text as string, type, internal: type === 'InternalIP' });
  }
  return out;
}
