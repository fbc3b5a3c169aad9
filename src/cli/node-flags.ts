/**
 * The V8 flags every microseg process starts with: in the `microseg` executable's `#!` line, the npm
 * scripts, the container's entry point and the benchmarks (bench/flags.ts re-runs them with these; a
 * test checks they agree).
 *
 * - `--max-semi-space-size=16`: V8 sizes the young generation from the machine's memory, up to 64 MB per
 *   semi-space (a 128 MB new space) on a large machine, and the pages it has touched stay resident.
 *   Ingest garbage is short-lived either way; with 16 MB semi-spaces a large ingest keeps about 95 MB
 *   less resident at the same speed.
 * - `--heap-growing-percent=25`: after each full collection V8 lets the old generation grow to a multiple
 *   of what survived, up to 4x, chosen from how fast it collects; a process that reads flows from a pipe
 *   for minutes then holds several times its live heap. A fixed 1.25 keeps the 10M-line ingest of the
 *   20k-workload cluster at about 360 MB instead of 540 MB at the same speed, and `recommend` on 1M
 *   lines at about 890 MB instead of 1.1 GB, for 10-20% more time.
 *
 * Measured in docs/memory.md.
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=16', '--heap-growing-percent=25'];

/**
 * The environment every microseg process starts with, in the same places (`env -S` in the `#!` line,
 * the npm scripts, `ENV` in the container image, the benchmarks):
 *
 * - `MALLOC_ARENA_MAX=2`: glibc gives each thread that allocates its own `malloc` arena, up to eight
 *   per core, and V8's collector threads allocate; their arenas keep freed memory resident. Two arenas
 *   kept `microseg graph` over 10M lines at 290-291 MB instead of 293-302 MB, at the same speed.
 */
export const NODE_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };

/** NODE_ENV as `NAME=value` words, as a shell or `env` takes them. */
export const NODE_ENV_WORDS: readonly string[] = Object.entries(NODE_ENV).map(([k, v]) => `${k}=${v}`);
