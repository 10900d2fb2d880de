import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ReportError } from '../errors.js';
import { createLogger } from '../log.js';
import type { ServiceResponse } from '../shared/service-response.js';
import type { CallPriority, PortBudget } from './port-budget.js';
import type { PortCallOptions, PortCallResult, PortClient } from './port-client.js';
import { MAX_REPORTED_TEXT_CHARS, cutText, reportableResponse } from './port-limits.js';
import { createRunReports } from './run-reports.js';
import type { RunLogsMode, RunReports } from './run-reports.js';
import { RUN_LOG } from './run-log-texts.js';
import { synchronousRunLogs } from '../../test/support/run-logs.js';

interface Call {
  method: string;
  route: string;
  body: unknown;
  priority: CallPriority | undefined;
}

const logger = createLogger({ level: 'silent' });

/** Records every call and answers it at once; `refuse` gives a status to calls of a route. */
function recordingPort(refuse: Record<string, number> = {}): PortClient & { calls: Call[] } {
  const calls: Call[] = [];
  return {
    calls,
    call(method: string, _path: string, route: string, body?: unknown, _headers?: Record<string, string>, options?: PortCallOptions): Promise<PortCallResult> {
      calls.push({ method, route, body, priority: options?.priority });
      const status = refuse[route];
      if (status === undefined) return Promise.resolve({ ok: true, status: 200, data: {} });
      const error = new ReportError(`Port API ${route} answered ${status}`, { route, status, retriable: false });
      return Promise.resolve({ ok: false, status, text: 'refused', error, isPermanent: true });
    },
    tokenRequests: () => 0,
    hasAnswered: () => true,
  };
}

/** A budget that is short (or not) as the test says. */
function budgetThat(isShort: () => boolean): PortBudget {
  return {
    acquire: () => Promise.resolve(() => undefined),
    isShort,
    relieved: () => new Promise(() => undefined),
    waiting: () => 0,
  };
}

const roomy = budgetThat(() => false);
const response = (status: number, json: unknown): ServiceResponse => ({ status, headers: {}, headersAsSent: {}, text: JSON.stringify(json), json });

function reportsOf(port: PortClient, runLogs: RunLogsMode, options: { synchronized?: boolean; kind?: 'action-run' | 'node-run'; budget?: PortBudget; onFolded?: (lines: number) => void } = {}): RunReports {
  return createRunReports(
    { kind: options.kind ?? 'action-run', runId: 'r_1', synchronized: options.synchronized ?? true },
    { port, budget: options.budget ?? roomy, detailedLogging: true, runLogs, logger, onFolded: options.onFolded ?? (() => undefined) },
  );
}

/** The usual life of a run up to the request: received, preparing, sending. */
function upToSending(reports: RunReports): void {
  reports.received();
  reports.preparing();
  reports.sending({ method: 'POST', url: 'http://service/deploy' });
}

const lines = (port: { calls: Call[] }) => port.calls.filter((call) => call.route.endsWith('/logs')).map((call) => (call.body as { message: string }).message);

