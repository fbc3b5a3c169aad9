/**
 * `--listen :8080` (the shipped Deployment's) listens on every address of the pod, IPv6 included: on an
 * IPv6 single-stack cluster the kubelet probes `http://[pod IPv6]:8080/readyz` and the Service sends
 * flows and webhooks to that address too.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { controllerApp, listen, parseListen } from '../../src/controller/server.ts';
import type { Listening } from '../../src/controller/server.ts';
import {
  CONNECTIONS_CHECK_MS,
  HEADERS_TIMEOUT_MS,
  ListenError,
  listenOn,
  REQUEST_TIMEOUT_MS,
} from '../../src/server/listen.ts';

const open: Listening[] = [];
afterEach(async () => {
  for (const l of open.splice(0)) await l.close();
});

async function serve(text: string): Promise<Listening> {
  const { host, port } = parseListen(text);
  const app = controllerApp({
    healthy: () => true,
    ready: () => ({ ok: true }),
    metrics: () => '',
    routers: [],
  });
  const l = await listen(app, host, port);
  open.push(l);
  return l;
}

/** Whether this machine can listen on the IPv6 loopback address at all. */
async function hasIPv6(): Promise<boolean> {
  const s = createServer();
  return new Promise((resolve) => {
    s.once('error', () => resolve(false));
    s.listen(0, '::1', () => s.close(() => resolve(true)));
  });
}

describe('--listen without a host', () => {
  it('answers the probes on IPv4 and, where the machine has it, on IPv6', async () => {
    const l = await serve(':0');
    const v4 = await fetch(`http://127.0.0.1:${l.port}/readyz`);
    expect([v4.status, await v4.text()]).toEqual([200, 'ok\n']);
    if (await hasIPv6()) {
      const v6 = await fetch(`http://[::1]:${l.port}/healthz`);
      expect([v6.status, await v6.text()]).toEqual([200, 'ok\n']);
    }
  });

  it('a port in use is named as the flag gave it', async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, resolve));
    const port = (busy.address() as AddressInfo).port;
    try {
      const err = await serve(`:${port}`).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ListenError);
      expect((err as ListenError).message).toBe(
        `cannot listen on :${port}: the address is already in use (another process listens there)`,
      );
    } finally {
      await new Promise((resolve) => busy.close(resolve));
    }
  });

  it('a host given is kept as given', () => {
    expect(parseListen('127.0.0.1:8080')).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(parseListen('[::1]:8080')).toEqual({ host: '::1', port: 8080 });
  });
});

describe('slow clients', () => {
  /** A raw connection to the server that sends `text` and then nothing; resolves when it is closed. */
  function stall(port: number, text: string): Promise<{ answer: string; afterMs: number }> {
    return new Promise((resolve, reject) => {
      const started = Date.now();
      let answer = '';
      const socket = connect(port, '127.0.0.1', () => socket.write(text));
      socket.on('data', (d: Buffer) => (answer += d.toString('latin1')));
      socket.on('error', reject);
      socket.on('close', () => resolve({ answer, afterMs: Date.now() - started }));
    });
  }

  it(
    'cuts off a client that does not finish its headers within 10 s, answering 408',
    async () => {
      const l = await serve('127.0.0.1:0');
      const { answer, afterMs } = await stall(l.port, 'POST /v1/flows HTTP/1.1\r\nHost: microseg\r\n');
      expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 408 Request Timeout');
      expect(afterMs).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 100);
      expect(afterMs).toBeLessThan(HEADERS_TIMEOUT_MS + 3 * CONNECTIONS_CHECK_MS + 1000);
    },
    HEADERS_TIMEOUT_MS + 10_000,
  );

  it('gives a whole request (headers and body) at most a minute, and checks connections every second', async () => {
    const l = await serve('127.0.0.1:0');
    // Node's defaults are 60 s for the headers, 300 s for the request, checked every 30 s: a client
    // sending a byte now and then held its connection for minutes.
    expect(HEADERS_TIMEOUT_MS).toBe(10_000);
    expect(REQUEST_TIMEOUT_MS).toBe(60_000);
    expect([l.server.headersTimeout, l.server.requestTimeout]).toEqual([
      HEADERS_TIMEOUT_MS,
      REQUEST_TIMEOUT_MS,
    ]);
    expect((l.server as unknown as { connectionsCheckingInterval: number }).connectionsCheckingInterval).toBe(
      CONNECTIONS_CHECK_MS,
    );
  });

  it('sets the same limits on any server listenOn starts (the demo page)', async () => {
    const server = createHttpServer((_req, res) => res.end('ok'));
    await listenOn(server, '127.0.0.1', 0);
    try {
      expect([server.headersTimeout, server.requestTimeout]).toEqual([
        HEADERS_TIMEOUT_MS,
        REQUEST_TIMEOUT_MS,
      ]);
    } finally {
      server.close();
    }
  });
});
