import { getHeapStatistics } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { releaseMemory } from '../../src/cli/memory.ts';

/** Builds `n` objects, each with a string and an array, and drops them: the heap size it grew to. */
function allocateAndDrop(n: number): number {
  const garbage: unknown[] = [];
  for (let i = 0; i < n; i++) garbage.push({ i, s: `value ${i}`, list: [i, i + 1] });
  return getHeapStatistics().total_heap_size;
}

describe('releaseMemory', () => {
  it('gives the pages of dead objects back: the heap V8 keeps shrinks to about what is live', () => {
    const grown = allocateAndDrop(400_000);
    releaseMemory();
    const after = getHeapStatistics();
    // 400k objects with a string and an array each are well over 40 MB of heap.
    expect(grown - after.total_heap_size).toBeGreaterThan(40 * 2 ** 20);
    expect(after.used_heap_size).toBeLessThan(grown / 2);
    // Repeated calls reuse the collector.
    releaseMemory();
    expect(typeof (globalThis as { gc?: unknown }).gc).toBe('undefined');
  });
});
