/**
 * Parsing of request bodies that hold Kubernetes objects (`POST /audit`) off the event loop, in a
 * worker thread. A large YAML body takes seconds to parse (a 7 MB `kubectl kustomize` build, about
 * four); on the main thread that would hold everything else the process does meanwhile: the
 * controller's reconciles and lease renewals, the isolation webhooks, the other requests. The thread's
 * heap is capped, so a body that needs more memory than that to parse fails alone (an `InputError`
 * naming it) instead of taking the process with it. Its stack holds YAML as deep as is read
 * (DEEP_STACK_MB), so it reads every body itself: a second thread, as the CLI starts for YAML too deep
 * for its stack, would not be held to that cap.
 *
 * One thread, started at the first request and not kept alive for its own sake: it holds the process
 * open only while it parses (ref'd then, unref'd once nothing waits), so a process that stops its
 * server exits as it did before it parsed anything. Requests wait here and go to the thread one at a
 * time, in the order sent, so a request whose caller gives up (its signal aborts: the client went away)
 * is dropped before its body reaches the thread; one the thread is parsing stops it, and the next go
 * to a new thread. When the thread dies (out of memory), the request it was parsing fails and the
 * others go to a new thread.
 */
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { DEEP_STACK_MB, InputError } from '../model/snapshot.ts';
import type { AuditBody, EncodedAuditBody } from './audit-body.ts';
import { decodeAuditBodySteps } from './audit-body.ts';
import { runInSlices } from './slices.ts';

/**
 * The policies of a body `parseAudit` answered, read on the main thread one at a time, in slices:
 * thousands of policies read at once held the event loop. Once `signal` aborts, no slice more is read
 * (StepsAbandoned, see slices.ts).
 */
export function readAuditBody(encoded: EncodedAuditBody, signal?: AbortSignal): Promise<AuditBody> {
  return runInSlices(decodeAuditBodySteps(encoded), { signal });
}

export interface ParseRequest {
  id: number;
  text: string;
  source: string;
  /** Answer with what `POST /audit` takes of the objects (`auditBodyOf`), not with the objects. */
  audit: boolean;
}

/** `value`: the objects, or the `AuditBody` of an `audit` request. */
export type ParseReply = { id: number; value: unknown } | { id: number; error: string; input: boolean };

/**
 * The parsing thread's old-generation heap, in MB (a 7 MB YAML body needs about 120). Beside the
 * controller's own heap (`--max-old-space-size=768` in manifests/deployment.yaml) it stays within the
 * pod's 1 GiB limit.
 */
export const PARSE_HEAP_MB = 192;

/**
 * How long the thread may take over one body, in ms: a body that takes longer is refused and the thread
 * stopped, so that it holds the single parsing thread (and the requests behind it) no longer. An 8 MiB
 * YAML body takes a few seconds.
 */
export const PARSE_TIME_LIMIT_MS = 20_000;

/** Requests not yet answered beyond which `POST /audit` is refused for now (see `waiting`). */
export const PARSE_QUEUE_LIMIT = 4;

interface Pending {
  request: ParseRequest;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

interface Thread {
  worker: Worker;
  /** The request the thread is parsing. */
  current: Pending | undefined;
  /** The current request's caller gave up: the thread was stopped for it. */
  abandoned: boolean;
  /** The thread's heap grew past the parser's cap (see `HEAP_WATCH_MS`): it was stopped for that. */
  overHeap: boolean;
  /** The current request took longer than the parser's time limit: the thread was stopped for it. */
  overTime: boolean;
  /** Stops the thread when the current request is not answered in time. */
  timer: NodeJS.Timeout | undefined;
  /** Its heap is being read after an answer (see RETIRE_HEAP_SHARE): nothing is sent to it meanwhile. */
  checking: boolean;
}

/**
 * How often the parsing thread's heap is looked at while it parses, in ms. Its `resourceLimits` cap
 * it only when the process is started without `--max-old-space-size` (as the controller's Deployment
 * starts it): that flag is V8's for every thread and wins over them (nodejs/node#43991), so the
 * thread would grow to the process's own limit beside the main thread's. A thread whose heap is seen
 * above the cap is stopped as one that ran out of memory.
 */
export const HEAP_WATCH_MS = 50;

/**
 * After each answer the thread's heap is read; above this share of the cap the thread is let go and the
 * next body gets a new one, so that what a large body left (garbage not collected yet, which the heap
 * watch cannot tell from live memory) does not count against the next.
 */
export const RETIRE_HEAP_SHARE = 0.25;

/** The error of a request whose caller gave up before it was answered (see `parse`'s signal). */
export class ParseAbandoned extends Error {
  constructor(source: string) {
    super(`${source}: not parsed: the request was abandoned`);
    this.name = 'ParseAbandoned';
  }
}

export class ObjectsParser {
  readonly #heapMb: number;
  readonly #stackMb: number;
  readonly #timeLimitMs: number;
  readonly #workerFile: URL | undefined;
  #thread: Thread | undefined;
  /** Requests not sent to the thread yet, in the order sent. */
  readonly #queue: Pending[] = [];
  #next = 0;
  #closed = false;

