/**
 * The EventRecorder: a repeat of an Event bumps the Event recorded before, while the API server still
 * has it; one it has deleted since (Events are kept an hour by default) is recorded anew, not lost.
 */
import { describe, expect, it } from 'vitest';
import { EventRecorder } from '../../src/controller/events.ts';
import type { KubeClient } from '../../src/controller/kube.ts';
import { KubeApiError } from '../../src/controller/kube.ts';
import type { KObject } from '../../src/model/k8s.ts';

/** An API server of Events: `expire()` deletes every Event it holds, as its event TTL does. */
function eventServer() {
  const events = new Map<string, { count: number }>();
  const client = {
    create: (path: string, body: { metadata: { name: string }; count: number }) => {
      events.set(`${path}/${body.metadata.name}`, { count: body.count });
      return Promise.resolve(body);
    },
    mergePatch: (path: string, patch: { count: number }) => {
      const e = events.get(path);
      if (!e) return Promise.reject(new KubeApiError('PATCH', path, 404, 'NotFound', 'events not found'));
      e.count = patch.count;
      return Promise.resolve(e);
    },
  };
  return { client: client as unknown as KubeClient, events, expire: () => events.clear() };
}

const seg = {
  apiVersion: 'microseg.dev/v1alpha1',
  kind: 'Segmentation',
  metadata: { name: 'shop', uid: 'uid-shop' },
} as KObject;

describe('EventRecorder', () => {
  it('counts repeats on the Event in place, and records a repeat anew once that Event is gone', async () => {
    const { client, events, expire } = eventServer();
    const recorder = new EventRecorder(client, { component: 'microseg', instance: 'test' });
    recorder.record(seg, 'Warning', 'WouldBlockFlows', '1 flow(s) would be blocked');
    recorder.record(seg, 'Warning', 'WouldBlockFlows', '1 flow(s) would be blocked');
    await recorder.flush();
    expect([...events.values()]).toEqual([{ count: 2 }]);
    // An hour on, the API server has deleted it: the next repeat is a new Event, not an error.
    expire();
    recorder.record(seg, 'Warning', 'WouldBlockFlows', '1 flow(s) would be blocked');
    recorder.record(seg, 'Warning', 'WouldBlockFlows', '1 flow(s) would be blocked');
    await recorder.flush();
    expect([...events.values()]).toEqual([{ count: 2 }]);
    expect([recorder.recorded, recorder.errors]).toEqual([4, 0]);
  });
});
