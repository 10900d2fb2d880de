/**
 * The one HTTP client factory, for internal services and the Port API alike: keep-alive
 * connections (a run makes several calls to the same hosts), raw text bodies (the caller decides
 * how to parse), every status resolved (the caller decides what is success).
 */
import http from 'node:http';
import https from 'node:https';
import axios from 'axios';
import type { AxiosInstance } from 'axios';

/** Responses larger than this are cut off: a runaway service must not exhaust the agent's memory. */
export const MAX_RESPONSE_BYTES = 10 * 1024 * 1024;
const MAX_REDIRECTS = 5;

export interface HttpClientOptions {
  /** Verify TLS certificates (WEBHOOK_VERIFY_SSL for internal services; always for Port). */
  verifyTls: boolean;
  userAgent: string;
  /** Open connections per host; more calls wait for one (each socket costs buffers). */
  maxSocketsPerHost: number;
  /** SPEC §6: webhooks follow redirects; the Port API never redirects, so its calls skip the wrapper. */
  followRedirects: boolean;
}

export function createHttpClient(options: HttpClientOptions): AxiosInstance {
  return axios.create({
    httpAgent: new http.Agent({ keepAlive: true, maxSockets: options.maxSocketsPerHost, scheduling: 'lifo' }),
    httpsAgent: new https.Agent({ keepAlive: true, maxSockets: options.maxSocketsPerHost, scheduling: 'lifo', rejectUnauthorized: options.verifyTls }),
    maxRedirects: options.followRedirects ? MAX_REDIRECTS : 0,
    maxContentLength: MAX_RESPONSE_BYTES,
    maxBodyLength: Infinity,
    responseType: 'text',
    // Keep the body as received; axios would otherwise parse JSON and lose the exact text.
    transformResponse: [(data: unknown) => data],
    validateStatus: () => true,
    headers: { 'User-Agent': options.userAgent },
  });
}

/** Response headers as a plain record with lower-case names. */
export function headerRecord(headers: unknown): Record<string, string> {
  const record: Record<string, string> = {};
  if (typeof headers !== 'object' || headers === null) return record;
  for (const [name, value] of Object.entries(headers as Record<string, unknown>)) {
    if (value === undefined || value === null) continue;
    record[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  return record;
}

/** The body parsed as JSON when it is JSON, else undefined (the official agent tries JSON first). */
export function parseJsonBody(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
