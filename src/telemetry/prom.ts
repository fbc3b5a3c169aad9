/**
 * A small Prometheus text exposition format (version 0.0.4) writer for counters, gauges and
 * histograms, enough for microseg's /metrics without a metrics library. Output is deterministic:
 * families in the order given, samples in the order given, label names in the order given.
 */

export type Labels = Readonly<Record<string, string>>;

export interface Sample {
  labels?: Labels;
  value: number;
}

export interface HistogramSample {
  labels?: Labels;
  /** Upper bounds (ascending, without +Inf) and the cumulative count of observations <= each bound. */
  buckets: readonly (readonly [le: number, cumulativeCount: number])[];
  sum: number;
  count: number;
}

export type MetricFamily =
  | { name: string; help: string; type: 'counter' | 'gauge'; samples: readonly Sample[] }
  | { name: string; help: string; type: 'histogram'; samples: readonly HistogramSample[] };

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function labelText(labels: Labels | undefined, extra?: [string, string]): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(labels ?? {})) {
    if (!LABEL_RE.test(k) || k.startsWith('__')) throw new Error(`invalid Prometheus label name '${k}'`);
    parts.push(`${k}="${escapeLabelValue(v)}"`);
  }
  if (extra) parts.push(`${extra[0]}="${escapeLabelValue(extra[1])}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

/** Renders metric families as Prometheus text; throws on invalid metric or label names. */
export function formatPrometheus(families: readonly MetricFamily[]): string {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const f of families) {
    if (!NAME_RE.test(f.name)) throw new Error(`invalid Prometheus metric name '${f.name}'`);
    if (seen.has(f.name)) throw new Error(`metric family '${f.name}' appears twice`);
    seen.add(f.name);
    out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    if (f.type === 'histogram') {
      for (const s of f.samples) {
        if (s.labels && 'le' in s.labels)
          throw new Error(`histogram '${f.name}' must not carry an 'le' label`);
        let prev = -Infinity;
        for (const [le, c] of s.buckets) {
          if (!(le > prev)) throw new Error(`histogram '${f.name}' bucket bounds must ascend`);
          prev = le;
          out.push(`${f.name}_bucket${labelText(s.labels, ['le', formatValue(le)])} ${formatValue(c)}`);
        }
        out.push(`${f.name}_bucket${labelText(s.labels, ['le', '+Inf'])} ${formatValue(s.count)}`);
        out.push(`${f.name}_sum${labelText(s.labels)} ${formatValue(s.sum)}`);
        out.push(`${f.name}_count${labelText(s.labels)} ${formatValue(s.count)}`);
      }
    } else {
      for (const s of f.samples) out.push(`${f.name}${labelText(s.labels)} ${formatValue(s.value)}`);
    }
  }
  return out.length ? out.join('\n') + '\n' : '';
}

/** A histogram accumulator with fixed bucket bounds. */
export class Histogram {
  readonly bounds: readonly number[];
  private readonly counts: number[];
  private total = 0;
  private n = 0;

  constructor(bounds: readonly number[]) {
    for (let i = 1; i < bounds.length; i++)
      if (!(bounds[i]! > bounds[i - 1]!)) throw new Error('histogram bucket bounds must ascend');
    this.bounds = [...bounds];
    this.counts = bounds.map(() => 0);
  }

  observe(v: number): void {
    this.total += v;
    this.n++;
    for (let i = 0; i < this.bounds.length; i++) if (v <= this.bounds[i]!) this.counts[i]!++;
  }

  sample(labels?: Labels): HistogramSample {
    return {
      ...(labels ? { labels } : {}),
      buckets: this.bounds.map((b, i) => [b, this.counts[i]!] as const),
      sum: this.total,
      count: this.n,
    };
  }
}
