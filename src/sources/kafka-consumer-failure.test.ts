import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { capturingLogger } from '../../test/support/log-lines.js';
import { afterFailure, heedFailure } from './kafka-consumer-failure.js';

const crash = { during: 'crash' as const, isRefused: false, willKafkajsRestart: false, isCurrent: true, isStopping: false };

describe('afterFailure', () => {
  it('retries with the same credentials when no client could be had', () => {
    const decision = afterFailure({ during: 'client' });
    assert.equal(decision.next, 'retry');
    assert.equal(decision.shouldRenewCredentials, false);
    assert.deepEqual(decision.log, { level: 'error', message: 'could not get the Kafka brokers and credentials; retrying' });
  });

  it('fetches the credentials again before retrying a start the brokers refused', () => {
    const decision = afterFailure({ during: 'start', isRefused: true });
    assert.deepEqual([decision.next, decision.shouldRenewCredentials, decision.log?.level], ['retry', true, 'warn']);
    assert.equal(decision.log?.message, 'Kafka refused the credentials; fetching them again and reconnecting');
  });

  it('retries a start that failed otherwise with the same credentials', () => {
    const decision = afterFailure({ during: 'start', isRefused: false });
    assert.deepEqual([decision.next, decision.shouldRenewCredentials, decision.log?.message], ['retry', false, 'could not start the Kafka consumer; retrying']);
  });

  it('leaves a crash to kafkajs when it restarts the consumer itself', () => {
    const decision = afterFailure({ ...crash, willKafkajsRestart: true });
    assert.deepEqual([decision.next, decision.shouldRenewCredentials, decision.log?.level], ['leave', false, 'warn']);
    assert.equal(decision.log?.message, 'Kafka consumer crashed; kafkajs restarts it');
  });

  it('rebuilds with fetched credentials when the brokers refused them, even where kafkajs would restart', () => {
    for (const willKafkajsRestart of [true, false]) {
      const decision = afterFailure({ ...crash, isRefused: true, willKafkajsRestart });
      assert.deepEqual([decision.next, decision.shouldRenewCredentials], ['rebuild', true]);
      assert.equal(decision.log?.message, 'Kafka refused the credentials; fetching them again and rebuilding the consumer');
    }
  });

  it('rebuilds a consumer kafkajs gave up on', () => {
    const decision = afterFailure(crash);
    assert.deepEqual([decision.next, decision.shouldRenewCredentials, decision.log?.level], ['rebuild', false, 'error']);
    assert.equal(decision.log?.message, 'Kafka consumer crashed and kafkajs will not restart it; rebuilding the consumer');
  });

  it('ignores the crash of a consumer already replaced, or of one stopping, refused or not', () => {
    for (const isRefused of [true, false]) {
      assert.deepEqual(afterFailure({ ...crash, isRefused, isCurrent: false }), { next: 'ignore', shouldRenewCredentials: false });
      assert.deepEqual(afterFailure({ ...crash, isRefused, isStopping: true }), { next: 'ignore', shouldRenewCredentials: false });
    }
  });
});

describe('heedFailure', () => {
  it('renews when told to and logs the error with the wait before the retry', () => {
    const { logger, lines } = capturingLogger();
    let renewals = 0;
    const connector = { renew: () => (renewals += 1) };
    heedFailure(afterFailure({ during: 'start', isRefused: true }), new Error('refused'), { connector, logger }, 1_000);
    assert.equal(renewals, 1);
    assert.equal(lines.length, 1);
    assert.equal(lines[0]?.level, 'warn');
    assert.equal(lines[0]?.retryInMs, 1_000);
    assert.match(String(lines[0]?.err), /refused/);
  });

  it('logs a crash without a wait, and nothing for an ignored one', () => {
    const { logger, lines } = capturingLogger();
    const connector = { renew: () => assert.fail('nothing to renew') };
    heedFailure(afterFailure(crash), new Error('crashed'), { connector, logger });
    heedFailure(afterFailure({ ...crash, isCurrent: false }), new Error('old'), { connector, logger });
    assert.equal(lines.length, 1);
    assert.ok(!('retryInMs' in (lines[0] ?? {})));
  });
});
