/**
 * Parts of the KubeClient stand-ins of the controller's unit tests: watches, and the objects of the shop
 * namespace (pods, a frozen proposal) that their lists return.
 */

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
      // Ends at once when already aborted, as a request with an aborted signal does.
      return new Promise<void>((resolve) => {
        if (signal.aborted) resolve();
        else signal.addEventListener('abort', () => resolve(), { once: true });
      });
    },
    emit: (path: string, type: string, object: unknown) => watchers.get(path)!({ type, object }),
  };
}

/** A running bare pod of shop, labelled app=<name>, at the given address. */
export const barePod = (name: string, ip: string) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'shop', uid: `uid-${name}`, labels: { app: name } },
  spec: { nodeName: 'node-1', containers: [{ name: 'c' }] },
  status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] },
});

/** shop's pods web (10.244.1.5) and api (10.244.1.6). */
export const webAndApi = () => [barePod('web', '10.244.1.5'), barePod('api', '10.244.1.6')];

/** A ProposedNetworkPolicy of shop that Segmentation shop froze. */
export const proposedOfShop = (name: string, spec: unknown) => ({
  apiVersion: 'microseg.dev/v1alpha1',
  kind: 'ProposedNetworkPolicy',
  metadata: {
    name,
    namespace: 'shop',
    labels: { 'app.kubernetes.io/managed-by': 'microseg', 'microseg.dev/segmentation': 'shop' },
    resourceVersion: '1',
  },
  spec,
});

/** The frozen default-deny policy of Segmentation shop (ingress and egress). */
export const shopDefaultDeny = () =>
  proposedOfShop('microseg-default-deny', {
    podSelector: {},
    policyTypes: ['Ingress', 'Egress'],
    ingress: [],
    egress: [],
  });

/** The frozen policy of shop's api: it takes 8080/TCP from web, and nothing else. */
export const shopApiFromWeb = () =>
  proposedOfShop('microseg-api', {
    podSelector: { matchLabels: { app: 'api' } },
    policyTypes: ['Ingress'],
    ingress: [
      {
        from: [{ podSelector: { matchLabels: { app: 'web' } } }],
        ports: [{ protocol: 'TCP', port: 8080 }],
      },
    ],
  });
