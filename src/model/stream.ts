/**
 * Streaming reader for cluster snapshot files. `kubectl get ... -A -o json` of a large cluster is hundreds
 * of megabytes; parsing it whole holds the text and every object of it at once (gigabytes). This reader
 * splits the byte stream into the objects it contains — the items of a List, the elements of a top-level
 * array, or top-level objects one after another (JSON lines, concatenated documents) — and parses one
 * object at a time, so the caller keeps only what it needs of each.
 *
 * Only the splitting is done here, on raw bytes. Every object text still goes through `JSON.parse`, so
 * what is accepted and what each object contains is exactly what `JSON.parse` gives.
 */
import { InputError, LIST_KIND_WAIT, listItem, MAX_NESTING, nestedTooDeeply } from './snapshot.ts';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;

/** Where the values handed out are: elements of a top-level array, or of the `items` of a top-level object. */
type Mode = 'none' | 'array' | 'object' | 'items';

/**
 * The top-level object whose `items` an object text handed out is one of: its `kind` and `apiVersion`
 * (string members), as far as they are read, and whether it is read to its end (after which both are
 * known, or it has none).
 */
export interface ListHead {
  kind?: string;
  apiVersion?: string;
  ended: boolean;
}

/**
 * Splits JSON text arriving in chunks into object texts. Call `push` with each chunk and collect what it
 * returns, then `end` after the last chunk. Errors are InputErrors naming the source.
 */
export class JsonObjectSplitter {
  private readonly source: string;
  /** Bytes not yet consumed by a finished value: from the earliest start still needed. */
  private pending: Buffer = Buffer.alloc(0);
  /** Stream offset of `pending[0]`. */
  private base = 0;
  private depth = 0;
  private inString = false;
  private escaped = false;
  private mode: Mode = 'none';
  /** Stream offset where the top-level object starts (while it may still be a single object), or -1. */
  private objectStart = -1;
  /** Stream offset where the current array element starts, or -1. */
  private itemStart = -1;
  /** Top-level object members: the string being read as a key or a kind value, and the last key. */
  private stringStart = -1;
  private captureString: 'key' | 'kind' | 'apiVersion' | undefined;
  /** The top-level object being read (see ListHead), or undefined outside one. */
  private head: ListHead | undefined;
  private lastKey: string | undefined;
  private afterColon = false;
  private kind: string | undefined;
  private sawItems = false;
  private sawValue = false;
  /** Object texts handed out so far. */
  count = 0;
  /** Most lists and objects open at once (see `constructor`). */
  private readonly maxDepth: number;

  /** Objects and arrays open where the input read so far ends. */
  get openValues(): number {
    return this.depth;
  }

  /** Whether the input read so far ends inside a string. */
  get insideString(): boolean {
    return this.inString;
  }

  /** Whether the input read so far ends inside a top-level object that is handed out whole. */
  get insideObject(): boolean {
    return this.objectStart >= 0;
  }

  /**
   * `maxDepth`: most lists and objects open at once, counted from the top of the input; one more is an
   * error (`nestedTooDeeply`), found while splitting, before anything recurses into it. Default: none.
   */
  constructor(source: string, opts: { maxDepth?: number } = {}) {
    this.source = source;
    this.maxDepth = opts.maxDepth ?? Infinity;
  }

  private fail(what: string): never {
    throw new InputError(`${this.source}: not valid JSON: ${what}`);
  }

