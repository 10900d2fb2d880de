/**
 * Where a handled message waits for Port to hear of its run. It gives its in-hand place back (so
 * the next messages can be delivered) only once it holds a place among the runs awaiting reports,
 * and keeps that until Port has its reports: fetching pauses both when too many messages wait to
 * be delivered and when too many runs wait for Port, so memory stays bounded either way.
 */
import type { Semaphore } from '../concurrency/semaphore.js';
import type { HandleOutcome, Handled } from '../shared/source-message.js';

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
