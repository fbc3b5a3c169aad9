/**
 * Where `recommend` and `graph` write (`--out`). The path is checked before any input is read, so that a
 * run over millions of lines does not end on a mistyped path; a path that cannot be written is bad usage
 * (exit 2) with the path and the problem named. Files are written under a temporary name beside their
 * place and renamed into it once all are written, so a failed write leaves what was there before and no
 * half-written file. `generate` checks its `--out` directory, and reports a failed write, the same way.
 */
import { constants } from 'node:fs';
import type { Stats } from 'node:fs';
import { access, lstat, mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { UsageError, writePieces } from './io.ts';

/** The problem an error of the file system names, in a few words. */
function problem(err: unknown): string {
  switch ((err as NodeJS.ErrnoException).code) {
    case 'ENOENT':
      return 'no such file or directory';
    case 'ENOTDIR':
    case 'EEXIST':
      return 'not a directory';
    case 'EISDIR':
      return 'is a directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EROFS':
      return 'read-only file system';
    case 'ENOSPC':
      return 'no space left on the device';
    default:
      return (err as Error).message;
  }
}

function cannotWrite(path: string, why: string): UsageError {
  return new UsageError(`--out ${path}: cannot write: ${why}`);
}

/** True for an error of the file system (it has a code), which is about the path, not about us. */
function isFsError(err: unknown): boolean {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string';
}

/**
 * What an error met while writing into the `--out` directory `dir` becomes: an error of the file system
 * is bad usage naming the path given, the file being written (if any) and the problem; any other error
 * stays as it is.
 */
export function outputWriteError(dir: string, err: unknown, file?: string): unknown {
  if (!isFsError(err)) return err;
  return cannotWrite(dir, file !== undefined ? `${file}: ${problem(err)}` : problem(err));
}

/** stat, or undefined when nothing is there (or a parent is not a directory). */
async function statOrNone(path: string, out: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw cannotWrite(out, problem(err));
  }
}

async function writable(path: string, out: string): Promise<void> {
  try {
    await access(path, constants.W_OK);
  } catch (err) {
    throw cannotWrite(out, path === resolve(out) ? problem(err) : `${path}: ${problem(err)}`);
  }
}

/**
 * Checks that `dir` is, or can be made, a directory to write in: it, or the nearest of its ancestors
 * that exists (the rest are made when writing), is a directory that can be written.
 */
export async function checkOutputDir(dir: string): Promise<void> {
  const full = resolve(dir);
  for (let p = full; ; p = dirname(p)) {
    const st = await statOrNone(p, dir);
    if (st === undefined) {
      if (dirname(p) === p) return;
      continue;
    }
    if (!st.isDirectory()) throw cannotWrite(dir, p === full ? 'not a directory' : `${p} is not a directory`);
    return writable(p, dir);
  }
}

/** Checks that `file` can be written: not a directory, in a directory that exists and can be written. */
export async function checkOutputFile(file: string): Promise<void> {
  const st = await statOrNone(file, file);
  if (st?.isDirectory()) throw cannotWrite(file, 'is a directory');
  if (st !== undefined && !st.isFile()) return writable(resolve(file), file); // a device or a pipe
  const parent = dirname(resolve(file));
  const ps = await statOrNone(parent, file);
  if (ps === undefined) throw cannotWrite(file, `no such directory ${parent}`);
  if (!ps.isDirectory()) throw cannotWrite(file, `${parent} is not a directory`);
  await writable(parent, file);
}

/**
 * Writes files, each given as the pieces of its text, into `dir` (made if missing): each under a
 * temporary name first, all renamed into place once all are written.
 */
export function writeOutputFiles(
  dir: string,
  files: Iterable<[name: string, pieces: Iterable<string>]>,
): Promise<void> {
  return writeAll(dir, files, dir, true);
}

/**
 * Writes one file from the pieces of its text, through a temporary name beside it; a device, a pipe or
 * a symbolic link (`--out /dev/stdout`) is written in place.
 */
export async function writeOutputFile(path: string, pieces: Iterable<string>): Promise<void> {
  const st = await lstat(path).catch(() => undefined);
  if (st === undefined || st.isFile())
    return writeAll(dirname(path), [[basename(path), pieces]], path, false);
  try {
    await writeTo(path, pieces);
  } catch (err) {
    throw isFsError(err) ? cannotWrite(path, problem(err)) : err;
  }
}

/** `out` is the path as given, for messages; `make` makes `dir` when it is missing. */
async function writeAll(
  dir: string,
  files: Iterable<[name: string, pieces: Iterable<string>]>,
  out: string,
  make: boolean,
): Promise<void> {
  const written: [tmp: string, name: string][] = [];
  /** The file being written or renamed, named in the message when that fails. */
  let at: string | undefined;
  try {
    if (make) await mkdir(dir, { recursive: true });
    for (const [name, pieces] of files) {
      at = name;
      const tmp = join(dir, `.${name}.${process.pid}.tmp`);
      written.push([tmp, name]);
      await writeTo(tmp, pieces);
    }
    for (const [tmp, name] of written) {
      at = name;
      await rename(tmp, join(dir, name));
    }
  } catch (err) {
    for (const [tmp] of written) await rm(tmp, { force: true }).catch(() => undefined);
    throw outputWriteError(out, err, make ? at : undefined);
  }
}

async function writeTo(path: string, pieces: Iterable<string>): Promise<void> {
  const fh = await open(path, 'w');
  try {
    await writePieces(pieces, (chunk) => fh.writeFile(chunk));
  } finally {
    await fh.close();
  }
}
