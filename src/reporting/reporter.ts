/**
 * Turns what happened to a run into Port API calls: run logs with the official texts in the
 * official order, the synchronous response, the run status, workflow node run results. Each run
 * gets its own ordered queue of reports, written off the delivery path and concurrently with
 * other runs'; `settled()` says when the last of them was accepted by Port or given up for good,
 * which is when the run's message may be committed. Nothing here throws: reporting must never stop
 * consumption.
 */
import type { Logger } from '../log.js';
import type { PortBudget } from './port-budget.js';
import type { PortClient } from './port-client.js';
import { createRunReports } from './run-reports.js';
import type { ReportingMetrics, RunLogsMode, RunReports } from './run-reports.js';

export type { RunLogsMode, RunReports } from './run-reports.js';

export interface RunRef {
  kind: 'action-run' | 'node-run';
  runId: string;
  /** `invocationMethod.synchronized`: Port waits for this agent to report the result. */
  synchronized: boolean;
}

export interface Reporter {
  /** The report queue of one run; `logger` already names the run. */
  open(run: RunRef, logger: Logger): RunReports;
  /** Runs whose reports Port has not all accepted yet. */
  pending(): number;
  /** Tells Port which streamer this agent uses; a failure is only a warning. */
  announceStreamer(streamerName: string, logger: Logger): Promise<void>;
}

export interface ReporterDeps {
  port: PortClient;
  budget: PortBudget;
  /** DETAILED_LOGGING: response texts in run logs and summaries. */
  detailedLogging: boolean;
  /** AGENT_RUN_LOGS. */
  runLogs: RunLogsMode;
  /** Folding of run-log lines is said once per budget shortage, at warn. */
  logger: Logger;
  metrics?: ReportingMetrics;
}

const ORGANIZATION_ROUTE = 'PATCH /v1/organization';

export function createReporter(deps: ReporterDeps): Reporter {
  let pending = 0;
  let hasWarnedOfFolding = false;
  const onFolded = (lines: number): void => {
    deps.metrics?.linesFolded(lines);
    if (hasWarnedOfFolding) return;
    hasWarnedOfFolding = true;
    deps.logger.warn(
      { runLogs: deps.runLogs },
      "Port's API budget is short: informational run-log lines of waiting runs are folded into their final line",
    );
    void deps.budget.relieved().then(() => {
      hasWarnedOfFolding = false;
    });
  };

  return {
    open(run, logger) {
      pending += 1;
      const reports = createRunReports(run, { ...deps, logger, onFolded });
      void reports.settled().finally(() => {
        pending -= 1;
      });
      return reports;
    },
    pending: () => pending,
    async announceStreamer(streamerName, logger) {
      const result = await deps.port.call('PATCH', '/v1/organization', ORGANIZATION_ROUTE, { settings: { portAgentStreamerName: streamerName } });
      if (result.ok) logger.info({ streamer: streamerName }, 'streamer announced to Port');
      else logger.warn({ route: ORGANIZATION_ROUTE, status: result.status, err: result.error.message }, 'could not announce the streamer to Port; continuing');
    },
  };
}
