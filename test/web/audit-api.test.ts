/**
 * `POST /api/v1/audit`: a set of NetworkPolicies (JSON or YAML, as a repository or `kubectl kustomize`
 * gives it) replayed against the observed traffic: which observed connections applying them would block.
 */
import { request as httpRequest } from 'node:http';
import type { ClientRequest, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BroadcastChannel } from 'node:worker_threads';
import { gzipSync } from 'node:zlib';
import request from 'supertest';
import { beforeAll, describe, expect, it } from 'vitest';
import type { NetworkPolicy } from '../../src/model/k8s.ts';
import { policiesToYaml } from '../../src/policy/render.ts';
import { createApp } from '../../src/server/app.ts';
import { ObjectsParser, PARSE_QUEUE_LIMIT, readAuditBody } from '../../src/server/parse.ts';
import { StepsAbandoned } from '../../src/server/slices.ts';
import { AUDIT_QUEUE_LIMIT, Turns } from '../../src/server/turns.ts';
import { analysisSource } from '../../src/server/source.ts';
import type { ViewSource } from '../../src/server/types.ts';
import { backup, fixtureAnalysis, listen } from './helpers.ts';
import { denyFromShop, fixtureFlows, fixtureSnapshot } from '../core/fixture.ts';
import { runPipeline } from '../../src/pipeline.ts';
import { auditPolicySet } from '../../src/policy/audit.ts';
import { ANNOUNCE_CHANNEL } from './announcing-parse-worker.ts';

let source: ViewSource;
let policies: NetworkPolicy[];

beforeAll(async () => {
  const { snapshot, analysis } = await fixtureAnalysis();
  policies = analysis.proposal.policies;
  source = analysisSource(analysis, { snapshot });
});

const post = (body: string, type = 'application/yaml', path = '/api/v1/audit') =>
  request(createApp(source)).post(path).set('Content-Type', type).send(body);

/** A POST to the server at `url`'s audit endpoint with `headers`, its body left to the caller, errors ignored. */
const openAudit = (url: string, headers: Record<string, string | number>): ClientRequest => {
  const req = httpRequest(`${url}/api/v1/audit`, { method: 'POST', headers });
  req.on('error', () => {});
  return req;
};

