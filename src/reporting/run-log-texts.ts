/**
 * The run-log texts the official agent writes (SPEC §7). Operators and Port's UI know them; they
 * are compatible texts, byte for byte, trailing space included.
 */
export const RUN_LOG = {
  actionReceived: 'An action message has been received',
  nodeRunReceived: 'A workflow node run has been received',
  preparing: 'Preparing the payload for the request',
  sending: 'Sending the request',
  invocationSucceeded: (status: number) => `Action invocation has completed successfully with status code: ${status}`,
  invocationFailed: (status: number, detail: string | undefined) =>
    `Action invocation failed with status code: ${status}${detail === undefined ? '' : ` and response: ${detail}`}`,
  /** Not in the official agent, which does not retry. */
  retrying: (reason: string, attemptNumber: number, retriesLeft: number) =>
    `The request failed (${reason}); retrying (attempt ${attemptNumber} failed, ${retriesLeft} ${retriesLeft === 1 ? 'retry' : 'retries'} left)`,
  reportingResponse: 'Reporting the run response',
  responseReported: 'The run response was reported successfully ',
  responseNotReported: (status: number | undefined, detail: string | undefined) =>
    `The run response failed to be reported with status code: ${status ?? 'none'}${detail === undefined ? '' : ` and response: ${detail}`}`,
  stateNotReported: (status: number | undefined, detail: string | undefined) =>
    `The run state failed to be reported with status code: ${status ?? 'none'}${detail === undefined ? '' : ` and response: ${detail}`}`,
  actionFinished: 'Port agent finished processing the action run',
  nodeRunFinished: 'Port agent finished processing the workflow node run',
  webhookFailureSummary: (status: number, detail: string | undefined) =>
    `Failed to invoke the webhook with status code: ${status}.${detail === undefined ? '' : ` Response: ${detail}`}`,
} as const;
