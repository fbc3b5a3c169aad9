/**
 * File inputs shared by the commands: cluster snapshots and policy files (JSON or YAML, gzip allowed,
 * '-' for standard input, directories of such files). JSON is streamed: objects are parsed one at a time
 * and compacted to what the core reads, so a snapshot of a large cluster never holds the file's text or
 * the fields nobody reads.
 */
import { open, readdir, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import type { Identity, IdentityOptions } from '../identity/index.ts';
import { buildIdentity } from '../identity/index.ts';
import { compactObject, Interner } from '../model/compact.ts';
import { UsageError } from './io.ts';
import { releaseMemory } from './memory.ts';
import type { ClusterSnapshot, SnapshotOptions } from '../model/snapshot.ts';
import {
  blankText,
  flattenLists,
  InputError,
  mergeSnapshots,
  noteSource,
  parseSnapshotText,
  SnapshotBuilder,
} from '../model/snapshot.ts';
import { streamJsonObjects } from '../model/stream.ts';
import type { FlowFormat, IngestStats } from '../flows/reader.ts';
import {
  decodeHead,
  detectRecordFormat,
  FLOW_FORMATS,
  gunzipIfNeeded,
  joinBytes,
  openSource,
  readProblem,
} from '../flows/reader.ts';
import { onlyUnreadKinds, replaceRepeated, snapshotWarnings } from '../verify/load.ts';
import { CLUSTER_POLICY_KINDS, isClusterPolicyKind } from '../verify/validate.ts';
import { closestName } from '../model/order.ts';
import { appliedPolicies } from '../policy/audit.ts';

export interface LoadOptions extends SnapshotOptions {
  /** Where '-' reads from. */
  stdin?: AsyncIterable<Buffer | string>;
  /** Keep every field of every object instead of only what the core reads (default false). */
  full?: boolean;
}

/** The kinds of the objects the engine checks (validate.ts), whose messages name their file. */
const POLICY_KINDS: ReadonlySet<string> = new Set(['NetworkPolicy', ...CLUSTER_POLICY_KINDS]);

const UTF8_BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/** The bytes of a file or of standard input, un-gzipped when they start with the gzip magic. */
function chunks(path: string, stdin: LoadOptions['stdin']): AsyncGenerator<Buffer> {
  if (path === '-' && !stdin) throw new InputError('-: standard input is not available');
  return gunzipIfNeeded(openSource(path, stdin), { source: path, gzip: false });
}

/**
 * The Kubernetes objects of one input, one at a time. JSON (a List, an array, one object, or objects one
 * after another) is split and parsed object by object; anything else is read whole as YAML, at most
 * `maxBytes` (WHOLE_TEXT_LIMIT) once decompressed, as `joinBytes` reads text whole.
 */
export async function* readObjects(
  path: string,
  stdin?: LoadOptions['stdin'],
  opts: { maxBytes?: number } = {},
): AsyncGenerator<unknown> {
  const it = chunks(path, stdin)[Symbol.asyncIterator]();
  let head: Buffer[] = [];
  let firstByte = -1;
  let read = 0;
  for (;;) {
    const r = await it.next();
    if (r.done) break;
    let chunk = r.value;
    // A UTF-8 byte order mark (an editor's, or PowerShell's `Out-File -Encoding utf8BOM`) is no text.
    if (read < 3) {
      const start = Buffer.concat([...head, chunk]);
      if (start.length < 3 && start.every((b, i) => b === UTF8_BOM[i])) {
        head = [start];
        read = start.length;
        continue;
      }
      chunk = start.subarray(0, 3).equals(UTF8_BOM) ? start.subarray(3) : start;
      head = [];
    }
    read += r.value.length;
    head.push(chunk);
    const k = chunk.findIndex((b) => b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09);
    if (k >= 0) {
      firstByte = chunk[k]!;
      break;
    }
  }
  async function* all(): AsyncGenerator<Buffer> {
    yield* head;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value;
    }
  }
  if (firstByte === -1) {
    // Held whole: all of it is whitespace (or the start of a byte order mark, which is no blank).
    const blank = blankText(Buffer.concat(head).toString('utf8'));
    if (blank !== undefined) throw new InputError(`${path}: ${blank}`);
  }
  if (firstByte === 0x7b || firstByte === 0x5b) {
    for await (const value of streamJsonObjects(all(), path)) yield* flattenLists(value, path);
    return;
  }
  // YAML is read whole, as every text read whole is: to WHOLE_TEXT_LIMIT once decompressed.
  yield* parseSnapshotText((await joinBytes(all(), path, opts)).toString('utf8'), path);
}

