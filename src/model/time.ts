/** Times as Kubernetes writes them in objects (RFC 3339, to the second). */

/** `t` (epoch ms) as RFC 3339 in UTC to the second: `2026-12-06T03:00:00Z`. */
export function isoSeconds(t: number): string {
  return new Date(t).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
