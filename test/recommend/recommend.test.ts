import {
  mkdtemp,
  readFile,
  readdir,
  readlink,
  writeFile,
  mkdir,
  link,
  lstat,
  rm,
  symlink,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/main.ts';
import { captureIO } from '../../src/cli/io.ts';
import { generateDemo } from '../../src/generate/demo.ts';
import { writeLines, writeObjectList } from '../../src/generate/write.ts';
import { recommend } from '../../src/cli/commands/recommend.ts';
import { snapshotFromObjects } from '../../src/model/snapshot.ts';
import { formatIngestStats, readFlows } from '../../src/flows/reader.ts';
import { policyFileHeader, stableJson } from '../../src/policy/render.ts';
import { engineFromSnapshot } from '../../src/verify/engine.ts';
import { fixtureFlows, fixtureSnapshot } from '../core/fixture.ts';

const GOLDEN = new URL('../golden/demo/', import.meta.url);
const update = process.env.UPDATE_GOLDEN === '1';

let dir: string;
let demo: ReturnType<typeof generateDemo>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'microseg-recommend-'));
  demo = generateDemo();
  await writeObjectList(join(dir, 'cluster.json'), demo.objects);
  await writeLines(join(dir, 'flows.jsonl.gz'), demo.lines, { gzip: true });
});

/** `microseg recommend` over the demo's flows and cluster, then `extra`. */
const demoArgs = (...extra: string[]) => [
  'recommend',
  '--flows',
  join(dir, 'flows.jsonl.gz'),
  '--cluster',
  join(dir, 'cluster.json'),
  ...extra,
];

describe('microseg recommend on the demo', () => {
  it('writes the golden files byte for byte', async () => {
    const io = captureIO();
    const out = join(dir, 'out');
    const code = await runCli(demoArgs('--out', out), io);
    expect(io.stderr).toBe('');
    expect(code).toBe(0);
    expect(io.stdout).toMatch(/verification: (\d+)\/\1 observed connection\(s\) allowed/);
    const files = (await readdir(out)).sort();
    expect(files).toEqual([
      'batch.yaml',
      'data.yaml',
      'ingress-nginx.yaml',
      'monitoring.yaml',
      'report.json',
      'shop.yaml',
    ]);
    if (update) await mkdir(GOLDEN, { recursive: true });
    for (const f of files) {
      // report.json names its sources as given on the command line: here, a temporary directory.
      const got = (await readFile(join(out, f), 'utf8')).replaceAll(dir, '<tmp>');
      if (update) await writeFile(new URL(f, GOLDEN), got);
      expect(got, f).toBe(await readFile(new URL(f, GOLDEN), 'utf8'));
    }
  });

  it('its output directory feeds explain and blast-radius directly (report.json is skipped)', async () => {
    const out = join(dir, 'out');
    const frontend = demo.objects
      .map((o) => o as { kind: string; metadata: { name: string; namespace?: string } })
      .find(
        (o) => o.kind === 'Pod' && o.metadata.namespace === 'shop' && o.metadata.name.startsWith('frontend-'),
      )!;
    const io = captureIO();
    const code = await runCli(
      [
        'explain',
        '--cluster',
        join(dir, 'cluster.json'),
        '--policies',
        out,
        '--from',
        `shop/${frontend.metadata.name}`,
        '--to',
        '8.8.8.8',
        '--port',
        '53',
        '--protocol',
        'UDP',
      ],
      io,
    );
    expect(io.stderr).toBe('');
    expect(code).toBe(0);
    expect(io.stdout).toContain(`shop/${frontend.metadata.name} -> 8.8.8.8 UDP/53: DENIED`);
    const br = captureIO();
    expect(
      await runCli(
        [
          'blast-radius',
          '--cluster',
          join(dir, 'cluster.json'),
          '--workload',
          'shop/Deployment/cart',
          '--proposal',
          out,
        ],
        br,
      ),
    ).toBe(0);
    const m = /reachable workload pairs: (\d+) before, (\d+) after/.exec(br.stdout)!;
    expect(Number(m[2])).toBeLessThan(Number(m[1]));
  });

  it('recovers every intended connection, allows every one, and nothing unobserved between workloads', async () => {
    const snapshot = snapshotFromObjects(demo.objects, 'demo');
    const r = await recommend(snapshot, readFlows(join(dir, 'flows.jsonl.gz')));
    const edges = new Set(
      r.analysis.graph.edges.map((e) => `${e.source} ${e.target} ${e.port}/${e.protocol}`),
    );
    const wl = (w: { namespace: string; kind: string; name: string }) => `${w.namespace}/${w.kind}/${w.name}`;
    for (const t of demo.truth.edges) {
      if (!('workload' in t.src) || !('workload' in t.dst)) continue;
      expect(edges, `${wl(t.src.workload)} -> ${wl(t.dst.workload)}`).toContain(
        `${wl(t.src.workload)} ${wl(t.dst.workload)} ${t.port}/${t.protocol}`,
      );
    }
    expect(r.proof.blocked).toEqual([]);
    expect(r.proof.checked).toBeGreaterThan(40);
    // Excess reachability between two workloads only on a pair that was observed, or to cluster DNS (every
    // workload with an egress policy may resolve names, by design), or between namespaces the proposal
    // does not govern.
    const observedPairs = new Set(r.analysis.graph.edges.map((e) => `${e.source} ${e.target}`));
    const governed = new Set(r.analysis.proposal.namespaces);
    for (const x of r.proof.report.excess) {
      const ns = (id: string) => id.split('/')[0]!;
      if (!governed.has(ns(x.from)) && !governed.has(ns(x.to))) continue;
      if (x.to === 'kube-system/Deployment/coredns' && x.port === 53) continue;
      expect(observedPairs, `${x.from} -> ${x.to}:${x.port}/${x.protocol}`).toContain(`${x.from} ${x.to}`);
    }
  });

  it('with --named-ports passes its own proof: a port name only where the rule selects the destination pods', async () => {
    const snapshot = snapshotFromObjects(demo.objects, 'demo');
    const r = await recommend(snapshot, readFlows(join(dir, 'flows.jsonl.gz')), {
      policy: { namedPorts: true },
    });
    expect(r.proof.blocked).toEqual([]);
    const policy = (name: string) =>
      r.analysis.proposal.policies.find(
        (p) => p.metadata.namespace === 'monitoring' && p.metadata.name === name,
      )!;
    const prometheus = policy('microseg-prometheus');
    // node-exporter is host-network: its rule is an ipBlock of node addresses, which a port name
    // (resolved on a destination pod) never matches, so it keeps the number.
    const toNodes = prometheus.spec.egress!.filter((e) => e.to!.every((p) => p.ipBlock !== undefined));
    expect(toNodes.flatMap((e) => e.ports)).toContainEqual({ protocol: 'TCP', port: 9100 });
    expect(toNodes.flatMap((e) => e.ports!.map((p) => typeof p.port))).not.toContain('string');
    // Egress to pods selected by labels, and ingress to the policy's own pods, use the name.
    const toPods = prometheus.spec.egress!.filter((e) => e.to!.every((p) => p.podSelector !== undefined));
    expect(toPods.flatMap((e) => e.ports)).toContainEqual({ protocol: 'TCP', port: 'metrics' });
    const io = captureIO();
    const out = join(dir, 'named');
    const code = await runCli(demoArgs('--out', out, '--named-ports'), io);
    expect(io.stderr).toBe('');
    expect(code).toBe(0);
  });

  it('keeps the connection the cluster denies denied', async () => {
    const snapshot = snapshotFromObjects(demo.objects, 'demo');
    const r = await recommend(snapshot, readFlows(join(dir, 'flows.jsonl.gz')));
    const after = engineFromSnapshot({
      ...snapshot,
      networkPolicies: [...snapshot.networkPolicies, ...r.analysis.proposal.policies],
    });
    for (const d of demo.truth.denied) {
      if (!('workload' in d.src) || !('workload' in d.dst)) continue;
      const pod = (w: { namespace: string; kind: string; name: string }) =>
        r.analysis.identity.workloads.get(`${w.namespace}/${w.kind}/${w.name}`)!.pods[0]!;
      const v = after.evaluate({
        from: { namespace: d.src.workload.namespace, pod: pod(d.src.workload) },
        to: { namespace: d.dst.workload.namespace, pod: pod(d.dst.workload) },
        port: d.port,
        protocol: d.protocol as 'TCP',
      });
      expect(v.allowed).toBe(false);
    }
  });
});

