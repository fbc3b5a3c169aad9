import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FlowInputError } from '../../src/flows/errors.ts';
import { parseGadgetEvent } from '../../src/flows/inspektor-gadget.ts';
import { parseNetworkNeighborhood } from '../../src/flows/kubescape.ts';
import type { Flow } from '../../src/flows/types.ts';

const samples = new URL('../../../shared/samples/', import.meta.url);
const igLine = readFileSync(new URL('ig-trace-tcp.jsonl', samples), 'utf8').trim();
const nn: unknown = JSON.parse(readFileSync(new URL('kubescape-networkneighborhood.json', samples), 'utf8'));

describe('Inspektor Gadget trace_tcp', () => {
  it('imports the sample connect event as pod -> peer', () => {
    expect(parseGadgetEvent(JSON.parse(igLine))).toEqual({
      time: Date.parse('2024-07-31T18:38:31.977Z'),
      src: { ip: '10.244.0.8', namespace: 'default', pod: 'mypod2' },
      dst: { ip: '1.1.1.1' },
      protocol: 'TCP',
      port: 80,
      srcPort: 41464,
      verdict: 'FORWARDED',
      input: 'inspektor-gadget',
    });
  });

  it('accept events put the local pod on the responder side; resolver peers and labels are used', () => {
    const ev = {
      type: 'accept',
      timestamp: '2025-01-01T00:00:00Z',
      src: { addr: '10.0.0.9', port: 8080, proto: 'TCP', version: 4 },
      dst: {
        addr: '10.0.0.3',
        port: 51000,
        proto: 'TCP',
        version: 4,
        k8s: { kind: 'pod', name: 'web-1', namespace: 'shop', labels: 'app=web,tier=front' },
      },
      k8s: {
        namespace: 'shop',
        podName: 'api-1',
        owner: { kind: 'ReplicaSet', name: 'api-5d' },
        podLabels: { app: 'api' },
      },
    };
    expect(parseGadgetEvent(ev)).toEqual({
      time: Date.parse('2025-01-01T00:00:00Z'),
      src: { ip: '10.0.0.3', namespace: 'shop', pod: 'web-1', labels: ['app=web', 'tier=front'] },
      dst: {
        ip: '10.0.0.9',
        namespace: 'shop',
        pod: 'api-1',
        workload: { kind: 'ReplicaSet', name: 'api-5d' },
        labels: ['app=api'],
      },
      protocol: 'TCP',
      port: 8080,
      srcPort: 51000,
      verdict: 'FORWARDED',
      input: 'inspektor-gadget',
    });
  });

  it('skips close events and explains bad ones', () => {
    expect(parseGadgetEvent({ ...JSON.parse(igLine), type: 'close' })).toEqual({ skip: 'close-event' });
    const bad = (o: object) => {
      const r = parseGadgetEvent({ ...JSON.parse(igLine), ...o });
      return r instanceof FlowInputError ? [r.reason, r.message] : r;
    };
    expect(bad({ type: 'listen' })).toEqual(['unknown-enum', 'type: unknown value "listen"']);
    expect(bad({ dst: { port: 80 } })).toEqual(['missing-field', 'dst.addr is missing']);
    expect(bad({ dst: { addr: '1.1.1.1', port: 80, proto: 47 } })).toEqual([
      'unknown-enum',
      'dst.proto: unknown value 47',
    ]);
    expect(bad({ timestamp_raw: 1e30 })).toEqual([
      'bad-value',
      'timestamp_raw: 1e+30 is out of range 0-8.64e+21 epoch nanoseconds',
    ]);
    expect(bad({ src: { addr: '10.0.0.1', port: '41464' } })).toEqual([
      'wrong-type',
      'src.port: expected an integer from 0 to 65535, got string "41464"',
    ]);
  });

  it('a responder port of 0 is a bad line, not a flow (a rule cannot hold port 0)', () => {
    const bad = (o: object) => {
      const r = parseGadgetEvent({ ...JSON.parse(igLine), ...o });
      return r instanceof FlowInputError ? [r.reason, r.message] : r;
    };
    expect(bad({ dst: { addr: '1.1.1.1', port: 0, proto: 6 } })).toEqual([
      'bad-value',
      "dst.port: 0 is out of range 1-65535 (the responder's port of a connect event)",
    ]);
    expect(bad({ type: 'accept', src: { addr: '10.244.0.8', port: 0, proto: 6 } })).toEqual([
      'bad-value',
      "src.port: 0 is out of range 1-65535 (the responder's port of an accept event)",
    ]);
    // Checked before the loopback skip: a line that is bad otherwise is still a bad line.
    expect(bad({ src: { addr: '127.0.0.1', port: 41464 }, dst: { addr: '127.0.0.1', port: 0 } })).toEqual([
      'bad-value',
      "dst.port: 0 is out of range 1-65535 (the responder's port of a connect event)",
    ]);
    // The initiator's port may be 0: it is left out.
    expect(bad({ src: { addr: '10.244.0.8', port: 0, proto: 6 } })).toMatchObject({ port: 80 });
  });

  it('a connect or accept that failed (error_raw, current trace_tcp) is skipped, not an allowed connection', () => {
    // Current trace_tcp reports a connect that never became established (refused, timed out: what a
    // NetworkPolicy that drops the SYN gives) as a connect event with the errno in error_raw.
    const ev = JSON.parse(igLine) as Record<string, unknown>;
    const refused = {
      ...ev,
      dst: { addr: '10.96.0.10', port: 5432, proto: 'TCP', proto_raw: 6, version: 4 },
    };
    expect(parseGadgetEvent({ ...refused, error_raw: 111, error: 'ECONNREFUSED' })).toEqual({
      skip: 'failed-connection',
    });
    expect(parseGadgetEvent({ ...refused, error_raw: 110 })).toEqual({ skip: 'failed-connection' });
    expect(parseGadgetEvent({ ...refused, type: 'accept', error_raw: 11 })).toEqual({
      skip: 'failed-connection',
    });
    // Without error_raw, an error name says the same.
    expect(parseGadgetEvent({ ...refused, error: 'ETIMEDOUT' })).toEqual({ skip: 'failed-connection' });
    // 0 and an empty name are success.
    expect(parseGadgetEvent({ ...refused, error_raw: 0, error: '' })).toMatchObject({ port: 5432 });
    const r = parseGadgetEvent({ ...refused, error_raw: 'refused' });
    expect(r instanceof FlowInputError ? [r.reason, r.message] : r).toEqual([
      'wrong-type',
      'error_raw: expected an errno (a number), got string "refused"',
    ]);
  });

  it('a timestamp_raw that is not a number is a wrong type, not a missing time', () => {
    const ev = { ...JSON.parse(igLine), timestamp_raw: '1722451111977700392' };
    delete ev.timestamp;
    const r = parseGadgetEvent(ev);
    expect(r instanceof FlowInputError ? [r.reason, r.message] : r).toEqual([
      'wrong-type',
      'timestamp_raw: expected epoch nanoseconds (a number), got string "1722451111977700392"',
    ]);
  });
});

