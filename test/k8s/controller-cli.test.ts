/**
 * `microseg controller` as a real process: flags, JSON logs, leader election, reconciling, /metrics,
 * readiness that an unreachable Hubble Relay does not take away, and a graceful SIGTERM (exit 0, Lease
 * released).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, sharedCluster, uniqueName } from '../cluster/index.ts';
import { applyYaml, install, spawnController, waitSeg } from '../controller/k8s-helpers.ts';

const cluster = sharedCluster();
const segName = uniqueName('cli');
const lease = `lease-${segName}`;

beforeAll(async () => {
  await install(cluster);
  await applyYaml(cluster, {
    apiVersion: 'microseg.dev/v1alpha1',
    kind: 'Segmentation',
    metadata: { name: segName, labels: { 'microseg.dev/test': segName } },
    spec: { namespaceSelector: { matchLabels: { 'no-such-label': segName } } },
  });
}, 60_000);

afterAll(async () => {
  await cluster.request('DELETE', `/apis/microseg.dev/v1alpha1/segmentations/${segName}`);
});

describe('microseg controller process', () => {
  it('leads, reconciles, serves metrics, and shuts down gracefully on SIGTERM', async () => {
    const { child, lines, exited } = spawnController(cluster, {
      identity: 'cli-test',
      lease,
      test: segName,
      args: [
        '--resync=1s',
        // A relay nobody listens on: readiness answers for the caches only (docs/controller.md).
        '--hubble-relay=127.0.0.1:1',
      ],
    });
    try {
      const listening = await eventually('listening', () => lines.find((l) => l.msg === 'listening'), 30_000);
      expect(listening).toMatchObject({ level: 'info', component: 'microseg-controller' });
      expect(typeof listening.time).toBe('string');
      // Hubble means Cilium: the audits and the leak check take its semantics, and the start log says so.
      // Its own line, written after 'listening': it may come in a later chunk of standard error.
      const semantics = await eventually(
        'the semantics line',
        () => lines.find((l) => String(l.msg).startsWith('NetworkPolicy semantics')),
        30_000,
      );
      expect(semantics.msg).toBe(
        'NetworkPolicy semantics: --ipblock-pods no --self-traffic allow --node-traffic allow --host-network node (--ipblock-pods no as --hubble-relay is given: Cilium applies no ipBlock to pods)',
      );
      await eventually('leader', () => lines.find((l) => l.msg === 'became leader'), 30_000);
      const seg = await waitSeg(
        cluster,
        segName,
        'reconciled',
        (s) => s.status?.phase === 'Learning',
        30_000,
      );
      expect(seg.status!.namespaces).toEqual([]);
      expect(seg.metadata.finalizers).toEqual(['microseg.dev/cleanup']);
      // The flags give no Lease timings: client-go's defaults hold (a 15 s Lease renewed every 2 s),
      // and no renewal failed.
      const held = await cluster.request(
        'GET',
        `/apis/coordination.k8s.io/v1/namespaces/microseg-system/leases/${lease}`,
      );
      expect((held.json as { spec: { leaseDurationSeconds?: number } }).spec.leaseDurationSeconds).toBe(15);
      expect(lines.filter((l) => l.msg === 'lease update failed')).toEqual([]);
      const port = listening.port as number;
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(metrics).toContain('microseg_leader 1');
      expect(metrics).toMatch(/^microseg_reconcile_total [1-9]/m);
      expect(metrics).toMatch(/^microseg_hubble_connected 0$/m);
      expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${port}/v1/flows`, { method: 'POST' })).status).toBe(404);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    // Every line of standard error is a JSON log line.
    expect(lines.filter((l) => 'text' in l)).toEqual([]);
    expect(lines.map((l) => l.msg)).toContain('stopped');
    const l = await cluster.request(
      'GET',
      `/apis/coordination.k8s.io/v1/namespaces/microseg-system/leases/${lease}`,
    );
    expect((l.json as { spec: { holderIdentity?: string } }).spec.holderIdentity).toBeUndefined();
  });
});
