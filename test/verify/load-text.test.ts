import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { readText } from '../../src/verify/load.ts';

const dir = mkdtempSync(join(tmpdir(), 'microseg-load-text-'));
const file = (name: string, bytes: Buffer) => {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
};

describe('readText', () => {
  // A few KiB of gzip may hold gigabytes: what is read whole is decompressed up to a limit, not until
  // memory runs out.
  it('refuses text larger than its limit once decompressed, gzip or plain', async () => {
    const text = `[${' '.repeat(4096)}]`;
    const gz = file('big.json.gz', gzipSync(text));
    const plain = file('big.json', Buffer.from(text));
    await expect(readText(gz, undefined, { maxBytes: 1000 })).rejects.toThrow(
      `${gz}: more than 1000 bytes of text once decompressed, more than microseg reads whole`,
    );
    await expect(readText(plain, undefined, { maxBytes: 1000 })).rejects.toThrow(
      `${plain}: more than 1000 bytes of text once decompressed, more than microseg reads whole`,
    );
    expect(await readText(gz, undefined, { maxBytes: text.length })).toBe(text);
  });
});

describe('readObjects (--cluster, --policies)', () => {
  // YAML is read whole, as --queries is: to the same limit. JSON is read object by object.
  it('refuses YAML larger than the limit once decompressed', async () => {
    const { readObjects } = await import('../../src/cli/inputs.ts');
    const yaml = `kind: Namespace\nmetadata:\n  name: shop\n  annotations:\n    a: "${'x'.repeat(4096)}"\n`;
    const gz = file('cluster.yaml.gz', gzipSync(yaml));
    const read = async (maxBytes: number) => {
      const out: unknown[] = [];
      for await (const o of readObjects(gz, undefined, { maxBytes })) out.push(o);
      return out;
    };
    await expect(read(1000)).rejects.toThrow(
      `${gz}: more than 1000 bytes of text once decompressed, more than microseg reads whole`,
    );
    expect(await read(yaml.length)).toHaveLength(1);
  });
});