  /**
   * `stackMb`: the thread's stack (DEEP_STACK_MB, which holds MAX_NESTING levels); tests make it smaller.
   * `timeLimitMs`: PARSE_TIME_LIMIT_MS unless given. `workerFile`: the thread's module, parse-worker's
   * unless given (tests give one that is slow on purpose).
   */
  constructor(opts: { heapMb?: number; stackMb?: number; timeLimitMs?: number; workerFile?: URL } = {}) {
    this.#heapMb = opts.heapMb ?? PARSE_HEAP_MB;
    this.#stackMb = opts.stackMb ?? DEEP_STACK_MB;
    this.#timeLimitMs = opts.timeLimitMs ?? PARSE_TIME_LIMIT_MS;
    this.#workerFile = opts.workerFile;
  }

  /**
   * `parseObjectsText(text, source)`, in the parsing thread. When `signal` aborts before the answer,
   * the request is dropped (or, being parsed, stopped) and fails with `ParseAbandoned`.
   */
  parse(text: string, source: string, signal?: AbortSignal): Promise<unknown[]> {
    return this.#send(text, source, false, signal) as Promise<unknown[]>;
  }

  /**
   * `auditBodyOf` the objects of `text`, read in the parsing thread too: only the policies and the
   * counts of the other objects come back, encoded (read them with `readAuditBody`), and a malformed
   * object is refused there. `signal` as for `parse`.
   */
  parseAudit(text: string, source: string, signal?: AbortSignal): Promise<EncodedAuditBody> {
    return this.#send(text, source, true, signal) as Promise<EncodedAuditBody>;
  }

