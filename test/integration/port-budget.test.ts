/**
 * The agent against a Port that is far away and rationed, as the real one is: answers that take
 * time, 500 calls per 10 s with x-ratelimit headers and 429s past them, 1 MiB bodies at most, and
 * outages. Reports must never slow deliveries, never go missing, and never break the budget.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RUN_LOG } from '../../src/reporting/run-log-texts.js';
import { startAgent } from '../support/agent-process.js';
import type { AgentProcess } from '../support/agent-process.js';
import { startBroker } from '../support/broker.js';
import type { Broker } from '../support/broker.js';
import { claimedActionRun } from '../support/claimed-runs.js';
import { produce } from '../support/kafka.js';
import { actionRunMessage, signed } from '../support/messages.js';
import { startPortStandIn } from '../support/port-stand-in.js';
import type { PortStandIn } from '../support/port-stand-in.js';
import { waitFor } from '../support/wait.js';
import { startWebhookTarget } from '../support/webhook-target.js';
import type { WebhookTarget } from '../support/webhook-target.js';
import { agentSetup, closeRealParts, startConsumingAgent, startRealParts } from '../support/harness.js';

/** Port's real rate: 15,000 calls per 5 minutes, in windows short enough for a test. */
const PORT_RATE = { limit: 500, periodSeconds: 10 };
/** After SIGTERM the agent exits within its grace time and this much for winding down. */
const EXIT_MARGIN_MS = 2_000;

function runIdsOf(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, index) => `${prefix}_${index}`);
}

async function produceRuns(broker: Broker, topic: string, port: PortStandIn, runIds: string[], url: string, synchronized = true): Promise<void> {
  await produce(
    broker.brokers,
    topic,
    runIds.map((runId, index) => ({ value: signed(actionRunMessage({ runId, url, synchronized }), port.clientSecret), partition: index % 4 })),
  );
}

const hasFinalStatus = (port: PortStandIn, runId: string): boolean => ['SUCCESS', 'FAILURE'].includes(port.actionRunStatus(runId) ?? '');

/** GET on the agent's health server (`/readyz`, `/metrics`). */
async function fromHealthServer(agent: AgentProcess, path: string): Promise<Response> {
  const listening = agent.logs.find((line) => line.msg === 'health server listening');
  return fetch(`http://127.0.0.1:${String(listening?.port)}${path}`);
}

describe('reporting to a Port that rations its API', () => {
  let broker: Broker;
  let port: PortStandIn;
  let target: WebhookTarget;

  before(async () => {
    broker = await startBroker();
    port = await startPortStandIn({ rateLimit: PORT_RATE });
    target = await startWebhookTarget({ secret: port.clientSecret, respond: () => ({ status: 200, body: { deployed: true } }) });
  });

  after(async () => {
    await closeRealParts({ target, port, broker });
  });

  it('reports every run of a 300-run burst at 500 calls per 10 s, with at most 1 % of calls answered 429, ready all along', async () => {
    const setup = agentSetup(broker, port);
    const agent = await startConsumingAgent(setup);
    try {
      const runIds = runIdsOf('r_burst', 300);
      const callsBefore = port.calls.length;
      const limitedBefore = port.rateLimitedCalls();
      await produceRuns(broker, setup.runsTopic, port, runIds, `${target.url}/burst`);
      await agent.waitForLog((line) => line.msg === "waiting for Port's API budget: Port calls are queued, final statuses first", 30_000);
      assert.equal((await fromHealthServer(agent, '/readyz')).status, 200, 'ready while waiting for the budget');
      await waitFor(() => runIds.every((runId) => hasFinalStatus(port, runId)), { timeoutMs: 150_000, description: 'every final status' });
      const calls = port.calls.length - callsBefore;
      const limited = port.rateLimitedCalls() - limitedBefore;
      assert.ok(limited <= calls / 100, `${limited} of ${calls} calls were answered 429`);
      for (const runId of runIds) assert.equal(port.actionRunStatus(runId), 'SUCCESS');
      await agent.waitForLog((line) => line.msg === "Port's API budget allows calls again: no call is waiting", 30_000);
      const waits = agent.logs.filter((line) => line.msg === "waiting for Port's API budget: Port calls are queued, final statuses first");
      assert.ok(waits.length <= 3, `${waits.length} warn lines for one burst`);
      assert.ok(!agent.logs.some((line) => line.msg === 'Port API call failed; the report is given up'));
    } finally {
      await agent.stop();
    }
  });
});

