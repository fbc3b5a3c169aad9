import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import {
  flattenLists,
  loadSnapshotText,
  InputError,
  parseObjectsText,
  podIPs,
} from '../src/model/snapshot.ts';
import { buildIdentity } from '../src/identity/index.ts';
import { streamJsonObjects } from '../src/model/stream.ts';
import { Readable } from 'node:stream';
import { matchesSelector, selectorProblem } from '../src/model/selectors.ts';

describe('snapshot loader', () => {
  it('reads a List and sorts objects by kind', () => {
    const snap = loadSnapshotText(
      JSON.stringify({
        kind: 'List',
        items: [
          { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } },
          {
            apiVersion: 'v1',
            kind: 'Pod',
            metadata: { name: 'p', namespace: 'shop' },
            spec: { containers: [] },
          },
          { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd', namespace: 'shop' }, spec: {} },
          { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' } },
        ],
      }),
      'cluster.json',
    );
    expect(snap.namespaces).toHaveLength(1);
    expect(snap.pods).toHaveLength(1);
    expect(snap.workloads).toHaveLength(1);
    expect(snap.others.map((o) => o.kind)).toEqual(['Node']);
  });

  it('reads multi-document YAML', () => {
    const snap = loadSnapshotText(
      'apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n',
      'x.yaml',
    );
    expect(snap.namespaces.map((n) => n.metadata.name)).toEqual(['a', 'b']);
  });

  it('names the object that is wrong', () => {
    expect(() =>
      loadSnapshotText(
        JSON.stringify([{ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' } }]),
        'c.json',
      ),
    ).toThrow(new InputError('c.json: Pod p: metadata.namespace must be a non-empty string for a Pod'));
    expect(() => loadSnapshotText('{"kind": "List", "items": [', 'c.json')).toThrow(
      /^c.json: not valid JSON/,
    );
    expect(() => loadSnapshotText('  \n', 'c.json')).toThrow('c.json: the file holds only whitespace');
    expect(() => loadSnapshotText('', 'c.json')).toThrow('c.json: the file is empty');
    expect(() =>
      loadSnapshotText('[{"apiVersion":"v1","kind":"Widget","metadata":{"name":"w"}}]', 'c.json', {
        unknownKinds: 'error',
      }),
    ).toThrow('c.json: Widget w: unsupported kind Widget');
  });

  it("takes only networking.k8s.io/v1's NetworkPolicy for one: Calico's is another kind", () => {
    const text = JSON.stringify([
      {
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: { name: 'k', namespace: 's' },
        spec: {},
      },
      {
        apiVersion: 'projectcalico.org/v3',
        kind: 'NetworkPolicy',
        metadata: { name: 'c', namespace: 's' },
        spec: {},
      },
    ]);
    const snap = loadSnapshotText(text, 'c.json');
    expect(snap.networkPolicies.map((p) => p.metadata.name)).toEqual(['k']);
    expect(snap.others.map((o) => `${o.kind} ${o.metadata.name}`)).toEqual(['NetworkPolicy c']);
    expect(() => loadSnapshotText(text, 'c.json', { unknownKinds: 'error' })).toThrow(
      new InputError('c.json: NetworkPolicy s/c: unsupported kind NetworkPolicy of "projectcalico.org/v3"'),
    );
  });
});

describe('YAML read one document at a time', () => {
  // The reading as it was, with every document parsed first (yaml's parseAllDocuments): the oracle.
  const allAtOnce = (text: string, source: string): unknown[] => {
    const docs = parseAllDocuments(text);
    const out: unknown[] = [];
    for (const [i, doc] of (Array.isArray(docs) ? docs : [docs]).entries()) {
      if (doc.errors.length > 0)
        throw new InputError(
          // Its first line ended with a colon when the library added the line's text below it.
          `${source}: YAML document ${i + 1}: ${doc.errors[0]!.message.split('\n')[0]!.replace(/:$/, '')}`,
        );
      let value: unknown;
      try {
        value = doc.toJS();
      } catch (err) {
        // An alias to no anchor, aliases that expand without bound: the text's fault too.
        throw new InputError(`${source}: YAML document ${i + 1}: ${(err as Error).message.split('\n')[0]}`);
      }
      if (value !== null && value !== undefined) out.push(...flattenLists(value, source));
    }
    return out;
  };
  const outcome = (f: () => unknown[]): unknown => {
    try {
      return { objects: f() };
    } catch (err) {
      return { error: (err as Error).message, input: err instanceof InputError };
    }
  };
  const np = (i: number) =>
    `apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: p-${i}\n  namespace: a\nspec:\n  podSelector: {}\n`;
  const texts = [
    np(1),
    `${np(1)}---\n${np(2)}---\n${np(3)}`,
    `---\n${np(1)}---\n---\n# only a comment\n---\n${np(2)}...\n`,
    `kind: List\nitems:\n- kind: Pod\n  metadata: {name: x}\n- kind: Pod\n  metadata: {name: y}\n`,
    `- kind: Pod\n  metadata: {name: x}\n- kind: Namespace\n  metadata: {name: n}\n`,
    `a: &x {kind: Pod}\nb: *x\n`,
    `${np(1)}---\nkind: Pod\n metadata: bad indentation\n`,
    `${np(1)}---\n${np(2)}---\nkind: "unterminated\n`,
    `kind: Pod\nkind: Pod\n`,
    `kind: Pod\n\tmetadata: {}\n`,
    `${np(1)}---\nkey: [1, 2\n`,
    `%YAML 1.2\n---\n${np(1)}`,
    `%BAD\n${np(1)}`,
    `just text\n---\n${np(1)}`,
    `${np(1)}---\n42\n`,
    `kind: Pod\nmetadata:\n  name: "a\\x"\n`,
    `*undefined\n`,
    `\n\n---\n`,
  ];
  it('gives the objects and the first error the whole-stream reading gave, worded the same', () => {
    let errors = 0;
    for (const text of texts) {
      const want = outcome(() => allAtOnce(text, 'body'));
      expect(
        outcome(() => parseObjectsText(text, 'body')),
        text,
      ).toEqual(want);
      if ((want as { error?: string }).error !== undefined) errors++;
    }
    // The cases reach both answers: some errors (with their line and column), some objects.
    expect(errors).toBeGreaterThanOrEqual(6);
    expect(outcome(() => parseObjectsText(texts[6]!, 'body'))).toEqual({
      error: 'body: YAML document 2: Nested mappings are not allowed in compact mappings at line 9, column 7',
      input: true,
    });
  });
});

describe('label selectors', () => {
  it('ANDs matchLabels and matchExpressions', () => {
    const sel = {
      matchLabels: { app: 'web' },
      matchExpressions: [{ key: 'tier', operator: 'In' as const, values: ['a', 'b'] }],
    };
    expect(matchesSelector(sel, { app: 'web', tier: 'a' })).toBe(true);
    expect(matchesSelector(sel, { app: 'web', tier: 'c' })).toBe(false);
    expect(matchesSelector(sel, { app: 'db', tier: 'a' })).toBe(false);
    expect(matchesSelector({}, {})).toBe(true);
    expect(matchesSelector({ matchExpressions: [{ key: 'x', operator: 'NotIn', values: ['1'] }] }, {})).toBe(
      true,
    );
    expect(matchesSelector({ matchExpressions: [{ key: 'x', operator: 'DoesNotExist' }] }, { x: '' })).toBe(
      false,
    );
  });
  it('reports malformed selectors', () => {
    expect(selectorProblem({ matchExpressions: [{ key: 'a', operator: 'Is' }] })).toBe(
      'matchExpressions[0].operator "Is" is not one of In, NotIn, Exists, DoesNotExist',
    );
    expect(selectorProblem({ matchExpressions: [{ key: 'a', operator: 'In', values: [] }] })).toBe(
      'matchExpressions[0].values must be a non-empty list for In',
    );
    expect(
      selectorProblem({
        matchExpressions: [
          { key: 'a', operator: 'Exists' },
          { key: 'b', operator: 'NotIn', values: ['x', 1] },
        ],
      }),
    ).toBe('matchExpressions[1].values[1] must be a string');
    expect(selectorProblem({ matchExpressions: [{ key: 'a', operator: 'In', values: ['1'] }] })).toBe(
      undefined,
    );
  });
});

/** A JSON List of a Namespace and the objects `items`, as `kubectl get -o json` writes it. */
const listOf = (...items: unknown[]) =>
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'List',
    items: [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } }, ...items],
  });

