import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MappingError } from '../errors.js';
import { compileMappings } from './compile.js';
import { createJsonataCompiler } from './expression.js';
import { loadMappings } from './load.js';
import { createMapper } from './render.js';

const ENVIRONMENT = { GITLAB_URL: 'https://gitlab.internal/', 'platform_infra_deployer': 'glptt-token' };
const compiler = createJsonataCompiler(ENVIRONMENT);
const builtIn = createMapper(loadMappings({ path: 'absent.json', isExplicit: false, workingDirectory: '/nonexistent' }, () => ({ ...compiler, close: () => undefined })).mappings);

function webhookMessage(invocationMethod: Record<string, unknown>) {
  return { context: { runId: 'r_1' }, payload: { action: { invocationMethod: { type: 'WEBHOOK', agent: true, ...invocationMethod } }, properties: { a: 1 } }, headers: {} };
}

function defaults(message: ReturnType<typeof webhookMessage>) {
  const invocationMethod = message.payload.action.invocationMethod as Record<string, unknown>;
  return { url: invocationMethod.url, method: (invocationMethod.method as string | undefined) ?? 'POST', body: message, headers: {} };
}

describe('the built-in default mapping', () => {
  it('sends webhook runs to the invocation URL with the invocation method and the whole message', async () => {
    const message = webhookMessage({ url: 'http://svc.internal/deploy', method: 'PUT' });
    const mapping = await builtIn.select(message);
    assert.equal(mapping?.index, 1);
    const request = await builtIn.renderRequest(mapping!, message, defaults(message));
    assert.deepEqual(request, { method: 'PUT', url: 'http://svc.internal/deploy', headers: {}, query: {}, body: message });
  });

  it('defaults the method to POST and takes a change-log destination URL', async () => {
    const message = { changelogDestination: { type: 'WEBHOOK', agent: true, url: 'http://svc.internal/changes' } };
    const mapping = await builtIn.select(message);
    const request = await builtIn.renderRequest(mapping!, message, { url: undefined, method: 'POST', body: message, headers: {} });
    assert.equal(request.url, 'http://svc.internal/changes');
    assert.equal(request.method, 'POST');
  });

  it('triggers a GitLab pipeline with the per-project token and reports link and external id', async () => {
    const message = {
      context: { runId: 'r_2' },
      payload: {
        action: { invocationMethod: { type: 'GITLAB', agent: true, groupName: 'platform/infra', projectName: 'deployer', defaultRef: 'develop' } },
        properties: { version: 2, flags: { dry: true } },
      },
    };
    const mapping = await builtIn.select(message);
    assert.equal(mapping?.index, 0);
    const request = await builtIn.renderRequest(mapping!, message, { url: undefined, method: 'POST', body: message, headers: {} });
    assert.equal(request.url, 'https://gitlab.internal/api/v4/projects/platform%2Finfra%2Fdeployer/trigger/pipeline');
    assert.equal(request.method, 'POST');
    // JSON round trip: JSONata builds objects without a prototype; what matters is what is sent.
    assert.deepEqual(JSON.parse(JSON.stringify(request.body)), {
      ref: 'develop',
      token: 'glptt-token',
      variables: { version: '2', flags: '{"dry":true}' },
      port_payload: message,
    });
    const report = await builtIn.renderReport(mapping!, {
      body: message,
      request,
      response: { statusCode: 201, headers: {}, text: '', json: { id: 991, web_url: 'https://gitlab.internal/p/-/pipelines/991' } },
    });
    assert.deepEqual(report, { link: 'https://gitlab.internal/p/-/pipelines/991', externalRunId: '991' });
  });
});

