/**
 * The segments an earlier `microseg recommend` wrote into its output directory (`report.json`'s
 * `segments.list`), so that a run into the same directory keeps the names of the communities that
 * continue them (SegmentOptions.previous): a connection more or less then renames no segment, and the
 * `microseg.dev/segment` labels of the policies do not change in the next pull request.
 *
 * Only the `segments` member is read, from the start of the file up to its end: it comes before the
 * evidence, which holds most of a large report, so a report of hundreds of MB is not read whole. The
 * file is read as every input of microseg is (`gunzipIfNeeded`): gzip, UTF-8 with or without a byte
 * order mark, or UTF-16 with one or without (a report written again by Windows PowerShell).
 */
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { gunzipIfNeeded } from '../flows/reader.ts';

/** What was read: the community segment of each workload, or why nothing was. */
export type PreviousSegments =
  | { kind: 'none' }
  | { kind: 'read'; path: string; membership: Map<string, string>; segments: number }
  | { kind: 'unread'; path: string; reason: string };

/**
 * How far into report.json `segments` is looked for (it is the fifth member of microseg's reports), in
 * bytes of its text as UTF-8, once decompressed.
 */
const SCAN_LIMIT = 64 * 1024 * 1024;

/** Reads DIR/report.json's community segments; `none` when the directory has no report.json. */
export async function previousSegments(dir: string): Promise<PreviousSegments> {
  const path = join(dir, 'report.json');
  let text: string | undefined;
  try {
    text = await segmentsText(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // No report, or a directory in its place (the run then fails to write it, and says so).
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return { kind: 'none' };
    return { kind: 'unread', path, reason: (err as Error).message };
  }
  if (text === undefined)
    return {
      kind: 'unread',
      path,
      reason: `it has no top-level "segments" object in its first ${SCAN_LIMIT >> 20} MB (not a report of microseg recommend?)`,
    };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return {
      kind: 'unread',
      path,
      reason: `its "segments" member is not valid JSON: ${(err as Error).message}`,
    };
  }
  const list = (value as { list?: unknown } | null)?.list;
  if (!Array.isArray(list)) return { kind: 'unread', path, reason: '"segments.list" is not a list' };
  const membership = new Map<string, string>();
  let segments = 0;
  for (const [i, s] of list.entries()) {
    const seg = s as { id?: unknown; kind?: unknown; members?: unknown } | null;
    if (
      typeof seg?.id !== 'string' ||
      typeof seg.kind !== 'string' ||
      !Array.isArray(seg.members) ||
      !seg.members.every((m) => typeof m === 'string')
    )
      return {
        kind: 'unread',
        path,
        reason: `"segments.list[${i}]" is not a segment (a string id and kind, a list of member ids)`,
      };
    // Platform, unobserved and pinned segments are named by their namespace or their pin, each run.
    if (seg.kind !== 'community') continue;
    segments++;
    for (const m of seg.members) membership.set(m, seg.id);
  }
  return { kind: 'read', path, membership, segments };
}

/**
 * The text of the value of the top-level member `segments` of the JSON object in the file, read up
 * to that value's end (at most SCAN_LIMIT bytes); undefined when the file ends, or the limit comes,
 * before it, or the file is not a JSON object. Strings and nesting are followed, so a `"segments"`
 * inside another member is not taken for it; the value itself is checked by JSON.parse.
 */
async function segmentsText(path: string): Promise<string | undefined> {
  // Opened first, so that a missing file is the error of its code (ENOENT: no report).
  const stream = createReadStream(path, { highWaterMark: 1 << 20 });
  await new Promise<void>((ok, fail) => stream.once('open', () => ok()).once('error', fail));
  const chunks = gunzipIfNeeded(stream, { source: path, gzip: false })[Symbol.asyncIterator]();
  try {
    const decoder = new StringDecoder('utf8');
    let read = 0;
    let depth = 0;
    let inString = false;
    let escaped = false;
    let started = false;
    // The last string closed at depth 1, and whether a ':' followed it (it was a key).
    let str = '';
    let strStart = -1;
    let lastKey: string | undefined;
    let capture: string[] | undefined;
    let valueDepth = 0;
    for (;;) {
      const next = await chunks.next();
      if (next.done === true) {
        if (capture !== undefined) throw new Error('it ends inside its "segments" member');
        return undefined;
      }
      const bytesRead = next.value.length;
      read += bytesRead;
      const chunk = decoder.write(next.value);
      let from = 0;
      for (let i = 0; i < chunk.length; i++) {
        const c = chunk.charCodeAt(i);
        if (inString) {
          if (escaped) escaped = false;
          else if (c === 0x5c) escaped = true;
          else if (c === 0x22) {
            inString = false;
            if (depth === 1 && capture === undefined && strStart >= 0) str += chunk.slice(strStart, i);
          }
          continue;
        }
        if (c === 0x22) {
          inString = true;
          if (depth === 1 && capture === undefined) {
            str = '';
            strStart = i + 1;
          }
          continue;
        }
        if (c === 0x7b || c === 0x5b) {
          if (!started) {
            if (c !== 0x7b) return undefined;
            started = true;
          }
          depth++;
          if (capture === undefined && depth === 2 && lastKey === 'segments') {
            capture = [];
            from = i;
            valueDepth = depth;
          }
        } else if (c === 0x7d || c === 0x5d) {
          depth--;
          if (capture !== undefined && depth === valueDepth - 1) {
            capture.push(chunk.slice(from, i + 1));
            return capture.join('');
          }
          if (depth === 0) return undefined;
        } else if (c === 0x3a && depth === 1 && capture === undefined) lastKey = str;
        else if (c === 0x2c && depth === 1) lastKey = undefined;
        // A UTF-8 byte order mark (an editor's) at the start of the file is no text.
        else if (!started && c > 0x20 && !(c === 0xfeff && i === 0 && read === bytesRead)) return undefined;
      }
      if (capture !== undefined) capture.push(chunk.slice(from));
      // A string of the top level split across two reads: what this read holds of it, the rest from
      // the start of the next.
      if (inString && depth === 1 && capture === undefined && strStart >= 0) {
        str += chunk.slice(strStart);
        strStart = 0;
      } else strStart = -1;
      if (read >= SCAN_LIMIT) return undefined;
    }
  } finally {
    await chunks.return?.(undefined);
    stream.destroy();
  }
}
