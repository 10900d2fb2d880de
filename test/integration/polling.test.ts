/**
 * The polling streamer end to end (STREAMER_NAME=POLLING): the built agent as its own
 * process, no Kafka, runs claimed from the Port API stand-in and delivered to a real HTTP service.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { RUN_LOG } from '../../src/reporting/run-log-texts.js';
import { startAgent } from '../support/agent-process.js';
import type { AgentLogLine, AgentProcess } from '../support/agent-process.js';
import { claimedActionRun, claimedNodeRun } from '../support/claimed-runs.js';
import { PORT_ROUTES, startPortStandIn } from '../support/port-stand-in.js';
import type { PortRoute, PortStandIn, PortStandInOptions, RecordedCall } from '../support/port-stand-in.js';
import { waitFor } from '../support/wait.js';
import { startWebhookTarget } from '../support/webhook-target.js';
import type { WebhookTarget } from '../support/webhook-target.js';
import { synchronousRunLogs } from '../support/run-logs.js';

const CLAIM_ACTION_RUNS: PortRoute = 'POST /v1/actions/runs/claim-pending';
const ACK_ACTION_RUNS: PortRoute = 'PATCH /v1/actions/runs/ack';
const CLAIM_NODE_RUNS: PortRoute = 'POST /v1/workflows/runs/claim-pending';
const ACK_NODE_RUNS: PortRoute = 'PATCH /v1/workflows/runs/ack';
const PROCESSING_FAILED = 'Agent failed to process the run';
/** The client secret of every Port stand-in here, so the shared service checks signatures with it. */
const CLIENT_SECRET = 'polling-test-client-secret';
/** How long the slow service takes to answer in the concurrency test. */
const SLOW_SERVICE_MS = 400;

