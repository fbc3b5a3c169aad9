/**
 * `microseg controller`: runs the in-cluster controller (Segmentation reconciler, flow ingestion,
 * leader election, /healthz /readyz /metrics and the flow push endpoint) until SIGTERM or SIGINT.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { normalizeHubbleFlow } from '../../flows/hubble.ts';
import { parseDuration } from '../../controller/api.ts';
import { KubeClient } from '../../controller/kube.ts';
import type { Level } from '../../controller/log.ts';
import { jsonLogger } from '../../controller/log.ts';
import { Manager } from '../../controller/manager.ts';
import { parseListen } from '../../controller/server.ts';
import { kubeFromControllerClient } from '../../isolate/kube.ts';
import { wireIsolation } from '../../isolate/wire.ts';
import { KubeConfig } from '@kubernetes/client-node';
import { DEFAULT_QUEUE_CAPACITY, Telemetry, tlsFromFiles } from '../../telemetry/index.ts';
import type { Checkpoint, TelemetryOptions } from '../../telemetry/index.ts';
import type { CliIO } from '../io.ts';
import { UsageError } from '../io.ts';

const HELP = `usage: microseg controller [options]

Runs the microseg controller against the cluster of the kubeconfig (in a pod: its ServiceAccount).

options:
  --kubeconfig PATH          kubeconfig file (default: in-cluster config, $KUBECONFIG, ~/.kube/config)
  --leader-elect             campaign for the Lease; only the leader learns and writes
  --lease-namespace NS       namespace of the Lease (default $POD_NAMESPACE or microseg-system)
  --lease-name NAME          name of the Lease (default microseg-controller)
  --identity NAME            this replica's name (default $POD_NAME or the host name)
  --listen ADDR              HTTP address for /healthz /readyz /metrics /v1/flows (default :8080)
  --hubble-relay HOST:PORT   stream flows from Hubble Relay (GetFlows, follow)
  --hubble-tls-ca FILE       CA bundle of the relay's certificate (enables TLS)
  --hubble-tls-cert FILE     client certificate (mutual TLS)
  --hubble-tls-key FILE      client key (mutual TLS)
  --hubble-tls-server-name N name to verify the relay's certificate against
  --push-token-file FILE     enable POST /v1/flows with this bearer token (the web page's API needs it too)
  --no-ui                    do not serve the web page of the graph and its JSON API
  --webhook-token-file FILE  enable the Falco and Alertmanager webhooks (POST /webhooks/falco,
                             /webhooks/alertmanager) with the bearer token(s) in FILE, one per line
  --no-isolation             do not run the Isolation reconciler (nor show Isolations on the web page)
  --queue-capacity N         flows buffered between sources and the controller (default ${DEFAULT_QUEUE_CAPACITY})
  --segmentation-selector S  manage only Segmentations matching this label selector (default all)
  --resync DURATION          level-based resync of each Segmentation (default 10s)
  --persist-interval DUR     least time between writes of learned edges and evidence (default 30s)
  --log-level LEVEL          debug, info, warn or error (default info)
`;

function duration(flag: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const ms = parseDuration(v);
  if (ms === undefined)
    throw new UsageError(`--${flag} ${JSON.stringify(v)} is not a duration such as "10s" or "1m"`);
  return ms;
}

export async function run(args: string[], io: CliIO): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
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
        'push-token-file': { type: 'string' },
        'no-ui': { type: 'boolean' },
        'webhook-token-file': { type: 'string' },
        'no-isolation': { type: 'boolean' },
        'queue-capacity': { type: 'string' },
        resync: { type: 'string' },
        'segmentation-selector': { type: 'string' },
        'persist-interval': { type: 'string' },
        'log-level': { type: 'string', default: 'info' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) {
    io.out(HELP);
    return 0;
  }
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
  const resyncMs = duration('resync', values.resync, 10_000);
  const persistIntervalMs = duration('persist-interval', values['persist-interval'], 30_000);

  let hubble: TelemetryOptions['hubble'];
  if (values['hubble-relay']) {
    const tlsFiles = {
      ca: values['hubble-tls-ca'],
      cert: values['hubble-tls-cert'],
      key: values['hubble-tls-key'],
      serverName: values['hubble-tls-server-name'],
    };
    const useTls = Object.values(tlsFiles).some((v) => v !== undefined);
    hubble = {
      address: values['hubble-relay'],
      ...(useTls ? { tls: tlsFromFiles(tlsFiles) } : {}),
      normalize: (f) => normalizeHubbleFlow(f),
      onEvent: (e) => log.info('hubble', { ...e }),
    };
  }
  let push: TelemetryOptions['push'];
  if (values['push-token-file']) {
    const file = values['push-token-file'];
    let token: string | undefined;
    try {
      token = readFileSync(file, 'utf8').trim();
    } catch (err) {
      // The manifests mount the token from an optional Secret: no Secret, no push endpoint.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        throw new UsageError(`--push-token-file: ${(err as Error).message}`);
      log.warn('push endpoint disabled: the token file does not exist', { file });
    }
    if (token === '') throw new UsageError(`--push-token-file ${file} is empty`);
    // Records are read by the push endpoint's own generic-schema parser (parseGenericRecord).
    if (token !== undefined) push = { token };
  }
  // Push on every replica (a non-leader answers 503); Hubble only on the leader, resuming from the
  // checkpoint the previous leader left on the Lease.
  const telemetry = push ? new Telemetry({ queueCapacity, push }) : undefined;
  const hubbleFactory = hubble
    ? (checkpoint: Checkpoint | undefined) =>
        new Telemetry({ queueCapacity, hubble: { ...hubble, ...(checkpoint ? { checkpoint } : {}) } })
    : undefined;
  const client = values.kubeconfig
    ? KubeClient.fromKubeconfigFile(values.kubeconfig)
    : KubeClient.fromDefault();
  // Incident isolation: webhooks on every replica, the reconciler on the leader only.
  const isolation = values['no-isolation']
    ? undefined
    : wireIsolation({
        kc: kubeConfigFor(values.kubeconfig),
        kube: kubeFromControllerClient(client),
        ...(values['webhook-token-file'] ? { webhookTokenFile: values['webhook-token-file'] } : {}),
        log: (line) => log.info(line),
      });
  const manager = new Manager({
    client,
    log,
    identity: values.identity ?? process.env.POD_NAME ?? hostname(),
    leaderElect: values['leader-elect'],
    leaseNamespace: values['lease-namespace'] ?? process.env.POD_NAMESPACE ?? 'microseg-system',
    ...(values['lease-name'] ? { leaseName: values['lease-name'] } : {}),
    listen,
    ...(telemetry ? { telemetry } : {}),
    ...(hubbleFactory ? { hubble: hubbleFactory } : {}),
    controller: { resyncMs, persistIntervalMs },
    ...(values['segmentation-selector'] ? { segmentationSelector: values['segmentation-selector'] } : {}),
    // The web page next to the API: its JSON API needs the push token when one is configured.
    ...(values['no-ui'] ? {} : { ui: push ? { auth: { token: push.token } } : {} }),
    ...(isolation
      ? {
          leaderTasks: [isolation.leaderTask],
          routers: isolation.router ? [isolation.router] : [],
          extraMetrics: () => isolation.metrics.families(),
          isolation: { actions: isolation.actions },
        }
      : {}),
  });
  const stopped = new Promise<void>((resolve) => {
    const onSignal = (sig: string) => {
      log.info('shutting down', { signal: sig });
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      void manager.stop().then(resolve);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  await manager.start();
  await stopped;
  return 0;
}

function parseListenFlag(text: string): { host: string; port: number } {
  try {
    return parseListen(text);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** A client-node KubeConfig for the same cluster (the isolation watch uses client-node's Watch). */
function kubeConfigFor(path: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  return kc;
}
