/**
 * The agent's main path end to end (SPEC §2–§7): real broker, real HTTP services, the Port
 * stand-in, and the built agent as its own process, checked from the outside.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RUN_LOG } from '../../src/reporting/run-log-texts.js';
import type { AgentProcess } from '../support/agent-process.js';
import { startBroker } from '../support/broker.js';
import type { Broker } from '../support/broker.js';
import { produce } from '../support/kafka.js';
import { actionRunMessage, changelogMessage, nodeRunMessage, signed } from '../support/messages.js';
import { startPortStandIn } from '../support/port-stand-in.js';
import type { PortStandIn } from '../support/port-stand-in.js';
import { waitFor } from '../support/wait.js';
import { refusedUrl, startWebhookTarget } from '../support/webhook-target.js';
import type { WebhookTarget } from '../support/webhook-target.js';
import { agentSetup, closeRealParts, startConsumingAgent, startRealParts } from '../support/harness.js';
import type { AgentSetup } from '../support/harness.js';
import { synchronousRunLogs } from '../support/run-logs.js';

describe('the agent delivers runs and reports them to Port', () => {
  let broker: Broker;
  let port: PortStandIn;
  let target: WebhookTarget;
  let agent: AgentProcess;
  let setup: AgentSetup;
  let deadUrl: string;

  const runsWith = (path: string) => target.requests.filter((request) => request.path === path);

  before(async () => {
    broker = await startBroker();
    port = await startPortStandIn();
    deadUrl = `${await refusedUrl()}/refused`;
    target = await startWebhookTarget({
      secret: port.clientSecret,
      respond: (request) => {
        if (request.path === '/sync-ok') return { status: 200, body: { deployed: true, version: '1.4.2' } };
        if (request.path === '/sync-fail') return { status: 500, body: 'database is down' };
        if (request.path === '/node-fail') return { status: 502, body: 'bad gateway' };
        if (request.path === '/node-ok') return { status: 201, body: { nodeResult: 'ok' } };
        if (request.path === '/hang') return { hang: true };
        return { status: 202 };
      },
    });
    // One attempt per request here: the run logs and summaries of SPEC §7 as the official agent writes them.
    setup = agentSetup(broker, port, { WEBHOOK_INVOKER_TIMEOUT: '1', WEBHOOK_MAX_RETRIES: '0' });
    const secret = port.clientSecret;
    const url = (path: string) => `${target.url}${path}`;
    await produce(broker.brokers, setup.runsTopic, [
      { key: 'a', value: signed(actionRunMessage({ runId: 'r_async', url: url('/async') }), secret) },
      { key: 'b', value: signed(actionRunMessage({ runId: 'r_sync_ok', url: url('/sync-ok'), synchronized: true }), secret) },
      { key: 'c', value: signed(actionRunMessage({ runId: 'r_sync_fail', url: url('/sync-fail'), synchronized: true }), secret) },
      { key: 'd', value: signed(actionRunMessage({ runId: 'r_refused', url: deadUrl, synchronized: true }), secret) },
      { key: 'd2', value: signed(actionRunMessage({ runId: 'r_timeout', url: url('/hang'), synchronized: true }), secret) },
      { key: 'd3', value: signed(actionRunMessage({ runId: 'r_invalid_url', url: 'not a url' }), secret) },
      { key: 'e', value: signed(actionRunMessage({ runId: 'r_not_agent', url: url('/not-agent'), agent: false }), secret) },
      { key: 'f', value: JSON.stringify({ ...actionRunMessage({ runId: 'r_bad_sig', url: url('/bad-signature') }), headers: { 'X-Port-Signature': 'v1,AAAA', 'X-Port-Timestamp': 1713277889 } }) },
      { key: 'g', value: signed(actionRunMessage({ runId: 'r_put', url: url('/put'), method: 'PUT' }), secret) },
      { key: 'h', value: signed(actionRunMessage({ runId: 'r_patch', url: url('/patch'), method: 'PATCH' }), secret) },
      { key: 'i', value: signed(actionRunMessage({ runId: 'r_delete', url: url('/delete'), method: 'DELETE' }), secret) },
      { key: 'j', value: signed(actionRunMessage({ runId: 'r_get', url: url('/get'), method: 'GET' }), secret) },
      { key: 'k', value: signed(actionRunMessage({ runId: 'r_headers', url: url('/headers'), headers: { 'X-Team': 'payments' } }), secret) },
      { key: 'l', value: signed(nodeRunMessage({ runId: 'wfnr_ok', url: url('/node-ok') }), secret) },
      { key: 'm', value: signed(nodeRunMessage({ runId: 'wfnr_fail', url: url('/node-fail') }), secret) },
      // Same key, same partition: the broken message must not hold back the valid one after it.
      { key: 'stuck', value: '{"this is": not json' },
      { key: 'garbled', value: '{"context": {"runId": "r_garbled"}, "payload": {"action": ' },
      { key: 'stuck', value: signed(actionRunMessage({ runId: 'r_after_garbage', url: url('/after-garbage') }), secret) },
    ]);
    await produce(broker.brokers, setup.changeLogTopic, [{ value: JSON.stringify(changelogMessage({ url: url('/changelog'), runId: 'r_subject' })) }]);
    agent = await startConsumingAgent(setup);
    const finishedRuns = ['r_async', 'r_sync_ok', 'r_put', 'r_patch', 'r_delete', 'r_get', 'r_headers', 'r_after_garbage'];
    const failedRuns = ['r_sync_fail', 'r_refused', 'r_timeout', 'r_invalid_url', 'r_garbled'];
    const missing = (): string[] => [
      ...finishedRuns.filter((runId) => !port.actionRunLogs(runId).includes(RUN_LOG.actionFinished)).map((runId) => `${runId} finished`),
      ...failedRuns.filter((runId) => port.actionRunPatches(runId).length !== 1).map((runId) => `${runId} patched once`),
      ...['wfnr_ok', 'wfnr_fail'].filter((runId) => port.nodeRunPatches(runId).length !== 1).map((runId) => `${runId} patched once`),
      ...(runsWith('/changelog').length === 1 ? [] : ['the change-log event delivered once']),
      ...['r_not_agent', 'r_bad_sig'].filter((runId) => !agent.logs.some((line) => line.runId === runId)).map((runId) => `a log line of ${runId}`),
    ];
    await waitFor(() => missing().length === 0, {
      timeoutMs: 30_000,
      description: () => `every run handled; still missing: ${missing().join(', ')}; the agent's last lines:\n${agent.logs.slice(-40).map((line) => JSON.stringify(line)).join('\n')}`,
    });
  });

  after(async () => {
    await agent?.stop();
    await closeRealParts({ target, port, broker });
  });

  it('delivers an asynchronous run, signed over the exact body, and leaves its status to the service', () => {
    const [request] = runsWith('/async');
    assert.ok(request, 'the service got the request');
    assert.equal(request.method, 'POST');
    assert.equal(request.signatureValid, true);
    assert.equal(request.headers['content-type'], 'application/json');
    const body = request.json as Record<string, unknown>;
    assert.deepEqual(body.context, { entity: 'checkout', blueprint: 'service', runId: 'r_async' });
    assert.deepEqual(body.headers, {}, 'the signature headers are removed from the body');
    assert.doesNotMatch(request.rawBody, /\n|": /, 'the body is compact JSON');
    assert.deepEqual(port.actionRunLogs('r_async'), [
      RUN_LOG.actionReceived,
      RUN_LOG.preparing,
      RUN_LOG.sending,
      RUN_LOG.invocationSucceeded(202),
      RUN_LOG.actionFinished,
    ]);
    assert.deepEqual(port.actionRunPatches('r_async'), [], 'no status for an asynchronous success');
  });

  it('reports the response and SUCCESS of a synchronous run, with every run log in order', () => {
    assert.deepEqual(port.actionRunLogs('r_sync_ok'), [...synchronousRunLogs(RUN_LOG.invocationSucceeded(200)), RUN_LOG.actionFinished]);
    assert.deepEqual(port.actionRunResponses('r_sync_ok'), [{ deployed: true, version: '1.4.2' }]);
    assert.deepEqual(port.actionRunPatches('r_sync_ok'), [{ status: 'SUCCESS' }]);
  });

  it('reports FAILURE with the exact summary when a synchronous run gets a 500', () => {
    assert.deepEqual(port.actionRunPatches('r_sync_fail'), [
      { status: 'FAILURE', summary: RUN_LOG.webhookFailureSummary(500, 'database is down') },
    ]);
    assert.deepEqual(port.actionRunLogs('r_sync_fail'), [...synchronousRunLogs(RUN_LOG.invocationFailed(500, 'database is down'))]);
    assert.deepEqual(port.actionRunResponses('r_sync_fail'), ['database is down']);
  });

  it('reports FAILURE with a clear summary when the service refuses connections', () => {
    const patches = port.actionRunPatches('r_refused') as { status: string; summary: string }[];
    assert.equal(patches.length, 1);
    assert.equal(patches[0]?.status, 'FAILURE');
    assert.match(patches[0]?.summary ?? '', /could not deliver the request to POST http:\/\/127\.0\.0\.1:\d+\/refused: connection refused \(ECONNREFUSED\)/);
    const logs = port.actionRunLogs('r_refused');
    assert.deepEqual(logs.slice(0, 3), [RUN_LOG.actionReceived, RUN_LOG.preparing, RUN_LOG.sending]);
    assert.equal(logs[3], patches[0]?.summary, 'the summary is also a run log line');
    assert.ok(!logs.includes(RUN_LOG.actionFinished));
  });

  it('reports FAILURE when the service does not answer within WEBHOOK_INVOKER_TIMEOUT', () => {
    const [patch] = port.actionRunPatches('r_timeout') as { status: string; summary: string }[];
    assert.equal(patch?.status, 'FAILURE');
    assert.match(patch?.summary ?? '', /could not deliver the request to POST http:\/\/127\.0\.0\.1:\d+\/hang: the request timed out after 1 s \(after 1 attempt\)/);
  });

  it('reports FAILURE for a run whose URL is invalid, without sending anything', () => {
    const [patch] = port.actionRunPatches('r_invalid_url') as { status: string; summary: string }[];
    assert.equal(patch?.status, 'FAILURE');
    assert.equal(patch?.summary, 'The agent could not deliver the request to POST (a malformed URL of 9 characters): invalid URL: it is not an absolute URL (after 1 attempt).');
  });

  it('sends nothing for agent: false', () => {
    assert.equal(runsWith('/not-agent').length, 0);
    assert.equal(port.apiCallsForRun('r_not_agent').length, 0);
    assert.ok(agent.logs.some((line) => line.msg === 'message skipped: not for an agent' && line.runId === 'r_not_agent'));
  });

  it('drops a message with a bad signature: nothing sent, nothing reported', () => {
    assert.equal(runsWith('/bad-signature').length, 0);
    assert.equal(port.apiCallsForRun('r_bad_sig').length, 0);
    const line = agent.logs.find((entry) => entry.msg === 'message dropped: invalid signature');
    assert.ok(line, 'a warning says why');
    assert.equal(line.level, 'warn');
    assert.equal(line.topic, setup.runsTopic);
    assert.equal(typeof line.partition, 'number');
    assert.equal(typeof line.offset, 'string');
  });

  for (const [path, method] of [['/put', 'PUT'], ['/patch', 'PATCH'], ['/delete', 'DELETE'], ['/get', 'GET']] as const) {
    it(`sends ${method} with the signed body`, () => {
      const [request] = runsWith(path);
      assert.ok(request, `${method} reached the service`);
      assert.equal(request.method, method);
      assert.equal(request.signatureValid, true);
      assert.equal((request.json as { context: { runId: string } }).context.runId, `r_${method.toLowerCase()}`);
    });
  }

  it('sends the headers declared in the invocation method', () => {
    const [request] = runsWith('/headers');
    assert.equal(request?.headers['x-team'], 'payments');
  });

  it('delivers a change-log event and reports nothing about it', () => {
    const [request] = runsWith('/changelog');
    assert.ok(request);
    assert.equal((request.json as { diff: unknown }).diff !== undefined, true);
    assert.equal(port.apiCallsForRun('r_subject').length, 0, 'the run named in a change-log event is its subject, not an invocation');
  });

  it('completes a workflow node run with its response', () => {
    assert.deepEqual(port.nodeRunLogs('wfnr_ok'), [
      RUN_LOG.nodeRunReceived,
      RUN_LOG.sending,
      RUN_LOG.invocationSucceeded(201),
      RUN_LOG.nodeRunFinished,
    ]);
    assert.deepEqual(port.nodeRunPatches('wfnr_ok'), [{ status: 'COMPLETED', result: 'SUCCESS', output: { response: { status: 201, data: { nodeResult: 'ok' } } } }]);
  });

  it('fails a workflow node run whose service answers an error', () => {
    assert.deepEqual(port.nodeRunPatches('wfnr_fail'), [{ status: 'COMPLETED', result: 'FAILED' }]);
    assert.deepEqual(port.nodeRunLogs('wfnr_fail'), [
      RUN_LOG.nodeRunReceived,
      RUN_LOG.sending,
      RUN_LOG.invocationFailed(502, 'bad gateway'),
    ]);
  });

  it('skips a message that is not JSON and delivers the valid one behind it', () => {
    assert.equal(runsWith('/after-garbage').length, 1);
    const line = agent.logs.find((entry) => entry.msg === 'message dropped: it cannot be read');
    assert.ok(line, 'the broken message is logged');
    assert.equal(line.topic, setup.runsTopic);
    assert.match(String(line.err), /not valid JSON/);
  });

  it('reports FAILURE for an unreadable message whose run id can be found', () => {
    const [patch] = port.actionRunPatches('r_garbled') as { status: string; summary: string }[];
    assert.equal(patch?.status, 'FAILURE');
    assert.match(patch?.summary ?? '', /^The agent could not read the run's message: not valid JSON: /);
    assert.equal(port.actionRunLogs('r_garbled')[0], patch?.summary);
  });

  it('asks Port for one access token for the whole series of runs', () => {
    assert.equal(port.tokenRequests(), 1);
  });

  it('fetches a new token once Port rejects the cached one, and reports the run', async () => {
    port.expireTokens();
    await produce(broker.brokers, setup.runsTopic, [{ value: signed(actionRunMessage({ runId: 'r_after_expiry', url: `${target.url}/after-expiry` }), port.clientSecret) }]);
    await waitFor(() => port.actionRunLogs('r_after_expiry').includes(RUN_LOG.actionFinished), { timeoutMs: 20_000, description: 'the run after token expiry' });
    assert.equal(port.tokenRequests(), 2);
  });

  it('announces its streamer to Port at start', () => {
    const calls = port.callsTo('PATCH /v1/organization');
    assert.deepEqual(calls.map((call) => call.body), [{ settings: { portAgentStreamerName: 'KAFKA' } }]);
  });

  it('never logs the client secret or the token', () => {
    const text = JSON.stringify(agent.logs) + agent.stderr();
    assert.ok(!text.includes(port.clientSecret), 'no client secret');
    for (const call of port.calls) {
      const authorization = call.headers.authorization;
      if (authorization) assert.ok(!text.includes(authorization.replace('Bearer ', '')), 'no token');
    }
  });
});

describe('the agent with DETAILED_LOGGING=false and a failing Port API', () => {
  let broker: Broker;
  let port: PortStandIn;
  let target: WebhookTarget;
  let agent: AgentProcess;

  before(async () => {
    ({ broker, port, target } = await startRealParts({ respond: () => ({ status: 503, body: 'internal detail: db password is hunter2' }) }));
    const setup = agentSetup(broker, port, { DETAILED_LOGGING: 'false', WEBHOOK_MAX_RETRIES: '0' });
    await produce(broker.brokers, setup.runsTopic, [{ value: signed(actionRunMessage({ runId: 'r_quiet', url: `${target.url}/quiet`, synchronized: true }), port.clientSecret) }]);
    // 422 is an answer, not an outage: not retried, so the failed report shows in the run log.
    port.failNext('PATCH /v1/actions/runs/:runId', 1, { status: 422, body: { ok: false, error: 'port did not like it' } });
    agent = await startConsumingAgent(setup);
    await waitFor(() => port.actionRunLogs('r_quiet').includes(RUN_LOG.stateNotReported(422, undefined)), {
      timeoutMs: 20_000,
      description: 'the failed status report logged on the run',
    });
  });

  after(async () => {
    await agent?.stop();
    await closeRealParts({ target, port, broker });
  });

  it('keeps response texts out of run logs and the summary', () => {
    const [patchCall] = port.callsTo('PATCH /v1/actions/runs/:runId');
    assert.deepEqual(patchCall?.body, { status: 'FAILURE', summary: RUN_LOG.webhookFailureSummary(503, undefined) });
    assert.deepEqual(port.actionRunLogs('r_quiet'), [...synchronousRunLogs(RUN_LOG.invocationFailed(503, undefined)), RUN_LOG.stateNotReported(422, undefined)]);
  });

  it('keeps response texts out of its own logs', () => {
    assert.ok(!JSON.stringify(agent.logs).includes('hunter2'));
    const warning = agent.logs.find((line) => line.msg === 'Port refused a report for good; it is dropped');
    assert.equal(warning?.runId, 'r_quiet');
    assert.equal(warning?.status, 422);
    // Each key once: a JSON object with the same key twice is read differently by each log tool.
    const written = agent.rawLogs.find((line) => line.includes('Port refused a report for good'));
    assert.equal(written?.match(/"runId":/g)?.length, 1);
  });
});
