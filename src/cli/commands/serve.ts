/**
 * `microseg serve --flows FILE... --cluster FILE... [--policies PATH...]`: the web page of the graph on a
 * user's own flows and cluster, as `microseg demo` serves it on the bundled demo. The graph, segments,
 * proposal and evidence are recommend's, made by the same code from the same inputs and options
 * (`analyseInputs`), and refused alike; nothing is written.
 */
import { readFileSync, statSync } from 'node:fs';
import { parseListen } from '../../controller/server.ts';
import { isLoopbackIP } from '../../flows/common.ts';
import type { NetworkPolicy, OtherObject } from '../../model/k8s.ts';
import { auditPolicySet } from '../../policy/audit.ts';
import { offlineAudit, policySetAuditView } from '../../server/audit.ts';
import type { AuditView } from '../../server/types.ts';
import { allowedHostsOption } from '../allow-host.ts';
import { previousSegments } from '../previous.ts';
import { stdinOnce, warnOnStderr } from '../inputs.ts';
import type { OptionValues } from '../args.ts';
import { optionsCommand } from '../args.ts';
import type { CliIO } from '../io.ts';
import { EXIT, UsageError } from '../io.ts';
import { readProblem } from '../../flows/reader.ts';
import type { PageServer } from '../page.ts';
import { closeServer, listenForPage, servePage } from '../page.ts';
import { loadPolicies } from './audit.ts';
import {
  ANALYSIS_OPTIONS,
  analyseInputs,
  analysisOptionHelp,
  checkInputs,
  INPUT_OPTION_HELP,
  summary,
} from './recommend.ts';

/** Where the page is served without --listen: this machine only. */
export const DEFAULT_LISTEN = '127.0.0.1:8080';

export const HELP = `usage: microseg serve --flows FILE [--flows FILE ...] --cluster FILE [--cluster FILE ...] [--policies PATH [--policies PATH ...] [--prune]] [--listen ADDR] [--token-file FILE] [--allow-host NAME ...]

Serves the web page of the graph (docs/web.md) on your own flows and cluster snapshot, as
'microseg demo' serves it on the bundled demo: the service graph, its segments, the proposal with the
evidence of every rule, and the blast radius of each workload, all made as 'microseg recommend' makes
them from the same inputs and options (give it the same to see what it writes), and refused alike: the
same bad usage and input, a proposal that would block observed connections or cannot check them, and
flows that give no policy. Nothing is written. The Rollout tab replays the observed traffic with the
proposal applied and, with --policies, with those policies applied (as 'microseg audit' reads them: the
directory recommend wrote, or a GitOps repository's); a --policies directory holding recommend's
report.json also gives the segments their names, as a run of recommend into it would. The page's
'Audit a change' audits pasted policies alike. Prints the page's address, then serves it until
interrupted.

options:
${INPUT_OPTION_HELP}
  --policies PATH          NetworkPolicies to audit in the Rollout tab, a file or a directory
                           (repeatable; a directory's report.json is skipped)
  --prune                  with --policies: leave out the snapshot's NetworkPolicies labelled
                           app.kubernetes.io/managed-by=microseg that --policies does not hold, in the
                           namespaces it holds policies for (as 'microseg audit --prune')
  --listen ADDR            host:port to serve the page on (default ${DEFAULT_LISTEN}; port 0: any
                           free port); an address other than a loopback one (127.0.0.0/8, ::1,
                           localhost) lets others read the cluster's graph and policies, and needs
                           --token-file
  --token-file FILE        the bearer token the page's API asks for (the page asks for it once per tab)
  --allow-host NAME        without --token-file the page answers only requests for localhost, 127.0.0.1,
                           [::1], the host of --listen and the address it is reached at, else 403 (a
                           guard against DNS rebinding): also this host name (repeatable; * for any)
${analysisOptionHelp('propose')}

exit codes: 0 served until interrupted; 1 not served: the proposal would block observed connections, or
            cannot check them; 2 bad usage or input (an address in use, or one that is not a loopback
            one without --token-file, included), no flow read at all, or no policy proposed from the
            flows read (nothing served); 3 internal error`;

/** The options the command takes, as node:util parseArgs reads them (its --help lists each). */
export const OPTIONS = {
  flows: { type: 'string', multiple: true },
  cluster: { type: 'string', multiple: true },
  policies: { type: 'string', multiple: true },
  prune: { type: 'boolean' },
  listen: { type: 'string' },
  'token-file': { type: 'string' },
  'allow-host': { type: 'string', multiple: true },
  ...ANALYSIS_OPTIONS,
  help: { type: 'boolean', short: 'h' },
} as const;

/** Whether `host` names this machine only: a loopback address, or `localhost`. */
export function isLoopbackHost(host: string): boolean {
  return host.toLowerCase() === 'localhost' || isLoopbackIP(host);
}

