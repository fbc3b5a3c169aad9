/**
 * Builds the WebAssembly Hubble scanner (native/hubble-scan, Rust) and copies it to
 * src/flows/hubble-scan.wasm, which is committed: running microseg needs no Rust toolchain. The build
 * is reproducible (test/flows/wasm-build.test.ts rebuilds it and compares the bytes).
 *
 *   npm run build:wasm            rebuild and copy
 *   npm run build:wasm -- --out F write the module to F instead (used by the test)
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const crate = join(root, 'native', 'hubble-scan');

export function buildWasm(out: string, targetDir = join(crate, 'target')): void {
  // cargo reads native/hubble-scan/.cargo/config.toml (target and SIMD) only from inside the crate.
  const r = spawnSync('cargo', ['build', '--release', '--locked', '--target-dir', targetDir], {
    cwd: crate,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (r.error)
    throw new Error(
      `cannot run cargo: ${r.error.message} (install Rust and the wasm32-unknown-unknown target)`,
    );
  if (r.status !== 0) throw new Error(`cargo build failed with exit code ${r.status}`);
  copyFileSync(join(targetDir, 'wasm32-unknown-unknown', 'release', 'hubble_scan.wasm'), out);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--out');
  const out = i >= 0 ? process.argv[i + 1]! : join(root, 'src', 'flows', 'hubble-scan.wasm');
  buildWasm(out);
  console.log(`wrote ${out}`);
}
