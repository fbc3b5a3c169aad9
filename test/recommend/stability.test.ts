/**
 * Small changes in the input give small diffs in what `recommend` writes: teams commit the output to Git
 * and review a weekly re-run as a pull request, so a line that changes must be explained by the input.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recommend } from '../../src/cli/commands/recommend.ts';
import { readFlows } from '../../src/flows/reader.ts';
import { DEMO_START, generateDemo } from '../../src/generate/demo.ts';
import { writeLines } from '../../src/generate/write.ts';
import type { Pod } from '../../src/model/k8s.ts';
import { snapshotFromObjects } from '../../src/model/snapshot.ts';

let dir: string;
let runs = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'microseg-stability-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The files recommend writes for these objects and Hubble lines, by name. */
async function files(objects: object[], lines: string[]): Promise<Map<string, string>> {
  const path = join(dir, `flows-${runs++}.jsonl`);
  await writeLines(path, lines);
  const r = await recommend(snapshotFromObjects(objects, 'cluster.json'), readFlows(path));
  expect(r.proof.blocked).toEqual([]);
  return new Map([...r.files]);
}

/** The lines added and removed between two texts, as one block each (common head and tail cut off). */
function change(before: string, after: string): { removed: string[]; added: string[] } {
  const a = before.split('\n');
  const b = after.split('\n');
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a.at(-1 - tail) === b.at(-1 - tail)) tail++;
  return { removed: a.slice(head, a.length - tail), added: b.slice(head, b.length - tail) };
}

/** The names of the files that differ, or are in one of the two only. */
function changedFiles(a: Map<string, string>, b: Map<string, string>): string[] {
  return [...new Set([...a.keys(), ...b.keys()])].filter((f) => a.get(f) !== b.get(f)).sort();
}

/** A Hubble line of a TCP connection between two pods of the snapshot, at `time`. */
function hubbleLine(time: string, from: Pod, to: Pod, port: number, sourcePort: number): string {
  const end = (p: Pod) => ({
    namespace: p.metadata.namespace,
    pod_name: p.metadata.name,
    labels: Object.entries(p.metadata.labels ?? {}).map(([k, v]) => `k8s:${k}=${v}`),
  });
  const flow = {
    time,
    verdict: 'FORWARDED',
    IP: { source: from.status!.podIP, destination: to.status!.podIP, ipVersion: 'IPv4' },
    l4: { TCP: { source_port: sourcePort, destination_port: port, flags: { SYN: true } } },
    source: end(from),
    destination: end(to),
    Type: 'L3_L4',
    node_name: from.spec.nodeName,
    event_type: { type: 4, sub_type: 3 },
    traffic_direction: 'EGRESS',
    trace_observation_point: 'TO_STACK',
    is_reply: false,
  };
  return JSON.stringify({ flow, node_name: from.spec.nodeName, time });
}

describe('recommend re-run on slightly different input', () => {
  const demo = generateDemo();
  const running = (ns: string, prefix: string) =>
    (demo.objects as Pod[]).find(
      (o) =>
        (o as { kind?: string }).kind === 'Pod' &&
        o.metadata.namespace === ns &&
        o.metadata.name.startsWith(prefix) &&
        o.status?.phase === 'Running',
    )!;
  /** The demo's lines with one more, in time order (the demo's first hour, half past ten). */
  const plus = (line: string) => {
    const at = demo.lines.findIndex((l) => (JSON.parse(l) as { time: string }).time > '2026-03-02T10:30');
    return [...demo.lines.slice(0, at), line, ...demo.lines.slice(at)];
  };
  let base: Map<string, string>;
  beforeAll(async () => {
    base = await files(demo.objects, demo.lines);
  });

  it('one new connection between two workloads adds its two rules and changes no other line', async () => {
    const reco = running('shop', 'recommendations');
    const redis = running('data', 'redis');
    const after = await files(
      demo.objects,
      plus(hubbleLine('2026-03-02T10:30:00.000000000Z', reco, redis, 6379, 40000)),
    );
    expect(changedFiles(base, after)).toEqual(['data.yaml', 'report.json', 'shop.yaml']);
    // Egress of recommendations to redis, before its DNS rule (rules are sorted by peer).
    expect(change(base.get('shop.yaml')!, after.get('shop.yaml')!)).toEqual({
      removed: [],
      added: [
        '              kubernetes.io/metadata.name: data',
        '          podSelector:',
        '            matchLabels:',
        '              app: redis',
        '              app.kubernetes.io/name: redis',
        '      ports:',
        '        - protocol: TCP',
        '          port: 6379',
        '    - to:',
        '        - namespaceSelector:',
        '            matchLabels:',
      ],
    });
    // Ingress of redis from recommendations, after the one from checkout.
    expect(change(base.get('data.yaml')!, after.get('data.yaml')!)).toEqual({
      removed: [],
      added: [
        '    - from:',
        '        - namespaceSelector:',
        '            matchLabels:',
        '              kubernetes.io/metadata.name: shop',
        '          podSelector:',
        '            matchLabels:',
        '              app: recommendations',
        '              app.kubernetes.io/part-of: shop',
        '      ports:',
        '        - protocol: TCP',
        '          port: 6379',
      ],
    });
  });

  it('one more flow of a connection already seen changes report.json only', async () => {
    const frontend = running('shop', 'frontend');
    const cart = running('shop', 'cart');
    const after = await files(
      demo.objects,
      plus(hubbleLine('2026-03-02T10:30:00.000000000Z', frontend, cart, 7070, 40001)),
    );
    expect(changedFiles(base, after)).toEqual(['report.json']);
  });

  it("another day's flows over the same connections, counts and times differing, change report.json only", async () => {
    // The next day, at 70% of the traffic: other times, other counts, other pods' creation times.
    const day = generateDemo({ start: DEMO_START + 86_400_000, rate: 0.7 });
    expect(day.truth.edges).toEqual(demo.truth.edges);
    const after = await files(day.objects, day.lines);
    expect(changedFiles(base, after)).toEqual(['report.json']);
    expect(after.get('report.json')).not.toBe(base.get('report.json'));
  });
});
