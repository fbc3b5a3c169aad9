/**
 * Reading flow files: a file path, a gzip file (recognised by its magic bytes), or `-` for standard
 * input; streamed chunk by chunk (neither the lines nor the flows of a file are held in memory; a JSON
 * document is read one object, or one item of its array or List, at a time, and YAML one document at a
 * time). The format is detected per source unless given.
 * Bad lines are counted by reason and the first few are kept with their file and line number; with
 * `strict`, the first bad line ends the run with that message.
 */
import { createReadStream, fstatSync, open as fsOpen, read as fsRead, readSync } from 'node:fs';
import { Socket } from 'node:net';
import type { FileHandle } from 'node:fs/promises';
import { open, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { constants } from 'node:buffer';
import { constants as zlibConstants, createGunzip } from 'node:zlib';
import { Composer, Parser } from 'yaml';
import type { Document } from 'yaml';
import { flattenLists, InputError, kindlessItem, listItem, parseObjectsText } from '../model/snapshot.ts';
import { DUPLICATE_KEY_MESSAGE, firstDuplicateKey, YAML_COMPOSE_OPTIONS } from '../model/yaml-keys.ts';
import { JsonObjectSplitter, ListItems } from '../model/stream.ts';
import type { ListHead } from '../model/stream.ts';
import { hasLoopbackEnd } from './common.ts';
import type { DedupOptions } from './dedup.ts';
import { Deduplicator } from './dedup.ts';
import type { DirectionRule } from './direction.ts';
import { DIRECTION_RULES } from './direction.ts';
import type { BadReason, SkipReason } from './errors.ts';
import { FlowInputError } from './errors.ts';
import { parseGenericFlow, parseGenericLine } from './generic.ts';
import { parseHubbleLine } from './hubble-scan.ts';
import type { DuplicateSink } from './hubble-wasm.ts';
import type { HubbleLineHandler } from './hubble-wasm.ts';
import { holdWasmScanner, hubbleInput, scanHubbleBlock, scanHubbleInput } from './hubble-wasm.ts';
import type { HubbleResult } from './hubble.ts';
import { normalizeHubbleRecord } from './hubble.ts';
import type { HubbleEventKind } from './hubble.ts';
import { looksLikeGadgetEvent, parseGadgetEvent } from './inspektor-gadget.ts';
import { isNetworkNeighborhood, parseNetworkNeighborhood } from './kubescape.ts';
import {
  alertSourceText,
  isNetworkPolicyKind,
  notFlowLine,
  notFlowRecord,
  otherKubernetesKind,
} from './not-flows.ts';
import type { Flow } from './types.ts';

export type FlowFormat = 'hubble' | 'generic' | 'inspektor-gadget' | 'kubescape';
export const FLOW_FORMATS: readonly FlowFormat[] = ['hubble', 'generic', 'inspektor-gadget', 'kubescape'];

export interface ReadFlowsOptions {
  /** Input format of every source; 'auto' (default) detects it per source. */
  format?: FlowFormat | 'auto';
  /** Fail on the first bad line instead of counting it. */
  strict?: boolean;
  /** How many bad lines to keep as samples (default 5). */
  maxSamples?: number;
  /** De-duplication settings, or false to emit every observation. */
  dedup?: DedupOptions | false;
  /** What `-` reads (default process.stdin). */
  stdin?: AsyncIterable<Buffer | string | Uint8Array>;
  /** Bytes read at a time (default 1 MiB); the buffer grows for a longer line. */
  blockSize?: number;
  /**
   * What a source of nothing but network policies (NetworkPolicy, the cluster-wide tiers) is told, after
   * it is named as such, not flows: where the command takes them (`give it as --policies`). Default:
   * that network policies are read from the cluster snapshot (`--cluster`).
   */
  policiesAdvice?: string;
}

/** What a source of nothing but network policies is told, without ReadFlowsOptions.policiesAdvice. */
const POLICIES_ADVICE = 'network policies are read from the cluster snapshot: give them in --cluster';

export interface BadLineSample {
  source: string;
  /** 1-based line number; for a multi-line document, the 1-based position of the object. */
  line: number;
  /** Set when `line` is the position of an object of a multi-line document (a Kubescape List). */
  object?: true;
  reason: BadReason;
  message: string;
}

export interface SourceStats {
  source: string;
  format: FlowFormat | 'empty';
  gzip: boolean;
  lines: number;
}

export interface IngestStats {
  sources: SourceStats[];
  /** Non-blank lines read (objects, for documents). */
  lines: number;
  /** Flow observations produced by the parsers, before de-duplication. */
  observations: number;
  /** Flows emitted. */
  flows: number;
  /** Observations merged into an earlier observation of the same connection. */
  duplicates: number;
  /** Times the de-duplication cap forced an early flush. */
  dedupEvictions: number;
  /**
   * Observations that came more than a de-duplication window after later ones (input out of time
   * order) and that may belong to a connection emitted already and no longer remembered (see
   * Deduplicator.late): it may count twice, and a connection dropped at one node and forwarded at
   * another may then look allowed.
   */
  lateObservations: number;
  /** Reply observations turned around to initiator -> responder. */
  repliesFlipped: number;
  /** Hubble observations by the rule that decided their direction. */
  direction: Record<DirectionRule, number>;
  /** Well-formed records deliberately not turned into flows, by reason (health checks, ...). */
  skipped: Partial<Record<SkipReason, number>>;
  /** Hubble non-flow records. */
  events: Record<HubbleEventKind, number>;
  /**
   * Sum of `lost_events.num_events_lost` (events Hubble says it dropped before we saw them), exact: a
   * number, or its decimal digits beyond Number.MAX_SAFE_INTEGER (as protobuf JSON writes 64-bit
   * integers), where a number would not be the sum.
   */
  lostEvents: number | string;
  /** Bad lines by reason. */
  bad: Partial<Record<BadReason, number>>;
  badLines: number;
  /** The first `maxSamples` bad lines. */
  samples: BadLineSample[];
  /** Sources that held nothing. */
  emptySources: string[];
}

export function emptyIngestStats(): IngestStats {
  return {
    sources: [],
    lines: 0,
    observations: 0,
    flows: 0,
    duplicates: 0,
    dedupEvictions: 0,
    lateObservations: 0,
    repliesFlipped: 0,
    direction: Object.fromEntries(DIRECTION_RULES.map((r) => [r, 0])) as Record<DirectionRule, number>,
    skipped: {},
    events: { node_status: 0, lost_events: 0, agent_event: 0, debug_event: 0 },
    lostEvents: 0,
    bad: {},
    badLines: 0,
    samples: [],
    emptySources: [],
  };
}

/** Formats a sample as `file:line: message`, or `file: object N: message` for a document's object. */
export function formatSample(s: BadLineSample): string {
  return s.object ? `${s.source}: object ${s.line}: ${s.message}` : `${s.source}:${s.line}: ${s.message}`;
}

/** A short human summary of a run, one fact per line. */
export function formatIngestStats(s: IngestStats): string {
  const lines = [
    `read ${s.lines} line(s) from ${s.sources.length} source(s): ${s.flows} flow(s) ` +
      `(${s.observations} observation(s), ${s.duplicates} duplicate(s) merged, ${s.repliesFlipped} repl(ies) flipped)`,
  ];
  // Reasons by name, not in the order the input met them.
  const byName = (m: Partial<Record<string, number>>) =>
    Object.keys(m)
      .sort()
      .map((k) => `${k} ${m[k]}`);
  const skipped = byName(s.skipped);
  if (skipped.length > 0) lines.push(`skipped: ${skipped.join(', ')}`);
  const ev = Object.entries(s.events).filter(([, v]) => v > 0);
  if (ev.length > 0)
    lines.push(`hubble events: ${ev.map(([k, v]) => `${k} ${v}`).join(', ')}; events lost: ${s.lostEvents}`);
  if (s.emptySources.length > 0) lines.push(`empty: ${s.emptySources.join(', ')}`);
  if (s.lateObservations > 0)
    lines.push(
      `out of time order: ${s.lateObservations} observation(s) came after later ones by more than the ` +
        `de-duplication window and were not merged with their connection (concatenated files of ` +
        `several nodes? give each file as its own --flows, or sort the lines by time)`,
    );
  if (s.badLines > 0) {
    lines.push(`bad lines: ${s.badLines} (${byName(s.bad).join(', ')})`);
    for (const sample of s.samples) lines.push(`  ${formatSample(sample)}`);
  }
  return lines.join('\n') + '\n';
}

const HUBBLE_KEYS = [
  'flow',
  'node_status',
  'lost_events',
  'agent_event',
  'debug_event',
  'IP',
  'l4',
  'Type',
  'event_type',
];

/** Guesses the format of one parsed JSON-lines record. */
export function detectRecordFormat(o: unknown): FlowFormat | undefined {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return undefined;
  const r = o as Record<string, unknown>;
  for (const k of HUBBLE_KEYS) if (k in r) return 'hubble';
  if (
    isNetworkNeighborhood(r) ||
    (typeof r.kind === 'string' && r.kind.endsWith('List') && Array.isArray(r.items))
  )
    return 'kubescape';
  if (looksLikeGadgetEvent(r)) return 'inspektor-gadget';
  return 'generic';
}

/**
 * Throws the error for a Falco alert or an Alertmanager webhook payload given as flows, when `record`,
 * the record that tells the source's format, is one: said once, for the whole source.
 */
function refuseAlertSource(source: string, record: unknown): void {
  const text = alertSourceText(record);
  if (text !== undefined) throw new InputError(`${source}: ${text}`);
}

/**
 * What a source read as Kubescape (its format detected) has given so far of Kubernetes objects of other
 * kinds: their bad records are held while it may be a cluster snapshot given as flows, which is said once
 * at its end rather than object by object. The first other object (a NetworkNeighborhood) settles it:
 * the records held are reported then, in order, and no more are held.
 */
interface OtherObjects {
  held: { no: number; error: FlowInputError; object: boolean }[];
  kinds: Map<string, number>;
  /** One of them is of a kind Kubernetes defines (a Pod, a Namespace, a Deployment...). */
  core: boolean;
  /** Every one of them is a network policy of an API group Kubernetes defines (see isNetworkPolicyKind). */
  policies: boolean;
  settled: boolean;
}

/** Lines buffered while looking for one that reveals the format. */
const DETECT_MAX_LINES = 1000;

function toBuffer(c: Buffer | string | Uint8Array): Buffer {
  if (Buffer.isBuffer(c)) return c;
  return typeof c === 'string' ? Buffer.from(c) : Buffer.from(c.buffer, c.byteOffset, c.byteLength);
}

/**
 * The UTF-16 encoding bytes start in, if they do: a byte order mark (FF FE little-endian, FE FF
 * big-endian), or, without one, a first character in ASCII with a NUL byte beside it (`{` as
 * `7b 00` or `00 7b`): no text of the formats microseg reads starts with a NUL in UTF-8, and PowerShell
 * redirection (`Out-File -Encoding unicode -NoNewline`, a .NET writer without a preamble) writes UTF-16
 * with no mark.
 */
export function utf16Encoding(b: Uint8Array): 'utf-16le' | 'utf-16be' | undefined {
  if (b.length < 2) return undefined;
  const [b0, b1] = [b[0] ?? 0, b[1] ?? 0];
  if (b0 === 0xff && b1 === 0xfe) return 'utf-16le';
  if (b0 === 0xfe && b1 === 0xff) return 'utf-16be';
  if (b0 !== 0 && b0 < 0x80 && b1 === 0) return 'utf-16le';
  if (b0 === 0 && b1 !== 0 && b1 < 0x80) return 'utf-16be';
  return undefined;
}

/** Whether bytes are UTF-16 text, with or without a byte order mark (see `utf16Encoding`). */
export function startsUtf16(b: Uint8Array): boolean {
  return utf16Encoding(b) !== undefined;
}

/**
 * UTF-16 text, with a byte order mark (what Windows PowerShell's `>` writes:
 * `hubble observe -o jsonpb > flows.jsonl`) or without one (see `utf16Encoding`), as UTF-8 without
 * the mark; any other bytes as they are.
 */
async function* utf8Text(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let decoder: TextDecoder | undefined;
  // The first bytes, held until there are two to tell the encoding by (decompressed text, or a
  // stream, may come a byte at a time); undefined once told.
  let head: Buffer | undefined = Buffer.alloc(0);
  for await (const chunk of chunks) {
    let c = chunk;
    if (head !== undefined) {
      c = head.length === 0 ? c : Buffer.concat([head, c]);
      if (c.length < 2) {
        head = c;
        continue;
      }
      head = undefined;
      const encoding = utf16Encoding(c);
      // The decoder drops a byte order mark at the start, and reads on when there is none.
      if (encoding !== undefined) decoder = new TextDecoder(encoding);
    }
    if (decoder === undefined) yield c;
    else yield Buffer.from(decoder.decode(c, { stream: true }));
  }
  if (head !== undefined && head.length > 0) yield head;
  if (decoder !== undefined) yield Buffer.from(decoder.decode());
}

/**
 * Called when gzip data ends before its end (a file copied or cut while it was written): the bytes
 * decompressed before the cut have been handed on, and reading ends there instead of failing.
 */
export type OnTruncated = (message: string) => void;

/**
 * The bytes of a source, decompressed when they start with the gzip magic (`info.gzip` then becomes
 * true), and as UTF-8 when they are UTF-16 text, with a byte order mark or without. Shared by flow files and
 * cluster snapshot files. Gzip data that cannot be decompressed is an InputError, also when it ends
 * early, unless `onTruncated` is given: then what was decompressed is kept and `onTruncated` told.
 */
export function gunzipIfNeeded(
  src: AsyncIterable<Buffer | string | Uint8Array>,
  info: { source: string; gzip: boolean },
  onTruncated?: OnTruncated,
): AsyncGenerator<Buffer> {
  return utf8Text(gunzipped(src, info, onTruncated));
}

async function* gunzipped(
  src: AsyncIterable<Buffer | string | Uint8Array>,
  info: { source: string; gzip: boolean },
  onTruncated?: OnTruncated,
): AsyncGenerator<Buffer> {
  const it = src[Symbol.asyncIterator]();
  let head: Buffer = Buffer.alloc(0);
  let done = false;
  while (head.length < 2) {
    const r = await it.next();
    if (r.done) {
      done = true;
      break;
    }
    head = head.length === 0 ? toBuffer(r.value) : Buffer.concat([head, toBuffer(r.value)]);
  }
  async function* all(): AsyncGenerator<Buffer> {
    if (head.length > 0) yield head;
    if (done) return;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield toBuffer(r.value);
    }
  }
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) {
    info.gzip = true;
    const gz = createGunzip();
    const input = Readable.from(all());
    input.on('error', (e) => gz.destroy(e));
    input.pipe(gz);
    try {
      for await (const c of gz) yield c as Buffer;
    } catch (err) {
      // zlib's "unexpected end of file": the data stops inside a member. What came before is whole.
      if (onTruncated !== undefined && (err as NodeJS.ErrnoException).code === 'Z_BUF_ERROR') {
        onTruncated(`gzip data ends early (${(err as Error).message}): the file is cut short`);
        return;
      }
      throw new InputError(`${info.source}: cannot decompress: ${(err as Error).message}`);
    }
  } else {
    yield* all();
  }
}

