/**
 * `microseg controller`: runs the in-cluster controller (Segmentation reconciler, flow ingestion,
 * leader election, /healthz /readyz /metrics and the flow push endpoint) until SIGTERM or SIGINT.
 */
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { hostname } from 'node:os';
import { normalizeHubbleFlow } from '../../flows/hubble.ts';
import { parseDuration } from '../../controller/api.ts';
import { KubeClient } from '../../controller/kube.ts';
import type { Level } from '../../controller/log.ts';
import { jsonLogger } from '../../controller/log.ts';
import { Manager } from '../../controller/manager.ts';
import { parseListen } from '../../controller/server.ts';
import { isDnsLabel } from '../../isolate/api.ts';
import { kubeFromControllerClient } from '../../isolate/kube.ts';
import type { IsolationWiringOptions } from '../../isolate/wire.ts';
import type { AuthOptions } from '../../server/app.ts';
import { triggerConfig, wireIsolation } from '../../isolate/wire.ts';
import { WEBHOOK_ENDPOINTS } from '../../isolate/webhooks.ts';
import { labelSelectorTextProblem } from '../../model/selectors.ts';
import { ListenError } from '../../server/listen.ts';
import {
  clusterDomain,
  DEFAULT_CLUSTER_DOMAIN,
  DEFAULT_SERVICE_NAME,
  serviceHostNames,
  serviceNameProblem,
} from '../../server/hosts.ts';
import { allowedHostsOption } from '../allow-host.ts';
import { ENGINE_OPTION_SPECS, engineOptionsText, parseEngineOptions } from '../../verify/cli-options.ts';
import type { EngineOptions } from '../../verify/types.ts';
import {
  DEFAULT_KEEPALIVE_MS,
  DEFAULT_QUEUE_CAPACITY,
  hubbleCredentials,
  logHubbleEvent,
  isHubbleAddress,
  Telemetry,
} from '../../telemetry/index.ts';
import type { Checkpoint, HubbleTLS, TelemetryOptions } from '../../telemetry/index.ts';
import { loadKubeConfig } from '../kubeconfig.ts';
import { argsCommand } from '../args.ts';
import { UsageError } from '../io.ts';
import { readProblem } from '../../flows/reader.ts';