describe('the polling streamer', () => {
  let target: WebhookTarget;
  let port: PortStandIn;
  let agent: AgentProcess | undefined;
  let activeSlowRequests = 0;
  let mostSlowRequestsAtOnce = 0;

  const requestsTo = (path: string) => target.requests.filter((request) => request.path === path);
  const url = (path: string) => `${target.url}${path}`;

  /** A fresh Port per test: its queues, ack answers and injected failures are the test's own. */
  async function startPort(options: PortStandInOptions = {}): Promise<PortStandIn> {
    port = await startPortStandIn({ clientSecret: CLIENT_SECRET, ...options });
    return port;
  }

  function pollingAgent(extra: Record<string, string> = {}): AgentProcess {
    agent = startAgent({
      PORT_ORG_ID: 'org_polling',
      PORT_CLIENT_ID: port.clientId,
      PORT_CLIENT_SECRET: port.clientSecret,
      PORT_API_BASE_URL: port.url,
      STREAMER_NAME: 'POLLING',
      POLLING_INTERVAL_SECONDS: '0.2',
      WEBHOOK_INVOKER_TIMEOUT: '3',
      WEBHOOK_MAX_RETRIES: '0',
      LOG_LEVEL: 'DEBUG',
      HEALTH_PORT: '0',
      ...extra,
    });
    return agent;
  }

  function lastLines(running: AgentProcess): string {
    return running.logs
      .slice(-30)
      .map((line) => JSON.stringify(line))
      .join('\n');
  }

  async function readiness(running: AgentProcess): Promise<{ status: number; checks: Record<string, string> }> {
    const line = await running.waitForLog((entry) => entry.msg === 'health server listening');
    const response = await fetch(`http://127.0.0.1:${String(line.port)}/readyz`);
    const body = (await response.json()) as { checks: Record<string, string> };
    return { status: response.status, checks: body.checks };
  }

  /** The times between consecutive calls. */
  const gapsMs = (calls: RecordedCall[]): number[] => calls.slice(1).map((call, index) => call.at - (calls[index]?.at ?? call.at));

  before(async () => {
    target = await startWebhookTarget({
      secret: CLIENT_SECRET,
      respond: async (request) => {
        if (request.path === '/sync-ok') return { status: 200, body: { deployed: true } };
        if (request.path === '/fail') return { status: 500, body: 'database is down' };
        if (request.path === '/node-ok') return { status: 201, body: { nodeResult: 'ok' } };
        if (request.path.startsWith('/slow')) {
          activeSlowRequests += 1;
          mostSlowRequestsAtOnce = Math.max(mostSlowRequestsAtOnce, activeSlowRequests);
          // The service's own latency, not a wait of the test.
          await new Promise((resolve) => setTimeout(resolve, SLOW_SERVICE_MS));
          activeSlowRequests -= 1;
          return { status: 200 };
        }
        return { status: 202 };
      },
    });
  });

  afterEach(async () => {
    await agent?.stop();
    agent = undefined;
    await port?.close();
  });

  after(async () => {
    await target.close();
  });

  it('claims, acknowledges, delivers and reports an action run, claim and ack carrying x-port-reserved-usage', async () => {
    await startPort();
    port.enqueueActionRuns([
      claimedActionRun({ runId: 'r_poll_sync', url: url('/sync-ok'), synchronized: true, headers: { 'X-Team': 'payments' } }),
      claimedActionRun({ runId: 'r_poll_async', url: url('/async') }),
    ]);
    const agentProcess = pollingAgent({ POLLING_RUNS_BATCH_SIZE: '10' });
    await waitFor(() => port.actionRunLogs('r_poll_sync').includes(RUN_LOG.actionFinished) && port.actionRunLogs('r_poll_async').includes(RUN_LOG.actionFinished), {
      timeoutMs: 15_000,
      description: () => `both runs finished; the agent's last lines:\n${lastLines(agentProcess)}`,
    });

    assert.deepEqual(port.actionRunLogs('r_poll_sync'), [...synchronousRunLogs(RUN_LOG.invocationSucceeded(200)), RUN_LOG.actionFinished]);
    assert.deepEqual(port.actionRunResponses('r_poll_sync'), [{ deployed: true }]);
    assert.deepEqual(port.actionRunPatches('r_poll_sync'), [{ status: 'SUCCESS' }]);
    assert.deepEqual(port.actionRunPatches('r_poll_async'), [], 'no status for an asynchronous success');

    const [request] = requestsTo('/sync-ok');
    assert.ok(request, 'the service got the run');
    assert.equal(request.signatureValid, true, 'the outgoing request is signed as on the Kafka path');
    assert.equal(request.headers['x-team'], 'payments');
    const body = request.json as { context: unknown; headers: unknown; payload: { action: { invocationMethod: unknown } } };
    assert.deepEqual(body.context, { entity: 'checkout', blueprint: 'service', runId: 'r_poll_sync' });
    assert.deepEqual(body.headers, { 'X-Team': 'payments' });
    // Rebuilt as the official agent does: exactly these five keys, in this order, without `agent`.
    assert.deepEqual(body.payload.action.invocationMethod, { type: 'WEBHOOK', url: url('/sync-ok'), synchronized: true, method: 'POST', headers: { 'X-Team': 'payments' } });
    assert.deepEqual(Object.keys(body.payload.action.invocationMethod as object), ['type', 'url', 'synchronized', 'method', 'headers']);

    const [claim] = port.callsTo(CLAIM_ACTION_RUNS);
    assert.deepEqual(claim?.body, { installationId: '_PORT_EXEC_AGENT', limit: 10, invocationMethod: 'WEBHOOK' });
    assert.deepEqual(port.callsTo(CLAIM_NODE_RUNS)[0]?.body, { installationId: '_PORT_EXEC_AGENT', limit: 10 });
    const acks = port.callsTo(ACK_ACTION_RUNS);
    assert.deepEqual(
      acks.map((call) => call.body),
      [{ runIds: ['r_poll_sync'] }, { runIds: ['r_poll_async'] }],
      'one ack call per run',
    );
    for (const call of [...port.callsTo(CLAIM_ACTION_RUNS), ...port.callsTo(CLAIM_NODE_RUNS), ...acks]) {
      assert.equal(call.hasReservedUsageHeader, true, `${call.method} ${call.path} carries x-port-reserved-usage: true`);
    }
    const firstRunLog = port.calls.find((call) => call.route === 'POST /v1/actions/runs/:runId/logs');
    assert.ok(acks.every((ack) => firstRunLog !== undefined && ack.at <= firstRunLog.at), 'every run of the batch is acked before any is processed');
    assert.ok(
      port.calls.filter((call) => call.route?.includes('/logs') || call.route?.startsWith('PATCH /v1/actions/runs/:')).every((call) => !call.hasReservedUsageHeader),
      'reports do not carry the claim header',
    );
    assert.deepEqual(port.callsTo('PATCH /v1/organization')[0]?.body, { settings: { portAgentStreamerName: 'POLLING' } });

    const ready = await readiness(agentProcess);
    assert.equal(ready.status, 200, JSON.stringify(ready.checks));
    assert.equal(ready.checks.consumer, 'consuming');
  });

  it('completes a workflow node run', async () => {
    await startPort();
    port.enqueueNodeRuns([claimedNodeRun({ runId: 'wfnr_poll_ok', url: url('/node-ok') })]);
    const agentProcess = pollingAgent();
    await waitFor(() => port.nodeRunPatches('wfnr_poll_ok').length === 1, {
      timeoutMs: 15_000,
      description: () => `the node run patched; the agent's last lines:\n${lastLines(agentProcess)}`,
    });
    assert.deepEqual(port.nodeRunPatches('wfnr_poll_ok'), [{ status: 'COMPLETED', result: 'SUCCESS', output: { response: { status: 201, data: { nodeResult: 'ok' } } } }]);
    await waitFor(() => port.nodeRunLogs('wfnr_poll_ok').length === 4, { description: 'the last run log' });
    assert.deepEqual(port.nodeRunLogs('wfnr_poll_ok'), [
      RUN_LOG.nodeRunReceived,
      RUN_LOG.sending,
      RUN_LOG.invocationSucceeded(201),
      RUN_LOG.nodeRunFinished,
    ]);
    const [ack] = port.callsTo(ACK_NODE_RUNS);
    assert.deepEqual(ack?.body, { nodeRunIdentifier: 'wfnr_poll_ok' });
    assert.equal(ack?.hasReservedUsageHeader, true);
    const [request] = requestsTo('/node-ok');
    assert.deepEqual((request?.json as { context: unknown }).context, {
      runId: 'wfnr_poll_ok',
      nodeConfig: { type: 'WEBHOOK', agent: true, url: url('/node-ok'), synchronized: true },
    });
  });

  it('skips a run Port does not acknowledge: nothing sent, nothing reported', async () => {
    await startPort({
      actionRunAck: (runId) => (runId === 'r_poll_not_acked' ? 0 : 1),
      nodeRunAck: (id) => id !== 'wfnr_poll_not_acked',
    });
    port.enqueueActionRuns([claimedActionRun({ runId: 'r_poll_not_acked', url: url('/not-acked') }), claimedActionRun({ runId: 'r_poll_acked', url: url('/acked') })]);
    port.enqueueNodeRuns([claimedNodeRun({ runId: 'wfnr_poll_not_acked', url: url('/node-not-acked') })]);
    const agentProcess = pollingAgent();
    await waitFor(() => port.actionRunLogs('r_poll_acked').includes(RUN_LOG.actionFinished), { timeoutMs: 15_000, description: () => `the acked run finished:\n${lastLines(agentProcess)}` });
    await agentProcess.waitForLog((line) => line.msg === 'run skipped: Port did not acknowledge it (another agent took it)' && line.runId === 'wfnr_poll_not_acked');
    assert.equal(requestsTo('/not-acked').length, 0);
    assert.equal(requestsTo('/node-not-acked').length, 0);
    assert.equal(port.apiCallsForRun('r_poll_not_acked').length, 0);
    assert.equal(port.apiCallsForRun('wfnr_poll_not_acked').length, 0);
    assert.ok(agentProcess.logs.some((line) => line.msg === 'run skipped: Port did not acknowledge it (another agent took it)' && line.runId === 'r_poll_not_acked'));
  });

  it('polls again at once after a full batch', async () => {
    await startPort();
    const runIds = ['r_batch_1', 'r_batch_2', 'r_batch_3', 'r_batch_4', 'r_batch_5'];
    port.enqueueActionRuns(runIds.map((runId) => claimedActionRun({ runId, url: url(`/batch/${runId}`) })));
    // The interval alone would take two minutes for three batches.
    const agentProcess = pollingAgent({ POLLING_RUNS_BATCH_SIZE: '2', POLLING_INTERVAL_SECONDS: '60' });
    await waitFor(() => runIds.every((runId) => port.actionRunLogs(runId).includes(RUN_LOG.actionFinished)), {
      timeoutMs: 15_000,
      description: () => `every run of three batches finished; the agent's last lines:\n${lastLines(agentProcess)}`,
    });
    const claims = port.callsTo(CLAIM_ACTION_RUNS);
    assert.equal(claims.length, 3, 'two full batches, then one short one, then the interval');
    assert.ok((claims[2]?.at ?? Infinity) - (claims[0]?.at ?? 0) < 10_000, 'no interval between full batches');
    assert.equal(runIds.filter((runId) => requestsTo(`/batch/${runId}`).length === 1).length, 5);
  });

  it('backs off ever longer while claims fail, then recovers', async () => {
    await startPort();
    port.failNext(CLAIM_ACTION_RUNS, 4, { status: 503 });
    port.enqueueActionRuns([claimedActionRun({ runId: 'r_after_outage', url: url('/after-outage') })]);
    const agentProcess = pollingAgent({
      POLLING_INITIAL_BACKOFF_SECONDS: '0.2',
      POLLING_BACKOFF_FACTOR: '2',
      POLLING_MAX_BACKOFF_SECONDS: '5',
      POLLING_BACKOFF_JITTER_FACTOR: '0',
      POLLING_INTERVAL_SECONDS: '60',
    });
    const notReady = await waitFor(
      async () => {
        const ready = await readiness(agentProcess);
        return ready.status === 503 && ready.checks.consumer === 'reconnecting' && ready;
      },
      { timeoutMs: 10_000, description: 'readiness failing while polling fails' },
    );
    assert.equal(notReady.checks.consumer, 'reconnecting');
    await waitFor(() => port.actionRunLogs('r_after_outage').includes(RUN_LOG.actionFinished), {
      timeoutMs: 15_000,
      description: () => `the run delivered after the outage; the agent's last lines:\n${lastLines(agentProcess)}`,
    });
    const backoffs = agentProcess.logs.filter((line) => line.msg === 'polling failed; backing off').map((line) => line.retryInMs);
    assert.deepEqual(backoffs, [200, 400, 800, 1600]);
    const claims = port.callsTo(CLAIM_ACTION_RUNS);
    assert.deepEqual(
      claims.map((call) => call.status),
      [503, 503, 503, 503, 200],
    );
    const gaps = gapsMs(claims);
    gaps.forEach((gap, index) => assert.ok(gap >= (backoffs[index] as number) - 5, `gap ${index} (${gap} ms) is at least its backoff`));
    assert.ok(gaps.every((gap, index) => index === 0 || gap > (gaps[index - 1] as number)), `growing gaps: ${gaps.join(', ')}`);
    assert.ok(agentProcess.logs.some((line: AgentLogLine) => line.msg === 'polling recovered'));
    const ready = await readiness(agentProcess);
    assert.equal(ready.status, 200, JSON.stringify(ready.checks));
  });

  it('exits 0 after POLLING_MAX_FAILURE_DURATION_SECONDS of continuous failure', async () => {
    await startPort();
    port.failFor(60_000, { status: 503 }, { except: PORT_ROUTES.filter((route) => route !== CLAIM_ACTION_RUNS) });
    const agentProcess = pollingAgent({
      POLLING_INITIAL_BACKOFF_SECONDS: '0.1',
      POLLING_MAX_BACKOFF_SECONDS: '0.3',
      POLLING_BACKOFF_JITTER_FACTOR: '0',
      POLLING_MAX_FAILURE_DURATION_SECONDS: '1.5',
    });
    const exit = await agentProcess.exitWithin(20_000);
    assert.deepEqual(exit, { code: 0, signal: null }, `exit 0 (stderr: ${agentProcess.stderr()}); last lines:\n${lastLines(agentProcess)}`);
    const claims = port.callsTo(CLAIM_ACTION_RUNS);
    assert.ok(claims.length >= 5, `kept trying meanwhile (${claims.length} claims)`);
    assert.ok(claims.every((call) => call.status === 503));
    const failingFor = (claims.at(-1)?.at ?? 0) - (claims[0]?.at ?? 0);
    assert.ok(failingFor >= 1_500, `gave up after the maximum failure duration (${failingFor} ms)`);
    const gaveUp = agentProcess.logs.find((line) => line.msg === 'polling kept failing for POLLING_MAX_FAILURE_DURATION_SECONDS; giving up');
    assert.equal(gaveUp?.level, 'error');
  });

  it('reports FAILURE for a run that fails processing, once', async () => {
    await startPort();
    port.enqueueActionRuns([
      { id: 'r_poll_broken', status: 'IN_PROGRESS' },
      claimedActionRun({ runId: 'r_poll_service_fails', url: url('/fail'), synchronized: true }),
      // Claimed and acked, so no other agent will see it: failed rather than left in progress.
      claimedActionRun({ runId: 'r_poll_not_for_agent', url: url('/not-for-agent'), agent: false }),
    ]);
    port.enqueueNodeRuns([{ identifier: 'wfnr_poll_broken', config: 'WEBHOOK' }]);
    const agentProcess = pollingAgent();
    await waitFor(
      () =>
        port.actionRunPatches('r_poll_broken').length === 1 &&
        port.nodeRunPatches('wfnr_poll_broken').length === 1 &&
        port.actionRunPatches('r_poll_service_fails').length === 1 &&
        port.actionRunPatches('r_poll_not_for_agent').length === 1,
      { timeoutMs: 15_000, description: () => `the three runs reported failed; the agent's last lines:\n${lastLines(agentProcess)}` },
    );
    assert.deepEqual(port.actionRunPatches('r_poll_broken'), [{ status: 'FAILURE', summary: PROCESSING_FAILED }]);
    assert.deepEqual(port.actionRunPatches('r_poll_not_for_agent'), [{ status: 'FAILURE', summary: PROCESSING_FAILED }]);
    assert.deepEqual(requestsTo('/not-for-agent'), []);
    assert.deepEqual(port.actionRunLogs('r_poll_broken'), [PROCESSING_FAILED]);
    assert.deepEqual(port.nodeRunPatches('wfnr_poll_broken'), [{ status: 'COMPLETED', result: 'FAILED' }]);
    assert.deepEqual(port.nodeRunLogs('wfnr_poll_broken'), [PROCESSING_FAILED]);
    assert.deepEqual(port.actionRunPatches('r_poll_service_fails'), [{ status: 'FAILURE', summary: RUN_LOG.webhookFailureSummary(500, 'database is down') }]);
    // A few more polls: nothing is reported twice.
    const claimsSoFar = port.callsTo(CLAIM_ACTION_RUNS).length;
    await waitFor(() => port.callsTo(CLAIM_ACTION_RUNS).length >= claimsSoFar + 3, { description: 'three more polls' });
    assert.equal(port.actionRunPatches('r_poll_service_fails').length, 1);
    assert.equal(port.actionRunPatches('r_poll_broken').length, 1);
    const line = agentProcess.logs.find((entry) => entry.msg === 'run failed: the claimed run cannot be processed' && entry.runId === 'r_poll_broken');
    assert.equal(line?.reason, 'the claimed run has no payload object');
  });

  it('reports FAILURE for a claimed action run no mapping matches: no other agent will see it', async () => {
    await startPort();
    const directory = mkdtempSync(join(tmpdir(), 'polling-unmatched-'));
    const mappingPath = join(directory, 'mapping.json');
    writeFileSync(mappingPath, JSON.stringify([{ enabled: '.payload.action.identifier == "another_action"' }]));
    port.enqueueActionRuns([claimedActionRun({ runId: 'r_poll_unmatched', url: url('/unmatched') })]);
    const agentProcess = pollingAgent({ CONTROL_THE_PAYLOAD_CONFIG_PATH: mappingPath });
    await waitFor(() => port.actionRunPatches('r_poll_unmatched').length === 1, {
      timeoutMs: 15_000,
      description: () => `the unmatched run reported failed; the agent's last lines:\n${lastLines(agentProcess)}`,
    });
    assert.deepEqual(port.actionRunPatches('r_poll_unmatched'), [
      { status: 'FAILURE', summary: "The agent found no payload mapping for this action run. It was claimed through Port's polling API, so no other agent will handle it." },
    ]);
    assert.deepEqual(requestsTo('/unmatched'), [], 'nothing is sent');
    const line = agentProcess.logs.find((entry) => entry.runId === 'r_poll_unmatched' && entry.level === 'warn');
    assert.match(String(line?.msg), /^action run failed: no payload mapping matches it/);
  });

  it('has several runs of a slow service in flight at once, up to AGENT_MAX_IN_FLIGHT', async () => {
    await startPort();
    activeSlowRequests = 0;
    mostSlowRequestsAtOnce = 0;
    const runIds = Array.from({ length: 9 }, (_, index) => `r_slow_${index}`);
    port.enqueueActionRuns(runIds.map((runId) => claimedActionRun({ runId, url: url('/slow') })));
    const agentProcess = pollingAgent({ AGENT_MAX_IN_FLIGHT: '3' });
    await waitFor(() => runIds.every((runId) => port.actionRunLogs(runId).includes(RUN_LOG.actionFinished)), {
      timeoutMs: 20_000,
      description: () => `every slow run finished; the agent's last lines:\n${lastLines(agentProcess)}`,
    });
    assert.equal(mostSlowRequestsAtOnce, 3);
    const slow = requestsTo('/slow');
    assert.equal(slow.length, 9);
    // One at a time would take 9 × 400 ms.
    const spanMs = (slow.at(-1)?.at ?? 0) - (slow[0]?.at ?? 0);
    assert.ok(spanMs < 8 * SLOW_SERVICE_MS, `the requests overlapped (${spanMs} ms from first to last)`);
  });

  it('on SIGTERM stops polling, finishes the runs in hand and exits 0', async () => {
    await startPort();
    const runIds = ['r_stop_1', 'r_stop_2', 'r_stop_3'];
    port.enqueueActionRuns(runIds.map((runId) => claimedActionRun({ runId, url: url('/slow-stop') })));
    const agentProcess = pollingAgent();
    await waitFor(() => requestsTo('/slow-stop').length === 3, { timeoutMs: 15_000, description: () => `the three slow requests sent:\n${lastLines(agentProcess)}` });
    const claimsBefore = port.callsTo(CLAIM_ACTION_RUNS).length;
    agentProcess.kill('SIGTERM');
    const exit = await agentProcess.exitWithin(20_000);
    assert.deepEqual(exit, { code: 0, signal: null }, `exit 0 (stderr: ${agentProcess.stderr()})`);
    assert.deepEqual(
      runIds.filter((runId) => !port.actionRunLogs(runId).includes(RUN_LOG.actionFinished)),
      [],
      'every run in hand finished and was reported',
    );
    assert.ok(port.callsTo(CLAIM_ACTION_RUNS).length <= claimsBefore + 1, 'no polling after the signal');
  });
});
