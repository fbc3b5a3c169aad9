import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { NODE_ENV, NODE_ENV_WORDS, NODE_FLAGS } from '../../src/cli/node-flags.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** What the bin says on a Node older than 24. */
const tooOld = (version: string) =>
  `microseg: Node.js ${version} is too old: microseg needs Node.js 24 or newer ` +
  '(in a checkout, `npm ci` installs it and `npx microseg` run inside the checkout uses it; `npx --prefix` from elsewhere uses the Node on the PATH)\n';

/** A Node older than 24 installed on this machine outside the project (v20 on CI machines), if any. */
const olderNode = ['/usr/bin/node', '/usr/local/bin/node', '/bin/node']
  .filter((path) => existsSync(path))
  .map((path) => ({ path, version: spawnSync(path, ['--version'], { encoding: 'utf8' }).stdout.trim() }))
  .find(({ version }) => Number(/^v(\d+)\./.exec(version)?.[1]) < 24);

describe('the V8 flags and environment microseg starts with', () => {
  it('are in the executable, the npm scripts and the container entry point', () => {
    expect(NODE_FLAGS.length).toBeGreaterThan(0);
    expect(NODE_ENV_WORDS).toEqual(['MALLOC_ARENA_MAX=2']);
    const env = NODE_ENV_WORDS.join(' ');
    const shebang = readFileSync(join(root, 'bin/microseg.js'), 'utf8').split('\n')[0];
    expect(shebang).toBe(`#!/usr/bin/env -S ${env} node ${NODE_FLAGS.join(' ')}`);
    const scripts = (
      JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
    ).scripts;
    expect(scripts.start).toBe(`${env} node ${NODE_FLAGS.join(' ')} src/cli/main.ts demo`);
    expect(scripts.microseg).toBe(`${env} node ${NODE_FLAGS.join(' ')} src/cli/main.ts`);
    const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
    expect(/^ENV (.*)$/m.exec(dockerfile)?.[1]?.split(' ')).toEqual(
      expect.arrayContaining([...NODE_ENV_WORDS]),
    );
    const entry = /^ENTRYPOINT (.*)$/m.exec(dockerfile)?.[1];
    expect(JSON.parse(entry ?? 'null')).toEqual(['node', ...NODE_FLAGS, 'dist/cli/main.js']);
  });

  it('reach the process when the executable runs through its #! line', () => {
    // The project's Node 24 first on the PATH, as npm and npx put it; none of NODE_ENV inherited.
    const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !(k in NODE_ENV)));
    const env = {
      ...inherited,
      PATH: `${join(root, 'node_modules', '.bin')}:${process.env.PATH ?? ''}`,
      NODE_OPTIONS: `--import=data:text/javascript,process.on('exit',()=>process.stderr.write('execArgv='+JSON.stringify(process.execArgv)+'|env='+JSON.stringify(process.env.MALLOC_ARENA_MAX)))`,
    };
    const r = spawnSync(join(root, 'bin/microseg.js'), ['--help'], { env, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('usage: microseg');
    expect(JSON.parse(/execArgv=(.*)\|env=/m.exec(r.stderr)?.[1] ?? 'null')).toEqual([...NODE_FLAGS]);
    expect(JSON.parse(/\|env=(.*)$/m.exec(r.stderr)?.[1] ?? 'null')).toBe(NODE_ENV.MALLOC_ARENA_MAX);
  });

  it('refuse to start on a Node older than 24, naming the version found and the one needed, exit 2', () => {
    // On the project's Node, made to report another version before the bin runs: whatever Node the
    // machine has, the bound is proven, a newer Node runs microseg and an older one is refused.
    const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !(k in NODE_ENV)));
    const as = (version: string) =>
      spawnSync(join(root, 'bin/microseg.js'), ['--help'], {
        env: {
          ...inherited,
          PATH: `${join(root, 'node_modules', '.bin')}:${process.env.PATH ?? ''}`,
          NODE_OPTIONS:
            `--import=data:text/javascript,Object.defineProperty(process,'version',{value:'v${version}'});` +
            `Object.defineProperty(process,'versions',{value:{...process.versions,node:'${version}'}})`,
        },
        encoding: 'utf8',
      });
    for (const version of ['20.11.1', '23.11.0']) {
      const r = as(version);
      expect([r.status, r.stderr, r.stdout]).toEqual([2, tooOld(`v${version}`), '']);
    }
    for (const version of ['24.0.0', '25.1.0']) {
      const r = as(version);
      expect([r.status, r.stderr]).toEqual([0, '']);
      expect(r.stdout).toContain('usage: microseg');
    }
  });

  it.skipIf(olderNode === undefined)(
    `refuse to start on the machine's own older Node (${olderNode?.path ?? 'none found'}), before the TypeScript sources fail on it`,
    () => {
      // As `npx --prefix /elsewhere microseg` finds it on the PATH: the TypeScript sources would fail
      // with ERR_UNKNOWN_FILE_EXTENSION ".ts", which says nothing useful.
      const { path: old, version } = olderNode!;
      const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !(k in NODE_ENV)));
      const env = { ...inherited, PATH: `${dirname(old)}:/usr/bin:/bin` };
      for (const r of [
        spawnSync(join(root, 'bin/microseg.js'), ['--help'], { env, encoding: 'utf8' }),
        spawnSync(old, [join(root, 'bin/microseg.js'), 'graph', '--flows', 'x'], { env, encoding: 'utf8' }),
      ])
        expect([r.status, r.stderr, r.stdout]).toEqual([2, tooOld(version), '']);
    },
  );

  it('reach the benchmarks, which run themselves again with them when started without', () => {
    const dir = mkdtempSync(join(tmpdir(), 'microseg-flags-'));
    try {
      // A script that starts as the benchmark entry points do and reports what its process runs with.
      const script = join(dir, 'probe.ts');
      writeFileSync(
        script,
        [
          `import { withProductFlags } from ${JSON.stringify(join(root, 'bench', 'flags.ts'))};`,
          'withProductFlags();',
          'process.stdout.write(JSON.stringify({ argv: process.execArgv, env: process.env.MALLOC_ARENA_MAX, args: process.argv.slice(2) }));',
        ].join('\n'),
      );
      const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !(k in NODE_ENV)));
      const r = spawnSync(process.execPath, ['--expose-gc', script, 'a', 'b'], {
        env: inherited,
        encoding: 'utf8',
      });
      expect(r.status).toBe(0);
      const seen = JSON.parse(r.stdout) as { argv: string[]; env: string; args: string[] };
      expect(seen.argv).toEqual([...NODE_FLAGS, '--expose-gc']);
      expect(seen.env).toBe(NODE_ENV.MALLOC_ARENA_MAX);
      expect(seen.args).toEqual(['a', 'b']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