/**
 * The most bytes of text read whole (not as a stream of lines or objects), once decompressed: the
 * longest string JavaScript can hold, so that the text always fits in one.
 */
export const WHOLE_TEXT_LIMIT = constants.MAX_STRING_LENGTH;

export interface WholeTextOptions {
  /** At most this many bytes once decompressed (default WHOLE_TEXT_LIMIT). */
  maxBytes?: number;
  /** The error for more bytes than `maxBytes` (default an InputError naming the source and the limit). */
  tooLarge?: (maxBytes: number) => Error;
  /**
   * The encoding of bytes that start with no byte order mark (a request's declared charset); by
   * default UTF-16 when a NUL byte is beside the first character (`utf16Encoding`), else UTF-8.
   */
  encoding?: string;
}

/**
 * The bytes of decompressed chunks joined, at most `maxBytes` of them: more is an error (by default an
 * InputError naming the source and the limit) as soon as they are read, so gzip data that holds more
 * than can be held is not decompressed in full.
 */
export async function joinBytes(
  chunks: AsyncIterable<Buffer>,
  source: string,
  opts: Pick<WholeTextOptions, 'maxBytes' | 'tooLarge'> = {},
): Promise<Buffer> {
  const maxBytes = opts.maxBytes ?? WHOLE_TEXT_LIMIT;
  const parts: Buffer[] = [];
  let size = 0;
  for await (const c of chunks) {
    size += c.length;
    if (size > maxBytes)
      throw (
        opts.tooLarge?.(maxBytes) ??
        new InputError(
          `${source}: more than ${maxBytes} bytes of text once decompressed, more than microseg reads whole`,
        )
      );
    parts.push(c);
  }
  return Buffer.concat(parts, size);
}

/**
 * Bytes as text, as every reader of microseg takes them: a byte order mark says the encoding (UTF-8,
 * UTF-16LE, UTF-16BE) and is no text; without one, `encoding` when given, else UTF-16 when a NUL byte is
 * beside the first character (`utf16Encoding`), else UTF-8.
 */
export function decodeBytes(bytes: Buffer, encoding?: string): string {
  if (bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf)
    return bytes.toString('utf8', 3);
  const bom =
    bytes.length >= 2 &&
    ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff));
  // The decoder drops a byte order mark at the start, and reads on when there is none.
  const decoding = bom || encoding === undefined ? utf16Encoding(bytes) : encoding;
  return decoding === undefined ? bytes.toString('utf8') : new TextDecoder(decoding).decode(bytes);
}

/**
 * The text the first bytes of a file start with, decoded as `readWholeText` decodes the whole: gzip
 * decompressed as far as these bytes go, then `decodeBytes`; at most `maxBytes` of either, decompressing
 * no further than that (a few hundred bytes of gzip may hold a thousand times as many). For telling what
 * a file is by how it starts (the report.json `recommend` writes) without reading it all; gzip that
 * cannot be decompressed gives no text (the reader of the whole file names the error).
 */
export async function decodeHead(bytes: Buffer, maxBytes: number): Promise<string> {
  let head = bytes;
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) {
    const out: Buffer[] = [];
    let n = 0;
    // Output in pieces of at most maxBytes, stopped at the first that reaches it.
    const gz = createGunzip({
      finishFlush: zlibConstants.Z_SYNC_FLUSH,
      chunkSize: Math.max(zlibConstants.Z_MIN_CHUNK, maxBytes),
    });
    const inflated = await new Promise<boolean>((resolve) => {
      gz.on('data', (chunk: Buffer) => {
        out.push(chunk);
        n += chunk.length;
        if (n < maxBytes) return;
        gz.destroy();
        resolve(true);
      });
      gz.on('end', () => resolve(true));
      gz.on('error', () => resolve(false));
      gz.end(head);
    });
    if (!inflated) return '';
    head = Buffer.concat(out);
  }
  return decodeBytes(head.subarray(0, maxBytes));
}

