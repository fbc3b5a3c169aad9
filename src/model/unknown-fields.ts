/**
 * Fields of a policy object that its API does not define, found when an input file is read
 * (`SnapshotBuilder`). The API server drops such a field from what it stores (or refuses the object,
 * with a client's strict validation), and microseg reads the object the same way, without it; but a
 * misspelt selector field (`podSelector: {matchLabel: {app: x}}`) then leaves a selector of nothing,
 * `{}`, which selects everything. So each is named, with what reading the object without it means.
 *
 * Checked: every field of a NetworkPolicy's spec but those of a peer (which the engine's validation
 * refuses when unknown, `src/verify/validate.ts`); of the cluster-scoped kinds (AdminNetworkPolicy,
 * BaselineAdminNetworkPolicy, ClusterNetworkPolicy), the label selectors and the `pods` peers and
 * subject that hold two of them in any version, and, in the versions the engine reads (`API_VERSIONS`
 * there: v1alpha1 for the first two, v1alpha2 for ClusterNetworkPolicy; other versions' schemas
 * differ), the fields of the spec, of each rule and of its ports (`ports` of v1alpha1, `protocols` of
 * v1alpha2), where a misspelt `ports` would match every port. Peers and the subject are left to the
 * engine's validation, which refuses one with an unknown field, as a NetworkPolicy's peers.
 */
import { closestName } from './order.ts';

export interface UnknownField {
  /** The field's path in the object, `spec.podSelector.matchLabel`. */
  path: string;
  /** The known field it is closest to, when it is near enough to be a typo of it. */
  near?: string;
  /** What reading the object without it means, when that widens what it selects or admits. */
  consequence?: string;
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Whether `a` is `b` with two neighbouring characters swapped (`form` for `from`), a typo of one slip. */
function swapped(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  const i = [...a].findIndex((ch, k) => ch !== b[k]);
  return i >= 0 && a[i] === b[i + 1] && a[i + 1] === b[i] && a.slice(i + 2) === b.slice(i + 2);
}

const absent = (v: unknown) => v === undefined || v === null;

const SELECTOR = ['matchLabels', 'matchExpressions'] as const;
const REQUIREMENT = ['key', 'operator', 'values'] as const;
const NAMESPACED_POD = ['namespaceSelector', 'podSelector'] as const;

class Finder {
  readonly found: UnknownField[] = [];

  /**
   * The fields of `o` not in `known`; `consequence` (called only when there are some) says what
   * reading `o` without them means.
   */
  fields(
    o: Obj,
    path: string,
    known: readonly string[],
    consequence?: (meant: (field: string) => boolean) => string | undefined,
  ): boolean {
    const unknown = Object.keys(o).filter((k) => !known.includes(k));
    if (unknown.length === 0) return false;
    const nearOf = (k: string) => closestName(k, known) ?? known.find((f) => swapped(k, f));
    // Absent `field` is likely what an unknown field was meant to be: one is near it, or one near no
    // known field is there while no other absent field is near one.
    const nears = unknown.map(nearOf);
    const meant = (field: string) =>
      absent(o[field]) &&
      (nears.includes(field) ||
        (nears.includes(undefined) && !nears.some((n) => n !== undefined && absent(o[n]))));
    const then = consequence?.(meant);
    for (const k of unknown) {
      const near = nearOf(k);
      this.found.push({
        path: `${path}.${k}`,
        ...(near !== undefined ? { near } : {}),
        ...(then !== undefined ? { consequence: then } : {}),
      });
    }
    return true;
  }

  /** A label selector, which selects every `what` when it holds no requirement. */
  selector(v: unknown, path: string, what: string): void {
    if (!isObj(v)) return;
    this.fields(v, path, SELECTOR, () => {
      const labels = isObj(v.matchLabels) ? Object.keys(v.matchLabels).length : 0;
      const expressions = Array.isArray(v.matchExpressions) ? v.matchExpressions.length : 0;
      return labels === 0 && expressions === 0
        ? `${path} is read as {}, which selects every ${what}`
        : undefined;
    });
    if (Array.isArray(v.matchExpressions))
      v.matchExpressions.forEach((r, i) => {
        if (isObj(r)) this.fields(r, `${path}.matchExpressions[${i}]`, REQUIREMENT);
      });
  }

