/**
 * Files that hold no flows at all, given as --flows by mistake: a Kubernetes cluster snapshot (meant for
 * --cluster) and a Falco alert (meant for the controller's webhook). Each is recognised and said once,
 * naming the file and where it belongs, not refused object by object.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { captureIO } from '../../src/cli/io.ts';
import { runCli } from '../../src/cli/main.ts';
import { readFlows } from '../../src/flows/reader.ts';
import { InputError } from '../../src/model/snapshot.ts';

const sample = (f: string) => fileURLToPath(new URL(`../../../shared/samples/${f}`, import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'microseg-not-flows-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function tmp(name: string, content: string): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

/** A cluster snapshot as `kubectl get namespaces,nodes,pods -A -o json` gives it: 103 objects. */
function snapshotObjects(): object[] {
  const objects: object[] = [];
  for (const ns of ['shop', 'pay', 'ops'])
    objects.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  for (const node of ['n1', 'n2'])
    objects.push({ apiVersion: 'v1', kind: 'Node', metadata: { name: node }, status: { addresses: [] } });
  for (let i = 0; i < 96; i++)
    objects.push({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: `web-${i}`, namespace: 'shop', labels: { app: 'web' } },
      spec: { containers: [{ name: 'c', image: 'nginx' }], nodeName: 'n1' },
      status: { podIP: `10.0.0.${i + 1}` },
    });
  objects.push(
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', namespace: 'shop' },
      spec: { selector: { matchLabels: { app: 'web' } } },
    },
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'deny', namespace: 'shop' },
      spec: { podSelector: {} },
    },
  );
  return objects;
}

const KINDS = 'Deployment (1), Namespace (3), NetworkPolicy (1), Node (2), Pod (96)';
const snapshotMessage = (path: string, n = 103, kinds = KINDS) =>
  `${path}: a Kubernetes cluster snapshot, not flows: ${n} object(s) of kinds ${kinds} and no NetworkNeighborhood; give it as --cluster`;
const falcoMessage = (path: string) =>
  `${path}: a Falco alert, not flows (it has output, priority, rule and output_fields): Falco alerts are for the controller's webhook (POST /webhooks/falco), not --flows`;

async function readError(path: string, opts: Parameters<typeof readFlows>[1] = {}): Promise<unknown> {
  try {
    await readFlows(path, opts).toArray();
  } catch (err) {
    return err;
  }
  return undefined;
}

function yamlOf(objects: object[]): string {
  // Each object as a YAML document of JSON-style flow mappings: YAML all the same.
  return objects.map((o) => `---\n${JSON.stringify(o, null, 2)}\n`).join('');
}

function yamlList(objects: object[]): string {
  const lines = ['apiVersion: v1', 'items:'];
  for (const o of objects as { apiVersion: string; kind: string; metadata: { name: string } }[])
    lines.push(
      `- apiVersion: ${o.apiVersion}`,
      `  kind: ${o.kind}`,
      `  metadata:`,
      `    name: ${o.metadata.name}`,
    );
  lines.push('kind: List', 'metadata:', '  resourceVersion: ""');
  return lines.join('\n') + '\n';
}

