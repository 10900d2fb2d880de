/**
 * Calls to the Port API with one cached access token: fetched once, reused until shortly before
 * it expires, fetched again when a call answers 401. Every call waits for its turn in Port's API
 * budget (port-budget.ts); a 429 is never a failure, only a wait. Every call resolves to a value;
 * the caller decides what a failure means for its run. No token or secret ever reaches a log line.
 */
import { ReportError, describeError } from '../errors.js';
import { isRetryableStatus, PORT_API_RETRY_POLICY, retryAfterMs, withRetries } from '../retry/retry-policy.js';
import type { AttemptOutcome, RetryPolicy } from '../retry/retry-policy.js';
import { parseJsonBody } from '../net/http-client.js';
import type { HttpTransport } from '../net/http-client.js';
import type { Logger } from '../log.js';
import type { CallPriority, PortBudget } from './port-budget.js';

export type PortCallResult =
  | { ok: true; status: number; data: unknown }
  | {
      ok: false;
      status: number | undefined;
      text: string;
      error: ReportError;
      /** Port refused the call for good (4xx other than 401, 408 and 429): trying again cannot help. */
      isPermanent: boolean;
      /** A `Retry-After` Port sent with the failure (a 503, say), which the next attempt waits for. */
      retryAfterMs?: number | undefined;
    };

export interface PortCallOptions {
  /**
   * Replaces the client's retry policy for this call, e.g. a single attempt for a call whose
   * caller backs off on its own (polling claims).
   */
  retryPolicy?: RetryPolicy;
  /** Its place in the queue when Port's budget makes calls wait; `control` when not given. */
  priority?: CallPriority;
  /**
   * A report that must not be lost: while Port does not answer (network error, 502, 503, 504) the
   * call is retried until it does, however long; other failures follow the retry policy.
   */
  untilAnswered?: boolean;
}

export interface PortClient {
  /** `route` is the path template used in logs and errors, e.g. `PATCH /v1/actions/runs/:runId`. */
  call(method: string, path: string, route: string, body?: unknown, headers?: Record<string, string>, options?: PortCallOptions): Promise<PortCallResult>;
  /** How many access tokens were requested so far. */
  tokenRequests(): number;
  /** Whether the Port API has answered any call yet, whatever the status (readiness). */
  hasAnswered(): boolean;
}

/** What the Port client tells the metrics; health/metrics.ts implements it. */
export interface PortCallMetrics {
  /** One HTTP call to the Port API (each retry is a call) and its duration; `status` undefined when it got no answer. */
  portCall(route: string, status: number | undefined, durationSeconds: number): void;
  tokenRequested(): void;
}

export interface PortClientDeps {
  /** Bound to PORT_API_BASE_URL. */
  http: HttpTransport;
  clientId: string;
  clientSecret: string;
  logger: Logger;
  /** Every call waits here for its turn. */
  budget: PortBudget;
  /** Timeout of one Port API call. */
  timeoutMs?: number;
  /** Calls are retried on 5xx and network errors (a 429 only waits for the budget). */
  retryPolicy?: RetryPolicy;
  /** `untilAnswered` calls: the longest wait between attempts during an outage. */
  outageMaxBackoffMs?: number;
  /** Counts every HTTP call by route and status, and every token request. */
  metrics?: PortCallMetrics;
  now?: () => number;
}

const TOKEN_ROUTE = 'POST /v1/auth/access_token';
const DEFAULT_TIMEOUT_MS = 15_000;
/** Refresh this long before expiry so a token never expires in flight. */
const TOKEN_REFRESH_MARGIN_MS = 60_000;
/** Port refuses request bodies over 1 MiB (413); such a call is not even sent. */
export const PORT_MAX_BODY_BYTES = 1_048_576;
/** `untilAnswered`: the backoff grows to this while Port does not answer, however long that lasts. */
const OUTAGE_MAX_BACKOFF_MS = 30_000;
/** An outage is over once no call has failed for this long. */
const OUTAGE_QUIET_MS = 5_000;

interface CachedToken {
  value: string;
  refreshAtMs: number;
}

interface SentCall {
  result: PortCallResult;
  headers: Record<string, string>;
}

function tokenFrom(data: unknown): { accessToken: string; expiresInSeconds: number } | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const { accessToken, expiresIn } = data as Record<string, unknown>;
  if (typeof accessToken !== 'string' || accessToken === '') return undefined;
  return { accessToken, expiresInSeconds: typeof expiresIn === 'number' && expiresIn > 0 ? expiresIn : 3600 };
}

/** No answer, or a gateway saying Port is not there: an outage, which passes. */
function isOutage(status: number | undefined): boolean {
  return status === undefined || status === 502 || status === 503 || status === 504;
}