export const HELP = `usage: microseg controller [options]

Runs the microseg controller against the cluster of the kubeconfig (in a pod: its ServiceAccount).

options:
  --kubeconfig PATH          kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in a pod its ServiceAccount)
  --leader-elect             campaign for the Lease; only the leader learns and writes
  --lease-namespace NS       namespace of the Lease (default $POD_NAMESPACE or microseg-system)
  --lease-name NAME          name of the Lease (default microseg-controller)
  --identity NAME            this replica's name (default $POD_NAME or the host name)
  --listen ADDR              HTTP address for /healthz /readyz /metrics /v1/flows (default :8080)
  --hubble-relay HOST:PORT   stream flows from Hubble Relay (GetFlows, follow)
  --hubble-tls-ca FILE       CA bundle of the relay's certificate (default: the system's roots); any
                             --hubble-tls-* flag turns TLS on
  --hubble-tls-cert FILE     client certificate (mutual TLS)
  --hubble-tls-key FILE      client key (mutual TLS)
  --hubble-tls-server-name N name to verify the relay's certificate against
  --hubble-keepalive DUR     interval of the keepalive pings that find a dead relay connection (default
                             5m, the least Hubble Relay's gRPC server accepts; 10s to 24h)
  --push-token-file FILE     enable POST /v1/flows with this bearer token (the web page's API needs it too,
                             unless --api-token-file is given)
  --api-token-file FILE      the web page's API takes this bearer token, and no other (not the push
                             token), for every call: reads, audits, isolate and release
  --allow-host NAME          without a token the page answers only requests for localhost, 127.0.0.1,
                             [::1] and the address it is reached at, else 403 (a guard against DNS
                             rebinding): also this host name (repeatable; * for any)
  --service-name NAME        the Service in front of the controller, whose in-cluster names the page
                             answers without a token too: NAME, NAME.NS.svc, NAME.NS.svc.DOMAIN, and
                             NAME.NS unless NS ($POD_NAMESPACE) could be a top-level domain (default
                             ${DEFAULT_SERVICE_NAME})
  --cluster-domain DOMAIN    the cluster's DNS domain, in those names (default ${DEFAULT_CLUSTER_DOMAIN})
  --no-ui                    do not serve the web page of the graph and its JSON API
  --webhook-token-file FILE  enable the Falco and Alertmanager webhooks (POST /webhooks/falco,
                             /webhooks/alertmanager) with the bearer token(s) in FILE, one per line
                             or comma-separated
  --alertmanager-severity L  isolate on Alertmanager alerts whose severity label is L (repeatable;
                             default critical; any: every alert, whatever its severity)
  --alertmanager-alertname N isolate only on Alertmanager alerts named N (repeatable; default any)
  --alertmanager-target-labels NS_LABEL/POD_LABEL
                             read the pod to isolate from these labels only (repeatable; default
                             k8s_ns_name/k8s_pod_name, exported_namespace/exported_pod, namespace/pod,
                             kubernetes_namespace/kubernetes_pod_name); an alert is rejected when
                             the pairs on it name different pods or one has a label without the other
  --falco-minimum-priority P isolate on Falco alerts of priority P or more severe (default Critical)
  --falco-rule NAME          isolate only on the Falco rule NAME (repeatable; default any)
  --no-isolation             do not run the Isolation reconciler nor the webhooks (nor show Isolations
                             on the web page)
  --queue-capacity N         flows buffered between sources and the controller (default ${DEFAULT_QUEUE_CAPACITY})
  --segmentation-selector S  manage only Segmentations matching this label selector (default all)
  --resync DURATION          level-based resync of each Segmentation (default 10s; 1s to 24h)
  --persist-interval DUR     least time between writes of learned edges and evidence (default 30s;
                             1s to 24h)
  --ipblock-pods yes|no      ipBlock peers match pod IPs, in the audits and the isolation leak check
                             (default no with --hubble-relay, as Cilium never applies an ipBlock to
                             pods; else yes, as the upstream e2e suite)
  --self-traffic allow|evaluate  a pod reaching itself (default allow)
  --node-traffic allow|evaluate  traffic from a pod's own node (default allow)
  --host-network node|pod    host-network pods count as their node (default) or as pods
  --log-level LEVEL          debug, info, warn or error (default info)

Bad flags (a file that cannot be read, an address that is not one, a port in use, no kubeconfig found)
exit with code 2 and a message naming the flag, before anything starts. The trigger flags
(--alertmanager-*, --falco-*) are checked the same way; with --no-isolation, or without
--webhook-token-file, no webhook runs: they have no effect and the start log says so.

exit codes: 0 stopped by SIGTERM or SIGINT; 2 bad flags (nothing started); 3 internal error
`;

/** Kubernetes object names (RFC 1123 subdomains), as a Lease's name must be. */
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** The isolation flags, as parseArgs gives them. */
export interface IsolationFlagValues {
  'no-isolation'?: boolean | undefined;
  'webhook-token-file'?: string | undefined;
  'alertmanager-severity'?: string[] | undefined;
  'alertmanager-alertname'?: string[] | undefined;
  'alertmanager-target-labels'?: string[] | undefined;
  'falco-minimum-priority'?: string | undefined;
  'falco-rule'?: string[] | undefined;
}

/** The flags that set what the webhooks isolate on. */
const TRIGGER_FLAGS = [
  'alertmanager-severity',
  'alertmanager-alertname',
  'alertmanager-target-labels',
  'falco-minimum-priority',
  'falco-rule',
] as const;

/**
 * What the isolation flags ask of `wireIsolation`: its webhook settings (`wiring`, undefined with
 * --no-isolation), and `ignored`, a line to log when flags are given that no webhook uses (with
 * --no-isolation, or trigger flags without --webhook-token-file). A value that is none throws a
 * UsageError naming its flag, whether or not it would be used.
 */
