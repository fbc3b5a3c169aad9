/**
 * The documentation against the code: every option a command parses is in its --help and every one its
 * --help lists is parsed; the controller's flag table in docs/controller.md lists exactly its flags;
 * the arguments the shipped Deployment passes pass the controller's checks; quoted examples and error
 * messages are what the code gives. Cheap: nothing here reaches a cluster or reads a large input.
 */
import { readFileSync } from 'node:fs';
import request from 'supertest';
import { parseAllDocuments } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { captureIO, EXIT } from '../../src/cli/io.ts';
import { COMMANDS, runCli } from '../../src/cli/main.ts';
import { parseSegmentationSpec } from '../../src/controller/api.ts';
import { controllerViewSource, NOT_LEADER_GRAPH } from '../../src/controller/view.ts';
import { Condition, Phase, Reason } from '../../src/controller/reasons.ts';
import { parseIsolationSpec, PHASES as ISOLATION_PHASES } from '../../src/isolate/api.ts';
import { isolationCRD } from '../../src/isolate/crd.ts';
import { createApp } from '../../src/server/app.ts';
import { PARSE_HEAP_MB, PARSE_QUEUE_LIMIT, PARSE_TIME_LIMIT_MS } from '../../src/server/parse.ts';
import { AUDIT_AT_ONCE, AUDIT_QUEUE_LIMIT } from '../../src/server/turns.ts';
import { analysisSource } from '../../src/server/source.ts';
import type { ViewSource } from '../../src/server/types.ts';
import { fixtureAnalysis } from '../web/helpers.ts';
import { LABELLED_KIND, WORKLOAD_LABEL } from '../../src/identity/index.ts';
import { WORKLOAD_KINDS as IDENTITY_WORKLOAD_KINDS } from '../../src/identity/types.ts';
import { isolationForWorkload } from '../../src/isolate/ui.ts';
import { WORKLOAD_ANNOTATION } from '../../src/policy/index.ts';
import { parseCronSchedule } from '../../src/policy/cron.ts';
import { cronJobsNotRunSince } from '../../src/policy/cronjobs.ts';
import { isDefaultDeny } from '../../src/policy/render.ts';
import { resolveWorkload, snapshotFromText } from '../../src/verify/load.ts';
import { crdSchema, schemaProblems } from '../crd-schema.ts';
import { documentedExamples } from '../docs-examples.ts';

const ROOT = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, ROOT), 'utf8');
const oneLine = (path: string) => read(path).replace(/\s+/g, ' ');

async function cli(args: string[]) {
  const io = captureIO();
  const code = await runCli(args, io);
  return { code, out: io.stdout, err: io.stderr };
}

/** The long flags named in a --help text's option list (from its `options:` line on). */
function helpFlags(help: string): string[] {
  const at = help.indexOf('\noptions:\n');
  if (at < 0) throw new Error('the help has no options: section');
  const flags = new Set<string>();
  for (const line of help.slice(at).split('\n')) {
    // Only where an option is introduced: at the start of a line of the list, after `-n, `, or after a
    // comma of `--from, --to`; not where the description of another names it.
    const m = /^ {2}(?:-[a-z], )?(--[a-z][a-z0-9-]*(?:, --[a-z][a-z0-9-]*)*)/.exec(line);
    if (m) for (const f of m[1]!.split(', ')) flags.add(f);
  }
  // --help, which every command takes, is listed by some only.
  flags.delete('--help');
  return [...flags].sort();
}

describe('every command: the options --help lists are the options it parses', () => {
  for (const name of Object.keys(COMMANDS)) {
    it(name, async () => {
      const mod = (await COMMANDS[name]!.load()) as unknown as { OPTIONS: Record<string, unknown> };
      const parsed = Object.keys(mod.OPTIONS)
        .filter((k) => k !== 'help')
        .map((k) => `--${k}`)
        .sort();
      const r = await cli([name, '--help']);
      expect(r.code).toBe(EXIT.ok);
      expect(helpFlags(r.out)).toEqual(parsed);
    });
  }
});

