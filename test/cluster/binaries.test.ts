// Unit tests of the build cache logic (no Go build, no server).
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cacheKey, cacheRoot, kubernetesVersionOf, MODULE_DIR, versionLdflags } from './binaries.ts';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function copyOfModule(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'microseg-binaries-test-'));
  dirs.push(dir);
  await cp(MODULE_DIR, dir, { recursive: true });
  return dir;
}

describe('kubernetesVersionOf', () => {
  it('reads the pinned k8s.io/kubernetes version from a single-line or block require', () => {
    expect(kubernetesVersionOf('module m\n\nrequire k8s.io/kubernetes v1.37.2\n')).toBe('v1.37.2');
    expect(kubernetesVersionOf('module m\nrequire (\n\tk8s.io/kubernetes v1.36.3\n\tfoo v1.0.0\n)\n')).toBe(
      'v1.36.3',
    );
  });

  it('names the file when the requirement is missing', () => {
    expect(() => kubernetesVersionOf('module m\n')).toThrow(
      'test/cluster/apiserver/go.mod does not require k8s.io/kubernetes',
    );
  });
});

describe('versionLdflags', () => {
  it('stamps the version into component-base and client-go, stripped', () => {
    const flags = versionLdflags('v1.37.2');
    expect(flags.startsWith('-s -w ')).toBe(true);
    expect(flags).toContain('-X k8s.io/component-base/version.gitVersion=v1.37.2');
    expect(flags).toContain('-X k8s.io/component-base/version.gitMinor=37');
    expect(flags).toContain('-X k8s.io/client-go/pkg/version.gitMajor=1');
  });

  it('rejects a version it cannot split', () => {
    expect(() => versionLdflags('latest')).toThrow('unexpected Kubernetes version "latest"');
  });
});

describe('cacheRoot', () => {
  it('honours MICROSEG_K8S_CACHE, then XDG_CACHE_HOME, then ~/.cache', () => {
    expect(cacheRoot({ MICROSEG_K8S_CACHE: '/c' })).toBe('/c');
    expect(cacheRoot({ XDG_CACHE_HOME: '/x' })).toBe(join('/x', 'microseg', 'apiserver'));
    expect(cacheRoot({ HOME: '/h' }).endsWith(join('.cache', 'microseg', 'apiserver'))).toBe(true);
  });
});

describe('cacheKey', () => {
  it('is the version plus a stable hash of the module sources', async () => {
    const a = await cacheKey();
    const b = await cacheKey(await copyOfModule());
    expect(a.version).toMatch(/^v1\.\d+\.\d+$/);
    expect(a.key).toMatch(new RegExp(`^${a.version.replaceAll('.', '\\.')}-[0-9a-f]{16}$`));
    expect(b).toEqual(a);
  });

  it('changes when a Go source, go.sum or go.mod changes, and ignores other files', async () => {
    const base = (await cacheKey()).key;
    const dir = await copyOfModule();
    await writeFile(join(dir, 'README.txt'), 'not part of the build');
    expect((await cacheKey(dir)).key).toBe(base);
    await writeFile(join(dir, 'extra.go'), 'package main\n');
    const withGo = (await cacheKey(dir)).key;
    expect(withGo).not.toBe(base);
    await writeFile(join(dir, 'go.sum'), '');
    expect((await cacheKey(dir)).key).not.toBe(withGo);
  });
});