export function isolationSettings(values: IsolationFlagValues): {
  wiring?: Pick<IsolationWiringOptions, 'webhookTokenFile' | 'falco' | 'alertmanager'>;
  ignored?: string;
} {
  const triggers = triggerConfig({
    ...(values['alertmanager-severity'] ? { alertmanagerSeverities: values['alertmanager-severity'] } : {}),
    ...(values['alertmanager-alertname'] ? { alertmanagerAlertnames: values['alertmanager-alertname'] } : {}),
    ...(values['alertmanager-target-labels']
      ? { alertmanagerTargetLabels: values['alertmanager-target-labels'] }
      : {}),
    ...(values['falco-rule'] ? { falcoRules: values['falco-rule'] } : {}),
    ...(values['falco-minimum-priority'] !== undefined
      ? { falcoMinimumPriority: values['falco-minimum-priority'] }
      : {}),
  });
  if ('problem' in triggers) throw new UsageError(triggers.problem);
  const webhookTokenFile = values['webhook-token-file'];
  const given = TRIGGER_FLAGS.filter((f) => values[f] !== undefined).map((f) => `--${f}`);
  const ignored = (flags: string[], why: string) =>
    flags.length === 0
      ? {}
      : { ignored: `${flags.join(', ')} ${flags.length === 1 ? 'is' : 'are'} ignored: ${why}` };
  if (webhookTokenFile === '') throw new UsageError('--webhook-token-file must not be empty');
  if (values['no-isolation'])
    return ignored(
      [...(webhookTokenFile !== undefined ? ['--webhook-token-file'] : []), ...given],
      '--no-isolation turns the webhooks off',
    );
  // Re-read while running, and may appear later (an optional Secret): only something that can never be
  // read as a file is refused.
  if (webhookTokenFile !== undefined) {
    const problem = unreadableFile(webhookTokenFile, true);
    if (problem !== undefined) throw new UsageError(`--webhook-token-file ${webhookTokenFile}: ${problem}`);
  }
  return {
    wiring: {
      ...(webhookTokenFile !== undefined ? { webhookTokenFile } : {}),
      falco: triggers.falco,
      alertmanager: triggers.alertmanager,
    },
    ...(webhookTokenFile === undefined
      ? ignored(given, 'the webhooks run only with --webhook-token-file, which is not given')
      : {}),
  };
}

/**
 * Bounds of `--resync` and `--persist-interval`: below a second the leader reconciles (and writes its
 * learned edges) in a loop without pause, and beyond what a Node.js timer holds (about 24.8 days) the
 * timer fires after 1 ms, the same loop; a day is long enough for either.
 */
const MIN_INTERVAL_MS = 1000;
const MAX_INTERVAL_MS = 24 * 3_600_000;

/** The least a duration flag takes, and what a shorter one is told. */
interface Least {
  ms: number;
  problem: string;
}

function duration(
  flag: string,
  v: string | undefined,
  dflt: number,
  least: Least = { ms: MIN_INTERVAL_MS, problem: 'is shorter than 1s' },
): number {
  if (v === undefined) return dflt;
  const ms = parseDuration(v);
  if (ms === undefined)
    throw new UsageError(`--${flag} ${JSON.stringify(v)} is not a duration such as "10s" or "1m"`);
  if (ms < least.ms) throw new UsageError(`--${flag} ${JSON.stringify(v)} ${least.problem}`);
  if (ms > MAX_INTERVAL_MS) throw new UsageError(`--${flag} ${JSON.stringify(v)} is longer than 24h`);
  return ms;
}

/** grpc-go clients refuse a keepalive interval below 10 s too: a relay seldom permits less. */
const MIN_HUBBLE_KEEPALIVE_MS = 10_000;