describe('docs/controller.md', () => {
  it("lists in its flag table exactly the controller's flags", async () => {
    const mod = (await COMMANDS.controller!.load()) as unknown as { OPTIONS: Record<string, unknown> };
    const doc = read('docs/controller.md');
    const table = doc.slice(doc.indexOf('| Flag | Default | Meaning |'), doc.indexOf('\nBad flags exit'));
    const documented = new Set<string>();
    for (const row of table.split('\n').slice(2))
      for (const m of (row.split(' | ')[0] ?? '').matchAll(/`(--[a-z][a-z0-9-]*)/g)) documented.add(m[1]!);
    const parsed = Object.keys(mod.OPTIONS)
      .filter((k) => k !== 'help')
      .map((k) => `--${k}`);
    expect([...documented].sort()).toEqual(parsed.sort());
  });

  it('says in which order the exported proposal lists its policies, as /proposals?format=yaml gives them', async () => {
    const app = createApp(analysisSource((await fixtureAnalysis()).analysis));
    const yaml = (await request(app).get('/api/v1/proposals?format=yaml').expect(200)).text;
    const docs = parseAllDocuments(yaml).map(
      (d) => d.toJS() as { metadata: { namespace: string; name: string }; spec: object },
    );
    const key = (p: (typeof docs)[number]) => `${p.metadata.namespace}/${p.metadata.name}`;
    // By namespace and name, but each namespace's default deny after its other policies.
    const rank = (p: (typeof docs)[number]) =>
      `${p.metadata.namespace}/${isDefaultDeny(p) ? 1 : 0}/${p.metadata.name}`;
    expect(docs.some((p) => isDefaultDeny(p))).toBe(true);
    expect(docs.map(key)).toEqual([...docs].sort((a, b) => (rank(a) < rank(b) ? -1 : 1)).map(key));
    expect(docs.map(key)).not.toEqual(docs.map(key).sort());
    // The GitOps recipe commits that file: it says so, not name order alone.
    expect(oneLine('docs/controller.md')).toContain(
      "(keys sorted, policies by namespace and name, each namespace's default deny after its other policies)",
    );
  });
});

describe('manifests/deployment.yaml', () => {
  it("passes the controller arguments its checks take, up to finding the cluster (the test's own kubeconfig, missing)", async () => {
    const docs = parseAllDocuments(read('manifests/deployment.yaml')).map((d) => d.toJS() as unknown);
    const deployment = docs[0] as {
      spec: { template: { spec: { containers: { name: string; args: string[] }[] } } };
    };
    const args = deployment.spec.template.spec.containers.find((c) => c.name === 'controller')!.args;
    expect(args[0]).toBe('controller');
    const kubeconfig = '/nonexistent/microseg-docs-test/kubeconfig';
    const r = await cli([...args, '--kubeconfig', kubeconfig]);
    // Each flag before the kubeconfig is checked and taken; the only bad usage is the cluster not found.
    expect(r.code).toBe(EXIT.usage);
    expect(r.out).toBe('');
    const lines = r.err.trimEnd().split('\n');
    expect(lines.at(-1)).toBe(`microseg controller: --kubeconfig ${kubeconfig}: no such file`);
    // The rest are the start log's JSON lines (the push token's optional Secret is not mounted here).
    for (const line of lines.slice(0, -1)) expect(JSON.parse(line)).toMatchObject({ level: 'warn' });
  });
});

describe('docs/isolation.md', () => {
  it('releases, in its CLI example, the Isolation that `isolate shop/cart-1 --print` names', async () => {
    const r = await cli(['isolate', 'shop/cart-1', '--reason', 'x', '--print', '--output', 'json']);
    expect(r.code).toBe(EXIT.ok);
    const name = (JSON.parse(r.out) as { metadata: { name: string } }).metadata.name;
    const doc = read('docs/isolation.md');
    expect(doc).toContain('microseg isolate shop/cart-1 --reason "..." --print');
    expect(doc).toContain(`microseg release shop/${name} --wait`);
  });
  it("says that the page's Isolate button on a CronJob writes what --include-future does", () => {
    const page = isolationForWorkload('shop/CronJob/backup', 'r', 'alice');
    expect(page.spec?.target).toEqual({ workload: { kind: 'CronJob', name: 'backup', includeFuture: true } });
    expect(oneLine('docs/isolation.md')).toContain(
      'the Isolation `microseg isolate` would write, for a CronJob the one `--include-future` writes, as each of its runs makes new pods',
    );
  });
});

describe('docs/isolation.md: the Isolation object', () => {
  const doc = read('docs/isolation.md').replace(/\s+/g, ' ');
  it('lists the phases the controller writes', () => {
    const line = /- `phase`: ([^;]*);/.exec(doc)![1]!;
    expect([...line.matchAll(/`([A-Za-z]+)`/g)].map((m) => m[1])).toEqual([...ISOLATION_PHASES]);
  });
  it("names the CRD's printer columns, those of -o wide apart", () => {
    const cols = (
      isolationCRD() as {
        spec: { versions: { additionalPrinterColumns: { name: string; priority?: number }[] }[] };
      }
    ).spec.versions[0]!.additionalPrinterColumns;
    const list = (names: string[]) => `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;
    const shown = cols.filter((c) => !c.priority).map((c) => c.name);
    const wide = cols.filter((c) => c.priority).map((c) => c.name);
    expect(doc).toContain(
      `\`kubectl get iso\` shows the columns ${list(shown)}; with \`-o wide\` it also shows ${wide.join(', ')}.`,
    );
  });
});

describe('docs/api.md', () => {
  let source: ViewSource;
  beforeAll(async () => {
    const fx = await fixtureAnalysis();
    source = analysisSource(fx.analysis, { title: 'fixture', mode: 'demo', audits: [fx.audit] });
  });

  // [request, status, the message the doc quotes]
  const cases: [string, number, string][] = [
    ['/api/v1/graph?view=tree', 400, 'view must be one of auto, full, segments (got "tree")'],
    ['/api/v1/graph?view=segments&expand=nope', 400, 'unknown segment "nope"'],
    ['/api/v1/graph?audit=other', 404, 'no audit named "other"'],
    ['/api/v1/graph?view=full&view=segments', 400, 'query parameter "view" must be given once'],
    ['/api/v1/proposals?format=xml', 400, 'format must be json or yaml (got "xml")'],
    [
      '/api/v1/search?q=cart&limit=0x2',
      400,
      'limit must be a whole number from 1 to 500 in decimal digits (got "0x2")',
    ],
    ['/api/v1/search', 400, 'query parameter "q" is required'],
    ['/api/v1/nodes', 400, 'query parameter "id" is required'],
    ['/api/v1/isolations', 404, 'this source has no isolation data'],
    ['/api/v1/unobserved?limit=1&limit=2', 400, 'query parameter "limit" must be given once'],
    [
      '/api/v1/unobserved?namespace=Shop',
      400,
      'namespace must be a namespace name: at most 63 lowercase letters, digits and "-", starting and ending with a letter or digit (got "Shop")',
    ],
    [
      '/api/v1/unobserved?limit=0',
      400,
      'limit must be a whole number from 1 to 500 in decimal digits (got "0")',
    ],
    [
      '/api/v1/unobserved?offset=-1',
      400,
      'offset must be a whole number, 0 or more, in decimal digits (got "-1")',
    ],
    ['/api/v2/graph', 404, 'no such API endpoint'],
  ];
  it.each(cases)('GET %s: %i and the message the doc quotes', async (url, status, error) => {
    const res = await request(createApp(source)).get(url);
    expect([res.status, res.body]).toEqual([status, { error }]);
    // The doc wraps lines: compare with its text on one line.
    expect(read('docs/api.md').replace(/\s+/g, ' ')).toContain(error);
  });

  it('POST /api/v1/audit: the errors the doc quotes', async () => {
    const fx = await fixtureAnalysis();
    const app = createApp(
      analysisSource(fx.analysis, { title: 'fixture', mode: 'demo', snapshot: fx.snapshot }),
    );
    const noName = JSON.stringify({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { namespace: 'shop' },
      spec: { podSelector: {} },
    });
    const configMap = 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: shop}\n';
    const policy =
      'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: shop}\nspec: {podSelector: {}}\n';
    const cases: [string, string, number, string][] = [
      [
        '',
        '',
        400,
        'body is empty: send the NetworkPolicies to audit as JSON or YAML (one object, a List, or YAML documents)',
      ],
      [
        '',
        configMap,
        400,
        'body holds no NetworkPolicy (networking.k8s.io/v1) to audit, nor AdminNetworkPolicy, BaselineAdminNetworkPolicy, ClusterNetworkPolicy',
      ],
      ['', noName, 400, 'body: item 1 (NetworkPolicy): metadata.name must be a non-empty string'],
      ['?prune=yes', policy, 400, 'prune must be true or false (got "yes")'],
      ['', 'x'.repeat(8 * 1024 * 1024 + 1), 413, 'body is larger than 8192 KiB'],
    ];
    for (const [query, body, status, error] of cases) {
      const res = await request(app)
        .post(`/api/v1/audit${query}`)
        .set('Content-Type', 'application/yaml')
        .send(body);
      expect([res.status, res.body]).toEqual([status, { error }]);
      // The doc gives the value prune was refused for as "…".
      expect(oneLine('docs/api.md')).toContain(error.replace('(got "yes")', '(got "…")'));
    }
    const none = await request(createApp(analysisSource(fx.analysis, { title: 'fixture', mode: 'demo' })))
      .post('/api/v1/audit')
      .send(policy);
    expect([none.status, none.body]).toEqual([404, { error: 'this source cannot audit policies' }]);
    expect(oneLine('docs/api.md')).toContain('`404` `this source cannot audit policies`');
    // The parsing thread's cap, as test/web/parse.test.ts finds its refusal worded (there with 24 MB).
    expect(oneLine('docs/api.md')).toContain(`heap is capped at ${PARSE_HEAP_MB} MB`);
    expect(oneLine('docs/api.md')).toContain(
      `\`400\` \`body: too large to parse: it needs more than the parser's ${PARSE_HEAP_MB} MB of memory\``,
    );
    // The parsing thread's time limit, as test/web/audit-limits.test.ts finds its refusal worded
    // (there with 1.5 s).
    const seconds = PARSE_TIME_LIMIT_MS / 1000;
    expect(oneLine('docs/api.md')).toContain(
      `body not parsed within ${seconds} s (an 8 MiB YAML body takes a few) is refused and the thread stopped`,
    );
    expect(oneLine('docs/api.md')).toContain(
      `\`400\` \`body: too slow to parse: not parsed within the parser's ${seconds} s\``,
    );
    // The queue's limit, as test/web/audit-api.test.ts finds its refusal worded.
    expect(oneLine('docs/api.md')).toContain(
      `While ${PARSE_QUEUE_LIMIT} bodies wait to be parsed, another is refused for now: \`503\` \`${PARSE_QUEUE_LIMIT} policy sets are waiting to be parsed already; send this one again in a few seconds\`, with \`Retry-After: 5\``,
    );
    // The line's limit, as test/web/audit-api.test.ts finds its refusal worded.
    expect(AUDIT_AT_ONCE).toBe(1);
    expect(oneLine('docs/api.md')).toContain(
      `While ${AUDIT_QUEUE_LIMIT} policy sets wait for their turn, another is refused for now: \`503\` \`${AUDIT_QUEUE_LIMIT} policy sets are waiting to be audited already (one is audited at a time); send this one again in a few seconds\`, with \`Retry-After: 5\``,
    );
  });

  it('names in the non-leader table every endpoint a replica that does not lead answers 503 for the graph', async () => {
    const app = createApp(
      controllerViewSource({
        analyses: () => [],
        leadership: () => ({ leading: false, unrestored: () => [] }),
        segmentations: () => [],
      }),
    );
    // Every GET endpoint, in the order the table names them.
    const paths = [
      '/info',
      '/audits',
      '/proposals',
      '/graph',
      '/graph/export',
      '/segments',
      '/search',
      '/unobserved',
      '/nodes',
    ];
    const query: Record<string, string> = { '/search': '?q=db', '/nodes': '?id=shop/Deployment/db' };
    const answered: string[] = [];
    for (const path of paths) {
      const res = await request(app).get(`/api/v1${path}${query[path] ?? ''}`);
      if (res.status === 503 && (res.body as { error: string }).error === NOT_LEADER_GRAPH)
        answered.push(path);
    }
    const row = read('docs/api.md')
      .split('\n')
      .find((l) => l.startsWith('| `/graph`'))!;
    expect(row).toContain(`\`503\` \`${NOT_LEADER_GRAPH}\``);
    const named = [...row.split(' | ')[0]!.matchAll(/`([^`]+)`/g)].map((m) => m[1]);
    expect(named).toEqual(answered);
    // In every mode, as status.unobserved counts them (test/controller/view.test.ts).
    expect(oneLine('docs/api.md')).toContain(
      "in the controller, those of every Segmentation's live analysis, in Audit and Enforce too",
    );
  });
});

describe('docs/crds.md', () => {
  interface Schema {
    type?: string;
    required?: string[];
    default?: string | number | boolean;
    enum?: string[];
    properties?: Record<string, Schema>;
  }
  interface Crd {
    spec: {
      versions: { schema: { openAPIV3Schema: Schema }; additionalPrinterColumns: { name: string }[] }[];
    };
  }
  const crd = (file: string) => parseAllDocuments(read(`crds/${file}`))[0]!.toJS() as Crd;
  const doc = read('docs/crds.md');

  it("documents every field of the Segmentation spec, with the schema's default, and no other", () => {
    const spec = crd('microseg.dev_segmentations.yaml').spec.versions[0]!.schema.openAPIV3Schema.properties!
      .spec!;
    // The fields a user sets: the top ones, and those of the sections (learning, audit, ...), not the
    // inside of a label selector.
    const schema = new Map<string, string>();
    for (const [k, v] of Object.entries(spec.properties!)) {
      if (v.type === 'object' && k !== 'namespaceSelector')
        for (const [k2, v2] of Object.entries(v.properties!))
          schema.set(`${k}.${k2}`, v2.default === undefined ? '' : String(v2.default));
      else schema.set(k, v.default === undefined ? 'required' : String(v.default));
    }
    const table = doc.slice(doc.indexOf('### spec fields'), doc.indexOf('### How Enforce is gated'));
    const documented = new Map<string, string>();
    for (const row of table.split('\n').filter((l) => l.startsWith('| `'))) {
      const [field, dflt] = row.split(' | ').map((c) => c.replace(/^\| /, '').replace(/`/g, ''));
      documented.set(field!, dflt!);
    }
    expect(Object.fromEntries(documented)).toEqual(Object.fromEntries(schema));
    expect(spec.required).toEqual(['namespaceSelector']);
  });

  it('promotion.automatic: the CRD says, as crds.md does, that a suspended CronJob holds no promotion back', () => {
    // A suspended CronJob that never ran is not among those the promotion to Enforce waits for.
    const never = { spec: {}, status: {} };
    const lookup = (suspend: boolean) => () => ({ ...never, spec: { suspend } });
    expect(cronJobsNotRunSince(['shop/CronJob/backup'], lookup(false), 0, { finished: true })).toEqual([
      'shop/CronJob/backup',
    ]);
    expect(cronJobsNotRunSince(['shop/CronJob/backup'], lookup(true), 0, { finished: true })).toEqual([]);
    const automatic = crd('microseg.dev_segmentations.yaml').spec.versions[0]!.schema.openAPIV3Schema
      .properties!.spec!.properties!.promotion!.properties!.automatic as Schema & { description: string };
    expect(automatic.description).toContain(
      'every CronJob in scope that made no flow and is not suspended has finished a run since the Segmentation was created',
    );
    expect(doc).toContain('a suspended one is not waited for');
  });

  it('lists exactly the condition types, reasons and phases the controller writes', () => {
    const section = doc.slice(doc.indexOf('### Conditions and reasons'), doc.indexOf('### kubectl get'));
    const names = (text: string) => [...text.matchAll(/`([A-Z][A-Za-z]+)`/g)].map((m) => m[1]!);
    const rows = section.split('\n').filter((l) => l.startsWith('| `'));
    const conditions = rows.map((r) => names(r.split(' | ')[0]!)[0]);
    const reasons = rows.flatMap((r) => names(r.split(' | ')[2]!));
    const eventOnly = section.slice(section.indexOf('Event-only reasons:'));
    // The list ends at its first full stop: `NoNamespaces`. `PromotionDue` (Normal) says ...
    reasons.push(...names(eventOnly.slice(0, eventOnly.search(/`\.\s/) + 1)));
    expect(conditions).toEqual(Object.values(Condition));
    expect([...new Set(reasons)].sort()).toEqual(Object.values(Reason).sort());
    const phaseRow = doc.split('\n').find((l) => l.startsWith('| `phase` |'))!;
    expect(names(phaseRow).filter((n) => n !== 'Enforce')).toEqual(Object.values(Phase));
    // kubectl explain says the same.
    const status = crd('microseg.dev_segmentations.yaml').spec.versions[0]!.schema.openAPIV3Schema.properties!
      .status! as Schema & { description?: string; properties: Record<string, { description: string }> };
    expect(status.properties.phase!.description).toBe(
      `One-word summary: ${Object.values(Phase).slice(0, -1).join(', ')} or ${Object.values(Phase).at(-1)}.`,
    );
    expect(status.properties.conditions!.description).toBe(
      `Conditions: ${Object.values(Condition).join(', ')}.`,
    );
  });

  it("shows the printer columns of each kind's kubectl get", () => {
    const header = (file: string) =>
      ['NAME', ...crd(file).spec.versions[0]!.additionalPrinterColumns.map((c) => c.name.toUpperCase())].join(
        ' +',
      );
    expect(doc).toMatch(new RegExp(`\\n${header('microseg.dev_segmentations.yaml')}\\n`));
    expect(doc).toMatch(new RegExp(`\\n${header('microseg.dev_proposednetworkpolicies.yaml')}\\n`));
  });
});

describe('the Segmentations and Isolations the documents show', () => {
  // The API server takes them too: test/k8s/controller-install.test.ts.
  const examples = documentedExamples();

  it('are found where the documents show them', () => {
    expect(examples.map((e) => `${e.file}: ${e.kind} ${e.name}`).sort()).toEqual([
      'README.md: Segmentation shop',
      'docs/controller.md: Segmentation shop',
      'docs/crds.md: Segmentation shop',
      'docs/isolation.md: Isolation cart-shell',
    ]);
  });

  const schemas: Record<string, string> = {
    Segmentation: 'microseg.dev_segmentations.yaml',
    Isolation: 'microseg.dev_isolations.yaml',
  };
  it.each(examples.map((e) => [`${e.file}: ${e.kind} ${e.name}`, e] as const))(
    "%s passes the CRD schema and the controller's checks",
    (_, e) => {
      expect(schemaProblems(crdSchema(schemas[e.kind]!), e.object)).toEqual([]);
      const spec = e.object.spec;
      const parsed =
        e.kind === 'Segmentation' ? parseSegmentationSpec(e.name, spec) : parseIsolationSpec(e.name, spec);
      expect(parsed.ok ? [] : parsed.problems).toEqual([]);
    },
  );
});

describe('workloads the microseg.dev/workload label and custom resources name', () => {
  it.each(['explain', 'blast-radius'])('%s --help lists every kind its workload ends take', async (name) => {
    const help = (await cli([name, '--help'])).out.replace(/\s+/g, ' ');
    for (const kind of [...IDENTITY_WORKLOAD_KINDS, LABELLED_KIND])
      expect(help).toMatch(new RegExp(`\\b${kind}\\b`));
    expect(help).toContain('custom resource');
  });

  it("docs/api.md quotes the page's refusal of a kind it cannot isolate", () => {
    let message = '';
    try {
      isolationForWorkload('shop/Widget/w', undefined, 'alice');
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/^cannot isolate shop\/Widget\/w: /);
    expect(oneLine('docs/api.md')).toContain(`(\`${message}\`)`);
  });

  it('docs/crds.md tells the policy annotation from the pod label of the same key', () => {
    expect(WORKLOAD_ANNOTATION).toBe(WORKLOAD_LABEL);
    const row = read('docs/crds.md')
      .split('\n')
      .find((l) => l.startsWith(`| \`${WORKLOAD_ANNOTATION}\` | annotation |`))!;
    expect(row).toContain('Not the label of the same key, which you set on a pod template');
    expect(oneLine('README.md')).toContain(
      "the label is yours, on pod templates; the annotation is microseg's, on policies",
    );
  });

  // Two labelled Deployments with no pod, the larger key first; a Deployment whose pod's label names
  // another workload.
  const snap = snapshotFromText(
    JSON.stringify({
      kind: 'List',
      items: [
        ...['b', 'a'].map((n, i) => ({
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: { name: n, namespace: 'web' },
          spec: {
            selector: { matchLabels: { rev: n } },
            template: {
              metadata: { labels: { rev: n, [WORKLOAD_LABEL]: 'hello' } },
              spec: {
                containers: [{ name: 'c', image: 'x', ports: [{ containerPort: 8080 + i, name: 'http' }] }],
              },
            },
          },
        })),
        {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: {
            name: 'old-abc-1',
            namespace: 'web',
            labels: { app: 'old', 'pod-template-hash': 'abc', [WORKLOAD_LABEL]: 'other' },
            ownerReferences: [
              { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'old-abc', uid: 'u1', controller: true },
            ],
          },
          spec: { containers: [{ name: 'c', image: 'x' }] },
          status: { podIP: '10.0.0.9', phase: 'Running' },
        },
      ],
    }),
    'test',
  );

  it("semantics.md: a labelled workload with no pod takes the template of the smallest key's object", () => {
    const w = resolveWorkload(snap, 'web/Workload/hello', '--to');
    expect(JSON.stringify(w.endpoint)).toContain('"rev":"a"');
    for (const doc of ['docs/semantics.md', 'README.md'])
      expect(oneLine(doc)).toContain('of several the one of the smallest `namespace/Kind/name`');
  });

  it('semantics.md, isolation.md, README: a target naming an owner takes its pods whatever their label', () => {
    expect(resolveWorkload(snap, 'web/Deployment/old', '--from').pods).toEqual(['web/old-abc-1']);
    expect(oneLine('docs/semantics.md')).toContain(
      'a workload an owner names takes the pods it owns whatever workload their `microseg.dev/workload` label names',
    );
    expect(oneLine('docs/isolation.md')).toContain(
      "its owners' pods, whatever workload the `microseg.dev/workload` label of a pod names",
    );
    expect(oneLine('README.md')).toContain(
      'still takes the pods the owner has, whatever workload their label names',
    );
  });
});

describe('microseg audit, CronJob schedules and the benchmarks in the docs', () => {
  it("README's npm run bench row names every benchmark --only takes", () => {
    const names = [...read('bench/run.ts').matchAll(/want\('([a-z]+)'\)/g)].map((m) => m[1]!);
    const row = read('README.md')
      .split('\n')
      .find((l) => l.startsWith('| `npm run bench` |'))!;
    const listed = /`--only ([a-z,]+)`/.exec(row)![1]!.split(',');
    expect([...listed].sort()).toEqual([...new Set(names)].sort());
  });

  it('names both zone prefixes a schedule may start with, as cron.ts reads them', () => {
    for (const prefix of ['TZ', 'CRON_TZ']) {
      const s = parseCronSchedule(`${prefix}=Europe/Berlin 0 3 * * *`);
      expect(typeof s !== 'string' && s.kind === 'fields' && s.timeZone).toBe('Europe/Berlin');
    }
    for (const doc of ['README.md', 'docs/api.md', 'docs/controller.md', 'docs/crds.md', 'docs/web.md']) {
      expect(oneLine(doc), doc).not.toContain('a `TZ=` prefix');
      expect(oneLine(doc), doc).toMatch(/`TZ=` or `CRON_TZ=` prefix|`TZ=`\/`CRON_TZ=` prefix/);
    }
  });

  it("says the node traffic audit does not replay is any node's, not only a pod's own node's", async () => {
    const help = (await cli(['audit', '--help'])).out.replace(/\s+/g, ' ');
    for (const [name, text] of [
      ['audit --help', help],
      ['README.md', oneLine('README.md')],
      ['docs/api.md', oneLine('docs/api.md')],
    ]) {
      expect(text, name).not.toMatch(/from a node to (its own|its) pods/);
      expect(text, name).toContain('from a node to pods');
    }
  });
});

describe("every command's --help: exit codes and repeatable options", () => {
  /** The codes an `exit codes:` text lists: the number starting it and each one after a `;`. */
  const codesOf = (text: string) =>
    [...text.replace(/\s+/g, ' ').matchAll(/(?:^|;) ?(\d) /g)].map((m) => Number(m[1]));
  /** README's table of exit codes by command: command name to the text of its exit codes. */
  const readmeCodes = () => {
    const rows = new Map<string, string>();
    const doc = read('README.md');
    const table = doc.slice(doc.indexOf('| command | exit codes |'));
    for (const line of table.split('\n').slice(2)) {
      const m = /^\| `([a-z-]+)` \| (.*) \|$/.exec(line);
      if (!m) break;
      rows.set(m[1]!, m[2]!);
    }
    return rows;
  };

  it('README has a row of exit codes for each command, and for no other', () => {
    expect([...readmeCodes().keys()].sort()).toEqual(Object.keys(COMMANDS).sort());
  });

  for (const name of Object.keys(COMMANDS)) {
    it(`${name}: lists its exit codes after a blank line, those of README's table`, async () => {
      const help = (await cli([name, '--help'])).out;
      const at = help.indexOf('\n\nexit codes: ');
      expect(at, `${name} --help has no "exit codes:" after a blank line`).toBeGreaterThan(0);
      const listed = codesOf(help.slice(at + '\n\nexit codes: '.length));
      expect(listed).toEqual(codesOf(readmeCodes().get(name) ?? ''));
      expect(listed).toContain(0);
      expect(listed).toContain(2);
    });

    it(`${name}: its usage shows each repeatable option it names as repeatable`, async () => {
      const mod = (await COMMANDS[name]!.load()) as unknown as {
        OPTIONS: Record<string, { multiple?: boolean }>;
      };
      const help = (await cli([name, '--help'])).out;
      const usage = help.slice(0, help.indexOf('\n\n'));
      for (const [option, spec] of Object.entries(mod.OPTIONS)) {
        if (spec.multiple !== true || !new RegExp(`--${option}\\b`).test(usage)) continue;
        expect(usage, `--${option}`).toMatch(new RegExp(`\\[--${option} [^\\] ]+ \\.\\.\\.\\]`));
      }
    });
  }
});
