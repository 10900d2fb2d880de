import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import { capturingLogger } from '../../test/support/log-lines.js';
import type { Kafka } from 'kafkajs';
import type { BacklogAdmin, BrokerBacklogDeps } from './kafka-backlog.js';
import { createBrokerBacklog } from './kafka-backlog.js';

interface PartitionEnds {
  partition: number;
  low: string;
  high: string;
}

/** A stand-in for kafkajs' admin: the brokers' ends and the group's commits, as the test sets them. */
function fakeBrokers(ends: Record<string, PartitionEnds[]>, commits: Record<string, Record<number, string>>) {
  const state = { failing: false, refusingLogin: false, hanging: false, connects: 0, disconnects: 0, queries: 0 };
  let releaseHanging: (error: Error) => void = () => undefined;
  const admin: BacklogAdmin = {
    connect: () => {
      state.connects += 1;
      // kafkajs' own error for a refused SASL login (src/errors.js).
      return state.refusingLogin ? Promise.reject(Object.assign(new Error('SASL SCRAM SHA512 authentication failed'), { name: 'KafkaJSSASLAuthenticationError' })) : Promise.resolve();
    },
    disconnect: () => {
      state.disconnects += 1;
      releaseHanging(new Error('Closed connection'));
      return Promise.resolve();
    },
    fetchTopicOffsets: (topic: string) => {
      state.queries += 1;
      if (state.hanging) return new Promise((_resolve, reject) => (releaseHanging = reject));
      if (state.failing) return Promise.reject(new Error('connect ECONNREFUSED 10.0.0.1:9092'));
      return Promise.resolve((ends[topic] ?? []).map(({ partition, low, high }) => ({ partition, offset: high, high, low })));
    },
    fetchOffsets: ({ topics }: { topics?: string[] }) =>
      Promise.resolve(
        (topics ?? []).map((topic) => ({
          topic,
          partitions: (ends[topic] ?? []).map(({ partition }) => ({ partition, offset: commits[topic]?.[partition] ?? '-1', metadata: null })),
        })),
      ),
  } as unknown as BacklogAdmin;
  const client = { admin: () => admin } as unknown as Pick<Kafka, 'admin'>;
  return { state, client };
}

type Brokers = ReturnType<typeof fakeBrokers>;

function backlogOver(brokers: Brokers | (() => Brokers), overrides: Partial<BrokerBacklogDeps> = {}) {
  const current = typeof brokers === 'function' ? brokers : () => brokers;
  const renewals = { count: 0 };
  const deps: BrokerBacklogDeps = {
    client: () => Promise.resolve(current().client),
    renew: () => void (renewals.count += 1),
    groupId: 'org.agent',
    fromBeginning: true,
    nextToCommit: () => undefined,
    intervalMs: 60_000,
    logger: capturingLogger().logger,
    ...overrides,
  };
  return { backlog: createBrokerBacklog(deps), renewals };
}

async function settled(check: () => boolean): Promise<void> {
  for (let round = 0; round < 100 && !check(); round += 1) await tick();
}

