/**
 * Calls to the Port API with one cached access token (SPEC §7): fetched once, reused until shortly
 * before it expires, fetched again when a call answers 401. Every call resolves to a value; the
 * caller decides what a failure means for its run. No token or secret ever reaches a log line.
 */
import { ReportError, describeError } from '../errors.js';
import { isRetryableStatus, PORT_API_RETRY_POLICY, retryAfterMs, withRetries } from '../delivery/retry-policy.js';
import type { AttemptOutcome, RetryPolicy } from '../delivery/retry-policy.js';
import { parseJsonBody } from '../http-client.js';
import type { HttpTransport } from '../http-client.js';
import type { AgentMetrics } from '../health/metrics.js';
import type { Logger } from '../log.js';

export type PortCallResult =
  | { ok: true; status: number; data: unknown }
  | { ok: false; status: number | undefined; text: string; error: ReportError; retryAfterMs?: number | undefined };

export interface PortCallOptions {
  /**
   * Replaces the client's retry policy for this call, e.g. a single attempt for a call whose
   * caller backs off on its own (SPEC §8: polling claims).
   */
  retryPolicy?: RetryPolicy;
}

export interface PortClient {
  /** `route` is the path template used in logs and errors, e.g. `PATCH /v1/actions/runs/:runId`. */
  call(method: string, path: string, route: string, body?: unknown, headers?: Record<string, string>, options?: PortCallOptions): Promise<PortCallResult>;
  /** How many access tokens were requested so far. */
  tokenRequests(): number;
  /** Whether the Port API has answered any call yet, whatever the status (readiness). */
  hasAnswered(): boolean;
}

export interface PortClientDeps {
  /** Bound to PORT_API_BASE_URL. */
  http: HttpTransport;
  clientId: string;
  clientSecret: string;
  logger: Logger;
  /** Timeout of one Port API call. */
  timeoutMs?: number;
  /** SPEC §7: calls are retried on 429, 5xx and network errors. */
  retryPolicy?: RetryPolicy;
  /** Counts every HTTP call by route and status, and every token request. */
  metrics?: Pick<AgentMetrics, 'portCall' | 'tokenRequested'>;
  now?: () => number;
}

const TOKEN_ROUTE = 'POST /v1/auth/access_token';
const DEFAULT_TIMEOUT_MS = 15_000;
/** Refresh this long before expiry so a token never expires in flight. */
const TOKEN_REFRESH_MARGIN_MS = 60_000;

interface CachedToken {
  value: string;
  refreshAtMs: number;
}

function tokenFrom(data: unknown): { accessToken: string; expiresInSeconds: number } | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const { accessToken, expiresIn } = data as Record<string, unknown>;
  if (typeof accessToken !== 'string' || accessToken === '') return undefined;
  return { accessToken, expiresInSeconds: typeof expiresIn === 'number' && expiresIn > 0 ? expiresIn : 3600 };
}

export function createPortClient(deps: PortClientDeps): PortClient {
  const now = deps.now ?? Date.now;
  const timeoutMs = deps.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const retryPolicy = deps.retryPolicy ?? PORT_API_RETRY_POLICY;
  let token: CachedToken | undefined;
  let pendingToken: Promise<CachedToken> | undefined;
  let tokenRequestCount = 0;
  let hasAnswered = false;

  async function send(method: string, path: string, route: string, body: unknown, headers: Record<string, string>): Promise<PortCallResult> {
    try {
      const response = await deps.http.send({
        method,
        path,
        headers: { 'content-type': 'application/json', ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
        timeoutMs,
      });
      hasAnswered = true;
      deps.metrics?.portCall(route, response.status);
      const { text } = response;
      if (response.status >= 200 && response.status < 300) return { ok: true, status: response.status, data: parseJsonBody(text) };
      return {
        ok: false,
        status: response.status,
        text,
        retryAfterMs: retryAfterMs(response.headers['retry-after']),
        error: new ReportError(`Port API ${route} answered ${response.status}`, {
          route,
          status: response.status,
          responseText: text,
          retriable: response.status === 429 || response.status >= 500,
        }),
      };
    } catch (error) {
      deps.metrics?.portCall(route, undefined);
      const message = describeError(error);
      return {
        ok: false,
        status: undefined,
        text: message,
        error: new ReportError(`Port API ${route} could not be reached: ${message}`, { route, retriable: true, cause: error }),
      };
    }
  }

  async function fetchToken(): Promise<CachedToken> {
    tokenRequestCount += 1;
    deps.metrics?.tokenRequested();
    const result = await send('POST', '/v1/auth/access_token', TOKEN_ROUTE, { clientId: deps.clientId, clientSecret: deps.clientSecret }, {});
    if (!result.ok) throw result.error;
    const parsed = tokenFrom(result.data);
    if (!parsed) throw new ReportError('Port API returned no access token', { route: TOKEN_ROUTE, status: result.status, retriable: true });
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
      let hasRefreshedToken = false;
      const attempt = async (): Promise<AttemptOutcome<PortCallResult>> => {
        let used: CachedToken;
        try {
          used = await currentToken();
        } catch (error) {
          const reportError = error instanceof ReportError ? error : new ReportError(describeError(error), { route: TOKEN_ROUTE, retriable: true, cause: error });
          const value: PortCallResult = { ok: false, status: reportError.status, text: reportError.message, error: reportError };
          return reportError.retriable ? { kind: 'retryable', value, reason: reportError.message } : { kind: 'done', value };
        }
        const result = await send(method, path, route, body, { ...headers, authorization: `Bearer ${used.value}` });
        if (result.ok) return { kind: 'done', value: result };
        if (result.status === 401 && !hasRefreshedToken) {
          // A rejected token (revoked, clock skew): drop it unless another call already replaced it.
          hasRefreshedToken = true;
          if (token === used) token = undefined;
          return { kind: 'retryable', value: result, reason: 'the access token was rejected', retryAfterMs: 0 };
        }
        if (result.status === undefined || isRetryableStatus(result.status)) {
          return { kind: 'retryable', value: result, reason: result.error.message, retryAfterMs: result.retryAfterMs };
        }
        return { kind: 'done', value: result };
      };
      const { value } = await withRetries(attempt, options.retryPolicy ?? retryPolicy, (notice) => {
        deps.logger.warn({ route, attempt: notice.attemptNumber, retriesLeft: notice.retriesLeft, reason: notice.reason }, 'Port API call failed; retrying');
      });
      return value;
    },
    tokenRequests: () => tokenRequestCount,
    hasAnswered: () => hasAnswered,
  };
}
