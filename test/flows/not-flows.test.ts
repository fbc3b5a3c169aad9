/**
 * Files that hold no flows at all, given as --flows by mistake: a Kubernetes cluster snapshot (meant for
 * --cluster) and a Falco alert or an Alertmanager webhook payload (meant for the controller's webhooks).
 * Each is recognised and said once, naming the file and where it belongs, not refused object by object.
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

  it('is recognised as YAML after comment lines (the header of the files recommend writes)', async () => {
    // Was read as JSON lines: every line a bad line, "invalid JSON: Unexpected token '#'".
    const header = '# Written by microseg recommend for namespace shop; do not edit\n#\n';
    const files = [
      tmp('snap-comment.yaml', header + yamlList(snapshotObjects())),
      tmp('snap-comment-docs.yaml', header + yamlOf(snapshotObjects())),
      tmp('snap-comment-crlf.yaml', (header + yamlList(snapshotObjects())).replaceAll('\n', '\r\n')),
    ];
    for (const f of files) {
      const err = await readError(f);
      expect(err, f).toBeInstanceOf(InputError);
      expect((err as Error).message, f).toBe(snapshotMessage(f));
    }
    // JSON lines after a comment line stay JSON lines: the comment is one bad line, the records are read.
    const flows = tmp(
      'comment-then-lines.jsonl',
      '# exported flows\n' +
        ['10.0.0.1', '10.0.0.2']
          .map((src) => JSON.stringify({ time: '2026-03-01T10:00:00Z', src, dst: '10.0.1.1', port: 80 }))
          .join('\n') +
        '\n',
    );
    const r = readFlows(flows);
    expect(await r.toArray()).toHaveLength(2);
    expect(r.stats.badLines).toBe(1);
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
    // Given as generic, it is read as given: a bad line, which names what it is.
    const r = readFlows(alert, { format: 'generic' });
    expect(await r.toArray()).toEqual([]);
    expect(r.stats.bad).toEqual({ 'falco-alert': 1 });
    expect(r.stats.samples[0]!.message).toBe(
      "a Falco alert, not a flow (it has output, priority, rule and output_fields): Falco alerts are for the controller's webhook (POST /webhooks/falco), not --flows",
    );
  });

  it('graph says so once and exits 2', async () => {
    const alert = sample('falco-alert.json');
    const cluster = tmp('cluster-falco.json', JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [] }));
    const io = captureIO();
    expect(await runCli(['graph', '--flows', alert, '--cluster', cluster], io)).toBe(2);
    expect(io.stderr).toBe(`microseg graph: ${falcoMessage(alert)}\n`);
  });
});

describe('an Alertmanager webhook payload given as flows', () => {
  const payload = fileURLToPath(new URL('../isolate/fixtures/alertmanager-firing.json', import.meta.url));
  const alertmanagerMessage = (path: string) =>
    `${path}: an Alertmanager webhook payload, not flows (it has version, groupKey, status, receiver and alerts): Alertmanager alerts are for the controller's webhook (POST /webhooks/alertmanager), not --flows`;

  it('is recognised, pretty-printed as Alertmanager sends it, on one line, in an array and after a comment line', async () => {
    const parsed = JSON.parse(readFileSync(payload, 'utf8')) as object;
    const files = [
      payload,
      tmp('alertmanager.jsonl', `${JSON.stringify(parsed)}\n${JSON.stringify(parsed)}\n`),
      tmp('alertmanager-array.json', JSON.stringify([parsed], null, 2)),
      tmp('alertmanager-after-comment.jsonl', ['', '# last night', JSON.stringify(parsed)].join('\n')),
    ];
    for (const f of files) {
      const err = await readError(f);
      expect(err, f).toBeInstanceOf(InputError);
      expect((err as Error).message, f).toBe(alertmanagerMessage(f));
    }
    // Given as generic, it is read as given: a bad line, which names what it is.
    const r = readFlows(files[1]!, { format: 'generic' });
    expect(await r.toArray()).toEqual([]);
    expect(r.stats.bad).toEqual({ 'alertmanager-payload': 2 });
  });

  it('graph says so once and exits 2', async () => {
    const cluster = tmp('cluster-am.json', JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [] }));
    const io = captureIO();
    expect(await runCli(['graph', '--flows', payload, '--cluster', cluster], io)).toBe(2);
    expect(io.stdout).toBe('');
    expect(io.stderr).toBe(`microseg graph: ${alertmanagerMessage(payload)}\n`);
  });
});

describe('a Falco alert, an Alertmanager payload or a Kubernetes object further down a source of flows', () => {
  const alertText = () => readFileSync(sample('falco-alert.json'), 'utf8').trim();
  const falcoLine = (path: string, line: number, object = false) =>
    `${path}:${object ? ` object ${line}` : line}: a Falco alert, not a flow (it has output, priority, rule and output_fields): Falco alerts are for the controller's webhook (POST /webhooks/falco), not --flows`;
  const FALCO =
    "a Falco alert, not a flow (it has output, priority, rule and output_fields): Falco alerts are for the controller's webhook (POST /webhooks/falco), not --flows";
  const ALERTMANAGER =
    "an Alertmanager webhook payload, not a flow (it has version, groupKey, status, receiver and alerts): Alertmanager alerts are for the controller's webhook (POST /webhooks/alertmanager), not --flows";
  const POD =
    'a Kubernetes object (Pod shop/web-1, apiVersion v1), not a flow: objects of a cluster are for --cluster, not --flows';
  const LIST =
    'a Kubernetes List of 2 object(s), not flows: objects of a cluster are for --cluster, not --flows';
  const alertmanager = JSON.stringify({
    version: '4',
    groupKey: '{}:{alertname="PodCompromised"}',
    status: 'firing',
    receiver: 'microseg',
    groupLabels: {},
    commonLabels: {},
    commonAnnotations: {},
    externalURL: 'http://alertmanager:9093',
    alerts: [
      {
        status: 'firing',
        labels: { alertname: 'PodCompromised', namespace: 'shop', pod: 'web-1' },
        annotations: {},
        startsAt: '2026-03-01T10:00:00Z',
        endsAt: '0001-01-01T00:00:00Z',
        fingerprint: 'c0ffee',
      },
    ],
  });
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web-1', namespace: 'shop' },
    spec: { containers: [{ name: 'c', image: 'nginx' }] },
  };
  const list = JSON.stringify({
    apiVersion: 'v1',
    kind: 'List',
    items: [pod, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } }],
  });
  const generic = (i: number) =>
    JSON.stringify({
      time: `2026-03-01T10:00:0${i}Z`,
      src: 'shop/cart-7d9f',
      dst: { ip: `10.0.3.${i + 1}` },
      port: 5432,
      protocol: 'TCP',
      verdict: 'FORWARDED',
    });

  it('generic lines: each is a bad line naming what it is, counted by its own reason, and the flows around it are read', async () => {
    const f = tmp(
      'generic-mixed.jsonl',
      [
        generic(0),
        generic(1),
        alertText(),
        generic(2),
        alertmanager,
        JSON.stringify(pod),
        list,
        generic(3),
      ].join('\n') + '\n',
    );
    const r = readFlows(f);
    expect(await r.toArray()).toHaveLength(4);
    expect(r.stats.sources[0]!.format).toBe('generic');
    expect(r.stats.badLines).toBe(4);
    expect(r.stats.bad).toEqual({ 'falco-alert': 1, 'alertmanager-payload': 1, 'kubernetes-object': 2 });
    expect(r.stats.samples.map((s) => [s.line, s.reason, s.message])).toEqual([
      [3, 'falco-alert', FALCO],
      [5, 'alertmanager-payload', ALERTMANAGER],
      [6, 'kubernetes-object', POD],
      [7, 'kubernetes-object', LIST],
    ]);
    // Under --strict, the first of them stops the read, named.
    const err = await readError(f, { strict: true });
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message).toBe(falcoLine(f, 3));
  });

  it('Hubble lines, on the scanner path too: the alert is named, not "not a Hubble record"', async () => {
    const hubble = readFileSync(sample('hubble-flows.jsonl'), 'utf8').split('\n').filter(Boolean);
    const lines = [...hubble, ...hubble, ...hubble, ...hubble];
    const clean = tmp('hubble-clean.jsonl', lines.join('\n') + '\n');
    // Pasted after the first blocks read, where lines are scanned on their bytes.
    const mixed = [...lines.slice(0, 30), alertText(), JSON.stringify(pod), ...lines.slice(30)];
    const f = tmp('hubble-mixed.jsonl', mixed.join('\n') + '\n');
    expect(mixed.slice(0, 30).join('\n').length).toBeGreaterThan(3 * 4096);
    for (const blockSize of [undefined, 4096]) {
      const expected = await readFlows(clean, { blockSize }).toArray();
      const r = readFlows(f, { blockSize });
      expect(await r.toArray()).toEqual(expected);
      expect(r.stats.sources[0]!.format).toBe('hubble');
      expect(r.stats.bad).toEqual({ 'falco-alert': 1, 'kubernetes-object': 1 });
      expect(r.stats.samples.map((s) => [s.line, s.message])).toEqual([
        [31, FALCO],
        [32, POD],
      ]);
    }
  });

  it('a document of generic records, a Kubescape List, Inspektor Gadget lines: named as objects or lines', async () => {
    const doc = tmp(
      'generic-doc.json',
      JSON.stringify([JSON.parse(generic(0)), JSON.parse(alertText()), JSON.parse(alertmanager)], null, 2),
    );
    const r1 = readFlows(doc);
    expect(await r1.toArray()).toHaveLength(1);
    expect(r1.stats.samples.map((s) => formatSampleText(doc, s))).toEqual([
      falcoLine(doc, 2, true),
      `${doc}: object 3: ${ALERTMANAGER}`,
    ]);

    const nn = JSON.parse(readFileSync(sample('kubescape-networkneighborhood.json'), 'utf8')) as object;
    const kubescape = tmp(
      'kubescape-mixed.json',
      JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [nn, JSON.parse(alertText()), pod] }, null, 2),
    );
    const r2 = readFlows(kubescape);
    expect(await r2.toArray()).toHaveLength(13);
    // The Pod is refused as Kubescape refuses other kinds, naming its kind.
    expect(r2.stats.samples.map((s) => [s.line, s.reason, s.message])).toEqual([
      [2, 'falco-alert', FALCO],
      [3, 'unknown-record', 'object: expected kind NetworkNeighborhood, got string "Pod"'],
    ]);

    const gadget = readFileSync(sample('ig-trace-tcp.jsonl'), 'utf8').trim();
    const ig = tmp('ig-mixed.jsonl', [gadget, alertText(), gadget].join('\n') + '\n');
    const r3 = readFlows(ig);
    await r3.toArray();
    expect(r3.stats.sources[0]!.format).toBe('inspektor-gadget');
    expect(r3.stats.samples.map((s) => [s.line, s.reason, s.message])).toEqual([[2, 'falco-alert', FALCO]]);
  });

  it('a file of Falco alerts after a blank or comment line is still said once for the file', async () => {
    const f = tmp(
      'falco-after-comment.jsonl',
      ['', '# alerts of last night', alertText(), alertText()].join('\n'),
    );
    const err = await readError(f);
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message).toBe(falcoMessage(f));
  });

  it('graph counts them by reason on standard error and goes on', async () => {
    const f = tmp('graph-mixed.jsonl', [generic(0), alertText(), generic(1)].join('\n') + '\n');
    const cluster = tmp('cluster-mixed.json', JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [] }));
    const io = captureIO();
    expect(await runCli(['graph', '--flows', f, '--cluster', cluster], io)).toBe(0);
    expect(io.stderr).toContain(`bad lines: 1 (falco-alert 1)\n  ${falcoLine(f, 2)}\n`);
  });
});

function formatSampleText(path: string, s: { line: number; object?: true; message: string }): string {
  return `${path}:${s.object ? ` object ${s.line}` : s.line}: ${s.message}`;
}

describe('a file of nothing but network policies given as flows', () => {
  const policy = (name: string, kind = 'NetworkPolicy', apiVersion = 'networking.k8s.io/v1') => ({
    apiVersion,
    kind,
    metadata: { name, namespace: 'shop' },
    spec: { podSelector: {} },
  });
  const policies = [policy('deny'), policy('allow-web')];
  const files = () => [
    tmp('np.yaml', yamlOf(policies)),
    tmp('np.json', JSON.stringify({ apiVersion: 'v1', kind: 'List', items: policies }, null, 2)),
    tmp('np.jsonl', policies.map((p) => JSON.stringify(p)).join('\n') + '\n'),
  ];
  const head = (path: string, kinds = 'NetworkPolicy (2)', n = 2) =>
    `${path}: network policies, not flows: ${n} object(s) of kinds ${kinds} and no NetworkNeighborhood; `;
  const cluster = () =>
    tmp('np-cluster.json', JSON.stringify({ apiVersion: 'v1', kind: 'List', items: snapshotObjects() }));

  it('is told where the reader is told network policies belong, not "give it as --cluster"', async () => {
    for (const f of files()) {
      const err = await readError(f, { policiesAdvice: 'give it as --policies' });
      expect(err, f).toBeInstanceOf(InputError);
      expect((err as Error).message, f).toBe(head(f) + 'give it as --policies');
    }
    // Without advice, that network policies are read from the cluster snapshot.
    const f = files()[0]!;
    expect(((await readError(f)) as Error).message).toBe(
      head(f) + 'network policies are read from the cluster snapshot: give them in --cluster',
    );
    // The cluster-wide tiers are network policies too.
    const anp = tmp(
      'anp.yaml',
      yamlOf([policy('deny'), policy('tier', 'AdminNetworkPolicy', 'policy.networking.k8s.io/v1alpha1')]),
    );
    expect(((await readError(anp, { policiesAdvice: 'give it as --policies' })) as Error).message).toBe(
      head(anp, 'AdminNetworkPolicy (1), NetworkPolicy (1)') + 'give it as --policies',
    );
    // With a pod beside them it is a cluster snapshot, as before.
    const mixed = tmp('np-pod.yaml', yamlOf([...policies, snapshotObjects()[5]!]));
    expect(((await readError(mixed, { policiesAdvice: 'give it as --policies' })) as Error).message).toBe(
      snapshotMessage(mixed, 3, 'NetworkPolicy (2), Pod (1)'),
    );
  });

  it('audit (--flows and --policies swapped) says to give it as --policies, and exits 2', async () => {
    const [np] = files();
    const io = captureIO();
    const code = await runCli(['audit', '--flows', np!, '--cluster', cluster(), '--policies', np!], io);
    expect(code).toBe(2);
    expect(io.stdout).toBe('');
    expect(io.stderr).toBe(`microseg audit: ${head(np!)}give it as --policies\n`);
  });

  it('recommend says it reads them from --cluster and points to audit; graph says it uses none', async () => {
    const [np] = files();
    const io = captureIO();
    expect(
      await runCli(['recommend', '--flows', np!, '--cluster', cluster(), '--out', join(dir, 'np-out')], io),
    ).toBe(2);
    expect(io.stderr).toBe(
      `microseg recommend: ${head(np!)}recommend reads the network policies already applied from the cluster ` +
        'snapshot: give them in --cluster (to check policies against flows: microseg audit --policies)\n',
    );
    const g = captureIO();
    expect(await runCli(['graph', '--flows', np!, '--cluster', cluster()], g)).toBe(2);
    expect(g.stdout).toBe('');
    expect(g.stderr).toBe(
      `microseg graph: ${head(np!)}graph uses no network policy ` +
        '(to check policies against flows: microseg audit --policies)\n',
    );
  });
});