function isPermanentRefusal(status: number | undefined): boolean {
  return status !== undefined && status >= 400 && status < 500 && status !== 401 && status !== 408 && status !== 429;
}

export function createPortClient(deps: PortClientDeps): PortClient {
  const now = deps.now ?? Date.now;
  const timeoutMs = deps.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const retryPolicy = deps.retryPolicy ?? PORT_API_RETRY_POLICY;
  const outageMaxBackoffMs = deps.outageMaxBackoffMs ?? OUTAGE_MAX_BACKOFF_MS;
  let token: CachedToken | undefined;
  let pendingToken: Promise<CachedToken> | undefined;
  let tokenRequestCount = 0;
  let hasAnswered = false;
  /** Since when Port calls fail without an answer worth having: one warn line per outage, not one per call. */
  let failingSinceMs: number | undefined;
  let lastFailureAtMs = 0;
  /** Since when no access token can be had: one warn line for it, not one per waiting call. */
  let tokenFailingSinceMs: number | undefined;

  function noteHealth(route: string, status: number | undefined, error: string): void {
    if (status === undefined || status >= 500) {
      lastFailureAtMs = now();
      if (failingSinceMs !== undefined) return;
      failingSinceMs = lastFailureAtMs;
      deps.logger.warn({ route, status, err: error }, 'Port API calls are failing; they are retried and reports wait');
    } else if (failingSinceMs !== undefined && now() - lastFailureAtMs >= OUTAGE_QUIET_MS) {
      // Answers mixed with failures are still an outage; it ends once failures have stopped.
      deps.logger.info({ route, status, failedForSeconds: Math.round((now() - failingSinceMs) / 1000) }, 'Port API answers again');
      failingSinceMs = undefined;
    }
  }

  function noteToken(error: ReportError | undefined): void {
    if (error !== undefined && tokenFailingSinceMs === undefined) {
      tokenFailingSinceMs = now();
      deps.logger.warn({ route: TOKEN_ROUTE, status: error.status, err: error.message }, 'could not get an access token from Port; calls that need one wait and retry');
    } else if (error === undefined && tokenFailingSinceMs !== undefined) {
      deps.logger.info({ route: TOKEN_ROUTE, failedForSeconds: Math.round((now() - tokenFailingSinceMs) / 1000) }, 'access token obtained again');
      tokenFailingSinceMs = undefined;
    }
  }

  async function sendOnce(method: string, route: string, path: string, json: string | undefined, headers: Record<string, string>): Promise<SentCall> {
    const startedAt = performance.now();
    const seconds = () => (performance.now() - startedAt) / 1000;
    try {
      const response = await deps.http.send({ method, path, headers: { 'content-type': 'application/json', ...headers }, body: json, timeoutMs });
      hasAnswered = true;
      deps.metrics?.portCall(route, response.status, seconds());
      const { text } = response;
      noteHealth(route, response.status, `answered ${response.status}`);
      if (response.status >= 200 && response.status < 300) {
        return { result: { ok: true, status: response.status, data: parseJsonBody(text) }, headers: response.headers };
      }
      const error = new ReportError(`Port API ${route} answered ${response.status}`, {
        route,
        status: response.status,
        responseText: text,
        // A 401 is handled by the token refresh; on the token route itself it means bad credentials.
        retriable: response.status === 408 || response.status === 429 || response.status >= 500,
      });
      const retryAfter = retryAfterMs(response.headers['retry-after']);
      return {
        result: { ok: false, status: response.status, text, error, isPermanent: isPermanentRefusal(response.status), retryAfterMs: retryAfter },
        headers: response.headers,
      };
    } catch (error) {
      deps.metrics?.portCall(route, undefined, seconds());
      const message = describeError(error);
      noteHealth(route, undefined, message);
      const reportError = new ReportError(`Port API ${route} could not be reached: ${message}`, { route, retriable: true, cause: error });
      return { result: { ok: false, status: undefined, text: message, error: reportError, isPermanent: false }, headers: {} };
    }
  }

  /** One call through the budget; a 429 waits for the budget and goes again, as often as Port says. */
  async function send(method: string, path: string, route: string, body: unknown, headers: Record<string, string>, priority: CallPriority): Promise<PortCallResult> {
    const json = body === undefined ? undefined : JSON.stringify(body);
    const bytes = json === undefined ? 0 : Buffer.byteLength(json);
    if (bytes > PORT_MAX_BODY_BYTES) {
      const text = `the request body is ${bytes} bytes, over Port's limit of ${PORT_MAX_BODY_BYTES}; not sent`;
      return { ok: false, status: 413, text, isPermanent: true, error: new ReportError(`Port API ${route}: ${text}`, { route, status: 413, retriable: false }) };
    }
    for (;;) {
      const done = await deps.budget.acquire(priority);
      const sent = await sendOnce(method, route, path, json, headers);
      done({ status: sent.result.status, headers: sent.headers }, route);
      if (sent.result.status !== 429) return sent.result;
    }
  }

  async function fetchToken(): Promise<CachedToken> {
    tokenRequestCount += 1;
    deps.metrics?.tokenRequested();
    const result = await send('POST', '/v1/auth/access_token', TOKEN_ROUTE, { clientId: deps.clientId, clientSecret: deps.clientSecret }, {}, 'control');
    const parsed = result.ok ? tokenFrom(result.data) : undefined;
    if (!parsed) {
      const error = result.ok ? new ReportError('Port API returned no access token', { route: TOKEN_ROUTE, status: result.status, retriable: true }) : result.error;
      noteToken(error);
      throw error;
    }
    noteToken(undefined);
    const lifetimeMs = parsed.expiresInSeconds * 1000;
    const margin = Math.min(TOKEN_REFRESH_MARGIN_MS, lifetimeMs / 10);
    deps.logger.debug({ route: TOKEN_ROUTE, expiresInSeconds: parsed.expiresInSeconds }, 'access token obtained');
    return { value: parsed.accessToken, refreshAtMs: now() + lifetimeMs - margin };
  }

  /** One token request at a time, shared by every caller waiting for it. */
  async function currentToken(): Promise<CachedToken> {
    if (token && now() < token.refreshAtMs) return token;
    pendingToken ??= fetchToken().finally(() => {
      pendingToken = undefined;
    });
    token = await pendingToken;
    return token;
  }

  return {
    async call(method, path, route, body, headers = {}, options = {}) {
      const priority = options.priority ?? 'control';
      const policy = options.retryPolicy ?? retryPolicy;
      let hasRefreshedToken = false;
      // `untilAnswered` retries outages without end; any other failure still has the policy's
      // budget, counted from the first such failure (not from before an outage it rode out).
      let otherFailures = 0;
      let otherFailingSinceMs: number | undefined;
      const withinPolicy = (): boolean => {
        otherFailures += 1;
        otherFailingSinceMs ??= now();
        return otherFailures <= policy.retries && now() - otherFailingSinceMs < policy.maxRetryTimeMs;
      };
      const attempt = async (): Promise<AttemptOutcome<PortCallResult>> => {
        let used: CachedToken;
        try {
          used = await currentToken();
        } catch (error) {
          const reportError = error instanceof ReportError ? error : new ReportError(describeError(error), { route: TOKEN_ROUTE, retriable: true, cause: error });
          const value: PortCallResult = { ok: false, status: reportError.status, text: reportError.message, error: reportError, isPermanent: !reportError.retriable };
          // A report that must not be lost waits for a token however long (bad credentials are fixed
          // by an operator, and its run is then reported); fetchToken said so once at warn.
          if (options.untilAnswered) return { kind: 'retryable', value, reason: reportError.message };
          return reportError.retriable ? { kind: 'retryable', value, reason: reportError.message } : { kind: 'done', value };
        }
        const result = await send(method, path, route, body, { ...headers, authorization: `Bearer ${used.value}` }, priority);
        if (result.ok) return { kind: 'done', value: result };
        if (result.status === 401 && !hasRefreshedToken) {
          // A rejected token (revoked, clock skew): drop it unless another call already replaced it.
          hasRefreshedToken = true;
          if (token === used) token = undefined;
          return { kind: 'retryable', value: result, reason: 'the access token was rejected', retryAfterMs: 0 };
        }
        const isRetryable = result.status === undefined || isRetryableStatus(result.status);
        if (!isRetryable) return { kind: 'done', value: result };
        if (options.untilAnswered && !isOutage(result.status) && !withinPolicy()) return { kind: 'done', value: result };
        return { kind: 'retryable', value: result, reason: result.error.message, retryAfterMs: result.retryAfterMs };
      };
      const attemptsPolicy: RetryPolicy = options.untilAnswered
        ? { retries: Infinity, minTimeoutMs: policy.minTimeoutMs, maxTimeoutMs: outageMaxBackoffMs, maxRetryTimeMs: Infinity }
        : policy;
      const { value } = await withRetries(attempt, attemptsPolicy, (notice) => {
        deps.logger.debug({ route, attempt: notice.attemptNumber, retriesLeft: notice.retriesLeft, reason: notice.reason }, 'Port API call failed; retrying');
      });
      return value;
    },
    tokenRequests: () => tokenRequestCount,
    hasAnswered: () => hasAnswered,
  };
}
