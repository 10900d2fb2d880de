import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startAgent } from '../support/agent-process.js';
import { startBroker } from '../support/broker.js';
import type { Broker } from '../support/broker.js';
import { committedOffsets, createKafka, disconnectKafkaClients, produce, uniqueName } from '../support/kafka.js';
import { startPortStandIn } from '../support/port-stand-in.js';
import type { PortStandIn, PortStandInOptions } from '../support/port-stand-in.js';
import { waitFor } from '../support/wait.js';
import { refusedUrl, startWebhookTarget } from '../support/webhook-target.js';

const isExternalBroker = Boolean(process.env.TEST_KAFKA_BROKERS?.trim());

function processState(pid: number): string {
  // /proc/<pid>/stat: "pid (comm) STATE ..."; comm is "kcat" here, so no parentheses inside.
  return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.charAt(0) ?? '';
}

function errorCode(error: unknown): unknown {
  const cause = error instanceof Error ? error.cause : undefined;
  return typeof cause === 'object' && cause !== null && 'code' in cause ? cause.code : undefined;
}

describe('waitFor', () => {
  it('resolves with the first truthy value of the probe', async () => {
    let calls = 0;
    const value = await waitFor(() => (++calls >= 3 ? `after ${calls}` : undefined), { intervalMs: 1 });
    assert.equal(value, 'after 3');
  });

  it('names what it waited for when it times out', async () => {
    await assert.rejects(waitFor(() => false, { timeoutMs: 30, description: 'the impossible' }), {
      message: 'Timed out after 30 ms waiting for the impossible',
    });
  });
});

describe('broker', () => {
  let broker: Broker;

  before(async () => {
    broker = await startBroker();
  });

  after(async () => {
    await disconnectKafkaClients();
    await broker.stop();
  });

  it('consumes a produced message back and reports the offset the group committed', async () => {
    const topic = uniqueName('support-topic');
    const groupId = uniqueName('support-group');
    await produce(broker.brokers, topic, [{ key: 'k1', value: 'hello', partition: 2, headers: { source: 'test' } }]);

    const consumer = createKafka(broker.brokers).consumer({ groupId, sessionTimeout: 6000, maxWaitTimeInMs: 50 });
    const received: { partition: number; offset: string; value: string; source: string }[] = [];
    try {
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachMessage: async ({ partition, message }) => {
          received.push({
            partition,
            offset: message.offset,
            value: message.value?.toString('utf8') ?? '',
            source: message.headers?.source?.toString() ?? '',
          });
          await consumer.commitOffsets([{ topic, partition, offset: (BigInt(message.offset) + 1n).toString() }]);
        },
      });
      await waitFor(() => received.length > 0, { timeoutMs: 30_000, description: 'the produced message' });
      assert.deepEqual(received, [{ partition: 2, offset: '0', value: 'hello', source: 'test' }]);

      const offsets = await waitFor(
        async () => {
          const committed = await committedOffsets(broker.brokers, groupId, topic);
          return committed.get(2) === '1' && committed;
        },
        { timeoutMs: 10_000, description: 'the committed offset' },
      );
      assert.equal(offsets.get(2), '1');
      assert.equal(offsets.get(0), '-1', 'a partition without a commit reads -1');
    } finally {
      await consumer.disconnect();
    }
  });

  it('freezes and thaws the broker process', async () => {
    if (isExternalBroker) {
      assert.throws(() => broker.freeze(), /not supported with an external broker/);
      return;
    }
    const pid = broker.pid;
    assert.ok(pid !== undefined);
    // Signals are delivered asynchronously: wait for the state to change.
    broker.freeze();
    try {
      await waitFor(() => processState(pid) === 'T', { timeoutMs: 2_000, description: 'the broker to be stopped' });
    } finally {
      broker.thaw();
    }
    await waitFor(() => processState(pid) !== 'T', { timeoutMs: 2_000, description: 'the broker to run again' });
  });

  it('starts a mock cluster of several brokers and stops it for good', async () => {
    if (isExternalBroker) return;
    const cluster = await startBroker({ brokers: 3 });
    const pid = cluster.pid;
    assert.equal(cluster.brokers.length, 3);
    for (const address of cluster.brokers) assert.match(address, /^127\.0\.0\.1:\d+$/);
    await cluster.stop();
    assert.ok(pid !== undefined);
    assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' });
    await assert.rejects(fetch(`http://${cluster.brokers[0] ?? ''}/`), (error: unknown) => {
      assert.equal(errorCode(error), 'ECONNREFUSED');
      return true;
    });
  });
});

