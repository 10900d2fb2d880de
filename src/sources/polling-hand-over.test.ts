import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { capturingLogger } from '../../test/support/log-lines.js';
import { createSemaphore } from '../concurrency/semaphore.js';
import type { RunRef, RunReports } from '../reporting/reporter.js';
import type { Handled, SourceMessage } from '../shared/source-message.js';
import { createInHandTracker } from './in-hand.js';
import { CLAIM_APIS } from './polling-claims.js';
import type { ClaimApi } from './polling-claims.js';
import { createHandOver, PROCESSING_FAILED_SUMMARY } from './polling-hand-over.js';

const ACTION_RUNS = CLAIM_APIS[0] as ClaimApi;
const RUN = { id: 'r_1', status: 'IN_PROGRESS', payload: { type: 'WEBHOOK', url: 'http://svc/x', agent: true, body: { action: 'deploy' } } };
const DELIVERED: Handled = { outcome: 'delivered', reported: undefined };

/** A hand-over with `maxInHand` places, a reporter recording the failures it was told of. */
function handOverWith(maxInHand = 2) {
  const logs = capturingLogger();
  const inHand = createInHandTracker({ maxInHand, awaitingReports: createSemaphore(10), shutdownGraceMs: 1_000, logger: logs.logger });
  const failures: { run: RunRef; summary: string }[] = [];
  const reporter = {
    open(run: RunRef): RunReports {
      // The fake implements only what a processing failure uses.
      return { failed: (summary: string) => failures.push({ run, summary }), settled: async () => undefined } as unknown as RunReports;
    },
  };
  return { handOver: createHandOver({ inHand, reporter, logger: logs.logger }), inHand, failures, logs };
}

describe('createHandOver', () => {
  it('hands acked runs to the handler as unsigned runs-topic messages, numbered in order', async () => {
    const { handOver, inHand } = handOverWith();
    const messages: SourceMessage[] = [];
    const handler = async (message: SourceMessage) => {
      messages.push(message);
      return DELIVERED;
    };
    await handOver.handOver({ api: ACTION_RUNS, runId: 'r_1', run: RUN }, handler);
    await handOver.handOver({ api: ACTION_RUNS, runId: 'r_2', run: { ...RUN, id: 'r_2' } }, handler);
    await inHand.drain();
    assert.deepEqual(
      messages.map(({ topic, partition, offset, role, origin }) => ({ topic, partition, offset, role, origin })),
      ['1', '2'].map((offset) => ({ topic: 'polling:action-runs', partition: 0, offset, role: 'runs', origin: 'claimed' })),
    );
  });

  it('reports a run that cannot be built as failed, without calling the handler', async () => {
    const { handOver, inHand, failures, logs } = handOverWith();
    await handOver.handOver({ api: ACTION_RUNS, runId: 'r_1', run: 'not a run' }, async () => assert.fail('not handled'));
    await inHand.drain();
    assert.deepEqual(failures, [{ run: { kind: 'action-run', runId: 'r_1', synchronized: false }, summary: PROCESSING_FAILED_SUMMARY }]);
    assert.equal(logs.lines.find((line) => line.msg === 'run failed: the claimed run cannot be processed')?.runId, 'r_1');
  });

  it('reports a run whose handling crashed as failed', async () => {
    const { handOver, inHand, failures, logs } = handOverWith();
    await handOver.handOver({ api: ACTION_RUNS, runId: 'r_1', run: RUN }, async () => {
      throw new Error('defect');
    });
    await inHand.drain();
    assert.deepEqual(failures.map((failure) => failure.summary), [PROCESSING_FAILED_SUMMARY]);
    assert.ok(logs.lines.some((line) => line.msg === 'run failed: processing it failed unexpectedly'));
  });

  it('is waiting for room while every place in hand is taken, and hands over once one frees', async () => {
    const { handOver, inHand } = handOverWith(1);
    let finish: (handled: Handled) => void = () => undefined;
    const slow = () => new Promise<Handled>((resolve) => (finish = resolve));
    await handOver.handOver({ api: ACTION_RUNS, runId: 'r_1', run: RUN }, slow);
    const second = handOver.handOver({ api: ACTION_RUNS, runId: 'r_2', run: { ...RUN, id: 'r_2' } }, async () => DELIVERED);
    assert.equal(handOver.isWaitingForRoom, true);
    assert.equal(inHand.count, 1, 'the second run waits outside');
    finish(DELIVERED);
    await second;
    assert.equal(handOver.isWaitingForRoom, false);
    await inHand.drain();
    assert.equal(inHand.count, 0);
  });
});