describe('microseg recommend refuses and explains', () => {
  it('does not write a proposal that would block an observed connection', async () => {
    // An AdminNetworkPolicy added after the traffic was recorded denies frontend -> cart; the proposal
    // cannot allow it, so recommend refuses and names the connection.
    const snap = fixtureSnapshot();
    const anp = {
      apiVersion: 'policy.networking.k8s.io/v1alpha1',
      kind: 'AdminNetworkPolicy',
      metadata: { name: 'deny-cart' },
      spec: {
        priority: 10,
        subject: {
          pods: {
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'shop' } },
            podSelector: { matchLabels: { app: 'cart' } },
          },
        },
        ingress: [
          {
            name: 'no-frontend',
            action: 'Deny',
            from: [{ pods: { namespaceSelector: {}, podSelector: { matchLabels: { app: 'frontend' } } } }],
          },
        ],
      },
    };
    const objects = [
      ...snap.namespaces,
      ...snap.pods,
      ...snap.services,
      ...snap.endpointSlices,
      ...snap.workloads,
      anp,
    ];
    const d = await mkdtemp(join(tmpdir(), 'microseg-refuse-'));
    await writeFile(join(d, 'cluster.json'), JSON.stringify({ kind: 'List', items: objects }));
    const lines = fixtureFlows().map((f) =>
      JSON.stringify({
        time: new Date(f.time).toISOString(),
        source: f.src.pod ? `${f.src.namespace}/${f.src.pod}` : { ip: f.src.ip },
        destination: f.dst.pod ? `${f.dst.namespace}/${f.dst.pod}` : { ip: f.dst.ip },
        port: f.port,
        protocol: f.protocol,
        verdict: f.verdict,
      }),
    );
    await writeFile(join(d, 'flows.jsonl'), lines.join('\n') + '\n');
    const io = captureIO();
    const code = await runCli(
      [
        'recommend',
        '--flows',
        join(d, 'flows.jsonl'),
        '--cluster',
        join(d, 'cluster.json'),
        '--out',
        join(d, 'out'),
      ],
      io,
    );
    expect(code).toBe(1);
    expect(io.stderr).toContain('microseg recommend: not written: the proposal would block');
    expect(io.stderr).toContain('shop/Deployment/frontend->shop/Deployment/cart:8080/TCP: ');
    await expect(readdir(join(d, 'out'))).rejects.toThrow(/ENOENT/);
    // Nothing written, so the summary points at no report.json: what it would list is listed.
    expect(io.stderr).not.toContain('report.json');
    expect(io.stderr).toContain(
      'WILL BE BLOCKED by the proposal: 2 observed connection(s) the proof leaves out (every observation dropped, or ICMP, which NetworkPolicy cannot allow):\n  ',
    );
  });

  it('refuses a --namespace the snapshot does not have, naming the closest it has, before writing anything', async () => {
    const args = (ns: string, out: string) => demoArgs('--out', join(dir, out), '--namespace', ns);
    for (const [ns, message] of [
      ['nosuchns', 'microseg recommend: --namespace nosuchns: the snapshot has no namespace nosuchns\n'],
      [
        'shopp',
        'microseg recommend: --namespace shopp: the snapshot has no namespace shopp (did you mean shop?)\n',
      ],
    ] as const) {
      const io = captureIO();
      expect(await runCli(args(ns, `ns-${ns}`), io)).toBe(2);
      expect(io.stderr).toBe(message);
      await expect(readdir(join(dir, `ns-${ns}`))).rejects.toThrow(/ENOENT/);
    }
  });

  it('writes no lone default deny for a --namespace with no observed workload', async () => {
    const base = demoArgs('--namespace', 'kube-public');
    const warning =
      'namespace kube-public: no workload of it was observed in the flows; no policy is proposed for it (a default deny alone would cut off traffic nobody saw)';
    // Alone: no policy at all, the reason named, exit 2, nothing written.
    const io = captureIO();
    expect(await runCli([...base, '--out', join(dir, 'ns-alone')], io)).toBe(2);
    expect(io.stderr).toContain(`  ${warning}\n`);
    expect(io.stderr).toContain(
      'microseg recommend: no policy proposed: no workload of kube-public (what --namespace names) was observed; the workloads observed are in batch, data, ingress-nginx, kube-system, monitoring, shop; nothing written\n',
    );
    await expect(readdir(join(dir, 'ns-alone'))).rejects.toThrow(/ENOENT/);
    // Beside an observed one: that one's policies, a warning for the other, and no file for it.
    const io2 = captureIO();
    const out = join(dir, 'ns-beside');
    expect(await runCli([...base, '--namespace', 'shop', '--out', out], io2)).toBe(0);
    expect((await readdir(out)).sort()).toEqual(['report.json', 'shop.yaml']);
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as {
      warnings: string[];
      policies: { namespaces: string[] };
    };
    expect(report.policies.namespaces).toEqual(['shop']);
    expect(report.warnings).toContain(warning);
  });

  it('names missing and bad options', async () => {
    const cases: [string[], string][] = [
      [
        ['recommend', '--cluster', 'c.json'],
        'microseg recommend: --flows is required (a file, a .gz file, or - for standard input)\n',
      ],
      [
        ['recommend', '--flows', 'f'],
        'microseg recommend: --cluster is required (kubectl get ... -o json output)\n',
      ],
      [
        ['recommend', '--flows', 'f', '--cluster', 'c', '--external-prefix', '40'],
        'microseg recommend: --external-prefix must be a whole number from 0 to 32, got "40"\n',
      ],
      // An empty value (an unset variable in a script) was read as 0: every external peer widened to
      // 0.0.0.0/0, the whole internet.
      [
        ['recommend', '--flows', 'f', '--cluster', 'c', '--external-prefix', ''],
        'microseg recommend: --external-prefix must be a whole number from 0 to 32, got ""\n',
      ],
      [
        ['recommend', '--flows', 'f', '--cluster', 'c', '--external-prefix-v6', ' '],
        'microseg recommend: --external-prefix-v6 must be a whole number from 0 to 128, got " "\n',
      ],
      [
        ['recommend', '--flows', 'f', '--cluster', 'c', '--external-prefix', '0x18'],
        'microseg recommend: --external-prefix must be a whole number from 0 to 32, got "0x18"\n',
      ],
      [
        ['recommend', '--flows', 'f', '--cluster', 'c', '--seed', ''],
        'microseg recommend: --seed must be a whole number from 0 to 2147483647, got ""\n',
      ],
      [
        ['recommend', '--flows', 'f', '--cluster', 'c', '--resolution', 'Infinity'],
        'microseg recommend: --resolution must be a positive number, got "Infinity"\n',
      ],
      [
        ['recommend', '--flows', 'f', '--cluster', 'c', '--world-ingress', 'all'],
        'microseg recommend: --world-ingress must be any or observed, got "all"\n',
      ],
      [
        ['recommend', '--flows', 'f', '--cluster', join(dir, 'nope.json')],
        `microseg recommend: ${join(dir, 'nope.json')}: cannot read: no such file\n`,
      ],
    ];
    for (const [args, message] of cases) {
      const io = captureIO();
      expect(await runCli(args, io)).toBe(2);
      expect(io.stderr).toBe(message);
    }
  });
});

