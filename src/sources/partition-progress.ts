/**
 * Which offset of a partition may be committed while its messages finish in any order (issue 5):
 * never past a message that is not finished, so a crash means redelivery, never loss.
 */
export interface PartitionProgress {
  /** A message was handed out, in offset order. */
  dispatched(offset: string): void;
  finished(offset: string): void;
  /** The offset to commit: the lowest unfinished one, or one past the last when all are done. */
  committable(): string | undefined;
  /** The last offset of the finished run without gaps from the start, if any. */
  lastContiguous(): string | undefined;
  /** Where a restart would resume: the lowest unfinished offset, else one past the last; undefined before any. */
  nextToCommit(): string | undefined;
}

/** Finished offsets are dropped from the front once this many pile up, so a long-lived partition stays small. */
const TRIM_AFTER_FINISHED = 1024;

export function createPartitionProgress(): PartitionProgress {
  /** Dispatched offsets in order, from the first unfinished one (and a few finished before it). */
  let offsets: bigint[] = [];
  /** Finished offsets not yet passed by `head`: only those that finished out of order. */
  const done = new Set<bigint>();
  /** Index in `offsets` of the first unfinished offset. */
  let head = 0;
  /** The last offset of the finished run without gaps from the start. */
  let lastDone: bigint | undefined;

  function advance(): void {
    while (head < offsets.length && done.has(offsets[head] as bigint)) {
      lastDone = offsets[head] as bigint;
      done.delete(lastDone);
      head += 1;
    }
    if (head >= TRIM_AFTER_FINISHED && head * 2 >= offsets.length) {
      offsets = offsets.slice(head);
      head = 0;
    }
  }

  function next(): bigint | undefined {
    if (head < offsets.length) return offsets[head];
    return lastDone === undefined ? undefined : lastDone + 1n;
  }

  return {
    dispatched(offset) {
      offsets.push(BigInt(offset));
    },
    finished(offset) {
      done.add(BigInt(offset));
      advance();
    },
    committable() {
      return lastDone === undefined ? undefined : next()?.toString();
    },
    nextToCommit() {
      return next()?.toString();
    },
    lastContiguous() {
      return lastDone?.toString();
    },
  };
}

/**
 * Commits the latest requested offset, one commit at a time: requests made while a commit is in
 * flight collapse into the next one, so a burst of finished runs costs a few commits, not one each.
 */
export interface OffsetCommitter {
  request(offset: string): void;
  /** Resolves when every requested offset is committed; rejects with the first commit error. */
  flush(): Promise<void>;
}

export function createOffsetCommitter(commit: (offset: string) => Promise<void>, onFailure: (error: unknown) => void = () => undefined): OffsetCommitter {
  let requested: bigint | undefined;
  let committed: bigint | undefined;
  let running: Promise<void> | undefined;
  let failure: unknown;

  async function loop(): Promise<void> {
    while (requested !== undefined && (committed === undefined || requested > committed) && failure === undefined) {
      const target = requested;
      try {
        await commit(target.toString());
        committed = target;
      } catch (error) {
        // Later requests are dropped: after a failed commit (the member expired, the partition
        // moved), the partition's next owner resumes from the last good commit.
        failure = error;
        onFailure(error);
      }
    }
  }

  return {
    request(offset) {
      const value = BigInt(offset);
      if (requested === undefined || value > requested) requested = value;
      running ??= loop().finally(() => {
        running = undefined;
      });
    },
    async flush() {
      while (running) await running;
      if (failure !== undefined) throw failure;
    },
  };
}
