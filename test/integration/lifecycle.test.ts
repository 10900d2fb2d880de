/**
 * Process life (SPEC §2, §9): nothing is lost when the agent is killed mid-run, a clean stop
 * finishes the run in hand and commits, and a broker freeze that expires the member loses nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { RUN_LOG } from '../../src/reporting/run-log-texts.js';
import { startBroker } from '../support/broker.js';
import type { Broker } from '../support/broker.js';
import kafkajs from 'kafkajs';
import type { PartitionAssigner } from 'kafkajs';
import { startAgent } from '../support/agent-process.js';
import { committedOffsets, createKafka, produce, uniqueName } from '../support/kafka.js';
import { actionRunMessage, changelogMessage, signed } from '../support/messages.js';
import { startPortStandIn } from '../support/port-stand-in.js';
import type { PortStandIn } from '../support/port-stand-in.js';
import { waitFor } from '../support/wait.js';
import { startWebhookTarget } from '../support/webhook-target.js';
import type { WebhookTarget } from '../support/webhook-target.js';
import { agentSetup, closeRealParts, healthPortOf, readinessOf, startConsumingAgent, startRealParts } from '../support/harness.js';

const { AssignerProtocol } = kafkajs;

/** Sum of committed offsets over the topic's partitions: the number of messages handled. */
async function committedCount(broker: Broker, groupId: string, topic: string): Promise<number> {
  const offsets = await committedOffsets(broker.brokers, groupId, topic);
  let total = 0;
  for (const offset of offsets.values()) if (Number(offset) > 0) total += Number(offset);
  return total;
}

