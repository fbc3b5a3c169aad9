/** Where a command writes, so tests can capture output without spawning a process. */
export interface CliIO {
  out(text: string): void;
  err(text: string): void;
  /** True when stderr is a terminal (progress bars are drawn only then). */
  isTTY: boolean;
  /** Standard input, for `-` as a file name. */
  stdin: NodeJS.ReadableStream;
}

export function processIO(): CliIO {
  return {
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
    isTTY: process.stderr.isTTY === true,
    stdin: process.stdin,
  };
}

export function captureIO(stdin?: NodeJS.ReadableStream): CliIO & { stdout: string; stderr: string } {
  const io = {
    stdout: '',
    stderr: '',
    isTTY: false,
    stdin: stdin ?? process.stdin,
    out: (t: string) => {
      io.stdout += t;
    },
    err: (t: string) => {
      io.stderr += t;
    },
  };
  return io;
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Exit codes of every command. */
export const EXIT = {
  ok: 0,
  /** The run finished but found a problem worth failing a pipeline on (e.g. a proposal blocks a flow). */
  findings: 1,
  /** Bad usage or bad input. */
  usage: 2,
  /** An unexpected internal error. */
  internal: 3,
} as const;

/**
 * Writes text given in pieces through `write`, about 1 MiB at a time, so that a large output (a graph
 * of 100k edges is tens of MB) is never held whole; each write is awaited before the next.
 */
export async function writePieces(
  pieces: Iterable<string>,
  write: (chunk: string) => Promise<unknown> | void,
): Promise<void> {
  let batch: string[] = [];
  let size = 0;
  for (const piece of pieces) {
    batch.push(piece);
    size += piece.length;
    if (size >= 1 << 20) {
      await write(batch.join(''));
      batch = [];
      size = 0;
    }
  }
  if (batch.length > 0) await write(batch.join(''));
}
