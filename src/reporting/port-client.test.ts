/**
 * The Port client with no network: a fake HttpTransport answers each call as the test says and
 * records it; the budget is the real one, with nothing limiting it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { capturingLogger } from '../../test/support/log-lines.js';
import type { HttpTransport, TransportRequest, TransportResponse } from '../net/http-client.js';
import type { RetryPolicy } from '../retry/retry-policy.js';
import { createPortBudget } from './port-budget.js';
import { PORT_MAX_BODY_BYTES, createPortClient } from './port-client.js';
import type { PortCallOptions, PortClient, PortClientDeps } from './port-client.js';

const CLIENT_ID = 'unit-client-id';
const CLIENT_SECRET = 'unit-client-secret-never-logged';
const TOKEN_ROUTE = 'POST /v1/auth/access_token';
const LOGS_ROUTE = 'POST /v1/actions/runs/:runId/logs';
const LOGS_PATH = '/v1/actions/runs/r_1/logs';
const FAST_RETRIES: RetryPolicy = { retries: 2, minTimeoutMs: 1, maxTimeoutMs: 5, maxRetryTimeMs: 10_000 };

/** What Port does with one call: answer, or give no answer at all. */
type Answer = { status: number; body?: unknown; headers?: Record<string, string> } | { error: string };

/**
 * A transport answering token requests with `token-1`, `token-2`, … (or as `token` says) and other
 * calls from `answers` in turn, the last one again once they run out.
 */
function fakePort(answers: Answer[] = [{ status: 200, body: { ok: true } }], options: { token?: (attempt: number) => Answer } = {}) {
  const requests: TransportRequest[] = [];
  let tokens = 0;
  let calls = 0;
  const transport: HttpTransport = {
    async send(request): Promise<TransportResponse> {
      requests.push(request);
      let answer: Answer;
      if (request.path === '/v1/auth/access_token') {
        tokens += 1;
        answer = options.token?.(tokens) ?? { status: 200, body: { accessToken: `token-${tokens}`, expiresIn: 600 } };
      } else {
        calls += 1;
        answer = answers[Math.min(calls - 1, answers.length - 1)] ?? { status: 200 };
      }
      if ('error' in answer) throw new Error(answer.error);
      return { status: answer.status, headers: answer.headers ?? {}, text: answer.body === undefined ? '' : JSON.stringify(answer.body) };
    },
    close: async () => undefined,
  };
  const bearerOf = (request: TransportRequest): string | undefined => request.headers.authorization;
  return {
    transport,
    requests,
    /** The calls other than token requests. */
    calls: () => requests.filter((request) => request.path !== '/v1/auth/access_token'),
    tokenRequests: () => requests.filter((request) => request.path === '/v1/auth/access_token'),
    bearerOf,
  };
}

/** Records what the client tells the metrics. */
function recordingMetrics() {
  const calls: [string, number | undefined][] = [];
  let tokens = 0;
  return {
    calls,
    tokens: () => tokens,
    metrics: {
      portCall: (route: string, status: number | undefined) => {
        calls.push([route, status]);
      },
      tokenRequested: () => {
        tokens += 1;
      },
    },
  };
}

function clientFor(transport: HttpTransport, deps: Partial<Omit<PortClientDeps, 'http'>> = {}): PortClient {
  const logger = deps.logger ?? capturingLogger().logger;
  return createPortClient({
    http: transport,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    logger,
    budget: createPortBudget({ maxCallsPerSecond: 0, logger }),
    retryPolicy: FAST_RETRIES,
    outageMaxBackoffMs: 5,
    ...deps,
  });
}

const logLine = (client: PortClient, options?: PortCallOptions) => client.call('POST', LOGS_PATH, LOGS_ROUTE, { message: 'a line' }, {}, options);

