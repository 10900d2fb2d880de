/**
 * The reports of one run, as an ordered queue: run-log lines in order, the final status after the
 * lines before it. The pipeline only adds to it and never waits for Port; the queue writes to
 * Port at its own pace, within Port's API budget. `AGENT_RUN_LOGS` decides how many lines a run
 * costs, and when the budget is short, informational lines wait for the run's final line and
 * ride on it instead of delaying final statuses.
 */
import type { ServiceResponse } from '../shared/service-response.js';
import { isSuccessStatus } from '../shared/service-response.js';
import type { Logger } from '../log.js';
import type { ReportOverrides } from '../mapping/types.js';
import type { RetryNotice } from '../retry/retry-policy.js';
import type { CallPriority, PortBudget } from './port-budget.js';
import type { PortCallResult, PortClient } from './port-client.js';
import { cutPatch, cutText, reportableResponse } from './port-limits.js';
import { planActionReport, planNodeRunReport } from './report-plan.js';
import type { RunRef } from './reporter.js';
import { RUN_LOG } from './run-log-texts.js';

/**
 * AGENT_RUN_LOGS: `all` writes the official texts; `minimal` one line per run (what was sent
 * where, the outcome, its status code, duration and retries); `none` no lines at all.
 */
export type RunLogsMode = 'all' | 'minimal' | 'none';

export interface ReportingMetrics {
  linesFolded(lines: number): void;
  /** A report given up: refused by Port for good, or failing past the retry budget. */
  reportDropped(route: string, status: number | undefined): void;
}

export interface RunReports {
  received(): void;
  /** Action runs only: the mapping is about to be rendered. */
  preparing(): void;
  /** The request is about to be sent; `url` as it may be shown (no query, no credentials). */
  sending(target: { method: string; url: string }): void;
  /** A request attempt failed and will be tried again. */
  retrying(notice: RetryNotice): void;
  /** The internal service answered, with any status: the run's final reports. */
  responded(response: ServiceResponse, overrides: ReportOverrides): void;
  /** The run failed inside the agent (unreachable service, bad URL, mapping error): FAILURE. */
  failed(summary: string): void;
  /** Resolves once every report was accepted by Port or given up for good; never rejects. */
  settled(): Promise<void>;
}

export interface RunReportsDeps {
  port: PortClient;
  budget: PortBudget;
  /** DETAILED_LOGGING: response texts in run logs and summaries. */
  detailedLogging: boolean;
  /** AGENT_RUN_LOGS. */
  runLogs: RunLogsMode;
  logger: Logger;
  metrics?: ReportingMetrics;
  /** Lines were folded into a final line because the budget is short. */
  onFolded(lines: number): void;
  now?: () => number;
}

const ROUTES = {
  actionLogs: 'POST /v1/actions/runs/:runId/logs',
  actionResponse: 'PATCH /v1/actions/runs/:runId/response',
  actionPatch: 'PATCH /v1/actions/runs/:runId',
  nodeLogs: 'POST /v1/workflows/nodes/runs/:runId/logs',
  nodePatch: 'PATCH /v1/workflows/nodes/runs/:runId',
} as const;

/** Run statuses Port takes on a log line (`terminationStatus`). */
const TERMINATION_STATUSES = new Set(['SUCCESS', 'FAILURE']);

type Termination = 'SUCCESS' | 'FAILURE';

/** A status a log line can carry; others (a mapping may set any) need a PATCH. */
function asTermination(status: unknown): Termination | undefined {
  return typeof status === 'string' && TERMINATION_STATUSES.has(status) ? (status as Termination) : undefined;
}

/** Whether a status patch can ride on a log line: a status alone, nothing a line cannot carry. */
function terminationOf(patch: Record<string, unknown> | undefined): Termination | undefined {
  if (patch === undefined) return undefined;
  const keys = Object.keys(patch);
  return keys.length === 1 && keys[0] === 'status' ? asTermination(patch.status) : undefined;
}

/** Report fields a mapping set that only a PATCH carries. */
function hasPatchOnlyOverrides(overrides: ReportOverrides): boolean {
  return (['summary', 'link', 'externalRunId'] as const).some((field) => overrides[field] !== undefined && overrides[field] !== null);
}

/** A node-run result whose response data is too large for Port carries a note instead. */
function withReportableOutput(patch: Record<string, unknown> | undefined, sourceTextLength: number): Record<string, unknown> | undefined {
  const output = patch?.output as { response?: { status: number; data: unknown } } | undefined;
  if (patch === undefined || output?.response === undefined) return patch;
  return { ...patch, output: { ...output, response: { ...output.response, data: reportableResponse(output.response.data, sourceTextLength) } } };
}

