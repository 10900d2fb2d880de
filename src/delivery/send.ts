/**
 * Sends one rendered request to an internal service (SPEC §6) and turns what happened into a
 * value: the service's response (any status), or a DeliveryError saying why there is none.
 */
import type { AxiosError, AxiosInstance } from 'axios';
import { DeliveryError, describeError } from '../errors.js';
import { headerRecord, headersAsSent, parseJsonBody } from '../net/http-client.js';
import type { Logger } from '../log.js';
import type { RequestSpec } from '../mapping/types.js';
import type { Semaphore } from '../concurrency/semaphore.js';
import type { HostGuard } from './host-guard.js';
import type { TargetPolicy } from './target-policy.js';
import { isRetryableStatus, retryAfterMs, withRetries } from '../retry/retry-policy.js';
import type { AttemptOutcome, RetryNotice, RetryPolicy } from '../retry/retry-policy.js';
import { statusClassOf } from '../shared/service-response.js';
import type { ServiceResponse, StatusClass } from '../shared/service-response.js';
import { signatureHeaders } from './sign.js';

/** What delivery tells the metrics; health/metrics.ts implements it. */
export interface DeliveryMetrics {
  /** One attempt of a request to an internal service (`host` as in its URL), with its duration. */
  requestAttempted(host: string, statusClass: StatusClass, durationSeconds: number): void;
  requestRetried(host: string): void;
}

export type DeliveryResult =
  | { kind: 'response'; response: ServiceResponse; attempts: number; durationMs: number }
  | { kind: 'failure'; error: DeliveryError; attempts: number; durationMs: number };

export interface DeliveryContext {
  logger: Logger;
  /** Sent as `Idempotency-Key`, the same on every attempt and redelivery, so a receiver can drop repeats. */
  idempotencyKey: string;
  /** The W3C `traceparent` of the run (trace-context.ts), sent with every attempt. */
  traceparent: string;
  /** Hears of each retry before its backoff, e.g. to write a run log line. */
  onRetry?: (notice: RetryNotice) => void | Promise<void>;
}

export interface Deliverer {
  deliver(request: RequestSpec, context: DeliveryContext): Promise<DeliveryResult>;
}

export interface DelivererDeps {
  http: AxiosInstance;
  /** HMAC key of X-Port-Signature. */
  secret: string;
  timeoutMs: number;
  /** Retries of one request (SPEC §6); the first attempt is not counted. */
  retryPolicy: RetryPolicy;
  /** AGENT_MAX_IN_FLIGHT: requests to internal services at once, whatever their host. */
  inFlight: Semaphore;
  /** Per-host limits and circuit breakers. */
  hosts: HostGuard;
  metrics?: DeliveryMetrics;
  /** WEBHOOK_ALLOWED_HOSTS; absent: any http(s) URL. */
  targets?: TargetPolicy;
}

/** The header carrying the run id, identical on every attempt and redelivery (README). */
export const IDEMPOTENCY_HEADER = 'Idempotency-Key';


/** The URL with the mapping's query appended; only http and https are ever requested. */
export function buildUrl(request: RequestSpec): URL {
  let url: URL;
  try {
    url = new URL(request.url);
  } catch {
    throw new Error('it is not an absolute URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`the scheme ${url.protocol} is not allowed (only http and https)`);
  }
  for (const [name, value] of Object.entries(request.query)) {
    for (const item of Array.isArray(value) ? value : [value]) url.searchParams.append(name, item);
  }
  return url;
}

const CONNECTION_CODES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset by the service',
  ENOTFOUND: 'host name not found',
  EAI_AGAIN: 'host name lookup failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EPIPE: 'connection closed by the service',
  ETIMEDOUT: 'connection timed out',
  ERR_FR_TOO_MANY_REDIRECTS: 'too many redirects',
  ERR_BAD_RESPONSE: 'bad response',
  ERR_FR_MAX_CONTENT_LENGTH_EXCEEDED: 'response too large',
};

