/** Prometheus metrics of the isolation controller and its webhooks. */
import type { MetricFamily } from '../telemetry/prom.ts';
import { Histogram } from '../telemetry/prom.ts';

export const TIME_TO_ISOLATE_BUCKETS = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class IsolationMetrics {
  readonly timeToIsolate = new Histogram(TIME_TO_ISOLATE_BUCKETS);
  /** `namespace/name` of Isolations currently Isolated or Leaking. */
  private readonly active = new Set<string>();
  private readonly leaking = new Set<string>();
  private readonly alerts = new Map<string, number>();
  private readonly actions = new Map<string, number>();
  private readonly truncated = new Map<string, number>();
  private tokensUnreadable = false;

  /** Whether the webhooks' token file cannot be read now (their calls are answered 503). */
  setTokensUnreadable(on: boolean): void {
    this.tokensUnreadable = on;
  }

  setActive(key: string, phase: string | undefined): void {
    if (phase === 'Isolated' || phase === 'Leaking') this.active.add(key);
    else this.active.delete(key);
    if (phase === 'Leaking') this.leaking.add(key);
    else this.leaking.delete(key);
  }

  /**
   * Forgets which Isolations are in effect: when this replica stops reconciling them (leadership ends),
   * what it knew goes stale (one deleted meanwhile is never reconciled by it again); the next term's
   * reconciles of the Isolations it lists set it afresh.
   */
  forgetActive(): void {
    this.active.clear();
    this.leaking.clear();
  }

  activeCount(): number {
    return this.active.size;
  }

  alert(source: string, outcome: string): void {
    const k = `${source}\u0000${outcome}`;
    this.alerts.set(k, (this.alerts.get(k) ?? 0) + 1);
  }

  /** Alerts Alertmanager left out of a payload to `receiver` (its `truncatedAlerts`). */
  truncatedAlerts(receiver: string, count: number): void {
    this.truncated.set(receiver, (this.truncated.get(receiver) ?? 0) + count);
  }

  action(name: string): void {
    this.actions.set(name, (this.actions.get(name) ?? 0) + 1);
  }

  families(): MetricFamily[] {
    const sorted = <T>(m: Map<string, T>) => [...m.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1));
    return [
      {
        name: 'microseg_isolations_active',
        help: 'Isolations currently in effect (phase Isolated or Leaking).',
        type: 'gauge',
        samples: [{ value: this.active.size }],
      },
      {
        name: 'microseg_isolations_leaking',
        help: 'Isolations in effect whose pods some foreign policy still admits traffic to or from.',
        type: 'gauge',
        samples: [{ value: this.leaking.size }],
      },
      {
        name: 'microseg_isolation_time_to_isolate_seconds',
        help: 'From alert received (or Isolation created) to the deny in effect: policy acknowledged by the apiserver and the first pod labelled.',
        type: 'histogram',
        samples: [this.timeToIsolate.sample()],
      },
      {
        name: 'microseg_isolation_alerts_total',
        help: 'Alerts received by the isolation webhooks, by source and outcome.',
        type: 'counter',
        samples: sorted(this.alerts).map(([k, value]) => {
          const [source, outcome] = k.split('\u0000') as [string, string];
          return { labels: { source, outcome }, value };
        }),
      },
      {
        name: 'microseg_isolation_alerts_truncated_total',
        help: "Alerts Alertmanager left out of its webhook payloads (truncatedAlerts, the receiver's max_alerts), by receiver: never delivered, so never acted on.",
        type: 'counter',
        samples: sorted(this.truncated).map(([receiver, value]) => ({ labels: { receiver }, value })),
      },
      {
        name: 'microseg_isolation_webhook_tokens_unreadable',
        help: "1 while the webhooks' bearer token file cannot be read or holds no token (their calls are answered 503), else 0.",
        type: 'gauge',
        samples: [{ value: this.tokensUnreadable ? 1 : 0 }],
      },
      {
        name: 'microseg_isolation_actions_total',
        help: 'Isolation controller actions (isolated, released, expired, leak_detected, failed).',
        type: 'counter',
        samples: sorted(this.actions).map(([action, value]) => ({ labels: { action }, value })),
      },
    ];
  }
}
