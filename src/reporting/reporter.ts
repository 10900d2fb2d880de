/**
 * Turns what happened to a run into the Port API calls of SPEC §7: run logs with the official
 * texts in the official order, the synchronous response, the run status, and workflow node run
 * results. A Port call that fails is logged with the run id and never thrown: reporting must not
 * stop consumption.
 */
import type { RetryNotice } from '../delivery/retry-policy.js';
import type { DeliveryResponse } from '../delivery/send.js';
import { isSuccessStatus } from '../delivery/send.js';
import type { Logger } from '../log.js';
import type { ReportOverrides } from '../mapping/types.js';
import type { PortCallResult, PortClient } from './port-client.js';
import { planActionReport, planNodeRunReport } from './report-plan.js';
import { RUN_LOG } from './run-log-texts.js';

export interface RunRef {
  kind: 'action-run' | 'node-run';
  runId: string;
  /** `invocationMethod.synchronized`: Port waits for this agent to report the result. */
  synchronized: boolean;
}

export interface Reporter {
  received(run: RunRef, logger: Logger): Promise<void>;
  /** Action runs only: the mapping is about to be rendered. */
  preparing(run: RunRef, logger: Logger): Promise<void>;
  sending(run: RunRef, logger: Logger): Promise<void>;
  /** A request attempt failed and will be tried again. */
  retrying(run: RunRef, notice: RetryNotice, logger: Logger): Promise<void>;
  /** The internal service answered, with any status. */
  responded(run: RunRef, response: DeliveryResponse, overrides: ReportOverrides, logger: Logger): Promise<void>;
  /** The run failed inside the agent (unreachable service, timeout, bad URL, mapping error): FAILURE. */
  failed(run: RunRef, summary: string, logger: Logger): Promise<void>;
  /** SPEC §8: tells Port which streamer this agent uses; a failure is only a warning. */
  announceStreamer(streamerName: string, logger: Logger): Promise<void>;
}

export interface ReporterDeps {
  port: PortClient;
  /** DETAILED_LOGGING: response texts in run logs and summaries. */
  detailedLogging: boolean;
}

const ROUTES = {
  actionLogs: 'POST /v1/actions/runs/:runId/logs',
  actionResponse: 'PATCH /v1/actions/runs/:runId/response',
  actionPatch: 'PATCH /v1/actions/runs/:runId',
  nodeLogs: 'POST /v1/workflows/nodes/runs/:runId/logs',
  nodePatch: 'PATCH /v1/workflows/nodes/runs/:runId',
  organization: 'PATCH /v1/organization',
} as const;

export function createReporter(deps: ReporterDeps): Reporter {
  const detail = (text: string): string | undefined => (deps.detailedLogging ? text : undefined);
  const encode = encodeURIComponent;

  async function portCall(run: RunRef, method: string, path: string, route: string, body: unknown, logger: Logger): Promise<PortCallResult> {
    const result = await deps.port.call(method, path, route, body);
    if (!result.ok) {
      logger.warn({ runId: run.runId, route, status: result.status, err: result.error.message }, 'Port API call failed');
    }
    return result;
  }

  async function log(run: RunRef, message: string, logger: Logger): Promise<void> {
    if (run.kind === 'action-run') {
      await portCall(run, 'POST', `/v1/actions/runs/${encode(run.runId)}/logs`, ROUTES.actionLogs, { message }, logger);
    } else {
      await portCall(run, 'POST', `/v1/workflows/nodes/runs/${encode(run.runId)}/logs`, ROUTES.nodeLogs, { logs: [{ level: 'INFO', message }] }, logger);
    }
  }

  function patchAction(run: RunRef, patch: Record<string, unknown>, logger: Logger): Promise<PortCallResult> {
    return portCall(run, 'PATCH', `/v1/actions/runs/${encode(run.runId)}`, ROUTES.actionPatch, patch, logger);
  }

  function patchNode(run: RunRef, patch: Record<string, unknown>, logger: Logger): Promise<PortCallResult> {
    return portCall(run, 'PATCH', `/v1/workflows/nodes/runs/${encode(run.runId)}`, ROUTES.nodePatch, patch, logger);
  }

  async function patchActionStatus(run: RunRef, patch: Record<string, unknown>, logger: Logger): Promise<void> {
    const result = await patchAction(run, patch, logger);
    if (!result.ok) await log(run, RUN_LOG.stateNotReported(result.status, detail(result.text)), logger);
  }

  async function actionResponded(run: RunRef, response: DeliveryResponse, overrides: ReportOverrides, logger: Logger): Promise<void> {
    const succeeded = isSuccessStatus(response.status);
    await log(run, succeeded ? RUN_LOG.invocationSucceeded(response.status) : RUN_LOG.invocationFailed(response.status, detail(response.text)), logger);
    const plan = planActionReport(run.synchronized, response, overrides, deps.detailedLogging);
    if (plan.runResponse !== undefined) {
      await log(run, RUN_LOG.reportingResponse, logger);
      const result = await portCall(run, 'PATCH', `/v1/actions/runs/${encode(run.runId)}/response`, ROUTES.actionResponse, { response: plan.runResponse }, logger);
      await log(run, result.ok ? RUN_LOG.responseReported : RUN_LOG.responseNotReported(result.status, detail(result.text)), logger);
    }
    if (plan.statusPatch) await patchActionStatus(run, plan.statusPatch, logger);
    if (succeeded) await log(run, RUN_LOG.actionFinished, logger);
  }

  async function nodeRunResponded(run: RunRef, response: DeliveryResponse, logger: Logger): Promise<void> {
    const succeeded = isSuccessStatus(response.status);
    await log(run, succeeded ? RUN_LOG.invocationSucceeded(response.status) : RUN_LOG.invocationFailed(response.status, detail(response.text)), logger);
    const patch = planNodeRunReport(run.synchronized, response);
    if (patch) await patchNode(run, patch, logger);
    if (succeeded) await log(run, RUN_LOG.nodeRunFinished, logger);
  }

  return {
    received: (run, logger) => log(run, run.kind === 'action-run' ? RUN_LOG.actionReceived : RUN_LOG.nodeRunReceived, logger),
    preparing: async (run, logger) => {
      if (run.kind === 'action-run') await log(run, RUN_LOG.preparing, logger);
    },
    sending: (run, logger) => log(run, RUN_LOG.sending, logger),
    retrying: (run, notice, logger) => log(run, RUN_LOG.retrying(notice.reason, notice.attemptNumber, notice.retriesLeft), logger),
    responded: (run, response, overrides, logger) =>
      run.kind === 'action-run' ? actionResponded(run, response, overrides, logger) : nodeRunResponded(run, response, logger),
    async failed(run, summary, logger) {
      await log(run, summary, logger);
      if (run.kind === 'action-run') await patchActionStatus(run, { status: 'FAILURE', summary }, logger);
      else await patchNode(run, { status: 'COMPLETED', result: 'FAILED' }, logger);
    },
    async announceStreamer(streamerName, logger) {
      const result = await deps.port.call('PATCH', '/v1/organization', ROUTES.organization, { settings: { portAgentStreamerName: streamerName } });
      if (result.ok) logger.info({ streamer: streamerName }, 'streamer announced to Port');
      else logger.warn({ route: ROUTES.organization, status: result.status, err: result.error.message }, 'could not announce the streamer to Port; continuing');
    },
  };
}
