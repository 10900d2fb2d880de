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
import { testDeliverer } from '../support/deliverer.js';
import { createLogger } from '../../src/log.js';
import type { RequestSpec } from '../../src/mapping/types.js';
import { refusedUrl, startWebhookTarget } from '../support/webhook-target.js';
import type { WebhookTarget } from '../support/webhook-target.js';

const SECRET = 'delivery-test-secret';
const context = { logger: createLogger({ level: 'silent' }), idempotencyKey: 'r_delivery_test', traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' };

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
    const deliverer = testDeliverer({ secret: SECRET, verifyTls: true, timeoutMs: 5000 });
    const result = await deliverer.deliver(request(tlsUrl), context);
    assert.equal(result.kind, 'failure');
    assert.match(result.kind === 'failure' ? result.error.message : '', /self[- ]signed certificate/i);
  });

  it('accepts it when WEBHOOK_VERIFY_SSL is false', async () => {
    const deliverer = testDeliverer({ secret: SECRET, verifyTls: false, timeoutMs: 5000 });
    const result = await deliverer.deliver(request(tlsUrl), context);
    assert.equal(result.kind, 'response');
    assert.deepEqual(result.kind === 'response' ? result.response.json : undefined, { over: 'tls' });
  });

  it('gives up an attempt after the timeout', async () => {
    const deliverer = testDeliverer({ secret: SECRET, verifyTls: true, timeoutMs: 300 });
    const startedAt = Date.now();
    const result = await deliverer.deliver(request(`${target.url}/hang`), context);
    assert.equal(result.kind, 'failure');
    assert.equal(result.kind === 'failure' ? result.error.code : '', 'TIMEOUT');
    assert.match(result.kind === 'failure' ? result.error.message : '', /timed out after 0.3 s/);
    assert.ok(Date.now() - startedAt < 3000);
  });

  for (const url of ['file:///etc/passwd', 'ftp://127.0.0.1/x', 'javascript:alert(1)', 'not a url']) {
    it(`refuses ${url} without sending anything`, async () => {
      const deliverer = testDeliverer({ secret: SECRET, verifyTls: true, timeoutMs: 1000 });
      const result = await deliverer.deliver(request(url), context);
      assert.equal(result.kind, 'failure');
      assert.equal(result.kind === 'failure' ? result.error.code : '', 'INVALID_URL');
    });
  }

  it('signs exactly the compact body it sends, non-ASCII raw, with the query appended', async () => {
    const deliverer = testDeliverer({ secret: SECRET, verifyTls: true, timeoutMs: 5000 });
    const result = await deliverer.deliver(request(`${target.url}/signed`, { query: { a: '1', tags: ['x', 'y'] }, headers: { 'X-Custom': 'yes' } }), context);
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

describe('delivery under failure (issue 5)', () => {
  let target: WebhookTarget;
  const answers = new Map<string, number[]>();

  before(async () => {
    target = await startWebhookTarget({
      secret: SECRET,
      respond: (received) => {
        if (received.path.startsWith('/hang')) return { hang: true };
        const queue = answers.get(received.path);
        const status = queue?.shift() ?? 200;
        return status === 429 ? { status, headers: { 'Retry-After': '1' } } : { status, body: `answer ${status}` };
      },
    });
  });

  after(async () => {
    await target.close();
  });

  it('retries 5xx and 429, honours Retry-After, and sends the same idempotency key each time', async () => {
    answers.set('/flaky', [503, 429, 200]);
    const notices: string[] = [];
    const startedAt = Date.now();
    const result = await testDeliverer({ secret: SECRET, retries: 3 }).deliver(request(`${target.url}/flaky`), {
      ...context,
      idempotencyKey: 'r_flaky',
      onRetry: (notice) => {
        notices.push(notice.reason);
      },
    });
    assert.equal(result.kind, 'response');
    assert.equal(result.kind === 'response' ? result.response.status : 0, 200);
    assert.equal(result.attempts, 3);
    assert.deepEqual(notices, ['status code 503', 'status code 429']);
    assert.ok(Date.now() - startedAt >= 1000, 'waited for Retry-After: 1');
    const keys = target.requests.filter((entry) => entry.path === '/flaky').map((entry) => entry.headers['idempotency-key']);
    assert.deepEqual(keys, ['r_flaky', 'r_flaky', 'r_flaky']);
    const traceparents = target.requests.filter((entry) => entry.path === '/flaky').map((entry) => entry.headers.traceparent);
    assert.deepEqual(traceparents, [context.traceparent, context.traceparent, context.traceparent]);
  });

  it('gives up after the retries and returns the last answer', async () => {
    answers.set('/down', [500, 500, 500]);
    const result = await testDeliverer({ secret: SECRET, retries: 2 }).deliver(request(`${target.url}/down`), context);
    assert.equal(result.kind === 'response' ? result.response.status : 0, 500);
    assert.equal(result.attempts, 3);
  });

  it('does not retry a 4xx answer', async () => {
    answers.set('/bad-request', [400, 200]);
    const result = await testDeliverer({ secret: SECRET, retries: 3 }).deliver(request(`${target.url}/bad-request`), context);
    assert.equal(result.kind === 'response' ? result.response.status : 0, 400);
    assert.equal(result.attempts, 1);
  });

  it('opens the circuit of a host that keeps refusing connections and fails at once', async () => {
    const deliverer = testDeliverer({ secret: SECRET, retries: 0 });
    const dead = `${await refusedUrl()}/dead`;
    for (let attempt = 0; attempt < 5; attempt += 1) {
      const result = await deliverer.deliver(request(dead), context);
      assert.equal(result.kind === 'failure' ? result.error.code : '', 'ECONNREFUSED');
    }
    const result = await deliverer.deliver(request(dead), context);
    assert.equal(result.kind === 'failure' ? result.error.code : '', 'CIRCUIT_OPEN');
    assert.match(result.kind === 'failure' ? result.error.message : '', /circuit breaker for 127\.0\.0\.1:\d+ is open/);
  });

  it('keeps a hanging host from holding the others: the healthy host is served at full speed', async () => {
    const deliverer = testDeliverer({ secret: SECRET, timeoutMs: 3000, maxInFlight: 10, perHostLimit: 4 });
    const healthyTarget = await startWebhookTarget({ secret: SECRET, respond: () => ({ status: 200, delayMs: 20 }) });
    try {
      const hanging = Array.from({ length: 20 }, (_, index) => deliverer.deliver(request(`${target.url}/hang-${index}`), context));
      const startedAt = Date.now();
      const healthy = await Promise.all(Array.from({ length: 30 }, (_, index) => deliverer.deliver(request(`${healthyTarget.url}/ok-${index}`), context)));
      const elapsedMs = Date.now() - startedAt;
      assert.ok(healthy.every((result) => result.kind === 'response' && result.response.status === 200));
      // 30 requests of 20 ms through the 6 slots the hanging host cannot take: ~100 ms, far below its 3 s timeout.
      assert.ok(elapsedMs < 1000, `healthy requests took ${elapsedMs} ms`);
      await Promise.all(hanging);
    } finally {
      await healthyTarget.close();
    }
  });
});
