/**
 * Isolation inside `microseg controller`: the Falco and Alertmanager webhooks and the web page's Isolate
 * and Release buttons on every replica (a request is persisted as an Isolation whichever replica
 * receives it), the reconciler only on the leader.
 */
import { readFileSync } from 'node:fs';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Router } from 'express';
import type { OtherObject } from '../model/k8s.ts';
import type { EngineOptions } from '../verify/types.ts';
import type { Isolation } from './api.ts';
import { ISOLATION_LABEL, MANAGED_BY_LABEL, MANAGED_BY_VALUE } from './api.ts';
import type { IsolationController, IsolationControllerOptions } from './controller.ts';
import { startIsolationController } from './controller.ts';
import type { Kube } from './kube.ts';
import { IsolationMetrics } from './metrics.ts';
import type { IsolationActions } from './ui.ts';
import { isolationActions } from './ui.ts';
import type { AlertmanagerConfig, FalcoConfig, TargetLabels } from './triggers.ts';
import {
  DEFAULT_ALERTMANAGER_CONFIG,
  DEFAULT_FALCO_CONFIG,
  FALCO_PRIORITIES,
  familyText,
  normalizePriority,
} from './triggers.ts';
import { isolationWebhooks, KnownIsolations, parseTokens, Persister } from './webhooks.ts';

export interface IsolationWiring {
  /** Mounted on the controller's HTTP server: POST /webhooks/falco and /webhooks/alertmanager. */
  router?: Router;
  /**
   * Started when this replica starts leading, stopped when it stops; told of the cluster-wide policies
   * added, changed or deleted (the controller's watch of them), for the leak checks to run again.
   */
  leaderTask: {
    start(): Promise<void>;
    stop(): Promise<void>;
    clusterPoliciesChanged(objs: readonly OtherObject[]): void;
  };
  metrics: IsolationMetrics;
  /** What the web page's Isolate and Release buttons do. */
  actions: IsolationActions;
}

export interface IsolationWiringOptions {
  kc: KubeConfig;
  kube: Kube;
  /** File holding the webhooks' bearer token (a mounted Secret: re-read on change, so rotation works). */
  webhookTokenFile?: string;
  /** Which Falco alerts isolate (default `DEFAULT_FALCO_CONFIG`). */
  falco?: FalcoConfig;
  /** Which Alertmanager alerts isolate (default `DEFAULT_ALERTMANAGER_CONFIG`). */
  alertmanager?: AlertmanagerConfig;
  log: (line: string) => void;
  /** Where a warning goes (default `log`). */
  warn?: (line: string) => void;
  /** The semantics of the leak check's engine (`--ipblock-pods` and the others); default the engine's. */
  engine?: EngineOptions;
  /** Starts the reconciler when this replica leads (default `startIsolationController`; for tests). */
  startController?: (o: IsolationControllerOptions) => Promise<IsolationController>;
}

/** The trigger flags of `microseg controller`, as given (each repeatable one as a list). */
export interface TriggerFlags {
  alertmanagerAlertnames?: string[];
  alertmanagerSeverities?: string[];
  /** `NS_LABEL/POD_LABEL` each. */
  alertmanagerTargetLabels?: string[];
  falcoRules?: string[];
  falcoMinimumPriority?: string;
}

const SEVERITY_RE = /^[A-Za-z0-9_.-]+$/;
/** A Prometheus label name. */
const LABEL_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The webhooks' trigger settings from the controller's flags, on the defaults; a flag value that is
 * none names the flag (`problem`).
 */