describe('Port stand-in', () => {
  let port: PortStandIn;

  const token = async (): Promise<string> => {
    const response = await fetch(`${port.url}/v1/auth/access_token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ clientId: port.clientId, clientSecret: port.clientSecret }),
    });
    assert.equal(response.status, 200);
    const body = (await response.json()) as { accessToken: string; expiresIn: number; tokenType: string };
    assert.equal(body.expiresIn, 120);
    assert.equal(body.tokenType, 'Bearer');
    return body.accessToken;
  };

  const call = (method: string, path: string, accessToken: string | undefined, body?: unknown, headers: Record<string, string> = {}) =>
    fetch(`${port.url}${path}`, {
      method,
      headers: {
        'content-type': 'application/json',
        ...(accessToken === undefined ? {} : { authorization: `Bearer ${accessToken}` }),
        ...headers,
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });

  before(async () => {
    port = await startPortStandIn({
      tokenTtlSeconds: 120,
      kafkaCredentials: { brokers: ['127.0.0.1:1'], username: 'u', password: 'p' },
    });
  });

  after(async () => {
    await port.close();
  });

  it('issues tokens for the right credentials only', async () => {
    const accessToken = await token();
    assert.match(accessToken, /^[0-9a-f]{48}$/);
    assert.notEqual(await token(), accessToken);
    const wrong = await call('POST', '/v1/auth/access_token', undefined, { clientId: port.clientId, clientSecret: 'nope' });
    assert.equal(wrong.status, 401);
    assert.equal(port.tokenRequests(), 3);
  });

  it('rejects calls without a valid, unexpired token with 401', async () => {
    const missing = await call('GET', '/v1/kafka-credentials', undefined);
    assert.equal(missing.status, 401);
    assert.deepEqual(await missing.json(), { ok: false, error: 'unauthorized' });
    assert.equal((await call('GET', '/v1/kafka-credentials', 'forged')).status, 401);

    const accessToken = await token();
    const ok = await call('GET', '/v1/kafka-credentials', accessToken);
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), { ok: true, credentials: { brokers: ['127.0.0.1:1'], username: 'u', password: 'p' } });

    port.expireTokens();
    const expired = await call('GET', '/v1/kafka-credentials', accessToken);
    assert.equal(expired.status, 401);
    assert.deepEqual(
      port.callsTo('GET /v1/kafka-credentials').map((recorded) => recorded.status),
      [401, 401, 200, 401],
    );
  });

  it('records run logs, responses and status patches per run', async () => {
    const accessToken = await token();
    const runId = uniqueName('r');
    assert.equal((await call('POST', `/v1/actions/runs/${runId}/logs`, accessToken, { message: 'first' })).status, 201);
    assert.equal((await call('POST', `/v1/actions/runs/${runId}/logs`, accessToken, { message: 'second' })).status, 201);
    assert.equal((await call('PATCH', `/v1/actions/runs/${runId}/response`, accessToken, { response: { a: 1 } })).status, 200);
    assert.equal((await call('PATCH', `/v1/actions/runs/${runId}`, accessToken, { status: 'SUCCESS' })).status, 200);
    assert.equal((await call('POST', `/v1/actions/runs/${runId}/logs`, undefined, { message: 'unauthorized' })).status, 401);

    assert.deepEqual(port.actionRunLogs(runId), ['first', 'second']);
    assert.deepEqual(port.actionRunResponses(runId), [{ a: 1 }]);
    assert.deepEqual(port.actionRunPatches(runId), [{ status: 'SUCCESS' }]);
    assert.equal(port.apiCallsForRun(runId).length, 5);
    const [firstLog] = port.apiCallsForRun(runId);
    assert.equal(firstLog?.route, 'POST /v1/actions/runs/:runId/logs');
    assert.deepEqual(firstLog?.params, { runId });

    const nodeRunId = uniqueName('wfnr');
    await call('POST', `/v1/workflows/nodes/runs/${nodeRunId}/logs`, accessToken, { logs: [{ level: 'INFO', message: 'received' }] });
    await call('PATCH', `/v1/workflows/nodes/runs/${nodeRunId}`, accessToken, { status: 'COMPLETED', result: 'FAILED' });
    assert.deepEqual(port.nodeRunLogs(nodeRunId), ['received']);
    assert.deepEqual(port.nodeRunPatches(nodeRunId), [{ status: 'COMPLETED', result: 'FAILED' }]);

    assert.equal((await call('PATCH', '/v1/organization', accessToken, { settings: { portAgentStreamerName: 'KAFKA' } })).status, 200);
    assert.equal((await call('GET', '/v1/nowhere', accessToken)).status, 404);
  });

  it('fails the next calls of a route as told: 429 with Retry-After, 503, then answers again', async () => {
    const accessToken = await token();
    const runId = uniqueName('r');
    port.failNext('POST /v1/actions/runs/:runId/logs', 1, { status: 429, retryAfterSeconds: 2 });
    port.failNext('POST /v1/actions/runs/:runId/logs', 1, { status: 503 });

    const throttled = await call('POST', `/v1/actions/runs/${runId}/logs`, accessToken, { message: 'one' });
    assert.equal(throttled.status, 429);
    assert.equal(throttled.headers.get('retry-after'), '2');
    const unavailable = await call('POST', `/v1/actions/runs/${runId}/logs`, accessToken, { message: 'one' });
    assert.equal(unavailable.status, 503);
    const accepted = await call('POST', `/v1/actions/runs/${runId}/logs`, accessToken, { message: 'one' });
    assert.equal(accepted.status, 201);

    assert.deepEqual(port.actionRunLogs(runId), ['one'], 'failed calls are not logs Port accepted');
    assert.deepEqual(
      port.apiCallsForRun(runId).map((recorded) => recorded.status),
      [429, 503, 201],
    );
  });

  it('takes a status from a run log line, as a status patch would', async () => {
    const accessToken = await token();
    const runId = uniqueName('r');
    const log = (body: Record<string, unknown>) => call('POST', `/v1/actions/runs/${runId}/logs`, accessToken, body);
    assert.equal(port.actionRunStatus(runId), undefined, 'no status before any');
    assert.equal((await log({ message: 'started' })).status, 201);
    assert.equal((await call('PATCH', `/v1/actions/runs/${runId}`, accessToken, { link: 'https://ci.internal/1' })).status, 200);
    assert.equal(port.actionRunStatus(runId), undefined, 'a patch without a status sets none');
    assert.equal((await log({ message: 'deployed', terminationStatus: 'SUCCESS', statusLabel: 'Deployed' })).status, 201);
    assert.equal(port.actionRunStatus(runId), 'SUCCESS');

    for (const bad of [{ terminationStatus: 'DONE' }, { terminationStatus: null }, { terminationStatus: 'success' }, { statusLabel: 5 }]) {
      const refused = await log({ message: 'refused', ...bad });
      assert.equal(refused.status, 422, JSON.stringify(bad));
      assert.equal(((await refused.json()) as { error: string }).error, 'invalid_request');
    }
    assert.equal((await call('PATCH', `/v1/actions/runs/${runId}`, accessToken, { status: 'FAILURE', summary: 'rolled back' })).status, 200);
    assert.equal(port.actionRunStatus(runId), 'FAILURE', 'the last status accepted, whichever the route');
    assert.equal((await log({ message: 'retried', terminationStatus: 'SUCCESS' })).status, 201);

    assert.deepEqual(port.actionRunPatches(runId), [
      { link: 'https://ci.internal/1' },
      { status: 'SUCCESS', statusLabel: 'Deployed' },
      { status: 'FAILURE', summary: 'rolled back' },
      { status: 'SUCCESS' },
    ]);
    assert.equal(port.actionRunStatus(runId), 'SUCCESS');
    assert.deepEqual(port.actionRunLogs(runId), ['started', 'deployed', 'retried'], 'refused lines are not logs');
    assert.deepEqual(port.actionRunLogCalls(runId), [
      { message: 'started' },
      { message: 'deployed', terminationStatus: 'SUCCESS', statusLabel: 'Deployed' },
      { message: 'retried', terminationStatus: 'SUCCESS' },
    ]);
  });

  it('hangs a call until the client gives up', async () => {
    const accessToken = await token();
    port.failNext('PATCH /v1/actions/runs/:runId', 1, { hang: true });
    const runId = uniqueName('r');
    const hung = fetch(`${port.url}/v1/actions/runs/${runId}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json' },
      body: '{}',
      signal: AbortSignal.timeout(200),
    });
    await assert.rejects(hung, { name: 'TimeoutError' });
    const [hanging] = port.apiCallsForRun(runId);
    assert.equal(hanging?.status, undefined, 'a hanging call has no status');
    assert.equal((await call('PATCH', `/v1/actions/runs/${runId}`, accessToken, { status: 'FAILURE' })).status, 200);
  });

  it('hands out queued runs to claims and acks each claimed run once', async () => {
    const accessToken = await token();
    const reserved = { 'x-port-reserved-usage': 'true' };
    port.enqueueActionRuns([{ id: 'r_1', payload: {} }, { id: 'r_2', payload: {} }]);
    const claim = await call(
      'POST',
      '/v1/actions/runs/claim-pending',
      accessToken,
      { installationId: '_PORT_EXEC_AGENT', limit: 1, invocationMethod: 'WEBHOOK' },
      reserved,
    );
    assert.deepEqual(await claim.json(), { ok: true, runs: [{ id: 'r_1', payload: {} }] });
    const ack = (runId: string) => call('PATCH', '/v1/actions/runs/ack', accessToken, { runIds: [runId] }, reserved);
    assert.deepEqual(await (await ack('r_1')).json(), { ok: true, ackedCount: 1 });
    assert.deepEqual(await (await ack('r_1')).json(), { ok: true, ackedCount: 0 });
    assert.deepEqual(await (await ack('r_2')).json(), { ok: true, ackedCount: 0 }, 'r_2 was not claimed yet');

    port.enqueueNodeRuns([{ identifier: 'wfnr_1' }]);
    const nodeClaim = await call('POST', '/v1/workflows/runs/claim-pending', accessToken, { installationId: '_PORT_EXEC_AGENT', limit: 10 });
    assert.deepEqual(await nodeClaim.json(), { ok: true, nodeRuns: [{ identifier: 'wfnr_1' }] });
    const nodeAck = await call('PATCH', '/v1/workflows/runs/ack', accessToken, { nodeRunIdentifier: 'wfnr_1' }, reserved);
    assert.deepEqual(await nodeAck.json(), { ok: true, acked: true });

    assert.deepEqual(
      port.callsTo('PATCH /v1/actions/runs/ack').map((recorded) => recorded.hasReservedUsageHeader),
      [true, true, true],
    );
    assert.deepEqual(
      port.callsTo('POST /v1/workflows/runs/claim-pending').map((recorded) => recorded.hasReservedUsageHeader),
      [false],
    );
  });
});

