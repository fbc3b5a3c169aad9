import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { EXIT } from '../../src/cli/io.ts';
import { COMMANDS, joinNegativeValues } from '../../src/cli/main.ts';
import { cli } from '../cli-run.ts';
import { HELP as AUDIT_HELP } from '../../src/cli/commands/audit.ts';
import { HELP as DEMO_HELP } from '../../src/cli/commands/demo.ts';
import { HELP as CONTROLLER_HELP } from '../../src/cli/commands/controller.ts';
import { HELP as GENERATE_HELP } from '../../src/cli/commands/generate.ts';
import { HELP as ISOLATE_HELP } from '../../src/cli/commands/isolate.ts';
import { HELP as RELEASE_HELP } from '../../src/cli/commands/release.ts';
import { HELP as BLAST_HELP } from '../../src/cli/commands/blast-radius.ts';
import { HELP as EXPLAIN_HELP } from '../../src/cli/commands/explain.ts';
import { HELP as GRAPH_HELP } from '../../src/cli/commands/graph.ts';
import { HELP as RECOMMEND_HELP } from '../../src/cli/commands/recommend.ts';
import { HELP as SERVE_HELP } from '../../src/cli/commands/serve.ts';
import { HELP as SIMULATE_HELP } from '../../src/cli/commands/simulate.ts';

/** Bad usage said in one line, then where the command's options are listed. */
const usage = (name: string, message: string) => ({
  code: EXIT.usage,
  out: '',
  err: `microseg ${name}: ${message}\nRun 'microseg ${name} --help' for its options.\n`,
});

describe('microseg --version', () => {
  const version = (
    JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    }
  ).version;

  it.each(['--version', 'version'])('%s prints the version of package.json', async (arg) => {
    expect(await cli([arg])).toEqual({ code: EXIT.ok, out: `microseg ${version}\n`, err: '' });
  });

  it('takes no arguments', async () => {
    expect(await cli(['--version', 'recommend'])).toEqual({
      code: EXIT.usage,
      out: '',
      err: 'microseg --version: takes no arguments, got "recommend"\n',
    });
  });

  it('is named in the usage', async () => {
    expect((await cli(['--help'])).out).toContain("'microseg --version' for the version");
  });
});

describe('a negative number after an option is its value, checked by the command', () => {
  it.each([
    [
      ['recommend', '--flows', 'f', '--cluster', 'c', '--resolution', '-1'],
      'microseg recommend: --resolution must be a positive number, got "-1"\n',
    ],
    [
      ['graph', '--flows', 'f', '--cluster', 'c', '--resolution', '-0.5'],
      'microseg graph: --resolution must be a positive number, got "-0.5"\n',
    ],
    [
      ['recommend', '--flows', 'f', '--cluster', 'c', '--seed', '-3'],
      'microseg recommend: --seed must be a whole number from 0 to 2147483647, got "-3"\n',
    ],
    [
      ['controller', '--queue-capacity', '-5'],
      'microseg controller: --queue-capacity "-5" is not a positive integer\n',
    ],
    [
      ['demo', '--port', '-1'],
      'microseg demo: --port must be a port number, 0 to 65535 in decimal digits, got "-1"\n',
    ],
  ])('%j', async (args, message) => {
    expect(await cli(args)).toEqual({ code: EXIT.usage, out: '', err: message });
  });

  it('joins only a long option and a negative number, and nothing after --', () => {
    expect(
      joinNegativeValues(['--a', '-1', '-n', '-2', '--b', '-x', '--c=-3', '--d', '-.5', '--', '--e', '-4']),
    ).toEqual(['--a=-1', '-n', '-2', '--b', '-x', '--c=-3', '--d=-.5', '--', '--e', '-4']);
  });
});

