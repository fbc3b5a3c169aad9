import { Document } from 'yaml';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { deepStackThread, InputError, parseObjectsText } from '../../src/model/snapshot.ts';

const pod = 'kind: Pod\napiVersion: v1\nmetadata: {name: p, namespace: shop}\n';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('the YAML reader hands a document to the deep-stack thread only when its stack overflowed', () => {
  it('a RangeError other than a stack overflow while building the data is the input refused, read nowhere else', () => {
    // What building the data throws stands in for any RangeError that is not the call stack's ("Invalid
    // string length"); the thread, where it is not thrown, would read the text without it.
    vi.spyOn(Document.prototype, 'toJS').mockImplementation(() => {
      throw new RangeError('Invalid string length');
    });
    expect(() => parseObjectsText(pod, 'pods.yaml')).toThrow(
      new InputError('pods.yaml: YAML document 1: Invalid string length'),
    );
  });

  it('a stack overflow while building the data is read again on the thread', () => {
    const toJS = vi.spyOn(Document.prototype, 'toJS').mockImplementation(() => {
      throw new RangeError('Maximum call stack size exceeded');
    });
    expect(parseObjectsText(pod, 'pods.yaml')).toEqual([
      { kind: 'Pod', apiVersion: 'v1', metadata: { name: 'p', namespace: 'shop' } },
    ]);
    expect(toJS).toHaveBeenCalledTimes(1);
  });
});

describe('the deep-stack thread stopping without answering', () => {
  const saved = { ...deepStackThread };
  // The calling thread's stack overflows building the data (how deep a document it composes depends on
  // how far its code is optimised), so the text goes to the thread, which reads it as it is.
  const overflow = () =>
    vi.spyOn(Document.prototype, 'toJS').mockImplementation(() => {
      throw new RangeError('Maximum call stack size exceeded');
    });
  afterEach(() => {
    Object.assign(deepStackThread, saved);
  });

  it('a thread that fails to load is an error naming the input, at once', () => {
    overflow();
    deepStackThread.file = new URL('./no-such-reader.ts', deepStackThread.file);
    const started = performance.now();
    let err: unknown;
    try {
      parseObjectsText(pod, 'pods.yaml');
    } catch (e) {
      err = e;
    }
    expect(performance.now() - started).toBeLessThan(10_000);
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(InputError);
    expect((err as Error).message).toMatch(
      /^pods\.yaml: the YAML reader's thread stopped without answering: .*no-such-reader/,
    );
  });

  it('a thread out of memory is the input refused as too large to read, not waited for', () => {
    overflow();
    deepStackThread.resourceLimits = { ...saved.resourceLimits, maxOldGenerationSizeMb: 8 };
    // A Pod, then 400,000 list items: more than 8 MB once composed. (What its heap holds in small
    // pieces: one string larger than the limit may abort the process, not the thread alone.)
    const big = `${pod}---\n${'- 1\n'.repeat(400_000)}`;
    // The message says the thread stopped: not waited for until the wait runs out (60 s).
    expect(() => parseObjectsText(big, 'big.yaml')).toThrow(
      new InputError("big.yaml: too large to read: the YAML reader's thread ran out of memory"),
    );
  });
});
