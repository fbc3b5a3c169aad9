/**
 * The answer to a path no endpoint or file of the server serves, the same wherever it is asked (the
 * page's app, the controller's server with or without the page): `404` and a JSON error naming the
 * method and path and listing what the server serves, so that a client or a probe with a typo
 * (`/healthzz`, `/metricz`) learns what to ask instead; a browser (a request that prefers `text/html`
 * to JSON) gets a small HTML page saying the same, with a link to the web page when there is one.
 */
import type { Request, Response } from 'express';

/**
 * What a server serves besides the page, set by the server the page is mounted in (the controller's:
 * its probes and routers) on `res.locals` under this key, so that the page's 404 lists it too.
 */
export const SERVED_LOCAL = 'microsegServed';

/** The page's entry in the list: the page itself and its JSON API. */
export const PAGE_SERVED =
  'the web page (GET /) and its JSON API (GET /api/v1/info and the rest of /api/v1/)';

/** What `res.locals` says the enclosing server serves (none when the page is served alone). */
export function servedBefore(res: Response): readonly string[] {
  const v: unknown = res.locals[SERVED_LOCAL];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

/** The request's path as it was sent, without its query. */
function sentPath(req: Request): string {
  return req.originalUrl.split('?')[0] ?? '';
}

function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );
}

/**
 * Answers 404 for `req`, listing `served` (`GET /healthz`, ..., the page's entry last when the page is
 * there). `page`: the link to the web page for a browser's answer, when there is one.
 */
export function notFound(req: Request, res: Response, served: readonly string[], page?: string): void {
  const path = sentPath(req);
  const list = served.length > 0 ? `; this server serves ${served.join(', ')}` : '';
  const message = `no such endpoint: ${req.method} ${path}${list}`;
  res.status(404).set('X-Content-Type-Options', 'nosniff').set('Cache-Control', 'no-store');
  // JSON unless the client prefers HTML (a browser's navigation): `*/*` and no Accept header get JSON.
  if (req.accepts(['application/json', 'text/html']) === 'text/html') {
    const link = page === undefined ? '' : ` <a href="${escapeHtml(page)}">The service graph</a>`;
    res
      .type('text/html')
      .send(
        `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>Not found</title></head>\n` +
          `<body><h1>Not found</h1><p>Nothing is served at <code>${escapeHtml(path)}</code> (${escapeHtml(req.method)}).${link}</p>\n` +
          `<p>This server serves ${escapeHtml(served.join(', '))}.</p></body></html>\n`,
      );
    return;
  }
  res.json({ error: message });
}
