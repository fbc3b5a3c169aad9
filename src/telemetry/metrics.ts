/**
 * Telemetry counters as Prometheus metric families (see docs/telemetry.md for the list). Pure: takes
 * the plain metric snapshots of the queue, the Hubble source and the push endpoint.
 */
import type { MetricFamily, Sample } from './prom.ts';
import type { QueueMetrics } from './queue.ts';
import type { HubbleMetrics } from './hubble.ts';
import type { PushMetrics } from './push.ts';

export interface TelemetryMetrics {
  queue: QueueMetrics;
  hubble?: HubbleMetrics;
  push?: PushMetrics;
}

const byKey = <T>(r: Record<string, T>) => Object.entries(r).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

function perLabel(r: Record<string, number>, label: string): Sample[] {
  return byKey(r).map(([k, v]) => ({ labels: { [label]: k }, value: v }));
}

export function telemetryMetricFamilies(m: TelemetryMetrics): MetricFamily[] {
  const q = m.queue;
  const dropped: Sample[] = [];
  for (const [source, reasons] of byKey(q.dropped))
    for (const [reason, n] of byKey(reasons as Record<string, number>))
      dropped.push({ labels: { source, reason }, value: n });
  const out: MetricFamily[] = [
    {
      name: 'microseg_telemetry_flows_received_total',
      help: 'Flows accepted into the ingest queue, per source.',
      type: 'counter',
      samples: perLabel(q.received, 'source'),
    },
    {
      name: 'microseg_telemetry_flows_delivered_total',
      help: 'Flows handed to the consumer, per source.',
      type: 'counter',
      samples: perLabel(q.delivered, 'source'),
    },
    {
      name: 'microseg_telemetry_flows_acknowledged_total',
      help: 'Flows the consumer finished processing, per source.',
      type: 'counter',
      samples: perLabel(q.acknowledged, 'source'),
    },
    {
      name: 'microseg_telemetry_flows_dropped_total',
      help: 'Flows lost before the consumer, per source and reason (queue_full, invalid, ignored, duplicate).',
      type: 'counter',
      samples: dropped,
    },
    {
      name: 'microseg_telemetry_queue_depth',
      help: 'Flows waiting in the ingest queue.',
      type: 'gauge',
      samples: [{ value: q.queued }],
    },
    {
      name: 'microseg_telemetry_queue_capacity',
      help: 'Capacity of the ingest queue in flows.',
      type: 'gauge',
      samples: [{ value: q.capacity }],
    },
  ];
  const h = m.hubble;
  if (h) {
    out.push(
      {
        name: 'microseg_hubble_flow_messages_total',
        help: 'Flow messages received from Hubble Relay, before de-duplication and normalisation.',
        type: 'counter',
        samples: [{ value: h.flowsReceived }],
      },
      {
        name: 'microseg_hubble_reconnects_total',
        help: 'GetFlows streams asked for after the first one (whether or not they opened).',
        type: 'counter',
        samples: [{ value: h.reconnects }],
      },
      {
        name: 'microseg_hubble_failed_attempts_total',
        help: 'GetFlows attempts that ended before any message arrived.',
        type: 'counter',
        samples: [{ value: h.failedAttempts }],
      },
      {
        name: 'microseg_hubble_lost_events_total',
        help: 'Events Hubble reported lost (lost_events), per loss source.',
        type: 'counter',
        samples: perLabel(h.lostEvents, 'source'),
      },
      {
        name: 'microseg_hubble_node_status_total',
        help: 'node_status messages from Hubble Relay, per state change.',
        type: 'counter',
        samples: perLabel(h.nodeStatus, 'state'),
      },
      {
        name: 'microseg_hubble_backpressure_pauses_total',
        help: 'Times the stream was paused because the ingest queue was at its high-water mark.',
        type: 'counter',
        samples: [{ value: h.pauses }],
      },
      {
        name: 'microseg_hubble_flows_ahead_of_clock_total',
        help: 'Flows stamped further ahead of the local clock than the allowed skew: learned, but not resumed from.',
        type: 'counter',
        samples: [{ value: h.aheadOfClock }],
      },
      {
        name: 'microseg_hubble_nodes_unavailable',
        help: 'Nodes whose last node_status from Hubble Relay was NODE_ERROR or NODE_UNAVAILABLE and of which no flow arrived since: their flows are missing from the stream.',
        type: 'gauge',
        samples: [{ value: h.unavailableNodes }],
      },
      {
        name: 'microseg_hubble_connected',
        help: '1 while a GetFlows stream is open.',
        type: 'gauge',
        samples: [{ value: h.connected ? 1 : 0 }],
      },
      {
        name: 'microseg_hubble_checkpoint_timestamp_seconds',
        help: 'Time of the newest acknowledged Hubble flow (0 before any).',
        type: 'gauge',
        samples: [{ value: h.checkpointSeconds }],
      },
    );
  }
  const p = m.push;
  if (p) {
    out.push({
      name: 'microseg_push_responses_total',
      help: 'Responses of the flow push endpoint, per HTTP status code.',
      type: 'counter',
      samples: perLabel(p.responses, 'code'),
    });
  }
  return out;
}
