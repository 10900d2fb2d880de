import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Agent } from 'node:http';
import { IDLE_SOCKET_TIMEOUT_MS, createHttpClient, createHttpTransport, headerRecord, headersAsSent } from './http-client.js';

const CLIENT_OPTIONS = { verifyTls: true, userAgent: 'port-agent', maxSocketsPerHost: 4 };

/** Node.js keeps an agent's options on it, untyped in @types/node. */
type PoolingAgent = Agent & { options: { keepAlive?: boolean; timeout?: number } };

describe('idle keep-alive connections', () => {
  it('pool connections to internal services with an idle timeout, IDLE_SOCKET_TIMEOUT_MS unless told otherwise', () => {
    const byDefault = createHttpClient(CLIENT_OPTIONS);
    const shorter = createHttpClient({ ...CLIENT_OPTIONS, idleSocketTimeoutMs: 250 });
    for (const [client, timeoutMs] of [[byDefault, IDLE_SOCKET_TIMEOUT_MS], [shorter, 250]] as const) {
      for (const agent of [client.defaults.httpAgent as PoolingAgent, client.defaults.httpsAgent as PoolingAgent]) {
        assert.equal(agent.options.keepAlive, true);
        assert.equal(agent.options.timeout, timeoutMs);
      }
    }
  });

  it('refuses an idle timeout that is not a positive number, naming the option', () => {
    for (const idleSocketTimeoutMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(() => createHttpClient({ ...CLIENT_OPTIONS, idleSocketTimeoutMs }), /`idleSocketTimeoutMs`/);
      assert.throws(() => createHttpTransport('http://127.0.0.1:1', { ...CLIENT_OPTIONS, idleSocketTimeoutMs }), /`idleSocketTimeoutMs`/);
    }
  });
});

describe('headersAsSent', () => {
  it('keeps the names as the service spelled them', () => {
    assert.deepEqual(headersAsSent(['Location', 'http://x', 'X-Request-Id', '7', 'content-type', 'text/plain']), {
      Location: 'http://x',
      'X-Request-Id': '7',
      'content-type': 'text/plain',
    });
  });

  it('joins a repeated name, in any case, under its first spelling', () => {
    assert.deepEqual(headersAsSent(['Set-Cookie', 'a=1', 'X-Mixed', 'a', 'set-cookie', 'b=2', 'x-mixed', 'b']), { 'Set-Cookie': 'a=1, b=2', 'X-Mixed': 'a, b' });
  });

  it('ignores a name without a value', () => {
    assert.deepEqual(headersAsSent(['Location']), {});
  });
});

describe('headerRecord', () => {
  it('lower-cases names unless told to keep them, joins lists and leaves out empty values', () => {
    const given = { Location: 'http://x', 'Set-Cookie': ['a', 'b'], Gone: null, Count: 3 };
    assert.deepEqual(headerRecord(given), { location: 'http://x', 'set-cookie': 'a, b', count: '3' });
    assert.deepEqual(headerRecord(given, 'as-given'), { Location: 'http://x', 'Set-Cookie': 'a, b', Count: '3' });
    assert.deepEqual(headerRecord('not headers'), {});
  });
});
