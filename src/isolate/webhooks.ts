/**
 * Webhook receivers that turn alerts into Isolations: Falco / Falcosidekick JSON and the Prometheus
 * Alertmanager webhook. Each is an express Router to mount on the controller's HTTP server.
 *
 * Contract: authentication first (bearer token compared in constant time, or a verified TLS client
 * certificate); then a rate limit; a body that is not a valid payload gets 400 and changes nothing; a 2xx
 * is sent only once every Isolation the payload asks for is persisted by the apiserver. Apiserver or
 * network failures answer 503 (Alertmanager retries 5xx only), and so does the rate limit on the
 * Alertmanager route; Falco gets 429.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { NextFunction, Request, Response, Router } from 'express';
import express from 'express';
import type { Isolation, WorkloadKind } from './api.ts';
import { RECEIVED_AT_ANNOTATION, REARM_ANNOTATION, WORKLOAD_KIND_GROUPS, WORKLOAD_KINDS } from './api.ts';
import { bodyCost } from '../server/body-cost.ts';
import type { Kube } from './kube.ts';
import { KubeError, MERGE_PATCH, isConflict, isNotFound, paths } from './kube.ts';
import type { IsolationMetrics } from './metrics.ts';
import type { AlertAction, AlertmanagerConfig, FalcoConfig, IsolationDefaults } from './triggers.ts';
import {
  DEFAULT_ALERTMANAGER_CONFIG,
  DEFAULT_FALCO_CONFIG,
  DEFAULT_ISOLATION,
  PayloadError,
  alertmanagerActions,
  falcoAction,
  parseAlertmanagerPayload,
  parseFalcoAlert,
  truncationNote,
} from './triggers.ts';

export interface WebhookAuth {
  /**
   * Accepted bearer tokens (read on every request, so a rotated Secret takes effect at once). Throws when
   * they cannot be read: a request with a bearer token is then answered 503 with `Retry-After` (not 401,
   * which Alertmanager and Falcosidekick do not retry), and the error is not shown to the caller.
   */
  tokens?: () => readonly string[];
  /** Accept requests that presented a TLS client certificate the server verified (mTLS). */
  clientCertificates?: boolean;
}

export interface WebhookOptions {
  kube: Kube;
  auth: WebhookAuth;
  /** Requests per second and burst, per router (default 200/s, burst 400). */
  rateLimit?: { perSecond: number; burst: number };
  defaults?: IsolationDefaults;
  metrics?: IsolationMetrics;
  /**
   * Called after an Isolation is persisted (e.g. to enqueue its reconcile at once), with the object the
   * apiserver returned when this request created it.
   */
  onPersisted?: (namespace: string, name: string, created?: Isolation) => void;
  now?: () => Date;
  /**
   * Isolations known to exist (shared by both receivers; the controller forgets deleted ones). Default:
   * one per router, entries kept 30 s.
   */
  known?: KnownIsolations;
  /**
   * Largest accepted body (default `DEFAULT_WEBHOOK_BODY_LIMIT`, 8 MiB: an Alertmanager group of a few
   * thousand alerts with long annotations). A larger body gets 413 naming the limit, and is logged.
   */
  maxBodyBytes?: number;
  /**
   * Most bytes of bodies read or acted on at once, per receiver (default twice `maxBodyBytes`), each
   * counted by `bodyCost` (a compressed body as the largest); a request beyond it, while others are in
   * flight, is answered as the rate limit is (Retry-After) and counted `busy`.
   */
  maxBytesInFlight?: number;
  /** Where a warning for the operator goes (alerts Alertmanager left out of a payload). */
  log?: (line: string) => void;
}

/**
 * The default largest webhook body. Alertmanager sends a whole alert group in one body and does not retry
 * a 413, so the limit is well above real groups (about 3 KiB per alert with labels and annotations), and
 * still bounds what one request can make the process hold.
 */
export const DEFAULT_WEBHOOK_BODY_LIMIT = 8 * 1024 * 1024;

