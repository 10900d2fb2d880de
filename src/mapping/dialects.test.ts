/**
 * Both dialects give identical requests and reports (SPEC §5): the official agent's default jq
 * mapping against the built-in JSONata default, and the same custom cases written in each.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { expressionEnvironment } from '../config/load.js';
import { compileMappings } from './compile.js';
import { createCompiler } from './dialects.js';
import type { DialectCompiler } from './dialects.js';
import { loadMappings } from './load.js';
import { createMapper } from './render.js';
import type { Mapper } from './render.js';

const OFFICIAL_JQ_DEFAULT = JSON.parse(readFileSync(new URL('../../test/fixtures/official-default-mapping.jq.json', import.meta.url), 'utf8')) as unknown;
const ENVIRONMENT = {
  GITLAB_URL: 'https://gitlab.internal/',
  platform_infra_deployer: 'glptt-token',
  REGION: 'eu-west-1',
  PORT_CLIENT_SECRET: 'must-not-leak',
  PORT_CLIENT_ID: 'must-not-leak',
  KAFKA_CONSUMER_PASSWORD: 'must-not-leak',
};
// What the agent hands to the compilers: the environment without the agent's secrets.
const VISIBLE = expressionEnvironment(ENVIRONMENT);

const compilers: DialectCompiler[] = [];
function compiler(dialect: 'jq' | 'jsonata'): DialectCompiler {
  const created = createCompiler(dialect, VISIBLE);
  compilers.push(created);
  return created;
}

after(() => {
  for (const created of compilers) created.close();
});

const gitlabMessage = {
  context: { runId: 'r_gitlab' },
  payload: {
    action: { invocationMethod: { type: 'GITLAB', agent: true, groupName: 'platform/infra', projectName: 'deployer', defaultRef: 'develop' } },
    properties: { version: 2, ref: 'release', flags: { dry: true }, note: 'héllo' },
  },
};
const gitlabOmitting = {
  context: { runId: 'r_gitlab_omit' },
  payload: { action: { invocationMethod: { type: 'GITLAB', agent: true, groupName: 'g', projectName: 'p', omitUserInputs: true, omitPayload: true } }, properties: { a: 1 } },
};
const webhookMessage = {
  context: { runId: 'r_hook' },
  payload: { action: { invocationMethod: { type: 'WEBHOOK', agent: true, url: 'http://svc.internal/deploy', method: 'PATCH' } }, properties: { a: 1 } },
  headers: {},
};
const changelogMessage = { context: { runId: null }, changelogDestination: { type: 'WEBHOOK', agent: true, url: 'http://svc.internal/changes' } };
const RESPONSE = { statusCode: 201, headers: { 'content-type': 'application/json' }, text: '{"id":991,"web_url":"https://gitlab.internal/p/-/pipelines/991"}', json: { id: 991, web_url: 'https://gitlab.internal/p/-/pipelines/991' } };

/** What the agent does with one message: choose, render, report — as plain JSON for comparison. */
async function outcome(mapper: Mapper, message: Record<string, unknown>) {
  const mapping = await mapper.select(message);
  if (!mapping) return undefined;
  const invocationMethod = ((message.payload as { action?: { invocationMethod?: Record<string, unknown> } } | undefined)?.action?.invocationMethod ?? {}) as Record<string, unknown>;
  const request = await mapper.renderRequest(mapping, message, { url: invocationMethod.url, method: invocationMethod.method ?? 'POST', body: message, headers: {} });
  const report = await mapper.renderReport(mapping, { body: message, request, response: RESPONSE });
  return JSON.parse(JSON.stringify({ index: mapping.index, request, report })) as unknown;
}

