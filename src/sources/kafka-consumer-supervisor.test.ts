import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ConsumerConfig, ConsumerRunConfig, EachBatchPayload } from 'kafkajs';
import { capturingLogger } from '../../test/support/log-lines.js';
import { waitFor } from '../../test/support/wait.js';
import { createConsumerSupervisor } from './kafka-consumer-supervisor.js';
import type { EachBatch, SupervisedConsumer } from './kafka-consumer-supervisor.js';

const EVENTS = {
  HEARTBEAT: 'heartbeat',
  FETCH: 'fetch',
  COMMIT_OFFSETS: 'commit',
  REQUEST_TIMEOUT: 'request-timeout',
  CONNECT: 'connect',
  REBALANCING: 'rebalancing',
  GROUP_JOIN: 'group-join',
  CRASH: 'crash',
};

/** A kafkajs consumer stand-in: records what the supervisor asked of it; the test emits its events. */
class FakeConsumer {
  readonly events = EVENTS;
  readonly calls: string[] = [];
  subscribed: unknown;
  runConfig: ConsumerRunConfig | undefined;
  private readonly listeners = new Map<string, ((event: { payload: unknown }) => void)[]>();

  constructor(
    readonly config: ConsumerConfig,
    private readonly runError: unknown,
    private readonly journal: string[],
  ) {}

  on(name: string, listener: (event: { payload: unknown }) => void): () => void {
    this.listeners.set(name, [...(this.listeners.get(name) ?? []), listener]);
    return () => undefined;
  }

  emit(name: string, payload: unknown): void {
    for (const listener of this.listeners.get(name) ?? []) listener({ payload });
  }

  async connect(): Promise<void> {
    this.calls.push('connect');
  }

  async subscribe(subscription: unknown): Promise<void> {
    this.subscribed = subscription;
  }

  async run(config: ConsumerRunConfig): Promise<void> {
    this.runConfig = config;
    if (this.runError !== undefined) throw this.runError;
  }

  async disconnect(): Promise<void> {
    this.calls.push('disconnect');
    this.journal.push('disconnect');
  }
}

function saslRefusal(): Error {
  return Object.assign(new Error('SASL PLAIN authentication failed'), { name: 'KafkaJSSASLAuthenticationError' });
}

/** A supervisor over a fake connector: `clientErrors` and `runErrors` fail the next client() and run() calls in turn. */
function supervise(script: { clientErrors?: unknown[]; runErrors?: unknown[] } = {}) {
  const clientErrors = [...(script.clientErrors ?? [])];
  const runErrors = [...(script.runErrors ?? [])];
  const logs = capturingLogger();
  const consumers: FakeConsumer[] = [];
  const waits: number[] = [];
  const journal: string[] = [];
  const counts = { renewals: 0, partitionsLost: 0 };
  const connector = {
    async client() {
      const error = clientErrors.shift();
      if (error !== undefined) throw error;
      return {
        consumer(config: ConsumerConfig): SupervisedConsumer {
          const created = new FakeConsumer(config, runErrors.shift(), journal);
          consumers.push(created);
          // The fake implements only the events and methods the supervisor uses.
          return created as unknown as SupervisedConsumer;
        },
      };
    },
    renew() {
      counts.renewals += 1;
    },
  };
  const supervisor = createConsumerSupervisor({
    connector,
    groupId: 'agents',
    topics: ['runs', 'changes'],
    sessionTimeoutMs: 10_000,
    heartbeatIntervalMs: 1_000,
    fetchMaxWaitMs: 100,
    fromBeginning: false,
    onPartitionsLost: () => {
      counts.partitionsLost += 1;
    },
    logger: logs.logger,
    sleep: async (ms) => {
      waits.push(ms);
    },
  });
  const messages = () => logs.lines.map((line) => line.msg);
  const latest = () => consumers.at(-1) as FakeConsumer;
  return { supervisor, consumers, latest, waits, journal, counts, logs, messages };
}

