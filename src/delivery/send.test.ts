/**
 * The deliverer with no network: axios with an `adapter` of the test's own (axios' extension point
 * for how a request is made) answers each attempt as the test says, and records what was sent.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AxiosError, AxiosHeaders } from 'axios';
import type { AxiosAdapter, AxiosResponse, InternalAxiosRequestConfig } from 'axios';
import { createSemaphore } from '../concurrency/semaphore.js';
import { createLogger } from '../log.js';
import type { RequestSpec } from '../mapping/types.js';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, computePortSignature } from '../message/signature.js';
import { createHttpClient } from '../net/http-client.js';
import type { RetryNotice, RetryPolicy } from '../retry/retry-policy.js';
import type { StatusClass } from '../shared/service-response.js';
import { createHostGuard } from './host-guard.js';
import type { HostGuard } from './host-guard.js';
import { IDEMPOTENCY_HEADER, createDeliverer } from './send.js';
import type { DeliveryContext, DeliveryResult, Deliverer, DelivererDeps } from './send.js';
import { createTargetPolicy } from './target-policy.js';

const SECRET = 'delivery-unit-secret';
const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const FAST_RETRIES: RetryPolicy = { retries: 2, minTimeoutMs: 1, maxTimeoutMs: 5, maxRetryTimeMs: 10_000 };
const NO_RETRIES: RetryPolicy = { ...FAST_RETRIES, retries: 0 };

/** One attempt as the service saw it. */
interface SentRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string | undefined;
}

/** What the service does with one attempt: answer with a status (and headers), or fail as axios would. */
type Answer = { status: number; headers?: Record<string, string>; body?: string } | { error: string };

/**
 * An axios adapter answering the attempts in turn from `answers` (the last one again once they run
 * out), recording each request.
 */
function service(...answers: Answer[]): { adapter: AxiosAdapter; requests: SentRequest[] } {
  const requests: SentRequest[] = [];
  const adapter: AxiosAdapter = async (config: InternalAxiosRequestConfig) => {
    requests.push({
      method: String(config.method).toUpperCase(),
      url: String(config.url),
      headers: Object.fromEntries(Object.entries(AxiosHeaders.from(config.headers).toJSON()).map(([name, value]) => [name, String(value)])),
      body: typeof config.data === 'string' ? config.data : undefined,
    });
    const answer = answers[Math.min(requests.length - 1, answers.length - 1)] ?? { status: 200 };
    if ('error' in answer) throw new AxiosError(`fake ${answer.error}`, answer.error, config);
    const response: AxiosResponse<string> = { status: answer.status, statusText: '', headers: answer.headers ?? {}, data: answer.body ?? '', config };
    return response;
  };
  return { adapter, requests };
}

/** Records what delivery tells the metrics. */
function recordingMetrics() {
  const attempts: string[] = [];
  const retriedHosts: string[] = [];
  return {
    attempts,
    retriedHosts,
    retries: () => retriedHosts.length,
    metrics: {
      requestAttempted: (host: string, statusClass: StatusClass) => {
        attempts.push(`${host} ${statusClass}`);
      },
      requestRetried: (host: string) => {
        retriedHosts.push(host);
      },
    },
  };
}

function delivererWith(adapter: AxiosAdapter, deps: Partial<Omit<DelivererDeps, 'http'>> = {}): Deliverer {
  const http = createHttpClient({ verifyTls: true, userAgent: 'port-agent-unit-test', maxSocketsPerHost: 4 });
  http.defaults.adapter = adapter;
  return createDeliverer({
    http,
    secret: SECRET,
    timeoutMs: 500,
    retryPolicy: FAST_RETRIES,
    inFlight: createSemaphore(8),
    hosts: createHostGuard({ perHostLimit: 8 }),
    ...deps,
  });
}

function context(overrides: Partial<DeliveryContext> = {}): DeliveryContext {
  return { logger: createLogger({ level: 'silent' }), idempotencyKey: 'r_unit_1', traceparent: TRACEPARENT, ...overrides };
}

function post(overrides: Partial<RequestSpec> = {}): RequestSpec {
  return { method: 'POST', url: 'http://service.internal/deploy', headers: {}, query: {}, body: { service: 'payments', version: 'é1' }, ...overrides };
}

function statusOf(result: DeliveryResult): number | undefined {
  return result.kind === 'response' ? result.response.status : undefined;
}

function responseOf(result: DeliveryResult) {
  assert.equal(result.kind, 'response', `a response, not ${JSON.stringify(result)}`);
  return (result as Extract<DeliveryResult, { kind: 'response' }>).response;
}