function failureFromAxios(error: AxiosError, request: RequestSpec, attempt: number, timeoutMs: number): DeliveryError {
  const aborted = error.code === 'ECONNABORTED' || error.code === 'ERR_CANCELED' || error.name === 'CanceledError';
  if (aborted) {
    return new DeliveryError(`the request timed out after ${timeoutMs / 1000} s`, {
      url: request.url, method: request.method, attempt, code: 'TIMEOUT', retriable: true, cause: error,
    });
  }
  const causeCode = (error.cause as NodeJS.ErrnoException | undefined)?.code;
  const code = error.code ?? causeCode ?? 'UNKNOWN';
  const known = CONNECTION_CODES[code] ?? (error.message.includes('maxContentLength') ? 'response too large' : undefined);
  const tlsProblem = /certificate|self[- ]signed|TLS|SSL/i.test(error.message) ? error.message : undefined;
  const description = known ?? tlsProblem ?? describeError(error);
  return new DeliveryError(`${description} (${code})`, {
    url: request.url, method: request.method, attempt, code, retriable: code !== 'ERR_FR_MAX_CONTENT_LENGTH_EXCEEDED' && !tlsProblem, cause: error,
  });
}

type AttemptValue = { kind: 'response'; response: ServiceResponse } | { kind: 'failure'; error: DeliveryError };

const REDIRECT_NOT_ALLOWED = 'REDIRECT_NOT_ALLOWED';

/** Thrown from axios' redirect hook to stop at a hop WEBHOOK_ALLOWED_HOSTS does not allow. */
class RedirectRefused extends Error {
  constructor(readonly target: URL) {
    super(`redirect to ${target.host} refused: not allowed by WEBHOOK_ALLOWED_HOSTS`);
  }
}

/** The RedirectRefused somewhere in an error's causes (axios wraps follow-redirects' error, which wraps ours). */
function refusedRedirect(error: unknown): RedirectRefused | undefined {
  for (let cause = error, depth = 0; cause instanceof Error && depth < 5; cause = cause.cause, depth += 1) {
    if (cause instanceof RedirectRefused) return cause;
  }
  return undefined;
}

/**
 * axios' hook before each redirect hop: the allow-list holds on every hop, or a service it allows
 * could send the run (its body, its signature) to one it does not.
 */
function checkingRedirects(targets: TargetPolicy | undefined): { beforeRedirect?: (options: Record<string, unknown>) => void } {
  if (!targets) return {};
  return {
    beforeRedirect: (options) => {
      const next = new URL(String(options.href));
      if (!targets.allows(next)) throw new RedirectRefused(next);
    },
  };
}

/** The response's headers as sent, from the Node.js request axios made (its `res.rawHeaders`). */
function wireHeaders(request: unknown): Record<string, string> | undefined {
  const rawHeaders = (request as { res?: { rawHeaders?: unknown } } | undefined)?.res?.rawHeaders;
  return Array.isArray(rawHeaders) && rawHeaders.every((item) => typeof item === 'string') ? headersAsSent(rawHeaders) : undefined;
}

