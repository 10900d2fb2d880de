import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nextBackoffMs, withJitterMs } from './polling-backoff.js';

const SETTINGS = { initialBackoffSeconds: 1, backoffFactor: 2, maxBackoffSeconds: 300, backoffJitterFactor: 0.1 };

describe('nextBackoffMs', () => {
  it('starts at the initial backoff and multiplies by the factor after each further failure', () => {
    const waits: number[] = [];
    let backoffMs = 0;
    for (let failure = 0; failure < 5; failure += 1) {
      backoffMs = nextBackoffMs(backoffMs, SETTINGS);
      waits.push(backoffMs);
    }
    assert.deepEqual(waits, [1_000, 2_000, 4_000, 8_000, 16_000]);
  });

  it('never exceeds the maximum, the first backoff included', () => {
    let backoffMs = 0;
    for (let failure = 0; failure < 20; failure += 1) backoffMs = nextBackoffMs(backoffMs, SETTINGS);
    assert.equal(backoffMs, 300_000);
    assert.equal(nextBackoffMs(0, { ...SETTINGS, initialBackoffSeconds: 10, maxBackoffSeconds: 5 }), 5_000);
  });

  it('takes fractions of seconds and factors', () => {
    const settings = { ...SETTINGS, initialBackoffSeconds: 0.2, backoffFactor: 1.5 };
    assert.equal(nextBackoffMs(0, settings), 200);
    assert.equal(nextBackoffMs(200, settings), 300);
  });
});

describe('withJitterMs', () => {
  it('adds between nothing and the jitter factor of the backoff', () => {
    assert.equal(withJitterMs(1_000, 0.1, () => 0), 1_000);
    assert.equal(withJitterMs(1_000, 0.1, () => 0.5), 1_050);
    assert.ok(withJitterMs(1_000, 0.1, () => 0.999_999) < 1_100);
  });

  it('adds nothing with a jitter factor of 0', () => {
    assert.equal(withJitterMs(4_000, 0, () => 0.7), 4_000);
  });
});
