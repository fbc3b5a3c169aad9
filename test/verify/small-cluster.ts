/** Pods for small hand-made clusters of the semantics tests: one container, ports http/80 and dns/81 UDP. */
import type { Pod } from '../../src/model/k8s.ts';

export interface PodRow {
  ns: string;
  name: string;
  labels: Record<string, string>;
  ip: string;
}

export function podsFrom(rows: readonly PodRow[]): Pod[] {
  return rows.map((p) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: p.name, namespace: p.ns, labels: p.labels },
    spec: {
      containers: [
        {
          name: 'c',
          ports: [
            { name: 'http', containerPort: 80 },
            { name: 'dns', containerPort: 81, protocol: 'UDP' },
          ],
        },
      ],
    },
    status: { podIPs: [{ ip: p.ip }] },
  }));
}