describe('microseg recommend with bad input lines', () => {
  it('counts a time beyond what a Date holds as a bad line of its format, and goes on', async () => {
    // Each would once reach the graph and end the run there (RangeError: Invalid time value, exit 3).
    const ig = JSON.parse(
      await readFile(new URL('../../../shared/samples/ig-trace-tcp.jsonl', import.meta.url), 'utf8'),
    ) as object;
    const bad: [string, string, string][] = [
      [
        'generic.jsonl',
        '{"time":1e20,"src":"shop/cart-7d9f","dst":"10.0.3.7","port":5432}',
        'time: 100000000000000000000 is out of range: a number is epoch milliseconds (below 1e14), microseconds (1e14 to 1e17) or nanoseconds (1e17 to 1e20)',
      ],
      [
        'hubble.jsonl',
        JSON.stringify({ flow: { time: { seconds: '9000000000000' }, l4: { TCP: {} } } }),
        'flow.time: 9000000000000 seconds is out of range 0-8640000000000',
      ],
      [
        'ig.jsonl',
        JSON.stringify({ ...ig, timestamp_raw: 1e30 }),
        'timestamp_raw: 1e+30 is out of range 0-8.64e+21 epoch nanoseconds',
      ],
    ];
    const files: string[] = [];
    for (const [name, line] of bad) {
      files.push(join(dir, `bigtime-${name}`));
      await writeFile(files.at(-1)!, `\n${line}\n`);
    }
    const io = captureIO();
    const args = ['recommend', '--cluster', join(dir, 'cluster.json'), '--out', join(dir, 'out-bigtime')];
    for (const f of [join(dir, 'flows.jsonl.gz'), ...files]) args.push('--flows', f);
    expect(await runCli(args, io)).toBe(0);
    expect(io.stderr).toBe('');
    expect(io.stdout).toContain('bad lines: 3 (bad-value 3)\n');
    for (const [i, [, , message]] of bad.entries())
      expect(io.stdout).toContain(`  ${files[i]}:2: ${message}\n`);
  });
});

describe('microseg recommend with an Inspektor Gadget event to port 0', () => {
  it('counts it as a bad line and writes the policies (it once ended the run: a rule for port 0)', async () => {
    const pods = demo.objects.filter((o) => (o as { kind?: string }).kind === 'Pod') as {
      metadata: { namespace: string; name: string };
      status?: { podIP?: string };
    }[];
    const checkout = pods.find((p) => p.metadata.name.startsWith('checkout-'))!;
    const payments = pods.find((p) => p.metadata.name.startsWith('payments-'))!;
    const event = (port: number) =>
      JSON.stringify({
        type: 'connect',
        timestamp: '2026-03-02T10:40:02Z',
        k8s: { namespace: 'shop', podName: checkout.metadata.name },
        src: { addr: checkout.status!.podIP, port: 41002, proto: 6, version: 4 },
        dst: { addr: payments.status!.podIP, port, proto: 6, version: 4 },
      });
    const ig = join(dir, 'ig-port0.jsonl');
    await writeFile(ig, `${event(50051)}\n${event(0)}\n`);
    const io = captureIO();
    const args = ['recommend', '--flows', join(dir, 'flows.jsonl.gz'), '--flows', ig];
    expect(
      await runCli([...args, '--cluster', join(dir, 'cluster.json'), '--out', join(dir, 'out-ig0')], io),
    ).toBe(0);
    expect(io.stderr).toBe('');
    expect(io.stdout).toContain(
      `bad lines: 1 (bad-value 1)\n  ${ig}:2: dst.port: 0 is out of range 1-65535 (the responder's port of a connect event)\n`,
    );
  });
});

describe('report.json', () => {
  it('gives the lost events exactly, as digits beyond Number.MAX_SAFE_INTEGER', async () => {
    const lost = join(dir, 'lost-big.jsonl');
    const line = (n: string) =>
      JSON.stringify({ lost_events: { source: 'HUBBLE_RING_BUFFER', num_events_lost: n } });
    await writeFile(lost, `${line('18446744073709551615')}\n${line('1')}\n`);
    const out = join(dir, 'out-lost');
    const args = ['recommend', '--flows', join(dir, 'flows.jsonl.gz'), '--flows', lost];
    expect(await runCli([...args, '--cluster', join(dir, 'cluster.json'), '--out', out], captureIO())).toBe(
      0,
    );
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as {
      inputs: { lostEvents: unknown };
      warnings: string[];
    };
    // The demo's own 1369, and 2^64.
    expect(report.inputs.lostEvents).toBe('18446744073709552985');
    expect(report.warnings).toContain(
      'Hubble reported 18446744073709552985 lost event(s): the graph may miss connections',
    );
  });
});

describe('report.json maps', () => {
  it('are sorted by key: the same records in another order give the same file', async () => {
    const t = (m: number) => `2026-11-01T10:0${m}:00Z`;
    const generic = [
      '{bad',
      `{"time":"${t(1)}","src":"shop/frontend-7d9f-aaaaa","dst":"10.244.1.20","port":8080,"prot":"x"}`,
      `{"time":"${t(1)}","src":"shop/frontend-7d9f-aaaaa","dst":{"ip":"198.51.100.7","reserved":"world"},"port":443}`,
      `{"time":"${t(2)}","src":{"ip":"192.168.0.10","reserved":"host"},"dst":"10.244.1.20","port":8080}`,
      `{"time":"${t(3)}","src":"10.244.1.20","dst":{"ip":"172.18.0.2","reserved":"kube-apiserver"},"port":6443}`,
      `{"time":"${t(4)}","src":{"namespace":"shop","pod":"zeta-1","workload":{"kind":"Deployment","name":"zeta"}},"dst":"10.244.1.20","port":8080}`,
      `{"time":"${t(5)}","src":{"namespace":"shop","pod":"alpha-1","workload":{"kind":"Deployment","name":"alpha"}},"dst":"10.244.1.20","port":8080}`,
    ];
    const gadget = (type: string, addr: string) =>
      JSON.stringify({
        type,
        timestamp: t(6),
        k8s: { namespace: 'shop', podName: 'cart-7d9f-bbbbb' },
        src: { addr, port: 41000, proto: 'TCP' },
        dst: { addr, port: 15000, proto: 'TCP' },
      });
    const ig = [gadget('close', '10.244.1.20'), gadget('connect', '127.0.0.1')];
    type Keys = Record<'skipped' | 'badByReason' | 'hubbleEvents' | 'reserved' | 'byWorkload', string[]>;
    const runs: { report: string; summary: string[]; keys: Keys }[] = [];
    for (const [i, order] of [(x: string[]) => x, (x: string[]) => [...x].reverse()].entries()) {
      const g = join(dir, `maps-${i}.jsonl`);
      const k = join(dir, `maps-ig-${i}.jsonl`);
      await writeFile(g, order(generic).join('\n') + '\n');
      await writeFile(k, order(ig).join('\n') + '\n');
      const reader = readFlows([g, k]);
      const r = await recommend(fixtureSnapshot(), reader);
      const report = r.report as {
        inputs: Record<string, unknown>;
        identity: { reserved: object };
        policies: { byWorkload: object };
      };
      // What names the sources and their lines differs, and rightly so.
      const { sources: _s, badSamples: _b, ...inputs } = report.inputs;
      runs.push({
        report: stableJson({ ...report, inputs }),
        summary: formatIngestStats(reader.stats)
          .split('\n')
          .filter((l) => /^(skipped|bad lines):/.test(l)),
        keys: {
          skipped: Object.keys(inputs.skipped as object),
          badByReason: Object.keys(inputs.badByReason as object),
          hubbleEvents: Object.keys(inputs.hubbleEvents as object),
          reserved: Object.keys(report.identity.reserved),
          byWorkload: Object.keys(report.policies.byWorkload),
        },
      });
    }
    const [a, b] = runs as [(typeof runs)[0], (typeof runs)[0]];
    expect(b.report).toBe(a.report);
    expect(b.summary).toEqual(a.summary);
    expect(a.summary).toEqual([
      'skipped: close-event 1, loopback 1',
      'bad lines: 2 (invalid-json 1, unknown-field 1)',
    ]);
    // Not vacuous: each map has several keys, and they are sorted.
    expect(a.keys.skipped).toEqual(['close-event', 'loopback']);
    expect(a.keys.badByReason).toEqual(['invalid-json', 'unknown-field']);
    expect(a.keys.hubbleEvents).toEqual(['agent_event', 'debug_event', 'lost_events', 'node_status']);
    expect(a.keys.reserved).toEqual(['kube-apiserver', 'node', 'world']);
    expect(a.keys.byWorkload).toContain('shop/Deployment/alpha');
    expect(a.keys.byWorkload).toContain('shop/Deployment/zeta');
    expect(a.keys.byWorkload).toEqual([...a.keys.byWorkload].sort());
  });
});