describe('run reports', () => {
  it('all: the official texts in order, SUCCESS riding on the last line instead of its own PATCH', async () => {
    const port = recordingPort();
    const reports = reportsOf(port, 'all');
    upToSending(reports);
    reports.responded(response(200, { ok: true }), {});
    await reports.settled();
    assert.deepEqual(lines(port), [...synchronousRunLogs(RUN_LOG.invocationSucceeded(200)), RUN_LOG.actionFinished]);
    assert.equal(port.calls.length, 8, 'one call fewer than the official agent');
    assert.deepEqual(port.calls.at(-1)?.body, { message: RUN_LOG.actionFinished, terminationStatus: 'SUCCESS' });
    assert.equal(port.calls.at(-1)?.priority, 'final');
    assert.deepEqual(port.calls.find((call) => call.route.endsWith('/response'))?.body, { response: { ok: true } });
  });

  it('all: a failure keeps its summary in a PATCH, after the lines', async () => {
    const port = recordingPort();
    const reports = reportsOf(port, 'all', { synchronized: false });
    upToSending(reports);
    reports.responded(response(500, { error: 'boom' }), {});
    await reports.settled();
    assert.deepEqual(port.calls.at(-1), {
      method: 'PATCH',
      route: 'PATCH /v1/actions/runs/:runId',
      body: { status: 'FAILURE', summary: RUN_LOG.webhookFailureSummary(500, '{"error":"boom"}') },
      priority: 'final',
    });
  });

  it('minimal: a synchronous success costs 2 calls, an asynchronous one 1, a failure at most 2', async () => {
    const sync = recordingPort();
    const syncReports = reportsOf(sync, 'minimal');
    upToSending(syncReports);
    syncReports.retrying({ attemptNumber: 1, retriesLeft: 2, reason: 'the service answered 503' });
    syncReports.responded(response(200, { id: 7 }), {});
    await syncReports.settled();
    assert.deepEqual(sync.calls.map((call) => call.route), ['PATCH /v1/actions/runs/:runId/response', 'POST /v1/actions/runs/:runId/logs']);
    const [line] = lines(sync);
    assert.match(line ?? '', /^POST http:\/\/service\/deploy: the service answered 200 in \d+ ms after 1 retry \(the last because the service answered 503\)$/);
    assert.equal((sync.calls[1]?.body as { terminationStatus?: string }).terminationStatus, 'SUCCESS');

    const async = recordingPort();
    const asyncReports = reportsOf(async, 'minimal', { synchronized: false });
    upToSending(asyncReports);
    asyncReports.responded(response(202, {}), {});
    await asyncReports.settled();
    assert.equal(async.calls.length, 1);
    assert.equal((async.calls[0]?.body as { terminationStatus?: string }).terminationStatus, undefined, 'the service reports an asynchronous run');

    const failed = recordingPort();
    const failedReports = reportsOf(failed, 'minimal');
    upToSending(failedReports);
    failedReports.responded(response(500, { error: 'boom' }), {});
    await failedReports.settled();
    assert.equal(failed.calls.length, 2);
    assert.equal((failed.calls[1]?.body as { terminationStatus?: string }).terminationStatus, 'FAILURE');

    const unreachable = recordingPort();
    const unreachableReports = reportsOf(unreachable, 'minimal');
    upToSending(unreachableReports);
    unreachableReports.failed('The agent could not deliver the request.');
    await unreachableReports.settled();
    assert.deepEqual(unreachable.calls.map((call) => call.body), [{ message: 'The agent could not deliver the request.', terminationStatus: 'FAILURE' }]);
  });

  it('minimal: a link or summary set by the mapping still goes in a PATCH', async () => {
    const port = recordingPort();
    const reports = reportsOf(port, 'minimal', { synchronized: false });
    upToSending(reports);
    reports.responded(response(200, {}), { link: 'https://ci/job/1', status: 'SUCCESS' });
    await reports.settled();
    assert.deepEqual(port.calls.map((call) => call.route), ['POST /v1/actions/runs/:runId/logs', 'PATCH /v1/actions/runs/:runId']);
    assert.deepEqual(port.calls[1]?.body, { status: 'SUCCESS', link: 'https://ci/job/1' });
  });

  it('minimal: a status a line cannot carry (set by the mapping) goes in a PATCH', async () => {
    const port = recordingPort();
    const reports = reportsOf(port, 'minimal', { synchronized: false });
    upToSending(reports);
    reports.responded(response(200, {}), { status: 'IN_PROGRESS' });
    await reports.settled();
    assert.equal((port.calls[0]?.body as { terminationStatus?: string }).terminationStatus, undefined);
    assert.deepEqual(port.calls[1]?.body, { status: 'IN_PROGRESS' });
  });

  it('once the outcome is known, the run sends its remaining lines with the priority of final statuses', async () => {
    const port = recordingPort();
    const reports = reportsOf(port, 'all');
    upToSending(reports);
    // The request takes a while: the first lines go before the outcome is known.
    await new Promise((resolve) => setTimeout(resolve, 10));
    reports.responded(response(200, { ok: true }), {});
    await reports.settled();
    assert.deepEqual(
      port.calls.map((call) => call.priority),
      ['log', 'log', 'log', 'final', 'final', 'response', 'final', 'final'],
    );
  });

  it('none: statuses and responses only', async () => {
    const sync = recordingPort();
    const reports = reportsOf(sync, 'none');
    upToSending(reports);
    reports.responded(response(200, { id: 1 }), {});
    await reports.settled();
    assert.deepEqual(sync.calls.map((call) => call.route), ['PATCH /v1/actions/runs/:runId/response', 'PATCH /v1/actions/runs/:runId']);

    const async = recordingPort();
    const asyncReports = reportsOf(async, 'none', { synchronized: false });
    upToSending(asyncReports);
    asyncReports.responded(response(200, {}), {});
    await asyncReports.settled();
    assert.equal(async.calls.length, 0);
  });

  it('node runs: lines, then the result as a PATCH (Port takes no status on a node-run line)', async () => {
    const port = recordingPort();
    const reports = reportsOf(port, 'minimal', { kind: 'node-run' });
    upToSending(reports);
    reports.responded(response(200, { done: true }), {});
    await reports.settled();
    assert.deepEqual(port.calls.map((call) => call.route), ['POST /v1/workflows/nodes/runs/:runId/logs', 'PATCH /v1/workflows/nodes/runs/:runId']);
    assert.deepEqual(port.calls[1]?.body, { status: 'COMPLETED', result: 'SUCCESS', output: { response: { status: 200, data: { done: true } } } });
  });

  it('while the budget is short, informational lines wait for the final line and ride on it', async () => {
    const port = recordingPort();
    let folded = 0;
    const reports = reportsOf(port, 'all', { synchronized: false, budget: budgetThat(() => true), onFolded: (count) => (folded += count) });
    upToSending(reports);
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(port.calls.length, 0, 'nothing is sent before the run has its outcome');
    reports.responded(response(200, {}), {});
    await reports.settled();
    assert.deepEqual(lines(port), [[RUN_LOG.actionReceived, RUN_LOG.preparing, RUN_LOG.sending, RUN_LOG.invocationSucceeded(200)].join('\n'), RUN_LOG.actionFinished]);
    assert.equal(folded, 3);
  });

  it('sends the held lines even when no status follows them (a failure the mapping gave no status)', async () => {
    const port = recordingPort();
    const reports = reportsOf(port, 'all', { budget: budgetThat(() => true) });
    upToSending(reports);
    reports.responded(response(500, { error: 'boom' }), { status: null, summary: null });
    await reports.settled();
    assert.deepEqual(lines(port), [
      [RUN_LOG.actionReceived, RUN_LOG.preparing, RUN_LOG.sending, RUN_LOG.invocationFailed(500, '{"error":"boom"}')].join('\n'),
      [RUN_LOG.reportingResponse, RUN_LOG.responseReported].join('\n'),
    ]);
  });

  it('stops at a 404 (Port does not know the run) and settles', async () => {
    const port = recordingPort({ 'POST /v1/actions/runs/:runId/logs': 404 });
    const reports = reportsOf(port, 'all');
    upToSending(reports);
    reports.responded(response(200, {}), {});
    await reports.settled();
    assert.equal(port.calls.length, 1);
  });

  it('writes the official line when Port refuses the status for good, and settles', async () => {
    const port = recordingPort({ 'PATCH /v1/actions/runs/:runId': 422 });
    const reports = reportsOf(port, 'all', { synchronized: false });
    reports.failed('The payload mapping failed: bad.');
    await reports.settled();
    assert.deepEqual(lines(port), ['The payload mapping failed: bad.', RUN_LOG.stateNotReported(422, 'refused')]);
  });

  it('cuts a huge response text in lines and summaries, and replaces a huge response with a note', async () => {
    const port = recordingPort();
    const reports = reportsOf(port, 'all');
    const huge = 'x'.repeat(2_000_000);
    reports.responded({ status: 500, headers: {}, headersAsSent: {}, text: huge, json: undefined }, {});
    await reports.settled();
    for (const call of port.calls) assert.ok(Buffer.byteLength(JSON.stringify(call.body)) < 1_048_576, `${call.route} fits in 1 MiB`);
    const firstLine = lines(port)[0] ?? '';
    const fullLength = RUN_LOG.invocationFailed(500, huge).length;
    assert.ok(firstLine.endsWith(`… [cut by the agent: ${fullLength} characters in all]`), 'the line says it was cut');
    const reported = port.calls.find((call) => call.route.endsWith('/response'))?.body as { response: string };
    assert.match(reported.response, /^The response was not reported: it is 2000002 bytes as JSON/);
    const patch = port.calls.at(-1)?.body as { status: string; summary: string };
    assert.equal(patch.status, 'FAILURE');
    assert.ok(patch.summary.length < MAX_REPORTED_TEXT_CHARS + 100);
  });
});

describe('port limits', () => {
  it('leaves short texts alone and never splits a surrogate pair', () => {
    assert.equal(cutText('short'), 'short');
    const cut = cutText(`${'a'.repeat(9)}😀tail`, 10);
    assert.equal(cut, `${'a'.repeat(9)}… [cut by the agent: 15 characters in all]`);
  });

  it('keeps a response that fits', () => {
    assert.deepEqual(reportableResponse({ a: 1 }), { a: 1 });
  });
});
