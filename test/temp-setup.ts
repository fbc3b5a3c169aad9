/**
 * Vitest global setup of both projects: every temporary file and directory of a run goes under one
 * directory of its own, removed when the run ends. The test files make theirs with
 * `mkdtemp(join(tmpdir(), …))`; `os.tmpdir()` reads TMPDIR, which the worker processes and the CLI
 * processes they start inherit from this process. Without it, each `npm test` left some forty
 * directories in the machine's /tmp.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const MARK = 'MICROSEG_TEST_TMPDIR';

export default function setup(): (() => void) | undefined {
  // Both projects name this file; the first to run makes the directory, the other finds it.
  if (process.env[MARK] !== undefined) return undefined;
  const before = process.env.TMPDIR;
  const root = mkdtempSync(join(tmpdir(), 'microseg-test-'));
  process.env.TMPDIR = root;
  process.env[MARK] = root;
  return () => {
    rmSync(root, { recursive: true, force: true });
    if (before === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = before;
    delete process.env[MARK];
  };
}