describe('an unknown flow format', () => {
  it('is refused by recommend, audit and graph naming the option and the formats it takes', async () => {
    const flows = join(dir, 'flows.jsonl');
    const cluster = join(dir, 'cluster.json');
    const formats = 'auto, hubble, generic, inspektor-gadget, kubescape';
    const cases: [string[], string][] = [
      [['recommend', '--out', join(dir, 'out-format')], '--format'],
      [['audit', '--policies', cluster], '--format'],
      [['graph'], '--input-format'],
    ];
    for (const [[command, ...rest], option] of cases)
      for (const value of ['hubbel', '']) {
        const io = captureIO();
        const args = [command!, '--flows', flows, '--cluster', cluster, ...rest, option, value];
        expect([await runCli(args, io), io.stdout, io.stderr], `${command} ${value}`).toEqual([
          2,
          '',
          `microseg ${command}: ${option} ${JSON.stringify(value)} is not a flow format (use ${formats})\n`,
        ]);
      }
  });
});

describe('flow sources that give no flow at all', () => {
  // Policies from no traffic would only deny, and an empty graph says nothing: both commands write
  // nothing and exit 2, naming the sources and why.
  const cluster = () => join(dir, 'cluster.json');

  it('recommend: an empty source', async () => {
    const empty = join(dir, 'none-empty.jsonl');
    await writeFile(empty, '\n\n');
    const out = join(dir, 'out-none');
    const io = captureIO();
    expect(await runCli(['recommend', '--flows', empty, '--cluster', cluster(), '--out', out], io)).toBe(2);
    expect(io.stderr).toBe(
      'read 0 line(s) from 1 source(s): 0 flow(s) (0 observation(s), 0 duplicate(s) merged, 0 repl(ies) flipped)\n' +
        `empty: ${empty}\n` +
        `microseg recommend: no flow read: ${empty} is empty; nothing written\n`,
    );
    expect(io.stdout).toBe('');
    await expect(readdir(out)).rejects.toThrow(/ENOENT/);
    const two = captureIO();
    const empty2 = join(dir, 'none-empty2.jsonl');
    await writeFile(empty2, '');
    const args = ['recommend', '--flows', empty, '--flows', empty2, '--cluster', cluster(), '--out', out];
    expect(await runCli(args, two)).toBe(2);
    expect(two.stderr).toContain(
      `microseg recommend: no flow read: every source is empty (${empty}, ${empty2}); nothing written\n`,
    );
  });

  it('a gzip source cut short keeps what was read before the cut, and says so', async () => {
    const gz = await readFile(join(dir, 'flows.jsonl.gz'));
    const cut = join(dir, 'cut.jsonl.gz');
    await writeFile(cut, gz.subarray(0, Math.floor(gz.length * 0.8)));
    const out = join(dir, 'out-cut');
    const io = captureIO();
    expect(await runCli(['recommend', '--flows', cut, '--cluster', cluster(), '--out', out], io)).toBe(0);
    expect(io.stdout).toContain('truncated 1)');
    expect(io.stdout).toMatch(
      new RegExp(
        `\\n  ${cut.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+: gzip data ends early \\(unexpected end of file\\): the file is cut short\\n`,
      ),
    );
    expect((await readdir(out)).length).toBeGreaterThan(0);
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as {
      inputs: { flows: number; badByReason: Record<string, number> };
    };
    expect(report.inputs.flows).toBeGreaterThan(0);
    expect(report.inputs.badByReason.truncated).toBe(1);
    // Cut before its first line: not "empty", and nothing written.
    const header = join(dir, 'cut-header.jsonl.gz');
    await writeFile(header, gz.subarray(0, 12));
    const none = captureIO();
    const out2 = join(dir, 'out-cut-header');
    expect(await runCli(['recommend', '--flows', header, '--cluster', cluster(), '--out', out2], none)).toBe(
      2,
    );
    expect(none.stderr).toContain(
      `microseg recommend: no flow read: no line could be read from ${header} (see above); nothing written\n`,
    );
    await expect(readdir(out2)).rejects.toThrow(/ENOENT/);
  });

  it('recommend: every line bad under a forced format gets a hint at --format', async () => {
    const hubble = fileURLToPath(new URL('../../../shared/samples/hubble-flows.jsonl', import.meta.url));
    const out = join(dir, 'out-none');
    const args = ['recommend', '--flows', hubble, '--cluster', cluster(), '--out', out];
    const forced = captureIO();
    expect(await runCli([...args, '--format', 'generic'], forced)).toBe(2);
    expect(forced.stderr).toContain(
      `bad lines: 11 (unknown-field 11)\n  ${hubble}:1: unknown field "flow"\n`,
    );
    expect(forced.stderr).toContain(
      `microseg recommend: no flow read: every line of ${hubble} was bad (see above); read as --format generic: ` +
        "is that their format? Without it, each source's is detected; nothing written\n",
    );
    await expect(readdir(out)).rejects.toThrow(/ENOENT/);
    const bad = join(dir, 'none-bad.jsonl');
    await writeFile(bad, '{"time":0}\n');
    const detected = captureIO();
    expect(await runCli(['recommend', '--flows', bad, '--cluster', cluster(), '--out', out], detected)).toBe(
      2,
    );
    expect(detected.stderr).toContain(
      `microseg recommend: no flow read: every line of ${bad} was bad (see above); nothing written\n`,
    );
  });

  it('audit: an empty source, said without "nothing written" (audit writes nothing)', async () => {
    const empty = join(dir, 'none-empty-audit.jsonl');
    await writeFile(empty, '');
    const policies = join(dir, 'none-policy.yaml');
    await writeFile(
      policies,
      'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: shop}\nspec: {podSelector: {}}\n',
    );
    const io = captureIO();
    const args = ['audit', '--flows', empty, '--cluster', cluster(), '--policies', policies];
    expect(await runCli(args, io)).toBe(2);
    expect(io.stderr).toContain(`\nmicroseg audit: no flow read: ${empty} is empty; nothing audited\n`);
    expect(io.stdout).toBe('');
    const bad = join(dir, 'none-bad-audit.jsonl');
    await writeFile(bad, '{"time":0}\n');
    const forced = captureIO();
    expect(
      await runCli(
        ['audit', '--flows', bad, '--cluster', cluster(), '--policies', policies, '--format', 'generic'],
        forced,
      ),
    ).toBe(2);
    expect(forced.stderr).toContain(
      `microseg audit: no flow read: every line of ${bad} was bad (see above); read as --format generic: ` +
        "is that their format? Without it, each source's is detected; nothing audited\n",
    );
  });

  it('graph: lines that are no flow, and an empty source', async () => {
    const ig = JSON.parse(
      await readFile(new URL('../../../shared/samples/ig-trace-tcp.jsonl', import.meta.url), 'utf8'),
    ) as object;
    const closes = join(dir, 'none-close.jsonl');
    await writeFile(
      closes,
      `${JSON.stringify({ ...ig, type: 'close' })}\n${JSON.stringify({ ...ig, timestamp_raw: 1e30 })}\n`,
    );
    const empty = join(dir, 'none-empty2.jsonl');
    await writeFile(empty, '');
    const out = join(dir, 'none-graph.json');
    const io = captureIO();
    const args = ['graph', '--flows', closes, '--flows', empty, '--cluster', cluster(), '--out', out];
    expect(await runCli(args, io)).toBe(2);
    expect(io.stderr).toMatch(/^read 2 line\(s\) from 2 source\(s\): 0 flow\(s\)/);
    expect(io.stderr).toContain(
      `\nmicroseg graph: no flow read: none of the 2 line(s) of ${closes} was a flow (1 bad, 1 skipped (close-event)); nothing written\n`,
    );
    await expect(readFile(out)).rejects.toThrow(/ENOENT/);
    const forced = captureIO();
    expect(await runCli([...args, '--input-format', 'hubble'], forced)).toBe(2);
    expect(forced.stderr).toContain('read as --input-format hubble: is that their format?');
  });
});

