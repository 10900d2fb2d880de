/**
 * The Kafka source (SPEC §2): one consumer group on the runs and change-log topics, offsets
 * committed only after a message is handled, a consumer that kafkajs gives up on is rebuilt, and a
 * member without partitions waits as a standby.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Consumer, Kafka } from 'kafkajs';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { TopicRole } from '../message/invocation.js';
import type { MessageHandler, Source } from './types.js';

export interface KafkaSourceDeps {
  kafka: Kafka;
  groupId: string;
  runsTopic: string;
  changeLogTopic: string;
  sessionTimeoutMs: number;
  fetchMaxWaitMs: number;
  /** KAFKA_CONSUMER_AUTO_OFFSET_RESET=earliest: a group without offsets starts at the beginning. */
  fromBeginning: boolean;
  shutdownGraceMs: number;
  logger: Logger;
}

/** Partitions handled at once; each partition still handles its messages in order. */
const PARTITIONS_CONSUMED_CONCURRENTLY = 16;
const RESTART_INITIAL_BACKOFF_MS = 1_000;
const RESTART_MAX_BACKOFF_MS = 30_000;

function nextOffset(offset: string): string {
  return (BigInt(offset) + 1n).toString();
}

function assignedPartitions(assignment: Record<string, number[]>): number {
  return Object.values(assignment).reduce((total, partitions) => total + partitions.length, 0);
}

