/**
 * Addresses learnt from flows that named a pod the snapshot lacks: an address-only flow of the same
 * address is the pod that was last seen holding it before the flow's time, whatever order the flows
 * came in (a relay gives each node's flows in order, not all of them).
 */
import { describe, expect, it } from 'vitest';
import { buildIdentity } from '../../src/identity/index.ts';
import { deployment, pod, ref, snapshotOf, T0 } from './workload-fixture.ts';

const MIN = 60_000;
const at = (minute: number) => T0 + minute * MIN;

describe('an address learnt from flows naming pods gone from the snapshot', () => {
  it('is the pod last seen holding it before the time asked, whatever order the flows came in', () => {
    const identity = buildIdentity(snapshotOf('app', deployment('app', 'web', '10.244.1.1', 8080)));
    const named = (pod: string, minute: number) =>
      identity.resolve({ ip: '10.244.9.9', namespace: 'app', pod }, at(minute));
    // a at 10, b at 20, then (a flow of another node, late) b at 5.
    expect(named('a', 10).id).toBe('app/Pod/a');
    expect(named('b', 20).id).toBe('app/Pod/b');
    expect(named('b', 5).id).toBe('app/Pod/b');
    const byAddress = (minute: number) => identity.resolve({ ip: '10.244.9.9' }, at(minute)).id;
    expect(byAddress(7)).toBe('app/Pod/b');
    expect(byAddress(12)).toBe('app/Pod/a');
    expect(byAddress(25)).toBe('app/Pod/b');
  });

  it('is that pod after a pod of the snapshot that held it has ended, not the ended pod', () => {
    // A finished migration Job's pod, still listed, held 10.244.1.7; its address went to a pod since gone.
    const job = pod(
      'app',
      'migrate-x7k2p',
      ref('batch/v1', 'Job', 'migrate'),
      { app: 'migrate' },
      '10.244.1.7',
      80,
    );
    (job as { status: { phase: string } }).status.phase = 'Succeeded';
    const running = pod(
      'app',
      'cache-0',
      ref('apps/v1', 'StatefulSet', 'cache'),
      { app: 'cache' },
      '10.244.1.8',
      80,
    );
    const identity = buildIdentity(snapshotOf('app', [job, running]));
    for (const ip of ['10.244.1.7', '10.244.1.8'])
      expect(identity.resolve({ ip, namespace: 'app', pod: 'gone' }, at(10)).id).toBe('app/Pod/gone');
    expect(identity.resolve({ ip: '10.244.1.7' }, at(5)).id).toBe('app/Job/migrate');
    expect(identity.resolve({ ip: '10.244.1.7' }, at(15)).id).toBe('app/Pod/gone');
    // A pod of the snapshot still running holds its address.
    expect(identity.resolve({ ip: '10.244.1.8' }, at(15)).id).toBe('app/StatefulSet/cache');
  });
});
