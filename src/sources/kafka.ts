/**
 * The Kafka source (SPEC §2): one consumer group on the runs and change-log topics, offsets
 * committed only after a message is handled, a consumer that kafkajs gives up on is rebuilt, a
 * member without partitions waits as a standby, and credentials the brokers refuse are fetched
 * again (through the connector) before the consumer is rebuilt.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Consumer, EachBatchPayload } from 'kafkajs';
import { createSemaphore } from '../concurrency/semaphore.js';
import type { Semaphore } from '../concurrency/semaphore.js';
import { awaitReports } from './awaiting-reports.js';
import { settlesWithin } from '../concurrency/settles-within.js';
import { createOffsetCommitter, createPartitionProgress } from './partition-progress.js';
import type { OffsetCommitter, PartitionProgress } from './partition-progress.js';
import { isAuthenticationFailure } from './kafka-connector.js';
import type { KafkaConnector } from './kafka-connector.js';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { MessageHandler, TopicRole } from '../shared/source-message.js';
import type { PartitionLag, SourceStatus } from '../shared/source-status.js';
import type { Source } from './types.js';

export interface KafkaSourceDeps {
  /** Gives the kafkajs client for the current credentials; renewed when the brokers refuse them. */
  connector: KafkaConnector;
  groupId: string;
  runsTopic: string;
  changeLogTopic: string;
  sessionTimeoutMs: number;
  fetchMaxWaitMs: number;
  /** KAFKA_CONSUMER_AUTO_OFFSET_RESET=earliest: a group without offsets starts at the beginning. */
  fromBeginning: boolean;
  shutdownGraceMs: number;
  /** Messages handled at once across partitions, until delivered; fetching pauses at the limit. */
  maxInHand: number;
  /** Delivered runs waiting for Port to accept their reports; fetching pauses at the limit too. */
  awaitingReports: Semaphore;
  logger: Logger;
}

/** Partitions handled at once; each partition still handles its messages in order. */
const PARTITIONS_CONSUMED_CONCURRENTLY = 16;
const RESTART_INITIAL_BACKOFF_MS = 1_000;
const RESTART_MAX_BACKOFF_MS = 30_000;
/** Under kafkajs' default rebalance timeout (60 s), within which every member must rejoin. */
const REBALANCE_DRAIN_MAX_MS = 30_000;

function isRebalancingError(error: unknown): boolean {
  const type = (error as { type?: string } | undefined)?.type;
  return type === 'REBALANCE_IN_PROGRESS' || type === 'NOT_COORDINATOR_FOR_GROUP' || type === 'ILLEGAL_GENERATION';
}

function assignedPartitions(assignment: Record<string, number[]>): number {
  return Object.values(assignment).reduce((total, partitions) => total + partitions.length, 0);
}