/**
 * A directory written by `microseg recommend` also holds its report.json: not policy objects. Told by
 * how the file starts, decoded as every input is (gzip, byte order marks, UTF-16: `decodeHead`).
 */
async function isReport(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(REPORT_HEAD_BYTES);
    const { bytesRead } = await fh.read(buf, 0, REPORT_HEAD_BYTES, 0);
    // Compressed, decompressed to as many bytes as are read of a file that is not.
    const head = await decodeHead(buf.subarray(0, bytesRead), REPORT_HEAD_BYTES);
    return /^\s*\{\s*"reportVersion"\s*:/.test(head);
  } finally {
    await fh.close();
  }
}

/** The bytes read to tell a report.json: its first key even as UTF-16, or compressed. */
const REPORT_HEAD_BYTES = 512;

/** The files an argument names: itself, or every .json/.yaml/.yml file of a directory, sorted by name. */
async function expand(p: string): Promise<string[]> {
  if (p === '-') return [p];
  const st = await stat(p).catch((err: unknown) => {
    throw new InputError(`${p}: cannot read: ${readProblem(err)}`);
  });
  if (!st.isDirectory()) return [p];
  const files = (await readdir(p))
    .filter((f) => /\.(json|ya?ml)$/.test(f))
    .sort()
    .map((f) => join(p, f));
  if (files.length === 0) throw new InputError(`${p}: the directory has no .json, .yaml or .yml file`);
  const out: string[] = [];
  const reports: string[] = [];
  for (const f of files) ((await isReport(f)) ? reports : out).push(f);
  // Read as no object at all, the directory would be an empty cluster, or a proposal of nothing.
  if (out.length === 0)
    throw new InputError(
      `${p}: the directory has no .json, .yaml or .yml file but ${reports.map((f) => basename(f)).join(', ')}, which recommend writes (no Kubernetes object)`,
    );
  return out;
}

/**
 * An object without a kind refused by the snapshot reader, with what it is when it is something microseg
 * reads elsewhere: a flow record (a flows file given as `--cluster` or `--policies`) or the report
 * `recommend` writes (`--policies policies/report.json`). Any other error is returned as it is.
 */
function withWhatItIs(err: unknown, obj: unknown): unknown {
  if (!(err instanceof InputError) || typeof obj !== 'object' || obj === null || Array.isArray(obj))
    return err;
  const o = obj as Record<string, unknown>;
  if ('kind' in o) return err;
  let what: string | undefined;
  if ('reportVersion' in o) what = 'it is the report.json microseg recommend writes, not a Kubernetes object';
  else {
    const format = detectRecordFormat(o);
    const record =
      format === 'hubble'
        ? 'a Hubble flow record'
        : format === 'inspektor-gadget'
          ? 'an Inspektor Gadget trace_tcp event'
          : format === 'generic' && 'src' in o && 'dst' in o
            ? 'a generic flow record'
            : undefined;
    if (record !== undefined)
      what = `it is ${record}, not a Kubernetes object (a flows file given as a cluster or policy file?)`;
  }
  return what === undefined ? err : new InputError(`${err.message}: ${what}`);
}

