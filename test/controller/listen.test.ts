/**
 * `--listen :8080` (the shipped Deployment's) listens on every address of the pod, IPv6 included: on an
 * IPv6 single-stack cluster the kubelet probes `http://[pod IPv6]:8080/readyz` and the Service sends
 * flows and webhooks to that address too.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { controllerApp, listen, parseListen } from '../../src/controller/server.ts';
import type { Listening } from '../../src/controller/server.ts';
import { ListenError } from '../../src/server/listen.ts';

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