describe('a flow source given twice', () => {
  // Bad usage (exit 2) naming the source, before anything is read or written: '-' twice read standard
  // input once and reported the second as empty, and a file twice counted each of its flows twice.
  const fail = async (args: string[], message: string, stdin?: NodeJS.ReadableStream) => {
    const io = captureIO(stdin);
    expect(await runCli(args, io)).toBe(2);
    expect(io.stderr).toBe(`${message}\n`);
    expect(io.stdout).toBe('');
  };
  const cluster = () => ['--cluster', join(dir, 'cluster.json')];

  it('recommend and graph: the same path, the same file by another name, standard input', async () => {
    const flows = join(dir, 'flows.jsonl.gz');
    const out = join(dir, 'out-twice');
    for (const cmd of ['recommend', 'graph']) {
      const outArgs = ['--out', cmd === 'graph' ? join(dir, 'twice.json') : out];
      await fail(
        [cmd, '--flows', flows, '--flows', flows, ...cluster(), ...outArgs],
        `microseg ${cmd}: --flows ${flows} is given twice: its flows would be counted twice`,
      );
      const other = `${dir}/./flows.jsonl.gz`;
      await fail(
        [cmd, '--flows', flows, '--flows', other, ...cluster(), ...outArgs],
        `microseg ${cmd}: --flows ${other} and --flows ${flows} are the same file: its flows would be counted twice`,
      );
      await fail(
        [cmd, '--flows', '-', '--flows', flows, '--flows', '-', ...cluster(), ...outArgs],
        `microseg ${cmd}: --flows - is given twice: standard input can be read only once`,
        Readable.from([]),
      );
    }
    const sym = join(dir, 'flows-symlink.jsonl.gz');
    const hard = join(dir, 'flows-hardlink.jsonl.gz');
    await symlink(flows, sym);
    await link(flows, hard);
    await fail(
      ['recommend', '--flows', sym, '--flows', flows, ...cluster(), '--out', out],
      `microseg recommend: --flows ${flows} and --flows ${sym} are the same file: its flows would be counted twice`,
    );
    await fail(
      ['graph', '--flows', flows, '--flows', hard, ...cluster()],
      `microseg graph: --flows ${hard} and --flows ${flows} are the same file: its flows would be counted twice`,
    );
    await expect(readdir(out)).rejects.toThrow(/ENOENT/);
    await expect(readFile(join(dir, 'twice.json'))).rejects.toThrow(/ENOENT/);
    // Two different sources, and a missing one given once (the reader names it), are fine.
    const io = captureIO();
    const missing = join(dir, 'no-such.jsonl');
    expect(await runCli(['graph', '--flows', flows, '--flows', missing, ...cluster()], io)).toBe(2);
    expect(io.stderr).toContain(`${missing}: cannot read`);
  });
});

describe('--cluster - in recommend and graph', () => {
  // They read the snapshot from files only ('-' is for the verify commands and audit): said as such,
  // naming the option, before anything is read or written. It said '-: standard input is not
  // available' when a snapshot was piped in.
  it('is bad usage saying that standard input is for --flows', async () => {
    const out = join(dir, 'out-cluster-stdin');
    for (const cmd of ['recommend', 'graph']) {
      const io = captureIO(Readable.from([await readFile(join(dir, 'cluster.json'))]));
      const args = [cmd, '--flows', join(dir, 'flows.jsonl.gz'), '--cluster', '-'];
      expect(await runCli(cmd === 'recommend' ? [...args, '--out', out] : args, io)).toBe(2);
      expect(io.stderr).toBe(
        `microseg ${cmd}: --cluster -: ${cmd} reads the cluster snapshot from a file or directory, not from standard input ('-' is for --flows)\n`,
      );
      expect(io.stdout).toBe('');
    }
    await expect(readdir(out)).rejects.toThrow(/ENOENT/);
  });
});

describe('an empty --out', () => {
  // Bad usage, before anything is read: recommend and demo wrote into the current directory (an unset
  // variable in '--out "$DIR"'), and graph wrote to standard output as if --out were not given.
  it('is refused by recommend, graph and demo, and nothing is written', async () => {
    const cwd = process.cwd();
    const here = await mkdtemp(join(tmpdir(), 'microseg-empty-out-'));
    process.chdir(here);
    try {
      const inputs = ['--flows', join(dir, 'flows.jsonl.gz'), '--cluster', join(dir, 'cluster.json')];
      for (const args of [
        ['recommend', ...inputs, '--out', ''],
        ['graph', ...inputs, '--out', ''],
        ['demo', '--no-serve', '--out', ''],
      ]) {
        const io = captureIO();
        expect(await runCli(args, io)).toBe(2);
        expect({ out: io.stdout, err: io.stderr }).toEqual({
          out: '',
          err: `microseg ${args[0]}: --out is empty: give a ${args[0] === 'graph' ? 'file' : 'directory'} (or leave --out out for ${args[0] === 'graph' ? 'standard output' : args[0] === 'demo' ? 'out' : 'policies'})\n`,
        });
      }
      expect(await readdir(here)).toEqual([]);
    } finally {
      process.chdir(cwd);
      await rm(here, { recursive: true, force: true });
    }
  });
});

describe('graph --out naming one of its inputs', () => {
  // Bad usage naming both, before anything is read: the graph was written over the flows or the
  // snapshot it was made from, which were lost.
  it('is refused, by path or as the same file under another name, and the input is kept', async () => {
    const flows = join(dir, 'in-flows.jsonl.gz');
    const cluster = join(dir, 'in-cluster.json');
    await writeFile(flows, await readFile(join(dir, 'flows.jsonl.gz')));
    await writeFile(cluster, await readFile(join(dir, 'cluster.json')));
    const before = [await readFile(flows), await readFile(cluster)];
    const other = `${dir}/./in-cluster.json`;
    for (const [out, option, path] of [
      [flows, '--flows', flows],
      [other, '--cluster', cluster],
    ] as const) {
      const io = captureIO();
      expect(await runCli(['graph', '--flows', flows, '--cluster', cluster, '--out', out], io)).toBe(2);
      expect({ out: io.stdout, err: io.stderr }).toEqual({
        out: '',
        err: `microseg graph: --out ${out} is ${option} ${path}: the graph would be written over its input\n`,
      });
    }
    expect([await readFile(flows), await readFile(cluster)]).toEqual(before);
  });
});

