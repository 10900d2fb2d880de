/**
 * Handing the runs the polling source claimed and acked to the handler (SPEC §8), as the Kafka
 * source hands over its messages: each waits for a place in hand, is built into an unsigned
 * runs-topic message and handled without the loop waiting for it; a run that cannot be built, or
 * whose handling failed unexpectedly, is reported failed to Port, as the reference does.
 */
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Reporter, RunRef } from '../reporting/reporter.js';
import type { MessageHandler } from '../shared/source-message.js';
import type { InHandPlace, InHandTracker } from './in-hand.js';
import type { ClaimApi } from './polling-claims.js';
import { buildRunMessage, claimedRunCreatedAtMs } from './polling-message.js';

/** SPEC §8: the summary of a run the agent failed to process, as the reference words it. */
export const PROCESSING_FAILED_SUMMARY = 'Agent failed to process the run';

export interface HandOverDeps {
  inHand: InHandTracker;
  /** Reports a run whose processing failed outside the handler's own reports (SPEC §8). */
  reporter: Pick<Reporter, 'open'>;
  logger: Logger;
}

/** One acked run, of the kind `api` claims. */
export interface AckedRun {
  api: ClaimApi;
  runId: string;
  run: unknown;
}

export interface HandOver {
  /** Waits for a place in hand, then hands the run to `handler` without waiting for it to finish. */
  handOver(acked: AckedRun, handler: MessageHandler): Promise<void>;
  /** Waiting for a place for a run: busy with the runs in hand, not stuck. */
  readonly isWaitingForRoom: boolean;
}

async function reportProcessingFailure(reporter: HandOverDeps['reporter'], { api, runId }: AckedRun, runLogger: Logger): Promise<void> {
  const run: RunRef = { kind: api.kind, runId, synchronized: false };
  const reports = reporter.open(run, runLogger);
  reports.failed(PROCESSING_FAILED_SUMMARY);
  await reports.settled();
}

/** Builds the message and runs the handler; a run that cannot be processed is reported failed. */
async function processRun(acked: AckedRun, offset: string, handler: MessageHandler, place: InHandPlace, deps: HandOverDeps): Promise<void> {
  const { api, runId, run } = acked;
  const runLogger = deps.logger.child({ runId, topic: api.topic, offset });
  try {
    const built = buildRunMessage(api.kind, run, runId);
    if (!built.ok) {
      runLogger.error({ reason: built.reason }, 'run failed: the claimed run cannot be processed');
      await reportProcessingFailure(deps.reporter, acked, runLogger);
      return;
    }
    // The handler reports its own failures (a service error, a mapping error…); only a crash is left.
    const handled = await handler({ topic: api.topic, partition: 0, offset, role: 'runs', origin: 'claimed', value: Buffer.from(JSON.stringify(built.message)), traceparent: undefined, producedAtMs: claimedRunCreatedAtMs(run) });
    await place.awaitReports(handled);
  } catch (error) {
    runLogger.error({ err: describeError(error), stack: error instanceof Error ? error.stack : undefined }, 'run failed: processing it failed unexpectedly');
    await reportProcessingFailure(deps.reporter, acked, runLogger);
  }
}

export function createHandOver(deps: HandOverDeps): HandOver {
  let isWaitingForRoom = false;
  /** The offset of the runs' messages: their order of arrival. */
  let sequence = 0;
  return {
    async handOver(acked, handler) {
      isWaitingForRoom = true;
      const place = await deps.inHand.acquire().finally(() => {
        isWaitingForRoom = false;
      });
      sequence += 1;
      place.track(processRun(acked, String(sequence), handler, place, deps));
    },
    get isWaitingForRoom() {
      return isWaitingForRoom;
    },
  };
}
