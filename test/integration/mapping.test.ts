/**
 * Payload mappings through the running agent (issue 4): the built-in GitLab pipeline trigger
 * against a local stand-in for GitLab's trigger endpoint, a mapping file written for the official
 * agent in jq, and field decryption.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RUN_LOG } from '../../src/reporting/run-log-texts.js';
import type { AgentProcess } from '../support/agent-process.js';
import { startBroker } from '../support/broker.js';
import type { Broker } from '../support/broker.js';
import { produce } from '../support/kafka.js';
import { actionRunMessage, signed } from '../support/messages.js';
import { startPortStandIn } from '../support/port-stand-in.js';
import type { PortStandIn } from '../support/port-stand-in.js';
import { waitFor } from '../support/wait.js';
import { startWebhookTarget } from '../support/webhook-target.js';
import type { WebhookTarget } from '../support/webhook-target.js';
import { agentSetup, closeRealParts, startConsumingAgent } from '../support/harness.js';

const OFFICIAL_JQ_DEFAULT = readFileSync(new URL('../fixtures/official-default-mapping.jq.json', import.meta.url), 'utf8');
const DECRYPT_FIXTURE = JSON.parse(readFileSync(new URL('../fixtures/decrypt-fields.json', import.meta.url), 'utf8')) as {
  secret: string;
  cases: { path: string; plaintext: string; encrypted: string }[];
};

function gitlabRun(runId: string): Record<string, unknown> {
  const message = actionRunMessage({ runId, url: 'http://unused.invalid/', type: 'GITLAB', properties: { environment: 'staging', replicas: 2 } });
  const action = (message.payload as { action: { invocationMethod: Record<string, unknown> } }).action;
  action.invocationMethod = { type: 'GITLAB', agent: true, groupName: 'platform/infra', projectName: 'deployer', defaultRef: 'main' };
  return message;
}

/** GitLab's trigger endpoint answers 201 with the pipeline, as GitLab does. */
function gitlabAnswer(path: string) {
  if (path === '/created') return { status: 201, headers: { Location: 'https://svc.internal/jobs/77', 'X-Job-Id': 'job-77' } };
  return path.endsWith('/trigger/pipeline') ? { status: 201, body: { id: 4711, web_url: 'https://gitlab.internal/platform/infra/deployer/-/pipelines/4711' } } : { status: 200 };
}