describe('--out paths that cannot be written', () => {
  // Bad usage (exit 2) naming the path and the problem, found before any input is read; was an
  // internal error with a stack trace (exit 3) once the whole run was done.
  const inputs = () => ['--flows', join(dir, 'flows.jsonl.gz'), '--cluster', join(dir, 'cluster.json')];
  const fail = async (args: string[], message: string) => {
    const io = captureIO();
    expect(await runCli(args, io)).toBe(2);
    expect(io.stderr).toBe(`${message}\n`);
    expect(io.stdout).toBe('');
  };

  it('recommend: a file, or a path under one', async () => {
    const file = join(dir, 'out-is-a-file');
    await writeFile(file, 'kept\n');
    await fail(
      ['recommend', ...inputs(), '--out', file],
      `microseg recommend: --out ${file}: cannot write: not a directory`,
    );
    await fail(
      ['recommend', ...inputs(), '--out', join(file, 'sub')],
      `microseg recommend: --out ${join(file, 'sub')}: cannot write: ${file} is not a directory`,
    );
    expect(await readFile(file, 'utf8')).toBe('kept\n');
  });

  it('recommend: a file that cannot be put in place leaves the directory as it was', async () => {
    const out = join(dir, 'out-taken');
    await mkdir(join(out, 'batch.yaml'), { recursive: true });
    await writeFile(join(out, 'report.json'), 'old\n');
    await fail(
      ['recommend', ...inputs(), '--out', out],
      // An earlier report.json is read for its segments' names: this one is not microseg's.
      `warning: ${join(out, 'report.json')} not read: it has no top-level "segments" object in its first 64 MB (not a report of microseg recommend?); segment names are chosen afresh\n` +
        `microseg recommend: --out ${out}: cannot write: batch.yaml: is a directory`,
    );
    expect((await readdir(out)).sort()).toEqual(['batch.yaml', 'report.json']);
    expect(await readFile(join(out, 'report.json'), 'utf8')).toBe('old\n');
  });

  it("recommend: a place taken by a directory, even the last file's, leaves every old file as it was", async () => {
    // Was: the five namespace files replaced with new ones, then report.json failing.
    const out = join(dir, 'out-report-taken');
    const namespaces = ['batch', 'data', 'ingress-nginx', 'monitoring', 'shop'];
    await mkdir(join(out, 'report.json'), { recursive: true });
    for (const ns of namespaces) await writeFile(join(out, `${ns}.yaml`), `OLD-${ns}\n`);
    await fail(
      ['recommend', ...inputs(), '--out', out, '--quiet'],
      `microseg recommend: --out ${out}: cannot write: report.json: is a directory`,
    );
    expect((await readdir(out)).sort()).toEqual(
      [...namespaces.map((ns) => `${ns}.yaml`), 'report.json'].sort(),
    );
    for (const ns of namespaces) expect(await readFile(join(out, `${ns}.yaml`), 'utf8')).toBe(`OLD-${ns}\n`);
  });

  it('graph: a missing directory, a directory, a path under a file', async () => {
    const missing = join(dir, 'no-such-dir', 'graph.json');
    await fail(
      ['graph', ...inputs(), '--out', missing],
      `microseg graph: --out ${missing}: cannot write: no such directory ${join(dir, 'no-such-dir')}`,
    );
    await expect(readdir(join(dir, 'no-such-dir'))).rejects.toThrow(/ENOENT/);
    await fail(
      ['graph', ...inputs(), '--out', dir],
      `microseg graph: --out ${dir}: cannot write: is a directory`,
    );
    const file = join(dir, 'out-is-a-file');
    await writeFile(file, 'kept\n');
    await fail(
      ['graph', ...inputs(), '--out', join(file, 'g.json')],
      `microseg graph: --out ${join(file, 'g.json')}: cannot write: ${file} is not a directory`,
    );
  });

  it('graph: a path ending in / names a directory, and no file is written under its name', async () => {
    // Was written as a file named like the directory meant (`--out graphs/` made a file `graphs`).
    const meant = join(dir, 'graphs-dir');
    await fail(
      ['graph', ...inputs(), '--out', `${meant}/`],
      `microseg graph: --out ${meant}/: cannot write: it ends in /, so it names a directory, not a file`,
    );
    await expect(lstat(meant)).rejects.toThrow(/ENOENT/);
    // A file already there is not replaced either.
    const file = join(dir, 'graph-slash-file');
    await writeFile(file, 'kept\n');
    await fail(
      ['graph', ...inputs(), '--out', `${file}/`],
      `microseg graph: --out ${file}/: cannot write: it ends in /, so it names a directory, not a file`,
    );
    expect(await readFile(file, 'utf8')).toBe('kept\n');
  });

  it('graph: a path ending in /. or /.. names a directory too, and no file is written under a name it resolves to', async () => {
    // `--out graphs/.` resolved to `graphs` and, with no such directory, made a file of that name.
    const meant = join(dir, 'graphs-dot');
    for (const end of ['/.', '/..', '/sub/..']) {
      await fail(
        ['graph', ...inputs(), '--out', `${meant}${end}`],
        `microseg graph: --out ${meant}${end}: cannot write: it ends in ${end.slice(end.lastIndexOf('/'))}, so it names a directory, not a file`,
      );
      await expect(lstat(meant)).rejects.toThrow(/ENOENT/);
    }
    // `/..` resolving to a file (the parent of a missing name) does not replace it.
    const file = join(dir, 'graph-dotdot-file');
    await writeFile(file, 'kept\n');
    await fail(
      ['graph', ...inputs(), '--out', `${file}/missing/..`],
      `microseg graph: --out ${file}/missing/..: cannot write: it ends in /.., so it names a directory, not a file`,
    );
    expect(await readFile(file, 'utf8')).toBe('kept\n');
  });
});