/** Loads cluster snapshot and policy files into one snapshot, each object checked and compacted as read. */
export async function loadSnapshotFiles(
  paths: readonly string[],
  opts: LoadOptions = {},
): Promise<ClusterSnapshot> {
  const snaps: ClusterSnapshot[] = [];
  const interner = new Interner();
  for (const p of paths) {
    for (const f of await expand(p)) {
      // Policy objects keep the file they came from, for the engine's messages about them.
      const keep = (o: object) => {
        const t = opts.full ? o : (compactObject(o, interner) as object);
        if (POLICY_KINDS.has((o as { kind?: unknown }).kind as string)) noteSource(t, f);
        return t;
      };
      const builder = new SnapshotBuilder(f, opts, keep);
      for await (const obj of readObjects(f, opts.stdin)) {
        try {
          builder.add(obj);
        } catch (err) {
          throw withWhatItIs(err, obj);
        }
      }
      snaps.push(builder.snapshot);
    }
  }
  return snaps.length === 1 ? snaps[0]! : mergeSnapshots(...snaps);
}

/**
 * Refuses, as bad input naming the `--cluster` paths, a snapshot whose every object is of a kind no stage
 * reads (`onlyUnreadKinds`): the wrong file, from which a proposal or an answer would rest on nothing of
 * the cluster. Another `--cluster` file holding what microseg reads makes them skipped objects, said in a
 * warning.
 */
export function refuseUnreadCluster(snapshot: ClusterSnapshot, paths: readonly string[]): void {
  const kinds = onlyUnreadKinds(snapshot);
  if (kinds === undefined) return;
  throw new InputError(
    `--cluster ${paths.join(', ')}: no object of a kind microseg reads, only ${kinds}: a cluster snapshot ` +
      'holds Namespaces, Pods, Services, EndpointSlices, workloads and NetworkPolicies ' +
      '(kubectl get ns,pods,svc,endpointslices,deploy,rs,sts,ds,jobs,cronjobs,networkpolicies -A -o json)',
  );
}

/**
 * Identity from cluster files, the snapshot dropped once it is built: for commands that need nothing
 * else from the snapshot (`microseg graph`), so that it is not held while flows are read. An object given
 * more than once under one name counts once, as the last one read (`withRepeatsReplaced`), as in
 * `recommend` and the verify commands.
 */
export async function loadIdentity(
  paths: readonly string[],
  identity: IdentityOptions | undefined,
  opts: LoadOptions = {},
  warn: (message: string) => void = () => {},
): Promise<Identity> {
  const read = await loadSnapshotFiles(paths, opts);
  refuseUnreadCluster(read, paths);
  const snapshot = warnedSnapshot(read, warn);
  // Reading leaves the parsed text's garbage behind; give it back before identity adds its own.
  releaseMemory();
  return buildIdentity(snapshot, identity);
}

/**
 * Cluster and policy files for the verify commands. Objects of kinds no stage reads are skipped, and
 * they and the policy objects the engine cannot evaluate are told to `warn` (`snapshotWarnings`), as
 * `recommend` and `graph` do.
 */
export async function loadVerifySnapshot(
  paths: readonly string[],
  stdin: LoadOptions['stdin'],
  warn: (message: string) => void,
  opts: SnapshotOptions = {},
): Promise<ClusterSnapshot> {
  return warnedSnapshot(await loadSnapshotFiles(paths, { ...opts, stdin }), warn);
}

/**
 * `loadVerifySnapshot` for the `--cluster` files of a command: a snapshot of nothing but kinds no stage
 * reads is refused first (`refuseUnreadCluster`).
 */
export async function loadClusterSnapshot(
  paths: readonly string[],
  stdin: LoadOptions['stdin'],
  warn: (message: string) => void,
  opts: SnapshotOptions = {},
): Promise<ClusterSnapshot> {
  const snap = await loadSnapshotFiles(paths, { ...opts, stdin });
  refuseUnreadCluster(snap, paths);
  return warnedSnapshot(snap, warn);
}

