/**
 * Watches of a KubeClient stand-in: each waits until it is stopped, and `emit` sends it an event on its
 * resource path.
 */
export function fakeWatches() {
  const watchers = new Map<string, (ev: { type: string; object: unknown }) => void>();
  return {
    watch: (
      path: string,
      _query: unknown,
      on: (ev: { type: string; object: unknown }) => void,
      signal: AbortSignal,
    ) => {
      watchers.set(path, on);
      return new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
    },
    emit: (path: string, type: string, object: unknown) => watchers.get(path)!({ type, object }),
  };
}