describe('agent process life', () => {
  let broker: Broker;
  let port: PortStandIn;
  let target: WebhookTarget;
  /** Paths whose first request is held until released, to catch the agent mid-run. */
  const slowFirst = new Map<string, number>();

  before(async () => {
    broker = await startBroker();
    port = await startPortStandIn();
    target = await startWebhookTarget({
      secret: port.clientSecret,
      respond: (request) => {
        const delayMs = slowFirst.get(request.path);
        if (delayMs !== undefined) {
          slowFirst.delete(request.path);
          return { status: 200, delayMs };
        }
        return { status: 200 };
      },
    });
  });

  after(async () => {
    await closeRealParts({ target, port, broker });
  });

  it('delivers and reports a run again after the agent is killed with SIGKILL mid-run', async () => {
    const setup = agentSetup(broker, port);
    slowFirst.set('/killed', 10_000);
    await produce(broker.brokers, setup.runsTopic, [{ value: signed(actionRunMessage({ runId: 'r_killed', url: `${target.url}/killed` }), port.clientSecret) }]);
    const first = await startConsumingAgent(setup);
    await waitFor(() => target.requests.some((request) => request.path === '/killed'), { timeoutMs: 20_000, description: 'the first delivery' });
    first.kill('SIGKILL');
    await first.exited;
    assert.ok(!port.actionRunLogs('r_killed').includes(RUN_LOG.actionFinished), 'the first agent did not finish the run');

    const second = await startConsumingAgent(setup);
    try {
      await waitFor(() => port.actionRunLogs('r_killed').includes(RUN_LOG.actionFinished), { timeoutMs: 30_000, description: 'the run finished by the restarted agent' });
      assert.equal(target.requests.filter((request) => request.path === '/killed').length, 2, 'delivered again, not lost');
      await waitFor(async () => (await committedCount(broker, setup.groupId, setup.runsTopic)) === 1, { timeoutMs: 10_000, description: 'the offset committed' });
    } finally {
      await second.stop();
    }
  });

  it('on SIGTERM finishes the run in hand, commits every handled message and exits 0', async () => {
    const setup = agentSetup(broker, port);
    const runIds = ['r_term_1', 'r_term_2', 'r_term_3', 'r_term_4', 'r_term_5'];
    await produce(
      broker.brokers,
      setup.runsTopic,
      runIds.map((runId) => ({ value: signed(actionRunMessage({ runId, url: `${target.url}/${runId}` }), port.clientSecret) })),
    );
    const agent = await startConsumingAgent(setup);
    await waitFor(() => runIds.slice(0, 4).every((runId) => port.actionRunLogs(runId).includes(RUN_LOG.actionFinished)), { timeoutMs: 20_000, description: 'four runs done' });

    slowFirst.set('/r_term_in_hand', 1_500);
    await produce(broker.brokers, setup.runsTopic, [{ value: signed(actionRunMessage({ runId: 'r_term_in_hand', url: `${target.url}/r_term_in_hand` }), port.clientSecret) }]);
    await waitFor(() => target.requests.some((request) => request.path === '/r_term_in_hand'), { timeoutMs: 20_000, description: 'the run in hand reached its service' });
    const exit = await agent.stop(20_000);

    assert.deepEqual(exit, { code: 0, signal: null });
    assert.ok(port.actionRunLogs('r_term_in_hand').includes(RUN_LOG.actionFinished), 'the run in hand was finished before exiting');
    assert.equal(await committedCount(broker, setup.groupId, setup.runsTopic), runIds.length + 1, 'every handled message is committed');
    assert.ok(agent.logs.some((line) => line.msg === 'stopped'));
  });

  it('starts a new group at the end of the topics with KAFKA_CONSUMER_AUTO_OFFSET_RESET=largest', async () => {
    const setup = agentSetup(broker, port, { KAFKA_CONSUMER_AUTO_OFFSET_RESET: 'largest' });
    await produce(broker.brokers, setup.runsTopic, [{ value: signed(actionRunMessage({ runId: 'r_before_join', url: `${target.url}/before-join` }), port.clientSecret) }]);
    const agent = await startConsumingAgent(setup);
    try {
      // "latest" is resolved at the first fetch after joining, a moment after the join is logged:
      // keep producing until a run produced after that point is delivered.
      let sent = 0;
      await waitFor(
        async () => {
          if (target.requests.some((request) => request.path === '/after-join')) return true;
          sent += 1;
          await produce(broker.brokers, setup.runsTopic, [{ value: signed(actionRunMessage({ runId: `r_after_join_${sent}`, url: `${target.url}/after-join` }), port.clientSecret) }]);
          return false;
        },
        { timeoutMs: 20_000, intervalMs: 500, description: 'a run produced after joining' },
      );
      assert.equal(target.requests.filter((request) => request.path === '/before-join').length, 0, 'the older message is not delivered');
      assert.equal(port.apiCallsForRun('r_before_join').length, 0);
    } finally {
      await agent.stop();
    }
  });

  it('keeps consuming after the broker froze past the session timeout, delivering the uncommitted run again', async () => {
    const setup = agentSetup(broker, port);
    await produce(broker.brokers, setup.runsTopic, [{ value: signed(actionRunMessage({ runId: 'r_before_freeze', url: `${target.url}/before` }), port.clientSecret) }]);
    const agent = await startConsumingAgent(setup);
    const healthPort = await healthPortOf(agent);
    try {
      await waitFor(() => port.actionRunLogs('r_before_freeze').includes(RUN_LOG.actionFinished), { timeoutMs: 20_000, description: 'the first run' });
      // docs/development.md: a freeze longer than the session timeout expires the member; its next commit fails.
      slowFirst.set('/during', 9_000);
      await produce(broker.brokers, setup.runsTopic, [{ value: signed(actionRunMessage({ runId: 'r_during_freeze', url: `${target.url}/during` }), port.clientSecret) }]);
      await waitFor(() => target.requests.some((request) => request.path === '/during'), { timeoutMs: 20_000, description: 'the run in hand before the freeze' });
      broker.freeze();
      try {
        // Frozen until the agent itself has not heard from the broker for a session timeout (its
        // readiness says so): by then the group has expired the member, which the broker acts on
        // as soon as it runs again, before the commit of the run in hand reaches it.
        await waitFor(async () => /has not answered/.test((await readinessOf(healthPort)).checks.consumer ?? ''), {
          timeoutMs: 30_000,
          intervalMs: 250,
          description: 'the agent unready: the broker silent for a session timeout',
        });
      } finally {
        broker.thaw();
      }
      await produce(broker.brokers, setup.runsTopic, [{ value: signed(actionRunMessage({ runId: 'r_after_freeze', url: `${target.url}/after` }), port.clientSecret) }]);
      await waitFor(() => port.actionRunLogs('r_after_freeze').includes(RUN_LOG.actionFinished), { timeoutMs: 60_000, description: 'a run after the freeze' });
      await waitFor(() => port.actionRunLogs('r_during_freeze').includes(RUN_LOG.actionFinished), { timeoutMs: 10_000, description: 'the run in hand during the freeze' });
      assert.ok(
        agent.logs.some((line) => line.msg === 'offset commit failed; uncommitted messages will be delivered again'),
        'the group had expired the member, so the commit of the run in hand failed',
      );
      assert.ok(target.requests.filter((request) => request.path === '/during').length >= 2, 'the run whose commit failed was delivered again');
    } finally {
      await agent.stop();
    }
  });
});

