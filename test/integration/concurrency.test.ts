/**
 * Concurrency with safe commits (issue 5): many runs of one partition at once within the limit,
 * the committed offset never past an unfinished run, change-log events of one key in order.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RUN_LOG } from '../../src/reporting/run-log-texts.js';
import type { AgentProcess } from '../support/agent-process.js';
import { startBroker } from '../support/broker.js';
import type { Broker } from '../support/broker.js';
import { committedOffsets, produce } from '../support/kafka.js';
import { actionRunMessage, changelogMessage, signed } from '../support/messages.js';
import { startPortStandIn } from '../support/port-stand-in.js';
import type { PortStandIn } from '../support/port-stand-in.js';
import { waitFor } from '../support/wait.js';
import { startWebhookTarget } from '../support/webhook-target.js';
import type { ReceivedRequest, WebhookTarget } from '../support/webhook-target.js';
import { agentSetup, closeRealParts, startConsumingAgent, startRealParts } from '../support/harness.js';
import type { AgentSetup } from '../support/harness.js';

const MAX_IN_FLIGHT = 10;
const SERVICE_DELAY_MS = 300;

/** Most requests open at once, from their arrival times and the service's fixed delay. */
function peakConcurrency(requests: ReceivedRequest[], delayMs: number): number {
  const arrivals = requests.map((request) => request.at).sort((a, b) => a - b);
  let peak = 0;
  for (const [index, start] of arrivals.entries()) {
    let open = 0;
    for (let next = index; next < arrivals.length && (arrivals[next] as number) < start + delayMs; next += 1) open += 1;
    peak = Math.max(peak, open);
  }
  return peak;
}

describe('concurrent handling with safe commits', () => {
  let broker: Broker;
  let port: PortStandIn;
  let target: WebhookTarget;
  let agent: AgentProcess;
  let setup: AgentSetup;
  const slow = new Set<string>();
  let flakyAnswers = 0;

  before(async () => {
    broker = await startBroker();
    port = await startPortStandIn();
    target = await startWebhookTarget({
      secret: port.clientSecret,
      respond: (request) => {
        if (slow.has(request.path)) return { status: 200, delayMs: 2000 };
        if (request.path === '/flaky') {
          flakyAnswers += 1;
          return flakyAnswers <= 2 ? { status: 503, body: 'warming up' } : { status: 200, body: { ok: true } };
        }
        const delayMatch = /^\/changelog\/(\d+)$/.exec(request.path);
        if (delayMatch) return { status: 200, delayMs: 200 - Number(delayMatch[1]) * 40 };
        return { status: 200, delayMs: SERVICE_DELAY_MS };
      },
    });
    setup = agentSetup(broker, port, { AGENT_MAX_IN_FLIGHT: String(MAX_IN_FLIGHT) });
    agent = await startConsumingAgent(setup);
  });

  after(async () => {
    await agent?.stop();
    await closeRealParts({ target, port, broker });
  });

  it('handles the runs of one partition concurrently, never more than AGENT_MAX_IN_FLIGHT at once', async () => {
    const runIds = Array.from({ length: 40 }, (_, index) => `r_parallel_${index}`);
    const startedAt = Date.now();
    await produce(broker.brokers, setup.runsTopic, runIds.map((runId) => ({ value: signed(actionRunMessage({ runId, url: `${target.url}/parallel/${runId}` }), port.clientSecret), partition: 1 })));
    await waitFor(() => runIds.every((runId) => port.actionRunLogs(runId).includes(RUN_LOG.actionFinished)), { timeoutMs: 30_000, description: 'the parallel runs' });
    const elapsedMs = Date.now() - startedAt;
    const requests = target.requests.filter((request) => request.path.startsWith('/parallel/'));
    assert.equal(requests.length, 40);
    const peak = peakConcurrency(requests, SERVICE_DELAY_MS);
    assert.ok(peak <= MAX_IN_FLIGHT, `at most ${MAX_IN_FLIGHT} at once (saw ${peak})`);
    assert.ok(peak >= MAX_IN_FLIGHT / 2, `many at once (saw ${peak})`);
    // One at a time would take 40 × 300 ms = 12 s.
    assert.ok(elapsedMs < 8000, `took ${elapsedMs} ms`);
  });

  it('never commits past a run that is not finished, then commits everything', async () => {
    slow.add('/slow/r_slow');
    const runIds = ['r_slow', 'r_fast_1', 'r_fast_2', 'r_fast_3'];
    const before = (await committedOffsets(broker.brokers, setup.groupId, setup.runsTopic)).get(2);
    const base = before === undefined || before === '-1' ? 0 : Number(before);
    await produce(broker.brokers, setup.runsTopic, runIds.map((runId) => ({ value: signed(actionRunMessage({ runId, url: `${target.url}/${runId === 'r_slow' ? 'slow' : 'fast'}/${runId}` }), port.clientSecret), partition: 2 })));
    await waitFor(() => runIds.slice(1).every((runId) => port.actionRunLogs(runId).includes(RUN_LOG.actionFinished)), { timeoutMs: 20_000, description: 'the fast runs behind the slow one' });
    assert.ok(!port.actionRunLogs('r_slow').includes(RUN_LOG.actionFinished), 'the slow run is still in flight');
    const whileSlow = (await committedOffsets(broker.brokers, setup.groupId, setup.runsTopic)).get(2);
    assert.ok(whileSlow === undefined || whileSlow === '-1' || Number(whileSlow) <= base, `committed ${whileSlow}, not past the slow run at ${base}`);
    await waitFor(() => port.actionRunLogs('r_slow').includes(RUN_LOG.actionFinished), { timeoutMs: 20_000, description: 'the slow run' });
    await waitFor(async () => (await committedOffsets(broker.brokers, setup.groupId, setup.runsTopic)).get(2) === String(base + 4), { timeoutMs: 10_000, description: 'all four committed' });
  });

  it('retries a run whose service answers 503, with a run log line per retry, and reports the final answer', async () => {
    await produce(broker.brokers, setup.runsTopic, [{ value: signed(actionRunMessage({ runId: 'r_flaky', url: `${target.url}/flaky`, synchronized: true }), port.clientSecret) }]);
    await waitFor(() => port.actionRunLogs('r_flaky').includes(RUN_LOG.actionFinished), { timeoutMs: 30_000, description: 'the flaky run' });
    const logs = port.actionRunLogs('r_flaky');
    assert.deepEqual(logs.slice(0, 5), [
      RUN_LOG.actionReceived,
      RUN_LOG.preparing,
      RUN_LOG.sending,
      RUN_LOG.retrying('status code 503', 1, 5),
      RUN_LOG.retrying('status code 503', 2, 4),
    ]);
    assert.equal(logs[5], RUN_LOG.invocationSucceeded(200));
    assert.deepEqual(port.actionRunPatches('r_flaky'), [{ status: 'SUCCESS' }]);
    const keys = target.requests.filter((request) => request.path === '/flaky').map((request) => request.headers['idempotency-key']);
    assert.deepEqual(keys, ['r_flaky', 'r_flaky', 'r_flaky']);
    assert.equal(agent.logs.filter((line) => line.msg === 'request failed; retrying' && line.runId === 'r_flaky').length, 2);
  });

  it('keeps change-log events of one key in order', async () => {
    // Later events answer faster: without ordering they would overtake the earlier ones.
    await produce(broker.brokers, setup.changeLogTopic, [0, 1, 2, 3, 4].map((index) => ({ key: 'entity-checkout', value: JSON.stringify({ ...changelogMessage({ url: `${target.url}/changelog/${index}` }), sequence: index }) })));
    await waitFor(() => target.requests.filter((request) => request.path.startsWith('/changelog/')).length === 5, { timeoutMs: 20_000, description: 'the change-log events' });
    const order = target.requests.filter((request) => request.path.startsWith('/changelog/')).map((request) => (request.json as { sequence: number }).sequence);
    assert.deepEqual(order, [0, 1, 2, 3, 4]);
  });
});

