/**
 * The polling source (SPEC §8, `STREAMER_NAME=POLLING`): no Kafka. Every POLLING_INTERVAL_SECONDS
 * it claims pending action runs and workflow node runs from the Port API, acknowledges each one
 * (a run Port does not acknowledge belongs to another agent and is skipped), and hands the acked
 * runs to the same handler the Kafka source uses, as unsigned runs-topic messages. A full batch
 * means more are waiting: it polls again at once. Failed polls back off exponentially with
 * jitter; after POLLING_MAX_FAILURE_DURATION_SECONDS of nothing but failures it gives up, and the
 * agent exits 0, as the official agent does (port-labs/port-agent
 * app/consumers/http_polling_consumer.py).
 *
 * Runs are handled concurrently, as on the Kafka path: up to `maxInHand` at once, and the loop
 * waits for room before handing over the next one. The parts: `polling-loop.ts` (each poll, the
 * pause after it), `polling-schedule.ts` (what to do after a poll), `polling-claims.ts` (claims and
 * acks), `polling-hand-over.ts` (an acked run to the handler), `in-hand.ts` (the runs held, the drain).
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Semaphore } from '../concurrency/semaphore.js';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { PortClient } from '../reporting/port-client.js';
import type { Reporter } from '../reporting/reporter.js';
import { createInHandTracker } from './in-hand.js';
import { createClaims, POLLING_INSTALLATION_ID } from './polling-claims.js';
import { createHandOver } from './polling-hand-over.js';
import { runPollingLoop } from './polling-loop.js';
import type { PollingSettings } from './polling-schedule.js';
import { createSourceActivity } from './source-activity.js';
import type { Source } from './types.js';

export type { PollingSettings } from './polling-schedule.js';

export interface PollingSourceDeps {
  port: PortClient;
  /** Reports a run whose processing failed outside the handler's own reports (SPEC §8). */
  reporter: Pick<Reporter, 'open'>;
  settings: PollingSettings;
  /** Runs handled at once until delivered, as on the Kafka path; the loop waits for room at the limit. */
  maxInHand: number;
  /** Delivered runs waiting for Port to accept their reports; the loop waits at this limit too. */
  awaitingReports: Semaphore;
  shutdownGraceMs: number;
  logger: Logger;
  /**
   * Called once, after the loop has stopped, when polling failed for
   * POLLING_MAX_FAILURE_DURATION_SECONDS without a success: the agent should stop and exit 0
   * (SPEC §8, as the reference). The runs in hand are still finishing; `stop()` waits for them.
   */
  onGiveUp: () => void;
  now?: () => number;
  /** Waits `ms`, or less when `signal` aborts (stop); never rejects. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  random?: () => number;
}

/** Readiness: a working poller hears from Port every interval; three missed turns, or this, is too long. */
const PORT_SILENT_MIN_MS = 60_000;
/** Liveness: a loop that has not even tried for three of its longest pauses, or this, is stuck. */
const LOOP_STALE_MIN_MS = 120_000;

async function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  await delay(ms, undefined, { signal }).catch(() => undefined);
}

/**
 * The probe windows of a polling agent (issue 6): Port answers every poll interval, and the loop
 * pauses at most an interval or a (jittered) maximum backoff between attempts.
 */
export function pollingProbeWindows(settings: PollingSettings): { consumerStaleAfterMs: number; brokerSilentAfterMs: number } {
  const intervalMs = settings.intervalSeconds * 1000;
  const longestPauseMs = Math.max(intervalMs, settings.maxBackoffSeconds * 1000 * (1 + settings.backoffJitterFactor));
  return {
    consumerStaleAfterMs: Math.max(LOOP_STALE_MIN_MS, 3 * longestPauseMs),
    brokerSilentAfterMs: Math.max(PORT_SILENT_MIN_MS, 3 * intervalMs),
  };
}

export function createPollingSource(deps: PollingSourceDeps): Source {
  const { port, settings, logger } = deps;
  const now = deps.now ?? Date.now;
  const inHand = createInHandTracker({ maxInHand: deps.maxInHand, awaitingReports: deps.awaitingReports, shutdownGraceMs: deps.shutdownGraceMs, logger });
  const stopping = new AbortController();
  let isStopping = false;
  let looping: Promise<void> | undefined;
  const activity = createSourceActivity(now);
  const claims = createClaims({ port, runsBatchSize: settings.runsBatchSize, activity, logger });
  const handOver = createHandOver({ inHand, reporter: deps.reporter, logger });
  const loopDeps = {
    claims,
    handOver,
    settings,
    activity,
    logger,
    now,
    signal: stopping.signal,
    isStopping: () => isStopping,
    sleep: deps.sleep ?? sleepUnlessAborted,
    random: deps.random ?? Math.random,
  };

  /** Waits for every run in hand, including those the loop is still handing over. */
  async function drain(): Promise<void> {
    await looping;
    await inHand.drain();
  }

  return {
    async start(handler) {
      logger.info({ intervalSeconds: settings.intervalSeconds, batchSize: settings.runsBatchSize, installationId: POLLING_INSTALLATION_ID }, 'polling Port for runs');
      looping = runPollingLoop(loopDeps, handler).then(
        (hasGivenUp) => {
          if (hasGivenUp) deps.onGiveUp();
        },
        (error: unknown) => {
          // Every poll failure is caught inside the loop; this is a defect. Stop like a give-up.
          logger.fatal({ err: describeError(error) }, 'the polling loop failed');
          activity.state = 'stopped';
          deps.onGiveUp();
        },
      );
    },
    async stop() {
      isStopping = true;
      activity.state = 'stopped';
      stopping.abort();
      await inHand.finishWithinGrace(drain(), 'in-flight runs did not finish within the grace period; they stay in progress in Port');
    },
    status() {
      // While waiting for room the loop is busy with runs in hand, as alive as a heartbeat.
      const busyAtMs = handOver.isWaitingForRoom ? now() : undefined;
      return {
        state: activity.state,
        lastBrokerAnswerAtMs: busyAtMs ?? activity.lastBrokerAnswerAtMs,
        lastAttemptAtMs: busyAtMs ?? activity.lastAttemptAtMs,
        messagesInHand: inHand.count,
        lag: [],
        backlog: [],
      };
    },
  };
}
