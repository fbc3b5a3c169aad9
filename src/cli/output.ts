/**
 * Where `recommend` and `graph` write (`--out`). The path is checked before any input is read, so that a
 * run over millions of lines does not end on a mistyped path: an `--out` directory is made and proven to
 * hold files by creating one (`prepareOutputDir`), the directory of an `--out` file likewise
 * (`checkOutputFile`); a path that cannot be written is bad usage (exit 2) with the path and the problem
 * named. Files are written under a temporary name beside their place and renamed into it once all are
 * written, all or nothing (files to remove with them included): a failed write leaves what was there
 * before and no half-written file. `generate` and `demo` prepare their `--out` directory, and report a
 * failed write, the same way.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import type { Stats } from 'node:fs';
import { access, lstat, mkdir, open, readlink, rename, rm, rmdir, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { NO_SUCH_FILE } from '../flows/reader.ts';
import { UsageError, writePieces } from './io.ts';

/** The problem an error of the file system names, in a few words. */
function problem(err: unknown): string {
  switch ((err as NodeJS.ErrnoException).code) {
    case 'ENOENT':
      return NO_SUCH_FILE;
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
/**
 * Refuses an empty `--out` (bad usage): it would be the current directory (an unset variable in
 * `--out "$DIR"`), or, for a file, standard output as if it were not given. `what` is what it takes,
 * `otherwise` what leaving it out gives (none where --out is required).
 */
export function nonEmptyOut(out: string | undefined, what: 'file' | 'directory', otherwise?: string): void {
  if (out === '')
    throw new UsageError(
      `--out is empty: give a ${what}` +
        (otherwise !== undefined ? ` (or leave --out out for ${otherwise})` : ''),
    );
}

export function outputWriteError(dir: string, err: unknown, file?: string): unknown {
  if (!isFsError(err)) return err;
  return cannotWrite(dir, file !== undefined ? `${file}: ${problem(err)}` : problem(err));
}

/** stat (or lstat), or undefined when nothing is there (or a parent is not a directory). */
async function statOrNone(path: string, out: string, link = false): Promise<Stats | undefined> {
  try {
    return await (link ? lstat(path) : stat(path));
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
 * Why the directory `dir` cannot have `what` created in it. ENOENT in a directory that exists is a file
 * system that holds no new entries (/proc, /sys), where even root's access() says "writable".
 */
function creationProblem(err: unknown, dir: string, what: string): string {
  if ((err as NodeJS.ErrnoException).code === 'ENOENT')
    return `${dir} does not allow ${what} in it (no such file or directory)`;
  return problem(err);
}

/**
 * Proves that the directory `dir` (which exists) can hold files by making one and removing it: access()
 * answers for the permission bits only, and a read-only mount or a pseudo file system says no only here.
 */
async function probe(dir: string, out: string): Promise<void> {
  // A name no earlier run left behind (one killed between making and removing its probe, in a container
  // whose process ids repeat run after run, would otherwise make every later run fail here).
  const path = join(dir, `.microseg-probe.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await (await open(path, 'wx')).close();
  } catch (err) {
    const why = creationProblem(err, dir, 'new files');
    throw cannotWrite(
      out,
      dir === resolve(out) || (err as NodeJS.ErrnoException).code === 'ENOENT' ? why : `${dir}: ${why}`,
    );
  }
  await rm(path, { force: true });
}

/**
 * Makes the directory `full` and each missing ancestor, one level at a time (never mkdir's recursive
 * mode: on Node 24 it retries forever where a file system refuses new directories, as /proc does for
 * root). Returns the directories made, outermost first. `out` is the path as given, for messages.
 */
async function makeDirs(full: string, out: string): Promise<string[]> {
  const missing: string[] = [];
  let p = full;
  for (;;) {
    const st = await statOrNone(p, out, true);
    if (st === undefined) {
      missing.push(p);
      if (dirname(p) === p) break;
      p = dirname(p);
      continue;
    }
    if (st.isSymbolicLink()) {
      // A link is followed; one to a path that does not exist is no directory to write in.
      const to = await statOrNone(p, out);
      if (to === undefined) {
        const target = resolve(dirname(p), await readlink(p));
        throw cannotWrite(
          out,
          `${p === full ? '' : `${p} `}is a symbolic link to ${target}, which does not exist`.trimStart(),
        );
      }
      if (!to.isDirectory())
        throw cannotWrite(out, p === full ? 'not a directory' : `${p} is not a directory`);
      break;
    }
    if (!st.isDirectory()) throw cannotWrite(out, p === full ? 'not a directory' : `${p} is not a directory`);
    break;
  }
  const made: string[] = [];
  for (const d of missing.reverse()) {
    try {
      await mkdir(d);
      made.push(d);
    } catch (err) {
      // Made meanwhile by someone else: fine if it is a directory now.
      if ((err as NodeJS.ErrnoException).code === 'EEXIST' && (await statOrNone(d, out))?.isDirectory())
        continue;
      throw cannotWrite(
        out,
        `cannot make the directory ${d}: ${creationProblem(err, dirname(d), 'new directories')}`,
      );
    }
  }
  return made;
}

/** The `--out` directory of a command, made and proven to hold files before any input is read. */
export interface OutputDir {
  /** The directories made for it, outermost first (none when it existed). */
  readonly made: readonly string[];
  /**
   * Removes the directories made for it that are still empty, innermost first: a run that fails
   * before writing leaves no trace; one that wrote keeps them.
   */
  removeIfEmpty(): Promise<void>;
}

/**
 * Makes `dir` (and its missing ancestors) and proves that it can hold files, so that a run does not end
 * on an `--out` it cannot write to: anything in the way (a file, a symbolic link to nothing, a read-only
 * or pseudo file system, permissions) is bad usage naming `--out` and the problem. Call `removeIfEmpty`
 * once the command is done, whatever its outcome.
 */
export async function prepareOutputDir(dir: string): Promise<OutputDir> {
  const full = resolve(dir);
  const made = await makeDirs(full, dir);
  const result: OutputDir = {
    made,
    async removeIfEmpty() {
      for (const d of [...made].reverse()) {
        try {
          await rmdir(d);
        } catch {
          return; // not empty (the run wrote there), or gone: the ones above it stay too
        }
      }
    },
  };
  try {
    await probe(full, dir);
  } catch (err) {
    await result.removeIfEmpty();
    throw err;
  }
  return result;
}

/**
 * Checks that `file` can be written: not a directory, in a directory that exists and can hold files; a
 * symbolic link is checked at the path it points to.
 */
export async function checkOutputFile(file: string, given = file, links = 0): Promise<void> {
  // A path ending in /, /. or /.. names a directory, which resolving would drop: `--out graphs/` or
  // `graphs/.` must not write a file named `graphs` (nor `a/missing/..` one named `a`).
  const end = links === 0 && given.length > 1 ? /\/(?:\.\.?)?$/.exec(given) : null;
  if (end) throw cannotWrite(given, `it ends in ${end[0]}, so it names a directory, not a file`);
  const full = resolve(file);
  const l = await statOrNone(full, given, true);
  if (l?.isSymbolicLink() && (await statOrNone(full, given)) === undefined) {
    // A link to a path that does not exist yet: writing makes that file, if its directory can hold it.
    if (links >= 32) throw cannotWrite(given, 'too many levels of symbolic links');
    return checkOutputFile(resolve(dirname(full), await readlink(full)), given, links + 1);
  }
  const st = l?.isSymbolicLink() ? await statOrNone(full, given) : l;
  if (st?.isDirectory())
    throw cannotWrite(given, full === resolve(given) ? 'is a directory' : `${full} is a directory`);
  if (st !== undefined && !st.isFile()) return writable(full, given); // a device or a pipe
  const parent = dirname(full);
  const ps = await statOrNone(parent, given);
  if (ps === undefined) throw cannotWrite(given, `no such directory ${parent}`);
  if (!ps.isDirectory()) throw cannotWrite(given, `${parent} is not a directory`);
  await probe(parent, given);
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
    if (make) await makeDirs(resolve(dir), out);
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
