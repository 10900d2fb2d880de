/**
 * Liveness and readiness (issue 6), decided from what the source and the Port client say of
 * themselves. Liveness asks "would a restart help?": the event loop is stuck, or the consumer
 * stopped trying. A broker that is down is not a reason to restart — the agent keeps retrying —
 * so it makes the agent unready, never dead. Readiness asks "is it doing its job?": joined to its
 * group (as active member or standby), heard from the broker lately, and heard from Port.
 */
import type { SourceStatus } from '../shared/source-status.js';
import type { EventLoopWatch } from './event-loop.js';

export interface ProbeResult {
  ok: boolean;
  /** One line per check, for the probe's answer body and for an operator reading it. */
  checks: Record<string, string>;
}

export interface ProbeInputs {
  source(): SourceStatus | undefined;
  portHasAnswered(): boolean;
  isStopping(): boolean;
  eventLoop: EventLoopWatch;
  now?: () => number;
}

export interface ProbeOptions {
  /** The consumer is stuck when it has not even tried to talk to the broker for this long. */
  consumerStaleAfterMs: number;
  /** Unready when the broker has not answered the consumer for this long (the session timeout). */
  brokerSilentAfterMs: number;
  /** Not alive when the event loop was blocked this long within the watch's window. */
  eventLoopStallMs: number;
}

export interface Probes {
  liveness(): ProbeResult;
  readiness(): ProbeResult;
}

export function createProbes(inputs: ProbeInputs, options: ProbeOptions): Probes {
  const now = inputs.now ?? Date.now;

  function eventLoopCheck(): [boolean, string] {
    const lagMs = inputs.eventLoop.maxRecentDelayMs();
    return lagMs < options.eventLoopStallMs
      ? [true, `responsive (longest recent delay ${Math.round(lagMs)} ms)`]
      : [false, `blocked for ${Math.round(lagMs)} ms (limit ${options.eventLoopStallMs} ms)`];
  }

  return {
    liveness() {
      const [loopOk, loopText] = eventLoopCheck();
      const status = inputs.source();
      let consumerOk = true;
      let consumerText = 'not started yet';
      if (status) {
        const sinceAttemptMs = now() - status.lastAttemptAtMs;
        if (status.state === 'stopped' && !inputs.isStopping()) {
          consumerOk = false;
          consumerText = 'stopped for good';
        } else if (sinceAttemptMs > options.consumerStaleAfterMs && !inputs.isStopping()) {
          consumerOk = false;
          consumerText = `${status.state}, no sign of activity for ${Math.round(sinceAttemptMs / 1000)} s`;
        } else {
          consumerText = status.state;
        }
      }
      return { ok: loopOk && consumerOk, checks: { eventLoop: loopText, consumer: consumerText } };
    },
    readiness() {
      const status = inputs.source();
      const checks: Record<string, string> = {};
      let ok = true;
      if (inputs.isStopping()) {
        ok = false;
        checks.agent = 'stopping';
      }
      if (!status) {
        ok = false;
        checks.consumer = 'not started yet';
      } else if (status.state !== 'consuming' && status.state !== 'standby') {
        ok = false;
        checks.consumer = status.state;
      } else {
        const silentMs = now() - status.lastBrokerAnswerAtMs;
        if (silentMs > options.brokerSilentAfterMs) {
          ok = false;
          checks.consumer = `${status.state}, but the broker has not answered for ${Math.round(silentMs / 1000)} s`;
        } else {
          checks.consumer = status.state;
        }
      }
      const portOk = inputs.portHasAnswered();
      if (!portOk) ok = false;
      checks.portApi = portOk ? 'answered' : 'no answer yet';
      return { ok, checks };
    },
  };
}