describe('mapping rules', () => {
  it('chooses the first mapping whose enabled is exactly true', async () => {
    const mapper = createMapper(
      compileMappings(
        [
          { enabled: 'payload.flag', url: "'http://first'" },
          { enabled: 'false', url: "'http://second'" },
          { enabled: "payload.flag = 'yes'", url: "'http://third'" },
          { url: "'http://fourth'" },
        ],
        compiler,
      ),
    );
    assert.equal((await mapper.select({ payload: { flag: 'yes' } }))?.index, 2, 'a truthy non-boolean does not enable');
    assert.equal((await mapper.select({ payload: { flag: 'no' } }))?.index, 3);
  });

  it('finds no mapping when none is enabled', async () => {
    const mapper = createMapper(compileMappings([{ enabled: false }, { enabled: 'payload.x = 1' }], compiler));
    assert.equal(await mapper.select({ payload: { x: 2 } }), undefined);
  });

  it('walks objects and arrays, evaluating string leaves and passing other leaves through', async () => {
    const [mapping] = compileMappings([{ url: "'http://x'", body: { id: 'context.runId', fixed: 3, list: ['payload.a', true, null], nested: { missing: 'payload.nothing' } } }], compiler);
    const request = await createMapper([mapping!]).renderRequest(mapping!, { context: { runId: 'r_9' }, payload: { a: 'A' } }, { url: undefined, method: 'POST', body: {}, headers: {} });
    assert.deepEqual(request.body, { id: 'r_9', fixed: 3, list: ['A', true, null], nested: { missing: null } });
  });

  it('lets mapping headers override invocation headers whatever their case, and drops null headers', async () => {
    const [mapping] = compileMappings([{ url: "'http://x'", headers: { 'x-team': "'mapping'", 'X-Drop': 'nothing' } }], compiler);
    const request = await createMapper([mapping!]).renderRequest(mapping!, {}, { url: undefined, method: 'POST', body: {}, headers: { 'X-Team': 'invocation', 'X-Keep': 'k' } });
    assert.deepEqual(request.headers, { 'X-Keep': 'k', 'x-team': 'mapping' });
  });

  it('names the mapping and field when an expression fails at run time', async () => {
    const [mapping] = compileMappings([{ url: "'http://x'", body: { count: '$number(payload.text)' } }], compiler);
    await assert.rejects(
      createMapper([mapping!]).renderRequest(mapping!, { payload: { text: 'abc' } }, { url: undefined, method: 'POST', body: {}, headers: {} }),
      (error: unknown) => error instanceof MappingError && error.field === 'body.count' && /Mapping 0, field "body.count": the expression failed: Unable to cast value to a number: "abc"/.test(error.message),
    );
  });

  it('rejects a request without a URL or with an unknown method', async () => {
    const [mapping] = compileMappings([{}], compiler);
    const mapper = createMapper([mapping!]);
    await assert.rejects(mapper.renderRequest(mapping!, {}, { url: undefined, method: 'POST', body: {}, headers: {} }), /field "url": no URL/);
    await assert.rejects(mapper.renderRequest(mapping!, {}, { url: 'http://x', method: 'TELEPORT', body: {}, headers: {} }), /field "method": must be one of/);
  });

  it('rejects fields of the wrong type, naming index and field', () => {
    assert.throws(() => compileMappings([{ url: 42 }], compiler), /Mapping 0, field "url": must be an expression string/);
    assert.throws(() => compileMappings([{ headers: ['x'] }], compiler), /Mapping 0, field "headers": must be an object or an expression string/);
    assert.throws(() => compileMappings([{ enabled: 1 }], compiler), /Mapping 0, field "enabled": must be a boolean or an expression string/);
    assert.throws(() => compileMappings([{ report: 'x' }], compiler), /Mapping 0, field "report": must be an object/);
    assert.throws(() => compileMappings([{ fieldsToDecryptPaths: 'payload.x' }], compiler), /Mapping 0, field "fieldsToDecryptPaths": must be a list of dotted paths/);
    assert.throws(() => compileMappings(['not an object'], compiler), /Mapping 0 must be an object/);
  });

  it('takes the whole headers object from one expression', async () => {
    const [mapping] = compileMappings([{ url: "'http://x'", headers: "{ 'X-Run': context.runId, 'X-Count': 3 }" }], compiler);
    const request = await createMapper([mapping!]).renderRequest(mapping!, { context: { runId: 'r_7' } }, { url: undefined, method: 'POST', body: {}, headers: {} });
    assert.deepEqual(request.headers, { 'X-Run': 'r_7', 'X-Count': '3' });
  });

  it('fails a run whose mapping renders a header Node.js cannot send, naming the field', async () => {
    for (const headers of ["{ 'X-Note': 'line\\nbreak' }", "{ 'X-Note': '日本' }", "{ 'Bad Name': 'x' }"]) {
      const [mapping] = compileMappings([{ url: "'http://x'", headers }], compiler);
      await assert.rejects(
        createMapper([mapping!]).renderRequest(mapping!, {}, { url: undefined, method: 'POST', body: {}, headers: {} }),
        (error: unknown) => error instanceof MappingError && /field "headers\.[^"]+": is not a valid HTTP header/.test(error.message),
        headers,
      );
    }
  });

  it('rejects unknown fields and broken expressions at compile time, naming index, field and expression', () => {
    assert.throws(() => compileMappings([{ enabled: true, urll: 'x' }], compiler), /Mapping 0, field "urll": unknown field/);
    assert.throws(() => compileMappings([{}, { report: { status: "'SUCCESS' &" } }], compiler), /Mapping 1, field "report.status": the jsonata expression "'SUCCESS' &" does not compile/);
    assert.throws(() => compileMappings({ not: 'a list' }, compiler), /must be a JSON list/);
  });

  it('cannot see the agent secrets through $env', async () => {
    const environment = { PORT_CLIENT_SECRET: 'never', PORT_CLIENT_ID: 'never', VISIBLE: 'yes' };
    const { expressionEnvironment } = await import('../config/load.js');
    const [mapping] = compileMappings([{ url: "'http://x'", body: { secret: '$env.PORT_CLIENT_SECRET', id: '$env.PORT_CLIENT_ID', visible: '$env.VISIBLE' } }], createJsonataCompiler(expressionEnvironment(environment)));
    const request = await createMapper([mapping!]).renderRequest(mapping!, {}, { url: undefined, method: 'POST', body: {}, headers: {} });
    assert.deepEqual(request.body, { secret: null, id: null, visible: 'yes' });
  });
});