/** A `traceparent` record header, as Buffer or string (the first one when repeated). */
function traceparentHeader(headers: Record<string, Buffer | string | (Buffer | string)[] | undefined> | undefined): string | undefined {
  const value = headers?.traceparent;
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined ? undefined : first.toString();
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
  const inHand = createSemaphore(deps.maxInHand);
  let state: SourceStatus['state'] = 'starting';
  let lastBrokerAnswerAtMs = Date.now();
  let lastAttemptAtMs = Date.now();
  const brokerAnswered = () => {
    lastBrokerAnswerAtMs = Date.now();
    lastAttemptAtMs = lastBrokerAnswerAtMs;
  };
  const attempted = () => {
    lastAttemptAtMs = Date.now();
  };

  /**
   * kafkajs reports a failed first join from inside run(), possibly while a rebuild is still
   * starting this very consumer: queue another rebuild rather than dropping the crash.
   */
  function scheduleRebuild(): void {
    const rebuilt: Promise<void> = (restarting ?? Promise.resolve()).then(rebuild).finally(() => {
      if (restarting === rebuilt) restarting = undefined;
    });
    restarting = rebuilt;
  }

  /** The handler must never reject; if it does, start over from the last commit rather than skip. */
  function failWithDefect(generation: Consumer | undefined): void {
    if (isStopping || generation !== consumer) return;
    retirePartitions();
    scheduleRebuild();
  }

  async function backOff(): Promise<void> {
    attempted();
    const waitMs = backoffMs;
    backoffMs = Math.min(backoffMs * 2, RESTART_MAX_BACKOFF_MS);
    await delay(waitMs);
  }

  async function createConsumer(): Promise<Consumer> {
    const kafka = await deps.connector.client();
    const created = kafka.consumer({
      groupId: deps.groupId,
      sessionTimeout: deps.sessionTimeoutMs,
      heartbeatInterval: heartbeatIntervalMs,
      maxWaitTimeInMs: deps.fetchMaxWaitMs,
    });
    for (const answered of [created.events.HEARTBEAT, created.events.FETCH, created.events.COMMIT_OFFSETS]) created.on(answered, brokerAnswered);
    for (const tried of [created.events.REQUEST_TIMEOUT, created.events.CONNECT, created.events.REBALANCING]) created.on(tried, attempted);
    created.on(created.events.GROUP_JOIN, (event) => {
      brokerAnswered();
      backoffMs = RESTART_INITIAL_BACKOFF_MS;
      retirePartitions();
      const partitions = assignedPartitions(event.payload.memberAssignment);
      state = partitions === 0 ? 'standby' : 'consuming';
      if (partitions === 0) {
        // SPEC §2, deliberate difference: another replica holds the partitions; wait for a rebalance.
        logger.info({ groupId: deps.groupId, memberId: event.payload.memberId }, 'joined the consumer group as a standby (no partitions assigned)');
      } else {
        logger.info({ groupId: deps.groupId, memberId: event.payload.memberId, assignment: event.payload.memberAssignment }, 'joined the consumer group');
      }
    });
    created.on(created.events.CRASH, (event) => {
      attempted();
      if (!isStopping) state = 'reconnecting';
      const { error, restart } = event.payload;
      // kafkajs would restart with the refused credentials: rebuild with fetched ones instead.
      const isRefused = isAuthenticationFailure(error);
      if (restart && !isRefused) {
        logger.warn({ err: describeError(error) }, 'Kafka consumer crashed; kafkajs restarts it');
        return;
      }
      if (isStopping || created !== consumer) return;
      if (isRefused) {
        deps.connector.renew();
        logger.warn({ err: describeError(error) }, 'Kafka refused the credentials; fetching them again and rebuilding the consumer');
      } else {
        logger.error({ err: describeError(error) }, 'Kafka consumer crashed and kafkajs will not restart it; rebuilding the consumer');
      }
      scheduleRebuild();
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
      // eachBatch rather than eachMessage: many messages of a partition in flight at once, and its
      // commit reaches the group coordinator while the consumer is stopping, so the runs finished
      // during a shutdown are committed too (consumer.commitOffsets is a no-op once stop() began).
      eachBatch: (payload) => consumeBatch(payload, onMessage),
    });
  }

  /**
   * The progress of a partition across batches, for the group generation it was assigned in:
   * after a rejoin a fresh one starts (the broker redelivers from the last commit), and the old
   * one stops committing, so a late finisher never moves a commit backwards.
   */
  interface PartitionState {
    progress: PartitionProgress;
    committer: OffsetCommitter;
    /** Change-log events of one key stay in order (README); runs are independent. */
    byKey: Map<string, Promise<void>>;
    isRetired: boolean;
    /** The partition's high watermark at the last fetch, for the lag. */
    highWatermark: bigint | undefined;
  }
  let partitions = new Map<string, PartitionState>();
  const inFlight = new Set<Promise<void>>();

  function partitionState(topic: string, partition: number, commit: EachBatchPayload['commitOffsetsIfNecessary']): PartitionState {
    const id = `${topic}:${partition}`;
    let state = partitions.get(id);
    if (!state) {
      const created: PartitionState = {
        progress: createPartitionProgress(),
        // SPEC §2: commit only up to the lowest unfinished message, so a crash means redelivery.
        committer: createOffsetCommitter(
          async (offset) => {
            if (created.isRetired) return;
            await commit({ topics: [{ topic, partitions: [{ partition, offset }] }] });
          },
          (error) => logger.warn({ topic, partition, err: describeError(error) }, 'offset commit failed; uncommitted messages will be delivered again'),
        ),
        byKey: new Map(),
        isRetired: false,
        highWatermark: undefined,
      };
      state = created;
      partitions.set(id, state);
    }
    return state;
  }

  function retirePartitions(): void {
    for (const state of partitions.values()) state.isRetired = true;
    partitions = new Map();
  }

  /** Waits for every message in hand and for their commits, e.g. before giving partitions up. */
  async function drain(): Promise<void> {
    while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    // A failed commit was logged when it failed; the next owner resumes from the last good one.
    await Promise.allSettled([...partitions.values()].map((state) => state.committer.flush()));
  }

  /**
   * Hands the batch's messages to the handler without waiting for them: the partition's next
   * batch is fetched while they are in flight, so one slow run never delays the ones behind it.
   */
  async function consumeBatch(payload: EachBatchPayload, onMessage: MessageHandler): Promise<void> {
    const { batch, resolveOffset, commitOffsetsIfNecessary, heartbeat, isRunning, isStale } = payload;
    const { topic, partition } = batch;
    const role = roleOf(topic);
    const state = partitionState(topic, partition, commitOffsetsIfNecessary);
    state.highWatermark = BigInt(batch.highWatermark);
    const generation = consumer;
    // While this call waits for room, kafkajs sends no heartbeat of its own.
    let isRebalancing = false;
    const heartbeating = setInterval(() => {
      heartbeat().catch((error: unknown) => {
        if (isRebalancingError(error)) isRebalancing = true;
      });
    }, heartbeatIntervalMs);
    const mayTakeMore = () => isRunning() && !isStale() && !isRebalancing && !isStopping;
    try {
      for (const message of batch.messages) {
        if (!mayTakeMore()) break;
        // Fetching pauses here while the agent holds as many messages as it may.
        const release = await inHand.acquire();
        if (!mayTakeMore()) {
          release();
          break;
        }
        const { offset } = message;
        state.progress.dispatched(offset);
        const handle = () =>
          onMessage({ topic, partition, offset, role, origin: 'kafka', value: message.value, traceparent: traceparentHeader(message.headers) })
            .then((handled) => awaitReports(handled, deps.awaitingReports, release))
            .then(() => undefined);
        const key = role === 'changelog' && message.key ? message.key.toString('base64') : undefined;
        const handled = key === undefined ? handle() : (state.byKey.get(key) ?? Promise.resolve()).then(handle);
        if (key !== undefined) state.byKey.set(key, handled.catch(() => undefined));
        const task: Promise<void> = handled
          .then(
            () => {
              state.progress.finished(offset);
              const committable = state.progress.committable();
              if (committable !== undefined) state.committer.request(committable);
            },
            (error: unknown) => {
              // A defect: this offset is never committed, so the message comes back after a restart.
              logger.error({ topic, partition, offset, err: describeError(error) }, 'message handling failed; rebuilding the consumer');
              failWithDefect(generation);
            },
          )
          .finally(() => {
            release();
            inFlight.delete(task);
          });
        inFlight.add(task);
        // The next fetch of this partition starts after this offset; the commit follows completions.
        resolveOffset(offset);
      }
    } finally {
      clearInterval(heartbeating);
    }
    try {
      await heartbeat();
    } catch (error) {
      if (isRebalancingError(error) || isRebalancing) await drainBeforeRejoining();
      throw error;
    }
    if (isRebalancing) await drainBeforeRejoining();
  }

  /**
   * A rebalance: finish and commit what is in hand before kafkajs rejoins, so a clean rebalance
   * delivers nothing twice — but not for longer than the group waits for a member to rejoin: runs
   * whose reports wait for Port (an outage, a short budget) are delivered again by the next owner
   * rather than losing this member its place in the group.
   */
  async function drainBeforeRejoining(): Promise<void> {
    if (await settlesWithin(drain(), REBALANCE_DRAIN_MAX_MS)) return;
    logger.warn({ inFlight: inFlight.size, waitedMs: REBALANCE_DRAIN_MAX_MS }, 'rejoining the consumer group before the runs in hand finished; uncommitted runs will be delivered again');
  }

  /**
   * Gets a client (fetching credentials when there are none), connects and runs a fresh consumer,
   * retrying with backoff until it works or the agent stops: Port may be down for a while at start.
   */
  async function startWithRetry(): Promise<void> {
    while (!isStopping && handler) {
      let current: Consumer;
      try {
        current = await createConsumer();
      } catch (error) {
        logger.error({ err: describeError(error), retryInMs: backoffMs }, 'could not get the Kafka brokers and credentials; retrying');
        await backOff();
        continue;
      }
      if (isStopping) return;
      consumer = current;
      try {
        await run(current, handler);
        logger.info({ groupId: deps.groupId, topics: [deps.runsTopic, deps.changeLogTopic] }, 'consuming');
        return;
      } catch (error) {
        if (isAuthenticationFailure(error)) {
          // SPEC §2 improvement: Port rotated the credentials; the next attempt fetches them again.
          deps.connector.renew();
          logger.warn({ err: describeError(error), retryInMs: backoffMs }, 'Kafka refused the credentials; fetching them again and reconnecting');
        } else {
          logger.error({ err: describeError(error), retryInMs: backoffMs }, 'could not start the Kafka consumer; retrying');
        }
        await current.disconnect().catch(() => undefined);
        await backOff();
      }
    }
  }

  async function rebuild(): Promise<void> {
    state = 'reconnecting';
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
      state = 'stopped';
      const current = consumer;
      if (!current) return;
      // Take no more messages, let those in hand finish and commit, then leave the group.
      const finished = drain()
        .then(() => current.disconnect())
        .then(
          () => true,
          (error: unknown) => {
            logger.warn({ err: describeError(error) }, 'Kafka consumer did not disconnect cleanly');
            return true;
          },
        );
      const inTime = await settlesWithin(finished, deps.shutdownGraceMs);
      if (!inTime) logger.warn({ graceMs: deps.shutdownGraceMs, inFlight: inFlight.size }, 'in-flight messages did not finish within the grace period; they will be delivered again');
    },
    status() {
      const lag: PartitionLag[] = [];
      for (const [id, partitionInHand] of partitions) {
        if (partitionInHand.highWatermark === undefined) continue;
        const next = partitionInHand.progress.nextToCommit();
        if (next === undefined) continue;
        const separator = id.lastIndexOf(':');
        const behind = partitionInHand.highWatermark - BigInt(next);
        lag.push({ topic: id.slice(0, separator), partition: Number(id.slice(separator + 1)), lag: Number(behind > 0n ? behind : 0n) });
      }
      return { state, lastBrokerAnswerAtMs, lastAttemptAtMs, messagesInHand: inFlight.size, lag };
    },
  };
}