  /**
   * Feeds a chunk; returns the object texts it completed, also added to `out` as they complete (so that
   * a caller has those completed before an error in the same chunk). `heads`, if given, gets for each
   * text the list it is an item of (its ListHead, which fills in as the list is read further), or
   * undefined for a text that is no item of a top-level object's `items`.
   */
  push(chunk: Buffer, out: string[] = [], heads?: (ListHead | undefined)[]): string[] {
    const keepFrom = this.pending.length;
    const buf = keepFrom === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const base = this.base;
    const n = buf.length;
    // Position of the next backslash at or after the scan position (n: none): found once per stretch,
    // so jumping over string contents stays linear.
    let nextBackslash = -1;
    for (let i = keepFrom; i < n; i++) {
      const b = buf[i]!;
      if (this.inString) {
        if (this.escaped) {
          this.escaped = false;
          continue;
        }
        if (b === BACKSLASH) {
          this.escaped = true;
          continue;
        }
        if (b === QUOTE) {
          this.inString = false;
          if (this.captureString !== undefined)
            this.captured(buf.toString('utf8', this.stringStart - base, i + 1));
          continue;
        }
        // Jump to the next quote or backslash.
        const q = buf.indexOf(QUOTE, i + 1);
        if (nextBackslash < i + 1) {
          nextBackslash = buf.indexOf(BACKSLASH, i + 1);
          if (nextBackslash < 0) nextBackslash = n;
        }
        const next = q < 0 ? nextBackslash : Math.min(q, nextBackslash);
        i = next - 1;
        continue;
      }
      if (b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09) continue;
      const at = base + i;
      if (this.depth === 0) {
        this.sawValue = true;
        if (b === OPEN_BRACKET) this.mode = 'array';
        else if (b === OPEN_BRACE) {
          this.mode = 'object';
          this.objectStart = at;
          this.head = { ended: false };
          this.kind = undefined;
          this.lastKey = undefined;
          this.afterColon = false;
          this.sawItems = false;
        } else
          this.fail(
            `expected an object or an array at byte ${at}, found ${JSON.stringify(String.fromCharCode(b))}`,
          );
        this.depth = 1;
        continue;
      }
      const elementDepth = this.mode === 'array' ? 1 : this.mode === 'items' ? 2 : 0;
      if (this.depth === elementDepth) {
        if (b === COMMA) {
          this.emit(buf, base, i, out, heads);
          continue;
        }
        if (b === CLOSE_BRACKET) {
          this.emit(buf, base, i, out, heads);
          this.depth--;
          if (this.mode === 'items') {
            // Back among the members of the top-level object.
            this.mode = 'object';
            this.afterColon = false;
            this.lastKey = undefined;
          } else this.mode = 'none';
          continue;
        }
        if (this.itemStart < 0) this.itemStart = at;
      }
      if (b === QUOTE) {
        this.inString = true;
        if (this.mode === 'object' && this.depth === 1) {
          this.captureString = !this.afterColon
            ? 'key'
            : this.lastKey === 'kind' || this.lastKey === 'apiVersion'
              ? this.lastKey
              : undefined;
          this.stringStart = at;
        }
        continue;
      }
      if (this.mode === 'object' && this.depth === 1) {
        if (b === COLON) {
          this.afterColon = true;
          continue;
        }
        if (b === COMMA) {
          this.afterColon = false;
          continue;
        }
        if (b === OPEN_BRACKET && this.afterColon && this.lastKey === 'items' && !this.sawItems) {
          this.sawItems = true;
          this.objectStart = -1; // no longer a single object: its items are handed out
          this.mode = 'items';
          this.depth = 2;
          continue;
        }
      }
      if (b === OPEN_BRACE || b === OPEN_BRACKET) {
        this.depth++;
        if (this.depth > this.maxDepth) throw nestedTooDeeply(this.source);
        continue;
      }
      if (b === CLOSE_BRACE || b === CLOSE_BRACKET) {
        this.depth--;
        if (this.depth === 0) {
          if (b === CLOSE_BRACKET) this.fail(`unexpected "]" at byte ${at}`);
          if (this.head !== undefined) this.head.ended = true;
          this.head = undefined;
          if (this.objectStart >= 0) {
            out.push(buf.toString('utf8', this.objectStart - base, i + 1));
            heads?.push(undefined);
            this.count++;
          } else if (this.kind !== undefined && !this.kind.endsWith('List')) {
            throw new InputError(
              `${this.source}: a top-level object with "items" must be a List, found kind ${JSON.stringify(this.kind)}`,
            );
          }
          this.objectStart = -1;
          this.mode = 'none';
        }
      }
    }
    const marks = [
      this.objectStart,
      this.itemStart,
      this.inString && this.captureString !== undefined ? this.stringStart : -1,
    ].filter((m) => m >= 0);
    const keep = marks.length === 0 ? n : Math.min(...marks) - base;
    this.pending = keep >= n ? Buffer.alloc(0) : Buffer.from(buf.subarray(keep));
    this.base = base + keep;
    return out;
  }

  private captured(text: string): void {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      this.fail((err as Error).message);
    }
    if (this.captureString === 'key') this.lastKey = value as string;
    else if (this.captureString === 'apiVersion') {
      if (this.head !== undefined) this.head.apiVersion = value as string;
    } else {
      this.kind = value as string;
      if (this.head !== undefined) this.head.kind = this.kind;
    }
    this.captureString = undefined;
  }

  private emit(buf: Buffer, base: number, i: number, out: string[], heads?: (ListHead | undefined)[]): void {
    if (this.itemStart < 0) return;
    out.push(buf.toString('utf8', this.itemStart - base, i).trimEnd());
    heads?.push(this.mode === 'items' ? this.head : undefined);
    this.count++;
    this.itemStart = -1;
  }

  /** Call after the last chunk: a truncated input is an error. */
  end(): void {
    if (this.inString || this.depth > 0)
      this.fail(`the input ends inside a value (byte ${this.base + this.pending.length})`);
    // Any byte but whitespace before the first value is an error of its own (`push`).
    if (!this.sawValue)
      throw new InputError(
        `${this.source}: the file ${this.base + this.pending.length === 0 ? 'is empty' : 'holds only whitespace'}`,
      );
  }
}

