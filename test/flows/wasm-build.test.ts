import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { buildWasm } from '../../scripts/build-wasm.ts';

const dir = mkdtempSync(join(tmpdir(), 'microseg-wasm-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('the committed hubble-scan.wasm is what native/hubble-scan builds to', () => {
  const out = join(dir, 'hubble-scan.wasm');
  buildWasm(out, join(dir, 'target'));
  const committed = readFileSync(new URL('../../src/flows/hubble-scan.wasm', import.meta.url));
  expect(readFileSync(out).equals(committed)).toBe(true);
}, 300_000);
