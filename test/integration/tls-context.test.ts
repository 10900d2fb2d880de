/**
 * The trusted CAs are built into one TLS context at start and every client reuses it: given as
 * `ca`, tls.connect builds a context for each connection again, which with a few hundred CAs costs
 * tens of milliseconds per handshake (src/trust/secure-context.ts). Counted by wrapping
 * tls.createSecureContext, which tls.connect calls for every connection that brings no context.
 */
import assert from 'node:assert/strict';
import { request as httpsRequest, createServer } from 'node:https';
import type { Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import tls, { rootCertificates } from 'node:tls';
import { createHttpClient, createHttpTransport } from '../../src/net/http-client.js';
import { trustedSecureContext } from '../../src/trust/secure-context.js';
import { startForwardProxy } from '../support/forward-proxy.js';
import type { ForwardProxy } from '../support/forward-proxy.js';
import { createTestCa } from '../support/test-ca.js';
import type { TestCa } from '../support/test-ca.js';

const REQUESTS_PER_CLIENT = 3;

/** Runs `work`, counting the TLS contexts built meanwhile. */
async function contextsBuiltDuring(work: () => Promise<void>): Promise<number> {
  const original = tls.createSecureContext;
  let built = 0;
  tls.createSecureContext = (...args) => {
    built += 1;
    return original(...args);
  };
  try {
    await work();
  } finally {
    tls.createSecureContext = original;
  }
  return built;
}

describe('one TLS context for every connection', () => {
  let ca: TestCa;
  let server: Server;
  let url: string;
  let proxy: ForwardProxy;
  let handshakes = 0;

  before(async () => {
    ca = createTestCa();
    // `Connection: close`: every request needs a new connection, and so a handshake.
    server = createServer(ca.server, (_request, response) => response.writeHead(200, { connection: 'close' }).end('ok'));
    server.on('secureConnection', () => {
      handshakes += 1;
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `https://localhost:${(server.address() as AddressInfo).port}`;
    proxy = await startForwardProxy();
  });

  after(async () => {
    await proxy.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const secureContext = () => trustedSecureContext([...rootCertificates, ca.caPem]);
  const viaProxy = () => ({ httpProxy: undefined, httpsProxy: proxy.url, allProxy: undefined, noProxy: '' });
  const options = { verifyTls: true, userAgent: 'port-agent', maxSocketsPerHost: 4 };

  it('counts a context per connection for a client given `ca` (the wrapper sees what tls.connect builds)', async () => {
    const built = await contextsBuiltDuring(async () => {
      for (let index = 0; index < REQUESTS_PER_CLIENT; index += 1) {
        await new Promise<void>((resolve, reject) => {
          httpsRequest(url, { ca: [...rootCertificates, ca.caPem] }, (response) => response.resume().on('end', resolve)).on('error', reject).end();
        });
      }
    });
    assert.equal(built, REQUESTS_PER_CLIENT);
  });

  it('webhook calls (axios), direct and tunnelled through a proxy, build none', async () => {
    const context = secureContext();
    const direct = createHttpClient({ ...options, secureContext: context });
    const tunnelled = createHttpClient({ ...options, proxy: viaProxy(), secureContext: context });
    const handshakesBefore = handshakes;
    const built = await contextsBuiltDuring(async () => {
      for (let index = 0; index < REQUESTS_PER_CLIENT; index += 1) {
        assert.equal((await direct.get(`${url}/direct`)).status, 200);
        assert.equal((await tunnelled.get(`${url}/tunnelled`)).status, 200);
      }
    });
    assert.equal(handshakes - handshakesBefore, 2 * REQUESTS_PER_CLIENT, 'a new verified connection for each request');
    assert.equal(built, 0);
  });

  it('Port API calls (undici), direct and tunnelled through a proxy, build none', async () => {
    const context = secureContext();
    const direct = createHttpTransport(url, { ...options, secureContext: context });
    const tunnelled = createHttpTransport(url, { ...options, proxy: viaProxy(), secureContext: context });
    const handshakesBefore = handshakes;
    const call = { method: 'GET', headers: {}, body: undefined, timeoutMs: 5_000 };
    try {
      const built = await contextsBuiltDuring(async () => {
        for (let index = 0; index < REQUESTS_PER_CLIENT; index += 1) {
          assert.equal((await direct.send({ ...call, path: '/direct' })).status, 200);
          assert.equal((await tunnelled.send({ ...call, path: '/tunnelled' })).status, 200);
        }
      });
      assert.equal(handshakes - handshakesBefore, 2 * REQUESTS_PER_CLIENT, 'a new verified connection for each request');
      assert.equal(built, 0);
    } finally {
      await direct.close();
      await tunnelled.close();
    }
  });
});
