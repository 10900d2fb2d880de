import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SourceStatus } from '../shared/source-status.js';
import { watchEventLoop } from './event-loop.js';
import { createProbes } from './probes.js';
import type { ProbeInputs } from './probes.js';

const NOW = 1_000_000;
const OPTIONS = { consumerStaleAfterMs: 120_000, brokerSilentAfterMs: 6_000, eventLoopStallMs: 10_000 };

function status(overrides: Partial<SourceStatus> = {}): SourceStatus {
  return { state: 'consuming', lastBrokerAnswerAtMs: NOW - 1_000, lastAttemptAtMs: NOW - 1_000, messagesInHand: 0, lag: [], backlog: [], ...overrides };
}

function probesFor(inputs: Partial<ProbeInputs> & { loopDelayMs?: number }) {
  return createProbes(
    {
      source: () => status(),
      portHasAnswered: () => true,
      isStopping: () => false,
      eventLoop: { maxRecentDelayMs: () => inputs.loopDelayMs ?? 0, stop: () => undefined },
      now: () => NOW,
      ...inputs,
    },
    OPTIONS,
  );
}

describe('liveness', () => {
  it('is alive while consuming, as a standby, starting or reconnecting to a lost broker', () => {
    for (const state of ['consuming', 'standby', 'starting', 'reconnecting'] as const) {
      assert.equal(probesFor({ source: () => status({ state, lastBrokerAnswerAtMs: NOW - 600_000 }) }).liveness().ok, true, state);
    }
    assert.equal(probesFor({ source: () => undefined }).liveness().ok, true, 'before the source exists');
  });

  it('is not alive when the consumer stopped for good or stopped even trying', () => {
    const stopped = probesFor({ source: () => status({ state: 'stopped' }) }).liveness();
    assert.equal(stopped.ok, false);
    assert.equal(stopped.checks.consumer, 'stopped for good');
    const stuck = probesFor({ source: () => status({ lastAttemptAtMs: NOW - 121_000 }) }).liveness();
    assert.equal(stuck.ok, false);
    assert.match(stuck.checks.consumer ?? '', /no sign of activity for 121 s/);
  });

  it('is alive while stopping on request', () => {
    assert.equal(probesFor({ source: () => status({ state: 'stopped' }), isStopping: () => true }).liveness().ok, true);
  });

  it('is not alive when the event loop was blocked too long', () => {
    const blocked = probesFor({ loopDelayMs: 12_000 }).liveness();
    assert.equal(blocked.ok, false);
    assert.match(blocked.checks.eventLoop ?? '', /blocked for 12000 ms/);
  });
});

describe('readiness', () => {
  it('is ready consuming or as a standby once Port has answered', () => {
    assert.deepEqual(probesFor({}).readiness(), { ok: true, checks: { consumer: 'consuming', portApi: 'answered' } });
    assert.equal(probesFor({ source: () => status({ state: 'standby' }) }).readiness().ok, true);
  });

  it('is not ready before Port answers, while starting, reconnecting or stopping', () => {
    assert.equal(probesFor({ portHasAnswered: () => false }).readiness().checks.portApi, 'no answer yet');
    for (const state of ['starting', 'reconnecting', 'stopped'] as const) {
      assert.equal(probesFor({ source: () => status({ state }) }).readiness().ok, false, state);
    }
    assert.equal(probesFor({ isStopping: () => true }).readiness().ok, false);
    assert.equal(probesFor({ source: () => undefined }).readiness().ok, false);
  });

  it('is not ready when the broker has not answered within the session timeout', () => {
    const silent = probesFor({ source: () => status({ lastBrokerAnswerAtMs: NOW - 7_000 }) }).readiness();
    assert.equal(silent.ok, false);
    assert.match(silent.checks.consumer ?? '', /has not answered for 7 s/);
  });
});

describe('watchEventLoop', () => {
  it('remembers a block of the loop within its window', async () => {
    const watch = watchEventLoop({ intervalMs: 20, windowMs: 10_000 });
    try {
      await new Promise((resolve) => setTimeout(resolve, 60));
      assert.ok(watch.maxRecentDelayMs() < 300, 'a healthy loop');
      const blockedUntil = Date.now() + 400;
      while (Date.now() < blockedUntil) {
        // Blocking the loop on purpose.
      }
      await new Promise((resolve) => setTimeout(resolve, 60));
      assert.ok(watch.maxRecentDelayMs() >= 350, `saw the block: ${watch.maxRecentDelayMs()} ms`);
    } finally {
      watch.stop();
    }
  });
});
