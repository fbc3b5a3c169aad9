/**
 * The V8 flags every microseg process starts with: in the `microseg` executable's `#!` line, the npm
 * scripts, the container's entry point and the benchmarks' child processes (a test checks they agree).
 *
 * `--max-semi-space-size=16`: V8 sizes the young generation from the machine's memory, up to 64 MB per
 * semi-space (a 128 MB new space) on a large machine, and the pages it has touched stay resident. Ingest
 * garbage is short-lived either way; with 16 MB semi-spaces a large run keeps about 95 MB less resident
 * at the same speed (docs/memory.md).
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=16'];
