/**
 * Moving around the page in headless Chromium (as test/web/browser.test.ts drives it): following the
 * links of the details panel in the grouped view of a large graph, what an edge's details say, and
 * using the page from the keyboard alone.
 */
import type { Server } from 'node:http';
import type { Browser, Page } from 'playwright-core';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/server/app.ts';
import type { ViewSource } from '../../src/server/types.ts';
import { CHROMIUM, listen, requireChromium, syntheticGraph } from './helpers.ts';

const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'];

/** What the page exposes on `window` for inspection. */
type W = Window & {
  microseg: {
    graph: {
      hasNode(id: string): boolean;
      order: number;
      getEdgeAttributes(id: string): { data: unknown };
    };
    renderer: { emit(event: string, payload: unknown): void };
    selected: string | null;
  };
};

let browser: Browser;
const servers: Server[] = [];

/**
 * 60 workloads in two segments (seg-000: ns-0, seg-001: ns-1), svc-55 of ns-1 calling svc-23 of ns-0
 * on 9090, and three internet peers.
 */
const big = syntheticGraph(60, 2);
const SVC55 = 'ns-1/Deployment/svc-55';
const SVC23 = 'ns-0/Deployment/svc-23';

function source(): ViewSource {
  return {
    info: () => ({ mode: 'offline', title: 'synthetic' }),
    graph: () => big.graph,
    segments: () => big.segments,
    proposal: () => big.proposal,
  };
}

async function open(): Promise<{ page: Page; errors: string[] }> {
  const s = await listen(createApp(source()));
  servers.push(s.server);
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(s.url);
  await page.waitForFunction(() => document.body.dataset.ready === '1' || document.body.dataset.error, null, {
    timeout: 30_000,
  });
  expect(await page.evaluate(() => document.body.dataset.error ?? null)).toBeNull();
  return { page, errors };
}

/** Chooses the grouped view (every segment one node) and waits for it to be drawn. */
async function grouped(page: Page): Promise<void> {
  await page.selectOption('#view-mode', 'segments');
  await page.waitForFunction(() => (window as unknown as W).microseg.graph.hasNode('segment:seg-000'));
}

const drawn = (page: Page, id: string) =>
  page.evaluate((i) => (window as unknown as W).microseg.graph.hasNode(i), id);

beforeAll(async () => {
  requireChromium();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
});

afterAll(async () => {
  await browser?.close();
  for (const s of servers) await new Promise((r) => s.close(r));
});

