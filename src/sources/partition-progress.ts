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
}

export function createPartitionProgress(): PartitionProgress {
  const offsets: bigint[] = [];
  const done = new Set<bigint>();
  /** Index of the first unfinished offset in `offsets`. */
  let firstUnfinished = 0;

  function advance(): void {
    while (firstUnfinished < offsets.length && done.has(offsets[firstUnfinished] as bigint)) firstUnfinished += 1;
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
      if (firstUnfinished === 0) return undefined;
      const next = firstUnfinished < offsets.length ? (offsets[firstUnfinished] as bigint) : (offsets[firstUnfinished - 1] as bigint) + 1n;
      return next.toString();
    },
    lastContiguous() {
      return firstUnfinished === 0 ? undefined : (offsets[firstUnfinished - 1] as bigint).toString();
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
