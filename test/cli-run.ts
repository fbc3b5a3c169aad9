/**
 * What tests of the command line share: running `microseg` in this process with its output captured,
 * and a kubeconfig naming an API server.
 */
import { writeFileSync } from 'node:fs';
import { captureIO } from '../src/cli/io.ts';
import { runCli } from '../src/cli/main.ts';

/** Runs `microseg args`: its exit code, standard output and standard error. */
export async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = captureIO();
  const code = await runCli(args, io);
  return { code, out: io.stdout, err: io.stderr };
}

/**
 * Writes at `file` a kubeconfig whose one context reaches `server` (its certificate not verified) as a
 * user with a token; returns `file`.
 */
export function writeKubeconfig(file: string, server: string): string {
  writeFileSync(
    file,
    [
      'apiVersion: v1',
      'kind: Config',
      `clusters: [{name: c, cluster: {server: "${server}", insecure-skip-tls-verify: true}}]`,
      'users: [{name: u, user: {token: t}}]',
      'contexts: [{name: x, context: {cluster: c, user: u}}]',
      'current-context: x',
      '',
    ].join('\n'),
  );
  return file;
}