/** The options the command takes, as node:util parseArgs reads them (its --help lists each). */
export const OPTIONS = {
  kubeconfig: { type: 'string' },
  'leader-elect': { type: 'boolean', default: false },
  'lease-namespace': { type: 'string' },
  'lease-name': { type: 'string' },
  identity: { type: 'string' },
  listen: { type: 'string', default: ':8080' },
  'hubble-relay': { type: 'string' },
  'hubble-tls-ca': { type: 'string' },
  'hubble-tls-cert': { type: 'string' },
  'hubble-tls-key': { type: 'string' },
  'hubble-tls-server-name': { type: 'string' },
  'hubble-keepalive': { type: 'string' },
  'push-token-file': { type: 'string' },
  'api-token-file': { type: 'string' },
  'allow-host': { type: 'string', multiple: true },
  'service-name': { type: 'string' },
  'cluster-domain': { type: 'string' },
  'no-ui': { type: 'boolean' },
  'webhook-token-file': { type: 'string' },
  'no-isolation': { type: 'boolean' },
  'alertmanager-severity': { type: 'string', multiple: true },
  'alertmanager-alertname': { type: 'string', multiple: true },
  'alertmanager-target-labels': { type: 'string', multiple: true },
  'falco-minimum-priority': { type: 'string' },
  'falco-rule': { type: 'string', multiple: true },
  'queue-capacity': { type: 'string' },
  resync: { type: 'string' },
  'segmentation-selector': { type: 'string' },
  'persist-interval': { type: 'string' },
  'log-level': { type: 'string', default: 'info' },
  ...ENGINE_OPTION_SPECS,
  help: { type: 'boolean', short: 'h' },
} as const;

/**
 * The semantics of every engine the controller builds (the Segmentation audits, `POST /api/v1/audit`,
 * the isolation leak check), from the `--ipblock-pods`, `--self-traffic`, `--node-traffic` and
 * `--host-network` flags, each as the offline commands take it. One default differs: flows read from
 * Hubble Relay mean Cilium, which never applies an ipBlock to a pod's IP (its CIDR rules skip the
 * endpoints it manages), so without `--ipblock-pods` ipBlocks match no pod when `hubble` is true.
 * A value a flag does not take throws, naming the flag.
 */
export function engineSettings(
  values: Record<string, unknown>,
  hubble: boolean,
): { options: EngineOptions; text: string } {
  const options = parseEngineOptions(values);
  let why = '';
  if (options.ipBlockMatchesPods === undefined && hubble) {
    options.ipBlockMatchesPods = false;
    why = ' (--ipblock-pods no as --hubble-relay is given: Cilium applies no ipBlock to pods)';
  }
  return { options, text: `NetworkPolicy semantics: ${engineOptionsText(options)}${why}` };
}