/**
 * Parses each object of a chunked JSON input as it completes. The object texts are parsed with
 * `JSON.parse`; an error names the source and the object's position. An input nested more than
 * `MAX_NESTING` levels deep is refused (`nestedTooDeeply`), as `parseObjectsText` refuses it. The items
 * of a top-level list are handed out as `listItem` makes them: one without a kind takes the kind the
 * list's names (a PodList's items are Pods). The API writes a list's kind before its items; where it
 * comes after them (keys sorted, `jq -S`), the items from the first without a kind on are held until
 * the list's kind is read, or its end, or LIST_KIND_WAIT is passed (ListItems).
 */
export async function* streamJsonObjects(
  chunks: AsyncIterable<Buffer>,
  source: string,
): AsyncGenerator<unknown> {
  const splitter = new JsonObjectSplitter(source, { maxDepth: MAX_NESTING });
  const items = new ListItems();
  const ready: unknown[] = [];
  for await (const chunk of chunks) {
    const heads: (ListHead | undefined)[] = [];
    const texts = splitter.push(chunk, [], heads);
    const first = splitter.count - texts.length;
    for (const [k, text] of texts.entries()) {
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (err) {
        throw new InputError(`${source}: not valid JSON: object ${first + k + 1}: ${(err as Error).message}`);
      }
      items.add(value, heads[k], ready, Buffer.byteLength(text));
      yield* ready.splice(0);
    }
    items.release(ready);
    yield* ready.splice(0);
  }
  splitter.end();
  // Every list has ended by now (or end() refused the input).
  items.end(ready);
  yield* ready;
}

/**
 * The values a JsonObjectSplitter hands out (with their ListHeads), made what `listItem` makes them and
 * given back in order: an item without a kind of a list whose kind is not read yet (it comes after the
 * items: keys sorted, `jq -S`) is held, and those after it with it, until the list's kind is read or
 * the list ends. Not more than LIST_KIND_WAIT of them (items, bytes of their text), so that a file is
 * never held whole: past it, what is held is given back, and every item of a list whose kind is still
 * not read is read by its own kind (listItem's `kindUnread`: one without is refused saying so).
 * `mayTakeKind`: which items without a kind may be held (by default every one; a flow reader holds only
 * Kubernetes objects, so that a List of flow records streams).
 */
export class ListItems {
  private readonly held: { value: unknown; head: ListHead; size: number }[] = [];

  /** Bytes of text of the values held. */
  private heldBytes = 0;

  /** Lists whose kind was not read before LIST_KIND_WAIT was passed: nothing of them is held. */
  private readonly unread = new WeakSet<ListHead>();

  private readonly mayTakeKind: (value: unknown) => boolean;

  constructor(mayTakeKind: (value: unknown) => boolean = () => true) {
    this.mayTakeKind = mayTakeKind;
  }

  /**
   * Adds to `out` those held that are now known, then `value` (an item of `head`'s list, `size` bytes of
   * text), unless held.
   */
  add(value: unknown, head: ListHead | undefined, out: unknown[], size = 0): void {
    this.release(out);
    if (head === undefined) out.push(value);
    else if (
      this.held.length > 0 ||
      (!known(head) && !this.unread.has(head) && !hasKind(value) && this.mayTakeKind(value))
    ) {
      this.held.push({ value, head, size });
      this.heldBytes += size;
      if (this.held.length > LIST_KIND_WAIT.items || this.heldBytes > LIST_KIND_WAIT.bytes) this.giveUp(out);
    } else out.push(this.item(value, head));
  }

  /** Adds to `out` those held whose list's kind is now known (or whose list has ended), in order. */
  release(out: unknown[]): void {
    while (this.held.length > 0 && known(this.held[0]!.head)) {
      const h = this.held.shift()!;
      this.heldBytes -= h.size;
      out.push(this.item(h.value, h.head));
    }
  }

  /** Adds to `out` every value held, its list's kind as far as it was read (the input has ended). */
  end(out: unknown[]): void {
    for (const h of this.held.splice(0)) out.push(this.item(h.value, h.head));
    this.heldBytes = 0;
  }

  /** LIST_KIND_WAIT is passed: the lists whose kind is not read are read by their items' own kinds. */
  private giveUp(out: unknown[]): void {
    for (const h of this.held) if (!known(h.head)) this.unread.add(h.head);
    this.end(out);
  }

  /**
   * An item of `head`'s list as listItem makes it, by its own kind if its list's was not waited for:
   * also when that kind is read before the item is handed out (the splitter hands out every item of a
   * chunk before they are added, the list's kind in the same chunk known by then), so that every item
   * of such a list is read alike, whatever the chunks.
   */
  private item(value: unknown, head: ListHead): unknown {
    return listItem(value, head, this.unread.has(head));
  }
}

/** Whether the kind of a list is known: read, or the list read to its end without one. */
function known(head: ListHead): boolean {
  return head.kind !== undefined || head.ended;
}

/** Whether `v` is an object with a `kind` member, whatever its value. */
function hasKind(v: unknown): boolean {
  return (
    v !== null && typeof v === 'object' && !Array.isArray(v) && (v as { kind?: unknown }).kind !== undefined
  );
}
