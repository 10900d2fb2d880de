/**
 * The official agent's own test cases (test/fixtures/official-agent-cases.json) through the built
 * agent, with the real broker, the Port stand-in and a webhook target: every case with its mapping
 * file and its variables, the URLs pointed at the local target as the file's conventions say.
 *
 * For each case: what the service receives (method, path, query, the listed headers, the exact
 * body bytes and a signature that verifies) and what Port ends up with for the run (log texts in
 * order, final status, response, link, external id). Not the calls' shapes: a status riding on the
 * last log line (`terminationStatus`) spends one call fewer for the same result. Where the agent
 * differs on purpose, `DELIBERATE` below says how, and docs/compatibility.md says why, under the
 * case's name.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startAgent } from '../support/agent-process.js';
import type { AgentProcess } from '../support/agent-process.js';
import { startBroker } from '../support/broker.js';
import { committedOffsets, produce } from '../support/kafka.js';
import { officialCases, officialMappingFile } from '../support/official-cases.js';
import type { OfficialCase, PortCall } from '../support/official-cases.js';
import { startPortStandIn } from '../support/port-stand-in.js';
import type { PortStandIn } from '../support/port-stand-in.js';
import { signedMessageBytes } from '../support/signed-message.js';
import { waitFor } from '../support/wait.js';
import { startWebhookTarget } from '../support/webhook-target.js';
import type { TargetResponse, WebhookTarget } from '../support/webhook-target.js';
import { agentSetup, closeRealParts, isConsuming } from '../support/harness.js';

/** What Port shows for one run, whichever calls carried it. */
interface PortView {
  logs: string[];
  /** Every field Port was told for the run (status, summary, link, externalRunId; a node run's result and output), the last value winning. */
  run: Record<string, unknown>;
  responses: unknown[];
}

function logTexts(call: PortCall): string[] {
  const body = call.body as { message?: unknown; logs?: { message: unknown }[] };
  return body.logs ? body.logs.map((entry) => String(entry.message)) : [String(body.message)];
}

/** Port's view of `runId` after `calls` (the cases' expected calls, or the calls the stand-in accepted). */
function portView(calls: readonly PortCall[], runId: string): PortView {
  const view: PortView = { logs: [], run: {}, responses: [] };
  const runPaths = [`/v1/actions/runs/${runId}`, `/v1/workflows/nodes/runs/${runId}`];
  for (const call of calls) {
    const body = call.body as Record<string, unknown>;
    if (call.method === 'POST' && runPaths.some((path) => call.path === `${path}/logs`)) {
      view.logs.push(...logTexts(call));
      if (body.terminationStatus !== undefined) view.run.status = body.terminationStatus;
    } else if (call.method === 'PATCH' && call.path === `/v1/actions/runs/${runId}/response`) {
      view.responses.push(body.response);
    } else if (call.method === 'PATCH' && runPaths.includes(call.path)) {
      Object.assign(view.run, body);
    }
  }
  return view;
}

function acceptedCalls(port: PortStandIn, runId: string): PortCall[] {
  return port
    .apiCallsForRun(runId)
    .filter((call) => call.status !== undefined && call.status < 300)
    .map((call) => ({ method: call.method, path: call.path, body: call.body }));
}

/**
 * Deliberate differences (docs/compatibility.md, under each case's name): the calls the official
 * agent makes that this agent does not, or makes otherwise, for the same result in Port.
 */
const DELIBERATE: Record<string, (officialCalls: PortCall[]) => PortCall[]> = {
  // Every FAILURE the agent decides is also a run log line, so the run's log says why.
  'polling-action-run-unprocessable': (calls) => [
    { method: 'POST', path: '/v1/actions/runs/run_789/logs', body: { message: 'Agent failed to process the run' } },
    ...calls,
  ],
};