export function createRunReports(run: RunRef, deps: RunReportsDeps): RunReports {
  const { logger, runLogs } = deps;
  const now = deps.now ?? Date.now;
  const encodedId = encodeURIComponent(run.runId);
  const detail = (text: string): string | undefined => (deps.detailedLogging ? text : undefined);
  let chain: Promise<void> = Promise.resolve();
  /** Port said the run does not exist: nothing more is sent for it. */
  let isGone = false;
  /** Informational lines held back while the budget is short, to ride on the next line. */
  const held: string[] = [];
  let hasFinal = false;
  let finalArrived: () => void = () => undefined;
  const finalKnown = new Promise<void>((resolve) => {
    finalArrived = resolve;
  });
  /** For the `minimal` line. */
  let target: { method: string; url: string } | undefined;
  let sentAtMs: number | undefined;
  let retries = 0;
  let lastRetryReason: string | undefined;

  function enqueue(step: () => Promise<void>): void {
    chain = chain
      .then(() => (isGone ? undefined : step()))
      .catch((error: unknown) => {
        // A defect in a step: the rest of the run's reports still go.
        logger.error({ err: error instanceof Error ? error.message : String(error) }, 'writing a report to Port failed unexpectedly');
      });
  }

  function final(step: () => Promise<void>): void {
    hasFinal = true;
    enqueue(step);
    finalArrived();
  }

  /** One Port call; a refusal or a give-up is logged here, once, and counted. */
  async function call(method: string, path: string, route: string, body: unknown, priority: CallPriority): Promise<PortCallResult> {
    const result = await deps.port.call(method, path, route, body, {}, { priority, untilAnswered: true });
    if (result.ok) return result;
    deps.metrics?.reportDropped(route, result.status);
    if (result.status === 404) {
      isGone = true;
      logger.error({ route, status: result.status, err: result.error.message }, 'Port does not know this run: its remaining reports are dropped');
    } else if (result.isPermanent) {
      logger.error({ route, status: result.status, err: result.error.message }, 'Port refused a report for good; it is dropped');
    } else {
      logger.error({ route, status: result.status, err: result.error.message }, 'Port API call failed; the report is given up');
    }
    return result;
  }

  /**
   * A line, with any held lines before it in the same message. Once the run's outcome is known its
   * status waits behind its remaining lines, so they go with the priority of final statuses.
   */
  async function line(text: string, termination?: Termination): Promise<PortCallResult> {
    const priority: CallPriority = hasFinal ? 'final' : 'log';
    const message = cutText([...held.splice(0), text].join('\n'));
    if (run.kind === 'action-run') {
      const body = termination === undefined ? { message } : { message, terminationStatus: termination };
      return call('POST', `/v1/actions/runs/${encodedId}/logs`, ROUTES.actionLogs, body, priority);
    }
    return call('POST', `/v1/workflows/nodes/runs/${encodedId}/logs`, ROUTES.nodeLogs, { logs: [{ level: 'INFO', message }] }, priority);
  }

  /**
   * An informational line: while the budget is short it waits for the run's final line and rides
   * on it, so that waiting runs spend one call where they would have spent several.
   */
  async function info(text: string): Promise<void> {
    if (deps.budget.isShort() && !hasFinal) await Promise.race([finalKnown, deps.budget.relieved()]);
    if (deps.budget.isShort()) {
      held.push(text);
      deps.onFolded(1);
      return;
    }
    await line(text);
  }

  /** Held lines go before a status that no line follows. */
  async function flushHeld(): Promise<void> {
    // The last held line goes as the text; line() puts the others before it.
    const last = held.pop();
    if (last !== undefined) await line(last);
  }

  /** The run's status (an action run) or result (a node run). */
  async function patchRun(patch: Record<string, unknown>): Promise<PortCallResult> {
    await flushHeld();
    return run.kind === 'action-run'
      ? call('PATCH', `/v1/actions/runs/${encodedId}`, ROUTES.actionPatch, cutPatch(patch), 'final')
      : call('PATCH', `/v1/workflows/nodes/runs/${encodedId}`, ROUTES.nodePatch, cutPatch(patch), 'final');
  }

  /** `sourceTextLength`: the length of the service's response text the body came from. */
  async function reportResponse(body: unknown, sourceTextLength: number): Promise<PortCallResult> {
    return call('PATCH', `/v1/actions/runs/${encodedId}/response`, ROUTES.actionResponse, { response: reportableResponse(body, sourceTextLength) }, 'response');
  }

  /** `all`: the status patch, and the official line when Port refused it. */
  async function officialStatus(patch: Record<string, unknown>): Promise<void> {
    const result = await patchRun(patch);
    if (!result.ok && !isGone) await line(RUN_LOG.stateNotReported(result.status, detail(result.text)));
  }

  /** `minimal`: what was sent where, the outcome, status code, duration and retries, in one line. */
  function summaryLine(outcome: string): string {
    const where = target === undefined ? 'The request' : `${target.method} ${target.url}`;
    const took = sentAtMs === undefined ? '' : ` in ${now() - sentAtMs} ms`;
    const retried = retries === 0 ? '' : ` after ${retries === 1 ? '1 retry' : `${retries} retries`} (the last because ${lastRetryReason ?? 'of an unknown reason'})`;
    return `${where}: ${outcome}${took}${retried}`;
  }

  async function actionResponded(response: ServiceResponse, overrides: ReportOverrides): Promise<void> {
    const succeeded = isSuccessStatus(response.status);
    const plan = planActionReport(run.synchronized, response, overrides, deps.detailedLogging);
    const outcomeLine = succeeded ? RUN_LOG.invocationSucceeded(response.status) : RUN_LOG.invocationFailed(response.status, detail(response.text));
    if (runLogs === 'all') {
      await line(outcomeLine);
      if (plan.runResponse !== undefined) {
        await info(RUN_LOG.reportingResponse);
        const result = await reportResponse(plan.runResponse, response.text.length);
        if (isGone) return;
        await info(result.ok ? RUN_LOG.responseReported : RUN_LOG.responseNotReported(result.status, detail(result.text)));
      }
      const termination = succeeded ? terminationOf(plan.statusPatch) : undefined;
      if (plan.statusPatch !== undefined && termination === undefined) await officialStatus(plan.statusPatch);
      if (succeeded && !isGone) await line(RUN_LOG.actionFinished, termination);
      // Lines held after the last call (a failure the mapping gave no status) still go.
      if (!isGone) await flushHeld();
      return;
    }
    if (plan.runResponse !== undefined) await reportResponse(plan.runResponse, response.text.length);
    if (isGone) return;
    if (runLogs === 'none') {
      if (plan.statusPatch !== undefined) await patchRun(plan.statusPatch);
      return;
    }
    // `minimal`: the status rides on the one line unless the mapping set what only a PATCH
    // carries, or a status a line cannot carry.
    const termination = hasPatchOnlyOverrides(overrides) ? undefined : asTermination(plan.statusPatch?.status);
    const outcome = `${succeeded ? 'the service answered' : 'the run failed: the service answered'} ${response.status}`;
    await line(summaryLine(succeeded ? outcome : `${outcome}${deps.detailedLogging ? ` with response: ${response.text}` : ''}`), termination);
    if (plan.statusPatch !== undefined && termination === undefined && !isGone) await patchRun(plan.statusPatch);
  }

  async function nodeRunResponded(response: ServiceResponse): Promise<void> {
    const succeeded = isSuccessStatus(response.status);
    const patch = withReportableOutput(planNodeRunReport(run.synchronized, response), response.text.length);
    if (runLogs === 'all') await line(succeeded ? RUN_LOG.invocationSucceeded(response.status) : RUN_LOG.invocationFailed(response.status, detail(response.text)));
    if (runLogs === 'minimal') await line(summaryLine(`the service answered ${response.status}`));
    if (patch !== undefined && !isGone) await patchRun(patch);
    if (runLogs === 'all' && succeeded && !isGone) await line(RUN_LOG.nodeRunFinished);
  }

  async function runFailed(summary: string): Promise<void> {
    if (run.kind === 'node-run') {
      if (runLogs !== 'none') await line(summary);
      if (!isGone) await patchRun({ status: 'COMPLETED', result: 'FAILED' });
      return;
    }
    if (runLogs === 'minimal') {
      await line(summary, 'FAILURE');
      return;
    }
    if (runLogs === 'all') await line(summary);
    if (isGone) return;
    const patch = { status: 'FAILURE', summary };
    if (runLogs === 'all') await officialStatus(patch);
    else await patchRun(patch);
  }

  const informational = (text: () => string): void => {
    if (runLogs === 'all') enqueue(() => info(text()));
  };

  return {
    received: () => informational(() => (run.kind === 'action-run' ? RUN_LOG.actionReceived : RUN_LOG.nodeRunReceived)),
    preparing: () => {
      if (run.kind === 'action-run') informational(() => RUN_LOG.preparing);
    },
    sending: (sent) => {
      target = sent;
      sentAtMs = now();
      informational(() => RUN_LOG.sending);
    },
    retrying: (notice) => {
      retries += 1;
      lastRetryReason = notice.reason;
      informational(() => RUN_LOG.retrying(notice.reason, notice.attemptNumber, notice.retriesLeft));
    },
    responded: (response, overrides) => final(() => (run.kind === 'action-run' ? actionResponded(response, overrides) : nodeRunResponded(response))),
    failed: (summary) => final(() => runFailed(summary)),
    // Once the final report is queued, the chain ends with it.
    settled: () => finalKnown.then(() => chain),
  };
}
