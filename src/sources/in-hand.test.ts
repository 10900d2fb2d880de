import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createSemaphore } from '../concurrency/semaphore.js';
import type { Handled } from '../shared/source-message.js';
import { capturingLogger } from '../../test/support/log-lines.js';
import { awaitReports, createInHandTracker } from './in-hand.js';

/** A promise with its resolve function, to finish work when the test says so. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

/** Lets pending promise callbacks run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

function tracker(options: { maxInHand?: number; awaitingReports?: number; shutdownGraceMs?: number } = {}) {
  const logs = capturingLogger();
  const awaiting = createSemaphore(options.awaitingReports ?? 10);
  const inHand = createInHandTracker({ maxInHand: options.maxInHand ?? 2, awaitingReports: awaiting, shutdownGraceMs: options.shutdownGraceMs ?? 1_000, logger: logs.logger });
  return { inHand, awaiting, logs };
}

describe('createInHandTracker', () => {
  it('makes the message after maxInHand wait until one in hand finishes', async () => {
    const { inHand } = tracker({ maxInHand: 2 });
    const first = deferred();
    (await inHand.acquire()).track(first.promise);
    (await inHand.acquire()).track(deferred().promise);
    let isThirdTaken = false;
    const third = inHand.acquire().then((place) => {
      isThirdTaken = true;
      return place;
    });
    await settle();
    assert.equal(isThirdTaken, false);
    first.resolve();
    await third;
    assert.equal(isThirdTaken, true);
  });

  it('counts the messages in hand until their work settles', async () => {
    const { inHand } = tracker();
    const work = deferred();
    (await inHand.acquire()).track(work.promise);
    assert.equal(inHand.count, 1);
    work.resolve();
    await settle();
    assert.equal(inHand.count, 0);
  });

  it('logs work that rejects (a defect) and gives its place back, rather than leaving an unhandled rejection', async () => {
    const { inHand, logs } = tracker({ maxInHand: 1 });
    (await inHand.acquire()).track(Promise.reject(new Error('handler defect')));
    await settle();
    assert.equal(inHand.count, 0);
    const logged = logs.lines.find((line) => line.msg === 'a message in hand failed unexpectedly');
    assert.match(String(logged?.err), /handler defect/);
    assert.equal(logged?.level, 'error');
    await inHand.acquire();
  });

  it('gives a place released unused to the next message', async () => {
    const { inHand } = tracker({ maxInHand: 1 });
    (await inHand.acquire()).release();
    const next = await Promise.race([inHand.acquire().then(() => 'taken'), settle().then(() => 'waiting')]);
    assert.equal(next, 'taken');
    assert.equal(inHand.count, 0);
  });

  it('drains messages taken while draining too', async () => {
    const { inHand } = tracker();
    const first = deferred();
    const second = deferred();
    (await inHand.acquire()).track(first.promise);
    let isDrained = false;
    const draining = inHand.drain().then(() => {
      isDrained = true;
    });
    (await inHand.acquire()).track(second.promise);
    first.resolve();
    await settle();
    assert.equal(isDrained, false);
    second.resolve();
    await draining;
    assert.equal(isDrained, true);
  });

  it('frees the in-hand place once the run holds a place awaiting reports, before Port heard', async () => {
    const { inHand, awaiting } = tracker({ maxInHand: 1 });
    const reported = deferred();
    const place = await inHand.acquire();
    const handled: Handled = { outcome: 'delivered', reported: reported.promise };
    const outcome = place.awaitReports(handled);
    place.track(outcome.then(() => undefined));
    const next = await inHand.acquire();
    assert.equal(awaiting.active, 1);
    next.release();
    reported.resolve();
    assert.equal(await outcome, 'delivered');
    assert.equal(awaiting.active, 0);
  });

  it('says in time and logs nothing when the stop finishes within the grace period', async () => {
    const { inHand, logs } = tracker({ shutdownGraceMs: 1_000 });
    assert.equal(await inHand.finishWithinGrace(Promise.resolve(), 'too late'), true);
    assert.deepEqual(logs.lines, []);
  });

  it('logs the messages still in hand when the stop outlasts the grace period', async () => {
    const { inHand, logs } = tracker({ shutdownGraceMs: 20 });
    (await inHand.acquire()).track(deferred().promise);
    assert.equal(await inHand.finishWithinGrace(inHand.drain(), 'runs did not finish'), false);
    const late = logs.lines.find((line) => line.msg === 'runs did not finish');
    assert.equal(late?.graceMs, 20);
    assert.equal(late?.inFlight, 1);
    assert.equal(late?.level, 'warn');
  });
});

describe('awaitReports', () => {
  it('gives the in-hand place back at once and takes no report place when nothing was reported', async () => {
    const awaiting = createSemaphore(1);
    const held = await awaiting.acquire();
    let releases = 0;
    const outcome = await awaitReports({ outcome: 'skipped', reported: undefined }, awaiting, () => {
      releases += 1;
    });
    assert.equal(outcome, 'skipped');
    assert.equal(releases, 1);
    held();
  });

  it('keeps the in-hand place while every report place is taken', async () => {
    const awaiting = createSemaphore(1);
    const held = await awaiting.acquire();
    let releases = 0;
    const outcome = awaitReports({ outcome: 'failed', reported: Promise.resolve() }, awaiting, () => {
      releases += 1;
    });
    await settle();
    assert.equal(releases, 0);
    held();
    assert.equal(await outcome, 'failed');
    assert.equal(releases, 1);
    assert.equal(awaiting.active, 0);
  });
});
