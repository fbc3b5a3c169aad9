/** Bearer tokens compared without telling their bytes or length by the time taken. */
import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/**
 * Constant-time comparison of a presented token with the expected one. Both are hashed first, so that
 * values of different lengths are compared too: how long the answer takes tells neither the token's
 * bytes nor its length.
 */
export function tokenMatches(presented: string, expected: string): boolean {
  return timingSafeEqual(digest(presented), digest(expected));
}
