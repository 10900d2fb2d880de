/**
 * The messages a source holds (issue 5), Kafka's and polling's alike: at most `maxInHand` handed to
 * the handler and not yet delivered, the delivered ones each holding a place among the runs awaiting
 * reports until Port has heard of them, and on stop a wait for all of them, bounded by the grace
 * period (SPEC §9). The source waits for a place before taking the next message, so fetching (or
 * claiming) pauses when either limit is reached, and memory stays bounded either way.
 */
import { createSemaphore } from '../concurrency/semaphore.js';
import type { Semaphore } from '../concurrency/semaphore.js';
import { settlesWithin } from '../concurrency/settles-within.js';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { HandleOutcome, Handled } from '../shared/source-message.js';

export interface InHandTrackerDeps {
  /** Messages handled at once until delivered. */
  maxInHand: number;
  /** Delivered runs waiting for Port to accept their reports; shared by the whole agent. */
  awaitingReports: Semaphore;
  shutdownGraceMs: number;
  logger: Logger;
}

/** One message's place in hand, from `acquire()` until its tracked work settles. */
export interface InHandPlace {
  /**
   * Trades the in-hand place for one among the runs awaiting reports and waits for Port to hear
   * of the run; resolves with the outcome. The place is given back at once when nothing was reported.
   */
  awaitReports(handled: Handled): Promise<HandleOutcome>;
  /** Gives the place back unused (the source stopped taking messages meanwhile). */
  release(): void;
  /** Holds the message in hand until `work` settles; `work` handles its own failures. */
  track(work: Promise<void>): void;
}

export interface InHandTracker {
  /** Waits for room to take one more message. */
  acquire(): Promise<InHandPlace>;
  /** Waits for every message in hand, including those taken while waiting. */
  drain(): Promise<void>;
  /**
   * Stop: waits for `finishing` (a drain and what follows it) for the grace period at most; when it
   * does not settle in time, logs `lateMessage` with the messages still in hand and resolves false.
   */
  finishWithinGrace(finishing: Promise<unknown>, lateMessage: string): Promise<boolean>;
  /** Messages handed over and not finished, for status(). */
  readonly count: number;
}

/**
 * Where a handled message waits for Port to hear of its run. It gives its in-hand place back (so
 * the next messages can be delivered) only once it holds a place among the runs awaiting reports,
 * and keeps that until Port has its reports.
 */
export async function awaitReports(handled: Handled, awaitingReports: Semaphore, releaseInHand: () => void): Promise<HandleOutcome> {
  // Nothing to wait for: no place among the runs awaiting reports, which may all be taken.
  if (handled.reported === undefined) {
    releaseInHand();
    return handled.outcome;
  }
  const releaseAwaiting = await awaitingReports.acquire();
  releaseInHand();
  try {
    await handled.reported;
  } finally {
    releaseAwaiting();
  }
  return handled.outcome;
}

export function createInHandTracker(deps: InHandTrackerDeps): InHandTracker {
  const inHand = createSemaphore(deps.maxInHand);
  const inFlight = new Set<Promise<void>>();

  async function drain(): Promise<void> {
    while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
  }

  return {
    async acquire() {
      // The semaphore's release is idempotent: given back early by awaitReports, again when the work settles.
      const release = await inHand.acquire();
      return {
        awaitReports: (handled) => awaitReports(handled, deps.awaitingReports, release),
        release,
        track(work) {
          const task: Promise<void> = work
            // A defect, since `work` handles its own failures: logged rather than an unhandled rejection ending the process.
            .catch((error: unknown) => deps.logger.error({ err: describeError(error) }, 'a message in hand failed unexpectedly'))
            .finally(() => {
              release();
              inFlight.delete(task);
            });
          inFlight.add(task);
        },
      };
    },
    drain,
    async finishWithinGrace(finishing, lateMessage) {
      const isInTime = await settlesWithin(finishing, deps.shutdownGraceMs);
      if (!isInTime) deps.logger.warn({ graceMs: deps.shutdownGraceMs, inFlight: inFlight.size }, lateMessage);
      return isInTime;
    },
    get count() {
      return inFlight.size;
    },
  };
}