/** A byte count as the limits are said: `8 MiB`, `64 KiB`, or `1000 bytes`. */
function sizeText(bytes: number): string {
  if (bytes >= 1024 * 1024 && bytes % (1024 * 1024) === 0) return `${bytes / (1024 * 1024)} MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} bytes`;
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** Constant-time token check: both sides are hashed first, so lengths never leak either. */
export function tokenMatches(presented: string, accepted: readonly string[]): boolean {
  const p = digest(presented);
  let ok = false;
  for (const a of accepted) if (a !== '' && timingSafeEqual(p, digest(a))) ok = true;
  return ok;
}

function authenticate(auth: WebhookAuth, unavailable: () => void) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const header = req.get('authorization') ?? '';
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    let unreadable = false;
    if (m && auth.tokens) {
      let accepted: readonly string[] | undefined;
      try {
        accepted = auth.tokens();
      } catch {
        unreadable = true;
      }
      if (accepted && tokenMatches(m[1]!, accepted)) return next();
    }
    if (auth.clientCertificates) {
      const sock = req.socket as Partial<TLSSocket>;
      if (sock.encrypted && sock.authorized === true && sock.getPeerCertificate) {
        const cert = sock.getPeerCertificate();
        if (cert && Object.keys(cert).length > 0) return next();
      }
    }
    if (unreadable) {
      // Fail closed, but retryably: the token may be right, the server cannot tell now.
      unavailable();
      res.set('Retry-After', '5');
      res.status(503).json({ error: 'the bearer tokens of this webhook cannot be read; retry later' });
      return;
    }
    res.set('WWW-Authenticate', 'Bearer realm="microseg"');
    res.status(401).json({
      error: m ? 'invalid bearer token' : 'authentication required (bearer token or client certificate)',
    });
  };
}

