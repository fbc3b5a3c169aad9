/**
 * Compaction: a copy of an object with only the fields the core reads (identity, policy synthesis,
 * verification). Large clusters hold tens of thousands of pods; compacting them as they are read keeps
 * memory proportional to what is used, not to what the API server returns.
 */
import type { Pod } from './k8s.ts';

const META_KEYS = ['name', 'namespace', 'uid', 'labels', 'ownerReferences', 'creationTimestamp'] as const;

function pickMeta(meta: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of META_KEYS) if (meta[k] !== undefined) out[k] = meta[k];
  return out;
}

/** Pods lose conditions, resources, probes, volumes, env and the like; other kinds lose status and managed fields. */
export function compactObject(obj: unknown): unknown {
  if (obj === null || typeof obj !== 'object') return obj;
  const o = obj as Record<string, unknown>;
  const meta = (o.metadata ?? {}) as Record<string, unknown>;
  if (o.kind === 'Pod') {
    const pod = o as unknown as Pod;
    const containers = (pod.spec?.containers ?? []).map((c) => ({
      name: c.name,
      ...(c.ports ? { ports: c.ports } : {}),
    }));
    const st = pod.status ?? {};
    return {
      apiVersion: o.apiVersion,
      kind: 'Pod',
      metadata: pickMeta(meta),
      spec: {
        containers,
        ...(pod.spec?.hostNetwork ? { hostNetwork: true } : {}),
        ...(pod.spec?.nodeName ? { nodeName: pod.spec.nodeName } : {}),
      },
      status: {
        ...(st.phase ? { phase: st.phase } : {}),
        ...(st.podIP ? { podIP: st.podIP } : {}),
        ...(st.podIPs ? { podIPs: st.podIPs } : {}),
        ...(st.hostIP ? { hostIP: st.hostIP } : {}),
        ...(st.startTime ? { startTime: st.startTime } : {}),
      },
    };
  }
  const { status: _status, ...rest } = o;
  const keepStatus =
    o.kind === 'Node' ? { status: { addresses: (_status as { addresses?: unknown })?.addresses } } : {};
  return { ...rest, metadata: pickMeta(meta), ...keepStatus };
}