/** A running pod `shop/web-1` with `status` (and `spec`) merged over its defaults. */
const webPod = (status: Record<string, unknown>, spec: Record<string, unknown> = {}) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'web-1', namespace: 'shop' },
  spec: { containers: [{ name: 'c' }], ...spec },
  status: { phase: 'Running', ...status },
});

describe('snapshot loader on pod addresses of the wrong type', () => {
  it.each([
    [{ podIP: 5 }, 'status.podIP must be a string, found number'],
    [{ podIP: '10.0.0.1', podIPs: '10.0.0.1' }, 'status.podIPs must be a list of {ip} objects, found string'],
    [{ podIPs: { ip: '10.0.0.1' } }, 'status.podIPs must be a list of {ip} objects, found object'],
    [{ podIPs: [null] }, 'status.podIPs[0] must be an object with a string ip, found null'],
    [
      { podIPs: [{ ip: '10.0.0.1' }, 5] },
      'status.podIPs[1] must be an object with a string ip, found number',
    ],
    [{ podIPs: [{ ip: 7 }] }, 'status.podIPs[0].ip must be a string, found number'],
    [{ hostIP: ['10.1.0.1'] }, 'status.hostIP must be a string, found array'],
    [{ hostIPs: 'x' }, 'status.hostIPs must be a list of {ip} objects, found string'],
    [{ hostIPs: [{}] }, 'status.hostIPs[0].ip must be a string, found undefined'],
  ])('refuses status %j, naming the file, the pod and the field', (status, message) => {
    expect(() => loadSnapshotText(listOf(webPod(status)), 'c.json')).toThrow(
      new InputError(`c.json: Pod shop/web-1: ${message}`),
    );
  });

  it('refuses a status that is no object, and reads one that is null as none', () => {
    expect(() => loadSnapshotText(listOf({ ...webPod({}), status: 'Running' }), 'c.json')).toThrow(
      new InputError('c.json: Pod shop/web-1: status must be an object, found string'),
    );
    const snap = loadSnapshotText(listOf({ ...webPod({}), status: null }), 'c.json');
    expect(snap.pods.map((p) => p.metadata.name)).toEqual(['web-1']);
  });

  it('reads a dual-stack pod whose addresses have the types the API gives', () => {
    const snap = loadSnapshotText(
      listOf(
        webPod({
          podIP: '10.0.0.1',
          podIPs: [{ ip: '10.0.0.1' }, { ip: 'fd00::1' }],
          hostIP: '10.1.0.1',
          hostIPs: [{ ip: '10.1.0.1' }, { ip: 'fd01::1' }],
        }),
      ),
      'c.json',
    );
    expect(podIPs(snap.pods[0]!)).toEqual(['10.0.0.1', 'fd00::1']);
  });
});