/** A token bucket. */
export class RateLimiter {
  private tokens: number;
  private last: number;
  private readonly perSecond: number;
  private readonly burst: number;
  private readonly clock: () => number;
  constructor(perSecond: number, burst: number, clock: () => number = () => performance.now()) {
    this.perSecond = perSecond;
    this.burst = burst;
    this.tokens = burst;
    this.clock = clock;
    this.last = clock();
  }
  take(): boolean {
    const t = this.clock();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.perSecond);
    this.last = t;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

export interface ActionResult {
  action: string;
  namespace?: string;
  name?: string;
  outcome:
    'created' | 'exists' | 'rearmed' | 'releasing' | 'deleted' | 'absent' | 'ignored' | 'rejected' | 'failed';
  reason?: string;
}

/**
 * Isolations known to exist, so that the rest of an alert storm is answered without another apiserver
 * write. An entry is added when this process created the Isolation or the apiserver answered
 * AlreadyExists, and dropped when it is released here, when the controller's watch sees it deleted
 * (`forget`), or after `ttlMs`.
 *
 * Only a watch of Isolations tells it of a deletion, a release or an expiry made elsewhere (`microseg
 * release`, another replica, the controller). The leader's controller runs one and says so
 * (`setWatched`); without it (a replica that does not lead, or while the watch is re-listing) an entry
 * only spares the write: the Isolation is read again (from the apiserver's watch cache) before an alert
 * is answered `exists`.
 */
export class KnownIsolations {
  private readonly entries = new Map<string, number>();
  private readonly ttlMs: number;
  private watchedNow = false;
  /** When each key was last forgotten (a count of `forget` calls), so a read older than that is not kept. */
  private readonly forgotten = new Map<string, number>();
  private forgets = 0;
  /** The `forgets` count when every entry was last forgotten at once (`clear`). */
  private clearedAt = 0;
  constructor(ttlMs = 30_000) {
    this.ttlMs = ttlMs;
  }
  /** Whether a watch now tells this cache of every Isolation deleted or released (see the class). */
  get watched(): boolean {
    return this.watchedNow;
  }
  setWatched(on: boolean): void {
    this.watchedNow = on;
  }
  /** Forgets every entry: a watch (re)starting cannot tell what was deleted before it started. */
  clear(): void {
    this.entries.clear();
    this.forgets++;
    this.forgotten.clear();
    this.clearedAt = this.forgets;
  }
  /** A mark to pass to `remember` for what the apiserver answers from now on. */
  mark(): number {
    return this.forgets;
  }
  /**
   * `since`: the `mark()` taken before the apiserver was asked; when the Isolation was forgotten (seen
   * deleted or released) after it, what the apiserver answered is older than that, and is not kept.
   */
  remember(namespace: string, name: string, since?: number): void {
    const k = `${namespace}/${name}`;
    if (since !== undefined && (this.clearedAt > since || (this.forgotten.get(k) ?? 0) > since)) return;
    const now = Date.now();
    // Kept in the order they expire (one ttl for all): those expired, never looked up again (an alert
    // storm over, its pods gone), are dropped from the front.
    this.entries.delete(k);
    for (const [old, until] of this.entries) {
      if (until >= now) break;
      this.entries.delete(old);
    }
    this.entries.set(k, now + this.ttlMs);
    if (this.entries.size > 100_000) this.entries.delete(this.entries.keys().next().value!);
  }
  has(namespace: string, name: string): boolean {
    const k = `${namespace}/${name}`;
    const until = this.entries.get(k);
    if (until === undefined) return false;
    if (until < Date.now()) {
      this.entries.delete(k);
      return false;
    }
    return true;
  }
  forget(namespace: string, name: string): void {
    const k = `${namespace}/${name}`;
    this.entries.delete(k);
    // Kept in the order forgotten, for the requests in flight only: the oldest go first.
    this.forgotten.delete(k);
    this.forgotten.set(k, ++this.forgets);
    if (this.forgotten.size > 10_000) this.forgotten.delete(this.forgotten.keys().next().value!);
  }
}

/** How `Persister.isolate` treats an Isolation that exists. */
export interface IsolateOptions {
  /**
   * A re-arm (of a released Isolation) also takes the request's `includeFuture: true`, in the same merge
   * patch, when the Isolation targets the request's workload (same kind, API group and name) without it:
   * the web page's Isolate, which asks for a CronJob's runs to come, re-arms an Isolation written
   * without them (by the CLI, or by the page before it asked) as it would create it. Alerts do not set
   * it: they target pods by name, and a re-arm keeps the spec as it is.
   */
  rearmIncludeFuture?: boolean;
}

/**
 * Persists what the alerts (and the web page's buttons) ask for; identical concurrent requests share one
 * apiserver call.
 */
export class Persister {
  private readonly kube: Kube;
  private readonly known: KnownIsolations;
  private readonly inflight = new Map<string, Promise<ActionResult>>();
  private readonly onPersisted?: (namespace: string, name: string, created?: Isolation) => void;
  constructor(
    kube: Kube,
    known: KnownIsolations,
    onPersisted?: (namespace: string, name: string, created?: Isolation) => void,
  ) {
    this.kube = kube;
    this.known = known;
    this.onPersisted = onPersisted;
  }

  run(a: AlertAction): Promise<ActionResult> {
    if (a.action === 'ignore')
      return Promise.resolve({ action: 'ignore', outcome: 'ignored', reason: a.reason });
    if (a.action === 'reject')
      return Promise.resolve({ action: 'reject', outcome: 'rejected', reason: a.reason });
    return a.action === 'isolate' ? this.isolate(a.isolation) : this.release(a.namespace, a.name);
  }

  /** Creates the Isolation, or re-arms it when it exists and was released; an active one is left alone. */
  isolate(iso: Isolation, opts: IsolateOptions = {}): Promise<ActionResult> {
    const ns = iso.metadata.namespace ?? '';
    return this.once(`isolate\u0000${ns}/${iso.metadata.name}`, () => this.create(iso, opts));
  }

  /** Deletes the Isolation (the controller restores its pods); `absent` when there was none. */
  release(namespace: string, name: string): Promise<ActionResult> {
    return this.once(`release\u0000${namespace}/${name}`, () => this.remove(namespace, name));
  }

  private once(k: string, f: () => Promise<ActionResult>): Promise<ActionResult> {
    let p = this.inflight.get(k);
    if (!p) {
      p = f().finally(() => this.inflight.delete(k));
      this.inflight.set(k, p);
    }
    return p;
  }