/**
 * `snap` with the skipped kinds and the policies the engine cannot evaluate told to `warn`
 * (`snapshotWarnings`), and an object given more than once counted once (`withRepeatsReplaced`).
 */
function warnedSnapshot(snap: ClusterSnapshot, warn: (message: string) => void): ClusterSnapshot {
  for (const w of snapshotWarnings(snap)) warn(w);
  return withRepeatsReplaced(snap, warn);
}

/**
 * The cluster snapshot `cluster` with the policy files of `option` (`--policies`, `--proposal`) applied
 * on top, in order, an object named like one read before replacing it. A path that holds no policy (a
 * wrong file, a kustomization.yaml, a directory of only report.json) is bad input: the answer would be
 * the cluster's alone, as if it had not been given.
 */
export async function withPolicyFiles(
  cluster: ClusterSnapshot,
  option: string,
  paths: readonly string[],
  stdin: LoadOptions['stdin'],
  warn: (message: string) => void,
): Promise<ClusterSnapshot> {
  return (await withPolicyFilesPruned(cluster, option, paths, stdin, warn, false)).snapshot;
}

/**
 * `withPolicyFiles`, and with `prune` the cluster's NetworkPolicies microseg manages (label
 * app.kubernetes.io/managed-by=microseg) that the files do not hold left out in the namespaces the files
 * hold NetworkPolicies for, as Enforce or a GitOps sync with pruning removes them (`appliedPolicies`,
 * as `microseg audit --prune`); `pruned` names those left out (`namespace/name`, sorted).
 */
export async function withPolicyFilesPruned(
  cluster: ClusterSnapshot,
  option: string,
  paths: readonly string[],
  stdin: LoadOptions['stdin'],
  warn: (message: string) => void,
  prune: boolean,
): Promise<{ snapshot: ClusterSnapshot; pruned: string[] }> {
  const snaps: ClusterSnapshot[] = [];
  for (const p of paths) {
    const snap = await loadVerifySnapshot([p], stdin, warn);
    if (snap.networkPolicies.length === 0 && !snap.others.some((o) => isClusterPolicyKind(o.kind)))
      throw new InputError(`${option} ${p}: no NetworkPolicy in it (nor ${CLUSTER_POLICY_KINDS.join(', ')})`);
    snaps.push(snap);
  }
  if (snaps.length === 0) return { snapshot: cluster, pruned: [] };
  const { pruned } = appliedPolicies(
    cluster.networkPolicies,
    snaps.flatMap((s) => s.networkPolicies),
    prune,
  );
  const left = new Set(pruned);
  const base =
    left.size === 0
      ? cluster
      : {
          ...cluster,
          networkPolicies: cluster.networkPolicies.filter(
            (p) => !left.has(`${p.metadata.namespace ?? ''}/${p.metadata.name}`),
          ),
        };
  return { snapshot: withRepeatsReplaced(mergeSnapshots(base, ...snaps), warn), pruned };
}

/**
 * The snapshot with each object given more than once under one name kept once, as the last one read
 * (`replaceRepeated`); those replaced by other content are told to `warn`.
 */
export function withRepeatsReplaced(snap: ClusterSnapshot, warn: (message: string) => void): ClusterSnapshot {
  const { snapshot, warnings } = replaceRepeated(snap);
  for (const w of warnings) warn(w);
  return snapshot;
}

/** How a command that writes its result on standard output tells a warning: on standard error. */
export function warnOnStderr(io: { err(text: string): void }, command: string): (message: string) => void {
  return (message) => io.err(`microseg ${command}: warning: ${message}\n`);
}

/** The namespaces a snapshot knows: its Namespace objects, and those its namespaced objects are in. */
export function snapshotNamespaces(snapshot: ClusterSnapshot): Set<string> {
  const out = new Set<string>(snapshot.namespaces.map((n) => n.metadata.name));
  for (const list of [snapshot.pods, snapshot.services, snapshot.workloads, snapshot.cronJobs])
    for (const o of list) if (o.metadata.namespace) out.add(o.metadata.namespace);
  return out;
}

