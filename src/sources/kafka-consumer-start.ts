/**
 * Getting a consumer of the Kafka source running: a client from the connector (which fetches the
 * credentials when there are none), a consumer for the group with its events wired to the
 * supervisor, connected, subscribed and run with commits by hand; on failure, back off and try
 * again (Port may be down for a while at start) until it runs or the source stops.
 */
import type { Consumer, ConsumerConfig, ConsumerCrashEvent, ConsumerGroupJoinEvent, EachBatchPayload } from 'kafkajs';
import type { Logger } from '../log.js';
import type { Backoff } from '../retry/backoff.js';
import { isAuthenticationFailure } from './kafka-connector.js';
import { afterFailure, heedFailure } from './kafka-consumer-failure.js';
import type { FailureDecision } from './kafka-consumer-failure.js';

/** What the supervisor uses of a kafkajs consumer. */
export type SupervisedConsumer = Pick<Consumer, 'connect' | 'subscribe' | 'run' | 'disconnect' | 'on' | 'events'>;

/** Runs one fetched batch; calls `onDefect` when the handler rejected (it must not). */
export type EachBatch = (payload: EachBatchPayload, onDefect: () => void) => Promise<void>;

/** What the supervisor uses of the connector (`kafka-connector.ts`): a `KafkaConnector` is one. */
export interface ConsumerConnector {
  /** A client for the current credentials; rejects when they cannot be had. */
  client(): Promise<{ consumer(config: ConsumerConfig): SupervisedConsumer }>;
  /** The brokers refused the credentials: the next client() fetches them again. */
  renew(): void;
}

/** The group, its topics and its timings. */
export interface ConsumerSettings {
  groupId: string;
  topics: string[];
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  fetchMaxWaitMs: number;
  /** A group without offsets starts at the beginning of the topics. */
  fromBeginning: boolean;
}

/** What a consumer tells the supervisor through its events. */
export interface ConsumerListeners {
  /** The broker answered (a heartbeat, a fetch, a commit). */
  answered(): void;
  /** The consumer tried something, answered or not (a connection, a timeout, a rebalance). */
  attempted(): void;
  joined(payload: ConsumerGroupJoinEvent['payload']): void;
  /** `consumer` crashed: the one the listeners were given to, perhaps replaced since. */
  crashed(consumer: SupervisedConsumer, payload: ConsumerCrashEvent['payload']): void;
}

export interface ConsumerStartDeps {
  connector: ConsumerConnector;
  settings: ConsumerSettings;
  listeners: ConsumerListeners;
  /** The supervisor's restart backoff: each failed try grows it. */
  backoff: Backoff;
  /** Waits `ms` before the next try. */
  waitToRetry(ms: number): Promise<void>;
  isStopping(): boolean;
  logger: Logger;
}

/** What the supervisor learns of the consumers started for it. */
export interface StartHooks {
  onBatch: EachBatch;
  /** A fresh consumer, before it runs: kafkajs may report its crash from inside run(). */
  built(consumer: SupervisedConsumer): void;
  /** A batch of `consumer` reported a defect. */
  defect(consumer: SupervisedConsumer): void;
}

/** Partitions handled at once; each partition still handles its messages in order. */
const PARTITIONS_CONSUMED_CONCURRENTLY = 16;

function buildConsumer(client: Awaited<ReturnType<ConsumerConnector['client']>>, settings: ConsumerSettings, listeners: ConsumerListeners): SupervisedConsumer {
  const created = client.consumer({
    groupId: settings.groupId,
    sessionTimeout: settings.sessionTimeoutMs,
    heartbeatInterval: settings.heartbeatIntervalMs,
    maxWaitTimeInMs: settings.fetchMaxWaitMs,
  });
  for (const answered of [created.events.HEARTBEAT, created.events.FETCH, created.events.COMMIT_OFFSETS]) created.on(answered, () => listeners.answered());
  for (const tried of [created.events.REQUEST_TIMEOUT, created.events.CONNECT, created.events.REBALANCING]) created.on(tried, () => listeners.attempted());
  created.on(created.events.GROUP_JOIN, (event) => listeners.joined(event.payload));
  created.on(created.events.CRASH, (event) => listeners.crashed(created, event.payload));
  return created;
}

async function runConsumer(consumer: SupervisedConsumer, settings: ConsumerSettings, onBatch: EachBatch, onDefect: () => void): Promise<void> {
  await consumer.connect();
  await consumer.subscribe({ topics: settings.topics, fromBeginning: settings.fromBeginning });
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: PARTITIONS_CONSUMED_CONCURRENTLY,
    // eachBatch rather than eachMessage: many messages of a partition in flight at once, and its
    // commit reaches the group coordinator while the consumer is stopping, so the runs finished
    // during a shutdown are committed too (consumer.commitOffsets is a no-op once stop() began).
    eachBatch: (payload) => onBatch(payload, onDefect),
  });
}

/** A failed try: backs off, heeds the decision, cleans up, waits. */
async function retryLater(deps: ConsumerStartDeps, decision: FailureDecision, error: unknown, cleanUp?: () => Promise<unknown>): Promise<void> {
  const waitMs = deps.backoff.failed();
  heedFailure(decision, error, deps, waitMs);
  await cleanUp?.();
  await deps.waitToRetry(waitMs);
}

async function tryStart(deps: ConsumerStartDeps, hooks: StartHooks): Promise<'running' | 'stopped' | 'failed'> {
  let current: SupervisedConsumer;
  try {
    current = buildConsumer(await deps.connector.client(), deps.settings, deps.listeners);
  } catch (error) {
    await retryLater(deps, afterFailure({ during: 'client' }), error);
    return 'failed';
  }
  if (deps.isStopping()) return 'stopped';
  hooks.built(current);
  try {
    await runConsumer(current, deps.settings, hooks.onBatch, () => hooks.defect(current));
    deps.logger.info({ groupId: deps.settings.groupId, topics: deps.settings.topics }, 'consuming');
    return 'running';
  } catch (error) {
    await retryLater(deps, afterFailure({ during: 'start', isRefused: isAuthenticationFailure(error) }), error, () => current.disconnect().catch(() => undefined));
    return 'failed';
  }
}

/** Tries until a consumer runs or the source stops. */
export async function startConsumer(deps: ConsumerStartDeps, hooks: StartHooks): Promise<void> {
  while (!deps.isStopping()) {
    if ((await tryStart(deps, hooks)) !== 'failed') return;
  }
}
