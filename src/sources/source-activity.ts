/**
 * What a source did last and how it is doing, the part of its status() the probes read (issue 6):
 * Kafka's consumer supervisor and the polling loop keep it alike.
 */
import type { SourceStatus } from '../shared/source-status.js';

export interface SourceActivity {
  /** The broker (polling: Port) answered; an answer is an attempt too. */
  answered(): void;
  /** The source tried something, answered or not (a request, a crash, a retry). */
  attempted(): void;
  state: SourceStatus['state'];
  readonly lastBrokerAnswerAtMs: number;
  readonly lastAttemptAtMs: number;
}

export function createSourceActivity(now: () => number = Date.now): SourceActivity {
  let lastBrokerAnswerAtMs = now();
  let lastAttemptAtMs = lastBrokerAnswerAtMs;
  return {
    answered() {
      lastBrokerAnswerAtMs = now();
      lastAttemptAtMs = lastBrokerAnswerAtMs;
    },
    attempted() {
      lastAttemptAtMs = now();
    },
    state: 'starting',
    get lastBrokerAnswerAtMs() {
      return lastBrokerAnswerAtMs;
    },
    get lastAttemptAtMs() {
      return lastAttemptAtMs;
    },
  };
}
