/**
 * The reporter with fakes: a Port client that answers as the test says and records its calls, and a
 * budget whose shortage the test switches on and off. Run reports themselves: run-reports.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { capturingLogger } from '../../test/support/log-lines.js';
import { ReportError } from '../errors.js';
import type { PortBudget } from './port-budget.js';
import type { PortCallResult, PortClient } from './port-client.js';
import { createReporter } from './reporter.js';
import type { Reporter, RunRef } from './reporter.js';
import { RUN_LOG } from './run-log-texts.js';

const ORGANIZATION_ROUTE = 'PATCH /v1/organization';
const FOLDED_WARNING = "Port's API budget is short: informational run-log lines of waiting runs are folded into their final line";

interface Call {
  method: string;
  path: string;
  route: string;
  body: unknown;
}

/** Answers every call with `answer` (default: accepted), recording it. */
function fakePort(answer: (route: string) => PortCallResult = () => ({ ok: true, status: 200, data: {} })): PortClient & { calls: Call[] } {
  const calls: Call[] = [];
  return {
    calls,
    call: async (method, path, route, body) => {
      calls.push({ method, path, route, body });
      return answer(route);
    },
    tokenRequests: () => 0,
    hasAnswered: () => true,
  };
}

function refusalMessage(route: string, status: number | undefined): string {
  return status === undefined ? `Port API ${route} could not be reached: socket hang up` : `Port API ${route} answered ${status}`;
}

function refusal(route: string, status: number | undefined): PortCallResult {
  return { ok: false, status, text: 'refused', error: new ReportError(refusalMessage(route, status), { route, status, retriable: false }), isPermanent: true };
}

/** A budget that is short until `relieve()`, then short again after `tighten()`. */
function switchableBudget() {
  let isShort = true;
  let relieve = (): void => undefined;
  let relief = new Promise<void>((resolve) => {
    relieve = resolve;
  });
  const budget: PortBudget = {
    acquire: async () => () => undefined,
    isShort: () => isShort,
    relieved: () => relief,
    waiting: () => 0,
  };
  return {
    budget,
    relieve: async () => {
      isShort = false;
      relieve();
      await relief;
    },
    tighten: () => {
      isShort = true;
      relief = new Promise<void>((resolve) => {
        relieve = resolve;
      });
    },
  };
}

function recordingMetrics() {
  const folded: number[] = [];
  return {
    folded,
    metrics: {
      linesFolded: (lines: number) => {
        folded.push(lines);
      },
      reportDropped: () => undefined,
    },
  };
}

/** A failed action run while the budget is short: its three informational lines are folded. */
async function failRunWhileShort(reporter: Reporter, runId: string, logger: ReturnType<typeof capturingLogger>['logger']): Promise<void> {
  const run: RunRef = { kind: 'action-run', runId, synchronized: false };
  const reports = reporter.open(run, logger);
  reports.received();
  reports.preparing();
  reports.sending({ method: 'POST', url: 'http://service.internal/deploy' });
  reports.failed('could not deliver the request');
  await reports.settled();
}

describe('announcing the streamer', () => {
  it("sets the organization's streamer name and says so at info", async () => {
    const logs = capturingLogger();
    const port = fakePort();
    const reporter = createReporter({ port, budget: switchableBudget().budget, detailedLogging: false, runLogs: 'all', logger: logs.logger });
    await reporter.announceStreamer('KAFKA', logs.logger);
    assert.deepEqual(port.calls, [{ method: 'PATCH', path: '/v1/organization', route: ORGANIZATION_ROUTE, body: { settings: { portAgentStreamerName: 'KAFKA' } } }]);
    assert.deepEqual(
      logs.lines.map(({ level, msg, streamer }) => ({ level, msg, streamer })),
      [{ level: 'info', msg: 'streamer announced to Port', streamer: 'KAFKA' }],
    );
  });

  for (const status of [403, 500, undefined]) {
    it(`only warns when Port does not take it (${status === undefined ? 'no answer' : status}), and carries on`, async () => {
      const logs = capturingLogger();
      const port = fakePort((route) => refusal(route, status));
      const reporter = createReporter({ port, budget: switchableBudget().budget, detailedLogging: false, runLogs: 'all', logger: logs.logger });
      await reporter.announceStreamer('POLLING', logs.logger);
      assert.deepEqual(
        logs.lines.map(({ level, msg, route, status: logged, err }) => ({ level, msg, route, status: logged, err })),
        [{ level: 'warn', msg: 'could not announce the streamer to Port; continuing', route: ORGANIZATION_ROUTE, status, err: refusalMessage(ORGANIZATION_ROUTE, status) }],
      );
    });
  }
});

describe('folding run-log lines while the budget is short', () => {
  it('warns once for all the runs folding during one shortage, and counts every folded line', async () => {
    const logs = capturingLogger();
    const budget = switchableBudget();
    const recorded = recordingMetrics();
    const reporter = createReporter({ port: fakePort(), budget: budget.budget, detailedLogging: false, runLogs: 'all', logger: logs.logger, metrics: recorded.metrics });
    await failRunWhileShort(reporter, 'r_fold_1', logs.logger);
    await failRunWhileShort(reporter, 'r_fold_2', logs.logger);

    assert.deepEqual(logs.lines.filter((line) => line.msg === FOLDED_WARNING).map(({ level, runLogs }) => ({ level, runLogs })), [{ level: 'warn', runLogs: 'all' }]);
    assert.deepEqual(recorded.folded, [1, 1, 1, 1, 1, 1], 'three lines of each run');
  });

  it('warns again in the next shortage, once the budget was relieved in between', async () => {
    const logs = capturingLogger();
    const budget = switchableBudget();
    const reporter = createReporter({ port: fakePort(), budget: budget.budget, detailedLogging: false, runLogs: 'all', logger: logs.logger });
    await failRunWhileShort(reporter, 'r_first_shortage', logs.logger);
    await budget.relieve();
    budget.tighten();
    await failRunWhileShort(reporter, 'r_second_shortage', logs.logger);

    assert.equal(logs.lines.filter((line) => line.msg === FOLDED_WARNING).length, 2);
  });

  it('sends the folded lines with the final line: one call where there would have been four', async () => {
    const logs = capturingLogger();
    const port = fakePort();
    const reporter = createReporter({ port, budget: switchableBudget().budget, detailedLogging: false, runLogs: 'all', logger: logs.logger });
    await failRunWhileShort(reporter, 'r_folded', logs.logger);
    const logCalls = port.calls.filter((call) => call.route === 'POST /v1/actions/runs/:runId/logs');
    assert.deepEqual(
      logCalls.map((call) => (call.body as { message: string }).message.split('\n')),
      [[RUN_LOG.actionReceived, RUN_LOG.preparing, RUN_LOG.sending, 'could not deliver the request']],
    );
  });
});
