/** What a request body will hold in memory once read, for the bounds on bodies held at once. */
import type { Request } from 'express';

/**
 * The bytes `req`'s body may take once read and decoded, at most `limit`: its Content-Length when it
 * is sent as is, else the largest (no length given, or a Content-Encoding such as gzip, whose body of a
 * few bytes on the wire may inflate to the limit).
 */
export function bodyCost(req: Request, limit: number): number {
  const declared = Number(req.get('content-length'));
  const encoding = (req.get('content-encoding') ?? 'identity').trim().toLowerCase();
  return encoding === 'identity' && Number.isFinite(declared) && declared >= 0
    ? Math.min(declared, limit)
    : limit;
}