/**
 * The whole text of a source read at once rather than as a stream (a query file, a YAML cluster file,
 * a request body): gzip decompressed (an InputError naming the source when it cannot be, or ends early),
 * at most `maxBytes` once decompressed (`joinBytes`), then decoded as the flow and snapshot readers
 * decode them (`decodeBytes`).
 */
export async function readWholeText(
  src: AsyncIterable<Buffer | string | Uint8Array>,
  source: string,
  opts: WholeTextOptions = {},
): Promise<string> {
  const bytes = await joinBytes(gunzipped(src, { source, gzip: false }), source, opts);
  return decodeBytes(bytes, opts.encoding);
}

/** What every command says of a path where nothing is. */
export const NO_SUCH_FILE = 'no such file';

/**
 * Why a file could not be read, in words, not as an error code: the same for every input (flows,
 * cluster snapshots and policies, queries).
 */
export function readProblem(err: unknown): string {
  switch ((err as NodeJS.ErrnoException).code) {
    case 'ENOENT':
      return NO_SUCH_FILE;
    case 'EISDIR':
      return 'is a directory';
    case 'ENOTDIR':
      return 'a part of the path is not a directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    default:
      return (err as Error).message;
  }
}

/** The message of an InputError for a file that cannot be read. */
function cannotRead(source: string, err: unknown): InputError {
  return new InputError(`${source}: cannot read: ${readProblem(err)}`);
}

/**
 * Closes a source's bytes once it is read, or left. A read still running (the run stopped on an
 * error, or the reader was left) ends before the reader is closed; one that waits for a producer is
 * ended by closing. A source that fails to close is an InputError naming it only when nothing else
 * went wrong (`failed` false): it never hides the error that stopped the read.
 */
