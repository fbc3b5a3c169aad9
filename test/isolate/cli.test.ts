import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { captureIO } from '../../src/cli/io.ts';
import { runCli } from '../../src/cli/main.ts';
import type { Isolation } from '../../src/isolate/api.ts';
import { parseIsolationSpec } from '../../src/isolate/api.ts';

async function cli(args: string[]) {
  const io = captureIO();
  const code = await runCli(args, io);
  return { code, out: io.stdout, err: io.stderr };
}

describe('microseg isolate --print', () => {
  it('prints a valid Isolation for pods, with a stable name derived from the target', async () => {
    const r = await cli([
      'isolate',
      'shop/cart-1',
      'shop/cart-2',
      '--reason',
      'shell in container',
      '--duration',
      '4h',
      '--forensics-namespace',
      'team=ir',
      '--requested-by',
      'alice',
      '--print',
    ]);
    expect(r.code).toBe(0);
    const iso = parse(r.out) as Isolation;
    expect(iso.metadata).toEqual({
      name: expect.stringMatching(/^iso-cart-1-[0-9a-f]{6}$/) as string,
      namespace: 'shop',
      labels: { 'app.kubernetes.io/managed-by': 'microseg', 'microseg.dev/trigger': 'cli' },
    });
    expect(iso.spec).toEqual({
      target: { pods: ['cart-1', 'cart-2'] },
      exceptions: { dns: true, forensics: [{ namespaceSelector: { matchLabels: { team: 'ir' } } }] },
      reason: 'shell in container',
      requestedBy: 'alice',
      duration: '4h',
    });
    expect(parseIsolationSpec(iso.metadata.name, iso.spec).ok).toBe(true);
    const again = await cli(['isolate', 'shop/cart-2', 'shop/cart-1', '--reason', 'other words', '--print']);
    expect((parse(again.out) as Isolation).metadata.name).toBe(iso.metadata.name);
  });

  it('workloads and selectors need a namespace', async () => {
    const w = await cli([
      'isolate',
      '--workload',
      'Deployment/cart',
      '-n',
      'shop',
      '--include-future',
      '--reason',
      'r',
      '--no-dns',
      '--print',
      '--output',
      'json',
    ]);
    expect(w.code).toBe(0);
    expect((JSON.parse(w.out) as Isolation).spec).toMatchObject({
      target: { workload: { kind: 'Deployment', name: 'cart', includeFuture: true } },
      exceptions: { dns: false },
    });
    const s = await cli([
      'isolate',
      '--selector',
      'app=cart,tier=web',
      '-n',
      'shop',
      '--reason',
      'r',
      '--print',
      '--output',
      'json',
    ]);
    expect((JSON.parse(s.out) as Isolation).spec?.target).toEqual({
      podSelector: { matchLabels: { app: 'cart', tier: 'web' } },
    });
  });

  it.each([
    [['isolate', 'shop/cart-1', '--print'], '--reason is required (why the pods are isolated)'],
    [
      ['isolate', '--reason', 'r', '--print'],
      'give pods as namespace/pod arguments, or --workload KIND/NAME, or --selector k=v (exactly one)',
    ],
    [['isolate', 'cart-1', '--reason', 'r', '--print'], 'pod "cart-1" must be namespace/name'],
    [['isolate', 'a/x', 'b/y', '--reason', 'r', '--print'], 'all pods must be in one namespace (got a, b)'],
    [
      ['isolate', '--workload', 'Deployment/cart', '--reason', 'r', '--print'],
      '--namespace is required with --workload and --selector',
    ],
    [
      ['isolate', 'shop/x', '--reason', 'r', '--direction', 'Up', '--print'],
      'spec.direction "Up" is not one of Both, Ingress, Egress',
    ],
    [
      ['isolate', 'shop/x', '--reason', 'r', '--duration', 'soon', '--print'],
      'spec.duration "soon" is not a duration such as "90s", "15m" or "1h30m"',
    ],
    [
      ['isolate', 'shop/x', '--reason', 'r', '--forensics-namespace', 'team', '--print'],
      '--forensics-namespace "team" must be key=value[,key=value]',
    ],
    [['isolate', 'shop/x', '--reason', 'r', '--bogus'], "Unknown option '--bogus'"],
    [['release'], 'name at least one NAMESPACE/ISOLATION or --pod NAMESPACE/POD'],
    [['release', 'nope'], 'isolation "nope" must be namespace/name'],
  ])('%j → usage error', async (args, message) => {
    const r = await cli(args);
    expect(r.code).toBe(2);
    expect(r.err).toContain(message);
  });

  it('lists isolate and release in the command overview', async () => {
    const r = await cli(['--help']);
    expect(r.out).toMatch(/isolate\s+cut pods off the network for incident response/);
    expect(r.out).toMatch(/release\s+release an Isolation and restore the pods exactly/);
  });
});
