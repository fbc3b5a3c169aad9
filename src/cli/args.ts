/**
 * How a command reads its arguments: each states its options and its usage text, and `optionsCommand`
 * (audit, blast-radius, demo, explain, graph, recommend, serve, simulate) or `argsCommand` (controller,
 * generate, isolate, release) does the rest.
 */
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import type { CliIO } from './io.ts';
import { EXIT, UsageError } from './io.ts';

/** What parseArgs is asked by `argsCommand`: strictly, with its tokens, positional arguments or not. */
type ArgsConfig<O extends ParseArgsOptionsConfig, P extends boolean> = {
  args: string[];
  options: O;
  strict: true;
  allowPositionals: P;
  tokens: true;
};

/**
 * The `run` of a command (controller, generate, isolate, release; `optionsCommand` for the others), with
 * positional arguments if `positionals` (isolate, release). Its arguments are read by node:util
 * parseArgs, strictly: an unknown option, a missing value or a stray argument is its error, which runCli
 * says as bad usage. An option of one value given twice is refused next (refuseRepeats), then --help
 * (`-h`) is answered with `help` as it is (it ends in a newline) on standard output, exit 0, before any
 * value is checked; otherwise `body` runs on what was parsed.
 */
export function argsCommand<
  O extends ParseArgsOptionsConfig & { help: { type: 'boolean' } },
  P extends boolean,
>(
  options: O,
  help: string,
  positionals: P,
  body: (parsed: ReturnType<typeof parseArgs<ArgsConfig<O, P>>>, io: CliIO) => Promise<number>,
): (args: string[], io: CliIO) => Promise<number> {
  return async (args, io) => {
    const parsed = parseArgs<ArgsConfig<O, P>>({
      args,
      options,
      strict: true,
      allowPositionals: positionals,
      tokens: true,
    });
    refuseRepeats(parsed.tokens, options);
    if ((parsed.values as { help?: boolean }).help) {
      io.out(help);
      return EXIT.ok;
    }
    return body(parsed, io);
  };
}

/** The values of `options` as the body of an `optionsCommand` is given them. */
export type OptionValues<O extends ParseArgsOptionsConfig> = ReturnType<
  typeof parseArgs<ArgsConfig<O, false>>
>['values'];

/**
 * The `run` of a command that takes options and no positional argument (audit, blast-radius, demo,
 * explain, graph, recommend, serve, simulate): `argsCommand` without positional arguments, its `help` (which
 * ends in no newline) answered with a newline added; `body` runs on the values.
 */
export function optionsCommand<O extends ParseArgsOptionsConfig & { help: { type: 'boolean' } }>(
  options: O,
  help: string,
  body: (values: OptionValues<O>, io: CliIO) => Promise<number>,
): (args: string[], io: CliIO) => Promise<number> {
  return argsCommand(options, help + '\n', false, ({ values }, io) => body(values, io));
}

/**
 * Refuses (bad usage, exit 2, before anything is read) an option of one value given more than once:
 * node:util parseArgs keeps the last one, so `--cluster a --cluster b` would read b alone and `--from`
 * twice would answer for the second, with no word. `tokens` are parseArgs's (`tokens: true`).
 */
export function refuseRepeats(
  tokens: readonly { kind: string; name?: string; value?: string | undefined }[],
  options: Readonly<Record<string, { type: string; multiple?: boolean }>>,
): void {
  const given = new Map<string, string[]>();
  for (const t of tokens) {
    if (t.kind !== 'option' || t.name === undefined) continue;
    const spec = options[t.name];
    if (spec === undefined || spec.multiple === true || spec.type !== 'string') continue;
    const values = given.get(t.name) ?? [];
    values.push(t.value ?? '');
    given.set(t.name, values);
  }
  for (const [name, values] of given)
    if (values.length > 1)
      throw new UsageError(`--${name} is given more than once (${values.join(', ')}): it takes one value`);
}
