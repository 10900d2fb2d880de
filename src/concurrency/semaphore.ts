/**
 * At most `limit` holders at once; the others wait in order. Used for the agent's in-flight limit
 * and each target host's limit.
 */
export interface Semaphore {
  /** Resolves with the function that gives the slot back (call it exactly once). */
  acquire(): Promise<() => void>;
  /** Holders now. */
  readonly active: number;
  /** Waiting to acquire now. */
  readonly waiting: number;
}

export function createSemaphore(limit: number): Semaphore {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`Expected the limit to be a whole number of 1 or more (got ${limit})`);
  let active = 0;
  const queue: (() => void)[] = [];

  function release(): void {
    const next = queue.shift();
    // The slot passes straight to the next waiter, so `active` stays as it is.
    if (next) next();
    else active -= 1;
  }

  function slot(): () => void {
    let isReleased = false;
    return () => {
      if (isReleased) return;
      isReleased = true;
      release();
    };
  }

  return {
    acquire() {
      if (active < limit) {
        active += 1;
        return Promise.resolve(slot());
      }
      return new Promise((resolve) => queue.push(() => resolve(slot())));
    },
    get active() {
      return active;
    },
    get waiting() {
      return queue.length;
    },
  };
}
