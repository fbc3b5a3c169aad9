import { describe, expect, it } from 'vitest';
import { Histogram, formatPrometheus, formatValue } from '../../src/telemetry/prom.ts';

describe('formatPrometheus', () => {
  it('writes counters, gauges and histograms in the text format', () => {
    const h = new Histogram([0.1, 1]);
    for (const v of [0.05, 0.5, 0.5, 3]) h.observe(v);
    const text = formatPrometheus([
      {
        name: 'microseg_flows_received_total',
        help: 'Flows accepted, per source.',
        type: 'counter',
        samples: [
          { labels: { source: 'hubble' }, value: 12 },
          { labels: { source: 'push' }, value: 3 },
        ],
      },
      { name: 'microseg_queue_depth', help: 'Flows waiting.', type: 'gauge', samples: [{ value: 0 }] },
      {
        name: 'microseg_batch_seconds',
        help: 'Batch time.',
        type: 'histogram',
        samples: [h.sample({ stage: 'graph' })],
      },
    ]);
    expect(text).toBe(
      [
        '# HELP microseg_flows_received_total Flows accepted, per source.',
        '# TYPE microseg_flows_received_total counter',
        'microseg_flows_received_total{source="hubble"} 12',
        'microseg_flows_received_total{source="push"} 3',
        '# HELP microseg_queue_depth Flows waiting.',
        '# TYPE microseg_queue_depth gauge',
        'microseg_queue_depth 0',
        '# HELP microseg_batch_seconds Batch time.',
        '# TYPE microseg_batch_seconds histogram',
        'microseg_batch_seconds_bucket{stage="graph",le="0.1"} 1',
        'microseg_batch_seconds_bucket{stage="graph",le="1"} 3',
        'microseg_batch_seconds_bucket{stage="graph",le="+Inf"} 4',
        'microseg_batch_seconds_sum{stage="graph"} 4.05',
        'microseg_batch_seconds_count{stage="graph"} 4',
        '',
      ].join('\n'),
    );
  });

  it('escapes label values and help text', () => {
    const text = formatPrometheus([
      {
        name: 'm',
        help: 'line1\nback\\slash',
        type: 'gauge',
        samples: [{ labels: { msg: 'a "q"\nb\\c' }, value: 1 }],
      },
    ]);
    expect(text).toBe('# HELP m line1\\nback\\\\slash\n# TYPE m gauge\nm{msg="a \\"q\\"\\nb\\\\c"} 1\n');
  });

  it('writes special values', () => {
    expect([NaN, Infinity, -Infinity, 1.5e-7].map(formatValue)).toEqual(['NaN', '+Inf', '-Inf', '1.5e-7']);
  });

  it('rejects bad names, duplicate families and unordered buckets', () => {
    expect(() => formatPrometheus([{ name: '1bad', help: '', type: 'gauge', samples: [] }])).toThrow(
      "invalid Prometheus metric name '1bad'",
    );
    expect(() =>
      formatPrometheus([
        { name: 'm', help: '', type: 'gauge', samples: [{ labels: { 'a-b': 'x' }, value: 1 }] },
      ]),
    ).toThrow("invalid Prometheus label name 'a-b'");
    const fam = { name: 'm', help: '', type: 'gauge' as const, samples: [] };
    expect(() => formatPrometheus([fam, fam])).toThrow("metric family 'm' appears twice");
    expect(() => new Histogram([1, 1])).toThrow('histogram bucket bounds must ascend');
    expect(() =>
      formatPrometheus([
        {
          name: 'h',
          help: '',
          type: 'histogram',
          samples: [
            {
              buckets: [
                [2, 1],
                [1, 1],
              ],
              sum: 0,
              count: 1,
            },
          ],
        },
      ]),
    ).toThrow("histogram 'h' bucket bounds must ascend");
  });

  it('writes nothing for no families', () => {
    expect(formatPrometheus([])).toBe('');
  });
});
