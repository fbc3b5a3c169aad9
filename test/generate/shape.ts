/* eslint-disable @typescript-eslint/no-explicit-any -- parsed JSON lines */
import { readFileSync } from 'node:fs';

/** The real Hubble sample lines (shared/samples, see SOURCES.md there). */
export const sampleLines: Record<string, any>[] = readFileSync(
  new URL('../../../shared/samples/hubble-flows.jsonl', import.meta.url),
  'utf8',
)
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l) as Record<string, any>);

/** Flattened key paths of a JSON value (array elements share their array's path). */
export function keyPaths(v: unknown, prefix = '', out = new Set<string>()): Set<string> {
  if (Array.isArray(v)) for (const x of v) keyPaths(x, `${prefix}[]`, out);
  else if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      out.add(`${prefix}.${k}`);
      keyPaths(x, `${prefix}.${k}`, out);
    }
  }
  return out;
}

/** Key paths real Hubble output has: the sample's, plus fields documented for newer agents. */
export function knownKeyPaths(): Set<string> {
  const known = new Set<string>();
  for (const s of sampleLines) keyPaths(s, '', known);
  for (const d of [
    '.flow.uuid',
    '.flow.trace_reason',
    '.flow.drop_reason',
    '.flow.destination_names',
    '.flow.source_names',
    '.flow.destination_service',
    '.flow.destination_service.name',
    '.flow.destination_service.namespace',
    '.flow.source_service',
    '.flow.source_service.name',
    '.flow.source_service.namespace',
    '.flow.source.workloads',
    '.flow.source.workloads[].name',
    '.flow.source.workloads[].kind',
    '.flow.destination.workloads',
    '.flow.destination.workloads[].name',
    '.flow.destination.workloads[].kind',
    '.flow.l4.UDP',
    '.flow.l4.UDP.source_port',
    '.flow.l4.UDP.destination_port',
    '.flow.l7.latency_ns',
    '.flow.l7.dns.ips',
    '.flow.l7.dns.rrtypes',
    '.node_status',
    '.node_status.state_change',
    '.node_status.node_names',
    '.node_status.message',
    '.lost_events',
    '.lost_events.source',
    '.lost_events.num_events_lost',
    '.lost_events.cpu',
  ])
    known.add(d);
  return known;
}
