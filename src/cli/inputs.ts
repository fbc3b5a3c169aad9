/** File inputs shared by the commands: cluster snapshots and policy files. */
import { readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import type { ClusterSnapshot, SnapshotOptions } from '../model/snapshot.ts';
import { InputError, loadSnapshotText, mergeSnapshots } from '../model/snapshot.ts';

/** Reads a JSON or YAML file (gzip allowed), naming the file in every error. */
export async function readTextFile(path: string): Promise<string> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InputError(`${path}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      buf = gunzipSync(buf);
    } catch (err) {
      throw new InputError(`${path}: not a valid gzip file: ${(err as Error).message}`);
    }
  }
  return buf.toString('utf8');
}

export async function loadSnapshotFiles(
  paths: readonly string[],
  opts?: SnapshotOptions,
): Promise<ClusterSnapshot> {
  const snaps = [];
  for (const p of paths) snaps.push(loadSnapshotText(await readTextFile(p), p, opts));
  return mergeSnapshots(...snaps);
}
