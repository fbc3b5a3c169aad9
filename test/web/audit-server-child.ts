/**
 * A server of `POST /api/v1/audit` in a process of its own, for the tests that send it bodies that
 * might take the process down (audit-limits.test.ts): it prints `port <n>` once it listens. Its
 * parsing thread's heap is `PARSE_HEAP_MB` when that is set in its environment.
 */
import type { AddressInfo } from 'node:net';
import { createApp } from '../../src/server/app.ts';
import { ObjectsParser } from '../../src/server/parse.ts';
import { analysisSource } from '../../src/server/source.ts';
import { fixtureAnalysis } from './helpers.ts';

const { snapshot, analysis } = await fixtureAnalysis();
const heapMb = process.env.PARSE_HEAP_MB;
const parser = new ObjectsParser(heapMb === undefined ? {} : { heapMb: Number(heapMb) });
const app = createApp(analysisSource(analysis, { snapshot }), {
  parser,
  onInternalError: (err) => console.error('internal error:', err),
});
const server = app.listen(0, '127.0.0.1', () =>
  console.log(`port ${(server.address() as AddressInfo).port}`),
);
