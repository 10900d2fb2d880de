/**
 * The Kafka consumer's life (after kafkajs' `src/consumer/index.js`, crash → restart): builds a
 * consumer from the connector's client, connects, subscribes and runs it, retrying with backoff
 * until it works or the source stops (Port may be down for a while at start); rebuilds a consumer
 * kafkajs gave up on, ever more slowly while it keeps failing; fetches the credentials again when
 * the brokers refuse them (SPEC §2); and says how it is doing: consuming, a standby without
 * partitions, reconnecting, and when the broker last answered.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Consumer, ConsumerConfig, ConsumerCrashEvent, ConsumerGroupJoinEvent, EachBatchPayload } from 'kafkajs';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import { createBackoff } from '../retry/backoff.js';
import type { BackoffSettings } from '../retry/backoff.js';
import type { SourceStatus } from '../shared/source-status.js';
import { isAuthenticationFailure } from './kafka-connector.js';
import { createSourceActivity } from './source-activity.js';

/** What the supervisor uses of a kafkajs consumer. */
export type SupervisedConsumer = Pick<Consumer, 'connect' | 'subscribe' | 'run' | 'disconnect' | 'on' | 'events'>;

/** What the supervisor uses of the connector (`kafka-connector.ts`): a `KafkaConnector` is one. */
export interface ConsumerConnector {
  /** A client for the current credentials; rejects when they cannot be had. */
  client(): Promise<{ consumer(config: ConsumerConfig): SupervisedConsumer }>;
  /** The brokers refused the credentials: the next client() fetches them again. */
  renew(): void;
}

/** Runs one fetched batch; calls `onDefect` when the handler rejected (it must not). */
export type EachBatch = (payload: EachBatchPayload, onDefect: () => void) => Promise<void>;

export interface ConsumerSupervisorDeps {
  connector: ConsumerConnector;
  groupId: string;
  topics: string[];
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  fetchMaxWaitMs: number;
  /** A group without offsets starts at the beginning of the topics. */
  fromBeginning: boolean;
  /** The partitions held so far are gone (a rejoin, a rebuild after a defect): stop committing them. */
  onPartitionsLost: () => void;
  logger: Logger;
  /** Waits `ms` before the next attempt; tests pass their own. */
  sleep?: (ms: number) => Promise<void>;
}

export interface ConsumerSupervisor {
  /** Resolves once a consumer runs, retrying until one does or the source stops. */
  start(eachBatch: EachBatch): Promise<void>;
  /**
   * Stops restarting; when a consumer runs, waits for `beforeLeaving` (the drain) and leaves the
   * group. Never rejects.
   */
  stop(beforeLeaving: () => Promise<void>): Promise<void>;
  status(): Pick<SourceStatus, 'state' | 'lastBrokerAnswerAtMs' | 'lastAttemptAtMs'>;
}

/** Partitions handled at once; each partition still handles its messages in order. */
const PARTITIONS_CONSUMED_CONCURRENTLY = 16;
/** Consumer restarts: 1 s, doubling to 30 s; back to 1 s once the group is joined. */
const RESTART_BACKOFF: BackoffSettings = { initialMs: 1_000, factor: 2, maxMs: 30_000, jitterFactor: 0 };

function assignedPartitions(assignment: Record<string, number[]>): number {
  return Object.values(assignment).reduce((total, partitions) => total + partitions.length, 0);
}

