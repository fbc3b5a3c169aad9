/**
 * Small helpers to put objects into a test cluster. There is no scheduler or kubelet, so a pod
 * gets its node name at creation and its IPs only through `setPodIPs` (the `pods/status` subresource).
 */
import {
  ApiException,
  CoreV1Api,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1Namespace,
  type V1OwnerReference,
  type V1Pod,
} from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';

/** Image used for pods the harness creates; nothing pulls it. */
export const PAUSE_IMAGE = 'registry.k8s.io/pause:3.10';

/** Creates a namespace (with labels). Fails if it exists. */
export async function createNamespace(
  kc: KubeConfig,
  name: string,
  labels: Record<string, string> = {},
): Promise<V1Namespace> {
  return kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name, labels } } });
}

export interface PodSpecInput {
  namespace: string;
  name: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: V1OwnerReference[];
  /** Node the pod is bound to (no scheduler runs); default `node-1`. */
  nodeName?: string;
  serviceAccountName?: string;
  /** Container ports (name → port), for named-port policies. */
  ports?: Record<string, number>;
  image?: string;
}

/** Creates a single-container pod bound to a node. */
export async function createPod(kc: KubeConfig, input: PodSpecInput): Promise<V1Pod> {
  const ports = Object.entries(input.ports ?? {}).map(([name, containerPort]) => ({
    name,
    containerPort,
    protocol: 'TCP',
  }));
  return kc.makeApiClient(CoreV1Api).createNamespacedPod({
    namespace: input.namespace,
    body: {
      metadata: {
        name: input.name,
        labels: input.labels ?? {},
        annotations: input.annotations ?? {},
        ownerReferences: input.ownerReferences ?? [],
      },
      spec: {
        nodeName: input.nodeName ?? 'node-1',
        ...(input.serviceAccountName ? { serviceAccountName: input.serviceAccountName } : {}),
        automountServiceAccountToken: false,
        containers: [{ name: 'main', image: input.image ?? PAUSE_IMAGE, ports }],
      },
    },
  });
}

/**
 * Marks a pod Running with the given IPs (first one is `status.podIP`, at most one per family)
 * through the `pods/status` subresource, as a kubelet would, and returns the updated pod.
 */
export async function setPodIPs(
  kc: KubeConfig,
  pod: { namespace: string; name: string } | V1Pod,
  ips: string[],
): Promise<V1Pod> {
  const { namespace, name } = isV1Pod(pod) ? (pod.metadata ?? {}) : pod;
  if (!namespace || !name) throw new Error('setPodIPs: pod needs a namespace and a name');
  const now = new Date().toISOString();
  const status =
    ips.length === 0
      ? { phase: 'Pending', podIP: null, podIPs: null }
      : {
          phase: 'Running',
          podIP: ips[0],
          podIPs: ips.map((ip) => ({ ip })),
          hostIP: '192.168.0.1',
          hostIPs: [{ ip: '192.168.0.1' }],
          startTime: now,
          conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: now }],
        };
  return kc
    .makeApiClient(CoreV1Api)
    .patchNamespacedPodStatus(
      { namespace, name, body: { status } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
}

function isV1Pod(pod: { namespace: string; name: string } | V1Pod): pod is V1Pod {
  return 'metadata' in pod || 'spec' in pod || 'status' in pod;
}

/** Polls `check` every 50 ms until it returns a value other than undefined/false, or times out. */
export async function eventually<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastError = err;
    }
    await sleep(50);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: lastError });
}

/** The HTTP status of a failed client-node call, or undefined when it was not an API error. */
export function statusCode(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}
