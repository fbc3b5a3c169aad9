/**
 * What `recommend` writes does not depend on the locale of the machine it runs on: the same input gives
 * byte-identical files in Copenhagen (Danish collation sorts `aa` after `z`) as under the C locale.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { compareText } from '../../src/model/order.ts';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'microseg-locale-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const NAMES: [string, string][] = [
  ['aardvark', '10.1.0.1'],
  ['zebra', '10.1.0.2'],
  ['ant', '10.1.0.3'],
];

function inputs(): { flows: string; cluster: string } {
  const items = [
    {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'zoo', labels: { 'kubernetes.io/metadata.name': 'zoo' } },
    },
    ...NAMES.map(([name, ip]) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: 'zoo', labels: { app: name } },
      spec: { nodeName: 'n1', containers: [{ name: 'c', ports: [{ containerPort: 80 }] }] },
      status: { phase: 'Running', podIP: ip, podIPs: [{ ip }], startTime: '2026-01-01T00:00:00Z' },
    })),
  ];
  const cluster = join(dir, 'cluster.json');
  writeFileSync(cluster, JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));
  const flows = join(dir, 'flows.jsonl');
  const pairs = [
    ['aardvark', 'zebra'],
    ['zebra', 'ant'],
    ['ant', 'aardvark'],
  ];
  writeFileSync(
    flows,
    pairs
      .map(([s, d]) =>
        JSON.stringify({ time: '2026-01-01T10:00:00Z', src: `zoo/${s}`, dst: `zoo/${d}`, port: 80 }),
      )
      .join('\n') + '\n',
  );
  return { flows, cluster };
}

/** The files `recommend` writes under locale `lang`, by name. */
function recommendUnder(lang: string, flows: string, cluster: string): Record<string, string> {
  const out = join(dir, `out-${lang}`);
  const r = spawnSync(
    process.execPath,
    [MAIN, 'recommend', '--flows', flows, '--cluster', cluster, '--out', out],
    { encoding: 'utf8', env: { ...process.env, LANG: lang, LC_ALL: lang } },
  );
  expect(r.status, r.stderr).toBe(0);
  const files: Record<string, string> = {};
  for (const f of readdirSync(out).sort()) files[f] = readFileSync(join(out, f), 'utf8');
  return files;
}

describe('recommend under another locale', () => {
  it('orders text the same way everywhere', () => {
    expect(compareText('microseg-aardvark', 'microseg-zebra')).toBeLessThan(0);
    expect(compareText('st', 'zt')).toBeLessThan(0);
    // Strings the collation holds equal are still two: precomposed and decomposed é, a zero-width space.
    expect(compareText('caf\u00e9', 'cafe\u0301')).not.toBe(0);
    expect(compareText('ab', 'a\u200bb')).not.toBe(0);
    expect(Math.sign(compareText('ab', 'a\u200bb'))).toBe(-Math.sign(compareText('a\u200bb', 'ab')));
  });

  it('writes the same files under the C and the Danish locale', () => {
    const { flows, cluster } = inputs();
    const c = recommendUnder('C.UTF-8', flows, cluster);
    const da = recommendUnder('da_DK.UTF-8', flows, cluster);
    expect(Object.keys(c)).toEqual(['report.json', 'zoo.yaml']);
    expect(da).toEqual(c);
    // The policies named in the report, in one order.
    expect(c['report.json']!.indexOf('zoo/microseg-aardvark')).toBeLessThan(
      c['report.json']!.indexOf('zoo/microseg-zebra'),
    );
  });
});