describe('bad usage exits 2 with the option named, for every command', () => {
  for (const name of Object.keys(COMMANDS)) {
    it(`${name}: an unknown option`, async () => {
      const r = await cli([name, '--no-such-option']);
      expect(r.err).not.toContain('internal error');
      expect(r.err).toContain(`microseg ${name}: Unknown option '--no-such-option'`);
      expect(r.code).toBe(EXIT.usage);
    });
  }

  it.each([
    ['recommend', '--flows', "Option '--flows <value>' argument missing"],
    ['graph', '--cluster', "Option '--cluster <value>' argument missing"],
    ['explain', '--from', "Option '--from <value>' argument missing"],
    ['simulate', '--queries', "Option '--queries <value>' argument missing"],
    ['blast-radius', '--workload', "Option '--workload <value>' argument missing"],
    ['demo', '--port', "Option '--port <value>' argument missing"],
  ])('%s: %s without its value', async (name, option, message) => {
    const r = await cli([name, option]);
    expect(r.err).toBe(`microseg ${name}: ${message}\nRun 'microseg ${name} --help' for its options.\n`);
    expect(r.code).toBe(EXIT.usage);
  });

  it('a stray argument', async () => {
    const r = await cli(['recommend', 'flows.jsonl']);
    expect(r.err).toContain("microseg recommend: Unexpected argument 'flows.jsonl'");
    expect(r.code).toBe(EXIT.usage);
  });
});

describe('microseg without a command', () => {
  it('is bad usage said on standard error with the usage, standard output left empty', async () => {
    const r = await cli([]);
    expect(r.code).toBe(EXIT.usage);
    expect(r.out).toBe('');
    expect(r.err).toBe(`microseg: no command given\n\n${(await cli(['--help'])).out}`);
  });

  it('--help is no mistake: the usage on standard output, exit 0', async () => {
    const r = await cli(['--help']);
    expect(r.code).toBe(EXIT.ok);
    expect(r.err).toBe('');
    expect(r.out).toMatch(/^usage: microseg <command> \[options\]\n/);
  });
});

describe('an unknown command', () => {
  it('is bad usage in one line, naming the command it is likely meant to be', async () => {
    expect(await cli(['recomend', '--flows', 'f.jsonl'])).toEqual({
      code: EXIT.usage,
      out: '',
      err: "microseg: unknown command 'recomend' (did you mean 'recommend'?)\nRun 'microseg --help' for the commands.\n",
    });
    expect(await cli(['blast-raduis'])).toEqual({
      code: EXIT.usage,
      out: '',
      err: "microseg: unknown command 'blast-raduis' (did you mean 'blast-radius'?)\nRun 'microseg --help' for the commands.\n",
    });
    expect(await cli(['verify'])).toEqual({
      code: EXIT.usage,
      out: '',
      err: "microseg: unknown command 'verify'\nRun 'microseg --help' for the commands.\n",
    });
  });

  // The names of Object.prototype's members were looked up as commands and crashed with a TypeError.
  it.each(['constructor', 'toString', '__proto__', 'hasOwnProperty'])(
    '%s is an unknown command too',
    async (name) => {
      expect(await cli([name])).toEqual({
        code: EXIT.usage,
        out: '',
        err: `microseg: unknown command '${name}'\nRun 'microseg --help' for the commands.\n`,
      });
    },
  );
});

describe('an unknown option', () => {
  it.each([
    ['recommend', '--flow', "Unknown option '--flow' (did you mean '--flows'?)"],
    ['graph', '--clusters', "Unknown option '--clusters' (did you mean '--cluster'?)"],
    ['explain', '--protcol', "Unknown option '--protcol' (did you mean '--protocol'?)"],
    ['generate', '--workload', "Unknown option '--workload' (did you mean '--workloads'?)"],
    ['controller', '--leader-elec', "Unknown option '--leader-elec' (did you mean '--leader-elect'?)"],
    ['isolate', '--reasn', "Unknown option '--reasn' (did you mean '--reason'?)"],
    ['release', '--pods=a/b', "Unknown option '--pods' (did you mean '--pod'?)"],
    ['audit', '--no-such-option', "Unknown option '--no-such-option'"],
  ])('%s %s: one line naming the option it is likely meant to be, exit 2', async (name, option, message) => {
    expect(await cli([name, option, 'x'])).toEqual({
      code: EXIT.usage,
      out: '',
      err: `microseg ${name}: ${message}\nRun 'microseg ${name} --help' for its options.\n`,
    });
  });
});

