import request from 'supertest';
import { describe, expect, it } from 'vitest';
import type { Segmentation } from '../../src/controller/api.ts';
import type { Isolation } from '../../src/isolate/api.ts';
import { createApp } from '../../src/server/app.ts';
import { auditFromSegmentation, isolationFromResource } from '../../src/server/resources.ts';
import type { GraphView, IsolationView, ViewSource } from '../../src/server/types.ts';
import { syntheticGraph } from './helpers.ts';

const seg: Segmentation = {
  apiVersion: 'microseg.dev/v1alpha1',
  kind: 'Segmentation',
  metadata: { name: 'shop' },
  spec: { namespaceSelector: { matchLabels: { team: 'shop' } }, mode: 'Audit' },
  status: {
    mode: 'Audit',
    phase: 'Auditing',
    namespaces: ['shop'],
    conditions: [
      {
        type: 'AuditClean',
        status: 'False',
        reason: 'FlowsWouldBeBlocked',
        message: '5 flows would be blocked in the last 1h',
        lastTransitionTime: '2026-11-01T10:00:00Z',
      },
    ],
    unobserved: 2,
    unobservedWorkloads: ['shop/CronJob/backup', 'shop/Deployment/reports'],
    audit: {
      since: '2026-11-01T09:00:00Z',
      samples: [
        {
          time: '2026-11-01T09:10:00Z',
          source: 'shop/Deployment/a',
          destination: 'shop/Deployment/b',
          protocol: 'TCP',
          port: 80,
          count: 2,
        },
        {
          time: '2026-11-01T09:05:00Z',
          source: 'shop/Deployment/a',
          destination: 'shop/Deployment/b',
          protocol: 'TCP',
          port: 80,
          count: 1,
        },
        {
          time: '2026-11-01T09:20:00Z',
          source: 'shop/Deployment/c',
          destination: 'world:1.2.3.4',
          protocol: 'TCP',
          port: 443,
          count: 2,
        },
      ],
    },
  },
};

