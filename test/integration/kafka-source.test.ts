/**
 * The Kafka source against the real broker, in-process: a consumer that kafkajs stops for good is
 * rebuilt, so the agent never silently stops consuming (SPEC §2).
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import kafkajs from 'kafkajs';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../../src/log.js';
import { createKafkaSource } from '../../src/sources/kafka.js';
import type { SourceMessage } from '../../src/sources/types.js';
import { startBroker } from '../support/broker.js';
import type { Broker } from '../support/broker.js';
import { committedOffsets, createKafka, disconnectKafkaClients, produce, uniqueName } from '../support/kafka.js';
import { waitFor } from '../support/wait.js';

function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger({ level: 'info', destination }), lines };
}

describe('Kafka source', () => {
  let broker: Broker;

  before(async () => {
    broker = await startBroker();
  });

  after(async () => {
    await disconnectKafkaClients();
    await broker?.stop();
  });

  it('rebuilds a consumer that kafkajs crashed without restarting, and redelivers the message', async () => {
    const topic = uniqueName('runs');
    const changeLogTopic = uniqueName('changelog');
    const groupId = uniqueName('group');
    await produce(broker.brokers, topic, [{ value: 'first', partition: 0 }]);
    await produce(broker.brokers, changeLogTopic, [{ value: 'warm-up', partition: 0 }]);
    const { logger, lines } = capturingLogger();
    const source = createKafkaSource({
      kafka: createKafka(broker.brokers, uniqueName('agent')),
      groupId,
      runsTopic: topic,
      changeLogTopic,
      sessionTimeoutMs: 6000,
      fetchMaxWaitMs: 50,
      fromBeginning: true,
      shutdownGraceMs: 5000,
      maxInHand: 10,
      logger,
    });
    const seen: SourceMessage[] = [];
    let hasThrown = false;
    await source.start(async (message) => {
      seen.push(message);
      if (message.role === 'runs' && !hasThrown) {
        hasThrown = true;
        // kafkajs retries ordinary errors itself; a non-retriable one makes it crash with
        // restart: false and stay stopped (as after authorization failures or an expired member).
        throw new kafkajs.KafkaJSNonRetriableError('simulated non-retriable failure');
      }
      return 'delivered';
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
});
