#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-semi-space-size=16 --heap-growing-percent=25
// Entry point for `npx microseg`. An installed package runs its compiled JavaScript (dist/, built when
// the package is packed: Node.js strips no types under node_modules); a checkout of the project runs
// the TypeScript sources, so that what runs there is always what src/ says. The `#!` line passes the
// environment and V8 flags of src/cli/node-flags.ts (fewer malloc arenas, a smaller young generation
// and a tighter heap: less resident memory).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// Before anything of microseg is loaded: an older Node fails on the TypeScript sources with
// ERR_UNKNOWN_FILE_EXTENSION, which does not say that the Node is what is wrong. Bad usage, exit 2.
const NODE_MAJOR = 24;
if (Number(process.versions.node.split('.')[0]) < NODE_MAJOR) {
  process.stderr.write(
    `microseg: Node.js ${process.version} is too old: microseg needs Node.js ${NODE_MAJOR} or newer ` +
      '(in a checkout, `npm ci` installs it and `npx microseg` run inside the checkout uses it; ' +
      '`npx --prefix` from elsewhere uses the Node on the PATH)\n',
  );
  process.exit(2);
}

const source = new URL('../src/cli/main.ts', import.meta.url);
const main = existsSync(fileURLToPath(source)) ? source : new URL('../dist/cli/main.js', import.meta.url);
const { runCli } = await import(main.href);
process.exitCode = await runCli(process.argv.slice(2));
