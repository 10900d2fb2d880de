/**
 * The partitions a Kafka consumer holds, for the group generation they were assigned in: after a
 * rejoin fresh ones start (the broker redelivers from the last commit), and the old ones stop
 * committing, so a late finisher never moves a commit backwards.
 */
import type { EachBatchPayload } from 'kafkajs';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { PartitionLag } from '../shared/source-status.js';
import { createOffsetCommitter, createPartitionProgress } from './partition-progress.js';

/** One partition of the current generation, across its batches. */
export interface HeldPartition {
  /** A message was handed to the handler, in offset order. */
  dispatched(offset: string): void;
  /** A message finished: the commit moves up to the lowest unfinished one. */
  finished(offset: string): void;
  /**
   * Runs `handle` after the previous message of the same key has finished (change-log events of
   * one key stay in order, README); without a key (runs are independent) at once.
   */
  inKeyOrder(key: string | undefined, handle: () => Promise<void>): Promise<void>;
  /** The partition's high watermark at the last fetch, for the lag. */
  highWatermark: bigint | undefined;
}

export interface HeldPartitions {
  /** The partition in the current generation, started at its first batch; `commit` is kafkajs' for that batch. */
  get(topic: string, partition: number, commit: EachBatchPayload['commitOffsetsIfNecessary']): HeldPartition;
  /** The partitions were given up (a rejoin, a rebuild): what finishes later commits nothing. */
  retire(): void;
  /** Waits for the requested commits of the current partitions; a failed one was logged already. */
  flushCommits(): Promise<void>;
  /** Per partition: messages past the next offset to commit. */
  lag(): PartitionLag[];
  /** The next offset to commit of a partition held in the current generation, once it had a batch. */
  nextToCommit(topic: string, partition: number): string | undefined;
}

interface PartitionEntry {
  topic: string;
  partition: number;
  held: HeldPartition;
  flush(): Promise<void>;
  nextToCommit(): string | undefined;
  retire(): void;
}

function createEntry(topic: string, partition: number, commit: EachBatchPayload['commitOffsetsIfNecessary'], logger: Logger): PartitionEntry {
  const progress = createPartitionProgress();
  const byKey = new Map<string, Promise<void>>();
  let isRetired = false;
  // SPEC §2: commit only up to the lowest unfinished message, so a crash means redelivery.
  const committer = createOffsetCommitter(
    async (offset) => {
      if (isRetired) return;
      await commit({ topics: [{ topic, partitions: [{ partition, offset }] }] });
    },
    (error) => logger.warn({ topic, partition, err: describeError(error) }, 'offset commit failed; uncommitted messages will be delivered again'),
  );
  const held: HeldPartition = {
    dispatched: (offset) => progress.dispatched(offset),
    finished(offset) {
      progress.finished(offset);
      const committable = progress.committable();
      if (committable !== undefined) committer.request(committable);
    },
    inKeyOrder(key, handle) {
      if (key === undefined) return handle();
      const handled = (byKey.get(key) ?? Promise.resolve()).then(handle);
      byKey.set(key, handled.catch(() => undefined));
      return handled;
    },
    highWatermark: undefined,
  };
  return {
    topic,
    partition,
    held,
    flush: () => committer.flush(),
    nextToCommit: () => progress.nextToCommit(),
    retire() {
      isRetired = true;
    },
  };
}

export function createHeldPartitions(deps: { logger: Logger }): HeldPartitions {
  let entries = new Map<string, PartitionEntry>();
  return {
    get(topic, partition, commit) {
      const id = `${topic}:${partition}`;
      let entry = entries.get(id);
      if (!entry) {
        entry = createEntry(topic, partition, commit, deps.logger);
        entries.set(id, entry);
      }
      return entry.held;
    },
    retire() {
      for (const entry of entries.values()) entry.retire();
      entries = new Map();
    },
    async flushCommits() {
      await Promise.allSettled([...entries.values()].map((entry) => entry.flush()));
    },
    nextToCommit: (topic, partition) => entries.get(`${topic}:${partition}`)?.nextToCommit(),
    lag() {
      const lag: PartitionLag[] = [];
      for (const { topic, partition, held, nextToCommit } of entries.values()) {
        const next = nextToCommit();
        if (held.highWatermark === undefined || next === undefined) continue;
        const behind = held.highWatermark - BigInt(next);
        lag.push({ topic, partition, lag: Number(behind > 0n ? behind : 0n) });
      }
      return lag;
    },
  };
}
