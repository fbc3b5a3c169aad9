import { describe, expect, it } from 'vitest';
import { generateDemo } from '../../src/generate/demo.ts';
import { buildIdentity } from '../../src/identity/index.ts';
import { compactObject } from '../../src/model/compact.ts';
import { snapshotFromObjects } from '../../src/model/snapshot.ts';

describe('compaction', () => {
  it('keeps everything identity reads: same workloads and resolutions, far fewer bytes', () => {
    const { objects } = generateDemo();
    const full = buildIdentity(snapshotFromObjects(objects, 'demo'));
    function* compacted() {
      for (const o of objects) yield compactObject(o);
    }
    const small = snapshotFromObjects(compacted(), 'demo');
    const lean = buildIdentity(small);
    expect([...lean.workloads.values()]).toEqual([...full.workloads.values()]);
    expect(lean.podWorkload).toEqual(full.podWorkload);
    expect(lean.apiserverEndpoints).toEqual(full.apiserverEndpoints);
    expect(lean.podNetworks).toEqual(full.podNetworks);
    const before = JSON.stringify(objects.filter((o) => (o as { kind: string }).kind === 'Pod')).length;
    const after = JSON.stringify(small.pods).length;
    expect(after).toBeLessThan(before / 2);
  });
});
