/**
 * Adapters from normalised flow records to the engine's observed connections, and the refusal message
 * a caller prints when a proposal would block observed traffic.
 */
import type { Flow, FlowEndpoint } from '../flows/types.ts';
import type { ObservedConnection, VerifyReport } from './reach.ts';
import type { Endpoint } from './types.ts';

function endpointOf(e: FlowEndpoint): Endpoint | undefined {
  if (e.namespace && e.pod) return { namespace: e.namespace, pod: e.pod };
  if (e.namespace && e.labels && e.labels.length > 0) {
    const labels: Record<string, string> = {};
    for (const l of e.labels) {
      const i = l.indexOf('=');
      if (i > 0) labels[l.slice(0, i)] = l.slice(i + 1);
    }
    return { namespace: e.namespace, labels };
  }
  if (e.ip) return { ip: e.ip };
  return undefined;
}

/**
 * Observed connections from flows: TCP/UDP/SCTP flows only, both ends identified by pod, labels or IP.
 * Flows that cannot be expressed (ICMP, unknown ends) are returned in `skipped` with the reason.
 */
export function connectionsFromFlows(flows: readonly Flow[]): {
  connections: ObservedConnection[];
  skipped: { flow: Flow; reason: string }[];
} {
  const connections: ObservedConnection[] = [];
  const skipped: { flow: Flow; reason: string }[] = [];
  for (const flow of flows) {
    if (flow.protocol !== 'TCP' && flow.protocol !== 'UDP' && flow.protocol !== 'SCTP') {
      skipped.push({ flow, reason: `protocol ${flow.protocol} is not governed by NetworkPolicy` });
      continue;
    }
    const from = endpointOf(flow.src);
    const to = endpointOf(flow.dst);
    if (!from || !to) {
      skipped.push({ flow, reason: `the ${from ? 'destination' : 'source'} has no pod, labels or IP` });
      continue;
    }
    connections.push({ from, to, port: flow.port, protocol: flow.protocol, evidence: flow });
  }
  return { connections, skipped };
}

function show(e: Endpoint): string {
  if ('pod' in e) return `${e.namespace}/${e.pod}`;
  if ('labels' in e)
    return `${e.namespace}/{${Object.entries(e.labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(',')}}`;
  return e.ip;
}

/** One line per blocked connection, for a command that refuses to write a proposal. */
export function describeBlocked(report: VerifyReport, limit = 20): string {
  const lines = [`the proposal blocks ${report.blocked.length} observed connection(s):`];
  for (const b of report.blocked.slice(0, limit)) {
    const c = b.connection;
    lines.push(`  ${show(c.from)} -> ${show(c.to)} ${c.protocol ?? 'TCP'}/${c.port}: ${b.reason}`);
  }
  if (report.blocked.length > limit) lines.push(`  ... and ${report.blocked.length - limit} more`);
  return lines.join('\n');
}
