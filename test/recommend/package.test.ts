import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { build } from '../../scripts/build.ts';
import { generateDemo } from '../../src/generate/demo.ts';
import { writeLines, writeObjectList } from '../../src/generate/write.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'microseg-package-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Every file under `d`, by its path relative to `d`, with its text. */
function tree(d: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of readdirSync(d, { recursive: true, withFileTypes: true }))
    if (e.isFile()) {
      const path = join(e.parentPath, e.name);
      out.set(path.slice(d.length + 1), readFileSync(path, 'utf8'));
    }
  return out;
}

describe('the container image', () => {
  it('holds what the package holds, the build from its first stage', () => {
    const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
    const ignored = readFileSync(join(root, '.dockerignore'), 'utf8').split('\n');
    const { files } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { files: string[] };
    for (const f of files) {
      const d = f.replace(/\/$/, '');
      if (d === 'dist') expect(dockerfile).toContain('COPY --from=build /app/dist ./dist');
      else {
        expect(dockerfile).toContain(`COPY ${d} ./${d}`);
        expect(ignored).not.toContain(d);
      }
    }
    for (const d of ['src', 'scripts']) expect(ignored).not.toContain(d);
    expect(dockerfile).toContain('RUN node scripts/build.ts');
  });
});

describe('the package as npm installs it', () => {
  it('runs from its compiled JavaScript alone, with the output of the sources', async () => {
    // What `npm pack` puts in the package: package.json's `files`, the build in dist/.
    const pkg = join(dir, 'microseg');
    const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
      files: string[];
      scripts: Record<string, string>;
    };
    expect(manifest.scripts.prepack).toBe('npm run build');
    expect(manifest.files).toContain('dist/');
    expect(manifest.files.some((f) => f.startsWith('src'))).toBe(false);
    for (const f of manifest.files)
      if (f !== 'dist/') cpSync(join(root, f), join(pkg, f), { recursive: true });
    writeFileSync(join(pkg, 'package.json'), JSON.stringify(manifest));
    build(join(pkg, 'dist'));
    symlinkSync(join(root, 'node_modules'), join(pkg, 'node_modules'), 'dir');

    const demo = generateDemo();
    const cluster = join(dir, 'cluster.json');
    const flows = join(dir, 'flows.jsonl.gz');
    await writeObjectList(cluster, demo.objects);
    await writeLines(flows, demo.lines, { gzip: true });
    const run = (bin: string, args: string[], nodeArgs: string[] = []) => {
      const r = spawnSync(process.execPath, [...nodeArgs, bin, ...args], { encoding: 'utf8' });
      // graph says what it read on standard error (its output is the graph); recommend says nothing there.
      if (args[0] === 'graph') expect(r.stderr).toMatch(/^read \d+ line\(s\) from 1 source\(s\)/);
      else expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      return r.stdout;
    };
    // No TypeScript may be loaded: type stripping off, any .ts import would fail.
    const installed = (args: string[]) =>
      run(join(pkg, 'bin', 'microseg.js'), args, ['--no-experimental-strip-types']);
    const sources = (args: string[]) => run(join(root, 'bin', 'microseg.js'), args);
    // Both write to the same folder (the summary names it), in turn.
    const out = join(dir, 'policies');
    const rec = ['recommend', '--flows', flows, '--cluster', cluster, '--out', out];
    const summary = installed(rec);
    const files = tree(out);
    rmSync(out, { recursive: true });
    expect(summary).toBe(sources(rec));
    expect(files.size).toBeGreaterThan(3);
    expect(files).toEqual(tree(out));
    const graph = ['graph', '--flows', flows, '--cluster', cluster, '--format', 'dot'];
    const dot = installed(graph);
    expect(dot).toContain('digraph microseg');
    expect(dot).toBe(sources(graph));

    // A script run with the package's built modules alone (type stripping off): its standard output.
    const script = (name: string, lines: string[]) => {
      const file = join(dir, name);
      writeFileSync(file, lines.join('\n'));
      const r = spawnSync(process.execPath, ['--no-experimental-strip-types', file], { encoding: 'utf8' });
      expect(r.stderr).toBe('');
      return r.stdout;
    };
    const built = (path: string) => JSON.stringify(pathToFileURL(join(pkg, 'dist', path)).href);

    // The server parses `POST /audit` bodies in a thread of its own, from the built file beside it.
    const parsed = script('parse.mjs', [
      `const { ObjectsParser } = await import(${built('server/parse.js')});`,
      'const p = new ObjectsParser();',
      "console.log(JSON.stringify(await p.parse('kind: Namespace\\nmetadata: {name: a}\\n---\\nkind: Pod\\n', 'body')));",
      'await p.close();',
    ]);
    expect(JSON.parse(parsed)).toEqual([{ kind: 'Namespace', metadata: { name: 'a' } }, { kind: 'Pod' }]);

    // YAML too deep for the main thread's stack is read again on a thread of its own, from the built
    // file beside the reader: 1000 levels (flow style overflows the main thread near 800) read, 1001 refused.
    const deep = script('deep.mjs', [
      `const { parseObjectsText } = await import(${built('model/snapshot.js')});`,
      "const deep = (n) => 'kind: Pod\\nspec:\\n  x: ' + '['.repeat(n - 2) + ']'.repeat(n - 2) + '\\n';",
      "console.log(JSON.stringify(parseObjectsText(deep(1000), 'deep.yaml').map((o) => o.kind)));",
      "try { parseObjectsText(deep(1001), 'deeper.yaml'); } catch (e) { console.log(e.name + ': ' + e.message); }",
    ]);
    expect(deep.split('\n')).toEqual([
      '["Pod"]',
      'InputError: deeper.yaml: nested more than 1000 levels deep (lists and objects inside one another), deeper than any Kubernetes object',
      '',
    ]);
    // Four whole CLI runs and a build: 40 s on a machine busy with other work.
  }, 120_000);
});