function failureOf(result: DeliveryResult) {
  assert.equal(result.kind, 'failure', `a failure, not ${JSON.stringify(result)}`);
  return (result as Extract<DeliveryResult, { kind: 'failure' }>).error;
}

/** Whether the request carries a signature over exactly the body it sent, as a receiver checks it. */
function isSignedOverItsBody(request: SentRequest): boolean {
  const timestamp = request.headers[TIMESTAMP_HEADER];
  return timestamp !== undefined && request.headers[SIGNATURE_HEADER] === computePortSignature(SECRET, timestamp, request.body ?? '');
}

describe('delivering a request', () => {
  it('sends compact JSON with its Content-Type, Idempotency-Key, traceparent and a signature over the exact body', async () => {
    const { adapter, requests } = service({ status: 202, headers: { 'Content-Type': 'application/json' }, body: '{"accepted":true}' });
    const result = await delivererWith(adapter).deliver(post({ headers: { 'X-Team': 'payments' } }), context());

    const response = responseOf(result);
    assert.equal(response.status, 202);
    assert.deepEqual(response.json, { accepted: true });
    assert.equal(result.attempts, 1);
    const [request] = requests;
    assert.ok(request);
    assert.equal(request.method, 'POST');
    assert.equal(request.body, '{"service":"payments","version":"é1"}');
    assert.equal(request.headers['Content-Type'], 'application/json');
    assert.equal(request.headers[IDEMPOTENCY_HEADER], 'r_unit_1');
    assert.equal(request.headers.traceparent, TRACEPARENT);
    assert.equal(request.headers['X-Team'], 'payments');
    assert.ok(isSignedOverItsBody(request), `signed over its body: ${JSON.stringify(request.headers)}`);
  });

  it('keeps traceparent and the signature its own: a mapping header of the same name does not replace them', async () => {
    const { adapter, requests } = service({ status: 200 });
    await delivererWith(adapter).deliver(post({ headers: { traceparent: 'forged', [SIGNATURE_HEADER]: 'forged', [TIMESTAMP_HEADER]: '1' } }), context());
    const [request] = requests;
    assert.ok(request);
    assert.equal(request.headers.traceparent, TRACEPARENT);
    assert.ok(isSignedOverItsBody(request));
    assert.notEqual(request.headers[TIMESTAMP_HEADER], '1');
  });

  it('appends the mapping query to the URL, repeating a name for each of its values', async () => {
    const { adapter, requests } = service({ status: 200 });
    await delivererWith(adapter).deliver(post({ url: 'http://service.internal/deploy?env=prod', query: { team: 'a b', tag: ['x', 'y'] } }), context());
    assert.equal(requests[0]?.url, 'http://service.internal/deploy?env=prod&team=a+b&tag=x&tag=y');
  });

  it('sends no body and signs the empty text when the mapping renders none', async () => {
    const { adapter, requests } = service({ status: 200 });
    await delivererWith(adapter).deliver(post({ method: 'GET', body: undefined }), context());
    const [request] = requests;
    assert.ok(request);
    assert.equal(request.body, undefined);
    assert.ok(isSignedOverItsBody(request));
  });
});

