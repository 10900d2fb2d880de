/**
 * The one backoff of the agent's loops: the polling loop after failed polls (SPEC §8) and the Kafka
 * consumer's restarts (SPEC §2), the same formula with different settings. It follows the official
 * agent (port-labs/port-agent app/consumers/http_polling_consumer.py, `_exponential_backoff`): the
 * first failure waits the initial backoff, each further one the previous times the factor, capped
 * at the maximum; a jitter of up to `jitterFactor` times the backoff is added on top. Requests to
 * services and to Port retry through `retry-policy.ts` instead (p-retry).
 */

export interface BackoffSettings {
  initialMs: number;
  /** Each further failure waits the previous backoff times this. */
  factor: number;
  maxMs: number;
  /** Up to this share of the backoff is added at random; 0 for none. */
  jitterFactor: number;
}

/**
 * The backoff after one more failure, before jitter; `previousMs` is 0 after a success. Unlike the
 * reference, the first one is capped at the maximum too (an initial above the maximum is a typo).
 */
export function nextBackoffMs(previousMs: number, settings: Pick<BackoffSettings, 'initialMs' | 'factor' | 'maxMs'>): number {
  const nextMs = previousMs === 0 ? settings.initialMs : previousMs * settings.factor;
  return Math.min(nextMs, settings.maxMs);
}

/** The wait for a backoff: the backoff plus a random share of up to `jitterFactor` of it. */
export function withJitterMs(backoffMs: number, jitterFactor: number, random: () => number = Math.random): number {
  return backoffMs + random() * backoffMs * jitterFactor;
}

/** The backoff of one loop: grows with each failure, back to the start after a success. */
export interface Backoff {
  /** Records one more failure; returns the wait before the next attempt, jitter included. */
  failed(): number;
  /** A success: the next failure waits the initial backoff again. */
  reset(): void;
  /** Whether a failure was recorded since the start or the last reset. */
  readonly isBackingOff: boolean;
}

export function createBackoff(settings: BackoffSettings, random: () => number = Math.random): Backoff {
  /** The last backoff before jitter; 0 after a success. */
  let backoffMs = 0;
  return {
    failed() {
      backoffMs = nextBackoffMs(backoffMs, settings);
      return withJitterMs(backoffMs, settings.jitterFactor, random);
    },
    reset() {
      backoffMs = 0;
    },
    get isBackingOff() {
      return backoffMs > 0;
    },
  };
}
