/**
 * An internal service's answer as delivery hands it on: reporting and the pipeline read it, and
 * neither needs to know how it was fetched.
 */

export interface ServiceResponse {
  status: number;
  /** Names lower-cased, for the agent's own reading (`retry-after`). */
  headers: Record<string, string>;
  /** Names as the service sent them, for report expressions (`.response.headers.Location`). */
  headersAsSent: Record<string, string>;
  text: string;
  /** The body parsed as JSON, when it is JSON. */
  json: unknown;
}

/** A response counts as success below 400 (SPEC §6, compatible). */
export function isSuccessStatus(status: number): boolean {
  return status < 400;
}

/** What an HTTP call came to, for metrics: its status class, or `error` without an answer. */
export type StatusClass = '1xx' | '2xx' | '3xx' | '4xx' | '5xx' | 'error';

export function statusClassOf(status: number | undefined): StatusClass {
  if (status === undefined || status < 100 || status > 599) return 'error';
  return `${Math.floor(status / 100)}xx` as StatusClass;
}