  private async create(iso: Isolation, opts: IsolateOptions): Promise<ActionResult> {
    const ns = iso.metadata.namespace ?? '';
    const base = { action: 'isolate', namespace: ns, name: iso.metadata.name };
    if (this.known.has(ns, iso.metadata.name)) {
      if (this.known.watched || (await this.stillInEffect(ns, iso.metadata.name)))
        return { ...base, outcome: 'exists' };
      // Deleted, being deleted or released since: decided on as if it were not known.
      this.known.forget(ns, iso.metadata.name);
    }
    const since = this.known.mark();
    try {
      const created = await this.kube.request<Isolation>({
        method: 'POST',
        path: paths.isolations(ns),
        body: iso,
      });
      this.known.remember(ns, iso.metadata.name, since);
      this.onPersisted?.(ns, iso.metadata.name, created);
      return { ...base, outcome: 'created' };
    } catch (err) {
      if (!(err instanceof KubeError && err.status === 409)) throw err;
    }
    const rearmed = await this.rearm(iso, opts);
    // Being deleted (released by a responder): it answers for nothing any more, and is not remembered.
    if (rearmed === 'releasing') return { ...base, outcome: 'releasing' };
    this.known.remember(ns, iso.metadata.name, since);
    this.onPersisted?.(ns, iso.metadata.name, rearmed);
    return { ...base, outcome: rearmed ? 'rearmed' : 'exists' };
  }

  /**
   * The incident's Isolation exists. If it was released (it expired), the alert isolates again: the
   * Isolation is re-armed with the time this alert was received, and the object is returned. Otherwise
   * the Isolation still answers for the incident and nothing is written. With `rearmIncludeFuture`, the
   * re-arm also sets the request's `includeFuture` (see IsolateOptions). `releasing` when it is being
   * deleted (or is gone since the create found it): the alert must be sent again, not answered `exists`.
   */
  private async rearm(iso: Isolation, opts: IsolateOptions): Promise<Isolation | 'releasing' | undefined> {
    const ns = iso.metadata.namespace ?? '';
    const path = paths.isolation(ns, iso.metadata.name);
    const receivedAt = iso.metadata.annotations?.[RECEIVED_AT_ANNOTATION] ?? new Date().toISOString();
    for (let attempt = 0; attempt < 3; attempt++) {
      let existing: Isolation;
      try {
        existing = await this.kube.request<Isolation>({ method: 'GET', path });
      } catch (err) {
        // Deleted in between: not there to answer for the incident; the alert sent again creates it anew.
        if (isNotFound(err)) return 'releasing';
        throw err;
      }
      if (existing.metadata.deletionTimestamp) return 'releasing';
      if (existing.status?.phase !== 'Released') return undefined;
      const already = existing.metadata.annotations?.[REARM_ANNOTATION];
      if (
        already &&
        existing.status.releasedAt &&
        Date.parse(already) > Date.parse(existing.status.releasedAt)
      )
        return undefined; // re-armed by another alert already; its reconcile is under way
      const widen = opts.rearmIncludeFuture === true && gainsFuture(existing, iso);
      try {
        return await this.kube.request<Isolation>({
          method: 'PATCH',
          path,
          contentType: MERGE_PATCH,
          body: {
            metadata: {
              resourceVersion: existing.metadata.resourceVersion,
              annotations: { [REARM_ANNOTATION]: receivedAt, [RECEIVED_AT_ANNOTATION]: receivedAt },
            },
            ...(widen ? { spec: { target: { workload: { includeFuture: true } } } } : {}),
          },
        });
      } catch (err) {
        if (isNotFound(err)) return 'releasing';
        if (!isConflict(err)) throw err;
      }
    }
    throw new Error(`Isolation ${ns}/${iso.metadata.name} kept changing while being re-armed`);
  }