export const run = argsCommand(OPTIONS, HELP, false, async ({ values }, io) => {
  const level = values['log-level'];
  if (!['debug', 'info', 'warn', 'error'].includes(level))
    throw new UsageError(`--log-level ${JSON.stringify(level)} is not one of debug, info, warn, error`);
  const log = jsonLogger({
    level: level as Level,
    sink: (l) => io.err(l),
    fields: { component: 'microseg-controller' },
  });
  const listen = parseListenFlag(values.listen);
  let queueCapacity = DEFAULT_QUEUE_CAPACITY;
  if (values['queue-capacity'] !== undefined) {
    queueCapacity = Number(values['queue-capacity']);
    if (!Number.isInteger(queueCapacity) || queueCapacity < 1)
      throw new UsageError(
        `--queue-capacity ${JSON.stringify(values['queue-capacity'])} is not a positive integer`,
      );
  }
  const engine = engineSettings(values, values['hubble-relay'] !== undefined);
  const resyncMs = duration('resync', values.resync, 10_000);
  const persistIntervalMs = duration('persist-interval', values['persist-interval'], 30_000);

  // Names the API server would refuse for the Lease: the controller would start and never lead.
  const leaseName = values['lease-name'];
  if (leaseName !== undefined && !(leaseName.length <= 253 && DNS_SUBDOMAIN.test(leaseName)))
    throw new UsageError(
      `--lease-name ${JSON.stringify(leaseName)} is not a Kubernetes object name (lower-case letters, digits, '-' and '.', at most 253 characters)`,
    );
  const leaseNamespace = values['lease-namespace'];
  if (leaseNamespace !== undefined && !isDnsLabel(leaseNamespace))
    throw new UsageError(
      `--lease-namespace ${JSON.stringify(leaseNamespace)} is not a namespace name (lower-case letters, digits and '-', at most 63 characters)`,
    );

  const selector = values['segmentation-selector'];
  if (selector !== undefined) {
    const problem = labelSelectorTextProblem(selector);
    if (problem !== undefined)
      throw new UsageError(
        `--segmentation-selector ${JSON.stringify(selector)} is not a label selector: ${problem}`,
      );
  }

  // Two controllers split by selectors elect one leader when they share the Lease, which then reconciles
  // only its own Segmentations; and each leader runs the Isolation reconciler.
  if (selector !== undefined && values['leader-elect'] && leaseName === undefined)
    log.warn(
      '--segmentation-selector with the default Lease microseg-controller: a controller beside another ' +
        'one needs its own --lease-name (add it to the resourceNames of the microseg-leader-election Role), ' +
        'else the two elect one leader for both, and the Segmentations of the other are not reconciled; ' +
        'and --no-isolation on all but one',
    );
  let hubble: TelemetryOptions['hubble'];
  const relay = values['hubble-relay'];
  const tls = hubbleTls(values, relay !== undefined);
  const keepalive = values['hubble-keepalive'];
  if (keepalive !== undefined && relay === undefined)
    throw new UsageError('--hubble-keepalive applies to --hubble-relay only, which is not given');
  const keepaliveMs = duration('hubble-keepalive', keepalive, DEFAULT_KEEPALIVE_MS, {
    ms: MIN_HUBBLE_KEEPALIVE_MS,
    problem: 'is less than the least, 10s',
  });
  if (relay !== undefined) {
    if (!isHubbleAddress(relay))
      throw new UsageError(
        `--hubble-relay ${JSON.stringify(relay)} is not host:port (e.g. hubble-relay.kube-system.svc:80)`,
      );
    hubble = {
      address: relay,
      ...(tls ? { tls } : {}),
      keepaliveMs,
      normalize: (f) => normalizeHubbleFlow(f),
      onEvent: (e) => logHubbleEvent(log, e),
    };
  }
  const isolationFlags = isolationSettings(values);
  if (isolationFlags.ignored !== undefined) log.warn(isolationFlags.ignored);
  const api = apiToken(values['api-token-file'], values['no-ui'] === true);
  for (const flag of ['allow-host', 'service-name', 'cluster-domain'] as const)
    if (values[flag] !== undefined && values['no-ui'])
      throw new UsageError(`--${flag} applies to the web page, which --no-ui turns off`);
  // The namespace it runs in (the Downward API's, in the manifests), else the Lease's.
  const podNamespace = process.env.POD_NAMESPACE;
  if (podNamespace !== undefined && !isDnsLabel(podNamespace))
    throw new UsageError(
      `$POD_NAMESPACE ${JSON.stringify(podNamespace)} is not a namespace name (lower-case letters, digits and '-', at most 63 characters)`,
    );
  const ownNamespace = podNamespace ?? leaseNamespace ?? 'microseg-system';
  const serviceName = values['service-name'] ?? DEFAULT_SERVICE_NAME;
  const serviceProblem = serviceNameProblem(serviceName);
  if (serviceProblem !== undefined) throw new UsageError(serviceProblem);
  const domain = clusterDomain(values['cluster-domain'] ?? DEFAULT_CLUSTER_DOMAIN);
  if ('problem' in domain) throw new UsageError(domain.problem);
  let push: TelemetryOptions['push'];
  if (values['push-token-file'] === '') throw new UsageError('--push-token-file must not be empty');
  if (values['push-token-file']) {
    const file = values['push-token-file'];
    let token: string | undefined;
    // The manifests mount the token from an optional Secret: no Secret, no push endpoint (below).
    const problem = unreadableFile(file, true);
    if (problem !== undefined) throw new UsageError(`--push-token-file ${file}: ${problem}`);
    try {
      token = readFileSync(file, 'utf8').trim();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        throw new UsageError(`--push-token-file ${file}: ${readProblem(err)}`);
      // Read once: the push endpoint and the page's authentication are set up at start, so a Secret
      // created later takes a restart (docs/controller.md, Install).
      log.warn(
        `push endpoint disabled${values['no-ui'] || api !== undefined ? '' : ", and the web page's API read-only, open without a token"}: ` +
          'the token file does not exist; it is read at start only: once it exists (the Secret created), ' +
          'restart the controller',
        { file },
      );
    }
    if (token === '') throw new UsageError(`--push-token-file ${file} is empty`);
    // Records are read by the push endpoint's own generic-schema parser (parseGenericRecord).
    if (token !== undefined) push = { token };
  }
  const allowedHosts = allowedHostsOption(values['allow-host'], listen.host);
  // Besides these, the names pods in the cluster reach the controller by, through its Service.
  const serviceHosts = serviceHostNames(serviceName, ownNamespace, domain.domain);
  const auth = pageAuth({ ...(push ? { push: push.token } : {}), ...(api !== undefined ? { api } : {}) });
  // Not bad usage: the manifests' push token comes from an optional Secret, with or without which the
  // same arguments must start the controller.
  const hostFlags = (['allow-host', 'service-name', 'cluster-domain'] as const)
    .filter((f) => values[f] !== undefined)
    .map((f) => `--${f}`);
  if (auth && hostFlags.length > 0)
    log.warn(
      `${hostFlags.join(', ')} ${hostFlags.length === 1 ? 'is' : 'are'} ignored: the web page's API takes a token (${api !== undefined ? '--api-token-file' : '--push-token-file'}), ` +
        'which a page elsewhere cannot send, so it answers requests for any host',
    );
  // Push on every replica (a non-leader answers 503); Hubble only on the leader, resuming from the
  // checkpoint the previous leader left on the Lease.
  const telemetry = push ? new Telemetry({ queueCapacity, push }) : undefined;
  const hubbleFactory = hubble
    ? (checkpoint: Checkpoint | undefined) =>
        new Telemetry({ queueCapacity, hubble: { ...hubble, ...(checkpoint ? { checkpoint } : {}) } })
    : undefined;
  // No kubeconfig found is bad usage naming where it looked; a server that cannot be reached is not:
  // the informers retry until it can be (a controller starts before the API server is ready).
  const { kc } = loadKubeConfig(values.kubeconfig);
  const client = new KubeClient(kc);
  // Incident isolation: webhooks on every replica, the reconciler on the leader only.
  const isolation = isolationFlags.wiring
    ? wireIsolation({
        kc,
        kube: kubeFromControllerClient(client),
        ...isolationFlags.wiring,
        log: (line) => log.info(line),
        warn: (line) => log.warn(line),
        engine: engine.options,
      })
    : undefined;
  const manager = new Manager({
    client,
    log,
    identity: values.identity ?? process.env.POD_NAME ?? hostname(),
    leaderElect: values['leader-elect'],
    leaseNamespace: leaseNamespace ?? process.env.POD_NAMESPACE ?? 'microseg-system',
    ...(leaseName !== undefined ? { leaseName } : {}),
    listen,
    ...(telemetry ? { telemetry } : {}),
    ...(hubbleFactory ? { hubble: hubbleFactory } : {}),
    // The namespace it runs in, which no Segmentation covers unless its selector names it: a learned
    // default deny there would cut off the webhooks, the push endpoint and the page.
    controller: {
      resyncMs,
      persistIntervalMs,
      ownNamespace,
      engine: engine.options,
    },
    // Which semantics the audits and the leak check evaluate policies with: plugins differ.
    semantics: engine.text,
    ...(values['segmentation-selector'] ? { segmentationSelector: values['segmentation-selector'] } : {}),
    // The web page next to the API: its JSON API needs the API token, else the push token, when one is
    // configured.
    ...(values['no-ui'] ? {} : { ui: { ...(auth ? { auth } : {}), allowedHosts, serviceHosts } }),
    ...(isolation
      ? {
          leaderTasks: [isolation.leaderTask],
          routers: isolation.router ? [{ router: isolation.router, serves: WEBHOOK_ENDPOINTS }] : [],
          extraMetrics: () => isolation.metrics.families(),
          isolation: { actions: isolation.actions },
        }
      : {}),
  });
  let stop = () => {};
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  const onSignal = (sig: string) => {
    log.info('shutting down', { signal: sig });
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    void manager.stop().then(stop);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    await manager.start();
  } catch (err) {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    if (err instanceof ListenError) throw new UsageError(`${err.message}; choose another with --listen`);
    throw err;
  }
  await stopped;
  return 0;
});