describe('reporting to a Port that is far away', () => {
  let broker: Broker;
  let port: PortStandIn;
  let target: WebhookTarget;

  before(async () => {
    broker = await startBroker();
    port = await startPortStandIn();
    target = await startWebhookTarget({
      secret: port.clientSecret,
      respond: (request) => (request.path === '/huge' ? { status: 500, body: 'e'.repeat(2_000_000) } : { status: 200, body: { ok: true } }),
    });
  });

  after(async () => {
    await closeRealParts({ target, port, broker });
  });

  it('sends each request before Port has answered a single call about its run', async () => {
    port.setAnswerDelay(300);
    const setup = agentSetup(broker, port);
    const agent = await startConsumingAgent(setup);
    try {
      const runIds = runIdsOf('r_far', 20);
      await produceRuns(broker, setup.runsTopic, port, runIds, `${target.url}/far`);
      await waitFor(() => runIds.every((runId) => hasFinalStatus(port, runId)), { timeoutMs: 60_000, description: 'every final status' });
      for (const runId of runIds) {
        const received = target.requests.find((request) => (request.json as { context?: { runId?: string } }).context?.runId === runId);
        const firstAnswer = Math.min(...port.apiCallsForRun(runId).map((call) => call.answeredAt ?? Infinity));
        assert.ok(received !== undefined && received.at < firstAnswer, `${runId} reached its service only after Port answered`);
      }
    } finally {
      port.setAnswerDelay(0);
      await agent.stop();
    }
  });

  it('ends a run whose service answers a 2 MB error in a FAILURE that Port accepts', async () => {
    const setup = agentSetup(broker, port, { WEBHOOK_MAX_RETRIES: '0' });
    const agent = await startConsumingAgent(setup);
    try {
      await produceRuns(broker, setup.runsTopic, port, ['r_huge'], `${target.url}/huge`);
      await waitFor(() => port.actionRunStatus('r_huge') === 'FAILURE', { timeoutMs: 30_000, description: 'the FAILURE reported' });
      assert.equal(port.refusedAsTooLarge(), 0, 'no call over 1 MiB');
      const [patch] = port.actionRunPatches('r_huge') as { summary: string }[];
      assert.match(patch?.summary ?? '', /^Failed to invoke the webhook with status code: 500\. Response: e+… \[cut by the agent: \d+ characters in all\]$/);
      assert.match(String(port.actionRunResponses('r_huge')[0]), /^The response was not reported: it is 2000002 bytes as JSON/);
      assert.ok(port.actionRunLogs('r_huge').some((message) => message.startsWith(RUN_LOG.invocationFailed(500, 'eee')) && message.includes('[cut by the agent:')));
    } finally {
      await agent.stop();
    }
  });
});

