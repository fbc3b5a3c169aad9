import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:https';
import type { Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeClient } from '../../src/controller/kube.ts';

let dir = '';
let server: Server;
let port = 0;
/** TLS connections the server accepted. */
let connections = 0;

/** A self-signed certificate and its key, as base64 of their PEM (kubeconfig `*-data`). */
function keyPair(name: string): { cert: string; key: string } {
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1'].concat([
      '-subj',
      `/CN=${name}`,
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      join(dir, `${name}.key`),
      '-out',
      join(dir, `${name}.crt`),
    ]),
    { stdio: 'ignore' },
  );
  const b64 = (f: string) => readFileSync(join(dir, f)).toString('base64');
  return { cert: b64(`${name}.crt`), key: b64(`${name}.key`) };
}

function kubeConfig(user: { cert: string; key: string }): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `https://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'u', token: 't', certData: user.cert, keyData: user.key }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'microseg-kube-'));
  const tls = keyPair('server');
  server = createServer(
    { cert: Buffer.from(tls.cert, 'base64'), key: Buffer.from(tls.key, 'base64') },
    (req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ path: req.url }));
    },
  );
  server.on('secureConnection', () => connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

describe('KubeClient connections', () => {
  it('reuses its TLS connections across requests, and makes new ones when the certificate changes', async () => {
    const first = keyPair('client-1');
    const kc = kubeConfig(first);
    const client = new KubeClient(kc);
    /** New connections made by `n` requests one after the other. */
    const sequential = async (c: KubeClient, n: number) => {
      const before = connections;
      for (let i = 0; i < n; i++)
        expect(await c.get(`/api/v1/namespaces/n${i}`)).toEqual({ path: `/api/v1/namespaces/n${i}` });
      return connections - before;
    };
    // Kept alive and reused, not one per request (undici may open a second one while it has not yet
    // taken the first back after a response).
    const made = await sequential(client, 20);
    expect(made).toBeGreaterThanOrEqual(1);
    expect(made).toBeLessThanOrEqual(2);
    // Concurrent requests: at most one new connection each; reused afterwards.
    const before = connections;
    await Promise.all(Array.from({ length: 4 }, (_, i) => client.get(`/api/v1/pods/p${i}`)));
    expect(connections - before).toBeLessThanOrEqual(4);
    expect(await sequential(client, 10)).toBe(0);
    // Another client over the same KubeConfig shares them.
    expect(await sequential(new KubeClient(kc), 10)).toBe(0);

    // The client certificate rotated (a kubeconfig read again, an exec credential renewed): new
    // connections, which present the new one.
    const second = keyPair('client-2');
    const user = kc.getCurrentUser() as { certData?: string; keyData?: string };
    user.certData = second.cert;
    user.keyData = second.key;
    const renewed = await sequential(client, 10);
    expect(renewed).toBeGreaterThanOrEqual(1);
    expect(renewed).toBeLessThanOrEqual(2);
  });

  it('requests in flight when the certificate rotates still complete on the dispatcher they took', async () => {
    const kc = kubeConfig(keyPair('client-a'));
    const client = new KubeClient(kc);
    await client.get('/api/v1/namespaces/warm');
    const user = kc.getCurrentUser() as { certData?: string; keyData?: string };
    const next = keyPair('client-b');
    // Started together; the rotation lands between them taking a dispatcher and sending.
    const inFlight = Array.from({ length: 16 }, (_, i) => client.get(`/api/v1/pods/q${i}`));
    user.certData = next.cert;
    user.keyData = next.key;
    const after = Array.from({ length: 16 }, (_, i) => client.get(`/api/v1/pods/r${i}`));
    const all = await Promise.allSettled([...inFlight, ...after]);
    expect(all.filter((r) => r.status === 'rejected').map((r) => String(r.reason))).toEqual([]);
  });
});
