/**
 * The Port API client against the Port stand-in (SPEC §7): one token reused, refreshed shortly
 * before it expires and after a 401, and failures returned as values with the route and status.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../../src/log.js';
import { startPortStandIn } from '../support/port-stand-in.js';
import { capturingLogger } from '../support/log-lines.js';
import { testPortClient } from '../support/reporter.js';
import type { PortStandIn } from '../support/port-stand-in.js';

const logger = createLogger({ level: 'silent' });

describe('Port API client', () => {
  let port: PortStandIn;
  let nowMs = 1_000_000;

  before(async () => {
    port = await startPortStandIn({ tokenTtlSeconds: 600 });
  });

  after(async () => {
    await port.close();
  });

  function client(clientSecret = port.clientSecret) {
    return testPortClient(port, {
      clientSecret,
      logger,
      now: () => nowMs,
      retryPolicy: { retries: 3, minTimeoutMs: 10, maxTimeoutMs: 50, maxRetryTimeMs: 5000 },
      outageMaxBackoffMs: 50,
    }).client;
  }

  const log = (runId: string) => ['POST', `/v1/actions/runs/${runId}/logs`, 'POST /v1/actions/runs/:runId/logs', { message: 'hello' }] as const;

  it('fetches one token for many calls, even concurrent ones, and sends the user agent', async () => {
    const before = port.tokenRequests();
    const api = client();
    const results = await Promise.all(Array.from({ length: 10 }, (_, index) => api.call(...log(`r_many_${index}`))));
    assert.ok(results.every((result) => result.ok));
    assert.equal(port.tokenRequests() - before, 1);
    assert.equal(api.tokenRequests(), 1);
    assert.equal(port.callsTo('POST /v1/actions/runs/:runId/logs').at(-1)?.headers['user-agent'], 'port-agent');
  });

  it('refreshes the token shortly before it expires', async () => {
    const api = client();
    await api.call(...log('r_expiry_1'));
    nowMs += 500_000;
    await api.call(...log('r_expiry_2'));
    assert.equal(api.tokenRequests(), 1, 'still valid for a while');
    nowMs += 50_000;
    await api.call(...log('r_expiry_3'));
    assert.equal(api.tokenRequests(), 2, 'renewed within the last minute of its life');
  });

  it('fetches a new token when a call answers 401 and repeats the call once', async () => {
    const api = client();
    await api.call(...log('r_401_a'));
    port.expireTokens();
    const result = await api.call(...log('r_401_b'));
    assert.equal(result.ok, true);
    assert.equal(api.tokenRequests(), 2);
    assert.deepEqual(port.actionRunLogs('r_401_b'), ['hello']);
  });

  it('retries 503, 429 (after Retry-After) and recovers', async () => {
    const api = client();
    port.failNext('PATCH /v1/actions/runs/:runId', 1, { status: 503 });
    port.failNext('PATCH /v1/actions/runs/:runId', 1, { status: 429, retryAfterSeconds: 1 });
    const startedAt = Date.now();
    const result = await api.call('PATCH', '/v1/actions/runs/r_flaky_port', 'PATCH /v1/actions/runs/:runId', { status: 'SUCCESS' });
    assert.equal(result.ok, true);
    assert.ok(Date.now() - startedAt >= 1000, 'waited for Retry-After');
    assert.equal(port.apiCallsForRun('r_flaky_port').length, 3);
    assert.deepEqual(port.actionRunPatches('r_flaky_port'), [{ status: 'SUCCESS' }]);
  });

  it('waits for the Retry-After of a 503 before the next attempt', async () => {
    const api = client();
    port.failNext('PATCH /v1/actions/runs/:runId', 1, { status: 503, retryAfterSeconds: 1 });
    const startedAt = Date.now();
    const result = await api.call('PATCH', '/v1/actions/runs/r_503_retry_after', 'PATCH /v1/actions/runs/:runId', { status: 'SUCCESS' });
    assert.equal(result.ok, true);
    assert.ok(Date.now() - startedAt >= 1000, 'waited for Retry-After');
  });

  it('returns a failure with route and status, instead of throwing, once the retries are spent', async () => {
    const api = client();
    port.failNext('PATCH /v1/actions/runs/:runId', 4, { status: 503, body: { ok: false, error: 'unavailable' } });
    const result = await api.call('PATCH', '/v1/actions/runs/r_503', 'PATCH /v1/actions/runs/:runId', { status: 'SUCCESS' });
    assert.equal(result.ok, false);
    assert.equal(result.ok ? 0 : result.status, 503);
    assert.equal(result.ok ? '' : result.error.route, 'PATCH /v1/actions/runs/:runId');
    assert.equal(port.apiCallsForRun('r_503').length, 4, 'the first attempt and three retries');
  });

  it('does not retry a 4xx answer other than 401 and 429', async () => {
    const api = client();
    port.failNext('POST /v1/actions/runs/:runId/logs', 1, { status: 404 });
    const result = await api.call(...log('r_404'));
    assert.equal(result.ok ? 0 : result.status, 404);
    assert.equal(port.apiCallsForRun('r_404').length, 1);
  });

  it('reports bad credentials as a failed call, without the secret in the error', async () => {
    const api = client('wrong-secret-value');
    const result = await api.call(...log('r_bad_credentials'));
    assert.equal(result.ok, false);
    assert.equal(result.ok ? 0 : result.status, 401);
    assert.doesNotMatch(result.ok ? '' : `${result.error.message} ${result.text}`, /wrong-secret-value/);
  });

  it('sends no body over 1 MiB: the call fails for good without reaching Port', async () => {
    const api = client();
    const result = await api.call('POST', '/v1/actions/runs/r_too_big/logs', 'POST /v1/actions/runs/:runId/logs', { message: 'x'.repeat(1_100_000) });
    assert.equal(result.ok, false);
    assert.equal(result.ok ? 0 : result.status, 413);
    assert.equal(result.ok ? false : result.isPermanent, true);
    assert.equal(port.apiCallsForRun('r_too_big').length, 0);
  });

  it('untilAnswered: rides out more 503s than the retry policy allows, but gives up on repeated 500s', async () => {
    const api = client();
    port.failNext('PATCH /v1/actions/runs/:runId', 6, { status: 503 });
    const answered = await api.call('PATCH', '/v1/actions/runs/r_outage', 'PATCH /v1/actions/runs/:runId', { status: 'SUCCESS' }, {}, { untilAnswered: true, priority: 'final' });
    assert.equal(answered.ok, true);
    assert.equal(port.apiCallsForRun('r_outage').length, 7);
    port.failNext('PATCH /v1/actions/runs/:runId', 10, { status: 500 });
    const broken = await api.call('PATCH', '/v1/actions/runs/r_broken', 'PATCH /v1/actions/runs/:runId', { status: 'SUCCESS' }, {}, { untilAnswered: true, priority: 'final' });
    assert.equal(broken.ok ? 0 : broken.status, 500);
    assert.equal(port.apiCallsForRun('r_broken').length, 4, 'the first attempt and the policy’s three retries');
  });

  it('untilAnswered: waits for an access token however often Port refuses one, saying so once', async () => {
    const { logger: capturing, lines } = capturingLogger('info');
    const api = testPortClient(port, {
      logger: capturing,
      retryPolicy: { retries: 3, minTimeoutMs: 10, maxTimeoutMs: 50, maxRetryTimeMs: 5000 },
      outageMaxBackoffMs: 50,
    }).client;
    port.failNext('POST /v1/auth/access_token', 5, { status: 401 });
    const result = await api.call(...log('r_token_trouble'), {}, { untilAnswered: true, priority: 'final' });
    assert.equal(result.ok, true);
    assert.deepEqual(port.actionRunLogs('r_token_trouble'), ['hello']);
    assert.deepEqual(
      lines.map((line) => line.msg),
      ['could not get an access token from Port; calls that need one wait and retry', 'access token obtained again'],
    );
  });
});
