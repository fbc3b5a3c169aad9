/**
 * How long one identity rebuild takes on the 20k-workload cluster (src/generate/large.ts): what the
 * controller does, on its event loop, each time its caches changed (src/controller/segmentation.ts).
 * Objects go through compactObject and snapshotFromObjects as the controller's cache and a cluster file
 * give them. Best of several runs, after one to warm up.
 *
 *   node bench/identity.ts [runs]
 */
import { pathToFileURL } from 'node:url';
import { largeClusterObjects, largeTopology } from '../src/generate/large.ts';
import { buildIdentity } from '../src/identity/index.ts';
import { compactObject, Interner } from '../src/model/compact.ts';
import type { ClusterSnapshot } from '../src/model/snapshot.ts';
import { snapshotFromObjects } from '../src/model/snapshot.ts';
import { withProductFlags } from './flags.ts';
import { collectYoung, type Figure } from './pipeline.ts';

function* map<T, U>(items: Iterable<T>, f: (t: T) => U): Generator<U> {
  for (const t of items) yield f(t);
}

/** The snapshot of the 20k-workload cluster, its objects compacted as microseg reads them. */
export function largeSnapshot(workloads = 20_000): ClusterSnapshot {
  const topo = largeTopology({ workloads, seed: 7 });
  const interner = new Interner();
  return snapshotFromObjects(
    map(largeClusterObjects(topo, { lean: true }), (o) =>
      compactObject(JSON.parse(JSON.stringify(o)) as typeof o, interner),
    ),
    'large',
  );
}

export function benchIdentity(opts: { runs?: number } = {}): Figure[] {
  const runs = opts.runs ?? 5;
  const snap = largeSnapshot();
  let workloads = 0;
  let best = Infinity;
  // The first run warms up (compiles); the best of the others is the figure.
  for (let r = 0; r <= runs; r++) {
    collectYoung();
    // Processor time, not wall time: on a shared machine the wall time counts other processes' turns.
    const t0 = process.cpuUsage();
    const identity = buildIdentity(snap);
    const used = process.cpuUsage(t0);
    const ms = (used.user + used.system) / 1000;
    workloads = identity.workloads.size;
    if (r > 0) best = Math.min(best, ms);
  }
  return [
    { name: 'identity: pods', value: snap.pods.length, unit: 'pods' },
    { name: 'identity: workload objects', value: snap.workloads.length, unit: 'objects' },
    { name: 'identity: Services', value: snap.services.length, unit: 'Services' },
    { name: 'identity: workloads', value: workloads, unit: 'workloads' },
    {
      name: `identity: one buildIdentity, processor time (best of ${runs})`,
      value: Math.round(best),
      unit: 'ms',
    },
  ];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  withProductFlags();
  const n = Number(process.argv[2]);
  for (const f of benchIdentity({ runs: Number.isInteger(n) && n > 0 ? n : undefined }))
    console.log(`${f.name.padEnd(60)} ${f.value} ${f.unit}`);
}