describe('microseg graph --format', () => {
  // recommend and audit take the flow format as --format; graph's is its output's, and the message said
  // only "json or dot" to someone giving it the format of their flows.
  it.each(['hubble', 'generic', 'auto', 'inspektor-gadget', 'kubescape'])(
    'names --input-format when given a flow format (%s)',
    async (format) => {
      expect(await cli(['graph', '--flows', 'f', '--cluster', 'c', '--format', format])).toEqual({
        code: EXIT.usage,
        out: '',
        err: `microseg graph: --format must be json or dot, got "${format}": that is a flow format, which graph takes as --input-format ${format}\n`,
      });
    },
  );
});

describe('a missing path', () => {
  it('is "no such file", in the same words, whatever input names it', async () => {
    const fixture = (p: string) => fileURLToPath(new URL(`../fixtures/${p}`, import.meta.url));
    const cluster = fixture('verify/shop-cluster.yaml');
    const flows = fixture('flows/generic.jsonl');
    const missing = join(mkdtempSync(join(tmpdir(), 'microseg-missing-')), 'nope.json');
    const cases: [string[], string][] = [
      [['recommend', '--flows', missing, '--cluster', cluster], `microseg recommend: ${missing}`],
      [['recommend', '--flows', flows, '--cluster', missing], `microseg recommend: ${missing}`],
      [
        ['simulate', '--cluster', missing, '--queries', fixture('verify/queries.json')],
        `microseg simulate: ${missing}`,
      ],
      [['simulate', '--cluster', cluster, '--queries', missing], `microseg simulate: ${missing}`],
    ];
    for (const [args, who] of cases)
      expect(await cli(args), args.join(' ')).toEqual({
        code: EXIT.usage,
        out: '',
        err: `${who}: cannot read: no such file\n`,
      });
    // A path under a file is not missing: it says so, as for every input.
    const under = join(flows, 'x.json');
    expect(await cli(['recommend', '--flows', flows, '--cluster', under])).toEqual({
      code: EXIT.usage,
      out: '',
      err: `microseg recommend: ${under}: cannot read: a part of the path is not a directory\n`,
    });
  });
});

describe('the commands that refuse an option of one value given twice: their arguments, word for word', () => {
  // audit, blast-radius, demo, explain, graph, recommend, serve and simulate read their arguments alike:
  // parsed strictly, with no positional; an option of one value given twice refused before anything else;
  // then --help (or -h) answered on standard output before any value is checked. (demo took a repeated
  // option's last value: `--port 1 --port 2` served on 2.)
  const commands: [name: string, help: string, twice: [string, string, string], bad: string[]][] = [
    ['audit', AUDIT_HELP, ['--output', 'json', 'text'], ['--output', 'bogus']],
    ['blast-radius', BLAST_HELP, ['--proposal', 'a', 'b'], ['--output', 'bogus']],
    ['demo', DEMO_HELP, ['--port', '1', 'x'], ['--port', 'bogus']],
    ['explain', EXPLAIN_HELP, ['--from', 'web/a', 'shop/b'], ['--output', 'bogus']],
    ['graph', GRAPH_HELP, ['--format', 'dot', 'json'], ['--format', 'bogus']],
    ['recommend', RECOMMEND_HELP, ['--out', 'a', 'b'], ['--resolution', 'bogus']],
    ['serve', SERVE_HELP, ['--listen', ':1', ':2'], ['--listen', 'bogus:99999']],
    ['simulate', SIMULATE_HELP, ['--queries', 'a.json', 'b.json'], ['--output', 'bogus']],
  ];

  it.each(commands)('%s', async (name, help, [option, first, second], bad) => {
    const answer = { code: EXIT.ok, out: help + '\n', err: '' };
    expect(await cli([name, '--help'])).toEqual(answer);
    expect(await cli([name, '-h'])).toEqual(answer);
    expect(await cli([name, '--help', ...bad])).toEqual(answer);
    const twice = [option, first, `${option}=${second}`];
    const refused = {
      code: EXIT.usage,
      out: '',
      err: `microseg ${name}: ${option} is given more than once (${first}, ${second}): it takes one value\n`,
    };
    expect(await cli([name, ...twice])).toEqual(refused);
    expect(await cli([name, '--help', ...twice])).toEqual(refused);
    expect(await cli([name, '--no-such-option'])).toEqual(usage(name, "Unknown option '--no-such-option'"));
    expect(await cli([name, '-z'])).toEqual(usage(name, "Unknown option '-z'"));
    const stray = "Unexpected argument 'stray'. This command does not take positional arguments";
    expect(await cli([name, '--help', 'stray'])).toEqual(usage(name, stray));
    expect(await cli([name, '--help=1'])).toEqual(
      usage(name, "Option '-h, --help' does not take an argument"),
    );
  });
});

