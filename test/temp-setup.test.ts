import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname } from 'node:path';
import { describe, expect, it } from 'vitest';

describe('the test run’s temporary directory', () => {
  it('is the one directory the global setup made, removed when the run ends', () => {
    const root = process.env.MICROSEG_TEST_TMPDIR;
    expect(root).toBeDefined();
    expect(tmpdir()).toBe(root);
    expect(basename(root ?? '')).toMatch(/^microseg-test-/);
    expect(existsSync(root ?? '')).toBe(true);
    expect(dirname(root ?? '')).not.toBe(root);
  });
});