  /**
   * Whether the Isolation is there and in effect (not being deleted, not released), read from the
   * apiserver's watch cache: a read from memory, not a write, for each alert of a storm on a replica no
   * watch tells of deletions.
   */
  private async stillInEffect(ns: string, name: string): Promise<boolean> {
    try {
      const cur = await this.kube.request<Isolation>({
        method: 'GET',
        path: paths.isolation(ns, name),
        query: { resourceVersion: '0' },
      });
      return !cur.metadata.deletionTimestamp && cur.status?.phase !== 'Released';
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  private async remove(ns: string, name: string): Promise<ActionResult> {
    const base = { action: 'release', namespace: ns, name };
    this.known.forget(ns, name);
    try {
      await this.kube.request({ method: 'DELETE', path: paths.isolation(ns, name) });
      return { ...base, outcome: 'deleted' };
    } catch (err) {
      if (isNotFound(err)) return { ...base, outcome: 'absent' };
      throw err;
    }
  }
}

/**
 * Whether the request `iso` asks for a workload's pods to come (`includeFuture: true`) and `existing`
 * targets that same workload (kind, API group, name) without them. A known kind's API group given or
 * left out is the same group (`microseg isolate --workload CronJob.batch/NAME` writes `apiGroup: batch`
 * under the name the page's Isolate uses, without it). Any other target of `existing` (pods, a selector,
 * another workload after a hand edit) is not touched.
 */
function gainsFuture(existing: Isolation, iso: Isolation): boolean {
  const want = iso.spec?.target?.workload;
  const has = existing.spec?.target?.workload;
  const group = (w: { kind?: string; apiGroup?: string }): string | undefined =>
    w.apiGroup ??
    (WORKLOAD_KINDS.includes(w.kind as WorkloadKind)
      ? WORKLOAD_KIND_GROUPS[w.kind as WorkloadKind]
      : undefined);
  return (
    want?.includeFuture === true &&
    has !== undefined &&
    has.includeFuture !== true &&
    has.kind === want.kind &&
    has.name === want.name &&
    group(has) === group(want)
  );
}

/**
 * What a payload asks for; `truncated`, alerts its sender left out (Alertmanager's `truncatedAlerts`),
 * with the `warning` that names them (`count` 0 when the value sent was not a count: warned of only).
 */
interface Decision {
  actions: AlertAction[];
  truncated?: { receiver: string; count: number; warning: string };
}

type Decide = (body: unknown, receivedAt: string) => Decision;

/** The endpoints `isolationWebhooks` serves, as the controller's 404 lists them. */
export const WEBHOOK_ENDPOINTS: readonly string[] = ['POST /webhooks/falco', 'POST /webhooks/alertmanager'];

/** The webhooks `isolationWebhooks` serves, as a 404 under `/webhooks` names them. */
const WEBHOOK_PATHS = `the webhooks are ${WEBHOOK_ENDPOINTS.join(' and ')}`;

/**
 * 404 for a path that is no webhook (`/webhooks/falco/x`), in JSON as every other answer, naming the
 * webhooks there are (`listed`). Its body is not read.
 */
function noSuchWebhook(req: Request, res: Response, listed: string): void {
  res.status(404).json({
    error: `no such webhook: ${req.method} ${req.originalUrl.split('?')[0]}; ${listed}`,
  });
}

/**
 * `listed`: the webhooks a 404 under the receiver names (by default the receiver itself, wherever it is
 * mounted).
 */
function receiver(
  source: 'falco' | 'alertmanager',
  o: WebhookOptions,
  decide: Decide,
  listed?: string,
): Router {
  const router = express.Router();
  const rl = o.rateLimit ?? { perSecond: 200, burst: 400 };
  const limiter = new RateLimiter(rl.perSecond, rl.burst);
  const persister = new Persister(o.kube, o.known ?? new KnownIsolations(), o.onPersisted);
  const now = o.now ?? (() => new Date());
  const count = (outcome: string) => o.metrics?.alert(source, outcome);
  router.use(authenticate(o.auth, () => count('tokens_unreadable')));
  router.use((_req, res, next) => {
    if (limiter.take()) return next();
    count('rate_limited');
    res.set('Retry-After', '1');
    // Alertmanager retries 5xx only; 429 would drop the alert.
    res.status(source === 'alertmanager' ? 503 : 429).json({ error: 'rate limit exceeded; retry later' });
  });
  // Before the body is read: a GET or PUT is answered 405 whatever it carries.
  router.all('/', (req, res, next) => {
    if (req.method === 'POST') return next();
    res.set('Allow', 'POST');
    res.status(405).json({ error: `method ${req.method} is not allowed; alerts are sent with POST` });
  });
  // Any other path under the receiver (`/webhooks/falco/x`) is no webhook: 404, its body unread.
  router.use((req, res, next) => {
    if (req.path === '/') return next();
    noSuchWebhook(req, res, listed ?? `this webhook is POST ${req.baseUrl}`);
  });
  const limit = o.maxBodyBytes ?? DEFAULT_WEBHOOK_BODY_LIMIT;
  // Bodies being read or acted on at once hold at most this many bytes (each counted by its
  // Content-Length, or the limit when it gives none or is compressed, which express.json inflates), so
  // that a burst of large bodies, each within the limit, cannot exhaust the memory: one more is answered
  // as the rate limit is, to be sent again. A request is always let in when none is in flight, so that a
  // body of the largest size passes.
  const budget = o.maxBytesInFlight ?? 2 * limit;
  let inFlight = 0;
  router.use((req, res, next) => {
    const cost = bodyCost(req, limit);
    if (inFlight > 0 && inFlight + cost > budget) {
      count('busy');
      res.set('Retry-After', '1');
      res.status(source === 'alertmanager' ? 503 : 429).json({
        error: `busy: ${Math.ceil(inFlight / 1024)} KiB of other alerts are being read or acted on; retry later`,
      });
      return;
    }
    inFlight += cost;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      inFlight -= cost;
    };
    res.on('finish', release);
    res.on('close', release);
    next();
  });
  router.use(express.json({ limit, type: () => true, strict: false }));
  router.post('/', async (req: Request, res: Response) => {
    const receivedAt = now().toISOString();
    let decision: Decision;
    try {
      if (req.body === undefined || req.get('content-length') === '0')
        throw new PayloadError('body is empty');
      decision = decide(req.body, receivedAt);
    } catch (err) {
      if (err instanceof PayloadError) {
        count('invalid');
        res.status(400).json({ error: err.message });
        return;
      }
      throw err;
    }
    const { actions, truncated } = decision;
    // Counted and logged whatever becomes of the alerts that did come: those left out are lost either way.
    if (truncated) {
      if (truncated.count > 0) o.metrics?.truncatedAlerts(truncated.receiver, truncated.count);
      o.log?.(truncated.warning);
    }
    // Every action is settled before answering: a refusal of one alert (422, not retried) must not hide
    // a retryable failure of another, which is answered 503 so that Alertmanager sends the payload again.
    const settled = await Promise.allSettled(actions.map((a) => persister.run(a)));
    const refused = (e: unknown) =>
      e instanceof KubeError && e.status >= 400 && e.status < 500 && e.status !== 429;
    const errors = settled.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    // An Isolation being deleted cannot take the alert: retryable, so that it is not lost as `exists`, nor
    // hidden by another alert's refusal.
    const releasing = settled.find(
      (r): r is PromiseFulfilledResult<ActionResult> =>
        r.status === 'fulfilled' && r.value.outcome === 'releasing',
    )?.value;
    // Each alert under its own outcome, whatever the answer: a rejection or a creation beside a failure
    // of another alert is not hidden by the 503 (a payload sent again counts again).
    for (const r of settled)
      count(r.status === 'rejected' || r.value.outcome === 'releasing' ? 'failed' : r.value.outcome);
    try {
      const retryable = errors.findIndex((e) => !refused(e));
      if (retryable >= 0) throw errors[retryable];
      if (releasing)
        throw new Error(
          `Isolation ${releasing.namespace}/${releasing.name} is being released; send the alert again once it is gone`,
        );
      if (errors.length > 0) throw errors[0];
      const results = settled.map((r) => (r as PromiseFulfilledResult<ActionResult>).value);
      res.status(200).json({
        results,
        ...(truncated && truncated.count > 0 ? { truncatedAlerts: truncated.count } : {}),
        ...(truncated ? { warning: truncated.warning } : {}),
      });
    } catch (err) {
      if (refused(err)) {
        // The apiserver refused it (e.g. the namespace does not exist): retrying will not help.
        res.status(422).json({ error: (err as KubeError).message });
        return;
      }
      res.status(503).json({
        error: `could not persist the Isolation: ${err instanceof Error ? err.message : String(err)}`,
      });
    }
  });
  router.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    const e = err as { type?: string; status?: number; message?: string };
    if (e && e.type === 'entity.parse.failed') {
      count('invalid');
      res.status(400).json({ error: `body is not valid JSON: ${e.message ?? ''}` });
      return;
    }
    if (e && e.type === 'entity.too.large') {
      count('invalid');
      o.log?.(
        `the ${source === 'falco' ? 'Falco' : 'Alertmanager'} webhook refused a body larger than ${sizeText(limit)} (413): its alerts were not acted on`,
      );
      res.status(413).json({
        error: `body is larger than ${sizeText(limit)}, the largest this webhook accepts${source === 'alertmanager' ? "; send smaller groups (the receiver's max_alerts in Alertmanager)" : ''}`,
      });
      return;
    }
    if (e && typeof e.status === 'number' && e.status >= 400 && e.status < 500) {
      count('invalid');
      const encoding = (req.get('content-encoding') ?? 'identity').trim().toLowerCase();
      // zlib's error while inflating the body (`incorrect header check`) says nothing of the body: the
      // body is not what its Content-Encoding says.
      const inflating = typeof (err as { errno?: unknown }).errno === 'number' && encoding !== 'identity';
      res.status(400).json({
        error: inflating
          ? `body is not valid ${encoding} data (Content-Encoding: ${encoding}): ${e.message ?? ''}`
          : (e.message ?? 'bad request'),
      });
      return;
    }
    next(err);
  });
  // Anything else is a failure of the receiver, not of the request: answered in JSON as every other
  // answer (never express's HTML page, which shows the stack), 5xx so that the sender retries, and the
  // error with its stack goes to the operator's log.
  router.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const message = err instanceof Error ? err.message : String(err);
    o.log?.(
      `the ${source === 'falco' ? 'Falco' : 'Alertmanager'} webhook failed on ${req.method} ${req.originalUrl}: ${(err instanceof Error ? err.stack : undefined) ?? message}`,
    );
    res.status(500).json({ error: `internal error: ${message}` });
  });
  return router;
}

