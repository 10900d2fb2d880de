/**
 * The polling loop (SPEC §8): each poll claims action runs, then node runs, acknowledges each
 * claimed run (all acks before any processing) and hands the acked ones over; after the poll it
 * polls again, waits or backs off as `polling-schedule.ts` decides, until the source stops or the
 * loop gives up.
 */
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import { createBackoff } from '../retry/backoff.js';
import type { Backoff } from '../retry/backoff.js';
import type { MessageHandler } from '../shared/source-message.js';
import { CLAIM_APIS } from './polling-claims.js';
import type { ClaimApi, Claims } from './polling-claims.js';
import type { AckedRun, HandOver } from './polling-hand-over.js';
import { claimedRunId } from './polling-message.js';
import { afterPoll, pollingBackoff } from './polling-schedule.js';
import type { AfterPoll, PollingSettings, PollOutcome } from './polling-schedule.js';
import type { SourceActivity } from './source-activity.js';

export interface PollingLoopDeps {
  claims: Claims;
  handOver: HandOver;
  settings: PollingSettings;
  activity: SourceActivity;
  isStopping(): boolean;
  /** Aborted on stop: cuts a pause short. */
  signal: AbortSignal;
  logger: Logger;
  now: () => number;
  /** Waits `ms`, or less when `signal` aborts; never rejects. */
  sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  random: () => number;
}

const inSeconds = (ms: number): number => Math.round(ms / 100) / 10;

/** Claims, acks every run, then hands the acked ones over (SPEC §8: all acks before processing). */
async function pollKind(deps: PollingLoopDeps, api: ClaimApi, handler: MessageHandler): Promise<{ ok: true; isFullBatch: boolean } | { ok: false; error: string }> {
  const { claims, logger } = deps;
  const claimed = await claims.claim(api);
  if (!claimed.ok) return claimed;
  const { runs } = claimed;
  if (runs.length === 0) logger.debug({ kind: api.kind }, 'no pending runs');
  else logger.info({ kind: api.kind, count: runs.length }, 'runs claimed');
  const acked: AckedRun[] = [];
  for (const run of runs) {
    // Once stopping, unacknowledged runs are left to Port, which hands them out again.
    if (deps.isStopping()) break;
    const runId = claimedRunId(api.kind, run);
    if (runId === undefined) {
      logger.warn({ kind: api.kind }, 'claimed run dropped: it has no id');
      continue;
    }
    if (await claims.acknowledge(api, runId)) acked.push({ api, runId, run });
  }
  // Acked runs are this agent's: they are handed over even while stopping.
  for (const run of acked) await deps.handOver.handOver(run, handler);
  return { ok: true, isFullBatch: runs.length >= deps.settings.runsBatchSize };
}

/** One poll: claims each kind of run in turn; the errors of those that failed. */
async function pollOnce(deps: PollingLoopDeps, handler: MessageHandler): Promise<PollOutcome> {
  const errors: string[] = [];
  let isFullBatch = false;
  for (const api of CLAIM_APIS) {
    if (deps.isStopping()) break;
    let polled;
    try {
      polled = await pollKind(deps, api, handler);
    } catch (error) {
      polled = { ok: false as const, error: describeError(error) };
    }
    if (polled.ok) isFullBatch ||= polled.isFullBatch;
    else errors.push(polled.error);
  }
  return { errors, isFullBatch };
}

/** The pause after a poll that did not give up: none, the interval, or the backoff. */
async function pauseAfter(deps: PollingLoopDeps, after: Exclude<AfterPoll, { next: 'give-up' }>, errors: string[], backoff: Backoff): Promise<void> {
  const { activity, logger } = deps;
  if (after.next !== 'back-off') {
    if (after.hasRecovered) logger.info('polling recovered');
    backoff.reset();
    activity.state = 'consuming';
    if (after.next === 'wait-interval') await deps.sleep(deps.settings.intervalSeconds * 1000, deps.signal);
    return;
  }
  activity.state = 'reconnecting';
  const waitMs = backoff.failed();
  logger.warn({ err: errors.join('; '), retryInMs: Math.round(waitMs), failingForSeconds: inSeconds(after.failingForMs) }, 'polling failed; backing off');
  activity.attempted();
  await deps.sleep(waitMs, deps.signal);
}

/** Polls until stopped; resolves true when it gave up after too long a failure. */
export async function runPollingLoop(deps: PollingLoopDeps, handler: MessageHandler): Promise<boolean> {
  const { settings } = deps;
  const backoff = createBackoff(pollingBackoff(settings), deps.random);
  let failingSinceMs: number | undefined;
  while (!deps.isStopping()) {
    const outcome = await pollOnce(deps, handler);
    if (deps.isStopping()) break;
    const after = afterPoll(outcome, { failingSinceMs, isBackingOff: backoff.isBackingOff }, deps.now(), settings.maxFailureDurationSeconds * 1000);
    failingSinceMs = after.failingSinceMs;
    if (after.next === 'give-up') {
      deps.logger.error(
        { failingForSeconds: inSeconds(after.failingForMs), maxFailureDurationSeconds: settings.maxFailureDurationSeconds, err: outcome.errors.join('; ') },
        'polling kept failing for POLLING_MAX_FAILURE_DURATION_SECONDS; giving up',
      );
      deps.activity.state = 'stopped';
      return true;
    }
    await pauseAfter(deps, after, outcome.errors, backoff);
  }
  return false;
}
