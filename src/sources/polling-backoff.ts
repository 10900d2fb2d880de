/**
 * The polling streamer's backoff after failed polls (SPEC §8), as the official agent computes it
 * (port-labs/port-agent app/consumers/http_polling_consumer.py, `_exponential_backoff`): the first
 * failure waits the initial backoff, each further one the previous times the factor, capped at the
 * maximum; a jitter of up to `jitterFactor` times the backoff is added on top.
 */

export interface PollingBackoffSettings {
  initialBackoffSeconds: number;
  backoffFactor: number;
  maxBackoffSeconds: number;
  backoffJitterFactor: number;
}

/**
 * The backoff after one more failure, before jitter; `previousMs` is 0 after a success. Unlike the
 * reference, the first one is capped at the maximum too (an initial above the maximum is a typo).
 */
export function nextBackoffMs(previousMs: number, settings: PollingBackoffSettings): number {
  const maxMs = settings.maxBackoffSeconds * 1000;
  const nextMs = previousMs === 0 ? settings.initialBackoffSeconds * 1000 : previousMs * settings.backoffFactor;
  return Math.min(nextMs, maxMs);
}

/** The wait for a backoff: the backoff plus a random share of up to `jitterFactor` of it. */
export function withJitterMs(backoffMs: number, jitterFactor: number, random: () => number = Math.random): number {
  return backoffMs + random() * backoffMs * jitterFactor;
}
