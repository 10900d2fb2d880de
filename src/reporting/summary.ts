/**
 * The one place that turns an error into the summary an operator reads on a failed run in Port
 * and in the agent's logs. Never a secret: URLs lose their query string and credentials.
 */
import { DeliveryError, MappingError, MessageError, describeError } from '../errors.js';

/**
 * The URL without user info or query, which may hold tokens. A URL that does not parse is not
 * shown at all: there is no telling which part of it is a secret.
 */
export function displayUrl(raw: string): string {
  try {
    const url = new URL(raw);
    return url.host === '' ? `${url.protocol}…` : `${url.protocol}//${url.host}${url.pathname}`;
  } catch {
    return `(a malformed URL of ${raw.length} characters)`;
  }
}

export function failureSummary(error: unknown): string {
  if (error instanceof DeliveryError) {
    const attempts = error.attempt === 1 ? '1 attempt' : `${error.attempt} attempts`;
    return `The agent could not deliver the request to ${error.method} ${displayUrl(error.url)}: ${error.message} (after ${attempts}).`;
  }
  if (error instanceof MappingError) return `The payload mapping failed: ${error.message}.`;
  if (error instanceof MessageError) return `The agent could not read the run's message: ${error.message}.`;
  return `The agent failed to process the run: ${describeError(error)}.`;
}
