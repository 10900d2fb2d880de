/**
 * Issue 6: the running agent's health server — liveness, readiness (joined its group and heard
 * from Port; not while the broker is gone), Prometheus metrics that promtool accepts — and the
 * W3C trace context that follows a run from its message to the internal service and the logs.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { RUN_LOG } from '../../src/reporting/run-log-texts.js';
import type { AgentLogLine, AgentProcess } from '../support/agent-process.js';
import { startBroker } from '../support/broker.js';
import { samplesOf } from '../support/exposition.js';
import type { Broker } from '../support/broker.js';
import { produce } from '../support/kafka.js';
import { actionRunMessage, signed } from '../support/messages.js';
import { startPortStandIn } from '../support/port-stand-in.js';
import type { PortStandIn } from '../support/port-stand-in.js';
import { waitFor } from '../support/wait.js';
import { startWebhookTarget } from '../support/webhook-target.js';
import type { WebhookTarget } from '../support/webhook-target.js';
import { agentSetup, closeRealParts, healthPortOf, startConsumingAgent, startRealParts } from '../support/harness.js';
import type { AgentSetup } from '../support/harness.js';

const INCOMING_TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const INCOMING_TRACEPARENT = `00-${INCOMING_TRACE_ID}-00f067aa0ba902b7-01`;

interface Answer {
  status: number;
  text: string;
}

async function get(port: number, path: string): Promise<Answer> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: response.status, text: await response.text() };
}

/** The values of the samples of `name` carrying `labels` (others may be there too). */
function samples(metrics: string, name: string, labels: Record<string, string>): number[] {
  return samplesOf(metrics, name, labels).map((found) => found.value);
}

/** The one sample of `name` with `labels`, e.g. `port_agent_messages_total{topic="t",outcome="delivered"}`. */
function sample(metrics: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples(metrics, name, labels);
  assert.ok(found.length <= 1, `one sample of ${name} ${JSON.stringify(labels)}`);
  return found[0];
}

