/**
 * What the polling loop does after a poll (SPEC §8), as a pure decision: after a success, poll
 * again at once when a batch came back full (more runs are waiting) or wait the interval; after a
 * failure, back off, or give up once polling has failed for POLLING_MAX_FAILURE_DURATION_SECONDS
 * without a success, as the official agent does.
 */
import type { BackoffSettings } from '../retry/backoff.js';

/** The POLLING_* settings (config.polling). */
export interface PollingSettings {
  intervalSeconds: number;
  runsBatchSize: number;
  maxFailureDurationSeconds: number;
  /** After failed polls: the official agent's backoff (`retry/backoff.ts`), in seconds. */
  initialBackoffSeconds: number;
  backoffFactor: number;
  maxBackoffSeconds: number;
  backoffJitterFactor: number;
}

/** The backoff after failed polls, in milliseconds. */
export function pollingBackoff(settings: PollingSettings): BackoffSettings {
  return { initialMs: settings.initialBackoffSeconds * 1000, factor: settings.backoffFactor, maxMs: settings.maxBackoffSeconds * 1000, jitterFactor: settings.backoffJitterFactor };
}

/** One poll's outcome: the errors of the kinds whose claim failed, and whether a batch came back full. */
export interface PollOutcome {
  errors: string[];
  isFullBatch: boolean;
}

/** What the loop knows between polls. */
export interface PollingState {
  /** When the failures began; undefined after a success. */
  failingSinceMs: number | undefined;
  /** Whether the poll before this one failed. */
  isBackingOff: boolean;
}

export type AfterPoll =
  /** `hasRecovered`: the polls before failed. */
  | { next: 'poll-now' | 'wait-interval'; failingSinceMs: undefined; hasRecovered: boolean }
  | { next: 'back-off'; failingSinceMs: number; failingForMs: number }
  | { next: 'give-up'; failingSinceMs: number; failingForMs: number };

export function afterPoll(outcome: PollOutcome, state: PollingState, nowMs: number, maxFailureMs: number): AfterPoll {
  if (outcome.errors.length === 0) {
    // A full batch means more runs are waiting: poll again at once.
    return { next: outcome.isFullBatch ? 'poll-now' : 'wait-interval', failingSinceMs: undefined, hasRecovered: state.isBackingOff };
  }
  const failingSinceMs = state.failingSinceMs ?? nowMs;
  const failingForMs = nowMs - failingSinceMs;
  return { next: failingForMs > maxFailureMs ? 'give-up' : 'back-off', failingSinceMs, failingForMs };
}