describe('Kubescape NetworkNeighborhood', () => {
  const flows = parseNetworkNeighborhood(nn) as Flow[];

  it('imports every neighbour and port of the sample: 3 ingress + 10 egress', () => {
    expect(flows).toHaveLength(13);
    expect(flows.every((f) => f.count === 1 && f.input === 'kubescape' && f.verdict === 'FORWARDED')).toBe(
      true,
    );
    expect(flows.every((f) => f.time === Date.parse('2024-05-30T08:20:01Z'))).toBe(true);
  });

  it('the local side is the workload with its selector labels', () => {
    const local = {
      namespace: 'kubescape',
      workload: { kind: 'Deployment', name: 'operator' },
      labels: [
        'app.kubernetes.io/instance=kubescape',
        'app.kubernetes.io/name=operator',
        'tier=ks-control-plane',
      ],
    };
    for (const f of flows.slice(0, 3)) expect(f.dst).toEqual(local);
    for (const f of flows.slice(3)) expect(f.src).toEqual(local);
  });

  it('selector peers get labels and namespace; IP peers keep DNS names', () => {
    const egress = flows.slice(3);
    expect(egress[0]).toMatchObject({
      dst: { ip: '35.186.253.219', names: ['version-check.ks-services.co'] },
      protocol: 'TCP',
      port: 443,
    });
    expect(egress[1]!.dst).toEqual({
      namespace: 'kubescape',
      labels: ['app=otel-collector'],
      selector: { podSelector: { matchLabels: { app: 'otel-collector' } } },
    });
    const dns = egress.find((f) => f.port === 53)!;
    expect(dns).toMatchObject({
      protocol: 'UDP',
      dst: {
        namespace: 'kube-system',
        labels: ['k8s-app=kube-dns'],
        selector: {
          podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
        },
      },
    });
    const api = egress.find((f) => f.dst.ip === '10.245.0.1')!;
    expect(api.dst).toEqual({
      ip: '10.245.0.1',
      namespace: 'default',
      labels: ['component=apiserver', 'provider=kubernetes'],
      selector: {
        podSelector: { matchLabels: { component: 'apiserver', provider: 'kubernetes' } },
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'default' } },
      },
    });
    expect(flows[0]!.src).toEqual({ ip: '10.244.0.73' });
  });

  it('gives every flow the latest time the object gives, and marks it timeless', () => {
    // Neighbours accumulate over the object's life: its creation is when learning began.
    expect(flows.every((f) => f.timeless === true)).toBe(true);
    const o = structuredClone(nn) as { metadata: Record<string, unknown> };
    o.metadata.managedFields = [
      { manager: 'node-agent', operation: 'Update', time: '2024-06-12T10:00:00Z' },
      { manager: 'node-agent', operation: 'Update', time: '2024-06-01T00:00:00Z' },
      { manager: 'storage', operation: 'Update' },
    ];
    const later = parseNetworkNeighborhood(o) as Flow[];
    expect(later.every((f) => f.time === Date.parse('2024-06-12T10:00:00Z'))).toBe(true);
    (o.metadata.managedFields as { time?: string }[])[2]!.time = 'yesterday';
    expect((parseNetworkNeighborhood(o) as FlowInputError).message).toBe(
      'NetworkNeighborhood kubescape/replicaset-operator-55df98fc6d: metadata.managedFields[2].time: not an RFC 3339 timestamp',
    );
  });

  it('keeps selectors whole: matchExpressions, and a namespaceSelector by other labels', () => {
    const o = structuredClone(nn) as { spec: { containers: { egress: Record<string, unknown>[] }[] } };
    const egress = o.spec.containers[0]!.egress;
    egress[1]!.podSelector = { matchExpressions: [{ key: 'app', operator: 'In', values: ['otel'] }] };
    // A namespaceSelector alone, by a label other than the namespace's name: it once failed the object.
    egress[2]!.podSelector = null;
    egress[2]!.namespaceSelector = { matchLabels: { team: 'obs' } };
    const got = parseNetworkNeighborhood(o) as Flow[];
    expect(got).toHaveLength(13);
    const egressFlows = got.slice(3);
    expect(egressFlows[1]!.dst).toEqual({
      namespace: 'kubescape',
      selector: { podSelector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['otel'] }] } },
    });
    expect(egressFlows[2]!.dst).toEqual({
      selector: { namespaceSelector: { matchLabels: { team: 'obs' } } },
    });
    egress[1]!.podSelector = { matchExpressions: [{ key: 'app', operator: 'Exists', values: ['x'] }] };
    expect((parseNetworkNeighborhood(o) as FlowInputError).message).toBe(
      'NetworkNeighborhood kubescape/replicaset-operator-55df98fc6d: spec.containers[0].egress[1].podSelector.matchExpressions[0].values: must be empty for operator Exists',
    );
    egress[1]!.podSelector = { matchExpressions: [{ key: 'app', operator: 'Near' }] };
    expect((parseNetworkNeighborhood(o) as FlowInputError).message).toBe(
      'NetworkNeighborhood kubescape/replicaset-operator-55df98fc6d: spec.containers[0].egress[1].podSelector.matchExpressions[0].operator: unknown value string "Near"',
    );
  });

  it('takes any RFC 3339 creationTimestamp (all within what a Date holds)', () => {
    for (const t of ['9999-12-31T23:59:59Z', '0000-01-01T00:00:00+23:59']) {
      const o = structuredClone(nn) as { metadata: { creationTimestamp: string } };
      o.metadata.creationTimestamp = t;
      const flows = parseNetworkNeighborhood(o) as Flow[];
      expect(flows).toHaveLength(13);
      expect(() => new Date(flows[0]!.time).toISOString()).not.toThrow();
    }
  });

  it('an object without its spec (kubectl get networkneighborhoods lists metadata only) is a bad record, not silence', () => {
    // Kubescape's storage answers a LIST with each object's metadata and a zero-valued spec, whatever
    // kubectl's output format: read as it is, every neighbour was lost without a word.
    const msg = (o: unknown) => {
      const r = parseNetworkNeighborhood(o, 'item 2');
      return r instanceof FlowInputError ? [r.reason, r.message] : r;
    };
    const expected = [
      'missing-field',
      'NetworkNeighborhood kubescape/replicaset-operator-55df98fc6d: spec.containers is empty: a ' +
        'NetworkNeighborhood listed (kubectl get networkneighborhoods without a name) carries its metadata ' +
        'only; get each one by name (kubectl get networkneighborhood -n kubescape replicaset-operator-55df98fc6d -o json)',
    ];
    const listed = (spec: unknown) => ({ ...structuredClone(nn as object), spec });
    expect(msg(listed({}))).toEqual(expected);
    expect(msg(listed({ containers: null, initContainers: null, ephemeralContainers: null }))).toEqual(
      expected,
    );
    expect(msg(listed({ matchLabels: { app: 'operator' }, containers: [] }))).toEqual(expected);
    // A container that has learnt no neighbour yet is no error: it gives no flow.
    expect(msg(listed({ containers: [{ name: 'operator', ingress: null, egress: null }] }))).toEqual([]);
    expect(msg(listed({ initContainers: [{ name: 'init' }] }))).toEqual([]);
  });

  it('explains malformed objects', () => {
    const msg = (o: unknown) => {
      const r = parseNetworkNeighborhood(o);
      return r instanceof FlowInputError ? [r.reason, r.message] : r;
    };
    expect(msg({ kind: 'Pod' })).toEqual([
      'unknown-record',
      'object: expected kind NetworkNeighborhood, got string "Pod"',
    ]);
    const broken = structuredClone(nn) as { spec: { containers: { egress: { ports: unknown[] }[] }[] } };
    broken.spec.containers[0]!.egress[0]!.ports = [{ protocol: 'TCP', port: 0 }];
    expect(msg(broken)).toEqual([
      'wrong-type',
      'NetworkNeighborhood kubescape/replicaset-operator-55df98fc6d: spec.containers[0].egress[0].ports[0].port: expected an integer from 1 to 65535, got number 0',
    ]);
  });

  it('counts a neighbour without ports as skipped (no-ports): it gives no flow', () => {
    const o = structuredClone(nn) as { spec: { containers: { egress: { ports?: unknown }[] }[] } };
    const egress = o.spec.containers[0]!.egress;
    const before = parseNetworkNeighborhood(nn) as Flow[];
    const dropped = [egress[0]!, egress[1]!].map((n) => (n.ports as unknown[]).length);
    egress[0]!.ports = null;
    egress[1]!.ports = [];
    const told: [string, number][] = [];
    const flows = parseNetworkNeighborhood(o, 'object', (reason, n) => told.push([reason, n])) as Flow[];
    expect(told).toEqual([['no-ports', 2]]);
    expect(flows).toHaveLength(before.length - dropped[0]! - dropped[1]!);
    // An object that is bad as a whole counts no skip.
    egress[2] = 'not a neighbour' as never;
    const bad: [string, number][] = [];
    expect(parseNetworkNeighborhood(o, 'object', (reason, n) => bad.push([reason, n]))).toBeInstanceOf(
      FlowInputError,
    );
    expect(bad).toEqual([]);
  });

  it('names the field of an address that is not one: ipAddress or ipAddresses[i]', () => {
    const msg = (n: object) => {
      const o = structuredClone(nn) as { spec: { containers: { egress: object[] }[] } };
      o.spec.containers[0]!.egress[0] = { ...o.spec.containers[0]!.egress[0], ...n };
      const r = parseNetworkNeighborhood(o);
      return r instanceof FlowInputError ? [r.reason, r.message] : r;
    };
    const at = 'NetworkNeighborhood kubescape/replicaset-operator-55df98fc6d: spec.containers[0].egress[0]';
    expect(msg({ ipAddress: '35.186.253' })).toEqual([
      'bad-value',
      `${at}.ipAddress: not an IP address: "35.186.253"`,
    ]);
    expect(msg({ ipAddress: '', ipAddresses: ['35.186.253.219', 'fe80::1%eth0'] })).toEqual([
      'bad-value',
      `${at}.ipAddresses[1]: not an IP address: "fe80::1%eth0"`,
    ]);
    // An address in both is one peer (in the order of ipAddresses, which holds it).
    const flows = msg({ ipAddress: '10.0.0.2', ipAddresses: ['10.0.0.1', '10.0.0.2'] }) as Flow[];
    expect(
      flows.filter((f) => f.dst.ip !== undefined && f.dst.ip.startsWith('10.0.0.')).map((f) => f.dst.ip),
    ).toEqual(['10.0.0.1', '10.0.0.2']);
  });

  it('an address range in ipAddresses (CIDR or *, user-managed profiles) is skipped, not the whole object', () => {
    const run = (n: object) => {
      const o = structuredClone(nn) as { spec: { containers: { egress: object[] }[] } };
      o.spec.containers[0]!.egress[0] = { ...o.spec.containers[0]!.egress[0], ...n };
      const skipped: Record<string, number> = {};
      const r = parseNetworkNeighborhood(
        o,
        'object',
        (reason, k) => (skipped[reason] = (skipped[reason] ?? 0) + k),
      );
      return { r: r instanceof FlowInputError ? [r.reason, r.message] : r, skipped };
    };
    const at = 'NetworkNeighborhood kubescape/replicaset-operator-55df98fc6d: spec.containers[0].egress[0]';
    // The neighbour's address is kept, its ranges counted; every other neighbour still gives its flow.
    const mixed = run({ ipAddress: '', ipAddresses: ['10.0.0.0/8', '*', '35.186.253.219', 'fd00::/64'] });
    expect((mixed.r as Flow[]).length).toBe(13);
    expect((mixed.r as Flow[]).filter((f) => f.dst.ip !== undefined).map((f) => f.dst.ip)).toContain(
      '35.186.253.219',
    );
    expect((mixed.r as Flow[]).some((f) => f.dst.ip === '*' || f.dst.ip?.includes('/'))).toBe(false);
    expect(mixed.skipped).toEqual({ 'address-range': 3 });
    // Only ranges: that neighbour gives no flow, the 12 others do.
    const only = run({ ipAddress: '', dns: '', dnsNames: null, ipAddresses: ['*'] });
    expect((only.r as Flow[]).length).toBe(12);
    expect(only.skipped).toEqual({ 'address-range': 1 });
    // Text that is neither an address nor a range is still a bad value.
    expect(run({ ipAddress: '', ipAddresses: ['10.0.0.0/33'] }).r).toEqual([
      'bad-value',
      `${at}.ipAddresses[0]: not an IP address: "10.0.0.0/33"`,
    ]);
  });

  it('a /32 or /128 in ipAddresses is that one peer, not a range skipped', () => {
    // A prefix as long as its address names one host: skipped as a range, the peer the workload talks
    // to was lost and recommend would deny that traffic.
    const o = structuredClone(nn) as { spec: { containers: { egress: object[] }[] } };
    o.spec.containers[0]!.egress[0] = {
      ...o.spec.containers[0]!.egress[0],
      ipAddress: '',
      dns: '',
      dnsNames: null,
      ipAddresses: ['10.0.0.7/32', 'fd00::7/128', '10.0.0.7'],
    };
    const skipped: Record<string, number> = {};
    const r = parseNetworkNeighborhood(
      o,
      'object',
      (reason, k) => (skipped[reason] = (skipped[reason] ?? 0) + k),
    );
    if (r instanceof FlowInputError) throw new Error(r.message);
    expect(r.filter((f) => f.dst.ip === '10.0.0.7' || f.dst.ip === 'fd00::7').map((f) => f.dst.ip)).toEqual([
      '10.0.0.7',
      'fd00::7',
    ]);
    expect(r).toHaveLength(14);
    expect(skipped).toEqual({});
    // The prefix length must fit the address's family.
    const bad = structuredClone(o);
    (bad.spec.containers[0]!.egress[0] as { ipAddresses: string[] }).ipAddresses = ['10.0.0.7/128'];
    const e = parseNetworkNeighborhood(bad);
    expect(e instanceof FlowInputError ? e.reason : e).toBe('bad-value');
  });
});