describe('jq and JSONata dialects', () => {
  it('the official jq default mapping and the built-in JSONata default render the same requests and reports', async () => {
    const jq = createMapper(compileMappings(OFFICIAL_JQ_DEFAULT, compiler('jq')));
    const jsonata = createMapper(loadMappings({ path: 'absent.json', isExplicit: false, workingDirectory: '/nonexistent' }, compiler).mappings);
    for (const message of [gitlabMessage, gitlabOmitting, webhookMessage, changelogMessage]) {
      const fromJq = await outcome(jq, message);
      assert.deepEqual(await outcome(jsonata, message), fromJq, `same outcome for ${JSON.stringify(message.context)}`);
      assert.ok(fromJq, 'a mapping matched');
    }
    const gitlab = (await outcome(jq, gitlabMessage)) as { request: { url: string; body: Record<string, unknown> }; report: unknown };
    assert.equal(gitlab.request.url, 'https://gitlab.internal/api/v4/projects/platform%2Finfra%2Fdeployer/trigger/pipeline');
    assert.deepEqual(gitlab.request.body.variables, { version: '2', ref: 'release', flags: '{"dry":true}', note: 'héllo' });
    assert.equal(gitlab.request.body.token, 'glptt-token');
    assert.deepEqual(gitlab.report, { link: 'https://gitlab.internal/p/-/pipelines/991', externalRunId: '991' });
  });

  const customCases: { name: string; jq: unknown; jsonata: unknown; message: Record<string, unknown> }[] = [
    {
      name: 'custom body, headers, query and report from the response',
      jq: [
        {
          enabled: '.payload.action.identifier == "deploy"',
          url: '"http://svc.internal/" + .payload.properties.service',
          method: '"PUT"',
          headers: { 'X-Run': '.context.runId', 'X-Region': 'env.REGION' },
          query: { dryRun: '.payload.properties.dryRun | tostring' },
          body: { service: '.payload.properties.service', replicas: '.payload.properties.replicas * 2', tags: ['"fixed"', '.payload.properties.tier'], secret: 'env.PORT_CLIENT_SECRET', literal: 7 },
          report: { status: 'if .response.statusCode < 300 then "SUCCESS" else "FAILURE" end', summary: '"Deployed " + .body.payload.properties.service', link: '.response.json.web_url', externalRunId: 'null' },
        },
      ],
      jsonata: [
        {
          enabled: "payload.action.identifier = 'deploy'",
          url: "'http://svc.internal/' & payload.properties.service",
          method: "'PUT'",
          headers: { 'X-Run': 'context.runId', 'X-Region': '$env.REGION' },
          query: { dryRun: '$string(payload.properties.dryRun)' },
          body: { service: 'payload.properties.service', replicas: 'payload.properties.replicas * 2', tags: ["'fixed'", 'payload.properties.tier'], secret: '$env.PORT_CLIENT_SECRET', literal: 7 },
          report: { status: "response.statusCode < 300 ? 'SUCCESS' : 'FAILURE'", summary: "'Deployed ' & body.payload.properties.service", link: 'response.json.web_url', externalRunId: 'null' },
        },
      ],
      message: { context: { runId: 'r_custom' }, payload: { action: { identifier: 'deploy' }, properties: { service: 'checkout', replicas: 3, tier: 'gold', dryRun: false } } },
    },
    {
      name: 'a filter that matches nothing',
      jq: [{ enabled: '.payload.properties.cluster == "b"' }],
      jsonata: [{ enabled: "payload.properties.cluster = 'b'" }],
      message: { context: { runId: 'r_other' }, payload: { properties: { cluster: 'a' } } },
    },
  ];

  for (const testCase of customCases) {
    it(`gives identical results in both dialects: ${testCase.name}`, async () => {
      const jq = createMapper(compileMappings(testCase.jq, compiler('jq')));
      const jsonata = createMapper(compileMappings(testCase.jsonata, compiler('jsonata')));
      assert.deepEqual(await outcome(jsonata, testCase.message), await outcome(jq, testCase.message));
    });
  }

  it('hides the agent secrets from both dialects', async () => {
    const jq = createMapper(compileMappings(customCases[0]?.jq, compiler('jq')));
    const result = (await outcome(jq, customCases[0]!.message)) as { request: { body: { secret: unknown }; headers: Record<string, string> } };
    assert.equal(result.request.body.secret, null);
    assert.equal(result.request.headers['X-Region'], 'eu-west-1', 'other variables stay visible');
    for (const dialect of ['jq', 'jsonata'] as const) {
      const expression =
        dialect === 'jq'
          ? '[env.PORT_CLIENT_SECRET, env.PORT_CLIENT_ID, env.KAFKA_CONSUMER_PASSWORD, $ENV.PORT_CLIENT_SECRET, ($ENV | tostring)]'
          : '[$env.PORT_CLIENT_SECRET, $env.PORT_CLIENT_ID, $env.KAFKA_CONSUMER_PASSWORD, $string($env)]';
      const mapper = createMapper(compileMappings([{ url: dialect === 'jq' ? '"http://x"' : "'http://x'", body: expression }], compiler(dialect)));
      const request = await mapper.renderRequest((await mapper.select({}))!, {}, { url: undefined, method: 'POST', body: {}, headers: {} });
      assert.ok(!JSON.stringify(request.body ?? null).includes('must-not-leak'), dialect);
    }
  });

  it('names the mapping, field and expression of a jq syntax error, and of a jq runtime error', async () => {
    assert.throws(() => compileMappings([{ url: '.a | ' }], compiler('jq')), /Mapping 0, field "url": the jq expression "\.a \| " does not compile: syntax error/);
    const mapper = createMapper(compileMappings([{ url: '"http://x"', body: { n: '.text | tonumber' } }], compiler('jq')));
    await assert.rejects(
      mapper.renderRequest((await mapper.select({}))!, { text: 'abc' }, { url: undefined, method: 'POST', body: {}, headers: {} }),
      /Mapping 0, field "body.n": the expression failed: .*while parsing 'abc'/,
    );
  });

  it('fails input and inputs, which would read another evaluation, but reads a field named input', async () => {
    const compiled = compileMappings([{ url: '"http://x"', body: { field: '.payload.input', text: '"no input given"' } }], compiler('jq'));
    const [mapping] = compiled;
    assert.ok(mapping);
    const request = await createMapper(compiled).renderRequest(mapping, { payload: { input: 'v' } }, { url: undefined, method: 'POST', body: {}, headers: {} });
    assert.deepEqual(request.body, { field: 'v', text: 'no input given' });
    for (const body of ['[inputs]', 'input']) {
      const [reading] = compileMappings([{ url: '"http://x"', body }], compiler('jq'));
      assert.ok(reading);
      await assert.rejects(createMapper([reading]).renderRequest(reading, { a: 1 }, { url: undefined, method: 'POST', body: {}, headers: {} }), /input and inputs are not available in mappings/);
    }
  });
});
