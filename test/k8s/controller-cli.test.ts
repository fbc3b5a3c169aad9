/**
 * `microseg controller` as a real process: flags, JSON logs, leader election, reconciling, /metrics,
 * readiness that an unreachable Hubble Relay does not take away, and a graceful SIGTERM (exit 0, Lease
 * released).
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, sharedCluster, uniqueName } from '../cluster/index.ts';
import { applyYaml, install, ROOT, waitSeg } from '../controller/k8s-helpers.ts';

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
    const child = spawn(
      `${ROOT}node_modules/.bin/node`,
      [
        `${ROOT}src/cli/main.ts`,
        'controller',
        `--kubeconfig=${cluster.kubeconfigPath}`,
        '--leader-elect',
        '--lease-namespace=microseg-system',
        `--lease-name=${lease}`,
        '--identity=cli-test',
        '--listen=127.0.0.1:0',
        `--segmentation-selector=microseg.dev/test=${segName}`,
        '--resync=1s',
        // A relay nobody listens on: readiness answers for the caches only (docs/controller.md).
        '--hubble-relay=127.0.0.1:1',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const lines: Record<string, unknown>[] = [];
    let buf = '';
    child.stderr.on('data', (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        lines.push(JSON.parse(buf.slice(0, i)) as Record<string, unknown>);
        buf = buf.slice(i + 1);
      }
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
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
    expect(lines.map((l) => l.msg)).toContain('stopped');
    const l = await cluster.request(
      'GET',
      `/apis/coordination.k8s.io/v1/namespaces/microseg-system/leases/${lease}`,
    );
    expect((l.json as { spec: { holderIdentity?: string } }).spec.holderIdentity).toBeUndefined();
  });
});