describe('the Port client: access tokens', () => {
  it('gets a token with the client credentials once and sends it as a bearer token on every call', async () => {
    const port = fakePort();
    const recorded = recordingMetrics();
    const client = clientFor(port.transport, { metrics: recorded.metrics });
    assert.equal((await logLine(client)).ok, true);
    assert.equal((await logLine(client)).ok, true);

    const [tokenRequest] = port.tokenRequests();
    assert.equal(port.tokenRequests().length, 1);
    assert.equal(tokenRequest?.method, 'POST');
    assert.deepEqual(JSON.parse(tokenRequest?.body ?? 'null'), { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
    assert.deepEqual(port.calls().map(port.bearerOf), ['Bearer token-1', 'Bearer token-1']);
    assert.equal(client.tokenRequests(), 1);
    assert.equal(recorded.tokens(), 1);
  });

  it('asks for one token for all the calls that need one at the same time', async () => {
    const port = fakePort();
    const client = clientFor(port.transport);
    const results = await Promise.all(Array.from({ length: 5 }, () => logLine(client)));
    assert.ok(results.every((result) => result.ok));
    assert.equal(port.tokenRequests().length, 1);
  });

  it('gets a new token shortly before the old one expires, not earlier', async () => {
    let nowMs = 1_000_000;
    const port = fakePort();
    const client = clientFor(port.transport, { now: () => nowMs });
    await logLine(client);
    // expiresIn 600 s: refreshed a tenth of its lifetime (at most a minute) before it expires.
    nowMs += 539_000;
    await logLine(client);
    assert.equal(port.tokenRequests().length, 1, 'still fresh 539 s in');
    nowMs += 2_000;
    await logLine(client);
    assert.equal(port.tokenRequests().length, 2, 'renewed 541 s in');
    assert.deepEqual(port.calls().map(port.bearerOf), ['Bearer token-1', 'Bearer token-1', 'Bearer token-2']);
  });

  it('on a 401 drops the token, gets a new one and sends the call again', async () => {
    const port = fakePort([{ status: 401 }, { status: 200, body: { ok: true } }]);
    const result = await logLine(clientFor(port.transport));
    assert.deepEqual(result, { ok: true, status: 200, data: { ok: true } });
    assert.deepEqual(port.calls().map(port.bearerOf), ['Bearer token-1', 'Bearer token-2']);
  });

  it('with a single attempt (retries 0) answers the 401, and the next call gets a new token', async () => {
    const port = fakePort([{ status: 401 }, { status: 200 }]);
    const client = clientFor(port.transport);
    const single = { retryPolicy: { ...FAST_RETRIES, retries: 0 } };
    assert.equal((await logLine(client, single)).status, 401);
    assert.equal((await logLine(client, single)).status, 200);
    assert.deepEqual(port.calls().map(port.bearerOf), ['Bearer token-1', 'Bearer token-2']);
  });

  it('takes a second 401 in a row as the answer', async () => {
    const port = fakePort([{ status: 401, body: { ok: false } }]);
    const client = clientFor(port.transport);
    const result = await logLine(client);
    assert.equal(result.ok, false);
    assert.equal(result.status, 401);
    assert.equal(port.calls().length, 2);
    assert.equal(port.tokenRequests().length, 2);
  });

  it('fails a call for good when Port refuses the credentials, warning once', async () => {
    const logs = capturingLogger();
    const port = fakePort([], { token: () => ({ status: 401, body: { error: 'invalid credentials' } }) });
    const client = clientFor(port.transport, { logger: logs.logger });
    for (let call = 0; call < 2; call += 1) {
      const result = await logLine(client);
      assert.equal(result.ok, false);
      assert.deepEqual(!result.ok && { status: result.status, isPermanent: result.isPermanent }, { status: 401, isPermanent: true });
    }
    assert.equal(port.calls().length, 0, 'nothing sent without a token');
    assert.deepEqual(
      logs.lines.filter((line) => line.level === 'warn').map((line) => line.msg),
      ['could not get an access token from Port; calls that need one wait and retry'],
    );
  });

  it('never writes the client secret or a token into a log line', async () => {
    const logs = capturingLogger('trace');
    const port = fakePort([{ status: 401 }, { status: 503 }, { error: 'socket hang up' }, { status: 200 }]);
    const client = clientFor(port.transport, { logger: logs.logger, retryPolicy: { ...FAST_RETRIES, retries: 3 } });
    assert.equal((await logLine(client)).ok, true);
    assert.ok(logs.raw.length > 0, 'it did log');
    for (const secret of [CLIENT_SECRET, 'token-1', 'token-2']) assert.ok(!logs.text().includes(secret), `${secret} is not logged`);
  });
});

describe('the Port client: failures', () => {
  it('retries a 5xx and answers with the success, counting each call under its route', async () => {
    const port = fakePort([{ status: 503 }, { status: 200, body: { ok: true } }]);
    const recorded = recordingMetrics();
    const result = await logLine(clientFor(port.transport, { metrics: recorded.metrics }));
    assert.equal(result.ok, true);
    assert.deepEqual(recorded.calls, [
      [TOKEN_ROUTE, 200],
      [LOGS_ROUTE, 503],
      [LOGS_ROUTE, 200],
    ]);
  });

  it('waits what Retry-After asks before sending a 503 call again', async () => {
    const port = fakePort([{ status: 503, headers: { 'retry-after': '0.3' } }, { status: 200 }]);
    const sentAt: number[] = [];
    const timing: HttpTransport = {
      send: (request) => {
        if (request.path === LOGS_PATH) sentAt.push(performance.now());
        return port.transport.send(request);
      },
      close: port.transport.close,
    };
    assert.equal((await logLine(clientFor(timing))).ok, true);
    const [first = 0, second = 0] = sentAt;
    assert.ok(second - first >= 290, `sent again ${Math.round(second - first)} ms later, Retry-After 0.3 s`);
  });

  it('gives the last failure once the retries are spent', async () => {
    const port = fakePort([{ status: 500, body: { error: 'boom' } }]);
    const result = await logLine(clientFor(port.transport));
    assert.equal(result.ok, false);
    assert.deepEqual(
      !result.ok && { status: result.status, text: result.text, message: result.error.message, isPermanent: result.isPermanent },
      { status: 500, text: '{"error":"boom"}', message: `Port API ${LOGS_ROUTE} answered 500`, isPermanent: false },
    );
    assert.equal(port.calls().length, FAST_RETRIES.retries + 1);
  });

  for (const status of [400, 404, 413, 422]) {
    it(`does not retry a ${status}: a refusal for good`, async () => {
      const port = fakePort([{ status }]);
      const result = await logLine(clientFor(port.transport));
      assert.deepEqual(!result.ok && { status: result.status, isPermanent: result.isPermanent }, { status, isPermanent: true });
      assert.equal(port.calls().length, 1);
    });
  }

  it('retries a call that got no answer, and says so when none comes', async () => {
    const port = fakePort([{ error: 'connect ECONNREFUSED 127.0.0.1:1' }]);
    const recorded = recordingMetrics();
    const result = await logLine(clientFor(port.transport, { metrics: recorded.metrics }));
    assert.equal(result.ok, false);
    assert.equal(result.status, undefined);
    assert.match(!result.ok ? result.error.message : '', /^Port API POST \/v1\/actions\/runs\/:runId\/logs could not be reached: .*ECONNREFUSED/);
    assert.equal(port.calls().length, 3);
    assert.deepEqual(recorded.calls.filter(([route]) => route === LOGS_ROUTE), [[LOGS_ROUTE, undefined], [LOGS_ROUTE, undefined], [LOGS_ROUTE, undefined]]);
  });

  it('takes a 429 as a wait for the budget, never a failure, even with no retries left', async () => {
    const port = fakePort([{ status: 429, headers: { 'retry-after': '0.05' } }, { status: 429, headers: { 'retry-after': '0.05' } }, { status: 200 }]);
    const result = await logLine(clientFor(port.transport), { retryPolicy: { ...FAST_RETRIES, retries: 0 } });
    assert.equal(result.ok, true);
    assert.equal(port.calls().length, 3);
  });

  it("refuses a body over Port's 1 MiB without sending it", async () => {
    const port = fakePort();
    // {"message":"…"}: 14 bytes around the text, so one byte over.
    const result = await clientFor(port.transport).call('POST', LOGS_PATH, LOGS_ROUTE, { message: 'x'.repeat(PORT_MAX_BODY_BYTES - 13) });
    assert.equal(result.ok, false);
    assert.deepEqual(!result.ok && { status: result.status, isPermanent: result.isPermanent }, { status: 413, isPermanent: true });
    assert.match(result.ok ? '' : result.text, new RegExp(`^the request body is \\d+ bytes, over Port's limit of ${PORT_MAX_BODY_BYTES}; not sent$`));
    assert.equal(port.calls().length, 0);
  });

  it('sends a body of exactly 1 MiB', async () => {
    const port = fakePort();
    const client = clientFor(port.transport);
    const result = await client.call('POST', LOGS_PATH, LOGS_ROUTE, { message: 'x'.repeat(PORT_MAX_BODY_BYTES - 14) });
    assert.equal(result.ok, true);
    assert.equal(Buffer.byteLength(port.calls()[0]?.body ?? ''), PORT_MAX_BODY_BYTES);
  });

  it('says whether Port has answered anything yet, an error status included', async () => {
    const port = fakePort([{ status: 500 }]);
    const client = clientFor(port.transport, { retryPolicy: { ...FAST_RETRIES, retries: 0 } });
    assert.equal(client.hasAnswered(), false);
    await logLine(client);
    assert.equal(client.hasAnswered(), true);
  });
});

describe('the Port client: reports that must not be lost', () => {
  it('keeps retrying while Port is out (502, 503, 504, no answer), past the retry policy', async () => {
    const port = fakePort([{ status: 503 }, { status: 502 }, { error: 'socket hang up' }, { status: 504 }, { status: 503 }, { status: 200 }]);
    const result = await logLine(clientFor(port.transport), { untilAnswered: true, retryPolicy: { ...FAST_RETRIES, retries: 1 } });
    assert.equal(result.ok, true);
    assert.equal(port.calls().length, 6);
  });

  it('gives up on a 500 within the retry policy: Port answered, and not with an outage', async () => {
    const port = fakePort([{ status: 500 }]);
    const result = await logLine(clientFor(port.transport), { untilAnswered: true, retryPolicy: { ...FAST_RETRIES, retries: 1 } });
    assert.equal(result.status, 500);
    assert.equal(port.calls().length, 2);
  });

  it('warns once per outage and says when Port answers again', async () => {
    let nowMs = 0;
    const logs = capturingLogger();
    const port = fakePort([{ status: 503 }, { status: 503 }, { status: 200 }]);
    const client = clientFor(port.transport, { logger: logs.logger, now: () => nowMs });
    await logLine(client, { untilAnswered: true });
    nowMs += 6_000;
    await logLine(client);
    assert.deepEqual(
      logs.lines.filter((line) => line.level === 'warn' || line.level === 'info').map((line) => [line.level, line.msg]),
      [
        ['warn', 'Port API calls are failing; they are retried and reports wait'],
        ['info', 'Port API answers again'],
      ],
    );
  });
});