const noBatches: EachBatch = async () => undefined;
/** Lets queued promise callbacks (a scheduled rebuild) run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('createConsumerSupervisor: starting', () => {
  it('runs a consumer for the group on both topics, committing by hand', async () => {
    const { supervisor, consumers, messages } = supervise();
    await supervisor.start(noBatches);
    assert.equal(consumers.length, 1);
    const [consumer] = consumers as [FakeConsumer];
    assert.equal(consumer.config.groupId, 'agents');
    assert.deepEqual(consumer.subscribed, { topics: ['runs', 'changes'], fromBeginning: false });
    assert.equal(consumer.runConfig?.autoCommit, false);
    assert.ok(messages().includes('consuming'));
  });

  it('retries getting the brokers and credentials with a doubling backoff until a client comes', async () => {
    const { supervisor, consumers, waits, logs } = supervise({ clientErrors: [new Error('Port is down'), new Error('Port is down')] });
    await supervisor.start(noBatches);
    assert.deepEqual(waits, [1_000, 2_000]);
    const retries = logs.lines.filter((line) => line.msg === 'could not get the Kafka brokers and credentials; retrying');
    assert.deepEqual(retries.map((line) => line.retryInMs), [1_000, 2_000]);
    assert.equal(consumers.length, 1);
  });

  it('fetches the credentials again and reconnects when the brokers refuse them at start', async () => {
    const { supervisor, consumers, waits, counts, logs } = supervise({ runErrors: [saslRefusal()] });
    await supervisor.start(noBatches);
    assert.equal(counts.renewals, 1);
    assert.equal(consumers.length, 2);
    assert.deepEqual(consumers[0]?.calls, ['connect', 'disconnect']);
    assert.deepEqual(waits, [1_000]);
    const refused = logs.lines.find((line) => line.msg === 'Kafka refused the credentials; fetching them again and reconnecting');
    assert.equal(refused?.retryInMs, 1_000);
  });

  it('retries a start that fails otherwise with the same credentials', async () => {
    const { supervisor, consumers, counts, messages } = supervise({ runErrors: [new Error('GROUP_AUTHORIZATION_FAILED')] });
    await supervisor.start(noBatches);
    assert.equal(counts.renewals, 0);
    assert.equal(consumers.length, 2);
    assert.ok(messages().includes('could not start the Kafka consumer; retrying'));
  });
});

describe('createConsumerSupervisor: crashes', () => {
  it('leaves a crash to kafkajs when kafkajs restarts the consumer', async () => {
    const { supervisor, consumers, latest, counts, messages } = supervise();
    await supervisor.start(noBatches);
    latest().emit(EVENTS.CRASH, { error: new Error('connection lost'), restart: true });
    await settle();
    assert.equal(consumers.length, 1);
    assert.equal(counts.renewals, 0);
    assert.equal(supervisor.status().state, 'reconnecting');
    assert.ok(messages().includes('Kafka consumer crashed; kafkajs restarts it'));
  });

  it('rebuilds a consumer kafkajs gave up on, after disconnecting it and backing off', async () => {
    const { supervisor, consumers, latest, waits, counts, messages } = supervise();
    await supervisor.start(noBatches);
    latest().emit(EVENTS.CRASH, { error: new Error('GROUP_AUTHORIZATION_FAILED'), restart: false });
    await waitFor(() => consumers.length === 2 && consumers[1]?.runConfig !== undefined);
    assert.deepEqual(consumers[0]?.calls, ['connect', 'disconnect']);
    assert.deepEqual(waits, [1_000]);
    assert.equal(counts.renewals, 0);
    assert.ok(messages().includes('Kafka consumer crashed and kafkajs will not restart it; rebuilding the consumer'));
  });

  it('fetches the credentials again and rebuilds when the brokers refuse them, even where kafkajs would restart', async () => {
    const { supervisor, consumers, latest, counts, messages } = supervise();
    await supervisor.start(noBatches);
    latest().emit(EVENTS.CRASH, { error: saslRefusal(), restart: true });
    await waitFor(() => consumers.length === 2 && consumers[1]?.runConfig !== undefined);
    assert.equal(counts.renewals, 1);
    assert.ok(messages().includes('Kafka refused the credentials; fetching them again and rebuilding the consumer'));
  });

  it('waits longer before each further rebuild, and starts over at 1 s once the group is joined', async () => {
    const { supervisor, consumers, latest, waits } = supervise();
    await supervisor.start(noBatches);
    for (let crash = 1; crash <= 3; crash += 1) {
      latest().emit(EVENTS.CRASH, { error: new Error('crashed'), restart: false });
      await waitFor(() => consumers.length === crash + 1 && latest().runConfig !== undefined);
    }
    assert.deepEqual(waits, [1_000, 2_000, 4_000]);
    latest().emit(EVENTS.GROUP_JOIN, { memberId: 'member-1', memberAssignment: { runs: [0] } });
    latest().emit(EVENTS.CRASH, { error: new Error('crashed'), restart: false });
    await waitFor(() => consumers.length === 5 && latest().runConfig !== undefined);
    assert.deepEqual(waits, [1_000, 2_000, 4_000, 1_000]);
  });

  it('ignores a crash of a consumer it already replaced', async () => {
    const { supervisor, consumers, latest } = supervise();
    await supervisor.start(noBatches);
    const first = latest();
    first.emit(EVENTS.CRASH, { error: new Error('crashed'), restart: false });
    await waitFor(() => consumers.length === 2 && latest().runConfig !== undefined);
    first.emit(EVENTS.CRASH, { error: new Error('crashed again'), restart: false });
    await settle();
    assert.equal(consumers.length, 2);
  });

  it('drops the partitions held and rebuilds when the handler of a batch fails', async () => {
    const { supervisor, consumers, latest, counts } = supervise();
    await supervisor.start(async (_payload, onDefect) => onDefect());
    await latest().runConfig?.eachBatch?.({} as EachBatchPayload);
    await waitFor(() => consumers.length === 2 && latest().runConfig !== undefined);
    assert.equal(counts.partitionsLost, 1);
  });
});

describe('createConsumerSupervisor: group membership and stop', () => {
  it('is a standby after joining without partitions and consuming after joining with some', async () => {
    const { supervisor, latest, counts, messages } = supervise();
    await supervisor.start(noBatches);
    assert.equal(supervisor.status().state, 'starting');
    latest().emit(EVENTS.GROUP_JOIN, { memberId: 'member-1', memberAssignment: {} });
    assert.equal(supervisor.status().state, 'standby');
    assert.ok(messages().includes('joined the consumer group as a standby (no partitions assigned)'));
    latest().emit(EVENTS.GROUP_JOIN, { memberId: 'member-1', memberAssignment: { runs: [0, 1], changes: [] } });
    assert.equal(supervisor.status().state, 'consuming');
    // Each join starts a new generation: the partitions held before commit nothing more.
    assert.equal(counts.partitionsLost, 2);
  });

  it('drains before leaving the group on stop, and rebuilds nothing afterwards', async () => {
    const { supervisor, consumers, latest, journal } = supervise();
    await supervisor.start(noBatches);
    await supervisor.stop(async () => {
      journal.push('drain');
    });
    assert.deepEqual(journal, ['drain', 'disconnect']);
    assert.equal(supervisor.status().state, 'stopped');
    latest().emit(EVENTS.CRASH, { error: new Error('crashed'), restart: false });
    await settle();
    assert.equal(consumers.length, 1);
  });

  it('neither drains nor disconnects on stop when no consumer runs', async () => {
    const { supervisor, journal } = supervise();
    await supervisor.stop(async () => {
      journal.push('drain');
    });
    assert.deepEqual(journal, []);
  });
});
