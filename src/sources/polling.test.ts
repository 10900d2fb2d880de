import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pollingProbeWindows } from './polling.js';

const DEFAULTS = { intervalSeconds: 10, runsBatchSize: 100, initialBackoffSeconds: 1, backoffFactor: 2, maxBackoffSeconds: 300, backoffJitterFactor: 0.1, maxFailureDurationSeconds: 3600 };

describe('pollingProbeWindows', () => {
  it('calls the loop stuck only after three of its longest pauses, the jittered maximum backoff', () => {
    assert.equal(pollingProbeWindows(DEFAULTS).consumerStaleAfterMs, 3 * 330_000);
  });

  it('calls Port silent after three poll intervals, and never under a minute', () => {
    assert.equal(pollingProbeWindows(DEFAULTS).brokerSilentAfterMs, 60_000);
    assert.equal(pollingProbeWindows({ ...DEFAULTS, intervalSeconds: 45 }).brokerSilentAfterMs, 135_000);
  });

  it('keeps liveness at two minutes at least for fast polling', () => {
    assert.equal(pollingProbeWindows({ ...DEFAULTS, intervalSeconds: 0.2, maxBackoffSeconds: 5 }).consumerStaleAfterMs, 120_000);
  });
});