/**
 * The authentication of the web page's API: with an API token (`--api-token-file`), that token and no
 * other, so that a flow collector given the push token cannot isolate or release; else the push token,
 * as before; with neither, none (the page is read-only).
 */
export function pageAuth(tokens: { push?: string; api?: string }): AuthOptions | undefined {
  const token = tokens.api ?? tokens.push;
  return token === undefined ? undefined : { token };
}

/**
 * The web page's API token from `--api-token-file`, read once, at start. Unlike the push token's, its
 * file must exist: a missing admin token must not fall back to another token, nor to none.
 */
function apiToken(file: string | undefined, noUi: boolean): string | undefined {
  if (file === undefined) return undefined;
  if (file === '') throw new UsageError('--api-token-file must not be empty');
  if (noUi) throw new UsageError("--api-token-file applies to the web page's API, which --no-ui turns off");
  const problem = unreadableFile(file);
  if (problem !== undefined) throw new UsageError(`--api-token-file ${file}: ${problem}`);
  let token: string;
  try {
    token = readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new UsageError(`--api-token-file ${file}: ${readProblem(err)}`);
  }
  if (token === '') throw new UsageError(`--api-token-file ${file} is empty`);
  return token;
}

/**
 * Why `file` cannot be read as a file (undefined when it can), in `readProblem`'s words as for every
 * file the CLI reads; `missingOk`: a file to come is fine (not one whose path runs through a file).
 */