describe('the health server of a running agent', () => {
  let broker: Broker;
  let port: PortStandIn;
  let target: WebhookTarget;
  let setup: AgentSetup;
  let agent: AgentProcess;
  let healthPort: number;

  before(async () => {
    broker = await startBroker();
    port = await startPortStandIn();
    target = await startWebhookTarget({
      secret: port.clientSecret,
      respond: (request) => (request.path === '/fail' ? { status: 503 } : { status: 200, body: { ok: true } }),
    });
    setup = agentSetup(broker, port, { WEBHOOK_MAX_RETRIES: '1' });
    agent = await startConsumingAgent(setup);
    healthPort = await healthPortOf(agent);
  });

  after(async () => {
    await agent?.stop();
    await closeRealParts({ target, port, broker });
  });

  it('is alive and ready once it has joined its group and Port has answered', async () => {
    const liveness = await get(healthPort, '/healthz');
    assert.equal(liveness.status, 200, liveness.text);
    assert.equal((JSON.parse(liveness.text) as { status: string }).status, 'ok');
    const readiness = await waitFor(async () => {
      const answer = await get(healthPort, '/readyz');
      return answer.status === 200 ? answer : undefined;
    }, { description: 'readiness' });
    assert.deepEqual(JSON.parse(readiness.text), { status: 'ok', checks: { consumer: 'consuming', portApi: 'answered' } });
    assert.equal((await get(healthPort, '/nowhere')).status, 404);
  });

  it('counts messages, requests, retries and Port calls, and promtool accepts the output', async () => {
    await produce(broker.brokers, setup.runsTopic, [
      { key: 'a', value: signed(actionRunMessage({ runId: 'r_metrics_ok', url: `${target.url}/ok`, synchronized: true }), port.clientSecret) },
      { key: 'b', value: signed(actionRunMessage({ runId: 'r_metrics_fail', url: `${target.url}/fail`, synchronized: true }), port.clientSecret) },
      { key: 'c', value: signed(actionRunMessage({ runId: 'r_metrics_skip', url: `${target.url}/ok`, agent: false }), port.clientSecret) },
    ]);
    await waitFor(() => port.actionRunLogs('r_metrics_ok').includes(RUN_LOG.actionFinished) && port.actionRunPatches('r_metrics_fail').length === 1, {
      timeoutMs: 20_000,
      description: 'both runs reported',
    });
    const metrics = await waitFor(async () => {
      const text = (await get(healthPort, '/metrics')).text;
      const counted = samples(text, 'port_agent_messages_total', { topic: setup.runsTopic }).reduce((total, value) => total + value, 0);
      return counted >= 3 ? text : undefined;
    }, { description: 'the messages counted' });

    assert.equal(sample(metrics, 'port_agent_messages_total', { topic: setup.runsTopic, outcome: 'delivered' }), 1);
    assert.equal(sample(metrics, 'port_agent_messages_total', { topic: setup.runsTopic, outcome: 'failed' }), 1);
    assert.equal(sample(metrics, 'port_agent_messages_total', { topic: setup.runsTopic, outcome: 'skipped' }), 1);
    assert.equal(sample(metrics, 'port_agent_webhook_requests_total', { status_class: '2xx' }), 1);
    assert.equal(sample(metrics, 'port_agent_webhook_requests_total', { status_class: '5xx' }), 2, 'the 503 and its retry');
    assert.equal(sample(metrics, 'port_agent_webhook_retries_total'), 1);
    const host = new URL(target.url).host;
    assert.equal(sample(metrics, 'port_agent_webhook_requests_total', { host, status_class: '2xx' }), 1, 'by target host');
    assert.equal(sample(metrics, 'port_agent_webhook_request_duration_seconds_count', { host }), 3);
    assert.equal(sample(metrics, 'port_agent_webhook_retries_total', { host }), 1);
    // Produced → final report, for the two runs (the skipped one has no report).
    assert.equal(sample(metrics, 'port_agent_run_duration_seconds_count', { outcome: 'delivered' }), 1);
    assert.equal(sample(metrics, 'port_agent_run_duration_seconds_count', { outcome: 'failed' }), 1);
    assert.ok((sample(metrics, 'port_agent_port_api_call_duration_seconds_count', { route: 'PATCH /v1/organization' }) ?? 0) === 1);
    assert.equal(sample(metrics, 'port_agent_ready'), 1);
    assert.ok((sample(metrics, 'port_agent_port_api_calls_total', { route: 'POST /v1/actions/runs/:runId/logs', status_class: '2xx' }) ?? 0) >= 10);
    assert.equal(sample(metrics, 'port_agent_port_api_calls_total', { route: 'PATCH /v1/organization', status_class: '2xx' }), 1);
    assert.equal(sample(metrics, 'port_agent_port_token_requests_total'), 1);
    assert.equal(sample(metrics, 'port_agent_webhook_requests_in_flight'), 0);
    assert.equal(sample(metrics, 'port_agent_messages_in_hand'), 0);
    assert.ok(sample(metrics, 'port_agent_build_info', { version: '0.1.0' }) === 1, 'build info with the package version');
    assert.ok(sample(metrics, 'process_resident_memory_bytes') !== undefined, 'process metrics, under their standard names');
    // Every message of the partitions it holds is handled: no lag left.
    const lags = samplesOf(metrics, 'port_agent_consumer_lag');
    assert.ok(lags.length > 0, 'a lag per partition held');
    for (const lag of lags) assert.equal(lag.value, 0, JSON.stringify(lag));
    // The brokers asked at the join: the partitions held, nothing left on them.
    const backlog = await waitFor(async () => {
      const found = samplesOf((await get(healthPort, '/metrics')).text, 'port_agent_consumer_backlog');
      return found.length > 0 ? found : undefined;
    }, { description: 'the backlog asked of the brokers' });
    for (const partition of backlog) assert.equal(partition.value, 0, JSON.stringify(partition));

    // promtool reads the exposition from standard input and exits non-zero on any problem. Its one
    // finding is about Node's standard gauges named `_total`, kept so stock Node.js dashboards work.
    const verdict = spawnSync('promtool', ['check', 'metrics'], { input: metrics, encoding: 'utf8' });
    const findings = `${verdict.stdout}${verdict.stderr}`.split('\n').filter((line) => line.trim() !== '');
    const unexpected = findings.filter((line) => !/^nodejs_active_(handles|requests|resources)_total non-counter metrics should not have "_total" suffix$/.test(line));
    assert.deepEqual(unexpected, [], `promtool: ${findings.join('\n')}`);
  });

  it('continues the trace of a message and puts its trace id on the run log lines', async () => {
    await produce(broker.brokers, setup.runsTopic, [
      { key: 't', value: signed(actionRunMessage({ runId: 'r_traced', url: `${target.url}/traced` }), port.clientSecret), headers: { traceparent: INCOMING_TRACEPARENT } },
      { key: 'u', value: signed(actionRunMessage({ runId: 'r_new_trace', url: `${target.url}/untraced` }), port.clientSecret) },
    ]);
    const traced = await waitFor(() => target.requests.find((request) => request.path === '/traced'), { timeoutMs: 20_000, description: 'the traced run' });
    const untraced = await waitFor(() => target.requests.find((request) => request.path === '/untraced'), { timeoutMs: 20_000, description: 'the other run' });

    const sentTraceparent = String(traced.headers.traceparent);
    assert.match(sentTraceparent, new RegExp(`^00-${INCOMING_TRACE_ID}-[0-9a-f]{16}-01$`));
    assert.notEqual(sentTraceparent, INCOMING_TRACEPARENT, 'a span of its own');
    const linesOf = (runId: string): AgentLogLine[] => agent.logs.filter((line) => line.runId === runId);
    await waitFor(() => linesOf('r_traced').some((line) => line.msg === 'request delivered'), { description: 'the delivery logged' });
    for (const line of linesOf('r_traced')) assert.equal(line.traceId, INCOMING_TRACE_ID, JSON.stringify(line));

    const newTraceId = String(untraced.headers.traceparent).split('-')[1] ?? '';
    assert.match(newTraceId, /^[0-9a-f]{32}$/);
    assert.notEqual(newTraceId, INCOMING_TRACE_ID);
    await waitFor(() => linesOf('r_new_trace').some((line) => line.msg === 'request delivered'), { description: 'the delivery logged' });
    for (const line of linesOf('r_new_trace')) assert.equal(line.traceId, newTraceId);
  });
});

