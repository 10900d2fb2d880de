/**
 * Sends one rendered request to an internal service (SPEC §6) and turns what happened into a
 * value: the service's response (any status), or a DeliveryError saying why there is none.
 */
import type { AxiosError, AxiosInstance } from 'axios';
import { DeliveryError, describeError } from '../errors.js';
import { headerRecord, parseJsonBody } from '../http-client.js';
import type { Logger } from '../log.js';
import type { RequestSpec } from '../mapping/types.js';
import { signatureHeaders } from './sign.js';

export interface DeliveryResponse {
  status: number;
  headers: Record<string, string>;
  text: string;
  /** The body parsed as JSON, when it is JSON. */
  json: unknown;
}

export type DeliveryResult =
  | { kind: 'response'; response: DeliveryResponse; attempts: number; durationMs: number }
  | { kind: 'failure'; error: DeliveryError; attempts: number; durationMs: number };

export interface Deliverer {
  deliver(request: RequestSpec, logger: Logger): Promise<DeliveryResult>;
}

export interface DelivererDeps {
  http: AxiosInstance;
  /** HMAC key of X-Port-Signature. */
  secret: string;
  timeoutMs: number;
}

/** A response counts as success below 400 (SPEC §6, compatible). */
export function isSuccessStatus(status: number): boolean {
  return status < 400;
}

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

export function createDeliverer(deps: DelivererDeps): Deliverer {
  async function attempt(request: RequestSpec, attemptNumber: number): Promise<DeliveryResponse> {
    let url: URL;
    try {
      url = buildUrl(request);
    } catch (error) {
      throw new DeliveryError(`invalid URL: ${describeError(error)}`, {
        url: request.url, method: request.method, attempt: attemptNumber, code: 'INVALID_URL', retriable: false, cause: error,
      });
    }
    // SPEC §6: compact JSON, non-ASCII raw; the signature covers exactly these bytes.
    const bodyText = request.body === undefined ? '' : JSON.stringify(request.body);
    const headers: Record<string, string> = {
      'Content-Type': 'application/json',
      ...request.headers,
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
      });
      const text = typeof response.data === 'string' ? response.data : String(response.data ?? '');
      return { status: response.status, headers: headerRecord(response.headers), text, json: parseJsonBody(text) };
    } catch (error) {
      if ((error as AxiosError).isAxiosError) throw failureFromAxios(error as AxiosError, request, attemptNumber, deps.timeoutMs);
      throw error;
    }
  }

  return {
    async deliver(request, logger) {
      const startedAt = performance.now();
      const attemptNumber = 1;
      logger.debug({ attempt: attemptNumber }, 'sending request');
      try {
        const response = await attempt(request, attemptNumber);
        return { kind: 'response', response, attempts: attemptNumber, durationMs: Math.round(performance.now() - startedAt) };
      } catch (error) {
        if (!(error instanceof DeliveryError)) throw error;
        return { kind: 'failure', error, attempts: attemptNumber, durationMs: Math.round(performance.now() - startedAt) };
      }
    },
  };
}