export function triggerConfig(
  f: TriggerFlags,
): { falco: FalcoConfig; alertmanager: AlertmanagerConfig } | { problem: string } {
  const alertnames = f.alertmanagerAlertnames ?? [];
  if (alertnames.some((n) => n.trim() === ''))
    return { problem: '--alertmanager-alertname must not be empty' };
  let severities = DEFAULT_ALERTMANAGER_CONFIG.severities;
  if (f.alertmanagerSeverities !== undefined && f.alertmanagerSeverities.length > 0) {
    const given = f.alertmanagerSeverities;
    const bad = given.find((s) => !SEVERITY_RE.test(s));
    if (bad !== undefined)
      return {
        problem: `--alertmanager-severity ${JSON.stringify(bad)} is not a severity (letters, digits, "_", "." and "-"; repeat the flag for several)`,
      };
    if (given.some((s) => s.toLowerCase() === 'any')) {
      if (given.length > 1)
        return { problem: '--alertmanager-severity any cannot be given with other severities' };
      severities = [];
    } else severities = [...new Set(given.map((s) => s.toLowerCase()))];
  }
  let targetLabels = DEFAULT_ALERTMANAGER_CONFIG.targetLabels;
  if (f.alertmanagerTargetLabels !== undefined && f.alertmanagerTargetLabels.length > 0) {
    const families: TargetLabels[] = [];
    for (const text of f.alertmanagerTargetLabels) {
      const parts = text.split('/');
      const [namespace, pod] = parts;
      if (
        parts.length !== 2 ||
        namespace === undefined ||
        pod === undefined ||
        !LABEL_NAME_RE.test(namespace) ||
        !LABEL_NAME_RE.test(pod)
      )
        return {
          problem: `--alertmanager-target-labels ${JSON.stringify(text)} is not NS_LABEL/POD_LABEL (two Prometheus label names, e.g. k8s_ns_name/k8s_pod_name; repeat the flag for several)`,
        };
      if (namespace === pod)
        return {
          problem: `--alertmanager-target-labels ${JSON.stringify(text)} names the same label for the namespace and the pod`,
        };
      if (families.some((x) => x.namespace === namespace && x.pod === pod)) continue;
      // A label in two families would make the other one look incomplete on every alert.
      const shared = families.find((x) => [x.namespace, x.pod].some((l) => l === namespace || l === pod));
      if (shared !== undefined)
        return {
          problem: `--alertmanager-target-labels ${JSON.stringify(text)} shares a label with ${familyText(shared)} (each label belongs to one family)`,
        };
      families.push({ namespace, pod });
    }
    targetLabels = families;
  }
  const rules = f.falcoRules ?? [];
  if (rules.some((r) => r.trim() === '')) return { problem: '--falco-rule must not be empty' };
  let minimumPriority = DEFAULT_FALCO_CONFIG.minimumPriority;
  if (f.falcoMinimumPriority !== undefined) {
    const p = normalizePriority(f.falcoMinimumPriority);
    if (p === undefined)
      return {
        problem: `--falco-minimum-priority ${JSON.stringify(f.falcoMinimumPriority)} is not one of ${FALCO_PRIORITIES.join(', ')}`,
      };
    minimumPriority = p;
  }
  return {
    falco: { minimumPriority, rules },
    alertmanager: { ...DEFAULT_ALERTMANAGER_CONFIG, alertnames, severities, targetLabels },
  };
}

/** What the webhooks isolate on, for the start log. */
export function describeTriggers(falco: FalcoConfig, am: AlertmanagerConfig): string {
  const list = (xs: string[]) => xs.map((x) => JSON.stringify(x)).join(', ');
  const falcoText = `Falco alerts of priority ${falco.minimumPriority} or more severe, ${falco.rules.length > 0 ? `rules ${list(falco.rules)}` : 'any rule'}`;
  const amText = `firing Alertmanager alerts with ${am.severities.length > 0 ? `severity ${am.severities.join(' or ')}` : 'any severity or none'}, ${am.alertnames.length > 0 ? `alertname ${list(am.alertnames)}` : 'any alertname'}, the pod named by the labels ${am.targetLabels.map(familyText).join(', ')} (all of them present on an alert must agree)`;
  return `isolation webhooks isolate on ${falcoText}; on ${amText}`;
}

/**
 * Reads a token file, caching it for a second so a busy webhook does not read it per request. A file
 * that cannot be read, or holds no token, throws (the webhooks answer 503, retryable) and is read again
 * at the next request, so the webhooks recover as soon as it can be read; `report` is told of each
 * change between readable and not (with the error, or a new error while unreadable).
 */