describe('the backlog of an agent that holds all it may', () => {
  const WAITING_RUNS = 20;
  let parts: Awaited<ReturnType<typeof startRealParts>>;
  let agent: AgentProcess;
  let releaseService: () => void = () => undefined;
  const serviceReleased = new Promise<void>((resolve) => {
    releaseService = resolve;
  });

  before(async () => {
    parts = await startRealParts({ respond: async () => {
      await serviceReleased;
      return { status: 200 };
    } });
    const setup = agentSetup(parts.broker, parts.port, { AGENT_MAX_IN_FLIGHT: '1', KAFKA_CONSUMER_AUTO_OFFSET_RESET: 'earliest' });
    // Produced before the agent joins: the brokers hold them all, the agent fetches only what it may hold.
    await produce(parts.broker.brokers, setup.runsTopic, Array.from({ length: WAITING_RUNS }, (_, index) => ({
      key: `k${index}`,
      value: signed(actionRunMessage({ runId: `r_waiting_${index}`, url: `${parts.target.url}/slow` }), parts.port.clientSecret),
    })));
    agent = await startConsumingAgent(setup);
  });

  after(async () => {
    releaseService();
    await agent?.stop();
    await closeRealParts(parts);
  });

  it('counts on the brokers what the agent has not fetched, while the lag sees only what it holds', async () => {
    const healthPort = await healthPortOf(agent);
    const metrics = await waitFor(async () => {
      const text = (await get(healthPort, '/metrics')).text;
      return samples(text, 'port_agent_consumer_backlog', {}).length > 0 && parts.target.requests.length > 0 ? text : undefined;
    }, { description: 'the backlog asked of the brokers and the first run sent' });
    const backlog = samples(metrics, 'port_agent_consumer_backlog', {}).reduce((total, value) => total + value, 0);
    assert.equal(backlog, WAITING_RUNS, 'nothing finished: every message is still on the brokers past the group');
    assert.ok((sample(metrics, 'port_agent_messages_in_hand') ?? Infinity) < WAITING_RUNS, 'the agent holds only a few of them');
  });
});

describe('the health of an agent whose broker is gone', () => {
  let broker: Broker;
  let port: PortStandIn;
  let agent: AgentProcess;

  before(async () => {
    broker = await startBroker();
    port = await startPortStandIn();
    agent = await startConsumingAgent(agentSetup(broker, port));
  });

  after(async () => {
    await agent?.stop();
    await closeRealParts({ port });
  });

  it('stays alive but turns unready, and says why', async () => {
    // The README says so: with TEST_KAFKA_BROKERS this one test cannot kill the broker.
    assert.ok(broker.pid !== undefined, 'killing the broker is not supported with an external broker');
    const healthPort = await healthPortOf(agent);
    await waitFor(async () => (await get(healthPort, '/readyz')).status === 200, { description: 'ready first' });
    await broker.stop();
    const unready = await waitFor(async () => {
      const answer = await get(healthPort, '/readyz');
      return answer.status === 503 ? answer : undefined;
    }, { timeoutMs: 30_000, description: 'readiness to fail' });
    const body = JSON.parse(unready.text) as { status: string; checks: { consumer: string } };
    assert.equal(body.status, 'failing');
    assert.match(body.checks.consumer, /reconnecting|has not answered/);
    const liveness = await get(healthPort, '/healthz');
    assert.equal(liveness.status, 200, `still alive: ${liveness.text}`);
    const metrics = (await get(healthPort, '/metrics')).text;
    assert.equal(sample(metrics, 'port_agent_ready'), 0, 'the ready gauge says what /readyz says');
    assert.deepEqual(samples(metrics, 'port_agent_consumer_backlog', {}), [], 'no backlog figures from a member that lost its brokers');
  });
});
