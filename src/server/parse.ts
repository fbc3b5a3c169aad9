/**
 * Parsing of request bodies that hold Kubernetes objects (`POST /audit`) off the event loop, in a
 * worker thread. A large YAML body takes seconds to parse (a 7 MB `kubectl kustomize` build, about
 * four); on the main thread that would hold everything else the process does meanwhile: the
 * controller's reconciles and lease renewals, the isolation webhooks, the other requests. The thread's
 * heap is capped, so a body that needs more memory than that to parse fails alone (an `InputError`
 * naming it) instead of taking the process with it.
 *
 * One thread, started at the first request and not kept alive for its own sake: it holds the process
 * open only while a request waits for its answer (ref'd then, unref'd once it has none), so a process
 * that stops its server exits as it did before it parsed anything. Requests are parsed in the order
 * sent. When the thread dies (out of memory), the request it was parsing fails and the others are sent
 * to a new thread.
 */
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { InputError } from '../model/snapshot.ts';

export interface ParseRequest {
  id: number;
  text: string;
  source: string;
}

export type ParseReply = { id: number; objects: unknown[] } | { id: number; error: string; input: boolean };

/**
 * The parsing thread's old-generation heap, in MB (a 7 MB YAML body needs about 120). Beside the
 * controller's own heap (`--max-old-space-size=768` in manifests/deployment.yaml) it stays within the
 * pod's 1 GiB limit.
 */
export const PARSE_HEAP_MB = 192;

/** Requests not yet answered beyond which `POST /audit` is refused for now (see `waiting`). */
export const PARSE_QUEUE_LIMIT = 4;

interface Pending {
  request: ParseRequest;
  resolve: (objects: unknown[]) => void;
  reject: (err: Error) => void;
}

export class ObjectsParser {
  readonly #heapMb: number;
  #thread: { worker: Worker; pending: Map<number, Pending> } | undefined;
  #next = 0;
  #closed = false;

  constructor(opts: { heapMb?: number } = {}) {
    this.#heapMb = opts.heapMb ?? PARSE_HEAP_MB;
  }

  /** `parseObjectsText(text, source)`, in the parsing thread. */
  parse(text: string, source: string): Promise<unknown[]> {
    if (this.#closed) return Promise.reject(new Error('the body parser is closed'));
    return new Promise((resolve, reject) =>
      this.#send({ request: { id: this.#next++, text, source }, resolve, reject }),
    );
  }

  /** Requests sent and not answered yet: each holds its text until the thread has parsed it. */
  get waiting(): number {
    return this.#thread?.pending.size ?? 0;
  }

  /** Stops the thread; requests not answered yet fail. */
  async close(): Promise<void> {
    this.#closed = true;
    const t = this.#thread;
    this.#thread = undefined;
    if (t) await t.worker.terminate();
  }

  #send(p: Pending): void {
    const t = this.#thread ?? this.#start();
    t.pending.set(p.request.id, p);
    // Held open while it has an answer to give (see the 'message' handler, which lets it go).
    t.worker.ref();
    t.worker.postMessage(p.request);
  }

  #start(): { worker: Worker; pending: Map<number, Pending> } {
    // parse-worker.ts beside this file in the sources, parse-worker.js once built.
    const file = new URL(`./parse-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url);
    const worker = new Worker(file, { resourceLimits: { maxOldGenerationSizeMb: this.#heapMb } });
    const t = { worker, pending: new Map<number, Pending>() };
    // A 'message' listener refs the worker's port (node:worker_threads), whatever unref() said before
    // it: idle, the thread is let go here and when it has answered all it was sent.
    worker.on('message', (r: ParseReply) => {
      const p = t.pending.get(r.id);
      if (!p) return;
      t.pending.delete(r.id);
      if (t.pending.size === 0) worker.unref();
      if ('objects' in r) p.resolve(r.objects);
      else p.reject(r.input ? new InputError(r.error) : new Error(r.error));
    });
    let failed = false;
    const fail = (err: Error | undefined): void => {
      if (failed) return;
      failed = true;
      if (this.#thread === t) this.#thread = undefined;
      const waiting = [...t.pending.values()];
      t.pending.clear();
      // The thread parses in the order sent: the first still waiting is the one it died on.
      const [current, ...rest] = waiting;
      if (current === undefined) return;
      const oom = (err as { code?: unknown } | undefined)?.code === 'ERR_WORKER_OUT_OF_MEMORY';
      current.reject(
        oom
          ? new InputError(
              `${current.request.source}: too large to parse: it needs more than the parser's ${this.#heapMb} MB of memory`,
            )
          : (err ?? new Error('the body parser stopped')),
      );
      for (const p of rest)
        if (this.#closed) p.reject(new Error('the body parser is closed'));
        else this.#send(p);
    };
    worker.on('error', fail);
    worker.on('exit', () => fail(undefined));
    // An answer that could not be read names no request: the thread is replaced, the request it was
    // on fails, and the others are sent again.
    worker.on('messageerror', (err) => {
      void worker.terminate();
      fail(err);
    });
    worker.unref();
    this.#thread = t;
    return t;
  }
}