  /** The `pods` of a cluster-scoped policy's subject or peer: a namespace and a pod selector. */
  namespacedPod(v: unknown, path: string): void {
    if (!isObj(v)) return;
    this.fields(v, path, NAMESPACED_POD, () => {
      const missing = NAMESPACED_POD.filter((k) => absent(v[k]));
      if (missing.length === 0) return undefined;
      return `${path} is read without ${missing.join(' and ')}, which selects every ${missing.map((k) => (k === 'podSelector' ? 'pod' : 'namespace')).join(' and every ')}`;
    });
    this.selector(v.namespaceSelector, `${path}.namespaceSelector`, 'namespace');
    this.selector(v.podSelector, `${path}.podSelector`, 'pod');
  }

  networkPolicy(spec: Obj): void {
    this.fields(spec, 'spec', ['podSelector', 'policyTypes', 'ingress', 'egress'], () =>
      absent(spec.podSelector) ? 'spec is read without podSelector, which selects every pod' : undefined,
    );
    this.selector(spec.podSelector, 'spec.podSelector', 'pod');
    for (const [dir, peers, admits] of [
      ['ingress', 'from', 'source'],
      ['egress', 'to', 'destination'],
    ] as const) {
      if (!Array.isArray(spec[dir])) continue;
      (spec[dir] as unknown[]).forEach((r, i) => {
        if (!isObj(r)) return;
        const rp = `spec.${dir}[${i}]`;
        this.fields(r, rp, [peers, 'ports'], () =>
          absent(r[peers]) ? `${rp} is read without ${peers}, which admits every ${admits}` : undefined,
        );
        if (Array.isArray(r[peers]))
          (r[peers] as unknown[]).forEach((p, j) => {
            if (!isObj(p)) return;
            const pp = `${rp}.${peers}[${j}]`;
            for (const k of Object.keys(p)) {
              if (k === 'podSelector') this.selector(p[k], `${pp}.${k}`, 'pod');
              else if (k === 'namespaceSelector') this.selector(p[k], `${pp}.${k}`, 'namespace');
              else if (k === 'ipBlock' && isObj(p[k])) this.fields(p[k], `${pp}.${k}`, ['cidr', 'except']);
            }
          });
        if (Array.isArray(r.ports))
          r.ports.forEach((p, j) => {
            if (isObj(p)) this.fields(p, `${rp}.ports[${j}]`, ['protocol', 'port', 'endPort']);
          });
      });
    }
  }

  /**
   * A cluster-scoped policy: its selectors and `pods` in any version; with `schema` (a version the
   * engine reads), also the fields of its spec, rules and ports, saying what reading without a field
   * likely meant to be `ingress`, `egress`, a rule's ports or a port's protocol means.
   */
  clusterPolicy(spec: Obj, schema?: ClusterSchema): void {
    if (schema)
      this.fields(spec, 'spec', schema.spec, (meant) => {
        const missing = (['ingress', 'egress'] as const).filter(meant);
        return missing.length > 0
          ? `spec is read without ${missing.join(' and ')}, so it has no ${missing.join(' or ')} rule`
          : undefined;
      });
    const subject = spec.subject;
    if (isObj(subject)) {
      this.selector(subject.namespaces, 'spec.subject.namespaces', 'namespace');
      this.namespacedPod(subject.pods, 'spec.subject.pods');
    }
    for (const [dir, peers] of [
      ['ingress', 'from'],
      ['egress', 'to'],
    ] as const) {
      if (!Array.isArray(spec[dir])) continue;
      (spec[dir] as unknown[]).forEach((r, i) => {
        if (!isObj(r)) return;
        const rp = `spec.${dir}[${i}]`;
        const ports = schema?.ports;
        if (ports)
          this.fields(r, rp, ['name', 'action', peers, ports], (meant) =>
            meant(ports)
              ? `${rp} is read without ${ports}, which matches every ${ports === 'ports' ? 'port' : 'protocol and port'}`
              : undefined,
          );
        if (Array.isArray(r[peers]))
          (r[peers] as unknown[]).forEach((p, j) => {
            if (!isObj(p)) return;
            const pp = `${rp}.${peers}[${j}]`;
            this.selector(p.namespaces, `${pp}.namespaces`, 'namespace');
            this.namespacedPod(p.pods, `${pp}.pods`);
            this.selector(p.nodes, `${pp}.nodes`, 'node');
          });
        if (ports && Array.isArray(r[ports]))
          (r[ports] as unknown[]).forEach((p, j) => {
            if (!isObj(p)) return;
            if (ports === 'ports') this.anpPort(p, `${rp}.ports[${j}]`);
            else this.cnpProtocol(p, `${rp}.protocols[${j}]`);
          });
      });
    }
  }