describe('payload mappings in the running agent', () => {
  let broker: Broker;
  let port: PortStandIn;
  let target: WebhookTarget;
  const agents: AgentProcess[] = [];

  before(async () => {
    broker = await startBroker();
    // The decryption vectors are encrypted with this secret; it is also the HMAC key.
    port = await startPortStandIn({ clientSecret: DECRYPT_FIXTURE.secret });
    target = await startWebhookTarget({ secret: port.clientSecret, respond: (request) => gitlabAnswer(request.path) });
  });

  after(async () => {
    await Promise.all(agents.map((agent) => agent.stop()));
    await closeRealParts({ target, port, broker });
  });

  it('triggers a GitLab pipeline with the built-in default mapping and reports its link and id', async () => {
    const setup = agentSetup(broker, port, { GITLAB_URL: `${target.url}/`, platform_infra_deployer: 'glptt-secret-trigger-token' });
    await produce(broker.brokers, setup.runsTopic, [{ value: signed(gitlabRun('r_gitlab_default'), port.clientSecret) }]);
    const agent = await startConsumingAgent(setup);
    agents.push(agent);
    await waitFor(() => port.actionRunLogs('r_gitlab_default').includes(RUN_LOG.actionFinished), { timeoutMs: 20_000, description: 'the GitLab run finished' });
    const request = target.requests.find((entry) => entry.path === '/api/v4/projects/platform%2Finfra%2Fdeployer/trigger/pipeline');
    assert.ok(request, 'the trigger endpoint was called');
    const body = request.json as Record<string, unknown>;
    assert.equal(body.ref, 'main');
    assert.equal(body.token, 'glptt-secret-trigger-token');
    assert.deepEqual(body.variables, { environment: 'staging', replicas: '2' });
    assert.equal((body.port_payload as { context: { runId: string } }).context.runId, 'r_gitlab_default');
    assert.equal((body.port_payload as Record<string, unknown>).headers, undefined, 'GitLab messages lose their headers key');
    assert.deepEqual(port.actionRunPatches('r_gitlab_default'), [{ link: 'https://gitlab.internal/platform/infra/deployer/-/pipelines/4711', externalRunId: '4711' }]);
    assert.ok(!JSON.stringify(agent.logs).includes('glptt-secret-trigger-token'), 'the trigger token is not logged');
  });

  it('runs a jq mapping file written for the official agent unchanged, with no dialect set, and decrypts fields', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'jq-mapping-'));
    const [vector] = DECRYPT_FIXTURE.cases;
    assert.ok(vector);
    const decrypting = {
      enabled: '.payload.action.identifier == "rotate_password"',
      fieldsToDecryptPaths: [vector.path],
      url: `"${target.url}/rotate"`,
      body: { password: `.${vector.path}`, run: '.context.runId' },
    };
    const mappingPath = join(directory, 'control_the_payload_config.json');
    writeFileSync(mappingPath, JSON.stringify([decrypting, ...(JSON.parse(OFFICIAL_JQ_DEFAULT) as unknown[])]));
    // As an operator swapping the official image: the same file, no CONTROL_THE_PAYLOAD_DIALECT.
    const setup = agentSetup(broker, port, { GITLAB_URL: `${target.url}/`, platform_infra_deployer: 'glptt-jq-token' });
    assert.equal(setup.env.CONTROL_THE_PAYLOAD_DIALECT, undefined);

    const rotation = actionRunMessage({ runId: 'r_rotate', url: 'http://unused.invalid/', properties: {} });
    (rotation.payload as { action: { identifier: string } }).action.identifier = 'rotate_password';
    (rotation.payload as { properties: Record<string, unknown> }).properties[vector.path.split('.').at(-1) as string] = vector.encrypted;
    await produce(broker.brokers, setup.runsTopic, [
      { value: signed(actionRunMessage({ runId: 'r_jq_webhook', url: `${target.url}/jq-webhook`, method: 'PUT' }), port.clientSecret) },
      { value: signed(gitlabRun('r_jq_gitlab'), port.clientSecret) },
      { value: signed(rotation, port.clientSecret) },
    ]);
    // The official chart mounts the file in the working directory without setting the path.
    const agent = await startConsumingAgent(setup, { cwd: directory });
    agents.push(agent);
    await waitFor(() => ['r_jq_webhook', 'r_jq_gitlab', 'r_rotate'].every((runId) => port.actionRunLogs(runId).includes(RUN_LOG.actionFinished)), {
      timeoutMs: 20_000,
      description: 'the jq-mapped runs finished',
    });
    const loaded = agent.logs.find((line) => line.msg === 'payload mapping loaded');
    assert.equal(loaded?.dialect, 'jq');
    assert.equal(loaded.builtIn, false);
    assert.match(String(loaded.dialectReason), /^CONTROL_THE_PAYLOAD_DIALECT is not set and every expression compiles as jq, not as JSONata \(Mapping 0, field "enabled": the jsonata expression /);
    const webhook = target.requests.find((entry) => entry.path === '/jq-webhook');
    assert.equal(webhook?.method, 'PUT');
    assert.equal((webhook?.json as { context: { runId: string } }).context.runId, 'r_jq_webhook');
    const gitlab = target.requests.filter((entry) => entry.path.endsWith('/trigger/pipeline')).find((entry) => (entry.json as { token: string }).token === 'glptt-jq-token');
    assert.ok(gitlab, 'the jq GitLab entry used the per-project token');
    assert.deepEqual(port.actionRunPatches('r_jq_gitlab'), [{ link: 'https://gitlab.internal/platform/infra/deployer/-/pipelines/4711', externalRunId: '4711' }]);
    const rotate = target.requests.find((entry) => entry.path === '/rotate');
    assert.deepEqual(rotate?.json, { password: vector.plaintext, run: 'r_rotate' });
    assert.ok(!JSON.stringify(agent.logs).includes(vector.plaintext), 'the decrypted value is never logged');
  });

  it('shows report expressions the response header names as the service sent them, as the official agent does', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'header-case-'));
    const mappingPath = join(directory, 'mapping.json');
    writeFileSync(mappingPath, JSON.stringify([{ url: `"${target.url}/created"`, report: { link: '.response.headers.Location', externalRunId: '.response.headers["X-Job-Id"]', summary: '.response.headers.location // "lower case: none"' } }]));
    const setup = agentSetup(broker, port, { CONTROL_THE_PAYLOAD_CONFIG_PATH: mappingPath, CONTROL_THE_PAYLOAD_DIALECT: 'jq' });
    await produce(broker.brokers, setup.runsTopic, [{ value: signed(actionRunMessage({ runId: 'r_header_case', url: 'http://unused.invalid/' }), port.clientSecret) }]);
    const agent = await startConsumingAgent(setup);
    agents.push(agent);
    await waitFor(() => port.actionRunLogs('r_header_case').includes(RUN_LOG.actionFinished), { timeoutMs: 20_000, description: 'the run finished' });
    assert.deepEqual(port.actionRunPatches('r_header_case'), [{ link: 'https://svc.internal/jobs/77', externalRunId: 'job-77', summary: 'lower case: none' }]);
  });
});