export function falcoRouter(o: WebhookOptions & { falco?: FalcoConfig }): Router {
  return falcoReceiver(o);
}

function falcoReceiver(o: WebhookOptions & { falco?: FalcoConfig }, listed?: string): Router {
  const cfg = o.falco ?? DEFAULT_FALCO_CONFIG;
  const defaults = o.defaults ?? DEFAULT_ISOLATION;
  return receiver(
    'falco',
    o,
    (body, at) => ({
      actions: [falcoAction(parseFalcoAlert(body), cfg, defaults, at)],
    }),
    listed,
  );
}

export function alertmanagerRouter(o: WebhookOptions & { alertmanager?: AlertmanagerConfig }): Router {
  return alertmanagerReceiver(o);
}

function alertmanagerReceiver(
  o: WebhookOptions & { alertmanager?: AlertmanagerConfig },
  listed?: string,
): Router {
  const cfg = o.alertmanager ?? DEFAULT_ALERTMANAGER_CONFIG;
  const defaults = o.defaults ?? DEFAULT_ISOLATION;
  return receiver(
    'alertmanager',
    o,
    (body, at) => {
      const payload = parseAlertmanagerPayload(body);
      const actions = alertmanagerActions(payload, cfg, defaults, at);
      const warning = truncationNote(payload);
      return warning === undefined
        ? { actions }
        : {
            actions,
            truncated: { receiver: payload.receiver ?? '', count: payload.truncatedAlerts, warning },
          };
    },
    listed,
  );
}

