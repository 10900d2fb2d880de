import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createHostGuard } from './host-guard.js';

async function enterAndLeave(guard: ReturnType<typeof createHostGuard>, host: string, succeeded: boolean): Promise<string> {
  const entry = await guard.enter(host);
  if (entry.kind === 'open') return 'open';
  entry.leave(succeeded);
  return 'entered';
}

describe('createHostGuard', () => {
  it('limits requests per host, not across hosts', async () => {
    const guard = createHostGuard({ perHostLimit: 1 });
    const first = await guard.enter('slow:80');
    let isSecondIn = false;
    const second = guard.enter('slow:80').then((entry) => {
      isSecondIn = true;
      return entry;
    });
    assert.equal((await guard.enter('fast:80')).kind, 'entered', 'another host is not held back');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(isSecondIn, false, 'the same host waits');
    if (first.kind === 'entered') first.leave(true);
    assert.equal((await second).kind, 'entered');
  });

  it('opens after consecutive failures, probes after the cool-down, and closes on success', async () => {
    let nowMs = 0;
    const guard = createHostGuard({ perHostLimit: 10, failureThreshold: 3, initialCooldownMs: 1000, now: () => nowMs });
    for (let attempt = 0; attempt < 3; attempt += 1) assert.equal(await enterAndLeave(guard, 'down:80', false), 'entered');
    assert.equal(await enterAndLeave(guard, 'down:80', true), 'open');
    assert.equal(await enterAndLeave(guard, 'up:80', true), 'entered', 'other hosts are unaffected');
    nowMs = 1000;
    const probe = await guard.enter('down:80');
    assert.equal(probe.kind, 'entered', 'one probe after the cool-down');
    assert.equal(await enterAndLeave(guard, 'down:80', true), 'open', 'only one probe at a time');
    if (probe.kind === 'entered') probe.leave(false);
    nowMs = 2500;
    assert.equal(await enterAndLeave(guard, 'down:80', true), 'open', 'the cool-down doubled after a failed probe');
    nowMs = 3000;
    assert.equal(await enterAndLeave(guard, 'down:80', true), 'entered');
    assert.equal(await enterAndLeave(guard, 'down:80', true), 'entered', 'closed again after a successful probe');
  });

  it('keeps no state for a host whose last request succeeded once nothing is in flight', async () => {
    const guard = createHostGuard({ perHostLimit: 2 });
    const first = await guard.enter('tenant:80');
    const second = await guard.enter('tenant:80');
    assert.equal(guard.hostCount, 1);
    if (first.kind === 'entered') first.leave(true);
    assert.equal(guard.hostCount, 1, 'a request still in flight');
    if (second.kind === 'entered') second.leave(true);
    assert.equal(guard.hostCount, 0);
    assert.equal(await enterAndLeave(guard, 'other:80', true), 'entered');
    assert.equal(guard.hostCount, 0, 'thousands of hosts called once each leave nothing behind');
  });

  it('forgets a failing host unused for a while, with its failure count', async () => {
    let nowMs = 0;
    const guard = createHostGuard({ perHostLimit: 10, failureThreshold: 3, forgetIdleAfterMs: 1000, now: () => nowMs });
    await enterAndLeave(guard, 'tenant-1:80', false);
    await enterAndLeave(guard, 'tenant-1:80', false);
    await enterAndLeave(guard, 'tenant-2:80', false);
    assert.equal(guard.hostCount, 2);
    nowMs = 1000;
    await enterAndLeave(guard, 'tenant-3:80', true);
    assert.equal(guard.hostCount, 0, 'the two idle hosts are forgotten');
    assert.equal(await enterAndLeave(guard, 'tenant-1:80', false), 'entered');
    assert.equal(await enterAndLeave(guard, 'tenant-1:80', true), 'entered', 'the third failure in a row counted from zero again: still closed');
  });

  it('keeps a failing host used within the period', async () => {
    let nowMs = 0;
    const guard = createHostGuard({ perHostLimit: 10, failureThreshold: 3, forgetIdleAfterMs: 1000, now: () => nowMs });
    await enterAndLeave(guard, 'busy:80', false);
    nowMs = 600;
    await enterAndLeave(guard, 'busy:80', false);
    nowMs = 1000;
    await enterAndLeave(guard, 'other:80', true);
    assert.equal(guard.hostCount, 1);
    await enterAndLeave(guard, 'busy:80', false);
    assert.equal(await enterAndLeave(guard, 'busy:80', true), 'open', 'its earlier failures still count');
  });

  it('tells the circuit of each host it keeps: closed below the threshold, open in its cool-down, half-open after', async () => {
    let nowMs = 0;
    const guard = createHostGuard({ perHostLimit: 10, failureThreshold: 2, initialCooldownMs: 500, now: () => nowMs });
    await enterAndLeave(guard, 'flaky:80', false);
    assert.deepEqual(guard.circuits(), [{ host: 'flaky:80', state: 'closed' }]);
    await enterAndLeave(guard, 'flaky:80', false);
    assert.deepEqual(guard.circuits(), [{ host: 'flaky:80', state: 'open' }]);
    nowMs = 500;
    assert.deepEqual(guard.circuits(), [{ host: 'flaky:80', state: 'half-open' }]);
    const probe = await guard.enter('flaky:80');
    assert.deepEqual(guard.circuits(), [{ host: 'flaky:80', state: 'half-open' }], 'its probe in flight');
    if (probe.kind === 'entered') probe.leave(true);
    assert.deepEqual(guard.circuits(), [], 'a host that answered again is closed and no longer kept');
  });

  it('lists only failing hosts, and none once unused for the forget period, even if no request comes to sweep them', async () => {
    let nowMs = 0;
    const guard = createHostGuard({ perHostLimit: 10, failureThreshold: 2, initialCooldownMs: 500, forgetIdleAfterMs: 1000, now: () => nowMs });
    const busy = await guard.enter('busy:80');
    await enterAndLeave(guard, 'down:80', false);
    await enterAndLeave(guard, 'down:80', false);
    assert.deepEqual(guard.circuits(), [{ host: 'down:80', state: 'open' }], 'a host with a request in flight and no failure is not listed');
    nowMs = 999;
    assert.deepEqual(guard.circuits(), [{ host: 'down:80', state: 'half-open' }]);
    nowMs = 1000;
    assert.deepEqual(guard.circuits(), [], 'a quiet agent: the tripped host is as good as forgotten');
    if (busy.kind === 'entered') busy.leave(true);
  });

  it('keeps an open or half-open circuit, and forgets a tripped host only once unused for the period', async () => {
    let nowMs = 0;
    const guard = createHostGuard({ perHostLimit: 10, failureThreshold: 2, initialCooldownMs: 500, forgetIdleAfterMs: 1000, now: () => nowMs });
    await enterAndLeave(guard, 'down:80', false);
    await enterAndLeave(guard, 'down:80', false);
    nowMs = 900;
    await enterAndLeave(guard, 'other:80', true);
    assert.equal(guard.hostCount, 1, 'the tripped host is kept within the period');
    const probe = await guard.enter('down:80');
    assert.equal(probe.kind, 'entered', 'the cool-down is over: a probe');
    nowMs = 5000;
    await enterAndLeave(guard, 'other:80', true);
    assert.equal(guard.hostCount, 1, 'half-open: kept while its probe is in flight');
    assert.equal(await enterAndLeave(guard, 'down:80', true), 'open', 'half-open: only the probe goes');
    if (probe.kind === 'entered') probe.leave(false);
    assert.equal(await enterAndLeave(guard, 'down:80', true), 'open', 'the failed probe opened it again');
    nowMs = 10_000;
    await enterAndLeave(guard, 'other:80', true);
    assert.equal(guard.hostCount, 0, 'unused for the period, its cool-down long over: forgotten');
    assert.equal(await enterAndLeave(guard, 'down:80', true), 'entered');
  });

  it('never forgets a host with a request in flight or waiting', async () => {
    let nowMs = 0;
    const guard = createHostGuard({ perHostLimit: 1, forgetIdleAfterMs: 1000, now: () => nowMs });
    const holder = await guard.enter('slow:80');
    const waiter = guard.enter('slow:80');
    nowMs = 5000;
    await enterAndLeave(guard, 'other:80', true);
    assert.equal(guard.hostCount, 1);
    if (holder.kind === 'entered') holder.leave(false);
    const entered = await waiter;
    nowMs = 10_000;
    await enterAndLeave(guard, 'other:80', true);
    assert.equal(guard.hostCount, 1, 'the waiter now holds the slot');
    if (entered.kind === 'entered') entered.leave(false);
    nowMs = 20_000;
    await enterAndLeave(guard, 'other:80', true);
    assert.equal(guard.hostCount, 0);
  });

  it('looks for idle failing hosts once per period, not on every call', async () => {
    let nowMs = 0;
    const guard = createHostGuard({ perHostLimit: 10, forgetIdleAfterMs: 1000, now: () => nowMs });
    nowMs = 500;
    await enterAndLeave(guard, 'a:80', false);
    nowMs = 1000;
    await enterAndLeave(guard, 'b:80', false);
    assert.equal(guard.hostCount, 2, 'a, idle 500 ms at this look, is kept');
    nowMs = 1600;
    await enterAndLeave(guard, 'c:80', false);
    assert.equal(guard.hostCount, 3, 'a is idle 1,100 ms, but the next look is at 2,000 ms');
    nowMs = 2000;
    await enterAndLeave(guard, 'c:80', false);
    assert.equal(guard.hostCount, 1, 'a and b are forgotten, c was just used');
  });

  it('refuses a period that is not a positive number, naming the option', () => {
    for (const forgetIdleAfterMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(() => createHostGuard({ perHostLimit: 1, forgetIdleAfterMs }), /`forgetIdleAfterMs`/);
    }
  });

  it('resets the failure count on a success', async () => {
    const guard = createHostGuard({ perHostLimit: 10, failureThreshold: 2 });
    await enterAndLeave(guard, 'flaky:80', false);
    await enterAndLeave(guard, 'flaky:80', true);
    await enterAndLeave(guard, 'flaky:80', false);
    assert.equal(await enterAndLeave(guard, 'flaky:80', true), 'entered');
  });
});
