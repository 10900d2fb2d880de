import { randomBytes } from 'node:crypto';
import { Kafka, Partitioners, logLevel } from 'kafkajs';
import type { Producer } from 'kafkajs';

/** One message to produce; `headers` are sent as UTF-8 strings. */
export interface TestMessage {
  key?: string;
  value: string | Buffer;
  partition?: number;
  headers?: Record<string, string>;
}

const CLIENT_ID = 'port-agent-tests';

// Producers stay connected between calls, one per broker list; disconnectKafkaClients() ends them.
const producers = new Map<string, Promise<Producer>>();

/** A unique topic, group or client name, so tests never share Kafka state. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

/** A silent kafkajs client: tests assert on behaviour, and kafkajs is chatty at every level. */
export function createKafka(brokers: string[], clientId: string = CLIENT_ID): Kafka {
  return new Kafka({ brokers, clientId, logLevel: logLevel.NOTHING });
}

/** A new connected producer; the caller disconnects it. */
export async function createProducer(brokers: string[]): Promise<Producer> {
  // The explicit partitioner keeps kafkajs from warning about its v2 default change.
  const producer = createKafka(brokers).producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  return producer;
}

function sharedProducer(brokers: string[]): Promise<Producer> {
  const key = brokers.join(',');
  let producer = producers.get(key);
  if (!producer) {
    producer = createProducer(brokers);
    producers.set(key, producer);
    // A failed connect must not poison the cache for the next call.
    producer.catch(() => producers.delete(key));
  }
  return producer;
}

/**
 * Produces `messages` to `topic` (acks from all replicas), through the given producer or a shared
 * connected one for `brokers`. Producing also creates the topic on the mock cluster (4 partitions).
 */
export async function produce(target: string[] | Producer, topic: string, messages: TestMessage[]): Promise<void> {
  const producer = Array.isArray(target) ? await sharedProducer(target) : target;
  await producer.send({
    topic,
    acks: -1,
    messages: messages.map((message) => ({
      key: message.key ?? null,
      value: message.value,
      ...(message.partition === undefined ? {} : { partition: message.partition }),
      ...(message.headers === undefined ? {} : { headers: message.headers }),
    })),
  });
}

/** Disconnects the shared producers made by {@link produce}; call it in `after()`. */
export async function disconnectKafkaClients(): Promise<void> {
  const pending = [...producers.values()];
  producers.clear();
  await Promise.allSettled(pending.map(async (producer) => (await producer).disconnect()));
}

/**
 * The group's committed offsets on `topic`, by partition: the offset of the next message to read,
 * or `'-1'` for a partition without a commit. Uses admin `fetchOffsets`, which works on the mock
 * cluster (unlike `describeGroups`).
 */
export async function committedOffsets(brokers: string[], groupId: string, topic: string): Promise<Map<number, string>> {
  const admin = createKafka(brokers).admin();
  await admin.connect();
  try {
    const topics = await admin.fetchOffsets({ groupId, topics: [topic] });
    const offsets = new Map<number, string>();
    for (const entry of topics) {
      if (entry.topic !== topic) continue;
      for (const { partition, offset } of entry.partitions) offsets.set(partition, offset);
    }
    return offsets;
  } finally {
    await admin.disconnect();
  }
}
