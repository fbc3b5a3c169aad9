/**
 * The express app behind the web page: the page and its libraries (served from local files and npm
 * packages, nothing fetched at run time) and the JSON API over a `ViewSource`. `createApp` only builds
 * the app; the caller listens (the demo on port 8080, the controller next to its own API).
 */
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, sep } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import express from 'express';
import type { NextFunction, Request, Response } from 'express';
import { readWholeText } from '../flows/reader.ts';
import { isDnsLabel } from '../isolate/api.ts';
import { blankText, InputError } from '../model/snapshot.ts';
import { bodyCost } from './body-cost.ts';
import { hostCheck } from './hosts.ts';
import { tokenMatches } from './token-match.ts';
import { notFound, PAGE_SERVED, servedBefore } from './not-found.ts';
import { ObjectsParser, PARSE_QUEUE_LIMIT, ParseAbandoned, readAuditBody } from './parse.ts';
import { StepsAbandoned } from './slices.ts';
import { AUDIT_AT_ONCE, AUDIT_QUEUE_LIMIT, Turns } from './turns.ts';
import { policiesToYaml } from '../policy/render.ts';
import { CLUSTER_POLICY_KINDS } from '../verify/validate.ts';
import type { GraphViewOptions, Layout } from './view.ts';
import {
  buildGraphView,
  computeLayout,
  cronJobView,
  GraphViewRequestError,
  nodeDetails,
  nodeLabel,
  stabilizeLayout,
  unobservedWorkloads,
} from './view.ts';
import type { ServiceGraph } from '../graph/types.ts';
import type { Proposal } from '../policy/types.ts';
import type { IsolationView, UnobservedView, ViewSource } from './types.ts';
import { isolationActive, isolationInEffect, SourceUnavailable } from './types.ts';

export interface AuthOptions {
  /** Bearer token every API request must carry (`Authorization: Bearer <token>`). */
  token?: string;
  /** Custom check of the Authorization header (e.g. a TokenReview); returns the user name or undefined. */
  verify?: (authorization: string) => string | undefined | Promise<string | undefined>;
  /**
   * Longest wait for `verify` to settle, in milliseconds (default `AUTH_VERIFY_TIMEOUT_MS`, 5 s): a check
   * that has not settled by then is answered as one that failed (503, `Retry-After`), and its late
   * answer is ignored.
   */
  verifyTimeoutMs?: number;
  /** Let unauthenticated requests read (GET) the API; actions still need authentication. Default false. */
  anonymousRead?: boolean;
}

export interface AppOptions {
  /** Without `auth`, the API is read-only: actions (isolate, release) are refused. */
  auth?: AuthOptions;
  /**
   * Without `auth` (or with `auth.anonymousRead`), the host names besides loopback and the address a
   * request came in on that the app answers (`Host`), normalised by `allowedHost`; `*` is every host.
   * Others get 403: a guard against DNS rebinding (see `hostCheck`). Unused when a token is needed.
   */
  allowedHosts?: readonly string[];
  /**
   * Answered as `allowedHosts` are, and named in the 403: the names the controller's Service is reached
   * by in the cluster (`serviceHostNames`).
   */
  serviceHosts?: readonly string[];
  /** Graph nodes above which `view=auto` aggregates by segment (default 1500). */
  aggregateThreshold?: number;
  /** Directory of the page's files (default: the project's `web/`). */
  webRoot?: string;
  /** Parses the bodies of `POST /audit` (default: one parsing thread shared by every app). */
  parser?: ObjectsParser;
  /**
   * The line in which `POST /audit` requests wait for their turn to read and audit their policies
   * (default: one shared by every app of the process, AUDIT_AT_ONCE at a time).
   */
  auditTurns?: Turns;
  /**
   * Told of every request answered 500 (an internal error), with the error and its stack, for the
   * operator's log: the answer itself says only the error's message.
   */
  onInternalError?: (err: unknown, req: { method: string; path: string }) => void;
  /**
   * Told of every request whose credentials could not be checked (`auth.verify` threw, rejected or did
   * not settle within `auth.verifyTimeoutMs`: a TokenReview that is down or hangs), answered 503: not the server's own failure, so not told to
   * `onInternalError`.
   */
  onAuthUnavailable?: (err: unknown, req: { method: string; path: string }) => void;
}

let sharedParser: ObjectsParser | undefined;
let sharedAuditTurns: Turns | undefined;

class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

const require = createRequire(import.meta.url);

function findWebRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // src/server/ in the source tree, dist/src/server/ once built.
  for (const up of ['../..', '../../..']) {
    const dir = join(here, up, 'web');
    if (existsSync(join(dir, 'index.html'))) return dir;
  }
  throw new Error(`cannot find the web page's files (web/index.html) above ${here}`);
}