/**
 * The bearer tokens in the text of a token file or Secret key: one per line or comma-separated, blanks
 * around each and empty entries dropped. Both the Secret reader and the controller's
 * `--webhook-token-file` read tokens this way.
 */
export function parseTokens(text: string): string[] {
  return text
    .split(/[\n,]/)
    .map((t) => t.trim())
    .filter((t) => t !== '');
}

/**
 * Reads bearer tokens from a Secret key (see `parseTokens`), refreshing periodically. The first read must
 * succeed and find a token. A later refresh that finds the Secret deleted, or its key gone or holding no
 * token, withdraws the tokens read before: `tokens()` throws (the webhooks answer 503, which Alertmanager
 * and Falcosidekick retry) until a refresh finds a token again, so emptying or deleting the Secret revokes
 * them. A refresh that fails otherwise (no permission, the apiserver unavailable) keeps the tokens read
 * before. Each distinct problem is logged once, and once more when a refresh succeeds again.
 */
export async function tokensFromSecret(
  kube: Kube,
  namespace: string,
  name: string,
  key = 'token',
  refreshMs = 30_000,
  log: (line: string) => void = (line) => console.warn(line),
): Promise<{ tokens: () => readonly string[]; stop: () => void }> {
  const what = `Secret ${namespace}/${name}`;
  const label = `webhook tokens of ${what} key ${JSON.stringify(key)}`;
  /** An error saying the tokens were taken away (the Secret deleted, the key gone or emptied). */
  const withdrawal = (message: string) => Object.assign(new Error(message), { withdrawn: true });
  let current: string[] = [];
  /** Why the tokens read before are no longer accepted, while they are not. */
  let withdrawn: string | undefined;
  const load = async () => {
    const s = await kube.request<{ data?: Record<string, string> }>({
      method: 'GET',
      path: `/api/v1/namespaces/${namespace}/secrets/${name}`,
    });
    const raw = s.data?.[key];
    if (raw === undefined) throw withdrawal(`${what} has no key ${JSON.stringify(key)}`);
    const tokens = parseTokens(Buffer.from(raw, 'base64').toString('utf8'));
    if (tokens.length === 0) throw withdrawal(`${what} key ${JSON.stringify(key)} holds no token`);
    current = tokens;
  };
  await load();
  let failing: string | undefined;
  const refresh = async () => {
    try {
      await load();
    } catch (err) {
      const problem = err instanceof Error ? err.message : String(err);
      const gone = isNotFound(err) || (err as { withdrawn?: boolean }).withdrawn === true;
      withdrawn = gone ? problem : withdrawn;
      if (problem !== failing)
        log(
          `${label} cannot be refreshed: ${problem}; ${
            withdrawn !== undefined
              ? 'the webhooks answer 503 until it holds a token again'
              : 'the tokens read before are still accepted'
          }`,
        );
      failing = problem;
      return;
    }
    withdrawn = undefined;
    if (failing !== undefined) log(`${label} are refreshed again`);
    failing = undefined;
  };
  const timer = setInterval(() => void refresh(), refreshMs);
  timer.unref();
  return {
    tokens: () => {
      if (withdrawn !== undefined) throw new Error(`${label} cannot be read: ${withdrawn}`);
      return current;
    },
    stop: () => clearInterval(timer),
  };
}

/**
 * Both receivers under one router, for the controller's HTTP server: `POST /webhooks/falco` and
 * `POST /webhooks/alertmanager`. Any other path under `/webhooks` is answered 404 in JSON naming them
 * (under a receiver, after its authentication), its body unread.
 */
export function isolationWebhooks(
  o: WebhookOptions & { falco?: FalcoConfig; alertmanager?: AlertmanagerConfig },
): Router {
  const r = express.Router();
  const shared = { ...o, known: o.known ?? new KnownIsolations() };
  r.use('/webhooks/falco', falcoReceiver(shared, WEBHOOK_PATHS));
  r.use('/webhooks/alertmanager', alertmanagerReceiver(shared, WEBHOOK_PATHS));
  r.use('/webhooks', (req, res) => noSuchWebhook(req, res, WEBHOOK_PATHS));
  return r;
}
