/**
 * Writers for generated data: the cluster snapshot as a `kubectl get -o json` List (streamed object by
 * object) and flow lines as JSON Lines, optionally gzip-compressed. Both honour back-pressure, so a
 * generator that yields lazily is written in constant memory.
 */
import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';

/** The order `kubectl get ns,pods,svc,endpointslices,deploy,rs,sts,ds,jobs,cronjobs,networkpolicies` prints. */
const KIND_ORDER = [
  'Namespace',
  'Node',
  'Pod',
  'Service',
  'EndpointSlice',
  'Deployment',
  'ReplicaSet',
  'StatefulSet',
  'DaemonSet',
  'Job',
  'CronJob',
  'NetworkPolicy',
];

/** Sorts objects the way kubectl groups them (by kind, stable within a kind). */
export function kubectlOrder<T extends object>(objects: T[]): T[] {
  const rank = (o: object) => {
    const i = KIND_ORDER.indexOf((o as { kind?: string }).kind ?? '');
    return i < 0 ? KIND_ORDER.length : i;
  };
  return objects
    .map((o, i) => ({ o, i, r: rank(o) }))
    .sort((a, b) => a.r - b.r || a.i - b.i)
    .map((x) => x.o);
}

async function* listChunks(
  objects: Iterable<object> | AsyncIterable<object>,
  indent: number,
): AsyncGenerator<string> {
  // indent > 0: kubectl's layout. indent 0: compact, one item per line.
  const pad = ' '.repeat(indent);
  const item = indent > 0 ? `\n${pad}${pad}` : '\n';
  const sp = indent > 0 ? ' ' : '';
  const nl = indent > 0 ? '\n' : '';
  yield `{${nl}${pad}"apiVersion":${sp}"v1",${nl}${pad}"items":${sp}[`;
  let first = true;
  let buf = '';
  for await (const obj of objects) {
    let text = indent > 0 ? JSON.stringify(obj, null, indent) : JSON.stringify(obj);
    if (indent > 0) text = text.replace(/\n/g, `\n${pad}${pad}`);
    buf += `${first ? '' : ','}${item}${text}`;
    first = false;
    if (buf.length > 1 << 16) {
      yield buf;
      buf = '';
    }
  }
  const close = first ? '' : indent > 0 ? `\n${pad}` : '\n';
  yield `${buf}${close}],${nl}${pad}"kind":${sp}"List",${nl}${pad}"metadata":${sp}{${nl}${pad}${pad}"resourceVersion":${sp}""${nl}${pad}}${nl}}\n`;
}

/**
 * Writes a `List` of objects. `indent` 4 matches kubectl's output; 0 writes one compact line per
 * object (much smaller for large clusters).
 */
export async function writeObjectList(
  path: string,
  objects: Iterable<object> | AsyncIterable<object>,
  opts: { indent?: number; gzip?: boolean } = {},
): Promise<void> {
  const source = Readable.from(listChunks(objects, opts.indent ?? 4));
  if (opts.gzip) await pipeline(source, createGzip(), createWriteStream(path));
  else await pipeline(source, createWriteStream(path));
}

async function* lineChunks(lines: Iterable<string> | AsyncIterable<string>): AsyncGenerator<string> {
  let buf = '';
  for await (const line of lines) {
    buf += line + '\n';
    if (buf.length > 1 << 17) {
      yield buf;
      buf = '';
    }
  }
  if (buf) yield buf;
}

/** Writes JSON Lines (gzip-compressed when asked); returns the number of lines written. */
export async function writeLines(
  path: string,
  lines: Iterable<string> | AsyncIterable<string>,
  opts: { gzip?: boolean } = {},
): Promise<number> {
  let count = 0;
  async function* counted() {
    for await (const l of lines) {
      count++;
      yield l;
    }
  }
  const source = Readable.from(lineChunks(counted()));
  if (opts.gzip) await pipeline(source, createGzip(), createWriteStream(path));
  else await pipeline(source, createWriteStream(path));
  return count;
}