describe('snapshot loader on owner references of the wrong type', () => {
  const owned = (ownerReferences: unknown) => ({
    ...webPod({ podIP: '10.0.0.1' }),
    metadata: { name: 'web-1', namespace: 'shop', ownerReferences },
  });

  it.each([
    ['x', 'metadata.ownerReferences must be a list of objects, found string'],
    [
      { kind: 'ReplicaSet', name: 'web-1a' },
      'metadata.ownerReferences must be a list of objects, found object',
    ],
    [[null], 'metadata.ownerReferences[0] must be an object, found null'],
    [
      [{ kind: 'ReplicaSet', name: 'web-1a' }, 5],
      'metadata.ownerReferences[1] must be an object, found number',
    ],
    [[{ name: 'web-1a' }], 'metadata.ownerReferences[0].kind must be a non-empty string, found undefined'],
    [
      [{ kind: 'ReplicaSet', name: 3 }],
      'metadata.ownerReferences[0].name must be a non-empty string, found number',
    ],
  ])('refuses ownerReferences %j, naming the file, the object and the field', (refs, message) => {
    expect(() => loadSnapshotText(listOf(owned(refs)), 'c.json')).toThrow(
      new InputError(`c.json: Pod shop/web-1: ${message}`),
    );
  });

  it('reads owners that point nowhere or in a cycle as the API server stores them', () => {
    const rs = (name: string, owner: string) => ({
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: {
        name,
        namespace: 'shop',
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: owner, controller: true }],
      },
      spec: {},
    });
    const snap = loadSnapshotText(
      listOf(
        rs('self', 'self'),
        rs('a', 'b'),
        rs('b', 'a'),
        owned([{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'ghost', controller: true }]),
        { ...owned(null), metadata: { name: 'web-2', namespace: 'shop', ownerReferences: null } },
      ),
      'c.json',
    );
    expect(snap.workloads.map((w) => w.metadata.name)).toEqual(['self', 'a', 'b']);
    expect(snap.pods.map((p) => p.metadata.name)).toEqual(['web-1', 'web-2']);
    expect([...buildIdentity(snap).podWorkload]).toEqual([
      ['shop/web-1', 'shop/ReplicaSet/ghost'],
      ['shop/web-2', 'shop/Pod/web-2'],
    ]);
  });
});

