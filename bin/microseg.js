#!/usr/bin/env -S node --max-semi-space-size=16 --heap-growing-percent=25
// Entry point for `npx microseg`. Runs the compiled CLI when built (npm run build), otherwise the
// TypeScript sources directly with Node 24's type stripping. The `#!` line passes the V8 flags of
// src/cli/node-flags.ts (a smaller young generation and a tighter heap: less resident memory).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const built = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const { runCli } = await import(existsSync(built) ? built : '../src/cli/main.ts');
process.exitCode = await runCli(process.argv.slice(2));
