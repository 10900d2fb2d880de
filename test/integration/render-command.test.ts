/**
 * `port-agent render`, the dry-run (issue 4): the README's worked examples, run through the built
 * command with no Kafka and no Port credentials, and its errors.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { RUN_LOG } from '../../src/reporting/run-log-texts.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(REPO, 'dist', 'src', 'main.js');
const example = (name: string, file: string) => join(REPO, 'config', 'examples', name, file);

function render(args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, [CLI, 'render', ...args], {
    cwd: mkdtempSync(join(tmpdir(), 'render-')),
    env: { PATH: process.env.PATH ?? '', ...env },
    encoding: 'utf8',
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr, json: () => JSON.parse(result.stdout) as Record<string, unknown> };
}

function tempFile(name: string, content: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'render-input-')), name);
  writeFileSync(path, content);
  return path;
}

describe('port-agent render', () => {
  it('example 1: custom body, headers and query, identical in JSONata and jq', () => {
    const env = { DEPLOY_REGION: 'eu-west-1' };
    const jsonata = render(['--mapping', example('custom-request', 'mapping.json'), '--event', example('custom-request', 'event.json')], env);
    assert.equal(jsonata.code, 0, jsonata.stderr);
    const output = jsonata.json();
    assert.deepEqual(output.request, {
      method: 'POST',
      url: 'https://deployer.internal/services/checkout/scale',
      headers: { 'Content-Type': 'application/json', 'X-Requested-By': 'jane@example.com', 'X-Port-Run': 'r_scale01', 'X-Region': 'eu-west-1' },
      query: { dryRun: 'false' },
      body: { service: 'checkout', replicas: 4, requestedBy: 'jane@example.com', source: 'port' },
    });
    assert.deepEqual(output.report, { runResponse: null, statusPatch: { status: 'SUCCESS' } });
    assert.equal(output.dialect, 'jsonata');
    // No --dialect and no CONTROL_THE_PAYLOAD_DIALECT: the jq file is recognised as jq.
    const jq = render(['--mapping', example('custom-request', 'mapping.jq.json'), '--event', example('custom-request', 'event.json')], env);
    assert.equal(jq.code, 0, jq.stderr);
    const { dialect, dialectReason, ...jqOutput } = jq.json();
    assert.equal(dialect, 'jq');
    assert.match(String(dialectReason), /^CONTROL_THE_PAYLOAD_DIALECT is not set and every expression compiles as jq, not as JSONata/);
    assert.deepEqual({ ...jqOutput, dialect: output.dialect, dialectReason: output.dialectReason }, output);
    const explicit = render(['--mapping', example('custom-request', 'mapping.jq.json'), '--event', example('custom-request', 'event.json'), '--dialect', 'jq'], env).json();
    assert.deepEqual(explicit, { ...jq.json(), dialectReason: '--dialect=jq' });
  });

  it('example 2: a GitLab pipeline trigger from the built-in default mapping, with link and external id', () => {
    const result = render(
      ['--mapping', join(REPO, 'config', 'default-mapping.json'), '--event', example('gitlab', 'event.json'), '--response', example('gitlab', 'response.json')],
      { GITLAB_URL: 'https://gitlab.internal/', 'platform_infra_deployer': 'glptt-example' },
    );
    assert.equal(result.code, 0, result.stderr);
    const output = result.json() as { request: { url: string; body: Record<string, unknown> }; report: unknown; mappingIndex: number };
    assert.equal(output.mappingIndex, 0);
    assert.equal(output.request.url, 'https://gitlab.internal/api/v4/projects/platform%2Finfra%2Fdeployer/trigger/pipeline');
    assert.deepEqual(output.request.body, { ref: 'release-1.4', token: 'glptt-example', variables: { environment: 'staging', replicas: '2', ref: 'release-1.4' }, port_payload: {} });
    assert.deepEqual(output.report, {
      runResponse: null,
      statusPatch: { link: 'https://gitlab.internal/platform/infra/deployer/-/pipelines/4711', externalRunId: '4711' },
    });
  });

  it('example 3: a report built from the response', () => {
    const result = render([
      '--mapping', example('report-from-response', 'mapping.json'),
      '--event', example('report-from-response', 'event.json'),
      '--response', example('report-from-response', 'response.json'),
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(result.json().report, {
      runResponse: { deploymentId: 'dep-8812', state: 'deployed', dashboard: 'https://deployer.internal/deployments/dep-8812' },
      statusPatch: {
        status: 'SUCCESS',
        summary: 'Deployment dep-8812 of checkout 1.4.2: deployed',
        link: 'https://deployer.internal/deployments/dep-8812',
        externalRunId: 'dep-8812',
      },
    });
  });

  it('shows the default report of a failed response and that no mapping skips a run', () => {
    const failed = render(['--mapping', join(REPO, 'config', 'default-mapping.json'), '--event', example('report-from-response', 'event.json'), '--response', tempFile('r.json', '{"statusCode":500,"body":"boom"}')]);
    assert.equal(failed.code, 0, failed.stderr);
    assert.deepEqual(failed.json().report, { runResponse: 'boom', statusPatch: { status: 'FAILURE', summary: RUN_LOG.webhookFailureSummary(500, 'boom') } });
    const skipped = render(['--mapping', tempFile('m.json', '[{"enabled": false}]'), '--event', example('report-from-response', 'event.json')]);
    assert.equal(skipped.code, 0, skipped.stderr);
    assert.equal(skipped.json().skipped, 'no mapping matches: skipped silently');
  });

  it('exits 2 with the mapping index, field and expression for a mapping that does not compile', () => {
    const mapping = tempFile('m.json', '[{"body": {"a": "payload.(("}}]');
    const result = render(['--mapping', mapping, '--event', example('report-from-response', 'event.json'), '--dialect', 'jsonata']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /^port-agent render: Mapping 0, field "body.a": the jsonata expression "payload.\(\(" does not compile/);
    assert.equal(result.stdout, '');
    const detecting = render(['--mapping', mapping, '--event', example('report-from-response', 'event.json')]);
    assert.equal(detecting.code, 2);
    assert.match(detecting.stderr, /^port-agent render: The payload mapping fits neither dialect .*As JSONata: Mapping 0, field "body.a": the jsonata expression .*As jq: Mapping 0, field "body.a": the jq expression "payload.\(\(" does not compile/);
  });

  it('exits 2 for an event that is not JSON, a missing file, and missing arguments', () => {
    const notJson = render(['--mapping', join(REPO, 'config', 'default-mapping.json'), '--event', tempFile('e.json', '{"broken": ')]);
    assert.equal(notJson.code, 2);
    assert.match(notJson.stderr, /the event is not valid JSON/);
    const missing = render(['--mapping', '/nonexistent/m.json', '--event', example('gitlab', 'event.json')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read the mapping file \/nonexistent\/m.json \(ENOENT\)/);
    const noArgs = render([]);
    assert.equal(noArgs.code, 2);
    assert.match(noArgs.stderr, /--mapping and --event are required/);
  });
});
