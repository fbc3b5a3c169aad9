import { describe, expect, it } from 'vitest';
import { captureIO, EXIT } from '../../src/cli/io.ts';
import { COMMANDS, runCli } from '../../src/cli/main.ts';

async function cli(args: string[]) {
  const io = captureIO();
  const code = await runCli(args, io);
  return { code, err: io.stderr };
}

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