function tokenReader(path: string, report: (problem: string | undefined) => void): () => readonly string[] {
  let cached: { at: number; tokens: string[] } | undefined;
  let failing: string | undefined;
  return () => {
    const now = Date.now();
    if (!cached || now - cached.at > 1000) {
      let tokens: string[];
      try {
        tokens = parseTokens(readFileSync(path, 'utf8'));
        if (tokens.length === 0) throw new Error('it holds no token');
      } catch (err) {
        cached = undefined;
        const problem = err instanceof Error ? err.message : String(err);
        if (problem !== failing) report(problem);
        failing = problem;
        throw new Error(`webhook token file ${path} cannot be read: ${problem}`, { cause: err });
      }
      if (failing !== undefined) report(undefined);
      failing = undefined;
      cached = { at: now, tokens };
    }
    return cached.tokens;
  };
}

export function wireIsolation(o: IsolationWiringOptions): IsolationWiring {
  const known = new KnownIsolations();
  const metrics = new IsolationMetrics();
  let running: IsolationController | undefined;
  let starting: Promise<void> | undefined;
  let wanted = false;
  // On the leader the reconcile starts at once; elsewhere the leader's watch picks it up.
  const onPersisted = (namespace: string, name: string, created?: Isolation) =>
    running?.enqueue(namespace, name, created);
  const falco = o.falco ?? DEFAULT_FALCO_CONFIG;
  const alertmanager = o.alertmanager ?? DEFAULT_ALERTMANAGER_CONFIG;
  const router = o.webhookTokenFile
    ? isolationWebhooks({
        kube: o.kube,
        auth: {
          tokens: tokenReader(o.webhookTokenFile, (problem) => {
            metrics.setTokensUnreadable(problem !== undefined);
            (o.warn ?? o.log)(
              problem === undefined
                ? `webhook token file ${o.webhookTokenFile} is readable again`
                : `webhook token file ${o.webhookTokenFile} cannot be read: ${problem}: the webhooks answer 503 until it can`,
            );
          }),
        },
        known,
        metrics,
        onPersisted,
        log: o.warn ?? o.log,
        falco,
        alertmanager,
      })
    : undefined;
  if (router) {
    o.log(describeTriggers(falco, alertmanager));
    if (alertmanager.severities.length === 0 && alertmanager.alertnames.length === 0)
      (o.warn ?? o.log)(
        'the Alertmanager webhook isolates on every firing alert that names a pod: the Alertmanager route to it is the only filter (set --alertmanager-severity or --alertmanager-alertname)',
      );
  }
  return {
    ...(router ? { router } : {}),
    metrics,
    actions: isolationActions({ kube: o.kube, persister: new Persister(o.kube, known, onPersisted) }),
    leaderTask: {
      // start() is not awaited by the leader election: stop() may come while the controller is still
      // starting. Whether it should run is decided when it has started (`wanted`), and stop() waits for
      // that, so once stop() is done no reconciler of this replica runs; a start() while one is under
      // way shares it.
      start: async () => {
        wanted = true;
        if (running) return;
        starting ??= (async () => {
          const c = await (o.startController ?? startIsolationController)({
            kc: o.kc,
            kube: o.kube,
            known,
            metrics,
            log: o.log,
            ...(o.engine ? { engine: o.engine } : {}),
          });
          if (wanted) running = c;
          else await c.stop(); // leadership ended while it started
        })().finally(() => {
          starting = undefined;
        });
        await starting;
      },
      stop: async () => {
        wanted = false;
        const pending = starting;
        const r = running;
        running = undefined;
        await r?.stop();
        // A start under way stops what it started itself (unless a later start() wants it again).
        await pending?.catch(() => undefined);
        // Only the leader knows which Isolations are in effect (see forgetActive).
        metrics.forgetActive();
      },
      // An admin-tier policy of someone else's may now let traffic reach an isolated pod (or no longer
      // does): the leader checks every Isolation again at once. An Isolation's own deny objects are not
      // such a change, and the reconciler puts them back itself: an alert storm's new denies do not
      // reconcile every Isolation in effect each.
      clusterPoliciesChanged: (objs) => {
        const own = (o: OtherObject) =>
          o.metadata.labels?.[ISOLATION_LABEL] !== undefined &&
          o.metadata.labels[MANAGED_BY_LABEL] === MANAGED_BY_VALUE;
        if (objs.every(own)) return;
        running?.clusterPoliciesChanged();
      },
    },
  };
}