describe('a replica without partitions', () => {
  let broker: Broker;
  let port: PortStandIn;
  let target: WebhookTarget;

  before(async () => {
    ({ broker, port, target } = await startRealParts());
  });

  after(async () => {
    await closeRealParts({ target, port, broker });
  });

  it('stays in the group as a standby and takes over the partitions when the other member leaves', async () => {
    const setup = agentSetup(broker, port);
    await produce(broker.brokers, setup.changeLogTopic, [{ value: JSON.stringify(changelogMessage({ url: `${target.url}/warm-up` })) }]);
    await produce(broker.brokers, setup.runsTopic, [{ value: signed(actionRunMessage({ runId: 'r_warm_up', url: `${target.url}/warm-up` }), port.clientSecret) }]);
    // The other replica, holding every partition: as the group leader, its assigner (under the
    // agent's protocol name) gives the agent nothing. More replicas than partitions, in effect,
    // without the many-member rebalances the mock broker cannot sustain.
    const holder = createKafka(broker.brokers, uniqueName('holder')).consumer({
      groupId: setup.groupId,
      sessionTimeout: 6000,
      maxWaitTimeInMs: 50,
      partitionAssigners: [greedyAssigner],
    });
    await holder.connect();
    await holder.subscribe({ topics: [setup.runsTopic, setup.changeLogTopic], fromBeginning: false });
    let hasHolderJoined = false;
    holder.on(holder.events.GROUP_JOIN, () => {
      hasHolderJoined = true;
    });
    await holder.run({ autoCommit: false, eachMessage: async () => undefined });
    await waitFor(() => hasHolderJoined, { timeoutMs: 20_000, description: 'the holder joining' });

    const agent = startAgent(setup.env);
    try {
      const standbyLine = await agent.waitForLog((line) => line.msg === 'joined the consumer group as a standby (no partitions assigned)', 30_000);
      assert.equal(standbyLine.level, 'info');
      await holder.disconnect();
      await agent.waitForLog((line) => line.msg === 'joined the consumer group', 30_000);
      await produce(broker.brokers, setup.runsTopic, [{ value: signed(actionRunMessage({ runId: 'r_after_takeover', url: `${target.url}/after-takeover` }), port.clientSecret) }]);
      await waitFor(() => port.actionRunLogs('r_after_takeover').includes(RUN_LOG.actionFinished), { timeoutMs: 20_000, description: 'the former standby delivering a run' });
    } finally {
      await agent.stop();
      await holder.disconnect().catch(() => undefined);
    }
  });
});

const HOLDER_MARK = 'holder';

/**
 * The mock broker completes a sync as soon as the leader's SyncGroup has given every member an
 * assignment, and then answers a follower's SyncGroup that comes after it with INVALID_REQUEST
 * (librdkafka's rdkafka_mock_cgrp.c: a SyncGroup is valid only while the group is syncing), which
 * kafkajs takes as a crash. A real broker holds the leader's sync until every member has sent its
 * own. Both JoinGroup answers leave the mock together and the agent syncs at once, so a leader
 * waiting this long before assigning lets the agent's SyncGroup come first (on loopback, by far:
 * 5 of 5 runs without a crash, against 3 of 4 with one before).
 */
const LEADER_SYNC_DELAY_MS = 500;

/** An assigner that, run by the group leader, gives every partition to the holder and none to the others. */
const greedyAssigner: PartitionAssigner = ({ cluster }) => ({
  name: 'RoundRobinAssigner',
  version: 0,
  async assign({ members, topics }) {
    await delay(LEADER_SYNC_DELAY_MS);
    return members.map(({ memberId, memberMetadata }) => {
      const assignment: Record<string, number[]> = {};
      if (AssignerProtocol.MemberMetadata.decode(memberMetadata)?.userData.toString() === HOLDER_MARK) {
        for (const topic of topics) assignment[topic] = cluster.findTopicPartitionMetadata(topic).map((partition) => partition.partitionId);
      }
      return { memberId, memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 0, assignment, userData: Buffer.alloc(0) }) };
    });
  },
  protocol({ topics }) {
    return { name: 'RoundRobinAssigner', metadata: AssignerProtocol.MemberMetadata.encode({ version: 0, topics, userData: Buffer.from(HOLDER_MARK) }) };
  },
});