describe('a Kubernetes cluster snapshot given as flows', () => {
  const list = {
    apiVersion: 'v1',
    kind: 'List',
    metadata: { resourceVersion: '' },
    items: snapshotObjects(),
  };

  it('is recognised, as JSON (a List, pretty or on one line, objects one after another, JSON lines) and YAML', async () => {
    const files = [
      tmp('snap.json', JSON.stringify(list, null, 4)),
      tmp('snap-line.json', JSON.stringify(list) + '\n'),
      tmp(
        'snap-objects.json',
        snapshotObjects()
          .map((o) => JSON.stringify(o, null, 2))
          .join('\n'),
      ),
      tmp(
        'snap.jsonl',
        snapshotObjects()
          .map((o) => JSON.stringify(o))
          .join('\n') + '\n',
      ),
      tmp('snap-docs.yaml', yamlOf(snapshotObjects())),
      tmp('snap.yaml', yamlList(snapshotObjects())),
    ];
    for (const f of files) {
      const err = await readError(f);
      expect(err, f).toBeInstanceOf(InputError);
      expect((err as Error).message, f).toBe(snapshotMessage(f));
    }
    // Under --strict, the same (not the first object's refusal).
    const strict = await readError(files[0]!, { strict: true });
    expect((strict as Error).message).toBe(snapshotMessage(files[0]!));
  });

  it('with NetworkNeighborhoods among its objects, is read as Kubescape: those objects give flows, the others are bad', async () => {
    const nn = JSON.parse(readFileSync(sample('kubescape-networkneighborhood.json'), 'utf8')) as object;
    const objects = snapshotObjects().slice(0, 3);
    const mixed = tmp(
      'mixed.json',
      JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [...objects, nn, objects[0]] }, null, 2),
    );
    const r = readFlows(mixed);
    expect(await r.toArray()).toHaveLength(13);
    expect(r.stats.badLines).toBe(4);
    expect(r.stats.bad).toEqual({ 'unknown-record': 4 });
    // In the order of the objects.
    expect(r.stats.samples.map((s) => [s.line, s.message])).toEqual([
      [1, 'object: expected kind NetworkNeighborhood, got string "Namespace"'],
      [2, 'object: expected kind NetworkNeighborhood, got string "Namespace"'],
      [3, 'object: expected kind NetworkNeighborhood, got string "Namespace"'],
      [5, 'object: expected kind NetworkNeighborhood, got string "Namespace"'],
    ]);
  });

  it('objects of no Kubernetes API group (Cilium policies) alone are still refused one by one', async () => {
    const cilium = tmp(
      'cilium.json',
      JSON.stringify(
        {
          apiVersion: 'v1',
          kind: 'List',
          items: [
            {
              apiVersion: 'cilium.io/v2',
              kind: 'CiliumNetworkPolicy',
              metadata: { name: 'a', namespace: 'x' },
            },
          ],
        },
        null,
        2,
      ),
    );
    const r = readFlows(cilium);
    expect(await r.toArray()).toEqual([]);
    expect(r.stats.samples.map((s) => s.message)).toEqual([
      'object: expected kind NetworkNeighborhood, got string "CiliumNetworkPolicy"',
    ]);
  });

  it('given as Kubescape, it is read as given: each object refused', async () => {
    const f = tmp('snap-forced.json', JSON.stringify(list, null, 2));
    const r = readFlows(f, { format: 'kubescape' });
    expect(await r.toArray()).toEqual([]);
    expect(r.stats.badLines).toBe(103);
  });

  it('graph and recommend say it once, on standard error, and exit 2', async () => {
    const f = tmp('snap-cli.json', JSON.stringify(list, null, 4));
    const cluster = tmp('cluster.json', JSON.stringify(list));
    for (const command of ['graph', 'recommend']) {
      const io = captureIO();
      const args = ['--flows', f, '--cluster', cluster];
      const code = await runCli(
        [command, ...args, ...(command === 'recommend' ? ['--out', join(dir, 'out')] : [])],
        io,
      );
      expect(code, command).toBe(2);
      expect(io.stdout, command).toBe('');
      expect(io.stderr, command).toBe(`microseg ${command}: ${snapshotMessage(f)}\n`);
    }
  });
});

describe('a Falco alert given as flows', () => {
  it('is recognised, on one line as Falco writes it and pretty-printed', async () => {
    const alert = sample('falco-alert.json');
    const network = sample('falco-alert-network.json');
    const pretty = tmp('falco-pretty.json', JSON.stringify(JSON.parse(readFileSync(alert, 'utf8')), null, 2));
    for (const f of [alert, network, pretty]) {
      const err = await readError(f);
      expect(err, f).toBeInstanceOf(InputError);
      expect((err as Error).message, f).toBe(falcoMessage(f));
    }
    // Given as generic, it is read as given.
    const r = readFlows(alert, { format: 'generic' });
    expect(await r.toArray()).toEqual([]);
    expect(r.stats.samples[0]!.message).toBe('unknown field "hostname"');
  });

  it('graph says so once and exits 2', async () => {
    const alert = sample('falco-alert.json');
    const cluster = tmp('cluster-falco.json', JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [] }));
    const io = captureIO();
    expect(await runCli(['graph', '--flows', alert, '--cluster', cluster], io)).toBe(2);
    expect(io.stderr).toBe(`microseg graph: ${falcoMessage(alert)}\n`);
  });
});
