/**
 * Turns what happened to a run into Port API calls: run logs with the official texts in the
 * official order, the synchronous response, the run status, workflow node run results. Each run
 * gets its own ordered queue of reports, written off the delivery path and concurrently with
 * other runs'; `settled()` says when the last of them was accepted by Port or given up for good,
 * which is when the run's message may be committed. Nothing here throws: reporting must never stop
 * consumption.
 */
import type { Logger } from '../log.js';
import { createRunReports } from './run-reports.js';
import type { RunReports, RunReportsDeps } from './run-reports.js';

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
  /** Tells Port which streamer this agent uses; a failure is only a warning. */
  announceStreamer(streamerName: string, logger: Logger): Promise<void>;
}

/** What every run's reports share; `logger` says, once per budget shortage, that lines are folded. */
export type ReporterDeps = Omit<RunReportsDeps, 'onFolded' | 'now'>;

const ORGANIZATION_ROUTE = 'PATCH /v1/organization';

export function createReporter(deps: ReporterDeps): Reporter {
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
    open: (run, logger) => createRunReports(run, { ...deps, logger, onFolded }),
    async announceStreamer(streamerName, logger) {
      const result = await deps.port.call('PATCH', '/v1/organization', ORGANIZATION_ROUTE, { settings: { portAgentStreamerName: streamerName } });
      if (result.ok) logger.info({ streamer: streamerName }, 'streamer announced to Port');
      else logger.warn({ route: ORGANIZATION_ROUTE, status: result.status, err: result.error.message }, 'could not announce the streamer to Port; continuing');
    },
  };
}