describe('--out is made and proven to hold files before anything is read', () => {
  const inputs = () => ['--flows', join(dir, 'flows.jsonl.gz'), '--cluster', join(dir, 'cluster.json')];
  const root = process.getuid?.() === 0;
  const fail = async (args: string[], message: string) => {
    const io = captureIO();
    expect(await runCli(args, io)).toBe(2);
    expect(io.stderr).toBe(`${message}\n`);
    expect(io.stdout).toBe('');
  };

  it('recommend: a directory under /proc fails at once (mkdir recursive would spin there for ever as root)', async () => {
    // Missing inputs: the message is about --out, so --out was checked before any input was read.
    const none = ['--flows', join(dir, 'no-such.jsonl'), '--cluster', join(dir, 'no-such.json')];
    await fail(
      ['recommend', ...none, '--out', '/proc/microseg-x/y'],
      root
        ? 'microseg recommend: --out /proc/microseg-x/y: cannot write: cannot make the directory /proc/microseg-x: /proc does not allow new directories in it (no such file or directory)'
        : 'microseg recommend: --out /proc/microseg-x/y: cannot write: cannot make the directory /proc/microseg-x: permission denied',
    );
    if (root)
      await fail(
        ['recommend', ...none, '--out', '/proc'],
        'microseg recommend: --out /proc: cannot write: /proc does not allow new files in it (no such file or directory)',
      );
  });

  it('recommend: a symbolic link to a missing path fails before the inputs are read', async () => {
    const link = join(dir, 'dangling-out');
    await symlink(join(dir, 'no-such-target'), link);
    const none = ['--flows', join(dir, 'no-such.jsonl'), '--cluster', join(dir, 'no-such.json')];
    await fail(
      ['recommend', ...none, '--out', link],
      `microseg recommend: --out ${link}: cannot write: is a symbolic link to ${join(dir, 'no-such-target')}, which does not exist`,
    );
    await fail(
      ['recommend', ...none, '--out', join(link, 'sub')],
      `microseg recommend: --out ${join(link, 'sub')}: cannot write: ${link} is a symbolic link to ${join(dir, 'no-such-target')}, which does not exist`,
    );
  });

  it('recommend: the directories made are removed when the run writes nothing, kept when it writes', async () => {
    const made = join(dir, 'made-then-removed', 'policies');
    const io = captureIO();
    const cluster = join(dir, 'no-such.json');
    expect(
      await runCli(
        ['recommend', '--flows', join(dir, 'flows.jsonl.gz'), '--cluster', cluster, '--out', made],
        io,
      ),
    ).toBe(2);
    expect(io.stderr).toContain(cluster);
    await expect(readdir(join(dir, 'made-then-removed'))).rejects.toThrow(/ENOENT/);
    const kept = join(dir, 'made-and-kept', 'policies');
    expect(await runCli(['recommend', ...inputs(), '--out', kept, '--quiet'], captureIO())).toBe(0);
    expect(await readdir(kept)).toContain('report.json');
    // No probe file is left behind.
    expect((await readdir(kept)).filter((f) => f.startsWith('.'))).toEqual([]);
  });

  it('graph: a file under /proc, and a link to a file in a missing directory', async () => {
    await fail(
      ['graph', ...inputs(), '--out', '/proc/microseg-graph.json'],
      root
        ? 'microseg graph: --out /proc/microseg-graph.json: cannot write: /proc does not allow new files in it (no such file or directory)'
        : 'microseg graph: --out /proc/microseg-graph.json: cannot write: /proc: permission denied',
    );
    const link = join(dir, 'graph-link.json');
    await symlink(join(dir, 'no-such-dir-2', 'g.json'), link);
    await fail(
      ['graph', ...inputs(), '--out', link],
      `microseg graph: --out ${link}: cannot write: no such directory ${join(dir, 'no-such-dir-2')}`,
    );
    // A link to a file that does not exist yet, in a directory that does: written through the link.
    const ok = join(dir, 'graph-link-ok.json');
    await symlink(join(dir, 'graph-target.json'), ok);
    expect(await runCli(['graph', ...inputs(), '--out', ok], captureIO())).toBe(0);
    expect(JSON.parse(await readFile(join(dir, 'graph-target.json'), 'utf8'))).toHaveProperty('edges');
  });
});

describe('microseg graph on the demo', () => {
  it('without --format, an --out ending in .dot or .gv is written as DOT, any other as JSON', async () => {
    // `--out graph.dot` wrote JSON into it, which Graphviz cannot read.
    const args = ['graph', '--flows', join(dir, 'flows.jsonl.gz'), '--cluster', join(dir, 'cluster.json')];
    const dot = captureIO();
    expect(await runCli([...args, '--format', 'dot'], dot)).toBe(0);
    const json = captureIO();
    expect(await runCli(args, json)).toBe(0);
    for (const [name, expected] of [
      ['g.dot', dot.stdout],
      ['g.GV', dot.stdout],
      ['g.json', json.stdout],
      ['g.txt', json.stdout],
    ] as const) {
      const out = join(dir, `by-extension-${name}`);
      expect(await runCli([...args, '--out', out], captureIO()), name).toBe(0);
      expect(await readFile(out, 'utf8'), name).toBe(expected);
    }
    // --format given is kept, whatever the name.
    const forced = join(dir, 'forced.dot');
    expect(await runCli([...args, '--format', 'json', '--out', forced], captureIO())).toBe(0);
    expect(await readFile(forced, 'utf8')).toBe(json.stdout);
  });

  it('prints the graph and segments that the pipeline gives, as JSON and as DOT', async () => {
    const { runGraphPipeline } = await import('../../src/pipeline.ts');
    const { toDot } = await import('../../src/graph/build.ts');
    const { stableJson } = await import('../../src/policy/render.ts');
    const flows = join(dir, 'flows.jsonl.gz');
    const cluster = join(dir, 'cluster.json');
    const reader = readFlows([flows]);
    const expected = await runGraphPipeline(snapshotFromObjects(demo.objects, 'demo'), reader);
    const json = captureIO();
    expect(await runCli(['graph', '--flows', flows, '--cluster', cluster], json)).toBe(0);
    // What was read goes to standard error, as recommend reports it.
    expect(json.stderr).toBe(formatIngestStats(reader.stats));
    expect(json.stderr).toMatch(/^read \d+ line\(s\) from 1 source\(s\): \d+ flow\(s\)/);
    expect(json.stdout).toBe(
      stableJson({
        ...expected.graph,
        segments: expected.segments.segments,
        modularity: expected.segments.modularity,
      }),
    );
    expect(expected.graph.edges.length).toBeGreaterThan(10);
    const dot = captureIO();
    const out = join(dir, 'graph.dot');
    expect(
      await runCli(['graph', '--flows', flows, '--cluster', cluster, '--format', 'dot', '--out', out], dot),
    ).toBe(0);
    expect(await readFile(out, 'utf8')).toBe(toDot(expected.graph));
    // The other way round: JSON to a file, DOT to standard output, each the same text.
    const jsonOut = join(dir, 'graph.json');
    expect(
      await runCli(['graph', '--flows', flows, '--cluster', cluster, '--out', jsonOut], captureIO()),
    ).toBe(0);
    expect(await readFile(jsonOut, 'utf8')).toBe(json.stdout);
    const dotOut = captureIO();
    expect(await runCli(['graph', '--flows', flows, '--cluster', cluster, '--format', 'dot'], dotOut)).toBe(
      0,
    );
    expect(dotOut.stdout).toBe(toDot(expected.graph));
    // --out - is standard output too, as '-' is standard input for --flows: no file named '-' is made.
    const dash = captureIO();
    const stray = join(process.cwd(), '-');
    try {
      expect(
        await runCli(
          ['graph', '--flows', flows, '--cluster', cluster, '--format', 'dot', '--out', '-'],
          dash,
        ),
      ).toBe(0);
      expect(dash.stdout).toBe(toDot(expected.graph));
      await expect(lstat(stray)).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      await rm(stray, { force: true });
    }
  });

  it('reports bad lines and empty sources on standard error, and --strict stops at the first', async () => {
    const bad = join(dir, 'graph-bad.jsonl');
    await writeFile(bad, '{"time":0,"src":"shop/a","dst":"10.0.0.1","port":0}\n');
    const empty = join(dir, 'graph-empty.jsonl');
    await writeFile(empty, '');
    const args = ['graph', '--cluster', join(dir, 'cluster.json')];
    for (const f of [join(dir, 'flows.jsonl.gz'), bad, empty]) args.push('--flows', f);
    const io = captureIO();
    expect(await runCli(args, io)).toBe(0);
    expect(io.stderr).toContain(`empty: ${empty}\n`);
    expect(io.stderr).toContain(`bad lines: 1 (bad-value 1)\n  ${bad}:1: port: 0 is out of range 1-65535\n`);
    const strict = captureIO();
    expect(await runCli([...args, '--strict'], strict)).toBe(2);
    expect(strict.stderr).toBe(`microseg graph: ${bad}:1: port: 0 is out of range 1-65535\n`);
    expect(strict.stdout).toBe('');
  });

  it('names bad options', async () => {
    const io = captureIO();
    expect(await runCli(['graph', '--flows', 'f', '--cluster', 'c', '--format', 'svg'], io)).toBe(2);
    expect(io.stderr).toBe('microseg graph: --format must be json or dot, got "svg"\n');
  });
});