  /** A port of an AdminNetworkPolicy's or BaselineAdminNetworkPolicy's rule (v1alpha1). */
  private anpPort(p: Obj, path: string): void {
    this.fields(p, path, ['portNumber', 'portRange', 'namedPort']);
    for (const [k, known] of [
      ['portNumber', ['protocol', 'port']],
      ['portRange', ['protocol', 'start', 'end']],
    ] as const) {
      const v = p[k];
      if (isObj(v))
        this.fields(v, `${path}.${k}`, known, (meant) =>
          meant('protocol') ? `${path}.${k} is read without protocol, which is TCP` : undefined,
        );
    }
  }

  /** A protocol of a ClusterNetworkPolicy's rule (v1alpha2). */
  private cnpProtocol(p: Obj, path: string): void {
    this.fields(p, path, ['tcp', 'udp', 'sctp', 'destinationNamedPort']);
    for (const proto of ['tcp', 'udp', 'sctp'] as const) {
      const body = p[proto];
      if (!isObj(body)) continue;
      const bp = `${path}.${proto}`;
      this.fields(body, bp, ['destinationPort'], (meant) =>
        meant('destinationPort')
          ? `${bp} is read without destinationPort, which matches every ${proto.toUpperCase()} port`
          : undefined,
      );
      const dp = body.destinationPort;
      if (!isObj(dp)) continue;
      this.fields(dp, `${bp}.destinationPort`, ['number', 'range']);
      if (isObj(dp.range)) this.fields(dp.range, `${bp}.destinationPort.range`, ['start', 'end']);
    }
  }
}

/** The fields of a cluster-scoped kind's spec, and its rules' ports field, in the version the engine reads. */
interface ClusterSchema {
  apiVersion: string;
  spec: readonly string[];
  ports: 'ports' | 'protocols';
}

const CLUSTER_SCHEMAS: Readonly<Record<string, ClusterSchema>> = {
  AdminNetworkPolicy: {
    apiVersion: 'policy.networking.k8s.io/v1alpha1',
    spec: ['priority', 'subject', 'ingress', 'egress'],
    ports: 'ports',
  },
  BaselineAdminNetworkPolicy: {
    apiVersion: 'policy.networking.k8s.io/v1alpha1',
    spec: ['subject', 'ingress', 'egress'],
    ports: 'ports',
  },
  ClusterNetworkPolicy: {
    apiVersion: 'policy.networking.k8s.io/v1alpha2',
    spec: ['tier', 'priority', 'subject', 'ingress', 'egress'],
    ports: 'protocols',
  },
};

/**
 * The fields of a policy object (a `networking.k8s.io/v1` NetworkPolicy or a cluster-scoped policy
 * kind) that its API does not define, a level's own fields before those below them, each level in
 * the order of its API's fields (a peer's in the order they are written); none for any other object.
 */
export function unknownPolicyFields(o: Obj): UnknownField[] {
  if (!isObj(o.spec)) return [];
  const f = new Finder();
  if (o.kind === 'NetworkPolicy' && (o.apiVersion === undefined || o.apiVersion === 'networking.k8s.io/v1'))
    f.networkPolicy(o.spec);
  else if (typeof o.kind === 'string' && Object.hasOwn(CLUSTER_SCHEMAS, o.kind)) {
    const schema = CLUSTER_SCHEMAS[o.kind]!;
    f.clusterPolicy(o.spec, o.apiVersion === schema.apiVersion ? schema : undefined);
  }
  return f.found;
}

/** What an input reader says of an unknown field of the object `where` names. */
export function unknownFieldMessage(where: string, u: UnknownField, strict: boolean): string {
  const head = `${where}: unknown field ${u.path}${u.near !== undefined ? ` (did you mean ${u.near}?)` : ''}`;
  const ignored = 'ignored as the API server drops it';
  if (strict) return `${head} (--strict refuses it; without --strict it is ${ignored})`;
  return `${head}, ${ignored}${u.consequence !== undefined ? `: ${u.consequence}` : ''}`;
}
