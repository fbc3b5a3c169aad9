/**
 * Isolation inside `microseg controller`: the Falco and Alertmanager webhooks and the web page's Isolate
 * and Release buttons on every replica (a request is persisted as an Isolation whichever replica
 * receives it), the reconciler only on the leader.
 */
import { readFileSync } from 'node:fs';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Router } from 'express';
import type { Isolation } from './api.ts';
import type { IsolationController } from './controller.ts';
import { startIsolationController } from './controller.ts';
import type { Kube } from './kube.ts';
import { IsolationMetrics } from './metrics.ts';
import type { IsolationActions } from './ui.ts';
import { isolationActions } from './ui.ts';
import { isolationWebhooks, KnownIsolations, Persister } from './webhooks.ts';

export interface IsolationWiring {
  /** Mounted on the controller's HTTP server: POST /webhooks/falco and /webhooks/alertmanager. */
  router?: Router;
  /** Started when this replica starts leading, stopped when it stops. */
  leaderTask: { start(): Promise<void>; stop(): Promise<void> };
  metrics: IsolationMetrics;
  /** What the web page's Isolate and Release buttons do. */
  actions: IsolationActions;
}

export interface IsolationWiringOptions {
  kc: KubeConfig;
  kube: Kube;
  /** File holding the webhooks' bearer token (a mounted Secret: re-read on change, so rotation works). */
  webhookTokenFile?: string;
  log: (line: string) => void;
}

/** Reads a token file, caching it for a second so a busy webhook does not read it per request. */
function tokenReader(path: string): () => readonly string[] {
  let cached: { at: number; tokens: string[] } | undefined;
  return () => {
    const now = Date.now();
    if (!cached || now - cached.at > 1000) {
      let tokens: string[];
      try {
        tokens = readFileSync(path, 'utf8')
          .split('\n')
          .map((t) => t.trim())
          .filter((t) => t !== '');
      } catch {
        tokens = [];
      }
      cached = { at: now, tokens };
    }
    return cached.tokens;
  };
}

export function wireIsolation(o: IsolationWiringOptions): IsolationWiring {
  const known = new KnownIsolations();
  const metrics = new IsolationMetrics();
  let running: IsolationController | undefined;
  // On the leader the reconcile starts at once; elsewhere the leader's watch picks it up.
  const onPersisted = (namespace: string, name: string, created?: Isolation) =>
    running?.enqueue(namespace, name, created);
  const router = o.webhookTokenFile
    ? isolationWebhooks({
        kube: o.kube,
        auth: { tokens: tokenReader(o.webhookTokenFile) },
        known,
        metrics,
        onPersisted,
      })
    : undefined;
  return {
    ...(router ? { router } : {}),
    metrics,
    actions: isolationActions({ kube: o.kube, persister: new Persister(o.kube, known, onPersisted) }),
    leaderTask: {
      start: async () => {
        if (running) return;
        running = await startIsolationController({ kc: o.kc, kube: o.kube, known, metrics, log: o.log });
      },
      stop: async () => {
        const r = running;
        running = undefined;
        await r?.stop();
      },
    },
  };
}