describe('a clean rebalance', () => {
  let broker: Broker;
  let port: PortStandIn;
  let target: WebhookTarget;

  before(async () => {
    ({ broker, port, target } = await startRealParts({ respond: () => ({ status: 200, delayMs: 50 }) }));
  });

  after(async () => {
    await closeRealParts({ target, port, broker });
  });

  // On Apache Kafka a member's commits of its current generation are accepted while the group
  // prepares a rebalance, so the runs finished then are not delivered again. The mock broker
  // refuses them ("The group is rebalancing") and thrashes through several rebalances, so here
  // runs are delivered again after each refused commit: this test holds the agent to losing
  // nothing, and to repeating only where the broker refused a commit.
  it('loses nothing when a second replica joins under load', async () => {
    const setup = agentSetup(broker, port, { AGENT_MAX_IN_FLIGHT: '5' });
    const runIds = Array.from({ length: 300 }, (_, index) => `r_rebalance_${index}`);
    const first = await startConsumingAgent(setup);
    let second: AgentProcess | undefined;
    try {
      await produce(broker.brokers, setup.runsTopic, runIds.map((runId, index) => ({ value: signed(actionRunMessage({ runId, url: `${target.url}/rebalance` }), port.clientSecret), partition: index % 4 })));
      await waitFor(() => target.requests.length >= 40, { timeoutMs: 20_000, description: 'the first runs under way' });
      second = await startConsumingAgent(setup);
      await waitFor(() => runIds.every((runId) => port.actionRunLogs(runId).includes(RUN_LOG.actionFinished)), { timeoutMs: 60_000, description: 'every run finished' });
      const deliveries = new Map<string, number>();
      for (const request of target.requests) {
        const runId = (request.json as { context: { runId: string } }).context.runId;
        deliveries.set(runId, (deliveries.get(runId) ?? 0) + 1);
      }
      const repeated = [...deliveries].filter(([, count]) => count > 1).map(([runId]) => runId);
      const refusedCommits = [...first.logs, ...second.logs].filter((line) => line.msg === 'offset commit failed; uncommitted messages will be delivered again').length;
      // Repeats only where the broker refused a commit; never a loss.
      assert.ok(repeated.length === 0 || refusedCommits > 0, `${repeated.length} runs repeated without a refused commit`);
      assert.equal(deliveries.size, runIds.length, 'every run delivered');
      assert.ok(second.logs.some((line) => line.msg === 'request delivered'), 'the second replica took a share');
    } finally {
      await Promise.all([first.stop(), second?.stop()]);
    }
  });
});