describe('snapshot loader on containers and ports of the wrong type', () => {
  const deployment = (containers: unknown) => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', namespace: 'shop' },
    spec: {
      selector: { matchLabels: { app: 'web' } },
      template: { metadata: { labels: { app: 'web' } }, spec: { containers } },
    },
  });

  it.each([
    ['x', 'spec.containers must be a list of objects, found string'],
    [[null], 'spec.containers[0] must be an object, found null'],
    [[{ name: 'c', ports: 80 }], 'spec.containers[0].ports must be a list of objects, found number'],
    [
      [{ name: 'c', ports: [{ containerPort: 80 }, null] }],
      'spec.containers[0].ports[1] must be an object, found null',
    ],
    [
      [{ name: 'c', ports: [{ containerPort: 'http' }] }],
      'spec.containers[0].ports[0].containerPort must be an integer from 0 to 65535, found "http"',
    ],
    [
      [{ name: 'c', ports: [{ containerPort: 1e300 }] }],
      'spec.containers[0].ports[0].containerPort must be an integer from 0 to 65535, found 1e+300',
    ],
    [
      [{ name: 'c', ports: [{ containerPort: 80, hostPort: 70000 }] }],
      'spec.containers[0].ports[0].hostPort must be an integer from 0 to 65535, found 70000',
    ],
    [
      [{ name: 'c', ports: [{ containerPort: 80, name: 5 }] }],
      'spec.containers[0].ports[0].name must be a string, found number',
    ],
    [
      [{ name: 'c', ports: [{ containerPort: 80, protocol: 6 }] }],
      'spec.containers[0].ports[0].protocol must be a string, found number',
    ],
  ])('refuses a pod with containers %j, naming the field', (containers, message) => {
    expect(() => loadSnapshotText(listOf(webPod({}, { containers })), 'c.json')).toThrow(
      new InputError(`c.json: Pod shop/web-1: ${message}`),
    );
  });

  it('refuses an init container, and a pod template, of the wrong type', () => {
    expect(() =>
      loadSnapshotText(listOf(webPod({}, { initContainers: [{ name: 'i', ports: [5] }] })), 'c.json'),
    ).toThrow(
      new InputError(
        'c.json: Pod shop/web-1: spec.initContainers[0].ports[0] must be an object, found number',
      ),
    );
    expect(() => loadSnapshotText(listOf(deployment([null, { name: 'c' }])), 'c.json')).toThrow(
      new InputError(
        'c.json: Deployment shop/web: spec.template.spec.containers[0] must be an object, found null',
      ),
    );
  });

  it('reads containers and ports that are null or missing as none', () => {
    const snap = loadSnapshotText(
      listOf(
        webPod({}, { containers: null }),
        deployment([
          { name: 'c', ports: null },
          { name: 'd', ports: [{ containerPort: 8080, name: 'http' }] },
        ]),
      ),
      'c.json',
    );
    expect(snap.pods[0]!.spec.containers).toEqual([]);
    expect(buildIdentity(snap).workloads.get('shop/Deployment/web')?.namedPorts).toEqual([
      { name: 'http', port: 8080, protocol: 'TCP' },
    ]);
  });
});

