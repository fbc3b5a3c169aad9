/**
 * A CronJob's details say when it runs: its schedule and time zone, its last run and success, a run
 * going on or a suspension, and its next run, so that a user looking at a CronJob no flow was observed
 * for knows when its traffic can be seen. From the snapshot offline, from the informer caches in the
 * controller.
 */
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { runPipeline } from '../../src/pipeline.ts';
import { createApp } from '../../src/server/app.ts';
import { analysisSource } from '../../src/server/source.ts';
import type { NodeDetails } from '../../src/server/types.ts';
import { cronJobView } from '../../src/server/view.ts';
import { fixtureFlows, fixtureSnapshot } from '../core/fixture.ts';
import { backup, CART } from './helpers.ts';

const BACKUP = 'shop/CronJob/backup';

describe('cronJobView', () => {
  const now = Date.parse('2026-11-30T12:00:00Z'); // a Monday
  it('gives the schedule, the runs and the next one', () => {
    expect(
      cronJobView(
        {
          spec: { schedule: '0 3 * * 0', timeZone: 'Asia/Tokyo' },
          status: {
            lastScheduleTime: '2026-11-28T18:00:00Z',
            lastSuccessfulTime: '2026-11-28T18:04:10.250Z',
          },
        },
        now,
      ),
    ).toEqual({
      schedule: '0 3 * * 0',
      timeZone: 'Asia/Tokyo',
      lastRun: '2026-11-28T18:00:00Z',
      lastSuccess: '2026-11-28T18:04:10Z',
      // Sunday 03:00 in Tokyo is Saturday 18:00 UTC.
      nextRun: '2026-12-05T18:00:00Z',
    });
  });
  it('gives the zone a TZ= or CRON_TZ= prefix of the schedule names when spec.timeZone does not', () => {
    expect(cronJobView({ spec: { schedule: 'CRON_TZ=Asia/Tokyo 0 3 * * 0' } }, now)).toEqual({
      schedule: 'CRON_TZ=Asia/Tokyo 0 3 * * 0',
      timeZone: 'Asia/Tokyo',
      nextRun: '2026-12-05T18:00:00Z',
    });
    // spec.timeZone first, as the schedule is read (Kubernetes refuses both on one CronJob).
    expect(
      cronJobView({ spec: { schedule: 'TZ=Asia/Tokyo 0 3 * * 0', timeZone: 'Europe/Berlin' } }, now),
    ).toMatchObject({ timeZone: 'Europe/Berlin', nextRun: '2026-12-06T02:00:00Z' });
  });
  it('says a run is going, and gives no next run when suspended or when the schedule is not read', () => {
    expect(cronJobView({ spec: { schedule: '0 3 * * 0' }, status: { active: [{}] } }, now)).toEqual({
      schedule: '0 3 * * 0',
      running: true,
      nextRun: '2026-12-06T03:00:00Z',
    });
    expect(cronJobView({ spec: { schedule: '0 3 * * 0', suspend: true } }, now)).toEqual({
      schedule: '0 3 * * 0',
      suspended: true,
    });
    expect(
      cronJobView({ spec: { schedule: 'whenever' }, status: { lastScheduleTime: 'soon' } }, now),
    ).toEqual({
      schedule: 'whenever',
    });
  });
});

describe('a CronJob through the API', () => {
  async function app(withCronJobs: boolean) {
    const snapshot = fixtureSnapshot(backup({ status: { lastScheduleTime: '2026-03-01T03:00:00Z' } }));
    const analysis = await runPipeline(snapshot, fixtureFlows());
    return createApp(analysisSource(analysis, withCronJobs ? { cronJobs: snapshot.cronJobs } : {}));
  }

  it('gives its schedule and next run in its details (here one no flow was observed for)', async () => {
    const res = await request(await app(true))
      .get(`/api/v1/nodes?id=${encodeURIComponent(BACKUP)}`)
      .expect(200);
    const d = res.body as NodeDetails;
    expect(d.unobserved).toBe(true);
    expect(d.cronJob).toMatchObject({ schedule: '0 3 * * 0', lastRun: '2026-03-01T03:00:00Z' });
    expect(d.cronJob).not.toHaveProperty('timeZone');
    // The next Sunday at 03:00 UTC, within a week from now.
    const next = Date.parse(d.cronJob?.nextRun ?? '');
    expect([
      new Date(next).getUTCDay(),
      new Date(next).getUTCHours(),
      new Date(next).getUTCMinutes(),
    ]).toEqual([0, 3, 0]);
    expect(next).toBeGreaterThan(Date.now());
    expect(next - Date.now()).toBeLessThanOrEqual(7 * 86_400_000);
  });

  it('gives none for another kind, nor when the source does not know the CronJobs', async () => {
    const cart = await request(await app(true))
      .get(`/api/v1/nodes?id=${encodeURIComponent(CART)}`)
      .expect(200);
    expect(cart.body).not.toHaveProperty('cronJob');
    const unknown = await request(await app(false))
      .get(`/api/v1/nodes?id=${encodeURIComponent(BACKUP)}`)
      .expect(200);
    expect(unknown.body).toMatchObject({ id: BACKUP, unobserved: true });
    expect(unknown.body).not.toHaveProperty('cronJob');
  });
});
