/**
 * Compiles src/ to JavaScript in dist/ (what the npm package ships: Node.js does not strip types from
 * files under node_modules) and copies the files the compiled code reads beside it (the WebAssembly
 * scanner). `npm pack` runs it (prepack).
 *
 *   npm run build              build into dist/
 *   npm run build -- --out D   build into D instead (used by the test and the benchmarks)
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Files under src/ that are not TypeScript and that the compiled code reads from its own folder. */
export const ASSETS = ['flows/hubble-scan.wasm'];

export function build(out = join(root, 'dist')): void {
  rmSync(out, { recursive: true, force: true });
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', out], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`tsc failed with exit code ${r.status}`);
  for (const a of ASSETS) copyFileSync(join(root, 'src', a), join(out, a));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({ options: { out: { type: 'string' } }, strict: true });
  build(values.out === undefined ? undefined : resolve(values.out));
}
