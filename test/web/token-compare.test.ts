/**
 * The page's API compares a bearer token without telling its length by the time it takes: a wrong token
 * of any length is compared, in constant time, over equal-length values, as the push endpoint and the
 * webhooks compare theirs.
 */
import type * as Crypto from 'node:crypto';
import request from 'supertest';
import { beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createApp } from '../../src/server/app.ts';
import { analysisSource } from '../../src/server/source.ts';
import type { ViewSource } from '../../src/server/types.ts';
import { fixtureAnalysis } from './helpers.ts';

const compared = vi.hoisted(() => [] as [number, number][]);

vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof Crypto>();
  return {
    ...real,
    timingSafeEqual: (a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
      compared.push([a.byteLength, b.byteLength]);
      return real.timingSafeEqual(a, b);
    },
  };
});

let source: ViewSource;

beforeAll(async () => {
  const fx = await fixtureAnalysis();
  source = analysisSource(fx.analysis, { title: 'fixture', mode: 'demo' });
});

beforeEach(() => {
  compared.length = 0;
});

describe("the page's API token check", () => {
  const TOKEN = 'a-token-of-thirty-two-characters';

  it.each([
    ['shorter than the right one', 'x'],
    ['longer than the right one', `${TOKEN}-and-more`],
    ['as long as the right one', 'b-token-of-thirty-two-characters'],
  ])('compares a wrong token %s in constant time, and refuses it', async (_what, wrong) => {
    const app = createApp(source, { auth: { token: TOKEN } });
    await request(app).get('/api/v1/info').set('Authorization', `Bearer ${wrong}`).expect(401);
    // Compared at all (not refused early on its length), over values of one length.
    expect(compared.length).toBeGreaterThan(0);
    for (const [a, b] of compared) expect(a).toBe(b);
  });

  it('still takes the right token', async () => {
    const app = createApp(source, { auth: { token: TOKEN } });
    const info = await request(app).get('/api/v1/info').set('Authorization', `Bearer ${TOKEN}`).expect(200);
    expect(info.body.auth).toMatchObject({ authenticated: true, canAct: true });
    expect(compared.length).toBeGreaterThan(0);
  });
});
