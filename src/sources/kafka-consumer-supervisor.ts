/**
 * The Kafka consumer's life (after kafkajs' `src/consumer/index.js`, crash → restart): builds a
 * consumer from the connector's client, connects, subscribes and runs it, retrying with backoff
 * until it works or the source stops (Port may be down for a while at start); rebuilds a consumer
 * kafkajs gave up on, ever more slowly while it keeps failing; fetches the credentials again when
 * the brokers refuse them (SPEC §2); and says how it is doing: consuming, a standby without
 * partitions, reconnecting, and when the broker last answered. The parts: `kafka-consumer-start.ts`
 * (one consumer running), `kafka-consumer-restarts.ts` (rebuilds, one after another) and
 * `kafka-consumer-failure.ts` (what to do after a failure).
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { ConsumerGroupJoinEvent } from 'kafkajs';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import { createBackoff } from '../retry/backoff.js';
import type { BackoffSettings } from '../retry/backoff.js';
import type { SourceStatus } from '../shared/source-status.js';
import { isAuthenticationFailure } from './kafka-connector.js';
import { afterFailure, heedFailure } from './kafka-consumer-failure.js';
import { createConsumerRestarts } from './kafka-consumer-restarts.js';
import type { ConsumerConnector, ConsumerListeners, ConsumerSettings, EachBatch } from './kafka-consumer-start.js';
import { createSourceActivity } from './source-activity.js';

export type { ConsumerConnector, EachBatch, SupervisedConsumer } from './kafka-consumer-start.js';

export interface ConsumerSupervisorDeps extends ConsumerSettings {
  connector: ConsumerConnector;
  /** The partitions held so far are gone (a rejoin, a rebuild after a defect): stop committing them. */
  onPartitionsLost: () => void;
  /** The partitions of each topic the member got when it joined the group. */
  onAssigned?: (assignment: Record<string, number[]>) => void;
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

/** Consumer restarts: 1 s, doubling to 30 s; back to 1 s once the group is joined. */
const RESTART_BACKOFF: BackoffSettings = { initialMs: 1_000, factor: 2, maxMs: 30_000, jitterFactor: 0 };

function assignedPartitions(assignment: Record<string, number[]>): number {
  return Object.values(assignment).reduce((total, partitions) => total + partitions.length, 0);
}

/** Logs a join to the group; a member without partitions is a standby. */
function logJoin(logger: Logger, groupId: string, payload: ConsumerGroupJoinEvent['payload']): 'standby' | 'consuming' {
  if (assignedPartitions(payload.memberAssignment) === 0) {
    // SPEC §2, deliberate difference: another replica holds the partitions; wait for a rebalance.
    logger.info({ groupId, memberId: payload.memberId }, 'joined the consumer group as a standby (no partitions assigned)');
    return 'standby';
  }
  logger.info({ groupId, memberId: payload.memberId, assignment: payload.memberAssignment }, 'joined the consumer group');
  return 'consuming';
}

export function createConsumerSupervisor(deps: ConsumerSupervisorDeps): ConsumerSupervisor {
  const { logger } = deps;
  /** Grows with each failed start or rebuild, back to the start once the group is joined. */
  const backoff = createBackoff(RESTART_BACKOFF);
  const activity = createSourceActivity();
  let isStopping = false;

  const listeners: ConsumerListeners = {
    answered: () => activity.answered(),
    attempted: () => activity.attempted(),
    joined(payload) {
      activity.answered();
      backoff.reset();
      deps.onPartitionsLost();
      activity.state = logJoin(logger, deps.groupId, payload);
      deps.onAssigned?.(payload.memberAssignment);
    },
    crashed(created, { error, restart }) {
      activity.attempted();
      if (!isStopping) activity.state = 'reconnecting';
      const decision = afterFailure({ during: 'crash', isRefused: isAuthenticationFailure(error), willKafkajsRestart: restart, isCurrent: created === consumers.current, isStopping });
      heedFailure(decision, error, deps);
      if (decision.next === 'rebuild') consumers.rebuild();
    },
  };
  const consumers = createConsumerRestarts({
    connector: deps.connector,
    settings: deps,
    listeners,
    backoff,
    activity,
    logger,
    isStopping: () => isStopping,
    onDefect: () => deps.onPartitionsLost(),
    sleep: deps.sleep ?? ((ms: number) => delay(ms)),
  });

  return {
    start: (onBatch) => consumers.start(onBatch),
    async stop(beforeLeaving) {
      isStopping = true;
      activity.state = 'stopped';
      const current = consumers.current;
      if (!current) return;
      // Take no more messages, let those in hand finish and commit, then leave the group.
      await beforeLeaving()
        .then(() => current.disconnect())
        .catch((error: unknown) => logger.warn({ err: describeError(error) }, 'Kafka consumer did not disconnect cleanly'));
    },
    status: () => ({ state: activity.state, lastBrokerAnswerAtMs: activity.lastBrokerAnswerAtMs, lastAttemptAtMs: activity.lastAttemptAtMs }),
  };
}