/**
 * Where to listen, from `--listen`, and the token the API takes (`--token-file`): an address others can
 * reach (not a loopback one, or every address: `:8080`) needs a token, or anyone who reaches it reads
 * the cluster's graph and policies.
 */
export function listenAndToken(
  listen: string | undefined,
  tokenFile: string | undefined,
): { host: string; port: number; token?: string } {
  const text = listen ?? DEFAULT_LISTEN;
  let where: { host: string; port: number };
  try {
    where = parseListen(text);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const token = tokenFile === undefined ? undefined : readToken(tokenFile);
  if (token === undefined && !isLoopbackHost(where.host))
    throw new UsageError(
      `--listen ${text}: ${where.host === '' ? 'every address of this machine' : `${where.host} is not a loopback address and`} ` +
        `lets others read the cluster's graph and policies: give --token-file FILE (the bearer token the page asks for), ` +
        `or listen on a loopback address (default ${DEFAULT_LISTEN})`,
    );
  return { ...where, ...(token !== undefined ? { token } : {}) };
}

/** The token in `file`, without the blanks around it; a file that cannot be read or is empty is bad usage. */
function readToken(file: string): string {
  if (file === '') throw new UsageError('--token-file must not be empty');
  let text: string;
  try {
    if (!statSync(file).isFile()) throw new UsageError(`--token-file ${file}: not a file`);
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`--token-file ${file}: cannot read: ${readProblem(err)}`);
  }
  const token = text.trim();
  if (token === '') throw new UsageError(`--token-file ${file} is empty`);
  return token;
}

export const run = optionsCommand(OPTIONS, HELP, async (values, io) => {
  const inputs = await checkInputs('serve', values);
  if (values.prune && !values.policies?.length)
    throw new UsageError('--prune applies to --policies only, which is not given');
  stdinOnce([
    ['--policies', values.policies],
    ['--flows', inputs.flows.includes('-') ? ['-'] : []],
  ]);
  const { host, port, token } = listenAndToken(values.listen, values['token-file']);
  const allowedHosts = allowedHostsOption(values['allow-host'], host);
  // Before any input is read: an address in use is said before the work, not after it.
  const server = await listenForPage(
    host,
    port,
    'microseg serve: the pipeline is still running; retry in a moment\n',
    () => '--listen',
  );
  try {
    return await serve(
      server,
      values,
      inputs,
      { allowedHosts, ...(token !== undefined ? { token } : {}) },
      io,
    );
  } finally {
    await closeServer(server);
  }
});

type Values = OptionValues<typeof OPTIONS>;

async function serve(
  server: PageServer,
  values: Values,
  inputs: Awaited<ReturnType<typeof checkInputs>>,
  access: { allowedHosts: readonly string[]; token?: string },
  io: CliIO,
): Promise<number> {
  const reading = { unknownFields: values.strict === true ? 'error' : 'warn' } as const;
  let given: { given: NetworkPolicy[]; clusterWide: OtherObject[] } | undefined;
  if (values.policies?.length) {
    given = await loadPolicies(values.policies, io.stdin, warnOnStderr(io, 'serve'), reading);
    // The segment names of recommend's last run into a --policies directory, as recommend keeps them.
    for (const path of values.policies) {
      if (path === '-' || !isDirectory(path)) continue;
      const previous = await previousSegments(path);
      if (previous.kind === 'unread')
        io.err(`warning: ${previous.path} not read: ${previous.reason}; segment names are chosen afresh\n`);
      if (previous.kind !== 'read') continue;
      inputs = {
        ...inputs,
        opts: { ...inputs.opts, segments: { ...inputs.opts.segments, previous: previous.membership } },
      };
      break;
    }
  }
  const analysed = await analyseInputs('serve', values, inputs, io, {
    policiesAdvice:
      'serve reads the network policies already applied from the cluster snapshot: give them in ' +
      '--cluster (the policies to audit: --policies)',
    outcome: { refused: 'nothing served', notProven: 'not served' },
  });
  if (typeof analysed === 'number') return analysed;
  const { result } = analysed;
  const { analysis, snapshot } = result;
  const audits: AuditView[] = [];
  if (given && values.policies) {
    const prune = values.prune === true;
    const audit = auditPolicySet({
      snapshot,
      identity: analysis.identity,
      graph: analysis.graph,
      given: given.given,
      givenClusterPolicies: given.clusterWide,
      prune,
    });
    audits.push(policySetAuditView(values.policies.join(', '), snapshot, given.given, audit, prune));
  }
  audits.push(
    offlineAudit({
      name: 'proposal',
      snapshot,
      identity: analysis.identity,
      graph: analysis.graph,
      proposal: analysis.proposal,
    }),
  );
  io.out(summary(result, undefined));
  await servePage(
    server,
    'serve',
    { mode: 'offline', snapshot, analysis, flows: result.ingest?.flows ?? 0, audits },
    { io, ...access },
  );
  return EXIT.ok;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
