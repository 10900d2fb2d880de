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
 * waits for room before handing over the next one.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Semaphore } from '../concurrency/semaphore.js';
import { createBackoff } from '../retry/backoff.js';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { PortClient } from '../reporting/port-client.js';
import type { Reporter, RunRef } from '../reporting/reporter.js';
import { createInHandTracker } from './in-hand.js';
import type { InHandPlace } from './in-hand.js';
import { buildRunMessage, claimedRunId } from './polling-message.js';
import { CLAIM_APIS, createClaims, POLLING_INSTALLATION_ID } from './polling-claims.js';
import type { ClaimApi } from './polling-claims.js';
import type { MessageHandler } from '../shared/source-message.js';
import { createSourceActivity } from './source-activity.js';
import type { Source } from './types.js';

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

/** SPEC §8: the summary of a run the agent failed to process, as the reference words it. */
export const PROCESSING_FAILED_SUMMARY = 'Agent failed to process the run';
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
  const sleep = deps.sleep ?? sleepUnlessAborted;
  const random = deps.random ?? Math.random;
  const intervalMs = settings.intervalSeconds * 1000;
  const maxFailureMs = settings.maxFailureDurationSeconds * 1000;
  const inHand = createInHandTracker({ maxInHand: deps.maxInHand, awaitingReports: deps.awaitingReports, shutdownGraceMs: deps.shutdownGraceMs, logger });
  const stopping = new AbortController();
  let isStopping = false;
  let looping: Promise<void> | undefined;
  const activity = createSourceActivity(now);
  const claims = createClaims({ port, runsBatchSize: settings.runsBatchSize, activity, logger });
  /** Waiting for room to hand over an acked run: busy with runs, not stuck. */
  let isWaitingForRoom = false;
  let sequence = 0;

  async function reportProcessingFailure(api: ClaimApi, runId: string, runLogger: Logger): Promise<void> {
    const run: RunRef = { kind: api.kind, runId, synchronized: false };
    const reports = deps.reporter.open(run, runLogger);
    reports.failed(PROCESSING_FAILED_SUMMARY);
    await reports.settled();
  }

  /** Builds the message and runs the handler; a run that cannot be processed is reported failed. */
  async function process(api: ClaimApi, runId: string, run: unknown, offset: string, handler: MessageHandler, place: InHandPlace): Promise<void> {
    const runLogger = logger.child({ runId, topic: api.topic, offset });
    try {
      const built = buildRunMessage(api.kind, run, runId);
      if (!built.ok) {
        runLogger.error({ reason: built.reason }, 'run failed: the claimed run cannot be processed');
        await reportProcessingFailure(api, runId, runLogger);
        return;
      }
      // The handler reports its own failures (a service error, a mapping error…); only a crash is left.
      const handled = await handler({ topic: api.topic, partition: 0, offset, role: 'runs', origin: 'claimed', value: Buffer.from(JSON.stringify(built.message)), traceparent: undefined });
      await place.awaitReports(handled);
    } catch (error) {
      runLogger.error({ err: describeError(error), stack: error instanceof Error ? error.stack : undefined }, 'run failed: processing it failed unexpectedly');
      await reportProcessingFailure(api, runId, runLogger);
    }
  }

  async function handOver(api: ClaimApi, runId: string, run: unknown, handler: MessageHandler): Promise<void> {
    isWaitingForRoom = true;
    const place = await inHand.acquire().finally(() => {
      isWaitingForRoom = false;
    });
    sequence += 1;
    place.track(process(api, runId, run, String(sequence), handler, place));
  }

  /** Claims, acks every run, then hands the acked ones over (SPEC §8: all acks before processing). */
  async function pollKind(api: ClaimApi, handler: MessageHandler): Promise<{ ok: true; isFullBatch: boolean } | { ok: false; error: string }> {
    const claimed = await claims.claim(api);
    if (!claimed.ok) return claimed;
    const { runs } = claimed;
    if (runs.length === 0) logger.debug({ kind: api.kind }, 'no pending runs');
    else logger.info({ kind: api.kind, count: runs.length }, 'runs claimed');
    const acked: { runId: string; run: unknown }[] = [];
    for (const run of runs) {
      // Once stopping, unacknowledged runs are left to Port, which hands them out again.
      if (isStopping) break;
      const runId = claimedRunId(api.kind, run);
      if (runId === undefined) {
        logger.warn({ kind: api.kind }, 'claimed run dropped: it has no id');
        continue;
      }
      if (await claims.acknowledge(api, runId)) acked.push({ runId, run });
    }
    // Acked runs are this agent's: they are handed over even while stopping.
    for (const { runId, run } of acked) await handOver(api, runId, run, handler);
    return { ok: true, isFullBatch: runs.length >= settings.runsBatchSize };
  }

  /** One poll: claims each kind of run in turn; the errors of those that failed. */
  async function pollOnce(handler: MessageHandler): Promise<{ errors: string[]; isFullBatch: boolean }> {
    const errors: string[] = [];
    let isFullBatch = false;
    for (const api of CLAIM_APIS) {
      if (isStopping) break;
      let polled;
      try {
        polled = await pollKind(api, handler);
      } catch (error) {
        polled = { ok: false as const, error: describeError(error) };
      }
      if (polled.ok) isFullBatch ||= polled.isFullBatch;
      else errors.push(polled.error);
    }
    return { errors, isFullBatch };
  }

  /** Polls until stopped; resolves true when it gave up after too long a failure. */
  async function loop(handler: MessageHandler): Promise<boolean> {
    const backoff = createBackoff(
      { initialMs: settings.initialBackoffSeconds * 1000, factor: settings.backoffFactor, maxMs: settings.maxBackoffSeconds * 1000, jitterFactor: settings.backoffJitterFactor },
      random,
    );
    let failingSinceMs: number | undefined;
    while (!isStopping) {
      const { errors, isFullBatch } = await pollOnce(handler);
      if (isStopping) break;
      if (errors.length === 0) {
        if (backoff.isBackingOff) logger.info('polling recovered');
        backoff.reset();
        failingSinceMs = undefined;
        activity.state = 'consuming';
        // A full batch means more runs are waiting: poll again at once.
        if (!isFullBatch) await sleep(intervalMs, stopping.signal);
        continue;
      }
      failingSinceMs ??= now();
      const failingForMs = now() - failingSinceMs;
      if (failingForMs > maxFailureMs) {
        logger.error({ failingForSeconds: Math.round(failingForMs / 100) / 10, maxFailureDurationSeconds: settings.maxFailureDurationSeconds, err: errors.join('; ') }, 'polling kept failing for POLLING_MAX_FAILURE_DURATION_SECONDS; giving up');
        activity.state = 'stopped';
        return true;
      }
      activity.state = 'reconnecting';
      const waitMs = backoff.failed();
      logger.warn({ err: errors.join('; '), retryInMs: Math.round(waitMs), failingForSeconds: Math.round(failingForMs / 100) / 10 }, 'polling failed; backing off');
      activity.attempted();
      await sleep(waitMs, stopping.signal);
    }
    return false;
  }

  /** Waits for every run in hand, including those the loop is still handing over. */
  async function drain(): Promise<void> {
    await looping;
    await inHand.drain();
  }

  return {
    async start(handler) {
      logger.info({ intervalSeconds: settings.intervalSeconds, batchSize: settings.runsBatchSize, installationId: POLLING_INSTALLATION_ID }, 'polling Port for runs');
      looping = loop(handler).then(
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
      const busyAtMs = isWaitingForRoom ? now() : undefined;
      return {
        state: activity.state,
        lastBrokerAnswerAtMs: busyAtMs ?? activity.lastBrokerAnswerAtMs,
        lastAttemptAtMs: busyAtMs ?? activity.lastAttemptAtMs,
        messagesInHand: inHand.count,
        lag: [],
      };
    },
  };
}
