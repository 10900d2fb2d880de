/**
 * What the consumer supervisor does after a failure (SPEC §2), as a pure decision: retry a start,
 * rebuild a consumer kafkajs gave up on, fetch the credentials again when the brokers refused them,
 * leave a crash to kafkajs when it restarts the consumer itself, or ignore the crash of a consumer
 * already replaced (or of one stopping). The supervisor backs off before every retry and rebuild.
 */
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';

/** Where a consumer failed, and what the supervisor knew then. */
export type ConsumerFailure =
  /** Getting a client: the brokers and credentials from Port. */
  | { during: 'client' }
  /** Connecting, subscribing or running a fresh consumer. */
  | { during: 'start'; isRefused: boolean }
  /** kafkajs' CRASH event of a running consumer. */
  | { during: 'crash'; isRefused: boolean; willKafkajsRestart: boolean; isCurrent: boolean; isStopping: boolean };

export interface FailureDecision {
  /**
   * `retry`: back off, then start a fresh consumer; `rebuild`: disconnect the consumer, back off,
   * then start a fresh one; `leave`: kafkajs restarts it; `ignore`: an old or stopping consumer.
   */
  next: 'retry' | 'rebuild' | 'leave' | 'ignore';
  /** The brokers refused the credentials: the next client fetches them again. */
  shouldRenewCredentials: boolean;
  /** The line to log, if any (with the error, and the wait before a retry). */
  log?: { level: 'warn' | 'error'; message: string };
}

function afterCrash(failure: Extract<ConsumerFailure, { during: 'crash' }>): FailureDecision {
  // kafkajs would restart with the refused credentials: rebuild with fetched ones instead.
  if (failure.willKafkajsRestart && !failure.isRefused) {
    return { next: 'leave', shouldRenewCredentials: false, log: { level: 'warn', message: 'Kafka consumer crashed; kafkajs restarts it' } };
  }
  if (failure.isStopping || !failure.isCurrent) return { next: 'ignore', shouldRenewCredentials: false };
  if (failure.isRefused) {
    return { next: 'rebuild', shouldRenewCredentials: true, log: { level: 'warn', message: 'Kafka refused the credentials; fetching them again and rebuilding the consumer' } };
  }
  return { next: 'rebuild', shouldRenewCredentials: false, log: { level: 'error', message: 'Kafka consumer crashed and kafkajs will not restart it; rebuilding the consumer' } };
}

export function afterFailure(failure: ConsumerFailure): FailureDecision {
  switch (failure.during) {
    case 'client':
      return { next: 'retry', shouldRenewCredentials: false, log: { level: 'error', message: 'could not get the Kafka brokers and credentials; retrying' } };
    case 'start':
      // SPEC §2 improvement: Port rotated the credentials; the next attempt fetches them again.
      return failure.isRefused
        ? { next: 'retry', shouldRenewCredentials: true, log: { level: 'warn', message: 'Kafka refused the credentials; fetching them again and reconnecting' } }
        : { next: 'retry', shouldRenewCredentials: false, log: { level: 'error', message: 'could not start the Kafka consumer; retrying' } };
    case 'crash':
      return afterCrash(failure);
  }
}

/** Heeds a decision: the credentials are fetched again if they were refused, the failure is logged (with the wait before a retry). */
export function heedFailure(decision: FailureDecision, error: unknown, deps: { connector: { renew(): void }; logger: Logger }, retryInMs?: number): void {
  if (decision.shouldRenewCredentials) deps.connector.renew();
  if (!decision.log) return;
  const fields = retryInMs === undefined ? { err: describeError(error) } : { err: describeError(error), retryInMs };
  deps.logger[decision.log.level](fields, decision.log.message);
}