describe('files of an earlier run in --out', () => {
  const cluster = () => ['--cluster', join(dir, 'cluster.json')];
  const all = () => ['--flows', join(dir, 'flows.jsonl.gz'), ...cluster()];
  /** The demo's flows but those of the batch namespace: no policy is proposed for it. */
  const noBatch = async () => {
    const file = join(dir, 'flows-no-batch.jsonl');
    await writeLines(
      file,
      demo.lines.filter((l) => !l.includes('batch')),
    );
    return ['--flows', file, ...cluster()];
  };
  const run = async (args: string[]) => {
    const io = captureIO();
    const code = await runCli(['recommend', ...args], io);
    expect(io.stderr).toBe('');
    expect(code).toBe(0);
    return io.stdout.split('\n').filter((l) => /^(policies|removed|kept): /.test(l));
  };
  /** Each entry's text; where a link points, for a symbolic link. */
  const texts = async (out: string) => {
    const got: Record<string, string> = {};
    for (const f of (await readdir(out)).sort()) {
      const path = join(out, f);
      got[f] = (await lstat(path)).isSymbolicLink()
        ? `-> ${await readlink(path)}`
        : await readFile(path, 'utf8');
    }
    return got;
  };
  /** Files a user put there, which microseg never touches: none begins with its header for its name. */
  const mine = {
    'kustomization.yaml': 'resources: [shop.yaml]\n',
    'notes.yaml': '# my notes\n',
    'legacy.yaml': 'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n',
    // microseg's text under another name: a copy to edit.
    'batch-mine.yaml': policyFileHeader('batch') + 'kind: NetworkPolicy\n',
    // Another namespace's header.
    'old.yaml': policyFileHeader('batch'),
  };

  it('a run removes its earlier files it no longer writes, and says so; a re-run removes nothing', async () => {
    const out = join(dir, 'out-earlier');
    expect(await run([...all(), '--out', out])).toEqual([`policies: 17 in 5 namespace(s) written to ${out}`]);
    for (const [f, text] of Object.entries(mine)) await writeFile(join(out, f), text);
    await symlink(join(out, 'batch.yaml'), join(out, 'link.yaml'));
    // As an earlier run with --namespace kube-system would have left it: no run without covers it.
    await writeFile(join(out, 'kube-system.yaml'), policyFileHeader('kube-system') + 'kind: NetworkPolicy\n');
    const kept = 'kept: kube-system.yaml (from an earlier run, for namespaces this run does not cover)';
    const first = await texts(out);
    // The same command again: nothing removed, every file the same bytes.
    expect(await run([...all(), '--out', out])).toEqual([
      `policies: 17 in 5 namespace(s) written to ${out}`,
      kept,
    ]);
    expect(await texts(out)).toEqual(first);
    const args = await noBatch();
    expect(await run([...args, '--out', out])).toEqual([
      `policies: 15 in 4 namespace(s) written to ${out}`,
      'removed: batch.yaml (no longer proposed)',
      kept,
    ]);
    // The user's files, and a link to the file removed, are left as they were.
    const after = await texts(out);
    expect(Object.keys(after)).toEqual(Object.keys(first).filter((f) => f !== 'batch.yaml'));
    for (const f of [...Object.keys(mine), 'link.yaml', 'kube-system.yaml'])
      expect(after[f], f).toBe(first[f]);
    // Run again: nothing more to remove.
    expect(await run([...args, '--out', out])).toEqual([
      `policies: 15 in 4 namespace(s) written to ${out}`,
      kept,
    ]);
  });

  it('a run narrowed by --namespace keeps the files of other namespaces and names them', async () => {
    const out = join(dir, 'out-narrowed');
    await run([...all(), '--out', out]);
    for (const [f, text] of Object.entries(mine)) await writeFile(join(out, f), text);
    const first = await texts(out);
    expect(await run([...all(), '--out', out, '--namespace', 'shop'])).toEqual([
      `policies: 7 in 1 namespace(s) written to ${out}`,
      'kept: batch.yaml, data.yaml, ingress-nginx.yaml, monitoring.yaml (from an earlier run, for namespaces this run does not cover)',
    ]);
    const after = await texts(out);
    expect(Object.keys(after)).toEqual(Object.keys(first));
    for (const f of Object.keys(first))
      if (f !== 'report.json' && f !== 'shop.yaml') expect(after[f], f).toBe(first[f]);
    // A namespace it names and proposes nothing for (no flow, no default deny) loses its file.
    expect(
      await run([
        ...(await noBatch()),
        ...['--out', out, '--namespace', 'shop', '--namespace', 'batch', '--no-default-deny'],
      ]),
    ).toEqual([
      `policies: 6 in 1 namespace(s) written to ${out}`,
      'removed: batch.yaml (no longer proposed)',
      'kept: data.yaml, ingress-nginx.yaml, monitoring.yaml (from an earlier run, for namespaces this run does not cover)',
    ]);
    for (const [f, text] of Object.entries(mine)) expect(await readFile(join(out, f), 'utf8'), f).toBe(text);
  });

  it('knows its earlier files checked out with CRLF line ends or saved with a byte order mark', async () => {
    // A policy repository checked out on Windows (git's core.autocrlf) or saved by an editor that adds
    // a UTF-8 byte order mark: the header is still recommend's, so a stale file must still go.
    const out = join(dir, 'out-earlier-crlf');
    await run([...all(), '--out', out]);
    const batch = await readFile(join(out, 'batch.yaml'), 'utf8');
    await writeFile(join(out, 'batch.yaml'), batch.replaceAll('\n', '\r\n'));
    const data = await readFile(join(out, 'data.yaml'), 'utf8');
    await writeFile(join(out, 'old.yaml'), '\ufeff' + data.replaceAll('data', 'old'));
    // Another namespace's header, with CRLF too, is still not microseg's for this file.
    const mineCrlf = { 'notes.yaml': policyFileHeader('batch').replace('\n', '\r\n') };
    for (const [f, text] of Object.entries(mineCrlf)) await writeFile(join(out, f), text);
    const args = await noBatch();
    const io = captureIO();
    const withOld = join(dir, 'cluster-old.json');
    const snapshot = JSON.parse(await readFile(join(dir, 'cluster.json'), 'utf8')) as { items: object[] };
    snapshot.items.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'old' } });
    await writeFile(withOld, JSON.stringify(snapshot));
    expect(await runCli(['recommend', ...args.slice(0, 2), '--cluster', withOld, '--out', out], io)).toBe(0);
    expect(io.stdout.split('\n').filter((l) => /^(removed|kept): /.test(l))).toEqual([
      'removed: batch.yaml, old.yaml (no longer proposed)',
    ]);
    expect((await readdir(out)).sort()).toEqual([
      'data.yaml',
      'ingress-nginx.yaml',
      'monitoring.yaml',
      'notes.yaml',
      'report.json',
      'shop.yaml',
    ]);
    expect(await readFile(join(out, 'notes.yaml'), 'utf8')).toBe(mineCrlf['notes.yaml']);
  });

  it('a failed write removes nothing', async () => {
    const out = join(dir, 'out-earlier-failed');
    await run([...all(), '--out', out]);
    await rm(join(out, 'report.json'));
    const before = await texts(out);
    await mkdir(join(out, 'report.json'));
    const io = captureIO();
    expect(await runCli(['recommend', ...(await noBatch()), '--out', out], io)).toBe(2);
    expect(io.stderr).toBe(`microseg recommend: --out ${out}: cannot write: report.json: is a directory\n`);
    await rm(join(out, 'report.json'), { recursive: true });
    expect(await texts(out)).toEqual(before);
  });
});
