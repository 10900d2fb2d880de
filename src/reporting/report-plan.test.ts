import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planActionReport, planNodeRunReport } from './report-plan.js';
import { RUN_LOG } from './run-log-texts.js';

const ok = { status: 200, headers: {}, headersAsSent: {}, text: '{"a":1}', json: { a: 1 } };
const empty = { status: 204, headers: {}, headersAsSent: {}, text: '', json: undefined };
const failed = { status: 502, headers: {}, headersAsSent: {}, text: 'bad gateway', json: undefined };

describe('planActionReport', () => {
  it('reports SUCCESS and the response of a synchronous success', () => {
    assert.deepEqual(planActionReport(true, ok, {}, true), { runResponse: { a: 1 }, statusPatch: { status: 'SUCCESS' } });
  });

  it('patches nothing for an asynchronous success', () => {
    assert.deepEqual(planActionReport(false, ok, {}, true), { runResponse: undefined, statusPatch: undefined });
  });

  it('reports FAILURE with the summary, the response text only when detailed', () => {
    assert.deepEqual(planActionReport(false, failed, {}, true).statusPatch, { status: 'FAILURE', summary: RUN_LOG.webhookFailureSummary(502, 'bad gateway') });
    assert.deepEqual(planActionReport(false, failed, {}, false).statusPatch, { status: 'FAILURE', summary: RUN_LOG.webhookFailureSummary(502, undefined) });
  });

  it('reports no response for an empty body, {} or []', () => {
    assert.equal(planActionReport(true, empty, {}, true).runResponse, undefined);
    assert.equal(planActionReport(true, { ...ok, text: '{}', json: {} }, {}, true).runResponse, undefined);
    assert.equal(planActionReport(true, { ...ok, text: '[]', json: [] }, {}, true).runResponse, undefined);
  });

  it('lets a report field replace its default, even with null', () => {
    assert.deepEqual(planActionReport(true, failed, { status: null, link: 'https://x' }, true).statusPatch, {
      summary: RUN_LOG.webhookFailureSummary(502, 'bad gateway'),
      link: 'https://x',
    });
    assert.deepEqual(planActionReport(true, ok, { status: null }, true).statusPatch, undefined);
    assert.deepEqual(planActionReport(false, ok, { status: 'SUCCESS', externalRunId: 'e-1' }, true).statusPatch, { status: 'SUCCESS', externalRunId: 'e-1' });
  });
});

describe('planNodeRunReport', () => {
  it('completes a synchronous success with the response, {} for an empty body', () => {
    assert.deepEqual(planNodeRunReport(true, ok), { status: 'COMPLETED', result: 'SUCCESS', output: { response: { status: 200, data: { a: 1 } } } });
    assert.deepEqual(planNodeRunReport(true, empty), { status: 'COMPLETED', result: 'SUCCESS', output: { response: { status: 204, data: {} } } });
  });

  it('reports {} for every body Python finds falsy, as the official agent writes `get_response_body(res) or {}`', () => {
    for (const [text, json] of [['null', null], ['false', false], ['0', 0], ['""', ''], ['[]', []], ['{}', {}]] as const) {
      assert.deepEqual(planNodeRunReport(true, { ...ok, text, json }), { status: 'COMPLETED', result: 'SUCCESS', output: { response: { status: 200, data: {} } } }, text);
    }
    for (const [text, json] of [['1', 1], ['true', true], ['"x"', 'x'], ['[0]', [0]]] as const) {
      assert.deepEqual(planNodeRunReport(true, { ...ok, text, json })?.output, { response: { status: 200, data: json } }, text);
    }
    assert.deepEqual(planNodeRunReport(true, { ...ok, text: 'plain text', json: undefined })?.output, { response: { status: 200, data: 'plain text' } });
  });

  it('fails on an error status, and leaves an asynchronous success alone', () => {
    assert.deepEqual(planNodeRunReport(false, failed), { status: 'COMPLETED', result: 'FAILED' });
    assert.equal(planNodeRunReport(false, ok), undefined);
  });
});