describe('controller, generate, isolate and release: their arguments, word for word', () => {
  // These read their arguments as the seven above do (isolate and release take positional arguments
  // too): an option of one value given twice is refused before anything else, naming both values; a
  // mistake parseArgs finds is said with where the options are listed. Their help, which ends in a
  // newline of its own, is printed as it is. Before, a repeated option silently kept its last value, and
  // a missing value or a stray argument was said without the line naming --help.
  const commands: [
    name: string,
    help: string,
    twice: [string, string, string],
    bad: string[],
    badSaid: string,
    missing: string,
    repeatable: [string, string, string] | undefined,
  ][] = [
    [
      'controller',
      CONTROLLER_HELP,
      ['--log-level', 'info', 'debug'],
      ['--log-level', 'bogus'],
      '--log-level "bogus" is not one of debug, info, warn, error',
      '--listen',
      ['--allow-host', 'a.example', 'b.example'],
    ],
    [
      'generate',
      GENERATE_HELP,
      ['--scenario', 'demo', 'large'],
      ['--scenario', 'bogus'],
      "--scenario must be demo or large, got 'bogus'",
      '--out',
      undefined,
    ],
    [
      'isolate',
      ISOLATE_HELP,
      ['--reason', 'a', 'b'],
      ['shop/a', '--output', 'bogus'],
      '--output "bogus" is not one of text, json',
      '--reason',
      ['--forensics-namespace', 'team=sec', 'team=ir'],
    ],
    [
      'release',
      RELEASE_HELP,
      ['--timeout', '1s', '2s'],
      ['shop/a', '--timeout', 'bogus'],
      '--timeout "bogus" is not a duration such as "30s"',
      '--timeout',
      ['--pod', 'shop/a', 'shop/b'],
    ],
  ];
  const said = (name: string, message: string) => ({
    code: EXIT.usage,
    out: '',
    err: `microseg ${name}: ${message}\n`,
  });

  it.each(commands)('%s', async (name, help, [option, first, second], bad, badSaid, missing, repeatable) => {
    const answer = { code: EXIT.ok, out: help, err: '' };
    expect(help.endsWith('\n')).toBe(true);
    expect(await cli([name, '--help'])).toEqual(answer);
    expect(await cli([name, '-h'])).toEqual(answer);
    expect(await cli([name, '--help', ...bad])).toEqual(answer);
    expect(await cli([name, ...bad])).toEqual(said(name, badSaid));
    const twice = [option, first, `${option}=${second}`];
    const refused = said(name, `${option} is given more than once (${first}, ${second}): it takes one value`);
    expect(await cli([name, ...twice])).toEqual(refused);
    expect(await cli([name, '--help', ...twice])).toEqual(refused);
    if (repeatable !== undefined) {
      // An option its help calls repeatable is not refused: the mistake after it is the one said.
      const [r, a, b] = repeatable;
      expect(await cli([name, r, a, r, b, ...bad])).toEqual(said(name, badSaid));
    }
    expect(await cli([name, missing])).toEqual(usage(name, `Option '${missing} <value>' argument missing`));
    expect(await cli([name, '--help=1'])).toEqual(
      usage(name, "Option '-h, --help' does not take an argument"),
    );
    expect(await cli([name, '--no-such-option'])).toEqual(usage(name, "Unknown option '--no-such-option'"));
    expect(await cli([name, '-z'])).toEqual(usage(name, "Unknown option '-z'"));
  });

  it.each(['controller', 'generate'])('%s takes no positional argument', async (name) => {
    expect(await cli([name, 'stray'])).toEqual(
      usage(name, "Unexpected argument 'stray'. This command does not take positional arguments"),
    );
  });

  it("isolate's -n is --namespace: given both, it is given twice", async () => {
    expect(await cli(['isolate', '-n', 'shop', '--namespace=web'])).toEqual(
      said('isolate', '--namespace is given more than once (shop, web): it takes one value'),
    );
  });
});