describe('Port stand-in, far away and rationed', () => {
  const RATE_LIMIT_HEADERS = ['x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset', 'x-ratelimit-period'];

  /** A stand-in of the test's own, closed when the test ends. */
  async function startPort(options: PortStandInOptions): Promise<PortStandIn> {
    const started = await startPortStandIn(options);
    after(() => started.close());
    return started;
  }

  const call = (port: PortStandIn, method: string, path: string, accessToken?: string, body?: unknown, signal?: AbortSignal) =>
    fetch(`${port.url}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...(accessToken === undefined ? {} : { authorization: `Bearer ${accessToken}` }) },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
      ...(signal === undefined ? {} : { signal }),
    });

  const requestToken = (port: PortStandIn) =>
    call(port, 'POST', '/v1/auth/access_token', undefined, { clientId: port.clientId, clientSecret: port.clientSecret });

  async function token(port: PortStandIn): Promise<string> {
    const response = await requestToken(port);
    assert.equal(response.status, 200);
    return ((await response.json()) as { accessToken: string }).accessToken;
  }

  /** The rate limit headers but `x-ratelimit-reset`, whose value depends on the moment. */
  const limitHeaders = (response: Response) => ({
    limit: response.headers.get('x-ratelimit-limit'),
    remaining: response.headers.get('x-ratelimit-remaining'),
    period: response.headers.get('x-ratelimit-period'),
  });

  /**
   * Waits for the next window of `periodSeconds` to begin (windows are aligned to multiples of the
   * period since the epoch), plus a margin; returns its start and end (ms since the epoch).
   */
  async function nextWindow(periodSeconds: number): Promise<{ startMs: number; endMs: number }> {
    const periodMs = periodSeconds * 1000;
    const startMs = (Math.floor(Date.now() / periodMs) + 1) * periodMs;
    await waitFor(() => Date.now() >= startMs + 20, { intervalMs: 5, timeoutMs: periodMs + 1000, description: 'the next rate limit window' });
    return { startMs, endMs: startMs + periodMs };
  }

  /** `x-ratelimit-reset` in seconds: the time left in the window, rounded up, at a moment between `sentAt` and now. */
  function assertSecondsLeft(response: Response, endMs: number, sentAt: number): void {
    const reset = Number(response.headers.get('x-ratelimit-reset'));
    const [least, most] = [Math.ceil((endMs - Date.now()) / 1000), Math.ceil((endMs - sentAt) / 1000)];
    assert.ok(reset >= least && reset <= most, `x-ratelimit-reset ${reset} outside [${least}, ${most}]`);
  }

  it('counts every call against a rate limit, with its headers on every answer, resetting in seconds', async () => {
    const port = await startPort({ rateLimit: { limit: 3, periodSeconds: 2 } });
    const { endMs } = await nextWindow(2);
    const sentAt = Date.now();

    const tokenResponse = await requestToken(port);
    assert.equal(tokenResponse.status, 200);
    assert.deepEqual(limitHeaders(tokenResponse), { limit: '3', remaining: '2', period: '2' }, 'the token route counts too');
    assertSecondsLeft(tokenResponse, endMs, sentAt);
    const { accessToken } = (await tokenResponse.json()) as { accessToken: string };

    const unauthorized = await call(port, 'GET', '/v1/kafka-credentials');
    assert.equal(unauthorized.status, 401);
    assert.deepEqual(limitHeaders(unauthorized), { limit: '3', remaining: '1', period: '2' }, 'a refused call counts');

    port.failNext('GET /v1/kafka-credentials', 1, { status: 503 });
    const injected = await call(port, 'GET', '/v1/kafka-credentials', accessToken);
    assert.equal(injected.status, 503);
    assert.deepEqual(limitHeaders(injected), { limit: '3', remaining: '1', period: '2' }, 'an injected failure carries the headers but does not count');
    assertSecondsLeft(injected, endMs, sentAt);

    const last = await call(port, 'GET', '/v1/kafka-credentials', accessToken);
    assert.equal(last.status, 200);
    assert.deepEqual(limitHeaders(last), { limit: '3', remaining: '0', period: '2' });

    const limited = await call(port, 'GET', '/v1/kafka-credentials', accessToken);
    assert.equal(limited.status, 429);
    assert.deepEqual(await limited.json(), { ok: false, error: 'rate_limit_exceeded' });
    assert.deepEqual(limitHeaders(limited), { limit: '3', remaining: '0', period: '2' });
    assertSecondsLeft(limited, endMs, sentAt);
    assert.equal(limited.headers.get('retry-after'), null, 'no retry-after unless asked for');

    port.failNext('GET /v1/kafka-credentials', 1, { status: 429, retryAfterSeconds: 7 });
    const injected429 = await call(port, 'GET', '/v1/kafka-credentials', accessToken);
    assert.equal(injected429.headers.get('retry-after'), '7');
    assert.equal(port.rateLimitedCalls(), 1, 'an injected 429 is not the rate limit');
    assert.ok(Date.now() < endMs, 'the calls above fitted in one window');

    await waitFor(() => Date.now() >= endMs, { intervalMs: 5, description: 'the next window' });
    const nextWindowCall = await call(port, 'GET', '/v1/kafka-credentials', accessToken);
    assert.equal(nextWindowCall.status, 200, 'a new window accepts again');
    assert.deepEqual(limitHeaders(nextWindowCall), { limit: '3', remaining: '2', period: '2' });
    assertSecondsLeft(nextWindowCall, endMs + 2000, endMs);

    assert.deepEqual(port.summary(), { calls: 7, byStatus: { '200': 3, '401': 1, '429': 2, '503': 1 } });
  });

  it('resets in epoch seconds, says when to retry when asked to, and is set and removed while running', async () => {
    const port = await startPort({});
    const accessToken = await token(port);
    const unlimited = await call(port, 'GET', '/v1/kafka-credentials', accessToken);
    for (const name of RATE_LIMIT_HEADERS) assert.equal(unlimited.headers.get(name), null, `no ${name} without a rate limit`);

    port.setRateLimit({ limit: 2, periodSeconds: 1, resetFormat: 'epoch', retryAfter: true });
    const { endMs } = await nextWindow(1);
    const first = await call(port, 'GET', '/v1/kafka-credentials', accessToken);
    assert.deepEqual(limitHeaders(first), { limit: '2', remaining: '1', period: '1' });
    assert.equal(first.headers.get('x-ratelimit-reset'), String(endMs / 1000), "the window's end, in epoch seconds");
    assert.equal((await call(port, 'GET', '/v1/kafka-credentials', accessToken)).status, 200);
    const limited = await call(port, 'POST', '/v1/auth/access_token', undefined, { clientId: port.clientId, clientSecret: port.clientSecret });
    assert.equal(limited.status, 429, 'the token route is limited too');
    assert.equal(limited.headers.get('retry-after'), '1', 'the time left in a 1 s window, rounded up');
    assert.equal(limited.headers.get('x-ratelimit-reset'), String(endMs / 1000));
    assert.equal(limited.headers.get('x-ratelimit-remaining'), '0');
    assert.ok(Date.now() < endMs, 'the calls above fitted in one window');

    await waitFor(() => Date.now() >= endMs, { intervalMs: 5, description: 'the next window' });
    const again = await call(port, 'GET', '/v1/kafka-credentials', accessToken);
    assert.equal(again.status, 200);
    assert.equal(again.headers.get('x-ratelimit-reset'), String(endMs / 1000 + 1));
    assert.equal(again.headers.get('retry-after'), null, 'retry-after goes on a 429 only');
    assert.equal(port.rateLimitedCalls(), 1);

    port.setRateLimit(undefined);
    const unlimitedAgain = await call(port, 'GET', '/v1/kafka-credentials', accessToken);
    assert.equal(unlimitedAgain.status, 200);
    assert.equal(unlimitedAgain.headers.get('x-ratelimit-limit'), null);
    assert.throws(() => port.setRateLimit({ limit: 1, periodSeconds: 0 }), /periodSeconds/);
  });

  it('writes every answer only after the answer delay, delaying concurrent calls side by side', async () => {
    const delayMs = 300;
    const port = await startPort({ answerDelayMs: delayMs });
    const accessToken = await token(port);
    const runId = uniqueName('r');

    const startedAt = Date.now();
    const responses = await Promise.all(
      Array.from({ length: 5 }, (_, index) => call(port, 'POST', `/v1/actions/runs/${runId}/logs`, accessToken, { message: `line ${index}` })),
    );
    const elapsedMs = Date.now() - startedAt;
    assert.deepEqual(
      responses.map((response) => response.status),
      [201, 201, 201, 201, 201],
    );
    assert.ok(elapsedMs >= delayMs, `answered after ${elapsedMs} ms`);
    assert.ok(elapsedMs < 2 * delayMs, `five concurrent calls took ${elapsedMs} ms: delayed one after another`);

    port.failNext('PATCH /v1/actions/runs/:runId', 1, { status: 503 });
    assert.equal((await call(port, 'PATCH', `/v1/actions/runs/${runId}`, accessToken, { status: 'SUCCESS' })).status, 503);
    assert.equal((await call(port, 'GET', '/v1/kafka-credentials')).status, 401);

    // Port acts on a call when it arrives; only the answer travels back slowly.
    const patched = call(port, 'PATCH', `/v1/actions/runs/${runId}`, accessToken, { status: 'SUCCESS' });
    const patch = await waitFor(() => port.callsTo('PATCH /v1/actions/runs/:runId')[1], { description: 'the status patch' });
    assert.equal(patch.status, 200);
    assert.equal(patch.answeredAt, undefined, 'not answered yet');
    assert.equal(port.actionRunStatus(runId), 'SUCCESS');
    assert.equal((await patched).status, 200);

    assert.equal(port.calls.length, 9);
    for (const recorded of port.calls) {
      assert.ok(recorded.answeredAt !== undefined && recorded.answeredAt - recorded.at >= delayMs, `${recorded.method} ${recorded.path} answered early`);
    }

    // A client that gives up before its delayed answer gets none, and nothing breaks.
    const gaveUp = await call(port, 'GET', '/v1/kafka-credentials', accessToken, undefined, AbortSignal.timeout(50)).catch((error: unknown) => error);
    assert.equal((gaveUp as Error).name, 'TimeoutError');
    const abandoned = port.calls[9];
    assert.ok(abandoned !== undefined);
    await waitFor(() => Date.now() >= abandoned.at + delayMs + 50, { description: 'the abandoned answer to be due' });
    assert.equal(abandoned.status, 200);
    assert.equal(abandoned.answeredAt, undefined, 'nobody to answer');

    port.setAnswerDelay(0);
    const quickStart = Date.now();
    assert.equal((await call(port, 'GET', '/v1/kafka-credentials', accessToken)).status, 200);
    assert.ok(Date.now() - quickStart < delayMs, 'no delay once set to 0');
  });

  it('refuses bodies over 1 MiB with 413 before checking the token', async () => {
    const port = await startPort({});
    const accessToken = await token(port);
    const runId = uniqueName('r');
    const logOfSize = (bytes: number) => `{"message":"${'x'.repeat(bytes - '{"message":""}'.length)}"}`;

    const atLimit = await call(port, 'POST', `/v1/actions/runs/${runId}/logs`, accessToken, logOfSize(1_048_576));
    assert.equal(atLimit.status, 201, 'exactly 1 MiB is accepted');
    const tooLarge = await call(port, 'POST', `/v1/actions/runs/${runId}/logs`, undefined, logOfSize(1_048_577));
    assert.equal(tooLarge.status, 413);
    assert.deepEqual(await tooLarge.json(), { ok: false, error: 'payload_too_large', message: 'Request body is too large (limit is 1MiB)' });

    const [accepted, refused] = port.apiCallsForRun(runId);
    assert.equal(accepted?.bodyBytes, 1_048_576);
    assert.equal(refused?.bodyBytes, 1_048_577);
    assert.equal(refused?.body, undefined, 'a body past the limit is not kept');
    assert.equal(port.callsTo('POST /v1/auth/access_token')[0]?.bodyBytes, JSON.stringify({ clientId: port.clientId, clientSecret: port.clientSecret }).length);
    assert.equal(port.refusedAsTooLarge(), 1);
    assert.equal(port.actionRunLogs(runId).length, 1);

    const small = await startPort({ maxBodyBytes: 1024 });
    const smallToken = await token(small);
    const overSmall = await call(small, 'PATCH', `/v1/actions/runs/${runId}`, smallToken, { summary: 'y'.repeat(1024) });
    assert.equal(overSmall.status, 413);
    assert.deepEqual(await overSmall.json(), { ok: false, error: 'payload_too_large', message: 'Request body is too large (limit is 1KiB)' });
    assert.equal((await call(small, 'GET', '/v1/kafka-credentials', smallToken)).status, 200);
    assert.equal(small.calls.at(-1)?.bodyBytes, 0);
    assert.equal(small.refusedAsTooLarge(), 1);
  });

  it('closes promptly while an answer is delayed, dropping it', async () => {
    const port = await startPortStandIn({ answerDelayMs: 10_000 });
    const pending = assert.rejects(call(port, 'GET', '/v1/kafka-credentials'), { name: 'TypeError' });
    port.failNext('PATCH /v1/organization', 1, { hang: true });
    const hanging = assert.rejects(call(port, 'PATCH', '/v1/organization', undefined, {}), { name: 'TypeError' });
    await waitFor(() => port.calls.length === 2, { description: 'both calls to arrive' });

    const closingAt = Date.now();
    await port.close();
    assert.ok(Date.now() - closingAt < 1000, `close() took ${Date.now() - closingAt} ms`);
    await pending;
    await hanging;
    assert.deepEqual(
      port.calls.map((recorded) => [recorded.status, recorded.answeredAt]),
      [
        [401, undefined],
        [undefined, undefined],
      ],
    );
    assert.deepEqual(port.summary(), { calls: 2, byStatus: { '401': 1 } }, 'a hanging call has no status');
  });
});

describe('webhook target', () => {
  const secret = 'webhook-secret';
  const sign = (timestamp: string, body: string, key = secret): string =>
    `v1,${createHmac('sha256', key).update(`${timestamp}.${body}`).digest('base64')}`;

  it('records requests and checks their signature over the raw body', async () => {
    const target = await startWebhookTarget({
      secret,
      respond: (request) => (request.path === '/fail' ? { status: 503, body: { error: 'down' } } : { status: 202, body: 'ok' }),
    });
    after(() => target.close());
    const body = '{"b":2,"a":"é"}';
    const timestamp = String(Math.floor(Date.now() / 1000));

    const good = await fetch(`${target.url}/hook?x=1&y=two`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-port-timestamp': timestamp, 'x-port-signature': sign(timestamp, body) },
      body,
    });
    assert.equal(good.status, 202);
    assert.equal(await good.text(), 'ok');

    const spacedBody = '{"b": 2, "a": "é"}';
    const failed = await fetch(`${target.url}/fail`, {
      method: 'POST',
      headers: { 'x-port-timestamp': timestamp, 'x-port-signature': sign(timestamp, body) },
      body: spacedBody,
    });
    assert.equal(failed.status, 503);
    assert.deepEqual(await failed.json(), { error: 'down' });

    await fetch(`${target.url}/hook`, {
      method: 'POST',
      headers: { 'x-port-timestamp': timestamp, 'x-port-signature': sign(timestamp, body, 'other-secret') },
      body,
    });
    await fetch(`${target.url}/hook`, { method: 'DELETE', body });

    const requests = await target.waitForRequests(4);
    assert.deepEqual(
      requests.map((request) => [request.method, request.path, request.signatureValid]),
      [
        ['POST', '/hook', true],
        ['POST', '/fail', false],
        ['POST', '/hook', false],
        ['DELETE', '/hook', false],
      ],
    );
    assert.deepEqual(requests[0]?.query, { x: '1', y: 'two' });
    assert.equal(requests[0]?.rawBody, body);
    assert.deepEqual(requests[0]?.json, { b: 2, a: 'é' });
    assert.equal(requests[3]?.rawBody, body, 'a DELETE body is recorded too');
  });

  it('delays, drops the connection or hangs as told', async () => {
    let next = 0;
    const answers = [{ status: 200, delayMs: 150 }, { destroy: true as const }, { hang: true as const }];
    const target = await startWebhookTarget({ secret, respond: () => answers[next++] ?? {} });
    after(() => target.close());

    const started = Date.now();
    assert.equal((await fetch(target.url)).status, 200);
    assert.ok(Date.now() - started >= 140, 'the answer was delayed');
    await assert.rejects(fetch(target.url), { name: 'TypeError' });
    await assert.rejects(fetch(target.url, { signal: AbortSignal.timeout(200) }), { name: 'TimeoutError' });
    assert.equal(target.requests.length, 3);
  });

  it('gives a URL that refuses connections', async () => {
    const url = await refusedUrl();
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    await assert.rejects(fetch(url), (error: unknown) => {
      assert.equal(errorCode(error), 'ECONNREFUSED');
      return true;
    });
  });
});

describe('agent process', () => {
  it('runs a script with only the given environment and parses its log lines', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-process-test-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const script = join(dir, 'fake-agent.mjs');
    writeFileSync(
      script,
      [
        "console.log(JSON.stringify({ level: 30, msg: 'started', env: Object.keys(process.env).sort(), greeting: process.env.GREETING }));",
        "console.log('not json');",
        "console.error('to stderr');",
        "process.on('SIGTERM', () => { console.log(JSON.stringify({ level: 30, msg: 'stopping' })); process.exit(0); });",
        'setInterval(() => {}, 1000);',
      ].join('\n'),
    );
    const agent = startAgent({ GREETING: 'hi' }, { script });
    const started = await agent.waitForLog((line) => line.msg === 'started');
    assert.equal(started.greeting, 'hi');
    const names = started.env as string[];
    assert.ok(names.includes('GREETING'));
    assert.ok(names.every((name) => ['GREETING', 'HOME', 'PATH'].includes(name)), `unexpected env: ${names.join(',')}`);
    await agent.waitForLog((line) => line.raw === 'not json');
    await waitFor(() => agent.stderr().includes('to stderr'), { description: 'the stderr line' });

    assert.deepEqual(await agent.stop(), { code: 0, signal: null });
    assert.ok(agent.logs.some((line) => line.msg === 'stopping'));
    await assert.rejects(agent.waitForLog((line) => line.msg === 'never', 5_000), /Agent output ended/);
  });

  it('gives the exit of a process that exits in time', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-process-test-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const script = join(dir, 'exits.mjs');
    writeFileSync(script, 'process.exit(2);\n');
    assert.deepEqual(await startAgent({}, { script }).exitWithin(10_000), { code: 2, signal: null });
  });

  it('stops a process that does not exit in time and fails with its stderr', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-process-test-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const script = join(dir, 'keeps-running.mjs');
    writeFileSync(script, ["console.error('still busy');", 'setInterval(() => {}, 1000);'].join('\n'));
    const agent = startAgent({}, { script });
    await waitFor(() => agent.stderr().includes('still busy'), { description: 'the stderr line' });
    await assert.rejects(agent.exitWithin(200), /^Error: The agent did not exit within 200 ms; stopped it \(\{"code":null,"signal":"SIGTERM"\}\)\n[\s\S]*stderr tail: still busy/);
    assert.deepEqual(await agent.exited, { code: null, signal: 'SIGTERM' });
  });
});
