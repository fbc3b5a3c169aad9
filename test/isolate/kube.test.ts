import { describe, expect, it } from 'vitest';
import { KubeApiError } from '../../src/controller/kube.ts';
import { isAlreadyExists, isNotFound, kubeFromControllerClient } from '../../src/isolate/kube.ts';

describe('kubeFromControllerClient', () => {
  it('passes requests through and maps the controller client errors', async () => {
    const seen: unknown[] = [];
    const kube = kubeFromControllerClient({
      request<T>(method: string, path: string, opts?: unknown): Promise<T> {
        seen.push([method, path, opts]);
        if (path.endsWith('/missing'))
          return Promise.reject(new KubeApiError(method, path, 404, 'NotFound', 'gone'));
        if (method === 'POST')
          return Promise.reject(new KubeApiError(method, path, 409, 'AlreadyExists', 'exists'));
        return Promise.resolve({ ok: true } as T);
      },
    });
    await expect(
      kube.request({ method: 'GET', path: '/x', query: { labelSelector: 'a=b' } }),
    ).resolves.toEqual({ ok: true });
    expect(seen[0]).toEqual(['GET', '/x', { query: { labelSelector: 'a=b' } }]);
    const nf = await kube.request({ method: 'GET', path: '/missing' }).catch((e: unknown) => e);
    expect(isNotFound(nf)).toBe(true);
    const ae = await kube.request({ method: 'POST', path: '/y', body: {} }).catch((e: unknown) => e);
    expect(isAlreadyExists(ae)).toBe(true);
  });
});
