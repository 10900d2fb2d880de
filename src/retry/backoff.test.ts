import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createBackoff, nextBackoffMs, withJitterMs } from './backoff.js';

/** The polling defaults (POLLING_INITIAL_BACKOFF_SECONDS=1, factor 2, max 300 s, jitter 0.1), in ms. */
const POLLING = { initialMs: 1_000, factor: 2, maxMs: 300_000, jitterFactor: 0.1 };
/** The Kafka consumer's restarts: 1 s doubling to 30 s, no jitter. */
const RESTARTS = { initialMs: 1_000, factor: 2, maxMs: 30_000, jitterFactor: 0 };

describe('nextBackoffMs', () => {
  it('starts at the initial backoff and multiplies by the factor after each further failure', () => {
    const waits: number[] = [];
    let backoffMs = 0;
    for (let failure = 0; failure < 5; failure += 1) {
      backoffMs = nextBackoffMs(backoffMs, POLLING);
      waits.push(backoffMs);
    }
    assert.deepEqual(waits, [1_000, 2_000, 4_000, 8_000, 16_000]);
  });

  it('never exceeds the maximum, the first backoff included', () => {
    let backoffMs = 0;
    for (let failure = 0; failure < 20; failure += 1) backoffMs = nextBackoffMs(backoffMs, POLLING);
    assert.equal(backoffMs, 300_000);
    assert.equal(nextBackoffMs(0, { ...POLLING, initialMs: 10_000, maxMs: 5_000 }), 5_000);
  });

  it('takes fractions of seconds and factors', () => {
    const settings = { ...POLLING, initialMs: 0.2 * 1000, factor: 1.5 };
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

describe('createBackoff', () => {
  it('waits 1 s, doubling to 30 s, with the restart settings', () => {
    const backoff = createBackoff(RESTARTS, () => 0.9);
    const waits = Array.from({ length: 7 }, () => backoff.failed());
    assert.deepEqual(waits, [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
  });

  it('starts over at the initial backoff after a reset', () => {
    const backoff = createBackoff(RESTARTS);
    backoff.failed();
    backoff.failed();
    backoff.failed();
    backoff.reset();
    assert.equal(backoff.failed(), 1_000);
  });

  it('adds jitter to the wait but grows from the backoff without it', () => {
    const backoff = createBackoff(POLLING, () => 0.5);
    assert.deepEqual([backoff.failed(), backoff.failed(), backoff.failed()], [1_050, 2_100, 4_200]);
  });

  it('says it is backing off from the first failure until a reset', () => {
    const backoff = createBackoff(POLLING);
    assert.equal(backoff.isBackingOff, false);
    backoff.failed();
    assert.equal(backoff.isBackingOff, true);
    backoff.reset();
    assert.equal(backoff.isBackingOff, false);
  });
});