describe('retries', () => {
  it('retries a 503 with the same Idempotency-Key, signing each attempt, and answers with the response that ended it', async () => {
    const { adapter, requests } = service({ status: 503 }, { status: 200, body: 'ok' });
    const recorded = recordingMetrics();
    const notices: RetryNotice[] = [];
    const result = await delivererWith(adapter, { metrics: recorded.metrics }).deliver(post(), context({ onRetry: (notice) => void notices.push(notice) }));

    assert.equal(statusOf(result), 200);
    assert.equal(result.attempts, 2);
    assert.deepEqual(requests.map((request) => request.headers[IDEMPOTENCY_HEADER]), ['r_unit_1', 'r_unit_1']);
    assert.ok(requests.every(isSignedOverItsBody));
    assert.deepEqual(notices, [{ attemptNumber: 1, retriesLeft: 2, reason: 'status code 503' }]);
    // Counted by the host as in the URL, so a dashboard shows which service failed.
    assert.deepEqual(recorded.attempts, ['service.internal 5xx', 'service.internal 2xx']);
    assert.deepEqual(recorded.retriedHosts, ['service.internal']);
  });

  it('waits what Retry-After asks before trying a 429 again', async () => {
    const { adapter } = service({ status: 429, headers: { 'Retry-After': '0.3' } }, { status: 200 });
    const attemptTimes: number[] = [];
    const timing: AxiosAdapter = (config) => {
      attemptTimes.push(performance.now());
      return adapter(config);
    };
    const result = await delivererWith(timing).deliver(post(), context());
    assert.equal(statusOf(result), 200);
    const [first = 0, second = 0] = attemptTimes;
    assert.ok(second - first >= 290, `the second attempt ${Math.round(second - first)} ms after the first, Retry-After 0.3 s`);
  });

  it('answers with the last response once the retries are spent: a 503 stays a 503', async () => {
    const { adapter, requests } = service({ status: 503, body: 'down' });
    const result = await delivererWith(adapter).deliver(post(), context());
    assert.equal(statusOf(result), 503);
    assert.equal(result.attempts, FAST_RETRIES.retries + 1);
    assert.equal(requests.length, FAST_RETRIES.retries + 1);
  });

  for (const status of [400, 404, 409, 422]) {
    it(`does not retry a ${status}: it is the service's answer`, async () => {
      const { adapter, requests } = service({ status, body: 'no' });
      const recorded = recordingMetrics();
      const result = await delivererWith(adapter, { metrics: recorded.metrics }).deliver(post(), context());
      assert.equal(statusOf(result), status);
      assert.equal(result.attempts, 1);
      assert.equal(requests.length, 1);
      assert.equal(recorded.retries(), 0);
    });
  }

  it('retries a refused connection, then fails naming it', async () => {
    const { adapter, requests } = service({ error: 'ECONNREFUSED' });
    const recorded = recordingMetrics();
    const result = await delivererWith(adapter, { metrics: recorded.metrics }).deliver(post(), context());
    const error = failureOf(result);
    assert.equal(error.code, 'ECONNREFUSED');
    assert.equal(error.message, 'connection refused (ECONNREFUSED)');
    assert.equal(error.retriable, true);
    assert.equal(result.attempts, 3);
    assert.equal(requests.length, 3);
    assert.deepEqual(recorded.attempts, Array(3).fill('service.internal error'));
  });

  it('reports an attempt that ran out of time as a timeout, in seconds', async () => {
    const { adapter } = service({ error: 'ECONNABORTED' });
    const error = failureOf(await delivererWith(adapter, { retryPolicy: NO_RETRIES }).deliver(post(), context()));
    assert.equal(error.code, 'TIMEOUT');
    assert.equal(error.message, 'the request timed out after 0.5 s');
  });

  it('does not retry a response too large to read', async () => {
    const { adapter, requests } = service({ error: 'ERR_FR_MAX_CONTENT_LENGTH_EXCEEDED' });
    const error = failureOf(await delivererWith(adapter).deliver(post(), context()));
    assert.equal(error.message, 'response too large (ERR_FR_MAX_CONTENT_LENGTH_EXCEEDED)');
    assert.equal(requests.length, 1);
  });
});

describe('refusing a request before sending it', () => {
  it('refuses a host WEBHOOK_ALLOWED_HOSTS does not list, sending nothing', async () => {
    const { adapter, requests } = service({ status: 200 });
    const recorded = recordingMetrics();
    const deliverer = delivererWith(adapter, { targets: createTargetPolicy(['service.internal']), metrics: recorded.metrics });

    const error = failureOf(await deliverer.deliver(post({ url: 'http://elsewhere.internal/deploy' }), context()));
    assert.equal(error.code, 'NOT_ALLOWED');
    assert.equal(error.message, 'the agent refused it: elsewhere.internal is not allowed by WEBHOOK_ALLOWED_HOSTS');
    assert.equal(error.retriable, false);
    assert.equal(requests.length, 0);
    assert.deepEqual(recorded.attempts, []);

    assert.equal(statusOf(await deliverer.deliver(post(), context())), 200, 'a listed host is sent to');
  });

  for (const [url, reason] of [
    ['not a url', 'invalid URL: it is not an absolute URL'],
    ['file:///etc/passwd', 'invalid URL: the scheme file: is not allowed (only http and https)'],
  ] as const) {
    it(`fails ${JSON.stringify(url)} at once: ${reason}`, async () => {
      const { adapter, requests } = service({ status: 200 });
      const error = failureOf(await delivererWith(adapter).deliver(post({ url }), context()));
      assert.equal(error.code, 'INVALID_URL');
      assert.equal(error.message, reason);
      assert.equal(requests.length, 0);
    });
  }
});