/**
 * Refuses (bad usage, exit 2, before any flow is read) a namespace `option` names that the snapshot does
 * not have, naming the closest one it has when one is close (a typo).
 */
export function checkNamespaces(option: string, names: readonly string[], snapshot: ClusterSnapshot): void {
  const known = snapshotNamespaces(snapshot);
  for (const ns of names) {
    if (known.has(ns)) continue;
    const near = closestName(ns, known);
    throw new UsageError(
      `${option} ${ns}: the snapshot has no namespace ${ns}` + (near ? ` (did you mean ${near}?)` : ''),
    );
  }
}

/**
 * Refuses flow sources given more than once (bad usage, exit 2, before anything is read): `-` twice
 * would read standard input once and find it empty the second time, and a file twice would count each
 * of its flows twice. Two names are the same source when they resolve to the same path, or name the
 * same file (a symbolic or hard link, `./f` and `f`). A missing path is left to the reader to report.
 */
export async function checkDistinctSources(option: string, paths: readonly string[]): Promise<void> {
  const seen = new Map<string, string>();
  for (const p of paths) {
    if (p === '-') {
      if (seen.has('-'))
        throw new UsageError(`${option} - is given twice: standard input can be read only once`);
      seen.set('-', p);
      continue;
    }
    const keys = [`path ${resolve(p)}`];
    const st = await stat(p).catch(() => undefined);
    if (st !== undefined) keys.push(`file ${st.dev}:${st.ino}`);
    for (const k of keys) {
      const first = seen.get(k);
      if (first === undefined) continue;
      throw new UsageError(
        first === p
          ? `${option} ${p} is given twice: its flows would be counted twice`
          : `${option} ${p} and ${option} ${first} are the same file: its flows would be counted twice`,
      );
    }
    for (const k of keys) seen.set(k, p);
  }
}

/**
 * The flow format an option (`--format` of recommend and audit, `--input-format` of graph) names, as
 * the reader takes it: undefined when it is not given or `auto` (detected per source). Anything else,
 * the empty text too, is bad usage (exit 2, before anything is read) naming the option and the formats.
 */
export function flowFormatOption(option: string, text: string | undefined): FlowFormat | undefined {
  if (text === undefined || text === 'auto') return undefined;
  if (!(FLOW_FORMATS as readonly string[]).includes(text))
    throw new UsageError(
      `${option} ${JSON.stringify(text)} is not a flow format (use auto, ${FLOW_FORMATS.join(', ')})`,
    );
  return text as FlowFormat;
}

/** The `--limit` of a command's text output: a whole number, 0 or more (bad usage otherwise). */
export function limitOption(text: string): number {
  if (!/^\d+$/.test(text))
    throw new UsageError(`--limit must be a whole number, 0 or more, got ${JSON.stringify(text)}`);
  return Number(text);
}

/**
 * Refuses `--cluster -` in a command that reads the snapshot from files only (`recommend`, `graph`: bad
 * usage, exit 2, before anything is read), saying so: standard input is for their `--flows`.
 */
export function clusterFromFiles(command: string, paths: readonly string[]): void {
  if (paths.includes('-'))
    throw new UsageError(
      `--cluster -: ${command} reads the cluster snapshot from a file or directory, not from standard input ('-' is for --flows)`,
    );
}

/**
 * Refuses (bad usage, exit 2, before anything is read) standard input named more than once, by one
 * option or by several: it is read once, by the first, and the others would find it empty. `options`
 * are each option's name and the paths it was given.
 */
