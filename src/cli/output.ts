/**
 * Where `recommend` and `graph` write (`--out`). The path is checked before any input is read, so that a
 * run over millions of lines does not end on a mistyped path; a path that cannot be written is bad usage
 * (exit 2) with the path and the problem named. Files are written under a temporary name beside their
 * place and renamed into it once all are written, all or nothing (files to remove with them included):
 * a failed write leaves what was there before and no half-written file. `generate` checks its `--out` directory, and reports a failed write, the same way.
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

/** What writeOutputFiles may be asked besides writing. */
export interface WriteOptions {
  /**
   * Files of `dir` to remove as part of the same replacement: they go only if every file is put in
   * place, and stay if anything fails.
   */
  remove?: readonly string[];
  /** The rename to use (a test makes one fail); fs.promises.rename by default. */
  rename?: (from: string, to: string) => Promise<void>;
}

/**
 * Writes files, each given as the pieces of its text, into `dir` (made if missing), and removes the
 * files `options.remove` names, all or nothing: each file is written under a temporary name first;
 * once all are written, every place is checked to be one a file can be renamed into (not a directory),
 * then the old files are moved aside under temporary names and the new ones renamed into place. If any
 * of that fails, what was moved is put back and the temporary files removed, so the directory is as it
 * was (as far as the file system lets it be put back), and the message names the file; once all are
 * in place, the old files are removed. Returns the names of the files removed (those of
 * `options.remove` still there).
 */
export function writeOutputFiles(
  dir: string,
  files: Iterable<[name: string, pieces: Iterable<string>]>,
  options: WriteOptions = {},
): Promise<string[]> {
  return writeAll(dir, files, dir, true, options);
}

/**
 * Writes one file from the pieces of its text, through a temporary name beside it; a device, a pipe or
 * a symbolic link (`--out /dev/stdout`) is written in place.
 */
export async function writeOutputFile(path: string, pieces: Iterable<string>): Promise<void> {
  const st = await lstat(path).catch(() => undefined);
  if (st === undefined || st.isFile())
    return void (await writeAll(dirname(path), [[basename(path), pieces]], path, false, {}));
  try {
    await writeTo(path, pieces);
  } catch (err) {
    throw isFsError(err) ? cannotWrite(path, problem(err)) : err;
  }
}

/** An error of the file system with a code, as the system would give it. */
function fsError(code: string, path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${path}`), { code, path });
}

/** Whether something is at `path` (not following a symbolic link); an EISDIR error when a directory. */
async function replaceable(path: string): Promise<boolean> {
  let st: Stats;
  try {
    st = await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  if (st.isDirectory()) throw fsError('EISDIR', path);
  return true;
}

/** A rename done, to be undone if a later one fails: `from` was renamed to `to`. */
interface Moved {
  name: string;
  from: string;
  to: string;
  /** The old file moved aside (removed once all are in place), or a new file put in place. */
  aside: boolean;
}

/**
 * `out` is the path as given, for messages; `make` makes `dir` when it is missing (and names the file
 * that failed in the message: with `make` false, `out` is the file).
 */
async function writeAll(
  dir: string,
  files: Iterable<[name: string, pieces: Iterable<string>]>,
  out: string,
  make: boolean,
  options: WriteOptions,
): Promise<string[]> {
  const move = options.rename ?? rename;
  const remove = options.remove ?? [];
  const written: [tmp: string, name: string][] = [];
  const moved: Moved[] = [];
  const aside = (name: string) => join(dir, `.${name}.${process.pid}.old`);
  /** The file being written, checked or renamed, named in the message when that fails. */
  let at: string | undefined;
  let removing = false;
  const removed: string[] = [];
  try {
    if (make) await mkdir(dir, { recursive: true });
    for (const [name, pieces] of files) {
      at = name;
      const tmp = join(dir, `.${name}.${process.pid}.tmp`);
      written.push([tmp, name]);
      await writeTo(tmp, pieces);
    }
    // Before the first rename: every place can take a file, and each file to remove is still there.
    const present = new Map<string, boolean>();
    for (const [, name] of written) {
      at = name;
      present.set(name, await replaceable(join(dir, name)));
    }
    removing = true;
    for (const name of remove) {
      at = name;
      if (await replaceable(join(dir, name))) removed.push(name);
    }
    // The files to remove are moved aside first, then each old file aside and the new one in its
    // place; the last new file needs nothing moved aside, since nothing after it can fail.
    for (const name of removed) {
      at = name;
      await move(join(dir, name), aside(name));
      moved.push({ name, from: join(dir, name), to: aside(name), aside: true });
    }
    removing = false;
    for (const [i, [tmp, name]] of written.entries()) {
      at = name;
      const dest = join(dir, name);
      if (present.get(name) === true && i < written.length - 1) {
        await move(dest, aside(name));
        moved.push({ name, from: dest, to: aside(name), aside: true });
      }
      await move(tmp, dest);
      moved.push({ name, from: tmp, to: dest, aside: false });
    }
  } catch (err) {
    const left = await putBack(moved, move);
    for (const [tmp] of written) await rm(tmp, { force: true }).catch(() => undefined);
    if (!isFsError(err)) throw err;
    const what = make && at !== undefined ? `${at}: ${problem(err)}` : problem(err);
    const back = left.length > 0 ? `; could not put back ${left.join(', ')}` : '';
    throw new UsageError(`--out ${out}: cannot ${removing ? 'remove' : 'write'}: ${what}${back}`);
  }
  for (const m of moved) if (m.aside) await rm(m.to, { force: true }).catch(() => undefined);
  return removed;
}

/**
 * Undoes the renames done, last first: a new file in place is removed (its old one, if any, is renamed
 * back over it), an old file moved aside is renamed back. Returns, for each that could not be put
 * back, where it was left.
 */
async function putBack(moved: Moved[], move: (from: string, to: string) => Promise<void>): Promise<string[]> {
  const left: string[] = [];
  const restored = new Set(moved.filter((m) => m.aside).map((m) => m.name));
  for (const m of [...moved].reverse()) {
    try {
      if (m.aside) await move(m.to, m.from);
      else if (!restored.has(m.name)) await rm(m.to, { force: true });
    } catch {
      left.push(m.aside ? `${basename(m.from)} (left as ${basename(m.to)})` : basename(m.to));
    }
  }
  return left;
}

async function writeTo(path: string, pieces: Iterable<string>): Promise<void> {
  const fh = await open(path, 'w');
  try {
    await writePieces(pieces, (chunk) => fh.writeFile(chunk));
  } finally {
    await fh.close();
  }
}