/** The paths of the page's own files (`/index.html`, `/app.js`, ...), read once when the app is built. */
function pageFileNames(webRoot: string): string[] {
  return readdirSync(webRoot, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => `/${relative(webRoot, join(d.parentPath, d.name)).split(sep).join('/')}`);
}

/** Files of npm packages the page loads, by the URL it loads them from. */
function vendorFiles(): Record<string, string> {
  return {
    'sigma.min.js': join(dirname(require.resolve('sigma')), 'sigma.min.js'),
    'graphology.umd.min.js': join(dirname(require.resolve('graphology')), 'graphology.umd.min.js'),
  };
}

/** The page's Content-Security-Policy, sent with every answer. */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** The answer to a request whose credentials could not be checked (`auth.verify` failed). */
const AUTH_UNAVAILABLE = 'the token could not be checked now (the authentication check failed); retry later';
/** Seconds after which a client may send it again (`Retry-After`). */
const AUTH_RETRY_AFTER_SECONDS = 5;
/** How long `auth.verify` may take by default before the request is answered as if it had failed. */
export const AUTH_VERIFY_TIMEOUT_MS = 5_000;

/** A wait as the timeout error says it: `5 s`, or `20 ms` when not whole seconds. */
function waitText(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

/**
 * `check`'s answer, or a rejection once `ms` passed without one: a credentials check that never settles
 * (a TokenReview whose connection hangs) must not hold the request for ever.
 */
function withinTime<T>(check: () => T | Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the authentication check did not answer within ${waitText(ms)}`)),
      ms,
    );
    Promise.resolve()
      .then(check)
      .finally(() => clearTimeout(timer))
      .then(resolve, reject);
  });
}

/** Largest request body the API reads (after decompression). */
const BODY_LIMIT = 64 * 1024;
/** The largest set of NetworkPolicies `POST /audit` takes. */
const AUDIT_BODY_LIMIT = 8 * 1024 * 1024;
/**
 * Most bytes of `POST /audit` bodies read, waiting or audited at once (each counted by its
 * Content-Length, or as the largest without one): a body is held whole from its first byte to its answer,
 * so many at once (sent slowly, or faster than they are parsed) would exhaust the process's memory
 * before the parser's queue refused any. A body is always let in when no other is held.
 */
const AUDIT_BYTES_IN_FLIGHT = 2 * AUDIT_BODY_LIMIT;
/** Where a `POST /audit` request keeps the function that counts its body again once decoded. */
const AUDIT_CHARGE = 'microsegAuditCharge';

/** Errors of express's body parser (415 bad charset, ...): 4xx with a safe message. */
function isClientError(err: unknown): err is { status: number; message: string } {
  const e = err as { status?: unknown; expose?: unknown; message?: unknown } | undefined;
  return (
    typeof e?.status === 'number' &&
    e.status >= 400 &&
    e.status < 500 &&
    e.expose === true &&
    typeof e.message === 'string'
  );
}

/**
 * The router's error for a path it cannot percent-decode (`%E0%A4%A`): a URIError with status 400,
 * not marked safe to show, so it is recognised here and answered with the segment at fault.
 */
function badPathMessage(err: unknown, path: string): string | undefined {
  if (!(err instanceof URIError) || (err as { status?: unknown }).status !== 400) return undefined;
  for (const segment of path.split('/')) {
    try {
      decodeURIComponent(segment);
    } catch {
      return `path segment "${segment}" is not valid percent-encoding (each "%" takes two hex digits, and the bytes must be UTF-8)`;
    }
  }
  return 'the path is not valid percent-encoding (each "%" takes two hex digits, and the bytes must be UTF-8)';
}

/** What a request body turned out to be, for the error saying it is not a JSON object. */
function jsonKind(v: unknown): string {
  if (v === undefined) return 'no JSON body: send it with Content-Type: application/json';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

/**
 * The text of a `POST /audit` body (its bytes, inflated by its Content-Encoding), read as every input of
 * microseg is (`readWholeText`): gzip bytes (a file kept compressed, sent as it is) decompressed, to
 * the same limit as the body (413 beyond it); a byte order mark says how it is encoded, whatever the
 * header says (Windows PowerShell's `>` writes UTF-16LE with one, some editors UTF-8 with one); else the
 * charset of `Content-Type`; else UTF-16 when a NUL byte is beside the first character, else UTF-8. A
 * charset that is none: 415; gzip that cannot be decompressed: 400 naming zlib's reason.
 */
async function auditBodyText(req: Request): Promise<string> {
  const body: unknown = req.body;
  if (!Buffer.isBuffer(body)) return '';
  const charset = /;\s*charset\s*=\s*"?([^";\s]*)"?/i.exec(req.get('content-type') ?? '')?.[1];
  try {
    return await readWholeText(Readable.from([body]), 'body', {
      maxBytes: AUDIT_BODY_LIMIT,
      tooLarge: (max) => new HttpError(413, `body is larger than ${max / 1024} KiB`),
      ...(charset !== undefined ? { encoding: charset } : {}),
    });
  } catch (err) {
    // TextDecoder's refusal of a label that names no encoding (not asked when a byte order mark says it).
    if (err instanceof RangeError && charset !== undefined)
      throw new HttpError(415, `unsupported charset ${JSON.stringify(charset)}`);
    throw err;
  }
}

/** Methods an endpoint takes, as the `Allow` header lists them (`GET` brings `HEAD`). */
function allowList(methods: readonly string[]): string[] {
  return methods.flatMap((m) => (m === 'GET' ? ['GET', 'HEAD'] : [m]));
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function oneString(v: unknown, name: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new HttpError(400, `query parameter "${name}" must be given once`);
  return v;
}

/** The entries of `m` as an object, its keys in byte order. */
function sortedEntries<T>(m: ReadonlyMap<string, T>): Record<string, T> {
  return Object.fromEntries([...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** `limit` (as `/search` and `/unobserved` take it): 1–500 in decimal digits; undefined when absent. */
function limitParam(req: Request): number | undefined {
  const text = oneString(req.query.limit, 'limit');
  if (text === undefined) return undefined;
  const limit = Number(text);
  if (!/^[0-9]+$/.test(text) || limit < 1 || limit > 500)
    throw new HttpError(400, `limit must be a whole number from 1 to 500 in decimal digits (got "${text}")`);
  return limit;
}

/** `offset`: how many items of a list to skip, 0 or more in decimal digits; 0 when absent. */
function offsetParam(req: Request): number {
  const text = oneString(req.query.offset, 'offset');
  if (text === undefined) return 0;
  if (!/^[0-9]+$/.test(text))
    throw new HttpError(400, `offset must be a whole number, 0 or more, in decimal digits (got "${text}")`);
  return Number(text);
}

/** Builds the app. Reads go to `source` on every request; layouts are cached per graph version. */
export function createApp(source: ViewSource, opts: AppOptions = {}): express.Application {
  const app = express();
  app.disable('x-powered-by');
  app.set('json spaces', 0);
  // No ETag on what the app itself sends (the API's answers, its error texts): they are live and
  // `no-store`, so a conditional GET must get the data again, never a 304 for a body the client was
  // told not to keep. The page's files keep theirs (express.static), and the libraries under /vendor
  // their Last-Modified, so a browser still revalidates them.
  app.set('etag', false);
  // Every answer, the page's files as the API's: the page runs only its own files (no inline script,
  // no eval, nothing from another origin), talks only to this server, and is framed by no other page
  // (its Isolate and Release buttons). Inline style attributes stay: the legend's colour chips.
  app.use((_req, res, next) => {
    res.set('Content-Security-Policy', CONTENT_SECURITY_POLICY);
    res.set('X-Content-Type-Options', 'nosniff');
    next();
  });
  const webRoot = opts.webRoot ?? findWebRoot();
  const vendor = vendorFiles();
  const auth = opts.auth;
  if (auth && !auth.token && !auth.verify) throw new Error('auth needs a token or a verify function');
  // What anyone may read without a token, a page elsewhere may read too through a name of its own
  // pointed at this server (DNS rebinding), unless the Host it sends is checked.
  if (!auth || auth.anonymousRead === true) app.use(hostCheck(opts.allowedHosts ?? [], opts.serviceHosts));
  const verifyTimeoutMs = auth?.verifyTimeoutMs ?? AUTH_VERIFY_TIMEOUT_MS;
  if (!(Number.isFinite(verifyTimeoutMs) && verifyTimeoutMs > 0))
    throw new Error(
      `auth.verifyTimeoutMs must be a positive number of milliseconds, found ${verifyTimeoutMs}`,
    );

  // ---- authentication ----
  async function userOf(req: Request): Promise<string | undefined> {
    const header = req.get('authorization');
    if (!auth || !header) return undefined;
    const verify = auth.verify;
    if (verify) return withinTime(() => verify(header), verifyTimeoutMs);
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    return m && auth.token && tokenMatches(m[1]!, auth.token) ? 'token' : undefined;
  }

  function tell(
    hook: ((err: unknown, req: { method: string; path: string }) => void) | undefined,
    err: unknown,
    req: Request,
  ): void {
    try {
      hook?.(err, { method: req.method, path: req.originalUrl.split('?')[0] ?? '' });
    } catch {
      // A logger that throws must not take the answer with it.
    }
  }

  function internalError(err: unknown, req: Request): void {
    tell(opts.onInternalError, err, req);
  }

  const api = express.Router();
  api.use((req, res, next) => {
    res.set('Cache-Control', 'no-store');
    // Never a 304: express answers one when the request's validators match (`If-None-Match: *`
    // matches without any ETag), which for a no-store answer would tell the client to reuse a body it
    // was told not to keep.
    Object.defineProperty(req, 'fresh', { value: false, configurable: true });
    void userOf(req).then(
      (user) => {
        res.locals.user = user;
        const reading = req.method === 'GET' || req.method === 'HEAD';
        // Anonymous reads are for callers that send no credentials: credentials sent and refused (a
        // rotated token) are answered 401, not ignored, so that the caller learns they no longer work.
        const anonymous = reading && auth?.anonymousRead === true && !req.get('authorization');
        if (auth && !user && !anonymous) {
          res.set('WWW-Authenticate', 'Bearer realm="microseg"');
          res.status(401).json({ error: 'authentication required: send "Authorization: Bearer <token>"' });
          return;
        }
        next();
      },
      (err: unknown) => {
        // The check itself failed (a TokenReview down or timing out): whether the caller may come in
        // is not known, so neither 401 (the credentials may be right) nor 500 (nothing of this
        // server failed): 503, to be sent again. The cause is the operator's, not the caller's.
        tell(opts.onAuthUnavailable, err, req);
        res.set('Retry-After', String(AUTH_RETRY_AFTER_SECONDS));
        res.status(503).json({ error: AUTH_UNAVAILABLE });
      },
    );
  });
  // After authentication: a caller who is not let in gets 401 whatever its body holds, and no body
  // of theirs is read. Any JSON value is parsed (not only objects and arrays), so that an endpoint
  // can say what it got.
  // A set of NetworkPolicies to audit comes as JSON or YAML, as `kubectl kustomize` or a repository
  // gives it, and may be larger than the other bodies.
  // Read as bytes and decoded here (`auditBodyText`): a byte order mark says what they are.
  let auditBytes = 0;
  const busy = () =>
    new SourceUnavailable(
      `busy: ${Math.ceil(auditBytes / 1024)} KiB of other policy sets are being read or audited (at most ${AUDIT_BYTES_IN_FLIGHT / 1024} KiB at once); send this one again in a few seconds`,
      5,
    );
  api.use('/audit', (req, res, next) => {
    if (req.method !== 'POST') return next();
    let cost = bodyCost(req, AUDIT_BODY_LIMIT);
    if (auditBytes > 0 && auditBytes + cost > AUDIT_BYTES_IN_FLIGHT) {
      // Not read: the connection is closed after the answer rather than the body drained.
      res.set('Connection', 'close');
      next(busy());
      return;
    }
    auditBytes += cost;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      auditBytes -= cost;
    };
    // The body as read may grow once decoded (a body that is itself gzip is inflated): counted again.
    res.locals[AUDIT_CHARGE] = (bytes: number): void => {
      const more = Math.min(bytes, AUDIT_BODY_LIMIT) - cost;
      if (released || more <= 0) return;
      if (auditBytes - cost > 0 && auditBytes + more > AUDIT_BYTES_IN_FLIGHT) throw busy();
      auditBytes += more;
      cost += more;
    };
    res.on('finish', release);
    res.on('close', release);
    next();
  });
  api.use('/audit', express.raw({ type: () => true, limit: AUDIT_BODY_LIMIT }));
  api.use(express.json({ limit: BODY_LIMIT, strict: false }));

  // ---- layout cache ----
  // One layout per graph version; a new version keeps the positions of nodes already drawn. The entry
  // is set before the graph is read: requests that come while it is read share its layout, instead of
  // each laying the graph out (seconds of a blocked event loop for a large graph).
  let cached: { version: string; layout: Promise<Layout> } | undefined;
  async function layout(): Promise<Layout> {
    const version = (await source.version?.()) ?? 'static';
    if (!cached || cached.version !== version) {
      const prior = cached;
      const previous = prior?.layout;
      const entry: { version: string; layout: Promise<Layout> } = {
        version,
        layout: (async () => {
          const graph = await source.graph();
          const before = previous ? await previous.catch(() => undefined) : undefined;
          const next = computeLayout(graph);
          return before ? stabilizeLayout(before, next, graph) : next;
        })(),
      };
      // A graph that could not be read (a 503 of the source) is not this version's layout: the next
      // request reads it again, from the layout before.
      entry.layout.catch(() => {
        if (cached === entry) cached = prior;
      });
      cached = entry;
    }
    return cached.layout;
  }

  async function isolationsOrEmpty(): Promise<IsolationView[]> {
    return source.isolations ? await source.isolations() : [];
  }

  // ---- routes ----
  // Every endpoint is registered through `route`, which keeps the methods of each path for the 405
  // answer to any other method (OPTIONS included: the API serves no CORS).
  type Handler = (req: Request, res: Response) => void | Promise<void>;
  const methodsOf = new Map<string, string[]>();
  function route(method: 'GET' | 'POST' | 'DELETE', path: string, handler: Handler): void {
    const methods = methodsOf.get(path) ?? [];
    methods.push(method);
    methodsOf.set(path, methods);
    if (method === 'GET') api.get(path, handler);
    else if (method === 'POST') api.post(path, handler);
    else api.delete(path, handler);
  }

  /** 405 for a method a path does not take here, with `Allow` listing those it takes. */
  function notAllowed(res: Response, method: string, path: string, allow: string[]): never {
    res.set('Allow', allow.join(', '));
    const takes = allow.length ? `it takes ${allow.join(', ')}` : 'it takes no method on this server';
    throw new HttpError(405, `${method} is not allowed on ${path}: ${takes}`);
  }

  /**
   * The ids of the workloads no flow was observed for: the source's, else the proposal's (`proposal`, or
   * the source's when not given). A source that lists them is not asked for its proposal: the
   * controller's builds every frozen proposal and the cluster's workloads for it.
   */
  async function unobservedIds(proposal?: Proposal): Promise<readonly string[]> {
    if (source.unobserved) return source.unobserved();
    return (proposal ?? (await source.proposal())).unobserved;
  }
  async function unobservedOf(graph: ServiceGraph): Promise<UnobservedView[]> {
    return unobservedWorkloads(graph, await unobservedIds());
  }

  route('GET', '/info', async (_req, res) => {
    const user = res.locals.user as string | undefined;
    const authenticated = user !== undefined;
    res.json({
      info: await source.info(),
      features: {
        audit: source.audits !== undefined,
        auditPolicies: source.auditPolicies !== undefined,
        isolations: source.isolations !== undefined,
        blastRadius: source.blastRadius !== undefined,
        isolate: source.isolate !== undefined,
        release: source.release !== undefined,
      },
      auth: {
        enabled: Boolean(auth),
        authenticated,
        ...(authenticated ? { user } : {}),
        canAct: authenticated,
      },
    });
  });

  route('GET', '/graph', async (req, res) => {
    const viewParam = oneString(req.query.view, 'view') ?? 'auto';
    if (!['auto', 'full', 'segments'].includes(viewParam))
      throw new HttpError(400, `view must be one of auto, full, segments (got "${viewParam}")`);
    const expandParam = oneString(req.query.expand, 'expand');
    const auditParam = oneString(req.query.audit, 'audit');
    const [graph, segments, lay] = await Promise.all([source.graph(), source.segments(), layout()]);
    const vopts: GraphViewOptions = {
      view: viewParam as 'auto' | 'full' | 'segments',
      expand: expandParam ? expandParam.split(',').filter(Boolean) : [],
      unobserved: (await unobservedOf(graph)).length,
      ...(opts.aggregateThreshold !== undefined ? { threshold: opts.aggregateThreshold } : {}),
    };
    if (auditParam !== undefined) {
      const audits = source.audits ? await source.audits() : [];
      const a = audits.find((x) => x.name === auditParam);
      if (!a) throw new HttpError(404, `no audit named "${auditParam}"`);
      vopts.blocked = a.wouldBlock;
      vopts.audit = a.name;
    }
    // Isolated: pods cut off now. Pending: an isolation in force that has cut nothing off yet (not
    // reconciled, a dry run, no pod to isolate), shown apart, never as isolated.
    const isolated = new Set<string>();
    const pending = new Set<string>();
    for (const i of await isolationsOrEmpty()) {
      if (isolationInEffect(i)) for (const w of i.workloads) isolated.add(w);
      else if (isolationActive(i)) for (const w of i.workloads) pending.add(w);
    }
    for (const w of isolated) pending.delete(w);
    vopts.isolated = isolated;
    vopts.isolationPending = pending;
    try {
      res.json(buildGraphView(graph, segments, lay, vopts));
    } catch (e) {
      // Only what was asked (a segment to expand that does not exist) is the caller's fault; anything
      // else goes to the error handler as an internal error (500).
      if (e instanceof GraphViewRequestError) throw new HttpError(400, e.message);
      throw e;
    }
  });

  route('GET', '/graph/export', async (_req, res) => {
    res.json(await source.graph());
  });

  route('GET', '/segments', async (_req, res) => {
    res.json(await source.segments());
  });

  route('GET', '/proposals', async (req, res) => {
    const format = oneString(req.query.format, 'format') ?? 'json';
    const proposal = await source.proposal();
    if (format === 'yaml') {
      res.type('application/yaml').send(policiesToYaml(proposal.policies));
      return;
    }
    if (format !== 'json') throw new HttpError(400, `format must be json or yaml (got "${format}")`);
    res.json(proposal);
  });

  route('GET', '/search', async (req, res) => {
    const q = (oneString(req.query.q, 'q') ?? '').trim().toLowerCase();
    if (!q) throw new HttpError(400, 'query parameter "q" is required');
    const limit = limitParam(req) ?? 20;
    const graph = await source.graph();
    const hits = [];
    // Exact names first, then names starting with the query, then the rest; ties by id.
    const rankOf = (label: string, id: string): number => {
      const name = label.toLowerCase();
      if (!name.includes(q) && !id.toLowerCase().includes(q)) return -1;
      return name === q ? 0 : name.startsWith(q) ? 1 : 2;
    };
    for (const n of graph.nodes) {
      const label = nodeLabel(n);
      const rank = rankOf(label, n.id);
      if (rank < 0) continue;
      hits.push({ rank, id: n.id, label, kind: n.kind, namespace: n.namespace, segment: n.segment });
    }
    // Workloads no flow was observed for are found too (not drawn: their details say why).
    for (const u of await unobservedOf(graph)) {
      const rank = rankOf(u.label, u.id);
      if (rank < 0) continue;
      hits.push({
        rank,
        id: u.id,
        label: u.label,
        kind: 'workload',
        namespace: u.namespace,
        unobserved: true,
      });
    }
    hits.sort((a, b) => a.rank - b.rank || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    res.json({
      total: hits.length,
      results: hits.slice(0, limit).map(({ rank: _rank, ...h }) => h),
    });
  });

  route('GET', '/unobserved', async (req, res) => {
    const namespace = oneString(req.query.namespace, 'namespace');
    if (namespace !== undefined && !isDnsLabel(namespace))
      throw new HttpError(
        400,
        `namespace must be a namespace name: at most 63 lowercase letters, digits and "-", starting and ending with a letter or digit (got ${JSON.stringify(namespace)})`,
      );
    // Every workload unless a limit is given: the page lists them all, grouped by namespace.
    const limit = limitParam(req);
    const offset = offsetParam(req);
    const all = await unobservedOf(await source.graph());
    // In id order (namespace first), so pages taken with offset and limit follow one another.
    const inScope = namespace === undefined ? all : all.filter((w) => w.namespace === namespace);
    res.json({
      total: inScope.length,
      workloads: inScope.slice(offset, limit === undefined ? undefined : offset + limit),
    });
  });

  route('GET', '/nodes', async (req, res) => {
    const id = oneString(req.query.id, 'id');
    if (!id) throw new HttpError(400, 'query parameter "id" is required');
    const [graph, proposal] = await Promise.all([source.graph(), source.proposal()]);
    const details = nodeDetails(graph, proposal, id, await unobservedIds(proposal));
    if (!details) throw new HttpError(404, `no node "${id}" in the graph`);
    if (details.kind === 'workload' && source.blastRadius) {
      const br = await source.blastRadius(id);
      if (br) details.blastRadius = br;
    }
    // The isolation in force on it (one that cuts its pods off first): the panel offers its release.
    const inForce = (await isolationsOrEmpty()).filter((i) => isolationActive(i) && i.workloads.includes(id));
    const iso = inForce.find(isolationInEffect) ?? inForce[0];
    if (iso) details.isolation = iso;
    const [ns, kind, name] = id.split('/');
    if (details.kind === 'workload' && kind === 'CronJob' && ns && name && source.cronJob) {
      const cj = await source.cronJob(ns, name);
      if (cj) details.cronJob = cronJobView(cj, Date.now());
    }
    res.json(details);
  });

  route('POST', '/audit', async (req, res) => {
    if (!source.auditPolicies) throw new HttpError(404, 'this source cannot audit policies');
    const pruneText = oneString(req.query.prune, 'prune') ?? 'false';
    if (pruneText !== 'true' && pruneText !== 'false')
      throw new HttpError(400, `prune must be true or false (got ${JSON.stringify(pruneText)})`);
    const text = await auditBodyText(req);
    (res.locals[AUDIT_CHARGE] as ((bytes: number) => void) | undefined)?.(Buffer.byteLength(text));
    const blank = blankText(text, 'body');
    if (blank !== undefined)
      throw new HttpError(
        400,
        `${blank}: send the NetworkPolicies to audit as JSON or YAML (one object, a List, or YAML documents)`,
      );
    // Parsed off the event loop: a large YAML body takes seconds (see parse.ts).
    const parser = opts.parser ?? (sharedParser ??= new ObjectsParser());
    if (parser.waiting >= PARSE_QUEUE_LIMIT)
      throw new SourceUnavailable(
        `${PARSE_QUEUE_LIMIT} policy sets are waiting to be parsed already; send this one again in a few seconds`,
        5,
      );
    // One set is read and audited at a time, the others waiting in line (see AUDIT_AT_ONCE): side by
    // side, each would hold its engines meanwhile. Refused before anything is done for it.
    const turns = opts.auditTurns ?? (sharedAuditTurns ??= new Turns(AUDIT_AT_ONCE));
    if (turns.waiting >= AUDIT_QUEUE_LIMIT)
      throw new SourceUnavailable(
        `${AUDIT_QUEUE_LIMIT} policy sets are waiting to be audited already (one is audited at a time); send this one again in a few seconds`,
        5,
      );
    // A client that goes away before the answer takes its body out of the parser's queue and itself
    // out of the line (or stops its parse, the reading of its policies or their audit): the requests
    // behind it need not wait for it, nor is the work of a request no one waits for held once its
    // bytes no longer count.
    const gone = new AbortController();
    const onClose = () => {
      if (!res.writableFinished) gone.abort();
    };
    res.on('close', onClose);
    // Gone already: its connection closed while the body was read or inflated (a gzip body is
    // inflated asynchronously), before this listener was there to hear it.
    if (res.closed) onClose();
    // In line from now, in the order received, as the parser takes the bodies: its body is parsed
    // while it waits.
    const turn = turns.enter(gone.signal);
    try {
      // Read in the parsing thread: only the policies and the counts of the other objects come back.
      const encoded = await parser.parseAudit(text, 'body', gone.signal);
      if (encoded.ends.length === 0)
        throw new HttpError(
          400,
          `body holds no NetworkPolicy (networking.k8s.io/v1) to audit, nor ${CLUSTER_POLICY_KINDS.join(', ')}`,
        );
      await turn.ready;
      const body = await readAuditBody(encoded, gone.signal);
      // Other objects (a kustomize build holds the whole application) are left out, and said so.
      const ignored = new Map(body.ignored);
      const result = await source.auditPolicies(body.networkPolicies, {
        prune: pruneText === 'true',
        clusterPolicies: body.clusterPolicies,
        signal: gone.signal,
      });
      res.json({ ...result, ...(ignored.size > 0 ? { ignored: sortedEntries(ignored) } : {}) });
    } finally {
      turn.leave();
      res.off('close', onClose);
    }
  });

  route('GET', '/audits', async (_req, res) => {
    if (!source.audits) throw new HttpError(404, 'this source has no audit data');
    res.json(await source.audits());
  });

  route('GET', '/isolations', async (_req, res) => {
    if (!source.isolations) throw new HttpError(404, 'this source has no isolation data');
    res.json(await source.isolations());
  });

  function requireUser(res: Response): string {
    const user = res.locals.user as string | undefined;
    if (!user)
      throw new HttpError(
        403,
        'actions need an authenticated user; the server was started without authentication',
      );
    return user;
  }

  route('POST', '/isolations', async (req, res) => {
    const user = requireUser(res);
    if (!source.isolate) {
      res.set('Allow', allowList(['GET']).join(', '));
      throw new HttpError(405, 'this source cannot isolate workloads');
    }
    const body = req.body as unknown;
    if (body === null || typeof body !== 'object' || Array.isArray(body))
      throw new HttpError(
        400,
        `body must be a JSON object {"workload": "namespace/Kind/name", "reason"?: string} (got ${jsonKind(body)})`,
      );
    const { workload, reason } = body as { workload?: unknown; reason?: unknown };
    if (
      typeof workload !== 'string' ||
      workload.split('/').length !== 3 ||
      workload.split('/').some((part) => part === '')
    )
      throw new HttpError(400, 'body.workload must be a workload id "namespace/Kind/name"');
    if (reason !== undefined && typeof reason !== 'string')
      throw new HttpError(400, 'body.reason must be a string');
    // A workload of the graph, or one in scope no flow was observed for (idle while learning: its
    // details offer the action too).
    const graph = await source.graph();
    if (
      !graph.nodes.some((n) => n.id === workload && n.kind === 'workload') &&
      !(await unobservedOf(graph)).some((u) => u.id === workload)
    )
      throw new HttpError(404, `no workload "${workload}" in the graph`);
    const created = await source.isolate({ workload, ...(reason ? { reason } : {}) }, user);
    res.status(201).json(created);
  });

  route('DELETE', '/isolations/:name', async (req, res) => {
    const user = requireUser(res);
    if (!source.release) {
      res.set('Allow', '');
      throw new HttpError(405, 'this source cannot release isolations');
    }
    const name = String(req.params.name);
    if (!(await source.release(name, user))) throw new HttpError(404, `no isolation named "${name}"`);
    res.status(204).end();
  });

  for (const [path, methods] of methodsOf) {
    const allow = allowList(methods);
    const shown = path.replace(/:(\w+)/g, '<$1>');
    api.all(path, (req, res) => notAllowed(res, req.method, `${req.baseUrl}${shown}`, allow));
  }

  api.use((_req, _res) => {
    throw new HttpError(404, 'no such API endpoint');
  });

  api.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const e = err as { type?: unknown; errno?: unknown; status?: unknown; limit?: unknown } | undefined;
    const encoding = (req.get('content-encoding') ?? 'identity').trim().toLowerCase();
    const badPath = badPathMessage(err, req.path);
    // The client went away before its answer (see POST /audit): there is no one to answer.
    if (err instanceof ParseAbandoned || err instanceof StepsAbandoned) return;
    if (err instanceof HttpError) res.status(err.status).json({ error: err.message });
    else if (err instanceof SourceUnavailable)
      res.status(503).set('Retry-After', String(err.retryAfterSeconds)).json({ error: err.message });
    else if (err instanceof InputError) res.status(400).json({ error: err.message });
    else if (badPath) res.status(400).json({ error: badPath });
    else if (err instanceof SyntaxError && 'body' in err)
      res.status(400).json({ error: `body is not valid JSON: ${err.message}` });
    else if (e?.type === 'entity.too.large')
      res.status(413).json({
        error: `body is larger than ${(typeof e.limit === 'number' ? e.limit : BODY_LIMIT) / 1024} KiB`,
      });
    else if (e?.status === 400 && typeof e.errno === 'number' && encoding !== 'identity')
      // zlib's error while inflating the body (`incorrect header check`): the body is not what its
      // Content-Encoding says.
      res.status(400).json({
        error: `body is not valid ${encoding} data (Content-Encoding: ${encoding}): ${(err as Error).message}`,
      });
    else if (e?.type === 'encoding.unsupported' && e.status === 415)
      res.status(415).json({
        error: `unsupported content encoding "${encoding}": send the body as is or with gzip, deflate, br or zstd`,
      });
    else if (isClientError(err)) res.status(err.status).json({ error: err.message });
    else {
      internalError(err, req);
      res.status(500).json({ error: `internal error: ${(err as Error)?.message ?? String(err)}` });
    }
  });

  app.use('/api/v1', api);
  // Any other path under /api (another version, a typo of one): the API's own answer, in JSON.
  app.use('/api', (_req, res) => {
    res.set('X-Content-Type-Options', 'nosniff');
    res.status(404).json({ error: 'no such API endpoint' });
  });
  app.get('/vendor/:file', (req, res, next) => {
    const path = vendor[String(req.params.file)];
    if (!path) {
      next();
      return;
    }
    res.set('Cache-Control', 'public, max-age=3600');
    res.sendFile(path);
  });
  app.use(express.static(webRoot, { index: 'index.html', maxAge: 0 }));
  // Another method on a file of the page (`POST /index.html`): 405 as the API answers one, no body read.
  const pageFiles = new Set([
    '/',
    ...pageFileNames(webRoot),
    ...Object.keys(vendor).map((f) => `/vendor/${f}`),
  ]);
  app.use((req, res, next) => {
    if (req.method === 'GET' || req.method === 'HEAD' || !pageFiles.has(req.path)) {
      next();
      return;
    }
    res.set('Allow', 'GET, HEAD').set('X-Content-Type-Options', 'nosniff');
    const path = req.originalUrl.split('?')[0] ?? '';
    res.status(405).json({ error: `${req.method} is not allowed on ${path}: it takes GET, HEAD` });
  });
  // Outside the API, answers are JSON as the API's are, never express's default HTML page (which
  // shows the stack outside production): a path that is no file of the page, 404 naming it and what
  // the server serves (a browser gets a small page saying so, `notFound`); a path the router cannot
  // decode (`/vendor/%E0%A4%A`), 400 naming the segment; any other error, its status.
  app.use((req, res) => {
    notFound(req, res, [...servedBefore(res), PAGE_SERVED], `${req.baseUrl}/`);
  });
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const badPath = badPathMessage(err, req.path);
    const e = err as { status?: unknown; expose?: unknown; message?: unknown } | undefined;
    res.set('X-Content-Type-Options', 'nosniff');
    if (badPath) res.status(400).json({ error: badPath });
    else if (typeof e?.status === 'number' && e.status >= 400 && e.status < 600) {
      // The file server's own 5xx (a page file it cannot read: EACCES, ELOOP, EIO) is the server's
      // failure too: told to the operator, though the answer says only 'request failed'.
      if (e.status >= 500) internalError(err, req);
      res.status(e.status).json({ error: e.expose === true ? String(e.message) : 'request failed' });
    } else {
      internalError(err, req);
      res.status(500).json({ error: `internal error: ${errorMessage(err)}` });
    }
  });
  return app;
}