export function stdinOnce(
  options: readonly (readonly [string, readonly string[] | string | undefined])[],
): void {
  const fromStdin: string[] = [];
  for (const [option, given] of options) {
    const paths = given === undefined ? [] : typeof given === 'string' ? [given] : given;
    for (const p of paths) if (p === '-') fromStdin.push(`${option} -`);
  }
  const twice = fromStdin.find((o, i) => fromStdin.indexOf(o) !== i);
  if (twice !== undefined)
    throw new UsageError(`${twice} is given twice: standard input can be read only once`);
  if (fromStdin.length > 1)
    throw new UsageError(`${fromStdin.join(' and ')}: standard input can be read only once, by one of them`);
}

/**
 * Refuses (bad usage, exit 2, before anything is read) an output file that is one of the command's input
 * files, by path or as the same file under another name (a link, `./f`): it would be written over what
 * it is made from. `inputs` are each option's name and the paths it was given.
 */
export async function outputNotInput(
  option: string,
  out: string,
  inputs: readonly (readonly [string, readonly string[]])[],
): Promise<void> {
  const target = await stat(out).catch(() => undefined);
  for (const [name, paths] of inputs) {
    for (const p of paths) {
      if (p === '-') continue;
      const same =
        resolve(p) === resolve(out) ||
        (target !== undefined &&
          (await stat(p).then(
            (st) => st.dev === target.dev && st.ino === target.ino,
            () => false,
          )));
      if (same)
        throw new UsageError(`${option} ${out} is ${name} ${p}: the graph would be written over its input`);
    }
  }
}

/**
 * Why the flow sources gave no flow at all, for `recommend` and `graph`, which then write nothing and
 * exit 2, and `audit`, which then audits nothing: policies proposed from no traffic would deny whatever
 * runs in the namespaces, an empty graph says nothing, and an audit of no traffic would pass whatever
 * it audits, when the likely cause is the input (empty, or not the format it was read as). `forced` is
 * the option that named the input format (`--format generic`), if one did; `outcome` what the command
 * then does not do (`nothing written`).
 */
export function noFlowsMessage(stats: IngestStats, forced?: string, outcome = 'nothing written'): string {
  // A gzip source cut short before its first line is not empty: its cut is a bad record.
  const read = stats.sources.filter((s) => !stats.emptySources.includes(s.source)).map((s) => s.source);
  const names = (list: string[]) =>
    list.length === 1 ? list[0]! : `${list.length} sources (${list.join(', ')})`;
  if (read.length === 0) {
    const all = stats.sources.map((s) => s.source);
    return `no flow read: ${all.length === 1 ? `${all[0]} is empty` : `every source is empty (${all.join(', ')})`}; ${outcome}`;
  }
  if (stats.lines === 0)
    return `no flow read: no line could be read from ${names(read)} (see above); ${outcome}`;
  // A cut (a bad record after a source's lines) is no line.
  if (stats.badLines - (stats.bad.truncated ?? 0) === stats.lines)
    return (
      `no flow read: every line of ${names(read)} was bad (see above)` +
      (forced ? `; read as ${forced}: is that their format? Without it, each source's is detected` : '') +
      `; ${outcome}`
    );
  const parts: string[] = [];
  if (stats.badLines > 0) parts.push(`${stats.badLines} bad`);
  for (const [k, v] of Object.entries(stats.skipped)) parts.push(`${v} skipped (${k})`);
  for (const [k, v] of Object.entries(stats.events)) if (v > 0) parts.push(`${v} Hubble ${k}`);
  return `no flow read: none of the ${stats.lines} line(s) of ${names(read)} was a flow (${parts.join(', ')}); ${outcome}`;
}

/**
 * The flow sources and cluster snapshots of a command that reads both (`recommend`, `audit`), refused
 * as bad usage when either is missing, saying what it takes.
 */
export function flowsAndCluster(values: { flows?: string[]; cluster?: string[] }): {
  flows: string[];
  cluster: string[];
} {
  if (!values.flows?.length)
    throw new UsageError('--flows is required (a file, a .gz file, or - for standard input)');
  if (!values.cluster?.length) throw new UsageError('--cluster is required (kubectl get ... -o json output)');
  return { flows: values.flows, cluster: values.cluster };
}
