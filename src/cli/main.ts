/**
 * The `microseg` command line. Each subcommand lives in `commands/<name>.ts` and exports
 * `run(args: string[], io: CliIO): Promise<number>`; it is loaded only when called, so a
 * command's dependencies (Kubernetes client, gRPC, express) cost nothing to the others.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { CliIO } from './io.ts';
import { EXIT, processIO } from './io.ts';
import { closestName } from '../model/order.ts';

export interface Command {
  summary: string;
  load: () => Promise<{ run: (args: string[], io: CliIO) => Promise<number> }>;
}

export const COMMANDS: Record<string, Command> = {
  controller: {
    summary: 'run the in-cluster controller: learn, audit and enforce Segmentations',
    load: () => import('./commands/controller.ts'),
  },
  recommend: {
    summary: 'flows + cluster snapshot in, verified least-privilege NetworkPolicies out',
    load: () => import('./commands/recommend.ts'),
  },
  graph: { summary: 'export the service graph as JSON or DOT', load: () => import('./commands/graph.ts') },
  audit: {
    summary: 'replay flows against NetworkPolicies: which observed connections would they block?',
    load: () => import('./commands/audit.ts'),
  },
  demo: {
    summary: 'run the pipeline on the bundled demo and serve the web page',
    load: () => import('./commands/demo.ts'),
  },
  serve: {
    summary:
      'serve the web page of the graph on your flows and cluster snapshot (as recommend analyses them)',
    load: () => import('./commands/serve.ts'),
  },
  explain: {
    summary: 'explain whether a connection is allowed and why',
    load: () => import('./commands/explain.ts'),
  },
  simulate: {
    summary: 'answer many connection queries at once',
    load: () => import('./commands/simulate.ts'),
  },
  'blast-radius': {
    summary: 'what a workload can reach and be reached from, before and after a proposal',
    load: () => import('./commands/blast-radius.ts'),
  },
  generate: {
    summary: 'generate a synthetic cluster snapshot and Hubble flows',
    load: () => import('./commands/generate.ts'),
  },
  isolate: {
    summary: 'cut pods off the network for incident response',
    load: () => import('./commands/isolate.ts'),
  },
  release: {
    summary: 'release an Isolation and restore the pods exactly',
    load: () => import('./commands/release.ts'),
  },
};

export { EXIT } from './io.ts';

function usage(): string {
  const lines = ['usage: microseg <command> [options]', '', 'commands:'];
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  for (const [name, c] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(width)}  ${c.summary}`);
  lines.push(
    '',
    "Run 'microseg <command> --help' for a command's options, 'microseg --version' for the version.",
  );
  return lines.join('\n');
}

/** Whether `err` is node:util parseArgs's rejection of the arguments (ERR_PARSE_ARGS_*). */
function isParseArgsError(err: unknown): err is Error {
  if (!(err instanceof Error)) return false;
  const code = (err as Error & { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_');
}

/**
 * The version of the package microseg runs from: that of the nearest package.json named `microseg` above
 * this module (`src/cli/` in a checkout, `dist/cli/` in the npm package, or a build made elsewhere).
 */
export function packageVersion(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name?: unknown;
        version?: unknown;
      };
      if (pkg.name === 'microseg' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // no package.json here, or not ours: look further up
    }
    if (dirname(dir) === dir) throw new Error('no package.json of microseg above the CLI');
  }
}

/**
 * Joins a long option and a negative number after it (`--resolution -1`) into `--resolution=-1`: node:util
 * parseArgs takes an argument starting with `-` for an option and rejects the pair as ambiguous, so the
 * command would never see the value to say what is wrong with it. Stops at `--`.
 */
export function joinNegativeValues(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      out.push(...args.slice(i));
      break;
    }
    const next = args[i + 1];
    if (/^--[^=]+$/.test(a) && next !== undefined && /^-(\d|\.\d|Infinity$)/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/**
 * The one line an unknown option is said in, naming the option of the command it is likely meant to be
 * (`--flow` for `--flows`), as an unknown command is; undefined when `err` is no such rejection.
 * parseArgs says it as `Unknown option '--flow'` (adding, where positionals are allowed, how to give one
 * starting with '-').
 */
export function unknownOptionLine(err: unknown, options: Iterable<string>): string | undefined {
  if (!isParseArgsError(err)) return undefined;
  const m = /^Unknown option '(-{1,2})([^'=]*)/.exec(err.message);
  if (!m) return undefined;
  const near = m[1] === '--' ? closestName(m[2]!, options) : undefined;
  return `Unknown option '${m[1]}${m[2]}'${near !== undefined ? ` (did you mean '--${near}'?)` : ''}`;
}

export async function runCli(argv: string[], io: CliIO = processIO()): Promise<number> {
  const [name, ...given] = argv;
  if (name === '--help' || name === '-h' || name === 'help') {
    io.out(usage() + '\n');
    return EXIT.ok;
  }
  // No command is bad usage: said on standard error, as an unknown command is, so that a script that
  // keeps standard output sees the mistake and not the usage.
  if (!name) {
    io.err(`microseg: no command given\n\n${usage()}\n`);
    return EXIT.usage;
  }
  if (name === '--version' || name === 'version') {
    if (given.length > 0) {
      io.err(`microseg ${name}: takes no arguments, got ${JSON.stringify(given[0])}\n`);
      return EXIT.usage;
    }
    io.out(`microseg ${packageVersion()}\n`);
    return EXIT.ok;
  }
  const rest = joinNegativeValues(given);
  // Own keys only: 'constructor' or 'toString' would otherwise be Object.prototype's.
  const cmd = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!cmd) {
    // One line naming the command it is likely meant to be (a typo), then where the commands are listed.
    const near = closestName(name, Object.keys(COMMANDS));
    const guess = near !== undefined ? ` (did you mean '${near}'?)` : '';
    io.err(`microseg: unknown command '${name}'${guess}\nRun 'microseg --help' for the commands.\n`);
    return EXIT.usage;
  }
  const mod = await cmd.load();
  try {
    return await mod.run(rest, io);
  } catch (err) {
    const unknown = unknownOptionLine(err, Object.keys((mod as { OPTIONS?: object }).OPTIONS ?? {}));
    if (unknown !== undefined) {
      io.err(`microseg ${name}: ${unknown}\nRun 'microseg ${name} --help' for its options.\n`);
      return EXIT.usage;
    }
    if (err instanceof Error && (err.name === 'InputError' || err.name === 'UsageError')) {
      io.err(`microseg ${name}: ${err.message}\n`);
      return EXIT.usage;
    }
    // node:util parseArgs rejects an unknown option, a missing value or a stray positional with a
    // TypeError whose code names the case: bad usage, whichever command parsed its arguments.
    if (isParseArgsError(err)) {
      io.err(`microseg ${name}: ${err.message}\nRun 'microseg ${name} --help' for its options.\n`);
      return EXIT.usage;
    }
    io.err(
      `microseg ${name}: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    return EXIT.internal;
  }
}

// Run when executed directly. No top-level await: commands may import this module's exports, and a
// module still suspended in a top-level await would deadlock that cycle.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  void runCli(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
