/** Command-line switches for the engine's implementation-defined options, shared by the verify commands. */
import { InputError } from '../model/snapshot.ts';
import type { EngineOptions } from './types.ts';
import { DEFAULT_OPTIONS } from './types.ts';

export const ENGINE_OPTION_SPECS = {
  'ipblock-pods': { type: 'string' },
  'self-traffic': { type: 'string' },
  'node-traffic': { type: 'string' },
  'host-network': { type: 'string' },
} as const;

export const ENGINE_OPTION_HELP = `  --ipblock-pods yes|no          ipBlock peers match pod IPs (default yes, as the upstream e2e suite)
  --self-traffic allow|evaluate  a pod reaching itself (default allow)
  --node-traffic allow|evaluate  traffic from a pod's own node (default allow)
  --host-network node|pod        host-network pods count as their node (default) or as pods`;

function pick<T extends string>(v: string | undefined, name: string, allowed: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(v))
    throw new InputError(`--${name} ${JSON.stringify(v)} is not one of ${allowed.join(', ')}`);
  return v as T;
}

export function parseEngineOptions(values: Record<string, unknown>): EngineOptions {
  const o: EngineOptions = {};
  const ib = pick(values['ipblock-pods'] as string | undefined, 'ipblock-pods', ['yes', 'no']);
  if (ib) o.ipBlockMatchesPods = ib === 'yes';
  const st = pick(values['self-traffic'] as string | undefined, 'self-traffic', ['allow', 'evaluate']);
  if (st) o.selfTraffic = st;
  const nt = pick(values['node-traffic'] as string | undefined, 'node-traffic', ['allow', 'evaluate']);
  if (nt) o.nodeTraffic = nt;
  const hn = pick(values['host-network'] as string | undefined, 'host-network', ['node', 'pod']);
  if (hn) o.hostNetworkPods = hn;
  return o;
}

/** `options` as the switches that give them, each option left out at its default (for a log line). */
export function engineOptionsText(options: EngineOptions): string {
  const o = { ...DEFAULT_OPTIONS };
  for (const [k, v] of Object.entries(options)) if (v !== undefined) (o as Record<string, unknown>)[k] = v;
  return [
    `--ipblock-pods ${o.ipBlockMatchesPods ? 'yes' : 'no'}`,
    `--self-traffic ${o.selfTraffic}`,
    `--node-traffic ${o.nodeTraffic}`,
    `--host-network ${o.hostNetworkPods}`,
  ].join(' ');
}
