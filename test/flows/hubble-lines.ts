/**
 * Hubble jsonpb lines for the scanner equivalence properties: the real sample lines, generated
 * records (random fields, orders, omissions, escapes, unicode, IPv6, enums as numbers) and text
 * mutations that keep or break JSON validity.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';

export const SAMPLE = new URL('../../../shared/samples/hubble-flows.jsonl', import.meta.url);
export const sampleLines = readFileSync(SAMPLE, 'utf8')
  .split('\n')
  .filter((l) => l.trim() !== '');

/** Deterministic recursive key shuffle driven by a seed. */
export function shuffleKeys(v: unknown, seed: { s: number }): unknown {
  if (Array.isArray(v)) return v.map((x) => shuffleKeys(x, seed));
  if (v === null || typeof v !== 'object') return v;
  const entries = Object.entries(v);
  for (let i = entries.length - 1; i > 0; i--) {
    seed.s = (seed.s * 1103515245 + 12345) % 2147483648;
    const j = seed.s % (i + 1);
    [entries[i], entries[j]] = [entries[j]!, entries[i]!];
  }
  return Object.fromEntries(entries.map(([k, x]) => [k, shuffleKeys(x, seed)]));
}

/** Text-level mutations that keep or break JSON validity in ways the scanner must notice. */
export const mutation = fc.oneof(
  fc.constant((l: string) => l),
  fc.nat().map((n) => (l: string) => l.slice(0, n % (l.length + 1))),
  fc
    .tuple(fc.nat(), fc.constantFrom(' ', '\t', ',', '}', ']', '"', '\\', '\u0001', 'x', '0', '-', '{', 'é'))
    .map(([n, c]) => (l: string) => {
      const i = n % (l.length + 1);
      return l.slice(0, i) + c + l.slice(i);
    }),
  fc.nat().map((n) => (l: string) => {
    const i = n % Math.max(1, l.length);
    return l.slice(0, i) + l.slice(i + 1);
  }),
  fc.constantFrom(
    (l: string) => l.replace(/:(\d+)/, ':$1.0'),
    (l: string) => l.replace(/:(\d+)/, ':$1e0'),
    (l: string) => l.replace(/:(\d+)/, ':-$1'),
    (l: string) => l.replace(/:(\d)/, ':0$1'),
    (l: string) => l.replace(/:"/, ': "'),
    (l: string) => l.replace('"IP":{', '"IP":null,"x":{'),
    (l: string) => l.replace('"l4":{', '"l4":{"UDP":{},'),
    (l: string) => l.replace('true', 'tru'),
    (l: string) => l.replace('true', 'trux'),
    (l: string) => l.replace('true', 'truee'),
    (l: string) => l.replace('false', 'falsy'),
    (l: string) => l.replace(/:(\d+)/, ':$1x'),
    (l: string) => l.replace('"source":{', '"source":{"labels":["k8s:a=b"],'),
    (l: string) => l.replace('"flow":{', '"flow":{"IP":{"source":"1.2.3.4"},'),
    (l: string) => l + ' ',
    (l: string) => l + '{}',
  ),
);

export const label = fc.oneof(
  fc.constantFrom(
    'k8s:app=web',
    'k8s:io.cilium.k8s.policy.cluster=default',
    'k8s:io.kubernetes.pod.namespace=shop',
    'k8s:io.cilium.k8s.namespace.labels.team=a',
    'k8s:version=v1',
    'reserved:world',
    'reserved:host',
    'reserved:remote-node',
    'reserved:health',
    'reserved:kube-apiserver',
    'reserved:bogus',
    'cidr:10.0.0.0/8',
    'fqdn:*.example.com',
    'app=bare',
    'io.cilium.k8s.policy.serviceaccount=x',
    'k8s:ünïcødé=✓',
    'k8s:quote="x"',
    'io.kubernetes.pod.namespace=shop',
    'app=a:b',
    'team:x=y',
    'k8s:',
    'k8s',
    'reserved:',
    '',
  ),
  fc.stringMatching(/^k8s:[a-z]{1,6}=[a-z0-9]{0,6}$/),
  fc.string({ maxLength: 12 }),
);

export const text = fc.oneof(
  { weight: 30, arbitrary: fc.stringMatching(/^[a-z0-9][a-z0-9.-]{0,12}$/) },
  { weight: 10, arbitrary: fc.constantFrom('shop', 'kube-system', '', 'ünï', '✓ok', '日本') },
  { weight: 1, arbitrary: fc.string({ maxLength: 10 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 6 }) },
  { weight: 1, arbitrary: fc.constantFrom('a"b', 'back\\slash', 'tab\there') },
);
const ip = fc.oneof(
  fc.ipV4(),
  fc.ipV6(),
  fc.constantFrom('', '10.0.0.256', 'not-an-ip', '01.2.3.4', '::ffff:1.2.3.4'),
);
const port = fc.oneof(
  { weight: 20, arbitrary: fc.integer({ min: 0, max: 65535 }) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 70000 }).map(String) },
  { weight: 1, arbitrary: fc.constantFrom(-1, 70000) },
);
const enumOf = (names: string[]) =>
  fc.oneof(
    { weight: 12, arbitrary: fc.constantFrom(...names) },
    { weight: 3, arbitrary: fc.integer({ min: 0, max: 10 }) },
    { weight: 1, arbitrary: fc.constantFrom('BOGUS', '') },
  );

