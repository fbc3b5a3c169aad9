import { Document } from 'yaml';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { InputError, parseObjectsText } from '../../src/model/snapshot.ts';

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
