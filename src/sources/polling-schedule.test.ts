import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { afterPoll } from './polling-schedule.js';

const MAX_FAILURE_MS = 60_000;
const healthy = { failingSinceMs: undefined, isBackingOff: false };
const failing = (sinceMs: number) => ({ failingSinceMs: sinceMs, isBackingOff: true });

describe('afterPoll', () => {
  it('polls again at once after a full batch: more runs are waiting', () => {
    assert.deepEqual(afterPoll({ errors: [], isFullBatch: true }, healthy, 1_000, MAX_FAILURE_MS), { next: 'poll-now', failingSinceMs: undefined, hasRecovered: false });
  });

  it('waits the interval after a batch that was not full', () => {
    assert.deepEqual(afterPoll({ errors: [], isFullBatch: false }, healthy, 1_000, MAX_FAILURE_MS), { next: 'wait-interval', failingSinceMs: undefined, hasRecovered: false });
  });

  it('says a success after failures recovered, and forgets when the failures began', () => {
    const after = afterPoll({ errors: [], isFullBatch: false }, failing(0), 30_000, MAX_FAILURE_MS);
    assert.deepEqual(after, { next: 'wait-interval', failingSinceMs: undefined, hasRecovered: true });
  });

  it('backs off after a first failure, counting from now', () => {
    assert.deepEqual(afterPoll({ errors: ['503'], isFullBatch: false }, healthy, 5_000, MAX_FAILURE_MS), { next: 'back-off', failingSinceMs: 5_000, failingForMs: 0 });
  });

  it('treats a poll with a failed kind as failed, even when another kind came back full', () => {
    assert.equal(afterPoll({ errors: ['503'], isFullBatch: true }, healthy, 5_000, MAX_FAILURE_MS).next, 'back-off');
  });

  it('keeps backing off while the failures last no longer than the maximum', () => {
    assert.deepEqual(afterPoll({ errors: ['503'], isFullBatch: false }, failing(1_000), 61_000, MAX_FAILURE_MS), { next: 'back-off', failingSinceMs: 1_000, failingForMs: 60_000 });
  });

  it('gives up once the failures last longer than the maximum', () => {
    assert.deepEqual(afterPoll({ errors: ['503'], isFullBatch: false }, failing(1_000), 61_001, MAX_FAILURE_MS), { next: 'give-up', failingSinceMs: 1_000, failingForMs: 60_001 });
  });
});