describe('reporting through a Port outage', () => {
  let broker: Broker;
  let port: PortStandIn;
  let target: WebhookTarget;

  before(async () => {
    ({ broker, port, target } = await startRealParts({ respond: () => ({ status: 200, body: { ok: true } }) }));
  });

  after(async () => {
    await closeRealParts({ target, port, broker });
  });

  const deliveredRuns = (runIds: string[]) => runIds.filter((runId) => target.requests.some((request) => (request.json as { context?: { runId?: string } }).context?.runId === runId));

  it('delivers during a 60 s outage and reports every run once Port is back', async () => {
    const setup = agentSetup(broker, port);
    const agent = await startConsumingAgent(setup);
    try {
      const runIds = runIdsOf('r_outage', 30);
      port.failFor(60_000, { status: 503 });
      const outageStartedAt = Date.now();
      await produceRuns(broker, setup.runsTopic, port, runIds, `${target.url}/outage`);
      await waitFor(() => deliveredRuns(runIds).length === runIds.length, { timeoutMs: 15_000, description: 'every run delivered during the outage' });
      assert.ok(Date.now() - outageStartedAt < 30_000);
      assert.equal(runIds.filter((runId) => hasFinalStatus(port, runId)).length, 0, 'Port heard nothing yet');
      assert.match(await (await fromHealthServer(agent, '/metrics')).text(), /^port_agent_runs_awaiting_reports 30$/m);
      await agent.waitForLog((line) => line.msg === 'Port API calls are failing; they are retried and reports wait', 10_000);
      await waitFor(() => runIds.every((runId) => hasFinalStatus(port, runId)), { timeoutMs: 120_000, description: 'every final status after the outage' });
      for (const runId of runIds) assert.deepEqual(port.actionRunLogs(runId).at(-1), RUN_LOG.actionFinished);
      assert.ok(agent.logs.some((line) => line.msg === 'Port API answers again'));
      assert.equal(agent.logs.filter((line) => line.msg === 'Port API calls are failing; they are retried and reports wait').length, 1, 'one warn line for the outage');
    } finally {
      await agent.stop();
    }
  });

  it('redelivers and reports the runs whose reports were waiting when the agent was killed', async () => {
    const setup = agentSetup(broker, port);
    const first = await startConsumingAgent(setup);
    const runIds = runIdsOf('r_killed', 5);
    port.failFor(600_000, { status: 503 }, { except: ['POST /v1/auth/access_token', 'PATCH /v1/organization'] });
    await produceRuns(broker, setup.runsTopic, port, runIds, `${target.url}/killed`);
    await waitFor(() => deliveredRuns(runIds).length === runIds.length, { timeoutMs: 15_000, description: 'every run delivered' });
    first.kill('SIGKILL');
    await first.exited;
    port.failFor(1, { status: 503 });
    const second = await startConsumingAgent(setup);
    try {
      await waitFor(() => runIds.every((runId) => hasFinalStatus(port, runId)), { timeoutMs: 60_000, description: 'every run reported after the restart' });
      for (const runId of runIds) {
        const deliveries = target.requests.filter((request) => (request.json as { context?: { runId?: string } }).context?.runId === runId).length;
        assert.equal(deliveries, 2, `${runId} delivered again after the restart`);
      }
    } finally {
      await second.stop();
    }
  });

  it('on SIGTERM waits for the queued final reports within the grace time, and commits them', async () => {
    const setup = agentSetup(broker, port, { AGENT_SHUTDOWN_GRACE_SECONDS: '20' });
    const agent = await startConsumingAgent(setup);
    const runIds = runIdsOf('r_term', 5);
    port.failFor(4_000, { status: 503 }, { except: ['POST /v1/auth/access_token'] });
    await produceRuns(broker, setup.runsTopic, port, runIds, `${target.url}/term`);
    await waitFor(() => deliveredRuns(runIds).length === runIds.length, { timeoutMs: 15_000, description: 'every run delivered' });
    assert.equal(runIds.filter((runId) => hasFinalStatus(port, runId)).length, 0);
    agent.kill('SIGTERM');
    const exit = await agent.exitWithin(20_000 + EXIT_MARGIN_MS);
    assert.equal(exit.code, 0);
    assert.ok(runIds.every((runId) => hasFinalStatus(port, runId)), 'every final report went before the exit');
    // Committed: a new agent of the same group delivers nothing again.
    const requestsBefore = target.requests.length;
    const next = await startConsumingAgent(setup);
    try {
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      assert.equal(target.requests.length, requestsBefore);
    } finally {
      await next.stop();
    }
  });

  it('exits within AGENT_SHUTDOWN_GRACE_SECONDS when Port does not answer at all', async () => {
    const setup = agentSetup(broker, port, { AGENT_SHUTDOWN_GRACE_SECONDS: '3' });
    const agent = await startConsumingAgent(setup);
    try {
      port.failFor(600_000, { hang: true }, { except: ['POST /v1/auth/access_token'] });
      await produceRuns(broker, setup.runsTopic, port, ['r_hang'], `${target.url}/hang`);
      await waitFor(() => deliveredRuns(['r_hang']).length === 1, { timeoutMs: 15_000, description: 'the run delivered' });
      agent.kill('SIGTERM');
      await agent.exitWithin(3_000 + EXIT_MARGIN_MS);
    } finally {
      port.failFor(1, { status: 503 });
      await agent.stop();
    }
  });

  it('exits within AGENT_SHUTDOWN_GRACE_SECONDS when Port never answers from the start', async () => {
    port.failFor(600_000, { hang: true });
    const agent = startAgent(agentSetup(broker, port, { AGENT_SHUTDOWN_GRACE_SECONDS: '3' }).env);
    try {
      await agent.waitForLog((line) => line.msg === 'health server listening', 15_000);
      await waitFor(() => port.calls.some((call) => call.route === 'POST /v1/auth/access_token' && call.at > Date.now() - 60_000), { timeoutMs: 10_000, description: 'the agent calling Port' });
      agent.kill('SIGTERM');
      assert.equal((await agent.exitWithin(3_000 + EXIT_MARGIN_MS)).code, 0);
    } finally {
      port.failFor(1, { status: 503 });
      await agent.stop();
    }
  });
});

describe('polling within the budget', () => {
  let port: PortStandIn;
  let target: WebhookTarget;

  before(async () => {
    port = await startPortStandIn({ rateLimit: { limit: 40, periodSeconds: 2, resetFormat: 'epoch' } });
    target = await startWebhookTarget({ secret: port.clientSecret, respond: () => ({ status: 200, body: { ok: true } }) });
  });

  after(async () => {
    await target.close();
    await port.close();
  });

  it('claims, acks and reports within the same budget, without running into 429s', async () => {
    const runIds = runIdsOf('r_polled', 20);
    port.enqueueActionRuns(runIds.map((runId) => claimedActionRun({ runId, url: `${target.url}/polled`, synchronized: true })));
    const agent = startAgent({
      PORT_ORG_ID: 'org_polling',
      PORT_CLIENT_ID: port.clientId,
      PORT_CLIENT_SECRET: port.clientSecret,
      PORT_API_BASE_URL: port.url,
      STREAMER_NAME: 'POLLING',
      POLLING_INTERVAL_SECONDS: '1',
      POLLING_RUNS_BATCH_SIZE: '5',
      AGENT_RUN_LOGS: 'minimal',
      HEALTH_PORT: '0',
      LOG_LEVEL: 'DEBUG',
    });
    try {
      await waitFor(() => runIds.every((runId) => hasFinalStatus(port, runId)), { timeoutMs: 90_000, description: 'every polled run reported' });
      assert.ok(port.rateLimitedCalls() <= 2, `${port.rateLimitedCalls()} calls answered 429`);
    } finally {
      await agent.stop();
    }
  });
});
