/**
 * The one retry policy of the agent, for requests to internal services and to the Port API:
 * exponential backoff with jitter, `Retry-After` honoured, bounded by attempts and total time.
 * An attempt says what happened as a value; only outcomes marked retryable are tried again, and
 * when the budget is spent the last outcome is returned as it is (a 503 stays a 503).
 */
import { setTimeout as delay } from 'node:timers/promises';
import pRetry, { AbortError } from 'p-retry';

export interface RetryPolicy {
  /** Attempts after the first. */
  retries: number;
  /** Backoff before the first retry; doubled each time, times a random 1–2 (jitter). */
  minTimeoutMs: number;
  maxTimeoutMs: number;
  /** No retry starts after this long since the first attempt. */
  maxRetryTimeMs: number;
}

/**
 * SPEC §7: Port API calls ride out an outage of tens of seconds (the fault tests hold Port at 503
 * for 20 s) — a report given up is a run left in progress.
 */
export const PORT_API_RETRY_POLICY: RetryPolicy = { retries: 10, minTimeoutMs: 500, maxTimeoutMs: 5_000, maxRetryTimeMs: 60_000 };

/** A server's `Retry-After` is followed up to this long; beyond, the policy's own backoff applies. */
const MAX_RETRY_AFTER_MS = 60_000;

export type AttemptOutcome<T> =
  | { kind: 'done'; value: T }
  | { kind: 'retryable'; value: T; reason: string; retryAfterMs?: number | undefined };

export interface RetryNotice {
  /** The attempt that just failed, from 1. */
  attemptNumber: number;
  retriesLeft: number;
  reason: string;
}

/** 429, 408 and 5xx are worth another attempt; other statuses are answers. */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || status === 408 || status >= 500;
}

/** `Retry-After` in seconds or as an HTTP date, in milliseconds from now. */
export function retryAfterMs(header: string | undefined, nowMs: number = Date.now()): number | undefined {
  if (header === undefined || header.trim() === '') return undefined;
  const seconds = Number(header);
  const waitMs = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(header) - nowMs;
  if (!Number.isFinite(waitMs)) return undefined;
  return Math.min(Math.max(0, waitMs), MAX_RETRY_AFTER_MS);
}

class RetryableOutcome<T> extends Error {
  constructor(readonly outcome: Extract<AttemptOutcome<T>, { kind: 'retryable' }>) {
    super(outcome.reason);
    this.name = 'RetryableOutcome';
  }
}

/**
 * Runs `attempt` until it is done, not retryable, or the policy's budget is spent, and resolves
 * with the last value. `onRetry` hears of each retry before it waits. Errors thrown by `attempt`
 * are not retried: an attempt reports retryable failures as values.
 */
export async function withRetries<T>(
  attempt: (attemptNumber: number) => Promise<AttemptOutcome<T>>,
  policy: RetryPolicy,
  onRetry: (notice: RetryNotice) => void | Promise<void> = () => undefined,
): Promise<{ value: T; attempts: number }> {
  // Most calls succeed at once: the first attempt runs outside p-retry, whose machinery (a
  // promise chain, closures, a timer check) was a few percent of the agent's CPU per run.
  const startedAt = Date.now();
  const first = await attempt(1);
  if (first.kind === 'done' || policy.retries === 0) return { value: first.value, attempts: 1 };
  // p-retry takes over from the first failure: its attempt 1 is the one already made, so the
  // backoff, the notices and the budget are those of one p-retry loop from the start.
  let known: AttemptOutcome<T> | undefined = first;
  let attempts = 1;
  try {
    return await pRetry(
      async (attemptNumber) => {
        attempts = attemptNumber;
        let outcome: AttemptOutcome<T>;
        if (known !== undefined) {
          outcome = known;
          known = undefined;
        } else {
          try {
            outcome = await attempt(attemptNumber);
          } catch (error) {
            throw new AbortError(error instanceof Error ? error : new Error(String(error)));
          }
        }
        if (outcome.kind === 'retryable') throw new RetryableOutcome(outcome);
        return { value: outcome.value, attempts: attemptNumber };
      },
      {
        retries: policy.retries,
        factor: 2,
        minTimeout: policy.minTimeoutMs,
        maxTimeout: policy.maxTimeoutMs,
        randomize: true,
        // The budget counts from the first attempt, made before p-retry started.
        maxRetryTime: Math.max(0, policy.maxRetryTimeMs - (Date.now() - startedAt)),
        onFailedAttempt: async ({ error, attemptNumber, retriesLeft }) => {
          if (!(error instanceof RetryableOutcome) || retriesLeft === 0) return;
          await onRetry({ attemptNumber, retriesLeft, reason: error.outcome.reason });
          const serverWaitMs = (error.outcome as { retryAfterMs?: number }).retryAfterMs;
          if (serverWaitMs !== undefined) await delay(serverWaitMs);
        },
      },
    );
  } catch (error) {
    if (error instanceof RetryableOutcome) return { value: (error.outcome as { value: T }).value, attempts };
    throw error;
  }
}