describe('POST /api/v1/audit', () => {
  it('finds nothing blocked by the proposal learned from the same traffic, in YAML or JSON', async () => {
    const yaml = await post(policiesToYaml(policies)).expect(200);
    expect(yaml.body.wouldBlock).toEqual([]);
    expect(yaml.body.connections.replayed).toBeGreaterThan(0);
    expect(yaml.body.policies.audited).toEqual(
      policies.map((p) => `${p.metadata.namespace}/${p.metadata.name}`).sort(),
    );
    expect(yaml.body).not.toHaveProperty('ignored');
    const json = await post(
      JSON.stringify({ apiVersion: 'v1', kind: 'List', items: policies }),
      'application/json',
    ).expect(200);
    expect(json.body).toEqual(yaml.body);
  });

  it('reads a body saved as UTF-16 (Windows PowerShell) with a byte order mark or without, UTF-8 with one, or gzip', async () => {
    const yaml = policiesToYaml(policies);
    const json = JSON.stringify(policies);
    const names = policies.map((p) => `${p.metadata.namespace}/${p.metadata.name}`).sort();
    const be = (text: string) => Buffer.from(text, 'utf16le').swap16();
    const bodies: [string, Buffer, string][] = [
      // `kubectl kustomize ... > set.yaml` in Windows PowerShell writes UTF-16LE with a BOM.
      [
        'YAML, UTF-16LE',
        Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(yaml, 'utf16le')]),
        'application/yaml',
      ],
      [
        'JSON, UTF-16LE',
        Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(json, 'utf16le')]),
        'application/json',
      ],
      ['YAML, UTF-16BE', Buffer.concat([Buffer.from([0xfe, 0xff]), be(yaml)]), 'application/yaml'],
      // The BOM says what the bytes are, whatever charset the header claims.
      [
        'YAML, UTF-16LE, said UTF-8',
        Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(yaml, 'utf16le')]),
        'application/yaml; charset=utf-8',
      ],
      [
        'JSON, UTF-8 with BOM',
        Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(json)]),
        'application/json',
      ],
      // UTF-16 with no mark (PowerShell redirection through some hosts): a NUL byte beside the first
      // character, as the CLI reads --cluster, --policies and --queries.
      ['YAML, UTF-16LE without BOM', Buffer.from(yaml, 'utf16le'), 'application/yaml'],
      ['JSON, UTF-16BE without BOM', be(json), 'application/json'],
      // A file kept compressed and sent as it is (curl --data-binary @set.yaml.gz), as the CLI reads it.
      ['YAML, gzip file', gzipSync(yaml), 'application/yaml'],
      ['JSON, gzip file of UTF-16LE', gzipSync(Buffer.from(json, 'utf16le')), 'application/json'],
    ];
    // The bytes as curl's --data-binary sends them (supertest would turn a Buffer sent as JSON into JSON).
    const { server, url } = await listen(createApp(source));
    try {
      const send = async (body: Buffer, type: string) => {
        const res = await fetch(`${url}/api/v1/audit`, {
          method: 'POST',
          headers: { 'Content-Type': type },
          body: new Uint8Array(body),
        });
        return {
          status: res.status,
          body: (await res.json()) as { error?: string; policies?: { audited: string[] } },
        };
      };
      for (const [what, body, type] of bodies) {
        const res = await send(body, type);
        expect([what, res.status, res.body.policies?.audited ?? res.body]).toEqual([what, 200, names]);
      }
      // A charset with no BOM is still read as declared, and one that is no charset refused.
      expect((await send(Buffer.from(yaml, 'latin1'), 'application/yaml; charset=iso-8859-1')).status).toBe(
        200,
      );
      const bogus = await send(Buffer.from(yaml), 'application/yaml; charset=klingon');
      expect([bogus.status, bogus.body.error]).toEqual([415, 'unsupported charset "klingon"']);
      // ... unless a byte order mark says what the bytes are.
      const marked = await send(
        Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(yaml, 'utf16le')]),
        'application/yaml; charset=klingon',
      );
      expect([marked.status, marked.body.policies?.audited]).toEqual([200, names]);
      // A gzip file is decompressed to the limit of a body, as Content-Encoding: gzip is.
      const bomb = await send(gzipSync(' '.repeat(8 * 1024 * 1024 + 1)), 'application/yaml');
      expect([bomb.status, bomb.body.error]).toEqual([413, 'body is larger than 8192 KiB']);
      const cut = await send(gzipSync(yaml).subarray(0, 30), 'application/yaml');
      expect([cut.status, cut.body.error]).toEqual([400, 'body: cannot decompress: unexpected end of file']);
      const within = await send(
        gzipSync(yaml + ' '.repeat(8 * 1024 * 1024 - yaml.length)),
        'application/yaml',
      );
      expect([within.status, within.body.policies?.audited]).toEqual([200, names]);
    } finally {
      server.close();
    }
  });

  it("names what a set without one workload's policy would block, and the objects it left out", async () => {
    const cart = policies.find((p) => p.metadata.name === 'microseg-cart');
    expect(cart).toBeDefined();
    const others = policies.filter((p) => p !== cart);
    const deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'cart', namespace: 'shop' },
      spec: {
        selector: { matchLabels: { app: 'cart' } },
        template: { metadata: { labels: { app: 'cart' } } },
      },
    };
    const res = await post(JSON.stringify([...others, deployment]), 'application/json').expect(200);
    expect(res.body.ignored).toEqual({ Deployment: 1 });
    const blocked = (res.body.wouldBlock as { source: string; target: string; reason: string }[]).map(
      (b) => `${b.source} -> ${b.target}`,
    );
    expect(blocked.length).toBeGreaterThan(0);
    for (const b of blocked) expect(b).toContain('shop/Deployment/cart');
    expect(res.body.wouldBlock[0].reason).toMatch(/^denied: .*isolated by shop\/microseg-default-deny/);
  });

  it('counts the objects left out by their kind as given, whatever its text', async () => {
    // Kinds named like what every object has (`constructor`, `toString`, `__proto__`) were counted as
    // `"function Object() { [native code] }1"`, or not at all.
    const other = (kind: string) => ({ apiVersion: 'v1', kind, metadata: { name: 'x', namespace: 'shop' } });
    const kinds = ['toString', 'ConfigMap', 'constructor', '__proto__', 'ConfigMap'];
    const res = await post(JSON.stringify([...policies, ...kinds.map(other)]), 'application/json').expect(
      200,
    );
    expect(Object.entries(res.body.ignored as object)).toEqual([
      ['ConfigMap', 2],
      ['__proto__', 1],
      ['constructor', 1],
      ['toString', 1],
    ]);
  });

  it('applies the cluster-wide policies of the set too, named by kind', async () => {
    const anp = denyFromShop('no-db-from-shop', 'shop', 'db');
    const res = await post(JSON.stringify([...policies, anp]), 'application/json').expect(200);
    expect(res.body).not.toHaveProperty('ignored');
    expect(res.body.policies.audited).toContain('AdminNetworkPolicy/no-db-from-shop');
    const blocked = res.body.wouldBlock as { target: string; reason: string }[];
    expect(blocked.length).toBeGreaterThan(0);
    for (const b of blocked) {
      expect(b.target).toBe('shop/StatefulSet/db');
      expect(b.reason).toContain('Deny by AdminNetworkPolicy/no-db-from-shop ingress[0] (deny-shop)');
    }
  });

  it('gives the span of the traffic replayed, and the CronJobs cut off with no run in it', async () => {
    const snapshot = fixtureSnapshot(backup());
    const analysis = await runPipeline(snapshot, fixtureFlows());
    const app = createApp(analysisSource(analysis, { snapshot }));
    const res = await request(app)
      .post('/api/v1/audit')
      .set('Content-Type', 'application/yaml')
      .send(policiesToYaml(analysis.proposal.policies))
      .expect(200);
    const edges = analysis.graph.edges;
    expect(res.body.span).toEqual({
      first: new Date(Math.min(...edges.map((e) => Date.parse(e.firstSeen)))).toISOString(),
      last: new Date(Math.max(...edges.map((e) => Date.parse(e.lastSeen)))).toISOString(),
    });
    expect(res.body.unobserved).toEqual(['shop/CronJob/backup']);
    // It never ran: nothing of it is in the traffic.
    expect(res.body.cronJobsNotRun).toEqual(['shop/CronJob/backup']);
  });

  it('refuses what it cannot audit, naming what was wrong', async () => {
    expect((await post('').expect(400)).body).toEqual({
      error:
        'body is empty: send the NetworkPolicies to audit as JSON or YAML (one object, a List, or YAML documents)',
    });
    expect((await post(' \r\n').expect(400)).body).toEqual({
      error:
        'body holds only whitespace: send the NetworkPolicies to audit as JSON or YAML (one object, a List, or YAML documents)',
    });
    expect(
      (await post('{"apiVersion":"v1","kind":"List","items":[]}', 'application/json').expect(400)).body,
    ).toEqual({
      error:
        'body holds no NetworkPolicy (networking.k8s.io/v1) to audit, nor AdminNetworkPolicy, BaselineAdminNetworkPolicy, ClusterNetworkPolicy',
    });
    expect((await post('{"kind": ', 'application/json').expect(400)).body.error).toMatch(
      /^body: not valid JSON: /,
    );
    expect((await post('kind: NetworkPolicy\nmetadata: {}\n').expect(400)).body).toEqual({
      error: 'body: item 1 (NetworkPolicy): metadata.name must be a non-empty string',
    });
    const bad =
      'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: bad, namespace: shop}\nspec:\n  podSelector: {matchLabels: {app: 5}}\n';
    expect((await post(bad).expect(400)).body).toEqual({
      error:
        'NetworkPolicy shop/bad: spec.podSelector is not a valid label selector: matchLabels.app must be a string',
    });
    expect(
      (await post(policiesToYaml(policies), 'application/yaml', '/api/v1/audit?prune=yes').expect(400)).body,
    ).toEqual({
      error: 'prune must be true or false (got "yes")',
    });
    // YAML whose aliases expand to millions of nodes (a "billion laughs"): the parser refuses it, and
    // that is the body's fault (400), not an internal error (500).
    const laughs = ['a: &a [x, x, x, x, x, x, x, x, x]'];
    for (const [i, name] of ['b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'].entries()) {
      const prev = 'abcdefgh'[i];
      laughs.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(', ')}]`);
    }
    expect((await post(`${laughs.join('\n')}\n`).expect(400)).body).toEqual({
      error: 'body: YAML document 1: Excessive alias count indicates a resource exhaustion attack',
    });
    const big = `# ${'x'.repeat(8 * 1024 * 1024)}\n`;
    expect((await post(big).expect(413)).body).toEqual({ error: 'body is larger than 8192 KiB' });
    const without = analysisSource((await fixtureAnalysis()).analysis);
    expect(
      (await request(createApp(without)).post('/api/v1/audit').send(policiesToYaml(policies)).expect(404))
        .body,
    ).toEqual({ error: 'this source cannot audit policies' });
  });

  it("refuses a body nested too deeply to read as the body's fault (400), not an internal error", async () => {
    const internal: unknown[] = [];
    const app = createApp(source, { onInternalError: (err) => internal.push(err) });
    const deep = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
    const policy = (spec: string) =>
      `{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"a","namespace":"shop"},"spec":${spec}}`;
    const error =
      'body: nested more than 1000 levels deep (lists and objects inside one another), deeper than any Kubernetes object';
    for (const [body, type] of [
      // Deeper than the parser can follow (it overflows its stack), ...
      [deep(200_000), 'application/json'],
      [deep(100_000), 'application/yaml'],
      // ... or parsed, but deeper than what reads the objects afterwards can follow.
      [policy(`{"podSelector":{},"ingress":${deep(200_000)}}`), 'application/json'],
      [policy(`{"podSelector":{},"ingress":${deep(1001)}}`), 'application/json'],
    ] as const) {
      const res = await request(app).post('/api/v1/audit').set('Content-Type', type).send(body);
      expect([res.status, res.body]).toEqual([400, { error }]);
    }
    expect(internal).toEqual([]);
    // As deep as that is read (and refused for what it holds), and the parser still answers.
    const deepest = await request(app)
      .post('/api/v1/audit')
      .set('Content-Type', 'application/json')
      .send(policy(`{"podSelector":{},"ingress":${deep(998)}}`));
    expect([deepest.status, deepest.body.error]).toEqual([
      400,
      expect.stringMatching(/^NetworkPolicy shop\/a: /),
    ]);
    expect((await post(policiesToYaml(policies)).expect(200)).body.wouldBlock).toEqual([]);
  });

  it('reads a YAML body exactly 1000 levels deep, flow or block style, and refuses one level deeper', async () => {
    const internal: unknown[] = [];
    const app = createApp(source, { onInternalError: (err) => internal.push(err) });
    // `ingress` is at level 3 (the document's value is level 1): `lists` lists inside it, the innermost
    // empty, reach level 2 + lists.
    const flow = (lists: number) => `${'['.repeat(lists)}${']'.repeat(lists)}`;
    const block = (lists: number) =>
      [
        '',
        ...Array.from({ length: lists - 1 }, (_, i) => `${'  '.repeat(i + 1)}-`),
        `${'  '.repeat(lists)}[]`,
      ].join('\n');
    const policy = (ingress: string) =>
      `apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: a, namespace: shop}\nspec:\n  podSelector: {}\n  ingress: ${ingress}\n`;
    const tooDeep =
      'body: nested more than 1000 levels deep (lists and objects inside one another), deeper than any Kubernetes object';
    for (const [style, ingress] of [
      ['flow', flow],
      ['block', block],
    ] as const) {
      // Read (1000 levels), and refused for what it holds, as the JSON as deep is above.
      const read = await request(app)
        .post('/api/v1/audit')
        .set('Content-Type', 'application/yaml')
        .send(policy(ingress(998)));
      expect([style, read.status, read.body.error]).toEqual([
        style,
        400,
        expect.stringMatching(/^NetworkPolicy shop\/a: /),
      ]);
      const refused = await request(app)
        .post('/api/v1/audit')
        .set('Content-Type', 'application/yaml')
        .send(policy(ingress(999)));
      expect([style, refused.status, refused.body]).toEqual([style, 400, { error: tooDeep }]);
    }
    expect(internal).toEqual([]);
  });

  it('refuses a set for now while as many as it queues wait to be parsed, then takes it', async () => {
    const parser = new ObjectsParser();
    try {
      const app = createApp(source, { parser });
      const yaml = policiesToYaml(policies);
      // One more than the limit, each large enough that two are not parsed before the request is.
      const big = Array.from({ length: 40 }, () => yaml).join('---\n');
      const queued = Array.from({ length: PARSE_QUEUE_LIMIT + 1 }, () => parser.parse(big, 'queued'));
      expect(parser.waiting).toBe(PARSE_QUEUE_LIMIT + 1);
      const busy = await request(app)
        .post('/api/v1/audit')
        .set('Content-Type', 'application/yaml')
        .send(yaml);
      expect([busy.status, busy.headers['retry-after'], busy.body]).toEqual([
        503,
        '5',
        {
          error: `${PARSE_QUEUE_LIMIT} policy sets are waiting to be parsed already; send this one again in a few seconds`,
        },
      ]);
      await Promise.all(queued);
      expect(parser.waiting).toBe(0);
      const taken = await request(app)
        .post('/api/v1/audit')
        .set('Content-Type', 'application/yaml')
        .send(yaml);
      expect(taken.status).toBe(200);
      expect(taken.body.wouldBlock).toEqual([]);
    } finally {
      await parser.close();
    }
  });

  /**
   * A server of its own whose parser is kept busy with `copies` copies of the proposal, so that a
   * request's body waits behind them; `test` gets the parser, the app, the busy parse and whether it
   * settled, and `send`, a request to POST a body of that length to /api/v1/audit with these headers,
   * over a socket of its own (the caller ends it with the body).
   */
  async function withBusyParser(
    copies: number,
    test: (t: {
      parser: ObjectsParser;
      app: ReturnType<typeof createApp>;
      server: Server;
      busy: Promise<unknown[]>;
      busySettled: () => boolean;
      send: (body: Buffer, headers: Record<string, string>) => ClientRequest;
    }) => Promise<void>,
  ): Promise<void> {
    const parser = new ObjectsParser();
    const app = createApp(source, { parser });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const yaml = policiesToYaml(policies);
      let settled = false;
      const busy = parser
        .parse(Array.from({ length: copies }, () => yaml).join('---\n'), 'busy')
        .finally(() => (settled = true));
      // Failed by close() when an expectation fails: not an unhandled rejection then.
      busy.catch(() => {});
      const send = (body: Buffer, headers: Record<string, string>) => {
        const req = httpRequest({
          host: '127.0.0.1',
          port: (server.address() as AddressInfo).port,
          method: 'POST',
          path: '/api/v1/audit',
          headers: { 'Content-Type': 'application/yaml', 'Content-Length': body.length, ...headers },
        });
        req.on('error', () => {});
        return req;
      };
      await test({ parser, app, server, busy, busySettled: () => settled, send });
    } finally {
      server.close();
      await parser.close();
    }
  }

  it("takes a body out of the parser's queue when its client goes away before the answer", async () => {
    await withBusyParser(400, async ({ parser, app, busy, busySettled, send }) => {
      const yaml = policiesToYaml(policies);
      const body = Buffer.from(yaml);
      const req = send(body, {});
      req.end(body);
      await expect.poll(() => parser.waiting).toBe(2);
      req.destroy();
      // Dropped at once, while the busy one is still being parsed.
      await expect.poll(() => parser.waiting).toBe(1);
      expect(busySettled()).toBe(false);
      expect((await busy).length).toBeGreaterThan(400);
      // The server goes on answering.
      const taken = await request(app)
        .post('/api/v1/audit')
        .set('Content-Type', 'application/yaml')
        .send(yaml);
      expect(taken.status).toBe(200);
    });
  });

  it('drops the body of a client that went away before its request reached the handler', async () => {
    await withBusyParser(1000, async ({ parser, server, busy, busySettled, send }) => {
      const yaml = policiesToYaml(policies);
      // A gzip body is inflated asynchronously: the client's connection is closed before the handler
      // runs, so the response's 'close' has been emitted already when the handler listens for it.
      const body = gzipSync(Buffer.from(Array.from({ length: 50 }, () => yaml).join('---\n')));
      const req = send(body, { 'Content-Encoding': 'gzip' });
      req.end(body, () => req.destroy());
      const connections = () =>
        new Promise<number>((resolve, reject) =>
          server.getConnections((err, n) => (err ? reject(err) : resolve(n))),
        );
      await expect.poll(connections).toBe(0);
      // Time for the body to be inflated and the handler to run.
      await new Promise((r) => setTimeout(r, 300));
      expect(busySettled()).toBe(false);
      expect(parser.waiting).toBe(1);
      await busy;
    });
  });

  it('refuses a body for now while the bodies being read or audited hold twice the largest one, then takes it', async () => {
    // Each body is held whole in memory from its first byte until it is answered: without a bound on
    // them together, clients sending many large bodies at once (slowly, or faster than they are
    // parsed) exhaust the controller's memory before the parser's queue refuses any.
    const { server, url } = await listen(createApp(source));
    const held: ClientRequest[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const req = openAudit(url, { 'Content-Type': 'application/yaml', 'Content-Length': 8 * 1024 * 1024 });
        // The headers and the start of the body, then nothing: a slow client.
        req.write('apiVersion: networking.k8s.io/v1\n');
        held.push(req);
      }
      const yaml = policiesToYaml(policies);
      const attempt = () =>
        request(url).post('/api/v1/audit').set('Content-Type', 'application/yaml').send(yaml);
      await expect.poll(async () => (await attempt()).status).toBe(503);
      const busy = await attempt();
      expect([busy.status, busy.headers['retry-after'], busy.body]).toEqual([
        503,
        '5',
        {
          error:
            'busy: 16384 KiB of other policy sets are being read or audited (at most 16384 KiB at once); send this one again in a few seconds',
        },
      ]);
      for (const req of held) req.destroy();
      await expect.poll(async () => (await attempt()).status).toBe(200);
    } finally {
      for (const req of held) req.destroy();
      server.close();
    }
  });

  it('counts a compressed body as the largest, whatever its Content-Length, and an inflated one by its text', async () => {
    // A few KiB of gzip inflate to 8 MiB: counted by their Content-Length, many such bodies would be let
    // in at once.
    const { server, url } = await listen(createApp(source));
    const held: ClientRequest[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const req = openAudit(url, {
          'Content-Type': 'application/yaml',
          'Content-Encoding': 'gzip',
          'Content-Length': 4096,
        });
        req.write(gzipSync(Buffer.alloc(1024, 0x20)).subarray(0, 10));
        held.push(req);
      }
      const yaml = policiesToYaml(policies);
      const attempt = () =>
        request(url).post('/api/v1/audit').set('Content-Type', 'application/yaml').send(yaml);
      await expect.poll(async () => (await attempt()).status).toBe(503);
      for (const req of held) req.destroy();
      await expect.poll(async () => (await attempt()).status).toBe(200);
    } finally {
      for (const req of held) req.destroy();
      server.close();
    }
    // A body sent as it is that is itself gzip (a file kept compressed) is counted again once inflated:
    // two such bodies of 8 MiB of text, held in a parser's queue, hold the budget. The parser answers
    // only when told: behind a real busy parse, the race with its end (seconds on a loaded machine)
    // let them go before the small body came, which was then taken.
    let release = () => {};
    const gate = new Promise<void>((r) => (release = r));
    let queued = 0;
    const parser = {
      get waiting() {
        return queued;
      },
      // The two large bodies wait; a third is answered at once (a clear 400, were it let in).
      parseAudit: async () => {
        if (++queued <= 2) await gate;
        return { networkPolicies: [], clusterPolicies: [], ignored: [] };
      },
    } as unknown as ObjectsParser;
    const gated = await listen(createApp(source, { parser }));
    const reqs: ClientRequest[] = [];
    try {
      const text = `# ${'x'.repeat(8 * 1024 * 1024 - 16)}\n`;
      const body = gzipSync(Buffer.from(text));
      for (let i = 0; i < 2; i++) {
        const req = openAudit(gated.url, {
          'Content-Type': 'application/yaml',
          'Content-Length': body.length,
        });
        req.end(body);
        reqs.push(req);
      }
      await expect.poll(() => queued, { timeout: 10_000 }).toBe(2);
      const answer = await request(gated.url)
        .post('/api/v1/audit')
        .set('Content-Type', 'application/yaml')
        .send(policiesToYaml(policies));
      expect(answer.status).toBe(503);
      expect((answer.body as { error: string }).error).toMatch(/^busy: /);
    } finally {
      release();
      for (const req of reqs) req.destroy();
      gated.server.close();
    }
  });

  it('asks for the token where the API has one', async () => {
    const app = createApp(source, { auth: { token: 'sesame', anonymousRead: true } });
    await request(app)
      .post('/api/v1/audit')
      .set('Content-Type', 'application/yaml')
      .send(policiesToYaml(policies))
      .expect(401);
    await request(app)
      .post('/api/v1/audit')
      .set('Content-Type', 'application/yaml')
      .set('Authorization', 'Bearer sesame')
      .send(policiesToYaml(policies))
      .expect(200);
  });

  /** POSTs `body` (JSON) to `url`'s audit over a socket of its own, for the caller to destroy. */
  function postRaw(url: string, body: string): ClientRequest {
    const bytes = Buffer.from(body);
    const req = httpRequest(`${url}/api/v1/audit`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Content-Length': bytes.length },
    });
    req.on('error', () => {});
    req.end(bytes);
    return req;
  }

  describe('a large set', () => {
    /**
     * About 7 MB of JSON: `n` policies, copies of the proposal's under names of their own, without
     * cart's (so that cart's connections would be blocked), and a cluster-wide one.
     */
    function largeSet(n = 11_000): { given: NetworkPolicy[]; text: string } {
      const kept = policies.filter((p) => p.metadata.name !== 'microseg-cart');
      const given = Array.from({ length: n }, (_, i) => {
        const p = structuredClone(kept[i % kept.length]!);
        p.metadata.name = `${p.metadata.name}-${i}`;
        return p;
      });
      const anp = {
        apiVersion: 'policy.networking.k8s.io/v1alpha1',
        kind: 'AdminNetworkPolicy',
        metadata: { name: 'pass-dns' },
        spec: {
          priority: 10,
          subject: { namespaces: {} },
          egress: [
            {
              action: 'Pass',
              to: [{ namespaces: {} }],
              ports: [{ portNumber: { port: 53, protocol: 'UDP' } }],
            },
          ],
        },
      };
      return { given, text: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [...given, anp] }) };
    }

    it('is answered as auditing it at once answers, byte for byte', async () => {
      const { given, text } = largeSet();
      expect(text.length).toBeGreaterThan(6_000_000);
      const res = await post(text, 'application/json').expect(200);
      const { snapshot, analysis } = await fixtureAnalysis();
      const [anp] = (JSON.parse(text) as { items: object[] }).items.slice(-1);
      const atOnce = auditPolicySet({
        snapshot,
        identity: analysis.identity,
        graph: analysis.graph,
        given,
        givenClusterPolicies: [anp as never],
        prune: false,
      });
      expect(res.body.wouldBlock.length).toBeGreaterThan(0);
      expect(res.body.policies.audited).toHaveLength(given.length + 1);
      expect(res.text).toBe(JSON.stringify(atOnce));
    }, 60_000);

    it('lets the server answer other requests while its parsed policies are read and audited', async () => {
      // The thread says when it answers: from then on the main thread has the set to read and audit.
      // That used to be done at once, holding the event loop (about a second for a large set, more
      // for a large graph): a request sent then waited for the audit's answer.
      const parser = new ObjectsParser({
        workerFile: new URL('./announcing-parse-worker.ts', import.meta.url),
      });
      const channel = new BroadcastChannel(ANNOUNCE_CHANNEL);
      const { server, url } = await listen(createApp(source, { parser }));
      try {
        const answered: string[] = [];
        const probe = new Promise<number>((resolve, reject) => {
          let sent = false;
          channel.onmessage = () => {
            if (sent) return;
            sent = true;
            fetch(`${url}/api/v1/info`).then((r) => {
              answered.push('info');
              resolve(r.status);
            }, reject);
          };
        });
        const audit = fetch(`${url}/api/v1/audit`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: largeSet().text,
        }).then(async (r) => {
          answered.push('audit');
          return { status: r.status, body: (await r.json()) as { wouldBlock: unknown[] } };
        });
        const [info, audited] = await Promise.all([probe, audit]);
        expect(info).toBe(200);
        expect(audited.status).toBe(200);
        expect(audited.body.wouldBlock.length).toBeGreaterThan(0);
        expect(answered).toEqual(['info', 'audit']);
      } finally {
        channel.close();
        server.close();
        await parser.close();
      }
    }, 60_000);

    it('stops auditing a set once its client goes away, and says nothing of it', async () => {
      // Audited in slices, a set's audit takes a second or more of turns of the event loop: one whose
      // client has gone ran on to its end (its engines held meanwhile), its bytes no longer counted
      // against the bodies in flight, so that clients posting large sets and leaving had any number
      // audited at once.
      let audit: Promise<string> | undefined;
      let auditing: () => void = () => {};
      const started = new Promise<void>((resolve) => (auditing = resolve));
      const watched: ViewSource = {
        ...source,
        auditPolicies: (given, opts) => {
          const answer = Promise.resolve(source.auditPolicies!(given, opts));
          audit = answer.then(
            () => 'answered',
            (err: unknown) => (err instanceof Error ? err.name : String(err)),
          );
          auditing();
          return answer;
        },
      };
      const told: unknown[] = [];
      const { server, url } = await listen(createApp(watched, { onInternalError: (err) => told.push(err) }));
      try {
        const req = postRaw(url, largeSet().text);
        await started;
        req.destroy();
        expect(await audit).toBe('StepsAbandoned');
        expect(told).toEqual([]);
        // The server goes on answering.
        const taken = await request(url)
          .post('/api/v1/audit')
          .set('Content-Type', 'application/yaml')
          .send(policiesToYaml(policies));
        expect(taken.status).toBe(200);
      } finally {
        server.close();
      }
    }, 60_000);

    it("stops reading a parsed set's policies once its client goes away", async () => {
      // The parsing thread's answer is read in slices too: a client gone by then need not wait for it.
      const parser = new ObjectsParser({
        workerFile: new URL('./announcing-parse-worker.ts', import.meta.url),
      });
      const channel = new BroadcastChannel(ANNOUNCE_CHANNEL);
      try {
        const gone = new AbortController();
        channel.onmessage = () => gone.abort();
        const read = await parser
          .parseAudit(largeSet().text, 'body', gone.signal)
          .then((encoded) => readAuditBody(encoded, gone.signal))
          .then(
            () => 'read',
            (err: unknown) => (err instanceof Error ? err.name : String(err)),
          );
        // ParseAbandoned when the abort is heard before the thread's answer (the answer comes first
        // as a rule: the thread posts it, then announces it).
        expect(['StepsAbandoned', 'ParseAbandoned']).toContain(read);
      } finally {
        channel.close();
        await parser.close();
      }
    }, 60_000);

    /** Called in each audit of `watchedAudits` (by its name) before it is done: to fail it, or hold it. */
    type AuditHook = (name: string, signal: AbortSignal | undefined) => Promise<void> | void;

    /**
     * `source` whose audits say when they start and end (`log`, by the prefix of their policies' names,
     * see `named`), the first of them held until `release` is called: a long audit, for others to
     * overlap or wait for.
     */
    function watchedAudits(also?: AuditHook): { watched: ViewSource; log: string[]; release: () => void } {
      const log: string[] = [];
      let release: () => void = () => {};
      const held = new Promise<void>((resolve) => (release = resolve));
      const watched: ViewSource = {
        ...source,
        auditPolicies: async (given, opts) => {
          const name = given[0]!.metadata.name.split('-')[0]!;
          const first = log.length === 0;
          log.push(`start ${name}`);
          try {
            if (first) await held;
            await also?.(name, opts.signal);
            return await source.auditPolicies!(given, opts);
          } finally {
            log.push(`end ${name}`);
          }
        },
      };
      return { watched, log, release };
    }

    /** A JSON List of `given` renamed `<prefix>-<name>`: its audit is logged by `<prefix>-...`. */
    const named = (prefix: string, given: readonly NetworkPolicy[]): string =>
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: given.map((p) => ({
          ...p,
          metadata: { ...p.metadata, name: `${prefix}-${p.metadata.name}` },
        })),
      });

    /** Resolves once `n` answers of the parsing thread were announced on `channel`. */
    function announced(channel: BroadcastChannel, n: number): Promise<void> {
      let seen = 0;
      return new Promise((resolve) => {
        channel.onmessage = () => {
          if (++seen >= n) resolve();
        };
      });
    }

    /** Resolves once `cond` holds, or after `ms` whatever it says. */
    async function awhile(cond: () => boolean, ms: number): Promise<void> {
      for (const until = Date.now() + ms; !cond() && Date.now() < until;)
        await new Promise((r) => setTimeout(r, 20));
    }

    /**
     * A server of its own auditing `watchedAudits()` (the first audit held until `release`), in line
     * in `turns` (the process's line when not given), its bodies parsed by a thread that announces
     * each answer: `bothParsed` resolves once two bodies are parsed.
     */
    async function withHeldAudit(
      turns: Turns | undefined,
      test: (t: {
        url: string;
        parser: ObjectsParser;
        log: string[];
        release: () => void;
        bothParsed: Promise<void>;
      }) => Promise<void>,
      also?: AuditHook,
    ): Promise<void> {
      const parser = new ObjectsParser({
        workerFile: new URL('./announcing-parse-worker.ts', import.meta.url),
      });
      const channel = new BroadcastChannel(ANNOUNCE_CHANNEL);
      const bothParsed = announced(channel, 2);
      const { watched, log, release } = watchedAudits(also);
      const { server, url } = await listen(
        createApp(watched, { parser, ...(turns ? { auditTurns: turns } : {}) }),
      );
      try {
        await test({ url, parser, log, release, bothParsed });
      } finally {
        release();
        channel.close();
        server.close();
        await parser.close();
      }
    }

    /** POSTs `body` (JSON) to `url`'s audit: its status, Retry-After and JSON answer. */
    const postJson = (url: string, body: string) =>
      fetch(`${url}/api/v1/audit`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body,
      }).then(async (r) => ({
        status: r.status,
        retryAfter: r.headers.get('retry-after'),
        body: (await r.json()) as { error?: string; wouldBlock: unknown[] },
      }));

    it('audits two large sets posted together one after the other, never side by side', async () => {
      // Audited in slices, two sets posted together were read and audited side by side, each
      // holding its policies and its engines meanwhile: N clients, N times the memory of one. Now the
      // later waits for the earlier's answer before its policies are read (its body parsed meanwhile).
      await withHeldAudit(undefined, async ({ url, log, release, bothParsed }) => {
        const { given } = largeSet(5_000);
        const answers = Promise.all([postJson(url, named('a', given)), postJson(url, named('b', given))]);
        // The first audit goes on once the second body is parsed, and the second audit has started
        // beside it or has had a second to.
        await bothParsed;
        await awhile(() => log.length > 1, 1000);
        release();
        const [a, b] = await answers;
        expect([a.status, b.status]).toEqual([200, 200]);
        expect(a.body.wouldBlock.length).toBeGreaterThan(0);
        expect(b.body.wouldBlock).toHaveLength(a.body.wouldBlock.length);
        const first = log[0] === 'start a' ? 'a' : 'b';
        const then = first === 'a' ? 'b' : 'a';
        expect(log).toEqual([`start ${first}`, `end ${first}`, `start ${then}`, `end ${then}`]);
      });
    }, 60_000);

    it('drops a set waiting for its turn once its client goes away, and does nothing more for it', async () => {
      const turns = new Turns();
      await withHeldAudit(turns, async ({ url, log, release, bothParsed }) => {
        const first = postJson(url, named('a', policies));
        await expect.poll(() => log.length).toBe(1);
        const req = postRaw(url, named('b', policies));
        // Parsed while the first is audited, then waiting for its turn (not audited beside the first:
        // given a second to start).
        await bothParsed;
        await awhile(() => log.length > 1, 1000);
        expect(log).toEqual(['start a']);
        expect([turns.holding, turns.waiting]).toEqual([1, 1]);
        req.destroy();
        // Out of the line at once, while the first is still audited.
        await expect.poll(() => turns.waiting).toBe(0);
        expect(log).toEqual(['start a']);
        release();
        expect((await first).status).toBe(200);
        // Its turn, had it stayed, came with the first's answer: nothing is read or audited for it.
        await awhile(() => log.length > 2, 300);
        expect(log).toEqual(['start a', 'end a']);
        expect([turns.holding, turns.waiting]).toEqual([0, 0]);
      });
    }, 60_000);

    it('refuses a set for now while as many as the line holds wait for their turn, then takes it', async () => {
      const turns = new Turns();
      await withHeldAudit(turns, async ({ url, parser, log, release }) => {
        const first = postJson(url, named('a', policies));
        await expect.poll(() => log.length).toBe(1);
        // Sent one after the other, each once the one before is in line, so that the order they
        // came in is known (connections opened together may reach the server in any order).
        const waiting: ReturnType<typeof postJson>[] = [];
        for (let i = 0; i < AUDIT_QUEUE_LIMIT; i++) {
          waiting.push(postJson(url, named(`w${i}`, policies)));
          await expect.poll(() => turns.waiting >= i + 1 || log.length > 1).toBe(true);
        }
        // All in line, their bodies parsed (or, side by side, audited already).
        await expect
          .poll(() => (turns.waiting === AUDIT_QUEUE_LIMIT && parser.waiting === 0) || log.length > 1)
          .toBe(true);
        const busy = await postJson(url, named('x', policies));
        expect([busy.status, busy.retryAfter, busy.body]).toEqual([
          503,
          '5',
          {
            error: `${AUDIT_QUEUE_LIMIT} policy sets are waiting to be audited already (one is audited at a time); send this one again in a few seconds`,
          },
        ]);
        expect(log).toHaveLength(1);
        release();
        expect((await Promise.all([first, ...waiting])).map((a) => a.status)).toEqual(
          Array.from({ length: AUDIT_QUEUE_LIMIT + 1 }, () => 200),
        );
        // In the order they came, one at a time.
        expect(log.filter((l) => l.startsWith('start')).map((l) => l.slice('start '.length))).toEqual([
          'a',
          ...Array.from({ length: AUDIT_QUEUE_LIMIT }, (_, i) => `w${i}`),
        ]);
        expect((await postJson(url, named('x', policies))).status).toBe(200);
      });
    }, 60_000);

    it('gives its turn back however a request in line ends: refused, failed, or gone while audited', async () => {
      // A turn kept by a request that ended would hold every later audit of the process for good.
      const turns = new Turns();
      const also: AuditHook = async (name, signal) => {
        if (name === 'boom') throw new Error('the audit broke');
        // Holds its turn until its client goes away.
        if (name === 'hang')
          await new Promise((_resolve, reject) =>
            signal?.addEventListener('abort', () => reject(new StepsAbandoned()), { once: true }),
          );
      };
      await withHeldAudit(
        turns,
        async ({ url, log, release }) => {
          const first = postJson(url, named('a', policies));
          await expect.poll(() => log).toEqual(['start a']);
          // Refused once parsed while in line (a malformed body, one with no policy), or failing in
          // its turn.
          const boom = postJson(url, named('boom', policies));
          await expect.poll(() => turns.waiting).toBe(1);
          const refused = await Promise.all([
            postJson(url, '{"kind": "List", "items": ['),
            postJson(url, JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' } })),
          ]);
          expect(refused.map((a) => a.status)).toEqual([400, 400]);
          expect([log, turns.holding, turns.waiting]).toEqual([['start a'], 1, 1]);
          release();
          const answers = await Promise.all([first, boom]);
          expect(answers.map((a) => a.status)).toEqual([200, 500]);
          expect(answers[1].body).toEqual({ error: 'internal error: the audit broke' });
          expect([turns.holding, turns.waiting]).toEqual([0, 0]);
          // Gone while it holds its turn: the next set gets it.
          const gone = postRaw(url, named('hang', policies));
          await expect.poll(() => log.at(-1)).toBe('start hang');
          const next = postJson(url, named('next', policies));
          await expect.poll(() => turns.waiting).toBe(1);
          gone.destroy();
          expect((await next).status).toBe(200);
          expect(log.filter((l) => l.startsWith('start'))).toEqual([
            'start a',
            'start boom',
            'start hang',
            'start next',
          ]);
          expect([turns.holding, turns.waiting]).toEqual([0, 0]);
        },
        also,
      );
    }, 60_000);
  });
});