  #send(text: string, source: string, audit: boolean, signal?: AbortSignal): Promise<unknown> {
    if (this.#closed) return Promise.reject(new Error('the body parser is closed'));
    if (signal?.aborted) return Promise.reject(new ParseAbandoned(source));
    return new Promise((resolve, reject) => {
      const done = () => signal?.removeEventListener('abort', abandon);
      const p: Pending = {
        request: { id: this.#next++, text, source, audit },
        resolve: (value) => {
          done();
          resolve(value);
        },
        reject: (err) => {
          done();
          reject(err);
        },
      };
      const abandon = () => this.#abandon(p);
      signal?.addEventListener('abort', abandon, { once: true });
      this.#queue.push(p);
      this.#pump();
    });
  }

  /** Requests sent and not answered yet (waiting, or being parsed): each holds its text until then. */
  get waiting(): number {
    return this.#queue.length + (this.#thread?.current === undefined ? 0 : 1);
  }

  /** Stops the thread; requests not answered yet fail. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const p of this.#queue.splice(0)) p.reject(new Error('the body parser is closed'));
    const t = this.#thread;
    this.#thread = undefined;
    if (t) await t.worker.terminate();
  }

  /** Sends the next request waiting when the thread is free. */
  #pump(): void {
    if (this.#closed || this.#queue.length === 0) return;
    const t = this.#thread ?? this.#start();
    if (t.current !== undefined || t.checking) return;
    const p = this.#queue.shift()!;
    t.current = p;
    // Held open while it has an answer to give (see the 'message' handler, which lets it go).
    t.worker.ref();
    t.worker.postMessage(p.request);
    // Its exit fails the request (see fail); the thread, ref'd while it parses, holds the process open.
    t.timer = setTimeout(() => {
      if (t.current !== p) return;
      t.overTime = true;
      void t.worker.terminate();
    }, this.#timeLimitMs);
    t.timer.unref();
  }

  #abandon(p: Pending): void {
    const i = this.#queue.indexOf(p);
    if (i >= 0) {
      this.#queue.splice(i, 1);
      p.reject(new ParseAbandoned(p.request.source));
      return;
    }
    const t = this.#thread;
    if (t?.current === p) {
      // Its exit fails it (see fail) and starts the next on a new thread.
      t.abandoned = true;
      void t.worker.terminate();
    }
  }

  #start(): Thread {
    // parse-worker.ts beside this file in the sources, parse-worker.js once built.
    const file =
      this.#workerFile ??
      new URL(`./parse-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url);
    const worker = new Worker(file, {
      resourceLimits: { maxOldGenerationSizeMb: this.#heapMb, stackSizeMb: this.#stackMb },
    });
    const t: Thread = {
      worker,
      current: undefined,
      abandoned: false,
      overHeap: false,
      overTime: false,
      timer: undefined,
      checking: false,
    };
    const cap = this.#heapMb * 1024 * 1024;
    const watch = setInterval(() => {
      const p = t.current;
      if (p === undefined || t.overHeap) return;
      worker.getHeapStatistics().then(
        (h) => {
          // A reading asked for during an earlier request says nothing of this one.
          if (h.used_heap_size <= cap || t.current !== p || t.overHeap) return;
          t.overHeap = true;
          void worker.terminate();
        },
        // Stopped meanwhile: its exit says so.
        () => undefined,
      );
    }, HEAP_WATCH_MS);
    watch.unref();
    // A 'message' listener refs the worker's port (node:worker_threads), whatever unref() said before
    // it: idle, the thread is let go here and when it has answered all it was sent.
    worker.on('message', (r: ParseReply) => {
      const p = t.current;
      // Stopped for an abandoned request: its exit settles that one (see fail), and nothing more is
      // sent to it.
      // Stopped for its heap: its exit fails the request it was on (see fail), answered or not.
      // Stopped for its time: the same.
      if (t.abandoned || t.overHeap || t.overTime || p?.request.id !== r.id) return;
      clearTimeout(t.timer);
      t.current = undefined;
      if (this.#queue.length === 0) worker.unref();
      if ('value' in r) p.resolve(r.value);
      else p.reject(r.input ? new InputError(r.error) : new Error(r.error));
      t.checking = true;
      const next = (retire: boolean) => {
        t.checking = false;
        if (retire && this.#thread === t) {
          // Its exit finds no request on it (see fail); the next body starts a new thread.
          this.#thread = undefined;
          void worker.terminate();
        }
        this.#pump();
      };
      worker.getHeapStatistics().then(
        (h) => next(h.used_heap_size > cap * RETIRE_HEAP_SHARE),
        () => next(false),
      );
    });
    let failed = false;
    const fail = (err: Error | undefined): void => {
      if (failed) return;
      failed = true;
      clearInterval(watch);
      clearTimeout(t.timer);
      if (this.#thread === t) this.#thread = undefined;
      const current = t.current;
      t.current = undefined;
      if (current !== undefined) {
        const oom =
          t.overHeap || (err as { code?: unknown } | undefined)?.code === 'ERR_WORKER_OUT_OF_MEMORY';
        current.reject(
          t.abandoned
            ? new ParseAbandoned(current.request.source)
            : oom
              ? new InputError(
                  `${current.request.source}: too large to parse: it needs more than the parser's ${this.#heapMb} MB of memory`,
                )
              : t.overTime
                ? new InputError(
                    `${current.request.source}: too slow to parse: not parsed within the parser's ${this.#timeLimitMs / 1000} s`,
                  )
                : this.#closed
                  ? new Error('the body parser is closed')
                  : (err ?? new Error('the body parser stopped')),
        );
      }
      // The others waiting go to a new thread.
      this.#pump();
    };
    worker.on('error', fail);
    worker.on('exit', () => fail(undefined));
    // An answer that could not be read names no request: the thread is replaced, the request it was
    // on fails, and the others go to the new one.
    worker.on('messageerror', (err) => {
      void worker.terminate();
      fail(err);
    });
    worker.unref();
    this.#thread = t;
    return t;
  }
}