export function createKafkaSource(deps: KafkaSourceDeps): Source {
  const logger = deps.logger;
  const roleOf = (topic: string): TopicRole => (topic === deps.changeLogTopic ? 'changelog' : 'runs');
  let consumer: Consumer | undefined;
  let handler: MessageHandler | undefined;
  let isStopping = false;
  let restarting: Promise<void> | undefined;
  /** Grows with each failed start or rebuild, back to the start once the group is joined. */
  let backoffMs = RESTART_INITIAL_BACKOFF_MS;
  const heartbeatIntervalMs = Math.max(500, Math.floor(deps.sessionTimeoutMs / 10));

  async function backOff(): Promise<void> {
    const waitMs = backoffMs;
    backoffMs = Math.min(backoffMs * 2, RESTART_MAX_BACKOFF_MS);
    await delay(waitMs);
  }

  function createConsumer(): Consumer {
    const created = deps.kafka.consumer({
      groupId: deps.groupId,
      sessionTimeout: deps.sessionTimeoutMs,
      heartbeatInterval: heartbeatIntervalMs,
      maxWaitTimeInMs: deps.fetchMaxWaitMs,
    });
    created.on(created.events.GROUP_JOIN, (event) => {
      backoffMs = RESTART_INITIAL_BACKOFF_MS;
      const partitions = assignedPartitions(event.payload.memberAssignment);
      if (partitions === 0) {
        // SPEC §2, deliberate difference: another replica holds the partitions; wait for a rebalance.
        logger.info({ groupId: deps.groupId, memberId: event.payload.memberId }, 'joined the consumer group as a standby (no partitions assigned)');
      } else {
        logger.info({ groupId: deps.groupId, memberId: event.payload.memberId, assignment: event.payload.memberAssignment }, 'joined the consumer group');
      }
    });
    created.on(created.events.CRASH, (event) => {
      const { error, restart } = event.payload;
      if (restart) {
        logger.warn({ err: describeError(error) }, 'Kafka consumer crashed; kafkajs restarts it');
        return;
      }
      if (isStopping || created !== consumer) return;
      logger.error({ err: describeError(error) }, 'Kafka consumer crashed and kafkajs will not restart it; rebuilding the consumer');
      // kafkajs reports a failed first join from inside run(), possibly while a rebuild is still
      // starting this very consumer: queue another rebuild rather than dropping the crash.
      const rebuilt: Promise<void> = (restarting ?? Promise.resolve()).then(rebuild).finally(() => {
        if (restarting === rebuilt) restarting = undefined;
      });
      restarting = rebuilt;
    });
    return created;
  }

  async function run(current: Consumer, onMessage: MessageHandler): Promise<void> {
    await current.connect();
    await current.subscribe({ topics: [deps.runsTopic, deps.changeLogTopic], fromBeginning: deps.fromBeginning });
    await current.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: PARTITIONS_CONSUMED_CONCURRENTLY,
      // eachBatch rather than eachMessage: its commit reaches the group coordinator while the
      // consumer is stopping, so the runs finished during a shutdown are committed too (the
      // consumer's own commitOffsets is a no-op once stop() has begun).
      eachBatch: async ({ batch, resolveOffset, commitOffsetsIfNecessary, heartbeat, isRunning, isStale }) => {
        const { topic, partition } = batch;
        for (const message of batch.messages) {
          if (!isRunning() || isStale()) break;
          // kafkajs heartbeats only between messages; a run slower than the session timeout (a long
          // WEBHOOK_INVOKER_TIMEOUT, a slow Port) would otherwise cost this member its partitions.
          const heartbeating = setInterval(() => {
            heartbeat().catch(() => undefined);
          }, heartbeatIntervalMs);
          try {
            await onMessage({ topic, partition, offset: message.offset, role: roleOf(topic), value: message.value });
          } finally {
            clearInterval(heartbeating);
          }
          resolveOffset(message.offset);
          try {
            // SPEC §2: commit only after the message is handled, so a crash means redelivery, not loss.
            await commitOffsetsIfNecessary({ topics: [{ topic, partitions: [{ partition, offset: nextOffset(message.offset) }] }] });
          } catch (error) {
            // Typically the group expired this member (a broker or process pause). Let kafkajs crash
            // the consumer: a fresh member resumes from the last committed offset, so this message
            // is delivered again rather than lost.
            logger.warn({ topic, partition, offset: message.offset, err: describeError(error) }, 'offset commit failed; the message will be delivered again');
            throw error;
          }
          // A rebalance surfaces here as an error: kafkajs then rejoins before fetching more.
          await heartbeat();
        }
      },
    });
  }

  /** Connects and runs a fresh consumer, retrying with backoff until it works or the agent stops. */
  async function startWithRetry(): Promise<void> {
    while (!isStopping && handler) {
      const current = createConsumer();
      consumer = current;
      try {
        await run(current, handler);
        logger.info({ groupId: deps.groupId, topics: [deps.runsTopic, deps.changeLogTopic] }, 'consuming');
        return;
      } catch (error) {
        logger.error({ err: describeError(error), retryInMs: backoffMs }, 'could not start the Kafka consumer; retrying');
        await current.disconnect().catch(() => undefined);
        await backOff();
      }
    }
  }

  async function rebuild(): Promise<void> {
    const previous = consumer;
    consumer = undefined;
    await previous?.disconnect().catch((error: unknown) => logger.warn({ err: describeError(error) }, 'disconnecting the crashed consumer failed'));
    // A consumer that keeps failing (an ACL that refuses the group, say) is retried ever more slowly.
    await backOff();
    await startWithRetry();
  }

  return {
    async start(onMessage) {
      handler = onMessage;
      await startWithRetry();
    },
    async stop() {
      isStopping = true;
      const current = consumer;
      if (!current) return;
      // disconnect() waits for the messages in hand to finish (and commit) before leaving the group.
      const finished = current.disconnect().then(
        () => true,
        (error: unknown) => {
          logger.warn({ err: describeError(error) }, 'Kafka consumer did not disconnect cleanly');
          return true;
        },
      );
      const inTime = await Promise.race([finished, delay(deps.shutdownGraceMs).then(() => false)]);
      if (!inTime) logger.warn({ graceMs: deps.shutdownGraceMs }, 'in-flight messages did not finish within the grace period; they will be delivered again');
    },
  };
}
