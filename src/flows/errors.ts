/**
 * Why an input line (or object) could not become a flow. Every reason is counted by the reader and the
 * first few occurrences are reported with their file and line.
 */
export type BadReason =
  | 'invalid-json'
  | 'not-an-object'
  | 'unknown-record'
  | 'wrong-type'
  | 'unknown-enum'
  | 'missing-field'
  | 'bad-value'
  | 'unknown-field'
  /**
   * No flow of any format but a record given as flows by mistake (src/flows/not-flows.ts): a Falco
   * alert, an Alertmanager webhook payload, a Kubernetes object or List.
   */
  | 'falco-alert'
  | 'alertmanager-payload'
  | 'kubernetes-object'
  /** A source that ends before its end: gzip data cut short (the lines before the cut are kept). */
  | 'truncated';

/**
 * A line that is well-formed but deliberately not turned into a flow (counted, not an error).
 * `loopback`: a connection with a loopback address at either end, which never leaves its pod.
 * `failed-connection`: an Inspektor Gadget connect or accept that carries an error (never established).
 * `address-range`: a CIDR or `*` in a Kubescape neighbour's `ipAddresses`, which names no peer.
 * `empty-neighborhood`: a Kubescape NetworkNeighborhood with no container whose storage annotation
 * `kubescape.io/resource-size` is 0 (still learning, or a workload without network activity).
 */
export type SkipReason =
  | 'health'
  | 'unsupported-protocol'
  | 'close-event'
  | 'failed-connection'
  | 'no-ports'
  | 'address-range'
  | 'empty-neighborhood'
  | 'loopback';

/** A problem with one input record: a reason code for counting and a message naming what was wrong. */
export class FlowInputError extends Error {
  readonly reason: BadReason;
  constructor(reason: BadReason, message: string) {
    super(message);
    this.name = 'FlowInputError';
    this.reason = reason;
  }
}

/** Describes a JSON value for error messages: `string "80"`, `number 3`, `object`, `array`, `null`. */
export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  switch (typeof v) {
    case 'string':
      return `string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '...' : v)}`;
    case 'number':
    case 'boolean':
      return `${typeof v} ${String(v)}`;
    case 'bigint':
      return `bigint ${String(v)}`;
    default:
      return typeof v;
  }
}

export function wrongType(path: string, expected: string, got: unknown): FlowInputError {
  return new FlowInputError('wrong-type', `${path}: expected ${expected}, got ${describeValue(got)}`);
}
