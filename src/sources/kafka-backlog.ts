/**
 * The backlog on the brokers: for each partition this member holds, the messages past the group's
 * position — what Port has produced and the agent has not finished. `consumer_lag` sees only what
 * the last fetch of a partition told, and an agent that holds all it may fetches nothing: its lag
 * stops moving exactly when the backlog grows. So the brokers are asked directly (ListOffsets and
 * OffsetFetch, two small requests) when partitions are assigned and every `intervalMs` after.
 */
import type { Admin, Kafka } from 'kafkajs';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { PartitionLag } from '../shared/source-status.js';
import { isAuthenticationFailure } from './kafka-connector.js';

/** What the backlog needs of kafkajs' admin client. */
export type BacklogAdmin = Pick<Admin, 'connect' | 'disconnect' | 'fetchTopicOffsets' | 'fetchOffsets'>;

export interface BrokerBacklogDeps {
  /** The current client (renewed credentials give a new one); its admin asks the brokers. */
  client: () => Promise<Pick<Kafka, 'admin'>>;
  /** The brokers refused the credentials (Port rotated them): the next client gets them again. */
  renew: () => void;
  groupId: string;
  /** KAFKA_CONSUMER_AUTO_OFFSET_RESET=earliest: a partition without a commit starts at its beginning. */
  fromBeginning: boolean;
  /** The next offset the agent will commit for a partition, when it holds messages of it (fresher than the broker's). */
  nextToCommit(topic: string, partition: number): string | undefined;
  intervalMs: number;
  logger: Logger;
}

export interface BrokerBacklog {
  /** The member's partitions after a join; asks the brokers at once. */
  assigned(assignment: Readonly<Record<string, readonly number[]>>): void;
  /** The figures of the last answer, for the partitions held then. */
  current(): readonly PartitionLag[];
  stop(): Promise<void>;
}

async function closeQuietly(admin: BacklogAdmin | undefined): Promise<void> {
  await admin?.disconnect().catch(() => undefined);
}

/** A refresh that fails (brokers away) leaves no figures, rather than stale ones. */
export function createBrokerBacklog(deps: BrokerBacklogDeps): BrokerBacklog {
  const logger = deps.logger.child({ stage: 'source' });
  let assignment: Readonly<Record<string, readonly number[]>> = {};
  let figures: readonly PartitionLag[] = [];
  let admin: { of: Pick<Kafka, 'admin'>; admin: BacklogAdmin } | undefined;
  let refreshing: Promise<void> | undefined;
  let isFailing = false;
  let isStopped = false;
  const timer = setInterval(() => void refresh(), deps.intervalMs);
  timer.unref();

  /** Forgets the admin and closes it; closing fails only on a connection that is gone already. */
  async function dropAdmin(): Promise<void> {
    const current = admin;
    admin = undefined;
    await closeQuietly(current?.admin);
  }

  async function connectedAdmin(): Promise<BacklogAdmin> {
    const client = await deps.client();
    if (admin?.of === client) return admin.admin;
    await dropAdmin();
    // A couple of quick tries ride out a coordinator moving just after a join; the next refresh is the real retry.
    const created = client.admin({ retry: { retries: 2, initialRetryTime: 300, maxRetryTime: 3_000 } });
    try {
      await created.connect();
    } catch (error) {
      // kafkajs keeps the seed broker's connection after a refused login.
      await closeQuietly(created);
      throw error;
    }
    if (isStopped) {
      await closeQuietly(created);
      throw new Error('the source stopped');
    }
    admin = { of: client, admin: created };
    return created;
  }

  async function positions(held: Readonly<Record<string, readonly number[]>>): Promise<PartitionLag[]> {
    const topics = Object.keys(held).filter((topic) => (held[topic] ?? []).length > 0);
    if (topics.length === 0) return [];
    const client = await connectedAdmin();
    const [ends, commits] = await Promise.all([
      Promise.all(topics.map(async (topic) => ({ topic, partitions: await client.fetchTopicOffsets(topic) }))),
      client.fetchOffsets({ groupId: deps.groupId, topics }),
    ]);
    const committed = new Map(commits.flatMap(({ topic, partitions }) => partitions.map(({ partition, offset }) => [`${topic}:${partition}`, offset] as const)));
    const backlog: PartitionLag[] = [];
    for (const { topic, partitions } of ends) {
      for (const { partition, high, low } of partitions) {
        if (!(held[topic] ?? []).includes(partition)) continue;
        const groupOffset = committed.get(`${topic}:${partition}`);
        const fromCommit = groupOffset !== undefined && BigInt(groupOffset) >= 0n ? groupOffset : undefined;
        // No commit yet: the group starts where KAFKA_CONSUMER_AUTO_OFFSET_RESET says.
        const start = BigInt(deps.nextToCommit(topic, partition) ?? fromCommit ?? (deps.fromBeginning ? low : high));
        const behind = BigInt(high) - start;
        backlog.push({ topic, partition, lag: Number(behind > 0n ? behind : 0n) });
      }
    }
    return backlog;
  }

  /** Asks again when the assignment changed meanwhile: the answer was for partitions no longer held. */
  async function askBrokers(): Promise<void> {
    let held: typeof assignment;
    do {
      held = assignment;
      await askBrokersFor(held);
    } while (held !== assignment && !isStopped);
  }

  async function askBrokersFor(held: typeof assignment): Promise<void> {
    try {
      const answer = await positions(held);
      if (held !== assignment || isStopped) return;
      figures = answer;
      if (isFailing) logger.info({ groupId: deps.groupId }, 'the brokers answer the backlog query again');
      isFailing = false;
    } catch (error) {
      // stop() disconnected the admin under this query: nothing failed.
      if (isStopped) return;
      figures = [];
      await dropAdmin();
      if (isAuthenticationFailure(error)) deps.renew();
      // Once per failing streak: the consumer's own errors say more about a broker that is away.
      if (!isFailing) logger.warn({ groupId: deps.groupId, err: describeError(error) }, 'could not ask the brokers for the backlog; port_agent_consumer_backlog is empty until they answer');
      isFailing = true;
    }
  }

  function refresh(): Promise<void> {
    if (isStopped) return Promise.resolve();
    refreshing ??= askBrokers().finally(() => {
      refreshing = undefined;
    });
    return refreshing;
  }

  return {
    assigned(given) {
      assignment = given;
      figures = [];
      void refresh();
    },
    current: () => figures,
    async stop() {
      isStopped = true;
      clearInterval(timer);
      // Not waiting for a refresh in flight: disconnecting ends it, and a brokers' silence must not hold the exit.
      await dropAdmin();
    },
  };
}