export function createDeliverer(deps: DelivererDeps): Deliverer {
  async function send(request: RequestSpec, url: URL, context: DeliveryContext, attemptNumber: number): Promise<AttemptValue> {
    // SPEC §6: compact JSON, non-ASCII raw; the signature covers exactly these bytes.
    const bodyText = request.body === undefined ? '' : JSON.stringify(request.body);
    const headers: Record<string, string> = {
      'Content-Type': 'application/json',
      [IDEMPOTENCY_HEADER]: context.idempotencyKey,
      ...request.headers,
      traceparent: context.traceparent,
      ...signatureHeaders(deps.secret, bodyText),
    };
    try {
      const response = await deps.http.request<string>({
        method: request.method,
        url: url.toString(),
        headers,
        data: request.body === undefined ? undefined : bodyText,
        timeout: deps.timeoutMs,
        // axios' timeout only bounds socket inactivity; the signal bounds the whole attempt.
        signal: AbortSignal.timeout(deps.timeoutMs),
        ...checkingRedirects(deps.targets),
      });
      const text = typeof response.data === 'string' ? response.data : String(response.data ?? '');
      const lowerCased = headerRecord(response.headers);
      return { kind: 'response', response: { status: response.status, headers: lowerCased, headersAsSent: wireHeaders(response.request) ?? lowerCased, text, json: parseJsonBody(text) } };
    } catch (error) {
      const refused = refusedRedirect(error);
      if (refused) {
        const notAllowed = new DeliveryError(refused.message, {
          url: request.url, method: request.method, attempt: attemptNumber, code: REDIRECT_NOT_ALLOWED, retriable: false, cause: error,
        });
        return { kind: 'failure', error: notAllowed };
      }
      if ((error as AxiosError).isAxiosError) return { kind: 'failure', error: failureFromAxios(error as AxiosError, request, attemptNumber, deps.timeoutMs) };
      throw error;
    }
  }

  /** One attempt: a slot on the host, a slot overall, the request; the slots are free again during backoff. */
  async function attempt(request: RequestSpec, url: URL, context: DeliveryContext, attemptNumber: number): Promise<AttemptOutcome<AttemptValue>> {
    const entry = await deps.hosts.enter(url.host);
    if (entry.kind === 'open') {
      const error = new DeliveryError(`the circuit breaker for ${url.host} is open after repeated failures (next try in ${Math.ceil(entry.retryInMs / 1000)} s)`, {
        url: request.url, method: request.method, attempt: attemptNumber, code: 'CIRCUIT_OPEN', retriable: true,
      });
      // The run waits for the host's next probe within its own retry budget, instead of failing at
      // once: a service back after a short outage still gets its runs.
      return { kind: 'retryable', value: { kind: 'failure', error }, reason: error.message, retryAfterMs: entry.retryInMs };
    }
    const release = await deps.inFlight.acquire();
    let value: AttemptValue | undefined;
    const startedAt = performance.now();
    try {
      context.logger.debug({ attempt: attemptNumber }, 'sending request');
      value = await send(request, url, context, attemptNumber);
    } finally {
      release();
      deps.metrics?.requestAttempted(url.host, statusClassOf(value?.kind === 'response' ? value.response.status : undefined), (performance.now() - startedAt) / 1000);
      // A host that answers, even with an error status below 500 or a redirect the allow-list refuses, is up.
      entry.leave(value !== undefined && (value.kind === 'response' ? value.response.status < 500 : value.error.code === REDIRECT_NOT_ALLOWED));
    }
    if (value.kind === 'failure') {
      return value.error.retriable ? { kind: 'retryable', value, reason: value.error.message } : { kind: 'done', value };
    }
    if (isRetryableStatus(value.response.status)) {
      return { kind: 'retryable', value, reason: `status code ${value.response.status}`, retryAfterMs: retryAfterMs(value.response.headers['retry-after']) };
    }
    return { kind: 'done', value };
  }

  return {
    async deliver(request, context) {
      const startedAt = performance.now();
      const elapsed = () => Math.round(performance.now() - startedAt);
      let url: URL;
      try {
        url = buildUrl(request);
      } catch (error) {
        const invalid = new DeliveryError(`invalid URL: ${describeError(error)}`, {
          url: request.url, method: request.method, attempt: 1, code: 'INVALID_URL', retriable: false, cause: error,
        });
        return { kind: 'failure', error: invalid, attempts: 1, durationMs: elapsed() };
      }
      if (deps.targets && !deps.targets.allows(url)) {
        const refused = new DeliveryError(`the agent refused it: ${url.host} is not allowed by WEBHOOK_ALLOWED_HOSTS`, {
          url: request.url, method: request.method, attempt: 1, code: 'NOT_ALLOWED', retriable: false,
        });
        return { kind: 'failure', error: refused, attempts: 1, durationMs: elapsed() };
      }
      const { value, attempts } = await withRetries((attemptNumber) => attempt(request, url, context, attemptNumber), deps.retryPolicy, async (notice) => {
        context.logger.warn({ attempt: notice.attemptNumber, retriesLeft: notice.retriesLeft, reason: notice.reason }, 'request failed; retrying');
        deps.metrics?.requestRetried(url.host);
        await context.onRetry?.(notice);
      });
      return value.kind === 'response'
        ? { kind: 'response', response: value.response, attempts, durationMs: elapsed() }
        : { kind: 'failure', error: value.error, attempts, durationMs: elapsed() };
    },
  };
}
