import { describe, expect, it } from 'vitest';
import {
  durationOverflows,
  formatDuration,
  MAX_DURATION,
  parseDuration,
  parseSegmentationSpec,
} from '../../src/controller/api.ts';

describe('parseDuration / formatDuration', () => {
  it('parses Go-style durations', () => {
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('1.5h')).toBe(5_400_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('0s')).toBe(0);
  });
  it('rejects anything else', () => {
    for (const bad of ['', '5', '5 minutes', '1d', '-1s', 'h', '1h 30m'])
      expect(parseDuration(bad), bad).toBeUndefined();
  });
  it('finds too long what CEL duration() refuses: more than 2^63-1 nanoseconds, as Go parses it', () => {
    for (const ok of [
      '0s',
      '168h',
      '2562047h',
      MAX_DURATION,
      '2562047h47m16.8547758079999s',
      '153722867m',
      '9223372036854ms',
      '2562046h60m',
    ])
      expect(durationOverflows(ok), ok).toBe(false);
    for (const long of [
      '2562048h',
      '3000000h',
      '2562047h47m16.854775808s',
      '2562047.9h',
      '153722868m',
      '9223372036855ms',
      '2562047h2562047h',
      '99999999999999999999s',
    ])
      expect(durationOverflows(long), long).toBe(true);
  });
  it('formats in the largest whole unit', () => {
    expect(formatDuration(0)).toBe('0s');
    expect(formatDuration(3_600_000)).toBe('1h');
    expect(formatDuration(120_000)).toBe('2m');
    expect(formatDuration(3000)).toBe('3s');
    expect(formatDuration(1500)).toBe('1500ms');
  });
});