export function createConsumerSupervisor(deps: ConsumerSupervisorDeps): ConsumerSupervisor {
  const { logger, connector } = deps;
  const sleep = deps.sleep ?? ((ms: number) => delay(ms));
  /** Grows with each failed start or rebuild, back to the start once the group is joined. */
  const backoff = createBackoff(RESTART_BACKOFF);
  let consumer: SupervisedConsumer | undefined;
  let eachBatch: EachBatch | undefined;
  let isStopping = false;
  let restarting: Promise<void> | undefined;
  const activity = createSourceActivity();

  async function waitToRetry(waitMs: number): Promise<void> {
    activity.attempted();
    await sleep(waitMs);
  }

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
  function failWithDefect(generation: SupervisedConsumer): void {
    if (isStopping || generation !== consumer) return;
    deps.onPartitionsLost();
    scheduleRebuild();
  }

  function joined(payload: ConsumerGroupJoinEvent['payload']): void {
    activity.answered();
    backoff.reset();
    deps.onPartitionsLost();
    const partitions = assignedPartitions(payload.memberAssignment);
    activity.state = partitions === 0 ? 'standby' : 'consuming';
    if (partitions === 0) {
      // SPEC §2, deliberate difference: another replica holds the partitions; wait for a rebalance.
      logger.info({ groupId: deps.groupId, memberId: payload.memberId }, 'joined the consumer group as a standby (no partitions assigned)');
    } else {
      logger.info({ groupId: deps.groupId, memberId: payload.memberId, assignment: payload.memberAssignment }, 'joined the consumer group');
    }
  }

  function crashed(created: SupervisedConsumer, { error, restart }: ConsumerCrashEvent['payload']): void {
    activity.attempted();
    if (!isStopping) activity.state = 'reconnecting';
    // kafkajs would restart with the refused credentials: rebuild with fetched ones instead.
    const isRefused = isAuthenticationFailure(error);
    if (restart && !isRefused) {
      logger.warn({ err: describeError(error) }, 'Kafka consumer crashed; kafkajs restarts it');
      return;
    }
    if (isStopping || created !== consumer) return;
    if (isRefused) {
      connector.renew();
      logger.warn({ err: describeError(error) }, 'Kafka refused the credentials; fetching them again and rebuilding the consumer');
    } else {
      logger.error({ err: describeError(error) }, 'Kafka consumer crashed and kafkajs will not restart it; rebuilding the consumer');
    }
    scheduleRebuild();
  }

  async function createConsumer(): Promise<SupervisedConsumer> {
    const kafka = await connector.client();
    const created = kafka.consumer({
      groupId: deps.groupId,
      sessionTimeout: deps.sessionTimeoutMs,
      heartbeatInterval: deps.heartbeatIntervalMs,
      maxWaitTimeInMs: deps.fetchMaxWaitMs,
    });
    for (const answered of [created.events.HEARTBEAT, created.events.FETCH, created.events.COMMIT_OFFSETS]) created.on(answered, () => activity.answered());
    for (const tried of [created.events.REQUEST_TIMEOUT, created.events.CONNECT, created.events.REBALANCING]) created.on(tried, () => activity.attempted());
    created.on(created.events.GROUP_JOIN, (event) => joined(event.payload));
    created.on(created.events.CRASH, (event) => crashed(created, event.payload));
    return created;
  }

  async function run(current: SupervisedConsumer, onBatch: EachBatch): Promise<void> {
    await current.connect();
    await current.subscribe({ topics: deps.topics, fromBeginning: deps.fromBeginning });
    await current.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: PARTITIONS_CONSUMED_CONCURRENTLY,
      // eachBatch rather than eachMessage: many messages of a partition in flight at once, and its
      // commit reaches the group coordinator while the consumer is stopping, so the runs finished
      // during a shutdown are committed too (consumer.commitOffsets is a no-op once stop() began).
      eachBatch: (payload) => onBatch(payload, () => failWithDefect(current)),
    });
  }

  /** Gets a client (fetching credentials when there are none), connects and runs a fresh consumer. */
  async function startWithRetry(): Promise<void> {
    while (!isStopping && eachBatch) {
      let current: SupervisedConsumer;
      try {
        current = await createConsumer();
      } catch (error) {
        const waitMs = backoff.failed();
        logger.error({ err: describeError(error), retryInMs: waitMs }, 'could not get the Kafka brokers and credentials; retrying');
        await waitToRetry(waitMs);
        continue;
      }
      if (isStopping) return;
      consumer = current;
      try {
        await run(current, eachBatch);
        logger.info({ groupId: deps.groupId, topics: deps.topics }, 'consuming');
        return;
      } catch (error) {
        const waitMs = backoff.failed();
        if (isAuthenticationFailure(error)) {
          // SPEC §2 improvement: Port rotated the credentials; the next attempt fetches them again.
          connector.renew();
          logger.warn({ err: describeError(error), retryInMs: waitMs }, 'Kafka refused the credentials; fetching them again and reconnecting');
        } else {
          logger.error({ err: describeError(error), retryInMs: waitMs }, 'could not start the Kafka consumer; retrying');
        }
        await current.disconnect().catch(() => undefined);
        await waitToRetry(waitMs);
      }
    }
  }

  async function rebuild(): Promise<void> {
    activity.state = 'reconnecting';
    const previous = consumer;
    consumer = undefined;
    await previous?.disconnect().catch((error: unknown) => logger.warn({ err: describeError(error) }, 'disconnecting the crashed consumer failed'));
    // A consumer that keeps failing (an ACL that refuses the group, say) is retried ever more slowly.
    await waitToRetry(backoff.failed());
    await startWithRetry();
  }

  return {
    async start(onBatch) {
      eachBatch = onBatch;
      await startWithRetry();
    },
    async stop(beforeLeaving) {
      isStopping = true;
      activity.state = 'stopped';
      const current = consumer;
      if (!current) return;
      // Take no more messages, let those in hand finish and commit, then leave the group.
      await beforeLeaving()
        .then(() => current.disconnect())
        .catch((error: unknown) => logger.warn({ err: describeError(error) }, 'Kafka consumer did not disconnect cleanly'));
    },
    status: () => ({ state: activity.state, lastBrokerAnswerAtMs: activity.lastBrokerAnswerAtMs, lastAttemptAtMs: activity.lastAttemptAtMs }),
  };
}