function unreadableFile(file: string, missingOk = false): string | undefined {
  try {
    if (!statSync(file).isFile()) return 'not a file';
    accessSync(file, constants.R_OK);
    return undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && missingOk) return undefined;
    return readProblem(err);
  }
}

/**
 * The relay's TLS settings from the `--hubble-tls-*` flags, each file read and parsed now: a file that
 * cannot be read, is no PEM certificate or key, or a certificate without its key, is bad usage naming
 * the flag, before anything starts.
 */
function hubbleTls(values: Record<string, unknown>, relay: boolean): HubbleTLS | undefined {
  const flags = ['hubble-tls-ca', 'hubble-tls-cert', 'hubble-tls-key', 'hubble-tls-server-name'] as const;
  const given = flags.filter((f) => values[f] !== undefined);
  if (given.length === 0) return undefined;
  if (!relay) throw new UsageError(`--${given[0]} applies to --hubble-relay only, which is not given`);
  const read = (flag: (typeof flags)[number], parse: (pem: Buffer) => unknown, what: string) => {
    const file = values[flag] as string | undefined;
    if (file === undefined) return undefined;
    const problem = unreadableFile(file);
    if (problem !== undefined) throw new UsageError(`--${flag} ${file}: ${problem}`);
    const pem = readFileSync(file);
    try {
      parse(pem);
    } catch {
      throw new UsageError(`--${flag} ${file}: not a PEM ${what}`);
    }
    return pem;
  };
  const ca = read('hubble-tls-ca', (pem) => new X509Certificate(pem), 'certificate');
  const cert = read('hubble-tls-cert', (pem) => new X509Certificate(pem), 'certificate');
  const key = read('hubble-tls-key', (pem) => createPrivateKey(pem), 'private key');
  if ((cert === undefined) !== (key === undefined))
    throw new UsageError(
      cert ? '--hubble-tls-cert needs --hubble-tls-key' : '--hubble-tls-key needs --hubble-tls-cert',
    );
  const serverName = values['hubble-tls-server-name'] as string | undefined;
  const tls: HubbleTLS = {
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
    ...(serverName ? { serverName } : {}),
  };
  try {
    hubbleCredentials(tls);
  } catch (err) {
    throw new UsageError(`--hubble-tls-cert and --hubble-tls-key: ${(err as Error).message}`);
  }
  return tls;
}

function parseListenFlag(text: string): { host: string; port: number } {
  try {
    return parseListen(text);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