describe('parseSegmentationSpec', () => {
  it('fills every default', () => {
    const r = parseSegmentationSpec('shop', { namespaceSelector: { matchLabels: { team: 'shop' } } });
    expect(r).toEqual({
      ok: true,
      spec: {
        namespaceSelector: { matchLabels: { team: 'shop' } },
        mode: 'Learn',
        learning: { ruleExpiryMs: 168 * 3_600_000, stableAfterMs: 3_600_000, minFlows: 1 },
        audit: { windowMs: 3_600_000, samples: 10 },
        enforce: { force: false },
        promotion: { automatic: false, afterMs: 24 * 3_600_000 },
        policy: { defaultDeny: true, includeDropped: false, worldIngress: 'any' },
      },
    });
  });

  it('reports every problem with the field and the value', () => {
    const r = parseSegmentationSpec('x'.repeat(41), {
      mode: 'Block',
      learning: { ruleExpiry: '10 days', minFlows: 0 },
      audit: { window: 5, samples: 51 },
      enforce: { force: 'yes' },
      policy: { worldIngress: 'everyone' },
      promotion: [],
    });
    expect(r).toEqual({
      ok: false,
      problems: [
        'metadata.name must be at most 40 characters (has 41)',
        'spec.namespaceSelector is required',
        'spec.mode "Block" is not one of Learn, Audit, Enforce',
        'spec.promotion must be an object',
        'spec.policy.worldIngress "everyone" is not one of any, observed',
        'spec.learning.ruleExpiry "10 days" is not a duration such as "90s", "15m" or "1h30m"',
        'spec.learning.minFlows must be an integer from 1 to 1000000 (got 0)',
        'spec.audit.window must be a duration string such as "1h"',
        'spec.audit.samples must be an integer from 0 to 50 (got 51)',
        'spec.enforce.force must be true or false (got "yes")',
      ],
    });
  });

  it('checks selectors, minimum durations and the window/expiry relation', () => {
    expect(
      parseSegmentationSpec('a', { namespaceSelector: { matchExpressions: [{ key: 'k', operator: 'In' }] } }),
    ).toEqual({
      ok: false,
      problems: ['spec.namespaceSelector: matchExpressions[0].values must be a non-empty list for In'],
    });
    expect(
      parseSegmentationSpec('a', {
        namespaceSelector: {},
        learning: { ruleExpiry: '30s' },
        audit: { window: '10s' },
      }),
    ).toEqual({
      ok: false,
      problems: ['spec.learning.ruleExpiry "30s" is shorter than 1m'],
    });
    expect(
      parseSegmentationSpec('a', {
        namespaceSelector: {},
        learning: { ruleExpiry: '1h' },
        audit: { window: '2h' },
      }),
    ).toEqual({
      ok: false,
      problems: ['spec.audit.window (2h) must not be longer than spec.learning.ruleExpiry (1h)'],
    });
    expect(parseSegmentationSpec('a', null)).toEqual({ ok: false, problems: ['spec is missing'] });
  });

  it('refuses durations the API server would: longer than CEL takes, or more than 32 characters', () => {
    expect(
      parseSegmentationSpec('a', {
        namespaceSelector: {},
        learning: { ruleExpiry: '3000000h', stableAfter: '1h'.repeat(17) },
        promotion: { after: '2562047h47m16.854775808s' },
      }),
    ).toEqual({
      ok: false,
      problems: [
        'spec.learning.ruleExpiry "3000000h" is longer than 2562047h47m16.854775807s, the longest duration Kubernetes takes',
        'spec.learning.stableAfter must be at most 32 characters (has 34)',
        'spec.promotion.after "2562047h47m16.854775808s" is longer than 2562047h47m16.854775807s, the longest duration Kubernetes takes',
      ],
    });
    expect(
      parseSegmentationSpec('a', {
        namespaceSelector: {},
        learning: { ruleExpiry: MAX_DURATION, stableAfter: '1h'.repeat(16) },
        promotion: { after: '2562047h' },
      }).ok,
    ).toBe(true);
  });

  it('compares durations with their minimums and each other to the nanosecond, as the CRD rules do', () => {
    // Milliseconds rounded made these equal to the minimum (or the expiry); CEL compares exactly.
    const refused = (spec: Record<string, unknown>) =>
      parseSegmentationSpec('a', { namespaceSelector: {}, ...spec });
    expect(refused({ learning: { ruleExpiry: '59.9999s' }, audit: { window: '1s' } })).toEqual({
      ok: false,
      problems: ['spec.learning.ruleExpiry "59.9999s" is shorter than 1m'],
    });
    // Go reads 59.999999999s from it (the fraction through a float64, cut to the nanosecond).
    expect(refused({ learning: { ruleExpiry: '59.9999999999s' }, audit: { window: '1s' } })).toEqual({
      ok: false,
      problems: ['spec.learning.ruleExpiry "59.9999999999s" is shorter than 1m'],
    });
    expect(refused({ audit: { window: '999.9999ms' }, promotion: { after: '0.9999999999s' } })).toEqual({
      ok: false,
      problems: [
        'spec.audit.window "999.9999ms" is shorter than 1s',
        'spec.promotion.after "0.9999999999s" is shorter than 1s',
      ],
    });
    expect(refused({ learning: { ruleExpiry: '1m' }, audit: { window: '1m0.0004ms' } })).toEqual({
      ok: false,
      problems: ['spec.audit.window (1m0.0004ms) must not be longer than spec.learning.ruleExpiry (1m)'],
    });
    // What Go reads as the minimum exactly is taken: 18 nines of a second's fraction are a whole second
    // to a float64, so Go (and CEL) read 1m.
    for (const spec of [
      { learning: { ruleExpiry: '1m' }, audit: { window: '1s' }, promotion: { after: '1s' } },
      { learning: { ruleExpiry: '59.999999999999999999s', stableAfter: '0s' }, audit: { window: '1s' } },
      { learning: { ruleExpiry: '1m0.0004ms' }, audit: { window: '1m0.0004ms' } },
      { audit: { window: '1000ms' }, promotion: { after: '0.5s500ms' } },
    ])
      expect(refused(spec), JSON.stringify(spec)).toMatchObject({ ok: true });
  });

  it('checks the limits the CRD puts on the selector: 32 labels, 32 requirements, 64 values each', () => {
    const exprs = (n: number) => Array.from({ length: n }, (_, i) => ({ key: `k${i}`, operator: 'Exists' }));
    const values = (n: number) => Array.from({ length: n }, (_, i) => `v${i}`);
    const labels = (n: number) => Object.fromEntries(values(n).map((v) => [v, v]));
    expect(
      parseSegmentationSpec('a', {
        namespaceSelector: {
          matchLabels: labels(33),
          matchExpressions: [...exprs(32), { key: 'team', operator: 'NotIn', values: values(65) }],
        },
      }),
    ).toEqual({
      ok: false,
      problems: [
        'spec.namespaceSelector.matchLabels must have at most 32 labels (has 33)',
        'spec.namespaceSelector.matchExpressions must have at most 32 requirements (has 33)',
        'spec.namespaceSelector.matchExpressions[32].values must have at most 64 values (has 65)',
      ],
    });
    expect(
      parseSegmentationSpec('a', {
        namespaceSelector: {
          matchLabels: labels(32),
          matchExpressions: [...exprs(31), { key: 'team', operator: 'In', values: values(64) }],
        },
      }).ok,
    ).toBe(true);
  });

  it('rejects label keys and values Kubernetes would not take, naming each and why', () => {
    expect(
      parseSegmentationSpec('a', {
        namespaceSelector: {
          matchLabels: { 'bad key!': 'x', team: 'a b' },
          matchExpressions: [
            { key: 'Example.com/tier', operator: 'Exists' },
            { key: 'tier', operator: 'In', values: ['web', '-db'] },
          ],
        },
      }),
    ).toEqual({
      ok: false,
      problems: [
        `spec.namespaceSelector.matchLabels: key "bad key!": the name must be 63 characters at most, alphanumeric, '-', '_' or '.', starting and ending alphanumeric`,
        `spec.namespaceSelector.matchLabels: value "a b": must be empty or 63 characters at most, alphanumeric, '-', '_' or '.', starting and ending alphanumeric`,
        'spec.namespaceSelector.matchExpressions[0]: key "Example.com/tier": the prefix must be a DNS subdomain (lower case, e.g. example.com)',
        `spec.namespaceSelector.matchExpressions[1].values: value "-db": must be empty or 63 characters at most, alphanumeric, '-', '_' or '.', starting and ending alphanumeric`,
      ],
    });
    expect(
      parseSegmentationSpec('a', {
        namespaceSelector: {
          matchLabels: { 'example.com/team': 'shop', 'kubernetes.io/metadata.name': '' },
          matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['web.1', 'db_2'] }],
        },
      }).ok,
    ).toBe(true);
  });
});
