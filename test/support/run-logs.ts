import { RUN_LOG } from '../../src/reporting/run-log-texts.js';

/**
 * The run logs Port gets for a synchronous action run up to its response being reported, in order
 * (SPEC §7): `invocation` is the line the service's answer gave (`RUN_LOG.invocationSucceeded(200)`,
 * `RUN_LOG.invocationFailed(…)`). The final line is the caller's to add.
 */
export function synchronousRunLogs(invocation: string): string[] {
  return [RUN_LOG.actionReceived, RUN_LOG.preparing, RUN_LOG.sending, invocation, RUN_LOG.reportingResponse, RUN_LOG.responseReported];
}
