/**
 * Giving memory back to the system between phases. Reading a cluster snapshot and building identity
 * leaves V8 with heap pages several times the size of what stays live (the parsed objects are garbage once
 * compacted), and V8 keeps those pages resident for the rest of the run. One memory-reducing collection
 * once identity is built returns them: on the 20k-workload cluster, 350 MB resident before it and about
 * 140 MB after, for about 0.2 s (docs/memory.md). A shell concern: the core only calls the hook it is given.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** V8's `gc`: a full collection by default, or as the options say. */
export type Collect = (options?: {
  type?: 'major' | 'minor';
  execution?: 'sync' | 'async';
  flavor?: 'regular' | 'last-resort';
}) => void;

let collect: Collect | undefined;

/** The engine's collector, exposed on first use. */
export function collector(): Collect {
  if (collect === undefined) {
    // `gc` exists only in contexts created after --expose-gc is set; this process's own global stays as
    // it was.
    setFlagsFromString('--expose-gc');
    collect = runInNewContext('gc') as Collect;
  }
  return collect;
}

/** A full, memory-reducing collection ("last resort": V8 also shrinks the heap it keeps afterwards). */
export function releaseMemory(): void {
  collector()({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}