/** Which expected calls to hold the agent to: the case's own, or the version this agent follows. */
function expectedCalls(testCase: OfficialCase): PortCall[] {
  // An asynchronous node run whose service fails is failed in Port, as v0.8.9 does: left alone,
  // nothing would ever complete it (the branch after v0.8.9 leaves it in progress).
  const calls = testCase.expected_port_api_calls ?? testCase.expected_port_api_calls_v0_8_9;
  assert.ok(calls, `${testCase.name} has expected Port calls`);
  return (DELIBERATE[testCase.name] ?? ((same: PortCall[]) => same))(calls);
}

/** The local URL for each URL the cases use, by the file's `conventions.retargeting`. */
function retargeting(target: WebhookTarget): [string, string][] {
  return [
    ['http://localhost:80/api/test', `${target.url}/api/test`],
    ['https://httpbin.org/post', `${target.url}/post`],
    ['http://localhost:8080/webhook', `${target.url}/webhook`],
  ];
}

function retarget<T>(value: T, urls: readonly [string, string][]): T {
  let text = JSON.stringify(value);
  for (const [from, to] of urls) text = text.split(from).join(to);
  return JSON.parse(text) as T;
}

/** The Kafka bytes of a case, retargeted; a runs-topic message re-signed as the conventions say. */
function kafkaValue(testCase: OfficialCase, urls: readonly [string, string][]): string {
  const { kafka_value: value, signature_valid: signatureValid } = testCase.input;
  assert.ok(value !== undefined);
  const message = retarget(JSON.parse(value) as Record<string, unknown>, urls);
  return signatureValid === true ? signedMessageBytes(message, testCase.env.PORT_CLIENT_SECRET ?? '') : JSON.stringify(message);
}

/** The mapping file's name in `mapping_files`, from `mapping_files.<name> (…)`. */
function mappingFileName(testCase: OfficialCase): string {
  const name = /^mapping_files\.(\w+)/.exec(testCase.mapping_file)?.[1];
  assert.ok(name, `${testCase.name}: mapping file ${testCase.mapping_file}`);
  return name;
}

function runIdOf(testCase: OfficialCase): string | undefined {
  const calls = expectedCalls(testCase);
  const runPath = calls.map((call) => /^\/v1\/(?:actions\/runs|workflows\/nodes\/runs)\/((?:r|run|wfnr)_\w+)/.exec(call.path)?.[1]).find((id) => id !== undefined);
  if (runPath !== undefined) return runPath;
  const value = testCase.input.kafka_value;
  return value === undefined ? undefined : (JSON.parse(value) as { context?: { runId?: string } }).context?.runId;
}

/** Whether the one message of the case is committed, on whichever partition it went to. */
function isCommitted(offsets: Map<number, string> | undefined): boolean {
  return offsets !== undefined && [...offsets.values()].includes('1');
}

/** The case's mapping file, or the built-in default where the case allows it ("or none: built-in default"). */
type MappingVariant = 'file' | 'built-in';

function mappingVariants(testCase: OfficialCase): MappingVariant[] {
  return testCase.mapping_file.includes('built-in default') ? ['file', 'built-in'] : ['file'];
}

/** Until `count()` has not changed for `quietMs`: nothing more is coming. */
async function untilQuiet(count: () => number, quietMs: number): Promise<void> {
  let last = count();
  let since = Date.now();
  await waitFor(
    () => {
      const now = count();
      if (now !== last) [last, since] = [now, Date.now()];
      return Date.now() - since >= quietMs;
    },
    { timeoutMs: 20_000, description: 'no more calls or requests' },
  );
}

interface CaseRun {
  agent: AgentProcess;
  port: PortStandIn;
  /** Set for a Kafka case: where the message was and what the agent committed. */
  committed?: () => Promise<Map<number, string>>;
}