const endpoint = fc.record(
  {
    ID: fc.nat(5000),
    identity: fc.oneof(fc.nat(20), fc.nat(100000), fc.nat(100000), fc.nat(100000), fc.constant('7')),
    namespace: text,
    pod_name: text,
    labels: fc.array(label, { maxLength: 6 }),
    workloads: fc.array(fc.record({ name: text, kind: fc.constantFrom('Deployment', 'StatefulSet') }), {
      maxLength: 2,
    }),
  },
  { requiredKeys: [] },
);

const l4 = fc.oneof(
  fc.record(
    {
      TCP: fc.record(
        {
          source_port: port,
          destination_port: port,
          flags: fc.record({ SYN: fc.boolean(), ACK: fc.boolean(), PSH: fc.boolean() }, { requiredKeys: [] }),
        },
        { requiredKeys: [] },
      ),
    },
    { requiredKeys: [] },
  ),
  fc.record({ UDP: fc.record({ source_port: port, destination_port: port }, { requiredKeys: [] }) }),
  fc.record({ SCTP: fc.record({ source_port: port, destination_port: port }, { requiredKeys: [] }) }),
  fc.record({ ICMPv4: fc.record({ type: fc.nat(300), code: fc.nat(20) }, { requiredKeys: [] }) }),
  fc.record({ ICMPv6: fc.record({ type: fc.nat(300) }, { requiredKeys: [] }) }),
  fc.record({ VRRP: fc.record({ type: fc.nat(3) }) }),
);

const timestamp = fc.oneof(
  fc
    .tuple(
      fc.date({ min: new Date('2000-01-01'), max: new Date('2100-01-01'), noInvalidDate: true }),
      fc.nat(9),
    )
    .map(([d, digits]) => {
      const iso = d.toISOString().slice(0, 19);
      const frac = digits === 0 ? '' : '.' + '123456789'.slice(0, digits);
      return `${iso}${frac}Z`;
    }),
  fc.constantFrom('2021-11-10T10:40:56+01:00', '2021-02-30T00:00:00Z', 'yesterday', ''),
);

const flow = fc.record(
  {
    time: timestamp,
    uuid: fc.uuid(),
    verdict: enumOf([
      'FORWARDED',
      'DROPPED',
      'AUDIT',
      'REDIRECTED',
      'ERROR',
      'TRACED',
      'TRANSLATED',
      'VERDICT_UNKNOWN',
    ]),
    drop_reason_desc: enumOf(['POLICY_DENIED', 'INVALID_SOURCE_IP', 'DROP_REASON_UNKNOWN']).map((v) =>
      typeof v === 'number' ? v + 128 : v,
    ),
    ethernet: fc.record({
      source: fc.constant('aa:bb:cc:dd:ee:ff'),
      destination: fc.constant('11:22:33:44:55:66'),
    }),
    IP: fc.record({ source: ip, destination: ip, ipVersion: enumOf(['IPv4', 'IPv6']) }, { requiredKeys: [] }),
    l4,
    source: endpoint,
    destination: endpoint,
    Type: enumOf(['L3_L4', 'L7', 'SOCK']),
    node_name: text,
    source_names: fc.array(text, { maxLength: 2 }),
    destination_names: fc.array(fc.constantFrom('api.example.com.', 'x.svc.cluster.local', 'ünï.example'), {
      maxLength: 3,
    }),
    l7: fc.record(
      {
        type: enumOf(['REQUEST', 'RESPONSE', 'SAMPLE']),
        latency_ns: fc.constant('123456789012'),
        dns: fc.record({ query: fc.constantFrom('example.com.', 'a.b.', 'x'), qtypes: fc.constant(['A']) }),
      },
      { requiredKeys: [] },
    ),
    reply: fc.boolean(),
    is_reply: fc.boolean(),
    event_type: fc.record(
      { type: fc.constantFrom(1, 4, 5, 129), sub_type: fc.nat(5) },
      { requiredKeys: ['type'] },
    ),
    source_service: fc.record({ name: text, namespace: text }, { requiredKeys: [] }),
    destination_service: fc.record({ name: text, namespace: text }, { requiredKeys: [] }),
    traffic_direction: enumOf(['INGRESS', 'EGRESS', 'TRAFFIC_DIRECTION_UNKNOWN']),
    trace_observation_point: enumOf(['TO_ENDPOINT', 'FROM_ENDPOINT', 'TO_OVERLAY', 'TO_PROXY']),
    trace_reason: enumOf(['NEW', 'ESTABLISHED', 'REPLY', 'RELATED']),
    policy_match_type: fc.nat(6),
    Summary: text,
    interface: fc.record({ index: fc.nat(100), name: fc.constant('lxc0') }),
    egress_allowed_by: fc.array(
      fc.record({
        name: text,
        namespace: text,
        labels: fc.array(label, { maxLength: 2 }),
        revision: fc.constant('17'),
      }),
      { maxLength: 2 },
    ),
  },
  { requiredKeys: ['IP', 'l4'] },
);

export const line = fc.record({
  record: fc.oneof(
    { weight: 8, arbitrary: flow.map((f) => ({ flow: f, node_name: 'n1', time: '2026-01-01T00:00:00Z' })) },
    { weight: 1, arbitrary: flow },
    { weight: 1, arbitrary: fc.constant({ node_status: { state_change: 'NODE_CONNECTED' } }) },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom('18446744073709551615', '12', 'x', 5)
        .map((n) => ({ lost_events: { num_events_lost: n } })),
    },
  ),
  seed: fc.nat(),
  mutate: fc.oneof(
    { weight: 3, arbitrary: fc.constant((l: string) => l) },
    { weight: 1, arbitrary: mutation },
  ),
});

export function render(r: { record: unknown; seed: number; mutate: (l: string) => string }): string {
  return r.mutate(JSON.stringify(shuffleKeys(r.record, { s: r.seed })));
}
