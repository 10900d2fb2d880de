/**
 * What Port is told about a run once its service answered (SPEC §7), as data: used by the reporter
 * to make the calls, and by the dry-run command to show them without making them.
 */
import type { ServiceResponse } from '../shared/service-response.js';
import { isSuccessStatus } from '../shared/service-response.js';
import { isPythonTruthy } from '../shared/json-shape.js';
import type { ReportOverrides } from '../mapping/types.js';
import { RUN_LOG } from './run-log-texts.js';

export interface ActionReportPlan {
  /** Body of `PATCH /v1/actions/runs/:runId/response`, when there is one to report. */
  runResponse: unknown;
  /** Body of `PATCH /v1/actions/runs/:runId`, when there is anything to patch. */
  statusPatch: Record<string, unknown> | undefined;
}

/** The response body as the official agent reports it: JSON when it parses, else the text. */
export function responseBody(response: ServiceResponse): unknown {
  return response.json !== undefined ? response.json : response.text;
}

function withoutNulls(patch: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(patch).filter(([, value]) => value !== null && value !== undefined));
}

export function planActionReport(synchronized: boolean, response: ServiceResponse, overrides: ReportOverrides, detailedLogging: boolean): ActionReportPlan {
  const succeeded = isSuccessStatus(response.status);
  const body = responseBody(response);
  // SPEC §7: asynchronous runs that succeeded are reported by the customer's backend; a report
  // field set by the mapping replaces its default even when it is null.
  const defaults = {
    status: succeeded ? (synchronized ? 'SUCCESS' : null) : 'FAILURE',
    summary: succeeded ? null : RUN_LOG.webhookFailureSummary(response.status, detailedLogging ? response.text : undefined),
  };
  const patch = withoutNulls({ ...defaults, ...overrides });
  return {
    // The official agent reports the body only when Python finds it truthy (not {}, [], "").
    runResponse: synchronized && isPythonTruthy(body) ? body : undefined,
    statusPatch: Object.keys(patch).length > 0 ? patch : undefined,
  };
}

/** Body of `PATCH /v1/workflows/nodes/runs/:id`; none for an asynchronous success. */
export function planNodeRunReport(synchronized: boolean, response: ServiceResponse): Record<string, unknown> | undefined {
  if (!isSuccessStatus(response.status)) return { status: 'COMPLETED', result: 'FAILED' };
  if (!synchronized) return undefined;
  // The official agent writes `get_response_body(res) or {}`: any body Python finds falsy is {}.
  const body = responseBody(response);
  const data = isPythonTruthy(body) ? body : {};
  return { status: 'COMPLETED', result: 'SUCCESS', output: { response: { status: response.status, data } } };
}