describe('the circuit breaker of a failing host', () => {
  /** A host guard whose circuit opens after two failures in a row. */
  const guard = (initialCooldownMs: number): HostGuard => createHostGuard({ perHostLimit: 8, failureThreshold: 2, initialCooldownMs });

  it('stops sending to a host that failed repeatedly, failing its runs without a request', async () => {
    const { adapter, requests } = service({ status: 503 });
    const recorded = recordingMetrics();
    const deliverer = delivererWith(adapter, { hosts: guard(60_000), retryPolicy: NO_RETRIES, metrics: recorded.metrics });
    for (let run = 0; run < 2; run += 1) assert.equal(statusOf(await deliverer.deliver(post(), context())), 503);

    const error = failureOf(await deliverer.deliver(post(), context()));
    assert.equal(error.code, 'CIRCUIT_OPEN');
    assert.match(error.message, /^the circuit breaker for service\.internal is open after repeated failures \(next try in 60 s\)$/);
    assert.equal(requests.length, 2, 'the third run sent nothing');
    assert.deepEqual(recorded.attempts, ['service.internal 5xx', 'service.internal 5xx'], 'no attempt counted for the refused run');
  });

  it('counts an answer below 500 as the host being up: its circuit stays closed', async () => {
    const { adapter, requests } = service({ status: 404 });
    const deliverer = delivererWith(adapter, { hosts: guard(60_000), retryPolicy: NO_RETRIES });
    for (let run = 0; run < 4; run += 1) assert.equal(statusOf(await deliverer.deliver(post(), context())), 404);
    assert.equal(requests.length, 4);
  });

  it('keeps the other hosts apart: one host failing does not stop requests to another', async () => {
    const { adapter, requests } = service({ error: 'ECONNREFUSED' }, { error: 'ECONNREFUSED' }, { status: 200 });
    const deliverer = delivererWith(adapter, { hosts: guard(60_000), retryPolicy: NO_RETRIES });
    for (let run = 0; run < 2; run += 1) assert.equal(failureOf(await deliverer.deliver(post(), context())).code, 'ECONNREFUSED');
    assert.equal(statusOf(await deliverer.deliver(post({ url: 'http://other.internal/deploy' }), context())), 200);
    assert.equal(requests.at(-1)?.url, 'http://other.internal/deploy');
    assert.equal(failureOf(await deliverer.deliver(post(), context())).code, 'CIRCUIT_OPEN', 'the failing host stays refused');
    assert.equal(requests.length, 3);
  });

  it('lets a run wait out the cool-down within its retries and go with the probe once the host is back', async () => {
    const { adapter, requests } = service({ status: 503 }, { status: 503 }, { status: 200 });
    const notices: RetryNotice[] = [];
    // The cool-down must outlast the retry's backoff (a few ms) for the third attempt to meet the open circuit.
    const deliverer = delivererWith(adapter, { hosts: guard(500), retryPolicy: { ...FAST_RETRIES, retries: 3 } });
    const result = await deliverer.deliver(post(), context({ onRetry: (notice) => void notices.push(notice) }));

    assert.equal(statusOf(result), 200);
    assert.equal(requests.length, 3, 'two failures, then the probe');
    assert.equal(result.attempts, 4, 'one attempt met the open circuit and waited');
    assert.match(notices[2]?.reason ?? '', /circuit breaker for service\.internal is open/);
  });
});

describe('limits on requests at once', () => {
  it('holds at most AGENT_MAX_IN_FLIGHT requests at once, whatever their host', async () => {
    let active = 0;
    let mostActive = 0;
    const releases: (() => void)[] = [];
    const slow: AxiosAdapter = async (config) => {
      active += 1;
      mostActive = Math.max(mostActive, active);
      await new Promise<void>((resolve) => releases.push(resolve));
      active -= 1;
      return { status: 200, statusText: '', headers: {}, data: '', config };
    };
    const deliverer = delivererWith(slow, { inFlight: createSemaphore(2) });
    const runs = Promise.all(['a', 'b', 'c', 'd'].map((host) => deliverer.deliver(post({ url: `http://${host}.internal/x` }), context())));
    let isDone = false;
    void runs.then(() => {
      isDone = true;
    });
    // One request answered per turn of the event loop: every run gets its chance to start meanwhile.
    while (!isDone) {
      await new Promise((resolve) => setImmediate(resolve));
      releases.shift()?.();
    }
    assert.deepEqual((await runs).map(statusOf), [200, 200, 200, 200]);
    assert.equal(mostActive, 2);
  });
});
