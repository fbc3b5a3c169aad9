import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { NODE_FLAGS } from '../../src/cli/node-flags.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

describe('the V8 flags microseg starts with', () => {
  it('are in the executable, the npm scripts and the container entry point', () => {
    expect(NODE_FLAGS.length).toBeGreaterThan(0);
    const shebang = readFileSync(join(root, 'bin/microseg.js'), 'utf8').split('\n')[0];
    expect(shebang).toBe(`#!/usr/bin/env -S node ${NODE_FLAGS.join(' ')}`);
    const scripts = (
      JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
    ).scripts;
    expect(scripts.start).toBe(`node ${NODE_FLAGS.join(' ')} src/cli/main.ts demo`);
    expect(scripts.microseg).toBe(`node ${NODE_FLAGS.join(' ')} src/cli/main.ts`);
    const entry = /^ENTRYPOINT (.*)$/m.exec(readFileSync(join(root, 'Dockerfile'), 'utf8'))?.[1];
    expect(JSON.parse(entry ?? 'null')).toEqual(['node', ...NODE_FLAGS, 'dist/cli/main.js']);
  });

  it('reach the process when the executable runs through its #! line', () => {
    // The project's Node 24 first on the PATH, as npm and npx put it.
    const env = {
      ...process.env,
      PATH: `${join(root, 'node_modules', '.bin')}:${process.env.PATH ?? ''}`,
      NODE_OPTIONS: `--import=data:text/javascript,process.on('exit',()=>process.stderr.write('execArgv='+JSON.stringify(process.execArgv)))`,
    };
    const r = spawnSync(join(root, 'bin/microseg.js'), ['--help'], { env, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('usage: microseg');
    expect(JSON.parse(/execArgv=(.*)$/m.exec(r.stderr)?.[1] ?? 'null')).toEqual([...NODE_FLAGS]);
  });
});
