/**
 * The Kafka source against the real broker, in-process: a consumer that kafkajs stops for good is
 * rebuilt, so the agent never silently stops consuming (SPEC §2).
 */
import assert from 'node:assert/strict';
import kafkajs from 'kafkajs';
import { after, before, describe, it } from 'node:test';
import { kafkaSecurity } from '../../src/config/kafka-security.js';
import { createKafkaConnector } from '../../src/sources/kafka-connector.js';
import { createKafkaSource } from '../../src/sources/kafka.js';
import type { HandleOutcome, Handled, SourceMessage } from '../../src/shared/source-message.js';
import { createSemaphore } from '../../src/concurrency/semaphore.js';
import { startBroker } from '../support/broker.js';
import type { Broker } from '../support/broker.js';
import { committedOffsets, disconnectKafkaClients, produce, uniqueName } from '../support/kafka.js';
import { capturingLogger } from '../support/log-lines.js';
import { waitFor } from '../support/wait.js';

describe('Kafka source', () => {
  let broker: Broker;

  before(async () => {
    broker = await startBroker();
  });

  after(async () => {
    await disconnectKafkaClients();
    await broker?.stop();
  });

  /** A handled message whose reports Port already has. */
  const handled = (outcome: HandleOutcome): Handled => ({ outcome, reported: Promise.resolve() });

  /** A source on topics and a group of its own, the runs topic holding `values` on partition 0. */
  async function sourceOnFreshTopics(values: string[]) {
    const topic = uniqueName('runs');
    const changeLogTopic = uniqueName('changelog');
    const groupId = uniqueName('group');
    await produce(broker.brokers, topic, values.map((value) => ({ value, partition: 0 })));
    await produce(broker.brokers, changeLogTopic, [{ value: 'warm-up', partition: 0 }]);
    const { logger, lines } = capturingLogger('info');
    const source = createKafkaSource({
      connector: createKafkaConnector({
        security: kafkaSecurity({ securityProtocol: 'PLAINTEXT', authenticationMechanism: 'NONE', useLocalPortInstance: true }),
        credentials: () => Promise.resolve({ brokers: broker.brokers, username: undefined, password: undefined }),
        clientId: uniqueName('agent'),
        logLevel: kafkajs.logLevel.NOTHING,
        logger,
      }),
      groupId,
      runsTopic: topic,
      changeLogTopic,
      sessionTimeoutMs: 6000,
      fetchMaxWaitMs: 50,
      fromBeginning: true,
      shutdownGraceMs: 5000,
      maxInHand: 10,
      awaitingReports: createSemaphore(10),
      logger,
    });
    return { topic, groupId, source, lines };
  }

  it('rebuilds a consumer that kafkajs crashed without restarting, and redelivers the message', async () => {
    const { topic, groupId, source, lines } = await sourceOnFreshTopics(['first']);
    const seen: SourceMessage[] = [];
    let hasThrown = false;
    // Thrown synchronously, the error escapes the batch handler into kafkajs: a non-retriable
    // one makes kafkajs crash with restart: false and stay stopped (as after an authorization
    // failure), which is the case the agent must repair.
    await source.start((message) => {
      seen.push(message);
      if (message.role === 'runs' && !hasThrown) {
        hasThrown = true;
        throw new kafkajs.KafkaJSNonRetriableError('simulated non-retriable failure');
      }
      return Promise.resolve(handled('delivered'));
    });
    try {
      await waitFor(() => seen.filter((message) => message.role === 'runs').length >= 2, { timeoutMs: 40_000, description: 'the message delivered again' });
      assert.ok(lines.some((line) => line.msg === 'Kafka consumer crashed and kafkajs will not restart it; rebuilding the consumer'));
      const runs = seen.filter((message) => message.role === 'runs');
      assert.equal(runs[0]?.offset, '0');
      assert.equal(runs[1]?.offset, '0', 'the same message, not a later one');
      assert.equal(runs[1]?.value?.toString(), 'first');
      await waitFor(async () => (await committedOffsets(broker.brokers, groupId, topic)).get(0) === '1', { timeoutMs: 10_000, description: 'the offset committed' });
    } finally {
      await source.stop();
    }
  });

  it('starts over from the last commit when the handler rejects, rather than skipping the message', async () => {
    const { topic, groupId, source, lines } = await sourceOnFreshTopics(['first', 'second']);
    const seen: string[] = [];
    let hasRejected = false;
    await source.start(async (message) => {
      if (message.role !== 'runs') return handled('skipped');
      seen.push(`${message.offset}:${message.value?.toString()}`);
      if (message.offset === '0' && !hasRejected) {
        hasRejected = true;
        throw new Error('a defect in the handler');
      }
      return handled('delivered');
    });
    try {
      await waitFor(() => seen.filter((entry) => entry === '0:first').length >= 2, { timeoutMs: 40_000, description: 'the first message handled again' });
      assert.ok(lines.some((line) => line.msg === 'message handling failed; rebuilding the consumer' && line.offset === '0'));
      await waitFor(async () => (await committedOffsets(broker.brokers, groupId, topic)).get(0) === '2', { timeoutMs: 10_000, description: 'both offsets committed' });
    } finally {
      await source.stop();
    }
  });
});