async function closeBytes(
  source: string,
  bytes: ByteReader,
  reading: Promise<number> | undefined,
  failed: boolean,
): Promise<void> {
  try {
    if (bytes.live === true) {
      await bytes.close();
      await reading?.catch(() => 0);
    } else {
      await reading?.catch(() => 0);
      await bytes.close();
    }
  } catch (err) {
    if (failed) return;
    if (err instanceof InputError) throw err;
    throw new InputError(`${source}: cannot close: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** The chunks of a file, or of standard input for '-'; a file that cannot be read is an InputError. */
export function openSource(
  source: string,
  stdin: AsyncIterable<Buffer | string | Uint8Array> | undefined,
): AsyncIterable<Buffer | string | Uint8Array> {
  if (source === '-') return stdin ?? process.stdin;
  return (async function* () {
    const stream = createReadStream(source, { highWaterMark: 1 << 20 });
    try {
      for await (const c of stream) yield c as Buffer;
    } catch (err) {
      throw cannotRead(source, err);
    }
  })();
}

/**
 * Bytes read into a buffer the caller owns and reuses: `read` fills `buf` from `offset` up to its end
 * (or less) and returns how many bytes it wrote, 0 at the end of the source.
 */
interface ByteReader {
  read(buf: Buffer, offset: number): Promise<number>;
  close(): Promise<void>;
  /**
   * True when the next read may start before the bytes of the last one are used, and a run that
   * stops early may leave it running: `close` then ends it (a file's read ends on its own; closing a
   * socket reader ends its read with 0). Stream readers read one chunk at a time instead, so that
   * closing never waits on a chunk a producer may never send.
   */
  readAhead?: boolean;
  /** True when a read may wait for a producer: a run that stops early closes it before waiting. */
  live?: boolean;
  /**
   * A regular file's synchronous read of up to `length` bytes into `buf` at `offset` (0 at the end),
   * used to read Hubble lines straight into the scanner's memory, which no read may still be filling
   * when the scanner runs (its memory can grow, and another reader may use it between two blocks).
   */
  readSync?: (buf: Uint8Array, offset: number, length: number) => number;
}

/** Reads chunks of a stream into the caller's buffer (each chunk copied once). */
function chunkReader(chunks: AsyncIterable<Buffer>): ByteReader {
  const it = chunks[Symbol.asyncIterator]();
  let cur: Buffer | undefined;
  let pos = 0;
  return {
    async read(buf, offset) {
      while (cur === undefined || pos >= cur.length) {
        const r = await it.next();
        if (r.done === true) return 0;
        cur = r.value;
        pos = 0;
      }
      const n = cur.copy(buf, offset, pos);
      pos += n;
      return n;
    },
    async close() {
      await it.return?.();
    },
  };
}

/**
 * A flow source's bytes. A plain file is read straight into the caller's buffer, so a large file
 * allocates nothing per read; standard input as `stdinBytes` reads it; gzip files, pipes given as
 * paths and streams passed in (tests) go through their streams.
 */
async function openBytes(
  source: string,
  stdin: AsyncIterable<Buffer | string | Uint8Array> | undefined,
  info: { source: string; gzip: boolean },
  onTruncated: OnTruncated,
): Promise<ByteReader> {
  if (source === '-')
    // process.stdin itself (the CLI passes it) is read on its descriptor; any other stream as it is.
    return stdin !== undefined && (stdin as { fd?: unknown }).fd !== 0
      ? chunkReader(gunzipIfNeeded(stdin, info, onTruncated))
      : stdinBytes(info, onTruncated);
  // A named pipe (a FIFO, `--flows <(hubble observe ...)`) is read as standard input is, through a
  // socket: a stream's read of it blocks a thread-pool thread until the writer sends more, which keeps
  // the process alive after a run that stopped early (a bad line under strict) while the writer keeps
  // the pipe open; destroying the socket ends its read.
  if ((await stat(source).catch(() => undefined))?.isFIFO() === true) {
    const fd = await new Promise<number>((resolve, reject) =>
      fsOpen(source, 'r', (err, n) => (err ? reject(cannotRead(source, err)) : resolve(n))),
    );
    return sniffedBytes(socketReader(fd, source), info, onTruncated);
  }
  let fh: FileHandle;
  const magic = Buffer.alloc(2);
  try {
    fh = await open(source, 'r');
  } catch (err) {
    throw cannotRead(source, err);
  }
  try {
    const st = await fh.stat();
    if (st.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
    if (!st.isFile()) {
      // A pipe or a device (`--flows <(hubble observe ...)`, a FIFO): read as a stream from the
      // descriptor already open, which cannot seek.
      const chunks = (async function* () {
        try {
          for await (const c of fh.createReadStream({ highWaterMark: 1 << 16 })) yield c as Buffer;
        } catch (err) {
          throw cannotRead(source, err);
        }
      })();
      return chunkReader(gunzipIfNeeded(chunks, info, onTruncated));
    }
    const { bytesRead } = await fh.read(magic, 0, 2, 0);
    if (bytesRead === 2 && ((magic[0] === 0x1f && magic[1] === 0x8b) || startsUtf16(magic))) {
      await fh.close();
      return chunkReader(gunzipIfNeeded(openSource(source, stdin), info, onTruncated));
    }
  } catch (err) {
    await fh.close();
    throw err instanceof InputError ? err : cannotRead(source, err);
  }
  return {
    readAhead: true,
    async read(buf, offset) {
      try {
        return (await fh.read(buf, offset, buf.length - offset, null)).bytesRead;
      } catch (err) {
        throw cannotRead(source, err);
      }
    },
    readSync: (buf, offset, length) => readFdSync(fh.fd, buf, offset, length, source),
    close: () => fh.close(),
  };
}

function readFdSync(fd: number, buf: Uint8Array, offset: number, length: number, source: string): number {
  try {
    return readSync(fd, buf, offset, length, null);
  } catch (err) {
    throw cannotRead(source, err);
  }
}

function readFd(fd: number, buf: Buffer, offset: number): Promise<number> {
  return new Promise((resolve, reject) =>
    fsRead(fd, buf, offset, buf.length - offset, null, (err, n) => (err ? reject(err) : resolve(n))),
  );
}

/** A descriptor that is a regular file, read straight into the caller's buffer. */
function fdReader(fd: number, source: string): ByteReader {
  return {
    readAhead: true,
    async read(buf, offset) {
      try {
        return await readFd(fd, buf, offset);
      } catch (err) {
        throw cannotRead(source, err);
      }
    },
    readSync: (buf, offset, length) => readFdSync(fd, buf, offset, length, source),
    close: () => Promise.resolve(),
  };
}

/**
 * A pipe or socket read through a socket whose reads land in one buffer, reused (a stream would
 * allocate a buffer per 64 KiB read, and that garbage costs more than the reading); the bytes are
 * copied into the caller's buffer. Closing destroys the socket, so a run that stops early does not
 * wait for the producer.
 */
function socketReader(fd: number, source: string): ByteReader {
  let held = Buffer.allocUnsafe(1 << 16);
  let heldLength = 0;
  let ended = false;
  let failure: Error | undefined;
  let waiting: { buf: Buffer; offset: number; resolve(n: number): void; reject(e: Error): void } | undefined;
  /** Reading is stopped because a full buffer is held. */
  let stopped = false;
  const deliver = () => {
    const w = waiting;
    if (w === undefined) return;
    if (heldLength > 0) {
      waiting = undefined;
      const n = held.copy(w.buf, w.offset, 0, Math.min(heldLength, w.buf.length - w.offset));
      held.copyWithin(0, n, heldLength);
      heldLength -= n;
      if (stopped && heldLength < HOLD_MAX) {
        stopped = false;
        socket.resume();
      }
      w.resolve(n);
    } else if (failure !== undefined) {
      waiting = undefined;
      w.reject(cannotRead(source, failure));
    } else if (ended) {
      waiting = undefined;
      w.resolve(0);
    }
  };
  const socket = new Socket({
    fd,
    readable: true,
    writable: false,
    onread: {
      buffer: Buffer.allocUnsafe(1 << 16),
      callback(n: number, buf: Uint8Array) {
        if (heldLength + n > held.length) {
          const bigger = Buffer.allocUnsafe(Math.max(held.length * 2, heldLength + n));
          held.copy(bigger, 0, 0, heldLength);
          held = bigger;
        }
        held.set(buf.subarray(0, n), heldLength);
        heldLength += n;
        deliver();
        // Returning false stops reading until the reader catches up (deliver starts it again: the
        // socket is not paused in the stream's sense, so isPaused() would not tell).
        stopped = heldLength >= HOLD_MAX;
        return !stopped;
      },
    },
  });
  socket.on('end', () => {
    ended = true;
    deliver();
  });
  socket.on('error', (err) => {
    failure = err;
    deliver();
  });
  return {
    live: true,
    readAhead: true,
    read(buf, offset) {
      return new Promise((resolve, reject) => {
        waiting = { buf, offset, resolve, reject };
        deliver();
      });
    },
    close() {
      socket.destroy();
      ended = true;
      deliver();
      return Promise.resolve();
    },
  };
}

/**
 * Closes every source still open (the iterators of their flows), each whatever the others do: a source
 * that fails to close leaves none of them open. What made the run stop (`failed`), if anything, is the
 * error that counts; else the first source, in the order given, that failed to close is the error.
 */
async function closeAll(open: readonly AsyncIterator<unknown>[], failed: boolean): Promise<void> {
  let first: { error: unknown } | undefined;
  for (const it of open) {
    try {
      await it.return?.(undefined);
    } catch (error) {
      first ??= { error };
    }
  }
  if (first !== undefined && !failed) throw first.error;
}

/** Bytes a socket reader holds before it pauses its socket. */
const HOLD_MAX = 1 << 20;

/** The chunks of a byte reader (for gzip input, which is decompressed as a stream). */
async function* readerChunks(first: Buffer, r: ByteReader): AsyncGenerator<Buffer> {
  try {
    yield first;
    for (;;) {
      const b = Buffer.allocUnsafe(1 << 16);
      const n = await r.read(b, 0);
      if (n === 0) return;
      yield b.subarray(0, n);
    }
  } finally {
    await r.close();
  }
}

/**
 * Standard input: a regular file or a pipe is read into the caller's buffer without a buffer
 * allocated per read; a terminal (or anything else) through process.stdin. Gzip input, recognised
 * by its first bytes, is decompressed as a stream.
 */
async function stdinBytes(
  info: { source: string; gzip: boolean },
  onTruncated: OnTruncated,
): Promise<ByteReader> {
  let kind: 'file' | 'pipe' | 'other' = 'other';
  try {
    const st = fstatSync(0);
    kind = st.isFile() ? 'file' : st.isFIFO() || st.isSocket() ? 'pipe' : 'other';
  } catch {
    // No usable descriptor: process.stdin reports what is wrong.
  }
  const r = kind === 'file' ? fdReader(0, '-') : kind === 'pipe' ? socketReader(0, '-') : undefined;
  if (r === undefined) return chunkReader(gunzipIfNeeded(process.stdin, info, onTruncated));
  return sniffedBytes(r, info, onTruncated);
}

/**
 * The bytes of a descriptor reader (standard input, a named pipe), gzip (or UTF-16) input, recognised by
 * its first bytes, decompressed as a stream.
 */
async function sniffedBytes(
  r: ByteReader,
  info: { source: string; gzip: boolean },
  onTruncated: OnTruncated,
): Promise<ByteReader> {
  // The first bytes tell gzip from the rest; they are handed over before anything else is read.
  const head = Buffer.allocUnsafe(1 << 16);
  let got = 0;
  try {
    for (;;) {
      const n = await r.read(head, got);
      got += n;
      if (n === 0 || got >= 2) break;
    }
  } catch (err) {
    await r.close();
    throw err;
  }
  const first = head.subarray(0, got);
  if (got >= 2 && ((first[0] === 0x1f && first[1] === 0x8b) || startsUtf16(first))) {
    const z = chunkReader(gunzipIfNeeded(readerChunks(first, r), info, onTruncated));
    // Closing ends the descriptor's read first: the decompressor may be waiting on it.
    return {
      read: (buf, offset) => z.read(buf, offset),
      close: async () => {
        await r.close();
        await z.close();
      },
    };
  }
  let pos = 0;
  /** Up to `length` of the first bytes not handed over yet, copied into `buf` at `offset`. */
  const fromFirst = (buf: Uint8Array, offset: number, length: number): number => {
    const n = Math.min(length, first.length - pos);
    buf.set(first.subarray(pos, pos + n), offset);
    pos += n;
    return n;
  };
  const rest = r.readSync;
  return {
    live: r.live,
    readAhead: r.readAhead,
    read: (buf, offset) =>
      pos >= first.length
        ? r.read(buf, offset)
        : Promise.resolve(fromFirst(buf, offset, buf.length - offset)),
    ...(rest && {
      readSync: (buf: Uint8Array, offset: number, length: number) =>
        pos >= first.length ? rest(buf, offset, length) : fromFirst(buf, offset, length),
    }),
    close: () => r.close(),
  };
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Bytes read per call from a flow source by default (a line longer than this grows the buffer). */
const READ_BLOCK = 1 << 20;

/** Reads flows from files / stdin. Iterate it (or `batches()`); `stats` fills in as it goes. */
export class FlowReader implements AsyncIterable<Flow> {
  readonly stats: IngestStats = emptyIngestStats();
  private readonly sources: string[];
  private readonly opts: ReadFlowsOptions;
  private readonly maxSamples: number;
  private readonly dedup: Deduplicator | undefined;
  private lost = 0n;
  private started = false;
  /** While sources are merged (`merged`): their flows are handed on as they are, not de-duplicated. */
  private raw = false;
  /** Per source detected as Kubescape, what it gave of Kubernetes objects of other kinds. */
  private readonly otherObjects = new WeakMap<SourceStats, OtherObjects>();

  constructor(sources: string[], opts: ReadFlowsOptions = {}) {
    if (sources.length === 0) throw new InputError('no flow sources given');
    const fmt = opts.format ?? 'auto';
    if (fmt !== 'auto' && !FLOW_FORMATS.includes(fmt))
      throw new InputError(
        `unknown flow format ${JSON.stringify(fmt)} (expected auto, ${FLOW_FORMATS.join(', ')})`,
      );
    this.sources = sources;
    this.opts = opts;
    this.maxSamples = opts.maxSamples ?? 5;
    this.dedup = opts.dedup === false ? undefined : new Deduplicator(opts.dedup);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Flow> {
    for await (const batch of this.batches()) yield* batch;
  }

  /** Flows in batches (one per input chunk), cheaper than one await per flow. */
  async *batches(): AsyncGenerator<Flow[]> {
    if (this.started) throw new Error('a FlowReader can be iterated only once');
    this.started = true;
    // The scanner's memory is given up once every source is read, before the last batch goes out:
    // what the caller does with the flows then (building a graph, proposing policies) has it back.
    const release = holdWasmScanner();
    try {
      if (this.dedup !== undefined && this.sources.length > 1) yield* this.merged(this.dedup);
      else for (const source of this.sources) yield* this.readSource(source);
      release();
      if (this.dedup) {
        const out: Flow[] = [];
        this.dedup.flush(out);
        this.sync();
        if (out.length > 0) yield this.emitted(out);
      }
    } finally {
      release();
    }
  }

  /**
   * Several sources (a node's exporter file each, say) merged by time before de-duplication, so that
   * the observations of one connection at two nodes meet in one window whichever files hold them.
   * Each source is read on its own (without the de-duplicator) and, while its flows come in time
   * order, the one whose next flow is earliest goes first; ties go to the source given first. Within a
   * source, order is kept: what is out of order there is the de-duplication window's to absorb.
   */
  private async *merged(dedup: Deduplicator): AsyncGenerator<Flow[]> {
    this.raw = true;
    const heads = this.sources.map((source) => ({
      it: this.readSource(source)[Symbol.asyncIterator](),
      batch: [] as Flow[],
      at: 0,
      done: false,
    }));
    type Head = (typeof heads)[number];
    /** Whether `h` has a flow to give, reading its next batch when the current one is used up. */
    const ready = async (h: Head): Promise<boolean> => {
      while (!h.done && h.at >= h.batch.length) {
        const r = await h.it.next();
        if (r.done === true) h.done = true;
        else {
          h.batch = r.value;
          h.at = 0;
        }
      }
      return !h.done;
    };
    // The merge ended on an error: closing the other sources then reports nothing over it.
    let failed = false;
    try {
      for (;;) {
        // The source whose next flow is earliest, and the time of the next one's after it.
        let first: Head | undefined;
        let bound = Infinity;
        for (const h of heads) {
          if (h.at >= h.batch.length && !(await ready(h))) continue;
          const t = h.batch[h.at]!.time;
          if (first === undefined || t < first.batch[first.at]!.time) {
            if (first !== undefined) bound = Math.min(bound, first.batch[first.at]!.time);
            first = h;
          } else bound = Math.min(bound, t);
        }
        if (first === undefined) break;
        const out: Flow[] = [];
        const { batch } = first;
        let i = first.at;
        // Its flows up to the others' next one (at least one, so that a tie moves on).
        do dedup.add(batch[i++]!, out);
        while (i < batch.length && batch[i]!.time <= bound);
        first.at = i;
        this.raw = false;
        this.sync();
        if (out.length > 0) yield this.emitted(out);
        this.raw = true;
      }
    } catch (err) {
      failed = true;
      throw err;
    } finally {
      this.raw = false;
      await closeAll(
        heads.filter((h) => !h.done).map((h) => h.it),
        failed,
      );
    }
  }

  /**
   * Whether a source read so far is of `format`. A source's format is known before any of its flows is
   * handed out, so a batch holds flows of `format` only if this is true when it is handed out.
   */
  hasFormat(format: FlowFormat): boolean {
    for (const s of this.stats.sources) if (s.format === format) return true;
    return false;
  }

  /** Reads all flows into an array (for small inputs and tests). */
  async toArray(): Promise<Flow[]> {
    const all: Flow[] = [];
    for await (const b of this.batches()) for (const f of b) all.push(f);
    return all;
  }

  private emitted(out: Flow[]): Flow[] {
    if (!this.raw) this.stats.flows += out.length;
    return out;
  }

  private sync(): void {
    if (this.dedup) {
      this.stats.duplicates = this.dedup.duplicates;
      this.stats.dedupEvictions = this.dedup.evictions;
      this.stats.lateObservations = this.dedup.late;
    }
    const lost = this.lost;
    this.stats.lostEvents = lost <= MAX_SAFE ? Number(lost) : lost.toString();
  }

  private async *readSource(source: string): AsyncGenerator<Flow[]> {
    const info: SourceStats = { source, format: 'empty', gzip: false, lines: 0 };
    this.stats.sources.push(info);
    const forced = this.opts.format && this.opts.format !== 'auto' ? this.opts.format : undefined;
    const decoder = new StringDecoder('utf8');
    let rest = '';
    let lineNo = 0;
    let format: FlowFormat | undefined = forced;
    let documentMode = false;
    const docText: string[] = [];
    // A JSON document read as it arrives (see docChunk), YAML documents too (see yamlChunk); JSON
    // whose second line is a record of its own (see processDocument) is held in docText and read at
    // the end.
    let doc: JsonDocument | undefined;
    let yaml: YamlStream | undefined;
    let pending: { line: string; no: number }[] = [];
    let first = true;

    const handleLine = (line: string, no: number, out: Flow[]): void => {
      if (format === undefined) {
        pending.push({ line, no });
        let parsed: unknown;
        try {
          parsed = JSON.parse(line);
        } catch {
          parsed = undefined;
        }
        const d = detectRecordFormat(parsed);
        if (d === undefined && pending.length < DETECT_MAX_LINES) return;
        if (d === 'generic') refuseAlertSource(source, parsed);
        // A Kubernetes object of another kind (a snapshot's objects as JSON lines) is read as Kubescape
        // reads it, so that a cluster snapshot is said once (otherObjectsEnd); the generic schema has no
        // kind or apiVersion.
        format =
          d === 'generic' && otherKubernetesKind(parsed) !== undefined ? 'kubescape' : (d ?? 'generic');
        info.format = format;
        const p = pending;
        pending = [];
        for (const x of p) this.processLine(source, x.line, x.no, format, out, info);
        return;
      }
      this.processLine(source, line, no, format, out, info);
    };

    const setShape = (shape: 'document' | 'lines', text: string, atEnd: boolean): void => {
      if (shape === 'document') {
        documentMode = true;
        if (streamsAsJson(text, atEnd)) doc = newJsonDocument(source);
        else if (streamsAsYaml(text, atEnd)) yaml = newYamlStream(source);
        // A document in a format given (`--format generic`) is read in it; otherwise its first object
        // tells (see documentObjects).
        if (format === undefined) format = 'kubescape';
        info.format = format;
      } else if (format !== undefined) info.format = format;
    };

    /** Handles the whole lines of `text`; returns what follows the last newline. */
    const wholeLines = (text: string, out: Flow[]): string => {
      let start = 0;
      for (;;) {
        const nl = text.indexOf('\n', start);
        if (nl < 0) break;
        lineNo++;
        let line = text.slice(start, nl);
        start = nl + 1;
        if (line.length > 0 && line.charCodeAt(line.length - 1) === 13) line = line.slice(0, -1);
        if (line.trim() === '') continue;
        info.lines++;
        this.stats.lines++;
        handleLine(line, lineNo, out);
      }
      return text.slice(start);
    };

    // Hubble lines on the byte path: one block of whole lines scanned (`cur` holds them, or, without
    // it, the scanner's input block does), its flows returned.
    const scanHubble = (cur: Buffer | undefined, end: number): Flow[] => {
      const out: Flow[] = [];
      const stats = this.stats;
      // Observations that add nothing to a connection already held are counted without a Flow.
      const sink: DuplicateSink | undefined =
        this.dedup === undefined || this.raw
          ? undefined
          : {
              dedup: this.dedup,
              out,
              duplicate(rule, flipped) {
                lineNo++;
                info.lines++;
                stats.lines++;
                stats.direction[rule]++;
                if (flipped) stats.repliesFlipped++;
                stats.observations++;
              },
            };
      // Unusual lines are decoded and take the string path.
      const onLine: HubbleLineHandler = (r, start, stop, lineBytes) => {
        lineNo++;
        if (r !== undefined) {
          info.lines++;
          stats.lines++;
          this.hubbleResult(source, r, lineNo, out);
          return;
        }
        let line = Buffer.from(lineBytes.buffer, lineBytes.byteOffset, lineBytes.byteLength).toString(
          'utf8',
          start,
          stop,
        );
        if (line.length > 0 && line.charCodeAt(line.length - 1) === 13) line = line.slice(0, -1);
        if (line.trim() === '') return;
        info.lines++;
        stats.lines++;
        handleLine(line, lineNo, out);
      };
      if (cur === undefined) scanHubbleInput(end, onLine, sink);
      else scanHubbleBlock(cur, 0, end, onLine, sink);
      return out;
    };

    // A gzip source cut short: the lines before the cut are read, and the cut is a bad record after them.
    let truncated: string | undefined;
    const bytes = await openBytes(source, this.opts.stdin, info, (message) => (truncated = message));
    // Bytes are read into two buffers in turn, reused: while the whole lines at the front of one are
    // scanned or decoded, the next read fills the other, which starts with the partial line left
    // after the last newline. Only whole lines are decoded, so the decoder never holds part of a
    // character between calls. Once a regular file is known to hold Hubble lines, it is read straight
    // into the scanner's memory instead (below).
    let block = Buffer.allocUnsafeSlow(this.opts.blockSize ?? READ_BLOCK);
    let spare = Buffer.allocUnsafeSlow(block.length);
    let filled = 0;
    let reading: Promise<number> | undefined;
    // The read ended on an error (a close that fails then is not reported over it).
    let failed = false;
    try {
      for (;;) {
        const n = await (reading ?? bytes.read(block, filled));
        reading = undefined;
        if (n === 0) break;
        filled += n;
        // A JSON document read as it arrives takes every byte read, newline or not (one long line).
        const nl = doc !== undefined ? filled - 1 : block.lastIndexOf(10, filled - 1);
        if (nl < 0) {
          if (filled === block.length) {
            const bigger = Buffer.allocUnsafeSlow(block.length * 2);
            block.copy(bigger, 0, 0, filled);
            block = bigger;
          }
          continue;
        }
        const end = nl + 1;
        const cur = block;
        if (spare.length < cur.length) spare = Buffer.allocUnsafeSlow(cur.length);
        filled = cur.copy(spare, 0, end, filled);
        block = spare;
        spare = cur;
        // Hubble lines are scanned on their bytes (WebAssembly).
        const onBytes = format === 'hubble' && pending.length === 0 && !documentMode && !first && rest === '';
        const direct = onBytes && bytes.readSync !== undefined;
        if (bytes.readAhead === true && !direct) reading = bytes.read(block, filled);
        if (onBytes) {
          const scanned = scanHubble(cur, end);
          this.sync();
          if (scanned.length > 0) yield this.emitted(scanned);
          if (!direct) continue;
          // From here on the file is read straight into the scanner's input block, after the partial
          // line left by the block before, and scanned there: no copy. The partial line is copied out
          // (into `block`) between blocks, when another reader may use the scanner.
          const size = block.length;
          for (;;) {
            const input = hubbleInput(filled + size);
            input.set(block.subarray(0, filled));
            const n = bytes.readSync!(input, filled, size);
            if (n === 0) break;
            const total = filled + n;
            const nl = input.lastIndexOf(10, total - 1);
            if (nl >= 0) {
              // The partial line is copied out first: the scan writes after the lines it scans.
              filled = total - nl - 1;
              if (block.length < filled) block = Buffer.allocUnsafeSlow(filled);
              block.set(input.subarray(nl + 1, total));
              const out = scanHubble(undefined, nl + 1);
              this.sync();
              if (out.length > 0) yield this.emitted(out);
            } else {
              // No whole line yet: it is kept, and the next read comes after it.
              if (block.length < total) block = Buffer.allocUnsafeSlow(2 * total);
              block.set(input.subarray(0, total));
              filled = total;
            }
          }
          break;
        }
        let text = rest + decoder.write(cur.subarray(0, end));
        if (first && text.length > 0) {
          if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
          const shape = sourceShape(text, format, false);
          if (shape === undefined) {
            // The lines that tell are not all read yet: kept, and looked at again with the next block.
            rest = text;
            continue;
          }
          first = false;
          setShape(shape, text, false);
        }
        if (documentMode) {
          rest = '';
          if (yaml !== undefined) {
            const out: Flow[] = [];
            this.yamlChunk(yaml, text, false, info, out);
            this.sync();
            if (out.length > 0) yield this.emitted(out);
            continue;
          }
          if (doc === undefined) {
            docText.push(text);
            continue;
          }
          const out: Flow[] = [];
          this.docChunk(doc, text, info, out);
          this.sync();
          if (out.length > 0) yield this.emitted(out);
          continue;
        }
        const out: Flow[] = [];
        rest = wholeLines(text, out);
        this.sync();
        if (out.length > 0) yield this.emitted(out);
      }
    } catch (err) {
      failed = true;
      throw err;
    } finally {
      await closeBytes(source, bytes, reading, failed);
    }
    if (filled > 0) rest += decoder.write(block.subarray(0, filled));
    let tail = rest + decoder.end();
    const out: Flow[] = [];
    if (first && tail.trim() !== '') {
      // Everything read is still undecided (a source of one or two lines, or a first line as long).
      if (tail.charCodeAt(0) === 0xfeff) tail = tail.slice(1);
      setShape(sourceShape(tail, format, true)!, tail, true);
    }
    if (doc !== undefined) {
      this.docChunk(doc, tail, info, out);
      this.docEnd(doc, info, out);
    } else if (yaml !== undefined) {
      this.yamlChunk(yaml, tail, true, info, out);
    } else if (documentMode) {
      docText.push(tail);
      const whole = docText.join('');
      this.processDocument(source, whole, info, out);
    } else {
      tail = wholeLines(tail, out);
      if (tail.trim() !== '') {
        lineNo++;
        info.lines++;
        this.stats.lines++;
        handleLine(tail.endsWith('\r') ? tail.slice(0, -1) : tail, lineNo, out);
      }
      if (pending.length > 0) {
        format = 'generic';
        info.format = format;
        for (const x of pending) this.processLine(source, x.line, x.no, format, out, info);
        pending = [];
      }
    }
    this.otherObjectsEnd(source, info);
    if (truncated !== undefined) {
      // After the lines read before the cut (a partial last line among them), as the next line; in a
      // document, after its objects, as the next object.
      if (documentMode)
        this.badLine(source, info.lines + 1, new FlowInputError('truncated', truncated), true);
      else this.badLine(source, lineNo + 1, new FlowInputError('truncated', truncated));
    } else if (info.lines === 0) this.stats.emptySources.push(source);
    this.sync();
    if (out.length > 0) yield this.emitted(out);
  }

  /**
   * A document read whole: only one whose second line is a record of its own (setShape streams every
   * other JSON document, docChunk, and YAML, yamlChunk), such as JSON lines of NetworkNeighborhood
   * objects after a first line that looks like a document's start (`[1,2]`, `---`, a lone `{`). Read as
   * one document when it parses, else line by line.
   */
  private processDocument(source: string, text: string, info: SourceStats, out: Flow[]): void {
    if (text.trim() === '') {
      info.format = 'empty';
      return;
    }
    let objects: unknown[];
    try {
      objects = parseObjectsText(text, source);
    } catch {
      // JSON lines of NetworkNeighborhood objects (read as one document when forced to Kubescape, or
      // when the first line looked like a document start): read line by line.
      for (const [i, l] of text.split('\n').entries()) {
        if (l.trim() === '') continue;
        info.lines++;
        this.stats.lines++;
        this.processLine(source, l, i + 1, 'kubescape', out, info);
      }
      return;
    }
    this.documentObjects(source, objects, info, out);
  }

  /**
   * The objects of a document, each counted as a line and numbered by its position. Unless the format
   * is given, they are read in the format of the first one (a pretty-printed Inspektor Gadget event,
   * `-o jsonpretty`, or generic record, or an array of them, is no Kubescape object); Kubescape when it
   * tells no other.
   */
  private documentObjects(source: string, objects: readonly unknown[], info: SourceStats, out: Flow[]): void {
    const format = this.documentFormat(
      source,
      objects.find((o) => !(o instanceof FlowInputError)),
    );
    info.format = format;
    for (const [i, o] of objects.entries()) {
      info.lines++;
      this.stats.lines++;
      if (o instanceof FlowInputError) this.badLine(source, i + 1, o, true);
      else if (format === 'kubescape') this.addKubescape(source, i + 1, o, out, info, true);
      else this.addObject(source, i + 1, format, o, out);
    }
  }

  /** The format of a document whose first good object is `first` (see documentObjects). */
  private documentFormat(source: string, first: unknown): FlowFormat {
    const forced = this.forcedFormat();
    // A Falco alert or an Alertmanager payload is no flow of any format: it is said once, for the whole
    // source.
    if (forced === undefined) refuseAlertSource(source, first);
    const detected = forced ?? detectRecordFormat(first);
    // A Kubernetes object of another kind (a cluster snapshot given as flows) is told it is no
    // NetworkNeighborhood, not that apiVersion is an unknown field of the generic schema.
    // So is an item of a list that gave it no kind (kindlessItem) with the metadata of a Kubernetes
    // object (a flow record of a List has none): refused saying why.
    const k8s =
      typeof first === 'object' &&
      first !== null &&
      ('kind' in first ||
        'apiVersion' in first ||
        (kindlessItem(first) !== undefined &&
          typeof (first as { metadata?: unknown }).metadata === 'object'));
    return forced ?? (detected === undefined || (detected === 'generic' && k8s) ? 'kubescape' : detected);
  }

  /**
   * The next text of a JSON document read as it arrives: each object it completes (an object of its
   * own, an element of its array, an item of its List) is read in the document's format, numbered by
   * its position, as documentObjects reads a whole document's; what follows a text that is no JSON is
   * not read. Only the object being read is held.
   */
  private docChunk(doc: JsonDocument, text: string, info: SourceStats, out: Flow[]): void {
    if (doc.stopped || text === '') return;
    // The line of the text's last non-blank character, for the message of a document cut short.
    let last = text.length - 1;
    while (last >= 0 && isBlank(text.charCodeAt(last))) last--;
    const before = doc.newlines;
    let upToLast = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', nl + 1)) {
      doc.newlines++;
      if (nl < last) upToLast++;
    }
    if (last >= 0) doc.lastLine = before + upToLast + 1;
    const texts: string[] = [];
    const heads: (ListHead | undefined)[] = [];
    try {
      doc.splitter.push(Buffer.from(text), texts, heads);
    } catch (err) {
      // The objects that ended before the text went wrong are read, and the rest is one bad record.
      doc.stopped = true;
      for (const [k, t] of texts.entries()) this.docValue(doc, t, info, out, heads[k]);
      this.docItemsEnd(doc, info, out);
      this.flushHeld(doc, info, out);
      const message = (err as Error).message.replace(`${doc.source}: `, '');
      this.docBad(doc, new FlowInputError('invalid-json', message), info, !doc.whole);
      return;
    }
    for (const [k, t] of texts.entries()) this.docValue(doc, t, info, out, heads[k]);
    const ready: unknown[] = [];
    doc.items.release(ready);
    for (const v of ready) this.docParsed(doc, v, info, out);
  }

  /**
   * One value of a document read as it arrives: its objects (a List's items, an array's elements). An
   * item of a top-level list (`head`, its list) without a kind takes the one its list's names
   * (ListItems: a NetworkNeighborhoodList's, `kubectl get --raw`).
   */
  private docValue(doc: JsonDocument, text: string, info: SourceStats, out: Flow[], head?: ListHead): void {
    doc.values++;
    this.flushHeld(doc, info, out);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      // A document of one value that does not parse is one bad document, as when read whole.
      if (doc.values === 1) doc.held = (err as Error).message;
      else
        this.docObject(
          doc,
          new FlowInputError('invalid-json', `invalid JSON: ${(err as Error).message}`),
          info,
          out,
        );
      return;
    }
    const ready: unknown[] = [];
    doc.items.add(value, head, ready, Buffer.byteLength(text));
    for (const v of ready) this.docParsed(doc, v, info, out);
  }

  /** The items held of a document read as it arrives (ListItems), its lists' kinds as far as read. */
  private docItemsEnd(doc: JsonDocument, info: SourceStats, out: Flow[]): void {
    const ready: unknown[] = [];
    doc.items.end(ready);
    for (const v of ready) this.docParsed(doc, v, info, out);
  }

  /** One value of a document read as it arrives, parsed: its objects. */
  private docParsed(doc: JsonDocument, value: unknown, info: SourceStats, out: Flow[]): void {
    let objects: unknown[];
    try {
      objects = flattenLists(value, doc.source);
    } catch (err) {
      objects = [new FlowInputError('invalid-json', (err as Error).message.replace(`${doc.source}: `, ''))];
    }
    for (const o of objects) this.docObject(doc, o, info, out);
  }

  /** The first value, which did not parse, is not the only one: it is an object of the document. */
  private flushHeld(doc: JsonDocument, info: SourceStats, out: Flow[]): void {
    if (doc.held === undefined) return;
    const message = `invalid JSON: ${doc.held}`;
    doc.held = undefined;
    this.docObject(doc, new FlowInputError('invalid-json', message), info, out);
  }

  private docObject(doc: StreamedDocument, o: unknown, info: SourceStats, out: Flow[]): void {
    doc.whole = false;
    info.lines++;
    this.stats.lines++;
    if (o instanceof FlowInputError) {
      this.badLine(doc.source, info.lines, o, true);
      return;
    }
    doc.format ??= this.documentFormat(doc.source, o);
    info.format = doc.format;
    if (doc.format === 'kubescape') this.addKubescape(doc.source, info.lines, o, out, info, true);
    else this.addObject(doc.source, info.lines, doc.format, o, out);
  }

  /**
   * A bad record of a document read as it arrives: after its objects (`object`), or, before any, the
   * document's line 1, as a document read whole that is bad as a whole.
   */
  private docBad(doc: StreamedDocument, err: FlowInputError, info: SourceStats, object: boolean): void {
    doc.whole = false;
    info.lines++;
    this.stats.lines++;
    this.badLine(doc.source, object ? info.lines : 1, err, object);
  }

  /**
   * The next text of YAML read as it arrives (whole lines, but at the end): each document it completes is
   * read as parseObjectsText reads a document (its objects, a List's items, numbered by their position),
   * and dropped. Only the documents being composed are held: the parser hands a document on once the
   * next one begins. A document that does not parse is one bad record after the objects before it (or,
   * before any, the source's line 1, as a document read whole that is bad as a whole), and nothing after
   * it is read, as with JSON.
   */
  private yamlChunk(y: YamlStream, text: string, atEnd: boolean, info: SourceStats, out: Flow[]): void {
    if (y.stopped) return;
    for (const token of y.parser.parse(text, !atEnd)) {
      for (const d of y.composer.next(token)) if (!this.yamlDocument(y, d, info, out)) return;
    }
    if (atEnd) for (const d of y.composer.end()) if (!this.yamlDocument(y, d, info, out)) return;
  }

  /** One composed YAML document: its objects read; false when it does not parse (nothing more is read). */
  private yamlDocument(y: YamlStream, d: Document.Parsed, info: SourceStats, out: Flow[]): boolean {
    const i = ++y.documents;
    const duplicate = firstDuplicateKey(d);
    const first = d.errors[0];
    // The first of the document's problems in the text, as the library's own check said them.
    const err =
      duplicate !== undefined && (first === undefined || first.pos[0] === -1 || duplicate < first.pos[0])
        ? { pos: [duplicate], message: DUPLICATE_KEY_MESSAGE }
        : first;
    let failure: string | undefined;
    let value: unknown;
    if (err !== undefined) {
      const at = err.pos[0] === -1 ? undefined : y.lines.linePos(err.pos[0]);
      failure = at === undefined ? err.message : `${err.message} at line ${at.line}, column ${at.col}`;
    } else {
      try {
        value = d.toJS();
      } catch (e) {
        // Aliases that would expand without bound, an alias to no anchor: the text's fault.
        failure = (e as Error).message;
      }
    }
    if (failure !== undefined) {
      y.stopped = true;
      const message = `YAML document ${i}: ${failure.split('\n')[0]}`;
      this.docBad(y, new FlowInputError('invalid-json', message), info, !y.whole);
      return false;
    }
    // Line starts before this document are needed by no later one's messages.
    y.lines.forgetBefore(d.range[0]);
    if (value === null || value === undefined) return true;
    let objects: unknown[];
    try {
      objects = flattenLists(value, y.source);
    } catch (e) {
      objects = [new FlowInputError('invalid-json', (e as Error).message.replace(`${y.source}: `, ''))];
    }
    for (const o of objects) this.docObject(y, o, info, out);
    return true;
  }

  /** The end of a document read as it arrives: a value still open is a cut. */
  private docEnd(doc: JsonDocument, info: SourceStats, out: Flow[]): void {
    if (doc.stopped) return;
    this.docItemsEnd(doc, info, out);
    const s = doc.splitter;
    const cut = s.insideString || s.openValues > 0;
    if (doc.held !== undefined) {
      if (!cut && doc.values === 1) {
        this.docBad(doc, new FlowInputError('invalid-json', `not valid JSON: ${doc.held}`), info, false);
        return;
      }
      this.flushHeld(doc, info, out);
    }
    if (!cut) return;
    // Objects one after another cut inside one: the whole ones before are read, and the cut is one
    // record after them; otherwise (one object, an array, a List) the cut says where the JSON ends.
    const message =
      s.insideObject && !doc.whole
        ? 'the text ends inside an object: it is cut short'
        : `truncated document: the JSON ends at line ${doc.lastLine}${s.insideString ? ' inside a string,' : ''} ` +
          `with ${s.openValues} object(s) or array(s) still open`;
    this.docBad(doc, new FlowInputError('invalid-json', message), info, !doc.whole);
  }

  /** One object of a document (at position `no`) in a JSON-lines format. */
  private addObject(source: string, no: number, format: FlowFormat, o: unknown, out: Flow[]): void {
    if (format === 'hubble') {
      const r = normalizeHubbleRecord(o);
      if (r.kind === 'bad') this.badLine(source, no, notFlowRecord(o) ?? r.error, true);
      else this.hubbleResult(source, r, no, out);
      return;
    }
    const r = format === 'generic' ? parseGenericFlow(o) : parseGadgetEvent(o);
    if (r instanceof FlowInputError) this.badLine(source, no, notFlowRecord(o) ?? r, true);
    else if ('skip' in r) this.skip(r.skip);
    else if (hasLoopbackEnd(r)) this.skip('loopback');
    else this.addFlow(r, out);
  }

  /** The format given for every source, or undefined when each is detected. */
  private forcedFormat(): FlowFormat | undefined {
    return this.opts.format && this.opts.format !== 'auto' ? this.opts.format : undefined;
  }

  /**
   * `document`: `no` is the position of `o` in a multi-line document, not a line number. While a source
   * detected as Kubescape has given only Kubernetes objects of other kinds, their bad records are held
   * (see OtherObjects and otherObjectsEnd).
   */
  private addKubescape(
    source: string,
    no: number,
    o: unknown,
    out: Flow[],
    info: SourceStats,
    document = false,
  ): void {
    // A list's items without a kind take the one its kind names (a NetworkNeighborhoodList's, as the
    // API serves it: kubectl get --raw), as a cluster snapshot's do.
    const items =
      typeof o === 'object' && o !== null && Array.isArray((o as { items?: unknown }).items)
        ? (o as { items: unknown[] }).items.map((item) => listItem(item, o))
        : [o];
    let others = this.forcedFormat() === undefined ? this.otherObjects.get(info) : undefined;
    if (others === undefined && this.forcedFormat() === undefined) {
      others = { held: [], kinds: new Map(), core: false, policies: true, settled: false };
      this.otherObjects.set(info, others);
    }
    for (const [i, item] of items.entries()) {
      // An item of a list that gave it no kind: why, and what to do, not that it is no NetworkNeighborhood.
      const kindless = kindlessItem(item);
      const r =
        kindless !== undefined
          ? new FlowInputError('missing-field', kindless)
          : parseNetworkNeighborhood(
              item,
              items.length > 1 || items[0] !== o ? `item ${i + 1}` : 'object',
              (reason, n) => {
                for (let k = 0; k < n; k++) this.skip(reason);
              },
            );
      if (others !== undefined && !others.settled) {
        const other = otherKubernetesKind(item);
        if (other !== undefined && r instanceof FlowInputError) {
          others.held.push({ no, error: r, object: document });
          others.kinds.set(other.kind, (others.kinds.get(other.kind) ?? 0) + 1);
          if (other.core) others.core = true;
          if (!isNetworkPolicyKind(other)) others.policies = false;
          continue;
        }
        this.settleOthers(source, others);
      }
      if (r instanceof FlowInputError) {
        // A Kubernetes object of another kind is refused naming its kind already.
        this.badLine(source, no, notFlowRecord(item, false) ?? r, document);
        continue;
      }
      for (const f of r) {
        if (hasLoopbackEnd(f)) this.skip('loopback');
        else this.addFlow(f, out);
      }
    }
  }

  /** The bad records held of Kubernetes objects of other kinds reported, in order; none held after. */
  private settleOthers(source: string, others: OtherObjects): void {
    others.settled = true;
    const held = others.held;
    others.held = [];
    for (const h of held) this.badLine(source, h.no, h.error, h.object);
  }

  /**
   * The end of a source: one that gave only Kubernetes objects of other kinds than NetworkNeighborhood,
   * some of kinds Kubernetes defines, is a cluster snapshot given as flows, an InputError naming it;
   * otherwise the bad records held are reported.
   */
  private otherObjectsEnd(source: string, info: SourceStats): void {
    const others = this.otherObjects.get(info);
    if (others === undefined || others.settled) return;
    this.otherObjects.delete(info);
    if (others.core && others.held.length > 0) {
      const kinds = [...others.kinds]
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([kind, n]) => `${kind} (${n})`)
        .join(', ');
      // Policies alone are more likely meant for where the command takes policies than for --cluster.
      const [what, advice] = others.policies
        ? ['network policies', this.opts.policiesAdvice ?? POLICIES_ADVICE]
        : ['a Kubernetes cluster snapshot', 'give it as --cluster'];
      throw new InputError(
        `${source}: ${what}, not flows: ${others.held.length} object(s) of kinds ` +
          `${kinds} and no NetworkNeighborhood; ${advice}`,
      );
    }
    this.settleOthers(source, others);
  }

  private processLine(
    source: string,
    line: string,
    no: number,
    format: FlowFormat,
    out: Flow[],
    info: SourceStats,
  ): void {
    switch (format) {
      case 'hubble': {
        // A line refused (and only such a line) is looked at again: a record of another kind is named.
        const r = parseHubbleLine(line);
        if (r.kind === 'bad') this.badLine(source, no, notFlowLine(line) ?? r.error);
        else this.hubbleResult(source, r, no, out);
        return;
      }
      case 'generic': {
        const r = parseGenericLine(line);
        if (r instanceof FlowInputError) this.badLine(source, no, notFlowLine(line) ?? r);
        else if (hasLoopbackEnd(r)) this.skip('loopback');
        else this.addFlow(r, out);
        return;
      }
      case 'inspektor-gadget': {
        const parsed = parseJson(line);
        const r = parsed instanceof FlowInputError ? parsed : parseGadgetEvent(parsed);
        if (r instanceof FlowInputError) this.badLine(source, no, notFlowRecord(parsed) ?? r);
        else if ('skip' in r) this.skip(r.skip);
        else this.addFlow(r, out);
        return;
      }
      case 'kubescape': {
        const parsed = parseJson(line);
        if (parsed instanceof FlowInputError) this.badLine(source, no, parsed);
        else this.addKubescape(source, no, parsed, out, info);
        return;
      }
    }
  }

  private hubbleResult(source: string, r: HubbleResult, no: number, out: Flow[]): void {
    switch (r.kind) {
      case 'flow':
        this.stats.direction[r.rule]++;
        if (r.flipped) this.stats.repliesFlipped++;
        this.addFlow(r.flow, out);
        return;
      case 'event':
        this.stats.events[r.event]++;
        this.lost += r.lost;
        return;
      case 'skip':
        this.skip(r.reason);
        return;
      case 'bad':
        this.badLine(source, no, r.error);
        return;
    }
  }

  private addFlow(f: Flow, out: Flow[]): void {
    this.stats.observations++;
    if (this.dedup && !this.raw) this.dedup.add(f, out);
    else out.push(f);
  }

  private skip(reason: SkipReason): void {
    this.stats.skipped[reason] = (this.stats.skipped[reason] ?? 0) + 1;
  }

  private badLine(source: string, line: number, err: FlowInputError, object = false): void {
    const sample: BadLineSample = {
      source,
      line,
      ...(object ? { object: true as const } : {}),
      reason: err.reason,
      message: err.message,
    };
    if (this.opts.strict) throw new InputError(formatSample(sample));
    this.stats.bad[err.reason] = (this.stats.bad[err.reason] ?? 0) + 1;
    this.stats.badLines++;
    if (this.stats.samples.length < this.maxSamples) this.stats.samples.push(sample);
  }
}

/** What a document read as it arrives, JSON or YAML, keeps of its objects. */
interface StreamedDocument {
  readonly source: string;
  /** No object of the document is counted yet: a bad document is still bad as a whole (line 1). */
  whole: boolean;
  /** The text is no JSON (or YAML) past some point: nothing more is read. */
  stopped: boolean;
  /** The document's format, told by its first good object. */
  format: FlowFormat | undefined;
}

/** A JSON document read as it arrives (FlowReader.docChunk). */
interface JsonDocument extends StreamedDocument {
  readonly splitter: JsonObjectSplitter;
  /** The items of its top-level list held until the list's kind is read (ListItems). */
  readonly items: ListItems;
  /** Values the splitter handed out. */
  values: number;
  /** The message of the first value, which did not parse, while it may be the only one. */
  held: string | undefined;
  /** Newlines read, and the line of the last non-blank character read (0 before any). */
  newlines: number;
  lastLine: number;
}

function newJsonDocument(source: string): JsonDocument {
  return {
    source,
    splitter: new JsonObjectSplitter(source),
    // Flow records have no metadata: only a Kubernetes object waits for its list's kind.
    items: new ListItems((v) => typeof (v as { metadata?: unknown } | null)?.metadata === 'object'),
    values: 0,
    whole: true,
    held: undefined,
    stopped: false,
    format: undefined,
    newlines: 0,
    lastLine: 0,
  };
}

/** YAML read as it arrives, one document at a time (FlowReader.yamlChunk). */
interface YamlStream extends StreamedDocument {
  readonly parser: Parser;
  readonly composer: Composer;
  readonly lines: LineStarts;
  /** Documents composed so far (empty ones too), for messages. */
  documents: number;
}

function newYamlStream(source: string): YamlStream {
  const lines = new LineStarts();
  return {
    source,
    parser: new Parser(lines.add),
    // Keys given twice are looked for in one pass (yaml-keys.ts), not by the library's check, which
    // takes the square of a map's keys.
    composer: new Composer(YAML_COMPOSE_OPTIONS),
    lines,
    documents: 0,
    whole: true,
    stopped: false,
    format: undefined,
  };
}

/**
 * Where the lines of YAML read as it arrives start, for the line and column of a message, as the yaml
 * package's LineCounter tells them; those before the document being read are dropped (counted only), so
 * that a long stream does not hold one number per line.
 */
class LineStarts {
  private starts: number[] = [];
  /** Line starts dropped from the front of `starts`. */
  private dropped = 0;

  readonly add = (offset: number): void => {
    // The parser tells offset 0 again when its first chunk gave it no whole token.
    const last = this.starts.at(-1);
    if (last === undefined || offset > last) this.starts.push(offset);
  };

  /** Drops the line starts before the line holding `offset`. */
  forgetBefore(offset: number): void {
    let n = 0;
    while (n + 1 < this.starts.length && this.starts[n + 1]! <= offset) n++;
    if (n === 0) return;
    this.starts.splice(0, n);
    this.dropped += n;
  }

  /** The 1-based line and column of `offset`, as LineCounter.linePos gives them. */
  linePos(offset: number): { line: number; col: number } {
    let low = 0;
    let high = this.starts.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (this.starts[mid]! < offset) low = mid + 1;
      else high = mid;
    }
    if (this.starts[low] === offset) return { line: this.dropped + low + 1, col: 1 };
    if (low === 0) return { line: this.dropped, col: offset };
    return { line: this.dropped + low, col: offset - this.starts[low - 1]! + 1 };
  }
}

function isBlank(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/**
 * Whether a document is JSON read as it arrives: it starts with `{` or `[`, and its second non-blank
 * line is not a record of its own (JSON lines of NetworkNeighborhood objects after a bad first line are
 * read whole, see processDocument).
 */
function streamsAsJson(text: string, atEnd: boolean): boolean {
  const t = text.trimStart();
  if (t.charCodeAt(0) !== 123 && t.charCodeAt(0) !== 91) return false;
  const second = leadingLines(text, atEnd)[1];
  return second === undefined || parsedRecord(second) === undefined;
}

/**
 * Whether a document is YAML read as it arrives: it does not start with `{` or `[` (JSON), and its
 * second non-blank line is not a record of its own (JSON lines after a first line such as `---` are
 * read whole, see processDocument).
 */
function streamsAsYaml(text: string, atEnd: boolean): boolean {
  const t = text.trimStart();
  if (t.charCodeAt(0) === 123 || t.charCodeAt(0) === 91) return false;
  const second = leadingLines(text, atEnd)[1];
  return second === undefined || parsedRecord(second) === undefined;
}

/** A pretty-printed JSON document or YAML starts like this; JSON lines start with a complete `{...`. */
function looksLikeDocument(firstLine: string): boolean {
  return firstLine.startsWith('[') || firstLine === '{' || /^(---|apiVersion:|kind:|items:)/.test(firstLine);
}

/**
 * Whether a source is one document (a Kubescape object or List: pretty-printed JSON, or YAML) or JSON
 * lines, told from its first two non-blank lines: the first looks like a document's start, and the
 * second is not a record of its own (in a document it is `"apiVersion": ...` or `kind: ...`). A bad
 * first line (`[1,2]`, `---`, a lone `{`) must not turn a file of JSON lines into one document; JSON
 * lines of NetworkNeighborhood objects after such a line stay a document (read line by line when it
 * does not parse, see processDocument). Given as Kubescape, a source is a document unless its first two
 * lines are records of their own. Undefined while those lines are not all in `text` (all are `atEnd`).
 */
function sourceShape(
  text: string,
  format: FlowFormat | undefined,
  atEnd: boolean,
): 'document' | 'lines' | undefined {
  const [first, second] = leadingLines(text, atEnd);
  if (first === undefined) return atEnd ? 'lines' : undefined;
  if (!looksLikeDocument(first) && format !== 'kubescape') return 'lines';
  if (second === undefined) return atEnd ? 'document' : undefined;
  // Given as Kubescape, JSON lines (two records of their own) are read as lines, as they arrive.
  if (format === 'kubescape')
    return parsedRecord(first) !== undefined && parsedRecord(second) !== undefined ? 'lines' : 'document';
  const record = parsedRecord(second);
  // A format given (other than Kubescape) is read in lines whenever the second line is a record.
  return record !== undefined && (format !== undefined || detectRecordFormat(record) !== 'kubescape')
    ? 'lines'
    : 'document';
}

/**
 * The first two non-blank lines of `text` that are no YAML comment (`#`, which no JSON line starts with:
 * a YAML file under a comment header, as `recommend` writes its policy files, is still told by its first
 * lines), trimmed; only whole ones (ended by a newline) unless `atEnd`.
 */
function leadingLines(text: string, atEnd: boolean): string[] {
  const found: string[] = [];
  let start = 0;
  while (found.length < 2 && start < text.length) {
    let nl = text.indexOf('\n', start);
    if (nl < 0) {
      if (!atEnd) break;
      nl = text.length;
    }
    const line = text.slice(start, nl).trim();
    if (line !== '' && !line.startsWith('#')) found.push(line);
    start = nl + 1;
  }
  return found;
}

/** The object a line holds on its own, or undefined. */
function parsedRecord(line: string): object | undefined {
  if (line.charCodeAt(0) !== 123) return undefined;
  try {
    const v: unknown = JSON.parse(line);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

function parseJson(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch (err) {
    return new FlowInputError('invalid-json', `invalid JSON: ${(err as Error).message}`);
  }
}

/** Reads flows from one or more sources (paths, gzip files, `-` for stdin). */
export function readFlows(sources: string | string[], opts: ReadFlowsOptions = {}): FlowReader {
  return new FlowReader(typeof sources === 'string' ? [sources] : sources, opts);
}