describe('moving around the page (headless Chromium)', () => {
  it('in the grouped view, a peer of the evidence in another segment opens: its segment expands', async () => {
    const { page, errors } = await open();
    await grouped(page);
    await page.fill('#search', 'svc-55');
    await page.waitForSelector(`#search-results li[data-id="${SVC55}"]`);
    await page.press('#search', 'Enter');
    await page.waitForFunction(
      (id) => document.querySelector('#details-title')?.textContent === id,
      'svc-55',
    );
    // svc-23 is in seg-000, still one node: the link must move to it all the same (was: nothing but
    // "ns-0/Deployment/svc-23 is not drawn in this view" on the status line).
    expect(await drawn(page, SVC23)).toBe(false);
    await page.click(`#panel [data-goto="${SVC23}"]`);
    await page.waitForFunction(
      () => document.querySelector('#details-title')?.textContent === 'svc-23',
      null,
      {
        timeout: 10_000,
      },
    );
    expect(await drawn(page, SVC23)).toBe(true);
    expect(await page.evaluate(() => (window as unknown as W).microseg.selected)).toBe(SVC23);
    expect(await page.textContent('#status')).toMatch(/grouped by segment \(2 expanded\)/);
    // A peer that stays inside a group node (an internet address) still opens its details.
    const world = big.graph.edges.find((e) => e.target.startsWith('world:') && e.source.startsWith('ns-'))!;
    await page.fill('#search', world.source.split('/')[2]!);
    await page.waitForSelector(`#search-results li[data-id="${world.source}"]`);
    await page.press('#search', 'Enter');
    await page.waitForSelector(`#panel [data-goto="${world.target}"]`);
    await page.click(`#panel [data-goto="${world.target}"]`);
    await page.waitForFunction(
      (t) => document.querySelector('#details-title')?.textContent === t,
      world.target.slice('world:'.length),
      { timeout: 10_000 },
    );
    expect(await page.textContent('#status')).not.toContain('not drawn');
    expect(errors).toEqual([]);
    await page.close();
  });

  it("says an edge's ports and its connections apart: a segment's edge merges many on one port", async () => {
    const { page, errors } = await open();
    await grouped(page);
    // seg-001 → seg-000 stands for svc-55 → svc-23 and svc-58 → svc-26, both on TCP/9090.
    const cross = big.graph.edges.filter((e) => e.source.startsWith('ns-1/') && e.target.startsWith('ns-0/'));
    expect(cross.map((e) => e.port)).toEqual([9090, 9090]);
    const flows = cross.reduce((n, e) => n + e.count, 0);
    const id = 'segment:seg-001->segment:seg-000';
    await page.evaluate((e) => (window as unknown as W).microseg.renderer.emit('clickEdge', { edge: e }), id);
    await page.waitForFunction(
      () => document.querySelector('#panel-body h2')?.textContent === 'seg-001 (30) → seg-000 (30)',
    );
    // Was: "51 flows over 2 port(s)", the count of connections merged given as the ports'.
    expect(
      await page.$eval('#panel-body', (p) => p.querySelector('#edge-counts')?.textContent ?? p.textContent),
    ).toMatch(new RegExp(`^${flows} flows on 1 port \\(TCP/9090\\), in 2 observed connections; first seen `));
    expect(errors).toEqual([]);
    await page.close();
  });

  it('works from the keyboard: arrows choose a search result, Tab and Enter follow the links of the panel', async () => {
    const { page, errors } = await open();
    const title = (t: string) =>
      page.waitForFunction((x) => document.querySelector('#details-title')?.textContent === x, t, {
        timeout: 10_000,
      });
    // Search lists svc-5 and svc-50 … svc-59: the arrows move through them, Enter opens the one chosen
    // (was: Enter opened the first whatever the arrows did, the rest only by mouse).
    await page.focus('#search');
    await page.keyboard.type('svc-5');
    await page.waitForSelector('#search-results li[data-id="ns-1/Deployment/svc-55"]');
    const listed = await page.$$eval('#search-results li[data-id]', (lis) =>
      lis.map((li) => (li as HTMLElement).dataset.id),
    );
    expect(listed.slice(0, 3)).toEqual([
      'ns-0/Deployment/svc-5',
      'ns-1/Deployment/svc-50',
      'ns-1/Deployment/svc-51',
    ]);
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowUp');
    expect(
      await page.$$eval('#search-results li[aria-selected="true"]', (lis) => lis.map((li) => li.textContent)),
    ).toEqual(['svc-50 ns-1 · seg-001']);
    expect(await page.$eval('#search', (i) => i.getAttribute('aria-activedescendant'))).toBe(
      await page.$eval('#search-results li[aria-selected="true"]', (li) => li.id),
    );
    await page.keyboard.press('Enter');
    await title('svc-50');
    // The links of the details are reached with Tab and followed with Enter, as a click follows them.
    const peer = await page.$eval('#panel [data-goto]', (el) => el.getAttribute('data-goto'));
    expect(peer).not.toBeNull();
    await page.focus('#search');
    let reached = false;
    for (let i = 0; i < 15 && !reached; i++) {
      await page.keyboard.press('Tab');
      reached = await page.evaluate((id) => document.activeElement?.getAttribute('data-goto') === id, peer);
    }
    expect(reached).toBe(true);
    await page.keyboard.press('Enter');
    await title(peer!.split('/')[2]!);
    expect(await page.evaluate(() => (window as unknown as W).microseg.selected)).toBe(peer);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('says which request failed when the page could not start, and starts on Try again', async () => {
    const s = await listen(createApp(source()));
    servers.push(s.server);
    for (const [path, what] of [
      ['/api/v1/info', "Could not load the server's settings"],
      ['/api/v1/graph', 'Could not load the graph'],
    ] as const) {
      const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      // A proxy answering for a server that is not up yet, once.
      let refused = 0;
      await page.route(
        (u) => u.pathname === path,
        (r) =>
          refused++ === 0
            ? r.fulfill({ status: 502, contentType: 'text/html', body: '<html>Bad Gateway</html>' })
            : r.continue(),
      );
      await page.goto(s.url);
      await page.waitForFunction(() => document.body.dataset.error);
      // Was: "Error: no error message (HTTP 502)" on the status line, under an empty graph, whichever
      // request it was; after a failed /info, a workload's details stayed "Loading…" (a TypeError).
      expect(await page.textContent('#status')).toBe(`${what}: no error message (HTTP 502)`);
      expect(await page.textContent('#panel-error')).toBe(`${what}: no error message (HTTP 502)`);
      await page.click('#start-retry');
      await page.waitForFunction(() => document.body.dataset.ready === '1');
      expect(await page.evaluate(() => document.body.dataset.error ?? null)).toBeNull();
      expect(await page.textContent('#status')).toMatch(/^63 nodes · \d+ edges · \d+ flows/);
      await page.fill('#search', 'svc-55');
      await page.waitForSelector(`#search-results li[data-id="${SVC55}"]`);
      await page.press('#search', 'Enter');
      await page.waitForFunction(() => document.querySelector('#details-title')?.textContent === 'svc-55');
      expect(errors).toEqual([]);
      await page.close();
    }
  });
});
