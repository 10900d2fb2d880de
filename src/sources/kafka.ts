/**
 * The Kafka source (SPEC §2): one consumer group on the runs and change-log topics, offsets
 * committed only after a message is handled, a consumer that kafkajs gives up on is rebuilt, a
 * member without partitions waits as a standby, and credentials the brokers refuse are fetched
 * again (through the connector) before the consumer is rebuilt. The parts, as kafkajs splits its
 * consumer: `kafka-consumer-supervisor.ts` (start, crash → rebuild, status), `kafka-batch-runner.ts`
 * (each fetched batch, commits, the rebalance drain), `in-hand.ts` (the messages held, the drain on stop).
 */
import type { Semaphore } from '../concurrency/semaphore.js';
import type { Logger } from '../log.js';
import { createInHandTracker } from './in-hand.js';
import { createBrokerBacklog } from './kafka-backlog.js';
import { createBatchRunner } from './kafka-batch-runner.js';
import type { KafkaConnector } from './kafka-connector.js';
import { createConsumerSupervisor } from './kafka-consumer-supervisor.js';
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
  /** How often the brokers are asked for the backlog (kafka-backlog.ts). */
  backlogIntervalMs?: number;
  logger: Logger;
}

/** As often as Prometheus scrapes by default (the chart's ServiceMonitor: 30 s). */
const BACKLOG_INTERVAL_MS = 30_000;

export function createKafkaSource(deps: KafkaSourceDeps): Source {
  const { logger } = deps;
  let isStopping = false;
  const heartbeatIntervalMs = Math.max(500, Math.floor(deps.sessionTimeoutMs / 10));
  const inHand = createInHandTracker({ maxInHand: deps.maxInHand, awaitingReports: deps.awaitingReports, shutdownGraceMs: deps.shutdownGraceMs, logger });
  const batches = createBatchRunner({ changeLogTopic: deps.changeLogTopic, heartbeatIntervalMs, inHand, isStopping: () => isStopping, logger });
  const backlog = createBrokerBacklog({
    client: () => deps.connector.client(),
    renew: () => deps.connector.renew(),
    groupId: deps.groupId,
    fromBeginning: deps.fromBeginning,
    nextToCommit: (topic, partition) => batches.nextToCommit(topic, partition),
    intervalMs: deps.backlogIntervalMs ?? BACKLOG_INTERVAL_MS,
    logger,
  });
  const supervisor = createConsumerSupervisor({
    connector: deps.connector,
    groupId: deps.groupId,
    topics: [deps.runsTopic, deps.changeLogTopic],
    sessionTimeoutMs: deps.sessionTimeoutMs,
    heartbeatIntervalMs,
    fetchMaxWaitMs: deps.fetchMaxWaitMs,
    fromBeginning: deps.fromBeginning,
    onPartitionsLost: () => batches.retirePartitions(),
    onAssigned: (assignment) => backlog.assigned(assignment),
    logger,
  });

  return {
    async start(onMessage) {
      await supervisor.start((payload, onDefect) => batches.run(payload, onMessage, onDefect));
    },
    async stop() {
      isStopping = true;
      const leaving = supervisor.stop(() => batches.drain());
      await Promise.all([backlog.stop(), inHand.finishWithinGrace(leaving, 'in-flight messages did not finish within the grace period; they will be delivered again')]);
    },
    status() {
      const consumer = supervisor.status();
      // A member that lost the group holds nothing it could vouch for.
      return { ...consumer, messagesInHand: inHand.count, lag: batches.lag(), backlog: consumer.state === 'consuming' ? backlog.current() : [] };
    },
  };
}
