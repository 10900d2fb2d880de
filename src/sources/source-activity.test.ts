import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createSourceActivity } from './source-activity.js';

describe('createSourceActivity', () => {
  it('starts as starting, with both times at creation', () => {
    const activity = createSourceActivity(() => 1_000);
    assert.equal(activity.state, 'starting');
    assert.equal(activity.lastBrokerAnswerAtMs, 1_000);
    assert.equal(activity.lastAttemptAtMs, 1_000);
  });

  it('moves only the attempt time on an attempt, and both on an answer', () => {
    let nowMs = 1_000;
    const activity = createSourceActivity(() => nowMs);
    nowMs = 2_000;
    activity.attempted();
    assert.deepEqual([activity.lastBrokerAnswerAtMs, activity.lastAttemptAtMs], [1_000, 2_000]);
    nowMs = 3_000;
    activity.answered();
    assert.deepEqual([activity.lastBrokerAnswerAtMs, activity.lastAttemptAtMs], [3_000, 3_000]);
  });
});