describe('createBrokerBacklog', () => {
  const ends = {
    runs: [
      { partition: 0, low: '0', high: '120' },
      { partition: 1, low: '10', high: '40' },
      { partition: 2, low: '0', high: '7' },
    ],
  };

  it('counts, per partition held, the messages past the agent\'s position, else the group\'s commit, else where the offset reset starts', async () => {
    const brokers = fakeBrokers(ends, { runs: { 0: '100' } });
    const { backlog } = backlogOver(brokers, { nextToCommit: (topic, partition) => (topic === 'runs' && partition === 1 ? '35' : undefined) });
    backlog.assigned({ runs: [0, 1] });
    await settled(() => backlog.current().length > 0);
    assert.deepEqual(backlog.current(), [
      { topic: 'runs', partition: 0, lag: 20 },
      { topic: 'runs', partition: 1, lag: 5 },
    ], 'partition 2 is not held: another member reports it');

    backlog.assigned({ runs: [2] });
    assert.deepEqual(backlog.current(), [], 'the figures of partitions given up go at once');
    await settled(() => backlog.current().length > 0);
    assert.deepEqual(backlog.current(), [{ topic: 'runs', partition: 2, lag: 7 }], 'no commit, earliest: from the start of the partition');
    await backlog.stop();
    assert.equal(brokers.state.connects, 1, 'one admin connection, kept between queries');
    assert.equal(brokers.state.disconnects, 1, 'closed on stop');
  });

  it('starts a partition without a commit at its end when the offset reset is latest', async () => {
    const brokers = fakeBrokers(ends, {});
    const { backlog } = backlogOver(brokers, { fromBeginning: false });
    backlog.assigned({ runs: [2] });
    await settled(() => backlog.current().length > 0);
    assert.deepEqual(backlog.current(), [{ topic: 'runs', partition: 2, lag: 0 }]);
    await backlog.stop();
  });

  it('shows nothing rather than stale figures while the brokers do not answer, warns once, and recovers', async () => {
    const brokers = fakeBrokers(ends, { runs: { 0: '0' } });
    const { logger, lines } = capturingLogger();
    const { backlog } = backlogOver(brokers, { fromBeginning: false, intervalMs: 20, logger });
    backlog.assigned({ runs: [0] });
    await settled(() => backlog.current().length > 0);
    assert.deepEqual(backlog.current(), [{ topic: 'runs', partition: 0, lag: 120 }]);

    brokers.state.failing = true;
    const queriesBefore = brokers.state.queries;
    await settled(() => backlog.current().length === 0);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.ok(brokers.state.queries >= queriesBefore + 2, 'asked again at each interval');
    assert.deepEqual(backlog.current(), []);
    const warnings = lines.filter((line) => String(line.msg).startsWith('could not ask the brokers for the backlog'));
    assert.equal(warnings.length, 1, 'one warning per failing streak');
    assert.equal(warnings[0]?.groupId, 'org.agent');
    assert.match(String(warnings[0]?.err), /ECONNREFUSED/);

    brokers.state.failing = false;
    await settled(() => backlog.current().length > 0);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(backlog.current(), [{ topic: 'runs', partition: 0, lag: 120 }]);
    assert.ok(lines.some((line) => line.msg === 'the brokers answer the backlog query again'));
    await backlog.stop();
  });

  it('uses a new admin when the connector hands out a new client (renewed credentials)', async () => {
    const first = fakeBrokers(ends, {});
    const second = fakeBrokers(ends, {});
    let brokers = first;
    const { backlog } = backlogOver(() => brokers);
    backlog.assigned({ runs: [0] });
    await settled(() => backlog.current().length > 0);
    brokers = second;
    backlog.assigned({ runs: [0, 1] });
    await settled(() => backlog.current().length === 2);
    assert.equal(first.state.disconnects, 1, 'the old client\'s admin closed');
    assert.equal(second.state.connects, 1);
    await backlog.stop();
    assert.equal(second.state.disconnects, 1);
  });

  it('asks for credentials again when the brokers refuse them, closing the refused admin', async () => {
    const brokers = fakeBrokers(ends, {});
    brokers.state.refusingLogin = true;
    const { backlog, renewals } = backlogOver(brokers);
    backlog.assigned({ runs: [0] });
    await settled(() => renewals.count > 0);
    assert.equal(renewals.count, 1);
    assert.equal(brokers.state.disconnects, 1, 'kafkajs keeps a refused login\'s connection: closed here');
    await backlog.stop();
  });

  it('stops without a warning while a query is on the wire, and asks nothing after', async () => {
    const brokers = fakeBrokers(ends, {});
    brokers.state.hanging = true;
    const { logger, lines } = capturingLogger();
    const { backlog } = backlogOver(brokers, { intervalMs: 10, logger });
    backlog.assigned({ runs: [0] });
    await settled(() => brokers.state.queries > 0);
    await backlog.stop();
    const queries = brokers.state.queries;
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(brokers.state.queries, queries);
    assert.deepEqual(lines.filter((line) => line.level !== 'debug' && line.level !== 'info'), []);
  });
});
