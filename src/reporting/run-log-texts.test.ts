/**
 * The one place the run-log texts are typed out: they are the official agent's texts, byte for byte
 * (SPEC §7), and every other test compares against RUN_LOG.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RUN_LOG } from './run-log-texts.js';

describe('run-log texts', () => {
  it('spells the fixed lines as the official agent does, trailing space included', () => {
    assert.deepEqual(
      [RUN_LOG.actionReceived, RUN_LOG.nodeRunReceived, RUN_LOG.preparing, RUN_LOG.sending, RUN_LOG.reportingResponse, RUN_LOG.responseReported, RUN_LOG.actionFinished, RUN_LOG.nodeRunFinished],
      [
        'An action message has been received',
        'A workflow node run has been received',
        'Preparing the payload for the request',
        'Sending the request',
        'Reporting the run response',
        'The run response was reported successfully ',
        'Port agent finished processing the action run',
        'Port agent finished processing the workflow node run',
      ],
    );
  });

  it('names the status code of an invocation, and its response only when given one', () => {
    assert.equal(RUN_LOG.invocationSucceeded(202), 'Action invocation has completed successfully with status code: 202');
    assert.equal(RUN_LOG.invocationFailed(500, 'database is down'), 'Action invocation failed with status code: 500 and response: database is down');
    assert.equal(RUN_LOG.invocationFailed(503, undefined), 'Action invocation failed with status code: 503');
  });

  it('says "none" for a report that got no status code at all', () => {
    assert.equal(RUN_LOG.responseNotReported(undefined, undefined), 'The run response failed to be reported with status code: none');
    assert.equal(RUN_LOG.responseNotReported(413, 'too large'), 'The run response failed to be reported with status code: 413 and response: too large');
    assert.equal(RUN_LOG.stateNotReported(422, undefined), 'The run state failed to be reported with status code: 422');
  });

  it('ends the failure summary with a full stop, and adds the response after it when given one', () => {
    assert.equal(RUN_LOG.webhookFailureSummary(502, 'bad gateway'), 'Failed to invoke the webhook with status code: 502. Response: bad gateway');
    assert.equal(RUN_LOG.webhookFailureSummary(503, undefined), 'Failed to invoke the webhook with status code: 503.');
  });

  it('counts the retries left in the agent’s own retry line, in the singular for one', () => {
    assert.equal(RUN_LOG.retrying('status code 503', 1, 5), 'The request failed (status code 503); retrying (attempt 1 failed, 5 retries left)');
    assert.equal(RUN_LOG.retrying('status code 503', 5, 1), 'The request failed (status code 503); retrying (attempt 5 failed, 1 retry left)');
  });
});
