/**
 * The delivery stage against real HTTP and HTTPS servers (SPEC §6): TLS verification switch,
 * per-attempt timeout, refused schemes, and a signature over exactly the bytes sent.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createDeliverer } from '../../src/delivery/send.js';
import { createHttpClient } from '../../src/http-client.js';
import { createLogger } from '../../src/log.js';
import type { RequestSpec } from '../../src/mapping/types.js';
import { startWebhookTarget } from '../support/webhook-target.js';
import type { WebhookTarget } from '../support/webhook-target.js';

const SECRET = 'delivery-test-secret';
const logger = createLogger({ level: 'silent' });

function request(url: string, overrides: Partial<RequestSpec> = {}): RequestSpec {
  return { method: 'POST', url, headers: {}, query: {}, body: { hello: 'wörld', n: 1 }, ...overrides };
}

/** A self-signed certificate made for this run (no key material lives in the repository). */
function selfSignedCertificate(): { key: string; cert: string } {
  const directory = mkdtempSync(join(tmpdir(), 'tls-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-keyout', join(directory, 'key.pem'), '-out', join(directory, 'cert.pem')], { stdio: 'ignore' });
  return { key: readFileSync(join(directory, 'key.pem'), 'utf8'), cert: readFileSync(join(directory, 'cert.pem'), 'utf8') };
}

describe('delivery', () => {
  let tlsServer: Server;
  let tlsUrl: string;
  let target: WebhookTarget;

  before(async () => {
    tlsServer = createServer(selfSignedCertificate(), (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"over":"tls"}');
    });
    await new Promise<void>((resolve) => tlsServer.listen(0, '127.0.0.1', resolve));
    tlsUrl = `https://127.0.0.1:${(tlsServer.address() as AddressInfo).port}/secure`;
    target = await startWebhookTarget({
      secret: SECRET,
      respond: (received) => (received.path === '/hang' ? { hang: true } : { status: 200, body: 'ok' }),
    });
  });

  after(async () => {
    tlsServer.closeAllConnections();
    await new Promise((resolve) => tlsServer.close(resolve));
    await target.close();
  });

  it('refuses an untrusted certificate when TLS verification is on', async () => {
    const deliverer = createDeliverer({ http: createHttpClient({ verifyTls: true, userAgent: 'test' }), secret: SECRET, timeoutMs: 5000 });
    const result = await deliverer.deliver(request(tlsUrl), logger);
    assert.equal(result.kind, 'failure');
    assert.match(result.kind === 'failure' ? result.error.message : '', /self[- ]signed certificate/i);
  });

  it('accepts it when WEBHOOK_VERIFY_SSL is false', async () => {
    const deliverer = createDeliverer({ http: createHttpClient({ verifyTls: false, userAgent: 'test' }), secret: SECRET, timeoutMs: 5000 });
    const result = await deliverer.deliver(request(tlsUrl), logger);
    assert.equal(result.kind, 'response');
    assert.deepEqual(result.kind === 'response' ? result.response.json : undefined, { over: 'tls' });
  });

  it('gives up an attempt after the timeout', async () => {
    const deliverer = createDeliverer({ http: createHttpClient({ verifyTls: true, userAgent: 'test' }), secret: SECRET, timeoutMs: 300 });
    const startedAt = Date.now();
    const result = await deliverer.deliver(request(`${target.url}/hang`), logger);
    assert.equal(result.kind, 'failure');
    assert.equal(result.kind === 'failure' ? result.error.code : '', 'TIMEOUT');
    assert.match(result.kind === 'failure' ? result.error.message : '', /timed out after 0.3 s/);
    assert.ok(Date.now() - startedAt < 3000);
  });

  for (const url of ['file:///etc/passwd', 'ftp://127.0.0.1/x', 'javascript:alert(1)', 'not a url']) {
    it(`refuses ${url} without sending anything`, async () => {
      const deliverer = createDeliverer({ http: createHttpClient({ verifyTls: true, userAgent: 'test' }), secret: SECRET, timeoutMs: 1000 });
      const result = await deliverer.deliver(request(url), logger);
      assert.equal(result.kind, 'failure');
      assert.equal(result.kind === 'failure' ? result.error.code : '', 'INVALID_URL');
    });
  }

  it('signs exactly the compact body it sends, non-ASCII raw, with the query appended', async () => {
    const deliverer = createDeliverer({ http: createHttpClient({ verifyTls: true, userAgent: 'test' }), secret: SECRET, timeoutMs: 5000 });
    const result = await deliverer.deliver(request(`${target.url}/signed`, { query: { a: '1', tags: ['x', 'y'] }, headers: { 'X-Custom': 'yes' } }), logger);
    assert.equal(result.kind, 'response');
    const received = target.requests.find((entry) => entry.path === '/signed');
    assert.ok(received);
    assert.equal(received.rawBody, '{"hello":"wörld","n":1}');
    assert.equal(received.signatureValid, true);
    assert.equal(received.headers['x-custom'], 'yes');
    assert.equal(received.headers['content-type'], 'application/json');
    assert.match(String(received.headers['x-port-timestamp']), /^\d{10}$/);
    assert.deepEqual(received.query, { a: '1', tags: 'y' });
  });
});
