import { describe, expect, it } from 'vitest';
import { captureIO } from '../../src/cli/io.ts';
import { runCli } from '../../src/cli/main.ts';

describe('microseg controller (command line)', () => {
  it('prints its options', async () => {
    const io = captureIO();
    expect(await runCli(['controller', '--help'], io)).toBe(0);
    expect(io.stdout).toContain('usage: microseg controller [options]');
    expect(io.stdout).toContain('--leader-elect');
    expect(io.stdout).toContain('--hubble-relay HOST:PORT');
  });

  it.each([
    [['--resync', 'soon'], 'microseg controller: --resync "soon" is not a duration such as "10s" or "1m"\n'],
    [
      ['--listen', 'nowhere'],
      'microseg controller: --listen "nowhere" is not host:port, :port or a port number\n',
    ],
    [['--queue-capacity', '0'], 'microseg controller: --queue-capacity "0" is not a positive integer\n'],
    [
      ['--log-level', 'loud'],
      'microseg controller: --log-level "loud" is not one of debug, info, warn, error\n',
    ],
    [
      ['--push-token-file', '/'],
      'microseg controller: --push-token-file: EISDIR: illegal operation on a directory, read\n',
    ],
    [['--frobnicate'], "microseg controller: Unknown option '--frobnicate'\n"],
  ])('rejects %j with exit code 2', async (args, message) => {
    const io = captureIO();
    expect(await runCli(['controller', ...args], io)).toBe(2);
    expect(io.stderr).toBe(message);
  });
});