describe('snapshot loader on node addresses of the wrong type', () => {
  const node = (status: unknown) => ({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' }, status });

  it.each([
    [{ addresses: 'x' }, 'status.addresses must be a list of objects, found string'],
    [{ addresses: [null] }, 'status.addresses[0] must be an object, found null'],
    [
      { addresses: [{ type: 'InternalIP', address: 5 }] },
      'status.addresses[0].address must be a string, found number',
    ],
  ])('refuses status %j, naming the node and the field', (status, message) => {
    expect(() => loadSnapshotText(listOf(node(status)), 'c.json')).toThrow(
      new InputError(`c.json: Node n1: ${message}`),
    );
  });

  it('reads a node without addresses', () => {
    const snap = loadSnapshotText(
      listOf(node(null), { ...node({ addresses: null }), metadata: { name: 'n2' } }),
      'c.json',
    );
    expect(snap.others.map((o) => o.metadata.name)).toEqual(['n1', 'n2']);
  });
});

describe('snapshot loader on a List without an items list', () => {
  it.each([
    [
      '{"apiVersion":"v1","kind":"PodList","metadata":{"resourceVersion":"7"},"items":{"a":1}}',
      'c.json: PodList: items must be a list of objects, found object',
    ],
    [
      '{"apiVersion":"v1","kind":"List","items":"pods"}',
      'c.json: List: items must be a list of objects, found string',
    ],
  ])('refuses %s, naming the field', (text, message) => {
    expect(() => loadSnapshotText(text, 'c.json')).toThrow(new InputError(message));
  });

  // A Go program marshalling an empty List with a nil slice writes "items": null, and the API server
  // (like kubectl) reads a null or missing list as empty: so does microseg.
  it.each([
    '{"apiVersion":"v1","kind":"List","items":null}',
    '{"apiVersion":"v1","kind":"List"}',
    '{"apiVersion":"v1","kind":"PodList","metadata":{"resourceVersion":"7"},"items":null}',
    'apiVersion: v1\nkind: List\nitems:\n',
    '[{"apiVersion":"v1","kind":"List","items":null},{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a"}}]',
  ])('reads %s as an empty list', (text) => {
    const snap = loadSnapshotText(text, 'c.json');
    expect(snap.pods).toEqual([]);
    expect(snap.others.map((o) => o.kind)).toEqual([]);
    expect(snap.namespaces.map((n) => n.metadata.name)).toEqual(text.includes('Namespace') ? ['a'] : []);
  });

  it('reads a streamed --cluster List whose items is null as an empty list', async () => {
    const chunks = [
      Buffer.from('{"apiVersion":"v1","kind":"List","items":null}\n{"apiVersion":"v1","kind":"List"}'),
    ];
    const out: unknown[] = [];
    for await (const v of streamJsonObjects(Readable.from(chunks), 'c.json'))
      out.push(...flattenLists(v, 'c.json'));
    expect(out).toEqual([]);
  });

  it('reads an empty List, and an object of a kind ending in List that has a name, as such', () => {
    expect(loadSnapshotText('{"apiVersion":"v1","kind":"List","items":[]}', 'c.json').pods).toEqual([]);
    const snap = loadSnapshotText(
      listOf({ apiVersion: 'x/v1', kind: 'AllowList', metadata: { name: 'a' } }),
      'c.json',
    );
    expect(snap.others.map((o) => o.kind)).toEqual(['AllowList']);
  });
});

describe('snapshot loader on a file that holds no value', () => {
  const NONE =
    'no object in the file, only null or empty YAML documents (a cluster with no object is a List with no items: {"kind":"List","items":[]})';
  it.each([
    ['null\n', 'c.json'],
    ['---\n', 'c.yaml'],
    ['--- null\n---\n', 'c.yaml'],
    ['# the cluster\n---\n', 'c.yaml'],
  ])('refuses %j, naming the file', (text, source) => {
    expect(() => loadSnapshotText(text, source)).toThrow(new InputError(`${source}: ${NONE}`));
  });

  it('reads a List with no items, and empty documents beside objects, as it did', () => {
    expect(loadSnapshotText('{"kind":"List","items":[]}', 'c.json').pods).toEqual([]);
    expect(loadSnapshotText('kind: List\nitems: []\n', 'c.yaml').pods).toEqual([]);
    const snap = loadSnapshotText(
      '---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n',
      'c.yaml',
    );
    expect(snap.namespaces.map((n) => n.metadata.name)).toEqual(['a']);
  });
});

describe('snapshot loader on pod addresses that are no IP address', () => {
  it.each([
    [{ podIP: 'not-an-ip' }, 'status.podIP must be an IP address, found "not-an-ip"'],
    [
      { podIPs: [{ ip: '10.0.0.1' }, { ip: '10.0.0.300' }] },
      'status.podIPs[1].ip must be an IP address, found "10.0.0.300"',
    ],
    [{ hostIP: 'node-1' }, 'status.hostIP must be an IP address, found "node-1"'],
    [{ hostIPs: [{ ip: '10.1.0.0/24' }] }, 'status.hostIPs[0].ip must be an IP address, found "10.1.0.0/24"'],
  ])('refuses status %j, naming the file, the pod and the field', (status, message) => {
    expect(() => loadSnapshotText(listOf(webPod(status)), 'c.json')).toThrow(
      new InputError(`c.json: Pod shop/web-1: ${message}`),
    );
  });

  it('reads IPv4 and IPv6 addresses, and an empty one as none', () => {
    const snap = loadSnapshotText(
      listOf(webPod({ podIP: '', hostIP: 'fd00::1', podIPs: [{ ip: '10.0.0.1' }, { ip: 'fd00:10::1' }] })),
      'c.json',
    );
    expect(podIPs(snap.pods[0]!)).toEqual(['10.0.0.1', 'fd00:10::1']);
  });
});