describe("the official agent's own test cases", () => {
  let target: WebhookTarget;
  let answer: TargetResponse = {};
  const running: { agent?: AgentProcess; port?: PortStandIn; stopBroker?: () => Promise<void> } = {};

  before(async () => {
    target = await startWebhookTarget({ secret: 'test', respond: () => answer });
  });

  async function stopCase(): Promise<void> {
    await running.agent?.stop();
    await closeRealParts({ port: running.port });
    await running.stopBroker?.();
    Object.assign(running, { agent: undefined, port: undefined, stopBroker: undefined });
  }

  after(async () => {
    await stopCase();
    await target.close();
  });

  /** The variables of the case, plus what points the agent at the local parts. */
  function agentEnv(testCase: OfficialCase, port: PortStandIn, extra: Record<string, string> = {}): Record<string, string> {
    const stub = testCase.webhook_stub_response;
    return {
      ...testCase.env,
      PORT_API_BASE_URL: port.url,
      HEALTH_PORT: '0',
      LOG_LEVEL: 'DEBUG',
      // conventions.retries: the official agent never retries a 5xx.
      ...(stub && stub.status >= 500 ? { WEBHOOK_MAX_RETRIES: '0' } : {}),
      ...extra,
    };
  }

  /**
   * A working directory holding the case's mapping file where the official chart mounts it, or
   * none for the built-in default.
   */
  function mappingDirectory(testCase: OfficialCase, mapping: MappingVariant): string {
    const directory = mkdtempSync(join(tmpdir(), 'official-case-'));
    if (mapping === 'file') writeFileSync(join(directory, 'control_the_payload_config.json'), JSON.stringify(officialMappingFile(mappingFileName(testCase))));
    return directory;
  }

  async function runKafkaCase(testCase: OfficialCase, urls: readonly [string, string][], mapping: MappingVariant): Promise<CaseRun> {
    const broker = await startBroker();
    running.stopBroker = () => broker.stop();
    const port = await startPortStandIn({ clientId: testCase.env.PORT_CLIENT_ID, clientSecret: testCase.env.PORT_CLIENT_SECRET });
    running.port = port;
    const topic = testCase.input.topic;
    assert.ok(topic);
    await produce(broker.brokers, topic, [{ value: kafkaValue(testCase, urls) }]);
    // The broker's settings from the harness; the case's own variables (test_org, test/test) win.
    const { env } = agentSetup(broker, port, agentEnv(testCase, port));
    const agent = startAgent(env, { cwd: mappingDirectory(testCase, mapping) });
    running.agent = agent;
    await agent.waitForLog(isConsuming, 30_000);
    const groupId = testCase.env.PORT_ORG_ID ?? '';
    return { agent, port, committed: () => committedOffsets(broker.brokers, groupId, topic) };
  }

  async function runPollingCase(testCase: OfficialCase, urls: readonly [string, string][], mapping: MappingVariant): Promise<CaseRun> {
    const port = await startPortStandIn({ clientId: testCase.env.PORT_CLIENT_ID, clientSecret: testCase.env.PORT_CLIENT_SECRET });
    running.port = port;
    const stub = retarget(testCase.input.port_api_stub ?? {}, urls) as Record<string, { runs?: Record<string, unknown>[]; nodeRuns?: Record<string, unknown>[] }>;
    port.enqueueActionRuns(stub['POST /v1/actions/runs/claim-pending']?.runs ?? []);
    port.enqueueNodeRuns(stub['POST /v1/workflows/runs/claim-pending']?.nodeRuns ?? []);
    const agent = startAgent(agentEnv(testCase, port, { POLLING_INTERVAL_SECONDS: '0.2' }), { cwd: mappingDirectory(testCase, mapping) });
    running.agent = agent;
    return { agent, port };
  }

  function assertRequest(testCase: OfficialCase, urls: readonly [string, string][], startedAt: number): void {
    const expected = testCase.expected_request ? retarget(testCase.expected_request, urls) : null;
    if (!expected) {
      assert.deepEqual(target.requests, [], 'the service receives nothing');
      return;
    }
    assert.equal(target.requests.length, 1, 'the service receives one request');
    const [request] = target.requests;
    assert.ok(request);
    const url = new URL(expected.url);
    assert.equal(request.method, expected.method);
    assert.equal(request.path, url.pathname);
    assert.deepEqual(request.query, expected.query);
    for (const [name, value] of Object.entries(expected.headers_must_include)) {
      if (name.startsWith('X-Port-')) continue;
      assert.equal(request.headers[name.toLowerCase()], value, `header ${name}`);
    }
    const timestamp = Number(request.headers['x-port-timestamp']);
    assert.ok(Number.isInteger(timestamp) && Math.abs(timestamp - startedAt / 1000) < 60, `X-Port-Timestamp is now, in whole seconds (${String(timestamp)})`);
    assert.equal(request.signatureValid, true, 'X-Port-Signature verifies over the body received');
    assert.deepEqual(request.json, expected.body);
    assert.equal(request.rawBody, expected.body_compact, 'the exact body bytes');
  }

  for (const testCase of officialCases) {
    for (const mapping of mappingVariants(testCase)) {
      it(`${testCase.name}${mapping === 'built-in' ? ' (built-in default mapping)' : ''}`, () => runCase(testCase, mapping));
    }
  }

  async function runCase(testCase: OfficialCase, mapping: MappingVariant): Promise<void> {
    await stopCase();
    target.requests.splice(0);
    const stub = testCase.webhook_stub_response;
    answer = stub ? { status: stub.status, body: stub.body_text, headers: { 'Content-Type': stub.content_type } } : {};
    const urls = retargeting(target);
    const startedAt = Date.now();
    const caseRun = testCase.input.kafka_value === undefined ? await runPollingCase(testCase, urls, mapping) : await runKafkaCase(testCase, urls, mapping);
    const runId = runIdOf(testCase);
    const expected = expectedCalls(testCase);

    if (expected.length > 0 && runId !== undefined) {
      const wanted = portView(expected, runId);
      const shown = (): PortView => portView(acceptedCalls(caseRun.port, runId), runId);
      await waitFor(() => shown().logs.length >= wanted.logs.length && Object.keys(wanted.run).every((key) => key in shown().run), {
        timeoutMs: 20_000,
        description: () => `Port has as much as it should for ${runId}: ${JSON.stringify(shown())}`,
      });
      // The run's message is committed once Port has its last report; polling has no commit, so
      // a quiet second says the same: nothing more is coming.
      if (caseRun.committed) await waitFor(async () => isCommitted(await caseRun.committed?.()), { timeoutMs: 20_000, description: 'the message committed' });
      else await untilQuiet(() => caseRun.port.apiCallsForRun(runId).length + target.requests.length, 1_000);
      assert.deepEqual(shown(), wanted, 'what Port shows for the run');
    } else {
      // Nothing for Port to hear: wait until the agent has handled the message, then check it heard nothing.
      await waitFor(async () => isCommitted(await caseRun.committed?.()), { timeoutMs: 20_000, description: 'the message committed' });
      if (runId !== undefined) assert.deepEqual(acceptedCalls(caseRun.port, runId), [], 'no call about the run');
    }
    assertRequest(testCase, urls, startedAt);

    const loaded = caseRun.agent.logs.find((line) => line.msg === 'payload mapping loaded');
    assert.deepEqual(
      { builtIn: loaded?.builtIn, dialect: loaded?.dialect },
      mapping === 'file' ? { builtIn: false, dialect: 'jq' } : { builtIn: true, dialect: 'jsonata' },
      'the mapping the case names is the one in use',
    );
    if (mapping === 'file' && mappingFileName(testCase) === 'mock_control_the_payload_config') {
      // The official test file runs, as in the official agent, with one warning at start.
      const warning = caseRun.agent.logs.find((line) => line.level === 'warn' && line.field === 'enabled' && line.mappingIndex === 0);
      assert.equal(warning?.expression, '.payload.non-existing-field');
      // Its MY-HEADER (.resourceType) comes out null where the message has none: not sent.
      const request = target.requests[0];
      if (request && !('MY-HEADER' in (testCase.expected_request?.headers_must_include ?? {}))) assert.equal(request.headers['my-header'], undefined, 'a null header is not sent');
    }
    if (testCase.name === 'kafka-run-agent-false-skipped') {
      assert.ok(caseRun.agent.logs.some((line) => line.msg === 'message skipped: not for an agent'));
    }
  }
});