describe('controller resources as page views', () => {
  it('turns a Segmentation into an audit view, merging samples per connection', () => {
    const diff = { added: ['shop/microseg-a'], changed: [], removed: [], unchanged: 2 };
    expect(auditFromSegmentation(seg, diff)).toEqual({
      name: 'shop',
      mode: 'Audit',
      phase: 'Auditing',
      namespaces: ['shop'],
      conditions: [
        {
          type: 'AuditClean',
          status: 'False',
          reason: 'FlowsWouldBeBlocked',
          message: '5 flows would be blocked in the last 1h',
          lastTransitionTime: '2026-11-01T10:00:00Z',
        },
      ],
      since: '2026-11-01T09:00:00Z',
      wouldBlock: [
        {
          edge: 'shop/Deployment/a->shop/Deployment/b:80/TCP',
          source: 'shop/Deployment/a',
          target: 'shop/Deployment/b',
          protocol: 'TCP',
          port: 80,
          count: 3,
          firstSeen: '2026-11-01T09:05:00Z',
          lastSeen: '2026-11-01T09:10:00Z',
        },
        {
          edge: 'shop/Deployment/c->world:1.2.3.4:443/TCP',
          source: 'shop/Deployment/c',
          target: 'world:1.2.3.4',
          protocol: 'TCP',
          port: 443,
          count: 2,
          firstSeen: '2026-11-01T09:20:00Z',
          lastSeen: '2026-11-01T09:20:00Z',
        },
      ],
      unobserved: 2,
      unobservedWorkloads: ['shop/CronJob/backup', 'shop/Deployment/reports'],
      enforce: diff,
    });
  });

  it('falls back to the spec mode and empty lists for a Segmentation without status', () => {
    const fresh: Segmentation = { ...seg, status: undefined, spec: { mode: 'Learn' } };
    expect(auditFromSegmentation(fresh)).toEqual({
      name: 'shop',
      mode: 'Learn',
      namespaces: [],
      conditions: [],
      wouldBlock: [],
      unobserved: 0,
      unobservedWorkloads: [],
      enforce: { added: [], changed: [], removed: [], unchanged: 0 },
    });
  });

  it('turns an Isolation of a workload into an isolation view with its leaks', () => {
    const iso: Isolation = {
      apiVersion: 'microseg.dev/v1alpha1',
      kind: 'Isolation',
      metadata: { name: 'cart-incident', namespace: 'shop' },
      spec: {
        target: { workload: { kind: 'Deployment', name: 'cart' } },
        reason: 'Falco: shell in container',
      },
      status: {
        phase: 'Leaking',
        method: 'NetworkPolicy',
        isolatedPods: ['cart-2', 'cart-1'],
        isolatedAt: '2026-11-01T11:00:00Z',
        leaks: [
          {
            policy: 'shop/allow-all',
            rule: 'ingress[0]',
            direction: 'ingress',
            pod: 'shop/cart-1',
            example: 'from shop/frontend-x 8080/TCP',
          },
        ],
      },
    };
    expect(isolationFromResource(iso)).toEqual({
      name: 'cart-incident',
      namespace: 'shop',
      target: 'shop/Deployment/cart',
      workloads: ['shop/Deployment/cart'],
      pods: ['shop/cart-1', 'shop/cart-2'],
      method: 'NetworkPolicy',
      state: 'Leaking',
      since: '2026-11-01T11:00:00Z',
      reason: 'Falco: shell in container',
      leaks: [
        {
          source: 'from shop/frontend-x 8080/TCP',
          target: 'shop/cart-1',
          message: 'shop/cart-1: shop/allow-all ingress[0] admits ingress from shop/frontend-x 8080/TCP',
        },
      ],
    });
  });

  it('carries the status message, so the page says why an Isolation isolates nothing', () => {
    const message =
      'no pod to isolate: pod node-agent-x uses the host network: no NetworkPolicy or admin-tier policy applies to it, so it cannot be isolated';
    expect(
      isolationFromResource({
        apiVersion: 'v',
        kind: 'Isolation',
        metadata: { name: 'p', namespace: 'shop' },
        spec: { target: { pods: ['node-agent-x'] } },
        status: { phase: 'Pending', message, podCount: 0 },
      }).message,
    ).toBe(message);
  });

  it('places pods of a pod or selector target on their workloads', () => {
    const podWorkload = new Map([['shop/cart-1', 'shop/Deployment/cart']]);
    const byPods = isolationFromResource(
      {
        apiVersion: 'v',
        kind: 'Isolation',
        metadata: { name: 'p', namespace: 'shop' },
        spec: { target: { pods: ['cart-1'] } },
      },
      podWorkload,
    );
    expect(byPods).toMatchObject({
      target: 'shop/cart-1',
      workloads: ['shop/Deployment/cart'],
      state: 'Pending',
      method: 'Auto',
    });
    const bySelector = isolationFromResource({
      apiVersion: 'v',
      kind: 'Isolation',
      metadata: { name: 's', namespace: 'shop' },
      spec: {
        target: {
          podSelector: {
            matchLabels: { app: 'cart' },
            matchExpressions: [{ key: 'tier', operator: 'In', values: ['web'] }],
          },
        },
      },
    });
    expect(bySelector.target).toBe('shop pods matching app=cart, tier In (web)');
    expect(bySelector.workloads).toEqual([]);
  });

  it('marks only active isolations on the graph and releases by namespace/name', async () => {
    const big = syntheticGraph(20, 2);
    const w0 = big.graph.nodes[0]!.id;
    const w1 = big.graph.nodes[1]!.id;
    const views: IsolationView[] = [
      {
        name: 'a',
        namespace: 'ns-0',
        target: w0,
        workloads: [w0],
        pods: [],
        method: 'NetworkPolicy',
        state: 'Isolated',
        leaks: [],
      },
      {
        name: 'b',
        namespace: 'ns-0',
        target: w1,
        workloads: [w1],
        pods: [],
        method: 'NetworkPolicy',
        state: 'Released',
        leaks: [],
      },
    ];
    const released: string[] = [];
    const src: ViewSource = {
      info: () => ({ mode: 'controller', title: 'cluster' }),
      graph: () => big.graph,
      segments: () => big.segments,
      proposal: () => big.proposal,
      isolations: () => views,
      release: (name) => {
        released.push(name);
        return Promise.resolve(name === 'ns-0/a');
      },
    };
    const app = createApp(src, { auth: { token: 't' } });
    const view = (await request(app).get('/api/v1/graph').set('Authorization', 'Bearer t')).body as GraphView;
    expect(view.nodes.filter((n) => n.isolated).map((n) => n.id)).toEqual([w0]);
    await request(app).delete('/api/v1/isolations/ns-0%2Fa').set('Authorization', 'Bearer t').expect(204);
    expect(released).toEqual(['ns-0/a']);
  });
});
