/**
 * One fetched batch of the Kafka source (after kafkajs' `src/consumer/runner.js`): its messages are
 * handed to the handler in offset order without waiting for them, so the partition's next batch is
 * fetched while they are in flight and one slow run never delays the ones behind it. Partitions run
 * concurrently (kafkajs' `partitionsConsumedConcurrently`); a message waits for a place in hand;
 * commits follow completions (`kafka-partitions.ts`); a rebalance first drains what is in hand.
 */
import type { EachBatchPayload, KafkaMessage } from 'kafkajs';
import { settlesWithin } from '../concurrency/settles-within.js';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { MessageHandler, TopicRole } from '../shared/source-message.js';
import type { PartitionLag } from '../shared/source-status.js';
import type { InHandPlace, InHandTracker } from './in-hand.js';
import { createHeldPartitions } from './kafka-partitions.js';
import type { HeldPartition } from './kafka-partitions.js';

export interface BatchRunnerDeps {
  changeLogTopic: string;
  /** How often a batch waiting for room heartbeats in kafkajs' stead. */
  heartbeatIntervalMs: number;
  inHand: InHandTracker;
  /** Whether the source is stopping: then no more messages are taken. */
  isStopping: () => boolean;
  logger: Logger;
}

export interface BatchRunner {
  /** kafkajs' `eachBatch`; `onDefect` when the handler rejected (it must not): start over from the last commit. */
  run(payload: EachBatchPayload, onMessage: MessageHandler, onDefect: () => void): Promise<void>;
  /** The partitions were given up: what finishes later commits nothing. */
  retirePartitions(): void;
  /** Waits for every message in hand and for their commits, e.g. before giving partitions up. */
  drain(): Promise<void>;
  lag(): PartitionLag[];
  /** The next offset to commit of a partition held now, once it had a batch. */
  nextToCommit(topic: string, partition: number): string | undefined;
}

/** What every message of one batch shares. */
interface BatchContext {
  topic: string;
  partition: number;
  role: TopicRole;
  held: HeldPartition;
  onMessage: MessageHandler;
  onDefect: () => void;
}

/** Under kafkajs' default rebalance timeout (60 s), within which every member must rejoin. */
const REBALANCE_DRAIN_MAX_MS = 30_000;

function isRebalancingError(error: unknown): boolean {
  const type = (error as { type?: string } | undefined)?.type;
  return type === 'REBALANCE_IN_PROGRESS' || type === 'NOT_COORDINATOR_FOR_GROUP' || type === 'ILLEGAL_GENERATION';
}

/** A `traceparent` record header, as Buffer or string (the first one when repeated). */
function traceparentHeader(headers: KafkaMessage['headers']): string | undefined {
  const value = headers?.traceparent;
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined ? undefined : first.toString();
}

/** A record's timestamp (ms since the epoch, as kafkajs gives it: a string); -1 or garbage: unknown. */
function recordTimestampMs(timestamp: string): number | undefined {
  const ms = Number(timestamp);
  return Number.isFinite(ms) && ms > 0 ? ms : undefined;
}

/** While a batch waits for room, kafkajs sends no heartbeat of its own: send them, and notice a rebalance. */
function keepHeartbeating(heartbeat: () => Promise<void>, intervalMs: number): { readonly isRebalancing: boolean; stop(): void } {
  let isRebalancing = false;
  const timer = setInterval(() => {
    heartbeat().catch((error: unknown) => {
      if (isRebalancingError(error)) isRebalancing = true;
    });
  }, intervalMs);
  return {
    get isRebalancing() {
      return isRebalancing;
    },
    stop: () => clearInterval(timer),
  };
}

export function createBatchRunner(deps: BatchRunnerDeps): BatchRunner {
  const { logger, inHand } = deps;
  const partitions = createHeldPartitions({ logger });
  const roleOf = (topic: string): TopicRole => (topic === deps.changeLogTopic ? 'changelog' : 'runs');

  async function drain(): Promise<void> {
    await inHand.drain();
    // A failed commit was logged when it failed; the next owner resumes from the last good one.
    await partitions.flushCommits();
  }

  /** Hands one message to the handler and holds it in hand until it finished (or failed). */
  function dispatch(message: KafkaMessage, place: InHandPlace, batch: BatchContext): void {
    const { topic, partition, role, held, onMessage, onDefect } = batch;
    const { offset } = message;
    held.dispatched(offset);
    const handle = () =>
      onMessage({ topic, partition, offset, role, origin: 'kafka', value: message.value, traceparent: traceparentHeader(message.headers), producedAtMs: recordTimestampMs(message.timestamp) })
        .then((handled) => place.awaitReports(handled))
        .then(() => undefined);
    const key = role === 'changelog' && message.key ? message.key.toString('base64') : undefined;
    const work = held.inKeyOrder(key, handle).then(
      () => held.finished(offset),
      (error: unknown) => {
        // A defect: this offset is never committed, so the message comes back after a restart.
        logger.error({ topic, partition, offset, err: describeError(error) }, 'message handling failed; rebuilding the consumer');
        onDefect();
      },
    );
    place.track(work);
  }

  /**
   * A rebalance: finish and commit what is in hand before kafkajs rejoins, so a clean rebalance
   * delivers nothing twice — but not for longer than the group waits for a member to rejoin: runs
   * whose reports wait for Port (an outage, a short budget) are delivered again by the next owner
   * rather than losing this member its place in the group.
   */
  async function drainBeforeRejoining(): Promise<void> {
    if (await settlesWithin(drain(), REBALANCE_DRAIN_MAX_MS)) return;
    logger.warn({ inFlight: inHand.count, waitedMs: REBALANCE_DRAIN_MAX_MS }, 'rejoining the consumer group before the runs in hand finished; uncommitted runs will be delivered again');
  }

  async function run(payload: EachBatchPayload, onMessage: MessageHandler, onDefect: () => void): Promise<void> {
    const { batch, resolveOffset, commitOffsetsIfNecessary, heartbeat, isRunning, isStale } = payload;
    const { topic, partition } = batch;
    const held = partitions.get(topic, partition, commitOffsetsIfNecessary);
    held.highWatermark = BigInt(batch.highWatermark);
    const context: BatchContext = { topic, partition, role: roleOf(topic), held, onMessage, onDefect };
    const heartbeats = keepHeartbeating(heartbeat, deps.heartbeatIntervalMs);
    const mayTakeMore = () => isRunning() && !isStale() && !heartbeats.isRebalancing && !deps.isStopping();
    try {
      for (const message of batch.messages) {
        if (!mayTakeMore()) break;
        // Fetching pauses here while the agent holds as many messages as it may.
        const place = await inHand.acquire();
        if (!mayTakeMore()) {
          place.release();
          break;
        }
        dispatch(message, place, context);
        // The next fetch of this partition starts after this offset; the commit follows completions.
        resolveOffset(message.offset);
      }
    } finally {
      heartbeats.stop();
    }
    try {
      await heartbeat();
    } catch (error) {
      if (isRebalancingError(error) || heartbeats.isRebalancing) await drainBeforeRejoining();
      throw error;
    }
    if (heartbeats.isRebalancing) await drainBeforeRejoining();
  }

  return { run, retirePartitions: () => partitions.retire(), drain, lag: () => partitions.lag(), nextToCommit: (topic, partition) => partitions.nextToCommit(topic, partition) };
}
