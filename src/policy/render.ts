/** Stable text for policies and the report: same proposal, byte-identical files. */
import { stringify } from 'yaml';
import type { NetworkPolicy } from '../model/k8s.ts';

/** Multi-document YAML of policies, in the order given. */
export function policiesToYaml(policies: readonly NetworkPolicy[]): string {
  return policies
    .map((p) => stringify(p, { lineWidth: 0, sortMapEntries: false, aliasDuplicateObjects: false }))
    .join('---\n');
}

/** One YAML file per namespace: `<namespace>.yaml` → text. */
export function policyFiles(policies: readonly NetworkPolicy[]): Map<string, string> {
  const byNs = new Map<string, NetworkPolicy[]>();
  for (const p of policies) {
    const ns = p.metadata.namespace!;
    byNs.set(ns, [...(byNs.get(ns) ?? []), p]);
  }
  const out = new Map<string, string>();
  for (const ns of [...byNs.keys()].sort()) out.set(`${ns}.yaml`, policiesToYaml(byNs.get(ns)!));
  return out;
}

/** JSON with a trailing newline and two-space indent (object key order as built). */
export function stableJson(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}
